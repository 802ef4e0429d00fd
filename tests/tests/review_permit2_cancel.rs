//! A Permit2 permit on a chain whose blocks may be stamped in the past (OP Mainnet, 10) is
//! settled only by cancelling its nonce: the owner's sweep through the real `bridle` CLI,
//! host and enclave signs Permit2's `invalidateNonces` before the revocation, the CLI checks
//! both transactions, and once a later transaction needs them mined the permit no longer
//! counts against the exposure ceiling (before, it counted for the session's life).

use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::SolCall;
use bridle_model::Req;
use bridle_tests::differential::payload;
use bridle_tests::review::{fresh_nonce, World};
use bridle_tests::*;
use serde_json::Value;

const USDC: Address = address!("0b2C639c533813f4Aa9D7837CAf62653d097Ff85");
const ROUTER: Address = address!("00000000000000000000000000000000000000e1");
const POOL: Address = address!("00000000000000000000000000000000000000e2");
const PERMIT2: Address = bridle_common::typed::PERMIT2;

alloy_sol_types::sol! {
    function invalidateNonces(address token, address spender, uint48 newNonce);
    function approve(address token, address spender, uint160 amount, uint48 expiration);
}

fn policy_text() -> String {
    format!(
        r#"
name = "review-permit2-cancel"
chains = [10]
valid_for = "24h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "60 USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["{ROUTER}", "{POOL}"]
max = ["50 USDC"]
[[permits]]
kind = "permit2"
max_deadline = "30m"
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 1000000
"#
    )
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn decode(raw: &str) -> (Address, Bytes, u64) {
    use alloy_consensus::Transaction;
    use alloy_eips::eip2718::Decodable2718;
    let bytes: Bytes = raw.parse().unwrap();
    let env = alloy_consensus::TxEnvelope::decode_2718(&mut &bytes[..]).unwrap();
    (env.to().unwrap(), env.input().clone(), env.nonce())
}

#[tokio::test]
async fn the_owners_sweep_cancels_a_permit2_permit_and_frees_the_ceiling() {
    let w = World::start(&policy_text());
    let g = w.grant().await;
    let t = now();
    let permit = payload(&Req::Permit2 {
        chain_id: 10,
        contract: PERMIT2,
        spender: ROUTER,
        details: vec![(USDC, usdc(40), t + 600)],
        sig_deadline: t + 300,
        batch: false,
    });
    let (c, v) = w.stack.sign_payload(&g, permit).await;
    assert_eq!(c, 200, "{v}");
    // 40 + 40 USD is over the ceiling while the permit may be used.
    let (c, v) = w.stack.sign(&g, erc20_approve(10, 0, USDC, POOL, usdc(40))).await;
    assert_eq!((c, code(&v)), (403, "exposure_ceiling"), "{v}");

    // The owner's sweep from nonce 0, checked by the CLI before it prints anything.
    let s = g.session.to_string();
    let sweep = |extra: &[&str]| {
        let owner_nonce = fresh_nonce();
        let mut args =
            vec!["owner", "sweep", "--session", &s, "--key", "owner.key", "--chain-id", "10", "--nonce", "0"];
        args.extend(["--max-fee", "2 gwei", "--owner-nonce", &owner_nonce]);
        args.extend(extra);
        w.cli.ok(&args)
    };
    let out = sweep(&["--json"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["verified"], true, "{r}");
    let txs = r["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2, "{r}");
    // Nonce 0: invalidateNonces(USDC, ROUTER, 2) on Permit2 (Permit2's nonce is 1 at most).
    let (to, input, nonce) = decode(txs[0]["raw_transaction"].as_str().unwrap());
    let call = invalidateNoncesCall::abi_decode(&input).unwrap();
    assert_eq!(
        (to, nonce, call.token, call.spender, u64::try_from(call.newNonce).unwrap()),
        (PERMIT2, 0, USDC, ROUTER, 2)
    );
    assert_eq!(txs[0]["invalidate_nonce"], 2, "{r}");
    // Nonce 1: Permit2 approve(USDC, ROUTER, 0, 0).
    let (to, input, nonce) = decode(txs[1]["raw_transaction"].as_str().unwrap());
    let call = approveCall::abi_decode(&input).unwrap();
    assert_eq!((to, nonce, call.token, call.spender), (PERMIT2, 1, USDC, ROUTER));
    assert!(call.amount.is_zero() && call.expiration.is_zero());
    assert!(txs[1].get("invalidate_nonce").is_none(), "{r}");
    // Signed by the session, as eth-account reads them.
    for tx in txs {
        let raw: Bytes = tx["raw_transaction"].as_str().unwrap().parse().unwrap();
        assert_eq!(recover_raw_eth_account(&raw), g.session);
    }
    // The human output names the cancellation.
    let out = sweep(&[]);
    assert!(out.contains("invalidateNonces(") && out.contains("cancels its Permit2 permits"), "{out}");

    // The entry: swept, its permits cancelled at 0 and revoked at 1.
    let list = w.stack.allowances(&g).await;
    let e = list["allowances"].as_array().unwrap().iter().find(|a| a["spender"] == serde_json::json!(ROUTER)).cloned();
    let e = e.unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (e["state"].as_str(), e["cancelled_at_nonce"].as_u64(), e["swept_at_nonce"].as_u64()),
        (Some("swept"), Some(0), Some(1)),
        "{e}"
    );
    // A transaction after both is mined only once they are: the permit no longer counts.
    let (c, v) = w.stack.sign(&g, erc20_approve(10, 2, USDC, POOL, usdc(40))).await;
    assert_eq!(c, 200, "{v}");
}
