//! Decisions for what is signed off chain: EIP-712 typed data (R-SIGN-3) and EIP-191
//! personal messages (R-SIGN-4). Deny by default, like everything else: typed data needs
//! a matching `typed_data` rule or is a bounded permit under a `permits` rule; a message
//! needs a matching `messages` rule.

use super::calls::check_approval;
use super::compile::{AssetRef, CompiledPolicy};
use super::doc::{MessageRule, PermitKind, PermitRule};
use super::engine::{check_chain, check_session, check_spend, Charges, Context};
use super::exposure::check_allowances;
use super::state::Counters;
use crate::allowance::{AllowanceKind, Grant, GrantOp, Key, Place, Via, MAX_PERMIT2_NONCE};
use crate::error::{Denial, ErrorCode};
use crate::period::format_time;
use crate::typed::{classify, u160_max, ParsedTypedData, PermitMsg, TypedClass};
use crate::units::format_duration;
use alloy_primitives::{Address, U256};
use std::str::FromStr;

/// Longest personal message the enclave signs.
pub const MAX_MESSAGE: usize = 16 * 1024;

fn not_allowed(rule: impl Into<String>, reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::TypedDataNotAllowed, rule, reason)
}

/// Decide EIP-712 typed data.
pub fn evaluate_typed_data(
    p: &CompiledPolicy,
    c: &Counters,
    ctx: &Context,
    td: &ParsedTypedData,
) -> Result<Charges, Denial> {
    check_session(p, c, ctx, 1)?;
    let dom = &td.data.domain;
    // A domain chain id, when present, must be an allowed chain.
    let chain = match dom.chain_id {
        None => None,
        Some(id) => {
            let id = u64::try_from(id).map_err(|_| {
                Denial::rule(ErrorCode::ChainNotAllowed, "chains", format!("domain chainId {id} is not a chain"))
            })?;
            check_chain(p, id)?;
            Some(id)
        }
    };
    if dom.verifying_contract.is_some_and(|a| p.doc.delegations.managers.contains(&a)) {
        return Err(Denial::rule(
            ErrorCode::TypedDataNotAllowed,
            "delegations.managers",
            "typed data for a delegation manager (a delegation from the session) is never signed",
        ));
    }
    // An account the session signs for (a user operation's sender, a delegator) checks its
    // own typed data through ERC-1271 however it wraps a digest (Safe's SafeMessage,
    // Ambire's AmbireOperation, …): any such message could be another signature's digest —
    // a Permit2 permit of the account's tokens — past every cap (a review of 2026-12-05).
    if dom
        .verifying_contract
        .is_some_and(|a| p.doc.user_operations.senders.contains(&a) || p.doc.delegations.delegators.contains(&a))
    {
        return Err(Denial::rule(
            ErrorCode::TypedDataNotAllowed,
            "typed_data",
            "typed data verified by an account the session signs for (user_operations.senders, delegations.delegators) could carry any digest it would accept as its own (ERC-1271); never signed",
        ));
    }
    // From EntryPoint v0.8 on, a user operation's hash is EIP-712 typed data (domain
    // "ERC4337", primary type PackedUserOperation, the entry point as verifying contract):
    // signed as typed data it would pass none of the user_operations checks (entry point,
    // sender, paymaster, gas, the calls inside). Never signed that way, whatever
    // [[typed_data]] allows: user operations go through their own payload (a review of
    // 2026-12-04).
    let uo = &p.doc.user_operations;
    let entry_point = dom.verifying_contract.is_some_and(|a| {
        a == crate::userop::ENTRY_POINT_V07
            || a == crate::userop::ENTRY_POINT_V08
            || uo.entry_points.contains(&a)
            || uo.entry_points_v08.contains(&a)
    });
    // Safe's 4337 module signs its user operations as `SafeOp` typed data (the module as
    // verifying contract, no domain name): the same.
    let primary = td.data.primary_type.as_str();
    if entry_point || matches!(primary, "PackedUserOperation" | "SafeOp") || dom.name.as_deref() == Some("ERC4337") {
        return Err(Denial::rule(
            ErrorCode::TypedDataNotAllowed,
            "user_operations",
            "typed data for an EntryPoint (a user operation's hash) is never signed as typed data: send the user operation itself",
        ));
    }
    match classify(td, &p.permit2) {
        TypedClass::Refused(d) => Err(d),
        TypedClass::Generic => {
            let pt = td.data.primary_type.as_str();
            let hit = p.doc.typed_data.iter().position(|r| {
                r.primary_type == pt
                    && r.name.as_deref().is_none_or(|n| dom.name.as_deref() == Some(n))
                    && r.version.as_deref().is_none_or(|v| dom.version.as_deref() == Some(v))
                    && r.chain_id.is_none_or(|id| chain == Some(id))
                    // A rule naming no verifying contract matches domains that name none: an
                    // ERC-2771 forwarder (OpenGSN lets anyone register any domain name and
                    // request type) always names itself (a review of 2026-12-05).
                    && r.verifying_contract == dom.verifying_contract
            });
            match hit {
                Some(_) => Ok(Charges::at(None, 1)),
                None => Err(not_allowed(
                    "typed_data",
                    format!(
                        "no typed_data rule allows `{pt}` in domain {{name: {}, version: {}, chainId: {}, verifyingContract: {}}}",
                        // The dApp's text, escaped and cut to 64 bytes: a refusal's reason is
                        // kept in the audit log and may become a session's suspension reason,
                        // which the owner's and the agent's tools show (a review of 2026-12-07:
                        // a 200-byte domain name addressed the model as if Bridle spoke).
                        dom.name.as_deref().map(|n| crate::quote::in_quotes_counted(n, 64).0).unwrap_or_else(|| "-".into()),
                        dom.version.as_deref().map(|n| crate::quote::in_quotes_counted(n, 64).0).unwrap_or_else(|| "-".into()),
                        chain.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                        dom.verifying_contract.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                    ),
                )),
            }
        }
        TypedClass::Permit(m) => {
            let Some(chain) = chain else {
                return Err(not_allowed("permits", "a permit domain without chainId could be replayed on any chain"));
            };
            let mut charges = Charges::at(None, 1);
            check_permit(p, ctx, chain, td, &m, &mut charges)?;
            check_spend(p, c, ctx, &charges)?;
            check_allowances(p, c, ctx, &charges)?;
            Ok(charges)
        }
    }
}

/// The rule index and rule covering `kind` for the token at `token` (and, for Permit2,
/// the Permit2 contract `vc`).
fn permit_rule(
    p: &CompiledPolicy,
    kind: PermitKind,
    vc: Address,
    token: Option<usize>,
) -> Result<(usize, &PermitRule), Denial> {
    let of_kind = p
        .doc
        .permits
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == kind)
        .filter(|(_, r)| kind != PermitKind::Permit2 || r.permit2.unwrap_or(crate::typed::PERMIT2) == vc);
    let mut any = false;
    for (i, r) in of_kind {
        any = true;
        let covers = match token {
            Some(t) => r.tokens.is_empty() || r.tokens.contains(&p.doc.tokens[t].symbol),
            None => true, // the approval checks refuse an unlisted token with its own reason
        };
        if covers {
            return Ok((i, r));
        }
    }
    let what = match kind {
        PermitKind::Eip2612 => "EIP-2612 permits".to_string(),
        PermitKind::Permit2 => format!("Permit2 messages for {vc}"),
    };
    Err(not_allowed(
        "permits",
        if any {
            format!(
                "no permits rule allows {what} for {}",
                token.map(|t| p.doc.tokens[t].symbol.as_str()).unwrap_or("this token")
            )
        } else {
            format!("no permits rule allows {what}")
        },
    ))
}

/// A permit time (a uint256) as unix seconds, saturating.
fn as_time(t: U256) -> u64 {
    u64::try_from(t).unwrap_or(u64::MAX)
}

fn check_deadline(ctx: &Context, rule: usize, r: &PermitRule, what: &str, t: U256) -> Result<(), Denial> {
    if what != "expiration" && t < U256::from(ctx.now) {
        let shown = u64::try_from(t).map(format_time).unwrap_or_else(|_| t.to_string());
        return Err(Denial::rule(
            ErrorCode::ArgumentRejected,
            format!("permits[{rule}].max_deadline"),
            format!("{what} {shown} is already past (now {})", format_time(ctx.now)),
        ));
    }
    let latest = ctx.now.saturating_add(r.max_deadline);
    if t > U256::from(latest) {
        let shown = u64::try_from(t).map(format_time).unwrap_or_else(|_| t.to_string());
        return Err(Denial::rule(
            ErrorCode::ArgumentRejected,
            format!("permits[{rule}].max_deadline"),
            format!("{what} {shown} is later than now + {} ({})", format_duration(r.max_deadline), format_time(latest)),
        ));
    }
    Ok(())
}

fn check_permit(
    p: &CompiledPolicy,
    ctx: &Context,
    chain: u64,
    td: &ParsedTypedData,
    m: &PermitMsg,
    charges: &mut Charges,
) -> Result<(), Denial> {
    let dom = &td.data.domain;
    let Some(vc) = dom.verifying_contract else {
        return Err(not_allowed("permits", "a permit domain must name its verifying contract"));
    };
    match m {
        PermitMsg::Eip2612 { owner, spender, value, nonce: _, deadline } => {
            let token = p.token_at(chain, &vc);
            let (i, r) = permit_rule(p, PermitKind::Eip2612, vc, token)?;
            if *owner != ctx.account {
                return Err(Denial::rule(
                    ErrorCode::ArgumentRejected,
                    format!("permits[{i}]"),
                    format!("permit owner {owner} is not the session's address {}", ctx.account),
                ));
            }
            if *value == U256::MAX {
                return Err(Denial::rule(
                    ErrorCode::UnlimitedApproval,
                    "approvals",
                    format!("permit of type(uint256).max to {spender} is never allowed"),
                ));
            }
            check_deadline(ctx, i, r, "deadline", *deadline)?;
            check_approval(p, vc, token, *spender, *value, "permit")?;
            if let Some(t) = token {
                charges.add(AssetRef::Token(t), *value);
            }
            // An EIP-2612 permit sets the token's allowance, exactly as approve does, at any
            // moment until its deadline (RULES.md §6: it floats).
            charges.place = Some(Place::Floating { deadline: as_time(*deadline) });
            charges.approvals.push(Grant {
                key: Key {
                    chain_id: chain,
                    holder: ctx.account,
                    token: vc,
                    spender: *spender,
                    kind: AllowanceKind::Erc20,
                },
                op: GrantOp::Set(*value),
                end: None,
                token_index: token,
                via: Via("permit"),
                nonce: None,
            });
        }
        PermitMsg::Permit2Allowance { spender, details, sig_deadline, batch: _ } => {
            permit2_domain(dom)?;
            if details.is_empty() {
                return Err(Denial::malformed("a Permit2 batch with no token"));
            }
            for d in details {
                let token = p.token_at(chain, &d.token);
                let (i, r) = permit_rule(p, PermitKind::Permit2, vc, token)?;
                if d.amount >= u160_max() {
                    return Err(Denial::rule(
                        ErrorCode::UnlimitedApproval,
                        "approvals",
                        format!("Permit2 allowance of type(uint160).max to {spender} is never allowed"),
                    ));
                }
                check_deadline(ctx, i, r, "sigDeadline", *sig_deadline)?;
                check_deadline(ctx, i, r, "expiration", d.expiration)?;
                // Above it, no sweep could cancel the permit for certain (RULES.md §6).
                let nonce = u64::try_from(d.nonce).ok().filter(|n| *n <= MAX_PERMIT2_NONCE).ok_or_else(|| {
                    Denial::rule(
                        ErrorCode::ArgumentRejected,
                        format!("permits[{i}]"),
                        format!(
                            "Permit2 nonce {} is above {MAX_PERMIT2_NONCE}: a sweep could not cancel the permit (a fresh session key's nonces start at 0)",
                            d.nonce
                        ),
                    )
                })?;
                check_approval(p, d.token, token, *spender, d.amount, "Permit2 allowance")?;
                if let Some(t) = token {
                    charges.add(AssetRef::Token(t), d.amount);
                }
                // Permit2 treats expiration 0 as "the block the permit is used in", which can
                // be any block until the signature deadline.
                let exp = as_time(d.expiration);
                charges.place = Some(Place::Floating { deadline: as_time(*sig_deadline) });
                charges.approvals.push(Grant {
                    key: Key {
                        chain_id: chain,
                        holder: ctx.account,
                        token: d.token,
                        spender: *spender,
                        kind: AllowanceKind::Permit2 { contract: vc },
                    },
                    op: GrantOp::Set(d.amount),
                    end: Some(if exp == 0 { as_time(*sig_deadline) } else { exp }),
                    token_index: token,
                    via: Via("Permit2 allowance"),
                    nonce: Some(nonce),
                });
            }
        }
        PermitMsg::Permit2Transfer { spender, permitted, deadline, batch: _ } => {
            permit2_domain(dom)?;
            if permitted.is_empty() {
                return Err(Denial::malformed("a Permit2 batch with no token"));
            }
            for (tok, amount) in permitted {
                let token = p.token_at(chain, tok);
                let (i, r) = permit_rule(p, PermitKind::Permit2, vc, token)?;
                if *amount == U256::MAX {
                    return Err(Denial::rule(
                        ErrorCode::UnlimitedApproval,
                        "approvals",
                        format!("Permit2 transfer of type(uint256).max to {spender} is never allowed"),
                    ));
                }
                check_deadline(ctx, i, r, "deadline", *deadline)?;
                check_approval(p, *tok, token, *spender, *amount, "Permit2 transfer")?;
                if let Some(t) = token {
                    charges.add(AssetRef::Token(t), *amount);
                }
                charges.place = Some(Place::Floating { deadline: as_time(*deadline) });
                charges.approvals.push(Grant {
                    key: Key {
                        chain_id: chain,
                        holder: ctx.account,
                        token: *tok,
                        spender: *spender,
                        kind: AllowanceKind::SignatureTransfer { contract: vc },
                    },
                    op: GrantOp::Add(*amount),
                    end: Some(as_time(*deadline)),
                    token_index: token,
                    via: Via("Permit2 transfer"),
                    nonce: None,
                });
            }
        }
    }
    Ok(())
}

/// Permit2's domain is exactly {name: "Permit2", chainId, verifyingContract}.
fn permit2_domain(dom: &alloy_sol_types::Eip712Domain) -> Result<(), Denial> {
    if dom.name.as_deref() != Some("Permit2") || dom.version.is_some() || dom.salt.is_some() {
        return Err(not_allowed(
            "permits",
            "a Permit2 message's domain must be exactly {name: \"Permit2\", chainId, verifyingContract}",
        ));
    }
    Ok(())
}

/// UTF-8 text without control characters but tab, line feed and carriage return (no C0,
/// DEL or C1): what a person reads, never a digest's bytes.
fn is_printable_text(msg: &[u8]) -> bool {
    std::str::from_utf8(msg).is_ok_and(|s| s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')))
}

/// Decide an EIP-191 personal message.
pub fn evaluate_message(p: &CompiledPolicy, c: &Counters, ctx: &Context, msg: &[u8]) -> Result<Charges, Denial> {
    check_session(p, c, ctx, 1)?;
    if msg.len() > MAX_MESSAGE {
        return Err(Denial::new(ErrorCode::TooLarge, format!("message of {} bytes; at most {MAX_MESSAGE}", msg.len())));
    }
    let mut specific = None;
    for (i, r) in p.doc.messages.iter().enumerate() {
        match r {
            MessageRule::Exact(t) => {
                if msg == t.as_bytes() {
                    return Ok(Charges::at(None, 1));
                }
            }
            // A 32-byte message could be a hash (a userOpHash is signed in exactly this
            // form), so no prefix rule ever allows one.
            MessageRule::Prefix(t) => {
                if msg.starts_with(t.as_bytes()) {
                    // Printable text only: other bytes after a prefix could be a digest an
                    // account checks as its own (Biconomy v2 signs `hash ‖ account` as a
                    // 52-byte personal message, and a short prefix can be ground into a
                    // permit's digest; reviews of 2026-12-05).
                    if msg.len() != 32 && is_printable_text(msg) {
                        return Ok(Charges::at(None, 1));
                    }
                    specific = Some(Denial::rule(
                        ErrorCode::MessageNotAllowed,
                        format!("messages[{i}]"),
                        "a 32-byte message could be a hash (a user operation is signed in exactly this form), and one that is not printable text could carry one; no prefix rule allows either",
                    ));
                }
            }
            MessageRule::SiweDomain(d) => {
                if msg.len() == 32 {
                    continue;
                }
                match check_siwe(p, ctx, msg, d) {
                    Ok(true) => return Ok(Charges::at(None, 1)),
                    Ok(false) => {}
                    Err(reason) => {
                        specific = Some(Denial::rule(ErrorCode::MessageNotAllowed, format!("messages[{i}]"), reason))
                    }
                }
            }
        }
    }
    Err(specific.unwrap_or_else(|| {
        let preview: String =
            String::from_utf8_lossy(&msg[..msg.len().min(48)]).chars().filter(|c| !c.is_control()).collect();
        Denial::rule(
            ErrorCode::MessageNotAllowed,
            "messages",
            if p.doc.messages.is_empty() {
                "the policy allows no personal message".to_string()
            } else {
                format!("no messages rule allows this {}-byte message (\"{preview}…\")", msg.len())
            },
        )
    }))
}

/// `Ok(true)`: a SIWE message for `domain`, for the session's address, on an allowed
/// chain. `Ok(false)`: not a SIWE message for this domain. `Err`: for this domain, but
/// wrong in a way worth naming.
///
/// Parsed by EIP-4361's grammar, line by line and in its fixed order, so that nothing in
/// the free-text statement (one line, no line feed) can stand for a field: a statement
/// reading `Chain ID: 1` is a statement, and the chain is the one in the `Chain ID:` line.
fn check_siwe(p: &CompiledPolicy, ctx: &Context, msg: &[u8], domain: &str) -> Result<bool, String> {
    const HEADER: &str = " wants you to sign in with your Ethereum account:";
    let Ok(text) = std::str::from_utf8(msg) else { return Ok(false) };
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(head) = lines[0].strip_suffix(HEADER) else { return Ok(false) };
    let host = match head.split_once("://") {
        Some((scheme, h)) => {
            let ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !ok {
                return Ok(false);
            }
            h
        }
        None => head,
    };
    if !host.eq_ignore_ascii_case(domain) {
        return Ok(false);
    }
    let bad = |why: &str| Err(format!("not an EIP-4361 message for {domain}: {why}"));
    // Lines end in a line feed, and nothing else may stand for one to a looser parser: no
    // control characters (carriage return and tab included), no Unicode line or paragraph
    // separator (a review of 2026-12-05).
    if !is_printable_text(msg) || text.contains(['\r', '\t', '\u{2028}', '\u{2029}']) {
        return bad("it holds control characters or line separators");
    }
    let mut i = 1;
    let mut next = || {
        let l = lines.get(i).copied();
        i += 1;
        l
    };
    match next().map(Address::from_str) {
        Some(Ok(a)) if a == ctx.account => {}
        Some(Ok(a)) => return Err(format!("SIWE message for {domain} signs in as {a}, not the session's address")),
        _ => return bad("the second line is not an address"),
    }
    if next() != Some("") {
        return bad("no empty line after the address");
    }
    // [ statement LF ] LF, or (as siwe libraries write it without a statement) nothing.
    match lines.get(i).copied() {
        Some("") => i += 1,
        Some(l) if l.starts_with("URI: ") => {}
        Some(_) => {
            i += 1;
            if lines.get(i).copied() != Some("") {
                return bad("the statement is not followed by an empty line");
            }
            i += 1;
        }
        None => return bad("it ends after the address"),
    }
    let mut field = |name: &str| -> Result<&str, String> {
        match lines.get(i).and_then(|l| l.strip_prefix(name)).and_then(|l| l.strip_prefix(": ")) {
            Some(v) => {
                i += 1;
                Ok(v)
            }
            None => Err(format!("not an EIP-4361 message for {domain}: expected the `{name}:` line")),
        }
    };
    let uri = field("URI")?;
    let version = field("Version")?;
    let chain = field("Chain ID")?;
    let nonce = field("Nonce")?;
    let _issued = field("Issued At")?;
    if uri.is_empty() || uri.chars().any(|c| c.is_whitespace()) {
        return bad("the URI is empty or has spaces");
    }
    if version != "1" {
        return bad("Version is not 1");
    }
    if nonce.len() < 8 || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
        return bad("the nonce is not 8 or more letters and digits");
    }
    let _ = field("Expiration Time");
    let _ = field("Not Before");
    let _ = field("Request ID");
    if lines.get(i).copied() == Some("Resources:") {
        i += 1;
        while lines.get(i).is_some_and(|l| l.starts_with("- ")) {
            i += 1;
        }
    }
    if i != lines.len() {
        return bad("a line is out of place or unknown");
    }
    if chain.is_empty() || !chain.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("SIWE Chain ID `{chain}` is not a number"));
    }
    let id: u64 = chain.parse().map_err(|_| format!("SIWE Chain ID `{chain}` is not a chain"))?;
    if !p.doc.chains.contains(&id) {
        return Err(format!("SIWE message for {domain} is for chain {id}, not in {:?}", p.doc.chains));
    }
    Ok(true)
}
