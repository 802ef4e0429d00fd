//! Which decision rules a node runs, and what a node does with an entry decided under
//! others (ATTESTATION.md, "Cluster and upgrades"; SECURITY.md, "A rolling upgrade across
//! a change of the decision rules").
//!
//! Every node runs its own image's decision core over the same entries
//! ([`crate::apply`]). Two images whose rules differ ([`RULES_VERSION`]) would decide the
//! same request differently and part their states: the older image's replicas would hold
//! fewer charges or registry items than the leader signed for, and after a failover the
//! caps would count less than was signed. So each member records the rules it runs (it
//! says so itself, inside its attested channel, when it joins), each entry the rules of the
//! node that proposed it, and:
//!
//! * **While the membership mixes rules**, every entry that decides (signing and approvals
//!   of held requests are decided by the rules; creations and policy updates compile
//!   policies; sweeps) is refused when applied, on every node alike (`unavailable`, rule
//!   [`MIXED_RULE`]), nothing changed. What decides alike on every release goes on:
//!   revocations, denials of held requests, `allow_image`.
//! * **No downgrade**: a node of rules older than a member's does not join ([`may_join`]).
//! * **A node never applies an entry that decides under other rules** than its own: a node
//!   of new rules joining a cluster of old ones would replay the entries its log still
//!   holds from before it joined. It refuses to take such entries into its log
//!   ([`appendable`]); the leader that admitted it takes a snapshot and drops those
//!   entries ([`super::node`], `on_join`), and the node starts from the snapshot. If such
//!   an entry reaches the state machine anyway, the node stops rather than apply it (it then
//!   answers nothing more, and is dropped like a dead node).
//!
//! Rules version 0 is a node or entry of an image from before rules versions: it names no
//! version, and what is mixed is judged on the versions the members and the entry name.
//! Those images do not check, so the upgrade onto the first image that checks is as before
//! it: hold signing and policy changes while both images apply entries.

use super::types::{Cmd, Member, NodeId, Op};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::Call;

pub use bridle_common::policy::RULES_VERSION;

/// The rule a refusal while the membership mixes rules names.
pub const MIXED_RULE: &str = "cluster.rules_version";

/// Whether applying `op` runs the decision rules (see the module docs).
pub fn decides(op: &Op) -> bool {
    match op {
        Op::Init { .. } | Op::AllowImage { .. } => false,
        Op::CreateSession { .. } | Op::UpdatePolicy { .. } => true,
        Op::Call(c) => match c.as_ref() {
            Call::Revoke(_) | Call::RevokeAll(_) | Call::DenyPending(_) => false,
            Call::SignIfAllowed(_)
            | Call::ApprovePending(_)
            | Call::Sweep(_)
            | Call::UpdatePolicy(_)
            | Call::CreateSession(_)
            | Call::AllowImage(_)
            | Call::Status(_)
            | Call::Audit(_)
            | Call::Attest(_)
            | Call::Cluster(_) => true,
        },
    }
}

/// Whether two rules versions decide alike (0: an image from before versions, which
/// matches every one).
pub fn alike(a: u32, b: u32) -> bool {
    a == b || a == 0 || b == 0
}

/// What a node does with an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Apply it.
    Apply,
    /// Refuse it, changing nothing (every node alike).
    Refuse(Denial),
    /// This node cannot decide it as its proposer did: it must not apply it.
    Cannot(String),
}

/// What a node running `own` rules does with `cmd`, applied while the membership is
/// `members` (the membership at the entry's place in the log: every node alike).
pub fn verdict<'a>(cmd: &Cmd, own: u32, members: impl IntoIterator<Item = &'a Member>) -> Verdict {
    if !decides(&cmd.op) {
        return Verdict::Apply;
    }
    // The versions the members and the entry name (0 names none). Judged on all of them, not
    // on the proposer's against each member's: a version-0 proposer (which matches every
    // version) would otherwise have nodes of two versions each apply its entry under their own
    // rules (a review of 2026-12-07).
    // The lowest and highest of them (no allocation: this runs for every applied entry).
    let named = members.into_iter().map(|m| m.rules).chain([cmd.rules]).filter(|r| *r != 0);
    let span =
        named.fold(None, |span: Option<(u32, u32)>, r| Some(span.map_or((r, r), |(lo, hi)| (lo.min(r), hi.max(r)))));
    match span {
        None => Verdict::Apply,
        Some((v, last)) if v == last && alike(v, own) => Verdict::Apply,
        Some((v, last)) if v == last => Verdict::Cannot(format!(
            "an entry decided under rules version {v} reached a node of version {own}: not applied (the node stops, and is dropped from the cluster as a dead node)"
        )),
        Some((first, last)) => Verdict::Refuse(Denial::rule(
            ErrorCode::Unavailable,
            MIXED_RULE,
            format!(
                "the cluster's nodes run different decision rules (versions {first} to {last}: a rolling upgrade across a change of them): signing, approvals, sweeps, creations and policy updates wait until every node runs the same; revocations go on. Nothing was changed"
            ),
        )),
    }
}

/// Whether a node running `rules` may join a cluster whose members run `members`: not one
/// older than a member's (no downgrade: a host starting a node of an earlier release, which
/// the release signer still admits, would hold the cluster's signing for as long as it runs,
/// a review of 2026-12-07), nor one from before versions once a member has one.
pub fn may_join<'a>(rules: u32, members: impl IntoIterator<Item = &'a Member>) -> Result<(), String> {
    match members.into_iter().map(|m| m.rules).max() {
        Some(newest) if rules < newest => Err(format!(
            "the node runs decision rules version {rules}, older than the cluster's {newest}: a cluster is never downgraded"
        )),
        _ => Ok(()),
    }
}

/// Whether a node running `own` rules, whose log's membership is `members` before the
/// first entry, takes `entries` into its log: not if one of them decides under rules other
/// than its own while the membership before it does not mix rules — it could never apply
/// it (see the module docs). Membership entries among `entries` count from their place.
pub fn appendable(
    entries: &[super::types::Entry],
    own: u32,
    mut members: Vec<Member>,
    me: NodeId,
) -> Result<(), String> {
    for e in entries {
        match &e.payload {
            openraft::EntryPayload::Membership(m) => members = m.nodes().map(|(_, n)| n.clone()).collect(),
            openraft::EntryPayload::Normal(cmd) => {
                if let Verdict::Cannot(_) = verdict(cmd, own, &members) {
                    return Err(format!(
                        "node {me} runs decision rules version {own}; entry {} was decided under version {} before this node's rules were in the membership: this node starts from a snapshot",
                        e.log_id.index, cmd.rules
                    ));
                }
            }
            openraft::EntryPayload::Blank => {}
        }
    }
    Ok(())
}

/// Whether to log a refused append now: once every 10 s at most (the leader asks again
/// until it sends the snapshot).
pub fn say_now() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    now >= last.saturating_add(10) && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::types::{Entry, Secret};
    use super::*;
    use bridle_common::protocol::{OwnerAuth, Revoke};

    fn member(rules: u32) -> Member {
        Member { rules, ..Member::default() }
    }

    fn revoke() -> Op {
        let auth = OwnerAuth { owner: Default::default(), nonce: 0, signature: Default::default() };
        Op::Call(Box::new(Call::Revoke(Revoke { session: Default::default(), auth })))
    }

    fn deciding() -> Op {
        // A call that decides (as a plain call it is refused anyway: only its kind matters).
        Op::Call(Box::new(Call::Status(bridle_common::protocol::StatusQuery {
            session: None,
            nonce: None,
            held: None,
        })))
    }

    fn cmd(op: Op, rules: u32) -> Cmd {
        Cmd { proposer: 1, clock: 0, rules, op }
    }

    fn entry(index: u64, payload: openraft::EntryPayload<super::super::types::TypeConfig>) -> Entry {
        Entry { log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), index), payload }
    }

    /// One rules version everywhere: everything applies. Mixed: every entry that decides is
    /// refused on every node alike, whoever proposed it; revocations go on.
    #[test]
    fn a_membership_of_mixed_rules_refuses_what_decides() {
        let uniform = [member(2), member(2)];
        let mixed = [member(2), member(3)];
        assert_eq!(verdict(&cmd(deciding(), 2), 2, &uniform), Verdict::Apply);
        for (own, by) in [(2, 2), (3, 3), (2, 3), (3, 2)] {
            let Verdict::Refuse(d) = verdict(&cmd(deciding(), by), own, &mixed) else { panic!("{own} {by}") };
            assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::Unavailable, Some(MIXED_RULE)), "{d:?}");
            assert_eq!(verdict(&cmd(revoke(), by), own, &mixed), Verdict::Apply);
        }
        let init = Op::Init { identity: Secret([1; 32]), booted_at: 0 };
        assert_eq!(verdict(&cmd(init, 3), 2, &uniform), Verdict::Apply);
    }

    /// A node of other rules than a uniform membership's never applies what decides.
    #[test]
    fn a_node_of_other_rules_cannot_apply_a_uniform_clusters_decision() {
        let uniform = [member(2), member(2)];
        assert!(matches!(verdict(&cmd(deciding(), 2), 3, &uniform), Verdict::Cannot(_)));
        assert_eq!(verdict(&cmd(revoke(), 2), 3, &uniform), Verdict::Apply);
    }

    /// Version 0 (an image from before versions) matches every version: that image does
    /// not check, so nodes that do apply as before.
    #[test]
    fn version_zero_matches_every_version() {
        assert_eq!(verdict(&cmd(deciding(), 0), 2, &[member(2), member(0)]), Verdict::Apply);
        assert_eq!(verdict(&cmd(deciding(), 2), 2, &[member(0), member(2)]), Verdict::Apply);
        assert_eq!(verdict(&cmd(deciding(), 2), 0, &[member(2)]), Verdict::Apply);
    }

    /// A version-0 proposer (an image from before versions) in a membership of two named
    /// versions: refused on every node (a review of 2026-12-07 found it applied by the nodes
    /// of both versions, each under its own rules, as 0 matched each).
    #[test]
    fn a_version_zero_proposer_among_two_versions_is_refused() {
        let members = [member(0), member(0), member(2), member(3)];
        for own in [0, 2, 3] {
            assert!(matches!(verdict(&cmd(deciding(), 0), own, &members), Verdict::Refuse(_)), "{own}");
        }
        assert_eq!(verdict(&cmd(deciding(), 0), 2, &[member(0), member(2)]), Verdict::Apply);
    }

    /// No downgrade: a node older than a member does not join; the same or newer does, and
    /// so does anything into a cluster from before versions.
    #[test]
    fn a_node_older_than_a_member_does_not_join() {
        let members = [member(0), member(2), member(3)];
        assert!(may_join(2, &members).unwrap_err().contains("older than the cluster's 3"));
        assert!(may_join(0, &members).is_err());
        assert!(may_join(3, &members).is_ok() && may_join(4, &members).is_ok());
        assert!(may_join(1, &[member(0)]).is_ok() && may_join(0, &[]).is_ok());
    }

    /// A joining node of new rules takes no entry decided before its rules were in the
    /// membership; from the membership entry that names it on, it takes everything (those
    /// entries are refused when applied, on every node alike).
    #[test]
    fn a_joiner_takes_no_entry_it_could_not_apply() {
        use openraft::EntryPayload::{Membership as M, Normal};
        let old = vec![member(2)];
        let before = [entry(5, Normal(cmd(deciding(), 2)))];
        assert!(appendable(&before, 3, old.clone(), 9).unwrap_err().contains("entry 5"));
        assert!(appendable(&before, 2, old.clone(), 9).is_ok());
        let joined: std::collections::BTreeMap<NodeId, Member> = [(1, member(2)), (9, member(3))].into();
        let m = openraft::Membership::new(vec![[1].into()], joined);
        let after = [entry(6, M(m)), entry(7, Normal(cmd(deciding(), 2))), entry(8, Normal(cmd(revoke(), 2)))];
        assert!(appendable(&after, 3, old.clone(), 9).is_ok());
        let both: Vec<Entry> = before.iter().cloned().chain(after.iter().cloned()).collect();
        assert!(appendable(&both, 3, old, 9).is_err());
    }
}
