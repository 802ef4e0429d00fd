//! The enclave cluster (README, "High availability"): N enclaves on N instances replicate
//! the enclave's whole state — session keys included — with Raft (openraft), through their
//! hosts, inside channels bound to each node's attestation. Sessions survive a node's
//! death; caps stay exact across any failure (every charge is committed by a majority
//! before its signature is released; asking again with the same stamp collects it).
//!
//! * [`types`] — the log's commands and the members;
//! * [`replica`] — the state machine: the enclave itself, snapshots;
//! * [`log_store`] — the log, in memory;
//! * [`peers`], [`network`] — attested channels through the hosts, openraft's network;
//! * [`admit`] — who may be a node;
//! * [`election`] — when a voter stands for election;
//! * [`upkeep`] — the leader's membership changes;
//! * [`node`] — serving calls: the leader proposes, every node applies.

pub mod admit;
pub mod election;
pub mod keyed;
pub mod log_store;
pub mod network;
pub mod node;
pub mod peers;
pub mod proposing;
pub mod redact;
pub mod replica;
pub mod rules;
pub mod snapshot_in;
pub mod types;
pub mod upkeep;

use crate::attest::{BootConfig, NsmAttestor};
use crate::clock::{Clock, ReplicaClock};
use crate::Config;
use admit::ClusterAdmit;
use bridle_attestation::{NsmProvider, TrustedRoot};
use bridle_channel::NodeIdentity;
pub use node::ClusterNode;
use peers::Peers;
use replica::{Replica, SharedAttestor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest message between two nodes (a batch of log entries, a snapshot chunk).
pub const MAX_MESSAGE: u64 = 20 << 20;

/// openraft's maximum election timeout, which is also its leader lease (a voter refuses
/// to vote while it heard from a leader this recently).
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 1000;

/// What a node is made of.
pub struct NodeConfig {
    pub nsm: Arc<dyn NsmProvider>,
    /// The node's configuration (committed to PCR16), with its cluster part.
    pub boot: BootConfig,
    /// The root peers' documents must chain to.
    pub root: TrustedRoot,
    pub config: Config,
    pub clock: Box<dyn Clock>,
    /// A snapshot every this many log entries (then older entries are dropped).
    pub snapshot_logs: u64,
    /// A snapshot, too, once the entries since the last one hold more than this many bytes.
    pub snapshot_bytes: usize,
    /// The decision rules the node runs: [`rules::RULES_VERSION`] (a development node may
    /// play another release's, `--dev-rules-version`).
    pub rules: u32,
}

/// The default of [`NodeConfig::snapshot_bytes`]: 64 MiB. The log then holds, once its
/// entries are applied, at most this many bytes of entries after the last snapshot plus up
/// to 1 000 before it (`max_in_snapshot_log_to_keep`), each at most a call's frame
/// (`MAX_CALL_FRAME`, 128 KiB) or an `allow_image` entry (`types::MAX_ALLOW_IMAGE_KEYS`).
/// Entries not yet committed cannot be covered by a snapshot: while no majority commits, a
/// leader proposes nothing once its log holds half this many bytes, or
/// [`log_store::MAX_PENDING_ENTRIES`] entries, after the last one applied.
pub const DEFAULT_SNAPSHOT_BYTES: usize = 64 << 20;

/// Take a snapshot (which drops the entries it covers) once the entries since the last
/// one hold more than `limit` bytes. Asking while one is being built changes nothing.
async fn snapshot_if_large(raft: &types::Raft, log: &log_store::LogStore, limit: usize) {
    // The whole log's bytes first (kept as it changes); the entries since the snapshot are
    // summed only when that is over the limit.
    if log.bytes() <= limit {
        return;
    }
    let since = raft.metrics().borrow().snapshot.map(|s| s.index);
    if log.bytes_after(since) > limit {
        tracing::info!(limit, "the log's entries since the last snapshot passed their byte limit: snapshot");
        let _ = raft.trigger().snapshot().await;
    }
}

/// Start a node: its channel identity, its Raft instance, its state machine. It serves
/// nothing until its host starts it ([`bridle_common::cluster::ClusterCall::Start`]).
pub async fn launch(cfg: NodeConfig) -> Result<Arc<ClusterNode>, String> {
    let NodeConfig { nsm, boot, root, config, clock, snapshot_logs, snapshot_bytes, rules } = cfg;
    let snapshot_logs = snapshot_logs.max(16);
    let snapshot_bytes = snapshot_bytes.max(1 << 20);
    let Some(cluster) = boot.cluster.clone() else { return Err("not a cluster configuration".into()) };
    let pcr = |i: u16| nsm.describe_pcr(i).map(|d| d.data).map_err(|e| format!("PCR{i}: {e}"));
    let image_pcrs = [pcr(0)?, pcr(1)?, pcr(2)?];
    // PCR8 unreadable or all zeros: an unsigned image (no release signer's keys).
    let pcr8 = pcr(8).ok();
    let holder = types::Holder::from_pcrs(&image_pcrs[0], &image_pcrs[1], &image_pcrs[2], pcr8.as_deref());
    let image = holder.image;
    let mut id_bytes = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id_bytes);
    let id = u64::from_le_bytes(id_bytes) >> 1 | 1;

    let clock = Arc::new(ReplicaClock::new(clock));
    // Peers' documents are dated against this node's clock (corrected by its NSM's), not
    // the system clock.
    let now_ms = {
        let clock = clock.clone();
        Arc::new(move || clock.now_ms())
    };
    let identity = NodeIdentity::generate(nsm.clone(), boot.canonical(), root)
        .and_then(|i| i.with_max_message_len(MAX_MESSAGE))
        .map_err(|e| format!("channel identity: {e}"))?
        .with_clock(now_ms);
    let admit = ClusterAdmit::new(image_pcrs, &boot);
    let peers = Arc::new(Peers::new(identity, cluster.id.as_bytes().to_vec(), admit));
    let attestor = SharedAttestor(Arc::new(NsmAttestor::new(nsm.clone())));
    let belongs = network::Cluster::default();
    let replica = Arc::new(
        Replica::new(id, holder, clock.clone(), Some(attestor), config).belonging_to(belongs.clone()).with_rules(rules),
    );
    let raft_config = openraft::Config {
        cluster_name: cluster.id.clone(),
        // Each message crosses two hosts (four hops through sockets and a host-to-host
        // stream): openraft bounds every append by the heartbeat interval, so it leaves room
        // for that. A follower starts an election once it heard nothing for the leader lease
        // (openraft 0.9: = election_timeout_max) plus an election timeout, checked every
        // 1.5 heartbeats: 1.6–2.45 s after the leader's last message; the node's own
        // failure detector stands earlier, 1.1–1.5 s (`ClusterNode::watch_leader`), with a
        // fresh random wait each time (openraft draws one per node). Safety does not
        // depend on these: a leader releases a signature only after a majority holds its
        // entry, and a deposed leader can commit nothing (BENCHMARKS.md, "Failover").
        heartbeat_interval: 300,
        election_timeout_min: 600,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        // Entries per append: under load, all the proposals made during one round trip go
        // in one message (64 entries of at most a call's 128 KiB; larger batches, of
        // allow_image entries, go in parts: `types::APPEND_BYTES`).
        max_payload_entries: 64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(snapshot_logs),
        max_in_snapshot_log_to_keep: (snapshot_logs / 2).min(1_000),
        snapshot_max_chunk_size: 4 << 20,
        install_snapshot_timeout: 5_000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| format!("raft configuration: {e}"))?;
    let log = log_store::LogStore::default();
    let network = network::Network {
        peers: peers.clone(),
        holder,
        replica: replica.clone(),
        log: log.clone(),
        last_ok: Arc::new(Mutex::new(HashMap::new())),
        election: Arc::new(Mutex::new(election::Election::new(std::time::Instant::now(), election::jitter()))),
        cluster: belongs,
    };
    let raft = types::Raft::new(id, Arc::new(raft_config), network.clone(), log.clone(), replica.clone())
        .await
        .map_err(|e| format!("raft: {e}"))?;
    let node = Arc::new(ClusterNode::assemble(id, raft, replica, clock, &network, (log.clone(), snapshot_bytes)));
    peers.set_handler(node.clone());
    let weak = Arc::downgrade(&node);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Some(n) = weak.upgrade() else { return };
            n.tend().await;
        }
    });
    // A task of its own: membership upkeep (`tend`) may wait on a change.
    let weak = Arc::downgrade(&node);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Some(n) = weak.upgrade() else { return };
            snapshot_if_large(&n.raft, &log, snapshot_bytes).await;
        }
    });
    let weak = Arc::downgrade(&node);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(n) = weak.upgrade() else { return };
            n.watch_leader().await;
        }
    });
    tracing::info!(node = id, image = %image, cluster = %cluster.id, rules, "cluster node started");
    Ok(node)
}
