//! Length-prefixed CBOR frames: a 4-byte big-endian length, then the CBOR body.
//!
//! The length is checked against the limit **before** the body is allocated (SPEC §2).

use crate::error::{Denial, ErrorCode};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default frame limit: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;
/// Connections a stand-alone enclave serves at once: each is counted at its largest in the
/// enclave's memory plan, so they are few (a host keeps a pool of 8 by default).
pub const ENCLAVE_MAX_CONNECTIONS: usize = 32;
/// The largest pool a host keeps to a stand-alone enclave. The host's audit pull has one
/// connection of its own beside it; the rest are spare, for a connection being replaced
/// while the enclave has not yet seen the old one end.
pub const MAX_HOST_POOL: usize = 24;
/// Most requests a host sends on one connection before their answers (its pipeline); a
/// cluster node serves that many of a connection's calls at once.
pub const MAX_PIPELINE: usize = 64;
/// How much larger than the largest request an answer may be: a session status adds to
/// what its requests brought in its bounded lists (≈ 640 KB at most) and the held
/// requests' payloads it shows (`machine::STATUS_PAYLOAD_BYTES`). The enclave answers
/// `too_large` rather than send more ([`max_answer`]); hosts read answers up to it.
pub const ANSWER_OVER: usize = 1 << 20;

/// The largest answer to requests of at most `max_frame` bytes.
pub const fn max_answer(max_frame: usize) -> usize {
    max_frame.saturating_add(ANSWER_OVER)
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("a frame of {len} bytes decodes to more than {max} bytes")]
    DecodedTooLarge { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    pub fn to_denial(&self) -> Denial {
        match self {
            FrameError::TooLarge { .. } | FrameError::DecodedTooLarge { .. } => {
                Denial::new(ErrorCode::TooLarge, self.to_string())
            }
            FrameError::Malformed(_) => Denial::new(ErrorCode::Malformed, self.to_string()),
            _ => Denial::new(ErrorCode::Internal, self.to_string()),
        }
    }
}

/// The length of a value's CBOR encoding, without keeping the encoding.
pub fn cbor_len<T: Serialize>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Counting cannot fail; a value serde cannot encode counts what was written before.
    let _ = ciborium::into_writer(v, &mut c);
    c.0
}

/// Encode a value as CBOR.
pub fn to_cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::new();
    ciborium::into_writer(v, &mut buf).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(buf)
}

/// How deep CBOR may nest (ciborium's own recursion limit is the same).
const MAX_CBOR_DEPTH: usize = 64;

/// The structure of one CBOR item, checked before any decoder sees it: every declared
/// length of an array, map, byte or text string fits in the bytes that remain (an item takes
/// at least one byte), nesting stays within [`MAX_CBOR_DEPTH`], headers are well formed.
/// Decoders size buffers from declared lengths (`Vec::with_capacity`): without this check a
/// nine-byte header claiming 2^40 elements aborts the process on the allocation (found by
/// the `enclave_frame` fuzz target) — before anything is authenticated.
fn check_cbor_structure(bytes: &[u8]) -> Result<(), FrameError> {
    const INDEFINITE: u64 = u64::MAX;
    let bad = |what: &str| Err(FrameError::Malformed(format!("CBOR {what}")));
    let mut pos = 0usize;
    // Items still expected at each open level (INDEFINITE: until a break).
    let mut open: Vec<u64> = vec![1];
    while let Some(&left) = open.last() {
        if left == 0 {
            open.pop();
            continue;
        }
        let Some(&initial) = bytes.get(pos) else { return bad("value is truncated") };
        pos += 1;
        if initial == 0xff {
            if left != INDEFINITE {
                return bad("break outside an indefinite-length item");
            }
            open.pop();
            continue;
        }
        if left != INDEFINITE {
            if let Some(l) = open.last_mut() {
                *l -= 1;
            }
        }
        let (major, info) = (initial >> 5, initial & 0x1f);
        // An indefinite length is told by the header (additional info 31), never by the
        // value of a declared length: a definite array may declare u64::MAX items (found by
        // the enclave_frame fuzz target: such an array passed as "indefinite" here, while
        // ciborium reserved u64::MAX bytes for it — a capacity-overflow panic).
        let indefinite = info == 31;
        let arg: u64 = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let Some(b) = bytes.get(pos..pos + n) else { return bad("header is truncated") };
                pos += n;
                b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x))
            }
            31 if matches!(major, 2..=5) => 0,
            _ => return bad("header is malformed"),
        };
        let remaining = (bytes.len() - pos) as u64;
        match major {
            0 | 1 | 7 => {}
            // A string in pieces is gathered by the decoder before any visitor sees it (and
            // so before the decode bound charges it); no encoder of ours writes one.
            2 | 3 if indefinite => return bad("string of indefinite length"),
            2 | 3 => {
                if arg > remaining {
                    return bad("string is longer than what follows it");
                }
                pos += arg as usize;
            }
            4 | 5 if indefinite => open.push(INDEFINITE),
            4 | 5 => {
                let items = if major == 5 { arg.saturating_mul(2) } else { arg };
                // (`items` ≤ `remaining` < u64::MAX: a definite count is never the sentinel.)
                if items > remaining {
                    return bad("array or map declares more items than follow it");
                }
                open.push(items);
            }
            _ => open.push(1), // a tag, then one item
        }
        if open.len() > MAX_CBOR_DEPTH + 1 {
            return bad("nesting is too deep");
        }
    }
    // Nothing may follow the value: every byte a decoder reads must have been checked here.
    // (ciborium reads an enum given as text followed by another item — its newtype
    // variant's content — so it can read past the end of the one item checked above.)
    if pos != bytes.len() {
        return bad("value is followed by trailing bytes");
    }
    Ok(())
}

/// What decoding `len` bytes of CBOR may allocate: [`DECODED_PER_BYTE`] bytes per byte and
/// [`DECODED_FLOOR`] — the decoder's scratch buffer (one byte per byte) and what the decoded
/// value takes (charged as it is decoded; see [`crate::decode_bound`]).
pub const fn max_decoded(len: usize) -> usize {
    len.saturating_mul(DECODED_PER_BYTE).saturating_add(DECODED_FLOOR)
}
/// See [`max_decoded`]. A request's own bytes and strings are charged about twice; an
/// address list about five and a half times, besides the scratch buffer.
pub const DECODED_PER_BYTE: usize = 8;
/// See [`max_decoded`].
pub const DECODED_FLOOR: usize = 256 << 10;

/// Decode CBOR; trailing bytes are an error. The structure is checked first
/// ([`check_cbor_structure`]): no declared length is trusted. What the decode allocates is
/// charged as it goes and bounded by [`max_decoded`] ([`crate::decode_bound`]): a frame
/// whose decoded form would be larger is refused before that allocation.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    from_cbor_within(bytes, max_decoded(bytes.len()))
}

/// Decode what an attested peer enclave wrote, received over its authenticated channel (a
/// cluster's replication calls and their replies, snapshots): the same checks as
/// [`from_cbor`] but no bound on the decoded form beyond the frame's own, since such data
/// was bounded where it was accepted and may be denser than a client's (a snapshot's owner
/// book is ten times its encoding). Never for bytes from a host or a client.
pub fn from_cbor_attested<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    from_cbor_within(bytes, usize::MAX)
}

/// [`from_cbor`] within `max` bytes (at least the frame's length, for the scratch buffer).
pub fn from_cbor_within<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, FrameError> {
    check_cbor_structure(bytes)?;
    let mut cursor = std::io::Cursor::new(bytes);
    // A scratch buffer as long as the frame: every string (none is in pieces) is read into
    // it whole and handed to its visitor, which allocates only after it is charged (see
    // `decode_bound`). Nesting was bounded by the structure check.
    let mut scratch = vec![0u8; bytes.len()];
    let (decoded, charged) = crate::decode_bound::within(max.saturating_sub(bytes.len()), || {
        ciborium::de::from_reader_with_buffer::<crate::decode_bound::Bounded<T>, _>(&mut cursor, &mut scratch)
    });
    if charged.ran_out {
        return Err(FrameError::DecodedTooLarge { len: bytes.len(), max });
    }
    let v = decoded.map_err(|e| FrameError::Malformed(decode_error(&e)))?.0;
    if (cursor.position() as usize) != bytes.len() {
        return Err(FrameError::Malformed("trailing bytes after CBOR value".into()));
    }
    Ok(v)
}

/// A decode error's text, at most [`MAX_ERROR_TEXT`] bytes: serde's messages quote what they
/// were given (a string where a number belongs, an unknown field's name), and ciborium's
/// `Display` escapes it, so the whole text would be several times a frame.
fn decode_error(e: &ciborium::de::Error<std::io::Error>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(e) => format!("i/o: {e}"),
        Error::Syntax(at) => format!("syntax error at byte {at}"),
        // serde quotes what it refused, which may be most of the frame: the message is cut
        // as it is copied, to what the position leaves of the bound.
        Error::Semantic(at, m) => {
            let head = at.map(|at| format!("at byte {at}: ")).unwrap_or_default();
            let m = crate::audit::truncate(m, MAX_ERROR_TEXT - head.len());
            head + &m
        }
        Error::RecursionLimitExceeded => "nesting is too deep".to_string(),
    }
}

/// See [`decode_error`].
const MAX_ERROR_TEXT: usize = 256;

/// Read one frame's body. A clean EOF before the header is `Closed`.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let len = read_frame_len(r, max).await?;
    read_frame_body(r, len).await
}

/// Read one frame's length prefix, checked against `max` (nothing is allocated). A clean
/// EOF before it is `Closed`. The body follows: [`read_frame_body`].
pub async fn read_frame_len<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<usize, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Malformed("connection closed inside a frame header".into())
            });
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Read a frame body of `len` bytes (a length [`read_frame_len`] checked).
pub async fn read_frame_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Malformed("connection closed inside a frame body".into()),
        _ => FrameError::Io(e),
    })?;
    Ok(body)
}

/// Append one frame (length prefix, then `body`) to `out`, for frames written together.
pub fn push_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<(), FrameError> {
    let len =
        u32::try_from(body.len()).map_err(|_| FrameError::TooLarge { len: body.len(), max: u32::MAX as usize })?;
    out.reserve(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let mut buf = Vec::new();
    push_frame(&mut buf, body)?;
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_header_is_refused_before_reading_body() {
        // Claims 4 GiB; the reader has only the header. If the reader allocated or read
        // the body it would fail differently (EOF), not with TooLarge.
        let data = [0xffu8, 0xff, 0xff, 0xff];
        let mut r = &data[..];
        match read_frame(&mut r, DEFAULT_MAX_FRAME).await {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, DEFAULT_MAX_FRAME);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn partial_frames_are_malformed_and_eof_is_closed() {
        let mut empty: &[u8] = &[];
        assert!(matches!(read_frame(&mut empty, 100).await, Err(FrameError::Closed)));
        let mut half: &[u8] = &[0, 0];
        assert!(matches!(read_frame(&mut half, 100).await, Err(FrameError::Malformed(_))));
        let mut short: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(matches!(read_frame(&mut short, 100).await, Err(FrameError::Malformed(_))));
    }

    #[tokio::test]
    async fn round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 100).await.unwrap(), b"hello");
    }

    #[test]
    fn declared_lengths_beyond_the_frame_are_refused_before_decoding() {
        // An array of 2^40 bytes (the fuzz crash: alloy's Bytes reserves the declared length).
        let huge_array = [0x9b, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x00];
        assert!(matches!(from_cbor::<alloy_primitives::Bytes>(&huge_array), Err(FrameError::Malformed(_))));
        assert!(matches!(from_cbor::<Vec<u8>>(&huge_array), Err(FrameError::Malformed(_))));
        // Beyond isize::MAX (a capacity-overflow panic otherwise), a byte string, a map.
        let over = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(from_cbor::<Vec<u8>>(&over).is_err());
        assert!(from_cbor::<serde_bytes::ByteBuf>(&[0x5b, 0, 0, 0, 0x10, 0, 0, 0, 0, 1, 2]).is_err());
        assert!(from_cbor::<std::collections::BTreeMap<u8, u8>>(&[0xbb, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 1]).is_err());
        // Two declared items, one present.
        assert!(from_cbor::<Vec<u8>>(&[0x82, 0x01]).is_err());
        // Too deep, malformed headers, a stray break.
        let mut deep = vec![0x81u8; 100];
        deep.push(0x00);
        assert!(from_cbor::<serde_json::Value>(&deep).is_err());
        assert!(from_cbor::<u8>(&[0x1c]).is_err());
        assert!(from_cbor::<u8>(&[0x18]).is_err());
        assert!(from_cbor::<u8>(&[0xff]).is_err());
    }

    #[test]
    fn nothing_after_the_checked_value_reaches_a_decoder() {
        // Found by the enclave_frame fuzz target (fuzz/artifacts/enclave_frame/oom-46c9…):
        // {"call": "attest"} followed by {"nonce": [2 593 823 386 items…]}. The structure
        // check ended with the first map; ciborium, reading the text "attest" as an enum,
        // took the next item as its content and alloy's Bytes reserved 2.6 GB for it.
        let mut frame = vec![0xa1, 0x44];
        frame.extend_from_slice(b"call");
        frame.push(0x66);
        frame.extend_from_slice(b"attest");
        frame.extend_from_slice(&[0xa1, 0x65]);
        frame.extend_from_slice(b"nonce");
        frame.extend_from_slice(&[0x9a, 0x9a, 0x9a, 0x9a, 0x9a, 0x81, 0xc3]);
        frame.extend_from_slice(&[0xff; 40]);
        assert!(check_cbor_structure(&frame).is_err());
        assert!(from_cbor::<crate::protocol::RequestFrame>(&frame).is_err());
        // The same with a well-formed second item: still refused before decoding.
        assert!(check_cbor_structure(&[0x01, 0x02]).is_err());
    }

    #[test]
    fn a_definite_length_of_u64_max_is_not_taken_for_an_indefinite_one() {
        // Found by the enclave_frame fuzz target (fuzz/artifacts/enclave_frame/crash-9fe0…): an
        // array declaring 2^64 − 1 items, closed by a break byte, passed the structure check
        // as if indefinite; ciborium then reserved that many bytes for alloy's Bytes.
        let mut frame = vec![0xbf, 0x44];
        frame.extend_from_slice(b"call");
        frame.extend_from_slice(&[0xd7, 0xd1, 0x66]);
        frame.extend_from_slice(b"attest");
        frame.extend_from_slice(&[0xbf, 0xc1, 0x65]);
        frame.extend_from_slice(b"nonce");
        frame.extend_from_slice(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        frame.extend_from_slice(&[0x00, 0xff, 0xff, 0x24, 0x00, 0xff]);
        assert!(check_cbor_structure(&frame).is_err());
        assert!(from_cbor::<crate::protocol::RequestFrame>(&frame).is_err());
        // u64::MAX as a byte-string or map length, too.
        assert!(check_cbor_structure(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff]).is_err());
        assert!(
            check_cbor_structure(&[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0xff]).is_err()
        );
        // A genuine indefinite array still passes.
        assert!(check_cbor_structure(&[0x9f, 0x01, 0xff]).is_ok());
    }

    /// Arrays, text, a map, a byte string, an option and a float in one value.
    type Mixed =
        (Vec<u8>, String, std::collections::BTreeMap<String, Vec<u64>>, serde_bytes::ByteBuf, Option<bool>, f64);

    #[test]
    fn well_formed_cbor_still_decodes() {
        let v: Mixed = (
            vec![1, 2, 3],
            "text".into(),
            [("a".to_string(), vec![1, u64::MAX]), ("b".to_string(), vec![])].into_iter().collect(),
            serde_bytes::ByteBuf::from(vec![0u8; 300]),
            None,
            1.5,
        );
        assert_eq!(from_cbor::<_>(&to_cbor(&v).unwrap()).ok(), Some(v));
        // Indefinite-length array and a tag.
        assert_eq!(from_cbor::<Vec<u8>>(&[0x9f, 0x01, 0x02, 0xff]).unwrap(), vec![1, 2]);
        // A byte or text string in pieces is refused (see `check_cbor_structure`).
        for pieces in [&[0x5f, 0x41, 0x07, 0x42, 0x08, 0x09, 0xff][..], &[0x7f, 0x61, b'a', 0xff]] {
            assert!(matches!(from_cbor::<serde_bytes::ByteBuf>(pieces), Err(FrameError::Malformed(_))));
        }
        let mut nested = vec![0x81u8; 60];
        nested.push(0x00);
        assert!(check_cbor_structure(&nested).is_ok());
    }

    #[test]
    fn cbor_trailing_bytes_refused() {
        let mut b = to_cbor(&5u32).unwrap();
        assert_eq!(from_cbor::<u32>(&b).unwrap(), 5);
        b.push(0);
        assert!(from_cbor::<u32>(&b).is_err());
        assert!(from_cbor::<u32>(&[0xff, 0x00]).is_err());
    }
}
