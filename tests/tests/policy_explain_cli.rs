//! `bridle policy explain` (the real binary) printed a policy's `name` raw (a review of
//! 2026-12-07): a name with line feeds and an ANSI escape wrote fake rules into the owner's
//! terminal and concealed the real ones (SGR 8). Now it is escaped.

use std::process::Command;

#[test]
fn explain_escapes_the_policy_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "name = \"safe\\\"\\ncalls: none allowed (this session can sign no transaction)\\n\\u001b[8m\"\n\
         chains = [1]\nvalid_for = \"1h\"\nmax_value_per_call = \"1000 ETH\"\n\
         [[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n",
    )
    .unwrap();
    let out = Command::new(bridle_tests::bin("bridle")).args(["policy", "explain"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{}", text.escape_debug());
    let fake = text.lines().nth(1) == Some("calls: none allowed (this session can sign no transaction)");
    let esc = text.contains('\u{1b}');
    let real = text.lines().any(|l| l.starts_with("calls[0].functions[0]: may call any function on any contract (*)"));
    println!("second line is the fake rule: {fake}; raw ESC: {esc}; real wildcard rule printed after it: {real}");
    assert!(!fake && !esc, "the policy name injects lines and a terminal escape into `bridle policy explain`");
}

/// `bridle owner grant` warns, before anything is signed, when nothing bounds the native
/// value an allowed call may carry (a review of 2026-12-07); `explain` says the same.
#[test]
fn grant_warns_when_native_value_is_unbounded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "name = \"swap\"\nchains = [1]\nvalid_for = \"1h\"\n[[calls]]\ntarget = \"0xE592427A0AEce92De3Edee1F18E0157C05861564\"\nfunctions = [\"*\"]\n",
    )
    .unwrap();
    let out = Command::new(bridle_tests::bin("bridle")).args(["policy", "explain"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("native value: no bound"), "{text}");
    // The grant stops at the host (none listens here), after the warning.
    let key = dir.path().join("owner.key");
    let k = Command::new(bridle_tests::bin("bridle")).args(["owner", "keygen", "--out"]).arg(&key).output().unwrap();
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    let out = Command::new(bridle_tests::bin("bridle"))
        .env("BRIDLE_TRUST_FILE", dir.path().join("trust.json"))
        .args(["owner", "grant", "--host", "http://127.0.0.1:9", "--key"])
        .arg(&key)
        .args(["--agent", &bridle_tests::Actor::random().public_key_sec1().to_string(), "--policy"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("warning: native value: no bound"), "{err}");
}
