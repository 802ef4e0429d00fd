//! The host API as an OpenAPI 3.1 document, served at `GET /openapi.json`.
//!
//! Request and reply bodies are the protocol types of `bridle-common` (their schemas are
//! derived from the types with its `openapi` feature, which only the host enables); the few
//! bodies the host builds itself (errors, health, attestation, stored records, the audit
//! page) are described by the schema types below. Each route is documented on a stub next
//! to its handler's name; a test checks that every route of [`crate::router`] is here, and
//! the API tests validate real replies against this document (tests/tests/api_docs.rs).

#![allow(dead_code)]

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bridle_common::audit::{AuditEntry, AuditHead, AuditReply};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::protocol::*;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// Every error: HTTP 400 malformed or invalid policy, 401 unauthenticated or replayed (a
/// stale stamp is `unauthenticated`), 403 policy denials, 404/410 unknown or lost session,
/// 413 too large, 501 unsupported, 502/503/504 enclave unreachable or not answering.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Bridle's stable code, snake_case.
    pub code: ErrorCode,
    /// The policy rule that failed, e.g. `limits[0]`, when one did.
    pub rule: Option<String>,
    /// What failed, with the numbers (`USDC per day: spent 60 USDC, asking 50 USDC, cap 100 USDC`).
    pub reason: String,
    /// One line: `denied: spend cap exceeded [spend_cap] (rule limits[0], …)`.
    pub message: String,
}

#[derive(ToSchema)]
pub struct Health {
    /// `ok` (HTTP 200) or `unavailable` (HTTP 503).
    pub status: String,
    pub enclave: HealthEnclave,
}

#[derive(ToSchema)]
pub struct HealthEnclave {
    /// The enclave identity address (null before the host has reached it once).
    pub identity: Option<String>,
    pub reachable: bool,
    pub error: Option<String>,
}

#[derive(ToSchema)]
pub struct AttestationBody {
    /// The NSM attestation document (COSE_Sign1), 0x-hex.
    pub document: String,
    /// The same bytes, base64.
    pub document_base64: String,
    /// Decoded without verification, for display only: verify the document yourself.
    pub summary: Option<AttestationSummary>,
    /// Why `summary` is null.
    pub summary_error: Option<String>,
}

#[derive(ToSchema)]
pub struct AttestationSummary {
    /// Always false: the host verifies nothing.
    pub verified: bool,
    pub module_id: String,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    pub digest: String,
    /// PCR index → hex (no `0x`).
    pub pcrs: std::collections::BTreeMap<String, String>,
    /// The enclave identity public key (SEC1, hex without `0x`).
    pub public_key: Option<String>,
    pub user_data: Option<String>,
    pub nonce: Option<String>,
}

/// A session as the host stored it.
#[derive(ToSchema)]
pub struct StoredSession {
    pub session: String,
    pub owner: String,
    pub agent: String,
    /// The identity address of the enclave that holds (held) the key.
    pub enclave: String,
    pub policy_hash: String,
    /// `active`, `revoked` or `lost` (its enclave restarted: the key is gone).
    pub state: String,
    pub created_at: u64,
    pub valid_until: u64,
    /// The normalized policy as the owner signed it.
    pub policy: Value,
    /// The enclave's `SessionCreated` reply.
    pub binding: Value,
}

/// `GET /v1/sessions/{session}`: the enclave's facts (null when the enclave does not know
/// the session) and the host's stored record (null when it has none).
#[derive(ToSchema)]
pub struct SessionView {
    pub session: Option<SessionStatus>,
    pub stored: Option<StoredSession>,
    /// Why the enclave's facts are missing, when it could not be asked.
    pub enclave_error: Option<Denial>,
}

#[derive(ToSchema)]
pub struct AllowancesView {
    pub session: String,
    pub state: SessionState,
    /// Enclave time, unix seconds.
    pub now: u64,
    pub allowances: Vec<bridle_common::allowance::Allowance>,
    pub exposure: ExposureStatus,
    pub pending: Vec<PendingStatus>,
    pub suspended_reason: Option<String>,
}

/// One signed policy the host relayed.
#[derive(ToSchema)]
pub struct PolicyRecord {
    pub session: String,
    pub policy_hash: String,
    pub policy: Value,
    pub owner: String,
    pub nonce: u64,
    pub signature: String,
    pub received_at: u64,
}

/// A signed revocation the host relayed.
#[derive(ToSchema)]
pub struct StoredSweepTx {
    pub session: String,
    pub chain_id: u64,
    pub nonce: u64,
    pub token: String,
    pub spender: String,
    pub hash: String,
    pub raw_transaction: String,
    pub signed_at: u64,
}

/// `GET /v1/audit`: a page of the stored log (verify it with `bridle verify audit`).
#[derive(ToSchema)]
pub struct AuditPage {
    pub enclave: Option<String>,
    pub identity_public_key: Option<String>,
    pub entries: Vec<AuditEntry>,
    pub head: Option<AuditHead>,
    pub more: bool,
    pub gaps: Option<Vec<Gap>>,
    /// The host's word that its audit retention (`audit_retention_days`) deleted every entry
    /// up to this one: the stored chain starts after it. No signature covers it.
    pub pruned_through: Option<u64>,
    pub sync: AuditSync,
}

#[derive(ToSchema)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
}

#[derive(ToSchema)]
pub struct AuditSync {
    /// `never`, `ok`, `unsupported`, `unreachable`, `refused` or `conflict`.
    pub state: String,
    pub enclave: Option<String>,
    pub stored_through: Option<u64>,
    pub last_pull: Option<u64>,
    pub error: Option<String>,
}

/// A JSON-RPC 2.0 request (or an array of up to 100). Headers: `Bridle-Session: 0x…` and
/// `Bridle-Stamp: v1.<nonce hex>.<unix seconds>.<mac hex>` for the signing methods.
#[derive(ToSchema)]
pub struct RpcRequest {
    /// `"2.0"`.
    pub jsonrpc: String,
    pub id: Value,
    /// `eth_accounts`, `eth_signTransaction`, `eth_signTypedData_v4`, `personal_sign`,
    /// `bridle_signUserOperation`.
    pub method: String,
    pub params: Vec<Value>,
}

/// A JSON-RPC 2.0 reply. `eth_signTransaction`'s result is [`SignedTransaction`].
#[derive(ToSchema)]
pub struct RpcResponse {
    pub jsonrpc: String,
    pub id: Value,
    pub result: Option<Value>,
    pub error: Option<RpcError>,
}

#[derive(ToSchema)]
pub struct RpcError {
    /// -32003 policy denials, -32001 unauthenticated or replayed, -32602 malformed, -32004
    /// unsupported, -32603 internal or enclave unreachable, -32601 unknown method, -32600
    /// invalid request, -32700 parse error.
    pub code: i64,
    pub message: String,
    /// Bridle's code, rule and reason.
    pub data: Option<Denial>,
}

/// `eth_signTransaction`'s result, as geth and clef answer it.
#[derive(ToSchema)]
pub struct SignedTransaction {
    /// The signed EIP-2718 transaction, 0x-hex, ready for `eth_sendRawTransaction`.
    pub raw: String,
    /// The request's fields as hex quantities, plus `v`, `r`, `s` (and `yParity` for
    /// type 0x2) and `hash` (keccak256 of `raw`).
    pub tx: Value,
}

/// `bridle_signUserOperation`'s result.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct SignedUserOperation {
    pub signature: String,
    pub userOpHash: String,
}

/// `GET /v1/owners/{owner}/sessions`, `…/policies`: JSON arrays, a page at a time.
#[derive(ToSchema)]
pub struct Sessions(pub Vec<StoredSession>);

const ERRORS: &str = "an error body: see ErrorBody for the status codes";
const PAGE_AFTER: &str = "the cursor a previous page's Link header names (opaque)";
const PAGE_LIMIT: &str = "rows in the page, 1 to 100 (default 100); a page also ends before 1 MiB of JSON";

#[utoipa::path(get, path = "/health", tag = "host",
    responses((status = 200, body = Health, description = "host and enclave reachable"),
              (status = 503, body = Health, description = "the enclave is not reachable")))]
fn health() {}

#[utoipa::path(get, path = "/metrics", tag = "host",
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus metrics")))]
fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", tag = "host",
    responses((status = 200, body = Object, description = "this document")))]
fn openapi_json() {}

#[utoipa::path(get, path = "/v1/status", tag = "enclave",
    params(("session" = Option<String>, Query, description = "a session address: its facts come too"),
           ("nonce" = Option<String>, Query, description = "32 bytes, 0x-hex: the enclave signs the reply for it (`receipt`)"),
           ("held" = Option<String>, Query, description = "with `session`: a held request's digest, 0x-hex; its payload is shown whatever its size (the others' only while they fit in 256 KiB together: `payload_omitted`)"),
           ("cbor" = Option<String>, Query, description = "`1`: the reply also carries `cbor`, 0x-hex of the reply's CBOR without its receipt (the bytes the receipt signs)")),
    responses((status = 200, body = Status, description = "`identity_public_key` is the enclave identity key (SEC1 compressed, 0x-hex) the agent's stamp key is derived with"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn status() {}

#[utoipa::path(get, path = "/v1/attestation", tag = "enclave",
    params(("nonce" = Option<String>, Query, description = "up to 512 bytes of hex (0x optional), carried in the document")),
    responses((status = 200, body = AttestationBody, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn attestation() {}

#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("since" = Option<u64>, Query, description = "first sequence number"), ("limit" = Option<u64>, Query),
           ("enclave" = Option<String>, Query, description = "an enclave identity address; default the current")),
    responses((status = 200, body = AuditPage, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn audit() {}

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit",
    params(("enclave" = Option<String>, Query)),
    responses((status = 200, body = Object, description = "the stored chain as a file (`bridle verify audit` reads it): {format, enclave, identity_public_key, pruned_through, entries, head, …}; pruned_through (the host's word): its audit retention deleted the entries up to it"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn audit_export() {}

#[utoipa::path(get, path = "/v1/audit/head", tag = "audit",
    params(("nonce" = Option<String>, Query, description = "32 bytes, 0x-hex")),
    responses((status = 200, body = AuditHead, description = "a head signed at the log's end now"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn audit_head() {}

#[utoipa::path(post, path = "/v1/sessions", tag = "owner", request_body = CreateSession,
    responses((status = 200, body = SessionCreated, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn create_session() {}

#[utoipa::path(get, path = "/v1/sessions/{session}", tag = "sessions",
    params(("session" = String, Path, description = "session address")),
    responses((status = 200, body = SessionView, description = "the reply"), (status = 404, body = ErrorBody, description = "unknown session"),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn get_session() {}

#[utoipa::path(post, path = "/v1/sessions/{session}/policy", tag = "owner", request_body = UpdatePolicy,
    params(("session" = String, Path)),
    responses((status = 200, body = PolicyUpdated, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn update_policy() {}

#[utoipa::path(get, path = "/v1/sessions/{session}/policies", tag = "sessions",
    params(("session" = String, Path), ("after" = Option<String>, Query, description = PAGE_AFTER),
           ("limit" = Option<u64>, Query, description = PAGE_LIMIT),
           ("hash" = Option<String>, Query, description = "the latest record with this policy hash (an array of at most one); alone")),
    responses((status = 200, body = Vec<PolicyRecord>, description = "a page of the signed policies relayed, oldest first",
               headers(("Link" = String, description = "on a full page: `<?after=…&limit=…>; rel=\"next\"`, the next page, relative to this request's URL"))),
              (status = 400, body = ErrorBody, description = "a bad parameter"),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn session_policies() {}

#[utoipa::path(post, path = "/v1/sessions/{session}/revoke", tag = "owner", request_body = Revoke,
    params(("session" = String, Path)),
    responses((status = 200, body = Revoked, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn revoke() {}

#[utoipa::path(post, path = "/v1/sessions/{session}/approve", tag = "owner", request_body = ApprovePending,
    params(("session" = String, Path)),
    responses((status = 200, body = Object, description = "the enclave's reply to approve_pending (the held request's Signed)"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn approve_pending() {}

#[utoipa::path(post, path = "/v1/sessions/{session}/deny", tag = "owner", request_body = DenyPending,
    params(("session" = String, Path)),
    responses((status = 200, body = PendingDenied, description = "the enclave's receipted word that the held request is denied"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn deny_pending() {}

#[utoipa::path(get, path = "/v1/sessions/{session}/allowances", tag = "sessions",
    params(("session" = String, Path)),
    responses((status = 200, body = AllowancesView, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn allowances() {}

#[utoipa::path(post, path = "/v1/sessions/{session}/sweep", tag = "owner", request_body = Sweep,
    params(("session" = String, Path)),
    responses((status = 200, body = SweepReply, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn sweep() {}

#[utoipa::path(get, path = "/v1/sessions/{session}/sweeps", tag = "sessions",
    params(("session" = String, Path), ("after" = Option<String>, Query, description = PAGE_AFTER),
           ("limit" = Option<u64>, Query, description = PAGE_LIMIT)),
    responses((status = 200, body = Vec<StoredSweepTx>, description = "a page of the revocations relayed, oldest first",
               headers(("Link" = String, description = "on a full page: `<?after=…&limit=…>; rel=\"next\"`, the next page, relative to this request's URL"))),
              (status = 400, body = ErrorBody, description = "a bad parameter"),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn sweeps() {}

#[utoipa::path(post, path = "/v1/owners/{owner}/revoke-all", tag = "owner", request_body = RevokeAll,
    params(("owner" = String, Path)),
    responses((status = 200, body = Revoked, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn revoke_all() {}

#[utoipa::path(post, path = "/v1/owners/{owner}/allow-image", tag = "owner", request_body = AllowImage,
    params(("owner" = String, Path)),
    responses((status = 200, body = ImageAllowed, description = "the reply"), (status = "4XX", body = ErrorBody, description = ERRORS),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn allow_image() {}

#[utoipa::path(get, path = "/v1/owners/{owner}/sessions", tag = "sessions",
    params(("owner" = String, Path), ("after" = Option<String>, Query, description = PAGE_AFTER),
           ("limit" = Option<u64>, Query, description = PAGE_LIMIT)),
    responses((status = 200, body = Vec<StoredSession>, description = "a page of the owner's stored sessions, by creation time",
               headers(("Link" = String, description = "on a full page: `<?after=…&limit=…>; rel=\"next\"`, the next page, relative to this request's URL"))),
              (status = 400, body = ErrorBody, description = "a bad parameter"),
              (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn owner_sessions() {}

#[utoipa::path(get, path = "/v1/cluster/info", tag = "host",
    responses((status = 200, body = Object, description = "this cluster node's view, as its host reports it (not signed)"),
              (status = 404, description = "the enclave is not a cluster node")))]
fn cluster_info() {}

#[utoipa::path(post, path = "/v1/sign", tag = "agent", request_body = SignRequest,
    responses((status = 200, body = Signed, description = "signed under the policy: check that `signature` recovers to the session over your own digest"),
              (status = 401, body = ErrorBody, description = "unauthenticated (bad or stale stamp) or replayed"),
              (status = 403, body = ErrorBody, description = "a policy denial: code, rule and the numbers"),
              (status = "4XX", body = ErrorBody, description = ERRORS), (status = "5XX", body = ErrorBody, description = ERRORS)))]
fn sign() {}

#[utoipa::path(post, path = "/rpc", tag = "agent", request_body = RpcRequest,
    params(("Bridle-Session" = Option<String>, Header, description = "the session address"),
           ("Bridle-Stamp" = Option<String>, Header, description = "v1.<nonce: 32 lowercase hex>.<unix seconds, decimal>.<mac: 64 lowercase hex>")),
    responses((status = 200, body = RpcResponse, description = "a reply, or an array of replies for a batch"),
              (status = 204, description = "only notifications were sent")))]
fn rpc() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bridle host API",
        description = "The untrusted host in front of a Bridle enclave: agents sign under an owner's policy, owners \
                       manage sessions with EIP-712 envelopes, verifiers read attestations and the signed audit log. \
                       Addresses, hashes and byte strings are 0x-hex strings; U256 amounts (spend, caps, value) are \
                       0x-hex quantities. See docs/api.md.",
        license(name = "Apache-2.0")
    ),
    paths(health, metrics, openapi_json, status, attestation, audit, audit_export, audit_head, create_session,
          get_session, update_policy, session_policies, revoke, approve_pending, deny_pending, allowances, sweep, sweeps,
          revoke_all, allow_image, owner_sessions, cluster_info, sign, rpc),
    components(schemas(ErrorBody, SignedTransaction, SignedUserOperation, AuditReply)),
    tags((name = "agent", description = "signing under a session's policy (agent stamp)"),
         (name = "owner", description = "owner-signed session management"),
         (name = "sessions", description = "what the host stored and the enclave reports"),
         (name = "enclave", description = "enclave status and attestation"),
         (name = "audit", description = "the enclave's signed, hash-chained log"),
         (name = "host", description = "health, metrics, this document"))
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(document).clone();
    ([(header::CONTENT_TYPE, "application/json")], doc).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the router is documented, with its method; nothing else is.
    #[test]
    fn every_route_is_documented() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"), "{}", doc["openapi"]);
        let lib = include_str!("lib.rs");
        let mut routes = Vec::new();
        for line in lib.lines().map(str::trim).filter(|l| l.starts_with(".route(\"")) {
            let path = line.split('"').nth(1).unwrap().to_string();
            let method = if line.contains("post(") { "post" } else { "get" };
            routes.push((path, method));
        }
        assert!(routes.len() > 15, "{routes:?}");
        let paths = doc["paths"].as_object().unwrap();
        for (p, m) in &routes {
            assert!(paths.get(p).and_then(|x| x.get(*m)).is_some(), "{m} {p} is not in the OpenAPI document");
        }
        let documented: usize = paths.values().map(|v| v.as_object().unwrap().len()).sum();
        assert_eq!(documented, routes.len(), "documented routes that the router does not serve");
    }

    #[test]
    fn protocol_types_are_described_as_they_serialize() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        let s = &doc["components"]["schemas"];
        assert_eq!(s["SignRequest"]["properties"]["session"]["type"], "string", "{}", s["SignRequest"]);
        assert_eq!(s["Stamp"]["properties"]["nonce"]["type"], "string", "{}", s["Stamp"]);
        assert_eq!(s["CapStatus"]["properties"]["spent"]["type"], "string", "{}", s["CapStatus"]);
        assert!(s.get("ErrorCode").is_some());
    }
}
