//! `conformance = "AG-212"` (CONFORMANCE.md): a policy that says it conforms is refused
//! unless it binds every MUST Bridle otherwise leaves to the owner's policy — each missing
//! setting refused `invalid_policy`, its rule `conformance.<what>`, its reason naming the
//! clause — and a conforming one compiles and decides as without the claim. A policy that
//! claims nothing hashes as before.

use bridle_common::error::ErrorCode;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::CompiledPolicy;

const T0: u64 = 1_800_000_000;

/// A policy that conforms: a router's swap and USDC's transfer and approve, approvals just
/// in time through the smart account, an exposure ceiling, daily limits, a trip-wire.
const CONFORMING: &str = include_str!("conformance_profile.toml");

fn compile(text: &str) -> Result<CompiledPolicy, bridle_common::error::Denial> {
    CompiledPolicy::compile(resolve_text(text, T0)?)
}

/// `text` with `from` replaced by `to` (which must occur).
fn with(from: &str, to: &str) -> String {
    assert!(CONFORMING.contains(from), "{from}");
    CONFORMING.replacen(from, to, 1)
}

#[test]
fn a_conforming_policy_compiles_and_claims_nothing_more_than_it_binds() {
    let p = compile(CONFORMING).unwrap_or_else(|d| panic!("{d}"));
    let explained = bridle_common::policy::explain::explain(&p);
    assert!(explained.contains("conformance: AG-212 — checked"), "{explained}");
    // The same policy without the claim compiles too, and hashes otherwise.
    let plain = compile(&with("conformance = \"AG-212\"\n", "")).unwrap();
    assert_ne!(plain.doc.hash(), p.doc.hash());
    assert!(plain.doc.conformance.is_none());
    let json = serde_json::to_string(&plain.doc).unwrap();
    assert!(!json.contains("conformance"), "a policy claiming nothing serializes as before: {json}");
}

#[test]
fn each_missing_setting_is_refused_naming_its_clause() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("jit_only = true\n", "", "conformance.approvals.jit_only", "AG-212 4.1"),
        (", token_arg = \"tokenIn\"", "", "conformance.approvals.jit[0]", "AG-212 4.1"),
        ("jit_only = true\n", "jit_only = true\nlifetime = \"2d\"\n", "conformance.approvals.lifetime", "AG-212 4.2"),
        ("exposure_ceiling = \"20000 USD\"\n", "", "conformance.exposure_ceiling", "AG-212 4.4"),
        ("target = \"USDC\"", "target = \"*\"", "conformance.calls[0].target", "AG-212 4.5"),
        (
            "\"swap(address,uint256,uint256)\"]",
            "\"swap(address,uint256,uint256)\", \"*\"]",
            "conformance.calls[1].functions[1]",
            "AG-212 4.5",
        ),
        ("max_value_per_call = \"0 ETH\"\n", "", "conformance.max_value_per_call", "AG-212 4.5"),
        ("[[limits]]\nmax = \"0.05 ETH\"\nper = \"day\"\n", "", "conformance.limits", "AG-212 4.5"),
        ("per = \"day\"", "per = \"hour\"", "conformance.limits", "AG-212 4.5"),
        (
            "max = \"0.05 ETH\"\nper = \"day\"",
            "max = \"0.05 ETH\"\nper = \"minute\"",
            "conformance.limits",
            "AG-212 4.5",
        ),
        ("max_fee_per_gas = \"100 gwei\"\n", "", "conformance.gas", "AG-212 4.5"),
        ("max_gas_limit = 1000000\n", "", "conformance.gas", "AG-212 4.5"),
        ("count_in_native = true\n", "", "conformance.gas", "AG-212 4.5"),
        (
            "senders = [\"0x0000000000000000000000000000000000005ca0\"]\n",
            "",
            "conformance.user_operations.unmetered_calls",
            "AG-212 4.5",
        ),
        ("denials = 5, within = \"10m\"", "denials = 21, within = \"10m\"", "conformance.trip_wire", "AG-212 4.6"),
        ("denials = 5, within = \"10m\"", "denials = 5, within = \"59s\"", "conformance.trip_wire", "AG-212 4.6"),
        (
            "valid_for = \"12h\"\n",
            "valid_for = \"2d\"\nmax_duration = \"2d\"\n",
            "conformance.max_duration",
            "AG-212 4.5",
        ),
        ("trip_wire = { denials = 5, within = \"10m\" }\n", "", "conformance.trip_wire", "AG-212 4.6"),
    ];
    for (from, to, rule, clause) in cases {
        let d = match compile(&with(from, to)) {
            Err(d) => d,
            Ok(_) => panic!("{rule}: compiled"),
        };
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::InvalidPolicy, Some(*rule)), "{d}");
        assert!(d.reason.starts_with(clause), "{rule}: {d}");
    }
}

#[test]
fn permits_typed_data_and_unknown_standards_are_refused_and_a_policy_without_approvals_needs_no_ceiling() {
    let permits =
        with("[user_operations]", "[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"1h\"\n[user_operations]");
    match compile(&permits) {
        Err(d) => assert_eq!(d.rule.as_deref(), Some("conformance.permits"), "{d}"),
        Ok(_) => panic!("a permit rule under AG-212 compiled"),
    }
    let typed =
        with("[user_operations]", "[[typed_data]]\nname = \"Snapshot\"\nprimary_type = \"Vote\"\n[user_operations]");
    match compile(&typed) {
        Err(d) => assert_eq!(d.rule.as_deref(), Some("conformance.typed_data"), "{d}"),
        Ok(_) => panic!("a typed-data rule under AG-212 compiled"),
    }
    let other = compile(&with("\"AG-212\"", "\"AG-213\"")).map(|_| ()).unwrap_err();
    assert_eq!((other.code, other.rule.as_deref()), (ErrorCode::InvalidPolicy, Some("conformance")), "{other}");
    // Transfers only: no approval, so no ceiling, jit or lifetime is asked.
    let start = CONFORMING.find("[approvals]").unwrap();
    let transfers = CONFORMING[..start]
        .replace("exposure_ceiling = \"20000 USD\"\n", "")
        .replace("\"approve(address,uint256)\", ", "");
    compile(&transfers).unwrap_or_else(|d| panic!("{d}"));
}
