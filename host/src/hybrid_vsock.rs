//! The hybrid-vsock handshake: how the host reaches a VM's vsock port through a Unix socket
//! backed by vhost-device-vsock (or Firecracker).

use tokio::io::{AsyncRead, AsyncWrite};

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
