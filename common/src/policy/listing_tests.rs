//! A token is its address (RULES §3): one address listed once per chain is one asset, and
//! every limit, stream and threshold naming either listing sees what the other is charged.

use super::*;
use crate::allowance::Place;
use crate::error::ErrorCode;
use crate::period::parse_time;
use crate::tx::Call;
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
}

const TOKEN: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

/// A review of 2026-12-04: a transfer on chain 10, charged under that chain's listing,
/// passed the limit written against chain 1's listing of the same address.
#[test]
fn a_limit_on_one_listing_of_an_address_meters_the_other_chains_listing() {
    let text = format!(
        r#"
name = "two listings"
chains = [1, 10]
valid_for = "24h"
[tokens]
USDC = {{ address = "{TOKEN}", decimals = 6, chain_id = 1 }}
USDCOP = {{ address = "{TOKEN}", decimals = 6, chain_id = 10 }}
[[calls]]
target = "USDCOP"
functions = ["transfer(address,uint256)"]
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
"#
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap_or_else(|d| panic!("{d}"));
    let c = Counters::new();
    let ctx = Context { now: t0() + 5, anchor: t0(), owner: Address::ZERO, account: ACCOUNT };
    let ask = |chain_id: u64, n: u64| {
        let data = transferCall { to: ALICE, amount: U256::from(n) * U256::from(1_000_000u64) }.abi_encode();
        let calls = [Call { to: Some(TOKEN), value: U256::ZERO, data: Bytes::from(data) }];
        let op =
            Operation { chain_id, calls: &calls, gas: None, place: Place::Own { chain_id, nonce: 0 }, holder: ACCOUNT };
        evaluate(&p, &c, &ctx, &op)
    };
    ask(1, 100).expect("100 on chain 1");
    ask(10, 100).expect("100 on chain 10");
    for chain in [1, 10] {
        let d = ask(chain, 1_000_000).expect_err("a million past the cap");
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::SpendCap, Some("limits[0]")), "chain {chain}: {d:?}");
    }
}

/// A review of 2026-12-06: listed at 6 decimals on one chain and 18 on another, one address
/// added raw amounts in both units, so a million of the 6-decimal listing passed a limit of
/// 100 written in the 18-decimal one. Listings of one address must agree on decimals.
#[test]
fn listings_of_one_address_in_different_decimals_are_refused() {
    let text = |decimals_op: u8| {
        format!(
            r#"
name = "two listings"
chains = [1, 10]
valid_for = "24h"
[tokens]
USDC = {{ address = "{TOKEN}", decimals = 6, chain_id = 1 }}
USDCOP = {{ address = "{TOKEN}", decimals = {decimals_op}, chain_id = 10 }}
[[limits]]
max = "100 USDCOP"
per = "day"
"#
        )
    };
    let d = CompiledPolicy::compile(file::resolve_text(&text(18), t0()).unwrap()).expect_err("6 and 18 decimals");
    assert_eq!(d.code, ErrorCode::InvalidPolicy, "{d}");
    assert_eq!(d.rule.as_deref(), Some("tokens[1]"), "{d}");
    assert!(d.reason.contains("18 decimals here and 6 in tokens[0]"), "{d}");
    CompiledPolicy::compile(file::resolve_text(&text(6), t0()).unwrap()).expect("the same decimals");
}
