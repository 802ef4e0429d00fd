//! A node founds its cluster or joins one, once (a review of 2026-12-05): a node whose join
//! was under way, told to found a cluster of its own, would have applied entries alone and
//! later taken its real cluster's entries on top of them. The real enclave, in cluster mode,
//! asked straight over its socket (no host: nothing carries its traffic, so a join waits).

use bridle_common::cluster::{ClusterCall, ClusterReply, ClusterStart};
use bridle_common::protocol::{Call, Reply};
use bridle_tests::cluster::Cluster;
use std::path::Path;
use std::time::{Duration, Instant};

fn call(socket: &Path, call: Call) -> Result<Reply, bridle_common::Denial> {
    let body = bridle_common::frame::to_cbor(&bridle_common::protocol::RequestFrame {
        version: bridle_common::protocol::PROTOCOL_VERSION,
        call,
    })
    .unwrap();
    bridle_tests::call_socket_raw(socket, &body)
}

fn start(socket: &Path, bootstrap: bool) -> Result<Reply, bridle_common::Denial> {
    let start =
        ClusterStart { advertise: "http://127.0.0.1:9".into(), seeds: vec!["http://127.0.0.1:7".into()], bootstrap };
    call(socket, Call::Cluster(ClusterCall::Start(start)))
}

fn role(socket: &Path) -> String {
    match call(socket, Call::Cluster(ClusterCall::Info)) {
        Ok(Reply::Cluster(ClusterReply::Info(i))) => i.role,
        other => panic!("info: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_founds_or_joins_never_both() {
    let mut c = Cluster { name: format!("test-start-{}", std::process::id()), ..Cluster::empty() };
    for i in 0..2 {
        c.add_node(&[]).await;
        c.spawn_enclave(i);
    }
    let (joiner, founder) = (c.nodes[0].socket.clone(), c.nodes[1].socket.clone());

    // Joining, then told to found: it goes on joining (before the fix it founded a cluster
    // of its own and led it).
    assert!(start(&joiner, false).is_ok());
    assert!(start(&joiner, true).is_ok(), "a start while joining is answered, not refused");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(role(&joiner), "joining");

    // Founded, then told to join: it joins nothing (since 2026-12-06 evening a ready node
    // only takes the seeds, for a join again of its own cluster), and it leads on.
    assert!(start(&founder, true).is_ok());
    let deadline = Instant::now() + Duration::from_secs(30);
    while role(&founder) != "leader" {
        assert!(Instant::now() < deadline, "the founder never led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(start(&founder, false).is_ok(), "a ready node takes its host's peers");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(role(&founder), "leader");
}
