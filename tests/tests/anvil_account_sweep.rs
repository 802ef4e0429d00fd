//! Smart-account sweeps (issue 14 item 2; AG-212 4.6) through the real EntryPoint on anvil:
//! approvals a SimpleAccount granted in user operations the session signed are revoked by
//! one user operation from that account, asked for by the owner and signed by the session
//! key within the policy's gas caps, submitted through
//! `handleOps` — leaving every allowance at 0. EntryPoint v0.7 (SimpleAccount v0.7
//! `executeBatch(address[],uint256[],bytes[])`) and v0.8 (`executeBatch(Call[])`).
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`.

use alloy_primitives::Bytes;
use bridle_common::protocol::{AccountFormat, SignPayload};
use bridle_common::userop::{encode, EntryPointVersion};
use bridle_tests::aa::*;
use bridle_tests::account_sweep::{self, approvals, policy_text, POOL, ROUTER};
use bridle_tests::cluster::usdc;
use bridle_tests::*;

async fn one(version: EntryPointVersion, format: AccountFormat) {
    let anvil = Anvil::start();
    let ep = EntryPoint::deploy(&anvil, version).await;
    let token = anvil.deploy_erc20().await;
    let s = Stack::start();
    let text = policy_text("account-sweep", &ep, ep.factory, token);
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let sender = ep.simple_account(&anvil, g.session).await;

    // The account is deployed by a user operation that approves two spenders in one batch.
    let calls = approvals(token);
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

    let (u, _) = account_sweep::refusals_then_sweep(&s, &g, (&anvil, &ep), sender, token, format).await;
    account_sweep::mined_to_zero(&s, &g, (&anvil, &ep), &u, (sender, token)).await;
}

#[tokio::test]
async fn a_simple_account_v07_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V07, AccountFormat::SimpleAccount).await;
}

#[tokio::test]
async fn a_simple_account_v08_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V08, AccountFormat::SimpleAccountV08).await;
}
