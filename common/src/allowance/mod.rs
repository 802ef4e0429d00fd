//! The allowance registry (R-APP-4, R-APP-5, AG-212 4.3; RULES.md §6): every approval and
//! permit a session signs, where it sits (a transaction's nonce, a user operation's nonce,
//! a permit's deadline), and each allowance's **worst case over every on-chain history
//! consistent with what the session signed**.
//!
//! The registry lives in the session's [`crate::policy::Counters`], checked and updated
//! under the same lock as every other counter (R-POL-11). The engine values the registry
//! as it would be after a request ([`worst`]) and the signing path records the request's
//! [`Grant`]s only when it signs.
//!
//! * [`registry`] holds what was signed: items (a transaction, an operation or a permit, with
//!   its writes), and the positions of transactions that wrote nothing.
//! * [`worst`] computes a key's worst case, exactly as RULES.md §6 defines it, in time
//!   linear in the items.
//! * this module: prices, kinds, the owner's view of an entry, the revocation call.

use crate::policy::doc::USD_DECIMALS;
use crate::policy::CompiledPolicy;
use crate::units::format_decimal;
use alloy_primitives::{Address, U256, U512};
use serde::{Deserialize, Serialize};

pub mod aggregate;
pub mod registry;
pub mod view;
pub mod worst;

pub use registry::{Grant, Item, Key, Place, Registry, Via, MAX_WRITES, PREPAID_PER_APPROVAL, WRITE_BYTES};

/// How far a block's timestamp may trail the enclave's clock at signing (RULES.md §6): on
/// proof-of-stake Ethereum a block's timestamp is its slot's start, so a transaction signed
/// up to 12 s later is mined in a block stamped before it, and the enclave's clock may
/// drift (found 2026-12-04 by a review). It holds only on [`SLOTTED_CHAINS`].
pub const CHAIN_TIME_SLACK: u64 = 60;

/// Chains whose blocks are stamped with the start of a beacon-chain slot, so a block never
/// trails what it holds by more than [`CHAIN_TIME_SLACK`]: Ethereum and its testnets
/// (Goerli, Sepolia, Holesky, Hoodi), Gnosis and Chiado. On any other chain no bound is
/// known — an Arbitrum sequencer may stamp blocks up to a day in the past, an OP Stack
/// sequencer catching up after an outage hours in the past, and a local node whatever it is
/// told (a review of 2026-12-05) — so deny by default: there an authority never stops
/// counting at its end, and a permit may follow anything.
pub const SLOTTED_CHAINS: &[u64] = &[1, 5, 11_155_111, 17_000, 560_048, 100, 10_200];

/// How far a block's timestamp may trail the enclave's clock on `chain_id`; `None`: no
/// bound is known.
pub fn time_slack(chain_id: u64) -> Option<u64> {
    SLOTTED_CHAINS.contains(&chain_id).then_some(CHAIN_TIME_SLACK)
}

/// Whether an authority or a signature on `chain_id` with deadline `deadline` may still be
/// used in a block holding what was signed at `at`: Permit2, EIP-2612 and signature
/// transfers revert only when `block.timestamp > deadline`, and the block's stamp may trail
/// `at` by [`time_slack`] — on a chain without a known bound, always.
pub fn usable(chain_id: u64, deadline: u64, at: u64) -> bool {
    time_slack(chain_id).is_none_or(|slack| deadline.saturating_add(slack) >= at)
}

/// The least gas limit with which a transaction's approval writes count as applied once it
/// is mined, unless the policy says otherwise (`approvals.revoke_gas`, RULES.md §6). A mined
/// transaction consumes its nonce even when it runs out of gas and writes nothing; an
/// ERC-20 `approve(spender, 0)` costs about 26 000 to 45 000 gas, proxies and blacklists
/// included.
pub const DEFAULT_REVOKE_GAS: u64 = 100_000;
/// The smallest `approvals.revoke_gas`: what a proxied token with pause and blacklist checks
/// (USDC) needs for `approve(spender, 0)` before refunds, about 45 000, with room to spare.
pub const MIN_REVOKE_GAS: u64 = 60_000;
/// The largest `approvals.revoke_gas` (and a sweep's largest gas limit per revocation).
pub const MAX_REVOKE_GAS: u64 = 200_000;

/// Default lifetime of an approval worth more than [`large_approval_usd`] (or unpriced).
pub const LIFETIME_LARGE: u64 = 24 * 3600;
/// Default lifetime of an approval worth at most [`large_approval_usd`].
pub const LIFETIME_SMALL: u64 = 7 * 24 * 3600;

/// 10 000 USD (18 decimals): above it, an approval's default lifetime is 24 h.
pub fn large_approval_usd() -> U256 {
    U256::from(10_000u64) * usd_unit()
}

/// One USD in the policy's fixed-point USD unit.
pub fn usd_unit() -> U256 {
    U256::from(10u8).pow(U256::from(USD_DECIMALS))
}

/// Format a USD amount (18 decimals): `12345.67 USD`.
pub fn fmt_usd(v: U256) -> String {
    format!("{} USD", format_decimal(v, USD_DECIMALS))
}

/// 10^`d` in U512 (a table for every `d` a token can have: 10^255 wraps U512, as the
/// `pow` this replaces did — a valuation sits in the exposure check's inner loop).
fn pow10(d: u8) -> U512 {
    static TABLE: std::sync::OnceLock<Vec<U512>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..=255u32).map(|d| U512::from(10u8).pow(U512::from(d))).collect())[usize::from(d)]
}

/// The USD value of `amount` base units of an asset with `decimals`, at `price` USD per
/// whole unit (18 decimals). Exact integer arithmetic, rounded up (exposure is never
/// understated); saturates at `U256::MAX`.
pub fn value_usd(amount: U256, decimals: u8, price: U256) -> U256 {
    let num = U512::from(amount) * U512::from(price);
    let den = pow10(decimals);
    let q = num.div_ceil(den);
    U256::checked_from_limbs_slice(&q.as_limbs()[..4])
        .filter(|_| q.as_limbs()[4..].iter().all(|&l| l == 0))
        .unwrap_or(U256::MAX)
}

/// What kind of delegated spending authority an entry is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowanceKind {
    /// An ERC-20 allowance: `approve`, `increaseAllowance`, an EIP-2612 permit.
    Erc20,
    /// A Permit2 AllowanceTransfer allowance, held in the Permit2 contract.
    Permit2 { contract: Address },
    /// A Permit2 SignatureTransfer: one-shot transfer authority until its deadline.
    SignatureTransfer { contract: Address },
}

impl AllowanceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AllowanceKind::Erc20 => "erc20",
            AllowanceKind::Permit2 { .. } => "permit2",
            AllowanceKind::SignatureTransfer { .. } => "signature_transfer",
        }
    }

    /// Whether a transaction from the holder can set it to zero (the sweep, R-APP-6):
    /// `approve(spender, 0)` on the token, or Permit2 `approve(token, spender, 0, 0)`.
    pub fn sweepable(&self) -> bool {
        !matches!(self, AllowanceKind::SignatureTransfer { .. })
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowanceState {
    /// Worst case above 0, within its lifetime.
    Active,
    /// Worst case above 0, lifetime over: still live on chain (unless it lapses there by
    /// itself) and counted as exposure until a revocation settles it.
    Expired,
    /// Worst case 0, or a revocation the agent signed leaves it at 0 once mined.
    Revoked,
    /// A revocation the sweep signed leaves it at 0 once mined.
    Swept,
}

impl AllowanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            AllowanceState::Active => "active",
            AllowanceState::Expired => "expired",
            AllowanceState::Revoked => "revoked",
            AllowanceState::Swept => "swept",
        }
    }
}

/// One key of the registry as the owner sees it (`status`): its worst case now, when it was
/// last granted, and whether a signed revocation settles it once mined.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    pub chain_id: u64,
    pub token: Address,
    pub spender: Address,
    /// Whose tokens: the session's address (transactions, permits) or the smart account
    /// (`sender`) of a user operation.
    pub holder: Address,
    pub kind: AllowanceKind,
    pub symbol: String,
    pub decimals: u8,
    /// The worst case now (RULES.md §6): the most the spender may be able to pull, over
    /// every history consistent with what the session signed. The registry cannot see
    /// what the spender already pulled, nor which transactions were mined.
    pub amount: U256,
    /// When a non-zero amount was last granted.
    pub granted_at: u64,
    /// When it stops being current (its lifetime; the sweep revokes it after this).
    pub expires_at: u64,
    /// When the authority ends on chain by itself (Permit2 expiration, signature-transfer
    /// deadline); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onchain_until: Option<u64>,
    /// Effective state now.
    pub state: AllowanceState,
    /// What granted it last: `approve`, `increaseAllowance`, `permit`, `Permit2 allowance`,
    /// `Permit2 transfer`.
    pub via: String,
    /// When the last write to it was signed.
    pub updated_at: u64,
    /// The chain nonce of the latest signed revocation that leaves it at 0 once mined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at_nonce: Option<u64>,
    /// The chain nonce of the sweep that revoked it last, settling or not (on a chain that
    /// takes L1 data gas from the gas limit a sweep never settles: RULES.md §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at_nonce: Option<u64>,
    /// The chain nonce of the sweep's `invalidateNonces` that cancels the entry's Permit2
    /// permits before its revocation, when nothing but sweeps wrote it since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at_nonce: Option<u64>,
}

impl Allowance {
    /// Whether the spender may still be able to pull tokens (worst case above 0 and no
    /// signed revocation settles it).
    pub fn outstanding(&self) -> bool {
        matches!(self.state, AllowanceState::Active | AllowanceState::Expired)
    }
}

/// How a grant changes an allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantOp {
    /// `approve`, permits: the allowance becomes exactly this.
    Set(U256),
    /// `increaseAllowance`, signature transfers: this much more.
    Add(U256),
    /// Permit2's `invalidateNonces(token, spender, n)` from the holder (a sweep): once it is
    /// mined, no Permit2 allowance permit of the key with a nonce below `n` can ever be used
    /// (RULES.md §6). The amount does not change.
    Invalidate(u64),
}

impl GrantOp {
    /// The amount it sets or adds; `None` for an invalidation.
    pub fn amount(self) -> Option<U256> {
        match self {
            GrantOp::Set(v) | GrantOp::Add(v) => Some(v),
            GrantOp::Invalidate(_) => None,
        }
    }
}

/// The largest nonce of a Permit2 allowance permit (`PermitSingle`, `PermitBatch`) a session
/// signs. One `invalidateNonces` may move Permit2's nonce by at most 2^16 − 1
/// (`ExcessiveInvalidation`), so a sweep cancels outstanding permits with certainty only up
/// to 65 535: a session's permits stay at or below this bound, and each cancellation
/// ([`MAX_WRITES`] at most, a registry's every write) moves the next one up by one at most.
/// A fresh session key's Permit2 nonces start at 0.
pub const MAX_PERMIT2_NONCE: u64 = 65_000;
/// The highest nonce a sweep's `invalidateNonces` names: never one that may revert for
/// moving the nonce too far, whatever the chain's nonce is.
pub const MAX_INVALIDATION: u64 = u16::MAX as u64;

/// Outstanding approved value at the price table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// USD, 18 decimals, rounded up.
    pub usd: U256,
    /// Symbols (or addresses) of outstanding entries the table does not price (at most
    /// [`aggregate::MAX_LISTED`] for a group's holdings; the rest are counted in
    /// `unpriced_omitted`).
    pub unpriced: Vec<String>,
    /// Unpriced entries not named in `unpriced`.
    pub unpriced_omitted: u64,
}

/// The least gas limit with which a transaction's approval writes count as applied once mined
/// (`approvals.revoke_gas`, else [`DEFAULT_REVOKE_GAS`]).
pub fn revoke_gas(p: &CompiledPolicy) -> u64 {
    p.doc.approvals.revoke_gas.unwrap_or(DEFAULT_REVOKE_GAS)
}

/// Chains known to charge L1 data as gas taken from the transaction's gas limit (Arbitrum
/// One, Arbitrum Nova, Arbitrum Sepolia; zkSync Era and its Sepolia testnet): the gas left
/// for the call depends on the L1 fee when it is included, so no gas limit proves that a
/// revocation runs there (RULES.md §6). No policy can list them as execution-gas chains.
pub const L1_GAS_CHAINS: &[u64] = &[42_161, 42_170, 421_614, 324, 300];

/// Chains whose gas limit is spent on execution alone (an L1 data fee, where there is one,
/// is charged apart from it): Ethereum and its testnets (Goerli, Sepolia, Holesky, Hoodi),
/// OP Mainnet, Base and their Sepolia testnets, Polygon PoS and Amoy, BNB Smart Chain and
/// its testnet, Avalanche C-Chain and Fuji, Gnosis, and local development chains (anvil and
/// Hardhat 31337; Ganache and geth `--dev` 1337). Only there — and on chains a policy lists in
/// `approvals.execution_gas_chains` — does a gas limit make a revocation certain.
pub const EXECUTION_GAS_CHAINS: &[u64] = &[
    1, 5, 11_155_111, 17_000, 560_048, 10, 11_155_420, 8_453, 84_532, 137, 80_002, 56, 97, 43_114, 43_113, 100, 31_337,
    1_337,
];

/// Most entries of `approvals.execution_gas_chains`.
pub const MAX_EXECUTION_GAS_CHAINS: usize = 64;

/// Whether every transaction from the session's own address on `chain_id` may run out of
/// gas whatever its gas limit — deny by default: every chain but [`EXECUTION_GAS_CHAINS`]
/// and the policy's `approvals.execution_gas_chains`, and always [`L1_GAS_CHAINS`]. There a
/// transaction may be mined and write nothing, and its revocations settle nothing.
pub fn gas_uncertain(p: &CompiledPolicy, chain_id: u64) -> bool {
    L1_GAS_CHAINS.contains(&chain_id)
        || !(EXECUTION_GAS_CHAINS.contains(&chain_id) || p.doc.approvals.execution_gas_chains.contains(&chain_id))
}

/// The default lifetime of an approval of `amount` of token `t` (R-APP-4): the policy's
/// `approvals.lifetime`, else 24 h above 10 000 USD or when unpriced, 7 days otherwise.
pub fn lifetime(p: &CompiledPolicy, token_index: Option<usize>, amount: U256) -> u64 {
    if let Some(l) = p.doc.approvals.lifetime {
        return l;
    }
    let priced = token_index.and_then(|t| Some((p.token_prices.get(t).copied().flatten()?, p.doc.tokens[t].decimals)));
    match priced {
        Some((price, decimals)) if value_usd(amount, decimals, price) <= large_approval_usd() => LIFETIME_SMALL,
        _ => LIFETIME_LARGE,
    }
}

mod abi {
    alloy_sol_types::sol! {
        function approve(address spender, uint256 amount) returns (bool);
    }
    pub mod permit2 {
        alloy_sol_types::sol! {
            /// Permit2 AllowanceTransfer `approve`; expiration 0 means "now".
            function approve(address token, address spender, uint160 amount, uint48 expiration);
            /// Permit2 AllowanceTransfer: the holder's nonce for (token, spender) becomes
            /// `newNonce` (reverts unless it grows, by at most 2^16 − 1).
            function invalidateNonces(address token, address spender, uint48 newNonce);
        }
    }
}

/// The call that sets an entry to zero, from its holder (R-APP-6): `approve(spender, 0)`
/// on the token, or Permit2 `approve(token, spender, 0, 0)`. `None` for a signature
/// transfer, which lapses at its deadline.
pub fn revocation_call(e: &Key) -> Option<(Address, alloy_primitives::Bytes)> {
    use alloy_sol_types::SolCall;
    match e.kind {
        AllowanceKind::Erc20 => {
            Some((e.token, abi::approveCall { spender: e.spender, amount: U256::ZERO }.abi_encode().into()))
        }
        AllowanceKind::Permit2 { contract } => Some((
            contract,
            abi::permit2::approveCall {
                token: e.token,
                spender: e.spender,
                amount: alloy_primitives::aliases::U160::ZERO,
                expiration: alloy_primitives::aliases::U48::ZERO,
            }
            .abi_encode()
            .into(),
        )),
        AllowanceKind::SignatureTransfer { .. } => None,
    }
}

/// The call that cancels every Permit2 allowance permit of a Permit2 entry whose nonce is
/// below `new_nonce`, from its holder: `invalidateNonces(token, spender, new_nonce)` on its
/// Permit2 contract. `None` for any other kind, or a nonce past [`MAX_INVALIDATION`].
pub fn cancel_call(e: &Key, new_nonce: u64) -> Option<(Address, alloy_primitives::Bytes)> {
    use alloy_sol_types::SolCall;
    let AllowanceKind::Permit2 { contract } = e.kind else { return None };
    if new_nonce > MAX_INVALIDATION {
        return None;
    }
    let call = abi::permit2::invalidateNoncesCall {
        token: e.token,
        spender: e.spender,
        newNonce: alloy_primitives::aliases::U48::from(new_nonce),
    };
    Some((contract, call.abi_encode().into()))
}

/// The price (USD per whole token, 18 decimals) and decimals of the token at `token` on
/// `chain`, under the current policy.
pub fn price_of(p: &CompiledPolicy, chain: u64, token: &Address) -> Option<(U256, u8)> {
    let t = p.token_at(chain, token)?;
    Some((p.token_prices.get(t).copied().flatten()?, p.doc.tokens[t].decimals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_exact_and_rounds_up() {
        let usd = usd_unit();
        // 1.5 USDC (6 decimals) at 1.00 USD.
        assert_eq!(value_usd(U256::from(1_500_000u64), 6, usd), usd * U256::from(3) / U256::from(2));
        // 1 wei of an 18-decimal token at 3000 USD: 3e-15 USD, exactly.
        assert_eq!(value_usd(U256::from(1u8), 18, U256::from(3000u64) * usd), U256::from(3000u64));
        // Rounded up, never down: 1 base unit of a 6-decimal token at 1e-18 USD.
        assert_eq!(value_usd(U256::from(1u8), 6, U256::from(1u8)), U256::from(1u8));
        // Saturates instead of wrapping.
        assert_eq!(value_usd(U256::MAX, 0, U256::MAX), U256::MAX);
        assert_eq!(fmt_usd(U256::from(12_345u64) * usd / U256::from(100u8)), "123.45 USD");
    }

    fn key(kind: AllowanceKind) -> Key {
        Key {
            chain_id: 1,
            token: Address::repeat_byte(1),
            spender: Address::repeat_byte(2),
            holder: Address::repeat_byte(3),
            kind,
        }
    }

    #[test]
    fn revocation_calls_set_the_allowance_to_zero() {
        let sel = |sig: &str| alloy_primitives::keccak256(sig.as_bytes())[..4].to_vec();
        let e = key(AllowanceKind::Erc20);
        let (to, data) = revocation_call(&e).unwrap();
        assert_eq!(to, e.token);
        assert_eq!(data[..4], sel("approve(address,uint256)")[..]);
        assert_eq!(data.len(), 4 + 64);
        assert_eq!(data[16..36], e.spender[..]);
        assert!(data[36..].iter().all(|&b| b == 0));
        let p2 = Address::repeat_byte(9);
        let (to, data) = revocation_call(&key(AllowanceKind::Permit2 { contract: p2 })).unwrap();
        assert_eq!(to, p2);
        assert_eq!(data[..4], sel("approve(address,address,uint160,uint48)")[..]);
        assert_eq!((data[16..36].to_vec(), data[48..68].to_vec()), (e.token.to_vec(), e.spender.to_vec()));
        assert!(data[68..].iter().all(|&b| b == 0));
        assert!(revocation_call(&key(AllowanceKind::SignatureTransfer { contract: p2 })).is_none());
    }
}
