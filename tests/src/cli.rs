//! The `bridle` CLI in tests: each run with its own trust file (never the user's), and the
//! enclave identity learned the way a careful user would — not from the host.

use crate::{bin, EnclaveProc};
use bridle_common::protocol::{Call, Reply, StatusQuery};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `bridle` binary with `trust` as its trust file. Every test runs the CLI through this:
/// a run on the user's own trust file (`~/.config/bridle/trust.json`) would leave an identity
/// there for a loopback port that a later test's host reuses, and that test's CLI would then
/// refuse its own enclave (a CI failure of 2026-12-06: `bridle dev` in `attestation_e2e`
/// wrote to it, and `audit_e2e`'s export later met that entry).
pub fn bridle_cmd(trust: &Path) -> Command {
    let mut c = Command::new(bin("bridle"));
    c.env("BRIDLE_TRUST_FILE", trust);
    c
}

/// Run `bridle` in `dir` against `host`, with the trust file `trust`.
pub fn bridle_with(dir: &Path, host: &str, trust: &Path, args: &[&str]) -> Output {
    bridle_cmd(trust).current_dir(dir).env("BRIDLE_HOST", host).args(args).output().expect("run bridle")
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// No test starts the CLI except through `bridle_cmd`, so none reads or writes the user's
    /// trust file (the CI failure named on `bridle_cmd`).
    #[test]
    fn every_test_runs_the_cli_on_its_own_trust_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        sources(&root.join("tests"), &mut files);
        assert!(files.len() > 40, "found only {files:?}");
        let needle = ["Command::new(bin(", "\"bridle\"))"].concat();
        let offenders: Vec<_> = files
            .iter()
            .filter(|p| !p.ends_with("src/cli.rs"))
            .filter(|p| std::fs::read_to_string(p).unwrap().replace([' ', '\n'], "").contains(&needle))
            .collect();
        assert!(offenders.is_empty(), "run the CLI through cli::bridle_cmd in {offenders:?}");
    }
}
