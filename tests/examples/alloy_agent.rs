//! An agent in Rust with alloy that pays in ERC-20 tokens through a Bridle session.
//!
//! The session is an alloy wallet: [`bridle_alloy::BridleSigner`] implements alloy's
//! `TxSigner` and `NetworkWallet`, so the agent is ordinary alloy code —
//! `ProviderBuilder::new().wallet(bridle).connect(rpc)`, then `send_transaction`: alloy's
//! fillers set chain id, nonce, gas and fees from the node, the enclave signs (the session
//! key never leaves it) under the owner's policy, alloy broadcasts, and the receipt comes
//! back. A refusal is a [`BridleError`] (`code`, `rule`, `reason`) inside alloy's error.
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
//! Exit status:
//!
//! * 0 — mined with status 1;
//! * 2 — refused by the host: its word, not the enclave's (the enclave signs no refusal); the
//!   code (e.g. `spend_cap`, or `unknown` when it is none of Bridle's), rule and reason are
//!   printed quoted, every character outside printable ASCII escaped;
//! * 3 — the host's answer failed this agent's own checks (`bad_signature`: not the
//!   session's signature over this transaction; `enclave_mismatch`: not the pinned enclave;
//!   `bad_reply`, `too_large`);
//! * 1 — any other failure (the host or node unreachable or too slow, mined with status 0, …).
//!
//! The last line printed is a JSON result; a failure of Bridle's says `from_host` (true: the
//! host's refusal, exit 2; false: a check of this agent's, exit 3).
//!
//! The anvil tests compile this file into the test binary and call [`run`] on a real chain.

#![allow(dead_code)]

use alloy_network::{Ethereum, Network, ReceiptResponse, TransactionBuilder};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_provider::{Provider, ProviderBuilder};
use alloy_sol_types::{sol, SolCall};
pub use bridle_alloy::{load_agent_key, printable, BridleError, BridleSigner, EnclaveTrust};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function decimals() returns (uint8);
}

/// What happened to one transfer.
#[derive(Debug, Clone)]
pub enum Outcome {
    Mined { hash: B256, status: u64, block: u64 },
    Refused(BridleError),
}

/// Send `amount` whole tokens (as a decimal string) of `token` to `to`, from the session,
/// through an alloy provider whose wallet is the Bridle session.
pub async fn transfer(
    rpc: &str,
    signer: BridleSigner,
    token: Address,
    to: Address,
    amount: &str,
) -> Result<Outcome, BoxError> {
    let from = signer.address();
    let provider = ProviderBuilder::new().wallet(signer).connect(rpc).await?;
    let call = |data: Vec<u8>| {
        <Ethereum as Network>::TransactionRequest::default()
            .with_from(from)
            .with_to(token)
            .with_input(Bytes::from(data))
    };
    let out = provider.call(call(decimalsCall {}.abi_encode())).await?;
    let decimals = decimalsCall::abi_decode_returns(&out)?;
    let amount = parse_units(amount, decimals)?;
    // Chain id, nonce, gas and fees: alloy's fillers, from the node. Bridle signs exactly them.
    let tx = call(transferCall { to, amount }.abi_encode());
    let pending = match provider.send_transaction(tx).await {
        Ok(p) => p,
        Err(e) => match BridleError::find(&e) {
            Some(b) => return Ok(Outcome::Refused(b.clone())),
            None => return Err(e.into()),
        },
    };
    let receipt = pending.get_receipt().await?;
    Ok(Outcome::Mined {
        hash: receipt.transaction_hash(),
        status: u64::from(receipt.status()),
        block: receipt.block_number().unwrap_or(0),
    })
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

/// What the agent prints for one result: a line of text (to stderr unless it is a success),
/// the JSON result (the last line, on stdout) and the exit status.
#[derive(Debug, Clone)]
pub struct Report {
    pub exit: i32,
    pub text: String,
    pub to_stderr: bool,
    pub json: serde_json::Value,
}

/// The report of `result` (see the exit statuses above). Bridle's failures print as their
/// `Display` (the host's text quoted and escaped, a refusal labelled as the host's word);
/// any other error's text may hold what the host or the node wrote, so it is made printable.
pub fn report(result: &Result<Outcome, BoxError>) -> Report {
    let refused = |e: &BridleError| Report {
        exit: if e.from_host { 2 } else { 3 },
        text: e.to_string(),
        to_stderr: true,
        json: json!({
            "ok": false, "from_host": e.from_host, "code": e.code, "host_code": e.host_code, "rule": e.rule,
            "reason": e.reason, "http_status": e.http_status,
        }),
    };
    match result {
        Ok(Outcome::Mined { hash, status, block }) => Report {
            exit: if *status == 1 { 0 } else { 1 },
            text: format!("mined in block {block}: {hash} status {status}"),
            to_stderr: *status != 1,
            json: json!({"ok": *status == 1, "hash": hash, "status": status, "block": block}),
        },
        Ok(Outcome::Refused(e)) => refused(e),
        Err(e) => match BridleError::find(e.as_ref()) {
            // connect's own refusals (enclave_mismatch, the host's answer to its status)
            Some(b) => refused(b),
            None => Report {
                exit: 1,
                text: format!("alloy_agent: {}", printable(&e.to_string())),
                to_stderr: true,
                json: json!({"ok": false, "error": printable(&e.to_string())}),
            },
        },
    }
}

/// The whole agent: connect, transfer, report.
pub async fn run(args: &Args) -> Result<Outcome, BoxError> {
    let key = load_agent_key(&args.key)?;
    let trust = match (&args.enclave_public_key, args.trust_on_first_use) {
        (Some(k), _) => EnclaveTrust::pinned_hex(k)?,
        (None, true) => EnclaveTrust::TrustOnFirstUse,
        (None, false) => {
            return Err(
                "--enclave-public-key is required (the attested enclave identity key), or --trust-on-first-use \
                        to take the host's word"
                    .into(),
            )
        }
    };
    let signer =
        BridleSigner::connect(&args.bridle, &key, args.session, trust).await?.with_clock_offset(args.clock_offset);
    println!("session {} (agent {}) sends {} to {}", signer.address(), signer.agent(), args.amount, args.to);
    transfer(&args.rpc, signer, args.token, args.to, &args.amount).await
}

#[tokio::main]
async fn main() {
    let code = match Args::parse(std::env::args().skip(1)) {
        Err(e) => {
            eprintln!("alloy_agent: {}", printable(&e.to_string()));
            1
        }
        Ok(args) => {
            let r = report(&run(&args).await);
            if r.to_stderr {
                eprintln!("{}", r.text);
            } else {
                println!("{}", r.text);
            }
            println!("{}", r.json);
            r.exit
        }
    };
    std::process::exit(code);
}
