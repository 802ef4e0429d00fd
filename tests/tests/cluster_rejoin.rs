//! A node whose enclave dies early rejoins (README, "High availability"): the founder's
//! host, which was given no seeds (`--cluster-bootstrap`), must still find the members
//! for its restarted enclave — even when the enclave died before the host had asked it
//! who the members are.

use bridle_tests::cluster::{cap_policy, signer_of, transfer, Cluster};
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
