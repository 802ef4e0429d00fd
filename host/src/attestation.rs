//! `GET /v1/attestation?nonce=<hex>`: relay an attestation document with a decoded summary.
//!
//! The host is untrusted, so it never claims a document is valid: the summary is decoded
//! **without verification** (`"verified": false`) for convenience; verifiers check the raw
//! document themselves (`bridle verify attestation`, or `bridle_attestation::verify`).
//!
//! ```json
//! {
//!   "document": "0x8444a1013822…",        // raw COSE_Sign1 bytes, hex (as before)
//!   "document_base64": "hEShATgioFkR…",   // the same bytes, base64 (what `bridle verify attestation` reads)
//!   "summary": {
//!     "verified": false,
//!     "module_id": "i-…-enc…", "timestamp": 1708930921000, "digest": "SHA384",
//!     "pcrs": { "0": "<hex>", …, "16": "<hex>" },
//!     "public_key": "<hex>|null", "user_data": "<hex>|null", "nonce": "<hex>|null"
//!   }
//! }
//! ```
//!
//! When the relayed bytes do not even decode, `summary` is null and `summary_error` says why
//! (the raw document is still returned). Summary hex strings carry no `0x`, as in
//! `bridle verify attestation --json`.

use bridle_attestation::{encode_base64, parse_document, MAX_NONCE_LEN};
use serde_json::{json, Map, Value};

/// Largest nonce the host relays, bytes (the NSM's own limit).
pub const MAX_NONCE: usize = MAX_NONCE_LEN;

fn hex_or_null(v: &Option<Vec<u8>>) -> Value {
    match v {
        Some(b) => Value::String(hex::encode(b)),
        None => Value::Null,
    }
}

/// Parse the `nonce` query parameter: hex, optional `0x`, at most [`MAX_NONCE`] bytes.
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    if t.len() > 2 * MAX_NONCE {
        return Err(format!("nonce is limited to {MAX_NONCE} bytes ({} hex digits)", 2 * MAX_NONCE));
    }
    let n = hex::decode(t).map_err(|_| "nonce must be hex".to_string())?;
    if n.len() > MAX_NONCE {
        return Err(format!("nonce is limited to {MAX_NONCE} bytes, got {}", n.len()));
    }
    Ok(n)
}

/// The JSON body for a relayed document.
pub fn attestation_json(document: &[u8]) -> Value {
    let mut body = json!({
        "document": format!("0x{}", hex::encode(document)),
        "document_base64": encode_base64(document),
    });
    match parse_document(document) {
        Ok(d) => {
            let pcrs: Map<String, Value> =
                d.pcrs.iter().map(|(i, v)| (i.to_string(), Value::String(hex::encode(v)))).collect();
            body["summary"] = json!({
                "verified": false,
                "module_id": d.module_id,
                "timestamp": d.timestamp_ms,
                "digest": d.digest,
                "pcrs": pcrs,
                "public_key": hex_or_null(&d.public_key),
                "user_data": hex_or_null(&d.user_data),
                "nonce": hex_or_null(&d.nonce),
            });
        }
        Err(e) => {
            body["summary"] = Value::Null;
            body["summary_error"] = Value::String(format!("the document does not decode: {e}"));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_attestation::{decode_document_input, MockNsm, NsmProvider};

    #[test]
    fn summary_of_a_mock_document() {
        let nsm = MockNsm::new().unwrap();
        let doc = nsm.attestation(None, Some(vec![0xc0, 0xff, 0xee]), Some(vec![2; 33])).unwrap();
        let v = attestation_json(&doc);
        assert_eq!(v["document"], format!("0x{}", hex::encode(&doc)));
        let b64 = v["document_base64"].as_str().unwrap();
        assert_eq!(decode_document_input(b64.as_bytes()).unwrap().0, doc);
        let s = &v["summary"];
        assert_eq!(s["verified"], false);
        assert_eq!(s["nonce"], "c0ffee");
        assert_eq!(s["user_data"], Value::Null);
        assert_eq!(s["public_key"], hex::encode([2u8; 33]));
        assert_eq!(s["digest"], "SHA384");
        assert_eq!(s["module_id"], nsm.module_id());
        assert_eq!(s["pcrs"]["0"], hex::encode(nsm.image().pcr0));
        assert_eq!(s["pcrs"].as_object().unwrap().len(), 32);
        assert!(s["timestamp"].as_u64().unwrap() > 0);
    }

    #[test]
    fn undecodable_document_is_still_relayed() {
        let v = attestation_json(&[0xc0, 0xff, 0xee]);
        assert_eq!(v["document"], "0xc0ffee");
        assert_eq!(v["summary"], Value::Null);
        assert!(v["summary_error"].as_str().unwrap().contains("does not decode"));
    }

    #[test]
    fn nonce_parsing() {
        assert_eq!(parse_nonce("0xc0ffee").unwrap(), vec![0xc0, 0xff, 0xee]);
        assert_eq!(parse_nonce("C0FFEE").unwrap(), vec![0xc0, 0xff, 0xee]);
        assert_eq!(parse_nonce("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_nonce(&"ab".repeat(512)).unwrap().len(), 512);
        assert!(parse_nonce(&"ab".repeat(513)).unwrap_err().contains("512 bytes"));
        assert!(parse_nonce(&"ab".repeat(5000)).unwrap_err().contains("512 bytes"));
        assert!(parse_nonce("xyz").unwrap_err().contains("hex"));
    }
}
