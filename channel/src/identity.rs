//! [`NodeIdentity`]: what a node brings to every handshake — its Noise static key,
//! its NSM (to attest), its configuration text, and what it trusts (the pinned
//! root, the document age, the channel message size).

use std::sync::Arc;

use bridle_attestation::{NsmProvider, TrustedRoot, DEFAULT_MAX_AGE_SECS, MAX_USER_DATA_LEN};
use zeroize::Zeroizing;

use crate::error::HandshakeError;
use crate::transport::{DEFAULT_MAX_MESSAGE_LEN, MAX_SUPPORTED_MESSAGE_LEN};

/// The Noise protocol name: XX pattern, X25519, ChaCha20-Poly1305, SHA-256.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// The fixed start of the Noise prologue; the cluster id follows (see
/// [`prologue`]). A protocol change changes this string.
pub const PROLOGUE_DOMAIN: &[u8] = b"bridle-channel/v1 attested enclave-to-enclave channel\0";

/// Longest cluster id accepted, in bytes.
pub const MAX_CLUSTER_ID_LEN: usize = 256;

/// Length of a Noise static public key (X25519), in bytes.
pub const STATIC_KEY_LEN: usize = 32;

pub(crate) fn noise_params() -> Result<snow::params::NoiseParams, HandshakeError> {
    NOISE_PARAMS.parse().map_err(|e| HandshakeError::Internal(format!("Noise parameters: {e}")))
}

/// The Noise prologue for `cluster_id`: [`PROLOGUE_DOMAIN`] ‖ u16 big-endian
/// length ‖ cluster id. Both sides mix it into the handshake hash, so nodes
/// given different cluster ids fail at message 2.
pub fn prologue(cluster_id: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if cluster_id.is_empty() || cluster_id.len() > MAX_CLUSTER_ID_LEN {
        return Err(HandshakeError::InvalidArgument(format!(
            "cluster id must be 1..={MAX_CLUSTER_ID_LEN} bytes, got {}",
            cluster_id.len()
        )));
    }
    let len = u16::try_from(cluster_id.len()).map_err(|_| HandshakeError::InvalidArgument("cluster id".into()))?;
    let mut p = Vec::with_capacity(PROLOGUE_DOMAIN.len() + 2 + cluster_id.len());
    p.extend_from_slice(PROLOGUE_DOMAIN);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(cluster_id);
    Ok(p)
}

/// A node's identity for channels: a Noise static key pair generated at startup
/// (its public half is what the node's attestation documents carry as
/// `public_key`), the NSM that attests it, the node's configuration text
/// (`user_data`, at most [`MAX_USER_DATA_LEN`] bytes), and the verification
/// settings applied to peers: the trusted root, the maximum document age and
/// the largest message a channel accepts.
///
/// Cloning shares the NSM; the private key is zeroized when the last copy drops.
#[derive(Clone)]
pub struct NodeIdentity {
    private_key: Arc<Zeroizing<Vec<u8>>>,
    public_key: [u8; STATIC_KEY_LEN],
    nsm: Arc<dyn NsmProvider>,
    user_data: Vec<u8>,
    root: TrustedRoot,
    max_document_age_secs: u64,
    max_message_len: u64,
    /// "Now" for peers' documents, Unix milliseconds ([`NodeIdentity::with_clock`]); the
    /// system clock when unset.
    clock: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("static_key", &hex::encode(self.public_key))
            .field("user_data_len", &self.user_data.len())
            .field("root", &self.root)
            .field("max_document_age_secs", &self.max_document_age_secs)
            .field("max_message_len", &self.max_message_len)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// A new identity with a fresh static key. `user_data` is the node's canonical
    /// configuration text, put in each of its attestation documents; `root` is the
    /// root certificate peers' documents must chain to ([`TrustedRoot::AwsNitroRootG1`]
    /// in production, a [`MockCa`](bridle_attestation::MockCa) root in tests).
    pub fn generate(
        nsm: Arc<dyn NsmProvider>,
        user_data: impl Into<Vec<u8>>,
        root: TrustedRoot,
    ) -> Result<Self, HandshakeError> {
        let user_data = user_data.into();
        if user_data.len() > MAX_USER_DATA_LEN {
            return Err(HandshakeError::InvalidArgument(format!(
                "user data (configuration) is {} bytes, the NSM accepts at most {MAX_USER_DATA_LEN}",
                user_data.len()
            )));
        }
        let keypair = snow::Builder::new(noise_params()?)
            .generate_keypair()
            .map_err(|e| HandshakeError::Internal(format!("static key generation: {e}")))?;
        let private_key = Arc::new(Zeroizing::new(keypair.private));
        let public_key = <[u8; STATIC_KEY_LEN]>::try_from(keypair.public.as_slice())
            .map_err(|_| HandshakeError::Internal("static public key length".into()))?;
        Ok(NodeIdentity {
            private_key,
            public_key,
            nsm,
            user_data,
            root,
            max_document_age_secs: DEFAULT_MAX_AGE_SECS,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            clock: None,
        })
    }

    /// Sets the largest payload the channels of this node accept and send
    /// (default 64 MiB; at most [`MAX_SUPPORTED_MESSAGE_LEN`]).
    pub fn with_max_message_len(mut self, max: u64) -> Result<Self, HandshakeError> {
        if max > MAX_SUPPORTED_MESSAGE_LEN {
            return Err(HandshakeError::InvalidArgument(format!(
                "maximum message length {max} exceeds the supported {MAX_SUPPORTED_MESSAGE_LEN}"
            )));
        }
        self.max_message_len = max;
        Ok(self)
    }

    /// Sets how far a peer document's timestamp may be from now (default 300 s).
    pub fn with_max_document_age(mut self, secs: u64) -> Self {
        self.max_document_age_secs = secs;
        self
    }

    /// Reads "now" for peers' documents from `now_ms` (Unix milliseconds) instead of the
    /// system clock: an enclave's clock corrected by its NSM's (a review of 2026-12-06: a
    /// node whose hypervisor clock drifted past the document age refused every peer).
    pub fn with_clock(mut self, now_ms: Arc<dyn Fn() -> u64 + Send + Sync>) -> Self {
        self.clock = Some(now_ms);
        self
    }

    /// "Now" for a peer's document ([`NodeIdentity::with_clock`]), as the verifier takes it.
    pub(crate) fn verify_time(&self) -> bridle_attestation::VerifyTime {
        let max_age_secs = self.max_document_age_secs;
        match &self.clock {
            Some(now_ms) => bridle_attestation::VerifyTime::NowAt { now_ms: now_ms(), max_age_secs },
            None => bridle_attestation::VerifyTime::Now { max_age_secs },
        }
    }

    /// The Noise static public key (what this node's documents carry as `public_key`).
    pub fn static_public_key(&self) -> [u8; STATIC_KEY_LEN] {
        self.public_key
    }

    /// The configuration text attested as `user_data`.
    pub fn user_data(&self) -> &[u8] {
        &self.user_data
    }

    /// The root peers' documents must chain to.
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// The largest payload this node's channels accept.
    pub fn max_message_len(&self) -> u64 {
        self.max_message_len
    }

    pub(crate) fn private_key(&self) -> &[u8] {
        self.private_key.as_slice()
    }

    /// Asks the NSM for a document binding our static key to `handshake_hash`.
    pub(crate) fn attest(&self, handshake_hash: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let user_data = (!self.user_data.is_empty()).then(|| self.user_data.clone());
        self.nsm
            .attestation(user_data, Some(handshake_hash.to_vec()), Some(self.public_key.to_vec()))
            .map_err(HandshakeError::LocalAttestation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_is_length_prefixed_and_bounded() {
        let p = prologue(b"prod").unwrap();
        assert!(p.starts_with(PROLOGUE_DOMAIN));
        assert_eq!(&p[PROLOGUE_DOMAIN.len()..], &[0, 4, b'p', b'r', b'o', b'd']);
        assert!(prologue(b"").is_err());
        assert!(prologue(&[7; MAX_CLUSTER_ID_LEN]).is_ok());
        assert!(prologue(&[7; MAX_CLUSTER_ID_LEN + 1]).is_err());
    }
}
