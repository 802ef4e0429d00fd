//! The log entries that carry session keys, as a leader makes them (ATTESTATION.md,
//! "Cluster and upgrades"): an owner's `allow_image`, with the keys of the sessions it names,
//! and an owner's policy update (checked: the only kind that narrows what a peer receives),
//! with the session's key when it names release signers.
//! Both are made only once the owner's signature and nonce are checked (and an update with
//! a key only when its policy's lifetime passes) — the entry carries the keys to nodes that
//! receive nothing else of them, so a refusal when it is applied would come after they held
//! the keys — and only by a leader that holds the keys.

use super::types::{Op, Secret, MAX_ALLOW_IMAGE_KEYS};
use crate::Enclave;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{AllowImage, UpdatePolicy};

fn unavailable(why: String) -> Denial {
    Denial::new(ErrorCode::Unavailable, why)
}

/// The entry of an owner's `allow_image`: checked, then with the key of every session it
/// names (at most [`MAX_ALLOW_IMAGE_KEYS`]).
pub fn allow_image(enclave: &Enclave, a: AllowImage) -> Result<Op, Denial> {
    enclave.check_allow_image(&a)?;
    let scope = enclave.allow_image_scope(&a)?;
    if scope.len() > MAX_ALLOW_IMAGE_KEYS {
        return Err(Denial::new(
            ErrorCode::TooLarge,
            format!(
                "allow_image names {} sessions; a cluster allows at most {MAX_ALLOW_IMAGE_KEYS} in one (name the others one by one)",
                scope.len()
            ),
        ));
    }
    let mut keys = Vec::with_capacity(scope.len());
    for s in scope {
        match enclave.session_secret(&s) {
            Some(k) => keys.push((s, Some(Secret(*k)))),
            None => {
                return Err(unavailable(format!(
                    "this cluster's leader does not hold the key of session {s} (it lives on nodes of another image); ask again when one of them leads"
                )))
            }
        }
    }
    Ok(Op::AllowImage { call: Box::new(a), keys })
}

/// Whether `u` names a release signer that its session's policy does not.
fn adds_release_signer(enclave: &Enclave, u: &UpdatePolicy) -> bool {
    let now = enclave.release_signers(&u.session).unwrap_or_default();
    u.policy.release_signers.iter().any(|s| !now.contains(s))
}

/// The entry of a policy update whose owner's signature the caller checked
/// (`Enclave::precheck_owner`; an update that failed it is proposed as a plain call, within
/// the bound on refusals, and never narrows what a peer receives: `super::redact`; so is a
/// checked one where no signer is named anywhere). The caller holds the session
/// (`Proposing::hold_session`) until the entry is proposed. When the
/// new policy names release signers, it carries the session's key if this leader holds it
/// (for those signers' nodes: whether they hold it already is not known here, and a node
/// takes a key only when it has none). Refused (`unavailable`) while an earlier checked
/// update of the session is not applied yet (`pending`: it might drop a signer this one
/// names, or be refused), and — without the key — when it names a signer the session's
/// policy does not (that signer's nodes would never receive the key).
pub fn update_policy(enclave: &Enclave, u: UpdatePolicy, pending: bool) -> Result<Op, Denial> {
    if u.policy.release_signers.is_empty() {
        // Neither this policy, nor the session's, nor one pending names a signer: nothing
        // can carry the key by signer, so there is nothing to narrow — a plain call, which
        // nodes of every release read (rolling upgrades from before `release_signers`).
        if !pending && enclave.release_signers(&u.session).unwrap_or_default().is_empty() {
            return Ok(Op::Call(Box::new(bridle_common::protocol::Call::UpdatePolicy(u))));
        }
        return Ok(Op::UpdatePolicy { call: Box::new(u), key: None });
    }
    if pending {
        return Err(unavailable(format!(
            "an earlier policy update of session {} is still being committed; ask again",
            u.session
        )));
    }
    // A policy its application will refuse for its lifetime carries no key: redaction would
    // send it to the release signers' nodes before that refusal (a review of 2026-12-03).
    if !enclave.policy_would_pass_its_lifetime(&u.policy) {
        return Ok(Op::UpdatePolicy { call: Box::new(u), key: None });
    }
    // Nor one signed before the session's suspension, which its application refuses (a
    // review of 2026-12-06).
    if !enclave.update_may_lift_now(&u) {
        return Ok(Op::UpdatePolicy { call: Box::new(u), key: None });
    }
    match enclave.session_secret(&u.session) {
        Some(k) => Ok(Op::UpdatePolicy { call: Box::new(u), key: Some(Secret(*k)) }),
        None if !adds_release_signer(enclave, &u) => Ok(Op::UpdatePolicy { call: Box::new(u), key: None }),
        None => Err(unavailable(format!(
            "this cluster's leader does not hold the key of session {} (it lives on nodes of another image), so the release signers the update names could not receive it; ask again when one of them leads",
            u.session
        ))),
    }
}
