//! Agent stamps (R-TRUST-3): proof that a signing request comes from the session's agent.
//!
//! At session creation the enclave derives a stamp key from ECDH(agent key, enclave
//! identity key) with HKDF-SHA256 (salt `bridle/stamp/v1`, info = session address ‖
//! agent address). The agent derives the same key from its private key and the enclave's
//! attested identity public key; the host holds neither private key and cannot.
//!
//! Each request carries `HMAC-SHA256(key, "bridle/stamp/v1" ‖ session ‖ kind ‖ digest ‖
//! nonce ‖ timestamp)`. `digest` is the signing digest the enclave itself computes from the
//! structured request (for a transaction, keccak256 of its EIP-2718 signing payload), so
//! the MAC commits to every field of the request and the host can change none of them.
//! Checking it costs two SHA-256 compressions — microseconds — where an ECDSA check would
//! cost more than the signature asked for.

use alloy_primitives::{Address, B256};
use hmac::{Hmac, Mac};
use k256::{ecdh, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const DOMAIN: &[u8] = b"bridle/stamp/v1";

/// Which kind of payload a stamp covers (domain separation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    Transaction = 1,
    TypedData = 2,
    Message = 3,
    UserOperation = 4,
}

/// The stamp an agent attaches to a signing request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// 16 random bytes, never reused: 32 lowercase hex digits, no `0x`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "hex_16")]
    pub nonce: [u8; 16],
    /// Unix seconds when the agent made the stamp.
    pub timestamp: u64,
    /// HMAC-SHA256: 64 lowercase hex digits, no `0x`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    #[serde(with = "hex_32")]
    pub mac: [u8; 32],
}

/// The per-session HMAC key.
#[derive(Clone)]
pub struct StampKey([u8; 32]);

impl std::fmt::Debug for StampKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampKey(..)")
    }
}

impl Drop for StampKey {
    fn drop(&mut self) {
        // Best effort: the key never leaves the process; clear it when dropped.
        self.0 = [0u8; 32];
    }
}

impl StampKey {
    /// The key as bytes, for replication to the enclave's attested replicas only.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A key from [`StampKey::to_bytes`].
    pub fn from_bytes(bytes: [u8; 32]) -> StampKey {
        StampKey(bytes)
    }

    /// Derive from our secret and the peer's public key. Symmetric: the agent calls it with
    /// (agent secret, enclave public), the enclave with (enclave secret, agent public).
    pub fn derive(secret: &SecretKey, peer: &PublicKey, session: Address, agent: Address) -> StampKey {
        let shared = ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
        let hk = shared.extract::<Sha256>(Some(DOMAIN));
        let mut info = [0u8; 40];
        info[..20].copy_from_slice(session.as_slice());
        info[20..].copy_from_slice(agent.as_slice());
        let mut okm = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(&info, &mut okm).expect("32-byte HKDF output");
        StampKey(okm)
    }

    fn mac(
        &self,
        session: Address,
        kind: PayloadKind,
        digest: &B256,
        nonce: &[u8; 16],
        timestamp: u64,
    ) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(DOMAIN);
        m.update(session.as_slice());
        m.update(&[kind as u8]);
        m.update(digest.as_slice());
        m.update(nonce);
        m.update(&timestamp.to_be_bytes());
        m
    }

    /// Make a stamp (agent side).
    pub fn stamp(&self, session: Address, kind: PayloadKind, digest: &B256, nonce: [u8; 16], timestamp: u64) -> Stamp {
        let mac = self.mac(session, kind, digest, &nonce, timestamp).finalize().into_bytes();
        Stamp { nonce, timestamp, mac: mac.into() }
    }

    /// Check a stamp's MAC in constant time (enclave side).
    pub fn verify(&self, session: Address, kind: PayloadKind, digest: &B256, stamp: &Stamp) -> bool {
        self.mac(session, kind, digest, &stamp.nonce, stamp.timestamp).verify_slice(&stamp.mac).is_ok()
    }
}

impl Stamp {
    /// Header form: `v1.<nonce hex>.<timestamp>.<mac hex>`.
    pub fn to_header(&self) -> String {
        format!("v1.{}.{}.{}", hex::encode(self.nonce), self.timestamp, hex::encode(self.mac))
    }

    pub fn from_header(s: &str) -> Option<Stamp> {
        let mut parts = s.trim().split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let nonce: [u8; 16] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        let timestamp = parts.next()?.parse().ok()?;
        let mac: [u8; 32] = hex::decode(parts.next()?).ok()?.try_into().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Stamp { nonce, timestamp, mac })
    }
}

macro_rules! hex_array {
    ($name:ident, $n:literal) => {
        mod $name {
            use serde::{de::Error, Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(v))
                } else {
                    s.serialize_bytes(v)
                }
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                if d.is_human_readable() {
                    d.deserialize_str(Text)
                } else {
                    let v: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
                    v.into_vec().try_into().map_err(|_| D::Error::custom(concat!("expected ", $n, " bytes")))
                }
            }

            /// The hex text, decoded where it lies (no `String`, no `Vec`: this is on every
            /// signing request's path); any other length takes the general decoder, so
            /// every error reads as before.
            struct Text;
            impl serde::de::Visitor<'_> for Text {
                type Value = [u8; $n];
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: Error>(self, s: &str) -> Result<[u8; $n], E> {
                    let s = s.trim_start_matches("0x");
                    let mut out = [0u8; $n];
                    if s.len() == 2 * $n {
                        hex::decode_to_slice(s, &mut out).map_err(E::custom)?;
                        return Ok(out);
                    }
                    let v = hex::decode(s).map_err(E::custom)?;
                    v.try_into().map_err(|_| E::custom(concat!("expected ", $n, " bytes")))
                }
            }
        }
    };
}
hex_array!(hex_16, 16);
hex_array!(hex_32, 32);

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> (SecretKey, PublicKey, Address) {
        let sk = SecretKey::from_slice(&[seed; 32]).unwrap();
        let pk = sk.public_key();
        let addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&pk));
        (sk, pk, addr)
    }

    #[test]
    fn both_sides_derive_the_same_key_and_nobody_else_does() {
        let (agent_sk, agent_pk, agent) = keys(1);
        let (encl_sk, encl_pk, _) = keys(2);
        let (other_sk, _, _) = keys(3);
        let session = Address::repeat_byte(9);
        let a = StampKey::derive(&agent_sk, &encl_pk, session, agent);
        let e = StampKey::derive(&encl_sk, &agent_pk, session, agent);
        let o = StampKey::derive(&other_sk, &encl_pk, session, agent);
        let d = B256::repeat_byte(5);
        let st = a.stamp(session, PayloadKind::Transaction, &d, [1; 16], 100);
        assert!(e.verify(session, PayloadKind::Transaction, &d, &st));
        assert!(!e.verify(session, PayloadKind::Message, &d, &st));
        assert!(!e.verify(session, PayloadKind::Transaction, &B256::repeat_byte(6), &st));
        assert!(!e.verify(Address::repeat_byte(8), PayloadKind::Transaction, &d, &st));
        let mut late = st;
        late.timestamp += 1;
        assert!(!e.verify(session, PayloadKind::Transaction, &d, &late));
        let forged = o.stamp(session, PayloadKind::Transaction, &d, [1; 16], 100);
        assert!(!e.verify(session, PayloadKind::Transaction, &d, &forged));
    }

    #[test]
    fn header_round_trip() {
        let st = Stamp { nonce: [0xab; 16], timestamp: 1_700_000_000, mac: [0xcd; 32] };
        assert_eq!(Stamp::from_header(&st.to_header()), Some(st));
        assert_eq!(Stamp::from_header("v2.00.1.00"), None);
        assert_eq!(Stamp::from_header(""), None);
        assert_eq!(Stamp::from_header(&format!("{}.x", st.to_header())), None);
    }

    #[test]
    fn json_stamps_read_as_before() {
        let st = Stamp { nonce: [0xab; 16], timestamp: 7, mac: [0xcd; 32] };
        let text = serde_json::to_string(&st).unwrap();
        assert_eq!(serde_json::from_str::<Stamp>(&text).unwrap(), st);
        // Escaped text (not borrowed) and a leading 0x read alike.
        let escaped = text.replace("\"abab", "\"\\u0061bab").replace("cdcd\"", "cdc\\u0064\"");
        assert_ne!(escaped, text);
        assert_eq!(serde_json::from_str::<Stamp>(&escaped).unwrap(), st);
        let prefixed = text.replace("\"abab", "\"0xabab");
        assert_eq!(serde_json::from_str::<Stamp>(&prefixed).unwrap(), st);
        // Each refusal says what it said when the text was decoded through a `Vec`.
        let nonce = |n: &str| format!(r#"{{"nonce":{n},"timestamp":7,"mac":"{}"}}"#, "cd".repeat(32));
        let err = |n: &str| serde_json::from_str::<Stamp>(&nonce(n)).unwrap_err().to_string();
        assert!(err(&format!("\"{}\"", "ab".repeat(15))).starts_with("expected 16 bytes"));
        assert!(err(&format!("\"{}\"", "ab".repeat(17))).starts_with("expected 16 bytes"));
        assert!(err(&format!("\"{}a\"", "ab".repeat(15))).starts_with("Odd number of digits"));
        assert!(err(&format!("\"{}zz\"", "ab".repeat(15))).starts_with("Invalid character 'z' at position 30"));
        assert!(err(&format!("\"{}zz\"", "ab".repeat(14))).starts_with("Invalid character 'z' at position 28"));
        assert!(err("17").starts_with("invalid type: integer `17`, expected a string"));
        // CBOR (the enclave's frames) keeps its byte strings.
        let mut cbor = Vec::new();
        ciborium::into_writer(&st, &mut cbor).unwrap();
        assert_eq!(ciborium::from_reader::<Stamp, _>(cbor.as_slice()).unwrap(), st);
    }
}
