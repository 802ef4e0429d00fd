//! Configuration by file, environment and flags: precedence flag > env > file > default,
//! checked on the real `bridle-host` binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The binary with no BRIDLE_* variables inherited from the caller's environment.
fn host() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bridle-host"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BRIDLE_") {
            c.env_remove(k);
        }
    }
    c
}

fn print_config(c: &mut Command) -> serde_json::Value {
    let out = c.arg("--print-config").output().expect("run bridle-host");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.toml");
    std::fs::write(
        &file,
        r#"
enclave = "unix:/run/file.sock"
listen = "127.0.0.1:9001"
db = "file.sqlite"
log_format = "json"
pool = 3
call_timeout = 30
probe_interval = 0
"#,
    )
    .unwrap();

    // File over defaults.
    let v = print_config(host().arg("--config").arg(&file));
    assert_eq!(v["enclave"], "unix:/run/file.sock");
    assert_eq!(v["listen"], "127.0.0.1:9001");
    assert_eq!(v["db"], "file.sqlite");
    assert_eq!(v["log_format"], "json");
    assert_eq!(v["pool"], 3);
    assert_eq!(v["call_timeout"], 30);
    assert_eq!(v["probe_interval"], 0);
    assert_eq!(v["body_limit"], 1 << 20);
    assert_eq!(v["sources"]["pool"], "file");
    assert_eq!(v["sources"]["body_limit"], "default");

    // Environment over file; flag over environment.
    let v = print_config(
        host()
            .env("BRIDLE_CONFIG", &file)
            .env("BRIDLE_POOL", "5")
            .env("BRIDLE_DB", "env.sqlite")
            .env("BRIDLE_LOG_FORMAT", "text")
            .args(["--db", "flag.sqlite", "--call-timeout", "7"]),
    );
    assert_eq!(v["config_file"], file.display().to_string());
    assert_eq!((v["pool"].clone(), v["sources"]["pool"].clone()), (5.into(), "env".into()));
    assert_eq!((v["db"].clone(), v["sources"]["db"].clone()), ("flag.sqlite".into(), "flag".into()));
    assert_eq!(v["log_format"], "text");
    assert_eq!(v["sources"]["log_format"], "env");
    assert_eq!((v["call_timeout"].clone(), v["sources"]["call_timeout"].clone()), (7.into(), "flag".into()));
    assert_eq!(v["listen"], "127.0.0.1:9001");
    assert_eq!(v["sources"]["listen"], "file");

    // No file: defaults, with the enclave from the environment.
    let v = print_config(host().env("BRIDLE_ENCLAVE", "vsock:16:5000"));
    assert_eq!(v["enclave"], "vsock:16:5000");
    assert_eq!(v["sources"]["enclave"], "env");
    assert_eq!(v["listen"], "127.0.0.1:8547");
    assert_eq!(v["db"], "bridle-host.sqlite");
    assert_eq!(v["pool"], 8);
    assert_eq!(v["call_timeout"], 10);
    assert_eq!(v["probe_interval"], 5);
    assert_eq!(v["log_format"], "text");
    assert_eq!(v["config_file"], serde_json::Value::Null);
}

#[test]
fn bad_config_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.toml");

    std::fs::write(&file, "enclave = \"unix:/x\"\nlisten_addr = \"127.0.0.1:1\"\n").unwrap();
    let out = host().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_addr") && err.contains(&file.display().to_string()), "{err}");

    let out = host().arg("--config").arg(dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));

    let out = host().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BRIDLE_ENCLAVE"));
}

#[test]
fn the_host_runs_from_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("from-file.sqlite");
    let file = dir.path().join("host.toml");
    std::fs::write(
        &file,
        format!(
            "enclave = \"unix:{}\"\nlisten = \"127.0.0.1:0\"\ndb = \"{}\"\nlog_format = \"json\"\n",
            dir.path().join("no-enclave.sock").display(),
            db.display()
        ),
    )
    .unwrap();
    let mut child = host()
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bridle-host");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("bridle-host listening on http://127.0.0.1:"), "{line:?}");
    // JSON logs, as the file asked: the first stderr line is a JSON object.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    stderr.read_line(&mut log).unwrap();
    let v: serde_json::Value = serde_json::from_str(&log).unwrap_or_else(|e| panic!("{e}: {log:?}"));
    assert!(v["fields"]["message"].is_string(), "{v}");
    assert!(db.exists(), "the database named in the file is created");
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    // Keep reading both pipes until the host exits (a closed pipe would fail its writes).
    let rest = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let _ = std::io::read_to_string(stdout);
    let status = child.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("bridle-host stopped"), "{rest}");
}

#[test]
fn database_url_from_each_layer_never_shows_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.toml");
    std::fs::write(
        &file,
        "enclave = \"vsock:16:5000\"\ndatabase_url = \"postgres://bridle:file-pw-1@db.internal/bridle\"\n",
    )
    .unwrap();
    let v = print_config(host().arg("--config").arg(&file));
    assert_eq!(v["database_url"], "postgres://bridle:***@db.internal/bridle");
    assert_eq!(v["database"], v["database_url"]);
    assert_eq!((v["backend"].as_str(), v["sources"]["database_url"].as_str()), (Some("postgres"), Some("file")));
    assert!(v["host_id"].as_str().unwrap().ends_with("/vsock:16:5000"), "{v}");
    assert_eq!(v["sources"]["host_id"], "default");
    assert!(!v.to_string().contains("file-pw-1"), "{v}");

    let v = print_config(
        host()
            .arg("--config")
            .arg(&file)
            .env("BRIDLE_DATABASE_URL", "postgresql://u:env-pw-2@10.0.0.5:6432/x?sslmode=disable")
            .args(["--host-id", "host-a"]),
    );
    assert_eq!(v["database_url"], "postgresql://u:***@10.0.0.5:6432/x?sslmode=disable");
    assert_eq!(v["sources"]["database_url"], "env");
    assert_eq!((v["host_id"].as_str(), v["sources"]["host_id"].as_str()), (Some("host-a"), Some("flag")));
    assert!(!v.to_string().contains("env-pw-2"), "{v}");

    // SQLite by URL; the default stays the SQLite file.
    let v = print_config(host().args(["--enclave", "vsock:16:5000", "--database-url", "sqlite:/tmp/x.sqlite"]));
    assert_eq!((v["backend"].as_str(), v["database"].as_str()), (Some("sqlite"), Some("sqlite:/tmp/x.sqlite")));
    let v = print_config(host().args(["--enclave", "vsock:16:5000"]));
    assert_eq!((v["backend"].as_str(), v["database_url"].clone()), (Some("sqlite"), serde_json::Value::Null));

    // Both a SQLite path and a URL, or a URL of another kind: refused, password unshown.
    for args in [
        &["--db", "x.sqlite", "--database-url", "postgres://u:flag-pw-3@h/d"][..],
        &["--database-url", "mysql://u:flag-pw-3@h/d"][..],
    ] {
        let out = host().args(["--enclave", "vsock:16:5000"]).args(args).arg("--print-config").output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("database_url") && !err.contains("flag-pw-3"), "{err}");
    }
}

/// Every socket is bound before the host says it is listening: a cluster port that is taken
/// fails the start (no "listening" line, a clear error), instead of a host that announced
/// itself and exits a moment later. A free one is named on its own line, first.
#[test]
fn the_cluster_listener_is_bound_before_the_host_says_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = |listen: &str| {
        let mut c = host();
        c.arg("--enclave")
            .arg(format!("unix:{}", dir.path().join("no-enclave.sock").display()))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("host.sqlite"))
            .args(["--cluster-listen", listen, "--cluster-advertise", "http://127.0.0.1:1", "--cluster-bootstrap"])
            .args(["--probe-interval", "0"]);
        c
    };

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_at = taken.local_addr().unwrap().to_string();
    let out = cluster(&taken_at).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("listening on"), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen for the cluster on {taken_at}")), "{err}");

    let mut child = cluster("127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut first, mut second) = (String::new(), String::new());
        let _ = stdout.read_line(&mut first).and_then(|_| stdout.read_line(&mut second));
        let _ = tx.send((first, second));
    });
    let lines = rx.recv_timeout(std::time::Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let (first, second) = lines.expect("two lines within 20 s");
    let at = first.trim().strip_prefix("bridle-host cluster listener on ").unwrap_or_else(|| panic!("{first:?}"));
    let at: std::net::SocketAddr = at.parse().unwrap();
    assert!(at.ip().is_loopback() && at.port() != 0, "{at}");
    assert!(second.starts_with("bridle-host listening on http://127.0.0.1:"), "{second:?}");
}

/// `session_retention_days`: 30 unless set; from the file, the environment or the flag, in
/// that order of precedence; 0 keeps sessions for good.
#[test]
fn session_retention_days_from_each_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.toml");
    std::fs::write(&file, "enclave = \"unix:/run/file.sock\"\nsession_retention_days = 0\n").unwrap();
    let v = print_config(host().env("BRIDLE_ENCLAVE", "vsock:16:5000"));
    assert_eq!(
        (v["session_retention_days"].clone(), v["sources"]["session_retention_days"].clone()),
        (30.into(), "default".into())
    );
    let v = print_config(host().arg("--config").arg(&file));
    assert_eq!(
        (v["session_retention_days"].clone(), v["sources"]["session_retention_days"].clone()),
        (0.into(), "file".into())
    );
    let v = print_config(host().arg("--config").arg(&file).env("BRIDLE_SESSION_RETENTION_DAYS", "90"));
    assert_eq!(
        (v["session_retention_days"].clone(), v["sources"]["session_retention_days"].clone()),
        (90.into(), "env".into())
    );
    let v = print_config(
        host()
            .arg("--config")
            .arg(&file)
            .env("BRIDLE_SESSION_RETENTION_DAYS", "90")
            .args(["--session-retention-days", "7"]),
    );
    assert_eq!(
        (v["session_retention_days"].clone(), v["sources"]["session_retention_days"].clone()),
        (7.into(), "flag".into())
    );
}

/// `audit_retention_days`: 0 (for good) unless set; from the file, the environment or the
/// flag, in that order of precedence.
#[test]
fn audit_retention_days_from_each_layer() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.toml");
    std::fs::write(&file, "enclave = \"unix:/run/file.sock\"\naudit_retention_days = 365\n").unwrap();
    let seen = |v: serde_json::Value| (v["audit_retention_days"].clone(), v["sources"]["audit_retention_days"].clone());
    let v = print_config(host().env("BRIDLE_ENCLAVE", "vsock:16:5000"));
    assert_eq!(seen(v), (0.into(), "default".into()));
    let v = print_config(host().arg("--config").arg(&file));
    assert_eq!(seen(v), (365.into(), "file".into()));
    let v = print_config(host().arg("--config").arg(&file).env("BRIDLE_AUDIT_RETENTION_DAYS", "90"));
    assert_eq!(seen(v), (90.into(), "env".into()));
    let v = print_config(
        host()
            .arg("--config")
            .arg(&file)
            .env("BRIDLE_AUDIT_RETENTION_DAYS", "90")
            .args(["--audit-retention-days", "7"]),
    );
    assert_eq!(seen(v), (7.into(), "flag".into()));
}
