//! The host's accepted TCP connections: a peer that stops reading is cut off.
//!
//! hyper has no write timeout: a reply (an audit export's pages, a list) handed to a
//! connection whose peer stopped reading stays with it, and its memory with the host, until
//! the connection closes (a review of 2026-12-05). Each accepted connection gets
//! `TCP_USER_TIMEOUT`: once data the host wrote stays unacknowledged — or cannot be sent
//! because the peer's window stays shut — for [`WRITE_TIMEOUT`], the kernel closes the
//! connection, and the host's next write or read on it fails, which ends its task and frees
//! what it held.

use std::time::Duration;
use tokio::net::TcpStream;

/// How long the host's written data may wait on a peer that takes none of it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Give `stream` the write timeout `limit` (logged, not fatal, where the system refuses).
pub fn limit_writes(stream: &mut TcpStream, limit: Duration) {
    if let Err(e) = socket2::SockRef::from(&*stream).set_tcp_user_timeout(Some(limit)) {
        tracing::debug!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::ListenerExt as _;
    use tokio::io::AsyncWriteExt;

    /// A server that writes without end to a peer that reads nothing: its write fails once
    /// the peer's window stayed shut for the limit, instead of waiting for ever.
    #[tokio::test]
    async fn a_peer_that_stops_reading_is_cut_off() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut l = l.tap_io(|s| limit_writes(s, Duration::from_secs(1)));
        let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        client.connect(&addr.into()).unwrap();
        let (mut server, _) = axum::serve::Listener::accept(&mut l).await;
        let chunk = vec![7u8; 64 * 1024];
        let started = std::time::Instant::now();
        let failed = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Err(e) = server.write_all(&chunk).await {
                    return e;
                }
            }
        })
        .await
        .expect("the write never failed: the peer that reads nothing held the connection");
        assert!(started.elapsed() >= Duration::from_secs(1), "{failed}");
        drop(client);
    }
}
