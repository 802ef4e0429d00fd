//! The owner-nonce book (R-TRUST-3): the highest nonce accepted per owner, bounded in
//! memory without ever accepting a replayed owner message.
//!
//! Any Ethereum key can sign an owner action, so a map of every owner ever seen would grow
//! without bound (a `revoke_all` from a fresh key costs nothing). The book holds at most
//! `capacity` owners. When full, it forgets owners that hold no session in this enclave,
//! lowest nonce first, and raises a **floor** to the highest nonce it forgot: an owner the
//! book does not know (new, or forgotten) must use a nonce above the floor. Every message
//! of a forgotten owner has a nonce at or below the floor, so none can be replayed; owners
//! with sessions are never forgotten. (The CLI's default nonce is the time in
//! milliseconds, which stays above any floor.)

use crate::service::denial;
use alloy_primitives::Address;
use bridle_common::error::{Denial, ErrorCode};
use std::collections::{BTreeSet, HashMap};

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

    /// Whether `nonce` is fresh for `owner`.
    pub fn check(&self, owner: Address, nonce: u64) -> Result<(), Denial> {
        match self.last.get(&owner) {
            Some(&last) if nonce <= last => Err(denial(
                ErrorCode::Replayed,
                format!("owner nonce {nonce} is not above the last accepted {last}"),
            )),
            None if nonce <= self.floor => Err(denial(
                ErrorCode::Replayed,
                format!(
                    "owner nonce {nonce} is not above {}, the lowest this enclave accepts from an owner it holds no record of (use a larger nonce, such as the time in milliseconds)",
                    self.floor
                ),
            )),
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

    #[test]
    fn bounded_and_never_replayable() {
        let mut b = OwnerBook::new(3);
        let a = |i: u8| Address::repeat_byte(i);
        let none = |_: &Address| false;
        for i in 1..=10u8 {
            b.check(a(i), 100 + i as u64).unwrap();
            b.accept(a(i), 100 + i as u64, none);
            assert!(b.len() <= 3);
        }
        // Forgotten owners cannot replay anything they ever signed.
        for i in 1..=7u8 {
            assert_eq!(b.check(a(i), 100 + i as u64).unwrap_err().code, ErrorCode::Replayed);
        }
        assert_eq!(b.floor(), 107);
        // A new owner needs a nonce above the floor; known owners keep their own rule.
        assert!(b.check(a(50), 5).is_err());
        b.check(a(50), 1_000).unwrap();
        assert!(b.check(a(10), 110).is_err());
        b.check(a(10), 111).unwrap();
        // Owners with sessions are never forgotten, whatever their nonce.
        let mut b = OwnerBook::new(2);
        let keep = |o: &Address| *o == Address::repeat_byte(1);
        b.accept(a(1), 1, keep);
        for i in 2..=9u8 {
            b.accept(a(i), 1000 + i as u64, keep);
        }
        assert!(b.check(a(1), 1).is_err());
        b.check(a(1), 2).unwrap();
        assert!(b.len() <= 2);
    }
}
