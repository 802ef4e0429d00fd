//! A review of 2026-12-07: the account-executing list gained the Delegation Framework's
//! earlier redemption forms, but other well-known contracts through which a session makes
//! *someone else's* account run calls were still covered by a wildcard target (now refused,
//! RULES §5):
//!
//! * Zodiac Roles modifier (v2 and v1): `execTransactionWithRole(...)` and
//!   `execTransactionWithRoleReturnData(...)` — a role member (the session) makes the Safe
//!   behind the modifier run any call its role allows (`execTransactionFromModule` on the
//!   same modifier is listed, these are not).
//! * Safe's AllowanceModule: `executeAllowanceTransfer(...)` — the delegate (the session,
//!   with an empty signature: the module then takes msg.sender as the delegate) moves the
//!   Safe's tokens to any address.
//!
//! Same class as the fix: the delegator's (the Safe's) USDC moves to a stranger with nothing
//! charged against a 100 USDC/day cap.

use alloy_primitives::{address, Address, Bytes, FixedBytes, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    /// Zodiac Roles v2 (roles-modifier `Roles.sol`).
    function execTransactionWithRole(address to, uint256 value, bytes data, uint8 operation, bytes32 roleKey, bool shouldRevert) returns (bool);
    function execTransactionWithRoleReturnData(address to, uint256 value, bytes data, uint8 operation, bytes32 roleKey, bool shouldRevert) returns (bool, bytes);
    /// Safe AllowanceModule.
    function executeAllowanceTransfer(address safe, address token, address to, uint96 amount, address paymentToken, uint96 payment, address delegate, bytes signature);
}

mod v1 {
    alloy_sol_types::sol! {
        /// Zodiac Roles v1 (uint16 role).
        function execTransactionWithRole(address to, uint256 value, bytes data, uint8 operation, uint16 role, bool shouldRevert) returns (bool);
    }
}

const NOW: u64 = 1_800_000_000;
const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const ROLES: Address = address!("0000000000000000000000000000000000001234");
const ALLOWANCE_MODULE: Address = address!("cfbfac74c26f8647cbdb8c5caf80bb5b32e43134");
const SAFE: Address = address!("0000000000000000000000000000000000005afe");
const THIEF: Address = address!("0000000000000000000000000000000000000bad");

fn policy() -> CompiledPolicy {
    let text = format!(
        r#"name = "wild"
chains = [1]
valid_for = "24h"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
recipients = ["$account"]
max_value_per_call = "0 ETH"
[[calls]]
target = "*"
functions = ["*"]
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
"#
    );
    CompiledPolicy::compile(resolve_text(&text, NOW).unwrap_or_else(|d| panic!("{d}")))
        .unwrap_or_else(|d| panic!("{d}"))
}

fn tx(to: Address, data: Vec<u8>) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 300_000,
        to: Some(to),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

fn million_usdc() -> U256 {
    U256::from(1_000_000u64) * U256::from(1_000_000u64)
}

#[test]
fn modules_that_make_a_safe_run_calls_are_refused_through_a_wildcard() {
    let p = policy();
    let ctx = Context { now: NOW + 60, anchor: NOW, owner: OWNER, account: SESSION };
    let c = Counters::new();
    let steal = transferCall { to: THIEF, amount: million_usdc() }.abi_encode();

    // Control: the direct transfer of a million USDC from the session is refused (cap).
    assert!(prepare(&tx(USDC, steal.clone())).unwrap().evaluate(&p, &c, &ctx).is_err());
    // Control: the listed module entry point on the same modifier is refused.
    let listed = {
        alloy_sol_types::sol! { function execTransactionFromModule(address to, uint256 value, bytes data, uint8 operation) returns (bool); }
        execTransactionFromModuleCall { to: USDC, value: U256::ZERO, data: steal.clone().into(), operation: 0 }
            .abi_encode()
    };
    let d = prepare(&tx(ROLES, listed)).unwrap().evaluate(&p, &c, &ctx).unwrap_err();
    assert_eq!(d.code.as_str(), "target_not_allowed", "{d}");

    let cases: Vec<(&str, Address, Vec<u8>)> = vec![
        (
            "Zodiac Roles v2 execTransactionWithRole",
            ROLES,
            execTransactionWithRoleCall {
                to: USDC,
                value: U256::ZERO,
                data: steal.clone().into(),
                operation: 0,
                roleKey: FixedBytes::repeat_byte(1),
                shouldRevert: true,
            }
            .abi_encode(),
        ),
        (
            "Zodiac Roles v2 execTransactionWithRoleReturnData",
            ROLES,
            execTransactionWithRoleReturnDataCall {
                to: USDC,
                value: U256::ZERO,
                data: steal.clone().into(),
                operation: 0,
                roleKey: FixedBytes::repeat_byte(1),
                shouldRevert: true,
            }
            .abi_encode(),
        ),
        (
            "Zodiac Roles v1 execTransactionWithRole",
            ROLES,
            v1::execTransactionWithRoleCall {
                to: USDC,
                value: U256::ZERO,
                data: steal.clone().into(),
                operation: 0,
                role: 1,
                shouldRevert: true,
            }
            .abi_encode(),
        ),
        (
            "Safe AllowanceModule executeAllowanceTransfer",
            ALLOWANCE_MODULE,
            executeAllowanceTransferCall {
                safe: SAFE,
                token: USDC,
                to: THIEF,
                amount: alloy_primitives::Uint::<96, 2>::from(1_000_000u64 * 1_000_000u64),
                paymentToken: Address::ZERO,
                payment: alloy_primitives::Uint::<96, 2>::ZERO,
                delegate: SESSION,
                signature: Bytes::new(),
            }
            .abi_encode(),
        ),
    ];
    let mut signed = Vec::new();
    for (what, to, data) in cases {
        match prepare(&tx(to, data)).unwrap().evaluate(&p, &c, &ctx) {
            Err(d) => assert_eq!(d.code.as_str(), "target_not_allowed", "{what}: {d}"),
            Ok(ch) => signed.push(format!(
                "{what}: signed (the Safe's 1 000 000 USDC to {THIEF}); charged tokens {:?}, native {}",
                ch.tokens, ch.native
            )),
        }
    }
    assert!(signed.is_empty(), "through a wildcard target, against a 100 USDC/day cap:\n{}", signed.join("\n"));
}
