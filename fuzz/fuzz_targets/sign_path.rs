//! The whole decision core, steered by the fuzzer: the differential test's sequences
//! (random policies, requests, clock moves, reused nonces, permits, user operations,
//! approvals, updates, revocations) with every choice read from the fuzzer's bytes, the
//! engine against the independent reference model. Any disagreement — above all a
//! signature the model refuses — is a crash.
#![no_main]
use bridle_tests::differential::{run, Rng};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = run(Rng::from_bytes(data), 0, 24) {
        panic!("{e}");
    }
});
