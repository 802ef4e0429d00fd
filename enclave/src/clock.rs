//! The enclave's clock. Production reads the system clock; development may add an offset
//! read from a file, so end-to-end tests can move time (never available outside `--dev`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> u64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// System time plus a signed offset (seconds) read from a file on each call; a missing or
/// unreadable file means no offset.
pub struct OffsetFileClock(pub PathBuf);

impl Clock for OffsetFileClock {
    fn now(&self) -> u64 {
        let base = SystemClock.now();
        let off: i64 = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        base.saturating_add_signed(off)
    }
}

/// A fixed clock for tests and benches.
pub struct FixedClock(pub std::sync::atomic::AtomicU64);

impl FixedClock {
    pub fn new(t: u64) -> FixedClock {
        FixedClock(std::sync::atomic::AtomicU64::new(t))
    }
    pub fn set(&self, t: u64) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A cluster node's clock: within the application of a log entry, the entry's time (see
/// [`crate::apply`]); otherwise this machine's clock, never below the latest entry applied
/// (so a leader whose clock is behind its predecessor's never proposes an earlier time).
pub struct ReplicaClock {
    inner: Box<dyn Clock>,
    applied: std::sync::atomic::AtomicU64,
}

impl ReplicaClock {
    pub fn new(inner: Box<dyn Clock>) -> ReplicaClock {
        ReplicaClock { inner, applied: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Note that an entry of time `t` was applied.
    pub fn applied(&self, t: u64) {
        self.applied.fetch_max(t, std::sync::atomic::Ordering::SeqCst);
    }

    /// The latest time noted by [`ReplicaClock::applied`].
    pub fn latest_applied(&self) -> u64 {
        self.applied.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for ReplicaClock {
    fn now(&self) -> u64 {
        match crate::apply::current() {
            Some(ctx) => ctx.clock,
            None => self.inner.now().max(self.applied.load(std::sync::atomic::Ordering::SeqCst)),
        }
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}
