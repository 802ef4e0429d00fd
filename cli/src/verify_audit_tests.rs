//! Tests of `bridle verify audit` on logs built with their own key.
use super::*;
use alloy_primitives::B256;
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::{AuditExport, Record, EXPORT_FORMAT};

fn export() -> (TestChain, AuditExport) {
    let mut c = TestChain::new(4);
    c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
    c.fill(9);
    let ex = AuditExport {
        format: EXPORT_FORMAT.into(),
        enclave: c.enclave(),
        identity_public_key: Some(Bytes::from(c.public_key())),
        pruned_through: None,
        entries: c.entries.clone(),
        head: c.head(100),
        fresh_head: None,
    };
    (c, ex)
}

fn verify(ex: &serde_json::Value, extra: impl FnOnce(&mut VerifyAuditArgs)) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("bridle-verify-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let path = dir.join(format!("{}.json", N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
    std::fs::write(&path, ex.to_string()).unwrap();
    let mut args = VerifyAuditArgs {
        file: path.clone(),
        identity_key: None,
        enclave: None,
        host: None,
        from_seq: None,
        json: true,
    };
    extra(&mut args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_with(&args, &mut out, &mut err);
    let _ = std::fs::remove_file(path);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn a_genuine_export_verifies_pinned_or_not() {
    let (c, ex) = export();
    let v = serde_json::to_value(&ex).unwrap();
    let key = hex::encode(c.public_key());
    let (code, out, err) = verify(&v, |a| a.identity_key = Some(key.clone()));
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["verdict"].as_str(), r["entries"].as_u64(), r["pinned"].as_bool()),
        (Some("valid"), Some(10), Some(true))
    );
    assert_eq!(r["counts"]["started"], 1);
    let (code, _, err) = verify(&v, |_| {});
    assert_eq!(code, 0);
    assert!(err.contains("warning: no --identity-key"), "{err}");
    let (code, _, _) = verify(&v, |a| a.enclave = Some(c.enclave()));
    assert_eq!(code, 0);
}

#[test]
fn tampering_is_reported_with_the_entry() {
    let (c, ex) = export();
    let key = hex::encode(c.public_key());
    type Tamper = fn(&mut AuditExport);
    let cases: [(&str, Tamper, &str, u64); 3] = [
        ("changed", |e| e.entries[4].detail = "nothing happened".into(), "changed", 4),
        (
            "removed",
            |e| {
                e.entries.remove(6);
            },
            "missing",
            6,
        ),
        ("reordered", |e| e.entries.swap(2, 3), "out_of_order", 2),
    ];
    for (name, tamper, kind, seq) in cases {
        let mut t = ex.clone();
        tamper(&mut t);
        let (code, out, err) = verify(&serde_json::to_value(&t).unwrap(), |a| a.identity_key = Some(key.clone()));
        assert_eq!(code, 1, "{name}: {out}{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((r["kind"].as_str(), r["seq"].as_u64()), (Some(kind), Some(seq)), "{name}: {r}");
        assert!(err.starts_with(&format!("invalid: entry {seq} ")), "{name}: {err}");
    }
    // A field added to an entry.
    let mut v = serde_json::to_value(&ex).unwrap();
    v["entries"][3]["note"] = "x".into();
    let (code, out, _) = verify(&v, |_| {});
    assert_eq!(code, 1);
    assert!(out.contains("\"seq\":3"), "{out}");
}

#[test]
fn the_head_must_be_the_attested_identity() {
    let (_, ex) = export();
    let other = TestChain::new(8);
    let v = serde_json::to_value(&ex).unwrap();
    let (code, out, err) = verify(&v, |a| a.identity_key = Some(hex::encode(other.public_key())));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not the expected"), "{err}");
    // The whole file re-signed by another key claiming to be the enclave.
    let mut forged = ex.clone();
    forged.head = AuditHead::signed(
        ex.head.seq,
        ex.head.hash,
        ex.head.time,
        ex.enclave,
        ex.head.end,
        ex.head.nonce,
        ex.head.oldest,
        |d| Ok::<_, std::convert::Infallible>(other.sign_digest(d)),
    )
    .unwrap();
    let (code, out, _) = verify(&serde_json::to_value(&forged).unwrap(), |a| a.enclave = Some(ex.enclave));
    assert_eq!(code, 1);
    assert!(out.contains("head_signer"), "{out}");
}

#[test]
fn a_log_cut_at_a_batch_boundary_is_incomplete() {
    let (c, mut ex) = export();
    // A batch's head: signed at entry 4 while the log held 10 entries.
    ex.entries.truncate(5);
    ex.head = c.head_at(4, 100);
    let key = hex::encode(c.public_key());
    let (code, out, err) = verify(&serde_json::to_value(&ex).unwrap(), |a| a.identity_key = Some(key.clone()));
    assert_eq!(code, 1, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["kind"].as_str(), r["seq"].as_u64()), (Some("incomplete"), Some(5)), "{r}");
    assert!(err.contains("5 entries missing"), "{err}");
}

#[test]
fn complete_only_as_of_the_fresh_head_it_reaches() {
    let (mut c, mut ex) = export();
    let key = hex::encode(c.public_key());
    // No fresh head: complete as of the head's own time.
    let (code, out, err) = verify(&serde_json::to_value(&ex).unwrap(), |a| a.identity_key = Some(key.clone()));
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["complete_as_of"], 100, "{r}");
    // The exporter's fresh head at the same end, later: complete as of it.
    ex.fresh_head = Some(c.head(150));
    let (code, out, _) = verify(&serde_json::to_value(&ex).unwrap(), |a| a.identity_key = Some(key.clone()));
    assert_eq!(code, 0, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["complete_as_of"], 150, "{r}");
    // The enclave logged three more entries the export does not have.
    c.fill(3);
    ex.fresh_head = Some(c.head(200));
    let (code, out, err) = verify(&serde_json::to_value(&ex).unwrap(), |a| a.identity_key = Some(key.clone()));
    assert_eq!(code, 1, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["kind"].as_str(), r["seq"].as_u64()), (Some("incomplete"), Some(10)), "{r}");
    assert!(err.contains("3 entries missing"), "{err}");
    // A fresh head that disagrees with an entry the export has.
    let (c2, ex2) = export();
    let mut forked = ex2.clone();
    forked.fresh_head = Some(
        AuditHead::signed(9, B256::repeat_byte(1), 300, c2.enclave(), 10, B256::ZERO, Some(0), |d| {
            Ok::<_, std::convert::Infallible>(c2.sign_digest(d))
        })
        .unwrap(),
    );
    let (code, out, _) = verify(&serde_json::to_value(&forked).unwrap(), |_| {});
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"changed\""), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let (c, ex) = export();
    let v = serde_json::to_value(&ex).unwrap();
    assert_eq!(verify(&v, |a| a.identity_key = Some("zz".into())).0, 2);
    let (code, _, err) = verify(&v, |a| {
        a.identity_key = Some(hex::encode(c.public_key()));
        a.enclave = Some(Address::ZERO);
    });
    assert_eq!(code, 2, "{err}");
    assert_eq!(verify(&serde_json::json!({"entries": []}), |_| {}).0, 2);
    let args = VerifyAuditArgs {
        file: "/nonexistent/x.json".into(),
        identity_key: None,
        enclave: None,
        host: None,
        from_seq: None,
        json: false,
    };
    assert_eq!(run_with(&args, &mut Vec::new(), &mut Vec::new()), 2);
}

#[test]
fn an_export_the_host_pruned_is_checked_from_its_first_entry_only_when_asked() {
    let (mut c, mut ex) = export();
    let key = hex::encode(c.public_key());
    let pin = |a: &mut VerifyAuditArgs| a.identity_key = Some(key.clone());
    // The host's retention deleted seq 0..=3: the export starts at 4 and says so.
    ex.entries.drain(..4);
    ex.pruned_through = Some(3);
    let v = serde_json::to_value(&ex).unwrap();
    // Without --from-seq: never valid, never "complete".
    let (code, out, err) = verify(&v, pin);
    assert_eq!(code, 1, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((r["kind"].as_str(), r["seq"].as_u64()), (Some("missing"), Some(0)), "{r}");
    assert!(err.contains("starts at seq 4") && err.contains("retention") && err.contains("--from-seq 4"), "{err}");
    // Asked for the log from an entry the export does not hold: invalid.
    let (code, out, _) = verify(&v, |a| {
        pin(a);
        a.from_seq = Some(2);
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2 is missing"), "{out}");
    // From seq 4 (or later): valid, complete from seq 4, the entries before it named.
    for from in [4, 7] {
        let (code, out, err) = verify(&v, |a| {
            pin(a);
            a.from_seq = Some(from);
        });
        assert_eq!(code, 0, "{out}{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!((r["complete"].as_bool(), r["complete_from_seq"].as_u64()), (Some(false), Some(4)), "{r}");
        assert_eq!((r["entries"].as_u64(), r["not_in_export"]["to"].as_u64()), (Some(6), Some(3)), "{r}");
        assert!(r["not_in_export"]["why"].as_str().unwrap().contains("its word"), "{r}");
    }
    // The text names what is checked and what is not.
    let (code, out, _) = verify(&v, |a| {
        pin(a);
        a.from_seq = Some(4);
        a.json = false;
    });
    assert_eq!(code, 0);
    assert!(out.contains("valid: audit log from seq 4 (logged at") && out.contains("not here: entries 0..=3"), "{out}");
    // A link broken after the first kept entry is still found.
    let mut broken = ex.clone();
    broken.entries[2].detail = "changed".into();
    let (code, out, _) = verify(&serde_json::to_value(&broken).unwrap(), |a| {
        pin(a);
        a.from_seq = Some(4);
    });
    assert_eq!((code, out.contains("\"changed\"")), (1, true), "{out}");
    // A fresh head is matched by seq, not by position.
    ex.fresh_head = Some(c.head(150));
    let (code, out, _) = verify(&serde_json::to_value(&ex).unwrap(), |a| {
        pin(a);
        a.from_seq = Some(4);
    });
    assert_eq!(code, 0, "{out}");
    c.fill(1);
    ex.fresh_head = Some(c.head(160));
    let (code, out, _) = verify(&serde_json::to_value(&ex).unwrap(), |a| {
        pin(a);
        a.from_seq = Some(4);
    });
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"incomplete\""), "{out}");
}

#[test]
fn the_export_command_takes_a_pruned_copy_only_where_the_host_says_it_pruned() {
    let (c, mut ex) = export();
    let fresh = c.head(150);
    ex.entries.drain(..4);
    // The host does not say why the copy starts at seq 4: entries missing.
    let text = serde_json::to_string(&ex).unwrap();
    let e = export_reaches(&text, c.enclave(), &fresh).unwrap_err();
    assert!(e.contains("entry 0 is missing") && e.contains("does not say why"), "{e}");
    assert!(export_to_its_head(&text, c.enclave()).is_err());
    // It says its retention deleted them: the copy is the log from there.
    ex.pruned_through = Some(3);
    let text = serde_json::to_string(&ex).unwrap();
    export_reaches(&text, c.enclave(), &fresh).unwrap();
    assert_eq!(export_to_its_head(&text, c.enclave()).unwrap().first_seq, 4);
    // ... and not where it says something else.
    ex.pruned_through = Some(1);
    assert!(export_reaches(&serde_json::to_string(&ex).unwrap(), c.enclave(), &fresh).is_err());
}
