//! AWS-LC against ring, the library the verifier used before: on every signature of the
//! real AWS documents (each certificate link, the COSE signature) and on thousands of
//! deterministic mutations of each (bit flips, inserted, deleted and truncated bytes,
//! re-encoded DER lengths, a leading zero added to an integer, a changed message), both
//! must accept and refuse exactly the same inputs — the switch changes the arithmetic's
//! speed, never what verifies.

use super::{
    is_uncompressed_point, parse_cert, verification_algorithm, CertRole, Curve, ObjectIdentifier, OID_ECDSA_SHA384,
};
use crate::cose::{parse_cose_sign1, sig_structure};
use crate::document::parse_payload;

const DOCUMENTS: [&[u8]; 2] = [
    include_bytes!("../../../tests/fixtures/nitro/nitro_sample_2024.cbor"),
    include_bytes!("../../../tests/fixtures/nitro/nitro_debug_2022.cbor"),
];

/// One signature to check: the algorithms by name in both libraries, key, message, signature.
struct Case {
    what: String,
    curve: Curve,
    aws: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
    ring: &'static dyn ring::signature::VerificationAlgorithm,
    key: Vec<u8>,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

/// ring's algorithm for what `verification_algorithm` is given (the same table, in ring).
fn ring_twin(sig_alg: ObjectIdentifier, issuer_curve: Curve) -> &'static dyn ring::signature::VerificationAlgorithm {
    use ring::signature as r;
    match (sig_alg == OID_ECDSA_SHA384, issuer_curve) {
        (true, Curve::P384) => &r::ECDSA_P384_SHA384_ASN1,
        (true, Curve::P256) => &r::ECDSA_P256_SHA384_ASN1,
        (false, Curve::P384) => &r::ECDSA_P384_SHA256_ASN1,
        (false, Curve::P256) => &r::ECDSA_P256_SHA256_ASN1,
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (d, doc) in DOCUMENTS.iter().enumerate() {
        let cose = parse_cose_sign1(doc).expect("a COSE_Sign1");
        let raw = parse_payload(&cose.payload).expect("a payload");
        let mut chain: Vec<_> = raw
            .cabundle
            .iter()
            .enumerate()
            .map(|(i, der)| parse_cert(CertRole::CaBundle(i), der).expect("a CA certificate"))
            .collect();
        chain.push(parse_cert(CertRole::Leaf, &raw.certificate).expect("the leaf certificate"));
        for (i, pair) in chain.windows(2).enumerate() {
            let (issuer, child) = (&pair[0], &pair[1]);
            out.push(Case {
                what: format!("document {d}, link {i}"),
                curve: issuer.curve,
                aws: verification_algorithm(child.signature_alg, issuer.curve),
                ring: ring_twin(child.signature_alg, issuer.curve),
                key: issuer.public_key.clone(),
                msg: child.tbs_der.clone(),
                sig: child.signature.clone(),
            });
        }
        let leaf = chain.last().expect("a leaf");
        out.push(Case {
            what: format!("document {d}, COSE signature"),
            curve: leaf.curve,
            aws: &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
            ring: &ring::signature::ECDSA_P384_SHA384_FIXED,
            key: leaf.public_key.clone(),
            msg: sig_structure(&cose.protected, &cose.payload).expect("a Sig_structure"),
            sig: cose.signature.clone(),
        });
    }
    out
}

/// The verifier's verdict (its key rule, then AWS-LC) and ring's.
fn verdicts(c: &Case, key: &[u8], msg: &[u8], sig: &[u8]) -> (bool, bool) {
    let aws = is_uncompressed_point(key, c.curve)
        && aws_lc_rs::signature::UnparsedPublicKey::new(c.aws, key).verify(msg, sig).is_ok();
    let ring = ring::signature::UnparsedPublicKey::new(c.ring, key).verify(msg, sig).is_ok();
    (aws, ring)
}

/// A small deterministic generator (xorshift64*), so that a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `b`, chosen by `r`.
fn mutate(r: &mut Rng, b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    match r.below(7) {
        0 if !v.is_empty() => {
            let i = r.below(v.len());
            v[i] ^= 1 << r.below(8);
        }
        1 => {
            let i = r.below(v.len() + 1);
            v.insert(i, r.next() as u8);
        }
        2 if !v.is_empty() => {
            v.remove(r.below(v.len()));
        }
        3 => v.truncate(r.below(v.len())),
        // DER: an INTEGER with a redundant leading zero (r is the first, at offset 2).
        4 if v.len() > 4 && v[0] == 0x30 && v[2] == 0x02 => {
            v.insert(4, 0);
            v[3] = v[3].wrapping_add(1);
            v[1] = v[1].wrapping_add(1);
        }
        // DER: the SEQUENCE length in the long form (not minimal).
        5 if v.len() > 2 && v[0] == 0x30 && v[1] < 0x80 => {
            v.insert(1, 0x81);
        }
        6 if !v.is_empty() => {
            let i = r.below(v.len());
            v[i] = [0x00, 0xff, 0x80, 0x7f][r.below(4)];
        }
        _ => v.push(0),
    }
    v
}

#[test]
fn aws_lc_and_ring_agree_on_every_real_signature_and_its_mutations() {
    let cases = cases();
    assert!(cases.len() >= 8, "two documents, their links and COSE signatures: {}", cases.len());
    let mut r = Rng(0x5eed_b21d_1e00_0001);
    let (mut accepted, mut refused) = (0u64, 0u64);
    for c in &cases {
        assert_eq!(verdicts(c, &c.key, &c.msg, &c.sig), (true, true), "{}: the genuine signature", c.what);
        for i in 0..600 {
            let (key, msg, sig) = match i % 6 {
                0 => (c.key.clone(), mutate(&mut r, &c.msg), c.sig.clone()),
                1 => (mutate(&mut r, &c.key), c.msg.clone(), c.sig.clone()),
                _ => (c.key.clone(), c.msg.clone(), mutate(&mut r, &c.sig)),
            };
            let (aws, ring) = verdicts(c, &key, &msg, &sig);
            assert_eq!(aws, ring, "{}, mutation {i}: AWS-LC {aws}, ring {ring}: sig {}", c.what, hex::encode(&sig));
            if aws {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Almost every mutation is refused; the few accepted ones (a changed byte outside what
    // is signed cannot exist here, so these are mutations that left the input as it was)
    // are accepted by both.
    assert!(refused > 10 * accepted, "refused {refused}, accepted {accepted}");
}

/// Why the verifier checks a key's encoding itself: AWS-LC alone takes a hybrid point
/// (`06`/`07` ‖ x ‖ y, the prefix carrying y's parity) for the key it names, ring does not,
/// and neither does the verifier.
#[test]
fn a_hybrid_point_is_refused_by_the_verifier_as_by_ring() {
    for c in cases() {
        let mut hybrid = c.key.clone();
        hybrid[0] = 0x06 | (c.key[c.key.len() - 1] & 1);
        let aws_alone = aws_lc_rs::signature::UnparsedPublicKey::new(c.aws, &hybrid).verify(&c.msg, &c.sig).is_ok();
        assert!(aws_alone, "{}: AWS-LC alone takes the hybrid encoding", c.what);
        assert_eq!(verdicts(&c, &hybrid, &c.msg, &c.sig), (false, false), "{}", c.what);
    }
}
