//! The entry of each kind of decision: one vocabulary for every decision point.

use super::{Decision, Record};
use crate::error::Denial;
use crate::error::ErrorCode;
use alloy_primitives::{Address, B256};

/// A signature was produced; `what` names the payload (e.g. `transaction`).
pub fn allowed(session: Address, digest: B256, what: &str) -> Record {
    Record::new(Decision::Allowed, session, digest, what)
}

/// A refusal: its code, rule and reason. `pending_approval` is recorded as `pending`.
pub fn denied(session: Address, digest: B256, d: &Denial) -> Record {
    let kind = if d.code == ErrorCode::PendingApproval { Decision::Pending } else { Decision::Denied };
    Record::new(kind, session, digest, &d.reason).with_code(d.code, d.rule.as_deref())
}

/// Held for the owner's approval of `digest` until `expires_at`.
pub fn pending(session: Address, digest: B256, rule: &str, expires_at: u64) -> Record {
    Record::new(Decision::Pending, session, digest, &format!("held for the owner's approval until {expires_at}"))
        .with_code(ErrorCode::PendingApproval, Some(rule))
}

/// The owner approved `digest`; it was signed.
pub fn approved(session: Address, digest: B256) -> Record {
    Record::new(Decision::Approved, session, digest, "approved by the owner; signed")
}

/// The owner denied pending `digest`; asking again is refused until `until`.
pub fn rejected(session: Address, digest: B256, until: u64) -> Record {
    Record::new(Decision::Rejected, session, digest, &format!("denied by the owner; refused until {until}"))
        .with_code(ErrorCode::DeniedByOwner, None)
}

/// `digest` waited for approval (or stayed denied) until `expired_at` and expired.
pub fn expired_pending(session: Address, digest: B256, expired_at: u64) -> Record {
    Record::new(Decision::ExpiredPending, session, digest, &format!("held request ended unsigned at {expired_at}"))
}

/// The trip-wire suspended the session.
pub fn suspended(session: Address, reason: &str) -> Record {
    Record::new(Decision::Suspended, session, B256::ZERO, reason)
}

/// The owner revoked the session (`all`: by revoke-all).
pub fn revoked(session: Address, owner: Address, all: bool) -> Record {
    let kind = if all { Decision::RevokedAll } else { Decision::Revoked };
    Record::new(kind, session, B256::ZERO, &format!("owner {owner}"))
}

/// The session's policy is now `policy_hash`.
pub fn policy_updated(session: Address, owner: Address, policy_hash: B256) -> Record {
    Record::new(Decision::PolicyUpdated, session, policy_hash, &format!("owner {owner}"))
}

/// A session was created under `policy_hash`.
pub fn session_created(
    session: Address,
    owner: Address,
    agent: Address,
    policy_hash: B256,
    valid_until: u64,
) -> Record {
    let detail = format!("owner {owner} agent {agent} valid_until {valid_until}");
    Record::new(Decision::SessionCreated, session, policy_hash, &detail)
}

/// The owner let nodes of `image` hold the session's key.
pub fn image_allowed(session: Address, owner: Address, image: B256) -> Record {
    Record::new(Decision::ImageAllowed, session, image, &format!("owner {owner}"))
}

/// One signed revocation of a sweep; `signing_hash` is the transaction's signing hash (what
/// the key signed — not the signed transaction's hash, which depends on the signature's
/// bytes: every replica of a cluster records the same entry, including those that do not
/// hold the key).
pub fn sweep(
    session: Address,
    signing_hash: B256,
    chain_id: u64,
    nonce: u64,
    token: Address,
    spender: Address,
) -> Record {
    let detail = format!("approve({spender}, 0) on {token}, chain {chain_id}, nonce {nonce}");
    Record::new(Decision::Sweep, session, signing_hash, &detail)
}
