//! Tests of the stored audit log, each run on SQLite and on a real PostgreSQL server.

use super::*;
use alloy_primitives::B256;
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::{AuditExport, Decision, Record};

/// Run `f` on a fresh database of each backend: a SQLite file, then a new database on
/// a real PostgreSQL server (skipped, saying why, when PostgreSQL is not installed and
/// this is not CI).
pub(crate) fn each_database(tag: &str, f: impl Fn(&crate::store::Database)) {
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![crate::store::Database::Sqlite(dir.path().join("host.sqlite"))];
    if let Some(url) = crate::test_pg::fresh_database(tag) {
        dbs.push(crate::store::Database::parse(&url).unwrap());
    }
    for db in dbs {
        eprintln!("backend: {}", db.kind());
        f(&db);
    }
}

fn open(db: &crate::store::Database) -> Arc<AuditStore> {
    AuditStore::new(crate::store::open(db).unwrap().audit)
}

fn each_backend(tag: &str, f: impl Fn(Arc<AuditStore>)) {
    each_database(tag, |db| f(open(db)))
}

fn started(c: &mut TestChain) {
    c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
}

fn reply(c: &TestChain, from: usize, to: usize, more: bool) -> AuditReply {
    AuditReply { entries: c.entries[from..to].to_vec(), head: c.head_at(to as u64 - 1, 9), more }
}

#[test]
fn batches_are_verified_stored_and_exported() {
    each_backend("batches_are_verified_stored_and_exported", |s| {
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

        // Read page by page (the store's connection held for one page at a time): every
        // page size gives the same file, at and around the page boundaries.
        for page in [1, 6, 7, 20, 21, 22] {
            assert_eq!(s.export_paged(&c.enclave(), page).unwrap().unwrap(), text, "page of {page}");
        }

        let page = s.page(&c.enclave(), 5, 10).unwrap();
        assert_eq!((page.entries.len(), page.entries[0].seq, page.more), (10, 5, true));
        assert_eq!(page.head.unwrap().seq, 20);
        assert_eq!(s.latest_enclave().unwrap(), Some(c.enclave()));
        assert!(s.export_json(&Address::ZERO).unwrap().is_none());
    });
}

#[test]
fn broken_batches_are_refused_and_nothing_is_stored() {
    each_backend("broken_batches_are_refused_and_nothing_is_stored", |s| {
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
        forged.head = AuditHead::signed(10, c.entries[10].hash(), 9, c.enclave(), 11, B256::ZERO, Some(0), |d| {
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
    });
}

#[test]
fn a_gap_is_recorded_and_shows_in_the_export() {
    each_backend("a_gap_is_recorded_and_shows_in_the_export", |s| {
        let mut c = TestChain::new(5);
        started(&mut c);
        c.fill(30);
        s.accept(c.enclave(), None, &reply(&c, 0, 10, true)).unwrap();
        // A batch from 20 whose head says the enclave still held entries from 15 (or
        // from 0, or from 21): cut on its way, not dropped by the enclave. Refused, nothing
        // stored, no gap.
        for oldest in [0, 15, 19, 21] {
            let cut = AuditReply { head: c.head_held_from(30, 9, Some(oldest)), ..reply(&c, 20, 31, false) };
            let e = s.accept(c.enclave(), None, &cut).unwrap_err();
            assert!(e.to_string().contains("not a gap the enclave made"), "{e}");
            assert_eq!(s.tip(&c.enclave()).unwrap().unwrap().seq, 9);
            assert!(s.gaps(&c.enclave()).unwrap().is_empty());
        }
        // The enclave's window now starts at 20, and its head says so: relayed by another
        // host it is still refused (nodes' windows differ: only this host's own node's word
        // records a gap).
        let dropped = AuditReply { head: c.head_held_from(30, 9, Some(20)), ..reply(&c, 20, 31, false) };
        let e = s.accept_from(c.enclave(), None, &dropped, BatchSource::Relayed).unwrap_err();
        assert!(matches!(&e, PullError::Retry(m) if m.contains("only this host's own node's word")), "{e}");
        assert!(s.gaps(&c.enclave()).unwrap().is_empty());
        // Relayed, a batch that continues the stored chain is taken.
        assert_eq!(
            s.accept_from(c.enclave(), None, &reply(&c, 10, 12, true), BatchSource::Relayed).unwrap(),
            (2, None)
        );
        let dropped = AuditReply { entries: c.entries[20..31].to_vec(), ..dropped };
        let e = s.accept_from(c.enclave(), None, &dropped, BatchSource::Relayed).unwrap_err();
        assert!(matches!(e, PullError::Retry(_)), "{e}");
        // From this host's own node, it is a gap.
        let (n, gap) = s.accept(c.enclave(), None, &dropped).unwrap();
        assert_eq!((n, gap), (11, Some((12, 19))));
        assert_eq!(s.gaps(&c.enclave()).unwrap(), vec![(12, 19)]);
        let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
        let e = verify_chain(&ex.entries, &ex.head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::Missing { seq: 12, head_seq: 30 });
    });
}

#[test]
fn a_head_without_oldest_from_its_own_node_records_a_gap() {
    each_backend("a_head_without_oldest_from_its_own_node_records_a_gap", |s| {
        // An enclave before `oldest` (a v2 head) says nothing of its window: its own node's
        // gap is recorded, as before; relayed, it is not.
        let mut c = TestChain::new(6);
        started(&mut c);
        c.fill(30);
        s.accept(c.enclave(), None, &reply(&c, 0, 10, true)).unwrap();
        let old = AuditReply { head: c.head_held_from(30, 9, None), ..reply(&c, 20, 31, false) };
        assert!(matches!(s.accept_from(c.enclave(), None, &old, BatchSource::Relayed), Err(PullError::Retry(_))));
        assert_eq!(s.accept(c.enclave(), None, &old).unwrap(), (11, Some((10, 19))));
    });
}

#[test]
fn chains_of_different_enclaves_are_kept_apart() {
    each_backend("chains_of_different_enclaves_are_kept_apart", |s| {
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
    });
}

/// The protocol's audit reply is the signed batch: `decode` passes it through unchanged,
/// and names any other reply.
#[test]
fn decode_follows_the_protocol() {
    let mut c = TestChain::new(5);
    started(&mut c);
    let signed = reply(&c, 0, 1, false);
    let r: Reply = serde_json::from_value(json!({ "audit": signed })).unwrap();
    assert_eq!(decode(r).unwrap(), signed);
    let other = Reply::PendingDenied(bridle_common::protocol::PendingDenied {
        session: Default::default(),
        digest: Default::default(),
        until: 0,
        receipt: None,
    });
    assert!(matches!(decode(other), Err(PullError::Other(m)) if m.contains("pending_denied")));
}

/// Two hosts on one database fed the same chain (enclaves sharing an identity key, or
/// a race between pulls): what is already stored is skipped, nothing is refused.
#[test]
fn identical_entries_pushed_twice_are_idempotent() {
    each_database("identical_entries_pushed_twice", |db| {
        let (a, b) = (open(db), open(db));
        let mut c = TestChain::new(7);
        started(&mut c);
        c.fill(12);
        assert_eq!(a.accept(c.enclave(), None, &reply(&c, 0, 8, true)).unwrap(), (8, None));
        assert_eq!(b.accept(c.enclave(), None, &reply(&c, 0, 8, true)).unwrap(), (0, None));
        assert_eq!(b.accept(c.enclave(), None, &reply(&c, 4, 13, false)).unwrap(), (5, None));
        assert_eq!(a.accept(c.enclave(), None, &reply(&c, 0, 13, false)).unwrap(), (0, None));
        // An older head does not replace the stored one.
        assert_eq!(a.accept(c.enclave(), None, &reply(&c, 0, 5, true)).unwrap(), (0, None));
        for s in [&a, &b] {
            assert_eq!(s.tip(&c.enclave()).unwrap().unwrap().seq, 12);
            let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
            assert_eq!((ex.entries.as_slice(), ex.head.seq), (c.entries.as_slice(), 12));
            verify_chain(&ex.entries, &ex.head, c.enclave(), None).unwrap();
        }
    });
}

/// Two histories signed by one identity key: the second is refused at the first entry
/// that differs, and nothing of its batch is stored.
#[test]
fn a_conflicting_entry_is_refused_and_nothing_of_the_batch_is_stored() {
    each_database("conflicting_entry_refused", |db| {
        let (a, b) = (open(db), open(db));
        let fork = |detail: &str| {
            let mut c = TestChain::new(7);
            started(&mut c);
            c.fill(3);
            c.push(50, Record::new(Decision::Allowed, Address::ZERO, B256::ZERO, detail));
            c.fill(2);
            c
        };
        let (x, y) = (fork("x"), fork("y"));
        assert_eq!(x.entries[..4], y.entries[..4]);
        a.accept(x.enclave(), None, &reply(&x, 0, 7, false)).unwrap();
        let e = b.accept(y.enclave(), None, &reply(&y, 0, 7, false)).unwrap_err();
        assert!(matches!(&e, PullError::Conflict(m) if m.contains("seq 4")), "{e}");
        // Straight to the backend (a race past the tip check): refused the same way.
        let backend = crate::store::open(db).unwrap().audit;
        let head = y.head_at(6, 9);
        let entries = &y.entries[4..];
        let chain = verify_chain_hashes(entries, &head, y.enclave(), Some((4, y.entries[3].hash()))).unwrap();
        let batch = Batch { public_key: None, chain: &chain, gap: None, now: 1 };
        match backend.store_batch(&batch) {
            Err(BatchError::Conflict { enclave, seq, offered, .. }) => {
                assert_eq!((enclave, seq, offered), (y.enclave(), 4, y.entries[4].hash()))
            }
            other => panic!("{other:?}"),
        }
        let tip = b.tip(&y.enclave()).unwrap().unwrap();
        assert_eq!((tip.seq, tip.hash), (6, x.entries[6].hash()));
        let ex: AuditExport = serde_json::from_str(&b.export_json(&x.enclave()).unwrap().unwrap()).unwrap();
        assert_eq!(ex.entries, x.entries);
        assert_eq!(ex.head, x.head_at(6, 9));
    });
}

/// The database is untrusted: rows that do not parse are errors, never panics.
#[test]
fn bad_rows_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host.sqlite");
    let db = crate::store::Database::Sqlite(path.clone());
    let s = open(&db);
    let mut c = TestChain::new(5);
    started(&mut c);
    c.fill(3);
    s.accept(c.enclave(), None, &reply(&c, 0, 4, false)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE audit_entries SET entry = '{\"seq\": 1' WHERE seq = 2", []).unwrap();
    assert!(s.export_json(&c.enclave()).unwrap_err().to_string().contains("entry 2"));
    assert!(s.page(&c.enclave(), 0, 10).is_err());
    conn.execute("UPDATE audit_entries SET hash = 'nope' WHERE seq = 3", []).unwrap();
    assert!(s.tip(&c.enclave()).is_err());
    conn.execute("UPDATE audit_heads SET head = '[]'", []).unwrap();
    assert!(s.export_json(&c.enclave()).is_err());
}

/// The pull pace follows the rate entries arrive at, not one pull's count: 500 a second
/// and more is busy (pull every 100 ms), whether seen over a second or a tenth of one.
#[test]
fn a_busy_enclave_is_a_rate_of_entries() {
    let ms = Duration::from_millis;
    assert!(busy(50, ms(100)));
    assert!(busy(500, ms(1000)));
    assert!(busy(1300, ms(100)));
    // 300 a second: a one-second pull sees 300, the short pull after it 30: neither busy.
    assert!(!busy(300, ms(1000)));
    assert!(!busy(30, ms(100)));
    assert!(!busy(49, ms(100)));
    assert!(!busy(0, ms(0)));
    assert!(busy(1, ms(0)));
}

/// The export route sends the file a page at a time (never the whole chain in memory), the
/// same bytes as the file built whole, and an export whose client goes away ends and gives
/// its turn back (a review of 2026-12-05: exports were built whole in memory).
#[test]
fn an_export_is_sent_a_page_at_a_time_and_ends_when_its_client_goes() {
    static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    each_backend("an_export_is_sent_a_page_at_a_time", |s| {
        let mut c = TestChain::new(5);
        started(&mut c);
        c.fill(20);
        let pk = Bytes::from(c.public_key());
        s.accept(c.enclave(), Some(&pk), &reply(&c, 0, 21, false)).unwrap();
        let whole = s.export_paged(&c.enclave(), 6).unwrap().unwrap();
        // Started outside the runtime, as the route starts it on a blocking thread.
        let (opening, cursor) = s.export_start(&c.enclave(), 6).unwrap().unwrap();
        let (opening2, cursor2) = s.export_start(&c.enclave(), 6).unwrap().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            // Read to the end: the opening, then 21 entries in pages of 6.
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            let turn = TURNS.acquire().await.unwrap();
            let sender = tokio::spawn(export::send_pages(s.clone(), cursor, opening, tx, turn));
            let mut parts = Vec::new();
            let mut whole_said = false;
            while let Some(piece) = rx.recv().await {
                match piece.unwrap() {
                    export::Piece::Part(text) => parts.push(text),
                    export::Piece::End => whole_said = true,
                }
            }
            sender.await.unwrap();
            assert!(whole_said);
            assert_eq!(parts.len(), 5, "{parts:?}");
            assert_eq!(parts.concat(), whole);
            assert_eq!(TURNS.available_permits(), 1);
            // A client that goes away after the opening: the export ends, its turn back.
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            let turn = TURNS.acquire().await.unwrap();
            let sender = tokio::spawn(export::send_pages(s.clone(), cursor2, opening2, tx, turn));
            assert!(matches!(rx.recv().await, Some(Ok(export::Piece::Part(t))) if t.starts_with("{\n\"format\"")));
            drop(rx);
            tokio::time::timeout(std::time::Duration::from_secs(5), sender).await.unwrap().unwrap();
            assert_eq!(TURNS.available_permits(), 1);
            // A body whose sender stops before the closing ends with an error.
            use futures_util::StreamExt;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tx.send(Ok(export::Piece::Part("{".into()))).await.unwrap();
            drop(tx);
            let got: Vec<_> = export::pieces(rx).collect().await;
            assert!(matches!(&got[..], [Ok(t), Err(_)] if t == "{"), "{got:?}");
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            tx.send(Ok(export::Piece::Part("{}".into()))).await.unwrap();
            tx.send(Ok(export::Piece::End)).await.unwrap();
            let got: Vec<_> = export::pieces(rx).collect().await;
            assert!(matches!(&got[..], [Ok(t)] if t == "{}"), "{got:?}");
        });
    });
}
