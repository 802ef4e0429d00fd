//! `bridle verify audit` and `bridle audit export`: the signed audit log (R-AUD-1).
//!
//! ```text
//! bridle audit export [--host <URL>] [--out <FILE>] [--enclave <0x…>] [--identity-key <HEX>] [--from-seq <SEQ>]
//! bridle verify audit <FILE> [--identity-key <HEX>] [--enclave <0x…>] [--host <URL>] [--from-seq <SEQ>] [--json]
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
//!    to the enclave's genesis hash) — or, with `--from-seq N`, from an entry at or before N
//!    (a host whose audit retention deleted the oldest entries: the export's
//!    `pruned_through`, the host's word, says so); the report then says the log is complete
//!    from that entry, and that the entries before it are not in the file;
//! 3. the last entry is the one the head signs;
//! 4. the head was signed at the log's end (`head.end = head.seq + 1`): a head of one batch
//!    says how many entries the log held, so a log cut at a batch boundary is incomplete;
//! 5. the export reaches every *fresh head* — one the enclave signed at its log's end for a
//!    verifier's nonce (`GET /v1/audit/head?nonce=`): the exporter's, stored in the file as
//!    `fresh_head`, and with `--host` one asked for now. Otherwise it reports how many entries
//!    are missing. A host that answers `--host` for another enclave gives no fresh head for
//!    this log: invalid (`no_fresh_head`), since the check asked for cannot be made.
//!
//! "complete" means complete as of the latest fresh head reached (now, with `--host`);
//! without any, "complete as of" the head's own signing time: nothing then says what the
//! enclave logged after it.
//!
//! It reports the first broken link: which entry is missing, changed, duplicated or out of
//! order, or what is wrong with the head.
//!
//! Without `--identity-key` or `--enclave`, the log is checked against the identity the file
//! itself names: that proves it complete and self-consistent, not that it comes from an
//! attested enclave (a warning says so).
//!
//! `bridle audit export` asks the enclave for a fresh head first, then for the host's copy,
//! and stores the head in the file; it fails (exit 1, file written) unless the copy's
//! entries, checked as here, reach it.
//!
//! Exit status: 0 valid; 1 invalid or incomplete (the first broken link, or what is missing,
//! on stderr); 2 usage error or an input that could not be read.

use alloy_primitives::{Address, Bytes};
use anyhow::anyhow;
use bridle_common::audit::{verify_chain, AuditEntry, AuditHead, Decision, Summary};
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

    /// Ask this host for a fresh head (signed at the log's end for a nonce of ours): the export
    /// must reach it to be complete now. Its trusted identity is used unless --identity-key
    /// or --enclave is given.
    #[arg(long, value_name = "URL")]
    pub host: Option<String>,

    /// Check the log from this entry on: an export that starts later than seq 0 (a host
    /// whose audit retention deleted the oldest entries) is valid only with it, and only
    /// when it starts at or before this entry.
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
                let first = report["first_seq"].as_u64().unwrap_or(0);
                let from = if first == 0 {
                    String::new()
                } else {
                    format!(" from seq {first} (logged at {})", report["first_time_utc"].as_str().unwrap_or(""))
                };
                let _ = writeln!(
                    out,
                    "valid: audit log{from} complete as of {} ({}); every entry linked, head signed by the enclave identity",
                    report["complete_as_of_utc"].as_str().unwrap_or(""),
                    report["complete_as_of_source"].as_str().unwrap_or("")
                );
                if first > 0 {
                    let _ = writeln!(
                        out,
                        "not here: entries 0..={} ({}); checked from seq {first} only, as --from-seq asked",
                        first - 1,
                        report["not_in_export"]["why"].as_str().unwrap_or("")
                    );
                }
                let _ = writeln!(
                    out,
                    "enclave:  {} ({})",
                    report["enclave"].as_str().unwrap_or(""),
                    report["pinned_by"].as_str().unwrap_or("")
                );
                let _ = writeln!(out, "entries:  {} (seq {first}..={})", report["entries"], report["head"]["seq"]);
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
            let _ = writeln!(err, "invalid: {}", bridle_common::quote::printable(&reason));
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
            let _ = writeln!(err, "error: {}", bridle_common::quote::printable(&reason));
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
    /// The host's word that its retention deleted the entries up to this one.
    pruned_through: Option<u64>,
    entries: Vec<AuditEntry>,
    head: AuditHead,
    fresh_head: Option<AuditHead>,
}

impl Export {
    /// The first entry's seq (0 for an export without entries).
    fn first_seq(&self) -> u64 {
        self.entries.first().map_or(0, |e| e.seq)
    }

    /// What the file says of the entries before its first: the host's word, if any.
    fn why_not_here(&self) -> String {
        let first = self.first_seq();
        match self.pruned_through {
            Some(p) if p.checked_add(1) == Some(first) => {
                "the host says its audit retention deleted them (its word: no signature covers it)".to_string()
            }
            Some(p) => format!("the host says it pruned through seq {p}, which does not meet the first entry"),
            None => "the file does not say why".to_string(),
        }
    }

    /// Where the chain check starts: `None` for an export from seq 0; the first entry and its
    /// own link for one that starts later and that the host says it pruned before.
    fn pruned_start(&self) -> Result<Option<(u64, alloy_primitives::B256)>, String> {
        let Some(first) = self.entries.first().filter(|e| e.seq > 0) else { return Ok(None) };
        if self.pruned_through.and_then(|p| p.checked_add(1)) != Some(first.seq) {
            return Err(format!(
                "invalid: entry 0 is missing: the export starts at seq {} ({})",
                first.seq,
                self.why_not_here()
            ));
        }
        Ok(Some((first.seq, first.prev)))
    }
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
    let pruned_through = match v.get("pruned_through") {
        None | Some(serde_json::Value::Null) => None,
        Some(p) => Some(p.as_u64().ok_or(()).or_else(|()| usage(format!("{what}: pruned_through is not a seq")))?),
    };
    let fresh_head = match v.get("fresh_head") {
        None | Some(serde_json::Value::Null) => None,
        Some(h) => Some(
            serde_json::from_value(h.clone())
                .or_else(|e| invalid(format!("the fresh head is malformed: {e}"), "malformed", None))?,
        ),
    };
    Ok(Export { enclave, identity_public_key, pruned_through, entries, head, fresh_head })
}

/// Where a fresh head came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FreshFrom {
    /// The exporter's, stored in the file.
    File,
    /// Ours, asked for now (`--host`).
    Now,
}

/// A fresh head is the expected enclave's, at its log's end; the export must reach it.
fn reach(ex: &Export, expected: Address, f: &AuditHead, from: FreshFrom, head_seq: u64) -> Result<(), Failure> {
    let what = match from {
        FreshFrom::File => "the exporter's fresh head",
        FreshFrom::Now => "the fresh head the enclave signed for this verifier's nonce",
    };
    match f.signer() {
        Ok(a) if a == expected && f.enclave == expected => {}
        Ok(a) => {
            return invalid(
                format!("{what} is signed by {a} for enclave {}, not by {expected}", f.enclave),
                "fresh_head",
                None,
            )
        }
        Err(e) => return invalid(format!("{what}: {e}"), "fresh_head", None),
    }
    if !f.at_end() {
        return invalid(
            format!("{what} (seq {}) is not at the log's end ({} entries)", f.seq, f.end),
            "fresh_head",
            None,
        );
    }
    if f.seq > head_seq {
        let missing = f.end - (head_seq + 1);
        return invalid(
            format!(
                "incomplete: the enclave's log held {} entries at {} ({what}); this export stops at seq {head_seq}: \
                 {missing} entries missing (seq {}..={})",
                f.end,
                bridle_common::period::format_time(f.time),
                head_seq + 1,
                f.seq
            ),
            "incomplete",
            Some(head_seq + 1),
        );
    }
    match f.seq.checked_sub(ex.first_seq()).and_then(|i| ex.entries.get(usize::try_from(i).ok()?)) {
        Some(e) if e.seq == f.seq && e.hash() == f.hash => Ok(()),
        _ => invalid(
            format!(
                "entry {} is not the enclave's: {what} records hash {} for it (the export forks from the log)",
                f.seq, f.hash
            ),
            "changed",
            Some(f.seq),
        ),
    }
}

/// Our own fresh head from `url`, which the export must reach. A host serving another
/// enclave cannot give one for this log (its enclave restarted, is elsewhere — or the host
/// says so: any head naming another enclave, even one signed by it, is the host's word
/// here), so the check asked for cannot be made: invalid, not "complete as of" an older
/// time (found 2026-12-04 by a review: a head naming another enclave, unchecked, turned the
/// check off and a stale export passed).
fn fresh_from(url: &str, expected: Address) -> Result<AuditHead, Failure> {
    let host = crate::client::Host::new(url).or_else(|e| usage(format!("--host: {e:#}")))?;
    let nonce = crate::trust::fresh_nonce();
    let h: AuditHead =
        host.get(&format!("/v1/audit/head?nonce={nonce}")).or_else(|e| usage(format!("--host {url}: {e:#}")))?;
    if h.enclave != expected {
        return invalid(
            format!(
                "no fresh head for this log: {url} answers for enclave {}, not {expected} (its enclave restarted or \
                 is elsewhere, or the host says so), so whether the export is complete now cannot be checked; \
                 without --host it is checked as of the fresh head the exporter asked for",
                h.enclave
            ),
            "no_fresh_head",
            None,
        );
    }
    if h.nonce != nonce {
        return invalid(
            format!("the host's fresh head answers nonce {}, not ours: a replayed head", h.nonce),
            "fresh_head",
            None,
        );
    }
    Ok(h)
}

/// Whether the export `text` is `expected`'s log from its first entry, linked, and reaches
/// `fresh` (a head checked for our nonce): what `bridle audit export` must know before it
/// calls the host's copy complete (the copy's own `head.seq` is only the host's word).
/// `Err` says what is missing or broken.
pub(crate) fn export_reaches(text: &str, expected: Address, fresh: &AuditHead) -> Result<(), String> {
    let reason = |f: Failure| match f {
        Failure::Invalid { reason, .. } => reason,
        Failure::Usage(reason) => format!("invalid: {reason}"),
    };
    let ex = parse_export(text, "the host's export").map_err(reason)?;
    let summary =
        verify_chain(&ex.entries, &ex.head, expected, ex.pruned_start()?).map_err(|e| format!("invalid: {e}"))?;
    reach(&ex, expected, fresh, FreshFrom::Now, summary.head_seq).map_err(reason)
}

/// Whether the export `text` is `expected`'s log from its first entry, linked, to a head
/// `expected` signed at its log's end then: what `bridle audit export --enclave` can know of
/// an enclave that no longer answers (no fresh head can be asked of it). `Err` says what is
/// missing or broken.
pub(crate) fn export_to_its_head(text: &str, expected: Address) -> Result<Summary, String> {
    let ex = parse_export(text, "the host's export").map_err(|f| match f {
        Failure::Invalid { reason, .. } => reason,
        Failure::Usage(reason) => format!("invalid: {reason}"),
    })?;
    let s = verify_chain(&ex.entries, &ex.head, expected, ex.pruned_start()?).map_err(|e| format!("invalid: {e}"))?;
    if !s.complete {
        return Err(format!(
            "incomplete: its head (seq {}) says the log held {} entries; this export stops there: {} entries missing",
            s.head_seq,
            s.log_end,
            s.log_end - (s.head_seq + 1)
        ));
    }
    Ok(s)
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

    let from_store = match (&args.host, from_key, args.enclave) {
        (Some(url), None, None) => {
            crate::audit_export::trusted_identity(url, None).or_else(|e| usage(format!("{e:#}")))?
        }
        _ => None,
    };
    let (expected, pinned_by): (Address, std::borrow::Cow<'static, str>) = match (from_key, args.enclave, from_store) {
        (Some(k), _, _) => (k, "pinned by --identity-key".into()),
        (None, Some(e), _) => (e, "pinned by --enclave".into()),
        (None, None, Some((a, how))) => (a, format!("the identity {how} (--host)").into()),
        (None, None, None) => {
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
                "warning: no --identity-key, --enclave or trusted --host given: checked against the identity the file names ({named}); \
                 this proves the log complete and self-consistent, not that it comes from an attested enclave \
                 (pass the public_key of the enclave's attestation document)"
            );
            (named, "not pinned: the identity the file names".into())
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

    // An export that starts after seq 0 is checked from its first entry only when the
    // verifier asks for the log from there on (`--from-seq`): the entries before it are not
    // in the file, and nothing signed says why.
    let first = ex.first_seq();
    let from = match (first, args.from_seq) {
        (0, _) => None,
        (_, None) => {
            return invalid(
                format!(
                    "entry 0 is missing: the export starts at seq {first} (entries 0..={} are not in it: {}); \
                     pass --from-seq {first} to check the log from there",
                    first - 1,
                    ex.why_not_here()
                ),
                "missing",
                Some(0),
            )
        }
        (_, Some(n)) if n < first => {
            return invalid(
                format!(
                    "entry {n} is missing: the export starts at seq {first} (entries {n}..={} are not in it: {})",
                    first - 1,
                    ex.why_not_here()
                ),
                "missing",
                Some(n),
            )
        }
        (_, Some(_)) => ex.entries.first().map(|e| (e.seq, e.prev)),
    };
    let summary = match verify_chain(&ex.entries, &ex.head, expected, from) {
        Ok(s) => s,
        Err(e) => return invalid(e.to_string(), e.kind(), e.seq()),
    };
    if !summary.complete {
        let missing = summary.log_end - (summary.head_seq + 1);
        return invalid(
            format!(
                "incomplete: its head (seq {}, signed at {}) says the log held {} entries; this export stops at seq {}: \
                 {missing} entries missing (a log cut at a batch boundary)",
                summary.head_seq,
                bridle_common::period::format_time(summary.head_time),
                summary.log_end,
                summary.head_seq
            ),
            "incomplete",
            Some(summary.head_seq + 1),
        );
    }
    // Fresh heads: the exporter's, and ours with --host.
    let mut as_of = (summary.head_time, "when its head was signed: nothing says what the enclave logged after it");
    if let Some(f) = &ex.fresh_head {
        reach(&ex, expected, f, FreshFrom::File, summary.head_seq)?;
        as_of = (f.time, "the fresh head the exporter asked for");
    }
    let mut fresh_now = None;
    if let Some(url) = &args.host {
        let f = fresh_from(url, expected)?;
        reach(&ex, expected, &f, FreshFrom::Now, summary.head_seq)?;
        as_of = (f.time, "now: the fresh head the enclave signed for this verifier's nonce");
        fresh_now = Some(f);
    }
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
        // From seq 0, or from the first entry of an export that starts later (--from-seq).
        "first_seq": first,
        "first_time": ex.entries.first().map(|e| e.time),
        "first_time_utc": ex.entries.first().map(|e| bridle_common::period::format_time(e.time)),
        "not_in_export": (first > 0).then(|| serde_json::json!({ "from": 0, "to": first - 1, "why": ex.why_not_here() })),
        "complete": first == 0,
        "complete_from_seq": first,
        "complete_as_of": as_of.0,
        "complete_as_of_utc": bridle_common::period::format_time(as_of.0),
        "complete_as_of_source": as_of.1,
        "log_end": summary.log_end,
        "fresh_head": ex.fresh_head,
        "fresh_head_now": fresh_now,
    }))
}

#[cfg(test)]
#[path = "verify_audit_tests.rs"]
mod tests;
