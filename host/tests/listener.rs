//! The listener (`host/src/serve.rs`, `host/src/body.rs`) and the HTTP/1 features the
//! host's clients use: what the whole-body read and the per-source bound leave working (a
//! review of 2026-12-06, night, wrote these). Each test runs `serve::serve` as the host runs
//! it.

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bridle_host::serve::{self, Limits};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn limits(max_body: usize) -> Limits {
    Limits {
        max_connections: 16,
        per_source: 0,
        exempt: Vec::new(),
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(2),
        body_deadline: Duration::from_secs(3),
        max_body,
    }
}

/// An upgrade route as `cluster::stream_upgrade` is: take `OnUpgrade`, echo on the stream.
async fn upgrade(mut req: Request) -> Response {
    let Some(on) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "no upgrade").into_response();
    };
    tokio::spawn(async move {
        if let Ok(up) = on.await {
            let mut io = hyper_util::rt::TokioIo::new(up);
            let mut b = [0u8; 4];
            if io.read_exact(&mut b).await.is_ok() {
                let _ = io.write_all(&b).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "x-test")
        .body(axum::body::Body::empty())
        .unwrap()
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|b: axum::body::Bytes| async move {
                format!("len={} {}", b.len(), String::from_utf8_lossy(&b[..b.len().min(16)]))
            }),
        )
        .route("/up", get(upgrade))
        // A route whose own limit is larger than the listener's.
        .route(
            "/big",
            post(|b: axum::body::Bytes| async move { format!("len={}", b.len()) })
                .layer(DefaultBodyLimit::max(8 << 20)),
        )
        .layer(DefaultBodyLimit::max(1 << 20))
}

async fn start(l: Limits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve::serve(listener, app(), l, std::future::pending()));
    addr
}

fn read_all(mut s: TcpStream, within: Duration) -> String {
    s.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&b[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cluster stream's upgrade still works through the gather (a GET with no body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_still_switches_and_carries_bytes() {
    let addr = start(serve::cluster(22 << 20)).await;
    let got = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        s.write_all(b"ping").unwrap();
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).unwrap();
        (String::from_utf8_lossy(&head).into_owned(), echo)
    })
    .await
    .unwrap();
    assert!(got.0.starts_with("HTTP/1.1 101"), "{}", got.0);
    assert_eq!(&got.1, b"ping");
}

/// `Expect: 100-continue`: the gather's first poll sends `100 Continue`; the body follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_is_answered_and_the_body_read() {
    let addr = start(limits(1 << 20)).await;
    let r = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 64];
        let n = s.read(&mut b).unwrap();
        let first = String::from_utf8_lossy(&b[..n]).into_owned();
        s.write_all(b"hello").unwrap();
        (first, read_all(s, Duration::from_secs(3)))
    })
    .await
    .unwrap();
    assert!(r.0.starts_with("HTTP/1.1 100"), "{r:?}");
    assert!(r.1.contains("200 OK") && r.1.ends_with("len=5 hello"), "{r:?}");
}

/// Pipelined requests on one connection (a chunked body with trailers among them) are each
/// answered, in order; a body is never read as the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_and_chunked_requests_are_answered_in_order() {
    let addr = start(limits(1 << 20)).await;
    let r = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
              POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\nX-T: 1\r\n\r\n\
              GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        read_all(s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    let a = r.find("len=3 abc").expect(&r);
    let b = r.find("len=3 def").expect(&r);
    assert!(a < b && r.ends_with("ok"), "{r}");
    assert_eq!(r.matches("HTTP/1.1 200").count(), 3, "{r}");
}

/// A body past the listener's cap reaches a route whose own limit is larger as a read
/// that fails, never as the cut bytes passing for the whole body (the review found such a
/// route answered `len=1001` for a body of 5 000 bytes; no route of the host's is so today).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_the_listeners_cap_is_never_read_as_whole() {
    let addr = start(limits(1000)).await;
    let r = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n").unwrap();
        let _ = s.write_all(&[b'x'; 5000]);
        read_all(s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(!r.starts_with("HTTP/1.1 200") && !r.contains("len="), "{r}");
    assert!(r.starts_with("HTTP/1.1 4"), "{r}");
}

/// A connection answered 408 gives back its per-source count (per_source 1: the next
/// connection from the source is served), and the refused one meanwhile got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_408_gives_back_its_per_source_count() {
    let l = Limits { per_source: 1, exempt: Vec::new(), ..limits(1 << 20) };
    let addr = start(l).await;
    let r = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n").unwrap();
        let t0 = Instant::now();
        let mut w = s.try_clone().unwrap();
        std::thread::spawn(move || {
            while t0.elapsed() < Duration::from_secs(5) && w.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        // While it is held, a second connection from 127.0.0.1 is closed unanswered.
        let mut second = TcpStream::connect(addr).unwrap();
        let _ = second.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let refused = read_all(second, Duration::from_secs(2));
        let first = read_all(s, Duration::from_secs(6));
        std::thread::sleep(Duration::from_millis(300));
        let mut third = TcpStream::connect(addr).unwrap();
        third.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        (refused, first, read_all(third, Duration::from_secs(3)))
    })
    .await
    .unwrap();
    assert_eq!(r.0, "", "{r:?}");
    assert!(r.1.starts_with("HTTP/1.1 408"), "{r:?}");
    assert!(r.2.ends_with("ok"), "{r:?}");
}

/// On a dual-stack listener an IPv4 client is `::ffff:a.b.c.d`: counted as its IPv4 source,
/// and exempt when its IPv4 address is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_ipv4_peer_is_counted_and_exempted_as_ipv4() {
    let Ok(listener) = TcpListener::bind("[::]:0").await else {
        eprintln!("no IPv6 here: skipped");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let l = Limits { per_source: 1, exempt: vec!["127.0.0.1".parse().unwrap()], ..limits(1 << 20) };
    tokio::spawn(serve::serve(listener, app(), l, std::future::pending()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = tokio::task::spawn_blocking(move || {
        let from = |src: &str| {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&format!("{src}:0").parse::<SocketAddr>().unwrap().into()).unwrap();
            s.connect(&addr.into()).unwrap();
            TcpStream::from(s)
        };
        // Exempt: three held from 127.0.0.1 and a fourth still served.
        let held: Vec<TcpStream> = (0..3).map(|_| from("127.0.0.1")).collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut e = from("127.0.0.1");
        e.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let exempt = read_all(e, Duration::from_secs(3));
        // Counted: one held from 127.0.0.2, the next refused.
        let h2 = from("127.0.0.2");
        std::thread::sleep(Duration::from_millis(200));
        let mut n = from("127.0.0.2");
        let _ = n.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let counted = read_all(n, Duration::from_secs(3));
        drop((held, h2));
        (exempt, counted)
    })
    .await
    .unwrap();
    assert!(r.0.ends_with("ok"), "{r:?}");
    assert_eq!(r.1, "", "{r:?}");
}
