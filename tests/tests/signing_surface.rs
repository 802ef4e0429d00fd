//! The whole signing surface under policy, end to end with the real binaries (issue 5):
//! EIP-712 typed data and permits (R-SIGN-3, R-APP-1), EIP-191 personal messages
//! (R-SIGN-4), EIP-7702 refused (R-SIGN-1), over REST, JSON-RPC and the CLI.
//!
//! Digests and signatures are checked with implementations we did not write: Python's
//! eth-account (`pip install eth-account`) and viem (`npm ci --prefix tests/fixtures/userop`).

use alloy_primitives::{address, Address, Bytes, B256, U256};
use bridle_common::protocol::*;
use bridle_common::tx::{AuthorizationRequest, TxRequest};
use bridle_tests::typed::{eth_account_typed, typed, ETH_ACCOUNT_MSG};
use bridle_tests::*;
use serde_json::{json, Value};
use std::process::Command;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");
const SEAPORT: Address = address!("0000000000000068F116a894984e2DB1123eB395");
const STRANGER: Address = address!("0000000000000000000000000000000000005a5a");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn surface_policy() -> String {
    format!(
        r#"
name = "signing-surface"
chains = [31337]
valid_for = "24h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[approvals]
spenders = ["{ROUTER}", "{PERMIT2}"]
max = ["50 USDC"]
[[permits]]
kind = "eip2612"
max_deadline = "1h"
[[permits]]
kind = "permit2"
max_deadline = "30m"
[[typed_data]]
name = "Seaport"
version = "1.6"
chain_id = 31337
verifying_contract = "{SEAPORT}"
primary_type = "OrderComponents"
[[messages]]
prefix = "Bridle agent login:"
[[messages]]
siwe_domain = "example.com"
"#
    )
}

fn permit(owner: Address, spender: Address, value: U256, deadline: u64) -> Value {
    typed(
        json!({"name": "USD Coin", "version": "2", "chainId": 31337, "verifyingContract": USDC}),
        json!({"Permit": [
            {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"}]}),
        "Permit",
        json!({"owner": owner, "spender": spender, "value": value.to_string(), "nonce": 0, "deadline": deadline}),
    )
}

fn permit_single(amount: U256, expiration: u64, sig_deadline: u64) -> Value {
    typed(
        json!({"name": "Permit2", "chainId": 31337, "verifyingContract": PERMIT2}),
        json!({"PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
                {"name": "sigDeadline", "type": "uint256"}],
            "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]}),
        "PermitSingle",
        json!({"details": {"token": USDC, "amount": amount.to_string(), "expiration": expiration, "nonce": 3},
            "spender": ROUTER, "sigDeadline": sig_deadline.to_string()}),
    )
}

/// Nested structs, arrays of structs, strings, bytes and a negative int.
fn seaport_like(offerer: Address) -> Value {
    typed(
        json!({"name": "Seaport", "version": "1.6", "chainId": 31337, "verifyingContract": SEAPORT}),
        json!({
            "OrderComponents": [
                {"name": "offerer", "type": "address"}, {"name": "offer", "type": "OfferItem[]"},
                {"name": "memo", "type": "string"}, {"name": "extra", "type": "bytes"},
                {"name": "tweak", "type": "int64"}, {"name": "salt", "type": "uint256"}],
            "OfferItem": [{"name": "token", "type": "address"}, {"name": "amounts", "type": "uint256[]"}]
        }),
        "OrderComponents",
        json!({"offerer": offerer, "offer": [
                {"token": USDC, "amounts": ["1", "2"]}, {"token": SEAPORT, "amounts": []}],
            "memo": "héllo", "extra": "0xdeadbeef", "tweak": -5, "salt": "12345678901234567890"}),
    )
}

const VIEM_TYPED: &str = r#"
import { hashTypedData } from "viem";
const td = JSON.parse(process.argv[1]);
const conv = (types, t, v) => {
  if (types[t]) { const o = {}; for (const f of types[t]) o[f.name] = conv(types, f.type, v[f.name]); return o; }
  if (t.endsWith("]")) return v.map((x) => conv(types, t.slice(0, t.lastIndexOf("[")), x));
  if (/^u?int/.test(t)) return BigInt(v);
  return v;
};
const { EIP712Domain, ...types } = td.types;
const domain = { ...td.domain };
if (domain.chainId !== undefined) domain.chainId = BigInt(domain.chainId);
console.log(hashTypedData({ domain, types, primaryType: td.primaryType, message: conv(td.types, td.primaryType, td.message) }));
"#;

/// The EIP-712 digest by viem.
fn viem_typed(td: &Value) -> B256 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/userop");
    assert!(dir.join("node_modules/viem").exists(), "viem missing: run `npm ci --prefix tests/fixtures/userop`");
    let out = Command::new("node")
        .current_dir(&dir)
        .args(["--input-type=module", "-e", VIEM_TYPED, &td.to_string()])
        .output()
        .expect("node");
    assert!(out.status.success(), "viem failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

async fn sign_typed(s: &Stack, g: &Granted, td: &Value) -> (u16, Value) {
    s.sign_payload(g, SignPayload::TypedData(td.to_string())).await
}

#[tokio::test]
async fn typed_data_digests_match_eth_account_and_viem_and_permits_are_bounded() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&surface_policy())).await.expect("grant");
    let t = now();

    // Allowed: an EIP-2612 permit, a Permit2 PermitSingle, a rule-matched Seaport-like order.
    for td in [
        permit(g.session, ROUTER, usdc(40), t + 600),
        permit_single(usdc(10), t + 600, t + 600),
        seaport_like(g.session),
    ] {
        let (c, v) = sign_typed(&s, &g, &td).await;
        assert_eq!(c, 200, "{td}\n{v}");
        let digest: B256 = serde_json::from_value(v["digest"].clone()).unwrap();
        let sig = v["signature"].as_str().unwrap();
        let (theirs, signer) = eth_account_typed(&td, sig);
        assert_eq!(digest, theirs, "EIP-712 digest differs from eth-account's for {td}");
        assert_eq!(signer, g.session, "eth-account recovers another signer");
        assert_eq!(digest, viem_typed(&td), "EIP-712 digest differs from viem's for {td}");
        assert!(v["raw_transaction"].is_null());
    }
    // Permits count against the token's spend cap: 40 + 10 spent.
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    let spent: U256 = serde_json::from_value(st["session"]["caps"][0]["spent"].clone()).unwrap();
    assert_eq!(spent, usdc(50), "{st}");

    // Refused: unlimited, far deadline, unlisted spender, other owner, unknown domain.
    let cases = [
        (permit(g.session, ROUTER, U256::MAX, t + 600), "unlimited_approval", "approvals"),
        (permit(g.session, ROUTER, usdc(1), t + 7200), "argument_rejected", "permits[0].max_deadline"),
        (permit(g.session, STRANGER, usdc(1), t + 600), "spender_not_allowed", "approvals.spenders"),
        (permit(STRANGER, ROUTER, usdc(1), t + 600), "argument_rejected", "permits[0]"),
        (permit(g.session, ROUTER, usdc(51), t + 600), "unlimited_approval", "approvals.caps[0]"),
        (permit_single((U256::from(1) << 160) - U256::from(1), t + 60, t + 60), "unlimited_approval", "approvals"),
        (permit_single(usdc(1), t + 3600, t + 60), "argument_rejected", "permits[1].max_deadline"),
        (
            seaport_like(g.session).to_string().replace("Seaport", "Unknown").parse().unwrap(),
            "typed_data_not_allowed",
            "typed_data",
        ),
    ];
    for (td, want, rule) in cases {
        let (c, v) = sign_typed(&s, &g, &td).await;
        assert_eq!((c, code(&v)), (403, want), "{td}\n{v}");
        assert_eq!(v["error"]["rule"], rule, "{v}");
    }
    // An owner envelope in the Bridle domain: never, whatever the policy.
    let owner_msg = bridle_common::owner::OwnerAction {
        action: "revoke_all".into(),
        enclave: s.status().await.identity_address,
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: 1,
    };
    let (c, v) = sign_typed(&s, &g, &owner_msg.typed_data_json()).await;
    assert_eq!((c, code(&v)), (403, "typed_data_not_allowed"), "{v}");
    // Denials charged nothing.
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["uses"], 3, "{st}");

    // The same over JSON-RPC eth_signTypedData_v4 (as a JSON string, as viem sends it).
    let td = permit(g.session, ROUTER, usdc(5), t + 60);
    let payload = SignPayload::TypedData(td.to_string());
    let v = s.rpc_as(&g, &payload, "eth_signTypedData_v4", json!([g.session, td.to_string()])).await;
    let sig = v["result"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(eth_account_typed(&td, sig).1, g.session);
    let td = permit(g.session, ROUTER, U256::MAX, t + 60);
    let payload = SignPayload::TypedData(td.to_string());
    let v = s.rpc_as(&g, &payload, "eth_signTypedData_v4", json!([g.session, td.to_string()])).await;
    assert_eq!(v["error"]["data"]["code"], "unlimited_approval", "{v}");
    assert_eq!(v["error"]["code"], -32003);
}

#[tokio::test]
async fn personal_sign_allowed_prefix_recovers_to_the_session_other_text_refused() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&surface_policy())).await.expect("grant");

    let text = format!("Bridle agent login: {} nonce 7", now());
    let hexmsg = format!("0x{}", hex::encode(text.as_bytes()));
    let payload = SignPayload::Message(Bytes::copy_from_slice(text.as_bytes()));
    let v = s.rpc_as(&g, &payload, "personal_sign", json!([hexmsg, g.session])).await;
    let sig = v["result"].as_str().unwrap_or_else(|| panic!("{v}"));
    let signer: Address = eth_account_py(ETH_ACCOUNT_MSG, &[&hexmsg, sig]).parse().unwrap();
    assert_eq!(signer, g.session);

    // A SIWE message for the allowed domain, as this session, on an allowed chain.
    let siwe = format!(
        "example.com wants you to sign in with your Ethereum account:\n{}\n\nLog in.\n\nURI: https://example.com\nVersion: 1\nChain ID: 31337\nNonce: abcdef12\nIssued At: 2026-11-23T10:00:00Z",
        g.session.to_checksum(None)
    );
    let (c, v) = s.sign_payload(&g, SignPayload::Message(Bytes::copy_from_slice(siwe.as_bytes()))).await;
    assert_eq!(c, 200, "{v}");
    let sig = v["signature"].as_str().unwrap();
    let signer: Address =
        eth_account_py(ETH_ACCOUNT_MSG, &[&format!("0x{}", hex::encode(siwe.as_bytes())), sig]).parse().unwrap();
    assert_eq!(signer, g.session);
    // SIWE for another domain or another address: refused.
    for bad in [
        siwe.replace("example.com", "evil.example"),
        siwe.replace(&g.session.to_checksum(None), &STRANGER.to_checksum(None)),
    ] {
        let (c, v) = s.sign_payload(&g, SignPayload::Message(Bytes::copy_from_slice(bad.as_bytes()))).await;
        assert_eq!((c, code(&v)), (403, "message_not_allowed"), "{v}");
    }

    // Other text: refused, over JSON-RPC too.
    let other = "0x68656c6c6f"; // "hello"
    let payload = SignPayload::Message(Bytes::from_static(b"hello"));
    let v = s.rpc_as(&g, &payload, "personal_sign", json!([other, g.session])).await;
    assert_eq!(v["error"]["data"]["code"], "message_not_allowed", "{v}");
    assert_eq!(v["error"]["data"]["rule"], "messages");
    // A 32-byte message (it could be a userOpHash) with the allowed prefix: refused.
    let hashlike = format!("Bridle agent login:{}", "x".repeat(13));
    assert_eq!(hashlike.len(), 32);
    let (c, v) = s.sign_payload(&g, SignPayload::Message(Bytes::copy_from_slice(hashlike.as_bytes()))).await;
    assert_eq!((c, code(&v)), (403, "message_not_allowed"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().contains("could be a hash"), "{v}");
}

#[tokio::test]
async fn type4_transactions_and_authorizations_are_refused() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&surface_policy())).await.expect("grant");
    let auth = AuthorizationRequest { chain_id: U256::from(31337), address: STRANGER, nonce: 0 };

    let t4 = TxRequest::Eip7702 { chain_id: 31337, authorization_list: vec![auth.clone()] };
    let (c, v) = s.sign_payload(&g, SignPayload::Transaction(t4.clone())).await;
    assert_eq!((c, code(&v)), (403, "authorization_denied"), "{v}");

    let tx = json!({"type": "0x4", "chainId": "0x7a69", "nonce": "0x0", "gas": "0x5208",
        "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1", "to": STRANGER,
        "authorizationList": [{"chainId": "0x7a69", "address": STRANGER, "nonce": "0x0"}]});
    let v = s.rpc_as(&g, &SignPayload::Transaction(t4), "eth_signTransaction", json!([tx])).await;
    assert_eq!(v["error"]["data"]["code"], "authorization_denied", "{v}");

    // An authorization as typed data, under any name or domain.
    for (name, primary) in [("Seaport", "Authorization"), ("EIP7702", "Delegate"), ("Seaport", "SetCode")] {
        let td = typed(
            json!({"name": name, "chainId": 31337}),
            json!({primary: [{"name": "chainId", "type": "uint256"}, {"name": "address", "type": "address"},
                {"name": "nonce", "type": "uint64"}]}),
            primary,
            json!({"chainId": 31337, "address": STRANGER, "nonce": 0}),
        );
        let (c, v) = sign_typed(&s, &g, &td).await;
        assert_eq!((c, code(&v)), (403, "authorization_denied"), "{td}\n{v}");
    }

    // A user operation carrying an EIP-7702 authorization.
    let op = json!({"sender": STRANGER, "nonce": "0x0", "callData": "0x", "callGasLimit": "0x1",
        "verificationGasLimit": "0x1", "preVerificationGas": "0x1", "maxFeePerGas": "0x1",
        "maxPriorityFeePerGas": "0x1", "eip7702Auth": {"chainId": "0x7a69", "address": STRANGER, "nonce": "0x0"}});
    let any = SignPayload::Message(Bytes::new());
    let v = s
        .rpc_as(&g, &any, "bridle_signUserOperation", json!([op, bridle_common::userop::ENTRY_POINT_V07, "0x7a69"]))
        .await;
    assert_eq!(v["error"]["data"]["code"], "authorization_denied", "{v}");
    let (_, st) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(st["session"]["uses"], 0, "{st}");
}

fn bridle(args: &[&str]) -> (i32, String, String) {
    let trust = tempfile::tempdir().unwrap();
    let out = bridle_tests::cli::bridle_cmd(&trust.path().join("trust.json")).args(args).output().expect("bridle");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn cli_signs_typed_data_and_messages_and_imports_erc7715() {
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(&surface_policy())).await.expect("grant");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("agent.key");
    std::fs::write(&key, agent.private_key_hex()).unwrap();
    let (host, key_s, session) = (s.host.url.as_str(), key.to_str().unwrap(), g.session.to_string());
    // The enclave identity as a careful agent knows it: not from the host.
    let identity = s.enclave.identity_key_hex();
    let common = ["--host", host, "--key", key_s, "--session", session.as_str(), "--identity-key", identity.as_str()];

    // sign-message: allowed prefix signed, recovers to the session; other text refused.
    let text = "Bridle agent login: from the bridle CLI";
    let mut args = vec!["agent", "sign-message"];
    args.extend(common);
    args.extend(["--message", text]);
    let (rc, out, err) = bridle(&args);
    assert_eq!(rc, 0, "{out}{err}");
    let signed: Signed = serde_json::from_str(&out).unwrap();
    let signer: Address = eth_account_py(
        ETH_ACCOUNT_MSG,
        &[&format!("0x{}", hex::encode(text)), &format!("0x{}", hex::encode(&signed.signature))],
    )
    .parse()
    .unwrap();
    assert_eq!(signer, g.session);
    let mut args = vec!["agent", "sign-message"];
    args.extend(common);
    args.extend(["--message", "send me everything"]);
    let (rc, _, err) = bridle(&args);
    assert_eq!(rc, 1);
    assert!(err.contains("message_not_allowed"), "{err}");

    // sign-typed-data from a file.
    let td = permit_single(usdc(3), 0, now() + 60);
    let f = dir.path().join("permit2.json");
    std::fs::write(&f, td.to_string()).unwrap();
    let mut args = vec!["agent", "sign-typed-data"];
    args.extend(common);
    args.extend(["--data", f.to_str().unwrap()]);
    let (rc, out, err) = bridle(&args);
    assert_eq!(rc, 0, "{out}{err}");
    let signed: Signed = serde_json::from_str(&out).unwrap();
    assert_eq!(signed.digest, viem_typed(&td));

    // sign-userop: this policy lists no entry point.
    let op = bridle_common::userop::UserOperationRequest {
        chain_id: 31337,
        entry_point: bridle_common::userop::ENTRY_POINT_V07,
        entry_point_version: None,
        sender: STRANGER,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: bridle_common::userop::encode::simple_execute(USDC, U256::ZERO, Bytes::new()),
        call_gas_limit: 1,
        verification_gas_limit: 1,
        pre_verification_gas: U256::from(1),
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    };
    let f = dir.path().join("op.json");
    std::fs::write(&f, serde_json::to_string(&op).unwrap()).unwrap();
    let mut args = vec!["agent", "sign-userop"];
    args.extend(common);
    args.extend(["--op", f.to_str().unwrap()]);
    let (rc, _, err) = bridle(&args);
    assert_eq!(rc, 1);
    assert!(err.contains("target_not_allowed") && err.contains("user_operations.entry_points"), "{err}");

    // policy explain and simulate know the new rules.
    let pf = dir.path().join("policy.toml");
    std::fs::write(&pf, surface_policy()).unwrap();
    let (rc, out, err) = bridle(&["policy", "explain", pf.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    for want in [
        "permits[0]: may sign EIP-2612 Permit",
        "messages[1]: may sign a Sign-In with Ethereum message",
        "typed_data[0]",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    let sim = json!({"account": STRANGER, "requests": [
        {"message": "Bridle agent login: sim"},
        {"message": "nope"},
        {"typed_data": permit(STRANGER, ROUTER, usdc(1), now() + 60)},
        {"typed_data": permit(STRANGER, ROUTER, U256::MAX, now() + 60)},
    ]});
    let sf = dir.path().join("sim.json");
    std::fs::write(&sf, sim.to_string()).unwrap();
    let (rc, out, err) = bridle(&["policy", "simulate", pf.to_str().unwrap(), "--request", sf.to_str().unwrap()]);
    assert_eq!(rc, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("request 0: allowed"), "{out}");
    assert!(lines[1].contains("message_not_allowed"), "{out}");
    assert!(lines[2].contains("request 2: allowed (charges 1 USDC)"), "{out}");
    assert!(lines[3].contains("unlimited_approval"), "{out}");

    // ERC-7715 import: a policy on stdout, what cannot be mapped on stderr.
    let req = json!({"method": "wallet_grantPermissions", "params": [{
    "chainId": "0x7a69", "expiry": now() + 3600,
    "signer": {"type": "account", "data": {"address": STRANGER}},
    "permissions": [
        {"type": "erc20-token-periodic", "data": {"tokenAddress": USDC, "periodAmount": "0x989680", "periodDuration": 86400}},
        {"type": "native-token-stream", "data": {"initialAmount": "0x0", "amountPerSecond": "0x3e8", "maxAmount": "0xf4240"}},
        {"type": "contract-call", "data": {"address": SEAPORT}}
    ]}]});
    let rf = dir.path().join("7715.json");
    std::fs::write(&rf, req.to_string()).unwrap();
    let tok = format!("USDC={USDC}:6");
    let (rc, out, err) = bridle(&["policy", "from-erc7715", rf.to_str().unwrap(), "--token", &tok]);
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("contract-call") && err.contains("signer"), "{err}");
    let p = policy(&out);
    assert_eq!(p.chains, vec![31337]);
    assert_eq!(p.limits[0].max, usdc(10));
    assert_eq!(p.streams[0].max, U256::from(1_000_000u64));
    // And it is a policy the enclave accepts.
    s.grant(&owner, &Actor::random(), &p).await.expect("the mapped policy is granted");
}
