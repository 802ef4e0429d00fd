//! [`Channel`]: the transport after a handshake — sealed frames with an explicit
//! counter, accepted in any order within a replay window, each at most once, of
//! any length up to a maximum, chunked into Noise messages.
//!
//! # Frame format
//!
//! ```text
//! frame   = header ‖ chunk_0 ‖ chunk_1 ‖ … ‖ chunk_{n-1}
//! header  = 0x04 ‖ counter (u64 BE) ‖ length (u64 BE)                 17 bytes, in clear
//! chunk_0 = Noise(nonce(counter, 0), header ‖ payload[0 .. 65502])
//! chunk_i = Noise(nonce(counter, i), next ≤ 65519 payload bytes)       i ≥ 1
//! nonce(counter, i) = counter · 2^20 + i
//! ```
//!
//! Each chunk is one Noise transport message (ChaCha20-Poly1305, ≤ 65535 bytes
//! with its 16-byte tag). The number of chunks and their sizes follow from
//! `length`, so the frame's exact size is known from its header: a receiver
//! checks `length` against its maximum and the frame size against `length` before
//! allocating anything. Chunk 0 repeats the header under encryption: a changed
//! counter, length or type byte fails authentication; a chunk moved to another
//! position or frame is decrypted under the wrong nonce and fails too.
//!
//! Counters start at 0 in each direction and never wrap: a sender refuses to
//! seal past [`MAX_COUNTER`] (2^44 − 2 messages), which keeps every nonce below
//! Noise's reserved 2^64 − 1.

use snow::StatelessTransportState;

use crate::admit::PeerAttestation;
use crate::error::ChannelError;
use crate::replay::ReplayWindow;

/// First byte of a transport frame.
pub const FRAME_TYPE: u8 = 0x04;

/// Length of the clear frame header (type, counter, length).
pub const FRAME_HEADER_LEN: usize = 17;

/// Largest Noise message, tag included.
pub const MAX_NOISE_MESSAGE_LEN: usize = 65535;

/// Length of the Poly1305 tag of each chunk.
pub const TAG_LEN: usize = 16;

/// Largest plaintext of one chunk.
pub const MAX_CHUNK_PLAINTEXT: usize = MAX_NOISE_MESSAGE_LEN - TAG_LEN;

/// Payload bytes carried by chunk 0 (which also carries the header).
const FIRST_CHUNK_PAYLOAD: usize = MAX_CHUNK_PLAINTEXT - FRAME_HEADER_LEN;

/// Bits of the Noise nonce that number the chunks of a frame.
pub const CHUNK_BITS: u32 = 20;

/// Most chunks one frame may have.
pub const MAX_CHUNKS: u64 = 1 << CHUNK_BITS;

/// Largest counter a frame may carry (so that every chunk nonce stays below 2^64 − 1).
pub const MAX_COUNTER: u64 = (1 << (64 - CHUNK_BITS)) - 2;

/// Default largest payload of one message: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_LEN: u64 = 64 << 20;

/// Largest payload the frame format can carry ([`MAX_CHUNKS`] chunks, ~64 GiB).
pub const MAX_SUPPORTED_MESSAGE_LEN: u64 = FIRST_CHUNK_PAYLOAD as u64 + (MAX_CHUNKS - 1) * MAX_CHUNK_PLAINTEXT as u64;

fn chunk_count(len: u64) -> u64 {
    match len.checked_sub(FIRST_CHUNK_PAYLOAD as u64) {
        None | Some(0) => 1,
        Some(rest) => 1 + rest.div_ceil(MAX_CHUNK_PLAINTEXT as u64),
    }
}

/// Size of the frame carrying a `len`-byte payload (None if `len` is beyond
/// [`MAX_SUPPORTED_MESSAGE_LEN`]).
pub fn frame_len_for(len: u64) -> Option<u64> {
    if len > MAX_SUPPORTED_MESSAGE_LEN {
        return None;
    }
    let tags = chunk_count(len).checked_mul(TAG_LEN as u64)?;
    (2 * FRAME_HEADER_LEN as u64).checked_add(len)?.checked_add(tags)
}

fn encode_header(counter: u64, len: u64) -> [u8; FRAME_HEADER_LEN] {
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0] = FRAME_TYPE;
    h[1..9].copy_from_slice(&counter.to_be_bytes());
    h[9..17].copy_from_slice(&len.to_be_bytes());
    h
}

fn malformed(reason: impl Into<String>) -> ChannelError {
    ChannelError::Malformed { reason: reason.into() }
}

/// Reads the clear header: (counter, declared length).
fn parse_header(frame: &[u8]) -> Result<(u64, u64), ChannelError> {
    let header = frame.get(..FRAME_HEADER_LEN).ok_or_else(|| {
        malformed(format!("{} bytes, a frame has at least a {FRAME_HEADER_LEN}-byte header", frame.len()))
    })?;
    if header[0] != FRAME_TYPE {
        return Err(malformed(format!("type byte: expected {FRAME_TYPE:#04x}, actual {:#04x}", header[0])));
    }
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&header[1..9]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[9..17]);
    Ok((u64::from_be_bytes(counter), u64::from_be_bytes(len)))
}

fn nonce(counter: u64, chunk: u64) -> u64 {
    (counter << CHUNK_BITS) | chunk
}

/// An established channel to one attested peer. See the [module documentation](self)
/// for the frame format.
///
/// [`Channel::seal`] and [`Channel::open`] move opaque byte vectors: the caller
/// carries frames over any transport (vsock, TCP through untrusted hosts) that may
/// drop, delay, reorder, duplicate or alter them. Every frame is authenticated;
/// frames are accepted in any order within the last [`WINDOW`](crate::WINDOW)
/// counters, each at most once.
pub struct Channel {
    noise: StatelessTransportState,
    next_send: u64,
    window: ReplayWindow,
    max_message_len: u64,
    channel_id: [u8; 32],
    peer: PeerAttestation,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("channel_id", &hex::encode(self.channel_id))
            .field("initiator", &self.noise.is_initiator())
            .field("sent", &self.next_send)
            .field("highest_received", &self.window.highest())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub(crate) fn new(
        noise: StatelessTransportState,
        channel_id: [u8; 32],
        peer: PeerAttestation,
        max_message_len: u64,
    ) -> Self {
        Channel { noise, next_send: 0, window: ReplayWindow::new(), max_message_len, channel_id, peer }
    }

    /// Encrypts `payload` into one frame with the next counter. Refuses a payload
    /// over [`Channel::max_message_len`] and, once [`MAX_COUNTER`] was used, every
    /// further message ([`ChannelError::CounterExhausted`]): counters never wrap.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let len = payload.len() as u64;
        if len > self.max_message_len {
            return Err(ChannelError::MessageTooLarge { declared: len, max: self.max_message_len });
        }
        let counter = self.next_send;
        if counter > MAX_COUNTER {
            return Err(ChannelError::CounterExhausted { sent: counter });
        }
        let total = frame_len_for(len)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ChannelError::MessageTooLarge { declared: len, max: self.max_message_len })?;
        let header = encode_header(counter, len);
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&header);
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE_LEN];

        let split = payload.len().min(FIRST_CHUNK_PAYLOAD);
        let (first, rest) = payload.split_at(split);
        let mut chunk0 = Vec::with_capacity(FRAME_HEADER_LEN + first.len());
        chunk0.extend_from_slice(&header);
        chunk0.extend_from_slice(first);
        let chunks = std::iter::once(chunk0.as_slice()).chain(rest.chunks(MAX_CHUNK_PLAINTEXT));
        for (i, plaintext) in (0u64..).zip(chunks) {
            let n = self
                .noise
                .write_message(nonce(counter, i), plaintext, &mut buf)
                .map_err(|e| ChannelError::Internal(format!("sealing chunk {i}: {e}")))?;
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        debug_assert_eq!(out.len(), total);
        self.next_send = counter + 1;
        Ok(out)
    }

    /// Authenticates and decrypts one frame. In order: the header is parsed, the
    /// declared length checked against [`Channel::max_message_len`], the counter
    /// against the replay window, the frame size against the declared length —
    /// all before allocating — then every chunk is authenticated. Only a frame
    /// that passes everything is recorded in the window; a refused frame changes
    /// nothing.
    pub fn open(&mut self, frame: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let (counter, declared) = parse_header(frame)?;
        if declared > self.max_message_len {
            return Err(ChannelError::MessageTooLarge { declared, max: self.max_message_len });
        }
        if counter > MAX_COUNTER {
            return Err(ChannelError::CounterOutOfRange { counter, max: MAX_COUNTER });
        }
        self.window.check(counter)?;
        let expected = frame_len_for(declared).ok_or(ChannelError::MessageTooLarge {
            declared,
            max: self.max_message_len.min(MAX_SUPPORTED_MESSAGE_LEN),
        })?;
        if frame.len() as u64 != expected {
            return Err(ChannelError::LengthMismatch { declared, expected, actual: frame.len() as u64 });
        }
        let declared_usize = usize::try_from(declared).map_err(|_| malformed("length does not fit in memory"))?;

        let mut out = Vec::with_capacity(declared_usize);
        let mut buf = vec![0u8; MAX_NOISE_MESSAGE_LEN];
        let mut offset = FRAME_HEADER_LEN;
        let mut remaining = declared_usize;
        for chunk in 0..chunk_count(declared) {
            let auth_error = ChannelError::Authentication { counter, chunk };
            let plain_len = if chunk == 0 {
                FRAME_HEADER_LEN + remaining.min(FIRST_CHUNK_PAYLOAD)
            } else {
                remaining.min(MAX_CHUNK_PLAINTEXT)
            };
            let end = offset + plain_len + TAG_LEN;
            let ciphertext = frame.get(offset..end).ok_or_else(|| auth_error.clone())?;
            let n =
                self.noise.read_message(nonce(counter, chunk), ciphertext, &mut buf).map_err(|_| auth_error.clone())?;
            let plaintext = buf.get(..n).ok_or_else(|| auth_error.clone())?;
            let payload = if chunk == 0 {
                // The header under encryption must be the clear one.
                if plaintext.get(..FRAME_HEADER_LEN) != frame.get(..FRAME_HEADER_LEN) {
                    return Err(auth_error);
                }
                plaintext.get(FRAME_HEADER_LEN..).unwrap_or_default()
            } else {
                plaintext
            };
            out.extend_from_slice(payload);
            remaining = remaining.saturating_sub(payload.len());
            offset = end;
        }
        if out.len() != declared_usize || offset != frame.len() {
            return Err(ChannelError::Authentication { counter, chunk: chunk_count(declared) });
        }
        self.window.commit(counter);
        Ok(out)
    }

    /// The size of the whole frame that starts with `header` (its first
    /// [`FRAME_HEADER_LEN`] bytes), after checking its declared length against
    /// [`Channel::max_message_len`]: a stream reader learns how much to read, and
    /// refuses an oversize frame, before reading or allocating its body.
    pub fn frame_len(&self, header: &[u8]) -> Result<usize, ChannelError> {
        let (_, declared) = parse_header(header)?;
        if declared > self.max_message_len {
            return Err(ChannelError::MessageTooLarge { declared, max: self.max_message_len });
        }
        frame_len_for(declared)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(ChannelError::MessageTooLarge { declared, max: self.max_message_len })
    }

    /// The peer's verified attestation, as admitted during the handshake.
    pub fn peer(&self) -> &PeerAttestation {
        &self.peer
    }

    /// A stable identifier of this channel for logs: the final Noise handshake hash,
    /// equal on both ends and unique to this handshake.
    pub fn channel_id(&self) -> [u8; 32] {
        self.channel_id
    }

    /// `true` on the side that started the handshake.
    pub fn is_initiator(&self) -> bool {
        self.noise.is_initiator()
    }

    /// Largest payload this side seals or opens.
    pub fn max_message_len(&self) -> u64 {
        self.max_message_len
    }

    /// Changes the largest payload this side seals or opens (at most
    /// [`MAX_SUPPORTED_MESSAGE_LEN`]).
    pub fn set_max_message_len(&mut self, max: u64) -> Result<(), ChannelError> {
        if max > MAX_SUPPORTED_MESSAGE_LEN {
            return Err(ChannelError::InvalidArgument(format!(
                "maximum message length {max} exceeds the supported {MAX_SUPPORTED_MESSAGE_LEN}"
            )));
        }
        self.max_message_len = max;
        Ok(())
    }

    /// Number of messages sealed so far (the next counter).
    pub fn messages_sent(&self) -> u64 {
        self.next_send
    }

    /// The highest counter accepted from the peer.
    pub fn highest_received(&self) -> Option<u64> {
        self.window.highest()
    }

    #[cfg(test)]
    pub(crate) fn set_next_send_for_test(&mut self, counter: u64) {
        self.next_send = counter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two channel ends from an unauthenticated Noise NN handshake (transport tests only).
    pub(crate) fn pair() -> (Channel, Channel) {
        let params: snow::params::NoiseParams = "Noise_NN_25519_ChaChaPoly_SHA256".parse().unwrap();
        let mut i = snow::Builder::new(params.clone()).build_initiator().unwrap();
        let mut r = snow::Builder::new(params).build_responder().unwrap();
        let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        let peer = PeerAttestation {
            static_key: [0; 32],
            pcrs: Default::default(),
            user_data: vec![],
            module_id: "test".into(),
            timestamp_ms: 0,
            digest: "SHA384".into(),
            debug: false,
            document: vec![],
        };
        let id = [7; 32];
        let a = Channel::new(i.into_stateless_transport_mode().unwrap(), id, peer.clone(), DEFAULT_MAX_MESSAGE_LEN);
        let b = Channel::new(r.into_stateless_transport_mode().unwrap(), id, peer, DEFAULT_MAX_MESSAGE_LEN);
        (a, b)
    }

    #[test]
    fn frame_sizes_follow_from_the_length() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(FIRST_CHUNK_PAYLOAD as u64), 1);
        assert_eq!(chunk_count(FIRST_CHUNK_PAYLOAD as u64 + 1), 2);
        assert_eq!(chunk_count(MAX_SUPPORTED_MESSAGE_LEN), MAX_CHUNKS);
        assert_eq!(frame_len_for(0), Some(50));
        assert_eq!(frame_len_for(MAX_SUPPORTED_MESSAGE_LEN + 1), None);
        assert_eq!(frame_len_for(u64::MAX), None);
        assert!(nonce(MAX_COUNTER, MAX_CHUNKS - 1) < u64::MAX);
        let (mut a, _) = pair();
        for len in [0usize, 1, FIRST_CHUNK_PAYLOAD, FIRST_CHUNK_PAYLOAD + 1, 3 * MAX_CHUNK_PLAINTEXT + 5] {
            let frame = a.seal(&vec![1; len]).unwrap();
            assert_eq!(frame.len() as u64, frame_len_for(len as u64).unwrap());
            assert_eq!(a.frame_len(&frame[..FRAME_HEADER_LEN]).unwrap(), frame.len());
        }
    }

    #[test]
    fn counters_never_wrap() {
        let (mut a, mut b) = pair();
        a.set_next_send_for_test(MAX_COUNTER);
        let last = a.seal(b"last").unwrap();
        assert_eq!(b.open(&last).unwrap(), b"last");
        for _ in 0..3 {
            assert_eq!(a.seal(b"more"), Err(ChannelError::CounterExhausted { sent: MAX_COUNTER + 1 }));
        }
        assert_eq!(a.messages_sent(), MAX_COUNTER + 1);
        // A frame claiming a counter beyond the range is refused before decryption.
        let mut forged = last.clone();
        forged[1..9].copy_from_slice(&(MAX_COUNTER + 1).to_be_bytes());
        assert_eq!(
            b.open(&forged),
            Err(ChannelError::CounterOutOfRange { counter: MAX_COUNTER + 1, max: MAX_COUNTER })
        );
        forged[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(b.open(&forged), Err(ChannelError::CounterOutOfRange { .. })));
        // The other direction is independent.
        let back = b.seal(b"reply").unwrap();
        assert_eq!(a.open(&back).unwrap(), b"reply");
    }

    #[test]
    fn directions_have_their_own_keys() {
        let (mut a, mut b) = pair();
        let frame = a.seal(b"to b").unwrap();
        // Reflected back to its sender: refused.
        assert!(matches!(a.open(&frame), Err(ChannelError::Authentication { counter: 0, chunk: 0 })));
        assert_eq!(b.open(&frame).unwrap(), b"to b");
    }
}
