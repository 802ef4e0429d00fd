//! ERC-7710 redemptions through the policy (RULES.md §5b): every execution checked as a call
//! held by its root delegator, charged with the rest; a redemption anywhere the enclave cannot
//! see into is refused; a call from an account to itself is refused.

use super::*;
use crate::allowance::Place;
use crate::delegation::{batch_execution, encode_redemption, single_execution, Delegation, MODE_BATCH, MODE_SINGLE};
use crate::error::ErrorCode;
use crate::payload::prepare;
use crate::period::parse_time;
use crate::protocol::SignPayload;
use crate::tx::{Eip1559Request, TxRequest};
use crate::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function swap(address tokenIn, uint256 amountIn);
    function execute(address dest, uint256 value, bytes func);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const BOB: Address = address!("0000000000000000000000000000000000000b0b");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const MANAGER: Address = address!("000000000000000000000000000000000000da7a");
const OTHER_MANAGER: Address = address!("000000000000000000000000000000000000da7b");
const D1: Address = address!("000000000000000000000000000000000000d001");
const D2: Address = address!("000000000000000000000000000000000000d002");
const SCA: Address = address!("0000000000000000000000000000000000005ca0");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

const BASE: &str = r#"
recipients = ["0x00000000000000000000000000000000000a11ce", "$account"]
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]
[[calls]]
target = "0xe592427a0aece92de3edee1f18e0157c05861564"
functions = ["swap(address tokenIn, uint256 amountIn)"]
[[limits]]
max = "100 USDC"
per = "day"
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["50 USDC"]
[user_operations]
entry_points = ["v0.7"]
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 1000000
"#;

/// `extra` may start with top-level keys up to a line `---`.
fn policy_with(extra: &str) -> CompiledPolicy {
    CompiledPolicy::compile(doc_with(extra)).unwrap()
}

/// [`policy_with`], as a snapshot restores a policy an earlier build accepted: without the
/// checks only new policies get (a `[[typed_data]]` rule naming no verifying contract).
fn restored_with(extra: &str) -> CompiledPolicy {
    CompiledPolicy::compile_restored(doc_with(extra)).unwrap()
}

fn doc_with(extra: &str) -> Policy {
    let (top, extra) = extra.split_once("---\n").unwrap_or(("", extra));
    let text = format!(
        "name = \"redeem\"\nchains = [1]\nvalid_for = \"24h\"\n{top}tokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6 }} }}\n{BASE}\n{extra}"
    );
    file::resolve_text(&text, t0()).unwrap_or_else(|d| panic!("{d}"))
}

fn policy() -> CompiledPolicy {
    policy_with(&format!("[delegations]\nmanagers = [\"{MANAGER}\"]\n"))
}

fn ctx() -> Context {
    Context { now: t0() + 10, anchor: t0(), owner: OWNER, account: SESSION }
}

fn tx(to: Address, data: Vec<u8>, value: U256) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 3,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 300_000,
        to: Some(to),
        value,
        data: data.into(),
        access_list: vec![],
    }))
}

fn decide(p: &CompiledPolicy, c: &Counters, payload: SignPayload) -> Result<Charges, crate::Denial> {
    prepare(&payload)?.evaluate(p, c, &ctx())
}

fn root(delegator: Address) -> Vec<Delegation> {
    vec![Delegation {
        delegate: SESSION,
        delegator,
        authority: B256::repeat_byte(0xff),
        caveats: vec![],
        salt: U256::from(1),
        signature: Bytes::from(vec![0u8; 65]),
    }]
}

fn xfer(to: Address, amount: U256) -> Vec<u8> {
    transferCall { to, amount }.abi_encode()
}

/// A redemption of `delegator`'s single execution `call` on `manager`.
fn redeem_on(manager: Address, delegator: Address, target: Address, data: Vec<u8>) -> SignPayload {
    let r = encode_redemption(&[(root(delegator), MODE_SINGLE, single_execution(target, U256::ZERO, &data))]);
    tx(manager, r, U256::ZERO)
}

fn redeem(delegator: Address, target: Address, data: Vec<u8>) -> SignPayload {
    redeem_on(MANAGER, delegator, target, data)
}

fn denied(r: Result<Charges, crate::Denial>) -> (ErrorCode, String) {
    let d = r.expect_err("expected a denial");
    (d.code, d.rule.unwrap_or_default())
}

#[test]
fn each_execution_is_checked_and_charged_like_an_inner_call() {
    let p = policy();
    let mut c = Counters::default();
    let ch = decide(&p, &c, redeem(D1, USDC, xfer(ALICE, usdc(60)))).unwrap();
    assert_eq!(ch.tokens, vec![(0, usdc(60))], "the delegator's transfer counts against the session's cap");
    assert_eq!(ch.weight, 1);
    assert_eq!(ch.place, Some(Place::Own { chain_id: 1, nonce: 3 }));
    c.charge(&p, &ch, t0(), t0() + 10);
    // The cap is the session's, whoever's tokens move.
    let r = decide(&p, &c, redeem(D2, USDC, xfer(ALICE, usdc(60))));
    assert_eq!(denied(r), (ErrorCode::SpendCap, "limits[0]".into()));
    // Recipients, targets and selectors apply to executions as to any call.
    assert_eq!(denied(decide(&p, &c, redeem(D1, USDC, xfer(BOB, usdc(1))))).0, ErrorCode::RecipientNotAllowed);
    assert_eq!(denied(decide(&p, &c, redeem(D1, BOB, vec![]))).0, ErrorCode::TargetNotAllowed);
    // `$account` is still the session: the delegator may pay the session.
    decide(&p, &c, redeem(D1, USDC, xfer(SESSION, usdc(1)))).unwrap();
}

#[test]
fn approvals_inside_a_redemption_are_held_by_the_root_delegator() {
    let p = policy();
    let c = Counters::default();
    let ch = decide(&p, &c, redeem(D1, USDC, approveCall { spender: ROUTER, amount: usdc(40) }.abi_encode())).unwrap();
    assert_eq!(ch.approvals.len(), 1);
    assert_eq!(ch.approvals[0].key.holder, D1, "the delegator's allowance, not the session's");
    let over = decide(&p, &c, redeem(D1, USDC, approveCall { spender: ROUTER, amount: usdc(51) }.abi_encode()));
    assert_eq!(denied(over).0, ErrorCode::UnlimitedApproval);
    let unlimited = decide(&p, &c, redeem(D1, USDC, approveCall { spender: ROUTER, amount: U256::MAX }.abi_encode()));
    assert_eq!(denied(unlimited).0, ErrorCode::UnlimitedApproval);
}

#[test]
fn batches_and_several_entries_count_every_call() {
    let p = policy();
    let c = Counters::default();
    let batch = batch_execution(&[
        (USDC, U256::ZERO, xfer(ALICE, usdc(10)).into()),
        (USDC, U256::ZERO, xfer(ALICE, usdc(20)).into()),
    ]);
    let r = encode_redemption(&[
        (root(D1), MODE_BATCH, batch),
        (root(D2), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(30)))),
        (root(D1), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(40)))),
    ]);
    let ch = decide(&p, &c, tx(MANAGER, r.clone(), U256::ZERO)).unwrap();
    assert_eq!(ch.weight, 4, "quota and rate limits count each execution");
    assert_eq!(ch.tokens, vec![(0, usdc(100))]);
    // One call over makes the whole redemption over (it is atomic on chain).
    let r = encode_redemption(&[
        (root(D1), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(60)))),
        (root(D2), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(41)))),
    ]);
    assert_eq!(denied(decide(&p, &c, tx(MANAGER, r, U256::ZERO))).0, ErrorCode::SpendCap);
}

#[test]
fn a_redemption_the_policy_cannot_see_into_is_refused() {
    let p = policy();
    let c = Counters::default();
    // On a contract delegations.managers does not list — even where a wildcard target allows
    // any function.
    let wild = policy_with(&format!(
        "max_value_per_call = \"0 ETH\"\n---\n[[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n[delegations]\nmanagers = [\"{MANAGER}\"]\n"
    ));
    for p in [&p, &wild] {
        let r = decide(p, &c, redeem_on(OTHER_MANAGER, D1, USDC, xfer(ALICE, usdc(1))));
        assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "delegations.managers".into()));
    }
    // A policy without [delegations] redeems nothing.
    let none = policy_with("");
    let r = decide(&none, &c, redeem(D1, USDC, xfer(ALICE, usdc(1))));
    assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "delegations.managers".into()));
    // Nested: an execution that calls a manager.
    let inner =
        encode_redemption(&[(root(D2), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(1))))]);
    let r = decide(&p, &c, redeem(D1, MANAGER, inner));
    assert_eq!(denied(r), (ErrorCode::SelectorNotAllowed, "delegations".into()));
    // Inside a user operation.
    let mut op = user_op(encode::simple_execute(MANAGER, U256::ZERO, redeem_data(D1).into()));
    op.sender = SCA;
    let r = decide(&p, &c, SignPayload::UserOperation(op));
    assert_eq!(denied(r), (ErrorCode::SelectorNotAllowed, "delegations".into()));
    // With value (redeemDelegations is not payable).
    let r = decide(&p, &c, tx(MANAGER, redeem_data(D1), U256::from(1)));
    assert_eq!(denied(r).0, ErrorCode::ArgumentRejected);
}

fn redeem_data(delegator: Address) -> Vec<u8> {
    encode_redemption(&[(root(delegator), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(1))))])
}

fn user_op(call_data: Bytes) -> UserOperationRequest {
    UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: SCA,
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

#[test]
fn only_listed_delegators_when_the_policy_lists_them() {
    let p = policy_with(&format!("[delegations]\nmanagers = [\"{MANAGER}\"]\ndelegators = [\"{D1}\"]\n"));
    let c = Counters::default();
    decide(&p, &c, redeem(D1, USDC, xfer(ALICE, usdc(1)))).unwrap();
    let r = decide(&p, &c, redeem(D2, USDC, xfer(ALICE, usdc(1))));
    assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "delegations.delegators".into()));
    // Delegators without a manager is a policy error.
    let text = format!("name = \"x\"\nchains = [1]\nvalid_for = \"24h\"\n[delegations]\ndelegators = [\"{D1}\"]\n");
    let doc = file::resolve_text(&text, t0()).unwrap();
    assert_eq!(CompiledPolicy::compile(doc).unwrap_err().code, ErrorCode::InvalidPolicy);
}

#[test]
fn an_account_calling_itself_is_refused() {
    // Accounts let themselves do anything: a call to itself could upgrade or execute.
    let p = policy_with(&format!(
        "max_value_per_call = \"0 ETH\"\n---\n[[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n[delegations]\nmanagers = [\"{MANAGER}\"]\n"
    ));
    let c = Counters::default();
    let hidden = executeCall { dest: USDC, value: U256::ZERO, func: xfer(BOB, usdc(1000)).into() }.abi_encode();
    let r = decide(&p, &c, redeem(D1, D1, hidden.clone()));
    assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "calls".into()));
    let op = user_op(encode::simple_execute(SCA, U256::ZERO, hidden.clone().into()));
    let r = decide(&p, &c, SignPayload::UserOperation(op));
    assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "calls".into()));
    // ERC-7821 accounts (Solady's, Alchemy's Modular Account v2) run a batch call to the
    // zero address against themselves, in ERC-7579's batch mode (a review of 2026-12-04):
    // any function, not only those a wildcard refuses by name.
    let install = [&[0x12u8, 0x34, 0x56, 0x78][..], &[0u8; 64]].concat();
    for data in [install, hidden.clone()] {
        let op = user_op(encode::erc7579_batch(&[(Address::ZERO, U256::ZERO, data.into())]));
        let r = decide(&p, &c, SignPayload::UserOperation(op));
        assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "calls".into()));
    }
    let r = decide(&p, &c, redeem(D1, Address::ZERO, hidden));
    assert_eq!(denied(r), (ErrorCode::TargetNotAllowed, "calls".into()));
}

#[test]
fn a_delegator_makes_only_metered_calls() {
    // A router call run as the delegator could spend the delegator's standing allowance to
    // the router, which no cap sees: refused, though the policy allows the router.
    let p = policy();
    let c = Counters::default();
    let swap = swapCall { tokenIn: USDC, amountIn: usdc(1_000_000) }.abi_encode();
    let r = decide(&p, &c, redeem(D1, ROUTER, swap));
    assert_eq!(denied(r), (ErrorCode::SelectorNotAllowed, "delegations".into()));
    // The same call from the session itself is the policy's to allow.
    let swap = swapCall { tokenIn: USDC, amountIn: usdc(10) }.abi_encode();
    decide(&p, &c, tx(ROUTER, swap, U256::ZERO)).unwrap();
}

#[test]
fn a_redemptions_approvals_count_as_added_and_its_revocations_as_nothing() {
    // It may be mined and revert (another entry's bad signature, a failing caveat): what it
    // sets may not happen.
    let p = policy();
    let c = Counters::default();
    let ch = decide(&p, &c, redeem(D1, USDC, approveCall { spender: ROUTER, amount: usdc(40) }.abi_encode())).unwrap();
    assert_eq!(ch.approvals[0].op, crate::allowance::GrantOp::Add(usdc(40)));
    let ch =
        decide(&p, &c, redeem(D1, USDC, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode())).unwrap();
    assert_eq!(ch.approvals[0].op, crate::allowance::GrantOp::Add(U256::ZERO));
    // The session's own approve still sets.
    let ch =
        decide(&p, &c, tx(USDC, approveCall { spender: ROUTER, amount: usdc(40) }.abi_encode(), U256::ZERO)).unwrap();
    assert_eq!(ch.approvals[0].op, crate::allowance::GrantOp::Set(usdc(40)));
    // Permit2's approve is metered too (RULES.md §5b), and counts as added alike.
    sol! { interface IPermit2 { function approve(address token, address spender, uint160 amount, uint48 expiration); } }
    let permit2 = crate::typed::PERMIT2;
    let p = policy_with(&format!(
        "[[calls]]\ntarget = \"{permit2}\"\nfunctions = [\"approve(address,address,uint160,uint48)\"]\n[[permits]]\nkind = \"permit2\"\ntokens = [\"USDC\"]\nmax_deadline = \"1h\"\n[delegations]\nmanagers = [\"{MANAGER}\"]\n"
    ));
    for amount in [usdc(40), U256::ZERO] {
        let call = IPermit2::approveCall {
            token: USDC,
            spender: ROUTER,
            amount: alloy_primitives::Uint::from(amount.to::<u64>()),
            expiration: alloy_primitives::Uint::from(0u8),
        };
        let ch = decide(&p, &c, redeem(D1, permit2, call.abi_encode())).unwrap();
        assert_eq!(ch.approvals[0].op, crate::allowance::GrantOp::Add(amount));
        assert_eq!(ch.approvals[0].key.holder, D1);
    }
}

/// Typed data of one struct `primary` (its `fields`) in the domain {name, version 1, chain 1,
/// `vc`}.
fn typed(
    name: &str,
    vc: Address,
    primary: &str,
    fields: &serde_json::Value,
    message: &serde_json::Value,
) -> SignPayload {
    SignPayload::TypedData(
        serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                primary: fields},
            "primaryType": primary,
            "domain": {"name": name, "version": "1", "chainId": 1, "verifyingContract": vc},
            "message": message
        })
        .to_string(),
    )
}

/// A user operation's hash (EntryPoint v0.8 makes it EIP-712 typed data) is never signed as
/// typed data, whatever a typed_data rule names: it would skip every user_operations check.
#[test]
fn the_session_never_signs_a_user_operation_as_typed_data() {
    let v08 = crate::userop::ENTRY_POINT_V08;
    let p = restored_with(&format!(
        "[[typed_data]]\nverifying_contract = \"{OTHER_MANAGER}\"\nprimary_type = \"SafeOp\"\n[[typed_data]]\nname = \"ERC4337\"\nprimary_type = \"PackedUserOperation\"\n[[typed_data]]\nverifying_contract = \"{v08}\"\nprimary_type = \"Other\"\n[[typed_data]]\nname = \"Mine\"\nprimary_type = \"PackedUserOperation\"\n[[typed_data]]\nname = \"Mine\"\nverifying_contract = \"{OTHER_MANAGER}\"\nprimary_type = \"Other\"\n"
    ));
    let c = Counters::default();
    let fields = serde_json::json!([{"name": "sender", "type": "address"}, {"name": "nonce", "type": "uint256"}]);
    let message = serde_json::json!({"sender": SESSION, "nonce": "1"});
    let td = |name: &str, vc: Address, primary: &str| typed(name, vc, primary, &fields, &message);
    for payload in [
        td("ERC4337", v08, "PackedUserOperation"),
        td("Other", v08, "Other"),
        td("Mine", OTHER_MANAGER, "PackedUserOperation"),
        td("ERC4337", OTHER_MANAGER, "Other"),
        td("", OTHER_MANAGER, "SafeOp"),
    ] {
        let (code, rule) = denied(decide(&p, &c, payload.clone()));
        assert_eq!(code, ErrorCode::TypedDataNotAllowed, "{payload:?}");
        assert_eq!(rule, "user_operations", "{payload:?}");
    }
    // Typed data of another kind in a domain a rule names still passes.
    assert!(decide(&p, &c, td("Mine", OTHER_MANAGER, "Other")).is_ok());
}

#[test]
fn the_session_never_signs_a_delegation() {
    // Even where a typed_data rule names it: a delegation from the session would hand what
    // it may do (and the delegations it holds) to a delegate no policy binds.
    let p = restored_with(&format!(
        "[delegations]\nmanagers = [\"{MANAGER}\"]\n[[typed_data]]\nname = \"DelegationManager\"\nprimary_type = \"Delegation\"\n[[typed_data]]\nverifying_contract = \"{MANAGER}\"\nprimary_type = \"Other\"\n"
    ));
    let c = Counters::default();
    let fields = serde_json::json!([{"name": "delegate", "type": "address"}, {"name": "delegator", "type": "address"},
        {"name": "authority", "type": "bytes32"}, {"name": "salt", "type": "uint256"}]);
    let message =
        serde_json::json!({"delegate": ALICE, "delegator": SESSION, "authority": B256::repeat_byte(0xff), "salt": "1"});
    let td = |name: &str, vc: Address, primary: &str| typed(name, vc, primary, &fields, &message);
    for payload in [
        td("DelegationManager", OTHER_MANAGER, "Delegation"),
        td("Anything", OTHER_MANAGER, "Delegation"),
        td("Other", MANAGER, "Other"),
    ] {
        assert_eq!(denied(decide(&p, &c, payload)).0, ErrorCode::TypedDataNotAllowed);
    }
}
