//! The enclave's clock. Production reads the system clock; development may add an offset
//! read from a file, so end-to-end tests can move time (never available outside `--dev`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> u64;
    /// Unix milliseconds (the seconds' resolution unless the clock has a finer one).
    fn now_ms(&self) -> u64 {
        self.now().saturating_mul(1000)
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A base clock plus a signed offset (seconds) read from a file on each call; a missing or
/// unreadable file means no offset.
pub struct OffsetFileClock(pub PathBuf, pub Box<dyn Clock>);

impl Clock for OffsetFileClock {
    fn now(&self) -> u64 {
        let off: i64 = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        self.1.now().saturating_add_signed(off)
    }
}

/// The system clock off by a fixed number of seconds: a drifting hypervisor clock, in
/// development (`--dev-system-clock-skew`).
pub struct SkewedClock(pub i64);

impl Clock for SkewedClock {
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.0.saturating_mul(1000))
    }
}

/// The system clock corrected by the NSM's (a review of 2026-12-06): inside a Nitro Enclave
/// the system clock is the hypervisor's paravirtual clock, which nothing corrects — it drifts
/// (seconds a week have been measured), and agent stamps (±60 s), owner nonces, peers'
/// documents and permits' ends all read it. An attestation document's timestamp is the
/// Nitro card's clock, out of the parent instance's reach: [`NsmCorrected::sample`] reads
/// one and keeps the difference, which every later reading adds. Session time never goes
/// back whatever the correction does (the machine's tick and counters only move forward).
pub struct NsmCorrected {
    inner: Box<dyn Clock>,
    offset_ms: std::sync::atomic::AtomicI64,
}

/// A sample whose NSM call took longer than this is not used: its timestamp could be
/// anywhere in that time.
pub const MAX_SAMPLE_MS: u64 = 2_000;

/// How often the enclave samples the NSM's clock.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl NsmCorrected {
    pub fn new(inner: Box<dyn Clock>) -> NsmCorrected {
        NsmCorrected { inner, offset_ms: std::sync::atomic::AtomicI64::new(0) }
    }

    /// The correction now applied: NSM time minus the system clock, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Read the NSM's time with `nsm_ms` (Unix milliseconds) between two readings of the
    /// system clock, and correct by the difference from their midpoint. Returns the new
    /// correction; a failed or slow sample changes nothing.
    pub fn sample(&self, nsm_ms: impl FnOnce() -> Result<u64, String>) -> Result<i64, String> {
        let before = self.inner.now_ms();
        let t = nsm_ms()?;
        let after = self.inner.now_ms();
        let took = after.saturating_sub(before);
        if took > MAX_SAMPLE_MS {
            return Err(format!("the NSM took {took} ms to answer; at most {MAX_SAMPLE_MS}"));
        }
        let mid = before + took / 2;
        let off = i64::try_from(i128::from(t) - i128::from(mid)).map_err(|_| "an NSM time out of range".to_string())?;
        self.offset_ms.store(off, std::sync::atomic::Ordering::SeqCst);
        Ok(off)
    }
}

impl Clock for NsmCorrected {
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms().saturating_add_signed(self.offset_ms())
    }
}

/// The NSM's time: the timestamp of a fresh attestation document (read, not verified: it
/// comes from the module over `/dev/nsm`, not from the host).
pub fn nsm_time_ms(nsm: &dyn bridle_attestation::NsmProvider) -> Result<u64, String> {
    let doc = nsm.attestation(None, Some(b"bridle/clock-sample".to_vec()), None).map_err(|e| e.to_string())?;
    let d = bridle_attestation::parse_document(&doc).map_err(|e| e.to_string())?;
    Ok(d.timestamp_ms)
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
    fn now_ms(&self) -> u64 {
        match crate::apply::current() {
            Some(ctx) => ctx.clock.saturating_mul(1000),
            None => {
                self.inner.now_ms().max(self.applied.load(std::sync::atomic::Ordering::SeqCst).saturating_mul(1000))
            }
        }
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nsm_correction_is_added_to_every_reading() {
        let c = NsmCorrected::new(Box::new(FixedClock::new(1_000)));
        assert_eq!(c.now(), 1_000);
        // The hypervisor's clock is 7.5 s behind the NSM's.
        assert_eq!(c.sample(|| Ok(1_007_500)), Ok(7_500));
        assert_eq!((c.now(), c.now_ms()), (1_007, 1_007_500));
        // And then 3 s ahead.
        assert_eq!(c.sample(|| Ok(997_000)), Ok(-3_000));
        assert_eq!(c.now(), 997);
    }

    #[test]
    fn a_failed_or_slow_sample_changes_nothing() {
        let base = std::sync::Arc::new(FixedClock::new(1_000));
        let c = NsmCorrected::new(Box::new(base.clone()));
        c.sample(|| Ok(1_002_000)).unwrap();
        assert!(c.sample(|| Err("no NSM".into())).is_err());
        let slow = c.sample(|| {
            base.set(1_003);
            Ok(5_000_000)
        });
        assert!(slow.unwrap_err().contains("3000 ms"));
        assert_eq!(c.offset_ms(), 2_000);
    }

    #[test]
    fn the_mock_nsms_time_is_read_from_its_documents() {
        let nsm = bridle_attestation::MockNsm::new().unwrap();
        let c = NsmCorrected::new(Box::new(SystemClock));
        let off = c.sample(|| nsm_time_ms(&nsm)).unwrap();
        // The mock stamps documents with this machine's clock.
        assert!(off.abs() < 1_000, "{off}");
    }

    #[test]
    fn a_test_offset_stays_on_top_of_the_correction() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("offset");
        std::fs::write(&f, "3600").unwrap();
        let c = std::sync::Arc::new(NsmCorrected::new(Box::new(FixedClock::new(1_000))));
        c.sample(|| Ok(1_010_000)).unwrap();
        assert_eq!(OffsetFileClock(f, Box::new(c)).now(), 1_000 + 10 + 3_600);
    }
}
