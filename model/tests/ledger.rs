//! RULES §1, §3, §7, §8, §9 examples: session time, periods, updates, escalation, trip-wire.

mod util;

use alloy_primitives::U256;
use bridle_common::period::Period;
use bridle_common::policy::doc::*;
use bridle_model::{Model, Verdict};
use util::*;

#[test]
fn minute_cap_straddling_a_boundary_with_a_clock_going_back() {
    let mut p = base();
    p.limits = vec![limit(usdc_asset(), Period::Minute, usdc(100))];
    let mut m = model(&p);
    let t = t0();
    // (clock reading, amount, expected allowed)
    let steps = [
        (t + 55, 60, true),
        (t + 59, 50, false), // 110 in minute 0
        (t + 59, 40, true),  // 100
        (t + 61, 50, true),  // minute 1
        (t + 30, 50, true),  // the clock went back: session time stays t + 61, minute 1 → 100
        (t + 10, 1, false),  // still minute 1, full
        (t + 119, 1, false),
        (t + 120, 100, true), // minute 2
    ];
    let mut session_time = t;
    let mut per_minute = std::collections::BTreeMap::<u64, u64>::new();
    for (i, (clock, amount, ok)) in steps.into_iter().enumerate() {
        let v = m.sign(&tx(i as u64, USDC, transfer(DEAD, usdc(amount))), clock);
        session_time = session_time.max(clock);
        if ok {
            assert_eq!(v, Verdict::Allowed, "step {i}");
            *per_minute.entry((session_time - t) / 60).or_default() += amount;
        } else {
            assert_denied(v, "spend_cap");
        }
    }
    assert!(per_minute.values().all(|&s| s <= 100), "{per_minute:?}");
    assert_eq!(per_minute.get(&1), Some(&100));
}

#[test]
fn calendar_months_from_a_31_january_anchor() {
    let mut p = base();
    p.limits = vec![limit(usdc_asset(), Period::Month, usdc(100))];
    let mut m = model(&p);
    let day = 86_400;
    let t = t0();
    let feb29 = t + 29 * day; // 2024-02-29 10:00:00
    let mar31 = feb29 + 31 * day; // 2024-03-31 10:00:00
    let apr30 = mar31 + 30 * day; // 2024-04-30 10:00:00
    let mut n = 0;
    let mut send = |m: &mut Model, at: u64, amount: u64| {
        n += 1;
        m.sign(&tx(n, USDC, transfer(DEAD, usdc(amount))), at)
    };
    assert_eq!(send(&mut m, t, 100), Verdict::Allowed);
    assert_denied(send(&mut m, feb29 - 1, 1), "spend_cap");
    assert_eq!(send(&mut m, feb29, 100), Verdict::Allowed);
    assert_denied(send(&mut m, mar31 - 1, 1), "spend_cap");
    assert_eq!(send(&mut m, mar31, 100), Verdict::Allowed);
    assert_denied(send(&mut m, apr30 - 1, 1), "spend_cap");
    assert_eq!(send(&mut m, apr30, 60), Verdict::Allowed);
    assert_eq!(m.spent_in(bridle_model::Ledger::Token(USDC), Period::Month, apr30), usdc(60));
    assert_eq!(m.spent_in(bridle_model::Ledger::Token(USDC), Period::Session, apr30), usdc(360));
}

#[test]
fn an_update_never_forgives_spend() {
    let mut p = base();
    p.limits = vec![limit(usdc_asset(), Period::Day, usdc(100))];
    let mut m = model(&p);
    let t = t0() + 3600;
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(100))), t), Verdict::Allowed);
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 1), "spend_cap");
    let mut q = base();
    q.limits = vec![limit(usdc_asset(), Period::Week, usdc(300))];
    m.update(&q, t + 2).unwrap();
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(201))), t + 3), "spend_cap");
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(200))), t + 4), Verdict::Allowed);
    assert_denied(m.sign(&tx(2, USDC, transfer(DEAD, usdc(1))), t + 86_400), "spend_cap");
    // Next week (from the anchor).
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(300))), t0() + 7 * 86_400), Verdict::Allowed);
}

#[test]
fn a_stream_reads_the_session_total() {
    let mut p = base();
    p.streams = vec![StreamLimit { asset: usdc_asset(), initial: usdc(10), rate: usdc(1), every: 3600, max: usdc(50) }];
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(10))), t), Verdict::Allowed);
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 3599), "spend_cap");
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 3600), Verdict::Allowed);
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(39))), t + 100 * 3600), Verdict::Allowed);
    assert_denied(m.sign(&tx(3, USDC, transfer(DEAD, usdc(1))), t + 1000 * 3600), "spend_cap");
}

#[test]
fn splitting_a_payment_escalates_per_day() {
    let mut p = base();
    p.escalate = Some(Box::new(Escalation {
        above_value: Some(EscalateValue { asset: usdc_asset(), max: usdc(1000) }),
        above_usd: None,
        per: None,
        ttl: 600,
    }));
    let mut m = model(&p);
    let t = t0() + 60;
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(400))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(400))), t + 1), Verdict::Allowed);
    let held = m.sign(&tx(2, USDC, transfer(DEAD, usdc(300))), t + 2);
    let Verdict::Pending(id) = held else { panic!("expected pending, got {held:?}") };
    // The same request again while held: the same pending id; nothing charged.
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(300))), t + 3), Verdict::Pending(id));
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(200))), t + 4), Verdict::Allowed);
    assert_eq!(m.uses(), 3);
    // The owner approves: re-checked, signed and charged (the threshold is not a cap).
    assert_eq!(m.approve(id, t + 5), Verdict::Allowed);
    assert_eq!(m.uses(), 4);
    assert_eq!(m.spent_in(bridle_model::Ledger::Token(USDC), Period::Day, t + 5), usdc(1300));
    // Approving it again returns the signature made at the approval, charging nothing.
    assert_eq!(m.approve(id, t + 6), Verdict::Allowed);
    assert_eq!(m.uses(), 4);
    // A new day starts a new count.
    assert_eq!(m.sign(&tx(4, USDC, transfer(DEAD, usdc(1000))), t0() + 86_400), Verdict::Allowed);
    let Verdict::Pending(late) = m.sign(&tx(5, USDC, transfer(DEAD, usdc(1))), t0() + 86_401) else { panic!() };
    assert_eq!(m.approve(late, t0() + 86_401 + 600), Verdict::Denied(vec!["expired"]));
}

#[test]
fn an_approval_is_rechecked_at_its_own_time() {
    let mut p = base();
    p.limits = vec![limit(usdc_asset(), Period::Day, usdc(500))];
    p.escalate = Some(Box::new(Escalation { above_value: None, above_usd: Some(usd(100)), per: None, ttl: 3600 }));
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }];
    let mut m = model(&p);
    let t = t0() + 10;
    let Verdict::Pending(id) = m.sign(&tx(0, USDC, transfer(DEAD, usdc(300))), t) else { panic!() };
    let Verdict::Pending(id2) = m.sign(&tx(1, USDC, transfer(DEAD, usdc(300))), t + 1) else { panic!() };
    assert_ne!(id, id2);
    assert_eq!(m.approve(id, t + 2), Verdict::Allowed);
    assert_denied(m.approve(id2, t + 3), "spend_cap");
}

#[test]
fn an_unpriced_asset_escalates_under_above_usd() {
    let mut p = base();
    p.escalate = Some(Box::new(Escalation { above_value: None, above_usd: Some(usd(1_000_000)), per: None, ttl: 60 }));
    let mut m = model(&p);
    assert!(matches!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t0()), Verdict::Pending(_)));
}

#[test]
fn trip_wire_suspends_until_an_update() {
    let mut p = base();
    p.trip_wire = Some(TripWire { denials: 3, within: 600 });
    let mut m = model(&p);
    let t = t0();
    let bad = tx(0, DEAD, transfer(DEAD, usdc(1)));
    assert_denied(m.sign(&bad, t), "target_not_allowed");
    assert_denied(m.sign(&bad, t + 700), "target_not_allowed"); // the first is forgotten
    assert_denied(m.sign(&bad, t + 701), "target_not_allowed");
    assert!(!m.is_suspended());
    assert_denied(m.sign(&bad, t + 702), "target_not_allowed");
    assert!(m.is_suspended());
    assert_denied(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t + 703), "suspended");
    m.update(&p, t + 704).unwrap();
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t + 705), Verdict::Allowed);
    m.revoke(t + 706);
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 707), "revoked");
}

#[test]
fn held_requests_do_not_trip_the_wire() {
    let mut p = base();
    p.trip_wire = Some(TripWire { denials: 1, within: 600 });
    p.escalate = Some(Box::new(Escalation {
        above_value: Some(EscalateValue { asset: usdc_asset(), max: U256::ZERO }),
        above_usd: None,
        per: Some(Period::Session),
        ttl: 60,
    }));
    let mut m = model(&p);
    assert!(matches!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t0()), Verdict::Pending(_)));
    assert!(!m.is_suspended());
}

#[test]
fn validity_window_and_session_time() {
    let mut p = base();
    p.valid_after = Some(t0() + 100);
    p.valid_until = Some(t0() + 200);
    let mut m = model(&p);
    let r = tx(0, USDC, transfer(DEAD, usdc(1)));
    assert_denied(m.sign(&r, t0() + 99), "not_yet_valid");
    assert_eq!(m.sign(&r, t0() + 100), Verdict::Allowed);
    assert_denied(m.sign(&r, t0() + 200), "expired");
    // Session time never goes back: an earlier clock reading is still expired.
    assert_denied(m.sign(&r, t0() + 150), "expired");
}

#[test]
fn a_policy_written_in_toml_resolves_and_decides() {
    let text = r#"
name = "usdc-daily"
chains = [31337]
valid_for = "24h"

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"
"#;
    let p = bridle_common::policy::file::resolve_text(text, t0()).expect("resolves");
    let mut m = Model::new(&p, t0(), OWNER, ACCOUNT).unwrap();
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(60))), t0() + 1), Verdict::Allowed);
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(50))), t0() + 2), "spend_cap");
    assert_denied(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t0() + 86_400), "expired");
}
