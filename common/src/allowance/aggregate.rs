//! Exposure across sessions (AG-212 4.4, RULES.md §6a): what every session of one owner,
//! and every session one agent key uses, may have outstanding at worst, against ceilings
//! their owners signed into policies (`owner_exposure_ceiling`, `agent_exposure_ceiling`).
//!
//! Each session publishes its *holdings* — per chain and token, the sum over spenders of
//! each allowance's worst case over every history consistent with what it signed (the
//! figure of its own registry, RULES.md §6) — taken at its latest session time. Worst cases
//! only fall as time passes (approvals end, permits lapse), so a published figure is never
//! below the truth. The book keeps exact sums per group (U512: no saturation, so a figure
//! withdrawn leaves exactly what the others hold). A request that makes a state possible
//! that was not possible without it (RULES.md §6) is refused when, for any ceiling binding
//! it, the group's holdings with the request — valued at the price table of the policy that
//! declared the ceiling — exceed that ceiling. Pure: the enclave holds the book under one lock
//! from the check to the publication of the new holdings, so concurrent requests of
//! different sessions are decided one after the other.

use super::worst::{worst, Request};
use super::{fmt_usd, price_of, value_usd, Exposure, Key, Registry};
use crate::error::{Denial, ErrorCode};
use crate::policy::CompiledPolicy;
use alloy_primitives::{Address, B256, U256, U512};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Per (chain id, token): the sum over spenders of each allowance's worst case.
pub type Holdings = BTreeMap<(u64, Address), U256>;

/// A session's holdings over `keys` (with `req` in its history, when given).
pub fn holdings_of<'a>(
    reg: &Registry,
    keys: impl Iterator<Item = &'a Key>,
    now: u64,
    req: Option<Request<'_>>,
) -> Holdings {
    let mut h = Holdings::new();
    for k in keys {
        let amount = worst(reg, k, now, req);
        if !amount.is_zero() {
            let e = h.entry((k.chain_id, k.token)).or_default();
            *e = e.saturating_add(amount);
        }
    }
    h
}

/// A session's holdings now (no request).
pub fn holdings_now(reg: &Registry, now: u64) -> Holdings {
    holdings_of(reg, reg.keys().map(|(k, _)| k), now, None)
}

/// What a request may raise, as its session's own check computed it: the session's
/// holdings with the request — each key's worst case over the histories that include it,
/// from the request on, which bounds every state the request makes possible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raise {
    pub after: Holdings,
    /// Some key's worst case with the request, or a token's sum over its keys, reached
    /// 2^256 − 1 (where it was capped): what the session holds cannot be measured.
    pub saturated: bool,
}

/// The check across sessions, as a session's decision sees it (the enclave's book under
/// its lock; [`Unbound`] outside an enclave).
pub trait Aggregate {
    /// Refuse the request if it would take a group the session belongs to above a ceiling
    /// that binds it. Called only for requests that may raise the session's exposure.
    fn check(&mut self, raise: &Raise) -> Result<(), Denial>;

    /// Whether [`Aggregate::check`] needs to be asked at all (computing a [`Raise`] costs
    /// a second pass over the session's registry).
    fn bound(&self) -> bool {
        true
    }
}

/// No other sessions (simulation, tests, the reference-model comparison).
pub struct Unbound;

impl Aggregate for Unbound {
    fn check(&mut self, _raise: &Raise) -> Result<(), Denial> {
        Ok(())
    }

    fn bound(&self) -> bool {
        false
    }
}

/// Which sessions a ceiling is over.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every session of one owner.
    Owner,
    /// Every session one agent key uses, whoever owns it.
    Agent,
}

impl Scope {
    /// The policy field that declares it (the rule a denial names).
    pub fn rule(self) -> &'static str {
        match self {
            Scope::Owner => "owner_exposure_ceiling",
            Scope::Agent => "agent_exposure_ceiling",
        }
    }
    fn ceiling(self, p: &CompiledPolicy) -> Option<U256> {
        match self {
            Scope::Owner => p.doc.owner_exposure_ceiling,
            Scope::Agent => p.doc.agent_exposure_ceiling,
        }
    }
    fn group(self) -> &'static str {
        match self {
            Scope::Owner => "every session of this owner",
            Scope::Agent => "every session of this agent key",
        }
    }
}

#[derive(Debug)]
struct Entry {
    owner: Address,
    agent: Address,
    holdings: Holdings,
    /// The session's policy, when it declares a ceiling and the session is live.
    declares: Option<Arc<CompiledPolicy>>,
}

/// Exact sums of a group's holdings, and how many sessions are in it.
#[derive(Debug, Default)]
struct Sum {
    sessions: usize,
    tokens: BTreeMap<(u64, Address), U512>,
}

impl Sum {
    fn add(&mut self, h: &Holdings) {
        self.sessions += 1;
        for (t, v) in h {
            *self.tokens.entry(*t).or_default() += U512::from(*v);
        }
    }
    fn sub(&mut self, h: &Holdings) {
        self.sessions = self.sessions.saturating_sub(1);
        for (t, v) in h {
            if let Some(x) = self.tokens.get_mut(t) {
                *x = x.saturating_sub(U512::from(*v));
                if x.is_zero() {
                    self.tokens.remove(t);
                }
            }
        }
    }
    /// The group's holdings with `mine` replaced by `with`.
    fn with(&self, mine: Option<&Holdings>, with: &Holdings) -> BTreeMap<(u64, Address), U512> {
        let mut out = self.tokens.clone();
        for (t, v) in mine.into_iter().flatten() {
            if let Some(x) = out.get_mut(t) {
                *x = x.saturating_sub(U512::from(*v));
            }
        }
        for (t, v) in with {
            *out.entry(*t).or_default() += U512::from(*v);
        }
        out
    }
}

/// Ceilings declared for a group: by policy hash, the policy and how many sessions carry it.
type Declared = BTreeMap<B256, (Arc<CompiledPolicy>, usize)>;

/// The enclave's book of every session's holdings and declared ceilings. Sessions with
/// neither are not in it.
#[derive(Debug, Default)]
pub struct Book {
    entries: HashMap<Address, Entry>,
    by_owner: HashMap<Address, Sum>,
    by_agent: HashMap<Address, Sum>,
    owner_ceilings: HashMap<Address, Declared>,
    agent_ceilings: HashMap<(Address, Address), Declared>,
}

fn declare(d: &mut Declared, p: &Arc<CompiledPolicy>) {
    d.entry(p.hash).or_insert_with(|| (p.clone(), 0)).1 += 1;
}

fn withdraw(d: &mut Declared, p: &Arc<CompiledPolicy>) {
    if let Some(e) = d.get_mut(&p.hash) {
        e.1 -= 1;
        if e.1 == 0 {
            d.remove(&p.hash);
        }
    }
}

/// `v`, or 2^256 − 1 when larger.
fn saturate(v: U512) -> U256 {
    let l = v.as_limbs();
    if l[4..].iter().any(|x| *x != 0) {
        U256::MAX
    } else {
        U256::from_limbs([l[0], l[1], l[2], l[3]])
    }
}

/// `v` valued at `p`'s price table (tokens it does not price are listed by symbol or address).
fn value(p: &CompiledPolicy, v: &BTreeMap<(u64, Address), U512>) -> Exposure {
    let mut x = Exposure::default();
    for ((chain, token), amount) in v {
        if amount.is_zero() {
            continue;
        }
        let amount = saturate(*amount);
        match price_of(p, *chain, token) {
            Some((price, decimals)) => x.usd = x.usd.saturating_add(value_usd(amount, decimals, price)),
            None if x.unpriced.len() < MAX_LISTED => x.unpriced.push(format!("{token} on chain {chain}")),
            None => x.unpriced_omitted += 1,
        }
    }
    x
}

/// The most holdings, ceilings and unpriced tokens per ceiling a group's view (a session's
/// status, which anyone may ask for) or a refusal names; the rest are counted. A group's
/// holdings and ceilings grow with its owner's sessions (any Ethereum key can be an owner),
/// so listing them all would let one owner make every status of its sessions — built under
/// the book's lock, held in the enclave's memory — as large as it likes.
pub const MAX_LISTED: usize = 64;

/// The most distinct policies declaring an owner-wide ceiling that one owner's live sessions
/// may carry at once, and the most declaring an agent-wide ceiling for one owner and agent
/// key: a request's check values the group's holdings once per declaring policy under the
/// enclave-wide exposure lock, so their number bounds its work (a second review of
/// 2026-12-03: thousands of distinct ceiling policies made each check ≈ 1 M map
/// operations, stalling every session's approvals). Equal to [`MAX_LISTED`], so a status
/// lists every ceiling binding a session.
pub const MAX_DECLARING: usize = MAX_LISTED;

/// The most steps one check takes, each a token amount counted twice per declaring policy
/// (the group's holdings with the request, counted before the group is copied, then
/// valued); a status values its ceilings within it too: what bounds how long a request or
/// a status holds the enclave-wide exposure lock. Measured in the signing bench
/// (`exposure/check_at_its_bound`): on 2026-12-03, unbounded, 128 policies × 512
/// alternatives × 64 tokens took 1.86 s, 7.7 ms at this bound; since 2026-12-07 no
/// alternative is valued, and the longest check — 128 policies over 64 tokens held, every
/// ceiling passed — counts 32 768.
pub const MAX_CHECK_WORK: usize = 1 << 16;

/// The group's holdings with a request, per token.
type Summed = BTreeMap<(u64, Address), U512>;

/// `names` and, if `omitted`, how many more.
pub fn listed(names: &[String], omitted: u64) -> String {
    match omitted {
        0 => names.join(", "),
        n => format!("{} and {n} more", names.join(", ")),
    }
}

/// A ceiling binding a session, for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub scope: Scope,
    pub ceiling: U256,
    /// The declaring policy's hash.
    pub policy_hash: B256,
    /// The group's holdings now, at that policy's prices.
    pub exposure: Exposure,
}

/// A group a session belongs to, for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub scope: Scope,
    /// Sessions in the group holding approvals or declaring a ceiling.
    pub sessions: u64,
    /// Per (chain id, token), what the group may have outstanding (saturated at 2^256−1):
    /// the first [`MAX_LISTED`] by chain and token.
    pub holdings: Vec<(u64, Address, U256)>,
    /// Holdings not listed.
    pub holdings_omitted: u64,
    /// The [`MAX_LISTED`] lowest ceilings binding the session over this group, fewer when
    /// valuing them would pass [`MAX_CHECK_WORK`] token amounts (both groups together).
    pub limits: Vec<Limit>,
    /// Ceilings not listed.
    pub limits_omitted: u64,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// Sessions in the book.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the book holds for `session`: its holdings and whether it declares a ceiling.
    pub fn published(&self, session: &Address) -> Option<(&Holdings, bool)> {
        self.entries.get(session).map(|e| (&e.holdings, e.declares.is_some()))
    }

    /// Replace `session`'s entry: its holdings now and, when it is live and its policy
    /// declares a ceiling, that policy.
    pub fn publish(
        &mut self,
        session: Address,
        owner: Address,
        agent: Address,
        holdings: Holdings,
        declares: Option<Arc<CompiledPolicy>>,
    ) {
        self.remove(&session);
        let declares =
            declares.filter(|p| p.doc.owner_exposure_ceiling.is_some() || p.doc.agent_exposure_ceiling.is_some());
        if holdings.is_empty() && declares.is_none() {
            return;
        }
        self.by_owner.entry(owner).or_default().add(&holdings);
        self.by_agent.entry(agent).or_default().add(&holdings);
        if let Some(p) = &declares {
            if p.doc.owner_exposure_ceiling.is_some() {
                declare(self.owner_ceilings.entry(owner).or_default(), p);
            }
            if p.doc.agent_exposure_ceiling.is_some() {
                declare(self.agent_ceilings.entry((owner, agent)).or_default(), p);
            }
        }
        self.entries.insert(session, Entry { owner, agent, holdings, declares });
    }

    /// Forget `session` (dropped from the enclave).
    pub fn remove(&mut self, session: &Address) {
        let Some(e) = self.entries.remove(session) else { return };
        for (map, k) in [(&mut self.by_owner, e.owner), (&mut self.by_agent, e.agent)] {
            if let Some(s) = map.get_mut(&k) {
                s.sub(&e.holdings);
                if s.sessions == 0 {
                    map.remove(&k);
                }
            }
        }
        if let Some(p) = &e.declares {
            if let Some(d) = self.owner_ceilings.get_mut(&e.owner) {
                withdraw(d, p);
                if d.is_empty() {
                    self.owner_ceilings.remove(&e.owner);
                }
            }
            if let Some(d) = self.agent_ceilings.get_mut(&(e.owner, e.agent)) {
                withdraw(d, p);
                if d.is_empty() {
                    self.agent_ceilings.remove(&(e.owner, e.agent));
                }
            }
        }
    }

    /// The ceilings binding a session of `owner` with `agent`: every one its owner signed
    /// into a live session (agent-wide ones: into a session with the same agent).
    fn limits(&self, owner: Address, agent: Address) -> Vec<(Scope, &Arc<CompiledPolicy>)> {
        let own = self.owner_ceilings.get(&owner).into_iter().flat_map(|d| d.values().map(|(p, _)| (Scope::Owner, p)));
        let ag = self
            .agent_ceilings
            .get(&(owner, agent))
            .into_iter()
            .flat_map(|d| d.values().map(|(p, _)| (Scope::Agent, p)));
        own.chain(ag).collect()
    }

    fn sum(&self, scope: Scope, owner: Address, agent: Address) -> Option<&Sum> {
        match scope {
            Scope::Owner => self.by_owner.get(&owner),
            Scope::Agent => self.by_agent.get(&agent),
        }
    }

    /// Decide `raise` for `session` (of `owner`, used by `agent`): see the module docs.
    /// The group's holdings with the request are summed once per scope; each declaring
    /// policy (at most [`MAX_DECLARING`] per scope) values them at its prices.
    pub fn check(&self, session: Address, owner: Address, agent: Address, raise: &Raise) -> Result<(), Denial> {
        let mine = self.entries.get(&session).map(|e| &e.holdings);
        let empty = Sum::default();
        let mut summed: [Option<Summed>; 2] = [None, None];
        // Token amounts valued so far, against MAX_CHECK_WORK (in the same order on every
        // replica, so a refusal for it is the same everywhere).
        let mut work = 0usize;
        let too_much = |scope: Scope, work: usize| {
            Denial::rule(
                ErrorCode::ExposureCeiling,
                scope.rule(),
                format!(
                    "checking this request against the ceilings binding its session would value more than {MAX_CHECK_WORK} token amounts (its group's tokens, twice per ceiling policy; {work} valued so far), so it is refused unchecked; fewer distinct ceiling policies bring it within"
                ),
            )
        };
        for (scope, p) in self.limits(owner, agent) {
            let Some(ceiling) = scope.ceiling(p) else { continue };
            let sum = self.sum(scope, owner, agent).unwrap_or(&empty);
            // Counted before the group is copied (its size bounds the copy's).
            work = work.saturating_add(2 * (sum.tokens.len() + raise.after.len()));
            if work > MAX_CHECK_WORK {
                return Err(too_much(scope, work));
            }
            let after_map = summed[scope as usize].get_or_insert_with(|| sum.with(mine, &raise.after));
            let after = value(p, after_map);
            if !after.unpriced.is_empty() {
                return Err(Denial::rule(
                    ErrorCode::ExposureCeiling,
                    scope.rule(),
                    format!(
                        "approvals of {} outstanding across {} have no price in the price table of the policy that declares the {} (policy {:#x}), so the aggregate cannot be valued; price them or revoke them",
                        listed(&after.unpriced, after.unpriced_omitted),
                        scope.group(),
                        scope.rule(),
                        p.hash
                    ),
                ));
            }
            // Valued at 2^256 − 1 or more, or holding such an amount (where sums and values
            // were capped), the group cannot be measured against the ceiling (a review of
            // 2026-12-05: an agent's own session approving 10^66 of a priced token switched
            // off every agent ceiling binding it): refused.
            let unmeasured =
                raise.saturated || after.usd == U256::MAX || after_map.values().any(|a| *a >= U512::from(U256::MAX));
            if unmeasured {
                return Err(Denial::rule(
                    ErrorCode::ExposureCeiling,
                    scope.rule(),
                    format!(
                        "outstanding approvals across {} are worth 2^256 - 1 USD units or more at the prices of policy {:#x}, or hold an amount that large, so the {} cannot be checked; revoke the approvals of amounts beyond any token's supply",
                        scope.group(),
                        p.hash,
                        scope.rule()
                    ),
                ));
            }
            // The others' holdings bound every state of theirs, the session's with the request
            // every state the request makes possible: their sum bounds the group's. Never
            // compared with the group without it — each figure is a sum of worst cases from
            // different histories, which a request can make coincide (a review of 2026-12-07).
            if after.usd > ceiling {
                return Err(Denial::rule(
                    ErrorCode::ExposureCeiling,
                    scope.rule(),
                    format!(
                        "outstanding approvals across {} would be worth {} at worst (each session's worst case over every history consistent with what it signed), above the {} of {} signed in policy {:#x}; revoke approvals first (a revocation always passes)",
                        scope.group(),
                        fmt_usd(after.usd),
                        scope.rule(),
                        fmt_usd(ceiling),
                        p.hash
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuse `p` as the policy of `session` (of `owner`, with `agent`; a new session when it
    /// is not in the book) when it would make one distinct policy declaring a ceiling too
    /// many for a group it binds ([`MAX_DECLARING`]). What the session declares now is
    /// replaced, so an update never counts against itself.
    pub fn admit(&self, session: Address, owner: Address, agent: Address, p: &CompiledPolicy) -> Result<(), Denial> {
        let now = self.entries.get(&session).and_then(|e| e.declares.as_ref());
        for scope in [Scope::Owner, Scope::Agent] {
            if scope.ceiling(p).is_none() {
                continue;
            }
            let declared = match scope {
                Scope::Owner => self.owner_ceilings.get(&owner),
                Scope::Agent => self.agent_ceilings.get(&(owner, agent)),
            };
            let Some(d) = declared else { continue };
            if d.contains_key(&p.hash) {
                continue;
            }
            // The session's own declaring policy leaves the group if it is the last to carry it.
            let leaving =
                now.is_some_and(|q| scope.ceiling(q).is_some() && d.get(&q.hash).is_some_and(|(_, n)| *n == 1));
            let distinct = d.len() - usize::from(leaving);
            if distinct >= MAX_DECLARING {
                return Err(Denial::rule(
                    ErrorCode::RateLimited,
                    scope.rule(),
                    format!(
                        "{} already carry {distinct} distinct policies declaring an {}, the most one group may carry at once ({MAX_DECLARING}): give this session one of those policies, or revoke sessions that carry others",
                        match scope {
                            Scope::Owner => "this owner's live sessions",
                            Scope::Agent => "this owner's live sessions with this agent key",
                        },
                        scope.rule()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The groups a session of `owner` with `agent` belongs to, as they stand.
    pub fn view(&self, owner: Address, agent: Address) -> Vec<GroupView> {
        let limits = self.limits(owner, agent);
        // Anyone may ask for a status, built under the book's lock: ceilings are valued
        // while the tokens valued stay within MAX_CHECK_WORK across both groups, the rest
        // counted as omitted (a review: 128 ceilings over a group of ≈ 65 000 tokens — one
        // key's own sessions can hold that many — took seconds per status).
        let mut work = 0usize;
        [Scope::Owner, Scope::Agent]
            .into_iter()
            .map(|scope| {
                let sum = self.sum(scope, owner, agent);
                let empty = BTreeMap::new();
                let tokens = sum.map_or(&empty, |s| &s.tokens);
                // The lowest ceilings first (the policy hash breaks ties): only those listed
                // are valued.
                let mut ceilings: Vec<(U256, &Arc<CompiledPolicy>)> = limits
                    .iter()
                    .filter(|(s, _)| *s == scope)
                    .filter_map(|(_, p)| Some((scope.ceiling(p)?, *p)))
                    .collect();
                ceilings.sort_unstable_by_key(|(c, p)| (*c, p.hash));
                let listed: Vec<Limit> = ceilings
                    .iter()
                    .take(MAX_LISTED)
                    .take_while(|_| {
                        work = work.saturating_add(tokens.len().max(1));
                        work <= MAX_CHECK_WORK
                    })
                    .map(|(ceiling, p)| Limit {
                        scope,
                        ceiling: *ceiling,
                        policy_hash: p.hash,
                        exposure: value(p, tokens),
                    })
                    .collect();
                GroupView {
                    scope,
                    sessions: sum.map_or(0, |s| s.sessions as u64),
                    holdings: tokens.iter().take(MAX_LISTED).map(|((c, t), v)| (*c, *t, saturate(*v))).collect(),
                    holdings_omitted: tokens.len().saturating_sub(MAX_LISTED) as u64,
                    limits_omitted: (ceilings.len() - listed.len()) as u64,
                    limits: listed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
