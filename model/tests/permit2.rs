//! RULES §5 and §6 examples for Permit2: its `approve` is metered, its messages float, and
//! what it grants stops counting once it ends.

mod util;

use alloy_primitives::{Address, Bytes, U256};
use bridle_common::policy::doc::*;
use bridle_model::abi::{addr_word, encode_call, u160_max};
use bridle_model::{Req, Verdict, PERMIT2, PERMIT_RULE_CODES};
use util::*;

/// Ethereum: its blocks follow the beacon chain's slots, so ends bind (RULES §6).
const MAIN: u64 = 1;

/// USDC at 1 USD, spender A, approvals of at most 5 000 USDC, a ceiling of 1 500 USD,
/// Permit2 messages of the canonical contract within an hour, its `approve` callable.
fn governed() -> Policy {
    let mut p = base();
    p.chains.push(MAIN);
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }];
    p.exposure_ceiling = Some(usd(1500));
    p.approvals.spenders = vec![A];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(5000) }];
    p.permits = vec![PermitRule { kind: PermitKind::Permit2, tokens: Vec::new(), max_deadline: 3600, permit2: None }];
    p.calls.push(calls(Some(PERMIT2), &["approve(address,address,uint160,uint48)"]));
    p
}

fn approve2(token: Address, spender: Address, amount: U256, expiration: u64) -> Bytes {
    encode_call(
        "approve(address,address,uint160,uint48)",
        &[addr_word(token), addr_word(spender), amount, U256::from(expiration)],
    )
    .into()
}

fn single(spender: Address, amount: U256, expiration: u64, sig_deadline: u64) -> Req {
    Req::Permit2 {
        chain_id: MAIN,
        contract: PERMIT2,
        spender,
        details: vec![(USDC, amount, expiration)],
        sig_deadline,
        batch: false,
    }
}

#[test]
fn an_allowance_message_counts_until_its_expiration_and_the_slack() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&single(A, usdc(1000), t + 600, t + 300), t), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 600 + 60), usd(1000));
    // After its expiration plus the 60 s a block's stamp may trail: nothing left.
    assert_eq!(m.exposure_usd(t + 600 + 61), U256::ZERO);
}

#[test]
fn an_expiration_of_zero_lasts_until_the_signature_deadline() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&single(A, usdc(1000), 0, t + 300), t), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 360), usd(1000));
    assert_eq!(m.exposure_usd(t + 361), U256::ZERO);
}

#[test]
fn the_ceiling_counts_live_permit2_allowances_and_forgets_ended_ones() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&single(A, usdc(1000), t + 100, t + 100), t), Verdict::Allowed);
    // A second allowance of another kind (the token's own) would bring 2 000 USD.
    assert_eq!(m.sign(&tx_on(MAIN, 0, USDC, approve(A, usdc(1000))), t + 1), Verdict::Denied(vec!["exposure_ceiling"]));
    // Once the first has ended, it passes.
    assert_eq!(m.sign(&tx_on(MAIN, 0, USDC, approve(A, usdc(1000))), t + 161), Verdict::Allowed);
}

#[test]
fn permit2_approve_is_metered_as_an_approval() {
    let mut m = model(&governed());
    let t = t0();
    // Above the cap, to an unlisted spender, Permit2's unlimited: refused.
    assert_denied(m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, A, usdc(6000), t + 600)), t), "unlimited_approval");
    assert_denied(m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, B, usdc(10), t + 600)), t), "spender_not_allowed");
    assert_denied(m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, A, u160_max(), t + 600)), t), "unlimited_approval");
    // An amount past 160 bits is not canonical.
    assert_denied(
        m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, A, u160_max() + U256::from(1u8), t + 600)), t),
        "argument_rejected",
    );
    // Within the cap: allowed, charged to USDC, counted in the exposure until it ends.
    assert_eq!(m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, A, usdc(700), t + 600)), t), Verdict::Allowed);
    assert_eq!(m.spent_in(bridle_model::Ledger::Token(USDC), bridle_common::period::Period::Session, t), usdc(700));
    assert_eq!(m.exposure_usd(t + 1), usd(700));
    assert_eq!(m.exposure_usd(t + 661), U256::ZERO);
    // Its revocation (an amount of 0) passes whoever the spender is.
    assert_eq!(m.sign(&tx_on(MAIN, 1, PERMIT2, approve2(USDC, B, U256::ZERO, 0)), t + 2), Verdict::Allowed);
}

#[test]
fn permit2_approve_with_expiration_zero_never_ends() {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx_on(MAIN, 0, PERMIT2, approve2(USDC, A, usdc(700), 0)), t), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 90 * 86_400), usd(700));
}

#[test]
fn transfer_authorities_add_up_while_they_live() {
    let mut m = model(&governed());
    let t = t0();
    let transfer = |amount: U256, deadline: u64| Req::Permit2Transfer {
        chain_id: MAIN,
        contract: PERMIT2,
        spender: A,
        permitted: vec![(USDC, amount)],
        deadline,
        batch: false,
    };
    assert_eq!(m.sign(&transfer(usdc(600), t + 100), t), Verdict::Allowed);
    assert_eq!(m.sign(&transfer(usdc(600), t + 1000), t + 1), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 2), usd(1200));
    assert_eq!(m.sign(&transfer(usdc(600), t + 1000), t + 2), Verdict::Denied(vec!["exposure_ceiling"]));
    // The first ended: room again.
    assert_eq!(m.exposure_usd(t + 161), usd(600));
    assert_eq!(m.sign(&transfer(usdc(600), t + 1000), t + 161), Verdict::Allowed);
}

#[test]
fn messages_need_a_rule_for_their_contract_and_the_first_covering_rule_decides() {
    let mut p = governed();
    let t = t0();
    let mut m = model(&p);
    let other = Address::repeat_byte(0x77);
    let mut req = single(A, usdc(10), 0, t + 100);
    if let Req::Permit2 { contract, .. } = &mut req {
        *contract = other;
    }
    let v = m.sign(&req, t);
    let Verdict::Denied(codes) = v else { panic!("{v:?}") };
    assert!(codes.iter().all(|c| PERMIT_RULE_CODES.contains(c)), "{codes:?}");
    // A rule of 60 s first, then one of an hour: the first decides.
    p.permits.insert(0, PermitRule { kind: PermitKind::Permit2, tokens: Vec::new(), max_deadline: 60, permit2: None });
    m.update(&p, t).unwrap();
    assert_denied(m.sign(&single(A, usdc(10), 0, t + 100), t), "argument_rejected");
    assert_denied(m.sign(&single(A, usdc(10), t + 100, t + 50), t), "argument_rejected");
    assert_eq!(m.sign(&single(A, usdc(10), t + 50, t + 50), t), Verdict::Allowed);
}

/// Off the slotted chains no bound on how far a block may trail is known (RULES §6): an
/// allowance message never stops counting at its end there.
#[test]
fn off_the_slotted_chains_an_end_binds_nothing() {
    let mut m = model(&governed());
    let t = t0();
    let on = |chain_id: u64| Req::Permit2 {
        chain_id,
        contract: PERMIT2,
        spender: A,
        details: vec![(USDC, usdc(100), t + 100)],
        sig_deadline: t + 100,
        batch: false,
    };
    assert_eq!(m.sign(&on(CHAIN), t), Verdict::Allowed);
    assert_eq!(m.sign(&on(MAIN), t), Verdict::Allowed);
    assert_eq!(m.exposure_usd(t + 161), usd(100));
    assert_eq!(m.exposure_usd(t + 90 * 86_400), usd(100));
}
