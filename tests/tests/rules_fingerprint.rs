//! The decision rules' fingerprint: what the engine answers — verdicts, codes, rules and
//! reasons (which the audit entries record) — over a fixed set of the differential's random
//! sequences, digested. A cluster's nodes each apply entries with their own image's rules,
//! and a cluster mixing two versions refuses what decides (ATTESTATION.md, "Cluster and
//! upgrades") — if the version says they differ. So a change that moves this fingerprint
//! must come with a new `RULES_VERSION` (`common/src/policy/mod.rs`), unless it changed only
//! the generator (`tests/src/differential`): then record the new fingerprint for the same
//! version.

use bridle_common::policy::RULES_VERSION;
use bridle_tests::differential::run_sequence;

/// The fingerprint recorded for each rules version (the last one is this build's).
const FINGERPRINTS: &[(u32, u64)] = &[(1, 0xb6c0_1f6a_7d9f_69e5)];

#[test]
fn the_rules_fingerprint_matches_the_rules_version() {
    let mut digest = 0u64;
    let mut decisions = 0u64;
    for seed in 1..=1_500 {
        let st = run_sequence(seed, 24).unwrap_or_else(|e| panic!("{e}"));
        digest = digest.wrapping_add(st.digest);
        decisions += st.decisions;
    }
    assert!(decisions > 10_000, "{decisions} decisions");
    let &(version, recorded) = FINGERPRINTS.last().expect("one version at least");
    assert_eq!(
        (version, recorded),
        (RULES_VERSION, digest),
        "the engine's answers changed (fingerprint {digest:#x}, recorded {recorded:#x} for rules version {version}). \
         If a decision, a code, a rule or a reason changed, bump RULES_VERSION and add ({}, {digest:#x}) to FINGERPRINTS; \
         if only the differential's generator changed, replace the recorded fingerprint of version {version}",
        RULES_VERSION + 1
    );
}
