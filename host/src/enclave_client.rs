//! The host's connection to the enclave: a small pool of framed connections over a Unix
//! socket (development), vsock (Nitro), or a hybrid-vsock Unix socket (a VM whose vsock
//! device is backed in user space, e.g. by vhost-device-vsock: see [`hybrid_vsock_handshake`]).
//!
//! Up to `pool_size` connections, each carrying up to `pipeline` exchanges at once, in order
//! ([`crate::enclave_pipe`]: the requests in flight on a connection share its system calls
//! and wake-ups). A call goes to an idle connection, else to a new one while the pool has
//! room, else to the least busy. The audit pull's calls have a connection of their own
//! ([`AUDIT_CONNECTIONS`]), whose answers of up to a thousand entries hold up no other call;
//! on a stand-alone host, so do owner calls and reads ([`OWNER_CONNECTIONS`]), which the
//! enclave serves one at a time each, so that the pool carries signing alone.
//! Connections are made lazily and kept for reuse. Every new
//! connection first asks the enclave for its identity (`status`), so an enclave restart (a
//! new identity key, R-TRUST-4) is noticed before any request goes over the new connection.
//! A cluster node's enclave serves a connection's calls at once (each waits for a commit)
//! and answers them in order, as a stand-alone one does.
//!
//! A caller that goes away while its request is with the enclave (its timeout, an agent
//! that hung up) does not free its place: the enclave serves every call to its end (a
//! cluster call: until committed, up to seconds), so its reply is still read, and the pool
//! permit released only then. The host's connections to the enclave never outnumber its
//! pool and the connections of their own, nor its requests in flight `(pool_size +
//! AUDIT_CONNECTIONS + OWNER_CONNECTIONS + READING_CONNECTIONS) × pipeline`.
//!
//! Retry rule: a request is retried once, on another connection, only when writing it
//! failed — i.e. the enclave cannot have received a complete frame. Once a request is
//! fully written it is never re-sent: a signing request may have reached the enclave —
//! except a signing request the enclave answered `unavailable` with the rule
//! `enclave.session_busy` (its session busy with its owner's calls: nothing decided, no
//! stamp spent), sent again every 5 ms while more than 2 s of its call timeout is left.
//! For a while after such an answer, at most [`crate::session_gate::SESSION_IN_FLIGHT`] of
//! that session's signing requests are with the enclave at once, tries included; the rest
//! wait for a place, holding no connection.

use alloy_primitives::Address;
use bridle_common::address::SocketAddress;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, max_answer, to_cbor, write_frame, DEFAULT_MAX_FRAME};
use bridle_common::protocol::{Call, CallClass, Reply, RequestFrame, ResponseFrame, StatusQuery, PROTOCOL_VERSION};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

use crate::cluster::ClusterLink;
use crate::enclave_pipe::{FrameReader, Io, Outcome, Pipe};
use crate::metrics::Metrics;
use crate::session_gate::SessionGate;

/// Default number of pooled connections.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default number of exchanges in flight on one connection.
pub const DEFAULT_PIPELINE: usize = 4;
/// Most exchanges in flight on one connection.
pub const MAX_PIPELINE: usize = bridle_common::frame::MAX_PIPELINE;
/// Default per-call timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause before a signing request the enclave answered `enclave.session_busy` is sent again.
const BUSY_RETRY: Duration = Duration::from_millis(5);
/// No new try of a busy signing request starts with less than this left of its call
/// timeout (a try may wait 50 ms in the enclave, a cluster leader's up to 1 s).
const BUSY_MARGIN: Duration = Duration::from_secs(2);

/// A signing request not sent because its session is busy and this host's places for it
/// stayed taken until the call's margin (`session_gate`): nothing was decided.
fn not_sent_busy() -> Denial {
    Denial::rule(
        ErrorCode::Unavailable,
        bridle_common::error::SESSION_BUSY,
        "the session is busy with its owner's calls and its places at this host stayed taken: nothing was sent; ask again",
    )
}

/// Why a call did not produce a reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The enclave (or, for a request too large to send, the client) refused the call.
    #[error("{0}")]
    Denied(Denial),
    /// The enclave could not be reached, or the connection broke.
    #[error("enclave unavailable: {0}")]
    Unavailable(String),
    /// No reply within the per-call timeout.
    #[error("enclave did not answer within {0:?}")]
    Timeout(Duration),
    /// The enclave answered something that is not a valid response frame, or a reply of
    /// the wrong kind.
    #[error("enclave protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Label used in metrics and events.
    pub fn code_str(&self) -> &'static str {
        match self {
            ClientError::Denied(d) => d.code.as_str(),
            ClientError::Unavailable(_) => "unavailable",
            ClientError::Timeout(_) => "timeout",
            ClientError::Protocol(_) => "protocol",
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Most connections. At least 1.
    pub pool_size: usize,
    /// Most exchanges in flight on one connection, 1 to [`MAX_PIPELINE`].
    pub pipeline: usize,
    /// Largest frame sent to the enclave; its answers are read up to [`max_answer`] of it
    /// (a session status may be larger than the requests).
    pub max_frame: usize,
    /// Per-call timeout, including waiting for a free connection and connecting.
    pub call_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            pool_size: DEFAULT_POOL_SIZE,
            pipeline: DEFAULT_PIPELINE,
            max_frame: DEFAULT_MAX_FRAME,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// Called (once per change) when the enclave identity is first learned or changes:
/// `(previous identity, new identity)`. Awaited before the new connection is used.
pub type IdentityHook = Arc<dyn Fn(Option<Address>, Address) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The pool's connections, and how many are being made.
#[derive(Default)]
struct Pool {
    pipes: Vec<Arc<Pipe>>,
    connecting: usize,
}

/// Connections kept for one kind of call: at most `size`, each carrying at most `pipeline`
/// exchanges at once.
struct Lane {
    size: usize,
    pipeline: usize,
    /// One per exchange in flight: `size × pipeline`.
    permits: Arc<Semaphore>,
    pool: Mutex<Pool>,
    /// Notified when a connection has room again, closes, or is made.
    room: Arc<Notify>,
}

impl Lane {
    fn new(size: usize, pipeline: usize) -> Lane {
        Lane {
            size,
            pipeline,
            permits: Arc::new(Semaphore::new(size * pipeline)),
            pool: Mutex::new(Pool::default()),
            room: Arc::new(Notify::new()),
        }
    }
}

/// Connections kept for the audit pull's calls apart from the pool: an answer of up to
/// `MAX_REPLY_ENTRIES` entries, built, sent and read in turn on its connection, would hold
/// up the signing requests queued behind it there (BENCHMARKS.md, "The audit pull on a
/// connection of its own"). The pull's calls wait for each other there: one that is slow
/// (or a connection lost and not yet noticed, up to the call timeout) holds up the next
/// pull, never a signing request.
pub const AUDIT_CONNECTIONS: usize = 1;

/// A stand-alone enclave serves signing on its runtime's workers and every other call in
/// one of two lanes, one call at a time each (owner calls; status, audit head and
/// attestation), answering a connection's calls in order: a signing request pipelined
/// behind a creation on one connection would wait for the owner lane (where creations
/// from anyone's keys queue). So a stand-alone host sends those calls on connections of
/// their own, [`OWNER_CONNECTIONS`] and [`READING_CONNECTIONS`], and its pool carries
/// signing only (a cluster node serves a connection's calls at once: there every call but
/// the audit pull's takes the pool).
pub const OWNER_CONNECTIONS: usize = 1;
/// See [`OWNER_CONNECTIONS`].
pub const READING_CONNECTIONS: usize = 1;

// A full pool and the connections of their own leave a stand-alone enclave spare connections.
const _: () = assert!(
    bridle_common::frame::MAX_HOST_POOL + AUDIT_CONNECTIONS + OWNER_CONNECTIONS + READING_CONNECTIONS
        < bridle_common::frame::ENCLAVE_MAX_CONNECTIONS
);

/// Whether a call goes to the audit pull's connection: an `audit` call that fetches entries
/// (this host's pull, or a peer's forwarded to this host in a cluster). A verifier's fresh
/// head (`since` = `u64::MAX`, `GET /v1/audit/head`) is one small answer, and goes with the
/// rest, so that such requests never queue ahead of the pull.
fn is_bulk(call: &Call) -> bool {
    matches!(call, Call::Audit(q) if q.since != u64::MAX)
}

/// Which connections a call takes on a stand-alone host (see [`OWNER_CONNECTIONS`]); the
/// audit pull's are decided before.
fn stand_alone_lane(call: &Call) -> Kind {
    match call.class() {
        CallClass::Signing | CallClass::Cluster => Kind::Main,
        CallClass::Reading => Kind::Reading,
        CallClass::Owner => Kind::Owner,
    }
}

/// The connections a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The pool: signing (on a cluster host, every call but the audit pull's).
    Main,
    /// The audit pull's calls.
    Bulk,
    /// A stand-alone host's owner calls and sweeps.
    Owner,
    /// A stand-alone host's status, attestation and audit head.
    Reading,
}

/// A pooled, framed client for the enclave socket.
pub struct EnclaveClient {
    addr: SocketAddress,
    cfg: ClientConfig,
    /// Signing (in a cluster, every call but the audit pull's): `pool_size` connections.
    main: Lane,
    /// The audit pull's calls: [`AUDIT_CONNECTIONS`] of their own.
    bulk: Lane,
    /// A stand-alone host's owner calls: [`OWNER_CONNECTIONS`] of their own.
    owner: Lane,
    /// A stand-alone host's status, attestation and audit head: [`READING_CONNECTIONS`].
    reading: Lane,
    /// Serializes identity changes so the hook runs once per change.
    identity_lock: tokio::sync::Mutex<Option<Address>>,
    /// The identity as last established (after its hook ran).
    identity: RwLock<Option<Address>>,
    hook: Option<IdentityHook>,
    metrics: Option<Arc<Metrics>>,
    /// In a cluster: the other hosts, to send calls to the leader and fail over.
    cluster: Option<Arc<ClusterLink>>,
    /// Each session's signing requests with the enclave, at most a few at once.
    sessions: SessionGate,
}

impl std::fmt::Debug for EnclaveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnclaveClient")
            .field("addr", &self.addr)
            .field("cfg", &self.cfg)
            .field("identity", &self.identity())
            .finish()
    }
}

impl EnclaveClient {
    /// A client for `addr`. Connects lazily: nothing happens until the first call.
    pub fn new(addr: SocketAddress, cfg: ClientConfig) -> EnclaveClient {
        let pool = cfg.pool_size.max(1);
        let pipeline = cfg.pipeline.clamp(1, MAX_PIPELINE);
        EnclaveClient {
            addr,
            cfg: ClientConfig { pool_size: pool, pipeline, ..cfg },
            main: Lane::new(pool, pipeline),
            bulk: Lane::new(AUDIT_CONNECTIONS, pipeline),
            owner: Lane::new(OWNER_CONNECTIONS, pipeline),
            reading: Lane::new(READING_CONNECTIONS, pipeline),
            identity_lock: tokio::sync::Mutex::new(None),
            identity: RwLock::new(None),
            hook: None,
            metrics: None,
            cluster: None,
            sessions: SessionGate::default(),
        }
    }

    /// Route calls through the cluster (see [`EnclaveClient::call`]).
    pub fn with_cluster(mut self, link: Arc<ClusterLink>) -> Self {
        self.cluster = Some(link);
        self
    }

    /// The cluster link, when this host's enclave is a cluster node.
    pub fn cluster(&self) -> Option<&Arc<ClusterLink>> {
        self.cluster.as_ref()
    }

    /// Record calls, round trips and reachability in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Run `hook` whenever the enclave identity is learned or changes.
    pub fn on_identity(mut self, hook: IdentityHook) -> Self {
        self.hook = Some(hook);
        self
    }

    pub fn address(&self) -> &SocketAddress {
        &self.addr
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// The enclave identity address learned from the last connection, if any.
    pub fn identity(&self) -> Option<Address> {
        *self.identity.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Send one call and wait for its reply.
    ///
    /// In a cluster, a call goes where it can be served: a follower's enclave answers
    /// `not_leader` with the leader's host, and the call is sent there; when this host's
    /// enclave (or the leader) cannot be reached, the call goes to another member's host,
    /// until the call timeout. Sending a call again is safe: the cluster's log refuses a
    /// stamp or an owner nonce it has already accepted (and a signing request asked again
    /// with its stamp returns the signature it was charged for).
    pub async fn call(&self, call: Call) -> Result<Reply, ClientError> {
        self.call_within(call, self.cfg.call_timeout).await
    }

    /// [`EnclaveClient::call`], but in a cluster no new try starts once `limit` (at most the
    /// call timeout) has passed, instead of the whole call timeout: for callers that ask
    /// again later anyway (the sweeper), so that a call the cluster keeps answering
    /// `unavailable` (a leader that may not hold the session's key) does not hold them for
    /// the whole timeout. Two exceptions, both within the call timeout: an exchange under
    /// way is waited for (a call the leader may be committing is not cut short: its reply
    /// would be lost while it takes effect), and one `not_leader` pointer to the leader that
    /// arrives after the limit is followed (nothing was proposed yet; the leader may serve
    /// it).
    pub async fn call_within(&self, call: Call, limit: Duration) -> Result<Reply, ClientError> {
        let name = call.name();
        let result = match &self.cluster {
            Some(link) if !matches!(call, Call::Cluster(_)) => {
                self.call_routed(link, call, limit.min(self.cfg.call_timeout)).await
            }
            _ => self.call_inner(call).await,
        };
        if let Some(m) = &self.metrics {
            match &result {
                Ok(_) => m.record_request(name, "ok", ""),
                Err(ClientError::Denied(d)) => m.record_request(name, "denied", d.code.as_str()),
                Err(e) => m.record_request(name, "error", e.code_str()),
            }
            match &result {
                Err(ClientError::Unavailable(_)) | Err(ClientError::Timeout(_)) => m.set_enclave_up(false),
                _ => m.set_enclave_up(true),
            }
        }
        result
    }

    /// One call to this host's own enclave, never routed elsewhere.
    pub async fn call_direct(&self, call: Call) -> Result<Reply, ClientError> {
        self.call_inner(call).await
    }

    /// The identity of this host's own enclave, asked of it now if not known yet (a
    /// connection opened before a cluster node joined learned none): what the host checks
    /// replies against before it keeps anything of them. `None` while its own enclave does
    /// not say (a node not joined, or down): a peer's word is never taken for it.
    pub async fn own_identity(&self) -> Option<Address> {
        if let Some(id) = self.identity() {
            return Some(id);
        }
        let _ = self.call_inner(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await;
        self.identity()
    }

    async fn call_inner(&self, call: Call) -> Result<Reply, ClientError> {
        let name = call.name();
        let kind = match (&self.cluster, is_bulk(&call)) {
            (_, true) => Kind::Bulk,
            (Some(_), false) => Kind::Main,
            (None, false) => stand_alone_lane(&call),
        };
        // A signing request's session, for the gate (`session_gate`).
        let gated = match (&call, kind) {
            (Call::SignIfAllowed(r), Kind::Main) => Some(r.session),
            _ => None,
        };
        let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call })
            .map_err(|e| ClientError::Protocol(format!("cannot encode request: {e}")))?;
        if body.len() > self.cfg.max_frame {
            return Err(ClientError::Denied(Denial::new(
                ErrorCode::TooLarge,
                format!(
                    "request of {} bytes exceeds the enclave frame limit of {} bytes",
                    body.len(),
                    self.cfg.max_frame
                ),
            )));
        }
        let timeout = self.cfg.call_timeout;
        let lane = match kind {
            Kind::Main => &self.main,
            Kind::Bulk => &self.bulk,
            Kind::Owner => &self.owner,
            Kind::Reading => &self.reading,
        };
        // A signing request the enclave answered `enclave.session_busy` (its session's lock
        // held by the owner's calls) was neither decided nor recorded: asked again, within
        // the call timeout.
        // No new try starts when less than `BUSY_MARGIN` of the call timeout is left: the
        // last busy answer is returned (nothing signed), not a timeout whose outcome is
        // unknown.
        let deadline = Instant::now() + timeout;
        let signing = gated.is_some();
        let exchange = async {
            // While its session is busy, at most a few of one session's signing requests with
            // the enclave at once, tries included (`session_gate`), never waiting past the
            // margin: then nothing was sent, and the caller is told so.
            let last_try = deadline.checked_sub(BUSY_MARGIN).unwrap_or_else(Instant::now);
            let enter = |s| tokio::time::timeout_at(last_try.into(), self.sessions.enter(s));
            let mut place = None;
            if let Some(s) = gated.filter(|s| self.sessions.is_busy(*s)) {
                place = Some(enter(s).await.map_err(|_| ClientError::Denied(not_sent_busy()))?);
            }
            loop {
                match self.exchange(lane, name, &body).await {
                    Err(ClientError::Denied(d))
                        if signing
                            && bridle_common::error::is_session_busy(&d)
                            && deadline.saturating_duration_since(Instant::now()) > BUSY_MARGIN =>
                    {
                        if let Some(m) = &self.metrics {
                            m.session_busy_retried();
                        }
                        if let Some(s) = gated {
                            self.sessions.mark_busy(s);
                            if place.is_none() {
                                // No place before the margin: the busy answer, as it is.
                                place = Some(enter(s).await.map_err(|_| ClientError::Denied(d))?);
                            }
                        }
                        tokio::time::sleep(BUSY_RETRY).await;
                    }
                    r => return r,
                }
            }
        };
        let r = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(timeout)),
        };
        // The identity is learned from this host's own enclave only: in a cluster a status
        // may be answered by a peer host, which could name any key — then trusted to check
        // sweep replies, and taken for a restart that loses every stored session (a review
        // of 2026-12-06).
        if let Ok(Reply::Status(s)) = &r {
            self.observe_identity(s.identity_address).await;
        }
        r
    }

    async fn exchange(&self, lane: &Lane, name: &str, body: &[u8]) -> Result<Reply, ClientError> {
        let mut retried = false;
        loop {
            // The semaphore is never closed.
            let permit = lane
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ClientError::Unavailable("client closed".into()))?;
            let pipe = self.pipe(lane).await?;
            let t0 = Instant::now();
            let outcome = pipe.send(body.to_vec(), permit).await;
            match outcome {
                Ok(Outcome::Reply(resp)) => {
                    if let Some(m) = &self.metrics {
                        m.observe_roundtrip(name, t0.elapsed());
                    }
                    return decode_response(&resp).and_then(|r| r.map_err(ClientError::Denied));
                }
                Ok(Outcome::NotSent(why)) if !retried => {
                    // Its connection takes no more requests: another one carries it.
                    tracing::debug!(call = name, error = %why, "request not sent; retrying once on another connection");
                    retried = true;
                }
                Ok(Outcome::NotSent(why)) => {
                    return Err(ClientError::Unavailable(format!("cannot send the request to the enclave: {why}")))
                }
                Ok(Outcome::Lost(why)) => return Err(ClientError::Unavailable(why)),
                Ok(Outcome::Protocol(why)) => return Err(ClientError::Protocol(why)),
                Err(_) => {
                    return Err(ClientError::Unavailable(
                        "connection to the enclave lost after the request was sent; not retried".into(),
                    ))
                }
            }
        }
    }

    /// A connection for one more exchange, counted on it: an idle one, else a new one while
    /// the pool has room, else the least busy with room in its pipeline.
    async fn pipe(&self, lane: &Lane) -> Result<Arc<Pipe>, ClientError> {
        loop {
            let room = lane.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut pool = lane.pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.pipes.retain(|p| !p.is_closed());
                let open = pool.pipes.iter().filter(|p| !p.is_dead());
                let best = open.min_by_key(|p| p.load());
                let can_connect = pool.pipes.len() + pool.connecting < lane.size;
                match best {
                    Some(p) if p.load() == 0 || (!can_connect && p.load() < lane.pipeline) => {
                        p.reserve();
                        return Ok(p.clone());
                    }
                    _ if can_connect => {
                        pool.connecting += 1;
                        break;
                    }
                    _ => {}
                }
            }
            room.await;
        }
        // Counted as connecting until made, failed, or abandoned (a caller's timeout).
        struct Connecting<'a>(&'a Lane);
        impl Drop for Connecting<'_> {
            fn drop(&mut self) {
                self.0.pool.lock().unwrap_or_else(|e| e.into_inner()).connecting -= 1;
                self.0.room.notify_waiters();
            }
        }
        let connecting = Connecting(lane);
        let pipe = Arc::new(self.connect(&lane.room).await?);
        pipe.reserve();
        lane.pool.lock().unwrap_or_else(|e| e.into_inner()).pipes.push(pipe.clone());
        drop(connecting);
        Ok(pipe)
    }

    /// A new connection, its identity learned before it carries anything else.
    async fn connect(&self, room: &Arc<Notify>) -> Result<Pipe, ClientError> {
        let unavailable = |e: std::io::Error| ClientError::Unavailable(format!("cannot connect to {}: {e}", self.addr));
        let mut io: Box<dyn Io> = match &self.addr {
            SocketAddress::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.map_err(unavailable)?),
            SocketAddress::Vsock { cid, port } => Box::new(
                tokio_vsock::VsockStream::connect(tokio_vsock::VsockAddr::new(*cid, *port))
                    .await
                    .map_err(unavailable)?,
            ),
            SocketAddress::VsockUds { path, port } => {
                let mut stream = tokio::net::UnixStream::connect(path).await.map_err(unavailable)?;
                hybrid_vsock_handshake(&mut stream, *port).await.map_err(unavailable)?;
                Box::new(stream)
            }
        };
        let body = to_cbor(&RequestFrame {
            version: PROTOCOL_VERSION,
            call: Call::Status(StatusQuery { session: None, nonce: None, held: None }),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let t0 = Instant::now();
        if let Err(e) = write_frame(&mut io, &body).await {
            return Err(ClientError::Unavailable(format!("enclave closed the new connection: {e}")));
        }
        let mut reader = FrameReader { io: &mut io, buf: Vec::new(), max: max_answer(self.cfg.max_frame) };
        let resp = reader.next().await.map_err(|e| {
            ClientError::Unavailable(format!("enclave closed the new connection before answering status: {e}"))
        })?;
        if !reader.buf.is_empty() {
            return Err(ClientError::Protocol("the enclave sent more than its answer to status".into()));
        }
        if let Some(m) = &self.metrics {
            m.observe_roundtrip("status", t0.elapsed());
        }
        let reply = decode_response(&resp)?;
        let pipe = || Pipe::start(io, self.cfg.max_frame, self.cfg.call_timeout, room.clone());
        match reply {
            Ok(Reply::Status(s)) => {
                self.observe_identity(s.identity_address).await;
                Ok(pipe())
            }
            // A cluster node that has not joined yet has no identity to give: the
            // connection is good (it carries the cluster calls that make it join).
            Err(d) if d.code == ErrorCode::Unavailable => Ok(pipe()),
            Ok(other) => Err(ClientError::Protocol(format!("status answered with {}", reply_name(&other)))),
            Err(d) => Err(ClientError::Protocol(format!("enclave refused status: {d}"))),
        }
    }

    async fn observe_identity(&self, id: Address) {
        if self.identity() == Some(id) {
            return;
        }
        let mut known = self.identity_lock.lock().await;
        if *known == Some(id) {
            return;
        }
        let previous = *known;
        if let Some(hook) = &self.hook {
            // Run to completion even if this call is cancelled (timeout, client gone).
            let _ = tokio::spawn(hook(previous, id)).await;
        }
        *known = Some(id);
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }
}

/// A response frame's body: the enclave's answer, or a protocol error (a frame of another
/// protocol version among them, from this host's enclave or forwarded by a peer host).
pub(crate) fn decode_response(body: &[u8]) -> Result<Result<Reply, Denial>, ClientError> {
    let frame: ResponseFrame = from_cbor(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if frame.version != PROTOCOL_VERSION {
        return Err(ClientError::Protocol(format!(
            "enclave speaks protocol version {}, this host {}",
            frame.version, PROTOCOL_VERSION
        )));
    }
    Ok(frame.result)
}

/// The wire name of a reply kind, for messages.
pub fn reply_name(r: &Reply) -> &'static str {
    match r {
        Reply::Signed(_) => "signed",
        Reply::SessionCreated(_) => "session_created",
        Reply::PolicyUpdated(_) => "policy_updated",
        Reply::Revoked(_) => "revoked",
        Reply::PendingDenied(_) => "pending_denied",
        Reply::Attestation(_) => "attestation",
        Reply::Audit(_) => "audit",
        Reply::Status(_) => "status",
        Reply::Swept(_) => "swept",
        Reply::NotLeader(_) => "not_leader",
        Reply::Cluster(_) => "cluster",
        Reply::ImageAllowed(_) => "image_allowed",
    }
}

#[path = "hybrid_vsock.rs"]
mod hybrid_vsock;
#[path = "enclave_client_routing.rs"]
mod routing;
pub use hybrid_vsock::hybrid_vsock_handshake;

#[cfg(test)]
#[path = "enclave_client_tests.rs"]
mod tests;
