//! Attestation wiring: the [`Attestor`] over a Nitro Secure Module, and the boot step that
//! commits the enclave's configuration into PCR16 and locks it (ATTESTATION.md, "PCR16").
//!
//! The commitment is `C = SHA384(canonical)` where `canonical` is [`BootConfig::canonical`]:
//!
//! ```text
//! bridle-enclave/config/v1
//! crate_version=0.1.0
//! protocol_version=1
//! stamp_window=60
//! max_frame=1048576
//! dev=false
//! ```
//!
//! (lines separated by `\n`, with a final `\n`). At boot, before serving anything, the enclave
//! checks that PCR16 is fresh (all zeros, unlocked), extends it with `C` and locks it, so that
//! `PCR16 = SHA384(0^48 ‖ C)` for the rest of the enclave's life. A verifier computes the same
//! value from the configuration it expects ([`BootConfig::expected_pcr16`], or
//! `bridle-enclave --print-pcr16 [options]`) and passes it as `--pcr 16=<hex>`.

use crate::service::Attestor;
use bridle_attestation::{NsmProvider, PCR_LEN};
use sha2::{Digest, Sha384};

/// The PCR the enclave extends with its configuration commitment, then locks.
pub const CONFIG_PCR: u16 = 16;

/// The first line of the canonical configuration string (its format version).
pub const CONFIG_DOMAIN: &str = "bridle-enclave/config/v1";

/// The run-time configuration the enclave commits to in PCR16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// `bridle-enclave` crate version.
    pub crate_version: String,
    /// Wire protocol version (`bridle_common::protocol::PROTOCOL_VERSION`).
    pub protocol_version: u16,
    /// Agent stamp window, seconds (`--stamp-window`).
    pub stamp_window: u64,
    /// Largest accepted frame, bytes (`--max-frame`).
    pub max_frame: usize,
    /// Development mode (`--dev`: mock NSM, movable clock).
    pub dev: bool,
    /// Cluster mode (`--cluster`): what every node of the cluster must share.
    pub cluster: Option<ClusterBoot>,
}

/// The part of a cluster node's configuration its peers check (README, "High
/// availability"): the canonical text gains the lines
///
/// ```text
/// cluster=<id>
/// memory_budget_mib=<n>
/// release_pcr8=<hex or none>
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBoot {
    /// The cluster's name (`--cluster`): nodes of different clusters never talk.
    pub id: String,
    /// The memory budget (decisions depend on it, so every node has the same).
    pub memory_budget_mib: usize,
    /// PCR8 of the release signer whose images may join (`--release-pcr8`); `None`: only
    /// this very image.
    pub release_pcr8: Option<Vec<u8>>,
}

impl BootConfig {
    /// The configuration of this build with the given run-time options.
    pub fn new(stamp_window: u64, max_frame: usize, dev: bool) -> BootConfig {
        BootConfig {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            protocol_version: bridle_common::protocol::PROTOCOL_VERSION,
            stamp_window,
            max_frame,
            dev,
            cluster: None,
        }
    }

    /// The same configuration, as a node of a cluster.
    pub fn with_cluster(mut self, cluster: ClusterBoot) -> BootConfig {
        self.cluster = Some(cluster);
        self
    }

    /// The canonical text that is hashed: one `key=value` per line, fixed order, `\n` endings.
    pub fn canonical(&self) -> String {
        let mut s = format!(
            "{CONFIG_DOMAIN}\ncrate_version={}\nprotocol_version={}\nstamp_window={}\nmax_frame={}\ndev={}\n",
            self.crate_version, self.protocol_version, self.stamp_window, self.max_frame, self.dev
        );
        if let Some(c) = &self.cluster {
            let pcr8 = c.release_pcr8.as_ref().map_or_else(|| "none".to_string(), hex::encode);
            s.push_str(&format!("cluster={}\nmemory_budget_mib={}\nrelease_pcr8={pcr8}\n", c.id, c.memory_budget_mib));
        }
        s
    }

    /// `C = SHA384(canonical)`: what PCR16 is extended with.
    pub fn commitment(&self) -> [u8; PCR_LEN] {
        Sha384::digest(self.canonical().as_bytes()).into()
    }

    /// The value PCR16 holds after the boot step: `SHA384(0^48 ‖ C)`.
    pub fn expected_pcr16(&self) -> [u8; PCR_LEN] {
        let mut h = Sha384::new();
        h.update([0u8; PCR_LEN]);
        h.update(self.commitment());
        h.finalize().into()
    }
}

/// Why the boot step failed. The enclave refuses to start on any of them.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("PCR{CONFIG_PCR} cannot be read: {0}")]
    Describe(bridle_attestation::NsmError),
    #[error("PCR{CONFIG_PCR} is already locked: the configuration cannot be committed")]
    AlreadyLocked,
    #[error("PCR{CONFIG_PCR} is not fresh (value {0}): something extended it before the enclave")]
    NotFresh(String),
    #[error("PCR{CONFIG_PCR} cannot be extended: {0}")]
    Extend(bridle_attestation::NsmError),
    #[error("PCR{CONFIG_PCR} cannot be locked: {0}")]
    Lock(bridle_attestation::NsmError),
    #[error("PCR{CONFIG_PCR} is {actual} after extend and lock (locked: {locked}), expected {expected}")]
    Unexpected { expected: String, actual: String, locked: bool },
}

/// Commit `config` into PCR16 and lock it. Returns the final PCR16 value.
///
/// Refuses (and the enclave must not start) when PCR16 is not fresh, cannot be extended or
/// locked, or does not read back as [`BootConfig::expected_pcr16`], locked.
pub fn commit_config<N: NsmProvider + ?Sized>(nsm: &N, config: &BootConfig) -> Result<[u8; PCR_LEN], BootError> {
    let before = nsm.describe_pcr(CONFIG_PCR).map_err(BootError::Describe)?;
    if before.locked {
        return Err(BootError::AlreadyLocked);
    }
    if before.data.iter().any(|b| *b != 0) {
        return Err(BootError::NotFresh(hex::encode(&before.data)));
    }
    nsm.extend_pcr(CONFIG_PCR, &config.commitment()).map_err(BootError::Extend)?;
    nsm.lock_pcr(CONFIG_PCR).map_err(BootError::Lock)?;
    let after = nsm.describe_pcr(CONFIG_PCR).map_err(BootError::Describe)?;
    let expected = config.expected_pcr16();
    if !after.locked || after.data != expected {
        return Err(BootError::Unexpected {
            expected: hex::encode(expected),
            actual: hex::encode(&after.data),
            locked: after.locked,
        });
    }
    Ok(expected)
}

/// An [`Attestor`] over any NSM provider (the hardware [`bridle_attestation::RealNsm`], or
/// [`bridle_attestation::MockNsm`] in development).
pub struct NsmAttestor<N> {
    nsm: N,
}

impl<N: NsmProvider> NsmAttestor<N> {
    pub fn new(nsm: N) -> Self {
        NsmAttestor { nsm }
    }

    pub fn nsm(&self) -> &N {
        &self.nsm
    }
}

impl<N: NsmProvider> Attestor for NsmAttestor<N> {
    fn attest(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        self.nsm.attestation(user_data, nonce, public_key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_attestation::{verify, MockNsm, VerifyOptions};
    use std::sync::Arc;

    #[test]
    fn canonical_form_is_stable() {
        let c = BootConfig {
            crate_version: "0.1.0".into(),
            protocol_version: 1,
            stamp_window: 60,
            max_frame: 1 << 20,
            dev: false,
            cluster: None,
        };
        assert_eq!(
            c.canonical(),
            "bridle-enclave/config/v1\ncrate_version=0.1.0\nprotocol_version=1\nstamp_window=60\nmax_frame=1048576\ndev=false\n"
        );
        let mut d = c.clone();
        d.stamp_window = 61;
        assert_ne!(c.expected_pcr16(), d.expected_pcr16());
        let mut d = c.clone();
        d.dev = true;
        assert_ne!(c.expected_pcr16(), d.expected_pcr16());
    }

    #[test]
    fn boot_commits_and_locks_pcr16() {
        let nsm = Arc::new(MockNsm::new().unwrap());
        let cfg = BootConfig::new(60, 1 << 20, true);
        let pcr16 = commit_config(&nsm, &cfg).unwrap();
        let d = nsm.describe_pcr(CONFIG_PCR).unwrap();
        assert!(d.locked);
        assert_eq!(d.data, pcr16.to_vec());
        // Locked: no later extension, and a second boot step is refused.
        assert!(nsm.extend_pcr(CONFIG_PCR, b"x").is_err());
        assert!(matches!(commit_config(&nsm, &cfg), Err(BootError::AlreadyLocked)));

        // The attestor's documents carry it, and verify with the mock root.
        let att = NsmAttestor::new(Arc::clone(&nsm));
        let doc = att.attest(Some(vec![7; 32]), Some(b"nonce".to_vec()), Some(vec![2; 33])).unwrap();
        let v = verify(
            &doc,
            &VerifyOptions::now(60)
                .with_root_der(nsm.root_der().to_vec())
                .with_pcr(0, nsm.image().pcr0.to_vec())
                .with_pcr(CONFIG_PCR, pcr16.to_vec())
                .with_nonce(b"nonce".to_vec())
                .with_user_data(vec![7; 32])
                .with_public_key(vec![2; 33]),
        )
        .unwrap();
        assert_eq!(v.pcrs[&CONFIG_PCR], pcr16.to_vec());
    }

    #[test]
    fn boot_refuses_a_pcr16_that_is_not_fresh() {
        let nsm = MockNsm::new().unwrap();
        nsm.extend_pcr(CONFIG_PCR, b"earlier").unwrap();
        let err = commit_config(&nsm, &BootConfig::new(60, 1 << 20, true)).unwrap_err();
        assert!(matches!(err, BootError::NotFresh(_)), "{err}");
        let nsm = MockNsm::new().unwrap();
        nsm.lock_pcr(CONFIG_PCR).unwrap();
        assert!(matches!(commit_config(&nsm, &BootConfig::new(60, 1, true)), Err(BootError::AlreadyLocked)));
    }
}
