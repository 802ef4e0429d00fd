//! What an owner's message may act on: only a state it could have seen when it was signed
//! (a review of 2026-12-06). An owner nonce is the time in milliseconds (the CLI's and the
//! console's default), and the enclave bounds it to ten minutes either side of its clock
//! ([`super::owners`]); within those ten minutes a host that withholds a signed message
//! chooses when it arrives. Two messages must not reach past the event that followed them:
//!
//! * a policy update lifts a trip-wire suspension — but not one that began after it was
//!   signed: its nonce must be past the second the session was suspended in;
//! * an approval or a denial names a held request by its digest, and the agent can hold the
//!   same digest again once the first hold ended — but an owner's word on it binds only a
//!   hold that existed when it was signed: its nonce must be at or past the hold's second.
//!
//! Both are checked under the session's lock, at the moment the message is applied, after
//! the owner's signature and nonce check out: a refusal spends the nonce, so the withheld
//! message is refused for good.

use super::denial;
use alloy_primitives::B256;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::machine::Machine;
use bridle_common::period::format_time;

/// Refused unless an update signed with `nonce` may lift the session's suspension (if any).
/// A revoked session passes here: the machine refuses the update as revoked, which is what
/// the owner must be told.
pub fn update_may_lift(machine: &Machine, nonce: u64) -> Result<(), Denial> {
    if machine.is_revoked() {
        return Ok(());
    }
    let Some(at) = machine.suspended_at() else { return Ok(()) };
    let after = at.saturating_add(1).saturating_mul(1000);
    if nonce >= after {
        return Ok(());
    }
    Err(denial(
        ErrorCode::Suspended,
        format!(
            "session suspended at {}: an update signed before then cannot lift it (owner nonce {nonce}, the time in milliseconds it was signed at, is below {after}, the end of that second); sign the update again",
            format_time(at)
        ),
    ))
}

/// Refused if request `digest` is held and a word on it signed with `nonce` (`verb`:
/// "approval", "denial") was signed before the hold began.
pub fn word_on_hold(machine: &Machine, digest: &B256, nonce: u64, verb: &str) -> Result<(), Denial> {
    let Some(at) = machine.held_at(digest) else { return Ok(()) };
    let since = at.saturating_mul(1000);
    if nonce >= since {
        return Ok(());
    }
    Err(denial(
        ErrorCode::Replayed,
        format!(
            "request {digest:#x} was held at {}, after this {verb} was signed (owner nonce {nonce} is below {since}, that time in milliseconds): an owner's word binds only a hold it could have seen; sign it again",
            format_time(at)
        ),
    ))
}
