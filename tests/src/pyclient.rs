//! Independent clients written in Python (`tests/py/*.py`), driven by the end-to-end tests:
//! each reads one JSON case on stdin and prints its result as the last line of stdout.

use crate::repo_root;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// Panic with `missing` and how to install the test dependencies unless `python3` can run
/// `import {modules}`.
pub fn require(modules: &str, missing: &str) {
    let out = Command::new("python3").args(["-c", &format!("import {modules}")]).output().expect("python3");
    assert!(
        out.status.success(),
        "{missing}: run scripts/install-test-deps.sh (pip install -r tests/py/requirements.txt)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `tests/py/{script}` with `case` on its stdin (off the async runtime's threads);
/// panic (`{name} failed`) unless it succeeds. Returns the JSON of its last stdout line and
/// its whole output (stdout and stderr, for messages).
pub async fn run(script: &str, name: &str, case: &Value) -> (Value, String) {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/py").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(case.to_string().as_bytes()).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("--- stdout\n{stdout}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed:\n{all}");
    let r: Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {all}"));
    (r, all)
}
