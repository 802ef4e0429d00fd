//! What a node knows of its peers' liveness: when it last heard from a leader (elections
//! wait for silence), how long each member has been silent or stalled, and the progress
//! it noted (the upkeep removes and re-adds members by these).

use super::*;

impl ClusterNode {
    /// A leader's message was accepted (or a vote granted): no election for a while.
    /// Only a leader's own message (`from_leader`) counts for [`joining`]: a vote granted
    /// may go to a candidate as cut off as this node (a review of 2026-12-06: a removed node
    /// granting a removed candidate's votes never asked again).
    pub(in crate::cluster) fn heard_from_leader(&self, from_leader: bool) {
        let now = Instant::now();
        self.election.lock().unwrap_or_else(|e| e.into_inner()).heard(now);
        if from_leader {
            *self.leader_heard.lock().unwrap_or_else(|e| e.into_inner()) = now;
        }
    }

    /// The failure detector (run every 50 ms; see [`crate::cluster::election`]): a voter that heard
    /// from no leader for the lease plus a margin plus fresh jitter asks openraft to hold an
    /// election, and again after a retry wait — but not while it yields to a voter whose log
    /// is longer than its own.
    pub(in crate::cluster) async fn watch_leader(&self) {
        let (state, voter) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            (m.state, m.membership_config.membership().voter_ids().any(|v| v == self.id))
        };
        self.rejoin_if_orphaned();
        let now = Instant::now();
        {
            let mut e = self.election.lock().unwrap_or_else(|e| e.into_inner());
            if !voter || !matches!(state, ServerState::Follower | ServerState::Candidate) {
                e.heard(now);
                return;
            }
            let lease = Duration::from_millis(crate::cluster::ELECTION_TIMEOUT_MAX_MS);
            if !e.stand(now, lease, jitter) {
                return;
            }
        }
        tracing::info!(node = self.id, "no leader heard from: standing for election");
        if let Err(e) = self.raft.trigger().elect().await {
            tracing::warn!(error = %e, "election trigger failed");
        }
    }

    /// How long each node has answered nothing, as this leader of `term` knows it: counted
    /// from when it began to lead at the earliest (a new leader has heard from nobody yet),
    /// and from when it first saw the node a member (`members`); zero for every node before
    /// the upkeep noted the term's start, and for this node.
    pub(in crate::cluster) fn silence(
        &self,
        term: u64,
        members: &Membership<NodeId, Member>,
    ) -> impl Fn(&NodeId) -> Duration {
        let since = self.led_since(term);
        let seen = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            seen.retain(|id, _| members.get_node(id).is_some());
            for (id, _) in members.nodes() {
                seen.entry(*id).or_insert(now);
            }
            seen.clone()
        };
        let last_ok = self.last_ok.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let me = self.id;
        move |v: &NodeId| match since {
            Some(since) if *v != me => {
                let from = [last_ok.get(v), seen.get(v)].into_iter().flatten().fold(since, |a, t| a.max(*t));
                from.elapsed()
            }
            _ => Duration::ZERO,
        }
    }

    /// How long each node's log (the index the leader knows it holds) has not advanced, as
    /// this leader knows it from `m`: counted from when it began to lead at the earliest;
    /// zero before the upkeep noted the term's start.
    pub(in crate::cluster) fn stalled(
        &self,
        m: &openraft::RaftMetrics<NodeId, Member>,
    ) -> impl Fn(&NodeId) -> Duration {
        let since = self.led_since(m.current_term);
        let progress = self.note_progress(m);
        move |v: &NodeId| match (since, progress.get(v)) {
            (Some(since), Some((_, moved))) => (*moved).max(since).elapsed(),
            _ => Duration::ZERO,
        }
    }

    /// Since when this node leads in `term`, as the upkeep noted it.
    pub(in crate::cluster) fn led_since(&self, term: u64) -> Option<Instant> {
        match *self.leading_since.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((t, at)) if t == term => Some(at),
            _ => None,
        }
    }

    /// Note each member's log index from `m` (and when it last changed); the record.
    pub(in crate::cluster) fn note_progress(
        &self,
        m: &openraft::RaftMetrics<NodeId, Member>,
    ) -> HashMap<NodeId, (Option<u64>, Instant)> {
        let now = Instant::now();
        let matched: BTreeMap<NodeId, Option<u64>> =
            m.replication.clone().unwrap_or_default().into_iter().map(|(id, l)| (id, l.map(|l| l.index))).collect();
        let members = m.membership_config.membership();
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|id, _| members.get_node(id).is_some());
        for (id, _) in members.nodes() {
            let at = matched.get(id).copied().flatten();
            if p.get(id).is_none_or(|(held, _)| *held != at) {
                p.insert(*id, (at, now));
            }
        }
        p.clone()
    }

    /// The leader's membership upkeep (run every few hundred ms): promote learners that
    /// caught up; replace voters that stopped answering; forget learners that did.
    pub(in crate::cluster) async fn tend(&self) {
        // One membership change at a time from this node: a join's learner entry landing
        // between a change's two entries would leave the config joint (see `upkeep`). While
        // a join is under way, look again at the next upkeep: a plan made before waiting
        // could be stale by the time the lock came (a review of this fix).
        let Ok(_one) = self.changing.try_lock() else { return };
        let m = self.raft.metrics().borrow().clone();
        {
            let mut since = self.leading_since.lock().unwrap_or_else(|e| e.into_inner());
            if m.current_leader != Some(self.id) {
                *since = None;
                return;
            }
            if !matches!(*since, Some((term, _)) if term == m.current_term) {
                *since = Some((m.current_term, Instant::now()));
            }
        }
        let last = m.last_log_index.unwrap_or(0);
        let matched: BTreeMap<NodeId, Option<u64>> =
            m.replication.clone().unwrap_or_default().into_iter().map(|(id, l)| (id, l.map(|l| l.index))).collect();
        let silence = self.silence(m.current_term, m.membership_config.membership());
        let silent = |v: &NodeId, after: Duration| silence(v) > after;
        // Kept up every upkeep, so a join that needs room knows how long each learner stalled.
        self.note_progress(&m);
        let change: ChangeMembers<NodeId, Member> = match plan(m.membership_config.membership(), last, &matched, silent)
        {
            Step::Keep => return,
            Step::Finish(voters) => {
                tracing::info!(?voters, "finishing a joint membership config");
                ChangeMembers::ReplaceAllVoters(voters)
            }
            Step::Change { voters, ready, dead } => {
                tracing::info!(?ready, ?dead, ?voters, "changing the cluster's voters");
                ChangeMembers::ReplaceAllVoters(voters)
            }
            Step::Forget(learners) => {
                tracing::info!(?learners, "forgetting learners that stopped answering");
                ChangeMembers::RemoveNodes(learners)
            }
        };
        // Bounded, so a host that withholds the commit cannot hold joins off for good; a
        // change cut short between its two entries is finished at a later upkeep.
        match tokio::time::timeout(2 * COMMIT_TIMEOUT, self.raft.change_membership(change, false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "membership change failed"),
            Err(_) => tracing::warn!("membership change not committed in time; the upkeep looks again"),
        }
    }
}
