//! Lifecycle transitions (a review of 2026-12-07): owner updates, held requests across
//! updates, expiry, revocation and suspension, driven through the pure machine the enclave
//! runs, and a randomized oracle of every charge under the policy in force.
use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::machine::{Machine, Outcome, Signer};
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};
use bridle_common::protocol::{SignPayload, Signed};
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};

const T0: u64 = 1_800_000_000;
const SESSION: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000b0");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

struct Key;
impl Signer for Key {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

fn policy_text(extra: &str, cap: &str, valid_for: &str) -> String {
    format!(
        r#"
name = "lifecycle"
chains = [1]
valid_for = "{valid_for}"
recipients = ["0x000000000000000000000000000000000000dEaD"]
{extra}

[[limits]]
max = "{cap}"
per = "day"

[[calls]]
target = "0x000000000000000000000000000000000000dEaD"
functions = ["receive()"]
"#
    )
}

fn compile(text: &str, now: u64) -> CompiledPolicy {
    CompiledPolicy::compile(resolve_text(text, now).expect("policy")).expect("compiles")
}

fn machine(text: &str) -> Machine {
    Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), compile(text, T0), T0, 60, 4096)
}

fn pay(nonce: u64, milli_eth: u64) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        gas_limit: 21_000,
        to: Some(DEAD),
        value: U256::from(milli_eth) * U256::from(10u64).pow(U256::from(15u64)),
        data: Bytes::new(),
        access_list: vec![],
    }))
}

fn ask_out(m: &mut Machine, clock: u64, p: &SignPayload) -> Outcome<Signed> {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    let stamp = Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
    m.sign(clock, p, prepare(p).expect("prepares"), &stamp, Some(&Key))
}

fn ask(m: &mut Machine, clock: u64, p: &SignPayload) -> Result<Signed, Denial> {
    ask_out(m, clock, p).result
}

fn code<T: std::fmt::Debug>(r: Result<T, Denial>) -> ErrorCode {
    r.expect_err("refused").code
}

fn digest(p: &SignPayload) -> B256 {
    prepare(p).expect("prepares").stamp_digest()
}

/// Everything but the session time, as data (to show a refused call changed nothing).
fn state(m: &Machine) -> String {
    let mut s = m.snapshot();
    s.time = 0;
    // The replay cache records every fresh stamp by design (RULES §2): left out.
    s.replay.clear();
    serde_json::to_string(&s).expect("json")
}

const ESC: &str = r#"escalate = { above_value = "0.1 ETH", ttl = "1h" }"#;

/// A held request approved after the owner lowered the cap is checked against the lowered
/// cap, and a refused approval changes nothing.
#[test]
fn a_held_request_approved_after_a_cap_was_lowered_is_refused() {
    let mut m = machine(&policy_text(ESC, "1 ETH", "24h"));
    let (a, b) = (pay(0, 500), pay(1, 500));
    assert_eq!(code(ask(&mut m, T0 + 1, &a)), ErrorCode::PendingApproval);
    assert_eq!(code(ask(&mut m, T0 + 2, &b)), ErrorCode::PendingApproval);
    assert!(m.approve(T0 + 3, digest(&a), Some(&Key)).result.is_ok());
    // The owner lowers the day's cap to 0.6 ETH.
    assert!(m.update_policy(T0 + 4, compile(&policy_text(ESC, "0.6 ETH", "24h"), T0 + 4)).result.is_ok());
    let before = state(&m);
    assert_eq!(code(m.approve(T0 + 5, digest(&b), Some(&Key)).result), ErrorCode::SpendCap);
    assert_eq!(state(&m), before, "a refused approval changes nothing");
    // The agent asking again is told it still waits (never signed).
    assert_eq!(code(ask(&mut m, T0 + 6, &b)), ErrorCode::PendingApproval);
    assert_eq!(m.counters().uses, 1);
}

/// An update that changes the period (day → week) or raises the cap never forgets what the
/// session spent, and an update does not move the anchor.
#[test]
fn an_update_never_forgets_spend_or_moves_the_anchor() {
    let mut m = machine(&policy_text("", "1 ETH", "30d"));
    let anchor = m.facts.anchor;
    for i in 0..10 {
        assert!(ask(&mut m, T0 + 10 + i, &pay(i, 100)).is_ok());
    }
    assert_eq!(code(ask(&mut m, T0 + 30, &pay(10, 1))), ErrorCode::SpendCap);
    // Week cap of 1.5 ETH, a session that starts "now" (valid_after set to the update time).
    let week = policy_text("", "1.5 ETH", "29d").replace("per = \"day\"", "per = \"week\"");
    let week = week.replace("valid_for", &format!("valid_after = {}\nvalid_for", T0 + 40));
    let p = compile(&week, T0 + 40);
    assert!(m.update_policy(T0 + 40, p).result.is_ok());
    assert_eq!(m.facts.anchor, anchor, "the anchor is the session's");
    // 0.5 ETH left this week, at any time of the week.
    assert!(ask(&mut m, T0 + 86_400 + 50, &pay(11, 500)).is_ok());
    assert_eq!(code(ask(&mut m, T0 + 86_400 + 60, &pay(12, 1))), ErrorCode::SpendCap);
}

/// Once the session is past valid_until nothing new is signed and nothing held is approved;
/// an approval made before the end can still be collected (its signature already exists).
#[test]
fn an_expired_session_signs_nothing_new() {
    let mut m = machine(&policy_text(ESC, "1 ETH", "2h"));
    let (a, b) = (pay(0, 500), pay(1, 500));
    assert_eq!(code(ask(&mut m, T0 + 1, &a)), ErrorCode::PendingApproval);
    assert_eq!(code(ask(&mut m, T0 + 2, &b)), ErrorCode::PendingApproval);
    assert!(m.approve(T0 + 3, digest(&a), Some(&Key)).result.is_ok());
    let end = T0 + 7200;
    // b is still within its ttl when asked again just before the end: still waiting.
    assert_eq!(code(ask(&mut m, end - 1, &b)), ErrorCode::PendingApproval);
    assert_eq!(code(m.approve(end, digest(&b), Some(&Key)).result), ErrorCode::Expired);
    assert_eq!(code(ask(&mut m, end + 1, &pay(2, 1))), ErrorCode::Expired);
    assert_eq!(m.counters().uses, 1);
}

/// After revocation: no collection of an approved signature, no approval, no update, no
/// signature — and a refused owner call changes nothing.
#[test]
fn a_revoked_session_signs_nothing() {
    let mut m = machine(&policy_text(ESC, "1 ETH", "24h"));
    let (a, b) = (pay(0, 500), pay(1, 500));
    assert_eq!(code(ask(&mut m, T0 + 1, &a)), ErrorCode::PendingApproval);
    assert_eq!(code(ask(&mut m, T0 + 2, &b)), ErrorCode::PendingApproval);
    assert!(m.approve(T0 + 3, digest(&a), Some(&Key)).result.is_ok());
    assert_eq!(m.revoke(T0 + 4, false).result, Ok(true));
    let before = state(&m);
    assert_eq!(code(ask(&mut m, T0 + 5, &a)), ErrorCode::Revoked);
    assert_eq!(code(m.approve(T0 + 6, digest(&b), Some(&Key)).result), ErrorCode::Revoked);
    assert_eq!(
        code(m.update_policy(T0 + 7, compile(&policy_text("", "9 ETH", "24h"), T0 + 7)).result),
        ErrorCode::Revoked
    );
    assert_eq!(code(ask(&mut m, T0 + 8, &pay(2, 1))), ErrorCode::Revoked);
    assert_eq!(state(&m), before, "refused calls on a revoked session change nothing");
    assert!(m.is_revoked());
}

/// The trip-wire: a suspended session approves nothing; the owner's update lifts it, and a
/// request that was waiting was dropped (it must be asked and held again).
#[test]
fn a_suspension_drops_waiting_requests_and_blocks_approvals() {
    let extra = format!("{ESC}\ntrip_wire = {{ denials = 2, within = \"1h\" }}");
    let mut m = machine(&policy_text(&extra, "1 ETH", "24h"));
    let a = pay(0, 500);
    assert_eq!(code(ask(&mut m, T0 + 1, &a)), ErrorCode::PendingApproval);
    // Two denials (wrong chain) trip it.
    let mut wrong = pay(5, 1);
    if let SignPayload::Transaction(TxRequest::Eip1559(t)) = &mut wrong {
        t.chain_id = 5;
    }
    let _ = ask(&mut m, T0 + 2, &wrong);
    let _ = ask(&mut m, T0 + 3, &wrong);
    assert!(m.suspended().is_some());
    assert_eq!(code(m.approve(T0 + 4, digest(&a), Some(&Key)).result), ErrorCode::Suspended);
    assert!(m.update_policy(T0 + 5, compile(&policy_text(&extra, "1 ETH", "24h"), T0 + 5)).result.is_ok());
    assert_eq!(code(m.approve(T0 + 6, digest(&a), Some(&Key)).result), ErrorCode::Malformed, "dropped");
    assert_eq!(m.counters().uses, 0);
}

/// A quota or rate limit tightened by an update counts what was signed before it.
#[test]
fn quota_and_rate_limits_count_history_across_updates() {
    let mut m = machine(&policy_text("", "10 ETH", "24h"));
    for i in 0..5 {
        assert!(ask(&mut m, T0 + 1 + i, &pay(i, 1)).is_ok());
    }
    let q = compile(&policy_text("quota = 5", "10 ETH", "24h"), T0 + 10);
    assert!(m.update_policy(T0 + 10, q).result.is_ok());
    assert_eq!(code(ask(&mut m, T0 + 11, &pay(5, 1))), ErrorCode::QuotaExhausted);
    let r = compile(&policy_text("[[rate_limits]]\nmax = 5\nwindow = \"1 hour\"", "10 ETH", "24h"), T0 + 20);
    assert!(m.update_policy(T0 + 20, r).result.is_ok());
    assert_eq!(code(ask(&mut m, T0 + 21, &pay(5, 1))), ErrorCode::RateLimited);
    assert!(ask(&mut m, T0 + 3601 + 5, &pay(5, 1)).is_ok(), "an hour after the fifth");
}

/// Snapshot and restore in the middle of a transition keeps the held, approved and denied
/// requests and every counter (a cluster replica decides alike).
#[test]
fn a_snapshot_mid_transition_restores_whole() {
    let mut m = machine(&policy_text(ESC, "1 ETH", "24h"));
    let (a, b, c) = (pay(0, 500), pay(1, 500), pay(2, 300));
    for (i, p) in [&a, &b, &c].into_iter().enumerate() {
        assert_eq!(code(ask(&mut m, T0 + 1 + i as u64, p)), ErrorCode::PendingApproval);
    }
    assert!(m.approve(T0 + 5, digest(&a), Some(&Key)).result.is_ok());
    assert!(m.deny(T0 + 6, digest(&c)).result.is_ok());
    assert!(m.update_policy(T0 + 7, compile(&policy_text(ESC, "0.6 ETH", "24h"), T0 + 7)).result.is_ok());
    let mut r = Machine::restore(m.snapshot()).expect("restores");
    assert_eq!(state(&r), state(&m));
    assert_eq!(code(r.approve(T0 + 8, digest(&b), Some(&Key)).result), ErrorCode::SpendCap);
    assert_eq!(code(r.approve(T0 + 8, digest(&c), Some(&Key)).result), ErrorCode::DeniedByOwner);
}

// ---------------------------------------------------------------------------------------
// Random transitions against an independent oracle: every charge (a signature the machine
// made and counted) must satisfy the policy in force at that moment, computed from the whole
// list of earlier charges (never from the machine's own counters); every signature returned
// must be one that was charged; nothing after a revocation.
// ---------------------------------------------------------------------------------------

use bridle_common::period::Period;

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
struct Spec {
    limits: Vec<(Period, u64)>, // milli-ETH
    quota: Option<u64>,
    rate: Option<(u64, u64)>,             // max, window seconds
    escalate: Option<(u64, u64, Period)>, // above milli-ETH, ttl seconds, per
    valid_after: Option<u64>,
    valid_until: u64,
    stream: Option<(u64, u64, u64, u64)>, // initial, rate, every seconds, max (milli-ETH)
}

fn eth(m: u64) -> String {
    format!("{}.{:03} ETH", m / 1000, m % 1000)
}

fn period_name(p: Period) -> &'static str {
    match p {
        Period::Minute => "minute",
        Period::Hour => "hour",
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::Session => "session",
    }
}

const PERIODS: [Period; 6] = [Period::Minute, Period::Hour, Period::Day, Period::Week, Period::Month, Period::Session];

fn random_spec(r: &mut Rng, now: u64) -> Spec {
    let n = 1 + r.below(3) as usize;
    let limits = (0..n).map(|_| (PERIODS[r.below(6) as usize], 50 + r.below(2000))).collect();
    let quota = (r.below(3) == 0).then(|| 1 + r.below(40));
    let rate = (r.below(3) == 0).then(|| (1 + r.below(8), [60, 600, 3600, 86_400][r.below(4) as usize]));
    let escalate =
        (r.below(2) == 0).then(|| (r.below(800), [60, 600, 3600][r.below(3) as usize], PERIODS[r.below(6) as usize]));
    let valid_after = (r.below(8) == 0).then(|| now + r.below(7200));
    let valid_until = valid_after.unwrap_or(now) + 600 + r.below(3 * 86_400);
    let stream = (r.below(3) == 0)
        .then(|| (r.below(500), 1 + r.below(50), [60, 3600][r.below(2) as usize], 500 + r.below(5000)));
    Spec { limits, quota, rate, escalate, valid_after, valid_until, stream }
}

fn spec_text(s: &Spec) -> String {
    let mut t = String::from("name = \"random\"\nchains = [1]\nmax_duration = \"30d\"\n");
    t += "recipients = [\"0x000000000000000000000000000000000000dEaD\"]\n";
    if let Some(a) = s.valid_after {
        t += &format!("valid_after = {a}\n");
    }
    t += &format!("valid_until = {}\n", s.valid_until);
    if let Some(q) = s.quota {
        t += &format!("quota = {q}\n");
    }
    if let Some((v, ttl, per)) = s.escalate {
        t += &format!(
            "escalate = {{ above_value = \"{}\", ttl = \"{ttl}s\", per = \"{}\" }}\n",
            eth(v),
            period_name(per)
        );
    }
    if let Some((max, w)) = s.rate {
        t += &format!("[[rate_limits]]\nmax = {max}\nwindow = \"{w}s\"\n");
    }
    if let Some((i, r, e, m)) = s.stream {
        t += &format!(
            "[[streams]]\ninitial = \"{}\"\nrate = \"{}\"\nevery = \"{e}s\"\nmax = \"{}\"\n",
            eth(i),
            eth(r),
            eth(m)
        );
    }
    for (p, m) in &s.limits {
        t += &format!("[[limits]]\nmax = \"{}\"\nper = \"{}\"\n", eth(*m), period_name(*p));
    }
    t += "[[calls]]\ntarget = \"0x000000000000000000000000000000000000dEaD\"\nfunctions = [\"receive()\"]\n";
    t
}

/// Check the charge at session time `t` of `milli` against `spec`, given every earlier charge.
fn oracle(spec: &Spec, anchor: u64, charges: &[(u64, u64)], t: u64, milli: u64) -> Result<(), String> {
    if spec.valid_after.is_some_and(|a| t < a) || t >= spec.valid_until {
        return Err(format!("signed at {t} outside [{:?}, {})", spec.valid_after, spec.valid_until));
    }
    for (p, max) in &spec.limits {
        let i = p.index(anchor, t);
        let spent: u64 = charges.iter().filter(|(s, _)| p.index(anchor, *s) >= i).map(|(_, m)| m).sum();
        if spent + milli > *max {
            return Err(format!("{p:?} cap {max}: spent {spent} + {milli} at {t}"));
        }
    }
    if let Some((i, r, e, m)) = spec.stream {
        let available = (i + r * (t.saturating_sub(anchor)) / e).min(m);
        let spent: u64 = charges.iter().map(|(_, m)| m).sum();
        if spent + milli > available {
            return Err(format!("stream: spent {spent} + {milli} > {available} at {t}"));
        }
    }
    if let Some(q) = spec.quota {
        if charges.len() as u64 + 1 > q {
            return Err(format!("quota {q}: {} used", charges.len()));
        }
    }
    if let Some((max, w)) = spec.rate {
        let n = charges.iter().filter(|(s, _)| t - s < w).count() as u64;
        if n + 1 > max {
            return Err(format!("rate {max}/{w}s: {n} in window at {t}"));
        }
    }
    Ok(())
}

#[test]
fn random_transitions_never_sign_past_the_policy_in_force() {
    let seeds: u64 = std::env::var("BRIDLE_LIFECYCLE_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut signed_total = 0u64;
    let mut approved_total = 0u64;
    for seed in 1..=seeds {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut clock = T0;
        let mut spec = random_spec(&mut r, clock);
        spec.valid_after = None;
        let mut m = Machine::new(
            SESSION,
            OWNER,
            Address::repeat_byte(0xa9),
            compile(&spec_text(&spec), clock),
            clock,
            60,
            1 << 16,
        );
        let anchor = m.facts.anchor;
        let mut charges: Vec<(u64, u64)> = Vec::new();
        let mut charged: std::collections::HashMap<B256, u64> = std::collections::HashMap::new();
        let mut payloads: std::collections::HashMap<B256, (SignPayload, u64)> = Default::default();
        let mut revoked = false;
        let mut nonce = 0u64;
        for step in 0..120 {
            // The clock: mostly forward, sometimes back.
            clock = match r.below(10) {
                0 => clock.saturating_sub(r.below(120)),
                1 => clock + r.below(90_000),
                _ => clock + r.below(400),
            };
            let uses = m.counters().uses;
            let ctx = format!("seed {seed} step {step}");
            match r.below(20) {
                0..=11 => {
                    let milli = 1 + r.below(700);
                    // Sometimes ask again for a request already asked (collecting, or afresh).
                    let p = if r.below(4) == 0 && !payloads.is_empty() {
                        let k = *payloads.keys().nth(r.below(payloads.len() as u64) as usize).unwrap();
                        payloads[&k].0.clone()
                    } else {
                        nonce += 1;
                        pay(nonce, milli)
                    };
                    let d = digest(&p);
                    let amount = match &p {
                        SignPayload::Transaction(TxRequest::Eip1559(t)) => {
                            (t.value / U256::from(10u64).pow(U256::from(15u64))).to::<u64>()
                        }
                        _ => unreachable!(),
                    };
                    payloads.insert(d, (p.clone(), amount));
                    let out = ask_out(&mut m, clock, &p);
                    if let Ok(s) = &out.result {
                        assert!(!revoked, "{ctx}: signed after revocation");
                        if m.counters().uses > uses {
                            oracle(&spec, anchor, &charges, out.time, amount).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                            charges.push((out.time, amount));
                            charged.insert(s.digest, out.time);
                            signed_total += 1;
                        } else {
                            assert!(charged.contains_key(&s.digest), "{ctx}: a signature nothing charged");
                        }
                    } else {
                        assert_eq!(m.counters().uses, uses, "{ctx}: a refusal charged");
                    }
                }
                12..=14 => {
                    let keys: Vec<B256> = m.pending().keys().copied().collect();
                    if keys.is_empty() {
                        continue;
                    }
                    let d = keys[r.below(keys.len() as u64) as usize];
                    let amount = payloads[&d].1;
                    let out = m.approve(clock, d, Some(&Key));
                    if out.result.is_ok() {
                        assert!(!revoked, "{ctx}: approved after revocation");
                        if m.counters().uses > uses {
                            oracle(&spec, anchor, &charges, out.time, amount)
                                .unwrap_or_else(|e| panic!("{ctx}: approve: {e}"));
                            charges.push((out.time, amount));
                            charged.insert(d, out.time);
                            approved_total += 1;
                        } else {
                            assert!(charged.contains_key(&d), "{ctx}: approval returned an uncharged signature");
                        }
                    } else {
                        assert_eq!(m.counters().uses, uses, "{ctx}: a refused approval charged");
                    }
                }
                15 => {
                    let keys: Vec<B256> = m.pending().keys().copied().collect();
                    if let Some(d) = keys.first() {
                        let _ = m.deny(clock, *d);
                    }
                }
                16..=18 => {
                    let s = random_spec(&mut r, clock.max(m.time()));
                    let out = m.update_policy(clock, compile(&spec_text(&s), clock));
                    if out.result.is_ok() {
                        spec = s;
                    } else {
                        assert!(revoked, "{ctx}: update refused on a live session: {:?}", out.result);
                    }
                }
                _ => {
                    if r.below(6) == 0 {
                        let _ = m.revoke(clock, false);
                        revoked = true;
                    }
                }
            }
        }
    }
    eprintln!("{seeds} sequences: {signed_total} signed, {approved_total} approved");
    assert!(signed_total > 0 && approved_total > 0);
}
