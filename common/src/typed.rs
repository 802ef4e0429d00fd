//! EIP-712 typed data (R-SIGN-3): parsing `eth_signTypedData_v4` JSON, the signing digest
//! (alloy-dyn-abi's EIP-712 implementation), and recognising what the policy must treat
//! specially: EIP-2612 `Permit`, Uniswap Permit2 messages, Bridle's own owner envelopes
//! (never signed by a session, R-TRUST-5) and EIP-7702 authorizations (never signed).
//!
//! A permit is recognised by its `primaryType` and accepted only when its full EIP-712
//! `encodeType` is exactly the canonical one, so a look-alike type with other fields can
//! neither pass as a permit nor escape the permit rules as "other" typed data.

use crate::error::{Denial, ErrorCode};
use alloy_dyn_abi::{DynSolValue, TypedData};
use alloy_primitives::{address, keccak256, Address, B256, U256};
use alloy_sol_types::SolStruct;

/// The canonical Uniswap Permit2 address (same on every chain).
pub const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");

/// Largest typed-data JSON the enclave parses.
pub const MAX_TYPED_DATA: usize = 64 * 1024;
/// The most memory [`parse`] takes at once, its result included, within the bounds of
/// [`crate::bounds::typed_data`]: the worst documents those bounds let through take
/// ≈ 1.4 MB (`tests/typed_parse_memory.rs` measures them against this bound), and the
/// allocator's rounding adds at most a quarter. The
/// enclave's memory plan counts it on every worker: a typed-data request is parsed before
/// its stamp can be checked (the stamp covers the EIP-712 digest).
pub const MAX_PARSE_BYTES: usize = 4 << 20;

/// The canonical permit structs: their `encodeType` is what a request must match.
pub mod canonical {
    alloy_sol_types::sol! {
        /// EIP-2612.
        struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
        /// Permit2 AllowanceTransfer.
        struct PermitDetails { address token; uint160 amount; uint48 expiration; uint48 nonce; }
        struct PermitSingle { PermitDetails details; address spender; uint256 sigDeadline; }
        struct PermitBatch { PermitDetails[] details; address spender; uint256 sigDeadline; }
        /// Permit2 SignatureTransfer.
        struct TokenPermissions { address token; uint256 amount; }
        struct PermitTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; }
        struct PermitBatchTransferFrom { TokenPermissions[] permitted; address spender; uint256 nonce; uint256 deadline; }
    }
}

/// Parsed typed data with its digest and its message coerced to the declared types.
#[derive(Debug, Clone)]
pub struct ParsedTypedData {
    /// The domain, types and primary type; its `message` is `null` (the JSON tree is
    /// dropped once coerced: [`ParsedTypedData::message`] holds it).
    pub data: TypedData,
    /// `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))`.
    pub digest: B256,
    pub message: DynSolValue,
}

/// Longest reason a typed-data refusal carries: alloy's errors print the whole type and
/// value they failed on.
const MAX_REASON: usize = 512;

fn td_malformed(reason: impl Into<String>) -> Denial {
    Denial::malformed(format!("typed data: {}", crate::audit::truncate(&reason.into(), MAX_REASON)))
}

/// Parse `eth_signTypedData_v4` JSON (an object, or a string holding one) and compute its
/// digest. Never panics: alloy's code runs under `catch_unwind` as a second line.
pub fn parse(json: &str) -> Result<ParsedTypedData, Denial> {
    if json.len() > MAX_TYPED_DATA {
        return Err(Denial::new(
            ErrorCode::TooLarge,
            format!("typed data of {} bytes; at most {MAX_TYPED_DATA}", json.len()),
        ));
    }
    // Bounded before alloy sees it (review finding 2): nesting, counts, type names.
    let value = crate::bounds::typed_data(json)?;
    // Where alloy refuses the document, a number JSON parsers round is the likely cause: said
    // (a review of 2026-12-06). Only the message changes: what alloy accepts — a float in a
    // field no type declares, say — still passes, as it did for held requests in snapshots.
    let rounded = crate::bounds::inexact_number(&value).map(|n| {
        format!(
            "it holds a number that is not an integer of at most 64 bits, read as {n} (JSON parsers round such \
             numbers: write it as a string)"
        )
    });
    let malformed = move |e: String| td_malformed(rounded.as_ref().map_or(e.clone(), |h| format!("{h}; {e}")));
    let r = std::panic::catch_unwind(move || -> Result<ParsedTypedData, Denial> {
        let mut data: TypedData = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
        if data.primary_type == "EIP712Domain" {
            return Err(td_malformed("primaryType EIP712Domain signs no message"));
        }
        let message = data.coerce().map_err(|e| malformed(e.to_string()))?;
        // `hashStruct` of the primary type is what EIP-712 signs: the message must be a
        // value of that struct (the bounds admit only a declared struct as primary type;
        // an elementary one would sign 32 bytes of the agent's choosing).
        if !matches!(&message, DynSolValue::CustomStruct { name, .. } if *name == data.primary_type) {
            return Err(td_malformed(format!("the message is not a `{}` struct", data.primary_type)));
        }
        // `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))` from the value just
        // coerced (alloy's `eip712_signing_hash` would coerce the message a second time).
        let hash_struct = data.resolver.eip712_data_word(&message).map_err(|e| td_malformed(e.to_string()))?;
        let mut preimage = [0u8; 66];
        preimage[..2].copy_from_slice(&[0x19, 0x01]);
        preimage[2..34].copy_from_slice(data.domain.separator().as_slice());
        preimage[34..].copy_from_slice(hash_struct.as_slice());
        let digest = keccak256(preimage);
        // The JSON tree is not kept: the coerced message says all it said.
        data.message = serde_json::Value::Null;
        Ok(ParsedTypedData { data, digest, message })
    });
    r.unwrap_or_else(|_| Err(td_malformed("typed data could not be processed")))
}

/// A recognised permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermitMsg {
    /// EIP-2612 `Permit` on the token at the domain's verifying contract.
    Eip2612 { owner: Address, spender: Address, value: U256, nonce: U256, deadline: U256 },
    /// Permit2 `PermitSingle` / `PermitBatch` (AllowanceTransfer).
    Permit2Allowance { spender: Address, details: Vec<Permit2Detail>, sig_deadline: U256, batch: bool },
    /// Permit2 `PermitTransferFrom` / `PermitBatchTransferFrom` (SignatureTransfer).
    Permit2Transfer { spender: Address, permitted: Vec<(Address, U256)>, deadline: U256, batch: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit2Detail {
    pub token: Address,
    /// A uint160.
    pub amount: U256,
    /// A uint48.
    pub expiration: U256,
    /// A uint48: Permit2's nonce for (owner, token, spender) the permit needs.
    pub nonce: U256,
}

/// type(uint160).max: Permit2's "unlimited".
pub fn u160_max() -> U256 {
    (U256::from(1) << 160) - U256::from(1)
}

/// What kind of typed data a request is.
#[derive(Debug, Clone)]
pub enum TypedClass {
    /// Always refused (owner envelope, EIP-7702 authorization, look-alike permit).
    Refused(Denial),
    Permit(PermitMsg),
    /// Anything else: allowed only by a matching `typed_data` rule.
    Generic,
}

/// Primary types that only the permit rules may allow.
pub const PERMIT_TYPES: &[&str] = &[
    "Permit",
    "PermitSingle",
    "PermitBatch",
    "PermitTransferFrom",
    "PermitBatchTransferFrom",
    "PermitWitnessTransferFrom",
    "PermitBatchWitnessTransferFrom",
];

/// Token-moving typed data that no generic rule may allow: permits, EIP-3009 and the
/// drafts that followed it (`ApproveWithAuthorization`, `IncreaseAllowanceWithAuthorization`,
/// … — every `…WithAuthorization`; a review of 2026-12-05).
pub fn is_token_moving_type(primary_type: &str) -> bool {
    primary_type.starts_with("Permit")
        || PERMIT_TYPES.contains(&primary_type)
        || primary_type.ends_with("WithAuthorization")
}

/// Primary types whose message is a call some contract runs as the signer — an ERC-2771
/// forwarder's request (OpenZeppelin, GSN, Biconomy, Gelato), a token's native
/// meta-transaction (Polygon PoS), a Safe transaction, 0x's meta-transaction, a Kernel
/// validator's enabling: the call inside is none of the enclave's to check as a call, so no
/// `[[typed_data]]` rule may allow one (a review of 2026-12-05).
pub const CALL_CARRIERS: &[&str] = &[
    "ForwardRequest",
    "ForwardRequestData",
    "ERC20ForwardRequest",
    "SponsoredCallERC2771",
    "SponsoredCallConcurrentERC2771",
    "SponsoredUserAuthCallERC2771",
    "CallWithSyncFeeERC2771",
    "CallWithSyncFeeConcurrentERC2771",
    "MetaTransaction",
    "MetaTransactionData",
    "SafeTx",
    "Enable",
];

/// Primary types accounts use to wrap what they then accept as signed by themselves
/// (ERC-1271): Safe's `SafeMessage(bytes message)`, Coinbase Smart Wallet's
/// `CoinbaseSmartWalletMessage(bytes32 hash)`, ERC-7739's `PersonalSign(bytes prefixed)` and
/// `TypedDataSign(Contents contents, …)` — nested typed data: in an application's domain,
/// any struct of it becomes the account's signature over that struct, a Permit2 or EIP-2612
/// permit of the account's tokens among them —, Ambire's `AmbireOperation(address account,
/// bytes32 hash)` and `AmbireReadableOperation(address account, …, Calls[] calls)`.
pub const ACCOUNT_WRAPPERS: &[&str] = &[
    "SafeMessage",
    "CoinbaseSmartWalletMessage",
    "PersonalSign",
    "TypedDataSign",
    "AmbireOperation",
    "AmbireReadableOperation",
];

/// Whether typed data wraps an opaque byte string: its primary type is an account's
/// wrapper ([`ACCOUNT_WRAPPERS`]), or its message is one `bytes` or one 32-byte value. Such
/// a message carries another signature's digest — a Permit2 permit, an order — that an
/// account whose signer the session is would then accept as its own (a review of
/// 2026-12-05: a `typed_data` rule for Safe's `SafeMessage` let the session sign a Permit2
/// transfer of the Safe's tokens that no cap saw).
pub fn wraps_opaque_bytes(primary_type: &str, message: &DynSolValue) -> bool {
    if ACCOUNT_WRAPPERS.contains(&primary_type) {
        return true;
    }
    match message {
        DynSolValue::CustomStruct { tuple, .. } => {
            matches!(tuple.as_slice(), [DynSolValue::Bytes(_)] | [DynSolValue::FixedBytes(_, 32)])
        }
        _ => false,
    }
}

/// Whether a primary type (or domain name) looks like an EIP-7702 authorization.
pub fn is_7702_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    l.contains("7702")
        || matches!(
            l.as_str(),
            "authorization" | "signedauthorization" | "setcode" | "setcodeauthorization" | "authorizationtuple"
        )
}

/// Whether `name` is Bridle's owner-envelope domain.
pub fn is_bridle_domain(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("bridle")
}

fn field<'a>(v: &'a DynSolValue, name: &str) -> Option<&'a DynSolValue> {
    match v {
        DynSolValue::CustomStruct { prop_names, tuple, .. } => {
            prop_names.iter().position(|n| n == name).and_then(|i| tuple.get(i))
        }
        _ => None,
    }
}

fn addr(v: &DynSolValue, name: &str) -> Result<Address, Denial> {
    field(v, name).and_then(|x| x.as_address()).ok_or_else(|| td_malformed(format!("field {name} is not an address")))
}

fn uint(v: &DynSolValue, name: &str) -> Result<U256, Denial> {
    field(v, name)
        .and_then(|x| x.as_uint())
        .map(|(u, _)| u)
        .ok_or_else(|| td_malformed(format!("field {name} is not a uint")))
}

fn items<'a>(v: &'a DynSolValue, name: &str) -> Result<&'a [DynSolValue], Denial> {
    match field(v, name) {
        Some(DynSolValue::Array(a)) => Ok(a),
        _ => Err(td_malformed(format!("field {name} is not an array"))),
    }
}

fn refused(code: ErrorCode, reason: impl Into<String>) -> TypedClass {
    TypedClass::Refused(Denial::rule(code, "typed_data", reason))
}

/// Classify parsed typed data. `permit2` lists the Permit2 contracts the policy knows
/// (the canonical one is always included).
pub fn classify(p: &ParsedTypedData, permit2: &[Address]) -> TypedClass {
    let td = &p.data;
    let pt = td.primary_type.as_str();
    let dname = td.domain.name.as_deref().unwrap_or("");
    if is_bridle_domain(dname) || pt == "OwnerAction" {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            "typed data in the \"Bridle\" domain is an owner envelope; a session never signs one (R-TRUST-5)",
        );
    }
    // ERC-7710 (RULES.md §5b): a delegation the session signs would hand what it may do —
    // and every delegation it may redeem — to a delegate no policy binds.
    if pt.eq_ignore_ascii_case("Delegation") || dname == "DelegationManager" {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            "an ERC-7710 delegation (or anything in a DelegationManager's domain) from the session would hand its authority to a delegate no policy binds; never signed",
        );
    }
    let tuple_like = match &p.message {
        DynSolValue::CustomStruct { prop_names, .. } => {
            let mut n: Vec<String> = prop_names.iter().map(|s| s.to_ascii_lowercase().replace('_', "")).collect();
            n.sort();
            n == ["address", "chainid", "nonce"]
        }
        _ => false,
    };
    if is_7702_name(pt) || is_7702_name(dname) || tuple_like {
        return refused(
            ErrorCode::AuthorizationDenied,
            format!("`{pt}` is an EIP-7702 authorization: it hands over the whole account; never signed"),
        );
    }
    // alloy orders dependent types by their whole encoding, where `$` sorts before `(`
    // (`A$B(…)` before `A(…)`), and EIP-712 by name: the digest would be no other wallet's
    // or contract's (a review of 2026-12-05). Parsing admits the name (a held request in a
    // snapshot still prepares); signing does not.
    if td.resolver.linearize(pt).is_ok_and(|defs| defs.iter().any(|d| d.type_name().contains('$'))) {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            "a struct name holding `$` is ordered differently by alloy and by EIP-712: the digest would be no one else's; never signed",
        );
    }
    // zkSync's native transactions are EIP-712 typed data (`Transaction` in the domain
    // `zkSync`, no verifying contract): a whole transaction, checked by no rule here.
    if dname == "zkSync" {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            "typed data in the \"zkSync\" domain is a native zkSync transaction: never signed as typed data",
        );
    }
    if CALL_CARRIERS.contains(&pt) {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            format!(
                "`{pt}` carries a call a contract runs as the signer (a forwarder's request, a meta-transaction, a Safe transaction): the call inside is not checked as one; never signed"
            ),
        );
    }
    if wraps_opaque_bytes(pt, &p.message) {
        return refused(
            ErrorCode::TypedDataNotAllowed,
            format!(
                "`{pt}` wraps an opaque byte string (an account's own message wrapper, or one bytes / bytes32 value): it could be another signature's digest — a Permit2 permit, an order — that an account the session signs for would accept as its own; never signed"
            ),
        );
    }
    let vc = td.domain.verifying_contract;
    let is_permit2_domain = dname == "Permit2" || vc.is_some_and(|a| a == PERMIT2 || permit2.contains(&a));
    if !(is_token_moving_type(pt) || is_permit2_domain) {
        return TypedClass::Generic;
    }
    let encode_type = match td.encode_type() {
        Ok(t) => t,
        Err(e) => return TypedClass::Refused(td_malformed(e.to_string())),
    };
    let is = |canon: String| encode_type == canon;
    let m = &p.message;
    let r = (|| -> Result<Option<PermitMsg>, Denial> {
        Ok(Some(match pt {
            "Permit" if is(canonical::Permit::eip712_encode_type().into_owned()) && !is_permit2_domain => {
                PermitMsg::Eip2612 {
                    owner: addr(m, "owner")?,
                    spender: addr(m, "spender")?,
                    value: uint(m, "value")?,
                    nonce: uint(m, "nonce")?,
                    deadline: uint(m, "deadline")?,
                }
            }
            "PermitSingle" | "PermitBatch"
                if is(canonical::PermitSingle::eip712_encode_type().into_owned())
                    || is(canonical::PermitBatch::eip712_encode_type().into_owned()) =>
            {
                let batch = pt == "PermitBatch";
                let list: Vec<&DynSolValue> = if batch {
                    items(m, "details")?.iter().collect()
                } else {
                    vec![field(m, "details").ok_or_else(|| td_malformed("missing details"))?]
                };
                let details = list
                    .into_iter()
                    .map(|d| {
                        Ok(Permit2Detail {
                            token: addr(d, "token")?,
                            amount: uint(d, "amount")?,
                            expiration: uint(d, "expiration")?,
                            nonce: uint(d, "nonce")?,
                        })
                    })
                    .collect::<Result<Vec<_>, Denial>>()?;
                PermitMsg::Permit2Allowance {
                    spender: addr(m, "spender")?,
                    details,
                    sig_deadline: uint(m, "sigDeadline")?,
                    batch,
                }
            }
            "PermitTransferFrom" | "PermitBatchTransferFrom"
                if is(canonical::PermitTransferFrom::eip712_encode_type().into_owned())
                    || is(canonical::PermitBatchTransferFrom::eip712_encode_type().into_owned()) =>
            {
                let batch = pt == "PermitBatchTransferFrom";
                let list: Vec<&DynSolValue> = if batch {
                    items(m, "permitted")?.iter().collect()
                } else {
                    vec![field(m, "permitted").ok_or_else(|| td_malformed("missing permitted"))?]
                };
                let permitted = list
                    .into_iter()
                    .map(|t| Ok((addr(t, "token")?, uint(t, "amount")?)))
                    .collect::<Result<Vec<_>, Denial>>()?;
                PermitMsg::Permit2Transfer {
                    spender: addr(m, "spender")?,
                    permitted,
                    deadline: uint(m, "deadline")?,
                    batch,
                }
            }
            _ => return Ok(None),
        }))
    })();
    match r {
        Ok(Some(msg)) => TypedClass::Permit(msg),
        Ok(None) => refused(
            ErrorCode::TypedDataNotAllowed,
            format!(
                "`{pt}`{} is not one of the bounded permit types (EIP-2612 Permit; Permit2 PermitSingle, PermitBatch, PermitTransferFrom, PermitBatchTransferFrom with their canonical fields); never signed",
                if is_permit2_domain { " in the Permit2 domain" } else { "" }
            ),
        ),
        Err(d) => TypedClass::Refused(d),
    }
}

#[cfg(test)]
#[path = "typed_tests.rs"]
mod tests;
