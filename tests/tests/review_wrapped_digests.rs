//! The attacker's side of the refusals of 2026-12-05 (RULES.md §5, SECURITY.md), against
//! the real `bridle-enclave` and `bridle-host` over their socket and HTTP:
//!
//! * typed data that wraps another signature's digest — an account's wrapper (Safe's
//!   `SafeMessage`, ERC-7739's `TypedDataSign`, …) or one `bytes`/`bytes32` value — is never
//!   signed, even under a rule that allows its primary type;
//! * a new policy naming such a wrapper, an account the session signs for or a call carrier
//!   (`ForwardRequest`) is refused, and a rule naming a domain's name alone matches no
//!   domain that names a verifying contract (an ERC-2771 forwarder's always does);
//! * a `prefix` message rule signs printable text only, never a digest behind the prefix;
//! * a Permit2 allowance's end frees the exposure ceiling only on a chain stamped by slots:
//!   on Arbitrum, where the sequencer may stamp blocks far in the past, it keeps counting.
//!
//! What is signed is checked with eth-account; every refusal leaves the session's use count
//! where it was.

use alloy_primitives::{address, keccak256, Address, Bytes, U256};
use bridle_common::protocol::*;
use bridle_model::Req;
use bridle_tests::differential::payload;
use bridle_tests::review::World;
use bridle_tests::typed::{eth_account_message, eth_account_typed, typed};
use bridle_tests::*;
use serde_json::{json, Value};

/// A smart account the session signs user operations for.
const ACCOUNT: Address = address!("00000000000000000000000000000000000acc01");
/// Some application's contract.
const APP: Address = address!("0000000000000000000000000000000000000a99");
const ENTRY_POINT_V07: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const PERMIT2: Address = bridle_common::typed::PERMIT2;

/// An owner who allows any `Order` of the application's contract, a `Login` in the domain
/// named `App Login`, a login prefix, and user operations from `ACCOUNT`: rules that look
/// harmless on their own.
fn benign_policy() -> String {
    format!(
        r#"
name = "review-wrapped-digests"
chains = [31337]
valid_for = "1h"
[[typed_data]]
verifying_contract = "{APP}"
primary_type = "Order"
[[typed_data]]
name = "App Login"
primary_type = "Login"
[[messages]]
prefix = "Login to app.example:"
[user_operations]
entry_points = ["{ENTRY_POINT_V07}"]
senders = ["{ACCOUNT}"]
"#
    )
}

fn order(verifying_contract: Address, fields: Value, message: Value) -> Value {
    typed(
        json!({"name": "App", "version": "1", "chainId": 31337, "verifyingContract": verifying_contract}),
        json!({"Order": fields}),
        "Order",
        message,
    )
}

/// The EIP-712 digest of a Permit2 `PermitTransferFrom` of 1 000 000 USDC of whoever
/// accepts the session's signature as its own: what the attacker wants signed.
fn stolen_digest() -> String {
    format!("0x{}", hex::encode(keccak256(b"a Permit2 PermitTransferFrom digest")))
}

async fn sign_typed(w: &World, g: &Granted, td: &Value) -> (u16, Value) {
    w.stack.sign_payload(g, SignPayload::TypedData(td.to_string())).await
}

#[tokio::test]
async fn a_harmless_typed_data_rule_signs_no_wrapped_digest() {
    let w = World::start(&benign_policy());
    let g = w.grant().await;
    let digest = stolen_digest();

    // What the rule is for: an order of two values, in an application's domain.
    let fields = json!([{"name": "maker", "type": "address"}, {"name": "amount", "type": "uint256"}]);
    let good = order(APP, fields.clone(), json!({"maker": g.session, "amount": "5"}));
    let (c, v) = sign_typed(&w, &g, &good).await;
    assert_eq!(c, 200, "{v}");
    let (theirs, signer) = eth_account_typed(&good, v["signature"].as_str().unwrap());
    assert_eq!((v["digest"].as_str().unwrap().parse::<alloy_primitives::B256>().unwrap(), signer), (theirs, g.session));

    let refused: Vec<(&str, Value)> = vec![
        // An `Order` that is one bytes32: the digest of a permit the account would accept.
        ("Order(bytes32)", order(APP, json!([{"name": "hash", "type": "bytes32"}]), json!({"hash": digest}))),
        // One `bytes`: Safe's shape under another name.
        ("Order(bytes)", order(APP, json!([{"name": "message", "type": "bytes"}]), json!({"message": digest}))),
        // Safe's own wrapper, in the Safe's domain.
        (
            "SafeMessage",
            typed(
                json!({"chainId": 31337, "verifyingContract": ACCOUNT}),
                json!({"SafeMessage": [{"name": "message", "type": "bytes"}]}),
                "SafeMessage",
                json!({"message": digest}),
            ),
        ),
        // ERC-7739 nested typed data: in USDC's domain, an EIP-2612 permit of the account's
        // USDC as `contents` becomes the account's signature over that permit.
        (
            "TypedDataSign",
            typed(
                json!({"name": "USD Coin", "version": "2", "chainId": 31337, "verifyingContract": USDC}),
                json!({"TypedDataSign": [{"name": "contents", "type": "Permit"}, {"name": "name", "type": "string"},
                        {"name": "version", "type": "string"}, {"name": "chainId", "type": "uint256"},
                        {"name": "verifyingContract", "type": "address"}, {"name": "salt", "type": "bytes32"}],
                    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]}),
                "TypedDataSign",
                json!({"contents": {"owner": ACCOUNT, "spender": APP, "value": "1000000000000", "nonce": 0,
                        "deadline": now() + 600},
                    "name": "Kernel", "version": "0.3.1", "chainId": 31337, "verifyingContract": ACCOUNT,
                    "salt": format!("0x{}", "00".repeat(32))}),
            ),
        ),
    ];
    for (what, td) in &refused {
        let (c, v) = sign_typed(&w, &g, td).await;
        assert_eq!((c, code(&v)), (403, "typed_data_not_allowed"), "{what}: {v}");
        assert!(v.get("signature").is_none(), "{what}: {v}");
    }
    // A login in a domain that names no contract, as the rule does; the same login verified
    // by a forwarder (which lets anyone register the name and type) matches no rule.
    let login = |vc: Option<Address>| {
        let mut domain = json!({"name": "App Login", "version": "1", "chainId": 31337});
        if let Some(a) = vc {
            domain["verifyingContract"] = json!(a);
        }
        typed(domain, json!({"Login": [{"name": "who", "type": "address"}]}), "Login", json!({"who": g.session}))
    };
    let (c, v) = sign_typed(&w, &g, &login(None)).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(eth_account_typed(&login(None), v["signature"].as_str().unwrap()).1, g.session);
    let (c, v) = sign_typed(&w, &g, &login(Some(APP))).await;
    assert_eq!((c, code(&v)), (403, "typed_data_not_allowed"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().contains("no typed_data rule"), "{v}");
    // The same over JSON-RPC, as a wallet library sends it.
    let (_, td) = &refused[0];
    let payload = SignPayload::TypedData(td.to_string());
    let v = w.stack.rpc_as(&g, &payload, "eth_signTypedData_v4", json!([g.session, td.to_string()])).await;
    assert_eq!(v["error"]["data"]["code"], "typed_data_not_allowed", "{v}");
    assert_eq!(w.truth(&g).uses, 2, "only the harmless order and login were signed");
}

#[tokio::test]
async fn new_policies_naming_a_wrapper_or_a_listed_account_are_refused() {
    let w = World::start(&benign_policy());
    let with_rule = |rule: &str| format!("{}\n[[typed_data]]\n{rule}\n", benign_policy());
    for (what, text, why) in [
        (
            "SafeMessage",
            with_rule(&format!("verifying_contract = \"{APP}\"\nprimary_type = \"SafeMessage\"")),
            "wrapper",
        ),
        (
            "TypedDataSign",
            with_rule(&format!("verifying_contract = \"{APP}\"\nprimary_type = \"TypedDataSign\"")),
            "wrapper",
        ),
        (
            "the listed sender",
            with_rule(&format!("verifying_contract = \"{ACCOUNT}\"\nprimary_type = \"Order\"")),
            "an account the session signs for",
        ),
        (
            "a forwarder's request",
            with_rule(&format!("verifying_contract = \"{APP}\"\nprimary_type = \"ForwardRequest\"")),
            "carries a call",
        ),
    ] {
        let err = w.stack.grant(&w.owner, &w.agent, &policy(&text)).await.err().unwrap_or_else(|| panic!("{what}"));
        assert_eq!((err.0, code(&err.1)), (400, "invalid_policy"), "{what}: {:?}", err.1);
        assert!(err.1["error"]["reason"].as_str().unwrap_or("").contains(why), "{what}: {:?}", err.1);
    }
    assert!(w.stack.grant(&w.owner, &w.agent, &policy(&benign_policy())).await.is_ok());
}

#[tokio::test]
async fn a_prefix_rule_signs_printable_text_and_no_digest_behind_it() {
    let w = World::start(&benign_policy());
    let g = w.grant().await;
    let prefix = b"Login to app.example:".to_vec();
    let text = [prefix.clone(), b" session 7\n\tissued now\r\n".to_vec()].concat();
    let (c, v) = w.stack.sign_payload(&g, SignPayload::Message(Bytes::from(text.clone()))).await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(eth_account_message(&text, v["signature"].as_str().unwrap()), g.session);

    let digest = keccak256(b"a permit's digest");
    let with = |tail: &[u8]| [prefix.clone(), tail.to_vec()].concat();
    for (what, msg) in [
        ("a digest behind the prefix", with(digest.as_slice())),
        ("a NUL and a digest", with(&[&[0u8][..], digest.as_slice()].concat())),
        ("an escape sequence", with(b" \x1b[2K")),
        ("DEL", with(b" \x7f")),
        ("a C1 control", with("\u{85}".as_bytes())),
        ("invalid UTF-8", with(&[0xff, 0xfe])),
    ] {
        let (c, v) = w.stack.sign_payload(&g, SignPayload::Message(Bytes::from(msg))).await;
        assert_eq!((c, code(&v)), (403, "message_not_allowed"), "{what}: {v}");
    }
    assert_eq!(w.truth(&g).uses, 1);
}

/// 40 USDC to `spender` through the canonical Permit2, until `expiration`.
fn permit_single(chain_id: u64, spender: Address, expiration: u64, sig_deadline: u64) -> SignPayload {
    payload(&Req::Permit2 {
        chain_id,
        contract: PERMIT2,
        spender,
        details: vec![(USDC, U256::from(40_000_000u64), expiration)],
        sig_deadline,
        batch: false,
    })
}

#[tokio::test]
async fn a_permit2_end_frees_the_ceiling_on_ethereum_and_not_on_arbitrum() {
    let (r1, r2) = (Address::with_last_byte(0x51), Address::with_last_byte(0x52));
    for (chain, freed) in [(1u64, true), (42_161, false)] {
        let text = format!(
            r#"
name = "review-permit2-ends"
chains = [{chain}]
valid_for = "24h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "60 USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[approvals]
spenders = ["{r1}", "{r2}"]
max = ["50 USDC"]
[[permits]]
kind = "permit2"
max_deadline = "30m"
"#
        );
        let w = World::start(&text);
        let g = w.grant().await;
        let t = now();
        let (c, v) = w.stack.sign_payload(&g, permit_single(chain, r1, t + 600, t + 300)).await;
        assert_eq!(c, 200, "chain {chain}: {v}");
        // 40 + 40 USD is over the ceiling while the first may be used.
        let (c, v) = w.stack.sign_payload(&g, permit_single(chain, r2, t + 600, t + 300)).await;
        assert_eq!((c, code(&v)), (403, "exposure_ceiling"), "chain {chain}: {v}");

        // An hour later the first allowance has ended (its expiration was ten minutes out).
        let later = 3_600;
        w.stack.enclave.set_clock_offset(later);
        let t = t + later as u64;
        let (c, v) = w.stack.sign_payload_at(&g, permit_single(chain, r2, t + 600, t + 300), t).await;
        if freed {
            assert_eq!(c, 200, "chain {chain}: an ended Permit2 allowance counts for nothing on a slotted chain: {v}");
        } else {
            // An Arbitrum block may be stamped before the expiration long after it: the first
            // allowance may still be used there, so it still counts.
            assert_eq!((c, code(&v)), (403, "exposure_ceiling"), "chain {chain}: {v}");
        }
        let list = w.stack.allowances(&g).await;
        let first = list["allowances"]
            .as_array()
            .unwrap_or_else(|| panic!("{list}"))
            .iter()
            .find(|a| a["spender"].as_str().unwrap().parse::<Address>().unwrap() == r1)
            .cloned();
        let counted =
            first.as_ref().is_some_and(|a| !serde_json::from_value::<U256>(a["amount"].clone()).unwrap().is_zero());
        assert_eq!(counted, !freed, "chain {chain}: {list}");
        assert_eq!(w.truth(&g).uses, 1 + u64::from(freed), "chain {chain}");
    }
}
