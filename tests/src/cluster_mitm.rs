//! A lying cluster host: an HTTP relay in front of one node's cluster listener that forwards
//! every request (other hosts' Raft messages, forwarded calls) and can rewrite the answers to
//! calls other hosts forward to it (`POST /v1/cluster/call`, CBOR frames) — what the leader's
//! host, untrusted like every host, can do to the hosts that route calls through it.
//!
//! The hosts must relay over plain HTTP (`BRIDLE_CLUSTER_RELAY=http`): the persistent
//! streams (`GET /v1/cluster/stream`, an HTTP upgrade) are answered 404 here, so a host that
//! tries them falls back to posting.
//!
//! ```ignore
//! let mitm = ClusterMitm::start(&c.nodes[0].peer_url()).await;
//! c.nodes[0].advertise = Some(mitm.url());
//! mitm.rewrite(|call, reply| { /* change `reply` */ true });
//! ```

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::{Call, Reply, RequestFrame, ResponseFrame};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Rewrites the reply to a forwarded `call`; returns whether it changed anything.
pub type Rewrite = Box<dyn Fn(&Call, &mut Reply) -> bool + Send + Sync>;

struct Inner {
    target: String,
    http: reqwest::Client,
    rewrite: Mutex<Option<Rewrite>>,
    rewritten: AtomicU64,
    refused: Mutex<Option<IpAddr>>,
}

/// The relay. Dropping it leaves it running until the test's runtime ends.
#[derive(Clone)]
pub struct ClusterMitm {
    port: u16,
    inner: Arc<Inner>,
}

impl ClusterMitm {
    /// Listen on a free loopback port, relaying to `target` (a node's peer URL).
    pub async fn start(target: &str) -> ClusterMitm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            rewrite: Mutex::new(None),
            rewritten: AtomicU64::new(0),
            refused: Mutex::new(None),
        });
        let app = axum::Router::new().fallback(relay).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
        });
        ClusterMitm { port, inner }
    }

    /// The URL other hosts reach the relay at.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Rewrite forwarded calls' replies with `f` from now on.
    pub fn rewrite(&self, f: impl Fn(&Call, &mut Reply) -> bool + Send + Sync + 'static) {
        *self.inner.rewrite.lock().unwrap() = Some(Box::new(f));
    }

    /// Relay faithfully from now on.
    pub fn honest(&self) {
        *self.inner.rewrite.lock().unwrap() = None;
    }

    /// Refuse (503) everything from `from` (a host's source address), or nothing.
    pub fn refuse(&self, from: Option<IpAddr>) {
        *self.inner.refused.lock().unwrap() = from;
    }

    /// How many replies were changed.
    pub fn rewritten(&self) -> u64 {
        self.inner.rewritten.load(Ordering::SeqCst)
    }
}

async fn relay(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if *inner.refused.lock().unwrap() == Some(peer.ip()) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if uri.path() == "/v1/cluster/stream" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut req = inner.http.request(method, format!("{}{path}", inner.target)).body(body.clone());
    for (k, v) in &headers {
        if k != axum::http::header::HOST && k != axum::http::header::CONTENT_LENGTH {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let Ok(mut bytes) = resp.bytes().await.map(|b| b.to_vec()) else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    if uri.path() == "/v1/cluster/call" && status.is_success() {
        let guard = inner.rewrite.lock().unwrap();
        if let (Some(f), Ok(req)) = (guard.as_ref(), from_cbor::<RequestFrame>(&body)) {
            if let Ok(mut frame) = from_cbor::<ResponseFrame>(&bytes) {
                if let Ok(reply) = frame.result.as_mut() {
                    if f(&req.call, reply) {
                        inner.rewritten.fetch_add(1, Ordering::SeqCst);
                        bytes = to_cbor(&frame).unwrap();
                    }
                }
            }
        }
    }
    (status, bytes).into_response()
}
