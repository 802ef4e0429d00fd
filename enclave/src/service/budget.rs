//! The enclave's memory budget (review finding 7): what sessions hold (compiled policies,
//! counters, replay windows, registries, pending requests) is charged against a fixed
//! budget, and growth is refused — `rate_limited`, changing nothing — when it is spent. A
//! Nitro Enclave that runs out of memory loses every key; refusing one more session or
//! stamp does not.

use bridle_common::frame::DEFAULT_MAX_FRAME;
use bridle_common::machine::held_bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Room a call must find before it may grow the state: the most one call can add (a
/// session with the largest policy, or one request of the largest frame held pending:
/// `machine::held_bytes`; `--max-frame` is at most [`DEFAULT_MAX_FRAME`]).
pub const HEADROOM: usize = held_bytes(DEFAULT_MAX_FRAME) + (64 << 10);

/// Room an owner-signed sweep must find: the most one sweep can add to a session's
/// registry (every write it may hold, with the items that carry them) and its reply. Less
/// than [`HEADROOM`], so an owner's revocations still go through when the budget is spent
/// for signatures and creations (by sessions from keys anyone can make): the gap between
/// the two is theirs, and an unsigned sweep (anyone's) needs the whole of [`HEADROOM`]
/// like every other call that grows the state.
///
/// Anyone's own owner-signed sweeps can use this reserve up (any key can own a session); an
/// owner's sweep that finds it spent goes through on the revocations its session prepaid
/// when its approvals were signed (`Registry::prepaid`, `Machine::sweep_on_credit`).
pub const OWNER_SWEEP_ROOM: usize =
    bridle_common::allowance::MAX_WRITES * bridle_common::allowance::WRITE_BYTES + (64 << 10);

const _: () = assert!(OWNER_SWEEP_ROOM < HEADROOM);

/// Seconds between two passes that drop finished sessions because the budget is short,
/// outside a creation (a pass holds the session map's write lock).
pub const RECLAIM_EVERY: u64 = 10;

#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
    /// When the last pass for a short budget ran (enclave time), outside a creation.
    last_reclaim: AtomicU64,
    /// Whether a pass would find finished sessions the last one left.
    pub(super) passes: Passes,
}

/// What a stand-alone enclave knows of its last pass over the sessions for finished ones:
/// a pass holds the session map's write lock (every signature waits) and visits every
/// session, and while the budget is short every creation attempt — from any fresh key —
/// asked for one (found 2026-12-05 by a review). A session becomes finished (with nothing
/// outstanding) only as time passes or when a call's settlement leaves it so, which counts
/// once per session ([`Passes::changed`]); so a pass at the same second as the last, with
/// no session counted since, would find nothing new and is skipped. A session busy when a
/// pass looked is left for the next one that runs (if it is finished, its own call counted
/// it, or the next second's pass takes it). Not on a cluster node, whose replicas must make
/// the same passes (there every pass runs).
#[derive(Debug, Default)]
pub struct Passes {
    /// Sessions a call left finished with nothing outstanding.
    changes: AtomicU64,
    /// (enclave time, `changes`) when the last pass ran.
    last: Mutex<Option<(u64, u64)>>,
    /// Passes run (logged with each).
    runs: AtomicU64,
}

impl Passes {
    /// A call left a session finished with nothing outstanding.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions counted so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Whether a pass at `now` would find nothing the last one left.
    pub fn would_find_nothing(&self, now: u64) -> bool {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) == Some((now, self.changes()))
    }

    /// A pass ran at `now`; `changes` was read before it began.
    pub fn ran(&self, now: u64, changes: u64) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, changes));
    }

    /// Passes run so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { used: AtomicUsize::new(0), limit, last_reclaim: AtomicU64::new(0), passes: Passes::default() }
    }

    /// Whether a pass dropping finished sessions may run at `now`: at most one every
    /// [`RECLAIM_EVERY`] seconds (claimed by the caller that gets `true`).
    pub fn reclaim_due(&self, now: u64) -> bool {
        let last = self.last_reclaim.load(Ordering::Relaxed);
        now >= last.saturating_add(RECLAIM_EVERY)
            && self.last_reclaim.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `headroom` more bytes fit.
    pub fn has_room(&self, headroom: usize) -> bool {
        self.used().saturating_add(headroom) <= self.limit
    }

    /// Move a holder's charge from `old` to `new` bytes.
    pub fn recharge(&self, old: usize, new: usize) {
        if new >= old {
            self.used.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.used.fetch_sub((old - new).min(self.used()), Ordering::Relaxed);
        }
    }
}
