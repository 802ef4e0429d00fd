//! The machine on its own: session time, period boundaries, pending approvals.

use super::*;
use crate::audit::Decision;
use crate::error::ErrorCode;
use crate::payload::prepare;
use crate::policy::file::resolve_text;
use crate::protocol::SignPayload;
use crate::stamp::Stamp;
use crate::tx::{Eip1559Request, TxRequest};
use alloy_primitives::{address, Bytes, Signature, U256};

const T0: u64 = 1_800_000_000;
const SESSION: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000b0");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

/// 1 ETH a day; anything over 0.1 ETH a day waits 10 minutes for the owner.
const POLICY: &str = r#"
name = "machine-tests"
chains = [1]
valid_for = "30d"
recipients = ["0x000000000000000000000000000000000000dEaD"]
escalate = { above_value = "0.1 ETH", ttl = "10m" }

[[limits]]
max = "1 ETH"
per = "day"

[[calls]]
target = "0x000000000000000000000000000000000000dEaD"
functions = ["receive()"]
"#;

struct Key;

impl Signer for Key {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

fn machine() -> Machine {
    let doc = resolve_text(POLICY, T0).expect("policy");
    let compiled = CompiledPolicy::compile(doc).expect("compiles");
    Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), compiled, T0, 60, 1024)
}

fn pay(nonce: u64, milli_eth: u64) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        gas_limit: 21_000,
        to: Some(DEAD),
        value: U256::from(milli_eth) * U256::from(10u64).pow(U256::from(15u64)),
        data: Bytes::new(),
        access_list: vec![],
    }))
}

/// Ask with a fresh stamp at `clock`.
fn ask(m: &mut Machine, clock: u64, p: &SignPayload) -> Result<Signed, Denial> {
    ask_out(m, clock, p).result
}

fn ask_out(m: &mut Machine, clock: u64, p: &SignPayload) -> Outcome<Signed> {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    let stamp = Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
    m.sign(clock, p, prepare(p).expect("prepares"), &stamp, Some(&Key))
}

fn digest(p: &SignPayload) -> B256 {
    prepare(p).expect("prepares").stamp_digest()
}

#[test]
fn a_denied_request_is_refused_until_its_ttl_then_decided_afresh() {
    let mut m = machine();
    let big = pay(0, 500);
    let d = digest(&big);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);

    let out = m.deny(T0 + 2, d);
    assert_eq!(out.result, Ok(T0 + 1 + 600), "denied until the held request's time-to-live");
    let kinds: Vec<Decision> = out.records.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [Decision::Rejected]);
    assert_eq!(out.records[0].code, Some(ErrorCode::DeniedByOwner));

    // Asking again: refused with the escalation rule named, not held again, not counted,
    // and logged (the agent's own fresh request, refused).
    let again = ask_out(&mut m, T0 + 3, &big);
    let e = again.result.unwrap_err();
    assert_eq!((e.code, e.rule.as_deref()), (ErrorCode::DeniedByOwner, Some("escalate.above_value")));
    let logged: Vec<(Decision, Option<ErrorCode>)> = again.records.iter().map(|r| (r.kind, r.code)).collect();
    assert_eq!(logged, [(Decision::Denied, Some(ErrorCode::DeniedByOwner))]);
    assert_eq!(m.counters().uses, 0);
    // Denying again changes nothing and logs nothing; approving is refused.
    let again = m.deny(T0 + 4, d);
    assert_eq!((again.result, again.records.len()), (Ok(T0 + 601), 0));
    let a = m.approve(T0 + 5, d, Some(&Key));
    assert_eq!(a.result.unwrap_err().code, ErrorCode::DeniedByOwner);
    assert_eq!(m.counters().uses, 0, "nothing signed or charged");
    assert_eq!(m.status(T0 + 5, None).pending[0].state, "denied");

    // After the time-to-live the request is decided afresh: held again for the owner.
    assert_eq!(ask(&mut m, T0 + 601, &big).unwrap_err().code, ErrorCode::PendingApproval);
    assert_eq!(m.status(T0 + 602, None).pending[0].state, "waiting");
}

#[test]
fn only_a_waiting_request_can_be_denied() {
    let mut m = machine();
    // Never held.
    let e = m.deny(T0 + 1, B256::repeat_byte(7));
    assert_eq!(e.result.unwrap_err().code, ErrorCode::Malformed);
    assert!(e.records.is_empty());

    // Approved and signed: a signature cannot be taken back.
    let big = pay(0, 500);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);
    assert!(m.approve(T0 + 2, digest(&big), Some(&Key)).result.is_ok());
    let e = m.deny(T0 + 3, digest(&big)).result.unwrap_err();
    assert_eq!(e.code, ErrorCode::Malformed);
    assert!(e.reason.contains("cannot be taken back"), "{e}");
    assert!(ask(&mut m, T0 + 4, &big).is_ok(), "the approved signature is still collectable");

    // Expired: refused `expired`, forgotten.
    let other = pay(1, 400);
    assert_eq!(ask(&mut m, T0 + 10, &other).unwrap_err().code, ErrorCode::PendingApproval);
    let out = m.deny(T0 + 10 + 600, digest(&other));
    assert_eq!(out.result.unwrap_err().code, ErrorCode::Expired);
    assert_eq!(out.records[0].kind, Decision::ExpiredPending);

    // Revoked: every owner call on a held request is `revoked`.
    let third = pay(2, 300);
    assert_eq!(ask(&mut m, T0 + 700, &third).unwrap_err().code, ErrorCode::PendingApproval);
    let _ = m.revoke(T0 + 701, false);
    assert_eq!(m.deny(T0 + 702, digest(&third)).result.unwrap_err().code, ErrorCode::Revoked);
}

#[test]
fn a_denial_survives_a_snapshot() {
    let mut m = machine();
    let big = pay(0, 500);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);
    assert!(m.deny(T0 + 2, digest(&big)).result.is_ok());
    let bytes = crate::frame::to_cbor(&m.snapshot()).expect("cbor");
    let mut r = Machine::restore(crate::frame::from_cbor(&bytes).expect("decodes")).expect("restores");
    assert_eq!(ask(&mut r, T0 + 3, &big).unwrap_err().code, ErrorCode::DeniedByOwner);
}

#[test]
fn a_suspension_does_not_wipe_a_denial() {
    // Review finding: the agent trips the trip-wire to drop the owner's denial, then the
    // owner's update lifts the suspension and the request would be held (or signed) again.
    let text = POLICY
        .replace("name = \"machine-tests\"", "name = \"machine-tests\"\ntrip_wire = { denials = 2, within = \"1h\" }");
    let doc = resolve_text(&text, T0).expect("policy");
    let mut m = Machine::new(
        SESSION,
        OWNER,
        Address::repeat_byte(0xa9),
        CompiledPolicy::compile(doc.clone()).unwrap(),
        T0,
        60,
        1024,
    );
    let big = pay(0, 500);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);
    assert!(m.deny(T0 + 2, digest(&big)).result.is_ok());
    // Two policy denials (value to a stranger): suspended.
    let stranger = |n: u64| {
        let SignPayload::Transaction(TxRequest::Eip1559(mut r)) = pay(n, 1) else { unreachable!() };
        r.to = Some(Address::repeat_byte(0x66));
        SignPayload::Transaction(TxRequest::Eip1559(r))
    };
    assert_eq!(ask(&mut m, T0 + 3, &stranger(5)).unwrap_err().code, ErrorCode::TargetNotAllowed);
    assert_eq!(ask(&mut m, T0 + 4, &stranger(6)).unwrap_err().code, ErrorCode::TargetNotAllowed);
    assert_eq!(ask(&mut m, T0 + 5, &big).unwrap_err().code, ErrorCode::Suspended);
    // The owner lifts the suspension: the denial still holds until its time.
    assert!(m.update_policy(T0 + 6, CompiledPolicy::compile(doc).unwrap()).result.is_ok());
    assert_eq!(ask(&mut m, T0 + 7, &big).unwrap_err().code, ErrorCode::DeniedByOwner);
    assert_eq!(m.counters().uses, 0);
}

/// A review of 2026-12-04: a session failed closed (a lock poisoned by a panic) forgot the
/// requests the owner had approved and the enclave had signed and charged; once the owner
/// lifted the suspension, asking again was decided afresh — held again, or charged twice.
/// The signature stays collectable, charged once.
#[test]
fn failing_closed_keeps_what_the_owner_approved_and_the_enclave_signed() {
    let mut m = machine();
    let big = pay(0, 500);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);
    let signed = m.approve(T0 + 2, digest(&big), Some(&Key)).result.expect("approved");
    let uses = m.counters().uses;
    m.fail_closed("test");
    assert_eq!(m.status(T0 + 3, None).pending.len(), 1, "the signed request is kept");
    let same = m.policy().as_ref().clone();
    m.update_policy(T0 + 4, same).result.expect("the owner lifts the suspension");
    let again = ask(&mut m, T0 + 5, &big).expect("collected");
    assert_eq!(again.signature, signed.signature);
    assert_eq!(m.counters().uses, uses, "charged once");
}

/// A review of 2026-12-06: an owner's update signed before a suspension must not lift it,
/// so the machine keeps when it was suspended — through a snapshot, and for a snapshot of an
/// earlier build (which has no such field) the session time, the latest it can have been.
#[test]
fn a_suspension_keeps_its_time_through_a_snapshot() {
    let mut m = machine();
    let big = pay(0, 500);
    assert_eq!(ask(&mut m, T0 + 1, &big).unwrap_err().code, ErrorCode::PendingApproval);
    assert_eq!(m.held_at(&digest(&big)), Some(T0 + 1));
    assert_eq!(m.suspended_at(), None);
    let _ = m.status(T0 + 7, None);
    m.fail_closed("test");
    let at = m.suspended_at().expect("suspended");
    let snap = m.snapshot();
    assert_eq!(snap.suspended_at, Some(at));
    assert_eq!(Machine::restore(snap.clone()).unwrap().suspended_at(), Some(at));
    // An earlier build's snapshot: no field; the creation time stands in (the snapshot's
    // session time moves on while the session is suspended: nodes restoring snapshots taken
    // at different times would decide differently).
    let mut json = serde_json::to_value(&snap).unwrap();
    json.as_object_mut().unwrap().remove("suspended_at");
    let old: super::snapshot::MachineSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(Machine::restore(old).unwrap().suspended_at(), Some(snap.facts.created_at));
    // Lifted: no time.
    let same = m.policy().as_ref().clone();
    m.update_policy(T0 + 9, same).result.expect("lifted");
    assert_eq!((m.suspended_at(), m.snapshot().suspended_at), (None, None));
}
