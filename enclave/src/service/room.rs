//! Room in the enclave: the session count and the memory budget. Finished sessions make
//! room when either is short; a call that would grow the state past the budget is refused.

use super::budget::HEADROOM;
use super::{policy_bytes, Enclave};
use crate::session::Session;
use alloy_primitives::Address;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::policy::CompiledPolicy;
use std::collections::HashMap;
use std::sync::Arc;

impl Enclave {
    pub(super) fn budget_for(&self, policy: &CompiledPolicy) -> Result<(), Denial> {
        if !self.budget.has_room(policy_bytes(policy.canonical_len).saturating_add(HEADROOM)) {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                "enclave.memory_budget",
                format!(
                    "the enclave's memory budget ({} MiB) is spent: no new session or larger policy until sessions end",
                    self.budget.limit() >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Keep the session count under `max_sessions` and find `need` bytes in the memory
    /// budget: when full, or short, drop finished sessions not busy at that moment; if still
    /// full, refuse (a budget still short is refused by the caller's check). Dropped
    /// sessions answer `unknown_session`; their history stays in the audit log and in the
    /// host's store. The budget counts too: it fills long before `max_sessions` on most
    /// enclaves, and finished sessions were dropped only at the count, so a budget once
    /// spent stayed spent — every creation and signature refused until a restart (found
    /// 2026-12-05 by a review). Decided by the entry's clock and the replicated state alone,
    /// so every replica drops the same sessions.
    pub(super) fn make_room(&self, now: u64, need: usize) -> Result<(), Denial> {
        let mut map = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < self.config.max_sessions && self.budget.has_room(need) {
            return Ok(());
        }
        self.drop_finished(&mut map, now);
        if map.len() >= self.config.max_sessions {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                "enclave.max_sessions",
                format!("the enclave holds {} live sessions, its limit; revoke finished ones", map.len()),
            ));
        }
        Ok(())
    }

    /// When the memory budget lacks `need` outside a creation (a signature, a sweep), drop
    /// finished sessions, at most once every [`super::budget::RECLAIM_EVERY`] seconds. Only
    /// on a stand-alone enclave: when that pass runs depends on this node's own calls, and
    /// replicas must drop the same sessions (there, each creation makes room as above).
    pub(super) fn reclaim(&self, now: u64, need: usize) {
        if self.budget.has_room(need) || crate::apply::current().is_some() || !self.budget.reclaim_due(now) {
            return;
        }
        let mut map = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        self.drop_finished(&mut map, now);
    }

    /// Room for one call that may grow the state (a signature, a sweep): `need` bytes in
    /// the budget ([`HEADROOM`], or [`OWNER_SWEEP_ROOM`] for an owner's sweep), after
    /// dropping finished sessions if it is short (see [`Enclave::reclaim`]); otherwise
    /// `rate_limited` (`enclave.memory_budget`), saying it signs `what`.
    pub(super) fn room_to_grow(&self, need: usize, what: &str) -> Result<(), Denial> {
        // The signing path's usual case: one atomic load, no clock read.
        if self.budget.has_room(need) {
            return Ok(());
        }
        self.reclaim(self.clock.now(), need);
        if self.budget.has_room(need) {
            return Ok(());
        }
        Err(Denial::rule(
            ErrorCode::RateLimited,
            "enclave.memory_budget",
            format!("the enclave's memory budget is spent: it signs {what} until sessions end"),
        ))
    }

    /// Drop the finished sessions not busy at this moment, refunding their charges — unless,
    /// on a stand-alone enclave, the last pass ran at this second and no call that may
    /// finish a session completed since (see [`super::budget::Passes`]).
    fn drop_finished(&self, map: &mut HashMap<Address, Arc<Session>>, now: u64) {
        let replicated = crate::apply::current().is_some();
        let passes = &self.budget.passes;
        if !replicated && passes.would_find_nothing(now) {
            return;
        }
        let changes = passes.changes();
        let before = map.len();
        // A session busy with a decision is kept (it was in use a moment ago): waiting for it
        // here would stall every caller behind the map's write lock (found 2026-12-03 by a
        // review). The next creation at the limit looks again. Not on a cluster node applying
        // a log entry: every replica must drop the same sessions, whatever reads hold their
        // locks at that moment (a review of that fix), so there it waits as before.
        map.retain(|_, s| {
            let mut inner = match s.try_lock() {
                Some(inner) => inner,
                None if replicated => s.lock(),
                // A busy session that a call leaves finished is counted by that call's
                // settlement (`Passes::changed`), so the next pass looks again.
                None => return true,
            };
            // Never a session that may still have approvals outstanding (a smart account's,
            // a swept one not yet mined): its holdings count in the exposure book (review,
            // issue 14).
            // Holdings at `now` (the entry's clock on a cluster node): approvals that lapsed
            // by time alone count as gone, as the session's next call would find them.
            let finished = inner.machine.finished(now) && inner.machine.holdings_at(now).is_empty();
            if finished {
                self.budget.recharge(inner.charged, 0);
                // A request still holding it decides nothing and settles nothing.
                inner.dropped = true;
                self.unpublish(&s.address);
            }
            !finished
        });
        if !replicated {
            passes.ran(now, changes);
        }
        tracing::info!(
            dropped = before - map.len(),
            held = map.len(),
            passes = passes.runs(),
            "finished sessions dropped"
        );
    }
}
