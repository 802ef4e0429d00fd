//! A real anvil node for tests, and the committed test ERC-20 to deploy on it.

use super::*;

/// The committed test ERC-20 (tests/fixtures/erc20: Solidity source and solc output).
pub fn erc20_artifact() -> (serde_json::Value, Bytes) {
    let p = repo_root().join("tests/fixtures/erc20/TestToken.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    let code: Bytes = serde_json::from_value(v["bytecode"].clone()).unwrap();
    (v["abi"].clone(), code)
}

/// A running anvil node on 127.0.0.1 (a free port), killed on drop.
pub struct Anvil {
    pub proc: Proc,
    pub url: String,
    pub chain_id: u64,
    http: reqwest::Client,
}

fn quantity(v: &serde_json::Value) -> U256 {
    v.as_str().and_then(|s| U256::from_str_radix(s.trim_start_matches("0x"), 16).ok()).unwrap_or_else(|| panic!("{v}"))
}

impl Anvil {
    pub fn start() -> Anvil {
        Self::start_chain(31337)
    }

    /// A node whose chain id is `chain_id`.
    pub fn start_chain(chain_id: u64) -> Anvil {
        Self::start_chain_with(chain_id, &[])
    }

    /// A node (chain 31337) started with `extra` flags (e.g. `--disable-code-size-limit`).
    pub fn start_with(extra: &[&str]) -> Anvil {
        Self::start_chain_with(31337, extra)
    }

    fn start_chain_with(chain_id: u64, extra: &[&str]) -> Anvil {
        let mut cmd = Command::new(anvil_bin());
        cmd.args(["--host", "127.0.0.1", "--port", "0", "--chain-id", &chain_id.to_string()]).args(extra);
        let proc = Proc::spawn_until(cmd, "Listening on");
        let addr = proc.line.split_whitespace().last().expect("anvil address").to_string();
        Anvil { proc, url: format!("http://{addr}"), chain_id, http: reqwest::Client::new() }
    }

    pub async fn try_rpc(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: serde_json::Value =
            self.http.post(&self.url).json(&body).send().await.expect("anvil RPC").json().await.expect("JSON");
        match v.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(v["result"].clone()),
        }
    }

    pub async fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.try_rpc(method, params.clone()).await.unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    /// anvil's first (unlocked, funded) account.
    pub async fn deployer(&self) -> Address {
        serde_json::from_value(self.rpc("eth_accounts", serde_json::json!([])).await[0].clone()).unwrap()
    }

    /// Send from an unlocked account and wait for the receipt (status 1 asserted).
    pub async fn send(&self, tx: serde_json::Value) -> serde_json::Value {
        let hash = self.rpc("eth_sendTransaction", serde_json::json!([tx])).await;
        let r = self.receipt(&hash).await;
        assert_eq!(r["status"], "0x1", "{tx} failed: {r}");
        r
    }

    pub async fn receipt(&self, hash: &serde_json::Value) -> serde_json::Value {
        for _ in 0..300 {
            let r = self.rpc("eth_getTransactionReceipt", serde_json::json!([hash])).await;
            if !r.is_null() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{hash} not mined");
    }

    /// Deploy the test ERC-20 (6 decimals); the first deployment on a fresh anvil lands at
    /// 0x5FbDB2315678afecb367f032d93F642f64180aa3.
    pub async fn deploy_erc20(&self) -> Address {
        let (_, code) = erc20_artifact();
        let r = self.send(serde_json::json!({"from": self.deployer().await, "data": code})).await;
        serde_json::from_value(r["contractAddress"].clone()).unwrap()
    }

    pub async fn mint(&self, token: Address, to: Address, amount: U256) {
        use alloy_sol_types::{sol, SolCall};
        sol! { function mint(address to, uint256 amount); }
        let data = Bytes::from(mintCall { to, amount }.abi_encode());
        self.send(serde_json::json!({"from": self.deployer().await, "to": token, "data": data})).await;
    }

    pub async fn set_balance(&self, who: Address, wei: U256) {
        self.rpc("anvil_setBalance", serde_json::json!([who, format!("{wei:#x}")])).await;
    }

    pub async fn token_balance(&self, token: Address, who: Address) -> U256 {
        use alloy_sol_types::{sol, SolCall};
        sol! { function balanceOf(address who) returns (uint256); }
        let data = Bytes::from(balanceOfCall { who }.abi_encode());
        quantity(&self.rpc("eth_call", serde_json::json!([{"to": token, "data": data}, "latest"])).await)
    }

    pub async fn eth_balance(&self, who: Address) -> U256 {
        quantity(&self.rpc("eth_getBalance", serde_json::json!([who, "latest"])).await)
    }

    /// Transaction count at `block` ("latest" or "pending").
    pub async fn nonce(&self, who: Address, block: &str) -> u64 {
        quantity(&self.rpc("eth_getTransactionCount", serde_json::json!([who, block])).await).to::<u64>()
    }

    pub async fn block_timestamp(&self) -> u64 {
        let b = self.rpc("eth_getBlockByNumber", serde_json::json!(["latest", false])).await;
        quantity(&b["timestamp"]).to::<u64>()
    }

    /// Move the chain's time forward and mine a block at the new time.
    pub async fn increase_time(&self, secs: u64) {
        self.rpc("evm_increaseTime", serde_json::json!([secs])).await;
        self.rpc("evm_mine", serde_json::json!([])).await;
    }

    /// The transaction `hash` as the node has it (from, nonce, to, input).
    pub async fn transaction(&self, hash: &str) -> serde_json::Value {
        self.rpc("eth_getTransactionByHash", serde_json::json!([hash])).await
    }
}
