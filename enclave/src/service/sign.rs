//! The signing path: decode → authenticate → (lock, read the clock) decide, sign, charge,
//! log (unlock).

use super::{denial, Enclave};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::payload::prepare;
use bridle_common::protocol::{SignRequest, Signed};
use std::sync::atomic::Ordering;

impl Enclave {
    /// `sign_if_allowed` (R-TRUST-1, R-TRUST-3, R-POL-11).
    pub fn sign_if_allowed(&self, req: &SignRequest) -> Result<Signed, Denial> {
        let mut fresh = false;
        let r = self.sign_checked(req, &mut fresh);
        if let (Err(d), false) = (&r, fresh) {
            // Refused before it was known to be the agent's own fresh request: anyone on the
            // path can cause these, so they are logged within bounds (R-AUD-1).
            self.record_sign_refusal(req, d);
        }
        r
    }

    /// What a cluster leader checks before it proposes a signing request: the session, the
    /// payload's bounds and the agent's stamp. `Ok(false)`: this node does not hold the
    /// session's key (its image is not in the session's custody).
    pub fn precheck_sign(&self, req: &SignRequest) -> Result<bool, Denial> {
        let session = self.session(&req.session)?;
        let prepared = prepare(&req.payload)?;
        let digest = prepared.stamp_digest();
        if !session.stamp_key.verify(session.address, req.payload.kind(), &digest, &req.stamp) {
            return Err(denial(ErrorCode::Unauthenticated, "agent stamp does not verify for this session and request"));
        }
        let inner = session.lock();
        Ok(inner.key.is_some() || inner.machine.key_destroyed())
    }

    fn sign_checked(&self, req: &SignRequest, fresh: &mut bool) -> Result<Signed, Denial> {
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
        let mut guard = self.decide_on(&session)?;
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
