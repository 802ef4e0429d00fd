//! RULES §6 examples: the worst case over every history.

mod util;

use alloy_primitives::U256;
use bridle_common::policy::doc::*;
use bridle_model::{Req, Verdict, MODEL_LIMIT};
use util::*;

/// USDC at 1 USD, spenders A and B, a ceiling of 1000 USD, EIP-2612 permits of USDC.
fn governed() -> Policy {
    let mut p = base();
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }];
    p.exposure_ceiling = Some(usd(1000));
    p.approvals.spenders = vec![A, B];
    p.permits = vec![PermitRule { kind: PermitKind::Eip2612, tokens: Vec::new(), max_deadline: 3600, permit2: None }];
    p
}

#[test]
fn a_revocation_sharing_its_nonce_with_an_approval_counts_for_nothing() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t + 1), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 1), usd(1000));
    assert_eq!(m.sign(&tx(1, USDC, approve(B, usdc(1000))), t + 2), Verdict::Denied(vec!["exposure_ceiling"]));
}

#[test]
fn a_revocation_at_its_own_nonce_counts() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, approve(A, U256::ZERO)), t + 1), Verdict::Allowed);
    // Without a request, nonce 1 may never be mined: A still counts.
    assert_eq!(m.exposure_usd(t + 1), usd(1000));
    assert_eq!(m.sign(&tx(2, USDC, approve(B, usdc(1000))), t + 2), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 2), usd(2000));
}

#[test]
fn lowering_an_approval_always_passes() {
    let mut p = governed();
    p.exposure_ceiling = Some(usd(500));
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(400))), t), Verdict::Allowed);
    assert_denied(m.sign(&tx(1, USDC, approve(B, usdc(400))), t + 1), "exposure_ceiling");
    p.exposure_ceiling = Some(usd(100));
    m.update(&p, t + 2).unwrap();
    // Over the new ceiling already, but these do not raise exposure.
    assert_eq!(m.sign(&tx(1, USDC, approve(A, usdc(50))), t + 3), Verdict::Allowed);
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(5))), t + 4), Verdict::Allowed);
}

fn permit(value: U256, deadline: u64) -> Req {
    Req::Permit { chain_id: CHAIN, token: USDC, spender: A, value, deadline }
}

#[test]
fn a_revocation_signed_before_the_permit_deadline_does_not_count() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&permit(usdc(1000), t + 200), t + 100), Verdict::Allowed);
    // Signed before the deadline: the permit may still be used after it.
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t + 150), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, approve(B, usdc(1000))), t + 300), Verdict::Denied(vec!["exposure_ceiling"]));
}

#[test]
fn a_revocation_signed_after_the_permit_deadline_counts() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&permit(usdc(1000), t + 200), t + 100), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t + 250), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, approve(B, usdc(1000))), t + 300), Verdict::Allowed);
}

#[test]
fn permit_checks() {
    let mut m = model(&governed());
    let t = t0();
    assert_denied(m.sign(&permit(U256::MAX, t + 10), t), "unlimited_approval");
    let far = m.sign(&permit(usdc(1), t + 3601), t);
    assert!(matches!(&far, Verdict::Denied(c) if c.contains(&"typed_data_not_allowed")), "{far:?}");
    let stranger = Req::Permit { chain_id: CHAIN, token: USDC, spender: DEAD, value: usdc(1), deadline: t + 10 };
    assert_denied(m.sign(&stranger, t), "spender_not_allowed");
    let zero = Req::Permit { chain_id: CHAIN, token: USDC, spender: DEAD, value: U256::ZERO, deadline: t + 10 };
    assert_eq!(m.sign(&zero, t), Verdict::Allowed);
    // Two live permits to A: the worst case is the larger one, not the sum.
    assert_eq!(m.sign(&permit(usdc(600), t + 100), t + 1), Verdict::Allowed);
    assert_eq!(m.sign(&permit(usdc(900), t + 100), t + 2), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 2), usd(900));
}

#[test]
fn increase_allowance_base_after_a_reused_nonce() {
    let mut p = base();
    p.approvals.spenders = vec![A];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(150) }];
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(100))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t + 1), Verdict::Allowed);
    // Nonce 0 may be the approval of 100: 100 + 100 > 150.
    assert_eq!(m.sign(&tx(1, USDC, increase(A, usdc(100))), t + 2), Verdict::Denied(vec!["unlimited_approval"]));

    let mut m = model(&p);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(100))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, approve(A, U256::ZERO)), t + 1), Verdict::Allowed);
    assert_eq!(m.sign(&tx(2, USDC, increase(A, usdc(100))), t + 2), Verdict::Allowed);
    assert_eq!(m.sign(&tx(3, USDC, increase(A, usdc(51))), t + 3), Verdict::Denied(vec!["unlimited_approval"]));
    assert_denied(m.sign(&tx(3, USDC, approve(A, usdc(151))), t + 4), "unlimited_approval");
}

#[test]
fn approvals_need_a_listed_spender_and_a_listed_token() {
    let mut p = governed();
    p.calls.push(calls(Some(DAI), &["approve(address,uint256)"]));
    let mut m = model(&p);
    let t = t0();
    assert_denied(m.sign(&tx(0, USDC, approve(DEAD, usdc(1))), t), "spender_not_allowed");
    assert_denied(m.sign(&tx(0, USDC, approve(A, U256::MAX)), t), "unlimited_approval");
    assert_denied(m.sign(&tx(0, DAI, approve(A, usdc(1))), t), "unlimited_approval");
    assert_eq!(m.sign(&tx(0, DAI, approve(DEAD, U256::ZERO)), t), Verdict::Allowed);
}

#[test]
fn user_operation_approvals_sit_in_their_own_lane() {
    let mut p = governed();
    p.user_operations.entry_points = vec![EP];
    let mut m = model(&p);
    let t = t0();
    // Approve then revoke in one batch: nothing stays outstanding, whatever the amount.
    assert_denied(m.sign(&userop(0, vec![(USDC, U256::ZERO, approve(A, usdc(5000)))]), t), "exposure_ceiling");
    let batch = vec![(USDC, U256::ZERO, approve(A, usdc(5000))), (USDC, U256::ZERO, approve(A, U256::ZERO))];
    assert_eq!(m.sign(&userop(0, batch), t), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t), U256::ZERO);
    // In a smart-account lane nothing is forced: a later revocation never counts for a
    // request at another position.
    assert_eq!(m.sign(&userop(1, vec![(USDC, U256::ZERO, approve(A, usdc(700)))]), t + 1), Verdict::Allowed);
    assert_eq!(m.sign(&userop(2, vec![(USDC, U256::ZERO, approve(A, U256::ZERO))]), t + 2), Verdict::Allowed);
    assert_denied(m.sign(&userop(3, vec![(USDC, U256::ZERO, approve(B, usdc(700)))]), t + 3), "exposure_ceiling");
    // The own lane is separate: holder = the session.
    assert_eq!(m.sign(&tx(0, USDC, approve(B, usdc(300))), t + 4), Verdict::Allowed);
}

#[test]
fn an_unpriced_key_cannot_be_raised_under_a_ceiling() {
    let mut p = governed();
    p.prices.clear();
    let mut m = model(&p);
    assert_denied(m.sign(&tx(0, USDC, approve(A, usdc(1))), t0()), "exposure_ceiling");
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t0()), Verdict::Allowed);
}

#[test]
fn nonce_gaps_that_matter_are_a_model_limit() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t), Verdict::Allowed);
    // Nonce 2 sits above an unsigned nonce 1: whether it can ever be mined is the reading
    // RULES.md leaves open; here it decides the ceiling.
    assert_eq!(m.sign(&tx(2, USDC, approve(B, usdc(1000))), t), Verdict::Denied(vec![MODEL_LIMIT]));
    assert!(!m.has_nonce_gaps());
    // A request without allowance writes never needs the registry.
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert!(m.has_nonce_gaps());
}
