//! What one transaction of a sweep does to a key: revoke it (`approve(spender, 0)`, or
//! Permit2's `approve(token, spender, 0, 0)`), or first cancel the Permit2 allowance
//! permits the session signed for it (`invalidateNonces(token, spender, n)`, RULES.md §6).
//!
//! A Permit2 permit floats: whoever holds it may submit it after the revocation, so the
//! revocation settles the key only where the permit's deadline is known to have passed (on
//! the slotted chains). Cancelling its nonce first, in a transaction mined before the
//! revocation, leaves no history where the permit follows — on every chain, before its
//! deadline too.

use crate::allowance::{cancel_call, revocation_call, AllowanceKind, Grant, GrantOp, Key, Registry, Via};
use alloy_primitives::{Address, Bytes, U256};

/// One transaction of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `invalidateNonces(token, spender, n)`: Permit2 permits of the key below `n` can no
    /// longer be used once it is mined.
    Cancel(u64),
    /// The revocation.
    Revoke,
}

impl Act {
    /// The call, to whom.
    pub fn call(self, k: &Key) -> Option<(Address, Bytes)> {
        match self {
            Act::Cancel(n) => cancel_call(k, n),
            Act::Revoke => revocation_call(k),
        }
    }

    /// What the registry records of it.
    pub fn grant(self, k: &Key) -> Grant {
        let op = match self {
            Act::Cancel(n) => GrantOp::Invalidate(n),
            Act::Revoke => GrantOp::Set(U256::ZERO),
        };
        Grant { key: *k, op, end: None, token_index: None, via: Via("sweep"), nonce: None }
    }

    /// Whether every transaction the session signed at `nonce` is a sweep doing the same to
    /// `k` (re-signing it there is a fee bump).
    pub fn only_at(self, reg: &Registry, chain_id: u64, nonce: u64, k: &Key) -> bool {
        match self {
            Act::Cancel(_) => reg.only_cancels_at(chain_id, nonce, k),
            Act::Revoke => reg.only_revokes_at(chain_id, nonce, k),
        }
    }

    /// The nonce an invalidation names, for the reply.
    pub fn invalidates(self) -> Option<u64> {
        match self {
            Act::Cancel(n) => Some(n),
            Act::Revoke => None,
        }
    }
}

/// The cancellation a sweep signs before revoking `k` (held by the session's own address):
/// when it is a Permit2 entry the session signed allowance permits for, `invalidateNonces`
/// one past the highest nonce Permit2 may hold for it ([`Registry::permit2_nonce_bound`]),
/// so it cannot revert for a nonce that does not grow — and never past
/// [`crate::allowance::MAX_INVALIDATION`], so it cannot revert for one that grows too far.
pub fn cancellation(reg: &Registry, k: &Key) -> Option<Act> {
    if !matches!(k.kind, AllowanceKind::Permit2 { .. }) || !reg.has_cancellable_permits(k) {
        return None;
    }
    let n = reg.permit2_nonce_bound(k).checked_add(1)?;
    (n <= crate::allowance::MAX_INVALIDATION).then_some(Act::Cancel(n))
}

/// The fee bump of `k`'s cancellation at `nonce`: an `n` no lower than any signed there
/// (the position's alternatives cancel below the least of theirs, so a lower one would
/// bring back permits that requests signed since rely on being cancelled), and above what
/// Permit2 may hold now when that fits — re-signed even when the permits were forgotten
/// since, so a cancellation nobody mined never blocks the nonces above it.
pub fn bump(reg: &Registry, k: &Key, chain_id: u64, nonce: u64) -> Act {
    let signed = reg.cancelled_below_at(chain_id, nonce, k);
    let fresh = reg.permit2_nonce_bound(k).saturating_add(1);
    Act::Cancel(if fresh <= crate::allowance::MAX_INVALIDATION { fresh.max(signed) } else { signed })
}

/// Every transaction a fresh sweep of `k` signs, in nonce order.
pub fn acts(reg: &Registry, k: &Key) -> Vec<Act> {
    cancellation(reg, k).into_iter().chain([Act::Revoke]).collect()
}
