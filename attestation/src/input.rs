//! Reading attestation documents from files: raw CBOR or base64 text.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use crate::verify::VerifyError;

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// How [`decode_document_input`] read its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEncoding {
    /// Raw CBOR bytes.
    RawCbor,
    /// Base64 text (standard or URL-safe alphabet, padding optional).
    Base64,
}

/// Decodes the contents of a document file: raw CBOR (a COSE_Sign1 starts with
/// `0x84` or tag `0xD2`, never printable text) or base64 text (whitespace and
/// line breaks ignored). Returns the CBOR bytes and how they were read.
pub fn decode_document_input(input: &[u8]) -> Result<(Vec<u8>, InputEncoding), VerifyError> {
    let is_text = !input.is_empty()
        && input.iter().all(|b| b.is_ascii_alphanumeric() || b"+/-_=".contains(b) || b.is_ascii_whitespace());
    if !is_text {
        if input.is_empty() {
            return Err(VerifyError::InvalidInput { reason: "empty document".to_string() });
        }
        return Ok((input.to_vec(), InputEncoding::RawCbor));
    }
    let compact: Vec<u8> = input.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(VerifyError::InvalidInput { reason: "empty document".to_string() });
    }
    let decoded = STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
        .or_else(|_| STANDARD_LENIENT.decode(&compact))
        .or_else(|_| URL_SAFE_LENIENT.decode(&compact))
        .map_err(|e| VerifyError::InvalidInput { reason: format!("document is text but not valid base64: {e}") })?;
    Ok((decoded, InputEncoding::Base64))
}

/// Encodes a document as standard base64 (with padding), the text form
/// [`decode_document_input`] reads back.
pub fn encode_base64(document: &[u8]) -> String {
    STANDARD.encode(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_base64_inputs() {
        let raw = [0x84u8, 0x44, 0xa1, 0x01, 0x38, 0x22];
        assert_eq!(decode_document_input(&raw).unwrap(), (raw.to_vec(), InputEncoding::RawCbor));
        let b64 = STANDARD.encode(raw);
        assert_eq!(decode_document_input(b64.as_bytes()).unwrap(), (raw.to_vec(), InputEncoding::Base64));
        let wrapped = format!("  {}\n{}\r\n", &b64[..4], &b64[4..]);
        assert_eq!(decode_document_input(wrapped.as_bytes()).unwrap().0, raw.to_vec());
        let unpadded = b64.trim_end_matches('=');
        assert_eq!(decode_document_input(unpadded.as_bytes()).unwrap().0, raw.to_vec());
        let url = URL_SAFE.encode([0xfb, 0xff, 0x84]);
        assert_eq!(decode_document_input(url.as_bytes()).unwrap().0, vec![0xfb, 0xff, 0x84]);
        assert!(decode_document_input(b"").is_err());
        assert!(decode_document_input(b" \n").is_err());
        assert!(decode_document_input(b"abc=def").is_err());
        assert_eq!(decode_document_input(encode_base64(&raw).as_bytes()).unwrap().0, raw.to_vec());
    }
}
