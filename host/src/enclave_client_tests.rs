//! The enclave client against fake enclaves: the hybrid-vsock handshake, framed calls, and
//! a cancelled call's connection.
use super::*;
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
    let err = client.call(Call::Status(StatusQuery { session: None, nonce: None })).await.unwrap_err();
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
