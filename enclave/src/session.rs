//! A session in the enclave: its key and its state machine behind one lock, plus what the
//! signing path needs before taking it (the stamp key).

use crate::keys::Key;
use alloy_primitives::{Address, Signature, B256};
use bridle_common::allowance::aggregate::Holdings;
use bridle_common::machine::{Machine, Signer};
use bridle_common::stamp::StampKey;
use std::sync::{Mutex, MutexGuard};

impl Signer for Key {
    fn sign(&self, digest: &B256) -> Result<Signature, String> {
        self.sign_digest(digest).map_err(|e| e.to_string())
    }
}

/// A cluster replica's stand-in for a signature it does not need (see [`crate::apply`]):
/// a fixed value that no key produced. Decisions never depend on a signature's bytes.
pub struct Placeholder;

/// The placeholder's value: r = s = 1, v = 27. Never returned to a client (the proposer of
/// an entry always signs for real, and a reply carrying it is refused).
pub fn placeholder_signature() -> Signature {
    Signature::new(alloy_primitives::U256::from(1), alloy_primitives::U256::from(1), false)
}

impl Signer for Placeholder {
    fn sign(&self, _digest: &B256) -> Result<Signature, String> {
        Ok(placeholder_signature())
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
    /// `None` once the machine says the key is destroyed (R-APP-6) — or, on a cluster node,
    /// when this node's image may not hold it (see `custody`).
    pub key: Option<Key>,
    /// Bytes this session is charged in the enclave's memory budget.
    pub charged: usize,
    /// Cluster only: the images (digests of PCR0‖PCR1‖PCR2) whose nodes may hold the key:
    /// the image it was created on, and those its owner allowed since.
    pub custody: Vec<B256>,
    /// What was last published to the enclave's exposure book for this session: its
    /// holdings and the hash of its policy when that declares an aggregate ceiling.
    pub published: Option<(Holdings, Option<B256>)>,
    /// Dropped from the enclave's map (a finished session, to make room) while a request
    /// may still hold it: no decision is made on it, nothing is charged or published.
    pub dropped: bool,
    /// The last call left it finished with nothing outstanding, and that was counted for
    /// the passes over finished sessions (`service::budget::Passes`): once each time it
    /// becomes so.
    pub finish_counted: bool,
}

impl Inner {
    /// The key, as the machine signs with it. `stored`: the signature is kept in the
    /// session's state (an approval's), not only returned.
    ///
    /// Outside a cluster entry: the key (none once destroyed). Within one (see
    /// [`crate::apply`]): the key where a real signature is needed and held; a placeholder
    /// everywhere else, so every replica reaches the same state; none once destroyed.
    /// Returns the machine and the signer, borrowed apart.
    pub fn with_signer(&mut self, stored: bool) -> (&mut Machine, Option<&dyn Signer>) {
        let signer = match crate::apply::current() {
            None => self.key.as_ref().map(|k| k as &dyn Signer),
            Some(_) if self.machine.key_destroyed() => None,
            Some(ctx) => match &self.key {
                Some(k) if ctx.proposer || stored => Some(k as &dyn Signer),
                _ => Some(&Placeholder as &dyn Signer),
            },
        };
        (&mut self.machine, signer)
    }

    /// Drop the key if the machine says it is destroyed (k256 zeroizes it on drop).
    pub fn settle_key(&mut self) {
        if self.machine.key_destroyed() {
            self.key = None;
        }
    }
}

impl Session {
    /// A session whose key is `key` (`None`: held elsewhere in the cluster, see `custody`).
    pub fn new(key: Option<Key>, stamp_key: StampKey, machine: Machine, custody: Vec<B256>) -> Session {
        Session {
            address: machine.facts.address,
            owner: machine.facts.owner,
            agent: machine.facts.agent,
            stamp_key,
            inner: Mutex::new(Inner {
                machine,
                key,
                charged: 0,
                custody,
                published: None,
                dropped: false,
                finish_counted: false,
            }),
        }
    }

    /// The lock if it is free now (a poisoned one is recovered failing closed, as
    /// [`Session::lock`] does); `None` if another thread holds it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Inner>> {
        match self.inner.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::WouldBlock) => None,
            Err(std::sync::TryLockError::Poisoned(p)) => Some(self.recover(p.into_inner())),
        }
    }

    /// Lock the session's state. A lock poisoned by a panic during a decision (which no
    /// input should cause; each request is isolated so the panic cost only that request) is
    /// recovered **failing closed**: the session is suspended until its owner reviews it.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => self.recover(poisoned.into_inner()),
        }
    }

    fn recover<'a>(&self, mut g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        g.machine.fail_closed("an internal error interrupted a decision on this session; the owner must review it and sign a policy update (or revoke)");
        self.inner.clear_poison();
        tracing::error!(session = %self.address, "session lock poisoned: session suspended");
        g
    }
}
