//! ERC-7710 delegation redemption (AG-212 4.8), as MetaMask's Delegation Framework
//! `DelegationManager` (v1.3.0) runs it: `redeemDelegations(bytes[] permissionContexts,
//! bytes32[] modes, bytes[] executionCallDatas)`, called by the delegate. For each entry
//! the manager decodes the permission context as `Delegation[]` ordered leaf to root,
//! checks that the leaf's delegate is the caller (or `ANY_DELEGATE`), the signatures, the
//! authority chain and the caveats, and then has the **root delegator** run the entry's
//! ERC-7579 execution (`executeFromExecutor(mode, executionCallData)`); an empty context is
//! the caller running it on itself. One failing entry reverts the whole redemption.
//!
//! What the enclave needs from it is what runs and as whom: each entry's calls, decoded
//! exactly as the root delegator decodes them, held by that delegator. The policy then
//! checks every such call like an inner call of a user operation (RULES.md §5b). Signatures,
//! authorities and caveats are the chain's to check: a redemption that breaks them reverts
//! and moves nothing.
//!
//! Only canonical ABI encodings are accepted (re-encoding what was decoded gives the same
//! bytes), so the calls the policy sees are the calls Solidity's `abi.decode` sees.

use crate::abi_shape::{check_params, Shape};
use crate::error::{Denial, ErrorCode};
use crate::tx::Call;
use crate::userop::decode_erc7579_execution;
use alloy_primitives::{address, Address};
use alloy_sol_types::{SolCall, SolValue};

alloy_sol_types::sol! {
    /// A caveat: `enforcer` is called before and after the execution with `terms` (signed by
    /// the delegator) and `args` (chosen by the redeemer).
    #[derive(Debug, PartialEq, Eq)]
    struct Caveat { address enforcer; bytes terms; bytes args; }
    /// A delegation (Delegation Framework `Types.sol`).
    #[derive(Debug, PartialEq, Eq)]
    struct Delegation {
        address delegate;
        address delegator;
        bytes32 authority;
        Caveat[] caveats;
        uint256 salt;
        bytes signature;
    }
    /// ERC-7710 `redeemDelegations` (`ModeCode` is a `bytes32`).
    function redeemDelegations(bytes[] permissionContexts, bytes32[] modes, bytes[] executionCallDatas);
}

/// The Delegation Framework's `ANY_DELEGATE`: a delegation to it may be redeemed by anyone.
pub const ANY_DELEGATE: Address = address!("0000000000000000000000000000000000000a11");

/// Most entries in one redemption.
pub const MAX_ENTRIES: usize = 16;

/// Most delegations in one permission context (leaf to root).
pub const MAX_CHAIN: usize = 8;

/// One entry of a redemption: whose account runs the calls, and the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The root delegator: the account the calls run as.
    pub root: Address,
    pub calls: Vec<Call>,
}

/// `redeemDelegations`' arguments, `Delegation[]` and ERC-7579 `Execution[]`, for the
/// layout check before decoding.
const CAVEAT: Shape = Shape::Tuple(&[Shape::Word, Shape::Bytes, Shape::Bytes]);
const DELEGATION: Shape =
    Shape::Tuple(&[Shape::Word, Shape::Word, Shape::Word, Shape::Array(&CAVEAT), Shape::Word, Shape::Bytes]);
const REDEEM: &[Shape] = &[Shape::Array(&Shape::Bytes), Shape::Array(&Shape::Word), Shape::Array(&Shape::Bytes)];

fn bad(reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::ArgumentRejected, "delegations", reason)
}

/// Whether `data` calls `redeemDelegations(bytes[],bytes32[],bytes[])`.
pub fn is_redemption(data: &[u8]) -> bool {
    data.get(..4) == Some(&redeemDelegationsCall::SELECTOR[..])
}

/// Decode a `redeemDelegations` call made by `redeemer` into its entries. Refused: a
/// non-canonical encoding, arrays of different lengths, no entry, more than
/// [`MAX_ENTRIES`] entries or [`MAX_CHAIN`] delegations in a context, a leaf delegate that is
/// neither the redeemer nor `ANY_DELEGATE` (the manager would revert), and every execution
/// [`decode_erc7579_execution`] refuses.
pub fn decode_redemption(data: &[u8], redeemer: Address) -> Result<Vec<Entry>, Denial> {
    check_params(REDEEM, data.get(4..).unwrap_or_default())
        .map_err(|e| bad(format!("redeemDelegations arguments are not canonically ABI-encoded ({})", e.0)))?;
    let c = redeemDelegationsCall::abi_decode(data)
        .map_err(|e| bad(format!("redeemDelegations arguments do not decode: {e}")))?;
    if c.abi_encode() != data {
        return Err(bad("redeemDelegations arguments are not canonically ABI-encoded"));
    }
    let n = c.permissionContexts.len();
    if n != c.modes.len() || n != c.executionCallDatas.len() {
        return Err(bad(format!(
            "redeemDelegations: {n} permission contexts, {} modes, {} executions; the manager reverts unless they are equal",
            c.modes.len(),
            c.executionCallDatas.len()
        )));
    }
    if n == 0 {
        return Err(bad("redeemDelegations redeems nothing"));
    }
    if n > MAX_ENTRIES {
        return Err(Denial::new(ErrorCode::TooLarge, format!("{n} redemption entries; at most {MAX_ENTRIES}")));
    }
    let mut out = Vec::with_capacity(n);
    for (i, ((ctx, mode), ec)) in c.permissionContexts.iter().zip(&c.modes).zip(&c.executionCallDatas).enumerate() {
        let at = |d: Denial| Denial { reason: format!("entry {i}: {}", d.reason), ..d };
        let root = root_of(ctx, redeemer).map_err(at)?;
        let calls = decode_erc7579_execution(&mode.0, ec, "delegations").map_err(at)?;
        if calls.is_empty() {
            return Err(at(bad("the execution makes no call")));
        }
        out.push(Entry { root, calls });
    }
    Ok(out)
}

/// The root delegator of a permission context. Refused: an empty context (the redeemer
/// would run the execution itself — `executeFromExecutor` on the session, which has no code:
/// it reverts, and a revocation in it would be counted as done), a root that is the redeemer,
/// and caveat `args` (the redeemer chooses them, and some enforcers act on them: a royalty
/// enforcer pays its balance to the address in `args`, a payment enforcer redeems the
/// delegations in `args`).
fn root_of(ctx: &[u8], redeemer: Address) -> Result<Address, Denial> {
    check_params(&[Shape::Array(&DELEGATION)], ctx)
        .map_err(|e| bad(format!("the permission context is not a canonically encoded Delegation[] ({})", e.0)))?;
    let chain = <Vec<Delegation>>::abi_decode(ctx)
        .map_err(|e| bad(format!("the permission context is not a Delegation[]: {e}")))?;
    if chain.abi_encode() != ctx {
        return Err(bad("the permission context is not canonically ABI-encoded"));
    }
    if chain.len() > MAX_CHAIN {
        return Err(Denial::new(
            ErrorCode::TooLarge,
            format!("a chain of {} delegations; at most {MAX_CHAIN}", chain.len()),
        ));
    }
    let (Some(leaf), Some(root)) = (chain.first(), chain.last()) else {
        return Err(bad(
            "an empty permission context makes the session run the execution itself, which it cannot (it has no code): the redemption would revert",
        ));
    };
    if leaf.delegate != redeemer && leaf.delegate != ANY_DELEGATE {
        return Err(bad(format!(
            "the leaf delegation is to {}, not to the redeemer {redeemer}: the manager would revert",
            leaf.delegate
        )));
    }
    if root.delegator == redeemer {
        return Err(bad("the root delegator is the session itself, which cannot execute (it has no code)"));
    }
    if chain.iter().flat_map(|d| &d.caveats).any(|c| !c.args.is_empty()) {
        return Err(bad(
            "a caveat carries args: the redeemer chooses them and some enforcers act on them (paying out, redeeming more); only caveats without args are signed",
        ));
    }
    Ok(root.delegator)
}

/// Build `redeemDelegations` calldata (for clients and tests): one entry per
/// (delegations leaf to root, mode, execution calldata).
pub fn encode_redemption(entries: &[(Vec<Delegation>, [u8; 32], Vec<u8>)]) -> Vec<u8> {
    redeemDelegationsCall {
        permissionContexts: entries.iter().map(|e| e.0.abi_encode().into()).collect(),
        modes: entries.iter().map(|e| e.1.into()).collect(),
        executionCallDatas: entries.iter().map(|e| e.2.clone().into()).collect(),
    }
    .abi_encode()
}

/// ERC-7579 single-execution calldata: `target ‖ value ‖ callData` (packed).
pub fn single_execution(target: Address, value: alloy_primitives::U256, data: &[u8]) -> Vec<u8> {
    [target.as_slice(), &value.to_be_bytes::<32>(), data].concat()
}

/// ERC-7579 batch-execution calldata: `abi.encode(Execution[])`.
pub fn batch_execution(calls: &[(Address, alloy_primitives::U256, alloy_primitives::Bytes)]) -> Vec<u8> {
    calls
        .iter()
        .map(|c| crate::userop::erc7579::Execution { target: c.0, value: c.1, callData: c.2.clone() })
        .collect::<Vec<_>>()
        .abi_encode()
}

/// The ERC-7579 mode of a batch execution (call type 0x01, default exec type).
pub const MODE_BATCH: [u8; 32] = {
    let mut m = [0u8; 32];
    m[0] = 0x01;
    m
};

/// The ERC-7579 mode of a single execution.
pub const MODE_SINGLE: [u8; 32] = [0u8; 32];

#[cfg(test)]
#[path = "delegation_tests.rs"]
mod tests;
