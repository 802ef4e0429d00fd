//! The `bridle` CLI in tests: each run with its own trust file (never the user's), and the
//! enclave identity learned the way a careful user would — not from the host.

use crate::{bin, EnclaveProc};
use bridle_common::protocol::{Call, Reply, StatusQuery};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `bridle` in `dir` against `host`, with the trust file `trust`.
pub fn bridle_with(dir: &Path, host: &str, trust: &Path, args: &[&str]) -> Output {
    Command::new(bin("bridle"))
        .current_dir(dir)
        .env("BRIDLE_HOST", host)
        .env("BRIDLE_TRUST_FILE", trust)
        .args(args)
        .output()
        .expect("run bridle")
}

/// stdout and stderr of a run, for messages.
pub fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The CLI for one host and trust file.
pub struct Cli {
    pub dir: PathBuf,
    pub host: String,
    pub trust: PathBuf,
}

impl Cli {
    /// `dir/trust.json` as the trust file.
    pub fn new(dir: &Path, host: &str) -> Cli {
        Cli { dir: dir.to_path_buf(), host: host.to_string(), trust: dir.join("trust.json") }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        bridle_with(&self.dir, &self.host, &self.trust, args)
    }

    /// Run; panic unless it succeeds; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "bridle {args:?} failed:\n{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Run; panic if it succeeds; (stdout, stderr).
    pub fn fails(&self, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        assert!(!o.status.success(), "bridle {args:?} should have failed:\n{}", text(&o));
        (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
    }

    /// Trust `key_hex` for this CLI's host (`bridle trust pin`).
    pub fn pin(&self, key_hex: &str) {
        self.ok(&["trust", "pin", "--host", &self.host, "--identity-key", key_hex]);
    }
}

impl EnclaveProc {
    /// The enclave's identity public key (0x-hex SEC1), asked over its own socket: what a
    /// test knows without believing any host.
    pub fn identity_key_hex(&self) -> String {
        match self.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })) {
            Ok(Reply::Status(s)) => format!("0x{}", hex::encode(&s.identity_public_key)),
            other => panic!("status over the socket: {other:?}"),
        }
    }
}
