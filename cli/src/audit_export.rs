//! `bridle audit export`: the host's copy of the enclave's signed audit log, checked against
//! a fresh head.
//!
//! The command asks the enclave (through the host) for a head signed at its log's end for a
//! random nonce of ours *first*, then for the host's copy of the log, and stores that head in
//! the export (`fresh_head`). The copy must reach it: otherwise the host withholds entries
//! (or lags), and the command says how many are missing and exits 1 (the file is written
//! for inspection). `bridle verify audit` checks the same, and more. A copy the host's audit
//! retention pruned (starting after entry 0, where the host says it pruned up to there) is
//! taken only with `--from-seq N` at or after its first entry; otherwise it exits 1.

use alloy_primitives::Address;
use anyhow::{anyhow, Context as _};
use bridle_common::audit::AuditHead;
use std::path::PathBuf;

/// `bridle audit …`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AuditCmd {
    /// Download the host's stored audit log as an export file, for `bridle verify audit`.
    Export(ExportArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// The host's base URL.
    // `--help` names the variable, never its value: a URL may carry an API key or a
    // password (a review of 2026-12-06).
    #[arg(long, env = "BRIDLE_HOST", hide_env_values = true, default_value = "http://127.0.0.1:8547")]
    pub host: String,
    /// Write the export here (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The enclave identity whose log to export (default: the current enclave's).
    #[arg(long, value_name = "0x…")]
    pub enclave: Option<Address>,
    /// Check the fresh head against this identity public key (default: the identity trusted
    /// for the host, if any).
    #[arg(long, value_name = "HEX")]
    pub identity_key: Option<String>,
    /// Take a copy the host's audit retention pruned when it starts at or before this entry
    /// (e.g. the entry after the last one your previous export holds): without it, a copy
    /// that starts after entry 0 exits 1.
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
}

/// Run `bridle audit …`.
pub fn audit_cmd(c: &AuditCmd) -> anyhow::Result<i32> {
    match c {
        AuditCmd::Export(a) => export(a),
    }
}

/// The identity to check heads from `url` against: `--identity-key`, else the trust store's,
/// with what it rests on (a `tofu` identity is the host's own word, and says so).
pub fn trusted_identity(url: &str, key: Option<&str>) -> anyhow::Result<Option<(Address, String)>> {
    if let Some(k) = key {
        return Ok(Some((crate::trust::parse_identity_key(k)?.1, "pinned by --identity-key".to_string())));
    }
    let (_, f) = crate::trust::load()?;
    Ok(f.hosts
        .get(&crate::trust::normalize_url(url))
        .map(|e| (e.identity_address, format!("trusted for the host: {}", e.describe()))))
}

/// A head the enclave signed at its log's end for a fresh nonce of ours, checked: our nonce,
/// at the end, signed by `expected` (or by the enclave it names, when none is trusted).
pub fn fresh_head(host: &crate::client::Host, expected: Option<Address>) -> anyhow::Result<AuditHead> {
    let nonce = crate::trust::fresh_nonce();
    let h: AuditHead = host.get(&format!("/v1/audit/head?nonce={nonce}"))?;
    if h.nonce != nonce {
        anyhow::bail!("the fresh head answers nonce {}, not ours ({nonce}): a replayed head", h.nonce);
    }
    if !h.at_end() {
        anyhow::bail!("the fresh head (seq {}) is not at the log's end ({} entries)", h.seq, h.end);
    }
    let signer = h.signer().map_err(|e| anyhow!("the fresh head's signature: {e}"))?;
    let want = expected.unwrap_or(h.enclave);
    if signer != want || h.enclave != want {
        anyhow::bail!("the fresh head is signed by {signer} for enclave {}, not by {want}", h.enclave);
    }
    Ok(h)
}

fn export(a: &ExportArgs) -> anyhow::Result<i32> {
    let host = crate::client::Host::new(&a.host)?;
    let trusted = trusted_identity(&a.host, a.identity_key.as_deref())?;
    // The enclave's end first: the host's copy, fetched after it, must reach it.
    let fresh = fresh_head(&host, trusted.as_ref().map(|t| t.0))?;
    let enclave = a.enclave.unwrap_or(fresh.enclave);
    let current = enclave == fresh.enclave;
    let path = format!("/v1/audit/export?enclave={enclave}");
    let mut v: serde_json::Value = host.get_export(&path)?;
    // The host's word, only to know when to stop waiting: whether the copy reaches the
    // fresh head is checked below, on the entries.
    let says_it_reaches = |v: &serde_json::Value| v["head"]["seq"].as_u64().is_some_and(|s| s >= fresh.seq);
    // The host stores the enclave's entries as it reads them: give a busy one 15 s to catch
    // up with the fresh head (a copy that stops short is written all the same, and `bridle
    // verify audit` says it is not complete).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while current && !says_it_reaches(&v) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        v = host.get_export(&path)?;
    }
    if current {
        v["fresh_head"] = serde_json::to_value(&fresh)?;
    }
    let n = v["entries"].as_array().map_or(0, Vec::len);
    let text = serde_json::to_string_pretty(&v)? + "\n";
    // The copy's chain, checked as `bridle verify audit` checks it, against the fresh head:
    // the enclave's log from its first entry, linked, to the entry the fresh head signs.
    let checked = if current {
        crate::verify_audit::export_reaches(&text, fresh.enclave, &fresh).map(|()| None)
    } else {
        // An enclave the host no longer serves gives no fresh head: the copy can be checked
        // only against the heads it signed (a review of 2026-12-06: this checked nothing
        // and exited 0 for a log and head a host made up).
        crate::verify_audit::export_to_its_head(&text, enclave).map(Some)
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!(
                "wrote {n} audit entries of enclave {} (head at seq {}) to {}",
                crate::client::printable(v["enclave"].as_str().unwrap_or("?")),
                v["head"]["seq"].as_u64().map_or("?".to_string(), |s| s.to_string()),
                p.display()
            );
        }
        None => print!("{text}"),
    }
    let time = bridle_common::period::format_time(fresh.time);
    // Checked above: a copy that starts later than seq 0 passed only where the host says its
    // retention deleted the entries before it.
    let first = v["entries"][0]["seq"].as_u64().unwrap_or(0);
    if checked.is_ok() && first > 0 {
        eprintln!(
            "entries 0..={} are not in the export: the host says its audit retention deleted them (its word: no \
             signature covers it); the export holds the log from seq {first} (check it with bridle verify audit \
             --from-seq {first})",
            first - 1
        );
        // Like `verify audit`: a copy that starts later is taken only where asked for, so a
        // script that keeps exports by their exit status never keeps one with a hole before
        // it (a review of 2026-12-07).
        match a.from_seq {
            None => {
                eprintln!("not taken: pass --from-seq N (the entry after your previous export's last) to take a copy that starts at seq {first}");
                return Ok(1);
            }
            Some(n) if n < first => {
                eprintln!("not taken: entries {n}..={} are not in the copy (--from-seq {n})", first - 1);
                return Ok(1);
            }
            Some(_) => {}
        }
    }
    match checked {
        Err(reason) => {
            // Short of the fresh head ("incomplete: … entries missing"), or not the enclave's log.
            eprintln!(
                "{} (the host's copy, written for inspection; nothing in it is the enclave's word)",
                crate::client::printable(&reason)
            );
            return Ok(1);
        }
        Ok(Some(s)) => {
            eprintln!(
                "enclave {enclave} is not the one the host serves now ({}): the export is its log from seq {first}, \
                 linked, to the head it signed at {} when it held {} entries; whether it logged more after that \
                 head cannot be checked (it gives no fresh head). Pin it with bridle verify audit --identity-key \
                 (its attestation document's public key)",
                fresh.enclave,
                bridle_common::period::format_time(s.head_time),
                s.log_end
            );
            return Ok(0);
        }
        Ok(None) => {}
    }
    eprintln!(
        "the enclave's log held {} entries at {time} (fresh head for our nonce, {}); the export reaches it: every \
         entry linked from seq {first} to the one the fresh head signs",
        fresh.end,
        trusted.as_ref().map_or("signed by the enclave it names: no identity trusted for this host", |t| &t.1)
    );
    Ok(0)
}
