//! The owner nonce the console signs with, held to the cases `bridle owner` is held to
//! (`tests/fixtures/owner_nonces.json`, also read by `trust::tests::owner_nonces_match_the_shared_cases`),
//! and rising from one action of a page to the next whatever this clock does.

use super::node;
use bridle_tests::repo_root;
use serde_json::{json, Value};

fn cases() -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(repo_root().join("tests/fixtures/owner_nonces.json")).unwrap()).unwrap()
}

#[test]
fn owner_nonces_are_picked_as_the_cli_picks_them() {
    let rows = cases();
    let out = node(&[json!({"op": "owner_nonce_at", "rows": rows})]);
    let got = out[0]["nonces"].as_array().expect("nonces");
    assert_eq!(got.len(), rows.len());
    for (r, n) in rows.iter().zip(got) {
        assert_eq!(n.as_u64(), r["nonce"].as_u64(), "{}", r["case"]);
    }
}

#[test]
fn one_pages_owner_nonces_only_rise() {
    let signed = 1_796_588_037_000u64;
    let step = |now: u64, floor: u64| json!({"now_ms": now, "signed_ms": signed, "floor_ms": floor});
    let steps = [
        // Two actions within the enclave's second, this clock 0.3 s behind it: before
        // 2026-12-06 the console lifted both to the signed second and sent one nonce twice.
        step(signed - 304, 0),
        step(signed - 250, 0),
        // A hold's second lifts; an action in the same millisecond of this clock stays above.
        step(signed + 10, signed + 1_000),
        step(signed + 10, 0),
        // This clock set back an hour between two actions.
        step(signed - 3_600_000, 0),
        // The same millisecond twice.
        step(signed + 5_000, 0),
        step(signed + 5_000, 0),
    ];
    let out = node(&[json!({"op": "owner_nonce_sequence", "steps": steps})]);
    let got: Vec<u64> = out[0]["nonces"].as_array().expect("nonces").iter().map(|n| n.as_u64().unwrap()).collect();
    assert_eq!(got.len(), steps.len());
    assert_eq!(&got[..3], &[signed - 304, signed - 250, signed + 1_010]);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "nonces must rise: {got:?}");
    assert_eq!(got[5], signed + 5_000);
    assert_eq!(got[6], signed + 5_001);
}
