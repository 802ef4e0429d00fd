//! The sweeper against fakes over real sockets: a cluster node that cannot serve now, an
//! enclave that signs a sweep's revocation at another nonce than the one stuck, and a node
//! that holds nothing at a nonce in flight.
use super::*;
use crate::cluster::ClusterSettings;
use crate::store::Database;
use bridle_common::address::SocketAddress;
use bridle_common::error::Denial;
use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// A cluster node whose every answer is `unavailable`, as a leader that may not hold the
/// session's key answers a sweep during a rolling upgrade (status included: a node that has
/// not joined answers it so, and the client takes that).
fn unavailable_node(path: std::path::PathBuf) {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                while read_frame(&mut s, DEFAULT_MAX_FRAME).await.is_ok() {
                    let result = Err(Denial::new(
                        ErrorCode::Unavailable,
                        "this cluster's leader may not hold this session's key; nothing was signed",
                    ));
                    let frame = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap();
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A cluster host, sweeping, whose node (in `dir`) answers every call `unavailable`.
fn unavailable_cluster(dir: &tempfile::TempDir) -> AppState {
    let path = dir.path().join("enclave.sock");
    unavailable_node(path.clone());
    let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
    config.database = Database::Sqlite(":memory:".into());
    config.probe_interval = None;
    config.cluster = Some(ClusterSettings {
        listen: "127.0.0.1:0".into(),
        advertise: "http://127.0.0.1:9".into(),
        seeds: vec![],
        bootstrap: false,
        source: None,
    });
    let state = AppState::open(config).unwrap();
    state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_the_cluster_cannot_serve_now_is_neither_a_refusal_nor_left_to_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let state = unavailable_cluster(&dir);
    let timeout = state.config.call_timeout;
    assert!(timeout >= SWEEP_CALL_LIMIT * 3, "the test needs the call timeout well above the sweeper's limit");
    let terms = SweepTerms {
        chain_id: 31337,
        nonce: 0,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: SWEEP_GAS_LIMIT,
    };
    let mut book = Book::default();
    let started = Instant::now();
    // No node is asked: nothing was signed, so nothing is broadcast (the URL goes nowhere).
    let url = "http://127.0.0.1:9";
    let signed = sweep(
        &state,
        &reqwest::Client::new(),
        url,
        (Address::repeat_byte(7), terms),
        &mut book,
        SWEEP_CALL_LIMIT,
        None,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(signed.unwrap(), Signed::Unavailable);
    assert!(book.is_empty(), "nothing in flight");
    // No new try after the sweeper's limit, not the ten-second call timeout.
    assert!(took < SWEEP_CALL_LIMIT * 2, "a sweep the cluster cannot serve held the sweeper {took:?}");
    let m = state.sweep_metrics.render();
    for line in
        ["bridle_sweep_unavailable_total 1\n", "bridle_sweep_refused_total 0\n", "bridle_sweep_requests_total 1\n"]
    {
        assert!(m.contains(line), "{line:?} not in\n{m}");
    }
    // (A unit check of the mapping: the lane waits for the cluster, asked again next round,
    // and is not the owner's to sweep; no round runs here.)
    assert_eq!(after_sweep(Signed::Unavailable), Lane::WaitingForCluster);
}

/// A round over sessions the cluster cannot serve (here every call is answered
/// `unavailable`, as with no leader): once one call of the round was, each further one
/// gets a single try, so the round costs about SWEEP_CALL_LIMIT plus SWEEP_RETRY_LIMIT per
/// session — not the call timeout per session, which held fifty sessions' rounds for
/// minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_the_cluster_cannot_serve_gives_each_further_call_one_try() {
    let dir = tempfile::tempdir().unwrap();
    let state = unavailable_cluster(&dir);
    let now = crate::store::now_secs();
    let policy = bridle_common::policy::file::resolve_text("name='t'\nchains=[31337]\nvalid_for='1h'\n", now).unwrap();
    let sessions = 6u8;
    for i in 1..=sessions {
        let binding = bridle_common::protocol::SessionBinding {
            enclave: Address::repeat_byte(0xee),
            session: Address::repeat_byte(i),
            owner: Address::repeat_byte(0x0a),
            agent: Address::repeat_byte(0x0b),
            policy_hash: policy.hash(),
            created_at: now,
            valid_until: now + 3600,
        };
        let created =
            SessionCreated { binding, binding_signature: Default::default(), attestation: None, receipt: None };
        let auth = OwnerAuth { owner: Address::repeat_byte(0x0a), nonce: u64::from(i), signature: Default::default() };
        state.store.insert_session(&created, &policy, &auth).unwrap();
    }
    let started = Instant::now();
    let statuses = round::statuses(&state).await;
    let took = started.elapsed();
    assert!(statuses.sessions.is_empty() && statuses.limit == SWEEP_RETRY_LIMIT);
    // Each session given the whole limit would take six limits; one try each after the
    // first, about 2 s + 5 × 0.3 s.
    assert!(SWEEP_RETRY_LIMIT * 5 <= SWEEP_CALL_LIMIT);
    let bound = SWEEP_CALL_LIMIT * 3;
    assert!(took < bound, "a round of {sessions} sessions the cluster cannot serve took {took:?} (bound {bound:?})");
    let m = state.sweep_metrics.render();
    assert!(m.contains(&format!("bridle_sweep_errors_total {sessions}\n")), "{m}");
    assert!(m.contains("bridle_sweep_rounds_total 1\n"), "{m}");
}

fn policy(text: &str) -> bridle_common::policy::Policy {
    bridle_common::policy::file::resolve_text(text, 1_800_000_000).expect("policy")
}

#[test]
fn sweeps_use_the_policys_revoke_gas_and_bumps_stay_within_its_fee_caps() {
    let base = "name = \"s\"\nchains = [1]\nvalid_for = \"1d\"\n";
    assert_eq!(Limits::of(None).gas_limit, SWEEP_GAS_LIMIT);
    let p = policy(&format!("{base}[approvals]\nrevoke_gas = 150000\n[gas]\nmax_fee_per_gas = \"100 wei\"\nmax_priority_fee_per_gas = \"10 wei\"\n"));
    let l = Limits::of(Some(&p));
    assert_eq!((l.gas_limit, l.max_fee_per_gas, l.max_priority_fee_per_gas), (150_000, Some(100), Some(10)));
    // A floor below the default keeps the default (more gas only makes a revocation surer).
    let low = policy(&format!("{base}[approvals]\nrevoke_gas = 70000\n"));
    assert_eq!(Limits::of(Some(&low)).gas_limit, SWEEP_GAS_LIMIT);
    // 12.5 % up, or the node's fees if higher.
    assert_eq!(l.bumped((40, 4), (0, 0)), Some((46, 5)));
    assert_eq!(l.bumped((40, 4), (60, 6)), Some((60, 6)));
    // Capped: still a valid replacement (>= 10 % up) at the cap.
    assert_eq!(l.bumped((90, 9), (0, 0)), Some((100, 10)));
    // At the caps: no replacement the node would take — wait instead of asking again.
    assert_eq!(l.bumped((100, 10), (500, 50)), None);
    assert_eq!(l.bumped((95, 5), (0, 0)), None, "100 is not 10 % above 95");
    // Without caps, only the bump.
    assert_eq!(Limits::of(None).bumped((1_000, 100), (0, 0)), Some((1_126, 113)));
}

/// What the fake enclave answers a sweep with.
#[derive(Clone, Copy)]
enum Answer {
    /// A revocation at this nonce, signed by the session's key at the terms' fees and gas,
    /// with the enclave's receipt: what a real enclave sends.
    SignedAt(u64),
    /// The same, signed at the terms' fees plus one wei: not what was asked for.
    OverFees(u64),
    /// The same, signed at the terms' fees less one wei, with the enclave's receipt: a
    /// genuine earlier reply, replayed as the answer to a bump.
    UnderFees(u64),
    /// Bytes that are no transaction, listed at this nonce, with no receipt (a host in the
    /// way making up an answer).
    Junk(u64),
}

/// The session's key (its address is [`SESSION`]) and the enclave's identity key.
fn session_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

fn identity_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[0xee; 32]).unwrap()
}

fn sign(k: &k256::ecdsa::SigningKey, d: &B256) -> alloy_primitives::Signature {
    let (s, r) = k.sign_prehash_recoverable(d.as_slice()).unwrap();
    alloy_primitives::Signature::from_signature_and_parity(s, r.is_y_odd())
}

/// The revocation of the session's ERC-20 approval (token 0x01…, spender 0x02…) at `nonce`
/// on 31337, signed by the session's key.
fn revocation(nonce: u64, fee: u128, tip: u128, gas: u64) -> SweepTx {
    use bridle_common::allowance::{revocation_call, AllowanceKind, Key};
    use bridle_common::tx::{Eip1559Request, TxRequest};
    let (token, spender) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let key = Key { chain_id: 31337, holder: SESSION, token, spender, kind: AllowanceKind::Erc20 };
    let (to, data) = revocation_call(&key).unwrap();
    let b = TxRequest::Eip1559(Eip1559Request {
        chain_id: 31337,
        nonce,
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: tip,
        gas_limit: gas,
        to: Some(to),
        value: Default::default(),
        data,
        access_list: vec![],
    })
    .build()
    .unwrap();
    let sig = sign(&session_key(), &b.signing_hash());
    let raw = b.encode_signed(sig);
    SweepTx {
        chain_id: 31337,
        nonce,
        token,
        spender,
        kind: AllowanceKind::Erc20,
        to,
        hash: alloy_primitives::keccak256(&raw),
        raw_transaction: raw,
        invalidate_nonce: None,
    }
}

/// `answer` to a sweep asked at `terms`.
fn swept(answer: Answer, terms: &SweepTerms) -> Reply {
    let (fee, tip, gas) = (terms.max_fee_per_gas, terms.max_priority_fee_per_gas, terms.gas_limit);
    let tx = match answer {
        Answer::SignedAt(n) => revocation(n, fee, tip, gas),
        Answer::OverFees(n) => revocation(n, fee + 1, tip, gas),
        Answer::UnderFees(n) => revocation(n, fee - 1, tip.min(fee - 1), gas),
        Answer::Junk(n) => SweepTx { raw_transaction: vec![0x02, n as u8].into(), ..revocation(n, fee, tip, gas) },
    };
    let mut reply = SweepReply {
        session: SESSION,
        transactions: vec![tx],
        user_operations: vec![],
        skipped: vec![],
        key_destroyed: false,
        receipt: None,
    };
    if !matches!(answer, Answer::Junk(_)) {
        let id = Address::from_public_key(identity_key().verifying_key());
        bridle_common::receipt::attach(&mut reply, id, 1, bridle_common::receipt::anonymous_nonce(), |d| {
            Ok::<_, std::convert::Infallible>(sign(&identity_key(), d))
        })
        .unwrap();
    }
    Reply::Swept(reply)
}

/// An enclave (on `path`) answering every sweep with `answer`, counting them; a status
/// (the client's first call on a connection) names its identity.
fn enclave_answering(path: std::path::PathBuf, answer: Answer) -> Arc<AtomicU64> {
    let calls = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let counted = calls.clone();
    let identity = Status {
        version: "fake".into(),
        identity_public_key: identity_key().verifying_key().to_encoded_point(true).as_bytes().to_vec().into(),
        identity_address: Address::from_public_key(identity_key().verifying_key()),
        booted_at: 0,
        now: 0,
        sessions_active: 0,
        sessions_total: 0,
        signatures: 0,
        denials: 0,
        session: None,
        aggregate: vec![],
        receipt: None,
    };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (counted, identity) = (counted.clone(), identity.clone());
            tokio::spawn(async move {
                while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                    let result = match req.call {
                        Call::Sweep(w) => {
                            counted.fetch_add(1, Ordering::Relaxed);
                            Ok(swept(answer, &w.terms[0]))
                        }
                        Call::Status(_) => Ok(Reply::Status(identity.clone())),
                        _ => Err(Denial::new(ErrorCode::Unavailable, "not joined")),
                    };
                    let frame = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap();
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    calls
}

/// The nonces of raw transactions a node was sent.
fn nonces(sent: &[String]) -> Vec<u64> {
    use alloy_consensus::Transaction;
    use alloy_eips::eip2718::Decodable2718;
    sent.iter()
        .map(|h| {
            let raw: alloy_primitives::Bytes = h.parse().unwrap();
            alloy_consensus::TxEnvelope::decode_2718(&mut &raw[..]).unwrap().nonce()
        })
        .collect()
}

/// A chain node over HTTP (chain 31337): the session's mined and pending nonces as given,
/// fees of 1 wei, no receipts; it records every raw transaction sent to it.
async fn node(mined: u64, pending: u64) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::{routing::post, Json, Router};
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = sent.clone();
    let app = Router::new().route(
        "/",
        post(move |Json(req): Json<serde_json::Value>| {
            let log = log.clone();
            async move {
                let result = match req["method"].as_str().unwrap_or("") {
                    "eth_chainId" => json!("0x7a69"),
                    "eth_getTransactionCount" if req["params"][1] == "latest" => json!(format!("{mined:#x}")),
                    "eth_getTransactionCount" => json!(format!("{pending:#x}")),
                    "eth_getBlockByNumber" => json!({"baseFeePerGas": "0x1"}),
                    "eth_maxPriorityFeePerGas" => json!("0x1"),
                    "eth_sendRawTransaction" => {
                        log.lock().unwrap().push(req["params"][0].as_str().unwrap_or("").to_string());
                        json!(format!("{}", B256::repeat_byte(0x77)))
                    }
                    _ => serde_json::Value::Null,
                };
                Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, sent)
}

/// A stand-alone host, sweeping, whose enclave (in `dir`) answers every sweep with `answer`.
fn host_with(dir: &tempfile::TempDir, answer: Answer) -> (AppState, Arc<AtomicU64>) {
    let path = dir.path().join("enclave.sock");
    let calls = enclave_answering(path.clone(), answer);
    let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
    config.database = Database::Sqlite(":memory:".into());
    config.probe_interval = None;
    let state = AppState::open(config).unwrap();
    state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
    (state, calls)
}

use lane::tests::SESSION;

/// The session's status as the sweeper reads it (only its address matters while a lane has
/// something in flight).
fn session_status() -> SessionStatus {
    lane::tests::status(SessionState::Active, vec![], 0)
}

/// A book with one revocation in flight at `nonce`, broadcast `ago`.
fn book_at(nonce: u64, ago: Duration) -> Book {
    let f = Inflight {
        hashes: vec![B256::repeat_byte(0x11)],
        raw: vec![0x02, 0xaa, nonce as u8].into(),
        resent_at: None,
        not_signed: false,
        max_fee_per_gas: 100,
        max_priority_fee_per_gas: 10,
        sent_at: Instant::now() - ago,
    };
    [((SESSION, 31337), [(nonce, f)].into())].into()
}

/// A review of 2026-12-05: a stuck revocation at 5, and the enclave re-signs only a
/// revocation at 6 (no room to re-sign 5, another key's revocation there, …). That was
/// counted as a bump, nothing at 5 changed, and the host asked again every round (each a
/// request the enclave logs and, where it signed, charges). Now: no bump, the lane counted
/// as left to the owner (every round, until a bump there is signed), and asked again only
/// after `bump_after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bump_the_enclave_does_not_sign_at_its_nonce_is_no_bump_and_not_asked_every_round() {
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(6));
    let (url, sent) = node(5, 7).await;
    let mut book = book_at(5, Duration::from_secs(180));
    let st = session_status();
    let http = reqwest::Client::new();
    let limits = Limits::of(None);
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    let mut lanes = Vec::new();
    for _ in 0..3 {
        lanes.push(sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, limits).await.unwrap());
    }
    assert_eq!(lanes, [Lane::BumpNotSigned; 3]);
    assert_eq!(calls.load(Ordering::Relaxed), 1, "asked once, not every round");
    let m = state.sweep_metrics.render();
    for line in ["bridle_sweep_requests_total 1\n", "bridle_sweep_fee_bumps_total 0\n"] {
        assert!(m.contains(line), "{line:?} not in\n{m}");
    }
    // What the enclave did sign (at 6) is kept, neither sent nor followed: it cannot be
    // mined before 5 (a review of 2026-12-06); 5 keeps its fees.
    let lane = &book[&(SESSION, 31337)];
    assert_eq!(lane.keys().copied().collect::<Vec<_>>(), vec![5]);
    assert_eq!((lane[&5].max_fee_per_gas, lane[&5].hashes.len()), (100, 1));
    assert_eq!(state.store.sweeps_at(&SESSION, 31337, 6).unwrap().len(), 1);
    assert!(sent.lock().unwrap().is_empty(), "nothing broadcast");
}

/// A review of 2026-12-05: a revocation whose broadcast failed, or that the node's pool
/// dropped, was never sent again — at the fee caps no bump ever comes. When the node holds
/// nothing at the lowest nonce in flight, the signed bytes are sent again, at most once a
/// minute, without asking the enclave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_the_node_does_not_hold_is_sent_again_even_at_the_fee_caps() {
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(9));
    let (url, sent) = node(5, 5).await;
    let mut book = book_at(5, Duration::from_secs(180));
    let st = session_status();
    let http = reqwest::Client::new();
    let at_caps = policy("name = \"s\"\nchains = [31337]\nvalid_for = \"1d\"\n[gas]\nmax_fee_per_gas = \"100 wei\"\nmax_priority_fee_per_gas = \"10 wei\"\n");
    let limits = Limits::of(Some(&at_caps));
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    assert_eq!(sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, limits).await.unwrap(), Lane::AtFeeCap);
    assert_eq!(sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, limits).await.unwrap(), Lane::AtFeeCap);
    assert_eq!(sent.lock().unwrap().len(), 1, "sent again at most every RESEND_EVERY");
    // A minute later, as far as the book knows: the same bytes again.
    let f = book.get_mut(&(SESSION, 31337)).unwrap().get_mut(&5).unwrap();
    f.resent_at = f.resent_at.map(|t| t - RESEND_EVERY);
    assert_eq!(sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, limits).await.unwrap(), Lane::AtFeeCap);
    assert_eq!(*sent.lock().unwrap(), vec!["0x02aa05".to_string(); 2], "the same bytes, once a minute");
    assert_eq!(calls.load(Ordering::Relaxed), 0, "nothing asked of the enclave");
    // Held by the node (pending above it): not sent again.
    let (url, sent) = node(5, 6).await;
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, limits).await.unwrap();
    assert_eq!(lane, Lane::AtFeeCap);
    assert!(sent.lock().unwrap().is_empty());
}

/// The session's status on 31337 with one approval swept at nonce 4 (signed, not mined),
/// the enclave's next nonce 5.
fn swept_at_4() -> SessionStatus {
    let mut swept = lane::tests::key(lane::tests::ROUTER, bridle_common::allowance::AllowanceState::Swept, Some(4));
    swept.chain_id = 31337;
    let mut st = lane::tests::status(SessionState::Active, vec![swept], 5);
    st.next_nonces[0].chain_id = 31337;
    st
}

/// A review of 2026-12-05: a sweep the node's pool held when this host found it (another
/// host's broadcast, or this one's before a restart) was waited on with nothing in the book,
/// for ever if it never got mined. Now it is followed like one of this host's own, at no
/// known fee: nothing is sent again (this host has no bytes of it), and once `bump_after`
/// passes it is re-signed at the node's fees — a bump the enclave signs at that nonce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_in_the_nodes_pool_is_followed_and_bumped_when_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(4));
    let (url, sent) = node(4, 5).await;
    // Swept at 4 by someone else; the node's pool holds a transaction there.
    let st = swept_at_4();
    let http = reqwest::Client::new();
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    let mut book = Book::default();
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await.unwrap();
    assert_eq!(lane, Lane::Moving);
    assert_eq!(calls.load(Ordering::Relaxed), 0, "not re-signed while the pool holds it");
    let held = &book[&(SESSION, 31337)][&4];
    assert!(held.hashes.is_empty() && held.raw.is_empty());
    // Still there after bump_after: bumped from the node's fees, signed at 4.
    book.get_mut(&(SESSION, 31337)).unwrap().get_mut(&4).unwrap().sent_at -= Duration::from_secs(180);
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await.unwrap();
    assert_eq!(lane, Lane::Moving);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert!(state.sweep_metrics.render().contains("bridle_sweep_fee_bumps_total 1\n"));
    assert_eq!(nonces(&sent.lock().unwrap()), vec![4], "the bump, broadcast");
}

/// A chain node (chain 1) that answers its chain id and then nothing for a minute.
async fn stalled_node() -> String {
    use axum::{routing::post, Json, Router};
    let app = Router::new().route(
        "/",
        post(|Json(req): Json<serde_json::Value>| async move {
            if req["method"] != "eth_chainId" {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": "0x1"}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// A review of 2026-12-05: one task followed every chain, so a node that stalls (each call
/// up to the HTTP timeout) held up every other chain's revocations. Each node now has a task
/// of its own: with chain 1's node stalled, the session's due approval on 31337 is swept and
/// broadcast at once, and `/metrics` shows which chain lags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_holds_up_only_its_own_chain() {
    use bridle_common::allowance::AllowanceState;
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(0));
    let (fast, sent) = node(0, 0).await;
    let slow = stalled_node().await;
    // Due on both chains (expired approvals), chain 1 first (as one task took them).
    let mut on_1 = lane::tests::key(lane::tests::ROUTER, AllowanceState::Expired, None);
    on_1.chain_id = 1;
    let mut on_31337 = on_1.clone();
    on_31337.chain_id = 31337;
    let mut st = lane::tests::status(SessionState::Active, vec![on_1, on_31337], 0);
    st.next_nonces.push(bridle_common::protocol::ChainNonce { chain_id: 31337, nonce: 0 });
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(round::Statuses::default()));
    let claimed = Arc::default();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    for url in [slow, fast] {
        let node = round::Node { state: state.clone(), http: http.clone(), url, claimed: Arc::clone(&claimed) };
        tokio::spawn(node.follow(rx.clone(), Duration::from_secs(1), Duration::from_secs(120)));
    }
    // Both nodes' chains known before the round (a chain met later starts at the slowest
    // chain's count: on a loaded machine chain 1's line could appear at 1, a round it never
    // made, which failed this test about once in twenty runs).
    let started = Instant::now();
    loop {
        let m = state.sweep_metrics.render();
        if m.contains("bridle_sweep_chain_rounds_total{chain_id=\"1\"} 0\n")
            && m.contains("bridle_sweep_chain_rounds_total{chain_id=\"31337\"} 0\n")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tx.send_replace(Arc::new(round::Statuses {
        sessions: vec![(Box::new(st), Limits::of(None))],
        limit: SWEEP_CALL_LIMIT,
    }));
    let started = Instant::now();
    while sent.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "chain 31337 waited for chain 1's node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1, "one sweep asked, on 31337");
    assert_eq!(nonces(&sent.lock().unwrap()), vec![0]);
    let started = Instant::now();
    loop {
        let m = state.sweep_metrics.render();
        let chain_1 = "bridle_sweep_chain_rounds_total{chain_id=\"1\"}";
        let rounds_31337 = m
            .lines()
            .find_map(|l| l.strip_prefix("bridle_sweep_chain_rounds_total{chain_id=\"31337\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if rounds_31337 >= 1 && m.contains(chain_1) {
            assert!(m.contains(&format!("{chain_1} 0\n")), "{m}");
            assert!(m.contains("bridle_sweep_rounds_total 0\n"), "the slowest chain's count: {m}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A sweep found in the node's pool that this host's store holds (another host sharing the
/// database broadcast it, or this one before a restart): followed with its own bytes, hash
/// and fees, so a bump starts from its fees (100, 10) rather than the node's (≈ 1 wei) — a
/// bump from the node's would be refused as underpriced until many rounds had raised it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_in_the_nodes_pool_that_the_store_holds_is_bumped_from_its_own_fees() {
    use bridle_common::tx::{Eip1559Request, TxRequest};
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(4));
    let (url, sent) = node(4, 5).await;
    let raw = TxRequest::Eip1559(Eip1559Request {
        chain_id: 31337,
        nonce: 4,
        max_fee_per_gas: 100,
        max_priority_fee_per_gas: 10,
        gas_limit: SWEEP_GAS_LIMIT,
        to: Some(Address::repeat_byte(1)),
        value: Default::default(),
        data: Default::default(),
        access_list: vec![],
    })
    .build()
    .unwrap()
    .encode_signed(alloy_primitives::Signature::test_signature());
    let stored = crate::store::StoredSweepTx {
        session: SESSION,
        chain_id: 31337,
        nonce: 4,
        token: Address::repeat_byte(1),
        spender: Address::repeat_byte(2),
        hash: B256::repeat_byte(0x44),
        raw_transaction: raw.clone(),
        signed_at: 1,
    };
    state.store.insert_sweep(&[stored]).unwrap();
    let st = swept_at_4();
    let http = reqwest::Client::new();
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    let mut book = Book::default();
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await.unwrap();
    assert_eq!(lane, Lane::Moving);
    let held = &book[&(SESSION, 31337)][&4];
    assert_eq!((held.hashes.clone(), &held.raw), (vec![B256::repeat_byte(0x44)], &raw));
    assert_eq!((held.max_fee_per_gas, held.max_priority_fee_per_gas), (100, 10));
    assert_eq!(calls.load(Ordering::Relaxed), 0, "not re-signed while the pool holds it");
    // Still there after bump_after: bumped 12.5 % from its own fees, signed at 4.
    book.get_mut(&(SESSION, 31337)).unwrap().get_mut(&4).unwrap().sent_at -= Duration::from_secs(180);
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await.unwrap();
    assert_eq!(lane, Lane::Moving);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    let bumped = &book[&(SESSION, 31337)][&4];
    assert_eq!((bumped.max_fee_per_gas, bumped.max_priority_fee_per_gas), (113, 12));
    assert_eq!(bumped.hashes.len(), 2, "the stored hash and the bump's");
    assert_eq!(nonces(&sent.lock().unwrap()), vec![4], "the bump, broadcast");
}

/// A review of 2026-12-06: a never broadcast sweep at 4, re-signed; the enclave re-signs
/// other revocations (at 7) and not the one at 4. Followed, they left the lane waiting
/// behind a gap of its own making until a restart, blamed on the agent. Now nothing is sent
/// or followed; what was signed is kept, and the lane is the owner's to sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_sign_without_its_nonce_is_kept_and_neither_sent_nor_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (state, calls) = host_with(&dir, Answer::SignedAt(7));
    let (url, sent) = node(4, 4).await;
    let st = swept_at_4();
    let http = reqwest::Client::new();
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    let mut book = Book::default();
    let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await.unwrap();
    assert_eq!(lane, Lane::Idle { left_to_owner: true, recheck: lane::IDLE_RECHECK });
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert!(book.is_empty(), "nothing followed: {book:?}");
    assert!(sent.lock().unwrap().is_empty(), "nothing broadcast");
    assert_eq!(state.store.sweeps_at(&SESSION, 31337, 7).unwrap().len(), 1, "kept");
}

/// A review of 2026-12-06: the sweeper stored, broadcast and followed whatever came back
/// as the enclave's reply — in a cluster, calls travel through other hosts. A reply without
/// the enclave's receipt and with bytes that are no transaction, a genuine signature at
/// fees above the terms, or a genuine receipted reply at lower fees (an earlier one,
/// replayed: it was booked as a bump at the fees asked for, and the node refused its copy
/// as underpriced until the caps), is now neither stored, sent nor followed; the round
/// counts it as an error and leaves the lane alone for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_is_not_the_enclaves_answer_is_neither_stored_nor_sent() {
    use bridle_common::allowance::AllowanceState;
    let mut due = lane::tests::key(lane::tests::ROUTER, AllowanceState::Expired, None);
    due.chain_id = 31337;
    let mut st = lane::tests::status(SessionState::Active, vec![due], 0);
    st.next_nonces[0].chain_id = 31337;
    for (i, answer) in [Answer::Junk(0), Answer::OverFees(0), Answer::UnderFees(0)].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let (state, calls) = host_with(&dir, answer);
        let (url, sent) = node(0, 0).await;
        let http = reqwest::Client::new();
        let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
        let mut book = Book::default();
        let lane = sweep_chain(&state, &http, &url, (&st, 31337), &mut book, after, Limits::of(None)).await;
        assert_eq!(lane.unwrap(), Lane::Unchecked, "answer {i}");
        let terms = SweepTerms {
            chain_id: 31337,
            nonce: 0,
            max_fee_per_gas: 2,
            max_priority_fee_per_gas: 1,
            gas_limit: SWEEP_GAS_LIMIT,
        };
        let Reply::Swept(r) = swept(answer, &terms) else { unreachable!() };
        let e = reply::check(&state, SESSION, &[terms], None, &r).unwrap_err().to_string();
        assert!(e.contains(["its receipt", "fees or gas above the terms", "not the terms'"][i]), "{e}");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(book.is_empty() && sent.lock().unwrap().is_empty());
        assert!(state.store.sweeps_at(&SESSION, 31337, 0).unwrap().is_empty(), "nothing kept");
    }
    // The same answer signed as asked goes through.
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = host_with(&dir, Answer::SignedAt(0));
    let (url, sent) = node(0, 0).await;
    let mut book = Book::default();
    let after = (Duration::from_secs(120), SWEEP_CALL_LIMIT);
    let lane =
        sweep_chain(&state, &reqwest::Client::new(), &url, (&st, 31337), &mut book, after, Limits::of(None)).await;
    assert_eq!(lane.unwrap(), Lane::Moving);
    assert_eq!(nonces(&sent.lock().unwrap()), vec![0]);
}

/// A review of 2026-12-06: the client took the identity of any status it got, and in a
/// cluster a status may be answered by a peer host (any URL heard of) — whose key then
/// checked sweep replies, and whose "new identity" marked every stored session lost (and
/// under which the audit pull kept a chain). The identity is learned from this host's own
/// enclave only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_status_does_not_set_the_enclaves_identity() {
    use axum::{routing::post, Router};
    let stranger = Address::repeat_byte(0x66);
    let answer = move || async move {
        let status = Status {
            version: "peer".into(),
            identity_public_key: Default::default(),
            identity_address: stranger,
            booted_at: 0,
            now: 0,
            sessions_active: 0,
            sessions_total: 0,
            signatures: 0,
            denials: 0,
            session: None,
            aggregate: vec![],
            receipt: None,
        };
        to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result: Ok(Reply::Status(status)) }).unwrap()
    };
    let app = Router::new().route("/v1/cluster/call", post(answer));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    unavailable_node(path.clone());
    let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
    config.database = Database::Sqlite(":memory:".into());
    config.probe_interval = None;
    config.cluster = Some(ClusterSettings {
        listen: "127.0.0.1:0".into(),
        advertise: "http://127.0.0.1:9".into(),
        seeds: vec![peer],
        bootstrap: false,
        source: None,
    });
    let state = AppState::open(config).unwrap();
    let r = state.client.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await;
    assert!(matches!(&r, Ok(Reply::Status(s)) if s.identity_address == stranger), "the peer answered: {r:?}");
    assert_eq!(state.client.identity(), None, "a peer's word is not the enclave's identity");
    // Nor does the audit pull keep a chain under the peer's identity.
    let pulled = state.audit.pull(&state.client).await;
    let e = pulled.expect_err("refused").to_string();
    assert!(e.contains("not this host's enclave's"), "{e}");
}

/// A cluster node on `path` whose statuses about a session come with the enclave's receipt
/// for the query's nonce when `genuine`, else with none (a host in the way making it up).
fn node_answering_statuses(path: std::path::PathBuf, genuine: bool) {
    let id = Address::from_public_key(identity_key().verifying_key());
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                    let Call::Status(q) = req.call else { unreachable!("only statuses here") };
                    let mut st = Status {
                        version: "fake".into(),
                        identity_public_key: Default::default(),
                        identity_address: id,
                        booted_at: 0,
                        now: 0,
                        sessions_active: 0,
                        sessions_total: 0,
                        signatures: 0,
                        denials: 0,
                        session: q.session.map(|_| Box::new(session_status())),
                        aggregate: vec![],
                        receipt: None,
                    };
                    if let (true, Some(n)) = (genuine, q.nonce) {
                        let word = bridle_common::receipt::status_nonce(n, q.session);
                        bridle_common::receipt::attach(&mut st, id, 1, word, |d| {
                            Ok::<_, std::convert::Infallible>(sign(&identity_key(), d))
                        })
                        .unwrap();
                    }
                    let frame =
                        to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result: Ok(Reply::Status(st)) }).unwrap();
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A review of 2026-12-06: in a cluster the sweeper read sessions' statuses unsigned, and a
/// status may come through other hosts: a forged "nothing due" made it sweep nothing,
/// silently. A cluster host asks with a fresh nonce and takes a status only with the
/// enclave's receipt for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_the_sweeper_takes_only_statuses_the_enclave_signed() {
    for genuine in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.sock");
        node_answering_statuses(path.clone(), genuine);
        let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
        config.database = Database::Sqlite(":memory:".into());
        config.probe_interval = None;
        config.cluster = Some(ClusterSettings {
            listen: "127.0.0.1:0".into(),
            advertise: "http://127.0.0.1:9".into(),
            seeds: vec![],
            bootstrap: false,
            source: None,
        });
        let state = AppState::open(config).unwrap();
        state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
        let now = crate::store::now_secs();
        let policy =
            bridle_common::policy::file::resolve_text("name='t'\nchains=[31337]\nvalid_for='1h'\n", now).unwrap();
        let binding = bridle_common::protocol::SessionBinding {
            enclave: Address::from_public_key(identity_key().verifying_key()),
            session: SESSION,
            owner: Address::repeat_byte(0x0a),
            agent: Address::repeat_byte(0x0b),
            policy_hash: policy.hash(),
            created_at: now,
            valid_until: now + 3600,
        };
        let created =
            SessionCreated { binding, binding_signature: Default::default(), attestation: None, receipt: None };
        let auth = OwnerAuth { owner: Address::repeat_byte(0x0a), nonce: 1, signature: Default::default() };
        state.store.insert_session(&created, &policy, &auth).unwrap();
        let statuses = round::statuses(&state).await;
        assert_eq!(statuses.sessions.len(), usize::from(genuine), "genuine: {genuine}");
        let errors = if genuine { "bridle_sweep_errors_total 0\n" } else { "bridle_sweep_errors_total 1\n" };
        assert!(state.sweep_metrics.render().contains(errors), "{}", state.sweep_metrics.render());
    }
}
