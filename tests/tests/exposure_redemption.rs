//! An agent's revocation through an ERC-7710 redemption passes an exposure ceiling the
//! session's figure is above (a review of 2026-12-07 of the rule that a request is exempt
//! only when it adds no state, RULES §6): the engine records a delegator's writes as
//! additions, so the revocation is an addition of 0 — nothing written, covered by the
//! write-less alternative at a fresh nonce. The first form of the rule refused it.

use alloy_primitives::{Address, Signature, B256, U256};
use bridle_common::allowance::aggregate::{Aggregate, Book, Raise};
use bridle_common::error::Denial;
use bridle_common::machine::{Machine, Signer};
use bridle_common::payload::prepare;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::CompiledPolicy;
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;
use bridle_model::Req;
use bridle_tests::differential::{payload, D1, MGR, S1, S2, TOK1};
use bridle_tests::differential::{ACCOUNT, OWNER, T0};

struct K;
impl Signer for K {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}
struct Gate<'a>(&'a mut Book, Address);
impl Aggregate for Gate<'_> {
    fn check(&mut self, raise: &Raise) -> Result<(), Denial> {
        self.0.check(self.1, OWNER, Address::repeat_byte(0xa9), raise)
    }
}

fn policy(ceiling: u64) -> CompiledPolicy {
    let text = format!(
        r#"
name = "redeem-revoke"
chains = [1]
valid_for = "1h"
prices = {{ T1 = "1" }}
exposure_ceiling = "{ceiling} USD"
[tokens]
T1 = {{ address = "{TOK1}", decimals = 0 }}
[[calls]]
target = "T1"
functions = ["approve(address,uint256)"]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = ["{S1}", "{S2}"]
max = ["1000 T1"]
[delegations]
managers = ["{MGR}"]
"#
    );
    CompiledPolicy::compile(resolve_text(&text, T0).expect("policy")).expect("compiles")
}

fn approve_data(spender: Address, amount: u64) -> alloy_primitives::Bytes {
    let mut data = vec![0x09, 0x5e, 0xa7, 0xb3];
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(spender.as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data.into()
}

fn ask(m: &mut Machine, book: &mut Book, clock: u64, n: u64, p: &SignPayload) -> Result<(), Denial> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    let stamp = Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
    let session = m.facts.address;
    let r = m
        .sign_within(clock, p, prepare(p).expect("prepares"), &stamp, Some(&K), &mut Gate(book, session))
        .result
        .map(|_| ());
    book.publish(session, OWNER, Address::repeat_byte(0xa9), m.holdings(), m.declares());
    r
}

fn redeem(nonce: u64, spender: Address, amount: u64) -> SignPayload {
    payload(&Req::Redeem {
        chain_id: 1,
        nonce,
        manager: MGR,
        entries: vec![(Some(D1), vec![(TOK1, U256::ZERO, approve_data(spender, amount))])],
        gas_limit: 150_000,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 0,
    })
}

fn direct(nonce: u64, spender: Address, amount: u64) -> SignPayload {
    payload(&Req::Tx {
        chain_id: 1,
        nonce,
        to: Some(TOK1),
        value: U256::ZERO,
        data: approve_data(spender, amount),
        gas_limit: 150_000,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 0,
        access_list: vec![],
    })
}

/// An approval of D1's T1 to S1 through a redemption (counted as an add, RULES §5b) and the
/// session's own approval to S2; the owner lowers the ceiling to 30 USD. The agent then
/// revokes D1's approval the only way it can, through a redemption: `approve(S1, 0)` run as
/// D1, recorded as `Add(0)` — a write that changes nothing in any history. It passes (the
/// first form of the rule counted only `Set(0)` as a revocation and refused it).
#[test]
fn a_redemption_revocation_passes_a_ceiling_exceeded() {
    let mut book = Book::new();
    let mut m = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), policy(100), T0, 60, 4096);
    let t = T0 + 10;
    ask(&mut m, &mut book, t, 1, &redeem(0, S1, 60)).expect("D1 approves S1 60 through a redemption");
    ask(&mut m, &mut book, t, 2, &direct(1, S2, 40)).expect("the session approves S2 40");
    assert!(m.update_policy(t + 1, policy(30)).result.is_ok());
    let r = ask(&mut m, &mut book, t + 2, 3, &redeem(2, S1, 0));
    assert!(r.is_ok(), "D1's revocation through a redemption refused: {:?}", r.map_err(|d| d.to_string()));
}
