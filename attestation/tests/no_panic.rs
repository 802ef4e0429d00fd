//! The verifier never panics, whatever the input, and never accepts a mutated document.

mod common;

use std::sync::OnceLock;

use bridle_attestation::{decode_document_input, verify, MockNsm, NsmProvider, VerifyOptions};
use common::*;
use proptest::prelude::*;

/// Any image: these tests exercise every parser and check, which a missing image
/// expectation would short-circuit.
fn sample_options() -> VerifyOptions {
    VerifyOptions::at(SAMPLE_TS).with_any_image(true)
}

struct MockFixture {
    nsm: MockNsm,
    doc: Vec<u8>,
}

fn mock() -> &'static MockFixture {
    static M: OnceLock<MockFixture> = OnceLock::new();
    M.get_or_init(|| {
        let nsm = MockNsm::new().unwrap();
        let doc = nsm.attestation(Some(b"u".to_vec()), Some(b"n".to_vec()), Some(b"k".to_vec())).unwrap();
        MockFixture { nsm, doc }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Xor(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(doc: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut d = doc.to_vec();
    for m in muts {
        if d.is_empty() {
            break;
        }
        let n = d.len();
        match *m {
            Mutation::Xor(i, x) => d[i % n] ^= x,
            Mutation::Set(i, b) => d[i % n] = b,
            Mutation::Insert(i, b) => d.insert(i % (n + 1), b),
            Mutation::Delete(i) => {
                d.remove(i % n);
            }
            Mutation::Truncate(i) => d.truncate(i % n),
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = verify(&bytes, &sample_options());
        let _ = decode_document_input(&bytes);
    }

    #[test]
    fn cose_like_prefix_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512), tag in any::<bool>()) {
        let mut bytes = if tag { vec![0xd2, 0x84] } else { vec![0x84] };
        bytes.extend(tail);
        prop_assert!(verify(&bytes, &sample_options()).is_err());
    }

    #[test]
    fn mutated_real_document_is_refused(muts in proptest::collection::vec(mutation(), 1..4)) {
        let doc = apply(SAMPLE_2024, &muts);
        prop_assume!(doc != SAMPLE_2024);
        prop_assert!(verify(&doc, &sample_options()).is_err());
    }

    #[test]
    fn mutated_mock_document_is_refused(muts in proptest::collection::vec(mutation(), 1..4)) {
        let m = mock();
        let doc = apply(&m.doc, &muts);
        prop_assume!(doc != m.doc);
        let opts = VerifyOptions::now(3600).with_root_der(m.nsm.root_der().to_vec()).with_any_image(true);
        prop_assert!(verify(&doc, &opts).is_err());
    }

    #[test]
    fn mutated_payload_resigned_never_panics(muts in proptest::collection::vec(mutation(), 1..4)) {
        // Mutations inside a payload that is then validly signed: exercises the
        // document and certificate parsers past the signature check.
        let m = mock();
        let payload = m.nsm.attestation_payload(None, None, None).unwrap();
        let doc = m.nsm.sign_payload(&apply(&payload, &muts)).unwrap();
        let opts = VerifyOptions::now(3600).with_root_der(m.nsm.root_der().to_vec()).with_any_image(true);
        let _ = verify(&doc, &opts);
    }
}

#[test]
fn huge_declared_lengths_are_refused_without_allocation() {
    let opts = sample_options();
    for major in [0x40u8, 0x60, 0x80, 0xa0] {
        for len in [[0xff; 8], [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0, 0, 0, 1, 0, 0, 0, 0]] {
            let mut doc = vec![major | 27];
            doc.extend(len);
            assert!(verify(&doc, &opts).is_err());
            // Same inside a COSE_Sign1 payload position.
            let mut doc = vec![0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, major | 27];
            doc.extend(len);
            assert!(verify(&doc, &opts).is_err());
        }
    }
    // Deep nesting.
    let deep = vec![0x81u8; 60_000];
    assert!(verify(&deep, &opts).is_err());
    let mut deep_tags = vec![0xd2u8; 30_000];
    deep_tags.push(0x80);
    assert!(verify(&deep_tags, &opts).is_err());
    let mut indefinite = vec![0x9fu8; 30_000];
    indefinite.push(0xff);
    assert!(verify(&indefinite, &opts).is_err());
}
