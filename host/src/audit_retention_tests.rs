//! The audit retention on each backend: a prefix goes, the rest still verifies.

use super::*;
use crate::audit_store::AuditStore;
use alloy_primitives::{Address, Bytes, B256};
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::{verify_chain, AuditExport, AuditReply, Decision, Record};

fn each_store(tag: &str, f: impl Fn(Arc<AuditStore>)) {
    crate::audit_store::tests::each_database(tag, |db| f(AuditStore::new(crate::store::open(db).unwrap().audit)))
}

/// A chain of 21 entries: seq 0 at time 1, seq `i` ≥ 1 at 1 700 000 000 + `i` − 1; all stored.
fn stored(s: &AuditStore) -> TestChain {
    let mut c = TestChain::new(7);
    c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
    c.fill(20);
    let reply = AuditReply { entries: c.entries.clone(), head: c.head_at(20, 9), more: false };
    s.accept(c.enclave(), Some(&Bytes::from(c.public_key())), &reply).unwrap();
    c
}

/// One pass at `before`, on a runtime of its own.
fn pass(s: &AuditStore, before: u64) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(prune_pass(&s.backend(), before, 42, Duration::ZERO)).unwrap()
}

#[test]
fn entries_logged_before_the_cutoff_go_and_what_is_left_verifies_from_the_first_kept() {
    each_store("entries_logged_before_the_cutoff_go", |s| {
        let c = stored(&s);
        // Seq 0..=10 were logged before 1 700 000 010.
        assert_eq!(pass(&s, 1_700_000_010), 11);
        assert_eq!(s.pruned_through(&c.enclave()).unwrap(), Some(10));
        let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
        assert_eq!(ex.pruned_through, Some(10));
        assert_eq!(ex.entries, c.entries[11..]);
        // The rest is one chain from the first kept entry, linked to the pruned one before it.
        assert_eq!(ex.entries[0].prev, c.entries[10].hash());
        verify_chain(&ex.entries, &ex.head, c.enclave(), Some((11, ex.entries[0].prev))).unwrap();
        // A second pass at the same cutoff finds nothing.
        assert_eq!(pass(&s, 1_700_000_010), 0);
        assert_eq!(s.page(&c.enclave(), 0, 100).unwrap().entries[0].seq, 11);
    });
}

#[test]
fn the_last_entry_stored_is_kept_and_the_pull_goes_on_from_it() {
    each_store("the_last_entry_stored_is_kept", |s| {
        let mut c = stored(&s);
        assert_eq!(pass(&s, u64::MAX), 20);
        assert_eq!(s.pruned_through(&c.enclave()).unwrap(), Some(19));
        assert_eq!(s.tip(&c.enclave()).unwrap().unwrap().seq, 20);
        c.fill(3);
        let next = AuditReply { entries: c.entries[21..].to_vec(), head: c.head_at(23, 10), more: false };
        assert_eq!(s.accept(c.enclave(), None, &next).unwrap(), (3, None));
        let ex: AuditExport = serde_json::from_str(&s.export_json(&c.enclave()).unwrap().unwrap()).unwrap();
        assert_eq!(ex.entries, c.entries[20..]);
    });
}

#[test]
fn a_batch_reaching_below_the_pruned_prefix_does_not_bring_it_back() {
    each_store("a_batch_reaching_below_the_pruned_prefix", |s| {
        let c = stored(&s);
        pass(&s, 1_700_000_005);
        assert_eq!(s.pruned_through(&c.enclave()).unwrap(), Some(5));
        // The whole chain again (another host's copy, relayed): nothing new is stored.
        let again = AuditReply { entries: c.entries.clone(), head: c.head_at(20, 11), more: false };
        assert_eq!(s.accept(c.enclave(), None, &again).unwrap(), (0, None));
        assert_eq!(s.page(&c.enclave(), 0, 100).unwrap().entries[0].seq, 6);
    });
}

#[test]
fn a_page_is_a_prefix_of_at_most_its_limit_and_gaps_below_it_go() {
    crate::audit_store::tests::each_database("a_page_is_a_prefix_of_at_most_its_limit", |db| {
        let backend = crate::store::open(db).unwrap().audit;
        let s = AuditStore::new(backend.clone());
        let mut c = TestChain::new(8);
        c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
        c.fill(20);
        let pk = Bytes::from(c.public_key());
        s.accept(
            c.enclave(),
            Some(&pk),
            &AuditReply { entries: c.entries[..3].to_vec(), head: c.head_at(2, 9), more: true },
        )
        .unwrap();
        // Entries 3..=5 dropped by the enclave before this host stored them: a gap.
        let after =
            AuditReply { entries: c.entries[6..].to_vec(), head: c.head_held_from(20, 9, Some(6)), more: false };
        assert_eq!(s.accept(c.enclave(), None, &after).unwrap(), (15, Some((3, 5))));
        let e = c.enclave();
        let p = backend.prune_audit(&e, u64::MAX, 2, 1).unwrap();
        assert_eq!((p.deleted, p.through), (2, Some(1)));
        assert_eq!(s.gaps(&e).unwrap(), vec![(3, 5)]);
        // The next page reaches past the gap (the stored rows 2, 6, 7): its rows go, and so
        // does the gap below them.
        let p = backend.prune_audit(&e, u64::MAX, 3, 2).unwrap();
        assert_eq!((p.deleted, p.through), (3, Some(7)));
        assert_eq!(s.gaps(&e).unwrap(), Vec::<(u64, u64)>::new());
        assert_eq!(backend.pruned_through(&e).unwrap(), Some(7));
        // An enclave with nothing stored, and one whose only entry is its tip: nothing goes.
        assert_eq!(backend.prune_audit(&Address::ZERO, u64::MAX, 10, 3).unwrap(), Default::default());
        assert_eq!(backend.audit_enclaves().unwrap(), vec![e]);
    });
}
