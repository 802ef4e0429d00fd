//! The enclave's exposure gate, in-process, for tests that drive a session's `Machine` as
//! the enclave does: the book checked for the session under a request, then the session's
//! new holdings published (`enclave/src/service/exposure.rs`).

use alloy_primitives::{address, Address, Signature, B256, U256};
use bridle_common::allowance::aggregate::{Aggregate, Book, Raise};
use bridle_common::error::Denial;
use bridle_common::machine::{Machine, Signer};
use bridle_common::payload::prepare;
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;

/// The owner of every session these tests make.
pub const OWNER: Address = address!("00000000000000000000000000000000000000b0");
/// Their agent.
pub const AGENT: Address = Address::repeat_byte(0xa9);

/// A session key that signs nothing real (the decision never depends on it).
pub struct Key;
impl Signer for Key {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

struct Gate<'a> {
    book: &'a mut Book,
    session: Address,
}
impl Aggregate for Gate<'_> {
    fn check(&mut self, raise: &Raise) -> Result<(), Denial> {
        self.book.check(self.session, OWNER, AGENT, raise)
    }
}

/// Ask `m` to sign `p` at `clock` (a fresh stamp nonce) under the book, then publish its
/// holdings.
pub fn ask(m: &mut Machine, book: &mut Book, clock: u64, p: &SignPayload) -> Result<(), Denial> {
    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    let stamp = Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
    let session = m.facts.address;
    let r = {
        let mut gate = Gate { book, session };
        m.sign_within(clock, p, prepare(p).expect("prepares"), &stamp, Some(&Key), &mut gate).result.map(|_| ())
    };
    book.publish(session, OWNER, AGENT, m.holdings(), m.declares());
    r
}
