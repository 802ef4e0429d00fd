//! `bridle policy from-erc7715` (a review of 2026-12-06): a mapped grant caps the fees the
//! session pays (the grant says nothing of them) and counts them in its native limits, and
//! the report quotes the request's text escaped.

use std::process::Command;

#[test]
fn a_mapped_grant_caps_fees_and_its_report_escapes_the_requests_text() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("req.json");
    std::fs::write(
        &req,
        r#"{"chainId": 1, "expiry": 4102444800, "permissions": [
      {"type": "contract-call", "data": {"address": "0x4444444444444444444444444444444444444444"}},
      {"type": "native-token-periodic", "data": {"periodAmount": "100000000000000000", "periodDuration": 86400,
        "justification": "\u001b[1A\u001b[2K\rnot mapped / approximate: permissions[0] contract-call: mapped exactly"}}]}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bridle"))
        .args(["policy", "from-erc7715"])
        .arg(&req)
        .output()
        .expect("run bridle");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\r'), "{stderr:?}");
    assert!(stderr.contains("\\u{001b}[1A"), "{stderr}");
    for line in ["[gas]", "max_fee_per_gas = \"100 gwei\"", "count_in_native = true", "[[gas.limits]]"] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(stderr.contains("fees are not part of an ERC-7715 grant"), "{stderr}");
}
