//! Who may hold a session's key in a cluster (ATTESTATION.md, "Upgrades"), and the calls a
//! cluster replica applies that a single enclave never sees.
//!
//! A session's key goes to the nodes whose image is in its *custody*: the image it was
//! created on, and every image its owner allowed since (`allow_image`, signed by the owner
//! like every owner call) — and to nodes of any image signed by a release signer (PCR8) its
//! policy names (`release_signers`, in the policy the owner signed). The custody list and
//! the policy are part of the replicated state; the key itself is sent only to nodes that
//! may hold it (the cluster's network layer takes it out of whatever it sends to others),
//! and a node that may no longer hold it (its signer left the policy) drops it.

use super::{denial, Enclave};
use crate::audit::Subject;
use crate::cluster::types::{Holder, Pcr8, Secret};
use crate::keys::Key;
use alloy_primitives::{Address, B256};
use bridle_common::audit::rec;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::owner::action;
use bridle_common::protocol::{AllowImage, Call, CreateSession, ImageAllowed, Reply, UpdatePolicy};
use std::sync::Arc;

impl Enclave {
    /// `create_session` on a cluster node (`holder`) with the key the proposer generated
    /// (see [`Enclave::create_session_with`]), isolated like every call. The node keeps the
    /// key only if it may hold it by the session's custody and release signers, as it
    /// checks for a policy update and a snapshot: a key the leader should have redacted is
    /// dropped here, leaving this node's state as a redacted copy leaves it (the session
    /// made, no key), not refused (that would part it from the nodes whose copy was
    /// redacted).
    ///
    /// The secret is decoded only where it is kept, so one the node may not hold never
    /// refuses the creation here either. One it may hold that is no valid secret is refused
    /// (`internal`; a leader checks every key before proposing it).
    pub fn apply_create_session(
        &self,
        c: CreateSession,
        address: Address,
        key: Option<Secret>,
        custody: Vec<B256>,
        holder: &Holder,
    ) -> Result<Reply, Denial> {
        let subject = Subject::CreateSession { owner: c.auth.owner };
        let key = match key {
            Some(_) if !holder.may_hold(&custody, &c.policy.release_signers) => {
                tracing::error!(
                    session = %address,
                    "a creation carried the session's key to a node that may not hold it (a leader's bug): key dropped"
                );
                None
            }
            Some(s) => match Key::from_secret_bytes(&s.0) {
                Some(k) => Some(k),
                None => return Err(denial(ErrorCode::Internal, "invalid session key")),
            },
            None => None,
        };
        self.isolated("create_session", subject, || {
            self.create_session_with(c, address, key, custody).map(Reply::SessionCreated)
        })
    }

    /// The sessions an `allow_image` call names, if its owner holds them: one session, or
    /// every session of the owner (sorted by address).
    pub fn allow_image_scope(&self, a: &AllowImage) -> Result<Vec<Address>, Denial> {
        if a.session != Address::ZERO {
            return Ok(vec![self.owned(a.auth.owner, a.session)?.address]);
        }
        let map = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        let mut mine: Vec<Address> = map.values().filter(|s| s.owner == a.auth.owner).map(|s| s.address).collect();
        mine.sort();
        Ok(mine)
    }

    /// Whether `a` is its owner's, signed with a fresh nonce (nothing is recorded): checked
    /// before a leader attaches any key to an `allow_image` entry, which nodes of `a.image`
    /// receive — a refusal when the entry is applied would come after they held the keys.
    pub fn check_allow_image(&self, a: &AllowImage) -> Result<(), Denial> {
        self.authorize_allow_image(a, super::owner::PRECHECK_LEAD).map(drop)
    }

    /// The owner's signature over `a` and its nonce, derived as the call is applied (its
    /// nonce's bound read `lead` seconds ahead: [`Enclave::authorize`]).
    fn authorize_allow_image(
        &self,
        a: &AllowImage,
        lead: u64,
    ) -> Result<std::sync::MutexGuard<'_, super::owners::OwnerBook>, Denial> {
        let agent = match a.session {
            Address::ZERO => Address::ZERO,
            s => self.owned(a.auth.owner, s)?.agent,
        };
        self.authorize(&a.auth, action::ALLOW_IMAGE, a.session, agent, B256::ZERO, a.image, lead)
    }

    /// The secret of `session`'s key, if this node holds it (for the leader to attach to an
    /// `allow_image` entry, sent only to nodes of the allowed image).
    pub fn session_secret(&self, session: &Address) -> Option<zeroize::Zeroizing<[u8; 32]>> {
        let s = self.session(session).ok()?;
        let inner = s.lock();
        inner.key.as_ref().map(|k| k.secret_bytes())
    }

    /// Whether this node can sign for `session`: it holds the key (or the key is destroyed,
    /// and every node refuses alike). `Ok(Some(false))`: the key lives only on other images.
    /// `Ok(None)`: the session's lock is held (an entry applying an owner call on it): ask
    /// again once it is free ([`Enclave::wait_for_session`], off the runtime's worker).
    pub fn holds_key(&self, session: &Address) -> Result<Option<bool>, Denial> {
        let s = self.session(session)?;
        let Some(inner) = s.try_lock() else { return Ok(None) };
        Ok(Some(inner.key.is_some() || inner.machine.key_destroyed()))
    }

    /// Apply an owner's `allow_image`: add `a.image` to the custody of every session in
    /// scope; where this node runs that image (`mine`), take the keys from `keys`.
    pub fn apply_allow_image(
        &self,
        a: &AllowImage,
        keys: Vec<(Address, Option<Key>)>,
        mine: B256,
    ) -> Result<Reply, Denial> {
        let subject = Subject::AllowImage { owner: a.auth.owner, session: a.session, image: a.image };
        self.isolated("allow_image", subject, || {
            let book = self.authorize_allow_image(a, 0)?;
            // A refusal of the owner's message once its signature checks out spends the nonce
            // (owner.rs). A key the leader sent wrongly (below) is the leader's fault, not the
            // message's: that refusal spends nothing.
            let scope = match self.allow_image_scope(a) {
                Ok(scope) => scope,
                Err(refused) => return self.spend(book, &a.auth, Err(refused)),
            };
            let mut keys: std::collections::HashMap<Address, Key> =
                keys.into_iter().filter_map(|(s, k)| k.map(|k| (s, k))).collect();
            // Every key checked before anything changes: a refusal half-way would leave this
            // node's custody and audit log apart from the other nodes' (a review).
            if let Some(why) = keys.iter().find_map(|(s, k)| k.check_is_of(s).err()) {
                return Err(denial(ErrorCode::Internal, why));
            }
            let now = self.clock.now();
            for addr in &scope {
                let session: Arc<crate::session::Session> = self.session(addr)?;
                let mut inner = session.lock();
                if !inner.custody.contains(&a.image) {
                    inner.custody.push(a.image);
                }
                if mine == a.image && inner.key.is_none() && !inner.machine.key_destroyed() {
                    if let Some(k) = keys.remove(addr) {
                        inner.key = Some(k);
                    }
                }
                drop(inner);
                self.append(now, rec::image_allowed(*addr, a.auth.owner, a.image));
            }
            self.accept_nonce(book, &a.auth);
            let reply = ImageAllowed { image: a.image, sessions: scope, receipt: None };
            Ok(Reply::ImageAllowed(self.receipted_after_change(reply, Some(&a.auth))))
        })
    }

    /// The release signers `session`'s policy names.
    pub fn release_signers(&self, session: &Address) -> Result<Vec<Pcr8>, Denial> {
        let s = self.session(session)?;
        let inner = s.lock();
        Ok(inner.machine.policy().doc.release_signers.clone())
    }

    /// Apply an owner's policy update on a cluster node (`holder`): as on any enclave; then,
    /// if it was applied, the node takes `key` (sent with an update that first names a
    /// release signer) when the new policy lets it hold the key and it has none, and drops
    /// the key it holds when it may no longer hold it.
    pub fn apply_update_policy(&self, u: UpdatePolicy, key: Option<Key>, holder: &Holder) -> Result<Reply, Denial> {
        let address = u.session;
        let reply = self.handle(Call::UpdatePolicy(u))?;
        let session = self.session(&address)?;
        let mut inner = session.lock();
        let may = holder.may_hold(&inner.custody, &inner.machine.policy().doc.release_signers);
        if !may {
            inner.key = None;
        } else if inner.key.is_none() && !inner.machine.key_destroyed() {
            if let Some(k) = key {
                k.check_is_of(&address).map_err(|why| denial(ErrorCode::Internal, why))?;
                inner.key = Some(k);
            }
        }
        Ok(reply)
    }

    /// What this node's applied state says of `session`'s key, for deciding what a peer
    /// receives ([`crate::cluster::redact`]); `None` for a session it does not hold.
    pub fn key_view(&self, session: &Address) -> Option<crate::cluster::redact::Current> {
        use crate::cluster::redact::Current;
        let s = self.session(session).ok()?;
        let inner = s.lock();
        // A revoked session's kept key goes on travelling by its release signers too: the
        // owner's sweeps must survive the upgrades it trusted them for (a review of
        // 2026-12-05 weighed both ways; SECURITY.md, "A revoked session's key kept").
        Some(match inner.machine.key_destroyed() {
            true => Current::Gone,
            false => Current::Live(inner.machine.policy().doc.release_signers.clone()),
        })
    }
}
