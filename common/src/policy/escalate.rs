//! Escalation (R-POL-10, RULES.md §8): whether an allowed request must first be approved by
//! the owner.
//!
//! Pure, like the engine. The thresholds count what the session moved in the current period
//! (`escalate.per`, default a day) plus the request, from the session's ledger: a payment
//! split into many small requests escalates as soon as their sum crosses the threshold.

use super::compile::CompiledPolicy;
use super::engine::{Charges, Context};
use super::state::Counters;
use crate::allowance::{fmt_usd, value_usd};
use crate::error::{Denial, ErrorCode};
use crate::ledger::LedgerKey;
use crate::period::Period;
use alloy_primitives::U256;

/// The USD value of a request's charges (native value, token transfers and approvals) at
/// the price table, rounded up, and the charged assets the table does not price.
pub fn charges_usd(p: &CompiledPolicy, charges: &Charges) -> (U256, Vec<String>) {
    let mut usd = U256::ZERO;
    let mut unpriced = Vec::new();
    if !charges.native.is_zero() {
        match p.native_price {
            Some(price) => usd = usd.saturating_add(value_usd(charges.native, 18, price)),
            None => unpriced.push("ETH".to_string()),
        }
    }
    for (t, amount) in &charges.tokens {
        if amount.is_zero() {
            continue;
        }
        let tok = &p.doc.tokens[*t];
        match p.token_prices[*t] {
            Some(price) => usd = usd.saturating_add(value_usd(*amount, tok.decimals, price)),
            None => unpriced.push(tok.symbol.clone()),
        }
    }
    (usd, unpriced)
}

/// What the session moved in the current period `per`, valued now: each asset's ledger line
/// at the price table in force (a token listed more than once, at its highest listing), so
/// an update that adds or changes prices values what already moved at them — a USD figure
/// kept per request at the prices of its day let an owner's new `above_usd` wave through a
/// threshold's worth after unpriced moves (a review of 2026-12-05). `Err`: the assets moved
/// that the table does not price.
fn moved_usd(p: &CompiledPolicy, c: &Counters, ctx: &Context, per: Period) -> Result<U256, Vec<String>> {
    let mut usd = U256::ZERO;
    let mut unpriced = Vec::new();
    for key in c.ledger.keys() {
        let moved = c.ledger.spent(key, per, ctx.anchor, ctx.now);
        if moved.is_zero() {
            continue;
        }
        let worth = match key {
            LedgerKey::Native => p.native_price.map(|price| value_usd(moved, 18, price)),
            LedgerKey::Token(a) => p
                .tokens_by_address
                .get(&a)
                .into_iter()
                .flatten()
                .filter_map(|&t| p.token_prices[t].map(|price| value_usd(moved, p.doc.tokens[t].decimals, price)))
                .max(),
            LedgerKey::GasCost | LedgerKey::Usd => continue,
        };
        match (worth, key) {
            (Some(w), _) => usd = usd.saturating_add(w),
            (None, LedgerKey::Token(a)) => unpriced.push(a.to_string()),
            (None, _) => unpriced.push("ETH".into()),
        }
    }
    if unpriced.is_empty() {
        Ok(usd)
    } else {
        Err(unpriced)
    }
}

/// The period escalation thresholds count over.
pub fn period(p: &CompiledPolicy) -> Period {
    p.doc.escalate.as_ref().and_then(|e| e.per).unwrap_or(Period::Day)
}

/// `Some(pending_approval denial)` when the request brings what the session moved in the
/// current period over an `escalate` threshold.
pub fn escalation(p: &CompiledPolicy, c: &Counters, ctx: &Context, charges: &Charges) -> Option<Denial> {
    let e = p.doc.escalate.as_ref()?;
    let per = period(p);
    let over = |what: String| {
        if per == Period::Session {
            format!("{what} in this session")
        } else {
            format!("{what} this {per}")
        }
    };
    if let (Some(v), Some(a)) = (&e.above_value, p.escalate_asset) {
        let asked = charges.of(p, a);
        let moved = c.ledger.spent(Counters::key_of(p, a), per, ctx.anchor, ctx.now);
        if !asked.is_zero() && moved.saturating_add(asked) > v.max {
            return Some(Denial::rule(
                ErrorCode::PendingApproval,
                "escalate.above_value",
                over(format!(
                    "the request moves {} after {} moved, above {}",
                    p.fmt_amount(a, asked),
                    p.fmt_amount(a, moved),
                    p.fmt_amount(a, v.max)
                )),
            ));
        }
    }
    if let Some(limit) = e.above_usd {
        let (usd, unpriced) = charges_usd(p, charges);
        if !unpriced.is_empty() {
            return Some(Denial::rule(
                ErrorCode::PendingApproval,
                "escalate.above_usd",
                format!("the request moves {}, which the price table does not price", unpriced.join(", ")),
            ));
        }
        if usd.is_zero() {
            return None;
        }
        let moved = match moved_usd(p, c, ctx, per) {
            Ok(m) => m,
            Err(unpriced) => {
                return Some(Denial::rule(
                    ErrorCode::PendingApproval,
                    "escalate.above_usd",
                    over(format!(
                        "{} moved, which the price table does not price, so what moved cannot be valued",
                        // At most five: the reason is kept with its held request.
                        crate::allowance::aggregate::listed(
                            &unpriced[..unpriced.len().min(5)],
                            unpriced.len().saturating_sub(5) as u64
                        )
                    )),
                ));
            }
        };
        if moved.saturating_add(usd) > limit {
            return Some(Denial::rule(
                ErrorCode::PendingApproval,
                "escalate.above_usd",
                over(format!(
                    "the request moves {} after {} moved, above {}",
                    fmt_usd(usd),
                    fmt_usd(moved),
                    fmt_usd(limit)
                )),
            ));
        }
    }
    None
}
