//! A stranger's third handshake message is refused before its cost can grow (a review of
//! 2026-12-06: it cost the responder as much CPU as the stranger liked).
//!
//! Anyone who reaches a host's cluster listener can POST `Wire::Hello` then `Wire::Finish`
//! (`enclave/src/cluster/peers.rs`); the responder verifies the attestation document inside
//! message 3 (`ResponderState::finish` → `bridle_attestation::verify`) before anything about
//! the sender is known, synchronously, on one of the enclave's async runtime workers. A
//! genuine document costs about a millisecond. These documents — each within the 64 KiB a
//! Noise message carries — cost far more, before any signature is checked:
//!
//! * a COSE protected header with ~16 000 distinct labels: `cose::check_protected_header`
//!   looks each label up in a `Vec` of the labels before it (quadratic);
//! * a leaf certificate whose issuer name is one RDN of ~5 900 attributes in descending DER
//!   order: `der`'s `SetOfVec` decoder sorts a SET OF by insertion sort (quadratic) before
//!   the certificate is refused as not canonical.
//!
//! Both are refused now before they are decoded or parsed: a protected header of more than
//! `MAX_PROTECTED_BYTES` bytes, a certificate of more than `MAX_CERT_BYTES` (AWS bounds a
//! document's certificates to 1 024 bytes). Each test plays the stranger with a real Noise
//! initiator (its "NSM" hands back the crafted document) against a real responder, and
//! checks the refusal names the bound (the times are printed, never asserted).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bridle_attestation::MockCa;
use bridle_channel::{Initiator, Responder, MAX_HANDSHAKE_DOCUMENT_LEN};
use common::*;

// ----- CBOR, by hand -----

fn cbor_head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len() as u64, out);
    out.extend_from_slice(b);
}

fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A payload with every field the verifier reads, `certificate` as given.
fn payload(certificate: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    cbor_head(5, 6, &mut p);
    cbor_text("module_id", &mut p);
    cbor_text("i-0", &mut p);
    cbor_text("digest", &mut p);
    cbor_text("SHA384", &mut p);
    cbor_text("timestamp", &mut p);
    cbor_head(0, now_ms(), &mut p);
    cbor_text("pcrs", &mut p);
    cbor_head(5, 1, &mut p);
    cbor_head(0, 0, &mut p);
    cbor_bytes(&[1; 48], &mut p);
    cbor_text("certificate", &mut p);
    cbor_bytes(certificate, &mut p);
    cbor_text("cabundle", &mut p);
    cbor_head(4, 1, &mut p);
    cbor_bytes(&[0x30], &mut p);
    p
}

/// COSE_Sign1 (tag 18) of `protected` and `payload`, a signature of zeros.
fn cose(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    cbor_head(6, 18, &mut d);
    cbor_head(4, 4, &mut d);
    cbor_bytes(protected, &mut d);
    cbor_head(5, 0, &mut d);
    cbor_bytes(payload, &mut d);
    cbor_bytes(&[0; 96], &mut d);
    d
}

/// `{1: -35}`: ES384, as the NSM writes it.
fn es384() -> Vec<u8> {
    vec![0xa1, 0x01, 0x38, 0x22]
}

/// A protected header of distinct integer labels (no `alg`, no `crit`), as many as fit in
/// `room` bytes.
fn many_labels(room: usize) -> Vec<u8> {
    let mut labels: Vec<i64> = Vec::new();
    let mut size = 0usize;
    let enc_len = |k: i64| -> usize {
        let n = if k < 0 { (-1 - k) as u64 } else { k as u64 };
        match n {
            0..=23 => 1,
            24..=0xff => 2,
            _ => 3,
        }
    };
    // Cheapest first: positives and negatives alternately by size.
    let mut candidates: Vec<i64> = (3..=65535).chain((1..=65536).map(|n| -n)).collect();
    candidates.sort_by_key(|k| enc_len(*k));
    for k in candidates {
        let cost = enc_len(k) + 1;
        if size + cost > room {
            break;
        }
        size += cost;
        labels.push(k);
    }
    let mut h = Vec::new();
    cbor_head(5, labels.len() as u64, &mut h);
    for k in &labels {
        if *k < 0 {
            cbor_head(1, (-1 - *k) as u64, &mut h);
        } else {
            cbor_head(0, *k as u64, &mut h);
        }
        h.push(0x00);
    }
    h
}

// ----- DER, by hand -----

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
        0x100..=0xffff => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        _ => out.extend_from_slice(&[0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// A certificate cut after its issuer: one RDN of `n` distinct commonName attributes,
/// in descending DER order (the insertion sort's worst case).
fn cert_with_descending_rdn(n: u16) -> Vec<u8> {
    cert_with_rdn(n, true)
}

fn cert_with_rdn(n: u16, descending: bool) -> Vec<u8> {
    let mut set = Vec::new();
    let order: Vec<u16> = if descending { (0..n).rev().collect() } else { (0..n).collect() };
    for i in order {
        let oid = der(0x06, &[0x55, 0x04, 0x03]);
        let value = der(0x04, &i.to_be_bytes());
        set.extend_from_slice(&der(0x30, &[oid, value].concat()));
    }
    let issuer = der(0x30, &der(0x31, &set));
    let version = der(0xa0, &der(0x02, &[0x02]));
    let serial = der(0x02, &[0x01]);
    let alg = der(0x30, &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]));
    let tbs = der(0x30, &[version, serial, alg, issuer].concat());
    der(0x30, &tbs)
}

/// The largest such certificate whose document fits in a handshake message.
fn rdn_document() -> Vec<u8> {
    let mut n = 6000u16;
    loop {
        let doc = cose(&es384(), &payload(&cert_with_descending_rdn(n)));
        if doc.len() <= MAX_HANDSHAKE_DOCUMENT_LEN {
            return doc;
        }
        n -= 50;
    }
}

fn labels_document() -> Vec<u8> {
    let fixed = cose(&[], &payload(&[0x30])).len() + 8;
    let doc = cose(&many_labels(MAX_HANDSHAKE_DOCUMENT_LEN - fixed), &payload(&[0x30]));
    assert!(doc.len() <= MAX_HANDSHAKE_DOCUMENT_LEN, "{}", doc.len());
    doc
}

/// The stranger sends `doc` in message 3; how long the responder took to refuse it.
fn responder_time(doc: Vec<u8>) -> (Duration, String) {
    let ca = MockCa::generate().unwrap();
    let victim = node(&ca);
    let stranger_nsm = fixed(node(&ca).nsm.clone(), doc);
    let stranger = identity(stranger_nsm, &ca, "cluster=test members=3");
    let (state_s, msg1) = Initiator::start(&stranger, CLUSTER).unwrap();
    let (state_v, msg2) = Responder::respond(&victim.id, CLUSTER, &msg1).unwrap();
    // The stranger's side checks the victim's genuine document and sends its own.
    let (_, _, msg3) = state_s.finish(&msg2, &victim.admit).unwrap();
    let start = Instant::now();
    let result = state_v.finish(&msg3, &victim.admit);
    let took = start.elapsed();
    let err = match result {
        Ok(_) => panic!("a crafted document was admitted"),
        Err(e) => e.to_string(),
    };
    (took, err)
}

/// What a genuine handshake's verification costs here (the baseline).
fn genuine_time() -> Duration {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let (state_a, msg1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (state_b, msg2) = Responder::respond(&b.id, CLUSTER, &msg1).unwrap();
    let (_, _, msg3) = state_a.finish(&msg2, &a.admit).unwrap();
    let start = Instant::now();
    state_b.finish(&msg3, &b.admit).unwrap();
    start.elapsed()
}

#[test]
fn a_protected_header_of_many_labels_is_refused_before_it_is_decoded() {
    let doc = labels_document();
    eprintln!("genuine message 3 verified in {:?}", genuine_time());
    let (took, err) = responder_time(doc.clone());
    eprintln!("protected header of many labels ({} bytes): refused in {took:?}: {err}", doc.len());
    let bound = format!("at most {}", bridle_attestation::MAX_PROTECTED_BYTES);
    assert!(err.contains("protected header") && err.contains(&bound), "{err}");
}

#[test]
fn a_certificate_name_of_many_attributes_is_refused_before_it_is_parsed() {
    let doc = rdn_document();
    eprintln!("genuine message 3 verified in {:?}", genuine_time());
    let (took, err) = responder_time(doc.clone());
    eprintln!("leaf issuer of one RDN in descending order ({} bytes): refused in {took:?}: {err}", doc.len());
    let bound = format!("at most {}", bridle_attestation::MAX_CERT_BYTES);
    assert!(err.contains("certificate") && err.contains(&bound), "{err}");
}
