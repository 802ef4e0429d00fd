//! The cache changes no verification result: real AWS documents and synthetic chains,
//! each verified without a cache and with a warm one. Cached leaf links never spare the
//! COSE signature, never vouch for a leaf under another issuer, and are only made by
//! documents that passed every check.

use std::str::FromStr;
use std::time::Duration;

use ciborium::value::Value;
use der::asn1::UtcTime;
use der::{Decode, Encode};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use der::asn1::{BitString, OctetString};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use x509_cert::spki::ObjectIdentifier;

use super::CertCache;
use crate::cose;
use crate::verify::{verify, verify_uncached, verify_with_cache, VerifiedDocument, VerifyError, VerifyOptions};
use crate::CertRole;

const SAMPLE_2024: &[u8] = include_bytes!("../../../tests/fixtures/nitro/nitro_sample_2024.cbor");
const DEBUG_2022: &[u8] = include_bytes!("../../../tests/fixtures/nitro/nitro_debug_2022.cbor");
const SAMPLE_TS: u64 = 1_708_930_921;
const DEBUG_TS: u64 = 1_665_582_606;
const SAMPLE_PCR0: &str =
    "17bf8f048519797be90497001a7559a3d555395937117d76f8baaedf56ca6d97952de79479bc0c76e5d176d20f663790";

type Outcome = Result<VerifiedDocument, VerifyError>;

/// Verifies `doc` without a cache, then twice with `cache` (the first may fill it, the
/// second uses what is there): all three results must be equal. Returns the result.
fn same(doc: &[u8], options: &VerifyOptions, cache: &CertCache) -> Outcome {
    let uncached = verify_uncached(doc, options);
    let first = verify_with_cache(doc, options, cache);
    let second = verify_with_cache(doc, options, cache);
    assert_eq!(first, uncached, "cache (first) differs from uncached");
    assert_eq!(second, uncached, "cache (warm) differs from uncached");
    uncached
}

fn sample_options(at: u64) -> VerifyOptions {
    VerifyOptions::at(at).with_pcr(0, hex::decode(SAMPLE_PCR0).unwrap())
}

/// A cache in which the sample's three CA links and its leaf link are verified.
fn warm_sample_cache() -> CertCache {
    let cache = CertCache::default();
    verify_with_cache(SAMPLE_2024, &sample_options(SAMPLE_TS), &cache).expect("sample verifies");
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.stats().leaf_entries, 1);
    cache
}

/// `doc` with its payload field `name` set to `value`, signed by `key`.
fn resigned(doc: &[u8], name: &str, value: Value, key: &SigningKey) -> Vec<u8> {
    let mut map = payload_map(&cose_parts(doc).1);
    set_field(&mut map, name, value);
    sign_document(key, &cose::encode_cbor(&Value::Map(map)).unwrap())
}

fn cose_parts(doc: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let c = cose::parse_cose_sign1(doc).unwrap();
    (c.protected, c.payload, c.signature)
}

fn payload_map(payload: &[u8]) -> Vec<(Value, Value)> {
    match cose::decode_cbor(payload, "payload").unwrap() {
        Value::Map(m) => m,
        _ => panic!("payload is not a map"),
    }
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> &'a Value {
    &map.iter().find(|(k, _)| k.as_text() == Some(name)).unwrap().1
}

fn set_field(map: &mut [(Value, Value)], name: &str, value: Value) {
    map.iter_mut().find(|(k, _)| k.as_text() == Some(name)).unwrap().1 = value;
}

fn sign_document(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let protected = cose::es384_protected_header().unwrap();
    let to_sign = cose::sig_structure(&protected, payload).unwrap();
    let sig: Signature = key.sign(&to_sign);
    cose::encode_cose_sign1(&protected, payload, &sig.to_bytes(), false).unwrap()
}

// --- A synthetic Nitro-like PKI: root → regional → zonal → instance → leaf. ---

const T0: u64 = 1_800_000_000;

fn key(k: u8) -> SigningKey {
    SigningKey::from_slice(&[k; 48]).unwrap()
}

fn time(secs: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
}

fn name(cn: &str) -> Name {
    Name::from_str(&format!("CN={cn},O=Bridle test,C=US")).unwrap()
}

/// A certificate for `subject_key` named `subject`, issued by `issuer_key` (named
/// `issuer`; the same for a root), valid `[not_before, not_after]`.
fn cert(
    profile: Profile,
    subject: &str,
    subject_key: &SigningKey,
    issuer_key: &SigningKey,
    not_before: u64,
    not_after: u64,
) -> Vec<u8> {
    let serial = SerialNumber::new(&[0x42, subject.len() as u8, not_before as u8]).unwrap();
    let validity = Validity { not_before: time(not_before), not_after: time(not_after) };
    let spki = SubjectPublicKeyInfoOwned::from_key(*subject_key.verifying_key()).unwrap();
    let builder = CertificateBuilder::new(profile, serial, validity, name(subject), spki, issuer_key).unwrap();
    builder.build::<DerSignature>().unwrap().to_der().unwrap()
}

fn sub_ca(subject: &str, key: &SigningKey, issuer: &str, issuer_key: &SigningKey, nb: u64, na: u64) -> Vec<u8> {
    let profile = Profile::SubCA { issuer: name(issuer), path_len_constraint: None };
    cert(profile, subject, key, issuer_key, nb, na)
}

fn leaf_cert(subject: &str, key: &SigningKey, issuer: Name, issuer_key: &SigningKey, nb: u64, na: u64) -> Vec<u8> {
    let profile = Profile::Leaf { issuer, enable_key_agreement: false, enable_key_encipherment: false };
    cert(profile, subject, key, issuer_key, nb, na)
}

const PCR0: [u8; 48] = [7; 48];

/// A document with `cabundle`, signed by `leaf_key` whose certificate is `leaf`.
fn document(leaf_key: &SigningKey, leaf: Vec<u8>, cabundle: Vec<Vec<u8>>, timestamp_ms: u64) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.to_string());
    let pcrs = (0u64..3).map(|i| (Value::Integer(i.into()), Value::Bytes(PCR0.to_vec()))).collect();
    let payload = Value::Map(vec![
        (text("module_id"), text("i-test-enc0")),
        (text("digest"), text("SHA384")),
        (text("timestamp"), Value::Integer(timestamp_ms.into())),
        (text("pcrs"), Value::Map(pcrs)),
        (text("certificate"), Value::Bytes(leaf)),
        (text("cabundle"), Value::Array(cabundle.into_iter().map(Value::Bytes).collect())),
        (text("public_key"), Value::Null),
        (text("user_data"), Value::Null),
        (text("nonce"), Value::Null),
    ]);
    sign_document(leaf_key, &cose::encode_cbor(&payload).unwrap())
}

struct Pki {
    root: Vec<u8>,
    regional: Vec<u8>,
    zonal: Vec<u8>,
    instance: Vec<u8>,
    regional_key: SigningKey,
    zonal_key: SigningKey,
    instance_key: SigningKey,
}

impl Pki {
    /// Root (valid T0 ± 10^8 s), regional and instance as wide, zonal valid
    /// `zonal_validity`; keys `key(n)`, `key(n + 10)`, `key(n + 20)`, `key(n + 30)`.
    fn new(n: u8, zonal_validity: (u64, u64)) -> Self {
        let (wide_nb, wide_na) = (T0 - 100_000_000, T0 + 100_000_000);
        let root_k = key(n);
        let (regional_k, zonal_k, instance_k) = (key(n + 10), key(n + 20), key(n + 30));
        let root = cert(Profile::Root, "root", &root_k, &root_k, wide_nb, wide_na);
        let regional = sub_ca("regional", &regional_k, "root", &root_k, wide_nb, wide_na);
        let (znb, zna) = zonal_validity;
        let zonal = sub_ca("zonal", &zonal_k, "regional", &regional_k, znb, zna);
        let instance = sub_ca("instance", &instance_k, "zonal", &zonal_k, wide_nb, wide_na);
        Pki { root, regional, zonal, instance, regional_key: regional_k, zonal_key: zonal_k, instance_key: instance_k }
    }

    fn cabundle(&self) -> Vec<Vec<u8>> {
        vec![self.root.clone(), self.regional.clone(), self.zonal.clone(), self.instance.clone()]
    }

    /// The leaf certificate of key `key(leaf_key)` under the instance certificate,
    /// valid T0 ± 1000 s.
    fn leaf(&self, leaf_key: u8) -> Vec<u8> {
        leaf_cert("leaf", &key(leaf_key), name("instance"), &self.instance_key, T0 - 1_000, T0 + 1_000)
    }

    /// A document by the leaf of key `key(leaf_key)` under the instance certificate.
    fn document(&self, leaf_key: u8, timestamp_ms: u64) -> Vec<u8> {
        document(&key(leaf_key), self.leaf(leaf_key), self.cabundle(), timestamp_ms)
    }

    fn options(&self, at: u64) -> VerifyOptions {
        VerifyOptions::at(at).with_root_der(self.root.clone()).with_pcr(0, PCR0.to_vec())
    }
}

// --- Real AWS documents. ---

#[test]
fn real_documents_same_with_and_without_cache() {
    let cache = warm_sample_cache();
    let debug_opts = |at| VerifyOptions::at(at).with_any_image(true);
    let cases: Vec<(&[u8], VerifyOptions)> = vec![
        (SAMPLE_2024, sample_options(SAMPLE_TS)),
        (SAMPLE_2024, sample_options(SAMPLE_TS).with_public_key(vec![1, 2])),
        (SAMPLE_2024, sample_options(SAMPLE_TS - 1)),
        (SAMPLE_2024, sample_options(SAMPLE_TS + 3 * 3600)),
        (SAMPLE_2024, sample_options(1_708_930_773 - 1)),
        (SAMPLE_2024, sample_options(1_708_930_773)),
        (SAMPLE_2024, sample_options(SAMPLE_TS).with_root_der(crate::MockCa::generate().unwrap().root_der().to_vec())),
        (DEBUG_2022, debug_opts(DEBUG_TS)),
        (DEBUG_2022, debug_opts(DEBUG_TS).with_allow_debug(true)),
        (DEBUG_2022, debug_opts(DEBUG_TS + 3 * 3600).with_allow_debug(true)),
        (DEBUG_2022, debug_opts(SAMPLE_TS).with_allow_debug(true)),
        (DEBUG_2022, debug_opts(DEBUG_TS).with_allow_debug(true).with_pcr(0, vec![0; 48])),
    ];
    let mut ok = 0;
    for (doc, options) in &cases {
        if same(doc, options, &cache).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "the sample at its timestamp and the debug document with allow_debug (twice)");
    // Both documents' chains and leaves are cached, and were used.
    assert_eq!(cache.len(), 8);
    assert_eq!(cache.stats().leaf_entries, 2);
    assert!(cache.stats().hits >= 20, "{:?}", cache.stats());
    assert!(cache.stats().leaf_hits >= 10, "{:?}", cache.stats());

    // Every byte of the sample's cabundle flipped in turn: same result either way.
    let (_, payload, _) = cose_parts(SAMPLE_2024);
    let map = payload_map(&payload);
    let cabundle: Vec<Vec<u8>> = match field(&map, "cabundle") {
        Value::Array(a) => a.iter().map(|v| v.as_bytes().unwrap().clone()).collect(),
        _ => panic!(),
    };
    for i in 1..cabundle.len() {
        for pos in (0..cabundle[i].len()).step_by(37) {
            let mut bundle = cabundle.clone();
            bundle[i][pos] ^= 0x01;
            let mut m = map.clone();
            set_field(&mut m, "cabundle", Value::Array(bundle.into_iter().map(Value::Bytes).collect()));
            // The COSE signature no longer matches, but the chain is checked first.
            let doc = cose::encode_cose_sign1(
                &cose_parts(SAMPLE_2024).0,
                &cose::encode_cbor(&Value::Map(m)).unwrap(),
                &cose_parts(SAMPLE_2024).2,
                false,
            )
            .unwrap();
            assert!(same(&doc, &sample_options(SAMPLE_TS), &cache).is_err());
        }
    }
    // Every byte of the sample's leaf certificate flipped in turn: same result either
    // way (the cached leaf link is for the genuine bytes only).
    let leaf = field(&map, "certificate").as_bytes().unwrap().clone();
    let leaf_hits = cache.stats().leaf_hits;
    for pos in (0..leaf.len()).step_by(23) {
        let mut flipped = leaf.clone();
        flipped[pos] ^= 0x01;
        let mut m = map.clone();
        set_field(&mut m, "certificate", Value::Bytes(flipped));
        let doc = cose::encode_cose_sign1(
            &cose_parts(SAMPLE_2024).0,
            &cose::encode_cbor(&Value::Map(m)).unwrap(),
            &cose_parts(SAMPLE_2024).2,
            false,
        )
        .unwrap();
        assert!(same(&doc, &sample_options(SAMPLE_TS), &cache).is_err());
    }
    assert_eq!(cache.stats().leaf_hits, leaf_hits, "no altered leaf answered by the cache");
    assert_eq!(cache.len(), 8, "nothing added by the refused documents");
}

#[test]
fn cached_chain_still_rejects_a_bad_cose_signature() {
    let cache = warm_sample_cache();
    let (protected, payload, mut signature) = cose_parts(SAMPLE_2024);
    signature[10] ^= 0x80;
    let doc = cose::encode_cose_sign1(&protected, &payload, &signature, false).unwrap();
    let before = cache.stats();
    let err = same(&doc, &sample_options(SAMPLE_TS), &cache).unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
    assert_eq!(cache.stats().hits, before.hits + 8, "the chain, leaf included, came from the cache");
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits + 2);
    // A payload changed under the genuine signature: refused too.
    let mut map = payload_map(&payload);
    set_field(&mut map, "module_id", Value::Text("i-0df237f0418feb41f-enc018de4b6f5d5e5e6".to_string()));
    let doc =
        cose::encode_cose_sign1(&protected, &cose::encode_cbor(&Value::Map(map)).unwrap(), &signature, false).unwrap();
    assert!(matches!(same(&doc, &sample_options(SAMPLE_TS), &cache), Err(VerifyError::SignatureInvalid { .. })));
    assert_eq!(cache.len(), 4, "nothing added");
}

#[test]
fn cached_chain_still_rejects_a_leaf_its_issuer_did_not_sign() {
    let cache = warm_sample_cache();
    let (_, payload, _) = cose_parts(SAMPLE_2024);
    let map = payload_map(&payload);
    let cabundle: Vec<Vec<u8>> = match field(&map, "cabundle") {
        Value::Array(a) => a.iter().map(|v| v.as_bytes().unwrap().clone()).collect(),
        _ => panic!(),
    };
    // The last certificate of the bundle (the instance certificate) and the one above it.
    for depth in [cabundle.len(), cabundle.len() - 1] {
        let bundle = cabundle[..depth].to_vec();
        let issuer = Certificate::from_der(bundle.last().unwrap()).unwrap().tbs_certificate.subject;
        // A leaf naming the cached certificate as its issuer, signed by another key.
        let k = key(79);
        let forged = leaf_cert("forged leaf", &k, issuer, &key(80), SAMPLE_TS - 600, SAMPLE_TS + 600);
        let mut m = map.clone();
        set_field(&mut m, "certificate", Value::Bytes(forged));
        set_field(&mut m, "cabundle", Value::Array(bundle.into_iter().map(Value::Bytes).collect()));
        let doc = sign_document(&k, &cose::encode_cbor(&Value::Map(m)).unwrap());
        let hits = cache.stats().hits;
        let err = same(&doc, &sample_options(SAMPLE_TS), &cache).unwrap_err();
        assert!(matches!(err, VerifyError::CertificateSignature { cert: CertRole::Leaf, .. }), "{err}");
        assert_eq!(cache.stats().hits, hits + 2 * (depth as u64 - 1), "the CA links came from the cache");
    }
    assert_eq!(cache.len(), 4, "nothing added by the refused documents");
}

#[test]
fn cache_carries_no_trust_from_one_root_to_another() {
    let cache = CertCache::default();
    let a = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let doc = a.document(71, T0 * 1000);
    same(&doc, &a.options(T0), &cache).expect("valid under root A");
    assert_eq!(cache.len(), 4);

    // Root B: the same name and validity as A, another key. The bundle (A's chain)
    // is refused under B with or without A's links in the cache.
    let b_key = key(2);
    let root_b = cert(Profile::Root, "root", &b_key, &b_key, T0 - 100_000_000, T0 + 100_000_000);
    let options_b = a.options(T0).with_root_der(root_b.clone());
    let err = same(&doc, &options_b, &cache).unwrap_err();
    assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");

    // B's own chain with the very same regional, zonal and instance certificates is
    // refused under A too (they were cached as issued by A, not by B).
    let mut bundle = a.cabundle();
    bundle[0] = root_b.clone();
    let k = key(72);
    let leaf = leaf_cert("leaf", &k, name("instance"), &a.instance_key, T0 - 1_000, T0 + 1_000);
    let doc_b = document(&k, leaf, bundle, T0 * 1000);
    assert!(matches!(same(&doc_b, &options_b, &cache), Err(VerifyError::UntrustedRoot { .. })));
    // Another regional certificate under B with A's subject key does verify under B,
    // and its link is cached under B, apart from A's.
    let regional_b = sub_ca("regional", &a.regional_key, "root", &b_key, T0 - 100_000_000, T0 + 100_000_000);
    let leaf = leaf_cert("leaf", &k, name("instance"), &a.instance_key, T0 - 1_000, T0 + 1_000);
    let bundle = vec![root_b, regional_b, a.zonal.clone(), a.instance.clone()];
    let doc_b = document(&k, leaf, bundle, T0 * 1000);
    same(&doc_b, &options_b, &cache).expect("valid under root B");
    // New links: regional_b under B, the zonal certificate under regional_b and the new
    // leaf; the instance certificate under the zonal one is the same link as in A's chain.
    assert_eq!(cache.len(), 7);
    // A's documents are still refused under B.
    assert!(matches!(same(&doc, &options_b, &cache), Err(VerifyError::UntrustedRoot { .. })));
}

#[test]
fn cached_links_outside_their_validity_fail_as_uncached() {
    let (znb, zna) = (T0 - 100, T0 + 100);
    let pki = Pki::new(1, (znb, zna));
    let cache = CertCache::default();
    let doc = pki.document(73, (T0 - 500) * 1000);
    same(&doc, &pki.options(T0), &cache).expect("valid at T0");
    assert_eq!(cache.len(), 4);

    // Inside the zonal certificate's validity: every link from the cache.
    let before = cache.stats();
    same(&doc, &pki.options(zna), &cache).expect("valid at the zonal notAfter");
    assert_eq!(cache.stats().hits, before.hits + 8);

    // After the zonal notAfter: the zonal, instance and leaf links (whose windows end
    // there) are not used, and the result is the uncached one.
    let before = cache.stats();
    let err = same(&doc, &pki.options(zna + 1), &cache).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateExpired { cert: CertRole::CaBundle(2), not_after, .. } if not_after == zna),
        "{err}"
    );
    assert_eq!(cache.stats().hits, before.hits + 2, "only the regional link, twice");
    assert_eq!(cache.stats().misses, before.misses + 6);
    assert_eq!(cache.stats().leaf_misses, before.leaf_misses + 2);

    // Before the zonal notBefore.
    let err = same(&doc, &pki.options(znb - 1), &cache).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateNotYetValid { cert: CertRole::CaBundle(2), not_before, .. } if not_before == znb),
        "{err}"
    );
    assert_eq!(cache.len(), 4, "failed verifications add nothing");
}

#[test]
fn structural_checks_still_apply_to_cached_certificates() {
    // A mock chain: root → intermediate (pathLenConstraint 0) → leaf.
    let ca = crate::MockCa::generate().unwrap();
    let nsm = crate::MockNsm::with_ca(&ca, crate::ImageMeasurement::mock_default()).unwrap();
    let options = VerifyOptions::now(300).with_root_der(ca.root_der().to_vec()).with_any_image(true);
    let cache = CertCache::default();
    let doc = crate::NsmProvider::attestation(&nsm, None, None, None).unwrap();
    same(&doc, &options, &cache).expect("mock document");
    assert_eq!(cache.len(), 2, "the intermediate and the leaf");
    // The cached intermediate used one level higher, above another CA: its
    // pathLenConstraint is exceeded, cached or not.
    let inter = Certificate::from_der(ca.intermediate_der()).unwrap().tbs_certificate.subject;
    let (sub_k, k) = (key(76), key(77));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sub = cert(
        Profile::SubCA { issuer: inter.clone(), path_len_constraint: None },
        "sub",
        &sub_k,
        &key(78), // not the intermediate's key either: the path length is checked first
        now - 3600,
        now + 3600,
    );
    let leaf = leaf_cert("leaf", &k, name("sub"), &sub_k, now - 3600, now + 3600);
    let payload = payload_map(&cose_parts(&doc).1);
    let mut m = payload;
    set_field(&mut m, "certificate", Value::Bytes(leaf));
    set_field(
        &mut m,
        "cabundle",
        Value::Array(vec![
            Value::Bytes(ca.root_der().to_vec()),
            Value::Bytes(ca.intermediate_der().to_vec()),
            Value::Bytes(sub),
        ]),
    );
    let forged = sign_document(&k, &cose::encode_cbor(&Value::Map(m)).unwrap());
    let hits = cache.stats().hits;
    let err = same(&forged, &options, &cache).unwrap_err();
    assert!(matches!(err, VerifyError::PathLengthExceeded { cert: CertRole::CaBundle(1), max: 0, actual: 1 }), "{err}");
    assert_eq!(cache.stats().hits, hits + 2, "the intermediate came from the cache");
}

#[test]
fn capacity_bounds_the_cache_and_evicts_the_least_recently_used() {
    let none = CertCache::new(0);
    same(SAMPLE_2024, &sample_options(SAMPLE_TS), &none).expect("verifies without caching");
    assert!(none.is_empty());
    assert_eq!(none.stats().hits, 0);

    let small = CertCache::new(5);
    let a = Pki::new(1, (T0 - 100, T0 + 100));
    let b = Pki::new(2, (T0 - 100, T0 + 100));
    let doc_a = a.document(74, T0 * 1000);
    let doc_b = b.document(75, T0 * 1000);
    verify_with_cache(&doc_a, &a.options(T0), &small).unwrap();
    assert_eq!(small.len(), 4);
    // B shares no link with A (another root key, so other certificates all the way
    // down): 4 more links (3 CA, 1 leaf), 3 of A's evicted.
    verify_with_cache(&doc_b, &b.options(T0), &small).unwrap();
    assert_eq!(small.len(), 5);
    assert_eq!(small.stats().evictions, 3);
    // B's links are the most recent: all held.
    let hits = small.stats().hits;
    verify_with_cache(&doc_b, &b.options(T0), &small).unwrap();
    assert_eq!(small.stats().hits, hits + 4);
    // A's still verify, from what is left, and the same.
    same(&doc_a, &a.options(T0), &small).expect("A still verifies");
    small.clear();
    assert!(small.is_empty());
}

#[test]
fn new_leaves_never_push_out_the_ca_links_within_their_share() {
    // 32 links: 8 kept for CA links, 24 for leaves.
    let cache = CertCache::new(32);
    let a = Pki::new(1, (T0 - 100, T0 + 100));
    let b = Pki::new(2, (T0 - 100, T0 + 100));
    verify_with_cache(&a.document(1, T0 * 1000), &a.options(T0), &cache).unwrap();
    // Many enclaves of another chain: their leaves (and its 3 CA links, used by each) are
    // all more recent than A's links. Plain least-recently-used eviction took A's CA links.
    for leaf in 10..60 {
        verify_with_cache(&b.document(leaf, T0 * 1000), &b.options(T0), &cache).unwrap();
    }
    assert_eq!(cache.len(), 32);
    assert_eq!(cache.stats().leaf_entries, 26, "6 CA links and 26 leaves: within the CA share, leaves evict leaves");
    let before = cache.stats();
    same(&a.document(1, T0 * 1000), &a.options(T0), &cache).expect("A still verifies");
    let after = cache.stats();
    // `same` verifies twice with the cache: A's three CA links hit both times; its leaf,
    // pushed out by newer leaves, misses once and is back for the second.
    assert_eq!(after.hits - after.leaf_hits - (before.hits - before.leaf_hits), 6, "A's CA links stayed");
    assert_eq!(after.leaf_misses, before.leaf_misses + 1);
}

#[test]
fn one_cache_shared_between_threads() {
    let cache = CertCache::default();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    verify_with_cache(SAMPLE_2024, &sample_options(SAMPLE_TS), &cache).expect("verifies");
                }
            });
        }
    });
    assert_eq!(cache.len(), 4);
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, 4 * 3 * 4);
    assert_eq!(stats.leaf_hits + stats.leaf_misses, 4 * 3);
}

#[test]
fn verify_uses_the_process_wide_cache() {
    verify(SAMPLE_2024, &sample_options(SAMPLE_TS)).expect("sample verifies");
    let hits = CertCache::global().stats().hits;
    assert_eq!(
        verify(SAMPLE_2024, &sample_options(SAMPLE_TS)),
        verify_uncached(SAMPLE_2024, &sample_options(SAMPLE_TS))
    );
    assert!(CertCache::global().stats().hits >= hits + 4);
    assert!(CertCache::global().len() >= 4);
}

// --- Leaf links. ---

#[test]
fn cached_leaf_does_not_spare_the_cose_signature() {
    let pki = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let cache = CertCache::default();
    let doc = pki.document(81, T0 * 1000);
    same(&doc, &pki.options(T0), &cache).expect("valid");
    assert_eq!(cache.stats().leaf_entries, 1);

    // The same leaf certificate, another payload (a nonce), signed by another key:
    // the leaf link comes from the cache, the COSE signature is refused.
    let before = cache.stats();
    let forged = resigned(&doc, "nonce", Value::Bytes(b"another document".to_vec()), &key(82));
    let err = same(&forged, &pki.options(T0), &cache).unwrap_err();
    assert!(matches!(err, VerifyError::SignatureInvalid { .. }), "{err}");
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits + 2, "the leaf link came from the cache");
    // The genuine document's signature over another payload: refused too.
    let (protected, _, signature) = cose_parts(&doc);
    let (_, other_payload, _) = cose_parts(&forged);
    let swapped = cose::encode_cose_sign1(&protected, &other_payload, &signature, false).unwrap();
    assert!(matches!(same(&swapped, &pki.options(T0), &cache), Err(VerifyError::SignatureInvalid { .. })));
    // A new document by the genuine key with the same leaf: accepted, leaf from the cache.
    let next = resigned(&doc, "nonce", Value::Bytes(b"next document".to_vec()), &key(81));
    let before = cache.stats();
    same(&next, &pki.options(T0), &cache).expect("the enclave's next document");
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits + 2);
    assert_eq!(cache.len(), 4, "nothing added");
}

#[test]
fn only_fully_verified_documents_add_links() {
    let pki = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let doc = pki.document(83, T0 * 1000);
    let (protected, payload, mut signature) = cose_parts(&doc);
    signature[20] ^= 0x04;
    let bad_signature = cose::encode_cose_sign1(&protected, &payload, &signature, false).unwrap();
    let nonce = |n: &[u8]| pki.options(T0).with_nonce(n.to_vec());
    let with_nonce = resigned(&doc, "nonce", Value::Bytes(b"n1".to_vec()), &key(83));
    // Each of these fails after its whole chain, leaf included, verified: a bad COSE
    // signature, an unexpected nonce, a PCR0 other than the expected one, a document
    // dated after the verification time.
    let refused: Vec<(&[u8], VerifyOptions)> = vec![
        (&bad_signature, pki.options(T0)),
        (&with_nonce, nonce(b"n2")),
        (&doc, pki.options(T0).with_pcr(0, vec![8; 48])),
        (&doc, pki.options(T0 - 1)),
    ];
    for (doc, options) in &refused {
        let cache = CertCache::default();
        assert!(same(doc, options, &cache).is_err());
        assert!(cache.is_empty(), "a refused document planted {:?}", cache.stats());
    }
    // The same chain in a document that passes: every link added.
    let cache = CertCache::default();
    same(&with_nonce, &nonce(b"n1"), &cache).expect("valid");
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.stats().leaf_entries, 1);
}

#[test]
fn cached_leaf_is_not_trusted_under_another_instance_ca() {
    let pki = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let cache = CertCache::default();
    let doc = pki.document(84, T0 * 1000);
    same(&doc, &pki.options(T0), &cache).expect("valid");
    assert_eq!(cache.len(), 4);

    // Another instance CA with the same name, under the same zonal CA, another key:
    // the cached leaf (issued by the first) is refused under it, cached or not.
    let (wide_nb, wide_na) = (T0 - 100_000_000, T0 + 100_000_000);
    let other = sub_ca("instance", &key(85), "zonal", &pki.zonal_key, wide_nb, wide_na);
    let mut bundle = pki.cabundle();
    bundle[3] = other;
    let doc_other = document(&key(84), pki.leaf(84), bundle, T0 * 1000);
    let before = cache.stats();
    let err = same(&doc_other, &pki.options(T0), &cache).unwrap_err();
    assert!(matches!(err, VerifyError::CertificateSignature { cert: CertRole::Leaf, .. }), "{err}");
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits, "the leaf link is not found under another issuer");
    assert_eq!(cache.stats().leaf_misses, before.leaf_misses + 2);
    assert_eq!(cache.len(), 4, "nothing added");

    // A second certificate for the same instance key (other validity, so other DER):
    // the leaf's signature does verify under it, checked anew, and cached apart.
    let reissued = sub_ca("instance", &pki.instance_key, "zonal", &pki.zonal_key, wide_nb + 1, wide_na);
    let mut bundle = pki.cabundle();
    bundle[3] = reissued;
    let doc_reissued = document(&key(84), pki.leaf(84), bundle, T0 * 1000);
    let before = cache.stats();
    same(&doc_reissued, &pki.options(T0), &cache).expect("valid under the reissued instance certificate");
    assert_eq!(cache.stats().leaf_misses, before.leaf_misses + 1);
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits + 1);
    assert_eq!(cache.stats().leaf_entries, 2, "one leaf link per issuer");
    assert_eq!(cache.len(), 6);
}

#[test]
fn cached_leaf_outside_its_validity_fails_as_uncached() {
    // Leaf valid T0 ± 1000 s, every CA far wider.
    let pki = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let cache = CertCache::default();
    let doc = pki.document(86, (T0 - 900) * 1000);
    same(&doc, &pki.options(T0), &cache).expect("valid at T0");
    assert_eq!(cache.stats().leaf_entries, 1);

    let before = cache.stats();
    same(&doc, &pki.options(T0 + 1_000), &cache).expect("valid at the leaf's notAfter");
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits + 2);

    let before = cache.stats();
    let err = same(&doc, &pki.options(T0 + 1_001), &cache).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateExpired { cert: CertRole::Leaf, not_after, at, .. } if not_after == T0 + 1_000 && at == T0 + 1_001),
        "{err}"
    );
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits, "the leaf link is not used after its window");
    assert_eq!(cache.stats().leaf_misses, before.leaf_misses + 2);
    assert_eq!(cache.stats().hits, before.hits + 6, "the CA links still are");

    let before = cache.stats();
    let err = same(&doc, &pki.options(T0 - 1_001), &cache).unwrap_err();
    assert!(
        matches!(err, VerifyError::CertificateNotYetValid { cert: CertRole::Leaf, not_before, .. } if not_before == T0 - 1_000),
        "{err}"
    );
    assert_eq!(cache.stats().leaf_hits, before.leaf_hits);
    assert_eq!(cache.len(), 4, "failed verifications add nothing");
}

#[test]
fn a_leaf_must_not_be_a_ca_nor_barred_from_signing() {
    let pki = Pki::new(1, (T0 - 100_000, T0 + 100_000));
    let cache = CertCache::default();
    let k = key(87);
    // A CA certificate as the document's leaf: refused, cached or not.
    let ca_leaf = sub_ca("leaf", &k, "instance", &pki.instance_key, T0 - 1_000, T0 + 1_000);
    let doc = document(&k, ca_leaf, pki.cabundle(), T0 * 1000);
    let err = same(&doc, &pki.options(T0), &cache).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidCertificate { cert: CertRole::Leaf, .. }), "{err}");
    assert!(err.to_string().contains("certificate authority"), "{err}");
    // A leaf whose keyUsage allows only key encipherment (re-signed by its issuer).
    let mut leaf = Certificate::from_der(&pki.leaf(87)).unwrap();
    let key_usage = ObjectIdentifier::new_unwrap("2.5.29.15");
    let ext = leaf.tbs_certificate.extensions.iter_mut().flatten().find(|e| e.extn_id == key_usage).unwrap();
    ext.extn_value = OctetString::new(KeyUsage(KeyUsages::KeyEncipherment.into()).to_der().unwrap()).unwrap();
    let signature: DerSignature = pki.instance_key.sign(&leaf.tbs_certificate.to_der().unwrap());
    leaf.signature = BitString::from_bytes(signature.as_bytes()).unwrap();
    let leaf = leaf.to_der().unwrap();
    let doc = document(&k, leaf, pki.cabundle(), T0 * 1000);
    let err = same(&doc, &pki.options(T0), &cache).unwrap_err();
    assert!(matches!(err, VerifyError::InvalidCertificate { cert: CertRole::Leaf, .. }), "{err}");
    assert!(err.to_string().contains("digitalSignature"), "{err}");
    assert!(cache.is_empty());
}

#[test]
fn a_cache_without_leaf_links_checks_the_leaf_every_time() {
    let cache = CertCache::default().with_leaf_links(false);
    assert!(!cache.caches_leaf_links());
    assert!(CertCache::default().caches_leaf_links());
    same(SAMPLE_2024, &sample_options(SAMPLE_TS), &cache).expect("sample verifies");
    same(DEBUG_2022, &VerifyOptions::at(DEBUG_TS).with_any_image(true).with_allow_debug(true), &cache)
        .expect("debug document verifies with allow_debug");
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.leaf_entries), (6, 0), "{stats:?}");
    assert_eq!((stats.leaf_hits, stats.leaf_misses), (0, 0), "leaf lookups are not made");
    assert_eq!(stats.hits, 6, "the second verification of each took the CA links from the cache");
}
