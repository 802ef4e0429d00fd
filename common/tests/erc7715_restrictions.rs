//! Two reviews of 2026-12-07 (delegation / ERC-7715): `bridle policy from-erc7715` must never
//! write a policy broader than the grant. Each of these failed on the code reviewed: a
//! restriction it does not map (a rule, an ERC-7715 policy — at request level or on a
//! permission, as an array or one object) now stops the mapping, as does a periodic grant
//! started in the past off its period, and a grant without a native permission grants no
//! native value.
//!
//! 1. ERC-7715's `policies` (the ERC's own name for the constraints on top of a permission:
//!    `rate-limit`, `call-limit`, `spent-limit`, `gas-limit`) are dropped without a word.
//! 2. An `expiry` *rule* (MetaMask's Smart Accounts Kit: `rules: [{type: "expiry", data:
//!    {timestamp}}]`) whose timestamp is not an exact integer (a JS `Date.now() / 1000 +
//!    3600`) is dropped and the policy lasts 24 h — the request-level `expiry` in the same
//!    form stops the mapping since 2026-12-07.

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
const PAYEE: Address = address!("000000000000000000000000000000000000bEEF");

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
        to: Some(PAYEE),
        value,
        data: Default::default(),
        access_list: vec![],
    }))
}

fn compile(toml: &str) -> CompiledPolicy {
    CompiledPolicy::compile(resolve_text(toml, NOW).unwrap_or_else(|d| panic!("{d}\n{toml}")))
        .unwrap_or_else(|d| panic!("{d}\n{toml}"))
}

/// Sign `n` transfers of `each` at `t`, charging each; how many were signed.
fn signed(p: &CompiledPolicy, t: u64, n: u64, each: U256) -> u64 {
    let ctx = Context { now: t, anchor: NOW, owner: OWNER, account: SESSION };
    let mut c = Counters::new();
    let mut ok = 0;
    for k in 0..n {
        if let Ok(ch) = prepare(&tx(k, each)).unwrap().evaluate(p, &c, &ctx) {
            c.charge(p, &ch, NOW, t);
            ok += 1;
        }
    }
    ok
}

/// The ERC's own example shape: one `permission` and request-level `policies`. A grant of
/// 0.1 ETH a day, at most one call a day and 0.01 ETH over the whole grant.
#[test]
fn erc7715_policies_are_never_dropped_silently() {
    let req = json!([{
        "chainId": "0x1",
        "expiry": NOW + 7 * 86_400,
        "signer": {"type": "account", "data": {"address": "0x1111111111111111111111111111111111111111"}},
        "permission": {"type": "native-token-periodic",
                       "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}},
        "policies": [
            {"type": "rate-limit", "data": {"count": 1, "interval": 86400}},
            {"type": "call-limit", "data": {"count": 1}},
            {"type": "spent-limit", "data": {"allowance": "0x2386f26fc10000"}}
        ]
    }]);
    // The grant allows one call and 0.01 ETH in all; unmapped, the policy signed five
    // transfers of 0.01 ETH within a minute.
    let e = map(&req.to_string(), &[], NOW, None).expect_err("an unmapped policy stops the mapping");
    assert!(e.contains("request[0].policies[0]") && e.contains("`rate-limit`"), "{e}");
}

/// MetaMask's Smart Accounts Kit expresses expiry as a rule. One hour, given as a float.
#[test]
fn an_expiry_rule_it_cannot_read_stops_the_mapping() {
    let req = json!([{
        "chainId": 1,
        "to": "0x1111111111111111111111111111111111111111",
        "permission": {"type": "native-token-periodic",
                       "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}},
        "rules": [{"type": "expiry", "data": {"timestamp": (NOW as f64) + 3600.5}}]
    }]);
    let e = map(&req.to_string(), &[], NOW, None).expect_err("an expiry rule not read exactly stops the mapping");
    assert!(e.contains("rules[0]") && e.contains("expiry"), "{e}");
    // Its integer form is read, and binds.
    let mut req = req;
    req[0]["rules"][0]["data"]["timestamp"] = json!(NOW + 3600);
    let m = map(&req.to_string(), &[], NOW, None).unwrap();
    let p = compile(&m.toml);
    // Two hours later the grant has expired; the mapped policy still signs.
    let n = signed(&p, NOW + 2 * 3600, 1, milli_eth(10));
    assert_eq!(
        n, 0,
        "a one-hour grant (expiry rule at NOW + 3600.5) mapped to a policy that signs two hours later \
         (valid_until = {:?}).\nnotes: {:#?}\npolicy:\n{}",
        p.doc.valid_until, m.notes, m.toml
    );
}

/// The request-level `expiry` in the same form is refused (the fix of 2026-12-07): the two
/// paths disagree.
#[test]
fn the_request_level_expiry_in_the_same_form_is_refused() {
    let req = json!([{
        "chainId": 1,
        "expiry": (NOW as f64) + 3600.5,
        "permission": {"type": "native-token-periodic",
                       "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}}
    }]);
    assert!(map(&req.to_string(), &[], NOW, None).is_err());
}

/// A `payee` rule (MetaMask: "Restricts payments to specific receiver addresses") is
/// noted as not mapped, and the policy pays anyone; `recipients` expresses it exactly.
#[test]
fn a_payee_rule_binds_the_recipients() {
    let req = json!([{
        "chainId": 1,
        "expiry": NOW + 3600,
        "permission": {"type": "native-token-periodic",
                       "data": {"periodAmount": "100000000000000000", "periodDuration": 86400}},
        "rules": [{"type": "payee", "data": {"addresses": ["0x000000000000000000000000000000000000dEaD"]}}]
    }]);
    // Unmapped, the policy paid anyone (noted only).
    let e = map(&req.to_string(), &[], NOW, None).expect_err("a payee rule stops the mapping");
    assert!(e.contains("rules[0]") && e.contains("`payee`"), "{e}");
}

/// An ERC-20-only grant says nothing of native value, so none is granted; the mapped policy
/// wrote no `max_value_per_call` and no native limit, so the token's `transfer` could carry
/// any value (money moved only on a token whose `transfer` is payable — a low finding: the
/// policy was broader than the grant). It now writes `max_value_per_call = "0 ETH"`.
#[test]
fn an_erc20_grant_grants_no_native_value() {
    use alloy_sol_types::{sol, SolCall};
    sol! { function transfer(address to, uint256 amount) returns (bool); }
    let usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let req = json!([{"chainId": 1, "expiry": NOW + 3600, "permission": {"type": "erc20-token-periodic",
        "data": {"tokenAddress": usdc, "periodAmount": "10000000", "periodDuration": 86400}}}]);
    let m = map(&req.to_string(), &[], NOW, None).unwrap();
    let p = compile(&m.toml);
    let ctx = Context { now: NOW + 60, anchor: NOW, owner: OWNER, account: SESSION };
    let payload = SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 60_000,
        to: Some(usdc.parse().unwrap()),
        value: milli_eth(50_000), // 50 ETH
        data: transferCall { to: PAYEE, amount: U256::from(1u64) }.abi_encode().into(),
        access_list: vec![],
    }));
    let r = prepare(&payload).unwrap().evaluate(&p, &Counters::new(), &ctx);
    assert!(r.is_err(), "an ERC-20 grant's policy signed a token transfer carrying 50 ETH:\n{}", m.toml);
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
            let n = signed(&compile(&m.toml), NOW + 60, 5, milli_eth(10));
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

/// A periodic grant of 0.1 ETH a day that started 12 h ago: its periods are [start + k
/// days), Bridle's count from the session's start, so 0.09 ETH at +12 h and 0.09 ETH at +24 h
/// fell in one of the grant's periods and the mapped policy signed both. Unaligned, refused;
/// a start a whole number of periods ago counts the same periods as the session, and maps.
#[test]
fn a_past_start_time_keeps_the_grants_periods() {
    let tenth = U256::from(100_000_000_000_000_000u64);
    let grant = |start: u64| {
        json!([{"chainId": 1, "expiry": NOW + 3 * 86_400, "permission": {"type": "native-token-periodic",
            "data": {"periodAmount": tenth.to_string(), "periodDuration": 86_400, "startTime": start}}}])
        .to_string()
    };
    let e = map(&grant(NOW - 12 * 3600), &[], NOW, None).expect_err("a start 12 h ago, off its daily period");
    assert!(e.contains("startTime") && e.contains("in the past"), "{e}");
    let m = map(&grant(NOW - 86_400), &[], NOW, None).expect("an aligned past start maps");
    // One period's amount within one of the grant's (and the session's) days.
    let each = tenth * U256::from(6) / U256::from(10);
    assert_eq!(signed(&compile(&m.toml), NOW + 60, 2, each), 1, "{}", m.toml);
}
