//! The sweeper and the replies it gets (reviews of 2026-12-06): a reply that is not the
//! enclave's answer to the sweep, a re-sign without its nonce, a peer host's status, and a
//! cluster's unsigned statuses.
use super::fakes::*;
use super::*;
use crate::test_fakes::{identity_key, sign, status_of};
use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};

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
        let e = reply::check(&state, SESSION, &[terms], None, &r).await.unwrap_err().to_string();
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
        let status = status_of(stranger);
        to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result: Ok(Reply::Status(status)) }).unwrap()
    };
    let app = Router::new().route("/v1/cluster/call", post(answer));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enclave.sock");
    unavailable_node(path.clone(), false);
    let state = crate::test_fakes::host(path, Some(vec![peer]));
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
                    let mut st = Status { session: q.session.map(|_| Box::new(session_status())), ..status_of(id) };
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
        let state = crate::test_fakes::host(path, Some(vec![]));
        state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
        crate::test_fakes::store_session(&state, SESSION, Address::repeat_byte(0x0a), 31337, 1);
        let statuses = round::statuses(&state).await;
        assert_eq!(statuses.sessions.len(), usize::from(genuine), "genuine: {genuine}");
        let errors = if genuine { "bridle_sweep_errors_total 0\n" } else { "bridle_sweep_errors_total 1\n" };
        assert!(state.sweep_metrics.render().contains(errors), "{}", state.sweep_metrics.render());
    }
}
