//! The host's HTTP listeners, against clients that connect and then hold on.
//!
//! `axum::serve` gives hyper no timer, so hyper's header timeout never runs, and nothing
//! bounds the connections or a body that stops half-way: a review of 2026-12-06 held every
//! descriptor of a host with 1 100 half-sent request heads, and 828 MB of its memory with
//! 40 relay bodies sent to 20 MiB and stopped. Here each listener:
//! - serves at most `max_connections` at once; one past that is closed as it is accepted
//!   (the database's and the enclave's connections keep their descriptors);
//! - closes a connection whose request head has not arrived within `header_timeout`
//!   (hyper's `header_read_timeout`, with a timer), idle kept-alive ones included;
//! - ends a request whose body sends no data for `body_timeout` (tower-http);
//! - cuts off a peer that stops reading what it is sent ([`crate::conn`]).

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// One listener's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

/// The public listener's: agents, owners and the console. The header timeout also closes a
/// kept-alive connection idle that long (hyper waits for the next head under it): longer
/// than clients' usual idle pools would race with, as nginx's `keepalive_timeout` is.
pub const PUBLIC: Limits =
    Limits { max_connections: 512, header_timeout: Duration::from_secs(60), body_timeout: Duration::from_secs(30) };

/// The cluster listener's: the other members' hosts, whose client keeps idle connections
/// for less than the header timeout (`cluster::ClusterLink`), so that it never sends on
/// one this side is closing.
pub const CLUSTER: Limits =
    Limits { max_connections: 256, header_timeout: Duration::from_secs(10), body_timeout: Duration::from_secs(10) };

/// Serve `app` on `listener` within `limits` until `shutdown` completes, then let the
/// connections finish what they are doing (as `axum::serve`'s graceful shutdown does).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (mut stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Descriptors or memory short for a while: never a reason to stop.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(refused, max = limits.max_connections, "connections past the bound closed");
            }
            continue;
        };
        crate::conn::limit_writes(&mut stream, crate::conn::WRITE_TIMEOUT);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut app = app.clone();
            tower_service::Service::call(&mut app, req.map(Body::new))
        });
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            // HTTP/1 only (nothing here speaks HTTP/2): hyper-util's auto builder reads the
            // first bytes to choose a protocol with no timer running, so a connection that
            // sent nothing, or the start of an HTTP/2 preface, held its slot for good (a
            // review of 2026-12-06). hyper's HTTP/1 connection times the head from the start.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service).with_upgrades());
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(error = %e, "connection ended");
                        }
                        break;
                    }
                    Ok(()) = stop.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
            drop((slot, done));
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    const SHORT: Limits =
        Limits { max_connections: 3, header_timeout: Duration::from_secs(1), body_timeout: Duration::from_secs(1) };

    async fn start() -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" })).route("/echo", post(|b: String| async move { b }));
        tokio::spawn(serve(l, app, SHORT, std::future::pending()));
        addr
    }

    /// What the server sent before it closed the connection, waiting at most `wait`.
    fn until_closed(mut s: TcpStream, wait: Duration) -> (String, Duration) {
        let t0 = Instant::now();
        s.set_read_timeout(Some(wait)).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
    }

    fn get_ok(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        until_closed(s, Duration::from_secs(5)).0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_half_sent_head_is_closed_after_the_header_timeout() {
        let addr = start().await;
        let r = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            until_closed(s, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(r.1 < Duration::from_secs(5), "held {:?}: {}", r.1, r.0);
        assert!(tokio::task::spawn_blocking(move || get_ok(addr)).await.unwrap().ends_with("ok"));
    }

    /// A connection that sends nothing at all, or the start of an HTTP/2 preface, is closed
    /// after the header timeout too (hyper-util's auto builder kept both for good).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        let addr = start().await;
        for first in [&b""[..], b"PRI"] {
            let r = tokio::task::spawn_blocking(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(first).unwrap();
                until_closed(s, Duration::from_secs(10))
            })
            .await
            .unwrap();
            assert!(r.1 < Duration::from_secs(5), "{first:?} held {:?}: {}", r.1, r.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_that_stops_half_way_ends_its_request() {
        let addr = start().await;
        let r = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhalf").unwrap();
            until_closed(s, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(r.1 < Duration::from_secs(5), "held {:?}: {}", r.1, r.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_past_the_bound_are_closed_and_their_slots_come_back() {
        let addr = start().await;
        let (held, past) = tokio::task::spawn_blocking(move || {
            // Three connections that send nothing hold the three slots.
            let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(300));
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            (held, until_closed(s, Duration::from_secs(5)))
        })
        .await
        .unwrap();
        assert!(!past.0.contains("ok") && past.1 < Duration::from_secs(2), "{past:?}");
        drop(held);
        // Freed: served again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(tokio::task::spawn_blocking(move || get_ok(addr)).await.unwrap().ends_with("ok"));
    }
}
