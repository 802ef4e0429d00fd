//! The console's browser tests: the system Chromium (with Playwright for Python), a policy
//! file to grant, and a script of `tests/console/` run against a `bridle dev` behind it —
//! its observations (the last line it prints, JSON).

use crate::{repo_root, Dev};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium, when it and Playwright for Python are installed; `None` (the test
/// skips, saying why) elsewhere — never under CI, which installs both.
pub fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("BRIDLE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists()));
    let playwright = Command::new("python3")
        .args(["-c", "import playwright.sync_api, eth_account"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if let (Some(c), true) = (found, playwright) {
        return Some(c);
    }
    let msg =
        "the console browser tests need Debian's chromium and Playwright for Python (./scripts/install-test-deps.sh)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// A policy of one token and one cap, valid for 6 hours, written to `dir/name.toml`.
pub fn policy_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\nchains = [31337]\nvalid_until = {}\n\n[tokens]\nUSDC = {{ address = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\", decimals = 6 }}\n\n[[calls]]\ntarget = \"USDC\"\nfunctions = [\"transfer(address,uint256)\"]\n\n[[limits]]\nmax = \"100 USDC\"\nper = \"day\"\n",
            crate::now() + 6 * 3600
        ),
    )
    .unwrap();
    path
}

/// `python3 tests/console/<script>` against `dev` (its URL and development root), granting
/// `policy`, in `chromium`; the caller adds the script's own arguments.
pub fn page_script(dev: &Dev, script: &str, policy: &Path, chromium: &Path) -> Command {
    let mut c = Command::new("python3");
    c.arg(repo_root().join("tests/console").join(script))
        .args(["--url", &dev.url])
        .arg("--root")
        .arg(dev.dir.path().join("dev/mock-root.pem"))
        .arg("--policy")
        .arg(policy)
        .arg("--chromium")
        .arg(chromium);
    c
}

/// Run a page script: its observations (the last line of its output, JSON).
pub fn observations(script: &str, cmd: &mut Command) -> Value {
    let out = cmd.output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let o: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    eprintln!("observations: {o:#}");
    o
}
