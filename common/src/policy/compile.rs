//! Validation and compilation of a [`Policy`] into the form the engine evaluates.
//!
//! Validation destructures every struct exhaustively, so a field added to the document
//! without a check here fails to compile. Compilation precomputes what the signing path
//! would otherwise redo per request: selectors, ABI types, token and target indexes.

use super::doc::*;
use super::index::ByAddress;
use crate::error::{Denial, ErrorCode};
use crate::units::{format_decimal, format_duration};
use alloy_dyn_abi::DynSolType;
use alloy_primitives::{Address, B256, U256};

use super::signature::compile_function;
pub use super::signature::{
    check_signature_bounds, parse_function, parse_function_with, type_at, Limits, MAX_SIGNATURE, MAX_TYPE_DEPTH,
    MAX_TYPE_NODES,
};

/// Upper bounds that keep evaluation cost and memory bounded.
pub const MAX_ENTRIES: usize = 256;
pub const MAX_RATE: u64 = 100_000;
pub(super) const MAX_NAME: usize = 128;
/// Largest normalized policy (its canonical encoding), bytes. The README's example is about
/// 2.5 KiB; a policy costs the enclave memory per session (review finding 7).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
/// Most function entries across all `[[calls]]`, and argument rules across all of them.
pub const MAX_FUNCTIONS: usize = 512;
pub const MAX_ARG_RULES: usize = 1024;
/// What an amount refers to, resolved to an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetRef {
    Native,
    Token(usize),
}

/// One compiled function rule.
#[derive(Debug, Clone)]
pub struct CompiledFn {
    /// `calls[i].functions[j]`.
    pub rule: String,
    pub matcher: FnMatcher,
    /// Parameter types as one tuple, for decoding arguments (`None` when no arg rules).
    pub params: Option<DynSolType>,
    pub args: Vec<ArgRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FnMatcher {
    Any,
    Receive,
    Selector([u8; 4]),
}

#[derive(Debug, Clone)]
pub struct CompiledCall {
    pub target: Option<Address>,
    pub fns: Vec<CompiledFn>,
}

/// A validated, compiled policy.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub doc: Policy,
    pub hash: B256,
    /// Bytes of the canonical encoding (what the enclave's memory budget charges for it).
    pub canonical_len: usize,
    pub calls: Vec<CompiledCall>,
    /// Target address → indexes into `calls`.
    pub by_target: ByAddress,
    /// Indexes of wildcard rules.
    pub wildcards: Vec<usize>,
    /// Token address → token indexes (a token may be listed per chain).
    pub tokens_by_address: ByAddress,
    pub limit_assets: Vec<AssetRef>,
    pub stream_assets: Vec<AssetRef>,
    /// Per token index: the approval cap, if any.
    pub approval_caps: Vec<Option<U256>>,
    /// Permit2 contracts: the canonical one and any a permit rule names.
    pub permit2: Vec<Address>,
    /// Per token index: its USD price (18 decimals) per whole token, if the table has one.
    pub token_prices: Vec<Option<U256>>,
    /// The native coin's USD price, if the table has one.
    pub native_price: Option<U256>,
    /// Compiled `approvals.jit` rules, parallel to the document's.
    pub jit: Vec<CompiledJit>,
    /// The asset `escalate.above_value` counts.
    pub escalate_asset: Option<AssetRef>,
}

/// A compiled just-in-time consumer rule.
#[derive(Debug, Clone)]
pub struct CompiledJit {
    pub selector: [u8; 4],
    pub params: DynSolType,
    pub amount_path: Vec<u32>,
    pub token_path: Option<Vec<u32>>,
}

/// Longest approval lifetime a policy may set.
pub const MAX_APPROVAL_LIFETIME: u64 = 30 * 86_400;
/// Largest just-in-time tolerance: 10 % (AG-212 4.1).
pub const MAX_JIT_TOLERANCE_BPS: u32 = 1_000;
/// Longest escalation time-to-live.
pub const MAX_ESCALATION_TTL: u64 = 86_400;

pub(super) fn invalid(rule: impl Into<String>, reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::InvalidPolicy, rule, reason)
}

/// How far the owner's and the enclave's clocks may differ when a session's length is
/// checked against `max_duration` (seconds).
pub const CLOCK_SKEW: u64 = 300;

impl CompiledPolicy {
    /// Validate and compile. Errors are `invalid_policy` naming the rule.
    pub fn compile(doc: Policy) -> Result<CompiledPolicy, Denial> {
        Self::compile_with(doc, Limits::New)
    }

    /// Compile a policy an earlier build accepted, restored from a snapshot ([`Limits`]).
    pub fn compile_restored(doc: Policy) -> Result<CompiledPolicy, Denial> {
        Self::compile_with(doc, Limits::Restored)
    }

    fn compile_with(doc: Policy, type_limits: Limits) -> Result<CompiledPolicy, Denial> {
        let canonical_len = doc.canonical_bytes().len();
        if canonical_len > MAX_POLICY_BYTES {
            return Err(Denial::rule(
                ErrorCode::TooLarge,
                "policy",
                format!("the normalized policy is {canonical_len} bytes; at most {MAX_POLICY_BYTES}"),
            ));
        }
        let hash = doc.hash();
        let Policy {
            version,
            name,
            chains,
            valid_after,
            valid_until,
            max_duration,
            quota,
            tokens,
            limits,
            streams,
            max_value_per_call,
            calls,
            recipients,
            rate_limits,
            gas,
            approvals,
            user_operations,
            delegations,
            typed_data,
            permits,
            messages,
            prices,
            exposure_ceiling: _,       // compile_governance
            owner_exposure_ceiling: _, // compile_governance
            agent_exposure_ceiling: _, // compile_governance
            escalate,
            trip_wire: _,       // compile_governance
            release_signers: _, // compile_governance
            conformance: _,     // conformance
        } = &doc;

        if *version != POLICY_VERSION {
            return Err(invalid("version", format!("expected version {POLICY_VERSION}, found {version}")));
        }
        if name.trim().is_empty() || name.len() > MAX_NAME {
            return Err(invalid("name", format!("name must be 1 to {MAX_NAME} characters")));
        }
        if chains.is_empty() {
            return Err(invalid("chains", "no chain is allowed: the session could sign nothing"));
        }
        let Some(until) = valid_until else {
            return Err(invalid("valid_until", "a session must have valid_until (R-POL-1)"));
        };
        if let Some(after) = valid_after {
            if after >= until {
                return Err(invalid("valid_after", "valid_after must be before valid_until"));
            }
        }
        if let Some(d) = max_duration {
            if *d == 0 {
                return Err(invalid("max_duration", "max_duration must be positive"));
            }
        }
        if let Some(0) = quota {
            return Err(invalid("quota", "quota 0 allows no signature"));
        }
        for (what, n) in [
            ("chains", chains.len()),
            ("tokens", tokens.len()),
            ("limits", limits.len()),
            ("streams", streams.len()),
            ("calls", calls.len()),
            ("rate_limits", rate_limits.len()),
            ("gas.cost_limits", gas.cost_limits.len()),
            ("approvals.spenders", approvals.spenders.len()),
            ("approvals.caps", approvals.caps.len()),
            ("recipients", recipients.as_ref().map_or(0, |r| r.len())),
            ("user_operations.entry_points", user_operations.entry_points.len()),
            ("user_operations.entry_points_v08", user_operations.entry_points_v08.len()),
            ("user_operations.paymasters", user_operations.paymasters.len()),
            ("user_operations.factories", user_operations.factories.len()),
            ("user_operations.senders", user_operations.senders.len()),
            ("delegations.managers", delegations.managers.len()),
            ("delegations.delegators", delegations.delegators.len()),
            ("typed_data", typed_data.len()),
            ("permits", permits.len()),
            ("messages", messages.len()),
            ("prices", prices.len()),
            ("approvals.jit", approvals.jit.len()),
        ] {
            if n > MAX_ENTRIES {
                return Err(invalid(what, format!("{n} entries; at most {MAX_ENTRIES}")));
            }
        }

        let functions: usize = calls.iter().map(|c| c.functions.len()).sum();
        let arg_rules: usize = calls.iter().flat_map(|c| c.functions.iter()).map(|f| f.args.len()).sum();
        if functions > MAX_FUNCTIONS {
            return Err(invalid("calls", format!("{functions} function entries in all; at most {MAX_FUNCTIONS}")));
        }
        if arg_rules > MAX_ARG_RULES {
            return Err(invalid("calls", format!("{arg_rules} argument rules in all; at most {MAX_ARG_RULES}")));
        }

        // Tokens.
        let mut tokens_by_address = ByAddress::default();
        for (i, t) in tokens.iter().enumerate() {
            let Token { symbol, address, decimals, chain_id } = t;
            let rule = format!("tokens[{i}]");
            if symbol.is_empty()
                || symbol.len() > 32
                || !symbol.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
            {
                return Err(invalid(
                    rule,
                    format!("token symbol `{symbol}` must be 1 to 32 letters, digits, '.', '-' or '_'"),
                ));
            }
            if crate::units::native_unit_decimals(symbol).is_some() || symbol.eq_ignore_ascii_case("native") {
                return Err(invalid(rule, format!("`{symbol}` is reserved for the native coin")));
            }
            if *decimals > 77 {
                return Err(invalid(rule, format!("{decimals} decimals; at most 77")));
            }
            if tokens[..i].iter().any(|o| o.symbol == *symbol) {
                return Err(invalid(rule, format!("token symbol `{symbol}` listed twice")));
            }
            if tokens[..i].iter().any(|o| {
                o.address == *address && (o.chain_id.is_none() || chain_id.is_none() || o.chain_id == *chain_id)
            }) {
                return Err(invalid(rule, format!("token address {address} listed twice for the same chain")));
            }
            // One address is one asset (RULES.md §3): its limits and streams add the raw
            // amounts of every listing, so listings in different decimals would count one
            // in the other's units (10^Δ apart; found 2026-12-06 by a review). Not applied
            // again to a restored policy ([`Limits::Restored`]): its session keeps the
            // metering it was created with rather than stop a snapshot's installation.
            let mixed =
                || tokens[..i].iter().enumerate().find(|(_, o)| o.address == *address && o.decimals != *decimals);
            if let Some((j, o)) = mixed().filter(|_| type_limits == Limits::New) {
                return Err(invalid(
                    rule,
                    format!(
                        "token address {address} listed with {decimals} decimals here and {} in tokens[{j}]: one \
                         address is one asset, counted in one unit",
                        o.decimals
                    ),
                ));
            }
            if let Some(c) = chain_id {
                if !chains.contains(c) {
                    return Err(invalid(rule, format!("token on chain {c}, which the policy does not allow")));
                }
            }
            tokens_by_address.push(*address, i);
        }
        let asset_ref = |a: &Asset, rule: &str| -> Result<AssetRef, Denial> {
            match a {
                Asset::Native => Ok(AssetRef::Native),
                Asset::Token(sym) => tokens
                    .iter()
                    .position(|t| &t.symbol == sym)
                    .map(AssetRef::Token)
                    .ok_or_else(|| invalid(rule, format!("unknown token `{sym}`: list it under tokens"))),
            }
        };

        let mut limit_assets = Vec::with_capacity(limits.len());
        for (i, l) in limits.iter().enumerate() {
            let SpendLimit { asset, period: _, max: _ } = l;
            limit_assets.push(asset_ref(asset, &format!("limits[{i}]"))?);
        }
        let mut stream_assets = Vec::with_capacity(streams.len());
        for (i, s) in streams.iter().enumerate() {
            let StreamLimit { asset, initial, rate: _, every, max } = s;
            let rule = format!("streams[{i}]");
            if *every == 0 {
                return Err(invalid(rule, "stream period `every` must be positive"));
            }
            if initial > max {
                return Err(invalid(rule, "stream initial amount exceeds its max"));
            }
            stream_assets.push(asset_ref(asset, &rule)?);
        }

        // Calls.
        let mut compiled_calls = Vec::with_capacity(calls.len());
        let mut by_target = ByAddress::default();
        let mut wildcards = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            let CallRule { target, functions } = c;
            if functions.is_empty() {
                return Err(invalid(format!("calls[{i}]"), "no functions listed"));
            }
            let mut fns = Vec::with_capacity(functions.len());
            for (j, f) in functions.iter().enumerate() {
                let compiled = compile_function(f, format!("calls[{i}].functions[{j}]"), type_limits)?;
                if let (Some(a), FnMatcher::Selector(sel)) = (target, compiled.matcher) {
                    let listed = tokens_by_address.get(a).and_then(|v| v.first()).map(|&t| tokens[t].symbol.as_str());
                    let permit2 = permits.iter().any(|r| r.permit2 == Some(*a)) || *a == crate::typed::PERMIT2;
                    if type_limits == Limits::New {
                        super::unmetered::refuse_named(listed, permit2, sel, &f.signature, &compiled.rule)?;
                    }
                }
                fns.push(compiled);
            }
            match target {
                Some(a) => by_target.push(*a, i),
                None => wildcards.push(i),
            }
            compiled_calls.push(CompiledCall { target: *target, fns });
        }
        if let Some(i) = wildcards.first() {
            let rule = format!("calls[{i}]");
            if max_value_per_call.is_none() {
                return Err(invalid(rule, "a wildcard target needs max_value_per_call (R-POL-5)"));
            }
            for (ti, t) in tokens.iter().enumerate() {
                let capped =
                    limit_assets.contains(&AssetRef::Token(ti)) || stream_assets.contains(&AssetRef::Token(ti));
                if !capped {
                    return Err(invalid(
                        rule,
                        format!("a wildcard target needs a spend cap on every token; {} has none (R-POL-5)", t.symbol),
                    ));
                }
            }
        }

        if let Some(rs) = recipients {
            if rs.is_empty() {
                return Err(invalid(
                    "recipients",
                    "an empty recipient list allows no transfer; omit it to allow any recipient",
                ));
            }
        }
        for (i, r) in rate_limits.iter().enumerate() {
            let RateLimit { max, window } = r;
            if *max == 0 || *max > MAX_RATE || *window == 0 {
                return Err(invalid(
                    format!("rate_limits[{i}]"),
                    format!("max must be 1 to {MAX_RATE} and window positive"),
                ));
            }
        }
        // Every gas field is an independent bound; any value is meaningful.
        let GasRules {
            max_fee_per_gas: _,
            max_priority_fee_per_gas: _,
            max_gas_limit,
            cost_limits: _,
            count_in_native: _,
        } = &**gas;
        let ApprovalRules {
            spenders: _,
            caps,
            lifetime,
            jit,
            jit_tolerance_bps,
            jit_only,
            revoke_gas,
            execution_gas_chains,
        } = &**approvals;
        if let Some(g) = revoke_gas {
            let range = crate::allowance::MIN_REVOKE_GAS..=crate::allowance::MAX_REVOKE_GAS;
            if !range.contains(g) {
                return Err(invalid(
                    "approvals.revoke_gas",
                    format!(
                        "must be {} to {} (what an approve costs at least; a sweep's largest gas limit)",
                        range.start(),
                        range.end()
                    ),
                ));
            }
            // Every revocation below the floor settles nothing, and every sweep at or above
            // it is over the cap: the two rules contradict each other.
            if let Some(max) = max_gas_limit.filter(|max| max < g) {
                return Err(invalid(
                    "approvals.revoke_gas",
                    format!(
                        "{g} is above gas.max_gas_limit {max}: the agent's revocations could settle nothing and only the owner's signed sweep could revoke"
                    ),
                ));
            }
        }
        if execution_gas_chains.len() > crate::allowance::MAX_EXECUTION_GAS_CHAINS {
            return Err(invalid(
                "approvals.execution_gas_chains",
                format!(
                    "at most {} chains, got {}",
                    crate::allowance::MAX_EXECUTION_GAS_CHAINS,
                    execution_gas_chains.len()
                ),
            ));
        }
        for (i, c) in execution_gas_chains.iter().enumerate() {
            if *c == 0 || execution_gas_chains[..i].contains(c) {
                return Err(invalid(
                    format!("approvals.execution_gas_chains[{i}]"),
                    format!("chain {c} is zero or listed twice"),
                ));
            }
            if crate::allowance::L1_GAS_CHAINS.contains(c) {
                return Err(invalid(
                    format!("approvals.execution_gas_chains[{i}]"),
                    format!(
                        "chain {c} takes L1 data gas from the gas limit: no gas limit makes a revocation certain there"
                    ),
                ));
            }
        }
        if let Some(l) = lifetime {
            if *l == 0 || *l > MAX_APPROVAL_LIFETIME {
                return Err(invalid(
                    "approvals.lifetime",
                    format!("must be between 1 second and {}", format_duration(MAX_APPROVAL_LIFETIME)),
                ));
            }
        }
        if *jit_tolerance_bps > MAX_JIT_TOLERANCE_BPS {
            return Err(invalid(
                "approvals.jit_tolerance",
                format!("{}% is above the 10% maximum (AG-212 4.1)", format_decimal(U256::from(*jit_tolerance_bps), 2)),
            ));
        }
        if *jit_only && jit.is_empty() {
            return Err(invalid(
                "approvals.jit_only",
                "jit_only without approvals.jit rules would allow no approval; name the consuming functions",
            ));
        }
        let mut compiled_jit = Vec::with_capacity(jit.len());
        for (i, j) in jit.iter().enumerate() {
            let JitRule { signature, amount_path, token_path } = j;
            let rule = format!("approvals.jit[{i}]");
            let (matcher, parsed) = parse_function_with(signature, type_limits).map_err(|e| invalid(&rule, e))?;
            let (FnMatcher::Selector(selector), Some((_, params))) = (matcher, parsed) else {
                return Err(invalid(rule, format!("`{signature}` is not a function with arguments")));
            };
            match type_at(&params, amount_path) {
                Some(DynSolType::Uint(_)) if !amount_path.is_empty() => {}
                _ => {
                    return Err(invalid(
                        rule,
                        format!("amount argument {amount_path:?} is not a uint of `{signature}`"),
                    ))
                }
            }
            if let Some(tp) = token_path {
                match type_at(&params, tp) {
                    Some(DynSolType::Address) if !tp.is_empty() => {}
                    _ => {
                        return Err(invalid(rule, format!("token argument {tp:?} is not an address of `{signature}`")))
                    }
                }
            }
            compiled_jit.push(CompiledJit {
                selector,
                params,
                amount_path: amount_path.clone(),
                token_path: token_path.clone(),
            });
        }
        let mut approval_caps = vec![None; tokens.len()];
        for (i, c) in caps.iter().enumerate() {
            let ApprovalCap { token, max } = c;
            let rule = format!("approvals.caps[{i}]");
            match asset_ref(&Asset::Token(token.clone()), &rule)? {
                AssetRef::Token(ti) => {
                    if approval_caps[ti].is_some() {
                        return Err(invalid(rule, format!("two approval caps for {token}")));
                    }
                    if *max == U256::MAX {
                        return Err(invalid(rule, "an approval cap of type(uint256).max is unlimited (R-APP-1)"));
                    }
                    approval_caps[ti] = Some(*max);
                }
                AssetRef::Native => {}
            }
        }

        // User operations: addresses only; every list is an allowlist.
        let UserOpRules { entry_points, entry_points_v08, paymasters: _, factories: _, senders: _, unmetered_calls: _ } =
            &**user_operations;
        if entry_points.contains(&Address::ZERO) || entry_points_v08.contains(&Address::ZERO) {
            return Err(invalid("user_operations.entry_points", "the zero address is not an entry point"));
        }
        if let Some(a) = entry_points.iter().find(|a| entry_points_v08.contains(a)) {
            return Err(invalid(
                "user_operations.entry_points",
                format!("{a} is listed as both a v0.7 and a v0.8 entry point"),
            ));
        }

        // Delegations (ERC-7710): addresses only; both lists are allowlists.
        let DelegationRules { managers, delegators } = &**delegations;
        if managers.contains(&Address::ZERO) || delegators.contains(&Address::ZERO) {
            return Err(invalid("delegations", "the zero address is not a delegation manager or delegator"));
        }
        if managers.is_empty() && !delegators.is_empty() {
            return Err(invalid(
                "delegations.delegators",
                "delegators are listed but no manager: list the DelegationManager under delegations.managers",
            ));
        }

        // Typed data, permit and message rules (R-SIGN-3, R-SIGN-4, R-APP-1).
        super::compile_offchain::check_typed_data(&doc, &tokens_by_address, type_limits)?;
        let mut permit2 = super::compile_offchain::check_permits(&doc)?;
        super::compile_offchain::check_messages(messages)?;

        // Price table, exposure ceiling, escalation, trip-wire (AG-212).
        let mut token_prices = vec![None; tokens.len()];
        let mut native_price = None;
        for (i, pr) in prices.iter().enumerate() {
            let Price { asset, usd } = pr;
            let rule = format!("prices[{i}]");
            if usd.is_zero() {
                return Err(invalid(
                    rule,
                    "a price of 0 would make the asset free: approvals of it would count nothing",
                ));
            }
            let slot = match asset_ref(asset, &rule)? {
                AssetRef::Native => &mut native_price,
                AssetRef::Token(t) => &mut token_prices[t],
            };
            if slot.is_some() {
                return Err(invalid(rule, "asset priced twice"));
            }
            *slot = Some(*usd);
        }
        let mut escalate_asset = None;
        if let Some(e) = escalate {
            let Escalation { above_value, above_usd, per: _, ttl } = &**e;
            if above_value.is_none() && above_usd.is_none() {
                return Err(invalid("escalate", "give above_value or above_usd (or both)"));
            }
            if *ttl == 0 || *ttl > MAX_ESCALATION_TTL {
                return Err(invalid(
                    "escalate.ttl",
                    format!("must be between 1 second and {}", format_duration(MAX_ESCALATION_TTL)),
                ));
            }
            if let Some(EscalateValue { asset, max: _ }) = above_value {
                escalate_asset = Some(asset_ref(asset, "escalate.above_value")?);
            }
            if above_usd.is_some() && prices.is_empty() {
                return Err(invalid("escalate.above_usd", "a USD threshold needs a price table (prices)"));
            }
        }
        super::compile_governance::check_governance(&doc)?;
        super::conformance::check(&doc, &compiled_calls)?;

        // Every session holds its compiled policy: no room left over from building it.
        by_target.shrink_to_fit();
        tokens_by_address.shrink_to_fit();
        wildcards.shrink_to_fit();
        permit2.shrink_to_fit();
        Ok(CompiledPolicy {
            doc: doc.clone(),
            hash,
            canonical_len,
            calls: compiled_calls,
            by_target,
            wildcards,
            tokens_by_address,
            limit_assets,
            stream_assets,
            approval_caps,
            permit2,
            token_prices,
            native_price,
            jit: compiled_jit,
            escalate_asset,
        })
    }

    /// Checks that depend on when the session is created or updated: the session must not
    /// be over already, and may last at most `max_duration` (default 24 h) from its start.
    ///
    /// The owner's tools resolve `valid_for` with the owner's clock, the enclave checks with
    /// its own: a session may last [`CLOCK_SKEW`] more than `max_duration`, so that an
    /// enclave clock a little behind the owner's does not refuse a `valid_for = "24h"`.
    pub fn check_lifetime(&self, now: u64) -> Result<(), Denial> {
        let until = self.doc.valid_until.unwrap_or(0);
        if until <= now {
            return Err(Denial::rule(ErrorCode::Expired, "valid_until", "valid_until is in the past"));
        }
        let start = self.doc.valid_after.unwrap_or(now).max(now);
        let max = self.doc.max_duration.unwrap_or(DEFAULT_MAX_DURATION);
        let len = until - start;
        if len > max.saturating_add(CLOCK_SKEW) {
            return Err(invalid(
                "valid_until",
                format!(
                    "session would last {} but at most {} is allowed{}",
                    format_duration(len),
                    format_duration(max),
                    if self.doc.max_duration.is_none() { " (set max_duration to allow longer)" } else { "" }
                ),
            ));
        }
        Ok(())
    }

    /// The token a call targets on a chain, if the policy knows it.
    pub fn token_at(&self, chain_id: u64, address: &Address) -> Option<usize> {
        self.tokens_by_address
            .get(address)?
            .iter()
            .copied()
            .find(|&i| self.doc.tokens[i].chain_id.is_none_or(|c| c == chain_id))
    }

    /// Symbol and decimals of an asset.
    pub fn unit(&self, a: AssetRef) -> (&str, u8) {
        match a {
            AssetRef::Native => ("ETH", 18),
            AssetRef::Token(i) => (&self.doc.tokens[i].symbol, self.doc.tokens[i].decimals),
        }
    }

    /// Format an amount of an asset: `80 USDC`.
    pub fn fmt_amount(&self, a: AssetRef, v: U256) -> String {
        let (sym, d) = self.unit(a);
        format!("{} {sym}", format_decimal(v, d))
    }
}
