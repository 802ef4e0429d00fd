//! The enclave service: every call of SPEC §2, each one typed, each error a stable code.

use crate::audit::{rec, AuditConfig, AuditLog, Subject};
use crate::clock::Clock;
use crate::keys::Key;
use crate::replay::{ReplayCache, ReplayError};
use crate::session::{Pending, Session, SessionInner, MAX_PENDING};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use bridle_common::allowance::{revocation_call, AllowanceState};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::payload::{prepare, Prepared};
use bridle_common::period::{format_time, Period};
use bridle_common::policy::compile::AssetRef;
use bridle_common::policy::{escalation, Charges, CompiledPolicy, Context, Policy};
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::units::format_decimal;
use bridle_common::units::format_duration;
use k256::PublicKey;
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
}

impl Default for Config {
    fn default() -> Self {
        Config { stamp_window: 60, replay_capacity: 1 << 16, audit: AuditConfig::default(), max_sessions: 100_000 }
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
    owners: Mutex<HashMap<Address, u64>>,
    signatures: AtomicU64,
    denials: AtomicU64,
    audit: AuditLog,
}

fn denial(code: ErrorCode, reason: impl Into<String>) -> Denial {
    Denial::new(code, reason)
}

/// Largest gas limit of one revocation in a sweep (an ERC-20 `approve` costs far less).
pub const SWEEP_MAX_GAS: u64 = 200_000;
/// Most chains one sweep may name.
const MAX_SWEEP_CHAINS: usize = 64;

/// A decision, as [`Enclave::record`] sees it (the audit log's hook, R-AUD-1).
enum Decision<'a> {
    /// Signed and charged.
    Allowed {
        session: Address,
        digest: B256,
    },
    /// Refused by a policy rule (or a full pending queue).
    Denied {
        session: Address,
        digest: B256,
        denial: &'a Denial,
    },
    /// Held for the owner's approval until `expires_at`.
    Pending {
        session: Address,
        digest: B256,
        expires_at: u64,
    },
    /// The owner approved a pending request; it was signed and charged.
    Approved {
        session: Address,
        digest: B256,
    },
    /// The agent collected an approved request's signature.
    Collected {
        session: Address,
        digest: B256,
    },
    /// The trip-wire suspended the session.
    Suspended {
        session: Address,
        reason: &'a str,
    },
    Revoked {
        session: Address,
        owner: Address,
        all: bool,
    },
    PolicyChanged {
        session: Address,
        owner: Address,
        policy_hash: B256,
    },
    /// A revocation sweep signed these revocations.
    Swept {
        session: Address,
        transactions: &'a [SweepTx],
    },
    SessionCreated {
        session: Address,
        owner: Address,
        agent: Address,
        policy_hash: B256,
        valid_until: u64,
    },
    /// A pending request was not approved in time.
    ExpiredPending {
        session: Address,
        digest: B256,
        expired_at: u64,
    },
}

/// Sign what `prepared` says and charge `charges`, under the session lock: check-and-charge
/// is one step (R-POL-11). The caller has evaluated the policy with this same lock held.
fn sign_and_charge(
    session: &Session,
    inner: &mut SessionInner,
    policy: &CompiledPolicy,
    prepared: &Prepared,
    charges: &Charges,
    now: u64,
) -> Result<Signed, Denial> {
    let key = inner.key.as_ref().ok_or_else(|| denial(ErrorCode::Revoked, "session key destroyed"))?;
    let sig = key
        .sign_digest(&prepared.signing_digest())
        .map_err(|e| denial(ErrorCode::Internal, format!("signing failed: {e}")))?;
    inner.counters.charge(policy, charges, session.anchor, now);
    let raw_transaction = match prepared {
        Prepared::Transaction { built, .. } => Some((**built).clone().encode_signed(sig)),
        _ => None,
    };
    Ok(Signed {
        session: session.address,
        digest: prepared.stamp_digest(),
        signature: Bytes::copy_from_slice(&sig.as_bytes()),
        raw_transaction,
    })
}

fn payload_kind(p: &Prepared) -> &'static str {
    match p {
        Prepared::Transaction { .. } => "transaction",
        Prepared::TypedData { .. } => "typed_data",
        Prepared::Message { .. } => "message",
        Prepared::UserOperation { .. } => "user_operation",
    }
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
            config,
            booted_at,
            sessions: RwLock::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            signatures: AtomicU64::new(0),
            denials: AtomicU64::new(0),
            audit,
        }
    }

    /// The audit log (R-AUD-1).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn identity_address(&self) -> Address {
        self.identity.address()
    }

    pub fn identity_public_key(&self) -> Vec<u8> {
        self.identity.public_key_sec1()
    }

    /// Serve one call.
    pub fn handle(&self, call: Call) -> Result<Reply, Denial> {
        let subject = Subject::of(&call);
        let r = match call {
            Call::SignIfAllowed(req) => self.sign_if_allowed(&req).map(Reply::Signed),
            Call::CreateSession(c) => self.create_session(c).map(Reply::SessionCreated),
            Call::UpdatePolicy(u) => self.update_policy(u).map(Reply::PolicyUpdated),
            Call::Revoke(r) => self.revoke(&r).map(Reply::Revoked),
            Call::RevokeAll(r) => self.revoke_all(&r).map(Reply::Revoked),
            Call::ApprovePending(a) => self.approve_pending(&a).map(Reply::Signed),
            Call::Attest(a) => self.attest(a).map(Reply::Attestation),
            Call::Audit(q) => self.audit.reply(q.since, &self.identity, self.clock.now()).map(Reply::Audit),
            Call::Status(q) => Ok(Reply::Status(self.status(q.session))),
            Call::Sweep(w) => self.sweep(&w).map(Reply::Swept),
        };
        if let Err(d) = &r {
            // A refused owner call (within bounds; a no-op for other calls).
            self.audit.record_owner_refusal(self.clock.now(), subject, d);
            if d.code == ErrorCode::PendingApproval {
                // Held, not refused.
            } else if d.code.is_denial() || matches!(d.code, ErrorCode::Unauthenticated | ErrorCode::Replayed) {
                self.denials.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn session(&self, addr: &Address) -> Result<Arc<Session>, Denial> {
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        map.get(addr).cloned().ok_or_else(|| {
            denial(
                ErrorCode::UnknownSession,
                format!("no session {addr} in this enclave (sessions do not survive an enclave restart)"),
            )
        })
    }

    // ---- the signing path ------------------------------------------------------------

    /// decode → authenticate → (lock) state, replay, pending?, evaluate, escalate?, charge,
    /// sign (unlock).
    pub fn sign_if_allowed(&self, req: &SignRequest) -> Result<Signed, Denial> {
        let mut fresh = false;
        let r = self.sign_checked(req, &mut fresh);
        if let (Err(d), false) = (&r, fresh) {
            // Refused before it was known to be the agent's own fresh request: anyone on the
            // path can cause these, so they are logged within bounds (R-AUD-1).
            self.audit.record_sign_refusal(self.clock.now(), req, d);
        }
        r
    }

    /// `fresh` is set once the request is the agent's own fresh request (stamp verified,
    /// nonce new): from there on every outcome is a decision, logged through `record`.
    fn sign_checked(&self, req: &SignRequest, fresh: &mut bool) -> Result<Signed, Denial> {
        let session = self.session(&req.session)?;
        let now = self.clock.now();

        // Decode: build exactly what will be signed, and its digest (R-TRUST-1). Type-4
        // transactions are refused here, before anything else (R-SIGN-1).
        let prepared = prepare(&req.payload)?;
        let digest = prepared.stamp_digest();

        // Authenticate: only the session's agent can make this MAC (R-TRUST-3).
        if !session.stamp_key.verify(session.address, req.payload.kind(), &digest, &req.stamp) {
            return Err(denial(ErrorCode::Unauthenticated, "agent stamp does not verify for this session and request"));
        }

        let mut inner = session.lock();
        if inner.revoked {
            return Err(denial(ErrorCode::Revoked, "the owner revoked this session"));
        }
        if let Some(why) = &inner.suspended {
            return Err(denial(ErrorCode::Suspended, format!("session suspended: {why}")));
        }
        match inner.replay.check_and_insert(req.stamp.nonce, req.stamp.timestamp, now) {
            Ok(()) => {}
            Err(ReplayError::Seen) => return Err(denial(ErrorCode::Replayed, "stamp nonce already used")),
            Err(ReplayError::OutsideWindow { timestamp, now, window }) => {
                return Err(denial(
                    ErrorCode::Replayed,
                    format!("stamp time {timestamp} is more than {window} s from enclave time {now}"),
                ))
            }
            Err(ReplayError::Full { capacity }) => {
                return Err(denial(
                    ErrorCode::RateLimited,
                    format!("more than {capacity} live stamps for this session"),
                ))
            }
        }
        *fresh = true;

        // A request already held for the owner's approval (R-POL-10): still waiting, or
        // approved and signed — the agent collects that signature by asking again.
        if let Some(p) = inner.pending.get(&digest) {
            if now < p.expires_at {
                return match &p.signed {
                    Some(signed) => {
                        self.record(Decision::Collected { session: session.address, digest });
                        Ok(signed.clone())
                    }
                    None => Err(Denial::rule(
                        ErrorCode::PendingApproval,
                        p.rule.clone(),
                        format!(
                            "{}: still waiting for the owner's approval of request {digest:#x} (until {})",
                            p.reason,
                            format_time(p.expires_at)
                        ),
                    )),
                };
            }
            // Expired: forgotten; the request is decided afresh below.
            let expired_at = p.expires_at;
            self.record(Decision::ExpiredPending { session: session.address, digest, expired_at });
            inner.pending.remove(&digest);
        }

        let ctx = Context { now, anchor: session.anchor, owner: session.owner, account: session.address };
        let policy = Arc::clone(&inner.policy);
        let charges = match prepared.evaluate(&policy, &inner.counters, &ctx) {
            Ok(c) => c,
            Err(d) => {
                // DECISION: denied (a policy rule failed); the trip-wire counts it.
                self.record(Decision::Denied { session: session.address, digest, denial: &d });
                self.trip_wire(&session, &mut inner, now, &d);
                return Err(d);
            }
        };
        if let Some(d) = escalation(&policy, &charges) {
            // DECISION: pending (held for the owner's approval of this digest).
            return Err(self.hold(&session, &mut inner, prepared, digest, d, now));
        }
        // DECISION: allowed — signed and charged in one step under the session lock.
        let signed = sign_and_charge(&session, &mut inner, &policy, &prepared, &charges, now)?;
        drop(inner);
        self.record(Decision::Allowed { session: session.address, digest });
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(signed)
    }

    /// The trip-wire (R-APP-7): `denials` policy denials within `within` seconds suspend
    /// the session, recording why. Only the owner lifts it (a signed policy update) or
    /// ends it (revoke).
    fn trip_wire(&self, session: &Session, inner: &mut SessionInner, now: u64, d: &Denial) {
        let Some(t) = inner.policy.doc.trip_wire.clone() else { return };
        if !d.code.is_denial() || matches!(d.code, ErrorCode::PendingApproval) {
            return;
        }
        inner.denials.push_back(now);
        while inner.denials.front().is_some_and(|&x| x.saturating_add(t.within) <= now) {
            inner.denials.pop_front();
        }
        if inner.denials.len() >= t.denials as usize {
            let why = format!(
                "trip-wire: {} denials within {} (trip_wire rule; last at {}: {d})",
                inner.denials.len(),
                format_duration(t.within),
                format_time(now)
            );
            inner.denials.clear();
            inner.pending.clear();
            // DECISION: suspended by the trip-wire.
            self.record(Decision::Suspended { session: session.address, reason: &why });
            inner.suspended = Some(why);
        }
    }

    /// Hold an allowed request over an escalation threshold as pending (R-POL-10).
    fn hold(
        &self,
        session: &Session,
        inner: &mut SessionInner,
        prepared: Prepared,
        digest: B256,
        d: Denial,
        now: u64,
    ) -> Denial {
        let ttl = inner.policy.doc.escalate.as_ref().map(|e| e.ttl).unwrap_or(0);
        if inner.pending.len() >= MAX_PENDING {
            inner.prune_pending(now);
        }
        if inner.pending.len() >= MAX_PENDING {
            let d = Denial::rule(
                ErrorCode::RateLimited,
                "escalate",
                format!("{MAX_PENDING} requests already wait for the owner's approval"),
            );
            self.record(Decision::Denied { session: session.address, digest, denial: &d });
            return d;
        }
        let expires_at = now.saturating_add(ttl);
        let rule = d.rule.clone().unwrap_or_else(|| "escalate".into());
        inner.pending.insert(
            digest,
            Pending {
                prepared,
                created_at: now,
                expires_at,
                rule: rule.clone(),
                reason: d.reason.clone(),
                signed: None,
            },
        );
        self.record(Decision::Pending { session: session.address, digest, expires_at });
        Denial::rule(
            ErrorCode::PendingApproval,
            rule,
            format!(
                "{}: held for the owner's approval of request {digest:#x} until {}; ask again with the same request to collect the signature once approved",
                d.reason,
                format_time(expires_at)
            ),
        )
    }

    /// Where every decision passes, for the audit log (R-AUD-1): allowed, denied, pending,
    /// approved, collected, suspended, revoked, policy changes and sweeps.
    fn record(&self, d: Decision<'_>) {
        let now = self.clock.now();
        let r = match d {
            Decision::Allowed { session, digest } => {
                tracing::debug!(%session, %digest, "allowed");
                rec::allowed(session, digest, "")
            }
            Decision::Denied { session, digest, denial } => {
                tracing::debug!(%session, %digest, code = %denial.code, "denied");
                rec::denied(session, digest, denial)
            }
            Decision::Pending { session, digest, expires_at } => {
                tracing::info!(%session, %digest, expires_at, "held for the owner's approval");
                rec::pending(session, digest, "escalate", expires_at)
            }
            Decision::Approved { session, digest } => {
                tracing::info!(%session, %digest, "approved by the owner");
                rec::approved(session, digest)
            }
            Decision::Collected { session, digest } => {
                // Signed (and logged) at the approval: no new decision.
                tracing::debug!(%session, %digest, "approved signature collected");
                return;
            }
            Decision::Suspended { session, reason } => {
                tracing::warn!(%session, reason, "session suspended");
                rec::suspended(session, reason)
            }
            Decision::Revoked { session, owner, all } => {
                tracing::info!(%session, "revoked");
                rec::revoked(session, owner, all)
            }
            Decision::PolicyChanged { session, owner, policy_hash } => {
                tracing::info!(%session, %policy_hash, "policy changed");
                rec::policy_updated(session, owner, policy_hash)
            }
            Decision::Swept { session, transactions } => {
                tracing::info!(%session, transactions = transactions.len(), "revocations signed");
                for t in transactions {
                    self.audit.append(now, rec::sweep(session, t.hash, t.chain_id, t.nonce, t.token, t.spender));
                }
                return;
            }
            Decision::SessionCreated { session, owner, agent, policy_hash, valid_until } => {
                tracing::info!(%session, %owner, %agent, %policy_hash, "session created");
                rec::session_created(session, owner, agent, policy_hash, valid_until)
            }
            Decision::ExpiredPending { session, digest, expired_at } => {
                tracing::info!(%session, %digest, expired_at, "pending request expired");
                rec::expired_pending(session, digest, expired_at)
            }
        };
        self.audit.append(now, r);
    }

    // ---- owner calls -----------------------------------------------------------------

    /// Check an owner's signature over the action rebuilt from the call's own fields, and
    /// that the nonce is fresh. Returns the nonce map guard so the caller applies its
    /// change and records the nonce in one step; a refused call changes nothing.
    fn authorize<'a>(
        &'a self,
        auth: &OwnerAuth,
        act: &str,
        session: Address,
        agent: Address,
        policy_hash: B256,
        subject: B256,
    ) -> Result<std::sync::MutexGuard<'a, HashMap<Address, u64>>, Denial> {
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
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&last) = owners.get(&auth.owner) {
            if auth.nonce <= last {
                return Err(denial(
                    ErrorCode::Replayed,
                    format!("owner nonce {} is not above the last accepted {last}", auth.nonce),
                ));
            }
        }
        Ok(owners)
    }

    fn compile(&self, policy: &Policy, now: u64) -> Result<CompiledPolicy, Denial> {
        let p = CompiledPolicy::compile(policy.clone())?;
        p.check_lifetime(now)?;
        Ok(p)
    }

    fn create_session(&self, c: CreateSession) -> Result<SessionCreated, Denial> {
        let now = self.clock.now();
        let agent_pk = PublicKey::from_sec1_bytes(&c.agent_public_key)
            .map_err(|_| Denial::malformed("agent_public_key is not a SEC1 secp256k1 public key"))?;
        let agent = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent_pk));
        let policy = self.compile(&c.policy, now)?;
        // R-TRUST-5: a session key can never own (grant, widen or revoke) sessions.
        if self.sessions.read().unwrap_or_else(|e| e.into_inner()).contains_key(&c.auth.owner) {
            return Err(denial(
                ErrorCode::Unauthenticated,
                "a session address cannot own sessions (agents are never admin)",
            ));
        }
        let mut owners =
            self.authorize(&c.auth, action::CREATE_SESSION, Address::ZERO, agent, policy.hash, B256::ZERO)?;
        // Creations are serialized by the owner-nonce lock held in `owners`, so this check
        // and the insert below cannot race with another creation.
        self.make_room(now)?;

        let key = Key::generate();
        let address = key.address();
        let stamp_key = StampKey::derive(self.identity.secret(), &agent_pk, address, agent);
        let valid_until = policy.doc.valid_until.unwrap_or(0);
        let policy_hash = policy.hash;
        let replay = ReplayCache::new(self.config.stamp_window, self.config.replay_capacity);
        let session = Arc::new(Session::new(key, c.auth.owner, agent, stamp_key, policy, now, replay));
        let binding = SessionBinding {
            enclave: self.identity.address(),
            session: address,
            owner: c.auth.owner,
            agent,
            policy_hash,
            created_at: now,
            valid_until,
        };
        let bd = binding.digest();
        let binding_signature = self
            .identity
            .sign_digest(&bd)
            .map_err(|e| denial(ErrorCode::Internal, format!("binding signature failed: {e}")))?;
        let attestation = match &self.attestor {
            Some(a) => Some(
                a.attest(Some(bd.to_vec()), None, Some(self.identity.public_key_sec1()))
                    .map_err(|e| denial(ErrorCode::Internal, format!("attestation failed: {e}")))?,
            ),
            None => None,
        };

        self.sessions.write().unwrap_or_else(|e| e.into_inner()).insert(address, session);
        owners.insert(c.auth.owner, c.auth.nonce);
        // DECISION: session created.
        self.record(Decision::SessionCreated {
            session: address,
            owner: c.auth.owner,
            agent,
            policy_hash,
            valid_until,
        });
        Ok(SessionCreated {
            binding,
            binding_signature: Bytes::copy_from_slice(&binding_signature.as_bytes()),
            attestation: attestation.map(Bytes::from),
        })
    }

    /// Keep the session count under `max_sessions`: when full, drop finished sessions; if
    /// still full, refuse. Dropped sessions answer `unknown_session`; their history stays
    /// in the audit log and in the host's store.
    fn make_room(&self, now: u64) -> Result<(), Denial> {
        let mut map = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if map.len() < self.config.max_sessions {
            return Ok(());
        }
        let before = map.len();
        map.retain(|_, s| {
            let inner = s.lock();
            let finished = match inner.state(now) {
                SessionState::Revoked => inner.key.is_none(),
                SessionState::Expired => !inner.has_sweepable(s.address, now),
                _ => false,
            };
            !finished
        });
        tracing::info!(dropped = before - map.len(), held = map.len(), "finished sessions dropped");
        if map.len() >= self.config.max_sessions {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                "enclave.max_sessions",
                format!("the enclave holds {} live sessions, its limit; revoke finished ones", map.len()),
            ));
        }
        Ok(())
    }

    fn update_policy(&self, u: UpdatePolicy) -> Result<PolicyUpdated, Denial> {
        let now = self.clock.now();
        let session = self.session(&u.session)?;
        if session.owner != u.auth.owner {
            return Err(denial(
                ErrorCode::Unauthenticated,
                format!("{} does not own session {}", u.auth.owner, u.session),
            ));
        }
        let policy = self.compile(&u.policy, now)?;
        let mut owners =
            self.authorize(&u.auth, action::UPDATE_POLICY, u.session, session.agent, policy.hash, B256::ZERO)?;
        let mut inner = session.lock();
        if inner.revoked {
            return Err(denial(ErrorCode::Revoked, "a revoked session cannot be updated"));
        }
        let hash = policy.hash;
        inner.counters = inner.counters.carry_over(&inner.policy, &policy);
        inner.policy = Arc::new(policy);
        // The owner's signed update is what lifts a trip-wire suspension (R-APP-7).
        inner.suspended = None;
        inner.denials.clear();
        drop(inner);
        owners.insert(u.auth.owner, u.auth.nonce);
        // DECISION: policy change.
        self.record(Decision::PolicyChanged { session: u.session, owner: u.auth.owner, policy_hash: hash });
        Ok(PolicyUpdated { session: u.session, policy_hash: hash })
    }

    fn revoke(&self, r: &Revoke) -> Result<Revoked, Denial> {
        let session = self.session(&r.session)?;
        if session.owner != r.auth.owner {
            return Err(denial(
                ErrorCode::Unauthenticated,
                format!("{} does not own session {}", r.auth.owner, r.session),
            ));
        }
        let mut owners = self.authorize(&r.auth, action::REVOKE, r.session, session.agent, B256::ZERO, B256::ZERO)?;
        let now = self.clock.now();
        session.lock().revoke(session.address, now);
        owners.insert(r.auth.owner, r.auth.nonce);
        // DECISION: revoked.
        self.record(Decision::Revoked { session: r.session, owner: r.auth.owner, all: false });
        Ok(Revoked { sessions: vec![r.session] })
    }

    fn revoke_all(&self, r: &RevokeAll) -> Result<Revoked, Denial> {
        let mut owners =
            self.authorize(&r.auth, action::REVOKE_ALL, Address::ZERO, Address::ZERO, B256::ZERO, B256::ZERO)?;
        let mine: Vec<Arc<Session>> = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|s| s.owner == r.auth.owner)
            .cloned()
            .collect();
        let mut sessions = Vec::new();
        let now = self.clock.now();
        for s in mine {
            let mut inner = s.lock();
            if !inner.revoked {
                inner.revoke(s.address, now);
                sessions.push(s.address);
                // DECISION: revoked (revoke_all).
                self.record(Decision::Revoked { session: s.address, owner: r.auth.owner, all: true });
            }
        }
        sessions.sort();
        owners.insert(r.auth.owner, r.auth.nonce);
        Ok(Revoked { sessions })
    }

    /// The owner approves exactly one pending request's digest (R-POL-10): it is checked
    /// against every rule again, signed and charged now, and the signature is returned —
    /// and kept for the agent to collect by asking again, until the same time-to-live
    /// passes. A request whose time ran out can no longer be approved.
    fn approve_pending(&self, a: &ApprovePending) -> Result<Signed, Denial> {
        let session = self.session(&a.session)?;
        if session.owner != a.auth.owner {
            return Err(denial(
                ErrorCode::Unauthenticated,
                format!("{} does not own session {}", a.auth.owner, a.session),
            ));
        }
        let now = self.clock.now();
        let mut owners =
            self.authorize(&a.auth, action::APPROVE_PENDING, a.session, session.agent, B256::ZERO, a.digest)?;
        let mut inner = session.lock();
        if inner.revoked {
            return Err(denial(ErrorCode::Revoked, "the owner revoked this session"));
        }
        if let Some(why) = &inner.suspended {
            return Err(denial(ErrorCode::Suspended, format!("session suspended: {why}")));
        }
        let Some(p) = inner.pending.get(&a.digest) else {
            return Err(Denial::malformed(format!(
                "no request {:#x} is pending in session {} (never held, or expired and asked again)",
                a.digest, a.session
            )));
        };
        if let Some(signed) = &p.signed {
            let signed = signed.clone();
            owners.insert(a.auth.owner, a.auth.nonce);
            return Ok(signed);
        }
        if now >= p.expires_at {
            let expired = p.expires_at;
            inner.pending.remove(&a.digest);
            // DECISION: expired unapproved.
            self.record(Decision::ExpiredPending { session: a.session, digest: a.digest, expired_at: expired });
            return Err(Denial::rule(
                ErrorCode::Expired,
                "escalate.ttl",
                format!(
                    "request {:#x} waited for approval until {} and expired; it can no longer be approved (the agent must ask again)",
                    a.digest,
                    format_time(expired)
                ),
            ));
        }
        let window = p.expires_at.saturating_sub(p.created_at);
        let prepared = p.prepared.clone();
        // Re-check every rule now: caps, quota, time; charging happens at signing time.
        let ctx = Context { now, anchor: session.anchor, owner: session.owner, account: session.address };
        let policy = Arc::clone(&inner.policy);
        let charges = prepared.evaluate(&policy, &inner.counters, &ctx)?;
        // DECISION: approved by the owner — signed and charged now.
        let signed = sign_and_charge(&session, &mut inner, &policy, &prepared, &charges, now)?;
        if let Some(p) = inner.pending.get_mut(&a.digest) {
            p.signed = Some(signed.clone());
            p.expires_at = now.saturating_add(window);
        }
        drop(inner);
        owners.insert(a.auth.owner, a.auth.nonce);
        self.signatures.fetch_add(1, Ordering::Relaxed);
        self.record(Decision::Approved { session: a.session, digest: a.digest });
        Ok(signed)
    }

    /// The revocation sweep (R-APP-6): sign `approve(spender, 0)` (or Permit2
    /// `approve(token, spender, 0, 0)`) EIP-1559 transactions with the nonces and fees the
    /// caller supplies, for
    /// * expired approvals, on anyone's request (a sweep only revokes), fees within the
    ///   policy's gas caps;
    /// * every outstanding approval when the session is revoked, suspended or over;
    /// * with the owner's signature over the terms: every outstanding or already swept
    ///   approval, at the owner's fees; a revoked session's key is destroyed afterwards.
    ///
    /// Approvals held by a smart account (granted in user operations) cannot be revoked by
    /// a transaction from the session key; they are reported as skipped.
    fn sweep(&self, w: &Sweep) -> Result<SweepReply, Denial> {
        let session = self.session(&w.session)?;
        let now = self.clock.now();
        if w.terms.len() > MAX_SWEEP_CHAINS {
            return Err(denial(ErrorCode::TooLarge, format!("at most {MAX_SWEEP_CHAINS} chains per sweep")));
        }
        for (i, t) in w.terms.iter().enumerate() {
            if w.terms[..i].iter().any(|o| o.chain_id == t.chain_id) {
                return Err(Denial::malformed(format!("chain {} has two sets of terms", t.chain_id)));
            }
            if t.max_priority_fee_per_gas > t.max_fee_per_gas {
                return Err(Denial::malformed("max_priority_fee_per_gas is above max_fee_per_gas"));
            }
            if t.gas_limit < 21_000 || t.gas_limit > SWEEP_MAX_GAS {
                return Err(Denial::rule(
                    ErrorCode::GasCap,
                    "sweep",
                    format!("gas limit {} per revocation; it must be 21000 to {SWEEP_MAX_GAS}", t.gas_limit),
                ));
            }
        }
        let mut owners = match &w.auth {
            Some(auth) => {
                if session.owner != auth.owner {
                    return Err(denial(
                        ErrorCode::Unauthenticated,
                        format!("{} does not own session {}", auth.owner, w.session),
                    ));
                }
                Some(self.authorize(auth, action::SWEEP, w.session, session.agent, B256::ZERO, w.terms_digest())?)
            }
            None => None,
        };
        let authed = owners.is_some();
        let mut inner = session.lock();
        let policy = Arc::clone(&inner.policy);
        if !authed {
            // Fees the host chose: within the policy's gas caps, and only if it has one.
            let g = &policy.doc.gas;
            for t in &w.terms {
                let Some(cap) = g.max_fee_per_gas else {
                    return Err(Denial::rule(
                        ErrorCode::GasCap,
                        "gas.max_fee_per_gas",
                        "the policy caps no fee, so only the owner may set a sweep's fees (sign the sweep)",
                    ));
                };
                if t.max_fee_per_gas > cap {
                    return Err(Denial::rule(
                        ErrorCode::GasCap,
                        "gas.max_fee_per_gas",
                        format!("sweep fee {} wei per gas above the cap {cap}", t.max_fee_per_gas),
                    ));
                }
                if g.max_priority_fee_per_gas.is_some_and(|c| t.max_priority_fee_per_gas > c) {
                    return Err(Denial::rule(
                        ErrorCode::GasCap,
                        "gas.max_priority_fee_per_gas",
                        "sweep priority fee above the cap",
                    ));
                }
                if g.max_gas_limit.is_some_and(|c| t.gas_limit > c) {
                    return Err(Denial::rule(ErrorCode::GasCap, "gas.max_gas_limit", "sweep gas limit above the cap"));
                }
            }
        }
        let everything = authed || inner.state(now) != SessionState::Active;
        let mut chosen = Vec::new();
        let mut skipped = Vec::new();
        for e in &inner.counters.allowances.entries {
            let wanted = if e.lapsed(now) {
                false
            } else if authed {
                e.outstanding(now) || e.state == AllowanceState::Swept
            } else if everything {
                e.outstanding(now)
            } else {
                e.outstanding(now) && e.state_at(now) == AllowanceState::Expired
            };
            if !wanted {
                continue;
            }
            let skip = |reason: String| SweepSkip {
                chain_id: e.chain_id,
                token: e.token,
                spender: e.spender,
                holder: e.holder,
                reason,
            };
            if e.holder != session.address {
                skipped.push(skip(format!(
                    "held by the smart account {}: revoke it with a user operation from that account",
                    e.holder
                )));
            } else if !e.kind.sweepable() {
                skipped
                    .push(skip("a Permit2 signature transfer lapses at its deadline; approve cannot revoke it".into()));
            } else if !w.terms.iter().any(|t| t.chain_id == e.chain_id) {
                skipped.push(skip(format!("no nonce and fees were given for chain {}", e.chain_id)));
            } else {
                chosen.push(e.clone());
            }
        }
        let key = inner.key.as_ref().ok_or_else(|| {
            denial(
                ErrorCode::Revoked,
                "the session key is destroyed: this session can sign nothing, not even a revocation",
            )
        })?;
        let mut transactions = Vec::new();
        let mut gas_cost = U256::ZERO;
        for t in &w.terms {
            let mut nonce = t.nonce;
            for e in chosen.iter().filter(|e| e.chain_id == t.chain_id) {
                let Some((to, data)) = revocation_call(e) else { continue };
                let req = TxRequest::Eip1559(Eip1559Request {
                    chain_id: t.chain_id,
                    nonce,
                    max_fee_per_gas: t.max_fee_per_gas,
                    max_priority_fee_per_gas: t.max_priority_fee_per_gas,
                    gas_limit: t.gas_limit,
                    to: Some(to),
                    value: U256::ZERO,
                    data,
                    access_list: vec![],
                });
                let built = req.build().ok_or_else(|| denial(ErrorCode::Internal, "sweep transaction not built"))?;
                let sig = key
                    .sign_digest(&built.signing_hash())
                    .map_err(|e| denial(ErrorCode::Internal, format!("signing failed: {e}")))?;
                let raw = built.encode_signed(sig);
                gas_cost =
                    gas_cost.saturating_add(U256::from(t.gas_limit).saturating_mul(U256::from(t.max_fee_per_gas)));
                transactions.push(SweepTx {
                    chain_id: t.chain_id,
                    nonce,
                    token: e.token,
                    spender: e.spender,
                    kind: e.kind,
                    to,
                    hash: keccak256(&raw),
                    raw_transaction: raw,
                });
                nonce = nonce.saturating_add(1);
            }
        }
        for e in &chosen {
            inner.counters.allowances.mark_swept(e, now);
        }
        inner.counters.charge_gas(&policy, gas_cost, session.anchor, now);
        let key_destroyed = inner.revoked && authed && !inner.has_sweepable(session.address, now);
        if key_destroyed {
            inner.key = None;
        }
        drop(inner);
        if let (Some(o), Some(auth)) = (owners.as_mut(), &w.auth) {
            o.insert(auth.owner, auth.nonce);
        }
        // DECISION: revocations signed (the sweep).
        self.record(Decision::Swept { session: w.session, transactions: &transactions });
        Ok(SweepReply { session: w.session, transactions, skipped, key_destroyed })
    }

    // ---- public facts ----------------------------------------------------------------

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

    pub fn status(&self, session: Option<Address>) -> Status {
        let now = self.clock.now();
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let total = map.len() as u64;
        let active = map.values().filter(|s| s.lock().state(now) == SessionState::Active).count() as u64;
        let session = session.and_then(|a| map.get(&a).cloned());
        drop(map);
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            identity_public_key: Bytes::from(self.identity.public_key_sec1()),
            identity_address: self.identity.address(),
            booted_at: self.booted_at,
            now,
            sessions_active: active,
            sessions_total: total,
            signatures: self.signatures.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            session: session.map(|s| session_status(&s, now)),
        }
    }
}

fn session_status(s: &Session, now: u64) -> SessionStatus {
    let inner = s.lock();
    let p = &inner.policy;
    let mut caps = Vec::new();
    for (i, l) in p.doc.limits.iter().enumerate() {
        let a = p.limit_assets[i];
        let (sym, dec) = p.unit(a);
        let idx = l.period.index(s.anchor, now);
        caps.push(CapStatus {
            rule: format!("limits[{i}]"),
            what: if l.period == Period::Session {
                format!("{sym} per session")
            } else {
                format!("{sym} per {}", l.period)
            },
            spent: inner.counters.limits[i].spent_at(l.period, s.anchor, now),
            cap: l.max,
            decimals: dec,
            symbol: sym.to_string(),
            resets_at: (l.period != Period::Session).then(|| l.period.end(s.anchor, idx)),
        });
    }
    for (i, st) in p.doc.streams.iter().enumerate() {
        let (sym, dec) = p.unit(p.stream_assets[i]);
        caps.push(CapStatus {
            rule: format!("streams[{i}]"),
            what: format!("{sym} stream (+{} every {} s)", format_decimal(st.rate, dec), st.every),
            spent: inner.counters.streams[i],
            cap: st.max,
            decimals: dec,
            symbol: sym.to_string(),
            resets_at: None,
        });
    }
    for (i, g) in p.doc.gas.cost_limits.iter().enumerate() {
        let idx = g.period.index(s.anchor, now);
        caps.push(CapStatus {
            rule: format!("gas.cost_limits[{i}]"),
            what: format!("gas cost per {}", g.period),
            spent: inner.counters.gas[i].spent_at(g.period, s.anchor, now),
            cap: g.max,
            decimals: 18,
            symbol: p.unit(AssetRef::Native).0.to_string(),
            resets_at: (g.period != Period::Session).then(|| g.period.end(s.anchor, idx)),
        });
    }
    let allowances = inner
        .counters
        .allowances
        .entries
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.state = e.state_at(now);
            e
        })
        .collect();
    let x = inner.counters.allowances.exposure(p, now);
    let mut pending: Vec<PendingStatus> = inner
        .pending
        .iter()
        .map(|(digest, q)| PendingStatus {
            digest: *digest,
            kind: payload_kind(&q.prepared).to_string(),
            created_at: q.created_at,
            expires_at: q.expires_at,
            state: match (&q.signed, now < q.expires_at) {
                (_, false) => "expired",
                (Some(_), true) => "signed",
                (None, true) => "waiting",
            }
            .to_string(),
            reason: q.reason.clone(),
        })
        .collect();
    pending.sort_by_key(|q| (q.created_at, q.digest));
    SessionStatus {
        session: s.address,
        owner: s.owner,
        agent: s.agent,
        policy_hash: p.hash,
        state: inner.state(now),
        created_at: s.created_at,
        valid_after: p.doc.valid_after,
        valid_until: p.doc.valid_until.unwrap_or(0),
        uses: inner.counters.uses,
        uses_left: p.doc.quota.map(|q| q.saturating_sub(inner.counters.uses)),
        caps,
        suspended_reason: inner.suspended.clone(),
        allowances,
        exposure: Box::new(ExposureStatus { usd: x.usd, ceiling: p.doc.exposure_ceiling, unpriced: x.unpriced }),
        pending,
    }
}
