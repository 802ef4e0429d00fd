//! Any bytes as an attestation document, verified against a mock root: what a cluster node
//! does with a stranger's handshake message 3 before anything about its sender is known.
//! Must never panic, never accept, and never take long (run with `-timeout=2`: a review of
//! 2026-12-06 found crafted documents costing over a second each before their bounds).
#![no_main]
use bridle_attestation::{verify, MockCa, TrustedRoot, VerifyOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn options() -> &'static VerifyOptions {
    static O: OnceLock<VerifyOptions> = OnceLock::new();
    O.get_or_init(|| {
        let ca = MockCa::generate().expect("a mock CA");
        let options = VerifyOptions::now(300).with_any_image(true);
        VerifyOptions { root: TrustedRoot::Der(ca.root_der().to_vec()), ..options }
    })
}

fuzz_target!(|data: &[u8]| {
    // No signature of the mock root's chain can be guessed: nothing verifies.
    assert!(verify(data, options()).is_err(), "fuzzed bytes verified as an attestation document");
});
