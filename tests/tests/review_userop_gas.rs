//! A user operation's gas paid to the agent (a review of 2026-12-07 of user-operation
//! encodings): the account pays a user operation's gas to the EntryPoint and from there to
//! the `beneficiary` that `handleOps` names — anyone may call `handleOps`, so the agent can
//! bundle its own operations. `preVerificationGas` is paid in full whatever is used, at the
//! operation's own gas price. Bridle charged a user operation's gas as a transaction's (to
//! the gas-cost ledger; to native caps only under `gas.count_in_native`), but a
//! transaction's gas goes to the block producer, and this went to the agent: five
//! operations paid it 88 times the daily native cap, one without gas caps 0.9 ETH of the
//! account's 1 ETH. A user operation without a paymaster now charges its maximum gas cost to
//! the native line (RULES §3). Real enclave and host, the real EntryPoint v0.7 and
//! SimpleAccount on anvil (`npm ci --prefix tests/fixtures/userop`).

use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::SolCall;
use bridle_common::protocol::SignPayload;
use bridle_common::userop::{encode, EntryPointVersion, UserOperationRequest};
use bridle_tests::aa::{self, EntryPoint};
use bridle_tests::*;

const RECIPIENT: Address = address!("00000000000000000000000000000000000b0b00");
/// The agent's own address as the bundle's beneficiary.
const AGENT_BUNDLER: Address = address!("0000000000000000000000000000000000bad000");

fn tusd(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// Anvil, the EntryPoint, a token, and a session whose SimpleAccount (deployed, 1 ETH
/// deposited, 1 000 TUSD) may move 100 TUSD and 0.001 ETH a day, with `gas` rules.
async fn world(gas: &str) -> (Anvil, EntryPoint, Address, Stack, Granted, Address) {
    aa::fixtures();
    let anvil = Anvil::start();
    let ep = EntryPoint::deploy(&anvil, EntryPointVersion::V07).await;
    let token = anvil.deploy_erc20().await;
    let text = format!(
        r#"
name = "gas-to-bundler"
chains = [31337]
valid_for = "1h"
[tokens]
TUSD = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "TUSD"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 TUSD"
per = "day"
[[limits]]
max = "0.001 ETH"
per = "day"
{gas}
[user_operations]
entry_points = ["{}"]
"#,
        ep.address
    );
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let sender = ep.simple_account(&anvil, g.session).await;
    let create = aa::createAccountCall { owner: g.session, salt: U256::ZERO }.abi_encode();
    anvil.call_from_dev(ep.factory, create, U256::ZERO).await;
    anvil.mint(token, sender, tusd(1000)).await;
    (anvil, ep, token, s, g, sender)
}

/// A user operation moving 1 TUSD, with `pvg` of preVerificationGas at `gwei` a gas.
fn transfer_op(
    ep: &EntryPoint,
    sender: Address,
    token: Address,
    nonce: u64,
    pvg: u64,
    gwei: u128,
) -> UserOperationRequest {
    let call = aa::transfer_data(RECIPIENT, tusd(1));
    let mut op = ep.op(sender, nonce, encode::simple_execute(token, U256::ZERO, call));
    op.call_gas_limit = 100_000;
    op.verification_gas_limit = 150_000;
    op.pre_verification_gas = U256::from(pvg);
    op.max_fee_per_gas = gwei * 1_000_000_000;
    op.max_priority_fee_per_gas = gwei * 1_000_000_000;
    op
}

/// The agent, as its own bundler, is paid at most the native cap: an operation whose
/// prefund passes it is refused; modest ones are signed while their prefunds fit the day's.
#[tokio::test]
async fn an_agent_bundling_its_own_user_operations_is_paid_no_more_than_the_native_cap() {
    let (anvil, ep, token, s, g, sender) =
        world("[gas]\nmax_fee_per_gas = \"10 gwei\"\nmax_priority_fee_per_gas = \"10 gwei\"\nmax_gas_limit = 2000000")
            .await;
    // preVerificationGas inflated to the gas-limit cap: ≈ 0.0195 ETH of prefund.
    let op = transfer_op(&ep, sender, token, 0, 1_700_000, 10);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op)).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "spend_cap", Some("limits[1]")), "{v}");
    // 300 000 gas at 1 gwei: 0.0003 ETH of prefund each; three fit 0.001 ETH a day.
    let before = anvil.eth_balance(AGENT_BUNDLER).await;
    let mut signed = 0;
    for n in 0..5u64 {
        let op = transfer_op(&ep, sender, token, n, 50_000, 1);
        let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op.clone())).await;
        if c != 200 {
            assert_eq!((code(&v), v["error"]["rule"].as_str()), ("spend_cap", Some("limits[1]")), "{v}");
            break;
        }
        signed += 1;
        let sig: Bytes = serde_json::from_value(v["signature"].clone()).unwrap();
        let want = ep.user_op_hash(&anvil, &op).await;
        let (ok, _) = aa::handle_ops_paying(&anvil, ep.address, &op, sig, want, AGENT_BUNDLER).await;
        assert!(ok, "execution failed");
    }
    assert_eq!(signed, 3, "three prefunds of 0.0003 ETH fit 0.001 ETH a day, a fourth does not");
    assert_eq!(anvil.token_balance(token, RECIPIENT).await, tusd(3));
    let got = anvil.eth_balance(AGENT_BUNDLER).await - before;
    assert!(got <= U256::from(1_000_000_000_000_000u64), "the agent was paid {got} wei under 0.001 ETH a day");
}

/// Without gas caps (none is required): one operation moving 1 TUSD with 90 M of
/// preVerificationGas paid the agent 0.9 ETH of the account's 1 ETH; now refused.
#[tokio::test]
async fn one_user_operation_without_gas_caps_cannot_pay_the_agent_the_accounts_balance() {
    let (_anvil, ep, token, s, g, sender) = world("").await;
    let op = transfer_op(&ep, sender, token, 0, 90_000_000, 10);
    let (c, v) = s.sign_payload(&g, SignPayload::UserOperation(op)).await;
    assert_eq!((c, code(&v), v["error"]["rule"].as_str()), (403, "spend_cap", Some("limits[1]")), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap_or("").contains("asking 0.9025 ETH"), "{v}");
}
