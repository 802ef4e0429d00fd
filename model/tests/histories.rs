//! The registry search (`registry::worst`) against the most literal enumeration of RULES §6:
//! pick a prefix and a transaction per position of the own lane (a position the session
//! signed nothing at, below one it did, holds a transaction that writes nothing, signed at
//! time 0), a subset of the smart lane's operations (one per position), a subset of the
//! permits, then every interleaving that keeps lane order and the permit-deadline rule
//! (a permit comes after something only if its deadline plus 60 s is not earlier than when
//! that was signed; an own-lane transaction that writes no approval counts as signed at time 0), and
//! every point of it.

use alloy_primitives::{address, Address, U256};
use bridle_model::registry::{worst, Item, Key, Kind, Place, Write};

const EPA: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// RULES §6: how far a block's stamp may trail the signing.
const SLACK: u64 = 60;
/// Times in ten-second ticks, so that the slack decides some deadlines and not all.
const TICK: u64 = 10;

fn key() -> Key {
    Key {
        chain: 1,
        holder: Address::ZERO,
        token: Address::repeat_byte(1),
        spender: Address::repeat_byte(2),
        kind: Kind::Erc20,
    }
}

fn random_item(r: &mut Rng, signed_at: u64) -> Item {
    let place = match r.below(3) {
        0 => Place::Own { chain: 1, pos: r.below(3) },
        1 => Place::Smart { chain: 1, entry_point: EPA, sender: Address::ZERO, key: U256::ZERO, pos: r.below(3) },
        _ => Place::Float { deadline: TICK * r.below(12) },
    };
    let mut writes = Vec::new();
    for _ in 0..r.below(3) {
        let v = U256::from(r.below(4) * 10);
        // Now and then a Permit2 write with an end (an allowance set until its expiration, or
        // a one-shot transfer authority, which floats).
        let end = (r.below(3) == 0).then(|| TICK * r.below(14));
        let float = matches!(place, Place::Float { .. });
        let w = match (r.below(3) == 0, end) {
            (true, None) if !float => Write::Add(v),
            (true, Some(e)) if float => Write::AddUntil(v, e),
            (_, Some(e)) => Write::SetUntil(v, e),
            _ => Write::Set(v),
        };
        writes.push((key(), w));
    }
    let may_revert = matches!(place, Place::Own { .. }) && !writes.is_empty() && r.below(4) == 0;
    Item { place, signed_at, writes, may_revert }
}

fn is_float(i: &Item) -> bool {
    matches!(i.place, Place::Float { .. })
}

fn pos(i: &Item) -> u64 {
    match i.place {
        Place::Own { pos, .. } | Place::Smart { pos, .. } => pos,
        Place::Float { .. } => 0,
    }
}

/// Every interleaving of `seqs` (each kept in order), passed to `f`.
fn interleavings(seqs: &mut [Vec<usize>], at: &mut [usize], out: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
    let mut any = false;
    for s in 0..seqs.len() {
        if at[s] < seqs[s].len() {
            any = true;
            out.push(seqs[s][at[s]]);
            at[s] += 1;
            interleavings(seqs, at, out, f);
            at[s] -= 1;
            out.pop();
        }
    }
    if !any {
        f(out);
    }
}

/// When an item counts as signed for the permit timing rule.
fn signed(i: &Item) -> u64 {
    match i.place {
        Place::Own { .. } if i.writes.is_empty() => 0,
        _ => i.signed_at,
    }
}

fn literal(items: &[Item], t: Option<usize>, now: u64) -> U256 {
    // Fill the own lane's gaps with transactions that write nothing, signed at time 0.
    let mut items = items.to_vec();
    let own_top = items.iter().filter(|i| matches!(i.place, Place::Own { .. })).map(pos).max();
    for p in 0..own_top.unwrap_or(0) {
        if !items.iter().any(|i| matches!(i.place, Place::Own { .. }) && pos(i) == p) {
            items.push(Item {
                place: Place::Own { chain: 1, pos: p },
                signed_at: 0,
                writes: Vec::new(),
                may_revert: false,
            });
        }
    }
    // A transaction that may run out of gas may also fill its position writing nothing
    // (RULES §6: as a write-less transaction, signed at time 0). Not the request: the test
    // never makes it one.
    for i in 0..items.len() {
        if items[i].may_revert && Some(i) != t {
            items.push(Item { writes: Vec::new(), signed_at: 0, may_revert: false, ..items[i].clone() });
        }
    }
    let items = &items[..];
    let n = items.len();
    let own: Vec<usize> = (0..n).filter(|&i| matches!(items[i].place, Place::Own { .. })).collect();
    let smart: Vec<usize> = (0..n).filter(|&i| matches!(items[i].place, Place::Smart { .. })).collect();
    let floats: Vec<usize> = (0..n).filter(|&i| is_float(&items[i])).collect();
    // Own lane: every prefix k with one transaction per position.
    let mut own_choices: Vec<Vec<usize>> = vec![Vec::new()];
    let mut frontier: Vec<Vec<usize>> = vec![Vec::new()];
    for p in 0..4u64 {
        let at: Vec<usize> = own.iter().copied().filter(|&i| pos(&items[i]) == p).collect();
        let next: Vec<Vec<usize>> =
            frontier.iter().flat_map(|f| at.iter().map(move |&i| [f.clone(), vec![i]].concat())).collect();
        own_choices.extend(next.iter().cloned());
        frontier = next;
    }
    // Smart lane: subsets with distinct positions, in position order.
    let mut smart_choices = Vec::new();
    for mask in 0u32..(1 << smart.len()) {
        let mut s: Vec<usize> = (0..smart.len()).filter(|b| mask >> b & 1 == 1).map(|b| smart[b]).collect();
        s.sort_by_key(|&i| pos(&items[i]));
        if s.windows(2).all(|w| pos(&items[w[0]]) < pos(&items[w[1]])) {
            smart_choices.push(s);
        }
    }
    let mut best: Option<U256> = None;
    for o in &own_choices {
        for s in &smart_choices {
            for fm in 0u32..(1 << floats.len()) {
                let mut seqs: Vec<Vec<usize>> = vec![o.clone(), s.clone()];
                seqs.extend((0..floats.len()).filter(|b| fm >> b & 1 == 1).map(|b| vec![floats[b]]));
                let mut at = vec![0; seqs.len()];
                interleavings(&mut seqs, &mut at, &mut Vec::new(), &mut |h: &[usize]| {
                    let ok = h.iter().enumerate().all(|(j, &y)| match items[y].place {
                        Place::Float { deadline } => h[..=j].iter().all(|&x| signed(&items[x]) <= deadline + SLACK),
                        _ => true,
                    });
                    if !ok {
                        return;
                    }
                    let mut v = U256::ZERO;
                    let mut seen_t = t.is_none();
                    if seen_t {
                        best = Some(best.map_or(v, |b| b.max(v)));
                    }
                    for &x in h {
                        for (_, w) in &items[x].writes {
                            // Every point is taken at `now`: a Permit2 write whose end is
                            // more than the slack before it counts 0.
                            let live = |e: u64| e + SLACK >= now;
                            v = match *w {
                                Write::Set(a) => a,
                                Write::Add(a) => v.saturating_add(a),
                                Write::SetUntil(a, e) => {
                                    if live(e) {
                                        a
                                    } else {
                                        U256::ZERO
                                    }
                                }
                                Write::AddUntil(a, e) => {
                                    if live(e) {
                                        v.saturating_add(a)
                                    } else {
                                        v
                                    }
                                }
                            };
                        }
                        seen_t |= Some(x) == t;
                        if seen_t {
                            best = Some(best.map_or(v, |b| b.max(v)));
                        }
                    }
                });
            }
        }
    }
    best.unwrap_or(U256::ZERO)
}

#[test]
fn the_search_equals_the_literal_enumeration() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let count = 1 + r.below(6) as usize;
        let mut items: Vec<Item> = (0..count).map(|i| random_item(&mut r, TICK * i as u64 * 2)).collect();
        let with_t = r.below(3) != 0;
        let now = TICK * (2 * count as u64 + r.below(6));
        let got = if with_t {
            let mut t_item = items.pop().unwrap();
            t_item.may_revert = false;
            let got = worst(&items, Some(&t_item), &key(), now);
            // T at its position (the literal enumeration excludes the others there itself).
            let t_idx = items.len();
            let mut all = items.clone();
            all.push(t_item.clone());
            let exclude: Vec<usize> = (0..t_idx)
                .filter(|&i| {
                    std::mem::discriminant(&all[i].place) == std::mem::discriminant(&t_item.place)
                        && !is_float(&t_item)
                        && pos(&all[i]) == pos(&t_item)
                })
                .collect();
            let kept: Vec<Item> =
                all.iter().enumerate().filter(|(i, _)| !exclude.contains(i)).map(|(_, it)| it.clone()).collect();
            let want = literal(&kept, Some(kept.len() - 1), now);
            assert_eq!(got, Some(want), "case {case}: {items:?} T={t_item:?}");
            continue;
        } else {
            worst(&items, None, &key(), now)
        };
        assert_eq!(got, Some(literal(&items, None, now)), "case {case}: {items:?} now={now}");
    }
}
