//! ERC-7579 account sweeps (issue 14 item 2; AG-212 4.6) through the real EntryPoint on
//! anvil: approvals an ERC-7579 account — ZeroDev Kernel v3.1, whose root validator is an
//! ECDSA validator owned by the session key — granted in user operations the session
//! signed are revoked by one user operation from that account in ERC-7579 batch format
//! (`execute(bytes32 mode, bytes executionCalldata)`, call type 0x01), asked for by the owner
//! and signed by the session key within the policy's gas caps, submitted through
//! `handleOps` — leaving every allowance at 0. EntryPoint v0.7 and v0.8 (Kernel v3.1's
//! implementation bound to each).
//!
//! Kernel's bytecode is `@rhinestone/modulekit@0.5.9`'s; the validator is ours
//! (tests/fixtures/erc7579). Test tools (fail, never skip, when missing):
//! `npm ci --prefix tests/fixtures/userop` and `npm ci --prefix tests/js`.

use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::protocol::{AccountFormat, SignPayload};
use bridle_common::userop::{encode, EntryPointVersion, UserOperationRequest};
use bridle_tests::aa::*;
use bridle_tests::account_sweep::{self, approvals, policy_text, POOL, ROUTER};
use bridle_tests::cluster::usdc;
use bridle_tests::erc7579::{Kernel, KERNEL_ANVIL_FLAGS};
use bridle_tests::*;
use serde_json::{json, Value};

/// `op` signed by `who` the way Bridle signs it (the digest for the operation's version).
fn other_signature(who: &Actor, op: &UserOperationRequest, hash: B256) -> Bytes {
    let sk = k256::ecdsa::SigningKey::from(&who.secret);
    let (sig, recid) = sk.sign_prehash_recoverable(op.signing_digest(&hash).as_slice()).unwrap();
    Bytes::copy_from_slice(&alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd()).as_bytes())
}

/// `handleOps([op])` as an `eth_call` from the dev account: the node's error if it reverts.
async fn simulate_handle_ops(
    anvil: &Anvil,
    ep: Address,
    op: &UserOperationRequest,
    sig: Bytes,
) -> Result<Value, Value> {
    let dev = anvil.deployer().await;
    let data = Bytes::from(handleOpsCall { ops: vec![packed(op, sig)], beneficiary: dev }.abi_encode());
    anvil.try_rpc("eth_call", json!([{"from": dev, "to": ep, "data": data, "gas": "0x1c9c380"}, "latest"])).await
}

/// Whether a node error carries `reason` (in its message or its revert data).
fn reverts_with(err: &Value, reason: &str) -> bool {
    let text = err.to_string();
    text.contains(reason) || text.contains(&hex::encode(reason))
}

async fn one(version: EntryPointVersion) {
    let anvil = Anvil::start_with(KERNEL_ANVIL_FLAGS);
    let ep = EntryPoint::deploy(&anvil, version).await;
    let kernel = Kernel::deploy(&anvil, &ep).await;
    let token = anvil.deploy_erc20().await;
    let s = Stack::start();
    let text = policy_text("erc7579-sweep", &ep, kernel.factory, token);
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let sender = kernel.account(&anvil, &ep, g.session).await;
    assert!(anvil.code(sender).await.is_empty(), "counterfactual");

    // The account is deployed (its root validator owned by the session key) by a user
    // operation that approves two spenders in one ERC-7579 batch.
    let mut op = ep.op(sender, 0, encode::erc7579_batch(&approvals(token)));
    op.factory = Some(kernel.factory);
    op.factory_data = kernel.factory_data(g.session);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!(c, 200, "{v}");
    let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
    let hash = serde_json::from_value(v["digest"].clone()).unwrap();
    assert!(handle_ops(&anvil, ep.address, &op, sig, hash).await, "the approving operation failed");
    assert_eq!(kernel.owner_of(&anvil, sender).await, g.session, "the validator's owner is the session key");
    let root = kernel.root_validator(&anvil, sender).await;
    assert_eq!((root[0], &root[1..]), (0x01, kernel.validator.as_slice()), "root validator");
    assert_eq!(anvil.allowance(token, sender, ROUTER).await, usdc(100));
    assert_eq!(anvil.allowance(token, sender, POOL).await, usdc(50));

    let (u, nonce) =
        account_sweep::refusals_then_sweep(&s, &g, (&anvil, &ep), sender, token, AccountFormat::Erc7579).await;
    // ERC-7579 `execute(bytes32,bytes)` in batch mode (call type 0x01, default exec type).
    let cd = &u.user_operation.call_data;
    // keccak256("execute(bytes32,bytes)")[..4], written out (not Bridle's own encoder).
    assert_eq!(&cd[..4], &[0xe9, 0xae, 0x5c, 0x53], "execute(bytes32,bytes)");
    assert_eq!(cd[4], 0x01, "batch call type");
    assert!(cd[5..36].iter().all(|b| *b == 0), "default exec type, selector and payload");
    // The account checks who signed: the same operation signed by another key (the agent's)
    // is refused in validation.
    let other = other_signature(&g.agent, &u.user_operation, u.hash);
    let refused = simulate_handle_ops(&anvil, ep.address, &u.user_operation, other).await;
    assert!(refused.as_ref().is_err_and(|e| reverts_with(e, "AA24 signature error")), "{refused:?}");
    account_sweep::mined_to_zero(&s, &g, (&anvil, &ep), &u, (sender, token)).await;
    assert_eq!(ep.nonce(&anvil, sender).await, nonce + U256::from(1), "the sweep used the account's nonce");
}

#[tokio::test]
async fn a_kernel_v3_1_erc7579_v07_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V07).await;
}

#[tokio::test]
async fn a_kernel_v3_1_erc7579_v08_sweep_through_handle_ops_leaves_every_allowance_at_zero() {
    one(EntryPointVersion::V08).await;
}

/// The committed validator artifact is what its committed Solidity source compiles to
/// (solc-js from tests/js, the pinned compiler and settings); Kernel's committed bytecode is
/// checked against its npm package by tests/fixtures/erc7579/extract-kernel.mjs (network).
#[test]
fn the_ecdsa_validator_fixture_is_built_from_its_source() {
    bridle_tests::solc::assert_built_from_source("erc7579", "EcdsaValidator");
}
