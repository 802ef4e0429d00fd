//! The enclave's audit log (R-AUD-1): every decision appended to a hash chain, the head
//! signed by the identity key when the log is read.
//!
//! * **Cheap appends.** [`AuditLog::append`] links one entry (one keccak over a few hundred
//!   bytes) under a short mutex that is a *leaf* lock: nothing else is ever locked while it
//!   is held, so callers may append while holding a session's lock. No signature is made per
//!   append: the head is signed on demand, by [`AuditLog::reply`], outside the lock.
//! * **Bounded memory.** The last `capacity` entries (default 262 144) are kept; older
//!   ones are dropped and are no longer served. The host pulls the log continuously (every
//!   second, and after each relayed call) and stores it, so in practice nothing is dropped
//!   before the host has it; if it was (the host was away for more than `capacity`
//!   decisions), the next reply starts at the oldest entry still held and the gap is visible
//!   to every verifier as missing entries.
//! * **No flooding.** Every request that reached a decision as the agent's own fresh request
//!   (stamp verified, nonce never seen) is logged, allowed or denied, without limit, and
//!   so is every owner action that took effect. Refusals that anyone on the path (the
//!   untrusted host included) can cause at will — an unknown session, a bad or missing
//!   stamp, a replayed stamp, a malformed payload, a call on a revoked or suspended
//!   session, a failed owner call — are logged up to a bound per bucket (per session, one
//!   for unknown sessions, one for owner calls; default 16 per 60 s) and overall (default
//!   1024 per 60 s). Past the bound they are counted, and the next entry of that bucket
//!   says how many were not logged and since when.
//!
//! Hooking it in: each decision point of the service appends its entry with
//! [`AuditLog::append`] and a constructor of [`rec`] (`rec::allowed`, `rec::denied`, …);
//! refusals that come before a decision go through [`AuditLog::record_sign_refusal`] and
//! [`AuditLog::record_owner_refusal`] (bounded); `audit(since)` is [`AuditLog::reply`].

use crate::keys::Key;
use alloy_primitives::{Address, B256};
pub use bridle_common::audit::rec;
use bridle_common::audit::{AuditEntry, AuditHead, AuditReply, ChainWriter, Decision, Record, MAX_REPLY_ENTRIES};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{Call, SignRequest};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Default number of entries kept in memory.
/// The host pulls the log every 100 ms under load, so this is ample while it keeps up, but
/// only ≈ 30 s of signing at the host's peak rate if it stops pulling (then the gap shows
/// as missing entries). Each entry is counted at its largest in the memory plan, see
/// [`crate::memory`].
pub const DEFAULT_CAPACITY: usize = 262_144;
/// At most this many limiter buckets are tracked (idle ones are pruned first).
const MAX_BUCKETS: usize = 4096;

/// Tunables of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Entries kept in memory (at least 1).
    pub capacity: usize,
    /// Bounded refusals logged per bucket per window.
    pub refusals_per_bucket: u32,
    /// Bounded refusals logged in all per window.
    pub refusals_overall: u32,
    /// The window of the two bounds above, seconds.
    pub refusal_window: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { capacity: DEFAULT_CAPACITY, refusals_per_bucket: 16, refusals_overall: 1024, refusal_window: 60 }
    }
}

/// Who a bounded refusal is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bucket {
    Session(Address),
    /// Requests naming a session this enclave does not have.
    UnknownSession,
    /// Refused owner calls.
    Owner,
    /// Everything else once [`MAX_BUCKETS`] buckets are live.
    Overflow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Window {
    start: u64,
    count: u32,
    suppressed: u64,
    suppressed_since: u64,
}

impl Window {
    fn roll(&mut self, now: u64, len: u64) {
        // A clock moved backwards also starts a new window.
        if now < self.start || now - self.start >= len {
            self.start = now;
            self.count = 0;
        }
    }
}

#[derive(Debug, Default)]
struct Limiter {
    buckets: HashMap<Bucket, Window>,
    overall: Window,
}

/// `Some(suppressed note)` when admitted.
type Admission = Option<Option<(u64, u64)>>;

impl Limiter {
    fn admit(&mut self, cfg: &AuditConfig, mut bucket: Bucket, now: u64) -> Admission {
        let len = cfg.refusal_window.max(1);
        if !self.buckets.contains_key(&bucket) && self.buckets.len() >= MAX_BUCKETS {
            self.buckets.retain(|_, w| w.suppressed > 0 || (now >= w.start && now - w.start < len));
            if self.buckets.len() >= MAX_BUCKETS {
                bucket = Bucket::Overflow;
            }
        }
        self.overall.roll(now, len);
        let w = self.buckets.entry(bucket).or_default();
        w.roll(now, len);
        if w.count < cfg.refusals_per_bucket && self.overall.count < cfg.refusals_overall {
            w.count += 1;
            self.overall.count += 1;
            let note = (w.suppressed > 0).then_some((w.suppressed, w.suppressed_since));
            w.suppressed = 0;
            Some(note)
        } else {
            if w.suppressed == 0 {
                w.suppressed_since = now;
            }
            w.suppressed += 1;
            None
        }
    }
}

struct Inner {
    chain: ChainWriter,
    entries: VecDeque<AuditEntry>,
    limiter: Limiter,
}

/// The enclave's audit log. See the module docs.
pub struct AuditLog {
    config: AuditConfig,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("AuditLog")
            .field("enclave", &g.chain.enclave())
            .field("next_seq", &g.chain.next_seq())
            .field("held", &g.entries.len())
            .finish()
    }
}

/// The subject of an owner call, taken from the call before it is served (see
/// [`AuditLog::record_owner_refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Not an owner call (signing, status, attest, audit).
    None,
    CreateSession {
        owner: Address,
    },
    UpdatePolicy {
        owner: Address,
        session: Address,
    },
    Revoke {
        owner: Address,
        session: Address,
    },
    RevokeAll {
        owner: Address,
    },
    ApprovePending {
        owner: Address,
        session: Address,
        digest: B256,
    },
    DenyPending {
        owner: Address,
        session: Address,
        digest: B256,
    },
    AllowImage {
        owner: Address,
        session: Address,
        image: B256,
    },
}

impl Subject {
    pub fn of(call: &Call) -> Subject {
        match call {
            Call::CreateSession(c) => Subject::CreateSession { owner: c.auth.owner },
            Call::UpdatePolicy(u) => Subject::UpdatePolicy { owner: u.auth.owner, session: u.session },
            Call::Revoke(r) => Subject::Revoke { owner: r.auth.owner, session: r.session },
            Call::RevokeAll(r) => Subject::RevokeAll { owner: r.auth.owner },
            Call::ApprovePending(a) => {
                Subject::ApprovePending { owner: a.auth.owner, session: a.session, digest: a.digest }
            }
            Call::DenyPending(d) => Subject::DenyPending { owner: d.auth.owner, session: d.session, digest: d.digest },
            Call::AllowImage(a) => Subject::AllowImage { owner: a.auth.owner, session: a.session, image: a.image },
            // Signing (see `record_sign_refusal`), status, attest, audit, and calls this log
            // does not know.
            _ => Subject::None,
        }
    }

    fn parts(&self) -> Option<(&'static str, Address, Address, B256)> {
        Some(match *self {
            Subject::None => return None,
            Subject::CreateSession { owner } => ("create_session", owner, Address::ZERO, B256::ZERO),
            Subject::UpdatePolicy { owner, session } => ("update_policy", owner, session, B256::ZERO),
            Subject::Revoke { owner, session } => ("revoke", owner, session, B256::ZERO),
            Subject::RevokeAll { owner } => ("revoke_all", owner, Address::ZERO, B256::ZERO),
            Subject::ApprovePending { owner, session, digest } => ("approve_pending", owner, session, digest),
            Subject::DenyPending { owner, session, digest } => ("deny_pending", owner, session, digest),
            Subject::AllowImage { owner, session, image } => ("allow_image", owner, session, image),
        })
    }
}

/// An [`AuditLog`] as data: the chain's end, the newest entries held (at most the number
/// asked for), and the refusal limiter (it decides what is logged, so replicas share it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditSnapshot {
    pub enclave: Address,
    pub next_seq: u64,
    pub last_hash: B256,
    pub entries: Vec<AuditEntry>,
    limiter: Vec<(Bucket, Window)>,
    overall: Window,
}

impl AuditLog {
    /// The log as data, with at most `max_entries` of the newest entries.
    pub fn snapshot(&self, max_entries: usize) -> AuditSnapshot {
        let g = self.lock();
        let skip = g.entries.len().saturating_sub(max_entries);
        let mut limiter: Vec<(Bucket, Window)> = g.limiter.buckets.iter().map(|(b, w)| (*b, *w)).collect();
        limiter.sort_by_key(|(b, _)| format!("{b:?}"));
        AuditSnapshot {
            enclave: g.chain.enclave(),
            next_seq: g.chain.next_seq(),
            last_hash: g.chain.last_hash(),
            entries: g.entries.iter().skip(skip).cloned().collect(),
            limiter,
            overall: g.limiter.overall,
        }
    }

    /// The log `s` describes: it continues the same chain.
    pub fn restore(s: AuditSnapshot, config: AuditConfig) -> AuditLog {
        let config = AuditConfig { capacity: config.capacity.max(1), ..config };
        let mut entries = VecDeque::with_capacity(config.capacity);
        let skip = s.entries.len().saturating_sub(config.capacity);
        // Held as appended ones are: strings at their length (a decoded string may have spare
        // capacity), so each entry stays within what the memory plan counts.
        entries.extend(s.entries.into_iter().skip(skip).map(AuditEntry::held_exactly));
        AuditLog {
            inner: Mutex::new(Inner {
                chain: ChainWriter::resume(s.enclave, s.next_seq, s.last_hash),
                entries,
                limiter: Limiter { buckets: s.limiter.into_iter().collect(), overall: s.overall },
            }),
            config,
        }
    }

    /// A log for the enclave with identity `enclave`, started at `now`: entry 0 records the
    /// start (so the log is never empty and always has a head to sign).
    pub fn new(enclave: Address, now: u64, config: AuditConfig) -> AuditLog {
        let config = AuditConfig { capacity: config.capacity.max(1), ..config };
        let log = AuditLog {
            inner: Mutex::new(Inner {
                chain: ChainWriter::new(enclave),
                // Reserved once (address space; pages are touched as entries arrive), so an
                // append never moves the window.
                entries: VecDeque::with_capacity(config.capacity),
                limiter: Limiter::default(),
            }),
            config,
        };
        let detail = format!("bridle-enclave {} started", env!("CARGO_PKG_VERSION"));
        log.append(now, Record::new(Decision::Started, Address::ZERO, B256::ZERO, &detail));
        log
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation under this lock is a single step; a poisoned lock keeps its state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// The sequence number the next entry gets (= entries ever appended).
    pub fn next_seq(&self) -> u64 {
        self.lock().chain.next_seq()
    }

    /// Append one entry at `now`; returns its sequence number. O(1): one keccak, no
    /// allocation of the window (reserved at start), no signature.
    pub fn append(&self, now: u64, rec: Record) -> u64 {
        let mut g = self.lock();
        let e = g.chain.append(now, rec);
        let seq = e.seq;
        if g.entries.len() >= self.config.capacity {
            g.entries.pop_front();
        }
        g.entries.push_back(e);
        seq
    }

    /// Append a refusal that anyone on the path can cause at will, within the bounds of
    /// `bucket`. `make` runs only when the entry is admitted. Returns its sequence number,
    /// or `None` when it was only counted.
    pub fn append_bounded(&self, now: u64, bucket: Bucket, make: impl FnOnce() -> Record) -> Option<u64> {
        let note = self.lock().limiter.admit(&self.config, bucket, now)?;
        let mut rec = make();
        if let Some((n, since)) = note {
            rec.detail = format!("[{n} similar refusals not logged since {since}] {}", rec.detail);
        }
        Some(self.append(now, rec))
    }

    /// Record a `sign_if_allowed` refusal that came before the request was known to be the
    /// agent's own fresh request (unknown session, undecodable payload, bad stamp, revoked or
    /// suspended session, replayed stamp): within the bounds of its session's bucket (one
    /// shared bucket for unknown sessions). The digest is computed only when it is logged.
    pub fn record_sign_refusal(&self, now: u64, req: &SignRequest, d: &Denial) -> Option<u64> {
        let bucket =
            if d.code == ErrorCode::UnknownSession { Bucket::UnknownSession } else { Bucket::Session(req.session) };
        self.append_bounded(now, bucket, || {
            let digest = bridle_common::payload::stamp_digest(&req.payload).unwrap_or(B256::ZERO);
            rec::denied(req.session, digest, d)
        })
    }

    /// Record a refused owner call (`subject` taken with [`Subject::of`] before the call was
    /// served), within the `Owner` bound. A no-op for calls that are not owner calls.
    pub fn record_owner_refusal(&self, now: u64, subject: Subject, d: &Denial) -> Option<u64> {
        let (call, owner, session, digest) = subject.parts()?;
        self.append_bounded(now, Bucket::Owner, || {
            Record::new(Decision::Denied, session, digest, &format!("{call} by {owner} refused: {}", d.reason))
                .with_code(d.code, d.rule.as_deref())
        })
    }

    /// Up to `max` entries from `since` (at most [`MAX_REPLY_ENTRIES`]) and a head signed by
    /// `identity` at the last of them — or, when there are none, at the log's current end.
    /// `since` past the end is refused; `since` older than the oldest entry held starts at
    /// that entry (the older ones are gone: the verifier sees them missing). The head names
    /// that oldest entry (`oldest`), so a host relaying the reply cannot start a batch later
    /// and call what it left out dropped.
    pub fn entries(
        &self,
        since: u64,
        max: usize,
        nonce: Option<B256>,
        identity: &Key,
        now: u64,
    ) -> Result<AuditReply, Denial> {
        let (entries, seq, hash, more, end, oldest, now) = {
            let g = self.lock();
            let next = g.chain.next_seq();
            let first = next - g.entries.len() as u64;
            // `u64::MAX`: the head only, at the log's end (a verifier's fresh head).
            let since = if since == u64::MAX { next } else { since };
            if since > next {
                return Err(Denial::malformed(format!(
                    "audit: since {since} is past the end of the log (the next entry is {next})"
                )));
            }
            let start = since.max(first);
            let n = usize::try_from(next - start).unwrap_or(usize::MAX).min(max.clamp(1, MAX_REPLY_ENTRIES));
            let off = (start - first) as usize;
            let batch: Vec<AuditEntry> = g.entries.range(off..off + n).cloned().collect();
            let (seq, hash) = match g.entries.get(off + n) {
                // The head at the last entry returned: its hash is its successor's `prev`.
                Some(after) if n > 0 => (start + n as u64 - 1, after.prev),
                _ => (next - 1, g.chain.last_hash()),
            };
            // Never signed before the latest entry it knows of (a cluster follower's `now` is
            // the latest entry it applied, read before this lock).
            let latest = g.entries.back().map_or(0, |e| e.time);
            (batch, seq, hash, start + (n as u64) < next, next, first, now.max(latest))
        };
        let enclave = identity.address();
        let nonce = nonce.unwrap_or_default();
        let head = AuditHead::signed(seq, hash, now, enclave, end, nonce, Some(oldest), |d| identity.sign_digest(d))
            .map_err(|e| Denial::new(ErrorCode::Internal, format!("audit head signature failed: {e}")))?;
        Ok(AuditReply { entries, head, more })
    }

    /// The `audit(since, nonce)` call: [`AuditLog::entries`] with the largest batch. The head
    /// says how many entries the log holds right now (`end`), so a batch's head can never
    /// pass for the whole log's.
    pub fn reply(&self, since: u64, nonce: Option<B256>, identity: &Key, now: u64) -> Result<AuditReply, Denial> {
        self.entries(since, MAX_REPLY_ENTRIES, nonce, identity, now)
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
