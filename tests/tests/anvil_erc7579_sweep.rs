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

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::protocol::{AccountFormat, AccountSweepTerms, SignPayload, Sweep, SweepReply};
use bridle_common::userop::{decode_account_call, encode, EntryPointVersion, UserOperationRequest};
use bridle_tests::aa::*;
use bridle_tests::erc7579::{Kernel, KERNEL_ANVIL_FLAGS};
use bridle_tests::*;
use serde_json::{json, Value};

const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn policy_text(ep: &EntryPoint, kernel: &Kernel, token: Address) -> String {
    let version = match ep.version {
        EntryPointVersion::V07 => "",
        EntryPointVersion::V08 => "@v0.8",
    };
    format!(
        r#"
name = "erc7579-sweep"
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
        ep.address, kernel.factory
    )
}

fn terms(ep: &EntryPoint, sender: Address, nonce: U256, max_fee: u128) -> AccountSweepTerms {
    AccountSweepTerms {
        chain_id: 31337,
        entry_point: ep.address,
        entry_point_version: Some(ep.version),
        sender,
        nonce,
        format: AccountFormat::Erc7579,
        call_gas_limit: 300_000,
        verification_gas_limit: 500_000,
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: 1_000_000_000,
    }
}

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
    let g =
        s.grant(&Actor::random(), &Actor::random(), &policy(&policy_text(&ep, &kernel, token))).await.expect("grant");
    let sender = kernel.account(&anvil, &ep, g.session).await;
    assert!(anvil.code(sender).await.is_empty(), "counterfactual");

    // The account is deployed (its root validator owned by the session key) by a user
    // operation that approves two spenders in one ERC-7579 batch.
    let calls =
        vec![(token, U256::ZERO, approve_data(ROUTER, usdc(100))), (token, U256::ZERO, approve_data(POOL, usdc(50)))];
    let mut op = ep.op(sender, 0, encode::erc7579_batch(&calls));
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

    // Without account terms the sweep skips them, saying why.
    s.enclave.set_clock_offset(3_601);
    let (c, v) = s.sweep(&g, vec![], false).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["skipped"].as_array().unwrap().len(), 2, "{v}");

    // Nobody but the owner asks for an account sweep.
    let nonce = ep.nonce(&anvil, sender).await;
    let path = format!("/v1/sessions/{}/sweep", g.session);
    let unsigned = Sweep {
        session: g.session,
        terms: vec![],
        accounts: vec![terms(&ep, sender, nonce, 5_000_000_000)],
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
    let (c, v) = s.post(&path, &signed(terms(&ep, sender, nonce, 11_000_000_000))).await;
    assert_eq!((c, code(&v)), (403, "gas_cap"), "{v}");
    // And a call gas limit below the floor for two revocations.
    let short = AccountSweepTerms { call_gas_limit: 150_000, ..terms(&ep, sender, nonce, 5_000_000_000) };
    let (c, v) = s.post(&path, &signed(short)).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "gas_cap", Some("approvals.revoke_gas")), "{v}");

    // One user operation from the account revokes both.
    let (c, v) = s.post(&path, &signed(terms(&ep, sender, nonce, 5_000_000_000))).await;
    assert_eq!(c, 200, "{v}");
    let reply: SweepReply = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(reply.user_operations.len(), 1, "{v}");
    let u = &reply.user_operations[0];
    assert_eq!(u.hash, ep.user_op_hash(&anvil, &u.user_operation).await, "Bridle's hash = the EntryPoint's");
    // ERC-7579 `execute(bytes32,bytes)` in batch mode (call type 0x01, default exec type).
    let cd = &u.user_operation.call_data;
    assert_eq!(&cd[..4], &encode::erc7579_batch(&[])[..4], "execute(bytes32,bytes)");
    assert_eq!(cd[4], 0x01, "batch call type");
    assert!(cd[5..36].iter().all(|b| *b == 0), "default exec type, selector and payload");
    // What it does, decoded independently of how it was built: approve(spender, 0) only.
    let inner = decode_account_call(cd).expect("decodes");
    assert_eq!(inner.len(), 2);
    for c in &inner {
        assert_eq!(c.to, Some(token));
        assert_eq!(&c.data[..4], &approve_data(ROUTER, U256::ZERO)[..4]);
        assert!(c.data[36..].iter().all(|b| *b == 0), "approve to zero");
    }
    // The account checks who signed: the same operation signed by another key (the agent's)
    // is refused in validation.
    let other = other_signature(&g.agent, &u.user_operation, u.hash);
    let refused = simulate_handle_ops(&anvil, ep.address, &u.user_operation, other).await;
    assert!(refused.as_ref().is_err_and(|e| reverts_with(e, "AA24 signature error")), "{refused:?}");
    assert!(handle_ops(&anvil, ep.address, &u.user_operation, u.signature.clone(), u.hash).await, "the sweep failed");
    assert_eq!(anvil.allowance(token, sender, ROUTER).await, U256::ZERO);
    assert_eq!(anvil.allowance(token, sender, POOL).await, U256::ZERO);
    assert_eq!(ep.nonce(&anvil, sender).await, nonce + U256::from(1), "the sweep used the account's nonce");
    // The enclave cannot know that this operation was the one mined at the account's nonce:
    // its view never calls these approvals swept or revoked.
    let a = s.allowances(&g).await;
    let listed = a["allowances"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{a}");
    assert!(listed.iter().all(|e| e["state"] != "swept" && e["state"] != "revoked"), "{a}");
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
    let js = repo_root().join("tests/js");
    assert!(js.join("node_modules/solc").exists(), "solc-js missing: run `npm ci --prefix tests/js`");
    let out = std::process::Command::new("node")
        .arg("build-erc7579.mjs")
        .arg("--check")
        .current_dir(&js)
        .output()
        .expect("node");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
