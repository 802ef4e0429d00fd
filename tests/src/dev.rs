//! `bridle dev` as the README runs it: enclave and host together, a movable clock.

use super::*;

/// `bridle dev` (development enclave and host together), as the README runs it, on a free
/// port, with a movable enclave clock. Killed on drop.
pub struct Dev {
    pub proc: Proc,
    pub url: String,
    pub clock_file: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Dev {
    pub fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let clock_file = dir.path().join("clock-offset");
        std::fs::write(&clock_file, "0").unwrap();
        let mut cmd = cli::bridle_cmd(&dir.path().join("trust.json"));
        cmd.arg("dev")
            .arg("--dir")
            .arg(dir.path().join("dev"))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--clock-offset-file")
            .arg(&clock_file);
        let proc = Proc::spawn_until(cmd, "host:");
        let url = proc.line.split_whitespace().find(|w| w.starts_with("http://")).expect("host url").to_string();
        Dev { proc, url, clock_file, dir }
    }

    /// Move the enclave's clock by `secs` from real time.
    pub fn set_clock_offset(&self, secs: i64) {
        std::fs::write(&self.clock_file, secs.to_string()).unwrap();
    }

    /// The trust file `bridle dev` wrote its enclave's identity to (the CLI runs use it).
    pub fn trust_file(&self) -> PathBuf {
        self.dir.path().join("trust.json")
    }

    /// Run the `bridle` CLI against this host; panics unless it succeeds; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = cli::bridle_cmd(&self.trust_file())
            .args(args)
            .env("BRIDLE_HOST", &self.url)
            .current_dir(self.dir.path())
            .output()
            .expect("run bridle");
        assert!(
            out.status.success(),
            "bridle {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}
