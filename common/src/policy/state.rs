//! Per-session counters the engine checks and the signing path charges (R-POL-11).

use super::compile::AssetRef;
use super::compile::CompiledPolicy;
use super::engine::Charges;
use crate::allowance::Registry;
use crate::period::Period;
use alloy_primitives::U256;
use std::collections::VecDeque;

/// Spend in one period of a periodic cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeriodCounter {
    pub index: u64,
    pub spent: U256,
}

impl PeriodCounter {
    /// What has been spent in the period containing `now` (0 if that is a new period).
    pub fn spent_at(&self, period: Period, anchor: u64, now: u64) -> U256 {
        if period.index(anchor, now) == self.index {
            self.spent
        } else {
            U256::ZERO
        }
    }

    fn charge(&mut self, period: Period, anchor: u64, now: u64, amount: U256) {
        let idx = period.index(anchor, now);
        if idx != self.index {
            self.index = idx;
            self.spent = U256::ZERO;
        }
        self.spent = self.spent.saturating_add(amount);
    }
}

/// Everything the policy engine remembers about a session.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Signatures made.
    pub uses: u64,
    /// Parallel to `policy.limits`.
    pub limits: Vec<PeriodCounter>,
    /// Parallel to `policy.streams`: total spent.
    pub streams: Vec<U256>,
    /// Parallel to `policy.gas.cost_limits`.
    pub gas: Vec<PeriodCounter>,
    /// Times of recent signatures, oldest first (bounded by the largest rate limit).
    pub recent: VecDeque<u64>,
    /// Every approval and permit the session signed (R-APP-4).
    pub allowances: Registry,
}

impl Counters {
    pub fn new(p: &CompiledPolicy) -> Counters {
        Counters {
            uses: 0,
            limits: vec![PeriodCounter::default(); p.doc.limits.len()],
            streams: vec![U256::ZERO; p.doc.streams.len()],
            gas: vec![PeriodCounter::default(); p.doc.gas.cost_limits.len()],
            recent: VecDeque::new(),
            allowances: Registry::default(),
        }
    }

    /// Counters for a new policy on the same session: a cap that exists in both policies
    /// (same asset and period) keeps what was spent, so an update never forgives spend.
    pub fn carry_over(&self, old: &CompiledPolicy, new: &CompiledPolicy) -> Counters {
        let mut c = Counters::new(new);
        c.uses = self.uses;
        c.recent = self.recent.clone();
        // Approvals are facts on chain, whatever the policy says now.
        c.allowances = self.allowances.clone();
        for (i, l) in new.doc.limits.iter().enumerate() {
            if let Some(j) = old.doc.limits.iter().position(|o| o.asset == l.asset && o.period == l.period) {
                c.limits[i] = self.limits[j];
            }
        }
        for (i, s) in new.doc.streams.iter().enumerate() {
            if let Some(j) = old.doc.streams.iter().position(|o| o.asset == s.asset) {
                c.streams[i] = self.streams[j];
            }
        }
        for (i, g) in new.doc.gas.cost_limits.iter().enumerate() {
            if let Some(j) = old.doc.gas.cost_limits.iter().position(|o| o.period == g.period) {
                c.gas[i] = self.gas[j];
            }
        }
        c
    }

    /// Charge gas cost alone (a revocation sweep: not a use, not rate limited).
    pub fn charge_gas(&mut self, p: &CompiledPolicy, cost: U256, anchor: u64, now: u64) {
        for (i, g) in p.doc.gas.cost_limits.iter().enumerate() {
            if !cost.is_zero() {
                self.gas[i].charge(g.period, anchor, now, cost);
            }
        }
    }

    /// Signatures within the last `window` seconds before `now`. `recent` is kept
    /// non-decreasing, so this is a binary search: O(log n), not a scan of the window.
    pub fn recent_within(&self, now: u64, window: u64) -> u64 {
        let from = now.saturating_sub(window);
        (self.recent.len() - self.recent.partition_point(|&t| t <= from)) as u64
    }

    /// Apply an allowed request's charges. Called only after the engine allowed it, under
    /// the same lock, so check-and-charge is one step.
    pub fn charge(&mut self, p: &CompiledPolicy, charges: &Charges, anchor: u64, now: u64) {
        self.uses = self.uses.saturating_add(1);
        for (i, l) in p.doc.limits.iter().enumerate() {
            let amount = charges.of(p.limit_assets[i]);
            if !amount.is_zero() {
                self.limits[i].charge(l.period, anchor, now, amount);
            }
        }
        for i in 0..p.doc.streams.len() {
            let amount = charges.of(p.stream_assets[i]);
            self.streams[i] = self.streams[i].saturating_add(amount);
        }
        for (i, g) in p.doc.gas.cost_limits.iter().enumerate() {
            if !charges.gas_cost.is_zero() {
                self.gas[i].charge(g.period, anchor, now, charges.gas_cost);
            }
        }
        // The engine checked that the registry has room (`check_allowances`) under this lock.
        let _ = self.allowances.apply(p, &charges.approvals, now);
        let keep = p.doc.rate_limits.iter().map(|r| r.max).max().unwrap_or(0) as usize;
        let horizon = p.doc.rate_limits.iter().map(|r| r.window).max().unwrap_or(0);
        if keep > 0 {
            // Never let a clock step backwards break the ordering the search relies on.
            let t = self.recent.back().map_or(now, |&b| b.max(now));
            self.recent.push_back(t);
            while self.recent.len() > keep || self.recent.front().is_some_and(|&t| t + horizon <= now) {
                self.recent.pop_front();
            }
        }
    }
}

impl Charges {
    /// The amount charged to an asset.
    pub fn of(&self, a: AssetRef) -> U256 {
        match a {
            AssetRef::Native => self.native,
            AssetRef::Token(i) => self.tokens.iter().find(|(t, _)| *t == i).map(|(_, v)| *v).unwrap_or(U256::ZERO),
        }
    }
}
