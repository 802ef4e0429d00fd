//! What `bridle mcp` keeps of payments it could not see signed, so that asking again never
//! pays twice.
//!
//! The host is untrusted: it may relay a signing request, keep what the enclave signed and
//! answer a refusal — at once, or after holding the stamped request back until the agent
//! has looked at the enclave's status (a stamp stays valid for the enclave's stamp window).
//! A payment asked for again and filled again from the node would take the next nonce and
//! be signed a second time, while the host broadcasts the first (a review of 2026-12-05).
//!
//! So every payment whose request was answered with anything but a checked signature is
//! kept with its transaction, and asked for again it is sent again *unchanged* — the same
//! nonce and fees, the same digest — so at most one of the copies can be mined. A payment
//! held for the owner's approval is kept the same way (its approved signature comes back
//! for the same digest). A kept payment is let go once it is signed and broadcast, when the
//! model says it wants a new payment (`new_payment`), or once it is known never to have been
//! signed: [`UNRESOLVED_FOR`] after the answer, with the enclave's signed count of
//! signatures unchanged since.

use alloy_primitives::{Address, Bytes, U256};
use bridle_common::tx::TxRequest;
use std::time::{Duration, Instant};

/// How long a stamped request the host held back may still be signed: longer than the
/// enclave's stamp window (60 s by default).
pub const UNRESOLVED_FOR: Duration = Duration::from_secs(300);
/// The most payments kept (the oldest goes first).
pub const MAX_KEPT: usize = 16;

/// A payment the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub chain_id: u64,
    pub to: Address,
    pub value: U256,
    pub data: Bytes,
}

/// A payment whose transaction was not seen signed.
#[derive(Debug, Clone)]
struct Kept {
    payment: Payment,
    tx: TxRequest,
    /// Held for the owner's approval (answered `pending_approval`).
    held: bool,
    /// The enclave's signed count of signatures read after the answer (`None`: unread).
    uses_after: Option<u64>,
    at: Instant,
}

/// The kept payments, oldest first.
#[derive(Debug, Default)]
pub struct KeptPayments(Vec<Kept>);

/// What to send for a payment asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    /// A new transaction, filled from the node.
    Fresh,
    /// The kept transaction, unchanged; `held` when it waits for the owner's approval.
    Again { tx: TxRequest, held: bool },
}

impl KeptPayments {
    /// What to send for `asked`, given the enclave's signed count of signatures now.
    pub fn send(&mut self, asked: &Payment, uses_now: u64, now: Instant) -> Send {
        let Some(i) = self.0.iter().position(|k| k.payment == *asked) else { return Send::Fresh };
        let k = &self.0[i];
        let unresolved = now < k.at + UNRESOLVED_FOR;
        let maybe_signed = k.uses_after.is_none_or(|u| uses_now > u);
        if k.held || unresolved || maybe_signed {
            return Send::Again { tx: k.tx.clone(), held: k.held };
        }
        // Never signed: its stamp expired, and no signature was made since.
        self.0.remove(i);
        Send::Fresh
    }

    /// The model asks for a new payment: forget what is kept for this one.
    pub fn forget(&mut self, asked: &Payment) {
        self.0.retain(|k| k.payment != *asked);
    }

    /// `tx` for `payment` was signed (checked) and handed to the node: nothing to keep.
    pub fn signed(&mut self, payment: &Payment) {
        self.forget(payment);
    }

    /// `tx` for `payment` was answered with anything but a checked signature (`code`: the
    /// host's refusal code, if any); `uses_after`: the enclave's signed count read after.
    pub fn unseen(
        &mut self,
        payment: Payment,
        tx: TxRequest,
        code: Option<&str>,
        uses_after: Option<u64>,
        now: Instant,
    ) {
        self.0.retain(|k| k.payment != payment && k.tx != tx);
        if self.0.len() >= MAX_KEPT {
            self.0.remove(0);
        }
        let held = code == Some("pending_approval");
        self.0.push(Kept { payment, tx, held, uses_after, at: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_common::tx::LegacyRequest;

    fn payment(n: u8) -> Payment {
        Payment { chain_id: 1, to: Address::repeat_byte(n), value: U256::from(n), data: Bytes::from(vec![n]) }
    }

    fn tx(nonce: u64) -> TxRequest {
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

    /// A payment answered with anything but a signature is sent again unchanged while it
    /// may still be signed; once its stamp expired with no signature made since, it is
    /// filled afresh; a hold waits for the owner; a signed one, or one the model wants anew,
    /// is forgotten; the last 16 are kept.
    #[test]
    fn a_payment_not_seen_signed_is_sent_again_unchanged_until_it_cannot_be_signed() {
        let t0 = Instant::now();
        let later = t0 + UNRESOLVED_FOR;
        let mut kept = KeptPayments::default();
        assert_eq!(kept.send(&payment(1), 4, t0), Send::Fresh);
        // Refused (the host's word), the count read after: 4.
        kept.unseen(payment(1), tx(5), Some("spend_cap"), Some(4), t0);
        assert_eq!(kept.send(&payment(1), 4, t0), Send::Again { tx: tx(5), held: false });
        assert_eq!(kept.send(&payment(2), 4, t0), Send::Fresh);
        // The stamp may still be used: the same transaction, even if nothing moved.
        assert_eq!(kept.send(&payment(1), 4, later - Duration::from_secs(1)), Send::Again { tx: tx(5), held: false });
        // Later, a signature made since (perhaps this one): still the same transaction.
        assert_eq!(kept.send(&payment(1), 5, later), Send::Again { tx: tx(5), held: false });
        // Later, nothing signed since: never signed, filled afresh, and let go.
        assert_eq!(kept.send(&payment(1), 4, later), Send::Fresh);
        assert_eq!(kept.send(&payment(1), 5, later), Send::Fresh);
        // The count unread after the answer: kept until the count is known not to have moved.
        kept.unseen(payment(1), tx(6), None, None, t0);
        assert_eq!(kept.send(&payment(1), 0, later), Send::Again { tx: tx(6), held: false });
        kept.forget(&payment(1));
        assert_eq!(kept.send(&payment(1), 0, t0), Send::Fresh);
        // A hold waits for the owner, however long.
        kept.unseen(payment(3), tx(7), Some("pending_approval"), Some(4), t0);
        assert_eq!(kept.send(&payment(3), 4, later + UNRESOLVED_FOR), Send::Again { tx: tx(7), held: true });
        kept.signed(&payment(3));
        assert_eq!(kept.send(&payment(3), 4, t0), Send::Fresh);
        for n in 0..20u8 {
            kept.unseen(payment(n), tx(u64::from(n)), None, Some(0), t0);
        }
        assert_eq!(kept.0.len(), MAX_KEPT);
        assert_eq!(kept.send(&payment(3), 0, t0), Send::Fresh, "the oldest went first");
        assert_eq!(kept.send(&payment(19), 0, t0), Send::Again { tx: tx(19), held: false });
    }
}
