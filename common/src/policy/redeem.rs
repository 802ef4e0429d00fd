//! Who runs each call (RULES.md §5b): a request's calls as the policy checks them, each
//! with the account it runs as. A transaction's call runs as the session; a user
//! operation's inner calls as its sender; the executions of an ERC-7710 redemption
//! (`redeemDelegations` on a listed delegation manager) as each entry's root delegator.
//!
//! Deny by default: a redemption anywhere else (on an unlisted contract, inside a user
//! operation, nested inside an execution) is refused, and so is a call from an account
//! other than the session to that account itself — smart accounts let themselves do
//! anything (SimpleAccount's `upgradeToAndCall`, a DeleGator's `execute`), so such a call
//! could run calls the policy never sees.

use super::compile::CompiledPolicy;
use super::engine::{Context, Operation};
use crate::allowance::Place;
use crate::delegation::{decode_redemption, is_redemption};
use crate::error::{Denial, ErrorCode};
use crate::tx::Call;
use alloy_primitives::Address;
use std::borrow::Cow;

/// The calls of an operation and, for each, the account it runs as and whether it is an
/// execution of a redemption (run as a delegator, inside a transaction that may revert at
/// the agent's will: RULES.md §5b).
pub(crate) struct Held<'a> {
    pub calls: Cow<'a, [Call]>,
    pub holders: Vec<Address>,
    pub delegated: Vec<bool>,
}

/// Expand `op`'s calls (see the module documentation).
pub(crate) fn expand<'a>(p: &CompiledPolicy, ctx: &Context, op: &Operation<'a>) -> Result<Held<'a>, Denial> {
    let rules = &p.doc.delegations;
    let listed = |a: Option<Address>| a.is_some_and(|a| rules.managers.contains(&a));
    if !op.calls.iter().any(|c| is_redemption(&c.data) || listed(c.to)) {
        for c in op.calls {
            check_self_call(ctx, op.holder, c)?;
            check_account_call(p, ctx, op, c)?;
        }
        let n = op.calls.len();
        return Ok(Held { calls: Cow::Borrowed(op.calls), holders: vec![op.holder; n], delegated: vec![false; n] });
    }
    let (mut calls, mut holders, mut delegated) = (Vec::new(), Vec::new(), Vec::new());
    for call in op.calls {
        let to = call.to.unwrap_or_default();
        if !is_redemption(&call.data) {
            check_self_call(ctx, op.holder, call)?;
            check_account_call(p, ctx, op, call)?;
            calls.push(call.clone());
            holders.push(op.holder);
            delegated.push(false);
            continue;
        }
        if !listed(call.to) {
            return Err(Denial::rule(
                ErrorCode::TargetNotAllowed,
                "delegations.managers",
                format!(
                    "redeemDelegations on {to}, which delegations.managers does not list: the calls it would run are not checked"
                ),
            ));
        }
        if !matches!(op.place, Place::Own { .. }) {
            return Err(Denial::rule(
                ErrorCode::SelectorNotAllowed,
                "delegations",
                "redeemDelegations inside a user operation is not decoded; redeem with a transaction from the session",
            ));
        }
        if !call.value.is_zero() {
            return Err(Denial::rule(
                ErrorCode::ArgumentRejected,
                "delegations",
                format!("redeemDelegations is not payable; the call carries {} wei", call.value),
            ));
        }
        for entry in decode_redemption(&call.data, op.holder)? {
            let holder = entry.root;
            if !rules.delegators.is_empty() && !rules.delegators.contains(&holder) {
                return Err(Denial::rule(
                    ErrorCode::TargetNotAllowed,
                    "delegations.delegators",
                    format!("the delegation's root delegator {holder} is not an allowed delegator"),
                ));
            }
            for inner in entry.calls {
                if is_redemption(&inner.data) || listed(inner.to) {
                    return Err(Denial::rule(
                        ErrorCode::SelectorNotAllowed,
                        "delegations",
                        format!(
                            "an execution of {holder} calls the delegation manager {}: nested redemptions are not decoded",
                            inner.to.unwrap_or_default()
                        ),
                    ));
                }
                check_self_call(ctx, holder, &inner)?;
                check_metered(p, op.chain_id, &inner).map_err(|to| {
                    Denial::rule(
                        ErrorCode::SelectorNotAllowed,
                        "delegations",
                        format!(
                            "a call run as the delegator {holder} to {to} is not a metered token call (transfer, transferFrom, approve, increaseAllowance of a listed token, Permit2 approve) or a plain value transfer: it could spend the delegator's standing allowances or deposits, which no cap sees"
                        ),
                    )
                })?;
                calls.push(inner);
                holders.push(holder);
                delegated.push(true);
            }
        }
    }
    if calls.len() > crate::userop::MAX_INNER_CALLS {
        return Err(Denial::new(
            ErrorCode::TooLarge,
            format!("{} calls in all; at most {}", calls.len(), crate::userop::MAX_INNER_CALLS),
        ));
    }
    Ok(Held { calls: Cow::Owned(calls), holders, delegated })
}

/// A call run as a delegator, or as a smart account unless the policy says otherwise, must
/// be one Bridle meters: a transfer, `transferFrom`, `approve` or `increaseAllowance` of a
/// token the policy lists on this chain, Permit2's `approve` on a Permit2 contract the
/// policy knows, or a plain value transfer. Anything else could
/// spend what the account already approved or deposited (a router pulling its standing
/// allowance, a vault withdrawal), value no cap sees: the session's own address holds only
/// approvals Bridle metered, another account need not. `Err` names the call's target.
fn check_metered(p: &CompiledPolicy, chain_id: u64, call: &Call) -> Result<(), Address> {
    let to = call.to.unwrap_or_default();
    if call.data.is_empty() || super::calls::metered_call(p, chain_id, &to, &call.data) {
        Ok(())
    } else {
        Err(to)
    }
}

/// A user operation's call runs as its sender: metered ([`check_metered`]) unless the
/// policy sets `user_operations.unmetered_calls` (the owner vouches the accounts hold
/// nothing Bridle did not meter). A review of 2026-12-05 found a router's `swap` from a
/// listed account spending that account's standing allowance, uncharged. A just-in-time
/// consumer is no exception: what it pulls is the contract's to decide (through Permit2,
/// an internal balance, a second token), not the `approve` before it (a review of the fix).
fn check_account_call(p: &CompiledPolicy, ctx: &Context, op: &Operation<'_>, call: &Call) -> Result<(), Denial> {
    if op.holder == ctx.account || p.doc.user_operations.unmetered_calls {
        return Ok(());
    }
    check_metered(p, op.chain_id, call).map_err(|to| {
        Denial::rule(
            ErrorCode::SelectorNotAllowed,
            "user_operations.unmetered_calls",
            format!(
                "a call run as the smart account {} to {to} is not a metered token call (transfer, transferFrom, approve, increaseAllowance of a listed token, Permit2 approve) or a plain value transfer: it could spend the account's standing allowances or deposits, which no cap sees (an owner whose accounts hold nothing Bridle did not meter sets user_operations.unmetered_calls = true)",
                op.holder
            ),
        )
    })
}

/// A call from `holder` (not the session) to `holder` itself is refused, and so is one to
/// the zero address: ERC-7821 accounts (Solady's, Alchemy's Modular Account v2) run a batch
/// call to `address(0)` against themselves, in the batch mode ERC-7579 uses.
fn check_self_call(ctx: &Context, holder: Address, call: &Call) -> Result<(), Denial> {
    if holder != ctx.account && (call.to == Some(holder) || call.to == Some(Address::ZERO)) {
        return Err(Denial::rule(
            ErrorCode::TargetNotAllowed,
            "calls",
            format!(
                "a call from the account {holder} to {}: accounts let themselves do anything (upgrade, execute, install a validator), so it could run calls the policy does not see (ERC-7821 accounts run a call to the zero address against themselves)",
                if call.to == Some(holder) { "itself".to_string() } else { "the zero address".to_string() }
            ),
        ));
    }
    Ok(())
}
