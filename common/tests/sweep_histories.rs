//! A review of 2026-12-07 (sweeps): random walks of the agent's requests interleaved with unauthenticated
//! and owner sweeps, revocation and status reads, decided by the real machine; after every
//! step every on-chain history of what was signed is enumerated (brute force, as in
//! `exposure_histories.rs`).
//!
//! Invariants checked:
//! * an agent signature adds no state above the ceiling that was not possible before;
//! * an unauthenticated sweep adds no state at all (key by key, every new state is below
//!   one possible before it);
//! * `key_destroyed` only when no history holds any allowance;
//! * a key the view calls settled (`revoked`/`swept`, amount > 0) is 0 in every history
//!   once its settling nonce is mined.
use alloy_primitives::{Address, U256};
use bridle_common::allowance::aggregate::Book;
use bridle_common::allowance::AllowanceState;
use bridle_common::machine::Machine;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};
use bridle_common::protocol::SweepTerms;
use std::collections::HashSet;

#[path = "support/histories.rs"]
mod histories;
mod support;
use histories::*;
use support::{ask, Key, OWNER};

fn text() -> String {
    let spenders: Vec<String> = (0..3).map(|i| format!("\"{}\"", spender(i))).collect();
    format!(
        r#"
name = "sweep-histories"
chains = [1]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "{CEILING} USD"
owner_exposure_ceiling = "{CEILING} USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)", "increaseAllowance(address,uint256)", "transfer(address,uint256)"]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = [{}]
max = ["1000 USDC"]
lifetime = "5s"
"#,
        spenders.join(", ")
    )
}

fn machine(addr: u8) -> Machine {
    let p = CompiledPolicy::compile(resolve_text(&text(), T0).expect("policy")).expect("compiles");
    Machine::new(Address::repeat_byte(addr), OWNER, Address::repeat_byte(0xa9), p, T0, 60, 4096)
}

#[derive(Debug, Clone)]
enum Signed {
    Tx { nonce: u64, writes: Vec<W>, may_revert: bool },
    Plain { nonce: u64 },
}

fn alts(signed: &[Signed]) -> Vec<Vec<Vec<W>>> {
    let top = signed
        .iter()
        .map(|s| match s {
            Signed::Tx { nonce, .. } | Signed::Plain { nonce } => *nonce + 1,
        })
        .max()
        .unwrap_or(0);
    let mut alts: Vec<Vec<Vec<W>>> = vec![Vec::new(); top as usize];
    for s in signed {
        match s {
            Signed::Tx { nonce, writes, may_revert } => {
                alts[*nonce as usize].push(writes.clone());
                if *may_revert {
                    alts[*nonce as usize].push(vec![]);
                }
            }
            Signed::Plain { nonce } => alts[*nonce as usize].push(vec![]),
        }
    }
    for a in alts.iter_mut() {
        if a.is_empty() {
            a.push(vec![]);
        }
    }
    alts
}

/// Every state reached at some point of some history.
fn states(signed: &[Signed]) -> HashSet<[u64; 3]> {
    let alts = alts(signed);
    let mut out = HashSet::new();
    fn dfs(pos: usize, v: [u64; 3], alts: &[Vec<Vec<W>>], out: &mut HashSet<[u64; 3]>) {
        out.insert(v);
        if pos < alts.len() {
            for w in &alts[pos] {
                let mut v2 = v;
                apply(&mut v2, w);
                dfs(pos + 1, v2, alts, out);
            }
        }
    }
    dfs(0, [0; 3], &alts, &mut out);
    out
}

/// The largest value of key `k` at or after position `n` (once position `n` holds one of
/// what was signed there and the prefix is mined) over every history where position `n`
/// holds an item writing `k` to zero.
fn after_settle(signed: &[Signed], k: u8, n: u64) -> u64 {
    let alts = alts(signed);
    let mut best = 0;
    fn dfs(pos: usize, v: [u64; 3], past: bool, k: u8, n: usize, alts: &[Vec<Vec<W>>], best: &mut u64) {
        if past {
            *best = (*best).max(v[k as usize]);
        }
        if pos < alts.len() {
            for w in &alts[pos] {
                if pos == n && !w.iter().any(|w| matches!(w, W::Set(kk, 0) if *kk == k)) {
                    continue;
                }
                let mut v2 = v;
                apply(&mut v2, w);
                dfs(pos + 1, v2, past || pos == n, k, n, alts, best);
            }
        }
    }
    dfs(0, [0; 3], false, k, n as usize, &alts, &mut best);
    best
}

fn spender_index(a: Address) -> u8 {
    (0..3).find(|&i| spender(i) == a).expect("one of ours")
}

fn terms(nonce: u64, fee: u128) -> [SweepTerms; 1] {
    [SweepTerms { chain_id: 1, nonce, max_fee_per_gas: fee, max_priority_fee_per_gas: 1, gas_limit: 100_000 }]
}

fn walk(seed: u64, steps: usize, failures: &mut Vec<String>, counts: &mut [usize; 6]) {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut book = Book::new();
    let mut m = machine(0x51);
    let me = m.facts.address;
    book.publish(me, OWNER, m.facts.agent, m.holdings(), m.declares());
    let mut clock = T0 + 10;
    let mut next = 0u64;
    let mut signed: Vec<Signed> = Vec::new();
    let mut log: Vec<String> = Vec::new();
    let mut before = states(&signed);
    let mut revoked = false;
    for _ in 0..steps {
        clock += r.below(8);
        let reg_next = m.counters().allowances.next_nonce(1);
        let choice = r.below(10);
        if choice < 5 {
            // The agent.
            let nonce = match r.below(10) {
                0..=4 => reg_next.saturating_sub(1 + r.below(3)),
                5 => reg_next + r.below(2),
                _ => reg_next,
            };
            let s = r.below(3) as u8;
            let a = [0u64, 0, 30, 50, 60, 100][r.below(6) as usize];
            let gas = if r.below(4) == 0 { 50_000 } else { 100_000 };
            let fee = 1_000_000_000 + r.below(3) as u128;
            let (what, payload, sg) = match r.below(6) {
                0..=2 => (
                    format!("agent approve(K{s}, {a}) at {nonce} gas {gas}"),
                    tx(nonce, call(APPROVE, spender(s), usdc(a)), gas, fee),
                    Signed::Tx { nonce, writes: vec![W::Set(s, a)], may_revert: gas < 100_000 || a != 0 },
                ),
                3 => {
                    let a = a.max(10);
                    (
                        format!("agent increaseAllowance(K{s}, {a}) at {nonce} gas {gas}"),
                        tx(nonce, call(INCREASE, spender(s), usdc(a)), gas, fee),
                        Signed::Tx { nonce, writes: vec![W::Add(s, a)], may_revert: gas < 100_000 },
                    )
                }
                _ => (
                    format!("agent transfer at {nonce}"),
                    tx(nonce, call(TRANSFER, OWNER, U256::from(1u8)), gas, fee),
                    Signed::Plain { nonce },
                ),
            };
            let ok = ask(&mut m, &mut book, clock, &payload);
            log.push(format!(
                "t+{} {what} -> {}",
                clock - T0,
                ok.as_ref().map(|_| "signed".to_string()).unwrap_or_else(|d| format!("{:?}", d.code))
            ));
            if ok.is_err() {
                continue;
            }
            if revoked {
                failures.push(format!("seed {seed}: the agent signed after revocation\n{log:#?}"));
                return;
            }
            counts[0] += 1;
            signed.push(sg);
            next = next.max(nonce + 1);
            let after = states(&signed);
            for st in after.difference(&before) {
                let total: u64 = st.iter().sum();
                let covered = before.iter().any(|o| o.iter().zip(st).all(|(a, b)| a >= b));
                if total > CEILING && !covered {
                    failures
                        .push(format!("seed {seed}: agent signature made state {st:?} ({total}) possible\n{log:#?}"));
                    return;
                }
            }
            before = after;
        } else if choice < 8 || choice == 9 {
            // A sweep: unauthenticated (choice 5..7) or the owner's (9).
            let authed = choice == 9;
            let nonce = match r.below(6) {
                0..=2 => reg_next,
                3 => reg_next.saturating_sub(1),
                _ => r.below(reg_next + 1),
            };
            let fee = if r.below(2) == 0 { 1_000_000_000 } else { 2_000_000_000 + r.below(3) as u128 };
            let out = m.sweep(clock, &terms(nonce, fee), authed, Some(&Key));
            book.publish(me, OWNER, m.facts.agent, m.holdings(), m.declares());
            let rep = match out.result {
                Ok(rep) => rep,
                Err(d) => {
                    log.push(format!(
                        "t+{} {} sweep at {nonce} -> {:?} {}",
                        clock - T0,
                        if authed { "owner" } else { "anon" },
                        d.code,
                        d.reason
                    ));
                    continue;
                }
            };
            let txs: Vec<(u64, u8)> = rep.transactions.iter().map(|t| (t.nonce, spender_index(t.spender))).collect();
            log.push(format!(
                "t+{} {} sweep at {nonce} -> {:?} skipped {} destroyed {}",
                clock - T0,
                if authed { "owner" } else { "anon" },
                txs,
                rep.skipped.len(),
                rep.key_destroyed
            ));
            counts[if authed { 2 } else { 1 }] += txs.len();
            for (n, s) in &txs {
                signed.push(Signed::Tx { nonce: *n, writes: vec![W::Set(*s, 0)], may_revert: false });
                next = next.max(n + 1);
            }
            let after = states(&signed);
            if !authed {
                for st in after.difference(&before) {
                    let covered = before.iter().any(|o| o.iter().zip(st).all(|(a, b)| a >= b));
                    if !covered {
                        failures
                            .push(format!("seed {seed}: unauthenticated sweep made state {st:?} possible\n{log:#?}"));
                        return;
                    }
                }
            }
            if rep.key_destroyed && after.iter().any(|s| s.iter().any(|&v| v > 0)) {
                failures.push(format!("seed {seed}: key destroyed with an allowance possible\n{log:#?}"));
                return;
            }
            before = after;
        } else {
            // The owner revokes (once), or a status read.
            if !revoked && r.below(3) == 0 {
                let _ = m.revoke(clock, false);
                revoked = true;
                counts[3] += 1;
                log.push(format!("t+{} owner revoke", clock - T0));
            }
        }
        // The view: a key called settled at nonce n is 0 once n is mined.
        let st = m.status(clock, None);
        for a in &st.allowances {
            if matches!(a.state, AllowanceState::Revoked | AllowanceState::Swept) && !a.amount.is_zero() {
                counts[4] += 1;
                let k = spender_index(a.spender);
                let n = a.settled_at_nonce.expect("a settled key names its nonce");
                let v = after_settle(&signed, k, n);
                if v > 0 {
                    failures.push(format!(
                        "seed {seed}: K{k} called {:?} at nonce {n} but reaches {v} after it\n{log:#?}",
                        a.state
                    ));
                    return;
                }
            }
        }
    }
    let _ = next;
}

#[test]
fn sweeps_interleaved_with_the_agent_keep_every_invariant() {
    let seeds: u64 = std::env::var("BRIDLE_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let steps: usize = std::env::var("BRIDLE_SWEEP_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(14);
    let mut failures = Vec::new();
    let mut counts = [0usize; 6];
    for seed in 1..=seeds {
        walk(seed, steps, &mut failures, &mut counts);
        if failures.len() >= 3 {
            break;
        }
    }
    eprintln!(
        "agent signed {}, anon sweep txs {}, owner sweep txs {}, revokes {}, settled views {}",
        counts[0], counts[1], counts[2], counts[3], counts[4]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
