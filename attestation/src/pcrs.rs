//! Expected measurements of a release: the `pcrs.json` file that `make enclave-image`
//! writes next to the EIF (`target/eif/pcrs.json`) and that operators publish with a
//! release.
//!
//! ```json
//! { "PCR0": "<96 hex digits>", "PCR1": "…", "PCR2": "…", "PCR16": "…", "kernel": "…" }
//! ```
//!
//! Every key `PCR<n>` (in any case: `PCR0`, `pcr0`, `Pcr16`) is an expected value (hex,
//! 48 bytes; 32 or 64 accepted like `--pcr`); other keys are descriptive and ignored. The
//! output of `nitro-cli build-enclave` / `describe-eif` (`{"Measurements": {"PCR0": …}}`) is
//! read the same way. Nothing given is skipped (SPEC R-ATT-3): a key that starts like a PCR
//! but is not `PCR<n>`, an index given twice (`PCR0` and `pcr0`, `PCR0` and `PCR00`, or the
//! same key twice), and PCR keys both beside and in `Measurements` are errors.
//! `host/console/attest.js` (`parsePcrsJson`) reads it the same way.

use std::collections::{BTreeMap, BTreeSet};

/// Whether `key` names a PCR: it starts with `pcr` in any case.
fn is_pcr_key(key: &str) -> bool {
    key.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pcr"))
}

/// Refuses a JSON `text` (valid JSON) in which an object gives a key twice: serde_json, like
/// JSON.parse, keeps the last one silently.
fn refuse_duplicate_keys(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    // Per open object its keys, None for an array.
    let mut open: Vec<Option<BTreeSet<String>>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'{' => {
                open.push(Some(BTreeSet::new()));
                expect_key = true;
            }
            b'[' => open.push(None),
            b'}' | b']' => {
                open.pop();
                expect_key = false;
            }
            b',' => expect_key = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let start = i;
                i += 1;
                while let Some(&c) = b.get(i) {
                    match c {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
                if expect_key {
                    let token = text.get(start..=i).ok_or("not JSON: unterminated string")?;
                    let key: String = serde_json::from_str(token).map_err(|e| format!("not JSON: {e}"))?;
                    if let Some(Some(keys)) = open.last_mut() {
                        if !keys.insert(key.clone()) {
                            return Err(format!("key {key:?} is given twice"));
                        }
                    }
                    expect_key = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Parses a `pcrs.json` document into index → expected value. At least one PCR must be
/// present; a malformed `PCR<n>` key or value, or an index given twice, is an error, never
/// skipped.
pub fn parse_pcrs_json(text: &str) -> Result<BTreeMap<u16, Vec<u8>>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("expected a JSON object of \"PCR<n>\": \"<hex>\"")?;
    refuse_duplicate_keys(text)?;
    let obj = match obj.get("Measurements") {
        Some(m) => {
            if let Some(outer) = obj.keys().find(|k| is_pcr_key(k)) {
                return Err(format!("{outer:?} beside \"Measurements\": the expected values must be in one place"));
            }
            m.as_object().ok_or("\"Measurements\" is not an object")?
        }
        None => obj,
    };
    let mut pcrs = BTreeMap::new();
    let mut keys: BTreeMap<u16, &str> = BTreeMap::new();
    for (key, v) in obj {
        if !is_pcr_key(key) {
            continue;
        }
        let digits = key.get(3..).unwrap_or_default();
        let index: u16 = Some(digits)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("key {key:?}: PCR index is not a number 0..=65535"))?;
        let hex_text = v.as_str().ok_or_else(|| format!("{key}: expected a hex string"))?;
        if let Some(first) = keys.insert(index, key) {
            return Err(format!("PCR{index} is given twice ({first:?} and {key:?})"));
        }
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
        for key in ["PCR", "PCR+1", "PCR-1", "PCR 1", "PCR1a", "PCR65536", "pcr_16", "Pcrs", "PCR\\u0661"] {
            let text = format!(r#"{{"{key}":"{}"}}"#, h(1));
            assert!(parse_pcrs_json(&text).unwrap_err().contains("not a number"), "{key}");
        }
    }

    #[test]
    fn pcr_keys_in_any_case_are_read() {
        let text = format!(
            r#"{{"PCR0":"{}","pcr1":"{}","Pcr16":"{}","pCR2":"{}","PCR007":"{}"}}"#,
            h(0),
            h(1),
            h(16),
            h(2),
            h(7)
        );
        let pcrs = parse_pcrs_json(&text).unwrap();
        assert_eq!(pcrs.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 7, 16]);
        assert_eq!(pcrs[&16], vec![16; 48]);
        let text = format!(r#"{{"Measurements":{{"Pcr16":"{}"}}}}"#, h(16));
        assert_eq!(parse_pcrs_json(&text).unwrap()[&16], vec![16; 48]);
    }

    #[test]
    fn an_index_given_twice_is_refused() {
        for text in [
            format!(r#"{{"PCR0":"{}","pcr0":"{}"}}"#, h(1), h(2)),
            format!(r#"{{"PCR0":"{}","PCR00":"{}"}}"#, h(1), h(2)),
            format!(r#"{{"PCR0":"{}","PCR0":"{}"}}"#, h(1), h(1)),
            format!(r#"{{"Measurements":{{"PCR0":"{}","Pcr0":"{}"}}}}"#, h(1), h(2)),
        ] {
            let e = parse_pcrs_json(&text).unwrap_err();
            assert!(e.contains("twice"), "{text}: {e}");
        }
        // The same key twice anywhere, escaped or not, is refused; in strings and arrays,
        // repeated text is not a key.
        let e = parse_pcrs_json(&format!(r#"{{"PCR0":"{}","kernel":{{"a":1,"\u0061":2}}}}"#, h(1))).unwrap_err();
        assert!(e.contains(r#"key "a" is given twice"#), "{e}");
        let ok = format!(r#"{{"PCR0":"{}","x":["PCR0","PCR0"],"y":"PCR0","z":{{"PCR0":"\"{{,"}}}}"#, h(1));
        assert_eq!(parse_pcrs_json(&ok).unwrap().len(), 1);
        // PCR keys beside "Measurements" would be ignored: refused.
        let text = format!(r#"{{"Measurements":{{"PCR0":"{}"}},"PCR1":"{}"}}"#, h(1), h(2));
        assert!(parse_pcrs_json(&text).unwrap_err().contains("beside"));
    }
}
