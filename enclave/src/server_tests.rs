//! Tests of the enclave's socket server (`server.rs`).

use super::*;
use bridle_common::protocol::{AttestationReply, Reply};

#[tokio::test]
async fn a_call_that_panics_mid_way_is_an_internal_error() {
    let r = isolated(async {
        tokio::task::yield_now().await;
        Ok::<u8, Denial>(7)
    })
    .await;
    assert_eq!(r.unwrap(), 7);
    let r = isolated(async {
        tokio::task::yield_now().await;
        if std::hint::black_box(true) {
            panic!("a bug in the call");
        }
        Ok::<u8, Denial>(7)
    })
    .await;
    let d = r.unwrap_err();
    assert_eq!(d.code, ErrorCode::Internal);
    assert!(d.reason.contains("asking again with the same stamp"), "{d:?}");
}

// A cluster node's connection (`serve_concurrently`), with a stand-in for the node's
// calls: each frame body is a label, answered as a denial whose reason is that label.

fn answer(body: &[u8]) -> ResponseFrame {
    let label = String::from_utf8_lossy(body).into_owned();
    ResponseFrame { version: PROTOCOL_VERSION, result: Err(Denial::new(ErrorCode::Malformed, label)) }
}

fn frames(labels: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        push_frame(&mut out, l.as_bytes()).unwrap();
    }
    out
}

async fn read_answer<R: AsyncRead + Unpin>(r: &mut R) -> Result<Denial, FrameError> {
    let body = read_frame(r, 1 << 20).await?;
    let resp: ResponseFrame = from_cbor(&body).unwrap();
    Ok(resp.result.unwrap_err())
}

/// A bound on a test that would otherwise hang; not a measurement.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f).await.expect("the connection stalled")
}

/// The first call cannot finish before the second has run: served one after another,
/// they would never end. Its answer still comes first.
#[tokio::test]
async fn a_cluster_connection_serves_its_calls_at_once_and_answers_in_order() {
    let second_ran = Arc::new(tokio::sync::Notify::new());
    let (mut host, enclave) = tokio::io::duplex(1 << 16);
    let n = second_ran.clone();
    let call = move |body: Vec<u8>| {
        let n = n.clone();
        async move {
            match body.as_slice() {
                b"first" => n.notified().await,
                _ => n.notify_one(),
            }
            answer(&body)
        }
    };
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &ServerConfig::default()).await });
    host.write_all(&frames(["first".into(), "second".into()])).await.unwrap();
    let (a, b) = within(async { (read_answer(&mut host).await.unwrap(), read_answer(&mut host).await.unwrap()) }).await;
    assert_eq!((a.reason.as_str(), b.reason.as_str()), ("first", "second"));
    drop(host);
    within(server).await.unwrap();
}

/// At most `MAX_CONCURRENT_CALLS` of a connection's calls run at once: the next frame is
/// not read until one of them is answered. Every call is answered, in order.
#[tokio::test]
async fn a_cluster_connection_runs_at_most_its_bound_of_calls() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (r, m, rel) = (running.clone(), most.clone(), release.clone());
    let call = move |body: Vec<u8>| {
        let (r, m, rel) = (r.clone(), m.clone(), rel.clone());
        async move {
            m.fetch_max(r.fetch_add(1, SeqCst) + 1, SeqCst);
            rel.acquire().await.unwrap().forget();
            r.fetch_sub(1, SeqCst);
            answer(&body)
        }
    };
    let (mut host, enclave) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &ServerConfig::default()).await });
    let total = MAX_CONCURRENT_CALLS + 36;
    host.write_all(&frames((0..total).map(|i| i.to_string()))).await.unwrap();
    within(async {
        while running.load(SeqCst) < MAX_CONCURRENT_CALLS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Every frame is in the socket: a server without the bound would start more now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.load(SeqCst), MAX_CONCURRENT_CALLS);
    release.add_permits(total);
    for i in 0..total {
        assert_eq!(within(read_answer(&mut host)).await.unwrap().reason, i.to_string());
    }
    assert_eq!(most.load(SeqCst), MAX_CONCURRENT_CALLS);
    drop(host);
    within(server).await.unwrap();
}

/// The bodies of unanswered calls hold at most `max_frame` bytes together: with 1 000,
/// two calls of 400 bytes run at once, not three.
#[tokio::test]
async fn a_cluster_connection_holds_at_most_one_frame_of_unanswered_bodies() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let running = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (r, rel) = (running.clone(), release.clone());
    let call = move |body: Vec<u8>| {
        let (r, rel) = (r.clone(), rel.clone());
        async move {
            r.fetch_add(1, SeqCst);
            rel.acquire().await.unwrap().forget();
            answer(&body)
        }
    };
    let cfg = ServerConfig { max_frame: 1000, ..ServerConfig::default() };
    let (mut host, enclave) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &cfg).await });
    let labels: Vec<String> = (0..5).map(|i| format!("{i:0>400}")).collect();
    host.write_all(&frames(labels.clone())).await.unwrap();
    within(async {
        while running.load(SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(running.load(SeqCst), 2);
    release.add_permits(labels.len());
    for l in &labels {
        assert_eq!(&within(read_answer(&mut host)).await.unwrap().reason, l);
    }
    drop(host);
    within(server).await.unwrap();
}

/// A peer that goes away does not cut the calls it sent short: each is served to its
/// end (a cluster call may already be in the log).
#[tokio::test]
async fn a_cluster_connection_serves_every_call_to_its_end_after_its_peer_left() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let done = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (d, rel) = (done.clone(), release.clone());
    let call = move |body: Vec<u8>| {
        let (d, rel) = (d.clone(), rel.clone());
        async move {
            rel.acquire().await.unwrap().forget();
            d.fetch_add(1, SeqCst);
            answer(&body)
        }
    };
    let (mut host, enclave) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &ServerConfig::default()).await });
    host.write_all(&frames(["a", "b", "c"].map(String::from))).await.unwrap();
    tokio::task::yield_now().await;
    drop(host);
    // The first answer finds the peer gone; the other two calls still end.
    release.add_permits(1);
    within(async {
        while done.load(SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.add_permits(2);
    within(server).await.unwrap();
    assert_eq!(done.load(SeqCst), 3);
}

/// A host that stops sending still gets the answers to what it sent; a frame over the
/// limit is answered after the calls before it, and then the connection closes.
#[tokio::test]
async fn a_cluster_connection_answers_what_came_before_its_end() {
    let call = |body: Vec<u8>| async move {
        tokio::task::yield_now().await;
        answer(&body)
    };
    let cfg = ServerConfig { max_frame: 1024, ..ServerConfig::default() };
    // The host half-closes after three calls.
    let (host, enclave) = tokio::io::duplex(1 << 16);
    let (mut hr, mut hw) = tokio::io::split(host);
    let c = cfg.clone();
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &c).await });
    hw.write_all(&frames(["a", "b", "c"].map(String::from))).await.unwrap();
    hw.shutdown().await.unwrap();
    for l in ["a", "b", "c"] {
        assert_eq!(within(read_answer(&mut hr)).await.unwrap().reason, l);
    }
    assert!(matches!(within(read_answer(&mut hr)).await, Err(FrameError::Closed)));
    within(server).await.unwrap();
    // Two calls, then a length prefix over the limit (its body never sent).
    let (mut host, enclave) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &cfg).await });
    let mut bytes = frames(["x", "y"].map(String::from));
    bytes.extend_from_slice(&4096u32.to_be_bytes());
    host.write_all(&bytes).await.unwrap();
    for l in ["x", "y"] {
        assert_eq!(within(read_answer(&mut host)).await.unwrap().reason, l);
    }
    assert_eq!(within(read_answer(&mut host)).await.unwrap().code, ErrorCode::TooLarge);
    assert!(matches!(within(read_answer(&mut host)).await, Err(FrameError::Closed)));
    within(server).await.unwrap();
}

/// An answer is never larger than `max_answer` of the connection's frame limit (what the
/// memory plan counts, and what a host reads): a larger one is replaced by `too_large`,
/// and the connection goes on.
#[tokio::test]
async fn an_answer_larger_than_the_bound_is_refused_too_large() {
    let cfg = ServerConfig { max_frame: 1000, ..ServerConfig::default() };
    let bound = max_answer(1000);
    let call = |body: Vec<u8>| async move {
        let len: usize = String::from_utf8_lossy(&body).parse().unwrap();
        let document = vec![7u8; len].into();
        ResponseFrame { version: PROTOCOL_VERSION, result: Ok(Reply::Attestation(AttestationReply { document })) }
    };
    let (mut host, enclave) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move { serve_concurrently(call, enclave, &cfg).await });
    let sizes = [bound - 100, bound + 1, 10];
    host.write_all(&frames(sizes.iter().map(|n| n.to_string()))).await.unwrap();
    let mut got = Vec::new();
    for _ in sizes {
        let body = within(read_frame(&mut host, bound)).await.unwrap();
        assert!(body.len() <= bound, "{}", body.len());
        let resp: ResponseFrame = from_cbor_within(&body, usize::MAX).unwrap();
        got.push(match resp.result {
            Ok(Reply::Attestation(a)) => Ok(a.document.len()),
            Ok(other) => panic!("{other:?}"),
            Err(d) => Err((d.code, d.reason)),
        });
    }
    assert_eq!(got[0], Ok(bound - 100));
    let Err((code, reason)) = &got[1] else { panic!("{:?}", got[1]) };
    assert_eq!(*code, ErrorCode::TooLarge);
    assert!(reason.contains(&format!("an answer is at most {bound}")), "{reason}");
    assert_eq!(got[2], Ok(10), "the connection goes on");
    drop(host);
    within(server).await.unwrap();
}

/// Both connection loops (`serve_in_turn`, stand-alone; `serve_concurrently`, a node) append
/// answers with `push_response`: one over the bound becomes `too_large`, and the buffer
/// grows to what it holds, not to twice that.
#[test]
fn push_response_refuses_an_oversized_answer_and_grows_the_buffer_exactly() {
    let attestation = |len: usize| ResponseFrame {
        version: PROTOCOL_VERSION,
        result: Ok(Reply::Attestation(AttestationReply { document: vec![1u8; len].into() })),
    };
    let mut out = vec![0u8; 1000];
    out.truncate(10);
    push_response(&mut out, &attestation(500_000), 1000).unwrap();
    assert!(out.capacity() < 10 + 500_100, "capacity {}", out.capacity());
    let mut refused = Vec::new();
    push_response(&mut refused, &attestation(max_answer(1000) + 1), 1000).unwrap();
    let resp: ResponseFrame = from_cbor(&refused[4..]).unwrap();
    assert_eq!(resp.result.unwrap_err().code, ErrorCode::TooLarge);
}
