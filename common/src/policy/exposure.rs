//! The registry after a request (R-APP-1, R-APP-5, RULES.md §6): room for its writes, each
//! allowance it raises within the per-spender cap at its worst case, and the exposure — every
//! allowance at its worst case over the histories that include the request — within the
//! ceiling unless the request does not raise it.

use super::compile::{AssetRef, CompiledPolicy};
use super::engine::{Charges, Context};
use super::state::Counters;
use crate::allowance::aggregate::{holdings_of, Raise};
use crate::allowance::worst::{worst, Request};
use crate::allowance::{
    fmt_usd, price_of, value_usd, AllowanceKind, Exposure, Grant, GrantOp, Key, Place, Registry, MAX_WRITES,
};
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

/// Whether every state the request makes possible was possible without it (RULES.md §6,
/// "Exposure"): in every history, at every point, each key is at most what it is with an
/// alternative at the request's position — one of the items signed there (or none) — key
/// by key in the same history. Only then is the request exempt from the ceilings: comparing
/// figures is not enough, as each key's worst case may come from another history, and a
/// request that raises no key's worst case can still make them coincide (a review of
/// 2026-12-07: gaps filled, a permit, a replacement each put 2–4× a ceiling on chain).
///
/// Each outcome of the request (its writes, and none when it may revert) must be covered
/// by an alternative ([`covered`]): key by key, what its writes leave is at most what the
/// alternative's leave, from any amount before them — a fee bump, revocations, a lower
/// replacement, a plain transaction in place of an `increaseAllowance`. Later writes are
/// monotone in the amount they start from, so a key lower at the request's position stays
/// lower after it.
fn adds_no_state(with: Request<'_>, displaced: &[(&[Grant], bool)]) -> bool {
    let nothing: &[Grant] = &[];
    let alternatives: Vec<&[Grant]> = if displaced.is_empty() {
        vec![nothing]
    } else {
        let reverts = displaced.iter().any(|&(_, may_revert)| may_revert);
        displaced.iter().map(|&(grants, _)| grants).chain(reverts.then_some(nothing)).collect()
    };
    let outcomes = std::iter::once(with.grants).chain(with.may_revert.then_some(nothing));
    outcomes.into_iter().all(|o| alternatives.iter().any(|alt| covered(o, alt)))
}

/// Whether writes `o` at a position leave every key, in every history, at most where `alt`
/// there leaves it ([`adds_no_state`]): key by key, from any amount before them. An
/// alternative that cancels Permit2 nonces is covered only by itself; `o`'s cancellations
/// only lower what follows, and are left out of the comparison.
fn covered(o: &[Grant], alt: &[Grant]) -> bool {
    if o == alt {
        return true;
    }
    if alt.iter().any(|g| matches!(g.op, GrantOp::Invalidate(_))) {
        return false;
    }
    let keys: BTreeSet<Key> = o.iter().chain(alt).map(|g| g.key).collect();
    keys.iter().all(|k| match (effect(o, k), effect(alt, k)) {
        (Some(Effect::Exactly(z)), _) if z.is_zero() => true,
        (Some(x), Some(y)) => x.at_most(y),
        // A write that ends on chain by itself (a Permit2 authority, a signature transfer):
        // only the same writes of the key, in the same order, leave it as high.
        _ => {
            let of = |w: &[Grant]| w.iter().filter(|g| g.key == *k).map(|g| (g.op, g.end)).collect::<Vec<_>>();
            of(o) == of(alt)
        }
    })
}

/// What a sequence of writes does to one key's amount `x`: `x + d`, or exactly `c`.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Plus(U256),
    Exactly(U256),
}

impl Effect {
    /// At most `other`'s result from every amount.
    fn at_most(self, other: Effect) -> bool {
        match (self, other) {
            (Effect::Exactly(c), Effect::Exactly(d) | Effect::Plus(d)) | (Effect::Plus(c), Effect::Plus(d)) => c <= d,
            (Effect::Plus(_), Effect::Exactly(_)) => false,
        }
    }
}

/// The writes of `w` to key `k`, folded ([`Effect`]); `None` when one of them, not a zero,
/// is of a Permit2 kind or ends on chain by itself (an amount that lapses at the end of the
/// write that last set it compares with nothing but the same writes), or a sum reaches
/// 2^256 − 1.
fn effect(w: &[Grant], k: &Key) -> Option<Effect> {
    let plain = matches!(k.kind, AllowanceKind::Erc20);
    let mut e = Effect::Plus(U256::ZERO);
    for g in w.iter().filter(|g| g.key == *k) {
        let lasting = plain && g.end.is_none();
        e = match g.op {
            GrantOp::Invalidate(_) => e,
            GrantOp::Set(v) if v.is_zero() => Effect::Exactly(v),
            GrantOp::Add(v) if v.is_zero() => e,
            GrantOp::Set(v) if lasting => Effect::Exactly(v),
            GrantOp::Add(v) if lasting => match e {
                Effect::Plus(d) => Effect::Plus(d.checked_add(v).filter(|s| *s != U256::MAX)?),
                Effect::Exactly(c) => Effect::Exactly(c.checked_add(v).filter(|s| *s != U256::MAX)?),
            },
            _ => return None,
        };
    }
    Some(e)
}

fn keys_of(reg: &Registry, charges: &Charges) -> BTreeSet<Key> {
    reg.keys().map(|(k, _)| *k).chain(charges.approvals.iter().map(|g| g.key)).collect()
}

/// What an allowed request may raise, for the check across sessions (RULES.md §6a):
/// `None` when it makes no state possible that was not possible without it
/// ([`adds_no_state`]; no approval written and none displaced among them).
pub fn raise_of(c: &Counters, ctx: &Context, charges: &Charges) -> Option<Raise> {
    let place = charges.place?;
    let reg = &c.allowances;
    let displaced = displaced_at(reg, place);
    if charges.approvals.is_empty() && displaced.is_empty() {
        return None;
    }
    let with = Request { place, grants: &charges.approvals, may_revert: charges.may_revert };
    if adds_no_state(with, &displaced) {
        return None;
    }
    let keys = keys_of(reg, charges);
    let after = worst_with(reg, &keys, ctx.now, with);
    Some(Raise { after: holdings_of(reg, keys.iter(), ctx.now, Some(with)), saturated: capped(&keys, &after) })
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
    if adds_no_state(with, &displaced) {
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
    // Valued past 2^256 − 1, or a key or sum at its cap: not checkable, refused (as the
    // exposure book refuses it; a review of 2026-12-05).
    if capped(&keys, &worst_after) || (after.usd > ceiling && after.usd == U256::MAX) {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            "outstanding approvals would be worth 2^256 - 1 USD units or more, so the ceiling cannot be checked; revoke the approvals of amounts beyond any token's supply",
        ));
    }
    // Every state the request makes possible is at a point at or after it in a history
    // that includes it: each key's worst case there bounds it, and so does their sum —
    // whatever the figure was without it (the states without it stay as they were).
    if after.usd > ceiling {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            format!(
                "outstanding approvals would be worth {} at worst (every allowance in the history that is worst for it, from this request on), above the ceiling {}; revoke approvals first (a revocation always passes)",
                fmt_usd(after.usd),
                fmt_usd(ceiling)
            ),
        ));
    }
    Ok(())
}

/// The policy's index of the token a key is about (by chain and address).
fn token_of(p: &CompiledPolicy, k: &Key) -> Option<usize> {
    p.doc.tokens.iter().position(|t| t.address == k.token && t.chain_id.is_none_or(|c| c == k.chain_id))
}
