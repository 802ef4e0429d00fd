//! A plain-language account of a policy: what `bridle policy explain` prints.

use super::compile::{AssetRef, CompiledPolicy, FnMatcher};
use super::doc::{ArgValue, Party};
use crate::period::{format_time, Period};
use crate::units::{format_decimal, format_duration};
use std::fmt::Write;

fn party(p: &Party) -> String {
    match p {
        Party::Address(a) => a.to_string(),
        Party::Owner => "the owner".into(),
        Party::Account => "the session itself".into(),
    }
}

fn value(v: &ArgValue) -> String {
    match v {
        ArgValue::Address(a) => a.to_string(),
        ArgValue::Uint(u) => u.to_string(),
        ArgValue::Int(i) => i.to_string(),
        ArgValue::Bool(b) => b.to_string(),
        ArgValue::Bytes(b) => b.to_string(),
        ArgValue::String(s) => format!("{s:?}"),
        ArgValue::Owner => "$owner".into(),
        ArgValue::Account => "$account".into(),
    }
}

/// Explain every rule, one line each, with its rule path.
/// What `explain` says when nothing bounds the native value an allowed call carries: native
/// value is not an argument any rule names, so without `max_value_per_call` or a limit or
/// stream in the native coin an allowed call may carry any amount (a review of 2026-12-07: a
/// swap with tight argument rules carried 1000 ETH, which a router leaves for anyone to
/// take). `None` when bounded, or when no call is allowed.
pub fn unbounded_native_value(p: &CompiledPolicy) -> Option<&'static str> {
    let d = &p.doc;
    let bounded = d.max_value_per_call.is_some()
        || p.limit_assets.contains(&AssetRef::Native)
        || p.stream_assets.contains(&AssetRef::Native);
    (!bounded && !p.calls.is_empty()).then_some(
        "native value: no bound — every allowed call may carry any amount of the chain's native coin (ETH), which goes to the contract called; set max_value_per_call (\"0 ETH\" for none), or a [[limits]] or [[streams]] entry in ETH",
    )
}

pub fn explain(p: &CompiledPolicy) -> String {
    let d = &p.doc;
    let mut s = String::new();
    // The name is the owner's (or whoever wrote the file's) free text: escaped, so it cannot
    // write lines of its own or terminal escapes into the explanation (a review of 2026-12-07).
    let (name, _) = crate::quote::escape_within(&d.name, 4 * d.name.len() + 16);
    let _ = writeln!(s, "policy \"{name}\" (version {}, hash {})", d.version, p.hash);
    let _ = writeln!(s, "Everything not allowed below is denied.");
    let _ = writeln!(s, "chains: {:?}", d.chains);
    if let Some(a) = d.valid_after {
        let _ = writeln!(s, "valid_after: not before {}", format_time(a));
    }
    if let Some(u) = d.valid_until {
        let _ = writeln!(s, "valid_until: ends at {}", format_time(u));
    }
    let _ = writeln!(
        s,
        "max_duration: a session may last at most {}",
        format_duration(d.max_duration.unwrap_or(super::doc::DEFAULT_MAX_DURATION))
    );
    if let Some(q) = d.quota {
        let _ = writeln!(s, "quota: at most {q} signatures in the session's life");
    }
    for (i, t) in d.tokens.iter().enumerate() {
        let chain = match t.chain_id {
            Some(c) => format!(" on chain {c} only (on any other chain, calls to this address are denied)"),
            None => " on every allowed chain".to_string(),
        };
        let _ = writeln!(
            s,
            "tokens[{i}]: {} = {}{chain}, {} decimals. Metered: transfer, transferFrom, approve and increaseAllowance count against its caps (and its permits); any other function of it is denied unless a [[calls]] rule for this token names it by signature (\"*\" and wildcard targets do not cover it), and is then not metered",
            t.symbol, t.address, t.decimals
        );
    }
    for (i, l) in d.limits.iter().enumerate() {
        let per = if l.period == Period::Session {
            "over the whole session".to_string()
        } else {
            format!("per {} (resets every {} from the session's start)", l.period, l.period)
        };
        let _ = writeln!(s, "limits[{i}]: spend at most {} {per}", p.fmt_amount(p.limit_assets[i], l.max));
    }
    for (i, st) in d.streams.iter().enumerate() {
        let a = p.stream_assets[i];
        let _ = writeln!(
            s,
            "streams[{i}]: {} at the start, then {} per {} accrued continuously (a share of it every second, from the session's start), at most {} in total",
            p.fmt_amount(a, st.initial),
            p.fmt_amount(a, st.rate),
            format_duration(st.every),
            p.fmt_amount(a, st.max)
        );
    }
    if let Some(v) = d.max_value_per_call {
        let _ =
            writeln!(s, "max_value_per_call: at most {} of native value per call", p.fmt_amount(AssetRef::Native, v));
    }
    if let Some(w) = unbounded_native_value(p) {
        let _ = writeln!(s, "{w}");
    }
    for (i, c) in p.calls.iter().enumerate() {
        let target = c.target.map(|a| a.to_string()).unwrap_or_else(|| "any contract (*)".into());
        for (j, f) in c.fns.iter().enumerate() {
            let what = match f.matcher {
                FnMatcher::Any => "any function".to_string(),
                FnMatcher::Receive => "plain value transfers".to_string(),
                FnMatcher::Selector(sel) => format!("{} (0x{})", d.calls[i].functions[j].signature, hex::encode(sel)),
            };
            let _ = writeln!(s, "calls[{i}].functions[{j}]: may call {what} on {target}");
            if c.target.is_some()
                && matches!(f.matcher, FnMatcher::Selector(sel) if super::selectors::account_executing_selectors().contains(&sel))
            {
                let _ = writeln!(
                    s,
                    "  warning: through this function an account runs calls as itself — none of them decoded or metered: no cap, limit or registry sees what moves through it (RULES §5)"
                );
            }
            if c.target.is_none() {
                let _ = writeln!(
                    s,
                    "  (a wildcard: never a listed token's unmetered functions, nor token-moving functions (transfer, approve, transferAndCall, send, safeTransferFrom, setApprovalForAll, permit, …) of contracts not listed under tokens, nor functions through which an account executes calls (execute, executeBatch, execTransaction, upgradeToAndCall, …) of any contract, nor any function of an account listed under user_operations.senders)"
                );
            }
            for (k, a) in f.args.iter().enumerate() {
                let vals: Vec<String> = a.values.iter().map(value).collect();
                let _ = writeln!(
                    s,
                    "  calls[{i}].functions[{j}].args[{k}]: argument {:?} {} {}",
                    a.path,
                    a.op.as_str(),
                    vals.join(", ")
                );
            }
        }
    }
    if p.calls.is_empty() {
        let _ = writeln!(s, "calls: none allowed (this session can sign no transaction)");
    }
    if let Some(r) = &d.recipients {
        let names: Vec<String> = r.iter().map(party).collect();
        let _ = writeln!(
            s,
            "recipients: native value only to {} or to a target a [[calls]] rule names explicitly; ERC-20 transfer and transferFrom only to {} (a token function named by signature in a [[calls]] rule of a contract not listed as a token — transferAndCall, safeTransferFrom, … — is not checked against this list; on a listed token no such function may be named)",
            names.join(", "),
            names.join(", ")
        );
    }
    for (i, r) in d.rate_limits.iter().enumerate() {
        let _ = writeln!(s, "rate_limits[{i}]: at most {} signatures per {}", r.max, format_duration(r.window));
    }
    let g = &d.gas;
    if let Some(f) = g.max_fee_per_gas {
        let _ = writeln!(s, "gas.max_fee_per_gas: {} gwei", format_decimal(alloy_primitives::U256::from(f), 9));
    }
    if let Some(f) = g.max_priority_fee_per_gas {
        let _ =
            writeln!(s, "gas.max_priority_fee_per_gas: {} gwei", format_decimal(alloy_primitives::U256::from(f), 9));
    }
    if let Some(l) = g.max_gas_limit {
        let _ = writeln!(s, "gas.max_gas_limit: {l}");
    }
    for (i, l) in g.cost_limits.iter().enumerate() {
        let _ = writeln!(
            s,
            "gas.cost_limits[{i}]: at most {} of gas per {}",
            p.fmt_amount(AssetRef::Native, l.max),
            l.period
        );
    }
    if g.count_in_native {
        let _ = writeln!(s, "gas.count_in_native: the maximum gas cost counts against native spend caps");
    }
    let a = &d.approvals;
    let _ = writeln!(s, "approvals: unlimited approvals are always denied");
    if a.spenders.is_empty() {
        let _ =
            writeln!(s, "approvals.spenders: none (no approval or permit can be signed, except approve(spender, 0))");
    } else {
        let names: Vec<String> = a.spenders.iter().map(|x| x.to_string()).collect();
        let _ = writeln!(s, "approvals.spenders: {}", names.join(", "));
    }
    for (i, c) in a.caps.iter().enumerate() {
        if let Some(t) = d.tokens.iter().position(|t| t.symbol == c.token) {
            let _ =
                writeln!(s, "approvals.caps[{i}]: at most {} per approval", p.fmt_amount(AssetRef::Token(t), c.max));
        }
    }
    match a.lifetime {
        Some(l) => {
            let _ = writeln!(s, "approvals.lifetime: every approval is current for {} in the allowance registry, then expired and swept", format_duration(l));
        }
        None => {
            let _ = writeln!(
                s,
                "approvals: each approval is current for 24 h when worth more than 10000 USD (or unpriced), 7 days otherwise; then expired and swept"
            );
        }
    }
    let _ = writeln!(
        s,
        "approvals.revoke_gas: a revocation counts once mined only when its transaction's gas limit, less its access list's cost, is at least {} and it carries no value (otherwise it may revert and leave the approval); a non-zero approve never lowers an allowance (revoke first); sweeps use at least that gas",
        crate::allowance::revoke_gas(p)
    );
    let uncertain: Vec<u64> = p.doc.chains.iter().copied().filter(|c| crate::allowance::gas_uncertain(p, *c)).collect();
    if !uncertain.is_empty() {
        let _ = writeln!(
            s,
            "approvals.execution_gas_chains: on chains {uncertain:?} no gas limit is known to be spent on execution alone (L1 data gas may be taken from it): no revocation there ever counts as lowering an allowance, approvals there count against the ceilings for the whole session, and a revoked session's key stays while they are outstanding (list a chain whose gas limit pays for execution only in approvals.execution_gas_chains)"
        );
    }
    if let Some(max) = p.doc.gas.max_gas_limit.filter(|m| *m < crate::allowance::revoke_gas(p)) {
        let _ = writeln!(
            s,
            "gas.max_gas_limit {max} is below approvals.revoke_gas {}: the agent's revocations count for nothing and only the owner's signed sweep can revoke (fine for a policy that approves nothing)",
            crate::allowance::revoke_gas(p)
        );
    }
    for (i, j) in a.jit.iter().enumerate() {
        let token = j.token_path.as_ref().map(|t| format!(", token argument {t:?}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "approvals.jit[{i}]: an approve(spender, X) or increaseAllowance(spender, X) directly followed by `{}` on the spender may grant at most its argument {:?} plus {}%{token} (with increaseAllowance, counting what may already be outstanding)",
            j.signature,
            j.amount_path,
            format_decimal(alloy_primitives::U256::from(a.jit_tolerance_bps), 2)
        );
    }
    if a.jit_only {
        let _ = writeln!(s, "approvals.jit_only: every non-zero on-chain approval must be just-in-time (a non-zero Permit2 approve never is: refused)");
    }
    for (i, pr) in d.prices.iter().enumerate() {
        let name = match &pr.asset {
            super::doc::Asset::Native => "ETH".to_string(),
            super::doc::Asset::Token(t) => t.clone(),
        };
        let _ = writeln!(s, "prices[{i}]: 1 {name} = {}", crate::allowance::fmt_usd(pr.usd));
    }
    if let Some(c) = d.exposure_ceiling {
        let _ = writeln!(
            s,
            "exposure_ceiling: outstanding approvals across tokens, spenders and chains may be worth at most {}; approvals of unpriced tokens are denied",
            crate::allowance::fmt_usd(c)
        );
    }
    if let Some(c) = d.owner_exposure_ceiling {
        let _ = writeln!(
            s,
            "owner_exposure_ceiling: outstanding approvals across every session of this owner in the enclave may be worth at most {} (at this price table); the strictest such ceiling of the owner's live sessions applies to all of them — revoking this session (or its end) lifts it from the others unless another live session declares one",
            crate::allowance::fmt_usd(c)
        );
    }
    if let Some(c) = d.agent_exposure_ceiling {
        let _ = writeln!(
            s,
            "agent_exposure_ceiling: outstanding approvals across every session this agent key uses, whoever owns it, may be worth at most {} (at this price table) for this owner's sessions to raise them",
            crate::allowance::fmt_usd(c)
        );
    }
    let approves = !d.approvals.spenders.is_empty() || !d.permits.is_empty();
    if approves
        && d.exposure_ceiling.is_none()
        && d.owner_exposure_ceiling.is_none()
        && d.agent_exposure_ceiling.is_none()
    {
        let _ = writeln!(
            s,
            "exposure ceiling: none — outstanding approvals are bounded only by each token's approvals.max per spender and chain, not in sum (AG-212 4.4 asks for a ceiling)"
        );
    }
    if let Some(e) = &d.escalate {
        let mut when = vec![];
        if let (Some(v), Some(asset)) = (&e.above_value, p.escalate_asset) {
            when.push(format!("has moved more than {}", p.fmt_amount(asset, v.max)));
        }
        if let Some(u) = e.above_usd {
            when.push(format!("has moved more than {} worth (at the price table)", crate::allowance::fmt_usd(u)));
        }
        let per = match e.per.unwrap_or(Period::Day) {
            Period::Session => "over the session".to_string(),
            per => format!("per {per} (from the session's start)"),
        };
        let _ = writeln!(
            s,
            "escalate: a request after which the session {} {per} is held for the owner's approval of its digest, for at most {}",
            when.join(" or "),
            format_duration(e.ttl)
        );
    }
    if let Some(t) = &d.trip_wire {
        let _ = writeln!(
            s,
            "trip_wire: {} denials within {} suspend the session until the owner updates its policy or revokes it",
            t.denials,
            format_duration(t.within)
        );
    }
    if d.trip_wire.is_none() {
        let _ = writeln!(
            s,
            "trip_wire: none — no run of denials suspends the session; it ends by its expiry, its quota or the owner's revoke (AG-212 4.6 asks for automatic revocation on a security event)"
        );
    }
    match d.conformance {
        Some(c) => {
            let _ = writeln!(
                s,
                "conformance: {} — checked when the policy is compiled: approvals just in time within 10 % with an exposure ceiling, no permits, specific contracts and functions, value per call and per session bounded, at most 24 h, a trip-wire (CONFORMANCE.md)",
                c.as_str()
            );
        }
        None => {
            let _ = writeln!(
                s,
                "conformance: none claimed (conformance = \"AG-212\" refuses the policy unless it binds what AG-212 asks of it)"
            );
        }
    }
    for signer in &d.release_signers {
        let _ = writeln!(
            s,
            "release_signers: in a cluster, nodes of any image signed by the release signer with PCR8 {} may hold this session's key (no allow_image needed)",
            hex::encode(signer)
        );
    }

    // User operations (R-SIGN-2).
    let u = &d.user_operations;
    if u.entry_points.is_empty() && u.entry_points_v08.is_empty() {
        let _ = writeln!(s, "user_operations: none (no entry point is listed)");
    } else {
        let list = |v: &[alloy_primitives::Address]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        for (v, eps) in [("v0.7", &u.entry_points), ("v0.8", &u.entry_points_v08)] {
            if eps.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "user_operations.entry_points: ERC-4337 {v} user operations for {}; each inner call of the account's execute/executeBatch must pass the call rules above, all charged together; other callData is denied",
                list(eps)
            );
        }
        if u.senders.is_empty() {
            let _ = writeln!(s, "user_operations.senders: any smart account");
            if !p.wildcards.is_empty() {
                let _ = writeln!(
                    s,
                    "  warning: with a wildcard target, list the accounts this session signs for here: a wildcard refuses the account functions RULES.md §5 names on any contract, but only an account listed here has every function of it refused (a list of names cannot cover every account's)"
                );
            }
        } else {
            let _ = writeln!(s, "user_operations.senders: only {}", list(&u.senders));
        }
        if u.unmetered_calls {
            let _ = writeln!(
                s,
                "user_operations.unmetered_calls: any call the rules above allow runs as the account — warning: a call that is not a metered token call (a router's swap, a vault's withdraw) can spend what the account approved or deposited outside Bridle, or call an executor module installed on it (ERC-7579) that moves its tokens, which no cap sees; set it only for accounts that hold nothing Bridle did not meter and have no such module"
            );
        } else {
            let _ = writeln!(
                s,
                "user_operations.unmetered_calls: off — a call runs as the account only if it is a metered token call (transfer, transferFrom, approve, increaseAllowance of a listed token, Permit2 approve) or a plain value transfer, so the account's standing allowances and deposits stay out of reach (a just-in-time swap from the account needs unmetered_calls = true)"
            );
        }
        if u.paymasters.is_empty() {
            let _ = writeln!(s, "user_operations.paymasters: none (an operation naming a paymaster is denied)");
        } else {
            let _ = writeln!(s, "user_operations.paymasters: {}", list(&u.paymasters));
        }
        if u.factories.is_empty() {
            let _ = writeln!(s, "user_operations.factories: none (an operation that deploys its account is denied)");
        } else {
            let _ = writeln!(s, "user_operations.factories: {}", list(&u.factories));
        }
    }

    // Delegation redemption (ERC-7710, RULES.md §5b).
    let del = &d.delegations;
    if del.managers.is_empty() {
        let _ = writeln!(s, "delegations: none (no delegation manager is listed; redeemDelegations is denied)");
    } else {
        let list = |v: &[alloy_primitives::Address]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "delegations.managers: redeemDelegations on {} from the session; every execution runs as its root delegator, must be a metered call (transfer, transferFrom, approve, increaseAllowance of a listed token, Permit2 approve) or a plain value transfer — so the delegator's standing allowances and deposits stay out of reach — and must pass the call rules above, all charged together",
            list(&del.managers)
        );
        if del.delegators.is_empty() {
            let _ = writeln!(s, "delegations.delegators: any delegator");
        } else {
            let _ = writeln!(s, "delegations.delegators: only {}", list(&del.delegators));
        }
    }

    // Typed data and permits (R-SIGN-3).
    let _ = writeln!(
        s,
        "typed data: Bridle owner envelopes, EIP-7702 authorizations, account wrappers of a digest and calls carried as typed data (forwarders' requests, meta-transactions, Safe transactions) are never signed; anything not allowed below is denied"
    );
    for (i, r) in d.typed_data.iter().enumerate() {
        let mut parts = vec![];
        if let Some(n) = &r.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(v) = &r.version {
            parts.push(format!("version {v:?}"));
        }
        if let Some(c) = r.chain_id {
            parts.push(format!("chainId {c}"));
        }
        if let Some(a) = r.verifying_contract {
            parts.push(format!("verifyingContract {a}"));
        }
        let _ = writeln!(s, "typed_data[{i}]: may sign `{}` in the domain with {}", r.primary_type, parts.join(", "));
    }
    for (i, r) in d.permits.iter().enumerate() {
        let tokens = if r.tokens.is_empty() { "any listed token".to_string() } else { r.tokens.join(", ") };
        let what = match r.kind {
            super::doc::PermitKind::Eip2612 => "EIP-2612 Permit (owner must be the session)".to_string(),
            super::doc::PermitKind::Permit2 => format!(
                "Permit2 PermitSingle/PermitBatch/PermitTransferFrom/PermitBatchTransferFrom at {}",
                r.permit2.unwrap_or(crate::typed::PERMIT2)
            ),
        };
        let _ = writeln!(
            s,
            "permits[{i}]: may sign {what} for {tokens}: spender in approvals.spenders, amount within approvals.caps and counted against the token's spend caps, deadline at most {} from now; unlimited amounts denied",
            format_duration(r.max_deadline)
        );
    }
    // Messages (R-SIGN-4).
    if d.messages.is_empty() {
        let _ = writeln!(s, "messages: none (no personal message can be signed)");
    }
    for (i, m) in d.messages.iter().enumerate() {
        let _ = match m {
            super::doc::MessageRule::Exact(t) => writeln!(s, "messages[{i}]: may sign exactly {t:?}"),
            super::doc::MessageRule::Prefix(t) => {
                writeln!(s, "messages[{i}]: may sign a message starting with {t:?} (never a 32-byte one)")
            }
            super::doc::MessageRule::SiweDomain(dom) => writeln!(
                s,
                "messages[{i}]: may sign a Sign-In with Ethereum message for {dom}, as the session's address, on an allowed chain"
            ),
        };
    }
    s
}
