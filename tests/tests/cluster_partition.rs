//! A partition isolates the cluster's leader (README, "High availability"): the minority
//! side signs nothing, the majority elects a leader and serves; once healed, what the
//! minority was asked was never charged (asked again, it is decided afresh).

use bridle_tests::cluster::{cap_policy, loopback_aliases_work, source_ip, transfer, Cluster};
use bridle_tests::Actor;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_minority_signs_nothing_and_the_majority_serves() {
    assert!(loopback_aliases_work(3), "loopback addresses 127.0.0.10-12 must be usable as sources");
    let c = Cluster::start(3).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let client = c.client();
    // A first signature before the partition.
    let (s, v, _) = client.sign_until_decided(0, &transfer(&g, 0, 1), Duration::from_secs(20)).await;
    assert_eq!(s, 200, "{v}");

    let l = c.wait_leader(Duration::from_secs(10)).await;
    let others: Vec<usize> = (0..3).filter(|i| *i != l).collect();
    // Cut the leader off: nobody reaches it, it reaches nobody.
    c.nodes[l].proxy.block(true, &[]);
    for &o in &others {
        c.nodes[o].proxy.block(false, &[source_ip(l)]);
    }
    // Connections already open are broken within 50 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The isolated side: its host can reach neither a majority nor another host.
    let minority: Vec<_> = (1..=3).map(|n| transfer(&g, n, 1)).collect();
    for req in &minority {
        let (s, v) = client.post(l, "/v1/sign", req).await;
        assert_ne!(s, 200, "the minority signed: {v}");
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
    }

    // The majority elects a leader of its own and serves.
    let mut signed = 1;
    for n in 10..15 {
        let (s, v, _) = client.sign_until_decided(others[0], &transfer(&g, n, 1), Duration::from_secs(30)).await;
        assert_eq!(s, 200, "{v}");
        signed += 1;
    }
    // The isolated node may still believe it leads (it cannot commit anything): the leader
    // that serves is on the majority side.
    let mut new_leader = None;
    for &o in &others {
        if c.info(o).await.is_some_and(|v| v["role"] == "leader") {
            new_leader = Some(o);
        }
    }
    let new_leader = new_leader.expect("a leader on the majority side");

    // Heal. The old leader follows; the minority's requests were never committed: asked
    // again with their stamps, each is decided now, once.
    c.nodes[l].proxy.heal();
    for &o in &others {
        c.nodes[o].proxy.heal();
    }
    c.wait_voters(3, Duration::from_secs(60)).await;
    for req in &minority {
        let (s, v, _) = client.sign_until_decided(l, req, Duration::from_secs(30)).await;
        assert_eq!(s, 200, "{v}");
        signed += 1;
    }
    let (s, v) = c.get(new_leader, &format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session"]["uses"], signed, "every signature charged once, nothing else: {v}");
}
