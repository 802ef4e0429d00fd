//! What makes a transaction's revocation uncertain besides too little gas (adversarial
//! review of the `approvals.revoke_gas` change, RULES.md §6): an access list that eats the
//! gas up front, value on a non-payable `approve`, and a non-zero `approve` over a non-zero
//! allowance (USDT refuses it). Each attack signed beyond the cap before the fix.
use super::*;
use crate::payload::prepare;
use crate::period::parse_time;
use crate::protocol::SignPayload;
use crate::tx::{AccessEntry, Eip1559Request, LegacyRequest, TxRequest};
use alloy_primitives::{address, Address, B256, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function transfer(address to, uint256 amount) returns (bool);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}
fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn policy() -> CompiledPolicy {
    policy_on("[1]", "")
}

/// The test policy on `chains`, with `approvals` lines added.
fn policy_on(chains: &str, approvals: &str) -> CompiledPolicy {
    CompiledPolicy::compile(file::resolve_text(&policy_text(chains, approvals), t0()).unwrap_or_else(|d| panic!("{d}")))
        .unwrap()
}

fn policy_text(chains: &str, approvals: &str) -> String {
    format!(
        r#"
name = "review"
chains = {chains}
valid_for = "24h"
recipients = ["{ALICE}", "$account"]
prices = {{ USDC = "1" }}
exposure_ceiling = "60 USD"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)", "increaseAllowance(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["50 USDC"]
{approvals}
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 1000000
"#
    )
}

fn ctx() -> Context {
    Context { now: t0() + 10, anchor: t0(), owner: OWNER, account: SESSION }
}

fn tx_at(nonce: u64, data: Vec<u8>, gas_limit: u64, access_list: Vec<AccessEntry>) -> SignPayload {
    tx_on(1, nonce, data, gas_limit, access_list)
}

fn tx_on(chain_id: u64, nonce: u64, data: Vec<u8>, gas_limit: u64, access_list: Vec<AccessEntry>) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id,
        nonce,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit,
        to: Some(USDC),
        value: U256::ZERO,
        data: data.into(),
        access_list,
    }))
}

/// A session machine and stamped asks (a fresh stamp nonce each), signing with a key whose
/// signature is never checked here.
struct Session {
    m: crate::machine::Machine,
    stamps: u32,
}

struct Key;

impl crate::machine::Signer for Key {
    fn sign(&self, _: &B256) -> Result<alloy_primitives::Signature, String> {
        Ok(alloy_primitives::Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

#[path = "permit2_cancel_tests.rs"]
mod permit2_cancel;

#[path = "sweep_displaced_tests.rs"]
mod sweep_displaced;

impl Session {
    fn new() -> Session {
        Session::with(policy())
    }

    fn with(p: CompiledPolicy) -> Session {
        let m = crate::machine::Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), p, t0(), 60, 1024);
        Session { m, stamps: 0 }
    }

    /// The agent signs `approve(POOL, 0)` on `chain` at `clock`, from `nonce` on, until the
    /// registry is full beside its credit; returns the next nonce.
    fn fill_beside_credit(&mut self, chain: u64, mut nonce: u64, clock: u64) -> u64 {
        let zero = || approveCall { spender: POOL, amount: U256::ZERO }.abi_encode();
        while self.ask(clock, tx_on(chain, nonce, zero(), 200_000, vec![])).is_ok() {
            nonce += 1;
        }
        nonce
    }

    fn ask(&mut self, clock: u64, p: SignPayload) -> Result<crate::protocol::Signed, crate::Denial> {
        self.stamps += 1;
        let mut nonce = [1u8; 16];
        nonce[..4].copy_from_slice(&self.stamps.to_be_bytes());
        let stamp = crate::stamp::Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
        self.m.sign(clock, &p, prepare(&p).unwrap(), &stamp, Some(&Key)).result
    }
}

fn refused(r: Result<Charges, crate::Denial>, why: &str) {
    let d = r.err().unwrap_or_else(|| panic!("signed: {why}"));
    assert!(
        matches!(d.code, crate::error::ErrorCode::UnlimitedApproval | crate::error::ErrorCode::ExposureCeiling),
        "{d:?}"
    );
}

fn step(p: &CompiledPolicy, c: &mut Counters, payload: SignPayload) -> Result<Charges, crate::Denial> {
    let ch = prepare(&payload)?.evaluate(p, c, &ctx())?;
    c.charge(p, &ch, t0(), t0() + 10);
    Ok(ch)
}

/// EIP-2930 access-list cost is intrinsic gas: 2 400 per address + 1 900 per storage key,
/// charged before execution. A gas limit of 100 000 (= the default revoke_gas) with an
/// access list of one address and 40 (duplicate, irrelevant) keys leaves about 40 gas for
/// the call: `approve(router, 0)` is mined, runs out of gas, uses nonce 1 and writes
/// nothing. It counted as a forced reset.
#[test]
fn an_access_list_that_eats_the_revoke_gas_makes_the_revocation_uncertain() {
    let p = policy();
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .unwrap();
    let al = vec![AccessEntry { address: ALICE, storage_keys: vec![B256::repeat_byte(1); 40] }];
    // intrinsic: 21 000 + calldata (~560) + 2 400 + 40 × 1 900 = 99 960 ≤ 100 000
    let ch = step(&p, &mut c, tx_at(1, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 100_000, al))
        .unwrap();
    assert!(ch.may_revert, "100 000 gas less 78 400 for the access list is below revoke_gas");
    let r = step(
        &p,
        &mut c,
        tx_at(2, increaseAllowanceCall { spender: ROUTER, added: usdc(50) }.abi_encode(), 100_000, vec![]),
    );
    refused(r, "on chain 100 USDC (nonce 1 ran out of gas: the access list ate the gas), cap 50");
    // Control: with room left after its access list, the revocation counts.
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .unwrap();
    let al = vec![AccessEntry { address: ALICE, storage_keys: vec![B256::repeat_byte(1); 40] }];
    let ch = step(&p, &mut c, tx_at(1, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 180_000, al))
        .unwrap();
    assert!(!ch.may_revert);
    step(
        &p,
        &mut c,
        tx_at(2, increaseAllowanceCall { spender: ROUTER, added: usdc(50) }.abi_encode(), 100_000, vec![]),
    )
    .expect("nonce 1 reset it");
}

/// Legacy carries gas too (control).
#[test]
fn a_legacy_transaction_below_revoke_gas_is_uncertain() {
    let p = policy();
    let c = Counters::default();
    let tx = SignPayload::Transaction(TxRequest::Legacy(LegacyRequest {
        chain_id: 1,
        nonce: 1,
        gas_price: 10_000_000_000,
        gas_limit: 30_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode().into(),
    }));
    let ch = prepare(&tx).unwrap().evaluate(&p, &c, &ctx()).unwrap();
    assert!(ch.may_revert);
}

/// ERC-20 `approve` is non-payable: a call that carries 1 wei reverts (whatever the gas),
/// is mined, uses its nonce and writes nothing. It counted as a forced reset.
#[test]
fn value_on_a_revocation_makes_it_uncertain() {
    let p = policy();
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .unwrap();
    let mut revoke = tx_at(1, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 100_000, vec![]);
    if let SignPayload::Transaction(TxRequest::Eip1559(t)) = &mut revoke {
        t.value = U256::from(1u8);
    }
    let ch = step(&p, &mut c, revoke).expect("signed with 1 wei");
    assert!(ch.may_revert);
    let r = step(
        &p,
        &mut c,
        tx_at(2, increaseAllowanceCall { spender: ROUTER, added: usdc(50) }.abi_encode(), 100_000, vec![]),
    );
    refused(r, "on chain 100 USDC (nonce 1 reverted: approve is non-payable), cap 50");
}

/// Consequence for R-APP-6: the owner revokes the session; the access-list revocation was
/// taken as settling the approval, so the key was destroyed at once — the approval live on
/// chain and nobody able to sweep it with the session key any more.
#[test]
fn an_uncertain_revocation_never_destroys_the_key() {
    let mut s = Session::new();
    s.ask(t0() + 10, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .expect("approve");
    let al = vec![AccessEntry { address: ALICE, storage_keys: vec![B256::repeat_byte(1); 40] }];
    s.ask(t0() + 11, tx_at(1, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 100_000, al))
        .expect("revocation");
    s.m.revoke(t0() + 20, false);
    assert!(!s.m.key_destroyed(), "the approval may be live (nonce 1 may have run out of gas): the key must stay");
}

/// USDT's `approve` reverts from one non-zero amount to another: `approve(router, 1)` over
/// 50 is mined and reverted, the allowance stays 50. It counted as lowering it to 1, and
/// 50 more to the pool fitted the 60 USD ceiling (100 on chain).
#[test]
fn a_non_zero_approve_over_an_allowance_is_uncertain() {
    let p = policy();
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .unwrap();
    let ch = step(&p, &mut c, tx_at(1, approveCall { spender: ROUTER, amount: usdc(1) }.abi_encode(), 100_000, vec![]))
        .expect("lowering is allowed");
    assert!(ch.may_revert);
    let d = step(&p, &mut c, tx_at(2, approveCall { spender: POOL, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .expect_err("50 (router, nonce 1 may have reverted) + 50 (pool) is above the 60 USD ceiling");
    assert_eq!(d.code, crate::error::ErrorCode::ExposureCeiling, "{d:?}");
    // Resetting to 0 first (certain), then approving: fits.
    step(&p, &mut c, tx_at(2, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 100_000, vec![]))
        .unwrap();
    step(&p, &mut c, tx_at(3, approveCall { spender: POOL, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .expect("the router's allowance is reset at nonce 2");
}

/// Review of 2026-12-01: a revocation that shares its nonce with the approval settles
/// nothing — the host can mine the approval there instead — so revoking the session keeps
/// the key for the owner's sweep, and the owner's view shows the approval outstanding.
#[test]
fn a_revocation_sharing_its_nonce_with_the_approval_never_destroys_the_key() {
    let mut s = Session::new();
    s.ask(t0() + 10, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .expect("approve");
    s.ask(t0() + 11, tx_at(0, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 100_000, vec![]))
        .expect("a revocation at the same nonce");
    let view = crate::allowance::view::view(&s.m.counters().allowances, t0() + 12);
    assert_eq!(view[0].state, crate::allowance::AllowanceState::Active, "{view:?}");
    s.m.revoke(t0() + 20, false);
    assert!(!s.m.key_destroyed(), "the approval may be mined at nonce 0 instead: the key must stay");
    // The owner's sweep at a fresh nonce settles it once mined, which the enclave cannot
    // see: the key stays, able to sign nothing but revocations (reviews of 2026-12-05).
    let terms = [crate::protocol::SweepTerms {
        chain_id: 1,
        nonce: 1,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
    }];
    let r = s.m.sweep(t0() + 30, &terms, true, Some(&Key)).result.expect("swept");
    assert!(!r.key_destroyed);
}

/// The owner's sweep at a nonce the agent already used for a transaction writing nothing
/// (a pending nonce read from a node the host controls) settles nothing either.
#[test]
fn an_owner_sweep_at_a_used_nonce_never_destroys_the_key() {
    let mut s = Session::new();
    s.ask(t0() + 10, tx_at(0, approveCall { spender: ROUTER, amount: usdc(50) }.abi_encode(), 100_000, vec![]))
        .expect("approve");
    s.ask(t0() + 11, tx_at(1, transferCall { to: ALICE, amount: usdc(1) }.abi_encode(), 100_000, vec![]))
        .expect("a transfer at nonce 1, withheld by the host");
    s.m.revoke(t0() + 20, false);
    let terms = |nonce| {
        [crate::protocol::SweepTerms {
            chain_id: 1,
            nonce,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1,
            gas_limit: 100_000,
        }]
    };
    let r = s.m.sweep(t0() + 30, &terms(1), true, Some(&Key)).result.expect("the owner may sweep at any nonce");
    assert!(!r.key_destroyed, "the withheld transfer can take nonce 1: the approval may stay live");
    // At a fresh nonce it is mined only once the withheld transfer at 1 is: the key stays
    // (it went here before a review of 2026-12-05).
    let r = s.m.sweep(t0() + 31, &terms(2), true, Some(&Key)).result.expect("swept at a fresh nonce");
    assert!(!r.key_destroyed);
}

/// Arbitrum and zkSync Era charge L1 data as gas taken from the gas limit: how much is left
/// for `approve(router, 0)` depends on the L1 fee at inclusion, so even 200 000 gas proves
/// nothing (second review of 2026-12-01). The revocation forces no reset there, the next
/// approval is decided as if the first were still live, and neither the agent's revocation
/// nor the owner's sweep lets a revoked session's key be destroyed.
#[test]
fn on_a_chain_taking_l1_gas_from_the_limit_no_revocation_settles() {
    const ARBITRUM: u64 = 42_161;
    let mut s = Session::with(policy_on("[42161]", ""));
    let approve =
        |nonce, amount| tx_on(ARBITRUM, nonce, approveCall { spender: ROUTER, amount }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, approve(0, usdc(50))).expect("approve");
    s.ask(t0() + 11, approve(1, U256::ZERO)).expect("revocation with 200 000 gas");
    let add =
        tx_on(ARBITRUM, 2, increaseAllowanceCall { spender: ROUTER, added: usdc(50) }.abi_encode(), 200_000, vec![]);
    let d = s.ask(t0() + 12, add).expect_err("nonce 1 may run out of gas on Arbitrum: 100 on chain, cap 50");
    assert!(
        matches!(d.code, crate::error::ErrorCode::UnlimitedApproval | crate::error::ErrorCode::ExposureCeiling),
        "{d:?}"
    );
    let view = crate::allowance::view::view(&s.m.counters().allowances, t0() + 12);
    assert_eq!(view[0].state, crate::allowance::AllowanceState::Active, "{view:?}");
    s.m.revoke(t0() + 20, false);
    assert!(!s.m.key_destroyed());
    let terms = [crate::protocol::SweepTerms {
        chain_id: ARBITRUM,
        nonce: 2,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 200_000,
    }];
    let r = s.m.sweep(t0() + 30, &terms, true, Some(&Key)).result.expect("the owner's sweep is still signed");
    assert_eq!(r.transactions.len(), 1);
    assert!(!r.key_destroyed, "the sweep may run out of gas too: the key stays for the next one");
    let view = crate::allowance::view::view(&s.m.counters().allowances, t0() + 31);
    assert_eq!(
        (view[0].state, view[0].swept_at_nonce),
        (crate::allowance::AllowanceState::Active, Some(2)),
        "{view:?}"
    );
    // Anyone may ask again, but only at the sweep's own nonce (a fee bump): never a fresh
    // revocation at every nonce, each paying gas, because none ever settles here.
    let at = |nonce| [crate::protocol::SweepTerms { nonce, ..terms[0] }];
    let r = s.m.sweep(t0() + 40, &at(3), false, Some(&Key)).result;
    assert!(r.as_ref().is_ok_and(|r| r.transactions.is_empty()), "{r:?}");
    let r = s.m.sweep(t0() + 41, &at(2), false, Some(&Key)).result.expect("a fee bump at nonce 2");
    assert_eq!(r.transactions.len(), 1);
    assert_eq!(r.transactions[0].nonce, 2);
}

/// Deny by default: on a chain not known to spend its gas limit on execution alone a
/// revocation is uncertain whatever its gas, unless the policy lists the chain in
/// `approvals.execution_gas_chains`.
#[test]
fn only_chains_known_to_spend_gas_on_execution_make_a_revocation_certain() {
    let revoke =
        |chain| tx_on(chain, 1, approveCall { spender: ROUTER, amount: U256::ZERO }.abi_encode(), 200_000, vec![]);
    let c = Counters::default();
    let ch = prepare(&revoke(1)).unwrap().evaluate(&policy(), &c, &ctx()).unwrap();
    assert!(!ch.may_revert, "control: 200 000 gas on Ethereum is above the floor");
    let ch = prepare(&revoke(777)).unwrap().evaluate(&policy_on("[1, 777]", ""), &c, &ctx()).unwrap();
    assert!(ch.may_revert, "chain 777 is not known to spend its gas limit on execution alone");
    let listed = policy_on("[1, 777]", "execution_gas_chains = [777]");
    let ch = prepare(&revoke(777)).unwrap().evaluate(&listed, &c, &ctx()).unwrap();
    assert!(!ch.may_revert, "listed by the policy");
}

/// Contradictory or malformed gas rules are refused with the rule that fails.
#[test]
fn contradictory_gas_rules_are_refused_at_compile_time() {
    let compile = |chains: &str, approvals: &str, gas: &str| {
        let text = policy_text(chains, approvals).replace("max_gas_limit = 1000000", gas);
        CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).err()
    };
    let d = compile("[1]", "revoke_gas = 150000", "max_gas_limit = 120000").expect("refused");
    assert_eq!(d.rule.as_deref(), Some("approvals.revoke_gas"), "{d:?}");
    assert!(d.reason.contains("150000") && d.reason.contains("120000"), "{d:?}");
    assert!(compile("[1]", "revoke_gas = 120000", "max_gas_limit = 120000").is_none());
    // Without an explicit floor a small gas cap is a transfer-only policy: allowed.
    assert!(compile("[1]", "", "max_gas_limit = 21000").is_none());
    let d = compile("[1]", "execution_gas_chains = [5, 5]", "").expect("refused");
    assert_eq!(d.rule.as_deref(), Some("approvals.execution_gas_chains[1]"), "{d:?}");
    let d = compile("[1]", "execution_gas_chains = [0]", "").expect("refused");
    assert_eq!(d.rule.as_deref(), Some("approvals.execution_gas_chains[0]"), "{d:?}");
    let d = compile("[1]", "execution_gas_chains = [777, 42161]", "").expect("Arbitrum cannot be listed");
    assert_eq!(d.rule.as_deref(), Some("approvals.execution_gas_chains[1]"), "{d:?}");
    let many: Vec<String> = (1..=65).map(|c| c.to_string()).collect();
    let d = compile("[1]", &format!("execution_gas_chains = [{}]", many.join(", ")), "").expect("refused");
    assert_eq!(d.rule.as_deref(), Some("approvals.execution_gas_chains"), "{d:?}");
}

/// A chain's gas is a fact about the chain: a policy update that stops listing it in
/// `approvals.execution_gas_chains` reaches the revocations already signed there (review of
/// b6a51bd: the revocation at nonce 1 still reset the allowance and the next increase
/// took it to 100 on chain, cap 50).
#[test]
fn a_chain_no_longer_listed_makes_earlier_revocations_uncertain() {
    let mut s = Session::with(policy_on("[1, 777]", "execution_gas_chains = [777]"));
    let approve =
        |nonce, amount| tx_on(777, nonce, approveCall { spender: ROUTER, amount }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, approve(0, usdc(50))).expect("approve");
    s.ask(t0() + 11, approve(1, U256::ZERO)).expect("revoke");
    s.m.update_policy(t0() + 12, policy_on("[1, 777]", "")).result.expect("update");
    let add = tx_on(777, 2, increaseAllowanceCall { spender: ROUTER, added: usdc(50) }.abi_encode(), 200_000, vec![]);
    let d = s.ask(t0() + 13, add).expect_err("nonce 1 may have run out of gas: 100 on chain, cap 50");
    assert!(
        matches!(d.code, crate::error::ErrorCode::UnlimitedApproval | crate::error::ErrorCode::ExposureCeiling),
        "{d:?}"
    );
    let v = crate::allowance::view::view(&s.m.counters().allowances, t0() + 14);
    assert_eq!(v[0].state, crate::allowance::AllowanceState::Active, "{v:?}");
}

/// A session's own exposure valued past 2^256 − 1 cannot be checked against its ceiling:
/// with every alternative saturated alike, a replacement counted as no raise (a review of
/// 2026-12-05 found this in the exposure book; the session's own check had it too). An
/// update adds the ceiling over approvals made without one, and a replacement is refused.
#[test]
fn an_exposure_beyond_u256_is_refused_not_waved_through() {
    let text = |ceiling: &str| {
        policy_text("[1]", "").replace("exposure_ceiling = \"60 USD\"", ceiling).replace(
            "max = [\"50 USDC\"]",
            "max = [\"1000000000000000000000000000000000000000000000000000000000000 USDC\"]",
        )
    };
    let compile = |t: String| CompiledPolicy::compile(file::resolve_text(&t, t0()).unwrap()).unwrap();
    let mut s = Session::with(compile(text("")));
    let huge = |n: u64| U256::from(10u64).pow(U256::from(66u64)) - U256::from(n);
    let approve = |amount| tx_at(0, approveCall { spender: ROUTER, amount }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, approve(huge(2))).expect("no ceiling yet");
    assert!(s.m.update_policy(t0() + 11, compile(text("exposure_ceiling = \"60 USD\""))).result.is_ok());
    let d = s.ask(t0() + 12, approve(huge(0))).expect_err("a higher replacement at nonce 0, past 2^256 - 1 at worst");
    assert_eq!(
        (d.code, d.rule.as_deref()),
        (crate::error::ErrorCode::ExposureCeiling, Some("exposure_ceiling")),
        "{d}"
    );
    assert!(d.reason.contains("cannot be checked"), "{d}");
    // A lower one raises nothing, whatever the prices: it passes.
    s.ask(t0() + 13, approve(huge(3))).expect("a lower replacement");
    // Beside another approval past the cap of value, revoking one raises nothing and passes
    // (a review: comparing every key, untouched ones too, refused it); raising it does not.
    let other = |nonce, amount| tx_at(nonce, approveCall { spender: POOL, amount }.abi_encode(), 200_000, vec![]);
    let mut two = Session::with(compile(text("")));
    two.ask(t0() + 10, approve(huge(5))).expect("router");
    two.ask(t0() + 10, other(1, huge(5))).expect("pool");
    assert!(two.m.update_policy(t0() + 11, compile(text("exposure_ceiling = \"60 USD\""))).result.is_ok());
    two.ask(t0() + 12, other(2, U256::ZERO)).expect("the agent's revocation of one");
    let d = two.ask(t0() + 12, other(3, huge(4))).expect_err("a raise");
    assert_eq!(d.code, crate::error::ErrorCode::ExposureCeiling, "{d}");
}

fn free_terms(chain_id: u64, nonce: u64) -> crate::protocol::SweepTerms {
    crate::protocol::SweepTerms { chain_id, nonce, max_fee_per_gas: 0, max_priority_fee_per_gas: 0, gas_limit: 200_000 }
}

/// Unauthenticated sweeps of keys a sweep already revokes: how many writes they added.
fn bounded_writes(s: &mut Session, at: u64, terms: crate::protocol::SweepTerms) -> usize {
    let mut n = 0;
    while n <= crate::allowance::MAX_WRITES {
        match s.m.sweep(at + n as u64, std::slice::from_ref(&terms), false, Some(&Key)).result {
            Ok(r) if !r.transactions.is_empty() => n += r.transactions.len(),
            _ => break,
        }
    }
    n
}

/// Review of b6a51bd: on Arbitrum a swept key stays outstanding, and unauthenticated sweeps
/// at the sweep's nonce (free, at fee 0) re-signed it 510 times until the registry was full
/// and the owner's own sweep of another chain was refused. Reviews of 5d39b59 and e7bd0a9:
/// a bound that stops re-signing froze the host's sweeper instead (four zero-fee re-signs
/// never broadcast, or one sweep at nonce 1 000 000). Now: re-signs at a nonce only sweeps
/// used stay possible — the honest sweeper can always bump — but stop at half the registry,
/// and nothing starts above the next nonce.
#[test]
fn unauthenticated_resweeps_where_none_settles_are_bounded() {
    const ARBITRUM: u64 = 42_161;
    let mut s = Session::with(policy_on("[1, 42161]", ""));
    let a = |chain, nonce| {
        tx_on(chain, nonce, approveCall { spender: ROUTER, amount: usdc(5) }.abi_encode(), 200_000, vec![])
    };
    s.ask(t0() + 10, a(1, 0)).expect("approve on chain 1");
    s.ask(t0() + 11, a(ARBITRUM, 0)).expect("approve on Arbitrum");
    let over = t0() + 25 * 3600; // the session is over: every outstanding key is swept on anyone's request
    let d = s.m.sweep(over, &[free_terms(ARBITRUM, 1_000_000)], false, Some(&Key)).result.expect_err("far");
    assert_eq!(d.rule.as_deref(), Some("sweep.nonce"), "{d:?}");
    let n = bounded_writes(&mut s, over, free_terms(ARBITRUM, 1));
    assert!(n > 4, "the host can still bump after four zero-fee re-signs: {n}");
    assert!(n <= crate::allowance::MAX_WRITES / 2, "re-signed {n} times");
    assert!(s.m.counters().allowances.has_room(crate::allowance::MAX_WRITES / 2 - 2, over));
    // Nothing more at a fresh nonce either, and the owner's sweep still has room.
    let r = s.m.sweep(over + 1_000, &[free_terms(ARBITRUM, 2)], false, Some(&Key)).result.expect("nothing to do");
    assert!(r.transactions.is_empty());
    let r = s.m.sweep(over + 1_001, &[free_terms(1, 1)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.len(), 1);
}

/// Review of b6a51bd (any chain): a fee bump that lays two swept keys out in the other
/// order leaves revocations of both keys at each nonce, so neither is settled and both were
/// re-signed without bound (254 times until the registry was full): now within half of it.
#[test]
fn a_reordered_fee_bump_stays_bounded() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let a = |nonce, sp| tx_on(1, nonce, approveCall { spender: sp, amount: usdc(5) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, a(0, ROUTER)).expect("approve router");
    s.ask(t0() + 2 * 3600, a(1, POOL)).expect("approve pool");
    s.m.sweep(t0() + 2 * 3600 + 1800, &[free_terms(1, 2)], false, Some(&Key)).result.expect("sweep 1");
    s.m.sweep(t0() + 3 * 3600 + 1800, &[free_terms(1, 3)], false, Some(&Key)).result.expect("sweep 2");
    let n = bounded_writes(&mut s, t0() + 4 * 3600, free_terms(1, 2));
    assert!(n <= crate::allowance::MAX_WRITES / 2, "re-signed {n} times");
}

/// The owner's signed sweep is not bound by `gas.max_gas_limit` (review of b6a51bd: the
/// docs said every sweep is refused below the floor); an unauthenticated one is.
#[test]
fn only_the_owners_sweep_passes_a_gas_cap_below_the_floor() {
    let text = policy_text("[1]", "").replace("max_gas_limit = 1000000", "max_gas_limit = 50000");
    let mut s = Session::with(CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap());
    s.ask(t0() + 10, tx_on(1, 0, approveCall { spender: ROUTER, amount: usdc(5) }.abi_encode(), 50_000, vec![]))
        .expect("approve");
    let terms = [crate::protocol::SweepTerms { gas_limit: 100_000, ..free_terms(1, 1) }];
    let d = s.m.sweep(t0() + 25 * 3600, &terms, false, Some(&Key)).result.expect_err("over the gas cap");
    assert_eq!(d.rule.as_deref(), Some("gas.max_gas_limit"), "{d:?}");
    s.m.revoke(t0() + 25 * 3600 + 1, false);
    let r = s.m.sweep(t0() + 25 * 3600 + 2, &terms, true, Some(&Key)).result.expect("the owner's sweep");
    // Signed; the key stays until nothing may be outstanding (reviews of 2026-12-05).
    assert_eq!((r.transactions.len(), r.key_destroyed), (1, false));
}

/// Review of the host's sweeper lanes: a sweep at nonce 1 nobody broadcast, the agent's
/// approval at 2, expired too. Re-signing from 1 laid the second key at 2, over the agent's
/// transaction, and the whole request was refused — every time, so the unbroadcast sweep
/// stayed in place. Now the covered key (ROUTER, which sorts after POOL) comes first and
/// keeps its sweep's nonce, and the other skips the agent's: 1 and 3.
#[test]
fn a_re_sign_skips_the_agents_nonces_instead_of_refusing() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let a = |nonce, sp| tx_on(1, nonce, approveCall { spender: sp, amount: usdc(5) }.abi_encode(), 200_000, vec![]);
    assert!(POOL < ROUTER, "the covered key sorts last");
    s.ask(t0() + 10, a(0, ROUTER)).expect("approve router");
    let r = s.m.sweep(t0() + 3_700, &[free_terms(1, 1)], false, Some(&Key)).result.expect("sweep at 1");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(1, ROUTER)]);
    s.ask(t0() + 3_800, a(2, POOL)).expect("approve pool at 2");
    let later = t0() + 3 * 3_600;
    let r = s.m.sweep(later, &[free_terms(1, 1)], false, Some(&Key)).result.expect("re-sign from 1");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(1, ROUTER), (3, POOL)]);
    // From the agent's own nonce nothing is re-signed (it holds no sweep), and with a key due
    // a request starting there is refused: the host asked for a replacement.
    let r = s.m.sweep(later + 1, &[free_terms(1, 2)], false, Some(&Key)).result.expect("nothing at 2");
    assert!(r.transactions.is_empty(), "{r:?}");
    s.ask(later + 2, a(4, POOL)).expect("approve pool at 4");
    let d = s.m.sweep(later + 2 * 3_600, &[free_terms(1, 4)], false, Some(&Key)).result.expect_err("at 4");
    assert_eq!(d.rule.as_deref(), Some("sweep.nonce"), "{d:?}");
}

/// A review of 2026-12-04: an unauthenticated sweep laid a revocation of one key at a nonce
/// that held only another key's revocation. The approval of POOL at 2 was signed because
/// ROUTER's revocation at 1 was certain to be mined before it; replacing that revocation
/// by POOL's (a no-op before 2) left both approvals live on chain. A nonce that holds only
/// sweeps takes a revocation of the key they revoke (a fee bump), nothing else.
#[test]
fn a_sweep_never_displaces_another_keys_revocation() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let a = |nonce, sp, n| tx_on(1, nonce, approveCall { spender: sp, amount: usdc(n) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, a(0, ROUTER, 5)).expect("approve router");
    let r = s.m.sweep(t0() + 3_700, &[free_terms(1, 1)], false, Some(&Key)).result.expect("sweep at 1");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(1, ROUTER)]);
    s.ask(t0() + 3_800, a(2, POOL, 5)).expect("approve pool at 2, router revoked at 1");
    s.ask(t0() + 3_900, a(3, ROUTER, 0)).expect("the agent revokes router itself at 3");
    let later = t0() + 3 * 3_600;
    let r = s.m.sweep(later, &[free_terms(1, 1)], false, Some(&Key)).result.expect("sweep from 1");
    let laid: Vec<_> = r.transactions.iter().map(|t| (t.nonce, t.spender)).collect();
    assert!(!laid.contains(&(1, POOL)), "POOL's revocation displaced ROUTER's at 1: {laid:?}");
    assert!(laid.contains(&(4, POOL)), "POOL's revocation at the next nonce: {laid:?}");
    // Nonce 1 is still fee-bumped, with ROUTER's revocation (the agent revoked ROUTER itself
    // at 3, so it needs no sweep — but a sweep nobody mined at 1 would otherwise hold the
    // agent's transactions above it for good: a review of the change).
    assert_eq!(laid, vec![(1, ROUTER), (4, POOL)]);
    let r = s.m.sweep(later + 60, &[free_terms(1, 1)], false, Some(&Key)).result.expect("bump again");
    let laid: Vec<_> = r.transactions.iter().map(|t| (t.nonce, t.spender)).collect();
    assert_eq!(laid[0], (1, ROUTER), "{laid:?}");
}

/// A review of the change above: ROUTER swept at 1 and never mined, then approved again at
/// 3 and swept at 5 (after POOL at 4): a bump from 1 listed ROUTER for 5 and POOL for 4, so
/// no key took 1, and the agent's transactions above it were stuck for good. ROUTER's
/// revocation is laid at 1 as well.
#[test]
fn the_start_nonce_is_bumped_even_when_its_key_is_swept_again_later() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let a = |nonce, sp| tx_on(1, nonce, approveCall { spender: sp, amount: usdc(5) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, a(0, ROUTER)).expect("approve router");
    let r = s.m.sweep(t0() + 3_700, &[free_terms(1, 1)], false, Some(&Key)).result.expect("sweep at 1");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(1, ROUTER)]);
    s.ask(t0() + 3_800, a(2, POOL)).expect("approve pool at 2");
    s.ask(t0() + 3_900, a(3, ROUTER)).expect("approve router again at 3");
    let later = t0() + 3 * 3_600;
    let r = s.m.sweep(later, &[free_terms(1, 4)], false, Some(&Key)).result.expect("sweep from 4");
    let laid: Vec<_> = r.transactions.iter().map(|t| (t.nonce, t.spender)).collect();
    assert_eq!(laid, vec![(4, POOL), (5, ROUTER)]);
    let r = s.m.sweep(later + 60, &[free_terms(1, 1)], false, Some(&Key)).result.expect("bump from 1");
    let laid: Vec<_> = r.transactions.iter().map(|t| (t.nonce, t.spender)).collect();
    assert_eq!(laid.first(), Some(&(1, ROUTER)), "nonce 1 is bumped: {laid:?}");
    assert!(laid.iter().all(|&(n, sp)| n != 1 || sp == ROUTER), "{laid:?}");
}

/// A review of 2026-12-05: the agent's revocation laid above nonces it never signed (its
/// approval at 0, `approve(router, 0)` at 5) counted as settling the approval, so the
/// owner's revocation destroyed the key at once — and with it every way to fill nonces 1 to
/// 4, so the revocation could never be mined and the approval stayed live for good. It
/// settles only once every nonce below it holds a transaction the session signed.
#[test]
fn a_revocation_above_a_gap_settles_nothing_until_the_gap_is_signed() {
    let approve = |nonce, amount| tx_at(nonce, approveCall { spender: ROUTER, amount }.abi_encode(), 200_000, vec![]);
    let mut s = Session::new();
    s.ask(t0() + 10, approve(0, usdc(5))).expect("the approval");
    s.ask(t0() + 11, approve(5, U256::ZERO)).expect("its revocation above a gap");
    let view = |s: &Session, at| crate::allowance::view::view(&s.m.counters().allowances, at);
    assert_eq!(view(&s, t0() + 12)[0].settled_at_nonce, None, "{:?}", view(&s, t0() + 12));
    assert!(s.m.has_sweepable(t0() + 12));
    // Filled (transfers at 1 to 4), the gap no longer stands in the way.
    let mut filled = Session::new();
    filled.ask(t0() + 10, approve(0, usdc(5))).expect("the approval");
    filled.ask(t0() + 11, approve(5, U256::ZERO)).expect("its revocation");
    for n in 1..5 {
        let pay = transferCall { to: ALICE, amount: U256::from(1u8) }.abi_encode();
        filled.ask(t0() + 11, tx_at(n, pay, 100_000, vec![])).expect("a transfer");
    }
    assert_eq!(view(&filled, t0() + 12)[0].settled_at_nonce, Some(5));
    assert!(!filled.m.has_sweepable(t0() + 12));
    // The owner revokes both: each key is kept for the owner's sweep — the agent may keep
    // even a settling revocation to itself (a review of the fix), so only the owner's
    // sweep, whose revocations the owner holds, lets the key go.
    assert_eq!(s.m.revoke(t0() + 13, false).result, Ok(true));
    assert!(!s.m.key_destroyed(), "the key stays while the approval may be outstanding");
    assert_eq!(filled.m.revoke(t0() + 13, false).result, Ok(true));
    assert!(!filled.m.key_destroyed(), "the agent's revocation may never be broadcast");
    // Nor after the owner's sweep: the agent may keep nonces below it to itself (a fourth
    // review: a sweep above the agent's withheld approval and revocation let it go). The
    // key stays, able to sign nothing but revocations, so the owner can always sweep again.
    let r = filled.m.sweep(t0() + 14, &[free_terms(1, 6)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.len(), 1);
    assert!(!filled.m.key_destroyed());
    let r = filled.m.sweep(t0() + 14, &[free_terms(1, 7)], true, Some(&Key)).result.expect("and again");
    assert_eq!(r.transactions.len(), 1);
    s.m.sweep(t0() + 14, &[free_terms(1, 6)], true, Some(&Key)).result.expect("the owner's sweep");
    assert!(!s.m.key_destroyed());
    // Nonce 2^64 − 1, above every other, is never valid (EIP-2681): refused, as is a sweep
    // whose revocations would reach it.
    let Err(d) = prepare(&approve(u64::MAX, U256::ZERO)) else { panic!("prepared at nonce 2^64 - 1") };
    assert_eq!(d.code, crate::error::ErrorCode::Malformed, "{d:?}");
    let far = s.m.sweep(t0() + 15, &[free_terms(1, u64::MAX - 2)], true, Some(&Key)).result.expect_err("refused");
    assert_eq!(far.code, crate::error::ErrorCode::Malformed, "{far:?}");
}
