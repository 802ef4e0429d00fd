//! Transactions of other shapes than a plain EIP-1559 one: legacy (RULES §4: the gas price
//! is both fees), access lists (RULES §6: what they cost up front is not left for a
//! revocation) and EIP-7702 (README: always `authorization_denied`).

mod util;

use alloy_primitives::{Address, Bytes, B256, U256};
use bridle_common::period::Period;
use bridle_common::policy::doc::*;
use bridle_model::{access_list_cost, Req, Verdict};
use util::*;

fn governed() -> Policy {
    let mut p = base();
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }];
    p.exposure_ceiling = Some(usd(1000));
    p.approvals.spenders = vec![A, B];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(1_000_000) }];
    p
}

fn legacy(nonce: u64, to: Address, data: Bytes, gas_limit: u64, gas_price: u128) -> Req {
    Req::Legacy { chain_id: CHAIN, nonce, to: Some(to), value: U256::ZERO, data, gas_limit, gas_price }
}

fn with_list(nonce: u64, to: Address, data: Bytes, gas_limit: u64, list: Vec<(Address, Vec<B256>)>) -> Req {
    match tx(nonce, to, data) {
        Req::Tx { chain_id, nonce, to, value, data, max_fee_per_gas, max_priority_fee_per_gas, .. } => Req::Tx {
            chain_id,
            nonce,
            to,
            value,
            data,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            access_list: list,
        },
        _ => unreachable!(),
    }
}

fn keys(n: u8) -> Vec<B256> {
    (0..n).map(B256::with_last_byte).collect()
}

#[test]
fn a_legacy_gas_price_is_both_fees_and_prices_the_gas() {
    let mut p = base();
    p.gas.max_fee_per_gas = Some(10);
    p.gas.max_priority_fee_per_gas = Some(3);
    p.gas.cost_limits = vec![GasCostLimit { period: Period::Day, max: U256::from(21_000u64 * 5) }];
    let mut m = model(&p);
    let t = t0();
    let pay = |nonce, price| legacy(nonce, USDC, transfer(A, U256::from(1)), 21_000, price);
    assert_eq!(m.sign(&pay(0, 4), t), Verdict::Denied(vec!["gas_cap"]), "above the priority fee cap");
    assert_eq!(m.sign(&pay(0, 3), t), Verdict::Allowed);
    assert_eq!(m.spent_in(bridle_model::Ledger::Gas, Period::Day, t), U256::from(21_000u64 * 3));
    assert_eq!(m.sign(&pay(1, 3), t), Verdict::Denied(vec!["gas_cap"]), "5 of the day's price left, not 6");
    assert_eq!(m.sign(&pay(1, 2), t), Verdict::Allowed);
}

/// Whether a revocation of A at nonce 1 (after A's 1 000 USDC at nonce 0) counts for a
/// request at nonce 2 (B's 1 000 USDC, at a ceiling of 1 000 USD): RULES §6, a transaction
/// whose gas limit, less what its access list costs, is below `revoke_gas` may write nothing.
fn counts(revocation: Req) -> bool {
    let mut m = model(&governed());
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, approve(A, usdc(1000))), t), Verdict::Allowed);
    assert_eq!(m.sign(&revocation, t + 1), Verdict::Allowed);
    match m.sign(&tx(2, USDC, approve(B, usdc(1000))), t + 2) {
        Verdict::Allowed => true,
        Verdict::Denied(c) if c == vec!["exposure_ceiling"] => false,
        v => panic!("{v:?}"),
    }
}

#[test]
fn a_legacy_revocation_counts_from_revoke_gas_on() {
    assert!(!counts(legacy(1, USDC, approve(A, U256::ZERO), 99_999, 1)));
    assert!(counts(legacy(1, USDC, approve(A, U256::ZERO), 100_000, 1)));
}

#[test]
fn what_an_access_list_costs_up_front_is_not_left_for_the_revocation() {
    assert_eq!(access_list_cost(&[(A, keys(40))]), 78_400);
    // Repeats count again (AMBIGUITIES 28).
    assert_eq!(access_list_cost(&[(A, vec![B256::ZERO, B256::ZERO]), (A, vec![])]), 2 * 2_400 + 2 * 1_900);
    let revoke = |gas: u64, list: Vec<(Address, Vec<B256>)>| with_list(1, USDC, approve(A, U256::ZERO), gas, list);
    assert!(counts(revoke(100_000, vec![])));
    assert!(!counts(revoke(100_000, vec![(A, keys(40))])), "the review's shape: 21 600 left");
    assert!(counts(revoke(178_400, vec![(A, keys(40))])));
    assert!(!counts(revoke(178_399, vec![(A, keys(40))])));
    assert!(!counts(revoke(50_000, vec![(A, keys(40))])), "the list costs more than the whole gas limit");
    assert!(counts(revoke(104_800, vec![(A, vec![]), (A, vec![])])));
    assert!(!counts(revoke(104_799, vec![(A, vec![]), (A, vec![])])), "an address listed twice costs twice");
    assert!(counts(revoke(106_200, vec![(B, vec![B256::ZERO, B256::ZERO])])));
    assert!(!counts(revoke(106_199, vec![(B, vec![B256::ZERO, B256::ZERO])])), "a key listed twice costs twice");
}

#[test]
fn an_eip7702_transaction_is_refused_and_changes_nothing() {
    let mut m = model(&governed());
    let t = t0();
    let req = Req::Eip7702 { chain_id: CHAIN, authorizations: vec![(U256::from(CHAIN), DEAD, 0)] };
    assert_eq!(m.sign(&req, t + 100), Verdict::Denied(vec!["authorization_denied"]));
    assert_eq!(m.session_time(), t, "session time does not move");
    m.revoke(t + 1);
    assert_eq!(m.sign(&req, t + 2), Verdict::Denied(vec!["authorization_denied"]));
}
