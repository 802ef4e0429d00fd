//! The Nitro Secure Module interface: the [`NsmProvider`] trait and the real
//! `/dev/nsm` implementation [`RealNsm`].
//!
//! The mock implementation lives in [`crate::mock`].

use std::sync::{Arc, Mutex};

use aws_nitro_enclaves_nsm_api::api::{ErrorCode, Request, Response};
use serde_bytes::ByteBuf;

/// Number of PCRs the Nitro Secure Module exposes (and the mock keeps).
pub const PCR_COUNT: u16 = 32;

/// Length in bytes of one PCR (the NSM's PCR bank uses SHA-384).
pub const PCR_LEN: usize = 48;

/// PCRs `0..FIRST_USER_PCR` are set by the hypervisor at boot and are read-only;
/// an enclave may extend and lock PCRs `FIRST_USER_PCR..PCR_COUNT`.
pub const FIRST_USER_PCR: u16 = 16;

/// Largest `user_data` the NSM accepts in an attestation request, in bytes.
pub const MAX_USER_DATA_LEN: usize = 512;

/// Largest `nonce` the NSM accepts in an attestation request, in bytes.
pub const MAX_NONCE_LEN: usize = 512;

/// Largest `public_key` the NSM accepts in an attestation request, in bytes.
pub const MAX_PUBLIC_KEY_LEN: usize = 1024;

/// Largest data the NSM accepts in one PCR extension, in bytes (the whole
/// request is limited to 4 KiB by the driver).
pub const MAX_EXTEND_DATA_LEN: usize = 3072;

/// The state of one PCR, as returned by [`NsmProvider::describe_pcr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrDescription {
    /// `true` when the PCR is read-only (locked).
    pub locked: bool,
    /// The current PCR value (48 bytes for the SHA-384 bank).
    pub data: Vec<u8>,
}

/// Errors from a Nitro Secure Module (real or mock).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsmError {
    /// The NSM device could not be opened (not running inside a Nitro Enclave).
    #[error("NSM device {path} is unavailable: {reason}")]
    DeviceUnavailable {
        /// Device path that was tried.
        path: &'static str,
        /// Why it could not be opened.
        reason: String,
    },
    /// PCR index out of range.
    #[error("PCR index {index} is out of range: the module has {count} PCRs (0..={max})", max = count.saturating_sub(1))]
    InvalidIndex {
        /// Requested index.
        index: u16,
        /// Number of PCRs of the module.
        count: u16,
    },
    /// The PCR is locked (read-only) and cannot be extended.
    #[error("PCR{index} is locked (read-only) and cannot be modified")]
    ReadOnlyIndex {
        /// Index of the locked PCR.
        index: u16,
    },
    /// An input exceeds what the NSM accepts.
    #[error("{field} is too large: at most {max} bytes accepted, got {actual}")]
    InputTooLarge {
        /// Which input.
        field: &'static str,
        /// Maximum accepted length.
        max: usize,
        /// Length given.
        actual: usize,
    },
    /// An argument was refused.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The NSM device answered with an error code.
    #[error("NSM request {request} failed with error code {code}")]
    Device {
        /// The request that failed.
        request: &'static str,
        /// The NSM error code (debug form of `ErrorCode`).
        code: String,
    },
    /// The NSM device answered with a response of the wrong kind.
    #[error("unexpected NSM response to {request}: {response}")]
    UnexpectedResponse {
        /// The request sent.
        request: &'static str,
        /// The response received (debug form, truncated).
        response: String,
    },
    /// The random number source failed.
    #[error("random number source failed: {0}")]
    Random(String),
    /// Internal error of the mock (certificate generation, encoding, signing).
    #[error("mock NSM internal error: {0}")]
    Internal(String),
}

/// A Nitro Secure Module: the operations Bridle's enclave uses.
///
/// Implemented by [`RealNsm`] (the hardware module over `/dev/nsm`) and
/// [`crate::MockNsm`] (development and tests).
pub trait NsmProvider: Send + Sync {
    /// Returns `len` random bytes from the module's entropy source.
    fn get_random(&self, len: usize) -> Result<Vec<u8>, NsmError>;

    /// Returns the value and lock state of PCR `index`.
    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError>;

    /// Extends PCR `index` with `data`: `PCR = SHA384(PCR || data)`.
    /// Returns the new PCR value. Fails with [`NsmError::ReadOnlyIndex`] on a locked PCR.
    fn extend_pcr(&self, index: u16, data: &[u8]) -> Result<Vec<u8>, NsmError>;

    /// Locks PCR `index`: it can no longer be extended until the enclave stops.
    fn lock_pcr(&self, index: u16) -> Result<(), NsmError>;

    /// Locks PCRs `0..range`.
    fn lock_pcrs(&self, range: u16) -> Result<(), NsmError>;

    /// Requests an attestation document: COSE_Sign1 (ES384) bytes whose payload
    /// carries the current PCRs and the given optional `user_data`, `nonce` and
    /// `public_key`.
    fn attestation(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError>;
}

impl<T: NsmProvider + ?Sized> NsmProvider for Arc<T> {
    fn get_random(&self, len: usize) -> Result<Vec<u8>, NsmError> {
        (**self).get_random(len)
    }
    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError> {
        (**self).describe_pcr(index)
    }
    fn extend_pcr(&self, index: u16, data: &[u8]) -> Result<Vec<u8>, NsmError> {
        (**self).extend_pcr(index, data)
    }
    fn lock_pcr(&self, index: u16) -> Result<(), NsmError> {
        (**self).lock_pcr(index)
    }
    fn lock_pcrs(&self, range: u16) -> Result<(), NsmError> {
        (**self).lock_pcrs(range)
    }
    fn attestation(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError> {
        (**self).attestation(user_data, nonce, public_key)
    }
}

/// Checks the sizes of the optional attestation inputs against the NSM limits.
pub(crate) fn check_attestation_inputs(
    user_data: Option<&[u8]>,
    nonce: Option<&[u8]>,
    public_key: Option<&[u8]>,
) -> Result<(), NsmError> {
    let limits = [
        ("user_data", user_data, MAX_USER_DATA_LEN),
        ("nonce", nonce, MAX_NONCE_LEN),
        ("public_key", public_key, MAX_PUBLIC_KEY_LEN),
    ];
    for (field, value, max) in limits {
        if let Some(v) = value {
            if v.len() > max {
                return Err(NsmError::InputTooLarge { field, max, actual: v.len() });
            }
        }
    }
    Ok(())
}

/// The hardware Nitro Secure Module, reached through `/dev/nsm` with
/// `aws-nitro-enclaves-nsm-api`. Only works inside a Nitro Enclave.
#[derive(Debug)]
pub struct RealNsm {
    fd: i32,
    // Serialises requests on the shared descriptor.
    lock: Mutex<()>,
}

impl RealNsm {
    /// Path of the NSM device.
    pub const DEVICE_PATH: &'static str = "/dev/nsm";

    /// Opens `/dev/nsm`. Returns [`NsmError::DeviceUnavailable`] (never panics)
    /// when the device is absent, i.e. outside a Nitro Enclave.
    pub fn open() -> Result<Self, NsmError> {
        if let Err(e) = std::fs::metadata(Self::DEVICE_PATH) {
            return Err(NsmError::DeviceUnavailable { path: Self::DEVICE_PATH, reason: e.to_string() });
        }
        let fd = aws_nitro_enclaves_nsm_api::driver::nsm_init();
        if fd < 0 {
            return Err(NsmError::DeviceUnavailable {
                path: Self::DEVICE_PATH,
                reason: "open failed (is this process inside a Nitro Enclave?)".to_string(),
            });
        }
        Ok(Self { fd, lock: Mutex::new(()) })
    }

    fn request(&self, request: Request) -> Response {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        aws_nitro_enclaves_nsm_api::driver::nsm_process_request(self.fd, request)
    }
}

impl Drop for RealNsm {
    fn drop(&mut self) {
        aws_nitro_enclaves_nsm_api::driver::nsm_exit(self.fd);
    }
}

fn map_error(request: &'static str, index: Option<u16>, code: ErrorCode) -> NsmError {
    match (code, index) {
        (ErrorCode::InvalidIndex, Some(index)) => NsmError::InvalidIndex { index, count: PCR_COUNT },
        (ErrorCode::ReadOnlyIndex, Some(index)) => NsmError::ReadOnlyIndex { index },
        (code, _) => NsmError::Device { request, code: format!("{code:?}") },
    }
}

fn unexpected(request: &'static str, response: Response) -> NsmError {
    let mut response = format!("{response:?}");
    response.truncate(200);
    NsmError::UnexpectedResponse { request, response }
}

impl NsmProvider for RealNsm {
    fn get_random(&self, len: usize) -> Result<Vec<u8>, NsmError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match self.request(Request::GetRandom) {
                Response::GetRandom { random } if !random.is_empty() => {
                    let take = (len - out.len()).min(random.len());
                    out.extend_from_slice(random.get(..take).unwrap_or_default());
                }
                Response::Error(code) => return Err(map_error("GetRandom", None, code)),
                other => return Err(unexpected("GetRandom", other)),
            }
        }
        Ok(out)
    }

    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError> {
        match self.request(Request::DescribePCR { index }) {
            Response::DescribePCR { lock, data } => Ok(PcrDescription { locked: lock, data }),
            Response::Error(code) => Err(map_error("DescribePCR", Some(index), code)),
            other => Err(unexpected("DescribePCR", other)),
        }
    }

    fn extend_pcr(&self, index: u16, data: &[u8]) -> Result<Vec<u8>, NsmError> {
        if data.len() > MAX_EXTEND_DATA_LEN {
            return Err(NsmError::InputTooLarge { field: "extend data", max: MAX_EXTEND_DATA_LEN, actual: data.len() });
        }
        match self.request(Request::ExtendPCR { index, data: data.to_vec() }) {
            Response::ExtendPCR { data } => Ok(data),
            Response::Error(code) => Err(map_error("ExtendPCR", Some(index), code)),
            other => Err(unexpected("ExtendPCR", other)),
        }
    }

    fn lock_pcr(&self, index: u16) -> Result<(), NsmError> {
        match self.request(Request::LockPCR { index }) {
            Response::LockPCR => Ok(()),
            Response::Error(code) => Err(map_error("LockPCR", Some(index), code)),
            other => Err(unexpected("LockPCR", other)),
        }
    }

    fn lock_pcrs(&self, range: u16) -> Result<(), NsmError> {
        match self.request(Request::LockPCRs { range }) {
            Response::LockPCRs => Ok(()),
            Response::Error(code) => Err(map_error("LockPCRs", None, code)),
            other => Err(unexpected("LockPCRs", other)),
        }
    }

    fn attestation(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError> {
        check_attestation_inputs(user_data.as_deref(), nonce.as_deref(), public_key.as_deref())?;
        match self.request(Request::Attestation {
            user_data: user_data.map(ByteBuf::from),
            nonce: nonce.map(ByteBuf::from),
            public_key: public_key.map(ByteBuf::from),
        }) {
            Response::Attestation { document } => Ok(document),
            Response::Error(code) => Err(map_error("Attestation", None, code)),
            other => Err(unexpected("Attestation", other)),
        }
    }
}
