//! The enclave's signed word on a reply.
//!
//! Everything an owner tool prints as an enclave act — a policy now in force, a revocation,
//! a sweep, a session's status — must carry the enclave identity key's signature, checked
//! against the identity the owner trusts (a pinned key, or one bound to an attestation);
//! anything else is the untrusted host's word. A [`Receipt`] is that signature, over the
//! reply itself (canonical CBOR, with the receipt left out), the kind of reply, the enclave,
//! the enclave time and the caller's nonce (when the caller asked for freshness):
//!
//! ```text
//! digest = keccak256("bridle/receipt/v1" ‖ str(kind) ‖ enclave[20] ‖ time: u64
//!                    ‖ nonce[32] ‖ keccak256(cbor(reply without its receipt)))
//! ```
//!
//! The tag differs from every other digest the identity key signs (session bindings,
//! audit heads), so no signature can be replayed across them.

use alloy_primitives::{keccak256, Address, Bytes, Keccak256, Signature, B256};
use serde::{Deserialize, Serialize};

/// Domain tag of receipt digests.
pub const RECEIPT_TAG: &[u8] = b"bridle/receipt/v1";

/// The enclave identity key's signature over a reply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The enclave identity address.
    pub enclave: Address,
    /// Enclave time when it signed, unix seconds.
    pub time: u64,
    /// The caller's nonce (zero when none was given).
    pub nonce: B256,
    /// 65-byte `r ‖ s ‖ v` over the digest above.
    pub signature: Bytes,
}

/// A reply that carries a receipt.
pub trait Receipted: Serialize + Clone {
    /// What kind of reply, part of the digest.
    const KIND: &'static str;
    fn receipt(&self) -> Option<&Receipt>;
    fn set_receipt(&mut self, r: Option<Receipt>);
}

/// The digest a receipt over `body` signs. The reply's CBOR is hashed as it is encoded,
/// and the reply is copied only when it already carries a receipt (to leave it out): a
/// status can be large (`frame::max_answer`), and the enclave signs it on a worker.
pub fn digest<T: Receipted>(body: &T, enclave: Address, time: u64, nonce: B256) -> B256 {
    let body_hash = match body.receipt() {
        None => cbor_keccak(body),
        Some(_) => {
            let mut bare = body.clone();
            bare.set_receipt(None);
            cbor_keccak(&bare)
        }
    };
    let mut buf = Vec::with_capacity(RECEIPT_TAG.len() + 128);
    buf.extend_from_slice(RECEIPT_TAG);
    buf.extend_from_slice(&(T::KIND.len() as u32).to_be_bytes());
    buf.extend_from_slice(T::KIND.as_bytes());
    buf.extend_from_slice(enclave.as_slice());
    buf.extend_from_slice(&time.to_be_bytes());
    buf.extend_from_slice(nonce.as_slice());
    buf.extend_from_slice(body_hash.as_slice());
    keccak256(buf)
}

/// `keccak256(cbor(v))` without holding the encoding (of a value serde cannot encode, the
/// hash of nothing, as before).
fn cbor_keccak<T: Serialize>(v: &T) -> B256 {
    struct Hashing(Keccak256);
    impl std::io::Write for Hashing {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Keccak256::new());
    match ciborium::into_writer(v, &mut h) {
        Ok(()) => h.0.finalize(),
        Err(_) => keccak256([]),
    }
}

/// The receipt nonce of an owner call's reply: the owner's nonce bound to the owner,
/// `keccak256("bridle/owner-receipt/v1" ‖ owner[20] ‖ nonce as a 32-byte big-endian word)`
/// (zero for a call no owner signed: an anonymous sweep, [`anonymous_nonce`]).
///
/// Nonces are per owner and anyone can be an owner, so the nonce alone named no owner: a
/// host withholding an owner's `revoke_all` could send its own, from a fresh key with the
/// same nonce, and show the owner the enclave's genuine receipt for it — "revoked, signed
/// by the enclave" with none of the owner's sessions revoked (found 2026-12-04 by a review;
/// `allow_image` alike).
pub fn owner_nonce(owner: Address, n: u64) -> B256 {
    let mut buf = Vec::with_capacity(23 + 20 + 32);
    buf.extend_from_slice(b"bridle/owner-receipt/v1");
    buf.extend_from_slice(owner.as_slice());
    buf.extend_from_slice(&alloy_primitives::U256::from(n).to_be_bytes::<32>());
    keccak256(buf)
}

/// The receipt nonce of the reply to a call no owner signed (an anonymous sweep): zero.
pub fn anonymous_nonce() -> B256 {
    B256::ZERO
}

/// The receipt nonce of a status reply about `session`: the caller's nonce bound to the
/// session asked about, `keccak256("bridle/status/v1" ‖ nonce[32] ‖ session[20])`, so that a
/// host cannot answer a question about one session with the enclave's signed status of
/// another (or with "no such session" for an address it chose). Without a session, the
/// caller's nonce itself.
pub fn status_nonce(nonce: B256, session: Option<Address>) -> B256 {
    match session {
        None => nonce,
        Some(s) => {
            let mut buf = Vec::with_capacity(16 + 32 + 20);
            buf.extend_from_slice(b"bridle/status/v1");
            buf.extend_from_slice(nonce.as_slice());
            buf.extend_from_slice(s.as_slice());
            keccak256(buf)
        }
    }
}

/// Attach a receipt signed with `sign` (the identity key).
pub fn attach<T: Receipted, E>(
    body: &mut T,
    enclave: Address,
    time: u64,
    nonce: B256,
    sign: impl FnOnce(&B256) -> Result<Signature, E>,
) -> Result<(), E> {
    let d = digest(body, enclave, time, nonce);
    let sig = sign(&d)?;
    body.set_receipt(Some(Receipt { enclave, time, nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) }));
    Ok(())
}

/// Why a receipt does not prove a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the reply carries no enclave signature: it is only the host's word")]
    Missing,
    #[error("the receipt names enclave {found}, not the trusted {expected}")]
    WrongEnclave { expected: Address, found: Address },
    #[error("the receipt is for nonce {found}, not the {expected} this request sent (a replayed reply)")]
    WrongNonce { expected: B256, found: B256 },
    #[error("the receipt signature is invalid: {0}")]
    BadSignature(String),
    #[error(
        "the receipt is signed by {recovered}, not the trusted enclave {expected} (the reply was altered or forged)"
    )]
    Signer { expected: Address, recovered: Address },
}

/// Check that `body` carries a receipt by the trusted enclave `expected` (and, when given,
/// for `nonce`). Returns the receipt.
pub fn verify<T: Receipted>(body: &T, expected: Address, nonce: Option<B256>) -> Result<&Receipt, ReceiptError> {
    let r = body.receipt().ok_or(ReceiptError::Missing)?;
    if r.enclave != expected {
        return Err(ReceiptError::WrongEnclave { expected, found: r.enclave });
    }
    if let Some(n) = nonce {
        if r.nonce != n {
            return Err(ReceiptError::WrongNonce { expected: n, found: r.nonce });
        }
    }
    let sig = Signature::from_raw(&r.signature).map_err(|e| ReceiptError::BadSignature(e.to_string()))?;
    let d = digest(body, r.enclave, r.time, r.nonce);
    let recovered = sig.recover_address_from_prehash(&d).map_err(|e| ReceiptError::BadSignature(e.to_string()))?;
    if recovered != expected {
        return Err(ReceiptError::Signer { expected, recovered });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Revoked;

    #[test]
    fn a_receipt_proves_exactly_its_reply() {
        let key = k256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
        let me = Address::from_public_key(key.verifying_key());
        let sign = |d: &B256| -> Result<Signature, k256::ecdsa::Error> {
            let (s, r) = key.sign_prehash_recoverable(d.as_slice())?;
            Ok(Signature::from_signature_and_parity(s, r.is_y_odd()))
        };
        let mut r = Revoked { sessions: vec![Address::repeat_byte(1)], receipt: None };
        assert_eq!(verify(&r, me, None), Err(ReceiptError::Missing));
        let nonce = B256::repeat_byte(9);
        attach(&mut r, me, 100, nonce, sign).unwrap();
        verify(&r, me, Some(nonce)).unwrap();
        assert!(matches!(verify(&r, me, Some(B256::ZERO)), Err(ReceiptError::WrongNonce { .. })));
        assert!(matches!(verify(&r, Address::repeat_byte(2), None), Err(ReceiptError::WrongEnclave { .. })));
        // The host changes the reply: the signature no longer recovers to the enclave.
        let mut forged = r.clone();
        forged.sessions.push(Address::repeat_byte(5));
        assert!(matches!(verify(&forged, me, None), Err(ReceiptError::Signer { .. })));
        // Or relabels the receipt's time.
        let mut forged = r.clone();
        forged.receipt.as_mut().unwrap().time = 101;
        assert!(matches!(verify(&forged, me, None), Err(ReceiptError::Signer { .. })));
    }

    /// The digest hashes the reply's CBOR as it is encoded: the same digest as hashing the
    /// whole encoding (the formula in the module's docs), with or without a receipt on it.
    #[test]
    fn the_digest_is_the_documented_formula() {
        let mut r = Revoked { sessions: (0..200u8).map(Address::repeat_byte).collect(), receipt: None };
        let (me, nonce) = (Address::repeat_byte(7), B256::repeat_byte(9));
        let formula = |r: &Revoked| {
            let mut bare = r.clone();
            bare.receipt = None;
            let mut buf = RECEIPT_TAG.to_vec();
            buf.extend_from_slice(&(Revoked::KIND.len() as u32).to_be_bytes());
            buf.extend_from_slice(Revoked::KIND.as_bytes());
            buf.extend_from_slice(me.as_slice());
            buf.extend_from_slice(&100u64.to_be_bytes());
            buf.extend_from_slice(nonce.as_slice());
            buf.extend_from_slice(keccak256(crate::frame::to_cbor(&bare).unwrap()).as_slice());
            keccak256(buf)
        };
        assert_eq!(digest(&r, me, 100, nonce), formula(&r));
        r.receipt = Some(Receipt { enclave: me, time: 100, nonce, signature: Bytes::from(vec![1u8; 65]) });
        assert_eq!(digest(&r, me, 100, nonce), formula(&r));
    }
}
