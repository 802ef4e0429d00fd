//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ciborium::value::Value;

pub const SAMPLE_2024: &[u8] = include_bytes!("../../../tests/fixtures/nitro/nitro_sample_2024.cbor");
pub const DEBUG_2022: &[u8] = include_bytes!("../../../tests/fixtures/nitro/nitro_debug_2022.cbor");
pub const AWS_ROOT_PEM: &str = include_str!("../../../tests/fixtures/nitro/aws_nitro_root_g1.pem");

/// Timestamp of nitro_sample_2024.cbor, in ms.
pub const SAMPLE_TS_MS: u64 = 1_708_930_921_439;
pub const SAMPLE_TS: u64 = SAMPLE_TS_MS / 1000;
/// Timestamp of nitro_debug_2022.cbor, in ms.
pub const DEBUG_TS_MS: u64 = 1_665_582_606_081;
pub const DEBUG_TS: u64 = DEBUG_TS_MS / 1000;

pub const SAMPLE_PCR0: &str =
    "17bf8f048519797be90497001a7559a3d555395937117d76f8baaedf56ca6d97952de79479bc0c76e5d176d20f663790";
pub const SAMPLE_PCR1: &str =
    "5d3938eb05288e20a981038b1861062ff4174884968a39aee5982b312894e60561883576cc7381d1a7d05b809936bd16";
pub const SAMPLE_PCR2: &str =
    "249037310daa90f4eb0703e7b105a241fdb09f12d3c40b7aea2f39e57b07b887e6ff4e4f9757943e127e391626b5e4d5";
pub const SAMPLE_PUBLIC_KEY: &str = "d239fd059dd0e0a01e280bec44903bb8143bae7e578b9844c6df5fd6351eddc0";

pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

pub fn cbor_decode(bytes: &[u8]) -> Value {
    ciborium::de::from_reader(bytes).expect("cbor")
}

pub fn cbor_encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("encode");
    out
}

/// The four items of an (untagged) COSE_Sign1.
pub struct Cose {
    pub protected: Vec<u8>,
    pub unprotected: Value,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

pub fn split_cose(doc: &[u8]) -> Cose {
    let v = match cbor_decode(doc) {
        Value::Tag(18, inner) => *inner,
        v => v,
    };
    let Value::Array(items) = v else { panic!("not an array") };
    let mut it = items.into_iter();
    let b = |v: Option<Value>| match v {
        Some(Value::Bytes(b)) => b,
        other => panic!("expected bytes, got {other:?}"),
    };
    let protected = b(it.next());
    let unprotected = it.next().expect("unprotected");
    let payload = b(it.next());
    let signature = b(it.next());
    Cose { protected, unprotected, payload, signature }
}

pub fn join_cose(c: &Cose) -> Vec<u8> {
    cbor_encode(&Value::Array(vec![
        Value::Bytes(c.protected.clone()),
        c.unprotected.clone(),
        Value::Bytes(c.payload.clone()),
        Value::Bytes(c.signature.clone()),
    ]))
}

/// The payload map entries of a document.
pub fn payload_entries(payload: &[u8]) -> Vec<(Value, Value)> {
    match cbor_decode(payload) {
        Value::Map(m) => m,
        other => panic!("payload is not a map: {other:?}"),
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// Replaces (or removes, with None) field `name` of a payload map.
pub fn edit_field(entries: &mut Vec<(Value, Value)>, name: &str, value: Option<Value>) {
    let pos = entries.iter().position(|(k, _)| *k == text(name));
    match (pos, value) {
        (Some(i), Some(v)) => entries[i].1 = v,
        (Some(i), None) => {
            entries.remove(i);
        }
        (None, Some(v)) => entries.push((text(name), v)),
        (None, None) => {}
    }
}
