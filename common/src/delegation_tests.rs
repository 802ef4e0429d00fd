//! `redeemDelegations` decoding: roots, self-authorization, bounds, canonical encodings.

use super::*;
use crate::error::ErrorCode;
use alloy_primitives::{Bytes, B256, U256};

const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const DELEGATOR: Address = address!("000000000000000000000000000000000000d0d0");
const MIDDLE: Address = address!("000000000000000000000000000000000000beef");
const TOKEN: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");

fn delegation(delegate: Address, delegator: Address) -> Delegation {
    Delegation {
        delegate,
        delegator,
        authority: B256::repeat_byte(0xff),
        caveats: vec![Caveat { enforcer: ALICE, terms: Bytes::from(vec![1, 2]), args: Bytes::new() }],
        salt: U256::from(7),
        signature: Bytes::from(vec![0xab; 65]),
    }
}

fn single() -> Vec<u8> {
    single_execution(TOKEN, U256::ZERO, &[0xa9, 0x05, 0x9c, 0xbb])
}

#[test]
fn the_root_is_the_last_delegator() {
    // Leaf to root: SESSION ← MIDDLE ← DELEGATOR.
    let chain = vec![delegation(SESSION, MIDDLE), delegation(MIDDLE, DELEGATOR)];
    let data = encode_redemption(&[(chain, MODE_SINGLE, single())]);
    let entries = decode_redemption(&data, SESSION).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].root, DELEGATOR);
    assert_eq!(entries[0].calls.len(), 1);
    assert_eq!(entries[0].calls[0].to, Some(TOKEN));
}

#[test]
fn what_would_revert_or_lets_the_redeemer_choose_is_refused() {
    let refused = |data: Vec<u8>, why: &str| {
        let d = decode_redemption(&data, SESSION).unwrap_err();
        assert_eq!(d.code, ErrorCode::ArgumentRejected, "{d}");
        assert!(d.reason.contains(why), "{d}");
    };
    // An empty context: the session would run it itself (it has no code).
    refused(encode_redemption(&[(vec![], MODE_SINGLE, single())]), "empty permission context");
    // The session as the root delegator.
    refused(encode_redemption(&[(vec![delegation(SESSION, SESSION)], MODE_SINGLE, single())]), "session itself");
    // Caveat args: the redeemer's choice.
    let mut d = delegation(SESSION, DELEGATOR);
    d.caveats[0].args = Bytes::from(vec![1]);
    refused(encode_redemption(&[(vec![d], MODE_SINGLE, single())]), "args");
    // An empty batch.
    refused(encode_redemption(&[(vec![delegation(SESSION, DELEGATOR)], MODE_BATCH, batch_execution(&[]))]), "no call");
}

#[test]
fn aliased_offsets_are_refused_before_decoding() {
    // Three executions pointing at one tail: a decoder would copy it three times.
    let data = encode_redemption(&[
        (vec![delegation(SESSION, DELEGATOR)], MODE_SINGLE, single()),
        (vec![delegation(SESSION, DELEGATOR)], MODE_SINGLE, single()),
    ]);
    let args = &data[4..];
    // The third argument (bytes[] executions): its two element offsets; point the second
    // at the first.
    let third = usize::try_from(U256::from_be_slice(&args[64..96])).unwrap();
    let first_off = args[third + 32..third + 64].to_vec();
    let mut aliased = data.clone();
    aliased[4 + third + 64..4 + third + 96].copy_from_slice(&first_off);
    let d = decode_redemption(&aliased, SESSION).unwrap_err();
    assert!(d.reason.contains("canonically"), "{d}");
}

#[test]
fn batches_decode_into_each_call() {
    let batch =
        batch_execution(&[(TOKEN, U256::ZERO, Bytes::from(vec![1, 2, 3, 4])), (ALICE, U256::from(5), Bytes::new())]);
    let data = encode_redemption(&[(vec![delegation(SESSION, DELEGATOR)], MODE_BATCH, batch)]);
    let e = decode_redemption(&data, SESSION).unwrap();
    assert_eq!(e[0].calls.len(), 2);
    assert_eq!(e[0].calls[1].value, U256::from(5));
}

#[test]
fn any_delegate_may_be_redeemed_by_the_session_but_another_delegate_may_not() {
    let ok = encode_redemption(&[(vec![delegation(ANY_DELEGATE, DELEGATOR)], MODE_SINGLE, single())]);
    assert_eq!(decode_redemption(&ok, SESSION).unwrap()[0].root, DELEGATOR);
    let other = encode_redemption(&[(vec![delegation(ALICE, DELEGATOR)], MODE_SINGLE, single())]);
    let d = decode_redemption(&other, SESSION).unwrap_err();
    assert_eq!(d.code, ErrorCode::ArgumentRejected);
    assert!(d.reason.contains("not to the redeemer"), "{d}");
}

#[test]
fn modes_other_than_the_default_single_or_batch_are_refused() {
    let mut try_mode = MODE_SINGLE;
    try_mode[1] = 0x01;
    let mut delegatecall = MODE_SINGLE;
    delegatecall[0] = 0xff;
    let mut selector = MODE_SINGLE;
    selector[6] = 0x01;
    for mode in [try_mode, delegatecall, selector] {
        let data = encode_redemption(&[(vec![delegation(SESSION, DELEGATOR)], mode, single())]);
        let d = decode_redemption(&data, SESSION).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ArgumentRejected, Some("delegations")), "{d}");
        assert!(d.reason.starts_with("entry 0: "), "{d}");
    }
}

#[test]
fn non_canonical_and_mismatched_encodings_are_refused() {
    let good = encode_redemption(&[(vec![delegation(SESSION, DELEGATOR)], MODE_SINGLE, single())]);
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(decode_redemption(&trailing, SESSION).is_err());
    // A permission context with a trailing byte: Solidity would decode it, Bridle does not.
    let mut ctx = vec![delegation(SESSION, DELEGATOR)].abi_encode();
    ctx.push(0);
    let c = redeemDelegationsCall {
        permissionContexts: vec![ctx.into()],
        modes: vec![MODE_SINGLE.into()],
        executionCallDatas: vec![single().into()],
    };
    let d = decode_redemption(&c.abi_encode(), SESSION).unwrap_err();
    assert!(d.reason.contains("canonically"), "{d}");
    // Lengths that differ.
    let c = redeemDelegationsCall {
        permissionContexts: vec![Bytes::new(), Bytes::new()],
        modes: vec![MODE_SINGLE.into()],
        executionCallDatas: vec![single().into()],
    };
    assert!(decode_redemption(&c.abi_encode(), SESSION).is_err());
    // Nothing to redeem.
    assert!(decode_redemption(&encode_redemption(&[]), SESSION).is_err());
    // An empty context must be an empty Delegation[] (its ABI encoding), not empty bytes.
    let c = redeemDelegationsCall {
        permissionContexts: vec![Bytes::new()],
        modes: vec![MODE_SINGLE.into()],
        executionCallDatas: vec![single().into()],
    };
    assert!(decode_redemption(&c.abi_encode(), SESSION).is_err());
}

#[test]
fn bounds_on_entries_and_chains() {
    let many: Vec<_> =
        (0..=MAX_ENTRIES).map(|_| (vec![delegation(SESSION, DELEGATOR)], MODE_SINGLE, single())).collect();
    assert_eq!(decode_redemption(&encode_redemption(&many), SESSION).unwrap_err().code, ErrorCode::TooLarge);
    let long: Vec<_> = (0..=MAX_CHAIN).map(|_| delegation(SESSION, DELEGATOR)).collect();
    let data = encode_redemption(&[(long, MODE_SINGLE, single())]);
    assert_eq!(decode_redemption(&data, SESSION).unwrap_err().code, ErrorCode::TooLarge);
}

#[test]
fn random_bytes_never_panic() {
    let good = encode_redemption(&[(
        vec![delegation(SESSION, DELEGATOR)],
        MODE_BATCH,
        batch_execution(&[(TOKEN, U256::ZERO, Bytes::from(vec![1, 2, 3, 4]))]),
    )]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3_000 {
        let mut d = good.clone();
        for _ in 0..(next() % 8) {
            let i = (next() as usize) % d.len();
            d[i] = next() as u8;
        }
        d.truncate(4 + (next() as usize) % (d.len() - 3));
        let _ = decode_redemption(&d, SESSION);
    }
}
