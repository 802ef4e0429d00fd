//! The owner console computes in JavaScript what the page must not take from the host:
//! the EIP-712 owner envelope and its digest, session-binding and receipt digests, the audit
//! chain and its signed head, the policy hash, the sweep terms digest, transaction and
//! message digests of held requests, and attestation documents. Here each of those runs
//! under node (tests/console/digests.mjs imports the very files the host serves) on fixed
//! inputs, and every answer is compared with what bridle-common computes for the same input.

use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use bridle_common::allowance::AllowanceKind;
use bridle_common::audit::testing::TestChain;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use bridle_common::receipt::{self, Receipted};
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_tests::{repo_root, Dev};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Run the cases through the console's modules under node.
fn node(cases: &[Value]) -> Vec<Value> {
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/console/digests.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js 20+) is needed for the console tests");
    child.stdin.take().unwrap().write_all(serde_json::to_string(cases).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON from digests.mjs")
}

fn key(seed: u8) -> (k256::ecdsa::SigningKey, Address) {
    let k = k256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let a = Address::from_public_key(k.verifying_key());
    (k, a)
}

fn signer(k: &k256::ecdsa::SigningKey) -> impl Fn(&B256) -> Result<Signature, k256::ecdsa::Error> + '_ {
    move |d: &B256| {
        let (s, r) = k.sign_prehash_recoverable(d.as_slice())?;
        Ok(Signature::from_signature_and_parity(s, r.is_y_odd()))
    }
}

fn b256(v: &Value) -> B256 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn owner_envelopes_match_bridle_common() {
    let actions = [
        OwnerAction {
            action: action::CREATE_SESSION.into(),
            enclave: address!("6d330d669CCc0aA3a6adb5d97d7eb6d5ABD136a2"),
            session: Address::ZERO,
            agent: address!("00000000000000000000000000000000000dEaD1"),
            policyHash: B256::repeat_byte(0xab),
            subject: B256::ZERO,
            nonce: 1_796_037_142_492,
        },
        OwnerAction {
            action: action::APPROVE_PENDING.into(),
            enclave: Address::repeat_byte(0x11),
            session: Address::repeat_byte(0xfe),
            agent: Address::repeat_byte(0x22),
            policyHash: B256::ZERO,
            subject: B256::repeat_byte(0x5a),
            nonce: (1 << 53) - 1,
        },
        OwnerAction {
            action: action::REVOKE_ALL.into(),
            enclave: Address::repeat_byte(0x01),
            session: Address::ZERO,
            agent: Address::ZERO,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce: 0,
        },
    ];
    let cases: Vec<Value> = actions
        .iter()
        .map(|a| {
            json!({"op": "owner", "fields": {
                "action": a.action, "enclave": a.enclave, "session": a.session, "agent": a.agent,
                "policyHash": a.policyHash, "subject": a.subject, "nonce": a.nonce,
            }})
        })
        .collect();
    for (a, r) in actions.iter().zip(node(&cases)) {
        // The exact JSON a wallet gets from the CLI, and the digest the enclave checks.
        assert_eq!(r["typed_data"], a.typed_data_json(), "typed data of {}", a.action);
        assert_eq!(b256(&r["digest"]), a.digest(), "digest of {}", a.action);
    }
}

#[test]
fn bindings_receipts_and_audit_match_bridle_common() {
    let (k, enclave) = key(7);
    let binding = SessionBinding {
        enclave,
        session: Address::repeat_byte(0x33),
        owner: Address::repeat_byte(0x44),
        agent: Address::repeat_byte(0x55),
        policy_hash: B256::repeat_byte(0x66),
        created_at: 1_796_000_000,
        valid_until: 1_796_086_400,
    };
    let nonce = B256::from(U256::from(1_796_037_142_492u64));
    let mut revoked = Revoked { sessions: vec![Address::repeat_byte(1), Address::repeat_byte(2)], receipt: None };
    receipt::attach(&mut revoked, enclave, 1_796_000_100, nonce, signer(&k)).unwrap();
    let bsig = signer(&k)(&binding.digest()).unwrap();
    let mut updated = PolicyUpdated {
        session: binding.session,
        policy_hash: binding.policy_hash,
        binding: Some(binding.clone()),
        binding_signature: Some(Bytes::copy_from_slice(&bsig.as_bytes())),
        receipt: None,
    };
    receipt::attach(&mut updated, enclave, 1_796_000_200, nonce, signer(&k)).unwrap();
    let mut swept = SweepReply {
        session: binding.session,
        transactions: vec![
            SweepTx {
                chain_id: 31337,
                nonce: 4,
                token: Address::repeat_byte(0x77),
                spender: Address::repeat_byte(0x88),
                kind: AllowanceKind::Erc20,
                to: Address::repeat_byte(0x77),
                hash: B256::repeat_byte(0x99),
                raw_transaction: Bytes::from(vec![2, 0xf8, 1, 2, 3]),
            },
            SweepTx {
                chain_id: 8453,
                nonce: 300,
                token: Address::repeat_byte(0x17),
                spender: Address::repeat_byte(0x18),
                kind: AllowanceKind::Permit2 { contract: Address::repeat_byte(0x19) },
                to: Address::repeat_byte(0x19),
                hash: B256::repeat_byte(0x1a),
                raw_transaction: Bytes::from(vec![0u8; 300]),
            },
        ],
        skipped: vec![SweepSkip {
            chain_id: 1,
            token: Address::repeat_byte(0x21),
            spender: Address::repeat_byte(0x22),
            holder: Address::repeat_byte(0x23),
            reason: "no terms for chain 1 — ünïcode".into(),
        }],
        key_destroyed: true,
        receipt: None,
    };
    receipt::attach(&mut swept, enclave, 1_796_000_300, nonce, signer(&k)).unwrap();
    let mut denied = PendingDenied {
        session: Address::repeat_byte(0x31),
        digest: B256::repeat_byte(0x32),
        until: 1_796_000_900,
        receipt: None,
    };
    receipt::attach(&mut denied, enclave, 1_796_000_350, nonce, signer(&k)).unwrap();
    // A reply the host altered after the enclave signed it.
    let mut forged = revoked.clone();
    forged.sessions.pop();

    let mut chain = TestChain::new(9);
    chain.fill(23);
    let head = chain.head(1_796_000_400);
    let mut tampered = chain.entries.clone();
    tampered[7].detail.push('!');
    let mut dropped = chain.entries.clone();
    dropped.remove(3);

    let n = json!(nonce);
    let cases = vec![
        json!({"op": "binding", "binding": binding}),
        json!({"op": "receipt", "kind": "revoked", "reply": revoked, "identity": enclave, "nonce": n}),
        json!({"op": "receipt", "kind": "policy_updated", "reply": updated, "identity": enclave, "nonce": n}),
        json!({"op": "receipt", "kind": "swept", "reply": swept, "identity": enclave, "nonce": n}),
        json!({"op": "receipt", "kind": "revoked", "reply": forged, "identity": enclave, "nonce": n}),
        json!({"op": "receipt", "kind": "revoked", "reply": revoked, "identity": enclave, "nonce": json!(B256::ZERO)}),
        json!({"op": "audit", "entries": chain.entries, "head": head, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": tampered, "head": head, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": dropped, "head": head, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": chain.entries, "head": head, "identity": enclave}),
        json!({"op": "receipt", "kind": "pending_denied", "reply": denied, "identity": enclave, "nonce": n}),
    ];
    let r = node(&cases);
    assert_eq!(b256(&r[0]["digest"]), binding.digest());
    assert_eq!(b256(&r[1]["digest"]), receipt::digest(&revoked, enclave, 1_796_000_100, nonce), "revoked");
    assert_eq!(b256(&r[2]["digest"]), receipt::digest(&updated, enclave, 1_796_000_200, nonce), "policy_updated");
    assert_eq!(b256(&r[3]["digest"]), receipt::digest(&swept, enclave, 1_796_000_300, nonce), "swept");
    for (i, x) in r.iter().enumerate().take(4).skip(1) {
        assert_eq!(x["ok"], true, "case {i}: {x}");
    }
    assert_eq!(SweepReply::KIND, "swept");
    assert_eq!(r[4]["ok"], false, "an altered reply must not verify");
    assert!(r[5]["error"].as_str().unwrap().contains("replayed"), "{}", r[5]);

    let hashes: Vec<B256> = r[6]["hashes"].as_array().unwrap().iter().map(b256).collect();
    assert_eq!(hashes, chain.entries.iter().map(|e| e.hash()).collect::<Vec<_>>());
    assert_eq!(r[6]["result"]["ok"], true, "{}", r[6]["result"]);
    assert_eq!(r[6]["result"]["complete"], true);
    assert_eq!(r[7]["result"]["ok"], false, "a changed entry: {}", r[7]["result"]);
    assert_eq!(r[8]["result"]["ok"], false, "a missing entry: {}", r[8]["result"]);
    assert!(r[9]["result"]["error"].as_str().unwrap().contains("not the trusted"), "{}", r[9]["result"]);
    assert_eq!(b256(&r[10]["digest"]), receipt::digest(&denied, enclave, 1_796_000_350, nonce), "pending_denied");
    assert_eq!(r[10]["ok"], true, "{}", r[10]);
    assert_eq!(PendingDenied::KIND, "pending_denied");
}

#[test]
fn policy_sweep_and_request_digests_match_bridle_common() {
    let text = std::fs::read_to_string(repo_root().join("examples/policies/usdc-daily.toml")).unwrap();
    let policy = bridle_tests::policy(&text);
    let canonical = String::from_utf8(policy.canonical_bytes()).unwrap();
    let sweep = Sweep {
        session: Address::repeat_byte(3),
        terms: vec![
            SweepTerms {
                chain_id: 31337,
                nonce: 7,
                max_fee_per_gas: 2_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                gas_limit: 100_000,
            },
            SweepTerms {
                chain_id: u64::MAX,
                nonce: u64::MAX,
                max_fee_per_gas: u128::MAX,
                max_priority_fee_per_gas: u128::MAX - 1,
                gas_limit: 21_000,
            },
        ],
        auth: None,
    };
    let terms: Vec<Value> = sweep
        .terms
        .iter()
        .map(|t| {
            json!({
                "chain_id": t.chain_id.to_string(), "nonce": t.nonce.to_string(),
                "max_fee_per_gas": t.max_fee_per_gas.to_string(),
                "max_priority_fee_per_gas": t.max_priority_fee_per_gas.to_string(),
                "gas_limit": t.gas_limit.to_string(),
            })
        })
        .collect();
    let tx = SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 31337,
        nonce: 12,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 90_000,
        to: Some(address!("5FbDB2315678afecb367f032d93F642f64180aa3")),
        value: U256::ZERO,
        data: Bytes::from(hex::decode(format!("a9059cbb{:0>64}{:0>64x}", "dead", 60_000_000u64)).unwrap()),
        access_list: vec![bridle_common::tx::AccessEntry {
            address: Address::repeat_byte(9),
            storage_keys: vec![B256::repeat_byte(1), B256::ZERO],
        }],
    }));
    let msg = SignPayload::Message(Bytes::from_static("Sign in to example.org — nonce 42".as_bytes()));
    let (k, who) = key(5);
    let pk = hex::encode(k.verifying_key().to_encoded_point(true).as_bytes());
    let cases = vec![
        json!({"op": "policy_hash", "canonical": canonical}),
        json!({"op": "terms", "terms": terms}),
        json!({"op": "payload", "payload": tx}),
        json!({"op": "payload", "payload": msg}),
        json!({"op": "address", "public_key": format!("0x{pk}")}),
    ];
    let r = node(&cases);
    assert_eq!(b256(&r[0]["hash"]), policy.hash(), "policy hash of the canonical text");
    assert_eq!(b256(&r[1]["digest"]), sweep.terms_digest(), "sweep terms digest");
    let stamp = |p| bridle_common::payload::stamp_digest(p).unwrap();
    assert_eq!(b256(&r[2]["digest"]), stamp(&tx), "EIP-1559 signing hash");
    assert_eq!(b256(&r[3]["digest"]), stamp(&msg), "EIP-191 message hash");
    assert_eq!(r[4]["address"], json!(who.to_checksum(None)));
}

/// Attestation documents of a real development enclave, verified by the console's code
/// against its mock root — and refused for every expectation that does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_documents_of_bridle_dev_verify_in_the_console_code() {
    let dev = Dev::start();
    let root = std::fs::read_to_string(dev.dir.path().join("dev/mock-root.pem")).unwrap();
    let http = reqwest::Client::new();
    let status: Value = http.get(format!("{}/v1/status", dev.url)).send().await.unwrap().json().await.unwrap();
    let pk = status["identity_public_key"].as_str().unwrap().to_string();
    let nonce = format!("0x{}", hex::encode([0x42u8; 32]));
    let att: Value =
        http.get(format!("{}/v1/attestation?nonce={nonce}", dev.url)).send().await.unwrap().json().await.unwrap();
    let doc = att["document"].as_str().unwrap().to_string();
    let pcr0 = att["summary"]["pcrs"]["0"].as_str().unwrap().to_string();
    let mut altered = hex::decode(&doc[2..]).unwrap();
    let at = altered.len() - 120; // inside the payload's last fields or the signature
    altered[at] ^= 1;
    let case = |document: &str, opts: Value| json!({"op": "attest", "document": document, "opts": opts});
    let other_nonce = format!("0x{}", hex::encode([0x43u8; 32]));
    let cases = vec![
        case(&doc, json!({"root_pem": root, "any_image": true, "nonce": nonce, "public_key": pk})),
        case(&doc, json!({"root_pem": root, "pcrs": {"0": pcr0}, "nonce": nonce})),
        case(&doc, json!({"any_image": true})),
        case(&doc, json!({"root_pem": root})),
        case(&doc, json!({"root_pem": root, "any_image": true, "nonce": other_nonce})),
        case(&doc, json!({"root_pem": root, "pcrs": {"0": format!("{:0>96}", "1")}})),
        case(&format!("0x{}", hex::encode(&altered)), json!({"root_pem": root, "any_image": true})),
        case(&doc, json!({"root_pem": root, "any_image": true, "public_key": format!("0x02{}", "11".repeat(32))})),
    ];
    let r = node(&cases);
    assert_eq!(r[0]["ok"], true, "{}", r[0]);
    assert_eq!(r[0]["public_key"].as_str().unwrap(), pk.to_lowercase());
    assert_eq!(r[1]["ok"], true, "pinned PCR0: {}", r[1]);
    let refused = |i: usize, what: &str| {
        assert_eq!(r[i]["ok"], false, "case {i} must be refused: {}", r[i]);
        let e = r[i]["error"].as_str().unwrap();
        assert!(e.contains(what), "case {i}: expected {what:?} in {e:?}");
    };
    refused(2, "trusted root");
    refused(3, "no expected image");
    refused(4, "nonce mismatch");
    refused(5, "PCR0 mismatch");
    assert_eq!(r[6]["ok"], false, "an altered document: {}", r[6]);
    refused(7, "public_key mismatch");
}

/// A session's status as the enclave reports it after a signed transfer, a signed approval
/// and a held request (caps with spend, the allowance registry, a pending record with its
/// request), from the one decision core.
fn session_status(session: Address) -> SessionStatus {
    use bridle_common::machine::{Machine, Signer};
    use bridle_common::payload::prepare;
    use bridle_common::stamp::Stamp;
    struct Key;
    impl Signer for Key {
        fn sign(&self, _: &B256) -> Result<Signature, String> {
            Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
        }
    }
    const T0: u64 = 1_800_000_000;
    let text = r#"
name = "console-status"
chains = [31337]
valid_for = "24h"
escalate = { above_value = "50 USDC", ttl = "10m" }
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
    let doc = bridle_common::policy::file::resolve_text(text, T0).unwrap();
    let compiled = bridle_common::policy::CompiledPolicy::compile(doc).unwrap();
    let mut m = Machine::new(session, Address::repeat_byte(0xb0), Address::repeat_byte(0xa9), compiled, T0, 60, 64);
    let usdc = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    let spender = address!("e592427a0aece92de3edee1f18e0157c05861564");
    let requests = [
        bridle_tests::erc20_approve(31337, 0, usdc, spender, U256::from(40_000_000u64)),
        bridle_tests::erc20_transfer(31337, 1, usdc, Address::repeat_byte(0xde), U256::from(5_000_000u64)),
        bridle_tests::erc20_transfer(31337, 2, usdc, Address::repeat_byte(0xde), U256::from(45_000_000u64)),
    ];
    for (i, tx) in requests.into_iter().enumerate() {
        let p = SignPayload::Transaction(tx);
        let stamp = Stamp { nonce: [i as u8 + 1; 16], timestamp: T0 + 1, mac: [0; 32] };
        let _ = m.sign(T0 + 1, &p, prepare(&p).unwrap(), &stamp, Some(&Key));
    }
    let s = m.status(T0 + 5);
    assert!(!s.caps.is_empty() && !s.allowances.is_empty() && s.pending.len() == 1, "{s:?}");
    s
}

#[test]
fn a_signed_status_is_checked_in_the_browser_and_the_json_must_say_what_was_signed() {
    let (k, enclave) = key(11);
    let session = Address::repeat_byte(0x5e);
    let nonce = B256::repeat_byte(0x4e);
    let mut status = Status {
        version: "0.1.0".into(),
        identity_public_key: Bytes::from(vec![2u8; 33]),
        identity_address: enclave,
        booted_at: 1_800_000_000,
        now: 1_800_000_005,
        sessions_active: 1,
        sessions_total: 1,
        signatures: 2,
        denials: 0,
        session: Some(session_status(session)),
        receipt: None,
    };
    let cbor_of = |s: &Status| {
        let mut bare = s.clone();
        bare.set_receipt(None);
        alloy_primitives::hex::encode_prefixed(bridle_common::frame::to_cbor(&bare).unwrap())
    };
    receipt::attach(&mut status, enclave, 1_800_000_005, nonce, signer(&k)).unwrap();
    // What the host's `GET /v1/status?session=…&nonce=…&cbor=1` answers.
    let mut reply = serde_json::to_value(&status).unwrap();
    reply["cbor"] = json!(cbor_of(&status));

    // The host lowers the spend shown, keeps the signed bytes.
    let mut spent = reply.clone();
    spent["session"]["caps"][0]["spent"] = json!("0x0");
    // The host swaps the held request's recipient in the JSON.
    let mut swapped = reply.clone();
    let data =
        swapped["session"]["pending"][0]["payload"]["transaction"]["eip1559"]["data"].as_str().unwrap().to_string();
    swapped["session"]["pending"][0]["payload"]["transaction"]["eip1559"]["data"] =
        json!(data.replace(&"de".repeat(20), &"66".repeat(20)));
    // The host re-encodes a changed status: the receipt no longer covers the bytes.
    let mut reencoded = spent.clone();
    let mut changed = status.clone();
    changed.session.as_mut().unwrap().uses = 0;
    reencoded["cbor"] = json!(cbor_of(&changed));
    // The host drops the bytes, or answers an older nonce.
    let mut no_bytes = reply.clone();
    no_bytes.as_object_mut().unwrap().remove("cbor");

    let case = |r: &Value, n: B256| json!({"op": "status", "reply": r, "identity": enclave, "nonce": n});
    let r = node(&[
        case(&reply, nonce),
        case(&spent, nonce),
        case(&swapped, nonce),
        case(&reencoded, nonce),
        case(&no_bytes, nonce),
        case(&reply, B256::repeat_byte(1)),
    ]);
    assert_eq!(r[0]["ok"], true, "the enclave's status verifies: {}", r[0]);
    let err = |i: usize| r[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(err(1).contains("status.session.caps[0].spent"), "{}", r[1]);
    assert!(err(2).contains("status.session.pending[0].payload.transaction.eip1559.data"), "{}", r[2]);
    assert!(err(3).contains("not the trusted enclave"), "{}", r[3]);
    assert!(err(4).contains("did not relay the signed status bytes"), "{}", r[4]);
    assert!(err(5).contains("replayed"), "{}", r[5]);
}
