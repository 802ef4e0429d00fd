//! Functions through which a third contract makes someone else's account run calls are
//! account-executing: refused through a wildcard target (RULES §5). Two reviews of
//! 2026-12-07 found them covered by `target = "*"`, each moving a million USDC past a
//! 100 USDC daily cap with nothing charged:
//!
//! * the Delegation Framework's earlier manager (named by the ERC-7710 / ERC-7715 texts:
//!   `redeemDelegation(bytes,(address,uint256,bytes))`, and its batch form) — the root
//!   delegator runs `_action`; RULES §5b already refused the current `redeemDelegations` on
//!   a manager the policy does not list, even through a wildcard;
//! * Zodiac Roles (`execTransactionWithRole`, v2 and v1, `…ReturnData`) — a role member makes
//!   the Safe behind the modifier run any call its role allows;
//! * Safe's AllowanceModule (`executeAllowanceTransfer`) — the delegate moves the Safe's
//!   tokens to any address.

use alloy_primitives::{address, Address, Bytes, FixedBytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolValue};
use bridle_common::delegation::{encode_redemption, single_execution, Delegation, MODE_SINGLE};
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    struct Action { address to; uint256 value; bytes data; }
    /// The Delegation Framework's first DelegationManager (and DeleGator) entry point.
    function redeemDelegation(bytes _data, Action _action);
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
const MANAGER: Address = address!("000000000000000000000000000000000000da7a");
const OLD_MANAGER: Address = address!("000000000000000000000000000000000000da7b");
const DELEGATOR: Address = address!("000000000000000000000000000000000000d001");
const THIEF: Address = address!("0000000000000000000000000000000000000bad");
const ROLES: Address = address!("0000000000000000000000000000000000001234");
const ALLOWANCE_MODULE: Address = address!("cfbfac74c26f8647cbdb8c5caf80bb5b32e43134");
const SAFE: Address = address!("0000000000000000000000000000000000005afe");

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
[delegations]
managers = ["{MANAGER}"]
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

fn chain() -> Vec<Delegation> {
    vec![Delegation {
        delegate: SESSION,
        delegator: DELEGATOR,
        authority: B256::repeat_byte(0xff),
        caveats: vec![],
        salt: U256::from(1),
        signature: Bytes::from(vec![0u8; 65]),
    }]
}

#[test]
fn a_redemption_in_the_earlier_form_is_refused_like_redeem_delegations() {
    let p = policy();
    let ctx = Context { now: NOW + 60, anchor: NOW, owner: OWNER, account: SESSION };
    let c = Counters::new();
    let steal = transferCall { to: THIEF, amount: U256::from(1_000_000u64) * U256::from(1_000_000u64) }.abi_encode();

    // Control: the current form on the unlisted manager is refused, wildcard or not.
    let current = encode_redemption(&[(chain(), MODE_SINGLE, single_execution(USDC, U256::ZERO, &steal))]);
    let d = prepare(&tx(OLD_MANAGER, current)).unwrap().evaluate(&p, &c, &ctx).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("delegations.managers"), "{d}");

    // The earlier form: the delegator runs USDC.transfer(THIEF, 1 000 000 USDC).
    let earlier = redeemDelegationCall {
        _data: chain().abi_encode().into(),
        _action: Action { to: USDC, value: U256::ZERO, data: steal.into() },
    }
    .abi_encode();
    match prepare(&tx(OLD_MANAGER, earlier)).unwrap().evaluate(&p, &c, &ctx) {
        Err(d) => assert_eq!(d.code.as_str(), "target_not_allowed", "{d}"),
        Ok(ch) => panic!(
            "signed: the delegator's 1 000 000 USDC moved to {THIEF} through redeemDelegation(bytes,(address,uint256,bytes)) \
             on an unlisted manager, against a 100 USDC/day cap; charged tokens {:?}, native {}",
            ch.tokens, ch.native
        ),
    }
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
