//! A session: a key generated in the enclave, the owner's policy, and its counters.

use crate::keys::Key;
use crate::replay::ReplayCache;
use alloy_primitives::{Address, B256};
use bridle_common::policy::{CompiledPolicy, Counters};
use bridle_common::protocol::SessionState;
use bridle_common::stamp::StampKey;
use std::sync::{Arc, Mutex, MutexGuard};

/// Immutable facts about a session plus its mutable state behind one lock. Everything
/// the signing path checks and charges is inside that lock, so check-and-charge is one
/// step per session (R-POL-11).
pub struct Session {
    pub address: Address,
    pub owner: Address,
    pub agent: Address,
    pub stamp_key: StampKey,
    pub created_at: u64,
    /// Where periods are counted from.
    pub anchor: u64,
    inner: Mutex<SessionInner>,
}

pub struct SessionInner {
    /// `None` once revoked: the key is dropped (and zeroized) at revocation.
    pub key: Option<Key>,
    pub policy: Arc<CompiledPolicy>,
    pub counters: Counters,
    pub replay: ReplayCache,
    pub revoked: bool,
    pub suspended: Option<String>,
}

impl Session {
    pub fn new(
        key: Key,
        owner: Address,
        agent: Address,
        stamp_key: StampKey,
        policy: CompiledPolicy,
        now: u64,
        replay: ReplayCache,
    ) -> Session {
        let anchor = policy.doc.valid_after.unwrap_or(now).max(now);
        let counters = Counters::new(&policy);
        Session {
            address: key.address(),
            owner,
            agent,
            stamp_key,
            created_at: now,
            anchor,
            inner: Mutex::new(SessionInner {
                key: Some(key),
                policy: Arc::new(policy),
                counters,
                replay,
                revoked: false,
                suspended: None,
            }),
        }
    }

    /// Lock the session's state. A poisoned lock (a panic while held, which no input
    /// should cause) still yields the state: every mutation under it is a single step.
    pub fn lock(&self) -> MutexGuard<'_, SessionInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn policy_hash(&self) -> B256 {
        self.lock().policy.hash
    }
}

impl SessionInner {
    pub fn state(&self, now: u64) -> SessionState {
        if self.revoked {
            SessionState::Revoked
        } else if self.suspended.is_some() {
            SessionState::Suspended
        } else if self.policy.doc.valid_after.is_some_and(|a| now < a) {
            SessionState::NotYetValid
        } else if now >= self.policy.doc.valid_until.unwrap_or(0) {
            SessionState::Expired
        } else {
            SessionState::Active
        }
    }

    /// Revoke: drop the key (zeroized by k256 on drop).
    pub fn revoke(&mut self) {
        self.revoked = true;
        self.key = None;
    }
}
