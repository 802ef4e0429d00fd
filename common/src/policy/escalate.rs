//! Escalation (R-POL-10): whether an allowed request must first be approved by the owner.
//!
//! Pure, like the engine: the enclave asks this after the policy allowed a request, holds
//! the request as pending when it answers `Some`, and signs it only after the owner's
//! `approve_pending` of exactly its digest (re-checking every rule and charging then).

use super::compile::CompiledPolicy;
use super::engine::Charges;
use crate::allowance::{fmt_usd, value_usd};
use crate::error::{Denial, ErrorCode};
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

/// `Some(pending_approval denial)` when the request is over an `escalate` threshold.
pub fn escalation(p: &CompiledPolicy, charges: &Charges) -> Option<Denial> {
    let e = p.doc.escalate.as_ref()?;
    if let (Some(v), Some(a)) = (&e.above_value, p.escalate_asset) {
        let asked = charges.of(a);
        if asked > v.max {
            return Some(Denial::rule(
                ErrorCode::PendingApproval,
                "escalate.above_value",
                format!("the request moves {}, above {}", p.fmt_amount(a, asked), p.fmt_amount(a, v.max)),
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
        if usd > limit {
            return Some(Denial::rule(
                ErrorCode::PendingApproval,
                "escalate.above_usd",
                format!("the request moves {}, above {}", fmt_usd(usd), fmt_usd(limit)),
            ));
        }
    }
    None
}
