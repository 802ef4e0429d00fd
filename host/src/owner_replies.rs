//! What the host keeps of a reply to an owner's call: only the enclave's answer to it.

use crate::AppState;
use bridle_common::protocol::OwnerAuth;

/// Whether `reply` to an owner's call signed with `auth` is the enclave's answer to it: the
/// receipt of the enclave this host fronts, for that owner's nonce (spent once, so no other
/// reply carries it). Only then does the host keep anything of it: in a cluster the reply
/// may come through other hosts (a review of 2026-12-06: a forged `PolicyUpdated` set the
/// fee caps the sweeper works within, a forged `Revoked` marked any session revoked, a
/// forged creation rewrote a session's row). Relayed either way: owners' tools check it.
pub fn enclaves_answer<T: bridle_common::receipt::Receipted>(
    st: &AppState,
    reply: &T,
    auth: &OwnerAuth,
    what: &str,
) -> bool {
    let checked =
        st.client.identity().ok_or_else(|| "the enclave's identity is not known yet".to_string()).and_then(|enclave| {
            let word = bridle_common::receipt::owner_nonce(auth.owner, auth.nonce);
            bridle_common::receipt::verify(reply, enclave, Some(word)).map(|_| ()).map_err(|e| e.to_string())
        });
    if let Err(e) = &checked {
        tracing::warn!(what, error = %e, "a reply to an owner's call failed the host's checks: relayed, not kept");
    }
    checked.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AddrPath, ApiJson};
    use crate::store::{Database, StoredState};
    use alloy_primitives::Address;
    use axum::extract::State;
    use bridle_common::address::SocketAddress;
    use bridle_common::error::{Denial, ErrorCode};
    use bridle_common::frame::{read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
    use bridle_common::protocol::*;

    fn identity() -> k256::ecdsa::SigningKey {
        k256::ecdsa::SigningKey::from_slice(&[0xee; 32]).unwrap()
    }

    /// An enclave on `path` whose status names its identity and which answers every
    /// revocation with `S` revoked: with its receipt for the owner's nonce when `genuine`,
    /// else with none (a host in the way making it up).
    fn enclave(path: std::path::PathBuf, genuine: bool) {
        let id = Address::from_public_key(identity().verifying_key());
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    while let Ok(body) = read_frame(&mut s, DEFAULT_MAX_FRAME).await {
                        let req: RequestFrame = bridle_common::frame::from_cbor(&body).unwrap();
                        let result = match req.call {
                            Call::Status(_) => Ok(Reply::Status(Status {
                                version: "fake".into(),
                                identity_public_key: Default::default(),
                                identity_address: id,
                                booted_at: 0,
                                now: 0,
                                sessions_active: 0,
                                sessions_total: 0,
                                signatures: 0,
                                denials: 0,
                                session: None,
                                aggregate: vec![],
                                receipt: None,
                            })),
                            Call::Revoke(r) => {
                                let mut reply = Revoked { sessions: vec![r.session], receipt: None };
                                if genuine {
                                    let word = bridle_common::receipt::owner_nonce(r.auth.owner, r.auth.nonce);
                                    bridle_common::receipt::attach(&mut reply, id, 1, word, |d| {
                                        let (s, v) = identity().sign_prehash_recoverable(d.as_slice())?;
                                        Ok::<_, k256::ecdsa::Error>(
                                            alloy_primitives::Signature::from_signature_and_parity(s, v.is_y_odd()),
                                        )
                                    })
                                    .unwrap();
                                }
                                Ok(Reply::Revoked(reply))
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
    /// answer, and still relays the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_enclaves_answer_to_an_owners_call_is_kept() {
        for genuine in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("enclave.sock");
            enclave(path.clone(), genuine);
            let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
            config.database = Database::Sqlite(":memory:".into());
            config.probe_interval = None;
            let state = AppState::open(config).unwrap();
            let now = crate::store::now_secs();
            let policy =
                bridle_common::policy::file::resolve_text("name='t'\nchains=[1]\nvalid_for='1h'\n", now).unwrap();
            let (session, owner) = (Address::repeat_byte(5), Address::repeat_byte(0x0a));
            let binding = SessionBinding {
                enclave: Address::from_public_key(identity().verifying_key()),
                session,
                owner,
                agent: Address::repeat_byte(0x0b),
                policy_hash: policy.hash(),
                created_at: now,
                valid_until: now + 3600,
            };
            let created =
                SessionCreated { binding, binding_signature: Default::default(), attestation: None, receipt: None };
            let auth = OwnerAuth { owner, nonce: 1, signature: Default::default() };
            state.store.insert_session(&created, &policy, &auth).unwrap();
            let revoke = Revoke { auth: OwnerAuth { nonce: 2, ..auth }, session };
            let r = crate::api::revoke(State(state.clone()), AddrPath(session), ApiJson(revoke)).await;
            assert!(r.is_ok(), "relayed either way");
            let kept = state.store.get_session(&session).unwrap().unwrap().state;
            let want = if genuine { StoredState::Revoked } else { StoredState::Active };
            assert_eq!(kept, want, "genuine: {genuine}");
        }
    }
}
