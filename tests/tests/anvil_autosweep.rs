//! Sweeps that run by themselves (issue 14 item 3; AG-212 4.3, 4.6): `bridle-host
//! --sweep-rpc` against anvil, with the enclave's clock moved past the approvals' lifetime.
//! The host asks the enclave for the revocations with the node's nonce and fees, broadcasts
//! them, re-signs a stuck one at the same nonce with higher fees, follows it to its receipt,
//! and, once the owner revokes the session, sweeps every outstanding approval — leaving
//! every allowance at 0 on chain, with no owner action beyond the revoke.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::SignPayload;
use bridle_tests::cluster::usdc;
use bridle_tests::poll::until;
use bridle_tests::*;
use serde_json::{json, Value};

const CHAIN: u64 = 31337;
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

#[tokio::test]
async fn the_host_sweeps_expired_and_revoked_approvals_by_itself_and_bumps_stuck_fees() {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    let s = Stack::start_host_with(&["--sweep-rpc", &chain.url, "--sweep-interval", "1", "--sweep-bump-after", "2"]);
    let (owner, agent) = (Actor::random(), Actor::random());
    let text = format!(
        r#"
name = "autosweep"
chains = [{CHAIN}]
valid_for = "24h"
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["1000 USDC"]
lifetime = "1h"
revoke_gas = 150000
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 200000
"#
    );
    let g = s.grant(&owner, &agent, &policy(&text)).await.expect("grant");
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;

    // An approval, mined.
    let (c, v) = s.sign(&g, erc20_approve(CHAIN, 0, token, ROUTER, usdc(100))).await;
    assert_eq!(c, 200, "{v}");
    let hash = chain.rpc("eth_sendRawTransaction", json!([v["raw_transaction"]])).await;
    chain.receipt(&hash).await;
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, usdc(100));
    assert_eq!(s.metric("bridle_sweep_outstanding_past_expiry").await, 0);

    // The node stops mining; an hour passes in the enclave: the approval is past its
    // lifetime. The host sweeps it by itself, and since the revocation is not mined, re-signs
    // it at the same nonce with higher fees.
    chain.rpc("evm_setAutomine", json!([false])).await;
    s.enclave.set_clock_offset(3_601);
    until("a revocation broadcast", || async { s.metric("bridle_sweep_broadcast_total").await >= 1 }).await;
    until("a fee bump", || async { s.metric("bridle_sweep_fee_bumps_total").await >= 1 }).await;
    let (c, sweeps) = s.get(&format!("/v1/sessions/{}/sweeps", g.session)).await;
    assert_eq!(c, 200, "{sweeps}");
    let sweeps: Vec<Value> = sweeps["sweeps"].as_array().or(sweeps.as_array()).cloned().unwrap_or_default();
    assert!(sweeps.len() >= 2 && sweeps.iter().all(|t| t["nonce"] == 1), "{sweeps:?}");
    // Mined now: the node keeps the replacement, whose fees are higher than the first's.
    chain.rpc("evm_mine", json!([])).await;
    chain.rpc("evm_setAutomine", json!([true])).await;
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, U256::ZERO);
    let block = chain.rpc("eth_getBlockByNumber", json!(["latest", true])).await;
    let mined = &block["transactions"][0];
    let (first, last) = (sweeps.first().unwrap(), sweeps.last().unwrap());
    assert_eq!(mined["hash"], last["hash"], "the latest re-signed revocation is the one mined: {sweeps:?}");
    // Each re-signature raised the fees (decoded with alloy's consensus code), and every one
    // is signed by the session key.
    let fees = |t: &Value| {
        use alloy_consensus::Transaction as _;
        use alloy_eips::eip2718::Decodable2718;
        let raw = alloy_primitives::hex::decode(t["raw_transaction"].as_str().unwrap()).unwrap();
        assert_eq!(recover_raw(&raw), g.session);
        let env = alloy_consensus::TxEnvelope::decode_2718(&mut &raw[..]).unwrap();
        // The policy's approvals.revoke_gas, read from the session's stored policy: the
        // enclave refuses a sweep below it.
        assert_eq!(env.gas_limit(), 150_000, "{t}");
        (env.max_fee_per_gas(), env.max_priority_fee_per_gas().unwrap_or_default())
    };
    let (f0, p0) = fees(first);
    let (f1, p1) = fees(last);
    assert!(f1 * 100 >= f0 * 110 && p1 * 100 >= p0 * 110, "fees {f0}/{p0} → {f1}/{p1}");
    until("the revocation confirmed", || async { s.metric("bridle_sweep_confirmed_total").await >= 1 }).await;
    until("nothing past expiry", || async { s.metric("bridle_sweep_outstanding_past_expiry").await == 0 }).await;

    // A fresh approval (current: within its lifetime), mined; then the owner revokes the
    // session. The host sweeps every outstanding approval of the revoked session.
    let ts = now() + 3_601;
    let payload = SignPayload::Transaction(erc20_approve(CHAIN, 2, token, POOL, usdc(50)));
    let (c, v) = s.sign_payload_at(&g, payload, ts).await;
    assert_eq!(c, 200, "{v}");
    let hash = chain.rpc("eth_sendRawTransaction", json!([v["raw_transaction"]])).await;
    chain.receipt(&hash).await;
    assert_eq!(chain.allowance(token, g.session, POOL).await, usdc(50));
    let (c, v) = s.revoke(&g).await;
    assert_eq!(c, 200, "{v}");
    until("the revoked session's approval revoked on chain", || async {
        chain.allowance(token, g.session, POOL).await.is_zero()
    })
    .await;
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, U256::ZERO);
    let a = s.allowances(&g).await;
    assert!(a["allowances"].as_array().unwrap().iter().all(|e| e["state"] == "swept"), "{a}");
    assert_eq!(s.metric("bridle_sweep_refused_total").await, 0);
    // Never stuck at the policy's fee caps (50 gwei, far above anvil's fees).
    assert_eq!(s.metric("bridle_sweep_waiting_at_fee_cap").await, 0);
}
