//! The owner console in front of a host that lies, on the four points a review of
//! 2026-12-07 found (each of these four tests failed on the console as it was, and passes
//! since):
//!
//! - `console_never_trusts_a_key_it_did_not_attest` (Chromium, behind a proxy that races
//!   the page's background refresh against "Verify attestation"): the page trusts exactly
//!   the key it checked the attestation document against — an action waits for a refresh
//!   in flight, and the key is read once — and a revocation whose receipt it cannot check is
//!   never reported as done.
//! - `console_audit_view_is_not_filtered_by_the_hosts_session_list` (Chromium): the owner's
//!   sessions are also taken from the verified log's own entries naming the owner; a session
//!   the host's list leaves out is shown, in the audit table and in Sessions, flagged "not
//!   listed by the host".
//! - `console_shows_only_checked_identity_and_agent_beside_checked_badges` (Chromium, a
//!   host API that rewrites two fields): beside "attested" the attested identity, beside
//!   "signed by the enclave" the agent the binding signs — the host's differing word flagged
//!   apart — and Revoke signs that agent, not the host's.
//! - `console_describes_held_messages_and_typed_data_faithfully` (node, the console's own
//!   decode.js/typed.js): what the page shows beside **Approve** tells requests apart (a
//!   message that is not clean UTF-8 as hex, as the CLI), shows no bidi, control or
//!   invisible character as it is (escaped as the CLI's `printable`, whose list the page's
//!   is checked equal to), and shows 256 bytes of a `bytes` field.
//!
//! And, of the fix for the second point,
//! `console_takes_the_owners_sessions_only_from_the_enclaves_owner_entries` (node): which
//! entries of a verified log the page reads the owner's sessions from.

use bridle_tests::console::{chromium, observations, page_script, policy_file};
use bridle_tests::{bin, repo_root, Actor, Dev};
use serde_json::Value;
use std::process::Command;

fn probe() -> Value {
    let out = Command::new("node").arg(repo_root().join("tests/console/console_probe.mjs")).output().expect("node");
    assert!(out.status.success(), "node failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Characters `bridle owner approve --dry-run` never prints as they are
/// (common/src/quote.rs `hides_text`), and U+FFFD, which a lenient decoding of invalid
/// UTF-8 shows for any bytes.
fn hides_text(c: char) -> bool {
    bridle_common::quote::hides_text(c) || c == '\u{fffd}'
}

#[test]
fn console_describes_held_messages_and_typed_data_faithfully() {
    let p = probe();
    let mut failures = Vec::new();

    // (1) Two different EIP-191 messages of non-UTF-8 bytes: both digests recomputed (so
    // Approve is offered on each), described identically ("message: ����…"). The CLI
    // prints such a message as hex (cli/src/decode.rs).
    let m = &p["message_nonutf8"];
    assert_ne!(m["a_digest"], m["b_digest"]);
    assert!(m["a_digest"].as_str().unwrap().len() == 66 && m["b_digest"].as_str().unwrap().len() == 66);
    if m["a_lines"] == m["b_lines"] {
        failures.push(format!("two different messages are described the same: {}", m["a_lines"]));
    }

    // (2) Text from the agent is shown with controls and bidi overrides as they are: a
    // right-to-left override shows `moc.elpmaxe` as `example.com`. Typed data's strings
    // are quoted with JSON.stringify, which keeps U+202E and U+2028 raw.
    for (name, lines) in
        [("message", &p["message_controls"]["lines"]), ("typed data", &p["typed_line_forgery"]["lines"])]
    {
        for l in lines.as_array().unwrap() {
            let l = l.as_str().unwrap();
            if l.chars().any(hides_text) {
                failures.push(format!("{name} line shown with hidden/bidi characters as they are: {l:?}"));
            }
        }
    }

    // (3) A typed-data `bytes` field is cut at 64 bytes while Approve is offered: a
    // ForwardRequest's transferFrom calldata (100 bytes) is shown without the recipient's
    // last 4 bytes and without the amount (the CLI shows 256 bytes).
    let t = &p["typed_bytes_cut"];
    assert!(t["digest"].as_str().unwrap().starts_with("0x"), "the page recomputes this digest: Approve offered");
    let shown = t["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    if !shown.contains(t["tail"].as_str().unwrap()) {
        failures.push(format!("a 100-byte `bytes` field is cut: {}", shown.lines().last().unwrap()));
    }

    assert!(failures.is_empty(), "the console describes held requests unfaithfully:\n- {}", failures.join("\n- "));

    // What stays readable: a clean UTF-8 message is shown as its lines; text outside ASCII
    // that hides nothing is shown as it is; an agent's literal `\u{202e}` cannot pass for
    // the page's escape of one (its backslash is escaped, as the CLI's `printable` does).
    let lines =
        |v: &Value| v["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(
        lines(&p["message_text"]),
        ["EIP-191 personal message, 41 bytes:", "  Sign in to example.org", "  nonce 42 — café"],
        "{}",
        p["message_text"]
    );
    // The page escapes exactly the characters the CLI does.
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for c in (0..=0x10ffffu32).filter_map(char::from_u32).filter(|&c| bridle_common::quote::hides_text(c)) {
        match ranges.last_mut() {
            Some((_, hi)) if *hi + 1 == c as u32 => *hi = c as u32,
            _ => ranges.push((c as u32, c as u32)),
        }
    }
    let js: Vec<(u32, u32)> = serde_json::from_value(p["hides_text_ranges"].clone()).unwrap();
    assert_eq!(js, ranges, "host/console/bytes.js `hidesText` is common/src/quote.rs `hides_text`");
    let typed = lines(&p["typed_text"]);
    assert!(typed.contains(&"domain: name \"Café\"".to_string()), "{typed:?}");
    assert!(typed.contains(&"  text: \"déjà vu \\\\u{005c}u{202e}\"".to_string()), "{typed:?}");
}

/// The owner's sessions the page takes from a verified log: the sessions of the entries the
/// enclave writes for owner acts naming the owner (common/src/audit/rec.rs), with the agent
/// and `valid_until` of their creation — no other entry, whatever its detail says.
#[test]
fn console_takes_the_owners_sessions_only_from_the_enclaves_owner_entries() {
    let p = probe();
    let got: Vec<(String, Value, Value)> = p["sessions_of_owner"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["session"].as_str().unwrap().to_string(), x["agent"].clone(), x["validUntil"].clone()))
        .collect();
    let s = |n: u8| format!("0x{}", n.to_string().repeat(40));
    let agent = Value::from(format!("0x{}", "3c".repeat(20)));
    assert_eq!(
        got,
        [
            (s(1), agent, Value::from(1_900_000_000u64)),
            (s(2), Value::Null, Value::Null),
            (s(6), Value::Null, Value::Null)
        ],
        "{}",
        p["sessions_of_owner"]
    );
}

#[test]
fn console_shows_only_checked_identity_and_agent_beside_checked_badges() {
    let Some(chromium) = chromium() else { return };
    let dev = Dev::start();
    let dir = dev.dir.path();
    let owner = Actor::random();
    let agent = Actor::random();
    let o = observations(
        "console_lying_host.py",
        page_script(&dev, "console_lying_host.py", &policy_file(dir, "lying-host"), &chromium)
            .args(["--owner-key", &owner.private_key_hex()])
            .args(["--agent-public-key", &agent.public_key_sec1().to_string()]),
    );
    let attested = o["identity_attested"].as_str().unwrap().to_lowercase();
    let fake = o["fake_identity"].as_str().unwrap();
    let mut failures = Vec::new();

    // (A) The Enclave panel: beside "attested", the identity attested (the one the wallet is
    // asked to sign as `enclave`), never the host's `identity_address`; the host's differing
    // address is flagged apart, as its word.
    assert_eq!(o["trust_badge"], "attested");
    assert_eq!(o["grant_enclave_signed"].as_str().unwrap().to_lowercase(), attested);
    let shown = o["identity_shown"].as_str().unwrap().to_lowercase();
    if !shown.contains(&attested) || shown.contains(fake) {
        failures.push(format!(
            "the Enclave panel shows identity {shown:?} as attested; the attested identity is {attested}"
        ));
    }
    let note = o["identity_note"].as_str().unwrap_or("").to_lowercase();
    if !(note.contains(fake) && note.contains("the host's word")) {
        failures.push(format!("the host's differing identity_address is not flagged: {note:?}"));
    }

    // (B) The sessions table: the Agent column is the agent the binding signs (the host's
    // differing row flagged beside it), and Revoke asks the wallet to sign that agent.
    let real_agent = o["agent_in_signed_status"].as_str().unwrap().to_lowercase();
    assert!(o["row_binding_cell"].as_str().unwrap().contains("signed by the enclave"), "{o}");
    if o["row_agent_title"].as_str().unwrap().to_lowercase() != real_agent {
        failures.push(format!(
            "the sessions table shows agent {} beside a binding signed for agent {real_agent}",
            o["row_agent_title"]
        ));
    }
    if !o["row_agent_cell"].as_str().unwrap().contains("the host's list says") {
        failures.push(format!("the host's differing agent is not flagged: {}", o["row_agent_cell"]));
    }
    match o["revoke_wallet_agent"].as_str() {
        Some(a) if a.to_lowercase() == real_agent => {}
        other => failures.push(format!(
            "Revoke asked the wallet to sign agent {other:?}, not the session's {real_agent} ({})",
            o["revoke_status"]
        )),
    }
    if !o["revoke_status"].as_str().unwrap().starts_with("revoked ") {
        failures.push(format!("Revoke did not revoke the session: {}", o["revoke_status"]));
    }
    assert!(
        failures.is_empty(),
        "the console shows the host's word beside checked badges:\n- {}",
        failures.join("\n- ")
    );
}

/// A lying host swaps the identity key between the two reads of `state.status` that the
/// "Verify attestation" handler made (the key checked against the document, then the key
/// stored as attested, read again after the await from a status a background refresh had
/// replaced meanwhile), then answers a revoke-all itself with that key's receipt. The page
/// must never mark the host's key "attested", and never report that revoke-all as done.
#[test]
fn console_never_trusts_a_key_it_did_not_attest() {
    let Some(chromium) = chromium() else { return };
    let dev = Dev::start();
    let dir = dev.dir.path();
    let owner = Actor::random();
    let agent = Actor::random();
    let o = observations(
        "console_trust_race.py",
        page_script(&dev, "console_trust_race.py", &policy_file(dir, "lying-host"), &chromium)
            .args(["--owner-key", &owner.private_key_hex()])
            .args(["--agent-public-key", &agent.public_key_sec1().to_string()]),
    );
    let fake = o["fake_identity"].as_str().unwrap().to_lowercase();
    let fake_pk = o["fake_public_key"].as_str().unwrap().to_lowercase();
    let mut failures = Vec::new();
    let stored = o["stored_trust"].as_str().unwrap_or("").to_lowercase();
    if o["trust_badge"] == "attested" && o["identity_shown"].as_str().unwrap().to_lowercase().contains(&fake) {
        failures.push(format!(
            "the host's key {fake} is marked \"attested\" ({}); stored trust {stored}",
            o["trust_detail"]
        ));
    }
    if stored.contains(&fake_pk) {
        failures.push(format!("the host's key {fake} is stored as trusted in this browser: {stored}"));
    }
    let revoke_all = o["revoke_all_status"].as_str().unwrap();
    if revoke_all.contains("revoked 1 session") || o["revoke_all_status_class"].as_str().unwrap_or("").contains("ok") {
        failures.push(format!(
            "the page reports {revoke_all:?} as done ({}) — the receipt is the host's (key {fake}), the enclave was asked {} time(s), and the session is {}",
            o["revoke_all_status_class"], o["enclave_asked_revoke_all"], o["real_session_state"]
        ));
    }
    assert!(failures.is_empty(), "a lying host gets a key it holds trusted as attested:\n- {}", failures.join("\n- "));
    // The click waited for the refresh in flight: the page asked for the attestation only
    // once the host had answered the status it held.
    assert_eq!(o["attestation_asked_before_status_answered"], false, "{o}");
    // The enclave never heard of the forged revoke-all: the session is still live, and the
    // page said the host's reply is unchecked.
    assert_eq!(o["real_session_state"], "active", "{o}");
    assert!(revoke_all.contains("not verified"), "{revoke_all}");
}

/// A host that leaves a session out of the owner's list must not hide its entries from
/// the audit table under "verified in this browser … complete now": the verified log's own
/// `session_created` entry names the owner, so the page lists the session and flags it.
#[test]
fn console_audit_view_is_not_filtered_by_the_hosts_session_list() {
    let Some(chromium) = chromium() else { return };
    let dev = Dev::start();
    let dir = dev.dir.path();
    let owner = Actor::random();
    let o = observations(
        "console_hidden_session.py",
        page_script(&dev, "console_hidden_session.py", &policy_file(dir, "lying-host"), &chromium)
            .arg("--bridle")
            .arg(bin("bridle"))
            .arg("--trust-file")
            .arg(dev.trust_file())
            .args(["--owner-key", &owner.private_key_hex()])
            .arg("--workdir")
            .arg(dir),
    );
    let owner_addr = o["owner"].as_str().unwrap().to_lowercase();
    let session = o["session"].as_str().unwrap().to_lowercase();
    let names_owner = o["log_entries_of_session"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e[0] == "session_created" && e[1].as_str().unwrap().to_lowercase().contains(&owner_addr));
    assert!(names_owner, "the verified log names the owner in the session's creation: {o}");
    assert_eq!(o["agent_signed"], true, "{o}");
    assert!(o["audit_result"].as_str().unwrap().contains("complete now"), "{o}");
    let table = o["audit_table"].as_str().unwrap();
    assert!(
        !table.contains("No entry for your sessions"),
        "the audit table, under a log verified complete, shows no entry of the owner's session {} ({} entries of it in the log: {})",
        o["session"],
        o["log_entries_of_session"].as_array().unwrap().len(),
        o["log_entries_of_session"]
    );
    // Its entries are there (its creation and the agent's signature), flagged.
    assert!(table.contains("session_created") && table.contains("allowed"), "{table}");
    assert!(table.contains("not listed by the host"), "{table}");
    let note = o["audit_sessions_note"].as_str().unwrap_or("").to_lowercase();
    assert!(note.contains("not listed by the host") && note.contains(&session), "{note}");
    // And among the owner's sessions, where it can be opened and revoked.
    assert_eq!(o["session_row_count"], 1, "{o}");
    assert_eq!(o["session_row_listed"], "log-only", "{o}");
    assert!(o["session_row"].as_str().unwrap().contains("not listed by the host"), "{o}");
    // Revoked from there, signed for the agent the log names: the enclave revoked it.
    assert!(o["revoke_hidden_status"].as_str().unwrap().starts_with("revoked "), "{o}");
    assert_eq!(o["revoke_hidden_agent"].as_str().unwrap().to_lowercase(), o["agent"].as_str().unwrap().to_lowercase());
    assert_eq!(o["real_session_state"], "revoked", "{o}");
}
