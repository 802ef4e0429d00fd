//! The enclave's clock is corrected by the NSM's (a review of 2026-12-06): inside a Nitro
//! Enclave the system clock is the hypervisor's, which nothing corrects, and stamps, owner
//! nonces, peers' documents and permits' ends all read it. Here the real `bridle-enclave`
//! runs with its system clock ten minutes off (`--dev-system-clock-skew`, a drifting
//! hypervisor clock); the mock NSM stamps its documents with the true time, as the Nitro
//! card does, and the enclave's signed status tells the true time.

use bridle_common::protocol::{Call, Reply, StatusQuery};
use bridle_tests::*;

fn enclave_now(e: &EnclaveProc) -> u64 {
    match e.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })) {
        Ok(Reply::Status(s)) => s.now,
        other => panic!("status over the socket: {other:?}"),
    }
}

#[test]
fn a_drifting_system_clock_is_corrected_by_the_nsms() {
    for skew in [-600i64, 600] {
        let e = EnclaveProc::start_with(&["--dev-system-clock-skew", &skew.to_string()]);
        let (before, t, after) = (now(), enclave_now(&e), now());
        assert!(t + 2 >= before && t <= after + 2, "skew {skew}: the enclave says {t}, the time is {before}..{after}");
    }
}
