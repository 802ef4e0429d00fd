//! The enclave's one socket: length-prefixed CBOR frames over a Unix socket (development)
//! or vsock (Nitro). One response frame per request frame, in order, per connection.

use crate::cluster::ClusterNode;
use crate::service::Enclave;
use bridle_common::address::SocketAddress;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, push_frame, read_frame, to_cbor, FrameError};
use bridle_common::protocol::{RequestFrame, ResponseFrame, PROTOCOL_VERSION};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_frame: usize,
    pub max_connections: usize,
    /// A connection idle (or stuck mid-frame) this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: bridle_common::frame::DEFAULT_MAX_FRAME,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// What the socket serves: one enclave, or a node of an enclave cluster.
#[derive(Clone)]
pub enum Service {
    Single(Arc<Enclave>),
    Cluster(Arc<ClusterNode>),
}

/// Decode and serve one frame body for `service` (see [`handle_frame`]). A cluster node's
/// calls are asynchronous (they wait for the log); each runs in its own task, so a panic in
/// one is an `internal` error for that frame only.
pub async fn handle_frame_service(service: &Service, body: &[u8]) -> ResponseFrame {
    let node = match service {
        Service::Single(e) => return handle_frame(e, body),
        Service::Cluster(n) => n.clone(),
    };
    let result = match from_cbor::<RequestFrame>(body) {
        Err(e) => Err(Denial::new(ErrorCode::Malformed, format!("request frame: {e}"))),
        Ok(f) if f.version != PROTOCOL_VERSION => Err(Denial::new(
            ErrorCode::Unsupported,
            format!("protocol version {} (this enclave speaks {PROTOCOL_VERSION})", f.version),
        )),
        Ok(f) => isolated(node.handle(f.call)).await,
    };
    ResponseFrame { version: PROTOCOL_VERSION, result }
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
        Err(e) => Err(Denial::new(ErrorCode::Malformed, format!("request frame: {e}"))),
        Ok(f) if f.version != PROTOCOL_VERSION => Err(Denial::new(
            ErrorCode::Unsupported,
            format!("protocol version {} (this enclave speaks {PROTOCOL_VERSION})", f.version),
        )),
        Ok(f) => enclave.handle(f.call),
    }))
    .unwrap_or_else(|_| {
        Err(Denial::new(ErrorCode::Internal, "the request could not be processed; nothing was signed"))
    });
    ResponseFrame { version: PROTOCOL_VERSION, result }
}

/// Append one response frame to `out`.
fn push_response(out: &mut Vec<u8>, resp: &ResponseFrame) -> Result<(), FrameError> {
    push_frame(out, &to_cbor(resp)?)
}

/// Send the responses owed.
async fn flush<W: AsyncWrite + Unpin>(w: &mut W, out: &mut Vec<u8>) -> Result<(), FrameError> {
    if !out.is_empty() {
        w.write_all(out).await?;
        w.flush().await?;
        out.clear();
    }
    Ok(())
}

/// Whether `buf` starts with a whole frame (length prefix and body).
fn whole_frame(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf.len() - 4 >= u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

/// Most bytes of responses held back while more requests are already buffered.
const MAX_HELD: usize = 256 << 10;

/// Serve one connection until it closes or sends a frame over the limit. Requests are
/// answered one after another, in order; a host may send the next before the previous
/// answer (a pipeline). Responses to requests that came in together go out together: a
/// response is held back while the next request is already whole in the read buffer.
pub async fn serve_connection<S>(service: Service, stream: S, cfg: ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (r, mut w) = tokio::io::split(stream);
    // Buffered, so that a frame's length prefix and body usually come in one `recv` rather
    // than two, and frames sent together in one (issue 12). The buffer never holds more
    // than its capacity: a frame's size is still checked before its body is allocated.
    let mut r = tokio::io::BufReader::new(r);
    let mut out = Vec::new();
    // A cluster call may wait for a commit: nothing is held behind one.
    let hold = matches!(service, Service::Single(_));
    loop {
        if (!hold || !whole_frame(r.buffer()) || out.len() >= MAX_HELD) && flush(&mut w, &mut out).await.is_err() {
            return;
        }
        let body = match tokio::time::timeout(cfg.idle_timeout, read_frame(&mut r, cfg.max_frame)).await {
            Err(_) => return,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e @ (FrameError::TooLarge { .. } | FrameError::Malformed(_)))) => {
                // A body over the limit was never read or allocated; the stream can't be
                // resynchronised either way, so answer and close.
                let resp = ResponseFrame { version: PROTOCOL_VERSION, result: Err(e.to_denial()) };
                if push_response(&mut out, &resp).is_ok() {
                    let _ = flush(&mut w, &mut out).await;
                }
                return;
            }
            Ok(Err(FrameError::Io(_))) => return,
            Ok(Ok(body)) => body,
        };
        let resp = handle_frame_service(&service, &body).await;
        if push_response(&mut out, &resp).is_err() {
            // (Not expected: encoding into memory.) What was answered before still goes.
            let _ = flush(&mut w, &mut out).await;
            return;
        }
    }
}

/// Listen on `addr` and serve forever.
pub async fn serve(service: Service, addr: SocketAddress, cfg: ServerConfig) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let addr_text = addr.to_string();
    match addr {
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
            loop {
                let (stream, _) = listener.accept().await?;
                spawn_conn(&service, &slots, stream, &cfg);
            }
        }
        SocketAddress::Vsock { cid, port } => {
            let listener = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(cid, port))?;
            tracing::info!(cid, port, "enclave listening on vsock");
            println!("bridle-enclave listening on vsock:{cid}:{port}");
            loop {
                let (stream, _) = listener.accept().await?;
                spawn_conn(&service, &slots, stream, &cfg);
            }
        }
        SocketAddress::VsockUds { .. } => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr_text}: vsock-uds is a host-side connector; the enclave listens on unix: or vsock:"),
        )),
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
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_panics_mid_way_is_an_internal_error() {
        let r = isolated(async {
            tokio::task::yield_now().await;
            Ok::<u8, Denial>(7)
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        let r = isolated(async {
            tokio::task::yield_now().await;
            if std::hint::black_box(true) {
                panic!("a bug in the call");
            }
            Ok::<u8, Denial>(7)
        })
        .await;
        let d = r.unwrap_err();
        assert_eq!(d.code, ErrorCode::Internal);
        assert!(d.reason.contains("asking again with the same stamp"), "{d:?}");
    }
}
