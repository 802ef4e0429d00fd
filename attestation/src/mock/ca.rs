//! [`MockCa`]: a persisted mock Nitro certificate authority (root + intermediate)
//! shared by several [`MockNsm`](super::MockNsm)s, so that mock enclaves in
//! different processes verify each other's documents with one root.
//!
//! The file written by [`MockCa::save`] is JSON:
//!
//! ```json
//! {
//!   "format": "bridle-mock-nitro-ca/1",
//!   "note": "…",
//!   "root_certificate": "-----BEGIN CERTIFICATE-----\n…",
//!   "root_key": "<96 hex digits: P-384 private scalar>",
//!   "intermediate_certificate": "-----BEGIN CERTIFICATE-----\n…",
//!   "intermediate_key": "<96 hex digits>"
//! }
//! ```
//!
//! Anyone holding the file can make documents that its root accepts: it is for
//! development and tests only, and a verifier trusts it only when given its root
//! explicitly.

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use der::asn1::{BitString, UtcTime};
use der::pem::LineEnding;
use der::{DecodePem, Encode, EncodePem};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::{internal, random_bytes, MockLeaf};
use crate::nsm::NsmError;

/// Validity of the mock chain, relative to its creation.
const MOCK_BACKDATE: Duration = Duration::from_secs(3600);
const MOCK_ROOT_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
const MOCK_LEAF_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The `format` value of a mock CA file.
const FORMAT: &str = "bridle-mock-nitro-ca/1";

/// Largest mock CA file [`MockCa::load`] reads (a real one is about 2 KiB).
const MAX_FILE_LEN: u64 = 64 * 1024;

fn random_signing_key(rng: &SystemRandom) -> Result<SigningKey, NsmError> {
    for _ in 0..16 {
        let bytes = random_bytes(rng, 48)?;
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(NsmError::Internal("could not generate a P-384 key".to_string()))
}

fn utc(t: SystemTime) -> Result<Time, NsmError> {
    let d = t.duration_since(UNIX_EPOCH).map_err(|e| internal("clock", e))?;
    Ok(Time::UtcTime(
        UtcTime::from_unix_duration(Duration::from_secs(d.as_secs())).map_err(|e| internal("certificate time", e))?,
    ))
}

fn validity(now: SystemTime, lifetime: Duration) -> Result<Validity, NsmError> {
    let start = now.checked_sub(MOCK_BACKDATE).unwrap_or(now);
    let end = now.checked_add(lifetime).unwrap_or(now);
    Ok(Validity { not_before: utc(start)?, not_after: utc(end)? })
}

fn serial(rng: &SystemRandom) -> Result<SerialNumber, NsmError> {
    let mut bytes = random_bytes(rng, 16)?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    SerialNumber::new(&bytes).map_err(|e| internal("serial number", e))
}

fn spki(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, NsmError> {
    SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| internal("SPKI", e))
}

fn name(s: &str) -> Result<Name, NsmError> {
    Name::from_str(s).map_err(|e| internal("name", e))
}

fn bad_file(reason: impl std::fmt::Display) -> NsmError {
    NsmError::InvalidArgument(format!("mock CA: {reason}"))
}

/// A mock Nitro certificate authority: a P-384 root and an intermediate (keys and
/// certificates). [`MockNsm::with_ca`](super::MockNsm::with_ca) issues each mock
/// enclave a leaf under the intermediate. See the `mock::ca` module documentation.
#[derive(Clone)]
pub struct MockCa {
    root_key: SigningKey,
    intermediate_key: SigningKey,
    root: Certificate,
    intermediate: Certificate,
    root_der: Vec<u8>,
    root_pem: String,
    intermediate_der: Vec<u8>,
}

impl std::fmt::Debug for MockCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCa").field("root", &self.root.tbs_certificate.subject.to_string()).finish_non_exhaustive()
    }
}

impl MockCa {
    /// A new mock CA with fresh keys (root valid 20 years, backdated one hour).
    pub fn generate() -> Result<Self, NsmError> {
        let rng = SystemRandom::new();
        let tag = hex::encode(random_bytes(&rng, 8)?);
        Self::generate_tagged(&rng, &tag)
    }

    pub(super) fn generate_tagged(rng: &SystemRandom, tag: &str) -> Result<Self, NsmError> {
        let now = SystemTime::now();
        let root_key = random_signing_key(rng)?;
        let intermediate_key = random_signing_key(rng)?;
        let root_name = name(&format!("CN=Bridle mock Nitro root {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;
        let inter_name = name(&format!("CN=Bridle mock Nitro intermediate {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;

        let root = CertificateBuilder::new(
            Profile::Root,
            serial(rng)?,
            validity(now, MOCK_ROOT_LIFETIME)?,
            root_name.clone(),
            spki(&root_key)?,
            &root_key,
        )
        .map_err(|e| internal("root certificate", e))?
        .build::<DerSignature>()
        .map_err(|e| internal("root certificate", e))?;

        let intermediate = CertificateBuilder::new(
            Profile::SubCA { issuer: root_name, path_len_constraint: Some(0) },
            serial(rng)?,
            validity(now, MOCK_ROOT_LIFETIME)?,
            inter_name,
            spki(&intermediate_key)?,
            &root_key,
        )
        .map_err(|e| internal("intermediate certificate", e))?
        .build::<DerSignature>()
        .map_err(|e| internal("intermediate certificate", e))?;

        Self::from_parts(root_key, root, intermediate_key, intermediate)
    }

    fn from_parts(
        root_key: SigningKey,
        root: Certificate,
        intermediate_key: SigningKey,
        intermediate: Certificate,
    ) -> Result<Self, NsmError> {
        let root_der = root.to_der().map_err(|e| internal("root DER", e))?;
        let root_pem = root.to_pem(LineEnding::LF).map_err(|e| internal("root PEM", e))?;
        let intermediate_der = intermediate.to_der().map_err(|e| internal("intermediate DER", e))?;
        Ok(MockCa { root_key, intermediate_key, root, intermediate, root_der, root_pem, intermediate_der })
    }

    /// Issues a leaf key and certificate of the given kind under the intermediate.
    pub(super) fn issue_leaf(
        &self,
        rng: &SystemRandom,
        tag: &str,
        kind: MockLeaf,
    ) -> Result<(SigningKey, Vec<u8>), NsmError> {
        let leaf_key = random_signing_key(rng)?;
        let leaf_name = name(&format!("CN=Bridle mock Nitro enclave {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;
        let leaf = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.intermediate.tbs_certificate.subject.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            serial(rng)?,
            validity(SystemTime::now(), MOCK_LEAF_LIFETIME)?,
            leaf_name,
            spki(&leaf_key)?,
            &self.intermediate_key,
        )
        .map_err(|e| internal("leaf certificate", e))?
        .build::<DerSignature>()
        .map_err(|e| internal("leaf certificate", e))?;
        let leaf = match kind {
            MockLeaf::Signing => leaf,
            MockLeaf::Ca => self.with_extension(leaf, &BasicConstraints { ca: true, path_len_constraint: None })?,
            MockLeaf::KeyCertSignOnly => self.with_extension(leaf, &KeyUsage(KeyUsages::KeyCertSign.into()))?,
        };
        let leaf_der = leaf.to_der().map_err(|e| internal("leaf DER", e))?;
        Ok((leaf_key, leaf_der))
    }

    /// `cert` (issued by the intermediate) with its extension of `ext`'s type replaced
    /// by `ext`, signed again by the intermediate.
    fn with_extension(&self, mut cert: Certificate, ext: &impl AsExtension) -> Result<Certificate, NsmError> {
        let tbs = &mut cert.tbs_certificate;
        let new: Extension = ext.to_extension(&tbs.subject, &[]).map_err(|e| internal("leaf extension", e))?;
        let slot = tbs
            .extensions
            .iter_mut()
            .flatten()
            .find(|e| e.extn_id == new.extn_id)
            .ok_or_else(|| internal("leaf extension", "not in the leaf profile"))?;
        *slot = new;
        let tbs_der = tbs.to_der().map_err(|e| internal("leaf TBSCertificate", e))?;
        let signature: DerSignature =
            self.intermediate_key.try_sign(&tbs_der).map_err(|e| internal("leaf signature", e))?;
        cert.signature = BitString::from_bytes(signature.as_bytes()).map_err(|e| internal("leaf signature", e))?;
        Ok(cert)
    }

    /// DER of the root certificate: what verifiers of these mock enclaves pin.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// PEM of the root certificate.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// DER of the intermediate certificate.
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// The CA as the JSON text described in the `mock::ca` module documentation,
    /// private keys included.
    pub fn to_json(&self) -> Result<String, NsmError> {
        let inter_pem = self.intermediate.to_pem(LineEnding::LF).map_err(|e| internal("intermediate PEM", e))?;
        let doc = serde_json::json!({
            "format": FORMAT,
            "note": "Bridle mock Nitro CA for development and tests - NOT AWS. Whoever holds this file can make \
                     attestation documents its root accepts.",
            "root_certificate": self.root_pem,
            "root_key": hex::encode(self.root_key.to_bytes()),
            "intermediate_certificate": inter_pem,
            "intermediate_key": hex::encode(self.intermediate_key.to_bytes()),
        });
        serde_json::to_string_pretty(&doc).map_err(|e| internal("JSON", e))
    }

    /// Reads a CA from [`MockCa::to_json`] text. Refuses an unknown format, a
    /// malformed certificate or key, a key that is not its certificate's, and an
    /// intermediate not named as issued by the root.
    pub fn from_json(text: &str) -> Result<Self, NsmError> {
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad_file(format!("not JSON: {e}")))?;
        let field = |k: &str| -> Result<&str, NsmError> {
            doc.get(k).and_then(|v| v.as_str()).ok_or_else(|| bad_file(format!("missing string field {k:?}")))
        };
        let format = field("format")?;
        if format != FORMAT {
            return Err(bad_file(format!("format: expected {FORMAT:?}, actual {format:?}")));
        }
        let cert = |k: &str| -> Result<Certificate, NsmError> {
            Certificate::from_pem(field(k)?.trim().as_bytes()).map_err(|e| bad_file(format!("{k}: {e}")))
        };
        let key = |k: &str, cert: &Certificate| -> Result<SigningKey, NsmError> {
            let bytes = hex::decode(field(k)?.trim()).map_err(|e| bad_file(format!("{k}: not hex: {e}")))?;
            let key = SigningKey::from_slice(&bytes).map_err(|_| bad_file(format!("{k}: not a P-384 private key")))?;
            if spki(&key)? != cert.tbs_certificate.subject_public_key_info {
                return Err(bad_file(format!("{k} is not the key of its certificate")));
            }
            Ok(key)
        };
        let root = cert("root_certificate")?;
        let intermediate = cert("intermediate_certificate")?;
        let root_key = key("root_key", &root)?;
        let intermediate_key = key("intermediate_key", &intermediate)?;
        if intermediate.tbs_certificate.issuer != root.tbs_certificate.subject {
            return Err(bad_file(format!(
                "intermediate issuer mismatch: expected {}, actual {}",
                root.tbs_certificate.subject, intermediate.tbs_certificate.issuer
            )));
        }
        Self::from_parts(root_key, root, intermediate_key, intermediate)
    }

    /// Writes the CA to a new file `path` (mode 0600 on Unix). Never overwrites:
    /// an existing file is an error.
    pub fn save(&self, path: &Path) -> Result<(), NsmError> {
        let json = self.to_json()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| bad_file(format!("cannot create {}: {e}", path.display())))?;
        file.write_all(json.as_bytes()).map_err(|e| bad_file(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads a CA written by [`MockCa::save`] (at most 64 KiB).
    pub fn load(path: &Path) -> Result<Self, NsmError> {
        let file = std::fs::File::open(path).map_err(|e| bad_file(format!("cannot open {}: {e}", path.display())))?;
        let mut text = String::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(|e| bad_file(format!("cannot read {}: {e}", path.display())))?;
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(bad_file(format!("{} is larger than {MAX_FILE_LEN} bytes", path.display())));
        }
        Self::from_json(&text)
    }

    /// Loads the CA at `path`, or generates one and saves it there when the file
    /// does not exist. Several processes racing on the same path end up with the
    /// same CA (the first writer's).
    pub fn load_or_create(path: &Path) -> Result<Self, NsmError> {
        if path.exists() {
            return Self::load(path);
        }
        let ca = Self::generate()?;
        match ca.save(path) {
            Ok(()) => Ok(ca),
            Err(_) if path.exists() => Self::load(path),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{verify, ImageMeasurement, MockNsm, NsmProvider, VerifyError, VerifyOptions};

    fn options(root: &[u8], image: &ImageMeasurement) -> VerifyOptions {
        VerifyOptions::now(300).with_root_der(root.to_vec()).with_pcr(0, image.pcr0.to_vec())
    }

    #[test]
    fn two_mocks_of_one_ca_verify_each_other_and_another_ca_is_refused() {
        let ca = MockCa::generate().unwrap();
        let image = ImageMeasurement::mock_default();
        let a = MockNsm::with_ca(&ca, image.clone()).unwrap();
        let b = MockNsm::with_ca(&ca, image.clone()).unwrap();
        assert_ne!(a.leaf_der(), b.leaf_der());
        assert_eq!(a.root_der(), ca.root_der());
        let doc_a = a.attestation(None, Some(b"n".to_vec()), None).unwrap();
        let doc_b = b.attestation(None, Some(b"n".to_vec()), None).unwrap();
        // Each side verifies the other's document with the shared root.
        verify(&doc_a, &options(b.root_der(), &image)).expect("b verifies a");
        verify(&doc_b, &options(a.root_der(), &image)).expect("a verifies b");

        let other = MockCa::generate().unwrap();
        let err = verify(&doc_a, &options(other.root_der(), &image)).unwrap_err();
        assert!(matches!(err, VerifyError::UntrustedRoot { .. }), "{err}");
        // Even under the same names, another CA's root does not verify the chain.
        let c = MockNsm::with_ca(&other, image.clone()).unwrap();
        let doc_c = c.attestation(None, None, None).unwrap();
        assert!(verify(&doc_c, &options(ca.root_der(), &image)).is_err());
    }

    #[test]
    fn json_round_trip_and_file_shared_between_instances() {
        let dir = std::env::temp_dir().join(format!("bridle-mock-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.json");
        let ca = MockCa::load_or_create(&path).unwrap();
        let again = MockCa::load_or_create(&path).unwrap();
        assert_eq!(ca.root_der(), again.root_der());
        assert!(ca.save(&path).is_err(), "save never overwrites");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A mock started from the loaded copy verifies with the original root.
        let image = ImageMeasurement::mock_default().with_pcr8([8; 48]);
        let nsm = MockNsm::with_ca(&again, image.clone()).unwrap();
        let doc = nsm.attestation(None, None, None).unwrap();
        let verified = verify(&doc, &options(ca.root_der(), &image).with_pcr(8, vec![8; 48])).unwrap();
        assert_eq!(verified.pcrs[&8], vec![8; 48]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leaves_that_are_not_signing_certificates_are_refused() {
        use crate::mock::MockLeaf;
        let ca = MockCa::generate().unwrap();
        let image = ImageMeasurement::mock_default();
        for (leaf, why) in [
            (MockLeaf::Ca, "is a certificate authority"),
            (MockLeaf::KeyCertSignOnly, "keyUsage does not allow digitalSignature"),
        ] {
            let nsm = MockNsm::with_ca_and_leaf(&ca, image.clone(), leaf).unwrap();
            let doc = nsm.attestation(None, None, None).unwrap();
            let err = verify(&doc, &options(ca.root_der(), &image)).unwrap_err();
            assert!(matches!(err, VerifyError::InvalidCertificate { .. }), "{leaf:?}: {err}");
            assert!(err.to_string().contains(why), "{leaf:?}: {err}");
        }
        let nsm = MockNsm::with_ca_and_leaf(&ca, image.clone(), MockLeaf::Signing).unwrap();
        verify(&nsm.attestation(None, None, None).unwrap(), &options(ca.root_der(), &image)).unwrap();
    }

    #[test]
    fn malformed_files_are_refused() {
        let ca = MockCa::generate().unwrap();
        let other = MockCa::generate().unwrap();
        let json: serde_json::Value = serde_json::from_str(&ca.to_json().unwrap()).unwrap();
        let with = |k: &str, v: serde_json::Value| {
            let mut j = json.clone();
            j[k] = v;
            MockCa::from_json(&j.to_string()).unwrap_err().to_string()
        };
        assert!(with("format", "x".into()).contains("format"));
        assert!(with("root_key", "zz".into()).contains("not hex"));
        assert!(with("root_key", hex::encode(other.root_key.to_bytes()).into()).contains("not the key"));
        let other_json: serde_json::Value = serde_json::from_str(&other.to_json().unwrap()).unwrap();
        let mut mixed = json.clone();
        mixed["intermediate_certificate"] = other_json["intermediate_certificate"].clone();
        mixed["intermediate_key"] = other_json["intermediate_key"].clone();
        assert!(MockCa::from_json(&mixed.to_string()).unwrap_err().to_string().contains("issuer mismatch"));
        assert!(MockCa::from_json("[]").is_err());
        assert!(MockCa::from_json("not json").is_err());
    }
}
