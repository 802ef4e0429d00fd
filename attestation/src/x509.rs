//! X.509 certificate parsing and chain validation for the Nitro attestation PKI.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::spki::ObjectIdentifier;
use x509_cert::Certificate;

use crate::cache::{CertCache, CertHash, LinkKey, LinkKind, NewLink, Window};
use crate::verify::VerifyError;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// Where a certificate sits in the chain being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// The document's `certificate` (the NSM's signing certificate).
    Leaf,
    /// `cabundle[i]` of the document.
    CaBundle(usize),
    /// The trusted root given to the verifier.
    TrustedRoot,
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertRole::Leaf => write!(f, "leaf certificate"),
            CertRole::CaBundle(i) => write!(f, "cabundle[{i}]"),
            CertRole::TrustedRoot => write!(f, "trusted root certificate"),
        }
    }
}

/// Elliptic curve of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    /// Bytes of an uncompressed point `04 ‖ x ‖ y`.
    pub(crate) fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }
}

/// Whether `key` is an uncompressed point of `curve`'s size: the only encoding a
/// certificate's key is taken in. (AWS-LC, given a key alone, would also take a compressed
/// `02`/`03` point, a hybrid `06`/`07` one or a whole SubjectPublicKeyInfo — ring would
/// not; `differential.rs` shows both.)
pub(crate) fn is_uncompressed_point(key: &[u8], curve: Curve) -> bool {
    key.len() == curve.point_len() && key.first() == Some(&0x04)
}

/// A parsed certificate with what chain validation needs.
#[derive(Debug, Clone)]
pub(crate) struct ParsedCert {
    pub role: CertRole,
    pub der: Vec<u8>,
    pub tbs_der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    pub not_before: u64,
    pub not_after: u64,
    pub signature_alg: ObjectIdentifier,
    pub signature: Vec<u8>,
    pub curve: Curve,
    /// Uncompressed EC point `04 || x || y`.
    pub public_key: Vec<u8>,
    pub basic_constraints: Option<BasicConstraints>,
    pub key_usage: Option<KeyUsage>,
}

fn cert_err(role: CertRole, reason: impl Into<String>) -> VerifyError {
    VerifyError::InvalidCertificate { cert: role, reason: reason.into() }
}

/// The most extensions a certificate may carry.
const MAX_EXTENSIONS: usize = 16;

/// Parses a DER certificate and checks its structure (strict DER, ECDSA key,
/// supported signature algorithm, no unknown critical extension).
pub(crate) fn parse_cert(role: CertRole, der_bytes: &[u8]) -> Result<ParsedCert, VerifyError> {
    let cert =
        Certificate::from_der(der_bytes).map_err(|e| cert_err(role, format!("not a DER X.509 certificate: {e}")))?;
    // The signed bytes are the re-encoded TBSCertificate: require that the
    // input is canonical DER so that they are exactly the bytes received.
    let reencoded = cert.to_der().map_err(|e| cert_err(role, format!("cannot re-encode: {e}")))?;
    if reencoded != der_bytes {
        return Err(cert_err(role, "certificate is not canonical DER"));
    }
    let tbs = &cert.tbs_certificate;
    let tbs_der = tbs.to_der().map_err(|e| cert_err(role, format!("cannot encode TBSCertificate: {e}")))?;
    if tbs.signature != cert.signature_algorithm {
        return Err(cert_err(role, "signature algorithm of TBSCertificate differs from the outer one"));
    }
    let signature_alg = cert.signature_algorithm.oid;
    if signature_alg != OID_ECDSA_SHA384 && signature_alg != OID_ECDSA_SHA256 {
        return Err(VerifyError::UnsupportedCertificateAlgorithm {
            cert: role,
            expected: "ecdsa-with-SHA384 (1.2.840.10045.4.3.3) or ecdsa-with-SHA256 (1.2.840.10045.4.3.2)",
            actual: signature_alg.to_string(),
        });
    }
    if cert.signature_algorithm.parameters.is_some() {
        return Err(cert_err(role, "ECDSA signature algorithm with parameters"));
    }
    let signature =
        cert.signature.as_bytes().ok_or_else(|| cert_err(role, "signature bit string has unused bits"))?.to_vec();

    let spki = &tbs.subject_public_key_info;
    if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
        return Err(VerifyError::UnsupportedCertificateAlgorithm {
            cert: role,
            expected: "id-ecPublicKey (1.2.840.10045.2.1)",
            actual: spki.algorithm.oid.to_string(),
        });
    }
    let curve_oid: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| cert_err(role, "EC public key without named curve"))?
        .decode_as()
        .map_err(|e| cert_err(role, format!("EC public key curve is not a named curve: {e}")))?;
    let curve = if curve_oid == OID_SECP384R1 {
        Curve::P384
    } else if curve_oid == OID_SECP256R1 {
        Curve::P256
    } else {
        return Err(VerifyError::UnsupportedCertificateAlgorithm {
            cert: role,
            expected: "secp384r1 (1.3.132.0.34) or prime256v1 (1.2.840.10045.3.1.7)",
            actual: curve_oid.to_string(),
        });
    };
    let public_key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| cert_err(role, "public key bit string has unused bits"))?
        .to_vec();
    if !is_uncompressed_point(&public_key, curve) {
        return Err(cert_err(
            role,
            format!(
                "public key is not an uncompressed point (04 ‖ x ‖ y) of {} bytes (got {} bytes starting {})",
                curve.point_len(),
                public_key.len(),
                public_key.first().map_or("with nothing".to_string(), |b| format!("{b:02x}"))
            ),
        ));
    }

    let mut basic_constraints = None;
    let mut key_usage = None;
    // Few extensions (a Nitro certificate has 3 or 4), so that looking for duplicates pair
    // by pair stays cheap.
    let extensions = tbs.extensions.as_ref().map_or(0, Vec::len);
    if extensions > MAX_EXTENSIONS {
        return Err(cert_err(role, format!("{extensions} extensions; at most {MAX_EXTENSIONS}")));
    }
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for ext in tbs.extensions.iter().flatten() {
        if seen.contains(&ext.extn_id) {
            return Err(cert_err(role, format!("duplicate extension {}", ext.extn_id)));
        }
        seen.push(ext.extn_id);
        let value = ext.extn_value.as_bytes();
        if ext.extn_id == OID_BASIC_CONSTRAINTS {
            basic_constraints = Some(
                BasicConstraints::from_der(value).map_err(|e| cert_err(role, format!("bad basicConstraints: {e}")))?,
            );
        } else if ext.extn_id == OID_KEY_USAGE {
            key_usage = Some(KeyUsage::from_der(value).map_err(|e| cert_err(role, format!("bad keyUsage: {e}")))?);
        } else if ext.extn_id == OID_EXT_KEY_USAGE {
            // Not used for this PKI; recognised so that a critical one is accepted.
        } else if ext.critical {
            return Err(cert_err(role, format!("unsupported critical extension {}", ext.extn_id)));
        }
    }

    let subject_der = tbs.subject.to_der().map_err(|e| cert_err(role, format!("cannot encode subject: {e}")))?;
    let issuer_der = tbs.issuer.to_der().map_err(|e| cert_err(role, format!("cannot encode issuer: {e}")))?;

    Ok(ParsedCert {
        role,
        der: der_bytes.to_vec(),
        tbs_der,
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        subject_der,
        issuer_der,
        not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
        not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        signature_alg,
        signature,
        curve,
        public_key,
        basic_constraints,
        key_usage,
    })
}

fn verification_algorithm(sig_alg: ObjectIdentifier, issuer_curve: Curve) -> &'static dyn VerificationAlgorithm {
    match (sig_alg == OID_ECDSA_SHA384, issuer_curve) {
        (true, Curve::P384) => &signature::ECDSA_P384_SHA384_ASN1,
        (true, Curve::P256) => &signature::ECDSA_P256_SHA384_ASN1,
        (false, Curve::P384) => &signature::ECDSA_P384_SHA256_ASN1,
        (false, Curve::P256) => &signature::ECDSA_P256_SHA256_ASN1,
    }
}

/// Checks the validity period of `cert` at `at` (unix seconds).
pub(crate) fn check_validity(cert: &ParsedCert, at: u64) -> Result<(), VerifyError> {
    if at < cert.not_before {
        return Err(VerifyError::CertificateNotYetValid {
            cert: cert.role,
            subject: cert.subject.clone(),
            not_before: cert.not_before,
            at,
        });
    }
    if at > cert.not_after {
        return Err(VerifyError::CertificateExpired {
            cert: cert.role,
            subject: cert.subject.clone(),
            not_after: cert.not_after,
            at,
        });
    }
    Ok(())
}

/// Checks that `issuer` may issue certificates and that `child` is signed by it.
/// `ca_below` is the number of CA certificates between `issuer` and the leaf.
/// With `signature_known`, the signature was verified before (by this same pair of
/// certificates) and is not checked again; everything else is.
fn check_link(
    child: &ParsedCert,
    issuer: &ParsedCert,
    ca_below: usize,
    anchored: bool,
    signature_known: bool,
) -> Result<(), VerifyError> {
    if child.issuer_der != issuer.subject_der {
        if anchored {
            return Err(VerifyError::UntrustedRoot { expected: issuer.subject.clone(), actual: child.issuer.clone() });
        }
        return Err(VerifyError::IssuerMismatch {
            cert: child.role,
            expected: issuer.subject.clone(),
            actual: child.issuer.clone(),
        });
    }
    match &issuer.basic_constraints {
        Some(bc) if bc.ca => {
            if let Some(max) = bc.path_len_constraint {
                if ca_below > usize::from(max) {
                    return Err(VerifyError::PathLengthExceeded { cert: issuer.role, max, actual: ca_below });
                }
            }
        }
        _ => return Err(VerifyError::NotACertificateAuthority { cert: issuer.role, subject: issuer.subject.clone() }),
    }
    if let Some(ku) = &issuer.key_usage {
        if !ku.0.contains(KeyUsages::KeyCertSign) {
            return Err(VerifyError::NotACertificateAuthority { cert: issuer.role, subject: issuer.subject.clone() });
        }
    }
    if signature_known {
        return Ok(());
    }
    let alg = verification_algorithm(child.signature_alg, issuer.curve);
    UnparsedPublicKey::new(alg, &issuer.public_key).verify(&child.tbs_der, &child.signature).map_err(|_| {
        if anchored {
            VerifyError::UntrustedRoot {
                expected: issuer.subject.clone(),
                actual: format!("{} (signature by the trusted root does not verify)", child.issuer),
            }
        } else {
            VerifyError::CertificateSignature {
                cert: child.role,
                subject: child.subject.clone(),
                issuer: issuer.subject.clone(),
            }
        }
    })
}

/// Summary of one certificate of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject distinguished name (RFC 4514 form).
    pub subject: String,
    /// Issuer distinguished name (RFC 4514 form).
    pub issuer: String,
    /// Start of validity, unix seconds.
    pub not_before: u64,
    /// End of validity, unix seconds.
    pub not_after: u64,
    /// SHA-256 of the certificate DER.
    pub sha256: [u8; 32],
}

impl From<&ParsedCert> for CertificateInfo {
    fn from(c: &ParsedCert) -> Self {
        CertificateInfo {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            sha256: Sha256::digest(&c.der).into(),
        }
    }
}

/// A chain validated by [`verify_chain`].
#[derive(Debug)]
pub(crate) struct VerifiedChain {
    /// The chain, leaf first, trusted root last.
    pub certs: Vec<ParsedCert>,
    /// The links whose signature was checked here (not taken from the cache), to add
    /// to the cache once the whole document verified — never before. Empty without a
    /// cache.
    pub new_links: Vec<NewLink>,
}

/// Checks that the leaf's key is a P-384 key (the COSE signature is ES384).
fn check_leaf_key(leaf: &ParsedCert) -> Result<(), VerifyError> {
    if leaf.curve != Curve::P384 {
        return Err(VerifyError::UnsupportedCertificateAlgorithm {
            cert: CertRole::Leaf,
            expected: "secp384r1 (1.3.132.0.34) leaf key for ES384",
            actual: "prime256v1 (1.2.840.10045.3.1.7)".to_string(),
        });
    }
    Ok(())
}

/// Checks that the leaf is a document signing certificate: not a CA, and a keyUsage,
/// if it has one, that allows digital signatures.
fn check_leaf_usage(leaf: &ParsedCert) -> Result<(), VerifyError> {
    if leaf.basic_constraints.as_ref().is_some_and(|bc| bc.ca) {
        return Err(cert_err(
            CertRole::Leaf,
            "is a certificate authority (basicConstraints CA): a CA certificate does not sign attestation documents",
        ));
    }
    if let Some(ku) = &leaf.key_usage {
        if !ku.0.contains(KeyUsages::DigitalSignature) {
            return Err(cert_err(CertRole::Leaf, "keyUsage does not allow digitalSignature"));
        }
    }
    Ok(())
}

/// Validates `leaf ← intermediates[n-1] ← … ← intermediates[0] ← root` at `at`
/// (unix seconds). `intermediates` is `cabundle[1..]` (`cabundle[0]` is ignored
/// and replaced by `root`; `root_hash` is the SHA-256 of its DER).
///
/// With a `cache`, a certificate — a CA certificate of the bundle, or the leaf —
/// whose link to its issuer (by DER hashes) was verified before, for a window
/// containing `at`, is taken parsed from the cache and its signature is not checked
/// again; every other check (names, CA constraints, path lengths, key usage, the
/// leaf's curve and that it is not a CA, every validity at `at`) is the same, in the
/// same order, so the result is the same as without the cache. The links verified
/// here are returned in [`VerifiedChain::new_links`], not added: the caller adds them
/// once the whole document verified.
pub(crate) fn verify_chain(
    leaf_der: &[u8],
    cabundle: &[Vec<u8>],
    root: &ParsedCert,
    root_hash: &CertHash,
    at: u64,
    cache: Option<&CertCache>,
) -> Result<VerifiedChain, VerifyError> {
    // cabundle[0] is the root itself in AWS documents: never trusted, skipped.
    // With a cache: `keys[i - 1]` is the link of cabundle[i] (i ≥ 1) to its issuer
    // (cabundle[i - 1], or the trusted root for i = 1), and the last key the leaf's
    // link to the last certificate of the bundle (or to the root if there is none);
    // `found[k]` is the cached certificate of `keys[k]`, if cached for `at`.
    let ca_count = cabundle.len().saturating_sub(1);
    let mut keys: Vec<LinkKey> = Vec::new();
    let mut found: Vec<Option<Arc<ParsedCert>>> = Vec::new();
    if let Some(cache) = cache {
        keys.reserve(ca_count + 1);
        let mut issuer = *root_hash;
        for der in cabundle.iter().skip(1) {
            let cert: CertHash = Sha256::digest(der).into();
            keys.push(LinkKey { cert, issuer, kind: LinkKind::Ca });
            issuer = cert;
        }
        keys.push(LinkKey { cert: Sha256::digest(leaf_der).into(), issuer, kind: LinkKind::Leaf });
        found = cache.lookup(&keys, at);
    }
    let cached = |k: usize| found.get(k).cloned().flatten();

    // Leaf first; `signature_known[j]`: chain[j]'s signature by chain[j + 1] is cached.
    let cached_leaf = cached(ca_count);
    let leaf = match &cached_leaf {
        Some(cert) => ParsedCert::clone(cert),
        None => parse_cert(CertRole::Leaf, leaf_der)?,
    };
    check_leaf_key(&leaf)?;
    let mut chain = vec![leaf];
    let mut signature_known = vec![cached_leaf.is_some()];
    for (i, der) in cabundle.iter().enumerate().skip(1).rev() {
        match cached(i - 1) {
            Some(cert) => {
                let mut cert = ParsedCert::clone(&cert);
                cert.role = CertRole::CaBundle(i);
                chain.push(cert);
                signature_known.push(true);
            }
            None => {
                chain.push(parse_cert(CertRole::CaBundle(i), der)?);
                signature_known.push(false);
            }
        }
    }
    chain.push(root.clone());

    let n = chain.len();
    for i in 0..n.saturating_sub(1) {
        let (Some(child), Some(issuer)) = (chain.get(i), chain.get(i + 1)) else {
            break;
        };
        // CAs strictly between this issuer and the leaf.
        let ca_below = i;
        let known = signature_known.get(i).copied().unwrap_or(false);
        check_link(child, issuer, ca_below, i + 2 == n, known)?;
    }
    // Names and signatures first (so that a foreign chain is reported as
    // such), then the leaf's usage, then every certificate's validity at the
    // verification time.
    if let Some(leaf) = chain.first() {
        check_leaf_usage(leaf)?;
    }
    for cert in &chain {
        check_validity(cert, at)?;
    }

    // From the root down (cabundle[1], cabundle[2], …, the leaf): each certificate
    // with the validity of its whole prefix, keyed by its hash and its issuer's.
    let mut new_links = Vec::new();
    let mut window = Window::of(root);
    for (k, key) in keys.iter().enumerate() {
        // keys[k] is about chain[n - 2 - k]: cabundle[k + 1], the leaf for the last.
        let Some(cert) = n.checked_sub(2 + k).and_then(|j| chain.get(j)) else { break };
        window = window.narrowed(cert);
        let wanted = key.kind == LinkKind::Ca || cache.is_some_and(CertCache::caches_leaf_links);
        if wanted && found.get(k).is_some_and(Option::is_none) {
            new_links.push(NewLink { key: *key, cert: Arc::new(cert.clone()), window });
        }
    }
    Ok(VerifiedChain { certs: chain, new_links })
}

#[cfg(test)]
mod differential;
