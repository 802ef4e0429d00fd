//! The host's lists, a page at a time: an owner's sessions, a session's policy records and
//! its sweeps' revocations.
//!
//! Each list grows with what anyone who can reach the host asks for (an owner's updates,
//! sweeps), so no reply holds a whole one: a page holds at most `limit` rows (default
//! [`PAGE_DEFAULT`], at most [`PAGE_MAX`]) and [`PAGE_BYTES`] of JSON, oldest first, a few
//! served at once ([`LISTS_AT_ONCE`]), and a full page carries
//! `Link: <?after=…&limit=…>; rel="next"` (RFC 8288; a reference relative to the request's
//! own URL, so it survives a proxy's path prefix). The cursor is opaque to clients. A
//! session's policies are also found by hash (`?hash=0x…`: the latest record with it), which
//! is what the owner's tools need: the document whose hash the enclave signed.

use crate::api::{AddrPath, ApiError};
use crate::AppState;
use alloy_primitives::{Address, B256};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::error::{Denial, ErrorCode};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Rows in a page when `limit` is not given.
pub const PAGE_DEFAULT: usize = 100;
/// The largest `limit`: a policy document may hold 32 KiB, so a page read holds at most a few
/// MiB.
pub const PAGE_MAX: usize = 100;
/// A page ends before the row that would take its JSON past this many bytes (it holds one
/// row at least), and links to the next as a full page does.
pub const PAGE_BYTES: usize = 1 << 20;
/// List reads run at once; the others wait their turn up to [`LIST_WAIT`], then are
/// answered `unavailable` (a page's rows are read and encoded in memory: a review of
/// 2026-12-05 found a stranger's many concurrent pages of large policies). The turn is held
/// by the read itself, which goes on when its client hangs up.
pub const LISTS_AT_ONCE: usize = 4;
/// See [`LISTS_AT_ONCE`].
pub const LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn turn(st: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(LIST_WAIT, st.lists.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(ApiError::denial(Denial::new(
            ErrorCode::Unavailable,
            format!("{LISTS_AT_ONCE} list requests are being served: ask again"),
        ))),
    }
}

/// `?after=…&limit=…` (anything else is refused, so a misspelt parameter is not read as
/// the first page).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /v1/sessions/{s}/policies`: a page, or `?hash=0x…` alone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    pub after: Option<String>,
    pub limit: Option<usize>,
    pub hash: Option<String>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| ApiError::malformed(e.body_text()))
}

fn limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked {
        None => Ok(PAGE_DEFAULT),
        Some(n @ 1..=PAGE_MAX) => Ok(n),
        Some(n) => Err(ApiError::malformed(format!("limit must be 1 to {PAGE_MAX}, not {n}"))),
    }
}

/// A row-id cursor (`after=17`).
fn after_id(after: Option<&str>) -> Result<u64, ApiError> {
    match after {
        None => Ok(0),
        Some(s) => {
            s.parse().map_err(|_| ApiError::malformed(format!("after `{}` is not a cursor of this list", clip(s))))
        }
    }
}

/// An owner's session cursor: `CREATED_AT-0xSESSION`, the last row of the page before.
fn after_session(after: Option<&str>) -> Result<Option<(u64, Address)>, ApiError> {
    let Some(s) = after else { return Ok(None) };
    let bad = || ApiError::malformed(format!("after `{}` is not a cursor of this list", clip(s)));
    let (time, session) = s.split_once('-').ok_or_else(bad)?;
    Ok(Some((time.parse().map_err(|_| bad())?, Address::from_str(session).map_err(|_| bad())?)))
}

fn clip(s: &str) -> String {
    bridle_common::audit::truncate(s, 80)
}

/// The page as a JSON array of `rows` (each with the cursor that follows it), with a `Link`
/// to the next page when it is full — `limit` rows, or cut at [`PAGE_BYTES`].
fn page<T: Serialize>(rows: Vec<(String, T)>, limit: usize) -> Result<Response, ApiError> {
    let full = rows.len() == limit;
    let (mut body, mut last, mut cut): (Vec<u8>, Option<String>, bool) = (Vec::with_capacity(1024), None, false);
    body.push(b'[');
    for (cursor, row) in rows {
        let json = serde_json::to_vec(&row).map_err(|e| ApiError::internal(format!("encoding a row: {e}")))?;
        if last.is_some() {
            if body.len() + json.len() + 2 > PAGE_BYTES {
                cut = true;
                break;
            }
            body.push(b',');
        }
        body.extend_from_slice(&json);
        last = Some(cursor);
    }
    body.push(b']');
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let (Some(after), true) = (last, full || cut) {
        let link = format!("<?after={after}&limit={limit}>; rel=\"next\"");
        if let Ok(v) = header::HeaderValue::from_str(&link) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(r)
}

fn storage(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("storage: {e}"))
}

/// Read a page with `read`, off the async workers, holding a list turn for the read itself.
async fn read_page<R: Send + 'static>(
    st: &AppState,
    read: impl FnOnce(&crate::store::Store) -> anyhow::Result<R> + Send + 'static,
) -> Result<R, ApiError> {
    let turn = turn(st).await?;
    st.store
        .run(move |db| {
            let _turn = turn;
            read(db)
        })
        .await
        .map_err(storage)
}

/// `GET /v1/owners/{owner}/sessions[?after=…][&limit=N]`: the owner's stored sessions, by
/// creation time.
pub async fn owner_sessions(
    State(st): State<AppState>,
    AddrPath(owner): AddrPath,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (after, limit) = (after_session(q.after.as_deref())?, limit(q.limit)?);
    let rows = read_page(&st, move |db| db.sessions_by_owner(&owner, after, limit)).await?;
    page(rows.into_iter().map(|s| (format!("{}-{}", s.created_at, s.session), s)).collect(), limit)
}

/// `GET /v1/sessions/{s}/policies[?after=…][&limit=N]` or `?hash=0x…`: every signed policy
/// relayed, oldest first, or the latest one with that hash (an array of at most one).
pub async fn session_policies(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    q: Result<Query<PolicyParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if let Some(hash) = q.hash {
        if q.after.is_some() || q.limit.is_some() {
            return Err(ApiError::malformed("hash is asked alone, without after or limit"));
        }
        let hash = B256::from_str(hash.trim())
            .map_err(|_| ApiError::malformed(format!("hash `{}` is not 32 bytes of hex", clip(&hash))))?;
        // One row read by an index: no turn taken (the owner's tools ask this).
        let row = st.store.run(move |db| db.policy_with_hash(&session, &hash)).await.map_err(storage)?;
        return Ok(Json(row.into_iter().collect::<Vec<_>>()).into_response());
    }
    let (after, limit) = (after_id(q.after.as_deref())?, limit(q.limit)?);
    let rows = read_page(&st, move |db| db.policies(&session, after, limit)).await?;
    page(rows.into_iter().map(|(id, r)| (id.to_string(), r)).collect(), limit)
}

/// `GET /v1/sessions/{s}/sweeps[?after=…][&limit=N]`: the revocations the host relayed for
/// the session, oldest first.
pub async fn sweeps(
    State(st): State<AppState>,
    AddrPath(session): AddrPath,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (after, limit) = (after_id(q.after.as_deref())?, limit(q.limit)?);
    let rows = read_page(&st, move |db| db.sweeps(&session, after, limit)).await?;
    page(rows.into_iter().map(|(id, r)| (id.to_string(), r)).collect(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of large rows ends before 1 MiB of JSON and links on from its last row; a
    /// row larger than that alone is a page of its own.
    #[tokio::test]
    async fn a_page_is_cut_at_its_bytes() {
        let big = "x".repeat(40_000);
        let rows: Vec<(String, String)> = (0..PAGE_MAX).map(|i| (i.to_string(), big.clone())).collect();
        let r = page(rows, PAGE_MAX).unwrap();
        let link = r.headers()[header::LINK].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        assert!(body.len() <= PAGE_BYTES, "{}", body.len());
        let got: Vec<String> = serde_json::from_slice(&body).unwrap();
        assert_eq!(got.len(), PAGE_BYTES / 40_003);
        assert_eq!(link, format!("<?after={}&limit={PAGE_MAX}>; rel=\"next\"", got.len() - 1));
        // One row over the bound, then nothing: a page of one, and nothing after it.
        let r = page(vec![("7".into(), "y".repeat(PAGE_BYTES + 1))], PAGE_MAX).unwrap();
        assert!(r.headers().get(header::LINK).is_none());
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        assert_eq!(serde_json::from_slice::<Vec<String>>(&body).unwrap().len(), 1);
        // A short page: no link.
        let r = page(vec![("1".into(), "a".to_string())], 2).unwrap();
        assert!(r.headers().get(header::LINK).is_none());
    }

    #[test]
    fn cursors_and_limits_are_checked() {
        assert_eq!(limit(None).unwrap(), PAGE_DEFAULT);
        assert_eq!(limit(Some(PAGE_MAX)).unwrap(), PAGE_MAX);
        for bad in [0, PAGE_MAX + 1, usize::MAX] {
            assert!(limit(Some(bad)).unwrap_err().denial.reason.contains("limit must be"), "{bad}");
        }
        assert_eq!(after_id(Some("17")).unwrap(), 17);
        assert!(after_id(Some("-1")).is_err());
        let a = Address::repeat_byte(0xab);
        assert_eq!(after_session(Some(&format!("12-{a}"))).unwrap(), Some((12, a)));
        for bad in ["12", "x-0xab", &format!("-{a}"), &format!("12-{a}00"), &"9".repeat(10_000)] {
            let e = after_session(Some(bad)).unwrap_err();
            assert!(e.denial.reason.len() < 200, "the cursor quoted whole: {}", e.denial.reason.len());
        }
    }
}
