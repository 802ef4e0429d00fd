//! Bridle attestation: the Nitro Secure Module interface ([`NsmProvider`],
//! [`RealNsm`] over `/dev/nsm`, [`MockNsm`] for development) and the verifier of
//! AWS Nitro Enclaves attestation documents ([`verify()`]).
//!
//! [`verify()`] keeps a process-wide [`CertCache`] of the certificate links it verified
//! in documents that passed: the CA links of the bundle, and each enclave's leaf
//! certificate by its instance CA (a Nitro enclave keeps one leaf for hours). A later
//! document from the same enclave then costs one P-384 check, its COSE signature, which
//! is always verified; every other check is made each time and the result is the same
//! as [`verify_uncached`]'s. See [`cache`].
//!
//! ```
//! use bridle_attestation::{verify, MockNsm, NsmProvider, VerifyOptions};
//!
//! let nsm = MockNsm::new()?;
//! let doc = nsm.attestation(None, Some(b"challenge".to_vec()), None)?;
//! let options = VerifyOptions::now(300)
//!     .with_root_der(nsm.root_der().to_vec()) // the mock root, explicitly
//!     .with_pcr(0, nsm.image().pcr0.to_vec())
//!     .with_nonce(b"challenge".to_vec());
//! let verified = verify(&doc, &options)?;
//! assert_eq!(verified.nonce.as_deref(), Some(&b"challenge"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
mod cose;
mod document;
mod input;
pub mod mock;
pub mod nsm;
pub mod pcrs;
pub mod verify;
mod verify_error;
mod x509;

pub use cache::{CertCache, CertCacheStats};
pub use cose::{ALG_ES384, COSE_SIGN1_TAG, MAX_DOCUMENT_LEN, MAX_PROTECTED_BYTES};
pub use document::{parse_document, UnverifiedDocument, MAX_CABUNDLE, MAX_CERT_BYTES};
pub use input::{decode_document_input, encode_base64, InputEncoding};
pub use mock::{ImageMeasurement, MockCa, MockNsm, PayloadEncoding};
pub use nsm::{
    NsmError, NsmProvider, PcrDescription, RealNsm, FIRST_USER_PCR, MAX_NONCE_LEN, MAX_PUBLIC_KEY_LEN,
    MAX_USER_DATA_LEN, PCR_COUNT, PCR_LEN,
};
pub use pcrs::parse_pcrs_json;
pub use verify::{
    aws_nitro_root_g1_der, certificate_pem_to_der, pins_image, verify, verify_then, verify_uncached, verify_with_cache,
    CertificateInfo, TrustedRoot, VerifiedDocument, VerifyError, VerifyOptions, VerifyTime, AWS_NITRO_ROOT_G1_PEM,
    AWS_NITRO_ROOT_G1_SHA256, DEFAULT_MAX_AGE_SECS,
};
pub use x509::CertRole;
