//! Making room at `max_sessions` never waits on a busy session while it holds the session
//! map's write lock (third review of 2026-12-03: one slow decision stalled every caller);
//! what a session dropped under a request can still do; the order of an owner-wide
//! revocation's audit entries; owner messages refused at the limit or for their lifetime;
//! and a leader's check of an owner nonce's bound in time; an owner change's receipt, made by the node
//! that answers only.

use super::*;
use crate::clock::FixedClock;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::SecretKey;
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const T0: u64 = 1_800_000_000;

struct Shared(Arc<FixedClock>);
impl Clock for Shared {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

/// The owner nonce `k` milliseconds into second `now`: owner nonces are the time in
/// milliseconds, within ten minutes of the enclave's clock ([`super::owners`]).
pub(crate) fn at(now: u64, k: u64) -> u64 {
    now * 1000 + k
}

pub(super) fn addr(k: &SecretKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&k.public_key()))
}

pub(super) fn sign(owner: &SecretKey, msg: &OwnerAction) -> OwnerAuth {
    let (sig, recid) = k256::ecdsa::SigningKey::from(owner).sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
    let sig = alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd());
    OwnerAuth { owner: addr(owner), nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) }
}

fn create(e: &Enclave, now: u64, nonce: u64) -> Result<Address, Denial> {
    let c = create_reply(e, now, nonce)?;
    // Every creation's reply carries the enclave's receipt for the owner's nonce.
    let word = bridle_common::receipt::owner_nonce(addr(&SecretKey::from_slice(&[42u8; 32]).unwrap()), at(now, nonce));
    bridle_common::receipt::verify(&c, e.identity_address(), Some(word)).expect("the creation's receipt");
    Ok(c.binding.session)
}

/// The reply to a creation by the owner `[42; 32]`, with `nonce`, as made (not checked).
fn create_reply(e: &Enclave, now: u64, nonce: u64) -> Result<SessionCreated, Denial> {
    match e.handle(Call::CreateSession(creation(e, now, nonce)))? {
        Reply::SessionCreated(c) => Ok(c),
        other => panic!("unexpected {other:?}"),
    }
}

/// A creation by the owner `[42; 32]` on `e`, with the owner nonce [`at`]`(now, nonce)`
/// (its agent's key is `[nonce + 1; 32]`): a one-hour policy made at `now`.
pub(crate) fn creation(e: &Enclave, now: u64, nonce: u64) -> CreateSession {
    creation_naming(e, now, nonce, "")
}

/// [`creation`] with `top` (policy text) among the policy's top-level settings.
pub(super) fn creation_naming(e: &Enclave, now: u64, nonce: u64, top: &str) -> CreateSession {
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let policy = resolve_text(
        &format!(
            "name='c'\nchains=[1]\nvalid_for='1h'\n{top}\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n"
        ),
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
        nonce: at(now, nonce),
    };
    CreateSession {
        auth: sign(&owner, &msg),
        agent_public_key: Bytes::from(agent.public_key().to_encoded_point(true).as_bytes().to_vec()),
        policy,
    }
}

#[test]
fn a_busy_session_is_skipped_not_waited_on() {
    let clock = Arc::new(FixedClock::new(T0));
    let e =
        Arc::new(Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_sessions: 2, ..Config::default() }));
    let busy = create(&e, T0, 1).unwrap();
    let idle = create(&e, T0, 2).unwrap();
    // Both expired; one is in the middle of a decision (its lock held here).
    clock.set(T0 + 3601);
    let held = e.sessions.read().unwrap().get(&busy).cloned().unwrap();
    let guard = held.lock();
    let (tx, rx) = mpsc::channel();
    let e2 = e.clone();
    std::thread::spawn(move || {
        let _ = tx.send(create(&e2, T0 + 3601, 3));
    });
    // Before the fix this waited for the busy session, forever here.
    let made = rx.recv_timeout(Duration::from_secs(20)).expect("making room waited on a busy session");
    let new = made.expect("the idle finished session made room");
    {
        let map = e.sessions.read().unwrap();
        assert!(map.contains_key(&busy), "a busy session is kept");
        assert!(!map.contains_key(&idle), "an idle finished session is dropped");
        assert!(map.contains_key(&new));
    }
    drop(guard);
    // Once free, the busy session makes room at the next creation at the limit a second
    // later (a pass in the same second is skipped: `budget::Passes`).
    clock.set(T0 + 3602);
    create(&e, T0 + 3602, 4).unwrap();
    assert!(!e.sessions.read().unwrap().contains_key(&busy));
}

#[test]
fn a_replica_applying_a_creation_waits_for_a_busy_session() {
    // Every replica of a cluster must drop the same sessions, whatever reads hold their
    // locks at that moment: within a log entry's application, making room waits.
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_sessions: 2, ..Config::default() });
    let busy = create(&e, T0, 1).unwrap();
    let idle = create(&e, T0, 2).unwrap();
    clock.set(T0 + 3601);
    let held = e.sessions.read().unwrap().get(&busy).cloned().unwrap();
    let (locked, release) = (mpsc::channel(), mpsc::channel::<()>());
    let reader = std::thread::spawn(move || {
        let _guard = held.lock();
        locked.0.send(()).unwrap();
        let _ = release.1.recv_timeout(Duration::from_millis(300));
    });
    locked.1.recv().unwrap();
    let ctx = crate::apply::ApplyCtx { clock: T0 + 3601, proposer: true };
    let new = crate::apply::with(ctx, || create(&e, T0 + 3601, 3)).unwrap();
    reader.join().unwrap();
    let map = e.sessions.read().unwrap();
    assert!(!map.contains_key(&busy) && !map.contains_key(&idle), "both finished sessions dropped");
    assert!(map.contains_key(&new));
}

#[test]
fn a_session_dropped_under_a_request_decides_and_charges_nothing() {
    // A request found the session, then a creation at the limit dropped it before the
    // request took its lock (a review: the request's settlement charged the whole footprint
    // again, never refunded; an owner's update could publish a book entry nothing removes).
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_sessions: 1, ..Config::default() });
    let gone = create(&e, T0, 1).unwrap();
    let found = e.session(&gone).unwrap();
    clock.set(T0 + 3601);
    let one = e.budget.used();
    let new = create(&e, T0 + 3601, 2).unwrap();
    assert!(!e.sessions.read().unwrap().contains_key(&gone));
    // The same policy: one session's footprint, the dropped one refunded.
    let with_new = e.budget.used();
    assert_eq!(with_new, one);
    let d = e.decide_on(&found).map(|_| ()).unwrap_err();
    assert_eq!(d.code, ErrorCode::UnknownSession, "{d}");
    // Its settlement (were a decision to reach it) charges and publishes nothing.
    let mut inner = found.lock();
    let out = Outcome { time: T0 + 3601, records: Vec::new(), result: Ok::<(), Denial>(()), fresh: false };
    e.settle(&found, &mut inner, &out);
    assert_eq!(e.budget.used(), with_new);
    assert!(e.exposure.lock().unwrap().published(&gone).is_none());
    drop(inner);
    assert!(e.sessions.read().unwrap().contains_key(&new));
}

/// `owner`'s revoke-all call to `e`, with `nonce`.
/// A `revoke_all` by `owner`, with the owner nonce [`at`]`(T0, nonce)`.
pub(super) fn revoke_all(e: &Enclave, owner: &SecretKey, nonce: u64) -> Call {
    let msg = OwnerAction {
        action: action::REVOKE_ALL.into(),
        enclave: e.identity_address(),
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: at(T0, nonce),
    };
    Call::RevokeAll(RevokeAll { auth: sign(owner, &msg) })
}

/// Owner nonces are per owner and anyone can be an owner: a host holding back an owner's
/// `revoke_all` and sending its own, from a fresh key with the same nonce, gets the
/// enclave's genuine receipt — which must not answer the owner's message. The receipt's
/// word binds the owner (found 2026-12-04 by a review: it was the bare nonce, and the owner
/// tools printed "revoked, signed by the enclave" with none of the owner's sessions revoked).
#[test]
fn an_owner_receipt_answers_only_its_owners_message() {
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let mine = create(&e, T0, 1).unwrap();
    let stranger = SecretKey::from_slice(&[43u8; 32]).unwrap();
    let Reply::Revoked(r) = e.handle(revoke_all(&e, &stranger, 100)).unwrap() else { panic!("not revoked") };
    assert!(r.sessions.is_empty());
    let word = |k: &SecretKey| bridle_common::receipt::owner_nonce(addr(k), at(T0, 100));
    assert_ne!(word(&owner), word(&stranger));
    bridle_common::receipt::verify(&r, e.identity_address(), Some(word(&stranger)))
        .expect("the stranger's own receipt");
    let err = bridle_common::receipt::verify(&r, e.identity_address(), Some(word(&owner)))
        .expect_err("another owner's receipt answers nothing the owner signed");
    assert!(matches!(err, bridle_common::receipt::ReceiptError::WrongNonce { .. }), "{err:?}");
    // The owner's own message, with the same nonce, is still accepted and answered.
    let Reply::Revoked(r) = e.handle(revoke_all(&e, &owner, 100)).unwrap() else { panic!("not revoked") };
    assert_eq!(r.sessions, vec![mine]);
    bridle_common::receipt::verify(&r, e.identity_address(), Some(word(&owner))).expect("the owner's receipt");
}

#[test]
fn revoke_all_appends_in_session_address_order() {
    // Every replica of a cluster must append the same audit chain; the session map's order
    // is each process's own.
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let mut made: Vec<Address> = (1..=12).map(|n| create(&e, T0, n).unwrap()).collect();
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let Reply::Revoked(r) = e.handle(revoke_all(&e, &owner, 100)).unwrap() else { panic!("not revoked") };
    made.sort();
    assert_eq!(r.sessions, made);
    let log = e.audit.entries(0, 1000, None, &e.identity, T0).unwrap();
    let revoked: Vec<Address> = log
        .entries
        .iter()
        .filter(|x| x.kind == bridle_common::audit::Decision::RevokedAll)
        .map(|x| x.session)
        .collect();
    assert_eq!(revoked, made, "revocations appended in address order");
}

#[test]
fn a_creation_refused_at_the_limit_cannot_be_relayed_once_there_is_room() {
    // A host that kept a creation refused while the enclave was full could relay it once a
    // finished session would make room (review of 2026-12-03): its nonce is spent.
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config { max_sessions: 1, ..Config::default() });
    let first = create(&e, T0, 1).unwrap();
    // Valid until T0 + 6900: still valid when the first session (until T0 + 3600) is over.
    clock.set(T0 + 3300);
    let d = create(&e, T0 + 3300, 2).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("enclave.max_sessions")), "{d}");
    // Five minutes later: the message is not stale, its nonce is spent.
    clock.set(T0 + 3601);
    let d = create(&e, T0 + 3300, 2).unwrap_err();
    assert_eq!(d.code, ErrorCode::Replayed, "the refused creation took effect later: {d}");
    assert!(d.reason.contains("is not above the last accepted"), "{d}");
    assert!(e.sessions.read().unwrap().contains_key(&first), "the replay made no room");
    create(&e, T0 + 3601, 3).expect("signed afresh, it is created");
}

#[test]
fn a_leader_attaches_a_key_when_the_lifetime_passes_now_or_two_seconds_later() {
    // The entry's application checks the lifetime at its own clock reading, a moment after
    // the leader's: a policy a second too long now must not lose the key its signers' nodes
    // need (a review of 2026-12-03).
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let until = |t: u64| {
        resolve_text(
            &format!("name='l'\nchains=[1]\nvalid_until={t}\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n"),
            T0,
        )
        .unwrap()
    };
    assert!(e.policy_would_pass_its_lifetime(&until(T0 + 3600)));
    // The limit is 24 h and 5 minutes of clock skew: 86 700 s.
    assert!(e.policy_would_pass_its_lifetime(&until(T0 + 86_701)), "a second too long now, within it at T0 + 2");
    assert!(!e.policy_would_pass_its_lifetime(&until(T0 + 86_703)), "too long at both readings");
    assert!(e.policy_would_pass_its_lifetime(&until(T0 + 1)), "valid now");
}

#[test]
fn a_leader_checks_an_owner_nonce_two_seconds_ahead_of_its_clock() {
    // An owner nonce may be at most the entry's time in milliseconds plus ten minutes; the
    // entry's time is read a moment after the leader's check. Checked at the same second, a
    // nonce a second over the bound was refused before the log and then applied a second
    // later — an update without the keys its release signers' nodes need (a review of
    // 2026-12-03). The leader checks two seconds ahead, so what it refuses stays refused.
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config::default());
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    // `revoke_all` signs `at(T0, k)`: this one signs the nonce given.
    let revoke_all = |nonce: u64| revoke_all(&e, &owner, nonce - at(T0, 0));
    let bound = super::owners::max_nonce(T0);
    e.precheck_owner(&revoke_all(bound + 2_000)).expect("within the bound two seconds on");
    let d = e.precheck_owner(&revoke_all(bound + 2_001)).unwrap_err();
    assert_eq!(d.code, ErrorCode::Replayed, "{d}");
    // Applied now, a nonce one second over the bound is refused (and spends nothing)…
    assert_eq!(e.handle(revoke_all(bound + 1_000)).unwrap_err().code, ErrorCode::Replayed);
    // …and a second later it passes.
    clock.set(T0 + 1);
    e.handle(revoke_all(bound + 1_000)).expect("applied at the next second");
}

#[test]
fn a_creation_whose_attestation_fails_still_holds_the_session_every_replica_holds() {
    // Only the node that answers a creation signs and attests its binding. A failure there
    // (the NSM's) used to return before the session was inserted, charged and logged — after
    // finished sessions were dropped and its ceilings admitted: that node alone lacked the
    // session the others held (a review of 2026-12-03). Answering `internal` after the
    // insert would hide a session that exists (the host stores one only from its reply, and
    // an owner told `internal` grants again): the reply carries the binding unattested.
    struct Failing;
    impl Attestor for Failing {
        fn attest(&self, _: Option<Vec<u8>>, _: Option<Vec<u8>>, _: Option<Vec<u8>>) -> Result<Vec<u8>, String> {
            Err("the NSM is gone".into())
        }
    }
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), Some(Box::new(Failing)), Config::default());
    let session = create(&e, T0, 1).expect("created, its binding unattested");
    let made: Vec<Address> = e.sessions.read().unwrap().keys().copied().collect();
    assert_eq!(made, vec![session], "the session exists, as on every replica");
    let log = e.audit.entries(0, 1000, None, &e.identity, T0).unwrap();
    let kinds: Vec<_> = log.entries.iter().map(|x| x.kind).collect();
    assert!(kinds.contains(&bridle_common::audit::Decision::SessionCreated), "{kinds:?}");
    assert_eq!(log.entries.len(), 2, "boot and creation only, no refusal beside it: {kinds:?}");
    // Its nonce is spent, and the owner reaches the session.
    assert_eq!(create(&e, T0, 1).unwrap_err().code, ErrorCode::Replayed);
    assert!(e.status(Some(session), None, None).unwrap().session.is_some());
}

#[test]
fn an_owners_change_is_receipted_by_the_node_that_answers_and_stands_on_every_replica() {
    // One path for every owner change's receipt: signed after the change, by the node that
    // answers; a replica applying the same log entry makes no reply and signs nothing.
    let e = Enclave::new(Box::new(Shared(Arc::new(FixedClock::new(T0)))), None, Config::default());
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let word = |n: u64| bridle_common::receipt::owner_nonce(addr(&owner), at(T0, n));
    let replica = crate::apply::ApplyCtx { clock: T0, proposer: false };
    let proposer = crate::apply::ApplyCtx { clock: T0, proposer: true };

    // A creation applied by a replica: the session is there, its reply unreceipted.
    let c = crate::apply::with(replica, || create_reply(&e, T0, 1)).unwrap();
    assert!(c.receipt.is_none() && c.binding_signature.is_empty(), "a replica signs nothing");
    assert!(e.sessions.read().unwrap().contains_key(&c.binding.session), "the replica holds the session");
    // The same on the proposer, and outside a cluster: receipted for the owner's nonce.
    let c2 = crate::apply::with(proposer, || create_reply(&e, T0, 2)).unwrap();
    bridle_common::receipt::verify(&c2, e.identity_address(), Some(word(2))).expect("the proposer's receipt");
    let alone = create(&e, T0, 3).unwrap();
    let extra = create(&e, T0, 4).unwrap();

    // One session's revocation applied by a replica: revoked, no receipt; answered alone,
    // receipted.
    let revoke = |session: Address, nonce: u64| {
        let msg = OwnerAction {
            action: action::REVOKE.into(),
            enclave: e.identity_address(),
            session,
            agent: e.session(&session).unwrap().agent,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce: at(T0, nonce),
        };
        match e.handle(Call::Revoke(Revoke { session, auth: sign(&owner, &msg) })).unwrap() {
            Reply::Revoked(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    };
    let r = crate::apply::with(replica, || revoke(alone, 5));
    assert!(r.receipt.is_none() && r.sessions == vec![alone]);
    let r = revoke(c2.binding.session, 6);
    bridle_common::receipt::verify(&r, e.identity_address(), Some(word(6))).expect("the revocation's receipt");

    // A revocation of every session applied by a replica: the two left revoked, no receipt.
    let Reply::Revoked(r) = crate::apply::with(replica, || e.handle(revoke_all(&e, &owner, 7))).unwrap() else {
        panic!("not revoked")
    };
    assert!(r.receipt.is_none());
    let mut left = vec![c.binding.session, extra];
    left.sort();
    assert_eq!(r.sessions, left, "the replica revoked them");
    // Answered alone, the same call (a fresh nonce: nothing left to revoke) is receipted.
    let Reply::Revoked(r) = e.handle(revoke_all(&e, &owner, 8)).unwrap() else { panic!("not revoked") };
    assert!(r.sessions.is_empty());
    bridle_common::receipt::verify(&r, e.identity_address(), Some(word(8))).expect("the revocation's receipt");
}

#[test]
fn a_receipt_that_fails_to_sign_leaves_the_reply_as_made_not_an_error() {
    // k256 does not fail to sign with a valid key; the path is driven with a signer that
    // fails: the change's reply comes back whole, without a receipt (owner tools refuse it).
    let reply = Revoked { sessions: vec![Address::repeat_byte(7)], receipt: None };
    let out = receipt_or_log(reply.clone(), Address::repeat_byte(1), T0, B256::ZERO, |_| Err("no signer"));
    assert_eq!(out, reply);
    let d = bridle_common::receipt::verify(&out, Address::repeat_byte(1), Some(B256::ZERO)).unwrap_err();
    assert_eq!(d, bridle_common::receipt::ReceiptError::Missing, "{d}");
}

/// A review of 2026-12-06: a cluster leader logged every sweep (anyone may ask) without a
/// check, so sweeps naming no session, with terms a sweep refuses, asking unsigned for an
/// account's sweep or failing their owner's signature reached every node's log unbounded.
/// Its check now refuses them, and the leader logs such refusals only within its bound.
/// A later review: unsigned sweeps whose fees the policy does not allow (no fee cap, or
/// over it) were still logged and refused only when applied; the check refuses them too,
/// when the session's lock is free (it never waits for it).
#[test]
fn a_leader_checks_a_sweep_before_logging_it() {
    use alloy_primitives::U256;
    use bridle_common::protocol::{AccountFormat, AccountSweepTerms, Sweep, SweepTerms};
    let e = Enclave::new(Box::new(FixedClock::new(T0)), None, Config::default());
    let uncapped = create(&e, T0, 1).unwrap();
    let session = create_naming(&e, "[gas]\nmax_fee_per_gas='2 gwei'\nmax_priority_fee_per_gas='1 gwei'");
    let terms = |chain_id, gas_limit| SweepTerms {
        chain_id,
        nonce: 0,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit,
    };
    let sweep = |session, terms: Vec<SweepTerms>| Sweep { session, terms, accounts: vec![], auth: None };
    e.precheck_owner(&Call::Sweep(sweep(session, vec![terms(1, 100_000)]))).expect("anyone may ask");
    let code = |w: Sweep| e.precheck_owner(&Call::Sweep(w)).unwrap_err().code;
    assert_eq!(code(sweep(Address::repeat_byte(7), vec![terms(1, 100_000)])), ErrorCode::UnknownSession);
    assert_eq!(code(sweep(session, vec![terms(1, 100_000), terms(1, 100_000)])), ErrorCode::Malformed);
    assert_eq!(code(sweep(session, vec![terms(1, 20_000)])), ErrorCode::GasCap);
    // Fees over the policy's caps, unsigned: refused before the log.
    let over = |fee, tip| SweepTerms { max_fee_per_gas: fee, max_priority_fee_per_gas: tip, ..terms(1, 100_000) };
    let rule = |w: Sweep| e.precheck_owner(&Call::Sweep(w)).unwrap_err().rule;
    assert_eq!(rule(sweep(session, vec![over(2_000_000_001, 0)])).as_deref(), Some("gas.max_fee_per_gas"));
    assert_eq!(
        rule(sweep(session, vec![over(2_000_000_000, 1_000_000_001)])).as_deref(),
        Some("gas.max_priority_fee_per_gas")
    );
    // A policy that caps no fee: only the owner may set a sweep's fees.
    assert_eq!(rule(sweep(uncapped, vec![terms(1, 100_000)])).as_deref(), Some("gas.max_fee_per_gas"));
    // While the session's lock is held the check does not wait for it: the fees are
    // checked when the sweep is applied.
    let held = e.session(&session).unwrap();
    let guard = held.lock();
    e.precheck_owner(&Call::Sweep(sweep(session, vec![over(9_000_000_000, 0)]))).expect("not waited on");
    drop(guard);
    let account = AccountSweepTerms {
        chain_id: 1,
        entry_point: Address::repeat_byte(0xe9),
        entry_point_version: None,
        sender: Address::repeat_byte(0xac),
        nonce: U256::ZERO,
        format: AccountFormat::SimpleAccount,
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
    };
    let unsigned_account = Sweep { accounts: vec![account], ..sweep(session, vec![]) };
    assert_eq!(code(unsigned_account), ErrorCode::Unauthenticated);
    // Signed by a key that does not own the session.
    let stranger = SecretKey::from_slice(&[43u8; 32]).unwrap();
    let mut signed = sweep(session, vec![terms(1, 100_000)]);
    let msg = OwnerAction {
        action: action::SWEEP.into(),
        enclave: e.identity_address(),
        session,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: signed.terms_digest(),
        nonce: 5,
    };
    signed.auth = Some(sign(&stranger, &msg));
    assert_eq!(code(signed), ErrorCode::Unauthenticated);
}

/// A review of 2026-12-06: a call that changes the exposure book logged its records before
/// it took the book's lock to publish, so another session's decision by the book as it
/// was (a refusal by a revoked session's ceiling) could be logged after the revocation. A
/// publication now takes the book's lock before anything is logged and keeps it until it
/// is written; a call that changes nothing in the book takes no lock.
#[test]
fn a_change_to_the_book_holds_its_lock_from_before_the_log() {
    let e = Enclave::new(Box::new(FixedClock::new(T0)), None, Config::default());
    let c = create_naming(&e, "owner_exposure_ceiling = '100 USD'\nprices = { ETH = '3000' }");
    let session = e.session(&c).unwrap();
    let mut inner = session.lock();
    let mut gate = e.gate(&session);
    assert!(gate.prepare(&inner).is_none(), "published at creation: nothing changes");
    assert!(e.exposure.try_lock().is_ok(), "no lock taken");
    inner.published = None; // as if its holdings or ceilings had changed
    let p = gate.prepare(&inner).expect("a change");
    assert!(e.exposure.try_lock().is_err(), "the book is locked before anything is logged");
    gate.commit(&mut inner, p);
    assert!(e.exposure.try_lock().is_err(), "until the gate is done");
    drop(gate);
    assert!(e.exposure.try_lock().is_ok());
}

/// A session created by the owner `[42; 32]` with `top` among its policy's settings.
fn create_naming(e: &Enclave, top: &str) -> Address {
    match e.handle(Call::CreateSession(creation_naming(e, T0, 7, top))).unwrap() {
        Reply::SessionCreated(c) => c.binding.session,
        other => panic!("unexpected {other:?}"),
    }
}

/// A review of 2026-12-06: a cluster leader attached a session's key to an update naming a
/// release signer even when the update, signed before the session's suspension, would be
/// refused when applied — the key reached the signer's nodes first. The leader now asks
/// whether the update may lift the suspension as the session stands.
#[test]
fn a_leader_sees_an_update_signed_before_the_suspension_cannot_lift_it() {
    let clock = Arc::new(FixedClock::new(T0));
    let e = Enclave::new(Box::new(Shared(clock.clone())), None, Config::default());
    let c = creation(&e, T0, 1);
    let s = create(&e, T0, 1).unwrap();
    let update = |nonce: u64| UpdatePolicy {
        auth: OwnerAuth { owner: c.auth.owner, nonce, signature: Bytes::new() },
        session: s,
        policy: c.policy.clone(),
    };
    assert!(e.update_may_lift_now(&update(at(T0, 5))), "not suspended: nothing to lift");
    clock.set(T0 + 30);
    e.session(&s).unwrap().lock().machine.fail_closed("test");
    let at_suspension = e.session(&s).unwrap().lock().machine.suspended_at().unwrap();
    assert!(!e.update_may_lift_now(&update(at(at_suspension, 999))), "signed within the suspension's second");
    assert!(e.update_may_lift_now(&update(at(at_suspension + 1, 0))), "signed after it");
    // A session busy at this moment is not waited for.
    let session = e.session(&s).unwrap();
    let _held = session.lock();
    assert!(e.update_may_lift_now(&update(at(T0, 5))));
}
