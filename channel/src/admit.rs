//! Who may join: the verified [`PeerAttestation`] a handshake hands to the
//! caller's [`Admit`] policy, and two ready policies, [`SameImage`] and
//! [`AllowedImages`].

use std::collections::BTreeMap;
use std::fmt;

use bridle_attestation::{NsmError, NsmProvider, VerifiedDocument};

/// What a verified attestation document says about the peer of a handshake.
///
/// Only built after the document's signature, certificate chain (to the pinned
/// root) and validity time were verified, its `nonce` equals the handshake hash
/// and its `public_key` equals the peer's Noise static key as authenticated by
/// Noise.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerAttestation {
    /// The peer's Noise static public key (X25519), equal to the document's `public_key`.
    pub static_key: [u8; 32],
    /// Every PCR of the document (index → value).
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    /// The document's `user_data`: the peer's canonical configuration text
    /// (empty when absent).
    pub user_data: Vec<u8>,
    /// The NSM module id, e.g. `i-0df2…-enc018d…`.
    pub module_id: String,
    /// When the peer's NSM signed the document, unix milliseconds.
    pub timestamp_ms: u64,
    /// PCR digest algorithm (`SHA384`).
    pub digest: String,
    /// `true` for a debug-mode enclave (PCR0, 1 or 2 all zeros). Only ever set when
    /// the policy allowed debug ([`Admit::allow_debug`]).
    pub debug: bool,
    /// The attestation document itself (COSE_Sign1 bytes), for audit logs.
    pub document: Vec<u8>,
}

impl PeerAttestation {
    pub(crate) fn from_verified(doc: VerifiedDocument, static_key: [u8; 32], document: Vec<u8>) -> Self {
        PeerAttestation {
            static_key,
            pcrs: doc.pcrs,
            user_data: doc.user_data.unwrap_or_default(),
            module_id: doc.module_id,
            timestamp_ms: doc.timestamp_ms,
            digest: doc.digest,
            debug: doc.debug,
            document,
        }
    }

    /// The value of PCR `index`, if the document has it.
    pub fn pcr(&self, index: u16) -> Option<&[u8]> {
        self.pcrs.get(&index).map(Vec::as_slice)
    }
}

impl fmt::Debug for PeerAttestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerAttestation")
            .field("static_key", &hex::encode(self.static_key))
            .field("module_id", &self.module_id)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("pcr0", &self.pcr(0).map(hex::encode))
            .field("debug", &self.debug)
            .field("user_data_len", &self.user_data.len())
            .finish_non_exhaustive()
    }
}

fn hx_opt(v: &Option<Vec<u8>>) -> String {
    v.as_ref().map(hex::encode).unwrap_or_else(|| "absent".to_string())
}

/// Why an [`Admit`] policy refused a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmitError {
    /// A required PCR differs (or is absent).
    #[error("PCR{index} mismatch: expected {}, actual {}", hex::encode(expected), hx_opt(actual))]
    PcrMismatch {
        /// PCR index.
        index: u16,
        /// Required value.
        expected: Vec<u8>,
        /// The peer's value (None: absent from its document).
        actual: Option<Vec<u8>>,
    },
    /// The peer's image (PCR0, PCR1, PCR2) is not one of the allowed images.
    #[error(
        "image not allowed: actual PCR0 {}, PCR1 {}, PCR2 {}; allowed PCR0s: [{}]",
        hx_opt(pcr0), hx_opt(pcr1), hx_opt(pcr2), allowed_pcr0.join(", ")
    )]
    ImageNotAllowed {
        /// The peer's PCR0.
        pcr0: Option<Vec<u8>>,
        /// The peer's PCR1.
        pcr1: Option<Vec<u8>>,
        /// The peer's PCR2.
        pcr2: Option<Vec<u8>>,
        /// PCR0 of each allowed image (hex).
        allowed_pcr0: Vec<String>,
    },
    /// The peer runs in debug mode (an all-zero PCR0..2) and the policy does not
    /// allow debug.
    #[error("debug-mode peer (PCR{index} all zeros) refused: debug not allowed by this policy")]
    DebugMode {
        /// The all-zero PCR.
        index: u16,
    },
    /// A refusal of a caller-defined policy.
    #[error("{0}")]
    Policy(String),
}

/// The caller's admission policy, consulted once per handshake with the peer's
/// verified attestation. Refusing aborts the handshake with
/// [`HandshakeError::Refused`](crate::HandshakeError::Refused).
pub trait Admit {
    /// Accepts or refuses the peer.
    fn admit(&self, peer: &PeerAttestation) -> Result<(), AdmitError>;

    /// Whether debug-mode documents (all-zero PCR0, 1 or 2) may be verified at all.
    /// `false` by default: the verifier then refuses them before [`Admit::admit`].
    fn allow_debug(&self) -> bool {
        false
    }
}

fn debug_check(peer: &PeerAttestation, allow_debug: bool) -> Result<(), AdmitError> {
    if allow_debug {
        return Ok(());
    }
    match (0..=2u16).find(|i| peer.pcr(*i).is_some_and(|v| v.iter().all(|b| *b == 0))) {
        Some(index) => Err(AdmitError::DebugMode { index }),
        None if peer.debug => Err(AdmitError::DebugMode { index: 0 }),
        None => Ok(()),
    }
}

fn require(peer: &PeerAttestation, index: u16, expected: &[u8]) -> Result<(), AdmitError> {
    match peer.pcr(index) {
        Some(actual) if actual == expected => Ok(()),
        actual => {
            Err(AdmitError::PcrMismatch { index, expected: expected.to_vec(), actual: actual.map(<[u8]>::to_vec) })
        }
    }
}

/// Admits a peer running the same image as this node — PCR0, PCR1 and PCR2 equal
/// to the local ones — with the given PCR16 (the cluster's configuration
/// measurement). Debug-mode peers are refused unless [`SameImage::allow_debug`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameImage {
    expected: BTreeMap<u16, Vec<u8>>,
    allow_debug: bool,
}

impl SameImage {
    /// Requires these PCR0, PCR1, PCR2 (the local image) and PCR16.
    pub fn new(
        pcr0: impl Into<Vec<u8>>,
        pcr1: impl Into<Vec<u8>>,
        pcr2: impl Into<Vec<u8>>,
        pcr16: impl Into<Vec<u8>>,
    ) -> Self {
        let expected = BTreeMap::from([(0, pcr0.into()), (1, pcr1.into()), (2, pcr2.into()), (16, pcr16.into())]);
        SameImage { expected, allow_debug: false }
    }

    /// Reads PCR0..2 of the local NSM, and requires `pcr16`.
    pub fn local(nsm: &dyn NsmProvider, pcr16: impl Into<Vec<u8>>) -> Result<Self, NsmError> {
        let pcr = |i| nsm.describe_pcr(i).map(|d| d.data);
        Ok(Self::new(pcr(0)?, pcr(1)?, pcr(2)?, pcr16))
    }

    /// Allows debug-mode peers (development only; their PCRs must still match).
    pub fn allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }
}

impl Admit for SameImage {
    fn admit(&self, peer: &PeerAttestation) -> Result<(), AdmitError> {
        debug_check(peer, self.allow_debug)?;
        self.expected.iter().try_for_each(|(index, value)| require(peer, *index, value))
    }

    fn allow_debug(&self) -> bool {
        self.allow_debug
    }
}

/// Admits a peer whose (PCR0, PCR1, PCR2) is one of a set of allowed images, e.g.
/// the current and the next release during an upgrade, and whose PCRs required
/// with [`AllowedImages::require_pcr`] (e.g. PCR16, the configuration) match.
/// An empty set admits nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedImages {
    images: Vec<[Vec<u8>; 3]>,
    required: BTreeMap<u16, Vec<u8>>,
    allow_debug: bool,
}

impl AllowedImages {
    /// An empty set (admits nobody until images are added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an allowed image.
    pub fn allow(mut self, pcr0: impl Into<Vec<u8>>, pcr1: impl Into<Vec<u8>>, pcr2: impl Into<Vec<u8>>) -> Self {
        self.images.push([pcr0.into(), pcr1.into(), pcr2.into()]);
        self
    }

    /// Also requires PCR `index` to equal `value`, whatever the image.
    pub fn require_pcr(mut self, index: u16, value: impl Into<Vec<u8>>) -> Self {
        self.required.insert(index, value.into());
        self
    }

    /// Allows debug-mode peers (development only; their PCRs must still match).
    pub fn allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }
}

impl Admit for AllowedImages {
    fn admit(&self, peer: &PeerAttestation) -> Result<(), AdmitError> {
        debug_check(peer, self.allow_debug)?;
        let actual = [peer.pcr(0), peer.pcr(1), peer.pcr(2)];
        let allowed =
            self.images.iter().any(|img| img.iter().zip(actual).all(|(want, got)| got == Some(want.as_slice())));
        if !allowed {
            return Err(AdmitError::ImageNotAllowed {
                pcr0: actual[0].map(<[u8]>::to_vec),
                pcr1: actual[1].map(<[u8]>::to_vec),
                pcr2: actual[2].map(<[u8]>::to_vec),
                allowed_pcr0: self.images.iter().map(|img| hex::encode(&img[0])).collect(),
            });
        }
        self.required.iter().try_for_each(|(index, value)| require(peer, *index, value))
    }

    fn allow_debug(&self) -> bool {
        self.allow_debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(pcrs: &[(u16, u8)]) -> PeerAttestation {
        PeerAttestation {
            static_key: [1; 32],
            pcrs: pcrs.iter().map(|(i, b)| (*i, vec![*b; 48])).collect(),
            user_data: vec![],
            module_id: "i-test-enc1".into(),
            timestamp_ms: 1,
            digest: "SHA384".into(),
            debug: false,
            document: vec![],
        }
    }

    #[test]
    fn same_image_names_the_failing_pcr() {
        let policy = SameImage::new(vec![1; 48], vec![2; 48], vec![3; 48], vec![16; 48]);
        assert_eq!(policy.admit(&peer(&[(0, 1), (1, 2), (2, 3), (16, 16)])), Ok(()));
        let err = policy.admit(&peer(&[(0, 9), (1, 2), (2, 3), (16, 16)])).unwrap_err();
        assert_eq!(err, AdmitError::PcrMismatch { index: 0, expected: vec![1; 48], actual: Some(vec![9; 48]) });
        let text = err.to_string();
        assert!(text.contains(&hex::encode([1; 48])) && text.contains(&hex::encode([9; 48])), "{text}");
        let err = policy.admit(&peer(&[(0, 1), (1, 2), (2, 3)])).unwrap_err();
        assert!(matches!(err, AdmitError::PcrMismatch { index: 16, actual: None, .. }), "{err}");
        assert!(err.to_string().contains("absent"));
    }

    #[test]
    fn debug_peers_need_explicit_permission() {
        let policy = SameImage::new(vec![0; 48], vec![0; 48], vec![0; 48], vec![16; 48]);
        let mut p = peer(&[(0, 0), (1, 0), (2, 0), (16, 16)]);
        assert_eq!(policy.admit(&p), Err(AdmitError::DebugMode { index: 0 }));
        assert!(!Admit::allow_debug(&policy));
        let policy = policy.allow_debug(true);
        assert!(Admit::allow_debug(&policy));
        p.debug = true;
        assert_eq!(policy.admit(&p), Ok(()));
        let allowed = AllowedImages::new().allow(vec![0; 48], vec![0; 48], vec![0; 48]);
        assert_eq!(allowed.admit(&p), Err(AdmitError::DebugMode { index: 0 }));
    }

    #[test]
    fn allowed_images_accept_any_listed_triple_and_required_pcrs() {
        let policy = AllowedImages::new()
            .allow(vec![1; 48], vec![2; 48], vec![3; 48])
            .allow(vec![4; 48], vec![5; 48], vec![6; 48])
            .require_pcr(16, vec![16; 48]);
        assert_eq!(policy.admit(&peer(&[(0, 4), (1, 5), (2, 6), (16, 16)])), Ok(()));
        assert_eq!(policy.admit(&peer(&[(0, 1), (1, 2), (2, 3), (16, 16)])), Ok(()));
        // A mix of two allowed images is not an allowed image.
        let err = policy.admit(&peer(&[(0, 1), (1, 5), (2, 3), (16, 16)])).unwrap_err();
        assert!(matches!(&err, AdmitError::ImageNotAllowed { allowed_pcr0, .. } if allowed_pcr0.len() == 2), "{err}");
        let err = policy.admit(&peer(&[(0, 1), (1, 2), (2, 3), (16, 17)])).unwrap_err();
        assert!(matches!(err, AdmitError::PcrMismatch { index: 16, .. }));
        assert!(AllowedImages::new().admit(&peer(&[(0, 1), (1, 2), (2, 3)])).is_err());
    }
}
