//! EnclaveClient against the fake enclave: pooling, reconnects, retry rules, timeouts.

mod common;

use alloy_primitives::{Address, Bytes};
use bridle_common::address::SocketAddress;
use bridle_common::error::ErrorCode;
use bridle_common::protocol::*;
use bridle_host::enclave_client::{ClientConfig, EnclaveClient};
use bridle_host::ClientError;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn client(sock: &std::path::Path, timeout: Duration, pool: usize) -> EnclaveClient {
    EnclaveClient::new(
        SocketAddress::Unix(sock.to_path_buf()),
        ClientConfig { pool_size: pool, call_timeout: timeout, ..Default::default() },
    )
}

fn sign(session: Address) -> Call {
    Call::SignIfAllowed(SignRequest {
        session,
        payload: SignPayload::Message(Bytes::from_static(b"hi")),
        stamp: stamp(),
    })
}

async fn make_session(c: &EnclaveClient) -> Address {
    match c
        .call(Call::CreateSession(CreateSession {
            auth: auth(1),
            agent_public_key: Bytes::from(vec![2u8; 33]),
            policy: policy("t"),
        }))
        .await
        .unwrap()
    {
        Reply::SessionCreated(c) => c.binding.session,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn learns_identity_reuses_connections_and_reports_denials() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("e.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let c = client(&sock, Duration::from_secs(5), 8).on_identity(Arc::new(move |old, new| {
        assert_eq!(old, None);
        assert_eq!(new, IDENTITY_1);
        s2.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }));
    assert_eq!(c.identity(), None);
    let session = make_session(&c).await;
    assert_eq!(c.identity(), Some(IDENTITY_1));
    for _ in 0..10 {
        assert!(matches!(c.call(sign(session)).await, Ok(Reply::Signed(_))));
    }
    // Sequential calls reuse one connection: the creation went on the owner calls' own
    // connection (a stand-alone host's), the signatures on one of the pool's.
    assert_eq!(enclave.connections(), 2);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    match c.call(sign(Address::repeat_byte(1))).await {
        Err(ClientError::Denied(d)) => assert_eq!(d.code, ErrorCode::UnknownSession),
        other => panic!("{other:?}"),
    }
    enclave.stop().await;
}

#[tokio::test]
async fn concurrent_calls_use_at_most_pool_size_connections() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("e.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let c = Arc::new(client(&sock, Duration::from_secs(5), 3));
    let session = make_session(&c).await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.call(sign(session)).await }));
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(Reply::Signed(_))));
    }
    // The pool's 3, and the owner calls' own (the creation).
    assert!(enclave.connections() <= 3 + 1, "{}", enclave.connections());
    enclave.stop().await;
}

#[tokio::test]
async fn unreachable_then_reconnects_and_notices_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("e.sock");
    let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ch = changes.clone();
    let c = client(&sock, Duration::from_secs(5), 4).on_identity(Arc::new(move |old, new| {
        ch.lock().unwrap().push((old, new));
        Box::pin(async {})
    }));
    let status = || Call::Status(StatusQuery { session: None, nonce: None, held: None });
    assert!(matches!(c.call(status()).await, Err(ClientError::Unavailable(_))));

    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    assert!(c.call(status()).await.is_ok());
    enclave.stop().await;
    // The pooled connection is dead; the next call must not fail because of it.
    let enclave = FakeEnclave::start(&sock, IDENTITY_2).await;
    match c.call(status()).await {
        Ok(Reply::Status(s)) => assert_eq!(s.identity_address, IDENTITY_2),
        other => panic!("{other:?}"),
    }
    assert_eq!(*changes.lock().unwrap(), vec![(None, IDENTITY_1), (Some(IDENTITY_1), IDENTITY_2)]);
    enclave.stop().await;
}

#[tokio::test]
async fn sign_request_is_never_resent_after_it_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("e.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let c = client(&sock, Duration::from_secs(5), 4);
    let session = make_session(&c).await;

    // The enclave reads the request and drops the connection: unavailable, not retried.
    enclave.set_mode(Mode::CloseOnSign);
    match c.call(sign(session)).await {
        Err(ClientError::Unavailable(m)) => assert!(m.contains("not retried"), "{m}"),
        other => panic!("{other:?}"),
    }
    let signs = enclave.calls().iter().filter(|c| matches!(c, Call::SignIfAllowed(_))).count();
    assert_eq!(signs, 1, "a written sign request must never be re-sent");

    // The enclave never answers: timeout, and again exactly one request.
    enclave.set_mode(Mode::HangOnSign);
    let c2 = client(&sock, Duration::from_millis(300), 4);
    let t0 = std::time::Instant::now();
    match c2.call(sign(session)).await {
        Err(ClientError::Timeout(_)) => {}
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(3));
    let signs = enclave.calls().iter().filter(|c| matches!(c, Call::SignIfAllowed(_))).count();
    assert_eq!(signs, 2);

    // An oversized reply frame is refused before its body is read.
    enclave.set_mode(Mode::HugeReplyOnSign);
    match c.call(sign(session)).await {
        Err(ClientError::Protocol(m)) => assert!(m.contains("exceeds"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Back to normal: the client recovers on fresh connections.
    enclave.set_mode(Mode::Normal);
    assert!(matches!(c.call(sign(session)).await, Ok(Reply::Signed(_))));
    enclave.stop().await;
}

#[tokio::test]
async fn request_larger_than_the_frame_limit_is_refused_locally() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("e.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let c =
        EnclaveClient::new(SocketAddress::Unix(sock.clone()), ClientConfig { max_frame: 1024, ..Default::default() });
    let call = Call::SignIfAllowed(SignRequest {
        session: Address::repeat_byte(1),
        payload: SignPayload::Message(Bytes::from(vec![0u8; 4096])),
        stamp: stamp(),
    });
    match c.call(call).await {
        Err(ClientError::Denied(d)) => assert_eq!(d.code, ErrorCode::TooLarge),
        other => panic!("{other:?}"),
    }
    assert!(enclave.calls().is_empty());
    enclave.stop().await;
}
