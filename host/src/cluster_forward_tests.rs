//! Tests of forwarding calls to a peer host and following the members (`cluster.rs`).

use super::*;

/// A review of 2026-12-06: a peer's answer to a forwarded call was read whole, however
/// large. Over a node's largest answer it is refused while it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_answer_is_read_only_up_to_a_nodes_largest() {
    use axum::{body::Body, routing::post, Router};
    let endless = || async {
        let chunk = axum::body::Bytes::from(vec![0u8; 1 << 20]);
        let chunks = futures_util::stream::repeat(chunk).take(64).map(Ok::<_, std::io::Error>);
        Body::from_stream(chunks)
    };
    use futures_util::StreamExt;
    let url = serve(Router::new().route("/v1/cluster/call", post(endless))).await;
    match link().forward(&url, &status(), Duration::from_secs(30)).await {
        Err(ClientError::Protocol(e)) => assert!(e.contains(&format!("over {MAX_FORWARDED_ANSWER} bytes")), "{e}"),
        other => panic!("read a 64 MiB answer: {other:?}"),
    }
}

/// A peer's answer in a frame of another protocol version is refused, as one from this
/// host's own enclave is.
#[tokio::test]
async fn a_peers_answer_of_another_protocol_version_is_refused() {
    use axum::{routing::post, Router};
    let answer = || async {
        let nl = bridle_common::cluster::NotLeader { leader: None, leader_url: None };
        to_cbor(&ResponseFrame { version: PROTOCOL_VERSION + 1, result: Ok(Reply::NotLeader(nl)) }).unwrap()
    };
    let url = serve(Router::new().route("/v1/cluster/call", post(answer))).await;
    match link().forward(&url, &status(), Duration::from_secs(5)).await {
        Err(ClientError::Protocol(e)) => assert!(e.contains("protocol version"), "{e}"),
        other => panic!("took an answer of another version: {other:?}"),
    }
}

/// A forwarded call of another protocol version is refused, never framed again in
/// this host's (its enclave is not asked).
#[tokio::test]
async fn a_forwarded_call_of_another_protocol_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let st = crate::test_fakes::host(dir.path().join("nobody.sock"), Some(vec![]));
    let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION + 1, call: status() }).unwrap();
    let r = call(axum::extract::State(st), body.into()).await;
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let frame: ResponseFrame = bridle_common::frame::from_cbor(&bytes).unwrap();
    match frame.result {
        Err(d) => assert!(d.code == ErrorCode::Unsupported && d.reason.contains("protocol version"), "{d:?}"),
        other => panic!("{other:?}"),
    }
}

/// The peers are the seeds and the members the enclave lists now: a member the cluster
/// forgot (a review of 2026-12-06: learners at host-chosen URLs) is no longer called,
/// after FORGET_PEER_AFTER.
#[test]
fn the_peers_follow_the_members_and_keep_the_seeds() {
    let mut settings = link().settings.clone();
    settings.seeds = vec!["http://seed/".into()];
    let l = ClusterLink::new(settings).unwrap();
    let urls = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    l.learn_at(urls(&["http://127.0.0.1:9", "http://a", "http://b/", "http://x/?q"]), at(0));
    assert_eq!(l.peers(), urls(&["http://seed", "http://a", "http://b"]), "a URL with a query is never taken");
    // `a` is no longer listed: still called for FORGET_PEER_AFTER (an enclave replaying
    // the log lists older memberships meanwhile), then forgotten.
    l.learn_at(urls(&["http://127.0.0.1:9/", "http://b", "http://c"]), at(1));
    assert_eq!(l.peers(), urls(&["http://seed", "http://b", "http://c", "http://a"]));
    l.learn_at(urls(&["http://b", "http://c"]), at(1 + FORGET_PEER_AFTER.as_secs() - 1));
    assert_eq!(l.peers(), urls(&["http://seed", "http://b", "http://c", "http://a"]));
    l.learn_at(urls(&["http://b", "http://c"]), at(1 + FORGET_PEER_AFTER.as_secs()));
    assert_eq!(l.peers(), urls(&["http://seed", "http://b", "http://c"]));
    // Listed again, then absent again: its time counts anew.
    l.learn_at(urls(&["http://b"]), at(1000));
    l.learn_at(urls(&["http://b", "http://c"]), at(1001));
    l.learn_at(urls(&["http://b"]), at(1002));
    l.learn_at(urls(&["http://b"]), at(1002 + FORGET_PEER_AFTER.as_secs() - 1));
    assert_eq!(l.peers(), urls(&["http://seed", "http://b", "http://c"]));
    // A node still joining lists no members: what was known stays.
    l.learn_at(urls(&[]), at(5000));
    l.learn_at(urls(&["http://127.0.0.1:9"]), at(5000));
    assert_eq!(l.peers(), urls(&["http://seed", "http://b", "http://c"]));
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

fn link() -> ClusterLink {
    ClusterLink::new(ClusterSettings {
        listen: "127.0.0.1:0".into(),
        advertise: "http://127.0.0.1:9".into(),
        seeds: vec![],
        bootstrap: false,
        source: None,
    })
    .expect("the link")
}

fn status() -> Call {
    Call::Status(bridle_common::protocol::StatusQuery { session: None, nonce: None, held: None })
}
