//! What owners and agents see must be true (issue 9, findings 6 and 9): the CLI and the
//! client helpers against a LYING host.
//!
//! Each test runs the real `bridle-enclave` and `bridle-host`, with a proxy in front of the
//! host (`bridle_tests::proxy::LyingProxy`) that forwards everything but rewrites chosen
//! replies, or answers chosen requests itself. The CLI trusts the enclave identity the test
//! read over the enclave's own socket (`bridle trust pin`), as a user who verified an
//! attestation would. Before the fix, every one of these lies was printed as fact: a host-
//! chosen session address as granted, revocations that never happened, unsigned spend
//! figures, a transfer in place of a revocation, a swapped raw transaction, a truncated
//! audit log as "complete", and helpers that stamped for whatever enclave the host named.

#[path = "../examples/alloy_agent.rs"]
mod alloy_agent;

use alloy_primitives::{address, keccak256, Address, B256, U256};
use bridle_common::protocol::*;
use bridle_tests::cli::Cli;
use bridle_tests::proxy::LyingProxy;
use bridle_tests::review::{fresh_nonce, World};
use bridle_tests::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");
const SPENDER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

const POLICY: &str = r#"
name = "review-cli"
chains = [31337]
valid_for = "24h"

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"

[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["500 USDC"]
"#;

/// A stack, a lying proxy in front of its host, and a CLI that trusts the real enclave.
fn world() -> World {
    World::start(POLICY)
}

fn n() -> String {
    fresh_nonce()
}

/// `owner grant` with a fresh nonce.
fn grant_args(nonce: &str) -> [&str; 10] {
    ["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", "policy.toml", "--nonce", nonce]
}

/// A grant the host relayed, then answered with a refusal of its own: the session exists,
/// and the CLI says it may (a review of 2026-12-06: an owner granting again left the agent
/// two sessions). A grant that never left the machine says nothing of the kind.
#[tokio::test]
async fn a_grant_whose_answer_was_withheld_says_the_session_may_exist() {
    let w = world();
    w.proxy.withhold("POST", "/v1/sessions", |_| {
        let e = json!({"code": "internal", "reason": "try again", "message": "try again"});
        (500, json!({ "error": e }))
    });
    let nonce = n();
    let (out, err) = w.cli.fails(&grant_args(&nonce));
    assert!(!out.contains("session:"), "{out}");
    assert_eq!(w.proxy.forwarded("POST", "/v1/sessions"), 1, "the enclave got the grant");
    // What makes the grant stale for good, named with its nonce: not finding it in the
    // audit log proves nothing while the host may still deliver it.
    assert!(
        err.contains(&format!("the grant (owner nonce {nonce}) was sent"))
            && err.contains("whether the enclave created the session is unknown")
            && err.contains(&format!("`bridle owner revoke-all` with a nonce above {nonce}"))
            && err.contains(&format!("10 minutes past {nonce}")),
        "{err}"
    );
    // Refused before anything was sent (no such policy file): no such note.
    let (_, err) =
        w.cli.fails(&["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", "nowhere.toml"]);
    assert!(!err.contains("created the session is unknown"), "{err}");
}

#[tokio::test]
async fn a_grant_whose_session_or_binding_was_swapped_is_refused() {
    let w = world();
    // 1. The host swaps the session address for one whose key it holds.
    let attacker = Actor::random().address;
    w.proxy.rewrite("POST", "/v1/sessions", move |req, v| {
        if req.path == "/v1/sessions" {
            v["binding"]["session"] = json!(attacker);
        }
    });
    let (out, err) = w.cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "nothing printed as a session: {out}");
    assert!(err.contains("forged or altered") && err.contains("do not use or fund it"), "{err}");

    // 2. The host runs an enclave of its own: a binding signed by its key, naming itself.
    w.proxy.clear();
    let fake = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let fake_enclave = Address::from_public_key(fake.verifying_key());
    let owner = w.owner.address;
    let agent = w.agent.address;
    let hash = policy(POLICY).hash();
    w.proxy.answer("POST", "/v1/sessions", move |req| {
        let b = SessionBinding {
            enclave: fake_enclave,
            session: attacker,
            owner,
            agent,
            policy_hash: hash,
            created_at: now(),
            valid_until: req.json()["policy"]["valid_until"].as_u64().unwrap_or(0),
        };
        let (sig, rid) = fake.sign_prehash_recoverable(b.digest().as_slice()).unwrap();
        let sig = alloy_primitives::Signature::from_signature_and_parity(sig, rid.is_y_odd());
        (
            200,
            json!(SessionCreated {
                binding: b,
                binding_signature: sig.as_bytes().to_vec().into(),
                attestation: None,
                receipt: None
            }),
        )
    });
    let (out, err) = w.cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "{out}");
    assert!(err.contains(&format!("names enclave {fake_enclave}, not the trusted enclave")), "{err}");

    // 3. The host replays a genuine binding of this owner, granted to another agent.
    w.proxy.clear();
    let other = w.stack.grant(&w.owner, &Actor::random(), &policy(POLICY)).await.unwrap();
    let (_, stored) = w.stack.get(&format!("/v1/sessions/{}", other.session)).await;
    let replay = stored["stored"]["binding"].clone();
    assert!(replay.is_object(), "{stored}");
    w.proxy.answer("POST", "/v1/sessions", move |_| (200, replay.clone()));
    let (out, err) = w.cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "{out}");
    assert!(err.contains("not the agent you granted"), "{err}");

    // The truth: granted, checked, printed.
    w.proxy.clear();
    let out = w.cli.ok(&grant_args(&n()));
    assert!(out.contains("verified:    the binding is signed by the trusted enclave identity"), "{out}");
}

#[tokio::test]
async fn an_earlier_grants_reply_replayed_for_a_later_grant_is_refused() {
    // A binding does not name the owner's nonce: a policy with a fixed end, granted to the
    // same agent again, has the same binding fields but its time. The reply's receipt, for
    // the grant's nonce, tells them apart (the console alike: console_digests).
    let end = bridle_common::period::format_time(now() + 3 * 3600);
    let w = World::start(&POLICY.replace("valid_for = \"24h\"", &format!("valid_until = \"{end}\"")));
    let first = n();
    let mut args = grant_args(&first).to_vec();
    args.push("--json");
    let out = w.cli.ok(&args);
    let genuine: Value = serde_json::from_str(&out).expect("the grant's reply");
    assert!(genuine["receipt"].is_object(), "the enclave's receipt: {genuine}");
    // The host answers the next grant with the first grant's genuine reply…
    let replay = genuine.clone();
    w.proxy.answer("POST", "/v1/sessions", move |_| (200, replay.clone()));
    let (out, err) = w.cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "{out}");
    assert!(err.contains("(a replayed reply)") && err.contains("do not use or fund it"), "{err}");
    // It names the session the replayed binding is for (the owner's earlier one).
    let earlier = genuine["binding"]["session"].as_str().unwrap().to_lowercase();
    assert!(err.to_lowercase().contains(&format!("names session {earlier}")), "{err}");
    // …or with it stripped of its receipt.
    let mut bare = genuine.clone();
    bare.as_object_mut().unwrap().remove("receipt");
    w.proxy.clear();
    w.proxy.answer("POST", "/v1/sessions", move |_| (200, bare.clone()));
    let (out, err) = w.cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "{out}");
    assert!(err.contains("only the host's word"), "{err}");
    assert_eq!(w.proxy.forwarded("POST", "/v1/sessions"), 1, "only the first grant reached the host");
}

#[tokio::test]
async fn a_revoke_that_never_reached_the_enclave_is_not_reported() {
    let w = world();
    let g = w.grant().await;
    let s = g.session.to_string();
    let path = format!("/v1/sessions/{s}/revoke");
    w.proxy.answer("POST", &path, move |_| (200, json!({"sessions": [g.session]})));
    let (out, err) = w.cli.fails(&["owner", "revoke", "--key", "owner.key", "--session", &s, "--nonce", &n()]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(err.contains("not confirmed by the enclave") && err.contains("only the host's word"), "{err}");
    assert_eq!(w.proxy.forwarded("POST", &path), 0, "the host never relayed it");
    assert_eq!(w.truth(&g).state, SessionState::Active, "and the session is live");
    // revoke-all answered by the host alike.
    w.proxy.answer("POST", "/v1/owners/", move |_| (200, json!({"sessions": [g.session]})));
    let (out, err) = w.cli.fails(&["owner", "revoke-all", "--key", "owner.key", "--nonce", &n()]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(err.contains("not confirmed by the enclave"), "{err}");
    assert_eq!(w.truth(&g).state, SessionState::Active);

    // A refusal whose text would draw the success lines over the real answer (erase the
    // line, return, print "revoked: …, signed by the enclave", hide what follows): printed
    // with nothing a terminal obeys, on one line (found 2026-12-04 by a review).
    w.proxy.clear();
    let forged = format!(
        "\u{1b}[2K\rrevoked: {s}\n  signed by the enclave {} at 2026-12-04\u{1b}[8m\u{202e}",
        Address::repeat_byte(0xee)
    );
    w.proxy.answer("POST", &path, move |_| {
        (403, json!({"error": {"code": "forbidden", "message": forged.clone(), "rule": "\u{1b}]0;title\u{7}"}}))
    });
    let (out, err) = w.cli.fails(&["owner", "revoke", "--key", "owner.key", "--session", &s, "--nonce", &n()]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(!err.chars().any(|c| c == '\u{1b}' || c == '\r' || c == '\u{7}' || c == '\u{202e}'), "{err:?}");
    assert!(
        !err.lines().any(|l| l.trim_start().starts_with("revoked:") || l.trim_start().starts_with("signed by")),
        "{err}"
    );
    assert!(err.contains("\\u{001b}[2K"), "the escape is shown as text: {err}");

    // A nonce an hour ahead of the enclave's clock: refused and not spent, and the CLI says
    // so (the "spent" note would tell the owner a message the host kept can never apply).
    w.proxy.clear();
    let ahead = (now() * 1000 + 3_600_000).to_string();
    let (_, err) = w.cli.fails(&["owner", "revoke", "--key", "owner.key", "--session", &s, "--nonce", &ahead]);
    assert!(err.contains("is ahead of the enclave's clock") && err.contains("refused before it was spent"), "{err}");
    assert!(!err.contains("is spent and can never take effect"), "{err}");
    assert_eq!(w.truth(&g).state, SessionState::Active);
}

#[tokio::test]
async fn an_old_revoke_receipt_replayed_is_refused() {
    let w = world();
    let g1 = w.grant().await;
    // A genuine revocation, its reply kept by the host.
    let kept: Arc<Mutex<Option<Value>>> = Arc::default();
    let k = Arc::clone(&kept);
    w.proxy.rewrite("POST", "/v1/sessions/", move |req, v| {
        if req.path.ends_with("/revoke") {
            *k.lock().unwrap() = Some(v.clone());
        }
    });
    let out =
        w.cli.ok(&["owner", "revoke", "--key", "owner.key", "--session", &g1.session.to_string(), "--nonce", &n()]);
    assert!(out.contains(&format!("revoked: {}", g1.session)) && out.contains("signed by the enclave"), "{out}");
    let old = kept.lock().unwrap().clone().expect("the reply");
    assert!(old["receipt"].is_object(), "{old}");

    // A new session: the host answers its revocation with the old, genuinely signed reply
    // (listing it for good measure: the signature then breaks too).
    let g2 = w.grant().await;
    w.proxy.clear();
    let replay = old.clone();
    w.proxy.answer("POST", "/v1/sessions/", move |_| (200, replay.clone()));
    let (out, err) =
        w.cli.fails(&["owner", "revoke", "--key", "owner.key", "--session", &g2.session.to_string(), "--nonce", &n()]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(err.contains("a replayed reply"), "{err}");
    assert_eq!(w.truth(&g2).state, SessionState::Active);

    // revoke-all: the same.
    w.proxy.clear();
    let replay = old.clone();
    w.proxy.answer("POST", "/v1/owners/", move |_| (200, replay.clone()));
    let (_, err) = w.cli.fails(&["owner", "revoke-all", "--key", "owner.key", "--nonce", &n()]);
    assert!(err.contains("a replayed reply"), "{err}");
    assert_eq!(w.truth(&g2).state, SessionState::Active);
}

/// Owner nonces are per owner and anyone can be an owner: the host holds back the owner's
/// `revoke-all` and answers with the enclave's genuine reply to its own, from a fresh key
/// with the same nonce (found 2026-12-04 by a review: the receipt's word was the bare
/// nonce, and the CLI printed "revoked, signed by the enclave"). The word binds the owner.
#[tokio::test]
async fn another_owners_revoke_all_with_the_same_nonce_is_not_this_owners() {
    let w = world();
    let g = w.grant().await;
    let nonce = n();
    let stranger = Actor::random();
    let enclave = w.stack.status().await.identity_address;
    let mut msg =
        owner_action(bridle_common::owner::action::REVOKE_ALL, enclave, Address::ZERO, Address::ZERO, B256::ZERO);
    msg.nonce = nonce.parse().unwrap();
    let path = format!("/v1/owners/{}/revoke-all", stranger.address);
    let (s, genuine) = w.stack.post(&path, &RevokeAll { auth: stranger.sign_owner(&msg) }).await;
    assert_eq!(s, 200, "{genuine}");
    assert!(genuine["receipt"].is_object(), "the enclave's genuine receipt: {genuine}");
    w.proxy.answer("POST", "/v1/owners/", move |_| (200, genuine.clone()));
    let (out, err) = w.cli.fails(&["owner", "revoke-all", "--key", "owner.key", "--nonce", &nonce]);
    assert!(!out.contains("revoked"), "{out}");
    assert!(err.contains("a replayed reply"), "{err}");
    assert_eq!(w.truth(&g).state, SessionState::Active);
}

#[tokio::test]
async fn an_unsigned_altered_or_replayed_status_is_labelled_and_fails() {
    let w = world();
    let g = w.grant().await;
    w.signed(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await;
    let s = g.session.to_string();
    let status = ["owner", "status", "--session", s.as_str()];

    let out = w.cli.ok(&status);
    assert!(out.starts_with("signed by the enclave 0x"), "{out}");
    assert!(out.contains("spent 60 of 100 USDC"), "{out}");

    // Unsigned: shown only under the label, and the command fails.
    w.proxy.rewrite("GET", "/v1/status", |_, v| v["receipt"] = Value::Null);
    let (out, err) = w.cli.fails(&status);
    assert!(out.starts_with("UNVERIFIED (the host's word)"), "{out}");
    assert!(out.trim_end().ends_with("not the enclave"), "{out}");
    assert!(err.contains("only the host's word"), "{err}");
    let o = w.cli.run(&["owner", "status", "--session", &s, "--allow-unverified"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("UNVERIFIED"), "{o:?}");
    let (out, _) = w.cli.fails(&["owner", "allowances", "--session", &s]);
    assert!(out.starts_with("UNVERIFIED (the host's word)"), "{out}");

    // Altered: the host hides the spend.
    w.proxy.clear();
    w.proxy.rewrite("GET", "/v1/status", |_, v| {
        if v["session"].is_object() {
            v["session"]["caps"][0]["spent"] = json!("0x0");
        }
    });
    let (out, err) = w.cli.fails(&status);
    assert!(out.starts_with("UNVERIFIED") && out.contains("spent 0 of 100 USDC"), "{out}");
    assert!(err.contains("altered or forged"), "{err}");
    // Nothing an owner signs rests on it.
    let (_, err) = w.cli.fails(&[
        "owner",
        "update",
        "--key",
        "owner.key",
        "--session",
        &s,
        "--policy",
        "policy.toml",
        "--nonce",
        &n(),
    ]);
    assert!(err.contains("not the trusted enclave's word") && err.contains("nothing was sent"), "{err}");

    // Replayed: an old signed status (for someone else's nonce).
    w.proxy.clear();
    let (_, old) = w.stack.get(&format!("/v1/status?session={s}&nonce={}", B256::repeat_byte(7))).await;
    w.proxy.answer("GET", "/v1/status", move |_| (200, old.clone()));
    let (out, err) = w.cli.fails(&status);
    assert!(out.starts_with("UNVERIFIED"), "{out}");
    assert!(err.contains("a replayed reply"), "{err}");
}

#[tokio::test]
async fn a_sweep_transaction_swapped_for_a_transfer_is_refused() {
    let w = world();
    let g = w.grant().await;
    w.signed(&g, erc20_approve(31337, 0, USDC, SPENDER, usdc(50))).await;
    // A transfer the session really signed, at the nonce the sweep will use.
    let transfer = w.signed(&g, erc20_transfer(31337, 2, USDC, DEAD, usdc(10))).await;
    let raw = transfer.raw_transaction.clone().unwrap();
    let (c, v) = w.stack.revoke(&g).await;
    assert_eq!(c, 200, "{v}");
    let s = g.session.to_string();
    let sweep = |owner_nonce: &str| -> Vec<String> {
        ["owner", "sweep", "--session", &s, "--key", "owner.key", "--chain-id", "31337", "--nonce", "2"]
            .into_iter()
            .chain(["--max-fee", "2 gwei", "--owner-nonce", owner_nonce])
            .map(String::from)
            .collect()
    };

    // The host answers with the transfer as the "revocation".
    let session = g.session;
    w.proxy.answer("POST", &format!("/v1/sessions/{s}/sweep"), move |_| {
        (
            200,
            json!({
                "session": session,
                "transactions": [{
                    "chain_id": 31337, "nonce": 2, "token": USDC, "spender": SPENDER, "kind": "erc20",
                    "to": USDC, "hash": keccak256(&raw), "raw_transaction": raw,
                }],
                "skipped": [],
                "key_destroyed": true,
            }),
        )
    });
    let args = sweep(&n());
    let (out, err) = w.cli.fails(&as_strs(&args));
    assert!(!out.contains("destroyed") && !out.contains("revocation(s)"), "{out}");
    assert!(err.contains("the host swapped the transaction") && err.contains("nothing is sent"), "{err}");

    // The genuine sweep with its receipt stripped: the transactions check out and are
    // printed, labelled as the host's word (the sweep may have been made: they may be the
    // only revocations the owner gets); the key's destruction is not reported, and the
    // command fails.
    w.proxy.clear();
    let kept = Arc::new(Mutex::new(Value::Null));
    let keep = kept.clone();
    w.proxy.rewrite("POST", &format!("/v1/sessions/{s}/sweep"), move |_, v| {
        v["receipt"] = Value::Null;
        // And the host claims the key is destroyed (here it is not: the agent used the
        // sweep's nonce, so the revocation may never be mined and stays sweepable).
        v["key_destroyed"] = json!(true);
        *keep.lock().unwrap() = v.clone();
    });
    let args = sweep(&n());
    let (out, err) = w.cli.fails(&as_strs(&args));
    assert!(!out.contains("destroyed"), "{out}");
    assert!(out.contains("revocation(s)") && out.contains("UNVERIFIED (the host's word)"), "{out}");
    assert!(out.contains("approve(") && out.contains("may or may not have been made"), "{out}");
    assert!(err.contains("not confirmed by the enclave"), "{err}");
    // The same reply replayed for a later sweep, as JSON: exit status 1 exactly, the host's
    // word labelled, its claim of the key's destruction not reported.
    w.proxy.clear();
    let reply = kept.lock().unwrap().clone();
    assert!(reply["transactions"].is_array(), "{reply}");
    w.proxy.answer("POST", &format!("/v1/sessions/{s}/sweep"), move |_| (200, reply.clone()));
    let mut args = sweep(&n());
    args.push("--json".into());
    let o = w.cli.run(&as_strs(&args));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    assert_eq!(v["verified"], false, "{v}");
    assert!(v["word"].as_str().is_some_and(|w| w.starts_with("UNVERIFIED (the host's word)")), "{v}");
    assert_eq!(v["key_destroyed"], Value::Null, "{v}");
    assert_eq!(v["transactions"].as_array().map(Vec::len), Some(1), "{v}");
}

#[tokio::test]
async fn a_swapped_sign_tx_reply_is_refused() {
    let w = world();
    let g = w.grant().await;
    // Another transaction the session signed: the host has it.
    let other = w.signed(&g, erc20_transfer(31337, 5, USDC, DEAD, usdc(1))).await;
    let s = g.session.to_string();
    let sign = |nonce: &str| {
        vec![
            "agent".to_string(),
            "sign-tx".into(),
            "--key".into(),
            "agent.key".into(),
            "--session".into(),
            s.clone(),
            "--chain-id".into(),
            "31337".into(),
            "--nonce".into(),
            nonce.into(),
            "--to".into(),
            USDC.to_string(),
            "--call".into(),
            "transfer(address,uint256)".into(),
            "--arg".into(),
            DEAD.to_string(),
            "--arg".into(),
            "2000000".into(),
            "--raw".into(),
        ]
    };
    let args = sign("0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // The raw transaction swapped.
    let raw = other.raw_transaction.clone().unwrap();
    w.proxy.rewrite("POST", "/v1/sign", move |_, v| v["raw_transaction"] = json!(raw));
    let (out, err) = w.cli.fails(&args);
    assert!(out.trim().is_empty(), "no raw transaction printed: {out}");
    assert!(err.contains("the raw transaction's nonce is 5, not the requested 0"), "{err}");
    // The whole reply swapped.
    w.proxy.clear();
    let whole = json!(other);
    w.proxy.rewrite("POST", "/v1/sign", move |_, v| *v = whole.clone());
    let (out, err) = w.cli.fails(&args);
    assert!(out.trim().is_empty(), "{out}");
    assert!(err.contains("not this request's"), "{err}");
    // The truth.
    w.proxy.clear();
    let args = sign("1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let raw = w.cli.ok(&args);
    assert_eq!(recover_raw(&hex::decode(raw.trim().trim_start_matches("0x")).unwrap()), g.session);
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Over 1 000 entries in the log: the first batch (entries 0..=999) ends at a batch boundary,
/// with a head the enclave really signed there.
fn fill_log(w: &World, g: &Granted, n: usize) {
    for i in 0..n {
        let payload = SignPayload::Transaction(erc20_transfer(1, i as u64, USDC, DEAD, usdc(1)));
        let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, &payload, now());
        let r = w.stack.enclave.call(Call::SignIfAllowed(SignRequest { session: g.session, payload, stamp }));
        assert!(matches!(r, Err(ref d) if d.code == bridle_common::ErrorCode::ChainNotAllowed), "{r:?}");
    }
}

#[tokio::test]
async fn an_audit_export_cut_at_a_batch_boundary_is_incomplete() {
    let w = world();
    let g = w.grant().await;
    fill_log(&w, &g, 1_001);
    let batch = match w.stack.enclave.call(Call::Audit(AuditQuery { since: 0, nonce: None })) {
        Ok(Reply::Audit(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((batch.entries.len(), batch.head.seq), (1_000, 999));
    assert!(batch.more && batch.head.end > 1_000, "{:?}", batch.head);
    let st = w.stack.status().await;
    let cut = json!({
        "format": "bridle-audit-export/v1",
        "enclave": st.identity_address,
        "identity_public_key": st.identity_public_key,
        "entries": batch.entries,
        "head": batch.head,
    });
    w.proxy.answer("GET", "/v1/audit/export", move |_| (200, cut.clone()));
    let (_, err) = w.cli.fails(&["audit", "export", "--out", "cut.json"]);
    assert!(err.contains("incomplete") && err.contains("entries missing"), "{err}");
    // The file (written for inspection) never verifies as complete: its head says more
    // entries existed, and its fresh head says how many.
    let (_, err) = w.cli.fails(&["verify", "audit", "cut.json", "--identity-key", &w.identity]);
    assert!(err.contains("incomplete"), "{err}");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(w.cli.dir.join("cut.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("fresh_head");
    std::fs::write(w.cli.dir.join("bare.json"), v.to_string()).unwrap();
    let (_, err) = w.cli.fails(&["verify", "audit", "bare.json", "--identity-key", &w.identity]);
    assert!(err.contains("a log cut at a batch boundary"), "{err}");
}

#[tokio::test]
async fn a_stale_audit_export_is_caught_by_the_fresh_head() {
    let w = world();
    let g = w.grant().await;
    w.signed(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await;
    let out = w.cli.run(&["audit", "export", "--out", "e0.json"]);
    assert!(out.status.success(), "{}", bridle_tests::cli::text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the export reaches it"), "{out:?}");
    let o = w.cli.run(&["verify", "audit", "e0.json", "--host", &w.proxy.url]);
    assert!(o.status.success(), "{}", bridle_tests::cli::text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(now: the fresh head"), "{o:?}");

    // More happens: a transfer and the owner's revocation. The host serves the old copy.
    w.signed(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(30))).await;
    assert_eq!(w.stack.revoke(&g).await.0, 200);
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(w.cli.dir.join("e0.json")).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("fresh_head");
    w.proxy.answer("GET", "/v1/audit/export", move |_| (200, old.clone()));
    let (_, err) = w.cli.fails(&["audit", "export", "--out", "e1.json"]);
    assert!(err.contains("incomplete") && err.contains("2 entries missing"), "{err}");
    let (_, err) = w.cli.fails(&["verify", "audit", "e1.json", "--identity-key", &w.identity]);
    assert!(err.contains("incomplete") && err.contains("2 entries missing"), "{err}");
    // The old file alone is complete only as of when it was made; asked now, it is not.
    let o = w.cli.run(&["verify", "audit", "e0.json", "--identity-key", &w.identity]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("the fresh head the exporter asked for"), "{o:?}");
    let (_, err) = w.cli.fails(&["verify", "audit", "e0.json", "--host", &w.proxy.url]);
    assert!(err.contains("2 entries missing"), "{err}");

    // A host that says its enclave changed (a head naming another enclave) turns the check
    // asked for off no longer: no fresh head for this log, so not complete now.
    w.proxy.clear();
    w.proxy.rewrite("GET", "/v1/audit/head", |_, v| v["enclave"] = json!(Address::repeat_byte(0x66)));
    let (out, err) = w.cli.fails(&["verify", "audit", "e0.json", "--host", &w.proxy.url]);
    assert!(!out.contains("valid"), "{out}");
    assert!(err.contains("no fresh head for this log"), "{err}");

    // A copy short of the fresh head whose head the host left at the end (the last entry
    // dropped, the genuine head kept): `audit export` checks the entries, not the host's
    // word for where they end.
    w.proxy.clear();
    let genuine: Value = w.stack.get("/v1/audit/export").await.1;
    let mut short = genuine.clone();
    short["entries"].as_array_mut().unwrap().pop();
    w.proxy.answer("GET", "/v1/audit/export", move |_| (200, short.clone()));
    let (_, err) = w.cli.fails(&["audit", "export", "--out", "e2.json"]);
    assert!(err.contains("invalid") && !err.contains("the export reaches it"), "{err}");
}

#[tokio::test]
async fn a_changed_enclave_behind_the_host_stops_every_command() {
    let w = world();
    let g = w.grant().await;
    // The proxy now forwards to another enclave's host (a restart looks the same).
    let other = Stack::start();
    let proxy = LyingProxy::start(&other.host.url);
    let cli = Cli { dir: w.cli.dir.clone(), host: proxy.url.clone(), trust: w.cli.trust.clone() };
    cli.pin(&w.identity);
    let (out, err) = cli.fails(&grant_args(&n()));
    assert!(!out.contains("session:"), "{out}");
    assert!(err.contains("re-attest") && err.contains("nothing was sent"), "{err}");
    let (_, err) = cli.fails(&["owner", "status", "--session", &g.session.to_string()]);
    assert!(err.contains("re-attest"), "{err}");
    // Without any trusted identity: a clear way to establish one.
    cli.ok(&["trust", "forget", "--host", &proxy.url]);
    let (_, err) = cli.fails(&grant_args(&n()));
    assert!(err.contains("no trusted enclave identity") && err.contains("--trust-on-first-use"), "{err}");
    // Trust on first use: only when asked, and said.
    let o = cli.run(&[
        "owner",
        "grant",
        "--trust-on-first-use",
        "--key",
        "owner.key",
        "--agent",
        "agent.key",
        "--policy",
        "policy.toml",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning: --trust-on-first-use"), "{o:?}");
    assert!(cli.ok(&["trust", "show", "--host", &proxy.url]).contains("trusted on first use"));
    // Its key is not handed to client helpers as a verified one (a review of 2026-12-05).
    let o = cli.run(&["trust", "show", "--host", &proxy.url, "--public-key"]);
    assert!(!o.status.success() && o.stdout.is_empty(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("trusted on first use: the host's word"), "{o:?}");
    let o = cli.run(&["trust", "show", "--host", &proxy.url, "--public-key", "--allow-unverified"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).trim().starts_with("0x"), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("trusted on first use"), "{o:?}");
    // The audit commands say so too: a tofu identity is the host's word.
    let o = cli.run(&["audit", "export", "--out", "tofu.json"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("trusted on first use: the host's word"), "{o:?}");
    let o = cli.run(&["verify", "audit", "tofu.json", "--host", &proxy.url]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("trusted on first use: the host's word"), "{o:?}");
}

#[tokio::test]
async fn an_update_shows_what_carries_over_and_needs_the_enclaves_receipt() {
    let w = world();
    let g = w.grant().await;
    w.signed(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await;
    let weekly = POLICY.replace("max = \"100 USDC\"\nper = \"day\"", "max = \"300 USDC\"\nper = \"week\"");
    std::fs::write(w.cli.dir.join("weekly.toml"), &weekly).unwrap();
    let s = g.session.to_string();
    let update = |nonce: String| -> Vec<String> {
        ["owner", "update", "--key", "owner.key", "--session", &s, "--policy", "weekly.toml", "--nonce", &nonce]
            .into_iter()
            .map(String::from)
            .collect()
    };
    let mut dry = update(n());
    dry.push("--dry-run".into());
    let out = w.cli.ok(&as_strs(&dry));
    assert!(out.contains("limits[0] (300 USDC per week): at least 60 USDC already spent in the current week"), "{out}");
    assert!(out.contains("dry run: nothing signed"), "{out}");
    // A lying host answers the update itself. (The policy in force read from the enclave,
    // not resolved again here: `valid_for` resolves against the clock, so a second
    // boundary between the grant and this line changed the hash under CI load.)
    let before = w.truth(&g).policy_hash;
    let hash = policy(&weekly).hash();
    let session = g.session;
    w.proxy.answer("POST", &format!("/v1/sessions/{s}/policy"), move |_| {
        (200, json!({"session": session, "policy_hash": hash}))
    });
    let (out, err) = w.cli.fails(&as_strs(&update(n())));
    assert!(!out.contains(&format!("now enforces policy {hash}")), "{out}");
    assert!(err.contains("not confirmed by the enclave"), "{err}");
    assert_eq!(w.truth(&g).policy_hash, before, "the old policy is still in force");
    // The truth: receipt and new binding.
    w.proxy.clear();
    let out = w.cli.ok(&as_strs(&update(n())));
    assert!(out.contains(&format!("session {s} now enforces policy {}", w.truth(&g).policy_hash)), "{out}");
    assert!(out.contains("receipt for owner nonce"), "{out}");
}

#[tokio::test]
async fn client_helpers_pinned_to_another_identity_refuse_before_signing() {
    require_python_clients();
    let w = world();
    let g = w.grant().await;
    let stranger = {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let k = k256::SecretKey::random(&mut rand_core::OsRng);
        format!("0x{}", hex::encode(k.public_key().to_encoded_point(true).as_bytes()))
    };
    let key = w.cli.dir.join("agent.key");
    let session = g.session.to_string();

    // Python (web3.py helper): pinned to another identity, not pinned, pinned right.
    let py = r#"
import sys, warnings
sys.path.insert(0, sys.argv[1])
from bridle_signer import BridleSigner, BridleError
host, key, session, pin = sys.argv[2:6]
def attempt(**kw):
    try:
        BridleSigner(host, key, session, **kw)
        return "accepted"
    except BridleError as e:
        return e.code
    except ValueError as e:
        return "value_error:" + str(e)[:40]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    print("|".join([attempt(enclave_public_key=pin), attempt(), attempt(enclave_public_key=sys.argv[6]),
                    attempt(trust_on_first_use=True)]))
"#;
    let root = repo_root();
    let examples = root.join("examples/python");
    let out = eth_account_py(
        py,
        &[examples.to_str().unwrap(), &w.proxy.url, key.to_str().unwrap(), &session, &stranger, &w.identity],
    );
    let parts: Vec<&str> = out.split('|').collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(parts[0], "enclave_mismatch", "{out}");
    assert!(parts[1].starts_with("value_error:enclave_public_key is required"), "{out}");
    assert_eq!((parts[2], parts[3]), ("accepted", "accepted"), "{out}");

    // viem and ethers (one Stamper): pinned to another identity.
    let tsx = tsx_bin();
    let script = w.cli.dir.join("pin.mts");
    let ts = root.join("examples/ts");
    std::fs::write(
        &script,
        format!(
            r#"import {{ bridleAccount }} from "{0}/bridle-signer.ts";
import {{ BridleSigner }} from "{0}/bridle-ethers.ts";
const o = {{ host: process.argv[2], agentKey: process.argv[3], session: process.argv[4] }};
const codes: string[] = [];
for (const f of [() => bridleAccount({{ ...o, enclavePublicKey: process.argv[5] }}),
                 () => BridleSigner.create({{ ...o, enclavePublicKey: process.argv[5] }}),
                 () => bridleAccount(o),
                 () => bridleAccount({{ ...o, enclavePublicKey: process.argv[6] }})]) {{
  try {{ await f(); codes.push("accepted"); }} catch (e: any) {{ codes.push(e.code ?? "error"); }}
}}
console.log(codes.join(" "));
"#,
            ts.display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(&tsx)
        .arg(&script)
        .args([&w.proxy.url, key.to_str().unwrap(), &session, &stranger, &w.identity])
        .current_dir(&ts)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.trim(), "enclave_mismatch enclave_mismatch error accepted", "{o:?}");

    // alloy.
    let secret = alloy_agent::load_agent_key(key.to_str().unwrap()).unwrap();
    let pk = |h: &str| k256::PublicKey::from_sec1_bytes(&hex::decode(h.trim_start_matches("0x")).unwrap()).unwrap();
    let pinned = alloy_agent::EnclaveTrust::Pinned(pk(&stranger));
    match alloy_agent::BridleSigner::connect(&w.proxy.url, &secret, g.session, pinned).await {
        Err(e) => {
            let b = e.downcast::<alloy_agent::BridleError>().expect("a BridleError");
            assert_eq!(b.code, "enclave_mismatch", "{b}");
        }
        Ok(_) => panic!("pinned to another identity, yet connected"),
    }
    let right = alloy_agent::EnclaveTrust::Pinned(pk(&w.identity));
    let signer = alloy_agent::BridleSigner::connect(&w.proxy.url, &secret, g.session, right).await.unwrap();

    // The host returns the high-s twin of the enclave's signature (n − s, the other parity):
    // it recovers to the session alike, but no node accepts it (EIP-2), so the agent would
    // track a transaction never mined while the host keeps the real one. Refused.
    let n =
        U256::from_be_slice(&hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap());
    w.proxy.rewrite("POST", "/rpc", move |_, reply| {
        let tx = &mut reply["result"]["tx"];
        let s: U256 = tx["s"].as_str().unwrap().parse().unwrap();
        tx["s"] = json!(format!("{:#x}", n - s));
        let parity = tx["yParity"].as_str().unwrap() == "0x1";
        tx["yParity"] = json!(if parity { "0x0" } else { "0x1" });
        tx["v"] = tx["yParity"].clone();
        // And a raw transaction to match, for the helpers that compare it.
        use alloy_eips::eip2718::{Decodable2718, Encodable2718};
        let raw = hex::decode(reply["result"]["raw"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let Ok(alloy_consensus::TxEnvelope::Eip1559(signed)) = alloy_consensus::TxEnvelope::decode_2718(&mut &raw[..])
        else {
            panic!("an EIP-1559 transaction")
        };
        let sig = signed.signature();
        let twin = alloy_primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
        let env = alloy_consensus::TxEnvelope::from(alloy_consensus::Signed::new_unhashed(signed.tx().clone(), twin));
        reply["result"]["raw"] = json!(format!("0x{}", hex::encode(env.encoded_2718())));
    });
    let data = erc20_transfer(31337, 0, USDC, DEAD, usdc(1)).call().unwrap().data.clone();
    let mut tx = alloy_consensus::TxEip1559 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(USDC),
        value: U256::ZERO,
        access_list: Default::default(),
        input: data,
    };
    let e = signer.sign_tx(&mut tx).await.expect_err("a high-s signature is not the enclave's");
    assert!(e.to_string().contains("upper half of the curve order"), "{e}");
    // viem: the same twin, with a raw transaction that matches it.
    let script = w.cli.dir.join("high_s.mts");
    std::fs::write(
        &script,
        format!(
            r#"import {{ bridleAccount }} from "{0}/bridle-signer.ts";
const a = await bridleAccount({{ host: process.argv[2], agentKey: process.argv[3], session: process.argv[4], enclavePublicKey: process.argv[5] }});
try {{
  await a.signTransaction({{ type: "eip1559", chainId: 31337, nonce: 0, gas: 100000n, maxFeePerGas: 2000000000n,
    maxPriorityFeePerGas: 1000000000n, to: process.argv[6], value: 0n, data: process.argv[7] }});
  console.log("accepted");
}} catch (e: any) {{ console.log(e.code ?? "error", e.message); }}
"#,
            ts.display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(&tsx)
        .arg(&script)
        .args([&w.proxy.url, key.to_str().unwrap(), &session, &w.identity, &USDC.to_string(), &tx.input.to_string()])
        .current_dir(&ts)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("bad_signature") && out.contains("upper half"), "{o:?}");
    w.proxy.clear();
    signer.sign_tx(&mut tx).await.expect("the enclave's own signature");
}

#[tokio::test]
async fn verify_session_proves_the_policy_in_force_now() {
    // An enclave that writes its mock root, so that its attestations can be verified.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mock-root.pem");
    let enclave = EnclaveProc::start_in(dir, &["--dev-nsm-root-out", root.to_str().unwrap()]);
    let host = HostProc::start(&enclave.socket, enclave.dir.path());
    let proxy = LyingProxy::start(&host.url);
    let work = tempfile::tempdir().unwrap();
    let cli = Cli::new(work.path(), &proxy.url);
    cli.ok(&["trust", "attest", "--host", &proxy.url, "--root", root.to_str().unwrap(), "--any-image"]);
    let owner = Actor::random();
    write_key_file(&work.path().join("owner.key"), "owner", &owner);
    write_key_file(&work.path().join("agent.key"), "agent", &Actor::random());
    std::fs::write(work.path().join("policy.toml"), POLICY).unwrap();
    let weekly = POLICY.replace("max = \"100 USDC\"\nper = \"day\"", "max = \"300 USDC\"\nper = \"week\"");
    std::fs::write(work.path().join("weekly.toml"), &weekly).unwrap();
    let created = cli.ok(&[&grant_args(&n())[..], &["--json"][..]].concat());
    std::fs::write(work.path().join("created.json"), &created).unwrap();
    let created: Value = serde_json::from_str(&created).unwrap();
    let s = created["binding"]["session"].as_str().unwrap().to_string();
    let root = root.to_str().unwrap().to_string();
    let verify = |policy: &str| {
        cli.run(&[
            "verify",
            "session",
            "--host",
            &proxy.url,
            "--session",
            &s,
            "--policy",
            policy,
            "--root",
            &root,
            "--any-image",
        ])
    };
    let o = verify("policy.toml");
    assert!(o.status.success(), "{}", bridle_tests::cli::text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("now (status signed by the attested identity"), "{o:?}");

    // The owner updates the policy: the creation binding no longer says what is in force.
    cli.ok(&["owner", "update", "--key", "owner.key", "--session", &s, "--policy", "weekly.toml", "--nonce", &n()]);
    let o = verify("policy.toml");
    assert_eq!(o.status.code(), Some(1), "{}", bridle_tests::cli::text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("replaced since by an owner update"), "{o:?}");
    let o = verify("weekly.toml");
    assert!(o.status.success(), "{}", bridle_tests::cli::text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("updated:      created under policy") && out.contains("now (status signed"), "{out}");
    // Offline, the saved binding proves only the creation, and says so.
    let o = cli.run(&[
        "verify",
        "session",
        "--binding",
        "created.json",
        "--policy",
        "policy.toml",
        "--root",
        &root,
        "--any-image",
    ]);
    assert!(o.status.success(), "{}", bridle_tests::cli::text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("offline, this proves the policy at the session's creation"));

    // A host that hides the update (an unsigned status claiming the old policy) is caught.
    let old = policy(POLICY);
    proxy.rewrite("GET", "/v1/status", move |_, v| {
        if v["session"].is_object() {
            v["session"]["policy_hash"] = json!(old.hash());
            v["session"]["valid_until"] = json!(old.valid_until);
        }
    });
    let o = verify("policy.toml");
    assert_eq!(o.status.code(), Some(1), "{}", bridle_tests::cli::text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not the attested enclave's word"), "{o:?}");
}

#[tokio::test]
async fn a_reply_of_any_size_is_not_read_whole() {
    // The host is untrusted: a reply is read up to 64 MiB, and an error's text is quoted up
    // to 1 KiB (a review of 2026-12-03: the MCP server held any reply whole and copied an
    // error's body into its tool result).
    let w = world();
    let g = w.grant().await;
    let s = g.session.to_string();
    let status = ["owner", "status", "--session", s.as_str()];
    w.proxy.answer("GET", "/v1/status", |_| (200, json!({"padding": "x".repeat(65 << 20)})));
    let (out, err) = w.cli.fails(&status);
    assert!(err.contains("the host's reply is over 67108864 bytes"), "{}", &err[..err.len().min(2000)]);
    assert!(out.len() + err.len() < 16 << 10, "{} bytes printed", out.len() + err.len());
    w.proxy.clear();
    w.proxy.answer("GET", "/v1/status", |_| (400, json!({"error": {"message": "y".repeat(1 << 20)}})));
    let (out, err) = w.cli.fails(&status);
    assert!(err.contains("bytes cut"), "{}", &err[..err.len().min(2000)]);
    assert!(out.len() + err.len() < 16 << 10, "{} bytes printed", out.len() + err.len());
}

/// The Python helper builds a legacy transaction's `v` from its own chain id (EIP-155): a
/// host answering with the enclave's genuine r and s but `v = 27 + parity` (and a raw
/// transaction to match) names another chain, or none — refused, where it passed before
/// (found 2026-12-04 by a review). The genuine answer passes.
#[test]
fn the_python_helper_takes_v_from_its_own_chain_id() {
    let py = r#"
import sys
sys.path.insert(0, sys.argv[1])
from bridle_signer import BridleSigner, BridleError
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict, encode_transaction
from eth_keys import keys
key = keys.PrivateKey(b"\x11" * 32)
tx = {"chainId": 31337, "nonce": 0, "gasPrice": 10**9, "gas": 21000, "to": "0x000000000000000000000000000000000000dEaD", "value": 1, "data": b""}
unsigned = serializable_unsigned_transaction_from_dict(tx)
sig = key.sign_msg_hash(bytes(unsigned.hash()))
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
def answer(v, s):
    raw = bytes(encode_transaction(unsigned, (v, sig.r, s)))
    return {"raw": "0x" + raw.hex(), "tx": {"v": hex(v), "r": hex(sig.r), "s": hex(s)}}
def attempt(v, s=sig.s):
    signer = BridleSigner.__new__(BridleSigner)
    signer.address = key.public_key.to_checksum_address()
    signer.stamp = lambda kind, digest: "stamp"
    signer.rpc = lambda method, params, stamp=None: answer(v, s)
    try:
        signer.sign_transaction(tx)
        return "accepted"
    except BridleError as e:
        return e.code
# The high-s twin (n - s, the other parity) recovers to the session too; no node takes it.
print(attempt(27 + sig.v), attempt(31337 * 2 + 35 + sig.v), attempt(1 * 2 + 35 + sig.v),
      attempt(31337 * 2 + 35 + (1 - sig.v), N - sig.s))
"#;
    let examples = repo_root().join("examples/python");
    let out = eth_account_py(py, &[examples.to_str().unwrap()]);
    assert_eq!(out, "bad_signature accepted bad_signature bad_signature", "{out}");
}
