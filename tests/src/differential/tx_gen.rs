//! Transactions of every shape the API takes (RULES §4, §6): legacy ones (the gas price is
//! both fees), EIP-1559 ones with access lists around `approvals.revoke_gas` (a gas limit
//! less what the list costs up front below it may run out of gas and write nothing), and
//! EIP-7702 ones, always refused.

use super::*;

/// A random request as [`random_req_with`] draws it; with `revoke_gas` (the policy's
/// `approvals.revoke_gas`, or its default), now and then an EIP-7702 transaction, and some of
/// the transactions reshaped: legacy, or with an access list, their gas limits often at the
/// revoke-gas boundary. Without it, exactly [`random_req_with`]'s draws.
pub fn random_req_typed(
    r: &mut Rng,
    nonces: &mut HashMap<u64, u64>,
    clock: u64,
    chains: &[u64],
    delegations: bool,
    revoke_gas: Option<u64>,
) -> Req {
    let Some(revoke_gas) = revoke_gas else { return random_req_with(r, nonces, clock, chains, delegations) };
    if r.chance(1) {
        return random_eip7702(r, chains);
    }
    match random_req_with(r, nonces, clock, chains, delegations) {
        tx @ Req::Tx { .. } if r.chance(30) => reshape(r, tx, revoke_gas),
        req => req,
    }
}

/// An EIP-7702 transaction with 0–2 authorizations.
pub fn random_eip7702(r: &mut Rng, chains: &[u64]) -> Req {
    let chain_id = if chains.is_empty() { 1 } else { *r.pick(chains) };
    let authorizations = (0..r.below(3))
        .map(|_| {
            let chain = if r.chance(30) { U256::ZERO } else { U256::from(chain_id) };
            (chain, *r.pick(&[OTHER, SCA, ALICE]), r.below(3))
        })
        .collect();
    Req::Eip7702 { chain_id, authorizations }
}

/// A storage key from a small pool (so that a long list repeats some).
fn storage_key(r: &mut Rng) -> B256 {
    B256::with_last_byte(r.below(64) as u8)
}

/// An access list: none, the attack shape of a review (one address, 40 keys), or 1–3
/// addresses of 0–50 keys, now and then an address (with its keys, or others) listed twice
/// or a key repeated.
pub fn access_list(r: &mut Rng) -> bridle_model::AccessList {
    let addrs = [TOK1, TOK2, S1, OTHER, ACCOUNT, ALICE];
    let keys = |r: &mut Rng, n: u64| (0..n).map(|_| storage_key(r)).collect::<Vec<_>>();
    let mut list: bridle_model::AccessList = match r.below(8) {
        0 => Vec::new(),
        1 | 2 => vec![(*r.pick(&addrs), keys(r, 40))],
        _ => (0..1 + r.below(3))
            .map(|_| {
                let n = match r.below(4) {
                    0 => 0,
                    1 => 35 + r.below(16),
                    _ => r.below(6),
                };
                (*r.pick(&addrs), keys(r, n))
            })
            .collect(),
    };
    if !list.is_empty() && r.chance(20) {
        let i = r.below(list.len() as u64) as usize;
        let mut again = list[i].clone();
        if r.chance(50) {
            let n = r.below(4);
            again.1 = keys(r, n);
        }
        list.push(again);
    }
    if let Some((_, ks)) = list.iter_mut().find(|(_, ks)| !ks.is_empty()) {
        if r.chance(20) {
            let k = ks[0];
            ks.push(k);
        }
    }
    list
}

/// A gas limit for a transaction whose access list costs `upfront`: at the boundary
/// (`revoke_gas + upfront`, one below or above, or a little further either side), the
/// review's 100 000, below what the list costs alone, or `otherwise`.
pub fn gas_near(r: &mut Rng, revoke_gas: u64, upfront: u64, otherwise: u64) -> u64 {
    let edge = revoke_gas + upfront;
    match r.below(10) {
        0..=3 => match r.below(5) {
            0 => edge - 1,
            1 => edge,
            2 => edge + 1,
            3 => edge - 1 - r.below(2_500),
            _ => edge + r.below(2_500),
        },
        4 => 100_000,
        5 => r.below(upfront + 1).max(21_000),
        _ => otherwise,
    }
}

/// `tx` (a [`Req::Tx`]) as a legacy transaction or with an access list.
fn reshape(r: &mut Rng, tx: Req, revoke_gas: u64) -> Req {
    let Req::Tx { chain_id, nonce, to, value, data, gas_limit, max_fee_per_gas, .. } = tx else { return tx };
    if r.chance(40) {
        let gas_price = if r.chance(80) { max_fee_per_gas } else { r.below(60) as u128 };
        return Req::Legacy {
            chain_id,
            nonce,
            to,
            value,
            data,
            gas_limit: gas_near(r, revoke_gas, 0, gas_limit),
            gas_price,
        };
    }
    let access_list = access_list(r);
    let upfront = bridle_model::access_list_cost(&access_list) as u64;
    let max_priority_fee_per_gas = if r.chance(30) { r.below(max_fee_per_gas as u64 + 1) as u128 } else { 0 };
    Req::Tx {
        chain_id,
        nonce,
        to,
        value,
        data,
        gas_limit: gas_near(r, revoke_gas, upfront, gas_limit),
        max_fee_per_gas,
        max_priority_fee_per_gas,
        access_list,
    }
}
