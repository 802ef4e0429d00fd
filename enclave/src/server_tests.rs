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

/// An attestor that tells when it is called, then waits until released (or 30 s, saying
/// so): a creation that holds the owner lock through a slow attestation.
struct HeldAttestor {
    entered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    gave_up: Arc<std::sync::atomic::AtomicBool>,
}

impl crate::Attestor for HeldAttestor {
    fn attest(&self, _: Option<Vec<u8>>, _: Option<Vec<u8>>, _: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
        let _ = self.entered.lock().unwrap().send(());
        if self.release.lock().unwrap().recv_timeout(Duration::from_secs(30)).is_err() {
            self.gave_up.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Err("the test's attestor".into())
    }
}

async fn ask(conn: &mut tokio::io::DuplexStream, call: Call) -> ResponseFrame {
    bridle_common::frame::write_frame(conn, &to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap())
        .await
        .unwrap();
    from_cbor(&within(read_frame(conn, 1 << 20)).await.unwrap()).unwrap()
}

/// A review of 2026-12-05: calls ran on the runtime's workers (as many as vCPUs), and a
/// creation holds the owner lock through its attestation, so a few owner calls in flight
/// stalled every other connection — signing included. Here one worker, and a creation
/// stuck in its attestation on the owner lane: signing and a status on other connections
/// are still served, the owner lane has no turn free, and the creation answers once
/// released.
#[test]
fn a_call_held_up_on_a_lock_does_not_stall_signing_or_reading() {
    use crate::service::room_tests::{creation, T0};
    use bridle_common::protocol::{SignPayload, SignRequest, StatusQuery};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let gave_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let attestor = HeldAttestor {
            entered: std::sync::Mutex::new(entered_tx),
            release: std::sync::Mutex::new(release_rx),
            gave_up: gave_up.clone(),
        };
        let clock = Box::new(crate::clock::FixedClock::new(T0));
        let e = Arc::new(Enclave::new(clock, Some(Box::new(attestor)), crate::Config::default()));
        let cfg = ServerConfig::default();
        let mut conns = Vec::new();
        for _ in 0..3 {
            let (near, far) = tokio::io::duplex(1 << 20);
            tokio::spawn(serve_connection(Service::Single(e.clone()), far, cfg.clone()));
            conns.push(near);
        }
        let [a, b, c] = &mut conns[..] else { unreachable!() };
        let create = RequestFrame { version: PROTOCOL_VERSION, call: Call::CreateSession(creation(&e, T0, 1)) };
        bridle_common::frame::write_frame(a, &to_cbor(&create).unwrap()).await.unwrap();
        // The creation is in its attestation, holding the owner lock and the owner lane
        // (and, before the lanes, the only worker).
        tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(20)))
            .await
            .unwrap()
            .expect("the creation reached its attestation");
        assert_eq!(cfg.lanes.free(), (0, 1), "the creation holds the owner lane's one turn");
        let sign = Call::SignIfAllowed(SignRequest {
            session: alloy_primitives::Address::repeat_byte(7),
            payload: SignPayload::Message(alloy_primitives::Bytes::from_static(b"hi")),
            stamp: bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: T0, mac: [2; 32] },
        });
        let signed = ask(b, sign).await;
        assert_eq!(signed.result.unwrap_err().code, ErrorCode::UnknownSession, "signing was served");
        let status = ask(c, Call::Status(StatusQuery { session: None, nonce: None, held: None })).await;
        assert!(matches!(status.result, Ok(Reply::Status(_))), "{status:?}");
        // Answered while the creation still held its lock: not after the attestor gave up.
        assert!(!gave_up.load(std::sync::atomic::Ordering::SeqCst), "signing waited for the creation");
        let _ = release_tx.send(());
        let body = within(read_frame(a, 1 << 20)).await.unwrap();
        let resp: ResponseFrame = from_cbor(&body).unwrap();
        assert!(matches!(resp.result, Ok(Reply::SessionCreated(_))), "{resp:?}");
        assert_eq!(cfg.lanes.free(), (1, 1), "the turn is given back");
    });
}

/// The workers serve signing only: a frame sent there that decodes as anything else is
/// refused, whatever its first bytes said.
#[test]
fn the_signing_lane_serves_nothing_but_signing() {
    let e = Enclave::new(Box::new(crate::clock::FixedClock::new(1_800_000_000)), None, crate::Config::default());
    let status = to_cbor(&RequestFrame {
        version: PROTOCOL_VERSION,
        call: Call::Status(bridle_common::protocol::StatusQuery { session: None, nonce: None, held: None }),
    })
    .unwrap();
    let d = handle_signing(&e, &status).expect("not busy").result.unwrap_err();
    assert_eq!(d.code, ErrorCode::Malformed);
    assert!(d.reason.contains("decodes as status"), "{d:?}");
    assert!(handle_frame(&e, &status).result.is_ok());
}

/// A review of 2026-12-05: a signing request waited for its session's lock on the runtime's
/// worker, and an owner call holds that lock through its work (a sweep signs up to ≈ 512
/// revocations in it): whoever owns a session could keep every worker waiting on it. Here
/// one worker, and the session's lock held elsewhere: signing for another session is
/// answered meanwhile, the busy session's request is answered busy (nothing decided) within
/// its patience, and asked again once the lock is free it is decided.
#[test]
fn a_session_whose_lock_is_held_does_not_hold_the_worker() {
    use crate::service::room_tests::{creation, T0};
    use bridle_common::protocol::{SignPayload, SignRequest};
    use bridle_common::stamp::StampKey;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let e = Arc::new(Enclave::new(Box::new(crate::clock::FixedClock::new(T0)), None, crate::Config::default()));
        let session = match e.handle(Call::CreateSession(creation(&e, T0, 1))).unwrap() {
            Reply::SessionCreated(c) => c.binding.session,
            other => panic!("unexpected {other:?}"),
        };
        // The creation's agent key ([nonce + 1; 32]), and a stamp that verifies: the request
        // gets as far as the session's lock.
        let agent = k256::SecretKey::from_slice(&[2u8; 32]).unwrap();
        let agent_addr =
            alloy_primitives::Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
        let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
        let stamp_key = StampKey::derive(&agent, &enclave_pk, session, agent_addr);
        let payload = SignPayload::Message(alloy_primitives::Bytes::from_static(b"gm"));
        let digest = bridle_common::payload::prepare(&payload).unwrap().stamp_digest();
        let stamp = stamp_key.stamp(session, payload.kind(), &digest, [9; 16], T0);
        // The session's lock held by another thread (as an owner call working on it would)
        // until released.
        let held = e.session_for_test(&session);
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _guard = held.lock();
            let _ = locked_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
        });
        locked_rx.recv_timeout(Duration::from_secs(20)).expect("the lock taken");
        // Each call on a connection of its own, its answer sent back over a standard channel
        // (waited for with the standard clock: were the only worker stuck, tokio's timers
        // would be too).
        let call = |c: Call| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (mut near, far) = tokio::io::duplex(1 << 20);
            tokio::spawn(serve_connection(Service::Single(e.clone()), far, ServerConfig::default()));
            tokio::spawn(async move {
                let frame = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: c }).unwrap();
                bridle_common::frame::write_frame(&mut near, &frame).await.unwrap();
                let body = read_frame(&mut near, 1 << 20).await.unwrap();
                let _ = tx.send(from_cbor::<ResponseFrame>(&body).unwrap());
            });
            rx
        };
        let request = SignRequest { session, payload, stamp };
        let mine = call(Call::SignIfAllowed(request.clone()));
        let other = call(Call::SignIfAllowed(SignRequest {
            session: alloy_primitives::Address::repeat_byte(7),
            payload: SignPayload::Message(alloy_primitives::Bytes::from_static(b"hi")),
            stamp: bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: T0, mac: [2; 32] },
        }));
        let answered = other.recv_timeout(Duration::from_secs(20));
        let busy = mine.recv_timeout(Duration::from_secs(20));
        let _ = release_tx.send(());
        let answered = answered.expect("signing for another session waited for the busy session's lock");
        assert_eq!(answered.result.unwrap_err().code, ErrorCode::UnknownSession);
        // The busy session's request: answered busy while its lock stayed held (nothing
        // decided: the host asks again), then, asked again once it is free, decided.
        let d = busy.expect("answered within its patience").result.unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::Unavailable, Some(crate::service::SESSION_BUSY)), "{d:?}");
        let started = std::time::Instant::now();
        let again = loop {
            let r = call(Call::SignIfAllowed(request.clone())).recv_timeout(Duration::from_secs(20)).unwrap();
            match r.result {
                Err(d) if d.rule.as_deref() == Some(crate::service::SESSION_BUSY) => {
                    assert!(started.elapsed() < Duration::from_secs(20), "still busy");
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        };
        let d = again.expect_err("the policy allows no messages");
        assert_ne!(d.code, ErrorCode::Replayed, "the busy answer spent the stamp: {d:?}");
        assert_ne!(d.code, ErrorCode::Unauthenticated, "{d:?}");
    });
}

/// Busy is never a refusal of its own: nothing is logged or counted for it.
#[test]
fn a_busy_session_refusal_changes_nothing() {
    use crate::service::room_tests::{creation, T0};
    use bridle_common::protocol::{SignPayload, SignRequest};
    let e = Enclave::new(Box::new(crate::clock::FixedClock::new(T0)), None, crate::Config::default());
    let session = match e.handle(Call::CreateSession(creation(&e, T0, 1))).unwrap() {
        Reply::SessionCreated(c) => c.binding.session,
        other => panic!("unexpected {other:?}"),
    };
    let agent = k256::SecretKey::from_slice(&[2u8; 32]).unwrap();
    let agent_addr = alloy_primitives::Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
    let stamp_key = bridle_common::stamp::StampKey::derive(&agent, &enclave_pk, session, agent_addr);
    let payload = SignPayload::Message(alloy_primitives::Bytes::from_static(b"gm"));
    let digest = bridle_common::payload::prepare(&payload).unwrap().stamp_digest();
    let stamp = stamp_key.stamp(session, payload.kind(), &digest, [9; 16], T0);
    let call = Call::SignIfAllowed(SignRequest { session, payload, stamp });
    let logged = || match e.handle(Call::Audit(bridle_common::protocol::AuditQuery { since: 0, nonce: None })) {
        Ok(Reply::Audit(r)) => r.head.end,
        other => panic!("unexpected {other:?}"),
    };
    let audit_before = logged();
    let held = e.session_for_test(&session);
    let guard = held.lock();
    let d = e.handle_waiting(call.clone(), crate::service::LockWait::Briefly).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some(crate::service::SESSION_BUSY));
    drop(guard);
    assert_eq!(logged(), audit_before, "nothing logged");
    // Served again where it may wait: decided as ever (the stamp not spent by the first try).
    let d = e.handle(call).unwrap_err();
    assert_ne!(d.code, ErrorCode::Replayed, "{d:?}");
}

// The listener (`accept_forever`): a failed accept never ends the server (a review of
// 2026-12-05: `listener.accept().await?` returned from `serve` on any error, the enclave
// exited, the init powered the machine off and every session key was lost).

/// A listener that fails as told, then gives the connections it was given, then waits.
struct ScriptedListener(std::sync::Mutex<std::collections::VecDeque<std::io::Result<tokio::io::DuplexStream>>>);

impl Listener for ScriptedListener {
    type Stream = tokio::io::DuplexStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        let next = self.0.lock().unwrap().pop_front();
        match next {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }
}

/// Linux's numbers (`errno.h`) for what a failed accept(2) reports when a resource is short
/// or the connection was lost before it was taken.
const ENOMEM: i32 = 12;
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const ECONNABORTED: i32 = 103;
const ENOBUFS: i32 = 105;

fn status_call() -> Call {
    Call::Status(bridle_common::protocol::StatusQuery { session: None, nonce: None, held: None })
}

#[test]
fn accept_errors_have_their_linux_numbers() {
    for (n, text) in [
        (ENOMEM, "Cannot allocate memory"),
        (ENFILE, "Too many open files in system"),
        (EMFILE, "Too many open files"),
        (ECONNABORTED, "Software caused connection abort"),
        (ENOBUFS, "No buffer space available"),
    ] {
        assert!(std::io::Error::from_raw_os_error(n).to_string().starts_with(text), "{n}");
    }
}

#[test]
fn a_failed_accept_is_tried_again_after_a_pause_that_grows_to_a_second() {
    let pauses: Vec<u128> = (1..=9).map(|n| accept_pause(n).as_millis()).collect();
    assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    assert_eq!(accept_pause(u32::MAX), ACCEPT_PAUSE_MAX);
    assert_eq!(accept_pause(0), ACCEPT_PAUSE_FIRST);
}

/// Every error accept(2) reports for a resource short or a connection lost — and one
/// unforeseen — is logged and tried again: the connections after them are served, and the
/// server is still accepting at the end.
#[tokio::test]
async fn the_server_serves_on_after_accept_errors() {
    let e =
        Arc::new(Enclave::new(Box::new(crate::clock::FixedClock::new(1_800_000_000)), None, crate::Config::default()));
    let (mut first, far1) = tokio::io::duplex(1 << 16);
    let (mut second, far2) = tokio::io::duplex(1 << 16);
    let os = std::io::Error::from_raw_os_error;
    let script = [
        Err(os(EMFILE)),
        Err(os(ENFILE)),
        Err(os(ENOMEM)),
        Err(os(ENOBUFS)),
        Err(os(ECONNABORTED)),
        Ok(far1),
        Err(std::io::Error::other("something unforeseen")),
        Ok(far2),
    ];
    let listener = ScriptedListener(std::sync::Mutex::new(script.into_iter().collect()));
    let server = tokio::spawn(accept_forever(listener, Service::Single(e), ServerConfig::default()));
    for conn in [&mut first, &mut second] {
        let status = ask(conn, status_call()).await;
        assert!(matches!(status.result, Ok(Reply::Status(_))), "{status:?}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!server.is_finished(), "the server ended");
    server.abort();
}

/// The review's case, with a real socket and a real EMFILE: `serve` in a process of its own
/// with every file descriptor taken, so accept(2) fails while a connection waits; once
/// descriptors are free again, that connection is served. (Before: `serve` returned the
/// error and the child exited.)
#[test]
fn serve_survives_running_out_of_file_descriptors() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        // Few descriptors, so that taking them all is quick (whatever the limit, all are taken).
        .arg("ulimit -S -n 128 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "server::tests::serve_out_of_file_descriptors_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1", "-q"])
        .env(FD_CHILD_SOCKET, &sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let wait_for = |prefix: &str| {
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("the child never said {prefix:?}; it said {seen:?}"),
            }
        }
    };
    let held = wait_for("holding");
    // Its accept fails now: this connection waits in the listen queue.
    let mut conn = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut frame = Vec::new();
    push_frame(&mut frame, &to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: status_call() }).unwrap())
        .unwrap();
    conn.write_all(&frame).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    if let Some(status) = child.try_wait().unwrap() {
        let said: Vec<String> = rx.try_iter().collect();
        panic!("the child ended ({status}) with its descriptors taken ({held}); it said {said:?}");
    }
    // It did try, and fail, to accept the connection (a review of 2026-12-06: without this
    // the test passed even had the child never called accept while its descriptors were
    // taken).
    let said: Vec<String> = rx.try_iter().collect();
    assert!(
        said.iter().any(|l| l.contains("accepting a connection failed") && l.contains("Too many open files")),
        "no accept failed while the descriptors were taken; the child said {said:?}"
    );
    assert!(said.iter().all(|l| l.contains("accepting a connection failed")), "the child said {said:?}");
    stdin.write_all(b"release\n").unwrap();
    wait_for("released");
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut len = [0u8; 4];
    conn.read_exact(&mut len).expect("an answer once descriptors are free");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    conn.read_exact(&mut body).unwrap();
    let resp: ResponseFrame = from_cbor(&body).unwrap();
    assert!(matches!(resp.result, Ok(Reply::Status(_))), "{resp:?}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Where [`serve_out_of_file_descriptors_child`] listens (set only in that child).
const FD_CHILD_SOCKET: &str = "BRIDLE_TEST_FD_CHILD_SOCKET";

#[test]
#[ignore = "the child process of serve_survives_running_out_of_file_descriptors"]
fn serve_out_of_file_descriptors_child() {
    use std::io::BufRead;
    let Some(sock) = std::env::var_os(FD_CHILD_SOCKET).map(std::path::PathBuf::from) else { return };
    // The accept loop's warnings, on stdout for the parent: it checks an accept did fail
    // while the descriptors were taken (otherwise the test would pass without one).
    let _ = tracing_subscriber::fmt().with_writer(std::io::stdout).with_ansi(false).without_time().try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let e =
        Arc::new(Enclave::new(Box::new(crate::clock::FixedClock::new(1_800_000_000)), None, crate::Config::default()));
    let path = sock.clone();
    rt.spawn(async move {
        let r = serve(Service::Single(e), SocketAddress::Unix(path), ServerConfig::default()).await;
        println!("serve returned {r:?}");
        std::process::exit(3);
    });
    while !sock.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut held = Vec::new();
    let err = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(err.raw_os_error(), Some(EMFILE), "{err}");
    println!("holding {} file descriptors", held.len());
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    drop(held);
    println!("released");
    // Serve until the parent is done (its end of stdin closes).
    while stdin.read_line(&mut line).unwrap() > 0 {}
}
