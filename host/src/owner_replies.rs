//! What the host keeps of a reply to an owner's call: only the enclave's answer to it. And
//! the check every reply that may come through other hosts passes before the host keeps
//! or follows it: its own enclave's receipt ([`enclaves_word`]); a session's status read
//! so ([`session_status`]: the sweeper and the session retention).

use crate::enclave_client::{ClientError, EnclaveClient};
use crate::AppState;
use alloy_primitives::{Address, B256};
use bridle_common::error::ErrorCode;
use bridle_common::protocol::{Call, OwnerAuth, Reply, Status, StatusQuery};
use bridle_common::receipt::{self, Receipted};
use std::time::Duration;

/// Whether `reply` carries the receipt of the enclave this host fronts (asked of it when not
/// known yet; a peer's word is never taken for it) for `word`, the nonce it was asked with.
pub async fn enclaves_word<T: Receipted>(client: &EnclaveClient, reply: &T, word: B256) -> Result<(), String> {
    let enclave = client.own_identity().await.ok_or("this host's enclave has not said its identity")?;
    receipt::verify(reply, enclave, Some(word)).map(|_| ()).map_err(|e| e.to_string())
}

/// Whether `reply` to an owner's call signed with `auth` is the enclave's answer to it: the
/// receipt of the enclave this host fronts, for that owner's nonce (spent once, so no other
/// reply carries it). Only then does the host keep anything of it: in a cluster the reply
/// may come through other hosts (a review of 2026-12-06: a forged `PolicyUpdated` set the
/// fee caps the sweeper works within, a forged `Revoked` marked any session revoked, a
/// forged creation rewrote a session's row). Relayed either way: owners' tools check it.
pub async fn enclaves_answer<T: Receipted>(st: &AppState, reply: &T, auth: &OwnerAuth, what: &str) -> bool {
    let checked = enclaves_word(&st.client, reply, receipt::owner_nonce(auth.owner, auth.nonce)).await;
    if let Err(e) = &checked {
        tracing::warn!(what, error = %e, "a reply to an owner's call failed the host's checks: relayed, not kept");
    }
    checked.is_ok()
}

/// Why a session's status was not taken ([`session_status`]).
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The call failed (see [`StatusError::unserved`]).
    #[error("{0}")]
    Call(#[from] ClientError),
    #[error("the enclave answered a status with another reply")]
    OtherReply,
    /// In a cluster: the status does not carry this host's enclave's receipt for the nonce
    /// it was asked with.
    #[error("the status is not the enclave's: {0}")]
    NotTheEnclaves(String),
    /// The status is about another session than the one asked about.
    #[error("the status is about another session, {0}")]
    OtherSession(Address),
}

impl StatusError {
    /// Whether the enclave (or the cluster) did not serve the call now: not answered, or
    /// answered `unavailable`. Asking again at once would fare no better.
    pub fn unserved(&self) -> bool {
        match self {
            StatusError::Call(ClientError::Unavailable(_) | ClientError::Timeout(_)) => true,
            StatusError::Call(ClientError::Denied(d)) => d.code == ErrorCode::Unavailable,
            _ => false,
        }
    }
}

/// One session's status, taken only as the enclave's word. In a cluster a status may come
/// through other hosts: it is asked with a fresh nonce and taken only with the receipt of
/// the enclave this host fronts for it (a review of 2026-12-06: a forged "nothing due" made
/// the sweeper sweep nothing, silently). A stand-alone host reads its own enclave's socket,
/// and asks unsigned (a receipt is a signature). In a cluster no new try starts after
/// `limit` ([`EnclaveClient::call_within`]).
///
/// `Ok` with `session: None`: the enclave holds no such session; otherwise it is the
/// status of `session`.
pub async fn session_status(state: &AppState, session: Address, limit: Duration) -> Result<Status, StatusError> {
    let nonce = state.config.cluster.is_some().then(|| {
        let mut n = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut n);
        B256::from(n)
    });
    let call = Call::Status(StatusQuery { session: Some(session), nonce, held: None });
    let Reply::Status(st) = state.client.call_within(call, limit).await? else {
        return Err(StatusError::OtherReply);
    };
    if let Some(n) = nonce {
        let word = receipt::status_nonce(n, Some(session));
        enclaves_word(&state.client, &st, word).await.map_err(StatusError::NotTheEnclaves)?;
    }
    match &st.session {
        Some(ss) if ss.session != session => Err(StatusError::OtherSession(ss.session)),
        _ => Ok(st),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AddrPath, ApiJson};
    use crate::store::StoredState;
    use crate::test_fakes::{identity, identity_key, sign, status_of, store_session};
    use alloy_primitives::Address;
    use axum::extract::State;
    use bridle_common::error::{Denial, ErrorCode};
    use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
    use bridle_common::protocol::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// An enclave on `path` that answers every revocation with its session revoked: with
    /// its receipt for the owner's nonce when `genuine`, else with none (a host in the way
    /// making it up). Its first status is answered `unavailable` when `late` (a cluster node
    /// that had not joined when the connection opened), then its identity.
    fn enclave(path: std::path::PathBuf, genuine: bool, late: bool) {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let joined = Arc::new(AtomicBool::new(!late));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let joined = joined.clone();
                tokio::spawn(async move {
                    while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                        let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                        let result = match req.call {
                            Call::Status(_) if !joined.swap(true, Ordering::Relaxed) => {
                                Err(Denial::new(ErrorCode::Unavailable, "this node has not joined yet"))
                            }
                            Call::Status(_) => Ok(Reply::Status(status_of(identity()))),
                            Call::Revoke(r) => {
                                let mut reply = Revoked { sessions: vec![r.session], receipt: None };
                                if genuine {
                                    let word = bridle_common::receipt::owner_nonce(r.auth.owner, r.auth.nonce);
                                    bridle_common::receipt::attach(&mut reply, identity(), 1, word, |d| {
                                        Ok::<_, std::convert::Infallible>(sign(&identity_key(), d))
                                    })
                                    .unwrap();
                                }
                                Ok(Reply::Revoked(reply))
                            }
                            // Signed, but naming another policy than the one asked for.
                            Call::UpdatePolicy(u) => {
                                let mut reply = PolicyUpdated {
                                    session: u.session,
                                    policy_hash: alloy_primitives::B256::repeat_byte(9),
                                    binding: None,
                                    binding_signature: None,
                                    receipt: None,
                                };
                                let word = bridle_common::receipt::owner_nonce(u.auth.owner, u.auth.nonce);
                                bridle_common::receipt::attach(&mut reply, identity(), 1, word, |d| {
                                    Ok::<_, std::convert::Infallible>(sign(&identity_key(), d))
                                })
                                .unwrap();
                                Ok(Reply::PolicyUpdated(reply))
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
    }

    /// A review of 2026-12-06: the host kept whatever came back as the answer to an owner's
    /// call (a forged `Revoked` marked any session revoked). It keeps only the enclave's
    /// answer, and still relays the other; a host whose connection opened before its node
    /// said its identity asks its own enclave then (a review of the fix: such replies were
    /// relayed and never kept).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_enclaves_answer_to_an_owners_call_is_kept() {
        for (genuine, late) in [(false, false), (true, false), (true, true)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("enclave.sock");
            enclave(path.clone(), genuine, late);
            let state = crate::test_fakes::host(path, None);
            let (session, owner) = (Address::repeat_byte(5), Address::repeat_byte(0x0a));
            store_session(&state, session, owner, 1, 1);
            let auth = OwnerAuth { owner, nonce: 2, signature: Default::default() };
            let r =
                crate::api::revoke(State(state.clone()), AddrPath(session), ApiJson(Revoke { auth, session })).await;
            assert!(r.is_ok(), "relayed either way");
            let kept = state.store.get_session(&session).unwrap().unwrap().state;
            let want = if genuine { StoredState::Revoked } else { StoredState::Active };
            assert_eq!(kept, want, "genuine: {genuine}, late: {late}");
        }
    }

    /// The review of the fix: a kept update must name the hash of the policy the host stores
    /// with it. A receipted reply naming another policy is relayed, not kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_naming_another_policy_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enclave.sock");
        enclave(path.clone(), true, false);
        let state = crate::test_fakes::host(path, None);
        let (session, owner) = (Address::repeat_byte(5), Address::repeat_byte(0x0a));
        store_session(&state, session, owner, 1, 1);
        let now = crate::store::now_secs();
        let policy = bridle_common::policy::file::resolve_text("name='u'\nchains=[1]\nvalid_for='2h'\n", now).unwrap();
        let auth = OwnerAuth { owner, nonce: 2, signature: Default::default() };
        let update = UpdatePolicy { auth, session, policy: policy.clone() };
        let r = crate::api::update_policy(State(state.clone()), AddrPath(session), ApiJson(update)).await;
        assert!(r.is_ok(), "relayed");
        for hash in [policy.hash(), alloy_primitives::B256::repeat_byte(9)] {
            assert!(state.store.policy_with_hash(&session, &hash).unwrap().is_none(), "kept under {hash}");
        }
    }
}
