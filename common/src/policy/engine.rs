//! The policy engine: pure, no I/O, the session time passed in (RULES.md).
//!
//! `evaluate` decides; it never mutates. The caller charges [`Charges`] into the session's
//! [`Counters`] under the same lock (R-POL-11). Deny by default; every applicable rule
//! must pass; a denial names the rule that failed.

use super::calls::{check_call, erc20_effect, Erc20};
use super::compile::{AssetRef, CompiledPolicy};
use super::exposure::check_allowances;
use super::state::Counters;
use crate::allowance::{Grant, GrantOp, Place};
use crate::error::{Denial, ErrorCode};
use crate::ledger::LedgerKey;
use crate::period::{format_time, Period};
use crate::tx::{Call, Gas};
use crate::units::format_duration;
use crate::userop::{EntryPointVersion, UserOperationRequest};
use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};

/// Who and when: the facts a decision depends on besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The session time of the decision (RULES.md §1), unix seconds.
    pub now: u64,
    /// Period anchor: the session's start.
    pub anchor: u64,
    pub owner: Address,
    /// The session's own address (`$account`).
    pub account: Address,
}

/// What a request would do.
#[derive(Debug, Clone)]
pub struct Operation<'a> {
    pub chain_id: u64,
    pub calls: &'a [Call],
    pub gas: Option<Gas>,
    /// Where it sits on chain (a transaction's nonce, a user operation's nonce).
    pub place: Place,
    /// Whose tokens the calls move: the session's address, or a user operation's sender.
    pub holder: Address,
}

/// What an allowed request costs, by asset, and the approvals it grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charges {
    pub native: U256,
    /// (token index, amount); a few entries at most.
    pub tokens: Vec<(usize, U256)>,
    pub gas_cost: U256,
    /// The USD value of what it moves at the price table (RULES.md §3), rounded up.
    pub usd: U256,
    /// Approvals and permits, in request order, for the allowance registry (R-APP-4).
    pub approvals: Vec<Grant>,
    /// Where the request sits, for the registry (`None` for messages and generic typed data).
    pub place: Option<Place>,
    /// How many calls it makes (RULES.md §2): quota and rate limits count this.
    pub weight: u64,
    /// Just-in-time `increaseAllowance` grants: (index in `approvals`, the most the
    /// allowance may reach, the rule), checked against the registry's worst case.
    pub jit_adds: Vec<(usize, U256, String)>,
    /// A transaction from the session's own address whose gas limit is below
    /// `approvals.revoke_gas`: it may be mined, run out of gas and write nothing
    /// (RULES.md §6), so its writes force no reset.
    pub may_revert: bool,
}

impl Charges {
    /// Charges of a request of weight `weight` at `place`.
    pub fn at(place: Option<Place>, weight: u64) -> Charges {
        Charges { place, weight, ..Charges::default() }
    }

    pub(crate) fn add(&mut self, a: AssetRef, v: U256) {
        match a {
            AssetRef::Native => self.native = self.native.saturating_add(v),
            AssetRef::Token(i) => match self.tokens.iter_mut().find(|(t, _)| *t == i) {
                Some((_, x)) => *x = x.saturating_add(v),
                None => self.tokens.push((i, v)),
            },
        }
    }
}

/// Time bounds (R-POL-1). Checked first: an expired session is expired whatever it asks.
pub fn check_time(p: &CompiledPolicy, now: u64) -> Result<(), Denial> {
    if let Some(after) = p.doc.valid_after {
        if now < after {
            return Err(Denial::rule(
                ErrorCode::NotYetValid,
                "valid_after",
                format!("valid from {}, now {}", format_time(after), format_time(now)),
            ));
        }
    }
    let until = p.doc.valid_until.unwrap_or(0);
    if now >= until {
        return Err(Denial::rule(
            ErrorCode::Expired,
            "valid_until",
            format!("expired at {}, now {}", format_time(until), format_time(now)),
        ));
    }
    Ok(())
}

/// Checks every request must pass whatever it asks for: time bounds (first: an expired
/// session is expired whatever it asks), quota and rate limits, for a request of weight `w`.
pub fn check_session(p: &CompiledPolicy, c: &Counters, ctx: &Context, w: u64) -> Result<(), Denial> {
    let doc = &p.doc;
    check_time(p, ctx.now)?;
    if let Some(q) = doc.quota {
        if c.uses.saturating_add(w) > q {
            return Err(Denial::rule(
                ErrorCode::QuotaExhausted,
                "quota",
                if w == 1 {
                    format!("{} of {q} signatures used", c.uses)
                } else {
                    format!("{} of {q} signatures used; this request counts {w} (one per call)", c.uses)
                },
            ));
        }
    }
    for (i, r) in doc.rate_limits.iter().enumerate() {
        let Some(n) = c.recent_within(ctx.now, r.window) else {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                format!("rate_limits[{i}]"),
                format!(
                    "the last {} holds more signatures than this session's history kept under an earlier policy (a limit raised or added by an update counts them as reaching its {}); ask again once that window has passed",
                    format_duration(r.window),
                    r.max
                ),
            ));
        };
        if n.saturating_add(w) > r.max {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                format!("rate_limits[{i}]"),
                format!(
                    "{n} signatures in the last {}{}; at most {}",
                    format_duration(r.window),
                    if w == 1 { String::new() } else { format!(", and this request counts {w}") },
                    r.max
                ),
            ));
        }
    }
    Ok(())
}

/// The chain allowlist (R-POL-2).
pub fn check_chain(p: &CompiledPolicy, chain_id: u64) -> Result<(), Denial> {
    if !p.doc.chains.contains(&chain_id) {
        return Err(Denial::rule(
            ErrorCode::ChainNotAllowed,
            "chains",
            format!("chain {chain_id} is not in {:?}", p.doc.chains),
        ));
    }
    Ok(())
}

/// Decide whether `op` is allowed under `p` given what the session has done (`c`).
/// The calls checked are the request's calls as they run (RULES.md §5b, `redeem.rs`): a
/// delegation redemption's executions, each held by its root delegator.
pub fn evaluate(p: &CompiledPolicy, c: &Counters, ctx: &Context, op: &Operation<'_>) -> Result<Charges, Denial> {
    check_time(p, ctx.now)?;
    let held = super::redeem::expand(p, ctx, op)?;
    let calls: &[Call] = &held.calls;
    let weight = calls.len().max(1) as u64;
    check_session(p, c, ctx, weight)?;
    check_chain(p, op.chain_id)?;

    let mut charges = Charges::at(Some(op.place), weight);
    if let Some(g) = &op.gas {
        check_gas(p, c, ctx, g, &mut charges)?;
    }
    if calls.is_empty() {
        return Err(Denial::malformed("the request makes no call"));
    }
    for (k, call) in calls.iter().enumerate() {
        let inner = Operation { holder: held.holders[k], calls, ..op.clone() };
        let granted = charges.approvals.len();
        check_call(p, ctx, &inner, call, &mut charges)
            .and_then(|()| check_jit(p, calls, &held.holders, k, &mut charges))
            .map(|()| {
                // A redemption may be mined and revert at the agent's will (a bad signature
                // in another entry, a failing caveat): what it sets may not happen. Its
                // approvals count as added to what is there, and its revocations as nothing
                // (RULES.md §5b).
                if held.delegated[k] {
                    for g in &mut charges.approvals[granted..] {
                        if let GrantOp::Set(v) = g.op {
                            g.op = GrantOp::Add(v);
                        }
                    }
                }
            })
            .map_err(|mut d| {
                if calls.len() > 1 {
                    d.reason = format!("call {k}: {}", d.reason);
                }
                d
            })?;
    }
    charges.may_revert = may_revert(p, op, calls, &charges.approvals);
    check_spend(p, c, ctx, &charges)?;
    check_allowances(p, c, ctx, &charges)?;
    Ok(charges)
}

/// Whether a transaction of the session's own address may be mined and write nothing
/// (RULES.md §6): its gas limit less what its access list costs up front is below
/// `approvals.revoke_gas`; or a call carries value (`approve` is not payable: it reverts); or
/// it sets an allowance to a non-zero amount (tokens like USDT revert `approve` from one
/// non-zero amount to another); or its chain is not known to spend the gas limit on
/// execution alone (`allowance::gas_uncertain`: Arbitrum and zkSync Era take L1 data gas from
/// it), where no gas limit proves the call runs. A smart-account lane forces nothing anyway.
fn may_revert(p: &CompiledPolicy, op: &Operation<'_>, calls: &[Call], grants: &[Grant]) -> bool {
    if !matches!(op.place, Place::Own { .. }) {
        return false;
    }
    let floor = crate::allowance::revoke_gas(p);
    crate::allowance::gas_uncertain(p, op.chain_id)
        || op.gas.as_ref().is_none_or(|g| g.gas_limit.saturating_sub(g.access_list_gas) < floor)
        || calls.iter().any(|c| !c.value.is_zero())
        || grants.iter().any(|g| matches!(g.op, GrantOp::Set(v) if !v.is_zero()))
}

/// Just-in-time approvals (R-APP-2): an `approve(spender, X)` directly followed by a call
/// to `spender` that one of `approvals.jit` names is bounded by that call's amount plus
/// `approvals.jit_tolerance`; with `approvals.jit_only`, every non-zero on-chain approval
/// must be such a pair.
/// The pair must run as one account (`holders`): another account's call consumes nothing
/// of this one's approval.
fn check_jit(
    p: &CompiledPolicy,
    calls: &[Call],
    holders: &[Address],
    k: usize,
    charges: &mut Charges,
) -> Result<(), Denial> {
    let data = calls[k].data.as_ref();
    let rules = &p.doc.approvals;
    // Permit2's approve is never just in time (no rule names a consumer of it): under
    // `jit_only` a non-zero one is refused like any other approval (a review of 2026-12-05:
    // it passed, in transactions, user operations and redemptions alike).
    if let Some(a) = calls[k].to.and_then(|to| super::calls::permit2_approve_amount(p, &to, data)) {
        if rules.jit_only && !a.is_zero() {
            return Err(Denial::rule(
                ErrorCode::UnlimitedApproval,
                "approvals.jit_only",
                "a Permit2 approve is not just-in-time; approve exactly what the next call consumes with the token's own approve",
            ));
        }
        return Ok(());
    }
    let (spender, amount, kind) = match erc20_effect(data) {
        Some(Ok(Erc20::Approve { spender, amount, kind })) if !amount.is_zero() => (spender, amount, kind),
        _ => return Ok(()),
    };
    if kind != "approve" && kind != "increaseAllowance" {
        if rules.jit_only {
            return Err(Denial::rule(
                ErrorCode::UnlimitedApproval,
                "approvals.jit_only",
                format!("{kind} is not just-in-time; approve exactly what the next call consumes"),
            ));
        }
        return Ok(());
    }
    let token = calls[k].to.unwrap_or_default();
    let consumer = calls
        .get(k + 1)
        .filter(|_| holders.get(k + 1) == holders.get(k))
        .and_then(|n| jit_consumer(p, n, spender, token));
    match consumer {
        Some((i, consumed)) => {
            let bps = U256::from(rules.jit_tolerance_bps);
            let bound = consumed.saturating_mul(U256::from(10_000u32) + bps) / U256::from(10_000u32);
            if amount > bound {
                return Err(Denial::rule(
                    ErrorCode::UnlimitedApproval,
                    format!("approvals.jit[{i}]"),
                    format!(
                        "approve of {amount} to {spender} exceeds what the next call consumes ({consumed}) plus the {}% tolerance ({bound})",
                        crate::units::format_decimal(bps, 2)
                    ),
                ));
            }
            if kind == "increaseAllowance" {
                // What it adds to may already be outstanding: the allowance it leaves, at
                // worst, is checked against the same bound (`check_allowances`).
                if let Some(g) = charges.approvals.len().checked_sub(1) {
                    charges.jit_adds.push((g, bound, format!("approvals.jit[{i}]")));
                }
            }
            Ok(())
        }
        None if rules.jit_only => Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals.jit_only",
            format!(
                "approve to {spender} is not directly followed by a call to it that consumes it (approvals.jit); only just-in-time approvals are allowed"
            ),
        )),
        None => Ok(()),
    }
}

/// If `next` is a call to `spender` matching a JIT rule (and naming `token` when the rule
/// says where the token is), the rule index and the amount it consumes. Only canonical
/// encodings count.
fn jit_consumer(p: &CompiledPolicy, next: &Call, spender: Address, token: Address) -> Option<(usize, U256)> {
    if next.to != Some(spender) || next.data.len() < 4 {
        return None;
    }
    // Decoded once while the rules' parameter types stay the same; at most one decode is
    // held (a policy with a selector collision replaces it).
    let mut decoded = super::calls::Decoded::default();
    for (i, j) in p.jit.iter().enumerate() {
        if next.data[..4] != j.selector {
            continue;
        }
        let Ok(decoded) = decoded.get(&j.params, &next.data) else { continue };
        let Some(DynSolValue::Uint(consumed, _)) = super::calls::value_at(decoded, &j.amount_path) else { continue };
        if let Some(tp) = &j.token_path {
            match super::calls::value_at(decoded, tp) {
                Some(DynSolValue::Address(a)) if *a == token => {}
                _ => continue,
            }
        }
        return Some((i, *consumed));
    }
    None
}

/// Decide an ERC-4337 v0.7 or v0.8 user operation (R-SIGN-2): entry point (listed under its
/// version), sender, factory and
/// paymaster on the policy's lists; the callData decoded into inner calls, each checked
/// as a call and all charged together; the summed gas limits at `max_fee_per_gas` under
/// the gas rules. Undecodable callData is denied.
pub fn evaluate_user_op(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    op: &UserOperationRequest,
) -> Result<Charges, Denial> {
    check_time(p, ctx.now)?;
    check_chain(p, op.chain_id)?;
    let u = &p.doc.user_operations;
    let version = op.version();
    let listed = match version {
        EntryPointVersion::V07 => &u.entry_points,
        EntryPointVersion::V08 => &u.entry_points_v08,
    };
    if !listed.contains(&op.entry_point) {
        return Err(Denial::rule(
            ErrorCode::TargetNotAllowed,
            "user_operations.entry_points",
            if u.entry_points.is_empty() && u.entry_points_v08.is_empty() {
                "the policy lists no entry point: it allows no user operation".to_string()
            } else {
                format!("entry point {} is not allowed as an EntryPoint {}", op.entry_point, version.as_str())
            },
        ));
    }
    if !u.senders.is_empty() && !u.senders.contains(&op.sender) {
        return Err(Denial::rule(
            ErrorCode::TargetNotAllowed,
            "user_operations.senders",
            format!("account {} is not an allowed sender", op.sender),
        ));
    }
    if let Some(f) = op.factory_address()? {
        if !u.factories.contains(&f) {
            return Err(Denial::rule(
                ErrorCode::TargetNotAllowed,
                "user_operations.factories",
                format!("the operation deploys its account through factory {f}, which is not allowed"),
            ));
        }
    }
    if let Some(pm) = op.paymaster {
        if !u.paymasters.contains(&pm) {
            return Err(Denial::rule(
                ErrorCode::TargetNotAllowed,
                "user_operations.paymasters",
                format!("paymaster {pm} is not allowed"),
            ));
        }
    }
    // Packing errors (init code, paymaster fields) are malformed before any rule.
    op.hash()?;
    let gas = op.gas()?;
    let calls = op.calls()?;
    let place = Place::user_operation(op.chain_id, op.entry_point, op.sender, op.nonce);
    evaluate(p, c, ctx, &Operation { chain_id: op.chain_id, calls: &calls, gas: Some(gas), place, holder: op.sender })
}

fn check_gas(p: &CompiledPolicy, c: &Counters, ctx: &Context, g: &Gas, charges: &mut Charges) -> Result<(), Denial> {
    let rules = &p.doc.gas;
    let gwei = |v: u128| format!("{} gwei", crate::units::format_decimal(U256::from(v), 9));
    if let Some(max) = rules.max_fee_per_gas {
        if g.max_fee_per_gas > max {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "gas.max_fee_per_gas",
                format!("max fee {} above cap {}", gwei(g.max_fee_per_gas), gwei(max)),
            ));
        }
    }
    if let Some(max) = rules.max_priority_fee_per_gas {
        if g.max_priority_fee_per_gas > max {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "gas.max_priority_fee_per_gas",
                format!("priority fee {} above cap {}", gwei(g.max_priority_fee_per_gas), gwei(max)),
            ));
        }
    }
    if let Some(max) = rules.max_gas_limit {
        if g.gas_limit > max {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "gas.max_gas_limit",
                format!("gas limit {} above cap {max}", g.gas_limit),
            ));
        }
    }
    let cost = g.max_cost();
    check_gas_cost(p, c, ctx, cost)?;
    charges.gas_cost = cost;
    // A user operation's prefund without a paymaster is the account's native coin paid to
    // whoever bundles it — the agent can bundle its own operations and name itself the
    // beneficiary (a review of 2026-12-07: five operations paid it 88 times the native
    // daily cap, counted nowhere): charged as native value, as `count_in_native` does.
    if rules.count_in_native || g.paid_to_bundler {
        charges.native = charges.native.saturating_add(cost);
    }
    Ok(())
}

/// The gas cost limits (R-POL-8) for a further `cost`.
pub fn check_gas_cost(p: &CompiledPolicy, c: &Counters, ctx: &Context, cost: U256) -> Result<(), Denial> {
    for (i, l) in p.doc.gas.cost_limits.iter().enumerate() {
        let spent = c.ledger.spent(LedgerKey::GasCost, l.period, ctx.anchor, ctx.now);
        if spent.saturating_add(cost) > l.max {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                format!("gas.cost_limits[{i}]"),
                format!(
                    "gas cost per {}: spent {}, asking {}, cap {}",
                    l.period,
                    p.fmt_amount(AssetRef::Native, spent),
                    p.fmt_amount(AssetRef::Native, cost),
                    p.fmt_amount(AssetRef::Native, l.max)
                ),
            ));
        }
    }
    Ok(())
}

/// Spend limits and streams (R-POL-4, RULES.md §3), against the session's ledger.
pub(crate) fn check_spend(p: &CompiledPolicy, c: &Counters, ctx: &Context, charges: &Charges) -> Result<(), Denial> {
    for (i, l) in p.doc.limits.iter().enumerate() {
        let a = p.limit_assets[i];
        let ask = charges.of(p, a);
        if ask.is_zero() {
            continue;
        }
        let spent = c.ledger.spent(Counters::key_of(p, a), l.period, ctx.anchor, ctx.now);
        if spent.saturating_add(ask) > l.max {
            let (sym, _) = p.unit(a);
            let per = if l.period == Period::Session { "per session".to_string() } else { format!("per {}", l.period) };
            return Err(Denial::rule(
                ErrorCode::SpendCap,
                format!("limits[{i}]"),
                format!(
                    "{sym} {per}: spent {}, asking {}, cap {}",
                    p.fmt_amount(a, spent),
                    p.fmt_amount(a, ask),
                    p.fmt_amount(a, l.max)
                ),
            ));
        }
    }
    for (i, s) in p.doc.streams.iter().enumerate() {
        let a = p.stream_assets[i];
        let ask = charges.of(p, a);
        if ask.is_zero() {
            continue;
        }
        let available = stream_available(s, ctx);
        let spent = c.ledger.spent(Counters::key_of(p, a), Period::Session, ctx.anchor, ctx.now);
        if spent.saturating_add(ask) > available {
            let (sym, _) = p.unit(a);
            return Err(Denial::rule(
                ErrorCode::SpendCap,
                format!("streams[{i}]"),
                format!(
                    "{sym} stream: spent {}, asking {}, accrued so far {} (max {})",
                    p.fmt_amount(a, spent),
                    p.fmt_amount(a, ask),
                    p.fmt_amount(a, available),
                    p.fmt_amount(a, s.max)
                ),
            ));
        }
    }
    Ok(())
}

/// What a stream has made available by the session time: `min(max, initial + ⌊rate × e /
/// every⌋)` with `e` the time since the anchor.
pub fn stream_available(s: &super::doc::StreamLimit, ctx: &Context) -> U256 {
    let elapsed = ctx.now.saturating_sub(ctx.anchor);
    let accrued = s.initial.saturating_add(s.rate.saturating_mul(U256::from(elapsed)) / U256::from(s.every.max(1)));
    accrued.min(s.max)
}
