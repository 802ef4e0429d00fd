//! A node entering its cluster: its start (found, or join: [`ClusterNode::start`]), the
//! leader's side of a join ([`ClusterNode::on_join`]), and the asking itself — once at the
//! start ([`join`] until the state arrives), and again whenever a node that has the state
//! hears nothing of a working cluster for [`REJOIN_AFTER`] ([`orphaned`], then [`join`]
//! until it hears again: [`ClusterNode::rejoin_if_orphaned`]).
//!
//! A node is forgotten without being told: the leader drops a voter that was silent
//! ([`crate::cluster::upkeep::SUSPECT_AFTER`] beside a caught-up learner, [`crate::cluster::upkeep::DEAD_AFTER`]
//! otherwise) and a learner silent for [`crate::cluster::upkeep::LEARNER_DEAD_AFTER`], and a removed
//! node receives nothing more — not even the entry that removed it. Such a node, alive again
//! (a long pause, a partition healed), used to wait for good: a learner never stands for
//! election, and a dropped voter's candidacies are refused. Until its enclave restarted it
//! served nothing, and the cluster was a node short (SECURITY.md, "Cluster membership
//! residuals"). Now it asks to join again, with the same node id and key: the leader takes
//! it as a learner (one entry) and the upkeep promotes it once caught up, as any joining
//! node. A node that is still a member and asks (a partition, a slow link) is answered at
//! once and nothing is written ([`ClusterNode::on_join`]).
//!
//! Nothing here admits anyone: the leader checks the asking node's attestation, its cluster
//! and its URL exactly as for a first join; what it learns comes only through the log.

use super::*;
use crate::cluster::network::{Cluster, Rpc, RpcReply};

/// How long a node that has the cluster's state may hear nothing of a working cluster (see
/// [`orphaned`]) before it asks to
/// be taken again. Heartbeats come every 300 ms and an election ends within a few seconds
/// (BENCHMARKS.md, "Failover"); a member that asks is answered without an entry, so asking
/// too early costs one call.
pub const REJOIN_AFTER: Duration = Duration::from_secs(10);

/// How long a join waits for its answer: the leader may wait 2 s for a membership change
/// under way, then [`COMMIT_TIMEOUT`] for the learner entry (one entry, with
/// any learners it forgets to make room); an answer that comes later is lost, though the
/// node was added, and the node asks again — which then writes nothing, the node being a
/// member already (a review of 2026-12-05). Within the host's 10 s relay.
pub const JOIN_WAIT: Duration = Duration::from_secs(9);

/// After an acceptance, how long a join waits for what it is waiting for (the state, or a
/// leader's message) before it asks again.
const ACCEPTED_WAIT: Duration = Duration::from_secs(10);

/// Whether a node asks to be taken again now: it has the cluster's state (a node without
/// it is still in its first join) and heard nothing of a working cluster since `heard` —
/// no leader's append or snapshot chunk taken, or, leading, no answer from a majority of
/// its voters ([`quorum_heard`]) — for [`REJOIN_AFTER`].
pub fn orphaned(has_state: bool, heard: Instant, now: Instant) -> bool {
    has_state && now.saturating_duration_since(heard) >= REJOIN_AFTER
}

/// For a leader: the latest time by which a majority of `voters` had answered it (itself
/// counted at `now`; `last_ok`, each peer's last answer), and never before `since`, when it
/// began to lead (a new leader has heard from nobody yet).
pub fn quorum_heard(
    voters: &[NodeId],
    me: NodeId,
    last_ok: &HashMap<NodeId, Instant>,
    since: Instant,
    now: Instant,
) -> Instant {
    let mut times: Vec<Instant> =
        voters.iter().map(|v| if *v == me { now } else { last_ok.get(v).copied().unwrap_or(since) }).collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    let majority = voters.len() / 2 + 1;
    times.get(majority - 1).copied().unwrap_or(now).max(since)
}

/// What a join goes on for, and where it asks.
pub struct Joining {
    /// Whether the join is over (checked before each call and while waiting after an
    /// acceptance).
    pub done: Box<dyn Fn() -> bool + Send + Sync>,
    /// The URLs to ask this round (taken afresh each round).
    pub targets: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    /// A join again (not the first): failures are expected while the cluster is out of
    /// reach, and logged quietly.
    pub again: bool,
}

/// Ask `j.targets` (then whoever they name as leader) to add this node, until `j.done`.
/// Every round asks each target (its own URL aside) and follows each leader named once;
/// between rounds it waits (0.2 s, doubling to 2 s) and takes the targets again (a first
/// join's seeds are replaced by each start of the node).
///
/// The first leader that accepts it decides the cluster it belongs to: a later acceptance by
/// another cluster's leader (a host can name any seeds) is not taken, and that cluster's
/// messages are refused.
pub async fn join(peers: &Peers, req: JoinRequest, belongs: &Cluster, j: Joining) {
    let me = req.member.peer_url.trim_end_matches('/').to_string();
    let mut backoff = Duration::from_millis(200);
    let mut rounds = 0u64;
    loop {
        let mut asked = BTreeSet::new();
        let mut targets: Vec<String> = (j.targets)().into_iter().rev().collect();
        while let Some(url) = targets.pop() {
            if (j.done)() {
                return;
            }
            let trimmed = url.trim_end_matches('/').to_string();
            if trimmed == me || !asked.insert(trimmed) {
                continue;
            }
            let req = JoinRequest { cluster: belongs.get(), ..req.clone() };
            match crate::cluster::network::call(peers, &url, None, &Rpc::Join(req), JOIN_WAIT).await {
                Ok(RpcReply::Join(JoinReply::Accepted { cluster })) => {
                    let mine = belongs.settle(cluster);
                    if mine != cluster {
                        tracing::warn!(via = %url, %cluster, %mine, "accepted by another cluster than this node's: not taken");
                        continue;
                    }
                    tracing::info!(via = %url, %cluster, again = j.again, "taken by the cluster; waiting for its leader");
                    let until = Instant::now() + ACCEPTED_WAIT;
                    while Instant::now() < until {
                        if (j.done)() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    if j.again {
                        tracing::debug!(via = %url, "nothing from the cluster 10 s after it took this node again; asking again");
                    } else {
                        tracing::warn!(via = %url, "nothing from the cluster 10 s after it took this node; asking again");
                    }
                }
                Ok(RpcReply::Join(JoinReply::NotLeader { leader_url: Some(l) })) => {
                    tracing::debug!(via = %url, leader = %l, "join: asking the leader");
                    targets.push(l);
                }
                Ok(other) if j.again => tracing::debug!(via = %url, reply = ?other, "join again not accepted"),
                Ok(other) => tracing::warn!(via = %url, reply = ?other, "join not accepted"),
                Err(e) if j.again => tracing::debug!(via = %url, error = %e, "join again failed"),
                Err(e) => tracing::warn!(via = %url, error = %e, "join failed"),
            }
        }
        if (j.done)() {
            return;
        }
        if asked.is_empty() && rounds.is_multiple_of(10) {
            tracing::warn!("no cluster member to ask to join (the host knows none yet); waiting for seeds");
        }
        rounds += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl ClusterNode {
    /// Found the cluster, or join it (in the background).
    pub(super) async fn start(&self, s: ClusterStart) -> Result<(), Denial> {
        if !is_peer_url(&s.advertise) || s.seeds.len() > MAX_SEEDS || s.seeds.iter().any(|u| !is_peer_url(u)) {
            return Err(Denial::malformed(format!(
                "advertise must be an http(s) URL (≤ {MAX_PEER_URL} bytes, no query, fragment or user info), with at most {MAX_SEEDS} seeds alike"
            )));
        }
        // A node that has the state (founded or joined) only takes the peers its host knows
        // now, for a join again ([`ClusterNode::rejoin_if_orphaned`]): the members it last
        // knew may all have been replaced while it was away (a review of 2026-12-06). It
        // joins no other cluster: a join again names this node's. (A founder asked to found
        // again goes on below, as before.)
        if !s.bootstrap && self.replica.enclave().is_some() {
            *self.known_seeds.lock().unwrap_or_else(|e| e.into_inner()) = s.seeds;
            return Ok(());
        }
        *self.advertise.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.advertise.clone());
        let Some(me) = self.member() else { return Err(Denial::malformed("no advertise URL")) };
        // A founder goes on founding whatever it is asked (its host may have restarted
        // without `--cluster-bootstrap`): the identity it made is proposed until applied.
        // Once it is, it refuses to join another cluster.
        if let Some(f) = self.founding() {
            if !s.bootstrap && self.replica.enclave().is_some() {
                return Err(Denial::malformed("this node founded its cluster: it joins no other"));
            }
            return self.found(me, f).await;
        }
        if s.bootstrap {
            let initialized = self.raft.is_initialized().await.map_err(|e| unavailable(e.to_string()))?;
            // A node founds or joins, once: a node whose join is under way (or done) that
            // founded a cluster of its own would later take its cluster's entries on top of
            // what it applied alone (found 2026-12-05 by a review; a host restarted with
            // `--cluster-bootstrap` while its enclave joins asks exactly that). It goes on
            // joining, with these seeds.
            let f = {
                let mut joining = self.joining.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(seeds) = joining.as_mut() {
                    tracing::warn!("asked to found a cluster while joining one: joining goes on");
                    *seeds = s.seeds;
                    return Ok(());
                }
                if initialized && self.founding().is_none() {
                    return Ok(());
                }
                self.begin_founding()
            };
            return self.found(me, f).await;
        }
        // The host starts a joining node again and again, with the seeds it knows by then
        // (it may learn more meanwhile): the join under way asks the latest.
        let first = {
            let mut joining = self.joining.lock().unwrap_or_else(|e| e.into_inner());
            if self.founding().is_some() {
                return Err(Denial::malformed("this node founded its cluster: it joins no other"));
            }
            joining.replace(s.seeds).is_none()
        };
        if first {
            let req = JoinRequest { node_id: self.id, member: me, cluster: None };
            let (peers, cluster, replica, seeds) =
                (self.peers.clone(), self.cluster.clone(), self.replica.clone(), self.joining.clone());
            let j = Joining {
                done: Box::new(move || replica.enclave().is_some()),
                targets: Box::new(move || seeds.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()),
                again: false,
            };
            tokio::spawn(async move { join(&peers, req, &cluster, j).await });
        }
        Ok(())
    }

    /// A join request from `peer` (its channel's attestation).
    pub(super) async fn on_join(&self, req: JoinRequest, peer: &bridle_channel::PeerAttestation) -> JoinReply {
        let holder = Holder::from_pcrs(
            peer.pcr(0).unwrap_or_default(),
            peer.pcr(1).unwrap_or_default(),
            peer.pcr(2).unwrap_or_default(),
            peer.pcr(crate::cluster::admit::SIGNER_PCR),
        );
        // What the membership records decides which keys the node receives: it must be
        // what the node's attestation shows.
        // Every host calls a member's URL: one its host chose with a query, a fragment or user
        // info would move the path or the host it goes to (a review of 2026-12-06).
        if !is_peer_url(&req.member.peer_url) {
            return JoinReply::Refused(format!(
                "a peer URL is an http(s) URL of at most {MAX_PEER_URL} bytes with no query, fragment or user info"
            ));
        }
        if req.member.static_key != peer.static_key || req.member.holder() != holder {
            return JoinReply::Refused(
                "the join names another key, image or release signer than its channel's attestation".into(),
            );
        }
        if !self.is_leader() {
            let leader = self.raft.metrics().borrow().current_leader;
            return JoinReply::NotLeader { leader_url: leader.and_then(|l| self.url_of(l)) };
        }
        let Some(cluster) = self.cluster.get() else {
            return JoinReply::Refused("this node belongs to no cluster yet".into());
        };
        // Not before the founder's identity is applied: a cluster that never gets it (its
        // founder's enclave restarted meanwhile) would hold the node for good.
        if self.replica.enclave().is_none() {
            return JoinReply::Refused("the cluster has no identity yet; ask again".into());
        }
        if let Some(theirs) = req.cluster.filter(|c| *c != cluster) {
            return JoinReply::Refused(format!("the node belongs to cluster {theirs}; this is {cluster}"));
        }
        // Not while a change of voters is under way (it may wait for a commit): the node
        // asks again.
        let Ok(_one) = tokio::time::timeout(Duration::from_secs(2), self.changing.lock()).await else {
            return JoinReply::Refused("a membership change is under way; ask again".into());
        };
        let m = self.raft.metrics().borrow().clone();
        let members = m.membership_config.membership();
        // Already a member as it says it is (a node asks again while its state has not
        // arrived): nothing is written. Each membership entry restarts every snapshot the
        // leader is sending, the asking node's own too (a review of 2026-12-06).
        match members.get_node(&req.node_id) {
            Some(m) if *m == req.member => return JoinReply::Accepted { cluster },
            // Ids are random per boot: another member's id is never a genuine node's.
            Some(_) => return JoinReply::Refused("that node id is a member under another URL or key".into()),
            None => {}
        }
        // Room first: this host's earlier boots go, and the learners stay bounded (a review
        // of 2026-12-06: one host restarting its enclave added a member per boot, for good).
        let learners = Learners { silence: self.silence(m.current_term, members), stalled: self.stalled(&m) };
        let gone = match make_room(members, req.node_id, &req.member.peer_url, &learners) {
            Ok(gone) => gone,
            Err(why) => return JoinReply::Refused(why),
        };
        let rules = req.member.rules;
        if let Err(why) = super::super::rules::may_join(rules, members.nodes().map(|(_, n)| n)) {
            return JoinReply::Refused(why);
        }
        // A node that cannot replay this log (entries decided under other rules than its
        // own) starts from a snapshot ([`super::super::rules`]); so does one that joins a
        // membership of other rules (what is decided until it is in the membership).
        let from_snapshot = members.nodes().any(|(_, n)| !super::super::rules::alike(n.rules, rules))
            || self.log.decides_under_other_rules(rules);
        // One entry: the learners that go and the node that joins (bounded, as the upkeep's
        // changes are; the node asks again).
        let change = if gone.is_empty() {
            ChangeMembers::AddNodes(BTreeMap::from([(req.node_id, req.member)]))
        } else {
            tracing::info!(learners = ?gone, node = req.node_id, "forgetting learners to make room for a join");
            let mut nodes: BTreeMap<NodeId, Member> =
                members.nodes().filter(|(id, _)| !gone.contains(id)).map(|(id, n)| (*id, n.clone())).collect();
            nodes.insert(req.node_id, req.member);
            ChangeMembers::ReplaceAllNodes(nodes)
        };
        match tokio::time::timeout(COMMIT_TIMEOUT, self.raft.change_membership(change, false)).await {
            Ok(Ok(added)) => {
                tracing::info!(node = req.node_id, rules, "node joined as a learner");
                // A node of other decision rules cannot replay what this log holds from before
                // it joined (it refuses it): it starts from a snapshot ([`super::super::rules`]).
                if from_snapshot {
                    tokio::spawn(snapshot_for_joiner(self.raft.clone(), added.log_id.index));
                }
                JoinReply::Accepted { cluster }
            }
            Ok(Err(e)) => JoinReply::Refused(e.to_string()),
            Err(_) => JoinReply::Refused("the learner entry was not committed in time; ask again".into()),
        }
    }

    /// A node that has the state and hears nothing of a working cluster asks to be taken
    /// again (it may have been forgotten: see the module docs), one such join at a time,
    /// until it hears again. It asks the members it knows and its host's last seeds.
    pub(super) fn rejoin_if_orphaned(&self) {
        use std::sync::atomic::Ordering;
        let now = Instant::now();
        let heard = {
            let mut h = self.leader_heard.lock().unwrap_or_else(|e| e.into_inner());
            // One reading of the metrics for whether it leads and what it leads: a node that
            // stepped down between two readings would otherwise count itself heard.
            let m = self.raft.metrics().borrow().clone();
            if m.state == ServerState::Leader {
                // A leader hears the cluster through its voters' answers: one cut off leads on
                // in openraft 0.9 (no step-down on a lost quorum), and if every voter of its
                // config was replaced meanwhile, nothing ever deposes it (a review of
                // 2026-12-06). Each half of a joint config needs its own majority.
                let since = self.led_since(m.current_term).unwrap_or(now);
                let last_ok = self.last_ok.lock().unwrap_or_else(|e| e.into_inner());
                let configs = m.membership_config.membership().get_joint_config();
                *h = joint_quorum_heard(configs, self.id, &last_ok, since, now);
            }
            *h
        };
        if !orphaned(self.replica.enclave().is_some(), heard, now) {
            return;
        }
        let Some(member) = self.member() else { return };
        if self.rejoining.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            node = self.id,
            silent_s = now.saturating_duration_since(heard).as_secs(),
            "nothing heard of a working cluster: asking it to take this node again"
        );
        let req = JoinRequest { node_id: self.id, member, cluster: self.cluster.get() };
        let (peers, cluster, raft, seeds, known) = (
            self.peers.clone(),
            self.cluster.clone(),
            self.raft.clone(),
            self.joining.clone(),
            self.known_seeds.clone(),
        );
        let (heard_at, rejoining) = (self.leader_heard.clone(), self.rejoining.clone());
        let j = Joining {
            done: Box::new(move || *heard_at.lock().unwrap_or_else(|e| e.into_inner()) > heard),
            targets: Box::new(move || {
                let mut urls: Vec<String> = raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .nodes()
                    .map(|(_, m)| m.peer_url.clone())
                    .collect();
                urls.extend(known.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
                urls.extend(seeds.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default());
                urls
            }),
            again: true,
        };
        let id = self.id;
        tokio::spawn(async move {
            join(&peers, req, &cluster, j).await;
            tracing::info!(node = id, "a leader is heard again");
            rejoining.store(false, Ordering::SeqCst);
        });
    }
}

/// [`quorum_heard`] for a config that may be joint: each half needs its own majority (the
/// union's would count a leader heard by one half's voters as heard, or not: a review of
/// 2026-12-06), so the earliest of the halves'.
pub fn joint_quorum_heard(
    configs: &[BTreeSet<NodeId>],
    me: NodeId,
    last_ok: &HashMap<NodeId, Instant>,
    since: Instant,
    now: Instant,
) -> Instant {
    let halves = configs.iter().map(|voters| {
        let voters: Vec<NodeId> = voters.iter().copied().collect();
        quorum_heard(&voters, me, last_ok, since, now)
    });
    halves.min().unwrap_or(now)
}

/// Take a snapshot at or past `index` (the entry that added a node of other decision rules)
/// and drop the entries it covers: that node refuses them (it could not apply them), and is
/// sent the snapshot instead. Asked again every few seconds until done, for at most a minute
/// (a node that is still behind then is forgotten as a stalled learner and joins again).
async fn snapshot_for_joiner(raft: super::Raft, index: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut asked: Option<Instant> = None;
    while Instant::now() < deadline {
        let m = raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return;
        }
        match m.snapshot.map(|s| s.index) {
            Some(s) if s >= index => {
                tracing::info!(snapshot = s, "dropping the entries before a node of other rules joined");
                let _ = raft.trigger().purge_log(s).await;
                return;
            }
            _ if asked.is_none_or(|t| t.elapsed() > Duration::from_secs(3)) => {
                asked = Some(Instant::now());
                let _ = raft.trigger().snapshot().await;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!(index, "no snapshot covered the join of a node of other rules within a minute");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_with_the_state_that_hears_no_leader_asks_again() {
        let t0 = Instant::now();
        let later = |d: Duration| t0 + d;
        // Within the wait: no.
        assert!(!orphaned(true, t0, later(REJOIN_AFTER - Duration::from_millis(1))));
        // Past it: yes.
        assert!(orphaned(true, t0, later(REJOIN_AFTER)));
        // A node still in its first join has its own loop.
        assert!(!orphaned(false, t0, later(REJOIN_AFTER * 3)));
        // A reading of `heard` after `now` (a race between threads) is no silence.
        assert!(!orphaned(true, later(Duration::from_secs(1)), t0));
    }

    #[test]
    fn a_leader_hears_the_cluster_through_a_majority_of_its_voters() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let now = at(100);
        let ok = |pairs: &[(NodeId, u64)]| pairs.iter().map(|(n, s)| (*n, at(*s))).collect::<HashMap<_, _>>();
        // Alone: always heard.
        assert_eq!(quorum_heard(&[1], 1, &HashMap::new(), at(0), now), now);
        // Three voters: itself and the more recent of the two others.
        assert_eq!(quorum_heard(&[1, 2, 3], 1, &ok(&[(2, 40), (3, 90)]), at(0), now), at(90));
        // Cut off since 40: a leader no longer heard, orphaned 10 s later.
        let h = quorum_heard(&[1, 2, 3], 1, &ok(&[(2, 40), (3, 38)]), at(0), now);
        assert_eq!(h, at(40));
        assert!(orphaned(true, h, now));
        // Five voters: the third most recent (itself, 90, 80).
        assert_eq!(quorum_heard(&[1, 2, 3, 4, 5], 1, &ok(&[(2, 90), (3, 80), (4, 10)]), at(0), now), at(80));
        // Never before it began to lead (a new leader has heard from nobody yet); voters
        // never heard count from then.
        assert_eq!(quorum_heard(&[1, 2, 3], 1, &ok(&[(2, 40)]), at(95), now), at(95));
        assert_eq!(quorum_heard(&[1, 2, 3], 1, &HashMap::new(), at(95), now), at(95));
    }

    #[test]
    fn each_half_of_a_joint_config_needs_its_own_majority() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let now = at(100);
        let set = |ids: &[NodeId]| ids.iter().copied().collect::<BTreeSet<_>>();
        // {1,2,3} → {1,2,4}, 3 dead and 4 not heard yet: 1 and 2 are a majority of each half
        // (the union of four would want three).
        let ok: HashMap<NodeId, Instant> = [(2, at(99)), (3, at(1)), (4, at(1))].into_iter().collect();
        let joint = [set(&[1, 2, 3]), set(&[1, 2, 4])];
        assert_eq!(joint_quorum_heard(&joint, 1, &ok, at(0), now), at(99));
        // One half heard, the other not: not heard.
        let halves = [set(&[1, 2, 3]), set(&[1, 4, 5])];
        assert_eq!(joint_quorum_heard(&halves, 1, &ok, at(0), now), at(1));
        // A plain config is one half.
        assert_eq!(joint_quorum_heard(&[set(&[1, 2, 3])], 1, &ok, at(0), now), at(99));
    }
}
