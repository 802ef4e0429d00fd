//! The audit log's retention in the database ([`crate::audit_retention`]): which enclaves'
//! logs are stored, how far each was pruned, and the delete that prunes a page.
//!
//! Only a prefix is ever deleted: the oldest entries of an enclave's chain, by `seq`, up to
//! the first one logged at or after the cutoff, and never the last entry stored (the tip a
//! pull continues from). What is left is still one chain, from the entry after the pruned
//! prefix to the head. How far each chain was pruned is kept in `audit_pruned` (schema
//! version 7), and a batch stored later (another host's, relayed) does not put pruned
//! entries back.

use super::backend::*;
use alloy_primitives::Address;
use postgres::types::ToSql;

/// SQLite's schema version 7.
pub(super) const SQLITE_V7: &str = "
CREATE TABLE IF NOT EXISTS audit_pruned (
    enclave      TEXT PRIMARY KEY,
    through_seq  INTEGER NOT NULL,
    pruned_at    INTEGER NOT NULL
);
";

/// PostgreSQL's schema version 7.
pub(super) const POSTGRES_V7: &str = "
CREATE TABLE IF NOT EXISTS audit_pruned (
    enclave      TEXT PRIMARY KEY,
    through_seq  BIGINT NOT NULL,
    pruned_at    BIGINT NOT NULL
);
";

/// What one page of pruning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries deleted.
    pub deleted: usize,
    /// The chain's pruned prefix now ends here (`None`: nothing was ever pruned).
    pub through: Option<u64>,
}

/// The last `seq` of the page's entries that may go: from the start of `rows` (by `seq`),
/// those logged before `before`, stopping at the first that was not, and never `tip`.
fn last_to_go(rows: &[(u64, u64)], before: u64, tip: u64) -> Option<u64> {
    rows.iter().take_while(|&&(seq, time)| time < before && seq < tip).last().map(|&(seq, _)| seq)
}

/// The page's rows and the tip, as both databases read them.
const PAGE_SQLITE: &str = "SELECT seq, time FROM audit_entries WHERE enclave = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
const PAGE_POSTGRES: &str = "SELECT seq, time FROM audit_entries WHERE enclave = $1 AND seq > $2 ORDER BY seq LIMIT $3";
const TIP_SQLITE: &str = "SELECT MAX(seq) FROM audit_entries WHERE enclave = ?1";
const TIP_POSTGRES: &str = "SELECT MAX(seq) FROM audit_entries WHERE enclave = $1";

fn row_pair(r: &impl Cells) -> anyhow::Result<(u64, u64)> {
    Ok((uint(r.int(0)?, "audit seq")?, uint(r.int(1)?, "audit time")?))
}

/// `audit_pruned`'s `through_seq` as a start: `-1` when nothing was pruned.
fn after(through: Option<u64>) -> i64 {
    through.map_or(-1, int)
}

/// [`AuditBackend::prune_audit`] on SQLite: one transaction.
pub(super) fn sqlite_prune(
    conn: &mut rusqlite::Connection,
    enclave: &Address,
    before: u64,
    limit: usize,
    now: u64,
) -> anyhow::Result<Pruned> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let e = a(enclave);
    let through = sqlite_through(&tx, enclave)?;
    let tip: Option<i64> = tx.query_row(TIP_SQLITE, [&e], |r| r.get(0))?;
    let Some(tip) = tip.map(|t| uint(t, "audit seq")).transpose()? else {
        return Ok(Pruned { deleted: 0, through });
    };
    let rows = {
        let mut st = tx.prepare_cached(PAGE_SQLITE)?;
        let mut q = st.query(rusqlite::params![e, after(through), int(limit as u64)])?;
        let mut rows = Vec::new();
        while let Some(r) = q.next()? {
            rows.push(row_pair(r)?);
        }
        rows
    };
    let Some(last) = last_to_go(&rows, before, tip) else { return Ok(Pruned { deleted: 0, through }) };
    let deleted =
        tx.execute("DELETE FROM audit_entries WHERE enclave = ?1 AND seq <= ?2", rusqlite::params![e, int(last)])?;
    tx.execute("DELETE FROM audit_gaps WHERE enclave = ?1 AND to_seq <= ?2", rusqlite::params![e, int(last)])?;
    tx.execute(
        "UPDATE audit_gaps SET from_seq = ?2 + 1 WHERE enclave = ?1 AND from_seq <= ?2",
        rusqlite::params![e, int(last)],
    )?;
    tx.execute(
        "INSERT INTO audit_pruned (enclave, through_seq, pruned_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(enclave) DO UPDATE SET through_seq = MAX(audit_pruned.through_seq, excluded.through_seq),
            pruned_at = excluded.pruned_at",
        rusqlite::params![e, int(last), int(now)],
    )?;
    tx.commit()?;
    Ok(Pruned { deleted, through: Some(through.map_or(last, |t| t.max(last))) })
}

/// [`AuditBackend::pruned_through`] on SQLite.
pub(super) fn sqlite_through(conn: &rusqlite::Connection, enclave: &Address) -> anyhow::Result<Option<u64>> {
    let mut st = conn.prepare_cached("SELECT through_seq FROM audit_pruned WHERE enclave = ?1")?;
    let mut q = st.query([a(enclave)])?;
    match q.next()? {
        Some(r) => Ok(Some(uint(r.int(0)?, "pruned seq")?)),
        None => Ok(None),
    }
}

/// [`AuditBackend::prune_audit`] on PostgreSQL: one transaction, the enclave's
/// `audit_pruned` row locked first so that two hosts of one database prune one after the
/// other.
pub(super) fn postgres_prune(
    c: &mut postgres::Client,
    enclave: &Address,
    before: u64,
    limit: usize,
    now: u64,
) -> anyhow::Result<Pruned> {
    let mut tx = c.transaction()?;
    let e = a(enclave);
    tx.execute(
        "INSERT INTO audit_pruned (enclave, through_seq, pruned_at) VALUES ($1, -1, $2) ON CONFLICT (enclave) DO NOTHING",
        &[&e, &int(now)],
    )?;
    let row = tx.query_one("SELECT through_seq FROM audit_pruned WHERE enclave = $1 FOR UPDATE", &[&e])?;
    let stored: i64 = row.get(0);
    let through = u64::try_from(stored).ok();
    let tip: Option<i64> = tx.query_one(TIP_POSTGRES, &[&e])?.get(0);
    let Some(tip) = tip.map(|t| uint(t, "audit seq")).transpose()? else {
        return Ok(Pruned { deleted: 0, through });
    };
    let p: [&(dyn ToSql + Sync); 3] = [&e, &stored, &int(limit as u64)];
    let rows = tx.query(PAGE_POSTGRES, &p)?.iter().map(row_pair).collect::<anyhow::Result<Vec<_>>>()?;
    let Some(last) = last_to_go(&rows, before, tip) else {
        // Nothing to go: a placeholder row made here (-1) is not kept.
        return Ok(Pruned { deleted: 0, through });
    };
    let deleted = tx.execute("DELETE FROM audit_entries WHERE enclave = $1 AND seq <= $2", &[&e, &int(last)])?;
    tx.execute("DELETE FROM audit_gaps WHERE enclave = $1 AND to_seq <= $2", &[&e, &int(last)])?;
    tx.execute("UPDATE audit_gaps SET from_seq = $2 + 1 WHERE enclave = $1 AND from_seq <= $2", &[&e, &int(last)])?;
    tx.execute(
        "UPDATE audit_pruned SET through_seq = GREATEST(through_seq, $2), pruned_at = $3 WHERE enclave = $1",
        &[&e, &int(last), &int(now)],
    )?;
    tx.commit()?;
    Ok(Pruned { deleted: deleted as usize, through: Some(through.map_or(last, |t| t.max(last))) })
}

/// [`postgres_through`], the enclave's row taken (a placeholder of `-1` made if none) and held
/// shared until the caller's transaction ends: [`postgres_prune`] holds it for update, so
/// the two never interleave.
pub(super) fn postgres_through_locked(
    tx: &mut postgres::Transaction<'_>,
    enclave: &Address,
    now: u64,
) -> anyhow::Result<Option<u64>> {
    let e = a(enclave);
    tx.execute(
        "INSERT INTO audit_pruned (enclave, through_seq, pruned_at) VALUES ($1, -1, $2) ON CONFLICT (enclave) DO NOTHING",
        &[&e, &int(now)],
    )?;
    let row = tx.query_one("SELECT through_seq FROM audit_pruned WHERE enclave = $1 FOR SHARE", &[&e])?;
    Ok(u64::try_from(row.get::<_, i64>(0)).ok())
}

/// [`AuditBackend::pruned_through`] on PostgreSQL (a placeholder row of `-1`: none).
pub(super) fn postgres_through(c: &mut impl postgres::GenericClient, enclave: &Address) -> anyhow::Result<Option<u64>> {
    let rows = c.query("SELECT through_seq FROM audit_pruned WHERE enclave = $1", &[&a(enclave)])?;
    Ok(rows.first().and_then(|r| u64::try_from(r.get::<_, i64>(0)).ok()))
}

#[cfg(test)]
mod tests {
    use super::last_to_go;

    #[test]
    fn only_a_prefix_logged_before_the_cutoff_goes_and_never_the_tip() {
        let rows = [(3, 10), (4, 11), (5, 30), (6, 12), (7, 13)];
        assert_eq!(last_to_go(&rows, 20, 100), Some(4), "stops at the first entry logged at or after the cutoff");
        assert_eq!(last_to_go(&rows, 100, 100), Some(7));
        assert_eq!(last_to_go(&rows, 100, 6), Some(5), "the tip stays");
        assert_eq!(last_to_go(&rows, 10, 100), None);
        assert_eq!(last_to_go(&[], 10, 100), None);
    }
}
