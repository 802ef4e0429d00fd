//! The replicated state machine: the enclave itself. Every node applies the same committed
//! commands in the same order, at the times the proposer read, with the same decision core,
//! so every node holds the same sessions, counters, replay windows, owner nonces, pending
//! approvals and audit chain (see [`crate::apply`] for the two things that differ: clocks
//! and signatures). Snapshots carry the whole enclave ([`EnclaveSnapshot`]).

use super::rules::{Verdict, RULES_VERSION};
use super::types::{
    Cmd, CmdReply, Entry, Holder, LogId, NodeId, Op, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::apply::{self, ApplyCtx};
use crate::clock::ReplicaClock;
use crate::keys::Key;
use crate::service::snapshot::EnclaveSnapshot;
use crate::{Attestor, Config, Enclave};
use alloy_primitives::B256;
use bridle_common::cluster::ClusterReply;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor_attested, to_cbor};
use bridle_common::protocol::{Call, Reply};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Newest audit entries a snapshot carries (the chain itself continues whole).
pub const SNAPSHOT_AUDIT_ENTRIES: usize = 100_000;

/// An attestor shared by every enclave instance a replica makes over its life.
#[derive(Clone)]
pub struct SharedAttestor(pub Arc<dyn Attestor>);

impl Attestor for SharedAttestor {
    fn attest(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        self.0.attest(user_data, nonce, public_key)
    }
}

#[derive(Default)]
struct State {
    enclave: Option<Arc<Enclave>>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// The state machine. See the module docs.
pub struct Replica {
    me: NodeId,
    holder: Holder,
    clock: Arc<ReplicaClock>,
    attestor: Option<SharedAttestor>,
    config: Config,
    state: RwLock<State>,
    /// Whether a snapshot was made (or installed): then openraft may ask for one to send to
    /// a node that lags. Its bytes are not kept (they grow with the sessions: ≈ 1.2 KiB
    /// each, BENCHMARKS.md "Enclave cluster"); [`Replica::snapshot_now`] makes them when
    /// asked.
    snapshotted: AtomicBool,
    snapshot_seq: AtomicU64,
    /// The cluster this node belongs to: the identity it applies or installs must be the
    /// one whose address names it ([`super::network::Cluster`]).
    cluster: super::network::Cluster,
    /// The decision rules this node runs ([`super::rules`]).
    rules: u32,
}

impl Replica {
    pub fn new(
        me: NodeId,
        holder: Holder,
        clock: Arc<ReplicaClock>,
        attestor: Option<SharedAttestor>,
        config: Config,
    ) -> Replica {
        Replica {
            me,
            holder,
            clock,
            attestor,
            config,
            state: RwLock::new(State::default()),
            snapshotted: AtomicBool::new(false),
            snapshot_seq: AtomicU64::new(0),
            cluster: Default::default(),
            rules: RULES_VERSION,
        }
    }

    /// This replica, running decision rules `rules` (a development node plays another
    /// release's with `--dev-rules-version`).
    pub fn with_rules(self, rules: u32) -> Replica {
        Replica { rules, ..self }
    }

    /// The decision rules this node runs.
    pub fn rules(&self) -> u32 {
        self.rules
    }

    /// This replica, of the node that belongs to `cluster`.
    pub fn belonging_to(self, cluster: super::network::Cluster) -> Replica {
        Replica { cluster, ..self }
    }

    /// The refusal of an identity other than the one whose address names this node's
    /// cluster: the state would be another cluster's. Every Raft message names its cluster,
    /// so this never happens; if it did, openraft stops the node on the storage error.
    fn foreign_identity(&self, identity: &[u8; 32]) -> Option<StorageError> {
        let cluster = self.cluster.get()?;
        let address = Key::from_secret_bytes(identity).map(|k| k.address());
        if address == Some(cluster) {
            return None;
        }
        tracing::error!(%cluster, ?address, "an identity of another cluster: this node stops");
        let why = format!("the cluster's identity would be {address:?}, not {cluster}");
        Some(StorageIOError::write_state_machine(&std::io::Error::other(why)).into())
    }

    /// The enclave, once the cluster's first command (or a snapshot) reached this node.
    pub fn enclave(&self) -> Option<Arc<Enclave>> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).enclave.clone()
    }

    /// The members of the membership applied last (a snapshot's, or an entry's).
    pub fn members(&self) -> Vec<super::types::Member> {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        g.membership.membership().nodes().map(|(_, n)| n.clone()).collect()
    }

    pub fn last_applied(&self) -> Option<LogId> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).last_applied
    }

    pub fn image(&self) -> B256 {
        self.holder.image
    }

    /// A snapshot of the state as it is now (consistent: captured between two applied
    /// entries), its meta naming the last entry applied and the membership then; the state
    /// itself only when `capture`.
    fn snapshot_now(&self, capture: bool) -> Builder {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let id = match g.last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("--{seq}"),
        };
        Builder {
            captured: g.enclave.as_ref().filter(|_| capture).map(|e| {
                let mut snap = e.snapshot(SNAPSHOT_AUDIT_ENTRIES);
                // Read under the state's lock, which every entry is applied under.
                snap.applied_clock = self.clock.latest_applied();
                snap
            }),
            meta: SnapshotMeta { last_log_id: g.last_applied, last_membership: g.membership.clone(), snapshot_id: id },
        }
    }

    fn new_enclave(&self, identity: Key, booted_at: u64) -> Enclave {
        Enclave::with_identity(
            identity,
            booted_at,
            Box::new(self.clock.clone()),
            self.attestor.clone().map(|a| Box::new(a) as Box<dyn Attestor>),
            self.config.clone(),
        )
    }

    /// Apply one command (see the module docs). Deterministic: the same command on the same
    /// state gives the same state on every node.
    fn apply_cmd(&self, state: &mut State, cmd: Cmd) -> CmdReply {
        self.clock.applied(cmd.clock);
        let ctx = ApplyCtx { clock: cmd.clock, proposer: cmd.proposer == self.me };
        apply::with(ctx, || {
            let Some(enclave) = state.enclave.clone() else {
                return match cmd.op {
                    Op::Init { identity, booted_at } => match Key::from_secret_bytes(&identity.0) {
                        Some(k) => {
                            state.enclave = Some(Arc::new(self.new_enclave(k, booted_at)));
                            CmdReply(Ok(Reply::Cluster(ClusterReply::Ok)))
                        }
                        None => CmdReply(Err(Denial::new(ErrorCode::Internal, "invalid cluster identity"))),
                    },
                    _ => CmdReply(Err(Denial::new(ErrorCode::Unavailable, "the cluster has no identity yet"))),
                };
            };
            CmdReply(match cmd.op {
                // A second identity is ignored: the first one stays (every node alike).
                Op::Init { .. } => Ok(Reply::Cluster(ClusterReply::Ok)),
                Op::CreateSession { call, address, key, custody } => {
                    enclave.apply_create_session(*call, address, key, custody, &self.holder)
                }
                Op::Call(call) => match *call {
                    // A policy update may change which nodes hold the key.
                    Call::UpdatePolicy(u) => enclave.apply_update_policy(u, None, &self.holder),
                    c @ (Call::SignIfAllowed(_)
                    | Call::Revoke(_)
                    | Call::RevokeAll(_)
                    | Call::ApprovePending(_)
                    | Call::DenyPending(_)
                    | Call::Sweep(_)) => enclave.handle(c),
                    // Calls no leader proposes as plain calls (none ever has). A creation
                    // applied as one would generate a different key on every node, and an
                    // attestation read each node's own NSM: refused alike on every node, with
                    // nothing changed (a leader's bug; hosts cannot forge peers' entries).
                    c @ (Call::CreateSession(_)
                    | Call::AllowImage(_)
                    | Call::Status(_)
                    | Call::Audit(_)
                    | Call::Attest(_)
                    | Call::Cluster(_)) => {
                        tracing::error!(call = c.name(), "a call no leader proposes reached the log as a plain call");
                        Err(Denial::new(
                            ErrorCode::Internal,
                            format!(
                                "a {} call reaches the log only as its own entry, never as a plain call: refused on every node, nothing changed",
                                c.name()
                            ),
                        ))
                    }
                },
                Op::UpdatePolicy { call, key } => {
                    let key = key.and_then(|s| Key::from_secret_bytes(&s.0));
                    enclave.apply_update_policy(*call, key, &self.holder)
                }
                Op::AllowImage { call, keys } => {
                    let keys =
                        keys.into_iter().map(|(a, s)| (a, s.and_then(|s| Key::from_secret_bytes(&s.0)))).collect();
                    enclave.apply_allow_image(&call, keys, self.holder.image)
                }
            })
        })
    }
}

/// Decode a snapshot's bytes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<EnclaveSnapshot, String> {
    from_cbor_attested::<EnclaveSnapshot>(bytes).map_err(|e| e.to_string())
}

/// Encode a snapshot.
pub fn encode_snapshot(s: &EnclaveSnapshot) -> Result<Vec<u8>, String> {
    to_cbor(s).map_err(|e| e.to_string())
}

/// Builds a snapshot from the state captured when it was asked for (consistent: captured
/// between two applied entries).
pub struct Builder {
    captured: Option<EnclaveSnapshot>,
    meta: SnapshotMeta,
}

impl Builder {
    /// The captured state's bytes (none when nothing was captured).
    fn encode(&self) -> Result<Vec<u8>, String> {
        match &self.captured {
            Some(s) => encode_snapshot(s),
            None => Ok(Vec::new()),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // openraft keeps the meta (and compacts the log up to it); the bytes are dropped.
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(Cursor::new(Vec::new())) })
    }
}

impl RaftStateMachine<TypeConfig> for Arc<Replica> {
    type SnapshotBuilder = Builder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CmdReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut out = Vec::new();
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        for e in entries {
            if let EntryPayload::Normal(Cmd { op: Op::Init { identity, .. }, .. }) = &e.payload {
                // Only the first identity is applied (a second is ignored): only it is checked.
                if g.enclave.is_none() {
                    if let Some(refused) = self.foreign_identity(&identity.0) {
                        return Err(refused);
                    }
                }
            }
            // Decided under the same rules on every node, or refused on every node alike
            // ([`super::rules`]); judged once, under the membership at the entry's place.
            let refused = match &e.payload {
                EntryPayload::Normal(cmd) => {
                    let members = g.membership.membership().nodes().map(|(_, m)| m);
                    match super::rules::verdict(cmd, self.rules, members) {
                        Verdict::Apply => None,
                        Verdict::Refuse(d) => {
                            self.clock.applied(cmd.clock);
                            Some(d)
                        }
                        Verdict::Cannot(why) => {
                            // Applied, the entry would part this node's state from its
                            // proposer's: openraft stops the node on the storage error; it
                            // answers nothing more and is dropped like a dead node.
                            tracing::error!(index = e.log_id.index, "{why}");
                            return Err(StorageIOError::write_state_machine(&std::io::Error::other(why)).into());
                        }
                    }
                }
                _ => None,
            };
            g.last_applied = Some(e.log_id);
            out.push(match (refused, e.payload) {
                (Some(d), _) => CmdReply(Err(d)),
                (None, EntryPayload::Blank) => CmdReply(Ok(Reply::Cluster(ClusterReply::Ok))),
                (None, EntryPayload::Normal(cmd)) => self.apply_cmd(&mut g, cmd),
                (None, EntryPayload::Membership(m)) => {
                    g.membership = StoredMembership::new(Some(e.log_id), m);
                    CmdReply(Ok(Reply::Cluster(ClusterReply::Ok)))
                }
            });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshotted.store(true, Ordering::SeqCst);
        // The meta only (openraft compacts the log up to it): nothing is sent from it.
        self.snapshot_now(false)
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let enclave = if data.is_empty() {
            None
        } else {
            let snap = decode_snapshot(&data)
                .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(e)))?;
            if let Some(refused) = self.foreign_identity(&snap.identity) {
                return Err(refused);
            }
            // What this node proposes next is timed at or after every entry the state holds.
            self.clock.applied(snap.applied_clock);
            let e = Enclave::restore(
                &snap,
                Box::new(self.clock.clone()),
                self.attestor.clone().map(|a| Box::new(a) as Box<dyn Attestor>),
                self.config.clone(),
            )
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(e)))?;
            Some(Arc::new(e))
        };
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        g.enclave = enclave;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        drop(g);
        self.snapshotted.store(true, Ordering::SeqCst);
        tracing::info!(snapshot = %meta.snapshot_id, "cluster snapshot installed");
        Ok(())
    }

    /// The state as it is now, encoded when asked (to send to a node that lags): at or past
    /// the last snapshot openraft made, never behind it (the state only moves forward), and
    /// its meta names exactly the entries it holds, so the node that installs it goes on
    /// from there with the log. Nothing is kept between two asks.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        if !self.snapshotted.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let b = self.snapshot_now(true);
        let data = b.encode().map_err(|e| StorageIOError::read_state_machine(&std::io::Error::other(e)))?;
        Ok(Some(Snapshot { meta: b.meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::Secret;
    use super::*;
    use crate::clock::{Clock, FixedClock};
    use crate::service::room_tests::{creation, T0};
    use alloy_primitives::Address;
    use bridle_common::cluster::ClusterCall;
    use bridle_common::protocol::{AllowImage, Attest, AuditQuery, StatusQuery};

    fn cmd(op: Op) -> Cmd {
        Cmd { proposer: 1, clock: T0, rules: RULES_VERSION, op }
    }

    /// A creation (or a read) that reached the log as a plain call — which no leader
    /// proposes — is refused when applied, changing nothing: applied as a call, a creation
    /// would have made a session under a key each node generated itself. The same creation
    /// as its own entry is made.
    #[test]
    fn calls_no_leader_proposes_as_plain_calls_are_refused_when_applied() {
        let image = B256::repeat_byte(1);
        let clock = Arc::new(ReplicaClock::new(Box::new(FixedClock::new(T0))));
        let replica = Replica::new(1, Holder { image, signer: None }, clock, None, Config::default());
        let mut state = State::default();
        let identity = Secret(*Key::generate().secret_bytes());
        let init = replica.apply_cmd(&mut state, cmd(Op::Init { identity, booted_at: T0 }));
        assert!(init.0.is_ok(), "{init:?}");
        let enclave = state.enclave.clone().expect("the cluster's enclave");
        let before = encode_snapshot(&enclave.snapshot(SNAPSHOT_AUDIT_ENTRIES)).unwrap();
        let c = creation(&enclave, T0, 1);
        let plain = [
            Call::CreateSession(c.clone()),
            Call::Status(StatusQuery { session: None, nonce: None, held: None }),
            Call::Audit(AuditQuery { since: 0, nonce: None }),
            Call::Attest(Attest { nonce: None }),
            Call::AllowImage(AllowImage { auth: c.auth.clone(), session: Address::ZERO, image }),
            Call::Cluster(ClusterCall::Poll { wait_ms: 0, max: 1 }),
        ];
        for call in plain {
            let name = call.name();
            let CmdReply(r) = replica.apply_cmd(&mut state, cmd(Op::Call(Box::new(call))));
            let d = r.expect_err(name);
            assert_eq!(d.code, ErrorCode::Internal, "{name}: {d:?}");
            assert!(d.reason.contains(&format!("a {name} call reaches the log only as its own entry")), "{d:?}");
        }
        let after = encode_snapshot(&enclave.snapshot(SNAPSHOT_AUDIT_ENTRIES)).unwrap();
        assert!(before == after, "a refused plain call changed the state");
        // The creation itself is valid: as its own entry, with its key, it is made.
        let key = Key::generate();
        let own = Op::CreateSession {
            call: Box::new(c),
            address: key.address(),
            key: Some(Secret(*key.secret_bytes())),
            custody: vec![image],
        };
        match replica.apply_cmd(&mut state, cmd(own)).0 {
            Ok(Reply::SessionCreated(s)) => assert_eq!(s.binding.session, key.address()),
            other => panic!("the creation as its own entry: {other:?}"),
        }
    }

    /// A node that catches up by snapshot keeps its clock at or above the latest entry the
    /// snapshot holds, as it does for each entry it applies (a review of 2026-12-05).
    #[tokio::test]
    async fn a_snapshot_installed_raises_the_clock_to_its_latest_entry() {
        use openraft::storage::RaftStateMachine;
        let holder = Holder { image: B256::repeat_byte(1), signer: None };
        let replica = |id| {
            Arc::new(Replica::new(
                id,
                holder,
                Arc::new(ReplicaClock::new(Box::new(FixedClock::new(T0)))),
                None,
                Config::default(),
            ))
        };
        let (mut a, mut b) = (replica(1), replica(2));
        let identity = Secret(*Key::generate().secret_bytes());
        let entry = |index, clock, op| Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Cmd { proposer: 1, clock, rules: RULES_VERSION, op }),
        };
        let later = T0 + 500;
        a.apply([
            entry(1, T0, Op::Init { identity: identity.clone(), booted_at: T0 }),
            entry(2, later, Op::Init { identity, booted_at: T0 }),
        ])
        .await
        .unwrap();
        a.get_snapshot_builder().await;
        let snap = a.get_current_snapshot().await.unwrap().expect("a snapshot");
        assert_eq!(b.clock.now(), T0);
        b.install_snapshot(&snap.meta, snap.snapshot).await.unwrap();
        assert_eq!(b.clock.now(), later);
        assert!(b.enclave().is_some());
    }

    /// A replica applies or installs only the identity whose address names its cluster: any
    /// other is refused as a storage error, which stops the node.
    #[tokio::test]
    async fn only_the_identity_of_its_own_cluster_is_applied_or_installed() {
        use openraft::storage::RaftStateMachine;
        let holder = Holder { image: B256::repeat_byte(1), signer: None };
        let (ours, theirs) = (Key::generate(), Key::generate());
        let belongs = super::super::network::Cluster::default();
        belongs.settle(ours.address());
        let replica = || {
            let clock = Arc::new(ReplicaClock::new(Box::new(FixedClock::new(T0))));
            Arc::new(Replica::new(2, holder, clock, None, Config::default()).belonging_to(belongs.clone()))
        };
        let init = |k: &Key| Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(Cmd {
                proposer: 1,
                clock: T0,
                rules: RULES_VERSION,
                op: Op::Init { identity: Secret(*k.secret_bytes()), booted_at: T0 },
            }),
        };
        let mut r = replica();
        let err = r.apply([init(&theirs)]).await.unwrap_err();
        assert!(err.to_string().contains("identity"), "{err}");
        assert!(r.enclave().is_none());
        r.apply([init(&ours)]).await.unwrap();
        assert_eq!(r.enclave().unwrap().identity_address(), ours.address());

        // A snapshot of another cluster's state.
        let other = Arc::new(Replica::new(
            3,
            holder,
            Arc::new(ReplicaClock::new(Box::new(FixedClock::new(T0)))),
            None,
            Config::default(),
        ));
        let mut o = other.clone();
        o.apply([init(&theirs)]).await.unwrap();
        o.get_snapshot_builder().await;
        let snap = o.get_current_snapshot().await.unwrap().unwrap();
        let mut fresh = replica();
        assert!(fresh.install_snapshot(&snap.meta, snap.snapshot).await.is_err());
        assert!(fresh.enclave().is_none());
    }
}
