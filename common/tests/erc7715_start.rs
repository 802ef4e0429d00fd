//! A review of 2026-12-07: a periodic grant whose `startTime` was already past was mapped
//! with periods counted from the session's start, silently. ERC-7715 periodic
//! permissions (MetaMask's NativeTokenPeriodTransferEnforcer) count periods from
//! `startTime`; with the two misaligned, two full period amounts fit in one of the grant's
//! periods. A grant of 0.1 ETH a day starting 12 h ago: 0.1 ETH at +12 h and 0.1 ETH at
//! +24 h both fall in the grant's period [+12 h, +36 h), and the mapped policy signed both.
//! Such a start, not a whole number of periods ago, now stops the mapping.

use alloy_primitives::{address, Address, U256};
use bridle_common::erc7715::map;
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};
use serde_json::json;

const NOW: u64 = 1_800_000_000;
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const STRANGER: Address = address!("000000000000000000000000000000000000bEEF");

fn tx(nonce: u64, value: U256) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 21_000,
        to: Some(STRANGER),
        value,
        data: Default::default(),
        access_list: vec![],
    }))
}

#[test]
fn a_past_start_time_keeps_the_grants_periods() {
    let tenth = U256::from(100_000_000_000_000_000u64);
    let start = NOW - 12 * 3600;
    let req = json!([{"chainId": 1, "expiry": NOW + 3 * 86_400, "permission": {"type": "native-token-periodic",
        "data": {"periodAmount": tenth.to_string(), "periodDuration": 86_400, "startTime": start}}}]);
    let m = match map(&req.to_string(), &[], NOW, None) {
        Err(_) => return, // refusing is fine
        Ok(m) => m,
    };
    let p = CompiledPolicy::compile(resolve_text(&m.toml, NOW).unwrap()).unwrap();
    let mut c = Counters::new();
    let mut ok = Vec::new();
    // Both moments lie in the grant's second period [start + 1 day, start + 2 days).
    for (k, t) in [NOW + 12 * 3600 + 60, NOW + 24 * 3600 + 60].into_iter().enumerate() {
        assert!(t >= start + 86_400 && t < start + 2 * 86_400);
        let ctx = Context { now: t, anchor: NOW, owner: OWNER, account: SESSION };
        let each = tenth * U256::from(9) / U256::from(10); // 0.09 ETH (fees count in the native limits)
        if let Ok(ch) = prepare(&tx(k as u64, each)).unwrap().evaluate(&p, &c, &ctx) {
            c.charge(&p, &ch, NOW, t);
            ok.push(t - NOW);
        }
    }
    assert!(
        ok.len() < 2,
        "0.18 ETH signed within one period of a 0.1 ETH/day grant (at +{:?} s from the grant; the grant's period \
         started at +43200 s)\nnotes: {:#?}\n{}",
        ok,
        m.notes,
        m.toml
    );
}
