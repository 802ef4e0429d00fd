//! A rolling upgrade of an enclave cluster to a new image (ATTESTATION.md, "Upgrades"):
//! nodes of the new image join because the cluster's configuration names their release
//! signer (PCR8); a session whose owner signed `allow_image` for the new image — or whose
//! policy names that release signer — moves with the nodes and keeps its address; a session
//! without either stays on the old image's nodes, and once none of them is left, nothing
//! can sign for it.

use alloy_primitives::{FixedBytes, B256};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::Policy;
use bridle_common::protocol::{image_digest, AllowImage, ImageAllowed, Sweep, UpdatePolicy};
use bridle_tests::cluster::{cap_policy, signer_of, transfer, Cluster};
use bridle_tests::{code, owner_action, sweep_terms, Actor, Granted};
use sha2::{Digest, Sha384};
use std::time::Duration;

const SIGNER: &str = "5e000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000005e";
const NEW_PCR0: &str =
    "0e000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000e";

fn mock_pcr(i: u8) -> Vec<u8> {
    Sha384::digest(format!("bridle mock enclave PCR{i}").as_bytes()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_upgrade_moves_only_the_sessions_their_owners_allowed() {
    let old = ["--release-pcr8", SIGNER, "--dev-pcr8", SIGNER];
    let new = ["--release-pcr8", SIGNER, "--dev-pcr8", SIGNER, "--dev-pcr0", NEW_PCR0];
    let new_image = image_digest(&hex::decode(NEW_PCR0).unwrap(), &mock_pcr(1), &mock_pcr(2));
    let mut c = Cluster::start_with(3, &old).await;
    let owner = Actor::random();
    let moving = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let staying = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;

    // The owner lets the new image hold `moving`'s key (the old leader attaches it, for
    // nodes of that image only).
    let st = c.status(0).await;
    let msg = OwnerAction {
        action: action::ALLOW_IMAGE.into(),
        enclave: st.identity_address,
        session: moving.session,
        agent: moving.agent.address,
        policyHash: B256::ZERO,
        subject: new_image,
        nonce: Actor::next_nonce(),
    };
    let body = AllowImage { auth: owner.sign_owner(&msg), session: moving.session, image: new_image };
    let (s, v) = c.post(1, &format!("/v1/owners/{}/allow-image", owner.address), &body).await;
    assert_eq!(s, 200, "{v}");
    let r: ImageAllowed = serde_json::from_value(v).unwrap();
    assert_eq!(r.sessions, vec![moving.session]);

    // Roll: each old node is replaced by a node of the new image.
    for old_node in 0..3 {
        let n = c.add_node(&new).await;
        c.start_node(n, false);
        c.wait_ready(n, Duration::from_secs(60)).await;
        c.wait_voter(n, Duration::from_secs(60)).await;
        assert_eq!(c.info(n).await.unwrap()["image"], hex::encode(new_image));
        // As an operator does: the replaced node is gone from the membership before the
        // next one is replaced (docs/high-availability.md, "Upgrades").
        let id = c.info(old_node).await.unwrap()["node_id"].as_u64().unwrap();
        c.kill_enclave(old_node);
        c.wait_removed(id, Duration::from_secs(60)).await;
    }

    // Only new-image nodes are left. The allowed session signs, with its address; the other
    // cannot be signed for: its key never left the old image.
    let client = c.client();
    let live = 3;
    let (s, v, _) = client.sign_until_decided(live, &transfer(&moving, 0, 1), Duration::from_secs(30)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(signer_of(&v), moving.session);
    let (s, v) = client.post(live, "/v1/sign", &transfer(&staying, 0, 1)).await;
    assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
    // Nor swept, even by its owner: a leader without the key signed a sweep's revocations
    // with a placeholder while every node recorded them as made, and an owner's sweep of a
    // revoked session destroyed the key where it was held (found 2026-12-04 by a review).
    let mut sweep =
        Sweep { session: staying.session, terms: vec![sweep_terms(31337, 0)], accounts: vec![], auth: None };
    let st = c.status(live).await;
    let msg =
        owner_action(action::SWEEP, st.identity_address, staying.session, staying.agent.address, sweep.terms_digest());
    sweep.auth = Some(owner.sign_owner(&msg));
    let (s, v) = client.post(live, &format!("/v1/sessions/{}/sweep", staying.session), &sweep).await;
    assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
    assert!(v.to_string().contains("may not hold this session's key"), "{v}");
}

/// The owner updates `g`'s policy to `p`, through node `i`'s host.
async fn update_policy(c: &Cluster, i: usize, g: &Granted, p: Policy) {
    let st = c.status(i).await;
    let mut msg = owner_action(action::UPDATE_POLICY, st.identity_address, g.session, g.agent.address, B256::ZERO);
    msg.policyHash = p.hash();
    let body = UpdatePolicy { session: g.session, policy: p, auth: g.owner.sign_owner(&msg) };
    let (s, v) = c.post(i, &format!("/v1/sessions/{}/policy", g.session), &body).await;
    assert_eq!(s, 200, "{v}");
}

/// A policy that names the release signer (`release_signers`) pre-authorizes every image
/// that signer signs: no `allow_image` per release. The key reaches a new node with the
/// session's creation or snapshot, or with the policy update that first names the signer;
/// an update that drops the signer makes the nodes that held the key only through it drop
/// it. After a full roll, exactly the sessions whose policy names the signer sign.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_naming_the_release_signer_moves_its_session_without_allow_image() {
    let old = ["--release-pcr8", SIGNER, "--dev-pcr8", SIGNER];
    let new = ["--release-pcr8", SIGNER, "--dev-pcr8", SIGNER, "--dev-pcr0", NEW_PCR0];
    let mut c = Cluster::start_with(3, &old).await;
    let owner = Actor::random();
    let mut naming = cap_policy(100);
    naming.release_signers = vec![FixedBytes::from_slice(&hex::decode(SIGNER).unwrap())];
    let at_grant = c.grant(0, &owner, &Actor::random(), &naming).await;
    let by_update = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let withdrawn = c.grant(0, &owner, &Actor::random(), &naming).await;
    let never = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;

    for old_node in 0..3 {
        let n = c.add_node(&new).await;
        c.start_node(n, false);
        c.wait_ready(n, Duration::from_secs(60)).await;
        c.wait_voter(n, Duration::from_secs(60)).await;
        if old_node == 0 {
            // A new-image node holds the keys now; the owner names the signer for one more
            // session (its update carries the key) and withdraws it from another (the new
            // node drops that key; later nodes never keep it).
            update_policy(&c, 1, &by_update, naming.clone()).await;
            let mut plain = cap_policy(100);
            plain.name = "no release signer".into();
            update_policy(&c, 1, &withdrawn, plain).await;
        }
        let id = c.info(old_node).await.unwrap()["node_id"].as_u64().unwrap();
        c.kill_enclave(old_node);
        c.wait_removed(id, Duration::from_secs(60)).await;
    }

    let client = c.client();
    let live = 3;
    for g in [&at_grant, &by_update] {
        let (s, v, _) = client.sign_until_decided(live, &transfer(g, 0, 1), Duration::from_secs(30)).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(signer_of(&v), g.session, "the session keeps its address");
    }
    for g in [&withdrawn, &never] {
        let (s, v) = client.post(live, "/v1/sign", &transfer(g, 0, 1)).await;
        assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
    }
}
