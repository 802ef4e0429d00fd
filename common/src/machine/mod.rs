//! One session's state machine: the whole per-session decision core, pure.
//!
//! Everything a decision depends on and changes lives here — the session's monotonic time
//! (RULES.md §1), the stamp replay window, the policy and its counters (ledger, rate-limit
//! history, allowance registry), pending approvals, escalation, the trip-wire, revocation —
//! and every call returns one typed [`Outcome`] with the audit records it produced. No I/O,
//! no clock of its own, no randomness: the enclave passes in the clock reading (taken under
//! the session's lock) and a [`Signer`] for the session key, and keeps only I/O, locking and
//! the key. `bridle policy simulate`, the tests and the reference-model comparison drive the
//! very same code.

mod owner;
pub mod replay;
mod sign;
pub mod snapshot;
mod status;
mod sweep;
mod sweep_account;
mod sweep_cancel;

use crate::audit::Record;
use crate::error::{Denial, ErrorCode};
use crate::policy::{CompiledPolicy, Counters};
use crate::protocol::{SessionState, SignPayload, Signed};
use alloy_primitives::{Address, Signature, B256};
use replay::ReplayCache;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

pub use status::STATUS_PAYLOAD_BYTES;
pub use sweep::{check_fees as sweep_fees_ok, check_terms as sweep_terms_ok, MAX_SWEEP_CHAINS, SWEEP_MAX_GAS};

/// Most requests one session may have waiting for (or holding) the owner's approval.
pub const MAX_PENDING: usize = 16;

/// The session key, as the machine sees it: something that signs digests.
pub trait Signer {
    fn sign(&self, digest: &B256) -> Result<Signature, String>;
}

/// What does not change over a session's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    /// The session key's address (`$account`).
    pub address: Address,
    pub owner: Address,
    pub agent: Address,
    pub created_at: u64,
    /// Where periods are counted from: `max(created_at, valid_after)`.
    pub anchor: u64,
}

/// A request held for the owner's approval (R-POL-10). Only the payload is kept: its
/// prepared form (for typed data a parse several times the text's size) is made again
/// when the owner approves it.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Exactly what was asked: the owner is shown it and approves its digest.
    pub payload: SignPayload,
    pub created_at: u64,
    /// Waiting: the owner's approval must come before this. Signed: the agent may collect
    /// the signature until this.
    pub expires_at: u64,
    /// Which threshold it crossed (the escalation's rule and reason).
    pub rule: String,
    pub reason: String,
    /// Set once the owner approved and the enclave signed (and charged).
    pub signed: Option<Signed>,
    /// Set (to the session time) once the owner denied it: until `expires_at` asking again
    /// is refused `denied_by_owner` instead of being held anew (RULES §8).
    pub denied_at: Option<u64>,
    /// The payload's CBOR size ([`crate::frame::cbor_len`]), measured once when held: what
    /// a status showing it carries, and what its memory is charged from ([`held_bytes`]).
    pub cbor: usize,
}

/// The result of one call on a session: its reply (or refusal), the audit records it
/// produced (at `time`), and whether the key must now be destroyed.
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: Result<T, Denial>,
    /// The session time of the decision.
    pub time: u64,
    /// Audit records, in order (R-AUD-1).
    pub records: Vec<Record>,
    /// The request was the agent's own fresh request (stamp verified, nonce new): from there
    /// on every outcome is a decision (logged in full); before, a bounded refusal.
    pub fresh: bool,
}

impl<T> Outcome<T> {
    fn new(time: u64) -> Outcome<T> {
        Outcome { result: Err(Denial::new(ErrorCode::Internal, "no decision")), time, records: vec![], fresh: false }
    }
    fn done(mut self, r: Result<T, Denial>) -> Outcome<T> {
        self.result = r;
        self
    }
}

/// A session's state machine. See the module docs.
#[derive(Debug)]
pub struct Machine {
    pub facts: Facts,
    /// The session time of the latest decision (RULES.md §1).
    time: u64,
    policy: Arc<CompiledPolicy>,
    counters: Counters,
    replay: ReplayCache,
    revoked: bool,
    /// The key is gone (revoked with nothing left to revoke on chain).
    key_destroyed: bool,
    /// Why the session is suspended (the trip-wire, R-APP-7); lifted only by the owner.
    suspended: Option<String>,
    /// The session time it was suspended at: an owner's update signed before it (its nonce,
    /// the time in milliseconds, below the next second) cannot lift it (a review of
    /// 2026-12-06: a host that withheld an update delivered it after a trip-wire fired).
    suspended_at: Option<u64>,
    /// Session times of recent policy denials, for the trip-wire.
    denials: VecDeque<u64>,
    pending: BTreeMap<B256, Box<Pending>>,
}

impl Machine {
    /// A new session for `owner` and `agent` whose key has address `address`, created at
    /// `now` under `policy` (already compiled and checked), with a stamp window of
    /// `stamp_window` seconds and room for `replay_capacity` live stamp nonces.
    pub fn new(
        address: Address,
        owner: Address,
        agent: Address,
        policy: CompiledPolicy,
        now: u64,
        stamp_window: u64,
        replay_capacity: usize,
    ) -> Machine {
        let anchor = policy.doc.valid_after.unwrap_or(now).max(now);
        Machine {
            facts: Facts { address, owner, agent, created_at: now, anchor },
            time: now,
            policy: Arc::new(policy),
            counters: Counters::new(),
            replay: ReplayCache::new(stamp_window, replay_capacity),
            revoked: false,
            key_destroyed: false,
            suspended: None,
            suspended_at: None,
            denials: VecDeque::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Advance the session time to the clock reading (never back) and return it.
    fn tick(&mut self, clock: u64) -> u64 {
        self.time = self.time.max(clock);
        self.time
    }

    /// The session time of the latest decision.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// What this session may have outstanding at worst, per chain and token, at its latest
    /// session time (published to the enclave's book: RULES.md §6a).
    pub fn holdings(&self) -> crate::allowance::aggregate::Holdings {
        crate::allowance::aggregate::holdings_now(&self.counters.allowances, self.time)
    }

    /// What the session may have outstanding at `clock` (its own time if later): what
    /// [`Machine::holdings`] would be once the session's time reaches `clock`, without a
    /// call to move it there (approvals lapse by time alone).
    pub fn holdings_at(&self, clock: u64) -> crate::allowance::aggregate::Holdings {
        crate::allowance::aggregate::holdings_now(&self.counters.allowances, self.time_at(clock))
    }

    /// The policy to publish as declaring aggregate ceilings: the session's, unless revoked.
    pub fn declares(&self) -> Option<Arc<CompiledPolicy>> {
        let d = &self.policy.doc;
        (!self.revoked && (d.owner_exposure_ceiling.is_some() || d.agent_exposure_ceiling.is_some()))
            .then(|| self.policy.clone())
    }

    /// The session time a decision at `clock` would have (without advancing it).
    pub fn time_at(&self, clock: u64) -> u64 {
        self.time.max(clock)
    }

    pub fn policy(&self) -> &Arc<CompiledPolicy> {
        &self.policy
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn pending(&self) -> &BTreeMap<B256, Box<Pending>> {
        &self.pending
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Whether the session key must be destroyed now.
    pub fn key_destroyed(&self) -> bool {
        self.key_destroyed
    }

    pub fn suspended(&self) -> Option<&str> {
        self.suspended.as_deref()
    }

    /// The session time the session was suspended at, if it is.
    pub fn suspended_at(&self) -> Option<u64> {
        self.suspended.as_ref().map(|_| self.suspended_at.unwrap_or(self.facts.created_at))
    }

    /// The session time request `digest` was held at, if it is held.
    pub fn held_at(&self, digest: &B256) -> Option<u64> {
        self.pending.get(digest).map(|p| p.created_at)
    }

    /// Suspend the session because a decision on it was interrupted (fail closed): only the
    /// owner lifts it, like a trip-wire suspension.
    pub fn fail_closed(&mut self, why: &str) {
        // Denials stay (a fail-closed session must not forget what the owner refused), and so
        // do approved requests the enclave signed and charged (still the agent's to collect).
        self.pending.retain(|_, p| p.denied_at.is_some() || p.signed.is_some());
        self.suspended = Some(why.to_string());
        self.suspended_at = Some(self.time);
    }

    /// The state at session time `t`.
    pub fn state(&self, t: u64) -> SessionState {
        let doc = &self.policy.doc;
        if self.revoked {
            SessionState::Revoked
        } else if self.suspended.is_some() {
            SessionState::Suspended
        } else if doc.valid_after.is_some_and(|a| t < a) {
            SessionState::NotYetValid
        } else if t >= doc.valid_until.unwrap_or(0) {
            SessionState::Expired
        } else {
            SessionState::Active
        }
    }

    /// Whether the session is over for good at `clock` and holds nothing that still needs
    /// its key: revoked with the key destroyed, or expired with nothing left to revoke.
    pub fn finished(&self, clock: u64) -> bool {
        let t = self.time_at(clock);
        match self.state(t) {
            // Its key kept while an approval may be outstanding, until none may be (lapsed).
            SessionState::Revoked => self.key_destroyed || !self.may_hold(t),
            SessionState::Expired => !self.has_sweepable(t),
            _ => false,
        }
    }

    /// Approximate heap bytes this session holds beyond its compiled policy (for the
    /// enclave's memory budget).
    pub fn footprint(&self) -> usize {
        let pending: usize = self.pending.values().map(|p| held_bytes(p.cbor)).sum();
        std::mem::size_of::<Machine>()
            + self.counters.footprint()
            + self.replay.footprint()
            + 2 * self.denials.len() * 8
            + pending
    }
}

/// What a held request takes in memory, from its payload's CBOR size `cbor` (every part
/// of a payload counts — calldata, access list, init code — since CBOR carries them all):
/// the payload, at most twice its CBOR in memory (a byte string sent as an array of
/// integers decodes into a buffer grown by doubling, and a list decoded without a size
/// hint may hold twice its entries' room; an access-list entry takes 48 bytes and a key 32
/// against CBOR's 44 and 33); once approved, its signed transaction, no larger than the
/// payload's CBOR; the boxed record and its share of the map's node.
pub const fn held_bytes(cbor: usize) -> usize {
    cbor.saturating_mul(3).saturating_add(std::mem::size_of::<Pending>()).saturating_add(1024)
}

#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod tests;
