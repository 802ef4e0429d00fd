//! A review of 2026-12-07: `from-erc7715` stopped on request-level `rules` and `policies` it
//! does not map, but restrictions placed elsewhere were dropped without a word and the
//! policy written was broader than the grant (each now stops the mapping):
//!
//! 1. Per-permission `policies` — the shape of the ERC's first text and of viem's
//!    experimental `grantPermissions` (`permissions: [{type, data, policies: [...]}]`).
//! 2. Per-permission `rules` (the same restriction, placed on the permission).
//! 3. A request-level `rules` / `policies` given as one object instead of an array.
//!
//! Each grant allows at most one call a day (or one payee); the mapped policy signs five
//! transfers of 0.01 ETH to a stranger within a minute.

use alloy_primitives::{address, Address, U256};
use bridle_common::erc7715::map;
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const STRANGER: Address = address!("000000000000000000000000000000000000bEEF");

fn milli_eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(15))
}

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

fn signed(toml: &str, n: u64, each: U256) -> u64 {
    let p = CompiledPolicy::compile(resolve_text(toml, NOW).unwrap_or_else(|d| panic!("{d}\n{toml}")))
        .unwrap_or_else(|d| panic!("{d}\n{toml}"));
    let t = NOW + 60;
    let ctx = Context { now: t, anchor: NOW, owner: OWNER, account: SESSION };
    let mut c = Counters::new();
    let mut ok = 0;
    for k in 0..n {
        if let Ok(ch) = prepare(&tx(k, each)).unwrap().evaluate(&p, &c, &ctx) {
            c.charge(&p, &ch, NOW, t);
            ok += 1;
        }
    }
    ok
}

fn periodic() -> Value {
    json!({"type": "native-token-periodic", "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}})
}

fn one_a_day() -> Value {
    json!([{"type": "rate-limit", "data": {"count": 1, "interval": 86400}}])
}

fn payee() -> Value {
    json!([{"type": "payee", "data": {"addresses": ["0x000000000000000000000000000000000000dEaD"]}}])
}

/// Map `req`; on success, say how broad the written policy is.
fn broader(what: &str, req: Value) -> Option<String> {
    match map(&req.to_string(), &[], NOW, None) {
        Err(_) => None,
        Ok(m) => {
            let n = signed(&m.toml, 5, milli_eth(10));
            Some(format!(
                "{what}: mapped; the policy signed {n} transfers of 0.01 ETH to a stranger within a minute\n  notes: {:?}",
                m.notes
            ))
        }
    }
}

#[test]
fn restrictions_outside_the_request_level_arrays_stop_the_mapping() {
    let mut perm_policies = periodic();
    perm_policies["policies"] = one_a_day();
    let mut perm_rules = periodic();
    perm_rules["rules"] = payee();
    let cases = [
        (
            "per-permission policies (rate-limit 1/day)",
            json!([{"chainId": 1, "expiry": NOW + 3600, "permissions": [perm_policies.clone()]}]),
        ),
        (
            "per-permission policies, singular `permission`",
            json!([{"chainId": 1, "expiry": NOW + 3600, "permission": perm_policies}]),
        ),
        ("per-permission rules (payee)", json!([{"chainId": 1, "expiry": NOW + 3600, "permission": perm_rules}])),
        (
            "request-level rules as one object (payee)",
            json!([{"chainId": 1, "expiry": NOW + 3600, "permission": periodic(), "rules": payee()[0].clone()}]),
        ),
        (
            "request-level policies as one object (rate-limit 1/day)",
            json!([{"chainId": 1, "expiry": NOW + 3600, "permission": periodic(), "policies": one_a_day()[0].clone()}]),
        ),
    ];
    // Control: the same restriction at request level, as an array, stops the mapping.
    let control = json!([{"chainId": 1, "expiry": NOW + 3600, "permission": periodic(), "policies": one_a_day()}]);
    assert!(map(&control.to_string(), &[], NOW, None).is_err());
    let found: Vec<String> = cases.into_iter().filter_map(|(w, r)| broader(w, r)).collect();
    assert!(found.is_empty(), "restrictions dropped without a word:\n{}", found.join("\n"));
}
