//! The owner console computes in JavaScript what the page must not take from the host:
//! the EIP-712 owner envelope and its digest, session-binding and receipt digests, the audit
//! chain and its signed head, the policy hash, the sweep terms digest, transaction and
//! message digests of held requests, and attestation documents. Here each of those runs
//! under node (tests/console/digests.mjs imports the very files the host serves) on fixed
//! inputs, and every answer is compared with what bridle-common computes for the same input.

use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use bridle_common::allowance::AllowanceKind;
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::AuditHead;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use bridle_common::receipt::{self, Receipted};
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{self, EntryPointVersion, UserOperationRequest, ENTRY_POINT_V07, ENTRY_POINT_V08};
use bridle_tests::repo_root;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

#[path = "console_digests/attestation.rs"]
mod attestation;
#[path = "console_digests/owner_nonces.rs"]
mod owner_nonces;

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
        user_operations: vec![],
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
                invalidate_nonce: None,
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
                invalidate_nonce: Some(65_535),
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
    let mut created = SessionCreated {
        binding: binding.clone(),
        binding_signature: Bytes::copy_from_slice(&bsig.as_bytes()),
        attestation: None,
        receipt: None,
    };
    receipt::attach(&mut created, enclave, 1_796_000_360, nonce, signer(&k)).unwrap();
    let mut attested =
        SessionCreated { attestation: Some(Bytes::from(vec![0xd2, 0x84, 1, 2])), receipt: None, ..created.clone() };
    receipt::attach(&mut attested, enclave, 1_796_000_370, nonce, signer(&k)).unwrap();
    // A reply the host altered after the enclave signed it.
    let mut forged = revoked.clone();
    forged.sessions.pop();

    let mut chain = TestChain::new(9);
    chain.fill(23);
    let head = chain.head(1_796_000_400);
    // A head of an enclave whose window had moved on: `oldest` is in what it signs.
    let windowed = chain.head_held_from(22, 1_796_000_400, Some(3));
    // And one of an enclave before it (signed as v2).
    let v2 = chain.head_held_from(22, 1_796_000_400, None);
    let mut tampered = chain.entries.clone();
    tampered[7].detail.push('!');
    let mut dropped = chain.entries.clone();
    dropped.remove(3);
    // The same bytes written another way (a review of 2026-12-05): the hash reads
    // "5e55…" as "0x5e55…" and ["allowed"] as "allowed", the page's filters do not.
    let mut bare = json!(chain.entries);
    let s = bare[5]["session"].as_str().unwrap().trim_start_matches("0x").to_string();
    bare[5]["session"] = json!(s);
    let mut listed = json!(chain.entries);
    listed[6]["kind"] = json!([listed[6]["kind"].clone()]);
    let mut head_text = json!(head);
    head_text["seq"] = json!(head.seq.to_string());

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
        json!({"op": "receipt", "kind": "session_created", "reply": created, "identity": enclave, "nonce": n}),
        json!({"op": "receipt", "kind": "session_created", "reply": attested, "identity": enclave, "nonce": n}),
        // An earlier grant's genuine reply, answering a grant signed with a later nonce.
        json!({"op": "receipt", "kind": "session_created", "reply": created, "identity": enclave,
               "nonce": json!(B256::from(U256::from(1_796_037_142_493u64)))}),
        json!({"op": "audit", "entries": bare, "head": head, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": listed, "head": head, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": chain.entries, "head": head_text, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": chain.entries, "head": windowed, "identity": chain.enclave()}),
        json!({"op": "audit", "entries": chain.entries, "head": AuditHead { oldest: Some(4), ..windowed.clone() },
               "identity": chain.enclave()}),
        json!({"op": "audit", "entries": chain.entries, "head": v2, "identity": chain.enclave()}),
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
    assert_eq!(b256(&r[11]["digest"]), receipt::digest(&created, enclave, 1_796_000_360, nonce), "session_created");
    assert_eq!(b256(&r[12]["digest"]), receipt::digest(&attested, enclave, 1_796_000_370, nonce), "attested");
    assert_eq!((r[11]["ok"].clone(), r[12]["ok"].clone()), (json!(true), json!(true)), "{} {}", r[11], r[12]);
    assert!(r[13]["error"].as_str().unwrap().contains("replayed"), "{}", r[13]);
    assert_eq!(SessionCreated::KIND, "session_created");
    // Each hashes as the genuine entry does, and is refused for its form.
    assert_eq!(r[14]["hashes"], r[6]["hashes"]);
    assert_eq!(r[15]["hashes"], r[6]["hashes"]);
    for (i, field) in
        [(14, "position 5 is not in canonical form: session"), (15, "position 6 is not in canonical form: kind")]
    {
        assert_eq!(r[i]["result"]["ok"], false, "{}", r[i]["result"]);
        assert!(r[i]["result"]["error"].as_str().unwrap().contains(field), "{}", r[i]["result"]);
    }
    assert!(r[16]["result"]["error"].as_str().unwrap().contains("head is not in canonical form: seq"), "{}", r[16]);
    assert_eq!(r[17]["result"]["ok"], true, "the head's `oldest` is signed: {}", r[17]["result"]);
    assert_eq!(r[18]["result"]["ok"], false, "`oldest` changed after signing: {}", r[18]["result"]);
    assert_eq!(r[19]["result"]["ok"], true, "a v2 head (no `oldest`) still verifies: {}", r[19]["result"]);
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
        accounts: vec![],
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
    // The owner sees what the transaction may cost beside its value: 90 000 gas at 30 gwei.
    assert_eq!(
        r[2]["lines"],
        json!([
            "eip1559 transaction on chain 31337, nonce 12",
            "to 0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "calls transfer(to 0x000000000000000000000000000000000000dead, amount 60000000 (base units))",
            "gas limit 90000; max fee 30 gwei, priority 1 gwei",
            "fees at most 0.0027 ETH",
            "access list: 1 address",
        ]),
        "{}",
        r[2]
    );
    assert_eq!(b256(&r[3]["digest"]), stamp(&msg), "EIP-191 message hash");
    assert_eq!(r[4]["address"], json!(who.to_checksum(None)));

    // EIP-712 typed data and ERC-4337 user operations: recomputed in the browser exactly as
    // the enclave computes them.
    let signed: Vec<(&str, SignPayload)> = typed_data_payloads().into_iter().chain(user_operation_payloads()).collect();
    let tokens = json!([{"symbol": "USDC", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "decimals": 6}]);
    let cases: Vec<Value> =
        signed.iter().map(|(_, p)| json!({"op": "payload", "payload": p, "tokens": tokens})).collect();
    let r = node(&cases);
    for ((name, p), x) in signed.iter().zip(&r) {
        assert!(x["digest"].is_string(), "{name}: not recomputed in the browser: {x}");
        assert_eq!(b256(&x["digest"]), stamp(p), "{name}: the browser's digest is the enclave's");
        println!(
            "{name}: {}\n  {}",
            x["digest"],
            x["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n  ")
        );
    }
    // EIP-712's own example (Mail from Person to Person).
    let mail = signed.iter().position(|(n, _)| *n == "eip712 mail").unwrap();
    assert_eq!(
        b256(&r[mail]["digest"]),
        b256(&json!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"))
    );

    // The decoded request says what is hashed: declared fields only, in their types' terms.
    let lines = |i: usize| {
        r[i]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let at = |n: &str| signed.iter().position(|(name, _)| *name == n).unwrap();
    let permit = lines(at("permit"));
    assert!(permit.contains(&"domain: name \"USD Coin\", version \"2\", chainId 1, verifyingContract 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48".to_string()), "{permit:?}");
    assert!(permit.contains(&"  value: 1000000000".to_string()), "{permit:?}");
    let extra = lines(at("domain fields as alloy reads them, extra keys ignored"));
    assert!(
        !extra.iter().any(|l| l.contains("not signed")),
        "a key outside the declared fields is not shown: {extra:?}"
    );
    let u = lines(at("userop v0.7"));
    assert!(
        u[0].starts_with(
            "user operation for EntryPoint v0.7 0x0000000071727De22E5E9d8BAf0edAc6f37da032 on chain 31337"
        ),
        "{u:?}"
    );
    assert!(u.iter().any(|l| l.contains("calls transfer(to 0x") && l.contains("amount 45 USDC")), "{u:?}");
    let u = lines(at("userop v0.8 (canonical address)"));
    assert!(u[0].starts_with("user operation for EntryPoint v0.8"), "{u:?}");

    // A host that alters the request it shows: the page's digest differs from the signed one
    // (the page says "DOES NOT MATCH the request").
    let mut altered_permit = permit_doc();
    altered_permit["message"]["spender"] = json!(Address::repeat_byte(0x66));
    let altered_permit = SignPayload::TypedData(altered_permit.to_string());
    let mut altered_mail = mail_doc();
    altered_mail["message"]["contents"] = json!("Hello, Eve!");
    let altered_mail = SignPayload::TypedData(altered_mail.to_string());
    let mut op = user_op();
    op.nonce += U256::from(1);
    let altered_op = SignPayload::UserOperation(op);
    let mut op = user_op();
    op.entry_point_version = Some(EntryPointVersion::V08);
    let other_version = SignPayload::UserOperation(op);
    let altered = [
        ("permit", altered_permit),
        ("eip712 mail", altered_mail),
        ("userop v0.7", altered_op),
        ("userop v0.7", other_version),
    ];
    let cases: Vec<Value> = altered.iter().map(|(_, p)| json!({"op": "payload", "payload": p})).collect();
    for ((name, p), x) in altered.iter().zip(node(&cases)) {
        let original = &signed[at(name)].1;
        assert_eq!(b256(&x["digest"]), stamp(p), "{name}: the altered request's own digest");
        assert_ne!(b256(&x["digest"]), stamp(original), "{name}: an altered request must not match the signed digest");
    }

    // What the enclave refuses, the page does not recompute ("not recomputed").
    let refused = refused_payloads();
    let cases: Vec<Value> = refused.iter().map(|(_, p)| json!({"op": "payload", "payload": p})).collect();
    for ((name, p), x) in refused.iter().zip(node(&cases)) {
        assert!(bridle_common::payload::stamp_digest(p).is_err(), "{name}: the enclave refuses it");
        assert_eq!(x["digest"], Value::Null, "{name}: refused by the enclave, so not recomputed: {x}");
    }
    // A gas limit beyond 2^53 reaches the page as an inexact JSON number: not recomputed.
    let mut op = user_op();
    op.call_gas_limit = (1 << 60) + 1;
    let big_gas = SignPayload::UserOperation(op);
    stamp(&big_gas);
    let x = &node(&[json!({"op": "payload", "payload": big_gas})])[0];
    assert_eq!(x["digest"], Value::Null, "{x}");

    // A held request of two forms (a review of 2026-12-04: shown as the first, hashed as
    // another, so Approve signed a request the owner never saw): neither shown nor hashed.
    let (tx, msg) = (serde_json::to_value(&tx).unwrap(), serde_json::to_value(&msg).unwrap());
    let one = &tx["transaction"]["eip1559"];
    let two_kinds = json!({"transaction": {"legacy": one, "eip1559": one}});
    let two_forms = json!({"message": msg["message"], "transaction": tx["transaction"]});
    let cases = [
        json!({"op": "payload", "payload": two_kinds}),
        json!({"op": "payload", "payload": two_forms}),
        json!({"op": "payload", "payload": {"transaction": {"legacy": null}}}),
    ];
    for x in node(&cases) {
        assert_eq!(x["digest"], Value::Null, "{x}");
        assert_eq!(x["lines"], json!(["(a request of no single kind this page knows: not shown)"]), "{x}");
    }
}

fn permit_doc() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},
        "message": {
            "owner": Address::repeat_byte(0x11), "spender": address!("000000000022D473030F116dDEE9F6B43aC78BA3"),
            "value": "1000000000", "nonce": 0, "deadline": 1_800_000_000u64
        }
    })
}

/// The example of EIP-712 itself.
fn mail_doc() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

/// One struct `S` with the given fields and values, in a small domain.
fn one_struct(fields: Value, message: Value) -> Value {
    json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}], "S": fields},
        "primaryType": "S", "domain": {"name": "Test"}, "message": message
    })
}

fn typed_data_payloads() -> Vec<(&'static str, SignPayload)> {
    let td = |v: Value| SignPayload::TypedData(v.to_string());
    let permit2 = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "PermitDetails": [
                {"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}
            ],
            "PermitSingle": [
                {"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
                {"name": "sigDeadline", "type": "uint256"}
            ]
        },
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": 8453, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3"},
        "message": {
            "details": {
                "token": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
                "amount": "1461501637330902918203684832716283019655932542975",
                "expiration": 281_474_976_710_655u64, "nonce": 3
            },
            "spender": "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD",
            "sigDeadline": "0x6b49d200"
        }
    });
    let arrays = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Order": [
                {"name": "maker", "type": "address"}, {"name": "items", "type": "Item[]"},
                {"name": "pair", "type": "Item[2]"}, {"name": "grid", "type": "uint8[2][3]"},
                {"name": "ragged", "type": "uint256[][]"}, {"name": "tags", "type": "string[]"},
                {"name": "blobs", "type": "bytes[]"}, {"name": "keys", "type": "bytes32[2]"},
                {"name": "flags", "type": "bool[]"}, {"name": "none", "type": "Item[]"}
            ],
            "Item": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}, {"name": "meta", "type": "Meta"}],
            "Meta": [{"name": "note", "type": "string"}, {"name": "ids", "type": "uint16[]"}]
        },
        "primaryType": "Order",
        "domain": {"name": "Arrays", "chainId": "31337"},
        "message": {
            "maker": Address::repeat_byte(0xab),
            "items": [
                {"token": Address::repeat_byte(1), "amount": "5", "meta": {"note": "first", "ids": [1, 2, 65535]}},
                {"token": Address::repeat_byte(2), "amount": 6, "meta": {"note": "", "ids": []}}
            ],
            "pair": [
                {"token": Address::repeat_byte(3), "amount": "0x07", "meta": {"note": "a", "ids": [9]}},
                {"token": Address::repeat_byte(4), "amount": "8", "meta": {"note": "b", "ids": []}}
            ],
            "grid": [[1, 2], [3, 4], [255, "0"]],
            "ragged": [[], ["1"], [2, 3, "115792089237316195423570985008687907853269984665640564039457584007913129639935"]],
            "tags": ["x", "ÿ", ""],
            "blobs": ["0x", "0x00ff", [1, 2, 3]],
            "keys": [B256::repeat_byte(7), B256::ZERO],
            "flags": [true, "false", false],
            "none": []
        }
    });
    let signed_ints = one_struct(
        json!([
            {"name": "a", "type": "int8"}, {"name": "b", "type": "int8"}, {"name": "c", "type": "int16"},
            {"name": "d", "type": "int24"}, {"name": "e", "type": "int64"}, {"name": "f", "type": "int128"},
            {"name": "g", "type": "int256"}, {"name": "h", "type": "int256"}, {"name": "i", "type": "int32"},
            {"name": "j", "type": "int256[]"}
        ]),
        json!({
            "a": -128, "b": 127, "c": "-0x10", "d": "-8388608", "e": i64::MIN,
            "f": "-170141183460469231731687303715884105728", "g": "-1",
            "h": "57896044618658097711785492504343953926634992332820282019728792003956564819967",
            "i": "+42", "j": [-1, 0, "-57896044618658097711785492504343953926634992332820282019728792003956564819968"]
        }),
    );
    let bytes_and_strings = one_struct(
        json!([
            {"name": "empty", "type": "bytes"}, {"name": "list", "type": "bytes"}, {"name": "blob", "type": "bytes"},
            {"name": "text", "type": "string"}, {"name": "nothing", "type": "string"}, {"name": "one", "type": "bytes1"},
            {"name": "word", "type": "bytes32"}, {"name": "yes", "type": "bool"}, {"name": "no", "type": "bool"},
            {"name": "twelve", "type": "bytes12"}
        ]),
        json!({
            "empty": "0x", "list": [1, 2, 255], "blob": format!("0x{}", "de".repeat(300)),
            "text": "héllo — ✓ 🦀 \"quoted\"\n", "nothing": "", "one": "0xff",
            "word": format!("0X{}", "Ab".repeat(32)), "yes": "true", "no": false, "twelve": "00112233445566778899aabb"
        }),
    );
    let numbers = one_struct(
        json!([
            {"name": "max64", "type": "uint64"}, {"name": "underscores", "type": "uint256"}, {"name": "binary", "type": "uint8"},
            {"name": "octal", "type": "uint256"}, {"name": "empty", "type": "uint256"}, {"name": "big", "type": "uint256"},
            {"name": "padded", "type": "uint08"}
        ]),
        json!({
            "max64": u64::MAX, "underscores": "1_000_000", "binary": "0b101", "octal": "0o17", "empty": "",
            "big": "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "padded": 7
        }),
    );
    // alloy hashes the domain's own fields, whatever types.EIP712Domain declares; keys it
    // does not know, in the domain or the message, are not hashed.
    let domain = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}],
            "Note": [{"name": "text", "type": "string"}]
        },
        "primaryType": "Note",
        "domain": {
            "name": "Notes", "version": null, "chainId": "0x89", "verifyingContract": "cccccccccccccccccccccccccccccccccccccccc",
            "salt": B256::repeat_byte(0x5a), "foo": "bar"
        },
        "message": {"text": "hi", "extra": "not signed"}
    });
    // Referenced structs sorted by their encodeType text.
    let sorting = json!({
        "types": {
            "Root": [
                {"name": "z", "type": "Zeta"}, {"name": "b", "type": "Beta"}, {"name": "be", "type": "Be"},
                {"name": "bx", "type": "B_x"}, {"name": "lower", "type": "alpha"}
            ],
            "Zeta": [{"name": "a", "type": "Alpha"}], "Beta": [{"name": "v", "type": "uint8"}],
            "Be": [{"name": "v", "type": "uint8"}], "B_x": [{"name": "v", "type": "uint8"}],
            "alpha": [{"name": "v", "type": "uint8"}], "Alpha": [{"name": "v", "type": "bool"}],
            "Unused": [{"name": "v", "type": "uint8"}]
        },
        "primaryType": "Root",
        "domain": {},
        "message": {"z": {"a": {"v": true}}, "b": {"v": 1}, "be": {"v": 2}, "bx": {"v": 3}, "lower": {"v": 4}}
    });
    let namespaced = json!({
        "types": {"ns:Root": [{"name": "v", "type": "uint256"}]},
        "primaryType": "ns:Root", "domain": {"name": "ns"}, "message": {"v": 1}
    });
    vec![
        ("permit", td(permit_doc())),
        ("permit2 PermitSingle", td(permit2)),
        ("arrays of structs, fixed and nested arrays", td(arrays)),
        ("negative intN", td(signed_ints)),
        ("bytes and strings", td(bytes_and_strings)),
        ("eip712 mail", td(mail_doc())),
        ("integers beyond 2^53 and in every notation", td(numbers)),
        ("domain fields as alloy reads them, extra keys ignored", td(domain)),
        ("sorted referenced types", td(sorting)),
        ("namespaced struct name", td(namespaced)),
        // A JSON string holding the document, as some wallets send it.
        ("permit as a JSON string", SignPayload::TypedData(Value::String(permit_doc().to_string()).to_string())),
    ]
}

fn user_op() -> UserOperationRequest {
    let usdc = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    let transfer = hex::decode(format!("a9059cbb{:0>64}{:0>64x}", "dead", 45_000_000u64)).unwrap();
    UserOperationRequest {
        chain_id: 31337,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: Address::repeat_byte(0x5e),
        nonce: U256::from(7) << 64 | U256::from(3),
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: userop::encode::simple_execute(usdc, U256::ZERO, transfer.into()),
        call_gas_limit: 100_000,
        verification_gas_limit: 200_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    }
}

/// What the console checks an owner's approval of a held user operation against is what the
/// session key signs (`Prepared::signing_digest`): a v0.7 hash as an EIP-191 message, a
/// v0.8 one as it is (the console required the v0.7 form of both, and so reported a v0.8
/// approval the enclave had made as failed: a review of 2026-12-05). Without the payload
/// (omitted from the status) either form is the session's signature over the digest.
#[test]
fn an_approved_user_operation_is_checked_against_what_the_key_signs() {
    let v08 = UserOperationRequest { entry_point: ENTRY_POINT_V08, ..user_op() };
    let mut cases = Vec::new();
    let mut want = Vec::new();
    for op in [user_op(), v08] {
        let payload = SignPayload::UserOperation(op);
        let prepared = bridle_common::payload::prepare(&payload).unwrap();
        let digest = prepared.stamp_digest();
        cases.push(json!({"op": "approval_signed", "digest": digest,
                          "pending": {"kind": "user_operation", "digest": digest, "payload": payload}}));
        want.push(vec![prepared.signing_digest()]);
        cases.push(json!({"op": "approval_signed", "digest": digest,
                          "pending": {"kind": "user_operation", "digest": digest, "payload_omitted": true}}));
        want.push(vec![alloy_primitives::eip191_hash_message(digest.as_slice()), digest]);
    }
    let r = node(&cases);
    for (i, w) in want.iter().enumerate() {
        let got: Vec<B256> = r[i]["messages"].as_array().unwrap().iter().map(b256).collect();
        assert_eq!(&got, w, "case {i}");
    }
    assert_ne!(want[0], want[2], "v0.7 and v0.8 sign different messages");
}

fn user_operation_payloads() -> Vec<(&'static str, SignPayload)> {
    let uo = SignPayload::UserOperation;
    let with_factory_and_paymaster = UserOperationRequest {
        entry_point_version: Some(EntryPointVersion::V07),
        factory: Some(Address::repeat_byte(0xfa)),
        factory_data: Bytes::from(vec![0x5f, 0xbf, 0xb9, 0xcf, 1, 2, 3]),
        paymaster: Some(Address::repeat_byte(0x9a)),
        paymaster_verification_gas_limit: 60_000,
        paymaster_post_op_gas_limit: 7_000,
        paymaster_data: Bytes::from(vec![0xee; 65]),
        ..user_op()
    };
    let with_init_code = UserOperationRequest {
        init_code: Some([Address::repeat_byte(0xfb).as_slice(), &[9, 8, 7]].concat().into()),
        nonce: U256::MAX,
        pre_verification_gas: U256::from(1u64 << 60),
        ..user_op()
    };
    let v08 = UserOperationRequest {
        entry_point: ENTRY_POINT_V08,
        paymaster: Some(Address::repeat_byte(0x9b)),
        paymaster_verification_gas_limit: 1,
        paymaster_post_op_gas_limit: 0,
        call_data: userop::encode::erc7579_single(Address::repeat_byte(0x22), U256::from(5), &[]),
        ..user_op()
    };
    let v08_elsewhere = UserOperationRequest {
        entry_point: Address::repeat_byte(0x08),
        entry_point_version: Some(EntryPointVersion::V08),
        factory: Some(Address::repeat_byte(0xfc)),
        chain_id: 8453,
        ..user_op()
    };
    let v07_at_v08_address = UserOperationRequest {
        entry_point: ENTRY_POINT_V08,
        entry_point_version: Some(EntryPointVersion::V07),
        call_data: Bytes::new(),
        ..user_op()
    };
    vec![
        ("userop v0.7", uo(user_op())),
        ("userop v0.7 with factory and paymaster", uo(with_factory_and_paymaster)),
        ("userop v0.7 with init_code", uo(with_init_code)),
        ("userop v0.8 (canonical address)", uo(v08)),
        ("userop v0.8 (declared) with factory", uo(v08_elsewhere)),
        ("userop v0.7 declared at the v0.8 address", uo(v07_at_v08_address)),
    ]
}

/// Requests the enclave refuses to hash: the page must not recompute them either.
fn refused_payloads() -> Vec<(&'static str, SignPayload)> {
    let td = |v: Value| SignPayload::TypedData(v.to_string());
    let s = |ty: &str, v: Value| td(one_struct(json!([{"name": "x", "type": ty}]), json!({ "x": v })));
    let mut missing = permit_doc();
    missing["message"].as_object_mut().unwrap().remove("deadline");
    let mut domain_primary = permit_doc();
    domain_primary["primaryType"] = json!("EIP712Domain");
    let cycle = json!({
        "types": {"A": [{"name": "b", "type": "B"}], "B": [{"name": "a", "type": "A[]"}]},
        "primaryType": "A", "domain": {}, "message": {"b": {"a": []}}
    });
    let recursive = json!({
        "types": {"Node": [{"name": "v", "type": "uint8"}, {"name": "next", "type": "Node[]"}]},
        "primaryType": "Node", "domain": {}, "message": {"v": 1, "next": []}
    });
    let v08_7702 = UserOperationRequest {
        entry_point: ENTRY_POINT_V08,
        init_code: Some([&[0x77u8, 0x02][..], &[0u8; 18], &[1, 2]].concat().into()),
        ..user_op()
    };
    let both = UserOperationRequest {
        factory: Some(Address::repeat_byte(1)),
        init_code: Some(Bytes::from(vec![2u8; 20])),
        ..user_op()
    };
    let stray_paymaster_gas = UserOperationRequest { paymaster_post_op_gas_limit: 1, ..user_op() };
    vec![
        ("uint8 of 300", s("uint8", json!(300))),
        ("int8 of 128", s("int8", json!(128))),
        ("int8 of -129", s("int8", json!("-129"))),
        ("a negative uint", s("uint256", json!(-1))),
        (
            "-0 as an int",
            SignPayload::TypedData(
                one_struct(json!([{"name": "x", "type": "int8"}]), json!({"x": 0}))
                    .to_string()
                    .replace("\"x\":0", "\"x\":-0"),
            ),
        ),
        (
            "a float",
            SignPayload::TypedData(
                one_struct(json!([{"name": "x", "type": "uint8"}]), json!({"x": 0}))
                    .to_string()
                    .replace("\"x\":0", "\"x\":1.0"),
            ),
        ),
        ("a short address", s("address", json!("0x00000000000000000000000000000000000000"))),
        ("bytes2 of 3 bytes", s("bytes2", json!("0x010203"))),
        ("a byte of 256", s("bytes", json!([1, 256]))),
        ("a fixed array of the wrong length", s("uint8[2]", json!([1, 2, 3]))),
        ("an undeclared bare uint", s("uint", json!(1))),
        ("uint7", s("uint7", json!(1))),
        (
            "a lone surrogate",
            SignPayload::TypedData(
                one_struct(json!([{"name": "x", "type": "string"}]), json!({"x": "?"}))
                    .to_string()
                    .replace("\"?\"", "\"\\ud800\""),
            ),
        ),
        ("a missing field", td(missing)),
        ("primaryType EIP712Domain", td(domain_primary)),
        ("a cycle", td(cycle)),
        ("a recursive struct", td(recursive)),
        ("too large", SignPayload::TypedData(format!("{}{}", permit_doc(), " ".repeat(64 * 1024)))),
        ("userop v0.8 with an EIP-7702 initCode", SignPayload::UserOperation(v08_7702)),
        ("userop with factory and init_code", SignPayload::UserOperation(both)),
        ("userop with paymaster gas and no paymaster", SignPayload::UserOperation(stray_paymaster_gas)),
    ]
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
    let s = m.status(T0 + 5, None);
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
        session: Some(Box::new(session_status(session))),
        aggregate: vec![],
        receipt: None,
    };
    let cbor_of = |s: &Status| {
        let mut bare = s.clone();
        bare.set_receipt(None);
        alloy_primitives::hex::encode_prefixed(bridle_common::frame::to_cbor(&bare).unwrap())
    };
    // The enclave binds the receipt's nonce to the session asked about.
    let bound = receipt::status_nonce(nonce, Some(session));
    receipt::attach(&mut status, enclave, 1_800_000_005, bound, signer(&k)).unwrap();
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
    // The host nulls out signed values (a reset time; the held request itself).
    let mut nulled = reply.clone();
    nulled["session"]["caps"][0]["resets_at"] = Value::Null;
    let mut no_request = reply.clone();
    no_request["session"]["pending"][0]["payload"] = Value::Null;
    // A hash written with its leading zeros dropped is not the signed bytes.
    let mut short_hash = reply.clone();
    short_hash["session"]["policy_hash"] = json!("0x1234");

    let case = |r: &Value, n: B256, s: Address| json!({"op": "status", "reply": r, "identity": enclave, "nonce": n, "session": s});
    let r = node(&[
        case(&reply, nonce, session),
        case(&spent, nonce, session),
        case(&swapped, nonce, session),
        case(&reencoded, nonce, session),
        case(&no_bytes, nonce, session),
        case(&reply, B256::repeat_byte(1), session),
        // The page asked about another session; the host answers with this one's status.
        case(&reply, nonce, Address::repeat_byte(0x77)),
        case(&nulled, nonce, session),
        case(&no_request, nonce, session),
        case(&short_hash, nonce, session),
    ]);
    assert_eq!(r[0]["ok"], true, "the enclave's status verifies: {}", r[0]);
    let err = |i: usize| r[i]["error"].as_str().unwrap_or_default().to_string();
    assert!(err(1).contains("status.session.caps[0].spent"), "{}", r[1]);
    assert!(err(2).contains("status.session.pending[0].payload.transaction.eip1559.data"), "{}", r[2]);
    assert!(err(3).contains("not the trusted enclave"), "{}", r[3]);
    assert!(err(4).contains("did not relay the signed status bytes"), "{}", r[4]);
    assert!(err(5).contains("replayed"), "{}", r[5]);
    assert!(err(6).contains("another session"), "{}", r[6]);
    assert!(err(7).contains("status.session.caps[0].resets_at"), "{}", r[7]);
    assert!(err(8).contains("status.session.pending[0].payload"), "{}", r[8]);
    assert!(err(9).contains("status.session.policy_hash"), "{}", r[9]);
}

/// Generated typed data (random structs, types, notations, some values out of range) hashed
/// by the enclave's code and by the page's: the same digest, or both refuse.
#[test]
fn generated_typed_data_hashes_alike_in_the_browser() {
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
            &xs[self.below(xs.len() as u64) as usize]
        }
    }
    fn value(rng: &mut Rng, base: &str, structs: &[(String, Vec<(String, String)>)]) -> Value {
        if let Some((_, fields)) = structs.iter().find(|(n, _)| n == base) {
            let mut m = serde_json::Map::new();
            for (name, ty) in fields {
                if rng.below(60) != 0 {
                    m.insert(name.clone(), typed_value(rng, ty, structs));
                }
            }
            return Value::Object(m);
        }
        let big = |rng: &mut Rng, bits: u32| {
            let mut v = U256::ZERO;
            for _ in 0..4 {
                v = v << 64 | U256::from(rng.next());
            }
            if bits < 256 {
                v &= (U256::from(1) << bits) - U256::from(1);
            }
            v
        };
        if let Some(bits) = base.strip_prefix("uint").and_then(|b| b.parse::<u32>().ok()) {
            let over = u32::from(rng.below(20) == 0);
            let mut v = big(rng, bits + over);
            if rng.below(3) == 0 {
                v = U256::from(rng.below(1000));
            }
            return match rng.below(5) {
                0 if v <= U256::from(u64::MAX) => json!(v.to::<u64>()),
                1 => json!(format!("{v:#x}")),
                2 => json!(format!("{v}")),
                3 => json!(v),
                _ => json!(format!("{v}")),
            };
        }
        if let Some(bits) = base.strip_prefix("int").and_then(|b| b.parse::<u32>().ok()) {
            let shift = if rng.below(20) == 0 { bits } else { bits - 1 };
            let mut v = big(rng, shift);
            if rng.below(3) == 0 {
                v = U256::from(rng.below(1000));
            }
            let neg = rng.below(2) == 0;
            let dec = if neg { format!("-{v}") } else { format!("{v}") };
            return match rng.below(4) {
                0 if v <= U256::from(i64::MAX as u64) => {
                    let x = v.to::<u64>() as i64;
                    json!(if neg { -x } else { x })
                }
                1 => json!(format!("{}{v:#x}", if neg { "-" } else { "" })),
                _ => json!(dec),
            };
        }
        if let Some(n) = base.strip_prefix("bytes").and_then(|b| b.parse::<usize>().ok()) {
            let len = if rng.below(20) == 0 { n + 1 } else { n };
            let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            return json!(format!("0x{}", hex::encode(b)));
        }
        match base {
            "address" => json!(Address::from_word(B256::from(big(rng, 256)))),
            "bool" => rng.pick(&[json!(true), json!(false), json!("true"), json!("false")]).clone(),
            "string" => json!(*rng.pick(&["", "a", "héllo ✓", "🦀\n\"", "x y z"])),
            "bytes" => {
                let b: Vec<u8> = (0..rng.below(70)).map(|_| rng.next() as u8).collect();
                if rng.below(3) == 0 {
                    json!(b)
                } else {
                    json!(format!("0x{}", hex::encode(b)))
                }
            }
            _ => unreachable!("{base}"),
        }
    }
    fn typed_value(rng: &mut Rng, ty: &str, structs: &[(String, Vec<(String, String)>)]) -> Value {
        if let Some(open) = ty.rfind('[') {
            let inner = &ty[..open];
            let size = ty[open + 1..ty.len() - 1].parse::<u64>().ok();
            let mut n = size.unwrap_or_else(|| rng.below(4));
            if size.is_some() && rng.below(30) == 0 {
                n += 1;
            }
            return Value::Array((0..n).map(|_| typed_value(rng, inner, structs)).collect());
        }
        value(rng, ty, structs)
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let atomics = [
        "uint8", "uint16", "uint48", "uint64", "uint160", "uint256", "int8", "int24", "int64", "int128", "int256",
        "address", "bool", "string", "bytes", "bytes1", "bytes4", "bytes20", "bytes32",
    ];
    let mut cases = Vec::new();
    let mut payloads = Vec::new();
    for _ in 0..300 {
        let count = 1 + rng.below(4) as usize;
        let names: Vec<String> =
            (0..count).map(|i| format!("{}{i}", rng.pick(&["S", "Order", "A", "a_", "T$"]))).collect();
        let mut structs: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let fields = (0..1 + rng.below(5))
                .map(|k| {
                    let base = if i + 1 < count && rng.below(3) == 0 {
                        names[i + 1 + rng.below((count - i - 1) as u64) as usize].clone()
                    } else {
                        rng.pick(&atomics).to_string()
                    };
                    let dims: String = (0..rng.below(3))
                        .map(|_| if rng.below(2) == 0 { "[]".to_string() } else { format!("[{}]", 1 + rng.below(3)) })
                        .collect();
                    (format!("f{k}"), format!("{base}{dims}"))
                })
                .collect();
            structs.push((name.clone(), fields));
        }
        let types: serde_json::Map<String, Value> = structs
            .iter()
            .map(|(n, fs)| {
                (n.clone(), json!(fs.iter().map(|(f, t)| json!({"name": f, "type": t})).collect::<Vec<_>>()))
            })
            .collect();
        let mut domain = serde_json::Map::new();
        if rng.below(2) == 0 {
            domain.insert("name".into(), json!("Gen"));
        }
        if rng.below(2) == 0 {
            domain.insert("version".into(), json!("7"));
        }
        if rng.below(2) == 0 {
            domain.insert(
                "chainId".into(),
                rng.pick(&[json!(1), json!("0x2105"), json!("8453"), json!(u64::MAX)]).clone(),
            );
        }
        if rng.below(2) == 0 {
            domain.insert("verifyingContract".into(), json!(Address::repeat_byte(rng.next() as u8)));
        }
        if rng.below(4) == 0 {
            domain.insert("salt".into(), json!(B256::repeat_byte(rng.next() as u8)));
        }
        let doc = json!({
            "types": types, "primaryType": names[0], "domain": domain,
            "message": value(&mut rng, &names[0], &structs),
        });
        let p = SignPayload::TypedData(doc.to_string());
        cases.push(json!({"op": "payload", "payload": p}));
        payloads.push(p);
    }
    let (mut signed, mut refused) = (0, 0);
    for (i, (p, x)) in payloads.iter().zip(node(&cases)).enumerate() {
        match bridle_common::payload::stamp_digest(p) {
            Ok(d) => {
                signed += 1;
                assert_eq!(x["digest"], json!(d), "case {i}: {p:?}");
            }
            Err(e) => {
                refused += 1;
                assert_eq!(x["digest"], Value::Null, "case {i} is refused by the enclave ({e}): {p:?}");
            }
        }
    }
    println!("{signed} hashed alike, {refused} refused by both");
    assert!(signed > 100 && refused > 20, "{signed} hashed, {refused} refused");
}

/// A review of 2026-12-04: the description of typed data stopped at 200 lines while
/// Approve stayed offered, so a Permit2 batch of 41 details hid its last detail and its
/// spender; and a session of 130 000 signatures made the spend chart throw (`Math.min` of
/// too many arguments), hiding the held requests and Deny.
#[test]
fn long_requests_are_described_whole_and_many_signatures_still_draw() {
    let spender = "0x1111111111111111111111111111111111111111";
    let details: Vec<Value> = (0..41u64)
        .map(|i| json!({"token": format!("0x{:040x}", i + 1), "amount": (1000 + i).to_string(), "expiration": "1900000000", "nonce": i.to_string()}))
        .collect();
    let doc = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "PermitBatch": [{"name": "details", "type": "PermitDetails[]"}, {"name": "spender", "type": "address"}, {"name": "sigDeadline", "type": "uint256"}],
            "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"}, {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]
        },
        "primaryType": "PermitBatch",
        "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3"},
        "message": {"details": details, "spender": spender, "sigDeadline": "1900000000"}
    });
    let payload = SignPayload::TypedData(doc.to_string());
    let r = &node(&[json!({"op": "payload", "payload": payload})])[0];
    assert_eq!(b256(&r["digest"]), bridle_common::payload::stamp_digest(&payload).unwrap(), "{r}");
    let lines: Vec<String> =
        r["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_lowercase()).collect();
    assert!(lines.iter().any(|l| l.contains("spender") && l.contains(spender)), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("1040")), "the last detail's amount: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains("more line")), "{lines:?}");

    let r = &node(&[json!({"op": "chart", "ticks": 200_000})])[0];
    assert_eq!(r["ok"], json!(true), "{r}");
    assert!(r["marks"].as_u64().unwrap() < 1000, "one tick mark per column at most: {r}");
}

#[test]
fn a_hosts_reply_is_read_only_up_to_its_bound() {
    // The page reads every reply of the untrusted host through `readBounded`: one over the
    // bound is refused — by its declared length before a byte is read, or as it streams,
    // endless or not — and one within it is read whole.
    let mib = 1u64 << 20;
    let cases = [
        json!({"op": "read", "size": mib, "declared": null, "max": mib}),
        json!({"op": "read", "size": mib + 1, "declared": null, "max": mib}),
        json!({"op": "read", "size": null, "declared": null, "max": mib}),
        json!({"op": "read", "size": null, "declared": 2 * mib, "max": mib}),
        json!({"op": "read", "size": 10, "declared": 10, "max": mib}),
    ];
    let out = node(&cases);
    assert_eq!(out[0]["ok"], true, "{}", out[0]);
    assert_eq!(out[0]["bytes"], mib);
    assert_eq!(out[0]["length"], mib);
    for (i, why) in [(1, "one byte over"), (2, "endless"), (3, "declared over")] {
        assert_eq!(out[i]["ok"], false, "{why}: {}", out[i]);
        assert!(out[i]["error"].as_str().unwrap().contains("not read"), "{why}: {}", out[i]);
        // Stopped at the bound: at most one more chunk (64 KiB) than it allows was asked for.
        assert!(out[i]["sent"].as_u64().unwrap() <= mib + 2 * (64 << 10), "{why}: {}", out[i]);
    }
    assert!(out[3]["sent"].as_u64().unwrap() <= 2 * (64 << 10), "declared: refused unread: {}", out[3]);
    assert_eq!(out[4]["ok"], true, "{}", out[4]);
    assert_eq!(out[4]["bytes"], 10);
}

/// The page binds an owner receipt's nonce to the owner as the enclave does
/// (`receipt::owner_nonce`): another owner's message with the same nonce gets another word.
#[test]
fn the_owner_receipt_word_is_the_enclaves() {
    let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
    let cases: Vec<Value> = [(a, 1u64), (a, 1_796_037_142_493), (b, 1_796_037_142_493), (b, u64::MAX)]
        .iter()
        .map(|(o, n)| json!({"op": "owner_nonce", "owner": o, "nonce": n.to_string()}))
        .collect();
    let r = node(&cases);
    for (i, (o, n)) in [(a, 1u64), (a, 1_796_037_142_493), (b, 1_796_037_142_493), (b, u64::MAX)].iter().enumerate() {
        assert_eq!(b256(&r[i]["word"]), receipt::owner_nonce(*o, *n), "{o} {n}");
    }
    assert_ne!(b256(&r[1]["word"]), b256(&r[2]["word"]));
}

/// The console's grant, sent and answered with a refusal the enclave never signed: the page
/// says the session may exist, as `bridle owner grant` does (a review of 2026-12-06). A
/// grant that failed before it was sent says nothing of the kind.
#[test]
fn a_grant_sent_and_unanswered_says_the_session_may_exist() {
    let (_, identity) = key(7);
    let agent = k256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let agent_pk = format!("0x{}", hex::encode(agent.verifying_key().to_encoded_point(true).as_bytes()));
    let case = |agent_public_key: &str| {
        json!({
            "op": "grant", "owner_key": format!("0x{}", "11".repeat(32)), "identity": identity,
            "agent_public_key": agent_public_key, "canonical": r#"{"name":"x","valid_until":1}"#,
            "status": 500, "reply": {"error": {"code": "internal", "message": "try again"}},
        })
    };
    let out = node(&[case(&agent_pk), case("0xzz")]);
    assert_eq!(out[0]["ok"], false, "{}", out[0]);
    assert_eq!(out[0]["sent"], 1, "the grant reached the host: {}", out[0]);
    let e = out[0]["error"].as_str().unwrap();
    assert!(e.starts_with("try again — ") && e.contains("whether the enclave created the session is unknown"), "{e}");
    assert_eq!((out[1]["ok"].clone(), out[1]["sent"].clone()), (json!(false), json!(0)), "{}", out[1]);
    assert!(!out[1]["error"].as_str().unwrap().contains("is unknown"), "{}", out[1]);
}
