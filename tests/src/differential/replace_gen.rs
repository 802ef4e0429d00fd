//! Requests at a nonce something was already signed at, made from what was signed there: a
//! fee bump, a lower amount for the same spender, the spender's revocation, a plain
//! transaction in its place, an `approve` of less in place of an `increaseAllowance`, the
//! same with gas below `approvals.revoke_gas` — the cases that decide whether a request adds
//! a state (RULES §6), which random requests at a reused nonce rarely are. And lowered
//! ceilings, so that requests come while the exposure is already above one.

use super::Rng;
use alloy_primitives::{Bytes, U256};
use bridle_model::Req;

const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
const INCREASE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];

/// `(selector, spender word, amount)` of an `approve` or `increaseAllowance` call.
fn approval(data: &[u8]) -> Option<([u8; 4], [u8; 32], U256)> {
    let sel: [u8; 4] = data.get(..4)?.try_into().ok()?;
    if data.len() != 68 || (sel != APPROVE && sel != INCREASE) {
        return None;
    }
    let spender: [u8; 32] = data[4..36].try_into().ok()?;
    Some((sel, spender, U256::from_be_slice(&data[36..68])))
}

fn call(sel: [u8; 4], spender: [u8; 32], amount: U256) -> Bytes {
    let mut d = sel.to_vec();
    d.extend_from_slice(&spender);
    d.extend_from_slice(&amount.to_be_bytes::<32>());
    d.into()
}

/// A request at the nonce of `signed` (a transaction or user operation signed before).
pub fn at_the_same_nonce(r: &mut Rng, signed: &Req) -> Option<Req> {
    match signed.clone() {
        Req::Tx {
            chain_id,
            nonce,
            to,
            value,
            data,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            access_list,
        } => {
            let tx = |to, value, data, gas_limit, max_fee_per_gas| Req::Tx {
                chain_id,
                nonce,
                to,
                value,
                data,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas: max_priority_fee_per_gas.min(max_fee_per_gas),
                access_list: access_list.clone(),
            };
            let found = approval(&data);
            Some(match (r.below(7), found) {
                (0, _) => tx(to, value, data, gas_limit, max_fee_per_gas + 1 + r.below(3) as u128),
                (1, Some((sel, sp, amount))) => {
                    let lower = amount * U256::from(r.below(100)) / U256::from(100u8);
                    tx(to, value, call(sel, sp, lower), gas_limit, max_fee_per_gas)
                }
                (2, Some((_, sp, _))) => tx(to, U256::ZERO, call(APPROVE, sp, U256::ZERO), gas_limit, max_fee_per_gas),
                (3, Some((sel, sp, amount))) if sel == INCREASE => {
                    let less = amount * U256::from(r.below(100)) / U256::from(100u8);
                    tx(to, U256::ZERO, call(APPROVE, sp, less), gas_limit, max_fee_per_gas)
                }
                (4, _) => tx(to, value, data, 30_000 + r.below(40_000), max_fee_per_gas),
                // An increase in place of an approval: more, from what was there before.
                (5, Some((sel, sp, amount))) if sel == APPROVE && r.chance(50) => {
                    let some = amount * U256::from(r.below(100)) / U256::from(100u8);
                    tx(to, U256::ZERO, call(INCREASE, sp, some), gas_limit, max_fee_per_gas)
                }
                // A plain transaction in its place: nothing called, nothing moved.
                _ => tx(to, U256::ZERO, Bytes::new(), gas_limit, max_fee_per_gas),
            })
        }
        Req::UserOp { max_fee_per_gas, .. } => {
            let mut op = signed.clone();
            if let Req::UserOp { max_fee_per_gas: fee, .. } = &mut op {
                *fee = max_fee_per_gas + 1;
            }
            Some(op)
        }
        _ => None,
    }
}

/// `text` with its `exposure_ceiling` lowered to a few dollars (`pct` times in 100), so that
/// the exposure is often above it.
pub fn lowered_ceiling(r: &mut Rng, text: String, pct: u64) -> String {
    let Some(start) = text.find("exposure_ceiling = \"") else { return text };
    if !r.chance(pct) {
        return text;
    }
    let from = start + "exposure_ceiling = \"".len();
    let Some(len) = text[from..].find(" USD\"") else { return text };
    format!("{}{}{}", &text[..from], 1 + r.below(40), &text[from + len..])
}
