//! Everything a session has done that its policy counts (RULES.md): uses, the recent
//! signatures rate limits look at, the ledger, and the allowance registry. The engine reads
//! it; the signing path charges it under the same lock (R-POL-11).

use super::compile::{AssetRef, CompiledPolicy};
use super::engine::Charges;
use crate::allowance::{lifetime, Registry};
use crate::ledger::{Ledger, LedgerKey};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Rate-limit history kept whatever the policy says: an update that adds or tightens a rate
/// limit still sees at least this much of the past (RULES.md §7).
pub const MIN_RATE_HISTORY: u64 = 64;

/// Everything the policy engine remembers about a session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Weight signed (RULES.md §2: a user operation's inner calls each count).
    pub uses: u64,
    /// (session time, weight) of recent signatures, oldest first, times non-decreasing.
    pub recent: VecDeque<(u64, u32)>,
    /// The time of the newest signature dropped from `recent`: a window reaching it is not
    /// counted in full by what is kept (see [`Counters::recent_within`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_dropped: Option<u64>,
    /// What was charged, per asset and period (RULES.md §3).
    pub ledger: Ledger,
    /// Every approval and permit the session signed, where it sits (RULES.md §6).
    pub allowances: Registry,
}

impl Counters {
    pub fn new() -> Counters {
        Counters::default()
    }

    /// Weight signed at times `s` with `t − s < window`, or `None` when the history kept
    /// cannot tell: a signature dropped from it falls within the window. Under the policy
    /// that kept it that never decides anything (the history kept then reaches the largest
    /// `max` within the window, so the limit is reached either way); after an update that
    /// raised a limit above it, or added one, the window counts as full until it has passed
    /// the last signature dropped (found 2026-12-04 by a review: 200 signatures in an hour
    /// with no limit, then an update to 100 an hour, allowed 36 more). `recent` is sorted by
    /// time, so this is a binary search plus a sum over the window's entries.
    pub fn recent_within(&self, t: u64, window: u64) -> Option<u64> {
        if self.recent_dropped.is_some_and(|d| t.saturating_sub(d) < window) {
            return None;
        }
        let i = self.recent.partition_point(|&(s, _)| t.saturating_sub(s) >= window);
        Some(self.recent.range(i..).map(|&(_, w)| w as u64).sum())
    }

    /// The ledger line of a policy asset.
    pub fn key_of(p: &CompiledPolicy, a: AssetRef) -> LedgerKey {
        match a {
            AssetRef::Native => LedgerKey::Native,
            AssetRef::Token(i) => LedgerKey::Token(p.doc.tokens[i].address),
        }
    }

    /// Whether charging `charges` can be recorded in full (ledger lines — the native coin's,
    /// gas's and USD's among them, every new line together, and gas's line kept free for
    /// sweeps: a review of 2026-12-05 —, registry room).
    pub fn has_room(&self, p: &CompiledPolicy, charges: &Charges, t: u64) -> bool {
        let fixed = [
            (LedgerKey::Native, charges.native),
            (LedgerKey::GasCost, charges.gas_cost),
            (LedgerKey::Usd, charges.usd),
        ];
        let tokens = charges.tokens.iter().map(|(i, v)| (Self::key_of(p, AssetRef::Token(*i)), *v));
        let keys = fixed.into_iter().chain(tokens).filter(|(_, v)| !v.is_zero()).map(|(k, _)| k);
        // Gas's line is kept free whatever the request charges: sweeps charge it unchecked
        // (an owner's sweep is never refused for a ledger line), and the gas spend limit
        // must see them (a review of 2026-12-05).
        let keys = keys.chain(std::iter::once(LedgerKey::GasCost));
        self.ledger.has_room_for(keys) && self.allowances.has_room(charges.approvals.len(), t)
    }

    /// Apply a signed request's charges at session time `t`. Called only after the engine
    /// allowed it (and [`Counters::has_room`] held), under the same lock: check-and-charge is
    /// one step.
    pub fn charge(&mut self, p: &CompiledPolicy, charges: &Charges, anchor: u64, t: u64) {
        self.uses = self.uses.saturating_add(charges.weight);
        self.ledger.charge(LedgerKey::Native, charges.native, anchor, t);
        for (i, amount) in &charges.tokens {
            self.ledger.charge(Self::key_of(p, AssetRef::Token(*i)), *amount, anchor, t);
        }
        self.ledger.charge(LedgerKey::GasCost, charges.gas_cost, anchor, t);
        self.ledger.charge(LedgerKey::Usd, charges.usd, anchor, t);
        if let Some(place) = charges.place {
            // Room was checked under this lock (`has_room`): this cannot fail.
            let _ = self.allowances.record(place, t, charges.approvals.clone(), false, charges.may_revert, |g| {
                let (symbol, decimals) = match g.token_index {
                    Some(i) => (p.doc.tokens[i].symbol.clone(), p.doc.tokens[i].decimals),
                    None => (g.key.token.to_string(), 0),
                };
                let amount = g.op.amount().unwrap_or_default();
                let until = p.doc.valid_until.unwrap_or(u64::MAX);
                (symbol, decimals, t.saturating_add(lifetime(p, g.token_index, amount)).min(until))
            });
        }
        self.remember(p, t, charges.weight);
    }

    /// Record a signature of weight `w` at `t` for the rate limits, keeping the newest
    /// entries whose weights reach the largest `max` of the policy (and at least
    /// [`MIN_RATE_HISTORY`]): older ones can never decide anything.
    fn remember(&mut self, p: &CompiledPolicy, t: u64, w: u64) {
        let w = u32::try_from(w).unwrap_or(u32::MAX);
        match self.recent.back_mut() {
            Some((s, x)) if *s == t => *x = x.saturating_add(w),
            _ => self.recent.push_back((t, w)),
        }
        let keep = p.doc.rate_limits.iter().map(|r| r.max).max().unwrap_or(0).max(MIN_RATE_HISTORY);
        let mut total: u64 = self.recent.iter().map(|&(_, w)| w as u64).sum();
        while let Some(&(_, front)) = self.recent.front() {
            if total - front as u64 >= keep {
                total -= front as u64;
                if let Some((at, _)) = self.recent.pop_front() {
                    self.recent_dropped = Some(self.recent_dropped.map_or(at, |d| d.max(at)));
                }
            } else {
                break;
            }
        }
    }

    /// Charge a revocation sweep's gas cost (not a use, not rate limited).
    pub fn charge_gas(&mut self, cost: U256, anchor: u64, t: u64) {
        self.ledger.charge(LedgerKey::GasCost, cost, anchor, t);
    }

    /// Approximate heap bytes, from lengths (never capacities), so that every replica of a
    /// session — grown step by step or restored from a snapshot — computes the same figure
    /// (the memory budget decides with it). Growable containers count twice their length.
    /// An owner's sweep on credit ([`Registry::prepaid`]) may add the gas cost's line: it is
    /// counted while the session has credit and no such line.
    pub fn footprint(&self) -> usize {
        let gas_line = if self.allowances.prepaid() > 0 && self.ledger.would_add_line(LedgerKey::GasCost) {
            crate::ledger::LINE_BYTES
        } else {
            0
        };
        2 * self.recent.len() * 16 + self.ledger.footprint() + self.allowances.footprint() + gas_line
    }
}

impl Charges {
    /// The amount charged to an asset: a token is its address (RULES §3, one asset across
    /// chains), so every listing of that address counts — a token listed once per chain is
    /// charged under the listing of the request's chain, and a limit naming the other
    /// listing must still see it (found 2026-12-04 by a review: a transfer on chain 10 passed
    /// the limit on chain 1's listing of the same address).
    pub fn of(&self, p: &CompiledPolicy, a: AssetRef) -> U256 {
        match a {
            AssetRef::Native => self.native,
            AssetRef::Token(i) => {
                let address = p.doc.tokens[i].address;
                self.tokens
                    .iter()
                    .filter(|(t, _)| p.doc.tokens.get(*t).is_some_and(|x| x.address == address))
                    .fold(U256::ZERO, |acc, (_, v)| acc.saturating_add(*v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;

    /// Gas's line is kept free for sweeps, which charge it unchecked: one line short of the
    /// ledger's bound with no gas line, a request that would add another line does not fit
    /// (a review of 2026-12-05).
    #[test]
    fn the_gas_line_is_kept_free_for_sweeps() {
        let p = CompiledPolicy::compile(
            crate::policy::file::resolve_text(
                "name='s'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n",
                1_800_000_000,
            )
            .unwrap(),
        )
        .unwrap();
        let mut c = Counters::default();
        for i in 0..crate::ledger::MAX_LINES - 2 {
            let mut b = [0u8; 20];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            assert!(c.ledger.charge(LedgerKey::Token(Address::from(b)), U256::from(1), 0, 0));
        }
        let native = Charges { native: U256::from(1), ..Charges::at(None, 1) };
        assert!(c.has_room(&p, &native, 0), "the native line and gas's fit");
        assert!(c.ledger.charge(LedgerKey::Native, U256::from(1), 0, 0));
        let usd = Charges { usd: U256::from(1), ..Charges::at(None, 1) };
        assert!(!c.has_room(&p, &usd, 0), "the last line is gas's");
        c.charge_gas(U256::from(1), 0, 0);
        assert!(!c.has_room(&p, &usd, 0), "full");
        assert!(c.has_room(&p, &native, 0), "lines already there still take charges");
    }
}
