//! Minimal COSE_Sign1 (RFC 9052) decoding and encoding, as used by Nitro
//! attestation documents.

use ciborium::value::Value;

use crate::verify::VerifyError;

/// CBOR tag of a COSE_Sign1 structure.
pub const COSE_SIGN1_TAG: u64 = 18;

/// COSE algorithm identifier of ES384 (ECDSA P-384 with SHA-384).
pub const ALG_ES384: i64 = -35;

/// COSE header label `alg`.
const LABEL_ALG: i64 = 1;
/// COSE header label `crit`.
const LABEL_CRIT: i64 = 2;

/// Largest document the verifier accepts (a real one is about 4.5 KiB; the NSM
/// response buffer is 12 KiB).
pub const MAX_DOCUMENT_LEN: usize = 64 * 1024;

/// Length of a fixed-size ES384 signature (`r || s`).
pub const ES384_SIGNATURE_LEN: usize = 96;

/// A decoded COSE_Sign1 structure (signature not yet verified).
#[derive(Debug, Clone)]
pub(crate) struct CoseSign1 {
    /// Serialized protected header, exactly as received.
    pub protected: Vec<u8>,
    /// Payload bytes, exactly as received.
    pub payload: Vec<u8>,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

/// Human name of a COSE algorithm identifier.
pub(crate) fn alg_name(alg: i64) -> &'static str {
    match alg {
        -7 => "ES256",
        -35 => "ES384",
        -36 => "ES512",
        -8 => "EdDSA",
        -37 => "PS256",
        -38 => "PS384",
        -39 => "PS512",
        -257 => "RS256",
        -258 => "RS384",
        -259 => "RS512",
        _ => "unknown",
    }
}

/// Decodes one CBOR item from `bytes`, refusing trailing data.
pub(crate) fn decode_cbor(bytes: &[u8], what: &'static str) -> Result<Value, VerifyError> {
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader(&mut reader)
        .map_err(|e| VerifyError::MalformedCbor { what, reason: e.to_string() })?;
    if !reader.is_empty() {
        return Err(VerifyError::TrailingBytes { what, count: reader.len() });
    }
    Ok(value)
}

/// Encodes a CBOR value (definite lengths).
pub(crate) fn encode_cbor(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "integer",
        Value::Bytes(_) => "byte string",
        Value::Float(_) => "float",
        Value::Text(_) => "text string",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(_, _) => "tagged value",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "unknown CBOR item",
    }
}

/// Parses COSE_Sign1 bytes, tagged (18) or untagged.
pub(crate) fn parse_cose_sign1(bytes: &[u8]) -> Result<CoseSign1, VerifyError> {
    if bytes.len() > MAX_DOCUMENT_LEN {
        return Err(VerifyError::DocumentTooLarge { max: MAX_DOCUMENT_LEN, actual: bytes.len() });
    }
    let value = decode_cbor(bytes, "COSE_Sign1")?;
    let value = match value {
        Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
        Value::Tag(tag, _) => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("expected CBOR tag {COSE_SIGN1_TAG} (COSE_Sign1) or no tag, found tag {tag}"),
            })
        }
        other => other,
    };
    let items = match value {
        Value::Array(items) => items,
        other => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("expected an array of 4 items, found a {}", value_kind(&other)),
            })
        }
    };
    let [protected, unprotected, payload, signature]: [Value; 4] = items.try_into().map_err(|items: Vec<Value>| {
        VerifyError::NotCoseSign1 { reason: format!("expected an array of 4 items, found {} items", items.len()) }
    })?;
    let protected = match protected {
        Value::Bytes(b) => b,
        other => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("protected header: expected a byte string, found a {}", value_kind(&other)),
            })
        }
    };
    if !matches!(unprotected, Value::Map(_)) {
        return Err(VerifyError::NotCoseSign1 {
            reason: format!("unprotected header: expected a map, found a {}", value_kind(&unprotected)),
        });
    }
    let payload = match payload {
        Value::Bytes(b) => b,
        Value::Null => {
            return Err(VerifyError::NotCoseSign1 {
                reason: "detached payload (null) is not an attestation document".to_string(),
            })
        }
        other => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("payload: expected a byte string, found a {}", value_kind(&other)),
            })
        }
    };
    let signature = match signature {
        Value::Bytes(b) => b,
        other => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("signature: expected a byte string, found a {}", value_kind(&other)),
            })
        }
    };
    Ok(CoseSign1 { protected, payload, signature })
}

/// The most bytes of a protected header (a few labels).
pub const MAX_PROTECTED_BYTES: usize = 64;

/// Reads the `alg` of a serialized protected header and checks it is ES384.
pub(crate) fn check_protected_header(protected: &[u8]) -> Result<(), VerifyError> {
    if protected.is_empty() {
        return Err(VerifyError::MissingAlgorithm);
    }
    // A Nitro document's is 4 bytes (`{1: -35}`). Bounded before decoding: its duplicate
    // labels are looked for pair by pair (a review of 2026-12-06: 16 000 labels took 0.35 s).
    if protected.len() > MAX_PROTECTED_BYTES {
        return Err(VerifyError::NotCoseSign1 {
            reason: format!("protected header: {} bytes; at most {MAX_PROTECTED_BYTES}", protected.len()),
        });
    }
    let map = match decode_cbor(protected, "protected header")? {
        Value::Map(m) => m,
        other => {
            return Err(VerifyError::NotCoseSign1 {
                reason: format!("protected header: expected a map, found a {}", value_kind(&other)),
            })
        }
    };
    let mut alg: Option<&Value> = None;
    let mut seen: Vec<&Value> = Vec::new();
    for (k, v) in &map {
        if seen.contains(&k) {
            return Err(VerifyError::NotCoseSign1 { reason: format!("protected header: duplicate label {k:?}") });
        }
        seen.push(k);
        match k {
            Value::Integer(i) if i128::from(*i) == i128::from(LABEL_ALG) => alg = Some(v),
            Value::Integer(i) if i128::from(*i) == i128::from(LABEL_CRIT) => {
                return Err(VerifyError::NotCoseSign1 {
                    reason: "protected header: critical header parameters (crit) are not supported".to_string(),
                })
            }
            _ => {}
        }
    }
    match alg {
        None => Err(VerifyError::MissingAlgorithm),
        Some(Value::Integer(i)) => {
            let i = i128::from(*i);
            if i == i128::from(ALG_ES384) {
                Ok(())
            } else {
                let name = i64::try_from(i).map(alg_name).unwrap_or("unknown");
                Err(VerifyError::UnsupportedAlgorithm {
                    expected: format!("ES384 ({ALG_ES384})"),
                    actual: format!("{name} ({i})"),
                })
            }
        }
        Some(Value::Text(t)) => Err(VerifyError::UnsupportedAlgorithm {
            expected: format!("ES384 ({ALG_ES384})"),
            actual: format!("{t:?}"),
        }),
        Some(other) => Err(VerifyError::UnsupportedAlgorithm {
            expected: format!("ES384 ({ALG_ES384})"),
            actual: value_kind(other).to_string(),
        }),
    }
}

/// The `Sig_structure` signed by COSE_Sign1:
/// `["Signature1", protected, external_aad = b"", payload]`.
pub(crate) fn sig_structure(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    encode_cbor(&Value::Array(vec![
        Value::Text("Signature1".to_string()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

/// Serialized protected header `{1: -35}` (ES384), as the NSM emits it.
pub(crate) fn es384_protected_header() -> Result<Vec<u8>, String> {
    encode_cbor(&Value::Map(vec![(Value::Integer(LABEL_ALG.into()), Value::Integer(ALG_ES384.into()))]))
}

/// Encodes an untagged COSE_Sign1 `[protected, {}, payload, signature]`.
pub(crate) fn encode_cose_sign1(
    protected: &[u8],
    payload: &[u8],
    signature: &[u8],
    tagged: bool,
) -> Result<Vec<u8>, String> {
    let array = Value::Array(vec![
        Value::Bytes(protected.to_vec()),
        Value::Map(Vec::new()),
        Value::Bytes(payload.to_vec()),
        Value::Bytes(signature.to_vec()),
    ]);
    if tagged {
        encode_cbor(&Value::Tag(COSE_SIGN1_TAG, Box::new(array)))
    } else {
        encode_cbor(&array)
    }
}
