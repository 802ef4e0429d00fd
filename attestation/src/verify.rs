//! Verification of AWS Nitro Enclaves attestation documents (SPEC R-ATT-3).
//!
//! [`verify`] accepts a document only when every one of these holds:
//!
//! 1. it is a COSE_Sign1 (tagged 18 or untagged) whose protected header says ES384;
//! 2. its payload is an enclave attestation document (`module_id`, `digest` =
//!    SHA384, `timestamp`, `pcrs`, `certificate`, `cabundle`);
//! 3. `certificate` ← `cabundle[n-1]` ← … ← `cabundle[1]` ← the trusted root
//!    (`cabundle[0]` is ignored) is a valid chain: names, signatures, CA basic
//!    constraints, path lengths, a leaf that is not a CA (and whose keyUsage, if any,
//!    allows digitalSignature), and every certificate valid at the verification time;
//! 4. the COSE signature verifies with the leaf certificate's P-384 key;
//! 5. the time rules of [`VerifyTime`] hold;
//! 6. the document is not a debug-mode document unless `allow_debug`;
//! 7. every expected PCR, nonce, public key and user data is equal.
//!
//! When a document passes, [`verify`] remembers the certificate links of step 3 whose
//! signatures it checked — the CA links of the bundle and the leaf's link to its
//! instance CA — in a process-wide [`CertCache`], so that a later document with the
//! same chain costs only what differs per document: one P-384 check, the COSE
//! signature of step 4, which is always verified (a new leaf certificate costs its own
//! signature check once more). [`verify_with_cache`] takes the caller's cache and
//! [`verify_uncached`] none. All three return the same result.
//!
//! Before any of that, the options must pin the image: the expected PCRs include PCR0, or
//! both PCR1 and PCR2 (together they measure what PCR0 measures), none of them all zeros
//! (every debug-mode image measures zeros there, whatever code it runs), unless the caller
//! sets `any_image` explicitly. A verifier that is given no expected image never passes: a
//! valid document alone proves only that *some* enclave produced it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{EcdsaVerificationAlgorithm, UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use der::{DecodePem, Encode};
use sha2::{Digest, Sha256};

use crate::cache::{CertCache, CertHash};
use crate::cose::{self, ES384_SIGNATURE_LEN};
use crate::document;
pub use crate::x509::CertificateInfo;
use crate::x509::{self, CertRole, ParsedCert};

/// The COSE signature's algorithm: ES384 over the Sig_structure, `r ‖ s` of 48 bytes each.
pub(crate) const COSE_ALGORITHM: &EcdsaVerificationAlgorithm = &ECDSA_P384_SHA384_FIXED;

/// The AWS Nitro Enclaves Root-G1 certificate (PEM), embedded at build time.
pub const AWS_NITRO_ROOT_G1_PEM: &str = include_str!("../../tests/fixtures/nitro/aws_nitro_root_g1.pem");

/// SHA-256 of the DER of the AWS Nitro Enclaves Root-G1 certificate (the pin).
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1A, 0x03, 0x21, 0xA3, 0xE2, 0x44, 0xEF, 0xE4, 0x56, 0x46, 0x31, 0x95, 0xD6, 0x06, 0x31, 0x7E, 0xD7, 0xCD,
    0xCC, 0x3C, 0x17, 0x56, 0xE0, 0x98, 0x93, 0xF3, 0xC6, 0x8F, 0x79, 0xBB, 0x5B,
];

/// Default maximum age of a fresh document for [`VerifyTime::Now`], in seconds.
pub const DEFAULT_MAX_AGE_SECS: u64 = 300;

use crate::verify_error::hx_opt;
pub use crate::verify_error::VerifyError;

/// The trust anchor of the verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustedRoot {
    /// The AWS Nitro Enclaves Root-G1 embedded in this crate, checked against
    /// its pinned SHA-256 ([`AWS_NITRO_ROOT_G1_SHA256`]).
    #[default]
    AwsNitroRootG1,
    /// Another root certificate (DER), e.g. [`crate::MockNsm::root_der`].
    /// Only ever used when passed explicitly.
    Der(Vec<u8>),
}

impl TrustedRoot {
    /// A root from a PEM certificate.
    pub fn from_pem(pem: &str) -> Result<Self, VerifyError> {
        certificate_pem_to_der(pem).map(TrustedRoot::Der)
    }

    /// The DER bytes of the root (pin-checked for the AWS root).
    pub fn der(&self) -> Result<Vec<u8>, VerifyError> {
        match self {
            TrustedRoot::AwsNitroRootG1 => aws_nitro_root_g1_der(),
            TrustedRoot::Der(d) => Ok(d.clone()),
        }
    }
}

/// Converts a PEM certificate (`-----BEGIN CERTIFICATE-----`) to DER.
pub fn certificate_pem_to_der(pem: &str) -> Result<Vec<u8>, VerifyError> {
    let cert = x509_cert::Certificate::from_pem(pem.trim().as_bytes())
        .map_err(|e| VerifyError::InvalidInput { reason: format!("not a PEM certificate: {e}") })?;
    cert.to_der().map_err(|e| VerifyError::InvalidInput { reason: format!("cannot encode certificate: {e}") })
}

/// The DER of the embedded AWS Nitro Enclaves Root-G1, after checking that its
/// SHA-256 equals [`AWS_NITRO_ROOT_G1_SHA256`].
pub fn aws_nitro_root_g1_der() -> Result<Vec<u8>, VerifyError> {
    static ROOT: OnceLock<Result<Vec<u8>, VerifyError>> = OnceLock::new();
    ROOT.get_or_init(|| {
        let der = certificate_pem_to_der(AWS_NITRO_ROOT_G1_PEM)?;
        let actual: [u8; 32] = Sha256::digest(&der).into();
        if actual != AWS_NITRO_ROOT_G1_SHA256 {
            return Err(VerifyError::RootPinMismatch { expected: AWS_NITRO_ROOT_G1_SHA256, actual });
        }
        Ok(der)
    })
    .clone()
}

/// At which time certificates and the document are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyTime {
    /// A stored document: every certificate must be valid at this instant
    /// (unix seconds), typically the document's own timestamp, and the
    /// document must not be dated after it.
    At(u64),
    /// A fresh document: every certificate must be valid now, and the document
    /// timestamp must be within `max_age_secs` of now (either side).
    Now {
        /// Largest accepted distance between now and the document timestamp.
        max_age_secs: u64,
    },
    /// A fresh document, with "now" as the caller's clock says (Unix milliseconds): an
    /// enclave's clock corrected by its NSM's, where the system clock may have drifted.
    NowAt {
        /// The caller's time, Unix milliseconds.
        now_ms: u64,
        /// Largest accepted distance between now and the document timestamp.
        max_age_secs: u64,
    },
}

impl Default for VerifyTime {
    fn default() -> Self {
        VerifyTime::Now { max_age_secs: DEFAULT_MAX_AGE_SECS }
    }
}

/// What the verifier accepts. `Default`: AWS root, now with a 300 s maximum
/// age, no expected values, debug refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Trust anchor (default: embedded AWS Nitro Root-G1).
    pub root: TrustedRoot,
    /// Verification time.
    pub time: VerifyTime,
    /// PCRs that must be present and equal (index → value).
    pub expected_pcrs: BTreeMap<u16, Vec<u8>>,
    /// Nonce that must be present and equal.
    pub expected_nonce: Option<Vec<u8>>,
    /// Public key that must be present and equal.
    pub expected_public_key: Option<Vec<u8>>,
    /// User data that must be present and equal.
    pub expected_user_data: Option<Vec<u8>>,
    /// Accept debug-mode documents (all-zero PCR0/1/2).
    pub allow_debug: bool,
    /// Accept a document whatever image it measures: lifts the requirement that
    /// `expected_pcrs` pin the image (PCR0, or PCR1 and PCR2). Other expected values still
    /// apply. Development and diagnostics only.
    pub any_image: bool,
}

impl VerifyOptions {
    /// Options for a stored document verified at `unix_secs`.
    pub fn at(unix_secs: u64) -> Self {
        VerifyOptions { time: VerifyTime::At(unix_secs), ..Default::default() }
    }

    /// Options for a fresh document at most `max_age_secs` old.
    pub fn now(max_age_secs: u64) -> Self {
        VerifyOptions { time: VerifyTime::Now { max_age_secs }, ..Default::default() }
    }

    /// Sets the trusted root certificate (DER).
    pub fn with_root_der(mut self, der: Vec<u8>) -> Self {
        self.root = TrustedRoot::Der(der);
        self
    }

    /// Adds an expected PCR value.
    pub fn with_pcr(mut self, index: u16, value: impl Into<Vec<u8>>) -> Self {
        self.expected_pcrs.insert(index, value.into());
        self
    }

    /// Sets the expected nonce.
    pub fn with_nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.expected_nonce = Some(nonce.into());
        self
    }

    /// Sets the expected public key.
    pub fn with_public_key(mut self, public_key: impl Into<Vec<u8>>) -> Self {
        self.expected_public_key = Some(public_key.into());
        self
    }

    /// Sets the expected user data.
    pub fn with_user_data(mut self, user_data: impl Into<Vec<u8>>) -> Self {
        self.expected_user_data = Some(user_data.into());
        self
    }

    /// Allows or refuses debug-mode documents.
    pub fn with_allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }

    /// Accepts any image (see [`VerifyOptions::any_image`]).
    pub fn with_any_image(mut self, any: bool) -> Self {
        self.any_image = any;
        self
    }

    /// Whether the expected PCRs pin an image: PCR0, or both PCR1 and PCR2, not all zeros.
    pub fn pins_image(&self) -> bool {
        pins_image(&self.expected_pcrs)
    }
}

/// Whether `expected` pins an enclave image: it has PCR0 (the whole image), or both PCR1
/// (kernel, command line, boot ramdisk) and PCR2 (the application ramdisks) — each with a
/// value that is not all zeros: a debug-mode enclave measures zeros there whatever code it
/// runs, so a zero pins nothing (found 2026-12-05 by a review: `--allow-debug --pcr 0=00…`
/// was labelled as an expected image and admitted any debug-mode image).
pub fn pins_image(expected: &BTreeMap<u16, Vec<u8>>) -> bool {
    let pins = |i: u16| expected.get(&i).is_some_and(|v| v.iter().any(|b| *b != 0));
    pins(0) || (pins(1) && pins(2))
}

/// A document that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDocument {
    /// NSM module id, e.g. `i-0df237f0418feb41e-enc018de4b6f5d5e5e6`.
    pub module_id: String,
    /// Document timestamp, unix milliseconds.
    pub timestamp_ms: u64,
    /// PCR digest algorithm (always `SHA384`).
    pub digest: String,
    /// All PCRs of the document.
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    /// `public_key` (None when null or empty).
    pub public_key: Option<Vec<u8>>,
    /// `user_data` (None when null or empty).
    pub user_data: Option<Vec<u8>>,
    /// `nonce` (None when null or empty).
    pub nonce: Option<Vec<u8>>,
    /// `true` for a debug-mode document (only returned with `allow_debug`).
    pub debug: bool,
    /// Verified chain, leaf first, trusted root last.
    pub chain: Vec<CertificateInfo>,
}

impl fmt::Display for VerifiedDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "module_id: {}", self.module_id)?;
        writeln!(f, "timestamp: {} ms", self.timestamp_ms)?;
        writeln!(f, "digest: {}", self.digest)?;
        for (i, v) in &self.pcrs {
            writeln!(f, "PCR{i}: {}", hex::encode(v))?;
        }
        writeln!(f, "public_key: {}", hx_opt(&self.public_key))?;
        writeln!(f, "user_data: {}", hx_opt(&self.user_data))?;
        write!(f, "nonce: {}", hx_opt(&self.nonce))
    }
}

fn now_ms() -> Result<u64, VerifyError> {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| VerifyError::Clock)?;
    u64::try_from(d.as_millis()).map_err(|_| VerifyError::Clock)
}

/// The parsed trusted root and the SHA-256 of its DER (parsed once per cache).
fn parse_root(options: &VerifyOptions, cache: Option<&CertCache>) -> Result<(Arc<ParsedCert>, CertHash), VerifyError> {
    let der = options.root.der()?;
    let hash: CertHash = Sha256::digest(&der).into();
    if let Some(root) = cache.and_then(|c| c.root(&hash)) {
        return Ok((root, hash));
    }
    let root = x509::parse_cert(CertRole::TrustedRoot, &der)
        .map_err(|e| VerifyError::InvalidTrustedRoot { reason: e.to_string() })?;
    let root = Arc::new(root);
    if let Some(cache) = cache {
        cache.insert_root(hash, Arc::clone(&root));
    }
    Ok((root, hash))
}

fn compare_optional(
    expected: &Option<Vec<u8>>,
    actual: &Option<Vec<u8>>,
    err: impl FnOnce(Vec<u8>, Option<Vec<u8>>) -> VerifyError,
) -> Result<(), VerifyError> {
    if let Some(expected) = expected {
        if actual.as_ref() != Some(expected) {
            return Err(err(expected.clone(), actual.clone()));
        }
    }
    Ok(())
}

/// Verifies an attestation document (COSE_Sign1 bytes) against `options`.
///
/// Returns the document's contents only when every check of SPEC R-ATT-3
/// passes; otherwise the first failed check. Never panics.
///
/// Certificate links (CA certificates of the bundle, and the leaf by its issuer)
/// verified before are taken from the process-wide [`CertCache::global`] (see
/// [`crate::cache`]), and those of a document that passes are added to it: the result
/// is the same as [`verify_uncached`]'s, only faster for a chain seen before.
pub fn verify(document: &[u8], options: &VerifyOptions) -> Result<VerifiedDocument, VerifyError> {
    verify_with_cache(document, options, CertCache::global())
}

/// [`verify()`] with the caller's own cache of verified certificate links instead of
/// the process-wide one.
pub fn verify_with_cache(
    document: &[u8],
    options: &VerifyOptions,
    cache: &CertCache,
) -> Result<VerifiedDocument, VerifyError> {
    let (verified, links) = verify_inner(document, options, Some(cache))?;
    cache.insert(links);
    Ok(verified)
}

/// [`verify_with_cache`] for a caller that decides something more about the document
/// before it is taken — a cluster admitting a peer by its image: the links it verified
/// enter `cache` only if `accept` returns `Ok`. Otherwise a stranger whose genuine
/// document is then refused (any enclave on any Nitro host) would fill the cache with its
/// links and push out the ones of the documents the caller does take (a review of
/// 2026-12-06). The outer error is the verification's, the inner result `accept`'s.
pub fn verify_then<T, E>(
    document: &[u8],
    options: &VerifyOptions,
    cache: &CertCache,
    accept: impl FnOnce(VerifiedDocument) -> Result<T, E>,
) -> Result<Result<T, E>, VerifyError> {
    let (verified, links) = verify_inner(document, options, Some(cache))?;
    let taken = accept(verified);
    if taken.is_ok() {
        cache.insert(links);
    }
    Ok(taken)
}

/// [`verify()`] without any cache: every certificate is parsed and every signature
/// checked, and nothing is remembered.
pub fn verify_uncached(document: &[u8], options: &VerifyOptions) -> Result<VerifiedDocument, VerifyError> {
    verify_inner(document, options, None).map(|(verified, _)| verified)
}

/// The verification, with the links it checked that `cache` may remember: the caller adds
/// them once the document is taken.
fn verify_inner(
    document: &[u8],
    options: &VerifyOptions,
    cache: Option<&CertCache>,
) -> Result<(VerifiedDocument, Vec<crate::cache::NewLink>), VerifyError> {
    // 0. The caller says which image it trusts, or explicitly that any will do.
    if !options.any_image && !options.pins_image() {
        let given = if options.expected_pcrs.is_empty() {
            "none".to_string()
        } else {
            options.expected_pcrs.keys().map(|i| format!("PCR{i}")).collect::<Vec<_>>().join(", ")
        };
        return Err(VerifyError::NoExpectedImage { given });
    }

    // 1. COSE_Sign1 structure and algorithm.
    let cose = cose::parse_cose_sign1(document)?;
    cose::check_protected_header(&cose.protected)?;

    // 2. Payload structure.
    let doc = document::parse_payload(&cose.payload)?;

    // 3. Certificate chain at the verification time.
    let (at_secs, now) = match options.time {
        VerifyTime::At(t) => (t, None),
        VerifyTime::Now { max_age_secs } => {
            let now = now_ms()?;
            (now / 1000, Some((now, max_age_secs)))
        }
        VerifyTime::NowAt { now_ms, max_age_secs } => (now_ms / 1000, Some((now_ms, max_age_secs))),
    };
    let (root, root_hash) = parse_root(options, cache)?;
    let chain = x509::verify_chain(&doc.certificate, &doc.cabundle, &root, &root_hash, at_secs, cache)?;
    let leaf = chain
        .certs
        .first()
        .ok_or_else(|| VerifyError::InvalidInput { reason: "empty certificate chain".to_string() })?;

    // 4. COSE signature with the leaf key.
    if cose.signature.len() != ES384_SIGNATURE_LEN {
        return Err(VerifyError::SignatureLength { expected: ES384_SIGNATURE_LEN, actual: cose.signature.len() });
    }
    let to_verify =
        cose::sig_structure(&cose.protected, &cose.payload).map_err(|reason| VerifyError::InvalidInput { reason })?;
    UnparsedPublicKey::new(COSE_ALGORITHM, &leaf.public_key)
        .verify(&to_verify, &cose.signature)
        .map_err(|_| VerifyError::SignatureInvalid { subject: leaf.subject.clone() })?;

    // 5. Time rules.
    let ts = doc.timestamp_ms;
    let ts_secs = ts / 1000;
    if ts_secs < leaf.not_before || ts_secs > leaf.not_after {
        return Err(VerifyError::TimestampOutsideCertificate {
            timestamp_ms: ts,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
        });
    }
    match now {
        None => {
            if ts_secs > at_secs {
                return Err(VerifyError::DocumentAfterVerificationTime { timestamp_ms: ts, at: at_secs });
            }
        }
        Some((now_ms, max_age_secs)) => {
            let max_age_ms = max_age_secs.saturating_mul(1000);
            if ts < now_ms && now_ms - ts > max_age_ms {
                return Err(VerifyError::DocumentTooOld { timestamp_ms: ts, now_ms, max_age_secs });
            }
            if ts > now_ms && ts - now_ms > max_age_ms {
                return Err(VerifyError::DocumentFromFuture { timestamp_ms: ts, now_ms, max_age_secs });
            }
        }
    }

    // 6. Debug mode.
    if !doc.pcrs.contains_key(&0) {
        return Err(VerifyError::InvalidDocument {
            field: "pcrs",
            reason: "PCR0 (enclave image) is missing".to_string(),
        });
    }
    let debug_pcr = (0u16..=2).find(|i| doc.pcrs.get(i).is_some_and(|v| v.iter().all(|b| *b == 0)));
    if let Some(index) = debug_pcr {
        if !options.allow_debug {
            return Err(VerifyError::DebugMode { index });
        }
    }

    // 7. Expected values.
    for (index, expected) in &options.expected_pcrs {
        match doc.pcrs.get(index) {
            None => return Err(VerifyError::PcrMissing { index: *index, expected: expected.clone() }),
            Some(actual) if actual != expected => {
                return Err(VerifyError::PcrMismatch {
                    index: *index,
                    expected: expected.clone(),
                    actual: actual.clone(),
                })
            }
            Some(_) => {}
        }
    }
    compare_optional(&options.expected_nonce, &doc.nonce, |expected, actual| VerifyError::NonceMismatch {
        expected,
        actual,
    })?;
    compare_optional(&options.expected_public_key, &doc.public_key, |expected, actual| {
        VerifyError::PublicKeyMismatch { expected, actual }
    })?;
    compare_optional(&options.expected_user_data, &doc.user_data, |expected, actual| VerifyError::UserDataMismatch {
        expected,
        actual,
    })?;

    // 8. Everything verified: only now may the links checked here enter the cache (the
    // caller adds them), so that every entry comes from a fully verified document.
    let verified = VerifiedDocument {
        module_id: doc.module_id,
        timestamp_ms: doc.timestamp_ms,
        digest: doc.digest,
        pcrs: doc.pcrs,
        public_key: doc.public_key,
        user_data: doc.user_data,
        nonce: doc.nonce,
        debug: debug_pcr.is_some(),
        chain: chain.certs.iter().map(CertificateInfo::from).collect(),
    };
    Ok((verified, chain.new_links))
}
