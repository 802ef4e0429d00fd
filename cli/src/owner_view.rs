//! `bridle owner status | allowances`: a session as the enclave signed it for a fresh nonce;
//! anything else is printed under an `UNVERIFIED (the host's word)` label and the command
//! exits 1 (0 with `--allow-unverified`).

use crate::client::{printable, Host};
use crate::trust::{self, TrustOpts};
use crate::util::HostArg;
use alloy_primitives::Address;
use anyhow::Result;
use bridle_common::allowance::{aggregate, fmt_usd, AllowanceState};
use bridle_common::period::format_time;
use bridle_common::protocol::*;
use bridle_common::units::format_decimal;
use clap::Args;

#[derive(Args)]
pub struct ViewArgs {
    #[command(flatten)]
    pub host: HostArg,
    #[command(flatten)]
    pub trust: TrustOpts,
    #[arg(long)]
    pub session: Address,
    /// Print the status as JSON: `{verified, signed_at, enclave, reason, status}`.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 even when the status cannot be verified (it is still labelled unverified).
    #[arg(long)]
    pub allow_unverified: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum View {
    Status,
    Allowances,
    Exposure,
}

pub fn run(a: &ViewArgs, view: View) -> Result<i32> {
    let host = Host::new(&a.host.host)?;
    let resolved = trust::resolve(&a.host.host, &a.trust)?;
    let (st, nonce) = trust::fetch_status(&host, Some(a.session))?;
    let verdict = trust::judge(&a.host.host, resolved, &st, nonce);
    if a.json {
        let v = serde_json::json!({
            "verified": verdict.is_ok(),
            "signed_at": verdict.as_ref().ok().and(st.receipt.as_ref()).map(|r| r.time),
            "enclave": verdict.as_ref().ok().map(|t| t.address),
            "reason": verdict.as_ref().err().map(|e| format!("{e:#}")),
            "status": st,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        match &verdict {
            Ok(t) => println!("{}", trust::signed_line(&st, t)),
            Err(e) => {
                println!(
                    "UNVERIFIED (the host's word): not signed by a trusted enclave: {}",
                    printable(&format!("{e:#}"))
                )
            }
        }
        match (&st.session, view) {
            (None, _) => println!(
                "session {} is not in the enclave: unknown to it, lost in an enclave restart, or dropped after it ended",
                a.session
            ),
            (Some(ss), View::Status) => print_status(ss),
            (Some(ss), View::Allowances) => print_allowances(ss),
            (Some(ss), View::Exposure) => print_exposure(ss, &st.aggregate),
        }
        if verdict.is_err() {
            println!("UNVERIFIED (the host's word): everything above is what the host says, not the enclave");
        }
    }
    match verdict {
        Ok(_) => Ok(0),
        Err(e) => {
            eprintln!("bridle: the status is not verified: {}", printable(&format!("{e:#}")));
            Ok(if a.allow_unverified { 0 } else { 1 })
        }
    }
}

/// The session's own exposure, then each group it belongs to (RULES.md §6a).
pub fn print_exposure(ss: &SessionStatus, groups: &[AggregateStatus]) {
    let x = &ss.exposure;
    let ceiling = x.ceiling.map_or("no ceiling".to_string(), |c| format!("ceiling {}", fmt_usd(c)));
    println!("session {}: outstanding approvals worth {} at worst ({ceiling})", ss.session, fmt_usd(x.usd));
    for g in groups {
        let who = match g.scope {
            aggregate::Scope::Owner => format!("every session of owner {}", ss.owner),
            aggregate::Scope::Agent => format!("every session of agent {} (any owner)", ss.agent),
        };
        println!("{who}: {} session(s) holding approvals or declaring a ceiling", g.sessions);
        for h in &g.holdings {
            println!("  may have outstanding: {} base units of {} on chain {}", h.amount, h.token, h.chain_id);
        }
        if g.holdings_omitted > 0 {
            println!("  and {} more token(s) outstanding, not listed by the enclave", g.holdings_omitted);
        }
        if g.ceilings.is_empty() {
            println!("  no {} binds this session", g.scope.rule());
        }
        for c in &g.ceilings {
            let unpriced = if c.unpriced.is_empty() {
                String::new()
            } else {
                format!(
                    " (unpriced, so further raises are refused: {})",
                    printable(&bridle_common::allowance::aggregate::listed(&c.unpriced, c.unpriced_omitted))
                )
            };
            println!(
                "  {} {} (policy {:#x}): {} at that policy's prices, {} left{unpriced}",
                g.scope.rule(),
                fmt_usd(c.ceiling),
                c.policy_hash,
                fmt_usd(c.usd),
                fmt_usd(c.ceiling.saturating_sub(c.usd))
            );
        }
        if g.ceilings_omitted > 0 {
            println!("  and {} higher {}(s), not listed by the enclave", g.ceilings_omitted, g.scope.rule());
        }
    }
}

pub fn print_allowances(ss: &SessionStatus) {
    let x = &ss.exposure;
    let usd = |v| bridle_common::allowance::fmt_usd(v);
    match x.ceiling {
        Some(c) => println!("outstanding exposure: {} of a {} ceiling", usd(x.usd), usd(c)),
        None => println!("outstanding exposure: {} (no ceiling)", usd(x.usd)),
    }
    if !x.unpriced.is_empty() {
        println!("unpriced outstanding: {}", printable(&x.unpriced.join(", ")));
    }
    if ss.allowances.is_empty() {
        println!("no approvals signed");
    }
    for e in &ss.allowances {
        let holder = if e.holder == ss.session { String::new() } else { format!(" (held by {})", e.holder) };
        let state = match e.state {
            AllowanceState::Swept if !e.amount.is_zero() => "swept (revocation signed, not known mined)",
            AllowanceState::Revoked if !e.amount.is_zero() => "revoked (revocation signed, not known mined)",
            s => s.as_str(),
        };
        println!(
            "chain {:<6} {:<9} {} {} → {} [{}] via {}{holder}",
            e.chain_id,
            state,
            format_decimal(e.amount, e.decimals),
            printable(&e.symbol),
            e.spender,
            e.kind.as_str(),
            printable(&e.via)
        );
        println!("             granted {}, expires {}", format_time(e.granted_at), format_time(e.expires_at));
    }
    print_pending(ss);
    if let Some(why) = &ss.suspended_reason {
        println!("suspended:  {}", printable(why));
    }
}

fn print_pending(ss: &SessionStatus) {
    for p in &ss.pending {
        println!(
            "pending:    {} {} ({}, until {}): {}",
            p.digest,
            printable(&p.kind),
            printable(&p.state),
            format_time(p.expires_at),
            printable(&p.reason)
        );
    }
}

pub fn print_status(ss: &SessionStatus) {
    println!("session:    {}", ss.session);
    println!("state:      {:?}", ss.state);
    println!("owner:      {}", ss.owner);
    println!("agent:      {}", ss.agent);
    println!("policy:     {}", ss.policy_hash);
    println!("valid until {}", format_time(ss.valid_until));
    match ss.uses_left {
        Some(l) => println!("uses:       {} ({l} left)", ss.uses),
        None => println!("uses:       {}", ss.uses),
    }
    if let Some(why) = &ss.suspended_reason {
        println!("suspended:  {}", printable(why));
    }
    // Outstanding until a revocation is mined: a sweep's signed revocation (`swept`) may
    // never be sent (a host keeps it), so it still counts (a review of 2026-12-07).
    let outstanding = ss.allowances.iter().filter(|a| !a.amount.is_zero()).count();
    let signed = |a: &&bridle_common::allowance::Allowance| {
        !a.amount.is_zero() && matches!(a.state, AllowanceState::Swept | AllowanceState::Revoked)
    };
    let swept = match ss.allowances.iter().filter(signed).count() {
        0 => String::new(),
        n => format!(" ({n} with a revocation signed, not known mined)"),
    };
    println!(
        "approvals:  {} outstanding{swept} of {} recorded, exposure {}{}",
        outstanding,
        ss.allowances.len(),
        bridle_common::allowance::fmt_usd(ss.exposure.usd),
        ss.exposure.ceiling.map(|c| format!(" of {}", bridle_common::allowance::fmt_usd(c))).unwrap_or_default()
    );
    print_pending(ss);
    for c in &ss.caps {
        let reset = c.resets_at.map(|t| format!(", resets {}", format_time(t))).unwrap_or_default();
        println!(
            "{:<22} {}: spent {} of {} {}{reset}",
            printable(&c.rule),
            printable(&c.what),
            format_decimal(c.spent, c.decimals),
            format_decimal(c.cap, c.decimals),
            printable(&c.symbol)
        );
    }
    for r in &ss.rate_limits {
        println!("{:<22} {}", printable(&r.rule), rate_line(r));
    }
}

/// A rate limit's use as the enclave counts it (by weight, approved signatures included).
pub fn rate_line(r: &bridle_common::protocol::RateStatus) -> String {
    let window = bridle_common::units::format_duration(r.window);
    match r.used {
        Some(n) => format!("{n} of {} signatures in the last {window}", r.max),
        None => format!(
            "full: the last {window} holds signatures the session's history no longer counts (at most {})",
            r.max
        ),
    }
}
