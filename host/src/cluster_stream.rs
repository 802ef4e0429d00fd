//! Persistent streams between two hosts for the enclaves' sealed cluster traffic, instead
//! of one HTTP request per Raft message (BENCHMARKS.md, "Enclave cluster").
//!
//! The sending host keeps a few TCP connections to each peer host, opened with
//! `GET /v1/cluster/stream` and `Upgrade: bridle-cluster-relay`, then raw frames: a message
//! is `kind (u8) ‖ length (u32 LE) ‖ bytes` and its answer a frame of the same shape (kind 0:
//! the peer enclave's reply; kind 1: why it could not be delivered). One message at a time
//! per connection (as HTTP/1.1 keep-alive, without the HTTP): answers never queue behind
//! unacknowledged data, whatever the listener's Nagle setting. Nothing in it is trusted: the
//! bytes are sealed by the enclaves, exactly as on the HTTP relay, which stays the fallback
//! when a peer does not offer the stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The `Upgrade` token of the stream.
pub const PROTOCOL: &str = "bridle-cluster-relay";
/// Where a host offers the stream (on the cluster listener).
pub const PATH: &str = "/v1/cluster/stream";
/// Idle connections kept to one peer (more are opened while needed, then closed).
const MAX_IDLE: usize = 32;
/// After a stream to a peer failed to open, the HTTP relay is used this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

const OK: u8 = 0;
const ERR: u8 = 1;

/// How long the rest of a frame may take once its head has arrived (a relay body is at
/// most 22 MiB).
pub const FRAME_REST: std::time::Duration = std::time::Duration::from_secs(30);

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).await?;
    let kind = head[0];
    let len = u32::from_le_bytes(head[1..].try_into().unwrap_or_default()) as usize;
    if len > max {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    // Read as it arrives: a head alone does not reserve what it declares; and the rest
    // within FRAME_REST of its head (a peer that sent 20 MiB of a frame and stopped held
    // them for good: a review of 2026-12-06).
    let mut bytes = Vec::with_capacity(len.min(64 << 10));
    tokio::time::timeout(FRAME_REST, (&mut *r).take(len as u64).read_to_end(&mut bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the rest of a frame did not come"))??;
    if bytes.len() != len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok((kind, bytes))
}

/// A frame in one write (a head written apart would wait for its acknowledgement).
async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(5 + bytes.len());
    buf.push(kind);
    buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buf.extend_from_slice(bytes);
    w.write_all(&buf).await?;
    w.flush().await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn open(url: &str, source: Option<std::net::IpAddr>, from: &str) -> Result<BufReader<TcpStream>, String> {
    let u = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if u.scheme() != "http" {
        return Err(format!("no stream over {}", u.scheme()));
    }
    // The upgrade request names the stream's own path, which would drop the URL's: a peer
    // behind a proxy routing by path is relayed over HTTP instead (a review of 2026-12-06).
    if !matches!(u.path(), "" | "/") {
        return Err("no stream to a URL with a path".into());
    }
    let host = u.host_str().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = u.port_or_known_default().ok_or("no port")?;
    let addr: SocketAddr =
        tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
        .map_err(|e| e.to_string())?;
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0)).map_err(|e| e.to_string())?;
    }
    let mut s = tokio::time::timeout(Duration::from_secs(2), sock.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    // This host's own URL, so that the peer learns it (a header line: no control bytes).
    let from = if from.chars().any(|c| c.is_control()) { "" } else { from };
    let hello = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n{}: {from}\r\n\r\n",
        u.authority(),
        bridle_common::cluster::RELAY_FROM_HEADER
    );
    s.write_all(hello.as_bytes()).await.map_err(|e| e.to_string())?;
    // The answer's head, byte by byte (nothing follows it before the first message).
    let mut head = Vec::with_capacity(256);
    let read_head = async {
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8 << 10 {
                return Err("answer head too long".to_string());
            }
            s.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            head.push(b[0]);
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(2), read_head).await.map_err(|_| "no answer".to_string())??;
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
        return Err(format!("stream not offered: {line}"));
    }
    Ok(BufReader::with_capacity(64 << 10, s))
}

/// One message on `conn` and its answer. An error leaves the connection unusable.
async fn exchange(conn: &mut BufReader<TcpStream>, bytes: &[u8], max: usize) -> std::io::Result<(u8, Vec<u8>)> {
    write_frame(conn, OK, bytes).await?;
    read_frame(conn, max).await
}

#[derive(Default)]
struct Slot {
    idle: Vec<BufReader<TcpStream>>,
    /// When opening a stream last failed (the HTTP relay is used meanwhile).
    failed: Option<Instant>,
}

/// The streams this host keeps to its peers.
#[derive(Default)]
pub struct Streams {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streams")
    }
}

impl Streams {
    /// Send `bytes` to the host at `url` on a stream and return the reply; `None` when no
    /// stream to it could be opened (the caller uses the HTTP relay). `from`: this host's URL
    /// (named when a stream is opened).
    pub async fn relay(
        &self,
        url: &str,
        source: Option<std::net::IpAddr>,
        from: &str,
        bytes: &[u8],
        timeout: Duration,
        max: usize,
    ) -> Option<Result<Vec<u8>, String>> {
        let (idle, failed) = {
            let mut g = lock(&self.slots);
            let slot = g.entry(url.to_string()).or_default();
            (slot.idle.pop(), slot.failed.is_some_and(|t| t.elapsed() < RETRY_AFTER))
        };
        let mut conn = match idle {
            Some(c) => c,
            None if failed => return None,
            None => match open(url, source, from).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(peer = url, error = %e, "no cluster stream; HTTP relay");
                    lock(&self.slots).entry(url.to_string()).or_default().failed = Some(Instant::now());
                    return None;
                }
            },
        };
        let r = match tokio::time::timeout(timeout, exchange(&mut conn, bytes, max)).await {
            Err(_) => return Some(Err(format!("no answer within {timeout:?}"))),
            Ok(Err(e)) => return Some(Err(format!("stream: {e}"))),
            Ok(Ok(r)) => r,
        };
        {
            let mut g = lock(&self.slots);
            let slot = g.entry(url.to_string()).or_default();
            slot.failed = None;
            if slot.idle.len() < MAX_IDLE {
                slot.idle.push(conn);
            }
        }
        Some(match r {
            (OK, b) => Ok(b),
            (_, b) => Err(String::from_utf8_lossy(&b).into_owned()),
        })
    }
}

/// Serve one accepted stream: each message is handed to `deliver` (this host's enclave),
/// its answer written back, one at a time, until the peer closes it.
pub async fn serve<S, F, Fut>(io: S, max: usize, deliver: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    let mut io = BufReader::with_capacity(64 << 10, io);
    loop {
        let bytes = match read_frame(&mut io, max).await {
            Ok((OK, b)) => b,
            Ok(_) => break,
            Err(e) => {
                tracing::debug!(error = %e, "cluster stream ended");
                break;
            }
        };
        let written = match deliver(bytes).await {
            Ok(b) => write_frame(&mut io, OK, &b).await,
            Err(e) => write_frame(&mut io, ERR, e.as_bytes()).await,
        };
        if written.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_and_refusals_round_trip() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(b, 1 << 20, |bytes: Vec<u8>| async move {
            if bytes.is_empty() {
                return Err("empty".to_string());
            }
            Ok(bytes.iter().rev().copied().collect())
        }));
        for i in 0..5u8 {
            write_frame(&mut a, OK, &[i, 42]).await.unwrap();
            assert_eq!(read_frame(&mut a, 1 << 20).await.unwrap(), (OK, vec![42, i]));
        }
        write_frame(&mut a, OK, &[]).await.unwrap();
        assert_eq!(read_frame(&mut a, 1 << 20).await.unwrap(), (ERR, b"empty".to_vec()));
    }

    /// A peer URL with a path is never streamed to (the upgrade request would drop the
    /// path): `open` refuses it before connecting, and the relay goes over HTTP.
    #[tokio::test]
    async fn a_peer_url_with_a_path_is_not_streamed_to() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let e = open(&format!("http://127.0.0.1:{port}/bridle/node-2"), None, "http://me").await.unwrap_err();
        assert!(e.contains("with a path"), "{e}");
        let accepted = tokio::time::timeout(Duration::from_millis(200), l.accept()).await;
        assert!(accepted.is_err(), "nothing connected");
    }

    #[tokio::test]
    async fn a_short_frame_is_an_error() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        a.write_all(&[OK, 10, 0, 0, 0, 1, 2]).await.unwrap();
        drop(a);
        assert!(read_frame(&mut b, 1 << 20).await.is_err());
    }

    #[tokio::test]
    async fn oversized_frames_end_the_stream() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let served = tokio::spawn(serve(b, 16, |b: Vec<u8>| async move { Ok(b) }));
        write_frame(&mut a, OK, &[0; 17]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), served).await.unwrap().unwrap();
    }
}
