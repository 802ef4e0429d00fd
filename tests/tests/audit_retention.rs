//! The audit retention end to end: a running host's copy pruned by the host's own store code
//! (what `audit_retention_days` runs every minute), then what the owner's tools make of it —
//! the real `bridle audit export` and `bridle verify audit`, and the console's own
//! `verifyAuditLog` under node. Nothing pruned is called complete; what is kept is checked
//! from its first entry, and only where the host says it pruned up to there.

use bridle_host::store::{open, Database};
use bridle_tests::review::World;
use bridle_tests::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const POLICY: &str = r#"
name = "retention"
chains = [31337]
valid_for = "24h"

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "1000 USDC"
per = "day"
"#;

const USDC: alloy_primitives::Address = alloy_primitives::address!("5FbDB2315678afecb367f032d93F642f64180aa3");

/// The console's `verifyAuditLog` over `log` (a `GET /v1/audit` body read whole).
fn console_verify(log: &Value, identity: &str, pruned: &Value) -> Value {
    let verify = repo_root().join("host/console/verify.js");
    let script = format!(
        r#"
const {{ verifyAuditLog }} = await import({verify:?});
let text = "";
process.stdin.setEncoding("utf8");
for await (const c of process.stdin) text += c;
const d = JSON.parse(text);
const v = verifyAuditLog(d.entries, d.head, d.identity, d.pruned);
console.log(JSON.stringify(v));
"#,
        verify = verify.display().to_string()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verify.mjs");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new("node")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    use std::io::Write;
    let input = json!({"entries": log["entries"], "head": log["head"], "identity": identity, "pruned": pruned});
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("node's JSON")
}

#[tokio::test]
async fn a_pruned_copy_is_the_log_from_its_first_kept_entry_and_never_called_whole() {
    let w = World::start(POLICY);
    let g = w.grant().await;
    for n in 0..3 {
        w.signed(
            &g,
            erc20_transfer(
                31337,
                n,
                USDC,
                alloy_primitives::Address::repeat_byte(0xee),
                alloy_primitives::U256::from(1u8),
            ),
        )
        .await;
    }
    let st = w.stack.status().await;
    let enclave = st.identity_address;
    // The host has the log (every read pulls first): then its store prunes what was logged
    // up to now, as the retention would — every entry but the last one stored.
    let (_, log) = w.stack.get("/v1/audit?since=0").await;
    let tip = log["entries"].as_array().unwrap().last().unwrap()["seq"].as_u64().unwrap();
    assert!(tip >= 4, "{log}");
    let db = open(&Database::Sqlite(w.stack.enclave.dir.path().join("host.sqlite"))).unwrap();
    let p = db.audit.prune_audit(&enclave, u64::MAX, 10_000, now()).unwrap();
    assert_eq!((p.deleted as u64, p.through), (tip, Some(tip - 1)));
    // The enclave goes on logging, and the host on copying, after the pruned prefix.
    w.signed(
        &g,
        erc20_transfer(31337, 3, USDC, alloy_primitives::Address::repeat_byte(0xee), alloy_primitives::U256::from(1u8)),
    )
    .await;
    let (_, log) = w.stack.get("/v1/audit?since=0").await;
    assert_eq!(
        (log["pruned_through"].as_u64(), log["entries"][0]["seq"].as_u64()),
        (Some(tip - 1), Some(tip)),
        "{log}"
    );
    let kept = log["entries"].as_array().unwrap().len();
    assert!(kept >= 2, "the tip and what came after it: {log}");

    // `bridle audit export`: the copy reaches the enclave's fresh head; it says what is not
    // there, and takes it only from an entry asked for.
    let out = w.cli.run(&["audit", "export", "--out", "audit.json"]);
    let text = bridle_tests::cli::text(&out);
    assert!(!out.status.success() && text.contains("not taken: pass --from-seq"), "{text}");
    assert!(
        text.contains(&format!("entries 0..={} are not in the export", tip - 1)) && text.contains("its word"),
        "{text}"
    );
    let earlier = (tip - 2).to_string();
    let out = w.cli.run(&["audit", "export", "--out", "audit.json", "--from-seq", &earlier]);
    assert!(!out.status.success(), "{}", bridle_tests::cli::text(&out));
    let from = tip.to_string();
    let out = w.cli.run(&["audit", "export", "--out", "audit.json", "--from-seq", &from]);
    assert!(out.status.success(), "{}", bridle_tests::cli::text(&out));
    // `bridle verify audit`, pinned: not valid as a whole log; valid from the first kept entry.
    let (_, err) = w.cli.fails(&["verify", "audit", "audit.json", "--identity-key", &w.identity]);
    assert!(err.contains("entry 0 is missing") && err.contains(&format!("--from-seq {tip}")), "{err}");
    let ok = w.cli.ok(&["verify", "audit", "audit.json", "--identity-key", &w.identity, "--from-seq", &from]);
    assert!(ok.contains(&format!("valid: audit log from seq {tip} (logged at")), "{ok}");
    assert!(ok.contains(&format!("not here: entries 0..={}", tip - 1)), "{ok}");

    // The console: verified from the first kept entry where the host says it pruned up to
    // there; entries missing where it does not say so.
    let identity = format!("{enclave:#x}");
    let v = console_verify(&log, &identity, &log["pruned_through"]);
    assert_eq!((v["ok"].as_bool(), v["firstSeq"].as_u64()), (Some(true), Some(tip)), "{v}");
    let v = console_verify(&log, &identity, &Value::Null);
    assert_eq!(v["ok"].as_bool(), Some(false), "{v}");
    assert!(v["error"].as_str().unwrap().contains("entry 0 is missing"), "{v}");
    let v = console_verify(&log, &identity, &json!(tip - 2));
    assert_eq!(v["ok"].as_bool(), Some(false), "{v}");
}

/// PostgreSQL shared by two hosts (a review of 2026-12-07): a relayed batch stored while
/// another host's prune was in flight put the pruned entries back — `store_batch` read
/// `pruned_through` without a lock, saw the value from before the prune committed, and its
/// insert of a row the prune deleted waited for the prune, then inserted it. Now the batch
/// holds the enclave's pruning row shared, the prune holds it for update. The interleaving
/// is forced by a third session holding a lock on an `audit_gaps` row, which stalls the real
/// prune after its `DELETE FROM audit_entries` and before its commit.
#[test]
fn postgres_a_relayed_batch_during_a_prune_does_not_put_pruned_entries_back() {
    use bridle_common::audit::testing::TestChain;
    use bridle_common::audit::AuditReply;
    use bridle_host::audit_store::{AuditStore, BatchSource};
    use bridle_host::store::{open, Database};
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let Some(url) = bridle_tests::postgres::fresh_database("prune_race") else { return };
    let db = Database::parse(&url).unwrap();
    let host_a = open(&db).unwrap();
    let host_b = open(&db).unwrap();
    let mut chain = TestChain::new(7);
    chain.fill(10);
    let enclave = chain.enclave();
    let pk: alloy_primitives::Bytes = chain.public_key().into();
    let reply = AuditReply { entries: chain.entries.clone(), head: chain.head_at(9, 1_700_000_100), more: false };
    let a = AuditStore::new(host_a.audit.clone());
    a.accept_from(enclave, Some(&pk), &reply, BatchSource::OwnNode).unwrap();

    // A gap row below the prune's reach, locked by a third session.
    let mut psql = Command::new("psql")
        .arg(&url)
        .args(["-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    let mut sql = psql.stdin.take().unwrap();
    writeln!(sql, "INSERT INTO audit_gaps (enclave, from_seq, to_seq, noticed_at) VALUES ('{enclave:#x}', 1, 1, 0);")
        .unwrap();
    writeln!(sql, "BEGIN; SELECT * FROM audit_gaps FOR UPDATE;").unwrap();
    sql.flush().unwrap();
    std::thread::sleep(Duration::from_millis(800));

    // Host A's retention prunes seq 0..=5 (a page of 6): stalls before its commit.
    let pa = host_a.audit.clone();
    let prune = std::thread::spawn(move || pa.prune_audit(&enclave, u64::MAX, 6, 1_800_000_000));
    std::thread::sleep(Duration::from_millis(800));
    // Host B stores a relayed batch of the same chain (another host's copy, from seq 0).
    let b = AuditStore::new(host_b.audit.clone());
    let relay = std::thread::spawn(move || b.accept_from(enclave, Some(&pk), &reply, BatchSource::Relayed));
    std::thread::sleep(Duration::from_millis(800));
    // The third session lets go.
    writeln!(sql, "COMMIT;").unwrap();
    drop(sql);
    let _ = psql.wait();
    let pruned = prune.join().unwrap().unwrap();
    let relayed = relay.join().unwrap();
    eprintln!("prune: {pruned:?}; relayed batch: {relayed:?}");
    let through = host_a.audit.pruned_through(&enclave).unwrap();
    let kept: Vec<u64> = host_a.audit.entries(&enclave, 0, 100).unwrap().iter().map(|e| e.seq).collect();
    eprintln!("pruned_through {through:?}; stored seqs {kept:?}");
    assert_eq!(through, Some(5));
    assert!(kept.first().is_none_or(|&s| s > 5), "pruned through seq 5, yet seqs {kept:?} are stored again");
}
