//! The enclave service: every call of SPEC §2, each one typed, each error a stable code.
//!
//! The decisions themselves are made by each session's [`Machine`] (pure); this module
//! holds what spans sessions — the identity key, the session table, the owner-nonce book,
//! the memory budget, the audit log — and does the I/O around a decision: it looks the
//! session up, takes its lock, reads the clock **under** it, hands the machine the key, and
//! appends the machine's audit records. Each call runs isolated: a panic becomes an
//! `internal` error for that call only.

mod budget;
pub mod custody;
mod exposure;
mod owner;
mod owners;
mod room;
mod sign;
mod signed_after;
pub mod snapshot;

use crate::audit::{AuditConfig, AuditLog, Subject};
use crate::clock::Clock;
use crate::keys::Key;
use crate::session::{Inner, Session};
use alloy_primitives::{Address, Bytes, B256};
use bridle_common::allowance::aggregate::Book;
use bridle_common::audit::Record;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::machine::{Machine, Outcome};
use bridle_common::protocol::*;
use bridle_common::receipt::{self, Receipted};
pub use budget::Budget;
use owners::OwnerBook;
pub use sign::{LockWait, SESSION_BUSY};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Produces attestation documents (the NSM, or the mock NSM in development).
pub trait Attestor: Send + Sync {
    fn attest(
        &self,
        user_data: Option<Vec<u8>>,
        nonce: Option<Vec<u8>>,
        public_key: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, String>;
}

/// Tunables. Defaults are the production values.
#[derive(Debug, Clone)]
pub struct Config {
    /// Agent stamp timestamps must be within ±this many seconds (R-TRUST-3).
    pub stamp_window: u64,
    /// Live stamp nonces remembered per session.
    pub replay_capacity: usize,
    /// The audit log: entries kept in memory, bounds on host-caused refusals (R-AUD-1).
    pub audit: AuditConfig,
    /// Most sessions held at once. Any Ethereum key can be an owner, so without a bound
    /// session creation could exhaust the enclave's memory. When full, finished sessions
    /// (revoked with their key destroyed, or expired with nothing left to sweep) are
    /// dropped; if it is still full, creation is refused.
    pub max_sessions: usize,
    /// Bytes the sessions' state may take in all (see [`Budget`]).
    pub memory_budget: usize,
    /// Owners whose last nonce is remembered (see [`owners`]).
    pub max_owners: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stamp_window: 60,
            replay_capacity: 1 << 16,
            audit: AuditConfig::default(),
            max_sessions: 100_000,
            memory_budget: 1536 << 20,
            max_owners: 200_000,
        }
    }
}

pub struct Enclave {
    identity: Key,
    clock: Box<dyn Clock>,
    attestor: Option<Box<dyn Attestor>>,
    config: Config,
    booted_at: u64,
    sessions: RwLock<HashMap<Address, Arc<Session>>>,
    /// Highest owner nonce accepted, per owner. Management calls hold this lock for their
    /// whole check-and-apply, so they are serialized (they are rare).
    owners: Mutex<OwnerBook>,
    budget: Budget,
    /// Every session's holdings and declared aggregate ceilings (RULES.md §6a); locked after
    /// a session's lock, never before.
    exposure: Mutex<Book>,
    signatures: AtomicU64,
    denials: AtomicU64,
    audit: AuditLog,
}

pub(crate) fn denial(code: ErrorCode, reason: impl Into<String>) -> Denial {
    Denial::new(code, reason)
}

impl Enclave {
    pub fn new(clock: Box<dyn Clock>, attestor: Option<Box<dyn Attestor>>, config: Config) -> Enclave {
        let booted_at = clock.now();
        let identity = Key::generate();
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

    /// The audit log (R-AUD-1).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// `audit(since)` with its head signed as of `time` rather than this machine's clock: a
    /// cluster follower's, as of the latest entry it applied (it does not know what the
    /// leader has committed since; its head must not say "complete as of now"). Isolated
    /// like every call ([`Enclave::isolated`]).
    pub fn audit_as_of(&self, since: u64, time: u64) -> Result<Reply, Denial> {
        self.isolated("audit", Subject::None, || self.audit.reply(since, None, &self.identity, time).map(Reply::Audit))
    }

    pub fn identity_address(&self) -> Address {
        self.identity.address()
    }

    pub fn identity_public_key(&self) -> Vec<u8> {
        self.identity.public_key_sec1()
    }

    /// The memory budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Serve one call, isolated: a panic anywhere in it becomes an `internal` error for
    /// this call only (the session it touched, if any, fails closed: see [`Session::lock`]).
    pub fn handle(&self, call: Call) -> Result<Reply, Denial> {
        self.handle_waiting(call, sign::LockWait::Block)
    }

    /// [`Enclave::handle`], a signing request waiting for its session's lock as `wait` says
    /// (the server's workers wait only briefly: [`sign::LockWait`]).
    pub fn handle_waiting(&self, call: Call, wait: sign::LockWait) -> Result<Reply, Denial> {
        let subject = Subject::of(&call);
        let name = call.name();
        self.isolated(name, subject, || self.dispatch(call, wait))
    }

    /// Run one call isolated (see [`Enclave::handle`]): a panic is an `internal` error for it
    /// alone; a refused owner call is logged within bounds; refusals are counted.
    pub fn isolated(
        &self,
        name: &'static str,
        subject: Subject,
        f: impl FnOnce() -> Result<Reply, Denial>,
    ) -> Result<Reply, Denial> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            tracing::error!(call = name, "a call panicked; refused as internal");
            Err(denial(ErrorCode::Internal, format!("{name} failed internally; nothing was signed")))
        });
        if let Err(d) = &r {
            // A refused owner call (within bounds; a no-op for other calls).
            self.audit.record_owner_refusal(self.clock.now(), subject, d);
            if d.code != ErrorCode::PendingApproval
                && (d.code.is_denial() || matches!(d.code, ErrorCode::Unauthenticated | ErrorCode::Replayed))
            {
                self.denials.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn dispatch(&self, call: Call, wait: sign::LockWait) -> Result<Reply, Denial> {
        match call {
            Call::SignIfAllowed(req) => self.sign_waiting(&req, wait).map(Reply::Signed),
            Call::CreateSession(c) => self.create_session(c).map(Reply::SessionCreated),
            Call::UpdatePolicy(u) => self.update_policy(u).map(Reply::PolicyUpdated),
            Call::Revoke(r) => self.revoke(&r).map(Reply::Revoked),
            Call::RevokeAll(r) => self.revoke_all(&r).map(Reply::Revoked),
            Call::ApprovePending(a) => self.approve_pending(&a).map(Reply::Signed),
            Call::DenyPending(d) => self.deny_pending(&d).map(Reply::PendingDenied),
            Call::Attest(a) => self.attest(a).map(Reply::Attestation),
            Call::Audit(q) => self.audit.reply(q.since, q.nonce, &self.identity, self.clock.now()).map(Reply::Audit),
            Call::Status(q) => self.status(q.session, q.nonce, q.held).map(Reply::Status),
            Call::Sweep(w) => self.sweep(&w).map(Reply::Swept),
            Call::Cluster(_) | Call::AllowImage(_) => {
                Err(denial(ErrorCode::Unsupported, "this enclave is not a cluster node (start it with --cluster)"))
            }
        }
    }

    /// `session`'s state, locked for a decision: refused as unknown when the session was
    /// dropped (to make room) after the caller found it.
    pub(super) fn decide_on<'s>(&self, session: &'s Session) -> Result<std::sync::MutexGuard<'s, Inner>, Denial> {
        self.not_dropped(session, session.lock())
    }

    /// `inner`, `session`'s state locked, unless the session was dropped meanwhile.
    pub(super) fn not_dropped<'s>(
        &self,
        session: &'s Session,
        inner: std::sync::MutexGuard<'s, Inner>,
    ) -> Result<std::sync::MutexGuard<'s, Inner>, Denial> {
        if inner.dropped {
            return Err(denial(
                ErrorCode::UnknownSession,
                format!("no session {} in this enclave (it ended and was dropped)", session.address),
            ));
        }
        Ok(inner)
    }

    /// A session, for tests elsewhere in the crate (to hold its lock, say).
    #[cfg(test)]
    pub(crate) fn session_for_test(&self, addr: &Address) -> Arc<Session> {
        self.session(addr).expect("the session")
    }

    pub(super) fn session(&self, addr: &Address) -> Result<Arc<Session>, Denial> {
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        map.get(addr).cloned().ok_or_else(|| {
            denial(
                ErrorCode::UnknownSession,
                format!("no session {addr} in this enclave (sessions do not survive an enclave restart)"),
            )
        })
    }

    /// Append a decision's audit records at its session time, keep the key in step with the
    /// machine, and re-charge the session's memory.
    fn settle<T>(&self, session: &Session, inner: &mut Inner, out: &Outcome<T>) {
        self.settle_with(inner, out, &mut self.gate(session));
    }

    /// [`Enclave::settle`] through the gate the decision used (still holding the book when
    /// the decision checked it), publishing the session's new holdings.
    fn settle_with<T>(&self, inner: &mut Inner, out: &Outcome<T>, gate: &mut exposure::Gate<'_>) {
        // A change to the book is logged under its lock (`Gate::prepare`).
        let publication = if inner.dropped { None } else { gate.prepare(inner) };
        for r in &out.records {
            self.audit.append(out.time, r.clone());
        }
        if inner.dropped {
            // Its charge was refunded and its entry withdrawn when it was dropped.
            return;
        }
        if let Some(p) = publication {
            gate.commit(inner, p);
        }
        inner.settle_key();
        // A session this call left finished with nothing outstanding: the next pass over
        // finished sessions looks again (once per session; time alone is counted by the
        // pass's second, `budget::Passes`).
        let finished = inner.machine.finished(out.time) && inner.machine.holdings_at(out.time).is_empty();
        if finished && !inner.finish_counted {
            self.budget.passes.changed();
        }
        // (An expired session an owner's update revived may finish again: counted again.)
        inner.finish_counted = finished;
        let now = charge(inner);
        self.budget.recharge(inner.charged, now);
        inner.charged = now;
    }

    /// Sign the receipt of a reply that changes nothing (a status) with the identity key,
    /// for `nonce` (zero when none): a failure answers `internal`, as nothing was done.
    /// Replies to changes take [`Enclave::receipted_after_change`].
    pub(super) fn receipted<T: Receipted>(&self, mut body: T, nonce: Option<B256>) -> Result<T, Denial> {
        receipt::attach(&mut body, self.identity.address(), self.clock.now(), nonce.unwrap_or_default(), |d| {
            self.identity.sign_digest(d)
        })
        .map_err(|e| denial(ErrorCode::Internal, format!("receipt signature failed: {e}")))?;
        Ok(body)
    }

    /// The reply to an owner's call whose change is already made, with the enclave's
    /// receipt for the owner's nonce bound to the owner (zero when the caller signed
    /// nothing: an anonymous sweep). Only the node that answers signs (a cluster replica applying the same entry
    /// makes no reply); a signing failure is logged and the reply goes without its receipt,
    /// which owner tools refuse as unconfirmed. The change stands either way: answering
    /// `internal` after it was made would tell the owner that a grant, an update, a
    /// revocation or a denial did not happen when it did (and, in a cluster, only this node
    /// would differ in what it answered). One path for every change, as
    /// [`Enclave::bind_or_log`] is for bindings.
    pub(super) fn receipted_after_change<T: Receipted>(&self, reply: T, auth: Option<&OwnerAuth>) -> T {
        if !crate::apply::answers() {
            return reply;
        }
        // The owner's nonce bound to the owner whose signature was checked: another owner's
        // call with the same nonce gets another word (receipt::owner_nonce).
        let word = auth.map_or_else(receipt::anonymous_nonce, |a| receipt::owner_nonce(a.owner, a.nonce));
        receipt_or_log(reply, self.identity.address(), self.clock.now(), word, |d| self.identity.sign_digest(d))
    }

    fn attest(&self, a: Attest) -> Result<AttestationReply, Denial> {
        let Some(att) = &self.attestor else {
            return Err(denial(ErrorCode::Unsupported, "this enclave runs without an attestation provider"));
        };
        if a.nonce.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(denial(ErrorCode::TooLarge, "attestation nonce is limited to 512 bytes"));
        }
        let doc = att
            .attest(None, a.nonce.map(|n| n.to_vec()), Some(self.identity.public_key_sec1()))
            .map_err(|e| denial(ErrorCode::Internal, format!("attestation failed: {e}")))?;
        Ok(AttestationReply { document: Bytes::from(doc) })
    }

    /// Public facts, and one session's when asked; signed when the query has a nonce (the
    /// receipt's nonce binds the session asked about: [`receipt::status_nonce`]). `held`
    /// names the held request whose payload the session's facts show whatever its size
    /// ([`bridle_common::machine::STATUS_PAYLOAD_BYTES`]).
    pub fn status(&self, asked: Option<Address>, nonce: Option<B256>, held: Option<B256>) -> Result<Status, Denial> {
        let now = self.clock.now();
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let total = map.len() as u64;
        // Sessions busy elsewhere are counted after the map's lock is released: waiting for
        // one while holding it would queue every writer behind this status, and (the lock
        // preferring writers) every reader behind them (found 2026-12-03 by a review).
        let mut active = 0u64;
        let mut busy = Vec::new();
        for s in map.values() {
            match s.try_lock() {
                Some(inner) => active += u64::from(inner.machine.state(now) == SessionState::Active),
                None => busy.push(Arc::clone(s)),
            }
        }
        let session = asked.and_then(|a| map.get(&a).cloned());
        drop(map);
        for s in busy {
            active += u64::from(s.lock().machine.state(now) == SessionState::Active);
        }
        let st = Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            identity_public_key: Bytes::from(self.identity.public_key_sec1()),
            identity_address: self.identity.address(),
            booted_at: self.booted_at,
            now,
            sessions_active: active,
            sessions_total: total,
            signatures: self.signatures.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            aggregate: session
                .as_ref()
                .map(|s| self.groups(s).into_iter().map(Into::into).collect())
                .unwrap_or_default(),
            session: session.map(|s| Box::new(s.lock().machine.status(self.clock.now(), held))),
            receipt: None,
        };
        match nonce {
            Some(n) => self.receipted(st, Some(bridle_common::receipt::status_nonce(n, asked))),
            None => Ok(st),
        }
    }

    /// Record a bounded refusal of `sign_if_allowed` (before it was the agent's own fresh
    /// request).
    fn record_sign_refusal(&self, req: &SignRequest, d: &Denial) {
        self.audit.record_sign_refusal(self.clock.now(), req, d);
    }

    fn append(&self, time: u64, r: Record) {
        self.audit.append(time, r);
    }
}

/// Bytes a session is charged: its compiled policy (estimated from its canonical size) and
/// its machine's state.
pub fn footprint(m: &Machine) -> usize {
    policy_bytes(m.policy().canonical_len) + m.footprint()
}

/// What the exposure book keeps for a session in it (holding approvals or declaring a
/// ceiling), beside the tokens: its entry, the slots of the book's maps and, when it
/// declares ceilings, the declared-ceiling maps of its owner and of its owner and agent
/// (each node allocated whole at its first entry; a fresh key can be both). Measured by
/// `tests/book_memory.rs` with a counting allocator (≈ 1.7 KB for fresh keys declaring
/// ceilings), with mimalloc's rounding. The first estimate, 512 bytes per token and nothing
/// per session, was a fraction of it (a review of 2026-12-05).
pub const BOOK_ENTRY_BYTES: usize = 2560;

/// What a session's first token held adds: the first node of each of the four maps of
/// tokens — its last publication, the book's copy, its owner's and its agent's sums —
/// allocated whole (≈ 3.6 KB measured beside the entry; with mimalloc's rounding and
/// per-allocation overhead, charged with some margin).
pub const HOLDINGS_NODES_BYTES: usize = 4096;

/// What each token a session holds approved adds: its entries in the four maps (64 + 64 +
/// 96 + 96 bytes) in nodes at least half full, with their share of inner nodes (≈ 440
/// bytes measured).
pub const HOLDING_BYTES: usize = 768;

/// Bytes a session is charged once its holdings are published ([`footprint`] and what the
/// exposure book keeps for it): a function of the replicated state, the same on every
/// replica.
pub(crate) fn charge(inner: &Inner) -> usize {
    let book = match &inner.published {
        Some((holdings, declares)) if !holdings.is_empty() || declares.is_some() => {
            let tokens = match holdings.len() {
                0 => 0,
                n => HOLDINGS_NODES_BYTES.saturating_add(n.saturating_mul(HOLDING_BYTES)),
            };
            BOOK_ENTRY_BYTES.saturating_add(tokens)
        }
        _ => 0,
    };
    footprint(&inner.machine).saturating_add(book)
}

/// What the budget charges a new session whose policy has `canonical_len` canonical bytes.
pub fn footprint_estimate(canonical_len: usize) -> usize {
    policy_bytes(canonical_len) + std::mem::size_of::<Machine>()
}

/// What a compiled policy of `canonical_len` canonical bytes takes in memory (measured:
/// see BENCHMARKS.md, "memory per session").
pub fn policy_bytes(canonical_len: usize) -> usize {
    canonical_len.saturating_mul(4).saturating_add(2048)
}

/// `reply` with its receipt when `sign` succeeds, else as it is, the failure logged: a
/// change's reply is never turned into an error ([`Enclave::receipted_after_change`]).
fn receipt_or_log<T: Receipted, E: std::fmt::Display>(
    mut reply: T,
    enclave: Address,
    now: u64,
    nonce: B256,
    sign: impl FnOnce(&B256) -> Result<alloy_primitives::Signature, E>,
) -> T {
    if let Err(e) = receipt::attach(&mut reply, enclave, now, nonce, sign) {
        eprintln!("bridle-enclave: the receipt of a {} reply (its change is made): {e}", T::KIND);
    }
    reply
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod custody_tests;
#[cfg(test)]
mod prepaid_tests;
#[cfg(test)]
pub(crate) mod room_tests;
