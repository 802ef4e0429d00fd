//! HTTP client for the host.

use anyhow::{anyhow, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

pub struct Host {
    pub base: String,
    http: reqwest::blocking::Client,
}

/// The most of a host's reply read (64 MiB): the host is untrusted, and a reply of any size
/// would be held whole (a review of 2026-12-03: the MCP server). Larger than any answer the
/// enclave makes — a status within a frame and 1 MiB, an audit page of 10 000 entries, as
/// JSON — except a whole audit export, read with [`Host::get_export`].
pub const MAX_REPLY_BYTES: u64 = 64 << 20;

/// The most of an audit export read (4 GiB: a log of a million entries, as JSON).
pub const MAX_EXPORT_BYTES: u64 = 4 << 30;

/// The most of an error's text quoted in a message or a tool result: the host writes it (a
/// refusal is not signed), so it is bounded and quoted as data.
pub const MAX_QUOTED: usize = 1024;

/// `t` cut to [`MAX_QUOTED`] bytes (at a character boundary), saying so.
pub fn quoted(t: &str) -> String {
    if t.len() <= MAX_QUOTED {
        return t.to_string();
    }
    let mut end = MAX_QUOTED;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &t[..end], t.len() - end)
}

/// A refusal from the enclave (or host), with its stable code.
#[derive(Debug)]
pub struct Refused {
    pub message: String,
    /// The host's HTTP status.
    pub status: u16,
    /// Bridle's stable code (`spend_cap`, `unauthenticated`, …), the rule that failed and
    /// the reason, when the host answered with its error body.
    pub code: Option<String>,
    pub rule: Option<String>,
    pub reason: Option<String>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Refused {}

impl Host {
    pub fn new(base: &str) -> Result<Host> {
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Host { base: base.trim_end_matches('/').to_string(), http })
    }

    fn handle<T: DeserializeOwned>(&self, resp: reqwest::blocking::Response, limit: u64) -> Result<T> {
        use std::io::Read;
        let status = resp.status();
        let mut body = Vec::new();
        resp.take(limit + 1).read_to_end(&mut body).map_err(|e| anyhow!("reading the host's reply: {e}"))?;
        if body.len() as u64 > limit {
            return Err(anyhow!("the host's reply is over {limit} bytes: not read"));
        }
        let text = String::from_utf8_lossy(&body);
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|e| anyhow!("unexpected reply from host: {e}: {}", quoted(&text)));
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let err = &v["error"];
        let message =
            err["message"].as_str().map(quoted).unwrap_or_else(|| format!("host answered {status}: {}", quoted(&text)));
        let field = |k: &str| err[k].as_str().map(quoted);
        Err(Refused {
            message,
            status: status.as_u16(),
            code: field("code"),
            rule: field("rule"),
            reason: field("reason"),
        }
        .into())
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get_within(path, MAX_REPLY_BYTES)
    }

    /// `get` for a whole audit export, read up to [`MAX_EXPORT_BYTES`].
    pub fn get_export<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get_within(path, MAX_EXPORT_BYTES)
    }

    fn get_within<T: DeserializeOwned>(&self, path: &str, limit: u64) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().map_err(|e| anyhow!("cannot reach the host at {}: {e}", self.base))?;
        self.handle(resp, limit)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .map_err(|e| anyhow!("cannot reach the host at {}: {e}", self.base))?;
        self.handle(resp, MAX_REPLY_BYTES)
    }
}
