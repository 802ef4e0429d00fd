//! Any policy text: parse, resolve, validate, compile, explain, hash. Never panics.
#![no_main]
use bridle_common::policy::{explain::explain, file::resolve_text, CompiledPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = resolve_text(text, 1_800_000_000) {
        let _ = doc.hash();
        if let Ok(p) = CompiledPolicy::compile(doc) {
            let _ = p.check_lifetime(1_800_000_000);
            let _ = explain(&p);
        }
    }
});
