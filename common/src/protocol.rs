//! The enclave's wire protocol: one request frame, one response frame.
//!
//! These are the calls of SPEC §2 and nothing else. `sign_if_allowed` is the only call
//! that produces a signature over a transaction, user operation, typed data or message;
//! every management call carries an owner-signed envelope.

use crate::error::Denial;
use crate::policy::doc::Policy;
use crate::stamp::{PayloadKind, Stamp};
use crate::tx::TxRequest;
use crate::userop::UserOperationRequest;
use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

/// Version of this protocol; a frame with another version is refused as `unsupported`.
pub const PROTOCOL_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFrame {
    pub version: u16,
    pub call: Call,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseFrame {
    pub version: u16,
    pub result: Result<Reply, Denial>,
}

/// Every call the enclave serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    SignIfAllowed(SignRequest),
    CreateSession(CreateSession),
    UpdatePolicy(UpdatePolicy),
    Revoke(Revoke),
    RevokeAll(RevokeAll),
    ApprovePending(ApprovePending),
    Attest(Attest),
    Audit(AuditQuery),
    Status(StatusQuery),
}

impl Call {
    pub fn name(&self) -> &'static str {
        match self {
            Call::SignIfAllowed(_) => "sign_if_allowed",
            Call::CreateSession(_) => "create_session",
            Call::UpdatePolicy(_) => "update_policy",
            Call::Revoke(_) => "revoke",
            Call::RevokeAll(_) => "revoke_all",
            Call::ApprovePending(_) => "approve_pending",
            Call::Attest(_) => "attest",
            Call::Audit(_) => "audit",
            Call::Status(_) => "status",
        }
    }
}

/// What to sign. The enclave computes the digest from these fields itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignPayload {
    Transaction(TxRequest),
    /// EIP-712 typed data as `eth_signTypedData_v4` JSON text.
    TypedData(String),
    /// EIP-191 personal message bytes.
    Message(Bytes),
    /// An ERC-4337 v0.7 user operation (R-SIGN-2).
    UserOperation(UserOperationRequest),
}

impl SignPayload {
    pub fn kind(&self) -> PayloadKind {
        match self {
            SignPayload::Transaction(_) => PayloadKind::Transaction,
            SignPayload::TypedData(_) => PayloadKind::TypedData,
            SignPayload::Message(_) => PayloadKind::Message,
            SignPayload::UserOperation(_) => PayloadKind::UserOperation,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub session: Address,
    pub payload: SignPayload,
    pub stamp: Stamp,
}

/// An owner's signature over an [`crate::owner::OwnerAction`] the enclave rebuilds from
/// the call's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerAuth {
    pub owner: Address,
    pub nonce: u64,
    /// 65-byte r ‖ s ‖ v.
    pub signature: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub auth: OwnerAuth,
    /// The agent's secp256k1 public key, SEC1 (33 or 65 bytes). The owner signs its address.
    pub agent_public_key: Bytes,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub auth: OwnerAuth,
    pub session: Address,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub auth: OwnerAuth,
    pub session: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    pub auth: OwnerAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovePending {
    pub auth: OwnerAuth,
    pub session: Address,
    pub digest: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attest {
    pub nonce: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub since: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Ask for one session's facts as well.
    pub session: Option<Address>,
}

/// Successful replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Signed(Signed),
    SessionCreated(SessionCreated),
    PolicyUpdated(PolicyUpdated),
    Revoked(Revoked),
    Attestation(AttestationReply),
    Audit(AuditReply),
    Status(Status),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub session: Address,
    /// The digest the enclave computed (and the agent's stamp covers): the transaction's
    /// signing hash, the EIP-712 signing hash, the EIP-191 message hash, or for a user
    /// operation the userOpHash — whose EIP-191 form (`toEthSignedMessageHash`) is what
    /// the key signs, as SimpleAccount v0.7 verifies.
    pub digest: B256,
    /// 65-byte r ‖ s ‖ v (v = 27/28).
    pub signature: Bytes,
    /// For transactions: the signed EIP-2718 encoding, ready to broadcast.
    pub raw_transaction: Option<Bytes>,
}

/// The session binding (R-ATT-2): what the enclave identity key signs at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBinding {
    pub enclave: Address,
    pub session: Address,
    pub owner: Address,
    pub agent: Address,
    pub policy_hash: B256,
    pub created_at: u64,
    pub valid_until: u64,
}

impl SessionBinding {
    /// The digest the identity key signs and an attestation's `user_data` commits to.
    pub fn digest(&self) -> B256 {
        let mut buf = Vec::with_capacity(160);
        buf.extend_from_slice(b"bridle/session-binding/v1");
        buf.extend_from_slice(self.enclave.as_slice());
        buf.extend_from_slice(self.session.as_slice());
        buf.extend_from_slice(self.owner.as_slice());
        buf.extend_from_slice(self.agent.as_slice());
        buf.extend_from_slice(self.policy_hash.as_slice());
        buf.extend_from_slice(&self.created_at.to_be_bytes());
        buf.extend_from_slice(&self.valid_until.to_be_bytes());
        alloy_primitives::keccak256(buf)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCreated {
    pub binding: SessionBinding,
    /// Identity key's 65-byte signature over `binding.digest()`.
    pub binding_signature: Bytes,
    /// An attestation document whose `user_data` is `binding.digest()`, when available.
    pub attestation: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdated {
    pub session: Address,
    pub policy_hash: B256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    pub sessions: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationReply {
    pub document: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditReply {
    pub entries: Vec<Bytes>,
}

/// Public facts about the enclave (and optionally one session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub version: String,
    /// Identity public key, SEC1 compressed (33 bytes).
    pub identity_public_key: Bytes,
    pub identity_address: Address,
    pub booted_at: u64,
    pub now: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub signatures: u64,
    pub denials: u64,
    pub session: Option<SessionStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Active,
    NotYetValid,
    Expired,
    Revoked,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionStatus {
    pub session: Address,
    pub owner: Address,
    pub agent: Address,
    pub policy_hash: B256,
    pub state: SessionState,
    pub created_at: u64,
    pub valid_after: Option<u64>,
    pub valid_until: u64,
    pub uses: u64,
    pub uses_left: Option<u64>,
    pub caps: Vec<CapStatus>,
}

/// One cap: how much of it is spent in the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapStatus {
    /// Rule path, e.g. `limits[0]`.
    pub rule: String,
    /// Human description, e.g. `USDC per day`.
    pub what: String,
    pub spent: U256,
    pub cap: U256,
    pub decimals: u8,
    pub symbol: String,
    /// When the current period ends (unix seconds); `None` for session totals.
    pub resets_at: Option<u64>,
}
