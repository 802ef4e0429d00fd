//! Function signatures as policies name them (`transfer(address to,uint256 amount)`, `*`,
//! `receive()`): parsed under hard bounds on their text before alloy's parser sees them,
//! then on the depth and parts of the parameter types, so a policy cannot make the signing
//! path's decoder recurse or clone without bound.

use super::compile::{invalid, CompiledFn, FnMatcher, MAX_ENTRIES};
use super::doc::{ArgRule, ArgValue, FunctionRule, Op};
use crate::error::Denial;
use alloy_dyn_abi::{DynSolType, Specifier};
use alloy_json_abi::Function;

/// Longest function signature, and its deepest nesting of tuples and array dimensions:
/// checked before a signature reaches the ABI parser (whose recursion follows the nesting).
pub const MAX_SIGNATURE: usize = 1024;
pub const MAX_TYPE_DEPTH: usize = 8;
/// Most parts of a function's parameter types (fixed arrays counted element by element).
pub const MAX_TYPE_NODES: usize = 256;

/// Parse a function signature: `*`, `receive()`, or `name(type,…)` with optional
/// parameter names. Returns the matcher and the parameter tuple type.
pub fn parse_function(sig: &str) -> Result<(FnMatcher, Option<(Function, DynSolType)>), String> {
    parse_function_with(sig, Limits::New)
}

/// Which bounds a policy is compiled under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// A policy being created or updated: every bound.
    New,
    /// A policy restored from a snapshot, accepted by an earlier build: the parameter
    /// types' depth and parts, the struct-name rule for a typed-data `primary_type`
    /// (2026-12-03) and the one-decimals-per-address rule (2026-12-06) are not applied again, so one session cannot stop a node of a newer
    /// image from installing a snapshot. Calls are still bounded when decoded
    /// (`calls::MAX_DECODED_NODES`), and typed data must name a declared struct.
    Restored,
}

/// [`parse_function`] under `limits`.
pub fn parse_function_with(sig: &str, limits: Limits) -> Result<(FnMatcher, Option<(Function, DynSolType)>), String> {
    let s = sig.trim();
    if s == "*" {
        return Ok((FnMatcher::Any, None));
    }
    if s == "receive()" {
        return Ok((FnMatcher::Receive, None));
    }
    check_signature_bounds(s)?;
    let f = Function::parse(s).map_err(|e| format!("`{sig}` is not a function signature: {e}"))?;
    let mut types = Vec::with_capacity(f.inputs.len());
    for p in &f.inputs {
        types.push(p.resolve().map_err(|e| format!("`{sig}`: {e}"))?);
    }
    let ty = DynSolType::Tuple(types);
    if limits == Limits::Restored {
        return Ok((FnMatcher::Selector(*f.selector()), Some((f, ty))));
    }
    // The text's bound counts brackets, which `T[1][1]…` closes one by one: a second
    // review found ≈ 330 dimensions passing it, each a node alloy clones per element.
    // alloy's own depth counts every dimension; the nodes count fixed arrays' elements.
    if ty.nesting_depth() > MAX_TYPE_DEPTH + 1 {
        return Err(format!("`{sig}`: types nested {} deep; at most {MAX_TYPE_DEPTH}", ty.nesting_depth() - 1));
    }
    let nodes = crate::abi_shape::type_nodes(&ty);
    if nodes > MAX_TYPE_NODES {
        return Err(format!(
            "`{sig}`: its types have {nodes} parts (fixed arrays counted element by element); at most {MAX_TYPE_NODES}"
        ));
    }
    Ok((FnMatcher::Selector(*f.selector()), Some((f, ty))))
}

/// Hard bounds on a signature's text before any parser sees it: its length, and the depth
/// of tuples and array dimensions (each `(` or `[` opens a level).
pub fn check_signature_bounds(s: &str) -> Result<(), String> {
    if s.len() > MAX_SIGNATURE {
        return Err(format!("a function signature of {} bytes; at most {MAX_SIGNATURE}", s.len()));
    }
    let (mut depth, mut max) = (0usize, 0usize);
    for c in s.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // The outer parentheses of the argument list are one level.
    if max > MAX_TYPE_DEPTH + 1 {
        return Err(format!("types nested {} deep; at most {MAX_TYPE_DEPTH}", max - 1));
    }
    Ok(())
}

/// The type at `path` inside a tuple type.
pub fn type_at<'a>(ty: &'a DynSolType, path: &[u32]) -> Option<&'a DynSolType> {
    let mut t = ty;
    for &i in path {
        t = match t {
            DynSolType::Tuple(items) => items.get(i as usize)?,
            DynSolType::FixedArray(inner, n) if (i as usize) < *n => inner,
            DynSolType::Array(inner) => inner,
            _ => return None,
        };
    }
    Some(t)
}

fn value_fits(ty: &DynSolType, v: &ArgValue) -> bool {
    matches!(
        (ty, v),
        (DynSolType::Address, ArgValue::Address(_) | ArgValue::Owner | ArgValue::Account)
            | (DynSolType::Uint(_), ArgValue::Uint(_))
            | (DynSolType::Int(_), ArgValue::Int(_))
            | (DynSolType::Bool, ArgValue::Bool(_))
            | (DynSolType::Bytes | DynSolType::FixedBytes(_), ArgValue::Bytes(_))
            | (DynSolType::String, ArgValue::String(_))
    )
}

/// One `[[calls]].functions` entry, checked and compiled: its signature parsed under
/// `limits`, each argument rule's path, operator and values checked against the type.
pub(super) fn compile_function(f: &FunctionRule, rule: String, limits: Limits) -> Result<CompiledFn, Denial> {
    let FunctionRule { signature, args } = f;
    let (matcher, parsed) = parse_function_with(signature, limits).map_err(|e| invalid(&rule, e))?;
    if !args.is_empty() && parsed.is_none() {
        return Err(invalid(&rule, format!("`{signature}` has no arguments to constrain")));
    }
    if args.len() > 64 {
        return Err(invalid(&rule, "at most 64 argument rules per function"));
    }
    let params = parsed.map(|(_, t)| t);
    for (k, a) in args.iter().enumerate() {
        let ArgRule { path, op, values } = a;
        let arule = format!("{rule}.args[{k}]");
        let ty = params
            .as_ref()
            .and_then(|t| if path.is_empty() { None } else { type_at(t, path) })
            .ok_or_else(|| invalid(&arule, format!("argument path {path:?} does not exist in `{signature}`")))?;
        match op {
            Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte if values.len() != 1 => {
                return Err(invalid(&arule, format!("`{}` takes exactly one value", op.as_str())))
            }
            Op::In | Op::NotIn if values.is_empty() => {
                return Err(invalid(&arule, format!("`{}` needs at least one value", op.as_str())))
            }
            _ => {}
        }
        if matches!(op, Op::Lt | Op::Lte | Op::Gt | Op::Gte) && !matches!(ty, DynSolType::Uint(_) | DynSolType::Int(_))
        {
            return Err(invalid(&arule, format!("`{}` compares numbers; the argument is {ty}", op.as_str())));
        }
        if values.len() > MAX_ENTRIES {
            return Err(invalid(&arule, format!("at most {MAX_ENTRIES} values")));
        }
        for v in values {
            if !value_fits(ty, v) {
                return Err(invalid(&arule, format!("value {v:?} does not fit argument type {ty}")));
            }
        }
    }
    let params = if args.is_empty() { None } else { params };
    Ok(CompiledFn { rule, matcher, params, args: args.clone() })
}
