//! Owner acts on one session, once the enclave has checked the owner's signature: policy
//! update, revocation, approval of a pending request.

use super::sign::sign_with;
use super::{Machine, Outcome, Signer};
use crate::allowance::aggregate::{Aggregate, Unbound};
use crate::audit::rec;
use crate::error::{Denial, ErrorCode};
use crate::payload::prepare;
use crate::period::format_time;
use crate::policy::exposure::raise_of;
use crate::policy::CompiledPolicy;
use crate::protocol::Signed;
use alloy_primitives::B256;
use std::sync::Arc;

impl Machine {
    /// Refusals every owner act shares.
    fn owner_gate(&self) -> Result<(), Denial> {
        if self.revoked {
            return Err(Denial::new(ErrorCode::Revoked, "the owner revoked this session"));
        }
        Ok(())
    }

    /// Replace the policy (RULES.md §7): the counters — ledger, uses, rate-limit history,
    /// registry — stay; the owner's signed update lifts a trip-wire suspension.
    pub fn update_policy(&mut self, clock: u64, policy: CompiledPolicy) -> Outcome<B256> {
        if let Err(d) = self.owner_gate() {
            // Refused: nothing changes, the session time included.
            let out = Outcome::new(self.time);
            return out.done(Err(Denial { reason: "a revoked session cannot be updated".into(), ..d }));
        }
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let hash = policy.hash;
        self.counters.allowances.mark_uncertain(|c| crate::allowance::gas_uncertain(&policy, c));
        self.policy = Arc::new(policy);
        self.suspended = None;
        self.suspended_at = None;
        self.denials.clear();
        out.records.push(rec::policy_updated(self.facts.address, self.facts.owner, hash));
        out.done(Ok(hash))
    }

    /// Revoke (`all`: by revoke-all): nothing is signed any more but the sweep's revocations;
    /// pending requests are dropped; the key is destroyed at once unless an approval may
    /// still be outstanding in some history ([`Machine::may_hold`], R-APP-6) — settled by a
    /// revocation or not: whoever holds the revocation that settles one may keep it to
    /// itself, and once the key is gone nothing else could take its place (reviews of
    /// 2026-12-05). Then the key is kept, able to sign nothing but revocations, so that the
    /// owner can sweep again while the registry has room. `Ok(false)`: already revoked.
    pub fn revoke(&mut self, clock: u64, all: bool) -> Outcome<bool> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        if self.revoked {
            return out.done(Ok(false));
        }
        self.revoked = true;
        self.pending.clear();
        if !self.may_hold(t) {
            self.key_destroyed = true;
        }
        out.records.push(rec::revoked(self.facts.address, self.facts.owner, all));
        out.done(Ok(true))
    }

    /// The owner approves exactly one pending request's digest (R-POL-10): checked against
    /// every rule again at this session time, signed and charged now, and the signature
    /// kept for the agent to collect by asking again, until the same time-to-live passes.
    pub fn approve(&mut self, clock: u64, digest: B256, key: Option<&dyn Signer>) -> Outcome<Signed> {
        self.approve_within(clock, digest, key, &mut Unbound)
    }

    /// [`Machine::approve`] with the check across sessions (RULES.md §6a).
    pub fn approve_within(
        &mut self,
        clock: u64,
        digest: B256,
        key: Option<&dyn Signer>,
        aggregate: &mut dyn Aggregate,
    ) -> Outcome<Signed> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let r = self.approve_at(t, digest, key, aggregate, &mut out);
        out.done(r)
    }

    fn approve_at(
        &mut self,
        t: u64,
        digest: B256,
        key: Option<&dyn Signer>,
        aggregate: &mut dyn Aggregate,
        out: &mut Outcome<Signed>,
    ) -> Result<Signed, Denial> {
        let session = self.facts.address;
        self.owner_gate()?;
        if let Some(why) = &self.suspended {
            return Err(Denial::new(ErrorCode::Suspended, format!("session suspended: {why}")));
        }
        let Some(p) = self.pending.get(&digest) else {
            return Err(Denial::malformed(format!(
                "no request {digest:#x} is pending in session {session} (never held, or expired and asked again)"
            )));
        };
        if t < p.expires_at {
            if let Some(signed) = &p.signed {
                // Approving again returns the signature made at the approval.
                return Ok(signed.clone());
            }
        }
        if t >= p.expires_at {
            let expired = p.expires_at;
            self.pending.remove(&digest);
            out.records.push(rec::expired_pending(session, digest, expired));
            return Err(Denial::rule(
                ErrorCode::Expired,
                "escalate.ttl",
                format!(
                    "request {digest:#x} waited for approval until {} and expired; it can no longer be approved (the agent must ask again)",
                    format_time(expired)
                ),
            ));
        }
        if let Some(at) = p.denied_at {
            return Err(Denial::rule(
                ErrorCode::DeniedByOwner,
                p.rule.clone(),
                format!(
                    "request {digest:#x} was denied by the owner at {}; a denial is final until {} (then the agent may ask again)",
                    format_time(at),
                    format_time(p.expires_at)
                ),
            ));
        }
        let window = p.expires_at.saturating_sub(p.created_at);
        // Prepared again (held requests keep only their payload): as when it was held.
        let prepared =
            prepare(&p.payload).ok().filter(|prepared| prepared.stamp_digest() == digest).ok_or_else(|| {
                Denial::new(ErrorCode::Internal, format!("held request {digest:#x} no longer prepares to its digest"))
            })?;
        // Re-check every rule now: caps, quota, time; charging happens at signing time.
        let policy = self.policy.clone();
        let ctx = self.ctx(t);
        let charges = prepared.evaluate(&policy, &self.counters, &ctx)?;
        if !self.counters.has_room(&policy, &charges, t) {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                "enclave.session_state",
                "this session's ledger or allowance registry is full",
            ));
        }
        if let Some(raise) = aggregate.bound().then(|| raise_of(&self.counters, &ctx, &charges)).flatten() {
            aggregate.check(&raise)?;
        }
        let signed = sign_with(key, session, &prepared)?;
        self.counters.charge(&policy, &charges, self.facts.anchor, t);
        if let Some(p) = self.pending.get_mut(&digest) {
            p.signed = Some(signed.clone());
            p.expires_at = t.saturating_add(window);
        }
        out.records.push(rec::approved(session, digest));
        Ok(signed)
    }

    /// The owner denies exactly one pending request's digest (R-POL-10): it is never
    /// signed; until its time-to-live passes, the agent asking again is refused
    /// `denied_by_owner` (rather than held anew), then the request is decided afresh.
    /// Returns the time until which it stays denied. A request already approved and signed
    /// cannot be denied (its signature exists: revoke the session to stop its use).
    pub fn deny(&mut self, clock: u64, digest: B256) -> Outcome<u64> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let r = self.deny_at(t, digest, &mut out);
        out.done(r)
    }

    fn deny_at(&mut self, t: u64, digest: B256, out: &mut Outcome<u64>) -> Result<u64, Denial> {
        let session = self.facts.address;
        self.owner_gate()?;
        let Some(p) = self.pending.get_mut(&digest) else {
            return Err(Denial::malformed(format!(
                "no request {digest:#x} is pending in session {session} (never held, expired, or dropped by a suspension)"
            )));
        };
        if t >= p.expires_at {
            let expired = p.expires_at;
            self.pending.remove(&digest);
            out.records.push(rec::expired_pending(session, digest, expired));
            return Err(Denial::rule(
                ErrorCode::Expired,
                "escalate.ttl",
                format!("request {digest:#x} waited for approval until {} and expired unsigned", format_time(expired)),
            ));
        }
        if p.signed.is_some() {
            return Err(Denial::malformed(format!(
                "request {digest:#x} was approved and signed already; a signature cannot be taken back (revoke the session to stop the agent using it)"
            )));
        }
        if p.denied_at.is_none() {
            p.denied_at = Some(t);
            out.records.push(rec::rejected(session, digest, p.expires_at));
        }
        Ok(p.expires_at)
    }
}
