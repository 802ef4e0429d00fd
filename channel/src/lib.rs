//! Bridle channels: authenticated, encrypted enclave↔enclave channels bound to each
//! node's AWS Nitro attestation.
//!
//! Enclave traffic between cluster members crosses untrusted hosts (vsock → TCP →
//! vsock) that may drop, reorder, duplicate, replay or alter any byte. This crate
//! is the pure logic of the channel: no sockets, no async runtime — the caller
//! moves opaque byte vectors.
//!
//! 1. **Handshake** ([`handshake`]): Noise `XX_25519_ChaChaPoly_SHA256` with a
//!    prologue naming the cluster. Each side's encrypted handshake payload is a
//!    Nitro attestation document from its NSM whose `public_key` is its Noise static
//!    key and whose `nonce` is the handshake hash at that point; the receiver
//!    verifies it (signature, chain to the pinned root, time) and both bindings,
//!    then asks the caller's [`Admit`] policy ([`SameImage`], [`AllowedImages`]).
//! 2. **Transport** ([`transport`]): frames with an explicit counter, a replay
//!    window per direction ([`replay`]), payloads of any size up to a maximum
//!    (default 64 MiB) chunked into Noise messages.
//!
//! ```
//! use std::sync::Arc;
//! use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, NsmProvider, TrustedRoot};
//! use bridle_channel::{Initiator, NodeIdentity, Responder, SameImage};
//!
//! let ca = MockCa::generate()?; // one mock root for the whole (test) cluster
//! let node = |config: &str| -> Result<(NodeIdentity, SameImage), Box<dyn std::error::Error>> {
//!     let nsm = Arc::new(MockNsm::with_ca(&ca, ImageMeasurement::mock_default())?);
//!     let pcr16 = nsm.extend_pcr(16, config.as_bytes())?; // the configuration measurement
//!     let admit = SameImage::local(nsm.as_ref(), pcr16)?;
//!     let id = NodeIdentity::generate(nsm, config, TrustedRoot::Der(ca.root_der().to_vec()))?;
//!     Ok((id, admit))
//! };
//! let (a, admit_a) = node("cluster=demo")?;
//! let (b, admit_b) = node("cluster=demo")?;
//!
//! let (state, msg1) = Initiator::start(&a, b"demo")?;
//! let (state_b, msg2) = Responder::respond(&b, b"demo", &msg1)?;
//! let (mut to_b, _peer_b, msg3) = state.finish(&msg2, &admit_a)?;
//! let (mut to_a, peer_a) = state_b.finish(&msg3, &admit_b)?;
//! assert_eq!(peer_a.user_data, b"cluster=demo");
//! assert_eq!(to_a.channel_id(), to_b.channel_id());
//!
//! let frame = to_b.seal(b"append entries")?;
//! assert_eq!(to_a.open(&frame)?, b"append entries");
//! assert!(to_a.open(&frame).is_err()); // a replay
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admit;
pub mod error;
pub mod handshake;
pub mod identity;
pub mod replay;
pub mod transport;

pub use admit::{Admit, AdmitError, AllowedImages, PeerAttestation, SameImage};
pub use error::{ChannelError, HandshakeError, HandshakeStep};
pub use handshake::{
    looks_like_first_message, Initiator, InitiatorState, Responder, ResponderState, MAX_HANDSHAKE_DOCUMENT_LEN,
};
pub use identity::{NodeIdentity, MAX_CLUSTER_ID_LEN, NOISE_PARAMS, PROLOGUE_DOMAIN};
pub use replay::{ReplayWindow, WINDOW};
pub use transport::{Channel, DEFAULT_MAX_MESSAGE_LEN, FRAME_HEADER_LEN, MAX_COUNTER, MAX_SUPPORTED_MESSAGE_LEN};
