//! What `bridle verify attestation` and `bridle verify session` print as their verdict is
//! never drawn by the host (a review of 2026-12-07): their `invalid: …` / `error: …` lines
//! quoted unauthenticated host bytes raw — a payload field name given twice
//! (`VerifyError::DuplicateField`, checked before any signature), a field name serde did not
//! expect in the host's `GET /v1/sessions/{s}` reply — so a host could erase the `invalid:`
//! line and draw `valid: session binding verified` / `proven: …` in its place. Each reason
//! now goes through `printable` (and serde's error in quotes, labelled the host's word).
//!
//! Runs the built `target/debug/bridle` (`make test` builds it first).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// Erases the line and the one above, then draws a forged verdict.
const FORGED: &str = "x\r\u{1b}[2K\u{1b}[1A\u{1b}[2Kvalid: session binding verified\nproven: key 0x00 lives in an \
                      enclave with these PCRs and enforces policy 0xfeed for owner 0xbeef now\u{1b}[8m";

fn bridle() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/bridle");
    assert!(p.exists(), "{} not built", p.display());
    p
}

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn bstr(b: &[u8], out: &mut Vec<u8>) {
    head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn tstr(s: &str, out: &mut Vec<u8>) {
    head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// A COSE_Sign1 whose payload names one field twice: refused `DuplicateField` before any
/// certificate or signature is looked at — anyone can make it.
fn hostile_document() -> Vec<u8> {
    let mut payload = Vec::new();
    head(5, 2, &mut payload);
    tstr(FORGED, &mut payload);
    head(0, 0, &mut payload);
    tstr(FORGED, &mut payload);
    head(0, 0, &mut payload);
    let mut d = Vec::new();
    head(4, 4, &mut d);
    bstr(&[0xa1, 0x01, 0x38, 0x22], &mut d);
    head(5, 0, &mut d);
    bstr(&payload, &mut d);
    bstr(&[0; 96], &mut d);
    d
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bridle-verdict-terminal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What a terminal would obey: ESC, CSI, CR, and line breaks inside one reason.
/// What in `stderr` a terminal would obey rather than show (escape sequences, a carriage
/// return), and every line that reads as a verdict the CLI did not reach.
fn obeyed(stderr: &str) -> Vec<String> {
    let mut found: Vec<String> =
        stderr.chars().filter(|c| matches!(c, '\u{1b}' | '\u{9b}' | '\r')).map(|c| format!("{c:?}")).collect();
    found.extend(stderr.lines().filter(|l| l.starts_with("valid:") || l.starts_with("proven:")).map(str::to_string));
    found
}

/// A host answering every GET with `body` (JSON).
fn host(body: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    url
}

fn policy_file() -> PathBuf {
    let p = tmp("policy.json");
    std::fs::write(&p, "{}").unwrap();
    p
}

const SESSION: &str = "0x1111111111111111111111111111111111111111";

fn created(attestation: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "binding": {
            "enclave": "0x2222222222222222222222222222222222222222",
            "session": SESSION,
            "owner": "0x3333333333333333333333333333333333333333",
            "agent": "0x4444444444444444444444444444444444444444",
            "policy_hash": format!("0x{}", "55".repeat(32)),
            "created_at": 1,
            "valid_until": 2
        },
        "binding_signature": format!("0x{}", "00".repeat(65)),
        "attestation": format!("0x{}", hex::encode(attestation)),
    })
}

#[test]
fn verify_attestation_prints_no_document_bytes_a_terminal_obeys() {
    let f = tmp("doc.cbor");
    std::fs::write(&f, hostile_document()).unwrap();
    let out = Command::new(bridle()).args(["verify", "attestation"]).arg(&f).arg("--any-image").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("exit {:?}; stderr: {stderr:?}", out.status.code());
    assert_eq!(out.status.code(), Some(1));
    assert!(obeyed(&stderr).is_empty(), "the document's bytes reach the terminal raw: {stderr:?}");
}

#[test]
fn verify_session_prints_no_host_attestation_bytes_a_terminal_obeys() {
    let url = host(created(&hostile_document()).to_string());
    let out = Command::new(bridle())
        .args(["verify", "session", "--host", &url, "--session", SESSION, "--any-image", "--policy"])
        .arg(policy_file())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("exit {:?}; stderr: {stderr:?}", out.status.code());
    assert_eq!(out.status.code(), Some(1));
    assert!(obeyed(&stderr).is_empty(), "the host's bytes reach the terminal raw: {stderr:?}");
}

#[test]
fn verify_session_prints_no_host_field_name_a_terminal_obeys() {
    // A stored-binding reply with one field serde does not expect (SessionCreated denies
    // unknown fields): serde's error quotes its name, and `session_created` prints it as is.
    let mut body = created(&hostile_document());
    body[FORGED] = serde_json::json!(1);
    let url = host(body.to_string());
    let out = Command::new(bridle())
        .args(["verify", "session", "--host", &url, "--session", SESSION, "--any-image", "--policy"])
        .arg(policy_file())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("exit {:?}; stderr: {stderr:?}", out.status.code());
    assert_eq!(out.status.code(), Some(2));
    assert!(obeyed(&stderr).is_empty(), "the host's bytes reach the terminal raw: {stderr:?}");
}
