//! A session in the enclave: its key and its state machine behind one lock, plus what the
//! signing path needs before taking it (the stamp key).

use crate::keys::Key;
use alloy_primitives::{Address, Signature, B256};
use bridle_common::machine::{Machine, Signer};
use bridle_common::stamp::StampKey;
use std::sync::{Mutex, MutexGuard};

impl Signer for Key {
    fn sign(&self, digest: &B256) -> Result<Signature, String> {
        self.sign_digest(digest).map_err(|e| e.to_string())
    }
}

/// Immutable facts about a session plus its state behind one lock. Everything the signing
/// path checks and charges is inside that lock, and the clock is read under it, so
/// check-and-charge is one step per session at one session time (R-POL-4, R-POL-11).
pub struct Session {
    pub address: Address,
    pub owner: Address,
    pub agent: Address,
    pub stamp_key: StampKey,
    inner: Mutex<Inner>,
}

pub struct Inner {
    pub machine: Machine,
    /// `None` once the machine says the key is destroyed (R-APP-6).
    pub key: Option<Key>,
    /// Bytes this session is charged in the enclave's memory budget.
    pub charged: usize,
}

impl Inner {
    /// The key, as the machine signs with it.
    pub fn signer(&self) -> Option<&dyn Signer> {
        self.key.as_ref().map(|k| k as &dyn Signer)
    }

    /// Drop the key if the machine says it is destroyed (k256 zeroizes it on drop).
    pub fn settle_key(&mut self) {
        if self.machine.key_destroyed() {
            self.key = None;
        }
    }
}

impl Session {
    pub fn new(key: Key, stamp_key: StampKey, machine: Machine) -> Session {
        Session {
            address: machine.facts.address,
            owner: machine.facts.owner,
            agent: machine.facts.agent,
            stamp_key,
            inner: Mutex::new(Inner { machine, key: Some(key), charged: 0 }),
        }
    }

    /// Lock the session's state. A lock poisoned by a panic during a decision (which no
    /// input should cause; each request is isolated so the panic cost only that request) is
    /// recovered **failing closed**: the session is suspended until its owner reviews it.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                g.machine.fail_closed("an internal error interrupted a decision on this session; the owner must review it and sign a policy update (or revoke)");
                self.inner.clear_poison();
                tracing::error!(session = %self.address, "session lock poisoned: session suspended");
                g
            }
        }
    }
}
