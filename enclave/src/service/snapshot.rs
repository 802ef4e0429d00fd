//! The whole enclave as data, for a cluster replica that joins or falls behind: the identity
//! key, every session (key, stamp key, custody, state machine), the owner-nonce book and the
//! audit chain. It never leaves an attested channel; the session keys a peer's image may not
//! hold are taken out before it is sent (see [`EnclaveSnapshot::redact`]).

use super::{charge, owners::OwnerBook, owners::OwnerBookSnapshot, Budget, Config, Enclave};
use crate::audit::{AuditLog, AuditSnapshot};
use crate::clock::Clock;
use crate::keys::Key;
use crate::session::Session;
use crate::Attestor;
use alloy_primitives::{Address, B256};
use bridle_common::allowance::aggregate::Book;
use bridle_common::machine::snapshot::MachineSnapshot;
use bridle_common::machine::Machine;
use bridle_common::stamp::StampKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use zeroize::Zeroize;

/// One session as data.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionSnapshot {
    /// The secret key; `None` where this replica's image may not hold it.
    pub key: Option<[u8; 32]>,
    pub stamp_key: [u8; 32],
    pub custody: Vec<B256>,
    pub machine: MachineSnapshot,
}

impl Drop for SessionSnapshot {
    fn drop(&mut self) {
        self.key.zeroize();
        self.stamp_key.zeroize();
    }
}

/// The enclave as data. See the module docs.
#[derive(Clone, Serialize, Deserialize)]
pub struct EnclaveSnapshot {
    pub identity: [u8; 32],
    pub booted_at: u64,
    pub sessions: Vec<SessionSnapshot>,
    pub owners: OwnerBookSnapshot,
    pub audit: AuditSnapshot,
    pub signatures: u64,
    pub denials: u64,
    /// A cluster node's: the time of the latest entry applied into this state, which the
    /// node installing it keeps its clock at or above (as it does for each entry it
    /// applies). 0 elsewhere, and in a snapshot from a build before it (a review of
    /// 2026-12-05: a node that caught up by snapshot and then led proposed entries at its
    /// own clock, earlier than ones already applied).
    #[serde(default)]
    pub applied_clock: u64,
}

impl Drop for EnclaveSnapshot {
    fn drop(&mut self) {
        self.identity.zeroize();
    }
}

impl std::fmt::Debug for EnclaveSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnclaveSnapshot")
            .field("sessions", &self.sessions.len())
            .field("audit_next_seq", &self.audit.next_seq)
            .finish_non_exhaustive()
    }
}

impl EnclaveSnapshot {
    /// Take out every session key that `holder` may not hold: its custody does not list the
    /// holder's image, nor does its policy name the holder's release signer — nor what the
    /// later policy updates still name (`narrowed`, see `cluster::redact`): those only
    /// narrow.
    pub fn redact(
        &mut self,
        holder: &crate::cluster::types::Holder,
        narrowed: impl Fn(&Address) -> Option<Vec<crate::cluster::types::Pcr8>>,
    ) {
        for s in &mut self.sessions {
            let mut signers = s.machine.policy.release_signers.clone();
            if let Some(later) = narrowed(&s.machine.facts.address) {
                signers.retain(|p| later.contains(p));
            }
            if !holder.may_hold(&s.custody, &signers) {
                s.key.zeroize();
                s.key = None;
            }
        }
    }
}

impl Enclave {
    /// An enclave with a given identity (a cluster's, shared by its nodes), started at
    /// `booted_at`.
    pub fn with_identity(
        identity: Key,
        booted_at: u64,
        clock: Box<dyn Clock>,
        attestor: Option<Box<dyn Attestor>>,
        config: Config,
    ) -> Enclave {
        let audit = AuditLog::new(identity.address(), booted_at, config.audit.clone());
        Enclave {
            identity,
            clock,
            attestor,
            owners: Mutex::new(OwnerBook::new(config.max_owners)),
            budget: Budget::new(config.memory_budget),
            exposure: Mutex::new(Book::new()),
            config,
            booted_at,
            sessions: RwLock::new(HashMap::new()),
            signatures: AtomicU64::new(0),
            denials: AtomicU64::new(0),
            audit,
        }
    }

    /// The enclave as data (with at most `audit_entries` of the newest audit entries).
    /// Sessions are taken one lock at a time; the caller must hold off mutations (a cluster
    /// node builds its snapshot between two applied entries).
    pub fn snapshot(&self, audit_entries: usize) -> EnclaveSnapshot {
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let mut sessions: Vec<(Address, SessionSnapshot)> = map
            .iter()
            .map(|(a, s)| {
                let inner = s.lock();
                let snap = SessionSnapshot {
                    key: inner.key.as_ref().map(|k| *k.secret_bytes()),
                    stamp_key: s.stamp_key.to_bytes(),
                    custody: inner.custody.clone(),
                    machine: inner.machine.snapshot(),
                };
                (*a, snap)
            })
            .collect();
        drop(map);
        sessions.sort_by_key(|(a, _)| *a);
        EnclaveSnapshot {
            identity: *self.identity.secret_bytes(),
            booted_at: self.booted_at,
            sessions: sessions.into_iter().map(|(_, s)| s).collect(),
            owners: self.owners.lock().unwrap_or_else(|e| e.into_inner()).snapshot(),
            audit: self.audit.snapshot(audit_entries),
            signatures: self.signatures.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            applied_clock: 0,
        }
    }

    /// The enclave `s` describes. Fails when a key is invalid or a session does not
    /// restore to the same hashes ([`Machine::restore`]).
    pub fn restore(
        s: &EnclaveSnapshot,
        clock: Box<dyn Clock>,
        attestor: Option<Box<dyn Attestor>>,
        config: Config,
    ) -> Result<Enclave, String> {
        let identity = Key::from_secret_bytes(&s.identity).ok_or("the identity key is not a valid secret")?;
        let e = Enclave::with_identity(identity, s.booted_at, clock, attestor, config.clone());
        let mut map = HashMap::with_capacity(s.sessions.len());
        for ss in &s.sessions {
            let machine = Machine::restore(ss.machine.clone())?;
            let address = machine.facts.address;
            let key = match &ss.key {
                Some(bytes) => {
                    let k = Key::from_secret_bytes(bytes).ok_or_else(|| format!("session {address}: invalid key"))?;
                    k.check_is_of(&address).map_err(|why| format!("session {address} in the snapshot: {why}"))?;
                    Some(k)
                }
                None => None,
            };
            let session = Session::new(key, StampKey::from_bytes(ss.stamp_key), machine, ss.custody.clone());
            {
                let mut inner = session.lock();
                // The book as the live node has it: each session's holdings at its latest
                // session time (RULES.md §6a).
                e.gate(&session).publish(&mut inner);
                let bytes = charge(&inner);
                e.budget.recharge(0, bytes);
                inner.charged = bytes;
            }
            map.insert(address, Arc::new(session));
        }
        *e.sessions.write().unwrap_or_else(|e| e.into_inner()) = map;
        *e.owners.lock().unwrap_or_else(|e| e.into_inner()) = OwnerBook::restore(s.owners.clone());
        let audit = AuditLog::restore(s.audit.clone(), config.audit.clone());
        let e = Enclave { audit, ..e };
        e.signatures.store(s.signatures, Ordering::Relaxed);
        e.denials.store(s.denials, Ordering::Relaxed);
        Ok(e)
    }
}
