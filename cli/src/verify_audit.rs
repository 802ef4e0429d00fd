//! `bridle verify audit` and `bridle audit export`: the signed audit log (R-AUD-1).
//!
//! ```text
//! bridle audit export [--host <URL>] [--out <FILE>] [--enclave <0x…>]
//! bridle verify audit <FILE> [--identity-key <HEX>] [--enclave <0x…>] [--json]
//! ```
//!
//! The export is the host's stored copy of the enclave's hash-chained log
//! (`GET /v1/audit/export`: `{format, enclave, identity_public_key, entries, head}`). Nothing
//! in it is trusted: `verify audit` recomputes every entry's hash and checks that
//!
//! 1. the head is signed by the enclave identity key — the attested one when
//!    `--identity-key` (an attestation document's `public_key`, as `bridle verify
//!    attestation` prints it) or `--enclave` (its address) is given;
//! 2. the entries run from seq 0 without a gap, each linking to the one before it (entry 0
//!    to the enclave's genesis hash);
//! 3. the last entry is the one the head signs.
//!
//! It reports the first broken link: which entry is missing, changed, duplicated or out of
//! order, or what is wrong with the head.
//!
//! Without `--identity-key` or `--enclave`, the log is checked against the identity the file
//! itself names: that proves it complete and self-consistent, not that it comes from an
//! attested enclave (a warning says so).
//!
//! Exit status: 0 valid; 1 invalid (the first broken link on stderr); 2 usage error or an
//! input that could not be read.

use alloy_primitives::{Address, Bytes};
use anyhow::{anyhow, Context as _};
use bridle_common::audit::{verify_chain, AuditEntry, AuditHead, Decision};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `bridle verify audit`.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyAuditArgs {
    /// The export file (`bridle audit export`, or the host's `GET /v1/audit/export`); `-` for stdin.
    pub file: PathBuf,

    /// The attested enclave identity public key (hex SEC1: an attestation document's public_key).
    #[arg(long, value_name = "HEX")]
    pub identity_key: Option<String>,

    /// The expected enclave identity address (the address of the attested identity key).
    #[arg(long, value_name = "0x…")]
    pub enclave: Option<Address>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `bridle audit …`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AuditCmd {
    /// Download the host's stored audit log as an export file, for `bridle verify audit`.
    Export(ExportArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// The host's base URL.
    #[arg(long, env = "BRIDLE_HOST", default_value = "http://127.0.0.1:8547")]
    pub host: String,
    /// Write the export here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The enclave identity whose log to export (default: the current enclave's).
    #[arg(long, value_name = "0x…")]
    pub enclave: Option<Address>,
}

/// Run `bridle audit …`.
pub fn audit_cmd(c: &AuditCmd) -> anyhow::Result<i32> {
    match c {
        AuditCmd::Export(a) => {
            let host = crate::client::Host::new(&a.host)?;
            let path = match a.enclave {
                Some(e) => format!("/v1/audit/export?enclave={e}"),
                None => "/v1/audit/export".to_string(),
            };
            let v: serde_json::Value = host.get(&path)?;
            let n = v["entries"].as_array().map_or(0, Vec::len);
            let text = serde_json::to_string_pretty(&v)? + "\n";
            match &a.out {
                Some(p) => {
                    std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!(
                        "wrote {n} audit entries of enclave {} (head at seq {}) to {}",
                        v["enclave"].as_str().unwrap_or("?"),
                        v["head"]["seq"],
                        p.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(0)
        }
    }
}

/// A failed check (exit 1) or an input that could not be obtained (exit 2).
enum Failure {
    Invalid { reason: String, kind: &'static str, seq: Option<u64> },
    Usage(String),
}

fn usage<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(reason.into()))
}

fn invalid<T>(reason: impl Into<String>, kind: &'static str, seq: Option<u64>) -> Result<T, Failure> {
    Err(Failure::Invalid { reason: reason.into(), kind, seq })
}

/// Runs the command; returns the process exit status (0 valid, 1 invalid, 2 usage).
pub fn run(args: &VerifyAuditArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// Like [`run`], writing to the given streams.
pub fn run_with(args: &VerifyAuditArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match check(args, err) {
        Ok(report) => {
            if args.json {
                let _ = writeln!(out, "{report}");
            } else {
                let _ =
                    writeln!(out, "valid: audit log complete, every entry linked, head signed by the enclave identity");
                let _ = writeln!(
                    out,
                    "enclave:  {} ({})",
                    report["enclave"].as_str().unwrap_or(""),
                    report["pinned_by"].as_str().unwrap_or("")
                );
                let _ = writeln!(out, "entries:  {} (seq 0..={})", report["entries"], report["head"]["seq"]);
                let _ = writeln!(
                    out,
                    "head:     seq {}, hash {}, signed at {} ({})",
                    report["head"]["seq"],
                    report["head"]["hash"].as_str().unwrap_or(""),
                    report["head"]["time"],
                    report["head"]["time_utc"].as_str().unwrap_or("")
                );
                if let Some(counts) = report["counts"].as_object() {
                    let list: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
                    let _ = writeln!(out, "kinds:    {}", list.join(", "));
                }
            }
            0
        }
        Err(Failure::Invalid { reason, kind, seq }) => {
            let _ = writeln!(err, "invalid: {reason}");
            if args.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "verdict": "invalid", "reason": reason, "kind": kind, "seq": seq })
                );
            }
            1
        }
        Err(Failure::Usage(reason)) => {
            let _ = writeln!(err, "error: {reason}");
            if args.json {
                let _ = writeln!(out, "{}", serde_json::json!({ "verdict": "error", "reason": reason }));
            }
            2
        }
    }
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    hex::decode(s).map_err(|e| anyhow!("not hex: {e}"))
}

fn key_address(pk: &[u8]) -> anyhow::Result<Address> {
    let k = k256::ecdsa::VerifyingKey::from_sec1_bytes(pk)
        .map_err(|_| anyhow!("{} is not a secp256k1 SEC1 public key", hex::encode(pk)))?;
    Ok(Address::from_public_key(&k))
}

fn read(path: &PathBuf) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        return match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => Ok(s),
            Err(e) => usage(format!("cannot read stdin: {e}")),
        };
    }
    std::fs::read_to_string(path).or_else(|e| usage(format!("cannot read {}: {e}", path.display())))
}

struct Export {
    enclave: Option<Address>,
    identity_public_key: Option<Bytes>,
    entries: Vec<AuditEntry>,
    head: AuditHead,
}

/// Parse the export leniently at the top level (a `GET /v1/audit` body works too) and
/// strictly below it: an entry or head that does not parse is a broken log, not a usage
/// error.
fn parse_export(text: &str, what: &str) -> Result<Export, Failure> {
    let v: serde_json::Value = serde_json::from_str(text).or_else(|e| usage(format!("{what} is not JSON: {e}")))?;
    let (Some(list), Some(head)) = (v.get("entries").and_then(|e| e.as_array()), v.get("head")) else {
        return usage(format!("{what} is not an audit export (expected entries and head)"));
    };
    if head.is_null() {
        return usage(format!("{what} has no head: the host stored no signed audit log"));
    }
    let head: AuditHead = serde_json::from_value(head.clone())
        .or_else(|e| invalid(format!("the head is malformed: {e}"), "malformed", None))?;
    let mut entries = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let seq = e.get("seq").and_then(|s| s.as_u64());
        match serde_json::from_value::<AuditEntry>(e.clone()) {
            Ok(entry) => entries.push(entry),
            Err(err) => {
                let name = seq.map_or_else(|| format!("at position {i}"), |s| s.to_string());
                return invalid(format!("entry {name} is malformed: {err}"), "malformed", seq);
            }
        }
    }
    let enclave = match v.get("enclave") {
        None | Some(serde_json::Value::Null) => None,
        Some(a) => Some(
            serde_json::from_value(a.clone()).or_else(|e| usage(format!("{what}: enclave is not an address: {e}")))?,
        ),
    };
    let identity_public_key = match v.get("identity_public_key") {
        None | Some(serde_json::Value::Null) => None,
        Some(k) => Some(
            serde_json::from_value(k.clone())
                .or_else(|e| usage(format!("{what}: identity_public_key is not hex: {e}")))?,
        ),
    };
    Ok(Export { enclave, identity_public_key, entries, head })
}

fn check(args: &VerifyAuditArgs, err: &mut dyn Write) -> Result<serde_json::Value, Failure> {
    // The identity to check against: the attested one when given.
    let from_key = match &args.identity_key {
        Some(h) => {
            let pk = parse_hex(h).or_else(|e| usage(format!("--identity-key: {e}")))?;
            Some(key_address(&pk).or_else(|e| usage(format!("--identity-key: {e}")))?)
        }
        None => None,
    };
    if let (Some(k), Some(e)) = (from_key, args.enclave) {
        if k != e {
            return usage(format!("--enclave {e} is not the address of --identity-key (that is {k})"));
        }
    }
    let text = read(&args.file)?;
    let ex = parse_export(&text, &args.file.display().to_string())?;

    let (expected, pinned_by) = match (from_key, args.enclave) {
        (Some(k), _) => (k, "pinned by --identity-key"),
        (None, Some(e)) => (e, "pinned by --enclave"),
        (None, None) => {
            let named = match &ex.identity_public_key {
                Some(pk) => {
                    let a =
                        key_address(pk).or_else(|e| invalid(format!("identity_public_key: {e}"), "malformed", None))?;
                    if let Some(e) = ex.enclave {
                        if e != a {
                            return invalid(
                                format!("the file's identity_public_key is address {a}, but it names enclave {e}"),
                                "wrong_enclave",
                                None,
                            );
                        }
                    }
                    a
                }
                None => match ex.enclave {
                    Some(e) => e,
                    None => ex.head.enclave,
                },
            };
            let _ = writeln!(
                err,
                "warning: no --identity-key or --enclave given: checked against the identity the file names ({named}); \
                 this proves the log complete and self-consistent, not that it comes from an attested enclave \
                 (pass the public_key of the enclave's attestation document)"
            );
            (named, "not pinned: the identity the file names")
        }
    };
    if let Some(e) = ex.enclave {
        if e != expected {
            let _ = writeln!(err, "note: the file says it is the log of enclave {e}, not {expected}");
        }
    }
    if let (Some(pk), Some(_)) = (&ex.identity_public_key, from_key) {
        if key_address(pk).ok() != Some(expected) {
            let _ = writeln!(err, "note: the file's identity_public_key is not the given --identity-key");
        }
    }

    let summary = match verify_chain(&ex.entries, &ex.head, expected, None) {
        Ok(s) => s,
        Err(e) => return invalid(e.to_string(), e.kind(), e.seq()),
    };
    let mut counts: BTreeMap<Decision, u64> = BTreeMap::new();
    for e in &ex.entries {
        *counts.entry(e.kind).or_default() += 1;
    }
    let counts: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(k, v)| (k.as_str().to_string(), v.into())).collect();
    Ok(serde_json::json!({
        "verdict": "valid",
        "enclave": expected,
        "pinned": from_key.is_some() || args.enclave.is_some(),
        "pinned_by": pinned_by,
        "entries": summary.entries,
        "head": {
            "seq": summary.head_seq,
            "hash": summary.head_hash,
            "time": summary.head_time,
            "time_utc": bridle_common::period::format_time(summary.head_time),
        },
        "counts": counts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use bridle_common::audit::testing::TestChain;
    use bridle_common::audit::{AuditExport, Record, EXPORT_FORMAT};

    fn export() -> (TestChain, AuditExport) {
        let mut c = TestChain::new(4);
        c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
        c.fill(9);
        let ex = AuditExport {
            format: EXPORT_FORMAT.into(),
            enclave: c.enclave(),
            identity_public_key: Some(Bytes::from(c.public_key())),
            entries: c.entries.clone(),
            head: c.head(100),
        };
        (c, ex)
    }

    fn verify(ex: &serde_json::Value, extra: impl FnOnce(&mut VerifyAuditArgs)) -> (i32, String, String) {
        let dir = std::env::temp_dir().join(format!("bridle-verify-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = dir.join(format!("{}.json", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        std::fs::write(&path, ex.to_string()).unwrap();
        let mut args = VerifyAuditArgs { file: path.clone(), identity_key: None, enclave: None, json: true };
        extra(&mut args);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args, &mut out, &mut err);
        let _ = std::fs::remove_file(path);
        (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn a_genuine_export_verifies_pinned_or_not() {
        let (c, ex) = export();
        let v = serde_json::to_value(&ex).unwrap();
        let key = hex::encode(c.public_key());
        let (code, out, err) = verify(&v, |a| a.identity_key = Some(key.clone()));
        assert_eq!(code, 0, "{out}{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (r["verdict"].as_str(), r["entries"].as_u64(), r["pinned"].as_bool()),
            (Some("valid"), Some(10), Some(true))
        );
        assert_eq!(r["counts"]["started"], 1);
        let (code, _, err) = verify(&v, |_| {});
        assert_eq!(code, 0);
        assert!(err.contains("warning: no --identity-key"), "{err}");
        let (code, _, _) = verify(&v, |a| a.enclave = Some(c.enclave()));
        assert_eq!(code, 0);
    }

    #[test]
    fn tampering_is_reported_with_the_entry() {
        let (c, ex) = export();
        let key = hex::encode(c.public_key());
        type Tamper = fn(&mut AuditExport);
        let cases: [(&str, Tamper, &str, u64); 3] = [
            ("changed", |e| e.entries[4].detail = "nothing happened".into(), "changed", 4),
            (
                "removed",
                |e| {
                    e.entries.remove(6);
                },
                "missing",
                6,
            ),
            ("reordered", |e| e.entries.swap(2, 3), "out_of_order", 2),
        ];
        for (name, tamper, kind, seq) in cases {
            let mut t = ex.clone();
            tamper(&mut t);
            let (code, out, err) = verify(&serde_json::to_value(&t).unwrap(), |a| a.identity_key = Some(key.clone()));
            assert_eq!(code, 1, "{name}: {out}{err}");
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!((r["kind"].as_str(), r["seq"].as_u64()), (Some(kind), Some(seq)), "{name}: {r}");
            assert!(err.starts_with(&format!("invalid: entry {seq} ")), "{name}: {err}");
        }
        // A field added to an entry.
        let mut v = serde_json::to_value(&ex).unwrap();
        v["entries"][3]["note"] = "x".into();
        let (code, out, _) = verify(&v, |_| {});
        assert_eq!(code, 1);
        assert!(out.contains("\"seq\":3"), "{out}");
    }

    #[test]
    fn the_head_must_be_the_attested_identity() {
        let (_, ex) = export();
        let other = TestChain::new(8);
        let v = serde_json::to_value(&ex).unwrap();
        let (code, out, err) = verify(&v, |a| a.identity_key = Some(hex::encode(other.public_key())));
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("not the expected"), "{err}");
        // The whole file re-signed by another key claiming to be the enclave.
        let mut forged = ex.clone();
        forged.head =
            AuditHead::signed(ex.head.seq, ex.head.hash, ex.head.time, ex.enclave, ex.head.end, ex.head.nonce, |d| {
                Ok::<_, std::convert::Infallible>(other.sign_digest(d))
            })
            .unwrap();
        let (code, out, _) = verify(&serde_json::to_value(&forged).unwrap(), |a| a.enclave = Some(ex.enclave));
        assert_eq!(code, 1);
        assert!(out.contains("head_signer"), "{out}");
    }

    #[test]
    fn usage_errors_exit_2() {
        let (c, ex) = export();
        let v = serde_json::to_value(&ex).unwrap();
        assert_eq!(verify(&v, |a| a.identity_key = Some("zz".into())).0, 2);
        let (code, _, err) = verify(&v, |a| {
            a.identity_key = Some(hex::encode(c.public_key()));
            a.enclave = Some(Address::ZERO);
        });
        assert_eq!(code, 2, "{err}");
        assert_eq!(verify(&serde_json::json!({"entries": []}), |_| {}).0, 2);
        let args =
            VerifyAuditArgs { file: "/nonexistent/x.json".into(), identity_key: None, enclave: None, json: false };
        assert_eq!(run_with(&args, &mut Vec::new(), &mut Vec::new()), 2);
    }
}
