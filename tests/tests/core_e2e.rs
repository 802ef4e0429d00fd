//! End to end with the real binaries over the real socket and HTTP (issue: Bridle core).

use alloy_primitives::{address, Address, Bytes, B256, U256};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use bridle_tests::*;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn usdc_daily(extra: &str) -> String {
    format!(
        r#"
name = "usdc-daily"
chains = [31337]
valid_for = "24h"
{extra}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[approvals]
spenders = ["{ROUTER}"]
max = ["50 USDC"]
"#
    )
}

#[tokio::test]
async fn transfer_within_cap_is_signed_and_over_cap_is_denied() {
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&usdc_daily(""))).await.expect("grant");

    let (code60, v) = s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await;
    assert_eq!(code60, 200, "{v}");
    let raw: Bytes = serde_json::from_value(v["raw_transaction"].clone()).unwrap();
    // The signer, recovered by implementations we did not write, is the session address.
    assert_eq!(recover_raw(&raw), g.session);
    assert_eq!(recover_raw_eth_account(&raw), g.session);

    let (code50, v) = s.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(50))).await;
    assert_eq!(code50, 403, "{v}");
    assert_eq!(code(&v), "spend_cap");
    assert_eq!(v["error"]["rule"], "limits[0]");
    assert!(v["error"]["reason"].as_str().unwrap().contains("spent 60 USDC, asking 50 USDC, cap 100 USDC"), "{v}");

    // Session status reports the spend and uses.
    let (c, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(c, 200, "{st}");
    assert_eq!(st["session"]["uses"], 1);
    let spent: U256 = serde_json::from_value(st["session"]["caps"][0]["spent"].clone()).unwrap();
    assert_eq!(spent, usdc(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_exceed_the_cap() {
    let s = std::sync::Arc::new(Stack::start());
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = std::sync::Arc::new(s.grant(&owner, &agent, &policy(&usdc_daily(""))).await.expect("grant"));
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let (s, g) = (s.clone(), g.clone());
        tasks.push(tokio::spawn(async move { s.sign(&g, erc20_transfer(31337, i, USDC, DEAD, usdc(1))).await }));
    }
    let (mut ok, mut capped) = (0, 0);
    for t in tasks {
        let (c, v) = t.await.unwrap();
        match c {
            200 => ok += 1,
            403 if code(&v) == "spend_cap" => capped += 1,
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((ok, capped), (100, 100));
}

#[tokio::test]
async fn time_bounds_are_enforced() {
    let s = Stack::start();
    let owner = Actor::random();

    // No valid_until: refused at creation.
    let no_end = policy("name='x'\nchains=[31337]\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n");
    let (c, v) = s.grant(&owner, &Actor::random(), &no_end).await.err().expect("refused");
    assert_eq!((c, code(&v)), (400, "invalid_policy"), "{v}");
    assert_eq!(v["error"]["rule"], "valid_until");

    // More than 24 h without an explicit maximum: refused.
    let long = policy(&usdc_daily("").replace("valid_for = \"24h\"", "valid_for = \"25h\""));
    let (c, v) = s.grant(&owner, &Actor::random(), &long).await.err().expect("refused");
    assert_eq!((c, code(&v)), (400, "invalid_policy"), "{v}");

    // Not yet valid.
    let later = policy(&usdc_daily(&format!("valid_after = {}", now() + 3600)));
    let g = s.grant(&owner, &Actor::random(), &later).await.expect("grant");
    let (c, v) = s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (403, "not_yet_valid"), "{v}");

    // Expired: move the enclave's clock past valid_until.
    let g = s.grant(&owner, &Actor::random(), &policy(&usdc_daily(""))).await.expect("grant");
    let (c, _) = s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await;
    assert_eq!(c, 200);
    s.enclave.set_clock_offset(25 * 3600);
    // The agent's stamp must be within the window of the enclave's (moved) clock.
    let payload = SignPayload::Transaction(erc20_transfer(31337, 1, USDC, DEAD, usdc(1)));
    let stamp = g.agent.stamp(&g.enclave_pk, g.session, &payload, now() + 25 * 3600);
    let (c, v) = s.post("/v1/sign", &SignRequest { session: g.session, payload, stamp }).await;
    assert_eq!((c, code(&v)), (403, "expired"), "{v}");
}

#[tokio::test]
async fn revoke_and_revoke_all() {
    let s = Stack::start();
    let owner = Actor::random();
    let other_owner = Actor::random();
    let p = policy(&usdc_daily(""));
    let g1 = s.grant(&owner, &Actor::random(), &p).await.unwrap();
    let g2 = s.grant(&owner, &Actor::random(), &p).await.unwrap();
    let g3 = s.grant(&owner, &Actor::random(), &p).await.unwrap();
    let other = s.grant(&other_owner, &Actor::random(), &p).await.unwrap();
    let st = s.status().await;

    // Someone else cannot revoke it.
    let revoke = |by: &Actor, session: Address| {
        let msg = OwnerAction {
            action: action::REVOKE.into(),
            enclave: st.identity_address,
            session,
            agent: Address::ZERO,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce: Actor::next_nonce(),
        };
        Revoke { auth: by.sign_owner(&msg), session }
    };
    let mut bad = revoke(&other_owner, g1.session);
    bad.auth.owner = owner.address;
    let (c, v) = s.post(&format!("/v1/sessions/{}/revoke", g1.session), &bad).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    // The owner revokes g1 (the agent field must be the session's agent).
    let msg = OwnerAction {
        action: action::REVOKE.into(),
        enclave: st.identity_address,
        session: g1.session,
        agent: g1.agent.address,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let (c, v) = s
        .post(
            &format!("/v1/sessions/{}/revoke", g1.session),
            &Revoke { auth: owner.sign_owner(&msg), session: g1.session },
        )
        .await;
    assert_eq!(c, 200, "{v}");
    let (c, v) = s.sign(&g1, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (403, "revoked"), "{v}");
    assert_eq!(s.sign(&g2, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);

    // revoke_all kills every session of that owner, and only that owner's.
    let msg = OwnerAction {
        action: action::REVOKE_ALL.into(),
        enclave: st.identity_address,
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let (c, v) =
        s.post(&format!("/v1/owners/{}/revoke-all", owner.address), &RevokeAll { auth: owner.sign_owner(&msg) }).await;
    assert_eq!(c, 200, "{v}");
    let revoked: Revoked = serde_json::from_value(v).unwrap();
    let mut expect = vec![g2.session, g3.session];
    expect.sort();
    assert_eq!(revoked.sessions, expect);
    for g in [&g2, &g3] {
        let (c, v) = s.sign(g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await;
        assert_eq!((c, code(&v)), (403, "revoked"), "{v}");
    }
    assert_eq!(s.sign(&other, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);
}

#[tokio::test]
async fn replays_and_forgeries_are_refused() {
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let p = policy(&usdc_daily(""));
    let st = s.status().await;

    // A replayed owner message: same envelope twice.
    let msg = create_action(st.identity_address, agent.address, p.hash(), Actor::next_nonce());
    let body =
        CreateSession { auth: owner.sign_owner(&msg), agent_public_key: agent.public_key_sec1(), policy: p.clone() };
    let (c, v) = s.post("/v1/sessions", &body).await;
    assert_eq!(c, 200, "{v}");
    let session: SessionCreated = serde_json::from_value(v).unwrap();
    let (c, v) = s.post("/v1/sessions", &body).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "{v}");

    // An owner message signed by someone else.
    let mallory = Actor::random();
    let msg = create_action(st.identity_address, agent.address, p.hash(), Actor::next_nonce());
    let mut auth = mallory.sign_owner(&msg);
    auth.owner = owner.address;
    let (c, v) = s
        .post("/v1/sessions", &CreateSession { auth, agent_public_key: agent.public_key_sec1(), policy: p.clone() })
        .await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    // A policy swapped by the host after the owner signed: the hash no longer matches.
    let msg = create_action(st.identity_address, agent.address, p.hash(), Actor::next_nonce());
    let mut wider = p.clone();
    wider.limits[0].max = usdc(1_000_000);
    let (c, v) = s
        .post(
            "/v1/sessions",
            &CreateSession { auth: owner.sign_owner(&msg), agent_public_key: agent.public_key_sec1(), policy: wider },
        )
        .await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    // A message for another enclave.
    let msg = create_action(Address::repeat_byte(7), agent.address, p.hash(), Actor::next_nonce());
    let (c, v) = s
        .post(
            "/v1/sessions",
            &CreateSession {
                auth: owner.sign_owner(&msg),
                agent_public_key: agent.public_key_sec1(),
                policy: p.clone(),
            },
        )
        .await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    let g = Granted {
        owner: owner.clone(),
        agent: agent.clone(),
        session: session.binding.session,
        enclave_pk: st.identity_public_key.clone(),
        created_at: session.binding.created_at,
    };

    // The same stamped request twice (a client that lost the answer asks again): the same
    // signature, charged once (RULES.md §2, "asking again with the same stamp").
    let payload = SignPayload::Transaction(erc20_transfer(31337, 0, USDC, DEAD, usdc(1)));
    let req =
        SignRequest { session: g.session, stamp: agent.stamp(&g.enclave_pk, g.session, &payload, now()), payload };
    let (c, first) = s.post("/v1/sign", &req).await;
    assert_eq!(c, 200, "{first}");
    let (c, again) = s.post("/v1/sign", &req).await;
    assert_eq!(c, 200, "{again}");
    assert_eq!(first["signature"], again["signature"], "the same signature, not a second one");
    assert_eq!(first["raw_transaction"], again["raw_transaction"]);
    // A used stamp on another request (a host that kept the stamp and changed the payload
    // fails the MAC; one with a refused first ask is a replay).
    let payload = SignPayload::Transaction(erc20_transfer(31337, 9, USDC, DEAD, usdc(500)));
    let req =
        SignRequest { session: g.session, stamp: agent.stamp(&g.enclave_pk, g.session, &payload, now()), payload };
    let (c, v) = s.post("/v1/sign", &req).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    let (c, v) = s.post("/v1/sign", &req).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "a refused ask is not asked again: {v}");

    // A stamp by another agent.
    let other = Actor::random();
    let payload = SignPayload::Transaction(erc20_transfer(31337, 1, USDC, DEAD, usdc(1)));
    let req =
        SignRequest { session: g.session, stamp: other.stamp(&g.enclave_pk, g.session, &payload, now()), payload };
    let (c, v) = s.post("/v1/sign", &req).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    // A request altered by the host after the agent stamped it.
    let payload = SignPayload::Transaction(erc20_transfer(31337, 2, USDC, DEAD, usdc(1)));
    let stamp = agent.stamp(&g.enclave_pk, g.session, &payload, now());
    let altered = SignPayload::Transaction(erc20_transfer(31337, 2, USDC, Address::repeat_byte(0x66), usdc(1)));
    let (c, v) = s.post("/v1/sign", &SignRequest { session: g.session, stamp, payload: altered }).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");

    // A stale stamp (outside ±60 s).
    let payload = SignPayload::Transaction(erc20_transfer(31337, 3, USDC, DEAD, usdc(1)));
    let req = SignRequest {
        session: g.session,
        stamp: agent.stamp(&g.enclave_pk, g.session, &payload, now() - 120),
        payload,
    };
    let (c, v) = s.post("/v1/sign", &req).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "{v}");

    // None of the refusals charged anything: exactly one signature so far.
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["uses"], 1, "{st}");
}

#[tokio::test]
async fn approvals_are_bounded() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    let (c, v) = s.sign(&g, erc20_approve(31337, 0, USDC, ROUTER, U256::MAX)).await;
    assert_eq!((c, code(&v)), (403, "unlimited_approval"), "{v}");
    let (c, v) = s.sign(&g, erc20_approve(31337, 0, USDC, ROUTER, usdc(51))).await;
    assert_eq!((c, code(&v)), (403, "unlimited_approval"), "{v}");
    assert_eq!(v["error"]["rule"], "approvals.caps[0]");
    let (c, v) = s.sign(&g, erc20_approve(31337, 0, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (403, "spender_not_allowed"), "{v}");
    let (c, v) = s.sign(&g, erc20_approve(31337, 0, USDC, ROUTER, usdc(50))).await;
    assert_eq!(c, 200, "{v}");
}

#[tokio::test]
async fn type4_transactions_are_refused() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    let tx = bridle_common::tx::TxRequest::Eip7702 { chain_id: 31337, authorization_list: vec![] };
    let (c, v) = s.sign(&g, tx).await;
    assert_eq!((c, code(&v)), (403, "authorization_denied"), "{v}");
}

#[tokio::test]
async fn a_session_cannot_own_sessions() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    // Even with a valid signature from some key, the session address as owner is refused.
    let st = s.status().await;
    let p = policy(&usdc_daily(""));
    let agent = Actor::random();
    let msg = create_action(st.identity_address, agent.address, p.hash(), Actor::next_nonce());
    let mut auth = g.owner.sign_owner(&msg);
    auth.owner = g.session;
    let (c, v) =
        s.post("/v1/sessions", &CreateSession { auth, agent_public_key: agent.public_key_sec1(), policy: p }).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
}

#[tokio::test]
async fn enclave_restart_loses_sessions_and_host_reports_it() {
    let mut s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    assert_eq!(s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);
    let old_identity = s.status().await.identity_address;

    // Kill the enclave and start a new one on the same socket.
    let dir = std::mem::replace(&mut s.enclave.dir, tempfile::tempdir().unwrap());
    s.enclave.proc.kill();
    let new = EnclaveProc::start_in(dir, &[]);
    s.enclave = new;
    // The host reconnects and learns the new identity.
    let mut identity = old_identity;
    for _ in 0..100 {
        let (c, v) = s.get("/v1/status").await;
        if c == 200 {
            identity = serde_json::from_value::<Status>(v).unwrap().identity_address;
            if identity != old_identity {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(identity, old_identity, "a restarted enclave has a new identity");
    let (c, v) = s.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await;
    assert!(c == 410 || c == 404, "{c} {v}");
    assert_eq!(code(&v), "unknown_session");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["stored"]["state"], "lost", "{st}");
}

#[tokio::test]
async fn json_rpc_eth_sign_transaction() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    let tx = erc20_transfer(31337, 5, USDC, DEAD, usdc(2));
    let payload = SignPayload::Transaction(tx.clone());
    let stamp = g.agent.stamp(&g.enclave_pk, g.session, &payload, now());
    let bridle_common::tx::TxRequest::Eip1559(t) = tx else { unreachable!() };
    let rpc = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_signTransaction",
        "params": [{
            "from": g.session, "to": t.to, "data": t.data, "value": "0x0",
            "nonce": format!("{:#x}", t.nonce), "chainId": format!("{:#x}", t.chain_id),
            "gas": format!("{:#x}", t.gas_limit), "maxFeePerGas": format!("{:#x}", t.max_fee_per_gas),
            "maxPriorityFeePerGas": format!("{:#x}", t.max_priority_fee_per_gas), "type": "0x2"
        }]
    });
    let r = s
        .http
        .post(format!("{}/rpc", s.host.url))
        .header("Bridle-Session", g.session.to_string())
        .header("Bridle-Stamp", stamp.to_header())
        .json(&rpc)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let raw: Bytes = serde_json::from_value(v["result"]["raw"].clone()).unwrap_or_else(|_| panic!("{v}"));
    assert_eq!(recover_raw(&raw), g.session);
    assert_eq!(recover_raw_eth_account(&raw), g.session);

    // eth_accounts names the session.
    let r = s
        .http
        .post(format!("{}/rpc", s.host.url))
        .header("Bridle-Session", g.session.to_string())
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "eth_accounts", "params": []}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let accounts: Vec<Address> = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(accounts, vec![g.session]);
}

#[tokio::test]
async fn policy_update_keeps_spend_and_needs_the_owner() {
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&usdc_daily(""))).await.unwrap();
    assert_eq!(s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await.0, 200);

    // The owner lowers the cap to 70 USDC per day: the 60 already spent still counts.
    let lower = policy(&usdc_daily("").replace("100 USDC", "70 USDC"));
    let st = s.status().await;
    let msg = OwnerAction {
        action: action::UPDATE_POLICY.into(),
        enclave: st.identity_address,
        session: g.session,
        agent: agent.address,
        policyHash: lower.hash(),
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let update = UpdatePolicy { auth: owner.sign_owner(&msg), session: g.session, policy: lower.clone() };
    let (c, v) = s.post(&format!("/v1/sessions/{}/policy", g.session), &update).await;
    assert_eq!(c, 200, "{v}");
    let (c, v) = s.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(11))).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().contains("spent 60 USDC, asking 11 USDC, cap 70 USDC"), "{v}");
    assert_eq!(s.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(10))).await.0, 200);

    // Replaying the same update is refused; so is an update signed by the agent.
    let (c, v) = s.post(&format!("/v1/sessions/{}/policy", g.session), &update).await;
    assert_eq!((c, code(&v)), (401, "replayed"), "{v}");
    let msg = OwnerAction { nonce: Actor::next_nonce(), ..msg };
    let mut by_agent = UpdatePolicy { auth: agent.sign_owner(&msg), session: g.session, policy: lower };
    by_agent.auth.owner = owner.address;
    let (c, v) = s.post(&format!("/v1/sessions/{}/policy", g.session), &by_agent).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
}

/// A JSON-RPC batch shares one `Bridle-Stamp` header, and a stamp covers one signing
/// digest: the batch's `eth_accounts` and the signing request the stamp covers are served,
/// any other signing request in it is refused (`unauthenticated`) and signs nothing — the
/// README says so.
#[tokio::test]
async fn a_json_rpc_batch_signs_only_what_its_one_stamp_covers() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&usdc_daily(""))).await.unwrap();
    let json_tx = |nonce: u64| {
        let bridle_common::tx::TxRequest::Eip1559(t) = erc20_transfer(31337, nonce, USDC, DEAD, usdc(2)) else {
            unreachable!()
        };
        serde_json::json!({
            "from": g.session, "to": t.to, "data": t.data, "value": "0x0",
            "nonce": format!("{:#x}", t.nonce), "chainId": format!("{:#x}", t.chain_id),
            "gas": format!("{:#x}", t.gas_limit), "maxFeePerGas": format!("{:#x}", t.max_fee_per_gas),
            "maxPriorityFeePerGas": format!("{:#x}", t.max_priority_fee_per_gas), "type": "0x2"
        })
    };
    let covered = SignPayload::Transaction(erc20_transfer(31337, 5, USDC, DEAD, usdc(2)));
    let stamp = g.agent.stamp(&g.enclave_pk, g.session, &covered, now());
    let batch = serde_json::json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_signTransaction", "params": [json_tx(5)]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_signTransaction", "params": [json_tx(6)]},
    ]);
    let r = s
        .http
        .post(format!("{}/rpc", s.host.url))
        .header("Bridle-Session", g.session.to_string())
        .header("Bridle-Stamp", stamp.to_header())
        .json(&batch)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let items = v.as_array().unwrap_or_else(|| panic!("{v}"));
    let by_id = |id: u64| items.iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("no reply {id}: {v}"));
    assert_eq!(by_id(1)["result"], serde_json::json!([g.session]), "{v}");
    let raw: Bytes = serde_json::from_value(by_id(2)["result"]["raw"].clone()).unwrap_or_else(|_| panic!("{v}"));
    assert_eq!(recover_raw(&raw), g.session);
    let refused = by_id(3);
    assert!(refused.get("result").is_none() && refused["error"].is_object(), "{v}");
    assert!(refused.to_string().contains("unauthenticated"), "{refused}");
    // Nothing was signed at nonce 6: the session's use count is the one signature.
    let (c, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!((c, st["session"]["uses"].as_u64()), (200, Some(1)), "{st}");
}
