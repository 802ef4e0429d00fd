//! A second, independent model of the time-dependent accounting rules (RULES §1–§4, §7, §8),
//! written from RULES.md only, against the engine (`bridle_common::machine::Machine`) on
//! long random sequences whose clock crosses minute, hour, day, week and calendar-month
//! boundaries (anchors on 29–31 of a month, leap years, `valid_after`), with:
//!
//! - spend limits and streams per asset (the native coin across chains; a token by address,
//!   one address listed once per chain),
//! - gas: fee caps, `max_gas_limit`, gas cost limits, `count_in_native`, a user operation's
//!   five gas limits and its prefund (charged native without a paymaster),
//! - quota and rate limits counted by weight (user operations of 1–6 calls), with more than
//!   64 signatures so that the kept history is truncated (RULES §2 item 4),
//! - EIP-2612 permits (typed data: no gas rule, token charged),
//! - escalation `above_value` (native or token, every `per`), held requests asked again,
//!   approved, denied, expired, at most 16 held,
//! - policy updates mid-period (RULES §7: the ledger, uses and history stay).
//!
//! - escalation `above_usd` with prices changed by updates and a token listed twice (RULES §8:
//!   what moved valued at the table in force, a token at its highest listing).
//!
//! Every decision is compared, and every ledger line (native, tokens, gas, USD) in every
//! period after every step. `BRIDLE_PERIODS_SEQUENCES` sets how many sequences (default
//! 2 000; 100 000 take about 3 minutes with `cargo test --release -p bridle-common --test
//! periods_model`, ~12 in debug), `BRIDLE_PERIODS_SEED` the first. Written by a review of
//! 2026-12-07: 100 000 sequences, 6.4 M decisions, no disagreement; with `MERGE = false`
//! (RULES' literal "signatures") the engine allows ~0.5 ‰ of requests in a window the literal
//! reading counts as full, all within the exact count (the engine keeps one entry per session
//! second: SECURITY.md, "Differential results").
//!
//! The parts, included as one module: `periods_model/calendar.rs` (RULES §3's periods),
//! `policy.rs` (random policies), `requests.rs` (random requests), `model.rs` (the model).

use alloy_primitives::Signature;
use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::ledger::LedgerKey;
use bridle_common::machine::Machine;
use bridle_common::machine::Signer;
use bridle_common::payload::prepare;
use bridle_common::period::Period;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{CompiledPolicy, Policy};
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};

/// A small deterministic generator (xorshift*), as the differential's.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let x = &mut self.0;
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// A key that signs nothing real (the decision core never checks signatures).
struct NullSigner;

impl Signer for NullSigner {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}
use std::collections::HashMap;

const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");
const X1: Address = address!("0000000000000000000000000000000000001001");
const X2: Address = address!("0000000000000000000000000000000000001002");
const OTHER: Address = address!("0000000000000000000000000000000000002001");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const S1: Address = address!("000000000000000000000000000000000000a001");
const SCA: Address = address!("0000000000000000000000000000000000005ca0");
const PM: Address = address!("000000000000000000000000000000000000ba11");

alloy_sol_types::sol! {
    function transfer(address to, uint256 amount) returns (bool);
}

include!("periods_model/calendar.rs");
include!("periods_model/policy.rs");
include!("periods_model/requests.rs");
include!("periods_model/model.rs");

// ---------------------------------------------------------------- the run

#[derive(Debug, Default, Clone)]
struct Stats {
    sequences: u64,
    skipped: u64,
    decisions: u64,
    allowed: u64,
    pending: u64,
    approved: u64,
    truncated_full: u64,
    truncated_allowed: u64,
    month_crossed: u64,
    codes: std::collections::BTreeMap<String, u64>,
    notes: Vec<String>,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.sequences += o.sequences;
        self.skipped += o.skipped;
        self.decisions += o.decisions;
        self.allowed += o.allowed;
        self.pending += o.pending;
        self.approved += o.approved;
        self.truncated_full += o.truncated_full;
        self.truncated_allowed += o.truncated_allowed;
        self.month_crossed += o.month_crossed;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
        if self.notes.len() < 20 {
            self.notes.extend(o.notes.into_iter().take(5));
        }
    }
}

/// Anchors where calendar months are interesting.
fn created_at(r: &mut Rng) -> u64 {
    let special = [
        (2027, 1, 31),
        (2028, 1, 31),
        (2028, 1, 29),
        (2027, 1, 29),
        (2027, 3, 31),
        (2027, 5, 31),
        (2027, 8, 31),
        (2027, 12, 31),
        (2028, 2, 29),
        (2027, 2, 28),
        (2027, 10, 31),
        (2027, 4, 30),
    ];
    if r.chance(70) {
        let (y, m, d) = *r.pick(&special);
        unix(y, m, d, r.below(86_400))
    } else {
        1_798_761_600 + r.below(400 * 86_400)
    }
}

enum Ev {
    Sign(Box<Req>),
    Resend(B256),
    Approve(B256),
    Deny(B256),
    Update(Box<Pol>),
}

fn run_one(seed: u64) -> Result<Stats, String> {
    let mut r = Rng::new(seed ^ 0x005e_ed0f_2222);
    let mut st = Stats { sequences: 1, ..Stats::default() };
    let created = created_at(&mut r);
    let burst = r.chance(12);
    let pol = gen_policy(&mut r, created, created, true, burst);
    let Some((_, compiled)) = compile(&pol.text, created) else {
        st.skipped += 1;
        return Ok(st);
    };
    let mut engine = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), compiled, created, 60, 1 << 16);
    let anchor = pol.valid_after.unwrap_or(created).max(created);
    if engine.facts.anchor != anchor {
        return Err(format!("seed {seed}: anchor engine {}, model {anchor}", engine.facts.anchor));
    }
    let mut m = Model {
        anchor,
        time: created,
        pol,
        uses: 0,
        sigs: vec![],
        kept: vec![],
        dropped: None,
        charges: vec![],
        held: HashMap::new(),
    };
    let steps = if burst || r.chance(5) { 150 + r.below(150) } else { 20 + r.below(40) };
    let mut clock = created;
    let mut nonces = Nonces { tx: HashMap::new(), op: 0 };
    let mut digests: Vec<B256> = Vec::new();
    let mut held_payloads: HashMap<B256, SignPayload> = HashMap::new();
    let mut held_reqs: HashMap<B256, Req> = HashMap::new();
    let mut log: Vec<String> = vec![format!("created {created}, anchor {anchor}\npolicy:\n{}", m.pol.text)];
    let fail = |log: &[String], what: String| Err(format!("seed {seed}: {what}\n--- sequence ---\n{}", log.join("\n")));
    let start_month = P::Month.index(anchor, created);
    for i in 0..steps {
        // The clock: small steps, jumps, period boundaries ± 1 s, and now and then back.
        clock = if burst && r.chance(90) {
            clock + r.below(4)
        } else {
            match r.below(20) {
                0..=7 => clock + r.below(6),
                8..=9 => clock + r.below(300),
                10..=11 => clock + r.below(7200),
                12 => clock + r.below(3 * 86_400),
                13..=16 => {
                    let p = *r.pick(&[P::Minute, P::Minute, P::Hour, P::Hour, P::Day, P::Day, P::Week, P::Month]);
                    let b = p.next_start(anchor, m.time.max(clock));
                    (b + r.below(3)).saturating_sub(1).max(clock)
                }
                17 => clock.saturating_sub(r.below(120)),
                _ => clock + r.below(60),
            }
        };
        let ev = match r.below(24) {
            0 | 1 if !digests.is_empty() => Ev::Approve(*r.pick(&digests)),
            2 if !digests.is_empty() => Ev::Deny(*r.pick(&digests)),
            3 | 4 if !digests.is_empty() => Ev::Resend(*r.pick(&digests)),
            5 => {
                let b = burst && r.chance(80);
                Ev::Update(Box::new(gen_policy(&mut r, m.time.max(clock), created, false, b)))
            }
            _ => Ev::Sign(Box::new(gen_req(&mut r, &mut nonces, m.time.max(clock), burst))),
        };
        let stamp_nonce = {
            let mut n = [0u8; 16];
            n[..8].copy_from_slice(&(i + 1).to_be_bytes());
            n
        };
        match ev {
            Ev::Update(pol) => {
                let Some((_, compiled)) = compile(&pol.text, m.time.max(clock)) else { continue };
                log.push(format!("step {i} at {clock}: update\n{}", pol.text));
                m.tick(clock);
                m.pol = *pol;
                let e = engine.update_policy(clock, compiled).result;
                if let Err(d) = e {
                    return fail(&log, format!("step {i}: update refused {d}"));
                }
            }
            Ev::Sign(_) | Ev::Resend(_) => {
                let (pl, req) = match ev {
                    Ev::Sign(req) => (payload(&req), Some(*req)),
                    Ev::Resend(d) => (held_payloads[&d].clone(), None),
                    _ => unreachable!(),
                };
                let prepared = match prepare(&pl) {
                    Ok(p) => p,
                    Err(d) => return fail(&log, format!("step {i}: prepare refused {d}")),
                };
                let digest = prepared.stamp_digest();
                let req = match req {
                    Some(r) => r,
                    None => held_reqs[&digest].clone(),
                };
                log.push(format!("step {i} at {clock}: sign {req:?}"));
                let t = m.tick(clock);
                // The model's verdict.
                let mut v = None;
                if let Some(h) = m.held.get(&digest) {
                    if t < h.expires {
                        v = Some(if h.signed {
                            V::Allowed
                        } else if h.denied {
                            V::Denied(vec!["denied_by_owner"])
                        } else {
                            V::Pending
                        });
                    } else {
                        m.held.remove(&digest);
                    }
                }
                let mut charges = None;
                let mut may = vec![];
                let v = match v {
                    Some(v) => v,
                    None => {
                        let (must, may_, ch) = m.check(&req, t);
                        may = may_;
                        if !must.is_empty() {
                            V::Denied(must)
                        } else {
                            charges = Some(ch.clone());
                            if m.escalates(&ch, t) {
                                // At most 16 held: the expired ones are forgotten first.
                                let live = m.held.values().filter(|h| t < h.expires).count();
                                if m.held.len() >= 16 && live >= 16 {
                                    V::Denied(vec!["rate_limited"])
                                } else {
                                    V::Pending
                                }
                            } else {
                                V::Allowed
                            }
                        }
                    }
                };
                let stamp = Stamp { nonce: stamp_nonce, timestamp: engine.time_at(clock), mac: [0; 32] };
                let e = engine.sign(clock, &pl, prepared, &stamp, Some(&NullSigner)).result;
                log.push(format!(
                    "  engine {:?} / model {v:?} may {may:?}",
                    e.as_ref().map(|_| ()).map_err(|d| d.to_string())
                ));
                st.decisions += 1;
                let code = e.as_ref().err().map(|d| d.code.as_str());
                match (code, &v) {
                    (None, V::Allowed) => {
                        st.allowed += 1;
                        if let Some(ch) = charges {
                            m.charge(&ch, t);
                            st.truncated_allowed += u64::from(!may.is_empty());
                        }
                    }
                    (Some("pending_approval"), V::Pending) => {
                        st.pending += 1;
                        if charges.is_some() {
                            if m.held.len() >= 16 {
                                m.held.retain(|_, h| t < h.expires);
                            }
                            // Newly held: at most 16 (RULES §8).
                            let ttl = m.pol.escalate.map(|e| e.3).or(m.pol.esc_usd.map(|e| e.2)).unwrap_or(0);
                            m.held.insert(
                                digest,
                                Held { req: req.clone(), expires: t + ttl, window: ttl, signed: false, denied: false },
                            );
                            held_payloads.insert(digest, pl.clone());
                            held_reqs.insert(digest, req.clone());
                            if !digests.contains(&digest) {
                                digests.push(digest);
                            }
                        }
                    }
                    (Some(c), V::Denied(codes)) if codes.contains(&c) || may.contains(&c) => {
                        if c == "rate_limited" && charges.is_some() && m.held.len() >= 16 {
                            // The 17th hold refused: the expired ones were forgotten.
                            m.held.retain(|_, h| t < h.expires);
                        }
                        *st.codes.entry(c.to_string()).or_default() += 1;
                    }
                    (Some("rate_limited"), _) if may.contains(&"rate_limited") && charges.is_some() => {
                        st.truncated_full += 1;
                        *st.codes.entry("rate_limited (kept history full)".into()).or_default() += 1;
                    }
                    _ => {
                        let ed = e.as_ref().err().map(|d| d.to_string());
                        return fail(&log, format!("step {i}: engine {ed:?}, model {v:?} (may {may:?})"));
                    }
                }
            }
            Ev::Approve(d) => {
                let t = m.tick(clock);
                log.push(format!("step {i} at {clock}: approve {d:#x}"));
                let mut charged = None;
                let mut may = vec![];
                let v = match m.held.get(&d).cloned() {
                    None => V::Denied(vec!["malformed"]),
                    Some(h) if t < h.expires && h.signed => V::Allowed,
                    Some(_) if t >= m.held[&d].expires => {
                        m.held.remove(&d);
                        V::Denied(vec!["expired"])
                    }
                    Some(h) if h.denied => V::Denied(vec!["denied_by_owner"]),
                    Some(h) => {
                        let (must, may_, ch) = m.check(&h.req, t);
                        may = may_;
                        if must.is_empty() {
                            charged = Some(ch);
                            V::Allowed
                        } else {
                            V::Denied(must)
                        }
                    }
                };
                let e = engine.approve(clock, d, Some(&NullSigner)).result;
                log.push(format!(
                    "  engine {:?} / model {v:?} may {may:?}",
                    e.as_ref().map(|_| ()).map_err(|d| d.to_string())
                ));
                let code = e.as_ref().err().map(|d| d.code.as_str());
                match (code, &v) {
                    (None, V::Allowed) => {
                        if let Some(ch) = charged {
                            st.approved += 1;
                            m.charge(&ch, t);
                            let h = m.held.get_mut(&d).unwrap();
                            h.signed = true;
                            h.expires = t + h.window;
                        }
                    }
                    (Some(c), V::Denied(codes)) if codes.contains(&c) || may.contains(&c) => {}
                    (Some("rate_limited"), V::Allowed) if may.contains(&"rate_limited") && charged.is_some() => {
                        st.truncated_full += 1;
                    }
                    _ => {
                        let ed = e.as_ref().err().map(|d| d.to_string());
                        return fail(&log, format!("step {i} approve: engine {ed:?}, model {v:?} (may {may:?})"));
                    }
                }
            }
            Ev::Deny(d) => {
                let t = m.tick(clock);
                log.push(format!("step {i} at {clock}: deny {d:#x}"));
                let v = match m.held.get(&d).cloned() {
                    None => V::Denied(vec!["malformed"]),
                    Some(h) if t >= h.expires => {
                        m.held.remove(&d);
                        V::Denied(vec!["expired"])
                    }
                    Some(h) if h.signed => V::Denied(vec!["malformed"]),
                    Some(_) => {
                        m.held.get_mut(&d).unwrap().denied = true;
                        V::Allowed
                    }
                };
                let e = engine.deny(clock, d).result;
                let code = e.as_ref().err().map(|d| d.code.as_str());
                log.push(format!("  engine {:?} / model {v:?}", e.as_ref().map(|_| ()).map_err(|d| d.to_string())));
                match (code, &v) {
                    (None, V::Allowed) => {}
                    (Some(c), V::Denied(codes)) if codes.contains(&c) => {}
                    _ => return fail(&log, format!("step {i} deny: engine {e:?}, model {v:?}")),
                }
            }
        }
        if r.chance(2) {
            let bytes = bridle_common::frame::to_cbor(&engine.snapshot()).map_err(|e| e.to_string())?;
            let snap = bridle_common::frame::from_cbor(&bytes).map_err(|e| e.to_string())?;
            engine = Machine::restore(snap).map_err(|e| format!("seed {seed}: restore: {e}"))?;
        }
        // Same session time, uses and every ledger line in every period.
        if engine.time() != m.time {
            return fail(&log, format!("step {i}: session time engine {}, model {}", engine.time(), m.time));
        }
        if engine.counters().uses != m.uses {
            return fail(&log, format!("step {i}: uses engine {}, model {}", engine.counters().uses, m.uses));
        }
        for (k, a) in [
            (LedgerKey::Native, Asset::Native),
            (LedgerKey::Token(X1), Asset::Tok(X1)),
            (LedgerKey::Token(X2), Asset::Tok(X2)),
            (LedgerKey::GasCost, Asset::Gas),
            (LedgerKey::Usd, Asset::Usd),
        ] {
            for p in ALL_P {
                let e = engine.counters().ledger.spent(k, p.engine(), engine.facts.anchor, m.time);
                let mm = m.spent(a, p, m.time);
                if e != mm {
                    return fail(&log, format!("step {i}: ledger {k:?} {}: engine {e}, model {mm}", p.name()));
                }
            }
        }
    }
    if P::Month.index(anchor, m.time) > start_month {
        st.month_crossed += 1;
    }
    Ok(st)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn the_calendar_agrees_with_rules_examples() {
    // 2028-01-31 10:00 → 29 Feb → 31 Mar → 30 Apr (RULES §3's example).
    let a = unix(2028, 1, 31, 36_000);
    assert_eq!(date(month_start(a, 1)), (2028, 2, 29, 36_000));
    assert_eq!(date(month_start(a, 2)), (2028, 3, 31, 36_000));
    assert_eq!(date(month_start(a, 3)), (2028, 4, 30, 36_000));
    assert_eq!(unix(2027, 1, 1, 0), 1_798_761_600);
    assert_eq!(P::Month.index(a, month_start(a, 2) - 1), 1);
    assert_eq!(P::Month.index(a, month_start(a, 2)), 2);
}

#[test]
fn engine_agrees_with_a_second_model_of_periods_gas_and_rates() {
    let n = env("BRIDLE_PERIODS_SEQUENCES", 2_000);
    let first = env("BRIDLE_PERIODS_SEED", 1);
    let threads = 2u64;
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || -> (Stats, Vec<String>) {
                let mut st = Stats::default();
                let mut fails = Vec::new();
                let mut seed = first + t;
                while seed < first + n {
                    match run_one(seed) {
                        Ok(s) => st += s,
                        Err(e) => {
                            if fails.len() < 3 {
                                fails.push(e)
                            }
                        }
                    }
                    seed += threads;
                }
                (st, fails)
            })
        })
        .collect();
    let mut total = Stats::default();
    let mut fails = Vec::new();
    for h in handles {
        let (s, f) = h.join().unwrap();
        total += s;
        fails.extend(f);
    }
    println!("{n} sequences in {:.1?}: {total:#?}", start.elapsed());
    if !fails.is_empty() {
        panic!("{} failing (first few):\n\n{}", fails.len(), fails.join("\n\n=====\n\n"));
    }
}
