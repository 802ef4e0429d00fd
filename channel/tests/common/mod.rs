//! Test nodes: mock NSMs sharing a MockCa, and NSM wrappers that misbehave.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use bridle_attestation::{
    ImageMeasurement, MockCa, MockNsm, NsmError, NsmProvider, PcrDescription, TrustedRoot, PCR_LEN,
};
use bridle_channel::{Admit, Channel, HandshakeError, Initiator, NodeIdentity, Responder, SameImage};

pub const CLUSTER: &[u8] = b"test-cluster";

/// A test node: its identity, its mock NSM and a SameImage policy for its image
/// and configuration.
pub struct Node {
    pub id: NodeIdentity,
    pub nsm: Arc<MockNsm>,
    pub admit: SameImage,
    pub pcr16: Vec<u8>,
}

pub fn image(seed: u8) -> ImageMeasurement {
    ImageMeasurement::new([seed; PCR_LEN], [seed.wrapping_add(1); PCR_LEN], [seed.wrapping_add(2); PCR_LEN])
}

/// A node booted from `image` with configuration text `config` (extended into
/// PCR16, attested as user_data), trusting `ca`'s root.
pub fn node_with(ca: &MockCa, image: ImageMeasurement, config: &str) -> Node {
    let nsm = Arc::new(MockNsm::with_ca(ca, image).unwrap());
    let pcr16 = nsm.extend_pcr(16, config.as_bytes()).unwrap();
    let admit = SameImage::local(nsm.as_ref(), pcr16.clone()).unwrap();
    let id = NodeIdentity::generate(nsm.clone(), config, root(ca)).unwrap();
    Node { id, nsm, admit, pcr16 }
}

pub fn node(ca: &MockCa) -> Node {
    node_with(ca, image(1), "cluster=test members=3")
}

pub fn root(ca: &MockCa) -> TrustedRoot {
    TrustedRoot::Der(ca.root_der().to_vec())
}

/// An identity using `nsm` (possibly a misbehaving wrapper) and trusting `ca`.
pub fn identity(nsm: Arc<dyn NsmProvider>, ca: &MockCa, config: &str) -> NodeIdentity {
    NodeIdentity::generate(nsm, config, root(ca)).unwrap()
}

/// A full handshake, `a` initiating. Returns (a's channel, b's channel).
pub fn handshake(
    a: &NodeIdentity,
    admit_a: &dyn Admit,
    b: &NodeIdentity,
    admit_b: &dyn Admit,
) -> Result<(Channel, Channel), HandshakeError> {
    let (state_a, msg1) = Initiator::start(a, CLUSTER)?;
    let (state_b, msg2) = Responder::respond(b, CLUSTER, &msg1)?;
    let (chan_a, _, msg3) = state_a.finish(&msg2, admit_a)?;
    let (chan_b, _) = state_b.finish(&msg3, admit_b)?;
    Ok((chan_a, chan_b))
}

/// Two channel ends between two nodes of one cluster.
pub fn pair() -> (Channel, Channel) {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    handshake(&a.id, &a.admit, &b.id, &b.admit).unwrap()
}

/// Forwards to a mock NSM, but edits each attestation request or response.
pub struct Tampering<F> {
    pub inner: Arc<MockNsm>,
    pub edit: F,
}

type Request = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

impl<F> NsmProvider for Tampering<F>
where
    F: Fn(&MockNsm, Request) -> Result<Vec<u8>, NsmError> + Send + Sync,
{
    fn get_random(&self, len: usize) -> Result<Vec<u8>, NsmError> {
        self.inner.get_random(len)
    }
    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError> {
        self.inner.describe_pcr(index)
    }
    fn extend_pcr(&self, index: u16, data: &[u8]) -> Result<Vec<u8>, NsmError> {
        self.inner.extend_pcr(index, data)
    }
    fn lock_pcr(&self, index: u16) -> Result<(), NsmError> {
        self.inner.lock_pcr(index)
    }
    fn lock_pcrs(&self, range: u16) -> Result<(), NsmError> {
        self.inner.lock_pcrs(range)
    }
    fn attestation(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, NsmError> {
        (self.edit)(&self.inner, (user_data, nonce, public_key))
    }
}

/// An NSM that returns its first document again for every later request (a
/// recorded document replayed into later handshakes).
pub fn replaying(inner: Arc<MockNsm>) -> Arc<dyn NsmProvider> {
    let recorded: Mutex<Option<Vec<u8>>> = Mutex::new(None);
    Arc::new(Tampering {
        inner,
        edit: move |nsm: &MockNsm, (u, n, k): Request| {
            let mut slot = recorded.lock().unwrap();
            if let Some(doc) = slot.as_ref() {
                return Ok(doc.clone());
            }
            let doc = nsm.attestation(u, n, k)?;
            *slot = Some(doc.clone());
            Ok(doc)
        },
    })
}

/// An NSM that puts `key` in the document instead of the requested public key.
pub fn key_swapping(inner: Arc<MockNsm>, key: Vec<u8>) -> Arc<dyn NsmProvider> {
    Arc::new(Tampering {
        inner,
        edit: move |nsm: &MockNsm, (u, n, _): Request| nsm.attestation(u, n, Some(key.clone())),
    })
}

/// An NSM that always returns `doc`.
pub fn fixed(inner: Arc<MockNsm>, doc: Vec<u8>) -> Arc<dyn NsmProvider> {
    Arc::new(Tampering { inner, edit: move |_: &MockNsm, _: Request| Ok(doc.clone()) })
}

/// An NSM that records every document it makes into `log`.
pub fn recording(inner: Arc<MockNsm>, log: Arc<Mutex<Vec<Vec<u8>>>>) -> Arc<dyn NsmProvider> {
    Arc::new(Tampering {
        inner,
        edit: move |nsm: &MockNsm, (u, n, k): Request| {
            let doc = nsm.attestation(u, n, k)?;
            log.lock().unwrap().push(doc.clone());
            Ok(doc)
        },
    })
}
