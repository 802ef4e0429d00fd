//! AG-212 delegated-spend governance, end to end with the real binaries (enclave and host
//! over the real socket and HTTP): the tests of AG-212 §8, named after it.
//!
//! 8.1 unlimited approval prevention · 8.2 approval expiry · 8.3 aggregate exposure limit ·
//! 8.4 session key scope enforcement · 8.5 session key duration enforcement ·
//! 8.6 emergency revocation · 8.7 spender whitelist enforcement.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::protocol::*;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use bridle_tests::*;
use serde_json::{json, Value};

sol! {
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function swap(address tokenIn, uint256 amountIn, uint256 minOut);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
}

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const WETH: Address = address!("e7f1725E7734CE288F8367e1Bb143E90bb3F0512");
const DAI: Address = address!("9fE46736679d2D9a65F0992F3272dE9f3c7fa6e0");
const USDC_L1: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");
const EVIL: Address = address!("000000000000000000000000000000000000dEaD");
const SCA: Address = address!("0000000000000000000000000000000000005ca0");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn weth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn usd(n: u64) -> U256 {
    U256::from(n) * bridle_common::allowance::usd_unit()
}

/// A policy for the governance tests: USDC, WETH and DAI on the local chain, USDC on
/// chain 1; approvals to ROUTER and POOL; user operations; EIP-2612 and Permit2 permits.
fn governed(top: &str, approvals: &str) -> String {
    format!(
        r#"
name = "ag-212"
chains = [{CHAIN}, 1]
valid_for = "24h"
max_value_per_call = "0.1 ETH"
{top}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6, chain_id = {CHAIN} }}
WETH = {{ address = "{WETH}", decimals = 18, chain_id = {CHAIN} }}
DAI = {{ address = "{DAI}", decimals = 18, chain_id = {CHAIN} }}
USDC1 = {{ address = "{USDC_L1}", decimals = 6, chain_id = 1 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)", "increaseAllowance(address,uint256)"]
[[calls]]
target = "USDC1"
functions = ["approve(address,uint256)"]
[[calls]]
target = "WETH"
functions = ["approve(address,uint256)"]
[[calls]]
target = "DAI"
functions = ["approve(address,uint256)"]
[[calls]]
target = "{ROUTER}"
functions = ["swap(address,uint256,uint256)"]
[[limits]]
max = "200000 USDC"
per = "session"
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["50000 USDC", "50000 USDC1", "20 WETH", "1000 DAI"]
{approvals}
[user_operations]
entry_points = ["v0.7"]
[gas]
max_fee_per_gas = "5 gwei"
max_gas_limit = 500000
[[permits]]
kind = "eip2612"
max_deadline = "1h"
[[permits]]
kind = "permit2"
tokens = ["USDC"]
max_deadline = "1h"
"#
    )
}

fn tx(chain_id: u64, nonce: u64, to: Address, value: U256, data: Vec<u8>) -> TxRequest {
    TxRequest::Eip1559(Eip1559Request {
        chain_id,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(to),
        value,
        data: data.into(),
        access_list: vec![],
    })
}

fn user_op(calls: &[(Address, U256, Bytes)]) -> SignPayload {
    SignPayload::UserOperation(UserOperationRequest {
        chain_id: CHAIN,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: SCA,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute_batch(calls),
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    })
}

fn approve_data(spender: Address, amount: U256) -> Bytes {
    let t = erc20_approve(CHAIN, 0, USDC, spender, amount);
    match t {
        TxRequest::Eip1559(r) => r.data,
        _ => unreachable!(),
    }
}

fn swap_data(amount_in: U256) -> Bytes {
    swapCall { tokenIn: USDC, amountIn: amount_in, minOut: U256::from(1) }.abi_encode().into()
}

fn permit(session: Address, spender: Address, value: U256, deadline: u64) -> SignPayload {
    SignPayload::TypedData(
        json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}]},
            "primaryType": "Permit",
            "domain": {"name": "Test USD Coin", "version": "1", "chainId": CHAIN, "verifyingContract": USDC},
            "message": {"owner": session, "spender": spender, "value": value.to_string(), "nonce": 0, "deadline": deadline}
        })
        .to_string(),
    )
}

fn permit2_single(spender: Address, amount: U256, expiration: u64, deadline: u64) -> SignPayload {
    SignPayload::TypedData(
        json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}],
                "PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
                    {"name": "sigDeadline", "type": "uint256"}],
                "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                    {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]},
            "primaryType": "PermitSingle",
            "domain": {"name": "Permit2", "chainId": CHAIN, "verifyingContract": bridle_common::typed::PERMIT2},
            "message": {"details": {"token": USDC, "amount": amount.to_string(), "expiration": expiration, "nonce": 0},
                "spender": spender, "sigDeadline": deadline}
        })
        .to_string(),
    )
}

async fn grant(s: &Stack, text: &str) -> Granted {
    s.grant(&Actor::random(), &Actor::random(), &policy(text)).await.unwrap_or_else(|(c, v)| panic!("grant: {c} {v}"))
}

fn denied(r: &(u16, Value), want: &str) {
    assert_eq!(r.0, 403, "{}", r.1);
    assert_eq!(code(&r.1), want, "{}", r.1);
}

fn ok(r: &(u16, Value)) {
    assert_eq!(r.0, 200, "{}", r.1);
}

#[tokio::test]
async fn t8_1_unlimited_approval_prevention() {
    let s = Stack::start();
    let unvouched = governed(
        "",
        r#"jit_tolerance = "1%"
jit = [{ signature = "swap(address tokenIn,uint256 amountIn,uint256 minOut)", amount_arg = "amountIn", token_arg = "tokenIn" }]"#,
    );
    // The swaps below run as the smart account: the owner vouches that it holds nothing
    // Bridle did not meter (RULES.md §5); without that, no swap runs as it (below).
    let v07 = "entry_points = [\"v0.7\"]";
    let text = unvouched.replace(v07, &format!("{v07}\nunmetered_calls = true"));
    let g = grant(&s, &text).await;
    // type(uint256).max, as approve, increaseAllowance, a permit, Permit2 and in a batch.
    denied(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, U256::MAX)).await, "unlimited_approval");
    let inc = |n: u64, added: U256| {
        tx(CHAIN, n, USDC, U256::ZERO, increaseAllowanceCall { spender: ROUTER, added }.abi_encode())
    };
    denied(&s.sign(&g, inc(0, U256::MAX)).await, "unlimited_approval");
    denied(&s.sign_payload(&g, permit(g.session, ROUTER, U256::MAX, now() + 600)).await, "unlimited_approval");
    let u160_max = (U256::from(1) << 160) - U256::from(1);
    denied(&s.sign_payload(&g, permit2_single(ROUTER, u160_max, now() + 600, now() + 600)).await, "unlimited_approval");
    denied(
        &s.sign_payload(&g, user_op(&[(USDC, U256::ZERO, approve_data(ROUTER, U256::MAX))])).await,
        "unlimited_approval",
    );
    // Any amount above the per-spender cap is unlimited too.
    let r = s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(50_001))).await;
    denied(&r, "unlimited_approval");
    assert_eq!(r.1["error"]["rule"], "approvals.caps[0]");
    // Bounded approvals are signed and recorded; increaseAllowance is capped in total.
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(40_000))).await);
    let r = s.sign(&g, inc(1, usdc(20_000))).await;
    denied(&r, "unlimited_approval");
    assert!(r.1["error"]["reason"].as_str().unwrap().contains("60000 USDC"), "{}", r.1);
    ok(&s.sign(&g, inc(1, usdc(10_000))).await);
    let a = s.allowances(&g).await;
    let e = allowance_of(&a, USDC, ROUTER).expect("recorded");
    assert_eq!(u256_of(&e["amount"]), usdc(50_000));
    assert_eq!(e["via"], "increaseAllowance");
    // Just in time: the approval is bounded by the swap that consumes it plus 1%.
    let batch = |approve: u64, swap: u64, trailing: bool| {
        let mut calls =
            vec![(USDC, U256::ZERO, approve_data(ROUTER, usdc(approve))), (ROUTER, U256::ZERO, swap_data(usdc(swap)))];
        if trailing {
            calls.push((USDC, U256::ZERO, approve_data(ROUTER, U256::ZERO)));
        }
        user_op(&calls)
    };
    let r = s.sign_payload(&g, batch(1_011, 1_000, true)).await;
    denied(&r, "unlimited_approval");
    assert_eq!(r.1["error"]["rule"], "approvals.jit[0]");
    ok(&s.sign_payload(&g, batch(1_010, 1_000, true)).await);
    // Not vouched for, the account runs no swap, just in time or not: the router could pull
    // the account's standing funds (a review of 2026-12-05).
    let strict = grant(&s, &unvouched).await;
    let r = s.sign_payload(&strict, batch(1_010, 1_000, true)).await;
    denied(&r, "selector_not_allowed");
    assert_eq!(r.1["error"]["rule"], "user_operations.unmetered_calls");
    // The trailing approve(spender, 0) left nothing outstanding for the smart account.
    let a = s.allowances(&g).await;
    let held: Vec<&Value> = a["allowances"].as_array().unwrap().iter().filter(|e| e["holder"] == json!(SCA)).collect();
    assert_eq!(held.len(), 1, "{a}");
    assert_eq!((held[0]["state"].as_str(), u256_of(&held[0]["amount"])), (Some("revoked"), U256::ZERO));
}

#[tokio::test]
async fn t8_2_approval_expiry() {
    let s = Stack::start();
    let text = governed("prices = { USDC = \"1.00\" }\nmax_duration = \"9 days\"", "")
        .replace("valid_for = \"24h\"", "valid_for = \"9 days\"");
    let g = grant(&s, &text).await;
    let t = now();
    // 5 000 USD: at most 10 000 USD, so current for 7 days; 20 000 USD: 24 hours.
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(5_000))).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 1, USDC, POOL, usdc(20_000))).await);
    let a = s.allowances(&g).await;
    let (small, large) = (allowance_of(&a, USDC, ROUTER).unwrap(), allowance_of(&a, USDC, POOL).unwrap());
    let lifetime = |e: &Value| e["expires_at"].as_u64().unwrap() - e["granted_at"].as_u64().unwrap();
    assert_eq!((lifetime(small), lifetime(large)), (7 * 86_400, 86_400));
    assert!(small["granted_at"].as_u64().unwrap() >= t);
    assert_eq!((small["state"].as_str(), large["state"].as_str()), (Some("active"), Some("active")));
    assert_eq!(u256_of(&a["exposure"]["usd"]), usd(25_000));

    // Nothing is expired yet: a sweep (anyone may ask) signs nothing.
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 2)], false).await;
    ok(&r);
    assert_eq!(r.1["transactions"].as_array().unwrap().len(), 0, "{}", r.1);

    // A day later the large approval is expired — still counted: live on chain until swept.
    s.enclave.set_clock_offset(86_400 + 1);
    let a = s.allowances(&g).await;
    assert_eq!(allowance_of(&a, USDC, POOL).unwrap()["state"], "expired");
    assert_eq!(allowance_of(&a, USDC, ROUTER).unwrap()["state"], "active");
    assert_eq!(u256_of(&a["exposure"]["usd"]), usd(25_000));
    // Fees above the policy's gas cap are refused for a sweep the owner did not sign.
    let mut costly = sweep_terms(CHAIN, 2);
    costly.max_fee_per_gas = 6_000_000_000;
    let r = s.sweep(&g, vec![costly], false).await;
    assert_eq!((r.0, code(&r.1)), (403, "gas_cap"), "{}", r.1);
    // The sweep signs approve(POOL, 0) from the session's address with the host's nonce.
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 2)], false).await;
    ok(&r);
    let txs = r.1["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{}", r.1);
    let raw: Bytes = serde_json::from_value(txs[0]["raw_transaction"].clone()).unwrap();
    assert_eq!(recover_raw(&raw), g.session);
    assert_eq!(recover_raw_eth_account(&raw), g.session);
    assert_eq!((txs[0]["nonce"].as_u64(), txs[0]["spender"].clone()), (Some(2), json!(POOL)));
    assert!(raw.to_string().contains(&hex::encode(approve_data(POOL, U256::ZERO))), "calldata is approve(POOL, 0)");
    let a = s.allowances(&g).await;
    assert_eq!(allowance_of(&a, USDC, POOL).unwrap()["state"], "swept");
    // A sweep is a revocation like any other (CONFORMANCE.md 4.6): it counts for every
    // request signed after it, but until it is mined the 20 000 may still be spent, so the
    // exposure now still counts them.
    assert_eq!(u256_of(&a["exposure"]["usd"]), usd(25_000));
    // Swept once: a second sweep has nothing left to do.
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 3)], false).await;
    assert_eq!(r.1["transactions"].as_array().unwrap().len(), 0, "{}", r.1);
    // The host keeps the signed revocations for broadcasting again.
    let (c, kept) = s.get(&format!("/v1/sessions/{}/sweeps", g.session)).await;
    assert_eq!((c, kept.as_array().unwrap().len()), (200, 1), "{kept}");

    // After seven days the small one expires too.
    s.enclave.set_clock_offset(7 * 86_400 + 1);
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 3)], false).await;
    ok(&r);
    assert_eq!(r.1["transactions"][0]["spender"], json!(ROUTER), "{}", r.1);
    let a = s.allowances(&g).await;
    assert_eq!(allowance_of(&a, USDC, ROUTER).unwrap()["state"], "swept");
    // Both revocations are signed, neither is known to be mined: at worst both allowances
    // are still there now. Whatever the session signs after them counts them revoked.
    assert_eq!(u256_of(&a["exposure"]["usd"]), usd(25_000));
}

#[tokio::test]
async fn t8_3_aggregate_exposure_limit() {
    let s = Stack::start();
    let top = "prices = { USDC = \"1.00\", USDC1 = \"1.00\", WETH = \"3000\" }\nexposure_ceiling = \"50000 USD\"";
    let g = grant(&s, &governed(top, "")).await;
    // Across tokens, spenders and chains: 20 000 + 15 000 + 10 000 = 45 000 USD.
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(20_000))).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 1, WETH, POOL, weth(5))).await);
    ok(&s.sign(&g, erc20_approve(1, 0, USDC_L1, ROUTER, usdc(10_000))).await);
    assert_eq!(u256_of(&s.allowances(&g).await["exposure"]["usd"]), usd(45_000));
    // 5 001 more would pass 50 000: denied, naming the ceiling; nothing recorded.
    let r = s.sign(&g, erc20_approve(CHAIN, 2, USDC, POOL, usdc(5_001))).await;
    denied(&r, "exposure_ceiling");
    assert_eq!(r.1["error"]["rule"], "exposure_ceiling");
    assert!(r.1["error"]["reason"].as_str().unwrap().contains("50001 USD"), "{}", r.1);
    assert!(allowance_of(&s.allowances(&g).await, USDC, POOL).is_none());
    // A permit or a user operation's approval counts the same way.
    denied(&s.sign_payload(&g, permit(g.session, POOL, usdc(5_001), now() + 600)).await, "exposure_ceiling");
    denied(
        &s.sign_payload(&g, user_op(&[(USDC, U256::ZERO, approve_data(POOL, usdc(5_001)))])).await,
        "exposure_ceiling",
    );
    // Exactly up to the ceiling is allowed.
    ok(&s.sign(&g, erc20_approve(CHAIN, 2, USDC, POOL, usdc(5_000))).await);
    let a = s.allowances(&g).await;
    assert_eq!((u256_of(&a["exposure"]["usd"]), u256_of(&a["exposure"]["ceiling"])), (usd(50_000), usd(50_000)));
    // An unpriced token cannot be valued: its approvals are denied.
    let r = s.sign(&g, erc20_approve(CHAIN, 3, DAI, POOL, weth(1))).await;
    denied(&r, "exposure_ceiling");
    assert_eq!(r.1["error"]["rule"], "prices");
    // Revoking one frees room for what is signed after it (which can only be mined after
    // the revocation) ...
    ok(&s.sign(&g, erc20_approve(CHAIN, 3, WETH, POOL, U256::ZERO)).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 4, USDC, POOL, usdc(20_000))).await);
    // ... but not for a replacement of the revocation at its own nonce (review finding 4).
    denied(&s.sign(&g, erc20_approve(CHAIN, 3, USDC, POOL, usdc(20_000))).await, "exposure_ceiling");
    // The registry shows each allowance at its worst: the WETH approval may still be live if
    // its revocation (nonce 3) is never mined, so it counts, marked as settled once mined.
    let a = s.allowances(&g).await;
    assert_eq!(u256_of(&a["exposure"]["usd"]), usd(20_000 + 15_000 + 10_000 + 20_000));
    let weth_pool = allowance_of(&a, WETH, POOL).unwrap();
    assert_eq!((weth_pool["state"].as_str(), weth_pool["settled_at_nonce"].as_u64()), (Some("revoked"), Some(3)));
}

#[tokio::test]
async fn t8_4_session_key_scope_enforcement() {
    let s = Stack::start();
    let g = grant(&s, &governed("", "")).await;
    // Specific contracts only.
    denied(&s.sign(&g, erc20_transfer(CHAIN, 0, EVIL, EVIL, usdc(1))).await, "target_not_allowed");
    // Specific functions only: transferFrom is not listed on USDC; mint is not either.
    let from = tx(CHAIN, 0, USDC, U256::ZERO, transferFromCall { from: EVIL, to: EVIL, amount: usdc(1) }.abi_encode());
    denied(&s.sign(&g, from).await, "selector_not_allowed");
    // Maximum value per call.
    let r = s
        .sign(
            &g,
            tx(CHAIN, 0, ROUTER, U256::from(10u64).pow(U256::from(17)) + U256::from(1), swap_data(usdc(1)).to_vec()),
        )
        .await;
    denied(&r, "value_cap");
    // Allowed chains only.
    denied(&s.sign(&g, erc20_transfer(5, 0, USDC, EVIL, usdc(1))).await, "chain_not_allowed");
    // The same scope binds each inner call of a user operation.
    denied(
        &s.sign_payload(
            &g,
            user_op(&[(USDC, U256::ZERO, approve_data(ROUTER, usdc(1))), (EVIL, U256::ZERO, Bytes::new())]),
        )
        .await,
        "target_not_allowed",
    );
    // Maximum aggregate value per session: 200 000 USDC.
    ok(&s.sign(&g, erc20_transfer(CHAIN, 0, USDC, EVIL, usdc(150_000))).await);
    let r = s.sign(&g, erc20_transfer(CHAIN, 1, USDC, EVIL, usdc(50_001))).await;
    denied(&r, "spend_cap");
    assert_eq!(r.1["error"]["rule"], "limits[0]");
    ok(&s.sign(&g, erc20_transfer(CHAIN, 1, USDC, EVIL, usdc(50_000))).await);
}

#[tokio::test]
async fn t8_5_session_key_duration_enforcement() {
    let s = Stack::start();
    // Longer than 24 hours without the owner's explicit, signed maximum: refused.
    let long = governed("", "").replace("valid_for = \"24h\"", "valid_for = \"25h\"");
    let r = s.grant(&Actor::random(), &Actor::random(), &policy(&long)).await.err().expect("refused");
    assert_eq!((r.0, code(&r.1)), (400, "invalid_policy"), "{}", r.1);
    // A session that never ends is refused too.
    let forever = governed("", "").replace("valid_for = \"24h\"\n", "");
    let r = s.grant(&Actor::random(), &Actor::random(), &policy(&forever)).await.err().expect("refused");
    assert_eq!(code(&r.1), "invalid_policy", "{}", r.1);
    // Not before valid_after.
    let later = governed(&format!("valid_after = {}", now() + 3_600), "")
        .replace("valid_for = \"24h\"", &format!("valid_until = {}", now() + 7_200));
    let g = grant(&s, &later).await;
    denied(&s.sign(&g, erc20_transfer(CHAIN, 0, USDC, EVIL, usdc(1))).await, "not_yet_valid");

    // A 24-hour session signs for 24 hours and then never again.
    let g = grant(&s, &governed("", "")).await;
    ok(&s.sign(&g, erc20_transfer(CHAIN, 0, USDC, EVIL, usdc(1))).await);
    s.enclave.set_clock_offset(86_400 + 1);
    let at = now() + 86_400 + 1;
    let r = s.sign_payload_at(&g, SignPayload::Transaction(erc20_transfer(CHAIN, 1, USDC, EVIL, usdc(1))), at).await;
    denied(&r, "expired");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["state"], "expired", "{st}");
}

#[tokio::test]
async fn t8_6_emergency_revocation() {
    let s = Stack::start();
    let owner = Actor::random();
    let text = governed("trip_wire = { denials = 3, within = \"1m\" }", "");
    let g1 = s.grant(&owner, &Actor::random(), &policy(&text)).await.unwrap();
    let g2 = s.grant(&owner, &Actor::random(), &policy(&governed("", ""))).await.unwrap();
    ok(&s.sign(&g1, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(1_000))).await);
    ok(&s.sign(&g1, erc20_approve(CHAIN, 1, WETH, POOL, weth(1))).await);
    ok(&s.sign(&g2, erc20_approve(CHAIN, 0, USDC, POOL, usdc(2_000))).await);

    // The trip-wire: three denials within a minute suspend the session by itself.
    for n in 0..3 {
        denied(&s.sign(&g1, erc20_transfer(CHAIN, 2 + n, EVIL, EVIL, usdc(1))).await, "target_not_allowed");
    }
    let r = s.sign(&g1, erc20_transfer(CHAIN, 5, USDC, EVIL, usdc(1))).await;
    denied(&r, "suspended");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g1.session)).await;
    assert_eq!(st["session"]["state"], "suspended", "{st}");
    let why = st["session"]["suspended_reason"].as_str().unwrap();
    assert!(why.contains("trip-wire: 3 denials within 1 minute") && why.contains("target_not_allowed"), "{why}");
    // A suspended session's outstanding approvals can all be swept (not only expired ones).
    let r = s.sweep(&g1, vec![sweep_terms(CHAIN, 2)], false).await;
    ok(&r);
    assert_eq!(r.1["transactions"].as_array().unwrap().len(), 2, "{}", r.1);
    // Only the owner lifts it: a signed policy update.
    ok(&s.update_policy(&g1, &policy(&text)).await);
    ok(&s.sign(&g1, erc20_transfer(CHAIN, 5, USDC, EVIL, usdc(1))).await);

    // revoke_all kills every session of the owner at once.
    let st = s.status().await;
    let msg = owner_action(
        bridle_common::owner::action::REVOKE_ALL,
        st.identity_address,
        Address::ZERO,
        Address::ZERO,
        B256::ZERO,
    );
    let (c, v) =
        s.post(&format!("/v1/owners/{}/revoke-all", owner.address), &RevokeAll { auth: owner.sign_owner(&msg) }).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["sessions"].as_array().unwrap().len(), 2, "{v}");
    denied(&s.sign(&g1, erc20_transfer(CHAIN, 6, USDC, EVIL, usdc(1))).await, "revoked");
    denied(&s.sign(&g2, erc20_transfer(CHAIN, 1, USDC, EVIL, usdc(1))).await, "revoked");
    // g2 still has an outstanding approval: its key is kept only to sign the revocation.
    let r = s.sweep(&g2, vec![sweep_terms(CHAIN, 1)], false).await;
    ok(&r);
    assert_eq!(r.1["transactions"].as_array().unwrap().len(), 1, "{}", r.1);
    assert_eq!(r.1["key_destroyed"], false);
    // The owner's signed sweep (re)signs it with the owner's terms. The key stays: the
    // enclave cannot see the sweep mined, and whoever holds a revocation may keep it to
    // itself, so the owner can always sweep again (reviews of 2026-12-05).
    let r = s.sweep(&g2, vec![sweep_terms(CHAIN, 1)], true).await;
    ok(&r);
    assert_eq!((r.1["transactions"].as_array().unwrap().len(), r.1["key_destroyed"].clone()), (1, json!(false)));
    let r = s.sweep(&g2, vec![sweep_terms(CHAIN, 2)], true).await;
    ok(&r);
    assert_eq!(r.1["transactions"].as_array().unwrap().len(), 1, "{}", r.1);
    // g1's approvals were swept while suspended, by a sweep anyone may ask for — whose
    // revocations whoever asked may keep to itself: its key is kept at revocation too.
    let r = s.sweep(&g1, vec![sweep_terms(CHAIN, 2)], true).await;
    ok(&r);
    assert_eq!((r.1["transactions"].as_array().unwrap().len(), r.1["key_destroyed"].clone()), (2, json!(false)));
    // A revoked session signs nothing but revocations.
    denied(&s.sign(&g1, erc20_transfer(CHAIN, 7, USDC, EVIL, usdc(1))).await, "revoked");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g2.session)).await;
    assert_eq!(st["session"]["state"], "revoked");
    assert_eq!(u256_of(&st["session"]["exposure"]["usd"]), U256::ZERO);
}

#[tokio::test]
async fn t8_7_spender_whitelist_enforcement() {
    let s = Stack::start();
    let g = grant(&s, &governed("", "")).await;
    for r in [
        s.sign(&g, erc20_approve(CHAIN, 0, USDC, EVIL, usdc(1))).await,
        s.sign(
            &g,
            tx(CHAIN, 0, USDC, U256::ZERO, increaseAllowanceCall { spender: EVIL, added: usdc(1) }.abi_encode()),
        )
        .await,
        s.sign_payload(&g, permit(g.session, EVIL, usdc(1), now() + 600)).await,
        s.sign_payload(&g, permit2_single(EVIL, usdc(1), now() + 600, now() + 600)).await,
        s.sign_payload(&g, user_op(&[(USDC, U256::ZERO, approve_data(EVIL, usdc(1)))])).await,
    ] {
        denied(&r, "spender_not_allowed");
        assert_eq!(r.1["error"]["rule"], "approvals.spenders");
    }
    assert!(s.allowances(&g).await["allowances"].as_array().unwrap().is_empty());
    // Listed spenders are allowed, and revoking any spender always is.
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(1))).await);
    ok(&s.sign_payload(&g, permit2_single(POOL, usdc(1), now() + 600, now() + 600)).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 1, USDC, EVIL, U256::ZERO)).await);
    let a = s.allowances(&g).await;
    let p2 = allowance_of(&a, USDC, POOL).expect("Permit2 allowance recorded");
    assert_eq!(p2["kind"], json!({"permit2": {"contract": bridle_common::typed::PERMIT2}}));
}

#[tokio::test]
async fn trip_wire_counts_only_denials_within_its_window_and_records_why() {
    let s = Stack::start();
    let text = governed("trip_wire = { denials = 3, within = \"1m\" }", "");
    let g = grant(&s, &text).await;
    let bad = |n: u64| SignPayload::Transaction(erc20_transfer(CHAIN, n, EVIL, EVIL, usdc(1)));
    let t = now();
    denied(&s.sign_payload_at(&g, bad(0), t).await, "target_not_allowed");
    denied(&s.sign_payload_at(&g, bad(1), t).await, "target_not_allowed");
    // A minute later those two no longer count: two more denials do not trip it.
    s.enclave.set_clock_offset(61);
    denied(&s.sign_payload_at(&g, bad(2), t + 61).await, "target_not_allowed");
    // Replays and unauthenticated requests are not the agent's denials: they never count.
    let payload = bad(3);
    let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, &payload, t + 61);
    let req = SignRequest { session: g.session, payload, stamp };
    denied(&s.post("/v1/sign", &req).await, "target_not_allowed");
    let (c, v) = s.post("/v1/sign", &req).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "{v}");
    let stranger = Granted { agent: Actor::random(), ..grant_clone(&g) };
    let (c, v) = s.sign_payload_at(&stranger, bad(4), t + 61).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    // An allowed request neither counts nor resets the count.
    ok(&s.sign_payload_at(&g, SignPayload::Transaction(erc20_transfer(CHAIN, 4, USDC, EVIL, usdc(1))), t + 61).await);
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["state"], "active", "{st}");
    // The third within the window trips it.
    denied(&s.sign_payload_at(&g, bad(5), t + 62).await, "target_not_allowed");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["state"], "suspended", "{st}");
    assert!(st["session"]["suspended_reason"].as_str().unwrap().starts_with("trip-wire: 3 denials within 1 minute"));
    let r =
        s.sign_payload_at(&g, SignPayload::Transaction(erc20_transfer(CHAIN, 5, USDC, EVIL, usdc(1))), t + 62).await;
    denied(&r, "suspended");
    assert!(r.1["error"]["reason"].as_str().unwrap().contains("trip-wire"), "{}", r.1);
}

fn grant_clone(g: &Granted) -> Granted {
    Granted {
        owner: g.owner.clone(),
        agent: g.agent.clone(),
        session: g.session,
        enclave_pk: g.enclave_pk.clone(),
        created_at: g.created_at,
    }
}
