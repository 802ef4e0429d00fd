//! The `bridle-host` binary: starts without an enclave, prints its listening line,
//! connects when the enclave comes, shuts down gracefully on SIGTERM.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let db = dir.path().join("bin.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bridle-host"))
        .args(["--enclave", &format!("unix:{}", sock.display()), "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(&db)
        .args(["--log-format", "json", "--pool", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bridle-host");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("bridle-host listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let c = http();
    let r = c.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);

    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let r = c.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    })
    .await
    .unwrap();
    let code = code.expect("bridle-host did not exit after SIGTERM");
    assert!(code.success(), "{code:?}");
    assert!(db.exists());
    enclave.stop().await;
}
