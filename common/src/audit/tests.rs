use super::testing::TestChain;
use super::*;

fn chain(n: usize) -> (TestChain, AuditHead) {
    let mut c = TestChain::new(9);
    c.push(1_700_000_000, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "bridle-enclave started"));
    c.fill(n - 1);
    let h = c.head(1_700_000_100);
    (c, h)
}

#[test]
fn an_intact_chain_verifies() {
    let (c, head) = chain(10);
    let s = verify_chain(&c.entries, &head, c.enclave(), None).unwrap();
    assert_eq!((s.first_seq, s.entries, s.head_seq), (0, 10, 9));
    assert_eq!(s.head_hash, c.entries[9].hash());
    // A single entry is a chain too.
    let (c1, h1) = chain(1);
    verify_chain(&c1.entries, &h1, c1.enclave(), None).unwrap();
    // And the log survives a JSON round trip unchanged.
    let json = serde_json::to_string(&c.entries).unwrap();
    let back: Vec<AuditEntry> = serde_json::from_str(&json).unwrap();
    verify_chain(&back, &head, c.enclave(), None).unwrap();
}

#[test]
fn the_check_hands_back_each_entrys_own_hash() {
    let (c, head) = chain(10);
    let own: Vec<B256> = c.entries.iter().map(AuditEntry::hash).collect();
    let hashes = |v: &Verified<'_>| v.hashed().map(|(_, h)| *h).collect::<Vec<_>>();
    let whole = verify_chain_hashes(&c.entries, &head, c.enclave(), None).unwrap();
    assert_eq!((whole.summary().entries, hashes(&whole)), (10, own.clone()));
    assert!(whole.hashed().map(|(e, _)| e).eq(&c.entries));
    assert_eq!(whole.head(), &head);
    let tail = verify_chain_hashes(&c.entries[4..], &head, c.enclave(), Some((4, own[3]))).unwrap();
    assert_eq!(hashes(&tail), own[4..]);
    assert!(tail.hashed().map(|(e, _)| e).eq(&c.entries[4..]));
    // Nothing new: no hashes. A chain that does not verify hands back none.
    let at_3 = c.head_at(3, 1);
    let none = verify_chain_hashes(&[], &at_3, c.enclave(), Some((4, own[3]))).unwrap();
    assert_eq!(none.hashed().len(), 0);
    let mut bad = c.entries.clone();
    bad[5].detail.push('!');
    assert!(verify_chain_hashes(&bad, &head, c.enclave(), None).is_err());
}

#[test]
fn continuations_verify_from_an_anchor() {
    let (c, head) = chain(10);
    let anchor = (4, c.entries[3].hash());
    let s = verify_chain(&c.entries[4..], &head, c.enclave(), Some(anchor)).unwrap();
    assert_eq!((s.first_seq, s.entries), (4, 6));
    // Nothing new: the head is the anchor.
    let h3 = c.head_at(3, 1);
    verify_chain(&[], &h3, c.enclave(), Some(anchor)).unwrap();
    // A continuation that does not extend the anchor.
    let e = verify_chain(&c.entries[4..], &head, c.enclave(), Some((4, B256::repeat_byte(1)))).unwrap_err();
    assert!(matches!(e, AuditError::Changed { seq: 4, link: Link::Anchor, .. }), "{e}");
    // Empty, but the head has moved on: the new entries are missing.
    let e = verify_chain(&[], &head, c.enclave(), Some(anchor)).unwrap_err();
    assert_eq!(e, AuditError::Missing { seq: 4, head_seq: 9 });
    // An empty whole log never verifies.
    assert!(verify_chain(&[], &head, c.enclave(), None).is_err());
}

#[test]
fn a_changed_entry_is_named() {
    for k in [0usize, 3, 9] {
        let (c, head) = chain(10);
        let mut es = c.entries.clone();
        es[k].detail = "nothing to see here".into();
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e.kind(), "changed", "{e}");
        assert_eq!(e.seq(), Some(k as u64), "entry {k}: {e}");
        assert!(e.to_string().starts_with(&format!("entry {k} was changed")), "{e}");
    }
    // Every field counts.
    let (c, head) = chain(6);
    let tweaks: [fn(&mut AuditEntry); 6] = [
        |e| e.time += 1,
        |e| e.session = Address::repeat_byte(0xee),
        |e| e.kind = Decision::Allowed,
        |e| e.code = None,
        |e| e.rule = Some("limits[1]".into()),
        |e| e.request_digest = B256::repeat_byte(0xaa),
    ];
    for t in tweaks {
        let mut es = c.entries.clone();
        t(&mut es[2]); // entry 2 is a denial with code and rule
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!((e.kind(), e.seq()), ("changed", Some(2)), "{e}");
    }
}

#[test]
fn a_changed_prev_names_its_own_entry() {
    let (c, head) = chain(10);
    let mut es = c.entries.clone();
    es[5].prev = B256::repeat_byte(0x55);
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::Changed { seq: 5, link: Link::OwnPrev, .. }), "{e}");
    // Entry 0 against the genesis hash.
    let mut es = c.entries.clone();
    es[0].prev = B256::ZERO;
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::Changed { seq: 0, link: Link::Genesis, .. }), "{e}");
    // A changed entry whose links were "repaired" downstream still breaks at the head.
    let mut es = c.entries.clone();
    es[7].detail = "rewritten".into();
    for i in 8..10 {
        es[i].prev = es[i - 1].hash();
    }
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::Changed { seq: 9, link: Link::Head, .. }), "{e}");
}

#[test]
fn a_removed_entry_is_named() {
    for k in [0usize, 4, 9] {
        let (c, head) = chain(10);
        let mut es = c.entries.clone();
        es.remove(k);
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::Missing { seq: k as u64, head_seq: 9 }, "removing {k}: {e}");
        assert!(e.to_string().starts_with(&format!("entry {k} is missing")), "{e}");
    }
    // Renumbering after the removal does not hide it: the chain breaks there.
    let (c, head) = chain(10);
    let mut es = c.entries.clone();
    es.remove(4);
    for (i, e) in es.iter_mut().enumerate() {
        e.seq = i as u64;
    }
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert_eq!(e.seq(), Some(4), "{e}");
}

#[test]
fn reordered_entries_are_named() {
    let (c, head) = chain(10);
    let mut es = c.entries.clone();
    es.swap(3, 4);
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert_eq!(e, AuditError::OutOfOrder { seq: 3, position: 3, found: 4 }, "{e}");
    assert!(e.to_string().starts_with("entry 3 is out of order"), "{e}");
    // Swapped and renumbered: the links break at the first moved entry.
    let mut es = c.entries.clone();
    es.swap(3, 4);
    es[3].seq = 3;
    es[4].seq = 4;
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert_eq!(e.seq(), Some(3), "{e}");
    // A duplicate.
    let mut es = c.entries.clone();
    es.insert(5, es[4].clone());
    let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
    assert_eq!(e, AuditError::Duplicate { seq: 4, position: 5 }, "{e}");
}

#[test]
fn forged_heads_are_rejected() {
    let (c, head) = chain(10);
    // Altered after signing: the signature no longer recovers to the identity.
    for forge in [
        AuditHead { seq: 8, hash: c.entries[8].hash(), ..head.clone() },
        AuditHead { hash: B256::repeat_byte(1), ..head.clone() },
        AuditHead { time: head.time + 1, ..head.clone() },
        AuditHead { oldest: Some(head.oldest.unwrap_or(0) + 1), ..head.clone() },
        AuditHead { oldest: None, ..head.clone() },
    ] {
        let e = verify_chain(&c.entries[..=forge.seq as usize], &forge, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::HeadSigner { .. } | AuditError::BadHeadSignature { .. }), "{e}");
        assert!(e.is_head_error());
    }
    // Not a signature at all.
    let bad = AuditHead { signature: Bytes::from(vec![0u8; 64]), ..head.clone() };
    let e = verify_chain(&c.entries, &bad, c.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::BadHeadSignature { seq: 9, .. }), "{e}");
    // The head of another enclave's key, over the same entries.
    let other = TestChain::new(10);
    let by_other =
        AuditHead::signed(head.seq, head.hash, head.time, c.enclave(), head.end, head.nonce, head.oldest, |d| {
            Ok::<_, std::convert::Infallible>(other.sign_digest(d))
        })
        .unwrap();
    let e = verify_chain(&c.entries, &by_other, c.enclave(), None).unwrap_err();
    assert_eq!(e, AuditError::HeadSigner { seq: 9, expected: c.enclave(), recovered: other.enclave() });
    // A genuine head checked against another identity.
    let e = verify_chain(&c.entries, &head, other.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::WrongEnclave { .. }), "{e}");
}

#[test]
fn the_end_of_the_log_is_checked_against_the_head() {
    let (c, head) = chain(10);
    // An older, genuine head with more entries than it covers.
    let h7 = c.head_at(7, 1);
    let e = verify_chain(&c.entries, &h7, c.enclave(), None).unwrap_err();
    assert_eq!(e, AuditError::BeyondHead { seq: 8, head_seq: 7 });
    // A batch's head proves its batch, and that the log went on: not complete (review
    // finding 9: a host hiding the newest entries behind a fresh head of an old batch).
    let s = verify_chain(&c.entries[..8], &h7, c.enclave(), None).unwrap();
    assert!(!s.complete);
    assert_eq!((s.head_seq, s.log_end), (7, 10));
    assert!(verify_chain(&c.entries, &head, c.enclave(), None).unwrap().complete);
    // Truncated before the head.
    let e = verify_chain(&c.entries[..8], &head, c.enclave(), None).unwrap_err();
    assert_eq!(e, AuditError::Missing { seq: 8, head_seq: 9 });
}

#[test]
fn bounds_are_part_of_the_format() {
    let mut w = ChainWriter::new(Address::ZERO);
    let long = "é".repeat(400);
    let e = w.append(
        1,
        Record {
            detail: long.clone(),
            rule: Some(long),
            ..Record::new(Decision::Denied, Address::ZERO, B256::ZERO, "")
        },
    );
    assert!(e.detail.len() <= MAX_DETAIL && e.detail.ends_with('…'));
    assert!(e.rule.as_ref().unwrap().len() <= MAX_RULE);
    e.check_bounds().unwrap();
    let mut c = TestChain::new(3);
    c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, ""));
    c.entries[0].detail = "x".repeat(MAX_DETAIL + 1);
    let h = AuditHead::signed(0, c.entries[0].hash(), 2, c.enclave(), 1, B256::ZERO, Some(0), |d| {
        Ok::<_, std::convert::Infallible>(c.sign_digest(d))
    })
    .unwrap();
    let e = verify_chain(&c.entries, &h, c.enclave(), None).unwrap_err();
    assert!(matches!(e, AuditError::Malformed { seq: 0, .. }), "{e}");
}

#[test]
fn unknown_fields_are_refused() {
    let (c, head) = chain(2);
    let mut v = serde_json::to_value(&c.entries[1]).unwrap();
    v["extra"] = serde_json::json!(1);
    assert!(serde_json::from_value::<AuditEntry>(v).is_err());
    let mut v = serde_json::to_value(&head).unwrap();
    v["extra"] = serde_json::json!(1);
    assert!(serde_json::from_value::<AuditHead>(v).is_err());
    assert_eq!(serde_json::to_value(Decision::ExpiredPending).unwrap(), "expired_pending");
    for d in Decision::ALL {
        assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
    }
}

/// Fixed vectors: the encoding must never drift (third parties recompute it).
#[test]
fn canonical_vectors() {
    let enclave = Address::repeat_byte(0x11);
    assert_eq!(genesis(enclave), keccak256([GENESIS_TAG, enclave.as_slice()].concat()),);
    let e = AuditEntry {
        seq: 1,
        time: 2,
        session: Address::repeat_byte(0x22),
        kind: Decision::Denied,
        code: Some(ErrorCode::SpendCap),
        rule: Some("limits[0]".into()),
        request_digest: B256::repeat_byte(0x33),
        detail: "cap".into(),
        prev: B256::repeat_byte(0x44),
    };
    let mut manual = Vec::new();
    manual.extend_from_slice(b"bridle/audit-entry/v1");
    manual.extend_from_slice(&1u64.to_be_bytes());
    manual.extend_from_slice(&2u64.to_be_bytes());
    manual.extend_from_slice(&[0x22; 20]);
    manual.extend_from_slice(&6u32.to_be_bytes());
    manual.extend_from_slice(b"denied");
    manual.extend_from_slice(&[1, 0, 0, 0, 9]);
    manual.extend_from_slice(b"spend_cap");
    manual.extend_from_slice(&[1, 0, 0, 0, 9]);
    manual.extend_from_slice(b"limits[0]");
    manual.extend_from_slice(&[0x33; 32]);
    manual.extend_from_slice(&3u32.to_be_bytes());
    manual.extend_from_slice(b"cap");
    manual.extend_from_slice(&[0x44; 32]);
    assert_eq!(e.hash(), keccak256(&manual));
    let none = AuditEntry { code: None, rule: None, ..e.clone() };
    assert_ne!(none.hash(), e.hash());
    // Moving bytes between fields changes the hash (length prefixes).
    let shifted = AuditEntry { rule: Some("limits[0]c".into()), detail: "ap".into(), ..e.clone() };
    assert_ne!(shifted.hash(), e.hash());
    let mut hd = Vec::new();
    hd.extend_from_slice(b"bridle/audit-head/v3");
    hd.extend_from_slice(&5u64.to_be_bytes());
    hd.extend_from_slice(&[0x55; 32]);
    hd.extend_from_slice(&6u64.to_be_bytes());
    hd.extend_from_slice(&[0x11; 20]);
    hd.extend_from_slice(&9u64.to_be_bytes());
    hd.extend_from_slice(&[0x66; 32]);
    hd.extend_from_slice(&3u64.to_be_bytes());
    assert_eq!(
        AuditHead::digest_of(5, &B256::repeat_byte(0x55), 6, &enclave, 9, &B256::repeat_byte(0x66), Some(3)),
        keccak256(&hd)
    );
    // A head of an enclave before `oldest`: the v2 digest, without it.
    let mut v2 = b"bridle/audit-head/v2".to_vec();
    v2.extend_from_slice(&hd[b"bridle/audit-head/v3".len()..hd.len() - 8]);
    assert_eq!(
        AuditHead::digest_of(5, &B256::repeat_byte(0x55), 6, &enclave, 9, &B256::repeat_byte(0x66), None),
        keccak256(&v2)
    );
}

/// An entry held in the enclave's memory takes at most its bounded bytes: long details and
/// rules are cut, and no string keeps spare capacity (the enclave's memory plan counts each
/// entry at `MAX_DETAIL` + `MAX_RULE`).
#[test]
fn entries_hold_no_more_than_their_bounds() {
    let mut w = ChainWriter::new(Address::repeat_byte(7));
    for (detail, rule) in [
        ("é".repeat(400), "r".repeat(500)),
        ("x".repeat(MAX_DETAIL + 1), "y".repeat(MAX_RULE + 1)),
        ("short".to_string(), "rule".to_string()),
    ] {
        let mut padded = String::with_capacity(4096);
        padded.push_str(&detail);
        let block = padded.as_ptr();
        let rec =
            Record::new(Decision::Denied, Address::ZERO, B256::ZERO, "x").with_code(ErrorCode::SpendCap, Some(&rule));
        let e = w.append(1, Record { detail: padded, ..rec });
        assert!(e.detail.len() <= MAX_DETAIL && e.detail.capacity() == e.detail.len(), "{}", e.detail.capacity());
        // A new allocation of its length, not the 4 KiB block shrunk in place (which the
        // allocator may keep whole, whatever `capacity()` then says).
        assert_ne!(e.detail.as_ptr(), block);
        let r = e.rule.as_ref().unwrap();
        assert!(r.len() <= MAX_RULE && r.capacity() == r.len(), "{}", r.capacity());
        // A restored entry (decoded from a snapshot) is held the same way.
        let mut loose = e.clone();
        loose.detail.reserve(1000);
        let held = loose.held_exactly();
        assert_eq!((held.detail.capacity(), held.hash()), (held.detail.len(), e.hash()));
    }
    // Too small for the mark: the cut alone, never more than asked.
    assert_eq!(truncate("abcdef", 2), "ab");
    assert_eq!(truncate("éé", 1), "");
    assert_eq!(truncate("abcdef", 4), "a…");
}
