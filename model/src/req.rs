//! What a request asks to sign: the transactions (EIP-1559 with its access list, legacy,
//! and EIP-7702, which is always refused), redemptions, permits and user operations.

use alloy_primitives::{Address, Bytes, B256, U256};

/// An EIP-2930 access list as asked for: each address with its storage keys, in order,
/// repeats included.
pub type AccessList = Vec<(Address, Vec<B256>)>;

/// What an access list costs up front (RULES §6: 2 400 per address, 1 900 per storage key).
/// Every entry counts as listed: an address listed twice costs twice, and so does a key
/// (AMBIGUITIES 28).
pub fn access_list_cost(list: &[(Address, Vec<B256>)]) -> u128 {
    list.iter().map(|(_, keys)| 2_400 + 1_900 * keys.len() as u128).sum()
}

/// One entry of a redemption: its root delegator (`None`: an empty permission context) and
/// the calls `(target, value, data)` it runs.
pub type RedeemEntry = (Option<Address>, Vec<(Address, U256, Bytes)>);

/// What a request asks to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Req {
    /// An EIP-1559 transaction from the session's own address (lane = (chain, session)).
    Tx {
        chain_id: u64,
        nonce: u64,
        to: Option<Address>,
        value: U256,
        data: Bytes,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
        /// Its EIP-2930 access list (empty: none). RULES §6: what it costs up front is not
        /// left for the call.
        access_list: AccessList,
    },
    /// A legacy (type 0, EIP-155) transaction from the session's own address: RULES §4,
    /// the gas price is both fees (so its gas cost is `gas_limit × gas_price`); everything
    /// else as for [`Req::Tx`], in the same lane. It has no access list.
    Legacy { chain_id: u64, nonce: u64, to: Option<Address>, value: U256, data: Bytes, gas_limit: u64, gas_price: u128 },
    /// An EIP-7702 (type 4) transaction with its authorizations `(chain id, address,
    /// nonce)`: never signed (README: `authorization_denied`; AMBIGUITIES 29).
    Eip7702 { chain_id: u64, authorizations: Vec<(U256, Address, u64)> },
    /// An ERC-7710 redemption (RULES §5b): a transaction from the session to `manager`
    /// calling `redeemDelegations`; each entry's calls run as its root delegator (`None`:
    /// an empty permission context, the session itself).
    Redeem {
        chain_id: u64,
        nonce: u64,
        manager: Address,
        entries: Vec<RedeemEntry>,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    },
    /// An EIP-2612 permit signed by the session (owner = the session's address).
    Permit { chain_id: u64, token: Address, spender: Address, value: U256, deadline: u64 },
    /// A Permit2 `PermitSingle` (`batch` false, one detail) or `PermitBatch` signed by the
    /// session for the Permit2 contract `contract`: each detail `(token, amount,
    /// expiration)`.
    Permit2 {
        chain_id: u64,
        contract: Address,
        spender: Address,
        details: Vec<(Address, U256, u64)>,
        sig_deadline: u64,
        batch: bool,
    },
    /// A Permit2 `PermitTransferFrom` (`batch` false, one token) or
    /// `PermitBatchTransferFrom`: each permitted `(token, amount)`.
    Permit2Transfer {
        chain_id: u64,
        contract: Address,
        spender: Address,
        permitted: Vec<(Address, U256)>,
        deadline: u64,
        batch: bool,
    },
    /// An ERC-4337 v0.7 user operation whose callData is a batch of `calls`; `gas` is the
    /// sum of all its gas limits.
    UserOp {
        chain_id: u64,
        entry_point: Address,
        sender: Address,
        nonce: U256,
        calls: Vec<(Address, U256, Bytes)>,
        gas: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    },
}
