//! The agent's Ethereum node for `bridle mcp` (blocking JSON-RPC): nonces, gas, fees,
//! broadcasts and receipts. The node is the agent's and untrusted: its replies are bounded,
//! and what it says is quoted and labelled as its word.

use crate::client::{in_quotes, read_within};
use alloy_primitives::{keccak256, Bytes, B256};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The most of a node's reply read (the node is the agent's, not the owner's: bounded like
/// the host's replies).
const MAX_NODE_REPLY: u64 = 16 << 20;

/// A node's JSON-RPC (blocking).
pub struct Node {
    pub url: String,
    http: reqwest::blocking::Client,
}

impl Node {
    pub fn new(url: &str) -> Result<Node> {
        // No redirect followed: the node's answer is its own, and an address it names would
        // be quoted in errors.
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Node { url: url.to_string(), http })
    }

    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let reply = self
            .http
            .post(&self.url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            // Not the URL: it often carries a provider's API key (docs/mcp.md).
            .map_err(|e| anyhow!("{method}: cannot reach the node: {}", crate::client::unreachable(e)))?;
        let body = read_within(reply, MAX_NODE_REPLY, &format!("{method}: the node's reply"))?;
        let reply: Value =
            serde_json::from_slice(&body).map_err(|e| anyhow!("{method}: the node's reply is not JSON: {e}"))?;
        if let Some(e) = reply.get("error") {
            // Its message first (a revert's reason is in it), then the rest, each quoted: a
            // revert's `data` sorts before `message` and used up the bound (a review).
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            let code = e.get("code").map(Value::to_string).unwrap_or_default();
            let data = e.get("data").map(Value::to_string).unwrap_or_default();
            bail!(
                "{method}: the node answered (the node's word): {} (code {}, data {})",
                in_quotes(message, 384),
                in_quotes(&code, 32),
                in_quotes(&data, 256)
            );
        }
        Ok(reply["result"].clone())
    }

    /// Send a raw transaction the enclave signed; its hash. Signed and charged by then: a
    /// failed broadcast may still have reached the node, so the error names the transaction
    /// (hash and nonce) instead of inviting a second, different one (a review of 2026-12-04).
    pub fn broadcast(&self, raw: &[u8], nonce: u64) -> Result<B256> {
        let signed = keccak256(raw);
        let sent = self
            .call("eth_sendRawTransaction", json!([Bytes::copy_from_slice(raw)]))
            .and_then(|v| serde_json::from_value::<B256>(v).context("eth_sendRawTransaction answered no hash"));
        match sent {
            Ok(h) if h == signed => Ok(h),
            Ok(h) => bail!("the node answered hash {h}, not the raw transaction's {signed}"),
            Err(e) => bail!(
                "the enclave signed transaction {signed} (nonce {nonce}), but its broadcast failed: {e:#}. It may \
                 still have reached the node: do not send this payment again; look for its receipt, or broadcast the \
                 same transaction again"
            ),
        }
    }

    /// A quantity that is a count (a chain id, a nonce).
    pub fn count(&self, method: &str, params: Value) -> Result<u64> {
        let q = self.quantity(method, params)?;
        u64::try_from(q).map_err(|_| anyhow!("{method}: {q} is not a count"))
    }

    pub fn quantity(&self, method: &str, params: Value) -> Result<u128> {
        let v = self.call(method, params)?;
        let said = |t: &str| in_quotes(t, 128);
        let s = v
            .as_str()
            .ok_or_else(|| anyhow!("{method}: the node's answer is not a quantity: {}", said(&v.to_string())))?;
        u128::from_str_radix(s.trim_start_matches("0x"), 16)
            .map_err(|e| anyhow!("{method}: the node's answer {} is not a quantity: {e}", said(s)))
    }

    pub fn receipt(&self, hash: B256, timeout: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            let r = self.call("eth_getTransactionReceipt", json!([hash]))?;
            if !r.is_null() {
                return Ok(r);
            }
            if start.elapsed() > timeout {
                bail!(
                    "transaction {hash} was sent but not mined within {} s: it may still be mined. Do not send this \
                     payment as a new one; asked for again, this server broadcasts the same transaction again until \
                     its nonce is mined",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
