//! JSON with every object key at most once: serde_json keeps the last of duplicate keys
//! without a word, so `{"max": "1 USDC", "max": "1000000 USDC"}` would read as the second.
//! A policy must say each thing once (review finding 9).

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a.next_element_seed(Strict)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = m.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(A::Error::custom(format!("key `{k}` appears twice in one object")));
            }
            m.next_value_seed(Strict)?;
        }
        Ok(())
    }
}

/// Whether `text` is JSON without duplicate keys (errors name the key).
pub fn no_duplicate_keys(text: &str) -> Result<(), serde_json::Error> {
    let mut d = serde_json::Deserializer::from_str(text);
    Strict.deserialize(&mut d)?;
    d.end()
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicates_are_named() {
        assert!(super::no_duplicate_keys(r#"{"a": {"b": 1, "c": [ {"d": 1} ]}, "e": 2}"#).is_ok());
        let e = super::no_duplicate_keys(r#"{"limits": [{"max": "1 USDC", "max": "1000000 USDC"}]}"#).unwrap_err();
        assert!(e.to_string().contains("key `max` appears twice"), "{e}");
    }
}
