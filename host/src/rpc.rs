//! The Ethereum JSON-RPC 2.0 face (`POST /rpc`): lets standard client libraries use a
//! session address as a remote signer.
//!
//! * `eth_accounts` — the session named in the `Bridle-Session` header, when the host
//!   knows it and it is active; else `[]`.
//! * `eth_signTransaction` — the Ethereum JSON transaction object is converted field by
//!   field into a [`TxRequest`]. Bridle fills nothing: a missing nonce, chain id, gas or
//!   fee is an invalid-params error naming the field. Type 4 (or any `authorizationList`)
//!   goes to the enclave as [`TxRequest::Eip7702`] so that the enclave refuses it with its
//!   own code.
//! * `eth_signTypedData_v4`, `personal_sign` — relayed as typed-data JSON / message bytes.
//! * `bridle_signUserOperation(userOp, entryPoint, chainId)` — an ERC-4337 v0.7 or v0.8
//!   user operation (`entryPointVersion: "0.8"` for a v0.8 entry point elsewhere than its
//!   canonical address) in its RPC JSON form (`sender`, `nonce`, `factory`, `factoryData`,
//!   `callData`, `callGasLimit`, …, `paymasterData`), converted field by field into a
//!   [`UserOperationRequest`]; the session is the `Bridle-Session` header (the account's
//!   owner key, not `sender`). Answers `{"signature", "userOpHash"}`. An `eip7702Auth`
//!   field is refused by the enclave's rule for EIP-7702.
//!
//! The agent's stamp comes from the `Bridle-Stamp` header, parsed and forwarded unchanged.
//!
//! Requests are read straight from the body's bytes into typed structs (no
//! `serde_json::Value` tree): the envelope here, a transaction in [`crate::rpc_tx`], a user
//! operation in [`crate::rpc_userop`], their leaves in [`crate::rpc_json`]. Replies are
//! typed structs, serialized with their keys in the order the earlier `Value` maps wrote
//! them, so the bytes a client receives are unchanged.

use crate::api::{relay_sign, ApiError};
use crate::rpc_json::{first_char, hex_bytes, json_object, narrow, param_address, quantity, Scalar};
use crate::rpc_tx::{parse_tx, signed_tx_result, SignedTxResult};
use crate::rpc_userop::parse_user_op;
use crate::store::StoredState;
use crate::AppState;
use alloy_primitives::{Address, Bytes, B256};
use axum::body::Bytes as BodyBytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{SignPayload, SignRequest};
use bridle_common::stamp::Stamp;
use serde::de::IgnoredAny;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::str::FromStr;

/// Header naming the session (hex address).
pub const SESSION_HEADER: &str = "bridle-session";
/// Header carrying the agent stamp, `v1.<nonce hex>.<timestamp>.<mac hex>`.
pub const STAMP_HEADER: &str = "bridle-stamp";
/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

/// The most params a request may carry (every method Bridle answers takes at most three).
pub const MAX_PARAMS: usize = 16;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// EIP-1474 "unauthorized" — used for unauthenticated / replayed.
pub const UNAUTHORIZED: i64 = -32001;
/// EIP-1474 "transaction rejected" — used for policy denials.
pub const TRANSACTION_REJECTED: i64 = -32003;
/// EIP-1474 "method not supported" — used for `unsupported`.
pub const UNSUPPORTED: i64 = -32004;

/// A JSON-RPC error object (`code`, `data`, `message`: its keys in that order).
#[derive(Debug, Clone, Serialize)]
pub struct RpcError {
    pub code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    pub message: String,
}

/// The JSON-RPC code for a bridle code.
pub fn rpc_code(code: ErrorCode) -> i64 {
    use ErrorCode::*;
    match code {
        Unauthenticated | Replayed => UNAUTHORIZED,
        Malformed | InvalidPolicy | TooLarge => INVALID_PARAMS,
        Unsupported => UNSUPPORTED,
        Internal | Unavailable => INTERNAL_ERROR,
        c if c.is_denial() => TRANSACTION_REJECTED,
        _ => INVALID_PARAMS,
    }
}

impl RpcError {
    fn plain(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), data: None }
    }

    pub(crate) fn internal(message: impl Into<String>) -> RpcError {
        RpcError::plain(INTERNAL_ERROR, message)
    }

    pub fn from_denial(d: &Denial) -> RpcError {
        RpcError {
            code: rpc_code(d.code),
            message: d.to_string(),
            data: Some(json!({"code": d.code.as_str(), "rule": d.rule, "reason": d.reason})),
        }
    }

    /// Invalid params, naming what is wrong.
    pub fn invalid(reason: impl Into<String>) -> RpcError {
        RpcError::from_denial(&Denial::malformed(reason))
    }

    pub(crate) fn unsupported(reason: impl Into<String>) -> RpcError {
        RpcError::from_denial(&Denial::new(ErrorCode::Unsupported, reason))
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> RpcError {
        let mut r = RpcError::from_denial(&e.denial);
        if e.transport {
            r.code = INTERNAL_ERROR;
        }
        r
    }
}

/// What a method answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RpcResult {
    Json(Value),
    Signature(Bytes),
    Transaction(Box<SignedTxResult>),
    UserOperation(UserOpResult),
}

/// The reply to `bridle_signUserOperation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserOpResult {
    pub signature: Bytes,
    pub user_op_hash: B256,
}

/// One JSON-RPC response; its keys in the order the earlier `Value` map wrote them.
#[derive(Debug, Serialize)]
pub struct RpcResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<RpcError>,
    id: Value,
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<RpcResult>,
}

fn response(id: Value, result: Result<RpcResult, RpcError>) -> RpcResponse {
    let (result, error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    RpcResponse { error, id, jsonrpc: "2.0", result }
}

fn invalid_request(message: &str) -> Box<RpcResponse> {
    Box::new(response(Value::Null, Err(RpcError::plain(INVALID_REQUEST, message))))
}

fn parse_error(e: serde_json::Error) -> Box<RpcResponse> {
    let err = RpcError {
        code: PARSE_ERROR,
        message: "parse error".into(),
        data: Some(json!({"code": "malformed", "rule": null, "reason": e.to_string()})),
    };
    Box::new(response(Value::Null, Err(err)))
}

json_object! {
    /// A JSON-RPC request object; other keys are ignored.
    pub struct Envelope<'a> {
        id: "id" => &'a RawValue,
        jsonrpc: "jsonrpc" => Scalar<'a>,
        method: "method" => Scalar<'a>,
        params: "params" => &'a RawValue,
    }
}

/// A request body: one request or a batch (`None` for an item that is not an object).
pub(crate) enum Body<'a> {
    One(Envelope<'a>),
    Batch(Vec<Option<Envelope<'a>>>),
}

/// Split a body into requests, or the one response it gets (parse error, bad batch, not an
/// object). The body is read once; nothing but the envelope's fields is kept.
pub(crate) fn read_body(body: &[u8]) -> Result<Body<'_>, Box<RpcResponse>> {
    match crate::rpc_json::first_byte(body) {
        Some(b'{') => serde_json::from_slice::<Envelope>(body).map(Body::One).map_err(parse_error),
        Some(b'[') => {
            // Counted while read: a batch over the bound is refused before it is held.
            let items = match crate::rpc_json::array_within(body, MAX_BATCH, "batch") {
                Ok(items) => items,
                Err(crate::rpc_json::ArrayError::Malformed(e)) => return Err(parse_error(e)),
                Err(_) => {
                    return Err(invalid_request(&format!("invalid request: a batch exceeds {MAX_BATCH} requests")))
                }
            };
            if items.is_empty() {
                return Err(invalid_request("invalid request: empty batch"));
            }
            Ok(Body::Batch(
                items
                    .into_iter()
                    .map(|item| match first_char(item.get()) {
                        Some(b'{') => serde_json::from_str::<Envelope>(item.get()).ok(),
                        _ => None,
                    })
                    .collect(),
            ))
        }
        _ => match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => Err(invalid_request("invalid request: not an object")),
            Err(e) => Err(parse_error(e)),
        },
    }
}

/// `POST /rpc`.
pub async fn rpc(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<BodyBytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rej) => return crate::api::body_rejection(rej).into_response(),
    };
    match read_body(&body) {
        Err(r) => Json(r).into_response(),
        Ok(Body::One(env)) => match handle_one(&st, &headers, env).await {
            Some(r) => Json(r).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        Ok(Body::Batch(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for env in items {
                match env {
                    Some(env) => out.extend(handle_one(&st, &headers, env).await),
                    None => out.push(*invalid_request("invalid request: not an object")),
                }
            }
            if out.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                Json(out).into_response()
            }
        }
    }
}

/// A checked request: the id to answer with (`None`: a notification), method and params.
pub(crate) struct Checked<'a> {
    pub id: Option<Value>,
    pub method: &'a str,
    pub params: Vec<&'a RawValue>,
}

/// The envelope's checks, in the order the JSON-RPC face has always made them.
pub(crate) fn check<'s, 'a>(env: &'s Envelope<'a>) -> Result<Checked<'s>, Box<RpcResponse>> {
    // The id is echoed as JSON reads it (a string, a number or null).
    let id = match env.id {
        None => None,
        Some(raw) => match first_char(raw.get()) {
            Some(b'"' | b'-' | b'0'..=b'9' | b'n') => {
                Some(serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null))
            }
            _ => return Err(invalid_request("invalid request: bad id")),
        },
    };
    let reply_id = || id.clone().unwrap_or(Value::Null);
    if env.jsonrpc.as_ref().and_then(Scalar::as_str) != Some("2.0") {
        return Err(Box::new(response(
            reply_id(),
            Err(RpcError::plain(INVALID_REQUEST, "invalid request: jsonrpc must be \"2.0\"")),
        )));
    }
    let Some(method) = env.method.as_ref().and_then(Scalar::as_str) else {
        return Err(Box::new(response(
            reply_id(),
            Err(RpcError::plain(INVALID_REQUEST, "invalid request: method must be a string")),
        )));
    };
    let params = match env.params.filter(|p| !crate::rpc_json::is_null(p)) {
        None => Vec::new(),
        Some(p) => match crate::rpc_json::array_within(p.get().as_bytes(), MAX_PARAMS, "params") {
            Ok(a) => a,
            Err(e) => return Err(Box::new(response(reply_id(), Err(e.invalid("params"))))),
        },
    };
    Ok(Checked { id, method, params })
}

/// One request; `None` for a notification (no `id`).
async fn handle_one(st: &AppState, headers: &HeaderMap, env: Envelope<'_>) -> Option<RpcResponse> {
    let c = match check(&env) {
        Ok(c) => c,
        Err(r) => return Some(*r),
    };
    let result = dispatch(st, headers, c.method, c.params).await;
    c.id.map(|id| response(id, result))
}

/// A parameter read as a JSON leaf.
fn scalar(raw: &RawValue) -> Scalar<'_> {
    serde_json::from_str(raw.get()).unwrap_or(Scalar::Other)
}

async fn dispatch(
    st: &AppState,
    headers: &HeaderMap,
    method: &str,
    params: Vec<&RawValue>,
) -> Result<RpcResult, RpcError> {
    match method {
        "eth_accounts" => {
            let session = header_session(headers)?;
            let state = match session {
                // Not known here: another host sharing the database may have stored it.
                Some(s) => match st.store.session_state(&s) {
                    Some(known) => Some(known),
                    None => st.store.run(move |db| db.load_session_state(&s)).await.unwrap_or(None),
                },
                None => None,
            };
            Ok(RpcResult::Json(match (session, state) {
                (Some(s), Some((StoredState::Active, _))) => json!([s]),
                _ => json!([]),
            }))
        }
        "eth_signTransaction" => {
            let [tx] = take_params::<1>(method, params)?;
            let (from, tx) = parse_tx(tx)?;
            let session = resolve_session(headers, from, "from")?;
            let stamp = header_stamp(headers)?;
            let signed =
                relay_sign(st, SignRequest { session, payload: SignPayload::Transaction(tx.clone()), stamp }).await?;
            Ok(RpcResult::Transaction(Box::new(signed_tx_result(tx, signed)?)))
        }
        "eth_signTypedData_v4" => {
            let [addr, data] = take_params::<2>(method, params)?;
            let addr = param_address(&scalar(addr), "address")?;
            let text = match first_char(data.get()) {
                Some(b'"') => match scalar(data) {
                    Scalar::Str(s) => s.into_owned(),
                    _ => return Err(RpcError::invalid("typed data must be a JSON string or object")),
                },
                // An object is relayed as the agent wrote it: re-serialized, a number past 64
                // bits came out rounded (1e+24), so the enclave hashed another document and the
                // agent met `unauthenticated` (a review of 2026-12-06). The enclave parses and
                // bounds it; the host only checks that it is JSON.
                Some(b'{') => {
                    serde_json::from_str::<IgnoredAny>(data.get())
                        .map_err(|_| RpcError::invalid("typed data must be a JSON string or object"))?;
                    // Compact, as it always was, so whitespace never counts toward the
                    // enclave's size bound; numbers and strings stay as written.
                    compact_json(data.get())
                }
                _ => return Err(RpcError::invalid("typed data must be a JSON string or object")),
            };
            let session = resolve_session(headers, Some(addr), "address")?;
            let stamp = header_stamp(headers)?;
            let signed = relay_sign(st, SignRequest { session, payload: SignPayload::TypedData(text), stamp }).await?;
            Ok(RpcResult::Signature(signed.signature))
        }
        "personal_sign" => {
            let [data, addr] = take_params::<2>(method, params)?;
            let bytes = match scalar(data) {
                Scalar::Str(s) => hex_bytes(&s, "data")?,
                _ => return Err(RpcError::invalid("data must be a 0x-hex string")),
            };
            let addr = param_address(&scalar(addr), "address")?;
            let session = resolve_session(headers, Some(addr), "address")?;
            let stamp = header_stamp(headers)?;
            let signed = relay_sign(st, SignRequest { session, payload: SignPayload::Message(bytes), stamp }).await?;
            Ok(RpcResult::Signature(signed.signature))
        }
        "bridle_signUserOperation" => {
            let n = params.len();
            let (op, ep, chain) = match params[..] {
                [op, ep] => (op, ep, None),
                [op, ep, chain] => (op, ep, Some(chain)),
                _ => {
                    return Err(RpcError::invalid(format!(
                        "{method} takes (userOperation, entryPoint, chainId), got {n} parameter(s)"
                    )))
                }
            };
            let entry_point = param_address(&scalar(ep), "entryPoint")?;
            let chain_id: Option<u64> =
                chain.map(|c| quantity(&scalar(c), "chainId").and_then(|v| narrow(v, "chainId"))).transpose()?;
            let op = parse_user_op(op, entry_point, chain_id)?;
            let session = resolve_session(headers, None, "Bridle-Session header")?;
            let stamp = header_stamp(headers)?;
            let signed =
                relay_sign(st, SignRequest { session, payload: SignPayload::UserOperation(op), stamp }).await?;
            Ok(RpcResult::UserOperation(UserOpResult { signature: signed.signature, user_op_hash: signed.digest }))
        }
        other => Err(RpcError::plain(METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

fn take_params<'a, const N: usize>(method: &str, params: Vec<&'a RawValue>) -> Result<[&'a RawValue; N], RpcError> {
    let n = params.len();
    params.try_into().map_err(|_| RpcError::invalid(format!("{method} takes {N} parameter(s), got {n}")))
}

fn header_session(headers: &HeaderMap) -> Result<Option<Address>, RpcError> {
    match headers.get(SESSION_HEADER) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| RpcError::invalid("Bridle-Session header is not text"))?;
            Address::from_str(s.trim())
                .map(Some)
                .map_err(|_| RpcError::invalid("Bridle-Session header is not a hex address"))
        }
    }
}

/// The session: the address in the params and/or the `Bridle-Session` header; when both
/// are given they must agree.
fn resolve_session(headers: &HeaderMap, param: Option<Address>, field: &str) -> Result<Address, RpcError> {
    match (header_session(headers)?, param) {
        (Some(h), Some(p)) if h != p => {
            Err(RpcError::invalid(format!("{field} {p} is not the session {h} named in Bridle-Session")))
        }
        (_, Some(p)) => Ok(p),
        (Some(h), None) => Ok(h),
        (None, None) => Err(RpcError::invalid(format!("missing {field}: name the session address"))),
    }
}

fn header_stamp(headers: &HeaderMap) -> Result<Stamp, RpcError> {
    let Some(v) = headers.get(STAMP_HEADER) else {
        return Err(RpcError::from_denial(&Denial::new(
            ErrorCode::Unauthenticated,
            "missing Bridle-Stamp header: every signing request needs the agent's stamp",
        )));
    };
    v.to_str()
        .ok()
        .and_then(Stamp::from_header)
        .ok_or_else(|| RpcError::invalid("Bridle-Stamp header is not v1.<nonce hex>.<timestamp>.<mac hex>"))
}

#[cfg(test)]
#[path = "rpc_tests.rs"]
mod tests;

/// JSON text `t` (valid JSON) without the whitespace between its tokens: strings, numbers
/// and every other token byte for byte as written.
fn compact_json(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in t.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod compact_tests {
    #[test]
    fn compact_json_keeps_strings_and_numbers_as_written() {
        let t = "{ \"a b\" : [ 1000000000000000000000001 , \"x \\\" \\\\ y\" ] ,\n\t\"c\": { } }";
        assert_eq!(super::compact_json(t), "{\"a b\":[1000000000000000000000001,\"x \\\" \\\\ y\"],\"c\":{}}");
    }
}
