//! The store on both backends: schema versions, untrusted rows, two hosts on one database.

use super::backend::{PolicyRow, SessionRow};
use super::*;

/// A fresh database of each backend: a SQLite file, then a new database on a real
/// PostgreSQL server (skipped, saying why, when PostgreSQL is absent and this is not CI).
fn each_database(tag: &str, f: impl Fn(&Database)) {
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![Database::Sqlite(dir.path().join("host.sqlite"))];
    if let Some(url) = crate::test_pg::fresh_database(tag) {
        dbs.push(Database::parse(&url).unwrap());
    }
    for db in dbs {
        eprintln!("backend: {}", db.kind());
        f(&db);
    }
}

/// Run raw SQL on the database, behind the store's back (a tampering or older writer).
fn exec(db: &Database, sql: &str) {
    match db {
        Database::Sqlite(p) => rusqlite::Connection::open(p).unwrap().execute_batch(sql).unwrap(),
        Database::Postgres(u) => u.config().unwrap().connect(::postgres::NoTls).unwrap().batch_execute(sql).unwrap(),
    }
}

/// The first column of every row `sql` returns, read behind the store's back.
fn column<T>(db: &Database, sql: &str) -> Vec<T>
where
    T: rusqlite::types::FromSql + for<'a> ::postgres::types::FromSql<'a>,
{
    match db {
        Database::Sqlite(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            let mut st = c.prepare(sql).unwrap();
            st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        }
        Database::Postgres(u) => {
            let mut c = u.config().unwrap().connect(::postgres::NoTls).unwrap();
            c.query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
        }
    }
}

fn versions(db: &Database) -> Vec<i64> {
    column(db, "SELECT version FROM schema_version ORDER BY version")
}

fn session(n: u8, enclave: Address) -> (SessionRow, PolicyRow) {
    let s = Address::repeat_byte(n);
    let row = SessionRow {
        session: a(&s),
        owner: a(&Address::repeat_byte(0xa1)),
        agent: a(&Address::repeat_byte(0xb2)),
        enclave: a(&enclave),
        policy_hash: h(&B256::repeat_byte(7)),
        policy_json: "{\"name\":\"p\"}".into(),
        created_at: 1000,
        valid_until: 2000,
        binding: "{}".into(),
        now: 1000,
    };
    let policy = PolicyRow {
        session: row.session.clone(),
        policy_hash: row.policy_hash.clone(),
        policy_json: row.policy_json.clone(),
        owner: row.owner.clone(),
        nonce: "1".into(),
        signature: "0x1234".into(),
        received_at: 1000,
    };
    (row, policy)
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_refused() {
    each_database("schema_versioned", |db| {
        open(db).unwrap();
        open(db).unwrap();
        assert_eq!(versions(db), vec![1, 2, 3, 4, 5, 6, 7]);
        exec(db, "INSERT INTO schema_version (version) VALUES (99)");
        let e = format!("{:#}", open(db).err().expect("a newer schema is refused"));
        assert!(e.contains("schema version 99 is newer"), "{e}");
    });
}

/// A database written by the previous build (schema 1, no audit tables) is migrated.
#[test]
fn a_version_1_sqlite_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::Sqlite(dir.path().join("old.sqlite"));
    let old = rusqlite::Connection::open(dir.path().join("old.sqlite")).unwrap();
    old.execute_batch(
        "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
         CREATE TABLE sessions (session TEXT PRIMARY KEY, owner TEXT NOT NULL, agent TEXT NOT NULL,
             enclave TEXT NOT NULL, policy_hash TEXT NOT NULL, policy_json TEXT NOT NULL,
             created_at INTEGER NOT NULL, valid_until INTEGER NOT NULL, state TEXT NOT NULL,
             binding TEXT NOT NULL, updated_at INTEGER NOT NULL);
         CREATE TABLE policies (id INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL,
             policy_hash TEXT NOT NULL, policy_json TEXT NOT NULL, owner TEXT NOT NULL,
             nonce TEXT NOT NULL, signature TEXT NOT NULL, received_at INTEGER NOT NULL);
         CREATE INDEX policies_session ON policies(session);",
    )
    .unwrap();
    let (row, _) = session(0x51, Address::repeat_byte(0x1d));
    old.execute(
        "INSERT INTO sessions VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1000, 2000, 'active', '{}', 1000)",
        rusqlite::params![row.session, row.owner, row.agent, row.enclave, row.policy_hash, row.policy_json],
    )
    .unwrap();
    drop(old);
    let b = open(&db).unwrap();
    assert_eq!(versions(&db), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(b.audit.pruned_through(&Address::repeat_byte(0x1d)).unwrap(), None);
    let s = b.store.session(&Address::repeat_byte(0x51)).unwrap().unwrap();
    assert_eq!((s.state, s.created_at), (StoredState::Active, 1000));
    assert!(b.audit.tip(&Address::repeat_byte(0x1d)).unwrap().is_none());
}

/// The database is untrusted: a row that does not parse is an error naming what is wrong.
#[test]
fn bad_rows_are_errors_not_panics() {
    each_database("bad_rows", |db| {
        let b = open(db).unwrap().store;
        let enclave = Address::repeat_byte(0x1d);
        let (row, pol) = session(0x51, enclave);
        b.insert_session(&row, &pol).unwrap();
        let s = Address::repeat_byte(0x51);
        // The CHECK on `state` is the database's own; a tamperer can lift it.
        exec(
            db,
            match db {
                Database::Sqlite(_) => "PRAGMA ignore_check_constraints = ON; UPDATE sessions SET state = 'zombie'",
                Database::Postgres(_) => {
                    "ALTER TABLE sessions DROP CONSTRAINT sessions_state_check; UPDATE sessions SET state = 'zombie'"
                }
            },
        );
        assert!(format!("{:#}", b.session(&s).unwrap_err()).contains("zombie"));
        for (sql, what) in [
            ("UPDATE sessions SET state = 'active', policy_json = 'not json'", "policy is not JSON"),
            ("UPDATE sessions SET policy_json = '{}', owner = '0xnope'", "owner"),
            ("UPDATE sessions SET owner = '0x00000000000000000000000000000000000000a1', created_at = -5", "negative"),
        ] {
            exec(db, sql);
            let e = format!("{:#}", b.session(&s).unwrap_err());
            assert!(e.contains(what), "{sql}: {e}");
        }
        exec(db, "UPDATE policies SET nonce = 'x'");
        assert!(format!("{:#}", b.policies(&s, 0, 10).unwrap_err()).contains("nonce"));
        exec(db, "UPDATE policies SET nonce = '1', signature = 'zz'");
        assert!(format!("{:#}", b.policies(&s, 0, 10).unwrap_err()).contains("signature"));
    });
}

/// A session's events: only its own, the latest `limit` of them (oldest first). Versions 3
/// and 4 took away the session indexes of the rows written for every signature (events, audit
/// entries): nothing on a request path read them, and each cost a page write per signature
/// with many sessions.
#[test]
fn a_sessions_events_without_a_session_index() {
    each_database("events_by_session", |db| {
        let st = Store::new(open(db).unwrap().store, "host-a", 16).unwrap();
        let (s1, s2) = (Address::repeat_byte(0x51), Address::repeat_byte(0x52));
        for i in 0..7 {
            let s = if i % 3 == 0 { s1 } else { s2 };
            assert!(st.record_event(Event::now(&format!("call{i}"), Some(s), "ok", None)));
        }
        assert!(st.record_event(Event::now("status", None, "ok", None)));
        st.flush();
        let calls = |s: Option<&Address>, limit| -> Vec<String> {
            st.events(s, limit).unwrap().into_iter().map(|e| e.call).collect()
        };
        assert_eq!(calls(Some(&s1), 10), ["call0", "call3", "call6"]);
        assert_eq!(calls(Some(&s2), 2), ["call4", "call5"]);
        assert_eq!(calls(None, 3), ["call5", "call6", "status"]);
        assert!(calls(Some(&Address::repeat_byte(0x53)), 10).is_empty());
        let sql = match db {
            Database::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
            Database::Postgres(_) => {
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
            }
        };
        let names: Vec<String> = column(db, sql);
        assert!(names.iter().any(|n| n == "sessions_owner_created"), "{names:?}");
        for gone in ["events_session", "audit_entries_session", "sessions_owner"] {
            assert!(!names.iter().any(|n| n == gone), "{gone} in {names:?}");
        }
    });
}

/// The sweeper's read of a session's current policy is one row, the latest with the hash
/// the enclave reports, however long the history (a review of 2026-12-05).
#[test]
fn the_policy_with_a_hash_is_the_latest_of_that_hash() {
    each_database("policy_with_hash", |db| {
        let b = open(db).unwrap().store;
        let (row, pol) = session(0x61, Address::repeat_byte(0xe1));
        b.insert_session(&row, &pol).unwrap();
        let s = Address::repeat_byte(0x61);
        let (seven, eight) = (B256::repeat_byte(7), B256::repeat_byte(8));
        for (i, hash) in [eight, seven, eight].iter().enumerate() {
            let update = PolicyRow {
                policy_hash: h(hash),
                policy_json: format!("{{\"name\":\"v{i}\"}}"),
                nonce: format!("{}", i + 2),
                ..pol.clone()
            };
            b.update_policy(None, &update).unwrap();
        }
        let name = |hash: &B256| b.policy_with_hash(&s, hash).unwrap().map(|r| r.policy["name"].clone());
        assert_eq!(name(&seven), Some(serde_json::json!("v1")));
        assert_eq!(name(&eight), Some(serde_json::json!("v2")));
        assert_eq!(name(&B256::repeat_byte(9)), None);
        assert_eq!(b.policy_with_hash(&Address::repeat_byte(0x62), &seven).unwrap().map(|r| r.policy_hash), None);
    });
}

/// A NUL in one event's text (quoted from what a stranger sent) does not drop the batch
/// written with it: on PostgreSQL, which stores no NUL, it did (a review of 2026-12-05).
#[test]
fn an_event_quoting_a_nul_is_stored_with_the_others() {
    each_database("event_nul", |db| {
        let st = Store::new(open(db).unwrap().store, "host-a", 16).unwrap();
        let s = Address::repeat_byte(0x51);
        let mut poisoned = Event::now("sign_if_allowed", Some(s), "denied", Some("argument_rejected"));
        poisoned.detail = Some("field `\0` has no type".into());
        assert!(st.record_event(Event::now("before", Some(s), "ok", None)));
        assert!(st.record_event(poisoned));
        assert!(st.record_event(Event::now("after", Some(s), "ok", None)));
        st.flush();
        let events = st.events(Some(&s), 10).unwrap();
        let calls: Vec<&str> = events.iter().map(|e| e.call.as_str()).collect();
        assert_eq!(calls, ["before", "sign_if_allowed", "after"]);
        assert_eq!(events[1].detail.as_deref(), Some("field `\u{FFFD}` has no type"));
    });
}

/// Two hosts, each in front of its own enclave, on one database.
#[test]
fn two_hosts_on_one_database() {
    each_database("two_hosts_one_database", |db| {
        let (ea, eb) = (Address::repeat_byte(0xea), Address::repeat_byte(0xeb));
        let a = Store::new(open(db).unwrap().store, "host-a", 16).unwrap();
        let b = Store::new(open(db).unwrap().store, "host-b", 16).unwrap();
        a.enclave_changed(None, &ea).unwrap();
        let (row, pol) = session(0x51, ea);
        a.backend.insert_session(&row, &pol).unwrap();
        let s = Address::repeat_byte(0x51);
        // B did not see it being stored: unknown in its memory until read.
        assert_eq!(b.session_state(&s), None);
        assert_eq!(b.load_session_state(&s).unwrap(), Some((StoredState::Active, ea)));
        assert_eq!(b.session_state(&s), Some((StoredState::Active, ea)));
        // Events of both, ids from the database.
        for st in [&a, &b] {
            assert!(st.record_event(Event::now("sign_if_allowed", Some(s), "ok", None)));
            st.flush();
        }
        assert_eq!(a.events(Some(&s), 10).unwrap().len(), 2);
        // B meets its enclave: with a shared database, A's session stays active; a SQLite
        // file belongs to one host, so there it is lost.
        b.enclave_changed(None, &eb).unwrap();
        let shared = db.kind() == "postgres";
        let want = if shared { StoredState::Active } else { StoredState::Lost };
        assert_eq!(a.get_session(&s).unwrap().unwrap().state, want);
        // A's enclave restarts: A's sessions are lost, for B too once read.
        a.enclave_changed(Some(ea), &Address::repeat_byte(0xec)).unwrap();
        assert_eq!(a.session_state(&s).map(|x| x.0), Some(StoredState::Lost));
        assert_eq!(b.load_session_state(&s).unwrap().map(|x| x.0), Some(StoredState::Lost));
        // A host restarted in front of a restarted enclave (no `previous`): what it fronted
        // before, recorded in the database, is lost.
        let (row, pol) = session(0x52, Address::repeat_byte(0xec));
        a.backend.insert_session(&row, &pol).unwrap();
        let a2 = Store::new(open(db).unwrap().store, "host-a", 16).unwrap();
        assert_eq!(a2.enclave_changed(None, &Address::repeat_byte(0xed)).unwrap(), 1);
        let st = a2.get_session(&Address::repeat_byte(0x52)).unwrap().unwrap().state;
        assert_eq!(st, StoredState::Lost);
    });
}

/// The lists a stranger can grow are read a page at a time, in a stable order: an owner's
/// sessions by (creation, address) — two created in the same second are neither skipped nor
/// repeated —, a session's policy records and sweeps by row id; and the sweeper reads one
/// lane's revocations only (a review of 2026-12-05).
#[test]
fn lists_are_read_a_page_at_a_time() {
    each_database("pages", |db| {
        let b = open(db).unwrap().store;
        let owner = Address::repeat_byte(0xa1);
        // Five sessions, three created in the same second, inserted out of order.
        for (n, at) in [(0x55, 1003), (0x53, 1001), (0x52, 1001), (0x54, 1001), (0x51, 1000)] {
            let (mut row, pol) = session(n, Address::repeat_byte(0xe1));
            row.created_at = at;
            b.insert_session(&row, &pol).unwrap();
        }
        let (mut other, pol) = session(0x60, Address::repeat_byte(0xe1));
        other.owner = a(&Address::repeat_byte(0xa2));
        b.insert_session(&other, &PolicyRow { owner: other.owner.clone(), ..pol }).unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = b.sessions_by_owner(&owner, after, 2).unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|s| s.session));
            match page.last() {
                Some(s) if page.len() == 2 => after = Some((s.created_at, s.session)),
                _ => break,
            }
        }
        let want: Vec<Address> = [0x51, 0x52, 0x53, 0x54, 0x55].map(Address::repeat_byte).to_vec();
        assert_eq!(seen, want);

        // Policy records: the first one plus six updates, read three at a time.
        let s = Address::repeat_byte(0x51);
        let (_, pol) = session(0x51, Address::repeat_byte(0xe1));
        for i in 0..6 {
            let update = PolicyRow { nonce: format!("{}", i + 2), ..pol.clone() };
            b.update_policy(None, &update).unwrap();
        }
        let (mut nonces, mut after) = (Vec::new(), 0);
        loop {
            let page = b.policies(&s, after, 3).unwrap();
            nonces.extend(page.iter().map(|(_, r)| r.nonce));
            let Some((id, _)) = page.last() else { break };
            assert!(*id > after);
            after = *id;
        }
        assert_eq!(nonces, [1, 2, 3, 4, 5, 6, 7]);

        // Sweeps: paged by id; the sweeper's read is one lane at one nonce, newest first.
        let tx = |chain: u64, nonce: u64, byte: u8| StoredSweepTx {
            session: s,
            chain_id: chain,
            nonce,
            token: Address::repeat_byte(0x70),
            spender: Address::repeat_byte(0x71),
            hash: B256::repeat_byte(byte),
            raw_transaction: Bytes::from(vec![byte]),
            signed_at: 1000,
        };
        let all = [tx(1, 5, 1), tx(1, 6, 2), tx(8453, 5, 3), tx(1, 5, 4)];
        b.insert_sweeps(&all).unwrap();
        let first = b.sweeps(&s, 0, 3).unwrap();
        let rest = b.sweeps(&s, first[2].0, 3).unwrap();
        let paged: Vec<StoredSweepTx> = first.into_iter().chain(rest).map(|(_, t)| t).collect();
        assert_eq!(paged, all);
        let at: Vec<B256> = b.sweeps_at(&s, 1, 5).unwrap().into_iter().map(|t| t.hash).collect();
        assert_eq!(at, [B256::repeat_byte(4), B256::repeat_byte(1)]);
        assert!(b.sweeps_at(&s, 1, 7).unwrap().is_empty());
    });
}

/// Events are kept for a time and up to a count, then deleted oldest first, a window at a
/// time; the audit log is not touched. A run of events stamped ahead of the others (a clock
/// set forward) delays nothing behind it (a review of 2026-12-05).
#[test]
fn events_are_pruned_by_age_and_by_count() {
    each_database("events_pruned", |db| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let st = std::sync::Arc::new(Store::new(open(db).unwrap().store, "host-a", 64).unwrap());
        // Every window, as `prune_pass` walks them, at a fixed time.
        let pass = |r: &EventRetention, now_ms: u64| {
            let (mut deleted, mut after) = (0, 0);
            loop {
                let (n, end) = st.prune_window(now_ms, r, after).unwrap();
                let Some(end) = end else { return deleted };
                deleted += n as u64;
                after = end;
            }
        };
        let s = Address::repeat_byte(0x51);
        for t in 0..30u64 {
            let e = Event { time_ms: 1_000 + t * 1_000, ..Event::now(&format!("call{t}"), Some(s), "ok", None) };
            assert!(st.record_event(e));
        }
        st.flush();
        let calls = || -> Vec<String> { st.events(None, 100).unwrap().into_iter().map(|e| e.call).collect() };
        let keep_all = EventRetention { max_age: None, max_rows: 0 };
        assert_eq!(pass(&keep_all, 1_000_000), 0);
        assert_eq!(calls().len(), 30);
        // By age: those stored before 11 s (times 1..=10 s) go.
        let by_age = EventRetention { max_age: Some(std::time::Duration::from_secs(20)), max_rows: 0 };
        assert_eq!(pass(&by_age, 31_000), 10);
        assert_eq!(calls().first().map(String::as_str), Some("call10"));
        // By count: the newest 5 stay.
        let by_count = EventRetention { max_age: None, max_rows: 5 };
        assert_eq!(pass(&by_count, 31_000), 15);
        assert_eq!(calls(), ["call25", "call26", "call27", "call28", "call29"]);
        // More than a window of events stamped far ahead, then more than two windows of old
        // ones: every old one goes, and the ones ahead stay.
        let (ahead, old) = (PRUNE_BATCH as u64 + 3, PRUNE_BATCH as u64 * 2 + 7);
        for (n, time) in [(ahead, now_ms() + 3_600_000), (old, 500)] {
            for chunk in (0..n).step_by(1000) {
                let batch: Vec<Event> = (chunk..(chunk + 1000).min(n))
                    .map(|_| Event { time_ms: time, ..Event::now("x", None, "ok", None) })
                    .collect();
                st.backend.write_events(&batch).unwrap();
            }
        }
        assert_eq!(pass(&by_age, 30_000), old);
        assert_eq!(st.events(None, 100_000).unwrap().len() as u64, 5 + ahead);
        // And through the pruner's own pass.
        for chunk in (0..old).step_by(1000) {
            let batch: Vec<Event> = (chunk..(chunk + 1000).min(old))
                .map(|_| Event { time_ms: 500, ..Event::now("x", None, "ok", None) })
                .collect();
            st.backend.write_events(&batch).unwrap();
        }
        let by_age_now = EventRetention { max_age: Some(std::time::Duration::from_secs(1)), max_rows: 0 };
        let st2 = st.clone();
        let n = rt.block_on(async move { crate::prune_pass(&st2, &by_age_now, std::time::Duration::ZERO).await });
        // Everything but the events stamped ahead (their time is still in the future).
        assert_eq!(n.unwrap(), old + 5);
        assert_eq!(st.events(None, 100_000).unwrap().len() as u64, ahead);
    });
}

/// Store `0xnn…` (of enclave 0xe1…) valid until `valid_until`, then give it `state` as of
/// `at` (behind the store's back, as revocation and loss record it), with a policy update
/// and a sweep.
fn ended_at(db: &Database, b: &dyn Backend, n: u8, valid_until: i64, state: &str, at: i64) -> Address {
    let (mut row, pol) = session(n, Address::repeat_byte(0xe1));
    row.valid_until = valid_until;
    b.insert_session(&row, &pol).unwrap();
    b.update_policy(None, &PolicyRow { nonce: "2".into(), ..pol }).unwrap();
    let s = Address::repeat_byte(n);
    let sweep = StoredSweepTx {
        session: s,
        chain_id: 1,
        nonce: u64::from(n),
        token: Address::repeat_byte(0x70),
        spender: Address::repeat_byte(0x71),
        hash: B256::repeat_byte(n),
        raw_transaction: Bytes::from(vec![n]),
        signed_at: 1000,
    };
    b.insert_sweeps(&[sweep]).unwrap();
    exec(db, &format!("UPDATE sessions SET state = '{state}', updated_at = {at} WHERE session = '{}'", a(&s)));
    s
}

/// The retention's read: only the sessions that ended before the cutoff — revoked or lost
/// then, or valid until then; an active session's `updated_at` is no end —, by (end,
/// address), a page of at most `limit` at a time, every one once.
#[test]
fn ended_sessions_are_read_by_when_they_ended_a_page_at_a_time() {
    each_database("ended_sessions", |db| {
        let b = open(db).unwrap().store;
        let b = b.as_ref();
        let cut = 1000;
        // (byte, valid until, state, recorded at) → ended at
        let rows = [
            (0x51, 500, "active", 100),    // 500: past its validity
            (0x52, 5000, "revoked", 300),  // 300
            (0x53, 5000, "lost", 400),     // 400
            (0x54, 5000, "active", 100),   // not ended: updated long ago, valid until 5000
            (0x55, 5000, "revoked", 2000), // 2000: after the cutoff
            (0x56, 999, "active", 100),    // 999
            (0x57, 600, "revoked", 800),   // 600: its validity ended before its revocation
            (0x50, 5000, "lost", 500),     // 500: ties with 0x51, before it by address
            (0x58, 1000, "lost", 1000),    // 1000: not before the cutoff
        ];
        for (n, until, state, at) in rows {
            ended_at(db, b, n, until, state, at);
        }
        let want: Vec<(u8, u64, StoredState)> = vec![
            (0x52, 300, StoredState::Revoked),
            (0x53, 400, StoredState::Lost),
            (0x50, 500, StoredState::Lost),
            (0x51, 500, StoredState::Active),
            (0x57, 600, StoredState::Revoked),
            (0x56, 999, StoredState::Active),
        ];
        for limit in [1, 2, 4, 100] {
            let (mut seen, mut after) = (Vec::new(), None);
            loop {
                let page = b.ended_sessions(cut, after, limit).unwrap();
                assert!(page.len() <= limit, "{limit}: {page:?}");
                seen.extend(page.iter().map(|e| (e.session, e.ended_at, e.state)));
                assert!(page.iter().all(|e| e.enclave == Address::repeat_byte(0xe1)));
                match page.last() {
                    Some(e) if page.len() == limit => after = Some((e.ended_at, e.session)),
                    _ => break,
                }
            }
            let want: Vec<_> = want.iter().map(|(n, t, st)| (Address::repeat_byte(*n), *t, *st)).collect();
            assert_eq!(seen, want, "limit {limit}");
        }
        assert!(b.ended_sessions(300, None, 10).unwrap().is_empty());
    });
}

/// Forgetting deletes a session's row, policy records and sweeps — nothing of another
/// session, nor its events —, and only while it still ended before the cutoff (one stored
/// again since it was read is kept). The store drops it from memory too.
#[test]
fn forgetting_deletes_a_session_its_policies_and_sweeps_and_nothing_else() {
    each_database("forget_sessions", |db| {
        let st = Store::new(open(db).unwrap().store, "host-a", 16).unwrap();
        let b = st.backend.as_ref();
        let (gone, other, live) = (
            ended_at(db, b, 0x61, 500, "revoked", 300),
            ended_at(db, b, 0x62, 500, "lost", 300),
            ended_at(db, b, 0x63, 5000, "active", 300),
        );
        for s in [gone, other, live] {
            st.load_session_state(&s).unwrap();
            assert!(st.record_event(Event::now("sign_if_allowed", Some(s), "ok", None)));
        }
        st.flush();
        let count = |table: &str, s: &Address| -> i64 {
            column::<i64>(db, &format!("SELECT COUNT(*) FROM {table} WHERE session = '{}'", a(s)))[0]
        };
        assert_eq!((count("policies", &gone), count("sweeps", &gone)), (2, 1));
        // The live one is named, and is not ended: kept.
        assert_eq!(st.forget_sessions(&[gone, live], 1000).unwrap(), vec![gone]);
        assert_eq!(st.get_session(&gone).unwrap(), None);
        assert_eq!(st.session_state(&gone), None);
        assert!(!st.known_sessions().iter().any(|(s, _, _)| *s == gone));
        for table in ["sessions", "policies", "sweeps"] {
            assert_eq!(count(table, &gone), 0, "{table}");
        }
        assert_eq!(st.events(Some(&gone), 10).unwrap().len(), 1, "events are not the retention's");
        for s in [other, live] {
            assert_eq!((count("sessions", &s), count("policies", &s), count("sweeps", &s)), (1, 2, 1));
            assert!(st.session_state(&s).is_some());
        }
        // Forgotten already: nothing more. Stored again (the same address, now active and
        // valid): kept.
        assert!(st.forget_sessions(&[gone], 1000).unwrap().is_empty());
        exec(db, &format!("UPDATE sessions SET state = 'active', valid_until = 5000 WHERE session = '{}'", a(&other)));
        assert!(st.forget_sessions(&[other], 1000).unwrap().is_empty());
        assert_eq!(count("policies", &other), 2);
    });
}

/// The page is read through the index of when sessions ended, from the page's start to the
/// cutoff, in its order (no sort): it costs the same however many sessions are stored.
#[test]
fn ended_sessions_are_read_through_their_index() {
    each_database("ended_index", |db| {
        open(db).unwrap();
        let plan: Vec<String> = match db {
            Database::Sqlite(p) => {
                let sql = ended::page_sql(ended::SQLITE_ENDED, ["1000", "5", "'0x'", "10"]);
                let c = rusqlite::Connection::open(p).unwrap();
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                st.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect()
            }
            Database::Postgres(u) => {
                let sql = ended::page_sql(ended::POSTGRES_ENDED, ["1000", "5", "'0x'", "10"]);
                let mut c = u.config().unwrap().connect(::postgres::NoTls).unwrap();
                // An empty table: without this, a sequential scan is cheaper.
                c.batch_execute("SET enable_seqscan = off").unwrap();
                c.query(&format!("EXPLAIN {sql}"), &[]).unwrap().iter().map(|r| r.get(0)).collect()
            }
        };
        let plan = plan.join("\n");
        assert!(plan.contains("sessions_ended"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE") && !plan.contains("Sort"), "{plan}");
        if db.kind() == "sqlite" {
            assert!(plan.contains("COVERING INDEX") && plan.contains(">? AND <expr><?"), "{plan}");
        }
    });
}
