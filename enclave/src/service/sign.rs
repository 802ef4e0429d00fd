//! The signing path: decode → authenticate → (lock, read the clock) decide, sign, charge,
//! log (unlock).

use super::{denial, Enclave};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::payload::prepare;
use bridle_common::protocol::{SignRequest, Signed};
use std::sync::atomic::Ordering;

/// The rule of the refusal a signing request gets when it may not wait for its session's
/// lock and finds it taken ([`LockWait::Briefly`]): the server waits for the lock off the
/// worker a little and serves the request again; a caller sees it when the session stayed
/// busy (nothing decided or changed: the host asks again, within its call timeout).
pub use bridle_common::error::SESSION_BUSY;

/// How long a signing request may wait for its session's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// As long as it takes (off the runtime's workers, or outside a server).
    Block,
    /// A few signatures' time at most (on a runtime worker): an owner call holds the lock
    /// through its work — an owner-signed sweep signs up to ≈ 512 revocations in it — and
    /// whoever owns a session could keep every worker waiting on it (a review of
    /// 2026-12-05). Beyond it the request is refused [`SESSION_BUSY`], nothing changed.
    Briefly,
}

/// How long [`LockWait::Briefly`] tries: two or three signatures (a request that spins here
/// costs a worker that long; one on a session only busy with another signature of its own
/// seldom waits more than one).
const BRIEFLY: std::time::Duration = std::time::Duration::from_micros(100);

impl Enclave {
    /// `sign_if_allowed` (R-TRUST-1, R-TRUST-3, R-POL-11).
    pub fn sign_if_allowed(&self, req: &SignRequest) -> Result<Signed, Denial> {
        self.sign_waiting(req, LockWait::Block)
    }

    /// [`Enclave::sign_if_allowed`], waiting for the session's lock as `wait` says.
    pub fn sign_waiting(&self, req: &SignRequest, wait: LockWait) -> Result<Signed, Denial> {
        let mut fresh = false;
        let r = self.sign_checked(req, &mut fresh, wait);
        if matches!(&r, Err(d) if bridle_common::error::is_session_busy(d)) {
            // Not a refusal: served again where it may wait.
            return r;
        }
        if let (Err(d), false) = (&r, fresh) {
            // Refused before it was known to be the agent's own fresh request: anyone on the
            // path can cause these, so they are logged within bounds (R-AUD-1).
            self.record_sign_refusal(req, d);
        }
        r
    }

    /// What a cluster leader checks before it proposes a signing request: the session, the
    /// payload's bounds and the agent's stamp. `Ok(Some(false))`: this node does not hold
    /// the session's key (its image is not in the session's custody). `Ok(None)`: the
    /// session's lock is held (an entry applying an owner call on it): ask again once it is
    /// free ([`Enclave::wait_for_session`], off the runtime's worker).
    pub fn precheck_sign(&self, req: &SignRequest) -> Result<Option<bool>, Denial> {
        let session = self.session(&req.session)?;
        let prepared = prepare(&req.payload)?;
        let digest = prepared.stamp_digest();
        if !session.stamp_key.verify(session.address, req.payload.kind(), &digest, &req.stamp) {
            return Err(denial(ErrorCode::Unauthenticated, "agent stamp does not verify for this session and request"));
        }
        let Some(inner) = session.try_lock() else { return Ok(None) };
        Ok(Some(inner.key.is_some() || inner.machine.key_destroyed()))
    }

    fn sign_checked(&self, req: &SignRequest, fresh: &mut bool, wait: LockWait) -> Result<Signed, Denial> {
        let session = self.session(&req.session)?;
        // Decode: build exactly what will be signed, and its digest (R-TRUST-1), within
        // hard bounds (nothing is parsed unbounded before authentication). Type-4
        // transactions are refused here, before anything else (R-SIGN-1).
        let prepared = prepare(&req.payload)?;
        let digest = prepared.stamp_digest();
        // Authenticate: only the session's agent can make this MAC (R-TRUST-3).
        if !session.stamp_key.verify(session.address, req.payload.kind(), &digest, &req.stamp) {
            return Err(denial(ErrorCode::Unauthenticated, "agent stamp does not verify for this session and request"));
        }
        self.room_to_grow(super::budget::HEADROOM, "nothing that would grow its state")?;
        // One step under the session lock, at one session time read under it.
        let mut guard = match wait {
            LockWait::Block => self.decide_on(&session)?,
            LockWait::Briefly => self.decide_on_briefly(&session)?,
        };
        let inner = &mut *guard;
        let clock = self.clock.now();
        let mut gate = self.gate(&session);
        let (machine, signer) = inner.with_signer(false);
        let out = machine.sign_within(clock, &req.payload, prepared, &req.stamp, signer, &mut gate);
        self.settle_with(inner, &out, &mut gate);
        drop(gate);
        drop(guard);
        *fresh = out.fresh;
        if out.result.is_ok() && !out.records.is_empty() {
            self.signatures.fetch_add(1, Ordering::Relaxed);
        }
        out.result
    }
}

impl Enclave {
    /// Wait until `session`'s lock is free, at most `patience` (looking every millisecond):
    /// whether it was (or there is no such session: asked again, the request is refused
    /// as unknown). For a signing request refused [`SESSION_BUSY`], before it is served
    /// again; run off the runtime's workers.
    pub fn wait_for_session(&self, session: &alloy_primitives::Address, patience: std::time::Duration) -> bool {
        let Ok(s) = self.session(session) else { return true };
        let deadline = std::time::Instant::now() + patience;
        loop {
            if s.try_lock().is_some() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// [`Enclave::decide_on`] without waiting more than [`BRIEFLY`] for the lock.
    fn decide_on_briefly<'s>(
        &self,
        session: &'s crate::session::Session,
    ) -> Result<std::sync::MutexGuard<'s, crate::session::Inner>, Denial> {
        let started = std::time::Instant::now();
        loop {
            if let Some(inner) = session.try_lock() {
                return self.not_dropped(session, inner);
            }
            if started.elapsed() >= BRIEFLY {
                return Err(Denial::rule(
                    ErrorCode::Unavailable,
                    SESSION_BUSY,
                    format!("session {} is busy; served again where it may wait", session.address),
                ));
            }
            std::thread::yield_now();
        }
    }
}
