//! The sweeper's fakes: an enclave that signs sweeps as a real one (or makes up answers), a
//! cluster node that cannot serve, a chain node over HTTP, and the states a lane starts in.
use super::*;
use crate::test_fakes::{identity_key, sign, status_of};
use bridle_common::error::Denial;
use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub(super) use lane::tests::SESSION;

/// A cluster node whose every answer is `unavailable`, as a leader that may not hold the
/// session's key answers a sweep during a rolling upgrade (status included: a node that has
/// not joined answers it so, and the client takes that).
/// `joined`: a node that has joined answers a status about no session with its identity
/// (as every joined node does), and every other call so.
pub(super) fn unavailable_node(path: std::path::PathBuf, joined: bool) {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                    let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                    let result = match req.call {
                        Call::Status(q) if joined && q.session.is_none() && q.nonce.is_none() => {
                            Ok(Reply::Status(status_of(crate::test_fakes::identity())))
                        }
                        _ => Err(Denial::new(
                            ErrorCode::Unavailable,
                            "this cluster's leader may not hold this session's key; nothing was signed",
                        )),
                    };
                    let frame = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap();
                    if write_frame(&mut s, &frame).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A cluster host, sweeping, whose node (in `dir`) has joined and answers every call but
/// its identity `unavailable`.
pub(super) fn unavailable_cluster(dir: &tempfile::TempDir) -> AppState {
    let path = dir.path().join("enclave.sock");
    unavailable_node(path.clone(), true);
    let state = crate::test_fakes::host(path, Some(vec![]));
    state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
    state
}

/// What the fake enclave answers a sweep with.
#[derive(Clone, Copy)]
pub(super) enum Answer {
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

/// The session's key (its address is [`SESSION`]).
pub(super) fn session_key() -> k256::ecdsa::SigningKey {
    k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

/// The revocation of the session's ERC-20 approval (token 0x01…, spender 0x02…) at `nonce`
/// on 31337, signed by the session's key.
pub(super) fn revocation(nonce: u64, fee: u128, tip: u128, gas: u64) -> SweepTx {
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
pub(super) fn swept(answer: Answer, terms: &SweepTerms) -> Reply {
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
pub(super) fn enclave_answering(path: std::path::PathBuf, answer: Answer) -> Arc<AtomicU64> {
    let calls = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let counted = calls.clone();
    let identity = Status {
        identity_public_key: identity_key().verifying_key().to_encoded_point(true).as_bytes().to_vec().into(),
        ..status_of(crate::test_fakes::identity())
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
pub(super) fn nonces(sent: &[String]) -> Vec<u64> {
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
pub(super) async fn node(mined: u64, pending: u64) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
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
pub(super) fn host_with(dir: &tempfile::TempDir, answer: Answer) -> (AppState, Arc<AtomicU64>) {
    let path = dir.path().join("enclave.sock");
    let calls = enclave_answering(path.clone(), answer);
    let state = crate::test_fakes::host(path, None);
    state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
    (state, calls)
}

/// The session's status as the sweeper reads it (only its address matters while a lane has
/// something in flight).
pub(super) fn session_status() -> SessionStatus {
    lane::tests::status(SessionState::Active, vec![], 0)
}

/// A book with one revocation in flight at `nonce`, broadcast `ago`.
pub(super) fn book_at(nonce: u64, ago: Duration) -> Book {
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

/// The session's status on 31337 with one approval swept at nonce 4 (signed, not mined),
/// the enclave's next nonce 5.
pub(super) fn swept_at_4() -> SessionStatus {
    let mut swept = lane::tests::key(lane::tests::ROUTER, bridle_common::allowance::AllowanceState::Swept, Some(4));
    swept.chain_id = 31337;
    let mut st = lane::tests::status(SessionState::Active, vec![swept], 5);
    st.next_nonces[0].chain_id = 31337;
    st
}
