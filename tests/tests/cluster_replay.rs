//! Replay protection holds across the nodes of a cluster and across leader changes: a stamp
//! accepted through one node is never charged again through another (the identical request
//! gets the same signature back; RULES.md §2), and an owner message accepted once is
//! refused everywhere.

use alloy_primitives::{Address, B256};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::UpdatePolicy;
use bridle_tests::cluster::{cap_policy, signer_of, transfer, Cluster};
use bridle_tests::{code, Actor};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stamps_and_owner_messages_are_accepted_once_cluster_wide() {
    let mut c = Cluster::start(3).await;
    let owner = Actor::random();
    let g = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let client = c.client();
    let req = transfer(&g, 0, 1);
    let (s, first, _) = client.sign_until_decided(0, &req, Duration::from_secs(20)).await;
    assert_eq!(s, 200, "{first}");

    // The same stamp through the other nodes' hosts: the same signature, no new charge.
    for i in 1..3 {
        let (s, v, _) = client.sign_until_decided(i, &req, Duration::from_secs(20)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["signature"], first["signature"]);
    }

    // An owner message, accepted through node 1, replayed through node 2: refused.
    let st = c.status(0).await;
    let p = cap_policy(50);
    let msg = OwnerAction {
        action: action::UPDATE_POLICY.into(),
        enclave: st.identity_address,
        session: g.session,
        agent: g.agent.address,
        policyHash: p.hash(),
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let update = UpdatePolicy { session: g.session, policy: p, auth: owner.sign_owner(&msg) };
    let path = format!("/v1/sessions/{}/policy", g.session);
    let (s, v) = c.post(1, &path, &update).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.post(2, &path, &update).await;
    assert_eq!((s, code(&v)), (401, "replayed"), "{v}");

    // An update the log's application refuses (a policy lasting past the 24-hour limit):
    // every node spends its nonce, so relayed again through another node it is a replay,
    // not a refusal that could pass later (review of 2026-12-03).
    let long = bridle_tests::policy(
        "name = \"long\"\nchains = [1]\nvalid_for = \"25h\"\n\n[[calls]]\n\
         target = \"0x000000000000000000000000000000000000dEaD\"\nfunctions = [\"receive()\"]\n",
    );
    let msg = OwnerAction { policyHash: long.hash(), nonce: Actor::next_nonce(), ..msg };
    let refused = UpdatePolicy { session: g.session, policy: long, auth: owner.sign_owner(&msg) };
    let (s, v) = c.post(1, &path, &refused).await;
    assert_eq!((s, code(&v)), (400, "invalid_policy"), "{v}");
    let (s, v) = c.post(2, &path, &refused).await;
    assert_eq!((s, code(&v)), (401, "replayed"), "{v}");

    // After the leader changes, the same holds.
    let l = c.wait_leader(Duration::from_secs(10)).await;
    c.kill_enclave(l);
    let alive = (l + 1) % 3;
    let (s, v, _) = client.sign_until_decided(alive, &req, Duration::from_secs(30)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["signature"], first["signature"], "the same signature after the failover");
    assert_eq!(signer_of(&v), g.session);
    let (s, v) = c.post(alive, &path, &update).await;
    assert_eq!((s, code(&v)), (401, "replayed"), "{v}");
    let (s, v) = c.post(alive, &path, &refused).await;
    assert_eq!((s, code(&v)), (401, "replayed"), "the refused update's nonce is spent on every node: {v}");
    let (s, v) = c.get(alive, &format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session"]["uses"], 1, "charged once: {v}");
    let _ = Address::ZERO;
}
