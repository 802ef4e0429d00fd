//! Agent stamp replay protection: a nonce is never accepted twice, with bounded memory.
//!
//! A stamp is accepted only within ±window of the enclave's clock, so a nonce needs to be
//! remembered only until its timestamp leaves the window; after that the timestamp check
//! refuses it anyway. Memory per session is bounded by `capacity`: when full of live
//! nonces, new requests are refused (`rate_limited`) rather than forgetting a live nonce.

use std::collections::{HashSet, VecDeque};

#[derive(Debug, Clone)]
pub struct ReplayCache {
    seen: HashSet<[u8; 16]>,
    /// (expiry, nonce), in insertion order; expiries are pruned from the front.
    order: VecDeque<(u64, [u8; 16])>,
    window: u64,
    capacity: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReplayError {
    Seen,
    OutsideWindow { timestamp: u64, now: u64, window: u64 },
    Full { capacity: usize },
}

impl ReplayCache {
    pub fn new(window: u64, capacity: usize) -> ReplayCache {
        ReplayCache { seen: HashSet::new(), order: VecDeque::new(), window, capacity }
    }

    /// Check a stamp's time and nonce, and remember the nonce if fresh.
    pub fn check_and_insert(&mut self, nonce: [u8; 16], timestamp: u64, now: u64) -> Result<(), ReplayError> {
        if timestamp.abs_diff(now) > self.window {
            return Err(ReplayError::OutsideWindow { timestamp, now, window: self.window });
        }
        // Forget nonces whose timestamps can no longer pass the window check. Expiries are
        // not strictly ordered (stamps arrive out of order), so prune while the front is
        // expired and rely on the capacity bound for the rest.
        while let Some(&(exp, n)) = self.order.front() {
            if exp < now {
                self.order.pop_front();
                self.seen.remove(&n);
            } else {
                break;
            }
        }
        if self.seen.contains(&nonce) {
            return Err(ReplayError::Seen);
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full { capacity: self.capacity });
        }
        // Remember it until the latest moment its timestamp could still pass.
        let expiry = timestamp.saturating_add(self.window);
        // Keep the queue sorted enough: an entry expiring later than the back goes last;
        // one expiring earlier is still correct to keep longer (we never forget early).
        let expiry = self.order.back().map_or(expiry, |&(b, _)| expiry.max(b));
        self.order.push_back((expiry, nonce));
        self.seen.insert(nonce);
        Ok(())
    }

    /// Approximate heap bytes.
    pub fn footprint(&self) -> usize {
        self.seen.capacity() * 24 + self.order.capacity() * 24
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_and_bound() {
        let mut c = ReplayCache::new(60, 3);
        assert_eq!(c.check_and_insert([1; 16], 1000, 1000), Ok(()));
        assert_eq!(c.check_and_insert([1; 16], 1000, 1001), Err(ReplayError::Seen));
        assert!(matches!(c.check_and_insert([2; 16], 900, 1000), Err(ReplayError::OutsideWindow { .. })));
        assert!(matches!(c.check_and_insert([2; 16], 1061, 1000), Err(ReplayError::OutsideWindow { .. })));
        assert_eq!(c.check_and_insert([2; 16], 1060, 1000), Ok(()));
        assert_eq!(c.check_and_insert([3; 16], 940, 1000), Ok(()));
        assert_eq!(c.check_and_insert([4; 16], 1000, 1000), Err(ReplayError::Full { capacity: 3 }));
        // Once nonce 1's timestamp has left the window it is forgotten, and a replay of it
        // is refused by the window check instead.
        assert!(matches!(c.check_and_insert([1; 16], 1000, 1200), Err(ReplayError::OutsideWindow { .. })));
        assert_eq!(c.check_and_insert([5; 16], 1200, 1200), Ok(()));
        assert!(c.len() <= 3);
    }

    #[test]
    fn never_accepts_twice_within_window() {
        let mut c = ReplayCache::new(60, 10_000);
        let mut now = 10_000u64;
        for i in 0..5000u32 {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&i.to_be_bytes());
            let ts = now - (i as u64 % 50);
            assert_eq!(c.check_and_insert(n, ts, now), Ok(()));
            assert_eq!(c.check_and_insert(n, ts, now), Err(ReplayError::Seen));
            if i % 100 == 0 {
                now += 7;
            }
        }
    }
}
