//! A user operation's gas paid to the agent (a review of 2026-12-07, user-operation
//! encodings): a user operation's gas is paid by its smart account to the EntryPoint and
//! from there to the `beneficiary` that `handleOps` names — anyone may call `handleOps`, so
//! the agent can be its own bundler. `preVerificationGas` is paid in full whatever is used,
//! at the operation's own gas price, not at the bundle transaction's. Bridle charged a user
//! operation's gas only to the gas-cost ledger (to native caps only under
//! `gas.count_in_native`), as for a transaction, where the gas goes to the block producer;
//! here it went to the agent (five operations paid it 88 times the daily native cap). A user
//! operation without a paymaster now charges its maximum gas cost to the native coin's line
//! (RULES §3). Real enclave and host, the real EntryPoint v0.7 and SimpleAccount on anvil.
//!
//! Needs `npm ci --prefix tests/fixtures/userop` (anvil, @account-abstraction/contracts).

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
    function handleOps(PackedUserOperation[] ops, address beneficiary);
    event UserOperationEvent(bytes32 indexed userOpHash, address indexed sender, address indexed paymaster, uint256 nonce, bool success, uint256 actualGasCost, uint256 actualGasUsed);
    function createAccount(address owner, uint256 salt) returns (address);
    function getAddress(address owner, uint256 salt) returns (address);
    contract Factory { constructor(address entryPoint); }
    contract PresetToken { constructor(string name, string symbol, uint256 initialSupply, address owner); }
    function balanceOf(address who) returns (uint256);
    function transfer(address to, uint256 amount) returns (bool);
}

const RECIPIENT: Address = address!("00000000000000000000000000000000000b0b00");
/// The agent's own address, named as `handleOps`' beneficiary.
const AGENT_BUNDLER: Address = address!("0000000000000000000000000000000000bad000");

fn repo() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bytecode(rel: &str) -> Vec<u8> {
    let p = repo().join("tests/fixtures/userop/node_modules").join(rel);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()
}

fn anvil_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDLE_ANVIL") {
        return PathBuf::from(p);
    }
    repo().join("tests/fixtures/userop/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

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

    async fn balance(&self, who: Address) -> U256 {
        let v = self.rpc("eth_getBalance", json!([who, "latest"])).await;
        U256::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

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

/// Submit through handleOps with `beneficiary`; return (success, actualGasCost).
async fn handle_ops(
    chain: &Chain,
    ep: Address,
    op: &UserOperationRequest,
    sig: Bytes,
    beneficiary: Address,
) -> (bool, U256) {
    let data = handleOpsCall { ops: vec![packed(op, sig)], beneficiary }.abi_encode();
    let r = chain.send(Some(ep), data, U256::ZERO).await;
    for l in r["logs"].as_array().cloned().unwrap_or_default() {
        let topics: Vec<B256> = serde_json::from_value(l["topics"].clone()).unwrap();
        if topics.first() == Some(&UserOperationEvent::SIGNATURE_HASH) {
            let data: Bytes = serde_json::from_value(l["data"].clone()).unwrap();
            let ev = UserOperationEvent::decode_raw_log(topics.iter().copied(), &data).unwrap();
            return (ev.success, ev.actualGasCost);
        }
    }
    panic!("no UserOperationEvent in {r}");
}

fn tusd(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

#[tokio::test]
async fn an_agent_bundling_its_own_user_operations_is_paid_no_more_than_the_native_cap() {
    let chain = Chain::start().await;
    let ep = chain.deploy(bytecode("@account-abstraction/contracts/artifacts/EntryPoint.json")).await;
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

    // A careful owner: 100 TUSD a day, 0.001 ETH a day, fee and gas-limit caps.
    let text = format!(
        r#"
name = "zz-gas-to-bundler"
chains = [31337]
valid_for = "1h"
[tokens]
TUSD = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "TUSD"
functions = ["transfer(address,uint256)"]
[[calls]]
target = "{RECIPIENT}"
functions = ["receive()"]
[[limits]]
max = "100 TUSD"
per = "day"
[[limits]]
max = "0.001 ETH"
per = "day"
[gas]
max_fee_per_gas = "10 gwei"
max_priority_fee_per_gas = "10 gwei"
max_gas_limit = 2000000
[user_operations]
entry_points = ["{ep}"]
"#
    );
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    // The owner's SimpleAccount, the session key as its signer, holding 1 ETH and 1000 TUSD.
    chain.send(Some(factory), createAccountCall { owner: g.session, salt: U256::ZERO }.abi_encode(), U256::ZERO).await;
    let sender = getAddressCall::abi_decode_returns(
        &chain.call(factory, getAddressCall { owner: g.session, salt: U256::ZERO }.abi_encode()).await,
    )
    .unwrap();
    chain.send(Some(sender), vec![], U256::from(10u64.pow(18))).await;
    chain.send(Some(token), transferCall { to: sender, amount: tusd(1000) }.abi_encode(), U256::ZERO).await;

    // The native cap holds for value: 0.002 ETH to RECIPIENT is refused.
    let mut op = UserOperationRequest {
        chain_id: 31337,
        entry_point: ep,
        entry_point_version: None,
        sender,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute(RECIPIENT, U256::from(2_000_000_000_000_000u64), Bytes::new()),
        call_gas_limit: 100_000,
        verification_gas_limit: 150_000,
        pre_verification_gas: U256::from(1_700_000u64),
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 10_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    };
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");

    // An operation that moves 1 TUSD, with preVerificationGas inflated to the policy's
    // gas-limit cap (≈ 0.0195 ETH of prefund): refused by the native cap.
    op.call_data =
        encode::simple_execute(token, U256::ZERO, transferCall { to: RECIPIENT, amount: tusd(1) }.abi_encode().into());
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "spend_cap", Some("limits[1]")), "{v}");
    // Modest operations (300 000 gas at 1 gwei: 0.0003 ETH of prefund each), bundled by the
    // agent itself: signed while their prefunds fit the day's 0.001 ETH, then refused.
    op.pre_verification_gas = U256::from(50_000u64);
    op.max_fee_per_gas = 1_000_000_000;
    op.max_priority_fee_per_gas = 1_000_000_000;
    let before = chain.balance(AGENT_BUNDLER).await;
    let account_before = chain.balance(sender).await;
    let mut paid = U256::ZERO;
    let mut signed = 0;
    for n in 0..5u64 {
        op.nonce = U256::from(n);
        let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
        if c != 200 {
            assert_eq!((code(&v), v["error"]["rule"].as_str()), ("spend_cap", Some("limits[1]")), "{v}");
            break;
        }
        signed += 1;
        let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
        let (ok, cost) = handle_ops(&chain, ep, &op, sig, AGENT_BUNDLER).await;
        assert!(ok, "execution failed");
        paid += cost;
    }
    assert_eq!(signed, 3, "three prefunds of 0.0003 ETH fit 0.001 ETH a day, a fourth does not");
    let got = chain.balance(AGENT_BUNDLER).await - before;
    let lost = account_before - chain.balance(sender).await;
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    eprintln!("agent (beneficiary) received {got} wei; the account lost {lost} wei; actualGasCost sum {paid}");
    eprintln!("session caps: {}", st["session"]["caps"]);
    assert_eq!(chain.token_balance_of(token, RECIPIENT).await, tusd(3));
    // The policy's native cap is 0.001 ETH a day: the agent, as its own bundler, got at most that.
    let cap = U256::from(1_000_000_000_000_000u64);
    assert!(got <= cap, "the agent was paid {got} wei of the account's ETH ({lost} wei left it) under 0.001 ETH a day");
}

/// Without gas caps (none is required; the policy has a native cap): one operation moving
/// 1 TUSD paid the agent-bundler 0.9 ETH of the account's 1 ETH; now refused by the native cap.
#[tokio::test]
async fn one_user_operation_without_gas_caps_cannot_pay_the_agent_the_accounts_balance() {
    let chain = Chain::start().await;
    let ep = chain.deploy(bytecode("@account-abstraction/contracts/artifacts/EntryPoint.json")).await;
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
    let text = format!(
        r#"
name = "zz-gas-to-bundler-2"
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
[[limits]]
max = "0.001 ETH"
per = "day"
[user_operations]
entry_points = ["{ep}"]
"#
    );
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    chain.send(Some(factory), createAccountCall { owner: g.session, salt: U256::ZERO }.abi_encode(), U256::ZERO).await;
    let sender = getAddressCall::abi_decode_returns(
        &chain.call(factory, getAddressCall { owner: g.session, salt: U256::ZERO }.abi_encode()).await,
    )
    .unwrap();
    chain.send(Some(sender), vec![], U256::from(10u64.pow(18))).await;
    chain.send(Some(token), transferCall { to: sender, amount: tusd(1000) }.abi_encode(), U256::ZERO).await;
    let op = UserOperationRequest {
        chain_id: 31337,
        entry_point: ep,
        entry_point_version: None,
        sender,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute(
            token,
            U256::ZERO,
            transferCall { to: RECIPIENT, amount: tusd(1) }.abi_encode().into(),
        ),
        call_gas_limit: 100_000,
        verification_gas_limit: 150_000,
        pre_verification_gas: U256::from(90_000_000u64),
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 10_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    };
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "spend_cap", Some("limits[1]")), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap_or("").contains("asking 0.9025 ETH"), "{v}");
}

impl Chain {
    async fn token_balance_of(&self, token: Address, who: Address) -> U256 {
        balanceOfCall::abi_decode_returns(&self.call(token, balanceOfCall { who }.abi_encode()).await).unwrap()
    }
}
