//! Which session keys a peer receives (ATTESTATION.md, "Cluster and upgrades"). Whatever a
//! node sends a peer of another image or release signer — log entries and snapshots — has
//! every key that peer may not hold taken out first.
//!
//! A peer may hold a key **by image** (the session's custody lists its image: the image it
//! was created on, or one its owner allowed) or **by signer** (the session's policy names
//! the peer's release signer). Custody only grows, so an entry's own word suffices by
//! image. A policy can drop a signer, so by signer the entry's word (its policy names the
//! signer) is not enough: what the sender knows now must still name it too — an old entry
//! (the session's creation, an earlier update) must not carry the key to a signer the owner
//! dropped since. What the sender knows now is its applied state (for entries it applied)
//! narrowed by every policy update in its log after it: a leader just elected may hold
//! committed entries it has not applied yet, and an update may still be refused when
//! applied, so a later update only ever takes signers away here, never adds one.
//! A session that ended, or whose key is destroyed, sends no key to anyone.
//!
//! A peer of this node's own image and release signer receives every key but those of
//! sessions gone: it runs the very code this node runs (PCR0-2) and may hold exactly what
//! this node may, and its log must be this node's, for it may lead in turn and send the
//! entries on to others (redacted then by its own view). So such a peer, like this node,
//! may keep in its log a key it no longer holds in its state, until a snapshot covers it.

use super::types::{Entry, Holder, Op, Pcr8, Secret};
use crate::keys::Key;
use alloy_primitives::Address;

/// What the sender's applied state says now of a session whose key an entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// The entry is not applied here yet, and no later entry updates the session's policy:
    /// the entry's own word holds.
    NotYetApplied,
    /// At most these release signers are named (by the applied policy, or by the entry
    /// itself, narrowed by the later updates).
    Live(Vec<Pcr8>),
    /// Ended, or its key destroyed.
    Gone,
}

/// What every checked policy update of `session` after log index `index` in `later`
/// ((index, session, signers named), as `LogStore::policy_updates_after` lists them) still
/// names — their intersection: a later update only narrows — or `None` if there is none.
pub fn named_after(later: &[(u64, Address, Vec<Pcr8>)], session: &Address, index: u64) -> Option<Vec<Pcr8>> {
    let mut named: Option<Vec<Pcr8>> = None;
    for (_, _, list) in later.iter().filter(|(i, s, _)| *i > index && s == session) {
        named = Some(match named {
            None => list.clone(),
            Some(mut n) => {
                n.retain(|p| list.contains(p));
                n
            }
        });
    }
    named
}

/// The sender's view of the sessions (see [`Current`]).
pub trait KeyView {
    /// What is known now of `session`, whose key an entry at log index `index` carries.
    fn current(&self, session: &Address, index: u64) -> Current;
}

/// Whether `holder` receives `session`'s key from an entry at `index` that lets nodes of
/// its image hold it (`by_image`) or names `named` as release signers.
fn receives(
    holder: &Holder,
    by_image: bool,
    named: &[Pcr8],
    session: &Address,
    index: u64,
    view: &impl KeyView,
) -> bool {
    let now = view.current(session, index);
    if now == Current::Gone {
        return false;
    }
    if by_image {
        return true;
    }
    let Some(signer) = holder.signer else { return false };
    named.contains(&signer)
        && match now {
            Current::NotYetApplied => true,
            Current::Live(list) => list.contains(&signer),
            Current::Gone => false,
        }
}

impl Op {
    /// Whether this op carries any key.
    pub fn carries_keys(&self) -> bool {
        match self {
            Op::CreateSession { key, .. } | Op::UpdatePolicy { key, .. } => key.is_some(),
            Op::AllowImage { keys, .. } => keys.iter().any(|(_, k)| k.is_some()),
            Op::Init { .. } | Op::Call(_) => false,
        }
    }

    /// A key this op carries that is not its session's, or no valid secret at all: only a
    /// leader's bug could attach one (hosts cannot forge peers' entries), and only the nodes
    /// the key was not redacted for would see it, so refusing the change there would part
    /// their states from the others'. A leader checks every op before proposing it
    /// ([`super::node`], `propose`) and proposes nothing that fails.
    pub fn misdirected_key(&self) -> Option<String> {
        fn check(session: &Address, secret: &Secret) -> Option<String> {
            match Key::from_secret_bytes(&secret.0) {
                None => Some(format!("the key sent for session {session} is not a valid secret")),
                Some(k) => k.check_is_of(session).err(),
            }
        }
        match self {
            Op::CreateSession { address, key: Some(k), .. } => check(address, k),
            Op::UpdatePolicy { call, key: Some(k) } => check(&call.session, k),
            Op::AllowImage { keys, .. } => keys.iter().find_map(|(s, k)| k.as_ref().and_then(|k| check(s, k))),
            Op::CreateSession { key: None, .. }
            | Op::UpdatePolicy { key: None, .. }
            | Op::Init { .. }
            | Op::Call(_) => None,
        }
    }

    /// Take out the keys `holder` may not receive from this op, the entry at `index`;
    /// `same`: `holder` is the sender's own image and signer (see the module docs).
    pub fn redact_for(&mut self, holder: &Holder, same: bool, index: u64, view: &impl KeyView) {
        match self {
            Op::CreateSession { call, address, key, custody } => {
                let by_image = same || custody.contains(&holder.image);
                if key.is_some() && !receives(holder, by_image, &call.policy.release_signers, address, index, view) {
                    *key = None;
                }
            }
            Op::AllowImage { call, keys } => {
                let by_image = same || call.image == holder.image;
                for (session, key) in keys.iter_mut() {
                    if key.is_some() && !receives(holder, by_image, &[], session, index, view) {
                        *key = None;
                    }
                }
            }
            Op::UpdatePolicy { call, key } => {
                if key.is_some() && !receives(holder, same, &call.policy.release_signers, &call.session, index, view) {
                    *key = None;
                }
            }
            // The cluster's identity goes to every admitted node.
            Op::Init { .. } | Op::Call(_) => {}
        }
    }
}

/// Redact the entries `holder` receives (`same`: see [`Op::redact_for`]).
pub fn redact_entries(entries: &mut [Entry], holder: &Holder, same: bool, view: &impl KeyView) {
    for e in entries {
        let index = e.log_id.index;
        if let openraft::EntryPayload::Normal(cmd) = &mut e.payload {
            cmd.op.redact_for(holder, same, index, view);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::Secret;
    use super::*;
    use alloy_primitives::B256;
    use bridle_common::protocol::{AllowImage, CreateSession, OwnerAuth, UpdatePolicy};

    /// The same answer for every session.
    struct Always(Current);
    impl KeyView for Always {
        fn current(&self, _: &Address, _: u64) -> Current {
            self.0.clone()
        }
    }

    fn redacted(op: &Op, holder: &Holder, now: Current) -> bool {
        let mut op = op.clone();
        op.redact_for(holder, false, 1, &Always(now));
        !op.carries_keys()
    }

    /// A peer of the sender's own image and signer receives every key but a gone session's.
    #[test]
    fn a_peer_like_the_sender_receives_all_but_keys_of_sessions_gone() {
        let me = Holder { image: B256::repeat_byte(9), signer: Some(Pcr8::repeat_byte(0x5e)) };
        let auth = OwnerAuth { owner: Address::ZERO, nonce: 1, signature: Default::default() };
        let call = Box::new(AllowImage { auth, session: Address::ZERO, image: B256::repeat_byte(1) });
        let op = Op::AllowImage { call, keys: vec![(Address::ZERO, Some(Secret([7; 32])))] };
        let sent = |now: Current| {
            let mut op = op.clone();
            op.redact_for(&me, true, 1, &Always(now));
            op.carries_keys()
        };
        assert!(sent(Current::Live(vec![])));
        assert!(sent(Current::NotYetApplied));
        assert!(!sent(Current::Gone));
    }

    #[test]
    fn keys_go_only_to_their_images() {
        let (a, b) = (
            Holder { image: B256::repeat_byte(1), signer: None },
            Holder { image: B256::repeat_byte(2), signer: None },
        );
        let auth = OwnerAuth { owner: Address::ZERO, nonce: 1, signature: Default::default() };
        let call = Box::new(AllowImage { auth, session: Address::ZERO, image: b.image });
        let op = Op::AllowImage { call, keys: vec![(Address::ZERO, Some(Secret([7; 32])))] };
        assert!(redacted(&op, &a, Current::NotYetApplied));
        assert!(!redacted(&op, &b, Current::NotYetApplied));
        assert!(!redacted(&op, &b, Current::Live(vec![])), "by image, whatever the policy names");
        assert!(redacted(&op, &b, Current::Gone), "an ended session's key goes nowhere");
        assert!(!format!("{:?}", Secret([7; 32])).contains('7'));
    }

    /// A key travels to a node of another image when the session's policy names that
    /// node's release signer — in the entry that creates the session, or in a policy update
    /// that names the signer — and the sender's applied state still names it; to no other.
    #[test]
    fn keys_go_to_the_release_signers_a_policy_names_while_it_names_them() {
        let signer = Pcr8::repeat_byte(0x5e);
        let text = format!(
            "name = \"t\"\nchains = [1]\nvalid_for = \"1h\"\nrelease_signers = [\"{}\"]\n",
            hex::encode(signer)
        );
        let policy = bridle_common::policy::file::resolve_text(&text, 1_800_000_000).unwrap();
        let old = B256::repeat_byte(1);
        let signed = Holder { image: B256::repeat_byte(2), signer: Some(signer) };
        let other = Holder { image: B256::repeat_byte(3), signer: Some(Pcr8::repeat_byte(0x77)) };
        let unsigned = Holder { image: B256::repeat_byte(4), signer: None };
        let auth = OwnerAuth { owner: Address::ZERO, nonce: 1, signature: Default::default() };
        let create = CreateSession { auth: auth.clone(), agent_public_key: Default::default(), policy: policy.clone() };
        let ops = [
            Op::CreateSession {
                call: Box::new(create),
                address: Address::ZERO,
                key: Some(Secret([7; 32])),
                custody: vec![old],
            },
            Op::UpdatePolicy {
                call: Box::new(UpdatePolicy { auth, session: Address::ZERO, policy }),
                key: Some(Secret([7; 32])),
            },
        ];
        for op in &ops {
            assert!(!redacted(op, &signed, Current::NotYetApplied), "{op:?}");
            assert!(!redacted(op, &signed, Current::Live(vec![signer])), "{op:?}");
            // The owner dropped the signer since the entry: the old entry carries nothing.
            assert!(redacted(op, &signed, Current::Live(vec![])), "{op:?}");
            assert!(redacted(op, &signed, Current::Gone), "{op:?}");
            for h in [&other, &unsigned] {
                assert!(redacted(op, h, Current::Live(vec![signer])), "{op:?}");
            }
        }
        // A node of the image the session was created on receives it whatever the policy
        // says, unless the session is gone.
        let by_image = Holder { image: old, signer: None };
        assert!(!redacted(&ops[0], &by_image, Current::Live(vec![])));
        assert!(redacted(&ops[0], &by_image, Current::Gone));
        // PCR8 all zeros is an unsigned image: never a signer.
        assert_eq!(Holder::from_pcrs(&[1], &[2], &[3], Some(&[0; 48])).signer, None);
        assert_eq!(Holder::from_pcrs(&[1], &[2], &[3], Some(&[0x5e; 48])).signer, Some(signer));
    }

    #[test]
    fn later_updates_name_their_intersection() {
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let (s, t) = (Pcr8::repeat_byte(0x5e), Pcr8::repeat_byte(0x77));
        let later = vec![(3, a, vec![s, t]), (4, b, vec![]), (5, a, vec![s])];
        assert_eq!(named_after(&later, &a, 2), Some(vec![s]));
        assert_eq!(named_after(&later, &a, 3), Some(vec![s]));
        assert_eq!(named_after(&later, &a, 5), None);
        assert_eq!(named_after(&later, &b, 0), Some(vec![]));
    }

    /// Only a key that is its session's passes; any other, or no valid secret, is named.
    #[test]
    fn a_key_that_is_not_its_sessions_is_named() {
        let (k, other) = (Key::generate(), Key::generate());
        let (mine, theirs) = (Secret(*k.secret_bytes()), Secret(*other.secret_bytes()));
        // Zero, the group order n and above are no secret; n − 1, the largest, is.
        let n = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let invalid = [Secret([0; 32]), Secret(n.to_be_bytes()), Secret([0xff; 32])];
        let largest = Key::from_secret_bytes(&(n - alloy_primitives::U256::from(1)).to_be_bytes()).unwrap();
        let auth = OwnerAuth { owner: Address::ZERO, nonce: 1, signature: Default::default() };
        let policy = bridle_common::policy::file::resolve_text(
            "name = \"t\"\nchains = [1]\nvalid_for = \"1h\"\n",
            1_800_000_000,
        )
        .unwrap();
        let at_largest = Op::UpdatePolicy {
            call: Box::new(UpdatePolicy { auth: auth.clone(), session: largest.address(), policy: policy.clone() }),
            key: Some(Secret(*largest.secret_bytes())),
        };
        assert_eq!(at_largest.misdirected_key(), None);
        let create = |key: Option<Secret>| Op::CreateSession {
            call: Box::new(CreateSession {
                auth: auth.clone(),
                agent_public_key: Default::default(),
                policy: policy.clone(),
            }),
            address: k.address(),
            key,
            custody: vec![],
        };
        let update = |key: Option<Secret>| Op::UpdatePolicy {
            call: Box::new(UpdatePolicy { auth: auth.clone(), session: k.address(), policy: policy.clone() }),
            key,
        };
        let allow = |keys: Vec<(Address, Option<Secret>)>| Op::AllowImage {
            call: Box::new(AllowImage { auth: auth.clone(), session: Address::ZERO, image: B256::repeat_byte(1) }),
            keys,
        };
        for op in [create(Some(mine.clone())), create(None), update(Some(mine.clone())), update(None)] {
            assert_eq!(op.misdirected_key(), None, "{op:?}");
        }
        let pair =
            vec![(other.address(), Some(theirs.clone())), (k.address(), Some(mine.clone())), (Address::ZERO, None)];
        assert_eq!(allow(pair).misdirected_key(), None);
        for op in [create(Some(theirs.clone())), update(Some(theirs.clone()))] {
            let why = op.misdirected_key().expect("another session's key");
            assert!(why.contains(&format!("is the key of {}", other.address())), "{why}");
        }
        let swapped = vec![(other.address(), Some(theirs.clone())), (k.address(), Some(theirs.clone()))];
        let why = allow(swapped).misdirected_key().expect("a key sent for the wrong session");
        assert!(why.contains(&format!("for session {}", k.address())), "{why}");
        for bad in invalid {
            for op in
                [create(Some(bad.clone())), update(Some(bad.clone())), allow(vec![(k.address(), Some(bad.clone()))])]
            {
                let why = op.misdirected_key().expect("no valid secret");
                assert!(why.contains("not a valid secret"), "{why}");
            }
        }
        assert_eq!(Op::Init { identity: Secret([0; 32]), booted_at: 0 }.misdirected_key(), None);
    }
}
