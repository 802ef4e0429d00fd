//! A session's state machine as data: what a replica of the enclave (a cluster node that
//! joins, or catches up) receives instead of the history that produced it.
//!
//! Everything the machine decides with is here, and nothing is derived twice differently:
//! the policy travels as its document and is compiled again on restore (its hash must come
//! out the same), held requests travel as their payloads and are prepared again (their
//! digests must come out the same), the replay cache travels as its live nonces with what
//! each was signed for. A snapshot that does not restore to the same hashes is refused.

use super::replay::ReplayCache;
use super::{Facts, Machine, Pending};
use crate::payload::prepare;
use crate::policy::{CompiledPolicy, Counters, Policy};
use crate::protocol::{SignPayload, Signed};
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A held request as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSnapshot {
    pub digest: B256,
    pub payload: SignPayload,
    pub created_at: u64,
    pub expires_at: u64,
    pub rule: String,
    pub reason: String,
    pub signed: Option<Signed>,
    /// When the owner denied it (absent in snapshots from before `deny_pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_at: Option<u64>,
}

/// A [`Machine`] as data. See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineSnapshot {
    pub facts: Facts,
    pub time: u64,
    pub policy: Policy,
    pub policy_hash: B256,
    pub counters: Counters,
    pub replay_window: u64,
    pub replay_capacity: usize,
    pub replay: Vec<(u64, [u8; 16], Option<B256>)>,
    pub revoked: bool,
    pub key_destroyed: bool,
    pub suspended: Option<String>,
    /// When it was suspended (absent in snapshots from before 2026-12-06: the session's
    /// creation time stands in for it — not the snapshot's session time, which moves on while
    /// a session is suspended, so that nodes restoring snapshots taken at different times
    /// decide alike; a review of 2026-12-06).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<u64>,
    pub denials: VecDeque<u64>,
    pub pending: Vec<PendingSnapshot>,
}

impl Machine {
    /// This machine as data.
    pub fn snapshot(&self) -> MachineSnapshot {
        let (replay_window, replay_capacity) = self.replay.limits();
        MachineSnapshot {
            facts: self.facts,
            time: self.time,
            policy: self.policy.doc.clone(),
            policy_hash: self.policy.hash,
            counters: self.counters.clone(),
            replay_window,
            replay_capacity,
            replay: self.replay.entries().collect(),
            revoked: self.revoked,
            key_destroyed: self.key_destroyed,
            suspended: self.suspended.clone(),
            suspended_at: self.suspended_at(),
            denials: self.denials.clone(),
            pending: self
                .pending
                .iter()
                .map(|(d, p)| PendingSnapshot {
                    digest: *d,
                    payload: p.payload.clone(),
                    created_at: p.created_at,
                    expires_at: p.expires_at,
                    rule: p.rule.clone(),
                    reason: p.reason.clone(),
                    signed: p.signed.clone(),
                    denied_at: p.denied_at,
                })
                .collect(),
        }
    }

    /// The machine `s` describes. Fails when the policy does not compile to the same hash or
    /// a held request does not prepare to its digest (a snapshot from another build, or
    /// corrupted): the caller must not serve such a session.
    pub fn restore(s: MachineSnapshot) -> Result<Machine, String> {
        let MachineSnapshot {
            facts,
            time,
            policy,
            policy_hash,
            counters,
            replay_window,
            replay_capacity,
            replay,
            revoked,
            key_destroyed,
            suspended,
            suspended_at,
            denials,
            pending,
        } = s;
        let compiled = CompiledPolicy::compile_restored(policy).map_err(|d| format!("policy does not compile: {d}"))?;
        if compiled.hash != policy_hash {
            return Err(format!("policy compiles to {:#x}, the snapshot says {policy_hash:#x}", compiled.hash));
        }
        // Transactions a build older than the L1-gas rule recorded as certain (RULES.md §6).
        let mut counters = counters;
        counters.allowances.mark_uncertain(|c| crate::allowance::gas_uncertain(&compiled, c));
        let mut held = BTreeMap::new();
        for p in pending {
            let prepared = prepare(&p.payload).map_err(|d| format!("held request {:#x}: {d}", p.digest))?;
            if prepared.stamp_digest() != p.digest {
                return Err(format!(
                    "held request prepares to {:#x}, the snapshot says {:#x}",
                    prepared.stamp_digest(),
                    p.digest
                ));
            }
            held.insert(
                p.digest,
                Box::new(Pending {
                    cbor: crate::frame::cbor_len(&p.payload),
                    payload: p.payload,
                    created_at: p.created_at,
                    expires_at: p.expires_at,
                    rule: p.rule,
                    reason: p.reason,
                    signed: p.signed,
                    denied_at: p.denied_at,
                }),
            );
        }
        Ok(Machine {
            facts,
            time,
            policy: Arc::new(compiled),
            counters,
            replay: ReplayCache::restore(replay_window, replay_capacity, replay),
            revoked,
            key_destroyed,
            suspended_at: suspended.as_ref().map(|_| suspended_at.unwrap_or(facts.created_at)),
            suspended,
            denials,
            pending: held,
        })
    }
}
