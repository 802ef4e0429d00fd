//! A cluster node: the enclave's calls served through the Raft log (README, "High
//! availability").
//!
//! * **Signing and every call that changes state** is served by the leader: it checks what
//!   it can before the log (bounds, the agent's stamp, that it holds the session's key),
//!   then proposes the call at its clock reading; once a majority holds the entry, every
//!   node applies it (the same decision everywhere), and the leader answers with what its
//!   own application returned — the signature is released only after the charge, the nonce
//!   and the audit entry are committed. A follower answers [`NotLeader`] and its host asks
//!   the leader.
//! * **Reads** (status, audit log) are served by the leader after it confirmed it still
//!   leads (a linearizable read): a deposed leader never shows stale counters. Two are
//!   served by every node that has joined: the public status (identity, counts), and the
//!   audit chain so far (`audit(since)` without a nonce), so that each host copies the log
//!   from its own node.
//! * **Attestation** is served by every node: its own document, for the cluster's identity.

use super::election::{jitter, Election};
use super::keyed;
use super::log_store::LogStore;
use super::network::{JoinReply, JoinRequest, Rpc, RpcReply};
use super::peers::Peers;
use super::proposing::{owner_auth, Proposing};
use super::replica::Replica;
use super::types::{Cmd, Holder, Member, NodeId, Op, Raft, Secret};
use super::upkeep::{make_room, plan, Learners, Step};
use crate::clock::{Clock, ReplicaClock};
use crate::keys::Key;
use crate::session::placeholder_signature;
use bridle_common::cluster::{
    is_peer_url, ClusterCall, ClusterInfo, ClusterReply, ClusterStart, MemberInfo, NotLeader, MAX_PEER_URL, MAX_SEEDS,
};
use bridle_common::error::is_session_busy;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor_attested, to_cbor};
use bridle_common::protocol::{Call, Reply};
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{ChangeMembers, Membership, ServerState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "found.rs"]
mod found;
#[path = "joining.rs"]
mod joining;
#[path = "node_liveness.rs"]
mod liveness;

/// How long a call waits for its entry to be committed and applied.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Refused-before-the-log requests proposed anyway (so their bounded audit entries are
/// the same on every node), per second at most; beyond, refused unlogged.
const REFUSALS_PER_SECOND: u32 = 64;
fn unavailable(why: impl Into<String>) -> Denial {
    Denial::new(ErrorCode::Unavailable, why)
}

/// See the module docs.
pub struct ClusterNode {
    pub(super) id: NodeId,
    /// This node's image and release signer.
    pub(super) holder: Holder,
    pub(super) raft: Raft,
    pub(super) replica: Arc<Replica>,
    pub(super) peers: Arc<Peers>,
    /// The node's log, for what it holds that is not yet committed.
    log: LogStore,
    snapshot_bytes: usize,
    pub(super) clock: Arc<ReplicaClock>,
    pub(super) advertise: Mutex<Option<String>>,
    /// When each peer last answered (heartbeats included), for replacing dead voters.
    pub(super) last_ok: Arc<Mutex<HashMap<NodeId, Instant>>>,
    /// Since when this node leads (seen by the upkeep): a voter never heard from is dead
    /// only once the leader has led for [`super::upkeep::DEAD_AFTER`].
    /// (term, instant): a leader deposed and elected again between two upkeeps starts anew.
    leading_since: Mutex<Option<(u64, Instant)>>,
    /// When this node first saw each member in the membership: a node added a moment ago
    /// has not answered yet, and is not silent for that (a learner never heard from was
    /// otherwise silent since the leader began to lead, and forgotten as soon as added).
    seen: Mutex<HashMap<NodeId, Instant>>,
    /// Each member's log index as the leader last saw it change, and when (for learners that
    /// answer but never catch up: [`super::upkeep::LEARNER_STALLED_AFTER`]).
    progress: Mutex<HashMap<NodeId, (Option<u64>, Instant)>>,
    refusals: Mutex<(u64, u32)>,
    /// The snapshot stream this node is taking ([`super::snapshot_in`]).
    snapshot_in: tokio::sync::Mutex<super::snapshot_in::SnapshotIn>,
    /// Owner messages being proposed: a copy of one is refused before the log.
    proposing: Proposing,
    /// Sessions whose checked policy update is being proposed: one at a time each.
    updating: Proposing,
    /// The failure detector's state ([`Election`]), shared with the network, which tells it
    /// when a voter refused this node's candidacy for a longer log.
    election: Arc<Mutex<Election>>,
    /// The seeds a join asks, once started (it goes on until the node has the state); each
    /// start while joining replaces them with its host's latest list.
    joining: Arc<Mutex<Option<Vec<String>>>>,
    /// When a leader was last heard from (an append or a snapshot accepted, a vote granted),
    /// or this node last led: a node that has the state and hears nothing for
    /// [`super::joining::REJOIN_AFTER`] asks to be taken again ([`super::joining`]).
    leader_heard: Arc<Mutex<Instant>>,
    /// A join again is under way (one at a time).
    rejoining: Arc<std::sync::atomic::AtomicBool>,
    /// The peers its host last named to this node once it had the state (each start of a
    /// ready node), asked by a join again beside the members it knows.
    known_seeds: Arc<Mutex<Vec<String>>>,
    /// The cluster this node belongs to (see [`super::network::Cluster`]).
    cluster: super::network::Cluster,
    /// The identity this node founds its cluster with, once asked to found one (decided
    /// under `joining`'s lock: a node founds or joins, never both); kept, and proposed again
    /// at each start, until applied ([`found`]).
    founding: Mutex<Option<found::Founding>>,
    #[cfg(test)]
    stall_founding: std::sync::atomic::AtomicBool,
    /// Held across each membership change (a join's learner entry, a change of voters).
    changing: tokio::sync::Mutex<()>,
}

impl ClusterNode {
    /// The node, sharing with `network` (openraft's) the peers, the answers heard, and the
    /// failure detector.
    pub(super) fn assemble(
        id: NodeId,
        raft: Raft,
        replica: Arc<Replica>,
        clock: Arc<ReplicaClock>,
        network: &super::network::Network,
        (log, snapshot_bytes): (LogStore, usize),
    ) -> ClusterNode {
        let super::network::Network { peers, holder, last_ok, election, replica: _, log: _, cluster } = network.clone();
        ClusterNode {
            id,
            holder,
            raft,
            replica,
            peers,
            log,
            snapshot_bytes,
            clock,
            advertise: Mutex::new(None),
            last_ok,
            leading_since: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            refusals: Mutex::new((0, 0)),
            snapshot_in: tokio::sync::Mutex::new(Default::default()),
            proposing: Proposing::default(),
            updating: Proposing::default(),
            election,
            joining: Arc::new(Mutex::new(None)),
            leader_heard: Arc::new(Mutex::new(Instant::now())),
            rejoining: Arc::default(),
            known_seeds: Arc::default(),
            cluster,
            founding: Mutex::new(None),
            #[cfg(test)]
            stall_founding: std::sync::atomic::AtomicBool::new(false),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    fn member(&self) -> Option<Member> {
        let url = self.advertise.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let Holder { image, signer } = self.holder;
        Some(Member { peer_url: url, static_key: self.peers.static_key(), image, signer, rules: self.replica.rules() })
    }

    fn url_of(&self, node: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_node(&node).map(|n| n.peer_url.clone())
    }

    fn not_leader(&self) -> Reply {
        let leader = self.raft.metrics().borrow().current_leader;
        Reply::NotLeader(NotLeader { leader, leader_url: leader.and_then(|l| self.url_of(l)) })
    }

    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// Serve one call (see the module docs).
    pub async fn handle(&self, call: Call) -> Result<Reply, Denial> {
        match call {
            Call::Cluster(c) => self.cluster_call(c).await,
            Call::Attest(_) => {
                let e = self.replica.enclave().ok_or_else(|| unavailable("this node has not joined yet"))?;
                e.handle(call)
            }
            // Public facts (the identity, counts): any node that has joined, so that every
            // host learns the cluster's identity from its own enclave.
            Call::Status(q) if q.session.is_none() && q.nonce.is_none() => {
                let e = self.replica.enclave().ok_or_else(|| unavailable("this node has not joined yet"))?;
                e.handle(Call::Status(q))
            }
            // The chain so far: any node whose cluster identity is applied. Every node holds
            // the same chain, applied from the log, so a host pulls its copy from its own
            // node, with no other host in the way (a review of 2026-12-06: every other
            // host's copy came through the leader's host, which could cut entries out of
            // it). A follower's chain may lag the leader's by what it has not applied yet.
            // Its head is signed as of the latest entry this node applied, not its clock (a
            // review of 2026-12-06: a node cut off from the leader — its host carries its
            // traffic — signed heads "complete as of now" over a frozen chain). A head at
            // the log's end (`since` u64::MAX) or for a verifier's nonce says where the log
            // ends now: the leader's only, below.
            Call::Audit(q) if q.nonce.is_none() && q.since != u64::MAX => {
                self.enclave()?.audit_as_of(q.since, self.clock.latest_applied())
            }
            Call::Status(_) | Call::Audit(_) => {
                if !self.is_leader() {
                    return Ok(self.not_leader());
                }
                if let Err(e) = self.raft.ensure_linearizable().await {
                    return match e {
                        RaftError::APIError(_) => Ok(self.not_leader()),
                        RaftError::Fatal(f) => Err(unavailable(format!("this node stopped: {f}"))),
                    };
                }
                let e = self.enclave()?;
                e.handle(call)
            }
            other => self.propose_call(other).await,
        }
    }

    /// Wait until this leader has applied every entry committed before its term (its first
    /// entry of the term included).
    /// `Ok(false)`: this node no longer leads.
    async fn applied_all(&self) -> Result<bool, Denial> {
        use openraft::error::CheckIsLeaderError;
        match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => Ok(false),
            Ok(Err(e)) => Err(unavailable(format!("this node cannot confirm it leads: {e}"))),
            Err(_) => Err(unavailable(format!("this leader did not catch up within {COMMIT_TIMEOUT:?}"))),
        }
    }

    /// The enclave as applied now (a snapshot installed replaces it: fetch it again after
    /// waiting).
    fn enclave(&self) -> Result<Arc<crate::Enclave>, Denial> {
        self.replica.enclave().ok_or_else(|| unavailable("the cluster has no identity yet"))
    }

    fn refusal_allowed(&self) -> bool {
        let now = self.clock.now();
        let mut g = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 != now {
            *g = (now, 0);
        }
        g.1 += 1;
        g.1 <= REFUSALS_PER_SECOND
    }

    async fn propose_call(&self, call: Call) -> Result<Reply, Denial> {
        if !self.is_leader() {
            return Ok(self.not_leader());
        }
        // A call whose entry may carry keys is checked against everything committed before
        // this leader's term (a leader just elected may not have applied it yet: a nonce
        // already spent, a release signer already dropped).
        // A sweep too, before its check below (it catches up later anyway): a leader just
        // elected may not have applied the creation of the session it names, and refused
        // over the bound on refusals it would not be proposed (a review of 2026-12-06).
        if matches!(call, Call::AllowImage(_) | Call::UpdatePolicy(_) | Call::Sweep(_)) && !self.applied_all().await? {
            return Ok(self.not_leader());
        }
        let enclave = self.enclave()?;
        // An owner call its owner did not sign is logged only within the bound on
        // refusals, like a signing request refused before the log.
        let prechecked = enclave.precheck_owner(&call);
        if let Err(d) = &prechecked {
            if !self.refusal_allowed() {
                return Err(d.clone());
            }
        }
        // One entry at a time per owner message (until applied, its nonce is not spent).
        let _held = owner_auth(&call).map(|a| self.proposing.hold(a)).transpose()?;
        let mut _updating = None;
        let op = match call {
            Call::CreateSession(c) => {
                let key = Key::generate();
                let address = key.address();
                Op::CreateSession {
                    call: Box::new(c),
                    address,
                    key: Some(Secret(*key.secret_bytes())),
                    custody: vec![self.holder.image],
                }
            }
            Call::AllowImage(a) => keyed::allow_image(&enclave, a)?,
            Call::SignIfAllowed(req) => {
                let mut checked = unblocked(self, req.session, |e| e.precheck_sign(&req)).await;
                // Still busy: nothing proposed, answered so (the host asks again) — never
                // proposed as a refusal.
                if let Err(d) = &checked {
                    if is_session_busy(d) {
                        return Err(d.clone());
                    }
                }
                // A session this leader does not know may be one whose creation it has not
                // applied yet (a leader just elected): it catches up and checks again, so
                // that no request passes the key check below on stale state (proposed, it
                // would be signed under the placeholder and spend the session's budget
                // with nothing returned). Within the refusal bound: at most
                // REFUSALS_PER_SECOND such waits.
                if let Err(d) = &checked {
                    if !self.refusal_allowed() {
                        return Err(d.clone());
                    }
                    if d.code == ErrorCode::UnknownSession {
                        if !self.applied_all().await? {
                            return Ok(self.not_leader());
                        }
                        // The state as applied now (a snapshot installed meanwhile
                        // replaces the enclave: `unblocked` fetches it).
                        checked = unblocked(self, req.session, |e| e.precheck_sign(&req)).await;
                        if let Err(d) = &checked {
                            if is_session_busy(d) {
                                return Err(d.clone());
                            }
                        }
                    }
                }
                match checked {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(unavailable(format!(
                            "this cluster's leader may not hold the key of session {} (its owner has neither allowed this image nor named its release signer); ask again when a node of its image leads",
                            req.session
                        )))
                    }
                    // Refused before the log: proposed anyway (within the bound counted
                    // above), so that every node logs the same bounded refusal. For an
                    // unknown session, every creation committed before this leader's term is
                    // applied by now: the session is unknown everywhere, or its creation is
                    // this leader's own (which holds its key), in flight. Other refusals
                    // (payload, stamp) depend on nothing a later entry changes.
                    Err(_) => {}
                }
                Op::Call(Box::new(Call::SignIfAllowed(req)))
            }
            Call::UpdatePolicy(u) if prechecked.is_ok() => {
                // Held until proposed: the next update of the session sees this one in the
                // log (or waits).
                _updating = Some(self.updating.hold_session(u.session)?);
                let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
                let pending = self.log.policy_updates_after(applied).iter().any(|(_, s, _)| *s == u.session);
                keyed::update_policy(&enclave, u, pending)?
            }
            c @ (Call::UpdatePolicy(_)
            | Call::Revoke(_)
            | Call::RevokeAll(_)
            | Call::ApprovePending(_)
            | Call::DenyPending(_)
            | Call::Sweep(_)) => {
                // Calls whose answer the leader signs with the session's key: an approval,
                // and a sweep's revocations. A leader without the key would sign them with the
                // placeholder while every node records them as made — for an owner's sweep of
                // a revoked session, destroying the key on the nodes that held it, with no
                // revocation ever sent (found 2026-12-04 by a review). So the leader must
                // hold the key when the entry is applied: it checks once it has applied
                // everything committed before its term (a host can hand leadership to a
                // node whose applied state still has a key an update has since dropped),
                // with no policy update of the session in the log ahead, and none proposed
                // until this entry is applied (held as an update is).
                let signs_for = match &c {
                    Call::ApprovePending(a) => Some(a.session),
                    Call::Sweep(s) => Some(s.session),
                    _ => None,
                };
                if let Some(session) = signs_for {
                    if !self.applied_all().await? {
                        return Ok(self.not_leader());
                    }
                    _updating = Some(self.updating.hold_session(session)?);
                    let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
                    if self.log.policy_updates_after(applied).iter().any(|(_, s, _)| *s == session) {
                        return Err(unavailable(format!(
                            "a policy update of session {session} is being applied; ask again"
                        )));
                    }
                    if !unblocked(self, session, |e| e.holds_key(&session)).await? {
                        return Err(unavailable("this cluster's leader may not hold this session's key"));
                    }
                }
                Op::Call(Box::new(c))
            }
            Call::Status(_) | Call::Audit(_) | Call::Attest(_) | Call::Cluster(_) => {
                return Err(Denial::new(ErrorCode::Internal, "not a proposal"))
            }
        };
        let reply = self.propose(op).await?;
        if let Ok(Reply::Signed(s)) = &reply {
            if s.signature.as_ref() == placeholder_signature().as_bytes().as_slice() {
                return Err(Denial::new(
                    ErrorCode::Internal,
                    "the leader lost the session's key; nothing was returned",
                ));
            }
        }
        reply
    }

    /// Propose `op` and wait for this node's application of it.
    pub(super) async fn propose(&self, op: Op) -> Result<Result<Reply, Denial>, Denial> {
        // A key attached to `op` that is not its session's (a bug: keys are checked when a
        // session takes them) is never proposed: the nodes it reaches would refuse a creation
        // or an `allow_image` and those whose copy is redacted would not, parting their
        // states (SECURITY.md, "A keyed policy update refused when applied").
        if let Some(why) = op.misdirected_key() {
            tracing::error!("{why}: not proposed");
            return Err(Denial::new(ErrorCode::Internal, format!("{why}; nothing was proposed")));
        }
        // Concurrent calls may each pass this check: the log then exceeds the bound by at
        // most the calls in flight, which the connections bound.
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
        let (entries, bytes) = self.log.held_after(applied);
        if let Some(why) = super::log_store::pending_refusal(entries, bytes, self.snapshot_bytes) {
            return Err(unavailable(why));
        }
        let cmd = Cmd { proposer: self.id, clock: self.clock.now(), rules: self.replica.rules(), op };
        match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.client_write(cmd)).await {
            Err(_) => Err(unavailable(format!(
                "no majority confirmed the request within {COMMIT_TIMEOUT:?}; if it is committed later, asking again with the same stamp returns its signature"
            ))),
            Ok(Ok(resp)) => Ok(resp.data.0),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Ok(Ok(self.not_leader())),
            Ok(Err(RaftError::APIError(e))) => Err(unavailable(e.to_string())),
            Ok(Err(RaftError::Fatal(f))) => Err(unavailable(format!("this node stopped: {f}"))),
        }
    }

    async fn cluster_call(&self, c: ClusterCall) -> Result<Reply, Denial> {
        Ok(Reply::Cluster(match c {
            ClusterCall::Start(s) => {
                self.start(s).await?;
                ClusterReply::Started
            }
            ClusterCall::Poll { wait_ms, max } => {
                let wait = Duration::from_millis(wait_ms.min(30_000));
                ClusterReply::Outbound(self.peers.poll(wait, max.clamp(1, 256) as usize).await)
            }
            ClusterCall::Deliver { bytes } => ClusterReply::Delivered { bytes: self.peers.deliver(&bytes).await },
            ClusterCall::Respond { id, result } => {
                self.peers.respond(id, result.map(|b| b.into_vec()));
                ClusterReply::Ok
            }
            ClusterCall::Info => ClusterReply::Info(self.info()),
        }))
    }

    /// Where this node stands.
    pub fn info(&self) -> ClusterInfo {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| MemberInfo {
                node_id: *id,
                peer_url: n.peer_url.clone(),
                image: hex::encode(n.image),
                voter: voters.contains(id),
                rules: n.rules,
            })
            .collect::<Vec<_>>();
        let role = match m.state {
            _ if members.is_empty() => "joining",
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterInfo {
            node_id: self.id,
            role: role.to_string(),
            leader: m.current_leader,
            leader_url: m.current_leader.and_then(|l| membership.get_node(&l).map(|n| n.peer_url.clone())),
            term: m.current_term,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            members,
            image: hex::encode(self.holder.image),
            ready: self.replica.enclave().is_some(),
            rules: self.replica.rules(),
        }
    }
}

impl super::peers::Handler for ClusterNode {
    fn handle<'a>(
        &'a self,
        request: Vec<u8>,
        peer: &'a bridle_channel::PeerAttestation,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send + 'a>> {
        Box::pin(async move {
            let reply = match from_cbor_attested::<Rpc>(&request) {
                Err(e) => RpcReply::Refused(format!("undecodable request: {e}")),
                Ok(rpc) => match self.cluster.admits(&rpc) {
                    Err(why) => RpcReply::Refused(why),
                    Ok(()) => self.answer(rpc, peer).await,
                },
            };
            to_cbor(&reply).unwrap_or_default()
        })
    }
}

impl ClusterNode {
    /// The answer to a request this node takes (see [`super::network::Cluster::admits`]).
    async fn answer(&self, rpc: Rpc, peer: &bridle_channel::PeerAttestation) -> RpcReply {
        match rpc {
            Rpc::Append(_, r) => {
                // Entries this node could never apply (decided under other rules before its
                // own were in the membership) are not taken: the leader sends a snapshot.
                // The membership at the batch's place: the last one this node's log holds
                // before its first entry, else the one it applied (a snapshot's); not the
                // log's latest, which may come after it (a review of 2026-12-07).
                let first = r.entries.first().map_or(u64::MAX, |e| e.log_id.index);
                let members = self.log.members_before(first).unwrap_or_else(|| self.replica.members());
                if let Err(why) = super::rules::appendable(&r.entries, self.replica.rules(), members, self.id) {
                    if super::rules::say_now() {
                        tracing::warn!("{why}");
                    }
                    return RpcReply::Refused(why);
                }
                let r = self.raft.append_entries(r).await;
                if matches!(
                    r,
                    Ok(AppendEntriesResponse::Success
                        | AppendEntriesResponse::PartialSuccess(_)
                        | AppendEntriesResponse::Conflict)
                ) {
                    self.heard_from_leader(true);
                }
                RpcReply::Append(r)
            }
            Rpc::Vote(_, r) => {
                let r = self.raft.vote(r).await;
                if r.as_ref().is_ok_and(|v| v.vote_granted) {
                    self.heard_from_leader(false);
                }
                RpcReply::Vote(r)
            }
            Rpc::Snapshot(_, r) => {
                let vote = r.vote;
                // One chunk at a time, in order, the whole as the leader hashed it
                // ([`super::snapshot_in`]): a chunk spliced from another stream never
                // reaches openraft, whose storage error would stop this node for good.
                let r = super::snapshot_in::install_in_order(&self.raft, &self.snapshot_in, r).await;
                // A leader's message too: a learner taking a large snapshot hears no append
                // meanwhile (not the failure detector's concern: a voter being sent a
                // snapshot is not caught up).
                // (openraft answers `Ok` with its own vote to a chunk it refused for a
                // lower vote: only a chunk taken counts.)
                if r.as_ref().is_ok_and(|resp| resp.vote == vote) {
                    *self.leader_heard.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                }
                RpcReply::Snapshot(r)
            }
            Rpc::Join(r) => RpcReply::Join(self.on_join(r, peer).await),
        }
    }
}

/// How long a leader waits for a busy session's lock before a call on it is answered
/// busy (well within the host's call timeout, beside a commit's).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// `check` on `enclave`, asked again after waiting off the runtime's worker while
/// `session`'s lock is held (an entry applying an owner call on it: a sweep signs up to
/// ≈ 512 revocations under it) — `check` answers `Ok(None)` then; at most [`BUSY_WAIT`],
/// then `unavailable` with the rule `enclave.session_busy`: nothing proposed, which the caller
/// answers at once (the host asks again). A leader's checks before the log waited for that
/// lock on a worker (a review of 2026-12-05). The enclave is fetched again after each wait
/// (a snapshot installed meanwhile replaces it).
async fn unblocked<T>(
    node: &ClusterNode,
    session: alloy_primitives::Address,
    check: impl Fn(&crate::Enclave) -> Result<Option<T>, Denial>,
) -> Result<T, Denial> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    loop {
        let enclave = node.enclave()?;
        if let Some(v) = check(&enclave)? {
            return Ok(v);
        }
        crate::lanes::wait_for_session(enclave, session, deadline, "nothing was proposed").await?;
    }
}
