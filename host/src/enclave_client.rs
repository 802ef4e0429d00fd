//! The host's connection to the enclave: a small pool of framed connections over a Unix
//! socket (development), vsock (Nitro), or a hybrid-vsock Unix socket (a VM whose vsock
//! device is backed in user space, e.g. by vhost-device-vsock: see [`hybrid_vsock_handshake`]).
//!
//! Each connection carries one request/response exchange at a time, in order. Up to
//! `pool_size` exchanges run concurrently, each on its own connection; connections are
//! made lazily and kept for reuse. Every new connection first asks the enclave for its
//! identity (`status`), so an enclave restart (a new identity key, R-TRUST-4) is noticed
//! before any request goes over the new connection.
//!
//! Retry rule: a request is retried once, on a fresh connection, only when writing it
//! failed — i.e. the enclave cannot have received a complete frame. Once a request is
//! fully written it is never re-sent: a signing request may have reached the enclave.

use alloy_primitives::Address;
use bridle_common::address::SocketAddress;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, read_frame, to_cbor, write_frame, FrameError, DEFAULT_MAX_FRAME};
use bridle_common::protocol::{Call, Reply, RequestFrame, ResponseFrame, StatusQuery, PROTOCOL_VERSION};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;

use crate::cluster::ClusterLink;
use crate::metrics::Metrics;

/// Default number of pooled connections (and concurrent exchanges).
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Default per-call timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Most connections (and so concurrent exchanges). At least 1.
    pub pool_size: usize,
    /// Largest frame accepted from, or sent to, the enclave.
    pub max_frame: usize,
    /// Per-call timeout, including waiting for a free connection and connecting.
    pub call_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { pool_size: DEFAULT_POOL_SIZE, max_frame: DEFAULT_MAX_FRAME, call_timeout: DEFAULT_CALL_TIMEOUT }
    }
}

/// Called (once per change) when the enclave identity is first learned or changes:
/// `(previous identity, new identity)`. Awaited before the new connection is used.
pub type IdentityHook = Arc<dyn Fn(Option<Address>, Address) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// One connection. Reads are buffered so that a reply's length prefix and body usually
/// come in one `recv` rather than two (issue 12: one system call less per request).
struct Conn {
    io: tokio::io::BufReader<Box<dyn Io>>,
}

impl Conn {
    fn new(io: Box<dyn Io>) -> Conn {
        Conn { io: tokio::io::BufReader::new(io) }
    }

    /// A pooled connection is alive when a read would block: EOF, an error, or unsolicited
    /// bytes (buffered already, or waiting on the socket) all mean it must be dropped.
    fn is_alive(&mut self) -> bool {
        if !self.io.buffer().is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        matches!(Pin::new(self.io.get_mut()).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

/// A pooled, framed client for the enclave socket.
pub struct EnclaveClient {
    addr: SocketAddress,
    cfg: ClientConfig,
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
    /// Serializes identity changes so the hook runs once per change.
    identity_lock: tokio::sync::Mutex<Option<Address>>,
    /// The identity as last established (after its hook ran).
    identity: RwLock<Option<Address>>,
    hook: Option<IdentityHook>,
    metrics: Option<Arc<Metrics>>,
    /// In a cluster: the other hosts, to send calls to the leader and fail over.
    cluster: Option<Arc<ClusterLink>>,
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

enum Attempt {
    Reply(Box<Result<Reply, Denial>>),
    /// Writing failed: the enclave never received the whole request.
    NotSent(String),
}

impl EnclaveClient {
    /// A client for `addr`. Connects lazily: nothing happens until the first call.
    pub fn new(addr: SocketAddress, cfg: ClientConfig) -> EnclaveClient {
        let pool = cfg.pool_size.max(1);
        EnclaveClient {
            addr,
            cfg: ClientConfig { pool_size: pool, ..cfg },
            permits: Semaphore::new(pool),
            idle: Mutex::new(Vec::with_capacity(pool)),
            identity_lock: tokio::sync::Mutex::new(None),
            identity: RwLock::new(None),
            hook: None,
            metrics: None,
            cluster: None,
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
        let name = call.name();
        let result = match &self.cluster {
            Some(link) if !matches!(call, Call::Cluster(_)) => self.call_routed(link, call).await,
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
        if let Ok(Reply::Status(s)) = &result {
            self.observe_identity(s.identity_address).await;
        }
        result
    }

    /// One call to this host's own enclave, never routed elsewhere.
    pub async fn call_direct(&self, call: Call) -> Result<Reply, ClientError> {
        self.call_inner(call).await
    }

    async fn call_routed(&self, link: &ClusterLink, call: Call) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + self.cfg.call_timeout;
        let mut target: Option<String> = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = match &target {
                None => self.call_inner(call.clone()).await,
                Some(url) => link.forward(url, &call, left.max(Duration::from_millis(100))).await,
            };
            let pause = match &r {
                Ok(Reply::NotLeader(nl)) => {
                    target = nl.leader_url.clone().filter(|u| !link.is_me(u));
                    // No leader known yet (an election): ask again shortly.
                    if target.is_some() {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(100)
                    }
                }
                Err(ClientError::Unavailable(_)) | Err(ClientError::Timeout(_)) => {
                    target = link.next_peer(target.as_deref());
                    Duration::from_millis(100)
                }
                Err(ClientError::Denied(d)) if d.code == ErrorCode::Unavailable => {
                    target = link.next_peer(target.as_deref());
                    Duration::from_millis(100)
                }
                _ => return r,
            };
            if Instant::now() + pause >= deadline {
                return match r {
                    Ok(Reply::NotLeader(_)) => Err(ClientError::Denied(Denial::new(
                        ErrorCode::Unavailable,
                        "the cluster has no leader now (an election, or no majority); nothing was signed; ask again",
                    ))),
                    other => other,
                };
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn call_inner(&self, call: Call) -> Result<Reply, ClientError> {
        let name = call.name();
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
        match tokio::time::timeout(timeout, self.exchange(name, &body)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    async fn exchange(&self, name: &str, body: &[u8]) -> Result<Reply, ClientError> {
        // The semaphore is never closed.
        let _permit = self.permits.acquire().await.map_err(|_| ClientError::Unavailable("client closed".into()))?;
        let mut conn = self.checkout(false).await?;
        match self.attempt(name, &mut conn, body).await? {
            Attempt::Reply(r) => {
                self.checkin(conn);
                (*r).map_err(ClientError::Denied)
            }
            Attempt::NotSent(why) => {
                drop(conn);
                tracing::debug!(call = name, error = %why, "request not sent; retrying once on a fresh connection");
                let mut conn = self.checkout(true).await?;
                match self.attempt(name, &mut conn, body).await? {
                    Attempt::Reply(r) => {
                        self.checkin(conn);
                        (*r).map_err(ClientError::Denied)
                    }
                    Attempt::NotSent(why) => {
                        Err(ClientError::Unavailable(format!("cannot send the request to the enclave: {why}")))
                    }
                }
            }
        }
    }

    /// One exchange on `conn`. On any error after the request was written the connection
    /// is left for the caller to drop (it is not checked in).
    async fn attempt(&self, name: &str, conn: &mut Conn, body: &[u8]) -> Result<Attempt, ClientError> {
        let t0 = Instant::now();
        if let Err(e) = write_frame(&mut conn.io, body).await {
            return Ok(Attempt::NotSent(e.to_string()));
        }
        let resp = read_frame(&mut conn.io, self.cfg.max_frame).await.map_err(|e| match e {
            FrameError::Closed | FrameError::Io(_) => ClientError::Unavailable(format!(
                "connection to the enclave lost after the request was sent ({e}); not retried"
            )),
            other => ClientError::Protocol(other.to_string()),
        })?;
        if let Some(m) = &self.metrics {
            m.observe_roundtrip(name, t0.elapsed());
        }
        let frame: ResponseFrame = from_cbor(&resp).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if frame.version != PROTOCOL_VERSION {
            return Err(ClientError::Protocol(format!(
                "enclave speaks protocol version {}, this host {}",
                frame.version, PROTOCOL_VERSION
            )));
        }
        Ok(Attempt::Reply(Box::new(frame.result)))
    }

    async fn checkout(&self, fresh: bool) -> Result<Conn, ClientError> {
        if !fresh {
            loop {
                let c = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                match c {
                    Some(mut c) => {
                        if c.is_alive() {
                            return Ok(c);
                        }
                    }
                    None => break,
                }
            }
        }
        self.connect().await
    }

    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.cfg.pool_size {
            idle.push(conn);
        }
    }

    /// Drop every pooled connection (the next call connects afresh).
    pub fn reset(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let unavailable = |e: std::io::Error| ClientError::Unavailable(format!("cannot connect to {}: {e}", self.addr));
        let io: Box<dyn Io> = match &self.addr {
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
        let mut conn = Conn::new(io);
        // Learn the identity before the connection carries anything else.
        let body = to_cbor(&RequestFrame {
            version: PROTOCOL_VERSION,
            call: Call::Status(StatusQuery { session: None, nonce: None }),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let reply = match self.attempt("status", &mut conn, &body).await? {
            Attempt::NotSent(why) => {
                return Err(ClientError::Unavailable(format!("enclave closed the new connection: {why}")))
            }
            Attempt::Reply(r) => *r,
        };
        match reply {
            Ok(Reply::Status(s)) => {
                self.observe_identity(s.identity_address).await;
                Ok(conn)
            }
            // A cluster node that has not joined yet has no identity to give: the
            // connection is good (it carries the cluster calls that make it join).
            Err(d) if d.code == ErrorCode::Unavailable => Ok(conn),
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

/// Longest reply line accepted from a hybrid-vsock backend (`OK <port>\n` is at most 14).
const HYBRID_VSOCK_MAX_LINE: usize = 64;

/// The hybrid-vsock handshake (Firecracker's protocol, spoken by vhost-device-vsock's
/// `--uds-path` socket): send `CONNECT <port>\n`, read one line, which must be `OK …\n`.
/// Afterwards the stream carries the guest's vsock connection to `port`. The line is read
/// byte by byte so that nothing after it is consumed.
pub async fn hybrid_vsock_handshake<S>(stream: &mut S, port: u32) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let refused = |why: String| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, why);
    stream.write_all(format!("CONNECT {port}\n").as_bytes()).await?;
    stream.flush().await?;
    let mut line = Vec::with_capacity(16);
    loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(refused(format!(
                "hybrid vsock: the backend closed the connection before answering CONNECT {port} \
                 (nothing listening on guest port {port}?)"
            )));
        }
        if byte[0] == b'\n' {
            break;
        }
        if line.len() >= HYBRID_VSOCK_MAX_LINE {
            return Err(refused(format!(
                "hybrid vsock: reply to CONNECT {port} longer than {HYBRID_VSOCK_MAX_LINE} bytes"
            )));
        }
        line.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&line);
    if text == "OK" || text.starts_with("OK ") {
        Ok(())
    } else {
        Err(refused(format!("hybrid vsock: CONNECT {port} answered {text:?}, expected \"OK …\"")))
    }
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

#[cfg(test)]
mod tests {
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
}
