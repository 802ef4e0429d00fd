//! A session status copies its held requests' payloads only up to 256 KiB together
//! (SECURITY.md: 16 held requests of up to a frame each were copied into every status being
//! answered). The others are `payload_omitted`; `bridle owner approve` then asks the
//! enclave for the one it decides, in a status signed for another fresh nonce, and a host
//! that drops that question gets a refusal, not a bare digest to sign. The real
//! `bridle-enclave`, `bridle-host` and `bridle` CLI, with a lying proxy in front of the host.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::protocol::*;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_tests::review::{fresh_nonce, genuine_status, World};
use bridle_tests::*;

const STORE: Address = address!("00000000000000000000000000000000000057e0");

/// Any value to `store(bytes)`; over 0.5 ETH a day waits 10 minutes for the owner.
const POLICY: &str = r#"
name = "review-held-payloads"
chains = [31337]
valid_for = "24h"
escalate = { above_value = "0.5 ETH", ttl = "10m" }

[[calls]]
target = "0x00000000000000000000000000000000000057e0"
functions = ["store(bytes)"]

[[limits]]
max = "100 ETH"
per = "day"
"#;

alloy_sol_types::sol! {
    function store(bytes blob);
}

/// 1 ETH to `store` with a blob of `len` bytes (held: over the threshold).
fn store_tx(nonce: u64, len: usize) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 31337,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 30_000_000,
        to: Some(STORE),
        value: U256::from(10u64).pow(U256::from(18u64)),
        data: Bytes::from(storeCall { blob: vec![nonce as u8 + 1; len].into() }.abi_encode()),
        access_list: vec![],
    }))
}

/// `(digest, payload shown?)` of each held request in a status (JSON).
fn shown(st: &serde_json::Value) -> Vec<(String, bool)> {
    let list = st["session"]["pending"].as_array().expect("pending");
    list.iter()
        .map(|p| {
            let has = !p["payload"].is_null();
            assert_eq!(has, p["payload_omitted"] != true, "shown xor omitted: {p}");
            (p["digest"].as_str().unwrap().to_string(), has)
        })
        .collect()
}

#[tokio::test]
async fn a_status_shows_held_payloads_within_its_bound_and_the_owner_asks_for_the_rest() {
    let w = World::start(POLICY);
    let g = w.grant().await;
    // Five held requests of ≈ 100 KB each: a status shows two of them.
    let mut digests = Vec::new();
    for nonce in 0..5 {
        let p = store_tx(nonce, 100_000);
        digests.push(bridle_common::payload::stamp_digest(&p).unwrap());
        let (c, v) = w.stack.sign_payload(&g, p).await;
        assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    }
    digests.sort();
    let socket = w.stack.enclave.socket.clone();
    let st = genuine_status(&socket, g.session, B256::repeat_byte(1), None);
    let got = shown(&st);
    let expect: Vec<(String, bool)> = digests.iter().enumerate().map(|(i, d)| (d.to_string(), i < 2)).collect();
    assert_eq!(got, expect, "the first two in digest order");
    // Asked for the last one: shown, beside one other that still fits.
    let last = digests[4];
    let got = shown(&genuine_status(&socket, g.session, B256::repeat_byte(2), Some(last)));
    assert!(got[4].1 && got[0].1 && got.iter().filter(|(_, s)| *s).count() == 2, "{got:?}");

    // The owner's CLI shows an omitted request by asking for it.
    let s = g.session.to_string();
    let d = last.to_string();
    let approve = |extra: &str| {
        let mut v = vec!["owner", "approve", "--key", "owner.key", "--session", &s, "--digest", &d, "--nonce"];
        let n = fresh_nonce();
        let mut owned: Vec<String> = v.drain(..).map(String::from).collect();
        owned.push(n);
        if !extra.is_empty() {
            owned.push(extra.to_string());
        }
        owned
    };
    let args = approve("--dry-run");
    let out = w.cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let nonce_of_last = (0..5).find(|&n| bridle_common::payload::stamp_digest(&store_tx(n, 100_000)).unwrap() == last);
    assert!(out.contains(&format!("on chain 31337, nonce {}", nonce_of_last.unwrap())), "{out}");
    assert!(out.contains("signed by the enclave"), "{out}");

    // A host that drops the question (it answers every status with the enclave's genuine
    // status without `held`, signed for the CLI's nonce): refused, nothing signed.
    w.proxy.answer("GET", "/v1/status", move |req| {
        let nonce: B256 = req.query("nonce").unwrap().parse().unwrap();
        (200, genuine_status(&socket, g.session, nonce, None))
    });
    let args = approve("");
    let (out, err) = w.cli.fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.contains("approved"), "{out}");
    assert!(err.contains("carries no request to show"), "{err}");
    assert_eq!(w.truth(&g).uses, 0, "nothing was signed");

    // The truth: approved and signed, the signature recovering to the session.
    w.proxy.clear();
    let args = approve("--json");
    let out = w.cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let signed: Signed = serde_json::from_str(&out).unwrap();
    assert_eq!(recover_raw(&signed.raw_transaction.unwrap()), g.session);
    assert_eq!(w.truth(&g).uses, 1);
}
