//! The allowance registry (R-APP-4, AG-212 4.3): every approval and permit a session signs,
//! per chain, holder, token, spender and kind, with its amount, when it was granted, when
//! it stops being current, and its state.
//!
//! The registry lives in the session's [`crate::policy::Counters`], so it is checked and
//! updated under the same lock as every other counter (R-POL-11): the engine values the
//! registry as it would be after a request (exposure ceiling, R-APP-5) and the signing path
//! applies the request's [`Grant`]s only when it signs.
//!
//! What the registry knows is what the session signed. It cannot see the chain: an
//! allowance a spender has partly consumed is still counted at the amount granted (an
//! upper bound), and an approval stays outstanding until a revocation is signed — its
//! lifetime ending (`expired`) does not make it zero on chain; the revocation sweep
//! (R-APP-6) does.

use crate::policy::doc::USD_DECIMALS;
use crate::policy::CompiledPolicy;
use crate::units::format_decimal;
use alloy_primitives::{Address, U256, U512};
use serde::{Deserialize, Serialize};

/// Most entries one session's registry keeps. Entries that are no longer outstanding are
/// evicted (oldest first) to make room; a request that would need more is denied.
pub const MAX_ENTRIES: usize = 1024;

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

/// The USD value of `amount` base units of an asset with `decimals`, at `price` USD per
/// whole unit (18 decimals). Exact integer arithmetic, rounded up (exposure is never
/// understated); saturates at `U256::MAX`.
pub fn value_usd(amount: U256, decimals: u8, price: U256) -> U256 {
    let num = U512::from(amount) * U512::from(price);
    let den = U512::from(10u8).pow(U512::from(decimals));
    let q = num.div_ceil(den);
    U256::checked_from_limbs_slice(&q.as_limbs()[..4])
        .filter(|_| q.as_limbs()[4..].iter().all(|&l| l == 0))
        .unwrap_or(U256::MAX)
}

/// What kind of delegated spending authority an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowanceState {
    /// Granted, within its lifetime.
    Active,
    /// Its lifetime is over but no revocation was signed: still live on chain (unless it
    /// lapses there by itself) and still counted as exposure until swept.
    Expired,
    /// The agent signed `approve(spender, 0)` (or a permit of 0).
    Revoked,
    /// The revocation sweep signed `approve(spender, 0)` for it.
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

/// One registry entry.
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
    /// The amount granted (an upper bound of what remains: the registry cannot see
    /// what the spender has already pulled).
    pub amount: U256,
    pub granted_at: u64,
    pub expires_at: u64,
    /// When the authority ends on chain by itself (Permit2 expiration, signature-transfer
    /// deadline); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onchain_until: Option<u64>,
    /// Stored state; [`Allowance::state_at`] gives the effective one.
    pub state: AllowanceState,
    /// What granted it last: `approve`, `increaseAllowance`, `permit`, `Permit2 allowance`,
    /// `Permit2 transfer`.
    pub via: String,
    /// When the state last changed.
    pub updated_at: u64,
}

impl Allowance {
    /// The effective state at `now`: an active entry past its lifetime (or past its
    /// on-chain end) is expired.
    pub fn state_at(&self, now: u64) -> AllowanceState {
        match self.state {
            AllowanceState::Active if now >= self.expires_at || self.lapsed(now) => AllowanceState::Expired,
            s => s,
        }
    }

    /// Whether it has ended on chain by itself.
    pub fn lapsed(&self, now: u64) -> bool {
        self.onchain_until.is_some_and(|t| now >= t)
    }

    /// Whether the spender may still be able to pull tokens: granted, non-zero, not
    /// revoked or swept, not lapsed on chain. Expired entries are outstanding.
    pub fn outstanding(&self, now: u64) -> bool {
        matches!(self.state, AllowanceState::Active) && !self.amount.is_zero() && !self.lapsed(now)
    }

    fn key(&self) -> Key {
        Key { chain_id: self.chain_id, holder: self.holder, token: self.token, spender: self.spender, kind: self.kind }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    chain_id: u64,
    holder: Address,
    token: Address,
    spender: Address,
    kind: AllowanceKind,
}

/// How a grant changes an allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOp {
    /// `approve`, permits: the allowance becomes exactly this.
    Set(U256),
    /// `increaseAllowance`, signature transfers: this much more.
    Add(U256),
}

/// An approval or permit a request would sign, as the engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub chain_id: u64,
    pub holder: Address,
    pub token: Address,
    /// The token's index in the policy (grants are only made for listed tokens, or are
    /// `Set(0)`).
    pub token_index: Option<usize>,
    pub spender: Address,
    pub kind: AllowanceKind,
    pub op: GrantOp,
    pub onchain_until: Option<u64>,
    pub via: &'static str,
}

impl Grant {
    fn key(&self) -> Key {
        Key { chain_id: self.chain_id, holder: self.holder, token: self.token, spender: self.spender, kind: self.kind }
    }
}

/// Outstanding approved value at the price table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// USD, 18 decimals, rounded up.
    pub usd: U256,
    /// Symbols (or addresses) of outstanding entries the table does not price.
    pub unpriced: Vec<String>,
}

/// A session's allowance registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    pub entries: Vec<Allowance>,
}

/// The registry is full of outstanding entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryFull;

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

impl Registry {
    fn find(&self, k: &Key) -> Option<usize> {
        self.entries.iter().position(|e| e.key() == *k)
    }

    /// The amount outstanding under `k` at `now` (zero when none).
    fn outstanding_amount(&self, k: &Key, now: u64) -> U256 {
        match self.find(k) {
            Some(i) if self.entries[i].outstanding(now) => self.entries[i].amount,
            _ => U256::ZERO,
        }
    }

    /// Apply grants in order (a later grant on the same key sees the earlier one, so a
    /// trailing `approve(spender, 0)` in a batch leaves nothing outstanding).
    pub fn apply(&mut self, p: &CompiledPolicy, grants: &[Grant], now: u64) -> Result<(), RegistryFull> {
        let until = p.doc.valid_until.unwrap_or(u64::MAX);
        for g in grants {
            let k = g.key();
            let current = self.outstanding_amount(&k, now);
            let amount = match g.op {
                GrantOp::Set(v) => v,
                GrantOp::Add(v) => current.saturating_add(v),
            };
            let expires_at = now.saturating_add(lifetime(p, g.token_index, amount)).min(until);
            let onchain_until = match (g.op, self.find(&k)) {
                (GrantOp::Add(_), Some(i)) if !current.is_zero() => {
                    match (self.entries[i].onchain_until, g.onchain_until) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    }
                }
                _ => g.onchain_until,
            };
            let state = if amount.is_zero() { AllowanceState::Revoked } else { AllowanceState::Active };
            match self.find(&k) {
                Some(i) => {
                    let e = &mut self.entries[i];
                    e.amount = amount;
                    e.state = state;
                    e.via = g.via.to_string();
                    e.updated_at = now;
                    if !amount.is_zero() {
                        e.granted_at = now;
                        e.expires_at = expires_at;
                        e.onchain_until = onchain_until;
                    }
                }
                None if amount.is_zero() => {}
                None => {
                    if self.entries.len() >= MAX_ENTRIES {
                        // Evict the oldest entry that is no longer outstanding.
                        let victim = self
                            .entries
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| !e.outstanding(now))
                            .min_by_key(|(_, e)| e.updated_at)
                            .map(|(i, _)| i)
                            .ok_or(RegistryFull)?;
                        self.entries.remove(victim);
                    }
                    let (symbol, decimals) = match g.token_index {
                        Some(t) => (p.doc.tokens[t].symbol.clone(), p.doc.tokens[t].decimals),
                        None => (g.token.to_string(), 0),
                    };
                    self.entries.push(Allowance {
                        chain_id: g.chain_id,
                        token: g.token,
                        spender: g.spender,
                        holder: g.holder,
                        kind: g.kind,
                        symbol,
                        decimals,
                        amount,
                        granted_at: now,
                        expires_at,
                        onchain_until,
                        state,
                        via: g.via.to_string(),
                        updated_at: now,
                    });
                }
            }
        }
        Ok(())
    }

    /// Outstanding approved value across every chain, holder, token and spender, at the
    /// policy's price table (R-APP-5).
    pub fn exposure(&self, p: &CompiledPolicy, now: u64) -> Exposure {
        let mut x = Exposure::default();
        for e in self.entries.iter().filter(|e| e.outstanding(now)) {
            match price_of(p, e.chain_id, &e.token) {
                Some((price, decimals)) => x.usd = x.usd.saturating_add(value_usd(e.amount, decimals, price)),
                None => {
                    if !x.unpriced.contains(&e.symbol) {
                        x.unpriced.push(e.symbol.clone())
                    }
                }
            }
        }
        x
    }

    /// Keys whose outstanding amount `grants` would raise, with (before, after).
    pub fn increases(&self, p: &CompiledPolicy, grants: &[Grant], now: u64) -> Vec<(Grant, U256, U256)> {
        let mut after = self.clone();
        // Capacity does not matter for the comparison.
        let _ = after.apply(p, grants, now);
        let mut out: Vec<(Grant, U256, U256)> = Vec::new();
        for g in grants {
            let k = g.key();
            if out.iter().any(|(o, _, _)| o.key() == k) {
                continue;
            }
            let (b, a) = (self.outstanding_amount(&k, now), after.outstanding_amount(&k, now));
            if a > b {
                out.push((g.clone(), b, a));
            }
        }
        out
    }

    /// Entries outstanding at `now`.
    pub fn outstanding(&self, now: u64) -> impl Iterator<Item = &Allowance> {
        self.entries.iter().filter(move |e| e.outstanding(now))
    }

    /// Mark the entry equal to `e` (same key) swept at `now`.
    pub fn mark_swept(&mut self, e: &Allowance, now: u64) {
        if let Some(i) = self.find(&e.key()) {
            self.entries[i].state = AllowanceState::Swept;
            self.entries[i].updated_at = now;
        }
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
        }
    }
}

/// The call that sets an entry to zero, from its holder (R-APP-6): `approve(spender, 0)`
/// on the token, or Permit2 `approve(token, spender, 0, 0)`. `None` for a signature
/// transfer, which lapses at its deadline.
pub fn revocation_call(e: &Allowance) -> Option<(Address, alloy_primitives::Bytes)> {
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

    fn entry(kind: AllowanceKind) -> Allowance {
        Allowance {
            chain_id: 1,
            token: Address::repeat_byte(1),
            spender: Address::repeat_byte(2),
            holder: Address::repeat_byte(3),
            kind,
            symbol: "USDC".into(),
            decimals: 6,
            amount: U256::from(5u8),
            granted_at: 100,
            expires_at: 200,
            onchain_until: None,
            state: AllowanceState::Active,
            via: "approve".into(),
            updated_at: 100,
        }
    }

    #[test]
    fn revocation_calls_set_the_allowance_to_zero() {
        let sel = |sig: &str| alloy_primitives::keccak256(sig.as_bytes())[..4].to_vec();
        let e = entry(AllowanceKind::Erc20);
        let (to, data) = revocation_call(&e).unwrap();
        assert_eq!(to, e.token);
        assert_eq!(data[..4], sel("approve(address,uint256)")[..]);
        assert_eq!(data.len(), 4 + 64);
        assert_eq!(data[16..36], e.spender[..]);
        assert!(data[36..].iter().all(|&b| b == 0));
        let p2 = Address::repeat_byte(9);
        let (to, data) = revocation_call(&entry(AllowanceKind::Permit2 { contract: p2 })).unwrap();
        assert_eq!(to, p2);
        assert_eq!(data[..4], sel("approve(address,address,uint160,uint48)")[..]);
        assert_eq!((data[16..36].to_vec(), data[48..68].to_vec()), (e.token.to_vec(), e.spender.to_vec()));
        assert!(data[68..].iter().all(|&b| b == 0));
        assert!(revocation_call(&entry(AllowanceKind::SignatureTransfer { contract: p2 })).is_none());
    }

    #[test]
    fn states_over_time() {
        let mut e = entry(AllowanceKind::Erc20);
        assert_eq!(e.state_at(199), AllowanceState::Active);
        assert_eq!(e.state_at(200), AllowanceState::Expired);
        assert!(e.outstanding(10_000), "expired is still live on chain");
        e.onchain_until = Some(300);
        assert!(!e.outstanding(300), "lapsed on chain by itself");
        e.state = AllowanceState::Swept;
        assert_eq!(e.state_at(250), AllowanceState::Swept);
        assert!(!e.outstanding(250));
    }
}
