//! One call of a request against the policy (RULES.md §5): the allowlist and argument
//! rules, what is metered, recipients, approvals.

use super::compile::{AssetRef, CompiledFn, CompiledPolicy, FnMatcher};
use super::doc::{ArgValue, Op, Party};
use super::engine::{Charges, Context, Operation};
use crate::allowance::{AllowanceKind, Grant, GrantOp, Key, Via};
use crate::error::{Denial, ErrorCode};
use crate::tx::Call;
use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall};
use std::cmp::Ordering;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
}

/// Permit2's AllowanceTransfer `approve`.
pub mod permit2 {
    alloy_sol_types::sol! {
        function approve(address token, address spender, uint160 amount, uint48 expiration);
    }
}

pub use super::selectors::{account_executing_selectors, token_moving_selectors, ACCOUNT_EXECUTING, TOKEN_MOVING};
use super::unmetered::approving_selectors;

/// The functions of a listed token Bridle meters (charges and checks): the only ones a `*`
/// entry or a wildcard target lets through on it.
pub const METERED: [[u8; 4]; 4] =
    [transferCall::SELECTOR, transferFromCall::SELECTOR, approveCall::SELECTOR, increaseAllowanceCall::SELECTOR];

/// An ERC-20 effect recognised in a call. `transferFrom` counts as a transfer: whoever's
/// allowance it spends, it moves value the policy caps.
pub(crate) enum Erc20<'a> {
    Transfer { to: Address, amount: U256 },
    Approve { spender: Address, amount: U256, kind: &'a str },
}

/// Decode `data` as `C`, refusing any encoding that is not exactly the canonical one.
fn canonical<C: SolCall>(data: &[u8]) -> Result<C, ()> {
    let c = C::abi_decode(data).map_err(|_| ())?;
    if c.abi_encode() != data {
        return Err(());
    }
    Ok(c)
}

/// The ERC-20 effect of calldata: `None` for another function, `Some(Err)` for one of the
/// four that does not decode canonically.
pub(crate) fn erc20_effect(data: &[u8]) -> Option<Result<Erc20<'static>, ()>> {
    let sel: [u8; 4] = data.get(..4)?.try_into().ok()?;
    Some(match sel {
        transferCall::SELECTOR => {
            canonical::<transferCall>(data).map(|c| Erc20::Transfer { to: c.to, amount: c.amount })
        }
        transferFromCall::SELECTOR => {
            canonical::<transferFromCall>(data).map(|c| Erc20::Transfer { to: c.to, amount: c.amount })
        }
        approveCall::SELECTOR => canonical::<approveCall>(data).map(|c| Erc20::Approve {
            spender: c.spender,
            amount: c.amount,
            kind: "approve",
        }),
        increaseAllowanceCall::SELECTOR => canonical::<increaseAllowanceCall>(data).map(|c| Erc20::Approve {
            spender: c.spender,
            amount: c.added,
            kind: "increaseAllowance",
        }),
        _ => return None,
    })
}

fn party(p: &Party, ctx: &Context) -> Address {
    match p {
        Party::Address(a) => *a,
        Party::Owner => ctx.owner,
        Party::Account => ctx.account,
    }
}

/// Why no function entry matched.
enum Miss {
    /// No entry names this function.
    NotListed,
    /// Only `*` or a wildcard target matched a function of a listed token (or Permit2) that
    /// Bridle does not meter.
    Unmetered,
    /// Only a wildcard target matched a token-moving function of an unlisted contract.
    UnlistedToken,
    /// Only a wildcard target matched a function through which an account executes calls.
    AccountCall,
    /// Only a wildcard target matched a function of an account the session signs user
    /// operations for (`user_operations.senders`).
    OwnAccount,
}

pub(crate) fn check_call(
    p: &CompiledPolicy,
    ctx: &Context,
    op: &Operation<'_>,
    call: &Call,
    charges: &mut Charges,
) -> Result<(), Denial> {
    let doc = &p.doc;
    let chain_id = op.chain_id;
    let Some(to) = call.to else {
        return Err(Denial::rule(ErrorCode::TargetNotAllowed, "calls", "contract creation is never allowed"));
    };
    let data = call.data.as_ref();
    if !data.is_empty() && data.len() < 4 {
        return Err(Denial::rule(
            ErrorCode::SelectorNotAllowed,
            "calls",
            format!("calldata of {} bytes is shorter than a selector", data.len()),
        ));
    }
    let token = p.token_at(chain_id, &to);
    if token.is_none() {
        if let Some(&i) = p.tokens_by_address.get(&to).and_then(|v| v.first()) {
            let t = &p.doc.tokens[i];
            return Err(Denial::rule(
                ErrorCode::TargetNotAllowed,
                format!("tokens[{i}]"),
                format!(
                    "{to} is {} on chain {} only: on chain {chain_id} it would be unmetered",
                    t.symbol,
                    t.chain_id.map(|c| c.to_string()).unwrap_or_default()
                ),
            ));
        }
    }
    let is_permit2 = p.permit2.contains(&to);
    let selector: Option<[u8; 4]> = data.get(..4).and_then(|s| s.try_into().ok());
    let metered =
        selector.is_some_and(|s| if is_permit2 { s == permit2::approveCall::SELECTOR } else { METERED.contains(&s) });
    let guarded = token.is_some() || is_permit2;
    let moving = selector.is_some_and(|s| token_moving_selectors().contains(&s));
    // Looked up only when a wildcard rule matches (off the path of specific rules).
    let executing = || selector.is_some_and(|s| account_executing_selectors().contains(&s));
    let own_account = || doc.user_operations.senders.contains(&to);

    // Allowlist (R-POL-5) and argument rules (R-POL-6): the call passes if one matching
    // function rule's predicates all hold.
    let specific = p.by_target.get(&to).map(|v| v.as_slice()).unwrap_or(&[]);
    if specific.is_empty() && p.wildcards.is_empty() {
        return Err(Denial::rule(ErrorCode::TargetNotAllowed, "calls", format!("{to} is not an allowed target")));
    }
    let mut matched = false;
    let mut miss = Miss::NotListed;
    let mut last_arg_denial = None;
    let mut decoded = Decoded::default();
    'rules: for &ri in specific.iter().chain(p.wildcards.iter()) {
        let wildcard = p.calls[ri].target.is_none();
        for f in &p.calls[ri].fns {
            let hit = match f.matcher {
                FnMatcher::Any => true,
                FnMatcher::Receive => data.is_empty(),
                FnMatcher::Selector(s) => selector == Some(s),
            };
            if !hit {
                continue;
            }
            if !data.is_empty() {
                if guarded && !metered && (wildcard || f.matcher == FnMatcher::Any) {
                    miss = Miss::Unmetered;
                    continue;
                }
                if !guarded && moving && wildcard {
                    miss = Miss::UnlistedToken;
                    continue;
                }
                // `*` on a contract not listed never covers an approval the engine does not
                // decode: one named so is refused when the policy is compiled (a review of
                // 2026-12-07).
                if !guarded
                    && !wildcard
                    && f.matcher == FnMatcher::Any
                    && selector.is_some_and(|s| approving_selectors().contains(&s))
                {
                    continue;
                }
                if wildcard && !guarded && executing() {
                    miss = Miss::AccountCall;
                    continue;
                }
                if wildcard && !guarded && own_account() {
                    miss = Miss::OwnAccount;
                    continue;
                }
            }
            matched = true;
            match check_args(f, data, ctx, &mut decoded) {
                Ok(()) => {
                    last_arg_denial = None;
                    break 'rules;
                }
                Err(d) => last_arg_denial = Some(d),
            }
        }
    }
    if let Some(d) = last_arg_denial {
        return Err(d);
    }
    if !matched {
        let sel = selector.map(|s| format!("0x{}", hex::encode(s))).unwrap_or_default();
        return Err(match miss {
            Miss::Unmetered => Denial::rule(
                ErrorCode::SelectorNotAllowed,
                "calls",
                format!(
                    "function {sel} of {} is not one Bridle meters (transfer, transferFrom, approve, increaseAllowance{}): \"*\" and wildcard targets do not cover it; name it in a [[calls]] rule for {to}",
                    token.map(|t| p.doc.tokens[t].symbol.clone()).unwrap_or_else(|| format!("Permit2 {to}")),
                    if is_permit2 { "; Permit2: approve" } else { "" }
                ),
            ),
            Miss::UnlistedToken => Denial::rule(
                ErrorCode::TargetNotAllowed,
                "tokens",
                format!(
                    "{to} is not a listed token; a wildcard target does not cover its token-moving function {sel}: list the token under tokens (its transfers are then capped) or name it as a target"
                ),
            ),
            Miss::AccountCall => Denial::rule(
                ErrorCode::TargetNotAllowed,
                "calls",
                format!(
                    "function {sel} of {to} executes calls as an account (execute, executeBatch, execTransaction, upgradeToAndCall, …): a wildcard target does not cover it, since the calls inside are never checked; name {to} and the function in a [[calls]] rule (its inner calls are then not metered)"
                ),
            ),
            Miss::OwnAccount => Denial::rule(
                ErrorCode::TargetNotAllowed,
                "user_operations.senders",
                format!(
                    "{to} is an account this session signs user operations for: a wildcard target does not cover calls to it (what it does with its own tokens is never metered that way); name it in a [[calls]] rule, or send user operations"
                ),
            ),
            Miss::NotListed => {
                let what = if data.is_empty() {
                    "a plain value transfer (receive())".to_string()
                } else {
                    format!("selector {sel}")
                };
                Denial::rule(ErrorCode::SelectorNotAllowed, "calls", format!("{what} is not allowed on {to}"))
            }
        });
    }

    // Native value (R-POL-4, RULES.md §5): every call that carries value.
    if let Some(max) = doc.max_value_per_call {
        if call.value > max {
            return Err(Denial::rule(
                ErrorCode::ValueCap,
                "max_value_per_call",
                format!(
                    "value {} above the per-call cap {}",
                    p.fmt_amount(AssetRef::Native, call.value),
                    p.fmt_amount(AssetRef::Native, max)
                ),
            ));
        }
    }
    if !call.value.is_zero() && specific.is_empty() {
        check_recipient(p, ctx, to)
            .map_err(|d| Denial { reason: format!("{} (it would receive a non-zero value)", d.reason), ..d })?;
    }
    charges.add(AssetRef::Native, call.value);

    // ERC-20 semantics (R-POL-9, R-APP-1, R-APP-3).
    if is_permit2 && selector == Some(permit2::approveCall::SELECTOR) {
        return permit2_approve(p, op, to, data, charges);
    }
    match erc20_effect(data) {
        None => {}
        Some(Err(())) => {
            return Err(Denial::rule(
                ErrorCode::ArgumentRejected,
                "calls",
                "ERC-20 call arguments do not decode canonically (exactly 32-byte words, clean addresses, no trailing bytes)",
            ));
        }
        Some(Ok(effect)) => match effect {
            Erc20::Transfer { to: rcpt, amount } => {
                check_recipient(p, ctx, rcpt)?;
                if let Some(t) = token {
                    charges.add(AssetRef::Token(t), amount);
                }
            }
            Erc20::Approve { spender, amount, kind } => {
                check_approval(p, to, token, spender, amount, kind)?;
                if let Some(t) = token {
                    charges.add(AssetRef::Token(t), amount);
                }
                charges.approvals.push(Grant {
                    key: Key { chain_id, holder: op.holder, token: to, spender, kind: AllowanceKind::Erc20 },
                    op: if kind == "approve" { GrantOp::Set(amount) } else { GrantOp::Add(amount) },
                    end: None,
                    token_index: token,
                    via: Via(if kind == "approve" { "approve" } else { "increaseAllowance" }),
                    nonce: None,
                });
            }
        },
    }
    Ok(())
}

/// Whether a call to `to` with `data` is one Bridle meters (RULES.md §5, "Metered
/// functions"): a transfer, `transferFrom`, `approve` or `increaseAllowance` of a token
/// listed on `chain_id`, or Permit2's `approve` on a Permit2 contract the policy knows.
pub(crate) fn metered_call(p: &CompiledPolicy, chain_id: u64, to: &Address, data: &[u8]) -> bool {
    let Some(s) = data.get(..4) else { return false };
    if p.permit2.contains(to) {
        return s == permit2::approveCall::SELECTOR;
    }
    p.token_at(chain_id, to).is_some() && METERED.iter().any(|m| m[..] == *s)
}

/// The amount of a canonically encoded Permit2 `approve` on a Permit2 contract the policy
/// knows; `None` for any other call.
pub(crate) fn permit2_approve_amount(p: &CompiledPolicy, to: &Address, data: &[u8]) -> Option<U256> {
    if !p.permit2.contains(to) || data.get(..4) != Some(&permit2::approveCall::SELECTOR[..]) {
        return None;
    }
    canonical::<permit2::approveCall>(data).ok().map(|c| U256::from(c.amount))
}

/// A call to Permit2's `approve(token, spender, amount, expiration)`: an approval of
/// `token` (kind `permit2`), bounded like any other; it ends at `expiration` (0: whenever
/// the transaction is mined, so never, as far as the enclave knows).
fn permit2_approve(
    p: &CompiledPolicy,
    op: &Operation<'_>,
    contract: Address,
    data: &[u8],
    charges: &mut Charges,
) -> Result<(), Denial> {
    let c = canonical::<permit2::approveCall>(data).map_err(|()| {
        Denial::rule(ErrorCode::ArgumentRejected, "calls", "Permit2 approve arguments do not decode canonically")
    })?;
    let amount = U256::from(c.amount);
    if amount >= crate::typed::u160_max() {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals",
            format!("Permit2 allowance of type(uint160).max to {} is never allowed", c.spender),
        ));
    }
    let token = p.token_at(op.chain_id, &c.token);
    check_approval(p, c.token, token, c.spender, amount, "approve")?;
    if let Some(t) = token {
        charges.add(AssetRef::Token(t), amount);
    }
    let exp = u64::try_from(U256::from(c.expiration)).unwrap_or(u64::MAX);
    charges.approvals.push(Grant {
        key: Key {
            chain_id: op.chain_id,
            holder: op.holder,
            token: c.token,
            spender: c.spender,
            kind: AllowanceKind::Permit2 { contract },
        },
        op: GrantOp::Set(amount),
        end: (exp != 0).then_some(exp),
        token_index: token,
        via: Via("Permit2 approve"),
        nonce: None,
    });
    Ok(())
}

pub(crate) fn check_recipient(p: &CompiledPolicy, ctx: &Context, rcpt: Address) -> Result<(), Denial> {
    if let Some(list) = &p.doc.recipients {
        if !list.iter().any(|r| party(r, ctx) == rcpt) {
            return Err(Denial::rule(
                ErrorCode::RecipientNotAllowed,
                "recipients",
                format!("{rcpt} is not an allowed recipient"),
            ));
        }
    }
    Ok(())
}

/// R-APP-1 / R-APP-3: no unlimited approvals, only listed spenders, at most the cap.
pub(crate) fn check_approval(
    p: &CompiledPolicy,
    token_addr: Address,
    token: Option<usize>,
    spender: Address,
    amount: U256,
    kind: &str,
) -> Result<(), Denial> {
    if amount == U256::MAX {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals",
            format!("{kind} of type(uint256).max to {spender} is never allowed"),
        ));
    }
    if amount.is_zero() && kind == "approve" {
        // approve(spender, 0) revokes; always allowed once the call itself is allowed.
        return Ok(());
    }
    if !p.doc.approvals.spenders.contains(&spender) {
        return Err(Denial::rule(
            ErrorCode::SpenderNotAllowed,
            "approvals.spenders",
            format!("{spender} is not an allowed spender"),
        ));
    }
    let Some(t) = token else {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals.caps",
            format!("{token_addr} is not a listed token, so no approval cap bounds it"),
        ));
    };
    let Some(cap) = p.approval_caps[t] else {
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            "approvals.caps",
            format!("no approval cap for {}: approvals must be bounded", p.doc.tokens[t].symbol),
        ));
    };
    if amount > cap {
        let idx = p.doc.approvals.caps.iter().position(|c| c.token == p.doc.tokens[t].symbol).unwrap_or(0);
        return Err(Denial::rule(
            ErrorCode::UnlimitedApproval,
            format!("approvals.caps[{idx}]"),
            format!(
                "{kind} of {} to {spender} above the per-spender cap {}",
                p.fmt_amount(AssetRef::Token(t), amount),
                p.fmt_amount(AssetRef::Token(t), cap)
            ),
        ));
    }
    Ok(())
}

/// Most nodes the decoder may build for one call's arguments (see
/// [`crate::abi_shape::check_dyn_params`]): a `uint256[]` of 8 000 elements fits.
pub const MAX_DECODED_NODES: usize = 8_192;
/// What one argument decode's nodes hold at most: per node, alloy's token and value and
/// their vectors' share. Besides them a decode copies the call's `bytes` and `string`
/// values and re-encodes the whole (UTF-8 is checked first, so neither is larger than the
/// call's data): the enclave's memory plan counts this and twice a frame on every worker.
pub const MAX_DECODE_BYTES: usize = MAX_DECODED_NODES
    * (std::mem::size_of::<alloy_dyn_abi::DynToken<'static>>() + std::mem::size_of::<DynSolValue>() + 64);

/// Decode ABI parameters of type `ty`, refusing anything but the canonical encoding (a
/// narrow `uintN` word with high bits set, an `intN` not sign-extended, a dirty address or
/// bool, odd offsets, trailing bytes). The calls the policy sees are then exactly the calls
/// the contract decodes.
///
/// The layout is checked first (`abi_shape::check_dyn_params`), before anything is decoded:
/// a decoder follows offsets, and aliased ones make a `bytes[]` of a few hundred KiB
/// decode into gigabytes (found 2026-12-03 by a review: the agent's calldata to a function
/// with argument rules reached the decoder unchecked); and the nodes the decoder would
/// build are bounded (a second review: a type with a dimension per level, `bool[1][1]…[]`,
/// built one node per level per 32-byte element — ≈ 530 MB from 1 MiB).
pub(crate) fn decode_canonical(ty: &DynSolType, data: &[u8]) -> Result<DynSolValue, String> {
    let not = |why: &str| format!("arguments do not decode canonically: {why}");
    let nodes = crate::abi_shape::check_dyn_params(ty, data).map_err(|e| not(e.0))?;
    if nodes > MAX_DECODED_NODES {
        return Err(format!("arguments decode into {nodes} values; at most {MAX_DECODED_NODES}"));
    }
    let v = ty.abi_decode_params(data).map_err(|_| not("the decoder refuses them"))?;
    if !in_range(&v) {
        return Err(not("a word out of range for its type, or a bytesN word not zero past its N bytes"));
    }
    if v.abi_encode_params() != data {
        return Err(not("they re-encode to other bytes"));
    }
    Ok(v)
}

/// Whether every integer of a decoded value fits its type: the decoder reads a `uint8` word
/// with high bits set as a value above 255 (and re-encodes it to the same word), which a
/// contract that masks the word would read as another value (review finding 8). And whether
/// every `bytesN` word is zero past its `N` bytes: the decoder keeps the whole word, which
/// re-encodes alike, while a contract reads `N` bytes or reverts (found 2026-12-06 by the
/// reference model's differential test; RULES §5 now lists it). The depth follows the
/// policy's type, bounded at compile time.
fn in_range(v: &DynSolValue) -> bool {
    match v {
        DynSolValue::FixedBytes(w, size) => w.get(*size..).is_some_and(|pad| pad.iter().all(|b| *b == 0)),
        DynSolValue::Uint(u, bits) => *bits >= 256 || u.bit_len() <= *bits,
        DynSolValue::Int(i, bits) => {
            if *bits >= 256 {
                return true;
            }
            let half = alloy_primitives::I256::ONE << (*bits - 1);
            *i >= -half && *i < half
        }
        DynSolValue::Tuple(items) | DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            items.iter().all(in_range)
        }
        _ => true,
    }
}

/// A call's arguments decoded, kept while the rules that follow have the same parameter
/// types (every function rule matching a selector does, unless a policy was written with a
/// selector collision: then each type replaces the last, so at most one decode is held —
/// a third review). A second review found each matching rule decoding the call again, up
/// to hundreds of times under the session's lock.
#[derive(Default)]
pub(crate) struct Decoded<'p> {
    last: Option<(&'p DynSolType, Result<DynSolValue, String>)>,
}

impl<'p> Decoded<'p> {
    /// `data` (a call: selector, then arguments) decoded as `ty`, canonically.
    pub(crate) fn get(&mut self, ty: &'p DynSolType, data: &[u8]) -> &Result<DynSolValue, String> {
        if !matches!(&self.last, Some((t, _)) if *t == ty) {
            // The previous decode is dropped before the next is made.
            self.last = None;
        }
        let (_, r) = self.last.get_or_insert_with(|| (ty, decode_canonical(ty, data.get(4..).unwrap_or(&[]))));
        r
    }
}

fn check_args<'p>(f: &'p CompiledFn, data: &[u8], ctx: &Context, cache: &mut Decoded<'p>) -> Result<(), Denial> {
    let Some(ty) = &f.params else { return Ok(()) };
    let decoded = match cache.get(ty, data) {
        Ok(v) => v,
        Err(why) => return Err(Denial::rule(ErrorCode::ArgumentRejected, &f.rule, why.clone())),
    };
    for (k, a) in f.args.iter().enumerate() {
        let rule = || format!("{}.args[{k}]", f.rule);
        let Some(v) = value_at(decoded, &a.path) else {
            return Err(Denial::rule(ErrorCode::ArgumentRejected, rule(), format!("argument {:?} is missing", a.path)));
        };
        let holds = match a.op {
            Op::In => a.values.iter().any(|x| cmp(v, x, ctx) == Some(Ordering::Equal)),
            Op::NotIn => a.values.iter().all(|x| matches!(cmp(v, x, ctx), Some(o) if o != Ordering::Equal)),
            op => {
                let o = a.values.first().and_then(|x| cmp(v, x, ctx));
                match (op, o) {
                    (_, None) => false,
                    (Op::Eq, Some(o)) => o == Ordering::Equal,
                    (Op::Ne, Some(o)) => o != Ordering::Equal,
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Lte, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Gte, Some(o)) => o != Ordering::Less,
                    (Op::In | Op::NotIn, _) => false,
                }
            }
        };
        if !holds {
            return Err(Denial::rule(
                ErrorCode::ArgumentRejected,
                rule(),
                format!("argument {:?} = {} fails `{} {}`", a.path, show(v), a.op.as_str(), show_values(&a.values)),
            ));
        }
    }
    Ok(())
}

pub(crate) fn value_at<'a>(v: &'a DynSolValue, path: &[u32]) -> Option<&'a DynSolValue> {
    let mut cur = v;
    for &i in path {
        cur = match cur {
            DynSolValue::Tuple(items) | DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
                items.get(i as usize)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

/// Compare a decoded value with a rule value; `None` when they are not comparable.
fn cmp(v: &DynSolValue, x: &ArgValue, ctx: &Context) -> Option<Ordering> {
    Some(match (v, x) {
        (DynSolValue::Address(a), ArgValue::Address(b)) => a.cmp(b),
        (DynSolValue::Address(a), ArgValue::Owner) => a.cmp(&ctx.owner),
        (DynSolValue::Address(a), ArgValue::Account) => a.cmp(&ctx.account),
        (DynSolValue::Uint(a, _), ArgValue::Uint(b)) => a.cmp(b),
        (DynSolValue::Int(a, _), ArgValue::Int(b)) => a.cmp(b),
        (DynSolValue::Bool(a), ArgValue::Bool(b)) => a.cmp(b),
        (DynSolValue::Bytes(a), ArgValue::Bytes(b)) => a.as_slice().cmp(b.as_ref()),
        (DynSolValue::FixedBytes(a, n), ArgValue::Bytes(b)) => a[..*n].cmp(b.as_ref()),
        (DynSolValue::String(a), ArgValue::String(b)) => a.cmp(b),
        _ => return None,
    })
}

/// Most bytes of an argument a denial shows (a 1 MiB `bytes` would be 2 MiB of hex, and a
/// `string` of control characters six times its length once escaped; 256 bytes of it
/// escape to at most ≈ 1.5 KB).
const MAX_SHOWN: usize = 256;

fn show(v: &DynSolValue) -> String {
    let full = |n: usize| if n > MAX_SHOWN { format!(" ({n} bytes)") } else { String::new() };
    match v {
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::String(s) => {
            let cut = crate::audit::truncate(s, MAX_SHOWN);
            format!("{cut:?}{}", full(s.len()))
        }
        DynSolValue::Bytes(b) => format!("0x{}{}", hex::encode(&b[..b.len().min(MAX_SHOWN / 2)]), full(b.len())),
        DynSolValue::FixedBytes(b, n) => format!("0x{}", hex::encode(&b[..*n])),
        other => {
            // Debug of a list or tuple, written into a buffer that stops at the bound.
            let mut out = Capped(String::new());
            let _ = std::fmt::write(&mut out, format_args!("{other:?}"));
            out.0
        }
    }
}

/// A `fmt::Write` that keeps at most [`MAX_SHOWN`] bytes and then stops the formatter.
struct Capped(String);

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = MAX_SHOWN.saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        self.0.push_str(&crate::audit::truncate(s, room));
        if !self.0.ends_with('…') {
            self.0.push('…');
        }
        Err(std::fmt::Error)
    }
}

fn show_values(vs: &[ArgValue]) -> String {
    let items: Vec<String> = vs
        .iter()
        .map(|v| match v {
            ArgValue::Address(a) => a.to_string(),
            ArgValue::Uint(u) => u.to_string(),
            ArgValue::Int(i) => i.to_string(),
            ArgValue::Bool(b) => b.to_string(),
            ArgValue::Bytes(b) => b.to_string(),
            ArgValue::String(s) => format!("{s:?}"),
            ArgValue::Owner => "$owner".into(),
            ArgValue::Account => "$account".into(),
        })
        .collect();
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("[{}]", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_integers_must_fit_their_type() {
        let ty: DynSolType = "(uint8,int16)".parse().unwrap();
        let mut w = vec![0u8; 64];
        w[31] = 5;
        w[32..].fill(0xff);
        w[63] = 0xfb; // -5, sign-extended
        assert!(decode_canonical(&ty, &w).is_ok());
        let mut dirty = w.clone();
        dirty[30] = 1; // uint8 read as 261
        assert!(decode_canonical(&ty, &dirty).is_err());
        let mut unextended = w.clone();
        unextended[32..62].fill(0); // int16 -5 not sign-extended: read as 65531
        assert!(decode_canonical(&ty, &unextended).is_err());
        // Trailing bytes are not canonical either.
        let mut long = w.clone();
        long.push(0);
        assert!(decode_canonical(&ty, &long).is_err());
    }

    #[test]
    fn fixed_bytes_must_be_zero_past_their_length() {
        let ty: DynSolType = "(bytes4,bytes32)".parse().unwrap();
        let mut w = vec![0u8; 64];
        w[..4].copy_from_slice(&[0xa9, 0x05, 0x9c, 0xbb]);
        w[32..].fill(0xee);
        assert!(decode_canonical(&ty, &w).is_ok());
        let mut dirty = w.clone();
        dirty[4] = 1; // bytes4 with a fifth byte set
        let e = decode_canonical(&ty, &dirty).unwrap_err();
        assert!(e.contains("bytesN"), "{e}");
        dirty[4] = 0;
        dirty[31] = 1;
        assert!(decode_canonical(&ty, &dirty).is_err());
    }
}
