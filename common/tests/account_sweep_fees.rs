//! A review of 2026-12-07 (sweeps): the owner's *signed* smart-account sweep was refused
//! outright when the policy caps no fee, with a reason telling the owner to sign the sweep,
//! which they had: an approval a smart account granted through the session could never be
//! revoked through Bridle under such a policy, and the revoked session's key was kept for it
//! for good. Now its fees are the owner's signed terms there. Under a fee cap, an account
//! sweep stays within it even signed (README, "Smart accounts"), unlike a transaction sweep.
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::machine::Machine;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};
use bridle_common::protocol::{AccountFormat, AccountSweepTerms, SignPayload, SweepTerms};
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};

#[allow(dead_code)] // the shared support: this test uses its key and owner only
mod support;
use support::{Key, OWNER};

sol! {
    function approve(address spender, uint256 amount) returns (bool);
}

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ACCOUNT: Address = address!("0000000000000000000000000000000000005ca0");

fn policy(gas: &str) -> CompiledPolicy {
    let text = format!(
        r#"
name = "zz-account-sweep-fees"
chains = [1]
valid_for = "1h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}"]
max = ["50 USDC"]
[user_operations]
entry_points = ["v0.7"]
senders = ["{ACCOUNT}"]
{gas}
"#
    );
    CompiledPolicy::compile(resolve_text(&text, T0).expect("policy")).expect("compiles")
}

fn stamp(clock: u64, n: u8) -> Stamp {
    Stamp { nonce: [n; 16], timestamp: clock, mac: [0u8; 32] }
}

fn sign(m: &mut Machine, clock: u64, n: u8, p: &SignPayload) -> Result<(), String> {
    let prepared = bridle_common::payload::prepare(p).map_err(|d| d.to_string())?;
    m.sign(clock, p, prepared, &stamp(clock, n), Some(&Key)).result.map(|_| ()).map_err(|d| d.to_string())
}

fn userop_approve() -> SignPayload {
    let approve: Bytes = approveCall { spender: ROUTER, amount: U256::from(10_000_000u64) }.abi_encode().into();
    SignPayload::UserOperation(UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: ACCOUNT,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute(USDC, U256::ZERO, approve),
        call_gas_limit: 200_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    })
}

fn tx_approve(nonce: u64) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: approveCall { spender: ROUTER, amount: U256::from(10_000_000u64) }.abi_encode().into(),
        access_list: vec![],
    }))
}

fn account_terms(fee: u128) -> AccountSweepTerms {
    account_terms_p(fee, 1_000_000_000)
}

fn account_terms_p(fee: u128, prio: u128) -> AccountSweepTerms {
    AccountSweepTerms {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: ACCOUNT,
        nonce: U256::from(1u8),
        format: AccountFormat::SimpleAccount,
        call_gas_limit: 200_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: prio,
    }
}

/// The owner signs the account sweep of a revoked session; the policy caps no fee.
#[test]
fn the_owners_signed_account_sweep_is_signed_when_the_policy_caps_no_fee() {
    let mut m = Machine::new(Address::repeat_byte(0x51), OWNER, Address::repeat_byte(0xa9), policy(""), T0, 60, 4096);
    let t = T0 + 10;
    sign(&mut m, t, 1, &userop_approve()).expect("the account's approval is signed");
    sign(&mut m, t, 2, &tx_approve(0)).expect("the session's own approval is signed");
    assert!(m.revoke(t + 1, false).result.expect("revoked"));
    // The owner's signed transaction sweep goes through at the owner's fees...
    let own = [SweepTerms {
        chain_id: 1,
        nonce: 1,
        max_fee_per_gas: 90_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
    }];
    let r = m.sweep(t + 2, &own, true, Some(&Key)).result.expect("the owner's transaction sweep");
    assert_eq!(r.transactions.len(), 1, "{r:?}");
    // ...and so does its signed account sweep.
    let r = m.sweep_with_accounts(t + 3, &[], &[account_terms(20_000_000_000)], true, Some(&Key)).result;
    match r {
        Ok(r) => assert_eq!(r.user_operations.len(), 1, "{r:?}"),
        Err(d) => panic!(
            "the owner's signed account sweep of a revoked session is refused: {:?} {:?}: {} \
             (may_hold = {}: the key is kept for an approval nobody can revoke through Bridle)",
            d.code,
            d.rule,
            d.reason,
            m.may_hold(t + 3)
        ),
    }
}

/// With a fee cap, the owner's signed account sweep above it is refused, naming the cap,
/// while the owner's signed transaction sweep at the same fee is signed (README, "Smart
/// accounts": an account sweep's fees stay within the policy's caps); within it, signed.
#[test]
fn the_owners_signed_account_sweep_stays_within_the_fee_cap() {
    let gas = "[gas]\nmax_fee_per_gas = \"20 gwei\"";
    let mut m = Machine::new(Address::repeat_byte(0x52), OWNER, Address::repeat_byte(0xa9), policy(gas), T0, 60, 4096);
    let t = T0 + 10;
    sign(&mut m, t, 1, &userop_approve()).expect("the account's approval is signed");
    sign(&mut m, t, 2, &tx_approve(0)).expect("the session's own approval is signed");
    assert!(m.revoke(t + 1, false).result.expect("revoked"));
    let own = [SweepTerms {
        chain_id: 1,
        nonce: 1,
        max_fee_per_gas: 90_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
    }];
    m.sweep(t + 2, &own, true, Some(&Key)).result.expect("the owner's transaction sweep above the cap");
    let r = m.sweep_with_accounts(t + 3, &[], &[account_terms(90_000_000_000)], true, Some(&Key)).result;
    let d = r.expect_err("above the cap");
    assert_eq!(d.rule.as_deref(), Some("gas.max_fee_per_gas"), "{d:?}");
    assert!(d.reason.contains("above the cap"), "{d:?}");
    let r = m.sweep_with_accounts(t + 4, &[], &[account_terms(20_000_000_000)], true, Some(&Key)).result;
    assert_eq!(r.expect("within the cap").user_operations.len(), 1);
}

/// A review of the fix above: a policy that caps the priority fee (or the gas limit) but not
/// the fee per gas skipped every cap, and the owner's account sweep was signed past the
/// priority-fee cap, which the same sweep under a policy that also caps the fee per gas is
/// refused for. Every cap the policy sets binds.
#[test]
fn the_account_sweep_stays_within_a_priority_fee_cap_without_a_fee_cap() {
    let run = |gas: &str, id: u8| {
        let mut m =
            Machine::new(Address::repeat_byte(id), OWNER, Address::repeat_byte(0xa9), policy(gas), T0, 60, 4096);
        let t = T0 + 10;
        sign(&mut m, t, 1, &userop_approve()).expect("the account's approval is signed");
        assert!(m.revoke(t + 1, false).result.expect("revoked"));
        // 50 gwei priority fee, 60 gwei fee per gas: above a 2 gwei priority cap.
        m.sweep_with_accounts(t + 3, &[], &[account_terms_p(60_000_000_000, 50_000_000_000)], true, Some(&Key)).result
    };
    // Control: with both caps, refused on the priority fee.
    let d = run("[gas]\nmax_fee_per_gas = \"100 gwei\"\nmax_priority_fee_per_gas = \"2 gwei\"", 0x61)
        .expect_err("above the priority cap");
    assert_eq!(d.rule.as_deref(), Some("gas.max_priority_fee_per_gas"), "{d:?}");
    // The priority cap alone.
    let d = run("[gas]\nmax_priority_fee_per_gas = \"2 gwei\"", 0x62).expect_err("above the priority cap alone");
    assert_eq!(d.rule.as_deref(), Some("gas.max_priority_fee_per_gas"), "{d:?}");
}
