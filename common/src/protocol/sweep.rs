//! The revocation sweep's messages (R-APP-6): terms per chain and per smart account, the
//! signed transactions and user operations, what was skipped.

use super::OwnerAuth;
use crate::allowance::AllowanceKind;
use crate::receipt::Receipt;
use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

/// The revocation sweep (R-APP-6). The host (or anyone) may ask for the revocation of
/// expired approvals — and of every outstanding approval of a session that is revoked,
/// suspended or over — since a sweep only ever revokes; fees must then be within the
/// policy's gas caps. With the owner's signature (action `sweep`, subject
/// [`Sweep::terms_digest`]) every outstanding or already swept approval is (re)signed with
/// the owner's fees; a revoked session's key is destroyed afterwards only if no approval
/// may be outstanding in any history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub session: Address,
    /// Nonce and fees per chain; approvals on a chain without terms are skipped.
    pub terms: Vec<SweepTerms>,
    /// Per smart account: a user operation from it revoking the approvals it granted in
    /// user operations this session signed (issue 14: AG-212 4.6 for smart accounts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountSweepTerms>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<OwnerAuth>,
}

/// How a smart account encodes a batch of calls in its `callData`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountFormat {
    /// SimpleAccount v0.7 `executeBatch(address[] dest, uint256[] value, bytes[] func)`.
    SimpleAccount,
    /// SimpleAccount v0.8 (`BaseAccount`) `executeBatch(Call[] calls)`.
    SimpleAccountV08,
    /// ERC-7579 `execute(mode = batch, abi.encode(Execution[]))`.
    Erc7579,
}

/// A smart account's sweep: the user operation's nonce, gas and fees (the host's, or the
/// owner's when signed), through `entry_point` on `chain_id`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSweepTerms {
    pub chain_id: u64,
    pub entry_point: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point_version: Option<crate::userop::EntryPointVersion>,
    pub sender: Address,
    pub nonce: U256,
    pub format: AccountFormat,
    pub call_gas_limit: u128,
    pub verification_gas_limit: u128,
    pub pre_verification_gas: U256,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

/// A signed sweep user operation, ready for `handleOps`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepUserOp {
    pub user_operation: crate::userop::UserOperationRequest,
    /// The entry point's `getUserOpHash`.
    pub hash: B256,
    /// The session key's signature, as the account checks it.
    pub signature: Bytes,
    /// What it revokes: `(token, spender)` per inner call, in order.
    pub revokes: Vec<(Address, Address)>,
}

/// What the host supplies for one chain: the session's next nonce there and the fees.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepTerms {
    pub chain_id: u64,
    /// The first revocation's nonce; each next one takes the following nonce.
    pub nonce: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    /// Per revocation.
    pub gas_limit: u64,
}

impl Sweep {
    /// What the owner's signature commits to (the `subject` of the owner action).
    pub fn terms_digest(&self) -> B256 {
        let mut buf = b"bridle/sweep/v1".to_vec();
        for t in &self.terms {
            buf.extend_from_slice(&t.chain_id.to_be_bytes());
            buf.extend_from_slice(&t.nonce.to_be_bytes());
            buf.extend_from_slice(&t.max_fee_per_gas.to_be_bytes());
            buf.extend_from_slice(&t.max_priority_fee_per_gas.to_be_bytes());
            buf.extend_from_slice(&t.gas_limit.to_be_bytes());
        }
        // Appended only when present: a sweep without accounts keeps its digest. Counted, so
        // that the encoding stays unambiguous whatever the caps.
        if !self.accounts.is_empty() {
            buf.extend_from_slice(b"accounts");
            buf.extend_from_slice(&(self.terms.len() as u64).to_be_bytes());
            buf.extend_from_slice(&(self.accounts.len() as u64).to_be_bytes());
        }
        for a in &self.accounts {
            buf.extend_from_slice(b"account");
            buf.extend_from_slice(&a.chain_id.to_be_bytes());
            buf.extend_from_slice(a.entry_point.as_slice());
            buf.push(a.entry_point_version.map_or(0, |v| v as u8 + 1));
            buf.extend_from_slice(a.sender.as_slice());
            buf.extend_from_slice(&a.nonce.to_be_bytes::<32>());
            buf.push(a.format as u8);
            buf.extend_from_slice(&a.call_gas_limit.to_be_bytes());
            buf.extend_from_slice(&a.verification_gas_limit.to_be_bytes());
            buf.extend_from_slice(&a.pre_verification_gas.to_be_bytes::<32>());
            buf.extend_from_slice(&a.max_fee_per_gas.to_be_bytes());
            buf.extend_from_slice(&a.max_priority_fee_per_gas.to_be_bytes());
        }
        alloy_primitives::keccak256(buf)
    }
}

/// The signed revocations, ready to broadcast in order per chain.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepReply {
    pub session: Address,
    pub transactions: Vec<SweepTx>,
    /// Smart-account sweeps: signed user operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_operations: Vec<SweepUserOp>,
    /// Outstanding approvals this sweep could not revoke, and why.
    pub skipped: Vec<SweepSkip>,
    /// The revoked session's key was destroyed after this sweep (only when no approval may
    /// be outstanding in any history).
    pub key_destroyed: bool,
    /// The enclave's signature over this reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepTx {
    pub chain_id: u64,
    pub nonce: u64,
    pub token: Address,
    pub spender: Address,
    pub kind: AllowanceKind,
    /// The contract called: the token, or the Permit2 contract.
    pub to: Address,
    /// The transaction hash (keccak256 of the raw transaction).
    pub hash: B256,
    pub raw_transaction: Bytes,
    /// Set: the transaction is Permit2's `invalidateNonces(token, spender, n)`, cancelling
    /// the session's Permit2 allowance permits of the entry with a nonce below `n` (it comes
    /// before the entry's revocation). Unset: the revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidate_nonce: Option<u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSkip {
    pub chain_id: u64,
    pub token: Address,
    pub spender: Address,
    pub holder: Address,
    pub reason: String,
}
