//! Functions a policy may not name on a specific target (AG-212 4.1, 4.3, 4.9; reviews of
//! 2026-12-07). On a listed token, only functions that move nothing past the engine are
//! nameable — the four it meters (`transfer`, `transferFrom`, `approve`,
//! `increaseAllowance`), `decreaseAllowance`, a permit's submission, WETH's `deposit` and
//! `withdraw`, a governance token's `delegate`: any other (`increaseApproval(s, 2^256 − 1)`,
//! `transferAndCall`, ERC-223's `transfer`, an OFT's `send`, `multicall`) could move or approve
//! the token past every cap, the allowance registry and the exposure ceiling. On any other
//! contract, a function that grants an approval the engine does not decode is refused (list
//! the token under `tokens` to meter its approvals; ERC-20's own `approve` and
//! `increaseAllowance` are decoded on any contract and refused there when signed), but
//! Permit2's `approve` on a Permit2 contract (the canonical one or one a permit rule names),
//! which the engine meters.

use super::calls::permit2::approveCall;
use super::compile::invalid;
use super::selectors::selectors_of;
use crate::error::Denial;
use alloy_sol_types::SolCall;
use std::sync::OnceLock;

/// Functions that grant an approval or an operator, other than ERC-20's `approve` and
/// `increaseAllowance`.
pub const APPROVING: &[&str] = &[
    "increaseApproval(address,uint256)",
    "approveAndCall(address,uint256,bytes)",
    "approveAndCall(address,uint256)",
    "setApprovalForAll(address,bool)",
    "authorizeOperator(address)",
    "approve(address,uint256,uint256)",
    "setOperator(address,bool)",
    "approve(address,address,uint160,uint48)",
];

/// What a rule may name on a listed token.
const NAMEABLE_ON_TOKEN: &[&str] = &[
    "transfer(address,uint256)",
    "transferFrom(address,address,uint256)",
    "approve(address,uint256)",
    "increaseAllowance(address,uint256)",
    "decreaseAllowance(address,uint256)",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",
    "deposit()",
    "withdraw(uint256)",
    "delegate(address)",
];

/// The selectors of [`APPROVING`].
pub fn approving_selectors() -> &'static [[u8; 4]] {
    static S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    S.get_or_init(|| selectors_of(APPROVING))
}

/// Refuse `signature` (selector `sel`) named in rule `rule` on a target that is the listed
/// token `listed` (its symbol), a Permit2 contract the policy knows (`permit2`), or another
/// contract.
pub(super) fn refuse_named(
    listed: Option<&str>,
    permit2: bool,
    sel: [u8; 4],
    signature: &str,
    rule: &str,
) -> Result<(), Denial> {
    static NAMEABLE: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    let nameable = NAMEABLE.get_or_init(|| selectors_of(NAMEABLE_ON_TOKEN));
    match listed {
        Some(symbol) if !nameable.contains(&sel) => Err(invalid(
            rule,
            format!(
                "`{}` on the listed token {symbol} could move or approve it past every cap, the allowance registry and the exposure ceiling: on a listed token a rule may name only {} (AG-212 4.1)",
                signature.trim(),
                NAMEABLE_ON_TOKEN.join(", ")
            ),
        )),
        None if approving_selectors().contains(&sel) && !(permit2 && sel == approveCall::SELECTOR) => {
            Err(invalid(
                rule,
                format!(
                    "`{}` grants an approval no cap, registry or ceiling can see on a contract not listed under tokens: list the token (with an approval cap) to meter its approvals (AG-212 4.1, 4.3)",
                    signature.trim()
                ),
            ))
        }
        _ => Ok(()),
    }
}
