//! A key a cluster leader sent with a change that is not its session's (a leader's bug;
//! hosts cannot forge peers' entries) is not taken, and the change stands — as on a node
//! whose copy of the entry was redacted and carried no key. Before, the nodes that received
//! such a key refused the change `internal` while the others made it: their replicated
//! states parted (an open finding of 2026-12-03).

use super::room_tests::{addr, sign, Shared, T0};
use super::*;
use crate::clock::FixedClock;
use crate::cluster::types::Holder;
use crate::keys::Key;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::SecretKey;

fn policy(name: &str) -> bridle_common::policy::doc::Policy {
    let text = format!(
        "name='{name}'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n"
    );
    resolve_text(&text, T0).unwrap()
}

fn other_key() -> Option<Key> {
    Key::from_secret_bytes(&[8u8; 32])
}

#[test]
fn a_key_sent_for_another_session_is_not_taken_and_the_change_stands() {
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let holder = Holder { image: B256::repeat_byte(1), signer: None };
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let agent = SecretKey::from_slice(&[5u8; 32]).unwrap();
    let session_secret = [7u8; 32];
    let session = addr(&SecretKey::from_slice(&session_secret).unwrap());
    assert_ne!(other_key().unwrap().address(), session);
    let msg = |a: &str, policy_hash: B256, subject: B256, nonce: u64| OwnerAction {
        action: a.into(),
        enclave: e.identity_address(),
        session: if a == action::CREATE_SESSION { Address::ZERO } else { session },
        agent: addr(&agent),
        policyHash: policy_hash,
        subject,
        nonce,
    };
    let held = |e: &Enclave| e.session(&session).unwrap().lock().key.is_some();
    let replica = crate::apply::ApplyCtx { clock: T0, proposer: false };

    // A creation whose key is another address's: the session is created, without a key.
    let p = policy("first");
    let c = CreateSession {
        auth: sign(&owner, &msg(action::CREATE_SESSION, p.hash(), B256::ZERO, 1)),
        agent_public_key: Bytes::from(agent.public_key().to_encoded_point(true).as_bytes().to_vec()),
        policy: p,
    };
    let r = crate::apply::with(replica, || e.apply_create_session(c, session, other_key(), vec![holder.image]));
    let Ok(Reply::SessionCreated(created)) = r else { panic!("the creation stands: {r:?}") };
    assert_eq!(created.binding.session, session);
    assert!(!held(&e), "a key of another address is not taken");

    // A policy update carrying another key, on a node that may hold the session's key: the
    // update is applied, the key not taken.
    let p = policy("second");
    let hash = p.hash();
    let u = UpdatePolicy { auth: sign(&owner, &msg(action::UPDATE_POLICY, hash, B256::ZERO, 2)), session, policy: p };
    let r = crate::apply::with(replica, || e.apply_update_policy(u, other_key(), &holder));
    assert!(matches!(r, Ok(Reply::PolicyUpdated(_))), "the update stands: {r:?}");
    assert_eq!(e.session(&session).unwrap().lock().machine.policy().hash, hash);
    assert!(!held(&e));

    // An allow_image whose key for the session is another's, on a node of that image: the
    // image joins the custody, the key is not taken.
    let image = B256::repeat_byte(2);
    let a = AllowImage { auth: sign(&owner, &msg(action::ALLOW_IMAGE, B256::ZERO, image, 3)), session, image };
    let r = crate::apply::with(replica, || e.apply_allow_image(&a, vec![(session, other_key())], image));
    let Ok(Reply::ImageAllowed(allowed)) = r else { panic!("the allow_image stands: {r:?}") };
    assert_eq!(allowed.sessions, vec![session]);
    assert!(e.session(&session).unwrap().lock().custody.contains(&image));
    assert!(!held(&e));

    // The session's own key, sent with the next one, is taken.
    let image = B256::repeat_byte(3);
    let a = AllowImage { auth: sign(&owner, &msg(action::ALLOW_IMAGE, B256::ZERO, image, 4)), session, image };
    let own = Key::from_secret_bytes(&session_secret);
    let r = crate::apply::with(replica, || e.apply_allow_image(&a, vec![(session, own)], image));
    assert!(matches!(r, Ok(Reply::ImageAllowed(_))), "{r:?}");
    assert!(held(&e), "the session's own key is taken");
}

#[test]
fn a_key_that_is_no_valid_scalar_is_not_taken() {
    use crate::cluster::replica::valid_key;
    use crate::cluster::types::Secret;
    let session = Address::repeat_byte(9);
    // Zero and the group order are no secp256k1 secret keys; the entry is then applied as
    // if it carried none (before, a creation was refused `internal` on that node only).
    assert!(valid_key(Some(Secret([0u8; 32])), session).is_none());
    let order = alloy_primitives::hex!("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
    assert!(valid_key(Some(Secret(order)), session).is_none());
    assert!(valid_key(None, session).is_none());
    let k = valid_key(Some(Secret([7u8; 32])), session).expect("a valid scalar");
    assert_eq!(k.address(), addr(&SecretKey::from_slice(&[7u8; 32]).unwrap()));
}

#[test]
fn a_creation_answered_without_the_key_it_was_sent_is_not_bound() {
    // The node that answers applied a creation whose key it did not take: no node holds
    // that session's key. Its binding goes unsigned, without receipt or attestation, so
    // owner tools refuse it (the owner revokes the session rather than funding it).
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let agent = SecretKey::from_slice(&[5u8; 32]).unwrap();
    let create = |session: Address, key: Option<Key>, nonce: u64| {
        let p = policy("answered");
        let msg = OwnerAction {
            action: action::CREATE_SESSION.into(),
            enclave: e.identity_address(),
            session: Address::ZERO,
            agent: addr(&agent),
            policyHash: p.hash(),
            subject: B256::ZERO,
            nonce,
        };
        let c = CreateSession {
            auth: sign(&owner, &msg),
            agent_public_key: Bytes::from(agent.public_key().to_encoded_point(true).as_bytes().to_vec()),
            policy: p,
        };
        let proposer = crate::apply::ApplyCtx { clock: T0, proposer: true };
        match crate::apply::with(proposer, || e.apply_create_session(c, session, key, vec![])) {
            Ok(Reply::SessionCreated(created)) => created,
            other => panic!("the creation stands: {other:?}"),
        }
    };
    let session = addr(&SecretKey::from_slice(&[7u8; 32]).unwrap());
    let created = create(session, other_key(), 1);
    assert_eq!(created.binding.session, session);
    assert!(created.binding_signature.is_empty() && created.attestation.is_none() && created.receipt.is_none());
    assert!(e.session(&session).is_ok(), "the session exists, as on every node");
    // With its own key, the same answer is bound and receipted.
    let own = Key::from_secret_bytes(&[9u8; 32]).unwrap();
    let created = create(own.address(), Some(own), 2);
    assert!(!created.binding_signature.is_empty() && created.receipt.is_some());
}

#[test]
fn a_snapshot_key_of_another_session_is_not_taken_and_the_snapshot_installs() {
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let session = super::room_tests::create(&e, T0, 1).unwrap();
    let mut snap = e.snapshot(16);
    assert!(snap.sessions[0].key.is_some());
    for bad in [[8u8; 32], [0u8; 32]] {
        snap.sessions[0].key = Some(bad);
        let restored =
            Enclave::restore(&snap, Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default())
                .expect("the snapshot installs");
        assert!(restored.session(&session).unwrap().lock().key.is_none(), "the wrong key is not taken");
    }
}
