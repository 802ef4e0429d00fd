//! How the owner commands print a session: status, spend against caps, allowances.

use alloy_primitives::Address;
use anyhow::Result;
use bridle_common::protocol::*;
use bridle_common::units::format_decimal;

pub fn print_allowances(session: Address, info: &serde_json::Value) -> Result<()> {
    let list: Vec<bridle_common::allowance::Allowance> = serde_json::from_value(info["allowances"].clone())?;
    let x: ExposureStatus = serde_json::from_value(info["exposure"].clone()).unwrap_or_default();
    let usd = |v| bridle_common::allowance::fmt_usd(v);
    match x.ceiling {
        Some(c) => println!("outstanding exposure: {} of a {} ceiling", usd(x.usd), usd(c)),
        None => println!("outstanding exposure: {} (no ceiling)", usd(x.usd)),
    }
    if !x.unpriced.is_empty() {
        println!("unpriced outstanding: {}", x.unpriced.join(", "));
    }
    if list.is_empty() {
        println!("no approvals signed");
    }
    for e in &list {
        let holder = if e.holder == session { String::new() } else { format!(" (held by {})", e.holder) };
        println!(
            "chain {:<6} {:<9} {} {} → {} [{}] via {}{holder}",
            e.chain_id,
            e.state.as_str(),
            format_decimal(e.amount, e.decimals),
            e.symbol,
            e.spender,
            e.kind.as_str(),
            e.via
        );
        println!(
            "             granted {}, expires {}",
            bridle_common::period::format_time(e.granted_at),
            bridle_common::period::format_time(e.expires_at)
        );
    }
    Ok(())
}

pub fn print_status(info: &serde_json::Value) -> Result<()> {
    let s = &info["session"];
    if s.is_null() {
        let state = info["stored"]["state"].as_str().unwrap_or("unknown");
        println!("session not in the enclave (host records state: {state})");
        return Ok(());
    }
    let ss: SessionStatus = serde_json::from_value(s.clone())?;
    println!("session:    {}", ss.session);
    println!("state:      {:?}", ss.state);
    println!("owner:      {}", ss.owner);
    println!("agent:      {}", ss.agent);
    println!("policy:     {}", ss.policy_hash);
    println!("valid until {}", bridle_common::period::format_time(ss.valid_until));
    match ss.uses_left {
        Some(l) => println!("uses:       {} ({l} left)", ss.uses),
        None => println!("uses:       {}", ss.uses),
    }
    if let Some(why) = &ss.suspended_reason {
        println!("suspended:  {why}");
    }
    let outstanding =
        ss.allowances.iter().filter(|a| a.state.as_str() == "active" || a.state.as_str() == "expired").count();
    println!(
        "approvals:  {} outstanding of {} recorded, exposure {}{}",
        outstanding,
        ss.allowances.len(),
        bridle_common::allowance::fmt_usd(ss.exposure.usd),
        ss.exposure.ceiling.map(|c| format!(" of {}", bridle_common::allowance::fmt_usd(c))).unwrap_or_default()
    );
    for p in &ss.pending {
        println!(
            "pending:    {} {} ({}, until {}): {}",
            p.digest,
            p.kind,
            p.state,
            bridle_common::period::format_time(p.expires_at),
            p.reason
        );
    }
    for c in &ss.caps {
        let reset =
            c.resets_at.map(|t| format!(", resets {}", bridle_common::period::format_time(t))).unwrap_or_default();
        println!(
            "{:<22} {}: spent {} of {} {}{reset}",
            c.rule,
            c.what,
            format_decimal(c.spent, c.decimals),
            format_decimal(c.cap, c.decimals),
            c.symbol
        );
    }
    Ok(())
}
