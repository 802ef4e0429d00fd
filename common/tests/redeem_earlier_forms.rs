//! A review of 2026-12-07 (delegation): RULES §5b refuses `redeemDelegations(bytes[],bytes32[],bytes[])`
//! on a manager `delegations.managers` does not list "even through a wildcard target", since
//! the calls it runs as the delegator are not checked. The Delegation Framework's earlier
//! manager (and the ERC-7710 / ERC-7715 texts: "calling its `function
//! redeemDelegation(bytes calldata _data, Action calldata _action)`") redeems through
//! `redeemDelegation(bytes,(address,uint256,bytes))`: same effect — the root delegator runs
//! `_action` — but neither `is_redemption` nor the account-executing list knows the selector,
//! so a wildcard covers it and the delegator's USDC moves with nothing charged.

use alloy_primitives::{address, Address, Bytes, B256, U256};
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
}

const NOW: u64 = 1_800_000_000;
const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const MANAGER: Address = address!("000000000000000000000000000000000000da7a");
const OLD_MANAGER: Address = address!("000000000000000000000000000000000000da7b");
const DELEGATOR: Address = address!("000000000000000000000000000000000000d001");
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
