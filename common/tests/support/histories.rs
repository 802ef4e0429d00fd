//! What the brute forces of on-chain histories share (`exposure_histories.rs`,
//! `sweep_histories.rs`): USDC approvals, increases and transfers from the session's own
//! address, the writes the chain applies, and a small deterministic generator.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};

pub const T0: u64 = 1_800_000_000;
pub const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
pub const CEILING: u64 = 100;

pub const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
pub const INCREASE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];
pub const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// Spender `i`.
pub fn spender(i: u8) -> Address {
    Address::with_last_byte(0x40 + i)
}

/// `n` USDC in base units.
pub fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// `selector(who, amount)`.
pub fn call(selector: [u8; 4], who: Address, amount: U256) -> Vec<u8> {
    let mut data = selector.to_vec();
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(who.as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data
}

/// A transaction to USDC at `nonce`.
pub fn tx(nonce: u64, data: Vec<u8>, gas_limit: u64, fee: u128) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: 1,
        gas_limit,
        to: Some(USDC),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

/// One write, as the chain applies it (USDC units), to spender `k`'s allowance.
#[derive(Debug, Clone, Copy)]
pub enum W {
    Set(u8, u64),
    Add(u8, u64),
}

/// The allowances `v` after `w`.
pub fn apply(v: &mut [u64; 3], w: &[W]) {
    for w in w {
        match *w {
            W::Set(k, a) => v[k as usize] = a,
            W::Add(k, a) => v[k as usize] += a,
        }
    }
}

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
