//! Why an attestation document was refused ([`VerifyError`]): every variant names what
//! failed, with the expected and actual values where there are some (bytes in hex).

use crate::x509::CertRole;

pub(crate) fn hx(b: &[u8]) -> String {
    hex::encode(b)
}

pub(crate) fn hx_opt(b: &Option<Vec<u8>>) -> String {
    match b {
        Some(b) => hex::encode(b),
        None => "null".to_string(),
    }
}

/// Why a document was refused. Every variant names what failed, with the
/// expected and actual values where there are some (byte values in hex).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The input could not be decoded (neither raw CBOR nor base64, bad PEM, …).
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// The document is larger than any real attestation document.
    #[error("document too large: at most {max} bytes accepted, got {actual}")]
    DocumentTooLarge {
        /// Largest accepted size.
        max: usize,
        /// Size given.
        actual: usize,
    },
    /// Malformed CBOR.
    #[error("malformed CBOR in {what}: {reason}")]
    MalformedCbor {
        /// Which structure.
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// Bytes after the end of a CBOR item.
    #[error("{count} trailing bytes after the {what}")]
    TrailingBytes {
        /// Which structure.
        what: &'static str,
        /// Number of extra bytes.
        count: usize,
    },
    /// The CBOR is not a COSE_Sign1 structure.
    #[error("not a COSE_Sign1 document: {reason}")]
    NotCoseSign1 {
        /// What is wrong.
        reason: String,
    },
    /// The protected header has no `alg`.
    #[error("COSE protected header has no algorithm: expected ES384 (-35)")]
    MissingAlgorithm,
    /// The protected header names another algorithm than ES384.
    #[error("unsupported COSE algorithm: expected {expected}, actual {actual}")]
    UnsupportedAlgorithm {
        /// The only accepted algorithm.
        expected: String,
        /// The algorithm found.
        actual: String,
    },
    /// A field of the attestation document is malformed.
    #[error("invalid attestation document field {field}: {reason}")]
    InvalidDocument {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A required field is absent.
    #[error("attestation document has no {field} field")]
    MissingField {
        /// Field name.
        field: &'static str,
    },
    /// A field appears twice in the payload map.
    #[error("attestation document field {field:?} appears twice")]
    DuplicateField {
        /// Field name.
        field: String,
    },
    /// The payload has no `pcrs`: a NitroTPM document, not an enclave one.
    #[error("NitroTPM attestation document (no pcrs field): not a Nitro Enclave document")]
    NitroTpmDocument,
    /// `digest` is not SHA384.
    #[error("unsupported PCR digest: expected {expected}, actual {actual:?}")]
    UnsupportedDigest {
        /// Accepted digest.
        expected: &'static str,
        /// Digest found.
        actual: String,
    },
    /// A PCR value has an impossible length.
    #[error("PCR{index} has length {actual}: expected 32, 48 or 64 bytes")]
    PcrLength {
        /// PCR index.
        index: u16,
        /// Length found.
        actual: usize,
    },
    /// The trusted root given to the verifier is unusable.
    #[error("trusted root certificate unusable: {reason}")]
    InvalidTrustedRoot {
        /// What is wrong.
        reason: String,
    },
    /// The embedded AWS root does not match its pin (corrupted build).
    #[error(
        "embedded AWS Nitro root does not match its pin: expected SHA-256 {}, actual {}",
        hx(expected),
        hx(actual)
    )]
    RootPinMismatch {
        /// Pinned hash.
        expected: [u8; 32],
        /// Hash of the embedded certificate.
        actual: [u8; 32],
    },
    /// A certificate is malformed or unsupported.
    #[error("{cert}: {reason}")]
    InvalidCertificate {
        /// Which certificate.
        cert: CertRole,
        /// What is wrong.
        reason: String,
    },
    /// A certificate uses an algorithm or curve outside this PKI.
    #[error("{cert}: unsupported algorithm: expected {expected}, actual {actual}")]
    UnsupportedCertificateAlgorithm {
        /// Which certificate.
        cert: CertRole,
        /// What is accepted.
        expected: &'static str,
        /// OID found.
        actual: String,
    },
    /// A certificate's issuer name is not the next certificate's subject.
    #[error("{cert}: issuer mismatch: expected {expected:?}, actual {actual:?}")]
    IssuerMismatch {
        /// Which certificate.
        cert: CertRole,
        /// Subject of the next certificate in the chain.
        expected: String,
        /// Issuer named by the certificate.
        actual: String,
    },
    /// The chain does not end at the trusted root.
    #[error("certificate chain does not end at the trusted root: expected issuer {expected:?}, actual {actual:?}")]
    UntrustedRoot {
        /// Subject of the trusted root.
        expected: String,
        /// Issuer named by the top certificate of the chain.
        actual: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("{cert} ({subject:?}): signature by {issuer:?} does not verify")]
    CertificateSignature {
        /// Which certificate.
        cert: CertRole,
        /// Its subject.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// An issuing certificate is not a CA (basicConstraints / keyUsage).
    #[error("{cert} ({subject:?}) is not a certificate authority (basicConstraints CA / keyCertSign missing)")]
    NotACertificateAuthority {
        /// Which certificate.
        cert: CertRole,
        /// Its subject.
        subject: String,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error("{cert}: path length constraint exceeded: at most {max} CA certificates below it, actual {actual}")]
    PathLengthExceeded {
        /// Which certificate.
        cert: CertRole,
        /// Its constraint.
        max: u8,
        /// CAs found below it.
        actual: usize,
    },
    /// A certificate is not yet valid at the verification time.
    #[error("{cert} ({subject:?}) not yet valid: notBefore {not_before}, verification time {at} (unix seconds)")]
    CertificateNotYetValid {
        /// Which certificate.
        cert: CertRole,
        /// Its subject.
        subject: String,
        /// Its notBefore.
        not_before: u64,
        /// Verification time.
        at: u64,
    },
    /// A certificate has expired at the verification time.
    #[error("{cert} ({subject:?}) expired: notAfter {not_after}, verification time {at} (unix seconds)")]
    CertificateExpired {
        /// Which certificate.
        cert: CertRole,
        /// Its subject.
        subject: String,
        /// Its notAfter.
        not_after: u64,
        /// Verification time.
        at: u64,
    },
    /// The COSE signature is not 96 bytes.
    #[error("COSE signature length: expected {expected} bytes (ES384 r||s), actual {actual}")]
    SignatureLength {
        /// 96.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// The COSE signature does not verify with the leaf certificate's key.
    #[error("COSE_Sign1 signature does not verify with the leaf certificate key ({subject:?})")]
    SignatureInvalid {
        /// Subject of the leaf certificate.
        subject: String,
    },
    /// The document timestamp is outside the leaf certificate's validity.
    #[error("document timestamp {timestamp_ms} ms is outside the leaf certificate validity [{not_before}, {not_after}] (unix seconds)")]
    TimestampOutsideCertificate {
        /// Document timestamp.
        timestamp_ms: u64,
        /// Leaf notBefore.
        not_before: u64,
        /// Leaf notAfter.
        not_after: u64,
    },
    /// The document was produced after the verification time.
    #[error("document timestamp {timestamp_ms} ms is after the verification time {at} (unix seconds)")]
    DocumentAfterVerificationTime {
        /// Document timestamp.
        timestamp_ms: u64,
        /// Verification time.
        at: u64,
    },
    /// The document is older than the maximum age.
    #[error("document too old: timestamp {timestamp_ms} ms, now {now_ms} ms, maximum age {max_age_secs} s")]
    DocumentTooOld {
        /// Document timestamp.
        timestamp_ms: u64,
        /// Current time.
        now_ms: u64,
        /// Maximum age.
        max_age_secs: u64,
    },
    /// The document timestamp is further in the future than the maximum age.
    #[error(
        "document timestamp in the future: timestamp {timestamp_ms} ms, now {now_ms} ms, tolerance {max_age_secs} s"
    )]
    DocumentFromFuture {
        /// Document timestamp.
        timestamp_ms: u64,
        /// Current time.
        now_ms: u64,
        /// Tolerance (the maximum age).
        max_age_secs: u64,
    },
    /// The system clock is unusable.
    #[error("system clock is before 1970")]
    Clock,
    /// The options pin no image (no expected PCR0, nor PCR1 and PCR2, other than all zeros)
    /// and `any_image` is not set.
    #[error(
        "no expected image: give the expected PCR0 (or PCR1 and PCR2) of the image you trust, e.g. from its \
         pcrs.json (all zeros, a debug-mode enclave's, pins none), or accept any image explicitly \
         (--any-image); expected PCRs given: {given}"
    )]
    NoExpectedImage {
        /// The PCR indexes that were given, e.g. `16`, or `none`.
        given: String,
    },
    /// A debug-mode document (all-zero PCR0/1/2) and debug was not allowed.
    #[error("debug-mode enclave (PCR{index} is all zeros): refused unless debug is allowed explicitly")]
    DebugMode {
        /// The all-zero PCR.
        index: u16,
    },
    /// An expected PCR is not in the document.
    #[error("PCR{index} missing from the document: expected {}", hx(expected))]
    PcrMissing {
        /// PCR index.
        index: u16,
        /// Expected value.
        expected: Vec<u8>,
    },
    /// A PCR differs from the expected value.
    #[error("PCR{index} mismatch: expected {}, actual {}", hx(expected), hx(actual))]
    PcrMismatch {
        /// PCR index.
        index: u16,
        /// Expected value.
        expected: Vec<u8>,
        /// Value in the document.
        actual: Vec<u8>,
    },
    /// The nonce differs from the expected one.
    #[error("nonce mismatch: expected {}, actual {}", hx(expected), hx_opt(actual))]
    NonceMismatch {
        /// Expected nonce.
        expected: Vec<u8>,
        /// Nonce in the document (None: absent).
        actual: Option<Vec<u8>>,
    },
    /// The public key differs from the expected one.
    #[error("public_key mismatch: expected {}, actual {}", hx(expected), hx_opt(actual))]
    PublicKeyMismatch {
        /// Expected public key.
        expected: Vec<u8>,
        /// Public key in the document (None: absent).
        actual: Option<Vec<u8>>,
    },
    /// The user data differs from the expected one.
    #[error("user_data mismatch: expected {}, actual {}", hx(expected), hx_opt(actual))]
    UserDataMismatch {
        /// Expected user data.
        expected: Vec<u8>,
        /// User data in the document (None: absent).
        actual: Option<Vec<u8>>,
    },
}
