//! The host's part in an enclave cluster (README, "High availability"): carry its
//! enclave's messages to the other nodes' hosts and theirs to it, and send calls to the
//! cluster's leader.
//!
//! The host is not trusted with any of it. Messages between enclaves are sealed in channels
//! bound to their attestations (the host sees ciphertext); a call forwarded to the leader
//! is decided by the leader's enclave like any other. What a host can do is stop carrying:
//! its node then drops out, and the others carry on while a majority remains.
//!
//! * `POST /v1/cluster/relay` (the cluster listener): a message from another node, handed
//!   to this host's enclave; the reply is the enclave's.
//! * `POST /v1/cluster/call`: a call another host forwards (a CBOR request frame), served
//!   by this host's enclave without forwarding further.
//! * `GET /v1/cluster/info`: where this node stands (the operator's view, not the enclave's
//!   signed word).
//! * `GET /v1/cluster/stream` (`Upgrade: bridle-cluster-relay`): a persistent stream of
//!   relayed messages ([`stream`]); hosts use it before the per-message HTTP relay.

#[path = "cluster_stream.rs"]
pub mod stream;

use crate::enclave_client::ClientError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bridle_common::cluster::{ClusterCall, ClusterReply, ClusterStart, Outbound, MAX_SEEDS, RELAY_FROM_HEADER};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::{Call, Reply, RequestFrame, ResponseFrame, PROTOCOL_VERSION};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Connections kept for the cluster's traffic (beside the client calls' pool).
pub const TRAFFIC_POOL: usize = 32;

/// Connections of the enclave left free for reconnections (a connection the host dropped
/// holds its slot until the enclave notices).
pub const SPARE_CONNECTIONS: usize = 7;

/// The largest client pool of a cluster host: the enclave's connections less the traffic
/// pool, the audit pull's own ([`crate::enclave_client::AUDIT_CONNECTIONS`]) and the spare
/// ones.
pub const MAX_CLIENT_POOL: usize = bridle_common::cluster::NODE_MAX_CONNECTIONS
    - TRAFFIC_POOL
    - crate::enclave_client::AUDIT_CONNECTIONS
    - SPARE_CONNECTIONS;

/// A cluster host's default pipeline (its pool's default is the stand-alone one, 8). A
/// cluster node holds each signing call for a commit round trip (milliseconds, not the
/// ≈ 0.1 ms of a stand-alone enclave), so the calls in flight, pool × pipeline, bound how
/// many entries one commit carries: 8 calls capped a node at ≈ 2 700 signatures/s here.
/// The node serves a connection's calls at once and answers them in order; 8 × 8 = 64 in
/// flight over 8 connections did better than 24 × 1, 24 × 4 or 4 × 16 (BENCHMARKS.md,
/// "Enclave cluster").
pub const DEFAULT_CLIENT_PIPELINE: usize = 8;

/// Largest message between two nodes' hosts (20 MiB of sealed cluster traffic plus framing).
pub const MAX_RELAY_BODY: usize = 22 << 20;

/// The largest answer read from a peer host that forwards a call to its node: a node's
/// largest answer, as the enclave client reads one from its socket in a cluster.
pub const MAX_FORWARDED_ANSWER: usize = bridle_common::frame::max_answer(MAX_RELAY_BODY);

/// Hosts heard from (their relays' [`RELAY_FROM_HEADER`]) that are neither seeds nor
/// members this host knows of, kept (most recent first) at most.
const MAX_HEARD: usize = 8;

/// The cluster part of the host's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// Where this host listens for the other hosts (`--cluster-listen`).
    pub listen: String,
    /// The URL the other hosts reach this one at (`--cluster-advertise`).
    pub advertise: String,
    /// Hosts of existing members to join through (`--cluster-seeds`).
    pub seeds: Vec<String>,
    /// Found a new cluster (`--cluster-bootstrap`): only the first node, once.
    pub bootstrap: bool,
    /// The local address this host's connections to the other hosts come from
    /// (`--cluster-source-address`; default: the system's choice), for multi-homed instances
    /// that keep cluster traffic on one network.
    pub source: Option<std::net::IpAddr>,
}

/// What the host knows of the cluster: where the other hosts are.
///
/// From three sources: its seeds (`--cluster-seeds`), the members its enclave lists (asked
/// every 500 ms), and the hosts that relay traffic to it (they name themselves in
/// [`RELAY_FROM_HEADER`]). The last one matters to the founder's host, which has no seeds:
/// if its enclave dies before the host asked it for the members, the members' traffic to
/// the dead node still names them, and the restarted enclave joins through them. Calls this
/// host forwards go to seeds and members only, never to a host only heard from.
#[derive(Debug)]
pub struct ClusterLink {
    pub settings: ClusterSettings,
    http: reqwest::Client,
    peers: RwLock<Vec<String>>,
    /// Peers the enclave no longer lists, and since when (see [`ClusterLink::learn`]).
    absent: Mutex<HashMap<String, Instant>>,
    /// Hosts heard from, not in `peers` (most recent first, at most [`MAX_HEARD`]): named
    /// by whoever reaches the cluster listener, so kept apart from the seeds and members.
    heard: Mutex<VecDeque<String>>,
    streams: stream::Streams,
    /// `BRIDLE_CLUSTER_RELAY=http`: relay every message as its own HTTP request, as before
    /// the streams (to compare the two: `bridle-cluster-bench --relay-http`).
    http_only: bool,
}

/// How long a peer the enclave no longer lists as a member is still called (see
/// [`ClusterLink::learn`]).
pub const FORGET_PEER_AFTER: Duration = Duration::from_secs(300);

fn trim(url: &str) -> &str {
    url.trim_end_matches('/')
}

impl ClusterLink {
    /// The link, or why its HTTP client could not be built: never a default client in its
    /// place, which would follow redirects, use a proxy and bind any source address (a review
    /// of 2026-12-06).
    pub fn new(settings: ClusterSettings) -> Result<ClusterLink, String> {
        let http = reqwest::Client::builder()
            .local_address(settings.source)
            .no_proxy()
            // A peer's answer is its own: never a redirect followed elsewhere (a review of
            // 2026-12-06: up to ten hops, a 303 turned into a GET, to any address).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            // Below the peers' header timeout (`serve::cluster`), which closes idle
            // connections: a request is never sent on one being closed.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("the cluster's HTTP client: {e}"))?;
        let peers = settings.seeds.iter().map(|s| trim(s).to_string()).collect();
        let http_only = std::env::var("BRIDLE_CLUSTER_RELAY").is_ok_and(|v| v == "http");
        Ok(ClusterLink {
            settings,
            http,
            peers: RwLock::new(peers),
            absent: Mutex::new(HashMap::new()),
            heard: Mutex::new(VecDeque::new()),
            streams: stream::Streams::default(),
            http_only,
        })
    }

    /// The other hosts this one knows: seeds and members first, then hosts heard from.
    pub fn peers(&self) -> Vec<String> {
        let mut all = self.peers.read().unwrap_or_else(|e| e.into_inner()).clone();
        for h in self.heard.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if !all.contains(h) {
                all.push(h.clone());
            }
        }
        all
    }

    /// The seeds for a joining enclave (at most [`MAX_SEEDS`], which the enclave accepts).
    pub fn seeds(&self) -> Vec<String> {
        let mut all = self.peers();
        all.truncate(MAX_SEEDS);
        all
    }

    /// The members' hosts, as this host's enclave lists them: with the seeds, they are the
    /// peers now. A host no longer listed (a member the cluster forgot) stays a peer for
    /// [`FORGET_PEER_AFTER`] more — an enclave replaying the log lists older memberships for
    /// a while (a review of 2026-12-06) — then is no longer called. An empty list (a node
    /// still joining knows no members) changes nothing, so a restarted enclave joins through
    /// the members known before.
    fn learn(&self, urls: impl IntoIterator<Item = String>) {
        self.learn_at(urls, Instant::now())
    }

    fn learn_at(&self, urls: impl IntoIterator<Item = String>, now: Instant) {
        let me = trim(&self.settings.advertise).to_string();
        // Only URLs an enclave takes as a peer's: one another host's enclave was told is
        // never called with `/v1/cluster/…` moved into its query.
        let members: Vec<String> = urls
            .into_iter()
            .filter(|u| bridle_common::cluster::is_peer_url(u))
            .map(|u| trim(&u).to_string())
            .filter(|u| *u != me)
            .collect();
        if members.is_empty() {
            return;
        }
        let mut next: Vec<String> = Vec::new();
        for u in self.settings.seeds.iter().map(|s| trim(s).to_string()).chain(members) {
            if u != me && !next.contains(&u) {
                next.push(u);
            }
        }
        let mut g = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let mut absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
        absent.retain(|u, _| !next.contains(u) && g.contains(u));
        for u in next.iter().filter(|u| !g.contains(u)) {
            tracing::info!(peer = %u, "cluster peer learned");
        }
        let gone: Vec<String> = g.iter().filter(|u| !next.contains(u)).cloned().collect();
        for u in gone {
            let since = *absent.entry(u.clone()).or_insert(now);
            if now.saturating_duration_since(since) < FORGET_PEER_AFTER {
                next.push(u);
            } else {
                tracing::info!(peer = %u, "cluster peer no longer a member: forgotten");
                absent.remove(&u);
            }
        }
        *g = next;
    }

    /// A host relayed traffic to this one, naming itself `url`: remember it (first among
    /// the hosts heard from) unless it is known already. Only what an enclave accepts as a
    /// peer URL ([`bridle_common::cluster::is_peer_url`]).
    pub fn hear(&self, url: &str) {
        let url = trim(url);
        if !bridle_common::cluster::is_peer_url(url)
            || self.is_me(url)
            || self.peers.read().unwrap_or_else(|e| e.into_inner()).iter().any(|p| p == url)
        {
            return;
        }
        let mut g = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        if g.front().is_some_and(|h| h == url) {
            return;
        }
        if let Some(i) = g.iter().position(|h| h == url) {
            g.remove(i);
        } else {
            tracing::info!(peer = %url, "cluster peer heard from");
        }
        g.push_front(url.to_string());
        g.truncate(MAX_HEARD);
    }

    /// The seed or member after `current` (round robin), for failing over a call. Never a
    /// host only heard from: anyone who reaches the cluster listener can name one, and a
    /// forwarded call carries an agent's stamped request or an owner's signed message (a
    /// review of 2026-12-06).
    pub fn next_member(&self, current: Option<&str>) -> Option<String> {
        let members = self.peers.read().unwrap_or_else(|e| e.into_inner());
        if members.is_empty() {
            return None;
        }
        let i = current.and_then(|c| members.iter().position(|p| p == c)).map_or(0, |i| (i + 1) % members.len());
        members.get(i).cloned()
    }

    /// Ask the other members' nodes, through their hosts, one after the other until one
    /// answers what `wanted` takes, within `within`: for a read every node that has joined
    /// serves (the audit chain). Never this host's own node, nor a host only heard from.
    /// Only a wanted answer is returned; otherwise the last failure.
    pub async fn ask_members(
        &self,
        call: &Call,
        within: Duration,
        wanted: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, ClientError> {
        let started = std::time::Instant::now();
        let members: Vec<String> =
            self.peers.read().unwrap_or_else(|e| e.into_inner()).iter().filter(|u| !self.is_me(u)).cloned().collect();
        // Each its share of the time (at least 2 s): one that never answers does not use up
        // the others' (a review of 2026-12-06).
        let share = (within / u32::try_from(members.len()).unwrap_or(u32::MAX).max(1)).max(Duration::from_secs(2));
        let mut last = Err(ClientError::Unavailable("no other member of the cluster is known".into()));
        for url in members {
            let left = within.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match self.forward(&url, call, left.min(share)).await {
                // A node of an image that serves it from the leader only.
                Ok(Reply::NotLeader(_)) => {
                    last = Err(ClientError::Unavailable(format!("cluster peer {url}: its node does not serve it")))
                }
                Ok(r) if wanted(&r) => return Ok(r),
                Ok(r) => {
                    last = Err(ClientError::Unavailable(format!(
                        "cluster peer {url}: its answer ({}) does not serve",
                        crate::enclave_client::reply_name(&r)
                    )))
                }
                Err(e) => last = Err(e),
            }
        }
        last
    }

    /// Whether `url` is a seed or a member this host's enclave listed (not only heard from).
    pub fn is_member(&self, url: &str) -> bool {
        let url = trim(url);
        self.peers.read().unwrap_or_else(|e| e.into_inner()).iter().any(|p| p == url)
    }

    /// Whether `url` is this host.
    pub fn is_me(&self, url: &str) -> bool {
        trim(url) == trim(&self.settings.advertise)
    }

    /// Send `call` to the enclave behind the host at `url`.
    pub async fn forward(&self, url: &str, call: &Call, timeout: Duration) -> Result<Reply, ClientError> {
        let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: call.clone() })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut resp = self
            .http
            .post(format!("{}/v1/cluster/call", trim(url)))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(format!("cluster peer {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(ClientError::Unavailable(format!("cluster peer {url}: HTTP {}", resp.status())));
        }
        // Read up to the largest answer a node sends, as from the enclave's socket: a peer
        // (any URL heard of) answering without end was read whole into memory (a review of
        // 2026-12-06).
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| ClientError::Unavailable(format!("cluster peer {url}: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_FORWARDED_ANSWER {
                return Err(ClientError::Protocol(format!(
                    "cluster peer {url}: an answer over {MAX_FORWARDED_ANSWER} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        crate::enclave_client::decode_response(&bytes)?.map_err(ClientError::Denied)
    }

    async fn relay(&self, m: &Outbound) -> Result<Vec<u8>, String> {
        let timeout = Duration::from_secs(10);
        if !self.http_only {
            let from = trim(&self.settings.advertise);
            let streamed =
                self.streams.relay(trim(&m.to), self.settings.source, from, &m.bytes, timeout, MAX_RELAY_BODY);
            if let Some(r) = streamed.await {
                return r;
            }
        }
        let resp = self
            .http
            .post(format!("{}/v1/cluster/relay", trim(&m.to)))
            .header(RELAY_FROM_HEADER, trim(&self.settings.advertise))
            .timeout(timeout)
            .body(m.bytes.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.bytes().await.map(|b| b.to_vec()).map_err(|e| e.to_string())
    }
}

/// How often a ready node is told this host's peers (its seeds and the members it learnt).
const TELL_PEERS_EVERY: Duration = Duration::from_secs(30);

/// Start the node's cluster role and carry its traffic, for as long as the host runs.
pub fn spawn(st: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let link = st.client.cluster()?.clone();
    Some(tokio::spawn(async move {
        // Upkeep: start the node when its enclave is not part of the cluster (at first, and
        // after the enclave restarted: a new node, which joins through the known members;
        // only the very first start may found the cluster), and learn the members' hosts.
        let _upkeep = AbortOnDrop({
            let (st, link) = (st.clone(), link.clone());
            tokio::spawn(async move {
                let mut may_found = link.settings.bootstrap;
                // When a ready node was last told this host's peers (for a join again: see
                // `enclave/src/cluster/joining.rs`).
                let mut told: Option<std::time::Instant> = None;
                loop {
                    match traffic(&st).call_direct(Call::Cluster(ClusterCall::Info)).await {
                        Ok(Reply::Cluster(ClusterReply::Info(i))) => {
                            let joining = i.role == "joining";
                            // In a membership (founded, or joined): this enclave founds no
                            // other cluster, even if it restarts (a new node, which joins).
                            // Not only after a start answered: a founder's start may answer
                            // `unavailable` just before its identity is applied.
                            if !joining {
                                may_found = false;
                            }
                            // A founder whose identity is not applied yet (alone in its
                            // membership, not ready): asked again, it proposes that same
                            // identity again (it answered `unavailable` before).
                            let founding = !i.ready && i.members.len() == 1 && i.members[0].node_id == i.node_id;
                            link.learn(i.members.into_iter().map(|m| m.peer_url));
                            if joining || founding {
                                let start = ClusterStart {
                                    advertise: trim(&link.settings.advertise).to_string(),
                                    seeds: link.seeds(),
                                    bootstrap: may_found,
                                };
                                match traffic(&st).call_direct(Call::Cluster(ClusterCall::Start(start))).await {
                                    Ok(_) => {
                                        tracing::info!(found = may_found, "cluster node started");
                                        may_found = false;
                                    }
                                    Err(e) => tracing::warn!(error = %e, "cluster start failed; retrying"),
                                }
                            } else if i.ready && told.is_none_or(|t| t.elapsed() >= TELL_PEERS_EVERY) {
                                // A ready node takes the peers for a join again, should it be
                                // dropped while every member it knew is replaced; nothing else.
                                told = Some(std::time::Instant::now());
                                let start = ClusterStart {
                                    advertise: trim(&link.settings.advertise).to_string(),
                                    seeds: link.seeds(),
                                    bootstrap: false,
                                };
                                if let Err(e) = traffic(&st).call_direct(Call::Cluster(ClusterCall::Start(start))).await
                                {
                                    // (An enclave older than this answers a founder's no.)
                                    tracing::debug!(error = %e, "telling the cluster node its peers");
                                }
                            }
                        }
                        Ok(other) => tracing::warn!(reply = ?other, "unexpected cluster info"),
                        Err(e) => tracing::debug!(error = %e, "cluster info"),
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        });
        // Carry the enclave's outbound messages.
        loop {
            let polled = traffic(&st).call_direct(Call::Cluster(ClusterCall::Poll { wait_ms: 1000, max: 64 })).await;
            match polled {
                Ok(Reply::Cluster(ClusterReply::Outbound(msgs))) => {
                    for m in msgs {
                        let (st, link) = (st.clone(), link.clone());
                        tokio::spawn(async move {
                            let result = link.relay(&m).await.map(serde_bytes::ByteBuf::from);
                            let _ = traffic(&st)
                                .call_direct(Call::Cluster(ClusterCall::Respond { id: m.id, result }))
                                .await;
                        });
                    }
                }
                Ok(other) => {
                    tracing::warn!(reply = ?other, "unexpected poll reply");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }))
}

/// The connections for cluster traffic (the client's own pool when there are none).
fn traffic(st: &AppState) -> &crate::enclave_client::EnclaveClient {
    st.cluster_client.as_ref().unwrap_or(&st.client)
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn cbor_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [("content-type", "application/cbor")], bytes).into_response()
}

/// Remember the host that names itself in `headers` ([`ClusterLink::hear`]).
fn hear_from(st: &AppState, headers: &axum::http::HeaderMap) {
    if let (Some(link), Some(from)) =
        (st.client.cluster(), headers.get(RELAY_FROM_HEADER).and_then(|v| v.to_str().ok()))
    {
        link.hear(from);
    }
}

async fn relay(State(st): State<AppState>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    hear_from(&st, &headers);
    match traffic(&st).call_direct(Call::Cluster(ClusterCall::Deliver { bytes: body.to_vec() })).await {
        Ok(Reply::Cluster(ClusterReply::Delivered { bytes })) => cbor_response(StatusCode::OK, bytes),
        Ok(other) => (StatusCode::BAD_GATEWAY, format!("unexpected enclave reply {other:?}")).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// Cluster streams served at once (peers keep up to 32 idle each).
const MAX_STREAMS: usize = 256;

/// `GET /v1/cluster/stream`: switch the connection to a stream of relayed messages.
async fn stream_upgrade(State(st): State<AppState>, mut req: axum::extract::Request) -> Response {
    hear_from(&st, req.headers());
    let wanted = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(stream::PROTOCOL));
    let Some(on) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>().filter(|_| wanted) else {
        return (StatusCode::UPGRADE_REQUIRED, format!("Upgrade: {} expected", stream::PROTOCOL)).into_response();
    };
    // An upgraded connection leaves the listener's bound (`serve::cluster`): streams have
    // their own (a review of 2026-12-06 kept any number open, each holding half a frame).
    static STREAMS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_STREAMS);
    let Ok(slot) = STREAMS.try_acquire() else {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{MAX_STREAMS} cluster streams are open")).into_response();
    };
    tokio::spawn(async move {
        let _slot = slot;
        match on.await {
            Ok(up) => {
                stream::serve(hyper_util::rt::TokioIo::new(up), MAX_RELAY_BODY, move |bytes| {
                    let st = st.clone();
                    async move {
                        match traffic(&st).call_direct(Call::Cluster(ClusterCall::Deliver { bytes })).await {
                            Ok(Reply::Cluster(ClusterReply::Delivered { bytes })) => Ok(bytes),
                            Ok(other) => Err(format!("unexpected enclave reply {other:?}")),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                })
                .await
            }
            Err(e) => tracing::debug!(error = %e, "cluster stream upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(axum::http::header::CONNECTION, "upgrade")
        .header(axum::http::header::UPGRADE, stream::PROTOCOL)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn call(State(st): State<AppState>, body: Bytes) -> Response {
    let result = match from_cbor::<RequestFrame>(&body) {
        Err(e) => Err(Denial::new(ErrorCode::Malformed, format!("request frame: {e}"))),
        // Of another protocol version: refused, as the enclave refuses one (it would be
        // framed again in this host's version).
        Ok(f) if f.version != PROTOCOL_VERSION => Err(Denial::new(
            ErrorCode::Unsupported,
            format!("a forwarded call of protocol version {}; this host speaks {PROTOCOL_VERSION}", f.version),
        )),
        Ok(f) if matches!(f.call, Call::Cluster(_)) => {
            Err(Denial::new(ErrorCode::Unsupported, "cluster calls are not forwarded"))
        }
        Ok(f) => match st.client.call_direct(f.call).await {
            Ok(r) => Ok(r),
            Err(ClientError::Denied(d)) => Err(d),
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        },
    };
    let frame = ResponseFrame { version: PROTOCOL_VERSION, result };
    match to_cbor(&frame) {
        Ok(b) => cbor_response(StatusCode::OK, b),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /v1/cluster/info` (also on the public API).
pub async fn info(State(st): State<AppState>) -> Response {
    match traffic(&st).call_direct(Call::Cluster(ClusterCall::Info)).await {
        Ok(Reply::Cluster(ClusterReply::Info(i))) => Json(serde_json::json!({
            "node": i,
            "host": st.client.cluster().map(|l| l.settings.advertise.clone()),
            "note": "this node's view, as its host reports it: not the enclave's signed word",
        }))
        .into_response(),
        Ok(other) => (StatusCode::BAD_GATEWAY, format!("unexpected enclave reply {other:?}")).into_response(),
        Err(ClientError::Denied(d)) if d.code == ErrorCode::Unsupported => {
            (StatusCode::NOT_FOUND, "this host's enclave is not a cluster node").into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The cluster listener's router.
pub fn router(st: AppState) -> Router {
    Router::new()
        .route("/v1/cluster/relay", post(relay))
        .route("/v1/cluster/call", post(call))
        .route("/v1/cluster/info", get(info))
        .route(stream::PATH, get(stream_upgrade))
        .layer(DefaultBodyLimit::max(MAX_RELAY_BODY))
        .with_state(st)
}

#[cfg(test)]
#[path = "cluster_forward_tests.rs"]
mod forward_tests;
