//! The enclave's wire protocol: one request frame, one response frame.
//!
//! These are the calls of SPEC §2 and nothing else. `sign_if_allowed` is the only call
//! that produces a signature over a transaction, user operation, typed data or message;
//! every management call carries an owner-signed envelope.

use crate::allowance::Allowance;
use crate::error::Denial;
use crate::policy::doc::Policy;
use crate::receipt::{Receipt, Receipted};
use crate::stamp::{PayloadKind, Stamp};
use crate::tx::TxRequest;
use crate::userop::UserOperationRequest;
use alloy_primitives::{Address, Bytes, B256, U256};
use serde::{Deserialize, Serialize};

mod cluster_call;
mod status;
mod sweep;
pub use cluster_call::is_cluster_call;
pub use status::*;
pub use sweep::*;

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
    /// The owner refuses a held request: it is never signed.
    DenyPending(DenyPending),
    Attest(Attest),
    Audit(AuditQuery),
    Status(StatusQuery),
    /// The revocation sweep (R-APP-6): sign `approve(spender, 0)` transactions.
    Sweep(Sweep),
    /// Carrying an enclave cluster's traffic (see [`crate::cluster`]).
    Cluster(crate::cluster::ClusterCall),
    /// A cluster upgrade: let nodes of another image hold sessions' keys.
    AllowImage(AllowImage),
}

/// What a call does, as a stand-alone enclave serves it (its lanes) and a host routes it
/// (its connections of their own): one classification for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    /// `sign_if_allowed`: the hot path.
    Signing,
    /// Owner calls and sweeps (they may wait on the owner lock).
    Owner,
    /// `status`, `audit`, `attest`.
    Reading,
    /// A cluster's traffic.
    Cluster,
}

impl Call {
    /// See [`CallClass`].
    pub fn class(&self) -> CallClass {
        match self {
            Call::SignIfAllowed(_) => CallClass::Signing,
            Call::Status(_) | Call::Audit(_) | Call::Attest(_) => CallClass::Reading,
            Call::Cluster(_) => CallClass::Cluster,
            Call::CreateSession(_)
            | Call::UpdatePolicy(_)
            | Call::Revoke(_)
            | Call::RevokeAll(_)
            | Call::ApprovePending(_)
            | Call::DenyPending(_)
            | Call::Sweep(_)
            | Call::AllowImage(_) => CallClass::Owner,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Call::SignIfAllowed(_) => "sign_if_allowed",
            Call::CreateSession(_) => "create_session",
            Call::UpdatePolicy(_) => "update_policy",
            Call::Revoke(_) => "revoke",
            Call::RevokeAll(_) => "revoke_all",
            Call::ApprovePending(_) => "approve_pending",
            Call::DenyPending(_) => "deny_pending",
            Call::Attest(_) => "attest",
            Call::Audit(_) => "audit",
            Call::Status(_) => "status",
            Call::Sweep(_) => "sweep",
            Call::Cluster(_) => "cluster",
            Call::AllowImage(_) => "allow_image",
        }
    }
}

/// What to sign. The enclave computes the digest from these fields itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// `transaction`, `typed_data`, `message` or `user_operation`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SignPayload::Transaction(_) => "transaction",
            SignPayload::TypedData(_) => "typed_data",
            SignPayload::Message(_) => "message",
            SignPayload::UserOperation(_) => "user_operation",
        }
    }

    pub fn kind(&self) -> PayloadKind {
        match self {
            SignPayload::Transaction(_) => PayloadKind::Transaction,
            SignPayload::TypedData(_) => PayloadKind::TypedData,
            SignPayload::Message(_) => PayloadKind::Message,
            SignPayload::UserOperation(_) => PayloadKind::UserOperation,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    pub session: Address,
    pub payload: SignPayload,
    pub stamp: Stamp,
}

/// An owner's signature over an [`crate::owner::OwnerAction`] the enclave rebuilds from
/// the call's own fields.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerAuth {
    pub owner: Address,
    pub nonce: u64,
    /// 65-byte r ‖ s ‖ v.
    pub signature: Bytes,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub auth: OwnerAuth,
    /// The agent's secp256k1 public key, SEC1 (33 or 65 bytes). The owner signs its address.
    pub agent_public_key: Bytes,
    /// The normalized policy document (`bridle policy normalize`), whose keccak hash the owner signs.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policy: Policy,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    pub auth: OwnerAuth,
    pub session: Address,
    /// The normalized policy document (`bridle policy normalize`), whose keccak hash the owner signs.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policy: Policy,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    pub auth: OwnerAuth,
    pub session: Address,
}

/// A cluster upgrade, session by session (ATTESTATION.md, "Upgrades"): the owner lets nodes
/// running the image `image` (keccak256 of its PCR0 ‖ PCR1 ‖ PCR2) hold the key of `session`
/// — or of every session the owner holds when `session` is zero. Without it, a session's
/// key stays on nodes of the image it was created on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowImage {
    pub auth: OwnerAuth,
    pub session: Address,
    pub image: B256,
}

/// The sessions whose keys nodes of `image` may now hold.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageAllowed {
    pub image: B256,
    pub sessions: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The image digest of a measurement: keccak256(PCR0 ‖ PCR1 ‖ PCR2).
pub fn image_digest(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8]) -> B256 {
    let mut b = Vec::with_capacity(pcr0.len() + pcr1.len() + pcr2.len());
    b.extend_from_slice(pcr0);
    b.extend_from_slice(pcr1);
    b.extend_from_slice(pcr2);
    alloy_primitives::keccak256(b)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    pub auth: OwnerAuth,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovePending {
    pub auth: OwnerAuth,
    pub session: Address,
    pub digest: B256,
}

/// The owner denies one held request (action `deny_pending`, subject: its digest).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyPending {
    pub auth: OwnerAuth,
    pub session: Address,
    pub digest: B256,
}

/// The enclave's signed word that a held request is denied: it was not signed, and asking
/// again is refused `denied_by_owner` until `until` (its time-to-live).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingDenied {
    pub session: Address,
    pub digest: B256,
    pub until: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
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
    /// A verifier's nonce: the signed head then proves the log's end *now*.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<B256>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Ask for one session's facts as well.
    pub session: Option<Address>,
    /// With a nonce, the enclave signs the reply (a [`Receipt`] for this nonce): the owner
    /// tools show such a status as the enclave's word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<B256>,
    /// With a session: show this held request's payload, and others' only as room is left
    /// ([`PendingStatus::payload`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<B256>,
}

/// Successful replies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// A cluster follower's answer to a call only the leader serves: ask the leader.
    NotLeader(crate::cluster::NotLeader),
    Cluster(crate::cluster::ClusterReply),
    ImageAllowed(ImageAllowed),
    Signed(Signed),
    SessionCreated(SessionCreated),
    PolicyUpdated(PolicyUpdated),
    Revoked(Revoked),
    PendingDenied(PendingDenied),
    Attestation(AttestationReply),
    Audit(AuditReply),
    Status(Status),
    Swept(SweepReply),
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCreated {
    pub binding: SessionBinding,
    /// Identity key's 65-byte signature over `binding.digest()`.
    pub binding_signature: Bytes,
    /// An attestation document whose `user_data` is `binding.digest()`, when available.
    pub attestation: Option<Bytes>,
    /// The enclave's receipt over this reply for the owner's nonce (bound to the owner:
    /// [`crate::receipt::owner_nonce`]): the
    /// binding does not name the nonce, so without it a host could answer a grant with an
    /// earlier binding of the same owner, agent and policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The reply to `update_policy`: the session's new binding (R-ATT-2 for updates), signed by
/// the identity key like the binding at creation, and a receipt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdated {
    pub session: Address,
    pub policy_hash: B256,
    /// The binding now in force: `created_at` is when this policy took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<SessionBinding>,
    /// Identity key's 65-byte signature over `binding.digest()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_signature: Option<Bytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The reply to `revoke` / `revoke_all`: the sessions this call revoked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    pub sessions: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationReply {
    pub document: Bytes,
}

/// The reply to `audit(since)`: entries from `since` and a head signed by the enclave
/// identity key at the last of them (R-AUD-1; see [`crate::audit`]).
pub use crate::audit::AuditReply;
