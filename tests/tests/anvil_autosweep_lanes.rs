//! The host's sweeper (issue 14 item 3) where a lane is not simply "due": a sweep someone
//! else asked for and never broadcast (the enclave shows its approval as swept, the chain
//! never saw it), and a chain where sweeps never settle (after one sweep is mined the
//! enclave signs nothing more without the owner: the sweeper must stop asking). Real
//! enclave, real host, anvil.

use alloy_primitives::{address, Address, U256};
use bridle_tests::cluster::usdc;
use bridle_tests::poll::until;
use bridle_tests::*;
use serde_json::{json, Value};

const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");

fn policy_text(chain: u64, token: Address) -> String {
    format!(
        r#"
name = "lanes"
chains = [{chain}]
valid_for = "24h"
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}"]
max = ["1000 USDC"]
lifetime = "1h"
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 200000
"#
    )
}

/// An approval of 100 USDC to the router at nonce 0, mined.
async fn approved(chain: &Anvil, s: &Stack, g: &Granted, token: Address) {
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;
    let (c, v) = s.sign(g, erc20_approve(chain.chain_id, 0, token, ROUTER, usdc(100))).await;
    assert_eq!(c, 200, "{v}");
    let hash = chain.rpc("eth_sendRawTransaction", json!([v["raw_transaction"]])).await;
    chain.receipt(&hash).await;
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, usdc(100));
}

fn only_key(a: &Value) -> &Value {
    let all = a["allowances"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{a}");
    &all[0]
}

#[tokio::test]
async fn a_sweep_someone_asked_for_and_never_broadcast_is_re_signed_and_mined_by_the_host() {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    // First a host without the sweeper: a stranger reaches its sweep endpoint.
    let mut s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&policy_text(chain.chain_id, token))).await.expect("grant");
    approved(&chain, &s, &g, token).await;
    s.enclave.set_clock_offset(3_601);
    // Fees of its own choosing (5 gwei): the host's re-signed one, at the node's, differs.
    let terms =
        bridle_common::protocol::SweepTerms { max_fee_per_gas: 5_000_000_000, ..sweep_terms(chain.chain_id, 1) };
    let (c, v) = s.sweep(&g, vec![terms], false).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["transactions"].as_array().map(Vec::len), Some(1), "{v}");
    let strangers = v["transactions"][0]["hash"].clone();
    // The enclave shows the approval as swept at nonce 1 — a revocation settles it once
    // mined — but nobody broadcast it: it is live on chain.
    let a = s.allowances(&g).await;
    assert_eq!((only_key(&a)["state"].as_str(), only_key(&a)["swept_at_nonce"].as_u64()), (Some("swept"), Some(1)));
    assert_eq!(chain.nonce(g.session, "pending").await, 1);
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, usdc(100));

    // A host with the sweeper, on the same enclave and store: it sees a signed sweep the
    // chain has not reached and that it did not broadcast, has it re-signed at its own
    // nonce, broadcasts it and follows it to its receipt.
    let db = s.host.db.clone();
    s.host = HostProc::start_with(&s.enclave.socket, &db, &["--sweep-rpc", &chain.url, "--sweep-interval", "1"]);
    until("the approval revoked on chain", || async { chain.allowance(token, g.session, ROUTER).await.is_zero() })
        .await;
    until("the revocation confirmed", || async { s.metric("bridle_sweep_confirmed_total").await >= 1 }).await;
    assert_eq!(chain.nonce(g.session, "latest").await, 2);
    assert_eq!(s.metric("bridle_sweep_refused_total").await, 0);
    assert_eq!(s.metric("bridle_sweep_left_to_owner").await, 0);
    // What was mined is the host's re-signed revocation (asked of the enclave, not the
    // stranger's stored copy): the session's, at nonce 1, kept by the host.
    assert_eq!(s.metric("bridle_sweep_requests_total").await, 1);
    let (c, sweeps) = s.get(&format!("/v1/sessions/{}/sweeps", g.session)).await;
    assert_eq!(c, 200, "{sweeps}");
    let sweeps: &Vec<Value> = sweeps.as_array().unwrap_or_else(|| panic!("{sweeps}"));
    assert_eq!(sweeps.len(), 2, "the stranger's and the re-signed one: {sweeps:?}");
    let block = chain.rpc("eth_getBlockByNumber", json!(["latest", true])).await;
    let mined = &block["transactions"][0];
    assert_ne!(mined["hash"], strangers, "the stranger's own transaction was never broadcast");
    let kept = sweeps.iter().find(|t| t["hash"] == mined["hash"]).unwrap_or_else(|| panic!("{sweeps:?}"));
    assert_eq!(kept["nonce"], 1, "{kept}");
    let raw = alloy_primitives::hex::decode(kept["raw_transaction"].as_str().unwrap()).unwrap();
    assert_eq!(recover_raw(&raw), g.session);
}

#[tokio::test]
async fn where_sweeps_never_settle_the_host_sweeps_once_then_leaves_the_lane_to_the_owner() {
    // Chain 777 is not known to charge all of its gas in execution (RULES.md §6): a
    // revocation there may run out of gas, so no sweep settles an approval there, and after
    // one is signed the enclave signs no other without the owner's signature.
    let chain = Anvil::start_chain(777);
    let token = chain.deploy_erc20().await;
    let s = Stack::start_host_with(&["--sweep-rpc", &chain.url, "--sweep-interval", "1"]);
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&policy_text(chain.chain_id, token))).await.expect("grant");
    approved(&chain, &s, &g, token).await;
    assert_eq!(s.metric("bridle_sweep_requests_total").await, 0, "nothing is due yet");

    s.enclave.set_clock_offset(3_601);
    until("the approval revoked on chain", || async { chain.allowance(token, g.session, ROUTER).await.is_zero() })
        .await;
    until("the lane left to the owner", || async { s.metric("bridle_sweep_left_to_owner").await == 1 }).await;
    // The enclave still counts it: it cannot tell whether the revocation ran out of gas.
    let a = s.allowances(&g).await;
    assert_eq!((only_key(&a)["state"].as_str(), only_key(&a)["swept_at_nonce"].as_u64()), (Some("expired"), Some(1)));
    assert_eq!(s.metric("bridle_sweep_outstanding_past_expiry").await, 1);
    // One sweep signed and mined, one more asked for (signed nothing): then no more
    // requests, round after round, and nothing refused.
    assert_eq!(s.metric("bridle_sweep_requests_total").await, 2);
    quiet_for_three_rounds(&s, 2).await;
    assert_eq!(s.metric("bridle_sweep_broadcast_total").await, 1);
    assert_eq!(s.metric("bridle_sweep_refused_total").await, 0);
    assert_eq!(chain.nonce(g.session, "latest").await, 2);

    // The owner's sweep (asked for here and not broadcast) changes the enclave's view: the
    // sweeper looks again, finds a signed sweep the chain has not reached, has it re-signed
    // at that nonce and broadcasts the re-signed one — then leaves the lane alone again.
    let (c, v) = s.sweep(&g, vec![sweep_terms(chain.chain_id, 2)], true).await;
    assert_eq!(c, 200, "{v}");
    until("the re-signed sweep mined", || async { chain.nonce(g.session, "latest").await == 3 }).await;
    until("the re-signed sweep counted", || async { s.metric("bridle_sweep_broadcast_total").await == 2 }).await;
    // The re-sign, then one request that signs nothing.
    until("the lane looked at again", || async { s.metric("bridle_sweep_requests_total").await == 4 }).await;
    quiet_for_three_rounds(&s, 4).await;
    assert_eq!(s.metric("bridle_sweep_left_to_owner").await, 1);
}

/// Three more sweeper rounds finish and the enclave is asked nothing in them: the lane is
/// left alone (not a stalled sweeper).
async fn quiet_for_three_rounds(s: &Stack, asked: u64) {
    let rounds = s.metric("bridle_sweep_rounds_total").await;
    until("three more rounds", || async { s.metric("bridle_sweep_rounds_total").await >= rounds + 3 }).await;
    assert_eq!(s.metric("bridle_sweep_requests_total").await, asked);
}

#[tokio::test]
async fn a_revocation_behind_a_nonce_gap_waits_unbumped_until_the_gap_is_filled() {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    let s = Stack::start_host_with(&["--sweep-rpc", &chain.url, "--sweep-interval", "1", "--sweep-bump-after", "2"]);
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&policy_text(chain.chain_id, token))).await.expect("grant");
    approved(&chain, &s, &g, token).await;
    // The agent signs a second approval at nonce 1 and never broadcasts it: the node's
    // pending nonce stays 1, the enclave's next is 2.
    let (c, held) = s.sign(&g, erc20_approve(chain.chain_id, 1, token, ROUTER, usdc(50))).await;
    assert_eq!(c, 200, "{held}");
    assert_eq!(chain.nonce(g.session, "pending").await, 1);

    // An hour later the sweeper asks at the enclave's next nonce (2; at 1 the enclave
    // would refuse: the agent's transaction is there), broadcasts it — the node can only
    // queue it — and does not bump it: no fee gets it mined before nonce 1.
    s.enclave.set_clock_offset(3_601);
    until("the revocation broadcast", || async { s.metric("bridle_sweep_broadcast_total").await == 1 }).await;
    until("waiting behind the gap", || async { s.metric("bridle_sweep_waiting_behind_gap").await == 1 }).await;
    let rounds = s.metric("bridle_sweep_rounds_total").await;
    until("three more rounds", || async { s.metric("bridle_sweep_rounds_total").await >= rounds + 3 }).await;
    assert_eq!(s.metric("bridle_sweep_fee_bumps_total").await, 0);
    assert_eq!(s.metric("bridle_sweep_refused_total").await, 0);
    assert_eq!(chain.allowance(token, g.session, ROUTER).await, usdc(100));

    // The agent's transaction arrives: the gap is filled and the queued revocation is
    // mined after it — the allowance ends at 0, the gauge back at 0.
    chain.rpc("eth_sendRawTransaction", json!([held["raw_transaction"]])).await;
    until("the approval revoked on chain", || async { chain.allowance(token, g.session, ROUTER).await.is_zero() })
        .await;
    until("no longer behind a gap", || async { s.metric("bridle_sweep_waiting_behind_gap").await == 0 }).await;
    assert_eq!(chain.nonce(g.session, "latest").await, 3);
    assert_eq!(s.metric("bridle_sweep_fee_bumps_total").await, 0);
}
