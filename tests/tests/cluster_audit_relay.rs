//! In a cluster only the leader's node serves the audit log, so every other host pulls its
//! copy through the leader's host — untrusted like every host. That host answering a batch
//! from entry k + 1 made the other host record entry k as dropped by the enclave, for good
//! (a review of 2026-12-06). The enclave's signed head now says where its window starts, and
//! a host records a gap only where it does.

use bridle_common::audit::{verify_chain, AuditExport};
use bridle_common::protocol::{Call, Reply};
use bridle_tests::cluster::{cap_policy, transfer, wait_until, Cluster};
use bridle_tests::cluster_mitm::ClusterMitm;
use bridle_tests::Actor;
use serde_json::Value;
use std::time::Duration;

/// The follower's host's view of its audit copy: (sync state, sync error, gaps, head seq).
async fn copy(c: &Cluster, i: usize) -> (String, String, Vec<Value>, Option<u64>) {
    let (s, v) = c.get(i, "/v1/audit?since=0&limit=1").await;
    assert_eq!(s, 200, "{v}");
    (
        v["sync"]["state"].as_str().unwrap_or_default().to_string(),
        v["sync"]["error"].as_str().unwrap_or_default().to_string(),
        v["gaps"].as_array().cloned().unwrap_or_default(),
        v["head"]["seq"].as_u64(),
    )
}

/// The head of the leader's host's copy (pulled from its own enclave when asked).
async fn leader_head(c: &Cluster) -> u64 {
    let (s, v) = c.get(0, "/v1/audit?since=0&limit=1").await;
    assert_eq!(s, 200, "{v}");
    v["head"]["seq"].as_u64().unwrap_or_else(|| panic!("the leader's host has the log: {v}"))
}

/// Wait until node 1's host's copy reaches `want`, in sync, with no gap.
async fn caught_up(c: &Cluster, want: u64) {
    wait_until(Duration::from_secs(30), Duration::from_millis(200), || async {
        match copy(c, 1).await {
            (state, _, gaps, Some(seq)) if state == "ok" && gaps.is_empty() && seq >= want => Ok(()),
            other => Err(format!("node 1's copy: {other:?}, the leader's head at {want}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leaders_host_cannot_cut_entries_out_of_another_hosts_audit_copy() {
    let mut c = Cluster::empty();
    c.host_env.push(("BRIDLE_CLUSTER_RELAY".into(), "http".into()));
    c.add_node(&[]).await;
    c.add_node(&[]).await;
    // Node 0 founds the cluster (its leader) and tells the others to reach it through the
    // relay: every call node 1's host forwards to the leader passes through it.
    let mitm = ClusterMitm::start(&c.nodes[0].peer_url()).await;
    c.nodes[0].advertise = Some(mitm.url());
    c.start_node(0, true);
    c.wait_ready(0, Duration::from_secs(30)).await;
    c.start_node(1, false);
    c.wait_voters(2, Duration::from_secs(60)).await;
    assert_eq!(c.leader().await, Some(0), "{}", c.describe().await);

    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(1_000_000)).await;
    let client = c.client();
    let mut nonce = 0;
    let mut sign = async |n: u64| {
        for _ in 0..n {
            let (s, v, _) = client.sign_until_decided(0, &transfer(&g, nonce, 1), Duration::from_secs(20)).await;
            assert_eq!(s, 200, "{v}");
            nonce += 1;
        }
    };
    sign(3).await;

    // Relayed honestly, node 1's host copies the log as the leader's host holds it.
    let want = leader_head(&c).await;
    caught_up(&c, want).await;

    // The leader's host now cuts the first entry out of every batch of two or more it
    // relays: a batch from k + 1 for a host that asked from k.
    mitm.rewrite(|call, reply| match (call, reply) {
        (Call::Audit(q), Reply::Audit(a)) if q.since > 0 && q.since != u64::MAX && a.entries.len() >= 2 => {
            a.entries.remove(0);
            true
        }
        _ => false,
    });
    let mut refused = None;
    for _ in 0..20 {
        sign(5).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (state, error, gaps, _) = copy(&c, 1).await;
        assert!(gaps.is_empty(), "a cut batch recorded as entries the enclave dropped: {gaps:?}");
        if mitm.rewritten() > 0 && state == "refused" {
            refused = Some(error);
            break;
        }
    }
    let error = refused.unwrap_or_else(|| panic!("no cut batch was refused ({} rewritten)", mitm.rewritten()));
    assert!(error.contains("not a gap the enclave made"), "{error}");

    // Relayed honestly again, the copy catches up: every entry, no gap, complete.
    mitm.honest();
    sign(2).await;
    let want = leader_head(&c).await;
    caught_up(&c, want).await;
    let r = c.http.get(format!("{}/v1/audit/export", c.nodes[1].api)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ex: AuditExport = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let summary = verify_chain(&ex.entries, &ex.head, ex.enclave, None).expect("node 1's copy verifies");
    assert!(summary.head_seq >= want, "{} entries, head at {}", ex.entries.len(), summary.head_seq);
}
