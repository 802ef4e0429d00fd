//! What `bridle mcp` tells a model when a request ends without a checked signature: the
//! host's refusals (its word, never signed), the enclave's own word that it signed anyway
//! ([`Unseen`]), and the payments this server will not sign again ([`KeptError`]) — each as
//! tool-error text and structured content ([`tool_error`]).

use crate::client::{in_quotes, in_quotes_counted, quoted_to, Refused, MAX_QUOTED};
use crate::mcp_kept::MAX_KEPT;
use alloy_primitives::{Address, B256};
use bridle_common::error::ErrorCode;
use serde_json::{json, Value};

/// What the enclave's signed status says it has signed for the session on one chain: its
/// signature count and the nonce after the highest it signed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedSoFar {
    pub uses: u64,
    pub next_nonce: u64,
}

/// A payment answered without a checked signature while the enclave's signed status says
/// it signed since (`moved`: before and after), or cannot be read (`None`).
#[derive(Debug)]
pub struct Unseen {
    pub chain_id: u64,
    pub nonce: u64,
    pub moved: Option<(SignedSoFar, SignedSoFar)>,
    /// What the host answered, as one quoted value ([`in_quotes`]).
    pub host_said: String,
}

impl std::fmt::Display for Unseen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unseen { chain_id, nonce, moved, host_said } = self;
        match moved {
            Some((b, a)) => write!(
                f,
                "The enclave signed since this request was sent (its status, signed for a fresh nonce: signatures \
                 {} -> {}, next nonce on chain {chain_id} {} -> {}), but the host answered otherwise: the host may \
                 hold the signed transaction at nonce {nonce} and broadcast it. Do not send this payment again as a \
                 new one: look for the session's transaction at nonce {nonce} on chain {chain_id}, or ask the owner; \
                 asked for again, this server sends the same transaction (nonce {nonce}) again.",
                b.uses, a.uses, b.next_nonce, a.next_nonce
            )?,
            None => write!(
                f,
                "The host answered without a signature this server could check, and the enclave's status could not \
                 be read to tell whether the enclave signed: it may have (nonce {nonce} on chain {chain_id}). Do not \
                 send this payment again as a new one until `status` shows what was signed; asked for again, this \
                 server sends the same transaction (nonce {nonce}) again."
            )?,
        }
        write!(f, " The host said (its word): {host_said}")
    }
}

impl std::error::Error for Unseen {}

/// A payment this server will not sign now, to keep it from being paid twice
/// ([`crate::mcp_kept`]): `kind` says why.
#[derive(Debug)]
pub struct KeptError {
    pub kind: &'static str,
    pub chain_id: Option<u64>,
    pub nonce: Option<u64>,
    pub hash: Option<B256>,
    pub text: String,
}

impl KeptError {
    pub(crate) fn nonce_used(chain_id: u64, nonce: u64, pending: u64, new_payment: bool) -> KeptError {
        let ask = if new_payment {
            format!("you asked for a new payment: check the session's transaction at nonce {nonce} on chain {chain_id} first; only if it is not this payment, ask again with new_payment: true and checked_nonce: {nonce}")
        } else {
            format!("look at the session's transaction at nonce {nonce} on chain {chain_id}; only if it is not this payment, ask again with new_payment: true and checked_nonce: {nonce}")
        };
        KeptError {
            kind: "kept_nonce_used",
            chain_id: Some(chain_id),
            nonce: Some(nonce),
            hash: None,
            text: format!(
                "This payment was asked for before, and this server has not seen its transaction (nonce {nonce}) \
                 mined as its own; it is sent only as that same transaction, so that it cannot be paid twice. Nonce {nonce} is \
                 already used (mined or in the node's pool; the node's next is {pending}): a host may have broadcast what the enclave \
                 signed — then this payment is made — or another payment took the nonce. A new payment pays a second \
                 time if that transaction is this payment: {ask}."
            ),
        }
    }

    pub(crate) fn nonce_pending(chain_id: u64, nonce: u64) -> KeptError {
        KeptError {
            kind: "kept_nonce_pending",
            chain_id: Some(chain_id),
            nonce: Some(nonce),
            hash: None,
            text: format!(
                "This payment was asked for before and is kept as a transaction at nonce {nonce} on chain \
                 {chain_id}; that nonce is taken in the node's pool but not mined yet, and the transaction there may \
                 still be replaced by a copy of this payment. Wait until nonce {nonce} is mined, then check it \
                 before asking for a new payment."
            ),
        }
    }

    pub(crate) fn not_mined(chain_id: u64, nonce: u64, hash: B256, why: &str) -> KeptError {
        KeptError {
            kind: "sent_not_mined",
            chain_id: Some(chain_id),
            nonce: Some(nonce),
            hash: Some(hash),
            text: format!(
                "This payment was signed and sent as transaction {hash} (nonce {nonce} on chain {chain_id}), not \
                 mined yet, and broadcasting it again failed (the node said: {}). It may still be mined: do not send \
                 this payment again; look for its receipt.",
                in_quotes(why, 200)
            ),
        }
    }

    pub(crate) fn reverted(chain_id: u64, nonce: u64, hash: B256) -> KeptError {
        KeptError {
            kind: "kept_reverted",
            chain_id: Some(chain_id),
            nonce: Some(nonce),
            hash: Some(hash),
            text: format!(
                "This payment was signed and sent as transaction {hash} (nonce {nonce} on chain {chain_id}), which is \
                 mined, and the node says it reverted (the node's word: nothing this server can check). If it did, \
                 nothing was paid: ask again with new_payment: true and checked_nonce: {nonce} once you have checked \
                 that transaction's receipt; if it did not, that payment is made."
            ),
        }
    }

    /// `oldest`: the oldest unresolved payments, (chain, nonce, to), to name (a review of
    /// 2026-12-07: the model could not tell which payments blocked it).
    pub(crate) fn full(oldest: &[(u64, u64, Address)]) -> KeptError {
        let named: Vec<String> = oldest.iter().map(|(c, n, to)| format!("chain {c} nonce {n} to {to}")).collect();
        KeptError {
            kind: "too_many_unresolved",
            chain_id: None,
            nonce: None,
            hash: None,
            text: format!(
                "{MAX_KEPT} payments are unresolved (answered without a checked signature, or sent and not mined, or \
                 at a nonce another transaction took): no new payment until some are mined or resolved. The oldest: \
                 {}. Ask for each again (the same to, value and data) to see why it is kept, and resolve it with \
                 new_payment and checked_nonce once you have checked its nonce on chain",
                named.join("; ")
            ),
        }
    }
}

impl std::fmt::Display for KeptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for KeptError {}

/// What a model should do about a refusal code: this server's words, chosen only by a code
/// that is one of Bridle's ([`ErrorCode`]); the host gave the code, so each is said as what
/// to do *if* the host's code is true.
fn hint(code: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match code {
        SpendCap => "ask for no more than what remains (the status tool shows it) or wait for the cap's reset",
        ValueCap => "send less native value per call",
        RateLimited => "wait: too many signatures in the policy's window",
        QuotaExhausted => "the session's signature quota is used up; ask the owner for a new session",
        GasCap => {
            "the fees or gas limit are above the policy's gas rules; set a lower gas_limit or wait for lower fees"
        }
        TargetNotAllowed | SelectorNotAllowed | ArgumentRejected | RecipientNotAllowed | SpenderNotAllowed
        | TypedDataNotAllowed | MessageNotAllowed | AuthorizationDenied => {
            "the policy does not allow this; explain_policy lists what it allows"
        }
        UnlimitedApproval => "approve a bounded amount, within the policy's approval caps (explain_policy lists them)",
        ExposureCeiling => "the approvals and spending outstanding would pass the policy's ceiling; ask for less",
        ChainNotAllowed => "this chain is not in the policy's chains",
        Expired | Revoked | Suspended | NotYetValid => {
            "the session cannot sign now; the owner must act (new session, policy update); the status tool shows \
             its state"
        }
        UnknownSession => "the enclave does not hold this session; the status tool shows whether it does",
        PendingApproval => {
            "held for the owner's approval; after the owner approves, call send_transaction again with the same \
             to, value and data: the held transaction is sent again unchanged (same nonce and fees), and its \
             approved signature comes back. An equal payment cannot be made while this one is held"
        }
        DeniedByOwner => {
            "the owner denied this request; do not send it again until the hold expires (the status tool's \
             pending list, signed by the enclave, shows held requests)"
        }
        Unauthenticated | Replayed => "the stamp was refused: check the enclave identity and the clock",
        Unavailable => "no enclave could decide now; ask again later",
        Malformed | TooLarge | Unsupported => "the request was not taken as it is; check what was asked",
        InvalidPolicy | Internal => "check the status tool before asking again",
    }
}

/// The hint for a code none of Bridle's, or none given.
const NO_CODE_HINT: &str = "the host gave no code of Bridle's, so this is no refusal this server can read; \
                            the status tool shows what the enclave signed";

/// The most of the host's text shown for a code that is none of Bridle's, and for a rule
/// not of a rule's shape; the reason has the rest of [`MAX_QUOTED`].
const MAX_ODD_FIELD: usize = 128;

/// A rule's path as Bridle's policies name rules (`limits[0]`, `calls[2].functions[1]`,
/// `enclave.session_busy`): 1 to 64 of `A-Z a-z 0-9 _ . [ ] -`, nothing that could read as
/// words of this server's.
fn rule_shaped(rule: &str) -> bool {
    (1..=64).contains(&rule.len())
        && rule.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'-'))
}

/// The host's refusal as a tool error: text and structured content. The code is shown only
/// if it is one of Bridle's (else `unknown`, the host's text quoted), the rule only if it has
/// a rule's shape (else quoted), the reason quoted; 1 KiB of the host's text in all, and the
/// hint is this server's, for a code of Bridle's only.
fn refusal(r: &Refused) -> (String, Value) {
    let code = r.code.as_deref().and_then(|c| serde_json::from_value::<ErrorCode>(json!(c)).ok());
    let mut left = MAX_QUOTED;
    let mut take = |t: &str| {
        let (q, n) = in_quotes_counted(t, MAX_ODD_FIELD);
        left = left.saturating_sub(n);
        q
    };
    let code_text = match (code, r.code.as_deref()) {
        (Some(c), _) => c.as_str().to_string(),
        (None, Some(raw)) => format!("unknown (the host's code: {})", take(raw)),
        (None, None) => "unknown (no code given)".to_string(),
    };
    let rule = r.rule.as_deref().filter(|t| rule_shaped(t));
    // Quoted even in a rule's shape: `owner_approved.send_full_balance_to_0xBAD` has one (a
    // review of 2026-12-06).
    let rule_text = match (rule, r.rule.as_deref()) {
        (Some(rule), _) => Some(in_quotes(rule, MAX_ODD_FIELD)),
        (None, Some(raw)) => Some(take(raw)),
        (None, None) => None,
    };
    let reason = r.reason.as_deref().unwrap_or(&r.message);
    let reason_text = in_quotes(reason, left);
    let h = code.map_or(NO_CODE_HINT, hint);
    let head = "refused (the host's word; refusals are not signed)";
    let text = match &rule_text {
        Some(rule) => format!("{head}: {code_text} (rule {rule}): {reason_text}"),
        None => format!("{head}: {code_text}: {reason_text}"),
    };
    let text = match code {
        Some(_) => format!("{text}. This server's hint, if the host's code is true: {h}"),
        None => format!("{text}. This server's hint: {h}"),
    };
    let v = json!({
        "refused": true,
        // Only a code of Bridle's and a rule of a rule's shape: the host's other text is in
        // `reason` and the text, quoted.
        "code": code.map_or("unknown", ErrorCode::as_str),
        "rule": rule,
        "reason": quoted_to(reason, left),
        "hint": h,
        "http_status": r.status,
        "said_by": "the host: refusals are not signed by the enclave",
        // The refusal is the host's word; whether the enclave signed the request is not
        // known (a host may have it signed after the status read).
        "signed_by_enclave": false, "request_signed": null,
    });
    (text, v)
}

/// A failure as a tool error: a refusal with its code, rule and reason (the numbers are in
/// the reason), labelled as the host's word — the enclave signs no refusal, so a host could
/// answer one for a request it had signed — or any other error's message; both bounded.
pub fn tool_error(e: &anyhow::Error) -> (String, Value) {
    if let Some(k) = e.downcast_ref::<KeptError>() {
        let v = json!({
            "refused": false, "kind": k.kind, "chain_id": k.chain_id, "nonce": k.nonce, "hash": k.hash,
            "error": k.text,
        });
        return (k.text.clone(), v);
    }
    if let Some(u) = e.downcast_ref::<Unseen>() {
        let text = u.to_string();
        let v = json!({
            "refused": false, "enclave_signed": u.moved.is_some().then_some(true), "chain_id": u.chain_id,
            "nonce": u.nonce, "host_said": u.host_said, "error": text,
        });
        return (text, v);
    }
    if let Some(r) = e.downcast_ref::<Refused>() {
        return refusal(r);
    }
    // Any other failure: this server's words, with what the host wrote in them (an
    // unexpected reply) labelled, quoted and bounded where it is made (`client::Host`); cut
    // here only beyond that, never inside its quotes.
    let text = quoted_to(&format!("{e:#}"), 2 * MAX_QUOTED);
    (text.clone(), json!({"refused": false, "error": text}))
}

#[cfg(test)]
#[path = "mcp_errors_tests.rs"]
mod tests;
