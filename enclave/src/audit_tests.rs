//! Tests of the enclave's audit log (`audit.rs`): the chain, its head, and what each entry records.

use super::*;
use bridle_common::audit::{verify_chain, AuditError};
use bridle_common::protocol::{OwnerAuth, Revoke, RevokeAll, SignPayload};
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use std::sync::Arc;

const T0: u64 = 1_700_000_000;

impl AuditLog {
    fn reply_t(&self, since: u64, identity: &Key, now: u64) -> Result<AuditReply, Denial> {
        self.reply(since, None, identity, now)
    }
}

fn log(identity: &Key, config: AuditConfig) -> AuditLog {
    AuditLog::new(identity.address(), T0, config)
}

fn all(log: &AuditLog, identity: &Key) -> (Vec<AuditEntry>, AuditHead) {
    let mut out = Vec::new();
    let mut since = 0;
    loop {
        let r = log.reply(since, None, identity, T0 + 5).unwrap();
        out.extend(r.entries);
        since = r.head.seq + 1;
        if !r.more {
            return (out, r.head);
        }
    }
}

fn sign_req(session: Address) -> SignRequest {
    let tx = TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        gas_limit: 21_000,
        to: Some(Address::repeat_byte(1)),
        value: Default::default(),
        data: Default::default(),
        access_list: vec![],
    });
    SignRequest {
        session,
        payload: SignPayload::Transaction(tx),
        stamp: Stamp { nonce: [0; 16], timestamp: T0, mac: [0; 32] },
    }
}

fn auth(owner: Address) -> OwnerAuth {
    OwnerAuth { owner, nonce: 1, signature: Default::default() }
}

#[test]
fn the_log_starts_with_the_start_and_verifies() {
    let id = Key::generate();
    let l = log(&id, AuditConfig::default());
    let (es, head) = all(&l, &id);
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].kind, Decision::Started);
    assert_eq!((head.seq, head.time, head.enclave), (0, T0 + 5, id.address()));
    verify_chain(&es, &head, id.address(), None).unwrap();
}

#[test]
fn decisions_are_recorded_and_the_chain_verifies() {
    let id = Key::generate();
    let l = log(&id, AuditConfig::default());
    let (s, owner, agent) = (Address::repeat_byte(0x5e), Address::repeat_byte(0x0e), Address::repeat_byte(0xa9));
    let req = sign_req(s);
    let digest = bridle_common::payload::stamp_digest(&req.payload).unwrap();
    let policy = B256::repeat_byte(0x77);
    l.append(T0, rec::session_created(s, owner, agent, policy, T0 + 3600));
    l.append(T0 + 1, rec::allowed(s, digest, "transaction"));
    let spend = Denial::rule(ErrorCode::SpendCap, "limits[0]", "USDC per day: spent 80, asking 30, cap 100");
    l.append(T0 + 2, rec::denied(s, digest, &spend));
    l.append(T0 + 2, rec::pending(s, digest, "escalate", T0 + 900));
    l.append(T0 + 3, rec::approved(s, digest));
    l.append(T0 + 3, rec::expired_pending(s, B256::repeat_byte(1), T0 + 3));
    l.append(T0 + 3, rec::suspended(s, "trip-wire: 5 denials within 1m"));
    l.append(T0 + 3, rec::policy_updated(s, owner, B256::repeat_byte(0x78)));
    l.append(T0 + 3, rec::sweep(s, B256::repeat_byte(2), 1, 7, Address::repeat_byte(3), Address::repeat_byte(4)));
    l.append(T0 + 4, rec::revoked(s, owner, false));
    l.append(T0 + 4, rec::revoked(s, owner, true));
    let unauth = Denial::new(ErrorCode::Unauthenticated, "agent stamp does not verify");
    assert_eq!(l.record_sign_refusal(T0 + 5, &req, &unauth), Some(12));
    let revoke = Call::Revoke(Revoke { auth: auth(owner), session: s });
    let replayed = Denial::new(ErrorCode::Replayed, "owner nonce 1 is not above the last accepted 1");
    assert_eq!(l.record_owner_refusal(T0 + 5, Subject::of(&revoke), &replayed), Some(13));
    let status = Call::Status(bridle_common::protocol::StatusQuery { session: None, nonce: None, held: None });
    assert_eq!(l.record_owner_refusal(T0 + 5, Subject::of(&status), &replayed), None, "not an owner call");
    let call = Call::RevokeAll(RevokeAll { auth: auth(owner) });
    assert_eq!(Subject::of(&call), Subject::RevokeAll { owner });

    let (es, head) = all(&l, &id);
    let kinds: Vec<Decision> = es.iter().map(|e| e.kind).collect();
    {
        use Decision::*;
        let expected = [
            Started,
            SessionCreated,
            Allowed,
            Denied,
            Pending,
            Approved,
            ExpiredPending,
            Suspended,
            PolicyUpdated,
            Sweep,
            Revoked,
            RevokedAll,
            Denied,
            Denied,
        ];
        assert_eq!(kinds, expected);
    }
    assert_eq!((es[1].session, es[1].request_digest), (s, policy));
    assert_eq!(es[2].request_digest, digest);
    assert_eq!((es[3].code, es[3].rule.as_deref()), (Some(ErrorCode::SpendCap), Some("limits[0]")));
    assert_eq!(es[4].code, Some(ErrorCode::PendingApproval));
    assert_eq!(es[12].code, Some(ErrorCode::Unauthenticated));
    assert_eq!(es[12].request_digest, digest, "the digest is computed for bounded refusals too");
    assert_eq!((es[13].session, es[13].code), (s, Some(ErrorCode::Replayed)));
    assert!(es[13].detail.starts_with("revoke by"), "{}", es[13].detail);
    // A pending_approval denial is recorded as pending.
    assert_eq!(rec::denied(s, digest, &Denial::new(ErrorCode::PendingApproval, "held")).kind, Decision::Pending);
    let sum = verify_chain(&es, &head, id.address(), None).unwrap();
    assert_eq!(sum.head_seq, 13);
}

#[test]
fn host_caused_refusals_are_bounded_and_counted() {
    let id = Key::generate();
    let cfg = AuditConfig { refusals_per_bucket: 3, refusals_overall: 5, refusal_window: 60, ..Default::default() };
    let l = log(&id, cfg);
    let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
    let unauth = Denial::new(ErrorCode::Unauthenticated, "bad stamp");
    for _ in 0..10 {
        l.record_sign_refusal(T0, &sign_req(a), &unauth);
    }
    assert_eq!(l.next_seq(), 4, "3 of a's refusals, after the start");
    for _ in 0..10 {
        l.record_sign_refusal(T0, &sign_req(b), &unauth);
    }
    assert_eq!(l.next_seq(), 6, "overall bound: 2 more");
    assert_eq!(l.record_sign_refusal(T0, &sign_req(c), &unauth), None);
    assert_eq!(l.next_seq(), 6);
    // Decisions are never bounded.
    let spend = Denial::rule(ErrorCode::SpendCap, "limits[0]", "cap");
    for _ in 0..10 {
        l.append(T0, rec::denied(a, B256::ZERO, &spend));
    }
    assert_eq!(l.next_seq(), 16);
    // A new window: the next bounded entry says what was not logged.
    l.record_sign_refusal(T0 + 60, &sign_req(a), &unauth);
    let (es, head) = all(&l, &id);
    let last = es.last().unwrap();
    assert!(last.detail.starts_with(&format!("[7 similar refusals not logged since {T0}] ")), "{}", last.detail);
    verify_chain(&es, &head, id.address(), None).unwrap();
    // Unknown sessions share one bucket whatever address they name; owner refusals another.
    let l = log(&id, AuditConfig { refusals_per_bucket: 2, ..Default::default() });
    let unknown = Denial::new(ErrorCode::UnknownSession, "no session");
    for i in 0..50u8 {
        l.record_sign_refusal(T0, &sign_req(Address::repeat_byte(i)), &unknown);
    }
    assert_eq!(l.next_seq(), 3);
    for i in 0..50u8 {
        let s = Subject::Revoke { owner: Address::repeat_byte(i), session: Address::repeat_byte(i) };
        l.record_owner_refusal(T0, s, &unknown);
    }
    assert_eq!(l.next_seq(), 5);
}

#[test]
fn the_window_is_bounded_and_old_entries_are_gone() {
    let id = Key::generate();
    let l = log(&id, AuditConfig { capacity: 100, ..Default::default() });
    for i in 0..250u64 {
        l.append(T0 + i, Record::new(Decision::Allowed, Address::ZERO, B256::ZERO, "x"));
    }
    // Entries 0..151 are gone; asking from 0 starts at 151.
    let r = l.reply_t(0, &id, T0).unwrap();
    assert_eq!((r.entries.len(), r.entries[0].seq, r.head.seq, r.more), (100, 151, 250, false));
    // The signed head says where the window starts, whatever was asked.
    assert_eq!(r.head.oldest, Some(151));
    assert_eq!(l.reply_t(200, &id, T0).unwrap().head.oldest, Some(151));
    let e = verify_chain(&r.entries, &r.head, id.address(), None).unwrap_err();
    assert_eq!(e, AuditError::Missing { seq: 0, head_seq: 250 });
    // As a continuation from the first entry held, it verifies.
    let from = (151, r.entries[0].prev);
    verify_chain(&r.entries, &r.head, id.address(), Some(from)).unwrap();
    // Past the end is refused; at the end is an empty reply with the current head.
    assert_eq!(l.reply_t(252, &id, T0).unwrap_err().code, ErrorCode::Malformed);
    let r = l.reply_t(251, &id, T0).unwrap();
    assert!(r.entries.is_empty() && !r.more);
    assert_eq!(r.head.seq, 250);
}

#[test]
fn a_head_is_never_signed_before_the_latest_entry() {
    // A cluster follower signs as of the latest entry it applied, read before the log's
    // lock: an entry appended meanwhile is later.
    let id = Key::generate();
    let l = log(&id, AuditConfig::default());
    l.append(T0 + 10, Record::new(Decision::Allowed, Address::ZERO, B256::ZERO, "x"));
    assert_eq!(l.reply_t(0, &id, T0 + 3).unwrap().head.time, T0 + 10);
    assert_eq!(l.reply_t(0, &id, T0 + 30).unwrap().head.time, T0 + 30);
}

#[test]
fn replies_are_paged_and_each_page_verifies_on_its_own() {
    let id = Key::generate();
    let l = log(&id, AuditConfig::default());
    for i in 0..2500u64 {
        l.append(T0 + i, Record::new(Decision::Allowed, Address::with_last_byte(i as u8), B256::ZERO, "tx"));
    }
    let mut anchor: Option<(u64, B256)> = None;
    let mut pages = 0;
    let mut since = 0;
    loop {
        let r = l.reply_t(since, &id, T0).unwrap();
        assert!(r.entries.len() <= MAX_REPLY_ENTRIES);
        verify_chain(&r.entries, &r.head, id.address(), anchor).unwrap();
        anchor = Some((r.head.seq + 1, r.head.hash));
        since = r.head.seq + 1;
        pages += 1;
        if !r.more {
            break;
        }
    }
    assert_eq!((pages, since), (3, 2501));
    // A small page size too.
    let r = l.entries(10, 5, None, &id, T0).unwrap();
    assert_eq!((r.entries.len(), r.head.seq, r.more), (5, 14, true));
}

#[test]
fn a_full_reply_fits_in_a_frame() {
    let id = Key::generate();
    let l = log(&id, AuditConfig::default());
    let long = "é".repeat(1000);
    for _ in 0..MAX_REPLY_ENTRIES {
        let rec = Record::new(Decision::Denied, Address::repeat_byte(0xff), B256::repeat_byte(0xff), &long)
            .with_code(ErrorCode::TypedDataNotAllowed, Some(&long));
        l.append(u64::MAX, rec);
    }
    let r = l.reply_t(1, &id, u64::MAX).unwrap();
    assert_eq!(r.entries.len(), MAX_REPLY_ENTRIES);
    let frame = bridle_common::frame::to_cbor(&r).unwrap();
    assert!(frame.len() < bridle_common::frame::DEFAULT_MAX_FRAME * 3 / 4, "{} bytes", frame.len());
}

#[test]
fn concurrent_appends_form_one_chain() {
    let id = Key::generate();
    let l = Arc::new(log(&id, AuditConfig::default()));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || {
                for i in 0..500u64 {
                    l.append(T0 + i, Record::new(Decision::Allowed, Address::repeat_byte(t), B256::ZERO, "x"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (es, head) = all(&l, &id);
    assert_eq!(es.len(), 4001);
    verify_chain(&es, &head, id.address(), None).unwrap();
}
