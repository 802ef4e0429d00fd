//! The mock NSM: PCR semantics, and its documents through the production verifier.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use bridle_attestation::{
    verify, ImageMeasurement, MockNsm, NsmError, NsmProvider, PayloadEncoding, TrustedRoot, VerifyError, VerifyOptions,
    VerifyTime, FIRST_USER_PCR, PCR_COUNT,
};
use ciborium::value::Value;
use common::*;
use sha2::{Digest, Sha384};

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn mock_options(nsm: &MockNsm) -> VerifyOptions {
    VerifyOptions::now(300)
        .with_root_der(nsm.root_der().to_vec())
        .with_pcr(0, nsm.image().pcr0.to_vec())
        .with_pcr(1, nsm.image().pcr1.to_vec())
        .with_pcr(2, nsm.image().pcr2.to_vec())
}

/// Re-signs a payload edited by `f` with the mock's leaf key.
fn resign(nsm: &MockNsm, f: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let payload = nsm.attestation_payload(None, None, None).unwrap();
    let mut entries = payload_entries(&payload);
    f(&mut entries);
    nsm.sign_payload(&cbor_encode(&Value::Map(entries))).unwrap()
}

#[test]
fn mock_document_passes_with_mock_root_and_fails_without() {
    let nsm = MockNsm::new().unwrap();
    let doc = nsm.attestation(Some(b"user".to_vec()), Some(b"nonce-1".to_vec()), Some(vec![7; 33])).unwrap();
    assert_eq!(doc[0], 0x84, "untagged COSE_Sign1 like the NSM");

    let opts = mock_options(&nsm)
        .with_nonce(b"nonce-1".to_vec())
        .with_public_key(vec![7; 33])
        .with_user_data(b"user".to_vec());
    let v = verify(&doc, &opts).expect("mock document with mock root");
    assert_eq!(v.module_id, nsm.module_id());
    assert_eq!(v.pcrs.len(), usize::from(PCR_COUNT));
    assert_eq!(v.nonce.as_deref(), Some(&b"nonce-1"[..]));
    assert_eq!(v.chain.len(), 3);
    assert!(!v.debug);

    // Same options with the default (AWS) root: refused.
    let aws = VerifyOptions { root: TrustedRoot::AwsNitroRootG1, ..opts.clone() };
    let err = verify(&doc, &aws).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
    let err = verify(&doc, &VerifyOptions::default().with_any_image(true)).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
    // No expected image, and any image not allowed: refused before anything else.
    let err = verify(&doc, &VerifyOptions::now(300).with_root_der(nsm.root_der().to_vec())).unwrap_err();
    assert_eq!(err, VerifyError::NoExpectedImage { given: "none".into() });
    let only16 = VerifyOptions::now(300).with_root_der(nsm.root_der().to_vec()).with_pcr(16, vec![0; 48]);
    let err = verify(&doc, &only16).unwrap_err();
    assert_eq!(err, VerifyError::NoExpectedImage { given: "PCR16".into() });
    assert!(err.to_string().contains("--any-image"), "{err}");
    let pcr12 = VerifyOptions::now(300)
        .with_root_der(nsm.root_der().to_vec())
        .with_pcr(1, nsm.image().pcr1.to_vec())
        .with_pcr(2, nsm.image().pcr2.to_vec());
    verify(&doc, &pcr12).expect("PCR1 and PCR2 pin the image");

    // Root given as PEM works too.
    let pem_opts = VerifyOptions { root: TrustedRoot::from_pem(nsm.root_pem()).unwrap(), ..opts };
    verify(&doc, &pem_opts).expect("PEM root");
}

#[test]
fn document_of_another_mock_chain_is_refused() {
    let a = MockNsm::new().unwrap();
    let b = MockNsm::new().unwrap();
    let doc = a.attestation(None, None, None).unwrap();
    let err = verify(&doc, &mock_options(&a).with_root_der(b.root_der().to_vec())).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
}

#[test]
fn document_resigned_under_another_root_with_aws_cabundle_zero_is_refused() {
    // Put the real AWS root in cabundle[0]: it is ignored, the chain still
    // ends at the mock root, so the AWS-rooted verifier refuses.
    let nsm = MockNsm::new().unwrap();
    let aws_root = bridle_attestation::aws_nitro_root_g1_der().unwrap();
    let doc = resign(&nsm, |e| {
        edit_field(
            e,
            "cabundle",
            Some(Value::Array(vec![Value::Bytes(aws_root), Value::Bytes(nsm.intermediate_der().to_vec())])),
        )
    });
    let err = verify(&doc, &VerifyOptions::now(300).with_any_image(true)).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
    // ... and it is accepted with the mock root: cabundle[0] plays no part.
    verify(&doc, &mock_options(&nsm)).expect("cabundle[0] is ignored");

    // Even garbage in cabundle[0] is ignored.
    let doc = resign(&nsm, |e| {
        edit_field(
            e,
            "cabundle",
            Some(Value::Array(vec![Value::Bytes(vec![1, 2, 3]), Value::Bytes(nsm.intermediate_der().to_vec())])),
        )
    });
    verify(&doc, &mock_options(&nsm)).expect("cabundle[0] is ignored");

    // Dropping the intermediate breaks the chain.
    let doc =
        resign(&nsm, |e| edit_field(e, "cabundle", Some(Value::Array(vec![Value::Bytes(nsm.root_der().to_vec())]))));
    let err = verify(&doc, &mock_options(&nsm)).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
}

#[test]
fn nitro_tpm_document_is_refused() {
    let nsm = MockNsm::new().unwrap();
    let doc = resign(&nsm, |e| {
        let pcrs = e.iter().find(|(k, _)| *k == text("pcrs")).unwrap().1.clone();
        edit_field(e, "pcrs", None);
        edit_field(e, "nitrotpm_pcrs", Some(pcrs));
    });
    assert_eq!(verify(&doc, &mock_options(&nsm)).unwrap_err(), VerifyError::NitroTpmDocument);
    let doc = resign(&nsm, |e| edit_field(e, "pcrs", None));
    assert_eq!(verify(&doc, &mock_options(&nsm)).unwrap_err(), VerifyError::NitroTpmDocument);
}

#[test]
fn es256_header_signed_by_mock_is_refused() {
    let nsm = MockNsm::new().unwrap();
    let payload = nsm.attestation_payload(None, None, None).unwrap();
    let es256 = cbor_encode(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-7).into()))]));
    let doc = nsm.sign_with_protected_header(&es256, &payload).unwrap();
    let err = verify(&doc, &mock_options(&nsm)).unwrap_err();
    assert!(matches!(err, VerifyError::UnsupportedAlgorithm { .. }), "{err}");
    let crit = cbor_encode(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer((-35).into())),
        (Value::Integer(2.into()), Value::Array(vec![Value::Integer(99.into())])),
    ]));
    let doc = nsm.sign_with_protected_header(&crit, &payload).unwrap();
    let err = verify(&doc, &mock_options(&nsm)).unwrap_err();
    assert!(matches!(err, VerifyError::NotCoseSign1 { .. }), "{err}");
}

#[test]
fn indefinite_length_payload_and_tagged_document_are_accepted() {
    let nsm = MockNsm::new().unwrap();
    nsm.set_payload_encoding(PayloadEncoding::Indefinite);
    nsm.set_tagged(true);
    let doc = nsm.attestation(None, Some(vec![1, 2, 3]), None).unwrap();
    assert_eq!(doc[0], 0xd2, "tag 18");
    let payload = split_cose(&doc).payload;
    assert_eq!(payload[0], 0xbf, "indefinite-length map");
    assert_eq!(*payload.last().unwrap(), 0xff);
    let v = verify(&doc, &mock_options(&nsm).with_nonce(vec![1, 2, 3])).expect("indefinite map");
    assert_eq!(v.nonce, Some(vec![1, 2, 3]));
}

#[test]
fn optional_fields_null_or_empty_mean_absent() {
    let nsm = MockNsm::new().unwrap();
    let doc = resign(&nsm, |e| {
        edit_field(e, "public_key", Some(Value::Bytes(vec![])));
        edit_field(e, "user_data", Some(Value::Null));
        edit_field(e, "nonce", None);
    });
    let v = verify(&doc, &mock_options(&nsm)).expect("null/empty/absent optional fields");
    assert_eq!((v.public_key, v.user_data, v.nonce), (None, None, None));
    // Expected but absent: an error, never skipped.
    let err = verify(&doc, &mock_options(&nsm).with_user_data(b"x".to_vec())).unwrap_err();
    assert_eq!(err, VerifyError::UserDataMismatch { expected: b"x".to_vec(), actual: None });
    let err = verify(&doc, &mock_options(&nsm).with_public_key(b"k".to_vec())).unwrap_err();
    assert_eq!(err, VerifyError::PublicKeyMismatch { expected: b"k".to_vec(), actual: None });
}

#[test]
fn malformed_payload_fields_are_refused() {
    let nsm = MockNsm::new().unwrap();
    type Edit = Box<dyn Fn(&mut Vec<(Value, Value)>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|e| edit_field(e, "digest", Some(text("SHA256")))), "UnsupportedDigest"),
        (Box::new(|e| edit_field(e, "module_id", Some(text("")))), "InvalidDocument"),
        (Box::new(|e| edit_field(e, "module_id", None)), "MissingField"),
        (Box::new(|e| edit_field(e, "timestamp", None)), "MissingField"),
        (Box::new(|e| edit_field(e, "timestamp", Some(Value::Integer((-5).into())))), "InvalidDocument"),
        (Box::new(|e| edit_field(e, "certificate", None)), "MissingField"),
        (Box::new(|e| edit_field(e, "cabundle", Some(Value::Array(vec![])))), "InvalidDocument"),
        (Box::new(|e| edit_field(e, "nonce", Some(text("n")))), "InvalidDocument"),
        (Box::new(|e| edit_field(e, "pcrs", Some(Value::Map(vec![])))), "InvalidDocument"),
        (
            Box::new(|e| {
                edit_field(e, "pcrs", Some(Value::Map(vec![(Value::Integer(0.into()), Value::Bytes(vec![1; 47]))])))
            }),
            "PcrLength",
        ),
        (
            Box::new(|e| {
                edit_field(e, "pcrs", Some(Value::Map(vec![(Value::Integer(1.into()), Value::Bytes(vec![1; 48]))])))
            }),
            "InvalidDocument",
        ),
        (Box::new(|e| e.push((text("digest"), text("SHA384")))), "DuplicateField"),
        (Box::new(|e| edit_field(e, "certificate", Some(Value::Bytes(vec![0x30, 0])))), "InvalidCertificate"),
    ];
    for (edit, expected) in cases {
        let doc = resign(&nsm, edit);
        let err = verify(&doc, &mock_options(&nsm)).unwrap_err();
        let name = format!("{err:?}");
        assert!(name.starts_with(expected), "expected {expected}, got {name}");
    }
}

#[test]
fn more_than_32_pcrs_and_sha256_sha512_sized_pcrs_are_accepted() {
    let nsm = MockNsm::new().unwrap();
    let doc = resign(&nsm, |e| {
        let mut pcrs = vec![
            (Value::Integer(0.into()), Value::Bytes(nsm.image().pcr0.to_vec())),
            (Value::Integer(1.into()), Value::Bytes(vec![1; 32])),
            (Value::Integer(2.into()), Value::Bytes(vec![2; 64])),
        ];
        for i in 3..40u64 {
            pcrs.push((Value::Integer(i.into()), Value::Bytes(vec![0; 48])));
        }
        edit_field(e, "pcrs", Some(Value::Map(pcrs)));
    });
    let opts = VerifyOptions::now(300)
        .with_root_der(nsm.root_der().to_vec())
        .with_pcr(0, nsm.image().pcr0.to_vec())
        .with_pcr(39, vec![0; 48]);
    let v = verify(&doc, &opts).expect("40 PCRs");
    assert_eq!(v.pcrs.len(), 40);
}

#[test]
fn time_rules_for_mock_documents() {
    let nsm = MockNsm::new().unwrap();
    let doc = nsm.attestation(None, None, None).unwrap();
    let now = now_secs();
    // Stored-document mode at now + 1 min: fine.
    verify(&doc, &VerifyOptions { time: VerifyTime::At(now + 60), ..mock_options(&nsm) }).expect("At(now+60)");
    // Before the document existed (certs backdated one hour, valid).
    let err = verify(&doc, &VerifyOptions { time: VerifyTime::At(now - 1800), ..mock_options(&nsm) }).unwrap_err();
    assert!(matches!(err, VerifyError::DocumentAfterVerificationTime { .. }), "{err}");
    // Before the chain's notBefore.
    let err = verify(&doc, &VerifyOptions { time: VerifyTime::At(now - 3 * 3600), ..mock_options(&nsm) }).unwrap_err();
    assert!(matches!(err, VerifyError::CertificateNotYetValid { .. }), "{err}");
    // Far future: expired.
    let err = verify(&doc, &VerifyOptions { time: VerifyTime::At(now + 40 * 365 * 86400), ..mock_options(&nsm) })
        .unwrap_err();
    assert!(matches!(err, VerifyError::CertificateExpired { .. }), "{err}");

    // Fresh-document mode: a document dated 10 minutes ago is too old for 300 s.
    let old = resign(&nsm, |e| edit_field(e, "timestamp", Some(Value::Integer(((now - 600) * 1000).into()))));
    let err = verify(&old, &mock_options(&nsm)).unwrap_err();
    assert!(matches!(err, VerifyError::DocumentTooOld { max_age_secs: 300, .. }), "{err}");
    verify(&old, &VerifyOptions { time: VerifyTime::Now { max_age_secs: 900 }, ..mock_options(&nsm) })
        .expect("within 900 s");
    let future = resign(&nsm, |e| edit_field(e, "timestamp", Some(Value::Integer(((now + 600) * 1000).into()))));
    let err = verify(&future, &mock_options(&nsm)).unwrap_err();
    assert!(matches!(err, VerifyError::DocumentFromFuture { .. }), "{err}");
}

#[test]
fn debug_mock_refused_unless_allowed() {
    let nsm = MockNsm::new_debug().unwrap();
    assert!(nsm.is_debug());
    assert_eq!(nsm.describe_pcr(0).unwrap().data, vec![0; 48]);
    let doc = nsm.attestation(None, None, None).unwrap();
    let opts = VerifyOptions::now(300).with_root_der(nsm.root_der().to_vec()).with_any_image(true);
    assert_eq!(verify(&doc, &opts).unwrap_err(), VerifyError::DebugMode { index: 0 });
    assert!(verify(&doc, &opts.with_allow_debug(true)).unwrap().debug);
}

#[test]
fn mock_never_all_zero_outside_debug() {
    let m = MockNsm::new().unwrap();
    for i in 0..3 {
        let d = m.describe_pcr(i).unwrap();
        assert!(d.locked);
        assert!(d.data.iter().any(|b| *b != 0), "PCR{i} all zero");
    }
    let zero = ImageMeasurement::new([0; 48], [1; 48], [2; 48]);
    assert!(matches!(MockNsm::with_image(zero), Err(NsmError::InvalidArgument(_))));
}

#[test]
fn mock_with_given_image_measurement() {
    let image = ImageMeasurement::from_hex(SAMPLE_PCR0, SAMPLE_PCR1, SAMPLE_PCR2).unwrap();
    let nsm = MockNsm::with_image(image.clone()).unwrap();
    assert_eq!(nsm.describe_pcr(0).unwrap().data, unhex(SAMPLE_PCR0));
    let doc = nsm.attestation(None, None, None).unwrap();
    let opts = VerifyOptions::now(300)
        .with_root_der(nsm.root_der().to_vec())
        .with_pcr(0, unhex(SAMPLE_PCR0))
        .with_pcr(1, unhex(SAMPLE_PCR1))
        .with_pcr(2, unhex(SAMPLE_PCR2));
    verify(&doc, &opts).expect("given measurement");
    assert!(ImageMeasurement::from_hex("00", SAMPLE_PCR1, SAMPLE_PCR2).is_err());
    assert!(ImageMeasurement::from_hex("zz", SAMPLE_PCR1, SAMPLE_PCR2).is_err());
}

#[test]
fn pcr_extend_and_lock_semantics() {
    let nsm = MockNsm::new().unwrap();
    // Boot PCRs are locked.
    for i in 0..FIRST_USER_PCR {
        assert!(nsm.describe_pcr(i).unwrap().locked, "PCR{i}");
        assert_eq!(nsm.extend_pcr(i, b"x").unwrap_err(), NsmError::ReadOnlyIndex { index: i });
    }
    // User PCRs start at zero, unlocked, and extend as SHA384(old || data).
    let d = nsm.describe_pcr(16).unwrap();
    assert_eq!(d, bridle_attestation::PcrDescription { locked: false, data: vec![0; 48] });
    let v1 = nsm.extend_pcr(16, b"config commitment").unwrap();
    let mut h = Sha384::new();
    h.update([0u8; 48]);
    h.update(b"config commitment");
    let expected1 = h.finalize().to_vec();
    assert_eq!(v1, expected1);
    let v2 = nsm.extend_pcr(16, b"more").unwrap();
    let mut h = Sha384::new();
    h.update(&expected1);
    h.update(b"more");
    assert_eq!(v2, h.finalize().to_vec());
    assert_eq!(nsm.describe_pcr(16).unwrap().data, v2);

    nsm.lock_pcr(16).unwrap();
    assert!(nsm.describe_pcr(16).unwrap().locked);
    assert_eq!(nsm.extend_pcr(16, b"x").unwrap_err(), NsmError::ReadOnlyIndex { index: 16 });
    assert_eq!(nsm.describe_pcr(16).unwrap().data, v2, "locked PCR unchanged");

    // The extended PCR appears in attestation documents.
    let doc = nsm.attestation(None, None, None).unwrap();
    verify(&doc, &mock_options(&nsm).with_pcr(16, v2.clone())).expect("PCR16 bound");
    let err = verify(&doc, &mock_options(&nsm).with_pcr(16, expected1)).unwrap_err();
    assert!(matches!(err, VerifyError::PcrMismatch { index: 16, .. }), "{err}");

    // Lock range [0, 20).
    nsm.extend_pcr(19, b"a").unwrap();
    nsm.lock_pcrs(20).unwrap();
    assert!(nsm.describe_pcr(19).unwrap().locked);
    assert!(!nsm.describe_pcr(20).unwrap().locked);
    nsm.extend_pcr(20, b"a").unwrap();

    // Out of range.
    assert_eq!(nsm.describe_pcr(PCR_COUNT).unwrap_err(), NsmError::InvalidIndex { index: PCR_COUNT, count: PCR_COUNT });
    assert!(nsm.extend_pcr(1000, b"a").is_err());
    assert!(nsm.lock_pcr(PCR_COUNT).is_err());
    assert!(nsm.lock_pcrs(PCR_COUNT + 1).is_err());
    nsm.lock_pcrs(PCR_COUNT).unwrap();
    assert_eq!(nsm.extend_pcr(31, b"a").unwrap_err(), NsmError::ReadOnlyIndex { index: 31 });
}

#[test]
fn attestation_input_limits_and_random() {
    let nsm = MockNsm::new().unwrap();
    assert!(matches!(
        nsm.attestation(Some(vec![0; 513]), None, None),
        Err(NsmError::InputTooLarge { field: "user_data", max: 512, actual: 513 })
    ));
    assert!(matches!(
        nsm.attestation(None, Some(vec![0; 513]), None),
        Err(NsmError::InputTooLarge { field: "nonce", .. })
    ));
    assert!(matches!(
        nsm.attestation(None, None, Some(vec![0; 1025])),
        Err(NsmError::InputTooLarge { field: "public_key", .. })
    ));
    nsm.attestation(Some(vec![1; 512]), Some(vec![2; 512]), Some(vec![3; 1024])).unwrap();

    let a = nsm.get_random(64).unwrap();
    let b = nsm.get_random(64).unwrap();
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    assert!(nsm.get_random(0).unwrap().is_empty());
}

#[test]
fn provider_is_object_safe_and_shareable() {
    let nsm: std::sync::Arc<dyn NsmProvider> = std::sync::Arc::new(MockNsm::new().unwrap());
    let n2 = nsm.clone();
    let h = std::thread::spawn(move || n2.extend_pcr(17, b"t").unwrap());
    h.join().unwrap();
    assert_ne!(nsm.describe_pcr(17).unwrap().data, vec![0; 48]);
}

#[test]
fn real_nsm_absent_is_an_error() {
    if std::path::Path::new("/dev/nsm").exists() {
        return; // inside an enclave
    }
    let err = bridle_attestation::RealNsm::open().unwrap_err();
    assert!(matches!(err, NsmError::DeviceUnavailable { path: "/dev/nsm", .. }), "{err}");
}
