//! `conformance = "AG-212"`: a policy that says it conforms to AG-212 (delegated spend
//! governance) is refused unless it binds every MUST that Bridle otherwise leaves to the
//! owner's policy (CONFORMANCE.md, "met when the policy sets …"). What the engine enforces
//! for every policy (no unlimited approval, the allowance registry, the approval lifetime's
//! defaults) needs no setting; this checks the settings.
//!
//! Each refusal is `invalid_policy`, its rule `conformance.<what>`, its reason naming the
//! clause.

use super::compile::{invalid, CompiledCall, FnMatcher};
use super::doc::*;
use crate::error::Denial;
use crate::period::Period;
use serde::{Deserialize, Serialize};

/// A standard a policy says it conforms to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Conformance {
    /// AG-212, delegated spend governance (`../shared/reference`, CONFORMANCE.md).
    #[serde(rename = "AG-212")]
    Ag212,
}

impl Conformance {
    pub fn parse(s: &str) -> Option<Conformance> {
        (s == "AG-212").then_some(Conformance::Ag212)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Conformance::Ag212 => "AG-212",
        }
    }
}

fn refuse(what: &str, clause: &str, why: impl std::fmt::Display) -> Denial {
    invalid(format!("conformance.{what}"), format!("AG-212 {clause}: {why}"))
}

/// Whether the policy can grant approvals: spenders or per-token approval caps.
pub fn approves(doc: &Policy) -> bool {
    !doc.approvals.spenders.is_empty() || !doc.approvals.caps.is_empty()
}

/// The periods that bound a whole session of at most 24 h counted from its anchor: a
/// day, a week or a month begins at the anchor and outlasts it, and the session never resets.
fn bounds_the_session(p: Period) -> bool {
    matches!(p, Period::Day | Period::Week | Period::Month | Period::Session)
}

/// Most denials, and shortest window, of a trip-wire under the claim: one that needs more
/// (10 000 denials a second is accepted otherwise) never fires (a review of 2026-12-07).
pub const TRIP_WIRE_MAX_DENIALS: u32 = 20;
pub const TRIP_WIRE_MIN_WINDOW: u64 = 60;

/// Refuse a policy that says it conforms and does not (see the module docs); `calls` are its
/// compiled `[[calls]]`.
pub fn check(doc: &Policy, calls: &[CompiledCall]) -> Result<(), Denial> {
    let Some(Conformance::Ag212) = doc.conformance else { return Ok(()) };
    let a = &doc.approvals;
    if approves(doc) {
        // 4.1: every approval bounded to the immediate operation, within 10 %.
        if !a.jit_only {
            return Err(refuse(
                "approvals.jit_only",
                "4.1",
                "an approval must be bounded to the operation that consumes it: set approvals.jit_only = true (or grant no approvals)",
            ));
        }
        if let Some(i) = a.jit.iter().position(|j| j.token_path.is_none()) {
            return Err(refuse(
                &format!("approvals.jit[{i}]"),
                "4.1",
                "a just-in-time rule without token_arg does not bind which token's approval it consumes",
            ));
        }
        if a.jit_tolerance_bps > 1_000 {
            return Err(refuse("approvals.jit_tolerance", "4.1", "the tolerance may not exceed 10 %"));
        }
        // 4.2: the lifetimes AG-212 names (24 h above 10 000 USD, 7 days below) are the
        // default; one lifetime for every approval may not pass 24 h.
        if let Some(l) = a.lifetime.filter(|l| *l > 24 * 3600) {
            return Err(refuse(
                "approvals.lifetime",
                "4.2",
                format!("{l} s: an approval above 10 000 USD may live at most 24 h (leave lifetime unset for AG-212's defaults)"),
            ));
        }
        // 4.4: an aggregate exposure ceiling.
        if doc.exposure_ceiling.is_none()
            && doc.owner_exposure_ceiling.is_none()
            && doc.agent_exposure_ceiling.is_none()
        {
            return Err(refuse(
                "exposure_ceiling",
                "4.4",
                "a policy that approves needs an exposure ceiling (exposure_ceiling, owner_exposure_ceiling or agent_exposure_ceiling)",
            ));
        }
    }
    // 4.1/4.2: a permit is an approval by signature, never bound to an operation.
    if !doc.permits.is_empty() {
        return Err(refuse(
            "permits",
            "4.1",
            "a permit (typed data) approves apart from any operation: a conforming policy signs none",
        ));
    }
    // Typed data authorizes off chain what no call rule sees (an order spending through a
    // smart account's allowances, a transfer authorization): a conforming policy signs none.
    if !doc.typed_data.is_empty() {
        return Err(refuse(
            "typed_data",
            "4.5",
            "typed data authorizes what no call rule or limit sees: a conforming policy signs none",
        ));
    }
    // 4.5: specific contracts and functions, value per call and per session, 24 h.
    for (i, c) in calls.iter().enumerate() {
        if c.target.is_none() {
            return Err(refuse(&format!("calls[{i}].target"), "4.5", "a wildcard target is not a specific contract"));
        }
        if let Some(j) = c.fns.iter().position(|f| matches!(f.matcher, FnMatcher::Any)) {
            return Err(refuse(
                &format!("calls[{i}].functions[{j}]"),
                "4.5",
                "a wildcard function is not a specific selector",
            ));
        }
    }
    // A contract that is not a listed token is metered by nothing when it moves tokens: an
    // unlisted ERC-20, an NFT (a review of 2026-12-07 moved a million DAI and 50 NFTs).
    let moving = super::selectors::token_moving_selectors();
    let executing = super::selectors::account_executing_selectors();
    let accounts: Vec<_> = doc.user_operations.senders.iter().chain(&doc.delegations.delegators).collect();
    for (i, c) in calls.iter().enumerate() {
        let Some(target) = c.target else { continue };
        // A function through which an account runs calls as itself runs them unmetered when
        // named (RULES §5): a second review of the claim moved 3 000 000 USDC through a named
        // `execute` past a 10 000 USDC daily limit. Nor a call to an account the session
        // signs or redeems for: no list names every account's own functions.
        if accounts.contains(&&target) {
            return Err(refuse(
                &format!("calls[{i}].target"),
                "4.5",
                format!("{target} is an account the session signs or redeems for: its own functions run calls no rule meters"),
            ));
        }
        for f in &c.fns {
            if matches!(f.matcher, FnMatcher::Selector(s) if executing.contains(&s)) {
                return Err(refuse(
                    &format!("calls[{i}]"),
                    "4.5",
                    format!("{} makes an account run calls no rule meters", f.rule),
                ));
            }
        }
        if doc.tokens.iter().any(|t| t.address == target) {
            continue;
        }
        for f in &c.fns {
            if matches!(f.matcher, FnMatcher::Selector(s) if moving.contains(&s)) {
                return Err(refuse(
                    &format!("calls[{i}]"),
                    "4.5",
                    format!("{} moves tokens on {target}, which is not a listed token: list it under tokens (with a limit), or name no such function", f.rule),
                ));
            }
        }
    }
    let Some(_) = doc.max_value_per_call else {
        return Err(refuse("max_value_per_call", "4.5", "the maximum value per call must be set (\"0 ETH\" for none)"));
    };
    let bounded = |asset: &Asset| {
        doc.limits.iter().any(|l| &l.asset == asset && bounds_the_session(l.period))
            || doc.streams.iter().any(|s| &s.asset == asset)
    };
    // The native coin leaves as value, as a user operation's prefund (charged as native
    // value) and as fees, whatever `max_value_per_call` says (a review of 2026-12-07 signed
    // 200 000 ETH of prefunds under a policy with max_value_per_call = 0).
    if !bounded(&Asset::Native) {
        return Err(refuse(
            "limits",
            "4.5",
            "the native coin leaves as value, prefunds and fees: a limit on it per day, week, month or session (or a stream) must bound it over the session",
        ));
    }
    let g = &doc.gas;
    if g.max_fee_per_gas.is_none() || g.max_gas_limit.is_none() {
        return Err(refuse(
            "gas",
            "4.5",
            "fees must be capped per transaction: set gas.max_fee_per_gas and gas.max_gas_limit",
        ));
    }
    if !g.count_in_native && !g.cost_limits.iter().any(|l| bounds_the_session(l.period)) {
        return Err(refuse(
            "gas",
            "4.5",
            "fees must be bounded over the session: gas.count_in_native = true, or a gas cost limit per day, week, month or session",
        ));
    }
    // Calls a smart account makes unmetered may spend what it approved outside Bridle: only
    // for accounts the owner names (a review of 2026-12-07).
    let u = &doc.user_operations;
    if u.unmetered_calls && u.senders.is_empty() {
        return Err(refuse(
            "user_operations.unmetered_calls",
            "4.5",
            "unmetered calls only from accounts the owner names and vouches hold nothing Bridle did not meter: list them in user_operations.senders",
        ));
    }
    if let Some(t) = doc.tokens.iter().find(|t| !bounded(&Asset::Token(t.symbol.clone()))) {
        return Err(refuse(
            "limits",
            "4.5",
            format!(
                "token {}: a limit per day, week, month or session (or a stream) must bound it over the session",
                t.symbol
            ),
        ));
    }
    if let Some(d) = doc.max_duration.filter(|d| *d > DEFAULT_MAX_DURATION) {
        return Err(refuse(
            "max_duration",
            "4.5",
            format!("{d} s: a session may last at most 24 h without re-authentication"),
        ));
    }
    // 4.6: automatic revocation on a security event.
    match &doc.trip_wire {
        None => {
            return Err(refuse(
                "trip_wire",
                "4.6",
                "a trip-wire must suspend the session (and its approvals be swept) on a run of denials",
            ))
        }
        Some(t) if t.denials > TRIP_WIRE_MAX_DENIALS || t.within < TRIP_WIRE_MIN_WINDOW => {
            return Err(refuse(
                "trip_wire",
                "4.6",
                format!(
                    "{} denials within {} s may never come: at most {TRIP_WIRE_MAX_DENIALS} denials within at least {TRIP_WIRE_MIN_WINDOW} s",
                    t.denials, t.within
                ),
            ))
        }
        Some(_) => {}
    }
    Ok(())
}
