//! The enclave's one socket: length-prefixed CBOR frames over a Unix socket (development)
//! or vsock (Nitro). One response frame per request frame, in order, per connection.

use crate::cluster::ClusterNode;
use crate::lanes::{lane_of, wait_for_session, Lane, Lanes};
use crate::service::{Enclave, LockWait};
use alloy_primitives::Address;
use bridle_common::address::SocketAddress;
use bridle_common::cluster::MAX_CALL_FRAME;
use bridle_common::error::{is_session_busy, Denial, ErrorCode};
use bridle_common::frame::{
    from_cbor, from_cbor_within, max_answer, max_decoded, push_frame, read_frame, read_frame_body, read_frame_len,
    to_cbor, FrameError,
};
use bridle_common::protocol::{is_cluster_call, Call, RequestFrame, ResponseFrame, PROTOCOL_VERSION};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_frame: usize,
    pub max_connections: usize,
    /// A connection idle (or stuck mid-frame) this long is closed; so is one whose peer
    /// has not taken an answer for this long. On a cluster node the idle clock also runs
    /// while calls are in flight (they end within seconds); the connection then answers
    /// what it owes and closes.
    pub idle_timeout: Duration,
    /// A stand-alone enclave's lanes for calls other than signing, shared by every
    /// connection served with this configuration (see [`crate::lanes`]).
    pub lanes: Arc<Lanes>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: bridle_common::frame::DEFAULT_MAX_FRAME,
            max_connections: bridle_common::frame::ENCLAVE_MAX_CONNECTIONS,
            idle_timeout: Duration::from_secs(300),
            lanes: Arc::default(),
        }
    }
}

/// Responses held back on a connection while more requests are buffered (at most this
/// many bytes of them; the memory plan counts them per connection).
pub const MAX_HELD: usize = 256 << 10;

/// What the socket serves: one enclave, or a node of an enclave cluster.
#[derive(Clone)]
pub enum Service {
    Single(Arc<Enclave>),
    Cluster(Arc<ClusterNode>),
}

/// Decode and serve one frame body for a cluster node (see [`handle_frame`]). A cluster
/// node's calls are asynchronous (they wait for the log); each poll of one, its decoding
/// included, is isolated, so a panic in it is an `internal` error for that frame only.
pub async fn handle_node_frame(node: &ClusterNode, body: &[u8]) -> ResponseFrame {
    let result = isolated(async {
        // Only cluster traffic may be larger than a call: anything else is refused before
        // it is decoded, and cluster traffic is decoded within its bytes' worth (its large
        // calls carry messages as byte strings) beside what a call may take.
        let decoded = if body.len() > MAX_CALL_FRAME {
            match is_cluster_call(body) {
                Ok(true) => from_cbor_within::<RequestFrame>(
                    body,
                    body.len().saturating_mul(3).saturating_add(max_decoded(MAX_CALL_FRAME)),
                ),
                Ok(false) => {
                    return Err(Denial::new(
                        ErrorCode::TooLarge,
                        format!(
                            "a request of {} bytes that is not cluster traffic; a cluster node serves at most {MAX_CALL_FRAME}",
                            body.len()
                        ),
                    ))
                }
                Err(e) => return Err(undecodable(&e)),
            }
        } else {
            from_cbor::<RequestFrame>(body)
        };
        match decoded {
            Err(e) => Err(undecodable(&e)),
            Ok(f) if f.version != PROTOCOL_VERSION => Err(Denial::new(
                ErrorCode::Unsupported,
                format!("protocol version {} (this enclave speaks {PROTOCOL_VERSION})", f.version),
            )),
            // Only cluster traffic may be larger than a call (see `MAX_CALL_FRAME`).
            Ok(f) if body.len() > MAX_CALL_FRAME && !matches!(f.call, Call::Cluster(_)) => Err(Denial::new(
                ErrorCode::TooLarge,
                format!("a request of {} bytes; a cluster node serves at most {MAX_CALL_FRAME}", body.len()),
            )),
            Ok(f) => node.handle(f.call).await,
        }
    })
    .await;
    ResponseFrame { version: PROTOCOL_VERSION, result }
}

/// Why a request frame was not decoded: `too_large` for one whose decoded form exceeds its
/// bound, else `malformed`.
fn undecodable(e: &FrameError) -> Denial {
    let mut denial = e.to_denial();
    denial.reason.insert_str(0, "request frame: ");
    denial
}

/// Run `call` with each of its polls isolated, as a task of its own would be, without
/// moving the call's future to the heap and to another task for every frame: a panic ends
/// it with `internal` (it is dropped at once, its own drop isolated too, and never polled
/// again), and the connection serves on.
async fn isolated<T>(call: impl Future<Output = Result<T, Denial>>) -> Result<T, Denial> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::task::Poll;
    let failed = || {
        Denial::new(
            ErrorCode::Internal,
            "the request could not be processed; if it was committed, asking again with the same stamp returns its result",
        )
    };
    let mut call = std::pin::pin!(Some(call));
    std::future::poll_fn(|cx| {
        let polled = catch_unwind(AssertUnwindSafe(|| match call.as_mut().as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Ready(Err(failed())),
        }));
        match polled {
            Ok(p) => p,
            Err(_) => {
                tracing::error!("a cluster call panicked; it ends with `internal`, the node serves on");
                let _ = catch_unwind(AssertUnwindSafe(|| call.set(None)));
                Poll::Ready(Err(failed()))
            }
        }
    })
    .await
}

/// Decode and serve one frame body. Never panics; any failure is a typed error reply. The
/// decoding runs isolated too (a panic in it is an `internal` error for this frame only),
/// and within hard bounds: the frame's size was checked before it was read, CBOR nesting is
/// limited, and every payload decoder below is bounded before it runs.
pub fn handle_frame(enclave: &Enclave, body: &[u8]) -> ResponseFrame {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match from_cbor::<RequestFrame>(body) {
        Err(e) => Err(undecodable(&e)),
        Ok(f) if f.version != PROTOCOL_VERSION => Err(unsupported(f.version)),
        Ok(f) => enclave.handle(f.call),
    }))
    .unwrap_or_else(|_| Err(internal()));
    ResponseFrame { version: PROTOCOL_VERSION, result }
}

fn unsupported(version: u16) -> Denial {
    Denial::new(ErrorCode::Unsupported, format!("protocol version {version} (this enclave speaks {PROTOCOL_VERSION})"))
}

fn internal() -> Denial {
    Denial::new(ErrorCode::Internal, "the request could not be processed; nothing was signed")
}

/// Decode and serve a frame read as signing, on a runtime worker ([`crate::lanes`]): only
/// a frame that decodes as signing is served, and its session's lock is waited for only
/// briefly. `Err(session)`: that session's lock is held (an owner call working on it) —
/// nothing was decided or changed; ask again once it is free ([`sign_on_the_worker`]).
fn handle_signing(enclave: &Enclave, body: &[u8]) -> Result<ResponseFrame, Address> {
    let mut busy = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match from_cbor::<RequestFrame>(body) {
        Err(e) => Err(undecodable(&e)),
        Ok(f) if f.version != PROTOCOL_VERSION => Err(unsupported(f.version)),
        Ok(RequestFrame { call: Call::SignIfAllowed(req), .. }) => {
            let session = req.session;
            let r = enclave.handle_waiting(Call::SignIfAllowed(req), LockWait::Briefly);
            if matches!(&r, Err(d) if is_session_busy(d)) {
                busy = Some(session);
            }
            r
        }
        Ok(f) => Err(Denial::new(
            ErrorCode::Malformed,
            format!("request frame: its first bytes name sign_if_allowed, but it decodes as {}", f.call.name()),
        )),
    }))
    .unwrap_or_else(|_| Err(internal()));
    match busy {
        Some(session) => Err(session),
        None => Ok(ResponseFrame { version: PROTOCOL_VERSION, result }),
    }
}

/// How long a signing request waits for its session's lock before it is answered that the
/// session is busy (`unavailable`, `enclave.session_busy`: nothing decided, nothing
/// changed; the host asks again). Short: a connection answers in order, so a request
/// waiting here holds up the requests behind it on its connection (a review of 2026-12-05).
const BUSY_PATIENCE: Duration = Duration::from_millis(50);

/// Serve a signing request on the worker; while its session's lock is held (an owner call
/// working on that session — a sweep signs up to ≈ 512 revocations under it), wait for it
/// on the blocking pool holding nothing decoded (the frame's bytes are the connection's),
/// at most [`BUSY_PATIENCE`] in all, then try again: the worker serves other connections
/// meanwhile, and no lane's turn is held (reviews of 2026-12-05). No attempt starts after
/// the patience is spent.
async fn sign_on_the_worker(enclave: &Arc<Enclave>, body: &[u8]) -> ResponseFrame {
    let deadline = std::time::Instant::now() + BUSY_PATIENCE;
    loop {
        let session = match handle_signing(enclave, body) {
            Ok(resp) => return resp,
            Err(session) => session,
        };
        if let Err(busy) = wait_for_session(Arc::clone(enclave), session, deadline, "nothing was signed").await {
            return ResponseFrame { version: PROTOCOL_VERSION, result: Err(busy) };
        }
    }
}

/// Decode and serve `body` on the runtime's blocking pool, in a lane's turn: the calling task (the
/// connection's) stays on its worker and waits, so the thread that decodes and serves it is
/// one of the lane's (a thread handed off with `block_in_place` went on running the task,
/// decoding its next frame beside the workers' — a review of 2026-12-05).
async fn off_the_worker(enclave: &Arc<Enclave>, body: Vec<u8>) -> ResponseFrame {
    let e = Arc::clone(enclave);
    match tokio::task::spawn_blocking(move || handle_frame(&e, &body)).await {
        Ok(resp) => resp,
        // (Not expected: `handle_frame` catches panics, and the runtime is not shutting
        // down while it serves.)
        Err(_) => ResponseFrame { version: PROTOCOL_VERSION, result: Err(internal()) },
    }
}

/// Append one response frame to `out`. An answer larger than [`max_answer`] of the
/// connection's frame limit — more than the memory plan counts, and more than a host reads —
/// is replaced by a `too_large` refusal.
fn push_response(out: &mut Vec<u8>, resp: &ResponseFrame, max_frame: usize) -> Result<(), FrameError> {
    let body = to_cbor(resp)?;
    let max = max_answer(max_frame);
    if body.len() > max {
        let refused = ResponseFrame {
            version: PROTOCOL_VERSION,
            result: Err(Denial::new(
                ErrorCode::TooLarge,
                format!("the answer would be {} bytes; an answer is at most {max}", body.len()),
            )),
        };
        return push_frame(out, &to_cbor(&refused)?);
    }
    // Grown to exactly what it holds (not doubled): `out` then never holds more than the
    // answers held back and this one, as the memory plan counts.
    out.reserve_exact(4 + body.len());
    push_frame(out, &body)
}

/// Send the responses owed, within `limit` (a peer that does not read is not waited for).
async fn flush<W: AsyncWrite + Unpin>(w: &mut W, out: &mut Vec<u8>, limit: Duration) -> Result<(), FrameError> {
    if !out.is_empty() {
        let write = async {
            w.write_all(out).await?;
            w.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(written) => written?,
            Err(_) => return Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())),
        }
        out.clear();
        // A large answer's buffer is not kept for the connection's life.
        out.shrink_to(MAX_HELD);
    }
    Ok(())
}

/// Whether `buf` starts with a whole frame (length prefix and body).
fn whole_frame(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf.len() - 4 >= u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// Serve one connection until it closes or sends a frame over the limit. A host may send
/// its next requests before the answers to the previous ones (a pipeline); the answers
/// come back in the order of the requests. A stand-alone enclave answers each request
/// before it reads the next; a cluster node serves up to [`MAX_CONCURRENT_CALLS`] of a
/// connection's calls at once, since a call waits for the log.
pub async fn serve_connection<S>(service: Service, stream: S, cfg: ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match service {
        Service::Single(enclave) => serve_in_turn(&enclave, stream, &cfg).await,
        Service::Cluster(node) => {
            let call = |body: Vec<u8>| {
                let node = node.clone();
                async move { handle_node_frame(&node, &body).await }
            };
            serve_concurrently(call, stream, &cfg).await
        }
    }
}

/// Requests answered one after another: signing on the runtime's worker, any other call
/// in its lane's turn, off the worker ([`crate::lanes`]). Responses to requests that came in together go out
/// together: a response is held back while the next request is already whole in the read
/// buffer (at most [`MAX_HELD`] bytes of them).
async fn serve_in_turn<S>(enclave: &Arc<Enclave>, stream: S, cfg: &ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (r, mut w) = tokio::io::split(stream);
    // Buffered, so that a frame's length prefix and body usually come in one `recv` rather
    // than two, and frames sent together in one (issue 12). The buffer never holds more
    // than its capacity: a frame's size is still checked before its body is allocated.
    let mut r = tokio::io::BufReader::new(r);
    let mut out = Vec::new();
    loop {
        if (!whole_frame(r.buffer()) || out.len() >= MAX_HELD)
            && flush(&mut w, &mut out, cfg.idle_timeout).await.is_err()
        {
            return;
        }
        let body = match next_frame(&mut r, cfg).await {
            Next::Body(body) => body,
            Next::Refused(denial) => return answer_last(&mut w, &mut out, denial, cfg.idle_timeout).await,
            Next::End => return,
        };
        let lane = lane_of(&body);
        // A lane's turn is held until its answer is encoded (the memory plan counts both).
        let (resp, turn) = match lane {
            Lane::Signing => (sign_on_the_worker(enclave, &body).await, None),
            lane => {
                let turn = cfg.lanes.turn(lane).await;
                (off_the_worker(enclave, body).await, turn)
            }
        };
        let pushed = push_response(&mut out, &resp, cfg.max_frame);
        drop((resp, turn));
        if pushed.is_err() {
            // (Not expected: encoding into memory.) What was answered before still goes.
            let _ = flush(&mut w, &mut out, cfg.idle_timeout).await;
            return;
        }
    }
}

/// Most calls of one connection a cluster node serves at once; the connection's next frame
/// is not read while this many are unanswered: the most a host pipelines on one connection.
pub const MAX_CONCURRENT_CALLS: usize = bridle_common::frame::MAX_PIPELINE;

/// A cluster node's connection: each request is served as soon as it is read, while the
/// earlier ones wait for the log, and answered in order. Answers that are ready together go
/// out in one write. Calls of one connection run concurrently: their order in the log is
/// not the order they were sent in (as for calls on different connections).
///
/// What unanswered requests hold is bounded as for one call at a time: at most
/// [`MAX_CONCURRENT_CALLS`] calls, and their bodies (with the one read ahead) at most
/// `max_frame` bytes together — a frame's body is read only once the bodies before it
/// leave room for it. Every call accepted is served to its end, even when the peer has
/// gone (its answer is then dropped).
async fn serve_concurrently<S, F, C>(call: F, stream: S, cfg: &ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Vec<u8>) -> C + Clone,
    C: Future<Output = ResponseFrame>,
{
    use futures_util::{stream::FuturesOrdered, FutureExt, StreamExt};
    let (r, mut w) = tokio::io::split(stream);
    let mut r = tokio::io::BufReader::new(r);
    // Bytes of request bodies not yet answered (u32: a frame's length is one).
    let credit = Semaphore::new(cfg.max_frame.min(u32::MAX as usize));
    // Frames are read by a future of their own and handed over one at a time: a frame read
    // must never be abandoned half-way (the stream would lose its framing), so it is not
    // raced against the calls.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Next, Option<SemaphorePermit<'_>>)>(1);
    let reader = {
        let (r, credit) = (&mut r, &credit);
        async move {
            loop {
                let Ok(slot) = tx.reserve().await else { return };
                let (next, held) = match tokio::time::timeout(cfg.idle_timeout, read_frame_len(r, cfg.max_frame)).await
                {
                    Ok(Ok(len)) => {
                        let Ok(held) = credit.acquire_many(len as u32).await else { return };
                        match tokio::time::timeout(cfg.idle_timeout, read_frame_body(r, len)).await {
                            Ok(Ok(body)) => (Next::Body(body), Some(held)),
                            Ok(Err(e)) => (Next::ended(e), None),
                            Err(_) => (Next::End, None),
                        }
                    }
                    Ok(Err(e)) => (Next::ended(e), None),
                    Err(_) => (Next::End, None),
                };
                let more = matches!(next, Next::Body(_));
                slot.send((next, held));
                if !more {
                    return;
                }
            }
        }
    };
    let calls_and_answers = async {
        let mut calls = FuturesOrdered::new();
        let mut out = Vec::new();
        let mut reading = true;
        let mut refused = None;
        let mut gone = false;
        loop {
            if !gone && flush(&mut w, &mut out, cfg.idle_timeout).await.is_err() {
                gone = true;
            }
            if gone {
                // The peer is gone: serve what was accepted to its end, answer nothing.
                while calls.next().await.is_some() {}
                return;
            }
            if !reading && calls.is_empty() {
                if let Some(denial) = refused {
                    answer_last(&mut w, &mut out, denial, cfg.idle_timeout).await;
                }
                return;
            }
            tokio::select! {
                Some(first) = calls.next(), if !calls.is_empty() => {
                    let mut resp: ResponseFrame = first;
                    loop {
                        if push_response(&mut out, &resp, cfg.max_frame).is_err() {
                            // (Not expected: encoding into memory.) What was answered
                            // before still goes; then the connection closes.
                            let _ = flush(&mut w, &mut out, cfg.idle_timeout).await;
                            gone = true;
                            break;
                        }
                        // The answers already done go out in the same write.
                        match calls.next().now_or_never() {
                            Some(Some(next)) => resp = next,
                            _ => break,
                        }
                    }
                }
                next = rx.recv(), if reading && calls.len() < MAX_CONCURRENT_CALLS => match next {
                    Some((Next::Body(body), held)) => {
                        // Boxed, and the call's future made in its box when first polled:
                        // a cluster call's future is large, and moving it into the queue
                        // copied it whole several times (a tenth of a leader's CPU at 16
                        // calls in flight, `perf`).
                        let call = call.clone();
                        calls.push_back(Box::pin(async move {
                            let resp = call(body).await;
                            drop(held);
                            resp
                        }));
                    }
                    Some((Next::Refused(denial), _)) => (reading, refused) = (false, Some(denial)),
                    Some((Next::End, _)) | None => reading = false,
                },
            }
        }
    };
    // The connection ends with its answers; the reader, which may be waiting for a frame
    // that never comes, is dropped then.
    tokio::select! {
        () = calls_and_answers => {}
        () = async { reader.await; std::future::pending::<()>().await } => {}
    }
}

/// What a connection's next frame read gave.
enum Next {
    Body(Vec<u8>),
    /// A frame over the limit or malformed: answered, then the connection closes (a body
    /// over the limit was never read or allocated, and the stream cannot be resynchronised).
    Refused(Denial),
    /// Closed, idle too long, or an I/O error.
    End,
}

impl Next {
    fn ended(e: FrameError) -> Next {
        match e {
            FrameError::TooLarge { .. } | FrameError::DecodedTooLarge { .. } | FrameError::Malformed(_) => {
                Next::Refused(e.to_denial())
            }
            FrameError::Closed | FrameError::Io(_) => Next::End,
        }
    }
}

async fn next_frame<R: AsyncRead + Unpin>(r: &mut R, cfg: &ServerConfig) -> Next {
    match tokio::time::timeout(cfg.idle_timeout, read_frame(r, cfg.max_frame)).await {
        Ok(Ok(body)) => Next::Body(body),
        Ok(Err(e)) => Next::ended(e),
        Err(_) => Next::End,
    }
}

/// Answer `denial` after what is owed, then the connection closes.
async fn answer_last<W: AsyncWrite + Unpin>(w: &mut W, out: &mut Vec<u8>, denial: Denial, limit: Duration) {
    let resp = ResponseFrame { version: PROTOCOL_VERSION, result: Err(denial) };
    // A denial: its reason is bounded, far below any answer's limit.
    if to_cbor(&resp).and_then(|body| push_frame(out, &body)).is_ok() {
        let _ = flush(w, out, limit).await;
    }
}

/// Listen on `addr` and serve forever. Returns only if the socket cannot be set up (bound,
/// or its permissions set); once it listens, no error ends it ([`accept_forever`]).
pub async fn serve(service: Service, addr: SocketAddress, cfg: ServerConfig) -> std::io::Result<()> {
    let addr_text = addr.to_string();
    let never = match addr {
        SocketAddress::Unix(path) => {
            if path.exists() {
                std::fs::remove_file(&path)?;
            }
            let listener = tokio::net::UnixListener::bind(&path)?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
            }
            tracing::info!(socket = %path.display(), "enclave listening");
            println!("bridle-enclave listening on unix:{}", path.display());
            accept_forever(listener, service, cfg).await
        }
        SocketAddress::Vsock { cid, port } => {
            let listener = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(cid, port))?;
            tracing::info!(cid, port, "enclave listening on vsock");
            println!("bridle-enclave listening on vsock:{cid}:{port}");
            accept_forever(listener, service, cfg).await
        }
        SocketAddress::VsockUds { .. } => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{addr_text}: vsock-uds is a host-side connector; the enclave listens on unix: or vsock:"),
            ))
        }
    };
    match never {}
}

/// A listening socket, as [`accept_forever`] takes connections from it (the tests give it
/// one that fails).
pub(crate) trait Listener {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Listener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
}

impl Listener for tokio_vsock::VsockListener {
    type Stream = tokio_vsock::VsockStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio_vsock::VsockListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// The pause after the first failed `accept` of a run of them ([`accept_pause`]).
const ACCEPT_PAUSE_FIRST: Duration = Duration::from_millis(10);
/// The longest pause between two `accept`s that fail (about one log line a second).
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

/// How long to wait before accepting again after `failures` `accept`s in a row failed (1
/// for the first): [`ACCEPT_PAUSE_FIRST`], doubling with each, at most [`ACCEPT_PAUSE_MAX`].
/// A failed accept is a connection lost (`ECONNABORTED`: its peer gave up before it was
/// accepted) or a resource short for a while (`EMFILE`, `ENFILE`, `ENOMEM`, `ENOBUFS`: file
/// descriptors or memory held by the connections being served); none is a reason to stop
/// serving, and the pause keeps a lasting one from spinning the worker (the connection
/// stays in the listen queue meanwhile).
fn accept_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    ACCEPT_PAUSE_FIRST.saturating_mul(1 << doublings).min(ACCEPT_PAUSE_MAX)
}

/// Takes connections from `listener` and serves each in a task of its own, forever. A
/// failed `accept` is logged and tried again after a pause ([`accept_pause`]): it never ends
/// the server — the enclave exiting would power the machine off and lose every session key
/// (a review of 2026-12-05: one `EMFILE` did).
pub(crate) async fn accept_forever<L: Listener>(
    listener: L,
    service: Service,
    cfg: ServerConfig,
) -> std::convert::Infallible {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let mut failures: u32 = 0;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if failures > 0 {
                    tracing::info!(failures, "accepting connections again");
                }
                failures = 0;
                spawn_conn(&service, &slots, stream, &cfg);
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let pause = accept_pause(failures);
                tracing::warn!(
                    %error,
                    failures,
                    pause_ms = pause.as_millis() as u64,
                    "accepting a connection failed; the enclave serves on and accepts again after a pause"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn spawn_conn<S>(service: &Service, slots: &Arc<Semaphore>, stream: S, cfg: &ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
        tracing::warn!("connection refused: too many connections");
        return;
    };
    let service = service.clone();
    let cfg = cfg.clone();
    tokio::spawn(async move {
        serve_connection(service, stream, cfg).await;
        drop(permit);
    });
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
