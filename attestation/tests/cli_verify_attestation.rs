//! The `bridle verify attestation` command module (cli/src/verify_attestation.rs),
//! compiled here standalone with the same dependencies the CLI crate has.

mod common;

#[path = "../../cli/src/verify_attestation.rs"]
mod verify_attestation;

use std::io::Write;

use bridle_attestation::{MockNsm, NsmProvider};
use clap::Parser;
use common::*;
use verify_attestation::{run_with, VerifyAttestationArgs};

#[derive(Parser, Debug)]
#[command(name = "bridle-verify-attestation")]
struct Cli {
    #[command(flatten)]
    args: VerifyAttestationArgs,
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/nitro");

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn parse(argv: &[&str]) -> Result<VerifyAttestationArgs, clap::Error> {
    let mut full = vec!["bridle-verify-attestation"];
    full.extend_from_slice(argv);
    Cli::try_parse_from(full).map(|c| c.args)
}

fn run(argv: &[&str]) -> (i32, String, String) {
    let args = parse(argv).expect("arguments");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(&args, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn sample_args(extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        fixture("nitro_sample_2024.cbor"),
        "--at".into(),
        SAMPLE_TS.to_string(),
        "--pcr".into(),
        format!("0={SAMPLE_PCR0}"),
        "--pcr".into(),
        format!("PCR1={SAMPLE_PCR1}"),
        "--pcr".into(),
        format!("2={SAMPLE_PCR2}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn sample_valid_text_and_json() {
    let a = sample_args(&[]);
    let (code, out, err) = run(&strs(&a));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid"), "{out}");
    assert!(out.contains(SAMPLE_PCR0));
    assert!(out.contains("2024-02-26T07:02:01.439Z"), "{out}");

    let a = sample_args(&["--json"]);
    let (code, out, _) = run(&strs(&a));
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["timestamp"], SAMPLE_TS_MS);
    assert_eq!(j["digest"], "SHA384");
    assert_eq!(j["pcrs"]["0"], SAMPLE_PCR0);
    assert_eq!(j["public_key"], SAMPLE_PUBLIC_KEY);
    assert_eq!(j["nonce"], serde_json::Value::Null);
    assert_eq!(j["user_data"].as_str().unwrap().len(), 84);
}

#[test]
fn sample_invalid_now_and_wrong_pcr() {
    // No expected image: refused before anything else (usage, exit 2).
    let (code, out, err) = run(&[&fixture("nitro_sample_2024.cbor"), "--json"]);
    assert_eq!(code, 2);
    assert!(err.contains("no expected image"), "{err}");
    assert!(out.contains("\"verdict\":\"error\""), "{out}");
    let (code, _, err) = run(&[&fixture("nitro_sample_2024.cbor"), "--any-image", "--json"]);
    assert_eq!(code, 1);
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains("warning: --any-image"), "{err}");

    let a = sample_args(&["--pcr", "3=00", "--json"]);
    assert!(parse(&strs(&a)).is_err(), "short PCR value is a usage error");

    let wrong = format!("16={}", "ab".repeat(48));
    let a = sample_args(&["--pcr", &wrong, "--json"]);
    let (code, out, err) = run(&strs(&a));
    assert_eq!(code, 1);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["verdict"], "invalid");
    assert!(j["reason"].as_str().unwrap().contains("PCR16"), "{out}");
    assert!(err.contains("PCR16"));

    let a = sample_args(&["--nonce", "0011"]);
    let (code, _, err) = run(&strs(&a));
    assert_eq!(code, 1);
    assert!(err.contains("nonce mismatch: expected 0011, actual null"), "{err}");
}

#[test]
fn debug_document_needs_allow_debug() {
    let ts = DEBUG_TS.to_string();
    let (code, _, err) = run(&[&fixture("nitro_debug_2022.cbor"), "--at", &ts, "--any-image"]);
    assert_eq!(code, 1);
    assert!(err.contains("debug"), "{err}");
    let (code, _, err) = run(&[&fixture("nitro_debug_2022.cbor"), "--at", &ts, "--any-image", "--allow-debug"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn base64_input_and_mock_root() {
    let dir = std::env::temp_dir().join(format!("bridle-att-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Base64 of the real sample, with line breaks.
    let b64 = base64_encode(SAMPLE_2024);
    let wrapped: String = b64.as_bytes().chunks(76).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect();
    let f = dir.join("sample.b64");
    std::fs::write(&f, wrapped).unwrap();
    let mut a = sample_args(&[]);
    a[0] = f.display().to_string();
    let (code, _, err) = run(&strs(&a));
    assert_eq!(code, 0, "{err}");

    // A mock document: valid with --root, invalid without.
    let nsm = MockNsm::new().unwrap();
    let doc = nsm.attestation(None, Some(vec![0xab, 0xcd]), None).unwrap();
    let docf = dir.join("mock.cbor");
    std::fs::write(&docf, &doc).unwrap();
    let rootf = dir.join("mock_root.pem");
    std::fs::File::create(&rootf).unwrap().write_all(nsm.root_pem().as_bytes()).unwrap();
    let pcr0 = format!("0={}", hex::encode(nsm.image().pcr0));
    let docs = docf.display().to_string();
    let roots = rootf.display().to_string();
    let (code, out, err) = run(&[&docs, "--root", &roots, "--pcr", &pcr0, "--nonce", "abcd", "--json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["nonce"], "abcd");
    assert_eq!(j["module_id"], nsm.module_id());
    let (code, _, err) = run(&[&docs, "--pcr", &pcr0]);
    assert_eq!(code, 1);
    assert!(err.contains("trusted root"), "{err}");
    let (code, _, _) = run(&[&docs, "--root", &roots, "--pcr", &pcr0, "--max-age", "0"]);
    assert!(code == 0 || code == 1);

    // Unreadable files: exit 2.
    let (code, _, err) = run(&["/nonexistent/doc.cbor", "--any-image"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&[&docs, "--any-image", "--root", "/nonexistent/root.pem"]);
    assert_eq!(code, 2);
    std::fs::write(dir.join("bad.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    let bad = dir.join("bad.pem").display().to_string();
    let (code, _, _) = run(&[&docs, "--any-image", "--root", &bad]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn usage_errors() {
    let f = fixture("nitro_sample_2024.cbor");
    assert!(parse(&[]).is_err());
    assert!(parse(&[&f, "--at", "1", "--max-age", "5"]).is_err(), "--at conflicts with --max-age");
    assert!(parse(&[&f, "--pcr", "x=00"]).is_err());
    assert!(parse(&[&f, "--pcr", "0"]).is_err());
    assert!(parse(&[&f, "--nonce", "zz"]).is_err());
    assert!(parse(&[&f, "--at", "-5"]).is_err());
    let e = parse(&[&f, "--bogus"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    // Same PCR index with two values.
    let one = format!("0={}", "00".repeat(48));
    let two = format!("0={}", "11".repeat(48));
    let (code, _, err) = run(&[&f, "--pcr", &one, "--pcr", &two]);
    assert_eq!(code, 2);
    assert!(err.contains("twice"));
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn run_writes_to_the_process_streams() {
    let args = parse(&[&fixture("nitro_debug_2022.cbor"), "--at", &DEBUG_TS.to_string(), "--any-image"]).unwrap();
    assert_eq!(verify_attestation::run(&args), 1);
}

#[test]
fn expected_image_from_pcrs_json_or_pcr1_and_pcr2() {
    let dir = std::env::temp_dir().join(format!("bridle-att-pcrs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = fixture("nitro_sample_2024.cbor");
    let ts = SAMPLE_TS.to_string();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // The file `make enclave-image` writes: PCR0..2 (+ PCR16, descriptive keys ignored).
    let good = write(
        "pcrs.json",
        format!(r#"{{"PCR0":"{SAMPLE_PCR0}","PCR1":"{SAMPLE_PCR1}","PCR2":"{SAMPLE_PCR2}","kernel":"linux-image-…"}}"#),
    );
    let (code, out, err) = run(&[&f, "--at", &ts, "--pcrs", &good]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    // nitro-cli's output format.
    let nitro = write(
        "nitro.json",
        format!(r#"{{"Measurements":{{"HashAlgorithm":"Sha384 {{ ... }}","PCR0":"{SAMPLE_PCR0}"}}}}"#),
    );
    assert_eq!(run(&[&f, "--at", &ts, "--pcrs", &nitro]).0, 0);
    // Another image's file.
    let other = write("other.json", format!(r#"{{"PCR0":"{SAMPLE_PCR0}","PCR1":"{}"}}"#, "11".repeat(48)));
    let (code, _, err) = run(&[&f, "--at", &ts, "--pcrs", &other]);
    assert_eq!(code, 1);
    assert!(err.contains("PCR1 mismatch"), "{err}");
    // --pcr and --pcrs disagreeing on an index, a malformed or missing file: usage errors.
    let wrong0 = format!("0={}", "22".repeat(48));
    let (code, _, err) = run(&[&f, "--at", &ts, "--pcrs", &good, "--pcr", &wrong0]);
    assert_eq!(code, 2);
    assert!(err.contains("PCR0 given twice"), "{err}");
    let bad = write("bad.json", r#"{"PCR0":"xyz"}"#.to_string());
    let (code, _, err) = run(&[&f, "--at", &ts, "--pcrs", &bad]);
    assert_eq!(code, 2);
    assert!(err.contains("not hex"), "{err}");
    assert_eq!(run(&[&f, "--at", &ts, "--pcrs", "/nonexistent/pcrs.json"]).0, 2);
    // PCR1 and PCR2 together pin the image too; PCR16 alone (configuration) does not.
    let (p1, p2) = (format!("1={SAMPLE_PCR1}"), format!("2={SAMPLE_PCR2}"));
    assert_eq!(run(&[&f, "--at", &ts, "--pcr", &p1, "--pcr", &p2]).0, 0);
    let (code, _, err) = run(&[&f, "--at", &ts, "--pcr", &p1]);
    assert_eq!(code, 2);
    assert!(err.contains("expected PCRs given: PCR1"), "{err}");
    let p16 = format!("16={}", "ab".repeat(48));
    let (code, _, err) = run(&[&f, "--at", &ts, "--pcr", &p16]);
    assert_eq!(code, 2);
    assert!(err.contains("no expected image"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
