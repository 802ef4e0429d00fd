//! Expected measurements of a release: the `pcrs.json` file that `make enclave-image`
//! writes next to the EIF (`target/eif/pcrs.json`) and that operators publish with a
//! release.
//!
//! ```json
//! { "PCR0": "<96 hex digits>", "PCR1": "…", "PCR2": "…", "PCR16": "…", "kernel": "…" }
//! ```
//!
//! Every key `PCR<n>` is an expected value (hex, 48 bytes; 32 or 64 accepted like
//! `--pcr`); other keys are descriptive and ignored. The output of
//! `nitro-cli build-enclave` / `describe-eif` (`{"Measurements": {"PCR0": …}}`) is read
//! the same way.

use std::collections::BTreeMap;

/// Parses a `pcrs.json` document into index → expected value. At least one PCR must be
/// present; a malformed `PCR<n>` key or value is an error, never skipped.
pub fn parse_pcrs_json(text: &str) -> Result<BTreeMap<u16, Vec<u8>>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("expected a JSON object of \"PCR<n>\": \"<hex>\"")?;
    let obj = match obj.get("Measurements") {
        Some(m) => m.as_object().ok_or("\"Measurements\" is not an object")?,
        None => obj,
    };
    let mut pcrs = BTreeMap::new();
    for (key, v) in obj {
        let Some(index) = key.strip_prefix("PCR").or_else(|| key.strip_prefix("pcr")) else {
            continue;
        };
        let index: u16 = index.parse().map_err(|_| format!("key {key:?}: PCR index is not a number 0..=65535"))?;
        let hex_text = v.as_str().ok_or_else(|| format!("{key}: expected a hex string"))?;
        let hex_text = hex_text.strip_prefix("0x").unwrap_or(hex_text);
        let bytes = hex::decode(hex_text).map_err(|e| format!("{key}: not hex: {e}"))?;
        if ![32, 48, 64].contains(&bytes.len()) {
            return Err(format!("{key}: {} bytes, expected 48 (96 hex digits), or 32/64", bytes.len()));
        }
        pcrs.insert(index, bytes);
    }
    if pcrs.is_empty() {
        return Err("no \"PCR<n>\" entry".to_string());
    }
    Ok(pcrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> String {
        hex::encode([b; 48])
    }

    #[test]
    fn reads_bridle_and_nitro_cli_files() {
        let text =
            format!(r#"{{"PCR0":"{}","PCR1":"{}","PCR2":"{}","PCR16":"{}","kernel":"x"}}"#, h(0), h(1), h(2), h(16));
        let pcrs = parse_pcrs_json(&text).unwrap();
        assert_eq!(pcrs.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 16]);
        assert_eq!(pcrs[&16], vec![16; 48]);
        let text = format!(r#"{{"Measurements":{{"HashAlgorithm":"Sha384 {{ ... }}","PCR0":"{}"}}}}"#, h(9));
        assert_eq!(parse_pcrs_json(&text).unwrap()[&0], vec![9; 48]);
    }

    #[test]
    fn refuses_malformed_files() {
        assert!(parse_pcrs_json("[]").is_err());
        assert!(parse_pcrs_json("{}").unwrap_err().contains("no \"PCR<n>\""));
        assert!(parse_pcrs_json(r#"{"PCR0":"zz"}"#).unwrap_err().contains("not hex"));
        assert!(parse_pcrs_json(r#"{"PCR0":"abcd"}"#).unwrap_err().contains("2 bytes"));
        assert!(parse_pcrs_json(r#"{"PCRx":"abcd"}"#).unwrap_err().contains("not a number"));
        assert!(parse_pcrs_json(r#"{"PCR0":7}"#).unwrap_err().contains("hex string"));
    }
}
