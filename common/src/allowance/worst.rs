//! A key's worst case over every history consistent with what the session signed
//! (RULES.md §6), computed exactly and in time linear in the registry.
//!
//! The value of a key at a point of a history is its last `Set` before the point (0 if
//! none) plus every `Add` after that `Set`. So the worst case is the best choice of a *last
//! set* `s` (or none) that some history can make last, plus every `Add` that history can
//! place after `s`. What limits the choice is what a history must include:
//!
//! * In the lane of the session's own address, a request `T` at nonce `n` can only be
//!   mined after nonces `0..n−1`. A position every alternative of which sets the key (and
//!   at which no write-less transaction was signed) therefore *forces* a reset: `s` must be
//!   at or after the last such position `M` (or `T` itself, when `T` sets the key).
//! * A permit can follow something only if its deadline is not before that was signed; a
//!   floating `s` must follow everything up to `M`.
//! * Smart-account lanes force nothing (other signers may fill their positions), and no
//!   position of another lane is ever forced.
//! * A Permit2 allowance permit of nonce `n` can never follow a position every alternative
//!   of which is an `invalidateNonces` of its key above `n` (Permit2 then holds a nonce
//!   above it for good): a floating `s` cannot be placed after such a position either.
//!   (A batch cancelled through another of its keys is still counted: more histories.)
//!
//! Write-less transactions and positions at which the session signed nothing count as
//! write-less transactions signed at time 0 (they only add histories). A transaction that
//! may run out of gas (below `approvals.revoke_gas`) is also, at its position, a write-less
//! transaction: it forces nothing. The tests below
//! check this against a brute-force enumeration of histories.

use super::registry::{AccountLane, Grant, Key, Place, Registry};
use super::{usable, AllowanceKind, GrantOp};
use alloy_primitives::U256;
use std::collections::BTreeMap;

/// The request being decided: where it would sit, when it is signed (now) and what it
/// writes (nothing, for the figure without its writes).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub place: Place,
    pub grants: &'a [Grant],
    /// It may be mined and write nothing (a transaction below `approvals.revoke_gas`).
    pub may_revert: bool,
}

/// What one item does to the key, net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eff {
    None,
    Add(U256),
    /// Sets it; `total` is the set value (0 if it ended by now) plus adds after it.
    Reset {
        total: U256,
    },
}

impl Eff {
    fn add(self) -> U256 {
        match self {
            Eff::Add(a) => a,
            _ => U256::ZERO,
        }
    }
    fn resets(self) -> bool {
        matches!(self, Eff::Reset { .. })
    }
}

fn effect(grants: &[Grant], key: &Key, now: u64) -> Eff {
    let mut e = Eff::None;
    for g in grants.iter().filter(|g| g.key == *key) {
        e = match (g.op, e) {
            (GrantOp::Set(v), _) => {
                Eff::Reset { total: if g.end.is_some_and(|t| !usable(key.chain_id, t, now)) { U256::ZERO } else { v } }
            }
            (GrantOp::Add(a), Eff::None) => Eff::Add(a),
            (GrantOp::Add(a), Eff::Add(x)) => Eff::Add(x.saturating_add(a)),
            (GrantOp::Add(a), Eff::Reset { total }) => Eff::Reset { total: total.saturating_add(a) },
            (GrantOp::Invalidate(_), e) => e,
        }
    }
    e
}

/// Permit2 nonces of `key` that `grants` cancel once mined: those below `n` when they are
/// one `invalidateNonces(…, n)` of the key, as a sweep signs it (0: none). An item is mined
/// all or none: with another call beside it (which may revert) it cancels nothing for sure.
fn kill_of(grants: &[Grant], key: &Key) -> u64 {
    match grants {
        [Grant { key: k, op: GrantOp::Invalidate(n), .. }] if k == key => *n,
        _ => 0,
    }
}

/// The nonce a permit's writes to `key` need (the lowest, when a batch names the key twice:
/// it fails as a whole once any of them is cancelled); `None`: it cannot be cancelled.
fn permit_nonce(grants: &[Grant], key: &Key) -> Option<u64> {
    grants.iter().filter(|g| g.key == *key).filter_map(|g| g.nonce).min()
}

/// Whether a permit needing `nonce` can no longer be used after something that cancels
/// the nonces below `kill`.
fn cancelled(nonce: Option<u64>, kill: u64) -> bool {
    nonce.is_some_and(|n| n < kill)
}

/// One position of a lane, as far as the key is concerned.
#[derive(Debug, Clone)]
struct Slot {
    /// Candidate last sets: each resetting alternative's total.
    resets: Vec<U256>,
    /// The largest add among alternatives that do not reset the key (a write-less one adds
    /// 0); `None` when every alternative resets it.
    nonreset: Option<U256>,
    /// The earliest signing time among the alternatives (0 for a write-less one).
    min_sigma: u64,
    /// Permit2 nonces of the key every alternative cancels: those below it ([`kill_of`];
    /// 0 for an alternative that cancels nothing).
    kill: u64,
}

impl Default for Slot {
    /// No alternative yet: the earliest signing time and the cancellation are the largest.
    fn default() -> Slot {
        Slot { resets: vec![], nonreset: None, min_sigma: u64::MAX, kill: u64::MAX }
    }
}

impl Slot {
    fn push(&mut self, e: Eff, sigma: u64, kill: u64) {
        self.min_sigma = self.min_sigma.min(sigma);
        self.kill = self.kill.min(kill);
        match e {
            Eff::Reset { total } => self.resets.push(total),
            e => self.nonreset = Some(self.nonreset.unwrap_or(U256::ZERO).max(e.add())),
        }
    }
    fn all_reset(&self) -> bool {
        self.nonreset.is_none()
    }
    fn add(&self) -> U256 {
        self.nonreset.unwrap_or(U256::ZERO)
    }
}

/// A lane's recorded positions; unrecorded positions are write-less.
#[derive(Debug, Default)]
struct Lane(BTreeMap<u64, Slot>);

impl Lane {
    /// Adds of positions `from..` up to (not including) the first that forces a reset.
    fn cont(&self, from: u64) -> U256 {
        let mut sum = U256::ZERO;
        for s in self.0.range(from..).map(|(_, s)| s) {
            if s.all_reset() {
                break;
            }
            sum = sum.saturating_add(s.add());
        }
        sum
    }

    /// Adds of positions strictly between `a` and `b` (none of which forces a reset).
    fn between(&self, a: u64, b: u64) -> U256 {
        if b <= a.saturating_add(1) {
            return U256::ZERO;
        }
        self.0.range(a + 1..b).fold(U256::ZERO, |acc, (_, s)| acc.saturating_add(s.add()))
    }

    /// Adds of positions below `b` (none of which forces a reset).
    fn below(&self, b: u64) -> U256 {
        self.0.range(..b).fold(U256::ZERO, |acc, (_, s)| acc.saturating_add(s.add()))
    }

    /// The largest run of adds between positions that force a reset. With a floating last
    /// set of deadline `d` (and Permit2 nonce `nonce`), a run can start only where everything
    /// before it (which must then precede the permit) was signed by `d` (on `chain_id`'s
    /// slack) and cancels no permit of that nonce.
    fn best_run(&self, chain_id: u64, d: Option<u64>, nonce: Option<u64>) -> U256 {
        let (mut best, mut sum, mut reachable, mut prefix_ok) = (U256::ZERO, U256::ZERO, true, true);
        for s in self.0.values() {
            let ok = d.is_none_or(|d| usable(chain_id, d, s.min_sigma)) && !cancelled(nonce, s.kill);
            if s.all_reset() {
                if reachable {
                    best = best.max(sum);
                }
                prefix_ok &= ok;
                reachable = prefix_ok;
                sum = U256::ZERO;
            } else {
                sum = sum.saturating_add(s.add());
                prefix_ok &= ok;
            }
        }
        if reachable {
            best = best.max(sum);
        }
        best
    }

    /// The first run (from position 0).
    fn first_run(&self) -> U256 {
        self.cont(0)
    }

    /// The latest earliest-inclusion time of positions `..=m`.
    fn max_sigma_upto(&self, m: u64) -> u64 {
        self.0.range(..=m).map(|(_, s)| s.min_sigma).max().unwrap_or(0)
    }

    /// The largest run of adds right after a position past `n` that forces a reset, for a
    /// last set placed there — after the request at `n` and everything before that
    /// position, so each must allow it (`fits`; `first`: the request and positions up to
    /// `n` do). A review of 2026-12-05 (a brute force around cancellations) found this
    /// placement missing: a permit, or a smart account's set, may come after a reset the
    /// session signed above the request, and the adds after that reset then build on it.
    fn run_after(&self, n: u64, first: bool, fits: impl Fn(&Slot) -> bool) -> U256 {
        let (mut best, mut prefix_ok, mut run) = (U256::ZERO, first, None::<U256>);
        for s in self.0.range(n.saturating_add(1)..).map(|(_, s)| s) {
            if s.all_reset() {
                if let Some(r) = run {
                    best = best.max(r);
                }
                prefix_ok &= fits(s);
                run = prefix_ok.then_some(U256::ZERO);
            } else {
                if let Some(r) = run.as_mut() {
                    *r = r.saturating_add(s.add());
                }
                prefix_ok &= fits(s);
            }
        }
        best.max(run.unwrap_or_default())
    }

    /// Whether one of positions `..=m` cancels a permit of `nonce` in every alternative.
    fn cancels_upto(&self, m: u64, nonce: Option<u64>) -> bool {
        nonce.is_some() && self.0.range(..=m).any(|(_, s)| cancelled(nonce, s.kill))
    }

    /// Account lanes: adds of every non-resetting position after `after` (positions may be
    /// skipped), except `skip`.
    fn any_after(&self, after: Option<u64>) -> U256 {
        let from = after.map_or(0, |a| a.saturating_add(1));
        if after == Some(u64::MAX) {
            return U256::ZERO;
        }
        self.0.range(from..).fold(U256::ZERO, |acc, (_, s)| acc.saturating_add(s.add()))
    }
}

/// The worst case of `key` at session time `now`: over every history that includes `req`
/// (when given) and every point at or after it — or, without a request, over every history
/// and every point from now on.
pub fn worst(reg: &Registry, key: &Key, now: u64, req: Option<Request<'_>>) -> U256 {
    if let Some(r) = req.filter(|r| r.may_revert && !r.grants.is_empty()) {
        // The histories that include it: those where its writes apply, and those where it
        // runs out of gas at its position and writes nothing.
        let applied = Request { may_revert: false, ..r };
        let void = Request { grants: &[], may_revert: false, ..r };
        return worst(reg, key, now, Some(applied)).max(worst(reg, key, now, Some(void)));
    }
    if let AllowanceKind::SignatureTransfer { .. } = key.kind {
        // One-shot authorities, each floating until it ends: all of them, as long as alive.
        let live = |g: &Grant| g.key == *key && g.end.is_none_or(|e| usable(key.chain_id, e, now));
        let amount = |g: &Grant| g.op.amount().unwrap_or_default();
        let recorded = reg.items.iter().flat_map(|i| i.grants.iter());
        let mine = req.map(|r| r.grants).unwrap_or(&[]);
        return recorded.chain(mine).filter(|g| live(g)).fold(U256::ZERO, |a, g| a.saturating_add(amount(g)));
    }

    // Where the request sits, as far as this key is concerned.
    let teff = req.map_or(Eff::None, |r| effect(r.grants, key, now));
    let lt = match req.map(|r| r.place) {
        Some(Place::Own { chain_id, nonce }) if chain_id == key.chain_id => Some(nonce),
        _ => None,
    };
    let at = match req.map(|r| r.place) {
        Some(Place::Account { lane, seq }) if lane.chain_id == key.chain_id && lane.sender == key.holder => {
            Some((lane, seq))
        }
        _ => None,
    };
    let t_floats = matches!(req.map(|r| r.place), Some(Place::Floating { .. }));
    // What the request cancels at its own position, and the nonce it needs as a permit.
    let t_kill = match lt {
        Some(_) => req.map_or(0, |r| kill_of(r.grants, key)),
        None => 0,
    };
    let t_nonce = if t_floats { req.and_then(|r| permit_nonce(r.grants, key)) } else { None };

    // The lanes and permits that can touch the key.
    let mut own = Lane::default();
    let mut accounts: BTreeMap<AccountLane, Lane> = BTreeMap::new();
    let mut floating: Vec<(u64, U256, Option<u64>)> = Vec::new();
    for item in &reg.items {
        match item.place {
            Place::Own { chain_id, nonce } if chain_id == key.chain_id => {
                if lt == Some(nonce) {
                    continue; // the request fills this position
                }
                let slot = own.0.entry(nonce).or_default();
                slot.push(effect(&item.grants, key, now), item.signed_at, kill_of(&item.grants, key));
                if item.may_revert {
                    // Mined out of gas: it fills the position and writes (and cancels) nothing.
                    slot.push(Eff::None, 0, 0);
                }
            }
            Place::Account { lane, seq } if lane.chain_id == key.chain_id && lane.sender == key.holder => {
                if at == Some((lane, seq)) {
                    continue;
                }
                let e = effect(&item.grants, key, now);
                if e != Eff::None {
                    accounts.entry(lane).or_default().0.entry(seq).or_default().push(e, item.signed_at, 0);
                }
            }
            Place::Floating { deadline } => {
                if let Eff::Reset { total } = effect(&item.grants, key, now) {
                    floating.push((deadline, total, permit_nonce(&item.grants, key)));
                }
            }
            _ => {}
        }
    }
    if let Some(p) = reg.own.get(&key.chain_id) {
        for (&n, slot) in own.0.iter_mut() {
            if p.contains(n) {
                slot.push(Eff::None, 0, 0);
            }
        }
    }
    if let Some((lane, _)) = at {
        accounts.entry(lane).or_default();
    }

    // The last position that forces a reset (own lane), or the request itself.
    enum Forced {
        None,
        Pos(u64),
        Request,
    }
    let forced = match lt {
        Some(n) if teff.resets() => Forced::Pos(n),
        Some(n) => own.0.range(..n).rev().find(|(_, s)| s.all_reset()).map_or(Forced::None, |(&m, _)| Forced::Pos(m)),
        None if teff.resets() => Forced::Request,
        None => Forced::None,
    };
    let t_add = teff.add();

    // Adds from account lanes placed after a last set that is not in an account lane.
    let accounts_after = |exclude: Option<&AccountLane>| -> U256 {
        let mut sum = U256::ZERO;
        for (lane, l) in &accounts {
            if Some(lane) == exclude {
                continue;
            }
            sum = sum.saturating_add(match at {
                Some((tl, n)) if tl == *lane => {
                    if teff.resets() {
                        l.any_after(Some(n)) // the request comes before the last set
                    } else {
                        l.any_after(None).saturating_add(t_add)
                    }
                }
                _ => l.any_after(None),
            });
        }
        sum
    };
    // Adds from the own lane placed after a last set that is not in the own lane, given the
    // earliest point it can be placed at. `d`, `nonce`: a floating last set's deadline and
    // Permit2 nonce.
    let own_after = |d: Option<u64>, nonce: Option<u64>| -> U256 {
        match lt {
            Some(n) => {
                // As early as it can be: after the forced position, before the request.
                let from = match forced {
                    Forced::Pos(m) => own.between(m, n),
                    _ => own.below(n),
                };
                let t = if matches!(forced, Forced::Pos(m) if m == n) { U256::ZERO } else { t_add };
                let early = from.saturating_add(t).saturating_add(own.cont(n.saturating_add(1)));
                // Or after a reset above the request: everything up to there precedes it.
                let fits =
                    |s: &Slot| d.is_none_or(|d| usable(key.chain_id, d, s.min_sigma)) && !cancelled(nonce, s.kill);
                let first = d.is_none_or(|d| usable(key.chain_id, d, now))
                    && !cancelled(nonce, t_kill)
                    && own.0.range(..=n).all(|(_, s)| fits(s));
                early.max(own.run_after(n, first, fits))
            }
            None => own.best_run(key.chain_id, d, nonce),
        }
    };

    let mut best = U256::ZERO;
    // No set at all.
    if matches!(forced, Forced::None) {
        let o = match lt {
            Some(n) => own.below(n).saturating_add(t_add).saturating_add(own.cont(n.saturating_add(1))),
            None => own.first_run(),
        };
        best = best.max(o.saturating_add(accounts_after(None)));
    }
    // The request's own set.
    if let Eff::Reset { total } = teff {
        let o = match lt {
            Some(n) => own.cont(n.saturating_add(1)),
            None => own.best_run(key.chain_id, if t_floats { req.and_then(deadline) } else { None }, t_nonce),
        };
        let a = match at {
            Some((lane, _)) => accounts_after(Some(&lane))
                .saturating_add(accounts.get(&lane).map_or(U256::ZERO, |l| l.any_after(at.map(|x| x.1)))),
            None => accounts_after(None),
        };
        best = best.max(total.saturating_add(o).saturating_add(a));
    }
    // A set in the own lane.
    for (&m, slot) in &own.0 {
        let feasible_after = match (lt, &forced) {
            (Some(n), Forced::Pos(f)) if m < n => m >= *f,
            _ => true,
        };
        if slot.resets.is_empty() || !feasible_after {
            continue;
        }
        let rest = match lt {
            Some(n) if m < n => own.between(m, n).saturating_add(t_add).saturating_add(own.cont(n.saturating_add(1))),
            _ => own.cont(m.saturating_add(1)),
        };
        let top = slot.resets.iter().copied().max().unwrap_or_default();
        best = best.max(top.saturating_add(rest).saturating_add(accounts_after(None)));
    }
    // A set in a smart-account lane.
    for (lane, l) in &accounts {
        for (&q, slot) in &l.0 {
            if slot.resets.is_empty() {
                continue;
            }
            let own_part = own_after(None, None);
            let lane_part = match at {
                Some((tl, n)) if tl == *lane => {
                    if teff.resets() {
                        if q < n {
                            continue; // the request's set would come after it
                        }
                        l.any_after(Some(q))
                    } else if q < n {
                        l.any_after(Some(q)).saturating_add(t_add)
                    } else {
                        l.any_after(Some(q))
                    }
                }
                _ => l.any_after(Some(q)),
            };
            let top = slot.resets.iter().copied().max().unwrap_or_default();
            let total =
                top.saturating_add(own_part).saturating_add(lane_part).saturating_add(accounts_after(Some(lane)));
            best = best.max(total);
        }
    }
    // A floating set (a permit): after everything up to the forced position, so signed by
    // then and cancelled by none of it.
    for &(d, total, nonce) in &floating {
        let feasible = match forced {
            Forced::None => true,
            Forced::Request => usable(key.chain_id, d, now),
            Forced::Pos(m) => {
                let signed = own.max_sigma_upto(m);
                let signed = if Some(m) == lt { signed.max(now) } else { signed };
                let killed = own.cancels_upto(m, nonce) || (Some(m) == lt && cancelled(nonce, t_kill));
                usable(key.chain_id, d, signed) && !killed
            }
        };
        if !feasible {
            continue;
        }
        best = best.max(total.saturating_add(own_after(Some(d), nonce)).saturating_add(accounts_after(None)));
    }
    best
}

fn deadline(r: Request<'_>) -> Option<u64> {
    match r.place {
        Place::Floating { deadline } => Some(deadline),
        _ => None,
    }
}

#[cfg(test)]
#[path = "worst_tests.rs"]
mod tests;
