//! Request bodies, read whole by the listener before any handler sees them.
//!
//! hyper hands a body over as the socket gives it: one chunk per read, each a slice of an
//! 8 KiB read buffer, and axum's extractors keep every chunk until the body ends. A body
//! sent a byte per segment therefore pinned a fresh 8 KiB block per byte — a stranger's
//! 64 KB grew the host by 256 MiB — and a body sent a byte every few seconds never ended
//! (the timeout counted only gaps between chunks), holding its connection for good (a
//! review of 2026-12-06). Here each chunk is copied into one buffer and dropped at once,
//! no more than the listener's largest body plus one byte is kept (the routes' own limits
//! then refuse a longer one in their own words), and a body must arrive whole within a
//! deadline, with no gap longer than another.

use axum::body::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::time::Duration;
use tokio::time::Instant;

/// At most this much is set aside before a body's bytes arrive, whatever its
/// `Content-Length` says (a head alone must not reserve the listener's largest body).
const FIRST_RESERVE: usize = 64 << 10;

/// Why a body was not read whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Not whole within the deadline.
    TooSlow(Duration),
    /// No data for longer than the gap allowed.
    Stalled(Duration),
    /// The connection failed.
    Broken(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooSlow(d) => write!(f, "the request body did not arrive whole within {} s", d.as_secs()),
            Unread::Stalled(d) => write!(f, "the request body sent nothing for {} s", d.as_secs()),
            Unread::Broken(e) => write!(f, "cannot read the request body: {e}"),
        }
    }
}

/// A body read whole, or cut at the cap.
#[derive(Debug)]
pub struct Gathered {
    pub bytes: Bytes,
    /// More followed the cap's bytes (never read).
    pub cut: bool,
}

/// What a cut body ends with, in place of the bytes never read: a handler reading it fails
/// rather than take the cut bytes for the whole body.
#[derive(Debug)]
pub struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body is longer than this listener takes")
    }
}

impl std::error::Error for Cut {}

impl Gathered {
    /// The body a handler reads: the bytes, then — when cut — an error. A route whose limit
    /// is the listener's refuses the cut body by its length before it reaches the error;
    /// one with a larger limit (none today) meets the error instead of a shortened body.
    pub fn into_body(self) -> axum::body::Body {
        let Gathered { bytes, cut } = self;
        if !cut {
            return axum::body::Body::from(bytes);
        }
        let frames: [Result<http_body::Frame<Bytes>, Cut>; 2] = [Ok(http_body::Frame::data(bytes)), Err(Cut)];
        axum::body::Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(frames)))
    }
}

/// Read `body` whole into one buffer, keeping at most `cap` bytes (a longer body is cut
/// there: [`Gathered::cut`]), within `within` in all and with no gap longer than `gap`.
/// `hint` is the declared length, used only to size the first reservation.
pub async fn gather<B>(
    body: B,
    hint: Option<u64>,
    cap: usize,
    gap: Duration,
    within: Duration,
) -> Result<Gathered, Unread>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let deadline = Instant::now() + within;
    let mut body = std::pin::pin!(body);
    let first = hint.map_or(0, |h| usize::try_from(h).unwrap_or(usize::MAX)).min(cap).min(FIRST_RESERVE);
    let mut buf: Vec<u8> = Vec::with_capacity(first);
    let mut cut = false;
    loop {
        let until = (Instant::now() + gap).min(deadline);
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if Instant::now() >= deadline => return Err(Unread::TooSlow(within)),
            Err(_) => return Err(Unread::Stalled(gap)),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(Unread::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing a handler here reads.
        let Ok(data) = frame.into_data() else { continue };
        let room = cap - buf.len();
        buf.extend_from_slice(&data[..data.len().min(room)]);
        if data.len() > room {
            // Nothing past the cap is read.
            cut = true;
            break;
        }
    }
    Ok(Gathered { bytes: Bytes::from(buf), cut })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use std::convert::Infallible;

    /// A body of `chunks`, each after `every`.
    fn paced(chunks: Vec<&'static [u8]>, every: Duration) -> impl Body<Data = Bytes, Error = Infallible> {
        let s = futures_util::stream::unfold(chunks.into_iter(), move |mut it| async move {
            let c = it.next()?;
            tokio::time::sleep(every).await;
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(c))), it))
        });
        StreamBody::new(s)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_arrives_whole_in_one_buffer() {
        let b = paced(vec![b"ab", b"c", b"def"], Duration::from_millis(10));
        let got = gather(b, Some(6), 100, Duration::from_secs(1), Duration::from_secs(5)).await.unwrap();
        assert_eq!((&got.bytes[..], got.cut), (&b"abcdef"[..], false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_past_the_cap_is_cut_at_it() {
        let b = paced(vec![b"abcd", b"efgh", b"ijkl"], Duration::from_millis(10));
        let got = gather(b, None, 6, Duration::from_secs(1), Duration::from_secs(5)).await.unwrap();
        assert_eq!((&got.bytes[..], got.cut), (&b"abcdef"[..], true));
        // What a handler reads of it fails: the cut bytes never pass for the whole body.
        let read = axum::body::to_bytes(got.into_body(), usize::MAX).await;
        assert!(read.is_err(), "{read:?}");
        // A body of exactly the cap is whole.
        let b = paced(vec![b"abc", b"def"], Duration::from_millis(10));
        let got = gather(b, None, 6, Duration::from_secs(1), Duration::from_secs(5)).await.unwrap();
        assert_eq!((&got.bytes[..], got.cut), (&b"abcdef"[..], false));
        assert_eq!(&axum::body::to_bytes(got.into_body(), usize::MAX).await.unwrap()[..], b"abcdef");
    }

    /// A byte every half second keeps every gap short, and still must end within the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_ends_at_the_deadline() {
        let b = paced(vec![b"x"; 1000], Duration::from_millis(500));
        let t0 = Instant::now();
        let e = gather(b, Some(1000), 2000, Duration::from_secs(1), Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e, Unread::TooSlow(Duration::from_secs(5)));
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_after_the_gap() {
        let b = paced(vec![b"x", b"y"], Duration::from_secs(3));
        let e = gather(b, None, 100, Duration::from_secs(2), Duration::from_secs(60)).await.unwrap_err();
        assert_eq!(e, Unread::Stalled(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_declared_length_reserves_little_before_bytes_arrive() {
        let b = paced(vec![b"x"], Duration::from_millis(1));
        let got = gather(b, Some(u64::MAX), 32 << 20, Duration::from_secs(1), Duration::from_secs(5)).await.unwrap();
        assert_eq!(&got.bytes[..], b"x");
    }
}
