//! The registry after a request (R-APP-1, R-APP-5, RULES.md §6): room for its writes, each
//! allowance it raises within the per-spender cap at its worst case, and the exposure — every
//! allowance at its worst case over the histories that include the request — within the
//! ceiling unless the request does not raise it.

use super::compile::{AssetRef, CompiledPolicy};
use super::engine::{Charges, Context};
use super::state::Counters;
use crate::allowance::worst::{worst, Request};
use crate::allowance::{fmt_usd, price_of, value_usd, Exposure, GrantOp, Key, Registry, MAX_WRITES};
use crate::error::{Denial, ErrorCode};
use std::collections::BTreeSet;

/// Exposure over `keys`: each key's worst case (for `req`) at the price table.
pub fn exposure_of<'a>(
    p: &CompiledPolicy,
    reg: &Registry,
    keys: impl Iterator<Item = &'a Key>,
    now: u64,
    req: Option<Request<'_>>,
) -> Exposure {
    let mut x = Exposure::default();
    for k in keys {
        let amount = worst(reg, k, now, req);
        if amount.is_zero() {
            continue;
        }
        match price_of(p, k.chain_id, &k.token) {
            Some((price, decimals)) => x.usd = x.usd.saturating_add(value_usd(amount, decimals, price)),
            None => {
                let name = reg.keys().find(|(kk, _)| *kk == k).map(|(_, m)| m.symbol.clone());
                let name = name.unwrap_or_else(|| k.token.to_string());
                if !x.unpriced.contains(&name) {
                    x.unpriced.push(name);
                }
            }
        }
    }
    x
}

/// The exposure of a session now (no request): every key at its worst case from now on.
pub fn exposure_now(p: &CompiledPolicy, reg: &Registry, now: u64) -> Exposure {
    exposure_of(p, reg, reg.keys().map(|(k, _)| k), now, None)
}

pub(crate) fn check_allowances(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    charges: &Charges,
) -> Result<(), Denial> {
    if charges.approvals.is_empty() {
        return Ok(());
    }
    let Some(place) = charges.place else { return Ok(()) };
    let reg = &c.allowances;
    if !reg.has_room(charges.approvals.len(), ctx.now) {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "allowances",
            format!(
                "the allowance registry holds {MAX_WRITES} approvals, revocations and permits, its maximum; this session can sign no more of them"
            ),
        ));
    }
    let with = Request { place, grants: &charges.approvals };
    let without = Request { place, grants: &[] };
    let touched: BTreeSet<Key> = charges.approvals.iter().map(|g| g.key).collect();
    // A just-in-time `increaseAllowance` (R-APP-2) adds to whatever may be outstanding at
    // worst before it: together they must stay within what the next call consumes.
    for (gi, bound, rule) in &charges.jit_adds {
        let Some(g) = charges.approvals.get(*gi) else { continue };
        let GrantOp::Add(added) = g.op else { continue };
        let before = worst(reg, &g.key, ctx.now, Some(Request { place, grants: &charges.approvals[..*gi] }));
        if before.saturating_add(added) > *bound {
            return Err(Denial::rule(
                ErrorCode::UnlimitedApproval,
                rule.clone(),
                format!(
                    "increaseAllowance of {added} to {} adds to an allowance that may already be {before} (over every history consistent with what this session signed); together they exceed what the next call consumes plus the tolerance ({bound})",
                    g.key.spender
                ),
            ));
        }
    }
    // Per-spender maximum for what `increaseAllowance` raises (R-APP-1).
    for g in charges.approvals.iter().filter(|g| matches!(g.op, GrantOp::Add(_))) {
        let Some(t) = g.token_index else { continue };
        let Some(cap) = p.approval_caps[t] else { continue };
        let after = worst(reg, &g.key, ctx.now, Some(with));
        if after > cap {
            let idx = p.doc.approvals.caps.iter().position(|c| c.token == p.doc.tokens[t].symbol).unwrap_or(0);
            return Err(Denial::rule(
                ErrorCode::UnlimitedApproval,
                format!("approvals.caps[{idx}]"),
                format!(
                    "{} would bring the allowance of {} to {} at worst (over every history consistent with what this session signed), above the per-spender cap {}",
                    g.via,
                    g.key.spender,
                    p.fmt_amount(AssetRef::Token(t), after),
                    p.fmt_amount(AssetRef::Token(t), cap)
                ),
            ));
        }
    }
    let Some(ceiling) = p.doc.exposure_ceiling else { return Ok(()) };
    let raised: Vec<&Key> =
        touched.iter().filter(|k| worst(reg, k, ctx.now, Some(with)) > worst(reg, k, ctx.now, Some(without))).collect();
    if raised.is_empty() {
        return Ok(());
    }
    for k in &raised {
        if price_of(p, k.chain_id, &k.token).is_none() {
            let name = charges
                .approvals
                .iter()
                .find(|g| g.key == **k)
                .and_then(|g| g.token_index)
                .map(|t| p.doc.tokens[t].symbol.clone())
                .unwrap_or_else(|| k.token.to_string());
            return Err(Denial::rule(
                ErrorCode::ExposureCeiling,
                "prices",
                format!("{name} has no price in the price table: with an exposure ceiling, its approvals cannot be valued and are denied"),
            ));
        }
    }
    let keys: BTreeSet<Key> = reg.keys().map(|(k, _)| *k).chain(touched.iter().copied()).collect();
    let after = exposure_of(p, reg, keys.iter(), ctx.now, Some(with));
    if !after.unpriced.is_empty() {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "prices",
            format!(
                "outstanding approvals of {} have no price in the price table, so the exposure cannot be valued; revoke them or price them",
                after.unpriced.join(", ")
            ),
        ));
    }
    let before = exposure_of(p, reg, keys.iter(), ctx.now, Some(without));
    if after.usd > ceiling && after.usd > before.usd {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            format!(
                "outstanding approvals would be worth {} at worst (every allowance in the history that is worst for it), above the ceiling {} (without this request: {})",
                fmt_usd(after.usd),
                fmt_usd(ceiling),
                fmt_usd(before.usd)
            ),
        ));
    }
    Ok(())
}
