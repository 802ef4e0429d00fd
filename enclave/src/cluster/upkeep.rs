//! The leader's membership upkeep, as pure logic: which voters the cluster should have
//! next ([`plan`]); [`super::node::ClusterNode::tend`] reads the metrics and applies it.
//!
//! openraft changes voters in two entries: a joint config (old and new voters), then the
//! new one alone. A joint config can outlive the change that began it — the leader died
//! between the two entries, or a learner's join landed between them (the second entry is
//! then refused while the join is uncommitted). A joint config is therefore finished (to
//! its last half) before anything else is decided: waiting for it to end by itself would
//! wait forever. Finishing drops the voters only its first half names, as the change that
//! began it would have.

use super::types::{Member, NodeId};
use openraft::Membership;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A voter that answered nothing for this long is dead: dropped even with no learner to
/// replace it, when enough voters remain ([`MIN_VOTERS`]).
pub const DEAD_AFTER: Duration = Duration::from_secs(6);

/// A voter silent this long (heartbeats go every 300 ms) is replaced when a caught-up
/// learner can take its place.
pub const SUSPECT_AFTER: Duration = Duration::from_millis(1500);

/// The fewest voters a cluster keeps by dropping dead ones without a replacement.
pub const MIN_VOTERS: usize = 3;

/// A learner this many entries or fewer behind the leader's last is caught up.
pub const CAUGHT_UP: u64 = 64;

/// What the leader does next with the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to change.
    Keep,
    /// The config is joint: finish it with these voters (its last half).
    Finish(BTreeSet<NodeId>),
    /// Change the voters: promote `ready` learners, drop `dead` voters.
    Change { voters: BTreeSet<NodeId>, ready: Vec<NodeId>, dead: Vec<NodeId> },
}

/// The next step for `membership`, as seen by its leader: `last` is the leader's last log
/// index, `matched` the index each follower is known to hold, `silent(v, after)` whether
/// voter `v` (never the leader) answered nothing for `after`.
pub fn plan(
    membership: &Membership<NodeId, Member>,
    last: u64,
    matched: &BTreeMap<NodeId, Option<u64>>,
    silent: impl Fn(&NodeId, Duration) -> bool,
) -> Step {
    let joint = membership.get_joint_config();
    if joint.len() > 1 {
        return Step::Finish(joint.last().cloned().unwrap_or_default());
    }
    let ready: Vec<NodeId> = membership
        .learner_ids()
        .filter(|l| matched.get(l).copied().flatten().is_some_and(|i| i + CAUGHT_UP >= last))
        .collect();
    let voters_now: Vec<NodeId> = membership.voter_ids().collect();
    // A caught-up learner replaces voters that missed a few heartbeats; with none to
    // promote, a voter is dropped only once surely dead and only when the survivors are a
    // full cluster by themselves (a learner promoted before a voter went silent leaves one
    // voter too many, which would otherwise count against every majority).
    let after = if ready.is_empty() { DEAD_AFTER } else { SUSPECT_AFTER };
    let mut silent_now: Vec<NodeId> = voters_now.iter().copied().filter(|v| silent(v, after)).collect();
    // Never below a full cluster (or all the voters and learners there are): a host that
    // delays two of three voters for 1.5 s must not shrink the cluster to two voters
    // around one learner (a review of 2026-12-03). Surely dead voters go first, then the
    // merely silent, in id order.
    let floor = MIN_VOTERS.min(voters_now.len() + ready.len());
    let droppable = (voters_now.len() + ready.len()).saturating_sub(floor);
    silent_now.sort_by_key(|v| (!silent(v, DEAD_AFTER), *v));
    let dead: Vec<NodeId> = silent_now.into_iter().take(droppable).collect();
    if ready.is_empty() && dead.is_empty() {
        return Step::Keep;
    }
    let mut voters: BTreeSet<NodeId> = voters_now.iter().copied().filter(|v| !dead.contains(v)).collect();
    voters.extend(ready.iter().copied());
    Step::Change { voters, ready, dead }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn membership(configs: Vec<BTreeSet<NodeId>>, learners: &[NodeId]) -> Membership<NodeId, Member> {
        let mut nodes = BTreeMap::new();
        for id in configs.iter().flatten().chain(learners) {
            nodes.insert(*id, Member::default());
        }
        Membership::new(configs, nodes)
    }

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_joint_config_is_finished_to_its_last_half_whatever_else_is_pending() {
        // The race behind the rejoin flake: {0} → joint [{0}, {0,1}], and node 2's join
        // landed before the second entry, so 2 is a caught-up learner of a joint config.
        let m = membership(vec![set(&[0]), set(&[0, 1])], &[2]);
        let matched = BTreeMap::from([(1, Some(10)), (2, Some(10))]);
        assert_eq!(plan(&m, 10, &matched, |_, _| false), Step::Finish(set(&[0, 1])));
        // Finished, the learner is promoted next.
        let m = membership(vec![set(&[0, 1])], &[2]);
        assert_eq!(
            plan(&m, 10, &matched, |_, _| false),
            Step::Change { voters: set(&[0, 1, 2]), ready: vec![2], dead: vec![] }
        );
    }

    #[test]
    fn learners_are_promoted_only_once_caught_up() {
        let m = membership(vec![set(&[0])], &[1, 2]);
        let matched = BTreeMap::from([(1, Some(1000 - CAUGHT_UP)), (2, Some(1000 - CAUGHT_UP - 1))]);
        assert_eq!(
            plan(&m, 1000, &matched, |_, _| false),
            Step::Change { voters: set(&[0, 1]), ready: vec![1], dead: vec![] }
        );
        let none = BTreeMap::from([(1, None)]);
        assert_eq!(plan(&m, 1000, &none, |_, _| false), Step::Keep);
    }

    #[test]
    fn a_dead_voter_is_dropped_only_when_a_full_cluster_remains() {
        let dead_2 = |v: &NodeId, after: Duration| *v == 2 && after == DEAD_AFTER;
        let three = membership(vec![set(&[0, 1, 2])], &[]);
        assert_eq!(plan(&three, 5, &BTreeMap::new(), dead_2), Step::Keep);
        let four = membership(vec![set(&[0, 1, 2, 3])], &[]);
        assert_eq!(
            plan(&four, 5, &BTreeMap::new(), dead_2),
            Step::Change { voters: set(&[0, 1, 3]), ready: vec![], dead: vec![2] }
        );
    }

    #[test]
    fn a_suspect_voter_is_replaced_by_a_caught_up_learner() {
        let suspect_2 = |v: &NodeId, after: Duration| *v == 2 && after == SUSPECT_AFTER;
        let m = membership(vec![set(&[0, 1, 2])], &[3]);
        let matched = BTreeMap::from([(3, Some(5))]);
        assert_eq!(
            plan(&m, 5, &matched, suspect_2),
            Step::Change { voters: set(&[0, 1, 3]), ready: vec![3], dead: vec![2] }
        );
    }

    #[test]
    fn suspects_are_replaced_one_for_one_never_below_a_full_cluster() {
        // Two of three voters delayed for 1.5 s beside one caught-up learner: one is replaced,
        // the cluster keeps three voters (it used to drop both and keep two).
        let suspects = |v: &NodeId, after: Duration| (*v == 1 || *v == 2) && after == SUSPECT_AFTER;
        let m = membership(vec![set(&[0, 1, 2])], &[3]);
        let matched = BTreeMap::from([(3, Some(5))]);
        assert_eq!(
            plan(&m, 5, &matched, suspects),
            Step::Change { voters: set(&[0, 2, 3]), ready: vec![3], dead: vec![1] }
        );
        // A surely dead voter goes before a merely silent one.
        let one_dead = |v: &NodeId, after: Duration| *v == 2 || (*v == 1 && after == SUSPECT_AFTER);
        assert_eq!(
            plan(&m, 5, &matched, one_dead),
            Step::Change { voters: set(&[0, 1, 3]), ready: vec![3], dead: vec![2] }
        );
        // Two learners replace both.
        let m = membership(vec![set(&[0, 1, 2])], &[3, 4]);
        let matched = BTreeMap::from([(3, Some(5)), (4, Some(5))]);
        assert_eq!(
            plan(&m, 5, &matched, suspects),
            Step::Change { voters: set(&[0, 3, 4]), ready: vec![3, 4], dead: vec![1, 2] }
        );
    }
}
