//! `sign_if_allowed` on one session: replay window → pending? → evaluate → escalate? →
//! sign → charge, at one session time, in one step.

use super::replay::ReplayError;
use super::{Machine, Outcome, Pending, Signer, MAX_PENDING};
use crate::allowance::aggregate::{Aggregate, Unbound};
use crate::audit::rec;
use crate::error::{Denial, ErrorCode};
use crate::payload::Prepared;
use crate::period::format_time;
use crate::policy::exposure::raise_of;
use crate::policy::{escalation, Context};
use crate::protocol::{SignPayload, Signed};
use crate::stamp::Stamp;
use crate::units::format_duration;
use alloy_primitives::{Bytes, B256};

impl Machine {
    /// The decision context at session time `t`.
    pub(crate) fn ctx(&self, t: u64) -> Context {
        Context { now: t, anchor: self.facts.anchor, owner: self.facts.owner, account: self.facts.address }
    }

    /// Decide and (when allowed) sign a request whose stamp MAC the caller has verified
    /// for this session. `clock` is the enclave clock read under the session's lock.
    pub fn sign(
        &mut self,
        clock: u64,
        payload: &SignPayload,
        prepared: Prepared,
        stamp: &Stamp,
        key: Option<&dyn Signer>,
    ) -> Outcome<Signed> {
        self.sign_within(clock, payload, prepared, stamp, key, &mut Unbound)
    }

    /// [`Machine::sign`] with the check across sessions (RULES.md §6a): `aggregate` is asked
    /// about every request that may raise the session's exposure, before it is signed.
    pub fn sign_within(
        &mut self,
        clock: u64,
        payload: &SignPayload,
        prepared: Prepared,
        stamp: &Stamp,
        key: Option<&dyn Signer>,
        aggregate: &mut dyn Aggregate,
    ) -> Outcome<Signed> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let r = self.sign_at(t, payload, prepared, stamp, key, aggregate, &mut out);
        out.done(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_at(
        &mut self,
        t: u64,
        payload: &SignPayload,
        prepared: Prepared,
        stamp: &Stamp,
        key: Option<&dyn Signer>,
        aggregate: &mut dyn Aggregate,
        out: &mut Outcome<Signed>,
    ) -> Result<Signed, Denial> {
        let session = self.facts.address;
        if self.revoked {
            return Err(Denial::new(ErrorCode::Revoked, "the owner revoked this session"));
        }
        if let Some(why) = &self.suspended {
            return Err(Denial::new(ErrorCode::Suspended, format!("session suspended: {why}")));
        }
        match self.replay.check_and_insert(stamp.nonce, stamp.timestamp, t) {
            Ok(()) => {}
            Err(ReplayError::Seen { signed: Some(d) }) if d == prepared.stamp_digest() => {
                // The identical request, signed before: the same signature again (RFC 6979
                // makes it the same bytes), charged and logged once (RULES.md §2).
                return sign_with(key, session, &prepared);
            }
            Err(ReplayError::Seen { .. }) => return Err(Denial::new(ErrorCode::Replayed, "stamp nonce already used")),
            Err(ReplayError::OutsideWindow { timestamp, now, window }) => {
                return Err(Denial::new(
                    ErrorCode::Replayed,
                    format!("stamp time {timestamp} is more than {window} s from the session time {now}"),
                ))
            }
            Err(ReplayError::Full { capacity }) => {
                return Err(Denial::new(
                    ErrorCode::RateLimited,
                    format!("more than {capacity} live stamps for this session"),
                ))
            }
        }
        out.fresh = true;
        let digest = prepared.stamp_digest();

        // A request already held for the owner's approval (R-POL-10): still waiting, or
        // approved and signed — the agent collects that signature by asking again.
        if let Some(p) = self.pending.get(&digest) {
            if t < p.expires_at {
                return match &p.signed {
                    // Signed (and logged) at the approval: no new decision.
                    Some(signed) => {
                        let signed = signed.clone();
                        self.replay.mark_signed(stamp.nonce, digest);
                        Ok(signed)
                    }
                    None if p.denied_at.is_some() => {
                        let d = Denial::rule(
                            ErrorCode::DeniedByOwner,
                            p.rule.clone(),
                            format!(
                                "{}: the owner denied request {digest:#x} at {}; asking again is refused until {}, then decided afresh",
                                p.reason,
                                format_time(p.denied_at.unwrap_or_default()),
                                format_time(p.expires_at)
                            ),
                        );
                        // The agent's own fresh request, refused: logged (not counted by
                        // the trip-wire: the owner's denial, not a policy denial).
                        out.records.push(rec::denied(session, digest, &d));
                        Err(d)
                    }
                    None => Err(Denial::rule(
                        ErrorCode::PendingApproval,
                        p.rule.clone(),
                        format!(
                            "{}: still waiting for the owner's approval of request {digest:#x} (until {})",
                            p.reason,
                            format_time(p.expires_at)
                        ),
                    )),
                };
            }
            // Expired: forgotten; the request is decided afresh below.
            out.records.push(rec::expired_pending(session, digest, p.expires_at));
            self.pending.remove(&digest);
        }

        let ctx = self.ctx(t);
        let policy = self.policy.clone();
        let charges = match prepared.evaluate(&policy, &self.counters, &ctx) {
            Ok(c) => c,
            Err(d) => {
                out.records.push(rec::denied(session, digest, &d));
                self.trip_wire(t, &d, out);
                return Err(d);
            }
        };
        if !self.counters.has_room(&policy, &charges, t) {
            let d = Denial::rule(
                ErrorCode::RateLimited,
                "enclave.session_state",
                "this session's ledger or allowance registry is full; it can sign nothing more that needs recording",
            );
            out.records.push(rec::denied(session, digest, &d));
            return Err(d);
        }
        // Exposure across sessions (RULES.md §6a), before the request may be held: a
        // request over an aggregate ceiling is refused, not offered to the owner.
        if let Some(raise) = aggregate.bound().then(|| raise_of(&self.counters, &ctx, &charges)).flatten() {
            if let Err(d) = aggregate.check(&raise) {
                out.records.push(rec::denied(session, digest, &d));
                self.trip_wire(t, &d, out);
                return Err(d);
            }
        }
        if let Some(d) = escalation(&policy, &self.counters, &ctx, &charges) {
            return Err(self.hold(t, payload, digest, d, out));
        }
        // Allowed: signed and charged in one step.
        let signed = sign_with(key, session, &prepared)?;
        self.counters.charge(&policy, &charges, self.facts.anchor, t);
        self.replay.mark_signed(stamp.nonce, digest);
        out.records.push(rec::allowed(session, digest, prepared.kind_name()));
        Ok(signed)
    }

    /// The trip-wire (R-APP-7): `denials` policy denials within `within` seconds suspend
    /// the session, recording why. Only the owner lifts it (a signed policy update) or ends
    /// it (revoke).
    pub(crate) fn trip_wire<T>(&mut self, t: u64, d: &Denial, out: &mut Outcome<T>) {
        let Some(tw) = self.policy.doc.trip_wire.clone() else { return };
        if !d.code.is_denial() || matches!(d.code, ErrorCode::PendingApproval) {
            return;
        }
        self.denials.push_back(t);
        while self.denials.front().is_some_and(|&x| x.saturating_add(tw.within) <= t) {
            self.denials.pop_front();
        }
        if self.denials.len() >= tw.denials as usize {
            let why = format!(
                "trip-wire: {} denials within {} (trip_wire rule; last at {}: {d})",
                self.denials.len(),
                format_duration(tw.within),
                format_time(t)
            );
            self.denials.clear();
            // Requests waiting for approval are dropped; approved ones are signed already;
            // denied ones stay denied until their time (a suspension must not wipe a denial).
            self.pending.retain(|_, p| p.signed.is_some() || p.denied_at.is_some());
            out.records.push(rec::suspended(self.facts.address, &why));
            self.suspended = Some(why);
            self.suspended_at = Some(t);
        }
    }

    /// Hold an allowed request over an escalation threshold as pending (R-POL-10).
    fn hold(&mut self, t: u64, payload: &SignPayload, digest: B256, d: Denial, out: &mut Outcome<Signed>) -> Denial {
        let session = self.facts.address;
        let ttl = self.policy.doc.escalate.as_ref().map(|e| e.ttl).unwrap_or(0);
        if self.pending.len() >= MAX_PENDING {
            self.pending.retain(|_, p| t < p.expires_at);
        }
        if self.pending.len() >= MAX_PENDING {
            let d = Denial::rule(
                ErrorCode::RateLimited,
                "escalate",
                format!("{MAX_PENDING} requests already wait for the owner's approval"),
            );
            out.records.push(rec::denied(session, digest, &d));
            return d;
        }
        let expires_at = t.saturating_add(ttl);
        let rule = d.rule.clone().unwrap_or_else(|| "escalate".into());
        self.pending.insert(
            digest,
            Box::new(Pending {
                payload: payload.clone(),
                created_at: t,
                expires_at,
                rule: rule.clone(),
                reason: d.reason.clone(),
                signed: None,
                denied_at: None,
                cbor: crate::frame::cbor_len(payload),
            }),
        );
        out.records.push(rec::pending(session, digest, &rule, expires_at));
        Denial::rule(
            ErrorCode::PendingApproval,
            rule,
            format!(
                "{}: held for the owner's approval of request {digest:#x} until {}; ask again with the same request to collect the signature once approved",
                d.reason,
                format_time(expires_at)
            ),
        )
    }
}

/// Sign what `prepared` says with the session key.
pub(crate) fn sign_with(
    key: Option<&dyn Signer>,
    session: alloy_primitives::Address,
    prepared: &Prepared,
) -> Result<Signed, Denial> {
    let key = key.ok_or_else(|| Denial::new(ErrorCode::Revoked, "session key destroyed"))?;
    let sig = key
        .sign(&prepared.signing_digest())
        .map_err(|e| Denial::new(ErrorCode::Internal, format!("signing failed: {e}")))?;
    let raw_transaction = match prepared {
        Prepared::Transaction { built, .. } => Some((**built).clone().encode_signed(sig)),
        _ => None,
    };
    Ok(Signed {
        session,
        digest: prepared.stamp_digest(),
        signature: Bytes::copy_from_slice(&sig.as_bytes()),
        raw_transaction,
    })
}
