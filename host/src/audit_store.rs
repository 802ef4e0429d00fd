//! The host's copy of the enclave's signed audit log (R-AUD-1).
//!
//! A background task pulls `audit(since)` from the enclave every second — every
//! [`MIN_PULL_GAP`] while entries arrive at [`busy`]'s rate or faster, so that under load a
//! pull holds a tenth of a second of entries rather than a second's — and whenever
//! [`AuditStore::kick`] is called (at most every [`MIN_PULL_GAP`]), checks every batch
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
//! are stored under the identity address, in the host's database ([`AuditBackend`]: SQLite
//! or PostgreSQL). Several hosts may store into one database, and hosts whose enclaves
//! share an identity key push the same entries: an entry already stored under the same
//! (enclave, seq) is skipped when identical, and a different one refuses the batch (a
//! conflict: logged at error level and reported in the sync status). The tip a pull
//! continues from is read from the stored entries, whoever stored them.
//!
//! HTTP: `GET /v1/audit?since=N[&limit=M][&enclave=0x…]` serves stored entries with the
//! latest head; `GET /v1/audit/export[?enclave=0x…]` the whole chain as one JSON file
//! ([`AuditExport`]: `{format, enclave, identity_public_key, entries, head}`), which
//! `bridle verify audit` checks. Both pull first, so they include everything up to now.

use crate::api::{parse_address, ApiError};
use crate::enclave_client::{reply_name, ClientError, EnclaveClient};
use crate::store::{AuditBackend, Batch, BatchError};
use crate::AppState;
use alloy_primitives::{Address, Bytes};
use axum::http::StatusCode;
use axum::Json;
use bridle_common::audit::{
    verify_chain, verify_chain_hashes, AuditEntry, AuditError, AuditHead, AuditReply, EXPORT_FORMAT,
};
use bridle_common::error::Denial;
use bridle_common::protocol::{Call, Reply, StatusQuery};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the background task pulls.
pub const DEFAULT_PULL_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest pause between two pulls (kicks within it are merged).
pub const MIN_PULL_GAP: Duration = Duration::from_millis(100);
/// Entries per [`MIN_PULL_GAP`] from which the enclave counts as busy (500 a second).
pub const BUSY_PULL_ENTRIES: usize = 50;

/// Whether a pull that stored `stored` entries, `since` after the pull before it, shows a
/// busy enclave: entries arriving at [`BUSY_PULL_ENTRIES`] per [`MIN_PULL_GAP`] or faster.
/// Then the next pull follows after [`MIN_PULL_GAP`] instead of the interval, so each pull
/// (the enclave's reply, the chain check and the insert) stays small beside the signing
/// path. A rate, not a count: a one-second pull and the short one after it see the same
/// rate, so the pace does not flip between them.
pub fn busy(stored: usize, since: Duration) -> bool {
    stored > 0 && stored as u128 * MIN_PULL_GAP.as_nanos() >= BUSY_PULL_ENTRIES as u128 * since.as_nanos()
}

/// The most batches one pull fetches (each at most `MAX_REPLY_ENTRIES`).
const MAX_BATCHES_PER_PULL: usize = 1000;
/// `GET /v1/audit` page size: default and maximum (a review of 2026-12-06: pages of 10 000
/// entries, ≈ 40 MB built each, let 150 requests a stranger never read pin 1.3 GB).
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 1000;

/// How the last pull went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// `never` (no pull yet), `ok`, `unsupported` (the enclave serves no signed audit log),
    /// `unreachable`, `refused` (a batch did not verify and was not stored), or `conflict`
    /// (a batch verified, but the database holds other entries under its keys).
    pub state: String,
    pub enclave: Option<Address>,
    /// The last entry stored for `enclave`.
    pub stored_through: Option<u64>,
    /// Unix seconds of the last pull attempt.
    pub last_pull: Option<u64>,
    pub error: Option<String>,
}

pub use crate::store::Tip;

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

/// The audit log as stored, and its puller.
pub struct AuditStore {
    backend: Arc<dyn AuditBackend>,
    kick: Notify,
    pulling: tokio::sync::Mutex<()>,
    status: Mutex<SyncStatus>,
}

impl std::fmt::Debug for AuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStore").field("status", &self.status()).finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    crate::store::now_secs()
}

/// Where a batch came from: this host's own enclave (its own node in a cluster), or through
/// another host (in a cluster, while its own node does not serve it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSource {
    OwnNode,
    Relayed,
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
    /// The batch verified, but the database already holds a different entry under one of
    /// its (enclave, seq) keys.
    #[error("{0}")]
    Conflict(String),
    /// Not this time (e.g. the enclave restarted during the pull); the next pull retries.
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Other(String),
}

impl AuditStore {
    /// The audit log over an opened database.
    pub fn new(backend: Arc<dyn AuditBackend>) -> Arc<AuditStore> {
        Arc::new(AuditStore {
            backend,
            kick: Notify::new(),
            pulling: tokio::sync::Mutex::new(()),
            status: Mutex::new(SyncStatus { state: "never".into(), ..SyncStatus::default() }),
        })
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

    /// The stored tip of `enclave`'s chain (read from the database: another host may
    /// have stored entries since the last pull).
    pub fn tip(&self, enclave: &Address) -> anyhow::Result<Option<Tip>> {
        self.backend.tip(enclave)
    }

    /// Check a batch from this host's own enclave against what is stored and store it.
    /// Returns how many entries were new and the gap it revealed, if any. Nothing is stored
    /// unless it verifies, and nothing of a batch that conflicts with stored entries.
    pub fn accept(
        &self,
        enclave: Address,
        public_key: Option<&Bytes>,
        reply: &AuditReply,
    ) -> Result<(usize, Option<(u64, u64)>), PullError> {
        self.accept_from(enclave, public_key, reply, BatchSource::OwnNode)
    }

    /// [`AuditStore::accept`] for a batch from `source`: one relayed by another host may
    /// continue the stored chain, never skip past its tip.
    pub fn accept_from(
        &self,
        enclave: Address,
        public_key: Option<&Bytes>,
        reply: &AuditReply,
        source: BatchSource,
    ) -> Result<(usize, Option<(u64, u64)>), PullError> {
        let tip = self.tip(&enclave).map_err(|e| PullError::Other(format!("storage: {e:#}")))?;
        let since = tip.as_ref().map_or(0, |t| t.seq + 1);
        let from = tip.as_ref().map(|t| (t.seq + 1, t.hash));
        if tip.as_ref().is_some_and(|t| reply.entries.is_empty() && reply.head.seq == t.seq) {
            // Nothing new; still check the head is the identity's and matches.
            verify_chain(&[], &reply.head, enclave, from).map_err(|error| PullError::Refused { enclave, error })?;
            return Ok((0, None));
        }
        let storage = |e: anyhow::Error| PullError::Other(format!("storage: {e:#}"));
        let (from, gap) = match reply.entries.first() {
            // The enclave no longer holds `since ..first`: they were dropped from its window
            // before this host stored them. What follows is checked from its own first link.
            Some(first) if first.seq > since => (Some((first.seq, first.prev)), Some((since, first.seq - 1))),
            // The batch overlaps what is stored (another host stored it meanwhile, or it is
            // pushed again): it must continue the stored link before it; the overlap is then
            // checked entry by entry when stored (identical: skipped; different: conflict).
            Some(first) if first.seq < since => match first.seq.checked_sub(1) {
                None => (None, None),
                Some(before) => match self.backend.entry_hash(&enclave, before).map_err(storage)? {
                    Some(hash) => (Some((first.seq, hash)), None),
                    // Inside a recorded gap: checked from its own first link.
                    None => (Some((first.seq, first.prev)), None),
                },
            },
            _ => (from, None),
        };
        let chain = verify_chain_hashes(&reply.entries, &reply.head, enclave, from)
            .map_err(|error| PullError::Refused { enclave, error })?;
        if let Some((a, b)) = gap {
            // A gap is the word of this host's own node, not a relay's (a review of
            // 2026-12-06: in a cluster every other host's copy came through the leader's
            // host, which could answer from `b + 1` and cut entries out of the copy for
            // good, blamed on the enclave). Nodes' windows differ (one restored from a
            // snapshot holds fewer entries), so even a node's genuine word is taken from
            // this host's own node only; and its signed head must say its window starts
            // where the batch does (heads of enclaves before `oldest` say nothing).
            if source == BatchSource::Relayed {
                return Err(PullError::Retry(format!(
                    "a batch relayed by another host skips entries {a}..={b}: only this host's own node's word \
                     records entries as dropped; asking it again"
                )));
            }
            if reply.head.oldest.is_some_and(|o| o != b + 1) {
                return Err(PullError::Other(format!(
                    "a batch starting at seq {} skips entries {a}..={b}, but the enclave's signed head says it \
                     held entries from seq {}: not a gap the enclave made (the batch was cut on its way)",
                    b + 1,
                    reply.head.oldest.unwrap_or_default()
                )));
            }
        }
        let batch = Batch { public_key, chain: &chain, gap, now: now_secs() };
        let stored = self.backend.store_batch(&batch).map_err(|e| match e {
            c @ BatchError::Conflict { .. } => PullError::Conflict(c.to_string()),
            BatchError::Storage(e) => storage(e),
        })?;
        Ok((stored, gap))
    }

    /// The enclave to serve by default: the one with the most recently updated head.
    pub fn latest_enclave(&self) -> anyhow::Result<Option<Address>> {
        self.backend.latest_enclave()
    }

    /// Stored entries of `enclave` from `since` (at most `limit`), with the latest head.
    pub fn page(&self, enclave: &Address, since: u64, limit: usize) -> anyhow::Result<Page> {
        let mut entries = self.backend.entries(enclave, since, limit.saturating_add(1))?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let (head, identity_public_key) = self.backend.head(enclave)?;
        Ok(Page { entries, head, identity_public_key, more })
    }

    /// The database the log is stored in.
    pub fn backend(&self) -> Arc<dyn AuditBackend> {
        self.backend.clone()
    }

    /// The last entry of `enclave`'s chain the audit retention deleted, with those before it
    /// ([`crate::audit_retention`]; the host's word: no signature covers it).
    pub fn pruned_through(&self, enclave: &Address) -> anyhow::Result<Option<u64>> {
        self.backend.pruned_through(enclave)
    }

    /// Gaps recorded for `enclave`: entries dropped by the enclave before the host had them.
    pub fn gaps(&self, enclave: &Address) -> anyhow::Result<Vec<(u64, u64)>> {
        self.backend.gaps(enclave)
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
                    PullError::Conflict(_) => "conflict",
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
                            PullError::Conflict(_) => tracing::error!(
                                error = %msg,
                                "AUDIT LOG CONFLICT: the database already holds a different entry under the same \
                                 (enclave, seq); the batch was NOT stored"
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
        let mut identity = client.own_identity().await;
        let mut public_key = None;
        let known_pk = match identity {
            Some(id) => self.run(move |s| s.tip(&id)).await?.and_then(|t| t.identity_public_key),
            None => None,
        };
        if known_pk.is_none() {
            match client.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await? {
                Reply::Status(st) => {
                    // Only this host's own enclave's, with a key that is that identity's: in a
                    // cluster a status may come from a peer host, whose chain was then kept
                    // under an enclave it made up (a review of 2026-12-06).
                    let key_of = k256::PublicKey::from_sec1_bytes(&st.identity_public_key)
                        .map(|k| Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&k)));
                    if client.identity() != Some(st.identity_address) || key_of.ok() != Some(st.identity_address) {
                        return Err(PullError::Retry(format!(
                            "a status naming {} is not this host's enclave's; asking again on the next pull",
                            st.identity_address
                        )));
                    }
                    identity = Some(st.identity_address);
                    public_key = Some(st.identity_public_key);
                }
                other => return Err(PullError::Other(format!("enclave answered status with {}", reply_name(&other)))),
            }
        }
        let Some(enclave) = identity else { return Err(PullError::Other("enclave identity unknown".into())) };

        let mut pulled = Pulled { enclave: Some(enclave), ..Pulled::default() };
        for _ in 0..MAX_BATCHES_PER_PULL {
            let tip = self.run(move |s| s.tip(&enclave)).await?;
            pulled.through = tip.as_ref().map(|t| t.seq);
            let since = tip.as_ref().map_or(0, |t| t.seq + 1);
            let (reply, source) = match crate::audit_reads::ask(client, enclave, since, tip.map(|t| t.hash)).await? {
                crate::audit_reads::Asked::Batch(reply, source) => (reply, source),
                // This host's own node has not applied as far as the copy (another host
                // stored it in a shared database): nothing new from it yet.
                crate::audit_reads::Asked::Ahead => break,
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
            // A batch that does not move the copy on ends the pull (nothing new).
            let progress = reply_last >= since;
            let pk = public_key.clone();
            let store = Arc::clone(self);
            let (n, gap) = tokio::task::spawn_blocking(move || store.accept_from(enclave, pk.as_ref(), &reply, source))
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
            pulled.through = Some(reply_last.max(pulled.through.unwrap_or(0)));
            if !more || !progress {
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

/// The signed batch in an `audit` reply: the protocol carries [`AuditReply`] itself, so it
/// is taken as decoded from the frame (no conversion on the async worker that runs the pull:
/// a reply holds up to `MAX_REPLY_ENTRIES` entries).
pub(crate) fn decode(reply: Reply) -> Result<AuditReply, PullError> {
    match reply {
        Reply::Audit(a) => Ok(a),
        other => Err(PullError::Other(format!("enclave answered audit with {}", reply_name(&other)))),
    }
}

/// Start the background puller of `st.audit`.
pub fn spawn(st: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    let audit = st.audit.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = audit.kick.notified() => {}
            }
            // While the enclave is busy, pull every MIN_PULL_GAP: small pulls, often (a
            // 20 ms gap was tried and measured no better: BENCHMARKS.md).
            loop {
                let stored = audit.pull(&st.client).await.map_or(0, |p| p.stored);
                let now = tokio::time::Instant::now();
                let was_busy = busy(stored, now - last);
                last = now;
                tokio::time::sleep(MIN_PULL_GAP).await;
                if !was_busy {
                    break;
                }
            }
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
    // A turn of the list routes' (`api_lists::LISTS_AT_ONCE`), held while the page is read.
    let _turn = crate::api_lists::turn(st).await?;
    let a = audit.clone();
    let (page, gaps, pruned) = tokio::task::spawn_blocking(move || {
        let page = a.page(&enclave, since, limit)?;
        Ok::<_, anyhow::Error>((page, a.gaps(&enclave)?, a.pruned_through(&enclave)?))
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
        "pruned_through": pruned,
        "sync": sync,
    })))
}

fn no_log(enclave: Option<Address>, sync: &SyncStatus) -> ApiError {
    let what = enclave.map_or_else(|| "any enclave".to_string(), |e| format!("enclave {e}"));
    let why = sync.error.as_deref().map(|e| format!(" (last pull: {e})")).unwrap_or_default();
    ApiError::new(StatusCode::NOT_FOUND, Denial::malformed(format!("no audit log stored for {what}{why}")))
}

#[path = "audit_store_export.rs"]
mod export;
pub use export::export;

#[cfg(test)]
#[path = "audit_store_tests.rs"]
pub(crate) mod tests;
