//! A native ERC-7715 grant imported (`bridle policy from-erc7715`) caps what the session
//! pays in fees (a review of 2026-12-06): the grant says nothing of fees — under ERC-7715
//! whoever redeems pays them — but a session pays its own, so before the fix a "0.1 ETH per
//! day" grant let three transactions pay 63 ETH of priority fees in a day.

use alloy_primitives::{address, Address, U256};
use bridle_common::erc7715::map;
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};

const NOW: u64 = 1_800_000_000;
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const PAYEE: Address = address!("000000000000000000000000000000000000bEEF");

fn eth_milli(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(15))
}

fn tx(nonce: u64, value: U256, fee_per_gas: u128) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: fee_per_gas,
        max_priority_fee_per_gas: fee_per_gas,
        gas_limit: 21_000,
        to: Some(PAYEE),
        value,
        data: Default::default(),
        access_list: vec![],
    }))
}

const GRANT: &str = r#"{"chainId": 1, "expiry": 1800086400,
  "permission": {"type": "native-token-periodic",
                 "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}}}"#;

#[test]
fn a_native_grant_imported_caps_and_counts_the_fees_the_session_pays() {
    let m = map(GRANT, &[], NOW, None).unwrap();
    let p = CompiledPolicy::compile(resolve_text(&m.toml, NOW).unwrap()).unwrap();
    assert!(p.doc.gas.count_in_native && !p.doc.gas.cost_limits.is_empty(), "{}", m.toml);
    assert!(m.notes.iter().any(|n| n.contains("fees are not part of an ERC-7715 grant")), "{:?}", m.notes);
    let ctx = Context { now: NOW + 60, anchor: NOW, owner: OWNER, account: SESSION };
    let c = Counters::new();
    // 1 000 000 gwei per gas (21 ETH for 21 000 gas): past the fee cap.
    let d = prepare(&tx(0, U256::ZERO, 1_000_000_000_000_000)).unwrap().evaluate(&p, &c, &ctx).unwrap_err();
    assert_eq!(d.code, bridle_common::error::ErrorCode::GasCap, "{d}");
    // Within the caps, the fee counts against the grant's 0.1 ETH a day: 0.1 ETH of value
    // plus any fee is past it; 0.09 ETH and its fee (2 gwei × 21 000 gas) are not.
    let d = prepare(&tx(0, eth_milli(100), 2_000_000_000)).unwrap().evaluate(&p, &c, &ctx).unwrap_err();
    assert_eq!(d.code, bridle_common::error::ErrorCode::SpendCap, "{d}");
    prepare(&tx(0, eth_milli(90), 2_000_000_000)).unwrap().evaluate(&p, &c, &ctx).expect("within the grant");
}
