//! The owner's view of a registry: each key at its worst case now, and whether a signed
//! revocation settles it.

use super::registry::{Item, Key, Place, Registry};
use super::worst::{worst, Request};
use super::{Allowance, AllowanceState, GrantOp};
use alloy_primitives::U256;

/// Whether `item` sets `key` to 0 as its last write to it.
fn zeroes(item: &Item, key: &Key) -> bool {
    matches!(item.grants.iter().rev().find(|g| g.key == *key), Some(g) if g.op == GrantOp::Set(U256::ZERO))
}

/// Whether nothing else can take `item`'s place: every item signed at its position zeroes
/// `key` and cannot revert, and no write-less transaction was signed there (review of
/// 2026-12-01: an `approve(s, 50)` and an `approve(s, 0)` at one nonce, or an owner's sweep
/// at a nonce the agent already used — the host mines the other one).
///
/// A user operation is never alone: the registry does not remember user operations that
/// write no approval, so one may have been signed at the same account nonce, and an
/// operation that reverts uses its nonce too. A transaction above a nonce the session never
/// signed at is not either: it is mined only if that nonce is filled first
/// ([`Registry::signed_below`]).
fn alone(reg: &Registry, item: &Item, key: &Key) -> bool {
    match item.place {
        Place::Floating { .. } => true,
        Place::Account { .. } => false,
        Place::Own { chain_id, nonce } => {
            !reg.own_positions(chain_id).is_some_and(|p| p.contains(nonce))
                && reg.items().iter().filter(|j| j.place == item.place).all(|j| zeroes(j, key) && !j.may_revert)
                && reg.signed_below(chain_id, nonce)
        }
    }
}

/// The latest item that leaves `key` at 0 in every history that includes it, from that
/// item on, and that nothing else can take the place of: once it is mined, the key is 0 for
/// good. (A revoked session's key is not destroyed on the strength of it: whoever holds
/// the item may keep it to itself — `Machine::may_hold`.)
pub fn settled_by<'a>(reg: &'a Registry, key: &Key, now: u64) -> Option<&'a Item> {
    reg.items().iter().rev().filter(|i| zeroes(i, key) && alone(reg, i, key)).find(|i| {
        worst(reg, key, now, Some(Request { place: i.place, grants: &i.grants, may_revert: i.may_revert })).is_zero()
    })
}

/// Every key, as the owner sees it at `now`.
pub fn view(reg: &Registry, now: u64) -> Vec<Allowance> {
    reg.keys()
        .map(|(k, m)| {
            let amount = worst(reg, k, now, None);
            let settled = if amount.is_zero() { None } else { settled_by(reg, k, now) };
            // The last write of an amount (a cancellation of permits changes none).
            let last = reg
                .items()
                .iter()
                .rev()
                .flat_map(|i| i.grants.iter().rev())
                .find(|g| g.key == *k && g.op.amount().is_some());
            let state = match settled {
                _ if amount.is_zero() => AllowanceState::Revoked,
                Some(i) if i.sweep => AllowanceState::Swept,
                Some(_) => AllowanceState::Revoked,
                None if now >= m.expires_at => AllowanceState::Expired,
                None => AllowanceState::Active,
            };
            Allowance {
                chain_id: k.chain_id,
                token: k.token,
                spender: k.spender,
                holder: k.holder,
                kind: k.kind,
                symbol: m.symbol.clone(),
                decimals: m.decimals,
                amount,
                granted_at: m.granted_at,
                expires_at: m.expires_at,
                onchain_until: last.and_then(|g| g.end),
                state,
                via: m.via.to_string(),
                updated_at: m.updated_at,
                settled_at_nonce: settled.and_then(|i| match i.place {
                    super::Place::Own { nonce, .. } => Some(nonce),
                    _ => None,
                }),
                swept_at_nonce: reg.swept_at(k),
                cancelled_at_nonce: reg.cancelled_at(k),
            }
        })
        .collect()
}
