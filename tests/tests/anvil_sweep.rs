//! Delegated-spend governance on a real chain (anvil): the revocation sweep (R-APP-6) and
//! escalation (R-POL-10), with the real Bridle binaries and the `bridle` CLI.
//!
//! 1. Approvals the agent signed are mined; the expired ones are swept on the host's
//!    request, the rest by the owner's signed sweep after revocation; once the signed
//!    revocations are mined, every allowance on chain is zero and the key is kept for more.
//! 2. A transfer over the escalation threshold is held; it is signed only after the
//!    owner's approval of its digest (and mined); another one is refused after it expired.
//!
//! Needs anvil (see `bridle_tests::anvil_bin`); a missing one fails the test.

use alloy_primitives::{address, Address, B256, U256};
use bridle_common::protocol::*;
use bridle_tests::*;
use serde_json::{json, Value};

const CHAIN: u64 = 31337;
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");
const VAULT: Address = address!("ba12222222228d8ba445958a75a0704d566bf2c8");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// Broadcast a signed raw transaction and wait for its receipt (status 1 asserted).
async fn broadcast(chain: &Anvil, raw: &Value) -> Value {
    let r = chain.send_raw(raw).await;
    assert_eq!(r["status"], "0x1", "{raw} failed: {r}");
    r
}

/// Run the owner CLI against the stack's host, trusting the enclave identity the test reads
/// over the enclave's own socket (never the host's word).
fn cli(s: &Stack, dir: &std::path::Path, args: &[&str]) -> String {
    let identity = s.enclave.identity_key_hex();
    let out = bridle_tests::cli::bridle_cmd(&dir.join("trust.json"))
        .args(args)
        .args(["--identity-key", &identity])
        .env("BRIDLE_HOST", &s.host.url)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bridle {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn sweep_revocations_once_mined_leave_every_allowance_at_zero() {
    let chain = Anvil::start();
    let usdc_addr = chain.deploy_erc20().await;
    let usdt_addr = chain.deploy_erc20().await;
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let text = format!(
        r#"
name = "anvil-sweep"
chains = [{CHAIN}]
valid_for = "24h"
[tokens]
USDC = {{ address = "{usdc_addr}", decimals = 6 }}
USDT = {{ address = "{usdt_addr}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[[calls]]
target = "USDT"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}", "{VAULT}"]
max = ["1000 USDC", "1000 USDT"]
lifetime = "1h"
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 200000
"#
    );
    let g = s.grant(&owner, &agent, &policy(&text)).await.expect("grant");
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;

    // Phase A: two approvals, mined.
    let mut nonce = 0;
    for (token, spender, amount) in [(usdc_addr, ROUTER, usdc(100)), (usdt_addr, VAULT, usdc(400))] {
        let (c, v) = s.sign(&g, erc20_approve(CHAIN, nonce, token, spender, amount)).await;
        assert_eq!(c, 200, "{v}");
        broadcast(&chain, &v["raw_transaction"]).await;
        assert_eq!(chain.allowance(token, g.session, spender).await, amount);
        nonce += 1;
    }
    // An hour later they are expired: the host asks for their sweep (no owner needed:
    // a sweep only revokes), with the chain's nonce and fees within the policy's caps.
    let later: i64 = 3_600 + 1;
    s.enclave.set_clock_offset(later);
    let a = s.allowances(&g).await;
    assert!(a["allowances"].as_array().unwrap().iter().all(|e| e["state"] == "expired"), "{a}");
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, chain.nonce(g.session, "pending").await)], false).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let txs = r.1["transactions"].as_array().unwrap().clone();
    assert_eq!(txs.len(), 2, "{}", r.1);
    for t in &txs {
        broadcast(&chain, &t["raw_transaction"]).await;
    }
    assert_eq!(chain.allowance(usdc_addr, g.session, ROUTER).await, U256::ZERO);
    assert_eq!(chain.allowance(usdt_addr, g.session, VAULT).await, U256::ZERO);

    // Phase B: two more approvals, mined; then the owner revokes the session.
    let ts = now() + later as u64;
    nonce = chain.nonce(g.session, "pending").await;
    for (token, spender, amount) in [(usdc_addr, POOL, usdc(200)), (usdt_addr, ROUTER, usdc(300))] {
        let payload = SignPayload::Transaction(erc20_approve(CHAIN, nonce, token, spender, amount));
        let (c, v) = s.sign_payload_at(&g, payload, ts).await;
        assert_eq!(c, 200, "{v}");
        broadcast(&chain, &v["raw_transaction"]).await;
        assert_eq!(chain.allowance(token, g.session, spender).await, amount);
        nonce += 1;
    }
    let (c, v) = s.revoke(&g).await;
    assert_eq!(c, 200, "{v}");
    let (c, v) = s
        .sign_payload_at(&g, SignPayload::Transaction(erc20_approve(CHAIN, nonce, usdc_addr, POOL, usdc(1))), ts)
        .await;
    assert_eq!((c, code(&v)), (403, "revoked"), "{v}");

    // The owner's sweep, through the CLI: nonce and fees from the chain, signed by the
    // owner, broadcast with --send.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("owner.json");
    write_key_file(&key, "owner", &owner);
    let session = g.session.to_string();
    let listed = cli(&s, dir.path(), &["owner", "allowances", "--session", &session]);
    assert!(listed.contains("swept") && listed.contains("active"), "{listed}");
    // (The tests' owner nonces count from the time in milliseconds plus 5 minutes; the
    // CLI's default is the time in milliseconds.)
    let owner_nonce = s.enclave.next_nonce().to_string();
    let out = cli(
        &s,
        dir.path(),
        &[
            "owner",
            "sweep",
            "--session",
            &session,
            "--key",
            key.to_str().unwrap(),
            "--rpc",
            &chain.url,
            "--send",
            "--owner-nonce",
            &owner_nonce,
        ],
    );
    // The key is kept: the enclave cannot see the revocations mined, and whoever holds one
    // may keep it to itself (reviews of 2026-12-05).
    assert!(out.contains("the enclave cannot see these revocations mined: sweep again if one is not"), "{out}");
    // Every revocation is mined: every allowance the session ever granted is zero.
    for (token, spender) in [(usdc_addr, ROUTER), (usdt_addr, VAULT), (usdc_addr, POOL), (usdt_addr, ROUTER)] {
        let mut left = U256::MAX;
        for _ in 0..100 {
            left = chain.allowance(token, g.session, spender).await;
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(left, U256::ZERO, "allowance of {spender} on {token}");
    }
    let a = s.allowances(&g).await;
    assert!(a["allowances"].as_array().unwrap().iter().all(|e| e["state"] == "swept"), "{a}");
    assert_eq!(u256_of(&a["exposure"]["usd"]), U256::ZERO);
    // The key is kept (the enclave saw nothing mined): the owner may sweep again, the agent
    // signs nothing.
    let r = s.sweep(&g, vec![sweep_terms(CHAIN, chain.nonce(g.session, "pending").await)], true).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["key_destroyed"], false);
    let r = s
        .sign(
            &g,
            erc20_transfer(CHAIN, chain.nonce(g.session, "pending").await + 4, usdc_addr, ROUTER, U256::from(1u8)),
        )
        .await;
    assert_eq!((r.0, code(&r.1)), (403, "revoked"), "{}", r.1);
}

#[tokio::test]
async fn escalated_request_is_signed_only_after_the_owners_approval_and_refused_after_expiry() {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let text = format!(
        r#"
name = "anvil-escalation"
chains = [{CHAIN}]
valid_for = "24h"
escalate = {{ above_value = "1000 USDC", ttl = "10m" }}
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "5000 USDC"
per = "day"
"#
    );
    let g = s.grant(&owner, &agent, &policy(&text)).await.expect("grant");
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;
    chain.mint(token, g.session, usdc(10_000)).await;

    // Under the threshold: signed at once.
    let (c, v) = s.sign(&g, erc20_transfer(CHAIN, 0, token, DEAD, usdc(500))).await;
    assert_eq!(c, 200, "{v}");
    broadcast(&chain, &v["raw_transaction"]).await;

    // Over it: held, not signed; the refusal names the rule and the digest.
    let big = SignPayload::Transaction(erc20_transfer(CHAIN, 1, token, DEAD, usdc(1_500)));
    let digest = bridle_common::payload::stamp_digest(&big).unwrap();
    let (c, v) = s.sign_payload(&g, big.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    assert_eq!(v["error"]["rule"], "escalate.above_value");
    assert!(v["error"]["reason"].as_str().unwrap().contains(&format!("{digest:#x}")), "{v}");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    let pending = &st["session"]["pending"][0];
    assert_eq!((pending["digest"].clone(), pending["state"].clone()), (json!(digest), json!("waiting")), "{st}");
    // Asking again does not sign it either; nothing reached the chain.
    let (c, v) = s.sign_payload(&g, big.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    assert_eq!(chain.nonce(g.session, "pending").await, 1);
    // Only the session's owner can approve, and only a pending digest.
    let mallory = Granted {
        owner: Actor::random(),
        agent: agent.clone(),
        session: g.session,
        enclave_pk: g.enclave_pk.clone(),
        created_at: g.created_at,
    };
    let (c, v) = s.approve_pending(&mallory, digest).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    let (c, v) = s.approve_pending(&g, B256::repeat_byte(7)).await;
    assert_eq!((c, code(&v)), (400, "malformed"), "{v}");

    // The owner approves exactly this digest (with the CLI): signed now, and charged now.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("owner.json");
    write_key_file(&key, "owner", &owner);
    let owner_nonce = s.enclave.next_nonce().to_string();
    let out = cli(
        &s,
        dir.path(),
        &[
            "owner",
            "approve",
            "--session",
            &g.session.to_string(),
            "--digest",
            &digest.to_string(),
            "--key",
            key.to_str().unwrap(),
            "--nonce",
            &owner_nonce,
            "--json",
        ],
    );
    let signed: Signed = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(signed.digest, digest);
    let raw = signed.raw_transaction.clone().unwrap();
    assert_eq!(recover_raw(&raw), g.session);
    broadcast(&chain, &json!(raw)).await;
    assert_eq!(chain.token_balance(token, DEAD).await, usdc(2_000));
    // The agent collects the same signature by asking again; it is not charged twice.
    let (c, v) = s.sign_payload(&g, big.clone()).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(serde_json::from_value::<Signed>(v).unwrap(), signed);
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(u256_of(&st["session"]["caps"][0]["spent"]), usdc(2_000), "{st}");

    // Another one, not approved in time: refused after it expired, and never signed.
    let bigger = SignPayload::Transaction(erc20_transfer(CHAIN, 2, token, DEAD, usdc(2_000)));
    let digest2 = bridle_common::payload::stamp_digest(&bigger).unwrap();
    let (c, v) = s.sign_payload(&g, bigger.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    s.enclave.set_clock_offset(10 * 60 + 1);
    let (c, v) = s.approve_pending(&g, digest2).await;
    assert_eq!((c, code(&v)), (403, "expired"), "{v}");
    assert_eq!(v["error"]["rule"], "escalate.ttl");
    // Asking again starts a new wait; the owner's late approval signed nothing.
    let (c, v) = s.sign_payload_at(&g, bigger, now() + 10 * 60 + 1).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    assert_eq!(chain.nonce(g.session, "pending").await, 2);
    assert_eq!(chain.token_balance(token, DEAD).await, usdc(2_000));
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(u256_of(&st["session"]["caps"][0]["spent"]), usdc(2_000), "{st}");
}
