//! The README's five-minute walkthrough, run through the real `bridle` binary:
//! dev → keys → grant → sign → denied → status → revoke; and the policy tools.

use bridle_tests::Proc;
use std::path::Path;
use std::process::Output;

/// Every run uses the test's own trust file (`bridle dev` writes its enclave there).
fn bridle(dir: &Path, host: &str, args: &[&str]) -> Output {
    bridle_tests::cli::bridle_cmd(&dir.join("trust.json"))
        .current_dir(dir)
        .env("BRIDLE_HOST", host)
        .args(args)
        .output()
        .expect("run bridle")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("{name} in {out}"))
        .to_string()
}

fn example_policy() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/usdc-daily.toml").display().to_string()
}

#[test]
fn walkthrough() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cmd = bridle_tests::cli::bridle_cmd(&dir.join("trust.json"));
    cmd.arg("dev").arg("--dir").arg(dir.join("dev")).arg("--listen").arg("127.0.0.1:0").current_dir(dir);
    let mut dev = Proc::spawn_until(cmd, "host:");
    let host = dev.line.split_whitespace().last().unwrap().to_string();
    assert!(host.starts_with("http://127.0.0.1:"), "{host}");
    // `bridle dev` trusted its own enclave before printing its URL: verified with the mock
    // root, any image (the mock's measurements pin nothing), and recorded as such.
    let trust = ok(&bridle(dir, &host, &["trust", "show", "--host", &host]));
    assert!(trust.contains("attested against root") && trust.contains("any image (development only)"), "{trust}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("trust.json")).unwrap().permissions().mode() & 0o777, 0o600);

    ok(&bridle(dir, &host, &["owner", "keygen", "--out", "owner.key"]));
    let agent_out = ok(&bridle(dir, &host, &["agent", "keygen", "--out", "agent.key"]));
    assert!(agent_out.contains("agent public key: 0x"));
    // Key files are private.
    for k in ["owner.key", "agent.key"] {
        assert_eq!(std::fs::metadata(dir.join(k)).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // keygen refuses to overwrite.
    assert!(!bridle(dir, &host, &["owner", "keygen", "--out", "owner.key"]).status.success());

    let policy = example_policy();
    // No flag: the identity `bridle dev` set up is the one the grant is checked against.
    let grant =
        ok(&bridle(dir, &host, &["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", &policy]));
    assert!(grant.contains("verified:    the binding is signed by the trusted enclave identity"), "{grant}");
    assert!(grant.contains("user_data = the binding digest"), "{grant}");
    let session = field(&grant, "session:");
    let hash = field(&grant, "policy hash:");
    assert!(hash.starts_with("0x") && hash.len() == 66, "{hash}");

    let sign = |amount: &str, nonce: &str| {
        bridle(
            dir,
            &host,
            &[
                "agent",
                "sign-tx",
                "--key",
                "agent.key",
                "--session",
                &session,
                "--to",
                "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "--call",
                "transfer(address,uint256)",
                "--arg",
                "0x000000000000000000000000000000000000dEaD",
                "--arg",
                amount,
                "--chain-id",
                "31337",
                "--nonce",
                nonce,
                "--raw",
            ],
        )
    };
    let raw = ok(&sign("60000000", "0"));
    let raw = hex::decode(raw.trim().trim_start_matches("0x")).unwrap();
    assert_eq!(bridle_tests::recover_raw(&raw).to_string(), session);

    let denied = sign("50000000", "1");
    assert_eq!(denied.status.code(), Some(1));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("[spend_cap]") && err.contains("rule limits[0]"), "{err}");

    let status = ok(&bridle(dir, &host, &["owner", "status", "--session", &session]));
    assert!(status.starts_with("signed by the enclave 0x"), "{status}");
    assert!(status.contains("spent 60 of 100 USDC"), "{status}");
    assert_eq!(field(&status, "policy:"), hash, "the enclave enforces the policy the owner signed");

    let revoked = ok(&bridle(dir, &host, &["owner", "revoke", "--key", "owner.key", "--session", &session]));
    assert!(revoked.contains(&format!("revoked: {session}")) && revoked.contains("signed by the enclave"), "{revoked}");
    let after = sign("1", "2");
    assert!(String::from_utf8_lossy(&after.stderr).contains("[revoked]"));
    // A refused owner command says what a refusal proves: the host's word, the nonce spent.
    let refused =
        bridle(dir, &host, &["owner", "update", "--key", "owner.key", "--session", &session, "--policy", &policy]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("[revoked]") && err.contains("a refusal is the host's word"), "{err}");
    assert!(err.contains("is spent and can never take effect"), "{err}");

    // revoke-all on a fresh pair of sessions.
    let g1 =
        ok(&bridle(dir, &host, &["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", &policy]));
    let g2 =
        ok(&bridle(dir, &host, &["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", &policy]));
    let out = ok(&bridle(dir, &host, &["owner", "revoke-all", "--key", "owner.key"]));
    assert!(out.contains("revoked 2 session(s)"), "{out}");
    assert!(out.contains(&field(&g1, "session:")) && out.contains(&field(&g2, "session:")));
    // Ctrl-C / SIGTERM stops `bridle dev` cleanly, and its enclave and host with it.
    let enclave_sock = dir.join("dev/enclave.sock");
    assert!(dev.terminate().is_some_and(|s| s.success()), "bridle dev exits cleanly on SIGTERM");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(std::os::unix::net::UnixStream::connect(&enclave_sock).is_err(), "the dev enclave stopped with bridle dev");
    assert!(reqwest::blocking::get(format!("{host}/health")).is_err(), "the dev host stopped with bridle dev");
}

#[test]
fn policy_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let policy = example_policy();
    let out = ok(&bridle(dir, "http://unused", &["policy", "check", &policy]));
    assert!(out.starts_with("ok:"), "{out}");
    let explain = ok(&bridle(dir, "http://unused", &["policy", "explain", &policy]));
    assert!(explain.contains("limits[0]: spend at most 100 USDC per day"), "{explain}");
    assert!(explain.contains("transfer(address,uint256) (0xa9059cbb)"), "{explain}");

    std::fs::write(
        dir.join("bad.toml"),
        "name = 'x'\nchains = [1]\nvalid_for = '1h'\n[[limits]]\nmax = '5 DOGE'\nper = 'day'\n",
    )
    .unwrap();
    let bad = bridle(dir, "http://unused", &["policy", "check", "bad.toml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown unit `DOGE`"));

    // simulate: the same engine, offline.
    let req = r#"{
      "requests": [
        {"at": "2026-11-23T10:00:00Z", "transaction": {"eip1559": {"chain_id": 31337, "nonce": 0, "max_fee_per_gas": 1000000000, "max_priority_fee_per_gas": 1, "gas_limit": 60000,
          "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
          "data": "0xa9059cbb000000000000000000000000000000000000000000000000000000000000dead0000000000000000000000000000000000000000000000000000000003938700"}}},
        {"at": "2026-11-23T11:00:00Z", "transaction": {"eip1559": {"chain_id": 31337, "nonce": 1, "max_fee_per_gas": 1000000000, "max_priority_fee_per_gas": 1, "gas_limit": 60000,
          "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
          "data": "0xa9059cbb000000000000000000000000000000000000000000000000000000000000dead0000000000000000000000000000000000000000000000000000000002faf080"}}},
        {"at": "2026-11-23T12:00:00Z", "transaction": {"eip1559": {"chain_id": 1, "nonce": 1, "max_fee_per_gas": 1000000000, "max_priority_fee_per_gas": 1, "gas_limit": 60000,
          "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "data": "0x"}}}
      ]
    }"#;
    std::fs::write(dir.join("req.json"), req).unwrap();
    let sim = bridle(dir, "http://unused", &["policy", "simulate", &policy, "--request", "req.json"]);
    let out = String::from_utf8_lossy(&sim.stdout);
    assert_eq!(sim.status.code(), Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "request 0: allowed (charges 60 USDC)");
    assert!(lines[1].contains("[spend_cap]") && lines[1].contains("spent 60 USDC, asking 50 USDC"), "{}", lines[1]);
    assert!(lines[2].contains("[chain_not_allowed]"), "{}", lines[2]);
}
