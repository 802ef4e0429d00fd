//! `bridle verify attestation`: verify an AWS Nitro Enclaves attestation document.
//!
//! ```text
//! bridle verify attestation <FILE> [--root <PEM>] [--at <unix-seconds> | --max-age <seconds>]
//!                           (--pcrs <pcrs.json> | --pcr <N>=<hex>... | --any-image)
//!                           [--nonce <hex>] [--allow-debug] [--json]
//! ```
//!
//! The expected PCRs must pin the image (PCR0, or PCR1 and PCR2), from `--pcr` and/or a
//! release's `pcrs.json` (`--pcrs`), unless `--any-image` says explicitly that any image
//! will do: a verifier given no expected image never passes.
//!
//! Exit status: 0 the document is valid; 1 it is invalid (the reason is printed on
//! stderr); 2 usage error (clap's own, a PCR index given twice with different values, no
//! expected image without `--any-image`, or FILE / the root / the pcrs file cannot be read
//! or parsed).
//!
//! Self-contained: uses only `clap`, `serde_json`, `hex` and `bridle_attestation`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bridle_attestation::{
    decode_document_input, parse_pcrs_json, pins_image, verify, TrustedRoot, VerifiedDocument, VerifyOptions,
    VerifyTime, DEFAULT_MAX_AGE_SECS,
};

/// An expected PCR given as `N=HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrArg {
    /// PCR index.
    pub index: u16,
    /// Expected value.
    pub value: Vec<u8>,
}

/// Bytes given as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexArg(pub Vec<u8>);

fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

fn parse_pcr(s: &str) -> Result<PcrArg, String> {
    let (index, value) = s.split_once('=').ok_or_else(|| "expected N=HEX, e.g. 0=17bf8f04…".to_string())?;
    let index = index.trim();
    // Accept "0=…" and "PCR0=…".
    let index = match index.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("pcr") => index.get(3..).unwrap_or(""),
        _ => index,
    };
    let index: u16 = index.parse().map_err(|_| format!("PCR index {index:?} is not a number 0..=65535"))?;
    let value = parse_hex_bytes(value)?;
    if ![32, 48, 64].contains(&value.len()) {
        return Err(format!("PCR{index} value has {} bytes: expected 48 (96 hex digits), or 32/64", value.len()));
    }
    Ok(PcrArg { index, value })
}

fn parse_hex_arg(s: &str) -> Result<HexArg, String> {
    parse_hex_bytes(s).map(HexArg)
}

/// Arguments of `bridle verify attestation`.
#[derive(clap::Args, Debug, Clone)]
pub struct VerifyAttestationArgs {
    /// Attestation document: raw CBOR (COSE_Sign1) or base64 text; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Trusted root certificate (PEM, or DER) instead of the embedded AWS Nitro
    /// Enclaves Root-G1. Needed for documents of the mock NSM.
    #[arg(long, value_name = "PEM")]
    pub root: Option<PathBuf>,

    /// Verify a stored document as of this instant (unix seconds), e.g. its own
    /// timestamp. Without it the document is judged now.
    #[arg(long, value_name = "UNIX_SECONDS", conflicts_with = "max_age")]
    pub at: Option<u64>,

    /// When judging now: maximum distance between now and the document
    /// timestamp, in seconds [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub max_age: Option<u64>,

    /// Expected PCR value (repeatable), e.g. --pcr 0=17bf8f04…3790. Every one
    /// given must be present and equal.
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

    /// Expected nonce (hex).
    #[arg(long, value_name = "HEX", value_parser = parse_hex_arg)]
    pub nonce: Option<HexArg>,

    /// Accept debug-mode documents (all-zero PCR0/1/2). Never for production.
    #[arg(long)]
    pub allow_debug: bool,

    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The expected PCRs from `--pcr` options (`given`) and a `--pcrs` file, merged: an index
/// given twice must have one value. Unless `any_image`, they must pin the image (PCR0, or
/// PCR1 and PCR2). Errors are usage errors (exit 2).
pub fn expected_pcrs(
    given: impl IntoIterator<Item = (u16, Vec<u8>)>,
    pcrs_file: Option<&Path>,
    any_image: bool,
) -> Result<BTreeMap<u16, Vec<u8>>, String> {
    let mut expected: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    let mut add = |index: u16, value: Vec<u8>, from: &str| -> Result<(), String> {
        match expected.insert(index, value.clone()) {
            Some(prev) if prev != value => Err(format!("PCR{index} given twice with different values ({from})")),
            _ => Ok(()),
        }
    };
    for (index, value) in given {
        add(index, value, "--pcr")?;
    }
    if let Some(path) = pcrs_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = parse_pcrs_json(&text).map_err(|e| format!("--pcrs {}: {e}", path.display()))?;
        for (index, value) in file {
            add(index, value, &format!("--pcr and --pcrs {}", path.display()))?;
        }
    }
    if !any_image && !pins_image(&expected) {
        let given = if expected.is_empty() {
            "none".to_string()
        } else {
            expected.keys().map(|i| format!("PCR{i}")).collect::<Vec<_>>().join(", ")
        };
        return Err(format!(
            "no expected image (expected PCRs given: {given}): pass the image's PCR0 (or PCR1 and PCR2) with \
             --pcrs pcrs.json or --pcr 0=<hex> (all zeros, a debug-mode enclave's, pins none), or --any-image to \
             accept whatever image produced the document"
        ));
    }
    Ok(expected)
}

/// Runs the command; returns the process exit status (0 valid, 1 invalid, 2 usage).
pub fn run(args: &VerifyAttestationArgs) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

fn read_input(path: &PathBuf) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn hex_or_null(v: &Option<Vec<u8>>) -> serde_json::Value {
    match v {
        Some(b) => serde_json::Value::String(hex::encode(b)),
        None => serde_json::Value::Null,
    }
}

/// Unix milliseconds as an ISO 8601 UTC date.
fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

fn valid_json(v: &VerifiedDocument) -> serde_json::Value {
    let pcrs: serde_json::Map<String, serde_json::Value> =
        v.pcrs.iter().map(|(i, val)| (i.to_string(), serde_json::Value::String(hex::encode(val)))).collect();
    serde_json::json!({
        "verdict": "valid",
        "module_id": v.module_id,
        "timestamp": v.timestamp_ms,
        "timestamp_iso": iso8601(v.timestamp_ms),
        "digest": v.digest,
        "pcrs": pcrs,
        "public_key": hex_or_null(&v.public_key),
        "user_data": hex_or_null(&v.user_data),
        "nonce": hex_or_null(&v.nonce),
        "debug": v.debug,
    })
}

/// Like [`run`], writing to the given streams (for tests).
pub fn run_with(args: &VerifyAttestationArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    // Usage-level problems: exit 2.
    let usage = |err: &mut dyn Write, out: &mut dyn Write, reason: String| -> i32 {
        let _ = writeln!(err, "error: {}", bridle_common::quote::printable(&reason));
        if args.json {
            let _ = writeln!(out, "{}", serde_json::json!({ "verdict": "error", "reason": reason }));
        }
        2
    };

    let given = args.pcrs.iter().map(|p| (p.index, p.value.clone()));
    let expected_pcrs = match expected_pcrs(given, args.pcrs_file.as_deref(), args.any_image) {
        Ok(e) => e,
        Err(reason) => return usage(err, out, reason),
    };

    let root = match &args.root {
        None => TrustedRoot::AwsNitroRootG1,
        Some(path) => {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => return usage(err, out, format!("cannot read {}: {e}", path.display())),
            };
            if bytes.windows(10).any(|w| w == b"-----BEGIN") {
                match TrustedRoot::from_pem(&String::from_utf8_lossy(&bytes)) {
                    Ok(r) => r,
                    Err(e) => return usage(err, out, format!("--root {}: {e}", path.display())),
                }
            } else {
                TrustedRoot::Der(bytes)
            }
        }
    };

    let raw = match read_input(&args.file) {
        Ok(b) => b,
        Err(reason) => return usage(err, out, reason),
    };

    let time = match args.at {
        Some(at) => VerifyTime::At(at),
        None => VerifyTime::Now { max_age_secs: args.max_age.unwrap_or(DEFAULT_MAX_AGE_SECS) },
    };
    if args.any_image && !pins_image(&expected_pcrs) {
        let _ = writeln!(
            err,
            "warning: --any-image: a valid document then only proves that some Nitro enclave produced it"
        );
    }
    let options = VerifyOptions {
        root,
        time,
        expected_pcrs,
        expected_nonce: args.nonce.as_ref().map(|n| n.0.clone()),
        expected_public_key: None,
        expected_user_data: None,
        allow_debug: args.allow_debug,
        any_image: args.any_image,
    };

    let result = decode_document_input(&raw).and_then(|(doc, _)| verify(&doc, &options));
    match result {
        Ok(v) => {
            if args.json {
                let _ = writeln!(out, "{}", valid_json(&v));
            } else {
                let _ = writeln!(out, "valid: Nitro Enclave attestation document");
                let _ = writeln!(out, "{v}");
                let _ = writeln!(out, "time: {}", iso8601(v.timestamp_ms));
                if let Some(root) = v.chain.last() {
                    let _ = writeln!(out, "root: {} (SHA-256 {})", root.subject, hex::encode(root.sha256));
                }
            }
            if v.debug {
                let _ = writeln!(err, "warning: debug-mode enclave accepted (--allow-debug)");
            }
            0
        }
        Err(e) => {
            let reason = e.to_string();
            let _ = writeln!(err, "invalid: {}", bridle_common::quote::printable(&reason));
            if args.json {
                let _ = writeln!(out, "{}", serde_json::json!({ "verdict": "invalid", "reason": reason }));
            }
            1
        }
    }
}
