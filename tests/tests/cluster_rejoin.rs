//! A node whose enclave dies early rejoins (README, "High availability"): the founder's
//! host, which was given no seeds (`--cluster-bootstrap`), must still find the members
//! for its restarted enclave — even when the enclave died before the host had asked it
//! who the members are.

use bridle_tests::cluster::{cap_policy, loopback_aliases_work, signer_of, source_ip, transfer, Cluster};
use bridle_tests::Actor;
use serde_json::Value;
use std::time::{Duration, Instant};

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

/// Whether node id `id` is a member in the view of the leader of the highest term.
async fn member_in_leaders_view(c: &Cluster, id: u64) -> bool {
    let mut best: Option<(u64, Value)> = None;
    for i in 0..c.nodes.len() {
        if let Some(v) = c.info(i).await.filter(|v| v["role"] == "leader") {
            let t = v["term"].as_u64().unwrap_or(0);
            if best.as_ref().is_none_or(|(bt, _)| t > *bt) {
                best = Some((t, v));
            }
        }
    }
    best.and_then(|(_, v)| v["members"].as_array().map(|m| m.iter().any(|m| m["node_id"] == id))).unwrap_or(false)
}

/// A removed node that keeps granting another removed node's candidacies still asks to be
/// taken again (a review of 2026-12-06: a granted vote counted as a leader heard). Five
/// voters; a and b cut off together, b's log one entry longer; both dropped. Then a reaches
/// everyone again while b (still standing for election in its old config) reaches only a:
/// a grants b's votes, and must still be taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_node_granting_a_stale_candidates_votes_still_asks_again() {
    assert!(loopback_aliases_work(5), "loopback addresses 127.0.0.10-14 must be usable as sources");
    let c = Cluster::start(5).await;
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let cut: Vec<usize> = (0..5).filter(|i| *i != l).take(2).collect();
    let (a, b) = (cut[0], cut[1]);
    let rest: Vec<usize> = (0..5).filter(|i| !cut.contains(i)).collect();
    let rest_ips: Vec<_> = rest.iter().map(|i| source_ip(*i)).collect();
    let ida = c.info(a).await.and_then(|v| v["node_id"].as_u64()).expect("a's id");
    let idb = c.info(b).await.and_then(|v| v["node_id"].as_u64()).expect("b's id");
    // a alone cut off while an entry commits: b's log is longer than a's.
    c.nodes[a].proxy.block(true, &[]);
    for o in (0..5).filter(|i| *i != a) {
        c.nodes[o].proxy.block(false, &[source_ip(a)]);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.grant(l, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    // a and b reach only each other, until both are dropped.
    c.nodes[a].proxy.block(false, &rest_ips);
    c.nodes[b].proxy.block(false, &rest_ips);
    for &o in &rest {
        c.nodes[o].proxy.block(false, &[source_ip(a), source_ip(b)]);
    }
    c.wait_removed(ida, Duration::from_secs(60)).await;
    c.wait_removed(idb, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    // a reaches everyone; b reaches only a.
    c.nodes[a].proxy.heal();
    for &o in &rest {
        c.nodes[o].proxy.block(false, &[source_ip(b)]);
    }
    let t0 = Instant::now();
    while !member_in_leaders_view(&c, ida).await {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "a, healed, reaches the whole cluster but was not taken again within 60 s\n{}",
            c.describe().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
