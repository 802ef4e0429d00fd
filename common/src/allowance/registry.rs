//! What the registry holds: every item the session signed that writes approvals, where it
//! sits on chain, and the positions of the session's transactions that wrote nothing.

use super::{AllowanceKind, GrantOp};
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most writes (approvals, permits, revocations) one session's registry records. A request
/// that would need more is denied (`exposure_ceiling`); Permit2 authorities that have ended
/// on chain are forgotten first.
pub const MAX_WRITES: usize = 512;
/// Ranges of write-less transaction nonces remembered per chain (see [`Positions`]).
pub const MAX_PLAIN_RANGES: usize = 64;
/// Revocations an owner's signed sweep may add on credit for each approval the session is
/// granted (the first revocation and one fee bump): see [`Registry::prepaid`].
pub const PREPAID_PER_APPROVAL: usize = 2;
/// What one write takes in the registry at most, as [`Registry::footprint`] counts it: an
/// item of its own (counted twice, a growable container) and its grant.
pub const WRITE_BYTES: usize = 2 * std::mem::size_of::<Item>() + std::mem::size_of::<Grant>();

/// An allowance: whose tokens, which token, which spender, on which chain, of which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub chain_id: u64,
    pub holder: Address,
    pub token: Address,
    pub spender: Address,
    pub kind: AllowanceKind,
}

/// A user operation lane: the entry point keeps one nonce sequence per (sender, key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountLane {
    pub chain_id: u64,
    pub entry_point: Address,
    pub sender: Address,
    /// The nonce's upper 192 bits.
    pub key: U256,
}

/// Where a signed item sits on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    /// A transaction from the session's own address: position `nonce` of the chain's lane.
    Own { chain_id: u64, nonce: u64 },
    /// A user operation: position `seq` (the nonce's lower 64 bits) of its lane.
    Account { lane: AccountLane, seq: u64 },
    /// A permit: anyone can submit it from its signing until `deadline`.
    Floating { deadline: u64 },
}

impl Place {
    /// The place of user operation `nonce` of `sender` through `entry_point` on `chain_id`.
    pub fn user_operation(chain_id: u64, entry_point: Address, sender: Address, nonce: U256) -> Place {
        let seq = u64::try_from(nonce & U256::from(u64::MAX)).unwrap_or(u64::MAX);
        Place::Account { lane: AccountLane { chain_id, entry_point, sender, key: nonce >> 64 }, seq }
    }
}

/// One write of a request: an approval, a permit, a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub key: Key,
    pub op: GrantOp,
    /// When the authority ends on chain by itself (a Permit2 expiration — a
    /// `PermitSingle`'s `sigDeadline` when its expiration is 0 — or a signature transfer's
    /// deadline); `None`: never.
    pub end: Option<u64>,
    /// The token's index in the policy, when listed (for caps, prices, lifetimes).
    pub token_index: Option<usize>,
    /// What grants it: `approve`, `increaseAllowance`, `permit`, `Permit2 allowance`, …
    pub via: Via,
    /// A Permit2 allowance permit's nonce for its key (`PermitSingle`, `PermitBatch`): Permit2
    /// takes it only while its nonce for (holder, token, spender) is exactly this, so an
    /// `invalidateNonces` above it, once mined, cancels it for good. `None` for anything
    /// else, and in snapshots of builds before it (never cancelled: the safe side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
}

/// Something the session signed that writes approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub place: Place,
    pub signed_at: u64,
    /// In call order; applied all or none.
    pub grants: Vec<Grant>,
    /// Signed by a revocation sweep.
    pub sweep: bool,
    /// A transaction whose gas limit is below `approvals.revoke_gas`: it may be mined, run
    /// out of gas and write nothing (RULES.md §6).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_revert: bool,
}

/// What the owner's view keeps about a key besides its writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMeta {
    pub symbol: String,
    pub decimals: u8,
    /// When a non-zero amount was last granted, and when that grant stops being current.
    pub granted_at: u64,
    pub expires_at: u64,
    pub via: Via,
    pub updated_at: u64,
}

/// The nonces of one chain's lane at which the session signed transactions that wrote no
/// approval, as sorted, disjoint, inclusive ranges. At most [`MAX_PLAIN_RANGES`] ranges:
/// beyond that the two closest are merged, which adds nonces that may hold such a
/// transaction — more histories, so a worst case can only grow (never understated).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    ranges: Vec<(u64, u64)>,
    /// The highest nonce the session signed on this chain (any transaction).
    pub max_nonce: Option<u64>,
    /// Every nonce the session signed a transaction at on this chain (writing approvals or
    /// not), as sorted, disjoint, inclusive ranges — one, `[0, max]`, for an agent that
    /// signs its nonces in turn; at most [`MAX_PLAIN_RANGES`], merged as `ranges` are
    /// ([`Registry::signed_below`]). Empty in a snapshot of a build before it: nothing
    /// then counts as signed below a transaction (the safe side).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signed: Vec<(u64, u64)>,
    /// The lowest nonce a merge of `signed` added without a transaction signed there: from
    /// it on, `signed` no longer tells which nonces the session signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merged_from: Option<u64>,
}

impl Positions {
    pub fn contains(&self, n: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < n);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= n)
    }

    pub(crate) fn insert(&mut self, n: u64) {
        self.note(n);
        add_to(&mut self.ranges, n);
    }

    /// A transaction signed at `n` (writing approvals or not).
    fn note(&mut self, n: u64) {
        self.max_nonce = Some(self.max_nonce.map_or(n, |m| m.max(n)));
        if let Some(added) = add_to(&mut self.signed, n) {
            self.merged_from = Some(self.merged_from.map_or(added, |m| m.min(added)));
        }
    }
}

/// Add `n` to sorted, disjoint, inclusive `ranges`; past [`MAX_PLAIN_RANGES`], merge the two
/// with the smallest gap between them, and return the first nonce that merge added.
fn add_to(ranges: &mut Vec<(u64, u64)>, n: u64) -> Option<u64> {
    let i = ranges.partition_point(|&(_, hi)| hi < n);
    if ranges.get(i).is_some_and(|&(lo, _)| lo <= n) {
        return None;
    }
    let joins_prev = i > 0 && ranges[i - 1].1.checked_add(1) == Some(n);
    let joins_next = ranges.get(i).is_some_and(|&(lo, _)| n.checked_add(1) == Some(lo));
    match (joins_prev, joins_next) {
        (true, true) => {
            ranges[i - 1].1 = ranges[i].1;
            ranges.remove(i);
        }
        (true, false) => ranges[i - 1].1 = n,
        (false, true) => ranges[i].0 = n,
        (false, false) => ranges.insert(i, (n, n)),
    }
    if ranges.len() <= MAX_PLAIN_RANGES {
        return None;
    }
    let j = (1..ranges.len()).min_by_key(|&j| ranges[j].0 - ranges[j - 1].1).unwrap_or(1);
    let added = ranges[j - 1].1.saturating_add(1);
    ranges[j - 1].1 = ranges[j].1;
    ranges.remove(j);
    Some(added)
}

/// The registry is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryFull;

/// A session's allowance registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub(crate) items: Vec<Item>,
    pub(crate) own: BTreeMap<u64, Positions>,
    pub(crate) meta: BTreeMap<Key, KeyMeta>,
    writes: usize,
    /// Revocations the owner's signed sweeps may still add on credit ([`Registry::prepaid`]):
    /// [`PREPAID_PER_APPROVAL`] for each approval recorded, less what the owner's sweeps
    /// wrote since.
    #[serde(default, skip_serializing_if = "is_zero")]
    prepaid: usize,
}

/// The revocations `grants`, signed by the agent at `place`, prepay:
/// [`PREPAID_PER_APPROVAL`] for each approval a revocation can take back — none for an item
/// the registry forgets once it ends (a floating Permit2 authority with an end): credit
/// given back when it was forgotten could be credit an owner's sweep had already spent on
/// another key, and credit kept for it would outlive it (reviews of 2026-12-05). An
/// approval with an end that is not forgotten (Permit2's `approve` in a transaction) prepays
/// like any other: otherwise an agent could fill the registry with them and leave the
/// owner no room to revoke. (An owner's sweep on credit signs no Permit2 cancellation:
/// only revocations were ever prepaid.)
fn prepaid_for(place: &Place, grants: &[Grant]) -> usize {
    if Registry::forgettable_item(place, grants) {
        return 0;
    }
    let approvals =
        grants.iter().filter(|g| g.key.kind.sweepable() && g.op.amount().is_some_and(|v| !v.is_zero())).count();
    approvals.saturating_mul(PREPAID_PER_APPROVAL)
}

/// `approve(spender, 0)` (or Permit2's with amount 0).
fn is_revocation(op: GrantOp) -> bool {
    op == GrantOp::Set(U256::ZERO)
}

/// Permit2's `invalidateNonces`.
fn is_cancellation(op: GrantOp) -> bool {
    matches!(op, GrantOp::Invalidate(_))
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Registry {
    /// Items signed, in signing order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Every key ever written, with its view metadata.
    pub fn keys(&self) -> impl Iterator<Item = (&Key, &KeyMeta)> {
        self.meta.iter()
    }

    /// The positions of write-less transactions on `chain_id`.
    pub fn own_positions(&self, chain_id: u64) -> Option<&Positions> {
        self.own.get(&chain_id)
    }

    /// Whether every nonce below `n` on `chain_id` holds a transaction the session signed
    /// (one that writes approvals, or a write-less one whose position is known exactly). A
    /// transaction above a nonce nothing was signed at is mined only once something fills
    /// it, which a revoked session's destroyed key never will (a review of 2026-12-05: the
    /// agent's revocation at nonce 5 over its approval at 0, nonces 1 to 4 never signed,
    /// counted as settling the approval, and the owner's revocation destroyed the key).
    pub fn signed_below(&self, chain_id: u64, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let Some(p) = self.own.get(&chain_id) else { return false };
        p.merged_from.is_none_or(|m| m >= n) && p.signed.first().is_some_and(|&(lo, hi)| lo == 0 && hi >= n - 1)
    }

    /// The nonce after the highest the session signed on `chain_id` (0 if none).
    pub fn next_nonce(&self, chain_id: u64) -> u64 {
        self.own.get(&chain_id).and_then(|p| p.max_nonce).map_or(0, |m| m.saturating_add(1))
    }

    /// Every chain the session signed a transaction on, with the nonce after the highest
    /// there ([`Registry::next_nonce`]), by chain id.
    pub fn next_nonces(&self) -> Vec<crate::protocol::ChainNonce> {
        self.own
            .iter()
            .filter_map(|(&chain_id, p)| {
                p.max_nonce.map(|m| crate::protocol::ChainNonce { chain_id, nonce: m.saturating_add(1) })
            })
            .collect()
    }

    /// Whether every transaction the session signed at `nonce` on `chain_id` is a sweep
    /// (and there is at least one): re-signing it replaces only a sweep.
    pub fn only_sweeps_at(&self, chain_id: u64, nonce: u64) -> bool {
        let at = |i: &&Item| i.place == Place::Own { chain_id, nonce };
        let mut any = false;
        for i in self.items.iter().filter(at) {
            if !i.sweep {
                return false;
            }
            any = true;
        }
        any && !self.own.get(&chain_id).is_some_and(|p| p.contains(nonce))
    }

    /// Whether every transaction the session signed at `nonce` on `chain_id` is a sweep that
    /// sets `key` to zero and nothing else: re-signing that nonce with `key`'s revocation is
    /// a fee bump — whichever is mined revokes `key`. A sweep of another key there would
    /// replace a revocation that requests signed since may rely on (found 2026-12-04 by a
    /// review: an approval signed because an older one was certainly revoked, then that
    /// revocation displaced by an unauthenticated sweep of a third key).
    pub fn only_revokes_at(&self, chain_id: u64, nonce: u64, key: &Key) -> bool {
        self.only_sweeps_doing_at(chain_id, nonce, key, is_revocation)
    }

    /// Whether every transaction the session signed at `nonce` on `chain_id` is a sweep whose
    /// every write is to `key` and does `does` (and there is at least one).
    fn only_sweeps_doing_at(&self, chain_id: u64, nonce: u64, key: &Key, does: fn(GrantOp) -> bool) -> bool {
        self.only_sweeps_at(chain_id, nonce)
            && self
                .items
                .iter()
                .filter(|i| i.place == Place::Own { chain_id, nonce })
                .all(|i| i.grants.iter().all(|g| g.key == *key && does(g.op)))
    }

    /// The key every sweep at `nonce` on `chain_id` does `does` to, when they all do it to
    /// one key alone.
    fn sole_key_at(&self, chain_id: u64, nonce: u64, does: fn(GrantOp) -> bool) -> Option<Key> {
        let first = self.items.iter().find(|i| i.place == Place::Own { chain_id, nonce })?;
        let key = first.grants.first()?.key;
        self.only_sweeps_doing_at(chain_id, nonce, &key, does).then_some(key)
    }

    /// Whether every transaction the session signed at `nonce` on `chain_id` is a sweep that
    /// cancels `key`'s Permit2 permits (`invalidateNonces`) and nothing else: re-signing it
    /// with `key`'s cancellation is a fee bump — whichever is mined cancels them.
    pub fn only_cancels_at(&self, chain_id: u64, nonce: u64, key: &Key) -> bool {
        self.only_sweeps_doing_at(chain_id, nonce, key, is_cancellation)
    }

    /// The largest `n` of the `invalidateNonces` of `key` signed at `nonce` on `chain_id`
    /// (0: none).
    pub fn cancelled_below_at(&self, chain_id: u64, nonce: u64, key: &Key) -> u64 {
        self.items
            .iter()
            .filter(|i| i.place == Place::Own { chain_id, nonce })
            .flat_map(|i| i.grants.iter())
            .filter_map(|g| match g.op {
                GrantOp::Invalidate(n) if g.key == *key => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// The nonce Permit2 may hold at most for `key` (its holder, token and spender) after
    /// whatever the session signed: one past the highest Permit2 allowance permit's nonce,
    /// or the highest `invalidateNonces` the session signed, 0 if neither — Permit2 moves a
    /// nonce only through these. (A permit the registry forgot may have moved it further;
    /// an invalidation at or below the nonce then reverts, every permit remembered being
    /// below it and so cancelled anyway.)
    pub fn permit2_nonce_bound(&self, key: &Key) -> u64 {
        let mut top = 0u64;
        for g in self.items.iter().flat_map(|i| i.grants.iter()).filter(|g| g.key == *key) {
            match (g.op, g.nonce) {
                (GrantOp::Invalidate(n), _) => top = top.max(n),
                (GrantOp::Set(_), Some(n)) => top = top.max(n.saturating_add(1)),
                _ => {}
            }
        }
        top
    }

    /// Whether a Permit2 allowance permit of `key` signed by the session carries its nonce:
    /// a sweep can cancel it ([`super::cancel_call`]).
    pub fn has_cancellable_permits(&self, key: &Key) -> bool {
        self.items.iter().any(|i| {
            matches!(i.place, Place::Floating { .. }) && i.grants.iter().any(|g| g.key == *key && g.nonce.is_some())
        })
    }

    /// The key whose Permit2 permits every transaction at `nonce` on `chain_id` cancels,
    /// when they are all sweeps cancelling one key's (see [`Registry::only_cancels_at`]).
    pub fn sole_cancel_at(&self, chain_id: u64, nonce: u64) -> Option<Key> {
        self.sole_key_at(chain_id, nonce, is_cancellation)
    }

    /// The nonce of the latest sweep that cancels `key`'s Permit2 permits, if nothing but
    /// sweeps wrote `key` since (what a host re-sends or bumps before the revocation).
    pub fn cancelled_at(&self, key: &Key) -> Option<u64> {
        for i in self.items.iter().rev().filter(|i| i.grants.iter().any(|g| g.key == *key)) {
            match i {
                Item { sweep: false, .. } => return None,
                Item { place: Place::Own { nonce, .. }, .. }
                    if i.grants.iter().any(|g| g.key == *key && matches!(g.op, GrantOp::Invalidate(_))) =>
                {
                    return Some(*nonce)
                }
                _ => {}
            }
        }
        None
    }

    /// The key whose revocation every transaction at `nonce` on `chain_id` is, when they are
    /// all sweeps of one key (see [`Registry::only_revokes_at`]).
    pub fn sole_revocation_at(&self, chain_id: u64, nonce: u64) -> Option<Key> {
        self.sole_key_at(chain_id, nonce, is_revocation)
    }

    /// Mark every transaction of the session's own address on a chain where `uncertain` holds
    /// as one that may revert (RULES.md §6). Whether a chain takes L1 data gas from the gas
    /// limit is a fact about the chain, not about when a transaction was signed: a policy
    /// update that stops listing a chain in `approvals.execution_gas_chains` (or a snapshot
    /// from an older build) reaches the revocations already signed there. Only ever stricter.
    pub fn mark_uncertain(&mut self, uncertain: impl Fn(u64) -> bool) {
        for i in &mut self.items {
            if let Place::Own { chain_id, .. } = i.place {
                if uncertain(chain_id) {
                    i.may_revert = true;
                }
            }
        }
    }

    /// The nonce of the sweep that wrote `key` last, if the last item (in signing order) that
    /// writes it is a sweep of the session's own address: a revocation is signed and nothing
    /// was granted since, whether or not it settles the key (on a chain that takes L1 data
    /// gas from the gas limit it never does).
    pub fn swept_at(&self, key: &Key) -> Option<u64> {
        // The last write of an amount: a sweep's cancellation of permits sits before its
        // revocation (and a bump of it may be signed after).
        let writes = |i: &&Item| i.grants.iter().any(|g| g.key == *key && g.op.amount().is_some());
        match self.items.iter().rev().find(writes)? {
            Item { sweep: true, place: Place::Own { nonce, .. }, .. } => Some(*nonce),
            _ => None,
        }
    }

    /// Whether the latest non-zero grant to `key` prepaid revocations ([`prepaid_for`]):
    /// false for a floating Permit2 authority the registry forgets once it ends, and for a
    /// key never granted anything. An owner's sweep on credit revokes such keys first.
    pub fn last_grant_prepaid(&self, key: &Key) -> bool {
        let granted = |i: &&Item| i.grants.iter().any(|g| g.key == *key && g.op.amount().is_some_and(|v| !v.is_zero()));
        self.items
            .iter()
            .rev()
            .find(granted)
            .is_some_and(|i| key.kind.sweepable() && !Self::forgettable_item(&i.place, &i.grants))
    }

    /// Revocations an owner's signed sweep may add on credit: paid for, in the enclave's
    /// memory budget, when the approvals they revoke were signed ([`Registry::footprint`]
    /// counts [`WRITE_BYTES`] for each), so that the owner's way out stays open when others
    /// have spent the budget — a reserve shared by every session could be used up by anyone's
    /// own owner-signed sweeps (a review of 2026-12-05). Never more than the registry has
    /// room for: a session is never charged beyond a full registry.
    pub fn prepaid(&self) -> usize {
        self.prepaid.min(MAX_WRITES.saturating_sub(self.writes))
    }

    /// The credit as stored: writes the session prepaid for the owner's sweeps, whatever
    /// room the registry has for them now.
    pub fn credit(&self) -> usize {
        self.prepaid
    }

    /// [`Registry::prepaid`] once what has ended by `now` is forgotten (a sweep's record
    /// forgets it when it needs the room).
    pub fn prepaid_at(&self, now: u64) -> usize {
        self.prepaid.min(MAX_WRITES.saturating_sub(self.writes - self.forgettable(now)))
    }

    /// An owner's signed sweep wrote `n` revocations: they use up as much credit.
    pub(crate) fn spend_prepaid(&mut self, n: usize) {
        self.prepaid = self.prepaid.saturating_sub(n);
    }

    /// Whether the agent's `grants` fit at `now` beside every revocation the session has
    /// prepaid and those they prepay: the agent's own writes never take the owner's sweep's
    /// room (a review of 2026-12-05: an agent that filled its registry left the owner no
    /// revocation at all).
    pub fn has_room_beside_credit(&self, place: &Place, grants: &[Grant], now: u64) -> bool {
        self.has_room(grants.len().saturating_add(self.credit_with(place, grants)), now)
    }

    /// The stored credit once the agent's `grants` at `place` are recorded.
    fn credit_with(&self, place: &Place, grants: &[Grant]) -> usize {
        self.prepaid.saturating_add(prepaid_for(place, grants)).min(MAX_WRITES)
    }

    /// Whether `n` more writes fit at `now` (after forgetting ended Permit2 authorities).
    pub fn has_room(&self, n: usize, now: u64) -> bool {
        self.writes.saturating_add(n) <= MAX_WRITES || self.writes - self.forgettable(now) + n <= MAX_WRITES
    }

    /// Writes of floating items that can be forgotten exactly: Permit2 authorities whose
    /// every write has ended (they can only ever be worth 0, and nothing forces them).
    fn forgettable(&self, now: u64) -> usize {
        self.items.iter().filter(|i| Self::ended(i, now)).map(|i| i.grants.len()).sum()
    }

    fn ended(i: &Item, now: u64) -> bool {
        Self::forgettable_item(&i.place, &i.grants)
            && i.grants.iter().all(|g| g.end.is_some_and(|e| !super::usable(g.key.chain_id, e, now)))
    }

    /// Whether an item at `place` writing `grants` is forgotten once every write has ended:
    /// never on a chain whose block timestamps have no known bound (there nothing ends,
    /// `super::time_slack`), so such an item prepays like any other (a review of
    /// 2026-12-05: it prepaid nothing and was never forgotten, so an agent's permits could
    /// fill the registry and leave the owner's sweep no room for good).
    fn forgettable_item(place: &Place, grants: &[Grant]) -> bool {
        matches!(place, Place::Floating { .. })
            && grants.iter().all(|g| {
                g.key.kind != AllowanceKind::Erc20 && g.end.is_some() && super::time_slack(g.key.chain_id).is_some()
            })
    }

    /// Forget floating Permit2 authorities that ended by `now` (exact: see `forgettable`).
    /// They prepaid no revocation ([`prepaid_for`]), so the credit is untouched.
    pub fn prune(&mut self, now: u64) {
        if self.items.iter().any(|i| Self::ended(i, now)) {
            self.items.retain(|i| !Self::ended(i, now));
            self.writes = self.items.iter().map(|i| i.grants.len()).sum();
        }
    }

    /// Record what the session signed at `place`, at session time `signed_at`. A transaction
    /// with no write is remembered only as a position; one that `may_revert` also counts as
    /// a write-less transaction at its position. `meta` gives, for a non-zero grant,
    /// its symbol, decimals and when it stops being current.
    pub fn record(
        &mut self,
        place: Place,
        signed_at: u64,
        grants: Vec<Grant>,
        sweep: bool,
        may_revert: bool,
        meta: impl Fn(&Grant) -> (String, u8, u64),
    ) -> Result<(), RegistryFull> {
        if grants.is_empty() {
            if let Place::Own { chain_id, nonce } = place {
                self.own.entry(chain_id).or_default().insert(nonce);
            }
            return Ok(());
        }
        // Ended Permit2 authorities are forgotten when the writes, or the revocations the
        // agent's approvals keep room for, would not fit otherwise (the agent's room check,
        // `has_room_beside_credit`, counts what forgetting frees).
        // A sweep's writes prune alike beside the stored credit: a sweep whose room counted
        // ended permits as free must forget them, or the credit's room shrinks (a review of
        // 2026-12-06).
        let credit = if sweep { self.prepaid } else { self.credit_with(&place, &grants) };
        if self.writes + grants.len() + credit > MAX_WRITES {
            self.prune(signed_at);
        }
        if self.writes + grants.len() > MAX_WRITES {
            return Err(RegistryFull);
        }
        if let Place::Own { chain_id, nonce } = place {
            self.own.entry(chain_id).or_default().note(nonce);
        }
        for g in &grants {
            let nonzero = g.op.amount().is_some_and(|v| !v.is_zero());
            let m = self.meta.entry(g.key).or_insert_with(|| {
                let (symbol, decimals, _) = meta(g);
                KeyMeta { symbol, decimals, granted_at: signed_at, expires_at: signed_at, via: g.via, updated_at: 0 }
            });
            m.updated_at = signed_at;
            m.via = g.via;
            if nonzero {
                let (symbol, decimals, expires_at) = meta(g);
                m.symbol = symbol;
                m.decimals = decimals;
                m.granted_at = signed_at;
                m.expires_at = expires_at;
            }
        }
        if !sweep {
            self.prepaid = self.credit_with(&place, &grants);
        }
        self.writes += grants.len();
        self.items.push(Item { place, signed_at, grants, sweep, may_revert });
        Ok(())
    }

    /// Approximate heap bytes, from lengths (never capacities), so that every replica of a
    /// session — grown step by step or restored from a snapshot — computes the same figure
    /// (the memory budget decides with it). Growable containers count twice their length.
    /// The revocations prepaid for the owner's sweeps count as the writes they will be.
    pub fn footprint(&self) -> usize {
        self.prepaid() * WRITE_BYTES
            + 2 * self.items.len() * std::mem::size_of::<Item>()
            + self.writes * std::mem::size_of::<Grant>()
            + self.meta.len() * (std::mem::size_of::<Key>() + std::mem::size_of::<KeyMeta>() + 32)
            + self.own.len() * (4 * MAX_PLAIN_RANGES * 16 + 64)
    }
}

/// The names of what wrote an allowance ([`Grant::via`], [`KeyMeta::via`]).
pub const VIAS: &[&str] =
    &["approve", "increaseAllowance", "Permit2 approve", "permit", "Permit2 allowance", "Permit2 transfer", "sweep"];

/// What wrote an allowance: one of [`VIAS`]. A snapshot stores the name and a restore maps it
/// back (an unknown name is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via(pub &'static str);

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Via {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Via, D::Error> {
        let s = String::deserialize(d)?;
        VIAS.iter()
            .find(|v| **v == s)
            .map(|v| Via(v))
            .ok_or_else(|| serde::de::Error::custom(format!("unknown allowance writer {s:?}")))
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
