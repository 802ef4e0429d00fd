//! `bridle verify session`: check a session's binding end to end (SPEC R-ATT-2).
//!
//! ```text
//! bridle verify session (--host <URL> --session <0x…> | --binding <FILE> [--session <0x…>])
//!                       --policy <FILE> [--root <PEM>]
//!                       (--pcrs <pcrs.json> | --pcr <N>=<hex>... | --any-image) [--allow-debug]
//!                       [--max-age <seconds>] [--owner <0x…>] [--agent <0x…>] [--json]
//! ```
//!
//! The input is the enclave's `SessionCreated` reply: fetched from the (untrusted) host's
//! stored copy (`GET /v1/sessions/{session}` → `stored.binding`), or read from a file saved
//! from `bridle owner grant --json` (the `GET /v1/sessions/{session}` body is accepted too).
//! Nothing the host says is trusted: every link is checked, in this order:
//!
//! 1. the binding is for the session asked about (`--session`);
//! 2. the attestation document verifies (`bridle_attestation::verify`: chain to the AWS root or
//!    `--root`, ES384 signature, expected `--pcr`s / `--pcrs` — which must pin the image
//!    (PCR0, or PCR1 and PCR2) unless `--any-image` —, not debug unless `--allow-debug`), with
//!    `user_data` = `binding.digest()`; time: as of the document's own timestamp (a stored
//!    document), or now with `--max-age`;
//! 3. its `public_key` is a secp256k1 key whose address is `binding.enclave` (the identity);
//! 4. `binding_signature` recovers to that identity address;
//! 5. `binding.policy_hash` is the hash of the policy the owner holds (`--policy`), and
//!    `binding.valid_until` its `valid_until`;
//! 6. `--owner` / `--agent`, when given, are the binding's;
//! 7. with `--host`: the policy in force *now*. The binding proves the policy at creation; an
//!    owner update replaces it. The session's status is fetched for a fresh random nonce and
//!    must be signed by the identity the attestation proved (a receipt for that nonce): it
//!    names the policy hash in force now, which must be the hash of `--policy` (resolved with
//!    the session's current `valid_until`), the same owner and agent, and says the session is
//!    still held by that enclave (an enclave restart loses it). Offline (`--binding`), only
//!    the policy at creation is proven, and the command says so.
//!
//! Policies: a normalized policy JSON (`bridle policy normalize`, or the host's stored
//! `policy`) is hashed as is. A TOML/JSON policy file with an absolute `valid_until` (or
//! none) is resolved and hashed. A file with a relative `valid_for` was resolved by the
//! owner's CLI at grant time `t` (`valid_until = t + valid_for`); it is resolved here at
//! `t = binding.valid_until − valid_for`, the only instant that can give the bound
//! `valid_until`, and the hashes must then match; in addition `t` must be the session's
//! creation time (`binding.created_at`, enclave clock) within 300 s of clock skew: otherwise
//! the session does not live `valid_for` from its creation (a file saying `2h` must not
//! vouch for a session bound to 1 h, nor the reverse). A session relayed more than 300 s
//! after the owner signed it is then verified with the normalized policy JSON instead.
//!
//! Exit status: 0 valid; 1 invalid (the reason on stderr); 2 usage error or the inputs could
//! not be obtained (unreadable file, host unreachable, no stored binding).

use std::io::Write;
use std::path::PathBuf;

use alloy_primitives::{Address, Signature, B256};
use bridle_attestation::{parse_document, pins_image, verify, TrustedRoot, VerifyOptions, VerifyTime};
use bridle_common::policy::file::{parse_file, resolve};
use bridle_common::policy::Policy;
use bridle_common::protocol::{SessionBinding, SessionCreated};
use bridle_common::units::parse_duration;

use crate::verify_attestation::expected_pcrs;

/// Clock skew tolerated between the owner's CLI (which resolves `valid_for`) and the enclave.
pub const VALID_FOR_SKEW_SECS: u64 = 300;

/// An expected PCR given as `N=HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrArg {
    pub index: u16,
    pub value: Vec<u8>,
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

fn parse_pcr(s: &str) -> Result<PcrArg, String> {
    let (index, value) = s.split_once('=').ok_or_else(|| "expected N=HEX, e.g. 16=5d99…".to_string())?;
    let index = index.trim();
    let index = match index.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("pcr") => index.get(3..).unwrap_or(""),
        _ => index,
    };
    let index: u16 = index.parse().map_err(|_| format!("PCR index {index:?} is not a number 0..=65535"))?;
    let value = parse_hex(value)?;
    if ![32, 48, 64].contains(&value.len()) {
        return Err(format!("PCR{index} value has {} bytes: expected 48 (96 hex digits), or 32/64", value.len()));
    }
    Ok(PcrArg { index, value })
}

/// Arguments of `bridle verify session`.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["host", "binding"])))]
pub struct VerifySessionArgs {
    /// The host's base URL: fetch the session's stored SessionCreated from it (needs --session).
    #[arg(long, value_name = "URL", requires = "session")]
    pub host: Option<String>,

    /// A saved SessionCreated JSON (`bridle owner grant --json`), instead of --host.
    #[arg(long, value_name = "FILE")]
    pub binding: Option<PathBuf>,

    /// The session address; with --binding, the binding must be for it.
    #[arg(long, value_name = "0x…")]
    pub session: Option<Address>,

    /// The policy the owner holds: normalized JSON, or a TOML/JSON policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// Trusted root certificate (PEM, or DER) instead of the embedded AWS Nitro Enclaves
    /// Root-G1. Needed for the development enclave's mock NSM (`bridle dev` writes it).
    #[arg(long, value_name = "PEM")]
    pub root: Option<PathBuf>,

    /// Expected PCR value (repeatable), e.g. --pcr 0=… --pcr 16=…
    #[arg(long = "pcr", value_name = "N=HEX", value_parser = parse_pcr)]
    pub pcrs: Vec<PcrArg>,

    /// Expected PCRs from a release's pcrs.json (`make enclave-image` writes
    /// target/eif/pcrs.json): every `PCR<n>` in it must be present and equal.
    #[arg(long = "pcrs", value_name = "FILE")]
    pub pcrs_file: Option<PathBuf>,

    /// Accept the document whatever image it measures (no PCR0, or PCR1 and PCR2,
    /// expected). Development and diagnostics only.
    #[arg(long)]
    pub any_image: bool,

    /// Accept debug-mode documents (all-zero PCR0/1/2). Never for production.
    #[arg(long)]
    pub allow_debug: bool,

    /// Judge the document now, at most this many seconds old. Default: as of the
    /// document's own timestamp (it was made when the session was created).
    #[arg(long, value_name = "SECONDS")]
    pub max_age: Option<u64>,

    /// Expected owner address.
    #[arg(long, value_name = "0x…")]
    pub owner: Option<Address>,

    /// Expected agent address.
    #[arg(long, value_name = "0x…")]
    pub agent: Option<Address>,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// How the owner's policy file was turned into the hashed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PolicySource {
    Normalized,
    File,
    ValidFor { secs: u64, resolved_at: u64 },
}

impl PolicySource {
    fn describe(&self) -> String {
        match self {
            PolicySource::Normalized => "normalized policy JSON".to_string(),
            PolicySource::File => "policy file".to_string(),
            PolicySource::ValidFor { secs, resolved_at } => format!(
                "policy file, valid_for {secs} s resolved at the grant time {} ({resolved_at})",
                bridle_common::period::format_time(*resolved_at)
            ),
        }
    }
}

/// A failed check (exit 1) or an input that could not be obtained (exit 2).
enum Failure {
    Invalid(String),
    Usage(String),
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Invalid(reason.into()))
}

fn usage<T>(reason: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Usage(reason.into()))
}

/// Runs the command; returns the process exit status (0 valid, 1 invalid, 2 usage).
pub fn run(args: &VerifySessionArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// Like [`run`], writing to the given streams.
pub fn run_with(args: &VerifySessionArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match check(args, err) {
        Ok(report) => {
            if args.json {
                let _ = writeln!(out, "{report}");
            } else {
                let _ = writeln!(out, "valid: session binding verified");
                let b = &report;
                let _ = writeln!(out, "session:      {}", b["session"].as_str().unwrap_or(""));
                let _ = writeln!(out, "owner:        {}", b["owner"].as_str().unwrap_or(""));
                let _ = writeln!(out, "agent:        {}", b["agent"].as_str().unwrap_or(""));
                let _ = writeln!(out, "policy hash:  {}", b["policy_hash"].as_str().unwrap_or(""));
                let _ = writeln!(out, "policy:       {}", b["policy_source"].as_str().unwrap_or(""));
                let _ = writeln!(out, "enclave:      {}", b["enclave"].as_str().unwrap_or(""));
                let _ = writeln!(out, "identity key: {}", b["identity_public_key"].as_str().unwrap_or(""));
                let d = &b["document"];
                let _ = writeln!(out, "module_id:    {}", d["module_id"].as_str().unwrap_or(""));
                let _ = writeln!(out, "attested at:  {} ms", d["timestamp"]);
                if let Some(pcrs) = d["pcrs"].as_object() {
                    for i in ["0", "1", "2", "16"] {
                        if let Some(v) = pcrs.get(i).and_then(|v| v.as_str()) {
                            let _ = writeln!(out, "PCR{i}:{:pad$}{v}", "", pad = 9 - i.len());
                        }
                    }
                }
                let when = match b["now"]["signed_at_utc"].as_str() {
                    Some(t) => format!(
                        "now (status signed by the attested identity at {t} for a fresh nonce; state {})",
                        b["now"]["state"].as_str().unwrap_or("?")
                    ),
                    None => "at its creation (offline: not proven for now)".to_string(),
                };
                if b["updated_since_creation"] == true {
                    let _ = writeln!(
                        out,
                        "updated:      created under policy {}, replaced since by an owner update",
                        b["policy_at_creation"].as_str().unwrap_or("")
                    );
                }
                let _ = writeln!(
                    out,
                    "proven: key {} lives in an enclave with these PCRs and enforces policy {} for owner {} {when}",
                    b["session"].as_str().unwrap_or(""),
                    b["policy_hash"].as_str().unwrap_or(""),
                    b["owner"].as_str().unwrap_or("")
                );
            }
            0
        }
        Err(Failure::Invalid(reason)) => {
            let _ = writeln!(err, "invalid: {}", bridle_common::quote::printable(&reason));
            if args.json {
                let _ = writeln!(out, "{}", serde_json::json!({ "verdict": "invalid", "reason": reason }));
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

fn read_root(path: &PathBuf) -> Result<TrustedRoot, Failure> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read {}: {e}", path.display())),
    };
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        TrustedRoot::from_pem(&String::from_utf8_lossy(&bytes))
            .or_else(|e| usage(format!("--root {}: {e}", path.display())))
    } else {
        Ok(TrustedRoot::Der(bytes))
    }
}

/// A SessionCreated from JSON: the reply itself, or a `GET /v1/sessions/{s}` body.
fn session_created(v: serde_json::Value, what: &str) -> Result<(SessionCreated, Option<B256>), Failure> {
    let (created, current_hash) = if v.get("binding_signature").is_some() {
        (v, None)
    } else if let Some(stored) = v.get("stored").filter(|s| !s.is_null()) {
        let current = stored.get("policy_hash").and_then(|h| serde_json::from_value::<B256>(h.clone()).ok());
        match stored.get("binding") {
            Some(b) if !b.is_null() => (b.clone(), current),
            _ => return usage(format!("{what}: no stored binding")),
        }
    } else if v.get("stored").is_some() {
        return usage(format!("{what}: the host has no stored binding for this session (created elsewhere?)"));
    } else {
        return usage(format!("{what}: not a SessionCreated JSON (binding, binding_signature, attestation, receipt)"));
    };
    match serde_json::from_value(created) {
        Ok(c) => Ok((c, current_hash)),
        Err(e) => usage(format!(
            "{what}: not a SessionCreated JSON (the host's word): {}",
            crate::client::in_quotes(&e.to_string(), crate::client::MAX_QUOTED)
        )),
    }
}

fn fetch(args: &VerifySessionArgs) -> Result<(SessionCreated, Option<B256>), Failure> {
    if let Some(path) = &args.binding {
        let text = std::fs::read_to_string(path).or_else(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).or_else(|e| usage(format!("{} is not JSON: {e}", path.display())))?;
        return session_created(v, &path.display().to_string());
    }
    let (Some(url), Some(session)) = (&args.host, &args.session) else {
        return usage("give --host URL --session 0x…, or --binding FILE");
    };
    let host = crate::client::Host::new(url).or_else(|e| usage(format!("{e:#}")))?;
    let v: serde_json::Value =
        host.get(&format!("/v1/sessions/{session}")).or_else(|e| usage(format!("session {session}: {e:#}")))?;
    session_created(v, &format!("{url} session {session}"))
}

/// The policy the owner holds, resolved as the enclave saw it (see the module docs).
fn owner_policy(path: &PathBuf, created_at: u64, valid_until: u64) -> Result<(Policy, PolicySource), Failure> {
    let text = std::fs::read_to_string(path).or_else(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    if text.trim_start().starts_with('{') {
        if let Ok(p) = serde_json::from_str::<Policy>(&text) {
            return Ok((p, PolicySource::Normalized));
        }
    }
    let file = parse_file(&text).or_else(|d| usage(format!("--policy {}: {d}", path.display())))?;
    match file.valid_for.clone() {
        None => {
            let p = resolve(file, created_at).or_else(|d| usage(format!("--policy {}: {d}", path.display())))?;
            Ok((p, PolicySource::File))
        }
        Some(d) => {
            let secs = parse_duration(&d).or_else(|e| usage(format!("--policy {}: valid_for: {e}", path.display())))?;
            let at = valid_until.saturating_sub(secs);
            let p = resolve(file, at).or_else(|d| usage(format!("--policy {}: {d}", path.display())))?;
            Ok((p, PolicySource::ValidFor { secs, resolved_at: at }))
        }
    }
}

/// The session now, as the attested enclave signed it for a fresh nonce of ours.
struct Now {
    status: bridle_common::protocol::SessionStatus,
    signed_at: u64,
    nonce: B256,
}

fn policy_now(url: &str, session: Address, identity: Address, b: &SessionBinding) -> Result<Now, Failure> {
    let host = crate::client::Host::new(url).or_else(|e| usage(format!("{e:#}")))?;
    let (st, nonce) = crate::trust::fetch_status(&host, Some(session))
        .or_else(|e| usage(format!("the session's status from {url}: {e:#}")))?;
    if st.identity_address != identity {
        return invalid(format!(
            "the host's enclave is now {}, not the attested {identity} that holds the session: the enclave restarted \
             (the session is lost) or the host serves another enclave",
            st.identity_address
        ));
    }
    let r = match bridle_common::receipt::verify(&st, identity, Some(nonce)) {
        Ok(r) => r.clone(),
        Err(e) => return invalid(format!("the session's status is not the attested enclave's word: {e}")),
    };
    let Some(ss) = st.session else {
        return invalid(format!(
            "the attested enclave holds no session {session} now (its signed status says so): ended and dropped"
        ));
    };
    if ss.owner != b.owner || ss.agent != b.agent {
        return invalid(format!(
            "the enclave's signed status names owner {} and agent {}, not the binding's {} and {}",
            ss.owner, ss.agent, b.owner, b.agent
        ));
    }
    Ok(Now { status: *ss, signed_at: r.time, nonce })
}

fn hex_or_null(v: &Option<Vec<u8>>) -> serde_json::Value {
    match v {
        Some(b) => serde_json::Value::String(hex::encode(b)),
        None => serde_json::Value::Null,
    }
}

fn check(args: &VerifySessionArgs, err: &mut dyn Write) -> Result<serde_json::Value, Failure> {
    let given = args.pcrs.iter().map(|p| (p.index, p.value.clone()));
    let expected_pcrs = match expected_pcrs(given, args.pcrs_file.as_deref(), args.any_image) {
        Ok(e) => e,
        Err(reason) => return usage(reason),
    };
    let root = match &args.root {
        Some(p) => read_root(p)?,
        None => TrustedRoot::AwsNitroRootG1,
    };
    if !args.policy.exists() {
        return usage(format!("cannot read {}: no such file", args.policy.display()));
    }
    let (created, _host_says) = fetch(args)?;
    let b = &created.binding;
    let digest = b.digest();

    // 1. The binding is for the session asked about.
    if let Some(s) = args.session {
        if s != b.session {
            return invalid(format!("the binding is for session {}, not {s}", b.session));
        }
    }

    // 2. The attestation document, with user_data = binding digest.
    let Some(doc) = created.attestation.as_ref() else {
        return invalid("the binding carries no attestation document (enclave without NSM?)");
    };
    let time = match args.max_age {
        Some(max_age_secs) => VerifyTime::Now { max_age_secs },
        None => match parse_document(doc) {
            // A stored document: judged as of its own timestamp.
            Ok(d) => VerifyTime::At(d.timestamp_ms / 1000),
            Err(e) => return invalid(format!("attestation document: {e}")),
        },
    };
    if args.any_image && !pins_image(&expected_pcrs) {
        let _ =
            writeln!(err, "warning: --any-image: the document then only proves that some Nitro enclave holds the key");
    }
    let options = VerifyOptions {
        root,
        time,
        expected_pcrs,
        expected_nonce: None,
        expected_public_key: None,
        expected_user_data: Some(digest.to_vec()),
        allow_debug: args.allow_debug,
        any_image: args.any_image,
    };
    let verified = match verify(doc, &options) {
        Ok(v) => v,
        Err(e) => return invalid(format!("attestation document: {e}")),
    };

    // 3. public_key is the enclave identity.
    let Some(pk) = verified.public_key.as_ref() else {
        return invalid("the attestation document carries no public_key (expected the enclave identity key)");
    };
    let identity = match k256::ecdsa::VerifyingKey::from_sec1_bytes(pk) {
        Ok(k) => Address::from_public_key(&k),
        Err(_) => return invalid(format!("the document's public_key {} is not a secp256k1 SEC1 key", hex::encode(pk))),
    };
    if identity != b.enclave {
        return invalid(format!(
            "the attested identity key is address {identity}, but the binding names enclave {}",
            b.enclave
        ));
    }

    // 4. The binding signature is the identity's.
    let signer =
        Signature::from_raw(&created.binding_signature).ok().and_then(|s| s.recover_address_from_prehash(&digest).ok());
    match signer {
        Some(s) if s == identity => {}
        Some(s) => return invalid(format!("binding_signature recovers to {s}, not the attested identity {identity}")),
        None => return invalid("binding_signature is not a valid 65-byte signature over the binding digest"),
    }

    // 7. With --host: the policy in force now, from a status the attested identity signed
    //    for a fresh nonce of ours. Otherwise the binding's (the policy at creation).
    let now = match (&args.host, args.session) {
        (Some(url), Some(session)) => Some(policy_now(url, session, identity, b)?),
        _ => None,
    };
    let (in_force, valid_until, created_at) = match &now {
        Some(n) => (n.status.policy_hash, n.status.valid_until, n.status.created_at),
        None => (b.policy_hash, b.valid_until, b.created_at),
    };
    let updated = in_force != b.policy_hash;

    // 5. The policy the owner holds.
    let (policy, source) = owner_policy(&args.policy, created_at, valid_until)?;
    let hash = policy.hash();
    if hash != in_force {
        let what = if now.is_some() { "in force now (the enclave's signed status)" } else { "bound at creation" };
        // The file may be the policy the session was created with (resolved as at creation).
        let at_creation = updated
            && owner_policy(&args.policy, b.created_at, b.valid_until).is_ok_and(|(p, _)| p.hash() == b.policy_hash);
        let also =
            if at_creation { " — it is the policy bound at creation, replaced since by an owner update" } else { "" };
        return invalid(format!(
            "policy hash mismatch: the policy {what} is {in_force}, the policy in {} ({}) hashes to {hash}{also}",
            args.policy.display(),
            source.describe()
        ));
    }
    if policy.valid_until.unwrap_or(0) != valid_until {
        return invalid(format!(
            "the session's valid_until {valid_until} differs from the policy's {:?}",
            policy.valid_until
        ));
    }
    if let (PolicySource::ValidFor { secs, resolved_at }, false) = (&source, updated) {
        // The owner's CLI resolved valid_for just before relaying the grant: the implied
        // grant time must be the session's creation, give or take the clock skew.
        let (secs, resolved_at) = (*secs, *resolved_at);
        if resolved_at.abs_diff(b.created_at) > VALID_FOR_SKEW_SECS {
            return invalid(format!(
                "the session lives {} s from its creation (created_at {}, valid_until {}), but {} says valid_for \
                 {secs} s (tolerance {VALID_FOR_SKEW_SECS} s): verify against the normalized policy JSON instead",
                b.valid_until.saturating_sub(b.created_at),
                b.created_at,
                b.valid_until,
                args.policy.display()
            ));
        }
    }

    // 6. Owner and agent.
    if let Some(o) = args.owner {
        if o != b.owner {
            return invalid(format!("the binding's owner is {}, not {o}", b.owner));
        }
    }
    if let Some(a) = args.agent {
        if a != b.agent {
            return invalid(format!("the binding's agent is {}, not {a}", b.agent));
        }
    }

    if now.is_none() {
        let _ = writeln!(
            err,
            "note: offline, this proves the policy at the session's creation; an owner update may have replaced it \
             (pass --host and --session to prove the policy in force now)"
        );
    }
    if verified.debug {
        let _ = writeln!(err, "warning: debug-mode enclave accepted (--allow-debug)");
    }

    let pcrs: serde_json::Map<String, serde_json::Value> =
        verified.pcrs.iter().map(|(i, v)| (i.to_string(), serde_json::Value::String(hex::encode(v)))).collect();
    Ok(serde_json::json!({
        "verdict": "valid",
        "session": b.session,
        "owner": b.owner,
        "agent": b.agent,
        "enclave": b.enclave,
        "policy_hash": in_force,
        "policy_source": source.describe(),
        "created_at": b.created_at,
        "valid_until": b.valid_until,
        "binding_digest": digest,
        "policy_at_creation": b.policy_hash,
        "updated_since_creation": updated,
        "now": now.as_ref().map(|n| serde_json::json!({
            "policy_hash": n.status.policy_hash,
            "state": n.status.state,
            "valid_until": n.status.valid_until,
            "signed_at": n.signed_at,
            "signed_at_utc": bridle_common::period::format_time(n.signed_at),
            "nonce": n.nonce,
        })),
        "identity_public_key": format!("0x{}", hex::encode(pk)),
        "document": {
            "module_id": verified.module_id,
            "timestamp": verified.timestamp_ms,
            "digest": verified.digest,
            "pcrs": pcrs,
            "public_key": hex_or_null(&verified.public_key),
            "user_data": hex_or_null(&verified.user_data),
            "nonce": hex_or_null(&verified.nonce),
            "debug": verified.debug,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_arguments() {
        let v = "ab".repeat(48);
        assert_eq!(parse_pcr(&format!("16={v}")).unwrap().index, 16);
        assert_eq!(parse_pcr(&format!("PCR0=0x{v}")).unwrap().index, 0);
        assert!(parse_pcr("16=abcd").is_err());
        assert!(parse_pcr(&format!("x={v}")).is_err());
        assert!(parse_pcr(&v).is_err());
    }

    #[test]
    fn session_created_forms() {
        let created = serde_json::json!({
            "binding": {
                "enclave": Address::ZERO, "session": Address::ZERO, "owner": Address::ZERO,
                "agent": Address::ZERO, "policy_hash": B256::ZERO, "created_at": 1, "valid_until": 2
            },
            "binding_signature": "0x00",
            "attestation": null
        });
        assert!(session_created(created.clone(), "x").is_ok());
        let stored =
            serde_json::json!({ "session": null, "stored": { "policy_hash": B256::ZERO, "binding": created } });
        let (_, current) = session_created(stored, "x").ok().unwrap();
        assert_eq!(current, Some(B256::ZERO));
        assert!(matches!(session_created(serde_json::json!({ "stored": null }), "x"), Err(Failure::Usage(_))));
        assert!(matches!(session_created(serde_json::json!([1]), "x"), Err(Failure::Usage(_))));
    }
}
