//! `config`'s tests: the layers, their defaults and what errors name.

use super::*;

fn flag(_: &str) -> Source {
    Source::Flag
}

#[test]
fn file_fills_what_flags_leave_and_defaults_the_rest() {
    let file = Layer::from_toml(
        "enclave = \"unix:/run/bridle/enclave.sock\"\nlisten = \"0.0.0.0:9000\"\npool = 4\nlog_format = \"json\"\n",
    )
    .unwrap();
    let cli = Layer { pool: Some(16), ..Layer::default() };
    let s = Settings::resolve(&cli, flag, &file, None).unwrap();
    assert_eq!(s.pool, 16);
    assert_eq!(s.sources["pool"], Source::Flag);
    assert_eq!(s.listen, "0.0.0.0:9000");
    assert_eq!(s.sources["listen"], Source::File);
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.db, PathBuf::from(DEFAULT_DB));
    assert_eq!(s.sources["db"], Source::Default);
    assert_eq!(s.call_timeout, DEFAULT_CALL_TIMEOUT_SECS);
    assert_eq!(s.enclave.to_string(), "unix:/run/bridle/enclave.sock");
    let c = s.host_config();
    assert_eq!(c.pool_size, 16);
    assert_eq!(c.probe_interval, Some(Duration::from_secs(DEFAULT_PROBE_INTERVAL_SECS)));
    assert_eq!(c.events, crate::store::EventRetention::default());
    // Events: 0 days keeps them whatever their age; a flag over the file.
    let file = Layer { events_max_age_days: Some(0), events_max_rows: Some(5), ..file };
    let cli = Layer { events_max_rows: Some(7), ..Layer::default() };
    let e = Settings::resolve(&cli, flag, &file, None).unwrap().host_config().events;
    assert_eq!((e.max_age, e.max_rows), (None, 7));
    // Sessions: 30 days after they ended unless set; 0 keeps them for good (the layers
    // and the JSON view: tests/config.rs).
    let kept = |days| Settings::resolve(&Layer { session_retention_days: days, ..file.clone() }, flag, &file, None);
    let kept = |days| kept(days).unwrap().host_config().session_retention.map(|d| d.as_secs() / 86_400);
    assert_eq!((kept(None), kept(Some(0)), kept(Some(7))), (Some(30), None, Some(7)));
    // The audit log's copy: kept for good unless set; 0 for good too.
    let audit = |days| Settings::resolve(&Layer { audit_retention_days: days, ..file.clone() }, flag, &file, None);
    let audit = |days| audit(days).unwrap().host_config().audit_retention.map(|d| d.as_secs() / 86_400);
    assert_eq!((audit(None), audit(Some(0)), audit(Some(400))), (None, None, Some(400)));
    let s = Settings::resolve(&Layer { audit_retention_days: Some(9), ..file.clone() }, flag, &file, None).unwrap();
    assert_eq!(s.to_json()["audit_retention_days"], 9);
}

#[test]
fn errors_name_what_is_wrong() {
    let e = Layer::from_toml("listn = \"x\"").unwrap_err();
    assert!(e.contains("listn"), "{e}");
    let e = Layer::from_toml("pool = \"many\"").unwrap_err();
    assert!(e.contains("pool"), "{e}");
    let e = Settings::resolve(&Layer::default(), flag, &Layer::default(), None).unwrap_err();
    assert!(e.contains("BRIDLE_ENCLAVE"), "{e}");
    let file = Layer { enclave: Some("vsock:nope".into()), ..Layer::default() };
    let e = Settings::resolve(&Layer::default(), flag, &file, None).unwrap_err();
    assert!(e.contains("config file"), "{e}");
    let file = Layer { enclave: Some("vsock:16:5000".into()), probe_interval: Some(0), ..Layer::default() };
    let s = Settings::resolve(&Layer::default(), flag, &file, None).unwrap();
    assert_eq!(s.host_config().probe_interval, None);
    let cli = Layer { pool: Some(0), ..Layer::default() };
    assert!(Settings::resolve(&cli, flag, &file, None).unwrap_err().contains("pool"));
}

/// Without `cluster_advertise`, the host advertises the address its cluster listener
/// bound (`bind_cluster`): allowed only for one IP address other hosts can reach, never
/// 0.0.0.0, :: or a name; an advertised URL must be http(s).
#[test]
fn the_advertised_url_defaults_to_the_bound_address_only_when_that_is_one_ip() {
    let with = |listen: &str, advertise: &str| {
        let mut text = format!(
            "enclave = \"unix:/run/bridle/enclave.sock\"\ncluster_listen = \"{listen}\"\ncluster_bootstrap = true\n"
        );
        if !advertise.is_empty() {
            text += &format!("cluster_advertise = \"{advertise}\"\n");
        }
        Settings::resolve(&Layer::default(), flag, &Layer::from_toml(&text).unwrap(), None)
    };
    for listen in ["127.0.0.1:0", "10.0.0.1:7443", "[::1]:7443"] {
        let c = with(listen, "").unwrap().host_config().cluster.unwrap();
        assert_eq!((c.listen.as_str(), c.advertise.as_str()), (listen, ""), "derived when bound");
    }
    for listen in ["0.0.0.0:7443", "[::]:7443", "localhost:7443", "[fe80::1%2]:7443"] {
        let e = with(listen, "").unwrap_err();
        assert!(e.contains("cluster_advertise") && e.contains(listen), "{e}");
        assert!(with(listen, "http://10.0.0.1:7443").is_ok(), "{listen}");
    }
    assert!(with("127.0.0.1:0", "10.0.0.1:7443").unwrap_err().contains("http(s) URL"));
    assert!(with("127.0.0.1:0", "http://10.0.0.1:7443/?x").unwrap_err().contains("no query"));
}

/// A cluster host's pool defaults to the stand-alone 8, and one larger than its node's
/// enclave leaves it is refused (the enclave would refuse the connections beyond its
/// limit, and the calls behind them would stall).
#[test]
fn a_cluster_hosts_pool_fits_its_enclave() {
    let file = Layer::from_toml(
        "enclave = \"unix:/run/bridle/enclave.sock\"\ncluster_listen = \"0.0.0.0:7443\"\ncluster_advertise = \"http://10.0.0.1:7443\"\ncluster_bootstrap = true\n",
    )
    .unwrap();
    let s = Settings::resolve(&Layer::default(), flag, &file, None).unwrap();
    assert_eq!(s.pool, 8);
    assert_eq!(crate::cluster::MAX_CLIENT_POOL, 24);
    assert_eq!(
        crate::cluster::MAX_CLIENT_POOL
            + crate::cluster::TRAFFIC_POOL
            + crate::enclave_client::AUDIT_CONNECTIONS
            + crate::cluster::SPARE_CONNECTIONS,
        bridle_common::cluster::NODE_MAX_CONNECTIONS
    );
    let cli = Layer { pool: Some(12), ..Layer::default() };
    assert_eq!(Settings::resolve(&cli, flag, &file, None).unwrap().pool, 12);
    let cli = Layer { pool: Some(25), ..Layer::default() };
    let e = Settings::resolve(&cli, flag, &file, None).unwrap_err();
    assert!(e.contains("pool 25") && e.contains("at most 24"), "{e}");
    // Stand-alone: the small default, and the stand-alone enclave's bound.
    let file = Layer { enclave: Some("vsock:16:5000".into()), ..Layer::default() };
    let s = Settings::resolve(&Layer::default(), flag, &file, None).unwrap();
    assert_eq!(s.pool, crate::enclave_client::DEFAULT_POOL_SIZE);
    let cli = Layer { pool: Some(24), ..Layer::default() };
    assert_eq!(Settings::resolve(&cli, flag, &file, None).unwrap().pool, 24);
    let cli = Layer { pool: Some(25), ..Layer::default() };
    let e = Settings::resolve(&cli, flag, &file, None).unwrap_err();
    assert!(e.contains("pool 25") && e.contains("at most 24") && e.contains("32 connections"), "{e}");
}

/// `examples/host.toml` documents every key a config file may hold.
#[test]
fn the_example_config_documents_every_key() {
    let example = include_str!("../../examples/host.toml");
    let keys = serde_json::to_value(Layer::default()).unwrap();
    for key in keys.as_object().unwrap().keys() {
        let set = example.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
        });
        assert!(set, "examples/host.toml does not show `{key} = …`");
    }
    // And it parses, commented keys aside.
    Layer::from_toml(example).unwrap();
}

/// A host pipelines its enclave calls: 4 per connection unless set, 1 to 64; a cluster
/// host 8 unless set (its calls wait for commits).
#[test]
fn a_host_pipelines_its_enclave_calls() {
    let file = Layer { enclave: Some("vsock:16:5000".into()), ..Layer::default() };
    let s = Settings::resolve(&Layer::default(), flag, &file, None).unwrap();
    assert_eq!((s.pipeline, s.host_config().pipeline), (4, 4));
    assert_eq!(s.sources["pipeline"], Source::Default);
    let cli = Layer { pipeline: Some(16), ..Layer::default() };
    let s = Settings::resolve(&cli, flag, &file, None).unwrap();
    assert_eq!((s.pipeline, s.host_config().pipeline, s.sources["pipeline"]), (16, 16, Source::Flag));
    assert_eq!(s.to_json()["pipeline"], 16);
    for bad in [0, 65] {
        let cli = Layer { pipeline: Some(bad), ..Layer::default() };
        let e = Settings::resolve(&cli, flag, &file, None).unwrap_err();
        assert!(e.contains(&format!("pipeline {bad}")) && e.contains("1 to 64"), "{e}");
    }
    let e = Layer::from_toml("pipeline = -1").unwrap_err();
    assert!(e.contains("pipeline"), "{e}");
    let cluster = Layer::from_toml(
        "enclave = \"unix:/run/bridle/enclave.sock\"\ncluster_listen = \"0.0.0.0:7443\"\ncluster_advertise = \"http://10.0.0.1:7443\"\ncluster_bootstrap = true\n",
    )
    .unwrap();
    let s = Settings::resolve(&Layer::default(), flag, &cluster, None).unwrap();
    assert_eq!((s.pipeline, s.host_config().pipeline), (8, 8));
    for (set, got) in [(1, 1), (64, 64)] {
        let cli = Layer { pipeline: Some(set), ..Layer::default() };
        assert_eq!(Settings::resolve(&cli, flag, &cluster, None).unwrap().pipeline, got);
    }
    let cli = Layer { pipeline: Some(65), ..Layer::default() };
    assert!(Settings::resolve(&cli, flag, &cluster, None).unwrap_err().contains("1 to 64"));
}

/// The public listener's per-source bound: 64 unless set, 0 for none; the loopback addresses
/// exempt unless set otherwise; an address that does not parse is named.
#[test]
fn the_per_source_bound_and_its_exempt_addresses() {
    let file = Layer { enclave: Some("vsock:16:5000".into()), ..Layer::default() };
    let c = Settings::resolve(&Layer::default(), flag, &file, None).unwrap().host_config();
    assert_eq!(c.connections_per_source, 64);
    assert_eq!(c.connections_per_source_exempt, crate::serve::DEFAULT_EXEMPT.to_vec());
    let cli = Layer {
        connections_per_source: Some(0),
        connections_per_source_exempt: Some(" 10.0.0.5 , fd00::1,".into()),
        ..Layer::default()
    };
    let s = Settings::resolve(&cli, flag, &file, None).unwrap();
    assert_eq!(s.host_config().connections_per_source, 0);
    let want: Vec<std::net::IpAddr> = vec!["10.0.0.5".parse().unwrap(), "fd00::1".parse().unwrap()];
    assert_eq!(s.host_config().connections_per_source_exempt, want);
    assert_eq!(s.to_json()["connections_per_source_exempt"], serde_json::json!(["10.0.0.5", "fd00::1"]));
    let cli = Layer { connections_per_source_exempt: Some("10.0.0.5,proxy.local".into()), ..Layer::default() };
    let e = Settings::resolve(&cli, flag, &file, None).unwrap_err();
    assert!(e.contains("connections_per_source_exempt") && e.contains("proxy.local"), "{e}");
    let file = Layer::from_toml(
        "enclave = \"vsock:16:5000\"\nconnections_per_source = 8\nconnections_per_source_exempt = \"\"\n",
    )
    .unwrap();
    let c = Settings::resolve(&Layer::default(), flag, &file, None).unwrap().host_config();
    assert_eq!((c.connections_per_source, c.connections_per_source_exempt.len()), (8, 0));
}
