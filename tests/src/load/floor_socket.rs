//! The `socket` level of `bridle-http-floor` (issue 12 item 2): what one request costs a
//! server that speaks the enclave's framing on a Unix socket, with nothing behind it.
//!
//! The server is built as the stand-alone enclave's connection loop is (tokio's
//! multi-thread runtime with one worker per CPU, a buffered reader, frames read with
//! `read_frame` under the default frame bound and a timeout, answers held back while the
//! next request is already whole in the buffer, written with a timeout), but it neither
//! decodes the request nor decides anything: every answer is the same CBOR `Signed` reply
//! of a signed transfer's size. It is driven as `bridle-enclave-bench` drives an enclave
//! (blocking Unix connections, `pipeline` frames in flight, refilled half a pipeline per
//! write; each reply read whole and decoded). Its CPU per request is what the socket costs
//! before the first byte of CBOR is decoded, at the pace this bare loop reaches: many times
//! the enclave's, with more frames per wake-up, so a lower bound on the enclave's share.
//!
//! At `socket+sign` the server also makes one raw k256 signature per request (as
//! `machine::raw_rate` does: the same key kind, a digest that changes with each request), so
//! it runs at a signing server's pace and its wake-ups are those of a server that is busy
//! between frames: its CPU per request less one raw signature is the transport's share at
//! the enclave's rate, the least an enclave that only signed would spend.

use super::floor::{reply, request_body};
use super::socket::read_reply;
use bridle_common::frame::{push_frame, read_frame, to_cbor, DEFAULT_MAX_FRAME};
use bridle_common::protocol::{Call, Reply, RequestFrame, ResponseFrame, SignRequest, PROTOCOL_VERSION};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// As the enclave's: answers held back at most this many bytes.
const MAX_HELD: usize = 256 << 10;
/// Each read and write under a timeout, as the enclave's are (its idle timeout, 300 s by
/// default; the length does not change the cost).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One framed `sign_if_allowed` request of the shape `bridle-enclave-bench` sends.
pub fn request_frame() -> Vec<u8> {
    let req: SignRequest = serde_json::from_slice(&request_body()).expect("the floor's own request decodes");
    let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: Call::SignIfAllowed(req) })
        .expect("a request frame encodes");
    let mut out = Vec::new();
    push_frame(&mut out, &body).expect("a small frame");
    out
}

/// The body of the one answer the server sends: a signed transfer.
pub fn reply_body() -> Vec<u8> {
    to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result: Ok(Reply::Signed(reply())) })
        .expect("a reply frame encodes")
}

fn whole_frame(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf.len() - 4 >= u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
}

async fn connection(stream: tokio::net::UnixStream, reply: Arc<Vec<u8>>, sign: bool) {
    // A nonzero byte below the group order's first byte: always a valid scalar.
    let key = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("a valid scalar");
    let (mut n, mut digest) = (0u64, [7u8; 32]);
    let (r, mut w) = tokio::io::split(stream);
    let mut r = tokio::io::BufReader::new(r);
    let mut out = Vec::new();
    loop {
        if (!whole_frame(r.buffer()) || out.len() >= MAX_HELD) && !out.is_empty() {
            let write = async {
                w.write_all(&out).await?;
                w.flush().await
            };
            if !matches!(tokio::time::timeout(IO_TIMEOUT, write).await, Ok(Ok(()))) {
                return;
            }
            out.clear();
        }
        let body = match tokio::time::timeout(IO_TIMEOUT, read_frame(&mut r, DEFAULT_MAX_FRAME)).await {
            Ok(Ok(body)) => body,
            _ => return,
        };
        std::hint::black_box(&body);
        if sign {
            digest[..8].copy_from_slice(&n.to_le_bytes());
            n += 1;
            std::hint::black_box(key.sign_prehash_recoverable(&digest).is_ok());
        }
        if push_frame(&mut out, &reply).is_err() {
            return;
        }
    }
}

/// The server child: listens on a Unix socket in a directory of its own, prints the path on
/// stdout, and runs until its stdin closes; with `sign`, one raw signature per request.
pub fn serve(sign: bool) -> Result<(), String> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("socket directory: {e}"))?;
    let path = dir.path().join("floor.sock");
    rt.block_on(async {
        let l = tokio::net::UnixListener::bind(&path).map_err(|e| format!("bind {}: {e}", path.display()))?;
        println!("{}", path.display());
        let reply = Arc::new(reply_body());
        let stop = tokio::task::spawn_blocking(super::floor::until_stdin_closes);
        let accept = async {
            loop {
                match l.accept().await {
                    Ok((s, _)) => drop(tokio::spawn(connection(s, reply.clone(), sign))),
                    // (Out of descriptors, say: not a reason to spin.)
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        };
        tokio::select! {
            _ = stop => Ok(()),
            () = accept => Ok(()),
        }
    })
}

/// Send `requests` copies of `frame` on one connection to `socket`, up to `pipeline` in
/// flight, refilling half a pipeline per write; returns how many replies were not a
/// signature.
pub fn drive(socket: &Path, frame: &[u8], requests: u64, pipeline: usize) -> Result<u64, String> {
    let s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(1 << 16, s);
    let pipeline = pipeline.max(1) as u64;
    let refill = (pipeline / 2).max(1);
    let (mut sent, mut got, mut errors) = (0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    let mut send = |sent: &mut u64, upto: u64, w: &mut UnixStream| -> Result<(), String> {
        buf.clear();
        while *sent < upto.min(requests) {
            buf.extend_from_slice(frame);
            *sent += 1;
        }
        w.write_all(&buf).map_err(|e| format!("send: {e}"))
    };
    send(&mut sent, pipeline, &mut w)?;
    while got < requests {
        let reply = read_reply(&mut r)?;
        got += 1;
        if !matches!(reply.result, Ok(Reply::Signed(_))) {
            errors += 1;
        }
        if sent < requests && sent - got <= pipeline - refill {
            send(&mut sent, got + pipeline, &mut w)?;
        }
    }
    Ok(errors)
}

/// `requests` spread over `connections` connections, each on a thread of its own; returns
/// the number of replies that were not a signature.
pub fn drive_all(
    socket: &Path,
    frame: &[u8],
    requests: u64,
    connections: usize,
    pipeline: usize,
) -> Result<u64, String> {
    let connections = connections.max(1) as u64;
    std::thread::scope(|s| {
        let each: Vec<_> = (0..connections)
            .map(|i| {
                let n = requests / connections + u64::from(i < requests % connections);
                s.spawn(move || drive(socket, frame, n, pipeline))
            })
            .collect();
        let mut errors = 0;
        for t in each {
            errors += t.join().map_err(|_| "a driver thread panicked".to_string())??;
        }
        Ok(errors)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frames_are_a_sign_request_and_a_signed_reply() {
        let f = request_frame();
        assert!(whole_frame(&f) && !whole_frame(&f[..f.len() - 1]));
        let req: RequestFrame = bridle_common::frame::from_cbor(&f[4..]).unwrap();
        assert!(matches!(req.call, Call::SignIfAllowed(_)));
        let resp: ResponseFrame = bridle_common::frame::from_cbor(&reply_body()).unwrap();
        assert!(matches!(resp.result, Ok(Reply::Signed(_))));
    }
}
