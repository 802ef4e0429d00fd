//! What every smart-account sweep test checks, whatever the account (SimpleAccount v0.7 and
//! v0.8, an ERC-7579 account): a session whose account approved ROUTER 100 USDC and POOL
//! 50 USDC in a user operation, an hour later — the refusals, the owner's sweep, its
//! `handleOps` leaving every allowance at 0.

use crate::aa::{approve_data, handle_ops, EntryPoint};
use crate::cluster::usdc;
use crate::{code, Anvil, Granted, Stack};
use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::{AccountFormat, AccountSweepTerms, SweepReply, SweepUserOp};
use bridle_common::userop::{decode_account_call, EntryPointVersion};

pub const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
pub const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

/// The approvals the account grants: ROUTER 100 USDC, POOL 50 USDC, as one batch's calls.
pub fn approvals(token: Address) -> Vec<(Address, U256, alloy_primitives::Bytes)> {
    vec![(token, U256::ZERO, approve_data(ROUTER, usdc(100))), (token, U256::ZERO, approve_data(POOL, usdc(50)))]
}

/// A policy named `name` for user operations through `ep`, accounts made by `factory`,
/// approvals of `token` to ROUTER and POOL with a one-hour lifetime, fees up to 10 gwei.
pub fn policy_text(name: &str, ep: &EntryPoint, factory: Address, token: Address) -> String {
    let version = match ep.version {
        EntryPointVersion::V07 => "",
        EntryPointVersion::V08 => "@v0.8",
    };
    format!(
        r#"
name = "{name}"
chains = [31337]
valid_for = "24h"
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["1000 USDC"]
lifetime = "1h"
[gas]
max_fee_per_gas = "10 gwei"
max_gas_limit = 2000000
[user_operations]
entry_points = ["{}{version}"]
factories = ["{factory}"]
"#,
        ep.address
    )
}

/// Sweep terms for `sender`'s approvals: 300 000 call gas (enough for two revocations at
/// 100 000 each), `max_fee` per gas.
pub fn terms(ep: &EntryPoint, sender: Address, nonce: U256, format: AccountFormat, max_fee: u128) -> AccountSweepTerms {
    AccountSweepTerms {
        chain_id: 31337,
        entry_point: ep.address,
        entry_point_version: Some(ep.version),
        sender,
        nonce,
        format,
        call_gas_limit: 300_000,
        verification_gas_limit: 500_000,
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: 1_000_000_000,
    }
}

impl Stack {
    /// `POST /v1/sessions/{s}/sweep` with account terms only, signed by the owner or not.
    pub async fn sweep_accounts(
        &self,
        g: &Granted,
        accounts: Vec<AccountSweepTerms>,
        owner_signed: bool,
    ) -> (u16, serde_json::Value) {
        self.sweep_with(g, vec![], accounts, owner_signed).await
    }
}

/// An hour after `sender` approved ROUTER and POOL (the enclave's clock moved): a sweep
/// without account terms skips both; an account sweep without the owner's signature is
/// refused, and so are the owner's with fees over the cap or too little call gas; the
/// owner's sweep returns one user operation whose hash is the EntryPoint's and whose calls
/// decode to two `approve(spender, 0)` on `token`. Returns it, and the account's nonce.
pub async fn refusals_then_sweep(
    s: &Stack,
    g: &Granted,
    (anvil, ep): (&Anvil, &EntryPoint),
    sender: Address,
    token: Address,
    format: AccountFormat,
) -> (SweepUserOp, U256) {
    s.enclave.set_clock_offset(3_601);
    let (c, v) = s.sweep(g, vec![], false).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2, "{v}");

    // Nobody but the owner asks for an account sweep (an account's nonces are not the
    // session's: other signers fill them, and every nonce key is valid).
    let nonce = ep.nonce(anvil, sender).await;
    let t = |max_fee| terms(ep, sender, nonce, format, max_fee);
    let (c, v) = s.sweep_accounts(g, vec![t(5_000_000_000)], false).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    // The owner's sweep: fees above the policy's cap are refused even so.
    let (c, v) = s.sweep_accounts(g, vec![t(11_000_000_000)], true).await;
    assert_eq!((c, code(&v)), (403, "gas_cap"), "{v}");
    // And a call gas limit below the floor for two revocations (2 × approvals.revoke_gas,
    // 100 000 each): the operation could run out of gas, spend the account's nonce and
    // revoke nothing.
    let short = AccountSweepTerms { call_gas_limit: 150_000, ..t(5_000_000_000) };
    let (c, v) = s.sweep_accounts(g, vec![short], true).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "gas_cap", Some("approvals.revoke_gas")), "{v}");

    // One user operation from the account revokes both.
    let (c, v) = s.sweep_accounts(g, vec![t(5_000_000_000)], true).await;
    assert_eq!(c, 200, "{v}");
    let reply: SweepReply = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(reply.user_operations.len(), 1, "{v}");
    let u = reply.user_operations[0].clone();
    assert_eq!(u.hash, ep.user_op_hash(anvil, &u.user_operation).await, "Bridle's hash = the EntryPoint's");
    // What it does, decoded independently of how it was built: approve(spender, 0) only.
    let inner = decode_account_call(&u.user_operation.call_data).expect("decodes");
    assert_eq!(inner.len(), 2);
    for c in &inner {
        assert_eq!(c.to, Some(token));
        assert_eq!(&c.data[..4], &approve_data(ROUTER, U256::ZERO)[..4]);
        assert!(c.data[36..].iter().all(|b| *b == 0), "approve to zero");
    }
    (u, nonce)
}

/// `u` through the real EntryPoint's `handleOps`: both allowances 0 on chain. The enclave
/// cannot know that this operation was the one mined at the account's nonce (another
/// operation writing no approval may have been signed there, and a reverted one uses its
/// nonce too): its view never calls these approvals swept or revoked.
pub async fn mined_to_zero(
    s: &Stack,
    g: &Granted,
    (anvil, ep): (&Anvil, &EntryPoint),
    u: &SweepUserOp,
    (sender, token): (Address, Address),
) {
    assert!(handle_ops(anvil, ep.address, &u.user_operation, u.signature.clone(), u.hash).await, "the sweep failed");
    assert_eq!(anvil.allowance(token, sender, ROUTER).await, U256::ZERO);
    assert_eq!(anvil.allowance(token, sender, POOL).await, U256::ZERO);
    let a = s.allowances(g).await;
    let listed = a["allowances"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{a}");
    assert!(listed.iter().all(|e| e["state"] != "swept" && e["state"] != "revoked"), "{a}");
}
