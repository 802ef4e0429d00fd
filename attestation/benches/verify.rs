//! Verification cost: one real AWS document (first verification; with its CA chain
//! prefix already verified; with its whole chain, enclave leaf included, already
//! verified) and one mock document; and, side by side for reference, one ECDSA P-384
//! verification with AWS-LC (the verifier's library) and with ring (the one before it).

use bridle_attestation::{verify_uncached, verify_with_cache, CertCache, MockNsm, NsmProvider, VerifyOptions};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};

const SAMPLE_2024: &[u8] = include_bytes!("../../tests/fixtures/nitro/nitro_sample_2024.cbor");
const SAMPLE_TS: u64 = 1_708_930_921;

fn bench_verify(c: &mut Criterion) {
    let pcr = |s: &str| hex::decode(s).expect("hex");
    let real_opts = VerifyOptions::at(SAMPLE_TS)
        .with_pcr(
            0,
            pcr("17bf8f048519797be90497001a7559a3d555395937117d76f8baaedf56ca6d97952de79479bc0c76e5d176d20f663790"),
        )
        .with_pcr(
            1,
            pcr("5d3938eb05288e20a981038b1861062ff4174884968a39aee5982b312894e60561883576cc7381d1a7d05b809936bd16"),
        )
        .with_pcr(
            2,
            pcr("249037310daa90f4eb0703e7b105a241fdb09f12d3c40b7aea2f39e57b07b887e6ff4e4f9757943e127e391626b5e4d5"),
        );
    verify_uncached(SAMPLE_2024, &real_opts).expect("sample verifies");

    // First verification: no cache at all (every certificate parsed, every signature checked).
    c.bench_function("verify/aws_sample_2024", |b| {
        b.iter(|| verify_uncached(black_box(SAMPLE_2024), black_box(&real_opts)))
    });
    // First verification through a cache: a fresh, empty cache each time (the cost of
    // looking up and filling it included).
    c.bench_function("verify/aws_sample_2024_fresh_cache", |b| {
        b.iter_batched(
            CertCache::default,
            |cache| verify_with_cache(black_box(SAMPLE_2024), black_box(&real_opts), &cache),
            BatchSize::SmallInput,
        )
    });
    // The CA chain prefix (root → … → instance certificate) already verified, leaf
    // links not cached: the leaf certificate's signature and the COSE signature are
    // still checked (two P-384 verifications).
    let ca_only = CertCache::default().with_leaf_links(false);
    verify_with_cache(SAMPLE_2024, &real_opts, &ca_only).expect("sample verifies");
    assert_eq!(ca_only.len(), 3, "three CA links cached");
    c.bench_function("verify/aws_sample_2024_ca_prefix_cached", |b| {
        b.iter(|| verify_with_cache(black_box(SAMPLE_2024), black_box(&real_opts), &ca_only))
    });
    assert_eq!(ca_only.stats().misses, 3, "every later verification hit the cache");
    // The whole chain already verified, the enclave's leaf certificate by its instance CA
    // included (the default cache, as `verify` uses): only the COSE signature is checked
    // (one P-384 verification) — a later document from the same enclave.
    let cache = CertCache::default();
    verify_with_cache(SAMPLE_2024, &real_opts, &cache).expect("sample verifies");
    assert_eq!((cache.len(), cache.stats().leaf_entries), (4, 1), "three CA links and the leaf link cached");
    c.bench_function("verify/aws_sample_2024_chain_cached", |b| {
        b.iter(|| verify_with_cache(black_box(SAMPLE_2024), black_box(&real_opts), &cache))
    });
    assert_eq!(cache.stats().misses, 4, "every later verification hit the cache");

    let nsm = MockNsm::new().expect("mock");
    let doc = nsm.attestation(None, Some(b"bench nonce".to_vec()), None).expect("mock document");
    let mock_opts = VerifyOptions::now(3600)
        .with_root_der(nsm.root_der().to_vec())
        .with_pcr(0, nsm.image().pcr0.to_vec())
        .with_nonce(b"bench nonce".to_vec());
    verify_uncached(&doc, &mock_opts).expect("mock verifies");
    c.bench_function("verify/mock", |b| b.iter(|| verify_uncached(black_box(&doc), black_box(&mock_opts))));

    c.bench_function("mock/attestation", |b| b.iter(|| nsm.attestation(None, Some(b"n".to_vec()), None)));
}

/// One P-384 verification (SHA-384, fixed-width r ‖ s, as a COSE signature), the same key,
/// message and signature through both libraries.
fn bench_p384(c: &mut Criterion) {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("key");
    let public = key.public_key().as_ref().to_vec();
    let msg = b"bridle p384 reference";
    let sig = key.sign(&rng, msg).expect("sign").as_ref().to_vec();
    let aws = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED, &public);
    let ring = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, &public);
    aws.verify(msg, &sig).expect("aws-lc verifies");
    ring.verify(msg, &sig).expect("ring verifies");
    c.bench_function("p384/verify_aws_lc", |b| b.iter(|| aws.verify(black_box(msg), black_box(&sig))));
    c.bench_function("p384/verify_ring", |b| b.iter(|| ring.verify(black_box(msg), black_box(&sig))));
}

criterion_group!(benches, bench_verify, bench_p384);
criterion_main!(benches);
