//! What the CLI checks before it prints anything as the enclave's word.
//!
//! The host relays; it can drop, replay, alter or invent replies. Each check here names what
//! failed, and the commands stop (exit 1) instead of printing the reply.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{TxEnvelope, Typed2718};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Signature, TxKind, B256};
use anyhow::{anyhow, bail, Result};
use bridle_common::payload::prepare;
use bridle_common::protocol::{SessionBinding, SignPayload, Signed, SweepTerms, SweepTx};
use bridle_common::receipt::{self, Receipt, Receipted};
use bridle_common::tx::TxRequest;

pub use bridle_common::receipt::owner_nonce;

/// `body` carries a receipt of the trusted enclave for `nonce`.
pub fn receipt<'a, T: Receipted>(body: &'a T, trusted: Address, nonce: B256, what: &str) -> Result<&'a Receipt> {
    receipt::verify(body, trusted, Some(nonce)).map_err(|e| anyhow!("{what}: {e}"))
}

/// What a binding returned by `create_session` or `update_policy` must say.
pub struct Expected {
    pub enclave: Address,
    /// `None` at grant: the session is new.
    pub session: Option<Address>,
    pub owner: Address,
    pub agent: Address,
    pub policy_hash: B256,
    pub valid_until: Option<u64>,
}

/// A session binding is signed by the trusted identity and names exactly what the owner
/// signed.
pub fn binding(b: &SessionBinding, signature: &[u8], want: &Expected) -> Result<()> {
    if b.enclave != want.enclave {
        bail!("the binding names enclave {}, not the trusted enclave {}", b.enclave, want.enclave);
    }
    let digest = b.digest();
    let signer = Signature::from_raw(signature)
        .ok()
        .and_then(|s| s.recover_address_from_prehash(&digest).ok())
        .ok_or_else(|| anyhow!("the binding signature is not a valid 65-byte signature"))?;
    if signer != want.enclave {
        bail!(
            "the binding is signed by {signer}, not by the trusted enclave {}: the host forged or altered it",
            want.enclave
        );
    }
    if let Some(s) = want.session {
        if b.session != s {
            bail!("the binding is for session {}, not {s}", b.session);
        }
    }
    if b.owner != want.owner {
        bail!("the binding names owner {}, not you ({})", b.owner, want.owner);
    }
    if b.agent != want.agent {
        bail!("the binding names agent {}, not the agent you granted ({})", b.agent, want.agent);
    }
    if b.policy_hash != want.policy_hash {
        bail!("the binding is for policy {}, not the policy you signed ({})", b.policy_hash, want.policy_hash);
    }
    if let Some(v) = want.valid_until {
        if b.valid_until != v {
            bail!("the binding's valid_until is {}, not the policy's {v}", b.valid_until);
        }
    }
    Ok(())
}

/// A signature of `session` over `digest`: 65 bytes r ‖ s ‖ v with v = 27 or 28, as the
/// enclave makes every `Signed.signature`.
pub fn recovers_to(signature: &[u8], digest: &B256, session: Address) -> Result<Signature> {
    // `from_raw` also takes v = 0/1 and EIP-155 values (35 and up), which recover alike here
    // but which ecrecover, OpenZeppelin's ECDSA and SimpleAccount refuse: a host rewriting
    // v would withhold a usable signature behind one that checks out (a review of
    // 2026-12-06). The callers hand these bytes on unchanged.
    let [.., v] = signature else { bail!("the signature is empty, not a 65-byte r ‖ s ‖ v signature") };
    if signature.len() != 65 {
        bail!("the signature is {} bytes, not a 65-byte r ‖ s ‖ v signature", signature.len());
    }
    if !matches!(v, 27 | 28) {
        bail!("the signature's v is {v}, not 27 or 28 as the enclave signs (contracts' ecrecover refuses it): the host altered it");
    }
    let sig = Signature::from_raw(signature)
        .map_err(|e| anyhow!("the signature is not a 65-byte r ‖ s ‖ v signature: {e}"))?;
    // The enclave signs with low s only (EIP-2); recovery would accept the high-s twin,
    // which nodes and OpenZeppelin's ECDSA refuse: a host's alteration, withheld from use.
    if sig.normalize_s().is_some() {
        bail!("the signature's s is in the upper half of the curve order: the enclave signs only low s (EIP-2), so the host altered it");
    }
    let who = sig.recover_address_from_prehash(digest).map_err(|e| anyhow!("the signature does not recover: {e}"))?;
    if who != session {
        bail!("the signature recovers to {who}, not the session {session}");
    }
    Ok(sig)
}

/// A `Signed` reply is for exactly `payload`: the digest we compute ourselves, a signature
/// of `session` over what the key signs, and for a transaction a raw transaction that is ours
/// field by field with that signature.
pub fn signed(payload: &SignPayload, reply: &Signed, session: Address) -> Result<()> {
    let p = prepare(payload).map_err(|d| anyhow!("the request does not decode here: {d}"))?;
    if reply.session != session {
        bail!("the reply is for session {}, not {session}", reply.session);
    }
    let digest = p.stamp_digest();
    if reply.digest != digest {
        bail!("the reply is for digest {}, not this request's {digest}", reply.digest);
    }
    let sig = recovers_to(&reply.signature, &p.signing_digest(), session)?;
    match (payload, &reply.raw_transaction) {
        (SignPayload::Transaction(tx), Some(raw)) => raw_transaction(tx, raw, session, &sig),
        (SignPayload::Transaction(_), None) => bail!("the reply carries no raw transaction"),
        (_, Some(_)) => bail!("the reply carries a raw transaction for a request that is not one"),
        (_, None) => Ok(()),
    }
}

fn differs<T: std::fmt::Debug + PartialEq>(field: &str, got: T, want: T) -> Result<()> {
    if got != want {
        bail!("the raw transaction's {field} is {got:?}, not the requested {want:?}");
    }
    Ok(())
}

/// Decode a raw EIP-2718 transaction and compare every field with `req`; the signer must be
/// `session` and the signature `sig`.
pub fn raw_transaction(req: &TxRequest, raw: &[u8], session: Address, sig: &Signature) -> Result<()> {
    let env = TxEnvelope::decode_2718(&mut &raw[..])
        .map_err(|e| anyhow!("the raw transaction does not decode as an EIP-2718 transaction: {e}"))?;
    let kind = |to: Option<Address>| to.map_or(TxKind::Create, TxKind::Call);
    let got_sig = match (&env, req) {
        (TxEnvelope::Eip1559(s), TxRequest::Eip1559(r)) => {
            let t = s.tx();
            differs("chain id", t.chain_id, r.chain_id)?;
            differs("nonce", t.nonce, r.nonce)?;
            differs("gas limit", t.gas_limit, r.gas_limit)?;
            differs("max fee per gas", t.max_fee_per_gas, r.max_fee_per_gas)?;
            differs("max priority fee per gas", t.max_priority_fee_per_gas, r.max_priority_fee_per_gas)?;
            differs("destination", t.to, kind(r.to))?;
            differs("value", t.value, r.value)?;
            differs("calldata", &t.input, &r.data)?;
            let list: Vec<(Address, Vec<B256>)> =
                t.access_list.0.iter().map(|e| (e.address, e.storage_keys.clone())).collect();
            let want: Vec<(Address, Vec<B256>)> =
                r.access_list.iter().map(|e| (e.address, e.storage_keys.clone())).collect();
            differs("access list", list, want)?;
            *s.signature()
        }
        (TxEnvelope::Legacy(s), TxRequest::Legacy(r)) => {
            let t = s.tx();
            differs("chain id", t.chain_id, Some(r.chain_id))?;
            differs("nonce", t.nonce, r.nonce)?;
            differs("gas limit", t.gas_limit, r.gas_limit)?;
            differs("gas price", t.gas_price, r.gas_price)?;
            differs("destination", t.to, kind(r.to))?;
            differs("value", t.value, r.value)?;
            differs("calldata", &t.input, &r.data)?;
            *s.signature()
        }
        (e, r) => bail!(
            "the raw transaction is of type {}, not the requested {}",
            e.ty(),
            match r {
                TxRequest::Legacy(_) => "legacy (0)",
                TxRequest::Eip1559(_) => "EIP-1559 (2)",
                TxRequest::Eip7702 { .. } => "EIP-7702 (4)",
            }
        ),
    };
    if (got_sig.r(), got_sig.s(), got_sig.v()) != (sig.r(), sig.s(), sig.v()) {
        bail!("the raw transaction carries another signature than the reply's");
    }
    let signer = env.recover_signer().map_err(|e| anyhow!("the raw transaction's signature does not recover: {e}"))?;
    if signer != session {
        bail!("the raw transaction is signed by {signer}, not the session {session}");
    }
    // And byte for byte what we would encode.
    let built = req.build().ok_or_else(|| anyhow!("the request cannot be built"))?;
    if built.encode_signed(*sig).as_ref() != raw {
        bail!("the raw transaction is not the canonical encoding of the request and its signature");
    }
    Ok(())
}

/// A sweep's reply, checked as [`bridle_common::sweep_check::sweep`] does.
pub fn sweep(txs: &[SweepTx], terms: &[SweepTerms], session: Address, consecutive: bool) -> Result<()> {
    Ok(bridle_common::sweep_check::sweep(txs, terms, session, consecutive)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use bridle_common::tx::Eip1559Request;
    use k256::ecdsa::SigningKey;

    fn key() -> (SigningKey, Address) {
        let k = SigningKey::from_slice(&[5u8; 32]).unwrap();
        let a = Address::from_public_key(k.verifying_key());
        (k, a)
    }

    fn sign(k: &SigningKey, d: &B256) -> Signature {
        let (s, r) = k.sign_prehash_recoverable(d.as_slice()).unwrap();
        Signature::from_signature_and_parity(s, r.is_y_odd())
    }

    fn tx(to: Address, data: Vec<u8>, nonce: u64) -> TxRequest {
        TxRequest::Eip1559(Eip1559Request {
            chain_id: 31337,
            nonce,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 100_000,
            to: Some(to),
            value: U256::ZERO,
            data: data.into(),
            access_list: vec![],
        })
    }

    fn signed_reply(k: &SigningKey, session: Address, req: &TxRequest) -> Signed {
        let b = req.build().unwrap();
        let d = b.signing_hash();
        let sig = sign(k, &d);
        Signed {
            session,
            digest: d,
            signature: sig.as_bytes().to_vec().into(),
            raw_transaction: Some(b.encode_signed(sig)),
        }
    }

    #[test]
    fn a_genuine_signed_transaction_passes_and_any_swap_fails() {
        let (k, me) = key();
        let req = tx(Address::repeat_byte(1), vec![1, 2, 3], 0);
        let reply = signed_reply(&k, me, &req);
        signed(&SignPayload::Transaction(req.clone()), &reply, me).unwrap();
        // Another transaction signed by the same key, swapped in as the raw transaction.
        let other = signed_reply(&k, me, &tx(Address::repeat_byte(9), vec![1, 2, 3], 0));
        let mut swapped = reply.clone();
        swapped.raw_transaction = other.raw_transaction.clone();
        let e = signed(&SignPayload::Transaction(req.clone()), &swapped, me).unwrap_err().to_string();
        assert!(e.contains("destination"), "{e}");
        // The whole reply swapped: the digest is not ours.
        let e = signed(&SignPayload::Transaction(req.clone()), &other, me).unwrap_err().to_string();
        assert!(e.contains("not this request's"), "{e}");
        // A signature by someone else.
        let stranger = SigningKey::from_slice(&[6u8; 32]).unwrap();
        let forged = signed_reply(&stranger, me, &req);
        let e = signed(&SignPayload::Transaction(req), &forged, me).unwrap_err().to_string();
        assert!(e.contains("recovers to"), "{e}");
    }

    #[test]
    fn the_high_s_twin_of_a_signature_is_refused() {
        // n − s with the other parity recovers to the same key, but nodes and OpenZeppelin's
        // ECDSA refuse it (EIP-2): the enclave never makes one.
        let (k, me) = key();
        let d = B256::repeat_byte(7);
        let sig = sign(&k, &d);
        recovers_to(&sig.as_bytes(), &d, me).unwrap();
        let n = U256::from_be_slice(
            &hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap(),
        );
        let twin = Signature::new(sig.r(), n - sig.s(), !sig.v());
        assert_eq!(twin.recover_address_from_prehash(&d).unwrap(), me, "the twin recovers alike");
        let e = recovers_to(&twin.as_bytes(), &d, me).unwrap_err().to_string();
        assert!(e.contains("upper half"), "{e}");
    }

    #[test]
    fn a_signature_whose_v_is_not_27_or_28_is_refused() {
        // The same r and s with v = 0/1 (or an EIP-155 v) recover to the same key, but
        // on-chain ecrecover, OpenZeppelin's ECDSA and SimpleAccount refuse them.
        let (k, me) = key();
        let d = B256::repeat_byte(8);
        let good = sign(&k, &d).as_bytes();
        assert!(matches!(good[64], 27 | 28));
        recovers_to(&good, &d, me).unwrap();
        // v = 0/1 and its EIP-155 twin (35/36): the same parity, recovered alike.
        for v in [good[64] - 27, good[64] + 8] {
            let mut bad = good;
            bad[64] = v;
            let s = Signature::from_raw(&bad).unwrap();
            assert_eq!(s.recover_address_from_prehash(&d).unwrap(), me, "v = {v} recovers alike");
        }
        for v in [0, 1, 2, 26, 29, 35, 36, 37, 38, 0xff] {
            let mut bad = good;
            bad[64] = v;
            let e = recovers_to(&bad, &d, me).unwrap_err().to_string();
            assert!(e.contains("not 27 or 28"), "v = {v}: {e}");
        }
        let e = recovers_to(&good[..64], &d, me).unwrap_err().to_string();
        assert!(e.contains("64 bytes"), "{e}");
        // Through the whole check of a reply, for a message.
        let payload = SignPayload::Message(b"gm".to_vec().into());
        let p = prepare(&payload).unwrap();
        let sig = sign(&k, &p.signing_digest()).as_bytes();
        let mut reply =
            Signed { session: me, digest: p.stamp_digest(), signature: sig.to_vec().into(), raw_transaction: None };
        signed(&payload, &reply, me).unwrap();
        let mut v0 = sig;
        v0[64] -= 27;
        reply.signature = v0.to_vec().into();
        let e = signed(&payload, &reply, me).unwrap_err().to_string();
        assert!(e.contains("not 27 or 28"), "{e}");
    }

    #[test]
    fn bindings_name_what_was_signed() {
        let (k, me) = key();
        let b = SessionBinding {
            enclave: me,
            session: Address::repeat_byte(1),
            owner: Address::repeat_byte(2),
            agent: Address::repeat_byte(3),
            policy_hash: B256::repeat_byte(4),
            created_at: 1,
            valid_until: 2,
        };
        let sig = sign(&k, &b.digest()).as_bytes();
        let want = Expected {
            enclave: me,
            session: None,
            owner: b.owner,
            agent: b.agent,
            policy_hash: b.policy_hash,
            valid_until: Some(2),
        };
        binding(&b, &sig, &want).unwrap();
        let mut swapped = b.clone();
        swapped.session = Address::repeat_byte(9);
        let e = binding(&swapped, &sig, &want).unwrap_err().to_string();
        assert!(e.contains("forged or altered"), "{e}");
        let e = binding(&b, &sig, &Expected { policy_hash: B256::ZERO, ..want }).unwrap_err().to_string();
        assert!(e.contains("not the policy you signed"), "{e}");
    }
}
