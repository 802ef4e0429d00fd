//! Requests held for the owner (escalation, R-POL-10) decided through the CLI against a
//! LYING host: an approval shows the enclave's own record of the request and checks the
//! signature; a denial (`bridle owner deny`) counts only with the enclave's receipt, and the
//! agent asking again is then refused `denied_by_owner` until the request's time-to-live.
//! The real `bridle-enclave` and `bridle-host`, with `bridle_tests::proxy::LyingProxy` in
//! front of the host.

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::protocol::*;
use bridle_tests::review::{fresh_nonce as n, genuine_status, World};
use bridle_tests::*;
use serde_json::json;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// 100 USDC a day; anything above 50 USDC a day waits up to 10 minutes for the owner.
const POLICY: &str = r#"
name = "review-pending"
chains = [31337]
valid_for = "24h"
escalate = { above_value = "50 USDC", ttl = "10m" }

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"
"#;

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `bridle owner <verb> --key owner.key --session s --digest d --nonce <fresh> [extra]`.
fn decide(verb: &str, s: &str, d: &str, extra: &str) -> Vec<String> {
    let mut v: Vec<String> = ["owner", verb, "--key", "owner.key", "--session", s, "--digest", d, "--nonce"]
        .into_iter()
        .map(String::from)
        .collect();
    v.push(n());
    if !extra.is_empty() {
        v.push(extra.into());
    }
    v
}

/// A session under POLICY and an 80-USDC transfer its agent asked for, held: its digest.
async fn held(w: &World) -> (Granted, SignPayload, String) {
    let g = w.grant().await;
    let big = SignPayload::Transaction(erc20_transfer(31337, 0, USDC, DEAD, usdc(80)));
    let digest = bridle_common::payload::stamp_digest(&big).unwrap();
    let (c, v) = w.stack.sign_payload(&g, big.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    (g, big, digest.to_string())
}

#[tokio::test]
async fn an_approval_shows_the_enclaves_record_of_the_request_and_checks_the_signature() {
    let w = World::start(POLICY);
    let (g, _, d) = held(&w).await;
    let s = g.session.to_string();
    let approve = |extra: &str| decide("approve", &s, &d, extra);

    let out = w.cli.ok(&as_strs(&approve("--dry-run")));
    assert!(out.contains(&format!("ERC-20 transfer of 80 USDC to {DEAD}")), "{out}");
    assert!(out.contains("transaction (EIP-1559) on chain 31337, nonce 0"), "{out}");
    // The host changes the held request's recipient: the record no longer carries the
    // enclave's signature.
    let thief = Actor::random().address;
    w.proxy.rewrite("GET", "/v1/status", move |_, v| {
        if let Some(p) = v["session"]["pending"].get_mut(0) {
            let data = p["payload"]["transaction"]["eip1559"]["data"].as_str().unwrap_or("").to_string();
            let swapped = data.replace(&hex::encode(DEAD.as_slice()), &hex::encode(thief.as_slice()));
            p["payload"]["transaction"]["eip1559"]["data"] = json!(swapped);
        }
    });
    let (out, err) = w.cli.fails(&as_strs(&approve("")));
    assert!(!out.contains("transfer"), "{out}");
    assert!(err.contains("altered or forged"), "{err}");
    // The approval's signature swapped for another: refused (the enclave did sign).
    w.proxy.clear();
    w.proxy.rewrite("POST", &format!("/v1/sessions/{s}/approve"), |_, v| {
        v["signature"] = json!(Bytes::from(vec![1u8; 65]));
    });
    let (_, err) = w.cli.fails(&as_strs(&approve("")));
    assert!(err.contains("not this request signed by the session"), "{err}");
    // The truth (the approval is collectable again).
    w.proxy.clear();
    let out = w.cli.ok(&as_strs(&approve("--json")));
    let signed: Signed = serde_json::from_str(&out).unwrap();
    assert_eq!(recover_raw(&signed.raw_transaction.unwrap()), g.session);
}

#[tokio::test]
async fn a_denial_counts_only_with_the_enclaves_receipt_and_refuses_the_agent_until_the_ttl() {
    let w = World::start(POLICY);
    let (g, big, d) = held(&w).await;
    let s = g.session.to_string();
    let deny = |extra: &str| decide("deny", &s, &d, extra);

    // The dry run shows the request from the enclave's signed record and denies nothing.
    let out = w.cli.ok(&as_strs(&deny("--dry-run")));
    assert!(out.contains(&format!("ERC-20 transfer of 80 USDC to {DEAD}")), "{out}");
    assert_eq!(w.truth(&g).pending[0].state, "waiting");

    // 1. The host swallows the denial and answers it itself, without the enclave's word.
    let (session, digest) = (g.session, d.clone());
    w.proxy.answer("POST", &format!("/v1/sessions/{s}/deny"), move |_| {
        (200, json!({"session": session, "digest": digest, "until": 4_000_000_000u64}))
    });
    let (out, err) = w.cli.fails(&as_strs(&deny("")));
    assert!(!out.contains("denied:"), "{out}");
    assert!(err.contains("not confirmed by the enclave") && err.contains("still approvable"), "{err}");
    assert_eq!(w.truth(&g).pending[0].state, "waiting", "the enclave never saw a denial");

    // 2. A real receipt, but the host rewrites which request it names: the signature breaks.
    w.proxy.clear();
    w.proxy.rewrite("POST", &format!("/v1/sessions/{s}/deny"), |_, v| {
        v["digest"] = json!(format!("0x{}", "11".repeat(32)));
    });
    let (out, err) = w.cli.fails(&as_strs(&deny("")));
    assert!(!out.contains("denied:"), "{out}");
    assert!(err.contains("not confirmed by the enclave"), "{err}");
    // (The enclave did deny it this time: what the owner sees is "not confirmed", never a
    // false "denied"; asking again shows the truth below.)
    w.proxy.clear();

    // 3. The truth: the enclave's receipt for this nonce and this digest.
    let out = w.cli.ok(&as_strs(&deny("")));
    assert!(out.contains(&format!("denied: request {d} of session {s} will not be signed")), "{out}");
    assert!(out.contains("receipt for owner nonce"), "{out}");
    let truth = w.truth(&g);
    assert_eq!(truth.pending[0].state, "denied");
    assert_eq!(truth.uses, 0, "nothing was signed or charged");

    // The agent asking again (a fresh stamp, the same request) is refused with the stable
    // code naming the escalation rule — not held again for the owner.
    let (c, v) = w.stack.sign_payload(&g, big.clone()).await;
    assert_eq!((c, code(&v)), (403, "denied_by_owner"), "{v}");
    assert_eq!(v["error"]["rule"], "escalate.above_value", "{v}");
    // A denial is final: approving it now is refused by the enclave.
    let (_, err) = w.cli.fails(&as_strs(&decide("approve", &s, &d, "")));
    assert!(err.contains("denied_by_owner"), "{err}");
    let (c, v) = w.stack.sign_payload(&g, big).await;
    assert_eq!((c, code(&v)), (403, "denied_by_owner"), "{v}");

    // The enclave's signed log records the owner's denial.
    let (c, log) = w.stack.get("/v1/audit?since=0").await;
    assert_eq!(c, 200, "{log}");
    let entries = log["entries"].as_array().expect("entries");
    let rejected: Vec<_> = entries.iter().filter(|e| e["kind"] == "rejected").collect();
    assert_eq!(rejected.len(), 1, "{log}");
    assert_eq!(rejected[0]["request_digest"], json!(d), "{log}");
    assert_eq!(rejected[0]["code"], "denied_by_owner", "{log}");
}

#[tokio::test]
async fn a_status_about_another_session_is_not_the_answer() {
    // Review finding: the status receipt covered the reply and the nonce, not the session
    // asked about. A host forwards the owner's fresh nonce but asks the enclave about another
    // session (a revoked one, or an address that holds none): genuinely signed, wrongly
    // answered. The receipt's nonce now binds the session asked about.
    let w = World::start(POLICY);
    let live = w.grant().await;
    let other = w.grant().await;
    let (c, v) = w.stack.revoke(&other).await;
    assert_eq!(c, 200, "{v}");
    let socket = w.stack.enclave.socket.clone();
    let swap_to = other.session;
    w.proxy.answer("GET", "/v1/status", move |req| {
        let nonce: alloy_primitives::B256 = req.query("nonce").unwrap().parse().unwrap();
        (200, genuine_status(&socket, swap_to, nonce, None))
    });
    let s = live.session.to_string();
    let (out, err) = w.cli.fails(&["owner", "status", "--session", &s]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(err.contains(&format!("with the status of session {swap_to}")), "{err}");
    // An address that holds no session: "no such session", signed — but not for this question.
    let nobody = Address::repeat_byte(0x42);
    let socket = w.stack.enclave.socket.clone();
    w.proxy.clear();
    w.proxy.answer("GET", "/v1/status", move |req| {
        let nonce: alloy_primitives::B256 = req.query("nonce").unwrap().parse().unwrap();
        (200, genuine_status(&socket, nobody, nonce, None))
    });
    let (out, err) = w.cli.fails(&["owner", "status", "--session", &s]);
    assert!(!out.contains("no session"), "{out}");
    assert!(err.contains("not the trusted enclave's word") || err.contains("nonce"), "{err}");
    // The truth.
    w.proxy.clear();
    let out = w.cli.ok(&["owner", "status", "--session", &s]);
    assert!(out.contains("state:      Active"), "{out}");
}

#[tokio::test]
async fn a_refused_approval_cannot_be_replayed_later() {
    // Review finding: a refused approval left the owner's nonce unspent; a host that kept it
    // could relay it again once it would pass — after the owner denied the request.
    let w = World::start(POLICY);
    let (g, _, d) = held(&w).await;
    let small = erc20_transfer(31337, 1, USDC, DEAD, usdc(30));
    let (c, v) = w.stack.sign(&g, small).await;
    assert_eq!(c, 200, "{v}");
    // 30 spent: approving the held 80 now would reach 110 of the 100 cap.
    let st = w.stack.status().await;
    let digest: alloy_primitives::B256 = d.parse().unwrap();
    let msg = owner_action(
        bridle_common::owner::action::APPROVE_PENDING,
        st.identity_address,
        g.session,
        g.agent.address,
        digest,
    );
    let body = ApprovePending { auth: g.owner.sign_owner(&msg), session: g.session, digest };
    let path = format!("/v1/sessions/{}/approve", g.session);
    let (c, v) = w.stack.post(&path, &body).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    // The same envelope again: its nonce is spent.
    let (c, v) = w.stack.post(&path, &body).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "{v}");
    assert_eq!(w.truth(&g).pending[0].state, "waiting");
}
