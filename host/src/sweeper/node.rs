//! The sweeper's JSON-RPC calls to a chain's node: each reply read within a bound, numbers
//! checked (the node is whoever the operator named; it is not trusted to be small or sane).

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

/// The most of a node's reply read: the sweeper asks only for nonces, fees, a block header
/// (without its transactions) and receipts.
pub const MAX_NODE_REPLY: usize = 1 << 20;

/// One JSON-RPC call; its `result` (`null` when absent).
pub async fn rpc(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    // reqwest's errors name the URL, which may hold the provider's key: never logged.
    let mut reply = http.post(url).json(&body).send().await.map_err(|e| e.without_url()).context(method.to_string())?;
    let mut bytes = Vec::new();
    while let Some(chunk) = reply.chunk().await.map_err(|e| e.without_url()).context(method.to_string())? {
        if bytes.len() + chunk.len() > MAX_NODE_REPLY {
            return Err(anyhow!("{method}: the node's reply exceeds {MAX_NODE_REPLY} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    let v: Value = serde_json::from_slice(&bytes).context(method.to_string())?;
    if let Some(e) = v.get("error") {
        return Err(anyhow!("{method}: {e}"));
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

/// A node's URL as logs show it: scheme, host and port only (a provider's key may be in the
/// user info, the path or the query).
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let rest = if u.path().len() > 1 || u.query().is_some() { "/…" } else { "" };
            match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{}://{h}:{p}{rest}", u.scheme()),
                (Some(h), None) => format!("{}://{h}{rest}", u.scheme()),
                _ => "(a URL without a host)".to_string(),
            }
        }
        Err(_) => "(not a URL)".to_string(),
    }
}

/// A hex quantity (`0x…`, hex digits only).
pub fn quantity(v: &Value) -> Result<u128> {
    let s = v.as_str().ok_or_else(|| anyhow!("not a quantity: {v}"))?;
    let h = s.strip_prefix("0x").ok_or_else(|| anyhow!("not a hex quantity: {s}"))?;
    if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(anyhow!("not a hex quantity: {s}"));
    }
    u128::from_str_radix(h, 16).map_err(|e| anyhow!("{s}: {e}"))
}

/// A hex quantity that must fit 64 bits (a nonce, a chain id).
pub fn quantity_u64(v: &Value) -> Result<u64> {
    let q = quantity(v)?;
    u64::try_from(q).map_err(|_| anyhow!("{q} does not fit 64 bits"))
}

/// The session's nonce at `tag` (`latest`: mined; `pending`: with the node's pool).
pub async fn nonce(http: &reqwest::Client, url: &str, session: alloy_primitives::Address, tag: &str) -> Result<u64> {
    quantity_u64(&rpc(http, url, "eth_getTransactionCount", json!([session, tag])).await?)
}

/// The node's fees: max fee = 2 × the latest base fee + the suggested tip.
pub async fn fees(http: &reqwest::Client, url: &str) -> Result<(u128, u128)> {
    let block = rpc(http, url, "eth_getBlockByNumber", json!(["latest", false])).await?;
    let base = quantity(&block["baseFeePerGas"]).unwrap_or(0);
    let tip = match rpc(http, url, "eth_maxPriorityFeePerGas", json!([])).await {
        Ok(v) => quantity(&v).unwrap_or(1_000_000_000),
        Err(_) => 1_000_000_000,
    };
    Ok((base.saturating_mul(2).saturating_add(tip), tip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_hex_digits_and_nonces_fit_64_bits() {
        assert_eq!(quantity(&json!("0x1f")).unwrap(), 31);
        for bad in [json!("0x"), json!("0x_1"), json!("12"), json!(12), json!("0x+1"), json!(null)] {
            assert!(quantity(&bad).is_err(), "{bad}");
        }
        assert_eq!(quantity_u64(&json!("0xffffffffffffffff")).unwrap(), u64::MAX);
        assert!(quantity_u64(&json!("0x10000000000000000")).is_err(), "silently truncated before");
    }
}

#[cfg(test)]
mod shown_tests {
    #[test]
    fn a_nodes_url_is_logged_without_its_key() {
        assert_eq!(super::shown("https://u:pw@mainnet.example.io/v3/KEY?x=1"), "https://mainnet.example.io/…");
        assert_eq!(super::shown("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(super::shown("nonsense"), "(not a URL)");
    }
}
