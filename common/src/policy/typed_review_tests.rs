//! A review of the typed-data and message front end (2026-12-05): a rule matched by a
//! domain name alone, typed data carrying a call, a listed token's typed data, control
//! characters in a SIWE message, and struct names alloy and EIP-712 order differently.

use super::*;

fn forward_request(vc: Address, name: &str, primary: &str) -> SignPayload {
    typed(
        json!({"name": name, "version": "1", "chainId": 1, "verifyingContract": vc}),
        json!({primary: [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"}, {"name": "gas", "type": "uint256"},
            {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint48"},
            {"name": "data", "type": "bytes"}]}),
        primary,
        json!({"from": SESSION, "to": USDC, "value": 0, "gas": 200_000, "nonce": 0, "deadline": 0,
            "data": format!("0xa9059cbb{:0>64}{:0>64}", hex::encode(ALICE), "ff")}),
    )
}

/// An OpenGSN forwarder lets anyone register a domain name and a request type, then runs
/// the signed request as its signer: a rule naming a domain alone would reach it.
#[test]
fn a_new_typed_data_rule_names_its_verifying_contract() {
    let Err(d) =
        compile_text("[[typed_data]]\nname = \"Seaport\"\nversion = \"1.6\"\nprimary_type = \"OrderComponents\"")
    else {
        panic!("a rule without a verifying contract accepted")
    };
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::InvalidPolicy, Some("typed_data[0]")), "{d}");
    assert!(d.reason.contains("verifying_contract"), "{d}");
    // A policy an earlier build accepted restores, and its rule decides as before, but never
    // for a listed token's typed data, which could move it.
    let p = restored_text("[[typed_data]]\nname = \"USD Coin\"\nprimary_type = \"Order\"");
    let order = |vc: Address| {
        typed(
            json!({"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": vc}),
            json!({"Order": [{"name": "maker", "type": "address"}, {"name": "amount", "type": "uint256"}]}),
            "Order",
            json!({"maker": SESSION, "amount": "5"}),
        )
    };
    let c = Counters::new();
    assert_eq!(decide(&p, &c, order(SEAPORT)).unwrap(), Charges::at(None, 1));
    let d = decide(&p, &c, order(USDC)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TypedDataNotAllowed, Some("typed_data")), "{d}");
    assert!(d.reason.contains("listed token"), "{d}");
}

#[test]
fn typed_data_carrying_a_call_is_never_signed() {
    const FORWARDER: Address = address!("00000000000000000000000000000000000f0a0d");
    // New policies cannot allow one.
    for primary in ["ForwardRequest", "SafeTx", "MetaTransaction", "SponsoredCallERC2771"] {
        let d = compile_text(&format!(
            "[[typed_data]]\nverifying_contract = \"{FORWARDER}\"\nprimary_type = \"{primary}\""
        ))
        .err()
        .unwrap_or_else(|| panic!("{primary} accepted"));
        assert!(d.code == ErrorCode::InvalidPolicy && d.reason.contains("carries a call"), "{primary}: {d}");
    }
    // Nor EIP-3009's later drafts, which move tokens.
    for primary in ["ApproveWithAuthorization", "IncreaseAllowanceWithAuthorization"] {
        let d = compile_text(&format!(
            "[[typed_data]]\nverifying_contract = \"{FORWARDER}\"\nprimary_type = \"{primary}\""
        ))
        .err()
        .unwrap_or_else(|| panic!("{primary} accepted"));
        assert!(d.code == ErrorCode::InvalidPolicy && d.reason.contains("moves tokens"), "{primary}: {d}");
    }
    // Restored with such a rule (an earlier build), the call is still refused when signed.
    let p = restored_text(&format!(
        "[[typed_data]]\nverifying_contract = \"{FORWARDER}\"\nprimary_type = \"ForwardRequest\"\n[[typed_data]]\nname = \"Seaport\"\nprimary_type = \"SafeTx\""
    ));
    let c = Counters::new();
    for (name, primary) in [("Forwarder", "ForwardRequest"), ("Seaport", "SafeTx")] {
        let d = decide(&p, &c, forward_request(FORWARDER, name, primary)).unwrap_err();
        assert!(d.code == ErrorCode::TypedDataNotAllowed && d.reason.contains("carries a call"), "{primary}: {d}");
    }
    let d = decide(&p, &c, forward_request(FORWARDER, "Forwarder", "ApproveWithAuthorization")).unwrap_err();
    assert_eq!(d.code, ErrorCode::TypedDataNotAllowed, "{d}");
}

#[test]
fn a_siwe_message_is_printable_text_with_line_feeds_only() {
    let p = policy();
    let c = Counters::new();
    let good = siwe("example.com", SESSION, 1);
    assert!(decide(&p, &c, msg(&good)).is_ok());
    for (what, bad) in [
        ("a carriage return", good.replace("\nURI:", "\r\nURI:")),
        ("a tab", good.replace("Sign in", "Sign\tin")),
        ("NUL", good.replace("Sign in", "Sign\u{0}in")),
        ("a line separator", good.replace("Sign in", "Sign in\u{2028}Chain ID: 5")),
        ("a C1 control", good.replace("Sign in", "Sign\u{85}in")),
    ] {
        let d = decide(&p, &c, msg(&bad)).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::MessageNotAllowed, Some("messages[2]")), "{what}: {d}");
        assert!(d.reason.contains("control characters"), "{what}: {d}");
    }
}

/// alloy orders dependent types by their whole encoding (`A$B(` before `A(`), EIP-712 by
/// name: no struct name may hold a `$`.
#[test]
fn a_struct_name_holds_no_dollar_sign() {
    let td = json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
            "Root": [{"name": "a", "type": "A"}, {"name": "b", "type": "A$B"}],
            "A": [{"name": "x", "type": "uint256"}], "A$B": [{"name": "y", "type": "uint256"}]},
        "primaryType": "Root",
        "domain": {"name": "Seaport"},
        "message": {"a": {"x": 1}, "b": {"y": 2}}
    });
    let Err(d) = crate::typed::parse(&td.to_string()) else { panic!("`A$B` accepted") };
    assert_eq!(d.code, ErrorCode::Malformed, "{d}");
    assert!(d.reason.contains("A$B"), "{d}");
}
