//! The owner-nonce book (R-TRUST-3): the highest nonce accepted per owner, bounded in
//! memory without ever accepting a replayed owner message.
//!
//! Any Ethereum key can sign an owner action, so a map of every owner ever seen would grow
//! without bound (a `revoke_all` from a fresh key costs nothing). The book holds at most
//! `capacity` owners. When full, it forgets owners that hold no session in this enclave,
//! lowest nonce first, and raises a **floor** to the highest nonce it forgot: an owner the
//! book does not know (new, or forgotten) must use a nonce above the floor. Every message
//! of a forgotten owner has a nonce at or below the floor, so none can be replayed; owners
//! with sessions are never forgotten.
//!
//! Owner nonces are bounded in time: none may exceed the enclave's clock in milliseconds
//! plus [`MAX_AHEAD_MS`]. Without that bound, anyone could push the floor out of reach for
//! good — about `capacity` `revoke_all`s from fresh keys with nonces near 2^64 forget one
//! another and raise the floor to 2^64, refusing every new owner forever (found 2026-12-03
//! by a review). With it, the floor never exceeds the highest time the enclave has read plus
//! the bound, so the CLI's and the console's default nonce (the time in milliseconds, on a
//! clock that agrees with the enclave's) passes any floor at most [`MAX_AHEAD_MS`] after a
//! flood of owner calls stops. (An owner whose last nonce was recorded beyond the bound
//! keeps a step of one above it: [`OwnerBook::check`].)
//!
//! They are bounded below as well: none may be more than [`MAX_BEHIND_MS`] behind the
//! enclave's clock in milliseconds (a review of 2026-12-06). Without that bound an owner's
//! message never went stale: a host that withheld a signed update could deliver it hours
//! later, after the owner's tools had reported it unconfirmed. A message refused as stale
//! spends nothing — and never becomes fresh again while the clock moves forward (a clock
//! stepped back lengthens the window by the step).

use crate::service::denial;
use alloy_primitives::Address;
use bridle_common::error::{Denial, ErrorCode};
use std::collections::{BTreeSet, HashMap};

/// How far ahead of the enclave's clock an owner nonce may be, in milliseconds (10 minutes):
/// the owner's clock may run this much ahead of the enclave's, and a floor raised by a flood
/// of owner calls falls below the time in milliseconds this long after the flood stops.
pub const MAX_AHEAD_MS: u64 = 600_000;

/// How far behind the enclave's clock an owner nonce may be, in milliseconds (10 minutes):
/// the owner's clock may run this much behind the enclave's, and a signed message reaches
/// the enclave within this long or never (sign it again).
pub const MAX_BEHIND_MS: u64 = 600_000;

/// The largest owner nonce the enclave accepts at `now` (Unix seconds).
pub fn max_nonce(now: u64) -> u64 {
    now.saturating_mul(1000).saturating_add(MAX_AHEAD_MS)
}

/// The smallest owner nonce the enclave accepts at `now` (Unix seconds).
pub fn min_nonce(now: u64) -> u64 {
    now.saturating_mul(1000).saturating_sub(MAX_BEHIND_MS)
}

/// An [`OwnerBook`] as data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnerBookSnapshot {
    pub last: Vec<(Address, u64)>,
    pub floor: u64,
    pub capacity: usize,
}

pub struct OwnerBook {
    last: HashMap<Address, u64>,
    /// (nonce, owner) of every entry, to forget the lowest first.
    by_nonce: BTreeSet<(u64, Address)>,
    floor: u64,
    capacity: usize,
}

impl OwnerBook {
    pub fn new(capacity: usize) -> OwnerBook {
        OwnerBook { last: HashMap::new(), by_nonce: BTreeSet::new(), floor: 0, capacity: capacity.max(1) }
    }

    /// Whether `nonce` is fresh for `owner` at `now` (Unix seconds): above the owner's last
    /// accepted nonce (or the floor, for an owner the book holds no record of), at least
    /// [`min_nonce`]`(now)`, and at most [`max_nonce`]`(now + lead)` — or, for an owner whose
    /// last nonce is already beyond that (one recorded before the bound, or under a clock
    /// since stepped back), exactly one above it, so that such an owner can still revoke (a
    /// step of one per signed call, which cannot carry a floor any further than the record
    /// already could). That step is for calls that only take power away (`step`: a revocation
    /// or a sweep): a step of one is no time, so a creation, update, approval, denial or
    /// image allowance signed with it would never go stale, nor be bound to a suspension or
    /// hold it followed (a review of 2026-12-06) — those wait until the clock's bound passes
    /// the owner's last nonce. `lead` widens the upper bound only: a cluster leader's check
    /// before it proposes a call, applied a moment later ([`super::owner::PRECHECK_LEAD`]).
    pub fn check(&self, owner: Address, nonce: u64, now: u64, lead: u64, step: bool) -> Result<(), Denial> {
        let min = min_nonce(now);
        if nonce < min {
            return Err(denial(
                ErrorCode::Replayed,
                format!(
                    "owner nonce {nonce} is stale: at least {min} (the enclave's time in milliseconds, {}, less {MAX_BEHIND_MS}); a message signed more than ten minutes ago never takes effect: sign it again with the time in milliseconds",
                    now.saturating_mul(1000)
                ),
            ));
        }
        let now = now.saturating_add(lead);
        let last = self.last.get(&owner).copied();
        let max = match last {
            Some(l) if step => max_nonce(now).max(l.saturating_add(1)),
            _ => max_nonce(now),
        };
        if nonce > max {
            let why = match last {
                Some(l) if step && l >= max_nonce(now) => format!(", one above this owner's last accepted {l}"),
                Some(l) if l >= max_nonce(now) => format!(
                    "; this owner's last accepted nonce {l} is beyond it too: only a revocation or a sweep may use one above it (a step of one is no time, and would never go stale) until the enclave's time in milliseconds passes {}",
                    l.saturating_sub(MAX_AHEAD_MS)
                ),
                _ => format!(
                    " (the enclave's time in milliseconds, {}, plus {MAX_AHEAD_MS}); use the time in milliseconds",
                    now.saturating_mul(1000)
                ),
            };
            return Err(denial(
                ErrorCode::Replayed,
                format!("owner nonce {nonce} is ahead of the enclave's clock: at most {max}{why}"),
            ));
        }
        match last {
            Some(last) if nonce <= last => {
                Err(denial(ErrorCode::Replayed, format!("owner nonce {nonce} is not above the last accepted {last}")))
            }
            None if nonce <= self.floor => {
                let wait = self.floor.saturating_sub(now.saturating_mul(1000)).div_ceil(1000);
                let hint = if wait == 0 {
                    "use a larger nonce, such as the time in milliseconds".to_string()
                } else {
                    format!("the enclave's time in milliseconds passes it in about {wait} s")
                };
                Err(denial(
                    ErrorCode::Replayed,
                    format!(
                        "owner nonce {nonce} is not above {}, the lowest this enclave accepts from an owner it holds no record of ({hint})",
                        self.floor
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether recording a new owner would need forgetting one.
    pub fn is_full(&self) -> bool {
        self.last.len() >= self.capacity
    }

    /// Record `nonce` (already checked) for `owner`; `holds_sessions` says whether an owner
    /// has sessions (those are never forgotten). It is consulted only when the book is over
    /// its capacity.
    pub fn accept(&mut self, owner: Address, nonce: u64, holds_sessions: impl Fn(&Address) -> bool) {
        if let Some(old) = self.last.insert(owner, nonce) {
            self.by_nonce.remove(&(old, owner));
        }
        self.by_nonce.insert((nonce, owner));
        if self.last.len() <= self.capacity {
            return;
        }
        let victims: Vec<(u64, Address)> = self
            .by_nonce
            .iter()
            .filter(|(_, o)| *o != owner && !holds_sessions(o))
            .take(self.last.len() - self.capacity)
            .copied()
            .collect();
        for (n, o) in victims {
            self.by_nonce.remove(&(n, o));
            self.last.remove(&o);
            self.floor = self.floor.max(n);
        }
    }

    /// The book as data: every (owner, last nonce), the floor and the capacity.
    pub fn snapshot(&self) -> OwnerBookSnapshot {
        let mut last: Vec<(Address, u64)> = self.last.iter().map(|(a, n)| (*a, *n)).collect();
        last.sort();
        OwnerBookSnapshot { last, floor: self.floor, capacity: self.capacity }
    }

    /// The book `s` describes.
    pub fn restore(s: OwnerBookSnapshot) -> OwnerBook {
        let mut b = OwnerBook::new(s.capacity);
        b.floor = s.floor;
        for (a, n) in s.last {
            if let Some(old) = b.last.insert(a, n) {
                b.by_nonce.remove(&(old, a));
            }
            b.by_nonce.insert((n, a));
        }
        b
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }

    #[cfg(test)]
    fn floor(&self) -> u64 {
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enclave's clock in the tests (Unix seconds).
    const T: u64 = 1_000;
    /// Its time in milliseconds: nonces near it are neither stale nor ahead.
    const N: u64 = T * 1000;

    #[test]
    fn bounded_and_never_replayable() {
        let mut b = OwnerBook::new(3);
        let a = |i: u8| Address::repeat_byte(i);
        let none = |_: &Address| false;
        for i in 1..=10u8 {
            b.check(a(i), N + 100 + i as u64, T, 0, true).unwrap();
            b.accept(a(i), N + 100 + i as u64, none);
            assert!(b.len() <= 3);
        }
        // Forgotten owners cannot replay anything they ever signed.
        for i in 1..=7u8 {
            assert_eq!(b.check(a(i), N + 100 + i as u64, T, 0, true).unwrap_err().code, ErrorCode::Replayed);
        }
        assert_eq!(b.floor(), N + 107);
        // A new owner needs a nonce above the floor; known owners keep their own rule.
        assert!(b.check(a(50), N + 5, T, 0, true).is_err());
        b.check(a(50), N + 1_000, T, 0, true).unwrap();
        assert!(b.check(a(10), N + 110, T, 0, true).is_err());
        b.check(a(10), N + 111, T, 0, true).unwrap();
        // Owners with sessions are never forgotten, whatever their nonce.
        let mut b = OwnerBook::new(2);
        let keep = |o: &Address| *o == Address::repeat_byte(1);
        b.accept(a(1), N + 1, keep);
        for i in 2..=9u8 {
            b.accept(a(i), N + 1000 + i as u64, keep);
        }
        assert!(b.check(a(1), N + 1, T, 0, true).is_err());
        b.check(a(1), N + 2, T, 0, true).unwrap();
        assert!(b.len() <= 2);
    }

    /// A flood of owner calls from fresh keys, each at the highest nonce the enclave accepts,
    /// cannot raise the floor above the enclave's time plus the bound: once the flood stops,
    /// an owner's nonce of the time in milliseconds passes within `MAX_AHEAD_MS`.
    #[test]
    fn a_flood_cannot_push_the_floor_past_the_clock() {
        let mut b = OwnerBook::new(4);
        let none = |_: &Address| false;
        let owner = |i: u32| Address::left_padding_from(&i.to_be_bytes());
        let victim = Address::repeat_byte(0xee);
        // A nonce near 2^64 is refused, and records nothing.
        let e = b.check(owner(1), u64::MAX - 1, T, 0, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        assert!(e.reason.contains(&max_nonce(T).to_string()), "{}", e.reason);
        assert_eq!((b.len(), b.floor()), (0, 0));
        b.check(owner(1), max_nonce(T), T, 0, true).unwrap();
        // The flood, over 100 s of the enclave's clock.
        for i in 0..100u32 {
            let now = T + u64::from(i);
            b.check(owner(i), max_nonce(now), now, 0, true).unwrap();
            b.accept(owner(i), max_nonce(now), none);
        }
        let end = T + 99;
        assert_eq!(b.floor(), max_nonce(end - 4), "the floor is the highest nonce forgotten");
        // During the flood a new owner's time in milliseconds is refused…
        let e = b.check(victim, end * 1000, end, 0, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        // …and passes once the enclave's clock is `MAX_AHEAD_MS` past the flood.
        let later = end + MAX_AHEAD_MS / 1000;
        assert!(b.floor() < later * 1000);
        b.check(victim, later * 1000, later, 0, true).unwrap();
        // The floor is never above the clock plus the bound, whatever the order of nonces.
        assert!(b.floor() <= max_nonce(end));
    }

    /// A message signed more than ten minutes before the enclave's clock is stale: refused
    /// and recorded nowhere, and stale for good as the clock moves on; a leader's lead widens
    /// the upper bound only.
    #[test]
    fn a_nonce_more_than_ten_minutes_behind_the_clock_is_stale() {
        let b = OwnerBook::new(4);
        let o = Address::repeat_byte(3);
        b.check(o, min_nonce(T), T, 0, true).unwrap();
        let e = b.check(o, min_nonce(T) - 1, T, 0, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        assert!(e.reason.contains("is stale: at least") && e.reason.contains("sign it again"), "{}", e.reason);
        // A counter (1, 2, 3…) is stale.
        assert_eq!(b.check(o, 1, T, 0, true).unwrap_err().code, ErrorCode::Replayed);
        // Stale for good once the clock has passed it.
        assert!(b.check(o, min_nonce(T), T + 1, 0, true).is_err());
        // The lead: the upper bound moves, the lower one does not.
        b.check(o, max_nonce(T + 2), T, 2, true).unwrap();
        assert!(b.check(o, max_nonce(T + 2), T, 0, true).is_err());
        assert!(b.check(o, min_nonce(T) - 1, T, 2, true).is_err());
    }

    /// An owner whose last nonce was recorded beyond the bound (before it existed, say) is
    /// not locked out of revoking: it may use exactly one above its last nonce, and nothing
    /// further.
    #[test]
    fn an_owner_recorded_beyond_the_bound_keeps_a_step_of_one() {
        let far = u64::MAX / 2;
        let owner = Address::repeat_byte(9);
        let b = OwnerBook::restore(OwnerBookSnapshot { last: vec![(owner, far)], floor: 0, capacity: 4 });
        b.check(owner, far + 1, T, 0, true).unwrap();
        let e = b.check(owner, far + 2, T, 0, true).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        assert!(e.reason.contains(&format!("one above this owner's last accepted {far}")), "{}", e.reason);
        assert_eq!(b.check(owner, far, T, 0, true).unwrap_err().code, ErrorCode::Replayed);
        // Only for a revocation or a sweep (`step`): a step of one is no time, so a creation,
        // update, approval or denial signed with it would never go stale (a review of
        // 2026-12-06); those wait for the clock.
        let e = b.check(owner, far + 1, T, 0, false).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        assert!(e.reason.contains("only a revocation or a sweep may use one above it"), "{}", e.reason);
        // Other owners keep the clock's bound.
        assert_eq!(b.check(Address::repeat_byte(8), far + 1, T, 0, true).unwrap_err().code, ErrorCode::Replayed);
        // A record at the very top cannot step further.
        let b = OwnerBook::restore(OwnerBookSnapshot { last: vec![(owner, u64::MAX)], floor: 0, capacity: 4 });
        assert!(b.check(owner, u64::MAX, T, 0, true).is_err());
        // Behind the floor with nothing to wait for: told to use a larger nonce.
        let b = OwnerBook::restore(OwnerBookSnapshot { last: vec![], floor: N - 1_000, capacity: 4 });
        let e = b.check(owner, N - 2_000, T, 0, true).unwrap_err();
        assert!(e.reason.contains("use a larger nonce"), "{}", e.reason);
    }
}
