//! The registry after a request (R-APP-1, R-APP-5, RULES.md §6): room for its writes, each
//! allowance it raises within the per-spender cap at its worst case, and the exposure — every
//! allowance at its worst case over the histories that include the request — within the
//! ceiling unless the request does not raise it.

use super::compile::{AssetRef, CompiledPolicy};
use super::engine::{Charges, Context};
use super::state::Counters;
use crate::allowance::aggregate::{holdings_of, Raise};
use crate::allowance::worst::{worst, Request};
use crate::allowance::{fmt_usd, price_of, value_usd, Exposure, Grant, GrantOp, Key, Place, Registry, MAX_WRITES};
use crate::error::{Denial, ErrorCode};
use alloy_primitives::U256;
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

/// Signed items the request would take the place of: those at the same nonce (a
/// replacement — only one of them can be mined). A permit floats and displaces nothing.
fn displaced_at(reg: &Registry, place: Place) -> Vec<(&[Grant], bool)> {
    match place {
        Place::Floating { .. } => Vec::new(),
        _ => reg.items.iter().filter(|i| i.place == place).map(|i| (i.grants.as_slice(), i.may_revert)).collect(),
    }
}

/// Without the request, at its position: one of the displaced items mined there (the
/// worst of them), or, with none, a transaction that writes no approval.
fn alternatives<'a>(place: Place, displaced: &[(&'a [Grant], bool)]) -> Vec<Request<'a>> {
    if displaced.is_empty() {
        vec![Request { place, grants: &[], may_revert: false }]
    } else {
        displaced.iter().map(|&(grants, may_revert)| Request { place, grants, may_revert }).collect()
    }
}

/// Every key the request may raise: those it grants, and those whose revocation it may
/// displace by taking that revocation's nonce (review finding 4: the replaced revocation
/// then never happens) — with the worst case each reaches, against the same position
/// without the request. `after`: each key's worst case with the request ([`worst_with`]).
fn raised_keys(
    reg: &Registry,
    keys: &BTreeSet<Key>,
    after: &[U256],
    now: u64,
    alts: &[Request<'_>],
) -> Vec<(Key, U256)> {
    keys.iter()
        .zip(after)
        .filter_map(|(k, &after)| {
            let before = alts.iter().map(|a| worst(reg, k, now, Some(*a))).max().unwrap_or_default();
            (after > before).then_some((*k, after))
        })
        .collect()
}

/// Each key's worst case with the request, in the keys' order (computed once for
/// [`raised_keys`] and [`capped`]).
fn worst_with(reg: &Registry, keys: &BTreeSet<Key>, now: u64, with: Request<'_>) -> Vec<U256> {
    keys.iter().map(|k| worst(reg, k, now, Some(with))).collect()
}

/// Whether some key's worst case with the request, or a token's sum over its keys, reached
/// 2^256 − 1 (where `worst` and the sums cap): what the session holds then cannot be
/// measured (a review of 2026-12-05: two signature-transfer permits of 2^256 − 2 to two
/// spenders were valued at the cap with and without the second, so it counted as raising
/// nothing and no ceiling was checked).
fn capped(keys: &BTreeSet<Key>, after: &[U256]) -> bool {
    let mut sums: std::collections::BTreeMap<(u64, alloy_primitives::Address), U256> = Default::default();
    for (k, &v) in keys.iter().zip(after) {
        let e = sums.entry((k.chain_id, k.token)).or_default();
        *e = e.saturating_add(v);
        if v == U256::MAX || *e == U256::MAX {
            return true;
        }
    }
    false
}

/// Whether an alternative at the request's position leaves every key the request or the
/// items there write at least as high, none of them capped: then the request raises nothing,
/// at any prices, however the rest is capped. Keys written neither by the request nor by an
/// item at its position are the same with either (a review: comparing every key refused an
/// agent's revocation of one unlimited approval beside another).
fn dominated(
    reg: &Registry,
    now: u64,
    with: Request<'_>,
    alts: &[Request<'_>],
    displaced: &[(&[Grant], bool)],
) -> bool {
    let touched: BTreeSet<Key> = with
        .grants
        .iter()
        .map(|g| g.key)
        .chain(displaced.iter().flat_map(|(gs, _)| gs.iter().map(|g| g.key)))
        .collect();
    let after: Vec<U256> = touched.iter().map(|k| worst(reg, k, now, Some(with))).collect();
    if after.contains(&U256::MAX) {
        return false;
    }
    alts.iter().any(|a| touched.iter().zip(&after).all(|(k, v)| worst(reg, k, now, Some(*a)) >= *v))
}

fn keys_of(reg: &Registry, charges: &Charges) -> BTreeSet<Key> {
    reg.keys().map(|(k, _)| *k).chain(charges.approvals.iter().map(|g| g.key)).collect()
}

/// What an allowed request may raise, for the check across sessions (RULES.md §6a):
/// `None` when it raises nothing (no approval written, none displaced, no key raised).
pub fn raise_of(c: &Counters, ctx: &Context, charges: &Charges) -> Option<Raise> {
    let place = charges.place?;
    let reg = &c.allowances;
    let displaced = displaced_at(reg, place);
    if charges.approvals.is_empty() && displaced.is_empty() {
        return None;
    }
    let alts = alternatives(place, &displaced);
    let with = Request { place, grants: &charges.approvals, may_revert: charges.may_revert };
    let keys = keys_of(reg, charges);
    let after = worst_with(reg, &keys, ctx.now, with);
    let saturated = capped(&keys, &after);
    let dominated = dominated(reg, ctx.now, with, &alts, &displaced);
    if raised_keys(reg, &keys, &after, ctx.now, &alts).is_empty() && displaced.is_empty() && (!saturated || dominated) {
        return None;
    }
    Some(Raise {
        after: holdings_of(reg, keys.iter(), ctx.now, Some(with)),
        before: alts.iter().map(|a| holdings_of(reg, keys.iter(), ctx.now, Some(*a))).collect(),
        saturated,
        dominated,
    })
}

pub(crate) fn check_allowances(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    charges: &Charges,
) -> Result<(), Denial> {
    let Some(place) = charges.place else { return Ok(()) };
    let reg = &c.allowances;
    let displaced = displaced_at(reg, place);
    if charges.approvals.is_empty() && displaced.is_empty() {
        return Ok(());
    }
    let alternatives = alternatives(place, &displaced);
    if !charges.approvals.is_empty() && !reg.has_room_beside_credit(&place, &charges.approvals, ctx.now) {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "allowances",
            format!(
                "the allowance registry holds {MAX_WRITES} approvals, revocations and permits, its maximum, with the revocations its approvals keep for the owner's sweep ({} prepaid); this session can sign no more of them",
                reg.prepaid()
            ),
        ));
    }
    let with = Request { place, grants: &charges.approvals, may_revert: charges.may_revert };
    let keys = keys_of(reg, charges);
    let worst_after = worst_with(reg, &keys, ctx.now, with);
    let raised = raised_keys(reg, &keys, &worst_after, ctx.now, &alternatives);
    // A just-in-time `increaseAllowance` (R-APP-2) adds to whatever may be outstanding at
    // worst before it: together they must stay within what the next call consumes.
    for (gi, bound, rule) in &charges.jit_adds {
        let Some(g) = charges.approvals.get(*gi) else { continue };
        let GrantOp::Add(added) = g.op else { continue };
        let before =
            worst(reg, &g.key, ctx.now, Some(Request { place, grants: &charges.approvals[..*gi], may_revert: false }));
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
    // Per-spender maxima (R-APP-1): what `increaseAllowance` adds up to, or what any key
    // the request raises (a displaced revocation included) reaches, at worst.
    let adds = charges
        .approvals
        .iter()
        .filter(|g| matches!(g.op, GrantOp::Add(_)) && !raised.iter().any(|(k, _)| *k == g.key))
        .map(|g| (g.key, worst(reg, &g.key, ctx.now, Some(with))))
        .collect::<Vec<_>>();
    for (k, after) in raised.iter().chain(adds.iter()) {
        let Some(t) = token_of(p, k) else { continue };
        let Some(cap) = p.approval_caps[t] else { continue };
        if *after > cap {
            let idx = p.doc.approvals.caps.iter().position(|c| c.token == p.doc.tokens[t].symbol).unwrap_or(0);
            let via = charges
                .approvals
                .iter()
                .find(|g| g.key == *k)
                .map_or("this request's nonce".to_string(), |g| g.via.to_string());
            return Err(Denial::rule(
                ErrorCode::UnlimitedApproval,
                format!("approvals.caps[{idx}]"),
                format!(
                    "{via} would bring the allowance of {} to {} at worst (over every history consistent with what this session signed), above the per-spender cap {}",
                    k.spender,
                    p.fmt_amount(AssetRef::Token(t), *after),
                    p.fmt_amount(AssetRef::Token(t), cap)
                ),
            ));
        }
    }
    let Some(ceiling) = p.doc.exposure_ceiling else { return Ok(()) };
    let unmeasured = capped(&keys, &worst_after);
    let dominated = || dominated(reg, ctx.now, with, &alternatives, &displaced);
    if raised.is_empty() && displaced.is_empty() && (!unmeasured || dominated()) {
        return Ok(());
    }
    for (k, _) in &raised {
        if price_of(p, k.chain_id, &k.token).is_none() {
            let name = charges
                .approvals
                .iter()
                .find(|g| g.key == *k)
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
    // Valued past 2^256 − 1, or a key or sum at its cap, every alternative saturates alike:
    // not checkable, refused unless an alternative leaves every key the request touches as
    // high (as the exposure book refuses it; a review of 2026-12-05).
    if (unmeasured || (after.usd > ceiling && after.usd == U256::MAX)) && !dominated() {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            "outstanding approvals would be worth 2^256 - 1 USD units or more, so the ceiling cannot be checked; revoke the approvals of amounts beyond any token's supply",
        ));
    }
    let before =
        alternatives.iter().map(|a| exposure_of(p, reg, keys.iter(), ctx.now, Some(*a)).usd).max().unwrap_or_default();
    if after.usd > ceiling && after.usd > before {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            format!(
                "outstanding approvals would be worth {} at worst (every allowance in the history that is worst for it), above the ceiling {} (without this request: {})",
                fmt_usd(after.usd),
                fmt_usd(ceiling),
                fmt_usd(before)
            ),
        ));
    }
    Ok(())
}

/// The policy's index of the token a key is about (by chain and address).
fn token_of(p: &CompiledPolicy, k: &Key) -> Option<usize> {
    p.doc.tokens.iter().position(|t| t.address == k.token && t.chain_id.is_none_or(|c| c == k.chain_id))
}
