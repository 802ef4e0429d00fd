//! The owner console: a static page at `/ui` (README, "Owner console"; docs/console.md).
//!
//! The page's files are embedded in the binary (`host/console/`): plain ES modules, a style
//! sheet and one vendored bundle of the audited @noble libraries — nothing is fetched from
//! anywhere else. They are served with a strict Content-Security-Policy: scripts, styles and
//! requests only from this origin, no inline script or style, no framing.
//!
//! The page talks to the public API below and to the owner's own wallet (EIP-1193). It holds
//! nothing secret: every owner act is EIP-712 typed data the wallet shows and signs, and the
//! enclave rebuilds that message from the call's fields.
//!
//! One route exists for the page: `POST /v1/policy/normalize` resolves a policy file (TOML
//! or JSON) exactly as `bridle policy normalize` does and answers the canonical document,
//! its hash and the `explain` text. It signs nothing; the page hashes the canonical bytes
//! itself, and that hash is what the wallet shows.

use crate::api::{ApiError, ApiJson};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::policy::explain::explain;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::CompiledPolicy;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// The page's Content-Security-Policy: this origin only, no inline code, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: path under `/ui/`, content type, bytes.
struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset { path: $path, mime: $mime, body: include_bytes!(concat!("../console/", $path)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console serves. A path not listed is 404.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("state.js", JS),
    asset!("actions.js", JS),
    asset!("trust.js", JS),
    asset!("wallet.js", JS),
    asset!("policy.js", JS),
    asset!("refresh.js", JS),
    asset!("audit.js", JS),
    asset!("session.js", JS),
    asset!("api.js", JS),
    asset!("owner.js", JS),
    asset!("eip712.js", JS),
    asset!("bytes.js", JS),
    asset!("verify.js", JS),
    asset!("status.js", JS),
    asset!("attest.js", JS),
    asset!("x509.js", JS),
    asset!("views.js", JS),
    asset!("chart.js", JS),
    asset!("decode.js", JS),
    asset!("typed.js", JS),
    asset!("vendor/noble.js", JS),
    asset!("vendor/LICENSE-noble-curves", "text/plain; charset=utf-8"),
    asset!("vendor/LICENSE-noble-hashes", "text/plain; charset=utf-8"),
];

/// The console's routes (merged into the API router).
pub fn router(body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { serve("index.html") }))
        .route("/ui/{*path}", get(|Path(p): Path<String>| async move { serve(&p) }))
        // The text is at most 128 KiB; its JSON is not read past twice that, nor past the
        // operator's limit for every body.
        .route(
            "/v1/policy/normalize",
            post(normalize).layer(DefaultBodyLimit::max(body_limit.min(2 * NORMALIZE_MAX_BYTES))),
        )
}

fn serve(path: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, secure_headers(), "not found").into_response();
    };
    let mut r = (StatusCode::OK, secure_headers(), a.body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    r
}

fn secure_headers() -> [(header::HeaderName, HeaderValue); 7] {
    [
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
        (header::HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin")),
    ]
}

/// Body of `POST /v1/policy/normalize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeRequest {
    /// The policy file's text, TOML or JSON (as `bridle policy normalize FILE` reads it).
    pub text: String,
}

/// `POST /v1/policy/normalize`: `{canonical, hash, explain, lifetime_error}`.
///
/// `canonical` is the normalized document's canonical encoding as text — exactly the bytes
/// the policy hash covers (`keccak256("bridle/policy/v1\n" ‖ canonical)`) and the `policy`
/// a `CreateSession` or `UpdatePolicy` body carries. Relative times (`valid_for`) resolve
/// against the host's clock now, as the CLI's do against the owner's machine's.
///
/// Anyone may ask, and a policy file's resolution costs more than linear time in what it
/// lists (a review of 2026-12-05: a 1 MiB file held a runtime worker for about a second),
/// so the text is at most [`NORMALIZE_MAX_BYTES`], resolved off the async workers, at most
/// [`NORMALIZING_AT_ONCE`] at a time (the others wait up to 5 s, then `unavailable`).
pub async fn normalize(
    State(st): State<AppState>,
    ApiJson(req): ApiJson<NormalizeRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.text.len() > NORMALIZE_MAX_BYTES {
        return Err(ApiError::denial(Denial::new(
            ErrorCode::TooLarge,
            format!("a policy file of {} bytes: at most {NORMALIZE_MAX_BYTES} are normalized", req.text.len()),
        )));
    }
    let turn = tokio::time::timeout(Duration::from_secs(5), st.normalizing.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::denial(Denial::new(
                ErrorCode::Unavailable,
                format!("{NORMALIZING_AT_ONCE} policy files are being normalized: ask again"),
            ))
        })?;
    let answer = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let now = crate::store::now_secs();
        let doc = resolve_text(&req.text, now).map_err(ApiError::denial)?;
        let compiled = CompiledPolicy::compile(doc).map_err(ApiError::denial)?;
        let canonical = String::from_utf8(compiled.doc.canonical_bytes())
            .map_err(|_| ApiError::internal("canonical policy is not UTF-8"))?;
        Ok::<_, ApiError>(json!({
            "canonical": canonical,
            "hash": compiled.hash,
            "explain": explain(&compiled),
            "lifetime_error": compiled.check_lifetime(now).err().map(|d| d.to_string()),
        }))
    })
    .await
    .map_err(|e| ApiError::internal(format!("normalizing failed: {e}")))??;
    Ok(Json(answer))
}

/// The longest policy file `POST /v1/policy/normalize` reads (a document's canonical form
/// is at most 32 KiB; its TOML, with comments, fits several times over).
pub const NORMALIZE_MAX_BYTES: usize = 128 << 10;
/// Policy files normalized at once.
pub const NORMALIZING_AT_ONCE: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_listed_once_and_not_empty() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(ASSETS[..i].iter().all(|b| b.path != a.path), "{} listed twice", a.path);
        }
    }

    #[test]
    fn no_page_loads_anything_from_elsewhere() {
        // The CSP forbids it; the files must not even try (no CDN, no inline script).
        for a in ASSETS.iter().filter(|a| !a.path.starts_with("vendor/")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for bad in ["http://", "https://", "<script>", " onclick=", " onload=", "style=\""] {
                assert!(!text.contains(bad), "{} contains {bad:?}", a.path);
            }
        }
    }

    #[test]
    fn normalize_matches_the_cli_form() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies/usdc-daily.toml"))
                .unwrap();
        let now = crate::store::now_secs();
        let doc = resolve_text(&text, now).unwrap();
        let c = CompiledPolicy::compile(doc).unwrap();
        let mut buf = b"bridle/policy/v1\n".to_vec();
        buf.extend_from_slice(&c.doc.canonical_bytes());
        assert_eq!(alloy_primitives::keccak256(buf), c.hash);
    }
}
