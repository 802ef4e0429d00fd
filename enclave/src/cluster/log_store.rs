//! The Raft log, its vote and commit point: in the enclave's memory, like everything else
//! (the host only carries bytes). A node that stops loses them, so a restarted enclave
//! joins as a new node (see [`super::types::NodeId`]).
//!
//! The log counts the bytes of its entries (their CBOR encoding), so that a node takes a
//! snapshot, and drops the entries it covers, once the entries since its last snapshot
//! hold too many bytes — not only after so many entries (`ClusterNode::snapshot_if_large`):
//! entries of any size would otherwise fill the enclave's memory first.

use super::types::{Cmd, Entry, LogId, NodeId, Op, Pcr8, StorageError, TypeConfig};
use alloy_primitives::Address;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogId, RaftLogReader, Vote};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    last_purged: Option<LogId>,
    /// Each entry with the length of its encoding.
    log: BTreeMap<u64, (Entry, usize)>,
    /// The lengths of all of them.
    bytes: usize,
    committed: Option<LogId>,
    vote: Option<Vote<NodeId>>,
}

/// The in-memory log. Cloning shares it (the reader openraft asks for is a clone).
#[derive(Debug, Clone, Default)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl LogStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Entries held (for the node's status).
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add entries, each with the length of its encoding (counted outside the lock).
    fn insert(&self, entries: impl IntoIterator<Item = Entry>) {
        let sized: Vec<(Entry, usize)> = entries
            .into_iter()
            .map(|e| {
                let n = bridle_common::frame::cbor_len(&e);
                (e, n)
            })
            .collect();
        let mut g = self.lock();
        for (e, n) in sized {
            if let Some((_, old)) = g.log.insert(e.get_log_id().index, (e, n)) {
                g.bytes -= old;
            }
            g.bytes += n;
        }
    }

    /// Bytes of all the entries held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Bytes of the entries after index `after` (all of them for `None`).
    pub fn bytes_after(&self, after: Option<u64>) -> usize {
        self.held_after(after).1
    }

    /// The checked policy updates among the entries after index `after`, in log order:
    /// (index, session, the release signers the new policy names). Only updates whose
    /// owner's signature the leader checked (`Op::UpdatePolicy`) count — one nobody signed
    /// would otherwise narrow what peers receive — and even these may still be refused when
    /// applied: only what they take away is counted ([`super::redact`]).
    pub fn policy_updates_after(&self, after: Option<u64>) -> Vec<(u64, Address, Vec<Pcr8>)> {
        let g = self.lock();
        let from = after.map_or(0, |i| i.saturating_add(1));
        let mut out = Vec::new();
        for (i, (e, _)) in g.log.range(from..) {
            if let openraft::EntryPayload::Normal(Cmd { op: Op::UpdatePolicy { call, .. }, .. }) = &e.payload {
                out.push((*i, call.session, call.policy.release_signers.clone()));
            }
        }
        out
    }

    /// The members of the last membership entry held before index `index`, if one is held.
    pub fn members_before(&self, index: u64) -> Option<Vec<super::types::Member>> {
        self.lock().log.range(..index).rev().find_map(|(_, (e, _))| match &e.payload {
            openraft::EntryPayload::Membership(m) => Some(m.nodes().map(|(_, n)| n.clone()).collect()),
            _ => None,
        })
    }

    /// Whether an entry held decides under rules other than `rules` ([`super::rules`]): a
    /// node running `rules` could not replay it.
    pub fn decides_under_other_rules(&self, rules: u32) -> bool {
        self.lock().log.values().any(|(e, _)| {
            matches!(&e.payload, openraft::EntryPayload::Normal(c) if super::rules::decides(&c.op) && !super::rules::alike(c.rules, rules))
        })
    }

    /// How many entries come after index `after` (all of them for `None`), and their bytes.
    pub fn held_after(&self, after: Option<u64>) -> (usize, usize) {
        let g = self.lock();
        let from = after.map_or(0, |i| i.saturating_add(1));
        g.log.range(from..).fold((0, 0), |(k, b), (_, (_, n))| (k + 1, b + n))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.lock().log.range(range).map(|(_, (e, _))| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.lock();
        let last = g.log.values().next_back().map(|(e, _)| *e.get_log_id()).or(g.last_purged);
        Ok(LogState { last_purged_log_id: g.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        self.insert(entries);
        // Memory is this log's durable storage: it is "flushed" once inserted.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.lock();
        let gone = g.log.split_off(&log_id.index);
        g.bytes -= gone.values().map(|(_, n)| n).sum::<usize>();
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.lock();
        if g.last_purged.is_none_or(|p| p < log_id) {
            g.last_purged = Some(log_id);
        }
        let keep = g.log.split_off(&(log_id.index + 1));
        let gone = std::mem::replace(&mut g.log, keep);
        g.bytes -= gone.values().map(|(_, n)| n).sum::<usize>();
        Ok(())
    }
}

/// Most entries a leader's log holds that are not yet applied (committed by a majority):
/// beyond, it proposes nothing more (`unavailable`) until a majority catches up. Entries
/// not yet committed cannot be covered by a snapshot, so without this a leader cut off from
/// its majority would grow its log with every call it accepts. Under load a few hundred
/// are in flight at most (64 calls on each of a few connections).
pub const MAX_PENDING_ENTRIES: usize = 4096;

/// Why a leader whose log holds `entries` entries of `bytes` bytes after the last one
/// applied may not propose another, if so: the bytes are bounded by half the snapshot
/// threshold.
pub fn pending_refusal(entries: usize, bytes: usize, snapshot_bytes: usize) -> Option<String> {
    let max_bytes = snapshot_bytes / 2;
    (entries >= MAX_PENDING_ENTRIES || bytes >= max_bytes).then(|| {
        format!(
            "this leader holds {entries} entries ({bytes} bytes) that no majority has committed yet (at most {MAX_PENDING_ENTRIES} entries and {max_bytes} bytes); ask again once the cluster has a majority"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use bridle_common::protocol::{AllowImage, OwnerAuth};
    use openraft::{CommittedLeaderId, EntryPayload};

    /// An entry with `keys` sessions named (about 23 bytes each).
    fn entry(index: u64, keys: usize) -> Entry {
        let call = AllowImage {
            auth: OwnerAuth { owner: Address::ZERO, nonce: 0, signature: Default::default() },
            session: Address::ZERO,
            image: B256::ZERO,
        };
        let op = Op::AllowImage { call: Box::new(call), keys: vec![(Address::ZERO, None); keys] };
        let cmd = Cmd { proposer: 1, clock: 0, rules: super::super::rules::RULES_VERSION, op };
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(cmd) }
    }

    #[test]
    fn a_leader_stops_proposing_at_either_bound() {
        assert_eq!(pending_refusal(0, 0, 64 << 20), None);
        assert_eq!(pending_refusal(MAX_PENDING_ENTRIES - 1, (32 << 20) - 1, 64 << 20), None);
        let why = pending_refusal(MAX_PENDING_ENTRIES, 10, 64 << 20).unwrap();
        assert!(why.contains("4096 entries (10 bytes)"), "{why}");
        assert!(pending_refusal(3, 32 << 20, 64 << 20).unwrap().contains("33554432 bytes"));
    }

    /// What the log holds counts its entries' bytes: appended, truncated, purged.
    #[tokio::test]
    async fn the_log_counts_the_bytes_it_holds() {
        let mut log = LogStore::default();
        let (small, big) = (entry(1, 1), entry(2, 5_000));
        let (ns, nb) = (bridle_common::frame::cbor_len(&small), bridle_common::frame::cbor_len(&big));
        assert!(nb > 100_000 && ns < 1_000, "{ns} {nb}");
        assert_eq!(nb, bridle_common::frame::to_cbor(&big).unwrap().len());
        log.insert([small, big, entry(3, 1)]);
        assert_eq!(log.bytes_after(None), 2 * ns + nb);
        assert_eq!(log.bytes(), 2 * ns + nb);
        assert_eq!(log.bytes_after(Some(1)), ns + nb);
        assert_eq!(log.bytes_after(Some(2)), ns);
        assert_eq!(log.held_after(Some(1)), (2, ns + nb));
        assert_eq!(log.held_after(Some(3)), (0, 0));
        log.truncate(LogId::new(CommittedLeaderId::new(1, 1), 3)).await.unwrap();
        assert_eq!((log.bytes_after(None), log.bytes()), (ns + nb, ns + nb));
        log.purge(LogId::new(CommittedLeaderId::new(1, 1), 2)).await.unwrap();
        assert_eq!((log.bytes_after(None), log.bytes(), log.len()), (0, 0, 0));
    }

    /// Entries of two leaders of the same term never share an id: a log id names its
    /// leader's node (openraft's default; its `single-term-leader` feature would name the
    /// term only, and a node's entries made alone would then match another cluster's).
    #[test]
    fn a_log_id_names_its_leader_not_only_the_term() {
        assert_ne!(CommittedLeaderId::new(1, 1), CommittedLeaderId::new(1, 2));
    }
}
