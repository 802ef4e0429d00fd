//! The real router against a fake enclave: routes, error mapping, JSON-RPC, restarts,
//! metrics, persistence.

mod common;

crate::on_both_backends!(
    health_status_and_reconnect_when_enclave_comes_up,
    owner_routes_store_and_map_errors,
    sign_route_success_and_error_mapping,
    json_rpc_face,
    enclave_restart_marks_sessions_lost_and_answers_410,
    background_probe_detects_restart_without_traffic,
    metrics_count_calls,
    store_persists_across_reopen,
    sign_route_accepts_a_transaction,
    normalize_reads_a_bounded_policy_file,
);

use alloy_primitives::{keccak256, Address, Bytes, U256};
use bridle_common::protocol::*;
use bridle_common::tx::{Eip1559Request, TxRequest};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn setup(db: &Db) -> (tempfile::TempDir, FakeEnclave, TestHost) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    (dir, enclave, host)
}

fn sign_request(session: Address, value: u64) -> SignRequest {
    SignRequest {
        session,
        payload: SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: 3,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 21_000,
            to: Some(Address::repeat_byte(0x77)),
            value: U256::from(value),
            data: Bytes::new(),
            access_list: vec![],
        })),
        stamp: stamp(),
    }
}

fn assert_error_body(v: &Value, code: &str) {
    let e = &v["error"];
    assert_eq!(e["code"], code, "{v}");
    assert!(e["reason"].is_string(), "{v}");
    assert!(e["message"].is_string(), "{v}");
    assert!(e.get("rule").is_some(), "{v}");
}

async fn health_status_and_reconnect_when_enclave_comes_up(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    // The host starts with no enclave.
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let c = http();
    let r = c.get(format!("{}/health", host.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["enclave"]["reachable"], false);

    let r = c.get(format!("{}/v1/status", host.url)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_error_body(&r.json().await.unwrap(), "unavailable");

    // The enclave comes up: the host connects.
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let r = c.get(format!("{}/health", host.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["enclave"]["reachable"], true);
    assert_eq!(v["enclave"]["identity"].as_str().unwrap().to_lowercase(), format!("{IDENTITY_1:#x}"));

    let r = c.get(format!("{}/v1/status", host.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let s: Status = r.json().await.unwrap();
    assert_eq!(s.identity_address, IDENTITY_1);
    assert_eq!(host.state.client.identity(), Some(IDENTITY_1));

    host.stop().await;
    enclave.stop().await;
}

async fn owner_routes_store_and_map_errors(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let url = &host.url;

    let session = create_session(&c, url, 1).await;
    // The relayed call is exactly what the owner sent.
    let calls = enclave.non_status_calls();
    let Call::CreateSession(cs) = &calls[0] else { panic!("{calls:?}") };
    assert_eq!(cs.auth, auth(1));
    assert_eq!(cs.policy, policy("test"));

    // GET session: the enclave's view and the stored record.
    let r = c.get(format!("{url}/v1/sessions/{session}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["session"]["state"], "active");
    let stored = &v["stored"];
    assert_eq!(stored["state"], "active");
    assert_eq!(stored["owner"].as_str().unwrap().to_lowercase(), format!("{OWNER:#x}"));
    assert_eq!(stored["created_at"], 1000);
    assert_eq!(stored["valid_until"], 2000);
    assert_eq!(stored["policy"]["name"], "test");
    assert_eq!(stored["policy_hash"].as_str().unwrap(), format!("{:#x}", policy("test").hash()));

    // Owner's sessions.
    let r = c.get(format!("{url}/v1/owners/{OWNER}/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["state"], "active");

    // Update policy: path and body must agree.
    let mut newp = policy("updated");
    newp.valid_until = Some(3000);
    let up = UpdatePolicy { auth: auth(2), session: Address::repeat_byte(0x99), policy: newp.clone() };
    let r = c.post(format!("{url}/v1/sessions/{session}/policy")).json(&up).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_error_body(&r.json().await.unwrap(), "malformed");

    let up = UpdatePolicy { session, ..up };
    let r = c.post(format!("{url}/v1/sessions/{session}/policy")).json(&up).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let pu: PolicyUpdated = r.json().await.unwrap();
    assert_eq!(pu.policy_hash, newp.hash());
    let v: Value = c.get(format!("{url}/v1/sessions/{session}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stored"]["policy"]["name"], "updated");
    assert_eq!(v["stored"]["valid_until"], 3000);
    let hist: Vec<Value> =
        c.get(format!("{url}/v1/sessions/{session}/policies")).send().await.unwrap().json().await.unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[1]["nonce"], 2);

    // Update of an unknown session: the enclave's unknown_session → 404.
    let other = Address::repeat_byte(0x98);
    let r = c
        .post(format!("{url}/v1/sessions/{other}/policy"))
        .json(&UpdatePolicy { auth: auth(3), session: other, policy: newp.clone() })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_error_body(&r.json().await.unwrap(), "unknown_session");

    // Unauthenticated owner (bad signature) → 401.
    let mut bad = CreateSession { auth: auth(4), agent_public_key: Bytes::from(vec![2u8; 33]), policy: policy("x") };
    bad.auth.signature = Bytes::from(vec![1u8; 3]);
    let r = c.post(format!("{url}/v1/sessions")).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_error_body(&r.json().await.unwrap(), "unauthenticated");

    // Revoke.
    let r = c
        .post(format!("{url}/v1/sessions/{session}/revoke"))
        .json(&Revoke { auth: auth(5), session })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rv: Revoked = r.json().await.unwrap();
    assert_eq!(rv.sessions, vec![session]);
    let list: Vec<Value> =
        c.get(format!("{url}/v1/owners/{OWNER}/sessions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list[0]["state"], "revoked");

    // Revoke-all: owner must match the path.
    let s2 = create_session(&c, url, 6).await;
    let s3 = create_session(&c, url, 7).await;
    let r = c
        .post(format!("{url}/v1/owners/{}/revoke-all", Address::repeat_byte(1)))
        .json(&RevokeAll { auth: auth(8) })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_error_body(&r.json().await.unwrap(), "malformed");
    let r =
        c.post(format!("{url}/v1/owners/{OWNER}/revoke-all")).json(&RevokeAll { auth: auth(8) }).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut rv: Revoked = r.json().await.unwrap();
    rv.sessions.sort();
    let mut want = vec![s2, s3];
    want.sort();
    assert_eq!(rv.sessions, want);
    let list: Vec<Value> =
        c.get(format!("{url}/v1/owners/{OWNER}/sessions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|s| s["state"] == "revoked"), "{list:?}");
    lists_are_paged(&c, url, session, &list, &hist).await;

    // Unknown to both → 404; bad address → 400.
    let r = c.get(format!("{url}/v1/sessions/{}", Address::repeat_byte(0x42))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error_body(&r.json().await.unwrap(), "unknown_session");
    let r = c.get(format!("{url}/v1/sessions/not-an-address")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_error_body(&r.json().await.unwrap(), "malformed");

    // Owner actions are in the event log.
    let store = host.state.store.clone();
    let events = store
        .run(|s| {
            s.flush();
            s.events(None, 100)
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.call == "create_session" && e.outcome == "ok"));
    // A refusal nobody signed is counted, never a row (anyone can send one, naming any
    // session: a review of 2026-12-06).
    assert!(!events.iter().any(|e| e.code.as_deref() == Some("unauthenticated")), "{events:?}");
    assert!(events.iter().any(|e| e.call == "revoke_all"));

    host.stop().await;
    enclave.stop().await;
}

async fn sign_route_success_and_error_mapping(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let url = &host.url;
    let session = create_session(&c, url, 1).await;

    let req = message_request(session, "hello");
    let r = c.post(format!("{url}/v1/sign")).json(&req).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let signed: Signed = r.json().await.unwrap();
    assert_eq!(signed.session, session);
    assert_eq!(signed.signature, fake_signature());
    // Relayed unchanged.
    assert_eq!(enclave.non_status_calls().last().unwrap(), &Call::SignIfAllowed(req));

    // Policy denial → 403 with code, rule, reason and the Denial's Display.
    let r = c.post(format!("{url}/v1/sign")).json(&message_request(session, "deny me")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_error_body(&v, "message_not_allowed");
    assert_eq!(v["error"]["rule"], "messages[0]");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("denied: message not allowed [message_not_allowed] (rule messages[0]"));

    // Bad stamp → 401.
    let mut bad = message_request(session, "hello");
    bad.stamp.mac = [0; 32];
    let r = c.post(format!("{url}/v1/sign")).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_error_body(&r.json().await.unwrap(), "unauthenticated");

    // Unknown session → 404.
    let r = c
        .post(format!("{url}/v1/sign"))
        .json(&message_request(Address::repeat_byte(0x44), "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_error_body(&r.json().await.unwrap(), "unknown_session");

    // Neither leaves an event row (a stranger sends them for free); the metrics count both.
    let store = host.state.store.clone();
    let events = store
        .run(|s| {
            s.flush();
            s.events(None, 1000)
        })
        .await
        .unwrap();
    let sign_codes: Vec<_> =
        events.iter().filter(|e| e.call == "sign_if_allowed").filter_map(|e| e.code.clone()).collect();
    assert!(sign_codes.iter().any(|c| c == "message_not_allowed"), "{sign_codes:?}");
    assert!(!sign_codes.iter().any(|c| c == "unauthenticated" || c == "unknown_session"), "{sign_codes:?}");
    let metrics = host.state.metrics.render();
    for code in ["unauthenticated", "unknown_session"] {
        let line = format!("bridle_requests_total{{call=\"sign_if_allowed\",outcome=\"denied\",code=\"{code}\"}} 1");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // Unsupported (typed data, for now) → 501.
    let mut td = message_request(session, "x");
    td.payload = SignPayload::TypedData("{}".into());
    let r = c.post(format!("{url}/v1/sign")).json(&td).send().await.unwrap();
    assert_eq!(r.status(), 501);
    assert_error_body(&r.json().await.unwrap(), "unsupported");

    // Bad JSON, wrong shape, no content type: 400 with our body.
    for body in ["{not json", "{\"session\": 5}", ""] {
        let r = c
            .post(format!("{url}/v1/sign"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_error_body(&r.json().await.unwrap(), "malformed");
    }
    let r = c
        .post(format!("{url}/v1/sign"))
        .body(serde_json::to_vec(&message_request(session, "hello")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "no content-type header is fine");

    // Too large → 413.
    let big = vec![b' '; 2 << 20];
    let r = c.post(format!("{url}/v1/sign")).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_error_body(&r.json().await.unwrap(), "too_large");

    // Unknown route / wrong method: our body.
    let r = c.get(format!("{url}/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_error_body(&r.json().await.unwrap(), "malformed");
    let r = c.get(format!("{url}/v1/sign")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_error_body(&r.json().await.unwrap(), "malformed");

    // Attestation and audit relays.
    let r = c.get(format!("{url}/v1/attestation?nonce=0xc0ffee")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The host relays the raw document and decodes a summary without verifying it; the
    // fake enclave's bytes are not a document, so the summary is absent and says why.
    let a: serde_json::Value = r.json().await.unwrap();
    assert_eq!(a["document"], "0xc0ffee");
    assert!(a["summary"].is_null() && a["summary_error"].is_string(), "{a}");
    let r = c.get(format!("{url}/v1/audit?since=0")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Sign decisions reach the event log (asynchronously).
    let store = host.state.store.clone();
    let events = store
        .run(move |s| {
            s.flush();
            s.events(Some(&session), 100)
        })
        .await
        .unwrap();
    let signs: Vec<_> = events.iter().filter(|e| e.call == "sign_if_allowed").collect();
    assert!(signs.iter().any(|e| e.outcome == "ok" && e.detail.is_some()));
    assert!(signs.iter().any(|e| e.outcome == "denied" && e.code.as_deref() == Some("message_not_allowed")));

    host.stop().await;
    enclave.stop().await;
}

async fn rpc(c: &reqwest::Client, url: &str, session: Option<Address>, body: Value) -> Value {
    let mut r = c.post(format!("{url}/rpc")).header("Bridle-Stamp", stamp().to_header());
    if let Some(s) = session {
        r = r.header("Bridle-Session", s.to_string());
    }
    let resp = r.json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn req(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn json_rpc_face(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let url = &host.url;
    let session = create_session(&c, url, 1).await;

    // eth_accounts: the header's session when known and active.
    let v = rpc(&c, url, Some(session), req(1, "eth_accounts", json!([]))).await;
    assert_eq!(v["result"], json!([session]));
    let v = rpc(&c, url, None, req(1, "eth_accounts", json!([]))).await;
    assert_eq!(v["result"], json!([]));
    let v = rpc(&c, url, Some(Address::repeat_byte(0x12)), req(1, "eth_accounts", json!([]))).await;
    assert_eq!(v["result"], json!([]));

    // EIP-1559 transaction.
    let tx = json!({
        "from": session, "to": "0x7777777777777777777777777777777777777777",
        "gas": "0x5208", "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x3b9aca00",
        "value": "0x5", "nonce": "0x3", "chainId": "0x1",
    });
    let v = rpc(&c, url, None, req(7, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["id"], 7);
    let result = &v["result"];
    let raw: Bytes = serde_json::from_value(result["raw"].clone()).unwrap();
    assert_eq!(result["tx"]["hash"].as_str().unwrap(), format!("{:#x}", keccak256(&raw)));
    assert_eq!(result["tx"]["type"], "0x2");
    assert_eq!(result["tx"]["nonce"], "0x3");
    assert_eq!(result["tx"]["r"], format!("0x{}", "11".repeat(32)));
    assert_eq!(result["tx"]["yParity"], "0x1");
    // Converted exactly, stamp forwarded unchanged.
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    assert_eq!(sr, sign_request(session, 5));
    assert_eq!(sr.stamp, stamp());

    // Legacy transaction (type inferred from gasPrice), with the session from the header.
    let tx = json!({
        "to": "0x7777777777777777777777777777777777777777", "gas": "0x5208",
        "gasPrice": "0x4a817c800", "value": "0x0", "nonce": "0x0", "chainId": "0x89",
        "data": "0xa9059cbb",
    });
    let v = rpc(&c, url, Some(session), req(8, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["result"]["tx"]["type"], "0x0", "{v}");
    // EIP-155 v = chainId * 2 + 35 + parity = 137 * 2 + 36.
    assert_eq!(v["result"]["tx"]["v"], format!("{:#x}", 137 * 2 + 36));
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    let SignPayload::Transaction(TxRequest::Legacy(l)) = sr.payload else { panic!("{sr:?}") };
    assert_eq!(l.chain_id, 137);
    assert_eq!(l.gas_price, 20_000_000_000);
    assert_eq!(l.data.as_ref(), &[0xa9, 0x05, 0x9c, 0xbb]);

    // Missing nonce → -32602 naming nonce; nothing relayed.
    let before = enclave.non_status_calls().len();
    let tx = json!({"from": session, "gas": "0x5208", "maxFeePerGas": "0x1",
        "maxPriorityFeePerGas": "0x1", "chainId": "0x1"});
    let v = rpc(&c, url, None, req(9, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("nonce"));
    assert_eq!(v["error"]["data"]["code"], "malformed");
    assert_eq!(enclave.non_status_calls().len(), before);

    // from ≠ Bridle-Session → invalid params.
    let tx = json!({"from": Address::repeat_byte(1), "gas": "0x1", "gasPrice": "0x1",
        "nonce": "0x0", "chainId": "0x1"});
    let v = rpc(&c, url, Some(session), req(10, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["error"]["code"], -32602);

    // Type 4 → relayed as Eip7702, refused by the enclave with its own code → -32003.
    let tx = json!({"from": session, "type": "0x4", "chainId": "0x1", "nonce": "0x0",
        "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1",
        "authorizationList": [{"chainId": "0x1", "address": "0x3333333333333333333333333333333333333333", "nonce": "0x1"}]});
    let v = rpc(&c, url, None, req(11, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["error"]["code"], -32003, "{v}");
    assert_eq!(v["error"]["data"]["code"], "authorization_denied");
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    let SignPayload::Transaction(TxRequest::Eip7702 { chain_id, authorization_list }) = sr.payload else {
        panic!("{sr:?}")
    };
    assert_eq!(chain_id, 1);
    assert_eq!(authorization_list[0].nonce, 1);

    // Policy denial → -32003 with the rule.
    let tx = json!({"from": session, "gas": "0x5208", "maxFeePerGas": "0x1",
        "maxPriorityFeePerGas": "0x1", "chainId": "0x1", "nonce": "0x1",
        "value": format!("{:#x}", VALUE_CAP + 1)});
    let v = rpc(&c, url, None, req(12, "eth_signTransaction", json!([tx]))).await;
    assert_eq!(v["error"]["code"], -32003);
    assert_eq!(v["error"]["data"]["code"], "spend_cap");
    assert_eq!(v["error"]["data"]["rule"], "limits[0]");

    // Missing stamp → -32001; malformed stamp → -32602.
    let tx = json!({"from": session, "gas": "0x1", "gasPrice": "0x1", "nonce": "0x0", "chainId": "0x1"});
    let resp: Value = c
        .post(format!("{url}/rpc"))
        .json(&req(13, "eth_signTransaction", json!([tx.clone()])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["error"]["code"], -32001);
    assert_eq!(resp["error"]["data"]["code"], "unauthenticated");
    let resp: Value = c
        .post(format!("{url}/rpc"))
        .header("Bridle-Stamp", "v1.zz.1.00")
        .json(&req(14, "eth_signTransaction", json!([tx])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["error"]["code"], -32602);

    // Typed data → relayed as the JSON string; the enclave's `unsupported` → -32004.
    let typed = json!({"types": {"EIP712Domain": []}, "primaryType": "EIP712Domain", "domain": {}, "message": {}});
    let v = rpc(&c, url, None, req(15, "eth_signTypedData_v4", json!([session, typed.to_string()]))).await;
    assert_eq!(v["error"]["code"], -32004, "{v}");
    assert_eq!(v["error"]["data"]["code"], "unsupported");
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    assert_eq!(sr.payload, SignPayload::TypedData(typed.to_string()));

    // Typed data as an object → relayed as the agent wrote it, compact (keys in its order,
    // numbers as written): re-serialized, a number past 64 bits came out as 1e+24 (a review
    // of 2026-12-06).
    let object = r#"{"types": {"EIP712Domain": []}, "primaryType": "EIP712Domain", "domain": {}, "message": {"v": 1000000000000000000000001}}"#;
    let body = format!(
        r#"{{"jsonrpc": "2.0", "id": 19, "method": "eth_signTypedData_v4", "params": ["{session}", {object}]}}"#
    );
    let v: Value = c
        .post(format!("{url}/rpc"))
        .header("content-type", "application/json")
        .header("Bridle-Stamp", stamp().to_header())
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"]["data"]["code"], "unsupported", "{v}");
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    let compact = r#"{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{"v":1000000000000000000000001}}"#;
    assert_eq!(sr.payload, SignPayload::TypedData(compact.to_string()));

    // personal_sign → message bytes; result is the 65-byte signature.
    let v = rpc(&c, url, None, req(16, "personal_sign", json!(["0x68656c6c6f", session]))).await;
    assert_eq!(v["result"], json!(fake_signature()), "{v}");
    let Call::SignIfAllowed(sr) = enclave.non_status_calls().last().unwrap().clone() else { panic!() };
    assert_eq!(sr.payload, SignPayload::Message(Bytes::from_static(b"hello")));

    // Other methods → -32601.
    let v = rpc(&c, url, None, req(17, "eth_chainId", json!([]))).await;
    assert_eq!(v["error"]["code"], -32601);
    let v = rpc(&c, url, None, req(18, "eth_sign", json!([session, "0x00"]))).await;
    assert_eq!(v["error"]["code"], -32601);

    // Batch: answers in order; a notification gets no answer.
    let v = rpc(
        &c,
        url,
        Some(session),
        json!([
            req(1, "eth_accounts", json!([])),
            {"jsonrpc": "2.0", "method": "eth_accounts", "params": []},
            req(2, "eth_chainId", json!([])),
        ]),
    )
    .await;
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["id"], 1);
    assert_eq!(arr[0]["result"], json!([session]));
    assert_eq!(arr[1]["error"]["code"], -32601);

    // Parse error and invalid request.
    let resp: Value = c.post(format!("{url}/rpc")).body("{oops").send().await.unwrap().json().await.unwrap();
    assert_eq!(resp["error"]["code"], -32700);
    assert_eq!(resp["id"], Value::Null);
    let v = rpc(&c, url, None, json!({"id": 1, "method": "eth_accounts"})).await;
    assert_eq!(v["error"]["code"], -32600);
    let v = rpc(&c, url, None, json!([])).await;
    assert_eq!(v["error"]["code"], -32600);

    host.stop().await;
    enclave.stop().await;
}

async fn enclave_restart_marks_sessions_lost_and_answers_410(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let c = http();
    let url = &host.url;
    let s1 = create_session(&c, url, 1).await;
    let s2 = create_session(&c, url, 2).await;
    let r = c.post(format!("{url}/v1/sign")).json(&message_request(s1, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Restart: a new enclave with a new identity on the same socket.
    enclave.stop().await;
    let enclave = FakeEnclave::start(&sock, IDENTITY_2).await;

    // The first request after the restart: the host notices the new identity on the new
    // connection, marks the old sessions lost, and answers 410 (never re-sends anything).
    let r = c.post(format!("{url}/v1/sign")).json(&message_request(s1, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let v: Value = r.json().await.unwrap();
    assert_error_body(&v, "unknown_session");
    let reason = v["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("restarted") && reason.contains("cannot be restored"), "{reason}");
    assert_eq!(host.state.client.identity(), Some(IDENTITY_2));

    // The new enclave never heard of the old sessions from the host.
    assert!(!enclave.calls().iter().any(|c| matches!(c, Call::CreateSession(_))), "host must never re-create sessions");

    // Every route for a lost session: 410; the stored record says lost.
    let r = c.post(format!("{url}/v1/sign")).json(&message_request(s2, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let r = c
        .post(format!("{url}/v1/sessions/{s2}/revoke"))
        .json(&Revoke { auth: auth(3), session: s2 })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let r = c
        .post(format!("{url}/v1/sessions/{s2}/policy"))
        .json(&UpdatePolicy { auth: auth(3), session: s2, policy: policy("p") })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let v: Value = c.get(format!("{url}/v1/sessions/{s1}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stored"]["state"], "lost");
    assert_eq!(v["session"], Value::Null);
    let list: Vec<Value> =
        c.get(format!("{url}/v1/owners/{OWNER}/sessions")).send().await.unwrap().json().await.unwrap();
    assert!(list.iter().all(|s| s["state"] == "lost"), "{list:?}");

    // JSON-RPC: no account, and signing is refused with unknown_session.
    let v = rpc(&c, url, Some(s1), req(1, "eth_accounts", json!([]))).await;
    assert_eq!(v["result"], json!([]));
    let v = rpc(&c, url, None, req(2, "personal_sign", json!(["0x00", s1]))).await;
    assert_eq!(v["error"]["code"], -32003);
    assert_eq!(v["error"]["data"]["code"], "unknown_session");

    // A new session on the new enclave works.
    let s3 = create_session(&c, url, 4).await;
    let r = c.post(format!("{url}/v1/sign")).json(&message_request(s3, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    host.stop().await;

    // A host restarted later against the same new enclave keeps them as they are; one
    // restarted against yet another enclave marks the rest lost on first contact.
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let v: Value = c.get(format!("{}/v1/sessions/{s3}", host.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["stored"]["state"], "active");
    host.stop().await;
    enclave.stop().await;
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let r = c.get(format!("{}/health", host.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.post(format!("{}/v1/sign", host.url)).json(&message_request(s3, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    host.stop().await;
    enclave.stop().await;
}

async fn background_probe_detects_restart_without_traffic(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let mut cfg = db.config(dir.path(), &sock);
    cfg.probe_interval = Some(Duration::from_millis(50));
    let host = TestHost::start(cfg).await;
    let c = http();
    let s1 = create_session(&c, &host.url, 1).await;
    enclave.stop().await;
    let enclave = FakeEnclave::start(&sock, IDENTITY_2).await;
    let mut lost = false;
    for _ in 0..100 {
        if matches!(host.state.store.session_state(&s1), Some((bridle_host::store::StoredState::Lost, _))) {
            lost = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lost, "the probe should notice the new identity");
    host.stop().await;
    enclave.stop().await;
}

async fn metrics_count_calls(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let url = &host.url;
    let session = create_session(&c, url, 1).await;
    for text in ["hi", "deny"] {
        let _ = c.post(format!("{url}/v1/sign")).json(&message_request(session, text)).send().await.unwrap();
    }
    let _ = c.get(format!("{url}/health")).send().await.unwrap();
    let r = c.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for needle in [
        "bridle_requests_total{call=\"sign_if_allowed\",outcome=\"ok\",code=\"\"} 1",
        "bridle_requests_total{call=\"sign_if_allowed\",outcome=\"denied\",code=\"message_not_allowed\"} 1",
        "bridle_requests_total{call=\"create_session\",outcome=\"ok\",code=\"\"} 1",
        "bridle_enclave_roundtrip_seconds_bucket{call=\"sign_if_allowed\",le=\"+Inf\"} 2",
        "bridle_enclave_roundtrip_seconds_count{call=\"sign_if_allowed\"} 2",
        "bridle_enclave_up 1",
        "bridle_http_requests_total{route=\"/v1/sign\",status=\"200\"} 1",
        "bridle_http_requests_total{route=\"/v1/sign\",status=\"403\"} 1",
        "bridle_http_requests_total{route=\"/health\",status=\"200\"} 1",
        "# TYPE bridle_enclave_roundtrip_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    enclave.stop().await;
    let _ = c.get(format!("{url}/health")).send().await.unwrap();
    let text = c.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("bridle_enclave_up 0"), "{text}");
    host.stop().await;
}

async fn store_persists_across_reopen(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("enclave.sock");
    let enclave = FakeEnclave::start(&sock, IDENTITY_1).await;
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let c = http();
    let session = create_session(&c, &host.url, 1).await;
    let r = c.post(format!("{}/v1/sign", host.url)).json(&message_request(session, "hi")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    host.stop().await;

    // Reopen the database directly (off the runtime: the store is synchronous).
    let database = db.database(dir.path());
    tokio::task::spawn_blocking(move || {
        let store = bridle_host::store::Store::open(&database, "test", 16).unwrap();
        let s = store.get_session(&session).unwrap().expect("stored");
        assert_eq!(s.owner, OWNER);
        assert_eq!(s.enclave, IDENTITY_1);
        assert_eq!(s.state, bridle_host::store::StoredState::Active);
        assert_eq!(s.policy_hash, policy("test").hash());
        assert_eq!(store.session_state(&session), Some((bridle_host::store::StoredState::Active, IDENTITY_1)));
        let pol = store.policies(&session, 0, 100).unwrap();
        assert_eq!(pol.len(), 1);
        assert_eq!(pol[0].1.nonce, 1);
        assert_eq!(pol[0].1.signature, auth(1).signature);
        let ev = store.events(Some(&session), 10).unwrap();
        assert!(
            ev.iter().any(|e| e.call == "sign_if_allowed" && e.outcome == "ok"),
            "sign events flushed at shutdown: {ev:?}"
        );
    })
    .await
    .unwrap();

    // And through a new host.
    let host = TestHost::start(db.config(dir.path(), &sock)).await;
    let list: Vec<Value> =
        c.get(format!("{}/v1/owners/{OWNER}/sessions", host.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 1);
    host.stop().await;
    enclave.stop().await;
}

/// `/v1/sign` with a transaction payload in the exact serde form of `SignRequest`,
/// relayed unchanged; a policy denial on it maps to 403.
async fn sign_route_accepts_a_transaction(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let session = create_session(&c, &host.url, 1).await;
    let req = sign_request(session, 5);
    let r = c.post(format!("{}/v1/sign", host.url)).json(&req).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(enclave.non_status_calls().last().unwrap(), &Call::SignIfAllowed(req));
    host.stop().await;
    enclave.stop().await;
}

/// `POST /v1/policy/normalize` is open to anyone and a policy file's resolution grows
/// faster than its length: it reads at most 128 KiB (a review of 2026-12-05: a 1 MiB file
/// held an async worker for a second), answers the rest `too_large`, and still normalizes
/// a real file.
async fn normalize_reads_a_bounded_policy_file(db: Db) {
    let (_dir, enclave, host) = setup(&db).await;
    let c = http();
    let text = include_str!("../../examples/policies/usdc-daily.toml");
    let r = c.post(format!("{}/v1/policy/normalize", host.url)).json(&json!({"text": text})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["hash"].as_str().unwrap().starts_with("0x"), "{v}");
    let long = format!("{text}\n# {}\n", "x".repeat(bridle_host::console::NORMALIZE_MAX_BYTES));
    let r = c.post(format!("{}/v1/policy/normalize", host.url)).json(&json!({"text": long})).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_error_body(&r.json().await.unwrap(), "too_large");
    host.stop().await;
    enclave.stop().await;
}

/// The lists come a page at a time, each full page with a `Link` to the next (relative to
/// the request's URL), and a session's policy by hash alone; bad parameters are 400.
async fn lists_are_paged(c: &reqwest::Client, url: &str, session: Address, sessions: &[Value], policies: &[Value]) {
    async fn walk(c: &reqwest::Client, first: String) -> (Vec<Value>, usize) {
        let (mut rows, mut pages, mut at) = (Vec::new(), 0, Some(reqwest::Url::parse(&first).unwrap()));
        while let Some(u) = at.take() {
            let r = c.get(u.clone()).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let next = r.headers().get("link").map(|l| l.to_str().unwrap().to_string());
            let page: Vec<Value> = r.json().await.unwrap();
            pages += 1;
            if let Some(l) = next {
                let target = l.strip_prefix('<').and_then(|l| l.split_once(">; rel=\"next\"")).expect(&l).0;
                assert!(target.starts_with("?after="), "{l}");
                at = Some(u.join(target).unwrap());
            }
            rows.extend(page);
        }
        (rows, pages)
    }
    let (rows, pages) = walk(c, format!("{url}/v1/owners/{OWNER}/sessions?limit=2")).await;
    assert_eq!(rows, sessions);
    assert_eq!(pages, 2, "2 + 1 rows: a full page, then the last");
    let (rows, pages) = walk(c, format!("{url}/v1/sessions/{session}/policies?limit=1")).await;
    assert_eq!(rows, policies);
    assert_eq!(pages, 3, "two full pages and the empty one after them");
    for (i, p) in policies.iter().enumerate() {
        let hash = p["policy_hash"].as_str().unwrap();
        let by_hash: Vec<Value> = c
            .get(format!("{url}/v1/sessions/{session}/policies?hash={hash}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(by_hash, std::slice::from_ref(p), "policy {i}");
    }
    let none: Vec<Value> = c
        .get(format!("{url}/v1/sessions/{session}/policies?hash={}", alloy_primitives::B256::repeat_byte(3)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    for bad in [
        format!("/v1/owners/{OWNER}/sessions?limit=0"),
        format!("/v1/owners/{OWNER}/sessions?limit=501"),
        format!("/v1/owners/{OWNER}/sessions?after=17"),
        format!("/v1/owners/{OWNER}/sessions?hash=0x00"),
        format!("/v1/sessions/{session}/policies?after=-1"),
        format!("/v1/sessions/{session}/policies?lim=2"),
        format!("/v1/sessions/{session}/policies?hash=0x12"),
        format!("/v1/sessions/{session}/policies?hash={}&limit=1", alloy_primitives::B256::ZERO),
        format!("/v1/sessions/{session}/sweeps?limit=many"),
    ] {
        let r = c.get(format!("{url}{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_error_body(&r.json().await.unwrap(), "malformed");
    }
}
