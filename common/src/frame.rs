//! Length-prefixed CBOR frames: a 4-byte big-endian length, then the CBOR body.
//!
//! The length is checked against the limit **before** the body is allocated (SPEC §2).

use crate::error::{Denial, ErrorCode};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Default frame limit: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
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
            FrameError::TooLarge { .. } => Denial::new(ErrorCode::TooLarge, self.to_string()),
            FrameError::Malformed(_) => Denial::new(ErrorCode::Malformed, self.to_string()),
            _ => Denial::new(ErrorCode::Internal, self.to_string()),
        }
    }
}

/// Encode a value as CBOR.
pub fn to_cbor<T: Serialize>(v: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::new();
    ciborium::into_writer(v, &mut buf).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(buf)
}

/// Decode CBOR; trailing bytes are an error.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let v = ciborium::de::from_reader_with_recursion_limit(&mut cursor, 64)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if (cursor.position() as usize) != bytes.len() {
        return Err(FrameError::Malformed("trailing bytes after CBOR value".into()));
    }
    Ok(v)
}

/// Read one frame's body. A clean EOF before the header is `Closed`.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
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
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Malformed("connection closed inside a frame body".into()),
        _ => FrameError::Io(e),
    })?;
    Ok(body)
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let len =
        u32::try_from(body.len()).map_err(|_| FrameError::TooLarge { len: body.len(), max: u32::MAX as usize })?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
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
    fn cbor_trailing_bytes_refused() {
        let mut b = to_cbor(&5u32).unwrap();
        assert_eq!(from_cbor::<u32>(&b).unwrap(), 5);
        b.push(0);
        assert!(from_cbor::<u32>(&b).is_err());
        assert!(from_cbor::<u32>(&[0xff, 0x00]).is_err());
    }
}
