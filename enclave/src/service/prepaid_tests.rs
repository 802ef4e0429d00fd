//! The owner's way out when the memory budget is spent: the reserve every owner's signed
//! sweep shared could be used up by anyone's own owner-signed sweeps (a review of
//! 2026-12-05); each approval now prepays its revocations, which the owner's sweep takes
//! on credit whatever other sessions did.

use super::budget::{HEADROOM, OWNER_SWEEP_ROOM};
use super::room_tests::{addr, at, creation_naming, sign, T0};
use super::*;
use crate::clock::FixedClock;
use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use bridle_common::allowance::PREPAID_PER_APPROVAL;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::stamp::{PayloadKind, StampKey};
use bridle_common::tx::{Eip1559Request, TxRequest};
use k256::SecretKey;

alloy_sol_types::sol! { function approve(address spender, uint256 amount) returns (bool); }

const TOKEN: Address = Address::repeat_byte(0xa1);
const SPENDER: Address = Address::repeat_byte(0x5e);

/// A session of the owner `[42; 32]` and the agent `[n + 1; 32]` that has signed one
/// approval of [`TOKEN`] to [`SPENDER`] on chain 1, at nonce 0.
fn approving_session(e: &Enclave, n: u64) -> Address {
    approving_session_naming(e, n, "")
}

/// [`approving_session`] with `extra` (policy text) among the policy's top-level settings.
fn approving_session_naming(e: &Enclave, n: u64, extra: &str) -> Address {
    let top = format!(
        "{extra}\n[tokens]\nA = {{ address = \"{TOKEN}\", decimals = 6 }}\n\
         [approvals]\nspenders = [\"{SPENDER}\"]\nmax = [\"500 A\"]\n\
         [[calls]]\ntarget = \"A\"\nfunctions = [\"approve(address,uint256)\"]\n"
    );
    let session = match e.handle(Call::CreateSession(creation_naming(e, T0, n, &top))).unwrap() {
        Reply::SessionCreated(c) => c.binding.session,
        other => panic!("unexpected {other:?}"),
    };
    let agent = SecretKey::from_slice(&[n as u8 + 1; 32]).unwrap();
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
    let stamp_key = StampKey::derive(&agent, &enclave_pk, session, addr(&agent));
    let tx = TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 60_000,
        to: Some(TOKEN),
        value: U256::ZERO,
        data: approveCall { spender: SPENDER, amount: U256::from(100_000_000u64) }.abi_encode().into(),
        access_list: vec![],
    });
    let digest = tx.build().unwrap().signing_hash();
    let stamp = stamp_key.stamp(session, PayloadKind::Transaction, &digest, [n as u8; 16], T0);
    let req = SignRequest { session, payload: SignPayload::Transaction(tx), stamp };
    e.handle(Call::SignIfAllowed(req)).expect("the approval is signed");
    session
}

/// The owner's signed sweep of `session` at chain 1's `nonce`, with the owner's `owner_nonce`.
fn owners_sweep(e: &Enclave, session: Address, nonce: u64, owner_nonce: u64) -> Result<Reply, Denial> {
    let terms = vec![SweepTerms {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 2,
        gas_limit: 100_000,
    }];
    let unsigned = Sweep { session, terms, accounts: vec![], auth: None };
    let msg = OwnerAction {
        action: action::SWEEP.into(),
        enclave: e.identity_address(),
        session,
        agent: e.session(&session).unwrap().agent,
        policyHash: B256::ZERO,
        subject: unsigned.terms_digest(),
        nonce: at(T0, owner_nonce),
    };
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    e.handle(Call::Sweep(Sweep { auth: Some(sign(&owner, &msg)), ..unsigned }))
}

fn revocations(r: Result<Reply, Denial>) -> usize {
    match r {
        Ok(Reply::Swept(r)) => r.transactions.len(),
        other => panic!("the owner's sweep was refused: {other:?}"),
    }
}

/// What `session` is charged, and the revocations it has prepaid.
fn charged(e: &Enclave, session: Address) -> (usize, usize) {
    let s = e.session(&session).unwrap();
    let inner = s.lock();
    (inner.charged, inner.machine.counters().allowances.prepaid())
}

fn refused_for_the_budget(r: Result<Reply, Denial>) -> Denial {
    let d = r.expect_err("refused for the budget");
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("enclave.memory_budget")), "{d}");
    d
}

/// The attack: the budget spent by sessions anyone can make, then the owner-sweep reserve
/// spent by an attacker's own owner-signed sweeps of its own session (re-signs nobody
/// broadcasts). Before the credit, the victim's owner could then revoke nothing. Now the
/// victim's sweep goes through on its session's credit, the first revocation and one fee
/// bump, adding nothing to what the budget already charged.
#[test]
fn an_owners_sweep_goes_through_on_its_credit_when_others_spent_the_reserve() {
    let e = Enclave::new(Box::new(FixedClock::new(T0 + 60)), None, Config::default());
    let victim = approving_session(&e, 1);
    let attacker = approving_session(&e, 2);
    assert_eq!(charged(&e, victim).1, PREPAID_PER_APPROVAL, "one approval prepays its revocations");
    // Spent for everyone but the owners' reserve, and one byte of it beyond.
    let rest = e.budget.limit() - e.budget.used() - OWNER_SWEEP_ROOM;
    e.budget.recharge(0, rest - 1);
    assert!(!e.budget.has_room(HEADROOM) && e.budget.has_room(OWNER_SWEEP_ROOM));
    // The attacker's owner sweeps: the first two use its own credit (its charge stays), the
    // next grows the budget past the shared reserve, and then it is refused.
    let used = e.budget.used();
    for owner_nonce in 3..3 + PREPAID_PER_APPROVAL as u64 {
        assert_eq!(revocations(owners_sweep(&e, attacker, 1, owner_nonce)), 1);
    }
    assert_eq!(e.budget.used(), used, "revocations on credit add nothing to the budget's use");
    assert_eq!(charged(&e, attacker).1, 0);
    assert_eq!(revocations(owners_sweep(&e, attacker, 1, 10)), 1, "the shared reserve's last room");
    assert!(!e.budget.has_room(OWNER_SWEEP_ROOM), "the shared reserve is spent");
    let d = refused_for_the_budget(owners_sweep(&e, attacker, 1, 11));
    assert!(d.reason.contains("prepaid (0 left)"), "{d}");
    // The victim's owner still revokes, and bumps once, on credit: the session's charge and
    // the budget's use do not grow.
    let (before, prepaid) = charged(&e, victim);
    assert_eq!(prepaid, PREPAID_PER_APPROVAL);
    let used = e.budget.used();
    // Not in the place of what the session signed (it could bring a settled key back).
    let d = refused_for_the_budget(owners_sweep(&e, victim, 0, 19));
    assert!(d.reason.contains("nonce 0 holds something else"), "{d}");
    assert_eq!(charged(&e, victim), (before, PREPAID_PER_APPROVAL));
    assert_eq!(revocations(owners_sweep(&e, victim, 1, 20)), 1, "the revocation, on credit");
    assert_eq!(revocations(owners_sweep(&e, victim, 1, 21)), 1, "its fee bump, on credit");
    let (after, prepaid) = charged(&e, victim);
    assert_eq!(prepaid, 0);
    assert_eq!(after, before, "the credit and the gas line it kept became the writes and the line");
    assert_eq!(e.budget.used(), used);
    // Past its credit it is refused like the attacker's, and changes nothing.
    let items = e.session(&victim).unwrap().lock().machine.counters().allowances.items().len();
    let d = refused_for_the_budget(owners_sweep(&e, victim, 1, 22));
    assert!(d.reason.contains("prepaid (0 left), and this one writes 1"), "{d}");
    assert_eq!(e.session(&victim).unwrap().lock().machine.counters().allowances.items().len(), items);
    assert_eq!(charged(&e, victim), (after, 0));
}

/// Approving a held request signs it, growing the session's state as a signature does (its
/// approvals, the revocations they prepay, the exposure book): a review of the credit found
/// it took no room. Now it needs the headroom of a signature; a refusal spends the owner's
/// nonce, as every refusal of an approval does (a refused approval must not be replayable
/// once there is room).
#[test]
fn an_owners_approval_of_a_held_request_needs_a_signatures_room() {
    let e = Enclave::new(Box::new(FixedClock::new(T0 + 60)), None, Config::default());
    let s = approving_session(&e, 1);
    let rest = e.budget.limit() - e.budget.used() - OWNER_SWEEP_ROOM;
    e.budget.recharge(0, rest);
    assert!(!e.budget.has_room(HEADROOM));
    let digest = B256::repeat_byte(7);
    let msg = OwnerAction {
        action: action::APPROVE_PENDING.into(),
        enclave: e.identity_address(),
        session: s,
        agent: e.session(&s).unwrap().agent,
        policyHash: B256::ZERO,
        subject: digest,
        nonce: at(T0, 3),
    };
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    let d = refused_for_the_budget(e.handle(Call::ApprovePending(ApprovePending {
        auth: sign(&owner, &msg),
        session: s,
        digest,
    })));
    assert!(d.reason.contains("no held request"), "{d}");
    // With room again, the same message is refused as spent.
    e.budget.recharge(rest, 0);
    let d =
        e.handle(Call::ApprovePending(ApprovePending { auth: sign(&owner, &msg), session: s, digest })).unwrap_err();
    assert_eq!(d.code, ErrorCode::Replayed, "{d}");
}

/// A revoked session's key, kept while an approval may be outstanding, goes on travelling
/// by its policy's release signers: the owner's sweeps must survive the upgrades the owner
/// trusted them for. (Sent by custody only, it was lost with the last node of a signed
/// image once the cluster moved on: a review of 2026-12-05 weighed both ways.)
#[test]
fn a_revoked_sessions_kept_key_still_goes_by_its_release_signers() {
    use crate::cluster::redact::Current;
    let e = Enclave::new(Box::new(FixedClock::new(T0 + 60)), None, Config::default());
    let signer = crate::cluster::types::Pcr8::repeat_byte(0x5e);
    let s = approving_session_naming(&e, 1, &format!("release_signers = [\"{signer}\"]"));
    assert_eq!(e.key_view(&s), Some(Current::Live(vec![signer])));
    let owner = SecretKey::from_slice(&[42u8; 32]).unwrap();
    e.handle(super::room_tests::revoke_all(&e, &owner, 3)).expect("revoked");
    let session = e.session(&s).unwrap();
    assert!(!session.lock().machine.key_destroyed(), "kept: the approval may be outstanding");
    assert_eq!(e.key_view(&s), Some(Current::Live(vec![signer])));
}
