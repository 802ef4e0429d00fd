//! Shared builders for the model's own tests: policies built directly as `Policy` values.
#![allow(dead_code)]

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::period::Period;
use bridle_common::policy::doc::*;
use bridle_model::abi::{addr_word, encode_call};
use bridle_model::{Model, Req, Verdict};

pub const OWNER: Address = address!("00000000000000000000000000000000000000aa");
pub const ACCOUNT: Address = address!("00000000000000000000000000000000000000bb");
pub const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
pub const DAI: Address = address!("50c5725949a6f0c72e6c4a641f24049a917db0cb");
pub const A: Address = address!("000000000000000000000000000000000000000a");
pub const B: Address = address!("000000000000000000000000000000000000000b");
pub const DEAD: Address = address!("000000000000000000000000000000000000dEaD");
pub const EP: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");
pub const SMART: Address = address!("0000000000000000000000000000000000005a5a");
pub const CHAIN: u64 = 31337;

/// 2024-01-31 10:00:00 UTC.
pub fn t0() -> u64 {
    bridle_model::time::days_from_civil(2024, 1, 31) as u64 * 86_400 + 36_000
}

/// n USDC in base units (6 decimals).
pub fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// n USD with 18 decimals.
pub fn usd(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

pub fn token(symbol: &str, address: Address, decimals: u8, chain_id: Option<u64>) -> Token {
    Token { symbol: symbol.into(), address, decimals, chain_id }
}

pub fn calls(target: Option<Address>, sigs: &[&str]) -> CallRule {
    CallRule {
        target,
        functions: sigs.iter().map(|s| FunctionRule { signature: (*s).into(), args: Vec::new() }).collect(),
    }
}

pub fn limit(asset: Asset, period: Period, max: U256) -> SpendLimit {
    SpendLimit { asset, period, max }
}

pub fn usdc_asset() -> Asset {
    Asset::Token("USDC".into())
}

/// A 10-day session on 31337 and 8453 with USDC listed and `transfer`/`approve`/
/// `increaseAllowance` allowed on it; nothing else.
pub fn base() -> Policy {
    Policy {
        version: 1,
        name: "test".into(),
        chains: vec![CHAIN, 8453],
        valid_after: None,
        valid_until: Some(t0() + 100 * 86_400),
        max_duration: Some(200 * 86_400),
        quota: None,
        tokens: vec![token("USDC", USDC, 6, None)],
        limits: Vec::new(),
        streams: Vec::new(),
        max_value_per_call: None,
        calls: vec![calls(
            Some(USDC),
            &["transfer(address,uint256)", "approve(address,uint256)", "increaseAllowance(address,uint256)"],
        )],
        recipients: None,
        rate_limits: Vec::new(),
        gas: Default::default(),
        approvals: Default::default(),
        user_operations: Default::default(),
        delegations: Default::default(),
        typed_data: Vec::new(),
        permits: Vec::new(),
        messages: Vec::new(),
        prices: Vec::new(),
        exposure_ceiling: None,
        owner_exposure_ceiling: None,
        agent_exposure_ceiling: None,
        escalate: None,
        trip_wire: None,
        release_signers: vec![],
        conformance: None,
    }
}

pub fn model(p: &Policy) -> Model {
    Model::new(p, t0(), OWNER, ACCOUNT).expect("supported policy")
}

pub fn transfer(to: Address, amount: U256) -> Bytes {
    encode_call("transfer(address,uint256)", &[addr_word(to), amount]).into()
}

pub fn approve(spender: Address, amount: U256) -> Bytes {
    encode_call("approve(address,uint256)", &[addr_word(spender), amount]).into()
}

pub fn increase(spender: Address, amount: U256) -> Bytes {
    encode_call("increaseAllowance(address,uint256)", &[addr_word(spender), amount]).into()
}

pub fn tx_on(chain_id: u64, nonce: u64, to: Address, data: Bytes) -> Req {
    Req::Tx {
        chain_id,
        nonce,
        to: Some(to),
        value: U256::ZERO,
        data,
        gas_limit: 100_000,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
        access_list: vec![],
    }
}

pub fn tx(nonce: u64, to: Address, data: Bytes) -> Req {
    tx_on(CHAIN, nonce, to, data)
}

pub fn userop(nonce: u64, calls: Vec<(Address, U256, Bytes)>) -> Req {
    Req::UserOp {
        chain_id: CHAIN,
        entry_point: EP,
        sender: SMART,
        nonce: U256::from(nonce),
        calls,
        gas: 300_000,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000,
    }
}

pub fn denied_with(v: &Verdict, code: &str) -> bool {
    matches!(v, Verdict::Denied(codes) if codes.contains(&code))
}

#[track_caller]
pub fn assert_denied(v: Verdict, code: &str) {
    assert!(denied_with(&v, code), "expected a denial with {code}, got {v:?}");
}
