//! What the host keeps: the sessions and signed policies it relayed, an event log, the
//! sweeps' signed revocations, and the enclave's signed audit log ([`AuditBackend`]).
//!
//! Two backends implement the same traits over the same logical schema (see
//! [`sqlite`] and [`postgres`]): a SQLite file (the default, embedded; one host) or a
//! PostgreSQL server, which several hosts — each in front of its own enclave — may share.
//! Nothing here is trusted by the enclave: it is the host's record for owners, agents and
//! verifiers, and whatever the database returns is parsed as untrusted data.
//!
//! The backends are synchronous, so:
//!
//! * owner actions and reads run in `spawn_blocking` (they are rare);
//! * events (every sign decision) go through a bounded queue to a writer thread that
//!   stores them in batches — the signing path never waits for the database, and when the
//!   queue is full an event is dropped and counted rather than delaying a signature;
//! * the state of each known session is also held in memory, so the signing path can
//!   refuse a session lost to an enclave restart without touching the database. A session
//!   the host does not know (another host may have stored it) is read from the database
//!   off the signing path: when the enclave answers `unknown_session`, and on reads.
//!
//! With a shared database no host assumes it is the only writer: row ids come from the
//! database, audit entries are inserted idempotently under (enclave, seq) with a conflict
//! check, tips are read from the stored entries, and an enclave restart marks lost only
//! the sessions of identities this host fronted (recorded per host id in `host_enclaves`).

mod audit_prune;
mod backend;
mod database;
mod ended;
pub mod postgres;
pub mod sqlite;

pub use audit_prune::Pruned;
pub use backend::{AuditBackend, Backend, Batch, BatchError, PolicyRow, SessionRow, Tip};
pub use database::{redact, Database, PostgresUrl};
pub use ended::EndedSession;

use alloy_primitives::{Address, Bytes, B256};
use anyhow::Context as _;
use backend::{a, h, int};
use bridle_common::policy::doc::Policy;
use bridle_common::protocol::{OwnerAuth, SessionCreated};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The schema this build writes (both backends; see `schema_version`).
pub const SCHEMA_VERSION: i64 = 7;
/// Default capacity of the event queue.
pub const DEFAULT_EVENT_QUEUE: usize = 8192;
const MAX_BATCH: usize = 512;

/// Events looked at per statement when pruning (a window of ids).
pub const PRUNE_BATCH: usize = 10_000;

/// How long the host keeps its events (`--events-max-age-days`, `--events-max-rows`).
/// Events are the host's own log of requests and refusals, for operators; the enclave's
/// signed audit log is the record of what was signed, and is never pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRetention {
    /// Events older than this are deleted; `None` keeps them whatever their age.
    pub max_age: Option<std::time::Duration>,
    /// At most this many of the newest events are kept (by row id); 0: any number.
    pub max_rows: u64,
}

/// Default: 90 days and 10 000 000 events, whichever is reached first.
pub const DEFAULT_EVENTS_MAX_AGE_DAYS: u64 = 90;
/// See [`DEFAULT_EVENTS_MAX_AGE_DAYS`].
pub const DEFAULT_EVENTS_MAX_ROWS: u64 = 10_000_000;

impl Default for EventRetention {
    fn default() -> Self {
        EventRetention {
            max_age: Some(std::time::Duration::from_secs(DEFAULT_EVENTS_MAX_AGE_DAYS * 86_400)),
            max_rows: DEFAULT_EVENTS_MAX_ROWS,
        }
    }
}

/// Both views of one opened database.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Backend>,
    pub audit: Arc<dyn AuditBackend>,
}

/// Open (creating or migrating the schema) the database `db`.
pub fn open(db: &Database) -> anyhow::Result<Backends> {
    off_runtime(|| match db {
        Database::Sqlite(path) => {
            let b = sqlite::SqliteBackend::open(path)?;
            Ok(Backends { store: b.clone(), audit: b })
        }
        Database::Postgres(url) => {
            let b = postgres::PostgresBackend::open(url)?;
            Ok(Backends { store: b.clone(), audit: b })
        }
    })
}

/// Check that a stored audit entry's JSON parses and carries its row's seq.
pub(crate) fn check_entry_text(seq: u64, text: &str) -> anyhow::Result<()> {
    backend::entry_from(int(seq), text).map(|_| ())
}

/// Run blocking database work from anywhere: on a scoped thread when called from inside a
/// Tokio runtime (the PostgreSQL client drives its own runtime, which must not be nested).
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A stored session's state, as the host knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredState {
    Active,
    Revoked,
    /// Its enclave restarted: the key is gone for good (R-TRUST-4).
    Lost,
}

impl StoredState {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredState::Active => "active",
            StoredState::Revoked => "revoked",
            StoredState::Lost => "lost",
        }
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSession {
    pub session: Address,
    pub owner: Address,
    pub agent: Address,
    /// The identity address of the enclave that holds (held) the key.
    pub enclave: Address,
    pub policy_hash: B256,
    pub state: StoredState,
    pub created_at: u64,
    pub valid_until: u64,
    /// The normalized policy, as the owner signed it.
    pub policy: serde_json::Value,
    /// The enclave's `SessionCreated` reply: binding, its signature, the attestation.
    pub binding: serde_json::Value,
}

/// One signed policy the host relayed and the enclave accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub session: Address,
    pub policy_hash: B256,
    pub policy: serde_json::Value,
    pub owner: Address,
    pub nonce: u64,
    pub signature: Bytes,
    pub received_at: u64,
}

/// A signed revocation from a sweep (R-APP-6), kept so it can be broadcast again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSweepTx {
    pub session: Address,
    pub chain_id: u64,
    pub nonce: u64,
    pub token: Address,
    pub spender: Address,
    pub hash: B256,
    pub raw_transaction: Bytes,
    pub signed_at: u64,
}

impl StoredSweepTx {
    /// What the host keeps of a revocation the enclave signed for `session` at `signed_at`.
    pub fn of(session: Address, t: &bridle_common::protocol::SweepTx, signed_at: u64) -> StoredSweepTx {
        StoredSweepTx {
            session,
            chain_id: t.chain_id,
            nonce: t.nonce,
            token: t.token,
            spender: t.spender,
            hash: t.hash,
            raw_transaction: t.raw_transaction.clone(),
            signed_at,
        }
    }
}

/// One relayed action or sign decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time_ms: u64,
    /// The enclave call name (`sign_if_allowed`, `create_session`, …).
    pub call: String,
    pub session: Option<Address>,
    /// `ok`, `denied` or `error`.
    pub outcome: String,
    /// The bridle code (or transport failure kind) when not ok.
    pub code: Option<String>,
    /// A short detail, e.g. the signed digest.
    pub detail: Option<String>,
}

impl Event {
    /// Text PostgreSQL stores: no NUL. An event's detail quotes what the enclave said, which
    /// may quote what a stranger sent (a typed-data field name); one NUL in a batch of
    /// events (every session's, written in one statement) failed the whole batch, so one
    /// request every few milliseconds dropped every session's events (a review of
    /// 2026-12-05). Each NUL becomes U+FFFD.
    pub fn make_storable(&mut self) {
        let Event { time_ms: _, call, session: _, outcome, code, detail } = self;
        for text in [Some(call), Some(outcome), code.as_mut(), detail.as_mut()].into_iter().flatten() {
            if text.contains('\0') {
                *text = text.replace('\0', "\u{FFFD}");
            }
        }
    }

    pub fn now(call: &str, session: Option<Address>, outcome: &str, code: Option<&str>) -> Event {
        Event {
            time_ms: now_ms(),
            call: call.to_string(),
            session,
            outcome: outcome.to_string(),
            code: code.map(str::to_string),
            detail: None,
        }
    }
}

enum WriterMsg {
    Event(Event),
    Flush(SyncSender<()>),
}

/// The host's record: a backend, the in-memory session index and the event writer.
pub struct Store {
    backend: Arc<dyn Backend>,
    /// This host's name in `host_enclaves`.
    host_id: String,
    /// session → (state, enclave identity).
    index: RwLock<HashMap<Address, (StoredState, Address)>>,
    events: SyncSender<WriterMsg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend.kind()).finish_non_exhaustive()
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn policy_row(session: &Address, policy_hash: &B256, policy_json: &str, auth: &OwnerAuth, now: u64) -> PolicyRow {
    PolicyRow {
        session: a(session),
        policy_hash: h(policy_hash),
        policy_json: policy_json.to_string(),
        owner: a(&auth.owner),
        nonce: auth.nonce.to_string(),
        signature: format!("0x{}", hex::encode(&auth.signature)),
        received_at: int(now),
    }
}

impl Store {
    /// Open `db` for a host named `host_id` (see [`Backend::enclave_seen`]).
    pub fn open(db: &Database, host_id: &str, event_queue: usize) -> anyhow::Result<Arc<Store>> {
        Store::new(open(db)?.store, host_id, event_queue)
    }

    /// The store over an opened backend: loads the session index, starts the writer.
    pub fn new(backend: Arc<dyn Backend>, host_id: &str, event_queue: usize) -> anyhow::Result<Arc<Store>> {
        let index = off_runtime(|| backend.session_states())
            .context("cannot read the stored sessions")?
            .into_iter()
            .map(|(s, state, enclave)| (s, (state, enclave)))
            .collect();
        let (tx, rx) = mpsc::sync_channel(event_queue.max(1));
        let writer_backend = backend.clone();
        std::thread::Builder::new()
            .name("bridle-store-writer".into())
            .spawn(move || writer(writer_backend, rx))
            .context("cannot start the event writer thread")?;
        Ok(Arc::new(Store {
            backend,
            host_id: host_id.to_string(),
            index: RwLock::new(index),
            events: tx,
            dropped: AtomicU64::new(0),
        }))
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Run a synchronous store operation off the async runtime.
    pub async fn run<F, R>(self: &Arc<Self>, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&Store) -> anyhow::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me)).await.context("store task failed")?
    }

    /// The in-memory state and enclave of a session, if this host knows it. Never touches
    /// the database (the signing path calls it).
    pub fn session_state(&self, session: &Address) -> Option<(StoredState, Address)> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).get(session).copied()
    }

    /// Every session in the index with its state and enclave (the sweeper walks these).
    pub fn known_sessions(&self) -> Vec<(Address, StoredState, Address)> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(s, (st, e))| (*s, *st, *e)).collect()
    }

    /// Read a session's state from the database (another host may have stored or changed
    /// it) into the index. A session this host already holds as lost stays lost.
    pub fn load_session_state(&self, session: &Address) -> anyhow::Result<Option<(StoredState, Address)>> {
        let Some(s) = self.backend.session(session)? else { return Ok(self.session_state(session)) };
        Ok(Some(self.remember(&s)))
    }

    /// Put a session read from the database into the index; returns the state it has now.
    fn remember(&self, s: &StoredSession) -> (StoredState, Address) {
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        let e = idx.entry(s.session).or_insert((s.state, s.enclave));
        if e.0 != StoredState::Lost {
            *e = (s.state, s.enclave);
        }
        *e
    }

    /// Record a session the enclave created, with the policy and owner signature relayed.
    pub fn insert_session(&self, created: &SessionCreated, policy: &Policy, auth: &OwnerAuth) -> anyhow::Result<()> {
        let b = &created.binding;
        let policy_json = serde_json::to_string(policy)?;
        let now = now_secs();
        let row = SessionRow {
            session: a(&b.session),
            owner: a(&b.owner),
            agent: a(&b.agent),
            enclave: a(&b.enclave),
            policy_hash: h(&b.policy_hash),
            policy_json: policy_json.clone(),
            created_at: int(b.created_at),
            valid_until: int(b.valid_until),
            binding: serde_json::to_string(created)?,
            now: int(now),
        };
        self.backend.insert_session(&row, &policy_row(&b.session, &b.policy_hash, &policy_json, auth, now))?;
        self.index.write().unwrap_or_else(|e| e.into_inner()).insert(b.session, (StoredState::Active, b.enclave));
        Ok(())
    }

    /// Record a policy update the enclave accepted.
    pub fn update_policy(
        &self,
        session: &Address,
        policy_hash: &B256,
        policy: &Policy,
        auth: &OwnerAuth,
    ) -> anyhow::Result<()> {
        let policy_json = serde_json::to_string(policy)?;
        let row = policy_row(session, policy_hash, &policy_json, auth, now_secs());
        self.backend.update_policy(policy.valid_until.map(int), &row)
    }

    /// Mark sessions revoked (those stored and not marked lost). Returns how many changed.
    /// The enclave's own word says it holds `session`, which is marked `lost`: the mark was
    /// wrong (a host pointed at another enclave once marks every other identity's sessions
    /// lost). The session is `state` again, in the database and in memory, so that the host
    /// serves it and its sweeper sweeps it (a review of 2026-12-06). Whether it was marked.
    pub fn unmark_lost(&self, session: &Address, state: StoredState) -> anyhow::Result<bool> {
        let changed = self.backend.unmark_lost(session, state, int(now_secs()))?;
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = idx.get_mut(session) {
            if e.0 == StoredState::Lost {
                e.0 = state;
            }
        }
        Ok(changed)
    }

    pub fn mark_revoked(&self, sessions: &[Address]) -> anyhow::Result<usize> {
        let changed = self.backend.mark_revoked(sessions, int(now_secs()))?;
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        for s in &changed {
            if let Some(e) = idx.get_mut(s) {
                e.0 = StoredState::Revoked;
            }
        }
        Ok(changed.len())
    }

    /// The enclave behind this host now has identity `current` (`previous`: the one this
    /// process saw before). The sessions of the identities it replaced are gone for good
    /// (R-TRUST-4) and are marked `lost`; with a SQLite database (one host), every stored
    /// session of another identity. Returns how many were marked in the database.
    pub fn enclave_changed(&self, previous: Option<Address>, current: &Address) -> anyhow::Result<usize> {
        let shared = self.backend.shared();
        // Memory first: even if the database write fails, the host refuses these sessions.
        self.mark_lost_in_memory(|enclave| enclave != current && (!shared || Some(*enclave) == previous));
        let (retired, n) = self.backend.enclave_seen(&self.host_id, previous, current, int(now_secs()))?;
        self.mark_lost_in_memory(|enclave| enclave != current && retired.contains(enclave));
        Ok(n)
    }

    fn mark_lost_in_memory(&self, lost: impl Fn(&Address) -> bool) {
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        for (state, enclave) in idx.values_mut() {
            if lost(enclave) {
                *state = StoredState::Lost;
            }
        }
    }

    /// A stored session (also refreshing the index with what the database says).
    pub fn get_session(&self, session: &Address) -> anyhow::Result<Option<StoredSession>> {
        let s = self.backend.session(session)?;
        if let Some(s) = &s {
            self.remember(s);
        }
        Ok(s)
    }

    /// A page of an owner's stored sessions, oldest first: those created after `after`
    /// (creation time, address), at most `limit`.
    pub fn sessions_by_owner(
        &self,
        owner: &Address,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredSession>> {
        self.backend.sessions_by_owner(owner, after, limit)
    }

    /// A page of a session's policy history, oldest first: the records with ids above
    /// `after`, at most `limit`, each with its id.
    pub fn policies(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, PolicyRecord)>> {
        self.backend.policies(session, after, limit)
    }

    /// The latest record of a session's policy with this hash.
    pub fn policy_with_hash(&self, session: &Address, hash: &B256) -> anyhow::Result<Option<PolicyRecord>> {
        self.backend.policy_with_hash(session, hash)
    }

    /// The latest `limit` events, oldest first; only those of `session` when given (no
    /// index by session: that reads back through the events until it has `limit` of them,
    /// for tools and tests, never on a request path).
    pub fn events(&self, session: Option<&Address>, limit: usize) -> anyhow::Result<Vec<Event>> {
        let mut v = self.backend.events(session, limit)?;
        v.reverse();
        Ok(v)
    }

    /// Keep a sweep's signed revocations.
    pub fn insert_sweep(&self, txs: &[StoredSweepTx]) -> anyhow::Result<()> {
        self.backend.insert_sweeps(txs)
    }

    /// A page of a session's signed revocations, oldest first: ids above `after`, at most
    /// `limit`, each with its id.
    pub fn sweeps(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, StoredSweepTx)>> {
        self.backend.sweeps(session, after, limit)
    }

    /// The latest of a session's signed revocations on `chain` at `nonce` (at most
    /// [`backend::SWEEPS_AT_MAX`]), newest first.
    pub fn sweeps_at(&self, session: &Address, chain: u64, nonce: u64) -> anyhow::Result<Vec<StoredSweepTx>> {
        self.backend.sweeps_at(session, chain, nonce)
    }

    /// A page of the sessions that ended before `before` (seconds), by (end, address): those
    /// after `after`, at most `limit` (see [`Backend::ended_sessions`]).
    pub fn ended_sessions(
        &self,
        before: u64,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<EndedSession>> {
        self.backend.ended_sessions(int(before), after, limit)
    }

    /// Forget `sessions` (those that still ended before `before`): delete their rows, policy
    /// records and signed revocations, and drop them from the index. Returns those forgotten.
    pub fn forget_sessions(&self, sessions: &[Address], before: u64) -> anyhow::Result<Vec<Address>> {
        let gone = self.backend.forget_sessions(sessions, int(before))?;
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        for s in &gone {
            idx.remove(s);
        }
        Ok(gone)
    }

    /// One window of the pruning (see [`Backend::prune_events`]): delete, among the
    /// [`PRUNE_BATCH`] events with ids above `after`, those `retention` does not keep, at
    /// `now_ms`. Returns how many it deleted and the window's last id (`None`: the table
    /// ends before it). The pruner ([`crate::AppState::spawn_event_pruner`]) walks the table
    /// a window at a time, pausing between windows, so the event writer is never held up
    /// for long; it goes on past windows that keep everything (a run of events stamped
    /// ahead of the others — a host's clock set forward, hosts sharing a database — delays
    /// nothing behind it).
    pub fn prune_window(
        &self,
        now_ms: u64,
        retention: &EventRetention,
        after: u64,
    ) -> anyhow::Result<(usize, Option<u64>)> {
        let before_ms = match retention.max_age {
            Some(age) => now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            None => 0,
        };
        self.backend.prune_events(before_ms, retention.max_rows, after, PRUNE_BATCH)
    }

    /// Queue an event for the writer thread. Never blocks: when the queue is full the
    /// event is dropped (and counted). Returns whether it was queued.
    pub fn record_event(&self, mut event: Event) -> bool {
        event.make_storable();
        match self.events.try_send(WriterMsg::Event(event)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Block until every event queued before this call is written.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.events.send(WriterMsg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// How long the writer lets events gather after the first of a batch before it writes
/// them in one transaction. Events were never on the signing path's durability (they are
/// queued, and dropped when the queue is full); this bounds how late one is stored. At
/// saturation it turns a commit (a WAL append and its page writes) and a thread wake-up
/// per few events into one per hundred or so (issue 12: the writer thread was ≈ 24 % of
/// the host's CPU under `make load`, most of it in `COMMIT`). A flush is never delayed by
/// more than this.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

fn writer(backend: Arc<dyn Backend>, rx: Receiver<WriterMsg>) {
    // Whether the last batch was full: more are waiting, write them without lingering.
    let mut behind = false;
    while let Ok(first) = rx.recv() {
        if !behind && matches!(first, WriterMsg::Event(_)) {
            // Senders never wait for the writer (`try_send`), so sleeping here only lets
            // the queue fill (it holds `event_queue` events; 8 192 by default).
            std::thread::sleep(LINGER);
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        behind = batch.len() >= MAX_BATCH;
        let mut acks = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        for m in batch {
            match m {
                WriterMsg::Event(e) => events.push(e),
                WriterMsg::Flush(ack) => acks.push(ack),
            }
        }
        if !events.is_empty() {
            if let Err(e) = backend.write_events(&events) {
                tracing::error!(error = %format!("{e:#}"), count = events.len(), "cannot store events");
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
