//! Functions a policy may not name on a specific target (AG-212 4.1, 4.3, 4.9; a review of
//! 2026-12-07): on a listed token, any function that moves or approves it other than the
//! four the engine meters (`transfer`, `transferFrom`, `approve`, `increaseAllowance`) —
//! `increaseApproval(s, 2^256 − 1)`, `transferAndCall`, `setApprovalForAll` would move or
//! approve the token past every cap, the allowance registry and the exposure ceiling; on any
//! other contract, a function that grants an approval — an allowance no cap, registry or
//! ceiling could see (list the token under `tokens` to meter its approvals; ERC-20's own
//! `approve` and `increaseAllowance` are refused there when signed). A permit's
//! submission (`permit(…)`) is not refused: it approves for whoever signed it, and the
//! session's own permits are bounded when it signs them.

use super::compile::invalid;
use crate::error::Denial;
use alloy_primitives::keccak256;
use std::sync::OnceLock;

/// Functions that grant an approval or an operator, other than ERC-20's `approve` and
/// `increaseAllowance` — which the engine decodes on any contract and refuses on one not
/// listed (`unlimited_approval`: no cap bounds it).
const APPROVING: &[&str] = &[
    "increaseApproval(address,uint256)",
    "approveAndCall(address,uint256,bytes)",
    "approveAndCall(address,uint256)",
    "setApprovalForAll(address,bool)",
    "authorizeOperator(address)",
    "approve(address,uint256,uint256)",
    "setOperator(address,bool)",
    "approve(address,address,uint160,uint48)",
];

/// The functions of a listed token the engine meters.
const METERED: &[&str] = &[
    "transfer(address,uint256)",
    "transferFrom(address,address,uint256)",
    "approve(address,uint256)",
    "increaseAllowance(address,uint256)",
];

/// Submitting a permit another party (or the session, under `[[permits]]`) signed.
const PERMITS: &[&str] = &[
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",
];

fn selectors(list: &'static [&'static str], cell: &'static OnceLock<Vec<[u8; 4]>>) -> &'static [[u8; 4]] {
    cell.get_or_init(|| {
        list.iter()
            .map(|s| {
                let h = keccak256(s.as_bytes());
                [h[0], h[1], h[2], h[3]]
            })
            .collect()
    })
}

/// Refuse `signature` (selector `sel`) named in rule `rule` on a target that is the listed
/// token `listed` (its symbol) or an unlisted contract.
pub(super) fn refuse_named(listed: Option<&str>, sel: [u8; 4], signature: &str, rule: &str) -> Result<(), Denial> {
    static APPROVING_S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    static METERED_S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    static PERMITS_S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    let approving = selectors(APPROVING, &APPROVING_S).contains(&sel);
    let metered = selectors(METERED, &METERED_S).contains(&sel);
    let permit = selectors(PERMITS, &PERMITS_S).contains(&sel);
    match listed {
        Some(symbol) if !metered && !permit && super::selectors::token_moving_selectors().contains(&sel) => Err(invalid(
            rule,
            format!(
                "`{}` moves or approves {symbol} past every cap, the allowance registry and the exposure ceiling: on a listed token only transfer, transferFrom, approve and increaseAllowance are metered (AG-212 4.1)",
                signature.trim()
            ),
        )),
        None if approving => Err(invalid(
            rule,
            format!(
                "`{}` grants an approval no cap, registry or ceiling can see on a contract not listed under tokens: list the token (with an approval cap) to meter its approvals (AG-212 4.1, 4.3)",
                signature.trim()
            ),
        )),
        _ => Ok(()),
    }
}
