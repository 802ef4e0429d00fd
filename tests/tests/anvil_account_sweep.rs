//! Smart-account sweeps (issue 14 item 2; AG-212 4.6) through the real EntryPoint on anvil:
//! approvals a SimpleAccount granted in user operations the session signed are revoked by
//! one user operation from that account, asked for by the owner and signed by the session
//! key within the policy's gas caps, submitted through
//! `handleOps` — leaving every allowance at 0. EntryPoint v0.7 (SimpleAccount v0.7
//! `executeBatch(address[],uint256[],bytes[])`) and v0.8 (`executeBatch(Call[])`).
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`.

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::protocol::{AccountFormat, AccountSweepTerms, SignPayload, Sweep, SweepReply};
use bridle_common::userop::{decode_account_call, encode, EntryPointVersion};
use bridle_tests::aa::*;
use bridle_tests::*;

const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn policy_text(ep: &EntryPoint, token: Address) -> String {
    let version = match ep.version {
        EntryPointVersion::V07 => "",
        EntryPointVersion::V08 => "@v0.8",
    };
    format!(
        r#"
name = "account-sweep"
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
factories = ["{}"]
"#,
        ep.address, ep.factory
    )
}

fn terms(ep: &EntryPoint, sender: Address, nonce: U256, format: AccountFormat, max_fee: u128) -> AccountSweepTerms {
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

async fn one(version: EntryPointVersion, format: AccountFormat) {
    let anvil = Anvil::start();
    let ep = EntryPoint::deploy(&anvil, version).await;
    let token = anvil.deploy_erc20().await;
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&policy_text(&ep, token))).await.expect("grant");
    let sender = ep.simple_account(&anvil, g.session).await;

    // The account is deployed by a user operation that approves two spenders in one batch.
    let calls =
        vec![(token, U256::ZERO, approve_data(ROUTER, usdc(100))), (token, U256::ZERO, approve_data(POOL, usdc(50)))];
    let data: Bytes = match format {
        AccountFormat::SimpleAccountV08 => encode::simple_v08_execute_batch(&calls),
        _ => encode::simple_execute_batch(&calls),
    };
    let op = ep.deploying(ep.op(sender, 0, data), g.session);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!(c, 200, "{v}");
    let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
    let hash = serde_json::from_value(v["digest"].clone()).unwrap();
    assert!(handle_ops(&anvil, ep.address, &op, sig, hash).await, "the approving operation failed");
    assert_eq!(anvil.allowance(token, sender, ROUTER).await, usdc(100));
    assert_eq!(anvil.allowance(token, sender, POOL).await, usdc(50));

    // Without account terms the sweep skips them, saying why.
    s.enclave.set_clock_offset(3_601);
    let (c, v) = s.sweep(&g, vec![], false).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2, "{v}");

    // Nobody but the owner asks for an account sweep (an account's nonces are not the
    // session's: other signers fill them, and every nonce key is valid).
    let nonce = ep.nonce(&anvil, sender).await;
    let path = format!("/v1/sessions/{}/sweep", g.session);
    let unsigned = Sweep {
        session: g.session,
        terms: vec![],
        accounts: vec![terms(&ep, sender, nonce, format, 5_000_000_000)],
        auth: None,
    };
    let (c, v) = s.post(&path, &unsigned).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    // The owner's sweep: fees above the policy's cap are refused even so.
    let st = s.status().await;
    let signed = |t: AccountSweepTerms| {
        let mut body = Sweep { session: g.session, terms: vec![], accounts: vec![t], auth: None };
        let msg = owner_action(
            bridle_common::owner::action::SWEEP,
            st.identity_address,
            g.session,
            g.agent.address,
            body.terms_digest(),
        );
        body.auth = Some(g.owner.sign_owner(&msg));
        body
    };
    let (c, v) = s.post(&path, &signed(terms(&ep, sender, nonce, format, 11_000_000_000))).await;
    assert_eq!((c, code(&v)), (403, "gas_cap"), "{v}");
    // And a call gas limit below the floor for two revocations (2 × approvals.revoke_gas,
    // 100 000 each): the operation could run out of gas, spend the account's nonce and
    // revoke nothing.
    let short = AccountSweepTerms { call_gas_limit: 150_000, ..terms(&ep, sender, nonce, format, 5_000_000_000) };
    let (c, v) = s.post(&path, &signed(short)).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "gas_cap", Some("approvals.revoke_gas")), "{v}");

    // One user operation from the account revokes both.
    let (c, v) = s.post(&path, &signed(terms(&ep, sender, nonce, format, 5_000_000_000))).await;
    assert_eq!(c, 200, "{v}");
    let reply: SweepReply = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(reply.user_operations.len(), 1, "{v}");
    let u = &reply.user_operations[0];
    assert_eq!(u.hash, ep.user_op_hash(&anvil, &u.user_operation).await, "Bridle's hash = the EntryPoint's");
    // What it does, decoded independently of how it was built: approve(spender, 0) only.
    let inner = decode_account_call(&u.user_operation.call_data).expect("decodes");
    assert_eq!(inner.len(), 2);
    for c in &inner {
        assert_eq!(c.to, Some(token));
        assert_eq!(&c.data[..4], &approve_data(ROUTER, U256::ZERO)[..4]);
        assert!(c.data[36..].iter().all(|b| *b == 0), "approve to zero");
    }
    assert!(handle_ops(&anvil, ep.address, &u.user_operation, u.signature.clone(), u.hash).await, "the sweep failed");
    assert_eq!(anvil.allowance(token, sender, ROUTER).await, U256::ZERO);
    assert_eq!(anvil.allowance(token, sender, POOL).await, U256::ZERO);
    // The enclave cannot know that this operation was the one mined at the account's nonce
    // (another operation writing no approval may have been signed there, and a reverted
    // one uses its nonce too): its view never calls these approvals swept or revoked.
    let a = s.allowances(&g).await;
    let listed = a["allowances"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{a}");
    assert!(listed.iter().all(|e| e["state"] != "swept" && e["state"] != "revoked"), "{a}");
}

#[tokio::test]
async fn a_simple_account_v07_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V07, AccountFormat::SimpleAccount).await;
}

#[tokio::test]
async fn a_simple_account_v08_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V08, AccountFormat::SimpleAccountV08).await;
}
