//! The load generator against a real enclave and host (debug binaries), through the path a
//! user takes for a remote host: `--host` with an identity from a pinned key, a trust file,
//! or (said unverified) the host's word.

use super::args::{parse, Args, Parsed};
use super::stats::Outcome;
use super::*;
use crate::Stack;

fn args(s: &str) -> Args {
    let v: Vec<String> = s.split_whitespace().map(String::from).collect();
    match parse(&v).unwrap() {
        Parsed::Run(a) => *a,
        Parsed::Help => panic!("help"),
    }
}

fn quiet(_: &str) {}

fn key_of(s: &Stack) -> String {
    let st = enclave_status(s);
    format!("0x{}", hex::encode(&st.identity_public_key))
}

fn enclave_status(s: &Stack) -> bridle_common::protocol::Status {
    match s.enclave.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })) {
        Ok(Reply::Status(st)) => st,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn against_a_given_host() {
    let s = Stack::start();
    let url = s.host.url.clone();
    let (hp, ep) = (s.host.proc.pid(), s.enclave.proc.pid());
    let common = "--raw-secs 0.2 --quiet --concurrency 4";

    // No identity: refused before anything is sent; a wrong pinned key: refused.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    let e = execute(&args(&format!("--host {url} --trust-file {} {common}", missing.display())), &quiet)
        .await
        .err()
        .unwrap();
    assert!(e.0.contains("no entry"), "{e}");
    let other = format!("0x{}", hex::encode(crate::Actor::random().public_key_sec1()));
    let e = execute(&args(&format!("--host {url} --enclave-key {other} {common}")), &quiet).await.err().unwrap();
    assert!(e.0.contains("not the trusted"), "{e}");
    assert_eq!(enclave_status(&s).sessions_total, 0, "nothing was granted");

    // Pinned key, closed loop, CPU of the given PIDs.
    let a = args(&format!(
        "--host {url} --enclave-key {} --sessions 3 --requests 60 --host-pid {hp} --enclave-pid {ep} {common}",
        key_of(&s)
    ));
    let r = execute(&a, &quiet).await.unwrap();
    assert_eq!((r.tally.ok, r.tally.refused, r.tally.errors, r.exit_code()), (60, 0, 0, 0), "{}", r.human());
    assert_eq!(r.latency.unwrap().count, 60);
    assert!(r.identity.verified && r.identity_after.is_ok());
    assert_eq!(r.revoked, Some(3));
    let j = r.to_json();
    assert_eq!(j["ok"], 60);
    assert_eq!(j["mode"], "closed");
    assert_eq!(j["identity"]["source"], "pinned with --enclave-key");
    // The CPU of the given processes, read from /proc in clock ticks (10 ms): 60 requests
    // may cost the host less than one tick, so a figure of 0 is a measurement, not a miss
    // (it failed CI once).
    for (who, pid) in [("host", hp), ("enclave", ep)] {
        assert_eq!(j["cpu"][who]["pid"], serde_json::json!(pid), "{j}");
        assert!(j["cpu"][who]["us_per_request"].as_f64().is_some_and(|v| v >= 0.0), "{j}");
    }
    assert!(j["ratios"]["enclave_cpu_over_raw_signature"].as_f64().is_some_and(|v| v >= 0.0), "{j}");
    assert!(j["latency_ms"]["p99"].as_f64().unwrap() >= j["latency_ms"]["p50"].as_f64().unwrap());
    assert!(j["raw_k256"]["threads_1_per_s"].as_f64().unwrap() > 0.0);
    let st = enclave_status(&s);
    // 3 sessions: 4 warm-up requests (the concurrency) plus 60.
    assert_eq!((st.sessions_total, st.sessions_active, st.signatures), (3, 0, 64));

    // The host's word, open loop: works, and says it is not verified.
    let r = execute(&args(&format!("--host {url} --trust-host-identity --rate 200 --requests 40 {common}")), &quiet)
        .await
        .unwrap();
    assert_eq!(r.tally.ok, 40, "{}", r.human());
    let j = r.to_json();
    assert_eq!((j["identity"]["verified"].clone(), j["mode"].clone()), (false.into(), "open".into()));
    assert!(r.human().contains("NOT VERIFIED"));
    assert_eq!(j["latency_from_schedule_ms"]["count"], 40);
    // Every start's lag behind its schedule is kept (the schedule runs on a thread of its own).
    assert_eq!(j["schedule"]["start_lag_ms"]["count"], 40, "{j}");
    assert!(j["cpu"]["host"].is_null(), "no PIDs given: no CPU figures");

    // A trust file entry (as `bridle trust attest` writes it).
    let tf = dir.path().join("trust.json");
    let st = enclave_status(&s);
    let entry = serde_json::json!({"format": "bridle-trust/v1", "hosts": {target::normalize_url(&url): {
        "identity_public_key": format!("0x{}", hex::encode(&st.identity_public_key)),
        "identity_address": st.identity_address, "method": "pinned", "established_at": 1}}});
    std::fs::write(&tf, entry.to_string()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = execute(&args(&format!("--host {url} --trust-file {} --requests 8 {common}", tf.display())), &quiet)
        .await
        .unwrap();
    assert_eq!(r.tally.ok, 8);
    assert!(r.identity.source.contains("trust file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_counted_by_code() {
    let s = Stack::start();
    let st = enclave_status(&s);
    let (public_key, address) = target::parse_identity_key(&hex::encode(&st.identity_public_key)).unwrap();
    let t = target::Target {
        url: s.host.url.clone(),
        http: target::http_client(4, Duration::from_secs(10)).unwrap(),
        identity: Identity { public_key, address, source: "test".into(), verified: true },
        clock_offset: 0,
        chain_id: 31337,
        rpc: false,
    };
    let g = t.grant(&target::load_policy(31337, 2, 600, crate::now()).unwrap()).await.unwrap();
    assert_eq!(t.sign(&g, true).await, Outcome::Ok);
    assert_eq!(t.sign(&g, true).await, Outcome::Ok);
    match t.sign(&g, true).await {
        Outcome::Refused(code) => assert!(code.contains("limit") || code.contains("cap"), "{code}"),
        o => panic!("{o:?}"),
    }
    // A stamp for another session: the host refuses it 401, an error here.
    let other = t.grant(&target::load_policy(31337, 2, 600, crate::now()).unwrap()).await.unwrap();
    let forged = target::LoadSession {
        owner: other.owner.clone(),
        agent: other.agent.clone(),
        session: other.session,
        key: g.key.clone(),
        nonce: Default::default(),
    };
    match t.sign(&forged, true).await {
        Outcome::Error(e) => assert!(e.starts_with("http_401"), "{e}"),
        o => panic!("{o:?}"),
    }
    // The same through the JSON-RPC face (eth_signTransaction).
    let tr = target::Target { rpc: true, http: t.http.clone(), identity: t.identity.clone(), url: t.url.clone(), ..t };
    let h = tr.grant(&target::load_policy(31337, 2, 600, crate::now()).unwrap()).await.unwrap();
    assert_eq!(tr.sign(&h, true).await, Outcome::Ok);
    assert_eq!(tr.sign(&h, true).await, Outcome::Ok);
    match tr.sign(&h, true).await {
        Outcome::Refused(code) => assert!(code.contains("limit") || code.contains("cap"), "{code}"),
        o => panic!("{o:?}"),
    }
    match tr.sign(&forged, true).await {
        Outcome::Error(e) => assert_eq!(e, "rpc_unauthenticated"),
        o => panic!("{o:?}"),
    }
}
