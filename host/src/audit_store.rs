//! The host's copy of the enclave's signed audit log (R-AUD-1).
//!
//! A background task pulls `audit(since)` from the enclave every second (and whenever
//! [`AuditStore::kick`] is called, at most every [`MIN_PULL_GAP`]), checks every batch
//! against the enclave identity with [`verify_chain`] — as a continuation of what is
//! already stored — and only then stores the entries and the signed head, in one
//! transaction. A batch that does not verify is refused and logged at error level: the
//! database only ever holds a chain that verified when it was stored (the host is
//! untrusted all the same; verifiers check the export themselves).
//!
//! The enclave keeps a bounded window of entries (see `bridle_enclave::audit`); the host
//! must pull continuously so that nothing falls out of the window before it is stored. If
//! it did (the host was away too long), the enclave's reply starts after a gap: the host
//! logs it loudly, records it in `audit_gaps`, and stores what follows — every verifier of
//! the export then reports those entries missing.
//!
//! Each enclave identity has its own chain (a restarted enclave starts a new one); entries
//! are stored under the identity address.
//!
//! HTTP: `GET /v1/audit?since=N[&limit=M][&enclave=0x…]` serves stored entries with the
//! latest head; `GET /v1/audit/export[?enclave=0x…]` the whole chain as one JSON file
//! ([`AuditExport`]: `{format, enclave, identity_public_key, entries, head}`), which
//! `bridle verify audit` checks. Both pull first, so they include everything up to now.

use crate::api::{parse_address, ApiError};
use crate::enclave_client::{reply_name, ClientError, EnclaveClient};
use crate::AppState;
use alloy_primitives::{Address, Bytes, B256};
use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::audit::{verify_chain, AuditEntry, AuditError, AuditHead, AuditReply, EXPORT_FORMAT};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{AuditQuery, Call, Reply, StatusQuery};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the background task pulls.
pub const DEFAULT_PULL_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest pause between two pulls (kicks within it are merged).
pub const MIN_PULL_GAP: Duration = Duration::from_millis(100);
/// The most batches one pull fetches (each at most `MAX_REPLY_ENTRIES`).
const MAX_BATCHES_PER_PULL: usize = 1000;
/// `GET /v1/audit` page size: default and maximum.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_entries (
    enclave  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    session  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    code     TEXT,
    hash     TEXT NOT NULL,
    entry    TEXT NOT NULL,
    PRIMARY KEY (enclave, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_entries_session ON audit_entries(session);
CREATE TABLE IF NOT EXISTS audit_heads (
    enclave              TEXT PRIMARY KEY,
    identity_public_key  TEXT,
    seq                  INTEGER NOT NULL,
    hash                 TEXT NOT NULL,
    head                 TEXT NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_gaps (
    enclave     TEXT NOT NULL,
    from_seq    INTEGER NOT NULL,
    to_seq      INTEGER NOT NULL,
    noticed_at  INTEGER NOT NULL
);
";

/// How the last pull went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// `never` (no pull yet), `ok`, `unsupported` (the enclave serves no signed audit log),
    /// `unreachable`, or `refused` (a batch did not verify and was not stored).
    pub state: String,
    pub enclave: Option<Address>,
    /// The last entry stored for `enclave`.
    pub stored_through: Option<u64>,
    /// Unix seconds of the last pull attempt.
    pub last_pull: Option<u64>,
    pub error: Option<String>,
}

/// The stored chain of one enclave: its tip and what the host knows of its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub seq: u64,
    pub hash: B256,
    pub identity_public_key: Option<Bytes>,
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    pub enclave: Option<Address>,
    pub stored: usize,
    pub gaps: Vec<(u64, u64)>,
    /// The last entry stored for `enclave` after the pull.
    pub through: Option<u64>,
}

/// A page of the stored log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<AuditEntry>,
    /// The latest head stored for the enclave.
    pub head: Option<AuditHead>,
    pub identity_public_key: Option<Bytes>,
    /// More entries follow the last one.
    pub more: bool,
}

/// The audit log as stored. Its own SQLite connection (to the host's database file).
pub struct AuditStore {
    conn: Mutex<Connection>,
    kick: Notify,
    pulling: tokio::sync::Mutex<()>,
    status: Mutex<SyncStatus>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").field("status", &self.status()).finish_non_exhaustive()
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn now_secs() -> u64 {
    crate::store::now_secs()
}

fn conv_err<E: std::error::Error + Send + Sync + 'static>(e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

/// Why a batch from the enclave was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("the enclave does not serve the signed audit log: {0}")]
    Unsupported(String),
    #[error("audit batch from enclave {enclave} refused (not stored): {error}")]
    Refused { enclave: Address, error: AuditError },
    /// Not this time (e.g. the enclave restarted during the pull); the next pull retries.
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Other(String),
}

impl AuditStore {
    /// Open the audit tables in the database at `path` (`:memory:`: a private in-memory one).
    pub fn open(path: &Path) -> anyhow::Result<Arc<AuditStore>> {
        let conn = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch(SCHEMA).context("cannot create the audit tables")?;
        Ok(Arc::new(AuditStore {
            conn: Mutex::new(conn),
            kick: Notify::new(),
            pulling: tokio::sync::Mutex::new(()),
            status: Mutex::new(SyncStatus { state: "never".into(), ..SyncStatus::default() }),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask the background task to pull now (merged with other kicks; cheap).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()))
    }

    // ---- storage -----------------------------------------------------------------------

    /// The stored tip of `enclave`'s chain.
    pub fn tip(&self, enclave: &Address) -> anyhow::Result<Option<Tip>> {
        let conn = self.lock();
        Self::tip_in(&conn, enclave)
    }

    fn tip_in(conn: &Connection, enclave: &Address) -> anyhow::Result<Option<Tip>> {
        let row: Option<(i64, String, Option<String>)> = conn
            .query_row(
                "SELECT seq, hash, identity_public_key FROM audit_heads WHERE enclave = ?1",
                params![format!("{enclave:#x}")],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => None,
            Some((seq, hash, pk)) => Some(Tip {
                seq: seq.max(0) as u64,
                hash: B256::from_str(&hash).context("stored audit head hash")?,
                identity_public_key: pk.and_then(|p| Bytes::from_str(&p).ok()),
            }),
        })
    }

    /// Store a verified batch and its head (one transaction); record a gap before it.
    fn store_batch(
        &self,
        enclave: &Address,
        public_key: Option<&Bytes>,
        entries: &[AuditEntry],
        head: &AuditHead,
        gap: Option<(u64, u64)>,
    ) -> anyhow::Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let e_hex = format!("{enclave:#x}");
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO audit_entries (enclave, seq, time, session, kind, code, hash, entry)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in entries {
                ins.execute(params![
                    e_hex,
                    int(e.seq),
                    int(e.time),
                    format!("{:#x}", e.session),
                    e.kind.as_str(),
                    e.code.map(|c| c.as_str()),
                    format!("{:#x}", e.hash()),
                    serde_json::to_string(e)?,
                ])?;
            }
        }
        if let Some((from, to)) = gap {
            tx.execute(
                "INSERT INTO audit_gaps (enclave, from_seq, to_seq, noticed_at) VALUES (?1, ?2, ?3, ?4)",
                params![e_hex, int(from), int(to), int(now_secs())],
            )?;
        }
        tx.execute(
            "INSERT INTO audit_heads (enclave, identity_public_key, seq, hash, head, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(enclave) DO UPDATE SET
                identity_public_key = COALESCE(excluded.identity_public_key, identity_public_key),
                seq = excluded.seq, hash = excluded.hash, head = excluded.head, updated_at = excluded.updated_at",
            params![
                e_hex,
                public_key.map(|p| p.to_string()),
                int(head.seq),
                format!("{:#x}", head.hash),
                serde_json::to_string(head)?,
                int(now_secs()),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Check a batch from the enclave against what is stored and store it. Returns the gap
    /// it revealed, if any. Nothing is stored unless it verifies.
    pub fn accept(
        &self,
        enclave: Address,
        public_key: Option<&Bytes>,
        reply: &AuditReply,
    ) -> Result<(usize, Option<(u64, u64)>), PullError> {
        let tip = self.tip(&enclave).map_err(|e| PullError::Other(format!("storage: {e:#}")))?;
        let since = tip.as_ref().map_or(0, |t| t.seq + 1);
        let from = tip.as_ref().map(|t| (t.seq + 1, t.hash));
        if tip.as_ref().is_some_and(|t| reply.entries.is_empty() && reply.head.seq == t.seq) {
            // Nothing new; still check the head is the identity's and matches.
            verify_chain(&[], &reply.head, enclave, from).map_err(|error| PullError::Refused { enclave, error })?;
            return Ok((0, None));
        }
        let (from, gap) = match reply.entries.first() {
            // The enclave no longer holds `since ..first`: they were dropped from its window
            // before this host stored them. What follows is checked from its own first link.
            Some(first) if first.seq > since => (Some((first.seq, first.prev)), Some((since, first.seq - 1))),
            _ => (from, None),
        };
        verify_chain(&reply.entries, &reply.head, enclave, from)
            .map_err(|error| PullError::Refused { enclave, error })?;
        self.store_batch(&enclave, public_key, &reply.entries, &reply.head, gap)
            .map_err(|e| PullError::Other(format!("storage: {e:#}")))?;
        Ok((reply.entries.len(), gap))
    }

    /// The enclave to serve by default: the one with the most recently updated head.
    pub fn latest_enclave(&self) -> anyhow::Result<Option<Address>> {
        let conn = self.lock();
        let a: Option<String> = conn
            .query_row("SELECT enclave FROM audit_heads ORDER BY updated_at DESC, rowid DESC LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(a.and_then(|a| Address::from_str(&a).ok()))
    }

    /// Stored entries of `enclave` from `since` (at most `limit`), with the latest head.
    pub fn page(&self, enclave: &Address, since: u64, limit: usize) -> anyhow::Result<Page> {
        let conn = self.lock();
        let e_hex = format!("{enclave:#x}");
        let mut st = conn
            .prepare_cached("SELECT entry FROM audit_entries WHERE enclave = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")?;
        let rows = st.query_map(params![e_hex, int(since), int(limit as u64 + 1)], |r| {
            let text: String = r.get(0)?;
            serde_json::from_str::<AuditEntry>(&text).map_err(conv_err)
        })?;
        let mut entries = rows.collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let (head, identity_public_key) = Self::head_in(&conn, enclave)?;
        Ok(Page { entries, head, identity_public_key, more })
    }

    fn head_in(conn: &Connection, enclave: &Address) -> anyhow::Result<(Option<AuditHead>, Option<Bytes>)> {
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT head, identity_public_key FROM audit_heads WHERE enclave = ?1",
                params![format!("{enclave:#x}")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => (None, None),
            Some((h, pk)) => {
                (Some(serde_json::from_str(&h).context("stored head")?), pk.and_then(|p| Bytes::from_str(&p).ok()))
            }
        })
    }

    /// The whole stored chain of `enclave` as an export file (JSON text), built from the
    /// stored JSON without re-parsing each entry. `None` when nothing is stored for it.
    pub fn export_json(&self, enclave: &Address) -> anyhow::Result<Option<String>> {
        let conn = self.lock();
        let (Some(head), pk) = Self::head_in(&conn, enclave)? else { return Ok(None) };
        let mut out = String::new();
        out.push_str("{\n\"format\": ");
        out.push_str(&serde_json::to_string(EXPORT_FORMAT)?);
        out.push_str(",\n\"enclave\": ");
        out.push_str(&serde_json::to_string(enclave)?);
        out.push_str(",\n\"identity_public_key\": ");
        out.push_str(&serde_json::to_string(&pk)?);
        out.push_str(",\n\"head\": ");
        out.push_str(&serde_json::to_string(&head)?);
        out.push_str(",\n\"entries\": [");
        let mut st =
            conn.prepare_cached("SELECT entry FROM audit_entries WHERE enclave = ?1 AND seq <= ?2 ORDER BY seq")?;
        let mut rows = st.query(params![format!("{enclave:#x}"), int(head.seq)])?;
        let mut first = true;
        while let Some(r) = rows.next()? {
            out.push_str(if first { "\n" } else { ",\n" });
            first = false;
            out.push_str(&r.get::<_, String>(0)?);
        }
        out.push_str("\n]\n}\n");
        Ok(Some(out))
    }

    /// Gaps recorded for `enclave`: entries dropped by the enclave before the host had them.
    pub fn gaps(&self, enclave: &Address) -> anyhow::Result<Vec<(u64, u64)>> {
        let conn = self.lock();
        let mut st =
            conn.prepare_cached("SELECT from_seq, to_seq FROM audit_gaps WHERE enclave = ?1 ORDER BY from_seq")?;
        let rows = st.query_map(params![format!("{enclave:#x}")], |r| {
            Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    // ---- pulling -----------------------------------------------------------------------

    /// Pull everything new from the enclave, verify it, store it. Pulls never overlap.
    pub async fn pull(self: &Arc<Self>, client: &EnclaveClient) -> Result<Pulled, PullError> {
        let _one = self.pulling.lock().await;
        let r = self.pull_inner(client).await;
        match &r {
            Ok(p) => {
                let (enclave, through) = (p.enclave, p.through);
                self.set_status(|s| {
                    if s.state != "ok" {
                        tracing::info!(enclave = ?enclave, stored_through = ?through, "audit log in sync with the enclave");
                    }
                    *s = SyncStatus {
                        state: "ok".into(),
                        enclave,
                        stored_through: through,
                        last_pull: Some(now_secs()),
                        error: None,
                    };
                });
                if p.stored > 0 {
                    tracing::debug!(stored = p.stored, "audit entries stored");
                }
            }
            Err(e) => {
                let state = match e {
                    PullError::Unsupported(_) => "unsupported",
                    PullError::Client(ClientError::Denied(_)) | PullError::Client(ClientError::Protocol(_)) => {
                        "refused"
                    }
                    PullError::Client(_) | PullError::Retry(_) => "unreachable",
                    PullError::Refused { .. } | PullError::Other(_) => "refused",
                };
                let msg = e.to_string();
                self.set_status(|s| {
                    let changed = s.state != state || s.error.as_deref() != Some(msg.as_str());
                    if changed {
                        match e {
                            PullError::Refused { .. } | PullError::Other(_) => tracing::error!(
                                error = %msg,
                                "AUDIT LOG: a batch from the enclave did not verify and was NOT stored; \
                                 the host keeps the last verified chain and retries"
                            ),
                            PullError::Unsupported(_) => tracing::info!(error = %msg, "audit log not pulled"),
                            PullError::Client(_) | PullError::Retry(_) => {
                                tracing::warn!(error = %msg, "audit log not pulled")
                            }
                        }
                    }
                    // Keep what is known of the stored chain; say what went wrong.
                    s.state = state.into();
                    s.last_pull = Some(now_secs());
                    s.error = Some(msg.clone());
                });
            }
        }
        r
    }

    async fn pull_inner(self: &Arc<Self>, client: &EnclaveClient) -> Result<Pulled, PullError> {
        // The identity the client established (a `status` on every new connection); the
        // public key (for the export) once per enclave.
        let mut identity = client.identity();
        let mut public_key = None;
        let known_pk = match identity {
            Some(id) => self.run(move |s| s.tip(&id)).await?.and_then(|t| t.identity_public_key),
            None => None,
        };
        if known_pk.is_none() {
            match client.call(Call::Status(StatusQuery { session: None, nonce: None })).await? {
                Reply::Status(st) => {
                    identity = Some(st.identity_address);
                    public_key = Some(st.identity_public_key);
                }
                other => return Err(PullError::Other(format!("enclave answered status with {}", reply_name(&other)))),
            }
        }
        let Some(enclave) = identity else { return Err(PullError::Other("enclave identity unknown".into())) };

        let mut pulled = Pulled { enclave: Some(enclave), ..Pulled::default() };
        for _ in 0..MAX_BATCHES_PER_PULL {
            let tip = self.run(move |s| s.tip(&enclave)).await?.map(|t| t.seq);
            pulled.through = tip;
            let since = tip.map_or(0, |t| t + 1);
            let reply = match client.call(Call::Audit(AuditQuery { since, nonce: None })).await {
                Ok(r) => decode(r)?,
                Err(ClientError::Denied(d)) if d.code == ErrorCode::Unsupported => {
                    return Err(PullError::Unsupported(d.reason))
                }
                Err(e) => return Err(e.into()),
            };
            if reply.head.enclave != enclave && client.identity() != Some(enclave) {
                // The enclave restarted between the calls: start over on the next pull.
                return Err(PullError::Retry(format!(
                    "the enclave identity changed during the pull ({enclave} → {}); retrying",
                    reply.head.enclave
                )));
            }
            let more = reply.more;
            let reply_last = reply.head.seq;
            let pk = public_key.clone();
            let store = Arc::clone(self);
            let (n, gap) = tokio::task::spawn_blocking(move || store.accept(enclave, pk.as_ref(), &reply))
                .await
                .map_err(|e| PullError::Other(format!("storage task: {e}")))??;
            if let Some((a, b)) = gap {
                tracing::error!(
                    enclave = %enclave,
                    missing_from = a,
                    missing_to = b,
                    "AUDIT LOG GAP: the enclave dropped entries {a}..={b} from its window before this host \
                     stored them; every verifier will report them missing"
                );
                pulled.gaps.push((a, b));
            }
            pulled.stored += n;
            pulled.through = Some(reply_last);
            if !more {
                break;
            }
        }
        Ok(pulled)
    }

    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AuditStore) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, PullError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| PullError::Other(format!("storage task: {e}")))?
            .map_err(|e| PullError::Other(format!("storage: {e:#}")))
    }
}

/// The signed batch in an `audit` reply. Written against the reply shape proposed in
/// `bridle_common::audit::AuditReply` (entries, head, more); a protocol whose `AuditReply`
/// has another shape (the unsigned `entries: Vec<Bytes>` of protocol v1) is treated as an
/// enclave without the signed log.
fn decode(reply: Reply) -> Result<AuditReply, PullError> {
    match reply {
        Reply::Audit(a) => {
            let v = serde_json::to_value(&a).map_err(|e| PullError::Other(format!("audit reply: {e}")))?;
            serde_json::from_value::<AuditReply>(v)
                .map_err(|e| PullError::Unsupported(format!("the enclave's audit reply has no signed head ({e})")))
        }
        other => Err(PullError::Other(format!("enclave answered audit with {}", reply_name(&other)))),
    }
}

/// Start the background puller of `st.audit`.
pub fn spawn(st: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    let audit = st.audit.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = audit.kick.notified() => {}
            }
            let _ = audit.pull(&st.client).await;
            tokio::time::sleep(MIN_PULL_GAP).await;
        }
    })
}

// ---- HTTP --------------------------------------------------------------------------------

/// Query of `GET /v1/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    pub since: Option<u64>,
    pub limit: Option<usize>,
    pub enclave: Option<String>,
}

/// Query of `GET /v1/audit/export`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    pub enclave: Option<String>,
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("storage: {e}"))
}

/// Pull before serving, within the call timeout; an unreachable enclave still lets the
/// stored log be served (the sync status says so).
async fn refresh(st: &AppState, audit: &Arc<AuditStore>) {
    let _ = tokio::time::timeout(st.config.call_timeout, audit.pull(&st.client)).await;
}

async fn which_enclave(
    st: &AppState,
    audit: &Arc<AuditStore>,
    asked: Option<&str>,
) -> Result<Option<Address>, ApiError> {
    if let Some(a) = asked {
        return parse_address(a).map(Some);
    }
    if let Some(id) = st.client.identity() {
        let a = audit.clone();
        let has = tokio::task::spawn_blocking(move || a.tip(&id))
            .await
            .map_err(storage_error)?
            .map_err(storage_error)?
            .is_some();
        if has {
            return Ok(Some(id));
        }
    }
    let a = audit.clone();
    tokio::task::spawn_blocking(move || a.latest_enclave()).await.map_err(storage_error)?.map_err(storage_error)
}

/// `GET /v1/audit?since=N[&limit=M][&enclave=0x…]`.
pub async fn serve(st: &AppState, q: AuditParams) -> Result<Json<Value>, ApiError> {
    let audit = &st.audit;
    refresh(st, audit).await;
    let sync = audit.status();
    let Some(enclave) = which_enclave(st, audit, q.enclave.as_deref()).await? else {
        return Ok(Json(json!({
            "enclave": null, "identity_public_key": null, "entries": [], "head": null, "more": false, "sync": sync,
        })));
    };
    let since = q.since.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let a = audit.clone();
    let (page, gaps) = tokio::task::spawn_blocking(move || {
        let page = a.page(&enclave, since, limit)?;
        Ok::<_, anyhow::Error>((page, a.gaps(&enclave)?))
    })
    .await
    .map_err(storage_error)?
    .map_err(storage_error)?;
    Ok(Json(json!({
        "enclave": enclave,
        "identity_public_key": page.identity_public_key,
        "entries": page.entries,
        "head": page.head,
        "more": page.more,
        "gaps": gaps.iter().map(|(a, b)| json!({"from": a, "to": b})).collect::<Vec<_>>(),
        "sync": sync,
    })))
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
    let a = audit.clone();
    let text = tokio::task::spawn_blocking(move || a.export_json(&enclave))
        .await
        .map_err(storage_error)?
        .map_err(storage_error)?
        .ok_or_else(|| no_log(Some(enclave), &audit.status()))?;
    let name = format!("attachment; filename=\"bridle-audit-{enclave:#x}.json\"");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, name)],
        text,
    )
        .into_response())
}

fn no_log(enclave: Option<Address>, sync: &SyncStatus) -> ApiError {
    let what = enclave.map_or_else(|| "any enclave".to_string(), |e| format!("enclave {e}"));
    let why = sync.error.as_deref().map(|e| format!(" (last pull: {e})")).unwrap_or_default();
    ApiError::new(StatusCode::NOT_FOUND, Denial::malformed(format!("no audit log stored for {what}{why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_common::audit::testing::TestChain;
    use bridle_common::audit::{AuditExport, Decision, Record};

    fn started(c: &mut TestChain) {
        c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
    }

    fn reply(c: &TestChain, from: usize, to: usize, more: bool) -> AuditReply {
        AuditReply { entries: c.entries[from..to].to_vec(), head: c.head_at(to as u64 - 1, 9), more }
    }

    #[test]
    fn batches_are_verified_stored_and_exported() {
        let s = AuditStore::open(Path::new(":memory:")).unwrap();
        let mut c = TestChain::new(5);
        started(&mut c);
        c.fill(20);
        let pk = Bytes::from(c.public_key());
        assert_eq!(s.accept(c.enclave(), Some(&pk), &reply(&c, 0, 8, true)).unwrap(), (8, None));
        assert_eq!(s.accept(c.enclave(), None, &reply(&c, 8, 21, false)).unwrap(), (13, None));
        // Nothing new.
        let same = AuditReply { entries: vec![], head: c.head_at(20, 10), more: false };
        assert_eq!(s.accept(c.enclave(), None, &same).unwrap(), (0, None));
        let tip = s.tip(&c.enclave()).unwrap().unwrap();
        assert_eq!((tip.seq, tip.hash, tip.identity_public_key), (20, c.entries[20].hash(), Some(pk.clone())));

        let text = s.export_json(&c.enclave()).unwrap().unwrap();
        let ex: AuditExport = serde_json::from_str(&text).unwrap();
        assert_eq!((ex.format.as_str(), ex.enclave, ex.identity_public_key), (EXPORT_FORMAT, c.enclave(), Some(pk)));
        assert_eq!(ex.entries, c.entries);
        verify_chain(&ex.entries, &ex.head, c.enclave(), None).unwrap();

        let page = s.page(&c.enclave(), 5, 10).unwrap();
        assert_eq!((page.entries.len(), page.entries[0].seq, page.more), (10, 5, true));
        assert_eq!(page.head.unwrap().seq, 20);
        assert_eq!(s.latest_enclave().unwrap(), Some(c.enclave()));
        assert!(s.export_json(&Address::ZERO).unwrap().is_none());
    }

    #[test]
    fn broken_batches_are_refused_and_nothing_is_stored() {
        let s = AuditStore::open(Path::new(":memory:")).unwrap();
        let mut c = TestChain::new(5);
        started(&mut c);
        c.fill(10);
        s.accept(c.enclave(), None, &reply(&c, 0, 5, true)).unwrap();
        // A changed entry.
        let mut bad = reply(&c, 5, 11, false);
        bad.entries[2].detail = "rewritten".into();
        let e = s.accept(c.enclave(), None, &bad).unwrap_err();
        assert!(matches!(&e, PullError::Refused { error, .. } if error.seq() == Some(7)), "{e}");
        // A head signed by another key.
        let other = TestChain::new(6);
        let mut forged = reply(&c, 5, 11, false);
        forged.head = AuditHead::signed(10, c.entries[10].hash(), 9, c.enclave(), 11, B256::ZERO, |d| {
            Ok::<_, std::convert::Infallible>(other.sign_digest(d))
        })
        .unwrap();
        assert!(matches!(s.accept(c.enclave(), None, &forged), Err(PullError::Refused { .. })));
        // A batch that does not continue the stored chain (another history).
        let mut fork = TestChain::new(5);
        started(&mut fork);
        fork.fill(3);
        fork.push(99, Record::new(Decision::Allowed, Address::ZERO, B256::ZERO, "forked"));
        fork.fill(6);
        let e = s.accept(c.enclave(), None, &reply(&fork, 5, 11, false)).unwrap_err();
        assert!(matches!(&e, PullError::Refused { error, .. } if error.seq() == Some(5)), "{e}");
        assert_eq!(s.tip(&c.enclave()).unwrap().unwrap().seq, 4, "nothing stored");
        // The genuine batch still goes in.
        s.accept(c.enclave(), None, &reply(&c, 5, 11, false)).unwrap();
        assert_eq!(s.tip(&c.enclave()).unwrap().unwrap().seq, 10);
    }

    #[test]
    fn a_gap_is_recorded_and_shows_in_the_export() {
        let s = AuditStore::open(Path::new(":memory:")).unwrap();
        let mut c = TestChain::new(5);
        started(&mut c);
        c.fill(30);
        s.accept(c.enclave(), None, &reply(&c, 0, 10, true)).unwrap();
        // The enclave's window now starts at 20.
        let (n, gap) = s.accept(c.enclave(), None, &reply(&c, 20, 31, false)).unwrap();
        assert_eq!((n, gap), (11, Some((10, 19))));
        assert_eq!(s.gaps(&c.enclave()).unwrap(), vec![(10, 19)]);
        let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
        let e = verify_chain(&ex.entries, &ex.head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::Missing { seq: 10, head_seq: 30 });
    }

    #[test]
    fn chains_of_different_enclaves_are_kept_apart() {
        let s = AuditStore::open(Path::new(":memory:")).unwrap();
        let (mut a, mut b) = (TestChain::new(1), TestChain::new(2));
        started(&mut a);
        started(&mut b);
        a.fill(3);
        b.fill(5);
        s.accept(a.enclave(), None, &reply(&a, 0, 4, false)).unwrap();
        s.accept(b.enclave(), None, &reply(&b, 0, 6, false)).unwrap();
        // A's batch offered as B's is refused.
        let e = s.accept(b.enclave(), None, &reply(&a, 0, 4, false)).unwrap_err();
        assert!(matches!(e, PullError::Refused { error: AuditError::WrongEnclave { .. }, .. }), "{e}");
        for (c, n) in [(&a, 4), (&b, 6)] {
            let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
            assert_eq!(ex.entries.len(), n);
            verify_chain(&ex.entries, &ex.head, c.enclave(), None).unwrap();
        }
    }

    /// Against protocol v1's unsigned reply, `decode` says unsupported; once the protocol
    /// carries the signed batch, it passes it through.
    #[test]
    fn decode_follows_the_protocol() {
        let mut c = TestChain::new(5);
        started(&mut c);
        let signed = reply(&c, 0, 1, false);
        match serde_json::from_value::<Reply>(json!({ "audit": signed })) {
            Ok(r) => assert_eq!(decode(r).unwrap(), signed),
            Err(_) => {
                let old: Reply = serde_json::from_value(json!({ "audit": { "entries": ["0x78"] } })).unwrap();
                assert!(matches!(decode(old), Err(PullError::Unsupported(_))));
            }
        }
    }
}
