//! A mock Nitro Secure Module for development and tests (SPEC R-ATT-4).
//!
//! [`MockNsm`] keeps PCR state with the hardware's semantics and issues real
//! COSE_Sign1 ES384 attestation documents in the AWS format, signed by a leaf
//! key of a P-384 chain root → intermediate → leaf. The production verifier
//! accepts them only when given [`MockNsm::root_der`] explicitly (never with its
//! default AWS root).
//!
//! By default each mock generates its own root, so two mocks cannot verify each
//! other. For several mock enclaves (possibly in different processes) that must
//! trust each other, create one [`MockCa`] (root + intermediate, persisted with
//! [`MockCa::save`] / [`MockCa::load`]) and start each with [`MockNsm::with_ca`]:
//! their leaves all chain to [`MockCa::root_der`].

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use ciborium::value::Value;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha384};

mod ca;
pub use ca::MockCa;

use crate::cose;
use crate::nsm::{
    check_attestation_inputs, NsmError, NsmProvider, PcrDescription, FIRST_USER_PCR, MAX_EXTEND_DATA_LEN, PCR_COUNT,
    PCR_LEN,
};

/// The enclave image measurement: PCR0 (image), PCR1 (kernel and bootstrap),
/// PCR2 (application), as `nitro-cli build-enclave` prints them, and PCR8 (the
/// image's signing certificate; all zeros for an unsigned image, the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMeasurement {
    /// PCR0: enclave image file.
    pub pcr0: [u8; PCR_LEN],
    /// PCR1: Linux kernel and bootstrap.
    pub pcr1: [u8; PCR_LEN],
    /// PCR2: application.
    pub pcr2: [u8; PCR_LEN],
    /// PCR8: measurement of the EIF signing certificate; all zeros when the image
    /// is not signed (the default). Set it with [`ImageMeasurement::with_pcr8`]
    /// to model images signed by a release key.
    pub pcr8: [u8; PCR_LEN],
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
    /// PCR8 is all zeros (unsigned image).
    pub fn new(pcr0: [u8; PCR_LEN], pcr1: [u8; PCR_LEN], pcr2: [u8; PCR_LEN]) -> Self {
        ImageMeasurement { pcr0, pcr1, pcr2, pcr8: [0; PCR_LEN] }
    }

    /// The same measurement for an image signed with a certificate measured as `pcr8`.
    pub fn with_pcr8(mut self, pcr8: [u8; PCR_LEN]) -> Self {
        self.pcr8 = pcr8;
        self
    }

    /// A measurement from 96-digit hex strings (as printed by `nitro-cli`); PCR8
    /// all zeros.
    pub fn from_hex(pcr0: &str, pcr1: &str, pcr2: &str) -> Result<Self, NsmError> {
        Ok(ImageMeasurement::new(pcr_from_hex("PCR0", pcr0)?, pcr_from_hex("PCR1", pcr1)?, pcr_from_hex("PCR2", pcr2)?))
    }

    /// The mock's default measurement: `SHA384("bridle mock enclave PCR<i>")` for
    /// PCR0..2; PCR8 all zeros.
    pub fn mock_default() -> Self {
        let h = |i: u8| -> [u8; PCR_LEN] { Sha384::digest(format!("bridle mock enclave PCR{i}").as_bytes()).into() };
        ImageMeasurement::new(h(0), h(1), h(2))
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

/// The kind of leaf (document signing) certificate a mock NSM gets. Only
/// [`MockLeaf::Signing`] is what an NSM has; the others exist to test that verifiers
/// refuse documents signed under them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MockLeaf {
    /// Not a CA, keyUsage digitalSignature and nonRepudiation (as AWS's leaves).
    #[default]
    Signing,
    /// basicConstraints CA:TRUE (keyUsage still digitalSignature): a CA certificate
    /// signing documents, which verifiers refuse.
    Ca,
    /// Not a CA, keyUsage keyCertSign only (no digitalSignature), which verifiers refuse.
    KeyCertSignOnly,
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

/// (AWS-LC aborts the process if the OS random source fails rather than return an
/// error, so `NsmError::Random` is kept for the interface, not expected here.)
fn random_bytes(rng: &SystemRandom, len: usize) -> Result<Vec<u8>, NsmError> {
    let mut out = vec![0u8; len];
    rng.fill(&mut out).map_err(|_| NsmError::Random("OS random source failed".to_string()))?;
    Ok(out)
}

fn is_zero(v: &[u8]) -> bool {
    v.iter().all(|b| *b == 0)
}

fn check_not_debug(image: &ImageMeasurement) -> Result<(), NsmError> {
    for (i, v) in [&image.pcr0, &image.pcr1, &image.pcr2].iter().enumerate() {
        if is_zero(&v[..]) {
            return Err(NsmError::InvalidArgument(format!(
                "PCR{i} all zeros is the debug-mode measurement; use MockNsm::new_debug"
            )));
        }
    }
    Ok(())
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

    /// A mock NSM booted from an image with the given measurement (PCR0..2, PCR8),
    /// with its own freshly generated root. All-zero PCR0..2 values are refused:
    /// only [`MockNsm::new_debug`] produces them.
    pub fn with_image(image: ImageMeasurement) -> Result<Self, NsmError> {
        check_not_debug(&image)?;
        Self::build(image, false, None, MockLeaf::Signing)
    }

    /// A mock NSM booted from an image with the given measurement whose documents
    /// are signed by a fresh leaf certificate issued by `ca`'s intermediate: every
    /// mock created from the same [`MockCa`] (in this process or another one that
    /// loaded it) verifies with [`MockCa::root_der`]. All-zero PCR0..2 are refused.
    pub fn with_ca(ca: &MockCa, image: ImageMeasurement) -> Result<Self, NsmError> {
        check_not_debug(&image)?;
        Self::build(image, false, Some(ca), MockLeaf::Signing)
    }

    /// [`MockNsm::with_ca`] with a leaf certificate of the given kind: for tests that
    /// verifiers refuse documents signed under a leaf that is not a signing certificate.
    pub fn with_ca_and_leaf(ca: &MockCa, image: ImageMeasurement, leaf: MockLeaf) -> Result<Self, NsmError> {
        check_not_debug(&image)?;
        Self::build(image, false, Some(ca), leaf)
    }

    /// A mock NSM in debug mode: PCR0..2 are all zeros, as on a real enclave
    /// started with `--debug-mode`. Verifiers refuse its documents unless they
    /// allow debug explicitly.
    pub fn new_debug() -> Result<Self, NsmError> {
        Self::build(ImageMeasurement::new([0; PCR_LEN], [0; PCR_LEN], [0; PCR_LEN]), true, None, MockLeaf::Signing)
    }

    /// [`MockNsm::new_debug`] with a leaf issued by `ca` (see [`MockNsm::with_ca`]).
    pub fn new_debug_with_ca(ca: &MockCa) -> Result<Self, NsmError> {
        Self::build(ImageMeasurement::new([0; PCR_LEN], [0; PCR_LEN], [0; PCR_LEN]), true, Some(ca), MockLeaf::Signing)
    }

    fn build(image: ImageMeasurement, debug: bool, ca: Option<&MockCa>, leaf: MockLeaf) -> Result<Self, NsmError> {
        let rng = SystemRandom::new();
        let id = hex::encode(random_bytes(&rng, 8)?);
        let own_ca;
        let ca = match ca {
            Some(ca) => ca,
            None => {
                own_ca = MockCa::generate_tagged(&rng, &id)?;
                &own_ca
            }
        };
        let (leaf_key, leaf_der) = ca.issue_leaf(&rng, &id, leaf)?;
        let root_der = ca.root_der().to_vec();
        let root_pem = ca.root_pem().to_string();
        let intermediate_der = ca.intermediate_der().to_vec();

        let mut pcrs = vec![Pcr { value: [0; PCR_LEN], locked: false }; usize::from(PCR_COUNT)];
        for (i, pcr) in pcrs.iter_mut().enumerate() {
            pcr.locked = i < usize::from(FIRST_USER_PCR);
            pcr.value = match i {
                0 => image.pcr0,
                1 => image.pcr1,
                2 => image.pcr2,
                8 => image.pcr8,
                _ => [0; PCR_LEN],
            };
        }
        Ok(MockNsm {
            state: Mutex::new(State { pcrs, encoding: PayloadEncoding::Definite, tagged: false }),
            leaf_key,
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

    /// The image measurement (PCR0..2, PCR8) the mock was booted with.
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
