//! An ERC-7579 account on anvil: ZeroDev Kernel v3.1 (kernel.advanced.v0.3.1) and its
//! KernelFactory, creation bytecode as `@rhinestone/modulekit@0.5.9` publishes it
//! (tests/fixtures/erc7579/KernelV3_1.hex, KernelFactoryV3_1.hex; provenance and the
//! re-extraction script there), with our ECDSA validator module as its root validator
//! (tests/fixtures/erc7579/EcdsaValidator.sol, compiled by solc-js: EcdsaValidator.json).
//!
//! Kernel's runtime code is over EIP-170's 24 576 bytes: start anvil with
//! [`KERNEL_ANVIL_FLAGS`].

use crate::aa::{depositToCall, EntryPoint};
use crate::{repo_root, Anvil};
use alloy_primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolValue};

/// anvil flags for Kernel (its implementation is 28 581 bytes of runtime code).
pub const KERNEL_ANVIL_FLAGS: &[&str] = &["--disable-code-size-limit"];

sol! {
    /// Kernel v3.1 `initialize` (`ValidationId` is `bytes21`: type ‖ validator; `IHook`
    /// address(0) installs no hook).
    function initialize(bytes21 _rootValidator, address hook, bytes validatorData, bytes hookData, bytes[] initConfig);
    /// KernelFactory v3.1: the account is an ERC-1967 proxy at a CREATE2 address of
    /// keccak256(data ‖ salt), initialised with `data`.
    function createAccount(bytes data, bytes32 salt) returns (address);
    function getAddress(bytes data, bytes32 salt) returns (address);
    /// The validator's owner of `account`.
    function owner(address account) returns (address);
    /// Kernel: its root validation id.
    function rootValidator() returns (bytes21);
}

/// Kernel's validation type of a plain validator module (`VALIDATION_TYPE_VALIDATOR`).
const VALIDATION_TYPE_VALIDATOR: u8 = 0x01;

/// A fixture's bytes, checked against the sha256 its provenance (tests/fixtures/erc7579
/// README.md) pins.
fn fixture_hex(name: &str, sha256: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let p = repo_root().join("tests/fixtures/erc7579").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let bytes = hex::decode(text.trim().trim_start_matches("0x")).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha256, "{}: not the pinned bytecode", p.display());
    bytes
}

/// sha256 of Kernel v3.1's creation bytecode (`KERNEL_BYTECODE`, modulekit 0.5.9).
const KERNEL_SHA256: &str = "def9c0d92344b9e1f0d3359cb9eab2ca6e01b30c84bda7efc37365f00f584d2d";
/// sha256 of its KernelFactory's (`KERNEL_FACTORY_BYTECODE`).
const KERNEL_FACTORY_SHA256: &str = "cdb9647a6ed0aa0f9d4e55aa28903eb125450d937cca5cadc2a1b2d367ed3814";

/// Kernel v3.1 for one entry point: implementation, factory and the ECDSA validator.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    pub implementation: Address,
    pub factory: Address,
    pub validator: Address,
}

impl Kernel {
    /// Deploy Kernel's implementation bound to `ep` (its constructor argument), a
    /// KernelFactory for it and the validator.
    pub async fn deploy(anvil: &Anvil, ep: &EntryPoint) -> Kernel {
        let mut code = fixture_hex("KernelV3_1.hex", KERNEL_SHA256);
        code.extend(ep.address.abi_encode());
        let implementation = anvil.deploy(code).await;
        assert!(
            anvil.code(implementation).await.len() > 24_576,
            "Kernel not deployed: start anvil with {KERNEL_ANVIL_FLAGS:?}"
        );
        let mut code = fixture_hex("KernelFactoryV3_1.hex", KERNEL_FACTORY_SHA256);
        code.extend(implementation.abi_encode());
        let factory = anvil.deploy(code).await;
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("tests/fixtures/erc7579/EcdsaValidator.json")).unwrap(),
        )
        .unwrap();
        let validator =
            anvil.deploy(hex::decode(v["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap()).await;
        Kernel { implementation, factory, validator }
    }

    /// The factory's `data` for an account whose root validator is ours owned by `owner`.
    pub fn init_data(&self, owner: Address) -> Bytes {
        let mut root = [0u8; 21];
        root[0] = VALIDATION_TYPE_VALIDATOR;
        root[1..].copy_from_slice(self.validator.as_slice());
        initializeCall {
            _rootValidator: FixedBytes(root),
            hook: Address::ZERO,
            validatorData: Bytes::copy_from_slice(owner.as_slice()),
            hookData: Bytes::new(),
            initConfig: vec![],
        }
        .abi_encode()
        .into()
    }

    /// `createAccount(init_data(owner), 0)`: the factory data of an operation deploying the
    /// account.
    pub fn factory_data(&self, owner: Address) -> Bytes {
        createAccountCall { data: self.init_data(owner), salt: B256::ZERO }.abi_encode().into()
    }

    /// The counterfactual account of `owner` (salt 0), funded with a deposit of 1 ETH at `ep`.
    pub async fn account(&self, anvil: &Anvil, ep: &EntryPoint, owner: Address) -> Address {
        let out = anvil
            .view(self.factory, getAddressCall { data: self.init_data(owner), salt: B256::ZERO }.abi_encode())
            .await;
        let account = getAddressCall::abi_decode_returns(&out).unwrap();
        let deposit = depositToCall { account }.abi_encode();
        anvil.call_from_dev(ep.address, deposit, U256::from(10u64.pow(18))).await;
        account
    }

    /// The owner our validator holds for `account` (0 before it is installed).
    pub async fn owner_of(&self, anvil: &Anvil, account: Address) -> Address {
        ownerCall::abi_decode_returns(&anvil.view(self.validator, ownerCall { account }.abi_encode()).await).unwrap()
    }

    /// The account's root validation id (type ‖ validator).
    pub async fn root_validator(&self, anvil: &Anvil, account: Address) -> FixedBytes<21> {
        rootValidatorCall::abi_decode_returns(&anvil.view(account, rootValidatorCall {}.abi_encode()).await).unwrap()
    }
}
