//! The owner messages a leader is proposing: each (owner, nonce) at most once in the log at
//! a time. Until an owner call is applied, its nonce is not yet spent in the state the
//! leader checks before the log, so copies of one signed message (a host may replay what
//! it relays) would all pass that check and all become entries — an `allow_image` entry
//! carrying every key of the owner's sessions each time. A copy that arrives while its
//! original is being proposed is refused before the log instead.

use alloy_primitives::Address;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{Call, OwnerAuth};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The (owner, nonce) pairs being proposed. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Proposing(Arc<Mutex<HashSet<(Address, u64)>>>);

/// Holds a pair while its call is proposed; dropping it frees the pair.
#[derive(Debug)]
pub struct Held {
    set: Proposing,
    key: (Address, u64),
}

impl Drop for Held {
    fn drop(&mut self) {
        self.set.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

/// The owner's envelope of an owner call (a sweep's when it has one).
pub fn owner_auth(call: &Call) -> Option<&OwnerAuth> {
    match call {
        Call::CreateSession(c) => Some(&c.auth),
        Call::UpdatePolicy(u) => Some(&u.auth),
        Call::Revoke(r) => Some(&r.auth),
        Call::RevokeAll(r) => Some(&r.auth),
        Call::ApprovePending(a) => Some(&a.auth),
        Call::DenyPending(d) => Some(&d.auth),
        Call::AllowImage(a) => Some(&a.auth),
        Call::Sweep(w) => w.auth.as_ref(),
        Call::SignIfAllowed(_) | Call::Attest(_) | Call::Audit(_) | Call::Status(_) | Call::Cluster(_) => None,
    }
}

impl Proposing {
    /// Hold `auth`'s (owner, nonce) while its call is proposed; refused if it is held.
    pub fn hold(&self, auth: &OwnerAuth) -> Result<Held, Denial> {
        let key = (auth.owner, auth.nonce);
        if !self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
            return Err(Denial::new(
                ErrorCode::Replayed,
                format!("owner {} nonce {} is already being proposed (a copy of one message)", auth.owner, auth.nonce),
            ));
        }
        Ok(Held { set: self.clone(), key })
    }

    /// Hold `session` while a checked policy update of it is proposed (a set of its own:
    /// the leader's `updating`); refused (`unavailable`: ask again) if one is, so that each
    /// sees every earlier one in the log ([`super::keyed::update_policy`]).
    pub fn hold_session(&self, session: Address) -> Result<Held, Denial> {
        let key = (session, 0);
        if !self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
            return Err(Denial::new(
                ErrorCode::Unavailable,
                format!("another policy update of session {session} is being proposed; ask again"),
            ));
        }
        Ok(Held { set: self.clone(), key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_held_once_until_released() {
        let p = Proposing::default();
        let auth =
            |owner: u8, nonce| OwnerAuth { owner: Address::repeat_byte(owner), nonce, signature: Default::default() };
        let held = p.hold(&auth(1, 7)).unwrap();
        let e = p.hold(&auth(1, 7)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Replayed);
        // Another nonce, another owner: free.
        let _b = p.hold(&auth(1, 8)).unwrap();
        let _c = p.hold(&auth(2, 7)).unwrap();
        drop(held);
        let _again = p.hold(&auth(1, 7)).unwrap();
    }

    #[test]
    fn a_session_is_updated_once_at_a_time() {
        let p = Proposing::default();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let held = p.hold_session(a).unwrap();
        assert_eq!(p.hold_session(a).unwrap_err().code, ErrorCode::Unavailable);
        let _b = p.hold_session(b).unwrap();
        drop(held);
        let _again = p.hold_session(a).unwrap();
    }
}
