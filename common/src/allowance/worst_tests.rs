//! The worst case against a brute-force enumeration of every history (RULES.md §6), on
//! many small random registries, plus the cases the security review named.

use super::*;
use crate::allowance::registry::{AccountLane, Positions, Via};
use crate::allowance::{usable, CHAIN_TIME_SLACK};
use alloy_primitives::Address;

const SESSION: Address = Address::repeat_byte(0x5e);
const ACCOUNT: Address = Address::repeat_byte(0xac);
const TOKEN: Address = Address::repeat_byte(0x70);

fn key(holder: Address, spender: u8, kind: AllowanceKind) -> Key {
    Key { chain_id: 1, holder, token: TOKEN, spender: Address::repeat_byte(spender), kind }
}

/// The random worlds' unit of time: ten seconds, so that [`CHAIN_TIME_SLACK`] (60 s) decides
/// some of their deadlines and not all.
const TICK: u64 = 10;

fn grant(key: Key, op: GrantOp, end: Option<u64>) -> Grant {
    Grant { key, op, end, token_index: None, via: Via("approve"), nonce: None }
}

/// A Permit2 allowance permit's write: `v` until `end`, at Permit2 nonce `nonce`.
fn permit(k: Key, v: u64, end: Option<u64>, nonce: u64) -> Grant {
    Grant { nonce: Some(nonce), ..grant(k, GrantOp::Set(U256::from(v)), end) }
}

/// `invalidateNonces(token, spender, n)`.
fn inval(k: Key, n: u64) -> Grant {
    grant(k, GrantOp::Invalidate(n), None)
}

fn set(k: Key, v: u64) -> Grant {
    grant(k, GrantOp::Set(U256::from(v)), None)
}

fn add(k: Key, v: u64) -> Grant {
    grant(k, GrantOp::Add(U256::from(v)), None)
}

fn own(n: u64) -> Place {
    Place::Own { chain_id: 1, nonce: n }
}

fn rec(r: &mut Registry, place: Place, at: u64, grants: Vec<Grant>) {
    r.record(place, at, grants, false, false, |_| ("T".into(), 0, u64::MAX)).unwrap();
}

fn rec_low_gas(r: &mut Registry, place: Place, at: u64, grants: Vec<Grant>) {
    r.record(place, at, grants, false, true, |_| ("T".into(), 0, u64::MAX)).unwrap();
}

fn w(r: &Registry, k: &Key, now: u64, req: Option<(Place, &[Grant])>) -> u64 {
    let v = worst(r, k, now, req.map(|(place, grants)| Request { place, grants, may_revert: false }));
    u64::try_from(v).unwrap()
}

#[test]
fn a_revocation_that_may_run_out_of_gas_forces_nothing() {
    // Review (issue 14): `approve(s, 0)` signed with 22 500 gas is mined, runs out of gas and
    // consumes its nonce; the approval stays. A later transaction needs the nonce filled,
    // not the revocation applied.
    let a = key(SESSION, 0xa, AllowanceKind::Erc20);
    let b = key(SESSION, 0xb, AllowanceKind::Erc20);
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    rec_low_gas(&mut r, own(1), 2, vec![set(a, 0)]);
    let tb = [set(b, 1000)];
    assert_eq!(w(&r, &a, 3, Some((own(2), &tb))), 1000, "the revocation may have run out of gas");
    let ta = [add(a, 500)];
    assert_eq!(w(&r, &a, 3, Some((own(2), &ta))), 1500, "increaseAllowance adds to what may be left");
    // With enough gas the same revocation forces the reset.
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    rec(&mut r, own(1), 2, vec![set(a, 0)]);
    assert_eq!(w(&r, &a, 3, Some((own(2), &ta))), 500);
    // The request itself: a revocation that may run out of gas leaves the approval at worst.
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    let low = |g: &[Grant]| worst(&r, &a, 3, Some(Request { place: own(1), grants: g, may_revert: true }));
    assert_eq!(low(&[set(a, 0)]), U256::from(1000));
    assert_eq!(low(&[set(a, 10)]), U256::from(1000));
}

#[test]
fn a_revocation_sharing_a_nonce_with_the_approval_counts_for_nothing() {
    let a = key(SESSION, 0xa, AllowanceKind::Erc20);
    let b = key(SESSION, 0xb, AllowanceKind::Erc20);
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    rec(&mut r, own(0), 2, vec![set(a, 0)]);
    let tb = [set(b, 1000)];
    assert_eq!(w(&r, &a, 3, Some((own(1), &tb))), 1000, "A is outstanding when B (nonce 1) takes effect");
    assert_eq!(w(&r, &b, 3, Some((own(1), &tb))), 1000);
    // A revocation at its own nonce counts once a later transaction needs it mined.
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    rec(&mut r, own(1), 2, vec![set(a, 0)]);
    assert_eq!(w(&r, &a, 3, Some((own(2), &tb))), 0);
    assert_eq!(w(&r, &a, 3, Some((own(1), &tb))), 1000, "B at nonce 1 replaces the revocation");
    assert_eq!(w(&r, &a, 3, None), 1000, "without a later transaction the revocation may never be mined");
    // A write-less transaction at the revocation's nonce breaks it too.
    r.record(own(1), 2, vec![], false, false, |_| unreachable!()).unwrap();
    assert_eq!(w(&r, &a, 3, Some((own(2), &tb))), 1000);
}

#[test]
fn increase_allowance_builds_on_the_worst_base() {
    let a = key(SESSION, 0xa, AllowanceKind::Erc20);
    let mut r = Registry::default();
    rec(&mut r, own(0), 1, vec![set(a, 1000)]);
    rec(&mut r, own(0), 2, vec![set(a, 0)]);
    let inc = [add(a, 1000)];
    assert_eq!(w(&r, &a, 3, Some((own(1), &inc))), 2000);
}

#[test]
fn a_permit_is_cleared_only_by_a_revocation_signed_after_its_deadline() {
    let a = key(SESSION, 0xa, AllowanceKind::Erc20);
    let b = key(SESSION, 0xb, AllowanceKind::Erc20);
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![set(a, 500)]);
    rec(&mut r, own(0), 50, vec![set(a, 0)]);
    let tb = [set(b, 1)];
    assert_eq!(w(&r, &a, 60, Some((own(1), &tb))), 500, "the permit may be used after the revocation is mined");
    // Signed at the deadline, or within CHAIN_TIME_SLACK after it, the revocation may be
    // mined in a block stamped no later than the deadline, after the permit (a review of
    // 2026-12-04: both revert only past `block.timestamp > deadline`).
    for (signed, worst) in [(100, 500), (100 + CHAIN_TIME_SLACK, 500), (101 + CHAIN_TIME_SLACK, 0)] {
        let mut r = Registry::default();
        rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![set(a, 500)]);
        rec(&mut r, own(0), signed, vec![set(a, 0)]);
        assert_eq!(w(&r, &a, signed + 10, Some((own(1), &tb))), worst, "revocation signed at {signed}");
    }
}

/// A review of the slack (2026-12-04): a revocation signed 30 s after the permit's deadline
/// may be mined before it, so an `increaseAllowance` after the revocation adds to the
/// permit's 500 — the run of adds after a floating set honours the slack too.
#[test]
fn adds_after_a_revocation_within_the_slack_add_to_the_permit() {
    let a = key(SESSION, 0xa, AllowanceKind::Erc20);
    let inc = [add(a, 200)];
    // Past the slack the permit comes before the revocation or never: 200 after the add,
    // or the permit's 500 alone in a history where the session's transactions are not mined.
    for (revoked_at, worst, signed) in [(130, 700, 700), (101 + CHAIN_TIME_SLACK, 200, 500)] {
        let mut r = Registry::default();
        rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![set(a, 500)]);
        rec(&mut r, own(0), revoked_at, vec![set(a, 0)]);
        // As a request at the next nonce, and as what is signed (no request: a status).
        assert_eq!(w(&r, &a, revoked_at + 5, Some((own(1), &inc))), worst, "revoked at {revoked_at}");
        rec(&mut r, own(1), revoked_at + 5, inc.to_vec());
        assert_eq!(w(&r, &a, revoked_at + 10, None), signed, "revoked at {revoked_at}, no request");
    }
}

#[test]
fn permit2_expiration_zero_lasts_until_the_signature_deadline() {
    let k = key(SESSION, 0xa, AllowanceKind::Permit2 { contract: Address::repeat_byte(2) });
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![grant(k, GrantOp::Set(U256::from(7)), Some(100))]);
    assert_eq!(w(&r, &k, 99, None), 7);
    // Usable while `block.timestamp ≤ deadline`, in a block stamped up to the slack earlier.
    assert_eq!(w(&r, &k, 100 + CHAIN_TIME_SLACK, None), 7);
    assert_eq!(w(&r, &k, 101 + CHAIN_TIME_SLACK, None), 0);
}

/// A review of 2026-12-05: an Arbitrum or OP Stack sequencer may stamp blocks hours behind
/// real time, so off the slotted chains an authority never stops counting at its end, a
/// permit may follow what was signed after its deadline, and nothing ended is forgotten.
#[test]
fn off_the_slotted_chains_ends_and_deadlines_bind_nothing() {
    let on = |chain_id: u64| Key {
        chain_id,
        ..key(SESSION, 0xa, AllowanceKind::Permit2 { contract: Address::repeat_byte(2) })
    };
    for (chain, later) in [(1u64, 0u64), (42_161, 7), (10, 7), (8453, 7), (31_337, 7)] {
        let k = on(chain);
        let mut r = Registry::default();
        rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![grant(k, GrantOp::Set(U256::from(7)), Some(100))]);
        assert_eq!(w(&r, &k, 10_000, None), later, "chain {chain}");
        // Where it can never be forgotten, it prepays its revocations like any approval.
        let want = if later == 0 { 0 } else { crate::allowance::PREPAID_PER_APPROVAL };
        assert_eq!(r.prepaid(), want, "chain {chain}");
        r.prune(10_000);
        assert_eq!(r.items.len(), usize::from(later != 0), "chain {chain}: forgotten only where it ended");
    }
    // An EIP-2612 permit (deadline 100) after a revocation signed at 1 000: only where the
    // chain's slack is unknown can the permit still come after it.
    for (chain, worst) in [(1u64, 0u64), (42_161, 500)] {
        let a = Key { chain_id: chain, ..key(SESSION, 0xa, AllowanceKind::Erc20) };
        let mut r = Registry::default();
        rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![set(a, 500)]);
        rec(&mut r, Place::Own { chain_id: chain, nonce: 0 }, 1_000, vec![set(a, 0)]);
        let inc = [add(a, 0)];
        assert_eq!(w(&r, &a, 1_005, Some((Place::Own { chain_id: chain, nonce: 1 }, &inc))), worst, "chain {chain}");
    }
}

/// Off the slotted chains a Permit2 permit's deadline binds nothing, so only cancelling its
/// nonce settles it: `invalidateNonces` above the nonce, certainly mined before the
/// revocation, leaves no history where the permit follows the revocation.
#[test]
fn an_invalidation_mined_before_the_revocation_settles_a_permit() {
    let k = Key { chain_id: 10, ..key(SESSION, 0xa, AllowanceKind::Permit2 { contract: Address::repeat_byte(2) }) };
    let o = |n: u64| Place::Own { chain_id: 10, nonce: n };
    let other = [grant(Key { spender: Address::repeat_byte(0xb), ..k }, GrantOp::Set(U256::from(1)), None)];
    let world = |cancel: Option<Grant>, permit_nonce: u64| {
        let mut r = Registry::default();
        rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![permit(k, 40, Some(200), permit_nonce)]);
        if let Some(c) = cancel {
            rec(&mut r, o(0), 1_000, vec![c]);
        } else {
            r.record(o(0), 1_000, vec![], false, false, |_| unreachable!()).unwrap();
        }
        rec(&mut r, o(1), 1_000, vec![set(k, 0)]);
        r
    };
    let at2 = |r: &Registry| w(r, &k, 5_000, Some((o(2), &other)));
    assert_eq!(at2(&world(Some(inval(k, 1)), 0)), 0, "nonce 0 cancelled before the revocation");
    assert_eq!(at2(&world(None, 0)), 40, "without it the permit may follow the revocation");
    assert_eq!(at2(&world(Some(inval(k, 1)), 1)), 40, "an invalidation to 1 leaves nonce 1 usable");
    // Without a later transaction nothing forces either to be mined.
    assert_eq!(w(&world(Some(inval(k, 1)), 0), &k, 5_000, None), 40);
    // An invalidation that may run out of gas, or shares its nonce with a transaction the
    // agent signed, cancels nothing for certain.
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![permit(k, 40, Some(200), 0)]);
    rec_low_gas(&mut r, o(0), 1_000, vec![inval(k, 1)]);
    rec(&mut r, o(1), 1_000, vec![set(k, 0)]);
    assert_eq!(at2(&r), 40);
    let mut r = world(Some(inval(k, 1)), 0);
    r.record(o(0), 900, vec![], false, false, |_| unreachable!()).unwrap();
    assert_eq!(at2(&r), 40);
    // As the request: the revocation at 1 after the invalidation at 0 settles the key.
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![permit(k, 40, Some(200), 0)]);
    rec(&mut r, o(0), 1_000, vec![inval(k, 1)]);
    assert_eq!(w(&r, &k, 5_000, Some((o(1), &[set(k, 0)]))), 0);
    // In one transaction with another call (a batch), it proves nothing: the batch may
    // revert as a whole.
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![permit(k, 40, Some(200), 0)]);
    rec(&mut r, o(0), 1_000, vec![inval(k, 1), set(Key { spender: Address::repeat_byte(0xb), ..k }, 0)]);
    rec(&mut r, o(1), 1_000, vec![set(k, 0)]);
    assert_eq!(at2(&r), 40);
    // Adds after a reset that follows the invalidation never add to the cancelled permit.
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 100 }, 10, vec![permit(k, 40, Some(200), 0)]);
    rec(&mut r, o(0), 1_000, vec![inval(k, 1)]);
    rec(&mut r, o(1), 1_000, vec![set(k, 0)]);
    rec(&mut r, o(2), 1_000, vec![add(k, 9)]);
    assert_eq!(w(&r, &k, 5_000, None), 40, "the permit before the invalidation, never after the reset");
}

// ---- brute force ------------------------------------------------------------------------

/// A tiny deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Debug)]
struct Alt {
    sigma: u64,
    grants: Vec<Grant>,
}

/// One event of a history: an alternative placed, its lane, and whether it is the request.
#[derive(Clone, Debug)]
struct Ev {
    sigma: u64,
    deadline: Option<u64>,
    grants: Vec<Grant>,
    request: bool,
}

struct World {
    own: BTreeMap<u64, Vec<Alt>>,
    plain: Positions,
    accounts: BTreeMap<AccountLane, BTreeMap<u64, Vec<Alt>>>,
    floating: Vec<(u64, Alt)>,
}

fn apply(v: &mut U256, g: &Grant, k: &Key, now: u64) {
    if g.key != *k {
        return;
    }
    match g.op {
        GrantOp::Set(x) => *v = if g.end.is_some_and(|e| !usable(k.chain_id, e, now)) { U256::ZERO } else { x },
        GrantOp::Add(x) => *v = v.saturating_add(x),
        GrantOp::Invalidate(_) => {}
    }
}

/// Whether a permit among `grants` needs a nonce of `k` below `bound` (Permit2's nonce is
/// at least `bound` once an invalidation to it was mined): it can no longer be used.
fn cancelled_by(grants: &[Grant], k: &Key, bound: u64) -> bool {
    grants.iter().filter(|g| g.key == *k).filter_map(|g| g.nonce).min().is_some_and(|n| n < bound)
}

#[derive(Clone)]
struct State {
    value: U256,
    max_sigma: u64,
    seen_request: bool,
    need_request: bool,
    key: Key,
    now: u64,
    /// The key's Permit2 nonce is at least this (invalidations mined so far).
    bound: u64,
}

impl State {
    fn place(&mut self, ev: &Ev) {
        for g in &ev.grants {
            apply(&mut self.value, g, &self.key, self.now);
        }
        // Permit2's nonce for the key is at least `n` once a lone invalidation to it is
        // mined (an item beside other calls may revert as a whole: it proves nothing).
        if let [Grant { key, op: GrantOp::Invalidate(n), .. }] = ev.grants.as_slice() {
            if *key == self.key {
                self.bound = self.bound.max(*n);
            }
        }
        self.max_sigma = self.max_sigma.max(ev.sigma);
        self.seen_request |= ev.request;
    }
}

/// Every choice of prefix (own lane), subsets (account lanes) and alternatives.
fn brute(wd: &World, k: &Key, now: u64, req: Option<(Place, Vec<Grant>)>) -> U256 {
    let t_ev = req.as_ref().map(|(_, g)| Ev { sigma: now, deadline: None, grants: g.clone(), request: true });
    // Own lane: positions 0..=max, gaps and write-less positions as write-less alternatives.
    let top = wd.own.keys().last().copied().max(wd.plain.max_nonce).map_or(0, |m| m + 1);
    let t_own = match req.as_ref().map(|r| r.0) {
        Some(Place::Own { nonce, .. }) => Some(nonce),
        _ => None,
    };
    let top = top.max(t_own.map_or(0, |n| n + 1));
    let alts_at = |n: u64| -> Vec<Ev> {
        if Some(n) == t_own {
            return vec![t_ev.clone().unwrap()];
        }
        let mut v: Vec<Ev> = wd
            .own
            .get(&n)
            .map(|a| {
                a.iter()
                    .map(|x| Ev { sigma: x.sigma, deadline: None, grants: x.grants.clone(), request: false })
                    .collect()
            })
            .unwrap_or_default();
        if v.is_empty() || wd.plain.contains(n) {
            v.push(Ev { sigma: 0, deadline: None, grants: vec![], request: false });
        }
        v
    };
    let mut own_choices: Vec<Vec<Ev>> = vec![];
    let min_len = t_own.map_or(0, |n| n + 1);
    for len in min_len..=top {
        let mut acc: Vec<Vec<Ev>> = vec![vec![]];
        for n in 0..len {
            let alts = alts_at(n);
            acc =
                acc.into_iter().flat_map(|p| alts.iter().map(move |a| [p.clone(), vec![a.clone()]].concat())).collect();
        }
        own_choices.extend(acc);
    }
    // Account lanes: any subset in order, one alternative per position.
    let t_acct = match req.as_ref().map(|r| r.0) {
        Some(Place::Account { lane, seq }) => Some((lane, seq)),
        _ => None,
    };
    let mut lanes: BTreeMap<AccountLane, Vec<(u64, Vec<Ev>)>> = BTreeMap::new();
    for (lane, pos) in &wd.accounts {
        for (&q, alts) in pos {
            if t_acct == Some((*lane, q)) {
                continue;
            }
            let evs =
                alts.iter().map(|x| Ev { sigma: x.sigma, deadline: None, grants: x.grants.clone(), request: false });
            lanes.entry(*lane).or_default().push((q, evs.collect()));
        }
    }
    if let Some((lane, q)) = t_acct {
        lanes.entry(lane).or_default().push((q, vec![t_ev.clone().unwrap()]));
        lanes.get_mut(&lane).unwrap().sort_by_key(|x| x.0);
    }
    let mut lane_choices: Vec<Vec<Vec<Ev>>> = vec![vec![]];
    for (_, pos) in lanes {
        let mut seqs: Vec<Vec<Ev>> = vec![vec![]];
        for (q, alts) in pos {
            let forced = t_acct.is_some_and(|(_, n)| n == q);
            let mut next = vec![];
            for s in seqs {
                if !forced {
                    next.push(s.clone());
                }
                for a in &alts {
                    next.push([s.clone(), vec![a.clone()]].concat());
                }
            }
            seqs = next;
        }
        lane_choices = lane_choices
            .into_iter()
            .flat_map(|c| seqs.iter().map(move |s| [c.clone(), vec![s.clone()]].concat()))
            .collect();
    }
    let mut floats: Vec<Ev> = wd
        .floating
        .iter()
        .map(|(d, a)| Ev { sigma: a.sigma, deadline: Some(*d), grants: a.grants.clone(), request: false })
        .collect();
    let forced_float = matches!(req.as_ref().map(|r| r.0), Some(Place::Floating { .. }));
    let mut best = U256::ZERO;
    for oc in &own_choices {
        for lc in &lane_choices {
            let mut seqs: Vec<Vec<Ev>> = vec![oc.clone()];
            seqs.extend(lc.iter().cloned());
            if forced_float {
                let (place, g) = req.as_ref().unwrap();
                let d = match place {
                    Place::Floating { deadline } => *deadline,
                    _ => unreachable!(),
                };
                // The request is a permit that is surely included: put it in every
                // order as a one-item sequence of its own.
                seqs.push(vec![Ev { sigma: now, deadline: Some(d), grants: g.clone(), request: true }]);
            }
            let mut idx = vec![0; seqs.len()];
            let mut used = vec![false; floats.len()];
            let mut st = State {
                value: U256::ZERO,
                max_sigma: 0,
                seen_request: false,
                need_request: req.is_some(),
                key: *k,
                now,
                bound: 0,
            };
            best = best.max(interleave_checked(&mut seqs, &mut idx, &mut floats, &mut used, &mut st));
        }
    }
    best
}

/// Every interleaving of `seqs` (each in order) and a subset of `floats`, where a permit
/// never follows anything signed after its deadline: the max value of the key at points at
/// or after the request (anywhere, without one).
fn interleave_checked(
    seqs: &mut [Vec<Ev>],
    idx: &mut [usize],
    floats: &mut [Ev],
    used: &mut [bool],
    st: &mut State,
) -> U256 {
    // A sequence item with a deadline (the floating request) must respect the timing rule:
    // handled by giving it a deadline check in `place_ok`.
    fn go(seqs: &[Vec<Ev>], idx: &mut [usize], floats: &[Ev], used: &mut [bool], st: &mut State) -> U256 {
        let mut best = if st.seen_request || !st.need_request { st.value } else { U256::ZERO };
        for s in 0..seqs.len() {
            if idx[s] < seqs[s].len() {
                let ev = &seqs[s][idx[s]];
                // Deadlines bind by the key's chain (the slack on slotted chains, nothing off them).
                if ev.deadline.is_some_and(|d| {
                    !usable(st.key.chain_id, d, st.max_sigma) || cancelled_by(&ev.grants, &st.key, st.bound)
                }) {
                    continue;
                }
                let saved = st.clone();
                st.place(ev);
                idx[s] += 1;
                best = best.max(go(seqs, idx, floats, used, st));
                idx[s] -= 1;
                *st = saved;
            }
        }
        for f in 0..floats.len() {
            if !used[f]
                && floats[f].deadline.is_none_or(|d| usable(st.key.chain_id, d, st.max_sigma))
                && !cancelled_by(&floats[f].grants, &st.key, st.bound)
            {
                let saved = st.clone();
                st.place(&floats[f]);
                used[f] = true;
                best = best.max(go(seqs, idx, floats, used, st));
                used[f] = false;
                *st = saved;
            }
        }
        best
    }
    go(seqs, idx, floats, used, st)
}

/// The random worlds' two account lanes (one sender, two nonce keys) on `chain`.
fn lanes_on(chain: u64) -> [AccountLane; 2] {
    let lane =
        AccountLane { chain_id: chain, entry_point: Address::repeat_byte(0xe9), sender: ACCOUNT, key: U256::ZERO };
    [lane, AccountLane { key: U256::from(1), ..lane }]
}

/// `k` on `chain`.
fn on(chain: u64, k: Key) -> Key {
    Key { chain_id: chain, ..k }
}

/// A random world on `chain`: the session's own lane writing its keys (and adding to the
/// account's, as a redemption of the account's delegation does), the account's two lanes,
/// and permits.
fn random_world(rng: &mut Rng, kind: AllowanceKind, chain: u64) -> (World, Registry) {
    let holder_own = SESSION;
    let k = on(chain, key(holder_own, 0xa, kind));
    let k2 = on(chain, key(holder_own, 0xb, kind));
    let ka = on(chain, key(ACCOUNT, 0xa, kind));
    let lanes = lanes_on(chain);
    let erc20 = kind == AllowanceKind::Erc20;
    let g = |rng: &mut Rng, keys: &[Key]| -> Vec<Grant> {
        let n = rng.below(3);
        (0..n)
            .map(|_| {
                let key = keys[rng.below(keys.len() as u64) as usize];
                let v = [0, 0, 5, 100, 1000][rng.below(5) as usize];
                let end = if erc20 || rng.below(2) == 0 { None } else { Some(TICK * (15 + rng.below(20))) };
                // Permit2 keys are added to as well: a redemption's `approve` counts as an add.
                if rng.below(3) == 0 {
                    grant(key, GrantOp::Add(U256::from(v)), None)
                } else {
                    grant(key, GrantOp::Set(U256::from(v)), end)
                }
            })
            .collect()
    };
    // (signed at, place, writes, may run out of gas)
    let mut events: Vec<(u64, Place, Vec<Grant>, bool)> = vec![];
    for _ in 0..rng.below(5) {
        let n = rng.below(4);
        let mut grants = g(rng, &[k, k2]);
        // A redemption of the account's delegation: its approvals count as added to the
        // account's key, from the session's own lane (a review of 2026-12-06: no random
        // world wrote one key from both lanes).
        if rng.below(4) == 0 {
            grants.push(grant(ka, GrantOp::Add(U256::from([5u64, 100][rng.below(2) as usize])), None));
        }
        // Permit2: a sweep's invalidateNonces alone (as a sweep signs it), or beside other
        // calls (which proves nothing: the item may revert as a whole).
        if !erc20 {
            let i = inval([k, k2][rng.below(2) as usize], 1 + rng.below(4));
            match rng.below(4) {
                0 | 1 => grants = vec![i],
                2 => grants.insert(0, i),
                _ => {}
            }
        }
        events.push((TICK * rng.below(20), Place::Own { chain_id: chain, nonce: n }, grants, rng.below(4) == 0));
    }
    if rng.below(2) == 0 {
        for _ in 0..rng.below(3) {
            let (lane, q) = (lanes[rng.below(2) as usize], rng.below(3));
            events.push((TICK * rng.below(20), Place::Account { lane, seq: q }, g(rng, &[ka]), false));
        }
    }
    for _ in 0..rng.below(3) {
        let grants: Vec<Grant> = g(rng, &[k, k2])
            .into_iter()
            .filter(|x| matches!(x.op, GrantOp::Set(_)))
            .map(|x| Grant { nonce: (!erc20).then(|| rng.below(4)), ..x })
            .collect();
        if !grants.is_empty() {
            events.push((TICK * rng.below(20), Place::Floating { deadline: TICK * rng.below(40) }, grants, false));
        }
    }
    world_of(events)
}

/// The world and the registry of `events` (signed at, place, writes, may run out of gas).
fn world_of(mut events: Vec<(u64, Place, Vec<Grant>, bool)>) -> (World, Registry) {
    let mut wd =
        World { own: BTreeMap::new(), plain: Positions::default(), accounts: BTreeMap::new(), floating: vec![] };
    let mut reg = Registry::default();
    events.sort_by_key(|e| e.0);
    for (sigma, place, grants, may_revert) in events {
        match place {
            Place::Own { nonce, .. } if grants.is_empty() => {
                wd.plain.insert(nonce);
            }
            Place::Own { nonce, .. } => {
                // Out of gas, it is mined at its nonce and writes nothing (signed at time 0,
                // like every write-less transaction).
                if may_revert {
                    wd.plain.insert(nonce);
                }
                wd.own.entry(nonce).or_default().push(Alt { sigma, grants: grants.clone() })
            }
            Place::Account { lane, seq } => {
                if grants.is_empty() {
                    continue;
                }
                wd.accounts.entry(lane).or_default().entry(seq).or_default().push(Alt { sigma, grants: grants.clone() })
            }
            Place::Floating { deadline } => wd.floating.push((deadline, Alt { sigma, grants: grants.clone() })),
        }
        reg.record(place, sigma, grants, false, may_revert, |_| ("T".into(), 0, u64::MAX)).unwrap();
    }
    (wd, reg)
}

/// Permit2 worlds shaped around a cancellation: a permit, its cancellation, a revocation,
/// adds after it — with random alternatives, gaps and reverts around them — so that where a
/// cancelled permit may sit (before the cancellation, never after) decides the worst case.
#[test]
fn matches_brute_force_around_cancellations() {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let now = 25 * TICK;
    let kind = AllowanceKind::Permit2 { contract: Address::repeat_byte(2) };
    let (k, k2) = (key(SESSION, 0xa, kind), key(SESSION, 0xb, kind));
    for round in 0..1500 {
        let mut events: Vec<(u64, Place, Vec<Grant>, bool)> = vec![];
        let deadline = TICK * (20 + rng.below(30));
        let nonce = rng.below(3);
        events.push((
            TICK * rng.below(5),
            Place::Floating { deadline },
            vec![permit(k, 100, Some(deadline), nonce)],
            false,
        ));
        let c = rng.below(3);
        events.push((TICK * (5 + rng.below(10)), own(c), vec![inval(k, 1 + rng.below(3))], rng.below(6) == 0));
        events.push((TICK * (5 + rng.below(10)), own(c + 1), vec![set(k, [0, 5][rng.below(2) as usize])], false));
        events.push((TICK * (5 + rng.below(10)), own(c + 2), vec![add(k, 9)], false));
        for _ in 0..rng.below(3) {
            let g = match rng.below(4) {
                0 => vec![],
                1 => vec![inval(k, 1 + rng.below(3))],
                2 => vec![add(k, 7)],
                _ => vec![set(k2, 3)],
            };
            events.push((TICK * rng.below(20), own(rng.below(5)), g, rng.below(5) == 0));
        }
        if rng.below(2) == 0 {
            let d = TICK * (20 + rng.below(30));
            events.push((
                TICK * rng.below(15),
                Place::Floating { deadline: d },
                vec![permit(k, 50, Some(d), rng.below(4))],
                false,
            ));
        }
        let (wd, reg) = world_of(events);
        let req = match rng.below(3) {
            0 => None,
            1 => Some((own(rng.below(6)), vec![add(k2, 1)])),
            _ => Some((own(rng.below(6)), vec![inval(k, 1 + rng.below(4))])),
        };
        let fast = worst(&reg, &k, now, req.as_ref().map(|(p, g)| Request { place: *p, grants: g, may_revert: false }));
        let slow = brute(&wd, &k, now, req.clone());
        assert_eq!(fast, slow, "round {round}\nrequest {req:?}\nregistry {:#?}", reg.items());
    }
}

#[test]
fn matches_brute_force_on_random_registries() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let now = 25 * TICK;
    let mut checked = 0;
    for round in 0..3000 {
        let kind = if round % 3 == 0 {
            AllowanceKind::Permit2 { contract: Address::repeat_byte(2) }
        } else {
            AllowanceKind::Erc20
        };
        // One world in four off the slotted chains (OP), where ends and deadlines bind nothing.
        let chain = if round % 4 == 3 { 10 } else { 1 };
        let (wd, reg) = random_world(&mut rng, kind, chain);
        let k = on(chain, key(SESSION, 0xa, kind));
        let ka = on(chain, key(ACCOUNT, 0xa, kind));
        let lanes = lanes_on(chain);
        let own = |n: u64| Place::Own { chain_id: chain, nonce: n };
        let erc20 = kind == AllowanceKind::Erc20;
        let tg = |rng: &mut Rng, kk: Key| -> Vec<Grant> {
            match rng.below(4) {
                0 => vec![],
                1 => vec![set(kk, [0, 7, 300][rng.below(3) as usize])],
                2 => vec![add(kk, 9)],
                _ => vec![set(kk, 0), set(Key { spender: Address::repeat_byte(0xb), ..kk }, 4)],
            }
        };
        let req = match rng.below(5) {
            0 => None,
            1 | 2 => {
                let mut grants = tg(&mut rng, k);
                if !erc20 && rng.below(3) == 0 {
                    grants.insert(0, inval(k, 1 + rng.below(4)));
                }
                Some((own(rng.below(5)), grants))
            }
            3 => Some((Place::Account { lane: lanes[rng.below(2) as usize], seq: rng.below(4) }, tg(&mut rng, ka))),
            _ => {
                let grants: Vec<Grant> = tg(&mut rng, k)
                    .into_iter()
                    .filter(|x| matches!(x.op, GrantOp::Set(_)))
                    .map(|x| Grant { nonce: (!erc20).then(|| rng.below(4)), ..x })
                    .collect();
                Some((Place::Floating { deadline: now + TICK * rng.below(10) }, grants))
            }
        };
        for kk in [k, ka, on(chain, key(SESSION, 0xb, kind))] {
            let fast =
                worst(&reg, &kk, now, req.as_ref().map(|(p, g)| Request { place: *p, grants: g, may_revert: false }));
            let slow = brute(&wd, &kk, now, req.clone());
            // A request that may run out of gas: the histories where it applies and those
            // where it fills its nonce writing nothing.
            if let Some((p @ Place::Own { .. }, g)) = &req {
                let fast_low = worst(&reg, &kk, now, Some(Request { place: *p, grants: g, may_revert: true }));
                let slow_low = slow.max(brute(&wd, &kk, now, Some((*p, vec![]))));
                assert_eq!(fast_low, slow_low, "round {round} (request out of gas), key {kk:?}");
            }
            assert_eq!(fast, slow, "round {round}, key {kk:?}\nrequest {req:?}\nregistry {:#?}", reg.items());
            checked += 1;
        }
    }
    assert_eq!(checked, 9000);
}

/// Found by the brute force around cancellations (2026-12-05), in code older than them: a
/// permit may be used after a reset the session signed at a nonce above the request, and
/// the adds after that reset then build on the permit. An EIP-2612 permit of 100, then
/// `approve(s, 5)` at nonce 2 and `increaseAllowance(s, 9)` at 3, then a request at nonce 1:
/// 109 once all are mined (the permit between 2 and 3), where the worst case said 100 — a
/// request could pass the exposure ceiling by up to the adds after such a reset.
#[test]
fn a_permit_may_follow_a_reset_signed_above_the_request() {
    let k = key(SESSION, 0xa, AllowanceKind::Erc20);
    let k2 = key(SESSION, 0xb, AllowanceKind::Erc20);
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 370 }, 20, vec![set(k, 100)]);
    rec(&mut r, own(2), 140, vec![set(k, 5)]);
    rec(&mut r, own(3), 60, vec![add(k, 9)]);
    let req = [add(k2, 1)];
    assert_eq!(w(&r, &k, 250, Some((own(1), &req))), 109);
    // A smart account's set may come after that reset as well (a review of the fix; no
    // random world writes one key from both lanes).
    let ka = key(ACCOUNT, 0xa, AllowanceKind::Erc20);
    let lane = AccountLane { chain_id: 1, entry_point: Address::repeat_byte(0xe9), sender: ACCOUNT, key: U256::ZERO };
    let mut r = Registry::default();
    rec(&mut r, Place::Account { lane, seq: 0 }, 20, vec![set(ka, 20)]);
    rec(&mut r, own(2), 140, vec![set(ka, 0)]);
    rec(&mut r, own(3), 60, vec![add(ka, 9)]);
    assert_eq!(w(&r, &ka, 250, Some((own(1), &req))), 29);
    // Not when the request itself cancels the permit's nonce: the permit then comes before
    // the request, so before the reset.
    let kp = key(SESSION, 0xa, AllowanceKind::Permit2 { contract: Address::repeat_byte(2) });
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 370 }, 20, vec![permit(kp, 100, Some(2_000), 0)]);
    rec(&mut r, own(2), 140, vec![set(kp, 5)]);
    rec(&mut r, own(3), 60, vec![add(kp, 9)]);
    assert_eq!(w(&r, &kp, 250, Some((own(1), &[inval(kp, 1)]))), 100);
    assert_eq!(w(&r, &kp, 250, Some((own(1), &req))), 109);
    // Not when the permit's deadline passed before the reset was signed (chain 1's slack).
    let mut r = Registry::default();
    rec(&mut r, Place::Floating { deadline: 30 }, 20, vec![set(k, 100)]);
    rec(&mut r, own(2), 140, vec![set(k, 5)]);
    rec(&mut r, own(3), 60, vec![add(k, 9)]);
    assert_eq!(w(&r, &k, 250, Some((own(1), &req))), 100);
}

/// A delegator's key written from both lanes (its user operations, and the session's
/// redemptions of its delegation, which only add), and from two of its lanes (two nonce
/// keys): worlds from a review of 2026-12-06, whose independent enumeration agreed with the
/// worst case on 78 733 random worlds.
#[test]
fn one_key_from_both_lanes_and_from_two_account_lanes() {
    let ka = key(ACCOUNT, 0xa, AllowanceKind::Erc20);
    let [lane, l1] = lanes_on(1);
    let at = |lane: AccountLane, seq: u64| Place::Account { lane, seq };
    let mut r = Registry::default();
    rec(&mut r, at(lane, 0), 20, vec![set(ka, 100)]);
    rec(&mut r, own(0), 30, vec![add(ka, 50)]);
    rec(&mut r, at(lane, 1), 40, vec![set(ka, 0)]);
    rec(&mut r, own(2), 50, vec![add(ka, 7)]);
    assert_eq!(w(&r, &ka, 250, Some((own(1), &[add(ka, 9)]))), 166, "100, then every add");
    assert_eq!(w(&r, &ka, 250, Some((at(lane, 1), &[set(ka, 3)]))), 60, "the request's set, then the own adds");
    assert_eq!(w(&r, &ka, 250, None), 157);

    let mut r = Registry::default();
    rec(&mut r, at(lane, 0), 20, vec![set(ka, 1000)]);
    rec(&mut r, at(lane, 2), 20, vec![add(ka, 7)]);
    rec(&mut r, at(l1, 0), 30, vec![set(ka, 40)]);
    rec(&mut r, at(l1, 1), 30, vec![add(ka, 20)]);
    rec(&mut r, own(0), 30, vec![add(ka, 5)]);
    // The other lane's set may come after the request's: 40 + 20 + 5 + 7.
    assert_eq!(w(&r, &ka, 250, Some((at(lane, 1), &[set(ka, 3)]))), 72);
    assert_eq!(w(&r, &ka, 250, Some((at(lane, 1), &[add(ka, 2)]))), 1034);
    assert_eq!(w(&r, &ka, 250, Some((at(l1, 0), &[set(ka, 3)]))), 1032);
}
