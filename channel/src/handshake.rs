//! The attested handshake: Noise XX in three messages, each side's attestation
//! document inside its encrypted handshake payload, bound to its Noise static key
//! and to the handshake hash.
//!
//! ```text
//! msg1  I → R   0x01 ‖ Noise XX message 1: e                  (empty payload)
//! msg2  R → I   0x02 ‖ Noise XX message 2: e, ee, s, es       payload = R's document
//! msg3  I → R   0x03 ‖ Noise XX message 3: s, se              payload = I's document
//! ```
//!
//! R's document: `nonce` = the handshake hash after message 1 (it covers the
//! prologue, hence the cluster id, and I's fresh ephemeral key), `public_key` = R's
//! static key. I's document: `nonce` = the handshake hash after message 2 (it also
//! covers R's ephemeral and static keys and R's document), `public_key` = I's
//! static key. `user_data` = the sender's configuration text. Each receiver checks
//! both bindings against what Noise itself authenticated, then calls its [`Admit`]
//! policy; the initiator does so before it sends message 3.

use bridle_attestation::{verify_then, CertCache, VerifyOptions};
use snow::HandshakeState;

use crate::admit::{Admit, PeerAttestation};
use crate::error::{HandshakeError, HandshakeStep};
use crate::identity::{noise_params, prologue, NodeIdentity, STATIC_KEY_LEN};
use crate::transport::{Channel, MAX_NOISE_MESSAGE_LEN, TAG_LEN};

/// First byte of handshake message 1.
pub const MSG1_TYPE: u8 = 0x01;
/// First byte of handshake message 2.
pub const MSG2_TYPE: u8 = 0x02;
/// First byte of handshake message 3.
pub const MSG3_TYPE: u8 = 0x03;

/// Largest attestation document that fits in message 2 (and so in message 3):
/// a Noise message less an ephemeral key, an encrypted static key and a tag.
pub const MAX_HANDSHAKE_DOCUMENT_LEN: usize =
    MAX_NOISE_MESSAGE_LEN - STATIC_KEY_LEN - (STATIC_KEY_LEN + TAG_LEN) - TAG_LEN;

fn builder<'a>(identity: &'a NodeIdentity, prologue: &'a [u8]) -> Result<snow::Builder<'a>, HandshakeError> {
    let internal = |e: snow::Error| HandshakeError::Internal(e.to_string());
    snow::Builder::new(noise_params()?)
        .local_private_key(identity.private_key())
        .map_err(internal)?
        .prologue(prologue)
        .map_err(internal)
}

/// Whether `msg1` has a first handshake message's shape (its type byte and an ephemeral
/// key, nothing else): a cheap check before a responder spends anything on it.
pub fn looks_like_first_message(msg1: &[u8]) -> bool {
    msg1.len() == 1 + STATIC_KEY_LEN && msg1[0] == MSG1_TYPE
}

/// The Noise bytes of a handshake message after its type byte.
fn body(message: &[u8], expected: u8, step: HandshakeStep) -> Result<&[u8], HandshakeError> {
    match message.split_first() {
        None => Err(HandshakeError::Malformed { step, reason: "empty message".into() }),
        Some((t, _)) if *t != expected => Err(HandshakeError::Malformed {
            step,
            reason: format!("type byte: expected {expected:#04x}, actual {t:#04x}"),
        }),
        Some((_, rest)) if rest.len() > MAX_NOISE_MESSAGE_LEN => Err(HandshakeError::Malformed {
            step,
            reason: format!("{} bytes, a Noise message has at most {MAX_NOISE_MESSAGE_LEN}", rest.len()),
        }),
        Some((_, rest)) => Ok(rest),
    }
}

fn write(hs: &mut HandshakeState, kind: u8, payload: &[u8], step: HandshakeStep) -> Result<Vec<u8>, HandshakeError> {
    if payload.len() > MAX_HANDSHAKE_DOCUMENT_LEN {
        return Err(HandshakeError::LocalDocumentTooLarge { max: MAX_HANDSHAKE_DOCUMENT_LEN, actual: payload.len() });
    }
    let mut buf = vec![0u8; MAX_NOISE_MESSAGE_LEN];
    let n = hs.write_message(payload, &mut buf).map_err(|e| HandshakeError::Internal(format!("{step}: {e}")))?;
    let mut out = Vec::with_capacity(1 + n);
    out.push(kind);
    out.extend_from_slice(buf.get(..n).unwrap_or_default());
    Ok(out)
}

fn read(hs: &mut HandshakeState, body: &[u8], step: HandshakeStep) -> Result<Vec<u8>, HandshakeError> {
    let mut payload = vec![0u8; MAX_NOISE_MESSAGE_LEN];
    let n = hs.read_message(body, &mut payload).map_err(|e| HandshakeError::Noise { step, reason: e.to_string() })?;
    payload.truncate(n);
    Ok(payload)
}

fn remote_static(hs: &HandshakeState) -> Result<[u8; STATIC_KEY_LEN], HandshakeError> {
    hs.get_remote_static()
        .and_then(|k| <[u8; STATIC_KEY_LEN]>::try_from(k).ok())
        .ok_or_else(|| HandshakeError::Internal("no remote static key after it was received".into()))
}

fn hash(hs: &HandshakeState) -> Vec<u8> {
    hs.get_handshake_hash().to_vec()
}

/// Verifies the peer's document (chain to the pinned root, signature, time, debug),
/// its bindings (nonce = `expected_nonce`, public key = the Noise-authenticated
/// `static_key`), then asks `admit`.
fn verify_peer(
    identity: &NodeIdentity,
    step: HandshakeStep,
    document: Vec<u8>,
    expected_nonce: &[u8],
    static_key: [u8; STATIC_KEY_LEN],
    admit: &dyn Admit,
) -> Result<PeerAttestation, HandshakeError> {
    let options = VerifyOptions {
        root: identity.trusted_root().clone(),
        time: identity.verify_time(),
        expected_nonce: Some(expected_nonce.to_vec()),
        expected_public_key: Some(static_key.to_vec()),
        allow_debug: admit.allow_debug(),
        // Which images may join is the Admit policy's decision, made just below.
        any_image: true,
        ..VerifyOptions::default()
    };
    // The links this document's chain adds to the process-wide cache are kept only if the
    // peer is admitted: a refused stranger (any genuine enclave) pushes out nothing.
    let admitted = verify_then(&document.clone(), &options, CertCache::global(), |verified| {
        let peer = PeerAttestation::from_verified(verified, static_key, document);
        admit.admit(&peer).map(|()| peer)
    });
    admitted.map_err(|error| HandshakeError::Attestation { step, error })?.map_err(HandshakeError::Refused)
}

fn into_channel(hs: Box<HandshakeState>, peer: PeerAttestation, max: u64) -> Result<Channel, HandshakeError> {
    let channel_id = <[u8; 32]>::try_from(hs.get_handshake_hash())
        .map_err(|_| HandshakeError::Internal("handshake hash length".into()))?;
    let noise = hs.into_stateless_transport_mode().map_err(|e| HandshakeError::Internal(e.to_string()))?;
    Ok(Channel::new(noise, channel_id, peer, max))
}

/// Starts handshakes (the side that connects).
#[derive(Debug)]
pub struct Initiator;

impl Initiator {
    /// Starts a handshake with a peer of cluster `cluster_id`: returns the state to
    /// keep and message 1 to send.
    pub fn start(identity: &NodeIdentity, cluster_id: &[u8]) -> Result<(InitiatorState, Vec<u8>), HandshakeError> {
        let prologue = prologue(cluster_id)?;
        let mut hs =
            builder(identity, &prologue)?.build_initiator().map_err(|e| HandshakeError::Internal(e.to_string()))?;
        let msg1 = write(&mut hs, MSG1_TYPE, &[], HandshakeStep::Msg1)?;
        let responder_nonce = hash(&hs);
        Ok((InitiatorState { hs: Box::new(hs), identity: identity.clone(), responder_nonce }, msg1))
    }
}

/// An initiator waiting for message 2.
pub struct InitiatorState {
    hs: Box<HandshakeState>,
    identity: NodeIdentity,
    responder_nonce: Vec<u8>,
}

impl std::fmt::Debug for InitiatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitiatorState").field("responder_nonce", &hex::encode(&self.responder_nonce)).finish()
    }
}

impl InitiatorState {
    /// Reads message 2, verifies the responder's attestation and asks `admit`; if
    /// admitted, attests this node in message 3. Returns the channel, the peer's
    /// attestation and message 3 to send (the responder's channel exists once it
    /// has read message 3; frames sealed before then wait or are resent by the caller).
    pub fn finish(
        mut self,
        msg2: &[u8],
        admit: &dyn Admit,
    ) -> Result<(Channel, PeerAttestation, Vec<u8>), HandshakeError> {
        let body = body(msg2, MSG2_TYPE, HandshakeStep::Msg2)?;
        let document = read(&mut self.hs, body, HandshakeStep::Msg2)?;
        let static_key = remote_static(&self.hs)?;
        let peer =
            verify_peer(&self.identity, HandshakeStep::Msg2, document, &self.responder_nonce, static_key, admit)?;
        let own = self.identity.attest(&hash(&self.hs))?;
        let msg3 = write(&mut self.hs, MSG3_TYPE, &own, HandshakeStep::Msg3)?;
        let channel = into_channel(self.hs, peer.clone(), self.identity.max_message_len())?;
        Ok((channel, peer, msg3))
    }
}

/// Answers handshakes (the side that accepts).
#[derive(Debug)]
pub struct Responder;

impl Responder {
    /// Reads message 1 of a handshake for cluster `cluster_id` and attests this node
    /// in message 2. Returns the state to keep and message 2 to send. (The peer is
    /// not known yet: its attestation arrives in message 3, checked by
    /// [`ResponderState::finish`].)
    pub fn respond(
        identity: &NodeIdentity,
        cluster_id: &[u8],
        msg1: &[u8],
    ) -> Result<(ResponderState, Vec<u8>), HandshakeError> {
        let prologue = prologue(cluster_id)?;
        let step = HandshakeStep::Msg1;
        let body = body(msg1, MSG1_TYPE, step)?;
        if body.len() != STATIC_KEY_LEN {
            return Err(HandshakeError::Malformed {
                step,
                reason: format!(
                    "expected a {STATIC_KEY_LEN}-byte ephemeral key and no payload, got {} bytes",
                    body.len()
                ),
            });
        }
        let mut hs =
            builder(identity, &prologue)?.build_responder().map_err(|e| HandshakeError::Internal(e.to_string()))?;
        let payload = read(&mut hs, body, step)?;
        if !payload.is_empty() {
            return Err(HandshakeError::Malformed { step, reason: "unexpected payload".into() });
        }
        let own = identity.attest(&hash(&hs))?;
        let msg2 = write(&mut hs, MSG2_TYPE, &own, HandshakeStep::Msg2)?;
        let initiator_nonce = hash(&hs);
        Ok((ResponderState { hs: Box::new(hs), identity: identity.clone(), initiator_nonce }, msg2))
    }
}

/// A responder waiting for message 3.
pub struct ResponderState {
    hs: Box<HandshakeState>,
    identity: NodeIdentity,
    initiator_nonce: Vec<u8>,
}

impl std::fmt::Debug for ResponderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponderState").field("initiator_nonce", &hex::encode(&self.initiator_nonce)).finish()
    }
}

impl ResponderState {
    /// Reads message 3, verifies the initiator's attestation and asks `admit`.
    /// Returns the channel and the peer's attestation.
    pub fn finish(mut self, msg3: &[u8], admit: &dyn Admit) -> Result<(Channel, PeerAttestation), HandshakeError> {
        let body = body(msg3, MSG3_TYPE, HandshakeStep::Msg3)?;
        let document = read(&mut self.hs, body, HandshakeStep::Msg3)?;
        let static_key = remote_static(&self.hs)?;
        let peer =
            verify_peer(&self.identity, HandshakeStep::Msg3, document, &self.initiator_nonce, static_key, admit)?;
        let channel = into_channel(self.hs, peer.clone(), self.identity.max_message_len())?;
        Ok((channel, peer))
    }
}
