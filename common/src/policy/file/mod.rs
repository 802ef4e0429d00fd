//! The policy file people write (TOML, or the same shape in JSON), resolved into the
//! normalized [`Policy`]: amounts with units to integers, token symbols to addresses,
//! durations to seconds, `valid_for` to an absolute `valid_until`.

use super::compile::{parse_function, type_at};
use super::doc::*;
use crate::error::{Denial, ErrorCode};
use crate::period::{parse_time, Period};
use crate::units::{native_unit_decimals, parse_decimal, parse_duration, parse_native, split_amount};
use alloy_dyn_abi::DynSolType;
use alloy_json_abi::Function;
use alloy_primitives::{Address, Bytes, I256, U256};
use serde::Deserialize;
use std::str::FromStr;

mod spec;
pub use spec::*;

fn err(rule: impl Into<String>, reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::InvalidPolicy, rule, reason)
}

/// Parse a policy file: TOML, or JSON when it starts with `{`.
pub fn parse_file(text: &str) -> Result<PolicyFile, Denial> {
    // Bounded before any parser recurses (TOML arrays and inline tables nest like JSON).
    crate::bounds::check_json_depth(text, "the policy file")?;
    if text.trim_start().starts_with('{') {
        // JSON takes the last of duplicate keys silently; a policy must say each thing once.
        crate::policy::strict_json::no_duplicate_keys(text)
            .map_err(|e| Denial::new(ErrorCode::InvalidPolicy, format!("policy JSON: {e}")))?;
        serde_json::from_str(text).map_err(|e| Denial::new(ErrorCode::InvalidPolicy, format!("policy JSON: {e}")))
    } else {
        toml::from_str(text).map_err(|e| Denial::new(ErrorCode::InvalidPolicy, format!("policy TOML: {e}")))
    }
}

/// Parse and resolve a policy file at time `now` (for `valid_for`). JSON that is no policy
/// file but is a policy document itself (as `bridle policy normalize` prints it) is taken
/// as it is: the enclave's own compilation checks it, and the owner's console can compare
/// the document it is shown with the text it was given.
pub fn resolve_text(text: &str, now: u64) -> Result<Policy, Denial> {
    match parse_file(text) {
        Ok(f) => resolve(f, now),
        // Only past the file's bounds and its duplicate-key check (both run again here: the
        // error may have been theirs).
        Err(e) if text.trim_start().starts_with('{') => {
            let bounded = crate::bounds::check_json_depth(text, "the policy file").is_ok()
                && crate::policy::strict_json::no_duplicate_keys(text).is_ok();
            if bounded {
                let v: serde_json::Value = serde_json::from_str(text).map_err(|_| e.clone())?;
                let doc = Policy::deserialize(&v).map_err(|_| e)?;
                // A document's addresses pass the file's EIP-55 check too (a review of
                // 2026-12-07: a hand-edited document kept a mistyped mixed-case address).
                document_checksums(&v)?;
                Ok(doc)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// An address as written: all lowercase or all uppercase hex, or mixed case whose EIP-55
/// checksum holds — a mixed-case address that fails it is a typo until shown otherwise (a
/// review of 2026-12-07: it was taken, and `explain` then printed the checksummed form of the
/// mistyped address, so the typo never showed).
fn parse_address(s: &str, rule: &str) -> Result<Address, Denial> {
    let a = Address::from_str(s.trim()).map_err(|_| err(rule, format!("`{s}` is not an address")))?;
    checksum_holds(s, a).map_err(|why| err(rule, why))?;
    Ok(a)
}

/// Whether `s`, which spells `a`, is all one case or holds its EIP-55 checksum.
pub(crate) fn checksum_holds(s: &str, a: Address) -> Result<(), String> {
    let t = s.trim();
    let digits = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    let mixed = digits.bytes().any(|b| b.is_ascii_lowercase()) && digits.bytes().any(|b| b.is_ascii_uppercase());
    let checksummed = a.to_checksum(None);
    if mixed && checksummed.get(2..) != Some(digits) {
        return Err(format!(
            "`{s}` is written in mixed case but its EIP-55 checksum does not hold (a mistyped character?): the \
             address it spells is checksummed {checksummed}; write that, or the address in lowercase"
        ));
    }
    Ok(())
}

/// Every string of a policy document that spells an address (`0x` and 40 hex digits) passes
/// [`checksum_holds`]. The document's depth is bounded before this is called.
fn document_checksums(v: &serde_json::Value) -> Result<(), Denial> {
    match v {
        serde_json::Value::String(s) => match Address::from_str(s) {
            Ok(a) if s.len() == 42 => checksum_holds(s, a).map_err(|why| Denial::new(ErrorCode::InvalidPolicy, why)),
            _ => Ok(()),
        },
        serde_json::Value::Array(a) => a.iter().try_for_each(document_checksums),
        serde_json::Value::Object(o) => o.values().try_for_each(document_checksums),
        _ => Ok(()),
    }
}

fn time(t: &TimeSpec, rule: &str) -> Result<u64, Denial> {
    match t {
        TimeSpec::Unix(n) => Ok(*n),
        TimeSpec::Text(s) => parse_time(s).ok_or_else(|| {
            err(rule, format!("`{s}` is not a time (RFC 3339 UTC like 2026-11-23T10:00:00Z, or unix seconds)"))
        }),
    }
}

struct Units<'a> {
    tokens: &'a [Token],
}

impl Units<'_> {
    /// "100 USDC" → (Token USDC, 100e6); "0.5 ETH" → (Native, 5e17).
    fn amount(&self, text: &str, rule: &str) -> Result<(Asset, U256), Denial> {
        let (num, unit) = split_amount(text).map_err(|e| err(rule, e.to_string()))?;
        if let Some(d) = native_unit_decimals(unit) {
            let v = parse_decimal(num, d, unit).map_err(|e| err(rule, e.to_string()))?;
            return Ok((Asset::Native, v));
        }
        let t = self.tokens.iter().find(|t| t.symbol == unit).ok_or_else(|| {
            err(
                rule,
                format!("unknown unit `{unit}` in `{text}`: use ETH, gwei, wei or a symbol listed under [tokens]"),
            )
        })?;
        let v = parse_decimal(num, t.decimals, unit).map_err(|e| err(rule, e.to_string()))?;
        Ok((Asset::Token(t.symbol.clone()), v))
    }

    fn native(&self, text: &str, rule: &str) -> Result<U256, Denial> {
        parse_native(text).map_err(|e| err(rule, e.to_string()))
    }
}

/// Resolve a parsed file into the normalized policy.
pub fn resolve(f: PolicyFile, now: u64) -> Result<Policy, Denial> {
    let mut tokens = Vec::new();
    for (symbol, t) in &f.tokens {
        let rule = format!("tokens.{symbol}");
        tokens.push(Token {
            symbol: symbol.clone(),
            address: parse_address(&t.address, &rule)?,
            decimals: t.decimals,
            chain_id: t.chain_id,
        });
    }
    let u = Units { tokens: &tokens };

    let valid_after = f.valid_after.as_ref().map(|t| time(t, "valid_after")).transpose()?;
    let valid_until = match (&f.valid_until, &f.valid_for) {
        (Some(_), Some(_)) => return Err(err("valid_for", "give valid_until or valid_for, not both")),
        (Some(t), None) => Some(time(t, "valid_until")?),
        (None, Some(d)) => {
            let secs = parse_duration(d).map_err(|e| err("valid_for", e.to_string()))?;
            Some(valid_after.unwrap_or(now).max(now).saturating_add(secs))
        }
        (None, None) => None,
    };
    let max_duration = f
        .max_duration
        .as_deref()
        .map(|d| parse_duration(d).map_err(|e| err("max_duration", e.to_string())))
        .transpose()?;

    let mut limits = Vec::new();
    for (i, l) in f.limits.iter().enumerate() {
        let rule = format!("limits[{i}]");
        let (asset, max) = u.amount(&l.max, &rule)?;
        let period = Period::parse(&l.per).ok_or_else(|| {
            err(&rule, format!("`{}` is not a period (minute, hour, day, week, month, session)", l.per))
        })?;
        limits.push(SpendLimit { asset, period, max });
    }
    let mut streams = Vec::new();
    for (i, s) in f.streams.iter().enumerate() {
        let rule = format!("streams[{i}]");
        let (asset, initial) = u.amount(&s.initial, &rule)?;
        let (a2, rate) = u.amount(&s.rate, &rule)?;
        let (a3, max) = u.amount(&s.max, &rule)?;
        if a2 != asset || a3 != asset {
            return Err(err(rule, "initial, rate and max must be in the same unit"));
        }
        let every = parse_duration(&s.every).map_err(|e| err(&rule, e.to_string()))?;
        streams.push(StreamLimit { asset, initial, rate, every, max });
    }
    let max_value_per_call = f.max_value_per_call.as_deref().map(|v| u.native(v, "max_value_per_call")).transpose()?;

    let mut calls = Vec::new();
    for (i, c) in f.calls.iter().enumerate() {
        let rule = format!("calls[{i}]");
        let target_token: Option<&Token> = match c.target.trim() {
            "*" => None,
            t if t.starts_with("0x") => {
                let a = parse_address(t, &rule)?;
                tokens.iter().find(|x| x.address == a)
            }
            sym => tokens.iter().find(|x| x.symbol == sym),
        };
        let target = match c.target.trim() {
            "*" => None,
            t if t.starts_with("0x") => Some(parse_address(t, &rule)?),
            sym => Some(tokens.iter().find(|t| t.symbol == sym).map(|t| t.address).ok_or_else(|| {
                err(&rule, format!("target `{sym}` is neither an address, \"*\" nor a listed token"))
            })?),
        };
        let mut functions = Vec::new();
        for (j, fs) in c.functions.iter().enumerate() {
            let frule = format!("{rule}.functions[{j}]");
            functions.push(match fs {
                FnSpec::Plain(s) => FunctionRule { signature: s.trim().to_string(), args: vec![] },
                FnSpec::Rules(r) => FunctionRule {
                    signature: r.signature.trim().to_string(),
                    args: resolve_args(r, &u, &frule, target_token)?,
                },
            });
        }
        calls.push(CallRule { target, functions });
    }

    let recipients = f
        .recipients
        .as_ref()
        .map(|rs| rs.iter().map(|r| resolve_party(r, "recipients")).collect::<Result<Vec<_>, _>>())
        .transpose()?;

    let mut rate_limits = Vec::new();
    for (i, r) in f.rate_limits.iter().enumerate() {
        let window = parse_duration(&r.window).map_err(|e| err(format!("rate_limits[{i}]"), e.to_string()))?;
        rate_limits.push(RateLimit { max: r.max, window });
    }

    let to_u128 = |v: U256, rule: &str| u128::try_from(v).map_err(|_| err(rule, "value out of range"));
    let gas = GasRules {
        max_fee_per_gas: f
            .gas
            .max_fee_per_gas
            .as_deref()
            .map(|v| u.native(v, "gas.max_fee_per_gas").and_then(|x| to_u128(x, "gas.max_fee_per_gas")))
            .transpose()?,
        max_priority_fee_per_gas: f
            .gas
            .max_priority_fee_per_gas
            .as_deref()
            .map(|v| {
                u.native(v, "gas.max_priority_fee_per_gas").and_then(|x| to_u128(x, "gas.max_priority_fee_per_gas"))
            })
            .transpose()?,
        max_gas_limit: f.gas.max_gas_limit,
        cost_limits: f
            .gas
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let rule = format!("gas.limits[{i}]");
                let max = u.native(&l.max, &rule)?;
                let period = Period::parse(&l.per).ok_or_else(|| err(&rule, format!("`{}` is not a period", l.per)))?;
                Ok(GasCostLimit { period, max })
            })
            .collect::<Result<_, Denial>>()?,
        count_in_native: f.gas.count_in_native,
    };

    let mut caps = Vec::new();
    for (i, m) in f.approvals.max.iter().enumerate() {
        let rule = format!("approvals.max[{i}]");
        match u.amount(m, &rule)? {
            (Asset::Token(token), max) => caps.push(ApprovalCap { token, max }),
            (Asset::Native, _) => return Err(err(rule, "approval caps are per token, not native")),
        }
    }
    let lifetime = f
        .approvals
        .lifetime
        .as_deref()
        .map(|d| parse_duration(d).map_err(|e| err("approvals.lifetime", e.to_string())))
        .transpose()?;
    let jit_tolerance_bps =
        f.approvals.jit_tolerance.as_deref().map(|t| parse_percent_bps(t, "approvals.jit_tolerance")).transpose()?;
    let mut jit = Vec::new();
    for (i, j) in f.approvals.jit.iter().enumerate() {
        let rule = format!("approvals.jit[{i}]");
        let (_, parsed) = parse_function(&j.signature).map_err(|e| err(&rule, e))?;
        let Some((func, tuple)) = parsed else {
            return Err(err(&rule, format!("`{}` has no arguments: it cannot consume an approval", j.signature)));
        };
        let amount_path = arg_path(&func, &tuple, &j.amount_arg, &rule, &j.signature)?;
        let token_path = j.token_arg.as_ref().map(|a| arg_path(&func, &tuple, a, &rule, &j.signature)).transpose()?;
        jit.push(JitRule { signature: j.signature.trim().to_string(), amount_path, token_path });
    }
    let approvals = ApprovalRules {
        spenders: f
            .approvals
            .spenders
            .iter()
            .map(|s| parse_address(s, "approvals.spenders"))
            .collect::<Result<_, _>>()?,
        caps,
        lifetime,
        jit,
        jit_tolerance_bps: jit_tolerance_bps.unwrap_or(0),
        jit_only: f.approvals.jit_only,
        revoke_gas: f.approvals.revoke_gas,
        execution_gas_chains: f.approvals.execution_gas_chains.clone(),
    };

    let addrs = |v: &[String], rule: &str| -> Result<Vec<Address>, Denial> {
        v.iter()
            .map(|a| match a.trim() {
                "v0.7" | "entrypoint-v0.7" => Ok(crate::userop::ENTRY_POINT_V07),
                a => parse_address(a, rule),
            })
            .collect()
    };
    let (mut entry_points, mut entry_points_v08) = (Vec::new(), Vec::new());
    for e in &f.user_operations.entry_points {
        let rule = "user_operations.entry_points";
        match e.trim() {
            "v0.7" | "entrypoint-v0.7" => entry_points.push(crate::userop::ENTRY_POINT_V07),
            "v0.8" | "entrypoint-v0.8" => entry_points_v08.push(crate::userop::ENTRY_POINT_V08),
            a => match a.split_once('@') {
                Some((a, "v0.8")) => entry_points_v08.push(parse_address(a.trim(), rule)?),
                Some((a, "v0.7")) => entry_points.push(parse_address(a.trim(), rule)?),
                Some((_, v)) => return Err(err(rule, format!("entry point version {v:?}: write v0.7 or v0.8"))),
                None => entry_points.push(parse_address(a, rule)?),
            },
        }
    }
    let user_operations = UserOpRules {
        entry_points,
        entry_points_v08,
        paymasters: addrs(&f.user_operations.paymasters, "user_operations.paymasters")?,
        factories: addrs(&f.user_operations.factories, "user_operations.factories")?,
        senders: addrs(&f.user_operations.senders, "user_operations.senders")?,
        unmetered_calls: f.user_operations.unmetered_calls,
    };
    let list =
        |v: &[String], rule: &str| v.iter().map(|a| parse_address(a.trim(), rule)).collect::<Result<Vec<_>, Denial>>();
    let delegations = DelegationRules {
        managers: list(&f.delegations.managers, "delegations.managers")?,
        delegators: list(&f.delegations.delegators, "delegations.delegators")?,
    };
    let mut typed_data = Vec::new();
    for (i, t) in f.typed_data.iter().enumerate() {
        let rule = format!("typed_data[{i}]");
        typed_data.push(TypedDataRule {
            name: t.name.clone(),
            version: t.version.clone(),
            chain_id: t.chain_id,
            verifying_contract: t.verifying_contract.as_deref().map(|a| parse_address(a, &rule)).transpose()?,
            primary_type: t.primary_type.trim().to_string(),
        });
    }
    let mut permits = Vec::new();
    for (i, pspec) in f.permits.iter().enumerate() {
        let rule = format!("permits[{i}]");
        let kind = match pspec.kind.trim().to_ascii_lowercase().as_str() {
            "eip2612" | "eip-2612" | "erc2612" | "permit" => PermitKind::Eip2612,
            "permit2" => PermitKind::Permit2,
            k => return Err(err(&rule, format!("permit kind `{k}` is not eip2612 or permit2"))),
        };
        let max_deadline = parse_duration(&pspec.max_deadline).map_err(|e| err(&rule, e.to_string()))?;
        permits.push(PermitRule {
            kind,
            tokens: pspec.tokens.iter().map(|t| t.trim().to_string()).collect(),
            max_deadline,
            permit2: pspec.permit2.as_deref().map(|a| parse_address(a, &rule)).transpose()?,
        });
    }
    let mut messages = Vec::new();
    for (i, m) in f.messages.iter().enumerate() {
        let rule = format!("messages[{i}]");
        messages.push(match (&m.exact, &m.prefix, &m.siwe_domain) {
            (Some(t), None, None) => MessageRule::Exact(t.clone()),
            (None, Some(t), None) => MessageRule::Prefix(t.clone()),
            (None, None, Some(d)) => MessageRule::SiweDomain(d.trim().to_string()),
            _ => return Err(err(rule, "give exactly one of exact, prefix or siwe_domain")),
        });
    }

    let mut prices = Vec::new();
    for (sym, v) in &f.prices {
        let rule = format!("prices.{sym}");
        let asset = if sym.eq_ignore_ascii_case("ETH") {
            Asset::Native
        } else if tokens.iter().any(|t| &t.symbol == sym) {
            Asset::Token(sym.clone())
        } else {
            return Err(err(rule, format!("`{sym}` is neither ETH nor a symbol listed under [tokens]")));
        };
        let usd = match v {
            PriceSpec::Int(n) => U256::from(*n) * U256::from(10u8).pow(U256::from(USD_DECIMALS)),
            PriceSpec::Text(t) => parse_usd(t, false, &rule)?,
        };
        prices.push(Price { asset, usd });
    }
    let exposure_ceiling = f.exposure_ceiling.as_deref().map(|t| parse_usd(t, true, "exposure_ceiling")).transpose()?;
    let owner_exposure_ceiling =
        f.owner_exposure_ceiling.as_deref().map(|t| parse_usd(t, true, "owner_exposure_ceiling")).transpose()?;
    let agent_exposure_ceiling =
        f.agent_exposure_ceiling.as_deref().map(|t| parse_usd(t, true, "agent_exposure_ceiling")).transpose()?;
    let escalate = match &f.escalate {
        None => None,
        Some(e) => {
            let above_value = e
                .above_value
                .as_deref()
                .map(|v| u.amount(v, "escalate.above_value").map(|(asset, max)| EscalateValue { asset, max }))
                .transpose()?;
            let above_usd = e.above_usd.as_deref().map(|t| parse_usd(t, true, "escalate.above_usd")).transpose()?;
            let ttl =
                parse_duration(e.ttl.as_deref().unwrap_or("10m")).map_err(|x| err("escalate.ttl", x.to_string()))?;
            let per = e
                .per
                .as_deref()
                .map(|p| {
                    Period::parse(p).ok_or_else(|| {
                        err("escalate.per", format!("`{p}` is not a period (minute, hour, day, week, month, session)"))
                    })
                })
                .transpose()?;
            Some(Escalation { above_value, above_usd, per, ttl })
        }
    };
    let trip_wire = f
        .trip_wire
        .as_ref()
        .map(|t| {
            parse_duration(&t.within)
                .map(|within| TripWire { denials: t.denials, within })
                .map_err(|e| err("trip_wire.within", e.to_string()))
        })
        .transpose()?;

    let release_signers = f
        .release_signers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let t = h.trim();
            let t = t.strip_prefix("0x").unwrap_or(t);
            match hex::decode(t) {
                Ok(b) if b.len() == 48 => Ok(alloy_primitives::FixedBytes::<48>::from_slice(&b)),
                _ => Err(err(
                    format!("release_signers[{i}]"),
                    format!("`{h}` is not a PCR8 value (96 hex digits: the release's pcrs.json `PCR8`)"),
                )),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    let conformance = f
        .conformance
        .as_deref()
        .map(|c| {
            super::conformance::Conformance::parse(c)
                .ok_or_else(|| err("conformance", format!("`{c}` is not a standard Bridle checks (\"AG-212\")")))
        })
        .transpose()?;

    Ok(Policy {
        version: f.version,
        name: f.name,
        chains: f.chains,
        valid_after,
        valid_until,
        max_duration,
        quota: f.quota,
        tokens,
        limits,
        streams,
        max_value_per_call,
        calls,
        recipients,
        rate_limits,
        gas: gas.into(),
        approvals: approvals.into(),
        user_operations: user_operations.into(),
        delegations: delegations.into(),
        typed_data,
        permits,
        messages,
        prices,
        exposure_ceiling,
        owner_exposure_ceiling,
        agent_exposure_ceiling,
        escalate: escalate.map(Box::new),
        trip_wire,
        release_signers,
        conformance,
    })
}

/// "50000 USD" (unit required when `unit`), or "1.00" / "1.00 USD" for a price: USD with
/// 18 decimals, exact.
fn parse_usd(text: &str, unit: bool, rule: &str) -> Result<U256, Denial> {
    let t = text.trim();
    let num = match t.strip_suffix("USD").or_else(|| t.strip_suffix("usd")) {
        Some(n) => n.trim(),
        None if unit => return Err(err(rule, format!("`{text}` needs the unit USD, e.g. \"50000 USD\""))),
        None => t,
    };
    let num = num.strip_prefix('$').unwrap_or(num);
    parse_decimal(num, USD_DECIMALS, "USD").map_err(|e| err(rule, e.to_string()))
}

/// "0.5%" → 50 basis points.
fn parse_percent_bps(text: &str, rule: &str) -> Result<u32, Denial> {
    let num = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| err(rule, format!("`{text}` is not a percentage like \"1%\" or \"0.5%\"")))?;
    let v = parse_decimal(num.trim(), 2, "%").map_err(|e| err(rule, e.to_string()))?;
    u32::try_from(v).map_err(|_| err(rule, format!("`{text}` is out of range")))
}

/// An argument reference (name, index, or dotted index path) resolved to an index path
/// that exists in `tuple`.
fn arg_path(func: &Function, tuple: &DynSolType, a: &ArgRef, rule: &str, sig: &str) -> Result<Vec<u32>, Denial> {
    let path: Vec<u32> = match a {
        ArgRef::Index(i) => vec![*i],
        ArgRef::Name(n) => {
            if let Some(i) = func.inputs.iter().position(|p| p.name == *n) {
                vec![i as u32]
            } else {
                n.split('.').map(|p| p.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|_| {
                    err(rule, format!("`{n}` is neither a parameter name of `{sig}` nor an index path like 2.1"))
                })?
            }
        }
    };
    type_at(tuple, &path).ok_or_else(|| err(rule, format!("argument {path:?} does not exist in `{sig}`")))?;
    Ok(path)
}

fn resolve_party(s: &str, rule: &str) -> Result<Party, Denial> {
    match s.trim() {
        "$owner" => Ok(Party::Owner),
        "$account" => Ok(Party::Account),
        a => Ok(Party::Address(parse_address(a, rule)?)),
    }
}

fn resolve_args(r: &FnRulesSpec, u: &Units<'_>, rule: &str, target: Option<&Token>) -> Result<Vec<ArgRule>, Denial> {
    if r.args.is_empty() {
        return Ok(vec![]);
    }
    let (_, parsed) = parse_function(&r.signature).map_err(|e| err(rule, e))?;
    let Some((func, tuple)) = parsed else {
        return Err(err(rule, format!("`{}` has no arguments to constrain", r.signature)));
    };
    let mut out = Vec::new();
    for (k, a) in r.args.iter().enumerate() {
        let arule = format!("{rule}.args[{k}]");
        let path = arg_path(&func, &tuple, &a.arg, &arule, &r.signature)?;
        let ty = type_at(&tuple, &path)
            .ok_or_else(|| err(&arule, format!("argument {path:?} does not exist in `{}`", r.signature)))?;
        let op = Op::parse(a.op.trim()).ok_or_else(|| {
            err(&arule, format!("`{}` is not an operator (eq, ne, lt, lte, gt, gte, in, not_in)", a.op))
        })?;
        let raw: Vec<&toml::Value> = match (&a.value, &a.values) {
            (Some(v), None) => vec![v],
            (None, Some(vs)) => vs.iter().collect(),
            _ => return Err(err(&arule, "give exactly one of value or values")),
        };
        let values = raw.into_iter().map(|v| arg_value(ty, v, u, &arule, target)).collect::<Result<_, _>>()?;
        out.push(ArgRule { path, op, values });
    }
    Ok(out)
}

/// An argument rule's value. An amount with a unit (`"50 USDC"`) on a call to a listed token
/// must be in that token's unit: the unit picks the decimals, so `"50 DAI"` on a USDC
/// argument would mean 5×10¹⁹ USDC base units (review finding 9).
fn arg_value(
    ty: &DynSolType,
    v: &toml::Value,
    u: &Units<'_>,
    rule: &str,
    target: Option<&Token>,
) -> Result<ArgValue, Denial> {
    let bad = || err(rule, format!("{v} does not fit argument type {ty}"));
    match (ty, v) {
        (DynSolType::Address, toml::Value::String(s)) => match s.trim() {
            "$owner" => Ok(ArgValue::Owner),
            "$account" => Ok(ArgValue::Account),
            sym if !sym.starts_with("0x") => {
                u.tokens.iter().find(|t| t.symbol == sym).map(|t| ArgValue::Address(t.address)).ok_or_else(bad)
            }
            a => Ok(ArgValue::Address(parse_address(a, rule)?)),
        },
        (DynSolType::Uint(_), toml::Value::Integer(i)) if *i >= 0 => Ok(ArgValue::Uint(U256::from(*i as u64))),
        (DynSolType::Uint(_), toml::Value::String(s)) => {
            let s = s.trim();
            if s.chars().all(|c| c.is_ascii_digit() || c == '_') {
                return parse_decimal(s, 0, "").map(ArgValue::Uint).map_err(|e| err(rule, e.to_string()));
            }
            if let Some(h) = s.strip_prefix("0x") {
                return U256::from_str_radix(h, 16).map(ArgValue::Uint).map_err(|_| bad());
            }
            let (asset, amount) = u.amount(s, rule)?;
            if let Some(t) = target {
                let same = matches!(&asset, Asset::Token(sym) if *sym == t.symbol);
                if !same {
                    let unit = match &asset {
                        Asset::Token(sym) => sym.clone(),
                        Asset::Native => "the native coin".into(),
                    };
                    return Err(err(
                        rule,
                        format!(
                            "`{s}` is in {unit}, but the call's target is {}: write the amount in {} (or as a plain integer of base units)",
                            t.symbol, t.symbol
                        ),
                    ));
                }
            }
            Ok(ArgValue::Uint(amount))
        }
        (DynSolType::Int(_), toml::Value::Integer(i)) => Ok(ArgValue::Int(I256::try_from(*i).map_err(|_| bad())?)),
        (DynSolType::Int(_), toml::Value::String(s)) => {
            I256::from_dec_str(s.trim()).map(ArgValue::Int).map_err(|_| bad())
        }
        (DynSolType::Bool, toml::Value::Boolean(b)) => Ok(ArgValue::Bool(*b)),
        (DynSolType::Bytes | DynSolType::FixedBytes(_), toml::Value::String(s)) => {
            let b = hex::decode(s.trim().trim_start_matches("0x")).map_err(|_| bad())?;
            if let DynSolType::FixedBytes(n) = ty {
                if b.len() != *n {
                    return Err(bad());
                }
            }
            Ok(ArgValue::Bytes(Bytes::from(b)))
        }
        (DynSolType::String, toml::Value::String(s)) => Ok(ArgValue::String(s.clone())),
        _ => Err(bad()),
    }
}
