use super::*;

#[test]
fn positions_are_ranges_and_stay_bounded() {
    let mut p = Positions::default();
    for n in [5, 3, 4, 10, 11, 0] {
        p.insert(n);
    }
    assert_eq!(p.ranges, vec![(0, 0), (3, 5), (10, 11)]);
    assert!(p.contains(4) && !p.contains(6) && p.contains(0) && !p.contains(12));
    assert_eq!(p.max_nonce, Some(11));
    p.insert(1);
    p.insert(2);
    assert_eq!(p.ranges, vec![(0, 5), (10, 11)]);
    for n in (100..1000).step_by(3) {
        p.insert(n);
    }
    assert!(p.ranges.len() <= MAX_PLAIN_RANGES);
    // Merging only adds positions: every inserted one is still there.
    for n in (100..1000).step_by(3) {
        assert!(p.contains(n));
    }
    assert!(p.contains(0) && p.contains(11));
}

fn grant(kind: AllowanceKind, amount: u64, via: &'static str) -> Grant {
    let key = Key {
        chain_id: 1,
        holder: Address::repeat_byte(1),
        token: Address::repeat_byte(2),
        spender: Address::repeat_byte(3),
        kind,
    };
    Grant { key, op: GrantOp::Set(U256::from(amount)), end: None, token_index: None, via: Via(via), nonce: None }
}

/// Each approval a revocation can take back prepays [`PREPAID_PER_APPROVAL`] of them,
/// charged as the writes they will be; revocations, sweeps and signature transfers
/// prepay nothing; the owner's sweeps use it up; and a session is never charged beyond a
/// full registry.
#[test]
fn approvals_prepay_their_revocations_within_the_registry() {
    let mut r = Registry::default();
    let own = |nonce| Place::Own { chain_id: 1, nonce };
    let meta = |_: &Grant| (String::new(), 6, 0);
    let bare = r.footprint();
    r.record(own(0), 1, vec![grant(AllowanceKind::Erc20, 5, "approve")], false, false, meta).unwrap();
    assert_eq!(r.prepaid(), PREPAID_PER_APPROVAL);
    let mut spent = r.clone();
    spent.spend_prepaid(PREPAID_PER_APPROVAL);
    assert_eq!(spent.prepaid(), 0);
    assert_eq!(r.footprint() - spent.footprint(), PREPAID_PER_APPROVAL * WRITE_BYTES);
    assert!(spent.footprint() > bare);
    // A revocation by the agent, a sweep, a signature transfer: no credit.
    r.record(own(1), 2, vec![grant(AllowanceKind::Erc20, 0, "approve")], false, false, meta).unwrap();
    r.record(own(2), 3, vec![grant(AllowanceKind::Erc20, 0, "sweep")], true, false, meta).unwrap();
    let transfer = AllowanceKind::SignatureTransfer { contract: Address::repeat_byte(4) };
    r.record(Place::Floating { deadline: 10 }, 4, vec![grant(transfer, 5, "Permit2 transfer")], false, false, meta)
        .unwrap();
    assert_eq!(r.prepaid(), PREPAID_PER_APPROVAL);
    // The agent's writes stop where they would take the room its approvals prepaid: the
    // owner's sweep keeps all of it.
    let mut n = 4;
    let approve = grant(AllowanceKind::Erc20, 5, "approve");
    while r.has_room_beside_credit(&own(n), std::slice::from_ref(&approve), 5) {
        r.record(own(n), 5, vec![approve.clone()], false, false, meta).unwrap();
        n += 1;
    }
    assert_eq!(r.prepaid, r.prepaid(), "no credit lost to the agent's writes");
    assert!(r.writes + r.prepaid() > MAX_WRITES - 3, "{} writes, {} prepaid", r.writes, r.prepaid());
    assert!(r.has_room(r.prepaid(), 5), "room for every prepaid revocation");
    // A revocation by the agent needs room beside the credit too.
    let revoke = grant(AllowanceKind::Erc20, 0, "approve");
    let spare = MAX_WRITES - r.writes - r.prepaid();
    assert_eq!(r.has_room_beside_credit(&own(n), std::slice::from_ref(&revoke), 5), spare >= 1);
    // Written anyway (an owner's sweep past its credit, say), credit is never charged
    // beyond a full registry.
    while r.writes < MAX_WRITES {
        r.record(own(n), 6, vec![revoke.clone()], true, false, meta).unwrap();
        assert!(r.writes + r.prepaid() <= MAX_WRITES);
        n += 1;
    }
    assert_eq!(r.prepaid(), 0, "a full registry leaves no room to prepay");
    // A floating Permit2 authority with an end prepays nothing (it is forgotten once
    // ended); the same approval in a transaction (never forgotten) does.
    let mut p = Registry::default();
    let permit2 = AllowanceKind::Permit2 { contract: Address::repeat_byte(4) };
    let ending = Grant { end: Some(10), ..grant(permit2, 5, "Permit2 allowance") };
    p.record(Place::Floating { deadline: 10 }, 1, vec![ending.clone()], false, false, meta).unwrap();
    assert_eq!(p.prepaid(), 0);
    p.prune(10 + 61);
    assert_eq!(p.writes, 0);
    p.record(Place::Own { chain_id: 1, nonce: 0 }, 1, vec![ending], false, false, meta).unwrap();
    assert_eq!(p.prepaid(), PREPAID_PER_APPROVAL);
}

/// Which nonces below a transaction the session signed: every transaction, writing
/// approvals or not; past a merge of ranges (which adds nonces nothing was signed at)
/// nothing from the first added nonce on counts. An agent that signs its nonces in turn
/// keeps one range however its approvals and other calls alternate (a review of the
/// first version, whose merges of write-less positions ended every later settlement).
#[test]
fn signed_below_needs_every_lower_nonce_known() {
    let mut r = Registry::default();
    let meta = |_: &Grant| (String::new(), 6, 0);
    let approve = |r: &mut Registry, n| {
        r.record(
            Place::Own { chain_id: 1, nonce: n },
            1,
            vec![grant(AllowanceKind::Erc20, 5, "approve")],
            false,
            false,
            meta,
        )
        .unwrap()
    };
    let plain =
        |r: &mut Registry, n| r.record(Place::Own { chain_id: 1, nonce: n }, 1, vec![], false, false, meta).unwrap();
    assert!(r.signed_below(1, 0) && !r.signed_below(1, 1));
    approve(&mut r, 0);
    for n in [1, 2, 4] {
        plain(&mut r, n);
    }
    assert!(r.signed_below(1, 3) && !r.signed_below(1, 4) && !r.signed_below(1, 6) && !r.signed_below(2, 1));
    plain(&mut r, 3);
    assert!(r.signed_below(1, 5) && !r.signed_below(1, 6));
    // Approvals and plain calls in turn, 200 of each: one range.
    for k in 0..200 {
        approve(&mut r, 5 + 2 * k);
        plain(&mut r, 6 + 2 * k);
    }
    assert!(r.signed_below(1, 405) && !r.signed_below(1, 406));
    assert!(r.own[&1].ranges.len() > 1 && r.own[&1].merged_from.is_none());
    // 70 nonces two apart: merged down to 64 ranges, each merge adding a nonce.
    for k in 0..70 {
        plain(&mut r, 1000 + 2 * k);
    }
    let from = r.own[&1].merged_from.expect("merged");
    assert!(from > 1000 && !r.signed_below(1, from + 1) && !r.signed_below(1, 2000));
    assert!(r.signed_below(1, 405));
}

#[test]
fn user_operation_places_split_the_nonce() {
    let n = (U256::from(7u8) << 64) | U256::from(3u8);
    match Place::user_operation(1, Address::ZERO, Address::repeat_byte(1), n) {
        Place::Account { lane, seq } => assert_eq!((lane.key, seq), (U256::from(7u8), 3)),
        p => panic!("{p:?}"),
    }
}
