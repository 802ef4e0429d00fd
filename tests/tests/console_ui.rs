//! The owner console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! Playwright for Python (tests/console/console_e2e.py), against `bridle dev`. An injected
//! EIP-1193 wallet signs with eth-account; the agent signs through the host API with the
//! `bridle` CLI. Screenshots go to target/console-screenshots/.
//!
//! Needs `chromium` and `pip install playwright` (scripts/install-test-deps.sh); without
//! them the test says so and passes, except under CI=true, where it fails.

use bridle_tests::{bin, now, repo_root, write_key_file, Actor, Dev};
use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BRIDLE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

fn playwright() -> bool {
    Command::new("python3")
        .args(["-c", "import playwright.sync_api, eth_account"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn owner_console_grants_shows_spend_approves_verifies_and_revokes_in_chromium() {
    let (Some(chromium), true) = (chromium(), playwright()) else {
        let msg = "the console browser test needs Debian's chromium and Playwright for Python \
                   (./scripts/install-test-deps.sh)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let dev = Dev::start();
    let dir = dev.dir.path();
    let owner = Actor::random();
    let agent = Actor::random();
    let agent_file = dir.join("agent.key");
    write_key_file(&agent_file, "agent", &agent);
    let policy = dir.join("console-e2e.toml");
    std::fs::write(
        &policy,
        format!(
            r#"name = "console-e2e"
chains = [31337]
valid_until = {}
quota = 20
escalate = {{ above_value = "40 USDC", above_usd = "1000 USD", ttl = "10m" }}
prices = {{ USDC = "1.00" }}
owner_exposure_ceiling = "5000 USD"

[tokens]
USDC = {{ address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }}

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[calls]]
target = "0x00000000000000000000000000000000000057e0"
functions = ["store(bytes)"]

[[limits]]
max = "100 USDC"
per = "day"

[[rate_limits]]
max = 20
window = "1 minute"
"#,
            now() + 6 * 3600
        ),
    )
    .unwrap();
    let shots = repo_root().join("target/console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("python3")
        .arg(repo_root().join("tests/console/console_e2e.py"))
        .args(["--url", &dev.url])
        .arg("--root")
        .arg(dir.join("dev/mock-root.pem"))
        .arg("--bridle")
        .arg(bin("bridle"))
        .arg("--trust-file")
        .arg(dev.trust_file())
        .args(["--owner-key", &owner.private_key_hex()])
        .arg("--agent-key-file")
        .arg(&agent_file)
        .args(["--agent-public-key", &agent.public_key_sec1().to_string()])
        .arg("--policy")
        .arg(&policy)
        .arg("--screenshots")
        .arg(&shots)
        .arg("--chromium")
        .arg(&chromium)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "console_e2e.py failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("result line");
    assert_eq!(result["ok"], true);
    assert!(result["screenshots"].as_u64().unwrap() >= 8, "{result}");
    assert!(shots.join("01-opened.png").exists());
}
