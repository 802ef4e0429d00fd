//! What `bridle mcp` keeps of payments, so that asking again never pays twice.
//!
//! The host is untrusted: it may relay a signing request, keep what the enclave signed and
//! answer a refusal — at once, or after holding the stamped request back until the agent
//! has looked at the enclave's status (a stamp stays valid for the enclave's stamp window).
//! A payment asked for again and filled again from the node would take the next nonce and
//! be signed a second time, while the host broadcasts the first (reviews of 2026-12-05).
//! And a payment broadcast but not yet mined (its fees too low for now) asked for again
//! would be paid twice once fees fall.
//!
//! So every payment is kept, by what the model asked for (chain, `to`, value, data):
//! * answered with anything but a checked signature (refused, held for the owner's
//!   approval, a reply that fails the checks): asked for again, its transaction is sent
//!   again *unchanged* — the same nonce and fees, the same digest — so at most one copy can
//!   be mined (a hold's approved signature comes back the same way). It is let go once it is
//!   known never to have been signed: [`UNRESOLVED_FOR`] after the answer with the enclave's
//!   signed count of signatures where it was *before* the request was sent;
//! * signed and broadcast: asked for again, refused until its nonce is mined;
//! * and the model may ask for a new payment (`new_payment`), which, when the kept nonce is
//!   already used on chain, it must confirm by naming that nonce (`checked_nonce`).

use alloy_primitives::{Address, Bytes, B256, U256};
use bridle_common::tx::TxRequest;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a stamped request the host held back may still be signed: longer than twice
/// the enclave's stamp window (60 s by default; a stamp is good for the window on either
/// side of its time).
pub const UNRESOLVED_FOR: Duration = Duration::from_secs(300);
/// The most payments kept unresolved; beyond, new payments wait until some are resolved.
pub const MAX_KEPT: usize = 256;
/// The most payments kept as mined but reverted (the node's word); beyond, the oldest goes.
/// They are kept apart from [`MAX_KEPT`]: reverts are ordinary (a swap past its slippage),
/// and 256 of them stopped every payment for good (a review of 2026-12-07).
pub const MAX_REVERTED: usize = 1024;

/// A payment the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub chain_id: u64,
    pub to: Address,
    pub value: U256,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Answered without a checked signature: `held` for the owner's approval; `uses_before`
    /// the enclave's signed count read before the request was sent.
    Unseen { held: bool, uses_before: u64, at: Instant },
    /// Signed, checked and broadcast as `hash` (`raw`, to broadcast again while it is not
    /// mined); kept until its nonce is mined.
    Sent { hash: B256, raw: Bytes },
    /// Sent as `hash` and mined, and the node says it reverted: asked for again, paid again
    /// only as a new payment with its nonce checked (a node that says "reverted" of a
    /// transfer that succeeded would otherwise have it paid twice).
    Reverted { hash: B256 },
}

#[derive(Debug, Clone)]
struct Kept {
    payment: Payment,
    tx: TxRequest,
    state: State,
}

/// The kept payments, oldest first.
#[derive(Debug, Default)]
pub struct KeptPayments(Vec<Kept>);

/// A kept payment as the kept-payments file holds it ([`crate::mcp_kept_file`]): an
/// `Unseen` answer's time as unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub payment: Payment,
    pub tx: TxRequest,
    pub state: SavedState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SavedState {
    Unseen { held: bool, uses_before: u64, at: u64 },
    Sent { hash: B256, raw: Bytes },
    Reverted { hash: B256 },
}

impl KeptPayments {
    /// What to write down, `now` being both the unix time and the instant of the moment.
    pub fn saved(&self, now_unix: u64, now: Instant) -> Vec<Saved> {
        self.0
            .iter()
            .map(|k| Saved {
                payment: k.payment.clone(),
                tx: k.tx.clone(),
                state: match &k.state {
                    State::Unseen { held, uses_before, at } => SavedState::Unseen {
                        held: *held,
                        uses_before: *uses_before,
                        at: now_unix.saturating_sub(now.saturating_duration_since(*at).as_secs()),
                    },
                    State::Sent { hash, raw } => SavedState::Sent { hash: *hash, raw: raw.clone() },
                    State::Reverted { hash } => SavedState::Reverted { hash: *hash },
                },
            })
            .collect()
    }

    /// The payments written down, read back at `now` (an answer's time in the future reads as
    /// now: it is kept the longer for it). The caller checks there are at most [`MAX_KEPT`].
    pub fn restored(saved: Vec<Saved>, now_unix: u64, now: Instant) -> KeptPayments {
        KeptPayments(
            saved
                .into_iter()
                .map(|s| Kept {
                    payment: s.payment,
                    tx: s.tx,
                    state: match s.state {
                        SavedState::Unseen { held, uses_before, at } => {
                            let ago = Duration::from_secs(now_unix.saturating_sub(at));
                            State::Unseen { held, uses_before, at: now.checked_sub(ago).unwrap_or(now) }
                        }
                        SavedState::Sent { hash, raw } => State::Sent { hash, raw },
                        SavedState::Reverted { hash } => State::Reverted { hash },
                    },
                })
                .collect(),
        )
    }
}

/// What to do for a payment asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    /// A new transaction, filled from the node.
    Fresh,
    /// The kept transaction, unchanged; `held` when it waits for the owner's approval.
    Again { tx: TxRequest, held: bool },
    /// Sent as `hash` at `nonce`, not mined yet: nothing to sign; `raw` may be broadcast
    /// again (the same transaction).
    NotMined { hash: B256, nonce: u64, raw: Bytes },
    /// Sent at `nonce`, which is mined, but not by this payment's own transaction (its
    /// receipt is not there): another copy of this payment may fill it; nothing to sign.
    NonceTaken { nonce: u64 },
    /// Its own transaction `hash` at `nonce` was mined and the node says it reverted:
    /// nothing to sign unless a new payment is asked for with that nonce checked.
    Reverted { hash: B256, nonce: u64 },
    /// Too many payments unresolved: nothing to send.
    Full,
}

impl KeptPayments {
    /// The payments sent on `chain` whose nonce is mined (`mined`: the node's count of mined
    /// transactions of the session), to ask the node whether it was their own transaction
    /// that was mined there: (nonce, hash).
    pub fn sent_below(&self, chain: u64, mined: u64) -> Vec<(u64, B256)> {
        self.0
            .iter()
            .filter(|k| k.payment.chain_id == chain && k.tx.nonce() < mined)
            .filter_map(|k| match k.state {
                State::Sent { hash, .. } => Some((k.tx.nonce(), hash)),
                State::Unseen { .. } | State::Reverted { .. } => None,
            })
            .collect()
    }

    /// Let go of what is resolved on `chain`: payments sent whose own transaction is mined;
    /// payments never signed; and payments kept at a nonce that a payment sent from here
    /// filled (`own`: nonces whose mined transaction is one this server sent, see
    /// [`KeptPayments::sent_below`]), which can
    /// no longer be mined (a review of 2026-12-05: an honest refusal stayed kept for ever
    /// once any later signature moved the count, and 256 of them stopped every payment).
    ///
    /// `reverted`: nonces whose mined transaction is one this server sent and that the node
    /// says reverted — those payments are kept as [`State::Reverted`], at most
    /// [`MAX_REVERTED`], the oldest going first.
    pub fn prune(&mut self, chain: u64, uses_now: u64, own: &[u64], reverted: &[u64], now: Instant) {
        self.0.retain(|k| {
            if k.payment.chain_id != chain {
                return true;
            }
            match k.state {
                // Let go once its own transaction is mined; a nonce mined by another copy
                // (a host that had an earlier transaction of this payment signed) keeps it.
                State::Sent { .. } => !own.contains(&k.tx.nonce()),
                State::Reverted { .. } => true,
                State::Unseen { .. } if own.contains(&k.tx.nonce()) || reverted.contains(&k.tx.nonce()) => false,
                State::Unseen { held, uses_before, at } => {
                    held || now.saturating_duration_since(at) < UNRESOLVED_FOR || uses_now > uses_before
                }
            }
        });
        for k in self.0.iter_mut().filter(|k| k.payment.chain_id == chain && reverted.contains(&k.tx.nonce())) {
            if let State::Sent { hash, .. } = k.state {
                k.state = State::Reverted { hash };
            }
        }
        let kept_reverted = self.0.iter().filter(|k| matches!(k.state, State::Reverted { .. })).count();
        let mut extra = kept_reverted.saturating_sub(MAX_REVERTED);
        self.0.retain(|k| {
            let go = extra > 0 && matches!(k.state, State::Reverted { .. });
            extra -= usize::from(go);
            !go
        });
    }

    /// The oldest `n` unresolved payments: (chain, nonce, to).
    pub fn oldest_unresolved(&self, n: usize) -> Vec<(u64, u64, Address)> {
        self.0
            .iter()
            .filter(|k| !matches!(k.state, State::Reverted { .. }))
            .take(n)
            .map(|k| (k.payment.chain_id, k.tx.nonce(), k.payment.to))
            .collect()
    }

    /// Payments kept unresolved (the ones [`MAX_KEPT`] bounds).
    fn unresolved(&self) -> usize {
        self.0.iter().filter(|k| !matches!(k.state, State::Reverted { .. })).count()
    }

    /// What to send for `asked`, after [`KeptPayments::prune`] (`mined`: the node's count
    /// of mined transactions of the session). With `new` (the model asks for a new payment,
    /// its checks made by the caller) a fresh one, which replaces the kept one once sent.
    pub fn send(&self, asked: &Payment, mined: u64, new: bool) -> Send {
        let kept = self.0.iter().find(|k| k.payment == *asked);
        match kept {
            None if self.unresolved() >= MAX_KEPT => Send::Full,
            None => Send::Fresh,
            Some(_) if new => Send::Fresh,
            Some(Kept { tx, state: State::Unseen { held, .. }, .. }) => Send::Again { tx: tx.clone(), held: *held },
            Some(Kept { tx, state: State::Sent { .. }, .. }) if tx.nonce() < mined => {
                Send::NonceTaken { nonce: tx.nonce() }
            }
            Some(Kept { tx, state: State::Sent { hash, raw }, .. }) => {
                Send::NotMined { hash: *hash, nonce: tx.nonce(), raw: raw.clone() }
            }
            Some(Kept { tx, state: State::Reverted { hash }, .. }) => Send::Reverted { hash: *hash, nonce: tx.nonce() },
        }
    }

    /// The nonce of the transaction kept for `asked`, if any.
    pub fn nonce_of(&self, asked: &Payment) -> Option<u64> {
        self.0.iter().find(|k| k.payment == *asked).map(|k| k.tx.nonce())
    }

    /// Forget what is kept for `asked`.
    #[cfg(test)]
    pub fn forget(&mut self, asked: &Payment) {
        self.0.retain(|k| k.payment != *asked);
    }

    /// `tx` for `payment` was signed and checked as `raw`, and is broadcast.
    pub fn sent(&mut self, payment: Payment, tx: TxRequest, raw: Bytes) {
        let hash = alloy_primitives::keccak256(&raw);
        self.put(Kept { payment, tx, state: State::Sent { hash, raw } });
    }

    /// `tx` for `payment` was answered with anything but a checked signature (`code`: the
    /// host's refusal code, if any); `uses_before`: the enclave's signed count read before
    /// the request was sent (every signature this request could make comes after it).
    ///
    /// Asked again at the same nonce (the same transaction, or a new payment over a free
    /// kept nonce) and unseen again, it keeps the lowest count of every round, and a hold
    /// stays a hold: a signature the host had made in an earlier round is in a later round's
    /// count, and the payment must not look unsigned once that count stops moving. Over a
    /// payment sent (signed, so never to be let go by the count), the count is 0.
    pub fn unseen(&mut self, payment: Payment, tx: TxRequest, code: Option<&str>, uses_before: u64, now: Instant) {
        let held = code == Some("pending_approval");
        let earlier =
            self.0.iter().find(|k| k.payment == payment && k.tx.nonce() == tx.nonce()).map(|k| match k.state {
                State::Unseen { uses_before: u, held: h, .. } => (u, h),
                State::Sent { .. } | State::Reverted { .. } => (0, false),
            });
        let (uses_before, held) = earlier.map_or((uses_before, held), |(u, h)| (u.min(uses_before), h || held));
        self.put(Kept { payment, tx, state: State::Unseen { held, uses_before, at: now } });
    }

    fn put(&mut self, k: Kept) {
        self.0.retain(|o| o.payment != k.payment);
        self.0.push(k);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bridle_common::tx::LegacyRequest;

    pub(crate) fn payment(n: u8) -> Payment {
        Payment { chain_id: 1, to: Address::repeat_byte(n), value: U256::from(n), data: Bytes::from(vec![n]) }
    }

    pub(crate) fn tx(nonce: u64) -> TxRequest {
        TxRequest::Legacy(LegacyRequest {
            chain_id: 1,
            nonce,
            gas_price: 7,
            gas_limit: 21_000,
            to: Some(Address::repeat_byte(1)),
            value: U256::from(1),
            data: Bytes::new(),
        })
    }

    impl KeptPayments {
        fn send_(&self, asked: &Payment) -> Send {
            self.send(asked, 0, false)
        }
    }

    /// A payment answered with anything but a signature is sent again unchanged while it
    /// may have been signed — the host may have had it signed before the status read after
    /// the answer, so only a count unchanged since *before* the request proves it was not —;
    /// a hold waits for the owner; a payment sent waits for its nonce to be mined.
    #[test]
    fn a_payment_is_sent_again_unchanged_or_refused_until_it_cannot_be_paid_twice() {
        let t0 = Instant::now();
        let later = t0 + UNRESOLVED_FOR;
        let mut kept = KeptPayments::default();
        assert_eq!(kept.send_(&payment(1)), Send::Fresh);
        // Refused (the host's word); the count before the request: 4.
        kept.unseen(payment(1), tx(5), Some("spend_cap"), 4, t0);
        assert_eq!(kept.send_(&payment(1)), Send::Again { tx: tx(5), held: false });
        assert_eq!(kept.send_(&payment(2)), Send::Fresh);
        // Its stamp may still be used: kept, even with nothing signed.
        kept.prune(1, 4, &[], &[], later - Duration::from_secs(1));
        assert_eq!(kept.send_(&payment(1)), Send::Again { tx: tx(5), held: false });
        // Later, one signature made since the request (the host's, perhaps): still kept.
        kept.prune(1, 5, &[], &[], later);
        assert_eq!(kept.send_(&payment(1)), Send::Again { tx: tx(5), held: false });
        // Sent again and unseen again at a count of 5 (the host may have had the first round
        // signed): the lowest count is kept, so 5 later does not read as never signed.
        kept.unseen(payment(1), tx(5), Some("spend_cap"), 5, t0);
        kept.prune(1, 5, &[], &[], later);
        assert_eq!(kept.send_(&payment(1)), Send::Again { tx: tx(5), held: false });
        // Later, the count where it was before the first request: never signed, let go.
        kept.prune(1, 4, &[], &[], later);
        assert_eq!(kept.send_(&payment(1)), Send::Fresh);
        // A hold waits for the owner, however long.
        kept.unseen(payment(3), tx(7), Some("pending_approval"), 4, t0);
        kept.prune(1, 4, &[], &[], later + UNRESOLVED_FOR);
        assert_eq!(kept.send_(&payment(3)), Send::Again { tx: tx(7), held: true });
        // Signed and sent: refused until mined, then let go.
        let raw = Bytes::from(vec![9u8; 3]);
        let hash = alloy_primitives::keccak256(&raw);
        kept.sent(payment(3), tx(7), raw.clone());
        kept.prune(1, 9, &[], &[], later);
        assert_eq!(kept.send(&payment(3), 7, false), Send::NotMined { hash, nonce: 7, raw });
        assert_eq!(kept.nonce_of(&payment(3)), Some(7));
        // Another chain's count touches nothing here.
        kept.prune(2, 9, &[], &[], later);
        assert_eq!(kept.nonce_of(&payment(3)), Some(7));
        assert_eq!(kept.sent_below(1, 8), vec![(7, hash)]);
        // Nonce 7 mined, but not by its own transaction (no receipt): kept, the nonce taken.
        kept.prune(1, 9, &[], &[], later);
        assert_eq!(kept.send(&payment(3), 8, false), Send::NonceTaken { nonce: 7 });
        // A new payment asked for: a fresh one (which replaces this once sent).
        assert_eq!(kept.send(&payment(3), 8, true), Send::Fresh);
        // Mined by its own transaction: let go.
        kept.prune(1, 9, &[7], &[], later);
        assert_eq!(kept.send_(&payment(3)), Send::Fresh);
        // A refused payment kept at nonce 10, and a payment sent from here that filled nonce
        // 10: the refused one can no longer be mined, and goes, whatever the count.
        kept.unseen(payment(5), tx(10), Some("spend_cap"), 0, t0);
        kept.prune(1, 99, &[10], &[], t0);
        assert_eq!(kept.send_(&payment(5)), Send::Fresh);
        // A new payment over a free kept nonce (another transaction, the same nonce), unseen
        // too, keeps the first round's count; over a payment sent, the count 0.
        let other = |nonce: u64| match tx(nonce) {
            TxRequest::Legacy(l) => TxRequest::Legacy(LegacyRequest { gas_price: 99, ..l }),
            t => t,
        };
        kept.unseen(payment(7), tx(20), Some("spend_cap"), 4, t0);
        kept.unseen(payment(7), other(20), Some("spend_cap"), 5, t0);
        kept.prune(1, 5, &[], &[], later);
        assert_eq!(kept.send_(&payment(7)), Send::Again { tx: other(20), held: false });
        kept.sent(payment(8), tx(21), Bytes::from(vec![1u8]));
        kept.unseen(payment(8), other(21), Some("spend_cap"), 5, t0);
        kept.prune(1, 5, &[], &[], later + UNRESOLVED_FOR);
        assert_eq!(kept.send_(&payment(8)), Send::Again { tx: other(21), held: false });
        kept.forget(&payment(7));
        kept.forget(&payment(8));
        // A hold raised to a plain refusal stays a hold.
        kept.unseen(payment(6), tx(12), Some("pending_approval"), 9, t0);
        kept.unseen(payment(6), tx(12), Some("spend_cap"), 9, t0);
        assert_eq!(kept.send_(&payment(6)), Send::Again { tx: tx(12), held: true });
        kept.forget(&payment(6));
        // A new payment asked for: forgotten.
        kept.unseen(payment(4), tx(8), None, 4, t0);
        kept.forget(&payment(4));
        assert_eq!(kept.send_(&payment(4)), Send::Fresh);
        // Full: a new payment waits; kept ones are still answered.
        for n in 0..MAX_KEPT {
            kept.unseen(payment(n as u8), tx(n as u64), None, 0, t0);
        }
        assert_eq!(kept.0.len(), MAX_KEPT);
        assert_eq!(kept.send_(&Payment { value: U256::from(MAX_KEPT), ..payment(1) }), Send::Full);
        assert_eq!(kept.send_(&payment(1)), Send::Again { tx: tx(1), held: false });
    }

    /// A payment whose own transaction the node says reverted is kept apart: asked for
    /// again, it is not signed unless asked for as a new payment; reverted ones never stop
    /// new payments, and the oldest go beyond MAX_REVERTED (a review of 2026-12-07: 256
    /// reverts stopped every payment for good).
    #[test]
    fn reverted_payments_are_kept_apart_and_never_stop_new_ones() {
        let t0 = Instant::now();
        let mut kept = KeptPayments::default();
        let raw = |n: u64| Bytes::from(n.to_be_bytes().to_vec());
        let pay =
            |n: u64| Payment { chain_id: 1, to: Address::repeat_byte(9), value: U256::from(n), data: Bytes::new() };
        let total = (MAX_KEPT + MAX_REVERTED + 10) as u64;
        for n in 0..total {
            assert_eq!(kept.send(&pay(n), n, false), Send::Fresh, "payment {n}");
            kept.sent(pay(n), tx(n), raw(n));
            // Mined, and the node says it reverted.
            kept.prune(1, 0, &[], &[n], t0);
        }
        assert_eq!(kept.0.len(), MAX_REVERTED);
        assert_eq!(kept.send(&pay(total), total, false), Send::Fresh);
        let last = total - 1;
        assert_eq!(
            kept.send(&pay(last), total, false),
            Send::Reverted { hash: alloy_primitives::keccak256(raw(last)), nonce: last }
        );
        // The oldest went.
        assert_eq!(kept.send(&pay(0), total, false), Send::Fresh);
        // Reverted ones are not named among the unresolved.
        assert_eq!(kept.oldest_unresolved(5), vec![]);
        kept.unseen(pay(9_000), tx(total + 5), Some("rate_limited"), 0, t0);
        assert_eq!(kept.oldest_unresolved(5), vec![(1, total + 5, Address::repeat_byte(9))]);
        kept.forget(&pay(9_000));
        // Asked for as a new payment: a fresh one.
        assert_eq!(kept.send(&pay(last), total, true), Send::Fresh);
        // A refused payment kept at a nonce a reverted transaction of this server filled goes.
        kept.unseen(pay(7_000), tx(total), Some("spend_cap"), 0, t0);
        kept.prune(1, 0, &[], &[total], t0);
        assert_eq!(kept.send(&pay(7_000), total + 1, false), Send::Fresh);
    }
}
