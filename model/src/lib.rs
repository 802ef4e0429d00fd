//! An independent, deliberately simple reference model of Bridle's policy rules, written
//! from RULES.md, SPEC.md and the README only (never from the engine), for differential
//! testing: the harness runs the same request sequences through the engine and the model
//! and compares every verdict.
//!
//! Simplicity over speed: the ledger is the list of every charge (a period's spend is the
//! sum of the charges in that period), the rate-limit history is the list of every
//! signature, and the allowance registry explores every history explicitly.
//!
//! Scope: see `model/AMBIGUITIES.md` for the readings chosen where RULES.md is silent, and
//! [`Model::new`] for the policies the model refuses.

#![forbid(unsafe_code)]

pub mod abi;
mod allowlist;
pub mod args;
mod check;
mod jit;
mod permits;
pub mod registry;
mod req;
pub mod time;

use alloy_primitives::{Address, U256};
use bridle_common::policy::doc::{Asset, Policy};

pub use check::{ENTRY_POINT_CODES, PERMIT2, PERMIT_RULE_CODES};
pub use req::{access_list_cost, AccessList, RedeemEntry, Req};

/// Most allowance writes (signed ones plus the request's) the model explores; beyond it a
/// request that needs the registry gets `Denied(["model_limit"])`.
pub const MAX_WRITES: usize = 12;

/// The pseudo-code the model gives when it cannot decide: the harness skips the sequence.
pub const MODEL_LIMIT: &str = "model_limit";

/// The code of every EIP-7702 (type 4) transaction (README).
pub const AUTHORIZATION_DENIED: &str = "authorization_denied";

/// How far a block's timestamp may trail the enclave's clock (RULES §6) on a chain whose
/// blocks follow the beacon chain's slots: an authority or permit with deadline `d` counts
/// as live at session time `t` while `t ≤ d + 60`.
pub const CHAIN_TIME_SLACK: u64 = 60;

/// The chains RULES §6 names as stamped by beacon-chain slots (Ethereum and its testnets,
/// Gnosis and Chiado). On any other no bound is known: ends and deadlines bind nothing.
pub const SLOTTED_CHAINS: &[u64] = &[1, 5, 11_155_111, 17_000, 560_048, 100, 10_200];

/// The slack on `chain` (`None`: unbounded).
pub fn time_slack(chain: u64) -> Option<u64> {
    SLOTTED_CHAINS.contains(&chain).then_some(CHAIN_TIME_SLACK)
}

/// Requests held for the owner's approval at once, per session (RULES §8).
pub const MAX_PENDING: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Held for the owner's approval; the id names it for `approve`.
    Pending(u64),
    /// Every check that fails (stable code strings). Never empty. `["model_limit"]` means
    /// the model cannot decide: skip the sequence.
    Denied(Vec<&'static str>),
}

/// A ledger asset (RULES §3): the native coin, a token by address, gas cost, USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ledger {
    Native,
    Token(Address),
    Gas,
    Usd,
}

/// A held request (RULES §8): pending while `t < held_at + ttl`; once the owner approved it
/// (`approved`), asking again returns the signature made at the approval until that time;
/// once the owner denied it (`denied`), asking again is refused until that time.
#[derive(Debug, Clone)]
struct Pending {
    req: Req,
    held_at: u64,
    ttl: u64,
    approved: bool,
    denied: bool,
}

impl Pending {
    fn live(&self, t: u64) -> bool {
        t < self.held_at.saturating_add(self.ttl)
    }
}

/// One session.
#[derive(Debug, Clone)]
pub struct Model {
    policy: Policy,
    owner: Address,
    account: Address,
    anchor: u64,
    /// Session time of the last decision (creation time at first).
    now: u64,
    uses: u64,
    /// (signing time, weight signed then) of the signatures the session keeps for its rate
    /// limits (RULES §1, 4: the newest whose weights reach the largest `max` of the policy
    /// in force when it signed, at least 64).
    rate: Vec<(u64, u64)>,
    /// The time of the newest signature no longer kept: a window reaching it counts as full.
    rate_dropped: Option<u64>,
    /// (time, asset, amount) of every charge.
    ledger: Vec<(u64, Ledger, U256)>,
    /// Every signed request with where it sits and what it wrote.
    registry: Vec<registry::Item>,
    pending: Vec<Pending>,
    /// Every request ever held: a request's id is its index + 1 here, so the same request
    /// (the same digest) always has the same id.
    held: Vec<Req>,
    revoked: bool,
    suspended: bool,
    /// Session times of the remembered policy denials (trip-wire).
    denials: Vec<u64>,
}

/// Why the model refuses a policy (features out of its scope), or `Ok`.
fn supported(p: &Policy) -> Result<(), String> {
    for f in p.calls.iter().flat_map(|c| &c.functions) {
        args::supported(f)?;
    }
    if !p.typed_data.is_empty() || !p.messages.is_empty() {
        return Err("typed-data and message rules are out of the model's scope".into());
    }
    if p.approvals.jit.iter().any(|r| jit::Jit::new(r).is_none()) {
        return Err("just-in-time rules naming a function with a dynamic parameter are out of the model's scope".into());
    }
    let known = |a: &Asset| match a {
        Asset::Native => true,
        Asset::Token(s) => p.tokens.iter().any(|t| &t.symbol == s),
    };
    let mut assets: Vec<&Asset> = p.limits.iter().map(|l| &l.asset).collect();
    assets.extend(p.streams.iter().map(|s| &s.asset));
    assets.extend(p.prices.iter().map(|x| &x.asset));
    assets.extend(p.escalate.iter().filter_map(|e| e.above_value.as_ref()).map(|v| &v.asset));
    if let Some(a) = assets.into_iter().find(|a| !known(a)) {
        return Err(format!("unknown asset {a:?}"));
    }
    if p.streams.iter().any(|s| s.every == 0) {
        return Err("a stream with every = 0".into());
    }
    Ok(())
}

impl Model {
    /// A session created at `created_at` for `owner`, whose own address is `account`.
    pub fn new(policy: &Policy, created_at: u64, owner: Address, account: Address) -> Result<Model, String> {
        supported(policy)?;
        Ok(Model {
            policy: policy.clone(),
            owner,
            account,
            anchor: created_at.max(policy.valid_after.unwrap_or(0)),
            now: created_at,
            uses: 0,
            rate: Vec::new(),
            rate_dropped: None,
            ledger: Vec::new(),
            registry: Vec::new(),
            pending: Vec::new(),
            held: Vec::new(),
            revoked: false,
            suspended: false,
            denials: Vec::new(),
        })
    }

    /// RULES §1: session time never goes back.
    fn advance(&mut self, clock: u64) -> u64 {
        self.now = self.now.max(clock);
        self.now
    }

    /// Decide a signing request at enclave clock reading `clock`.
    pub fn sign(&mut self, req: &Req, clock: u64) -> Verdict {
        // An EIP-7702 transaction is refused before the session decides anything (README:
        // `authorization_denied`; SECURITY: refused while decoding, never counted by the
        // trip-wire): nothing changes, session time included (AMBIGUITIES 29).
        if let Req::Eip7702 { .. } = req {
            return Verdict::Denied(vec![AUTHORIZATION_DENIED]);
        }
        let t = self.advance(clock);
        // RULES §8: a held request asked again is not decided again while its time runs
        // (a revoked or suspended session is decided, and denied by its state: §2 item 1).
        if !self.revoked && !self.suspended {
            if let Some(i) = self.pending.iter().position(|p| p.req == *req) {
                if self.pending[i].live(t) {
                    return match (self.pending[i].approved, self.pending[i].denied) {
                        (true, _) => Verdict::Allowed,
                        (false, true) => Verdict::Denied(vec!["denied_by_owner"]),
                        (false, false) => Verdict::Pending(self.id_of(req)),
                    };
                }
                self.pending.remove(i);
            }
        }
        let ev = self.evaluate(req, t);
        if ev.limit {
            return Verdict::Denied(vec![MODEL_LIMIT]);
        }
        if !ev.codes.is_empty() {
            // RULES §9: `revoked` and `suspended` come before the policy checks and are not
            // counted (the engine's code is one of them whenever the session is either).
            if !self.revoked && !self.suspended {
                self.trip(t);
            }
            return Verdict::Denied(ev.codes);
        }
        if let Some(ttl) = self.escalates(&ev, t) {
            // RULES §8: at most MAX_PENDING held at once (expired ones are forgotten only to
            // make room); one more is refused, not counted by the trip-wire.
            if self.pending.len() >= MAX_PENDING {
                self.pending.retain(|p| p.live(t));
            }
            if self.pending.len() >= MAX_PENDING {
                return Verdict::Denied(vec!["rate_limited"]);
            }
            self.pending.push(Pending { req: req.clone(), held_at: t, ttl, approved: false, denied: false });
            return Verdict::Pending(self.id_of(req));
        }
        self.commit(ev, t);
        Verdict::Allowed
    }

    /// The agent asks again with a stamp it used before (RULES §2, "asking again with the
    /// same stamp"): `signed_before` says whether that stamp's first ask was signed,
    /// `stamp_time` is its time. `Allowed` means the same signature again, charging nothing.
    pub fn reask(&mut self, signed_before: bool, stamp_time: u64, clock: u64, window: u64) -> Verdict {
        let t = self.advance(clock);
        if self.revoked || self.suspended {
            let mut codes = Vec::new();
            if self.revoked {
                codes.push("revoked");
            }
            if self.suspended {
                codes.push("suspended");
            }
            return Verdict::Denied(codes);
        }
        if stamp_time.abs_diff(t) > window || !signed_before {
            return Verdict::Denied(vec!["replayed"]);
        }
        Verdict::Allowed
    }

    /// The agent asks with a stamp nonce it used before, at `first_time`, but for another
    /// request, stamped now (RULES §2: "a stamp nonce is accepted once"; only a
    /// byte-for-byte repeat of a signed ask is answered again). Step 1 still comes first: a
    /// revoked or suspended session says so. Nothing else changes.
    ///
    /// `None` once the session time is past `first_time + window`: RULES does not say how
    /// long a nonce is remembered after its stamp can no longer pass the window check
    /// (AMBIGUITIES 30), so the model does not decide those, and moves nothing.
    pub fn reask_other(&mut self, first_time: u64, clock: u64, window: u64) -> Option<Verdict> {
        let live = self.now.max(clock) <= first_time.saturating_add(window);
        if !(live || self.revoked || self.suspended) {
            // Undecided: nothing moves, session time included.
            return None;
        }
        self.advance(clock);
        let mut codes = Vec::new();
        if self.revoked {
            codes.push("revoked");
        }
        if self.suspended {
            codes.push("suspended");
        }
        if codes.is_empty() {
            codes.push("replayed");
        }
        Some(Verdict::Denied(codes))
    }

    /// The id of a held request: the same request always has the same id.
    fn id_of(&mut self, req: &Req) -> u64 {
        let i = match self.held.iter().position(|r| r == req) {
            Some(i) => i,
            None => {
                self.held.push(req.clone());
                self.held.len() - 1
            }
        };
        i as u64 + 1
    }

    /// The owner approves pending request `id` at `clock`: re-checked, then signed and
    /// charged (RULES §8). Not pending: `malformed`; its time over: `expired` (with
    /// `revoked`/`suspended` besides when the session is either: RULES does not say which
    /// comes first for an owner call).
    pub fn approve(&mut self, id: u64, clock: u64) -> Verdict {
        let t = self.advance(clock);
        let mut state = Vec::new();
        if self.revoked {
            state.push("revoked");
        }
        if self.suspended {
            state.push("suspended");
        }
        let refused = |code: &'static str, mut state: Vec<&'static str>| {
            state.push(code);
            state.sort_unstable();
            Verdict::Denied(state)
        };
        let req = usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).and_then(|i| self.held.get(i));
        let Some(i) = req.and_then(|r| self.pending.iter().position(|p| p.req == *r)) else {
            return refused("malformed", state);
        };
        if !self.pending[i].live(t) {
            // A refused owner call changes nothing: on a revoked or suspended session the
            // expired request stays until an approval can look at it (seed 494148).
            if state.is_empty() {
                self.pending.remove(i);
            }
            return refused("expired", state);
        }
        if self.pending[i].approved {
            // Approving again returns the signature made at the approval (RULES §8).
            return if state.is_empty() { Verdict::Allowed } else { Verdict::Denied(state) };
        }
        if self.pending[i].denied {
            // RULES §8: a denial is final while the request's time runs.
            return refused("denied_by_owner", state);
        }
        let req = self.pending[i].req.clone();
        let ev = self.evaluate(&req, t);
        if ev.limit {
            return Verdict::Denied(vec![MODEL_LIMIT]);
        }
        if !ev.codes.is_empty() {
            // Stays pending; an owner call is never counted by the trip-wire.
            return Verdict::Denied(ev.codes);
        }
        self.pending[i].approved = true;
        // The agent may collect the signature for another ttl from the approval (RULES §8).
        self.pending[i].held_at = t;
        self.commit(ev, t);
        Verdict::Allowed
    }

    /// The owner denies pending request `id` at `clock` (RULES §8): `Allowed` means the
    /// denial took effect (or already had). Revoked: `revoked`; not pending: `malformed`;
    /// its time over: `expired`; approved already: `malformed` (a signature cannot be taken
    /// back). A suspended session has no waiting request (the trip-wire dropped them).
    pub fn deny(&mut self, id: u64, clock: u64) -> Verdict {
        let t = self.advance(clock);
        if self.revoked {
            return Verdict::Denied(vec!["revoked"]);
        }
        let req = usize::try_from(id).ok().and_then(|i| i.checked_sub(1)).and_then(|i| self.held.get(i));
        let Some(i) = req.and_then(|r| self.pending.iter().position(|p| p.req == *r)) else {
            return Verdict::Denied(vec!["malformed"]);
        };
        if !self.pending[i].live(t) {
            self.pending.remove(i);
            return Verdict::Denied(vec!["expired"]);
        }
        if self.pending[i].approved {
            return Verdict::Denied(vec!["malformed"]);
        }
        self.pending[i].denied = true;
        Verdict::Allowed
    }

    /// An owner-signed policy update at `clock` (RULES §7, §9). Refused on a revoked
    /// session, or for a policy out of the model's scope: then nothing changes, session
    /// time included. An update lifts a suspension and forgets the remembered denials
    /// (RULES §7, §9).
    pub fn update(&mut self, policy: &Policy, clock: u64) -> Result<(), String> {
        if self.revoked {
            return Err("the session is revoked".into());
        }
        supported(policy)?;
        self.advance(clock);
        // RULES §6: a chain's gas is a fact about the chain — a chain no longer listed as
        // spending its gas limit on execution alone makes every transaction signed there
        // uncertain, those signed before included.
        for it in &mut self.registry {
            if let registry::Place::Own { chain, .. } = it.place {
                if gas_uncertain(policy, chain) {
                    it.may_revert = true;
                }
            }
        }
        self.policy = policy.clone();
        self.suspended = false;
        self.denials.clear();
        Ok(())
    }

    /// The owner revokes the session at `clock`.
    pub fn revoke(&mut self, clock: u64) {
        self.advance(clock);
        self.revoked = true;
    }

    /// Total exposure in USD (18 decimals), RULES §6, with no request: per key, the worst
    /// case over every history and every point, priced at the current price table (unpriced
    /// keys count 0). An unsigned nonce below a signed one may be filled by a transaction
    /// that writes nothing, signed at time 0. `U256::MAX` when the registry is too big to
    /// explore. Permit2 writes count at session time (`clock`, never before the last
    /// decision): one ended by then counts 0.
    pub fn exposure_usd(&self, clock: u64) -> U256 {
        let now = self.now.max(clock);
        let mut sum = U256::ZERO;
        for key in registry::keys(self.registry.iter()) {
            let Some(w) = registry::worst(&self.registry, None, &key, now) else { return U256::MAX };
            if let Some((usd, dec)) = self.price(key.chain, &Ledger::Token(key.token)) {
                sum = sum.saturating_add(check::usd_of(w, usd, dec));
            }
        }
        sum
    }

    /// What the session may have outstanding, by (chain, token): every registry key's worst
    /// case summed, priced or not (the engine's `holdings`). `None` when the registry is too
    /// big to explore. At session time `clock` (never before the last decision).
    pub fn holdings(&self, clock: u64) -> Option<std::collections::BTreeMap<(u64, Address), U256>> {
        let now = self.now.max(clock);
        let mut h = std::collections::BTreeMap::new();
        for key in registry::keys(self.registry.iter()) {
            let w = registry::worst(&self.registry, None, &key, now)?;
            if !w.is_zero() {
                let e: &mut U256 = h.entry((key.chain, key.token)).or_default();
                *e = e.saturating_add(w);
            }
        }
        Some(h)
    }

    /// Every asset the ledger has charged.
    pub fn ledger_assets(&self) -> Vec<Ledger> {
        let mut out: Vec<Ledger> = Vec::new();
        for (_, a, _) in &self.ledger {
            if !out.contains(a) {
                out.push(*a);
            }
        }
        out
    }

    /// uses (weight signed so far).
    pub fn uses(&self) -> u64 {
        self.uses
    }

    /// Whether some own-address lane has an unsigned nonce below a signed one. Informational
    /// only: RULES §6 now says how a gap is filled, and `exposure_usd` follows it.
    pub fn has_nonce_gaps(&self) -> bool {
        registry::has_gaps(self.registry.iter())
    }

    /// Whether the trip-wire has suspended the session.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// Whether the owner revoked the session.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// The session time of the last decision or owner call (creation time at first).
    pub fn session_time(&self) -> u64 {
        self.now
    }

    /// How many policy denials the trip-wire remembers at `clock` (under the current
    /// policy's `within`; every denial since the last forgetting when there is no trip-wire).
    pub fn remembered_denials(&self, clock: u64) -> usize {
        let t = self.now.max(clock);
        match &self.policy.trip_wire {
            Some(tw) => self.denials.iter().filter(|&&s| t - s < tw.within).count(),
            None => self.denials.len(),
        }
    }

    /// Whether request `req` is held and waiting for the owner's approval at `clock`.
    pub fn is_pending(&self, req: &Req, clock: u64) -> bool {
        let t = self.now.max(clock);
        self.pending.iter().any(|p| p.req == *req && !p.approved && p.live(t))
    }

    /// What was charged of `asset` in the current `period` at `clock` (for status comparison).
    pub fn spent_in(&self, asset: Ledger, period: bridle_common::period::Period, clock: u64) -> U256 {
        self.spent(&asset, period, self.now.max(clock))
    }

    /// RULES §8: what moved in the period of `per` containing `t`, valued at today's price
    /// table (a token listed more than once at its highest listing); `None` when something
    /// that moved has no price.
    fn moved_usd(&self, per: bridle_common::period::Period, t: u64) -> Option<U256> {
        let mut assets: Vec<Ledger> = Vec::new();
        for (_, a, _) in &self.ledger {
            if matches!(a, Ledger::Native | Ledger::Token(_)) && !assets.contains(a) {
                assets.push(*a);
            }
        }
        let mut usd = U256::ZERO;
        for a in assets {
            let moved = self.spent(&a, per, t);
            if moved.is_zero() {
                continue;
            }
            let worth = match &a {
                Ledger::Native => self
                    .policy
                    .prices
                    .iter()
                    .find(|p| p.asset == bridle_common::policy::doc::Asset::Native)
                    .map(|p| check::usd_of(moved, p.usd, 18)),
                Ledger::Token(addr) => self
                    .policy
                    .tokens
                    .iter()
                    .filter(|t| t.address == *addr)
                    .filter_map(|t| {
                        let asset = bridle_common::policy::doc::Asset::Token(t.symbol.clone());
                        self.policy
                            .prices
                            .iter()
                            .find(|p| p.asset == asset)
                            .map(|p| check::usd_of(moved, p.usd, t.decimals))
                    })
                    .max(),
                _ => None,
            };
            usd = usd.saturating_add(worth?);
        }
        Some(usd)
    }

    /// RULES §8: the ttl when the request is held, `None` when it is signed at once.
    fn escalates(&self, ev: &check::Eval, t: u64) -> Option<u64> {
        let e = self.policy.escalate.as_ref()?;
        let per = e.per.unwrap_or(bridle_common::period::Period::Day);
        let mut held = false;
        if let Some(v) = &e.above_value {
            if let Some(asset) = self.resolve(&v.asset) {
                let c = ev.charges.get(&asset);
                held |= !c.is_zero() && self.spent(&asset, per, t).saturating_add(c) > v.max;
            }
        }
        if let Some(y) = e.above_usd {
            let usd = ev.charges.usd;
            held |= ev.charges.unpriced
                || (!usd.is_zero() && self.moved_usd(per, t).is_none_or(|m| m.saturating_add(usd) > y));
        }
        held.then_some(e.ttl)
    }

    /// Sign: charge the ledger, count the weight, record the registry item.
    fn commit(&mut self, ev: check::Eval, t: u64) {
        self.uses = self.uses.saturating_add(ev.weight);
        match self.rate.last_mut() {
            Some((s, w)) if *s == t => *w = w.saturating_add(ev.weight),
            _ => self.rate.push((t, ev.weight)),
        }
        let keep = self.policy.rate_limits.iter().map(|r| r.max).max().unwrap_or(0).max(64);
        let mut total = self.rate.iter().map(|x| x.1).fold(0u64, u64::saturating_add);
        while let Some(&(s, w)) = self.rate.first() {
            if total - w < keep {
                break;
            }
            total -= w;
            self.rate.remove(0);
            self.rate_dropped = Some(self.rate_dropped.map_or(s, |d| d.max(s)));
        }
        let c = &ev.charges;
        let mut entries = vec![(Ledger::Native, c.native), (Ledger::Gas, c.gas), (Ledger::Usd, c.usd)];
        entries.extend(c.tokens.iter().map(|(a, v)| (Ledger::Token(*a), *v)));
        for (asset, v) in entries {
            if !v.is_zero() {
                self.ledger.push((t, asset, v));
            }
        }
        self.registry.push(ev.item);
    }

    /// RULES §9: remember a policy denial; when `denials` are remembered, suspend and drop
    /// the pending requests (approved ones are no longer pending: their signature stays).
    fn trip(&mut self, t: u64) {
        self.denials.push(t);
        if let Some(tw) = &self.policy.trip_wire {
            let n = self.denials.iter().filter(|&&s| t - s < tw.within).count();
            if n >= tw.denials as usize {
                self.suspended = true;
                self.pending.retain(|p| p.approved || p.denied);
            }
        }
    }
}

/// RULES §6: whether no gas limit on `chain` makes a transaction certain — the chains that
/// take L1 data gas from the gas limit (Arbitrum One, Nova, Sepolia; zkSync Era and its
/// testnet), and every chain not known to spend its gas limit on execution alone (the
/// built-in list, written out again here, or the policy's `approvals.execution_gas_chains`).
pub fn gas_uncertain(p: &Policy, chain: u64) -> bool {
    const L1_GAS: [u64; 5] = [42_161, 42_170, 421_614, 324, 300];
    const EXECUTION_GAS: [u64; 18] = [
        1, 5, 11_155_111, 17_000, 560_048, 10, 11_155_420, 8_453, 84_532, 137, 80_002, 56, 97, 43_114, 43_113, 100,
        31_337, 1_337,
    ];
    L1_GAS.contains(&chain) || !(EXECUTION_GAS.contains(&chain) || p.approvals.execution_gas_chains.contains(&chain))
}
