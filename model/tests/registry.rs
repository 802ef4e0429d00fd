//! RULES §6 examples: the worst case over every history.

mod util;

use alloy_primitives::U256;
use bridle_common::policy::doc::*;
use bridle_model::{Req, Verdict};
use util::*;

/// USDC at 1 USD, spenders A and B, approvals of at most 1 000 000 USDC, a ceiling of
/// 1000 USD, EIP-2612 permits of USDC.
fn governed() -> Policy {
    let mut p = base();
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }];
    p.exposure_ceiling = Some(usd(1000));
    p.approvals.spenders = vec![A, B];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(1_000_000) }];
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
fn what_adds_no_state_passes_a_ceiling_exceeded() {
    let mut p = governed();
    p.exposure_ceiling = Some(usd(500));
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(400))), t), Verdict::Allowed);
    assert_denied(m.sign(&tx(1, USDC, approve(B, usdc(400))), t + 1), "exposure_ceiling");
    p.exposure_ceiling = Some(usd(100));
    m.update(&p, t + 2).unwrap();
    // Over the new ceiling already (RULES §6): a lower approval in the first one's place and a
    // transaction that writes nothing add no state and pass; a lower approval at a fresh
    // nonce adds one (mined after nonce 0 or not, A may be 400 or 50) and is checked
    // against the figure with it, 400 > 100: refused (revoke first).
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(50))), t + 3), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(5))), t + 4), Verdict::Allowed);
    assert_denied(m.sign(&tx(2, USDC, approve(A, usdc(50))), t + 5), "exposure_ceiling");
    assert_eq!(m.sign(&tx(2, USDC, approve(A, U256::ZERO)), t + 6), Verdict::Allowed);
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
    // On Ethereum (stamped by beacon-chain slots), only.
    let mut p = governed();
    p.chains.push(1);
    let mut m = model(&p);
    let t = t0();
    let on_main = Req::Permit { chain_id: 1, token: USDC, spender: A, value: usdc(1000), deadline: t + 200 };
    assert_eq!(m.sign(&on_main, t + 100), Verdict::Allowed);
    // Signed more than 60 s after the deadline (RULES §6: a block's stamp may trail it).
    assert_eq!(m.sign(&tx_on(1, 0, USDC, approve(A, U256::ZERO)), t + 261), Verdict::Allowed);
    assert_eq!(m.sign(&tx_on(1, 1, USDC, approve(B, usdc(1000))), t + 300), Verdict::Allowed);
    // On a chain whose blocks may trail further (no bound known), the permit may still
    // follow the revocation.
    let mut m = model(&p);
    assert_eq!(m.sign(&permit(usdc(1000), t + 200), t + 100), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t + 261), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, approve(B, usdc(1000))), t + 300), Verdict::Denied(vec!["exposure_ceiling"]));
}

#[test]
fn permit_checks() {
    let mut m = model(&governed());
    let t = t0();
    assert_denied(m.sign(&permit(U256::MAX, t + 10), t), "unlimited_approval");
    // A deadline beyond `max_deadline`, or already past: `argument_rejected` (RULES §5).
    assert_eq!(m.sign(&permit(usdc(1), t + 3601), t), Verdict::Denied(vec!["argument_rejected"]));
    assert_eq!(m.sign(&permit(usdc(1), t + 3600), t), Verdict::Allowed);
    let stranger = Req::Permit { chain_id: CHAIN, token: USDC, spender: DEAD, value: usdc(1), deadline: t + 10 };
    assert_denied(m.sign(&stranger, t), "spender_not_allowed");
    // Only `approve(spender, 0)` passes unconditionally: a permit of 0 still needs a listed
    // spender.
    let zero = Req::Permit { chain_id: CHAIN, token: USDC, spender: DEAD, value: U256::ZERO, deadline: t + 10 };
    assert_eq!(m.sign(&zero, t), Verdict::Denied(vec!["spender_not_allowed"]));
    assert_eq!(m.sign(&permit(U256::ZERO, t + 10), t), Verdict::Allowed);
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
fn a_gap_below_a_request_is_filled_by_a_transaction_that_writes_nothing() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::ZERO)), t), Verdict::Allowed);
    // Nonce 2 sits above an unsigned nonce 1: it is in the histories where nonce 1 holds a
    // transaction that writes nothing, and nonce 0 may be the approval of 1000 to A.
    assert_eq!(m.sign(&tx(2, USDC, approve(B, usdc(1000))), t), Verdict::Denied(vec!["exposure_ceiling"]));
    assert_eq!(m.sign(&tx(2, USDC, approve(B, usdc(1))), t), Verdict::Denied(vec!["exposure_ceiling"]));
    // A request without allowance writes never needs the registry.
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert!(m.has_nonce_gaps());
    assert_eq!(m.exposure_usd(t), usd(1000));
}

#[test]
fn a_revocation_above_a_gap_still_counts_for_a_request_above_it() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    // The revocation at nonce 2 sits above a gap at nonce 1.
    assert_eq!(m.sign(&tx(2, USDC, approve(A, U256::ZERO)), t + 1), Verdict::Allowed);
    // Without a request, nonce 2 may never be mined: A still counts.
    assert_eq!(m.exposure_usd(t + 1), usd(1000));
    // A request at the gap itself (nonce 1) is below the revocation: A may be live.
    assert_eq!(m.sign(&tx(1, USDC, approve(B, usdc(500))), t + 2), Verdict::Denied(vec!["exposure_ceiling"]));
    // A request at nonce 3: every history that includes it fills 0..2 (nonce 1 with a
    // transaction that writes nothing), so the revocation of A has happened.
    assert_eq!(m.sign(&tx(3, USDC, approve(B, usdc(1000))), t + 3), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 3), usd(2000));
}

#[test]
fn a_revoking_permit_does_not_cover_an_earlier_permit() {
    let mut m = model(&governed());
    let t = t0();
    // Permit of 800 to A (deadline t + 100), then a revoking permit of 0 to A signed at
    // t + 200: the first can never come after the second (its deadline is earlier than
    // the second's signing), so once both are used A ends at 0 — but permits are never
    // forced: the first alone is a history too, and A's worst case stays 800.
    assert_eq!(m.sign(&permit(usdc(800), t + 100), t), Verdict::Allowed);
    assert_eq!(m.sign(&permit(U256::ZERO, t + 1000), t + 200), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 200), usd(800));
    // A new permit to B raises B: 800 + 300 > 1000 with A at its worst.
    let to_b = Req::Permit { chain_id: CHAIN, token: USDC, spender: B, value: usdc(300), deadline: t + 1200 };
    assert_eq!(m.sign(&to_b, t + 300), Verdict::Denied(vec!["exposure_ceiling"]));
}

#[test]
fn a_past_deadline_permit_is_refused() {
    let mut m = model(&governed());
    let t = t0() + 500;
    assert_eq!(m.sign(&permit(usdc(1), t - 1), t), Verdict::Denied(vec!["argument_rejected"]));
    // A deadline equal to now is not past.
    assert_eq!(m.sign(&permit(usdc(1), t), t), Verdict::Allowed);
    // The session time, not the clock: a clock going back does not revive a past deadline.
    assert_eq!(m.sign(&permit(usdc(2), t + 5), t + 10), Verdict::Denied(vec!["argument_rejected"]));
    assert_eq!(m.sign(&permit(usdc(2), t + 5), t), Verdict::Denied(vec!["argument_rejected"]));
}

#[test]
fn a_listed_token_without_a_cap_refuses_every_approval_but_approve_zero() {
    let mut p = governed();
    p.approvals.caps.clear();
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, U256::from(1))), t), Verdict::Denied(vec!["unlimited_approval"]));
    assert_eq!(m.sign(&tx(0, USDC, increase(A, U256::from(1))), t), Verdict::Denied(vec!["unlimited_approval"]));
    assert_eq!(m.sign(&permit(U256::from(1), t + 10), t), Verdict::Denied(vec!["unlimited_approval"]));
    // `increaseAllowance(spender, 0)` and a permit of 0 are not `approve(spender, 0)`.
    assert_eq!(m.sign(&tx(0, USDC, increase(A, U256::ZERO)), t), Verdict::Denied(vec!["unlimited_approval"]));
    assert_eq!(m.sign(&permit(U256::ZERO, t + 10), t), Verdict::Denied(vec!["unlimited_approval"]));
    assert_eq!(m.sign(&tx(0, USDC, approve(DEAD, U256::ZERO)), t), Verdict::Allowed);
}

/// RULES §6: on a chain that takes L1 data gas from the gas limit (Arbitrum One), or one
/// not known to spend its gas limit on execution alone (777, unless the policy lists it in
/// `approvals.execution_gas_chains`), no gas limit makes a revocation certain; on Ethereum
/// 200 000 gas does. A policy update that stops listing a chain reaches what was signed.
#[test]
fn on_a_chain_taking_l1_gas_from_the_limit_a_revocation_forces_nothing() {
    let with_gas = |mut r: Req| {
        if let Req::Tx { gas_limit, .. } = &mut r {
            *gas_limit = 200_000;
        }
        r
    };
    let signed = |p: &Policy, chain: u64| {
        let mut m = model(p);
        let t = t0();
        assert_eq!(m.sign(&with_gas(tx_on(chain, 0, USDC, approve(A, usdc(1000)))), t), Verdict::Allowed);
        assert_eq!(m.sign(&with_gas(tx_on(chain, 1, USDC, approve(A, U256::ZERO))), t + 1), Verdict::Allowed);
        m
    };
    let next = |m: &mut bridle_model::Model, chain: u64| {
        m.sign(&with_gas(tx_on(chain, 2, USDC, approve(B, usdc(1000)))), t0() + 2)
    };
    let mut p = governed();
    p.chains.extend([42_161, 777]);
    assert_eq!(next(&mut signed(&p, CHAIN), CHAIN), Verdict::Allowed, "control: nonce 1 resets A's allowance");
    assert_eq!(next(&mut signed(&p, 42_161), 42_161), Verdict::Denied(vec!["exposure_ceiling"]), "Arbitrum");
    assert_eq!(next(&mut signed(&p, 777), 777), Verdict::Denied(vec!["exposure_ceiling"]), "not known");
    p.approvals.execution_gas_chains = vec![777];
    let mut m = signed(&p, 777);
    assert_eq!(next(&mut m.clone(), 777), Verdict::Allowed, "listed by the policy");
    p.approvals.execution_gas_chains.clear();
    m.update(&p, t0() + 2).unwrap();
    assert_eq!(next(&mut m, 777), Verdict::Denied(vec!["exposure_ceiling"]), "no longer listed");
}
