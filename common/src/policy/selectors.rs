//! The selectors a wildcard target never covers (RULES.md §5): functions that move tokens
//! (on contracts not listed as tokens), and functions through which an account executes
//! calls (on any contract).

use alloy_primitives::keccak256;
use std::sync::OnceLock;

/// Functions that move or authorize moving tokens. Through a wildcard target they are
/// refused on any contract the policy does not list as a token (RULES.md §5): a wildcard
/// would otherwise move value no cap meters.
pub const TOKEN_MOVING: &[&str] = &[
    "transfer(address,uint256)",
    "transferFrom(address,address,uint256)",
    "approve(address,uint256)",
    "increaseAllowance(address,uint256)",
    "transferAndCall(address,uint256,bytes)",
    "transferAndCall(address,uint256)",
    "transferFromAndCall(address,address,uint256,bytes)",
    "approveAndCall(address,uint256,bytes)",
    "send(address,uint256,bytes)",
    "operatorSend(address,address,uint256,bytes,bytes)",
    "authorizeOperator(address)",
    "push(address,uint256)",
    "pull(address,uint256)",
    "move(address,address,uint256)",
    "safeTransferFrom(address,address,uint256)",
    "safeTransferFrom(address,address,uint256,bytes)",
    "safeTransferFrom(address,address,uint256,uint256,bytes)",
    "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)",
    "setApprovalForAll(address,bool)",
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",
    "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",
    "approve(address,address,uint160,uint48)",
    "transferFrom(address,address,uint160,address)",
    // Added 2026-12-06 after a review found them passing a wildcard on an unlisted contract:
    // ERC-1363's short forms, OpenZeppelin 1.x's `increaseApproval`, ERC-4524, ERC-4626's
    // `withdraw`/`redeem` to any receiver, WETH10's `withdrawTo`, Lido's shares, ERC-6909.
    "approveAndCall(address,uint256)",
    "transferFromAndCall(address,address,uint256)",
    "increaseApproval(address,uint256)",
    "safeTransfer(address,uint256)",
    "safeTransfer(address,uint256,bytes)",
    "withdraw(uint256,address,address)",
    "redeem(uint256,address,address)",
    "withdrawTo(address,uint256)",
    "transferShares(address,uint256)",
    "transferSharesFrom(address,address,uint256)",
    "transfer(address,uint256,uint256)",
    "transferFrom(address,address,uint256,uint256)",
    "approve(address,uint256,uint256)",
    "setOperator(address,bool)",
    // Added 2026-12-07 after a review: ERC-223's transfer, LayerZero OFTs' send and
    // sendFrom, and the L2 bridges that burn a bridged token from its sender with no
    // allowance (OP's L2StandardBridge, Arbitrum's gateway router, the Superchain bridge).
    "transfer(address,uint256,bytes)",
    "sendFrom(address,uint16,bytes,uint256,address,address,bytes)",
    "send((uint32,bytes32,uint256,uint256,bytes,bytes,bytes),(uint256,uint256),address)",
    "withdraw(address,uint256,uint32,bytes)",
    "withdrawTo(address,address,uint256,uint32,bytes)",
    "bridgeERC20(address,address,uint256,uint32,bytes)",
    "bridgeERC20To(address,address,address,uint256,uint32,bytes)",
    "outboundTransfer(address,address,uint256,bytes)",
    "outboundTransfer(address,address,uint256,uint256,uint256,bytes)",
    "sendERC20(address,address,uint256,uint256)",
];

/// Functions through which a smart account executes calls as itself (SimpleAccount, Coinbase
/// Smart Wallet, ERC-7579 and ERC-6551 accounts, Kernel, Safe, DSProxy, ERC-725X, Ambire,
/// Alchemy's), replaces its own code, or is handed to another owner, signer or module.
/// Through a wildcard target they are refused on any contract (RULES.md §5): the calls
/// inside are never decoded, so a wildcard would let the session move an account's tokens
/// — one whose owner or signer it is — past every cap, or take the account over (found
/// 2026-12-04 by two reviews). The list cannot name every account's functions (a
/// self-`multicall`, say): an account the session signs for belongs under
/// `user_operations.senders`, where a wildcard covers none of its functions.
pub const ACCOUNT_EXECUTING: &[&str] = &[
    // Executing calls as the account.
    "execute(address,uint256,bytes)",
    "executeBatch(address[],bytes[])",
    "executeBatch(address[],uint256[],bytes[])",
    "executeBatch((address,uint256,bytes)[])",
    "execute(bytes32,bytes)",
    "executeFromExecutor(bytes32,bytes)",
    "execute(address,bytes)",
    "execute(address,uint256,bytes,uint8)",
    "executeCall(address,uint256,bytes)",
    "execute(uint256,address,uint256,bytes)",
    "executeBySender((address,uint256,bytes)[])",
    "executeWithRuntimeValidation(bytes,bytes)",
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
    "execTransactionFromModule(address,uint256,bytes,uint8)",
    "execTransactionFromModuleReturnData(address,uint256,bytes,uint8)",
    "approveHash(bytes32)",
    // Making another account run calls: a delegation manager's earlier redemptions (the
    // current `redeemDelegations` is decoded: RULES §5b).
    "redeemDelegation(bytes,(address,uint256,bytes))",
    "redeemDelegations(bytes[],(address,uint256,bytes)[])",
    // Making a Safe run calls through a module that lets its members or delegates ask:
    // Zodiac Roles (v2, v1), Safe's AllowanceModule.
    "execTransactionWithRole(address,uint256,bytes,uint8,bytes32,bool)",
    "execTransactionWithRoleReturnData(address,uint256,bytes,uint8,bytes32,bool)",
    "execTransactionWithRole(address,uint256,bytes,uint8,uint16,bool)",
    "executeAllowanceTransfer(address,address,address,uint96,address,uint96,address,bytes)",
    // Replacing the account's code.
    "upgradeToAndCall(address,bytes)",
    "upgradeTo(address)",
    // Handing the account to another owner, signer or module.
    "transferOwnership(address)",
    "addOwnerAddress(address)",
    "addOwnerPublicKey(bytes32,bytes32)",
    "updateOwners(address[],address[])",
    "addOwnerWithThreshold(address,uint256)",
    "swapOwner(address,address,address)",
    "enableModule(address)",
    "installModule(uint256,address,bytes)",
];

/// The selectors of [`ACCOUNT_EXECUTING`].
pub fn account_executing_selectors() -> &'static [[u8; 4]] {
    static S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    S.get_or_init(|| selectors_of(ACCOUNT_EXECUTING))
}

pub(super) fn selectors_of(sigs: &[&str]) -> Vec<[u8; 4]> {
    sigs.iter()
        .map(|sig| {
            let h = keccak256(sig.as_bytes());
            [h[0], h[1], h[2], h[3]]
        })
        .collect()
}

/// The selectors of [`TOKEN_MOVING`].
pub fn token_moving_selectors() -> &'static [[u8; 4]] {
    static S: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    S.get_or_init(|| selectors_of(TOKEN_MOVING))
}
