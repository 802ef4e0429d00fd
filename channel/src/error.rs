//! Typed errors of the handshake ([`HandshakeError`]) and of the transport
//! ([`ChannelError`]). Every variant names what failed; where there is an expected
//! and an actual value, both are in the message.

use bridle_attestation::{NsmError, VerifyError};

use crate::admit::AdmitError;

/// Which handshake message an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeStep {
    /// Message 1 (initiator → responder: ephemeral key).
    Msg1,
    /// Message 2 (responder → initiator: ephemeral, static, attestation).
    Msg2,
    /// Message 3 (initiator → responder: static, attestation).
    Msg3,
}

impl std::fmt::Display for HandshakeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HandshakeStep::Msg1 => "handshake message 1",
            HandshakeStep::Msg2 => "handshake message 2",
            HandshakeStep::Msg3 => "handshake message 3",
        })
    }
}

/// Why a handshake was aborted. A failed handshake leaves nothing behind: the
/// state object was consumed and no channel exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A local argument was refused (cluster id, user data, configuration).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The message is not a well-formed handshake message of this step.
    #[error("{step} malformed: {reason}")]
    Malformed {
        /// The message.
        step: HandshakeStep,
        /// What is wrong.
        reason: String,
    },
    /// Noise refused the message: it was altered, belongs to another handshake or
    /// cluster (prologue), or was not made by the holder of the keys.
    #[error("{step} failed Noise authentication ({reason}): altered or relayed from another handshake, or another cluster id")]
    Noise {
        /// The message.
        step: HandshakeStep,
        /// Noise's error.
        reason: String,
    },
    /// The local NSM could not produce our attestation document.
    #[error("local attestation failed: {0}")]
    LocalAttestation(NsmError),
    /// The local attestation document does not fit in a Noise message.
    #[error("local attestation document too large: {actual} bytes, at most {max} fit in a handshake message")]
    LocalDocumentTooLarge {
        /// Largest size that fits.
        max: usize,
        /// Size produced.
        actual: usize,
    },
    /// The peer's attestation document failed verification: signature, chain to the
    /// pinned root, validity time, debug mode, or binding (nonce = handshake hash,
    /// public key = the peer's Noise static key).
    #[error("peer attestation ({step}) refused: {error}")]
    Attestation {
        /// The message that carried the document.
        step: HandshakeStep,
        /// The verifier's error (expected and actual values).
        error: VerifyError,
    },
    /// The peer's attestation is valid but the admission policy refused it.
    #[error("peer not admitted: {0}")]
    Refused(AdmitError),
    /// Noise failed locally (should not happen).
    #[error("internal Noise error: {0}")]
    Internal(String),
}

/// Why a transport operation ([`Channel::seal`](crate::Channel::seal) or
/// [`Channel::open`](crate::Channel::open)) failed. A refused frame changes no
/// state of the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The message is larger than this channel's maximum (checked before any
    /// allocation, from the declared length of a received frame).
    #[error("message too large: {declared} bytes declared, at most {max} accepted")]
    MessageTooLarge {
        /// Length declared by the frame (or given to seal).
        declared: u64,
        /// The channel's maximum.
        max: u64,
    },
    /// The frame is not a well-formed transport frame.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The frame's length does not match its declared payload length.
    #[error("frame length mismatch: declared payload {declared} bytes needs a {expected}-byte frame, actual {actual}")]
    LengthMismatch {
        /// Declared payload length.
        declared: u64,
        /// Frame length the declared length implies.
        expected: u64,
        /// Frame length received.
        actual: u64,
    },
    /// A frame with this counter was already accepted (replay or duplicate).
    #[error("duplicate frame: counter {counter} was already accepted")]
    Duplicate {
        /// The frame's counter.
        counter: u64,
    },
    /// The counter is below the replay window: it can no longer be told apart from
    /// a replay.
    #[error("frame too old: counter {counter}, oldest still accepted {oldest_accepted}")]
    TooOld {
        /// The frame's counter.
        counter: u64,
        /// The lowest counter the window still accepts.
        oldest_accepted: u64,
    },
    /// A received counter beyond the largest one a sender may use.
    #[error("counter out of range: {counter}, at most {max}")]
    CounterOutOfRange {
        /// The frame's counter.
        counter: u64,
        /// Largest valid counter.
        max: u64,
    },
    /// This side has sent its last possible message: a new handshake is needed.
    /// Counters never wrap.
    #[error("send counter exhausted after {sent} messages: open a new channel")]
    CounterExhausted {
        /// Messages sent on this channel.
        sent: u64,
    },
    /// A chunk failed authentication: altered, truncated, chunk-reordered, or not
    /// made with this channel's keys.
    #[error("frame (counter {counter}) failed authentication at chunk {chunk}")]
    Authentication {
        /// The frame's counter.
        counter: u64,
        /// The first chunk that failed.
        chunk: u64,
    },
    /// A configuration value was refused.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Noise failed locally while sealing (should not happen).
    #[error("internal Noise error: {0}")]
    Internal(String),
}
