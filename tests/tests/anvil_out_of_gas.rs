//! A revocation that runs out of gas (review of 2026-11-30, RULES.md §6 `approvals.revoke_gas`),
//! on a real chain (anvil) through the real host and enclave.
//!
//! A mined transaction consumes its nonce even when it reverts. `approve(spender, 0)` signed
//! with 22 500 gas is mined, runs out of gas, and the approval stays; before the fix the
//! registry counted it as a reset and signed a second approval past the exposure ceiling.
//! Now: a revocation below `approvals.revoke_gas` (100 000 by default) lowers no worst case,
//! the second approval is refused `exposure_ceiling`, a sweep below the floor is refused
//! `gas_cap`, and a revocation with enough gas resets the key as before.
//!
//! Needs anvil (see `bridle_tests::anvil_bin`); a missing one fails the test.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::SweepTerms;
use bridle_common::tx::TxRequest;
use bridle_tests::*;
use serde_json::json;

const CHAIN: u64 = 31337;
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// Broadcast a signed raw transaction; its receipt.
fn with_gas(mut t: TxRequest, gas: u64) -> TxRequest {
    if let TxRequest::Eip1559(r) = &mut t {
        r.gas_limit = gas;
    }
    t
}

#[tokio::test]
async fn a_revocation_that_runs_out_of_gas_frees_no_exposure() {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let text = format!(
        r#"
name = "anvil-out-of-gas"
chains = [{CHAIN}]
valid_for = "24h"
prices = {{ USDC = "1" }}
exposure_ceiling = "60 USD"
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["1000 USDC"]
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 200000
"#
    );
    let g = s.grant(&owner, &agent, &policy(&text)).await.expect("grant");
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;

    // 50 USDC to the router, mined.
    let (c, v) = s.sign(&g, erc20_approve(CHAIN, 0, token, ROUTER, usdc(50))).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(chain.send_raw(&v["raw_transaction"]).await["status"], "0x1");

    // Its revocation with 22 500 gas: signed (a revocation is never refused), mined, out of
    // gas — the nonce is used and the allowance stays.
    let (c, v) = s.sign(&g, with_gas(erc20_approve(CHAIN, 1, token, ROUTER, U256::ZERO), 22_500)).await;
    assert_eq!(c, 200, "{v}");
    let r = chain.send_raw(&v["raw_transaction"]).await;
    assert_eq!(r["status"], "0x0", "the revocation ran out of gas: {r}");
    assert_eq!(chain.nonce(g.session, "latest").await, 2, "a reverted transaction consumes its nonce");
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, usdc(50));
    let a = s.allowances(&g).await;
    let router = a["allowances"].as_array().unwrap().iter().find(|e| e["spender"] == json!(ROUTER)).unwrap().clone();
    assert_eq!(router["state"], "active", "the registry must not call it revoked: {a}");

    // 50 more to the pool would put 100 USD on chain against a 60 USD ceiling: refused.
    let (c, v) = s.sign(&g, erc20_approve(CHAIN, 2, token, POOL, usdc(50))).await;
    assert_eq!((c, code(&v)), (403, "exposure_ceiling"), "{v}");

    // A sweep below approvals.revoke_gas is refused (it would settle nothing either).
    let low = SweepTerms { gas_limit: 60_000, ..sweep_terms(CHAIN, 2) };
    let (c, v) = s.sweep(&g, vec![low], true).await;
    assert_eq!((c, code(&v)), (403, "gas_cap"), "{v}");
    assert!(v.to_string().contains("approvals.revoke_gas"), "the denial names the rule: {v}");

    // The revocation with enough gas: mined, reset on chain and in the registry.
    let (c, v) = s.sign(&g, erc20_approve(CHAIN, 2, token, ROUTER, U256::ZERO)).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(chain.send_raw(&v["raw_transaction"]).await["status"], "0x1");
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, U256::ZERO);
    let (c, v) = s.sign(&g, erc20_approve(CHAIN, 3, token, POOL, usdc(50))).await;
    assert_eq!(c, 200, "nonce 2 reset the router's allowance, so 50 to the pool fits: {v}");
    assert_eq!(chain.send_raw(&v["raw_transaction"]).await["status"], "0x1");
    assert_eq!(chain.allowance(token, g.session, POOL).await, usdc(50));
}
