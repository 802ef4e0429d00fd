//! RULES §8 and §9 as clarified: asking again for a held request, owner approvals, what the
//! trip-wire counts, what an update forgets; and owner calls on a revoked session.

mod util;

use alloy_primitives::U256;
use bridle_common::period::Period;
use bridle_common::policy::doc::*;
use bridle_model::{Ledger, Req, Verdict};
use util::*;

/// Transfers of USDC above 100 per day are held for `ttl`.
fn escalating(ttl: u64) -> Policy {
    let mut p = base();
    p.escalate = Some(Box::new(Escalation {
        above_value: Some(EscalateValue { asset: usdc_asset(), max: usdc(100) }),
        above_usd: None,
        per: Some(Period::Day),
        ttl,
    }));
    p
}

fn pay(nonce: u64, amount: u64) -> Req {
    tx(nonce, USDC, transfer(DEAD, usdc(amount)))
}

#[test]
fn asking_again_while_pending_is_not_decided_again() {
    let mut m = model(&escalating(3 * 86_400));
    let t = t0() + 10;
    assert_eq!(m.sign(&pay(0, 80), t), Verdict::Allowed);
    let Verdict::Pending(id) = m.sign(&pay(1, 50), t + 1) else { panic!("expected a held request") };
    // The next day 50 would no longer escalate: still pending, nothing signed or charged.
    assert_eq!(m.sign(&pay(1, 50), t + 86_400), Verdict::Pending(id));
    assert_eq!(m.uses(), 1);
    assert!(m.is_pending(&pay(1, 50), t + 86_400));
    // A different request is decided on its own.
    assert_eq!(m.sign(&pay(1, 49), t + 86_401), Verdict::Allowed);
    // Even after the session is over, the held request is answered pending.
    let mut q = escalating(3 * 86_400);
    q.valid_until = Some(t + 86_402);
    m.update(&q, t + 86_402).unwrap();
    assert_eq!(m.sign(&pay(1, 50), t + 86_403), Verdict::Pending(id));
}

#[test]
fn once_approved_asking_again_returns_that_signature_without_charging() {
    let mut m = model(&escalating(600));
    let t = t0() + 10;
    let Verdict::Pending(id) = m.sign(&pay(0, 150), t) else { panic!() };
    assert_eq!(m.approve(id, t + 1), Verdict::Allowed);
    assert_eq!(m.uses(), 1);
    assert_eq!(m.sign(&pay(0, 150), t + 2), Verdict::Allowed);
    // The signature can be collected for another ttl from the approval (RULES §8).
    assert_eq!(m.sign(&pay(0, 150), t + 600), Verdict::Allowed);
    assert_eq!(m.uses(), 1);
    assert_eq!(m.spent_in(Ledger::Token(USDC), Period::Day, t + 600), usdc(150));
    // Approving it again returns that signature, charging nothing.
    assert_eq!(m.approve(id, t + 3), Verdict::Allowed);
    assert_eq!(m.uses(), 1);
    // Once its time is over it is forgotten and decided afresh: held again, same id.
    assert_eq!(m.sign(&pay(0, 150), t + 601), Verdict::Pending(id));
    assert_eq!(m.uses(), 1);
}

#[test]
fn approving_what_is_not_pending_or_too_late() {
    let mut m = model(&escalating(600));
    let t = t0() + 10;
    // Never held.
    assert_eq!(m.approve(7, t), Verdict::Denied(vec!["malformed"]));
    assert_eq!(m.approve(0, t), Verdict::Denied(vec!["malformed"]));
    let Verdict::Pending(id) = m.sign(&pay(0, 150), t) else { panic!() };
    // Pending while t < held_at + ttl.
    assert!(m.is_pending(&pay(0, 150), t + 599));
    assert!(!m.is_pending(&pay(0, 150), t + 600));
    assert_eq!(m.approve(id, t + 600), Verdict::Denied(vec!["expired"]));
    // Dropped by that: now it is simply not pending.
    assert_eq!(m.approve(id, t + 601), Verdict::Denied(vec!["malformed"]));
    // Forgotten by asking again after its time: decided afresh (held again, anew).
    let Verdict::Pending(id2) = m.sign(&pay(1, 150), t + 700) else { panic!() };
    assert_eq!(m.sign(&pay(1, 150), t + 1300), Verdict::Pending(id2));
    assert_eq!(m.approve(id2, t + 1301), Verdict::Allowed);
}

#[test]
fn a_failed_approval_keeps_the_request_pending_and_is_not_counted() {
    let mut p = escalating(2 * 86_400);
    p.limits = vec![limit(usdc_asset(), Period::Day, usdc(200))];
    p.trip_wire = Some(TripWire { denials: 1, within: 3600 });
    let mut m = model(&p);
    let t = t0() + 10;
    let Verdict::Pending(id) = m.sign(&pay(0, 150), t) else { panic!() };
    let Verdict::Pending(id2) = m.sign(&pay(1, 150), t + 1) else { panic!() };
    assert_eq!(m.approve(id, t + 2), Verdict::Allowed);
    assert_eq!(m.approve(id2, t + 3), Verdict::Denied(vec!["spend_cap"]));
    assert!(!m.is_suspended());
    assert_eq!(m.remembered_denials(t + 3), 0);
    assert!(m.is_pending(&pay(1, 150), t + 3));
    // The next day the re-check passes.
    assert_eq!(m.approve(id2, t0() + 86_400), Verdict::Allowed);
}

#[test]
fn the_trip_wire_counts_policy_denials_only() {
    let mut p = base();
    p.trip_wire = Some(TripWire { denials: 2, within: 600 });
    let mut m = model(&p);
    let t = t0();
    let bad = tx(0, DEAD, transfer(DEAD, usdc(1)));
    assert_denied(m.sign(&bad, t), "target_not_allowed");
    assert_denied(m.sign(&bad, t + 1), "target_not_allowed");
    assert!(m.is_suspended());
    assert_eq!(m.remembered_denials(t + 1), 2);
    // `suspended` denials are not remembered.
    for i in 0..5 {
        assert_denied(m.sign(&bad, t + 2 + i), "suspended");
    }
    assert_eq!(m.remembered_denials(t + 10), 2);
    // The owner's update lifts the suspension and forgets the remembered denials: one
    // more denial does not suspend again.
    m.update(&p, t + 11).unwrap();
    assert!(!m.is_suspended());
    assert_eq!(m.remembered_denials(t + 11), 0);
    assert_denied(m.sign(&bad, t + 12), "target_not_allowed");
    assert!(!m.is_suspended());
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t + 13), Verdict::Allowed);
    // `revoked` denials are not counted either.
    m.revoke(t + 14);
    for i in 0..5 {
        assert_denied(m.sign(&bad, t + 15 + i), "revoked");
    }
    assert!(!m.is_suspended());
    assert_eq!(m.remembered_denials(t + 20), 1);
}

#[test]
fn an_update_forgets_the_denial_times() {
    let mut p = base();
    p.trip_wire = Some(TripWire { denials: 2, within: 600 });
    let mut m = model(&p);
    let t = t0();
    let bad = tx(0, DEAD, transfer(DEAD, usdc(1)));
    assert_denied(m.sign(&bad, t), "target_not_allowed");
    m.update(&p, t + 1).unwrap();
    assert_eq!(m.remembered_denials(t + 1), 0);
    assert_denied(m.sign(&bad, t + 2), "target_not_allowed");
    assert!(!m.is_suspended());
}

#[test]
fn suspension_drops_pending_requests() {
    let mut p = escalating(3600);
    p.trip_wire = Some(TripWire { denials: 1, within: 600 });
    let mut m = model(&p);
    let t = t0() + 10;
    let Verdict::Pending(id) = m.sign(&pay(0, 150), t) else { panic!() };
    assert_denied(m.sign(&tx(1, DEAD, transfer(DEAD, usdc(1))), t + 1), "target_not_allowed");
    assert!(m.is_suspended());
    assert!(!m.is_pending(&pay(0, 150), t + 2));
    // While suspended the request is decided (and `suspended`); approving it: not pending.
    assert_denied(m.sign(&pay(0, 150), t + 2), "suspended");
    assert_eq!(m.approve(id, t + 3), Verdict::Denied(vec!["malformed", "suspended"]));
    m.update(&p, t + 4).unwrap();
    assert_eq!(m.approve(id, t + 5), Verdict::Denied(vec!["malformed"]));
    // Asked again after the update: decided afresh, held again.
    assert_eq!(m.sign(&pay(0, 150), t + 6), Verdict::Pending(id));
}

#[test]
fn a_revoked_session_refuses_updates_and_keeps_its_time() {
    let mut p = escalating(600);
    p.trip_wire = Some(TripWire { denials: 1, within: 600 });
    let mut m = model(&p);
    let t = t0() + 10;
    let Verdict::Pending(id) = m.sign(&pay(0, 150), t) else { panic!() };
    m.revoke(t + 1);
    assert!(m.update(&base(), t + 10_000).is_err());
    assert_eq!(m.session_time(), t + 1);
    assert!(m.is_revoked());
    // Still within the held request's time: its approval is re-checked, and refused.
    assert_eq!(m.approve(id, t + 2), Verdict::Denied(vec!["revoked"]));
    // Asking again on a revoked session: `revoked`, never a signature.
    assert_denied(m.sign(&pay(0, 150), t + 3), "revoked");
    assert_eq!(m.approve(id, t + 600), Verdict::Denied(vec!["expired", "revoked"]));
    // An unsupported policy is refused the same way on a live session.
    let mut m = model(&base());
    let mut bad = base();
    bad.messages = vec![MessageRule::Exact("gm".into())];
    assert!(m.update(&bad, t + 50).is_err());
    assert_eq!(m.session_time(), t0());
}

#[test]
fn a_request_without_gas_checks_no_gas_rule() {
    let mut p = base();
    p.approvals.spenders = vec![A];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(1000) }];
    p.permits = vec![PermitRule { kind: PermitKind::Eip2612, tokens: Vec::new(), max_deadline: 3600, permit2: None }];
    p.gas.cost_limits = vec![GasCostLimit { period: Period::Day, max: U256::from(100_000_000_000_000u64) }];
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    // The owner lowers the gas cost limit below what was already spent today.
    p.gas.cost_limits[0].max = U256::from(1u64);
    m.update(&p, t + 1).unwrap();
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 2), "gas_cap");
    let permit = Req::Permit { chain_id: CHAIN, token: USDC, spender: A, value: usdc(5), deadline: t + 100 };
    assert_eq!(m.sign(&permit, t + 3), Verdict::Allowed);
}
