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

/// A learner that answered nothing for this long is forgotten. A live one answers every
/// append within the heartbeat and every snapshot chunk (4 MiB) within its 5 s timeout; a
/// node still joining that was forgotten asks again (every 10 s without the state). Without
/// this, every boot of an enclave that never caught up stayed a member for good, each one a
/// replication stream on the leader, re-sending the state (a review of 2026-12-06).
pub const LEARNER_DEAD_AFTER: Duration = Duration::from_secs(30);

/// The most learners a cluster holds at once. A join beyond it first forgets the
/// longest-silent learner that has been silent [`SUSPECT_AFTER`]; if none has, it is
/// refused (the node asks again).
pub const MAX_LEARNERS: usize = 8;

/// What the leader does next with the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to change.
    Keep,
    /// The config is joint: finish it with these voters (its last half).
    Finish(BTreeSet<NodeId>),
    /// Change the voters: promote `ready` learners, drop `dead` voters.
    Change { voters: BTreeSet<NodeId>, ready: Vec<NodeId>, dead: Vec<NodeId> },
    /// Forget these learners: silent for [`LEARNER_DEAD_AFTER`].
    Forget(BTreeSet<NodeId>),
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
        // The voters stay: learners that stopped answering go (one entry, voters unchanged).
        let gone: BTreeSet<NodeId> = membership.learner_ids().filter(|l| silent(l, LEARNER_DEAD_AFTER)).collect();
        return if gone.is_empty() { Step::Keep } else { Step::Forget(gone) };
    }
    let mut voters: BTreeSet<NodeId> = voters_now.iter().copied().filter(|v| !dead.contains(v)).collect();
    voters.extend(ready.iter().copied());
    Step::Change { voters, ready, dead }
}

/// A learner whose log has not advanced for this long may make room for a join when the
/// learners are at [`MAX_LEARNERS`]: one that answers but never catches up (its host relays
/// heartbeats and drops the state) would otherwise hold its place for good.
pub const LEARNER_STALLED_AFTER: Duration = Duration::from_secs(120);

/// How long a learner has been silent and how long its log has not advanced, as the leader
/// knows them.
pub struct Learners<S: Fn(&NodeId) -> Duration, P: Fn(&NodeId) -> Duration> {
    pub silence: S,
    pub stalled: P,
}

/// The learners to forget before `joining` (at `url`) is added as one, or why it cannot be
/// added now. A host serves one node at a URL, so a learner at `url` silent for
/// [`SUSPECT_AFTER`] is its earlier boot: forgotten (one that answers is left: anyone may
/// name any URL, and a live learner answers every heartbeat). Then, with [`MAX_LEARNERS`]
/// other learners already, the one that has been silent longest goes if silent for
/// [`SUSPECT_AFTER`], else the one stalled longest if for [`LEARNER_STALLED_AFTER`]; if
/// none qualifies the join is refused. Voters are never touched here (the upkeep replaces a
/// dead voter once a learner caught up).
pub fn make_room<S, P>(
    membership: &Membership<NodeId, Member>,
    joining: NodeId,
    url: &str,
    l: &Learners<S, P>,
) -> Result<BTreeSet<NodeId>, String>
where
    S: Fn(&NodeId) -> Duration,
    P: Fn(&NodeId) -> Duration,
{
    let url = url.trim_end_matches('/');
    let at_url = |id: &NodeId| membership.get_node(id).is_some_and(|m| m.peer_url.trim_end_matches('/') == url);
    let mut gone: BTreeSet<NodeId> = membership
        .learner_ids()
        .filter(|id| *id != joining && at_url(id) && (l.silence)(id) >= SUSPECT_AFTER)
        .collect();
    let others: Vec<NodeId> = membership.learner_ids().filter(|id| *id != joining && !gone.contains(id)).collect();
    if others.len() < MAX_LEARNERS {
        return Ok(gone);
    }
    let excess = others.len() + 1 - MAX_LEARNERS;
    // Silent ones first, longest first; then stalled ones, longest first (then by id: the
    // same choice on every run).
    let mut candidates: Vec<(u8, Duration, NodeId)> = others
        .iter()
        .filter_map(|id| {
            let (quiet, stuck) = ((l.silence)(id), (l.stalled)(id));
            if quiet >= SUSPECT_AFTER {
                Some((0, quiet, *id))
            } else if stuck >= LEARNER_STALLED_AFTER {
                Some((1, stuck, *id))
            } else {
                None
            }
        })
        .collect();
    if candidates.len() < excess {
        return Err(format!(
            "the cluster has {} learners joining (at most {MAX_LEARNERS}), all answering and catching up; ask again",
            others.len()
        ));
    }
    candidates.sort_by_key(|(kind, d, id)| (*kind, std::cmp::Reverse(*d), *id));
    gone.extend(candidates.into_iter().take(excess).map(|(_, _, id)| id));
    Ok(gone)
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

    fn at(urls: &[(NodeId, &str)], voters: &[NodeId]) -> Membership<NodeId, Member> {
        let nodes = urls
            .iter()
            .map(|(id, u)| (*id, Member { peer_url: u.to_string(), ..Member::default() }))
            .collect::<BTreeMap<_, _>>();
        Membership::new(vec![set(voters)], nodes)
    }

    #[test]
    fn silent_learners_are_forgotten_and_answering_ones_kept() {
        let m = membership(vec![set(&[0, 1, 2])], &[3, 4]);
        let dead_3 = |v: &NodeId, after: Duration| *v == 3 && after <= LEARNER_DEAD_AFTER;
        assert_eq!(plan(&m, 500, &BTreeMap::new(), dead_3), Step::Forget(set(&[3])));
        // Silent, but not yet for LEARNER_DEAD_AFTER: kept.
        let quiet_3 = |v: &NodeId, after: Duration| *v == 3 && after < LEARNER_DEAD_AFTER;
        assert_eq!(plan(&m, 500, &BTreeMap::new(), quiet_3), Step::Keep);
        // A promotion comes first; the learner is forgotten at a later upkeep.
        let matched = BTreeMap::from([(4, Some(500))]);
        assert_eq!(
            plan(&m, 500, &matched, dead_3),
            Step::Change { voters: set(&[0, 1, 2, 4]), ready: vec![4], dead: vec![] }
        );
        // Voters are never forgotten this way (only dropped when dead and replaceable).
        let all_dead = |_: &NodeId, _: Duration| true;
        let three = membership(vec![set(&[0, 1, 2])], &[]);
        assert_eq!(plan(&three, 5, &BTreeMap::new(), all_dead), Step::Keep);
    }

    #[test]
    fn a_join_forgets_its_hosts_earlier_boots_and_keeps_the_learners_bounded() {
        let zero = |_: &NodeId| Duration::ZERO;
        let quiet = Learners { silence: zero, stalled: zero };
        let silent_3 =
            Learners { silence: |l: &NodeId| if *l == 3 { SUSPECT_AFTER } else { Duration::ZERO }, stalled: zero };
        // Node 9 joins at the URL of learner 3 (the same host, booted again) and of voter 0.
        let m = at(&[(0, "http://a"), (1, "http://b"), (2, "http://c"), (3, "http://a/"), (4, "http://d")], &[0, 1, 2]);
        assert_eq!(make_room(&m, 9, "http://a", &silent_3), Ok(set(&[3])));
        // A learner at that URL that answers is left: anyone can name any URL (a review).
        assert_eq!(make_room(&m, 9, "http://a", &quiet), Ok(set(&[])));
        // Asking again (already a learner) forgets nothing.
        assert_eq!(make_room(&m, 3, "http://a", &silent_3), Ok(set(&[])));
        // MAX_LEARNERS learners elsewhere, all answering and catching up: refused.
        let mut urls: Vec<(NodeId, String)> = (0..3).map(|i| (i, format!("http://v{i}"))).collect();
        urls.extend((10..10 + MAX_LEARNERS as u64).map(|i| (i, format!("http://l{i}"))));
        let refs: Vec<(NodeId, &str)> = urls.iter().map(|(i, u)| (*i, u.as_str())).collect();
        let full = at(&refs, &[0, 1, 2]);
        assert!(make_room(&full, 99, "http://new", &quiet).unwrap_err().contains("learners joining"));
        // One of them silent past SUSPECT_AFTER (and another less so): the longest silent goes.
        let some = Learners {
            silence: |l: &NodeId| match l {
                12 => SUSPECT_AFTER * 4,
                14 => SUSPECT_AFTER * 2,
                _ => Duration::ZERO,
            },
            stalled: |l: &NodeId| if *l == 13 { LEARNER_STALLED_AFTER * 9 } else { Duration::ZERO },
        };
        assert_eq!(make_room(&full, 99, "http://new", &some), Ok(set(&[12])));
        // Silent, but not for SUSPECT_AFTER: refused still.
        let short =
            Learners { silence: |l: &NodeId| if *l == 12 { SUSPECT_AFTER / 2 } else { Duration::ZERO }, stalled: zero };
        assert!(make_room(&full, 99, "http://new", &short).is_err());
        // None silent, one answering but stalled past LEARNER_STALLED_AFTER: it goes (a
        // host relaying heartbeats and dropping the state held its place for good).
        let stuck = Learners {
            silence: zero,
            stalled: |l: &NodeId| if *l == 15 { LEARNER_STALLED_AFTER } else { Duration::ZERO },
        };
        assert_eq!(make_room(&full, 99, "http://new", &stuck), Ok(set(&[15])));
        let catching_up = Learners {
            silence: zero,
            stalled: |l: &NodeId| if *l == 15 { LEARNER_STALLED_AFTER / 2 } else { Duration::ZERO },
        };
        assert!(make_room(&full, 99, "http://new", &catching_up).is_err());
        // A join at a full cluster's silent learner's URL replaces it: no more room needed.
        let silent_15 =
            Learners { silence: |l: &NodeId| if *l == 15 { SUSPECT_AFTER } else { Duration::ZERO }, stalled: zero };
        assert_eq!(make_room(&full, 99, "http://l15", &silent_15), Ok(set(&[15])));
    }
}
