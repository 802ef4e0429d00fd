//! One place that turns a [`SignPayload`] into what is signed: the digest the enclave
//! computes itself (R-TRUST-1), the digest the agent's stamp covers, and the policy
//! decision. The enclave, the CLI (stamping and `policy simulate`) and the tests all use
//! it, so they cannot disagree.
//!
//! | payload          | stamp digest (`Signed.digest`)      | what the key signs                  |
//! |------------------|-------------------------------------|-------------------------------------|
//! | transaction      | EIP-155 / EIP-1559 signing hash     | the same                            |
//! | typed data       | EIP-712 signing hash                | the same                            |
//! | message          | EIP-191 hash of the bytes           | the same                            |
//! | user operation   | userOpHash (EntryPoint v0.7 / v0.8) | v0.7: EIP-191 hash of the 32-byte hash; v0.8: the hash |
//! | type 4           | — refused before anything else      | never                               |

use crate::allowance::Place;
use crate::error::{Denial, ErrorCode};
use crate::policy::{evaluate, evaluate_message, evaluate_typed_data, evaluate_user_op, Charges, CompiledPolicy};
use crate::policy::{Context, Counters, Operation};
use crate::protocol::SignPayload;
use crate::tx::{BuiltTx, Call, Gas, TxRequest};
use crate::typed::ParsedTypedData;
use crate::userop::UserOperationRequest;
use alloy_primitives::{eip191_hash_message, Bytes, B256};

/// A payload decoded and hashed, ready for the policy and the key.
#[derive(Debug, Clone)]
pub enum Prepared {
    Transaction { built: Box<BuiltTx>, chain_id: u64, nonce: u64, call: Call, gas: Option<Gas>, digest: B256 },
    TypedData { parsed: Box<ParsedTypedData> },
    Message { bytes: Bytes, digest: B256 },
    UserOperation { op: Box<UserOperationRequest>, hash: B256 },
}

/// The refusal of EIP-7702 (R-SIGN-1).
pub fn authorization_denied() -> Denial {
    Denial::rule(
        ErrorCode::AuthorizationDenied,
        "transaction type",
        "EIP-7702 (type 4) transactions and authorizations hand over the whole account; never signed",
    )
}

/// Decode and hash a payload. Type-4 transactions are refused here, before anything else.
pub fn prepare(payload: &SignPayload) -> Result<Prepared, Denial> {
    Ok(match payload {
        SignPayload::Transaction(TxRequest::Eip7702 { .. }) => return Err(authorization_denied()),
        // EIP-2681: no transaction is valid at nonce 2^64 − 1, and the registry's lanes
        // count nonces up to it (a review of 2026-12-05: one signed there was taken as
        // "above every nonce signed", as if nothing could be displaced there). The last
        // `MAX_WRITES` below it are kept for the sweeps that follow a session's transactions.
        SignPayload::Transaction(tx) if tx.nonce() > u64::MAX - 1 - crate::allowance::MAX_WRITES as u64 => {
            return Err(Denial::malformed(format!(
                "nonce {} is too large: at most 2^64 - {} (EIP-2681 keeps 2^64 - 1 invalid; the rest is kept for sweeps)",
                tx.nonce(),
                2 + crate::allowance::MAX_WRITES
            )))
        }
        SignPayload::Transaction(tx) => {
            let built = tx.build().ok_or_else(|| Denial::malformed("transaction cannot be built"))?;
            let call = tx.call().ok_or_else(|| Denial::malformed("transaction has no call"))?;
            let digest = built.signing_hash();
            Prepared::Transaction {
                built: Box::new(built),
                chain_id: tx.chain_id(),
                nonce: tx.nonce(),
                call,
                gas: tx.gas(),
                digest,
            }
        }
        SignPayload::TypedData(json) => Prepared::TypedData { parsed: Box::new(crate::typed::parse(json)?) },
        SignPayload::Message(m) => {
            if m.len() > crate::policy::offchain::MAX_MESSAGE {
                return Err(Denial::new(
                    ErrorCode::TooLarge,
                    format!("message of {} bytes; at most {}", m.len(), crate::policy::offchain::MAX_MESSAGE),
                ));
            }
            Prepared::Message { bytes: m.clone(), digest: eip191_hash_message(m) }
        }
        SignPayload::UserOperation(op) => Prepared::UserOperation { hash: op.hash()?, op: Box::new(op.clone()) },
    })
}

/// The digest the agent's stamp commits to (and `Signed.digest`), for the agent side.
pub fn stamp_digest(payload: &SignPayload) -> Result<B256, Denial> {
    prepare(payload).map(|p| p.stamp_digest())
}

impl Prepared {
    /// What the stamp's MAC covers and what `Signed.digest` reports.
    pub fn stamp_digest(&self) -> B256 {
        match self {
            Prepared::Transaction { digest, .. } | Prepared::Message { digest, .. } => *digest,
            Prepared::TypedData { parsed } => parsed.digest,
            Prepared::UserOperation { hash, .. } => *hash,
        }
    }

    /// What the session key signs.
    pub fn signing_digest(&self) -> B256 {
        match self {
            Prepared::UserOperation { op, hash } => op.signing_digest(hash),
            other => other.stamp_digest(),
        }
    }

    /// The policy decision (pure; the caller charges on success under the session lock).
    /// The charges carry the request's USD value at the price table (RULES.md §3).
    pub fn evaluate(&self, p: &CompiledPolicy, c: &Counters, ctx: &Context) -> Result<Charges, Denial> {
        let mut charges = match self {
            Prepared::Transaction { chain_id, nonce, call, gas, .. } => {
                let calls = [call.clone()];
                let place = Place::Own { chain_id: *chain_id, nonce: *nonce };
                let op = Operation { chain_id: *chain_id, calls: &calls, gas: *gas, place, holder: ctx.account };
                evaluate(p, c, ctx, &op)
            }
            Prepared::TypedData { parsed } => evaluate_typed_data(p, c, ctx, parsed),
            Prepared::Message { bytes, .. } => evaluate_message(p, c, ctx, bytes),
            Prepared::UserOperation { op, .. } => evaluate_user_op(p, c, ctx, op),
        }?;
        charges.usd = crate::policy::escalate::charges_usd(p, &charges).0;
        Ok(charges)
    }

    /// What kind of payload it is: `transaction`, `typed_data`, `message`, `user_operation`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Prepared::Transaction { .. } => "transaction",
            Prepared::TypedData { .. } => "typed_data",
            Prepared::Message { .. } => "message",
            Prepared::UserOperation { .. } => "user_operation",
        }
    }
}
