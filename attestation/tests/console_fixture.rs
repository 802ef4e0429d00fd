//! Mock attestation documents for the owner console's tests: `tests/tests/console_digests`
//! runs `host/console/attest.js` under node and cannot link this crate, so the documents
//! are written once to `tests/fixtures/attestation/mock_documents.json`, each with the
//! verdict of this crate's verifier, which the console must give too.
//!
//! `cargo test -p bridle-attestation --test console_fixture` checks that every recorded
//! verdict still holds; `cargo test -p bridle-attestation --test console_fixture --
//! --ignored write_console_fixture` writes a new file (new keys, new documents).

mod common;

use bridle_attestation::mock::MockLeaf;
use bridle_attestation::{
    verify_uncached, ImageMeasurement, MockCa, MockNsm, NsmProvider, PayloadEncoding, VerifyOptions,
};
use ciborium::value::Value;
use common::*;
use serde_json::json;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/attestation/mock_documents.json");
const NONCE: &[u8] = b"bridle console fixture";

/// The cases, in order: name and what each document is.
const CASES: [(&str, &str); 7] = [
    ("definite", "a mock NSM document as the mock makes it (definite-length payload map)"),
    ("indefinite_map", "the mock's PayloadEncoding::Indefinite: an indefinite-length payload map, as newer NSMs send"),
    (
        "indefinite_everything",
        "every map and array of the payload of indefinite length, every byte and text string of 2+ bytes in \
         chunks (an empty one first)",
    ),
    ("leaf_is_ca", "signed under a leaf with basicConstraints CA:TRUE (MockLeaf::Ca)"),
    ("leaf_key_cert_sign_only", "signed under a leaf whose keyUsage is keyCertSign only (MockLeaf::KeyCertSignOnly)"),
    ("crit_in_protected_header", "protected header {1: -35, 2: [1]}: a crit parameter"),
    ("empty_cabundle", "payload with cabundle = []"),
];

/// `v` with every map and array of indefinite length and every string of 2+ bytes in
/// chunks: an empty chunk, then its two halves (text split on a character boundary).
fn indefinite(v: &Value, out: &mut Vec<u8>) {
    let chunked = |major: u8, parts: [&[u8]; 3], out: &mut Vec<u8>| {
        out.push(major << 5 | 31);
        for p in parts {
            let item =
                if major == 2 { Value::Bytes(p.to_vec()) } else { Value::Text(String::from_utf8_lossy(p).into()) };
            out.extend(cbor_encode(&item));
        }
        out.push(0xff);
    };
    match v {
        Value::Map(m) => {
            out.push(0xbf);
            for (k, v) in m {
                indefinite(k, out);
                indefinite(v, out);
            }
            out.push(0xff);
        }
        Value::Array(a) => {
            out.push(0x9f);
            a.iter().for_each(|v| indefinite(v, out));
            out.push(0xff);
        }
        Value::Bytes(b) if b.len() >= 2 => {
            let (x, y) = b.split_at(b.len() / 2);
            chunked(2, [&[], x, y], out);
        }
        Value::Text(t) if t.len() >= 2 && t.is_char_boundary(t.len() / 2) => {
            let (x, y) = t.split_at(t.len() / 2);
            chunked(3, [&[], x.as_bytes(), y.as_bytes()], out);
        }
        other => out.extend(cbor_encode(other)),
    }
}

fn generate() -> serde_json::Value {
    let ca = MockCa::generate().unwrap();
    let image = ImageMeasurement::mock_default();
    let nsm = MockNsm::with_ca(&ca, image.clone()).unwrap();
    let attest = |nsm: &MockNsm| nsm.attestation(None, Some(NONCE.to_vec()), None).unwrap();
    let payload = || nsm.attestation_payload(None, Some(NONCE.to_vec()), None).unwrap();
    let documents: Vec<Vec<u8>> = CASES
        .iter()
        .map(|(name, _)| match *name {
            "definite" => attest(&nsm),
            "indefinite_map" => {
                nsm.set_payload_encoding(PayloadEncoding::Indefinite);
                let doc = attest(&nsm);
                nsm.set_payload_encoding(PayloadEncoding::Definite);
                assert_eq!(split_cose(&doc).payload[0], 0xbf, "an indefinite-length map");
                doc
            }
            "indefinite_everything" => {
                let mut out = Vec::new();
                indefinite(&cbor_decode(&payload()), &mut out);
                nsm.sign_payload(&out).unwrap()
            }
            "leaf_is_ca" => attest(&MockNsm::with_ca_and_leaf(&ca, image.clone(), MockLeaf::Ca).unwrap()),
            "leaf_key_cert_sign_only" => {
                attest(&MockNsm::with_ca_and_leaf(&ca, image.clone(), MockLeaf::KeyCertSignOnly).unwrap())
            }
            "crit_in_protected_header" => {
                let int = |i: i64| Value::Integer(i.into());
                let protected =
                    cbor_encode(&Value::Map(vec![(int(1), int(-35)), (int(2), Value::Array(vec![int(1)]))]));
                nsm.sign_with_protected_header(&protected, &payload()).unwrap()
            }
            "empty_cabundle" => {
                let mut entries = payload_entries(&payload());
                edit_field(&mut entries, "cabundle", Some(Value::Array(Vec::new())));
                nsm.sign_payload(&cbor_encode(&Value::Map(entries))).unwrap()
            }
            other => unreachable!("{other}"),
        })
        .collect();
    let mut fixture = json!({
        "about": "Mock NSM documents (NOT AWS) for tests/tests/console_digests: each must get the same verdict \
                  from host/console/attest.js as from bridle-attestation (\"rust\": \"ok\" or its error), \
                  verified with root_pem, PCR0 = pcr0, nonce = nonce, at the document's timestamp. Written by \
                  attestation/tests/console_fixture.rs (see there to write it again).",
        "root_pem": ca.root_pem(),
        "pcr0": hex::encode(image.pcr0),
        "nonce": hex::encode(NONCE),
        "cases": [],
    });
    let mut cases = Vec::new();
    for ((name, what), document) in CASES.iter().zip(documents) {
        let timestamp_ms = timestamp_ms(&document);
        cases.push(json!({
            "name": name,
            "what": what,
            "timestamp_ms": timestamp_ms,
            "document": hex::encode(&document),
            "rust": verdict(&fixture, &document, timestamp_ms),
        }));
    }
    fixture["cases"] = cases.into();
    fixture
}

fn timestamp_ms(document: &[u8]) -> u64 {
    let entries = payload_entries(&split_cose(document).payload);
    let ts = entries.iter().find(|(k, _)| *k == text("timestamp")).map(|(_, v)| v.clone());
    match ts {
        Some(Value::Integer(i)) => u64::try_from(i).unwrap(),
        other => panic!("timestamp: {other:?}"),
    }
}

/// This crate's verdict on `document`: "ok", or the error.
fn verdict(fixture: &serde_json::Value, document: &[u8], timestamp_ms: u64) -> String {
    let s = |k: &str| fixture[k].as_str().unwrap().to_string();
    let root = bridle_attestation::certificate_pem_to_der(&s("root_pem")).unwrap();
    let options = VerifyOptions::at(timestamp_ms / 1000)
        .with_root_der(root)
        .with_pcr(0, unhex(&s("pcr0")))
        .with_nonce(unhex(&s("nonce")));
    match verify_uncached(document, &options) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn console_fixture_verdicts_hold() {
    let text = std::fs::read_to_string(FIXTURE).expect("tests/fixtures/attestation/mock_documents.json");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CASES.iter().map(|(n, _)| *n).collect::<Vec<_>>(), "the fixture's cases: write it again");
    for c in cases {
        let document = hex::decode(c["document"].as_str().unwrap()).unwrap();
        let ts = c["timestamp_ms"].as_u64().unwrap();
        assert_eq!(ts, timestamp_ms(&document));
        assert_eq!(verdict(&fixture, &document, ts), c["rust"].as_str().unwrap(), "{}", c["name"]);
    }
    let ok: Vec<&str> = cases.iter().filter(|c| c["rust"] == "ok").map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(ok, ["definite", "indefinite_map", "indefinite_everything"]);
    let expect = |name: &str, what: &str| {
        let c = cases.iter().find(|c| c["name"] == name).unwrap();
        assert!(c["rust"].as_str().unwrap().contains(what), "{name}: {}", c["rust"]);
    };
    expect("leaf_is_ca", "is a certificate authority");
    expect("leaf_key_cert_sign_only", "keyUsage does not allow digitalSignature");
    expect("crit_in_protected_header", "crit");
    expect("empty_cabundle", "cabundle");
    // The documents are what the names say.
    let doc = |name: &str| {
        let c = cases.iter().find(|c| c["name"] == name).unwrap();
        hex::decode(c["document"].as_str().unwrap()).unwrap()
    };
    assert_eq!(split_cose(&doc("definite")).payload[0] >> 5, 5, "a definite map");
    assert!(split_cose(&doc("definite")).payload[0] != 0xbf);
    assert_eq!(split_cose(&doc("indefinite_map")).payload[0], 0xbf);
    let everything = split_cose(&doc("indefinite_everything")).payload;
    assert_eq!(everything[0], 0xbf);
    assert!(everything.windows(2).any(|w| w == [0x5f, 0x40]), "a chunked byte string");
    assert!(everything.windows(2).any(|w| w == [0x7f, 0x60]), "a chunked text string");
}

#[test]
#[ignore = "writes tests/fixtures/attestation/mock_documents.json"]
fn write_console_fixture() {
    let fixture = generate();
    let path = std::path::Path::new(FIXTURE);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(&fixture).unwrap() + "\n").unwrap();
    eprintln!("wrote {}", path.display());
}
