//! The differential test's machinery: random policies and request sequences, run through
//! the engine's decision core (`bridle_common::machine`) and the independent reference
//! model (`bridle_model`), every verdict compared.
//!
//! The contract: an engine signature is a model `Allowed`; an engine `pending_approval` is a
//! model `Pending`; an engine denial's code is one of the model's failing checks; the
//! exposure and uses agree after every step. The model's `model_limit` ends a sequence.

use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::machine::{Machine, Signer};
use bridle_common::payload::prepare;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{CompiledPolicy, Policy};
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use bridle_model::abi::{addr_word, encode_call};
use bridle_model::{Ledger, Model, Req, Verdict, MODEL_LIMIT, PERMIT2};
use std::collections::HashMap;

mod args_gen;
mod args_run;
mod gen;
mod payload;
mod replace_gen;
mod tx_gen;
mod tx_run;
pub use args_gen::*;
pub use args_run::*;
pub use gen::*;
pub use payload::*;
pub use tx_gen::*;
pub use tx_run::*;

pub const T0: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z
pub const OWNER: Address = address!("00000000000000000000000000000000000000aa");
pub const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");
pub const TOK1: Address = address!("0000000000000000000000000000000000001001");
pub const TOK2: Address = address!("0000000000000000000000000000000000001002");
pub const OTHER: Address = address!("0000000000000000000000000000000000002001");
pub const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
pub const S1: Address = address!("000000000000000000000000000000000000a001");
pub const S2: Address = address!("000000000000000000000000000000000000a002");
pub const SCA: Address = address!("0000000000000000000000000000000000005ca0");
/// The delegation manager random policies list, one they never list, and two delegators.
pub const MGR: Address = address!("000000000000000000000000000000000000da7a");
pub const MGR2: Address = address!("000000000000000000000000000000000000da7b");
pub const D1: Address = address!("000000000000000000000000000000000000d001");
pub const D2: Address = address!("000000000000000000000000000000000000d002");
/// A Permit2 contract other than the canonical one (random policies sometimes name it).
pub const P2B: Address = address!("0000000000000000000000000000000000000b22");

alloy_sol_types::sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function transferAndCall(address to, uint256 amount, bytes data) returns (bool);
    function push(address to, uint256 amount);
}

/// Where the sequences' choices come from: a small deterministic generator (xorshift*),
/// or a fuzzer's bytes (each choice reads the next 8; zeros once they run out), so that a
/// coverage-guided fuzzer steers the choices themselves.
pub enum Rng {
    Seeded(u64),
    Bytes(Vec<u8>, usize),
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng::Seeded(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng::Bytes(data.to_vec(), 0)
    }
    pub fn next_u64(&mut self) -> u64 {
        match self {
            Rng::Seeded(x) => {
                *x ^= *x >> 12;
                *x ^= *x << 25;
                *x ^= *x >> 27;
                x.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }
            Rng::Bytes(data, pos) => {
                let mut w = [0u8; 8];
                for b in w.iter_mut() {
                    *b = data.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                }
                u64::from_le_bytes(w)
            }
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// An engine key that signs nothing real (the decision core never checks signatures).
pub struct NullSigner;

impl Signer for NullSigner {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

/// One event of a sequence.
#[derive(Debug, Clone)]
pub enum Event {
    Sign(Req),
    Approve(u64),
    /// The owner denies a held request.
    Deny(u64),
    Update(String),
    Revoke,
    /// Ask again with the stamp of an earlier ask (its index).
    Reask(usize),
    /// Ask for another request with the stamp nonce of an earlier ask (its index).
    ReaskOther(usize, Req),
}

/// The engine's decision on `payload` at `clock`, stamped with nonce `n` (the MAC unchecked
/// here, signatures by [`NullSigner`]); with the stamp digest and the stamp when the payload
/// was read.
pub(crate) fn engine_decides(
    engine: &mut Machine,
    payload: &SignPayload,
    clock: u64,
    n: u64,
) -> (Result<(), bridle_common::error::Denial>, Option<(B256, Stamp)>) {
    match prepare(payload) {
        Ok(prepared) => {
            let mut nonce = [0u8; 16];
            nonce[..8].copy_from_slice(&n.to_be_bytes());
            let stamp = Stamp { nonce, timestamp: engine.time_at(clock), mac: [0; 32] };
            let digest = prepared.stamp_digest();
            let out = engine.sign(clock, payload, prepared, &stamp, Some(&NullSigner));
            (out.result.map(|_| ()), Some((digest, stamp)))
        }
        Err(d) => (Err(d), None),
    }
}

/// Where the engine and the model differ after a step at `clock`: the priced exposure, the
/// uses, and what is charged and what may be outstanding, line by line ([`compare_state`];
/// a review of 2026-12-05: only decisions, uses and the priced exposure were compared).
pub(crate) fn compare_after_step(engine: &Machine, model: &Model, clock: u64) -> Option<String> {
    let t = engine.time_at(clock);
    let ex_e = bridle_common::policy::exposure::exposure_now(engine.policy(), &engine.counters().allowances, t).usd;
    let ex_m = model.exposure_usd(clock);
    if ex_e != ex_m {
        return Some(format!("exposure engine {ex_e}, model {ex_m}"));
    }
    if engine.counters().uses != model.uses() {
        return Some(format!("uses engine {}, model {}", engine.counters().uses, model.uses()));
    }
    compare_state(engine, model, clock)
}

/// Where the engine's and the model's ledgers (every asset, every period) or holdings (by
/// chain and token, priced or not) differ at `clock`.
fn compare_state(engine: &Machine, model: &Model, clock: u64) -> Option<String> {
    use bridle_common::ledger::{LedgerKey, PERIODS};
    let t = engine.time_at(clock);
    let mut keys: Vec<LedgerKey> = engine.counters().ledger.keys().collect();
    for a in model.ledger_assets() {
        let k = match a {
            Ledger::Native => LedgerKey::Native,
            Ledger::Token(addr) => LedgerKey::Token(addr),
            Ledger::Gas => LedgerKey::GasCost,
            Ledger::Usd => LedgerKey::Usd,
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for k in keys {
        let asset = match k {
            LedgerKey::Native => Ledger::Native,
            LedgerKey::Token(addr) => Ledger::Token(addr),
            LedgerKey::GasCost => Ledger::Gas,
            LedgerKey::Usd => Ledger::Usd,
        };
        for period in PERIODS {
            let e = engine.counters().ledger.spent(k, period, engine.facts.anchor, t);
            let m = model.spent_in(asset, period, clock);
            if e != m {
                return Some(format!("ledger {k:?} {period:?}: engine {e}, model {m}"));
            }
        }
    }
    if let Some(m) = model.holdings(clock) {
        let e = engine.holdings_at(clock);
        if e != m {
            return Some(format!("holdings: engine {e:?}, model {m:?}"));
        }
    }
    None
}

/// What the sequences did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sequences: u64,
    pub decisions: u64,
    pub allowed: u64,
    pub denied: u64,
    pub pending: u64,
    pub skipped: u64,
    /// Asks repeated with their stamp that returned the signature again.
    pub reasked: u64,
    /// Other requests asked with a stamp nonce used before (all refused).
    pub reasked_other: u64,
    /// Requests made from one signed at their nonce (a fee bump, less, a revocation, a plain
    /// transaction in its place), and those signed while the exposure was already above the
    /// ceiling (RULES §6: decided by whether they add a state).
    pub replaced: u64,
    pub signed_over_ceiling: u64,
    /// Times the engine was replaced by a replica restored from its snapshot.
    pub restored: u64,
    /// Owner denials of held requests that took effect.
    pub denied_by_owner: u64,
    /// ERC-7710 redemptions signed.
    pub redeemed: u64,
    /// Permit2 signed: allowance messages, transfer messages, and calls of its `approve`
    /// (in transactions or user operations) that write an allowance.
    pub permit2_allowances: u64,
    pub permit2_transfers: u64,
    pub permit2_approves: u64,
    /// Requests calling a just-in-time consumer signed under a policy with such rules, and
    /// refusals naming a just-in-time rule.
    pub jit_signed: u64,
    pub jit_refused: u64,
    /// Under a policy with argument rules: requests calling [`ROUTER`] signed, and denials
    /// `argument_rejected`.
    pub args_signed: u64,
    pub args_rejected: u64,
    /// Legacy transactions signed; EIP-1559 ones with a non-empty access list signed, and
    /// of those the ones whose list decides whether they may run out of gas (their gas limit
    /// at least `approvals.revoke_gas`, less the list's cost below it); EIP-7702 refused.
    pub legacy_signed: u64,
    pub access_lists_signed: u64,
    pub access_list_decides: u64,
    pub eip7702_refused: u64,
    /// Denials by code.
    pub codes: std::collections::BTreeMap<&'static str, u64>,
    /// The sum (wrapping) of each sequence's digest of every answer, reasons included
    /// (`tests/tests/rules_fingerprint.rs`).
    pub digest: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.sequences += o.sequences;
        self.decisions += o.decisions;
        self.allowed += o.allowed;
        self.denied += o.denied;
        self.pending += o.pending;
        self.skipped += o.skipped;
        self.reasked += o.reasked;
        self.reasked_other += o.reasked_other;
        self.replaced += o.replaced;
        self.signed_over_ceiling += o.signed_over_ceiling;
        self.restored += o.restored;
        self.denied_by_owner += o.denied_by_owner;
        self.redeemed += o.redeemed;
        self.permit2_allowances += o.permit2_allowances;
        self.permit2_transfers += o.permit2_transfers;
        self.permit2_approves += o.permit2_approves;
        self.jit_signed += o.jit_signed;
        self.jit_refused += o.jit_refused;
        self.args_signed += o.args_signed;
        self.args_rejected += o.args_rejected;
        self.legacy_signed += o.legacy_signed;
        self.access_lists_signed += o.access_lists_signed;
        self.access_list_decides += o.access_list_decides;
        self.eip7702_refused += o.eip7702_refused;
        self.digest = self.digest.wrapping_add(o.digest);
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
    }
}

impl Stats {
    /// Count a signed transaction's shape (RULES §4, §6) under `revoke_gas`.
    pub fn count_shape(&mut self, req: &Req, revoke_gas: u64) {
        match req {
            Req::Legacy { .. } => self.legacy_signed += 1,
            Req::Tx { access_list, gas_limit, .. } if !access_list.is_empty() => {
                self.access_lists_signed += 1;
                let upfront = bridle_model::access_list_cost(access_list);
                self.access_list_decides +=
                    u64::from(*gas_limit >= revoke_gas && u128::from(*gas_limit) < u128::from(revoke_gas) + upfront);
            }
            _ => {}
        }
    }
}

fn compile(text: &str, now: u64) -> Option<(Policy, CompiledPolicy)> {
    let doc = resolve_text(text, now).ok()?;
    let c = CompiledPolicy::compile(doc.clone()).ok()?;
    c.check_lifetime(now).ok()?;
    Some((doc, c))
}

/// Run sequence `seed`; `Err` describes the first disagreement.
pub fn run_sequence(seed: u64, steps: usize) -> Result<Stats, String> {
    run(Rng::new(seed), seed, steps)
}

/// Run one sequence drawing its choices from `r` (`seed` only names it in reports).
pub fn run(r: Rng, seed: u64, steps: usize) -> Result<Stats, String> {
    run_gen(r, seed, steps, true, true)
}

/// [`run`]; without `denials` the owner never denies a held request, and the choices drawn
/// are those of the generator before `deny_pending` existed (for seeds kept as regressions).
pub fn run_with(r: Rng, seed: u64, steps: usize, denials: bool) -> Result<Stats, String> {
    run_gen(r, seed, steps, denials, false)
}

/// [`run_with`]; with `delegations`, policies may list delegation managers and requests
/// may be redemptions (RULES §5b).
pub fn run_gen(r: Rng, seed: u64, steps: usize, denials: bool, delegations: bool) -> Result<Stats, String> {
    let mut log = Vec::new();
    let mut st = run_logged(r, seed, steps, (denials, delegations), &mut log)?;
    // What the engine (and the model) answered at every step, as the log says it.
    let digest = alloy_primitives::keccak256(log.join("\n").as_bytes());
    st.digest = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    Ok(st)
}

fn run_logged(
    mut r: Rng,
    seed: u64,
    steps: usize,
    (denials, delegations): (bool, bool),
    log: &mut Vec<String>,
) -> Result<Stats, String> {
    let mut st = Stats { sequences: 1, ..Stats::default() };
    let created = T0 + r.below(400 * 86_400);
    let text = random_policy_with(&mut r, created, delegations);
    let Some((doc, compiled)) = compile(&text, created) else { return Ok(Stats::default()) };
    let Ok(mut model) = Model::new(&doc, created, OWNER, ACCOUNT) else { return Ok(Stats::default()) };
    let mut chains = doc.chains.clone();
    // The policy text in force, for updates that only lower its ceiling.
    let mut current = text.clone();
    // The current generator also draws legacy, access-listed and EIP-7702 transactions,
    // their gas limits around the policy's `approvals.revoke_gas`.
    let revoke_gas = |doc: &Policy| delegations.then(|| doc.approvals.revoke_gas.unwrap_or(100_000));
    let mut rg = revoke_gas(&doc);
    let mut engine = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), compiled, created, 60, 1 << 16);
    let mut clock = created;
    let mut nonces: HashMap<u64, u64> = HashMap::new();
    let mut pending: HashMap<u64, B256> = HashMap::new();
    // The request of each held id, for asking again after the owner decided.
    let mut held: HashMap<u64, Req> = HashMap::new();
    // Every transaction and user operation signed, for requests at their nonces.
    let mut signed: Vec<Req> = Vec::new();
    // Every stamped ask whose nonce was recorded: its payload, stamp, and whether it was signed.
    let mut asked: Vec<(SignPayload, Stamp, bool)> = Vec::new();
    log.push(format!("policy:\n{text}"));
    let fail = |log: &[String], what: String| Err(format!("seed {seed}: {what}\n--- sequence ---\n{}", log.join("\n")));
    let mut steps_left = steps;
    let mut i = 0;
    while steps_left > 0 {
        steps_left -= 1;
        i += 1;
        clock = match r.below(10) {
            0 => clock.saturating_sub(r.below(90)),
            1 => clock + 3600 * r.below(30),
            2 | 3 => clock + r.below(120),
            _ => clock + r.below(5),
        };
        let ev = match r.below(20) {
            0 if !pending.is_empty() => {
                let mut ids: Vec<u64> = pending.keys().copied().collect();
                ids.sort_unstable();
                let id = *r.pick(&ids);
                if denials && r.chance(30) {
                    Event::Deny(id)
                } else {
                    Event::Approve(id)
                }
            }
            // A new policy; or, half the time, the one in force with its ceiling lowered.
            1 if r.chance(50) => Event::Update(replace_gen::lowered_ceiling(&mut r, current.clone(), 100)),
            1 => {
                let text = random_policy_with(&mut r, clock, delegations);
                Event::Update(replace_gen::lowered_ceiling(&mut r, text, 50))
            }
            2 if r.chance(10) => Event::Revoke,
            3 if !asked.is_empty() => {
                let j = r.below(asked.len() as u64) as usize;
                if r.chance(30) {
                    Event::ReaskOther(j, random_req_typed(&mut r, &mut nonces, clock, &chains, delegations, rg))
                } else {
                    Event::Reask(j)
                }
            }
            // Another request at the nonce of one signed: a fee bump, less, a revocation, a
            // plain transaction in its place (RULES §6: whether it adds a state).
            5 | 6 if !signed.is_empty() => {
                let j = r.below(signed.len() as u64) as usize;
                match replace_gen::at_the_same_nonce(&mut r, &signed[j]) {
                    Some(req) => {
                        st.replaced += 1;
                        Event::Sign(req)
                    }
                    None => Event::Sign(random_req_typed(&mut r, &mut nonces, clock, &chains, delegations, rg)),
                }
            }
            // The agent asks again (a fresh stamp) for a request it was told is held.
            4 if denials && !held.is_empty() && r.chance(60) => {
                let mut ids: Vec<u64> = held.keys().copied().collect();
                ids.sort_unstable();
                Event::Sign(held[r.pick(&ids)].clone())
            }
            _ => Event::Sign(random_req_typed(&mut r, &mut nonces, clock, &chains, delegations, rg)),
        };
        log.push(format!("step {i} at {clock}: {ev:?}"));
        match ev {
            Event::Sign(req) => {
                let payload = payload(&req);
                let over = engine.policy().doc.exposure_ceiling.is_some_and(|c| model.exposure_usd(clock) > c);
                let m = model.sign(&req, clock);
                if m == Verdict::Denied(vec![MODEL_LIMIT]) {
                    st.skipped += 1;
                    return Ok(st);
                }
                let e = match engine_decides(&mut engine, &payload, clock, i as u64) {
                    (result, Some((digest, stamp))) => {
                        // Step 1 (revoked, suspended) refuses before the nonce is recorded.
                        let recorded = !matches!(&result, Err(d) if matches!(d.code.as_str(), "revoked" | "suspended"));
                        if recorded {
                            asked.push((payload.clone(), stamp, result.is_ok()));
                        }
                        (result, digest)
                    }
                    (result, None) => (result, B256::ZERO),
                };
                log.push(format!("  engine {:?} / model {m:?}", e.0.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e.0, &m) {
                    (Ok(()), Verdict::Allowed) => {
                        st.allowed += 1;
                        st.signed_over_ceiling += u64::from(over);
                        if matches!(req, Req::Tx { .. } | Req::UserOp { .. }) && signed.len() < 64 {
                            signed.push(req.clone());
                        }
                        st.redeemed += u64::from(matches!(req, Req::Redeem { .. }));
                        st.permit2_allowances += u64::from(matches!(req, Req::Permit2 { .. }));
                        st.permit2_transfers += u64::from(matches!(req, Req::Permit2Transfer { .. }));
                        st.permit2_approves += u64::from(calls_permit2_approve(&req));
                        st.jit_signed +=
                            u64::from(!engine.policy().doc.approvals.jit.is_empty() && calls_a_jit_consumer(&req));
                        st.args_signed += u64::from(has_arg_rules(&engine.policy().doc) && calls_router(&req));
                        st.count_shape(&req, engine.policy().doc.approvals.revoke_gas.unwrap_or(100_000));
                    }
                    (Err(d), Verdict::Pending(id)) if d.code.as_str() == "pending_approval" => {
                        st.pending += 1;
                        pending.insert(*id, e.1);
                        held.insert(*id, req.clone());
                    }
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {
                        st.denied += 1;
                        *st.codes.entry(d.code.as_str()).or_default() += 1;
                        st.eip7702_refused += u64::from(matches!(req, Req::Eip7702 { .. }));
                        st.jit_refused += u64::from(d.rule.as_deref().is_some_and(|r| r.starts_with("approvals.jit")));
                        st.args_rejected +=
                            u64::from(has_arg_rules(&engine.policy().doc) && d.code.as_str() == "argument_rejected");
                    }
                    _ => return fail(log, format!("step {i}: engine {:?}, model {m:?}", e.0)),
                }
            }
            Event::Reask(j) => {
                let (payload, stamp, signed) = asked[j].clone();
                let m = model.reask(signed, stamp.timestamp, clock, 60);
                let e = match prepare(&payload) {
                    Ok(prepared) => {
                        engine.sign(clock, &payload, prepared, &stamp, Some(&NullSigner)).result.map(|_| ())
                    }
                    Err(d) => Err(d),
                };
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => st.reasked += 1,
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(log, format!("step {i} re-ask of ask {j}: engine {e:?}, model {m:?}")),
                }
            }
            Event::ReaskOther(j, req) => {
                let (_, first, _) = &asked[j];
                let other = payload(&req);
                // Refused while decoding (an EIP-7702 transaction), it never reaches the stamp.
                let Ok(prepared) = prepare(&other) else { continue };
                // The agent's stamp for the other request: the same nonce, at the session's time.
                let stamp = Stamp { nonce: first.nonce, timestamp: engine.time_at(clock), mac: [0; 32] };
                let Some(m) = model.reask_other(first.timestamp, clock, 60) else { continue };
                let e = engine.sign(clock, &other, prepared, &stamp, Some(&NullSigner)).result.map(|_| ());
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => st.reasked_other += 1,
                    _ => {
                        return fail(
                            log,
                            format!("step {i} another request with the nonce of ask {j}: engine {e:?}, model {m:?}"),
                        )
                    }
                }
            }
            Event::Approve(id) => {
                let digest = pending[&id];
                let m = model.approve(id, clock);
                let e = engine.approve(clock, digest, Some(&NullSigner)).result.map(|_| ());
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => {}
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(log, format!("step {i} approve: engine {e:?}, model {m:?}")),
                }
            }
            Event::Deny(id) => {
                let digest = pending[&id];
                let m = model.deny(id, clock);
                let e = engine.deny(clock, digest).result.map(|_| ());
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => st.denied_by_owner += 1,
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(log, format!("step {i} deny: engine {e:?}, model {m:?}")),
                }
            }
            Event::Update(text) => {
                let Some((doc, compiled)) = compile(&text, clock) else { continue };
                if Model::new(&doc, clock, OWNER, ACCOUNT).is_err() {
                    continue;
                }
                let m = model.update(&doc, clock);
                let e = engine.update_policy(clock, compiled).result.map(|_| ());
                chains = doc.chains.clone();
                rg = revoke_gas(&doc);
                log.push(format!("  policy:\n{text}\n  engine {e:?} / model {m:?}"));
                if m.is_ok() != e.is_ok() {
                    return fail(log, format!("step {i} update: engine {e:?}, model {m:?}"));
                }
                if m.is_ok() {
                    current = text;
                }
            }
            Event::Revoke => {
                model.revoke(clock);
                let _ = engine.revoke(clock, false);
                // A few more requests show it holds; the rest of the sequence would only repeat it.
                steps_left = steps_left.min(3);
            }
        }
        // Now and then the engine continues as a replica restored from its snapshot (what a
        // cluster node that catches up receives), through CBOR as on the wire.
        if r.chance(3) {
            let bytes = bridle_common::frame::to_cbor(&engine.snapshot()).map_err(|e| format!("seed {seed}: {e}"))?;
            let snap = bridle_common::frame::from_cbor(&bytes).map_err(|e| format!("seed {seed}: {e}"))?;
            let before = engine.footprint();
            engine = Machine::restore(snap).map_err(|e| format!("seed {seed} step {i}: restore: {e}"))?;
            if engine.footprint() != before {
                return fail(
                    log,
                    format!("step {i}: footprint {before} before the snapshot, {} after", engine.footprint()),
                );
            }
            st.restored += 1;
        }
        // The same figures after every step.
        if let Some(why) = compare_after_step(&engine, &model, clock) {
            return fail(log, format!("step {i}: {why}"));
        }
    }
    Ok(st)
}
