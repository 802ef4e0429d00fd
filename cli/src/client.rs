//! HTTP client for the host.

use anyhow::{anyhow, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

pub struct Host {
    pub base: String,
    http: reqwest::blocking::Client,
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

    fn handle<T: DeserializeOwned>(&self, resp: reqwest::blocking::Response) -> Result<T> {
        let status = resp.status();
        let text = resp.text()?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| anyhow!("unexpected reply from host: {e}: {text}"));
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let err = &v["error"];
        let message =
            err["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("host answered {status}: {text}"));
        let field = |k: &str| err[k].as_str().map(str::to_string);
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
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().map_err(|e| anyhow!("cannot reach the host at {}: {e}", self.base))?;
        self.handle(resp)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .map_err(|e| anyhow!("cannot reach the host at {}: {e}", self.base))?;
        self.handle(resp)
    }
}
