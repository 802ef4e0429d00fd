//! A status copies its held requests' payloads only up to `STATUS_PAYLOAD_BYTES` together
//! (each held request may be up to a frame): the rest are `payload_omitted`, and the one
//! asked for by digest is shown whatever its size.

use super::*;
use crate::frame::cbor_len;
use crate::payload::prepare;
use crate::policy::file::resolve_text;
use crate::stamp::Stamp;
use crate::tx::{AccessEntry, Eip1559Request, TxRequest};
use alloy_primitives::{address, Bytes, Signature, U256};
use alloy_sol_types::SolCall;

const T0: u64 = 1_800_000_000;
const STORE: Address = address!("00000000000000000000000000000000000057e0");

/// Any value to `store(bytes)` is allowed; over 0.1 ETH a day waits for the owner.
const POLICY: &str = r#"
name = "status-payloads"
chains = [1]
valid_for = "30d"
escalate = { above_value = "0.1 ETH", ttl = "10m" }

[[limits]]
max = "100 ETH"
per = "day"

[[calls]]
target = "0x00000000000000000000000000000000000057e0"
functions = ["store(bytes)"]
"#;

alloy_sol_types::sol! {
    function store(bytes blob);
}

struct Key;

impl Signer for Key {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

/// 1 ETH with a blob of `len` bytes: held.
fn store_tx(nonce: u64, len: usize) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        gas_limit: 30_000_000,
        to: Some(STORE),
        value: U256::from(10u64).pow(U256::from(18u64)),
        data: Bytes::from(storeCall { blob: vec![nonce as u8; len].into() }.abi_encode()),
        access_list: vec![],
    }))
}

/// A machine holding one request of a `len`-byte blob per entry of `lens`: their digests.
fn holding(lens: &[usize]) -> (Machine, Vec<B256>) {
    let doc = resolve_text(POLICY, T0).expect("policy");
    let compiled = CompiledPolicy::compile(doc).expect("compiles");
    let mut m =
        Machine::new(Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3), compiled, T0, 60, 1024);
    let mut digests = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let p = store_tx(i as u64, len);
        let prepared = prepare(&p).expect("prepares");
        digests.push(prepared.stamp_digest());
        let mut nonce = [0u8; 16];
        nonce[0] = i as u8 + 1;
        let stamp = Stamp { nonce, timestamp: T0 + 1, mac: [0u8; 32] };
        let e = m.sign(T0 + 1, &p, prepared, &stamp, Some(&Key)).result.unwrap_err();
        assert_eq!(e.code, ErrorCode::PendingApproval, "{e:?}");
    }
    (m, digests)
}

/// The digests whose payload the status shows, in the status's order.
fn shown(m: &Machine, held: Option<B256>) -> Vec<B256> {
    let s = m.status(T0 + 2, held);
    for p in &s.pending {
        assert_eq!(p.payload.is_none(), p.payload_omitted, "{}: shown xor omitted", p.digest);
    }
    s.pending.iter().filter(|p| p.payload.is_some()).map(|p| p.digest).collect()
}

#[test]
fn small_held_requests_are_all_shown() {
    let (m, digests) = holding(&[100; 16]);
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(shown(&m, None), sorted);
    let s = m.status(T0 + 2, None);
    // The payload shown is exactly what was held.
    for p in &s.pending {
        let i = digests.iter().position(|d| *d == p.digest).unwrap();
        assert_eq!(p.payload.as_ref(), Some(&store_tx(i as u64, 100)));
    }
}

#[test]
fn payloads_beyond_the_bound_are_omitted_and_the_one_asked_for_is_shown() {
    // Each ≈ 100 KB: two fit in 256 KiB, not three.
    let (m, digests) = holding(&[100_000; 5]);
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(shown(&m, None), sorted[..2], "the first two in digest order");
    // Asked for the last: it is shown, and one other still fits beside it.
    let last = sorted[4];
    assert_eq!(shown(&m, Some(last)), vec![sorted[0], last]);
    // A digest that is not held changes nothing.
    assert_eq!(shown(&m, Some(B256::repeat_byte(9))), sorted[..2]);

    // One request larger than the bound by itself: omitted unless asked for, and then shown
    // whole while every other is omitted.
    let (m, digests) = holding(&[300_000, 200_000]);
    let big = digests[0];
    assert_eq!(shown(&m, None), vec![digests[1]]);
    assert_eq!(shown(&m, Some(big)), vec![big]);
    let s = m.status(T0 + 2, Some(big));
    let p = s.pending.iter().find(|p| p.digest == big).unwrap();
    assert_eq!(p.payload.as_ref(), Some(&store_tx(0, 300_000)));
    // What a status copies stays within the bound plus the one asked for, by CBOR size.
    let copied: usize = s.pending.iter().filter_map(|p| p.payload.as_ref()).map(cbor_len).sum();
    assert!(copied <= STATUS_PAYLOAD_BYTES + cbor_len(&store_tx(0, 300_000)), "{copied}");
}

/// Review finding: the bound counted a transaction's calldata only, so held requests with
/// a large access list (or a user operation's init code) passed as a few hundred bytes
/// each, and their memory was charged as little. Every part of the payload counts now.
#[test]
fn an_access_list_counts_in_the_bound_and_in_the_sessions_memory() {
    let (mut m, _) = holding(&[]);
    let before = m.footprint();
    let mut digests = Vec::new();
    for i in 0..3u8 {
        let SignPayload::Transaction(TxRequest::Eip1559(mut tx)) = store_tx(u64::from(i), 4) else { unreachable!() };
        // ≈ 3 000 storage keys: ≈ 100 KB of CBOR, with 4 bytes of calldata.
        tx.access_list = vec![AccessEntry { address: STORE, storage_keys: vec![B256::repeat_byte(i); 3_000] }];
        let p = SignPayload::Transaction(TxRequest::Eip1559(tx));
        assert!(cbor_len(&p) > 90_000, "{}", cbor_len(&p));
        let prepared = prepare(&p).expect("prepares");
        digests.push(prepared.stamp_digest());
        let stamp = Stamp { nonce: [i + 1; 16], timestamp: T0 + 1, mac: [0u8; 32] };
        let e = m.sign(T0 + 1, &p, prepared, &stamp, Some(&Key)).result.unwrap_err();
        assert_eq!(e.code, ErrorCode::PendingApproval, "{e:?}");
    }
    digests.sort();
    assert_eq!(shown(&m, None), digests[..2], "two of three ≈ 100 KB requests fit in 256 KiB");
    let grown = m.footprint() - before;
    assert!(grown > 3 * 2 * 90_000, "charged {grown} bytes for three ≈ 100 KB requests held");
    // Held requests keep only their payload: approving one prepares it again and signs.
    let approved = m.approve(T0 + 2, digests[2], Some(&Key));
    assert!(approved.result.is_ok(), "{:?}", approved.result);
    assert_eq!(m.status(T0 + 3, None).pending.iter().filter(|p| p.state == "signed").count(), 1);
}

/// The status shows each rate limit's use as the enclave counts it when it decides: an
/// owner-approved signature counts (the owner console counted the audit log's `allowed`
/// entries only, so an approved signature left a limit shown unused while the next request
/// was refused `rate_limited`: a review of 2026-12-06).
#[test]
fn rate_limits_show_the_use_the_enclave_decides_by() {
    let text = format!(
        "{POLICY}\n[[rate_limits]]\nmax = 2\nwindow = \"1h\"\n\n[[rate_limits]]\nmax = 5\nwindow = \"1 minute\"\n"
    );
    let compiled = CompiledPolicy::compile(resolve_text(&text, T0).expect("policy")).expect("compiles");
    let mut m =
        Machine::new(Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3), compiled, T0, 60, 1024);
    let used = |m: &Machine, at: u64| m.status(at, None).rate_limits.iter().map(|r| r.used).collect::<Vec<_>>();
    assert_eq!(used(&m, T0 + 1), vec![Some(0), Some(0)]);
    let s = m.status(T0 + 1, None);
    assert_eq!(
        (s.rate_limits[0].rule.as_str(), s.rate_limits[0].max, s.rate_limits[0].window),
        ("rate_limits[0]", 2, 3600)
    );
    assert_eq!(
        (s.rate_limits[1].rule.as_str(), s.rate_limits[1].max, s.rate_limits[1].window),
        ("rate_limits[1]", 5, 60)
    );
    let ask = |m: &mut Machine, nonce: u64, at: u64, value: u64| {
        let SignPayload::Transaction(TxRequest::Eip1559(mut tx)) = store_tx(nonce, 4) else { unreachable!() };
        tx.value = U256::from(value);
        let p = SignPayload::Transaction(TxRequest::Eip1559(tx));
        let prepared = prepare(&p).expect("prepares");
        let digest = prepared.stamp_digest();
        let stamp = Stamp { nonce: [nonce as u8 + 1; 16], timestamp: at, mac: [0u8; 32] };
        (digest, m.sign(at, &p, prepared, &stamp, Some(&Key)).result)
    };
    let (_, r) = ask(&mut m, 0, T0 + 1, 1);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(used(&m, T0 + 2), vec![Some(1), Some(1)]);
    // 1 ETH is held; the owner approves it: signed, and counted.
    let (held, r) = ask(&mut m, 1, T0 + 2, 10u64.pow(18));
    assert_eq!(r.unwrap_err().code, ErrorCode::PendingApproval);
    assert_eq!(used(&m, T0 + 3), vec![Some(1), Some(1)], "held, not signed");
    assert!(m.approve(T0 + 3, held, Some(&Key)).result.is_ok());
    assert_eq!(used(&m, T0 + 4), vec![Some(2), Some(2)]);
    // The hour's limit is reached: the next is refused under the rule the status shows full.
    let (_, r) = ask(&mut m, 2, T0 + 5, 0);
    let e = r.unwrap_err();
    assert_eq!((e.code, e.rule.as_deref()), (ErrorCode::RateLimited, Some("rate_limits[0]")));
    // A minute later the minute's window is empty again, the hour's still full.
    assert_eq!(used(&m, T0 + 64), vec![Some(2), Some(0)]);
}
