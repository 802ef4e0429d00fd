//! ERC-4337 EntryPoint v0.8 user operations against the real contracts on anvil (issue 14,
//! R-SIGN-2), deployed from the `@account-abstraction/contracts@0.8.0` npm artifacts:
//!
//! * Bridle's userOpHash (EIP-712, domain `ERC4337`/`1`) equals the real v0.8 EntryPoint's
//!   `getUserOpHash` for plain, paymaster, factory and extreme operations; at the canonical
//!   v0.8 address the version is inferred.
//! * End to end: a SimpleAccount v0.8 owned by the session key, deployed through its factory
//!   (which only the entry point's SenderCreator may call) by the first user operation,
//!   transfers an allowed amount; the key signs the hash itself (SimpleAccount v0.8 checks
//!   `ECDSA.recover(userOpHash, signature)`); a batch (`executeBatch(Call[])`) executes; the
//!   policy binds each entry point to its version.
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::protocol::SignPayload;
use bridle_common::userop::{encode, simple_account, EntryPointVersion, ENTRY_POINT_V08};
use bridle_tests::aa::*;
use bridle_tests::*;

const RECIPIENT: Address = address!("00000000000000000000000000000000000b0b00");

#[tokio::test]
async fn user_op_hash_equals_entry_point_v08_get_user_op_hash() {
    let anvil = Anvil::start();
    let ep = EntryPoint::deploy(&anvil, EntryPointVersion::V08).await;
    let sender = Address::repeat_byte(0x5c);
    let mut ops = vec![ep.op(sender, 0, encode::simple_execute(RECIPIENT, U256::from(1), Bytes::from_static(b"\x01")))];
    let mut o = ep.op(sender, 3, encode::erc7579_batch(&[(RECIPIENT, U256::ZERO, Bytes::new())]));
    o.paymaster = Some(Address::repeat_byte(0xfa));
    o.paymaster_verification_gas_limit = 123_456;
    o.paymaster_post_op_gas_limit = 654_321;
    o.paymaster_data = Bytes::from(vec![0xab; 77]);
    ops.push(o);
    let o = ep.deploying(ep.op(sender, 0, encode::erc7579_single(RECIPIENT, U256::from(9), &[])), RECIPIENT);
    ops.push(o);
    let mut o = ep.op(sender, 0, Bytes::new());
    o.init_code = Some([&[0xfd; 20][..], &[0xee; 100]].concat().into());
    o.nonce = (U256::from(0xabcdefu64) << 64) | U256::from(42);
    o.call_gas_limit = u128::MAX;
    o.verification_gas_limit = 1;
    o.pre_verification_gas = U256::MAX;
    o.max_fee_per_gas = u128::MAX;
    o.max_priority_fee_per_gas = 7;
    o.paymaster = Some(Address::repeat_byte(0xfb));
    ops.push(o);
    let mut hashes = vec![];
    for (i, op) in ops.iter().enumerate() {
        let ours = op.hash().expect("hash");
        let theirs = ep.user_op_hash(&anvil, op).await;
        assert_eq!(ours, theirs, "op {i}: Bridle's userOpHash differs from EntryPoint v0.8 getUserOpHash");
        let mut as_v07 = op.clone();
        as_v07.entry_point_version = Some(EntryPointVersion::V07);
        assert_ne!(as_v07.hash().unwrap(), theirs, "op {i}: the v0.7 hash is not v0.8's");
        hashes.push(ours);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), ops.len());

    // At the canonical v0.8 address (the deployed code copied there), a request that names no
    // version is hashed as v0.8.
    let code = anvil.rpc("eth_getCode", serde_json::json!([ep.address, "latest"])).await;
    anvil.rpc("anvil_setCode", serde_json::json!([ENTRY_POINT_V08, code])).await;
    let mut canonical = ops[0].clone();
    canonical.entry_point = ENTRY_POINT_V08;
    canonical.entry_point_version = None;
    assert_eq!(canonical.hash().unwrap(), user_op_hash(&anvil, ENTRY_POINT_V08, &canonical).await);
}

fn policy_text(ep: Address, factory: Address, token: Address) -> String {
    format!(
        r#"
name = "aa-v08"
chains = [31337]
valid_for = "1h"
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[gas]
max_fee_per_gas = "10 gwei"
max_gas_limit = 2000000
[user_operations]
entry_points = ["{ep}@v0.8"]
factories = ["{factory}"]
"#
    )
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

#[tokio::test]
async fn simple_account_v08_user_ops_signed_by_bridle_execute_on_anvil() {
    let anvil = Anvil::start();
    let ep = EntryPoint::deploy(&anvil, EntryPointVersion::V08).await;
    let token = anvil.deploy_erc20().await;
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&policy_text(ep.address, ep.factory, token))).await;
    let g = g.expect("grant");
    let sender = ep.simple_account(&anvil, g.session).await;
    anvil.mint(token, sender, usdc(1000)).await;

    // 1. Deploy the account (through the SenderCreator) and transfer 60 USDC.
    let op = ep.deploying(
        ep.op(sender, 0, encode::simple_execute(token, U256::ZERO, transfer_data(RECIPIENT, usdc(60)))),
        g.session,
    );
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!(c, 200, "{v}");
    let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
    let hash: B256 = serde_json::from_value(v["digest"].clone()).unwrap();
    assert_eq!(hash, ep.user_op_hash(&anvil, &op).await, "enclave hash = EntryPoint v0.8 hash");
    // The key signed the hash itself (not its EIP-191 hash), as SimpleAccount v0.8 checks.
    let sig_parsed = alloy_primitives::Signature::from_raw(&sig).unwrap();
    assert_eq!(sig_parsed.recover_address_from_prehash(&hash).unwrap(), g.session);
    assert!(handle_ops(&anvil, ep.address, &op, sig, hash).await, "the user operation's execution failed");
    assert_eq!(anvil.token_balance(token, RECIPIENT).await, usdc(60));
    let owner = ownerCall::abi_decode_returns(&anvil.view(sender, ownerCall {}.abi_encode()).await).unwrap();
    assert_eq!(owner, g.session, "the account is owned by the session key");

    // 2. A v0.8 batch, BaseAccount.executeBatch(Call[]): 10 + 20.
    let calls = vec![
        simple_account::v08::Call { target: token, value: U256::ZERO, data: transfer_data(RECIPIENT, usdc(10)) },
        simple_account::v08::Call { target: token, value: U256::ZERO, data: transfer_data(RECIPIENT, usdc(20)) },
    ];
    let batch = ep.op(sender, 1, simple_account::v08::executeBatchCall { calls }.abi_encode().into());
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(batch.clone())).await;
    assert_eq!(c, 200, "{v}");
    let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
    let hash: B256 = serde_json::from_value(v["digest"].clone()).unwrap();
    assert!(handle_ops(&anvil, ep.address, &batch, sig, hash).await);
    assert_eq!(anvil.token_balance(token, RECIPIENT).await, usdc(90));
    assert_eq!(ep.nonce(&anvil, sender).await, U256::from(2));

    // 3. Over the cap (90 + 20 > 100): refused, nothing charged.
    let over = ep.op(sender, 2, encode::simple_execute(token, U256::ZERO, transfer_data(RECIPIENT, usdc(20))));
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(over)).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");

    // 4. The policy lists this entry point as v0.8: the same operation labelled v0.7 (another
    //    hash, another signing rule) is not allowed.
    let mut as_v07 = ep.op(sender, 2, encode::simple_execute(token, U256::ZERO, transfer_data(RECIPIENT, usdc(1))));
    as_v07.entry_point_version = Some(EntryPointVersion::V07);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(as_v07)).await;
    assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().contains("v0.7"), "{v}");
}
