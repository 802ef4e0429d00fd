//! Tests of the trust file and the owner-nonce rules (`trust.rs`).

use super::*;

/// An owner clock behind the enclave's signs at least the enclave's signed time (or a
/// suspension's or hold's second), keeping its own milliseconds; one on time signs its own.
#[test]
fn owner_nonces_are_at_least_the_enclaves_signed_time() {
    assert_eq!(at_least(1_700_000_000_123, 1_699_000_000_000), 1_700_000_000_123);
    assert_eq!(at_least(1_699_000_000_456, 1_700_000_000_000), 1_700_000_000_456);
    assert_eq!(at_least(5, u64::MAX), u64::MAX);
}

#[test]
fn owner_nonces_keep_this_clocks_order_when_it_runs_a_little_behind() {
    // The VM test on 2026-12-06: the guest's clock 0.4 s ahead; a grant at .696 of this
    // clock and a revocation at .321 of the next second, both within the enclave's
    // second 37: the second nonce was below the first and refused `replayed`.
    let signed = 1_796_588_037_000;
    let grant = nonce_at(1_796_588_036_696, signed, 0);
    let revoke = nonce_at(1_796_588_037_321, signed, 0);
    assert_eq!((grant, revoke), (1_796_588_036_696, 1_796_588_037_321));
    // Up to five minutes behind: its own time (the enclave takes ten).
    assert_eq!(nonce_at(signed - BEHIND_SLACK_MS, signed, 0), signed - BEHIND_SLACK_MS);
    // Further behind: moved forward by whole minutes, within the slack, in order.
    let far = signed - 3_600_000;
    let (a, b) = (nonce_at(far, signed, 0), nonce_at(far + 999, signed, 0));
    assert!(a >= signed - BEHIND_SLACK_MS && a < b && (a - far) % 60_000 == 0, "{a} {b}");
    // An explicit floor (a suspension's next second) still lifts.
    assert_eq!(nonce_at(signed - 2_000, signed, signed + 1_000), signed + 1_000 + (signed - 2_000) % 1000);
}

/// The cases the owner console's `ownerNonceAt` is held to as well
/// (`console_digests::owner_nonces_are_picked_as_the_cli_picks_them`).
#[test]
fn owner_nonces_match_the_shared_cases() {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../../tests/fixtures/owner_nonces.json")).unwrap();
    assert!(rows.len() >= 10);
    for r in rows {
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(nonce_at(n("now_ms"), n("signed_ms"), n("floor_ms")), n("nonce"), "{}", r["case"]);
    }
}

#[test]
fn a_changed_identity_is_reported_without_the_hosts_password() {
    let trusted = Trusted {
        url: "http://u:secret@127.0.0.1:8547".into(),
        public_key: vec![],
        address: Address::repeat_byte(1),
        source: Source::FirstUse,
    };
    let st = Status {
        version: "0".into(),
        identity_public_key: Default::default(),
        identity_address: Address::repeat_byte(2),
        booted_at: 0,
        now: 0,
        sessions_active: 0,
        sessions_total: 0,
        signatures: 0,
        denials: 0,
        session: None,
        aggregate: vec![],
        receipt: None,
    };
    let e = check_status(&st, B256::ZERO, &trusted).unwrap_err().to_string();
    assert!(!e.contains("secret") && e.contains("the host http://127.0.0.1:8547 now reports"), "{e}");
    assert!(!no_trust("http://u:secret@h").to_string().contains("secret"));
}

#[test]
fn urls_are_normalized() {
    assert_eq!(normalize_url("HTTP://LocalHost:8547/"), "http://localhost:8547");
    assert_eq!(normalize_url(" http://127.0.0.1:8547 "), "http://127.0.0.1:8547");
    assert_eq!(normalize_url("https://Bridle.Example/API/"), "https://bridle.example/API");
}

#[test]
fn identity_keys_parse_in_either_form() {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let sk = k256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let c = sk.public_key().to_encoded_point(true).as_bytes().to_vec();
    let u = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
    let (a, addr_a) = parse_identity_key(&format!("0x{}", hex::encode(&c))).unwrap();
    let (b, addr_b) = parse_identity_key(&hex::encode(&u)).unwrap();
    assert_eq!((a, addr_a), (b.clone(), addr_b));
    assert_eq!(b, c);
    assert!(parse_identity_key("0x02").is_err());
    assert!(parse_identity_key("zz").is_err());
}

#[test]
fn the_trust_file_round_trips_and_refuses_unknown_fields() {
    let mut f = TrustFile::default();
    f.hosts.insert(
        "http://h".into(),
        Entry {
            identity_public_key: "0x02".into(),
            identity_address: Address::repeat_byte(1),
            method: Method::Attested,
            established_at: 5,
            attestation: Some(Attested {
                root_sha256: "ab".into(),
                root_pem: None,
                pcrs: [(0u16, "00".to_string())].into(),
                any_image: false,
                allow_debug: false,
                module_id: "m".into(),
                timestamp_ms: 1,
            }),
            note: None,
        },
    );
    let text = serde_json::to_string(&f).unwrap();
    assert_eq!(serde_json::from_str::<TrustFile>(&text).unwrap(), f);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["hosts"]["http://h"]["extra"] = 1.into();
    assert!(serde_json::from_value::<TrustFile>(v).is_err());
}

#[test]
fn a_trust_file_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("bridle-trust-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("trust.json");
    std::fs::write(&p, serde_json::to_string(&TrustFile::default()).unwrap()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = load_from(&p).unwrap_err().to_string();
    assert!(e.contains("writable by others"), "{e}");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(load_from(&p).unwrap(), TrustFile::default());
    assert_eq!(load_from(&dir.join("absent.json")).unwrap(), TrustFile::default());
    // Another user's file, mode 0600 or not (checkable only with the right to give a
    // file away: as root, as in CI).
    let me = effective_uid().expect("Linux");
    if me == 0 {
        std::os::unix::fs::chown(&p, Some(12_345), None).unwrap();
        let e = load_from(&p).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 12345"), "{e}");
        std::os::unix::fs::chown(&p, Some(0), None).unwrap();
        assert_eq!(load_from(&p).unwrap(), TrustFile::default());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
