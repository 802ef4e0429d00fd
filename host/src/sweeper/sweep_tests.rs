//! A sweep the cluster cannot serve now, against a fake cluster node over a real socket.
use super::*;
use crate::cluster::ClusterSettings;
use crate::store::Database;
use bridle_common::address::SocketAddress;
use bridle_common::error::Denial;
use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};

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
    let signed =
        sweep(&state, &reqwest::Client::new(), url, (Address::repeat_byte(7), terms), &mut book, SWEEP_CALL_LIMIT)
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
    let (mut book, mut idle) = (Book::default(), IdleLanes::default());
    let started = Instant::now();
    round(&state, &reqwest::Client::new(), &HashMap::new(), (&mut book, &mut idle), Duration::from_secs(60)).await;
    let took = started.elapsed();
    // Each session given the whole limit would take six limits; one try each after the
    // first, about 2 s + 5 × 0.3 s.
    assert!(SWEEP_RETRY_LIMIT * 5 <= SWEEP_CALL_LIMIT);
    let bound = SWEEP_CALL_LIMIT * 3;
    assert!(took < bound, "a round of {sessions} sessions the cluster cannot serve took {took:?} (bound {bound:?})");
    let m = state.sweep_metrics.render();
    assert!(m.contains(&format!("bridle_sweep_errors_total {sessions}\n")), "{m}");
    assert!(m.contains("bridle_sweep_rounds_total 1\n"), "{m}");
}
