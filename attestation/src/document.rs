//! Decoding of the NSM attestation document (the COSE_Sign1 payload).

use std::collections::BTreeMap;

use ciborium::value::Value;

use crate::cose::decode_cbor;
use crate::verify::VerifyError;

/// The digest algorithm Nitro enclaves use for their PCR bank.
pub const DIGEST_SHA384: &str = "SHA384";

/// Accepted PCR value lengths (SHA-256, SHA-384, SHA-512 banks).
pub const PCR_VALUE_LENGTHS: [usize; 3] = [32, 48, 64];

/// The most bytes a certificate of a document may have. AWS's specification of the
/// document bounds each certificate to 1 024 bytes (`cert = bytes .size (1..1024)`); real
/// ones are under 700. Checked before any certificate is parsed: a peer's document reaches a
/// cluster node before anything about its sender is known, and the DER decoder's cost grows
/// with the square of a name's attributes (a review of 2026-12-06: one 60 KiB certificate
/// of 5 900 attributes in one name took 1.6 s to refuse).
pub const MAX_CERT_BYTES: usize = 2048;

/// The most certificates a document's `cabundle` may hold (real ones: 4, root to instance).
/// Each link is a signature check, made before the chain is known to reach the root.
pub const MAX_CABUNDLE: usize = 8;

/// The fields of an attestation document, decoded but not yet trusted.
#[derive(Debug, Clone)]
pub(crate) struct RawDocument {
    pub module_id: String,
    pub digest: String,
    pub timestamp_ms: u64,
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    pub certificate: Vec<u8>,
    pub cabundle: Vec<Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidDocument { field, reason: reason.into() }
}

fn bytes(field: &'static str, v: Value) -> Result<Vec<u8>, VerifyError> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(invalid(field, "expected a byte string")),
    }
}

/// Optional byte fields: absent, null and empty byte string all mean "none".
fn optional_bytes(field: &'static str, v: Option<Value>) -> Result<Option<Vec<u8>>, VerifyError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bytes(b)) if b.is_empty() => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(invalid(field, "expected a byte string or null")),
    }
}

fn parse_pcrs(v: Value) -> Result<BTreeMap<u16, Vec<u8>>, VerifyError> {
    let entries = match v {
        Value::Map(m) => m,
        _ => return Err(invalid("pcrs", "expected a map of index to byte string")),
    };
    if entries.is_empty() {
        return Err(invalid("pcrs", "no PCR in the document"));
    }
    let mut pcrs = BTreeMap::new();
    for (k, v) in entries {
        let index = match k {
            Value::Integer(i) => u16::try_from(i128::from(i))
                .map_err(|_| invalid("pcrs", format!("PCR index {} out of range", i128::from(i))))?,
            _ => return Err(invalid("pcrs", "PCR index is not an unsigned integer")),
        };
        let value = match v {
            Value::Bytes(b) => b,
            _ => return Err(invalid("pcrs", format!("PCR{index} value is not a byte string"))),
        };
        if !PCR_VALUE_LENGTHS.contains(&value.len()) {
            return Err(VerifyError::PcrLength { index, actual: value.len() });
        }
        if pcrs.insert(index, value).is_some() {
            return Err(invalid("pcrs", format!("PCR{index} appears twice")));
        }
    }
    Ok(pcrs)
}

/// Decodes and checks the structure of an attestation document payload.
pub(crate) fn parse_payload(payload: &[u8]) -> Result<RawDocument, VerifyError> {
    let entries = match decode_cbor(payload, "attestation document payload")? {
        Value::Map(m) => m,
        _ => return Err(invalid("payload", "expected a CBOR map")),
    };
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in entries {
        let key = match k {
            Value::Text(t) => t,
            _ => return Err(invalid("payload", "map key is not a text string")),
        };
        if fields.contains_key(&key) {
            return Err(VerifyError::DuplicateField { field: key });
        }
        fields.insert(key, v);
    }

    if !fields.contains_key("pcrs") {
        // A NitroTPM document carries `nitrotpm_pcrs` instead (or nothing).
        return Err(VerifyError::NitroTpmDocument);
    }

    let mut take = |name: &'static str| -> Result<Value, VerifyError> {
        fields.remove(name).ok_or(VerifyError::MissingField { field: name })
    };

    let module_id = match take("module_id")? {
        Value::Text(t) if !t.is_empty() => t,
        Value::Text(_) => return Err(invalid("module_id", "empty")),
        _ => return Err(invalid("module_id", "expected a text string")),
    };
    let digest = match take("digest")? {
        Value::Text(t) => t,
        _ => return Err(invalid("digest", "expected a text string")),
    };
    if digest != DIGEST_SHA384 {
        return Err(VerifyError::UnsupportedDigest { expected: DIGEST_SHA384, actual: digest });
    }
    let timestamp_ms = match take("timestamp")? {
        Value::Integer(i) => u64::try_from(i128::from(i))
            .map_err(|_| invalid("timestamp", format!("{} is not a valid time", i128::from(i))))?,
        _ => return Err(invalid("timestamp", "expected an unsigned integer")),
    };
    if timestamp_ms == 0 {
        return Err(invalid("timestamp", "zero"));
    }
    let pcrs = parse_pcrs(take("pcrs")?)?;
    let certificate = bytes("certificate", take("certificate")?)?;
    if certificate.is_empty() {
        return Err(invalid("certificate", "empty"));
    }
    if certificate.len() > MAX_CERT_BYTES {
        return Err(invalid("certificate", format!("{} bytes; at most {MAX_CERT_BYTES}", certificate.len())));
    }
    let cabundle = match take("cabundle")? {
        Value::Array(items) => items.into_iter().map(|v| bytes("cabundle", v)).collect::<Result<Vec<_>, _>>()?,
        _ => return Err(invalid("cabundle", "expected an array of byte strings")),
    };
    if cabundle.is_empty() {
        return Err(invalid("cabundle", "empty"));
    }
    if cabundle.iter().any(Vec::is_empty) {
        return Err(invalid("cabundle", "contains an empty certificate"));
    }
    if cabundle.len() > MAX_CABUNDLE {
        return Err(invalid("cabundle", format!("{} certificates; at most {MAX_CABUNDLE}", cabundle.len())));
    }
    if let Some(c) = cabundle.iter().find(|c| c.len() > MAX_CERT_BYTES) {
        return Err(invalid("cabundle", format!("a certificate of {} bytes; at most {MAX_CERT_BYTES}", c.len())));
    }
    let public_key = optional_bytes("public_key", fields.remove("public_key"))?;
    let user_data = optional_bytes("user_data", fields.remove("user_data"))?;
    let nonce = optional_bytes("nonce", fields.remove("nonce"))?;

    Ok(RawDocument { module_id, digest, timestamp_ms, pcrs, certificate, cabundle, public_key, user_data, nonce })
}

/// The contents of an attestation document, decoded **without any verification**:
/// neither the COSE signature, nor the certificate chain, nor the time, nor any
/// expected value was checked. For display and relaying only (the host, which is
/// untrusted, uses it to summarize what it relays); trust only [`crate::verify()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedDocument {
    /// NSM module id.
    pub module_id: String,
    /// Document timestamp, unix milliseconds.
    pub timestamp_ms: u64,
    /// PCR digest algorithm (`SHA384`).
    pub digest: String,
    /// All PCRs of the document.
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    /// `public_key` (None when absent, null or empty).
    pub public_key: Option<Vec<u8>>,
    /// `user_data` (None when absent, null or empty).
    pub user_data: Option<Vec<u8>>,
    /// `nonce` (None when absent, null or empty).
    pub nonce: Option<Vec<u8>>,
    /// Number of certificates in `cabundle`.
    pub cabundle_len: usize,
}

/// Decodes an attestation document (COSE_Sign1 bytes) **without verifying it**:
/// only the structure is checked (steps 1–3 of [`crate::verify()`]: COSE_Sign1,
/// ES384 protected header, enclave payload fields). Nothing in the result is
/// trustworthy; use [`crate::verify()`] for that.
pub fn parse_document(document: &[u8]) -> Result<UnverifiedDocument, VerifyError> {
    let cose = crate::cose::parse_cose_sign1(document)?;
    crate::cose::check_protected_header(&cose.protected)?;
    let doc = parse_payload(&cose.payload)?;
    Ok(UnverifiedDocument {
        module_id: doc.module_id,
        timestamp_ms: doc.timestamp_ms,
        digest: doc.digest,
        pcrs: doc.pcrs,
        public_key: doc.public_key,
        user_data: doc.user_data,
        nonce: doc.nonce,
        cabundle_len: doc.cabundle.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MockNsm, NsmProvider};

    #[test]
    fn parse_document_reads_without_verifying() {
        let nsm = MockNsm::new().unwrap();
        nsm.extend_pcr(16, b"config").unwrap();
        let doc = nsm.attestation(Some(vec![1; 32]), Some(b"n".to_vec()), Some(vec![2; 33])).unwrap();
        let d = parse_document(&doc).unwrap();
        assert_eq!(d.pcrs.get(&0).map(Vec::as_slice), Some(&nsm.image().pcr0[..]));
        assert_eq!(d.pcrs.get(&16), Some(&nsm.describe_pcr(16).unwrap().data));
        assert_eq!(d.user_data, Some(vec![1; 32]));
        assert_eq!(d.nonce, Some(b"n".to_vec()));
        assert_eq!(d.public_key, Some(vec![2; 33]));
        assert_eq!(d.module_id, nsm.module_id());
        assert_eq!(d.digest, DIGEST_SHA384);
        assert!(d.timestamp_ms > 0);
        // Decoding does not check the signature: a flipped signature byte still decodes
        // (and verify() refuses it).
        let mut bad = doc.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(parse_document(&bad).is_ok());
        // But the structure is checked.
        assert!(parse_document(&doc[..doc.len() / 2]).is_err());
        assert!(parse_document(b"\x01").is_err());
    }
}
