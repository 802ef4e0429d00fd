//! A session kept busy by its owner, against the real binaries (SECURITY.md, "What the
//! lanes leave"). An owner's sweep holds its session's lock while it signs every revocation
//! (here 128 of them); meanwhile the session's agent floods it with signing requests, and
//! another session's agent signs too. A request that finds the lock taken waits for it off
//! the enclave's workers, or is answered `enclave.session_busy` (nothing decided, no stamp
//! spent) and asked again by the host: every request is signed, once, and the other
//! session's requests never fail.

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::protocol::SignPayload;
use bridle_tests::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
/// One approval per spender, one revocation per spender in the sweep.
const SPENDERS: usize = 128;

fn spender(i: usize) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0x5e;
    b[18..].copy_from_slice(&(i as u16).to_be_bytes());
    Address::from(b)
}

fn approving_policy() -> String {
    let spenders: Vec<String> = (0..SPENDERS).map(|i| format!("\"{}\"", spender(i))).collect();
    format!(
        r#"
name = "busy"
chains = [{CHAIN}]
valid_for = "1h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = [{}]
max = ["1000 USDC"]
[[messages]]
exact = "gm"
"#,
        spenders.join(", ")
    )
}

const MESSAGES_ONLY: &str = r#"
name = "bystander"
chains = [31337]
valid_for = "1h"
[[messages]]
exact = "gm"
"#;

/// `n` requests of "gm" as `g`'s agent, each with its own stamp, while `more` holds (and at
/// least `n`); the statuses and bodies of those that were not signed.
async fn flood(s: Arc<Stack>, g: Granted, n: usize, more: Arc<AtomicBool>) -> (usize, Vec<(u16, String)>) {
    let mut failed = Vec::new();
    let mut sent = 0;
    while sent < n || (more.load(Ordering::SeqCst) && sent < 20 * n) {
        let payload = SignPayload::Message(Bytes::from_static(b"gm"));
        let (code, body) = s.sign_payload_at(&g, payload, now()).await;
        if code != 200 {
            failed.push((code, body.to_string()));
        }
        sent += 1;
    }
    (sent, failed)
}

/// A reply's error, without the rest of a large body.
fn code_of(v: &serde_json::Value) -> String {
    v["error"].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_keeping_its_session_busy_loses_no_request_and_holds_up_no_one_else() {
    let s = Arc::new(Stack::start());
    let t0 = std::time::Instant::now();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&approving_policy())).await.expect("grant");
    let other = s.grant(&Actor::random(), &Actor::random(), &policy(MESSAGES_ONLY)).await.expect("grant");
    for i in 0..SPENDERS {
        let r = s.sign(&g, erc20_approve(CHAIN, i as u64, USDC, spender(i), U256::from(1_000_000u64))).await;
        assert_eq!(r.0, 200, "approval {i}: {}", r.1);
    }
    eprintln!("{SPENDERS} approvals signed in {:?}", t0.elapsed());
    let t1 = std::time::Instant::now();
    // The owner's sweep and the floods at once: the floods go on until the sweep is done.
    let sweeping = Arc::new(AtomicBool::new(true));
    let mut floods = Vec::new();
    for _ in 0..6 {
        floods.push(tokio::spawn(flood(s.clone(), g.clone(), 10, sweeping.clone())));
    }
    for _ in 0..2 {
        floods.push(tokio::spawn(flood(s.clone(), other.clone(), 10, sweeping.clone())));
    }
    let (code, swept) = s.sweep(&g, vec![sweep_terms(CHAIN, SPENDERS as u64)], true).await;
    sweeping.store(false, Ordering::SeqCst);
    let swept_in = t1.elapsed();
    eprintln!("the sweep took {swept_in:?}");
    assert_eq!(code, 200, "{}", code_of(&swept));
    assert_eq!(swept["transactions"].as_array().map(Vec::len), Some(SPENDERS), "every approval revoked");
    let mut signed = [0u64; 2];
    for (i, f) in floods.into_iter().enumerate() {
        let (sent, failed) = f.await.unwrap();
        assert!(failed.is_empty(), "requests not signed: {failed:?}");
        signed[usize::from(i >= 6)] += sent as u64;
    }
    // Each signed once: the session counts every approval and every message, nothing twice.
    for (grant, expected) in [(&g, SPENDERS as u64 + signed[0]), (&other, signed[1])] {
        let (code, st) = s.get(&format!("/v1/sessions/{}", grant.session)).await;
        assert_eq!(code, 200, "{}", code_of(&st));
        assert_eq!(st["session"]["uses"].as_u64(), Some(expected));
    }
    // How often the host asked again (printed: whether a request meets the lock taken for
    // longer than the enclave's wait depends on this machine's speed).
    let metrics = s.http.get(format!("{}/metrics", s.host.url)).send().await.unwrap().text().await.unwrap();
    let retries = metrics.lines().find(|l| l.starts_with("bridle_enclave_session_busy_retries_total"));
    eprintln!("signed {signed:?} messages during the sweep; {retries:?}");
    // A sweep that took three times the enclave's wait (50 ms) while the agent's
    // requests kept coming: some of them were answered busy and asked again.
    let retries: u64 = retries.and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    if swept_in > std::time::Duration::from_millis(150) {
        assert!(retries > 0, "a sweep of {swept_in:?} met no request of its session");
    }
}
