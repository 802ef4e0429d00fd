//! An agent in Rust with alloy that pays in ERC-20 tokens through a Bridle session.
//!
//! The agent builds an ordinary alloy transaction (`TxEip1559`), asks [`BridleSigner`] for
//! its signature — the session key never leaves the enclave — and broadcasts the signed
//! EIP-2718 envelope to the node. [`BridleSigner::sign_transaction`] has the shape of
//! alloy's `TxSigner::sign_transaction` (`&mut dyn SignableTransaction<Signature>` in,
//! `Signature` out), so with `alloy-network` in a project it is a one-line trait impl and
//! plugs into `EthereumWallet` / `ProviderBuilder::wallet`.
//!
//! ```text
//! cargo run -p bridle-tests --example alloy_agent -- \
//!     --rpc http://127.0.0.1:8545 --bridle http://127.0.0.1:8547 \
//!     --key .bridle-dev/agent.key --session 0xSESSION \
//!     --enclave-public-key $(bridle trust show --host http://127.0.0.1:8547 --public-key) \
//!     --token 0xTOKEN --to 0xRECIPIENT --amount 60
//! ```
//!
//! The enclave identity key is pinned ([`EnclaveTrust::Pinned`], from an attestation you
//! verified) and checked against the host's status before the stamp key is derived;
//! `--trust-on-first-use` ([`EnclaveTrust::TrustOnFirstUse`]) takes the host's word instead.
//!
//! Exit status: 0 mined with status 1; 2 refused by Bridle; 1 any other failure. The last
//! line printed is a JSON result.
//!
//! The anvil tests compile this file into the test binary and call [`run`] on a real chain.

#![allow(dead_code)]

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::stamp::{PayloadKind, StampKey};
use k256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function decimals() returns (uint8);
}

/// A refusal or error from Bridle: `code` is Bridle's stable code (e.g. `spend_cap`).
#[derive(Debug, Clone)]
pub struct BridleError {
    pub code: String,
    pub rule: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for BridleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "bridle refused: {} (rule {r}): {}", self.code, self.reason),
            None => write!(f, "bridle refused: {}: {}", self.code, self.reason),
        }
    }
}

impl std::error::Error for BridleError {}

/// The agent's key from a `bridle agent keygen` key file (JSON with `private_key`), a file
/// holding 0x-hex, or 0x-hex itself.
pub fn load_agent_key(arg: &str) -> Result<SecretKey, BoxError> {
    let text = match std::fs::read_to_string(arg) {
        Ok(t) => t,
        Err(_) => arg.to_string(),
    };
    let text = text.trim();
    let hex_key = if text.starts_with('{') {
        let v: Value = serde_json::from_str(text)?;
        v["private_key"].as_str().ok_or("key file has no private_key")?.to_string()
    } else {
        text.to_string()
    };
    Ok(SecretKey::from_slice(&hex::decode(hex_key.trim_start_matches("0x"))?)?)
}

/// Which enclave identity to stamp for.
#[derive(Debug, Clone)]
pub enum EnclaveTrust {
    /// The identity key from an attestation you verified.
    Pinned(PublicKey),
    /// Whatever the host reports (its word, never verified).
    TrustOnFirstUse,
}

/// A remote signer for one Bridle session.
pub struct BridleSigner {
    host: String,
    session: Address,
    agent: Address,
    key: StampKey,
    clock_offset: i64,
    http: reqwest::Client,
}

fn key_address(pk: &PublicKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(pk))
}

impl BridleSigner {
    /// Connect for `session`: the enclave identity the host's status reports must be the
    /// pinned one (else `enclave_mismatch`: the enclave restarted, losing its sessions, or
    /// the host serves another enclave); only then is the stamp key derived.
    pub async fn connect(
        host: &str,
        agent_key: &SecretKey,
        session: Address,
        trust: EnclaveTrust,
        clock_offset: i64,
    ) -> Result<BridleSigner, BoxError> {
        let host = host.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let st: Value = http.get(format!("{host}/v1/status")).send().await?.json().await?;
        let pk = st["identity_public_key"].as_str().ok_or("no identity_public_key in /v1/status")?;
        let reported = PublicKey::from_sec1_bytes(&hex::decode(pk.trim_start_matches("0x"))?)?;
        let enclave = match trust {
            EnclaveTrust::Pinned(pinned) => {
                if key_address(&pinned) != key_address(&reported) {
                    return Err(Box::new(BridleError {
                        code: "enclave_mismatch".into(),
                        rule: None,
                        reason: format!(
                            "the host reports enclave identity {}, not the pinned {}: the enclave restarted (a new \
                             identity; its sessions are lost) or the host serves another enclave; verify it and \
                             re-attest",
                            key_address(&reported),
                            key_address(&pinned)
                        ),
                    }));
                }
                pinned
            }
            EnclaveTrust::TrustOnFirstUse => {
                eprintln!(
                    "warning: trusting enclave identity {} on the host's word (trust on first use); pin it in \
                     production",
                    key_address(&reported)
                );
                reported
            }
        };
        let agent = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent_key.public_key()));
        let key = StampKey::derive(agent_key, &enclave, session, agent);
        Ok(BridleSigner { host, session, agent, key, clock_offset, http })
    }

    /// The session address: the transactions' sender.
    pub fn address(&self) -> Address {
        self.session
    }

    pub fn agent(&self) -> Address {
        self.agent
    }

    /// Sign `tx` through Bridle — the same contract as alloy's `TxSigner::sign_transaction`.
    /// Bridle fills nothing: chain id, nonce, gas and fees must be set.
    pub async fn sign_transaction(&self, tx: &mut dyn SignableTransaction<Signature>) -> Result<Signature, BoxError> {
        let digest = tx.signature_hash();
        let q = |v: u128| format!("{v:#x}");
        let mut obj = json!({
            "from": self.session,
            "chainId": q(tx.chain_id().ok_or("the transaction has no chain id")? as u128),
            "nonce": q(tx.nonce() as u128),
            "gas": q(tx.gas_limit() as u128),
            "value": format!("{:#x}", tx.value()),
            "data": tx.input(),
        });
        if let TxKind::Call(to) = tx.kind() {
            obj["to"] = json!(to);
        }
        match tx.ty() {
            0 => {
                obj["type"] = json!("0x0");
                obj["gasPrice"] = json!(q(tx.gas_price().ok_or("legacy transaction without gas price")?));
            }
            2 => {
                obj["type"] = json!("0x2");
                obj["maxFeePerGas"] = json!(q(tx.max_fee_per_gas()));
                obj["maxPriorityFeePerGas"] = json!(q(tx.max_priority_fee_per_gas().unwrap_or(0)));
                if let Some(list) = tx.access_list().filter(|l| !l.is_empty()) {
                    obj["accessList"] = json!(list
                        .iter()
                        .map(|e| json!({"address": e.address, "storageKeys": e.storage_keys}))
                        .collect::<Vec<_>>());
                }
            }
            t => {
                return Err(Box::new(BridleError {
                    code: "unsupported".into(),
                    rule: None,
                    reason: format!("transaction type {t} is not signed by Bridle"),
                }))
            }
        }
        let result = self.rpc("eth_signTransaction", json!([obj]), Some(digest)).await?;
        let signed = &result["tx"];
        let field = |k: &str| -> Result<U256, BoxError> {
            let s = signed[k].as_str().ok_or_else(|| format!("no {k} in the signed transaction"))?;
            Ok(U256::from_str(s)?)
        };
        let parity = if signed.get("yParity").is_some() {
            field("yParity")? == U256::from(1)
        } else {
            (field("v")? - U256::from(35)) % U256::from(2) == U256::from(1)
        };
        let sig = Signature::new(field("r")?, field("s")?, parity);
        // Trust nothing from the host: the signature must be the session's over our digest.
        let signer = sig.recover_address_from_prehash(&digest)?;
        if signer != self.session {
            return Err(format!("signature recovers to {signer}, not the session {}", self.session).into());
        }
        Ok(sig)
    }

    async fn rpc(&self, method: &str, params: Value, stamp_digest: Option<B256>) -> Result<Value, BoxError> {
        let mut req = self
            .http
            .post(format!("{}/rpc", self.host))
            .header("Bridle-Session", self.session.to_string())
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        if let Some(d) = stamp_digest {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64 + self.clock_offset;
            let mut nonce = [0u8; 16];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
            let stamp = self.key.stamp(self.session, PayloadKind::Transaction, &d, nonce, now as u64);
            req = req.header("Bridle-Stamp", stamp.to_header());
        }
        let reply: Value = req.send().await?.json().await?;
        if let Some(e) = reply.get("error") {
            let data = &e["data"];
            return Err(Box::new(BridleError {
                code: data["code"].as_str().or(e["message"].as_str()).unwrap_or("error").to_string(),
                rule: data["rule"].as_str().map(str::to_string),
                reason: data["reason"].as_str().or(e["message"].as_str()).unwrap_or("").to_string(),
            }));
        }
        Ok(reply["result"].clone())
    }
}

/// A minimal Ethereum JSON-RPC client for the node.
pub struct Node {
    url: String,
    http: reqwest::Client,
}

impl Node {
    pub fn new(url: &str) -> Node {
        Node { url: url.to_string(), http: reqwest::Client::new() }
    }

    pub async fn call(&self, method: &str, params: Value) -> Result<Value, BoxError> {
        let reply: Value = self
            .http
            .post(&self.url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await?
            .json()
            .await?;
        if let Some(e) = reply.get("error") {
            return Err(format!("{method}: {e}").into());
        }
        Ok(reply["result"].clone())
    }

    pub async fn quantity(&self, method: &str, params: Value) -> Result<u128, BoxError> {
        let v = self.call(method, params).await?;
        let s = v.as_str().ok_or_else(|| format!("{method}: not a quantity: {v}"))?;
        Ok(u128::from_str_radix(s.trim_start_matches("0x"), 16)?)
    }
}

/// What happened to one transfer.
#[derive(Debug, Clone)]
pub enum Outcome {
    Mined { hash: B256, status: u64, block: u64 },
    Refused(BridleError),
}

/// Send `amount` whole tokens (as a decimal string) of `token` to `to`.
pub async fn transfer(
    node: &Node,
    signer: &BridleSigner,
    token: Address,
    to: Address,
    amount: &str,
) -> Result<Outcome, BoxError> {
    let from = signer.address();
    let decimals = node
        .call("eth_call", json!([{"to": token, "data": Bytes::from(decimalsCall {}.abi_encode())}, "latest"]))
        .await?;
    let decimals = u8::try_from(U256::from_str(decimals.as_str().ok_or("decimals")?)?)?;
    let amount = parse_units(amount, decimals)?;
    let data = Bytes::from(transferCall { to, amount }.abi_encode());

    // Fill from the node, as a wallet would; Bridle signs exactly these values.
    let chain_id = node.quantity("eth_chainId", json!([])).await? as u64;
    let nonce = node.quantity("eth_getTransactionCount", json!([from, "pending"])).await? as u64;
    let gas = node.quantity("eth_estimateGas", json!([{"from": from, "to": token, "data": data}])).await? as u64;
    let priority = node.quantity("eth_maxPriorityFeePerGas", json!([])).await?;
    let base = node.call("eth_getBlockByNumber", json!(["latest", false])).await?;
    let base_fee = u128::from_str_radix(base["baseFeePerGas"].as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)?;
    let mut tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas * 12 / 10,
        max_fee_per_gas: base_fee * 2 + priority,
        max_priority_fee_per_gas: priority,
        to: TxKind::Call(token),
        value: U256::ZERO,
        access_list: Default::default(),
        input: data,
    };

    let sig = match signer.sign_transaction(&mut tx).await {
        Ok(sig) => sig,
        Err(e) => match e.downcast::<BridleError>() {
            Ok(b) => return Ok(Outcome::Refused(*b)),
            Err(e) => return Err(e),
        },
    };
    // The envelope is built here from our own transaction and the checked signature.
    let envelope = TxEnvelope::from(tx.into_signed(sig));
    let raw = Bytes::from(envelope.encoded_2718());
    let hash: B256 = serde_json::from_value(node.call("eth_sendRawTransaction", json!([raw])).await?)?;
    for _ in 0..600 {
        let r = node.call("eth_getTransactionReceipt", json!([hash])).await?;
        if !r.is_null() {
            let n = |k: &str| u64::from_str_radix(r[k].as_str().unwrap_or("0x0").trim_start_matches("0x"), 16);
            return Ok(Outcome::Mined { hash, status: n("status")?, block: n("blockNumber")? });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("transaction {hash} not mined within 60 s").into())
}

fn parse_units(s: &str, decimals: u8) -> Result<U256, BoxError> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > decimals as usize {
        return Err(format!("{s} has more than {decimals} decimals").into());
    }
    let digits = format!("{int}{frac:0<width$}", width = decimals as usize);
    Ok(U256::from_str_radix(&digits, 10)?)
}

/// Command line options.
#[derive(Debug, Clone)]
pub struct Args {
    pub rpc: String,
    pub bridle: String,
    pub key: String,
    pub session: Address,
    pub token: Address,
    pub to: Address,
    pub amount: String,
    pub clock_offset: i64,
    /// The pinned enclave identity key (hex SEC1).
    pub enclave_public_key: Option<String>,
    pub trust_on_first_use: bool,
}

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, BoxError> {
        let mut m = std::collections::HashMap::new();
        let mut tofu = false;
        let mut it = argv.into_iter();
        while let Some(k) = it.next() {
            let name = k.strip_prefix("--").ok_or_else(|| format!("unexpected argument {k}"))?.to_string();
            if name == "trust-on-first-use" {
                tofu = true;
                continue;
            }
            m.insert(name, it.next().ok_or_else(|| format!("{k} needs a value"))?);
        }
        let env = |k: &str| std::env::var(k).ok();
        let get = |k: &str, e: &str| m.get(k).cloned().or_else(|| env(e));
        let need = |k: &str, e: &str| get(k, e).ok_or_else(|| format!("--{k} is required"));
        Ok(Args {
            rpc: get("rpc", "ETH_RPC_URL").unwrap_or_else(|| "http://127.0.0.1:8545".into()),
            bridle: get("bridle", "BRIDLE_HOST").unwrap_or_else(|| "http://127.0.0.1:8547".into()),
            key: need("key", "BRIDLE_AGENT_KEY")?,
            session: need("session", "BRIDLE_SESSION")?.parse()?,
            token: need("token", "-")?.parse()?,
            to: need("to", "-")?.parse()?,
            amount: need("amount", "-")?,
            clock_offset: get("clock-offset", "BRIDLE_CLOCK_OFFSET").unwrap_or_else(|| "0".into()).parse()?,
            enclave_public_key: get("enclave-public-key", "BRIDLE_ENCLAVE_PUBLIC_KEY"),
            trust_on_first_use: tofu,
        })
    }
}

/// The whole agent: connect, transfer, report.
pub async fn run(args: &Args) -> Result<Outcome, BoxError> {
    let key = load_agent_key(&args.key)?;
    let trust = match (&args.enclave_public_key, args.trust_on_first_use) {
        (Some(k), _) => {
            EnclaveTrust::Pinned(PublicKey::from_sec1_bytes(&hex::decode(k.trim().trim_start_matches("0x"))?)?)
        }
        (None, true) => EnclaveTrust::TrustOnFirstUse,
        (None, false) => {
            return Err(
                "--enclave-public-key is required (the attested enclave identity key), or --trust-on-first-use \
                        to take the host's word"
                    .into(),
            )
        }
    };
    let signer = BridleSigner::connect(&args.bridle, &key, args.session, trust, args.clock_offset).await?;
    println!("session {} (agent {}) sends {} to {}", signer.address(), signer.agent(), args.amount, args.to);
    transfer(&Node::new(&args.rpc), &signer, args.token, args.to, &args.amount).await
}

#[tokio::main]
async fn main() {
    let code = match Args::parse(std::env::args().skip(1)) {
        Err(e) => {
            eprintln!("alloy_agent: {e}");
            1
        }
        Ok(args) => match run(&args).await {
            Ok(Outcome::Mined { hash, status, block }) => {
                println!("mined in block {block}: {hash} status {status}");
                println!("{}", json!({"ok": status == 1, "hash": hash, "status": status, "block": block}));
                if status == 1 {
                    0
                } else {
                    1
                }
            }
            Ok(Outcome::Refused(e)) => {
                eprintln!("{e}");
                println!("{}", json!({"ok": false, "code": e.code, "rule": e.rule, "reason": e.reason}));
                2
            }
            Err(e) => {
                eprintln!("alloy_agent: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}
