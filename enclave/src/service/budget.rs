//! The enclave's memory budget (review finding 7): what sessions hold (compiled policies,
//! counters, replay windows, registries, pending requests) is charged against a fixed
//! budget, and growth is refused — `rate_limited`, changing nothing — when it is spent. A
//! Nitro Enclave that runs out of memory loses every key; refusing one more session or
//! stamp does not.

use bridle_common::frame::DEFAULT_MAX_FRAME;
use bridle_common::machine::held_bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
pub const OWNER_SWEEP_ROOM: usize = bridle_common::allowance::MAX_WRITES
    * (2 * std::mem::size_of::<bridle_common::allowance::Item>()
        + std::mem::size_of::<bridle_common::allowance::Grant>())
    + (64 << 10);

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
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget { used: AtomicUsize::new(0), limit, last_reclaim: AtomicU64::new(0) }
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
