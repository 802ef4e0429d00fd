//! The session's ledger (RULES.md §3): what was charged, per asset, in the current minute,
//! hour, day, week and month period and in the whole session.
//!
//! The ledger belongs to the session, not to its policy, so every rule of every policy the
//! session ever has reads the same figures: an update never forgives spend, whatever its
//! periods or symbols. Counters only move forward: a counter holds the index of the period
//! it counts, reading it at a later index gives 0, and a charge at an *earlier* index (which
//! the session's monotonic time never produces) is added to the current one instead of
//! rewinding it — the worst case, never a reset.

use crate::period::Period;
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

/// What a ledger line counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LedgerKey {
    /// The native coin, on every chain together.
    Native,
    /// A token, by address (on every chain together).
    Token(Address),
    /// Gas cost (`gas_limit × max_fee_per_gas`), wei.
    GasCost,
    /// The USD value of requests at the policy's price table (18 decimals).
    Usd,
}

/// Spend in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodCounter {
    pub index: u64,
    pub spent: U256,
}

impl PeriodCounter {
    /// What was spent in period `index` (0 in a later period; the worst case — everything
    /// counted — if asked about an earlier one).
    pub fn spent_in(&self, index: u64) -> U256 {
        if index > self.index {
            U256::ZERO
        } else {
            self.spent
        }
    }

    /// Charge `amount` in period `index`. Never moves to an earlier period.
    pub fn charge(&mut self, index: u64, amount: U256) {
        if index > self.index {
            self.index = index;
            self.spent = U256::ZERO;
        }
        self.spent = self.spent.saturating_add(amount);
    }
}

/// The periods every line counts, in this order.
pub const PERIODS: [Period; 6] =
    [Period::Minute, Period::Hour, Period::Day, Period::Week, Period::Month, Period::Session];

fn slot(p: Period) -> usize {
    match p {
        Period::Minute => 0,
        Period::Hour => 1,
        Period::Day => 2,
        Period::Week => 3,
        Period::Month => 4,
        Period::Session => 5,
    }
}

/// One asset's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub key: LedgerKey,
    pub counters: [PeriodCounter; 6],
}

/// Most lines a ledger holds: the native coin, gas, USD and every token a policy of the
/// session ever charged (a policy lists at most 256 tokens; updates may list others).
pub const MAX_LINES: usize = 1024;
/// What a line takes, as [`Ledger::footprint`] counts it (a growable container's entry,
/// counted twice).
pub const LINE_BYTES: usize = 2 * std::mem::size_of::<Line>();

/// The ledger. Few lines (one per charged asset), so a sorted vector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    lines: Vec<Line>,
}

impl Ledger {
    fn line(&self, key: LedgerKey) -> Option<&Line> {
        self.lines.binary_search_by(|l| l.key.cmp(&key)).ok().map(|i| &self.lines[i])
    }

    /// What was charged to `key` in the period of kind `period` that contains `t`.
    pub fn spent(&self, key: LedgerKey, period: Period, anchor: u64, t: u64) -> U256 {
        match self.line(key) {
            Some(l) => l.counters[slot(period)].spent_in(period.index(anchor, t)),
            None => U256::ZERO,
        }
    }

    /// Every line's key, in order.
    pub fn keys(&self) -> impl Iterator<Item = LedgerKey> + '_ {
        self.lines.iter().map(|l| l.key)
    }

    /// Whether a charge to `key` would add a line (none exists, and there is room for one).
    pub fn would_add_line(&self, key: LedgerKey) -> bool {
        self.line(key).is_none() && self.lines.len() < MAX_LINES
    }

    /// Whether charges to every key of `keys` together can be recorded: the lines they would
    /// add fit beside those there.
    pub fn has_room_for(&self, keys: impl IntoIterator<Item = LedgerKey>) -> bool {
        let mut new: Vec<LedgerKey> = Vec::new();
        for k in keys {
            if self.line(k).is_none() && !new.contains(&k) {
                new.push(k);
            }
        }
        self.lines.len() + new.len() <= MAX_LINES
    }

    /// Charge `amount` to `key` at session time `t` in all six periods. A zero amount
    /// changes nothing. Returns false (changing nothing) when a new line would not fit.
    pub fn charge(&mut self, key: LedgerKey, amount: U256, anchor: u64, t: u64) -> bool {
        if amount.is_zero() {
            return true;
        }
        let i = match self.lines.binary_search_by(|l| l.key.cmp(&key)) {
            Ok(i) => i,
            Err(i) => {
                if self.lines.len() >= MAX_LINES {
                    return false;
                }
                self.lines.insert(i, Line { key, counters: [PeriodCounter::default(); 6] });
                i
            }
        };
        for (k, p) in PERIODS.iter().enumerate() {
            self.lines[i].counters[k].charge(p.index(anchor, t), amount);
        }
        true
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Approximate heap bytes, from lengths (never capacities), so that every replica of a
    /// session — grown step by step or restored from a snapshot — computes the same figure
    /// (the memory budget decides with it). Growable containers count twice their length.
    pub fn footprint(&self) -> usize {
        self.lines.len() * LINE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 1_800_000_000;

    /// The lines a request would add are counted together, the native coin's, gas's and
    /// USD's among them: one line short of the bound, a request adding two does not fit (a
    /// review of 2026-12-05: only token lines were checked, one at a time, and a charge
    /// that did not fit was dropped).
    #[test]
    fn new_lines_are_counted_together() {
        let mut l = Ledger::default();
        for i in 0..MAX_LINES - 1 {
            let mut b = [0u8; 20];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            assert!(l.charge(LedgerKey::Token(Address::from(b)), U256::from(1), A, A));
        }
        let old = LedgerKey::Token(Address::ZERO);
        assert!(l.has_room_for([LedgerKey::Native]));
        assert!(l.has_room_for([LedgerKey::Native, old, LedgerKey::Native]));
        assert!(!l.has_room_for([LedgerKey::Native, LedgerKey::GasCost]));
        assert!(l.charge(LedgerKey::Native, U256::from(1), A, A));
        assert!(!l.has_room_for([LedgerKey::Usd]));
        assert!(l.has_room_for([LedgerKey::Native, old]));
        assert!(!l.charge(LedgerKey::Usd, U256::from(1), A, A), "past the bound, refused, not added");
    }

    #[test]
    fn every_period_counts_and_resets_forward_only() {
        let mut l = Ledger::default();
        let k = LedgerKey::Token(Address::repeat_byte(1));
        assert!(l.charge(k, U256::from(100), A, A + 10));
        assert_eq!(l.spent(k, Period::Minute, A, A + 59), U256::from(100));
        assert_eq!(l.spent(k, Period::Minute, A, A + 60), U256::ZERO);
        assert!(l.charge(k, U256::from(5), A, A + 61));
        assert_eq!(l.spent(k, Period::Minute, A, A + 61), U256::from(5));
        assert_eq!(l.spent(k, Period::Day, A, A + 61), U256::from(105));
        assert_eq!(l.spent(k, Period::Session, A, A + 10_000_000), U256::from(105));
        // A charge dated in an earlier minute does not rewind the counter: it is added to the
        // current one (worst case), and what was spent stays counted.
        assert!(l.charge(k, U256::from(7), A, A + 30));
        assert_eq!(l.spent(k, Period::Minute, A, A + 61), U256::from(12));
        assert_eq!(l.spent(k, Period::Minute, A, A + 30), U256::from(12), "an earlier period reads the worst case");
        assert_eq!(l.spent(LedgerKey::Native, Period::Day, A, A), U256::ZERO);
    }
}
