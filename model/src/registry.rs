//! The allowance registry (RULES §6) by brute force: every signed request that can write
//! allowances is kept with where it sits (a lane position, or floating for permits) and
//! when it was signed; a key's worst case is found by exploring every history explicitly.
//!
//! A history is built one request at a time: the next position of an own-address lane
//! (filled by exactly one of the transactions signed there or, when the session signed
//! nothing there and a later position is signed, by a transaction that writes nothing),
//! any later position of a smart-account lane, or an unused permit (allowed only when its
//! deadline is not earlier than the signing time of everything before it, itself
//! included). For that timing rule a transaction of an own-address lane that writes no
//! approval (and a gap's filler) counts as signed at time 0 (RULES §6). Every state reached
//! is a point of a history; its value of the key is the fold of the writes so far. States
//! are deduplicated (the rest of a history only depends on the state), which keeps the
//! exploration exact and finite.

use alloy_primitives::{Address, U256};
use std::collections::{BTreeMap, HashSet};

/// A registry key `(chain, holder, token, spender, kind)` (RULES §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub chain: u64,
    pub holder: Address,
    pub token: Address,
    pub spender: Address,
    pub kind: Kind,
}

/// Which allowance a key is: the token's own, or one a Permit2 contract keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Erc20,
    /// Permit2's AllowanceTransfer allowance kept by this contract.
    Permit2(Address),
    /// Permit2's SignatureTransfer one-shot authorities kept by this contract.
    SignatureTransfer(Address),
}

/// A write; `end` is when a Permit2 write stops counting (RULES §6: a `permit2` or
/// `signature_transfer` key contributes 0 at or after the end of the write that last set
/// it, and an authority with deadline `d` counts as live at `t` while `t ≤ d + 60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Write {
    Set(U256),
    Add(U256),
    SetUntil(U256, u64),
    AddUntil(U256, u64),
}

impl Write {
    /// The amount it writes.
    pub fn amount(&self) -> U256 {
        match *self {
            Write::Set(v) | Write::Add(v) | Write::SetUntil(v, _) | Write::AddUntil(v, _) => v,
        }
    }
    pub fn sets(&self) -> bool {
        matches!(self, Write::Set(_) | Write::SetUntil(..))
    }
    pub fn adds(&self) -> bool {
        !self.sets()
    }
    /// As seen at session time `now` on a chain of `slack` (`None`: unbounded, nothing
    /// ends): an ended set sets 0; an ended add adds nothing.
    fn at(self, now: u64, slack: Option<u64>) -> Write {
        let live = |end: u64| slack.is_none_or(|s| end.saturating_add(s) >= now);
        match self {
            Write::SetUntil(v, end) => Write::Set(if live(end) { v } else { U256::ZERO }),
            Write::AddUntil(v, end) => Write::Add(if live(end) { v } else { U256::ZERO }),
            w => w,
        }
    }
}

/// Where a signed request sits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Place {
    /// Position `pos` (the nonce) of the lane `(chain, session address)`.
    Own { chain: u64, pos: u64 },
    /// Position `pos` of the smart-account lane `(chain, entry point, sender, nonce key)`.
    Smart { chain: u64, entry_point: Address, sender: Address, key: U256, pos: u64 },
    /// A permit: usable from its signing until its deadline.
    Float { deadline: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub place: Place,
    pub signed_at: u64,
    pub writes: Vec<(Key, Write)>,
    /// A transaction of an own-address lane signed with a gas limit (less what its access
    /// list costs up front) below `approvals.revoke_gas`, or otherwise uncertain (RULES §6):
    /// it may also be mined out of gas, filling its position and writing nothing (as a
    /// write-less transaction, signed at time 0).
    pub may_revert: bool,
}

/// Most states one search may visit before the model gives up (`model_limit`).
pub const MAX_STATES: usize = 400_000;

fn apply(v: U256, w: &Write) -> U256 {
    match *w {
        Write::Set(x) | Write::SetUntil(x, _) => x,
        Write::Add(x) | Write::AddUntil(x, _) => v.saturating_add(x),
    }
}

struct Node {
    signed: u64,
    writes: Vec<Write>,
    is_t: bool,
    may_revert: bool,
}

enum Group {
    /// Own lane: nodes by position; `top` is the highest position any node sits at.
    Own { by_pos: BTreeMap<u64, Vec<usize>>, t_pos: Option<u64>, top: u64 },
    /// Smart-account lane: (position, node).
    Smart { list: Vec<(u64, usize)>, t_pos: Option<u64> },
    /// One permit.
    Float { node: usize, deadline: u64 },
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    /// Per group: own lane = next position; smart lane = last position used + 1 (0: none);
    /// permit = 0 unused / 1 used.
    prog: Vec<u128>,
    max_signed: u64,
    value: U256,
    t_placed: bool,
}

fn lane_of(place: &Place) -> Option<(u8, u64, Address, Address, U256)> {
    match place {
        Place::Own { chain, .. } => Some((0, *chain, Address::ZERO, Address::ZERO, U256::ZERO)),
        Place::Smart { chain, entry_point, sender, key, .. } => Some((1, *chain, *entry_point, *sender, *key)),
        Place::Float { .. } => None,
    }
}

fn pos_of(place: &Place) -> u64 {
    match place {
        Place::Own { pos, .. } | Place::Smart { pos, .. } => *pos,
        Place::Float { .. } => 0,
    }
}

/// The time an item counts as signed at for the permit timing rule (RULES §6): 0 for a
/// transaction of an own-address lane that writes no approval.
pub fn timing(item: &Item) -> u64 {
    match item.place {
        Place::Own { .. } if item.writes.is_empty() => 0,
        _ => item.signed_at,
    }
}

/// The worst case of `key` at session time `now`: the largest value it takes at a point
/// at or after `t_item` (when given) of a history that includes it; without `t_item`, over
/// every point of every history. Every point is taken at the moment `now` (everything was
/// signed by then, and a later moment only ends Permit2 writes). A position of an own lane that the session has not signed, below one it
/// has (a gap), may be filled by a transaction that writes nothing, signed at time 0.
/// `None` when the search is too big.
pub fn worst(items: &[Item], t_item: Option<&Item>, key: &Key, now: u64) -> Option<U256> {
    let all: Vec<(&Item, bool)> = items.iter().map(|i| (i, false)).chain(t_item.map(|i| (i, true))).collect();
    // Relevant: lanes with a write to `key` or holding T; permits writing `key` or T.
    let touches = |i: &Item| i.writes.iter().any(|(k, _)| k == key);
    let mut lanes: Vec<(u8, u64, Address, Address, U256)> = Vec::new();
    for (it, is_t) in &all {
        if let Some(l) = lane_of(&it.place) {
            if (touches(it) || *is_t) && !lanes.contains(&l) {
                lanes.push(l);
            }
        }
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let node_of = |it: &Item, is_t: bool| Node {
        signed: timing(it),
        writes: it
            .writes
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, w)| w.at(now, crate::time_slack(key.chain)))
            .collect(),
        is_t,
        may_revert: it.may_revert && matches!(it.place, Place::Own { .. }),
    };
    for lane in &lanes {
        let members: Vec<&(&Item, bool)> =
            all.iter().filter(|(it, _)| lane_of(&it.place).as_ref() == Some(lane)).collect();
        let t_pos = members.iter().find(|(_, t)| *t).map(|(it, _)| pos_of(&it.place));
        if lane.0 == 0 {
            let mut by_pos: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
            for (it, t) in &members {
                nodes.push(node_of(it, *t));
                by_pos.entry(pos_of(&it.place)).or_default().push(nodes.len() - 1);
            }
            let top = by_pos.keys().next_back().copied().unwrap_or(0);
            groups.push(Group::Own { by_pos, t_pos, top });
        } else {
            let mut list = Vec::new();
            for (it, t) in &members {
                nodes.push(node_of(it, *t));
                list.push((pos_of(&it.place), nodes.len() - 1));
            }
            groups.push(Group::Smart { list, t_pos });
        }
    }
    for (it, is_t) in &all {
        if let Place::Float { deadline } = it.place {
            if touches(it) || *is_t {
                nodes.push(node_of(it, *is_t));
                groups.push(Group::Float { node: nodes.len() - 1, deadline });
            }
        }
    }
    if t_item.is_some() && !nodes.iter().any(|n| n.is_t) {
        return Some(U256::ZERO);
    }
    search(&nodes, &groups, t_item.is_some(), crate::time_slack(key.chain))
}

/// `slack`: how far a block may trail what it holds on the key's chain (`None`: unbounded,
/// so a permit may follow anything).
fn search(nodes: &[Node], groups: &[Group], need_t: bool, slack: Option<u64>) -> Option<U256> {
    let start = State { prog: vec![0; groups.len()], max_signed: 0, value: U256::ZERO, t_placed: false };
    let mut seen: HashSet<State> = HashSet::new();
    let mut stack = vec![start.clone()];
    seen.insert(start);
    let mut best: Option<U256> = None;
    while let Some(st) = stack.pop() {
        if !need_t || st.t_placed {
            best = Some(best.map_or(st.value, |b| b.max(st.value)));
        }
        for (g, group) in groups.iter().enumerate() {
            // (next progress, node or None for a gap's filler, mined out of gas)
            let mut moves: Vec<(u128, Option<usize>, bool)> = Vec::new();
            let p = st.prog[g];
            match group {
                Group::Own { by_pos, t_pos, top } => {
                    let Ok(pos) = u64::try_from(p) else { continue };
                    let next = p + 1;
                    match by_pos.get(&pos) {
                        Some(list) => {
                            for &n in list {
                                if *t_pos != Some(pos) || nodes[n].is_t {
                                    moves.push((next, Some(n), false));
                                    if nodes[n].may_revert {
                                        moves.push((next, Some(n), true));
                                    }
                                }
                            }
                        }
                        None if pos < *top => moves.push((next, None, false)),
                        None => {}
                    }
                }
                Group::Smart { list, t_pos } => {
                    for &(pos, n) in list {
                        if u128::from(pos) >= p && (*t_pos != Some(pos) || nodes[n].is_t) {
                            moves.push((u128::from(pos) + 1, Some(n), false));
                        }
                    }
                }
                Group::Float { node, deadline } => {
                    // RULES §6: a block's stamp may trail the signing by the chain's slack.
                    let signed = st.max_signed.max(nodes[*node].signed);
                    if p == 0 && slack.is_none_or(|s| signed <= deadline.saturating_add(s)) {
                        moves.push((1, Some(*node), false));
                    }
                }
            }
            for (np, n, void) in moves {
                let mut next = st.clone();
                next.prog[g] = np;
                // A gap's filler (`None`) writes nothing and is signed at time 0; so does a
                // transaction mined out of gas (`void`) — except the request, signed now
                // whatever it writes: a block holding it is stamped after it (RULES §6).
                if let Some(n) = n {
                    let node = &nodes[n];
                    if !void || node.is_t {
                        next.max_signed = next.max_signed.max(node.signed);
                    }
                    if !void {
                        next.value = node.writes.iter().fold(next.value, apply);
                    }
                    next.t_placed |= node.is_t;
                }
                if !seen.contains(&next) {
                    if seen.len() >= MAX_STATES {
                        return None;
                    }
                    seen.insert(next.clone());
                    stack.push(next);
                }
            }
        }
    }
    // Every lane position below T can be filled, so some history includes T; 0 otherwise.
    Some(best.unwrap_or(U256::ZERO))
}

/// Whether an own-address lane has a position below its highest signed (or requested)
/// position that the session never signed.
pub fn has_gaps<'a>(items: impl Iterator<Item = &'a Item>) -> bool {
    let mut lanes: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for it in items {
        if let Place::Own { chain, pos } = it.place {
            lanes.entry(chain).or_default().push(pos);
        }
    }
    lanes.values_mut().any(|ps| {
        ps.sort_unstable();
        ps.dedup();
        ps.iter().enumerate().any(|(i, &p)| p != i as u64)
    })
}

/// Every key written so far (and by `extra`), in a stable order.
pub fn keys<'a>(items: impl Iterator<Item = &'a Item>) -> Vec<Key> {
    let mut ks: Vec<Key> = items.flat_map(|i| i.writes.iter().map(|(k, _)| *k)).collect();
    ks.sort();
    ks.dedup();
    ks
}
