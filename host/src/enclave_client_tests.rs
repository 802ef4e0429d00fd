//! The enclave client against fake enclaves: the hybrid-vsock handshake, framed calls, and
//! a cancelled call's connection.
use super::*;
use bridle_common::frame::read_frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend that reads the CONNECT line, answers `reply`, then sends `after`.
async fn backend(
    reply: &'static [u8],
    after: &'static [u8],
) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<String>) {
    let (client, mut server) = tokio::io::duplex(256);
    let task = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while server.read(&mut b).await.unwrap() == 1 {
            got.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
        }
        server.write_all(reply).await.unwrap();
        server.write_all(after).await.unwrap();
        // Keep the stream open until the client is done reading.
        let _ = server.read(&mut b).await;
        String::from_utf8(got).unwrap()
    });
    (client, task)
}

#[tokio::test]
async fn handshake_sends_connect_and_leaves_the_stream_after_ok() {
    let (mut c, task) = backend(b"OK 1073741824\n", b"\x00\x00\x00\x02hi").await;
    hybrid_vsock_handshake(&mut c, 5000).await.unwrap();
    let mut frame = [0u8; 6];
    c.read_exact(&mut frame).await.unwrap();
    assert_eq!(&frame, b"\x00\x00\x00\x02hi", "bytes after the OK line are the guest's");
    drop(c);
    assert_eq!(task.await.unwrap(), "CONNECT 5000\n");
    let (mut c, _task) = backend(b"OK\n", b"").await;
    hybrid_vsock_handshake(&mut c, 1).await.unwrap();
}

#[tokio::test]
async fn handshake_refuses_anything_but_ok() {
    for (reply, expect) in [
        (&b"ERR no listener\n"[..], "expected \"OK"),
        (&b"OKAY\n"[..], "expected \"OK"),
        (&b""[..], "closed the connection"),
        (&[b'O'; 100][..], "longer than"),
    ] {
        let (mut c, _task) = backend(reply, b"").await;
        if reply.is_empty() {
            // The backend hangs up without a word.
            let (mut c2, s2) = tokio::io::duplex(64);
            drop(s2);
            let e = hybrid_vsock_handshake(&mut c2, 5000).await.unwrap_err();
            assert!(e.to_string().contains(expect) || e.kind() == std::io::ErrorKind::BrokenPipe, "{e}");
            continue;
        }
        let e = hybrid_vsock_handshake(&mut c, 5000).await.unwrap_err();
        assert!(e.to_string().contains(expect), "{reply:?}: {e}");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}

#[tokio::test]
async fn client_speaks_frames_through_a_hybrid_vsock_socket() {
    // A fake backend on a real Unix socket: handshake, then an enclave that answers
    // `status` (the first thing a new connection carries) with a malformed frame.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vm.vsock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while s.read(&mut b).await.unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        s.write_all(b"OK 1073741825\n").await.unwrap();
        let body = read_frame(&mut s, DEFAULT_MAX_FRAME).await.unwrap();
        let req: RequestFrame = from_cbor(&body).unwrap();
        write_frame(&mut s, b"\xff").await.unwrap();
        (String::from_utf8(line).unwrap(), req.call.name())
    });
    let addr: SocketAddress = format!("vsock-uds:{}:5000", path.display()).parse().unwrap();
    let client = EnclaveClient::new(addr, ClientConfig::default());
    let err = client.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err}");
    let (line, call) = server.await.unwrap();
    assert_eq!(line, "CONNECT 5000");
    assert_eq!(call, "status");
}

/// A call whose caller went away (here: its timeout) keeps its connection and its pool
/// permit until the enclave answered: the enclave serves the call to its end and holds a
/// connection slot meanwhile, so a new connection then would outnumber the pool.
#[tokio::test]
async fn a_cancelled_call_holds_its_connection_until_the_enclave_answers() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, m) = (open.clone(), most.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let o = o.clone();
            tokio::spawn(async move {
                // A node that has not joined: `status` is unavailable; any other call takes
                // 300 ms (as a cluster call waits for its commit), then is refused.
                while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let req: RequestFrame = from_cbor(&body).unwrap();
                    let result = match req.call {
                        Call::Status(_) => Err(Denial::new(ErrorCode::Unavailable, "not joined")),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Err(Denial::new(ErrorCode::Internal, "served"))
                        }
                    };
                    let resp = ResponseFrame { version: PROTOCOL_VERSION, result };
                    if write_frame(&mut s, &to_cbor(&resp).unwrap()).await.is_err() {
                        break;
                    }
                }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let cfg = ClientConfig { pool_size: 1, ..ClientConfig::default() };
    let client = EnclaveClient::new(SocketAddress::Unix(path), cfg);
    let info = || Call::Cluster(bridle_common::cluster::ClusterCall::Info);
    // The caller gives up while the enclave still works on the call.
    assert!(tokio::time::timeout(Duration::from_millis(50), client.call_direct(info())).await.is_err());
    // The next call waits for the permit: the first reply is read, its connection closed,
    // and only then a connection is made for this one.
    let r = client.call_direct(info()).await;
    assert!(matches!(&r, Err(ClientError::Denied(d)) if d.reason == "served"), "{r:?}");
    assert_eq!(most.load(Ordering::SeqCst), 1, "never more connections than the pool");
}

/// Each accepted connection runs `serve` (after answering `status`, the first call of every
/// connection, as a node that has not joined would: `unavailable`).
async fn fake_enclave<F, Fut>(serve: F) -> (tempfile::TempDir, SocketAddress, Arc<std::sync::atomic::AtomicUsize>)
where
    F: Fn(tokio::net::UnixStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let serve = serve.clone();
            tokio::spawn(async move {
                let body = read_frame(&mut s, DEFAULT_MAX_FRAME).await.unwrap();
                assert_eq!(from_cbor::<RequestFrame>(&body).unwrap().call.name(), "status");
                answer(&mut s, Err(Denial::new(ErrorCode::Unavailable, "not joined"))).await;
                serve(s).await;
            });
        }
    });
    (dir, SocketAddress::Unix(path), accepted)
}

async fn answer(s: &mut tokio::net::UnixStream, result: Result<Reply, Denial>) {
    let _ = write_frame(s, &to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap()).await;
}

/// A status call that names `i`, and the session it names, for telling replies apart.
fn ask(i: u8) -> Call {
    Call::Status(StatusQuery { session: Some(Address::repeat_byte(i)), nonce: None, held: None })
}

fn asked(body: &[u8]) -> Address {
    match from_cbor::<RequestFrame>(body).unwrap().call {
        Call::Status(q) => q.session.unwrap(),
        other => panic!("unexpected {}", other.name()),
    }
}

fn reason(r: Result<Reply, ClientError>) -> String {
    match r {
        Err(ClientError::Denied(d)) => d.reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Four calls in flight on one connection: the enclave reads all four before answering any
/// (it could not, were they sent one exchange at a time), answers in order, and each caller
/// gets the answer to its own request.
#[tokio::test]
async fn pipelined_calls_share_a_connection_and_each_gets_its_own_answer() {
    let (_dir, addr, accepted) = fake_enclave(|mut s| async move {
        loop {
            let mut got = Vec::new();
            for _ in 0..4 {
                match read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    Ok(b) => got.push(asked(&b)),
                    Err(_) => return,
                }
            }
            for a in got {
                answer(&mut s, Err(Denial::new(ErrorCode::Internal, format!("{a}")))).await;
            }
        }
    })
    .await;
    let client =
        Arc::new(EnclaveClient::new(addr, ClientConfig { pool_size: 1, pipeline: 4, ..ClientConfig::default() }));
    for round in 0..3u8 {
        let calls: Vec<_> = (1..=4u8)
            .map(|i| {
                let c = client.clone();
                tokio::spawn(async move { (i, reason(c.call_direct(ask(round * 4 + i)).await)) })
            })
            .collect();
        for t in calls {
            let (i, r) = t.await.unwrap();
            assert_eq!(r, format!("{}", Address::repeat_byte(round * 4 + i)), "call {i} got another call's answer");
        }
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one connection carried them all");
}

/// A caller that went away keeps its place in the connection's queue: its answer is read
/// and dropped, and the next caller gets its own.
#[tokio::test]
async fn a_cancelled_call_keeps_its_place_so_answers_do_not_shift() {
    let (_dir, addr, _) = fake_enclave(|mut s| async move {
        while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
            let a = asked(&b);
            tokio::time::sleep(Duration::from_millis(200)).await;
            answer(&mut s, Err(Denial::new(ErrorCode::Internal, format!("{a}")))).await;
        }
    })
    .await;
    let client = EnclaveClient::new(addr, ClientConfig { pool_size: 1, pipeline: 2, ..ClientConfig::default() });
    assert!(tokio::time::timeout(Duration::from_millis(50), client.call_direct(ask(1))).await.is_err());
    assert_eq!(reason(client.call_direct(ask(2)).await), format!("{}", Address::repeat_byte(2)));
    assert_eq!(reason(client.call_direct(ask(3)).await), format!("{}", Address::repeat_byte(3)));
}

/// The enclave goes away with two requests unanswered: both callers learn the connection
/// was lost and that nothing is re-sent; the next call goes over a new connection.
#[tokio::test]
async fn a_lost_connection_fails_what_was_sent_and_the_next_call_reconnects() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let first = Arc::new(AtomicBool::new(true));
    let (_dir, addr, accepted) = fake_enclave(move |mut s| {
        let first = first.swap(false, Ordering::SeqCst);
        async move {
            if first {
                // Read both requests, then hang up without a word.
                for _ in 0..2 {
                    let _ = read_frame(&mut s, DEFAULT_MAX_FRAME).await;
                }
                return;
            }
            while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                answer(&mut s, Err(Denial::new(ErrorCode::Internal, format!("{}", asked(&b))))).await;
            }
        }
    })
    .await;
    let client =
        Arc::new(EnclaveClient::new(addr, ClientConfig { pool_size: 1, pipeline: 2, ..ClientConfig::default() }));
    let (a, b) = (client.clone(), client.clone());
    let (ra, rb) = tokio::join!(a.call_direct(ask(1)), b.call_direct(ask(2)));
    for r in [ra, rb] {
        match r {
            Err(ClientError::Unavailable(why)) => assert!(why.contains("not retried"), "{why}"),
            other => panic!("expected the connection lost, got {other:?}"),
        }
    }
    assert_eq!(reason(client.call_direct(ask(3)).await), format!("{}", Address::repeat_byte(3)));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A connection the enclave closed while idle is replaced: the call goes through (over a
/// new connection, or sent again because writing to the closed one failed).
#[tokio::test]
async fn an_idle_connection_the_enclave_closed_is_replaced() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let first = Arc::new(AtomicBool::new(true));
    let (_dir, addr, accepted) = fake_enclave(move |mut s| {
        let first = first.swap(false, Ordering::SeqCst);
        async move {
            while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                answer(&mut s, Err(Denial::new(ErrorCode::Internal, format!("{}", asked(&b))))).await;
                if first {
                    return;
                }
            }
        }
    })
    .await;
    let client = EnclaveClient::new(addr, ClientConfig { pool_size: 1, pipeline: 4, ..ClientConfig::default() });
    assert_eq!(reason(client.call_direct(ask(1)).await), format!("{}", Address::repeat_byte(1)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(reason(client.call_direct(ask(2)).await), format!("{}", Address::repeat_byte(2)));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A caller that gives up while its connection is being made (the enclave slow to answer
/// `status`) leaves no phantom connection counted against the pool.
#[tokio::test]
async fn a_call_abandoned_while_connecting_leaves_the_pool_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let a = asked_or_status(&b);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    answer(&mut s, Err(Denial::new(ErrorCode::Unavailable, a))).await;
                }
            });
        }
    });
    let cfg = ClientConfig { pool_size: 1, pipeline: 1, call_timeout: Duration::from_secs(2), ..Default::default() };
    let client = EnclaveClient::new(SocketAddress::Unix(path), cfg);
    for _ in 0..3 {
        assert!(tokio::time::timeout(Duration::from_millis(50), client.call_direct(ask(1))).await.is_err());
    }
    assert_eq!(reason(client.call_direct(ask(2)).await), format!("{}", Address::repeat_byte(2)));
}

fn asked_or_status(body: &[u8]) -> String {
    match from_cbor::<RequestFrame>(body).unwrap().call {
        Call::Status(StatusQuery { session: Some(a), .. }) => format!("{a}"),
        _ => "status".into(),
    }
}

/// The cluster link of a member that knows no other member.
fn lone_member() -> Arc<ClusterLink> {
    Arc::new(
        ClusterLink::new(crate::cluster::ClusterSettings {
            listen: "127.0.0.1:0".into(),
            advertise: "http://127.0.0.1:9".into(),
            seeds: vec![],
            bootstrap: false,
            source: None,
        })
        .expect("the link"),
    )
}

/// A cluster node that answers every call `unavailable` (a leader that may not hold the
/// session's key, say), with no other member known: `call` passes it around until the call
/// timeout, `call_within` only for its limit; both end with the enclave's own refusal.
#[tokio::test]
async fn a_call_within_a_limit_stops_asking_the_cluster_at_the_limit() {
    let (_dir, addr, _) = fake_enclave(|mut s| async move {
        while read_frame(&mut s, DEFAULT_MAX_FRAME).await.is_ok() {
            answer(&mut s, Err(Denial::new(ErrorCode::Unavailable, "this cluster's leader may not hold the key")))
                .await;
        }
    })
    .await;
    let link = lone_member();
    let timeout = Duration::from_secs(2);
    let client =
        EnclaveClient::new(addr, ClientConfig { pool_size: 1, call_timeout: timeout, ..ClientConfig::default() })
            .with_cluster(link);

    let started = Instant::now();
    let r = client.call_within(ask(1), Duration::from_millis(300)).await;
    let within = started.elapsed();
    assert!(reason(r).contains("may not hold the key"));
    let started = Instant::now();
    let r = client.call(ask(2)).await;
    let whole = started.elapsed();
    assert!(reason(r).contains("may not hold the key"));
    // The limit, not the timeout, ends the first; the second runs to the timeout (less the
    // last pause between two tries, 100 ms).
    assert!(
        whole >= timeout - Duration::from_millis(150),
        "call gave up after {whole:?}, before the {timeout:?} timeout"
    );
    assert!(within < timeout / 2, "call_within took {within:?} with a 300 ms limit");
    // A limit beyond the timeout is the timeout.
    let started = Instant::now();
    let r = client.call_within(ask(3), Duration::from_secs(3600)).await;
    assert!(reason(r).contains("may not hold the key"));
    assert!(started.elapsed() < timeout * 3, "the timeout bounds call_within too");
}

/// The limit stops new tries, not the way to the leader: this host's enclave points to the
/// leader's host only after the limit (a stale leader that first waits to apply its log),
/// which is followed once, and the leader's host answers 600 ms later (as a leader
/// committing a sweep may), which is waited for; the caller gets the leader's answer, not
/// an `unavailable` of its own making while the call takes effect.
#[tokio::test]
async fn a_call_within_a_limit_waits_for_the_leaders_answer_under_way() {
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_url = format!("http://{}", peer.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/v1/cluster/call",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let result: Result<Reply, Denial> = Err(Denial::new(ErrorCode::Internal, "served by the leader"));
            to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap()
        }),
    );
    tokio::spawn(async move { axum::serve(peer, app).await.unwrap() });
    let url = peer_url.clone();
    let (_dir, addr, _) = fake_enclave(move |mut s| {
        let url = url.clone();
        async move {
            while read_frame(&mut s, DEFAULT_MAX_FRAME).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let nl = bridle_common::cluster::NotLeader { leader: Some(2), leader_url: Some(url.clone()) };
                answer(&mut s, Ok(Reply::NotLeader(nl))).await;
            }
        }
    })
    .await;
    let link = lone_member();
    let client = EnclaveClient::new(
        addr,
        ClientConfig { pool_size: 1, call_timeout: Duration::from_secs(5), ..ClientConfig::default() },
    )
    .with_cluster(link);
    let r = client.call_within(ask(1), Duration::from_millis(200)).await;
    assert_eq!(reason(r), "served by the leader");
}

/// An audit call with `since`.
fn audit(since: u64) -> Call {
    Call::Audit(bridle_common::protocol::AuditQuery { since, nonce: None })
}

/// The audit pull's calls (those that fetch entries) go on a connection of their own: an
/// answer built and read in turn there holds up no other call, and no other call's holds up
/// the pull. The fake enclave serves each connection in turn and never answers `ask(1)` nor
/// `audit(1)`.
#[tokio::test]
async fn audit_calls_have_a_connection_of_their_own() {
    let (_dir, addr, accepted) = fake_enclave(|mut s| async move {
        while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
            let said = match from_cbor::<RequestFrame>(&b).unwrap().call {
                Call::Status(q) if q.session == Some(Address::repeat_byte(1)) => None,
                Call::Status(q) => Some(format!("status {}", q.session.unwrap())),
                Call::Audit(q) if q.since == 1 => None,
                Call::Audit(q) => Some(format!("audit {}", q.since)),
                other => panic!("unexpected {}", other.name()),
            };
            match said {
                Some(said) => answer(&mut s, Err(Denial::new(ErrorCode::Internal, said))).await,
                None => std::future::pending().await,
            }
        }
    })
    .await;
    let soon = |c| tokio::time::timeout(Duration::from_secs(5), c);
    let config = ClientConfig { pool_size: 1, pipeline: 1, ..ClientConfig::default() };
    // The pool's only place held by a call the enclave does not answer: the pull's still go.
    let client = Arc::new(EnclaveClient::new(addr.clone(), config.clone()));
    let c = client.clone();
    let held = tokio::spawn(async move { c.call_direct(ask(1)).await });
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reason(soon(client.call_direct(audit(0))).await.unwrap()), "audit 0");
    assert_eq!(reason(soon(client.call_direct(audit(7))).await.unwrap()), "audit 7");
    assert!(!held.is_finished());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "one connection each");
    // The pull's connection held: every other call still goes.
    let client = Arc::new(EnclaveClient::new(addr, config));
    let c = client.clone();
    let pull = tokio::spawn(async move { c.call_direct(audit(1)).await });
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = Address::repeat_byte(2);
    assert_eq!(reason(soon(client.call_direct(ask(2))).await.unwrap()), format!("status {other}"));
    // A verifier's fresh head fetches no entries: it goes with the rest, not behind the pull.
    assert_eq!(reason(soon(client.call_direct(audit(u64::MAX))).await.unwrap()), format!("audit {}", u64::MAX));
    assert!(!pull.is_finished());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
}

/// A stand-alone enclave serves every call but signing one at a time per lane, and a
/// connection's calls in order (a review of 2026-12-05): a signing request pipelined behind
/// an owner call on the pool's connection waited for the owner lane, where creations from
/// anyone's keys queue. Here one pooled connection, and a fake enclave that never answers an
/// owner call: signing and a status still go, each on its own connection.
#[tokio::test]
async fn signing_never_waits_behind_an_owner_call_on_a_stand_alone_host() {
    use bridle_common::protocol::{OwnerAuth, Revoke, SignPayload, SignRequest};
    let (_dir, addr, accepted) = fake_enclave(|mut s| async move {
        while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
            let call = from_cbor::<RequestFrame>(&b).unwrap().call;
            if matches!(call, Call::Revoke(_)) {
                std::future::pending::<()>().await;
            }
            answer(&mut s, Err(Denial::new(ErrorCode::Internal, call.name()))).await;
        }
    })
    .await;
    let soon = |c| tokio::time::timeout(Duration::from_secs(5), c);
    let client =
        Arc::new(EnclaveClient::new(addr, ClientConfig { pool_size: 1, pipeline: 4, ..ClientConfig::default() }));
    let c = client.clone();
    let auth = OwnerAuth { owner: Address::repeat_byte(1), nonce: 1, signature: Default::default() };
    let held = tokio::spawn(async move { c.call_direct(Call::Revoke(Revoke { auth, session: Address::ZERO })).await });
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sign = Call::SignIfAllowed(SignRequest {
        session: Address::repeat_byte(2),
        payload: SignPayload::Message(Default::default()),
        stamp: bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: 1, mac: [2; 32] },
    });
    assert_eq!(reason(soon(client.call_direct(sign)).await.expect("signing waited")), "sign_if_allowed");
    assert_eq!(reason(soon(client.call_direct(ask(3))).await.expect("the status waited")), "status");
    assert!(!held.is_finished());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3, "owner calls, signing, reads");
}

/// A signing request the enclave answers `enclave.session_busy` (its session's lock held by
/// the owner's calls; nothing decided or recorded) is asked again within the call timeout,
/// and the caller gets the answer that follows.
#[tokio::test]
async fn a_busy_session_is_asked_again() {
    use bridle_common::protocol::{SignPayload, SignRequest};
    let (_dir, addr, _) = fake_enclave(|mut s| async move {
        let mut asked = 0;
        while let Ok(b) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
            assert_eq!(from_cbor::<RequestFrame>(&b).unwrap().call.name(), "sign_if_allowed");
            asked += 1;
            let d = if asked < 3 {
                Denial::rule(ErrorCode::Unavailable, bridle_common::error::SESSION_BUSY, "busy")
            } else {
                Denial::new(ErrorCode::Internal, format!("asked {asked} times"))
            };
            answer(&mut s, Err(d)).await;
        }
    })
    .await;
    let sign = Call::SignIfAllowed(SignRequest {
        session: Address::repeat_byte(2),
        payload: SignPayload::Message(Default::default()),
        stamp: bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: 1, mac: [2; 32] },
    });
    let client = EnclaveClient::new(addr.clone(), ClientConfig { pool_size: 1, ..ClientConfig::default() });
    assert_eq!(reason(client.call_direct(sign.clone()).await), "asked 3 times");
    // With less than the margin left of its call timeout no new try starts: the busy answer
    // is returned as it is (nothing signed), not a timeout whose outcome is unknown.
    let short = ClientConfig { pool_size: 1, call_timeout: Duration::from_secs(1), ..ClientConfig::default() };
    let client = EnclaveClient::new(addr, short);
    match client.call_direct(sign).await {
        Err(ClientError::Denied(d)) => assert_eq!(d.rule.as_deref(), Some(bridle_common::error::SESSION_BUSY)),
        other => panic!("expected the busy answer, got {other:?}"),
    }
}

/// While the enclave answers a session busy, at most `SESSION_IN_FLIGHT` of its signing
/// requests are with the enclave at once (SECURITY.md, "What the lanes leave"): a session
/// its owner keeps busy took every place of the pool's pipelines, and every other session's
/// requests waited behind it. And only a busy answer — given after the agent's stamp
/// verifies — gates a session: requests naming a session that the enclave refuses (a
/// stranger's) never queue its agent's (a review of the first version). Here a fake enclave
/// that reads every frame as it comes (so it sees every request sent and not yet answered),
/// answers A's busy 20 ms later each, in order, refuses C's and answers B's at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_sessions_requests_take_at_most_their_places() {
    use crate::session_gate::SESSION_IN_FLIGHT;
    use bridle_common::protocol::{SignPayload, SignRequest};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (a, b, c) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb), Address::repeat_byte(0xc));
    // A's requests the fake enclave has read and not yet answered.
    let open = Arc::new(AtomicUsize::new(0));
    let o = open.clone();
    let (_dir, addr, _) = fake_enclave(move |s| {
        let open = o.clone();
        async move {
            let (mut r, mut w) = tokio::io::split(s);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let o2 = open.clone();
            tokio::spawn(async move {
                while let Ok(body) = read_frame(&mut r, DEFAULT_MAX_FRAME).await {
                    let call = from_cbor::<RequestFrame>(&body).unwrap().call;
                    if matches!(&call, Call::SignIfAllowed(q) if q.session == a) {
                        o2.fetch_add(1, Ordering::SeqCst);
                    }
                    if tx.send(call).is_err() {
                        return;
                    }
                }
            });
            while let Some(call) = rx.recv().await {
                let d = match call {
                    Call::SignIfAllowed(q) if q.session == a => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                        Denial::rule(ErrorCode::Unavailable, bridle_common::error::SESSION_BUSY, "busy")
                    }
                    Call::SignIfAllowed(q) if q.session == c => Denial::new(ErrorCode::Unauthenticated, "stamp"),
                    call => Denial::new(ErrorCode::Internal, call.name()),
                };
                let frame = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result: Err(d) }).unwrap();
                if write_frame(&mut w, &frame).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let sign = |session| {
        Call::SignIfAllowed(SignRequest {
            session,
            payload: SignPayload::Message(Default::default()),
            stamp: bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: 1, mac: [2; 32] },
        })
    };
    let config = ClientConfig { pool_size: 6, pipeline: 4, call_timeout: Duration::from_secs(3), ..Default::default() };
    let client = Arc::new(EnclaveClient::new(addr, config));
    // A stranger's requests naming C: refused, never gated.
    let strangers: Vec<_> = (0..10)
        .map(|_| {
            let c2 = client.clone();
            tokio::spawn(async move { c2.call_direct(sign(c)).await })
        })
        .collect();
    for t in strangers {
        assert_eq!(reason(t.await.unwrap()), "stamp");
    }
    assert_eq!((client.sessions.sessions(), client.sessions.is_busy(c)), (0, false));
    // Ten of A's, asked again until 2 s before their 3 s timeout. Their first tries all go
    // (nothing marks A busy yet); once answered busy, no more than four are with the enclave.
    let started = Instant::now();
    let waiting: Vec<_> = (0..10)
        .map(|_| {
            let c2 = client.clone();
            tokio::spawn(async move { c2.call_direct(sign(a)).await })
        })
        .collect();
    // Sampled from when every first try has been answered (ten at 20 ms on six
    // connections: about 40 ms) until the tries stop, 1 s in.
    let (mut most_later, mut marked) = (0, false);
    while started.elapsed() < Duration::from_millis(950) {
        if started.elapsed() > Duration::from_millis(300) {
            most_later = most_later.max(open.load(Ordering::SeqCst));
            marked |= client.sessions.is_busy(a);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(marked, "A was answered busy");
    assert!(most_later <= SESSION_IN_FLIGHT, "A's requests with the enclave: {most_later}");
    let other = tokio::time::timeout(Duration::from_secs(5), client.call_direct(sign(b))).await;
    assert_eq!(reason(other.expect("another session's request waited")), "sign_if_allowed");
    // Each of A's gets the busy answer (nothing signed), sent or not.
    for w in waiting {
        match w.await.unwrap() {
            Err(ClientError::Denied(d)) => assert!(bridle_common::error::is_session_busy(&d), "{d}"),
            other => panic!("{other:?}"),
        }
    }
}

#[path = "enclave_client_routing_tests.rs"]
mod routing;
