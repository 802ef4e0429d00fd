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
pub fn explain(p: &CompiledPolicy) -> String {
    let d = &p.doc;
    let mut s = String::new();
    let _ = writeln!(s, "policy \"{}\" (version {}, hash {})", d.name, d.version, p.hash);
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
        let chain = t.chain_id.map(|c| format!(" on chain {c}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "tokens[{i}]: {} = {}{chain}, {} decimals (transfers and approvals count against its caps)",
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
            "streams[{i}]: {} at the start, {} more every {}, at most {} in total",
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
    for (i, c) in p.calls.iter().enumerate() {
        let target = c.target.map(|a| a.to_string()).unwrap_or_else(|| "any contract (*)".into());
        for (j, f) in c.fns.iter().enumerate() {
            let what = match f.matcher {
                FnMatcher::Any => "any function".to_string(),
                FnMatcher::Receive => "plain value transfers".to_string(),
                FnMatcher::Selector(sel) => format!("{} (0x{})", d.calls[i].functions[j].signature, hex::encode(sel)),
            };
            let _ = writeln!(s, "calls[{i}].functions[{j}]: may call {what} on {target}");
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
        let _ = writeln!(s, "recipients: value and token transfers only to {}", names.join(", "));
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
    s
}
