//! Unit tests for the signing surface beyond transactions: user operations (R-SIGN-2),
//! typed data and permits (R-SIGN-3, R-APP-1), personal messages (R-SIGN-4), EIP-7702.

use super::*;
use crate::error::ErrorCode;
use crate::payload::prepare;
use crate::period::parse_time;
use crate::protocol::SignPayload;
use crate::typed::PERMIT2;
use crate::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use serde_json::{json, Value};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const ACCOUNT_SCA: Address = address!("0000000000000000000000000000000000005ca0");
const PAYMASTER: Address = address!("00000000000000000000000000000000000000fa");
const SEAPORT: Address = address!("0000000000000068f116a894984e2db1123eb395");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

const BASE: &str = r#"
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564", "0x000000000022D473030F116dDEE9F6B43aC78BA3"]
max = ["50 USDC"]
[user_operations]
entry_points = ["v0.7"]
paymasters = ["0x00000000000000000000000000000000000000fa"]
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 1000000
[[permits]]
kind = "eip2612"
max_deadline = "1h"
[[permits]]
kind = "permit2"
tokens = ["USDC"]
max_deadline = "30m"
[[typed_data]]
name = "Seaport"
version = "1.6"
chain_id = 1
verifying_contract = "0x0000000000000068F116a894984e2DB1123eB395"
primary_type = "OrderComponents"
[[messages]]
exact = "gm"
[[messages]]
prefix = "Bridle agent login:"
[[messages]]
siwe_domain = "example.com"
"#;

fn compile_text(extra: &str) -> Result<CompiledPolicy, crate::Denial> {
    let text = format!(
        "name = \"surface\"\nchains = [1]\nvalid_for = \"24h\"\ntokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6 }} }}\n{extra}"
    );
    CompiledPolicy::compile(file::resolve_text(&text, t0())?)
}

fn policy() -> CompiledPolicy {
    compile_text(BASE).unwrap_or_else(|d| panic!("{d}"))
}

/// [`compile_text`] as a snapshot restores a policy an earlier build accepted: without the
/// checks only new policies get.
fn restored_text(extra: &str) -> CompiledPolicy {
    let text = format!(
        "name = \"surface\"\nchains = [1]\nvalid_for = \"24h\"\ntokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6 }} }}\n{extra}"
    );
    CompiledPolicy::compile_restored(file::resolve_text(&text, t0()).unwrap()).unwrap_or_else(|d| panic!("{d}"))
}

#[path = "typed_review_tests.rs"]
mod typed_review;

fn ctx() -> Context {
    Context { now: t0() + 10, anchor: t0(), owner: OWNER, account: SESSION }
}

fn decide(p: &CompiledPolicy, c: &Counters, payload: SignPayload) -> Result<Charges, crate::Denial> {
    prepare(&payload)?.evaluate(p, c, &ctx())
}

fn code(r: Result<Charges, crate::Denial>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected a denial"),
        Err(d) => d.code,
    }
}

// ---- user operations -------------------------------------------------------------------

fn xfer(to: Address, amount: U256) -> Bytes {
    transferCall { to, amount }.abi_encode().into()
}

fn op(call_data: Bytes) -> UserOperationRequest {
    UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: ACCOUNT_SCA,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data,
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    }
}

fn uo(o: UserOperationRequest) -> SignPayload {
    SignPayload::UserOperation(o)
}

#[test]
fn entry_points_are_listed_under_their_version() {
    use crate::userop::{EntryPointVersion, ENTRY_POINT_V08};
    let ep8 = Address::repeat_byte(0x08);
    let with = |eps: &str| compile_text(&BASE.replace(r#"entry_points = ["v0.7"]"#, &format!("entry_points = {eps}")));
    let p = with(&format!(r#"["v0.8", "{ep8}@v0.8"]"#)).unwrap();
    let u = &p.doc.user_operations;
    assert_eq!((u.entry_points.clone(), u.entry_points_v08.clone()), (vec![], vec![ENTRY_POINT_V08, ep8]));
    let c = Counters::new();
    let single = encode::simple_execute(USDC, U256::ZERO, xfer(ALICE, usdc(1)));
    let mut o = op(single);
    // The canonical v0.8 address is v0.8 by itself; another needs the request to say so.
    o.entry_point = ENTRY_POINT_V08;
    decide(&p, &c, uo(o.clone())).unwrap();
    o.entry_point_version = Some(EntryPointVersion::V07);
    assert_eq!(code(decide(&p, &c, uo(o.clone()))), ErrorCode::TargetNotAllowed);
    o.entry_point = ep8;
    assert_eq!(code(decide(&p, &c, uo(o.clone()))), ErrorCode::TargetNotAllowed);
    o.entry_point_version = Some(EntryPointVersion::V08);
    decide(&p, &c, uo(o.clone())).unwrap();
    // v0.7 lists keep their meaning, and the two lists are disjoint.
    assert_eq!(code(decide(&policy(), &c, uo(o))), ErrorCode::TargetNotAllowed);
    assert_eq!(with(&format!(r#"["{ep8}", "{ep8}@v0.8"]"#)).unwrap_err().code, ErrorCode::InvalidPolicy);
    assert_eq!(with(&format!(r#"["{ep8}@v0.9"]"#)).unwrap_err().code, ErrorCode::InvalidPolicy);
    // A policy without v0.8 entry points hashes as before (the field is omitted).
    assert!(!serde_json::to_string(&policy().doc).unwrap().contains("entry_points_v08"));
}

#[test]
fn user_op_inner_calls_are_checked_and_charged_together() {
    let p = policy();
    let c = Counters::new();
    let single = encode::simple_execute(USDC, U256::ZERO, xfer(ALICE, usdc(60)));
    let ch = decide(&p, &c, uo(op(single))).unwrap();
    assert_eq!(ch.tokens, vec![(0, usdc(60))]);
    assert_eq!(ch.gas_cost, U256::from(250_000u64) * U256::from(10_000_000_000u64));

    // Each inner call 60 + 50: within the per-call rules, over the daily cap together.
    for cd in [
        encode::simple_execute_batch(&[
            (USDC, U256::ZERO, xfer(ALICE, usdc(60))),
            (USDC, U256::ZERO, xfer(ALICE, usdc(50))),
        ]),
        encode::erc7579_batch(&[(USDC, U256::ZERO, xfer(ALICE, usdc(60))), (USDC, U256::ZERO, xfer(ALICE, usdc(50)))]),
    ] {
        let d = decide(&p, &c, uo(op(cd))).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::SpendCap, Some("limits[0]")), "{d}");
    }
    // A batch whose second call breaks the policy is refused as a whole.
    let bad = encode::erc7579_batch(&[(USDC, U256::ZERO, xfer(ALICE, usdc(1))), (ALICE, U256::from(1), Bytes::new())]);
    let d = decide(&p, &c, uo(op(bad))).unwrap_err();
    assert_eq!(d.code, ErrorCode::TargetNotAllowed);
    assert!(d.reason.starts_with("call 1:"), "{d}");
    // And an unlimited approve inside a batch.
    let bad = encode::simple_execute_batch(&[
        (USDC, U256::ZERO, xfer(ALICE, usdc(1))),
        (USDC, U256::ZERO, approveCall { spender: ROUTER, amount: U256::MAX }.abi_encode().into()),
    ]);
    assert_eq!(code(decide(&p, &c, uo(op(bad)))), ErrorCode::UnlimitedApproval);
}

/// A user operation's calls run as its account, which may hold allowances and deposits
/// Bridle never metered (the owner's own wallet with a session key added): a router's
/// `swap` from it could pull 1,000,000 USDC through an old approval against a 100 USDC
/// daily cap, charged nothing (a review of 2026-12-05). Only metered calls and plain value
/// transfers run as an account, unless the owner vouches for its accounts.
#[test]
fn user_op_calls_are_metered_unless_the_owner_vouches_for_the_account() {
    sol! { function swap(address tokenIn, uint256 amountIn); }
    let router = format!(
        "[[calls]]\ntarget = \"{ROUTER}\"\nfunctions = [\"swap(address,uint256)\"]\n[[calls]]\ntarget = \"{PERMIT2}\"\nfunctions = [\"approve(address,address,uint160,uint48)\"]\n"
    );
    let p = compile_text(&format!("{BASE}{router}")).unwrap();
    let c = Counters::new();
    let pull = swapCall { tokenIn: USDC, amountIn: usdc(1_000_000) }.abi_encode();
    for cd in [
        encode::simple_execute(ROUTER, U256::ZERO, pull.clone().into()),
        encode::erc7579_batch(&[(USDC, U256::ZERO, xfer(ALICE, usdc(1))), (ROUTER, U256::ZERO, pull.clone().into())]),
    ] {
        let d = decide(&p, &c, uo(op(cd))).unwrap_err();
        assert_eq!(
            (d.code, d.rule.as_deref()),
            (ErrorCode::SelectorNotAllowed, Some("user_operations.unmetered_calls"))
        );
        assert!(d.reason.contains(&ACCOUNT_SCA.to_string()) && d.reason.contains(&ROUTER.to_string()), "{d}");
    }
    // Metered calls and plain value transfers still run as the account.
    let metered = encode::erc7579_batch(&[
        (USDC, U256::ZERO, xfer(ALICE, usdc(1))),
        (USDC, U256::ZERO, approveCall { spender: ROUTER, amount: usdc(5) }.abi_encode().into()),
    ]);
    assert_eq!(decide(&p, &c, uo(op(metered))).unwrap().tokens, vec![(0, usdc(6))]);
    // Permit2's approve is metered too (a revocation of the account's Permit2 key among them).
    sol! { interface IPermit2 { function approve(address token, address spender, uint160 amount, uint48 expiration); } }
    for amount in [0u64, 5_000_000] {
        let call = IPermit2::approveCall {
            token: USDC,
            spender: ROUTER,
            amount: alloy_primitives::Uint::from(amount),
            expiration: alloy_primitives::Uint::from(0u8),
        };
        let cd = encode::simple_execute(PERMIT2, U256::ZERO, call.abi_encode().into());
        let ch = decide(&p, &c, uo(op(cd))).unwrap();
        assert_eq!(ch.approvals.len(), 1, "{amount}");
    }
    // The same transaction from the session's own address (whose allowances Bridle metered)
    // is a call like any other.
    let tx = crate::tx::TxRequest::Eip1559(crate::tx::Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
        to: Some(ROUTER),
        value: U256::ZERO,
        data: pull.clone().into(),
        access_list: vec![],
    });
    decide(&p, &c, SignPayload::Transaction(tx)).unwrap();
    // The owner vouches: the router's call runs as the account.
    let vouched = BASE.replace("entry_points = [\"v0.7\"]", "entry_points = [\"v0.7\"]\nunmetered_calls = true");
    let p2 = compile_text(&format!("{vouched}{router}")).unwrap();
    decide(&p2, &c, uo(op(encode::simple_execute(ROUTER, U256::ZERO, pull.into())))).unwrap();
    // Off, the setting is omitted from the policy's normalized form (older policies keep
    // their hash); on, it is part of what the owner signs.
    assert!(!serde_json::to_string(&p.doc).unwrap().contains("unmetered_calls"));
    assert!(serde_json::to_string(&p2.doc).unwrap().contains("\"unmetered_calls\":true"));
    assert_ne!(p.hash, p2.hash);
}

/// Under `approvals.jit_only` a Permit2 approve is refused like any approval that is not
/// just in time — it passed, in a transaction, a user operation or a redemption (a review of
/// 2026-12-05); its revocation (amount 0) still passes.
#[test]
fn jit_only_covers_permit2_approve() {
    sol! { interface IPermit2J { function approve(address token, address spender, uint160 amount, uint48 expiration); } }
    let calls =
        format!("[[calls]]\ntarget = \"{PERMIT2}\"\nfunctions = [\"approve(address,address,uint160,uint48)\"]\n");
    let strict = BASE.replace(
        "max = [\"50 USDC\"]",
        "max = [\"50 USDC\"]\njit_only = true\njit = [{ signature = \"swap(address tokenIn,uint256 amountIn)\", amount_arg = \"amountIn\" }]",
    );
    let p = compile_text(&format!("{strict}{calls}")).unwrap();
    let c = Counters::new();
    let approve = |amount: u64| {
        IPermit2J::approveCall {
            token: USDC,
            spender: ROUTER,
            amount: alloy_primitives::Uint::from(amount),
            expiration: alloy_primitives::Uint::from(0u8),
        }
        .abi_encode()
    };
    let tx = |data: Vec<u8>| {
        SignPayload::Transaction(crate::tx::TxRequest::Eip1559(crate::tx::Eip1559Request {
            chain_id: 1,
            nonce: 0,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1,
            gas_limit: 100_000,
            to: Some(PERMIT2),
            value: U256::ZERO,
            data: data.into(),
            access_list: vec![],
        }))
    };
    for payload in
        [tx(approve(5_000_000)), uo(op(encode::simple_execute(PERMIT2, U256::ZERO, approve(5_000_000).into())))]
    {
        let d = decide(&p, &c, payload).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.jit_only")), "{d}");
    }
    decide(&p, &c, tx(approve(0))).unwrap();
    // Without jit_only it is an approval like any other.
    decide(&compile_text(&format!("{BASE}{calls}")).unwrap(), &c, tx(approve(5_000_000))).unwrap();
}

#[test]
fn user_op_lists_and_gas() {
    let p = policy();
    let c = Counters::new();
    let cd = encode::erc7579_single(USDC, U256::ZERO, &xfer(ALICE, usdc(1)));
    let rule = |o: UserOperationRequest| decide(&p, &c, uo(o)).unwrap_err().rule.unwrap_or_default();

    let mut o = op(cd.clone());
    o.entry_point = Address::repeat_byte(0xe9);
    assert_eq!(rule(o), "user_operations.entry_points");
    let mut o = op(cd.clone());
    o.paymaster = Some(Address::repeat_byte(0x99));
    assert_eq!(rule(o), "user_operations.paymasters");
    let mut o = op(cd.clone());
    o.paymaster = Some(PAYMASTER);
    o.paymaster_verification_gas_limit = 10_000;
    assert!(decide(&p, &c, uo(o)).is_ok());
    let mut o = op(cd.clone());
    o.factory = Some(Address::repeat_byte(0xfa));
    assert_eq!(rule(o), "user_operations.factories");
    let mut o = op(cd.clone());
    o.chain_id = 10;
    assert_eq!(rule(o), "chains");
    let mut o = op(cd.clone());
    o.max_fee_per_gas = 60_000_000_000;
    assert_eq!(rule(o), "gas.max_fee_per_gas");
    // Gas limits are summed: 400k + 400k + 300k > 1M.
    let mut o = op(cd.clone());
    o.call_gas_limit = 400_000;
    o.verification_gas_limit = 400_000;
    o.pre_verification_gas = U256::from(300_000);
    assert_eq!(rule(o), "gas.max_gas_limit");

    // Senders, when listed.
    let p2 = compile_text(
        &BASE.replace("entry_points = [\"v0.7\"]", &format!("entry_points = [\"v0.7\"]\nsenders = [\"{ALICE}\"]")),
    )
    .unwrap();
    let d = decide(&p2, &Counters::new(), uo(op(cd.clone()))).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("user_operations.senders"));

    // No entry point listed: no user operation.
    let p3 = compile_text(&BASE.replace("entry_points = [\"v0.7\"]", "")).unwrap();
    let d = decide(&p3, &Counters::new(), uo(op(cd))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TargetNotAllowed, Some("user_operations.entry_points")));
}

#[test]
fn user_op_undecodable_call_data_is_denied() {
    let p = policy();
    let c = Counters::new();
    assert_eq!(code(decide(&p, &c, uo(op(Bytes::new())))), ErrorCode::SelectorNotAllowed);
    // The token's transfer called directly as the account's callData: not an execute.
    assert_eq!(code(decide(&p, &c, uo(op(xfer(ALICE, usdc(1)))))), ErrorCode::SelectorNotAllowed);
    let mut mode = [0u8; 32];
    mode[0] = 0xff;
    let dc = crate::userop::erc7579::executeCall {
        mode: mode.into(),
        executionCalldata: [USDC.as_slice(), &xfer(ALICE, usdc(1))].concat().into(),
    };
    assert_eq!(code(decide(&p, &c, uo(op(dc.abi_encode().into())))), ErrorCode::ArgumentRejected);
}

// ---- typed data --------------------------------------------------------------------------

fn domain_types(domain: &Value) -> Value {
    let mut v = vec![];
    for (k, t) in [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]
    {
        if domain.get(k).is_some() {
            v.push(json!({"name": k, "type": t}));
        }
    }
    Value::Array(v)
}

fn typed(domain: Value, mut types: Value, primary: &str, message: Value) -> SignPayload {
    types["EIP712Domain"] = domain_types(&domain);
    SignPayload::TypedData(
        json!({"types": types, "primaryType": primary, "domain": domain, "message": message}).to_string(),
    )
}

fn permit(owner: Address, spender: Address, value: U256, deadline: u64) -> SignPayload {
    typed(
        json!({"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC}),
        json!({"Permit": [
            {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}]}),
        "Permit",
        json!({"owner": owner, "spender": spender, "value": value.to_string(), "nonce": 0, "deadline": deadline}),
    )
}

fn permit_details() -> Value {
    json!([{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
        {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}])
}

fn permit_single(amount: U256, expiration: u64, sig_deadline: u64, domain: Value) -> SignPayload {
    typed(
        domain,
        json!({"PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
            {"name": "sigDeadline", "type": "uint256"}], "PermitDetails": permit_details()}),
        "PermitSingle",
        json!({"details": {"token": USDC, "amount": amount.to_string(), "expiration": expiration, "nonce": 0},
            "spender": ROUTER, "sigDeadline": sig_deadline}),
    )
}

fn permit2_domain() -> Value {
    json!({"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2})
}

#[test]
fn eip2612_permit_within_bounds_is_allowed_and_counted() {
    let p = policy();
    let mut c = Counters::new();
    let now = ctx().now;
    let ch = decide(&p, &c, permit(SESSION, ROUTER, usdc(40), now + 600)).unwrap();
    assert_eq!(ch.tokens, vec![(0, usdc(40))]);
    c.charge(&p, &ch, t0(), now);
    // Counted against the daily cap: 40 (permit) + 40 + 40 (transfers) > 100.
    let single = encode::simple_execute(USDC, U256::ZERO, xfer(ALICE, usdc(40)));
    let ch = decide(&p, &c, uo(op(single.clone()))).unwrap();
    c.charge(&p, &ch, t0(), now);
    assert_eq!(code(decide(&p, &c, uo(op(single)))), ErrorCode::SpendCap);
}

#[test]
fn eip2612_permit_refusals() {
    let p = policy();
    let c = Counters::new();
    let now = ctx().now;
    let d = decide(&p, &c, permit(SESSION, ROUTER, U256::MAX, now + 60)).unwrap_err();
    assert_eq!(d.code, ErrorCode::UnlimitedApproval);
    let d = decide(&p, &c, permit(SESSION, ROUTER, usdc(51), now + 60)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.caps[0]")));
    let d = decide(&p, &c, permit(SESSION, ROUTER, usdc(1), now + 3601)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ArgumentRejected, Some("permits[0].max_deadline")));
    let d = decide(&p, &c, permit(SESSION, ALICE, usdc(1), now + 60)).unwrap_err();
    assert_eq!(d.code, ErrorCode::SpenderNotAllowed);
    let d = decide(&p, &c, permit(ALICE, ROUTER, usdc(1), now + 60)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ArgumentRejected, Some("permits[0]")));
    // No permits rule: typed_data_not_allowed.
    let p2 = compile_text(&BASE.replace("kind = \"eip2612\"", "kind = \"permit2\"")).unwrap();
    let d = decide(&p2, &Counters::new(), permit(SESSION, ROUTER, usdc(1), now + 60)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TypedDataNotAllowed, Some("permits")));
    // A chain the policy does not allow.
    let other_chain = typed(
        json!({"name": "USD Coin", "version": "2", "chainId": 5, "verifyingContract": USDC}),
        json!({"Permit": [
            {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}]}),
        "Permit",
        json!({"owner": SESSION, "spender": ROUTER, "value": "1", "nonce": 0, "deadline": now}),
    );
    assert_eq!(code(decide(&p, &c, other_chain)), ErrorCode::ChainNotAllowed);
}

/// A Permit2 SignatureTransfer (`PermitTransferFrom`) of `amount` USDC to `spender`.
fn signature_transfer(spender: Address, amount: U256, nonce: u64, deadline: u64) -> SignPayload {
    let tp = json!([{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}]);
    typed(
        permit2_domain(),
        json!({"PermitTransferFrom": [{"name": "permitted", "type": "TokenPermissions"},
            {"name": "spender", "type": "address"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}], "TokenPermissions": tp}),
        "PermitTransferFrom",
        json!({"permitted": {"token": USDC, "amount": amount.to_string()}, "spender": spender, "nonce": nonce, "deadline": deadline}),
    )
}

#[test]
fn permit2_messages() {
    let p = policy();
    let c = Counters::new();
    let now = ctx().now;
    let ch = decide(&p, &c, permit_single(usdc(10), now + 600, now + 600, permit2_domain())).unwrap();
    assert_eq!(ch.tokens, vec![(0, usdc(10))]);
    // Expiration 0 (Permit2: "this block") is within any bound.
    assert!(decide(&p, &c, permit_single(usdc(10), 0, now + 600, permit2_domain())).is_ok());
    let d = decide(&p, &c, permit_single(crate::typed::u160_max(), now + 60, now + 60, permit2_domain())).unwrap_err();
    assert_eq!(d.code, ErrorCode::UnlimitedApproval);
    assert!(d.reason.contains("uint160"), "{d}");
    let d = decide(&p, &c, permit_single(usdc(1), now + 1801, now + 60, permit2_domain())).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("permits[1].max_deadline"));
    let d = decide(&p, &c, permit_single(usdc(1), now + 60, now + 1801, permit2_domain())).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("permits[1].max_deadline"));
    // Domain not exactly Permit2's.
    let bad = json!({"name": "Permit2", "version": "1", "chainId": 1, "verifyingContract": PERMIT2});
    assert_eq!(code(decide(&p, &c, permit_single(usdc(1), 0, now, bad))), ErrorCode::TypedDataNotAllowed);
    let elsewhere = json!({"name": "Permit2", "chainId": 1, "verifyingContract": Address::repeat_byte(0x77)});
    assert_eq!(code(decide(&p, &c, permit_single(usdc(1), 0, now, elsewhere))), ErrorCode::TypedDataNotAllowed);

    // SignatureTransfer, single and batch.
    let tp = json!([{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}]);
    let transfer = |amount: U256, deadline: u64| signature_transfer(ROUTER, amount, 1, deadline);
    assert_eq!(decide(&p, &c, transfer(usdc(5), now + 60)).unwrap().tokens, vec![(0, usdc(5))]);
    assert_eq!(code(decide(&p, &c, transfer(U256::MAX, now + 60))), ErrorCode::UnlimitedApproval);
    let batch = typed(
        permit2_domain(),
        json!({"PermitBatch": [{"name": "details", "type": "PermitDetails[]"}, {"name": "spender", "type": "address"},
            {"name": "sigDeadline", "type": "uint256"}], "PermitDetails": permit_details()}),
        "PermitBatch",
        json!({"details": [
            {"token": USDC, "amount": usdc(20).to_string(), "expiration": 0, "nonce": 0},
            {"token": USDC, "amount": usdc(25).to_string(), "expiration": 0, "nonce": 0}],
            "spender": ROUTER, "sigDeadline": now}),
    );
    assert_eq!(decide(&p, &c, batch).unwrap().tokens, vec![(0, usdc(45))]);
    // A witness transfer is not one of the bounded types.
    let witness = typed(
        permit2_domain(),
        json!({"PermitWitnessTransferFrom": [{"name": "permitted", "type": "TokenPermissions"},
            {"name": "spender", "type": "address"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}, {"name": "witness", "type": "bytes32"}], "TokenPermissions": tp}),
        "PermitWitnessTransferFrom",
        json!({"permitted": {"token": USDC, "amount": "1"}, "spender": ROUTER, "nonce": 1, "deadline": now,
            "witness": format!("0x{}", "00".repeat(32))}),
    );
    assert_eq!(code(decide(&p, &c, witness)), ErrorCode::TypedDataNotAllowed);
}

/// Two signature-transfer permits of 2^256 − 2, to two spenders, are worth past 2^256 − 1:
/// valued at the cap with and without the second, it counted as raising nothing (a review
/// of 2026-12-05). Exposure at the cap cannot be measured: the second is refused under a
/// ceiling. (One spender's permits cannot sum so far: each key stays within its cap.)
#[test]
fn permits_summing_past_the_cap_are_refused_under_a_ceiling() {
    let huge = "115792089237316195423570985008687907853269984665640564039457584007913129.639934 USDC";
    let base = BASE
        .replace("[[limits]]\nmax = \"100 USDC\"\nper = \"day\"\n", "")
        .replace("max = [\"50 USDC\"]", &format!("max = [\"{huge}\"]"));
    let open = compile_text(&base).unwrap();
    let capped = compile_text(&format!("prices = {{ USDC = \"1\" }}\nexposure_ceiling = \"60 USD\"\n{base}")).unwrap();
    let transfer = |spender: Address, nonce: u64, deadline: u64| {
        signature_transfer(spender, U256::MAX - U256::from(1u8), nonce, deadline)
    };
    let now = ctx().now;
    let mut c = Counters::new();
    let ch = decide(&open, &c, transfer(ROUTER, 1, now + 600)).unwrap();
    c.charge(&open, &ch, t0(), now);
    let d = decide(&capped, &c, transfer(PERMIT2, 2, now + 900)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("exposure_ceiling")), "{d}");
    assert!(d.reason.contains("cannot be checked"), "{d}");
}

#[test]
fn generic_typed_data_rules_and_refusals() {
    let p = policy();
    let c = Counters::new();
    let order = |name: &str, vc: Address, primary: &str| {
        typed(
            json!({"name": name, "version": "1.6", "chainId": 1, "verifyingContract": vc}),
            json!({primary: [{"name": "offerer", "type": "address"}, {"name": "salt", "type": "uint256"}]}),
            primary,
            json!({"offerer": SESSION, "salt": 7}),
        )
    };
    let ch = decide(&p, &c, order("Seaport", SEAPORT, "OrderComponents")).unwrap();
    assert_eq!(ch, Charges::at(None, 1));
    let d = decide(&p, &c, order("Seaport", ALICE, "OrderComponents")).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TypedDataNotAllowed, Some("typed_data")));
    assert_eq!(code(decide(&p, &c, order("Seaport", SEAPORT, "Order"))), ErrorCode::TypedDataNotAllowed);
    assert_eq!(code(decide(&p, &c, order("Unknown", SEAPORT, "OrderComponents"))), ErrorCode::TypedDataNotAllowed);

    // The Bridle domain: never, even with a matching-looking rule elsewhere.
    let owner = crate::owner::OwnerAction {
        action: "revoke_all".into(),
        enclave: ALICE,
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: Default::default(),
        subject: Default::default(),
        nonce: 9,
    };
    let d = decide(&p, &c, SignPayload::TypedData(owner.typed_data_json().to_string())).unwrap_err();
    assert_eq!(d.code, ErrorCode::TypedDataNotAllowed);
    assert!(d.reason.contains("R-TRUST-5"), "{d}");

    // EIP-7702 authorization as typed data.
    let auth = typed(
        json!({"name": "Seaport", "version": "1.6", "chainId": 1, "verifyingContract": SEAPORT}),
        json!({"Authorization": [{"name": "chainId", "type": "uint256"}, {"name": "address", "type": "address"},
            {"name": "nonce", "type": "uint64"}]}),
        "Authorization",
        json!({"chainId": 1, "address": ALICE, "nonce": 0}),
    );
    assert_eq!(code(decide(&p, &c, auth)), ErrorCode::AuthorizationDenied);

    // Type-4 transactions: refused before anything else.
    let t4 = SignPayload::Transaction(crate::tx::TxRequest::Eip7702 { chain_id: 1, authorization_list: vec![] });
    assert_eq!(prepare(&t4).unwrap_err().code, ErrorCode::AuthorizationDenied);

    // Malformed typed data.
    assert_eq!(code(decide(&p, &c, SignPayload::TypedData("{".into()))), ErrorCode::Malformed);
}

/// A review of 2026-12-05: Safe's `SafeMessage(bytes message)` wrapping the digest of a
/// Permit2 transfer made the Safe (whose signer the session is) accept that transfer as
/// signed, past every cap. Typed data that wraps one opaque byte string is never signed,
/// whatever rule names it — under any primary type or domain.
#[test]
fn typed_data_wrapping_an_opaque_digest_is_refused() {
    let digest = format!("0x{}", "ab".repeat(32));
    let wrapped = |primary: &str, ty: &str, value: &str, name: &str| {
        typed(
            json!({"name": name, "version": "1.6", "chainId": 1, "verifyingContract": SEAPORT}),
            json!({primary: [{"name": "message", "type": ty}]}),
            primary,
            json!({"message": value}),
        )
    };
    // Even where a rule allows the type (the rule is written here for the test's own
    // domain: compile refuses a rule naming an account's wrapper).
    let p = compile_text(&format!(
        "[[typed_data]]\nname = \"Seaport\"\nverifying_contract = \"{SEAPORT}\"\nprimary_type = \"Wrapped\""
    ))
    .unwrap();
    let c = Counters::new();
    for (primary, ty, name) in [
        ("Wrapped", "bytes", "Seaport"),
        ("Wrapped", "bytes32", "Seaport"),
        ("SafeMessage", "bytes", "Safe"),
        ("CoinbaseSmartWalletMessage", "bytes32", "Coinbase Smart Wallet"),
        ("PersonalSign", "bytes", "Kernel"),
    ] {
        let d = decide(&p, &c, wrapped(primary, ty, &digest, name)).unwrap_err();
        assert_eq!(d.code, ErrorCode::TypedDataNotAllowed, "{primary}({ty}): {d}");
        assert!(d.reason.contains("opaque"), "{d}");
    }
    // Wrappers of two fields are refused by name (Ambire's `AmbireOperation(address account,
    // bytes32 hash)`, a Safe message with another field).
    for primary in ["AmbireOperation", "SafeMessage"] {
        let two = typed(
            json!({"name": "Ambire", "version": "1", "chainId": 1, "verifyingContract": SEAPORT}),
            json!({primary: [{"name": "account", "type": "address"}, {"name": "hash", "type": "bytes32"}]}),
            primary,
            json!({"account": SEAPORT, "hash": digest}),
        );
        let d = decide(&p, &c, two).unwrap_err();
        assert!(d.code == ErrorCode::TypedDataNotAllowed && d.reason.contains("opaque"), "{primary}: {d}");
    }
    // ERC-7739 nested typed data: in the token's own domain, an EIP-2612 permit of the
    // account's tokens as `contents` is the account's signature over that permit.
    let nested = typed(
        json!({"name": "Seaport", "version": "1.6", "chainId": 1, "verifyingContract": SEAPORT}),
        json!({"TypedDataSign": [{"name": "contents", "type": "Permit"}, {"name": "name", "type": "string"},
                {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}]}),
        "TypedDataSign",
        json!({"contents": {"owner": SEAPORT, "spender": SEAPORT, "value": "1000000", "nonce": 0, "deadline": 1},
            "name": "Kernel", "version": "0.3.1", "chainId": 1, "verifyingContract": SEAPORT, "salt": digest}),
    );
    let d = decide(&p, &c, nested).unwrap_err();
    assert!(d.code == ErrorCode::TypedDataNotAllowed && d.reason.contains("opaque"), "TypedDataSign: {d}");
    // A struct of more than one value is decided by its rules as before.
    let two = typed(
        json!({"name": "Seaport", "version": "1.6", "chainId": 1, "verifyingContract": SEAPORT}),
        json!({"Wrapped": [{"name": "message", "type": "bytes32"}, {"name": "salt", "type": "uint256"}]}),
        "Wrapped",
        json!({"message": digest, "salt": 1}),
    );
    assert_eq!(decide(&p, &c, two).unwrap(), Charges::at(None, 1));
}

// ---- messages ----------------------------------------------------------------------------

fn msg(s: &str) -> SignPayload {
    SignPayload::Message(Bytes::copy_from_slice(s.as_bytes()))
}

fn siwe(domain: &str, addr: Address, chain: u64) -> String {
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to the agent dashboard.\n\nURI: https://{domain}/login\nVersion: 1\nChain ID: {chain}\nNonce: 32891756\nIssued At: 2026-11-23T10:00:00Z",
        addr.to_checksum(None)
    )
}

#[test]
fn message_rules() {
    let p = policy();
    let c = Counters::new();
    assert!(decide(&p, &c, msg("gm")).is_ok());
    assert_eq!(code(decide(&p, &c, msg("gm!"))), ErrorCode::MessageNotAllowed);
    assert!(decide(&p, &c, msg("Bridle agent login: 2026-11-23 nonce 5")).is_ok());
    assert_eq!(code(decide(&p, &c, msg("please sign this"))), ErrorCode::MessageNotAllowed);
    // A 32-byte message could be a userOpHash: no prefix rule allows one.
    let hashlike = format!("Bridle agent login:{}", "x".repeat(32 - 19));
    assert_eq!(hashlike.len(), 32);
    assert_eq!(code(decide(&p, &c, msg(&hashlike))), ErrorCode::MessageNotAllowed);
    // Nor bytes that are not text after the prefix: Biconomy v2 checks `hash ‖ account` (52
    // bytes) as a personal message, and the prefix can be ground into a permit's digest.
    let mut binary = b"Bridle agent login:".to_vec();
    binary.extend_from_slice(&[0xff, 0xfe, 0x80, 0x00, 0x9c]);
    assert_eq!(code(decide(&p, &c, SignPayload::Message(Bytes::from(binary)))), ErrorCode::MessageNotAllowed);
    // Control characters are not text either (UTF-8 alone lets NUL and C0 through, half of
    // a random byte); lines are.
    let mut nul = b"Bridle agent login:".to_vec();
    nul.extend_from_slice(&[0x00, 0x01, 0x1b, 0x7f]);
    assert_eq!(code(decide(&p, &c, SignPayload::Message(Bytes::from(nul)))), ErrorCode::MessageNotAllowed);
    assert!(decide(&p, &c, msg("Bridle agent login: 2026-11-23\r\n\tnonce 5")).is_ok());

    assert!(decide(&p, &c, msg(&siwe("example.com", SESSION, 1))).is_ok());
    assert!(decide(&p, &c, msg(&siwe("https://example.com", SESSION, 1))).is_ok());
    let d = decide(&p, &c, msg(&siwe("example.com", ALICE, 1))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::MessageNotAllowed, Some("messages[2]")));
    let d = decide(&p, &c, msg(&siwe("example.com", SESSION, 5))).unwrap_err();
    assert!(d.reason.contains("chain 5"), "{d}");
    assert_eq!(code(decide(&p, &c, msg(&siwe("evil.example", SESSION, 1)))), ErrorCode::MessageNotAllowed);
    assert_eq!(code(decide(&p, &c, SignPayload::Message(Bytes::from(vec![0xffu8; 40])))), ErrorCode::MessageNotAllowed);

    // No message rules: nothing.
    let p2 = compile_text("").unwrap();
    let d = decide(&p2, &Counters::new(), msg("gm")).unwrap_err();
    assert!(d.reason.contains("allows no personal message"), "{d}");
}

#[test]
fn messages_and_typed_data_count_against_quota_and_rate() {
    let p = compile_text(&format!("quota = 1\n{BASE}")).unwrap();
    let mut c = Counters::new();
    let ch = decide(&p, &c, msg("gm")).unwrap();
    c.charge(&p, &ch, t0(), ctx().now);
    assert_eq!(code(decide(&p, &c, msg("gm"))), ErrorCode::QuotaExhausted);
}

// ---- validation and explanation -----------------------------------------------------------

#[test]
fn new_rules_are_validated() {
    let bad = |extra: &str, want: &str| {
        let d = compile_text(extra).err().unwrap_or_else(|| panic!("accepted: {extra}"));
        assert_eq!(d.code, ErrorCode::InvalidPolicy);
        assert!(d.rule.as_deref().unwrap_or("").starts_with(want), "{d} (wanted rule {want})");
    };
    bad("[[typed_data]]\nname = \"X\"\nprimary_type = \"Permit\"", "typed_data[0]");
    bad("[[typed_data]]\nname = \"X\"\nprimary_type = \"TransferWithAuthorization\"", "typed_data[0]");
    bad("[[typed_data]]\nname = \"Bridle\"\nprimary_type = \"Thing\"", "typed_data[0]");
    bad("[[typed_data]]\nprimary_type = \"Thing\"", "typed_data[0]");
    bad("[[typed_data]]\nname = \"X\"\nprimary_type = \"Authorization\"", "typed_data[0]");
    bad(&format!("[[typed_data]]\nverifying_contract = \"{ALICE}\"\nprimary_type = \"SafeMessage\""), "typed_data[0]");
    // Typed data verified by an account the session signs for: any of its wrappers.
    bad(
        &format!(
            "[user_operations]\nentry_points = [\"v0.7\"]\nsenders = [\"{ALICE}\"]\n[[typed_data]]\nverifying_contract = \"{ALICE}\"\nprimary_type = \"Thing\""
        ),
        "typed_data[0]",
    );
    bad(&format!("[[typed_data]]\nverifying_contract = \"{USDC}\"\nprimary_type = \"Thing\""), "typed_data[0]");
    bad("[[typed_data]]\nname = \"X\"\nchain_id = 5\nprimary_type = \"Thing\"", "typed_data[0]");
    bad("[[typed_data]]\nname = \"X\"\nprimary_type = \"not a type\"", "typed_data[0]");
    // An elementary type as primary type would sign 32 bytes of the agent's choosing.
    for elementary in ["bytes32", "uint256", "uint", "address", "function"] {
        bad(&format!("[[typed_data]]\nname = \"X\"\nprimary_type = \"{elementary}\""), "typed_data[0]");
    }
    bad("[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"1h\"", "permits[0]"); // no caps, no spenders
    bad(
        "[approvals]\nspenders = [\"0xe592427a0aece92de3edee1f18e0157c05861564\"]\nmax = [\"5 USDC\"]\n[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"0s\"",
        "permits[0]",
    );
    bad(
        "[approvals]\nspenders = [\"0xe592427a0aece92de3edee1f18e0157c05861564\"]\nmax = [\"5 USDC\"]\n[[permits]]\nkind = \"eip2612\"\ntokens = [\"DAI\"]\nmax_deadline = \"1h\"",
        "permits[0]",
    );
    bad("[[messages]]\nprefix = \"\"", "messages[0]");
    bad("[[messages]]\nsiwe_domain = \"https://example.com\"", "messages[0]");
    bad("[[messages]]\nexact = \"a\"\nprefix = \"b\"", "messages[0]");
    bad("[user_operations]\nentry_points = [\"0x0000000000000000000000000000000000000000\"]", "user_operations");
}

#[test]
fn explain_names_the_new_rules_and_old_policies_keep_their_hash() {
    let p = policy();
    let e = explain::explain(&p);
    let pm = format!("user_operations.paymasters: {PAYMASTER}");
    for want in [
        "user_operations.entry_points",
        pm.as_str(),
        "typed_data[0]: may sign `OrderComponents`",
        "permits[0]: may sign EIP-2612 Permit",
        "permits[1]: may sign Permit2",
        "messages[2]: may sign a Sign-In with Ethereum message for example.com",
        "never signed",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    // A policy without the new rules does not mention them in its canonical encoding.
    let plain = compile_text("").unwrap();
    let text = String::from_utf8(plain.doc.canonical_bytes()).unwrap();
    for k in ["user_operations", "typed_data", "permits", "messages"] {
        assert!(!text.contains(k), "{text}");
    }
    // And the new rules round-trip through the canonical JSON.
    let back: Policy = serde_json::from_slice(&p.doc.canonical_bytes()).unwrap();
    assert_eq!(back, p.doc);
}

/// A review of 2026-12-05: an account the session signs for (a sender) checks typed data
/// in its own domain as its own signature, whatever the wrapper's shape; a policy allowing
/// any domain name must not reach it.
#[test]
fn typed_data_for_an_account_the_session_signs_for_is_refused() {
    let p = compile_text(&format!(
        "[user_operations]\nentry_points = [\"v0.7\"]\nsenders = [\"{ALICE}\"]\n[[typed_data]]\nname = \"Ambire\"\nverifying_contract = \"{SEAPORT}\"\nprimary_type = \"Op\""
    ))
    .unwrap();
    let c = Counters::new();
    let op = |vc: Address| {
        typed(
            json!({"name": "Ambire", "version": "1", "chainId": 1, "verifyingContract": vc}),
            json!({"Op": [{"name": "account", "type": "address"}, {"name": "hash", "type": "bytes32"}, {"name": "n", "type": "uint256"}]}),
            "Op",
            json!({"account": vc, "hash": format!("0x{}", "cd".repeat(32)), "n": 1}),
        )
    };
    let d = decide(&p, &c, op(ALICE)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TypedDataNotAllowed, Some("typed_data")), "{d}");
    assert!(d.reason.contains("ERC-1271"), "{d}");
    // The same typed data for another contract is decided by its rule.
    assert_eq!(decide(&p, &c, op(SEAPORT)).unwrap(), Charges::at(None, 1));
    // A policy an earlier build accepted with such rules still restores from a snapshot
    // (its requests are refused when signed), so one session cannot stop a node.
    let text = format!(
        "name = \"old\"\nchains = [1]\nvalid_for = \"24h\"\n[user_operations]\nentry_points = [\"v0.7\"]\nsenders = [\"{ALICE}\"]\n[[typed_data]]\nverifying_contract = \"{ALICE}\"\nprimary_type = \"SafeMessage\""
    );
    let doc = file::resolve_text(&text, t0()).unwrap();
    assert_eq!(CompiledPolicy::compile(doc.clone()).unwrap_err().code, ErrorCode::InvalidPolicy);
    let restored = CompiledPolicy::compile_restored(doc).unwrap();
    let safe = typed(
        json!({"chainId": 1, "verifyingContract": ALICE}),
        json!({"SafeMessage": [{"name": "message", "type": "bytes"}, {"name": "n", "type": "uint256"}]}),
        "SafeMessage",
        json!({"message": format!("0x{}", "cd".repeat(32)), "n": 1}),
    );
    assert_eq!(code(decide(&restored, &c, safe)), ErrorCode::TypedDataNotAllowed);
}
