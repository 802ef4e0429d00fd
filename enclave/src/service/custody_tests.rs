//! A cluster node applying a creation keeps the session's key only where it may hold it
//! (a latent divergence a review found on 2026-12-04: the node took whatever key it was
//! sent, relying on the leader's redaction alone).

use super::room_tests::{creation_naming, T0};
use super::*;
use crate::apply::{with, ApplyCtx};
use crate::clock::FixedClock;
use crate::cluster::types::{Holder, Pcr8, Secret};

const IMAGE: B256 = B256::repeat_byte(7);

fn signer() -> Pcr8 {
    Pcr8::repeat_byte(0x5e)
}

/// Apply a creation carrying `key` on a node of `holder`, as a replica applies a log entry
/// whose custody lists `IMAGE`, the policy naming `signer()` as its release signer when
/// `naming`: the session made, and whether the node holds its key.
fn apply_creation(holder: &Holder, naming: bool, key: Secret, address: Address) -> Result<bool, Denial> {
    let e = Enclave::new(Box::new(FixedClock::new(T0)), None, Config::default());
    let top = if naming { format!("release_signers = [\"{}\"]", signer()) } else { String::new() };
    let c = creation_naming(&e, T0, 1, &top);
    let r = with(ApplyCtx { clock: T0, proposer: false }, || {
        e.apply_create_session(c, address, Some(key), vec![IMAGE], holder)
    })?;
    match r {
        Reply::SessionCreated(made) => assert_eq!(made.binding.session, address),
        other => panic!("the creation was not made: {other:?}"),
    }
    e.holds_key(&address).map(|held| held.expect("the session's lock is free"))
}

fn kept(holder: Holder, naming: bool) -> bool {
    let key = Key::generate();
    apply_creation(&holder, naming, Secret(*key.secret_bytes()), key.address()).expect("the creation")
}

#[test]
fn a_node_keeps_a_creations_key_only_where_it_may_hold_it() {
    let other = B256::repeat_byte(8);
    // The custody's image, whatever the policy names: the key is kept.
    assert!(kept(Holder { image: IMAGE, signer: None }, false));
    // Another image signed by the release signer the policy names: kept.
    assert!(kept(Holder { image: other, signer: Some(signer()) }, true));
    // Another image, unsigned or signed by a signer the policy does not name: the session
    // is made as on a node whose copy was redacted, without the key (before the fix, kept).
    for (s, naming) in
        [(None, false), (None, true), (Some(Pcr8::repeat_byte(3)), false), (Some(Pcr8::repeat_byte(3)), true)]
    {
        assert!(!kept(Holder { image: other, signer: s }, naming), "kept on another image (signer {s:?}, {naming})");
    }
}

#[test]
fn a_secret_is_decoded_only_where_it_is_kept() {
    let address = Key::generate().address();
    let invalid = || Secret([0xff; 32]);
    // Where the node may not hold it, an invalid secret is dropped like any other and the
    // session made, as on the nodes whose copy was redacted.
    let other = Holder { image: B256::repeat_byte(8), signer: None };
    assert_eq!(apply_creation(&other, false, invalid(), address), Ok(false));
    // Where it would be kept: refused, nothing made.
    let e = apply_creation(&Holder { image: IMAGE, signer: None }, false, invalid(), address).unwrap_err();
    assert_eq!(e.code, ErrorCode::Internal, "{e:?}");
}
