//! Founding a cluster: the identity a founder proposes until it is applied.
//!
//! A founder makes the cluster's identity once and names the cluster after its address
//! (every Raft message carries it: [`super::super::network::Cluster`]). Its first entry
//! proposes that identity. Until a replica applied it, every start its host asks for —
//! with `--cluster-bootstrap` or not: a host may restart without it — proposes the same
//! identity again, never a fresh one (which would name another cluster), and answers
//! `unavailable` so that the host asks again. Nodes asking to join are refused until then.
//!
//! Found 2026-12-05 (SECURITY.md): a founder whose first entry was not committed within its
//! wait answered an error; asked again, it answered that it was initialized, and its host
//! stopped asking, so the cluster never got an identity and served nothing.

use super::*;
use alloy_primitives::Address;

/// How long one start waits for the identity to be applied: under the host's call timeout
/// (10 s by default), so the host hears the answer and asks again.
const FOUND_WAIT: Duration = if cfg!(test) { Duration::from_secs(1) } else { Duration::from_secs(8) };

/// The identity a founder keeps until it is applied (then only its address: the secret
/// lives in the replica's enclave), and the entry that proposes it.
#[derive(Clone)]
pub(super) struct Founding {
    pub address: Address,
    op: Option<Op>,
}

impl Founding {
    fn new(booted_at: u64) -> Founding {
        let identity = Key::generate();
        let op = Op::Init { identity: Secret(*identity.secret_bytes()), booted_at };
        Founding { address: identity.address(), op: Some(op) }
    }
}

impl ClusterNode {
    /// The identity this node founds its cluster with, if it was asked to found one.
    pub(super) fn founding(&self) -> Option<Founding> {
        self.founding.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The identity to found with: made at the first ask, the same one after. The caller
    /// holds `joining`'s lock (a node founds or joins, never both).
    pub(super) fn begin_founding(&self) -> Founding {
        let mut f = self.founding.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert_with(|| Founding::new(self.clock.now())).clone()
    }

    /// Found the cluster as `me` with `f`: initialize the log (once), then propose the
    /// identity until a replica applied it or [`FOUND_WAIT`] passed (then `unavailable`:
    /// ask again, and it is proposed again).
    pub(super) async fn found(&self, me: Member, f: Founding) -> Result<(), Denial> {
        if self.cluster.settle(f.address) != f.address {
            // Not reachable: the cluster is settled only here, with the kept identity, or by
            // a join, which a founder never starts.
            return Err(unavailable("this node belongs to another cluster than the one it founds"));
        }
        if !self.raft.is_initialized().await.map_err(|e| unavailable(e.to_string()))? {
            let members = BTreeMap::from([(self.id, me)]);
            if let Err(e) = self.raft.initialize(members).await {
                // Another start of this node may have initialized it meanwhile: go on then.
                if !self.raft.is_initialized().await.unwrap_or(false) {
                    return Err(unavailable(format!("cannot found the cluster: {e}")));
                }
            }
        }
        let deadline = Instant::now() + FOUND_WAIT;
        loop {
            if self.replica.enclave().is_some() {
                if let Some(kept) = self.founding.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    if kept.op.take().is_some() {
                        tracing::info!(node = self.id, cluster = %f.address, "cluster founded");
                    }
                }
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unavailable(
                    "the cluster's identity is not applied yet: ask again (the same identity is proposed again)",
                ));
            }
            // A second copy committed later is harmless: a replica applies the first
            // identity and ignores the rest, which are the same one.
            if let (true, false, Some(op)) = (self.is_leader(), self.founding_stalled(), &f.op) {
                let _ = tokio::time::timeout(left, self.propose(op.clone())).await;
            }
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
        }
    }

    #[cfg(not(test))]
    fn founding_stalled(&self) -> bool {
        false
    }

    /// Tests stall the identity's proposal (a founder that cannot commit).
    #[cfg(test)]
    fn founding_stalled(&self) -> bool {
        self.stall_founding.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::{commit_config, BootConfig, ClusterBoot};
    use crate::clock::SystemClock;
    use crate::Config;
    use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, TrustedRoot, PCR_LEN};
    use std::sync::atomic::Ordering;

    async fn node() -> Arc<ClusterNode> {
        let ca = MockCa::generate().unwrap();
        let image = ImageMeasurement::new([1; PCR_LEN], [2; PCR_LEN], [3; PCR_LEN]);
        let nsm = Arc::new(MockNsm::with_ca(&ca, image).unwrap());
        let mut boot = BootConfig::new(300, 1 << 20, true);
        boot.cluster = Some(ClusterBoot { id: "found".into(), memory_budget_mib: 64, release_pcr8: None });
        commit_config(nsm.as_ref(), &boot).unwrap();
        super::super::super::launch(super::super::super::NodeConfig {
            nsm,
            boot,
            root: TrustedRoot::Der(ca.root_der().to_vec()),
            config: Config::default(),
            clock: Box::new(SystemClock),
            snapshot_logs: 1000,
            snapshot_bytes: super::super::super::DEFAULT_SNAPSHOT_BYTES,
            rules: super::super::super::rules::RULES_VERSION,
        })
        .await
        .unwrap()
    }

    fn start(bootstrap: bool) -> ClusterStart {
        ClusterStart { advertise: "http://node-a:8550".into(), seeds: vec![], bootstrap }
    }

    /// A founder whose identity was not applied within its wait answers `unavailable`; asked
    /// again — by a host that restarted without `--cluster-bootstrap` too — it proposes the
    /// same identity, which names its cluster, and serves. Before 2026-12-05 the second ask
    /// answered that the node was initialized and the identity was never proposed again.
    #[tokio::test]
    async fn a_founder_whose_identity_was_not_applied_proposes_it_when_asked_again() {
        let n = node().await;
        n.stall_founding.store(true, Ordering::SeqCst);
        let unavailable = |e: Denial| {
            assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
            assert!(e.reason.contains("ask again"), "{e:?}");
        };
        unavailable(n.start(start(true)).await.unwrap_err());
        let info = n.info();
        assert!(!info.ready && info.role != "joining", "initialized, no identity: {info:?}");
        let named = n.cluster.get().expect("the cluster is named after the kept identity");
        assert_eq!(named, n.founding().unwrap().address);
        // Asked again while still stalled, with `--cluster-bootstrap` or without: the same
        // identity, still not applied, and no answer that it is done.
        unavailable(n.start(start(true)).await.unwrap_err());
        unavailable(n.start(start(false)).await.unwrap_err());
        assert_eq!(n.founding().unwrap().address, named);
        n.stall_founding.store(false, Ordering::SeqCst);
        n.start(start(false)).await.expect("founded once the identity can be committed");
        assert!(n.info().ready);
        assert!(n.founding().unwrap().op.is_none(), "the identity's secret is kept by the replica only");
        let applied = n.replica.enclave().expect("the cluster's enclave").identity_address();
        assert_eq!(applied, named);
        assert_eq!(n.cluster.get(), Some(named));
        // Founded, it joins no other cluster: a start without `--cluster-bootstrap` only
        // records its host's peers, for a join again of its own cluster; asked to found
        // again, nothing changes.
        let seeds = ClusterStart { seeds: vec!["http://node-b:8550".into()], ..start(false) };
        n.start(seeds).await.expect("a ready node takes its host's peers");
        assert_eq!(*n.known_seeds.lock().unwrap(), vec!["http://node-b:8550".to_string()]);
        assert!(n.joining.lock().unwrap().is_none(), "no join begun");
        assert_eq!(n.cluster.get(), Some(named));
        n.start(start(true)).await.expect("founded already");
        assert_eq!(n.replica.enclave().unwrap().identity_address(), named);
    }
}
