//! Owner calls: each carries an owner-signed envelope the enclave rebuilds from the call's
//! own fields. A call refused before its signature and nonce check out changes nothing. Once
//! they do, its nonce is spent whatever follows: a signed message the enclave refused (a
//! creation while the enclave is full, an update over a cap, an approval of a request past
//! its cap) must not take effect later, when a host that kept it relays it again and it
//! would pass — after the owner has been told it was refused (found 2026-12-03 by a review).

use super::{budget::HEADROOM, budget::OWNER_SWEEP_ROOM, charge, denial, policy_bytes, Enclave};
use crate::keys::Key;
use crate::session::Session;
use alloy_primitives::{Address, Bytes, B256};
use bridle_common::audit::rec;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::machine::{sweep_fees_ok, sweep_terms_ok, Machine};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::{CompiledPolicy, Policy};
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use k256::PublicKey;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use super::owners::OwnerBook;
use super::signed_after;

/// Seconds a cluster leader adds to its clock when it checks an owner call's nonce before
/// proposing it ([`Enclave::precheck_owner`], [`Enclave::check_allow_image`]): the entry is
/// applied at the leader's clock read a moment later, and its nonce may be at most that
/// time plus ten minutes ([`super::owners::max_nonce`]). Checked at a later time, a nonce
/// the leader refuses is refused when applied too — an update is never applied without the
/// keys its release signers' nodes need because the check before it read an earlier second;
/// one the leader passes and the entry's time then refuses has sent a key only to nodes the
/// owner's signed message named (as the lifetime's check: `policy_would_pass_its_lifetime`).
pub(super) const PRECHECK_LEAD: u64 = 2;

impl Enclave {
    /// Check an owner's signature over the action rebuilt from the call's own fields, and
    /// that the nonce is fresh. Returns the nonce book's guard so the caller applies its
    /// change and records the nonce in one step: once this passes, the nonce is spent
    /// whatever follows ([`Enclave::spend`]); a call refused here changes no owner state.
    /// The nonce's bound in time is read at the clock, under the book's lock, plus `lead`
    /// seconds: 0 for a call, [`PRECHECK_LEAD`] for a cluster leader's check before it
    /// proposes one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn authorize(
        &self,
        auth: &OwnerAuth,
        act: &str,
        session: Address,
        agent: Address,
        policy_hash: B256,
        subject: B256,
        lead: u64,
    ) -> Result<MutexGuard<'_, OwnerBook>, Denial> {
        let msg = OwnerAction {
            action: act.to_string(),
            enclave: self.identity.address(),
            session,
            agent,
            policyHash: policy_hash,
            subject,
            nonce: auth.nonce,
        };
        match msg.recover(&auth.signature) {
            Some(who) if who == auth.owner => {}
            Some(who) => {
                return Err(denial(
                    ErrorCode::Unauthenticated,
                    format!("owner signature is by {who}, expected {} (or the message differs)", auth.owner),
                ))
            }
            None => return Err(denial(ErrorCode::Unauthenticated, "owner signature is not a valid 65-byte signature")),
        }
        let book = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        // Only calls that take power away may step one above a last nonce beyond the clock.
        let step = matches!(act, action::REVOKE | action::REVOKE_ALL | action::SWEEP);
        book.check(auth.owner, auth.nonce, self.clock.now(), lead, step)?;
        Ok(book)
    }

    /// Record an accepted owner nonce. When the book is full, the owners that hold sessions
    /// are collected once (never one scan of the sessions per owner considered).
    pub(super) fn accept_nonce(&self, mut book: MutexGuard<'_, OwnerBook>, auth: &OwnerAuth) {
        if book.is_full() {
            let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            let holders: std::collections::HashSet<Address> = map.values().map(|s| s.owner).collect();
            drop(map);
            book.accept(auth.owner, auth.nonce, |o| holders.contains(o));
        } else {
            book.accept(auth.owner, auth.nonce, |_| true);
        }
    }

    /// What a cluster leader checks before it proposes an owner call: the owner's
    /// signature over the action rebuilt from the call's fields, and a fresh nonce — with
    /// the very derivations the call makes when applied (the `authorize_*` helpers below),
    /// recording nothing. Calls that are not owner calls, sweeps (anyone may ask) and
    /// `allow_image` (checked strictly on its own: [`Enclave::check_allow_image`]) pass.
    pub fn precheck_owner(&self, call: &Call) -> Result<(), Denial> {
        match call {
            Call::CreateSession(c) => drop(self.authorize_create(c, PRECHECK_LEAD)?),
            Call::UpdatePolicy(u) => drop(self.authorize_update(u, PRECHECK_LEAD)?),
            Call::Revoke(r) => {
                drop(self.authorize_on_session(&r.auth, action::REVOKE, r.session, B256::ZERO, PRECHECK_LEAD)?)
            }
            Call::RevokeAll(r) => drop(self.authorize_revoke_all(r, PRECHECK_LEAD)?),
            Call::ApprovePending(a) => {
                drop(self.authorize_on_session(&a.auth, action::APPROVE_PENDING, a.session, a.digest, PRECHECK_LEAD)?)
            }
            Call::DenyPending(d) => {
                drop(self.authorize_on_session(&d.auth, action::DENY_PENDING, d.session, d.digest, PRECHECK_LEAD)?)
            }
            // Anyone may ask for a sweep; one that names no session, carries terms a sweep
            // refuses, asks for an account's sweep unsigned, pays fees unsigned that its
            // policy does not allow, or fails its owner's signature is logged only within
            // the bound on refusals (a review of 2026-12-06: a leader logged every such
            // sweep, up to 128 KiB each, where signing requests refused before the log were
            // bounded).
            Call::Sweep(w) => {
                let session = self.session(&w.session)?;
                sweep_terms_ok(&w.terms)?;
                match &w.auth {
                    Some(auth) => drop(self.authorize_on_session(
                        auth,
                        action::SWEEP,
                        w.session,
                        w.terms_digest(),
                        PRECHECK_LEAD,
                    )?),
                    None if !w.accounts.is_empty() => {
                        return Err(denial(
                            ErrorCode::Unauthenticated,
                            "a smart-account sweep needs the owner's signature over its terms",
                        ))
                    }
                    // The fees against the policy as it is now (the machine checks again
                    // when the sweep is applied, after any update logged before it). Only if
                    // the session's lock is free: a leader's check never waits for it on an
                    // async worker, and a sweep it could not check is logged as before.
                    None => {
                        let policy = session.try_lock().map(|inner| inner.machine.policy().clone());
                        if let Some(policy) = policy {
                            sweep_fees_ok(&policy, &w.terms)?
                        }
                    }
                }
            }
            Call::SignIfAllowed(_)
            | Call::AllowImage(_)
            | Call::Attest(_)
            | Call::Audit(_)
            | Call::Status(_)
            | Call::Cluster(_) => {}
        }
        Ok(())
    }

    /// `create_session`'s checks up to the owner's signature: the agent's key, the policy,
    /// that the owner is no session (R-TRUST-5), the signature and nonce.
    #[allow(clippy::type_complexity)]
    fn authorize_create(
        &self,
        c: &CreateSession,
        lead: u64,
    ) -> Result<(PublicKey, Address, CompiledPolicy, MutexGuard<'_, OwnerBook>), Denial> {
        let agent_pk = PublicKey::from_sec1_bytes(&c.agent_public_key)
            .map_err(|_| Denial::malformed("agent_public_key is not a SEC1 secp256k1 public key"))?;
        let agent = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent_pk));
        let policy = self.compile(&c.policy)?;
        // R-TRUST-5: a session key can never own (grant, widen or revoke) sessions.
        if self.sessions.read().unwrap_or_else(|e| e.into_inner()).contains_key(&c.auth.owner) {
            return Err(denial(
                ErrorCode::Unauthenticated,
                "a session address cannot own sessions (agents are never admin)",
            ));
        }
        let book =
            self.authorize(&c.auth, action::CREATE_SESSION, Address::ZERO, agent, policy.hash, B256::ZERO, lead)?;
        Ok((agent_pk, agent, policy, book))
    }

    /// `update_policy`'s checks up to the owner's signature: the session is the owner's,
    /// the policy compiles, the signature over its hash and the nonce.
    fn authorize_update(
        &self,
        u: &UpdatePolicy,
        lead: u64,
    ) -> Result<(Arc<Session>, CompiledPolicy, MutexGuard<'_, OwnerBook>), Denial> {
        let session = self.owned(u.auth.owner, u.session)?;
        let policy = self.compile(&u.policy)?;
        let book =
            self.authorize(&u.auth, action::UPDATE_POLICY, u.session, session.agent, policy.hash, B256::ZERO, lead)?;
        Ok((session, policy, book))
    }

    /// The checks of an owner call on one session (revoke, approve, deny): the session is
    /// the owner's, the signature over `act` with `subject`, and the nonce.
    fn authorize_on_session(
        &self,
        auth: &OwnerAuth,
        act: &str,
        session: Address,
        subject: B256,
        lead: u64,
    ) -> Result<(Arc<Session>, MutexGuard<'_, OwnerBook>), Denial> {
        let s = self.owned(auth.owner, session)?;
        let book = self.authorize(auth, act, session, s.agent, B256::ZERO, subject, lead)?;
        Ok((s, book))
    }

    fn authorize_revoke_all(&self, r: &RevokeAll, lead: u64) -> Result<MutexGuard<'_, OwnerBook>, Denial> {
        self.authorize(&r.auth, action::REVOKE_ALL, Address::ZERO, Address::ZERO, B256::ZERO, B256::ZERO, lead)
    }

    pub(super) fn owned(&self, owner: Address, session: Address) -> Result<Arc<Session>, Denial> {
        let s = self.session(&session)?;
        if s.owner != owner {
            return Err(denial(ErrorCode::Unauthenticated, format!("{owner} does not own session {session}")));
        }
        Ok(s)
    }

    /// The policy as sent, compiled. Its lifetime is checked after the owner's signature
    /// (a policy refused as too long today may fit later: the refusal must spend the nonce).
    fn compile(&self, policy: &Policy) -> Result<CompiledPolicy, Denial> {
        CompiledPolicy::compile(policy.clone())
    }

    /// Whether `policy` compiles and its lifetime passes now or two seconds from now: a
    /// cluster leader attaches a session key to an update only then (the lifetime is checked
    /// when the entry is applied, at a clock read a moment later, after the key would have
    /// travelled to the release signers' nodes). Either reading: a policy a second too long
    /// now passes a second later and must not be applied without the key its signers' nodes
    /// need; one expiring in that second sends the key only to nodes the owner named.
    pub fn policy_would_pass_its_lifetime(&self, policy: &Policy) -> bool {
        let Ok(p) = self.compile(policy) else { return false };
        let now = self.clock.now();
        p.check_lifetime(now).is_ok() || p.check_lifetime(now.saturating_add(PRECHECK_LEAD)).is_ok()
    }

    /// Whether update `u` may lift its session's suspension (if any) as the session stands:
    /// a cluster leader attaches a session key to an update only then — one its application
    /// will refuse for having been signed before the suspension must not carry the key to
    /// the release signers' nodes it names first (a review of 2026-12-06). A session busy at
    /// this moment is taken as passing (a leader's check never waits for its lock); so is an
    /// unknown one (the update's application refuses it).
    pub fn update_may_lift_now(&self, u: &UpdatePolicy) -> bool {
        let Ok(session) = self.session(&u.session) else { return true };
        let Some(inner) = session.try_lock() else { return true };
        signed_after::update_may_lift(&inner.machine, u.auth.nonce).is_ok()
    }

    /// Spend an authenticated call's nonce, whatever `outcome` is.
    pub(super) fn spend<T>(
        &self,
        book: MutexGuard<'_, OwnerBook>,
        auth: &OwnerAuth,
        outcome: Result<T, Denial>,
    ) -> Result<T, Denial> {
        self.accept_nonce(book, auth);
        outcome
    }

    pub(super) fn create_session(&self, c: CreateSession) -> Result<SessionCreated, Denial> {
        let key = Key::generate();
        self.create_session_with(c, key.address(), Some(key), Vec::new())
    }

    /// Create a session whose key (generated by whoever proposed it) has `address`; `key` is
    /// `None` on a cluster node that may not hold it (neither its image is in `custody` nor
    /// its release signer named by the policy); `custody` lists the images that may (cluster
    /// only).
    pub fn create_session_with(
        &self,
        c: CreateSession,
        address: Address,
        key: Option<Key>,
        custody: Vec<B256>,
    ) -> Result<SessionCreated, Denial> {
        if let Some(k) = &key {
            k.check_is_of(&address).map_err(|why| denial(ErrorCode::Internal, why))?;
        }
        let (agent_pk, agent, policy, book) = self.authorize_create(&c, 0)?;
        // Creations are serialized by the owner-nonce lock held in `book`, so the checks
        // below and the insert cannot race with another creation. The session's time is read
        // under that lock, no earlier than the nonce's bound was.
        let now = self.clock.now();
        let auth = c.auth.clone();
        let created = self.create_authorized(c, address, key, custody, now, agent_pk, agent, policy);
        self.spend(book, &auth, created)
    }

    /// `create_session_with` once the owner's signature and nonce check out.
    #[allow(clippy::too_many_arguments)]
    fn create_authorized(
        &self,
        c: CreateSession,
        address: Address,
        key: Option<Key>,
        custody: Vec<B256>,
        now: u64,
        agent_pk: PublicKey,
        agent: Address,
        policy: CompiledPolicy,
    ) -> Result<SessionCreated, Denial> {
        policy.check_lifetime(now)?;
        self.make_room(now, policy_bytes(policy.canonical_len).saturating_add(HEADROOM))?;
        self.budget_for(&policy)?;
        // After making room: finished sessions dropped free their ceiling policies' places.
        self.exposure.lock().unwrap_or_else(|e| e.into_inner()).admit(address, c.auth.owner, agent, &policy)?;

        let stamp_key = StampKey::derive(self.identity.secret(), &agent_pk, address, agent);
        let valid_until = policy.doc.valid_until.unwrap_or(0);
        let policy_hash = policy.hash;
        let machine = Machine::new(
            address,
            c.auth.owner,
            agent,
            policy,
            now,
            self.config.stamp_window,
            self.config.replay_capacity,
        );
        let binding = SessionBinding {
            enclave: self.identity.address(),
            session: address,
            owner: c.auth.owner,
            agent,
            policy_hash,
            created_at: now,
            valid_until,
        };
        let session = Arc::new(Session::new(key, stamp_key, machine, custody));
        {
            let mut inner = session.lock();
            // Its declared ceilings (if any) bind the owner's sessions from now on: its
            // creation is logged under the book's lock, before any decision they bind (the
            // book's order is the log's: `exposure::Gate::prepare`).
            let mut gate = self.gate(&session);
            let publication = gate.prepare(&inner);
            self.append(now, rec::session_created(address, c.auth.owner, agent, policy_hash, valid_until));
            if let Some(p) = publication {
                gate.commit(&mut inner, p);
            }
            drop(gate);
            let bytes = charge(&inner);
            self.budget.recharge(0, bytes);
            inner.charged = bytes;
        }
        self.sessions.write().unwrap_or_else(|e| e.into_inner()).insert(address, session);
        // The reply's extras last, once the state is what every replica makes of the entry:
        // only the node that answers signs and attests, and a failure there (the NSM's) must
        // neither leave that node without the session the others hold nor hide a session
        // that exists (a review of 2026-12-03). The reply then carries the binding unsigned
        // or unattested: owner tools refuse it, the host stores the session, and the owner
        // can revoke it by its address.
        let (binding_signature, attestation) = self.bind_or_log(&binding);
        let reply = SessionCreated { binding, binding_signature, attestation, receipt: None };
        Ok(self.receipted_after_change(reply, Some(&c.auth)))
    }

    /// Sign a binding with the identity key and attest it when the NSM is there, for a
    /// change already made: a failure of either is logged and the reply carries what could
    /// be made (an empty signature, no attestation) — the state must not depend on it, and
    /// nothing is signed twice.
    fn bind_or_log(&self, binding: &SessionBinding) -> (Bytes, Option<Bytes>) {
        if !crate::apply::answers() {
            // A cluster replica that does not answer this call: no reply, no signature.
            return (Bytes::new(), None);
        }
        let bd = binding.digest();
        let session = binding.session;
        let sig = match self.identity.sign_digest(&bd) {
            Ok(sig) => Bytes::copy_from_slice(&sig.as_bytes()),
            Err(e) => {
                eprintln!(
                    "bridle-enclave: the binding of session {session} (its change is made): signature failed: {e}"
                );
                return (Bytes::new(), None);
            }
        };
        let attestation = self.attestor.as_ref().and_then(|a| {
            a.attest(Some(bd.to_vec()), None, Some(self.identity.public_key_sec1()))
                .map_err(|e| {
                    eprintln!(
                        "bridle-enclave: the binding of session {session} (its change is made): attestation failed: {e}"
                    )
                })
                .ok()
                .map(Bytes::from)
        });
        (sig, attestation)
    }

    pub(super) fn update_policy(&self, u: UpdatePolicy) -> Result<PolicyUpdated, Denial> {
        let (session, policy, book) = self.authorize_update(&u, 0)?;
        // Owner actions are serialized by the nonce book's lock (`book`), so nothing else
        // declares for this owner between the ceiling check and the update's publication.
        let updated = self.update_authorized(&u, &session, policy);
        let (hash, valid_until, time) = self.spend(book, &u.auth, updated)?;
        let binding = SessionBinding {
            enclave: self.identity.address(),
            session: u.session,
            owner: session.owner,
            agent: session.agent,
            policy_hash: hash,
            created_at: time,
            valid_until,
        };
        // After the update is applied: a failure to attest must not turn it into an error.
        let (sig, _) = self.bind_or_log(&binding);
        let reply = PolicyUpdated {
            session: u.session,
            policy_hash: hash,
            binding: Some(binding),
            binding_signature: Some(sig),
            receipt: None,
        };
        Ok(self.receipted_after_change(reply, Some(&u.auth)))
    }

    /// `update_policy` once the owner's signature and nonce check out: the policy's hash,
    /// its end and the session time of the update.
    fn update_authorized(
        &self,
        u: &UpdatePolicy,
        session: &Arc<Session>,
        policy: CompiledPolicy,
    ) -> Result<(B256, u64, u64), Denial> {
        policy.check_lifetime(self.clock.now())?;
        self.budget_for(&policy)?;
        self.exposure.lock().unwrap_or_else(|e| e.into_inner()).admit(
            u.session,
            session.owner,
            session.agent,
            &policy,
        )?;
        let valid_until = policy.doc.valid_until.unwrap_or(0);
        let mut inner = self.decide_on(session)?;
        signed_after::update_may_lift(&inner.machine, u.auth.nonce)?;
        let out = inner.machine.update_policy(self.clock.now(), policy);
        self.settle(session, &mut inner, &out);
        drop(inner);
        Ok((out.result?, valid_until, out.time))
    }

    pub(super) fn revoke(&self, r: &Revoke) -> Result<Revoked, Denial> {
        let (session, book) = self.authorize_on_session(&r.auth, action::REVOKE, r.session, B256::ZERO, 0)?;
        let revoked = self.decide_on(&session).and_then(|mut inner| {
            let out = inner.machine.revoke(self.clock.now(), false);
            self.settle(&session, &mut inner, &out);
            out.result
        });
        self.spend(book, &r.auth, revoked)?;
        let reply = Revoked { sessions: vec![r.session], receipt: None };
        Ok(self.receipted_after_change(reply, Some(&r.auth)))
    }

    pub(super) fn revoke_all(&self, r: &RevokeAll) -> Result<Revoked, Denial> {
        let book = self.authorize_revoke_all(r, 0)?;
        let mut mine: Vec<Arc<Session>> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.owner == r.auth.owner)
            .cloned()
            .collect();
        // In address order: each revocation appends to the audit chain, and every replica of
        // a cluster must append in the same order (the map's order is each process's own —
        // found 2026-12-03 by a review).
        mine.sort_unstable_by_key(|s| s.address);
        let mut sessions = Vec::new();
        for s in mine {
            // One dropped to make room since it was listed is gone, not revoked.
            let Ok(mut inner) = self.decide_on(&s) else { continue };
            let out = inner.machine.revoke(self.clock.now(), true);
            self.settle(&s, &mut inner, &out);
            if out.result == Ok(true) {
                sessions.push(s.address);
            }
        }
        sessions.sort();
        self.accept_nonce(book, &r.auth);
        let reply = Revoked { sessions, receipt: None };
        Ok(self.receipted_after_change(reply, Some(&r.auth)))
    }

    /// The owner approves exactly one pending request's digest (R-POL-10).
    pub(super) fn approve_pending(&self, a: &ApprovePending) -> Result<Signed, Denial> {
        let (session, book) = self.authorize_on_session(&a.auth, action::APPROVE_PENDING, a.session, a.digest, 0)?;
        // The owner's decision is spent even when the enclave refuses it (a cap used up, say):
        // a refused approval must not be replayable later — after the owner denied the
        // request, or changed their mind.
        // Signing a held request grows the session's state as any signature does (its
        // approvals, the revocations they prepay, the exposure book): within the budget
        // like one (a review of 2026-12-05), and a refusal for the budget spends the
        // owner's nonce like any other (the host could otherwise replay it once there is room).
        let room = "no held request, even on its owner's approval (which grows the session's state)";
        let decided =
            self.room_to_grow(HEADROOM, room).and_then(|()| self.decide_on(&session)).and_then(|mut guard| {
                signed_after::word_on_hold(&guard.machine, &a.digest, a.auth.nonce, "approval")?;
                let inner = &mut *guard;
                let mut gate = self.gate(&session);
                let (machine, signer) = inner.with_signer(true);
                let out = machine.approve_within(self.clock.now(), a.digest, signer, &mut gate);
                self.settle_with(inner, &out, &mut gate);
                Ok(out)
            });
        let out = self.spend(book, &a.auth, decided)?;
        let signed = out.result?;
        if !out.records.is_empty() {
            self.signatures.fetch_add(1, Ordering::Relaxed);
        }
        Ok(signed)
    }

    /// The owner denies exactly one pending request's digest: see [`Machine::deny`]. The
    /// reply carries a receipt for the owner's nonce.
    pub(super) fn deny_pending(&self, d: &DenyPending) -> Result<PendingDenied, Denial> {
        let (session, book) = self.authorize_on_session(&d.auth, action::DENY_PENDING, d.session, d.digest, 0)?;
        // Spent even when refused, as an approval is.
        let denied = self.decide_on(&session).and_then(|mut inner| {
            signed_after::word_on_hold(&inner.machine, &d.digest, d.auth.nonce, "denial")?;
            let out = inner.machine.deny(self.clock.now(), d.digest);
            self.settle(&session, &mut inner, &out);
            out.result
        });
        let until = self.spend(book, &d.auth, denied)?;
        let reply = PendingDenied { session: d.session, digest: d.digest, until, receipt: None };
        Ok(self.receipted_after_change(reply, Some(&d.auth)))
    }

    /// The revocation sweep (R-APP-6): see [`Machine::sweep`]. Anyone may ask (a sweep only
    /// revokes, within the policy's gas caps); the owner's signature over the terms widens
    /// it.
    pub(super) fn sweep(&self, w: &Sweep) -> Result<SweepReply, Denial> {
        let session = self.session(&w.session)?;
        sweep_terms_ok(&w.terms)?;
        // A sweep grows the session's registry (each re-sign a write): within the memory
        // budget like every call that grows the state (found 2026-12-05 by a review:
        // anonymous re-signs at a fee of zero grew sessions past it unchecked). An owner's
        // sweep needs only its own growth, so the owner's way out stays open when sessions
        // anyone can make have spent the budget (a review of that fix); its signature is
        // checked below, and a sweep that fails it changes nothing. Past that reserve (which
        // anyone's own owner-signed sweeps can use up: a review of 2026-12-05), an owner's
        // sweep goes through on the revocations its session prepaid when its approvals were
        // signed (`Machine::sweep_on_credit`), which grow nothing the budget did not charge.
        let on_credit = match w.auth {
            Some(_) => self.room_to_grow(OWNER_SWEEP_ROOM, "").is_err(),
            None => {
                self.room_to_grow(
                    HEADROOM,
                    "no unsigned sweep (which grows the session's state); the owner's signed sweep still has room",
                )?;
                false
            }
        };
        // The owner's nonce book and signature, when the owner signed the terms.
        let owner = match &w.auth {
            Some(auth) => {
                if session.owner != auth.owner {
                    return Err(denial(
                        ErrorCode::Unauthenticated,
                        format!("{} does not own session {}", auth.owner, w.session),
                    ));
                }
                Some((
                    self.authorize(auth, action::SWEEP, w.session, session.agent, B256::ZERO, w.terms_digest(), 0)?,
                    auth,
                ))
            }
            None => None,
        };
        let by_owner = owner.is_some();
        let swept = self.decide_on(&session).and_then(|mut guard| {
            let inner = &mut *guard;
            let (machine, signer) = inner.with_signer(false);
            let now = self.clock.now();
            let out = if on_credit {
                machine.sweep_on_credit(now, &w.terms, &w.accounts, signer)
            } else {
                machine.sweep_with_accounts(now, &w.terms, &w.accounts, by_owner, signer)
            };
            self.settle(&session, inner, &out);
            out.result
        });
        let reply = match owner {
            Some((book, auth)) => self.spend(book, auth, swept)?,
            None => swept?,
        };
        Ok(self.receipted_after_change(reply, w.auth.as_ref()))
    }
}
