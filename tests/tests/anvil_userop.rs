//! ERC-4337 v0.7 user operations against the real contracts on anvil (issue 5, R-SIGN-2).
//!
//! * The userOpHash Bridle computes equals `getUserOpHash` of the real EntryPoint v0.7,
//!   deployed from the `@account-abstraction/contracts@0.7.0` npm artifacts, for several
//!   operations (plain, paymaster, init code, factory, extreme values).
//! * End to end: a SimpleAccount owned by the session key, deployed through its factory
//!   by the first user operation; a user operation transferring an allowed ERC-20 amount is
//!   signed by Bridle (JSON-RPC and REST), submitted through `handleOps` and executed; a
//!   batch whose second call breaks the policy is refused as a whole, never signed, and
//!   charges nothing.
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`
//! installs anvil (@foundry-rs/anvil-linux-amd64), @account-abstraction/contracts 0.7.0
//! and @openzeppelin/contracts 4.9.6 (the ERC-20 artifact). `BRIDLE_ANVIL` overrides the
//! anvil binary.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolConstructor, SolEvent};
use bridle_common::protocol::SignPayload;
use bridle_common::userop::{encode, UserOperationRequest};
use bridle_tests::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

sol! {
    #[derive(Debug)]
    struct PackedUserOperation {
        address sender;
        uint256 nonce;
        bytes initCode;
        bytes callData;
        bytes32 accountGasLimits;
        uint256 preVerificationGas;
        bytes32 gasFees;
        bytes paymasterAndData;
        bytes signature;
    }
    function getUserOpHash(PackedUserOperation userOp) returns (bytes32);
    function handleOps(PackedUserOperation[] ops, address beneficiary);
    function depositTo(address account);
    function getNonce(address sender, uint192 key) returns (uint256);
    event UserOperationEvent(bytes32 indexed userOpHash, address indexed sender, address indexed paymaster, uint256 nonce, bool success, uint256 actualGasCost, uint256 actualGasUsed);

    function createAccount(address owner, uint256 salt) returns (address);
    function getAddress(address owner, uint256 salt) returns (address);
    contract Factory { constructor(address entryPoint); }

    contract PresetToken { constructor(string name, string symbol, uint256 initialSupply, address owner); }
    function balanceOf(address who) returns (uint256);
    function transfer(address to, uint256 amount) returns (bool);
    function owner() returns (address);
}

const RECIPIENT: Address = address!("00000000000000000000000000000000000b0b00");
const ATTACKER: Address = address!("0000000000000000000000000000000000bad000");

fn repo() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    let nm = repo().join("tests/fixtures/userop/node_modules");
    for p in ["@account-abstraction/contracts/artifacts/EntryPoint.json", "@openzeppelin/contracts/build/contracts"] {
        assert!(
            nm.join(p).exists(),
            "{} missing: run `npm ci --prefix tests/fixtures/userop` (anvil, @account-abstraction/contracts@0.7.0, @openzeppelin/contracts@4.9.6)",
            nm.join(p).display()
        );
    }
    nm
}

fn bytecode(rel: &str) -> Vec<u8> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join(rel)).unwrap()).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()
}

/// `$BRIDLE_ANVIL`, else the npm package in this fixture (or tests/js), else PATH.
fn anvil_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDLE_ANVIL") {
        return PathBuf::from(p);
    }
    for dir in ["tests/fixtures/userop", "tests/js"] {
        let p = repo().join(dir).join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("anvil")
}

/// A fresh anvil (chain 31337) with a small JSON-RPC client.
struct Chain {
    _proc: Proc,
    url: String,
    http: reqwest::Client,
    dev: Address,
}

impl Chain {
    async fn start() -> Chain {
        let mut cmd = Command::new(anvil_path());
        cmd.args(["--host", "127.0.0.1", "--port", "0", "--chain-id", "31337", "--accounts", "2"]);
        let proc = Proc::spawn_until(cmd, "Listening on");
        let addr = proc.line.split_whitespace().last().expect("anvil address").to_string();
        let mut c =
            Chain { _proc: proc, url: format!("http://{addr}"), http: reqwest::Client::new(), dev: Address::ZERO };
        c.dev = serde_json::from_value(c.rpc("eth_accounts", json!([])).await[0].clone()).unwrap();
        c
    }

    async fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = self.http.post(&self.url).json(&body).send().await.expect("anvil").json().await.unwrap();
        assert!(v.get("error").is_none(), "{method} {params}: {v}");
        v["result"].clone()
    }

    /// Send from the unlocked dev account; wait for and return the receipt (status 1).
    async fn send(&self, to: Option<Address>, data: Vec<u8>, value: U256) -> Value {
        let mut tx = json!({"from": self.dev, "data": Bytes::from(data), "value": format!("{value:#x}")});
        if let Some(t) = to {
            tx["to"] = json!(t);
        }
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await;
        for _ in 0..200 {
            let r = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !r.is_null() {
                assert_eq!(r["status"], "0x1", "transaction failed: {r}");
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{hash} not mined");
    }

    async fn deploy(&self, code: Vec<u8>) -> Address {
        let r = self.send(None, code, U256::ZERO).await;
        serde_json::from_value(r["contractAddress"].clone()).unwrap()
    }

    async fn call(&self, to: Address, data: Vec<u8>) -> Vec<u8> {
        let out = self.rpc("eth_call", json!([{"to": to, "data": Bytes::from(data)}, "latest"])).await;
        hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()
    }

    async fn entry_point(&self) -> Address {
        self.deploy(bytecode("@account-abstraction/contracts/artifacts/EntryPoint.json")).await
    }

    async fn user_op_hash(&self, ep: Address, p: PackedUserOperation) -> B256 {
        let out = self.call(ep, getUserOpHashCall { userOp: p }.abi_encode()).await;
        getUserOpHashCall::abi_decode_returns(&out).unwrap()
    }

    async fn token_balance(&self, token: Address, who: Address) -> U256 {
        balanceOfCall::abi_decode_returns(&self.call(token, balanceOfCall { who }.abi_encode()).await).unwrap()
    }
}

/// Bridle's packed operation as the contract ABI's struct.
fn packed(op: &UserOperationRequest, signature: Bytes) -> PackedUserOperation {
    let p = op.packed(signature).expect("packs");
    PackedUserOperation {
        sender: p.sender,
        nonce: p.nonce,
        initCode: p.initCode,
        callData: p.callData,
        accountGasLimits: p.accountGasLimits,
        preVerificationGas: p.preVerificationGas,
        gasFees: p.gasFees,
        paymasterAndData: p.paymasterAndData,
        signature: p.signature,
    }
}

fn base_op(ep: Address, sender: Address, call_data: Bytes) -> UserOperationRequest {
    UserOperationRequest {
        chain_id: 31337,
        entry_point: ep,
        entry_point_version: None,
        sender,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data,
        call_gas_limit: 200_000,
        verification_gas_limit: 1_000_000,
        pre_verification_gas: U256::from(60_000),
        max_fee_per_gas: 5_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    }
}

#[tokio::test]
async fn user_op_hash_equals_entry_point_v07_get_user_op_hash() {
    let chain = Chain::start().await;
    let ep = chain.entry_point().await;
    let sender = Address::repeat_byte(0x5c);
    let mut ops = vec![];
    // Plain SimpleAccount execute.
    ops.push(base_op(ep, sender, encode::simple_execute(RECIPIENT, U256::from(1), Bytes::from_static(b"\x01\x02"))));
    // With a paymaster and paymaster data.
    let mut o = base_op(ep, sender, encode::erc7579_batch(&[(RECIPIENT, U256::ZERO, Bytes::new())]));
    o.paymaster = Some(Address::repeat_byte(0xfa));
    o.paymaster_verification_gas_limit = 123_456;
    o.paymaster_post_op_gas_limit = 654_321;
    o.paymaster_data = Bytes::from(vec![0xab; 77]);
    ops.push(o);
    // With a factory and factory data.
    let mut o = base_op(ep, sender, encode::erc7579_single(RECIPIENT, U256::from(9), &[]));
    o.factory = Some(Address::repeat_byte(0xfc));
    o.factory_data = createAccountCall { owner: Address::repeat_byte(1), salt: U256::from(3) }.abi_encode().into();
    ops.push(o);
    // Raw initCode, a 2D nonce, extreme gas values, a paymaster without data.
    let mut o = base_op(ep, sender, Bytes::new());
    o.init_code = Some([&[0xfd; 20][..], &[0xee; 100]].concat().into());
    o.nonce = (U256::from(0xabcdefu64) << 64) | U256::from(42);
    o.call_gas_limit = u128::MAX;
    o.verification_gas_limit = 1;
    o.pre_verification_gas = U256::MAX;
    o.max_fee_per_gas = u128::MAX;
    o.max_priority_fee_per_gas = 7;
    o.paymaster = Some(Address::repeat_byte(0xfb));
    ops.push(o);
    // Another entry point address in the request changes the hash the contract computes
    // for itself, so compare only the deployed one; but the chain id is bound too.
    let mut hashes = vec![];
    for (i, op) in ops.iter().enumerate() {
        let ours = op.hash().expect("hash");
        let theirs = chain.user_op_hash(ep, packed(op, Bytes::new())).await;
        assert_eq!(ours, theirs, "op {i}: Bridle's userOpHash differs from EntryPoint v0.7 getUserOpHash");
        // The signature is not part of the hash.
        assert_eq!(chain.user_op_hash(ep, packed(op, Bytes::from(vec![1u8; 65]))).await, theirs);
        hashes.push(ours);
    }
    hashes.dedup();
    assert_eq!(hashes.len(), ops.len());
    let mut other_chain = ops[0].clone();
    other_chain.chain_id = 1;
    assert_ne!(other_chain.hash().unwrap(), hashes[0]);
}

fn policy_text(ep: Address, factory: Address, token: Address) -> String {
    format!(
        r#"
name = "aa-e2e"
chains = [31337]
valid_for = "1h"
[tokens]
TUSD = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "TUSD"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 TUSD"
per = "day"
[gas]
max_fee_per_gas = "10 gwei"
max_gas_limit = 2000000
[user_operations]
entry_points = ["{ep}"]
factories = ["{factory}"]
"#
    )
}

fn tusd(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn xfer(to: Address, amount: U256) -> Bytes {
    transferCall { to, amount }.abi_encode().into()
}

/// Submit through handleOps; return whether the operation's execution succeeded.
async fn handle_ops(chain: &Chain, ep: Address, op: &UserOperationRequest, sig: Bytes, want_hash: B256) -> bool {
    let data = handleOpsCall { ops: vec![packed(op, sig)], beneficiary: chain.dev }.abi_encode();
    let r = chain.send(Some(ep), data, U256::ZERO).await;
    let logs = r["logs"].as_array().cloned().unwrap_or_default();
    for l in logs {
        let topics: Vec<B256> = serde_json::from_value(l["topics"].clone()).unwrap();
        if topics.first() == Some(&UserOperationEvent::SIGNATURE_HASH) {
            assert_eq!(topics[1], want_hash, "UserOperationEvent for another hash");
            let data: Bytes = serde_json::from_value(l["data"].clone()).unwrap();
            let ev = UserOperationEvent::decode_raw_log(topics.iter().copied(), &data).unwrap();
            return ev.success;
        }
    }
    panic!("no UserOperationEvent in {r}");
}

#[tokio::test]
async fn simple_account_user_ops_signed_by_bridle_execute_on_anvil() {
    let chain = Chain::start().await;
    let ep = chain.entry_point().await;
    let mut factory_code = bytecode("@account-abstraction/contracts/artifacts/SimpleAccountFactory.json");
    factory_code.extend(Factory::constructorCall { entryPoint: ep }.abi_encode());
    let factory = chain.deploy(factory_code).await;
    let mut token_code = bytecode("@openzeppelin/contracts/build/contracts/ERC20PresetFixedSupply.json");
    token_code.extend(
        PresetToken::constructorCall {
            name: "Test USD".into(),
            symbol: "TUSD".into(),
            initialSupply: tusd(1_000_000),
            owner: chain.dev,
        }
        .abi_encode(),
    );
    let token = chain.deploy(token_code).await;

    // Bridle: a session whose key will own the SimpleAccount.
    let s = Stack::start();
    let g =
        s.grant(&Actor::random(), &Actor::random(), &policy(&policy_text(ep, factory, token))).await.expect("grant");
    let sender_out = chain.call(factory, getAddressCall { owner: g.session, salt: U256::ZERO }.abi_encode()).await;
    let sender = getAddressCall::abi_decode_returns(&sender_out).unwrap();
    chain.send(Some(token), transferCall { to: sender, amount: tusd(1000) }.abi_encode(), U256::ZERO).await;
    chain.send(Some(ep), depositToCall { account: sender }.abi_encode(), U256::from(10u64.pow(18))).await;

    // 1. Deploy the account through its factory and transfer 60 TUSD, signed over JSON-RPC.
    let mut op = base_op(ep, sender, encode::simple_execute(token, U256::ZERO, xfer(RECIPIENT, tusd(60))));
    op.factory = Some(factory);
    op.factory_data = createAccountCall { owner: g.session, salt: U256::ZERO }.abi_encode().into();
    let payload = SignPayload::UserOperation(op.clone());
    let rpc_op = json!({
        "sender": op.sender, "nonce": "0x0", "factory": factory, "factoryData": op.factory_data,
        "callData": op.call_data, "callGasLimit": format!("{:#x}", op.call_gas_limit),
        "verificationGasLimit": format!("{:#x}", op.verification_gas_limit),
        "preVerificationGas": format!("{:#x}", op.pre_verification_gas),
        "maxFeePerGas": format!("{:#x}", op.max_fee_per_gas),
        "maxPriorityFeePerGas": format!("{:#x}", op.max_priority_fee_per_gas),
        "signature": "0x"
    });
    let v = s.rpc_as(&g, &payload, "bridle_signUserOperation", json!([rpc_op, ep, "0x7a69"])).await;
    assert!(v.get("error").is_none(), "{v}");
    let sig: Bytes = serde_json::from_value(v["result"]["signature"].clone()).unwrap();
    let hash: B256 = serde_json::from_value(v["result"]["userOpHash"].clone()).unwrap();
    assert_eq!(hash, chain.user_op_hash(ep, packed(&op, Bytes::new())).await, "enclave hash = EntryPoint hash");
    // What the key signed is toEthSignedMessageHash(userOpHash), as SimpleAccount v0.7 checks.
    let recovered =
        alloy_primitives::Signature::from_raw(&sig).unwrap().recover_address_from_msg(hash.as_slice()).unwrap();
    assert_eq!(recovered, g.session);
    assert!(handle_ops(&chain, ep, &op, sig, hash).await, "the user operation's execution failed");
    assert_eq!(chain.token_balance(token, RECIPIENT).await, tusd(60));
    assert_eq!(chain.token_balance(token, sender).await, tusd(940));
    let owner_out = chain.call(sender, ownerCall {}.abi_encode()).await;
    assert_eq!(
        ownerCall::abi_decode_returns(&owner_out).unwrap(),
        g.session,
        "the account is owned by the session key"
    );

    // 2. A batch whose second call breaks the policy: refused as a whole, never signed.
    let mut bad = base_op(
        ep,
        sender,
        encode::simple_execute_batch(&[
            (token, U256::ZERO, xfer(RECIPIENT, tusd(10))),
            (ATTACKER, U256::from(10u64.pow(17)), Bytes::new()),
        ]),
    );
    bad.nonce = U256::from(1);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(bad.clone())).await;
    assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().starts_with("call 1:"), "{v}");
    assert!(v.get("signature").is_none());
    // Over the cap together (60 already spent + 10 + 35 > 100): refused, nothing charged.
    bad.call_data = encode::erc7579_batch(&[
        (token, U256::ZERO, xfer(RECIPIENT, tusd(10))),
        (token, U256::ZERO, xfer(RECIPIENT, tusd(35))),
    ]);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(bad.clone())).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    // The account's SimpleAccount does not decode ERC-7579, but Bridle's decoding is
    // independent of the account; unknown account functions are refused.
    bad.call_data = Bytes::from_static(&[0x12, 0x34, 0x56, 0x78]);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(bad.clone())).await;
    assert_eq!((c, code(&v)), (403, "selector_not_allowed"), "{v}");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    let spent: U256 = serde_json::from_value(st["session"]["caps"][0]["spent"].clone()).unwrap();
    assert_eq!(spent, tusd(60), "denied requests charge nothing: {st}");
    assert_eq!(st["session"]["uses"], 1);

    // 3. A valid batch (10 + 20), signed over REST, executes.
    let mut ok = base_op(
        ep,
        sender,
        encode::simple_execute_batch(&[
            (token, U256::ZERO, xfer(RECIPIENT, tusd(10))),
            (token, U256::ZERO, xfer(RECIPIENT, tusd(20))),
        ]),
    );
    ok.nonce = U256::from(1);
    ok.verification_gas_limit = 150_000;
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(ok.clone())).await;
    assert_eq!(c, 200, "{v}");
    let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
    let hash: B256 = serde_json::from_value(v["digest"].clone()).unwrap();
    assert!(v["raw_transaction"].is_null());
    assert!(handle_ops(&chain, ep, &ok, sig, hash).await);
    assert_eq!(chain.token_balance(token, RECIPIENT).await, tusd(90));
    let nonce_out = chain.call(ep, getNonceCall { sender, key: Default::default() }.abi_encode()).await;
    assert_eq!(getNonceCall::abi_decode_returns(&nonce_out).unwrap(), U256::from(2));
}
