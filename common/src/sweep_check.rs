//! What a sweep's reply must be before anyone sends or prints it: each transaction,
//! decoded, exactly the revocation (or Permit2 cancellation) it is listed as, from the
//! session, on the terms' chain, at the planned nonce, within the terms' fees and gas.
//! The owner's CLI checks every sweep reply with it before printing anything as signed
//! (the host relays and may alter replies), and the host's sweeper before it stores or
//! broadcasts one (in a cluster its calls travel through other hosts).

use crate::allowance::{cancel_call, revocation_call, AllowanceKind, Key};
use crate::protocol::{SweepTerms, SweepTx};
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{TxEnvelope, Typed2718};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{keccak256, Address, TxKind};

/// Why a sweep's reply is not what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SweepCheckError(pub String);

macro_rules! fail {
    ($($t:tt)*) => {
        return Err(SweepCheckError(format!($($t)*)))
    };
}

/// One transaction of a sweep: decoded, it is a transaction from `session` on the planned
/// chain and nonce, to the entry's token (or Permit2 contract), whose calldata is exactly the
/// revocation — or, where the reply says so, Permit2's `invalidateNonces` for the entry —
/// at fees and gas within `terms`. Either is harmless to send whenever.
pub fn sweep_tx(t: &SweepTx, terms: &SweepTerms, nonce: u64, session: Address) -> Result<(), SweepCheckError> {
    let what = match t.invalidate_nonce {
        None => format!("revocation of {} → {} on chain {}", t.token, t.spender, t.chain_id),
        Some(n) => format!(
            "cancellation below nonce {n} of Permit2 permits {} → {} on chain {}",
            t.token, t.spender, t.chain_id
        ),
    };
    let env = TxEnvelope::decode_2718(&mut &t.raw_transaction[..])
        .map_err(|e| SweepCheckError(format!("{what}: the raw transaction does not decode: {e}")))?;
    let TxEnvelope::Eip1559(s) = &env else {
        fail!("{what}: a type-{} transaction, not an EIP-1559 revocation", env.ty());
    };
    let x = s.tx();
    let signer =
        env.recover_signer().map_err(|e| SweepCheckError(format!("{what}: the signature does not recover: {e}")))?;
    if signer != session {
        fail!("{what}: signed by {signer}, not the session {session}");
    }
    if x.chain_id != terms.chain_id || t.chain_id != terms.chain_id {
        fail!("{what}: on chain {}, not the chain {} of the terms", x.chain_id, terms.chain_id);
    }
    if x.nonce != nonce || t.nonce != nonce {
        fail!("{what}: nonce {} (listed as {}), not the planned {nonce}", x.nonce, t.nonce);
    }
    let key = Key { chain_id: t.chain_id, holder: session, token: t.token, spender: t.spender, kind: t.kind };
    let call = match t.invalidate_nonce {
        None => revocation_call(&key),
        Some(n) => cancel_call(&key, n),
    };
    let Some((to, data)) = call else {
        fail!("{what}: a {} entry has no such transaction", t.kind.as_str());
    };
    if let AllowanceKind::Erc20 = t.kind {
        if to != t.token {
            fail!("{what}: internal: the revocation is not to the token");
        }
    }
    if x.to != TxKind::Call(to) || t.to != to {
        fail!("{what}: sent to {:?} (listed as {}), not to {to}", x.to, t.to);
    }
    if x.input != data {
        fail!(
            "{what}: the calldata is not {} — the host swapped the transaction (calldata 0x{})",
            match (t.kind, t.invalidate_nonce) {
                (_, Some(n)) => format!("Permit2 invalidateNonces({}, {}, {n})", t.token, t.spender),
                (AllowanceKind::Erc20, None) => format!("approve({}, 0)", t.spender),
                _ => format!("Permit2 approve({}, {}, 0, 0)", t.token, t.spender),
            },
            hex::encode(&x.input)
        );
    }
    if !x.value.is_zero() {
        fail!("{what}: sends {} wei of value", x.value);
    }
    if !x.access_list.0.is_empty() {
        fail!("{what}: carries an access list");
    }
    if x.max_fee_per_gas > terms.max_fee_per_gas
        || x.max_priority_fee_per_gas > terms.max_priority_fee_per_gas
        || x.gas_limit > terms.gas_limit
    {
        fail!(
            "{what}: fees or gas above the terms sent (max fee {} > {}, priority {} > {}, or gas {} > {})",
            x.max_fee_per_gas,
            terms.max_fee_per_gas,
            x.max_priority_fee_per_gas,
            terms.max_priority_fee_per_gas,
            x.gas_limit,
            terms.gas_limit
        );
    }
    if t.hash != keccak256(&t.raw_transaction) {
        fail!("{what}: its listed hash {} is not the raw transaction's", t.hash);
    }
    Ok(())
}

/// Every transaction of a sweep, in order: nonces follow each other per chain from the
/// terms' first nonce (`consecutive`: an owner's sweep), or only increase from it (an
/// unsigned sweep skips the nonces below the session's next one that hold the agent's
/// transactions, or other keys' revocations).
pub fn sweep(
    txs: &[SweepTx],
    terms: &[SweepTerms],
    session: Address,
    consecutive: bool,
) -> Result<(), SweepCheckError> {
    let mut next: std::collections::BTreeMap<u64, u64> = terms.iter().map(|t| (t.chain_id, t.nonce)).collect();
    for t in txs {
        let Some(x) = terms.iter().find(|x| x.chain_id == t.chain_id) else {
            fail!("a revocation on chain {}, for which no terms were sent", t.chain_id);
        };
        let Some(n) = next.get_mut(&t.chain_id) else { fail!("no terms for chain {}", t.chain_id) };
        let at = if consecutive { *n } else { t.nonce.max(*n) };
        sweep_tx(t, x, at, session)?;
        *n = at.saturating_add(1);
    }
    Ok(())
}

/// Every transaction at exactly its chain's terms' fees and gas, as the enclave signs them
/// ([`sweep`] checks only that they are within): for a caller that books what it asked
/// for, so that an earlier genuine reply at lower fees, replayed by a host in the way, is
/// not taken for a bump (a review of 2026-12-06).
pub fn exact_terms(txs: &[SweepTx], terms: &[SweepTerms]) -> Result<(), SweepCheckError> {
    for t in txs {
        let Some(x) = terms.iter().find(|x| x.chain_id == t.chain_id) else {
            fail!("a revocation on chain {}, for which no terms were sent", t.chain_id);
        };
        let env = TxEnvelope::decode_2718(&mut &t.raw_transaction[..])
            .map_err(|e| SweepCheckError(format!("nonce {}: the raw transaction does not decode: {e}", t.nonce)))?;
        let TxEnvelope::Eip1559(s) = &env else {
            fail!("nonce {}: a type-{} transaction, not an EIP-1559 revocation", t.nonce, env.ty());
        };
        let y = s.tx();
        if (y.max_fee_per_gas, y.max_priority_fee_per_gas, y.gas_limit)
            != (x.max_fee_per_gas, x.max_priority_fee_per_gas, x.gas_limit)
        {
            fail!(
                "nonce {}: fees and gas ({}, {}, {}) are not the terms' ({}, {}, {})",
                t.nonce,
                y.max_fee_per_gas,
                y.max_priority_fee_per_gas,
                y.gas_limit,
                x.max_fee_per_gas,
                x.max_priority_fee_per_gas,
                x.gas_limit
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{Eip1559Request, TxRequest};
    use alloy_primitives::{Signature, U256};
    use k256::ecdsa::SigningKey;

    fn key() -> (SigningKey, Address) {
        let k = SigningKey::from_slice(&[5u8; 32]).unwrap();
        let a = Address::from_public_key(k.verifying_key());
        (k, a)
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

    /// `req` signed by `k`, encoded.
    fn signed_raw(k: &SigningKey, req: &TxRequest) -> alloy_primitives::Bytes {
        let b = req.build().unwrap();
        let (s, r) = k.sign_prehash_recoverable(b.signing_hash().as_slice()).unwrap();
        b.encode_signed(Signature::from_signature_and_parity(s, r.is_y_odd()))
    }

    #[test]
    fn a_sweep_transaction_must_be_exactly_the_revocation() {
        use alloy_sol_types::{sol, SolCall};
        sol! {
            function approve(address spender, uint256 amount) returns (bool);
            function transfer(address to, uint256 amount) returns (bool);
        }
        let (k, me) = key();
        let (token, spender) = (Address::repeat_byte(0x70), Address::repeat_byte(0x5e));
        let terms = SweepTerms {
            chain_id: 31337,
            nonce: 4,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 100_000,
        };
        let mk = |data: Vec<u8>, nonce: u64| {
            let r = signed_raw(&k, &tx(token, data, nonce));
            SweepTx {
                chain_id: 31337,
                nonce,
                token,
                spender,
                kind: AllowanceKind::Erc20,
                to: token,
                hash: keccak256(&r),
                raw_transaction: r,
                invalidate_nonce: None,
            }
        };
        let good = mk(approveCall { spender, amount: U256::ZERO }.abi_encode(), 4);
        sweep(std::slice::from_ref(&good), std::slice::from_ref(&terms), me, true).unwrap();
        let bad = mk(transferCall { to: spender, amount: U256::from(5) }.abi_encode(), 4);
        let e = sweep(&[bad], std::slice::from_ref(&terms), me, true).unwrap_err().to_string();
        assert!(e.contains("swapped"), "{e}");
        let later = mk(approveCall { spender, amount: U256::ZERO }.abi_encode(), 5);
        let e = sweep(std::slice::from_ref(&later), std::slice::from_ref(&terms), me, true).unwrap_err().to_string();
        assert!(e.contains("not the planned 4"), "{e}");
        // An unsigned sweep may skip nonces, never go back.
        sweep(std::slice::from_ref(&later), std::slice::from_ref(&terms), me, false).unwrap();
        let e = sweep(&[later, good.clone()], std::slice::from_ref(&terms), me, false).unwrap_err().to_string();
        assert!(e.contains("not the planned 6"), "{e}");
        let e = sweep(&[good], std::slice::from_ref(&terms), Address::repeat_byte(3), true).unwrap_err().to_string();
        assert!(e.contains("not the session"), "{e}");

        // A Permit2 entry: its permits cancelled at 4, then its revocation at 5. The host
        // cannot pass one for the other, nor change the nonce the cancellation names.
        let permit2 = Address::repeat_byte(0x22);
        let kind = AllowanceKind::Permit2 { contract: permit2 };
        let key = Key { chain_id: 31337, holder: me, token, spender, kind };
        let p2 = |data: alloy_primitives::Bytes, nonce: u64, invalidate_nonce: Option<u64>| {
            let r = signed_raw(&k, &tx(permit2, data.to_vec(), nonce));
            SweepTx {
                chain_id: 31337,
                nonce,
                token,
                spender,
                kind,
                to: permit2,
                hash: keccak256(&r),
                raw_transaction: r,
                invalidate_nonce,
            }
        };
        let cancel = p2(cancel_call(&key, 3).unwrap().1, 4, Some(3));
        let revoke = p2(revocation_call(&key).unwrap().1, 5, None);
        sweep(&[cancel.clone(), revoke.clone()], std::slice::from_ref(&terms), me, true).unwrap();
        let e =
            sweep(&[SweepTx { invalidate_nonce: Some(9), ..cancel.clone() }], std::slice::from_ref(&terms), me, true)
                .unwrap_err()
                .to_string();
        assert!(e.contains("invalidateNonces") && e.contains("swapped"), "{e}");
        let e = sweep(&[SweepTx { invalidate_nonce: None, ..cancel.clone() }], std::slice::from_ref(&terms), me, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Permit2 approve") && e.contains("swapped"), "{e}");
        let e = sweep(&[cancel, SweepTx { invalidate_nonce: Some(3), ..revoke }], &[terms], me, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalidateNonces") && e.contains("swapped"), "{e}");
    }

    #[test]
    fn exact_terms_are_the_fees_and_gas_asked_for() {
        let (k, _) = key();
        let terms = SweepTerms {
            chain_id: 31337,
            nonce: 4,
            max_fee_per_gas: 2_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 100_000,
        };
        let at = |fee: u128, tip: u128, gas: u64| {
            let mut req = tx(Address::repeat_byte(1), vec![], 4);
            let TxRequest::Eip1559(r) = &mut req else { unreachable!() };
            (r.max_fee_per_gas, r.max_priority_fee_per_gas, r.gas_limit) = (fee, tip, gas);
            let raw = signed_raw(&k, &req);
            SweepTx {
                chain_id: 31337,
                nonce: 4,
                token: Address::repeat_byte(1),
                spender: Address::repeat_byte(2),
                kind: AllowanceKind::Erc20,
                to: Address::repeat_byte(1),
                hash: keccak256(&raw),
                raw_transaction: raw,
                invalidate_nonce: None,
            }
        };
        exact_terms(&[at(2_000_000_000, 1_000_000_000, 100_000)], std::slice::from_ref(&terms)).unwrap();
        for lower in [
            at(1_000_000_000, 1_000_000_000, 100_000),
            at(2_000_000_000, 1, 100_000),
            at(2_000_000_000, 1_000_000_000, 90_000),
        ] {
            let e = exact_terms(&[lower], std::slice::from_ref(&terms)).unwrap_err().to_string();
            assert!(e.contains("not the terms'"), "{e}");
        }
        let e = exact_terms(&[at(2_000_000_000, 1_000_000_000, 100_000)], &[SweepTerms { chain_id: 1, ..terms }])
            .unwrap_err();
        assert!(e.to_string().contains("no terms"), "{e}");
    }
}
