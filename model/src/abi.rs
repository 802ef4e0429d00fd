//! Hand-written ABI bits: selectors from canonical signatures, and strict decoding of the
//! four metered ERC-20 calls (RULES §5).

use alloy_primitives::{keccak256, Address, U256};

/// The 4-byte selector of a function signature (canonicalized first; `None` when it does
/// not parse).
pub fn selector(sig: &str) -> Option<[u8; 4]> {
    let c = canonical(sig)?;
    let h = keccak256(c.as_bytes());
    Some([h[0], h[1], h[2], h[3]])
}

/// The selector of a signature already known to be canonical.
pub fn sel(canonical_sig: &str) -> [u8; 4] {
    let h = keccak256(canonical_sig.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// `name(type name, ...)` → `name(type,...)`: parameter names and data locations dropped,
/// `uint`/`int` widened to 256 bits, tuples kept as `(...)`.
pub fn canonical(sig: &str) -> Option<String> {
    let s = sig.trim();
    let s = s.strip_prefix("function ").unwrap_or(s).trim();
    let open = s.find('(')?;
    let name = s[..open].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return None;
    }
    let rest = s[open..].trim_end();
    let close = matching(rest)?;
    if close != rest.len() - 1 {
        return None;
    }
    Some(format!("{name}({})", canon_list(&rest[1..close])?))
}

/// Index of the `)` matching the `(` at index 0.
fn matching(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn canon_list(inner: &str) -> Option<String> {
    if inner.trim().is_empty() {
        return Some(String::new());
    }
    let parts: Vec<String> = split_top(inner)?.into_iter().map(canon_param).collect::<Option<_>>()?;
    Some(parts.join(","))
}

/// A non-empty parameter list split at its top-level commas (`None` when its parentheses
/// do not balance).
pub(crate) fn split_top(inner: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    Some(parts)
}

/// Permit2's "unlimited" allowance, `type(uint160).max`.
pub fn u160_max() -> U256 {
    (U256::from(1u8) << 160) - U256::from(1u8)
}

fn canon_param(p: &str) -> Option<String> {
    let p = p.trim();
    let p = p.strip_prefix("tuple").filter(|r| r.starts_with('(')).unwrap_or(p);
    if p.starts_with('(') {
        let close = matching(p)?;
        let inner = canon_list(&p[1..close])?;
        let rest = &p[close + 1..];
        let suffix_len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        let suffix = &rest[..suffix_len];
        if !suffix.chars().all(|c| c == '[' || c == ']' || c.is_ascii_digit()) {
            return None;
        }
        return Some(format!("({inner}){suffix}"));
    }
    let ty = p.split_whitespace().next()?;
    let (base, suffix) = match ty.find('[') {
        Some(i) => (&ty[..i], &ty[i..]),
        None => (ty, ""),
    };
    if base.is_empty() || !base.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let base = match base {
        "uint" => "uint256",
        "int" => "int256",
        b => b,
    };
    Some(format!("{base}{suffix}"))
}

pub const SIG_TRANSFER: &str = "transfer(address,uint256)";
pub const SIG_TRANSFER_FROM: &str = "transferFrom(address,address,uint256)";
pub const SIG_APPROVE: &str = "approve(address,uint256)";
pub const SIG_INCREASE: &str = "increaseAllowance(address,uint256)";

/// The token-moving signatures, exactly as RULES §5 lists them (refused on unlisted
/// contracts through a wildcard target).
pub const TOKEN_MOVING: &[&str] = &[
    SIG_TRANSFER,
    SIG_TRANSFER_FROM,
    SIG_APPROVE,
    SIG_INCREASE,
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

/// The approving signatures RULES §5 names, other than ERC-20's `approve` and
/// `increaseAllowance`: a `*` entry on a contract not listed never covers them.
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

pub fn is_approving(s: [u8; 4]) -> bool {
    APPROVING.iter().any(|sig| sel(sig) == s)
}

pub fn is_token_moving(s: [u8; 4]) -> bool {
    TOKEN_MOVING.iter().any(|sig| sel(sig) == s)
}

/// The account-executing signatures, exactly as RULES §5 lists them (refused on any
/// contract through a wildcard target).
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

pub fn is_account_executing(s: [u8; 4]) -> bool {
    ACCOUNT_EXECUTING.iter().any(|sig| sel(sig) == s)
}

/// The first four bytes of calldata, when there are at least four.
pub fn selector_of(data: &[u8]) -> Option<[u8; 4]> {
    data.get(..4).map(|b| [b[0], b[1], b[2], b[3]])
}

/// One of the four metered ERC-20 calls, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erc20 {
    Transfer { to: Address, amount: U256 },
    TransferFrom { to: Address, amount: U256 },
    Approve { spender: Address, amount: U256 },
    Increase { spender: Address, added: U256 },
}

impl Erc20 {
    /// What the call moves of the token (its charge).
    pub fn amount(&self) -> U256 {
        match *self {
            Erc20::Transfer { amount, .. } | Erc20::TransferFrom { amount, .. } | Erc20::Approve { amount, .. } => {
                amount
            }
            Erc20::Increase { added, .. } => added,
        }
    }
}

/// Whether calldata starts with one of the four metered selectors.
pub fn is_metered(data: &[u8]) -> bool {
    let Some(s) = selector_of(data) else { return false };
    [SIG_TRANSFER, SIG_TRANSFER_FROM, SIG_APPROVE, SIG_INCREASE].iter().any(|sig| sel(sig) == s)
}

/// Whether calldata starts with `approve` or `increaseAllowance`.
pub fn is_approval(data: &[u8]) -> bool {
    let Some(s) = selector_of(data) else { return false };
    s == sel(SIG_APPROVE) || s == sel(SIG_INCREASE)
}

fn word(data: &[u8], i: usize) -> Option<&[u8]> {
    data.get(4 + 32 * i..4 + 32 * (i + 1))
}

fn addr(data: &[u8], i: usize) -> Option<Address> {
    let w = word(data, i)?;
    if w[..12].iter().any(|&b| b != 0) {
        return None;
    }
    Some(Address::from_slice(&w[12..]))
}

fn uint(data: &[u8], i: usize) -> Option<U256> {
    Some(U256::from_be_slice(word(data, i)?))
}

/// Decode a metered ERC-20 call strictly: exactly the selector and its static words,
/// addresses with 12 zero bytes. `None`: not a metered selector. `Some(Err)`: malformed.
pub fn decode_erc20(data: &[u8]) -> Option<Result<Erc20, ()>> {
    let s = selector_of(data)?;
    let words = |n: usize| data.len() == 4 + 32 * n;
    let r = if s == sel(SIG_TRANSFER) {
        (|| Some(Erc20::Transfer { to: addr(data, 0)?, amount: uint(data, 1)? }))().filter(|_| words(2))
    } else if s == sel(SIG_TRANSFER_FROM) {
        (|| {
            addr(data, 0)?;
            Some(Erc20::TransferFrom { to: addr(data, 1)?, amount: uint(data, 2)? })
        })()
        .filter(|_| words(3))
    } else if s == sel(SIG_APPROVE) {
        (|| Some(Erc20::Approve { spender: addr(data, 0)?, amount: uint(data, 1)? }))().filter(|_| words(2))
    } else if s == sel(SIG_INCREASE) {
        (|| Some(Erc20::Increase { spender: addr(data, 0)?, added: uint(data, 1)? }))().filter(|_| words(2))
    } else {
        return None;
    };
    Some(r.ok_or(()))
}

/// Calldata for a call: selector of `sig` followed by 32-byte words (for tests and harnesses).
pub fn encode_call(sig: &str, words: &[U256]) -> Vec<u8> {
    let mut out = selector(sig).map(|s| s.to_vec()).unwrap_or_default();
    for w in words {
        out.extend_from_slice(&w.to_be_bytes::<32>());
    }
    out
}

/// An address as an ABI word.
/// Permit2's AllowanceTransfer `approve` (RULES §5: the one function of a Permit2
/// contract that is metered).
pub const SIG_PERMIT2_APPROVE: &str = "approve(address,address,uint160,uint48)";

/// A Permit2 `approve(token, spender, amount, expiration)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit2Approve {
    pub token: Address,
    pub spender: Address,
    pub amount: U256,
    pub expiration: u64,
}

/// Strictly decode a Permit2 `approve`: exactly four words, clean addresses, the amount
/// within 160 bits and the expiration within 48 (`Err` otherwise); `None` for another
/// selector.
pub fn decode_permit2_approve(data: &[u8]) -> Option<Result<Permit2Approve, ()>> {
    if selector_of(data)? != sel(SIG_PERMIT2_APPROVE) {
        return None;
    }
    let fits = |v: U256, bits: usize| v.bit_len() <= bits;
    let r = (|| {
        let amount = uint(data, 2)?;
        let expiration = uint(data, 3)?;
        (data.len() == 4 + 32 * 4 && fits(amount, 160) && fits(expiration, 48)).then_some(())?;
        Some(Permit2Approve {
            token: addr(data, 0)?,
            spender: addr(data, 1)?,
            amount,
            expiration: expiration.to::<u64>(),
        })
    })();
    Some(r.ok_or(()))
}

pub fn addr_word(a: Address) -> U256 {
    U256::from_be_slice(a.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_selectors() {
        assert_eq!(sel(SIG_TRANSFER), [0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(sel(SIG_APPROVE), [0x09, 0x5e, 0xa7, 0xb3]);
        assert_eq!(sel(SIG_TRANSFER_FROM), [0x23, 0xb8, 0x72, 0xdd]);
        assert_eq!(sel(SIG_INCREASE), [0x39, 0x50, 0x93, 0x51]);
        assert_eq!(selector("transfer(address to, uint256 amount)"), Some(sel(SIG_TRANSFER)));
        assert_eq!(selector("  function transfer(address to , uint amount) "), Some(sel(SIG_TRANSFER)));
        assert_eq!(
            canonical("exactInputSingle((address,address,uint24,address,uint256,uint256,uint160) params)").as_deref(),
            Some("exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))")
        );
        assert_eq!(
            canonical("f(tuple(uint a, bytes b)[] xs, uint[2] y)").as_deref(),
            Some("f((uint256,bytes)[],uint256[2])")
        );
        assert_eq!(canonical("bad"), None);
        assert_eq!(canonical("f(uint"), None);
    }

    #[test]
    fn the_account_executing_list_is_exactly_the_rules_list() {
        assert_eq!(ACCOUNT_EXECUTING.len(), 32);
        let mut sels: Vec<[u8; 4]> = ACCOUNT_EXECUTING.iter().map(|s| sel(s)).collect();
        for s in ACCOUNT_EXECUTING {
            assert_eq!(canonical(s).as_deref(), Some(*s));
            assert!(!is_token_moving(sel(s)), "{s}");
        }
        sels.sort_unstable();
        sels.dedup();
        assert_eq!(sels.len(), 32);
        // SimpleAccount's execute, as the chain knows it.
        assert_eq!(sel("execute(address,uint256,bytes)"), [0xb6, 0x1d, 0x27, 0xf6]);
    }

    #[test]
    fn the_token_moving_list_is_exactly_the_rules_list() {
        assert_eq!(TOKEN_MOVING.len(), 47);
        let mut sels: Vec<[u8; 4]> = TOKEN_MOVING.iter().map(|s| sel(s)).collect();
        for s in TOKEN_MOVING {
            assert_eq!(canonical(s).as_deref(), Some(*s));
        }
        sels.sort_unstable();
        sels.dedup();
        assert_eq!(sels.len(), 47);
        assert!(is_token_moving(sel("transferFromAndCall(address,address,uint256,bytes)")));
        assert!(is_token_moving(sel("approveAndCall(address,uint256,bytes)")));
        assert!(is_token_moving(sel("approveAndCall(address,uint256)")));
        assert!(!is_token_moving(sel("deposit()")));
        // RULES.md §5's list, read from RULES.md itself.
        let rules = include_str!("../../RULES.md");
        let from = rules.find("The token-moving selectors are exactly these signatures:").expect("the list in RULES");
        let to = from + rules[from..].find("No list names").expect("the end of the list");
        let listed: Vec<&str> = rules[from..to].split('`').skip(1).step_by(2).collect();
        assert_eq!(listed, TOKEN_MOVING);
    }

    #[test]
    fn strict_decoding() {
        let a = Address::repeat_byte(0x11);
        let ok = encode_call(SIG_TRANSFER, &[addr_word(a), U256::from(5)]);
        assert_eq!(decode_erc20(&ok), Some(Ok(Erc20::Transfer { to: a, amount: U256::from(5) })));
        let mut dirty = ok.clone();
        dirty[4] = 1;
        assert_eq!(decode_erc20(&dirty), Some(Err(())));
        let mut long = ok.clone();
        long.push(0);
        assert_eq!(decode_erc20(&long), Some(Err(())));
        assert_eq!(decode_erc20(&ok[..40]), Some(Err(())));
        assert_eq!(decode_erc20(&[1, 2, 3, 4]), None);
    }
}
