//! The certificate-link cache (`attestation/src/cache.rs`) against histories an attacker
//! may choose (written by an adversarial review of 2026-12-06):
//!
//! * `random_histories_match_uncached`: random histories over a pool of genuine,
//!   forged and edge-of-validity documents, roots and verification times, with caches of
//!   every small capacity (eviction) and with/without leaf links: each cached result must
//!   equal `verify_uncached`'s.
//! * `concurrent_histories_match_uncached`: the same with two threads sharing a
//!   tiny cache.
//! * `refused_strangers_push_out_no_link`: documents a cluster node verifies in a
//!   handshake and then refuses (its `Admit` decides after the verification) used to enter
//!   the process-wide cache and push out the genuine peers' links; with `verify_then` they
//!   add nothing.
//! * `deeply_nested_cbor_is_refused_without_panic`: deep CBOR at every layer.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use bridle_attestation::{
    verify_then, verify_uncached, verify_with_cache, CertCache, MockCa, MockNsm, NsmProvider, VerifiedDocument,
    VerifyError, VerifyOptions, VerifyTime,
};
use ciborium::value::Value;
use der::asn1::UtcTime;
use der::Encode;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

type Outcome = Result<VerifiedDocument, VerifyError>;

const T0: u64 = 1_800_000_000;
const PCR0: [u8; 48] = [7; 48];

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn protected() -> Vec<u8> {
    cbor(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-35).into()))]))
}

fn sign_document(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let p = protected();
    let to_sign = cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(p.clone()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]));
    let sig: Signature = key.sign(&to_sign);
    cbor(&Value::Array(vec![
        Value::Bytes(p),
        Value::Map(vec![]),
        Value::Bytes(payload.to_vec()),
        Value::Bytes(sig.to_bytes().to_vec()),
    ]))
}

fn key(k: u8) -> SigningKey {
    SigningKey::from_slice(&[k; 48]).unwrap()
}

fn time(secs: u64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(secs)).unwrap())
}

fn name(cn: &str) -> Name {
    Name::from_str(&format!("CN={cn},O=Bridle test,C=US")).unwrap()
}

fn cert(
    profile: Profile,
    subject: &str,
    subject_key: &SigningKey,
    issuer_key: &SigningKey,
    nb: u64,
    na: u64,
) -> Vec<u8> {
    let serial = SerialNumber::new(&[0x42, subject.len() as u8, nb as u8, na as u8]).unwrap();
    let validity = Validity { not_before: time(nb), not_after: time(na) };
    let spki = SubjectPublicKeyInfoOwned::from_key(*subject_key.verifying_key()).unwrap();
    let b = CertificateBuilder::new(profile, serial, validity, name(subject), spki, issuer_key).unwrap();
    b.build::<DerSignature>().unwrap().to_der().unwrap()
}

fn sub_ca(subject: &str, k: &SigningKey, issuer: &str, ik: &SigningKey, nb: u64, na: u64) -> Vec<u8> {
    cert(Profile::SubCA { issuer: name(issuer), path_len_constraint: None }, subject, k, ik, nb, na)
}

fn leaf_cert(k: &SigningKey, issuer: &str, ik: &SigningKey, nb: u64, na: u64) -> Vec<u8> {
    let p = Profile::Leaf { issuer: name(issuer), enable_key_agreement: false, enable_key_encipherment: false };
    cert(p, "leaf", k, ik, nb, na)
}

fn document(leaf_key: &SigningKey, leaf: Vec<u8>, cabundle: Vec<Vec<u8>>, ts_ms: u64) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.to_string());
    let pcrs = (0u64..3).map(|i| (Value::Integer(i.into()), Value::Bytes(PCR0.to_vec()))).collect();
    let payload = Value::Map(vec![
        (text("module_id"), text("i-test-enc0")),
        (text("digest"), text("SHA384")),
        (text("timestamp"), Value::Integer(ts_ms.into())),
        (text("pcrs"), Value::Map(pcrs)),
        (text("certificate"), Value::Bytes(leaf)),
        (text("cabundle"), Value::Array(cabundle.into_iter().map(Value::Bytes).collect())),
        (text("public_key"), Value::Null),
        (text("user_data"), Value::Null),
        (text("nonce"), Value::Null),
    ]);
    sign_document(leaf_key, &cbor(&payload))
}

struct Pool {
    docs: Vec<Vec<u8>>,
    roots: Vec<Vec<u8>>,
    times: Vec<VerifyTime>,
}

/// Two PKIs with the same names (`root`, `regional`, `zonal`, `instance`, `leaf`) but
/// other keys; a third sharing PKI A's keys with another zonal validity (so the same
/// instance DER under another zonal DER of the same key); roots with the same key and
/// name but other validities; and documents mixing their pieces.
fn pool() -> Pool {
    let wide = (T0 - 100_000, T0 + 100_000);
    let (ra, ga, za, ia) = (key(1), key(11), key(21), key(31));
    let (rb, gb, zb, ib) = (key(2), key(12), key(22), key(32));
    let root_a = cert(Profile::Root, "root", &ra, &ra, wide.0, wide.1);
    let root_a_narrow = cert(Profile::Root, "root", &ra, &ra, T0 - 500, T0 + 500);
    let root_b = cert(Profile::Root, "root", &rb, &rb, wide.0, wide.1);
    let reg_a = sub_ca("regional", &ga, "root", &ra, wide.0, wide.1);
    let zon_a = sub_ca("zonal", &za, "regional", &ga, T0 - 100, T0 + 100);
    let zon_a2 = sub_ca("zonal", &za, "regional", &ga, T0 - 50, T0 + 5_000);
    let ins_a = sub_ca("instance", &ia, "zonal", &za, wide.0, wide.1);
    let reg_b = sub_ca("regional", &gb, "root", &rb, wide.0, wide.1);
    let zon_b = sub_ca("zonal", &zb, "regional", &gb, wide.0, wide.1);
    let ins_b = sub_ca("instance", &ib, "zonal", &zb, wide.0, wide.1);
    // A "CA" used as a leaf, and a leaf signed directly by the root.
    let (l1, l2, l3) = (key(41), key(42), key(43));
    let leaf_a = leaf_cert(&l1, "instance", &ia, T0 - 1_000, T0 + 1_000);
    let leaf_a_other_key = leaf_cert(&l2, "instance", &ia, T0 - 1_000, T0 + 1_000);
    let leaf_same_key_under_b = leaf_cert(&l1, "instance", &ib, T0 - 1_000, T0 + 1_000);
    let leaf_ca = sub_ca("leaf", &l3, "instance", &ia, T0 - 1_000, T0 + 1_000);
    let leaf_by_root = leaf_cert(&l1, "root", &ra, T0 - 1_000, T0 + 1_000);

    let bundle_a = vec![root_a.clone(), reg_a.clone(), zon_a.clone(), ins_a.clone()];
    let bundle_a2 = vec![root_a.clone(), reg_a.clone(), zon_a2.clone(), ins_a.clone()];
    let bundle_b = vec![root_b.clone(), reg_b.clone(), zon_b.clone(), ins_b.clone()];
    let bundle_mix = vec![root_a.clone(), reg_a.clone(), zon_a.clone(), ins_b.clone()];
    let bundle_junk0 = vec![vec![0x30, 0x00], reg_a.clone(), zon_a.clone(), ins_a.clone()];
    let bundle_dup = vec![root_a.clone(), reg_a.clone(), reg_a.clone(), zon_a.clone(), ins_a.clone()];

    let ts = [T0 * 1000, (T0 - 1_000) * 1000, (T0 + 1_000) * 1000 + 999, (T0 + 1_001) * 1000, (T0 + 90) * 1000];
    let mut docs = Vec::new();
    for &t in &ts {
        docs.push(document(&l1, leaf_a.clone(), bundle_a.clone(), t));
    }
    docs.push(document(&l1, leaf_a.clone(), bundle_a2.clone(), T0 * 1000));
    docs.push(document(&l2, leaf_a_other_key.clone(), bundle_a.clone(), T0 * 1000));
    docs.push(document(&l1, leaf_same_key_under_b.clone(), bundle_b.clone(), T0 * 1000));
    // Forgeries: a leaf under the wrong (same-named) CA, a CA swapped, a COSE signature by
    // another key than the leaf's, a CA as leaf, junk cabundle[0], a duplicated CA.
    docs.push(document(&l1, leaf_same_key_under_b.clone(), bundle_a.clone(), T0 * 1000));
    docs.push(document(&l1, leaf_a.clone(), bundle_b.clone(), T0 * 1000));
    docs.push(document(&l1, leaf_a.clone(), bundle_mix, T0 * 1000));
    docs.push(document(&l2, leaf_a.clone(), bundle_a.clone(), T0 * 1000));
    docs.push(document(&l1, leaf_a_other_key, bundle_a.clone(), T0 * 1000));
    docs.push(document(&l3, leaf_ca, bundle_a.clone(), T0 * 1000));
    docs.push(document(&l1, leaf_a.clone(), bundle_junk0, T0 * 1000));
    docs.push(document(&l1, leaf_a.clone(), bundle_dup, T0 * 1000));
    docs.push(document(&l1, leaf_by_root.clone(), vec![root_a.clone()], T0 * 1000));
    docs.push(document(&l1, leaf_by_root, vec![root_b.clone()], T0 * 1000));
    // A cached-leaf document re-signed with a flipped signature byte.
    let mut bad = docs[0].clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    docs.push(bad);

    let mut times = Vec::new();
    for d in [-1_001i64, -1_000, -501, -500, -101, -100, -51, -50, 0, 90, 100, 101, 500, 501, 1_000, 1_001, 5_000] {
        times.push(VerifyTime::At((T0 as i64 + d) as u64));
    }
    for (now, age) in [(T0 * 1000, 300), ((T0 + 100) * 1000 + 999, 300), ((T0 + 101) * 1000, 300), (T0 * 1000 - 1, 0)] {
        times.push(VerifyTime::NowAt { now_ms: now, max_age_secs: age });
    }
    Pool { docs, roots: vec![root_a, root_a_narrow, root_b], times }
}

fn options(pool: &Pool, root: usize, t: usize, pcr_ok: bool) -> VerifyOptions {
    let pcr = if pcr_ok { PCR0.to_vec() } else { vec![8; 48] };
    VerifyOptions { time: pool.times[t], ..VerifyOptions::default() }
        .with_root_der(pool.roots[root].clone())
        .with_pcr(0, pcr)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

type Key = (usize, usize, usize, bool);

struct Oracle<'a> {
    pool: &'a Pool,
    memo: Mutex<HashMap<Key, Outcome>>,
}

impl Oracle<'_> {
    fn uncached(&self, k: Key) -> Outcome {
        if let Some(o) = self.memo.lock().unwrap().get(&k) {
            return o.clone();
        }
        let o = verify_uncached(&self.pool.docs[k.0], &options(self.pool, k.1, k.2, k.3));
        self.memo.lock().unwrap().insert(k, o.clone());
        o
    }

    /// Biased towards genuine documents under root A so that links get cached and reused.
    fn pick(&self, rng: &mut Rng) -> Key {
        let d = if rng.below(3) == 0 { rng.below(self.pool.docs.len()) } else { rng.below(8) };
        let r = if rng.below(4) == 0 { rng.below(self.pool.roots.len()) } else { 0 };
        (d, r, rng.below(self.pool.times.len()), rng.below(8) != 0)
    }
}

#[test]
fn random_histories_match_uncached() {
    let pool = pool();
    let oracle = Oracle { pool: &pool, memo: Mutex::new(HashMap::new()) };
    let mut oks = 0;
    let mut checked = 0;
    for (run, capacity) in [0usize, 1, 2, 3, 4, 5, 7, 256].into_iter().enumerate() {
        for leaf_links in [true, false] {
            let cache = CertCache::new(capacity).with_leaf_links(leaf_links);
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (run as u64 * 2 + u64::from(leaf_links) + 1));
            for step in 0..120 {
                let k = oracle.pick(&mut rng);
                let expected = oracle.uncached(k);
                let got = verify_with_cache(&pool.docs[k.0], &options(&pool, k.1, k.2, k.3), &cache);
                assert_eq!(got, expected, "capacity {capacity}, leaf links {leaf_links}, step {step}, case {k:?}");
                assert!(cache.len() <= capacity);
                oks += usize::from(expected.is_ok());
                if step == 119 {
                    eprintln!("capacity {capacity} leaf {leaf_links}: {:?}", cache.stats());
                }
                checked += 1;
            }
        }
    }
    eprintln!("{oks} of {checked} passed");
    // The history did exercise both outcomes (and so both cache hits and misses).
    assert!(oks > checked / 10 && oks < checked, "{oks} of {checked} passed");
}

#[test]
fn concurrent_histories_match_uncached() {
    let pool = pool();
    let oracle = Oracle { pool: &pool, memo: Mutex::new(HashMap::new()) };
    for capacity in [3usize, 256] {
        let cache = CertCache::new(capacity);
        std::thread::scope(|s| {
            for seed in 1..=2u64 {
                let (cache, oracle, pool) = (&cache, &oracle, &pool);
                s.spawn(move || {
                    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
                    for _ in 0..80 {
                        let k = oracle.pick(&mut rng);
                        let expected = oracle.uncached(k);
                        let got = verify_with_cache(&pool.docs[k.0], &options(pool, k.1, k.2, k.3), cache);
                        assert_eq!(got, expected, "capacity {capacity}, case {k:?}");
                    }
                });
            }
        });
    }
}

/// What `channel::handshake::verify_peer` asks: `any_image: true` (its `Admit` decides on
/// the image), the handshake nonce and the Noise key.
fn handshake_options(root: &[u8], nonce: &[u8], static_key: &[u8]) -> VerifyOptions {
    VerifyOptions {
        expected_nonce: Some(nonce.to_vec()),
        expected_public_key: Some(static_key.to_vec()),
        any_image: true,
        ..VerifyOptions::now(300)
    }
    .with_root_der(root.to_vec())
}

#[test]
fn refused_strangers_push_out_no_link() {
    // One CA stands for "AWS": the cluster's peer and the strangers' enclaves are all
    // genuine enclaves under it; the strangers run another image, which the caller refuses
    // after the verification, as the handshake's `Admit` does.
    let ca = MockCa::generate().unwrap();
    let root = ca.root_der().to_vec();
    let peer = MockNsm::with_ca(&ca, bridle_attestation::ImageMeasurement::mock_default()).unwrap();
    // The global cache's capacity, in a cache of our own (the test binary shares the global).
    let cache = CertCache::new(CertCache::DEFAULT_CAPACITY);
    let peer_doc = |n: u8| peer.attestation(None, Some(vec![n; 32]), Some(vec![9; 32])).unwrap();
    let admit = |v: VerifiedDocument| {
        if v.pcrs.get(&0).map(Vec::as_slice) == Some(&peer.image().pcr0[..]) {
            Ok(v)
        } else {
            Err("another image")
        }
    };
    verify_then(&peer_doc(1), &handshake_options(&root, &[1; 32], &[9; 32]), &cache, admit).unwrap().unwrap();
    let warm = cache.stats();
    verify_then(&peer_doc(2), &handshake_options(&root, &[2; 32], &[9; 32]), &cache, admit).unwrap().unwrap();
    assert_eq!(cache.stats().leaf_hits, warm.leaf_hits + 1, "the peer's leaf link is cached");

    // Strangers: more enclaves of an image the cluster does not admit than the cache holds.
    let other = bridle_attestation::ImageMeasurement::new([5; 48], [5; 48], [5; 48]);
    for i in 0..CertCache::DEFAULT_CAPACITY + 8 {
        let s = MockNsm::with_ca(&ca, other.clone()).unwrap();
        let nonce = (i as u32).to_be_bytes().repeat(8);
        let d = s.attestation(None, Some(nonce.clone()), Some(vec![3; 32])).unwrap();
        let taken = verify_then(&d, &handshake_options(&root, &nonce, &[3; 32]), &cache, admit).unwrap();
        assert_eq!(taken.err(), Some("another image"), "verified, then refused");
    }
    let before = cache.stats();
    assert_eq!(before.entries, warm.entries, "a refused document adds no link");
    verify_then(&peer_doc(3), &handshake_options(&root, &[3; 32], &[9; 32]), &cache, admit).unwrap().unwrap();
    let last = cache.stats();
    assert_eq!(last.leaf_hits, before.leaf_hits + 1, "the peer's leaf link is still there");
    assert_eq!(last.evictions, 0);
    // The same strangers taken (`verify_with_cache`) fill the leaves' share: still the CA
    // links stay.
    for i in 0..CertCache::DEFAULT_CAPACITY {
        let s = MockNsm::with_ca(&ca, other.clone()).unwrap();
        let nonce = (i as u32).to_be_bytes().repeat(8);
        let d = s.attestation(None, Some(nonce.clone()), Some(vec![3; 32])).unwrap();
        verify_with_cache(&d, &handshake_options(&root, &nonce, &[3; 32]), &cache).unwrap();
    }
    assert!(cache.stats().entries <= CertCache::DEFAULT_CAPACITY);
}

#[test]
fn deeply_nested_cbor_is_refused_without_panic() {
    let opts = VerifyOptions::at(T0).with_any_image(true);
    // Outer document: 60 000 nested one-item arrays.
    let deep = [vec![0x81u8; 60_000], vec![0x00]].concat();
    assert!(verify_with_cache(&deep, &opts, &CertCache::default()).is_err());
    // Payload: a byte string holding 60 000 nested maps / tags.
    for nest in [vec![0xA1u8, 0x00], vec![0xD8, 0x18]] {
        let inner = [nest.repeat(30_000), vec![0x00]].concat();
        let doc = cbor(&Value::Array(vec![
            Value::Bytes(protected()),
            Value::Map(vec![]),
            Value::Bytes(inner),
            Value::Bytes(vec![0; 96]),
        ]));
        assert!(verify_with_cache(&doc, &opts, &CertCache::default()).is_err());
    }
}
