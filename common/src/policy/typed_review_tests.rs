//! A review of the typed-data and message front end (2026-12-05): a rule matched by a
//! domain name alone, typed data carrying a call, control characters in a SIWE message,
//! and struct names alloy and EIP-712 order differently.

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
/// the signed request as its signer: a rule naming a domain's name alone matches only
/// domains that name no verifying contract (a forwarder's always names itself).
#[test]
fn a_rule_without_a_verifying_contract_matches_only_domains_without_one() {
    const FORWARDER: Address = address!("00000000000000000000000000000000000f0a0d");
    let login = |vc: Option<Address>| {
        let mut domain = json!({"name": "Snapshot", "version": "0.1.4", "chainId": 1});
        if let Some(a) = vc {
            domain["verifyingContract"] = json!(a);
        }
        typed(
            domain,
            json!({"Vote": [{"name": "from", "type": "address"}, {"name": "choice", "type": "uint32"}]}),
            "Vote",
            json!({"from": SESSION, "choice": 1}),
        )
    };
    let rule = "[[typed_data]]\nname = \"Snapshot\"\nprimary_type = \"Vote\"";
    let c = Counters::new();
    // New, and as restored from an earlier build (where it matched any contract).
    for p in [compile_text(rule).unwrap(), restored_text(rule)] {
        assert_eq!(decide(&p, &c, login(None)).unwrap(), Charges::at(None, 1));
        let d = decide(&p, &c, login(Some(FORWARDER))).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TypedDataNotAllowed, Some("typed_data")), "{d}");
        assert!(d.reason.contains("no typed_data rule"), "{d}");
    }
    // zkSync's native transactions are typed data in a domain without a verifying contract.
    let p = compile_text("[[typed_data]]\nname = \"zkSync\"\nprimary_type = \"Transaction\"").unwrap();
    let tx = typed(
        json!({"name": "zkSync", "version": "2", "chainId": 1}),
        json!({"Transaction": [{"name": "txType", "type": "uint256"}, {"name": "to", "type": "uint256"}]}),
        "Transaction",
        json!({"txType": 113, "to": 5}),
    );
    let d = decide(&p, &c, tx).unwrap_err();
    assert!(d.code == ErrorCode::TypedDataNotAllowed && d.reason.contains("zkSync"), "{d}");
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
    // A rule an earlier build accepted for a later EIP-3009 draft restores (a node must
    // install every snapshot), and signing refuses what it names.
    let p = restored_text(&format!(
        "[[typed_data]]\nverifying_contract = \"{FORWARDER}\"\nprimary_type = \"ApproveWithAuthorization\""
    ));
    let d = decide(&p, &c, forward_request(FORWARDER, "Forwarder", "ApproveWithAuthorization")).unwrap_err();
    assert_eq!(d.code, ErrorCode::TypedDataNotAllowed, "{d}");
    assert!(d.reason.contains("bounded permit types"), "{d}");
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
/// name: no struct named with a `$` is signed. It still parses, so a request held in a
/// snapshot of an earlier build still prepares when the snapshot is restored.
#[test]
fn a_struct_named_with_a_dollar_sign_is_never_signed() {
    let td = json!({
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}],
            "Root": [{"name": "a", "type": "A"}, {"name": "b", "type": "A$B"}],
            "A": [{"name": "x", "type": "uint256"}], "A$B": [{"name": "y", "type": "uint256"}]},
        "primaryType": "Root",
        "domain": {"name": "Seaport"},
        "message": {"a": {"x": 1}, "b": {"y": 2}}
    });
    assert!(crate::typed::parse(&td.to_string()).is_ok(), "it parses");
    let p = compile_text("[[typed_data]]\nname = \"Seaport\"\nprimary_type = \"Root\"").unwrap();
    let d = decide(&p, &Counters::new(), SignPayload::TypedData(td.to_string())).unwrap_err();
    assert_eq!(d.code, ErrorCode::TypedDataNotAllowed, "{d}");
    assert!(d.reason.contains('$'), "{d}");
    // Without the `$` the same rule signs it.
    let plain = td.to_string().replace("A$B", "AB");
    assert_eq!(decide(&p, &Counters::new(), SignPayload::TypedData(plain)).unwrap(), Charges::at(None, 1));
}
