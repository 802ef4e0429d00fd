//! What `bridle mcp` tells a model when a request ends without a checked signature: the
//! host's refusals (its word, never signed), the enclave's own word that it signed anyway
//! ([`Unseen`]), and the payments this server will not sign again ([`KeptError`]) — each as
//! tool-error text and structured content ([`tool_error`]).

use crate::client::{quoted, quoted_to, Refused};
use crate::mcp_kept::MAX_KEPT;
use alloy_primitives::B256;
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
                 mined yet, and broadcasting it again failed: {}. It may still be mined: do not send this payment \
                 again; look for its receipt.",
                quoted_to(why, 200)
            ),
        }
    }

    pub(crate) fn full() -> KeptError {
        KeptError {
            kind: "too_many_unresolved",
            chain_id: None,
            nonce: None,
            hash: None,
            text: format!(
                "{MAX_KEPT} payments are unresolved (answered without a checked signature, or sent and not mined): \
                 no new payment until some are mined or resolved"
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

/// What a model should do about a refusal code.
fn hint(code: &str) -> &'static str {
    match code {
        "spend_cap" => "ask for no more than what remains (the status tool shows it) or wait for the cap's reset",
        "value_cap" => "send less native value per call",
        "rate_limited" => "wait: too many signatures in the policy's window",
        "quota_exhausted" => "the session's signature quota is used up; ask the owner for a new session",
        "gas_cap" => {
            "the fees or gas limit are above the policy's gas rules; set a lower gas_limit or wait for lower fees"
        }
        "target_not_allowed" | "selector_not_allowed" | "argument_rejected" | "recipient_not_allowed" => {
            "the policy does not allow this call; explain_policy lists what it allows"
        }
        "chain_not_allowed" => "this chain is not in the policy's chains",
        "expired" | "revoked" | "suspended" | "not_yet_valid" => {
            "the session cannot sign now; the owner must act (new session, policy update)"
        }
        "pending_approval" => {
            "held for the owner's approval; after the owner approves, call send_transaction again with the same \
             to, value and data: the held transaction is sent again unchanged (same nonce and fees), and its \
             approved signature comes back. An equal payment cannot be made while this one is held"
        }
        "denied_by_owner" => {
            "the owner denied this very request; do not send it again (it stays refused until the hold expires)"
        }
        "unauthenticated" | "replayed" => "the stamp was refused: check the enclave identity and the clock",
        _ => "",
    }
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
        let code = quoted(&r.code.clone().unwrap_or_else(|| "error".into()));
        let reason = quoted(&r.reason.clone().unwrap_or_else(|| r.message.clone()));
        let rule = r.rule.as_deref().map(quoted);
        let text = match &rule {
            Some(rule) => {
                format!("refused (the host's word; refusals are not signed): {code} (rule {rule}): {reason:?}")
            }
            None => format!("refused (the host's word; refusals are not signed): {code}: {reason:?}"),
        };
        let h = hint(&code);
        let text = if h.is_empty() { text } else { format!("{text}. Hint: {h}") };
        let v = json!({
            "refused": true, "code": code, "rule": rule, "reason": reason, "message": quoted(&r.message),
            "hint": h, "http_status": r.status,
            // The refusal is the host's word; whether the enclave signed the request is not
            // known (a host may have it signed after the status read).
            "signed_by_enclave": false, "request_signed": null,
        });
        return (text, v);
    }
    let text = quoted(&format!("{e:#}"));
    (text.clone(), json!({"refused": false, "error": text}))
}
