//! What the cluster's Raft log holds: the type configuration for openraft, the members, and
//! the commands every node applies in the same order.

use alloy_primitives::{Address, FixedBytes, B256};
use bridle_common::error::Denial;
use bridle_common::protocol::{AllowImage, Call, CreateSession, Reply, UpdatePolicy};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use zeroize::Zeroize;

/// A node's id: random, drawn at boot. A restarted enclave is a new node (its log and vote
/// were in memory, so it must never take the place of its former self).
pub type NodeId = u64;

/// A member as the cluster's membership records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where the node's host receives cluster traffic.
    pub peer_url: String,
    /// The node's channel key (its Noise static key, attested when the channel was made).
    pub static_key: [u8; 32],
    /// The node's image: keccak256(PCR0 ‖ PCR1 ‖ PCR2).
    pub image: B256,
    /// The node's release signer (its PCR8), `None` for an unsigned image (PCR8 all zeros).
    #[serde(default)]
    pub signer: Option<Pcr8>,
    /// The decision rules the node runs ([`super::rules`]), as it says itself when it joins
    /// (inside its attested channel); 0 for a node of an image from before rules versions.
    #[serde(default)]
    pub rules: u32,
}

impl Member {
    /// What decides which keys the node may hold.
    pub fn holder(&self) -> Holder {
        Holder { image: self.image, signer: self.signer }
    }
}

/// A PCR8 value: what an image's signing certificate measures to.
pub type Pcr8 = FixedBytes<48>;

/// What decides which session keys a node may hold (ATTESTATION.md, "Cluster and
/// upgrades"): its image, and the release signer that signed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holder {
    pub image: B256,
    pub signer: Option<Pcr8>,
}

impl Holder {
    /// A node's holder from its PCR0, PCR1, PCR2 and PCR8 (all zeros: unsigned).
    pub fn from_pcrs(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8], pcr8: Option<&[u8]>) -> Holder {
        let image = bridle_common::protocol::image_digest(pcr0, pcr1, pcr2);
        let signer = pcr8.filter(|p| p.len() == 48 && p.iter().any(|b| *b != 0)).map(Pcr8::from_slice);
        Holder { image, signer }
    }

    /// Whether this node may hold the key of a session whose custody lists `custody` and
    /// whose policy names `signers` as release signers.
    pub fn may_hold(&self, custody: &[B256], signers: &[Pcr8]) -> bool {
        custody.contains(&self.image) || self.signer.is_some_and(|s| signers.contains(&s))
    }
}

openraft::declare_raft_types!(
    /// The cluster's Raft types.
    pub TypeConfig:
        D = Cmd,
        R = CmdReply,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type StorageError = openraft::StorageError<NodeId>;

/// A secret scalar in a log entry: never printed, zeroized when dropped. It travels only
/// inside attested channels, and only to nodes whose image may hold it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(pub [u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// One command of the log, proposed by `proposer` at its clock reading `clock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cmd {
    pub proposer: NodeId,
    pub clock: u64,
    /// The decision rules of the proposer ([`super::rules`]); 0 from an image from before
    /// rules versions.
    #[serde(default)]
    pub rules: u32,
    pub op: Op,
}

/// What a command does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The cluster's first command: its identity key (the enclave identity every node
    /// shares: bindings, receipts and audit heads verify against it across failovers).
    Init { identity: Secret, booted_at: u64 },
    /// A session, with the key the proposer generated. `key` is `None` on the wire to a node
    /// that may not hold it: its image is not in `custody` and the creation's policy does
    /// not name its release signer (nor, for a session gone by then, anyone: see `redact`).
    CreateSession { call: Box<CreateSession>, address: Address, key: Option<Secret>, custody: Vec<B256> },
    /// Any other call that changes state (signing, owner calls, sweeps).
    Call(Box<Call>),
    /// The owner's `allow_image`, with the keys of the sessions it names (attached by the
    /// proposer, which holds them); `keys` are sent only to nodes of the allowed image.
    AllowImage { call: Box<AllowImage>, keys: Vec<(Address, Option<Secret>)> },
    /// An owner's policy update whose signature the proposer checked, with the session's
    /// key when the new policy names release signers and the proposer holds it; `key` is
    /// sent only to nodes of the signers the new policy names ([`super::redact`]). An update
    /// that failed the check is an [`Op::Call`] (refused when applied).
    UpdatePolicy { call: Box<UpdatePolicy>, key: Option<Secret> },
}

/// What applying a command returned (only the proposer's copy reaches a client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmdReply(pub Result<Reply, Denial>);

impl Default for CmdReply {
    fn default() -> Self {
        CmdReply(Err(Denial::new(bridle_common::error::ErrorCode::Internal, "no reply")))
    }
}

/// Most bytes of entries one append carries: openraft batches up to 64 entries, and a batch
/// of large ones (`allow_image` entries carry up to [`MAX_ALLOW_IMAGE_KEYS`] keys) could
/// pass what one channel message may hold (`MAX_MESSAGE`, 20 MiB) — then the same range
/// would be refused and retried for ever, and nothing would commit.
pub const APPEND_BYTES: usize = 12 << 20;
// A full batch of the largest ordinary entries goes whole, with room to spare in a message.
const _: () = assert!(
    64 * (bridle_common::cluster::MAX_CALL_FRAME + 4096) <= APPEND_BYTES
        && APPEND_BYTES + (1 << 20) < super::MAX_MESSAGE as usize
);

/// Most sessions one `allow_image` entry names (its keys: ≈ 88 bytes each, ≈ 4.2 MiB).
pub const MAX_ALLOW_IMAGE_KEYS: usize = 50_000;

/// How many of `entries`, from the first, one append carries: as many as fit in `budget`
/// bytes, and at least one. An entry's size is bounded without encoding it, except for an
/// `allow_image` entry: every other entry comes from a call of at most `MAX_CALL_FRAME`
/// bytes (or is the cluster's own: its first command, a membership).
pub fn entries_that_fit(entries: &[Entry], budget: usize) -> usize {
    let mut used = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let size = match &e.payload {
            openraft::EntryPayload::Normal(Cmd { op: Op::AllowImage { .. }, .. }) => bridle_common::frame::cbor_len(e),
            _ => bridle_common::cluster::MAX_CALL_FRAME + 4096,
        };
        used = used.saturating_add(size);
        if used > budget && i > 0 {
            return i;
        }
    }
    entries.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow_image_entry(index: u64, keys: usize) -> Entry {
        use bridle_common::protocol::OwnerAuth;
        let auth = OwnerAuth { owner: Address::ZERO, nonce: 0, signature: Default::default() };
        let call = AllowImage { auth, session: Address::ZERO, image: B256::ZERO };
        let keys = vec![(Address::repeat_byte(9), Some(Secret([0xff; 32]))); keys];
        let op = Op::AllowImage { call: Box::new(call), keys };
        let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index);
        Entry {
            log_id,
            payload: openraft::EntryPayload::Normal(Cmd {
                proposer: 1,
                clock: 0,
                rules: super::super::rules::RULES_VERSION,
                op,
            }),
        }
    }

    /// An append carries at most `APPEND_BYTES` of entries (at least one), each
    /// `allow_image` entry counted by its encoding and any other by the largest call.
    #[test]
    fn an_append_fits_in_a_message() {
        let blank = |index| Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: openraft::EntryPayload::Blank,
        };
        let small: Vec<Entry> = (1..=64).map(blank).collect();
        assert_eq!(entries_that_fit(&small, APPEND_BYTES), 64, "a batch of ordinary entries goes whole");
        let big = allow_image_entry(1, MAX_ALLOW_IMAGE_KEYS);
        let n = bridle_common::frame::cbor_len(&big);
        assert!(n < APPEND_BYTES && n > 50_000 * 64, "{n}");
        assert!(2 * n <= APPEND_BYTES && 3 * n > APPEND_BYTES, "{n}");
        let batch: Vec<Entry> = (1..=4).map(|i| allow_image_entry(i, MAX_ALLOW_IMAGE_KEYS)).collect();
        assert_eq!(entries_that_fit(&batch, APPEND_BYTES), 2);
        assert_eq!(entries_that_fit(&batch, 1), 1, "at least one");
    }
}
