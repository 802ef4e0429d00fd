//! Validation of a policy's off-chain signing rules: typed data (R-SIGN-3), permits
//! (R-SIGN-3, R-APP-1) and messages (R-SIGN-4). Part of [`CompiledPolicy::compile`]: the
//! document is destructured exhaustively there; each check here reads the fields it needs.
//!
//! [`CompiledPolicy::compile`]: super::compile::CompiledPolicy::compile

use super::compile::{invalid, Limits, MAX_ENTRIES, MAX_NAME};
use super::doc::*;
use super::index::ByAddress;
use crate::error::Denial;
use alloy_primitives::Address;

/// Typed-data rules: never a token-moving, call-carrying, wrapping or owner type, never a
/// domain naming a listed token, Permit2 or the owner's.
pub(super) fn check_typed_data(doc: &Policy, tokens_by_address: &ByAddress, type_limits: Limits) -> Result<(), Denial> {
    let Policy { typed_data, user_operations, delegations, chains, permits, .. } = doc;
    // Typed data rules (R-SIGN-3).
    for (i, r) in typed_data.iter().enumerate() {
        let TypedDataRule { name, version, chain_id, verifying_contract, primary_type } = r;
        let rule = format!("typed_data[{i}]");
        // A restored policy keeps the rule it was accepted under (an identifier): one
        // naming an elementary type then matches nothing, as typed data must name a
        // declared struct.
        let ident = !primary_type.is_empty()
            && primary_type.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && !primary_type.starts_with(|c: char| c.is_ascii_digit());
        let named = match type_limits {
            Limits::New => crate::bounds::is_struct_name(primary_type),
            Limits::Restored => ident,
        };
        if primary_type.len() > MAX_NAME || !named {
            return Err(invalid(
                rule,
                format!("primary_type `{primary_type}` is not a struct type name (an elementary type is never signed)"),
            ));
        }
        if primary_type == "EIP712Domain" || primary_type == "OwnerAction" {
            return Err(invalid(rule, format!("`{primary_type}` can never be signed by a session")));
        }
        // EIP-3009's later drafts (every `…WithAuthorization`) were refused from
        // 2026-12-05 on: a policy restored from before keeps its rule (signing refuses
        // them whatever the rules say).
        let moves = crate::typed::is_token_moving_type(primary_type)
            && (type_limits == Limits::New
                || !primary_type.ends_with("WithAuthorization")
                || matches!(primary_type.as_str(), "TransferWithAuthorization" | "ReceiveWithAuthorization"));
        if moves {
            return Err(invalid(
                rule,
                format!("`{primary_type}` moves tokens: permits are allowed only by [[permits]] rules, bounded like approvals"),
            ));
        }
        if crate::typed::is_7702_name(primary_type) {
            return Err(invalid(rule, "EIP-7702 authorizations are never signed (R-SIGN-1)"));
        }
        // New policies only: a restored one keeps what it was accepted under (signing
        // refuses such typed data anyway), so one session cannot stop a node of a newer
        // image from installing a snapshot (a review of 2026-12-05).
        if type_limits == Limits::New {
            if crate::typed::CALL_CARRIERS.contains(&primary_type.as_str()) {
                return Err(invalid(
                    rule,
                    format!(
                        "`{primary_type}` carries a call a contract runs as the signer: the call inside is not checked as one; never signed"
                    ),
                ));
            }
            if crate::typed::ACCOUNT_WRAPPERS.contains(&primary_type.as_str()) {
                return Err(invalid(
                    rule,
                    format!("`{primary_type}` is an account's wrapper of an opaque digest (ERC-1271): never signed"),
                ));
            }
            if verifying_contract
                .is_some_and(|a| user_operations.senders.contains(&a) || delegations.delegators.contains(&a))
            {
                return Err(invalid(
                    rule,
                    "typed data verified by an account the session signs for (user_operations.senders, delegations.delegators) could carry any digest that account would accept as its own (ERC-1271): never signed",
                ));
            }
        }
        if name.is_none() && verifying_contract.is_none() {
            return Err(invalid(
                rule,
                "name the domain (name or verifying_contract): a rule for any domain allows too much",
            ));
        }
        if let Some(n) = name {
            if crate::typed::is_bridle_domain(n) {
                return Err(invalid(
                    rule,
                    "the \"Bridle\" domain is the owner's: a session never signs it (R-TRUST-5)",
                ));
            }
            if n.len() > 256 {
                return Err(invalid(rule, "name longer than 256 bytes"));
            }
        }
        if version.as_ref().is_some_and(|v| v.len() > 256) {
            return Err(invalid(rule, "version longer than 256 bytes"));
        }
        if let Some(c) = chain_id {
            if !chains.contains(c) {
                return Err(invalid(rule, format!("chain {c} is not in chains")));
            }
        }
        if let Some(vc) = verifying_contract {
            if tokens_by_address.contains_key(vc) {
                return Err(invalid(
                    rule,
                    format!("{vc} is a listed token: its typed data can move tokens, so only [[permits]] rules may allow it"),
                ));
            }
            if *vc == crate::typed::PERMIT2 || permits.iter().any(|p| p.permit2 == Some(*vc)) {
                return Err(invalid(rule, "Permit2 typed data is allowed only by [[permits]] rules"));
            }
        }
    }
    Ok(())
}

/// Permit rules: each bounded like an approval (a cap for a covered token, a spender list).
/// Returns every Permit2 contract the rules name, the canonical one first.
pub(super) fn check_permits(doc: &Policy) -> Result<Vec<Address>, Denial> {
    let Policy { permits, tokens, approvals, .. } = doc;
    // Permit rules (R-SIGN-3, R-APP-1).
    let mut permit2 = vec![crate::typed::PERMIT2];
    for (i, r) in permits.iter().enumerate() {
        let PermitRule { kind, tokens: covered, max_deadline, permit2: p2 } = r;
        let rule = format!("permits[{i}]");
        if *max_deadline == 0 || *max_deadline > 366 * 86_400 {
            return Err(invalid(rule, "max_deadline must be between 1 second and 366 days"));
        }
        match (kind, p2) {
            (PermitKind::Eip2612, Some(_)) => {
                return Err(invalid(rule, "permit2 is set on an eip2612 rule"));
            }
            (PermitKind::Permit2, Some(a)) => {
                if *a == Address::ZERO {
                    return Err(invalid(rule, "the zero address is not a Permit2 contract"));
                }
                // A listed token named as a Permit2 contract would have its functions read as
                // Permit2's (a review of 2026-12-07).
                if tokens.iter().any(|t| t.address == *a) {
                    return Err(invalid(rule, format!("{a} is a listed token, not a Permit2 contract")));
                }
                if !permit2.contains(a) {
                    permit2.push(*a);
                }
            }
            _ => {}
        }
        if covered.len() > MAX_ENTRIES {
            return Err(invalid(rule, format!("at most {MAX_ENTRIES} tokens")));
        }
        let mut any_cap = false;
        for sym in covered {
            let ti = tokens
                .iter()
                .position(|t| &t.symbol == sym)
                .ok_or_else(|| invalid(&rule, format!("unknown token `{sym}`: list it under tokens")))?;
            if !approvals.caps.iter().any(|c| &c.token == sym) {
                return Err(invalid(
                    &rule,
                    format!(
                        "{} has no approval cap (approvals.max): a permit for it could never be bounded",
                        tokens[ti].symbol
                    ),
                ));
            }
            any_cap = true;
        }
        if covered.is_empty() {
            any_cap = !approvals.caps.is_empty();
        }
        if !any_cap {
            return Err(invalid(
                rule,
                "no covered token has an approval cap (approvals.max): no permit could be signed",
            ));
        }
        if approvals.spenders.is_empty() {
            return Err(invalid(rule, "approvals.spenders is empty: no permit could be signed"));
        }
    }
    Ok(permit2)
}

/// Message rules: no empty or oversized text, a SIWE domain that is a host[:port].
pub(super) fn check_messages(messages: &[MessageRule]) -> Result<(), Denial> {
    // Message rules (R-SIGN-4).
    for (i, m) in messages.iter().enumerate() {
        let rule = format!("messages[{i}]");
        match m {
            MessageRule::Exact(t) | MessageRule::Prefix(t) => {
                if t.is_empty() {
                    return Err(invalid(rule, "an empty text would allow every message"));
                }
                if t.len() > 4096 {
                    return Err(invalid(rule, "text longer than 4096 bytes"));
                }
            }
            MessageRule::SiweDomain(d) => {
                if d.is_empty()
                    || d.len() > 253
                    || d.contains("://")
                    || d.chars().any(|c| c.is_whitespace() || c == '/' || c.is_control())
                {
                    return Err(invalid(rule, format!("`{d}` is not a domain (host[:port], no scheme or path)")));
                }
            }
        }
    }
    Ok(())
}
