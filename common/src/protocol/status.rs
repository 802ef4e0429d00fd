//! The `status` reply: public facts about the enclave and, when asked, one session — its
//! state, rates, nonces, exposure, the ceilings binding it and its held requests. What a
//! status says is the enclave's word only with its signature over the asker's nonce.

use super::*;

/// Public facts about the enclave (and optionally one session).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub version: String,
    /// Identity public key, SEC1 compressed (33 bytes).
    pub identity_public_key: Bytes,
    pub identity_address: Address,
    pub booted_at: u64,
    pub now: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub signatures: u64,
    pub denials: u64,
    pub session: Option<Box<SessionStatus>>,
    /// The asked session's groups — every session of its owner, every session of its agent
    /// key — with what each may have outstanding and the ceilings binding the session
    /// (RULES.md §6a). Empty when no session was asked about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregate: Vec<AggregateStatus>,
    /// The enclave's signature over this reply, when the query carried a nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Active,
    NotYetValid,
    Expired,
    Revoked,
    Suspended,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionStatus {
    pub session: Address,
    pub owner: Address,
    pub agent: Address,
    pub policy_hash: B256,
    pub state: SessionState,
    pub created_at: u64,
    pub valid_after: Option<u64>,
    pub valid_until: u64,
    pub uses: u64,
    pub uses_left: Option<u64>,
    pub caps: Vec<CapStatus>,
    /// Why the session is suspended (the trip-wire, R-APP-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_reason: Option<String>,
    /// The allowance registry (R-APP-4), with each entry's effective state now.
    #[serde(default)]
    pub allowances: Vec<Allowance>,
    /// Outstanding approved value at the policy's price table (R-APP-5).
    #[serde(default)]
    pub exposure: Box<ExposureStatus>,
    /// Requests held for the owner's approval (R-POL-10).
    #[serde(default)]
    pub pending: Vec<PendingStatus>,
    /// The session time these figures are at (RULES.md §1).
    #[serde(default)]
    pub time: u64,
    /// Where the session's periods are counted from.
    #[serde(default)]
    pub anchor: u64,
    /// Per chain the session signed transactions on: the nonce after the highest it signed
    /// there. An unauthenticated sweep starts there at the latest (RULES.md §6); the host's
    /// sweeper asks at the larger of it and the node's pending nonce.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_nonces: Vec<ChainNonce>,
    /// Each rate limit of the policy and its use at `time`, as the enclave counts it when it
    /// decides (RULES.md §2: by weight, owner-approved signatures included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateStatus>,
}

/// One rate limit's use at a status's time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStatus {
    /// `rate_limits[i]`.
    pub rule: String,
    pub max: u64,
    /// Seconds.
    pub window: u64,
    /// The weight signed in the last `window` seconds; `null` when the session's history
    /// cannot tell (a signature it dropped falls in the window, after an update raised or
    /// added a limit): the enclave then counts the window as full.
    pub used: Option<u64>,
}

/// The next nonce of a session's own address on one chain, as far as the enclave signed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainNonce {
    pub chain_id: u64,
    pub nonce: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureStatus {
    /// USD, 18 decimals, of the outstanding approvals the price table prices.
    pub usd: U256,
    /// The policy's ceiling, USD with 18 decimals.
    pub ceiling: Option<U256>,
    /// Outstanding approvals of tokens the table does not price.
    pub unpriced: Vec<String>,
}

/// One group of sessions a session belongs to (RULES.md §6a).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateStatus {
    /// `owner`: every session of the session's owner; `agent`: every session of its agent key.
    pub scope: crate::allowance::aggregate::Scope,
    /// Sessions of the group that hold approvals or declare a ceiling.
    pub sessions: u64,
    /// What the group may have outstanding at worst, per chain and token (base units): the
    /// first 64 by chain and token (`allowance::aggregate::MAX_LISTED`).
    pub holdings: Vec<TokenHolding>,
    /// Holdings not listed in `holdings`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub holdings_omitted: u64,
    /// The ceilings binding the session over this group, each valued at its own price
    /// table: the 64 lowest.
    pub ceilings: Vec<CeilingStatus>,
    /// Ceilings not listed in `ceilings`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ceilings_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenHolding {
    pub chain_id: u64,
    pub token: Address,
    pub amount: U256,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeilingStatus {
    /// USD, 18 decimals.
    pub ceiling: U256,
    /// The hash of the policy that declares it.
    pub policy_hash: B256,
    /// The group's holdings at that policy's price table, USD with 18 decimals.
    pub usd: U256,
    /// Holdings that table does not price (the first 64).
    pub unpriced: Vec<String>,
    /// Unpriced holdings not listed in `unpriced`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unpriced_omitted: u64,
}

impl From<crate::allowance::aggregate::GroupView> for AggregateStatus {
    fn from(g: crate::allowance::aggregate::GroupView) -> Self {
        let crate::allowance::aggregate::GroupView {
            scope,
            sessions,
            holdings,
            holdings_omitted,
            limits,
            limits_omitted,
        } = g;
        AggregateStatus {
            scope,
            sessions,
            holdings: holdings
                .into_iter()
                .map(|(chain_id, token, amount)| TokenHolding { chain_id, token, amount })
                .collect(),
            holdings_omitted,
            ceilings_omitted: limits_omitted,
            ceilings: limits
                .into_iter()
                .map(|l| CeilingStatus {
                    ceiling: l.ceiling,
                    policy_hash: l.policy_hash,
                    usd: l.exposure.usd,
                    unpriced: l.exposure.unpriced,
                    unpriced_omitted: l.exposure.unpriced_omitted,
                })
                .collect(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingStatus {
    /// The request digest the owner approves (`approve_pending`, subject).
    pub digest: B256,
    /// transaction, typed_data, message or user_operation.
    pub kind: String,
    pub created_at: u64,
    /// Waiting: the owner must approve before this. Signed: the agent may collect the
    /// signature (by asking again) until this.
    pub expires_at: u64,
    /// `waiting`, `signed`, `denied` (by the owner; asking again is refused
    /// `denied_by_owner` until `expires_at`) or `expired`.
    pub state: String,
    /// Which threshold it crossed.
    pub reason: String,
    /// The threshold's rule (`escalate.above_value`, `escalate.above_usd`).
    #[serde(default)]
    pub rule: String,
    /// Exactly what was asked: the owner is shown it decoded, and checks that it hashes
    /// to `digest` before approving. A status shows the held requests' payloads up to
    /// `machine::STATUS_PAYLOAD_BYTES` together; the others are `payload_omitted`, and a
    /// status asked with `held` set to this digest shows this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<SignPayload>,
    /// The payload is held but not shown in this status (see `payload`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_omitted: bool,
}

/// One cap: how much of it is spent in the current period.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapStatus {
    /// Rule path, e.g. `limits[0]`.
    pub rule: String,
    /// Human description, e.g. `USDC per day`.
    pub what: String,
    pub spent: U256,
    pub cap: U256,
    pub decimals: u8,
    pub symbol: String,
    /// When the current period ends (unix seconds); `None` for session totals.
    pub resets_at: Option<u64>,
}

macro_rules! receipted {
    ($t:ty, $kind:literal) => {
        impl Receipted for $t {
            const KIND: &'static str = $kind;
            fn receipt(&self) -> Option<&Receipt> {
                self.receipt.as_ref()
            }
            fn set_receipt(&mut self, r: Option<Receipt>) {
                self.receipt = r;
            }
        }
    };
}

receipted!(SessionCreated, "session_created");
receipted!(PolicyUpdated, "policy_updated");
receipted!(Revoked, "revoked");
receipted!(ImageAllowed, "image_allowed");
receipted!(PendingDenied, "pending_denied");
receipted!(SweepReply, "swept");
receipted!(Status, "status");
