//! `GET /v1/audit/export`: the whole stored chain as one file, sent as it is read.
//!
//! The file is read from the store a page at a time and each page sent before the next is
//! read, so an export holds at most a few pages in memory however long the chain is (a
//! review of 2026-12-05: an export built the whole chain in one string, and the chain grows
//! with any session's traffic — two exports of a few-GB chain ran the host out of memory).
//! An export must keep pace: its client may fall [`SEND_WAIT`] behind, plus [`PAGE_WAIT`] a
//! page sent, then the export ends and gives its turn back (a review of the first version:
//! a client taking a page every 29 s held a turn for hours). A body that ends before the
//! file's closing ends with an error, never as a complete response.

use super::{no_log, refresh, storage_error, which_enclave, AuditStore, ExportParams, EXPORT_FORMAT};
use crate::api::ApiError;
use crate::AppState;
use alloy_primitives::Address;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Entries an export reads per page.
pub(super) const EXPORT_PAGE: usize = 4096;

/// Exports sent at once (the route is open to anyone who can reach the host); further ones
/// wait their turn.
static EXPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// How far an export's client may fall behind: this, plus [`PAGE_WAIT`] for every page it
/// has taken.
const SEND_WAIT: Duration = Duration::from_secs(30);
/// The pace an export's client must keep on average: a page (≈ 2 MB) every 10 s.
const PAGE_WAIT: Duration = Duration::from_secs(10);

/// What the sending task hands the body: a part of the file, or the word that the file is
/// whole.
pub(super) enum Piece {
    Part(String),
    End,
}

/// Pages read ahead of the client.
const PAGES_AHEAD: usize = 2;

/// Where an export stands: the entries up to the head it started with, `page` at a time.
pub(super) struct ExportCursor {
    enclave: Address,
    last: u64,
    from: u64,
    page: usize,
    first: bool,
    done: bool,
}

impl AuditStore {
    /// The opening of `enclave`'s export (everything before its entries) and where its
    /// entries start; `None` when nothing is stored for it.
    pub(super) fn export_start(
        &self,
        enclave: &Address,
        page: usize,
    ) -> anyhow::Result<Option<(String, ExportCursor)>> {
        let (Some(head), pk) = self.backend.head(enclave)? else { return Ok(None) };
        let pruned = self.backend.pruned_through(enclave)?;
        let mut out = String::new();
        out.push_str("{\n\"format\": ");
        out.push_str(&serde_json::to_string(EXPORT_FORMAT)?);
        out.push_str(",\n\"enclave\": ");
        out.push_str(&serde_json::to_string(enclave)?);
        out.push_str(",\n\"identity_public_key\": ");
        out.push_str(&serde_json::to_string(&pk)?);
        // The host's word: entries up to here were deleted by its audit retention.
        out.push_str(",\n\"pruned_through\": ");
        out.push_str(&serde_json::to_string(&pruned)?);
        out.push_str(",\n\"head\": ");
        out.push_str(&serde_json::to_string(&head)?);
        out.push_str(",\n\"entries\": [");
        let from = pruned.map_or(0, |p| p + 1);
        let cursor = ExportCursor { enclave: *enclave, last: head.seq, from, page, first: true, done: false };
        Ok(Some((out, cursor)))
    }

    /// The export's next part: a page of entries (each checked to parse, as untrusted
    /// storage), then its closing; `None` once that was given. The store's audit connection
    /// is held for one page at a time, so the pull that copies new entries goes on meanwhile.
    pub(super) fn export_next(&self, c: &mut ExportCursor) -> anyhow::Result<Option<String>> {
        if c.done {
            return Ok(None);
        }
        let texts = self.backend.entry_texts(&c.enclave, c.from, c.last, c.page)?;
        let mut out = String::new();
        for (seq, text) in &texts {
            crate::store::check_entry_text(*seq, text)?;
            out.push_str(if c.first { "\n" } else { ",\n" });
            c.first = false;
            out.push_str(text);
        }
        match texts.last() {
            Some((seq, _)) if texts.len() == c.page && *seq < c.last => c.from = seq + 1,
            _ => {
                out.push_str("\n]\n}\n");
                c.done = true;
            }
        }
        Ok(Some(out))
    }

    /// The whole export of `enclave` in one string (tests; the route sends it page by page).
    #[cfg(test)]
    pub(super) fn export_paged(&self, enclave: &Address, page: usize) -> anyhow::Result<Option<String>> {
        let Some((mut out, mut cursor)) = self.export_start(enclave, page)? else { return Ok(None) };
        while let Some(part) = self.export_next(&mut cursor)? {
            out.push_str(&part);
        }
        Ok(Some(out))
    }

    /// [`AuditStore::export_paged`] with the route's page.
    #[cfg(test)]
    pub fn export_json(&self, enclave: &Address) -> anyhow::Result<Option<String>> {
        self.export_paged(enclave, EXPORT_PAGE)
    }
}

/// `GET /v1/audit/export[?enclave=0x…]`: the whole stored chain as a file.
pub async fn export(
    State(st): State<AppState>,
    q: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::malformed(e.body_text()))?;
    let audit = st.audit.clone();
    refresh(&st, &audit).await;
    let Some(enclave) = which_enclave(&st, &audit, q.enclave.as_deref()).await? else {
        return Err(no_log(None, &audit.status()));
    };
    // The turn goes with the export until its last page is taken or its client gives up.
    let turn = EXPORTS.acquire().await.map_err(storage_error)?;
    let a = audit.clone();
    let (opening, cursor) = tokio::task::spawn_blocking(move || a.export_start(&enclave, EXPORT_PAGE))
        .await
        .map_err(storage_error)?
        .map_err(storage_error)?
        .ok_or_else(|| no_log(Some(enclave), &audit.status()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Piece, std::io::Error>>(PAGES_AHEAD);
    tokio::spawn(send_pages(audit, cursor, opening, tx, turn));
    let body = axum::body::Body::from_stream(pieces(rx));
    let name = format!("attachment; filename=\"bridle-audit-{enclave:#x}.json\"");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, name)],
        body,
    )
        .into_response())
}

/// The body's parts as the sending task hands them: ends when it says the file is whole,
/// with an error if it stops before (the client never takes a cut file for a whole one).
pub(super) fn pieces(
    rx: tokio::sync::mpsc::Receiver<Result<Piece, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Ok(Piece::Part(text))) => Some((Ok(text), Some(rx))),
            Some(Ok(Piece::End)) => None,
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((Err(std::io::Error::other("the export was cut short")), None)),
        }
    })
}

/// Read the export's pages one at a time and hand each to the client, within the pace
/// ([`SEND_WAIT`], [`PAGE_WAIT`]). A failure to read ends the body with an error (the client
/// sees a cut file, never one that parses as whole); so does falling behind.
pub(super) async fn send_pages(
    audit: Arc<AuditStore>,
    mut cursor: ExportCursor,
    opening: String,
    tx: tokio::sync::mpsc::Sender<Result<Piece, std::io::Error>>,
    _turn: tokio::sync::SemaphorePermit<'static>,
) {
    let started = tokio::time::Instant::now();
    let mut sent: u32 = 0;
    let mut part = Some(opening);
    while let Some(text) = part.take() {
        let deadline = started + SEND_WAIT + PAGE_WAIT * sent;
        match tokio::time::timeout_at(deadline, tx.send(Ok(Piece::Part(text)))).await {
            Ok(Ok(())) => sent = sent.saturating_add(1),
            // The client went away, or fell behind the pace.
            Ok(Err(_)) | Err(_) => return,
        }
        let a = audit.clone();
        let read = tokio::task::spawn_blocking(move || {
            let next = a.export_next(&mut cursor);
            (next, cursor)
        })
        .await;
        let failure = match read {
            Ok((Ok(next), back)) => {
                cursor = back;
                part = next;
                continue;
            }
            Ok((Err(e), _)) => format!("{e:#}"),
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %failure, "audit export cut short");
        let _ = tokio::time::timeout(SEND_WAIT, tx.send(Err(std::io::Error::other(failure)))).await;
        return;
    }
    let _ = tokio::time::timeout(SEND_WAIT, tx.send(Ok(Piece::End))).await;
}
