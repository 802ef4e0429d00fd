//! In-process twin of `tests/tests/review_ceiling_span.rs` (a review of 2026-12-07; each
//! test failed before the fix): the "without it" figure an exposure ceiling compared a
//! request with summed each key's worst case over different histories, so a replacement at
//! a nonce, gaps filled below later approvals or a permit could make separate worst cases
//! real at once, past the ceiling — the session's own (`policy::exposure::check_allowances`)
//! and the owner-wide one (`allowance::aggregate::Book::check`), driven as the enclave
//! drives them. Now every request that makes a new state possible is checked against the
//! figure with it alone (RULES §6).
use alloy_primitives::{address, Address, U256};
use bridle_common::allowance::aggregate::Book;
use bridle_common::error::ErrorCode;
use bridle_common::machine::Machine;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};

mod support;
use support::{ask, OWNER};

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");

fn spender(i: u8) -> Address {
    Address::with_last_byte(0x40 + i)
}

fn text(extra: &str) -> String {
    let spenders: Vec<String> = (0..10).map(|i| format!("\"{}\"", spender(i))).collect();
    format!(
        r#"
name = "exposure-span"
chains = [1]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
{extra}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = [{}]
max = ["1000 USDC"]
"#,
        spenders.join(", ")
    )
}

fn machine(addr: u8, extra: &str) -> Machine {
    let p = CompiledPolicy::compile(resolve_text(&text(extra), T0).expect("policy")).expect("compiles");
    Machine::new(Address::repeat_byte(addr), OWNER, Address::repeat_byte(0xa9), p, T0, 60, 4096)
}

fn approve(nonce: u64, who: Address, usdc: u64) -> SignPayload {
    let mut data = vec![0x09, 0x5e, 0xa7, 0xb3];
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(who.as_slice());
    data.extend_from_slice(&(U256::from(usdc) * U256::from(1_000_000u64)).to_be_bytes::<32>());
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

/// One session, `exposure_ceiling = "100 USD"`: approve K1 at 0, revoke K1 at 1, approve K2
/// at 2 (never more than 100 approved at once in any history); then approve K3 at nonce 0.
/// Mined 0 (K3), 1, 2 (K2): 200 USDC approved against 100 USD. Signed.
#[test]
fn a_replacement_past_the_session_ceiling_is_refused() {
    let mut book = Book::new();
    let mut m = machine(0x11, "exposure_ceiling = \"100 USD\"");
    let t = T0 + 10;
    ask(&mut m, &mut book, t, &approve(0, spender(1), 100)).expect("approve K1 at 0");
    ask(&mut m, &mut book, t, &approve(1, spender(1), 0)).expect("revoke K1 at 1");
    ask(&mut m, &mut book, t, &approve(2, spender(2), 100)).expect("approve K2 at 2");
    let fresh = ask(&mut m, &mut book, t, &approve(3, spender(3), 100));
    assert_eq!(fresh.map_err(|d| d.code), Err(ErrorCode::ExposureCeiling), "sanity: a fresh nonce is refused");
    let r = ask(&mut m, &mut book, t, &approve(0, spender(3), 100));
    assert_eq!(
        r.map_err(|d| d.code),
        Err(ErrorCode::ExposureCeiling),
        "signed: nonce 0 (approve K3 100), 1 (approve K1 0), 2 (approve K2 100) leave 200 USDC approved"
    );
}

/// Owner-wide (`owner_exposure_ceiling = "200 USD"`, declared by both sessions): B holds 100;
/// A as above. A's replacement at nonce 0 was signed before the fix: 300 USDC across the owner's sessions.
#[test]
fn a_replacement_past_the_owner_wide_ceiling_is_refused() {
    let mut book = Book::new();
    let extra = "owner_exposure_ceiling = \"200 USD\"";
    let mut a = machine(0x21, extra);
    let mut b = machine(0x22, extra);
    book.publish(a.facts.address, OWNER, a.facts.agent, a.holdings(), a.declares());
    book.publish(b.facts.address, OWNER, b.facts.agent, b.holdings(), b.declares());
    let t = T0 + 10;
    ask(&mut b, &mut book, t, &approve(0, spender(9), 100)).expect("B approves 100");
    ask(&mut a, &mut book, t, &approve(0, spender(1), 100)).expect("approve K1 at 0");
    ask(&mut a, &mut book, t, &approve(1, spender(1), 0)).expect("revoke K1 at 1");
    ask(&mut a, &mut book, t, &approve(2, spender(2), 100)).expect("approve K2 at 2");
    let more = ask(&mut b, &mut book, t, &approve(1, spender(8), 1));
    assert_eq!(more.map_err(|d| d.rule), Err(Some("owner_exposure_ceiling".into())), "sanity: B is at the ceiling");
    let r = ask(&mut a, &mut book, t, &approve(0, spender(3), 100));
    assert_eq!(
        r.map_err(|d| d.rule),
        Err(Some("owner_exposure_ceiling".into())),
        "signed: A's 0 (K3 100), 1, 2 (K2 100) and B's 100: 300 USDC against a 200 USD owner-wide ceiling"
    );
}

/// No replacement, no key raised: nonces 0..4 left unsigned, then at 4.. approve K0,
/// revoke K0, approve K1, …, approve K3 (each within 100 USD); then the gaps 0..4 filled
/// with approve K0 … K3. Each fill raises no key's worst case (`raise_of` → None,
/// `check_allowances` → Ok without a ceiling check); mined 0..4: 400 USDC at once.
#[test]
fn gap_fills_that_raise_no_key_are_checked_against_both_ceilings() {
    const M: u64 = 4;
    let mut book = Book::new();
    let mut a = machine(0x31, "exposure_ceiling = \"100 USD\"\nowner_exposure_ceiling = \"100 USD\"");
    book.publish(a.facts.address, OWNER, a.facts.agent, a.holdings(), a.declares());
    let t = T0 + 10;
    for i in 0..M {
        ask(&mut a, &mut book, t, &approve(M + 2 * i, spender(i as u8), 100)).expect("official approval");
        if i + 1 < M {
            ask(&mut a, &mut book, t, &approve(M + 2 * i + 1, spender(i as u8), 0)).expect("revocation");
        }
    }
    assert!(ask(&mut a, &mut book, t, &approve(3 * M, spender(7), 1)).is_err(), "sanity: at the ceiling");
    let signed = (0..M).filter(|&i| ask(&mut a, &mut book, t, &approve(i, spender(i as u8), 100)).is_ok()).count();
    assert_eq!(
        signed,
        0,
        "{signed} gap fills signed: mined as nonces 0..{M}, {} USDC approved at once against 100 USD ceilings",
        100 * signed
    );
}

fn permit(owner: Address, spender: Address, usdc: u64, deadline: u64) -> SignPayload {
    let value = (U256::from(usdc) * U256::from(1_000_000u64)).to_string();
    SignPayload::TypedData(
        serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}]
            },
            "primaryType": "Permit",
            "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC},
            "message": {"owner": owner, "spender": spender, "value": value, "nonce": 0, "deadline": deadline}
        })
        .to_string(),
    )
}

/// Contiguous nonces, no replacement: approve K0 at 0, revoke K0 at 1, approve K1 at 2
/// (100 USD at most at once), then an EIP-2612 permit of 100 to K0. K0 is already 100 at
/// worst (after nonce 0), so the permit raises no key and passed unchecked before the fix; submitted after
/// nonce 2 is mined (well before its deadline) it holds K0 and K1 at 100 each: 200 USDC.
#[test]
fn a_permit_that_raises_no_key_is_checked_against_the_ceilings() {
    let mut book = Book::new();
    let extra = "exposure_ceiling = \"100 USD\"\nowner_exposure_ceiling = \"100 USD\"\n[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"1h\"";
    let mut a = machine(0x41, extra);
    book.publish(a.facts.address, OWNER, a.facts.agent, a.holdings(), a.declares());
    let t = T0 + 10;
    ask(&mut a, &mut book, t, &approve(0, spender(0), 100)).expect("approve K0 at 0");
    ask(&mut a, &mut book, t, &approve(1, spender(0), 0)).expect("revoke K0 at 1");
    ask(&mut a, &mut book, t, &approve(2, spender(1), 100)).expect("approve K1 at 2");
    assert!(ask(&mut a, &mut book, t, &approve(3, spender(2), 1)).is_err(), "sanity: at the ceiling");
    let me = a.facts.address;
    let r = ask(&mut a, &mut book, t, &permit(me, spender(0), 100, t + 600));
    assert!(
        r.is_err(),
        "signed: the permit to K0, submitted after nonce 2, leaves K0 and K1 at 100 USDC each (200) against 100 USD ceilings"
    );
}

/// What makes no new state possible is never refused by a ceiling, even with the session's
/// figure above it (the owner lowered the ceiling): a fee bump (the same writes at the same
/// nonce), a lower replacement, a revocation at a fresh nonce or in an approval's place.
/// Anything else is checked against the figure with it alone.
#[test]
fn what_makes_no_new_state_passes_a_ceiling_already_exceeded() {
    let mut book = Book::new();
    let mut m = machine(0x31, "exposure_ceiling = \"100 USD\"");
    let t = T0 + 10;
    let bumped = |nonce, who, usdc, fee: u128| match approve(nonce, who, usdc) {
        SignPayload::Transaction(TxRequest::Eip1559(mut tx)) => {
            tx.max_fee_per_gas = fee;
            SignPayload::Transaction(TxRequest::Eip1559(tx))
        }
        _ => unreachable!(),
    };
    ask(&mut m, &mut book, t, &approve(0, spender(1), 100)).expect("approve K1 100 at 0");
    let lower = CompiledPolicy::compile(resolve_text(&text("exposure_ceiling = \"50 USD\""), T0).unwrap()).unwrap();
    assert!(m.update_policy(t + 1, lower).result.is_ok());
    let t = t + 2;
    ask(&mut m, &mut book, t, &bumped(0, spender(1), 100, 2_000_000_000)).expect("a fee bump");
    ask(&mut m, &mut book, t, &approve(0, spender(1), 60)).expect("a lower replacement");
    let d = ask(&mut m, &mut book, t, &approve(0, spender(2), 60)).expect_err("another key in its place");
    assert_eq!(d.code, ErrorCode::ExposureCeiling, "{d}");
    ask(&mut m, &mut book, t, &approve(0, spender(1), 0)).expect("a revocation in the approval's place");
    ask(&mut m, &mut book, t, &approve(1, spender(1), 0)).expect("a revocation at a fresh nonce");
    // Past the certain revocation at nonce 1, K1 counts 0: a new approval within 50 passes,
    // one above it does not.
    ask(&mut m, &mut book, t, &approve(2, spender(2), 40)).expect("within the lowered ceiling");
    let d = ask(&mut m, &mut book, t, &approve(3, spender(3), 20)).expect_err("40 + 20 above 50");
    assert_eq!(d.code, ErrorCode::ExposureCeiling, "{d}");
}
