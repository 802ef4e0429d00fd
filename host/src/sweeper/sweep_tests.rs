//! The sweeper against fakes over real sockets: a cluster node that cannot serve now, an
//! enclave that signs a sweep's revocation at another nonce than the one stuck, and a node
//! that holds nothing at a nonce in flight.
use super::fakes::*;
use super::*;
use std::sync::Arc;

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
    let sessions = 6u8;
    for i in 1..=sessions {
        crate::test_fakes::store_session(
            &state,
            Address::repeat_byte(i),
            Address::repeat_byte(0x0a),
            31337,
            u64::from(i),
        );
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
