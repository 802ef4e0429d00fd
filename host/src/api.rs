//! The HTTP API: JSON routes for owners, agents and verifiers, relayed to the enclave.
//!
//! Request bodies are the exact serde (JSON) form of the common protocol types; replies are
//! the enclave's reply objects. The host adds nothing the enclave checks: it parses,
//! relays, stores and maps errors to HTTP.

use crate::enclave_client::{reply_name, ClientError};
use crate::store::{Event, StoredSession, StoredState};
use crate::AppState;
use alloy_primitives::{Address, Bytes};
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{
    AllowImage, ApprovePending, Attest, Call, CreateSession, DenyPending, Reply, Revoke, RevokeAll, SignRequest,
    Signed, StatusQuery, Sweep, UpdatePolicy,
};
use serde::Deserialize;
use serde_json::{json, Value};

pub use crate::api_error::*;

// ---------------------------------------------------------------------------------------
// Shared relay helpers (also used by JSON-RPC).

/// Refuse a session the host knows was lost to an enclave restart.
pub fn check_lost(st: &AppState, session: &Address) -> Result<(), ApiError> {
    match st.store.session_state(session) {
        Some((StoredState::Lost, enclave)) => Err(ApiError::lost(session, &enclave)),
        _ => Ok(()),
    }
}

/// Map an enclave error for a session: `unknown_session` for a session the host knows
/// was lost (the restart was noticed during this very call, or another host sharing the
/// database marked it) becomes 410. Only this error path reads the database: the session's
/// state is refreshed from it when the index does not already say lost.
async fn session_error(st: &AppState, session: &Address, e: ClientError) -> ApiError {
    let ClientError::Denied(d) = &e else { return e.into() };
    if d.code != ErrorCode::UnknownSession {
        return ApiError::denial(d.clone());
    }
    if check_lost(st, session).is_ok() {
        let s = *session;
        if let Err(e) = st.store.run(move |db| db.load_session_state(&s)).await {
            tracing::warn!(session = %session, error = %format!("{e:#}"), "cannot read the session from the database");
        }
    }
    check_lost(st, session).err().unwrap_or_else(|| ApiError::denial(d.clone()))
}

fn event_for(call: &str, session: Option<Address>, r: &Result<Reply, ClientError>) -> Event {
    match r {
        Ok(_) => Event::now(call, session, "ok", None),
        Err(ClientError::Denied(d)) => Event::now(call, session, "denied", Some(d.code.as_str())),
        Err(e) => Event::now(call, session, "error", Some(e.code_str())),
    }
}

/// Relay a signing request. The event is recorded asynchronously (never waits for disk).
pub async fn relay_sign(st: &AppState, req: SignRequest) -> Result<Signed, ApiError> {
    let session = req.session;
    check_lost(st, &session)?;
    let r = st.client.call(Call::SignIfAllowed(req)).await;
    let mut ev = event_for("sign_if_allowed", Some(session), &r);
    match r {
        Ok(Reply::Signed(s)) => {
            ev.detail = Some(format!("{:#x}", s.digest));
            st.record_event(ev);
            Ok(s)
        }
        Ok(other) => {
            st.record_event(ev);
            Err(ApiError::wrong_reply("sign_if_allowed", &other))
        }
        Err(e) => {
            match &e {
                // A stranger's request, for a session that does not exist or with a stamp
                // that does not check, costs nothing to send: counted in the metrics
                // (`bridle_requests_total`), never a row (a review of
                // 2026-12-05: batches of them filled the events table).
                ClientError::Denied(d) if matches!(d.code, ErrorCode::UnknownSession | ErrorCode::Unauthenticated) => {}
                // Other refusals of a live session: some are made before its stamp is
                // checked (a payload that does not decode, a type-4 transaction), so a
                // stranger can send them too; rows for refusals are kept within
                // `DENIAL_ROWS_PER_SECOND` (a review of 2026-12-05), the rest counted.
                ClientError::Denied(d) if denial_row_allowed() => {
                    ev.detail = Some(bridle_common::audit::truncate(&d.reason, 200));
                    st.record_event(ev);
                }
                ClientError::Denied(_) => st.metrics.event_dropped(),
                _ => st.record_event(ev),
            }
            Err(session_error(st, &session, e).await)
        }
    }
}

/// Event rows for refused signing requests a host writes per second, at most; beyond it
/// they are counted (`bridle_events_dropped_total`). The enclave's audit log keeps its own
/// bounded record of refusals.
const DENIAL_ROWS_PER_SECOND: u32 = 64;

/// Whether one more refusal row fits this second's bound.
fn denial_row_allowed() -> bool {
    static WINDOW: std::sync::Mutex<(u64, u32)> = std::sync::Mutex::new((0, 0));
    let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    if w.0 != second {
        *w = (second, 0);
    }
    w.1 += 1;
    w.1 <= DENIAL_ROWS_PER_SECOND
}

/// Relay an owner action and record its event.
async fn relay_owner(st: &AppState, call: Call, session: Option<Address>) -> Result<Reply, ApiError> {
    let name = call.name();
    let r = st.client.call(call).await;
    let ev = event_for(name, session, &r);
    match &r {
        // Anyone can send an owner call with any signature, naming any session: a refusal
        // of one nobody signed (or signed before) is counted, never a row; others within
        // the refusal rows' bound (a review of 2026-12-06 wrote 900 rows a second against
        // a victim session, pushing other sessions' events out of the table).
        Err(ClientError::Denied(d)) if matches!(d.code, ErrorCode::Unauthenticated | ErrorCode::Replayed) => {
            st.metrics.event_dropped()
        }
        Err(ClientError::Denied(_)) if !denial_row_allowed() => st.metrics.event_dropped(),
        _ => st.record_event(ev),
    }
    match (r, session) {
        (Ok(reply), _) => Ok(reply),
        (Err(e), Some(s)) => Err(session_error(st, &s, e).await),
        (Err(e), None) => Err(e.into()),
    }
}

async fn store_write<F>(st: &AppState, what: &'static str, f: F)
where
    F: FnOnce(&crate::store::Store) -> anyhow::Result<()> + Send + 'static,
{
    // The enclave has acted; a storage failure must not hide its reply from the caller.
    if let Err(e) = st.store.run(f).await {
        tracing::error!(error = %e, "cannot store {what}");
    }
}

// ---------------------------------------------------------------------------------------
// Handlers.

pub async fn health(State(st): State<AppState>) -> Response {
    match st.client.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await {
        Ok(Reply::Status(s)) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "enclave": {"identity": s.identity_address, "reachable": true},
            })),
        )
            .into_response(),
        other => {
            let (reachable, error) = match other {
                Ok(r) => (true, format!("status answered with {}", reply_name(&r))),
                Err(e @ ClientError::Denied(_)) | Err(e @ ClientError::Protocol(_)) => (true, e.to_string()),
                Err(e) => (false, e.to_string()),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "enclave": {
                        "identity": st.client.identity(),
                        "reachable": reachable,
                        "error": error,
                    },
                })),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct StatusParams {
    session: Option<String>,
    /// 32-byte hex: the enclave then signs the reply for this nonce (a receipt the owner
    /// tools check).
    nonce: Option<String>,
    /// 32-byte hex: a held request whose payload the session's status shows whatever its
    /// size (others' payloads are shown while they fit in 256 KiB together).
    held: Option<String>,
    /// `1`: add `cbor`, the reply's CBOR without its receipt — the bytes the receipt signs —
    /// so that a client without the Rust types (the owner console) can check the receipt
    /// and that the JSON says what was signed.
    cbor: Option<String>,
}

/// A 32-byte hex nonce from a query string.
fn parse_b256(s: &str) -> Result<alloy_primitives::B256, ApiError> {
    s.trim().parse().map_err(|_| ApiError::malformed(format!("`{s}` is not 32 bytes of hex")))
}

pub async fn status(
    State(st): State<AppState>,
    q: Result<Query<StatusParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::malformed(e.body_text()))?;
    let session = q.session.as_deref().map(parse_address).transpose()?;
    let nonce = q.nonce.as_deref().map(parse_b256).transpose()?;
    let held = q.held.as_deref().map(parse_b256).transpose()?;
    if held.is_some() && session.is_none() {
        return Err(ApiError::malformed("held= names a request held in a session: give session= too"));
    }
    let with_cbor = match q.cbor.as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(ApiError::malformed(format!("cbor={other}: expected 1 or 0"))),
    };
    match st.client.call(Call::Status(StatusQuery { session, nonce, held })).await? {
        Reply::Status(s) => {
            let mut v = json!(s);
            if with_cbor {
                let mut bare = s;
                bridle_common::receipt::Receipted::set_receipt(&mut bare, None);
                let bytes = bridle_common::frame::to_cbor(&bare)
                    .map_err(|e| ApiError::internal(format!("status as CBOR: {e}")))?;
                v["cbor"] = json!(alloy_primitives::hex::encode_prefixed(bytes));
            }
            Ok(Json(v))
        }
        other => Err(ApiError::wrong_reply("status", &other)),
    }
}

pub async fn create_session(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<CreateSession>,
) -> Result<Json<Value>, ApiError> {
    let policy = req.policy.clone();
    let auth = req.auth.clone();
    match relay_owner(&st, Call::CreateSession(req), None).await? {
        Reply::SessionCreated(created) => {
            if crate::owner_replies::enclaves_answer(&st, &created, &auth, "create_session").await
                && created.binding.owner == auth.owner
                && created.binding.policy_hash == policy.hash()
            {
                let c = created.clone();
                store_write(&st, "session", move |s| s.insert_session(&c, &policy, &auth)).await;
            }
            tracing::info!(session = %created.binding.session, owner = %created.binding.owner, "session created");
            Ok(Json(json!(created)))
        }
        other => Err(ApiError::wrong_reply("create_session", &other)),
    }
}

pub async fn update_policy(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    ApiJson(req): ApiJson<UpdatePolicy>,
) -> Result<Json<Value>, ApiError> {
    if req.session != session {
        return Err(ApiError::malformed(format!("body session {} does not match the path's {session}", req.session)));
    }
    check_lost(&st, &session)?;
    let policy = req.policy.clone();
    let auth = req.auth.clone();
    match relay_owner(&st, Call::UpdatePolicy(req), Some(session)).await? {
        Reply::PolicyUpdated(u) => {
            if crate::owner_replies::enclaves_answer(&st, &u, &auth, "update_policy").await
                && u.session == session
                && u.policy_hash == policy.hash()
            {
                let (s, h) = (u.session, u.policy_hash);
                store_write(&st, "policy", move |db| db.update_policy(&s, &h, &policy, &auth)).await;
            }
            Ok(Json(json!(u)))
        }
        other => Err(ApiError::wrong_reply("update_policy", &other)),
    }
}

pub async fn revoke(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    ApiJson(req): ApiJson<Revoke>,
) -> Result<Json<Value>, ApiError> {
    if req.session != session {
        return Err(ApiError::malformed(format!("body session {} does not match the path's {session}", req.session)));
    }
    check_lost(&st, &session)?;
    let auth = req.auth.clone();
    match relay_owner(&st, Call::Revoke(req), Some(session)).await? {
        Reply::Revoked(r) => {
            if crate::owner_replies::enclaves_answer(&st, &r, &auth, "revoke").await {
                let list = r.sessions.clone();
                store_write(&st, "revocation", move |db| db.mark_revoked(&list).map(|_| ())).await;
            }
            Ok(Json(json!(r)))
        }
        other => Err(ApiError::wrong_reply("revoke", &other)),
    }
}

pub async fn revoke_all(
    State(st): State<AppState>,
    AddrPath(owner): AddrPath,
    ApiJson(req): ApiJson<RevokeAll>,
) -> Result<Json<Value>, ApiError> {
    if req.auth.owner != owner {
        return Err(ApiError::malformed(format!("auth.owner {} does not match the path's {owner}", req.auth.owner)));
    }
    let auth = req.auth.clone();
    match relay_owner(&st, Call::RevokeAll(req), None).await? {
        Reply::Revoked(r) => {
            if crate::owner_replies::enclaves_answer(&st, &r, &auth, "revoke_all").await {
                let list = r.sessions.clone();
                store_write(&st, "revocations", move |db| db.mark_revoked(&list).map(|_| ())).await;
            }
            Ok(Json(json!(r)))
        }
        other => Err(ApiError::wrong_reply("revoke_all", &other)),
    }
}

/// `POST /v1/owners/{owner}/allow-image`: a cluster upgrade, by the owner (ATTESTATION.md,
/// "Upgrades"): nodes of the named image may hold the key of `session` (zero: every
/// session of the owner).
pub async fn allow_image(
    State(st): State<AppState>,
    AddrPath(owner): AddrPath,
    ApiJson(req): ApiJson<AllowImage>,
) -> Result<Json<Value>, ApiError> {
    if req.auth.owner != owner {
        return Err(ApiError::malformed(format!("auth.owner {} does not match the path's {owner}", req.auth.owner)));
    }
    match relay_owner(&st, Call::AllowImage(req), None).await? {
        Reply::ImageAllowed(r) => Ok(Json(json!(r))),
        other => Err(ApiError::wrong_reply("allow_image", &other)),
    }
}

pub async fn approve_pending(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    ApiJson(req): ApiJson<ApprovePending>,
) -> Result<Json<Value>, ApiError> {
    if req.session != session {
        return Err(ApiError::malformed(format!("body session {} does not match the path's {session}", req.session)));
    }
    check_lost(&st, &session)?;
    let reply = relay_owner(&st, Call::ApprovePending(req), Some(session)).await?;
    Ok(Json(reply_value(reply)))
}

/// `POST /v1/sessions/{s}/deny`: the owner refuses one held request; the reply is the
/// enclave's receipted `PendingDenied`.
pub async fn deny_pending(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    ApiJson(req): ApiJson<DenyPending>,
) -> Result<Json<Value>, ApiError> {
    if req.session != session {
        return Err(ApiError::malformed(format!("body session {} does not match the path's {session}", req.session)));
    }
    check_lost(&st, &session)?;
    match relay_owner(&st, Call::DenyPending(req), Some(session)).await? {
        Reply::PendingDenied(r) => Ok(Json(json!(r))),
        other => Err(ApiError::wrong_reply("deny_pending", &other)),
    }
}

/// The inner object of a reply, as JSON.
pub fn reply_value(r: Reply) -> Value {
    match r {
        Reply::Signed(x) => json!(x),
        Reply::SessionCreated(x) => json!(x),
        Reply::PolicyUpdated(x) => json!(x),
        Reply::Revoked(x) => json!(x),
        Reply::PendingDenied(x) => json!(x),
        Reply::Attestation(x) => json!(x),
        Reply::Audit(x) => json!(x),
        Reply::Status(x) => json!(x),
        Reply::Swept(x) => json!(x),
        Reply::ImageAllowed(x) => json!(x),
        Reply::NotLeader(x) => json!({ "not_leader": x }),
        Reply::Cluster(x) => json!({ "cluster": x }),
    }
}

/// `GET /v1/sessions/{s}/allowances`: the session's allowance registry (R-APP-4) and its
/// exposure at the policy's price table (R-APP-5), as the enclave reports them.
pub async fn allowances(State(st): State<AppState>, AddrPath(session): AddrPath) -> Result<Json<Value>, ApiError> {
    check_lost(&st, &session)?;
    match st.client.call(Call::Status(StatusQuery { session: Some(session), nonce: None, held: None })).await {
        Ok(Reply::Status(s)) => match s.session {
            Some(ss) => Ok(Json(json!({
                "session": ss.session,
                "state": ss.state,
                "now": s.now,
                "allowances": ss.allowances,
                "exposure": ss.exposure,
                "pending": ss.pending,
                "suspended_reason": ss.suspended_reason,
            }))),
            None => Err(ApiError::denial(Denial::new(
                ErrorCode::UnknownSession,
                format!("no session {session} in the enclave"),
            ))),
        },
        Ok(other) => Err(ApiError::wrong_reply("status", &other)),
        Err(e) => Err(session_error(&st, &session, e).await),
    }
}

/// `POST /v1/sessions/{s}/sweep`: the revocation sweep (R-APP-6). The body carries the
/// per-chain nonce and fees (and, optionally, the owner's signature); the reply holds the
/// signed raw transactions, which the host also keeps (`GET .../sweeps`).
pub async fn sweep(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    ApiJson(req): ApiJson<Sweep>,
) -> Result<Json<Value>, ApiError> {
    if req.session != session {
        return Err(ApiError::malformed(format!("body session {} does not match the path's {session}", req.session)));
    }
    check_lost(&st, &session)?;
    let (terms, auth) = (req.terms.clone(), req.auth.clone());
    match relay_owner(&st, Call::Sweep(req), Some(session)).await? {
        Reply::Swept(r) => {
            // Kept only as the enclave's answer to this sweep: the sweeper sends what it
            // finds here again (a review of 2026-12-06: in a cluster a reply may come
            // through other hosts). Relayed either way; the owner's CLI checks it too.
            match crate::sweeper::reply::check(&st, session, &terms, auth.as_ref(), &r).await {
                Ok(()) if !r.transactions.is_empty() => {
                    let at = crate::store::now_secs();
                    let txs: Vec<crate::store::StoredSweepTx> =
                        r.transactions.iter().map(|t| crate::store::StoredSweepTx::of(session, t, at)).collect();
                    store_write(&st, "sweep", move |db| db.insert_sweep(&txs)).await;
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(%session, error = %e, "a sweep's reply failed the host's checks: relayed, not kept")
                }
            }
            Ok(Json(json!(r)))
        }
        other => Err(ApiError::wrong_reply("sweep", &other)),
    }
}

pub async fn get_session(State(st): State<AppState>, AddrPath(session): AddrPath) -> Result<Response, ApiError> {
    let stored: Option<StoredSession> = st
        .store
        .run(move |db| db.get_session(&session))
        .await
        .map_err(|e| ApiError::internal(format!("storage: {e}")))?;
    let lost = matches!(&stored, Some(s) if s.state == StoredState::Lost);
    let mut enclave_error = None;
    let live = if lost {
        // The new enclave cannot know it; never re-send anything about it.
        None
    } else {
        match st.client.call(Call::Status(StatusQuery { session: Some(session), nonce: None, held: None })).await {
            Ok(Reply::Status(s)) => s.session,
            Ok(other) => return Err(ApiError::wrong_reply("status", &other)),
            Err(ClientError::Denied(d)) if d.code == ErrorCode::UnknownSession => None,
            Err(e) => {
                if stored.is_none() {
                    return Err(e.into());
                }
                enclave_error = Some(ApiError::from(e).denial);
                None
            }
        }
    };
    if stored.is_none() && live.is_none() {
        return Err(ApiError::denial(Denial::new(
            ErrorCode::UnknownSession,
            format!("session {session} is unknown to this host and to the enclave"),
        )));
    }
    // A restart may have been noticed during the status call.
    let stored = match stored {
        Some(mut s) => {
            if let Some((StoredState::Lost, _)) = st.store.session_state(&session) {
                s.state = StoredState::Lost;
            }
            Some(s)
        }
        None => None,
    };
    let mut body = json!({ "session": live, "stored": stored });
    if let Some(d) = enclave_error {
        body["enclave_error"] = json!(d);
    }
    Ok(Json(body).into_response())
}

/// The reply is `Signed` serialized as it is (not through a `serde_json::Value` map).
pub async fn sign(State(st): State<AppState>, ApiJson(req): ApiJson<SignRequest>) -> Result<Json<Signed>, ApiError> {
    relay_sign(&st, req).await.map(Json)
}

#[derive(Deserialize)]
pub struct AttestParams {
    nonce: Option<String>,
}

pub async fn attestation(
    State(st): State<AppState>,
    q: Result<Query<AttestParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::malformed(e.body_text()))?;
    // Over 512 bytes (the NSM's limit): 400, without bothering the enclave.
    let nonce = match q.nonce {
        None => None,
        Some(n) => Some(Bytes::from(crate::attestation::parse_nonce(&n).map_err(ApiError::malformed)?)),
    };
    match st.client.call(Call::Attest(Attest { nonce })).await? {
        // The raw document plus a summary decoded without verification (see `attestation`).
        Reply::Attestation(a) => Ok(Json(crate::attestation::attestation_json(&a.document))),
        other => Err(ApiError::wrong_reply("attest", &other)),
    }
}

/// `GET /v1/audit?since=N[&limit=M][&enclave=0x…]`: the stored, verified log (see
/// [`crate::audit_store`]).
pub async fn audit(
    State(st): State<AppState>,
    q: Result<Query<crate::audit_store::AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::malformed(e.body_text()))?;
    crate::audit_store::serve(&st, q).await
}

#[derive(Deserialize)]
pub struct HeadParams {
    nonce: Option<String>,
}

/// `GET /v1/audit/head?nonce=0x…`: the enclave's signed head at the end of its log *now*,
/// answering the verifier's nonce — what `bridle verify audit` checks an export against, so
/// that "complete" means complete at the time of asking.
pub async fn audit_head(
    State(st): State<AppState>,
    q: Result<Query<HeadParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::malformed(e.body_text()))?;
    let nonce = q.nonce.as_deref().map(parse_b256).transpose()?;
    match st.client.call(Call::Audit(bridle_common::protocol::AuditQuery { since: u64::MAX, nonce })).await? {
        Reply::Audit(a) => Ok(Json(json!(a.head))),
        other => Err(ApiError::wrong_reply("audit", &other)),
    }
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        st.metrics.render() + &st.sweep_metrics.render(),
    )
        .into_response()
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Denial::malformed(format!("no route {method} {}", uri.path())))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Denial::malformed(format!("method {method} not allowed on {}", uri.path())),
    )
}

/// Middleware: count HTTP requests by matched route and status.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let resp = next.run(req).await;
    st.metrics.record_http(&route, resp.status().as_u16());
    resp
}

#[cfg(test)]
mod tests {
    /// Refusal rows are kept within their bound per second (two seconds at most are
    /// crossed by this loop).
    #[test]
    fn refusal_rows_are_bounded_per_second() {
        let kept = (0..1_000).filter(|_| super::denial_row_allowed()).count() as u32;
        assert!((super::DENIAL_ROWS_PER_SECOND..=2 * super::DENIAL_ROWS_PER_SECOND).contains(&kept), "{kept}");
    }
}
