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

use crate::api::{relay_sign, ApiError};
use crate::store::StoredState;
use crate::AppState;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use axum::body::Bytes as BodyBytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::{SignPayload, SignRequest, Signed};
use bridle_common::stamp::Stamp;
use bridle_common::tx::{AccessEntry, AuthorizationRequest, Eip1559Request, LegacyRequest, TxRequest};
use bridle_common::userop::UserOperationRequest;
use serde_json::{json, Map, Value};
use std::str::FromStr;

/// Header naming the session (hex address).
pub const SESSION_HEADER: &str = "bridle-session";
/// Header carrying the agent stamp, `v1.<nonce hex>.<timestamp>.<mac hex>`.
pub const STAMP_HEADER: &str = "bridle-stamp";
/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

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

/// A JSON-RPC error object.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
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

    fn unsupported(reason: impl Into<String>) -> RpcError {
        RpcError::from_denial(&Denial::new(ErrorCode::Unsupported, reason))
    }

    fn to_value(&self) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
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

fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_value()}),
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
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = RpcError {
                code: PARSE_ERROR,
                message: "parse error".into(),
                data: Some(json!({"code": "malformed", "rule": null, "reason": e.to_string()})),
            };
            return Json(response(Value::Null, Err(err))).into_response();
        }
    };
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                let err = RpcError::plain(INVALID_REQUEST, "invalid request: empty batch");
                return Json(response(Value::Null, Err(err))).into_response();
            }
            if items.len() > MAX_BATCH {
                let err = RpcError::plain(
                    INVALID_REQUEST,
                    format!("invalid request: batch of {} exceeds {MAX_BATCH}", items.len()),
                );
                return Json(response(Value::Null, Err(err))).into_response();
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(r) = handle_one(&st, &headers, item).await {
                    out.push(r);
                }
            }
            if out.is_empty() {
                StatusCode::NO_CONTENT.into_response()
            } else {
                Json(Value::Array(out)).into_response()
            }
        }
        single => match handle_one(&st, &headers, single).await {
            Some(r) => Json(r).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

/// One request; `None` for a notification (no `id`).
async fn handle_one(st: &AppState, headers: &HeaderMap, req: Value) -> Option<Value> {
    let Value::Object(mut obj) = req else {
        return Some(response(Value::Null, Err(RpcError::plain(INVALID_REQUEST, "invalid request: not an object"))));
    };
    let id = obj.remove("id");
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Some(response(Value::Null, Err(RpcError::plain(INVALID_REQUEST, "invalid request: bad id"))));
        }
    }
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(response(
            reply_id,
            Err(RpcError::plain(INVALID_REQUEST, "invalid request: jsonrpc must be \"2.0\"")),
        ));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str).map(str::to_string) else {
        return Some(response(
            reply_id,
            Err(RpcError::plain(INVALID_REQUEST, "invalid request: method must be a string")),
        ));
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Some(response(reply_id, Err(RpcError::invalid("params must be an array")))),
    };
    let result = dispatch(st, headers, &method, params).await;
    id.map(|_| response(reply_id, result))
}

async fn dispatch(st: &AppState, headers: &HeaderMap, method: &str, params: Vec<Value>) -> Result<Value, RpcError> {
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
            Ok(match (session, state) {
                (Some(s), Some((StoredState::Active, _))) => json!([s]),
                _ => json!([]),
            })
        }
        "eth_signTransaction" => {
            let [tx] = take_params::<1>(method, params)?;
            let (from, tx) = parse_tx(&tx)?;
            let session = resolve_session(headers, from, "from")?;
            let stamp = header_stamp(headers)?;
            let signed =
                relay_sign(st, SignRequest { session, payload: SignPayload::Transaction(tx.clone()), stamp }).await?;
            signed_tx_result(&tx, &signed)
        }
        "eth_signTypedData_v4" => {
            let [addr, data] = take_params::<2>(method, params)?;
            let addr = param_address(&addr, "address")?;
            let text = match data {
                Value::String(s) => s,
                v @ Value::Object(_) => v.to_string(),
                _ => return Err(RpcError::invalid("typed data must be a JSON string or object")),
            };
            let session = resolve_session(headers, Some(addr), "address")?;
            let stamp = header_stamp(headers)?;
            let signed = relay_sign(st, SignRequest { session, payload: SignPayload::TypedData(text), stamp }).await?;
            Ok(json!(signed.signature))
        }
        "personal_sign" => {
            let [data, addr] = take_params::<2>(method, params)?;
            let bytes = match &data {
                Value::String(s) => hex_bytes(s, "data")?,
                _ => return Err(RpcError::invalid("data must be a 0x-hex string")),
            };
            let addr = param_address(&addr, "address")?;
            let session = resolve_session(headers, Some(addr), "address")?;
            let stamp = header_stamp(headers)?;
            let signed = relay_sign(st, SignRequest { session, payload: SignPayload::Message(bytes), stamp }).await?;
            Ok(json!(signed.signature))
        }
        "bridle_signUserOperation" => {
            let n = params.len();
            if !(2..=3).contains(&n) {
                return Err(RpcError::invalid(format!(
                    "{method} takes (userOperation, entryPoint, chainId), got {n} parameter(s)"
                )));
            }
            let mut it = params.into_iter();
            let (op, ep, chain) = (it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next());
            let entry_point = param_address(&ep, "entryPoint")?;
            let chain_id: Option<u64> =
                chain.map(|c| quantity(&c, "chainId").and_then(|v| narrow(v, "chainId"))).transpose()?;
            let op = parse_user_op(&op, entry_point, chain_id)?;
            let session = resolve_session(headers, None, "Bridle-Session header")?;
            let stamp = header_stamp(headers)?;
            let signed =
                relay_sign(st, SignRequest { session, payload: SignPayload::UserOperation(op), stamp }).await?;
            Ok(json!({"signature": signed.signature, "userOpHash": signed.digest}))
        }
        other => Err(RpcError::plain(METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

const USER_OP_FIELDS: &[&str] = &[
    "sender",
    "nonce",
    "factory",
    "factoryData",
    "initCode",
    "callData",
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "paymaster",
    "paymasterVerificationGasLimit",
    "paymasterPostOpGasLimit",
    "paymasterData",
    "signature",
    "chainId",
    "entryPointVersion",
];

/// Convert an ERC-4337 v0.7/v0.8 RPC user operation (the same fields; `entryPointVersion`
/// "0.8" marks a v0.8 entry point at a non-canonical address). `chainId` comes from the
/// params or the object; nothing is filled in.
pub fn parse_user_op(v: &Value, entry_point: Address, chain_id: Option<u64>) -> Result<UserOperationRequest, RpcError> {
    let obj = v.as_object().ok_or_else(|| RpcError::invalid("the user operation must be a JSON object"))?;
    for k in obj.keys() {
        if k == "eip7702Auth" {
            return Err(RpcError::from_denial(&bridle_common::payload::authorization_denied()));
        }
        if !USER_OP_FIELDS.contains(&k.as_str()) {
            return Err(RpcError::invalid(format!("unknown user operation field {k}")));
        }
    }
    let chain_id = match (chain_id, opt_u64(obj, "chainId")?) {
        (Some(a), Some(b)) if a != b => return Err(RpcError::invalid("chainId differs between params and userOp")),
        (a, b) => required(a.or(b), "chainId")?,
    };
    let bytes = |f: &str| present(obj, f).map(|b| bytes_field(b, f)).transpose();
    let addr = |f: &str| present(obj, f).map(|a| param_address(a, f)).transpose();
    let need128 = |f: &str| required(opt_u128(obj, f)?, f);
    Ok(UserOperationRequest {
        chain_id,
        entry_point,
        entry_point_version: match present(obj, "entryPointVersion").map(|v| v.as_str()) {
            None => None,
            Some(Some("0.7" | "v0.7")) => Some(bridle_common::userop::EntryPointVersion::V07),
            Some(Some("0.8" | "v0.8")) => Some(bridle_common::userop::EntryPointVersion::V08),
            Some(_) => return Err(RpcError::invalid("entryPointVersion must be \"0.7\" or \"0.8\"")),
        },
        sender: required(addr("sender")?, "sender")?,
        nonce: required(opt_u256(obj, "nonce")?, "nonce")?,
        factory: addr("factory")?,
        factory_data: bytes("factoryData")?.unwrap_or_default(),
        init_code: bytes("initCode")?,
        call_data: required(bytes("callData")?, "callData")?,
        call_gas_limit: need128("callGasLimit")?,
        verification_gas_limit: need128("verificationGasLimit")?,
        pre_verification_gas: required(opt_u256(obj, "preVerificationGas")?, "preVerificationGas")?,
        max_fee_per_gas: need128("maxFeePerGas")?,
        max_priority_fee_per_gas: need128("maxPriorityFeePerGas")?,
        paymaster: addr("paymaster")?,
        paymaster_verification_gas_limit: opt_u128(obj, "paymasterVerificationGasLimit")?.unwrap_or(0),
        paymaster_post_op_gas_limit: opt_u128(obj, "paymasterPostOpGasLimit")?.unwrap_or(0),
        paymaster_data: bytes("paymasterData")?.unwrap_or_default(),
    })
}

fn take_params<const N: usize>(method: &str, params: Vec<Value>) -> Result<[Value; N], RpcError> {
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

// ---------------------------------------------------------------------------------------
// Ethereum JSON transaction → TxRequest.

const TX_FIELDS: &[&str] = &[
    "from",
    "to",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "value",
    "data",
    "input",
    "nonce",
    "chainId",
    "type",
    "accessList",
    "authorizationList",
];

const BLOB_FIELDS: &[&str] = &["blobVersionedHashes", "maxFeePerBlobGas", "blobs", "sidecar"];

fn param_address(v: &Value, field: &str) -> Result<Address, RpcError> {
    v.as_str()
        .and_then(|s| Address::from_str(s.trim()).ok())
        .ok_or_else(|| RpcError::invalid(format!("{field} is not a 20-byte hex address")))
}

fn hex_bytes(s: &str, field: &str) -> Result<Bytes, RpcError> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| RpcError::invalid(format!("{field} must be 0x-prefixed hex")))?;
    hex::decode(h).map(Bytes::from).map_err(|_| RpcError::invalid(format!("{field} is not valid hex")))
}

/// A hex quantity ("0x1a") or a non-negative JSON integer.
fn quantity(v: &Value, field: &str) -> Result<U256, RpcError> {
    match v {
        Value::String(s) => {
            let h = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .ok_or_else(|| RpcError::invalid(format!("{field} must be a 0x-prefixed hex quantity")))?;
            if h.is_empty() || h.len() > 64 {
                return Err(RpcError::invalid(format!("{field} is not a valid quantity")));
            }
            U256::from_str_radix(h, 16).map_err(|_| RpcError::invalid(format!("{field} is not a valid hex quantity")))
        }
        Value::Number(n) => n
            .as_u64()
            .map(U256::from)
            .ok_or_else(|| RpcError::invalid(format!("{field} must be a non-negative integer"))),
        _ => Err(RpcError::invalid(format!("{field} must be a hex quantity"))),
    }
}

fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn opt_u256(obj: &Map<String, Value>, field: &str) -> Result<Option<U256>, RpcError> {
    present(obj, field).map(|v| quantity(v, field)).transpose()
}

fn narrow<T: TryFrom<U256>>(v: U256, field: &str) -> Result<T, RpcError> {
    T::try_from(v).map_err(|_| RpcError::invalid(format!("{field} is out of range")))
}

fn opt_u64(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, RpcError> {
    opt_u256(obj, field)?.map(|v| narrow(v, field)).transpose()
}

fn opt_u128(obj: &Map<String, Value>, field: &str) -> Result<Option<u128>, RpcError> {
    opt_u256(obj, field)?.map(|v| narrow(v, field)).transpose()
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, RpcError> {
    v.ok_or_else(|| {
        RpcError::invalid(format!("missing {field}: Bridle fills nothing, the transaction must set {field}"))
    })
}

fn access_list(v: Option<&Value>) -> Result<Vec<AccessEntry>, RpcError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| RpcError::invalid("accessList must be an array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let address = e
                .get("address")
                .ok_or_else(|| RpcError::invalid(format!("accessList[{i}].address is missing")))
                .and_then(|a| param_address(a, &format!("accessList[{i}].address")))?;
            let keys = match e.get("storageKeys") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(keys)) => keys
                    .iter()
                    .map(|k| {
                        k.as_str().and_then(|s| B256::from_str(s.trim()).ok()).ok_or_else(|| {
                            RpcError::invalid(format!(
                                "accessList[{i}].storageKeys has a key that is not 32 bytes of hex"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(RpcError::invalid(format!("accessList[{i}].storageKeys must be an array"))),
            };
            Ok(AccessEntry { address, storage_keys: keys })
        })
        .collect()
}

fn authorization_list(v: &Value) -> Result<Vec<AuthorizationRequest>, RpcError> {
    let arr = v.as_array().ok_or_else(|| RpcError::invalid("authorizationList must be an array"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let o =
                e.as_object().ok_or_else(|| RpcError::invalid(format!("authorizationList[{i}] must be an object")))?;
            let f = |name: &str| format!("authorizationList[{i}].{name}");
            Ok(AuthorizationRequest {
                chain_id: required(opt_u256(o, "chainId")?, &f("chainId"))?,
                address: param_address(present(o, "address").unwrap_or(&Value::Null), &f("address"))?,
                nonce: required(opt_u64(o, "nonce")?, &f("nonce"))?,
            })
        })
        .collect()
}

/// Convert an Ethereum JSON transaction object. Returns `from` (if given) and the request.
pub fn parse_tx(v: &Value) -> Result<(Option<Address>, TxRequest), RpcError> {
    let obj = v.as_object().ok_or_else(|| RpcError::invalid("the transaction must be a JSON object"))?;
    for k in obj.keys() {
        if BLOB_FIELDS.contains(&k.as_str()) {
            return Err(RpcError::unsupported(format!("blob transactions (field {k}) are not supported")));
        }
        if !TX_FIELDS.contains(&k.as_str()) {
            return Err(RpcError::invalid(format!("unknown transaction field {k}")));
        }
    }
    let from = present(obj, "from").map(|f| param_address(f, "from")).transpose()?;
    let to = present(obj, "to").map(|t| param_address(t, "to")).transpose()?;
    let value = opt_u256(obj, "value")?.unwrap_or(U256::ZERO);
    let data = match (present(obj, "data"), present(obj, "input")) {
        (Some(d), Some(i)) => {
            let (d, i) = (bytes_field(d, "data")?, bytes_field(i, "input")?);
            if d != i {
                return Err(RpcError::invalid("data and input are both set and differ"));
            }
            d
        }
        (Some(d), None) => bytes_field(d, "data")?,
        (None, Some(i)) => bytes_field(i, "input")?,
        (None, None) => Bytes::new(),
    };
    let gas = match (opt_u64(obj, "gas")?, opt_u64(obj, "gasLimit")?) {
        (Some(a), Some(b)) if a != b => return Err(RpcError::invalid("gas and gasLimit are both set and differ")),
        (a, b) => a.or(b),
    };
    let gas_price = opt_u128(obj, "gasPrice")?;
    let max_fee = opt_u128(obj, "maxFeePerGas")?;
    let max_priority = opt_u128(obj, "maxPriorityFeePerGas")?;
    let auth_list = present(obj, "authorizationList");
    let has_access_list = present(obj, "accessList").is_some();
    let nonce = opt_u64(obj, "nonce")?;
    let chain_id = opt_u64(obj, "chainId")?;

    let explicit = opt_u64(obj, "type")?;
    let typ = match explicit {
        Some(t) => t,
        None if auth_list.is_some() => 4,
        None if max_fee.is_some() || max_priority.is_some() => 2,
        None if gas_price.is_some() => {
            if has_access_list {
                1
            } else {
                0
            }
        }
        None => {
            return Err(RpcError::invalid(
                "missing fee: set maxFeePerGas and maxPriorityFeePerGas (type 0x2) or gasPrice (type 0x0); Bridle fills nothing",
            ))
        }
    };

    // EIP-7702 (type 4, or any authorization list): relayed so that the enclave refuses it
    // with its own code (R-SIGN-1).
    if typ == 4 || auth_list.is_some() {
        let authorization_list = match auth_list {
            Some(l) => authorization_list(l)?,
            None => Vec::new(),
        };
        let chain_id = required(chain_id, "chainId")?;
        return Ok((from, TxRequest::Eip7702 { chain_id, authorization_list }));
    }

    let tx = match typ {
        2 => {
            if gas_price.is_some() {
                return Err(RpcError::invalid(
                    "gasPrice is set on a type 0x2 transaction; use maxFeePerGas and maxPriorityFeePerGas",
                ));
            }
            TxRequest::Eip1559(Eip1559Request {
                nonce: required(nonce, "nonce")?,
                chain_id: required(chain_id, "chainId")?,
                gas_limit: required(gas, "gas")?,
                max_fee_per_gas: required(max_fee, "maxFeePerGas")?,
                max_priority_fee_per_gas: required(max_priority, "maxPriorityFeePerGas")?,
                to,
                value,
                data,
                access_list: access_list(present(obj, "accessList"))?,
            })
        }
        0 => {
            if max_fee.is_some() || max_priority.is_some() {
                return Err(RpcError::invalid(
                    "maxFeePerGas/maxPriorityFeePerGas are set on a type 0x0 transaction; use gasPrice",
                ));
            }
            if !access_list(present(obj, "accessList"))?.is_empty() {
                return Err(RpcError::unsupported(
                    "an access list with gasPrice is an EIP-2930 (type 0x1) transaction, which is not supported; use type 0x2",
                ));
            }
            TxRequest::Legacy(LegacyRequest {
                nonce: required(nonce, "nonce")?,
                chain_id: required(chain_id, "chainId")?,
                gas_limit: required(gas, "gas")?,
                gas_price: required(gas_price, "gasPrice")?,
                to,
                value,
                data,
            })
        }
        1 => return Err(RpcError::unsupported("EIP-2930 (type 0x1) transactions are not supported; use type 0x2")),
        3 => return Err(RpcError::unsupported("blob (type 0x3) transactions are not supported")),
        t => return Err(RpcError::invalid(format!("unknown transaction type {t:#x}"))),
    };
    Ok((from, tx))
}

fn bytes_field(v: &Value, field: &str) -> Result<Bytes, RpcError> {
    match v {
        Value::String(s) => hex_bytes(s, field),
        _ => Err(RpcError::invalid(format!("{field} must be a 0x-hex string"))),
    }
}

fn q<T: std::fmt::LowerHex>(v: T) -> Value {
    Value::String(format!("{v:#x}"))
}

/// `{"raw": "0x…", "tx": {…}}` as geth/clef answer `eth_signTransaction`. The `tx` fields
/// are the request's plus the enclave's signature; `hash` is keccak256 of `raw`.
fn signed_tx_result(tx: &TxRequest, signed: &Signed) -> Result<Value, RpcError> {
    let raw = signed
        .raw_transaction
        .clone()
        .ok_or_else(|| RpcError::plain(INTERNAL_ERROR, "the enclave signed but returned no raw transaction"))?;
    if signed.signature.len() != 65 {
        return Err(RpcError::plain(INTERNAL_ERROR, "the enclave returned a signature that is not 65 bytes"));
    }
    let r = U256::from_be_slice(&signed.signature[..32]);
    let s = U256::from_be_slice(&signed.signature[32..64]);
    let v = signed.signature[64];
    let parity: u64 = if v >= 27 { (v - 27) as u64 } else { v as u64 } & 1;
    let hash = keccak256(&raw);
    let obj = match tx {
        TxRequest::Eip1559(t) => json!({
            "type": "0x2",
            "chainId": q(t.chain_id),
            "nonce": q(t.nonce),
            "to": t.to,
            "gas": q(t.gas_limit),
            "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas),
            "maxFeePerGas": q(t.max_fee_per_gas),
            "value": q(t.value),
            "input": t.data,
            "accessList": t.access_list.iter().map(|e| json!({
                "address": e.address,
                "storageKeys": e.storage_keys,
            })).collect::<Vec<_>>(),
            "v": q(parity),
            "r": q(r),
            "s": q(s),
            "yParity": q(parity),
            "hash": hash,
        }),
        TxRequest::Legacy(t) => json!({
            "type": "0x0",
            "chainId": q(t.chain_id),
            "nonce": q(t.nonce),
            "to": t.to,
            "gas": q(t.gas_limit),
            "gasPrice": q(t.gas_price),
            "value": q(t.value),
            "input": t.data,
            "v": q(U256::from(t.chain_id) * U256::from(2) + U256::from(35 + parity)),
            "r": q(r),
            "s": q(s),
            "hash": hash,
        }),
        TxRequest::Eip7702 { .. } => {
            return Err(RpcError::plain(
                INTERNAL_ERROR,
                "the enclave signed a type 4 transaction; refusing to relay it",
            ))
        }
    };
    Ok(json!({"raw": raw, "tx": obj}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip1559_conversion() {
        let (from, tx) = parse_tx(&json!({
            "from": "0x1111111111111111111111111111111111111111",
            "to": "0x2222222222222222222222222222222222222222",
            "gas": "0x5208", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
            "value": "0xde0b6b3a7640000", "input": "0xabcd", "nonce": "0x7", "chainId": "0x1",
        }))
        .unwrap();
        assert_eq!(from, Some(Address::repeat_byte(0x11)));
        let TxRequest::Eip1559(t) = tx else { panic!() };
        assert_eq!(t.gas_limit, 21000);
        assert_eq!(t.max_fee_per_gas, 2_000_000_000);
        assert_eq!(t.max_priority_fee_per_gas, 1_000_000_000);
        assert_eq!(t.nonce, 7);
        assert_eq!(t.chain_id, 1);
        assert_eq!(t.value, U256::from(10u64.pow(18)));
        assert_eq!(t.data.as_ref(), &[0xab, 0xcd]);
    }

    #[test]
    fn legacy_and_errors() {
        let (_, tx) = parse_tx(&json!({
            "to": null, "gas": 100000, "gasPrice": "0x1", "nonce": "0x0", "chainId": 5, "data": "0x60"
        }))
        .unwrap();
        let TxRequest::Legacy(t) = tx else { panic!() };
        assert_eq!(t.to, None);
        assert_eq!(t.chain_id, 5);

        let e = parse_tx(&json!({"gasPrice": "0x1", "gas": "0x1", "chainId": "0x1"})).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("nonce"), "{}", e.message);
        let e = parse_tx(&json!({"nonce": "0x1", "gas": "0x1", "chainId": "0x1"})).unwrap_err();
        assert!(e.message.contains("fee"), "{}", e.message);
        let e =
            parse_tx(&json!({"type": "0x2", "maxFeePerGas": "0x1", "gas": "0x1", "chainId": "0x1", "nonce": "0x0"}))
                .unwrap_err();
        assert!(e.message.contains("maxPriorityFeePerGas"), "{}", e.message);
        let e = parse_tx(&json!({"data": "0x01", "input": "0x02", "gasPrice": "0x1"})).unwrap_err();
        assert!(e.message.contains("differ"));
        let e = parse_tx(&json!({"gasPrice": "0x1", "bogus": 1})).unwrap_err();
        assert!(e.message.contains("bogus"));
        let e = parse_tx(&json!({"gasPrice": "0x1", "maxFeePerGasBlob": 1})).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        let e = parse_tx(&json!({"maxFeePerBlobGas": "0x1"})).unwrap_err();
        assert_eq!(e.code, UNSUPPORTED);
        let e = parse_tx(&json!({"nonce": "12", "gasPrice": "0x1"})).unwrap_err();
        assert!(e.message.contains("nonce"));
    }

    #[test]
    fn type4_is_passed_as_eip7702() {
        let (_, tx) = parse_tx(&json!({
            "type": "0x4", "chainId": "0x1",
            "authorizationList": [{"chainId": "0x1", "address": "0x3333333333333333333333333333333333333333", "nonce": "0x2", "yParity": "0x0", "r": "0x1", "s": "0x1"}]
        }))
        .unwrap();
        let TxRequest::Eip7702 { chain_id, authorization_list } = tx else { panic!() };
        assert_eq!(chain_id, 1);
        assert_eq!(authorization_list.len(), 1);
        assert_eq!(authorization_list[0].nonce, 2);
        // An authorization list on an otherwise type-2 transaction is still 7702.
        let (_, tx) = parse_tx(&json!({
            "chainId": "0x1", "maxFeePerGas": "0x1", "authorizationList": []
        }))
        .unwrap();
        assert!(matches!(tx, TxRequest::Eip7702 { .. }));
    }

    #[test]
    fn user_op_conversion() {
        let ep = Address::repeat_byte(0xee);
        let op = parse_user_op(
            &json!({
                "sender": "0x1111111111111111111111111111111111111111", "nonce": "0x1",
                "factory": "0x2222222222222222222222222222222222222222", "factoryData": "0xab",
                "callData": "0xb61d27f6", "callGasLimit": "0x10", "verificationGasLimit": "0x20",
                "preVerificationGas": "0x30", "maxFeePerGas": "0x40", "maxPriorityFeePerGas": "0x5",
                "paymaster": "0x3333333333333333333333333333333333333333", "paymasterVerificationGasLimit": "0x6",
                "paymasterPostOpGasLimit": "0x7", "paymasterData": "0x", "signature": "0x"
            }),
            ep,
            Some(10),
        )
        .unwrap();
        assert_eq!(op.chain_id, 10);
        assert_eq!(op.entry_point, ep);
        assert_eq!(op.factory, Some(Address::repeat_byte(0x22)));
        assert_eq!(op.factory_data.as_ref(), &[0xab]);
        assert_eq!((op.call_gas_limit, op.verification_gas_limit, op.max_fee_per_gas), (0x10, 0x20, 0x40));
        assert_eq!(op.paymaster_post_op_gas_limit, 7);
        let e =
            parse_user_op(&json!({"sender": "0x1111111111111111111111111111111111111111"}), ep, Some(1)).unwrap_err();
        assert!(e.message.contains("nonce"), "{}", e.message);
        let e = parse_user_op(&json!({"eip7702Auth": {}}), ep, Some(1)).unwrap_err();
        assert_eq!(e.data.unwrap()["code"], "authorization_denied");
        let e = parse_user_op(&json!({"bogus": 1}), ep, Some(1)).unwrap_err();
        assert!(e.message.contains("bogus"));
    }

    #[test]
    fn codes() {
        assert_eq!(rpc_code(ErrorCode::SpendCap), TRANSACTION_REJECTED);
        assert_eq!(rpc_code(ErrorCode::Unauthenticated), UNAUTHORIZED);
        assert_eq!(rpc_code(ErrorCode::Replayed), UNAUTHORIZED);
        assert_eq!(rpc_code(ErrorCode::Malformed), INVALID_PARAMS);
        assert_eq!(rpc_code(ErrorCode::Unsupported), UNSUPPORTED);
        assert_eq!(rpc_code(ErrorCode::Internal), INTERNAL_ERROR);
        assert_eq!(rpc_code(ErrorCode::AuthorizationDenied), TRANSACTION_REJECTED);
    }
}
