//! A session: a key generated in the enclave, the owner's policy, and its counters.

use crate::keys::Key;
use crate::replay::ReplayCache;
use alloy_primitives::{Address, B256};
use bridle_common::payload::Prepared;
use bridle_common::policy::{CompiledPolicy, Counters};
use bridle_common::protocol::{SessionState, Signed};
use bridle_common::stamp::StampKey;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most requests one session may have waiting for (or holding) the owner's approval.
pub const MAX_PENDING: usize = 16;

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

/// A request held for the owner's approval (R-POL-10).
pub struct Pending {
    /// Exactly what will be signed: the owner approves its digest.
    pub prepared: Prepared,
    pub created_at: u64,
    /// Waiting: the owner's approval must come before this. Signed: the agent may collect
    /// the signature until this.
    pub expires_at: u64,
    /// Which threshold it crossed (the escalation denial's rule and reason).
    pub rule: String,
    pub reason: String,
    /// Set once the owner approved and the enclave signed (and charged).
    pub signed: Option<Signed>,
}

pub struct SessionInner {
    /// `None` once revoked — or, when the session still has outstanding approvals at
    /// revocation, once the owner's sweep has signed their revocations (R-APP-6). Until
    /// then a revoked session's key can sign nothing but `approve(spender, 0)`.
    pub key: Option<Key>,
    pub policy: Arc<CompiledPolicy>,
    pub counters: Counters,
    pub replay: ReplayCache,
    pub revoked: bool,
    /// Why the session is suspended (the trip-wire, R-APP-7); lifted only by the owner
    /// (a signed policy update) or ended by revocation.
    pub suspended: Option<String>,
    /// Times of recent policy denials, for the trip-wire.
    pub denials: VecDeque<u64>,
    /// Requests held for the owner's approval, by digest.
    pub pending: HashMap<B256, Pending>,
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
                denials: VecDeque::new(),
                pending: HashMap::new(),
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

    /// Whether approvals granted from `holder` (the session's address) are outstanding:
    /// their revocations still have to be signed with this session's key.
    pub fn has_sweepable(&self, holder: Address, now: u64) -> bool {
        self.counters.allowances.outstanding(now).any(|e| e.holder == holder && e.kind.sweepable())
    }

    /// Revoke: no request is signed any more and pending ones are dropped. The key is
    /// dropped (zeroized by k256 on drop) at once unless approvals granted from `holder`
    /// are outstanding: then it is kept, able to sign only their revocations (the sweep,
    /// R-APP-6), until the owner's sweep has signed them.
    pub fn revoke(&mut self, holder: Address, now: u64) {
        self.revoked = true;
        self.pending.clear();
        if !self.has_sweepable(holder, now) {
            self.key = None;
        }
    }

    /// Drop expired pending requests.
    pub fn prune_pending(&mut self, now: u64) {
        self.pending.retain(|_, p| now < p.expires_at);
    }
}
