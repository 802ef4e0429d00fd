//! A review of 2026-12-07 (sweeps), against the real binaries: anyone may ask for an
//! unauthenticated sweep of an expired approval (here the host itself, at a fee of 0 wei per
//! gas, which the policy's fee cap allows) and keep the signed revocation to itself. The
//! enclave then reports the approval `swept`, and the owner's CLI counted it as not
//! outstanding — `approvals: 0 outstanding` — while nothing was broadcast and the spender
//! could still pull the full amount. README: "a host that does not sweep leaves approvals
//! outstanding (the metric and `bridle owner allowances` show them)". The CLI now counts it,
//! and says a revocation was signed, not known mined.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::*;
use bridle_tests::cli::Cli;
use bridle_tests::*;

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");

fn text() -> String {
    format!(
        r#"
name = "unbroadcast"
chains = [{CHAIN}]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "5000 USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
lifetime = "1m"
spenders = ["{ROUTER}"]
max = ["1000 USDC"]
"#
    )
}

#[tokio::test]
async fn a_sweep_nobody_broadcasts_leaves_the_approval_outstanding() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text())).await.expect("grant");
    let r = s.sign(&g, erc20_approve(CHAIN, 0, USDC, ROUTER, U256::from(1_000_000_000u64))).await;
    assert_eq!(r.0, 200, "{}", r.1);
    s.enclave.set_clock_offset(120);
    // The host (or anyone) asks for the sweep at 0 wei per gas — it can never be mined — and
    // keeps it: nothing is broadcast.
    let terms = SweepTerms { max_fee_per_gas: 0, max_priority_fee_per_gas: 0, ..sweep_terms(CHAIN, 1) };
    let r = s.sweep(&g, vec![terms], false).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["transactions"].as_array().map(|a| a.len()), Some(1), "{}", r.1);

    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::new(dir.path(), &s.host.url);
    cli.pin(&s.enclave.identity_key_hex());
    let session = g.session.to_string();
    let status = cli.ok(&["owner", "status", "--session", &session]);
    let allowances = cli.ok(&["owner", "allowances", "--session", &session]);
    // The approval of 1000 USDC is live on chain (nothing was broadcast, and a fee of 0 is
    // never mined): the owner's tools count it as outstanding.
    assert!(
        status.contains("approvals:  1 outstanding (1 with a revocation signed, not known mined) of 1 recorded"),
        "{status}"
    );
    assert!(allowances.contains("swept (revocation signed, not known mined) 1000 USDC"), "{allowances}");
}
