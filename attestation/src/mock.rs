//! A mock Nitro Secure Module for development and tests (SPEC R-ATT-4).
//!
//! [`MockNsm`] keeps PCR state with the hardware's semantics and issues real
//! COSE_Sign1 ES384 attestation documents in the AWS format, signed by a leaf
//! key of its own freshly generated P-384 chain root → intermediate → leaf.
//! The production verifier accepts them only when given [`MockNsm::root_der`]
//! explicitly (never with its default AWS root).

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ciborium::value::Value;
use der::asn1::UtcTime;
use der::pem::LineEnding;
use der::{Encode, EncodePem};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha384};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::cose;
use crate::nsm::{
    check_attestation_inputs, NsmError, NsmProvider, PcrDescription, FIRST_USER_PCR, MAX_EXTEND_DATA_LEN, PCR_COUNT,
    PCR_LEN,
};

/// The enclave image measurement: PCR0 (image), PCR1 (kernel and bootstrap),
/// PCR2 (application), as `nitro-cli build-enclave` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeasurement {
    /// PCR0: enclave image file.
    pub pcr0: [u8; PCR_LEN],
    /// PCR1: Linux kernel and bootstrap.
    pub pcr1: [u8; PCR_LEN],
    /// PCR2: application.
    pub pcr2: [u8; PCR_LEN],
}

fn pcr_from_hex(name: &str, s: &str) -> Result<[u8; PCR_LEN], NsmError> {
    let bytes = hex::decode(s.trim()).map_err(|e| NsmError::InvalidArgument(format!("{name} is not hex: {e}")))?;
    <[u8; PCR_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        NsmError::InvalidArgument(format!(
            "{name} must be {PCR_LEN} bytes ({} hex digits), got {} bytes",
            PCR_LEN * 2,
            bytes.len()
        ))
    })
}

impl ImageMeasurement {
    /// A measurement from the three PCR values.
    pub fn new(pcr0: [u8; PCR_LEN], pcr1: [u8; PCR_LEN], pcr2: [u8; PCR_LEN]) -> Self {
        ImageMeasurement { pcr0, pcr1, pcr2 }
    }

    /// A measurement from 96-digit hex strings (as printed by `nitro-cli`).
    pub fn from_hex(pcr0: &str, pcr1: &str, pcr2: &str) -> Result<Self, NsmError> {
        Ok(ImageMeasurement {
            pcr0: pcr_from_hex("PCR0", pcr0)?,
            pcr1: pcr_from_hex("PCR1", pcr1)?,
            pcr2: pcr_from_hex("PCR2", pcr2)?,
        })
    }

    /// The mock's default measurement: `SHA384("bridle mock enclave PCR<i>")`.
    pub fn mock_default() -> Self {
        let h = |i: u8| -> [u8; PCR_LEN] { Sha384::digest(format!("bridle mock enclave PCR{i}").as_bytes()).into() };
        ImageMeasurement { pcr0: h(0), pcr1: h(1), pcr2: h(2) }
    }
}

/// Encoding of the attestation payload map produced by the mock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadEncoding {
    /// Definite-length map (older NSMs).
    #[default]
    Definite,
    /// Indefinite-length map (newer NSMs).
    Indefinite,
}

#[derive(Debug, Clone, Copy)]
struct Pcr {
    value: [u8; PCR_LEN],
    locked: bool,
}

#[derive(Debug)]
struct State {
    pcrs: Vec<Pcr>,
    encoding: PayloadEncoding,
    tagged: bool,
}

/// Validity of the mock chain, relative to its creation.
const MOCK_BACKDATE: Duration = Duration::from_secs(3600);
const MOCK_ROOT_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
const MOCK_LEAF_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A mock Nitro Secure Module. See the [module documentation](self).
pub struct MockNsm {
    state: Mutex<State>,
    leaf_key: SigningKey,
    root_der: Vec<u8>,
    root_pem: String,
    intermediate_der: Vec<u8>,
    leaf_der: Vec<u8>,
    module_id: String,
    image: ImageMeasurement,
    debug: bool,
    rng: SystemRandom,
}

impl std::fmt::Debug for MockNsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockNsm")
            .field("module_id", &self.module_id)
            .field("debug", &self.debug)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> NsmError {
    NsmError::Internal(format!("{what}: {e}"))
}

fn random_bytes(rng: &SystemRandom, len: usize) -> Result<Vec<u8>, NsmError> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out).map_err(|_| NsmError::Random("OS random source failed".to_string()))?;
    Ok(out)
}

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

struct Chain {
    root: x509_cert::Certificate,
    intermediate: x509_cert::Certificate,
    leaf: x509_cert::Certificate,
    leaf_key: SigningKey,
}

fn generate_chain(rng: &SystemRandom, tag: &str) -> Result<Chain, NsmError> {
    let now = SystemTime::now();
    let root_key = random_signing_key(rng)?;
    let inter_key = random_signing_key(rng)?;
    let leaf_key = random_signing_key(rng)?;
    let root_name = name(&format!("CN=Bridle mock Nitro root {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;
    let inter_name = name(&format!("CN=Bridle mock Nitro intermediate {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;
    let leaf_name = name(&format!("CN=Bridle mock Nitro enclave {tag},OU=mock NSM - not AWS,O=Bridle,C=US"))?;

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
        inter_name.clone(),
        spki(&inter_key)?,
        &root_key,
    )
    .map_err(|e| internal("intermediate certificate", e))?
    .build::<DerSignature>()
    .map_err(|e| internal("intermediate certificate", e))?;

    let leaf = CertificateBuilder::new(
        Profile::Leaf { issuer: inter_name, enable_key_agreement: false, enable_key_encipherment: false },
        serial(rng)?,
        validity(now, MOCK_LEAF_LIFETIME)?,
        leaf_name,
        spki(&leaf_key)?,
        &inter_key,
    )
    .map_err(|e| internal("leaf certificate", e))?
    .build::<DerSignature>()
    .map_err(|e| internal("leaf certificate", e))?;

    Ok(Chain { root, intermediate, leaf, leaf_key })
}

fn is_zero(v: &[u8]) -> bool {
    v.iter().all(|b| *b == 0)
}

fn opt_bytes(v: Option<Vec<u8>>) -> Value {
    match v {
        Some(b) => Value::Bytes(b),
        None => Value::Null,
    }
}

impl MockNsm {
    /// A mock NSM whose PCR0..2 are [`ImageMeasurement::mock_default`].
    pub fn new() -> Result<Self, NsmError> {
        Self::with_image(ImageMeasurement::mock_default())
    }

    /// A mock NSM booted from an image with the given measurement (PCR0..2).
    /// All-zero PCR values are refused: only [`MockNsm::new_debug`] produces them.
    pub fn with_image(image: ImageMeasurement) -> Result<Self, NsmError> {
        for (i, v) in [&image.pcr0, &image.pcr1, &image.pcr2].iter().enumerate() {
            if is_zero(&v[..]) {
                return Err(NsmError::InvalidArgument(format!(
                    "PCR{i} all zeros is the debug-mode measurement; use MockNsm::new_debug"
                )));
            }
        }
        Self::build(image, false)
    }

    /// A mock NSM in debug mode: PCR0..2 are all zeros, as on a real enclave
    /// started with `--debug-mode`. Verifiers refuse its documents unless they
    /// allow debug explicitly.
    pub fn new_debug() -> Result<Self, NsmError> {
        Self::build(ImageMeasurement { pcr0: [0; PCR_LEN], pcr1: [0; PCR_LEN], pcr2: [0; PCR_LEN] }, true)
    }

    fn build(image: ImageMeasurement, debug: bool) -> Result<Self, NsmError> {
        let rng = SystemRandom::new();
        let id = hex::encode(random_bytes(&rng, 8)?);
        let chain = generate_chain(&rng, &id)?;
        let root_der = chain.root.to_der().map_err(|e| internal("root DER", e))?;
        let root_pem = chain.root.to_pem(LineEnding::LF).map_err(|e| internal("root PEM", e))?;
        let intermediate_der = chain.intermediate.to_der().map_err(|e| internal("intermediate DER", e))?;
        let leaf_der = chain.leaf.to_der().map_err(|e| internal("leaf DER", e))?;

        let mut pcrs = vec![Pcr { value: [0; PCR_LEN], locked: false }; usize::from(PCR_COUNT)];
        for (i, pcr) in pcrs.iter_mut().enumerate() {
            pcr.locked = i < usize::from(FIRST_USER_PCR);
            pcr.value = match i {
                0 => image.pcr0,
                1 => image.pcr1,
                2 => image.pcr2,
                _ => [0; PCR_LEN],
            };
        }
        Ok(MockNsm {
            state: Mutex::new(State { pcrs, encoding: PayloadEncoding::Definite, tagged: false }),
            leaf_key: chain.leaf_key,
            root_der,
            root_pem,
            intermediate_der,
            leaf_der,
            module_id: format!("i-mock{id}-enc{id}"),
            image,
            debug,
            rng,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// DER of the mock's root certificate (pass it to the verifier explicitly).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// PEM of the mock's root certificate.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// DER of the mock's intermediate certificate.
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// DER of the mock's leaf (document signing) certificate.
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf_der
    }

    /// The mock's module id.
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    /// The image measurement (PCR0..2) the mock was booted with.
    pub fn image(&self) -> &ImageMeasurement {
        &self.image
    }

    /// `true` when constructed with [`MockNsm::new_debug`].
    pub fn is_debug(&self) -> bool {
        self.debug
    }

    /// Chooses a definite- or indefinite-length payload map for later documents.
    pub fn set_payload_encoding(&self, encoding: PayloadEncoding) {
        self.state().encoding = encoding;
    }

    /// Makes later documents tagged (CBOR tag 18) or untagged (the default, as the NSM).
    pub fn set_tagged(&self, tagged: bool) {
        self.state().tagged = tagged;
    }

    /// The unsigned attestation payload the mock would sign now.
    pub fn attestation_payload(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError> {
        check_attestation_inputs(user_data.as_deref(), nonce.as_deref(), public_key.as_deref())?;
        let (pcrs, encoding) = {
            let st = self.state();
            (st.pcrs.clone(), st.encoding)
        };
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| internal("clock", e))?.as_millis();
        let timestamp = u64::try_from(timestamp).map_err(|e| internal("clock", e))?;
        let pcr_map = Value::Map(
            pcrs.iter()
                .enumerate()
                .map(|(i, p)| (Value::Integer((i as u64).into()), Value::Bytes(p.value.to_vec())))
                .collect(),
        );
        let text = |s: &str| Value::Text(s.to_string());
        let entries = vec![
            (text("module_id"), text(&self.module_id)),
            (text("digest"), text("SHA384")),
            (text("timestamp"), Value::Integer(timestamp.into())),
            (text("pcrs"), pcr_map),
            (text("certificate"), Value::Bytes(self.leaf_der.clone())),
            (
                text("cabundle"),
                Value::Array(vec![Value::Bytes(self.root_der.clone()), Value::Bytes(self.intermediate_der.clone())]),
            ),
            (text("public_key"), opt_bytes(public_key)),
            (text("user_data"), opt_bytes(user_data)),
            (text("nonce"), opt_bytes(nonce)),
        ];
        encode_map(entries, encoding)
    }

    /// Signs `payload` as a COSE_Sign1 ES384 document with the mock leaf key,
    /// using the standard protected header `{1: -35}`.
    pub fn sign_payload(&self, payload: &[u8]) -> Result<Vec<u8>, NsmError> {
        let protected = cose::es384_protected_header().map_err(|e| internal("header", e))?;
        self.sign_with_protected_header(&protected, payload)
    }

    /// Signs `payload` with an arbitrary serialized protected header (for tests
    /// of algorithm confusion). The signature is always ES384 by the leaf key.
    pub fn sign_with_protected_header(&self, protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, NsmError> {
        let to_sign = cose::sig_structure(protected, payload).map_err(|e| internal("Sig_structure", e))?;
        let sig: Signature = self.leaf_key.try_sign(&to_sign).map_err(|e| internal("signing", e))?;
        let tagged = self.state().tagged;
        cose::encode_cose_sign1(protected, payload, &sig.to_bytes(), tagged).map_err(|e| internal("COSE encoding", e))
    }

    fn check_index(index: u16) -> Result<usize, NsmError> {
        if index >= PCR_COUNT {
            return Err(NsmError::InvalidIndex { index, count: PCR_COUNT });
        }
        Ok(usize::from(index))
    }
}

fn encode_map(entries: Vec<(Value, Value)>, encoding: PayloadEncoding) -> Result<Vec<u8>, NsmError> {
    match encoding {
        PayloadEncoding::Definite => cose::encode_cbor(&Value::Map(entries)).map_err(|e| internal("CBOR", e)),
        PayloadEncoding::Indefinite => {
            let mut out = vec![0xbf];
            for (k, v) in entries {
                out.extend(cose::encode_cbor(&k).map_err(|e| internal("CBOR", e))?);
                out.extend(cose::encode_cbor(&v).map_err(|e| internal("CBOR", e))?);
            }
            out.push(0xff);
            Ok(out)
        }
    }
}

impl NsmProvider for MockNsm {
    fn get_random(&self, len: usize) -> Result<Vec<u8>, NsmError> {
        random_bytes(&self.rng, len)
    }

    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError> {
        let i = Self::check_index(index)?;
        let st = self.state();
        let pcr = st.pcrs.get(i).ok_or(NsmError::InvalidIndex { index, count: PCR_COUNT })?;
        Ok(PcrDescription { locked: pcr.locked, data: pcr.value.to_vec() })
    }

    fn extend_pcr(&self, index: u16, data: &[u8]) -> Result<Vec<u8>, NsmError> {
        let i = Self::check_index(index)?;
        if data.len() > MAX_EXTEND_DATA_LEN {
            return Err(NsmError::InputTooLarge { field: "extend data", max: MAX_EXTEND_DATA_LEN, actual: data.len() });
        }
        let mut st = self.state();
        let pcr = st.pcrs.get_mut(i).ok_or(NsmError::InvalidIndex { index, count: PCR_COUNT })?;
        if pcr.locked {
            return Err(NsmError::ReadOnlyIndex { index });
        }
        let mut h = Sha384::new();
        h.update(pcr.value);
        h.update(data);
        pcr.value = h.finalize().into();
        Ok(pcr.value.to_vec())
    }

    fn lock_pcr(&self, index: u16) -> Result<(), NsmError> {
        let i = Self::check_index(index)?;
        let mut st = self.state();
        if let Some(pcr) = st.pcrs.get_mut(i) {
            pcr.locked = true;
        }
        Ok(())
    }

    fn lock_pcrs(&self, range: u16) -> Result<(), NsmError> {
        if range > PCR_COUNT {
            return Err(NsmError::InvalidIndex { index: range, count: PCR_COUNT });
        }
        let mut st = self.state();
        for pcr in st.pcrs.iter_mut().take(usize::from(range)) {
            pcr.locked = true;
        }
        Ok(())
    }

    fn attestation(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError> {
        let payload = self.attestation_payload(user_data, nonce, public_key)?;
        self.sign_payload(&payload)
    }
}
