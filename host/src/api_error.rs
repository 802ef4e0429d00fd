//! How the HTTP API answers errors and reads its inputs: [`ApiError`] (an HTTP status and
//! the enclave's or the host's [`Denial`]), the JSON body and address-path extractors that
//! answer malformed input with one.

use crate::enclave_client::{reply_name, ClientError};
use alloy_primitives::Address;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::Reply;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::str::FromStr;

/// An error answered over HTTP: a status and a [`Denial`] (code, rule, reason).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub denial: Denial,
    /// A transport failure (the enclave was not reached or did not answer).
    pub transport: bool,
}

/// The HTTP status for a bridle code.
pub fn status_for(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        Unauthenticated | Replayed => StatusCode::UNAUTHORIZED,
        UnknownSession => StatusCode::NOT_FOUND,
        Malformed | InvalidPolicy => StatusCode::BAD_REQUEST,
        TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Unsupported => StatusCode::NOT_IMPLEMENTED,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        c if c.is_denial() => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl ApiError {
    pub fn new(status: StatusCode, denial: Denial) -> ApiError {
        ApiError { status, denial, transport: false }
    }

    pub fn denial(d: Denial) -> ApiError {
        ApiError::new(status_for(d.code), d)
    }

    pub fn malformed(reason: impl Into<String>) -> ApiError {
        ApiError::denial(Denial::malformed(reason))
    }

    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::denial(Denial::new(ErrorCode::Internal, reason))
    }

    fn transport(status: StatusCode, reason: String) -> ApiError {
        ApiError { status, denial: Denial::new(ErrorCode::Internal, reason), transport: true }
    }

    /// 410: the session's enclave restarted; the key is gone (R-TRUST-4).
    pub fn lost(session: &Address, enclave: &Address) -> ApiError {
        ApiError::new(
            StatusCode::GONE,
            Denial::new(
                ErrorCode::UnknownSession,
                format!(
                    "session {session} is lost: the enclave that held its key (identity {enclave}) \
                     restarted, and a session key never leaves its enclave, so the session is gone \
                     and cannot be restored; the owner must create a new session"
                ),
            ),
        )
    }

    pub fn wrong_reply(call: &str, reply: &Reply) -> ApiError {
        ApiError::transport(
            StatusCode::BAD_GATEWAY,
            format!("enclave answered {call} with a {} reply", reply_name(reply)),
        )
    }

    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.denial.code.as_str(),
                "rule": self.denial.rule,
                "reason": self.denial.reason,
                "message": self.denial.to_string(),
            }
        })
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> ApiError {
        match e {
            ClientError::Denied(d) => ApiError::denial(d),
            ClientError::Unavailable(m) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                denial: Denial::new(ErrorCode::Unavailable, format!("enclave unreachable: {m}")),
                transport: true,
            },
            ClientError::Timeout(_) => ApiError::transport(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
            ClientError::Protocol(_) => ApiError::transport(StatusCode::BAD_GATEWAY, e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// A JSON body parsed with serde; any failure (bad JSON, wrong shape, too large) becomes
/// our error body. The content type is not required.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(body_rejection)?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| ApiError::malformed(format!("invalid JSON body: {e}")))
    }
}

pub(crate) fn body_rejection(rej: BytesRejection) -> ApiError {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::denial(Denial::new(ErrorCode::TooLarge, "request body exceeds the host's limit"))
    } else {
        ApiError::malformed(format!("cannot read request body: {}", rej.body_text()))
    }
}

/// An address path segment (`/{session}`, `/{owner}`).
pub struct AddrPath(pub Address);

impl<S: Send + Sync> FromRequestParts<S> for AddrPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::malformed(format!("bad path: {}", e.body_text())))?;
        parse_address(&raw).map(AddrPath)
    }
}

pub fn parse_address(s: &str) -> Result<Address, ApiError> {
    Address::from_str(s.trim()).map_err(|_| ApiError::malformed(format!("`{s}` is not a 20-byte hex address")))
}
