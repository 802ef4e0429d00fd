//! The policy engine: pure, no I/O, the clock passed in.
//!
//! `evaluate` decides; it never mutates. The caller charges [`Charges`] into the session's
//! [`Counters`] under the same lock (R-POL-11). Deny by default; every applicable rule
//! must pass; a denial names the rule that failed.

use super::compile::{AssetRef, CompiledFn, CompiledPolicy, FnMatcher};
use super::doc::{ArgValue, Op, Party};
use super::state::Counters;
use crate::allowance::{fmt_usd, AllowanceKind, Grant, GrantOp};
use crate::error::{Denial, ErrorCode};
use crate::period::{format_time, Period};
use crate::tx::{Call, Gas};
use crate::units::format_duration;
use crate::userop::UserOperationRequest;
use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall};
use std::cmp::Ordering;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
}

/// Who and when: the facts a decision depends on besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Now, unix seconds.
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
}

/// What an allowed request costs, by asset, and the approvals it grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charges {
    pub native: U256,
    /// (token index, amount); a few entries at most.
    pub tokens: Vec<(usize, U256)>,
    pub gas_cost: U256,
    /// Approvals and permits, in request order, for the allowance registry (R-APP-4).
    pub approvals: Vec<Grant>,
}

impl Charges {
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

/// An ERC-20 effect recognised in a call. `transferFrom` counts as a transfer: whoever's
/// allowance it spends, it moves value the policy caps.
enum Erc20<'a> {
    Transfer { to: Address, amount: U256 },
    Approve { spender: Address, amount: U256, kind: &'a str },
}

fn erc20_effect(data: &[u8]) -> Option<Result<Erc20<'static>, ()>> {
    let sel: [u8; 4] = data.get(..4)?.try_into().ok()?;
    Some(match sel {
        transferCall::SELECTOR => {
            transferCall::abi_decode(data).map(|c| Erc20::Transfer { to: c.to, amount: c.amount }).map_err(|_| ())
        }
        transferFromCall::SELECTOR => {
            transferFromCall::abi_decode(data).map(|c| Erc20::Transfer { to: c.to, amount: c.amount }).map_err(|_| ())
        }
        approveCall::SELECTOR => approveCall::abi_decode(data)
            .map(|c| Erc20::Approve { spender: c.spender, amount: c.amount, kind: "approve" })
            .map_err(|_| ()),
        increaseAllowanceCall::SELECTOR => increaseAllowanceCall::abi_decode(data)
            .map(|c| Erc20::Approve { spender: c.spender, amount: c.added, kind: "increaseAllowance" })
            .map_err(|_| ()),
        _ => return None,
    })
}

fn party(p: &Party, ctx: &Context) -> Address {
    match p {
        Party::Address(a) => *a,
        Party::Owner => ctx.owner,
        Party::Account => ctx.account,
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
/// session is expired whatever it asks), quota and rate limits.
pub fn check_session(p: &CompiledPolicy, c: &Counters, ctx: &Context) -> Result<(), Denial> {
    let doc = &p.doc;
    check_time(p, ctx.now)?;
    if let Some(q) = doc.quota {
        if c.uses >= q {
            return Err(Denial::rule(ErrorCode::QuotaExhausted, "quota", format!("{} of {q} signatures used", c.uses)));
        }
    }
    for (i, r) in doc.rate_limits.iter().enumerate() {
        let n = c.recent_within(ctx.now, r.window);
        if n >= r.max {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                format!("rate_limits[{i}]"),
                format!("{n} signatures in the last {}; at most {}", format_duration(r.window), r.max),
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
/// Approvals are granted from the session's own address.
pub fn evaluate(p: &CompiledPolicy, c: &Counters, ctx: &Context, op: &Operation<'_>) -> Result<Charges, Denial> {
    evaluate_for(p, c, ctx, op, ctx.account)
}

/// [`evaluate`], for calls made by `holder` (a user operation's smart account): the
/// approvals they grant are the holder's.
pub fn evaluate_for(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    op: &Operation<'_>,
    holder: Address,
) -> Result<Charges, Denial> {
    check_session(p, c, ctx)?;
    check_chain(p, op.chain_id)?;

    let mut charges = Charges::default();
    if let Some(g) = &op.gas {
        check_gas(p, c, ctx, g, &mut charges)?;
    }
    if op.calls.is_empty() {
        return Err(Denial::malformed("the request makes no call"));
    }
    for (k, call) in op.calls.iter().enumerate() {
        check_call(p, ctx, op.chain_id, call, holder, &mut charges).and_then(|()| check_jit(p, op.calls, k)).map_err(
            |mut d| {
                if op.calls.len() > 1 {
                    d.reason = format!("call {k}: {}", d.reason);
                }
                d
            },
        )?;
    }
    check_spend(p, c, ctx, &charges)?;
    check_allowances(p, c, ctx, &charges)?;
    Ok(charges)
}

/// Just-in-time approvals (R-APP-2): an `approve(spender, X)` directly followed by a call
/// to `spender` that one of `approvals.jit` names is bounded by that call's amount plus
/// `approvals.jit_tolerance`; with `approvals.jit_only`, every non-zero on-chain approval
/// must be such a pair.
fn check_jit(p: &CompiledPolicy, calls: &[Call], k: usize) -> Result<(), Denial> {
    let data = calls[k].data.as_ref();
    let (spender, amount, kind) = match erc20_effect(data) {
        Some(Ok(Erc20::Approve { spender, amount, kind })) if !amount.is_zero() => (spender, amount, kind),
        _ => return Ok(()),
    };
    let rules = &p.doc.approvals;
    if kind != "approve" {
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
    let consumer = calls.get(k + 1).and_then(|n| jit_consumer(p, n, spender, token));
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
/// says where the token is), the rule index and the amount it consumes.
fn jit_consumer(p: &CompiledPolicy, next: &Call, spender: Address, token: Address) -> Option<(usize, U256)> {
    if next.to != Some(spender) || next.data.len() < 4 {
        return None;
    }
    for (i, j) in p.jit.iter().enumerate() {
        if next.data[..4] != j.selector {
            continue;
        }
        let Ok(decoded) = j.params.abi_decode_params(&next.data[4..]) else { continue };
        let Some(DynSolValue::Uint(consumed, _)) = value_at(&decoded, &j.amount_path) else { continue };
        if let Some(tp) = &j.token_path {
            match value_at(&decoded, tp) {
                Some(DynSolValue::Address(a)) if *a == token => {}
                _ => continue,
            }
        }
        return Some((i, *consumed));
    }
    None
}

/// The allowance registry as it would be after `charges.approvals` (R-APP-1, R-APP-5):
/// room for them; an allowance raised by `increaseAllowance` within the token's approval
/// cap in total; and, with an exposure ceiling, every raised allowance priced and the
/// outstanding total within the ceiling (a request that lowers exposure always passes).
pub(crate) fn check_allowances(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    charges: &Charges,
) -> Result<(), Denial> {
    if charges.approvals.is_empty() {
        return Ok(());
    }
    let reg = &c.allowances;
    let mut after = reg.clone();
    if after.apply(p, &charges.approvals, ctx.now).is_err() {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "allowances",
            format!(
                "the allowance registry holds {} outstanding approvals, its maximum; revoke or sweep some first",
                crate::allowance::MAX_ENTRIES
            ),
        ));
    }
    let raised = reg.increases(p, &charges.approvals, ctx.now);
    for (g, _, a) in &raised {
        if !matches!(g.op, GrantOp::Add(_)) || g.kind != AllowanceKind::Erc20 {
            continue;
        }
        if let Some(t) = g.token_index {
            if let Some(cap) = p.approval_caps[t] {
                if *a > cap {
                    let idx = p.doc.approvals.caps.iter().position(|c| c.token == p.doc.tokens[t].symbol).unwrap_or(0);
                    return Err(Denial::rule(
                        ErrorCode::UnlimitedApproval,
                        format!("approvals.caps[{idx}]"),
                        format!(
                            "{} would bring the allowance of {} to {}, above the per-spender cap {}",
                            g.via,
                            g.spender,
                            p.fmt_amount(AssetRef::Token(t), *a),
                            p.fmt_amount(AssetRef::Token(t), cap)
                        ),
                    ));
                }
            }
        }
    }
    let Some(ceiling) = p.doc.exposure_ceiling else { return Ok(()) };
    if raised.is_empty() {
        return Ok(());
    }
    for (g, _, _) in &raised {
        let priced = g.token_index.is_some_and(|t| p.token_prices[t].is_some());
        if !priced {
            let name = g.token_index.map(|t| p.doc.tokens[t].symbol.clone()).unwrap_or_else(|| g.token.to_string());
            return Err(Denial::rule(
                ErrorCode::ExposureCeiling,
                "prices",
                format!("{name} has no price in the price table: with an exposure ceiling, its approvals cannot be valued and are denied"),
            ));
        }
    }
    let before = reg.exposure(p, ctx.now);
    let now_x = after.exposure(p, ctx.now);
    if !now_x.unpriced.is_empty() {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "prices",
            format!(
                "outstanding approvals of {} have no price in the price table, so the exposure cannot be valued; revoke them or price them",
                now_x.unpriced.join(", ")
            ),
        ));
    }
    if now_x.usd > ceiling && now_x.usd > before.usd {
        return Err(Denial::rule(
            ErrorCode::ExposureCeiling,
            "exposure_ceiling",
            format!(
                "outstanding approvals would be worth {}, above the ceiling {} (outstanding now: {})",
                fmt_usd(now_x.usd),
                fmt_usd(ceiling),
                fmt_usd(before.usd)
            ),
        ));
    }
    Ok(())
}

/// Decide an ERC-4337 v0.7 user operation (R-SIGN-2): entry point, sender, factory and
/// paymaster on the policy's lists; the callData decoded into inner calls, each checked
/// as a call and all charged together; the summed gas limits at `max_fee_per_gas` under
/// the gas rules. Undecodable callData is denied.
pub fn evaluate_user_op(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    op: &UserOperationRequest,
) -> Result<Charges, Denial> {
    check_session(p, c, ctx)?;
    check_chain(p, op.chain_id)?;
    let u = &p.doc.user_operations;
    if !u.entry_points.contains(&op.entry_point) {
        return Err(Denial::rule(
            ErrorCode::TargetNotAllowed,
            "user_operations.entry_points",
            if u.entry_points.is_empty() {
                "the policy lists no entry point: it allows no user operation".to_string()
            } else {
                format!("entry point {} is not allowed", op.entry_point)
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
    evaluate_for(p, c, ctx, &Operation { chain_id: op.chain_id, calls: &calls, gas: Some(gas) }, op.sender)
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
    for (i, l) in rules.cost_limits.iter().enumerate() {
        let spent = c.gas[i].spent_at(l.period, ctx.anchor, ctx.now);
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
    charges.gas_cost = cost;
    if rules.count_in_native {
        charges.native = charges.native.saturating_add(cost);
    }
    Ok(())
}

fn check_call(
    p: &CompiledPolicy,
    ctx: &Context,
    chain_id: u64,
    call: &Call,
    holder: Address,
    charges: &mut Charges,
) -> Result<(), Denial> {
    let doc = &p.doc;
    let Some(to) = call.to else {
        return Err(Denial::rule(ErrorCode::TargetNotAllowed, "calls", "contract creation is never allowed"));
    };
    let data = call.data.as_ref();
    if !data.is_empty() && data.len() < 4 {
        return Err(Denial::rule(
            ErrorCode::SelectorNotAllowed,
            "calls",
            format!("calldata of {} bytes is shorter than a selector", data.len()),
        ));
    }

    // Allowlist (R-POL-5) and argument rules (R-POL-6): the call passes if one matching
    // function rule's predicates all hold.
    let specific = p.by_target.get(&to).map(|v| v.as_slice()).unwrap_or(&[]);
    if specific.is_empty() && p.wildcards.is_empty() {
        return Err(Denial::rule(ErrorCode::TargetNotAllowed, "calls", format!("{to} is not an allowed target")));
    }
    let mut matched = false;
    let mut last_arg_denial = None;
    'rules: for &ri in specific.iter().chain(p.wildcards.iter()) {
        for f in &p.calls[ri].fns {
            let hit = match f.matcher {
                FnMatcher::Any => true,
                FnMatcher::Receive => data.is_empty(),
                FnMatcher::Selector(s) => data.len() >= 4 && data[..4] == s,
            };
            if !hit {
                continue;
            }
            matched = true;
            match check_args(f, data, ctx) {
                Ok(()) => {
                    last_arg_denial = None;
                    break 'rules;
                }
                Err(d) => last_arg_denial = Some(d),
            }
        }
    }
    if let Some(d) = last_arg_denial {
        return Err(d);
    }
    if !matched {
        let what = if data.is_empty() {
            "a plain value transfer (receive())".to_string()
        } else {
            format!("selector 0x{}", hex::encode(&data[..4]))
        };
        return Err(Denial::rule(ErrorCode::SelectorNotAllowed, "calls", format!("{what} is not allowed on {to}")));
    }

    // Native value.
    if let Some(max) = doc.max_value_per_call {
        if call.value > max {
            return Err(Denial::rule(
                ErrorCode::ValueCap,
                "max_value_per_call",
                format!(
                    "value {} above the per-call cap {}",
                    p.fmt_amount(AssetRef::Native, call.value),
                    p.fmt_amount(AssetRef::Native, max)
                ),
            ));
        }
    }
    if !call.value.is_zero() && data.is_empty() {
        check_recipient(p, ctx, to)?;
    }
    charges.add(AssetRef::Native, call.value);

    // ERC-20 semantics (R-POL-9, R-APP-1, R-APP-3).
    let token = p.token_at(chain_id, &to);
    match erc20_effect(data) {
        None => {}
        Some(Err(())) => {
            return Err(Denial::rule(ErrorCode::ArgumentRejected, "calls", "ERC-20 call arguments do not decode"));
        }
        Some(Ok(effect)) => {
            if token.is_none() && specific.is_empty() {
                // Only a wildcard rule matched: an unknown token could move unmetered value.
                return Err(Denial::rule(
                    ErrorCode::TargetNotAllowed,
                    "tokens",
                    format!("{to} is not a listed token; ERC-20 calls through a wildcard target need the token under tokens"),
                ));
            }
            match effect {
                Erc20::Transfer { to: rcpt, amount } => {
                    check_recipient(p, ctx, rcpt)?;
                    if let Some(t) = token {
                        charges.add(AssetRef::Token(t), amount);
                    }
                }
                Erc20::Approve { spender, amount, kind } => {
                    check_approval(p, to, token, spender, amount, kind)?;
                    if let Some(t) = token {
                        charges.add(AssetRef::Token(t), amount);
                    }
                    charges.approvals.push(Grant {
                        chain_id,
                        holder,
                        token: to,
                        token_index: token,
                        spender,
                        kind: AllowanceKind::Erc20,
                        op: if kind == "approve" { GrantOp::Set(amount) } else { GrantOp::Add(amount) },
                        onchain_until: None,
                        via: kind,
                    });
                }
            }
        }
    }
    Ok(())
}

fn check_recipient(p: &CompiledPolicy, ctx: &Context, rcpt: Address) -> Result<(), Denial> {
    if let Some(list) = &p.doc.recipients {
        if !list.iter().any(|r| party(r, ctx) == rcpt) {
            return Err(Denial::rule(
                ErrorCode::RecipientNotAllowed,
                "recipients",
                format!("{rcpt} is not an allowed recipient"),
            ));
        }
    }
    Ok(())
}

/// R-APP-1 / R-APP-3: no unlimited approvals, only listed spenders, at most the cap.
pub(crate) fn check_approval(
    p: &CompiledPolicy,
    token_addr: Address,
    token: Option<usize>,
    spender: Address,
    amount: U256,
    kind: &str,
) -> Result<(), Denial> {
    if amount == U256::MAX {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals",
            format!("{kind} of type(uint256).max to {spender} is never allowed"),
        ));
    }
    if amount.is_zero() && kind == "approve" {
        // approve(spender, 0) revokes; always allowed once the call itself is allowed.
        return Ok(());
    }
    if !p.doc.approvals.spenders.contains(&spender) {
        return Err(Denial::rule(
            ErrorCode::SpenderNotAllowed,
            "approvals.spenders",
            format!("{spender} is not an allowed spender"),
        ));
    }
    let Some(t) = token else {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals.caps",
            format!("{token_addr} is not a listed token, so no approval cap bounds it"),
        ));
    };
    let Some(cap) = p.approval_caps[t] else {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals.caps",
            format!("no approval cap for {}: approvals must be bounded", p.doc.tokens[t].symbol),
        ));
    };
    if amount > cap {
        let idx = p.doc.approvals.caps.iter().position(|c| c.token == p.doc.tokens[t].symbol).unwrap_or(0);
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            format!("approvals.caps[{idx}]"),
            format!(
                "{kind} of {} to {spender} above the per-spender cap {}",
                p.fmt_amount(AssetRef::Token(t), amount),
                p.fmt_amount(AssetRef::Token(t), cap)
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_spend(p: &CompiledPolicy, c: &Counters, ctx: &Context, charges: &Charges) -> Result<(), Denial> {
    for (i, l) in p.doc.limits.iter().enumerate() {
        let a = p.limit_assets[i];
        let ask = charges.of(a);
        if ask.is_zero() {
            continue;
        }
        let spent = c.limits[i].spent_at(l.period, ctx.anchor, ctx.now);
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
        let ask = charges.of(a);
        if ask.is_zero() {
            continue;
        }
        let elapsed = ctx.now.saturating_sub(ctx.anchor);
        let accrued = s.initial.saturating_add(s.rate.saturating_mul(U256::from(elapsed)) / U256::from(s.every));
        let available = accrued.min(s.max);
        let spent = c.streams[i];
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

fn check_args(f: &CompiledFn, data: &[u8], ctx: &Context) -> Result<(), Denial> {
    let Some(ty) = &f.params else { return Ok(()) };
    let decoded = ty
        .abi_decode_params(data.get(4..).unwrap_or(&[]))
        .map_err(|e| Denial::rule(ErrorCode::ArgumentRejected, &f.rule, format!("arguments do not decode: {e}")))?;
    for (k, a) in f.args.iter().enumerate() {
        let rule = || format!("{}.args[{k}]", f.rule);
        let Some(v) = value_at(&decoded, &a.path) else {
            return Err(Denial::rule(ErrorCode::ArgumentRejected, rule(), format!("argument {:?} is missing", a.path)));
        };
        let holds = match a.op {
            Op::In => a.values.iter().any(|x| cmp(v, x, ctx) == Some(Ordering::Equal)),
            Op::NotIn => a.values.iter().all(|x| matches!(cmp(v, x, ctx), Some(o) if o != Ordering::Equal)),
            op => {
                let o = a.values.first().and_then(|x| cmp(v, x, ctx));
                match (op, o) {
                    (_, None) => false,
                    (Op::Eq, Some(o)) => o == Ordering::Equal,
                    (Op::Ne, Some(o)) => o != Ordering::Equal,
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Lte, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Gte, Some(o)) => o != Ordering::Less,
                    (Op::In | Op::NotIn, _) => false,
                }
            }
        };
        if !holds {
            return Err(Denial::rule(
                ErrorCode::ArgumentRejected,
                rule(),
                format!("argument {:?} = {} fails `{} {}`", a.path, show(v), a.op.as_str(), show_values(&a.values)),
            ));
        }
    }
    Ok(())
}

fn value_at<'a>(v: &'a DynSolValue, path: &[u32]) -> Option<&'a DynSolValue> {
    let mut cur = v;
    for &i in path {
        cur = match cur {
            DynSolValue::Tuple(items) | DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
                items.get(i as usize)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Compare a decoded value with a rule value; `None` when they are not comparable.
fn cmp(v: &DynSolValue, x: &ArgValue, ctx: &Context) -> Option<Ordering> {
    Some(match (v, x) {
        (DynSolValue::Address(a), ArgValue::Address(b)) => a.cmp(b),
        (DynSolValue::Address(a), ArgValue::Owner) => a.cmp(&ctx.owner),
        (DynSolValue::Address(a), ArgValue::Account) => a.cmp(&ctx.account),
        (DynSolValue::Uint(a, _), ArgValue::Uint(b)) => a.cmp(b),
        (DynSolValue::Int(a, _), ArgValue::Int(b)) => a.cmp(b),
        (DynSolValue::Bool(a), ArgValue::Bool(b)) => a.cmp(b),
        (DynSolValue::Bytes(a), ArgValue::Bytes(b)) => a.as_slice().cmp(b.as_ref()),
        (DynSolValue::FixedBytes(a, n), ArgValue::Bytes(b)) => a[..*n].cmp(b.as_ref()),
        (DynSolValue::String(a), ArgValue::String(b)) => a.cmp(b),
        _ => return None,
    })
}

fn show(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::FixedBytes(b, n) => format!("0x{}", hex::encode(&b[..*n])),
        other => format!("{other:?}"),
    }
}

fn show_values(vs: &[ArgValue]) -> String {
    let items: Vec<String> = vs
        .iter()
        .map(|v| match v {
            ArgValue::Address(a) => a.to_string(),
            ArgValue::Uint(u) => u.to_string(),
            ArgValue::Int(i) => i.to_string(),
            ArgValue::Bool(b) => b.to_string(),
            ArgValue::Bytes(b) => b.to_string(),
            ArgValue::String(s) => format!("{s:?}"),
            ArgValue::Owner => "$owner".into(),
            ArgValue::Account => "$account".into(),
        })
        .collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("[{}]", items.join(", "))
    }
}
