//! Learners that never catch up do not stay members (a review of 2026-12-06).
//!
//! Every boot of an enclave is a new node that asks to join; the leader adds it as a
//! learner. One host restarting its enclave, each boot unreachable once it joined, used to
//! add a member per boot, for good, on every node — each one a replication stream on the
//! leader that re-sent the state again and again. Now a join forgets the earlier boots at
//! its URL, the learners stay bounded, and a learner silent for
//! `upkeep::LEARNER_DEAD_AFTER` (30 s) is forgotten by the leader's upkeep.
//!
//! The attacker's host is played by a URL whose listener takes connections and drops them:
//! the node asks to join through its own host's outgoing connections, and nothing reaches it.

use bridle_tests::cluster::Cluster;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpListener;

/// A listener that accepts every connection and drops it at once.
async fn black_hole() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    tokio::spawn(async move {
        loop {
            let _ = l.accept().await;
        }
    });
    url
}

/// The members of node `i`'s view at `url`: (node id, voter).
fn members_at(info: &Value, url: &str) -> Vec<(u64, bool)> {
    info["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["peer_url"].as_str() == Some(url))
                .map(|m| (m["node_id"].as_u64().unwrap_or(0), m["voter"] == true))
                .collect()
        })
        .unwrap_or_default()
}

/// Start node `x` advertising `url` and wait until the leader lists a node at `url` other
/// than `not`; its id. The node is then stopped (a dead learner).
async fn boot_at(c: &mut Cluster, x: usize, url: &str, not: Option<u64>) -> u64 {
    c.nodes[x].advertise = Some(url.to_string());
    c.start_node(x, false);
    let id = c
        .wait(Duration::from_secs(60), Duration::from_millis(200), || async {
            let l = c.wait_leader(Duration::from_secs(30)).await;
            let info = c.info(l).await.unwrap_or_default();
            match members_at(&info, url).as_slice() {
                [(id, false)] if Some(*id) != not => Ok(*id),
                other => Err(format!("members at {url}: {other:?}")),
            }
        })
        .await;
    c.stop_node(x);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn learners_that_never_answer_are_forgotten_and_a_hosts_boots_replace_each_other() {
    let mut c = Cluster::start(3).await;
    c.wait_leader(Duration::from_secs(30)).await;
    let x = c.add_node(&[]).await;
    let (a, b) = (black_hole().await, black_hole().await);

    // Three boots at one URL: each join forgets the boot before it, so one member stays.
    let first = boot_at(&mut c, x, &a, None).await;
    let second = boot_at(&mut c, x, &a, Some(first)).await;
    let third = boot_at(&mut c, x, &a, Some(second)).await;
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let info = c.info(l).await.unwrap_or_default();
    assert_eq!(members_at(&info, &a), vec![(third, false)], "one learner for the host's URL: {info}");

    // A boot at another URL: two dead learners now, neither ever answering. Both are
    // forgotten once silent for 30 s, on every node (the membership is replicated).
    boot_at(&mut c, x, &b, None).await;
    c.wait(Duration::from_secs(120), Duration::from_millis(500), || async {
        for i in 0..3 {
            let info = c.info(i).await.unwrap_or_default();
            let left = (members_at(&info, &a), members_at(&info, &b));
            if !left.0.is_empty() || !left.1.is_empty() || info["members"].as_array().map_or(0, Vec::len) != 3 {
                return Err(format!("node {i} still lists {left:?}: {info}"));
            }
        }
        Ok(())
    })
    .await;

    // The cluster still serves: its three voters are untouched.
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let info = c.info(l).await.unwrap_or_default();
    let voters = info["members"].as_array().map_or(0, |m| m.iter().filter(|m| m["voter"] == true).count());
    assert_eq!(voters, 3, "{info}");
}
