//! RULES §5 examples: the allowlist, metered functions, tokens on other chains, weight.

mod util;

use alloy_primitives::{Bytes, U256};
use bridle_common::policy::doc::*;
use bridle_model::abi::{addr_word, encode_call};
use bridle_model::{Req, Verdict, ENTRY_POINT_CODES};
use util::*;

fn transfer_and_call(to: alloy_primitives::Address, amount: U256) -> Bytes {
    let mut words = vec![addr_word(to), amount, U256::from(96), U256::ZERO];
    words.truncate(4);
    encode_call("transferAndCall(address,uint256,bytes)", &words).into()
}

#[test]
fn a_listed_token_meters_through_a_star_entry() {
    let mut p = base();
    p.calls = vec![calls(Some(USDC), &["*"])];
    let mut m = model(&p);
    let t = t0();
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert_eq!(
        m.sign(&tx(1, USDC, transfer_and_call(DEAD, usdc(1))), t),
        Verdict::Denied(vec!["selector_not_allowed"])
    );
    // Named by signature on a rule for the token: it passes.
    p.calls.push(calls(Some(USDC), &["transferAndCall(address,uint256,bytes)"]));
    m.update(&p, t).unwrap();
    assert_eq!(m.sign(&tx(1, USDC, transfer_and_call(DEAD, usdc(1))), t), Verdict::Allowed);
}

#[test]
fn the_wildcard_target() {
    let mut p = base();
    p.calls = vec![calls(None, &["*"])];
    let mut m = model(&p);
    let t = t0();
    // A listed token: the metered four pass, others do not.
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert_eq!(
        m.sign(&tx(1, USDC, transfer_and_call(DEAD, usdc(1))), t),
        Verdict::Denied(vec!["selector_not_allowed"])
    );
    // An unlisted contract: token-moving selectors are refused, anything else passes.
    assert_eq!(m.sign(&tx(1, DAI, transfer(DEAD, usdc(1))), t), Verdict::Denied(vec!["target_not_allowed"]));
    assert_denied(m.sign(&tx(1, DAI, transfer_and_call(DEAD, usdc(1))), t), "target_not_allowed");
    let sfa = encode_call("setApprovalForAll(address,bool)", &[addr_word(A), U256::from(1)]);
    assert_denied(m.sign(&tx(1, DAI, sfa.into()), t), "target_not_allowed");
    let other = encode_call("deposit()", &[]);
    assert_eq!(m.sign(&tx(1, DAI, other.into()), t), Verdict::Allowed);
    // Calldata of 1–3 bytes.
    assert_eq!(m.sign(&tx(2, DAI, Bytes::from(vec![1, 2, 3])), t), Verdict::Denied(vec!["selector_not_allowed"]));
    // Contract creation.
    let mut create = tx(2, DAI, Bytes::new());
    if let Req::Tx { to, .. } = &mut create {
        *to = None;
    }
    assert_denied(m.sign(&create, t), "target_not_allowed");
}

#[test]
fn a_token_listed_for_another_chain() {
    let mut p = base();
    p.tokens = vec![token("USDC", USDC, 6, Some(8453))];
    p.calls = vec![calls(Some(USDC), &["transfer(address,uint256)"])];
    p.limits = vec![limit(usdc_asset(), bridle_common::period::Period::Day, usdc(100))];
    let mut m = model(&p);
    let t = t0();
    assert_denied(m.sign(&tx_on(CHAIN, 0, USDC, transfer(DEAD, usdc(500))), t), "target_not_allowed");
    assert_denied(m.sign(&tx_on(8453, 0, USDC, transfer(DEAD, usdc(500))), t), "spend_cap");
    assert_eq!(m.sign(&tx_on(8453, 0, USDC, transfer(DEAD, usdc(100))), t), Verdict::Allowed);
}

#[test]
fn malformed_erc20_calls_are_argument_rejected() {
    let mut m = model(&base());
    let t = t0();
    let mut dirty = transfer(DEAD, usdc(1)).to_vec();
    dirty[5] = 0xff;
    assert_eq!(m.sign(&tx(0, USDC, dirty.into()), t), Verdict::Denied(vec!["argument_rejected"]));
    let mut long = transfer(DEAD, usdc(1)).to_vec();
    long.extend_from_slice(&[0; 32]);
    assert_eq!(m.sign(&tx(0, USDC, long.into()), t), Verdict::Denied(vec!["argument_rejected"]));
}

#[test]
fn recipients_value_and_gas() {
    let mut p = base();
    p.recipients = Some(vec![Party::Owner, Party::Address(A)]);
    p.calls.push(calls(Some(B), &["receive()"]));
    p.calls.push(calls(Some(DEAD), &["receive()"]));
    p.max_value_per_call = Some(U256::from(1000));
    p.gas.max_fee_per_gas = Some(2_000_000_000);
    p.gas.max_gas_limit = Some(200_000);
    let mut m = model(&p);
    let t = t0();
    assert_denied(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t), "recipient_not_allowed");
    assert_eq!(m.sign(&tx(0, USDC, transfer(OWNER, usdc(1))), t), Verdict::Allowed);
    let pay = |to, value: u64, gas_limit: u64| Req::Tx {
        chain_id: CHAIN,
        nonce: 1,
        to: Some(to),
        value: U256::from(value),
        data: Bytes::new(),
        gas_limit,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 0,
        access_list: vec![],
    };
    // B is the target of a specific rule: it may receive value.
    assert_eq!(m.sign(&pay(B, 10, 21_000), t), Verdict::Allowed);
    assert_eq!(m.sign(&pay(B, 1001, 21_000), t), Verdict::Denied(vec!["value_cap"]));
    assert_eq!(m.sign(&pay(B, 10, 200_001), t), Verdict::Denied(vec!["gas_cap"]));
    // A plain value transfer to a non-recipient without a rule.
    assert_denied(m.sign(&pay(A, 10, 21_000), t), "target_not_allowed");
}

#[test]
fn gas_cost_counts_in_native_when_asked() {
    let mut p = base();
    p.calls.push(calls(Some(DEAD), &["receive()"]));
    p.gas.count_in_native = true;
    p.limits = vec![limit(Asset::Native, bridle_common::period::Period::Day, U256::from(250_000_000_000_000u64))];
    p.gas.cost_limits =
        vec![GasCostLimit { period: bridle_common::period::Period::Hour, max: U256::from(250_000_000_000_000u64) }];
    let mut m = model(&p);
    let t = t0();
    // Each transfer: 100 000 gas × 1 gwei = 1e14 wei of gas, charged to native too.
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t), Verdict::Allowed);
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(1))), t), Verdict::Denied(vec!["gas_cap", "spend_cap"]));
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(1))), t + 3600), Verdict::Denied(vec!["spend_cap"]));
}

#[test]
fn user_operation_weight_counts_in_quota_and_rate_limits() {
    let mut p = base();
    p.user_operations.entry_points = vec![EP];
    p.quota = Some(6);
    p.rate_limits = vec![RateLimit { max: 4, window: 60 }];
    let mut m = model(&p);
    let t = t0();
    let call = || (USDC, U256::ZERO, transfer(DEAD, usdc(1)));
    assert_eq!(m.sign(&userop(0, vec![call(), call(), call()]), t), Verdict::Allowed);
    assert_eq!(m.uses(), 3);
    assert_eq!(m.sign(&userop(1, vec![call(), call()]), t + 1), Verdict::Denied(vec!["rate_limited"]));
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(1))), t + 2), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 3), Verdict::Denied(vec!["rate_limited"]));
    assert_eq!(m.sign(&userop(1, vec![call(), call(), call()]), t + 60), Verdict::Denied(vec!["quota_exhausted"]));
    assert_eq!(m.sign(&userop(1, vec![call(), call()]), t + 60), Verdict::Allowed);
    assert_eq!(m.uses(), 6);
    assert_eq!(m.sign(&tx(1, USDC, transfer(DEAD, usdc(1))), t + 200), Verdict::Denied(vec!["quota_exhausted"]));
    // An inner call that fails fails the whole operation.
    let mut q = p.clone();
    q.quota = None;
    m.update(&q, t + 201).unwrap();
    assert_denied(
        m.sign(&userop(2, vec![call(), (DAI, U256::ZERO, transfer(DEAD, usdc(1)))]), t + 201),
        "target_not_allowed",
    );
}

#[test]
fn user_operations_need_a_listed_entry_point() {
    let mut m = model(&base());
    let v = m.sign(&userop(0, vec![(USDC, U256::ZERO, transfer(DEAD, usdc(1)))]), t0());
    let Verdict::Denied(mut codes) = v else { panic!("{v:?}") };
    codes.sort_unstable();
    let mut want = ENTRY_POINT_CODES.to_vec();
    want.sort_unstable();
    assert_eq!(codes, want);
}

#[test]
fn argument_rules_decide_and_rules_outside_the_subset_are_refused() {
    let mut p = base();
    p.calls[0].functions[0].args = vec![
        ArgRule { path: vec![1], op: Op::Lte, values: vec![ArgValue::Uint(usdc(5))] },
        ArgRule { path: vec![0], op: Op::In, values: vec![ArgValue::Owner, ArgValue::Address(DEAD)] },
    ];
    let mut m = model(&p);
    assert_eq!(m.sign(&tx(0, USDC, transfer(DEAD, usdc(5))), t0()), Verdict::Allowed);
    assert_eq!(m.sign(&tx(1, USDC, transfer(OWNER, usdc(1))), t0()), Verdict::Allowed);
    assert_eq!(m.sign(&tx(2, USDC, transfer(DEAD, usdc(6))), t0()), Verdict::Denied(vec!["argument_rejected"]));
    assert_eq!(m.sign(&tx(2, USDC, transfer(ACCOUNT, usdc(1))), t0()), Verdict::Denied(vec!["argument_rejected"]));
    // A second entry of the same function without rules admits what the first refuses.
    p.calls[0].functions.push(calls(None, &["transfer(address,uint256)"]).functions.remove(0));
    assert_eq!(model(&p).sign(&tx(0, USDC, transfer(ACCOUNT, usdc(9))), t0()), Verdict::Allowed);
    // Outside the subset: an ordering on an address.
    p.calls[0].functions[0].args = vec![ArgRule { path: vec![0], op: Op::Lt, values: vec![ArgValue::Owner] }];
    assert!(bridle_model::Model::new(&p, t0(), OWNER, ACCOUNT).is_err());
}

fn plain(nonce: u64, to: alloy_primitives::Address, value: u64) -> Req {
    Req::Tx {
        chain_id: CHAIN,
        nonce,
        to: Some(to),
        value: U256::from(value),
        data: Bytes::new(),
        gas_limit: 21_000,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 0,
        access_list: vec![],
    }
}

#[test]
fn a_plain_value_transfer_passes_the_wildcard_on_a_listed_token() {
    let mut p = base();
    p.calls = vec![calls(None, &["*"])];
    p.limits = vec![limit(Asset::Native, bridle_common::period::Period::Day, U256::from(1000))];
    let mut m = model(&p);
    let t = t0();
    // Empty calldata is native value, not a function of the token.
    assert_eq!(m.sign(&plain(0, USDC, 600), t), Verdict::Allowed);
    assert_eq!(m.spent_in(bridle_model::Ledger::Native, bridle_common::period::Period::Day, t), U256::from(600));
    assert_eq!(m.spent_in(bridle_model::Ledger::Token(USDC), bridle_common::period::Period::Day, t), U256::ZERO);
    // Metered as native value.
    assert_eq!(m.sign(&plain(1, USDC, 401), t), Verdict::Denied(vec!["spend_cap"]));
    // Also through `receive()` on the wildcard, and `*` or `receive()` on a rule for the token.
    for sig in ["receive()", "*"] {
        for target in [None, Some(USDC)] {
            let mut q = p.clone();
            q.calls = vec![calls(target, &[sig])];
            m.update(&q, t).unwrap();
            assert_eq!(m.sign(&plain(1, USDC, 1), t), Verdict::Allowed, "{sig} on {target:?}");
        }
    }
    // A rule for the token that names only `transfer` does not admit it.
    let mut q = p.clone();
    q.calls = vec![calls(Some(USDC), &["transfer(address,uint256)"])];
    m.update(&q, t).unwrap();
    assert_eq!(m.sign(&plain(1, USDC, 1), t), Verdict::Denied(vec!["selector_not_allowed"]));
}

#[test]
fn a_plain_value_transfer_to_permit2_is_decided() {
    let mut p = base();
    p.calls = vec![calls(None, &["*"])];
    let mut m = model(&p);
    assert_eq!(m.sign(&plain(0, bridle_model::PERMIT2, 5), t0()), Verdict::Allowed);
}

#[test]
fn the_token_moving_list_through_the_wildcard() {
    let mut p = base();
    p.calls = vec![calls(None, &["*"])];
    let mut m = model(&p);
    let t = t0();
    let w = |sig: &str, n: usize| -> Bytes {
        let mut words = vec![addr_word(A), addr_word(B), U256::from(1), U256::from(128), U256::ZERO];
        words.truncate(n);
        encode_call(sig, &words).into()
    };
    for (sig, n) in [
        ("transferFromAndCall(address,address,uint256,bytes)", 5),
        ("approveAndCall(address,uint256,bytes)", 4),
        ("approve(address,address,uint160,uint48)", 4),
        ("transferFrom(address,address,uint160,address)", 4),
        ("permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)", 5),
        // Added 2026-12-06 (a review): ERC-1363's short forms, ERC-4626's withdraw/redeem.
        ("approveAndCall(address,uint256)", 2),
        ("transferFromAndCall(address,address,uint256)", 3),
        ("increaseApproval(address,uint256)", 2),
        ("redeem(uint256,address,address)", 3),
    ] {
        assert_eq!(m.sign(&tx(0, DAI, w(sig, n)), t), Verdict::Denied(vec!["target_not_allowed"]), "{sig}");
    }
    // Not on the list: passes.
    assert_eq!(m.sign(&tx(0, DAI, w("deposit(uint256,address)", 2)), t), Verdict::Allowed);
}
