//! The policy document in its normalized form: what travels to the enclave, what is hashed
//! and what the owner signs. People write the TOML form ([`super::file`]); it is resolved
//! into this form (units to integers, symbols to addresses, relative times to absolute).
//!
//! Every struct has `deny_unknown_fields` and the document has an explicit version, so a
//! field the enclave does not understand is an error, never silently ignored.

use super::section::{Empty, Section};
use crate::period::Period;
use alloy_primitives::{keccak256, Address, Bytes, FixedBytes, B256, I256, U256};
use serde::{Deserialize, Serialize};

/// The version of the normalized policy format this build understands.
pub const POLICY_VERSION: u32 = 1;

/// Longest session when the policy sets no explicit `max_duration` (R-POL-1).
pub const DEFAULT_MAX_DURATION: u64 = 24 * 3600;

/// A session policy. Deny by default; every applicable rule must pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    pub name: String,
    /// Allowed chain ids (R-POL-2). Empty allows none.
    pub chains: Vec<u64>,
    /// Unix seconds; before it, requests are `not_yet_valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<u64>,
    /// Unix seconds; required (R-POL-1). From it on, requests are `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
    /// Longest allowed session, seconds; absent means 24 h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u64>,
    /// Most signatures over the session's life (R-POL-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// Known ERC-20 tokens: their transfers and approvals count against caps (R-POL-9).
    #[serde(default)]
    pub tokens: Vec<Token>,
    /// Spend caps per period (R-POL-4).
    #[serde(default)]
    pub limits: Vec<SpendLimit>,
    /// Streaming caps (R-POL-4).
    #[serde(default)]
    pub streams: Vec<StreamLimit>,
    /// Per-call native value cap, wei.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_per_call: Option<U256>,
    /// Allowed (target, function) pairs (R-POL-5) with argument rules (R-POL-6).
    #[serde(default)]
    pub calls: Vec<CallRule>,
    /// When set: the only recipients of native value and of outgoing token transfers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Party>>,
    /// At most `max` signatures per `window` seconds (R-POL-7).
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Gas rules (R-POL-8).
    #[serde(default)]
    pub gas: Section<GasRules>,
    /// Approval rules (R-APP-1, R-APP-3).
    #[serde(default)]
    pub approvals: Section<ApprovalRules>,
    /// ERC-4337 user operations (R-SIGN-2): entry points, paymasters, factories, senders.
    /// Omitted from the canonical encoding when empty, so older policies keep their hash.
    #[serde(default, skip_serializing_if = "UserOpRules::is_empty")]
    pub user_operations: Section<UserOpRules>,
    /// ERC-7710 delegation redemption (AG-212 4.8): the managers the session may call
    /// `redeemDelegations` on, and whose delegations. Omitted when empty.
    #[serde(default, skip_serializing_if = "DelegationRules::is_empty")]
    pub delegations: Section<DelegationRules>,
    /// EIP-712 typed data allowed by domain and primary type (R-SIGN-3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub typed_data: Vec<TypedDataRule>,
    /// Bounded EIP-2612 and Permit2 permits (R-SIGN-3, R-APP-1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permits: Vec<PermitRule>,
    /// EIP-191 personal messages (R-SIGN-4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageRule>,
    /// The owner-signed price table: USD per whole unit of an asset (R-APP-5, R-POL-10).
    /// Omitted when empty, like every governance field below, so older policies keep
    /// their hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<Price>,
    /// Most outstanding approved value, USD (18 decimals), across the session's allowance
    /// registry (R-APP-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_ceiling: Option<U256>,
    /// Most outstanding approved value, USD (18 decimals), across every session of this
    /// policy's owner in the enclave (AG-212 4.4, RULES.md §6a). Valued at this policy's
    /// price table; every such ceiling the owner signed into a live session binds all of
    /// the owner's sessions (the strictest applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_exposure_ceiling: Option<U256>,
    /// Most outstanding approved value, USD (18 decimals), across every session the
    /// session's agent key uses, whoever owns it (RULES.md §6a). It binds the sessions of
    /// the owner who signed it (with that agent), never another owner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_exposure_ceiling: Option<U256>,
    /// Requests above a threshold are held for the owner's approval (R-POL-10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Box<Escalation>>,
    /// N denials within T seconds suspend the session (R-APP-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_wire: Option<TripWire>,
    /// Cluster only (ATTESTATION.md, "Cluster and upgrades"): release signers — the PCR8 of
    /// the certificate an enclave image was signed with — whose images' nodes may hold this
    /// session's key, without an `allow_image` per image. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_signers: Vec<FixedBytes<48>>,
    /// A standard the policy says it conforms to (`conformance = "AG-212"`): a policy that
    /// does not bind what it asks is refused ([`super::conformance`]). Omitted when none
    /// (the policy's hash is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conformance: Option<super::conformance::Conformance>,
}

/// Most release signers a policy names.
pub const MAX_RELEASE_SIGNERS: usize = 8;

/// Decimals of the USD amounts in a policy (prices, ceilings, thresholds): exact
/// fixed-point integers, never floats.
pub const USD_DECIMALS: u8 = 18;

/// The USD price of one whole unit (10^decimals base units) of an asset, 18 decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub asset: Asset,
    pub usd: U256,
}

/// Escalation (R-POL-10): a request that brings what the session moved in the current
/// period (`per`, default a day) above a threshold is held as pending until the owner
/// approves exactly its digest, within `ttl` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Escalate when the request moves more than `max` of `asset` (native value, or a
    /// token's transfers and approvals, as charged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_value: Option<EscalateValue>,
    /// Escalate when the request's priced value (every charged asset at the price table)
    /// is above this, USD with 18 decimals. An unpriced charged asset escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_usd: Option<U256>,
    /// The period the thresholds count over: a request is held when what the session
    /// moved in the current period plus the request crosses a threshold (RULES.md §8).
    /// Absent: a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Period>,
    /// Seconds the owner has to approve, and the agent then has to collect the signature.
    pub ttl: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateValue {
    pub asset: Asset,
    pub max: U256,
}

/// The trip-wire (R-APP-7): `denials` policy denials within `within` seconds suspend the
/// session; only the owner lifts it (an owner-signed policy update, or revoke).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripWire {
    pub denials: u32,
    pub within: u64,
}

/// An ERC-20 token the policy knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub symbol: String,
    pub address: Address,
    pub decimals: u8,
    /// The chain the address is on; absent: the same address on every allowed chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
}

/// What an amount is counted in: the native coin or a token (by symbol).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Asset {
    Native,
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendLimit {
    pub asset: Asset,
    pub period: Period,
    /// Base units (wei, or the token's smallest unit).
    pub max: U256,
}

/// A stream: `initial` available at the start, `rate` more every `every` seconds, never
/// more than `max` in total (as an ERC-7715 stream permission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamLimit {
    pub asset: Asset,
    pub initial: U256,
    pub rate: U256,
    pub every: u64,
    pub max: U256,
}

/// Calls allowed to one target (or any target: `target: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRule {
    /// `None` is the wildcard `*`: accepted only with a value cap and a cap per token.
    pub target: Option<Address>,
    pub functions: Vec<FunctionRule>,
}

/// One allowed function: a human-readable signature such as `transfer(address,uint256)`,
/// `*` for any function, or `receive()` for a plain value transfer (empty calldata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRule {
    pub signature: String,
    #[serde(default)]
    pub args: Vec<ArgRule>,
}

/// A predicate on one ABI-decoded argument (R-POL-6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgRule {
    /// Index path into the decoded arguments: `[1]` is the second argument, `[2, 0]` the
    /// first field of a tuple (or element of an array) in the third.
    pub path: Vec<u32>,
    pub op: Op,
    pub values: Vec<ArgValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    NotIn,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" | "==" => Op::Eq,
            "ne" | "!=" => Op::Ne,
            "lt" | "<" => Op::Lt,
            "lte" | "<=" => Op::Lte,
            "gt" | ">" => Op::Gt,
            "gte" | ">=" => Op::Gte,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::In => "in",
            Op::NotIn => "not_in",
        }
    }
}

/// A value an argument is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgValue {
    Address(Address),
    Uint(U256),
    Int(I256),
    Bool(bool),
    Bytes(Bytes),
    String(String),
    /// The session's owner.
    Owner,
    /// The session's own address.
    Account,
}

/// An address, or a symbolic party resolved per session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Address(Address),
    Owner,
    Account,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub max: u64,
    pub window: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fee_per_gas: Option<u128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_priority_fee_per_gas: Option<u128>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gas_limit: Option<u64>,
    /// Most gas cost (gas_limit × max_fee_per_gas, wei) per period.
    #[serde(default)]
    pub cost_limits: Vec<GasCostLimit>,
    /// Native spend counts the maximum gas cost as well as `value`.
    #[serde(default)]
    pub count_in_native: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasCostLimit {
    pub period: Period,
    pub max: U256,
}

/// Approvals: only to listed spenders, each at most the token's cap. No list, no approvals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRules {
    #[serde(default)]
    pub spenders: Vec<Address>,
    /// Most one approval (per spender) may grant, per token.
    #[serde(default)]
    pub caps: Vec<ApprovalCap>,
    /// How long an approval stays current in the allowance registry, seconds; absent: 24 h
    /// above 10 000 USD (or unpriced), 7 days at or below (R-APP-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u64>,
    /// Just-in-time approvals (R-APP-2): the calls that consume an approval directly
    /// before them in a batch, and where their amount is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jit: Vec<JitRule>,
    /// Tolerance over the consuming call's amount, basis points (at most 1 000 = 10 %).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub jit_tolerance_bps: u32,
    /// Every non-zero on-chain approval must be just-in-time (R-APP-2, AG-212 4.1).
    #[serde(default, skip_serializing_if = "is_false")]
    pub jit_only: bool,
    /// The least gas limit with which a transaction's approval writes count as applied once
    /// it is mined (RULES.md §6); below it the transaction may be mined, run out of gas and
    /// write nothing. Absent: [`crate::allowance::DEFAULT_REVOKE_GAS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_gas: Option<u64>,
    /// Chains besides [`crate::allowance::EXECUTION_GAS_CHAINS`] whose gas limit is spent
    /// on execution alone (RULES.md §6): elsewhere every own-address transaction may run
    /// out of gas whatever its gas limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execution_gas_chains: Vec<u64>,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// A function that consumes an approval granted directly before it in the same batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitRule {
    /// Human-readable signature, e.g. `swap(address tokenIn,uint256 amountIn)`.
    pub signature: String,
    /// Index path of the uint argument that is the amount it consumes.
    pub amount_path: Vec<u32>,
    /// Index path of an address argument that must be the approved token, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_path: Option<Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalCap {
    pub token: String,
    pub max: U256,
}

/// ERC-4337 user operations. No entry point listed: no user operation is signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOpRules {
    /// EntryPoint v0.7 entry points the session signs for (the hash binds the entry point
    /// and chain).
    #[serde(default)]
    pub entry_points: Vec<Address>,
    /// EntryPoint v0.8 entry points (EIP-712 `getUserOpHash`). Omitted when empty, so older
    /// policies keep their hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points_v08: Vec<Address>,
    /// Paymasters an operation may name; none listed: no paymaster.
    #[serde(default)]
    pub paymasters: Vec<Address>,
    /// Account factories an operation may deploy through (initCode); none listed: none.
    #[serde(default)]
    pub factories: Vec<Address>,
    /// Smart accounts (`sender`) the session signs for; empty: any sender.
    #[serde(default)]
    pub senders: Vec<Address>,
    /// Calls an operation runs as its account need not be metered token calls (RULES.md
    /// §5): the owner vouches that the accounts hold no allowance or deposit Bridle did not
    /// meter. Off (the default): only metered calls and plain value transfers, as for a
    /// delegator. Omitted when off, so older policies keep their hash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmetered_calls: bool,
}

/// ERC-7710 delegations the session may redeem (RULES.md §5b). No manager listed: none.
/// Every execution of a redemption is checked as a call held by its root delegator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationRules {
    /// Delegation managers (`redeemDelegations(bytes[],bytes32[],bytes[])`) the session may
    /// call, as a transaction from the session's own address.
    #[serde(default)]
    pub managers: Vec<Address>,
    /// Root delegators whose delegations the session may redeem; empty: any.
    #[serde(default)]
    pub delegators: Vec<Address>,
}

impl DelegationRules {
    pub fn is_empty(&self) -> bool {
        self.managers.is_empty() && self.delegators.is_empty()
    }
}

impl UserOpRules {
    pub fn is_empty(&self) -> bool {
        self.entry_points.is_empty()
            && self.entry_points_v08.is_empty()
            && self.paymasters.is_empty()
            && self.factories.is_empty()
            && self.senders.is_empty()
            && !self.unmetered_calls
    }
}

/// One kind of EIP-712 typed data: every field given must match the request's domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedDataRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_contract: Option<Address>,
    pub primary_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitKind {
    /// EIP-2612 `Permit` on the token contract itself.
    Eip2612,
    /// Uniswap Permit2: `PermitSingle`, `PermitBatch`, `PermitTransferFrom`, `PermitBatchTransferFrom`.
    Permit2,
}

impl PermitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PermitKind::Eip2612 => "eip2612",
            PermitKind::Permit2 => "permit2",
        }
    }
}

/// Permits of one kind, bounded like approvals (`approvals.spenders`, `approvals.caps`)
/// and counted against the token's spend caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermitRule {
    pub kind: PermitKind,
    /// Token symbols covered; empty: every listed token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// Latest deadline / expiration allowed, seconds from now.
    pub max_deadline: u64,
    /// The Permit2 contract (kind permit2); absent: the canonical Permit2 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit2: Option<Address>,
}

/// An allowed EIP-191 personal message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRule {
    /// Exactly this text.
    Exact(String),
    /// Printable text that starts with this (never a 32-byte message, nor bytes that are not
    /// printable UTF-8: either could be a hash).
    Prefix(String),
    /// A Sign-In with Ethereum (EIP-4361) message for this domain, for the session's own
    /// address, on an allowed chain.
    SiweDomain(String),
}

impl Policy {
    /// The canonical encoding: compact JSON of this struct, fields in declaration order,
    /// absent optionals omitted, integers as JSON numbers or 0x-hex strings as alloy writes
    /// them. Deterministic for a given document.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain data structs to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// keccak256 of the canonical encoding, domain-separated. This is what owners sign.
    pub fn hash(&self) -> B256 {
        let mut buf = b"bridle/policy/v1\n".to_vec();
        buf.extend_from_slice(&self.canonical_bytes());
        keccak256(buf)
    }

    /// The symbol and decimals of an asset, for messages.
    pub fn asset_unit(&self, asset: &Asset) -> (String, u8) {
        match asset {
            Asset::Native => ("ETH".into(), 18),
            Asset::Token(sym) => {
                let d = self.tokens.iter().find(|t| &t.symbol == sym).map(|t| t.decimals).unwrap_or(0);
                (sym.clone(), d)
            }
        }
    }
}

impl Empty for GasRules {
    fn empty() -> &'static GasRules {
        static EMPTY: GasRules = GasRules {
            max_fee_per_gas: None,
            max_priority_fee_per_gas: None,
            max_gas_limit: None,
            cost_limits: Vec::new(),
            count_in_native: false,
        };
        &EMPTY
    }
}

impl Empty for ApprovalRules {
    fn empty() -> &'static ApprovalRules {
        static EMPTY: ApprovalRules = ApprovalRules {
            spenders: Vec::new(),
            caps: Vec::new(),
            lifetime: None,
            jit: Vec::new(),
            jit_tolerance_bps: 0,
            jit_only: false,
            revoke_gas: None,
            execution_gas_chains: Vec::new(),
        };
        &EMPTY
    }
}

impl Empty for UserOpRules {
    fn empty() -> &'static UserOpRules {
        static EMPTY: UserOpRules = UserOpRules {
            entry_points: Vec::new(),
            entry_points_v08: Vec::new(),
            paymasters: Vec::new(),
            factories: Vec::new(),
            senders: Vec::new(),
            unmetered_calls: false,
        };
        &EMPTY
    }
}

impl Empty for DelegationRules {
    fn empty() -> &'static DelegationRules {
        static EMPTY: DelegationRules = DelegationRules { managers: Vec::new(), delegators: Vec::new() };
        &EMPTY
    }
}
