//! A rolling upgrade across a change of the decision rules (ATTESTATION.md, "Cluster and
//! upgrades"): every node runs its own image's rules over the same entries, so while the
//! membership mixes rules versions, what decides (signing, approvals, sweeps, creations,
//! policy updates) is refused on every node alike, and revocations go on; a node of new
//! rules never replays what the old ones decided — it starts from a snapshot; once every
//! node runs the new rules, signing resumes with everything spent before counted.
//!
//! The new nodes are development nodes that say they run the next rules version
//! (`--dev-rules-version`); their rules are this build's, which is what makes a parted state
//! observable only through the guard's refusals, never through different decisions.

use alloy_primitives::B256;
use bridle_common::owner::action;
use bridle_common::policy::RULES_VERSION;
use bridle_common::protocol::Revoke;
use bridle_tests::cluster::{cap_policy, signer_of, transfer, Cluster};
use bridle_tests::{code, owner_action, Actor, Granted};
use std::time::{Duration, Instant};

/// The owner revokes `g`, through node `i`'s host.
async fn revoke(c: &Cluster, i: usize, g: &Granted) -> (u16, serde_json::Value) {
    let st = c.status(i).await;
    let msg = owner_action(action::REVOKE, st.identity_address, g.session, g.agent.address, B256::ZERO);
    let body = Revoke { auth: g.owner.sign_owner(&msg), session: g.session };
    c.post(i, &format!("/v1/sessions/{}/revoke", g.session), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_upgrade_across_a_change_of_rules_holds_what_decides_until_every_node_runs_the_new() {
    let next = (RULES_VERSION + 1).to_string();
    let new = ["--dev-rules-version", next.as_str()];
    let mut c = Cluster::start(3).await;
    let owner = Actor::random();
    let g = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let other = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let client = c.client();
    // Decisions in the log before a node of the new rules joins: 60 USDC of 100 spent.
    for nonce in 0..3 {
        let (s, v, _) = client.sign_until_decided(0, &transfer(&g, nonce, 20), Duration::from_secs(30)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(signer_of(&v), g.session);
    }

    for old_node in 0..3 {
        let n = c.add_node(&new).await;
        c.start_node(n, false);
        c.wait_ready(n, Duration::from_secs(90)).await;
        let info = c.info(n).await.unwrap();
        assert_eq!(info["rules"].to_string(), next, "{info}");
        if old_node == 0 {
            // It took the state from a snapshot, not by replaying the old rules' decisions.
            assert!(info["snapshot"].as_u64().is_some(), "{info}");
            // Mixed: signing is refused on every node, naming the rule; nothing is spent.
            let client = c.client();
            for at in [0, n] {
                let (s, v) = client.post(at, "/v1/sign", &transfer(&g, 3, 1)).await;
                assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
                assert!(v.to_string().contains("cluster.rules_version"), "{v}");
            }
            // A revocation goes on.
            let (s, v) = revoke(&c, 0, &other).await;
            assert_eq!(s, 200, "{v}");
        }
        c.wait_voter(n, Duration::from_secs(90)).await;
        let id = c.info(old_node).await.unwrap()["node_id"].as_u64().unwrap();
        c.kill_enclave(old_node);
        c.wait_removed(id, Duration::from_secs(90)).await;
    }

    // Every node runs the new rules: signing again, with what was spent before counted.
    let client = c.client();
    let live = 3;
    let (s, v, _) = client.sign_until_decided(live, &transfer(&g, 3, 50), Duration::from_secs(30)).await;
    assert_eq!((s, code(&v)), (403, "spend_cap"), "60 of 100 were spent before the upgrade: {v}");
    let (s, v, _) = client.sign_until_decided(live, &transfer(&g, 3, 40), Duration::from_secs(30)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(signer_of(&v), g.session);
    let (s, v) = client.post(live, "/v1/sign", &transfer(&other, 0, 1)).await;
    assert_eq!((s, code(&v)), (403, "revoked"), "the revocation made while mixed holds: {v}");
}

/// No downgrade (a review of 2026-12-07): after a rolling upgrade to the next rules, a host
/// starting an enclave of the previous release (which the release signer still admits) had
/// it join, be promoted, and hold every signing request of the cluster refused for as long as
/// it ran. Its join is refused now; the cluster signs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_of_older_rules_never_joins_and_signing_goes_on() {
    let next = (RULES_VERSION + 1).to_string();
    let mut c = Cluster::start_with(3, &["--dev-rules-version", next.as_str()]).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let older = c.add_node(&[]).await;
    c.start_node(older, false);
    let t0 = Instant::now();
    let mut nonce = 0;
    while t0.elapsed() < Duration::from_secs(15) {
        let (s, v, _) = c.client().sign_until_decided(0, &transfer(&g, nonce, 1), Duration::from_secs(30)).await;
        assert_eq!(s, 200, "{v}");
        nonce += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let info = c.info(older).await.unwrap();
    assert_eq!(info["ready"], false, "{info}");
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let members = c.info(l).await.unwrap()["members"].clone();
    assert!(
        members.as_array().unwrap().iter().all(|m| m["rules"].as_u64() == Some(u64::from(RULES_VERSION) + 1)),
        "{members}"
    );
}

/// A membership naming two versions refuses what decides whoever proposes it — a leader of
/// an image from before versions (0) too, whose entries once matched every node's version,
/// so nodes of two versions each applied them under their own rules (a review of 2026-12-07).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_from_before_versions_cannot_decide_among_two_versions() {
    let next = (RULES_VERSION + 1).to_string();
    let mut c = Cluster::start_with(3, &["--dev-rules-version", "0"]).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    for extra in [vec![], vec!["--dev-rules-version", next.as_str()]] {
        let n = c.add_node(&extra).await;
        c.start_node(n, false);
        c.wait_ready(n, Duration::from_secs(90)).await;
    }
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let info = c.info(l).await.unwrap();
    assert_eq!(info["rules"], 0, "a version-0 node leads: {info}");
    let (s, v) = c.client().post(l, "/v1/sign", &transfer(&g, 0, 10)).await;
    assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
    assert!(v.to_string().contains("cluster.rules_version"), "{v}");
}
