//! What the sweeper does for one session on one chain once nothing of its own is in flight
//! there (pure: the enclave's view of the session's approvals and the node's nonces in, a
//! step out), and when a lane may be left alone until the enclave's view changes.

use alloy_primitives::Address;
use bridle_common::allowance::{Allowance, AllowanceKind, AllowanceState};
use bridle_common::protocol::SessionStatus;
use std::time::{Duration, Instant};

/// The next step on one lane (session, chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due and every signed sweep's nonce is used on chain.
    Nothing,
    /// A sweep the enclave signed at this nonce is not mined, and this host has nothing in
    /// flight there: it was never broadcast (asked for by someone else — the owner's own
    /// signed sweep too —, or by this host before a restart). Ask the enclave to re-sign it there — it
    /// re-signs a sweep's own nonce without the owner — and broadcast it.
    Resign(u64),
    /// A sweep the enclave signed at this nonce is not mined, and the node's pool holds a
    /// transaction there (broadcast by another host, or by this one before a restart):
    /// follow it as in flight (at no known fee) rather than re-sign at once — re-signed at
    /// the node's fees it may be underpriced against it, and each bump from there is
    /// charged to the gas budget and spends a re-sign (found 2026-12-05 by a review). Not
    /// mined within `sweep_bump_after`, it is re-signed at the node's fees and bumped from
    /// there (its own fees are not known: a few bumps may be refused as underpriced).
    InPool(u64),
    /// Approvals are due and no signed sweep is waiting: a new sweep at this nonce, the
    /// larger of the node's pending nonce and the enclave's next one (below that, the nonces
    /// hold transactions the agent signed, which an unauthenticated sweep never replaces).
    Sweep(u64),
}

/// The session's own approvals on `chain` a transaction from the session key can revoke.
pub fn own_keys(st: &SessionStatus, chain: u64) -> impl Iterator<Item = &Allowance> {
    st.allowances.iter().filter(move |a| a.chain_id == chain && a.holder == st.session && a.kind.sweepable())
}

/// Whether `a` is due for a sweep: past its lifetime, or outstanding in a session that is
/// over (revoked, suspended, expired).
pub fn due(a: &Allowance, ended: bool) -> bool {
    a.state == AllowanceState::Expired || (ended && a.state == AllowanceState::Active)
}

/// The chains of `st` where the sweeper has anything to look at: an approval due, or one a
/// signed sweep revokes (whose sweep may not be mined).
pub fn chains(st: &SessionStatus) -> Vec<u64> {
    let ended = st.state != bridle_common::protocol::SessionState::Active;
    let mut out: Vec<u64> = st
        .allowances
        .iter()
        .filter(|a| a.holder == st.session && a.kind.sweepable())
        .filter(|a| due(a, ended) || (a.state == AllowanceState::Swept && a.swept_at_nonce.is_some()))
        .map(|a| a.chain_id)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The enclave's next nonce for the session on `chain` (0 when it signed nothing there).
pub fn next_nonce(st: &SessionStatus, chain: u64) -> u64 {
    st.next_nonces.iter().find(|c| c.chain_id == chain).map_or(0, |c| c.nonce)
}

/// The step for a lane with nothing of this host's in flight: `mined` and `pending` are the
/// node's nonces for the session (`latest`, `pending`).
pub fn step(st: &SessionStatus, chain: u64, mined: u64, pending: u64) -> Step {
    let ended = st.state != bridle_common::protocol::SessionState::Active;
    // A Permit2 entry's sweep cancels its permits at one nonce and revokes it at the next:
    // both are followed, the cancellation first.
    let unmined = own_keys(st, chain)
        .filter(|a| due(a, ended) || a.state == AllowanceState::Swept)
        .flat_map(|a| [a.cancelled_at_nonce, a.swept_at_nonce])
        .flatten()
        .filter(|&n| n >= mined)
        .min();
    if let Some(n) = unmined {
        return if pending > n { Step::InPool(n) } else { Step::Resign(n) };
    }
    if own_keys(st, chain).any(|a| due(a, ended)) {
        return Step::Sweep(pending.max(next_nonce(st, chain)));
    }
    Step::Nothing
}

/// What the enclave's view of a lane was when the sweeper last found nothing to do there:
/// whether the session is over, its policy, the enclave's next nonce, and every own key's
/// kind, state, sweep nonces, last write and expiry. While it stays the same, the keys
/// the enclave would sweep and the nonces it would use do not change (the chain's nonce
/// only grows, and a sweep's nonce once used stays used), so the lane is not asked again —
/// neither the node nor the enclave — until `until`. What it does not capture (room left
/// in the registry, the gas budget's period) is covered by that re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    ended: bool,
    policy: alloy_primitives::B256,
    next: u64,
    keys: Vec<KeyPrint>,
}

/// One key in a [`Fingerprint`]: token, spender, kind, state, swept and settled nonces, last
/// write, expiry.
type KeyPrint = (Address, Address, AllowanceKind, AllowanceState, Option<u64>, Option<u64>, u64, u64);

impl Fingerprint {
    pub fn of(st: &SessionStatus, chain: u64) -> Fingerprint {
        let ended = st.state != bridle_common::protocol::SessionState::Active;
        let mut keys: Vec<_> = own_keys(st, chain)
            .map(|a| {
                (a.token, a.spender, a.kind, a.state, a.swept_at_nonce, a.settled_at_nonce, a.updated_at, a.expires_at)
            })
            .collect();
        keys.sort_unstable_by_key(|k| (k.0, k.1, k.2, k.6));
        Fingerprint { ended, policy: st.policy_hash, next: next_nonce(st, chain), keys }
    }
}

/// A lane left alone: its fingerprint, until when, and whether approvals there stay
/// outstanding with nothing more the enclave signs without the owner (the
/// `bridle_sweep_left_to_owner` gauge).
#[derive(Debug, Clone)]
pub struct Idle {
    pub fingerprint: Fingerprint,
    pub until: Instant,
    pub left_to_owner: bool,
    /// Left alone until `until` even if the enclave's view changes: after a reply that
    /// failed its checks (asked again, the enclave would sign again what nobody sends).
    pub firm: bool,
}

/// How long a lane where the enclave signed nothing is left alone at most (a re-check).
pub const IDLE_RECHECK: Duration = Duration::from_secs(600);
/// How long a lane whose sweep the enclave refused is left alone (its gas budget may free
/// up with the next period; a refusal every round would only fill the logs).
pub const REFUSED_RECHECK: Duration = Duration::from_secs(60);

#[cfg(test)]
#[path = "lane_tests.rs"]
pub(super) mod tests;
