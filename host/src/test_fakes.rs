//! What the host's tests fake: an enclave identity that signs as a real one, its status,
//! a host on a fake enclave's socket (alone or in a cluster), and a stored session.

use crate::cluster::ClusterSettings;
use crate::store::Database;
use crate::AppState;
use alloy_primitives::{Address, Signature, B256};
use bridle_common::address::SocketAddress;
use bridle_common::protocol::{OwnerAuth, SessionBinding, SessionCreated, Status};
use k256::ecdsa::SigningKey;

/// The fake enclave's identity key.
pub fn identity_key() -> SigningKey {
    SigningKey::from_slice(&[0xee; 32]).unwrap()
}

/// Its address.
pub fn identity() -> Address {
    Address::from_public_key(identity_key().verifying_key())
}

/// `d` signed by `k`, as the enclave signs digests.
pub fn sign(k: &SigningKey, d: &B256) -> Signature {
    let (s, r) = k.sign_prehash_recoverable(d.as_slice()).unwrap();
    Signature::from_signature_and_parity(s, r.is_y_odd())
}

/// A status naming `identity`, all counts zero, about no session.
pub fn status_of(identity: Address) -> Status {
    Status {
        version: "fake".into(),
        identity_public_key: Default::default(),
        identity_address: identity,
        booted_at: 0,
        now: 0,
        sessions_active: 0,
        sessions_total: 0,
        signatures: 0,
        denials: 0,
        session: None,
        aggregate: vec![],
        receipt: None,
    }
}

/// A host on the enclave socket `path` (an in-memory database, no probe); a cluster member
/// with `seeds` when `seeds` is given.
pub fn host(path: std::path::PathBuf, seeds: Option<Vec<String>>) -> AppState {
    let mut config = crate::HostConfig::new(SocketAddress::Unix(path));
    config.database = Database::Sqlite(":memory:".into());
    config.probe_interval = None;
    config.cluster = seeds.map(|seeds| ClusterSettings {
        listen: "127.0.0.1:0".into(),
        advertise: "http://127.0.0.1:9".into(),
        seeds,
        bootstrap: false,
        source: None,
    });
    AppState::open(config).unwrap()
}

/// Store `session` of `owner` (a one-hour policy on `chain`), created with the owner's
/// `nonce`.
pub fn store_session(state: &AppState, session: Address, owner: Address, chain: u64, nonce: u64) {
    let now = crate::store::now_secs();
    let text = format!("name='t'\nchains=[{chain}]\nvalid_for='1h'\n");
    let policy = bridle_common::policy::file::resolve_text(&text, now).unwrap();
    let binding = SessionBinding {
        enclave: identity(),
        session,
        owner,
        agent: Address::repeat_byte(0x0b),
        policy_hash: policy.hash(),
        created_at: now,
        valid_until: now + 3600,
    };
    let created = SessionCreated { binding, binding_signature: Default::default(), attestation: None, receipt: None };
    let auth = OwnerAuth { owner, nonce, signature: Default::default() };
    state.store.insert_session(&created, &policy, &auth).unwrap();
}
