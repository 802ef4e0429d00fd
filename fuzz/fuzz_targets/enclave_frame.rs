//! Any frame body the enclave can receive: decode and serve it. Must never panic, and
//! must never produce a signature (no valid stamp can be guessed).
#![no_main]
use bridle_common::protocol::Reply;
use bridle_enclave::clock::FixedClock;
use bridle_enclave::{server::handle_frame, Config, Enclave};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn enclave() -> &'static Enclave {
    static E: OnceLock<Enclave> = OnceLock::new();
    E.get_or_init(|| Enclave::new(Box::new(FixedClock::new(1_800_000_000)), None, Config::default()))
}

fuzz_target!(|data: &[u8]| {
    let resp = handle_frame(enclave(), data);
    assert!(!matches!(resp.result, Ok(Reply::Signed(_))), "a fuzzed frame was signed");
});
