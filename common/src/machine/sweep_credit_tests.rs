use super::*;
use crate::allowance::{AllowanceKind, Grant, GrantOp, Registry, Via, PREPAID_PER_APPROVAL};
use alloy_primitives::Address;

fn approval(chain_id: u64) -> (Key, Grant) {
    let key = Key {
        chain_id,
        holder: Address::repeat_byte(1),
        token: Address::repeat_byte(2),
        spender: Address::repeat_byte(3),
        kind: AllowanceKind::Erc20,
    };
    (
        key,
        Grant { key, op: GrantOp::Set(U256::from(5u8)), end: None, token_index: None, via: Via("permit"), nonce: None },
    )
}

fn terms(chain_id: u64) -> SweepTerms {
    SweepTerms { chain_id, nonce: 0, max_fee_per_gas: 1, max_priority_fee_per_gas: 1, gas_limit: 100_000 }
}

/// On credit a sweep adds only what was prepaid: its revocations within the credit, and
/// no chain whose positions the registry does not hold yet (a permit's approval on a
/// chain the session never sent a transaction on: its first there adds them).
#[test]
fn on_credit_a_sweep_adds_only_what_was_prepaid() {
    let mut reg = Registry::default();
    let (k1, g1) = approval(1);
    let (k2, g2) = approval(2);
    let meta = |_: &Grant| (String::new(), 6, 0);
    reg.record(Place::Own { chain_id: 1, nonce: 0 }, 1, vec![g1], false, false, meta).unwrap();
    reg.record(Place::Floating { deadline: 100 }, 1, vec![g2], false, false, meta).unwrap();
    assert_eq!(reg.prepaid(), 2 * PREPAID_PER_APPROVAL);
    let on_1 = [(terms(1), 1, k1, Act::Revoke)];
    assert!(within_credit(&reg, &on_1, 1, true, 0).is_ok());
    assert!(within_credit(&reg, &on_1, 2 * PREPAID_PER_APPROVAL, true, 0).is_ok());
    let d = within_credit(&reg, &on_1, 2 * PREPAID_PER_APPROVAL + 1, true, 0).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("enclave.memory_budget")), "{d}");
    let d = within_credit(&reg, &[(terms(2), 0, k2, Act::Revoke)], 1, true, 0).unwrap_err();
    assert!(d.reason.contains("no transaction on chain 2"), "{d}");
    // Nonce 0 holds the agent's approval: a revocation there would displace it (or
    // whatever settled another key there), so not on credit; nonce 1 is fresh.
    let d = within_credit(&reg, &[(terms(1), 0, k1, Act::Revoke)], 1, true, 0).unwrap_err();
    assert!(d.reason.contains("nonce 0 holds something else"), "{d}");
    // A sweep of k1 at nonce 1, then its fee bump there, on credit; another key's
    // revocation at that nonce is not.
    let revoke = |k: Key| Act::Revoke.grant(&k);
    reg.record(Place::Own { chain_id: 1, nonce: 1 }, 2, vec![revoke(k1)], true, false, meta).unwrap();
    assert!(within_credit(&reg, &[(terms(1), 1, k1, Act::Revoke)], 1, true, 0).is_ok(), "a fee bump");
    let k3 = Key { spender: Address::repeat_byte(9), ..k1 };
    assert!(
        within_credit(&reg, &[(terms(1), 1, k3, Act::Revoke)], 1, true, 0).is_err(),
        "another key in the bump's place"
    );
    assert!(within_credit(&reg, &[(terms(1), 2, k3, Act::Revoke)], 1, true, 0).is_ok());
    // For a registry too full for the owner's sweep (the budget has room), only the writes
    // count: a chain without transactions, or a nonce holding something else, is no matter.
    let d = within_credit(&reg, &on_1, 2 * PREPAID_PER_APPROVAL + 1, false, 0).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("allowances")), "{d}");
    assert!(within_credit(&reg, &[(terms(2), 0, k2, Act::Revoke)], 1, false, 0).is_ok());
    assert!(within_credit(&reg, &[(terms(1), 0, k1, Act::Revoke)], 1, false, 0).is_ok());
}

/// A review of the cancellation: once a slotted chain's ended permits are forgotten, a
/// stuck cancellation must still be bumped at its nonce (no other key may take it), at an
/// `n` no lower than the one signed there.
#[test]
fn a_cancellation_is_bumped_after_its_permits_are_forgotten() {
    let key = Key {
        chain_id: 1,
        holder: Address::repeat_byte(0xcc),
        token: Address::repeat_byte(0x70),
        spender: Address::repeat_byte(0x5e),
        kind: AllowanceKind::Permit2 { contract: Address::repeat_byte(0x22) },
    };
    let mut reg = Registry::default();
    let meta = |_: &Grant| (String::new(), 6, 0);
    reg.record(Place::Own { chain_id: 1, nonce: 0 }, 1, vec![Act::Cancel(7).grant(&key)], true, false, meta).unwrap();
    assert!(!reg.has_cancellable_permits(&key), "no permit left to cancel");
    assert_eq!(sweep_cancel::cancellation(&reg, &key), None, "a fresh sweep signs none");
    assert_eq!(sweep_cancel::bump(&reg, &key, 1, 0), Act::Cancel(8), "the bump still does");
    assert!(Act::Cancel(8).only_at(&reg, 1, 0, &key));
}
