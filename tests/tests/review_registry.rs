//! Regression tests for the adversarial review (issue 9), against the real binaries: the
//! allowance registry believed revocations that were signed but can never be mined (finding
//! 4), sweeps were unbounded (finding 8), and smaller holes in SIWE, user operations and
//! try mode (finding 8).

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::protocol::*;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use bridle_tests::*;
use serde_json::json;

sol! {
    function increaseAllowance(address spender, uint256 added) returns (bool);
}

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");
const SCA: Address = address!("0000000000000000000000000000000000005ca0");
const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn governed(extra: &str) -> String {
    format!(
        r#"
name = "registry"
chains = [{CHAIN}]
valid_for = "1h"
quota = 1000
prices = {{ USDC = "1.00" }}
exposure_ceiling = "1000 USD"
{extra}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)", "increaseAllowance(address,uint256)", "transfer(address,uint256)"]
[[limits]]
max = "100000 USDC"
per = "day"
[gas]
max_fee_per_gas = "10 gwei"
[[gas.limits]]
max = "0.01 ETH"
per = "day"
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["1000 USDC"]
[[permits]]
kind = "permit2"
max_deadline = "1h"
[user_operations]
entry_points = ["v0.7"]
"#
    )
}

fn denied(r: &(u16, serde_json::Value), want: &str) {
    assert_eq!((r.0, code(&r.1)), (403, want), "{}", r.1);
}

fn ok(r: &(u16, serde_json::Value)) {
    assert_eq!(r.0, 200, "{}", r.1);
}

#[tokio::test]
async fn a_revocation_that_can_never_be_mined_frees_nothing() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&governed(""))).await.expect("grant");
    // approve(A, 1000) at nonce 0, then approve(A, 0) *also at nonce 0*: only one of them
    // can ever be mined. Before the fix the registry believed the revocation.
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(1000))).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, U256::ZERO)).await);
    // approve(B, 1000) at nonce 1: 2 000 USD could be outstanding.
    denied(&s.sign(&g, erc20_approve(CHAIN, 1, USDC, POOL, usdc(1000))).await, "exposure_ceiling");
    // The same trick before increaseAllowance: its base is the approval, not the revocation.
    let inc = increaseAllowanceCall { spender: ROUTER, added: usdc(1000) }.abi_encode();
    let inc_tx = TxRequest::Eip1559(Eip1559Request {
        chain_id: CHAIN,
        nonce: 1,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: inc.into(),
        access_list: vec![],
    });
    denied(&s.sign(&g, inc_tx).await, "unlimited_approval");
    // A revocation at its own nonce counts for everything signed after it.
    ok(&s.sign(&g, erc20_approve(CHAIN, 1, USDC, ROUTER, U256::ZERO)).await);
    ok(&s.sign(&g, erc20_approve(CHAIN, 2, USDC, POOL, usdc(1000))).await);
}

#[tokio::test]
async fn unauthenticated_sweeps_cannot_clear_or_preempt() {
    let s = Stack::start();
    let text = governed("")
        .replace("[approvals]\nspenders", "[approvals]\nlifetime = \"1m\"\nspenders")
        .replace("max = \"0.01 ETH\"", "max = \"0.001 ETH\"");
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(1000))).await);
    ok(&s.sign(&g, erc20_transfer(CHAIN, 1, USDC, DEAD, usdc(1))).await);
    s.enclave.set_clock_offset(120);
    // A host-chosen nonce that would replace the agent's transfer: refused.
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 1)], false).await;
    assert_eq!((r.0, r.1["error"]["rule"].as_str()), (403, Some("sweep.nonce")), "{}", r.1);
    // At the next nonce: signed, its gas cost charged against the gas cost limit.
    let terms = SweepTerms { max_fee_per_gas: 2_000_000_000, ..sweep_terms(CHAIN, 2) };
    let r = s.sweep(&g, vec![terms.clone()], false).await;
    ok(&r);
    // The sweep is a revocation like any other: it frees exposure for what comes after it,
    // not before. A request that replaces it at nonce 2 still sees the approval.
    let ts = now() + 120;
    let again = SignPayload::Transaction(erc20_approve(CHAIN, 2, USDC, POOL, usdc(1000)));
    denied(&s.sign_payload_at(&g, again, ts).await, "exposure_ceiling");
    let after = SignPayload::Transaction(erc20_approve(CHAIN, 3, USDC, POOL, usdc(1000)));
    ok(&s.sign_payload_at(&g, after, ts).await);
    // Sweeps pay gas within the policy's gas cost limit (0.001 ETH/day): every transaction
    // here costs at most 2 gwei × 100 000 gas = 0.0002 ETH; after five, a sweep is over it.
    let a = s.sign_payload_at(&g, SignPayload::Transaction(erc20_transfer(CHAIN, 4, USDC, DEAD, usdc(1))), ts).await;
    ok(&a);
    s.enclave.set_clock_offset(240);
    let r = s.sweep(&g, vec![SweepTerms { nonce: 5, ..terms.clone() }], false).await;
    assert_eq!((r.0, code(&r.1)), (403, "gas_cap"), "{}", r.1);
}

/// Fee bumps (issue 14, the host's own sweeper): an unauthenticated sweep may re-sign a
/// revocation at a nonce only sweeps used — never at the agent's nonce, never a key swept
/// below the nonce asked for — and each re-signature is charged like any sweep.
#[tokio::test]
async fn an_unauthenticated_fee_bump_re_signs_only_the_sweeps_own_nonces() {
    let s = Stack::start();
    let text = governed("").replace("[approvals]\nspenders", "[approvals]\nlifetime = \"1m\"\nspenders");
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(1000))).await);
    s.enclave.set_clock_offset(120);
    let terms = SweepTerms { max_fee_per_gas: 2_000_000_000, ..sweep_terms(CHAIN, 1) };
    let r = s.sweep(&g, vec![terms.clone()], false).await;
    ok(&r);
    let first = r.1["transactions"].as_array().unwrap().clone();
    assert_eq!(first.len(), 1, "{}", r.1);
    // The same nonce, higher fees: the swept approval's revocation is signed again.
    let bumped =
        SweepTerms { max_fee_per_gas: 3_000_000_000, max_priority_fee_per_gas: 1_500_000_000, ..terms.clone() };
    let r = s.sweep(&g, vec![bumped], false).await;
    ok(&r);
    let again = r.1["transactions"].as_array().unwrap().clone();
    assert_eq!(again.len(), 1, "{}", r.1);
    assert_eq!(again[0]["nonce"], 1);
    assert_ne!(again[0]["hash"], first[0]["hash"]);
    // Re-signing goes on — re-signs nobody broadcast cannot freeze the host's own bumps
    // (reviews of 5d39b59 and e7bd0a9) — but every one counts against half the session's
    // registry, so no caller can fill it (unit test: `unauthenticated_resweeps_…`).
    for fee in [4_000_000_000u128, 5_000_000_000, 6_000_000_000] {
        let r = s.sweep(&g, vec![SweepTerms { max_fee_per_gas: fee, ..terms.clone() }], false).await;
        ok(&r);
        assert_eq!(r.1["transactions"].as_array().unwrap().len(), 1, "{}", r.1);
    }
    // At the agent's own nonce: nothing is signed (the swept key is not re-signed there).
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 0)], false).await;
    ok(&r);
    assert!(r.1["transactions"].as_array().unwrap().is_empty(), "{}", r.1);
    // At a fresh nonce: nothing left to sweep (the swept key is not signed again there).
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, 2)], false).await;
    ok(&r);
    assert!(r.1["transactions"].as_array().unwrap().is_empty(), "{}", r.1);
}

/// The attack of a review of 2026-12-06 (`policy::sweep_displaced_tests`), against the real
/// enclave and host: the host sweeps an expired approval at the next nonce and never
/// broadcasts it; the agent signs a transfer at that nonce (an honest client taking the
/// node's pending nonce does so by itself), displacing the sweep, and the approval is due
/// again. Before the fix each round added a write counted nowhere; after 511 rounds the
/// registry was full and the owner's signed sweep was refused for good. Now unauthenticated
/// sweeps of the key stop within half the registry, the reply says the approval was left
/// and why, and the owner's signed sweep still revokes it.
#[tokio::test]
async fn a_sweep_displaced_again_and_again_leaves_the_owners_sweep_its_room() {
    use bridle_common::allowance::MAX_WRITES;
    let s = Stack::start();
    let text = governed("")
        .replace("quota = 1000\n", "quota = 100000\n")
        .replace("[approvals]\nspenders", "[approvals]\nlifetime = \"1m\"\nspenders")
        .replace("max = \"0.01 ETH\"", "max = \"100 ETH\"");
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    ok(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, usdc(500))).await);
    s.enclave.set_clock_offset(120);
    let (mut nonce, mut unauthenticated) = (1u64, 0usize);
    let last = loop {
        let r = s.sweep(&g, vec![sweep_terms(CHAIN, nonce)], false).await;
        ok(&r);
        let txs = r.1["transactions"].as_array().unwrap();
        if txs.is_empty() {
            break r.1;
        }
        assert_eq!(
            (txs.len(), txs[0]["nonce"].as_u64(), &txs[0]["spender"]),
            (1, Some(nonce), &json!(ROUTER)),
            "{}",
            r.1
        );
        unauthenticated += 1;
        assert!(unauthenticated <= MAX_WRITES, "swept {unauthenticated} times and counting");
        let transfer = SignPayload::Transaction(erc20_transfer(CHAIN, nonce, USDC, DEAD, U256::from(1)));
        ok(&s.sign_payload_at(&g, transfer, now() + 120).await);
        nonce += 1;
    };
    assert!(
        (2..=MAX_WRITES / 2).contains(&unauthenticated),
        "{unauthenticated} unauthenticated sweeps of one approval (at most {})",
        MAX_WRITES / 2
    );
    // The reply that signed nothing names the approval it left.
    let skipped = last["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|k| k["spender"] == json!(ROUTER) && k["token"] == json!(USDC)), "{last}");
    // The owner's signed sweep revokes it: approve(ROUTER, 0) at the next nonce, signed by
    // the session's key (read by alloy and by eth-account).
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, nonce)], true).await;
    ok(&r);
    let txs = r.1["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{}", r.1);
    let raw: Bytes = txs[0]["raw_transaction"].as_str().unwrap().parse().unwrap();
    let env = {
        use alloy_eips::eip2718::Decodable2718;
        alloy_consensus::TxEnvelope::decode_2718(&mut &raw[..]).unwrap()
    };
    use alloy_consensus::Transaction;
    let call = bridle_common::policy::calls::approveCall::abi_decode(env.input()).unwrap();
    assert_eq!((env.to(), env.nonce(), call.spender, call.amount), (Some(USDC), nonce, ROUTER, U256::ZERO));
    assert_eq!((recover_raw(&raw), recover_raw_eth_account(&raw)), (g.session, g.session));
}

#[tokio::test]
async fn permit2_expiration_zero_counts_until_the_signature_deadline() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&governed(""))).await.expect("grant");
    let deadline = now() + 1800;
    let permit = |amount: U256| {
        SignPayload::TypedData(
            json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"}],
                    "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                        {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}],
                    "PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
                        {"name": "sigDeadline", "type": "uint256"}]},
                "primaryType": "PermitSingle",
                "domain": {"name": "Permit2", "chainId": CHAIN, "verifyingContract": PERMIT2},
                "message": {"details": {"token": USDC, "amount": amount.to_string(), "expiration": 0, "nonce": 0},
                    "spender": ROUTER, "sigDeadline": deadline}
            })
            .to_string(),
        )
    };
    ok(&s.sign_payload(&g, permit(usdc(900))).await);
    // Before the fix, expiration 0 was recorded as already lapsed: nothing outstanding.
    let a = s.allowances(&g).await;
    assert_eq!(u256_of(&a["exposure"]["usd"]), U256::from(900u64) * bridle_common::allowance::usd_unit(), "{a}");
    denied(&s.sign(&g, erc20_approve(CHAIN, 0, USDC, POOL, usdc(200))).await, "exposure_ceiling");
}

fn user_op(calls: &[(Address, U256, Bytes)], mode_try: bool) -> SignPayload {
    let call_data = if mode_try {
        let mut cd = encode::erc7579_batch(calls).to_vec();
        // The mode word follows the selector: call type 0x01 (batch), exec type 0x01 (try).
        cd[4 + 1] = 0x01;
        Bytes::from(cd)
    } else {
        encode::simple_execute_batch(calls)
    };
    SignPayload::UserOperation(UserOperationRequest {
        chain_id: CHAIN,
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
        max_fee_per_gas: 1_000_000,
        max_priority_fee_per_gas: 1_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    })
}

#[tokio::test]
async fn user_operations_count_each_call_and_refuse_try_mode() {
    let s = Stack::start();
    let g = s
        .grant(&Actor::random(), &Actor::random(), &policy(&governed("").replace("quota = 1000", "quota = 3")))
        .await
        .expect("grant");
    let xfer = |n| {
        (
            USDC,
            U256::ZERO,
            Bytes::from(bridle_common::policy::calls::transferCall { to: DEAD, amount: usdc(n) }.abi_encode()),
        )
    };
    // Four calls against a quota of three: refused (before the fix one operation was one use).
    denied(&s.sign_payload(&g, user_op(&[xfer(1), xfer(1), xfer(1), xfer(1)], false)).await, "quota_exhausted");
    ok(&s.sign_payload(&g, user_op(&[xfer(1), xfer(1), xfer(1)], false)).await);
    // ERC-7579 try mode: a failing trailing approve(0) would leave the approval live.
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&governed(""))).await.expect("grant");
    let approve = |a| {
        (
            USDC,
            U256::ZERO,
            Bytes::from(bridle_common::policy::calls::approveCall { spender: ROUTER, amount: a }.abi_encode()),
        )
    };
    let r = s.sign_payload(&g, user_op(&[approve(usdc(10)), approve(U256::ZERO)], true)).await;
    assert_eq!((r.0, r.1["error"]["rule"].as_str()), (403, Some("user_operations.call_data")), "{}", r.1);
    assert!(r.1["error"]["reason"].as_str().unwrap().contains("try"), "{}", r.1);
}

#[tokio::test]
async fn siwe_statements_cannot_spoof_fields() {
    let s = Stack::start();
    let g = s
        .grant(
            &Actor::random(),
            &Actor::random(),
            &policy(&format!("{}\n[[messages]]\nsiwe_domain = \"example.com\"", governed(""))),
        )
        .await
        .expect("grant");
    let msg = |statement: &str, chain: u64| {
        format!(
            "example.com wants you to sign in with your Ethereum account:\n{}\n\n{statement}\n\nURI: https://example.com/login\nVersion: 1\nChain ID: {chain}\nNonce: 32891756\nIssued At: 2026-11-23T10:00:00Z",
            g.session.to_checksum(None)
        )
    };
    ok(&s.sign_payload(&g, SignPayload::Message(Bytes::from(msg("Sign in.", CHAIN).into_bytes()))).await);
    // A statement line reading "Chain ID: 31337" on a message for chain 1.
    let spoof = msg(&format!("Chain ID: {CHAIN}"), 1);
    denied(&s.sign_payload(&g, SignPayload::Message(Bytes::from(spoof.into_bytes()))).await, "message_not_allowed");
    // An extra line smuggled between fields.
    let smuggled = msg("Sign in.", CHAIN).replace("Version: 1\n", &format!("Version: 1\nChain ID: {CHAIN}\n"));
    denied(&s.sign_payload(&g, SignPayload::Message(Bytes::from(smuggled.into_bytes()))).await, "message_not_allowed");
    let _ = B256::ZERO;
}
