//! Sessions that ended long ago, for the session retention ([`crate::retention`]): when a
//! session ended, as both backends compute and index it (schema version 6), the page of
//! ended sessions the retention reads, and the delete that forgets them.
//!
//! A session ended when it was revoked (`updated_at`, recorded with that state) or when its
//! validity ended (`valid_until`), whichever came first; a `lost` one when it was marked
//! lost (`updated_at`) — the host's own note, which can be wrong (a host pointed at another
//! enclave once marks every other identity's sessions lost): a full retention period from
//! the mark, never less, to notice (a review of 2026-12-06). The index holds that
//! one value per session, so a page costs the same however many sessions are stored (the
//! rows themselves carry their policy, up to tens of KiB: scanning them every few minutes
//! would read the whole table).

use super::backend::*;
use super::StoredState;
use alloy_primitives::Address;
use postgres::types::ToSql;

/// A session that ended ([`Backend::ended_sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSession {
    pub session: Address,
    /// Its stored state: `lost` (the host's note that its enclave is gone), `revoked`, or
    /// `active` past its validity.
    pub state: StoredState,
    /// The enclave that holds (or held) it.
    pub enclave: Address,
    /// When it ended, seconds.
    pub ended_at: u64,
    /// Whether a host of the database fronts its enclave now (`host_enclaves`): its
    /// enclave is not gone, whatever a `lost` mark says.
    pub fronted: bool,
}

/// When a session ended, as SQLite computes it. SQLite uses an index on an expression only
/// for that very expression: the index and every query take it from here.
macro_rules! sqlite_ended {
    () => {
        "(CASE state WHEN 'lost' THEN updated_at WHEN 'revoked' THEN MIN(updated_at, valid_until) ELSE valid_until END)"
    };
}

/// The same, as PostgreSQL computes it.
macro_rules! postgres_ended {
    () => {
        "(CASE state WHEN 'lost' THEN updated_at WHEN 'revoked' THEN LEAST(updated_at, valid_until) ELSE valid_until END)"
    };
}

pub(super) const SQLITE_ENDED: &str = sqlite_ended!();
pub(super) const POSTGRES_ENDED: &str = postgres_ended!();

/// SQLite's schema version 6: sessions by when they ended, with what the retention reads of
/// them and the columns of the expression (a page is read from the index alone: a held
/// session's row, read again every pass, would be its whole overflow chain).
pub(super) const SQLITE_V6: &str = concat!(
    "CREATE INDEX IF NOT EXISTS sessions_ended ON sessions(",
    sqlite_ended!(),
    ", session, state, enclave, updated_at, valid_until);"
);

/// PostgreSQL's schema version 6: sessions by when they ended.
pub(super) const POSTGRES_V6: &str =
    concat!("CREATE INDEX IF NOT EXISTS sessions_ended ON sessions(", postgres_ended!(), ", session);");

/// The page's query: ended before `?1`, after (`?2`, `?3`) in (end, address) order, at most
/// `?4`. The bound on the end comes first by itself so that both databases start the
/// index range there.
pub(super) fn page_sql(ended: &str, p: [&str; 4]) -> String {
    let [before, t, s, limit] = p;
    format!(
        "SELECT session, state, enclave, {ended},
         CAST(CASE WHEN EXISTS (SELECT 1 FROM host_enclaves h WHERE h.enclave = sessions.enclave) THEN 1 ELSE 0 END AS BIGINT)
         FROM sessions
         WHERE {ended} < {before} AND {ended} >= {t} AND ({ended} > {t} OR session > {s})
         ORDER BY {ended}, session LIMIT {limit}"
    )
}

/// Where a page starts: after `after` (end, address), or at the first.
fn start(after: Option<(u64, Address)>) -> (i64, String) {
    after.map_or((i64::MIN, String::new()), |(t, s)| (int(t), a(&s)))
}

fn ended_from(r: &impl Cells) -> anyhow::Result<EndedSession> {
    Ok(EndedSession {
        session: addr(&r.text(0)?, "session")?,
        state: StoredState::parse(&r.text(1)?)?,
        enclave: addr(&r.text(2)?, "enclave")?,
        ended_at: uint(r.int(3)?, "session end")?,
        fronted: r.int(4)? != 0,
    })
}

/// [`Backend::ended_sessions`] on SQLite.
pub(super) fn sqlite_page(
    conn: &rusqlite::Connection,
    before: i64,
    after: Option<(u64, Address)>,
    limit: usize,
) -> anyhow::Result<Vec<EndedSession>> {
    let sql = page_sql(SQLITE_ENDED, ["?1", "?2", "?3", "?4"]);
    let (t, s) = start(after);
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(rusqlite::params![before, t, s, int(limit as u64)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(ended_from(r)?);
    }
    Ok(out)
}

/// [`Backend::forget_sessions`] on SQLite.
pub(super) fn sqlite_forget(
    conn: &mut rusqlite::Connection,
    sessions: &[Address],
    before: i64,
) -> anyhow::Result<Vec<Address>> {
    let tx = conn.transaction()?;
    let mut gone = Vec::new();
    {
        let mut session = tx.prepare(&format!("DELETE FROM sessions WHERE session = ?1 AND {SQLITE_ENDED} < ?2"))?;
        let mut policies = tx.prepare("DELETE FROM policies WHERE session = ?1")?;
        let mut sweeps = tx.prepare("DELETE FROM sweeps WHERE session = ?1")?;
        for s in sessions {
            let key = a(s);
            // Still ended then: a session stored again since it was read (the same
            // address) is not forgotten.
            if session.execute(rusqlite::params![key, before])? > 0 {
                policies.execute([&key])?;
                sweeps.execute([&key])?;
                gone.push(*s);
            }
        }
    }
    tx.commit()?;
    Ok(gone)
}

/// [`Backend::ended_sessions`] on PostgreSQL.
pub(super) fn postgres_page(
    c: &mut impl postgres::GenericClient,
    before: i64,
    after: Option<(u64, Address)>,
    limit: usize,
) -> anyhow::Result<Vec<EndedSession>> {
    let sql = page_sql(POSTGRES_ENDED, ["$1", "$2", "$3", "$4"]);
    let (t, s) = start(after);
    let p: [&(dyn ToSql + Sync); 4] = [&before, &t, &s, &int(limit as u64)];
    c.query(&sql, &p)?.iter().map(ended_from).collect()
}

/// [`Backend::forget_sessions`] on PostgreSQL.
pub(super) fn postgres_forget(
    c: &mut postgres::Client,
    sessions: &[Address],
    before: i64,
) -> anyhow::Result<Vec<Address>> {
    let mut tx = c.transaction()?;
    let session = tx.prepare(&format!("DELETE FROM sessions WHERE session = $1 AND {POSTGRES_ENDED} < $2"))?;
    let policies = tx.prepare("DELETE FROM policies WHERE session = $1")?;
    let sweeps = tx.prepare("DELETE FROM sweeps WHERE session = $1")?;
    let mut gone = Vec::new();
    for s in sessions {
        let key = a(s);
        // Still ended then (see the SQLite one). Another host forgetting it at the same
        // moment waits for this row, then finds it gone and deletes nothing.
        if tx.execute(&session, &[&key, &before])? > 0 {
            tx.execute(&policies, &[&key])?;
            tx.execute(&sweeps, &[&key])?;
            gone.push(*s);
        }
    }
    tx.commit()?;
    Ok(gone)
}
