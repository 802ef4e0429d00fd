//! The session retention against a fake enclave over a real socket: which ended sessions
//! it forgets, which it keeps, and what it asks the enclave.

use super::*;
use crate::store::{Event, StoredSweepTx};
use crate::test_fakes::{identity, identity_key, sign, status_of};
use alloy_primitives::B256;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
use bridle_common::protocol::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

const DAY: u64 = 86_400;

/// How the fake enclave answers a status about a session.
#[derive(Default)]
struct Enclave {
    /// The sessions it holds (a finished session with approvals outstanding, say).
    held: HashSet<Address>,
    /// Those it answers with an error.
    failing: HashSet<Address>,
    /// Whether it answers every status about a session `unavailable` (a cluster with no
    /// leader).
    unavailable: bool,
    /// Whether it signs a status asked with a nonce (a real enclave does; a host in the way
    /// making up "no such session" cannot).
    receipts: bool,
    /// The sessions it was asked about, in order.
    asked: Vec<Address>,
}

/// A fake enclave on `path`, answering a status about no session with its identity (the
/// client's first call on a connection) and one about a session as `e` says.
fn enclave(path: std::path::PathBuf, e: Enclave) -> Arc<Mutex<Enclave>> {
    let e = Arc::new(Mutex::new(e));
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let shared = e.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let e = shared.clone();
            tokio::spawn(async move {
                while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                    let result = match req.call {
                        Call::Status(StatusQuery { session: None, .. }) => Ok(Reply::Status(status_of(identity()))),
                        Call::Status(StatusQuery { session: Some(session), nonce, .. }) => {
                            answer(&mut e.lock().unwrap(), session, nonce)
                        }
                        _ => Err(Denial::new(ErrorCode::Unavailable, "not here")),
                    };
                    let frame = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap();
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    e
}

fn answer(e: &mut Enclave, session: Address, nonce: Option<B256>) -> Result<Reply, Denial> {
    e.asked.push(session);
    if e.unavailable {
        return Err(Denial::new(ErrorCode::Unavailable, "no leader"));
    }
    if e.failing.contains(&session) {
        return Err(Denial::new(ErrorCode::Internal, "something broke"));
    }
    let mut st = status_of(identity());
    st.session = e.held.contains(&session).then(|| Box::new(held_status(session)));
    if let (Some(n), true) = (nonce, e.receipts) {
        let word = bridle_common::receipt::status_nonce(n, Some(session));
        bridle_common::receipt::attach(&mut st, identity(), 1, word, |d| {
            Ok::<_, std::convert::Infallible>(sign(&identity_key(), d))
        })
        .unwrap();
    }
    Ok(Reply::Status(st))
}

/// A revoked session the enclave still holds.
fn held_status(session: Address) -> SessionStatus {
    SessionStatus {
        session,
        owner: Address::repeat_byte(0x0a),
        agent: Address::repeat_byte(0x0b),
        policy_hash: B256::ZERO,
        state: SessionState::Revoked,
        created_at: 0,
        valid_after: None,
        valid_until: 0,
        uses: 0,
        uses_left: None,
        caps: vec![],
        suspended_reason: None,
        allowances: vec![],
        exposure: Default::default(),
        pending: vec![],
        time: 0,
        anchor: 0,
        next_nonces: vec![],
        rate_limits: vec![],
    }
}

/// Store session `0xnn…` of `enclave`, valid until `valid_until`, with its first policy
/// record; returns its address.
fn store(state: &AppState, n: u8, enclave: Address, valid_until: u64) -> Address {
    let session = Address::repeat_byte(n);
    let owner = Address::repeat_byte(0x0a);
    let policy =
        bridle_common::policy::file::resolve_text("name='t'\nchains=[1]\nvalid_for='1h'\n", now_secs()).unwrap();
    let binding = SessionBinding {
        enclave,
        session,
        owner,
        agent: Address::repeat_byte(0x0b),
        policy_hash: policy.hash(),
        created_at: valid_until.saturating_sub(3600),
        valid_until,
    };
    let created = SessionCreated { binding, binding_signature: Default::default(), attestation: None, receipt: None };
    let auth = OwnerAuth { owner, nonce: u64::from(n), signature: Default::default() };
    state.store.insert_session(&created, &policy, &auth).unwrap();
    session
}

fn sweep(session: Address) -> StoredSweepTx {
    StoredSweepTx {
        session,
        chain_id: 1,
        nonce: 0,
        token: Address::repeat_byte(0x70),
        spender: Address::repeat_byte(0x71),
        hash: B256::repeat_byte(0x44),
        raw_transaction: vec![0x02, 0x01].into(),
        signed_at: 1,
    }
}

/// Whether the host still keeps `session`: its row, its policy records, in memory.
fn kept(state: &AppState, session: Address) -> bool {
    let row = state.store.get_session(&session).unwrap().is_some();
    let policies = !state.store.policies(&session, 0, 10).unwrap().is_empty();
    let known = state.store.known_sessions().iter().any(|(s, _, _)| *s == session);
    assert_eq!((row, policies), (known, known), "{session}: row, policies and memory disagree");
    known
}

fn asked(e: &Arc<Mutex<Enclave>>) -> Vec<Address> {
    let mut v = std::mem::take(&mut e.lock().unwrap().asked);
    v.sort();
    v
}

/// The promise: an ended session is forgotten only once the enclave says, as its word, that
/// it holds no such session; one it still holds, one that ended recently (a session marked
/// lost just now among them: a full retention from the mark), one whose status failed and
/// another enclave's are kept, and what is forgotten goes with its policies and sweeps, not
/// its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_are_forgotten_once_the_enclave_no_longer_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let [gone, held, failing, lost, recent, revoked_now, live, other] =
        [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18].map(Address::repeat_byte);
    let e = Enclave { held: [held].into(), failing: [failing].into(), ..Enclave::default() };
    let fake = enclave(path.clone(), e);
    let state = crate::test_fakes::host(path, None);
    let (now, long_ago) = (now_secs(), now_secs() - 60 * DAY);
    // Stored under the enclave before this one: lost once the host meets this one.
    store(&state, 0x14, Address::repeat_byte(0xdd), long_ago);
    assert_eq!(state.client.own_identity().await, Some(identity()));
    assert_eq!(state.store.session_state(&lost).map(|s| s.0), Some(StoredState::Lost));
    for (n, until) in [(0x11, long_ago), (0x12, long_ago), (0x13, long_ago), (0x15, now - DAY), (0x16, now + DAY)] {
        store(&state, n, identity(), until);
    }
    assert_eq!(state.store.mark_revoked(&[revoked_now]).unwrap(), 1);
    store(&state, 0x17, identity(), now + DAY);
    // Another host's enclave's session (a shared database), ended long ago.
    store(&state, 0x18, Address::repeat_byte(0xde), long_ago);
    state.store.insert_sweep(&[sweep(gone), sweep(held)]).unwrap();
    state.record_event(Event::now("sign_if_allowed", Some(gone), "ok", None));
    state.store.flush();

    let mut h = Held::new();
    let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut h, Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { forgotten: 1, held: 1, unchecked: 1, others: 1 });
    // Asked about what ended long ago and is its own; never about the lost one.
    assert_eq!(asked(&fake), [gone, held, failing]);
    assert!(!kept(&state, gone), "{gone} kept");
    assert!(state.store.sweeps(&gone, 0, 10).unwrap().is_empty());
    assert_eq!(state.store.session_state(&gone), None);
    for s in [held, failing, recent, revoked_now, live, other, lost] {
        assert!(kept(&state, s), "{s} forgotten");
    }
    assert_eq!(state.store.sweeps(&held, 0, 10).unwrap().len(), 1);
    // Events are not the retention's.
    assert_eq!(state.store.events(Some(&gone), 10).unwrap().len(), 1);
    assert!(state.metrics.render().contains("\nbridle_sessions_forgotten_total 1\n"));

    // The next pass does not ask again about what the enclave holds (for HELD_RECHECK);
    // a failed status is asked again.
    let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut h, Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { forgotten: 0, held: 1, unchecked: 1, others: 1 });
    assert_eq!(asked(&fake), [failing]);
    // Once the enclave no longer holds it (its approvals settled) and the recheck is due:
    // forgotten.
    fake.lock().unwrap().held.clear();
    h.insert(held, Instant::now());
    let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut h, Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { forgotten: 1, held: 0, unchecked: 1, others: 1 });
    assert!(!kept(&state, held) && state.store.sweeps(&held, 0, 10).unwrap().is_empty());
    assert!(h.is_empty());
    // A shorter retention reaches what ended yesterday.
    fake.lock().unwrap().failing.clear();
    let pass = forget_pass(&state, Duration::from_secs(3600), &mut h, Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { forgotten: 2, held: 0, unchecked: 0, others: 1 });
    assert!(!kept(&state, recent) && !kept(&state, failing));
    assert!(kept(&state, revoked_now) && kept(&state, live));
}

/// In a cluster a status may come through other hosts: "no such session" is taken only
/// with the enclave's receipt for the nonce it was asked with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_only_the_enclaves_word_forgets_a_session() {
    for receipts in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.sock");
        let fake = enclave(path.clone(), Enclave { receipts, ..Enclave::default() });
        let state = crate::test_fakes::host(path, Some(vec![]));
        assert_eq!(state.client.own_identity().await, Some(identity()));
        let s = store(&state, 0x21, identity(), now_secs() - 60 * DAY);
        let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut Held::new(), Duration::ZERO).await.unwrap();
        assert_eq!(asked(&fake), [s]);
        if receipts {
            assert_eq!(pass, Pass { forgotten: 1, ..Pass::default() });
            assert!(!kept(&state, s));
        } else {
            assert_eq!(pass, Pass { unchecked: 1, ..Pass::default() });
            assert!(kept(&state, s), "forgotten on a status without the enclave's receipt");
        }
    }
}

/// An enclave that does not serve statuses now (a cluster with no leader) is asked once a
/// pass, and keeps everything; an unreachable one is not asked at all, and nothing is
/// forgotten, lost sessions included (whose enclave could be this host's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_enclaves_answer_nothing_is_forgotten() {
    let long_ago = now_secs() - 60 * DAY;
    // Unavailable: the first status ends the asking for this pass.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let fake = enclave(path.clone(), Enclave { unavailable: true, ..Enclave::default() });
    let state = crate::test_fakes::host(path, None);
    assert_eq!(state.client.own_identity().await, Some(identity()));
    let (a, b) = (store(&state, 0x31, identity(), long_ago), store(&state, 0x32, identity(), long_ago));
    let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut Held::new(), Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { unchecked: 2, ..Pass::default() });
    assert_eq!(asked(&fake).len(), 1);
    assert!(kept(&state, a) && kept(&state, b));

    // Unreachable: no identity, nothing asked, nothing forgotten.
    let state = crate::test_fakes::host(dir.path().join("nobody.sock"), None);
    let lost = store(&state, 0x33, Address::repeat_byte(0xdd), long_ago);
    let mine = store(&state, 0x34, identity(), long_ago);
    state.store.enclave_changed(None, &identity()).unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let pass = forget_pass(&state, Duration::ZERO, &mut Held::new(), Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { unchecked: 2, ..Pass::default() });
    assert!(kept(&state, lost) && kept(&state, mine));
}

/// A review of 2026-12-06: `lost` is the host's own note, and can be wrong — a host pointed
/// at another enclave once marks every other identity's sessions lost, and pointing it back
/// clears nothing; the retention took the mark over the enclave's word and forgot sessions
/// the enclave still held (expired ones, whose approvals the sweeper may still need, five
/// minutes after the mark). Now a mark counts from when it was made, a full retention, and
/// only for an enclave that no host of the database fronts: one of this host's enclave is
/// asked about as any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_mark_is_taken_only_for_an_enclave_nobody_fronts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    let long_ago = now_secs() - 60 * DAY;
    let [wrongly_lost, gone_enclave] = [0x41, 0x42].map(Address::repeat_byte);
    let fake = enclave(path.clone(), Enclave { held: [wrongly_lost].into(), ..Enclave::default() });
    let state = crate::test_fakes::host(path, None);
    store(&state, 0x41, identity(), long_ago);
    store(&state, 0x42, Address::repeat_byte(0xdd), long_ago);
    // Pointed at another enclave once, then back at its own: both marked lost.
    state.store.enclave_changed(None, &Address::repeat_byte(0xdf)).unwrap();
    assert_eq!(state.client.own_identity().await, Some(identity()));
    state.store.enclave_changed(Some(Address::repeat_byte(0xdf)), &identity()).unwrap();
    for s in [wrongly_lost, gone_enclave] {
        assert_eq!(state.store.session_state(&s).map(|s| s.0), Some(StoredState::Lost), "{s}");
    }
    // Marked just now: neither is due, whatever its validity.
    let pass = forget_pass(&state, DEFAULT_SESSION_RETENTION, &mut Held::new(), Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass::default());
    // Once the mark is older than the retention (here: none): the enclave that holds one
    // is asked and it is kept; the other's enclave is fronted by nobody: forgotten unasked.
    std::thread::sleep(Duration::from_millis(1_100));
    let pass = forget_pass(&state, Duration::ZERO, &mut Held::new(), Duration::ZERO).await.unwrap();
    assert_eq!(pass, Pass { forgotten: 1, held: 1, ..Pass::default() });
    assert_eq!(asked(&fake), [wrongly_lost]);
    assert!(kept(&state, wrongly_lost) && !kept(&state, gone_enclave));
    // The wrong mark is cleared, in the database and in memory, to the state the enclave
    // says (the fake's held sessions are revoked ones): served and swept again.
    assert_eq!(state.store.session_state(&wrongly_lost).map(|s| s.0), Some(StoredState::Revoked));
    let stored = state.store.get_session(&wrongly_lost).unwrap().expect("stored");
    assert_eq!(stored.state, StoredState::Revoked);
}

/// `session_retention_days = 0` keeps sessions for good: no task.
#[tokio::test]
async fn a_retention_of_zero_starts_no_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::HostConfig::new(bridle_common::address::SocketAddress::Unix(dir.path().join("e.sock")));
    config.database = crate::store::Database::Sqlite(":memory:".into());
    config.probe_interval = None;
    config.session_retention = None;
    assert!(spawn(AppState::open(config.clone()).unwrap()).is_none());
    config.session_retention = Some(DEFAULT_SESSION_RETENTION);
    let task = spawn(AppState::open(config).unwrap()).expect("a task");
    task.abort();
}
