//! A snapshot of an earlier build restores whole (a review of 2026-12-06): rules added since
//! — one decimals per token address, the naming of numbers JSON parsers round — apply to
//! new policies and requests, never to a session or a held request an earlier build
//! accepted (one such session would stop a node of a newer image from installing the
//! cluster's snapshot).
use alloy_primitives::{address, Address};
use bridle_common::machine::snapshot::MachineSnapshot;
use bridle_common::machine::Machine;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};

const T0: u64 = 1_800_000_000;
const TOKEN: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");

fn text(d: u8) -> String {
    format!(
        r#"
name = "two listings"
chains = [1, 10]
valid_for = "24h"
[tokens]
USDC = {{ address = "{TOKEN}", decimals = 6, chain_id = 1 }}
USDCOP = {{ address = "{TOKEN}", decimals = {d}, chain_id = 10 }}
[[limits]]
max = "100 USDCOP"
per = "day"
"#
    )
}

#[test]
fn a_policy_listing_one_address_in_two_decimals_restores() {
    let old_doc = resolve_text(&text(18), T0).unwrap();
    // Refused when new; restored as an earlier build accepted it.
    assert!(CompiledPolicy::compile(old_doc.clone()).is_err());
    let r = CompiledPolicy::compile_restored(old_doc.clone());
    // A machine snapshot holding it (built from the same policy at 6 decimals, the doc swapped).
    let ok = CompiledPolicy::compile(resolve_text(&text(6), T0).unwrap()).unwrap();
    let m = Machine::new(Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3), ok, T0, 60, 1024);
    let mut s: MachineSnapshot = m.snapshot();
    s.policy_hash = old_doc.hash();
    s.policy = old_doc;
    let restored = Machine::restore(s);
    assert!(r.is_ok() && restored.is_ok(), "{:?} {:?}", r.err(), restored.err());
}

/// A held typed-data request an earlier build accepted (a float in a field EIP-712 does not
/// hash) is prepared again on restore, and still accepted.
#[test]
fn a_held_typed_data_request_with_an_undeclared_float_restores() {
    use bridle_common::machine::snapshot::PendingSnapshot;
    use bridle_common::protocol::SignPayload;
    let d = r#"{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"T":[{"name":"a","type":"uint256"}]},"primaryType":"T","domain":{"chainId":1},"message":{"a":1,"note":1.5}}"#;
    let td: alloy_dyn_abi::TypedData = serde_json::from_str(d).unwrap();
    let digest = td.eip712_signing_hash().unwrap(); // what an earlier build held it under
    let ok = CompiledPolicy::compile(resolve_text(&text(6), T0).unwrap()).unwrap();
    let m = Machine::new(Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3), ok, T0, 60, 1024);
    let mut s: MachineSnapshot = m.snapshot();
    s.pending.push(PendingSnapshot {
        digest,
        payload: SignPayload::TypedData(d.into()),
        created_at: T0,
        expires_at: T0 + 600,
        rule: "escalate".into(),
        reason: "held".into(),
        signed: None,
        denied_at: None,
    });
    let r = Machine::restore(s);
    assert!(r.is_ok(), "{:?}", r.err());
}
