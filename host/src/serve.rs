//! The host's HTTP listeners, against clients that connect and then hold on.
//!
//! `axum::serve` gives hyper no timer, so hyper's header timeout never runs, and nothing
//! bounds the connections or a body that stops half-way: a review of 2026-12-06 held every
//! descriptor of a host with 1 100 half-sent request heads, and 828 MB of its memory with
//! 40 relay bodies sent to 20 MiB and stopped. Here each listener:
//! - serves at most `max_connections` at once; one past that is closed as it is accepted
//!   (the database's and the enclave's connections keep their descriptors);
//! - serves at most `per_source` at once from one source ([`Source`]: an IPv4 address or an
//!   IPv6 /64), except the addresses `exempt` names (a proxy in front), so that one client
//!   cannot hold every slot; one past that is closed as it is accepted too;
//! - closes a connection whose request head has not arrived within `header_timeout`
//!   (hyper's `header_read_timeout`, with a timer), idle kept-alive ones included;
//! - reads a request's body whole before the handler sees it ([`crate::body`]): at most
//!   `max_body` plus one byte kept, copied into one buffer as it comes, with no gap longer
//!   than `body_timeout` and the whole within `body_deadline`, or the request is answered
//!   408 and the connection closed;
//! - cuts off a peer that stops reading what it is sent ([`crate::conn`]).

use axum::http::header::{CONNECTION, CONTENT_LENGTH};
use axum::http::{HeaderValue, StatusCode};
use axum::Router;
use bridle_common::error::Denial;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// One listener's bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections served at once from one [`Source`] (0: no such bound).
    pub per_source: usize,
    /// Addresses the per-source bound does not apply to: a proxy in front of the host, on
    /// this machine (the loopback addresses by default) or on another.
    pub exempt: Vec<IpAddr>,
    pub header_timeout: Duration,
    /// The longest a body may send nothing.
    pub body_timeout: Duration,
    /// The longest a body may take in all.
    pub body_deadline: Duration,
    /// The largest body any route of the listener takes (their own limits refuse more).
    pub max_body: usize,
}

/// The public listener's per-source bound by default: eight sources fill its 512 slots, not one.
pub const DEFAULT_PER_SOURCE: usize = 64;

/// The addresses exempt from the per-source bound by default: a proxy on this machine.
pub const DEFAULT_EXEMPT: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];

/// The public listener's: agents, owners and the console. The header timeout also closes a
/// kept-alive connection idle that long (hyper waits for the next head under it): longer
/// than clients' usual idle pools would race with, as nginx's `keepalive_timeout` is.
pub fn public(per_source: usize, exempt: Vec<IpAddr>, max_body: usize) -> Limits {
    Limits {
        max_connections: 512,
        per_source,
        exempt,
        header_timeout: Duration::from_secs(60),
        body_timeout: Duration::from_secs(30),
        body_deadline: Duration::from_secs(60),
        max_body,
    }
}

/// The cluster listener's: the other members' hosts, whose client keeps idle connections
/// for less than the header timeout (`cluster::ClusterLink`), so that it never sends on
/// one this side is closing. No per-source bound: a follower under load forwards through a
/// connection per call, and the listener is for the members alone (DEPLOY.md's firewall).
pub fn cluster(max_body: usize) -> Limits {
    Limits {
        max_connections: 256,
        per_source: 0,
        exempt: Vec::new(),
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        body_deadline: Duration::from_secs(60),
        max_body,
    }
}

/// Where a connection comes from, as the per-source bound counts: an IPv4 address (an
/// IPv4-mapped IPv6 address too), or an IPv6 address's /64 — the least a subscriber is
/// usually given, so that one client cannot take a slot per address of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    V4(Ipv4Addr),
    V6Prefix64(u64),
}

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6Prefix64((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// The connections each source holds, for the per-source bound.
#[derive(Default)]
struct Sources(Mutex<HashMap<Source, usize>>);

/// One connection counted against its source; uncounted when dropped.
struct Counted {
    sources: Arc<Sources>,
    source: Source,
}

impl Sources {
    /// Count one more connection from `ip`, unless its source holds `bound` already. `None`
    /// when refused; `Some(None)` when the bound does not apply.
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Option<Counted>> {
        let canonical = ip.to_canonical();
        if limits.per_source == 0 || limits.exempt.iter().any(|e| e.to_canonical() == canonical) {
            return Some(None);
        }
        let source = Source::of(ip);
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(source).or_insert(0);
        if *n >= limits.per_source {
            return None;
        }
        *n += 1;
        Some(Some(Counted { sources: self.clone(), source }))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut held = self.sources.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// The answer to a request whose body was not read whole; the connection is closed after it
/// (the rest of the body is never read).
fn unread(e: crate::body::Unread) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let status = match e {
        crate::body::Unread::Broken(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::REQUEST_TIMEOUT,
    };
    let mut r = crate::api::ApiError::new(status, Denial::malformed(e.to_string())).into_response();
    r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes, then let the
/// connections finish what they are doing (as `axum::serve`'s graceful shutdown does).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let sources = Arc::new(Sources::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let (mut refused, mut refused_per_source): (u64, u64) = (0, 0);
    loop {
        let (mut stream, peer) = tokio::select! {
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
        let Some(counted) = sources.take(peer.ip(), &limits) else {
            refused_per_source += 1;
            if refused_per_source.is_power_of_two() {
                tracing::warn!(
                    refused = refused_per_source,
                    per_source = limits.per_source,
                    "connections past the per-source bound closed"
                );
            }
            continue;
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
        let (gap, within, cap) = (limits.body_timeout, limits.body_deadline, limits.max_body.saturating_add(1));
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut app = app.clone();
            async move {
                let (parts, body) = req.into_parts();
                let hint = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
                match crate::body::gather(body, hint, cap, gap, within).await {
                    Ok(body) => {
                        tower_service::Service::call(&mut app, hyper::Request::from_parts(parts, body.into_body()))
                            .await
                    }
                    Err(e) => Ok(unread(e)),
                }
            }
        });
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            // HTTP/1 only (nothing here speaks HTTP/2): hyper-util's auto builder reads the
            // first bytes to choose a protocol with no timer running, so a connection that
            // sent nothing, or the start of an HTTP/2 preface, held its slot for good (a
            // review of 2026-12-06). hyper's HTTP/1 connection times the head from the start.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
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
            drop((slot, counted, done));
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

    fn short() -> Limits {
        Limits {
            max_connections: 3,
            per_source: 0,
            exempt: Vec::new(),
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            body_deadline: Duration::from_secs(3),
            max_body: 1 << 20,
        }
    }

    async fn start() -> std::net::SocketAddr {
        start_with(short()).await
    }

    async fn start_with(limits: Limits) -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "ok" })).route("/echo", post(|b: String| async move { b }));
        tokio::spawn(serve(l, app, limits, std::future::pending()));
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

    /// A stream connected from `src` (any 127/8 address is this machine's on Linux).
    async fn connect_from(src: &str, addr: std::net::SocketAddr) -> TcpStream {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{src}:0").parse().unwrap()).unwrap();
        let t = s.connect(addr).await.unwrap().into_std().unwrap();
        t.set_nonblocking(false).unwrap();
        t
    }

    /// One source holding its bound cannot take another slot; other sources and an exempt
    /// address still can, and its slots come back when it lets go (a client opening
    /// connections and holding them kept every slot of the listener before 2026-12-06).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_source_holds_at_most_its_share_of_the_slots() {
        let limits =
            Limits { max_connections: 8, per_source: 2, exempt: vec!["127.0.0.1".parse().unwrap()], ..short() };
        let addr = start_with(limits).await;
        let held = vec![connect_from("127.0.0.2", addr).await, connect_from("127.0.0.2", addr).await];
        let exempt: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let past = connect_from("127.0.0.2", addr).await;
        let other = connect_from("127.0.0.3", addr).await;
        let (past, other, exempt_served) = tokio::task::spawn_blocking(move || {
            let ask = |mut s: TcpStream| {
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                until_closed(s, Duration::from_secs(5))
            };
            (ask(past), ask(other), get_ok(addr))
        })
        .await
        .unwrap();
        assert!(!past.0.contains("ok") && past.1 < Duration::from_secs(2), "the source's third: {past:?}");
        assert!(other.0.ends_with("ok"), "another source: {other:?}");
        assert!(exempt_served.ends_with("ok"), "an exempt address past the per-source bound: {exempt_served}");
        drop((held, exempt));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = connect_from("127.0.0.2", addr).await;
        let r = tokio::task::spawn_blocking(move || {
            let mut s = again;
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            until_closed(s, Duration::from_secs(5))
        })
        .await
        .unwrap();
        assert!(r.0.ends_with("ok"), "the source's slots came back: {r:?}");
    }

    #[test]
    fn sources_are_addresses_and_ipv6_prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(Source::of(ip("192.0.2.7")), Source::V4("192.0.2.7".parse().unwrap()));
        assert_eq!(Source::of(ip("::ffff:192.0.2.7")), Source::of(ip("192.0.2.7")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_ne!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:3::1")));
        assert_ne!(Source::of(ip("192.0.2.7")), Source::of(ip("192.0.2.8")));
        // An exempt address matches in either form.
        let limits = Limits { per_source: 1, exempt: vec![ip("127.0.0.1")], ..short() };
        let sources = Arc::new(Sources::default());
        let a = sources.take(ip("::ffff:127.0.0.1"), &limits);
        let b = sources.take(ip("::ffff:127.0.0.1"), &limits);
        assert!(matches!((a, b), (Some(None), Some(None))));
        let first = sources.take(ip("192.0.2.7"), &limits);
        assert!(matches!(first, Some(Some(_))));
        assert!(sources.take(ip("192.0.2.7"), &limits).is_none());
        drop(first);
        assert!(sources.0.lock().unwrap().is_empty(), "a source with no connection is forgotten");
        assert!(matches!(sources.take(ip("192.0.2.7"), &limits), Some(Some(_))));
    }

    /// A body sending a byte every half second never leaves a gap of a second, and is still
    /// answered 408 at the deadline (3 s here, 60 s on the listeners), its connection closed
    /// (a review of 2026-12-06: 512 such bodies held every slot for good).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trickled_body_is_answered_408_at_the_deadline() {
        let addr = start().await;
        let r = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n").unwrap();
            let t0 = Instant::now();
            let mut w = s.try_clone().unwrap();
            std::thread::spawn(move || {
                while t0.elapsed() < Duration::from_secs(8) && w.write_all(b"x").is_ok() {
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
            until_closed(s, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(r.0.starts_with("HTTP/1.1 408"), "{r:?}");
        assert!(r.0.contains("\"malformed\"") && r.0.contains("within 3 s"), "{r:?}");
        assert!(r.1 >= Duration::from_millis(2900) && r.1 < Duration::from_secs(6), "{r:?}");
    }
}
