//! What the host keeps: the sessions and signed policies it relayed, and an event log.
//!
//! SQLite (bundled) in WAL mode. Nothing here is trusted by the enclave: it is the host's
//! record for owners, agents and verifiers. rusqlite is synchronous, so:
//!
//! * owner actions and reads lock the connection from `spawn_blocking` (they are rare);
//! * events (every sign decision) go through a bounded queue to a writer thread that
//!   stores them in batches — the signing path never waits for the disk, and when the
//!   queue is full an event is dropped and counted rather than delaying a signature;
//! * the state of each known session is also held in memory, so the signing path can
//!   refuse a session lost to an enclave restart without touching the database.

use alloy_primitives::{Address, Bytes, B256};
use anyhow::Context as _;
use bridle_common::policy::doc::Policy;
use bridle_common::protocol::{OwnerAuth, SessionCreated};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The schema this build writes.
pub const SCHEMA_VERSION: i64 = 1;
/// Default capacity of the event queue.
pub const DEFAULT_EVENT_QUEUE: usize = 8192;
const MAX_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session      TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    agent        TEXT NOT NULL,
    enclave      TEXT NOT NULL,
    policy_hash  TEXT NOT NULL,
    policy_json  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('active', 'revoked', 'lost')),
    binding      TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions(owner);
CREATE INDEX IF NOT EXISTS sessions_enclave ON sessions(enclave);
CREATE TABLE IF NOT EXISTS policies (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session      TEXT NOT NULL,
    policy_hash  TEXT NOT NULL,
    policy_json  TEXT NOT NULL,
    owner        TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    signature    TEXT NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS policies_session ON policies(session);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms  INTEGER NOT NULL,
    call     TEXT NOT NULL,
    session  TEXT,
    outcome  TEXT NOT NULL,
    code     TEXT,
    detail   TEXT
);
CREATE INDEX IF NOT EXISTS events_session ON events(session);
CREATE TABLE IF NOT EXISTS sweeps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session      TEXT NOT NULL,
    chain_id     INTEGER NOT NULL,
    nonce        INTEGER NOT NULL,
    token        TEXT NOT NULL,
    spender      TEXT NOT NULL,
    hash         TEXT NOT NULL,
    raw          TEXT NOT NULL,
    signed_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sweeps_session ON sweeps(session);
";

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
    fn parse(s: &str) -> StoredState {
        match s {
            "active" => StoredState::Active,
            "revoked" => StoredState::Revoked,
            _ => StoredState::Lost,
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

/// The host's database.
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// session → (state, enclave identity).
    index: RwLock<HashMap<Address, (StoredState, Address)>>,
    events: SyncSender<WriterMsg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn a(addr: &Address) -> String {
    format!("{addr:#x}")
}

fn h(hash: &B256) -> String {
    format!("{hash:#x}")
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn parse_addr(s: &str) -> rusqlite::Result<Address> {
    Address::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_hash(s: &str) -> rusqlite::Result<B256> {
    B256::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

const SESSION_COLUMNS: &str =
    "session, owner, agent, enclave, policy_hash, state, created_at, valid_until, policy_json, binding";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSession> {
    Ok(StoredSession {
        session: parse_addr(&r.get::<_, String>(0)?)?,
        owner: parse_addr(&r.get::<_, String>(1)?)?,
        agent: parse_addr(&r.get::<_, String>(2)?)?,
        enclave: parse_addr(&r.get::<_, String>(3)?)?,
        policy_hash: parse_hash(&r.get::<_, String>(4)?)?,
        state: StoredState::parse(&r.get::<_, String>(5)?),
        created_at: r.get::<_, i64>(6)?.max(0) as u64,
        valid_until: r.get::<_, i64>(7)?.max(0) as u64,
        policy: parse_json(&r.get::<_, String>(8)?),
        binding: parse_json(&r.get::<_, String>(9)?),
    })
}

impl Store {
    /// Open (or create) the database at `path` (`:memory:` for a throwaway one).
    pub fn open(path: &Path, event_queue: usize) -> anyhow::Result<Arc<Store>> {
        let conn = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // In-memory databases answer "memory"; that is fine.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA).context("cannot create the database schema")?;
        let version: Option<i64> =
            conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).optional()?.flatten();
        match version {
            None => {
                conn.execute("INSERT INTO schema_version (version) VALUES (?1)", params![SCHEMA_VERSION])?;
            }
            Some(v) if v > SCHEMA_VERSION => anyhow::bail!(
                "database {} has schema version {v}, newer than this host's {SCHEMA_VERSION}",
                path.display()
            ),
            Some(_) => {}
        }
        let mut index = HashMap::new();
        {
            let mut st = conn.prepare("SELECT session, state, enclave FROM sessions")?;
            let rows = st.query_map([], |r| {
                Ok((
                    parse_addr(&r.get::<_, String>(0)?)?,
                    StoredState::parse(&r.get::<_, String>(1)?),
                    parse_addr(&r.get::<_, String>(2)?)?,
                ))
            })?;
            for row in rows {
                let (s, state, enclave) = row?;
                index.insert(s, (state, enclave));
            }
        }
        let conn = Arc::new(Mutex::new(conn));
        let (tx, rx) = mpsc::sync_channel(event_queue.max(1));
        let writer_conn = conn.clone();
        std::thread::Builder::new()
            .name("bridle-store-writer".into())
            .spawn(move || writer(writer_conn, rx))
            .context("cannot start the event writer thread")?;
        Ok(Arc::new(Store { conn, index: RwLock::new(index), events: tx, dropped: AtomicU64::new(0) }))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The in-memory state and enclave of a session, if the host knows it.
    pub fn session_state(&self, session: &Address) -> Option<(StoredState, Address)> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).get(session).copied()
    }

    /// Record a session the enclave created, with the policy and owner signature relayed.
    pub fn insert_session(&self, created: &SessionCreated, policy: &Policy, auth: &OwnerAuth) -> anyhow::Result<()> {
        let b = &created.binding;
        let policy_json = serde_json::to_string(policy)?;
        let binding_json = serde_json::to_string(created)?;
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO sessions (session, owner, agent, enclave, policy_hash, policy_json,
                 created_at, valid_until, state, binding, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?10)
             ON CONFLICT(session) DO UPDATE SET owner = excluded.owner, agent = excluded.agent,
                 enclave = excluded.enclave, policy_hash = excluded.policy_hash,
                 policy_json = excluded.policy_json, created_at = excluded.created_at,
                 valid_until = excluded.valid_until, state = 'active',
                 binding = excluded.binding, updated_at = excluded.updated_at",
            params![
                a(&b.session),
                a(&b.owner),
                a(&b.agent),
                a(&b.enclave),
                h(&b.policy_hash),
                policy_json,
                int(b.created_at),
                int(b.valid_until),
                binding_json,
                int(now),
            ],
        )?;
        insert_policy(&tx, &b.session, &b.policy_hash, &policy_json, auth, now)?;
        tx.commit()?;
        drop(conn);
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
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE sessions SET policy_hash = ?2, policy_json = ?3,
                 valid_until = COALESCE(?4, valid_until), updated_at = ?5
             WHERE session = ?1",
            params![a(session), h(policy_hash), policy_json, policy.valid_until.map(int), int(now)],
        )?;
        insert_policy(&tx, session, policy_hash, &policy_json, auth, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Mark sessions revoked (those the host knows and has not marked lost). Returns how
    /// many changed.
    pub fn mark_revoked(&self, sessions: &[Address]) -> anyhow::Result<usize> {
        let now = now_secs();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut changed = Vec::new();
        {
            let mut st = tx.prepare(
                "UPDATE sessions SET state = 'revoked', updated_at = ?2
                 WHERE session = ?1 AND state = 'active'",
            )?;
            for s in sessions {
                if st.execute(params![a(s), int(now)])? > 0 {
                    changed.push(*s);
                }
            }
        }
        tx.commit()?;
        drop(conn);
        let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
        for s in &changed {
            if let Some(e) = idx.get_mut(s) {
                e.0 = StoredState::Revoked;
            }
        }
        Ok(changed.len())
    }

    /// The enclave now has identity `current`: every stored session held by another
    /// identity is gone for good (R-TRUST-4) and is marked `lost`. Returns how many.
    pub fn mark_lost_except(&self, current: &Address) -> anyhow::Result<usize> {
        // Memory first: even if the disk write fails, the host refuses these sessions.
        {
            let mut idx = self.index.write().unwrap_or_else(|e| e.into_inner());
            for (state, enclave) in idx.values_mut() {
                if enclave != current {
                    *state = StoredState::Lost;
                }
            }
        }
        let n = self.lock().execute(
            "UPDATE sessions SET state = 'lost', updated_at = ?2
             WHERE enclave != ?1 AND state != 'lost'",
            params![a(current), int(now_secs())],
        )?;
        Ok(n)
    }

    pub fn get_session(&self, session: &Address) -> anyhow::Result<Option<StoredSession>> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE session = ?1"))?;
        Ok(st.query_row(params![a(session)], session_row).optional()?)
    }

    /// Every stored session of an owner, oldest first.
    pub fn sessions_by_owner(&self, owner: &Address) -> anyhow::Result<Vec<StoredSession>> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner = ?1 ORDER BY created_at, session"
        ))?;
        let rows = st.query_map(params![a(owner)], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The policy history of a session, oldest first.
    pub fn policies(&self, session: &Address) -> anyhow::Result<Vec<PolicyRecord>> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT session, policy_hash, policy_json, owner, nonce, signature, received_at
             FROM policies WHERE session = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![a(session)], |r| {
            let sig: String = r.get(5)?;
            Ok(PolicyRecord {
                session: parse_addr(&r.get::<_, String>(0)?)?,
                policy_hash: parse_hash(&r.get::<_, String>(1)?)?,
                policy: parse_json(&r.get::<_, String>(2)?),
                owner: parse_addr(&r.get::<_, String>(3)?)?,
                nonce: r.get::<_, String>(4)?.parse().unwrap_or(0),
                signature: Bytes::from(hex::decode(sig.trim_start_matches("0x")).unwrap_or_default()),
                received_at: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest `limit` events, oldest first; only those of `session` when given.
    pub fn events(&self, session: Option<&Address>, limit: usize) -> anyhow::Result<Vec<Event>> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(
            "SELECT time_ms, call, session, outcome, code, detail FROM events
             WHERE ?1 IS NULL OR session = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![session.map(a), int(limit as u64)], |r| {
            Ok(Event {
                time_ms: r.get::<_, i64>(0)?.max(0) as u64,
                call: r.get(1)?,
                session: r.get::<_, Option<String>>(2)?.map(|s| parse_addr(&s)).transpose()?,
                outcome: r.get(3)?,
                code: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        let mut v: Vec<Event> = rows.collect::<Result<_, _>>()?;
        v.reverse();
        Ok(v)
    }

    /// Queue an event for the writer thread. Never blocks: when the queue is full the
    /// event is dropped (and counted). Returns whether it was queued.
    /// Keep a sweep's signed revocations.
    pub fn insert_sweep(&self, txs: &[StoredSweepTx]) -> anyhow::Result<()> {
        let mut conn = self.lock();
        let t = conn.transaction()?;
        for x in txs {
            t.execute(
                "INSERT INTO sweeps (session, chain_id, nonce, token, spender, hash, raw, signed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    a(&x.session),
                    int(x.chain_id),
                    int(x.nonce),
                    a(&x.token),
                    a(&x.spender),
                    h(&x.hash),
                    x.raw_transaction.to_string(),
                    int(x.signed_at)
                ],
            )?;
        }
        t.commit()?;
        Ok(())
    }

    /// A session's signed revocations, oldest first.
    pub fn sweeps(&self, session: &Address) -> anyhow::Result<Vec<StoredSweepTx>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT session, chain_id, nonce, token, spender, hash, raw, signed_at FROM sweeps \
             WHERE session = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![a(session)], |r| {
            Ok(StoredSweepTx {
                session: parse_addr(&r.get::<_, String>(0)?)?,
                chain_id: r.get::<_, i64>(1)?.max(0) as u64,
                nonce: r.get::<_, i64>(2)?.max(0) as u64,
                token: parse_addr(&r.get::<_, String>(3)?)?,
                spender: parse_addr(&r.get::<_, String>(4)?)?,
                hash: parse_hash(&r.get::<_, String>(5)?)?,
                raw_transaction: Bytes::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                signed_at: r.get::<_, i64>(7)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn record_event(&self, event: Event) -> bool {
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

fn insert_policy(
    tx: &rusqlite::Transaction<'_>,
    session: &Address,
    policy_hash: &B256,
    policy_json: &str,
    auth: &OwnerAuth,
    now: u64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO policies (session, policy_hash, policy_json, owner, nonce, signature, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a(session),
            h(policy_hash),
            policy_json,
            a(&auth.owner),
            auth.nonce.to_string(),
            format!("0x{}", hex::encode(&auth.signature)),
            int(now),
        ],
    )
}

fn writer(conn: Arc<Mutex<Connection>>, rx: Receiver<WriterMsg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let mut events = Vec::with_capacity(batch.len());
        for m in batch {
            match m {
                WriterMsg::Event(e) => events.push(e),
                WriterMsg::Flush(ack) => acks.push(ack),
            }
        }
        if !events.is_empty() {
            let mut c = conn.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = write_events(&mut c, &events) {
                tracing::error!(error = %e, count = events.len(), "cannot store events");
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn write_events(conn: &mut Connection, events: &[Event]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO events (time_ms, call, session, outcome, code, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in events {
            st.execute(params![int(e.time_ms), e.call, e.session.as_ref().map(a), e.outcome, e.code, e.detail])?;
        }
    }
    tx.commit()
}
