//! A stranger's document (a cluster handshake's message 3 — anyone reaching a host's
//! cluster listener sends one) is refused before its cost can grow (a review of
//! 2026-12-06). The certificate chain is checked from the leaf up, every link's signature
//! before the link to the trusted root: a `cabundle` repeating one self-issued P-384 CA
//! certificate as often as the document holds (≈ 160 times) made the verifier check one
//! signature per copy before it found the chain does not reach the root. A `cabundle` of
//! more than `MAX_CABUNDLE` certificates is refused now, before any is parsed.

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bridle_attestation::{verify, MockCa, MockNsm, NsmProvider, TrustedRoot, VerifyOptions};
use der::Encode;
use p384::ecdsa::{DerSignature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

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

fn document(certificate: &[u8], cabundle: &[Vec<u8>]) -> Vec<u8> {
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
    cbor_head(4, cabundle.len() as u64, &mut p);
    for c in cabundle {
        cbor_bytes(c, &mut p);
    }
    let mut d = Vec::new();
    cbor_head(6, 18, &mut d);
    cbor_head(4, 4, &mut d);
    cbor_bytes(&[0xa1, 0x01, 0x38, 0x22], &mut d);
    cbor_head(5, 0, &mut d);
    cbor_bytes(&p, &mut d);
    cbor_bytes(&[0; 96], &mut d);
    d
}

/// One self-issued P-384 CA certificate, as small as the builder makes it.
fn self_issued_ca() -> Vec<u8> {
    let key = SigningKey::from_slice(&[7u8; 48]).unwrap();
    let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).unwrap();
    let name = Name::from_str("CN=x").unwrap();
    let cert = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::new(&[1]).unwrap(),
        Validity::from_now(Duration::from_secs(3600)).unwrap(),
        name,
        spki,
        &key,
    )
    .unwrap()
    .build::<DerSignature>()
    .unwrap();
    cert.to_der().unwrap()
}

/// The handshake's document bound (a Noise message less its keys and tags).
const HANDSHAKE_DOCUMENT: usize = 65_439;

#[test]
fn a_long_self_issued_chain_is_refused_before_any_link_is_checked() {
    let ca = MockCa::generate().unwrap();
    let options = VerifyOptions::now(300).with_any_image(true);
    let options = VerifyOptions { root: TrustedRoot::Der(ca.root_der().to_vec()), ..options };

    // Baseline: a genuine mock document of this CA, uncached as a first handshake is.
    let nsm = MockNsm::with_ca(&ca, bridle_attestation::ImageMeasurement::mock_default()).unwrap();
    let genuine = nsm.attestation(None, Some(vec![1; 32]), Some(vec![2; 32])).unwrap();
    let start = Instant::now();
    bridle_attestation::verify_uncached(&genuine, &options).unwrap();
    let genuine_took = start.elapsed();

    let c = self_issued_ca();
    let mut bundle = vec![vec![0x30]];
    while document(&c, &[bundle.clone(), vec![c.clone()]].concat()).len() <= HANDSHAKE_DOCUMENT {
        bundle.push(c.clone());
    }
    let doc = document(&c, &bundle);
    let start = Instant::now();
    let err = verify(&doc, &options).unwrap_err();
    let took = start.elapsed();
    eprintln!(
        "genuine document: {genuine_took:?}; {} bytes, a certificate of {} bytes {} times: refused in {took:?}: {err}",
        doc.len(),
        c.len(),
        bundle.len()
    );
    assert!(
        err.to_string().contains(&format!("at most {}", bridle_attestation::MAX_CABUNDLE)),
        "refused for its bundle's length, before any certificate is parsed: {err}"
    );
    // Within the bound, the same chain is refused as not reaching the root.
    let doc = document(&c, &bundle[..bridle_attestation::MAX_CABUNDLE]);
    let err = verify(&doc, &options).unwrap_err();
    assert!(!err.to_string().contains("at most"), "{err}");
}
