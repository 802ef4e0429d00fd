//! The enclave service: every call of SPEC §2, each one typed, each error a stable code.

use crate::clock::Clock;
use crate::keys::Key;
use crate::replay::{ReplayCache, ReplayError};
use crate::session::Session;
use alloy_primitives::{Address, Bytes, B256};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::payload::{prepare, Prepared};
use bridle_common::period::Period;
use bridle_common::policy::compile::AssetRef;
use bridle_common::policy::{CompiledPolicy, Context, Policy};
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_common::units::format_decimal;
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
}

impl Default for Config {
    fn default() -> Self {
        Config { stamp_window: 60, replay_capacity: 1 << 16 }
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
}

fn denial(code: ErrorCode, reason: impl Into<String>) -> Denial {
    Denial::new(code, reason)
}

impl Enclave {
    pub fn new(clock: Box<dyn Clock>, attestor: Option<Box<dyn Attestor>>, config: Config) -> Enclave {
        let booted_at = clock.now();
        Enclave {
            identity: Key::generate(),
            clock,
            attestor,
            config,
            booted_at,
            sessions: RwLock::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            signatures: AtomicU64::new(0),
            denials: AtomicU64::new(0),
        }
    }

    pub fn identity_address(&self) -> Address {
        self.identity.address()
    }

    pub fn identity_public_key(&self) -> Vec<u8> {
        self.identity.public_key_sec1()
    }

    /// Serve one call.
    pub fn handle(&self, call: Call) -> Result<Reply, Denial> {
        let r = match call {
            Call::SignIfAllowed(req) => self.sign_if_allowed(&req).map(Reply::Signed),
            Call::CreateSession(c) => self.create_session(c).map(Reply::SessionCreated),
            Call::UpdatePolicy(u) => self.update_policy(u).map(Reply::PolicyUpdated),
            Call::Revoke(r) => self.revoke(&r).map(Reply::Revoked),
            Call::RevokeAll(r) => self.revoke_all(&r).map(Reply::Revoked),
            Call::ApprovePending(_) => {
                Err(denial(ErrorCode::Unsupported, "approve_pending: escalation is not enabled in this build"))
            }
            Call::Attest(a) => self.attest(a).map(Reply::Attestation),
            Call::Audit(_) => {
                Err(denial(ErrorCode::Unsupported, "audit: the signed audit log is not enabled in this build"))
            }
            Call::Status(q) => Ok(Reply::Status(self.status(q.session))),
        };
        if let Err(d) = &r {
            if d.code.is_denial() || matches!(d.code, ErrorCode::Unauthenticated | ErrorCode::Replayed) {
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

    /// decode → authenticate → (lock) state, replay, evaluate, charge, sign (unlock).
    pub fn sign_if_allowed(&self, req: &SignRequest) -> Result<Signed, Denial> {
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
        let ctx = Context { now, anchor: session.anchor, owner: session.owner, account: session.address };
        let policy = Arc::clone(&inner.policy);
        let charges = prepared.evaluate(&policy, &inner.counters, &ctx)?;
        let key = inner.key.as_ref().ok_or_else(|| denial(ErrorCode::Revoked, "session key destroyed"))?;
        let sig = key
            .sign_digest(&prepared.signing_digest())
            .map_err(|e| denial(ErrorCode::Internal, format!("signing failed: {e}")))?;
        inner.counters.charge(&policy, &charges, session.anchor, now);
        drop(inner);

        self.signatures.fetch_add(1, Ordering::Relaxed);
        let raw_transaction = match prepared {
            Prepared::Transaction { built, .. } => Some((*built).encode_signed(sig)),
            _ => None,
        };
        Ok(Signed {
            session: session.address,
            digest,
            signature: Bytes::copy_from_slice(&sig.as_bytes()),
            raw_transaction,
        })
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
        Ok(SessionCreated {
            binding,
            binding_signature: Bytes::copy_from_slice(&binding_signature.as_bytes()),
            attestation: attestation.map(Bytes::from),
        })
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
        drop(inner);
        owners.insert(u.auth.owner, u.auth.nonce);
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
        session.lock().revoke();
        owners.insert(r.auth.owner, r.auth.nonce);
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
        for s in mine {
            let mut inner = s.lock();
            if !inner.revoked {
                inner.revoke();
                sessions.push(s.address);
            }
        }
        sessions.sort();
        owners.insert(r.auth.owner, r.auth.nonce);
        Ok(Revoked { sessions })
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
    }
}
