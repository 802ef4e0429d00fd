//! A node whose enclave dies early rejoins (README, "High availability"): the founder's
//! host, which was given no seeds (`--cluster-bootstrap`), must still find the members
//! for its restarted enclave — even when the enclave died before the host had asked it
//! who the members are.

use bridle_tests::cluster::{cap_policy, loopback_aliases_work, signer_of, source_ip, transfer, Cluster};
use bridle_tests::Actor;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_founders_enclave_killed_at_once_rejoins() {
    let mut c = Cluster::start(3).await;
    // At once: the founder's host may not have learned the members from its enclave yet.
    c.kill_enclave(0);
    c.restart_enclave(0);
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let g = c.grant(l, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    c.wait_voters(3, Duration::from_secs(60)).await;
    c.wait_ready(0, Duration::from_secs(30)).await;
    let client = c.client();
    let (status, v, _) = client.sign_until_decided(0, &transfer(&g, 0, 1), Duration::from_secs(30)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(signer_of(&v), g.session);
}

/// Joins landing while the leader promotes earlier joiners: openraft changes voters in two
/// entries, and a learner's entry between them used to leave the config joint for good
/// (the leader's upkeep waited for it to end by itself), so later joiners were never
/// promoted. Four nodes start behind a founder: at once, then spread over the leader's
/// upkeep period (the race's window is milliseconds wide, so this test may pass without the
/// fix; `cluster::upkeep`'s unit tests pin the decision itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_that_join_during_a_promotion_all_become_voters() {
    for spacing in [0, 70, 130] {
        let mut c = Cluster::start(1).await;
        for i in 1..5 {
            c.add_node(&[]).await;
            c.start_node(i, false);
            tokio::time::sleep(Duration::from_millis(spacing)).await;
        }
        c.wait_voters(5, Duration::from_secs(60)).await;
        let l = c.wait_leader(Duration::from_secs(30)).await;
        let g = c.grant(l, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
        let (status, v, _) = c.client().sign_until_decided(l, &transfer(&g, 0, 1), Duration::from_secs(30)).await;
        assert_eq!(status, 200, "{v}");
    }
}

/// A voter dropped while cut off — a partition, a long pause — is alive with the cluster's
/// state, but nothing reaches it any more, not even the entry that dropped it. It used to
/// wait for good (its candidacies refused) until its enclave restarted. Now, hearing from no
/// leader for `joining::REJOIN_AFTER`, it asks to be taken again, with the same node id
/// (its enclave never restarted), and is a voter again once caught up; signing through its
/// host works throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voter_dropped_while_cut_off_is_taken_again_once_healed() {
    assert!(loopback_aliases_work(4), "loopback addresses 127.0.0.10-13 must be usable as sources");
    let c = Cluster::start(4).await;
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let x = (0..4).find(|i| *i != l).unwrap();
    let others: Vec<usize> = (0..4).filter(|i| *i != x).collect();
    let id = c.info(x).await.and_then(|v| v["node_id"].as_u64()).expect("node id");

    // Cut x off: four voters, so the leader drops it once dead (6 s) and keeps three.
    c.nodes[x].proxy.block(true, &[]);
    for &o in &others {
        c.nodes[o].proxy.block(false, &[source_ip(x)]);
    }
    c.wait_removed(id, Duration::from_secs(60)).await;
    c.wait_voters(3, Duration::from_secs(30)).await;
    let g = c.grant(others[0], &Actor::random(), &Actor::random(), &cap_policy(100)).await;

    // Heal: x is a voter again, the same node, and follows the cluster's leader.
    c.nodes[x].proxy.heal();
    for &o in &others {
        c.nodes[o].proxy.heal();
    }
    c.wait_voter(x, Duration::from_secs(90)).await;
    c.wait_voters(4, Duration::from_secs(30)).await;
    let mine = c.info(x).await.expect("x answers");
    assert_eq!(mine["node_id"].as_u64(), Some(id), "the same node, not a restarted one: {mine}");
    // What was granted while x was away reached it: its host signs for that session.
    let (status, v, _) = c.client().sign_until_decided(x, &transfer(&g, 0, 1), Duration::from_secs(30)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(signer_of(&v), g.session);
}
