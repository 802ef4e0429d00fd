//! The policy file's shape as people write it (TOML, or the same shape in JSON): every
//! table and field, with unknown fields refused. [`super::resolve`] turns it into the
//! normalized [`Policy`](super::super::doc::Policy).

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default = "one")]
    pub version: u32,
    pub name: String,
    pub chains: Vec<u64>,
    pub valid_after: Option<TimeSpec>,
    pub valid_until: Option<TimeSpec>,
    /// Relative lifetime from the moment the owner grants: "24h".
    pub valid_for: Option<String>,
    pub max_duration: Option<String>,
    pub quota: Option<u64>,
    pub max_value_per_call: Option<String>,
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenSpec>,
    #[serde(default)]
    pub limits: Vec<LimitSpec>,
    #[serde(default)]
    pub streams: Vec<StreamSpec>,
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    pub recipients: Option<Vec<String>>,
    #[serde(default)]
    pub rate_limits: Vec<RateSpec>,
    #[serde(default)]
    pub gas: GasSpec,
    #[serde(default)]
    pub approvals: ApprovalSpec,
    #[serde(default)]
    pub user_operations: UserOpSpec,
    #[serde(default)]
    pub delegations: DelegationSpec,
    #[serde(default)]
    pub typed_data: Vec<TypedDataSpec>,
    #[serde(default)]
    pub permits: Vec<PermitSpec>,
    #[serde(default)]
    pub messages: Vec<MessageSpec>,
    /// USD per whole token (or "ETH" for the native coin): `{ USDC = "1.00", WETH = "3000" }`.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceSpec>,
    /// "50000 USD": most outstanding approved value across the allowance registry.
    pub exposure_ceiling: Option<String>,
    /// "250000 USD": most outstanding approved value across every session of the owner.
    pub owner_exposure_ceiling: Option<String>,
    /// "1000000 USD": most outstanding approved value across every session of the agent key.
    pub agent_exposure_ceiling: Option<String>,
    /// `{ above_value = "1 ETH", above_usd = "10000 USD", ttl = "10m" }`.
    pub escalate: Option<EscalateSpec>,
    /// `{ denials = 5, within = "10m" }`.
    pub trip_wire: Option<TripWireSpec>,
    /// Cluster only: PCR8 values (96 hex digits) of release signers whose images' nodes may
    /// hold the session's key.
    #[serde(default)]
    pub release_signers: Vec<String>,
    /// "AG-212": the policy is refused unless it binds what AG-212 asks of it.
    pub conformance: Option<String>,
}

/// A price: a decimal string ("1.00") or an integer (3000); never a float.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PriceSpec {
    Int(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateSpec {
    pub above_value: Option<String>,
    pub above_usd: Option<String>,
    /// The period the thresholds count over: minute, hour, day (default), week, month or
    /// session.
    pub per: Option<String>,
    /// Default "10m".
    pub ttl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripWireSpec {
    pub denials: u32,
    pub within: String,
}

/// `[[approvals.jit]]`: a function that consumes the approval directly before it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitSpec {
    pub signature: String,
    /// Parameter name, index, or dotted index path of the amount consumed.
    pub amount_arg: ArgRef,
    /// Parameter that must be the approved token, when given.
    pub token_arg: Option<ArgRef>,
}

/// `[user_operations]`: addresses; an entry point may be written "v0.7" or "v0.8" for the
/// canonical EntryPoint v0.7 or v0.8, and "0x…@v0.8" for a v0.8 entry point at another
/// address ("0x…" and "0x…@v0.7" are v0.7).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOpSpec {
    #[serde(default)]
    pub entry_points: Vec<String>,
    #[serde(default)]
    pub paymasters: Vec<String>,
    #[serde(default)]
    pub factories: Vec<String>,
    #[serde(default)]
    pub senders: Vec<String>,
    #[serde(default)]
    pub unmetered_calls: bool,
}

/// `[delegations]` (ERC-7710): delegation managers and root delegators, addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationSpec {
    #[serde(default)]
    pub managers: Vec<String>,
    #[serde(default)]
    pub delegators: Vec<String>,
}

/// `[[typed_data]]`: domain fields to match, and the primary type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedDataSpec {
    pub name: Option<String>,
    pub version: Option<String>,
    pub chain_id: Option<u64>,
    pub verifying_contract: Option<String>,
    pub primary_type: String,
}

/// `[[permits]]`: kind = "eip2612" | "permit2", tokens, max_deadline = "1h", permit2.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitSpec {
    pub kind: String,
    #[serde(default)]
    pub tokens: Vec<String>,
    pub max_deadline: String,
    pub permit2: Option<String>,
}

/// `[[messages]]`: exactly one of exact, prefix, siwe_domain.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub siwe_domain: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TimeSpec {
    Unix(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub address: String,
    pub decimals: u8,
    pub chain_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// "100 USDC" — the unit names the asset.
    pub max: String,
    /// minute, hour, day, week, month or session.
    pub per: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub initial: String,
    pub rate: String,
    pub every: String,
    pub max: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// An address, a token symbol, or "*".
    pub target: String,
    pub functions: Vec<FnSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FnSpec {
    Plain(String),
    Rules(FnRulesSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FnRulesSpec {
    pub signature: String,
    #[serde(default)]
    pub args: Vec<ArgSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// Index (0), parameter name ("to"), or dotted path ("2.1").
    pub arg: ArgRef,
    pub op: String,
    pub value: Option<toml::Value>,
    pub values: Option<Vec<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ArgRef {
    Index(u32),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub max: u64,
    pub window: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasSpec {
    pub max_fee_per_gas: Option<String>,
    pub max_priority_fee_per_gas: Option<String>,
    pub max_gas_limit: Option<u64>,
    #[serde(default)]
    pub limits: Vec<LimitSpec>,
    #[serde(default)]
    pub count_in_native: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    #[serde(default)]
    pub spenders: Vec<String>,
    /// Per-spender cap per token: ["500 USDC"].
    #[serde(default)]
    pub max: Vec<String>,
    /// How long an approval stays current: "6h". Default: 24 h above 10 000 USD, 7 days below.
    pub lifetime: Option<String>,
    #[serde(default)]
    pub jit: Vec<JitSpec>,
    /// "0.5%"; default 0, at most 10 %.
    pub jit_tolerance: Option<String>,
    #[serde(default)]
    pub jit_only: bool,
    /// Least gas limit of a transaction whose revocations count (RULES.md §6): 100000.
    pub revoke_gas: Option<u64>,
    /// Chains whose gas limit is spent on execution alone, besides the built-in ones
    /// (RULES.md §6): [534352].
    #[serde(default)]
    pub execution_gas_chains: Vec<u64>,
}
