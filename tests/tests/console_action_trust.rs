//! The owner console's actions against a host that changes its answers while they wait, and
//! typed-data strings beside Approve, on the three points a review of 2026-12-07 found in
//! the console as it was after 545aead (each of these tests failed then, and passes since):
//!
//! - `an_action_clicked_under_attested_never_runs_under_a_key_swapped_in_meanwhile_*`
//!   (Chromium, behind a proxy that holds the page's background refresh until the owner
//!   clicks, then answers it with a key B of its own and a sweep with a receipt B signed):
//!   an action reads the trust at the click, and refuses when its turn comes under another.
//!   Sweep was signed for B and reported as done from B's receipt; Update and Revoke signed
//!   for B too. Now the wallet is never asked, and the status line says why.
//! - `a_request_the_host_never_answers_does_not_leave_the_page_busy` (Chromium, a proxy that
//!   never answers one GET): every request has a timeout; the page is not busy for good, the
//!   status line says which request the host did not answer, and Revoke all runs.
//! - `a_trust_that_verified_only_under_the_old_settings_is_dropped_when_they_change`
//!   (Chromium): unticking "any image" (or restoring the AWS root) checks the attestation
//!   again, in turn with the actions; the page kept "attested" under settings it fails.
//! - `typed_data_strings_are_shown_as_the_cli_prints_them` (node, the console's own
//!   decode.js/typed.js/bytes.js): no combining mark reaches the description beside Approve
//!   raw, and a string value is shown as the CLI shows it (Rust's `{:?}`, then `printable`).

use bridle_tests::console::{chromium, observations, page_script, policy_file};
use bridle_tests::{repo_root, Actor, Dev};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// tests/console/action_trust_race.py against a fresh dev host with `args`: its observations.
fn run(chromium: &Path, args: &[&str]) -> Value {
    let dev = Dev::start();
    let policy = policy_file(dev.dir.path(), "action-trust");
    let owner = Actor::random();
    let agent = Actor::random();
    observations(
        "action_trust_race.py",
        page_script(&dev, "action_trust_race.py", &policy, chromium)
            .args(args)
            .args(["--owner-key", &owner.private_key_hex()])
            .args(["--agent-public-key", &agent.public_key_sec1().to_string()]),
    )
}

fn race(action: &str) {
    let Some(chromium) = chromium() else { return };
    let o = run(&chromium, &["--mode", "race", "--action", action]);
    assert_eq!(o["trust_badge_at_click"], "attested", "{o}");
    assert_eq!(o["enabled_at_click"], true, "{o}");
    let fake = o["fake_identity"].as_str().unwrap().to_lowercase();
    let status = o["status"].as_str().unwrap_or("");
    let mut failures = Vec::new();
    if o["wallet_asked"] != 0 {
        failures.push(format!(
            "the owner's wallet was asked to sign ({} for enclave {}; the host's key is {fake})",
            o["wallet_signed_action"], o["wallet_signed_for_enclave"]
        ));
    }
    if o["forged_replies"] != 0 {
        failures.push(format!("the page sent the host {} message(s) it answered in B's name", o["forged_replies"]));
    }
    if !o["status_class"].as_str().unwrap_or("").contains("bad") || !status.contains("failed") {
        failures.push(format!("the status line is {status:?} ({}), not a refusal", o["status_class"]));
    }
    if !status.contains("when you clicked") || !status.contains("nothing was signed") {
        failures.push(format!("the status line does not say the trust changed since the click: {status:?}"));
    }
    if action == "sweep" && o["sweep_out"].is_string() {
        failures.push(format!("the page shows a sweep's outcome: {}", o["sweep_out"]));
    }
    assert!(
        failures.is_empty(),
        "{action} clicked under \"attested\" ran under the host's key B:\n- {}",
        failures.join("\n- ")
    );
}

#[test]
fn an_action_clicked_under_attested_never_runs_under_a_key_swapped_in_meanwhile_sweep() {
    race("sweep");
}

#[test]
fn an_action_clicked_under_attested_never_runs_under_a_key_swapped_in_meanwhile_update() {
    race("update");
}

#[test]
fn an_action_clicked_under_attested_never_runs_under_a_key_swapped_in_meanwhile_revoke() {
    race("revoke");
}

#[test]
fn a_request_the_host_never_answers_does_not_leave_the_page_busy() {
    let Some(chromium) = chromium() else { return };
    let o = run(&chromium, &["--mode", "hang"]);
    assert!(o["hung_requests"].as_u64().unwrap() >= 1, "{o}");
    assert_eq!(
        o["revoke_all_enabled_after_60s"], true,
        "60 s after one GET went unanswered, Revoke all is still disabled (page busy: {}, status line {:?})",
        o["busy_after_60s"], o["status_after_60s"]
    );
    let said = o["status_after_60s"].as_str().unwrap_or("");
    assert!(
        said.contains("did not answer GET /v1/sessions/"),
        "the status line does not say which request went unanswered: {said:?}"
    );
    let revoked = o["revoke_all_status"].as_str().unwrap_or("");
    assert!(
        revoked.contains("revoked 1 session(s)") && o["revoke_all_status_class"].as_str().unwrap_or("").contains("ok"),
        "Revoke all, clicked once the host answered again, did not run to its end: {revoked:?} ({})",
        o["revoke_all_status_class"]
    );
}

#[test]
fn a_trust_that_verified_only_under_the_old_settings_is_dropped_when_they_change() {
    let Some(chromium) = chromium() else { return };
    let o = run(&chromium, &["--mode", "settings"]);
    assert_eq!(o["trust_badge_before"], "attested", "{o}");
    assert_eq!(
        o["trust_badge_after_untick"], "not verified",
        "\"any image\" unticked, the page still trusts an enclave whose attestation verified only under it: {o:#}"
    );
    assert!(o["status_after_untick"].as_str().unwrap_or("").contains("does not verify under these settings"), "{o:#}");
    assert_eq!(o["trust_badge_after_aws_root"], "not verified", "{o:#}");
}

#[test]
fn typed_data_strings_are_shown_as_the_cli_prints_them() {
    use bridle_common::quote::printable;
    // Characters whose class is the same in every recent Unicode (spacing marks, which the
    // page escapes and Rust does not, left out).
    let strings = [
        "plain text",
        "a\u{301}b \u{336}\u{335}\u{489}\u{20dd}",
        "tab\tnl\nq\"bs\\ nul\0",
        "\u{200d}\u{a0}\u{2028}\u{202e}\u{feff} x",
        "é 中文 😀 नमस्ते",
        "literal \\u{301}",
    ];
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/console/typed_string_marks.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    child.stdin.take().unwrap().write_all(serde_json::to_string(&strings).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let o: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(o["raw_mark_lines"], serde_json::json!([]), "combining marks reach the page raw beside Approve: {o:#}");
    let lines: Vec<&str> = o["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(
        lines.iter().any(|l| l.starts_with(r#"  memo: "x\u{005c}u{336}\u{005c}u{335}\u{005c}u{489}"#)),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with(r#"domain: name "Token\u{005c}u{489}"#)), "{lines:#?}");
    assert!(lines.contains(&r#"  "n\u{005c}u{301}ote": "ok""#), "{lines:#?}");
    for (s, shown) in strings.iter().zip(o["quoted"].as_array().unwrap()) {
        let cli = printable(&format!("{s:?}")).into_owned();
        assert_eq!(shown.as_str().unwrap(), cli, "the page and the CLI show {s:?} differently");
    }
}
