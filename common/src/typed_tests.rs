//! Tests of typed data (`typed.rs`): parsing under bounds, hashing, and the types never signed.

/// A review of 2026-12-06: a number past 64 bits reads as a float, rounded; alloy
/// refuses it, and the refusal says why. A float in a field no type declares still
/// passes, as it did (held requests of earlier builds restore).
#[test]
fn a_rounded_number_is_named_and_an_undeclared_float_still_passes() {
    let doc = |message: &str| {
        format!(
            r#"{{"types":{{"EIP712Domain":[{{"name":"chainId","type":"uint256"}}],"T":[{{"name":"a","type":"uint256"}}]}},"primaryType":"T","domain":{{"chainId":1}},"message":{message}}}"#
        )
    };
    let Err(d) = parse(&doc(r#"{"a":1000000000000000000000001}"#)) else { panic!("a rounded number") };
    assert_eq!(d.code, crate::error::ErrorCode::Malformed, "{d}");
    assert!(d.reason.contains("read as 1e+24") && d.reason.contains("write it as a string"), "{d}");
    parse(&doc(r#"{"a":"1000000000000000000000001"}"#)).expect("as a string");
    parse(&doc(r#"{"a":1,"note":1.5}"#)).expect("a float no type declares");
}
use super::*;
use serde_json::json;

pub fn permit_json(owner: Address, spender: Address, value: &str, deadline: u64) -> serde_json::Value {
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
        "message": {"owner": owner, "spender": spender, "value": value, "nonce": 0, "deadline": deadline}
    })
}

/// A Permit2 `PermitBatch` of `n` details.
fn permit_batch(n: usize) -> serde_json::Value {
    let detail = json!({"token": PERMIT2, "amount": "1000000", "expiration": 1_900_000_000u64, "nonce": 7});
    json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"}, {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}],
            "PermitBatch": [{"name": "details", "type": "PermitDetails[]"}, {"name": "spender", "type": "address"}, {"name": "sigDeadline", "type": "uint256"}]
        },
        "primaryType": "PermitBatch",
        "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
        "message": {"details": vec![detail; n], "spender": PERMIT2, "sigDeadline": "1900000000"}
    })
}

#[test]
fn the_digest_is_alloys_and_the_json_tree_is_not_kept() {
    // The digest is hashed from the message coerced once; alloy's own
    // `eip712_signing_hash` coerces again. Nested structs, arrays of structs, bytes,
    // strings and a string-wrapped document.
    let nested = json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person[]"}, {"name": "contents", "type": "string"}, {"name": "data", "type": "bytes"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1"},
        "message": {
            "from": {"name": "Cow", "wallets": [PERMIT2]},
            "to": [{"name": "Bob", "wallets": []}, {"name": "Alice", "wallets": [PERMIT2, PERMIT2]}],
            "contents": "Hello", "data": "0x0102"
        }
    });
    let permit = permit_json(PERMIT2, PERMIT2, "5", 9);
    for doc in [nested, permit, permit_batch(3)] {
        let text = doc.to_string();
        let alloy: TypedData = serde_json::from_value(doc).unwrap();
        let want = alloy.eip712_signing_hash().unwrap();
        let p = parse(&text).unwrap();
        assert_eq!(p.digest, want);
        assert_eq!(parse(&serde_json::to_string(&text).unwrap()).unwrap().digest, want);
        assert!(p.data.message.is_null());
    }
}

#[test]
fn an_elementary_primary_type_is_never_signed() {
    // alloy's `eip712_signing_hash` refuses it; hashing the coerced value would sign
    // `keccak256(0x1901 ‖ domain ‖ X)` for an X of the agent's choosing.
    let x = format!("0x{}", "ab".repeat(32));
    for (primary, message) in [("bytes32", json!(x)), ("uint256", json!("1")), ("address", json!(PERMIT2))] {
        let doc = json!({
            "types": {"EIP712Domain": [{"name": "name", "type": "string"}]},
            "primaryType": primary, "domain": {"name": "USD Coin"}, "message": message
        });
        assert_eq!(parse(&doc.to_string()).unwrap_err().code, ErrorCode::Malformed, "{primary}");
    }
}

#[test]
fn the_largest_permit_batch_that_fits_in_the_text_bound_is_parsed() {
    // The text bound (64 KiB) comes first: ≈ 600 details. The bounds on objects,
    // values and struct work (crate::bounds) leave them all.
    let text = permit_batch(600).to_string();
    assert!(text.len() <= MAX_TYPED_DATA && permit_batch(610).to_string().len() > MAX_TYPED_DATA);
    let p = parse(&text).unwrap();
    match classify(&p, &[]) {
        TypedClass::Permit(PermitMsg::Permit2Allowance { details, .. }) => assert_eq!(details.len(), 600),
        other => panic!("{other:?}"),
    }
    assert_eq!(parse(&permit_batch(1_100).to_string()).unwrap_err().code, ErrorCode::TooLarge);
}

#[test]
fn permit_digest_matches_the_sol_struct() {
    let (o, s) = (Address::repeat_byte(1), Address::repeat_byte(2));
    let p = parse(&permit_json(o, s, "1000", 99).to_string()).unwrap();
    let want = canonical::Permit {
        owner: o,
        spender: s,
        value: U256::from(1000),
        nonce: U256::ZERO,
        deadline: U256::from(99),
    }
    .eip712_signing_hash(&alloy_sol_types::eip712_domain! {
        name: "USD Coin", version: "2", chain_id: 1,
        verifying_contract: address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"),
    });
    assert_eq!(p.digest, want);
    match classify(&p, &[]) {
        TypedClass::Permit(PermitMsg::Eip2612 { owner, spender, value, deadline, .. }) => {
            assert_eq!((owner, spender, value, deadline), (o, s, U256::from(1000), U256::from(99)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn look_alike_permits_and_owner_envelopes_are_refused() {
    // DAI-style permit: different fields, same primaryType.
    let dai = json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
            "Permit": [{"name": "holder", "type": "address"}, {"name": "spender", "type": "address"},
                {"name": "nonce", "type": "uint256"}, {"name": "expiry", "type": "uint256"},
                {"name": "allowed", "type": "bool"}]},
        "primaryType": "Permit", "domain": {"name": "Dai Stablecoin"},
        "message": {"holder": Address::ZERO, "spender": Address::ZERO, "nonce": 0, "expiry": 0, "allowed": true}
    });
    let p = parse(&dai.to_string()).unwrap();
    assert!(matches!(classify(&p, &[]), TypedClass::Refused(d) if d.code == ErrorCode::TypedDataNotAllowed));

    let owner = crate::owner::OwnerAction {
        action: "create_session".into(),
        enclave: Address::ZERO,
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: 1,
    };
    let p = parse(&owner.typed_data_json().to_string()).unwrap();
    assert_eq!(p.digest, owner.digest());
    assert!(matches!(classify(&p, &[]), TypedClass::Refused(d) if d.code == ErrorCode::TypedDataNotAllowed));

    let auth = json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
            "Authorization": [{"name": "chainId", "type": "uint256"}, {"name": "address", "type": "address"},
                {"name": "nonce", "type": "uint64"}]},
        "primaryType": "Authorization", "domain": {"name": "Wallet"},
        "message": {"chainId": 1, "address": Address::ZERO, "nonce": 0}
    });
    let p = parse(&auth.to_string()).unwrap();
    assert!(matches!(classify(&p, &[]), TypedClass::Refused(d) if d.code == ErrorCode::AuthorizationDenied));
    // The same tuple under another name is still an authorization.
    let renamed = auth.to_string().replace("Authorization", "Delegate");
    let p = parse(&renamed).unwrap();
    assert!(matches!(classify(&p, &[]), TypedClass::Refused(d) if d.code == ErrorCode::AuthorizationDenied));
}

#[test]
fn garbage_never_panics() {
    for s in [
        "",
        "{}",
        "[]",
        "\"{}\"",
        r#"{"types":{},"primaryType":"A","domain":{},"message":{}}"#,
        r#"{"types":{"A":[{"name":"a","type":"A"}]},"primaryType":"A","domain":{},"message":{"a":{}}}"#,
        r#"{"types":{"A":[{"name":"b","type":"B"}],"B":[{"name":"a","type":"A"}]},"primaryType":"A","domain":{},"message":{}}"#,
        r#"{"types":{"A":[{"name":"a","type":"uint256[99999999999]"}]},"primaryType":"A","domain":{},"message":{"a":[]}}"#,
        r#"{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}"#,
    ] {
        let _ = parse(s).map(|p| classify(&p, &[]));
    }
    assert_eq!(parse(&"x".repeat(MAX_TYPED_DATA + 1)).unwrap_err().code, ErrorCode::TooLarge);
}

proptest::proptest! {
    #[test]
    fn parse_and_classify_never_panic(
        ty in "[A-Za-z0-9_\\[\\]]{0,24}",
        name in "[A-Za-z0-9]{0,8}",
        val in proptest::prelude::any::<i64>(),
        junk in ".{0,64}",
    ) {
        let doc = json!({
            "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
                "Permit": [{"name": name.clone(), "type": ty.clone()}],
                "PermitDetails": [{"name": "token", "type": ty}]},
            "primaryType": "Permit", "domain": {"name": name.clone()},
            "message": {name: val, "x": junk.clone()}
        });
        let _ = parse(&doc.to_string()).map(|p| classify(&p, &[PERMIT2]));
        let _ = parse(&junk);
    }
}
