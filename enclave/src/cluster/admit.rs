//! Who may be a node of this cluster (ATTESTATION.md, "Cluster"): an enclave whose
//! attestation chains to the trusted root, whose configuration is this node's (same
//! cluster, same rules; only the crate version may differ), and whose image is this node's
//! — or, when the cluster's configuration names a release signer (PCR8), any image that
//! signer signed.

use crate::attest::{BootConfig, CONFIG_PCR};
use bridle_channel::{Admit, AdmitError, PeerAttestation};
use sha2::{Digest, Sha384};

/// The PCR that measures the certificate an image was signed with.
pub const SIGNER_PCR: u16 = 8;

/// The admission policy of a cluster node. See the module docs.
#[derive(Debug, Clone)]
pub struct ClusterAdmit {
    image: [Vec<u8>; 3],
    config: String,
    release_pcr8: Option<Vec<u8>>,
}

/// The lines of a configuration text that must be equal on every node.
fn binding_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with("crate_version=")).collect()
}

impl ClusterAdmit {
    /// This node's image (PCR0, PCR1, PCR2) and configuration.
    pub fn new(image: [Vec<u8>; 3], config: &BootConfig) -> ClusterAdmit {
        let release_pcr8 = config.cluster.as_ref().and_then(|c| c.release_pcr8.clone());
        ClusterAdmit { image, config: config.canonical(), release_pcr8 }
    }
}

impl Admit for ClusterAdmit {
    fn admit(&self, peer: &PeerAttestation) -> Result<(), AdmitError> {
        // The configuration text is the document's user data; PCR16 proves it is the one
        // the peer booted with.
        let text = std::str::from_utf8(&peer.user_data)
            .map_err(|_| AdmitError::Policy("the peer's configuration is not UTF-8".into()))?;
        let mut h = Sha384::new();
        h.update([0u8; 48]);
        h.update(Sha384::digest(text.as_bytes()));
        let expected: [u8; 48] = h.finalize().into();
        match peer.pcr(CONFIG_PCR) {
            Some(v) if v == expected => {}
            actual => {
                return Err(AdmitError::PcrMismatch {
                    index: CONFIG_PCR,
                    expected: expected.to_vec(),
                    actual: actual.map(<[u8]>::to_vec),
                })
            }
        }
        if binding_lines(text) != binding_lines(&self.config) {
            return Err(AdmitError::Policy(format!(
                "the peer's configuration differs: {:?}, this node's: {:?}",
                binding_lines(text),
                binding_lines(&self.config)
            )));
        }
        let same = (0..3u16).all(|i| peer.pcr(i) == Some(self.image[i as usize].as_slice()));
        if same {
            return Ok(());
        }
        match &self.release_pcr8 {
            // All zeros is every unsigned image's PCR8, never a release signer (refused at
            // start too; a review of 2026-12-04).
            Some(signer) if signer.iter().all(|b| *b == 0) => {
                Err(AdmitError::Policy("the release signer is all zeros: an unsigned image signs nothing".into()))
            }
            Some(signer) if peer.pcr(SIGNER_PCR) == Some(signer.as_slice()) => Ok(()),
            Some(signer) => Err(AdmitError::PcrMismatch {
                index: SIGNER_PCR,
                expected: signer.clone(),
                actual: peer.pcr(SIGNER_PCR).map(<[u8]>::to_vec),
            }),
            None => Err(AdmitError::PcrMismatch {
                index: 0,
                expected: self.image[0].clone(),
                actual: peer.pcr(0).map(<[u8]>::to_vec),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::ClusterBoot;

    fn peer(pcr0: u8, pcr8: u8, config: &BootConfig) -> PeerAttestation {
        let mut h = Sha384::new();
        h.update([0u8; 48]);
        h.update(Sha384::digest(config.canonical().as_bytes()));
        let pcr16: [u8; 48] = h.finalize().into();
        let mut pcrs = std::collections::BTreeMap::new();
        pcrs.insert(0u16, vec![pcr0; 48]);
        pcrs.insert(1u16, vec![1; 48]);
        pcrs.insert(2u16, vec![2; 48]);
        pcrs.insert(SIGNER_PCR, vec![pcr8; 48]);
        pcrs.insert(CONFIG_PCR, pcr16.to_vec());
        PeerAttestation {
            static_key: [0; 32],
            pcrs,
            user_data: config.canonical().into_bytes(),
            module_id: "i-test".into(),
            timestamp_ms: 0,
            digest: "SHA384".into(),
            debug: false,
            document: Vec::new(),
        }
    }

    /// A review of 2026-12-04: `--release-pcr8` of all zeros admitted every unsigned image
    /// whose configuration matched (and let it lead, holding the cluster's identity key).
    #[test]
    fn an_all_zero_release_signer_admits_no_other_image() {
        for (signer, other_image_admitted) in [(0u8, false), (8u8, true)] {
            let mut boot = BootConfig::new(300, 1 << 20, true);
            boot.cluster =
                Some(ClusterBoot { id: "c".into(), memory_budget_mib: 64, release_pcr8: Some(vec![signer; 48]) });
            let admit = ClusterAdmit::new([vec![9; 48], vec![1; 48], vec![2; 48]], &boot);
            assert!(admit.admit(&peer(9, 0, &boot)).is_ok(), "this very image");
            assert_eq!(admit.admit(&peer(7, signer, &boot)).is_ok(), other_image_admitted, "signer {signer}");
        }
    }
}
