//! The memory budget frees what finished sessions held: at a creation the budget cannot
//! take, and (at most every RECLAIM_EVERY seconds) at a signature or sweep it cannot.

use super::budget::{HEADROOM, OWNER_SWEEP_ROOM};
use super::room_tests::{addr, at, creation, sign, T0};
use super::*;
use crate::clock::FixedClock;
use bridle_common::owner::{action, OwnerAction};
use k256::SecretKey;

struct Shared(Arc<FixedClock>);
impl Clock for Shared {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

fn create(e: &Enclave, now: u64, nonce: u64) -> Result<Address, Denial> {
    match e.handle(Call::CreateSession(creation(e, now, nonce)))? {
        Reply::SessionCreated(c) => Ok(c.binding.session),
        other => panic!("unexpected {other:?}"),
    }
}

/// An enclave whose budget takes exactly two of [`creation`]'s sessions (far below
/// `max_sessions`), on a clock the test moves.
fn two_sessions_budget() -> (Enclave, Arc<FixedClock>) {
    let probe = Enclave::new(Box::new(FixedClock::new(T0)), None, Config::default());
    create(&probe, T0, 1).unwrap();
    let one = probe.budget.used();
    assert!(one > 0);
    let clock = Arc::new(FixedClock::new(T0));
    let config = Config { memory_budget: HEADROOM + 2 * one, ..Config::default() };
    (Enclave::new(Box::new(Shared(clock.clone())), None, config), clock)
}

/// A review of 2026-12-05: finished sessions were dropped only at `max_sessions`, which a
/// real enclave's budget reaches long before; once spent, the budget refused every
/// creation — and every signature — until a restart, long after the sessions that spent
/// it had ended.
#[test]
fn a_creation_the_budget_cannot_take_drops_finished_sessions_first() {
    let (e, clock) = two_sessions_budget();
    create(&e, T0, 1).unwrap();
    create(&e, T0, 2).unwrap();
    let d = create(&e, T0, 3).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("enclave.memory_budget")), "{d}");
    // Live sessions are never dropped to make room.
    clock.set(T0 + 1_800);
    let d = create(&e, T0 + 1_800, 4).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("enclave.memory_budget"), "{d}");
    assert_eq!(e.sessions.read().unwrap().len(), 2);
    // Both ended (one-hour policies): the next creation finds their room.
    clock.set(T0 + 2 * 3_600);
    let s = create(&e, T0 + 2 * 3_600, 5).expect("room once the sessions ended");
    let held: Vec<Address> = e.sessions.read().unwrap().keys().copied().collect();
    assert_eq!(held, vec![s], "the finished sessions were dropped, their charges refunded");
}

/// The same for a call that is not a creation: a sweep (anyone may ask for one) refused for
/// a spent budget makes room first, at most once every RECLAIM_EVERY seconds.
#[test]
fn a_sweep_the_budget_cannot_take_is_refused_and_drops_finished_sessions() {
    let (e, clock) = two_sessions_budget();
    let a = create(&e, T0, 1).unwrap();
    create(&e, T0, 2).unwrap();
    // Spend the rest of the budget as a third session would.
    let rest = e.budget.limit() - e.budget.used();
    e.budget.recharge(0, rest);
    let sweep = |at: u64| {
        clock.set(at);
        let terms = vec![SweepTerms {
            chain_id: 1,
            nonce: 0,
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
            gas_limit: 100_000,
        }];
        e.handle(Call::Sweep(Sweep { session: a, terms, accounts: vec![], auth: None }))
    };
    let d = sweep(T0 + 60).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("enclave.memory_budget")), "{d}");
    assert_eq!(e.sessions.read().unwrap().len(), 2, "nothing finished yet");
    // Once they ended, the next such call drops them (the extra charge stays: it stands
    // for state this test did not make).
    clock.set(T0 + 2 * 3_600);
    let used = e.budget.used();
    let _ = sweep(T0 + 2 * 3_600);
    assert!(e.sessions.read().unwrap().is_empty(), "finished sessions dropped");
    assert!(e.budget.used() < used, "their charges refunded");
}

/// A review of the sweep's budget check: refusing every sweep once the budget is spent
/// (by sessions from keys anyone can make) closed the owner's way out too — the approvals
/// could then never be revoked on chain. An owner's signed sweep needs only its own growth;
/// an unsigned one the whole headroom.
#[test]
fn an_owners_sweep_still_has_room_when_the_budget_is_spent_for_everyone_else() {
    let (e, clock) = two_sessions_budget();
    let a = create(&e, T0, 1).unwrap();
    // Spent for signatures, creations and unsigned sweeps; room left for an owner's sweep.
    let spent = e.budget.limit() - e.budget.used() - OWNER_SWEEP_ROOM;
    e.budget.recharge(0, spent);
    assert!(!e.budget.has_room(HEADROOM) && e.budget.has_room(OWNER_SWEEP_ROOM));
    clock.set(T0 + 60);
    let terms =
        vec![SweepTerms { chain_id: 1, nonce: 0, max_fee_per_gas: 1, max_priority_fee_per_gas: 1, gas_limit: 100_000 }];
    let unsigned = Sweep { session: a, terms: terms.clone(), accounts: vec![], auth: None };
    let d = e.handle(Call::Sweep(unsigned.clone())).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("enclave.memory_budget"), "{d}");
    assert!(d.reason.contains("the owner's signed sweep still has room"), "{d}");
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let agent = addr(&SecretKey::from_slice(&[2u8; 32]).unwrap());
    let msg = OwnerAction {
        action: action::SWEEP.into(),
        enclave: e.identity_address(),
        session: a,
        agent,
        policyHash: B256::ZERO,
        subject: unsigned.terms_digest(),
        nonce: at(T0, 7),
    };
    let signed = Sweep { auth: Some(sign(&owner, &msg)), ..unsigned };
    match e.handle(Call::Sweep(signed)) {
        Ok(Reply::Swept(r)) => assert!(r.transactions.is_empty(), "nothing to revoke: {r:?}"),
        other => panic!("the owner's sweep was refused: {other:?}"),
    }
    // A signature that is not the owner's gets no room from it: refused as unauthenticated.
    let stranger = SecretKey::from_slice(&[43u8; 32]).unwrap();
    let forged = Sweep { session: a, terms, accounts: vec![], auth: Some(sign(&stranger, &msg)) };
    assert_eq!(e.handle(Call::Sweep(forged)).unwrap_err().code, ErrorCode::Unauthenticated);
}

/// A review of 2026-12-05: while the budget is short, every creation attempt (from any
/// fresh key) visited every session under the session map's write lock. Now a pass at the
/// same second as the last, with no call since that may finish a session, is skipped — and
/// a revocation in that second still makes its session's room available at once.
#[test]
fn a_short_budget_looks_for_finished_sessions_once_a_second_unless_one_may_have_finished() {
    let (e, clock) = two_sessions_budget();
    let a = create(&e, T0, 1).unwrap();
    create(&e, T0, 2).unwrap();
    let runs = || e.budget.passes.runs();
    let before = runs();
    for nonce in 3..20 {
        let d = create(&e, T0, nonce).unwrap_err();
        assert_eq!(d.rule.as_deref(), Some("enclave.memory_budget"), "{d}");
    }
    assert_eq!(runs(), before + 1, "one pass for seventeen attempts in one second");
    // A refused (forged) revocation changes nothing, nor does a revocation of every session
    // of a fresh key that holds none (answered, signed, and cheap to send): still no pass.
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let fresh = SecretKey::from_slice(&[44u8; 32]).unwrap();
    e.handle(super::room_tests::revoke_all(&e, &fresh, 1)).expect("a revoke-all of no sessions");
    create(&e, T0, 20).unwrap_err();
    assert_eq!(runs(), before + 1);
    let revoke = |signer: &SecretKey, nonce: u64| {
        let msg = OwnerAction {
            action: action::REVOKE.into(),
            enclave: e.identity_address(),
            session: a,
            agent: e.session(&a).unwrap().agent,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce: at(T0 + 1, nonce),
        };
        e.handle(Call::Revoke(Revoke { session: a, auth: sign(signer, &msg) }))
    };
    let stranger = SecretKey::from_slice(&[43u8; 32]).unwrap();
    assert_eq!(revoke(&stranger, 100).unwrap_err().code, ErrorCode::Unauthenticated);
    create(&e, T0, 30).unwrap_err();
    assert_eq!(runs(), before + 1);
    // The next second: one more pass.
    clock.set(T0 + 1);
    create(&e, T0 + 1, 31).unwrap_err();
    create(&e, T0 + 1, 32).unwrap_err();
    assert_eq!(runs(), before + 2);
    // The owner revokes `a` (its key destroyed: nothing to sweep) in that same second: the
    // next creation looks again, drops it and takes its room.
    revoke(&owner, 101).expect("the owner's revocation");
    let s = create(&e, T0 + 1, 102).expect("the revoked session's room");
    assert_eq!(runs(), before + 3);
    assert!(!e.sessions.read().unwrap().contains_key(&a) && e.sessions.read().unwrap().contains_key(&s));
}

alloy_sol_types::sol! { function approve(address spender, uint256 amount) returns (bool); }

/// A review of 2026-12-05: the exposure book's copies of a session's holdings (its last
/// publication, the book's, the sums per owner and agent) were charged nowhere. A session
/// in the book is now charged [`BOOK_ENTRY_BYTES`], [`HOLDINGS_NODES_BYTES`] once it holds
/// a token and [`HOLDING_BYTES`] per token beside the machine's footprint (measured in
/// `tests/book_memory.rs`).
#[test]
fn each_token_held_approved_is_charged_for_the_books_copies() {
    use alloy_primitives::U256;
    use alloy_sol_types::SolCall;
    use bridle_common::stamp::{PayloadKind, StampKey};
    use bridle_common::tx::{Eip1559Request, TxRequest};
    let e = Enclave::new(Box::new(FixedClock::new(T0)), None, Config::default());
    let spender = Address::repeat_byte(0x5e);
    let tokens = [Address::repeat_byte(0xa1), Address::repeat_byte(0xa2)];
    let top = format!(
        "[tokens]\nA = {{ address = \"{}\", decimals = 6 }}\nB = {{ address = \"{}\", decimals = 6 }}\n\
         [approvals]\nspenders = [\"{spender}\"]\nmax = [\"500 A\", \"500 B\"]\n\
         [[calls]]\ntarget = \"A\"\nfunctions = [\"approve(address,uint256)\"]\n\
         [[calls]]\ntarget = \"B\"\nfunctions = [\"approve(address,uint256)\"]\n",
        tokens[0], tokens[1]
    );
    let c = super::room_tests::creation_naming(&e, T0, 1, &top);
    let agent = SecretKey::from_slice(&[2u8; 32]).unwrap();
    let session = match e.handle(Call::CreateSession(c)).unwrap() {
        Reply::SessionCreated(c) => c.binding.session,
        other => panic!("unexpected {other:?}"),
    };
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
    let stamp_key = StampKey::derive(&agent, &enclave_pk, session, addr(&agent));
    let charged = |e: &Enclave| {
        let s = e.session(&session).unwrap();
        let inner = s.lock();
        (inner.charged, footprint(&inner.machine), inner.published.as_ref().map_or(0, |(h, _)| h.len()))
    };
    assert_eq!(charged(&e), (charged(&e).1, charged(&e).1, 0), "nothing held yet");
    for (nonce, token) in tokens.into_iter().enumerate() {
        let tx = TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: nonce as u64,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1,
            gas_limit: 60_000,
            to: Some(token),
            value: U256::ZERO,
            data: approveCall { spender, amount: U256::from(100_000_000u64) }.abi_encode().into(),
            access_list: vec![],
        });
        let digest = tx.build().unwrap().signing_hash();
        let stamp = stamp_key.stamp(session, PayloadKind::Transaction, &digest, [nonce as u8 + 1; 16], T0);
        let req = SignRequest { session, payload: SignPayload::Transaction(tx), stamp };
        e.handle(Call::SignIfAllowed(req)).expect("the approval is signed");
    }
    let (charged, footprint, held) = charged(&e);
    assert_eq!(held, 2, "two tokens held approved");
    assert_eq!(charged, footprint + BOOK_ENTRY_BYTES + HOLDINGS_NODES_BYTES + 2 * HOLDING_BYTES);
}
