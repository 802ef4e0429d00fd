//! Account abstraction on anvil, with the published contracts: EntryPoint v0.7 and
//! SimpleAccount v0.7 (`@account-abstraction/contracts@0.7.0`), EntryPoint v0.8 and
//! SimpleAccount v0.8 (`@account-abstraction/contracts@0.8.0`, installed as
//! `account-abstraction-v08`), and MetaMask's Delegation Framework (`@metamask/delegation-abis`:
//! DelegationManager, HybridDeleGator — an ERC-4337 v0.7 account with ERC-7579 `execute`).
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`.

use crate::{repo_root, Anvil};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolConstructor, SolEvent};
use bridle_common::userop::{EntryPointVersion, UserOperationRequest};
use serde_json::{json, Value};
use std::path::PathBuf;

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
    contract SimpleAccountFactory { constructor(address entryPoint); }

    function allowance(address owner, address spender) returns (uint256);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function owner() returns (address);
}

/// `tests/fixtures/userop/node_modules`, checked.
pub fn fixtures() -> PathBuf {
    let nm = repo_root().join("tests/fixtures/userop/node_modules");
    for p in [
        "@account-abstraction/contracts/artifacts/EntryPoint.json",
        "account-abstraction-v08/artifacts/EntryPoint.json",
        "@metamask/delegation-abis/dist/bytecode/DelegationManager.cjs",
        "@openzeppelin/contracts/build/contracts",
    ] {
        assert!(nm.join(p).exists(), "{} missing: run `npm ci --prefix tests/fixtures/userop`", nm.join(p).display());
    }
    nm
}

/// The creation bytecode of a Hardhat/Truffle JSON artifact under the fixtures.
pub fn artifact_bytecode(rel: &str) -> Vec<u8> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join(rel)).unwrap()).unwrap();
    hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()
}

/// The creation bytecode of a Delegation Framework contract, as `@metamask/delegation-abis`
/// publishes it (`dist/bytecode/NAME.cjs`: one `0x…` string).
pub fn metamask_bytecode(name: &str) -> Vec<u8> {
    let p = fixtures().join(format!("@metamask/delegation-abis/dist/bytecode/{name}.cjs"));
    let text = std::fs::read_to_string(&p).unwrap();
    let start = text.find("\"0x").or_else(|| text.find("'0x")).unwrap_or_else(|| panic!("no bytecode in {p:?}")) + 3;
    let end = start + text[start..].find(|c: char| !c.is_ascii_hexdigit()).unwrap();
    hex::decode(&text[start..end]).unwrap()
}

impl Anvil {
    /// Deploy `code` from the dev account; the contract's address.
    pub async fn deploy(&self, code: Vec<u8>) -> Address {
        let r = self.send(json!({"from": self.deployer().await, "data": Bytes::from(code), "gas": "0x1c9c380"})).await;
        serde_json::from_value(r["contractAddress"].clone()).unwrap()
    }

    /// Call `to` from the dev account (status 1 asserted); the receipt.
    pub async fn call_from_dev(&self, to: Address, data: Vec<u8>, value: U256) -> Value {
        let tx = json!({"from": self.deployer().await, "to": to, "data": Bytes::from(data),
                        "value": format!("{value:#x}"), "gas": "0x1c9c380"});
        self.send(tx).await
    }

    /// `eth_call` at the latest block.
    pub async fn view(&self, to: Address, data: Vec<u8>) -> Vec<u8> {
        let out = self.rpc("eth_call", json!([{"to": to, "data": Bytes::from(data)}, "latest"])).await;
        hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()
    }

    /// The code at `who` (an EIP-7702 designator for a delegated EOA).
    pub async fn code(&self, who: Address) -> Vec<u8> {
        let out = self.rpc("eth_getCode", json!([who, "latest"])).await;
        hex::decode(out.as_str().unwrap().trim_start_matches("0x")).unwrap()
    }

    /// An ERC-20 allowance on chain.
    pub async fn allowance(&self, token: Address, owner: Address, spender: Address) -> U256 {
        allowanceCall::abi_decode_returns(&self.view(token, allowanceCall { owner, spender }.abi_encode()).await)
            .unwrap()
    }

    /// Send a raw signed transaction and wait for its receipt.
    pub async fn send_raw(&self, raw: impl serde::Serialize) -> Value {
        let hash = self.rpc("eth_sendRawTransaction", json!([raw])).await;
        self.receipt(&hash).await
    }
}

/// An entry point and a SimpleAccount factory of one version.
#[derive(Debug, Clone, Copy)]
pub struct EntryPoint {
    pub version: EntryPointVersion,
    pub address: Address,
    pub factory: Address,
}

impl EntryPoint {
    /// Deploy EntryPoint `version` and its SimpleAccountFactory.
    pub async fn deploy(anvil: &Anvil, version: EntryPointVersion) -> EntryPoint {
        let dir = match version {
            EntryPointVersion::V07 => "@account-abstraction/contracts",
            EntryPointVersion::V08 => "account-abstraction-v08",
        };
        let address = anvil.deploy(artifact_bytecode(&format!("{dir}/artifacts/EntryPoint.json"))).await;
        let mut code = artifact_bytecode(&format!("{dir}/artifacts/SimpleAccountFactory.json"));
        code.extend(SimpleAccountFactory::constructorCall { entryPoint: address }.abi_encode());
        let factory = anvil.deploy(code).await;
        EntryPoint { version, address, factory }
    }

    /// The counterfactual SimpleAccount of `owner` (salt 0), funded with a deposit of 1 ETH.
    pub async fn simple_account(&self, anvil: &Anvil, owner: Address) -> Address {
        let out = anvil.view(self.factory, getAddressCall { owner, salt: U256::ZERO }.abi_encode()).await;
        let account = getAddressCall::abi_decode_returns(&out).unwrap();
        let deposit = depositToCall { account }.abi_encode();
        anvil.call_from_dev(self.address, deposit, U256::from(10u64.pow(18))).await;
        account
    }

    /// A user operation of this entry point (the version explicit when the address is not
    /// the canonical one), with generous gas within 10 gwei.
    pub fn op(&self, sender: Address, nonce: u64, call_data: Bytes) -> UserOperationRequest {
        UserOperationRequest {
            chain_id: 31337,
            entry_point: self.address,
            entry_point_version: Some(self.version),
            sender,
            nonce: U256::from(nonce),
            factory: None,
            factory_data: Bytes::new(),
            init_code: None,
            call_data,
            call_gas_limit: 300_000,
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

    /// `op` deploying `owner`'s SimpleAccount through the factory first.
    pub fn deploying(&self, mut op: UserOperationRequest, owner: Address) -> UserOperationRequest {
        op.factory = Some(self.factory);
        op.factory_data = createAccountCall { owner, salt: U256::ZERO }.abi_encode().into();
        op
    }

    /// `getUserOpHash` of the deployed entry point.
    pub async fn user_op_hash(&self, anvil: &Anvil, op: &UserOperationRequest) -> B256 {
        user_op_hash(anvil, self.address, op).await
    }

    /// The entry point's next nonce for `sender` (key 0).
    pub async fn nonce(&self, anvil: &Anvil, sender: Address) -> U256 {
        let out = anvil.view(self.address, getNonceCall { sender, key: Default::default() }.abi_encode()).await;
        getNonceCall::abi_decode_returns(&out).unwrap()
    }
}

/// Bridle's packed operation as the contract ABI's struct.
pub fn packed(op: &UserOperationRequest, signature: Bytes) -> PackedUserOperation {
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

/// `getUserOpHash` of the entry point at `ep`.
pub async fn user_op_hash(anvil: &Anvil, ep: Address, op: &UserOperationRequest) -> B256 {
    let out = anvil.view(ep, getUserOpHashCall { userOp: packed(op, Bytes::new()) }.abi_encode()).await;
    getUserOpHashCall::abi_decode_returns(&out).unwrap()
}

/// Submit `op` with `signature` through `handleOps` from the dev account; whether the
/// operation's execution succeeded (its `UserOperationEvent`, whose hash must be `want`).
pub async fn handle_ops(anvil: &Anvil, ep: Address, op: &UserOperationRequest, signature: Bytes, want: B256) -> bool {
    let dev = anvil.deployer().await;
    handle_ops_paying(anvil, ep, op, signature, want, dev).await.0
}

/// [`handle_ops`] naming `beneficiary` (whoever bundles may name itself); whether the
/// execution succeeded, and the gas cost the account paid (`actualGasCost`).
pub async fn handle_ops_paying(
    anvil: &Anvil,
    ep: Address,
    op: &UserOperationRequest,
    signature: Bytes,
    want: B256,
    beneficiary: Address,
) -> (bool, U256) {
    let data = handleOpsCall { ops: vec![packed(op, signature)], beneficiary }.abi_encode();
    let r = anvil.call_from_dev(ep, data, U256::ZERO).await;
    for l in r["logs"].as_array().cloned().unwrap_or_default() {
        let topics: Vec<B256> = serde_json::from_value(l["topics"].clone()).unwrap();
        if topics.first() == Some(&UserOperationEvent::SIGNATURE_HASH) {
            assert_eq!(topics[1], want, "UserOperationEvent for another hash");
            let data: Bytes = serde_json::from_value(l["data"].clone()).unwrap();
            let e = UserOperationEvent::decode_raw_log(topics.iter().copied(), &data).unwrap();
            return (e.success, e.actualGasCost);
        }
    }
    panic!("no UserOperationEvent in {r}");
}

/// ERC-20 calldata.
pub fn approve_data(spender: Address, amount: U256) -> Bytes {
    approveCall { spender, amount }.abi_encode().into()
}

pub fn increase_allowance_data(spender: Address, added: U256) -> Bytes {
    increaseAllowanceCall { spender, added }.abi_encode().into()
}

pub fn transfer_data(to: Address, amount: U256) -> Bytes {
    transferCall { to, amount }.abi_encode().into()
}

pub fn transfer_from_data(from: Address, to: Address, amount: U256) -> Bytes {
    transferFromCall { from, to, amount }.abi_encode().into()
}
