//! Stable error and denial codes (SPEC §6).
//!
//! Every refusal the enclave gives carries an [`ErrorCode`] (stable, snake_case on the
//! wire), the rule that failed when a policy rule is the cause, and a human reason.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable codes. The wire form is the snake_case name; never renumber or rename.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthenticated,
    Replayed,
    Expired,
    NotYetValid,
    Revoked,
    Suspended,
    UnknownSession,
    ChainNotAllowed,
    TargetNotAllowed,
    SelectorNotAllowed,
    ArgumentRejected,
    RecipientNotAllowed,
    ValueCap,
    SpendCap,
    RateLimited,
    QuotaExhausted,
    GasCap,
    UnlimitedApproval,
    SpenderNotAllowed,
    ExposureCeiling,
    TypedDataNotAllowed,
    MessageNotAllowed,
    AuthorizationDenied,
    PendingApproval,
    /// The owner denied this very request (`deny_pending`); asking again is refused until
    /// the held request's time-to-live passes.
    DeniedByOwner,
    InvalidPolicy,
    Malformed,
    TooLarge,
    Unsupported,
    /// No enclave could decide now: the host cannot reach one, or a cluster has no leader
    /// or no majority, or its leader may not hold the session's key. Ask again — with the
    /// same stamp: if the request was decided after all, asking again returns that
    /// decision's signature, never a second charge (RULES.md §2).
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The stable wire name.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthenticated => "unauthenticated",
            Replayed => "replayed",
            Expired => "expired",
            NotYetValid => "not_yet_valid",
            Revoked => "revoked",
            Suspended => "suspended",
            UnknownSession => "unknown_session",
            ChainNotAllowed => "chain_not_allowed",
            TargetNotAllowed => "target_not_allowed",
            SelectorNotAllowed => "selector_not_allowed",
            ArgumentRejected => "argument_rejected",
            RecipientNotAllowed => "recipient_not_allowed",
            ValueCap => "value_cap",
            SpendCap => "spend_cap",
            RateLimited => "rate_limited",
            QuotaExhausted => "quota_exhausted",
            GasCap => "gas_cap",
            UnlimitedApproval => "unlimited_approval",
            SpenderNotAllowed => "spender_not_allowed",
            ExposureCeiling => "exposure_ceiling",
            TypedDataNotAllowed => "typed_data_not_allowed",
            MessageNotAllowed => "message_not_allowed",
            AuthorizationDenied => "authorization_denied",
            PendingApproval => "pending_approval",
            DeniedByOwner => "denied_by_owner",
            InvalidPolicy => "invalid_policy",
            Malformed => "malformed",
            TooLarge => "too_large",
            Unsupported => "unsupported",
            Unavailable => "unavailable",
            Internal => "internal",
        }
    }

    /// Whether this code is a policy denial (as opposed to a protocol error).
    pub fn is_denial(self) -> bool {
        use ErrorCode::*;
        !matches!(
            self,
            Malformed | TooLarge | Unsupported | Unavailable | Internal | InvalidPolicy | Unauthenticated | Replayed
        )
    }

    /// A short human title used in messages.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthenticated => "unauthenticated",
            Replayed => "replayed",
            Expired => "session expired",
            NotYetValid => "session not yet valid",
            Revoked => "session revoked",
            Suspended => "session suspended",
            UnknownSession => "unknown session",
            ChainNotAllowed => "chain not allowed",
            TargetNotAllowed => "target not allowed",
            SelectorNotAllowed => "function not allowed",
            ArgumentRejected => "argument rejected",
            RecipientNotAllowed => "recipient not allowed",
            ValueCap => "value cap exceeded",
            SpendCap => "spend cap exceeded",
            RateLimited => "rate limited",
            QuotaExhausted => "quota exhausted",
            GasCap => "gas cap exceeded",
            UnlimitedApproval => "unlimited approval",
            SpenderNotAllowed => "spender not allowed",
            ExposureCeiling => "exposure ceiling exceeded",
            TypedDataNotAllowed => "typed data not allowed",
            MessageNotAllowed => "message not allowed",
            AuthorizationDenied => "EIP-7702 authorization refused",
            PendingApproval => "pending owner approval",
            DeniedByOwner => "denied by the owner",
            InvalidPolicy => "invalid policy",
            Malformed => "malformed request",
            TooLarge => "too large",
            Unsupported => "unsupported",
            Unavailable => "unavailable",
            Internal => "internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: code, the rule that failed (if a policy rule), and a reason.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Denial {
    pub code: ErrorCode,
    /// Path of the policy rule that failed, e.g. `limits[0]`.
    pub rule: Option<String>,
    pub reason: String,
}

/// The rule of an enclave's answer that a signing request's session was busy with its
/// owner's calls: nothing was decided or changed (no stamp spent), so the host asks again
/// within its call timeout.
pub const SESSION_BUSY: &str = "enclave.session_busy";

/// Whether `d` is that answer ([`SESSION_BUSY`]).
pub fn is_session_busy(d: &Denial) -> bool {
    d.code == ErrorCode::Unavailable && d.rule.as_deref() == Some(SESSION_BUSY)
}

impl Denial {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Denial { code, rule: None, reason: reason.into() }
    }
    pub fn rule(code: ErrorCode, rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Denial { code, rule: Some(rule.into()), reason: reason.into() }
    }
    pub fn malformed(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::Malformed, reason)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.code.is_denial() { "denied" } else { "error" };
        match &self.rule {
            Some(rule) => write!(f, "{prefix}: {} [{}] (rule {rule}, {})", self.code.title(), self.code, self.reason),
            None => write!(f, "{prefix}: {} [{}] ({})", self.code.title(), self.code, self.reason),
        }
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_stable() {
        let json = serde_json::to_string(&ErrorCode::NotYetValid).unwrap();
        assert_eq!(json, "\"not_yet_valid\"");
        for code in [ErrorCode::SpendCap, ErrorCode::UnlimitedApproval, ErrorCode::TooLarge] {
            let s = serde_json::to_string(&code).unwrap();
            assert_eq!(s, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn display_names_rule() {
        let d = Denial::rule(ErrorCode::SpendCap, "limits[0]", "USDC per day: spent 80, asking 30, cap 100");
        assert_eq!(
            d.to_string(),
            "denied: spend cap exceeded [spend_cap] (rule limits[0], USDC per day: spent 80, asking 30, cap 100)"
        );
    }
}
