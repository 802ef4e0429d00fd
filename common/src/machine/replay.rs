//! Agent stamp replay protection: a nonce is never accepted twice, with bounded memory.
//!
//! A stamp is accepted only within ±window of the enclave's clock, so a nonce needs to be
//! remembered only until its timestamp leaves the window; after that the timestamp check
//! refuses it anyway. Memory per session is bounded by `capacity`: when full of live
//! nonces, new requests are refused (`rate_limited`) rather than forgetting a live nonce.
//!
//! Each live nonce also remembers the digest it was *signed* for, if it was: asking again
//! with the identical stamped request returns the same signature (RULES.md §3, "exactly
//! once"), so a client or host that lost the answer — a leader that died after committing,
//! a dropped connection — can collect it without being charged twice.

use alloy_primitives::B256;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct ReplayCache {
    /// Live nonces, with the digest signed under each (once it was).
    seen: HashMap<[u8; 16], Option<B256>>,
    /// (expiry, nonce), in insertion order; expiries are pruned from the front.
    order: VecDeque<(u64, [u8; 16])>,
    window: u64,
    capacity: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Used before; `signed` is the digest it was signed for, if it was.
    Seen {
        signed: Option<B256>,
    },
    OutsideWindow {
        timestamp: u64,
        now: u64,
        window: u64,
    },
    Full {
        capacity: usize,
    },
}

impl ReplayCache {
    pub fn new(window: u64, capacity: usize) -> ReplayCache {
        ReplayCache { seen: HashMap::new(), order: VecDeque::new(), window, capacity }
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
        if let Some(signed) = self.seen.get(&nonce) {
            return Err(ReplayError::Seen { signed: *signed });
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
        self.seen.insert(nonce, None);
        Ok(())
    }

    /// Remember that the request under `nonce` (accepted by [`Self::check_and_insert`]) was
    /// signed, for `digest`.
    pub fn mark_signed(&mut self, nonce: [u8; 16], digest: B256) {
        if let Some(slot) = self.seen.get_mut(&nonce) {
            *slot = Some(digest);
        }
    }

    /// Approximate heap bytes, from lengths (never capacities), so that every replica of a
    /// session — grown step by step or restored from a snapshot — computes the same figure
    /// (the memory budget decides with it). Growable containers count twice their length.
    pub fn footprint(&self) -> usize {
        2 * (self.seen.len() * 57 + self.order.len() * 24)
    }

    /// The live nonces, in the order they expire, with what each was signed for (for a
    /// snapshot; [`Self::restore`] rebuilds the cache from them).
    pub fn entries(&self) -> impl Iterator<Item = (u64, [u8; 16], Option<B256>)> + '_ {
        self.order.iter().map(|&(exp, n)| (exp, n, self.seen.get(&n).copied().flatten()))
    }

    /// The window and capacity (for a snapshot).
    pub fn limits(&self) -> (u64, usize) {
        (self.window, self.capacity)
    }

    /// A cache holding exactly `entries` (from [`Self::entries`]).
    pub fn restore(
        window: u64,
        capacity: usize,
        entries: impl IntoIterator<Item = (u64, [u8; 16], Option<B256>)>,
    ) -> Self {
        let mut c = ReplayCache::new(window, capacity);
        for (exp, n, signed) in entries {
            c.order.push_back((exp, n));
            c.seen.insert(n, signed);
        }
        c
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
        assert_eq!(c.check_and_insert([1; 16], 1000, 1001), Err(ReplayError::Seen { signed: None }));
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
    fn remembers_what_a_nonce_was_signed_for() {
        let mut c = ReplayCache::new(60, 8);
        let d = B256::repeat_byte(7);
        assert_eq!(c.check_and_insert([1; 16], 1000, 1000), Ok(()));
        c.mark_signed([1; 16], d);
        c.mark_signed([2; 16], d); // never accepted: ignored
        assert_eq!(c.check_and_insert([1; 16], 1000, 1001), Err(ReplayError::Seen { signed: Some(d) }));
        assert_eq!(c.check_and_insert([2; 16], 1000, 1001), Ok(()));
        assert_eq!(c.check_and_insert([2; 16], 1000, 1001), Err(ReplayError::Seen { signed: None }));
        let (w, cap) = c.limits();
        let r = ReplayCache::restore(w, cap, c.entries().collect::<Vec<_>>());
        assert_eq!(r.entries().collect::<Vec<_>>(), c.entries().collect::<Vec<_>>());
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
            assert_eq!(c.check_and_insert(n, ts, now), Err(ReplayError::Seen { signed: None }));
            if i % 100 == 0 {
                now += 7;
            }
        }
    }
}
