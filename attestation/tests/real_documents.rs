//! The verifier against real AWS Nitro attestation documents.

mod common;

use bridle_attestation::{
    aws_nitro_root_g1_der, pins_image, verify, CertRole, MockNsm, VerifyError, VerifyOptions, VerifyTime,
    AWS_NITRO_ROOT_G1_SHA256,
};
use ciborium::value::Value;
use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn sample_options() -> VerifyOptions {
    VerifyOptions::at(SAMPLE_TS)
        .with_pcr(0, unhex(SAMPLE_PCR0))
        .with_pcr(1, unhex(SAMPLE_PCR1))
        .with_pcr(2, unhex(SAMPLE_PCR2))
}

#[test]
fn sample_valid_at_its_timestamp() {
    let v = verify(SAMPLE_2024, &sample_options().with_public_key(unhex(SAMPLE_PUBLIC_KEY)))
        .expect("sample document must verify");
    assert_eq!(v.timestamp_ms, SAMPLE_TS_MS);
    assert_eq!(v.digest, "SHA384");
    assert!(v.module_id.starts_with("i-0df237f0418feb41e-enc"));
    assert_eq!(v.pcrs.get(&0), Some(&unhex(SAMPLE_PCR0)));
    assert_eq!(v.public_key.as_ref().map(Vec::len), Some(32));
    assert_eq!(v.user_data.as_ref().map(Vec::len), Some(42));
    assert_eq!(v.nonce, None);
    assert!(!v.debug);
    // leaf + cabundle[1..4] + trusted root
    assert_eq!(v.chain.len(), 5);
    assert_eq!(v.chain.last().map(|c| c.sha256), Some(AWS_NITRO_ROOT_G1_SHA256));
    for c in &v.chain {
        eprintln!("{} <- {} [{}, {}]", c.subject, c.issuer, c.not_before, c.not_after);
    }
}

#[test]
fn embedded_root_matches_pin_and_fixture() {
    let der = aws_nitro_root_g1_der().expect("embedded root");
    let hash: [u8; 32] = Sha256::digest(&der).into();
    assert_eq!(hash, AWS_NITRO_ROOT_G1_SHA256);
    assert_eq!(hex::encode_upper(hash), "641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B");
    let fixture = bridle_attestation::certificate_pem_to_der(AWS_ROOT_PEM).expect("pem");
    assert_eq!(der, fixture);
}

#[test]
fn sample_tagged_is_accepted() {
    let tagged = cbor_encode(&Value::Tag(18, Box::new(cbor_decode(SAMPLE_2024))));
    assert_eq!(tagged[0], 0xd2);
    verify(&tagged, &sample_options()).expect("tagged COSE_Sign1 accepted");
}

#[test]
fn sample_invalid_three_hours_later() {
    let opts = VerifyOptions { time: VerifyTime::At(SAMPLE_TS + 3 * 3600), ..sample_options() };
    let err = verify(SAMPLE_2024, &opts).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateExpired { cert: CertRole::Leaf, not_after: 1_708_941_576, .. }),
        "{err}"
    );
}

#[test]
fn sample_invalid_before_chain_not_before() {
    let opts = VerifyOptions { time: VerifyTime::At(1_708_930_773 - 1), ..sample_options() };
    let err = verify(SAMPLE_2024, &opts).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateNotYetValid { cert: CertRole::Leaf, not_before: 1_708_930_773, .. }),
        "{err}"
    );
}

#[test]
fn sample_invalid_now() {
    let err = verify(SAMPLE_2024, &VerifyOptions::default().with_any_image(true)).unwrap_err();
    assert!(matches!(err, VerifyError::CertificateExpired { .. }), "{err}");
    // Without an expected image (and without any_image): refused before anything else.
    let err = verify(SAMPLE_2024, &VerifyOptions::at(SAMPLE_TS)).unwrap_err();
    assert!(matches!(err, VerifyError::NoExpectedImage { .. }), "{err}");
}

#[test]
fn sample_dated_after_verification_time_is_refused() {
    // Certificates are valid at SAMPLE_TS - 60, but the document did not exist yet.
    let err =
        verify(SAMPLE_2024, &VerifyOptions { time: VerifyTime::At(SAMPLE_TS - 60), ..sample_options() }).unwrap_err();
    assert!(matches!(err, VerifyError::DocumentAfterVerificationTime { .. }), "{err}");
}

#[test]
fn debug_document_refused_unless_allowed() {
    let opts = VerifyOptions::at(DEBUG_TS).with_any_image(true);
    let err = verify(DEBUG_2022, &opts).unwrap_err();
    assert_eq!(err, VerifyError::DebugMode { index: 0 });
    assert!(err.to_string().contains("debug"));

    let v = verify(DEBUG_2022, &opts.with_allow_debug(true)).expect("debug allowed");
    assert!(v.debug);
    assert_eq!(v.timestamp_ms, DEBUG_TS_MS);
    assert_eq!(v.pcrs.get(&0), Some(&vec![0u8; 48]));
}

/// A debug-mode enclave measures zeros in PCR0, 1 and 2 whatever code it runs: expecting
/// those zeros pins no image (a review of 2026-12-05: `--allow-debug --pcr 0=00…` passed as
/// an expected image and admitted any debug-mode image without a word).
#[test]
fn expected_zero_pcrs_pin_no_image() {
    let zeros = |idx: &[u16]| -> BTreeMap<u16, Vec<u8>> { idx.iter().map(|i| (*i, vec![0u8; 48])).collect() };
    for given in [zeros(&[0]), zeros(&[1, 2]), zeros(&[0, 1, 2])] {
        assert!(!pins_image(&given), "{given:?}");
        let opts = VerifyOptions { expected_pcrs: given, ..VerifyOptions::at(DEBUG_TS) }.with_allow_debug(true);
        let err = verify(DEBUG_2022, &opts).unwrap_err();
        assert!(matches!(err, VerifyError::NoExpectedImage { .. }), "{err}");
        assert!(err.to_string().contains("pins none"), "{err}");
        // Only an explicit --any-image accepts it.
        assert!(verify(DEBUG_2022, &opts.with_any_image(true)).expect("any image, debug allowed").debug);
    }
    let mut one = zeros(&[1]);
    one.insert(2, vec![7; 48]);
    assert!(!pins_image(&one), "PCR1 of zeros with PCR2");
    assert!(pins_image(&[(0u16, vec![7u8; 48])].into()));
}

#[test]
fn flipped_signature_bit_is_refused() {
    let mut c = split_cose(SAMPLE_2024);
    c.signature[10] ^= 0x01;
    let err = verify(&join_cose(&c), &sample_options()).unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
}

#[test]
fn flipped_payload_byte_is_refused() {
    let mut c = split_cose(SAMPLE_2024);
    // A byte of the module_id text: still a well-formed document, wrong signature.
    let pos = c.payload.windows(5).position(|w| w == b"i-0df").expect("module id in payload");
    c.payload[pos + 4] ^= 0x01;
    let err = verify(&join_cose(&c), &sample_options()).unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
}

#[test]
fn every_byte_flip_is_refused_without_panic() {
    // Flip one bit of every byte of the document, in place.
    let opts = sample_options();
    for i in 0..SAMPLE_2024.len() {
        let mut doc = SAMPLE_2024.to_vec();
        doc[i] ^= 0x10;
        assert!(verify(&doc, &opts).is_err(), "flip at byte {i} accepted");
    }
}

#[test]
fn es256_header_is_refused() {
    let mut c = split_cose(SAMPLE_2024);
    c.protected = cbor_encode(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-7).into()))]));
    let err = verify(&join_cose(&c), &sample_options()).unwrap_err();
    assert_eq!(err, VerifyError::UnsupportedAlgorithm { expected: "ES384 (-35)".into(), actual: "ES256 (-7)".into() });
    assert!(err.to_string().contains("ES256"));

    // No alg at all.
    c.protected = cbor_encode(&Value::Map(vec![]));
    assert_eq!(verify(&join_cose(&c), &sample_options()).unwrap_err(), VerifyError::MissingAlgorithm);
    c.protected = Vec::new();
    assert_eq!(verify(&join_cose(&c), &sample_options()).unwrap_err(), VerifyError::MissingAlgorithm);
}

#[test]
fn truncated_documents_are_refused() {
    let opts = sample_options();
    for len in 0..SAMPLE_2024.len() {
        let err = verify(&SAMPLE_2024[..len], &opts).unwrap_err();
        assert!(
            matches!(err, VerifyError::MalformedCbor { .. } | VerifyError::NotCoseSign1 { .. }),
            "truncated to {len}: {err}"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut doc = SAMPLE_2024.to_vec();
    doc.push(0);
    let err = verify(&doc, &sample_options()).unwrap_err();
    assert!(matches!(err, VerifyError::TrailingBytes { count: 1, .. }), "{err}");
}

#[test]
fn wrong_signature_length_is_refused() {
    let mut c = split_cose(SAMPLE_2024);
    c.signature.pop();
    let err = verify(&join_cose(&c), &sample_options()).unwrap_err();
    assert_eq!(err, VerifyError::SignatureLength { expected: 96, actual: 95 });
}

#[test]
fn sample_with_another_trusted_root_is_refused() {
    // cabundle[0] (the AWS root) is not trusted by itself: with another root
    // given, the chain does not end at it.
    let mock = MockNsm::new().unwrap();
    let err = verify(SAMPLE_2024, &sample_options().with_root_der(mock.root_der().to_vec())).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
}

#[test]
fn wrong_expected_pcr_is_refused() {
    let mut wrong = unhex(SAMPLE_PCR0);
    wrong[0] ^= 1;
    let err = verify(SAMPLE_2024, &sample_options().with_pcr(0, wrong.clone())).unwrap_err();
    assert_eq!(err, VerifyError::PcrMismatch { index: 0, expected: wrong.clone(), actual: unhex(SAMPLE_PCR0) });
    let msg = err.to_string();
    assert!(msg.contains("PCR0") && msg.contains(&hex::encode(&wrong)) && msg.contains(SAMPLE_PCR0), "{msg}");

    // PCR15 is all zeros in the sample: expecting anything else fails.
    let err = verify(SAMPLE_2024, &sample_options().with_pcr(15, vec![1u8; 48])).unwrap_err();
    assert!(matches!(err, VerifyError::PcrMismatch { index: 15, .. }), "{err}");

    // An index the document does not have is an error naming it, never skipped.
    let err = verify(SAMPLE_2024, &sample_options().with_pcr(40, vec![0u8; 48])).unwrap_err();
    assert!(matches!(err, VerifyError::PcrMissing { index: 40, .. }), "{err}");
    assert!(err.to_string().contains("PCR40"));
}

#[test]
fn wrong_nonce_is_refused() {
    let err = verify(SAMPLE_2024, &sample_options().with_nonce(b"abc".to_vec())).unwrap_err();
    assert_eq!(err, VerifyError::NonceMismatch { expected: b"abc".to_vec(), actual: None });
    assert!(err.to_string().contains("616263") && err.to_string().contains("null"));
}

#[test]
fn wrong_public_key_is_refused() {
    let mut pk = unhex(SAMPLE_PUBLIC_KEY);
    pk[31] ^= 1;
    let err = verify(SAMPLE_2024, &sample_options().with_public_key(pk.clone())).unwrap_err();
    assert_eq!(err, VerifyError::PublicKeyMismatch { expected: pk, actual: Some(unhex(SAMPLE_PUBLIC_KEY)) });
}

#[test]
fn user_data_is_compared_exactly() {
    let v = verify(SAMPLE_2024, &sample_options()).unwrap();
    let ud = v.user_data.clone().unwrap();
    verify(SAMPLE_2024, &sample_options().with_user_data(ud.clone())).expect("same user_data");
    let mut other = ud.clone();
    other.push(b' ');
    let err = verify(SAMPLE_2024, &sample_options().with_user_data(other)).unwrap_err();
    assert!(matches!(err, VerifyError::UserDataMismatch { .. }), "{err}");
}

#[test]
fn garbage_trusted_root_is_reported() {
    let err = verify(SAMPLE_2024, &sample_options().with_root_der(vec![0x30, 0x03, 1, 2, 3])).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidTrustedRoot { .. }), "{err}");
}
