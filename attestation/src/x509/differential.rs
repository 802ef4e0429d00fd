//! The verifier's signature checks (its key rule, then AWS-LC) against ring, the library it
//! used before: both must accept and refuse exactly the same inputs — the switch changed the
//! arithmetic's speed, never what verifies. The cases are every signature of the real AWS
//! documents (each certificate link, the COSE signature) and made-up ones for the three
//! certificate algorithms those documents do not use (P-256 with SHA-256 and SHA-384, P-384
//! with SHA-256); each is checked as it is, under 600 deterministic mutations (7 800 in all),
//! and under edge values chosen by hand (r or s of 0, 1, n − 1, n, n + r or n + s, all ones;
//! the high-S twin; keys compressed, hybrid, wrapped in a SubjectPublicKeyInfo, at
//! infinity, with a coordinate of p — not on the curve).

use super::{
    is_uncompressed_point, parse_cert, verification_algorithm, CertRole, Curve, ObjectIdentifier, OID_ECDSA_SHA256,
    OID_ECDSA_SHA384,
};
use crate::cose::{parse_cose_sign1, sig_structure};
use crate::document::parse_payload;
use crate::verify::COSE_ALGORITHM;
use crate::VerifyError;

const DOCUMENTS: [&[u8]; 2] = [
    include_bytes!("../../../tests/fixtures/nitro/nitro_sample_2024.cbor"),
    include_bytes!("../../../tests/fixtures/nitro/nitro_debug_2022.cbor"),
];

/// The group orders and field primes, big-endian.
const N_P256: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const N_P384: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P_P256: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
const P_P384: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";

/// One signature to check, with the algorithm by the same name in both libraries.
struct Case {
    what: String,
    curve: Curve,
    /// `r ‖ s` of fixed width (the COSE signature) rather than DER.
    fixed: bool,
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

fn link(what: String, sig_alg: ObjectIdentifier, curve: Curve, key: Vec<u8>, msg: Vec<u8>, sig: Vec<u8>) -> Case {
    let (aws, ring) = (verification_algorithm(sig_alg, curve), ring_twin(sig_alg, curve));
    Case { what, curve, fixed: false, aws, ring, key, msg, sig }
}

fn real_cases() -> Vec<Case> {
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
            out.push(link(
                format!("document {d}, link {i}"),
                child.signature_alg,
                issuer.curve,
                issuer.public_key.clone(),
                child.tbs_der.clone(),
                child.signature.clone(),
            ));
        }
        let leaf = chain.last().expect("a leaf");
        out.push(Case {
            what: format!("document {d}, COSE signature"),
            curve: leaf.curve,
            fixed: true,
            aws: COSE_ALGORITHM,
            ring: &ring::signature::ECDSA_P384_SHA384_FIXED,
            key: leaf.public_key.clone(),
            msg: sig_structure(&cose.protected, &cose.payload).expect("a Sig_structure"),
            sig: cose.signature.clone(),
        });
    }
    out
}

/// Certificate-link signatures with the algorithms the real documents do not use, from
/// fixed keys (RFC 6979: the same bytes every run).
fn made_up_cases() -> Vec<Case> {
    use p384::ecdsa::signature::hazmat::PrehashSigner;
    use sha2::{Digest, Sha256, Sha384};
    let msg = b"a TBSCertificate stand-in".to_vec();
    let k256 = p256::ecdsa::SigningKey::from_slice(&[0x21; 32]).expect("a P-256 key");
    let k384 = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).expect("a P-384 key");
    let pub256 = k256.verifying_key().to_encoded_point(false).as_bytes().to_vec();
    let pub384 = k384.verifying_key().to_encoded_point(false).as_bytes().to_vec();
    let s256_256: p256::ecdsa::Signature = k256.sign_prehash(&Sha256::digest(&msg)).expect("sign");
    let s256_384: p256::ecdsa::Signature = k256.sign_prehash(&Sha384::digest(&msg)).expect("sign");
    let s384_256: p384::ecdsa::Signature = k384.sign_prehash(&Sha256::digest(&msg)).expect("sign");
    vec![
        link(
            "P-256, SHA-256".into(),
            OID_ECDSA_SHA256,
            Curve::P256,
            pub256.clone(),
            msg.clone(),
            s256_256.to_der().as_bytes().to_vec(),
        ),
        link(
            "P-256, SHA-384".into(),
            OID_ECDSA_SHA384,
            Curve::P256,
            pub256,
            msg.clone(),
            s256_384.to_der().as_bytes().to_vec(),
        ),
        link(
            "P-384, SHA-256".into(),
            OID_ECDSA_SHA256,
            Curve::P384,
            pub384,
            msg,
            s384_256.to_der().as_bytes().to_vec(),
        ),
    ]
}

fn cases() -> Vec<Case> {
    let mut all = real_cases();
    all.extend(made_up_cases());
    assert_eq!(all.len(), 13, "two documents' four links and COSE signatures, three made-up links");
    all
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

/// One mutation of `b`, chosen by `r`: most keep the length (a fixed-width signature
/// refused for its length alone tests little).
fn mutate(r: &mut Rng, b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    match r.below(10) {
        0..=2 if !v.is_empty() => {
            let i = r.below(v.len());
            v[i] ^= 1 << r.below(8);
        }
        3..=4 if !v.is_empty() => {
            let i = r.below(v.len());
            v[i] = [0x00, 0xff, 0x80, 0x7f, 0x01][r.below(5)];
        }
        5 => {
            let i = r.below(v.len() + 1);
            v.insert(i, r.next() as u8);
        }
        6 if !v.is_empty() => {
            v.remove(r.below(v.len()));
        }
        7 => v.truncate(r.below(v.len())),
        // DER: the SEQUENCE length in the long form (not minimal).
        8 if v.len() > 2 && v[0] == 0x30 && v[1] < 0x80 => v.insert(1, 0x81),
        _ => v.push(0),
    }
    v
}

#[test]
fn the_verifier_and_ring_agree_on_every_signature_and_its_mutations() {
    let mut r = Rng(0x5eed_b21d_1e00_0001);
    let (mut refused, mut unchanged) = (0u64, 0u64);
    for c in &cases() {
        assert_eq!(verdicts(c, &c.key, &c.msg, &c.sig), (true, true), "{}: the genuine signature", c.what);
        for i in 0..600 {
            let (key, msg, sig) = match i % 6 {
                0 => (c.key.clone(), mutate(&mut r, &c.msg), c.sig.clone()),
                1 => (mutate(&mut r, &c.key), c.msg.clone(), c.sig.clone()),
                _ => (c.key.clone(), c.msg.clone(), mutate(&mut r, &c.sig)),
            };
            let (aws, ring) = verdicts(c, &key, &msg, &sig);
            assert_eq!(aws, ring, "{}, mutation {i}: verifier {aws}, ring {ring}: sig {}", c.what, hex::encode(&sig));
            let same = (&key, &msg, &sig) == (&c.key, &c.msg, &c.sig);
            // The only input that verifies is the genuine one (a mutation that changed
            // nothing, as writing a byte's own value back).
            assert_eq!(aws, same, "{}, mutation {i}: accepted a changed input", c.what);
            unchanged += same as u64;
            refused += !aws as u64;
        }
    }
    assert!(refused > 7000 && unchanged < 100, "refused {refused}, unchanged {unchanged}");
}

/// Big-endian `a - b` (a ≥ b), at `a`'s width.
fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let bi = b.len().checked_sub(a.len() - i).map_or(0, |j| b[j]) as i16;
        let mut d = a[i] as i16 - bi - borrow;
        borrow = (d < 0) as i16;
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "a < b");
    out
}

/// Big-endian `a + b` (same width), one byte wider.
fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len() + 1];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let t = a[i] as u16 + b[i] as u16 + carry;
        out[i + 1] = t as u8;
        carry = t >> 8;
    }
    out[0] = carry as u8;
    out
}

/// `(r, s)` of a DER or fixed-width signature, at the curve's width.
fn scalars(c: &Case) -> (Vec<u8>, Vec<u8>) {
    let w = c.curve.point_len() / 2;
    let pad = |x: &[u8]| {
        let x = &x[x.iter().take_while(|&&b| b == 0).count()..];
        let mut v = vec![0u8; w - x.len()];
        v.extend_from_slice(x);
        v
    };
    if c.fixed {
        return (c.sig[..w].to_vec(), c.sig[w..].to_vec());
    }
    let s = &c.sig;
    assert!(s[0] == 0x30 && s[1] < 0x80 && s[2] == 0x02, "{}: a short-form DER signature", c.what);
    let lr = s[3] as usize;
    let r = &s[4..4 + lr];
    assert_eq!(s[4 + lr], 0x02);
    let ls = s[5 + lr] as usize;
    (pad(r), pad(&s[6 + lr..6 + lr + ls]))
}

/// The signature with scalars `r`, `s` in the case's format (minimal DER integers).
fn encode(c: &Case, r: &[u8], s: &[u8]) -> Vec<u8> {
    if c.fixed {
        return [r, s].concat();
    }
    let int = |x: &[u8]| {
        let x = &x[x.iter().take_while(|&&b| b == 0).count().min(x.len().saturating_sub(1))..];
        let mut v = vec![0x02];
        let lead = x.first().is_some_and(|b| b & 0x80 != 0);
        v.push((x.len() + lead as usize) as u8);
        if lead {
            v.push(0);
        }
        v.extend_from_slice(x);
        v
    };
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[test]
fn the_verifier_and_ring_agree_on_edge_scalars() {
    for c in &cases() {
        let (n, w) = match c.curve {
            Curve::P256 => (hex::decode(N_P256).unwrap(), 32),
            Curve::P384 => (hex::decode(N_P384).unwrap(), 48),
        };
        let (r, s) = scalars(c);
        assert_eq!(encode(c, &r, &s), c.sig, "{}: the encoding round-trips", c.what);
        // (r, n − s) is the other valid signature for the same nonce: neither library asks
        // for a low s (that rule is Ethereum's, not ECDSA's).
        assert_eq!(verdicts(c, &c.key, &c.msg, &encode(c, &r, &sub(&n, &s))), (true, true), "{}: high-S twin", c.what);
        let (zero, one, ones) = (vec![0u8; w], [vec![0u8; w - 1], vec![1]].concat(), vec![0xffu8; w]);
        let n_minus_1 = sub(&n, &one);
        for (name, r2, s2) in [
            ("r = 0", &zero, &s),
            ("s = 0", &r, &zero),
            ("r = 1", &one, &s),
            ("s = 1", &r, &one),
            ("r = n - 1", &n_minus_1, &s),
            ("s = n - 1", &r, &n_minus_1),
            ("r = n", &n, &s),
            ("s = n", &r, &n),
            ("r = 2^k - 1", &ones, &s),
            ("s = 2^k - 1", &r, &ones),
            ("r and s swapped", &s, &r),
        ] {
            let v = verdicts(c, &c.key, &c.msg, &encode(c, r2, s2));
            assert_eq!(v, (false, false), "{}: {name}", c.what);
        }
        // r + n and s + n are r and s again modulo n: only a range check refuses them (DER
        // only: a fixed-width field has no room for them).
        if !c.fixed {
            for (name, r2, s2) in [("r + n", add(&r, &n), s.clone()), ("s + n", r.clone(), add(&s, &n))] {
                let v = verdicts(c, &c.key, &c.msg, &encode(c, &r2, &s2));
                assert_eq!(v, (false, false), "{}: {name}", c.what);
            }
        }
    }
}

/// The DER prefix of a SubjectPublicKeyInfo holding an uncompressed point of `curve`.
fn spki_prefix(curve: Curve) -> Vec<u8> {
    hex::decode(match curve {
        Curve::P256 => "3059301306072a8648ce3d020106082a8648ce3d030107034200",
        Curve::P384 => "3076301006072a8648ce3d020106052b81040022036200",
    })
    .unwrap()
}

/// Why the verifier checks a key's encoding itself: AWS-LC, given a key alone, also takes it
/// compressed, hybrid or as a whole SubjectPublicKeyInfo; ring takes none of those, and
/// neither does the verifier. Keys at infinity, with zero coordinates or a coordinate of p
/// (not on the curve) are refused by all.
#[test]
fn the_verifier_and_ring_agree_on_key_encodings() {
    for c in &cases() {
        let w = c.curve.point_len() / 2;
        let (x, y) = (&c.key[1..1 + w], &c.key[1 + w..]);
        let parity = y[w - 1] & 1;
        let p = hex::decode(match c.curve {
            Curve::P256 => P_P256,
            Curve::P384 => P_P384,
        })
        .unwrap();
        let compressed = [&[0x02 | parity][..], x].concat();
        let hybrid = [&[0x06 | parity][..], x, y].concat();
        let spki = [spki_prefix(c.curve), c.key.clone()].concat();
        for (name, key) in [("compressed", &compressed), ("hybrid", &hybrid), ("SubjectPublicKeyInfo", &spki)] {
            let alone = aws_lc_rs::signature::UnparsedPublicKey::new(c.aws, key).verify(&c.msg, &c.sig).is_ok();
            // A canary, not a requirement: if AWS-LC stops taking these, the verifier's own
            // rule still refuses them (the next assertion) and this one can go.
            assert!(alone, "{}: AWS-LC alone takes the key {name}", c.what);
            assert_eq!(verdicts(c, key, &c.msg, &c.sig), (false, false), "{}: key {name}", c.what);
        }
        let infinity = vec![0u8];
        let zeros = [vec![0x04], vec![0u8; 2 * w]].concat();
        let x_is_p = [&[0x04][..], &p, y].concat();
        let y_is_p = [&[0x04][..], x, &p].concat();
        let empty = Vec::new();
        for (name, key) in
            [("infinity", &infinity), ("04 ‖ 0", &zeros), ("x = p", &x_is_p), ("y = p", &y_is_p), ("empty", &empty)]
        {
            let alone = aws_lc_rs::signature::UnparsedPublicKey::new(c.aws, key).verify(&c.msg, &c.sig).is_ok();
            assert!(!alone, "{}: AWS-LC refuses the key {name}", c.what);
            assert_eq!(verdicts(c, key, &c.msg, &c.sig), (false, false), "{}: key {name}", c.what);
        }
    }
}

/// The key rule is applied where keys come from: a real certificate whose key's first byte
/// is changed (the DER stays canonical; only that byte differs) is refused by `parse_cert`,
/// before any signature is checked.
#[test]
fn parse_cert_takes_only_uncompressed_points() {
    let cose = parse_cose_sign1(DOCUMENTS[0]).expect("a COSE_Sign1");
    let raw = parse_payload(&cose.payload).expect("a payload");
    let leaf = parse_cert(CertRole::Leaf, &raw.certificate).expect("the leaf certificate");
    let at = raw
        .certificate
        .windows(leaf.public_key.len())
        .position(|w| w == leaf.public_key.as_slice())
        .expect("the key in the DER");
    for prefix in [0x02, 0x03, 0x06, 0x07, 0x00, 0x05] {
        let mut der = raw.certificate.clone();
        der[at] = prefix;
        match parse_cert(CertRole::Leaf, &der) {
            Err(VerifyError::InvalidCertificate { reason, .. }) => {
                assert!(
                    reason.contains("not an uncompressed point") && reason.contains(&format!("starting {prefix:02x}"))
                )
            }
            other => panic!("prefix {prefix:02x}: {other:?}"),
        }
    }
}
