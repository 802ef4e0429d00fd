//! The session cap: anyone can be an owner, so sessions are bounded; finished sessions make
//! room, live ones do not, and a refused creation changes no session (its nonce is spent).

use alloy_primitives::{Address, Bytes, B256};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use bridle_common::protocol::*;
use bridle_enclave::clock::{Clock, FixedClock};
use bridle_enclave::{Config, Enclave};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::SecretKey;
use std::sync::Arc;

const T0: u64 = 1_800_000_000;

struct Shared(Arc<FixedClock>);
impl Clock for Shared {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

fn addr(k: &SecretKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&k.public_key()))
}

fn sign(owner: &SecretKey, msg: &OwnerAction) -> OwnerAuth {
    let (sig, recid) = k256::ecdsa::SigningKey::from(owner).sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
    let sig = alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd());
    OwnerAuth { owner: addr(owner), nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) }
}

fn create(
    e: &Enclave,
    now: u64,
    owner: &SecretKey,
    nonce: u64,
    valid_for: &str,
) -> Result<Address, bridle_common::Denial> {
    let policy = resolve_text(
        &format!("name='c'\nchains=[1]\nvalid_for='{valid_for}'\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n"),
        now,
    )
    .unwrap();
    let agent = SecretKey::from_slice(&[nonce as u8 + 1; 32]).unwrap();
    let msg = OwnerAction {
        action: action::CREATE_SESSION.into(),
        enclave: e.identity_address(),
        session: Address::ZERO,
        agent: addr(&agent),
        policyHash: policy.hash(),
        subject: B256::ZERO,
        nonce,
    };
    let reply = e.handle(Call::CreateSession(CreateSession {
        auth: sign(owner, &msg),
        agent_public_key: Bytes::from(agent.public_key().to_encoded_point(true).as_bytes().to_vec()),
        policy,
    }))?;
    match reply {
        Reply::SessionCreated(c) => Ok(c.binding.session),
        other => panic!("unexpected {other:?}"),
    }
}

fn revoke(e: &Enclave, owner: &SecretKey, session: Address, agent_seed: u8, nonce: u64) {
    let agent = SecretKey::from_slice(&[agent_seed; 32]).unwrap();
    let msg = OwnerAction {
        action: action::REVOKE.into(),
        enclave: e.identity_address(),
        session,
        agent: addr(&agent),
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce,
    };
    e.handle(Call::Revoke(Revoke { auth: sign(owner, &msg), session })).expect("revoke");
}

#[test]
fn sessions_are_bounded_and_finished_ones_make_room() {
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_sessions: 2, ..Config::default() });
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    // Owner nonces are the time in milliseconds (within ten minutes of the enclave's clock);
    // ms(T0) is a multiple of 256, so the agent of `at(k)` is `[k + 1; 32]`.
    let at = |k: u64| T0 * 1000 + k;
    let s1 = create(&e, T0, &owner, at(1), "1h").unwrap();
    let _s2 = create(&e, T0, &owner, at(2), "2h").unwrap();

    // Full of live sessions: refused, naming the limit; no session changed.
    let d = create(&e, T0, &owner, at(3), "1h").unwrap_err();
    assert_eq!((d.code.as_str(), d.rule.as_deref()), ("rate_limited", Some("enclave.max_sessions")));
    assert_eq!(e.status(None, None, None).unwrap().sessions_total, 2);
    // The refused creation spent the owner's nonce (it must never take effect later): 3 is
    // refused next, 4 accepted.
    let agent = SecretKey::from_slice(&[2u8; 32]).unwrap();
    let msg = OwnerAction {
        action: action::REVOKE.into(),
        enclave: e.identity_address(),
        session: s1,
        agent: addr(&agent),
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: at(3),
    };
    let d = e.handle(Call::Revoke(Revoke { auth: sign(&owner, &msg), session: s1 })).unwrap_err();
    assert_eq!(d.code.as_str(), "replayed", "{d}");

    // Revoking one (no approvals outstanding, so its key is destroyed) makes room.
    revoke(&e, &owner, s1, 2, at(4));
    let s3 = create(&e, T0, &owner, at(5), "1h").unwrap();
    assert_eq!(e.status(None, None, None).unwrap().sessions_total, 2);
    assert!(
        matches!(e.handle(Call::Status(StatusQuery { session: Some(s1), nonce: None, held: None })), Ok(Reply::Status(st)) if st.session.is_none())
    );

    // Expired sessions make room too; live ones are never dropped.
    clock.set(T0 + 3601);
    let s4 = create(&e, T0 + 3601, &owner, (T0 + 3601) * 1000 + 6, "1h").unwrap();
    let st = e.status(None, None, None).unwrap();
    assert_eq!(st.sessions_total, 2);
    for (s, live) in [(s3, false), (s4, true)] {
        let known = matches!(e.handle(Call::Status(StatusQuery { session: Some(s), nonce: None, held: None })), Ok(Reply::Status(st)) if st.session.is_some());
        assert_eq!(known, live, "{s}");
    }
}

fn revoke_all(e: &Enclave, owner: &SecretKey, nonce: u64) -> Result<Reply, bridle_common::Denial> {
    let msg = OwnerAction {
        action: action::REVOKE_ALL.into(),
        enclave: e.identity_address(),
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce,
    };
    e.handle(Call::RevokeAll(RevokeAll { auth: sign(owner, &msg) }))
}

/// The owner-nonce book is bounded, so a flood of `revoke_all`s from fresh keys makes it
/// forget owners and raise its floor (review of 2026-12-03). With nonces near 2^64 the floor
/// used to reach 2^64 and refuse every new owner for good. Owner nonces are now bounded by
/// the enclave's clock (milliseconds plus ten minutes): a new owner whose nonce is the time
/// in milliseconds is refused only until ten minutes after the flood stops; an owner with
/// sessions is never forgotten and keeps working through it.
#[test]
fn a_flood_of_owner_calls_locks_new_owners_out_only_until_the_clock_passes_it() {
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_owners: 8, ..Config::default() });
    let ms = |t: u64| t * 1000;
    let holder = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let s1 = create(&e, T0, &holder, ms(T0), "2h").unwrap();

    // Too far ahead: refused `replayed` (as a stamp outside its time window is) before
    // anything is recorded, naming the bound.
    let flooder = |i: u32| SecretKey::from_slice(&B256::left_padding_from(&(i + 1000).to_be_bytes()).0).unwrap();
    let d = revoke_all(&e, &flooder(0), u64::MAX - 1).unwrap_err();
    assert_eq!(d.code.as_str(), "replayed", "{d}");
    assert!(d.reason.contains(&(ms(T0) + 600_000).to_string()), "{d}");
    let d = revoke_all(&e, &flooder(0), ms(T0) + 600_001).unwrap_err();
    assert_eq!(d.code.as_str(), "replayed", "{d}");
    // The refusal spent nothing: the same owner's nonce at the bound passes.
    revoke_all(&e, &flooder(0), ms(T0) + 600_000).expect("at the bound");

    // The flood: fresh keys at the highest nonce accepted, over a minute of the enclave's clock.
    for i in 1..64u32 {
        let now = T0 + u64::from(i);
        clock.set(now);
        revoke_all(&e, &flooder(i), ms(now) + 600_000).expect("a flood message is accepted");
    }
    let end = T0 + 63;
    // A new owner's time in milliseconds is refused while the floor is ahead of the clock…
    let newcomer = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let d = create(&e, end, &newcomer, ms(end), "1h").unwrap_err();
    assert_eq!(d.code.as_str(), "replayed", "{d}");
    assert!(d.reason.contains("passes it in about"), "{d}");
    // …while the owner holding a session was never forgotten.
    revoke(&e, &holder, s1, ms(T0) as u8 + 1, ms(end));

    // Ten minutes after the flood, the time in milliseconds passes the floor.
    let later = end + 600;
    clock.set(later);
    create(&e, later, &newcomer, ms(later), "1h").expect("the floor is behind the clock");
}
