//! openraft's network over the attested channels ([`super::peers`]), and the messages nodes
//! exchange. Whatever a node sends a peer of another image or release signer has the keys
//! that peer may not hold taken out first (log entries and snapshots alike).

use super::election::Election;
use super::log_store::LogStore;
use super::peers::{NetError, Peers};
use super::redact::{named_after, redact_entries, Current, KeyView};
use super::replica::Replica;
use super::replica::{decode_snapshot, encode_snapshot};
use super::types::{entries_that_fit, Holder, Member, NodeId, Pcr8, TypeConfig, APPEND_BYTES};
use alloy_primitives::Address;
use bridle_common::frame::{from_cbor_attested, to_cbor};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::snapshot_transport::{Chunked, SnapshotTransport};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, SnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Snapshot, Vote};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node asking to join (sent to any member; members that do not lead say who does).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub node_id: NodeId,
    pub member: Member,
    /// The cluster the node already belongs to, if a leader accepted it before: another
    /// cluster's leader refuses it before adding it (it would take none of its messages).
    pub cluster: Option<Address>,
}

/// The answer to a join.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum JoinReply {
    /// Added (as a learner first; promoted once caught up) to this cluster.
    Accepted {
        cluster: Address,
    },
    /// Ask the leader.
    NotLeader {
        leader_url: Option<String>,
    },
    Refused(String),
}

/// A request in a channel. Every Raft message names the cluster it belongs to (the
/// address of the identity its founder made, [`Cluster`]): a node takes Raft messages of
/// its own cluster only. Log ids do not tell two clusters apart: openraft takes any entry
/// at or below a node's commit point as matching, so a node fed a second cluster's log
/// would apply it on top of the first's (found 2026-12-05 by a review).
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    Append(Address, AppendEntriesRequest<TypeConfig>),
    Vote(Address, VoteRequest<NodeId>),
    Snapshot(Address, InstallSnapshotRequest<TypeConfig>),
    Join(JoinRequest),
}

/// The cluster a node belongs to, once it does: the address of the identity its founder
/// made. A founder sets it when it founds; a joining node, from the first leader that
/// accepts it — never again (shared by the node and its network).
#[derive(Debug, Clone, Default)]
pub struct Cluster(Arc<Mutex<Option<Address>>>);

impl Cluster {
    pub fn get(&self) -> Option<Address> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Belong to `cluster`, unless this node already belongs to one: the one it belongs to.
    pub fn settle(&self, cluster: Address) -> Address {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(cluster)
    }

    /// Whether a message naming `cluster` is of this node's cluster.
    pub fn is(&self, cluster: &Address) -> bool {
        self.get().as_ref() == Some(cluster)
    }

    /// Whether this node takes `rpc`: a Raft message of its own cluster, or a join (which
    /// names no cluster of the receiver's). The refusal says why.
    pub fn admits(&self, rpc: &Rpc) -> Result<(), String> {
        let named = match rpc {
            Rpc::Append(c, _) | Rpc::Vote(c, _) | Rpc::Snapshot(c, _) => c,
            Rpc::Join(_) => return Ok(()),
        };
        if self.is(named) {
            return Ok(());
        }
        let mine = self.get().map(|a| a.to_string()).unwrap_or_else(|| "none yet".into());
        Err(format!("a message of cluster {named}; this node's is {mine}"))
    }
}

/// Its reply.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcReply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Join(JoinReply),
    Refused(String),
}

/// Send `rpc` to `url` (channel key `expected`) and decode the reply.
pub async fn call(
    peers: &Peers,
    url: &str,
    expected: Option<[u8; 32]>,
    rpc: &Rpc,
    timeout: Duration,
) -> Result<RpcReply, NetError> {
    let bytes = to_cbor(rpc).map_err(|e| NetError::Refused(url.into(), e.to_string()))?;
    let (reply, _) = peers.request(url, expected, &bytes, timeout).await?;
    from_cbor_attested(&reply).map_err(|e| NetError::Refused(url.into(), format!("undecodable reply: {e}")))
}

/// The factory openraft asks for a connection to each peer.
#[derive(Clone)]
pub struct Network {
    pub peers: Arc<Peers>,
    /// This node's image and release signer: what it sends a peer of another is redacted.
    pub holder: Holder,
    /// When each peer last answered.
    pub last_ok: Arc<Mutex<HashMap<NodeId, Instant>>>,
    /// The node's failure detector, told when a voter refuses its candidacy for a longer log.
    pub election: Arc<Mutex<Election>>,
    /// The node's state machine and log: what it knows decides which keys a peer receives.
    pub replica: Arc<Replica>,
    pub log: LogStore,
    /// The cluster this node belongs to, named in every Raft message it sends.
    pub cluster: Cluster,
}

/// A connection to one peer.
pub struct Conn {
    peers: Arc<Peers>,
    target: NodeId,
    member: Member,
    me: Holder,
    replica: Arc<Replica>,
    log: LogStore,
    last_ok: Arc<Mutex<HashMap<NodeId, Instant>>>,
    election: Arc<Mutex<Election>>,
    cluster: Cluster,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Conn {
        Conn {
            peers: self.peers.clone(),
            target,
            member: node.clone(),
            me: self.holder,
            replica: self.replica.clone(),
            log: self.log.clone(),
            last_ok: self.last_ok.clone(),
            election: self.election.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

fn unreachable<E: std::error::Error + 'static>(e: &E) -> Unreachable {
    Unreachable::new(e)
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

/// What this node knows now, as [`redact`](super::redact) asks: its applied state, and the
/// policy updates in its log after it.
struct Known {
    enclave: Option<Arc<crate::Enclave>>,
    applied: Option<u64>,
    /// (index, session, release signers named) of each later policy update.
    later: Vec<(u64, Address, Vec<Pcr8>)>,
}

impl KeyView for Known {
    fn current(&self, session: &Address, index: u64) -> Current {
        let base = if self.applied.is_some_and(|a| index <= a) {
            // Applied here: the session as it stands (no longer held: it ended).
            match self.enclave.as_ref().and_then(|e| e.key_view(session)) {
                Some(now) => now,
                None => return Current::Gone,
            }
        } else {
            Current::NotYetApplied
        };
        // Every later update narrows what is named (it may be refused when applied: it
        // never adds).
        match (named_after(&self.later, session, index), base) {
            (None, base) => base,
            (Some(named), Current::NotYetApplied) => Current::Live(named),
            (Some(named), Current::Live(list)) => {
                Current::Live(list.into_iter().filter(|p| named.contains(p)).collect())
            }
            (Some(_), Current::Gone) => Current::Gone,
        }
    }
}

impl Conn {
    /// What this node knows now ([`Known`]).
    fn known(&self) -> Known {
        let applied = self.replica.last_applied().map(|l| l.index);
        Known { enclave: self.replica.enclave(), applied, later: self.log.policy_updates_after(applied) }
    }

    /// The cluster to name in a Raft message: none before this node belongs to one (it
    /// sends none then).
    fn cluster(&self) -> Result<Address, NetError> {
        self.cluster.get().ok_or_else(|| {
            NetError::Refused(self.member.peer_url.clone(), "this node belongs to no cluster yet".into())
        })
    }

    async fn send(&self, rpc: &Rpc, ttl: Duration) -> Result<RpcReply, NetError> {
        let r = call(&self.peers, &self.member.peer_url, Some(self.member.static_key), rpc, ttl).await;
        // An answer of this cluster's Raft, not a refusal (a node settled in another cluster
        // answers every message with one): a learner that only refuses is silent, and
        // forgotten (a review of 2026-12-06).
        // A node whose Raft stopped (a storage error: an entry it could not apply,
        // `super::rules`) answers every message with its fatal error: silent too, and
        // dropped like a dead node (a review of 2026-12-07).
        let stopped = |r: &RpcReply| {
            matches!(
                r,
                RpcReply::Append(Err(RaftError::Fatal(_)))
                    | RpcReply::Vote(Err(RaftError::Fatal(_)))
                    | RpcReply::Snapshot(Err(RaftError::Fatal(_)))
            )
        };
        if r.as_ref().is_ok_and(|r| !matches!(r, RpcReply::Refused(_)) && !stopped(r)) {
            self.last_ok.lock().unwrap_or_else(|e| e.into_inner()).insert(self.target, Instant::now());
        }
        r
    }

    fn net<E: std::error::Error>(e: NetError) -> RPCError<NodeId, Member, E> {
        match e {
            NetError::Unreachable(..) | NetError::OtherNode { .. } => RPCError::Unreachable(unreachable(&e)),
            NetError::Refused(..) => RPCError::Network(NetworkError::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>(r: RpcReply) -> RPCError<NodeId, Member, E> {
        RPCError::Network(NetworkError::new(&Msg(format!("unexpected reply {r:?}"))))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        // A peer of this node's own image and signer receives all but keys of sessions gone
        // (see `redact`).
        if rpc.entries.iter().any(|e| matches!(&e.payload, openraft::EntryPayload::Normal(c) if c.op.carries_keys())) {
            let same = self.member.holder() == self.me;
            redact_entries(&mut rpc.entries, &self.member.holder(), same, &self.known());
        }
        // A batch too large for one message goes in parts (openraft sends the rest next).
        let fit = entries_that_fit(&rpc.entries, APPEND_BYTES);
        let partial = (fit < rpc.entries.len()).then(|| {
            rpc.entries.truncate(fit);
            rpc.entries.last().map(|e| e.log_id)
        });
        let cluster = self.cluster().map_err(Self::net)?;
        match self.send(&Rpc::Append(cluster, rpc), option.hard_ttl()).await.map_err(Self::net)? {
            RpcReply::Append(Ok(AppendEntriesResponse::Success)) if partial.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(partial.flatten()))
            }
            RpcReply::Append(Ok(r)) => Ok(r),
            RpcReply::Append(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            // A node that refuses the entries (one of other decision rules that could not
            // apply them: `super::rules`) is asked again after openraft's back-off, not at once.
            RpcReply::Refused(why) => Err(RPCError::Unreachable(Unreachable::new(&Msg(why)))),
            r => Err(Self::unexpected(r)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        let cluster = self.cluster().map_err(Self::net)?;
        match self.send(&Rpc::Snapshot(cluster, rpc), option.hard_ttl()).await.map_err(Self::net)? {
            RpcReply::Snapshot(Ok(r)) => Ok(r),
            RpcReply::Snapshot(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            r => Err(Self::unexpected(r)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        let candidate_log = rpc.last_log_id;
        let cluster = self.cluster().map_err(Self::net)?;
        match self.send(&Rpc::Vote(cluster, rpc), option.hard_ttl()).await.map_err(Self::net)? {
            RpcReply::Vote(Ok(r)) => {
                // Refused by a voter whose log is longer: only such a voter can be elected,
                // and standing again would raise the term it has to beat (see `election`).
                if !r.vote_granted && r.last_log_id > candidate_log {
                    tracing::info!(voter = self.target, "a voter with a longer log refused the vote: yielding to it");
                    self.election.lock().unwrap_or_else(|e| e.into_inner()).outvoted_by_longer_log(Instant::now());
                }
                Ok(r)
            }
            RpcReply::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            r => Err(Self::unexpected(r)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let snapshot = if self.member.holder() != self.me {
            // What the checked policy updates after the snapshot (not applied here yet: a
            // leader just elected, say) still name, by session: only these signers may
            // receive its key (an update only narrows, see `redact`).
            let last = snapshot.meta.last_log_id.map(|l| l.index);
            let later = self.log.policy_updates_after(last);
            let narrowed = |session: &Address| named_after(&later, session, last.unwrap_or(0));
            let data = snapshot.snapshot.into_inner();
            let redacted = if data.is_empty() {
                data
            } else {
                let mut s = decode_snapshot(&data)
                    .map_err(|e| StreamingError::Unreachable(unreachable(&Msg(format!("snapshot: {e}")))))?;
                s.redact(&self.member.holder(), narrowed);
                encode_snapshot(&s)
                    .map_err(|e| StreamingError::Unreachable(unreachable(&Msg(format!("snapshot: {e}")))))?
            };
            Snapshot { meta: snapshot.meta, snapshot: Box::new(Cursor::new(redacted)) }
        } else {
            snapshot
        };
        // Sent under an id of its own that names the bytes sent: the receiver takes the
        // chunks in order and the whole only as hashed ([`super::snapshot_in`]).
        let mut meta = snapshot.meta;
        let data = snapshot.snapshot.into_inner();
        meta.snapshot_id = super::snapshot_in::stream_id(&meta.snapshot_id, &data);
        let snapshot = Snapshot { meta, snapshot: Box::new(Cursor::new(data)) };
        Chunked::send_snapshot(self, vote, snapshot, cancel, option).await
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node belongs to the first cluster it is told of, and only that one.
    #[test]
    fn a_node_belongs_to_one_cluster_for_good() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let belongs = Cluster::default();
        assert!(!belongs.is(&a) && !belongs.is(&Address::ZERO), "no cluster before one is settled");
        assert_eq!(belongs.settle(a), a);
        assert_eq!(belongs.clone().settle(b), a, "a second cluster is not taken, by any handle");
        assert!(belongs.is(&a) && !belongs.is(&b));
    }

    /// A node takes Raft messages of its own cluster only, none before it has one; joins
    /// always reach it (its leader decides on them).
    #[test]
    fn a_node_takes_raft_messages_of_its_own_cluster_only() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let vote = |c| Rpc::Vote(c, VoteRequest::new(Vote::new(3, 7), None));
        let append = |c| {
            Rpc::Append(
                c,
                AppendEntriesRequest { vote: Vote::new(3, 7), prev_log_id: None, entries: vec![], leader_commit: None },
            )
        };
        let join = Rpc::Join(JoinRequest {
            node_id: 9,
            member: Member {
                peer_url: "http://x".into(),
                static_key: [0; 32],
                image: [0; 32].into(),
                signer: None,
                rules: 1,
            },
            cluster: Some(b),
        });
        let belongs = Cluster::default();
        for rpc in [vote(a), append(a), vote(Address::ZERO)] {
            let why = belongs.admits(&rpc).unwrap_err();
            assert!(why.contains("none yet"), "{why}");
        }
        assert!(belongs.admits(&join).is_ok());
        belongs.settle(a);
        assert!(belongs.admits(&vote(a)).is_ok() && belongs.admits(&append(a)).is_ok());
        for rpc in [vote(b), append(b)] {
            let why = belongs.admits(&rpc).unwrap_err();
            assert!(why.contains(&format!("cluster {b}")) && why.contains(&a.to_string()), "{why}");
        }
    }

    /// What a sender knows of a session: its applied state, narrowed by each later policy
    /// update in its log — never widened (an update may still be refused when applied).
    #[test]
    fn later_updates_only_narrow_what_is_known() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let (s, t) = (Pcr8::repeat_byte(0x5e), Pcr8::repeat_byte(0x77));
        let known =
            Known { enclave: None, applied: Some(5), later: vec![(7, a, vec![s, t]), (8, a, vec![s]), (9, a, vec![])] };
        assert_eq!(known.current(&a, 6), Current::Live(vec![]), "dropped at 9");
        assert_eq!(known.current(&a, 8), Current::Live(vec![]));
        assert_eq!(known.current(&a, 9), Current::NotYetApplied, "its own word");
        assert_eq!(known.current(&b, 6), Current::NotYetApplied);
        // Applied here and not held: ended.
        assert_eq!(known.current(&b, 3), Current::Gone);
        let known = Known { enclave: None, applied: None, later: vec![(2, a, vec![s]), (3, a, vec![s, t])] };
        assert_eq!(known.current(&a, 1), Current::Live(vec![s]), "3 does not add t back");
    }
}
