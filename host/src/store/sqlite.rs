//! The SQLite backend (bundled SQLite, WAL mode): the default, embedded, one host per file.
//!
//! Two connections to the file: one for sessions, policies, events and sweeps (shared by
//! the event writer thread and reads), one for the audit log, so that audit pulls never
//! wait behind an event batch.

use super::backend::*;
use super::{EndedSession, Event, PolicyRecord, StoredSession, StoredState, StoredSweepTx, SCHEMA_VERSION};
use alloy_primitives::{Address, Bytes, B256};
use anyhow::Context as _;
use bridle_common::audit::{AuditEntry, AuditHead};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Schema version 1: the host's records.
const V1: &str = "
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

/// Schema version 2: the audit log (created unversioned by earlier builds, hence
/// `IF NOT EXISTS`) and which enclave identity each host fronts.
const V2: &str = "
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
CREATE TABLE IF NOT EXISTS host_enclaves (
    host        TEXT PRIMARY KEY,
    enclave     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
";

/// Schema versions 3 and 4: no index by session on the rows written for every signature,
/// the audit log's (3) and the events' (4). Nothing reads either by session on any request path
/// (verifiers read the audit log by `seq`; a session's events are read only by tools, and
/// scan), and with many sessions each row's index entry landed on a page of its own: one
/// more page written and checkpointed per signature and per index — with 100 000 sessions
/// the host spent a fifth of its CPU on them (BENCHMARKS.md, "Scale"). An operator who
/// wants a session's events fast can add `CREATE INDEX events_session ON events(session)`
/// and pay that cost.
const V3: &str = "DROP INDEX IF EXISTS audit_entries_session;";

/// Schema version 4: no index of the events by session either (see V3).
const V4: &str = "DROP INDEX IF EXISTS events_session;";

/// Schema version 5: the lists read a page at a time (`GET /v1/owners/{o}/sessions`, a
/// session's policies by hash): an owner's sessions by (owner, creation, address), a
/// session's policies by hash. (`policies_session` and `sweeps_session` already order by
/// row id: SQLite's indexes end with it.)
const V5: &str = "
CREATE INDEX IF NOT EXISTS sessions_owner_created ON sessions(owner, created_at, session);
DROP INDEX IF EXISTS sessions_owner;
CREATE INDEX IF NOT EXISTS policies_session_hash ON policies(session, policy_hash);
";

/// Schema version 6: sessions by when they ended, for the session retention (see
/// [`super::ended`]).
const V6: &str = super::ended::SQLITE_V6;

/// Schema version 7: how far each enclave's audit chain was pruned (see
/// [`super::audit_prune`]).
const V7: &str = super::audit_prune::SQLITE_V7;

const MIGRATIONS: [(i64, &str); 7] = [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6), (7, V7)];

/// A SQLite database file.
pub struct SqliteBackend {
    main: Mutex<Connection>,
    audit: Mutex<Connection>,
}

impl Cells for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> anyhow::Result<String> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<String>> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> anyhow::Result<i64> {
        Ok(self.get(i)?)
    }
}

/// Page cache per connection, as SQLite's `cache_size` takes it (negative: KiB).
const SQLITE_CACHE_KIB: i64 = -65_536;

fn connect(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // In-memory databases answer "memory"; that is fine.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 64 MiB of page cache per connection (SQLite's default is 2 MiB): with 100 000
    // sessions the session-keyed indexes outgrow the default, and every insert then spills
    // and re-reads pages (BENCHMARKS.md, "Scale": a fifth of the host's CPU).
    conn.pragma_update(None, "cache_size", SQLITE_CACHE_KIB)?;
    migrate(&conn).with_context(|| format!("database {}", path.display()))?;
    Ok(conn)
}

/// Create or migrate the schema, in one immediate transaction (one writer at a time).
fn migrate(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let r = (|| {
        let version: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!("schema version {version} is newer than this host's {SCHEMA_VERSION}");
        }
        for (v, sql) in MIGRATIONS {
            if v > version {
                conn.execute_batch(sql).with_context(|| format!("cannot create schema version {v}"))?;
                conn.execute("INSERT INTO schema_version (version) VALUES (?1)", params![v])?;
            }
        }
        Ok(())
    })();
    conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    r
}

/// Run `sql` with `params` and read every row with `f`.
fn collect<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl Fn(&rusqlite::Row<'_>) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql)?;
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}

impl SqliteBackend {
    /// Open (or create) the database at `path` (`:memory:`: a throwaway one, private to
    /// this backend).
    pub fn open(path: &Path) -> anyhow::Result<Arc<SqliteBackend>> {
        let main = connect(path)?;
        let audit = connect(path)?;
        Ok(Arc::new(SqliteBackend { main: Mutex::new(main), audit: Mutex::new(audit) }))
    }

    fn main(&self) -> MutexGuard<'_, Connection> {
        self.main.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn audit(&self) -> MutexGuard<'_, Connection> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn insert_policy(tx: &Transaction<'_>, p: &PolicyRow) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO policies (session, policy_hash, policy_json, owner, nonce, signature, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![p.session, p.policy_hash, p.policy_json, p.owner, p.nonce, p.signature, p.received_at],
    )
}

impl Backend for SqliteBackend {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn shared(&self) -> bool {
        false
    }

    fn insert_session(&self, s: &SessionRow, p: &PolicyRow) -> anyhow::Result<()> {
        let mut conn = self.main();
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
                s.session,
                s.owner,
                s.agent,
                s.enclave,
                s.policy_hash,
                s.policy_json,
                s.created_at,
                s.valid_until,
                s.binding,
                s.now
            ],
        )?;
        insert_policy(&tx, p)?;
        tx.commit()?;
        Ok(())
    }

    fn update_policy(&self, valid_until: Option<i64>, p: &PolicyRow) -> anyhow::Result<()> {
        let mut conn = self.main();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE sessions SET policy_hash = ?2, policy_json = ?3,
                 valid_until = COALESCE(?4, valid_until), updated_at = ?5
             WHERE session = ?1",
            params![p.session, p.policy_hash, p.policy_json, valid_until, p.received_at],
        )?;
        insert_policy(&tx, p)?;
        tx.commit()?;
        Ok(())
    }

    fn mark_revoked(&self, sessions: &[Address], now: i64) -> anyhow::Result<Vec<Address>> {
        let mut conn = self.main();
        let tx = conn.transaction()?;
        let mut changed = Vec::new();
        {
            let mut st = tx.prepare(
                "UPDATE sessions SET state = 'revoked', updated_at = ?2 WHERE session = ?1 AND state = 'active'",
            )?;
            for s in sessions {
                if st.execute(params![a(s), now])? > 0 {
                    changed.push(*s);
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    fn unmark_lost(&self, session: &Address, state: StoredState, now: i64) -> anyhow::Result<bool> {
        let n = self.main().execute(
            "UPDATE sessions SET state = ?2, updated_at = ?3 WHERE session = ?1 AND state = 'lost'",
            params![a(session), state.as_str(), now],
        )?;
        Ok(n > 0)
    }

    fn enclave_seen(
        &self,
        host: &str,
        _previous: Option<Address>,
        current: &Address,
        now: i64,
    ) -> anyhow::Result<(Vec<Address>, usize)> {
        // One host per SQLite file: every other identity's sessions are lost.
        let mut conn = self.main();
        let tx = conn.transaction()?;
        let retired = collect(
            &tx,
            "SELECT DISTINCT enclave FROM sessions WHERE enclave != ?1 AND state != 'lost'",
            params![a(current)],
            |r| addr(&r.text(0)?, "enclave"),
        )?;
        let n = tx.execute(
            "UPDATE sessions SET state = 'lost', updated_at = ?2 WHERE enclave != ?1 AND state != 'lost'",
            params![a(current), now],
        )?;
        tx.execute(
            "INSERT INTO host_enclaves (host, enclave, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(host) DO UPDATE SET enclave = excluded.enclave, updated_at = excluded.updated_at",
            params![host, a(current), now],
        )?;
        // One host per file: a row of this host under an earlier name (its hostname or the
        // enclave's address changed) fronts nothing any more, and would keep its enclave's
        // lost sessions from being forgotten (a review of 2026-12-06).
        tx.execute("DELETE FROM host_enclaves WHERE host != ?1", params![host])?;
        tx.commit()?;
        Ok((retired, n))
    }

    fn session(&self, session: &Address) -> anyhow::Result<Option<StoredSession>> {
        let conn = self.main();
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE session = ?1");
        Ok(collect(&conn, &sql, params![a(session)], |r| session_from(r))?.pop())
    }

    fn sessions_by_owner(
        &self,
        owner: &Address,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredSession>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE owner = ?1 AND (created_at, session) > (?2, ?3)
             ORDER BY created_at, session LIMIT ?4"
        );
        let (time, session) = after.map_or((-1, String::new()), |(t, s)| (int(t), a(&s)));
        collect(&self.main(), &sql, params![a(owner), time, session, int(limit as u64)], |r| session_from(r))
    }

    fn session_states(&self) -> anyhow::Result<Vec<(Address, StoredState, Address)>> {
        collect(&self.main(), "SELECT session, state, enclave FROM sessions", [], |r| state_from(r))
    }

    fn policies(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, PolicyRecord)>> {
        let sql =
            format!("SELECT {POLICY_COLUMNS}, id FROM policies WHERE session = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
        collect(&self.main(), &sql, params![a(session), int(after), int(limit as u64)], |r| {
            Ok((row_id(r, 7)?, policy_from(r)?))
        })
    }

    fn policy_with_hash(&self, session: &Address, hash: &B256) -> anyhow::Result<Option<PolicyRecord>> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM policies WHERE session = ?1 AND policy_hash = ?2 ORDER BY id DESC LIMIT 1"
        );
        Ok(collect(&self.main(), &sql, params![a(session), h(hash)], |r| policy_from(r))?.pop())
    }

    fn events(&self, session: Option<&Address>, limit: usize) -> anyhow::Result<Vec<Event>> {
        // No index by session (V4): read back from the newest event until `limit` match.
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM events WHERE ?1 IS NULL OR session = ?1 ORDER BY id DESC LIMIT ?2");
        collect(&self.main(), &sql, params![session.map(a), int(limit as u64)], |r| event_from(r))
    }

    fn write_events(&self, events: &[Event]) -> anyhow::Result<()> {
        let mut conn = self.main();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO events (time_ms, call, session, outcome, code, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in events {
                st.execute(params![int(e.time_ms), e.call, e.session.as_ref().map(a), e.outcome, e.code, e.detail])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_sweeps(&self, txs: &[StoredSweepTx]) -> anyhow::Result<()> {
        let mut conn = self.main();
        let t = conn.transaction()?;
        for x in txs {
            t.execute(
                "INSERT INTO sweeps (session, chain_id, nonce, token, spender, hash, raw, signed_at)
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

    fn sweeps(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, StoredSweepTx)>> {
        let sql = format!("SELECT {SWEEP_COLUMNS}, id FROM sweeps WHERE session = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
        collect(&self.main(), &sql, params![a(session), int(after), int(limit as u64)], |r| {
            Ok((row_id(r, 8)?, sweep_from(r)?))
        })
    }

    fn sweeps_at(&self, session: &Address, chain: u64, nonce: u64) -> anyhow::Result<Vec<StoredSweepTx>> {
        let sql = format!(
            "SELECT {SWEEP_COLUMNS} FROM sweeps WHERE session = ?1 AND chain_id = ?2 AND nonce = ?3
             ORDER BY id DESC LIMIT ?4"
        );
        let p = params![a(session), int(chain), int(nonce), int(SWEEPS_AT_MAX as u64)];
        collect(&self.main(), &sql, p, |r| sweep_from(r))
    }

    fn ended_sessions(
        &self,
        before: i64,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<EndedSession>> {
        super::ended::sqlite_page(&self.main(), before, after, limit)
    }

    fn forget_sessions(&self, sessions: &[Address], before: i64) -> anyhow::Result<Vec<Address>> {
        super::ended::sqlite_forget(&mut self.main(), sessions, before)
    }

    fn prune_events(
        &self,
        before_ms: u64,
        keep: u64,
        after: u64,
        batch: usize,
    ) -> anyhow::Result<(usize, Option<u64>)> {
        let conn = self.main();
        let end: Option<i64> = conn.query_row(
            "SELECT MAX(id) FROM (SELECT id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2)",
            params![int(after), int(batch as u64)],
            |r| r.get(0),
        )?;
        let Some(end) = end else { return Ok((0, None)) };
        let n = conn.execute(
            "DELETE FROM events WHERE id > ?1 AND id <= ?2
             AND (time_ms < ?3 OR id <= (SELECT MAX(id) FROM events) - ?4)",
            params![int(after), end, int(before_ms), keep_param(keep)],
        )?;
        Ok((n, Some(uint(end, "event id")?)))
    }
}

impl AuditBackend for SqliteBackend {
    fn tip(&self, enclave: &Address) -> anyhow::Result<Option<Tip>> {
        let sql = "SELECT e.seq, e.hash, (SELECT identity_public_key FROM audit_heads WHERE enclave = ?1)
                   FROM audit_entries e WHERE e.enclave = ?1 ORDER BY e.seq DESC LIMIT 1";
        Ok(collect(&self.audit(), sql, params![a(enclave)], |r| tip_from(r))?.pop())
    }

    fn entry_hash(&self, enclave: &Address, seq: u64) -> anyhow::Result<Option<B256>> {
        let sql = "SELECT hash FROM audit_entries WHERE enclave = ?1 AND seq = ?2";
        Ok(collect(&self.audit(), sql, params![a(enclave), int(seq)], |r| hash(&r.text(0)?, "audit entry hash"))?.pop())
    }

    fn store_batch(&self, b: &Batch<'_>) -> Result<usize, BatchError> {
        let mut conn = self.audit();
        let tx = conn.transaction().map_err(anyhow::Error::from)?;
        let enclave = b.enclave();
        let e_hex = a(&enclave);
        let mut new = 0;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO audit_entries (enclave, seq, time, session, kind, code, hash, entry)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (enclave, seq) DO NOTHING",
                )
                .map_err(anyhow::Error::from)?;
            let mut stored = tx
                .prepare_cached("SELECT hash FROM audit_entries WHERE enclave = ?1 AND seq = ?2")
                .map_err(anyhow::Error::from)?;
            // A relayed batch may reach below what was pruned: those stay pruned.
            let pruned = super::audit_prune::sqlite_through(&tx, &enclave)?;
            for (e, hash) in b.chain.hashed().filter(|(e, _)| pruned.is_none_or(|p| e.seq > p)) {
                let row = EntryRow::of(e, hash)?;
                let n = ins
                    .execute(params![e_hex, row.seq, row.time, row.session, row.kind, row.code, row.hash, row.json])
                    .map_err(anyhow::Error::from)?;
                new += n;
                if n == 0 {
                    let s: Option<String> = stored
                        .query_row(params![e_hex, row.seq], |r| r.get(0))
                        .optional()
                        .map_err(anyhow::Error::from)?;
                    check_same(&enclave, (e, hash), &row, s)?;
                }
            }
        }
        let now = int(b.now);
        let head = b.chain.head();
        let head_json = serde_json::to_string(head).map_err(anyhow::Error::from)?;
        let r: rusqlite::Result<()> = (|| {
            if let Some((from, to)) = b.gap {
                tx.execute(
                    "INSERT INTO audit_gaps (enclave, from_seq, to_seq, noticed_at) SELECT ?1, ?2, ?3, ?4
                     WHERE NOT EXISTS (SELECT 1 FROM audit_gaps WHERE enclave = ?1 AND from_seq = ?2 AND to_seq = ?3)",
                    params![e_hex, int(from), int(to), now],
                )?;
            }
            tx.execute(
                "INSERT INTO audit_heads (enclave, identity_public_key, seq, hash, head, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(enclave) DO UPDATE SET
                    identity_public_key = COALESCE(excluded.identity_public_key, audit_heads.identity_public_key),
                    seq = excluded.seq, hash = excluded.hash, head = excluded.head, updated_at = excluded.updated_at
                 WHERE excluded.seq >= audit_heads.seq",
                params![e_hex, b.public_key.map(|p| p.to_string()), int(head.seq), h(&head.hash), head_json, now],
            )?;
            Ok(())
        })();
        r.map_err(anyhow::Error::from)?;
        tx.commit().map_err(anyhow::Error::from)?;
        Ok(new)
    }

    fn latest_enclave(&self) -> anyhow::Result<Option<Address>> {
        let sql = "SELECT enclave FROM audit_heads ORDER BY updated_at DESC, rowid DESC LIMIT 1";
        collect(&self.audit(), sql, [], |r| addr(&r.text(0)?, "enclave")).map(|mut v| v.pop())
    }

    fn head(&self, enclave: &Address) -> anyhow::Result<(Option<AuditHead>, Option<Bytes>)> {
        let sql = "SELECT head, identity_public_key FROM audit_heads WHERE enclave = ?1";
        Ok(collect(&self.audit(), sql, params![a(enclave)], |r| head_from(r))?.pop().unwrap_or((None, None)))
    }

    fn entries(&self, enclave: &Address, since: u64, limit: usize) -> anyhow::Result<Vec<AuditEntry>> {
        let sql = "SELECT seq, entry FROM audit_entries WHERE enclave = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3";
        collect(&self.audit(), sql, params![a(enclave), int(since), int(limit as u64)], |r| {
            entry_from(r.int(0)?, &r.text(1)?)
        })
    }

    fn entry_texts(
        &self,
        enclave: &Address,
        from: u64,
        through: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<(u64, String)>> {
        let sql =
            "SELECT seq, entry FROM audit_entries WHERE enclave = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4";
        collect(&self.audit(), sql, params![a(enclave), int(from), int(through), int(limit as u64)], |r| {
            Ok((uint(r.int(0)?, "audit seq")?, r.text(1)?))
        })
    }

    fn gaps(&self, enclave: &Address) -> anyhow::Result<Vec<(u64, u64)>> {
        let sql = "SELECT DISTINCT from_seq, to_seq FROM audit_gaps WHERE enclave = ?1 ORDER BY from_seq, to_seq";
        collect(&self.audit(), sql, params![a(enclave)], |r| gap_from(r))
    }

    fn audit_enclaves(&self) -> anyhow::Result<Vec<Address>> {
        collect(&self.audit(), "SELECT enclave FROM audit_heads ORDER BY enclave", [], |r| addr(&r.text(0)?, "enclave"))
    }

    fn prune_audit(&self, enclave: &Address, before: u64, limit: usize, now: u64) -> anyhow::Result<super::Pruned> {
        super::audit_prune::sqlite_prune(&mut self.audit(), enclave, before, limit, now)
    }

    fn pruned_through(&self, enclave: &Address) -> anyhow::Result<Option<u64>> {
        super::audit_prune::sqlite_through(&self.audit(), enclave)
    }
}
