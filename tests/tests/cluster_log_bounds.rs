//! What the cluster's log may hold is bounded in bytes, not only in entries: a request
//! larger than a call may be (`MAX_CALL_FRAME`) is refused before the log, and once the
//! entries since the last snapshot hold more than `--cluster-snapshot-bytes`, every node
//! takes a snapshot and drops them — here long before the entry count would.

use bridle_common::protocol::SignPayload;
use bridle_tests::cluster::{cap_policy, stamped, Cluster};
use bridle_tests::{code, Actor};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_entries_make_every_node_snapshot_and_oversized_calls_stay_out() {
    // A snapshot every 100 000 entries, or every 2 MiB of entries.
    let mut c =
        Cluster::start_with(3, &["--cluster-snapshot-logs", "100000", "--cluster-snapshot-bytes", "2097152"]).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let applied = |v: &serde_json::Value| v["last_applied"].as_u64().unwrap_or(0);
    let before = applied(&c.info(l).await.unwrap());
    for i in 0..3 {
        let v = c.info(i).await.unwrap();
        assert!(v["snapshot"].as_u64().unwrap_or(0) <= before, "{v}");
    }

    // Over the bound for a call: refused, and nothing reaches the log.
    let req = stamped(&g, SignPayload::Message(vec![1u8; 200_000].into()));
    let (s, v) = c.client().post(l, "/v1/sign", &req).await;
    assert_eq!(code(&v), "too_large", "{s} {v}");
    assert!(v.to_string().contains("a cluster node serves at most 131072"), "{v}");
    assert_eq!(applied(&c.info(l).await.unwrap()), before, "the oversized call was not proposed");

    // Refused requests of ≈ 100 KB each (a message over its bound), which a leader logs
    // (within its bound on refusals) so that every node audits the same: 40 of them are
    // ≈ 4 MB of log.
    for i in 0..40u8 {
        let mut m = vec![i; 100_000];
        m[1] = 0xee;
        let req = stamped(&g, SignPayload::Message(m.into()));
        let (s, v) = c.client().post(l, "/v1/sign", &req).await;
        assert!(s >= 400, "{s} {v}");
    }
    let after = applied(&c.info(l).await.unwrap());
    assert!(after >= before + 30, "the refusals were logged: {before} → {after}");
    // Every node snapshots past the first 2 MiB of them (≈ 21 entries).
    for i in 0..3 {
        c.wait(Duration::from_secs(20), Duration::from_millis(100), || {
            let c = &c;
            async move {
                let v = c.info(i).await.ok_or("no info")?;
                let snap = v["snapshot"].as_u64().unwrap_or(0);
                if snap >= before + 20 {
                    Ok(())
                } else {
                    Err(format!("node {i}: snapshot at {snap}, the refusals start after {before}"))
                }
            }
        })
        .await;
    }
    c.kill_enclave(l);
}
