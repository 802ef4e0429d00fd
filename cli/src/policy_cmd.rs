//! `bridle policy`: check, hash, explain, normalize, simulate, from-erc7715.

use crate::util::{now, read_input};
use alloy_primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{explain::explain, CompiledPolicy, Policy};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::TxRequest;
use bridle_common::units::format_decimal;
use clap::Subcommand;
use serde::Deserialize;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Parse and validate a policy file.
    Check { file: PathBuf },
    /// Print the policy hash the owner signs.
    Hash { file: PathBuf },
    /// Explain the policy rule by rule.
    Explain { file: PathBuf },
    /// Print the normalized policy (what the enclave receives), as JSON.
    Normalize { file: PathBuf },
    /// Run requests through the same engine offline and print each decision.
    Simulate {
        file: PathBuf,
        /// Request file: {"requests": [{"at": "...", "transaction": {...}}], "owner": ..., "account": ...};
        /// a request may be "typed_data", "message" or "user_operation" instead of "transaction".
        #[arg(long)]
        request: PathBuf,
    },
    /// Map an ERC-7715 wallet_grantPermissions request to a Bridle policy (TOML on stdout);
    /// what cannot be mapped is listed on stderr.
    FromErc7715 {
        /// The request JSON (the JSON-RPC call, its params, or one permission request).
        file: PathBuf,
        /// Name a token: SYMBOL=ADDRESS:DECIMALS (otherwise TOKEN1… in base units).
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// Map only the requests for this chain (one policy per chain: a policy's limits
        /// apply on every chain it allows).
        #[arg(long)]
        chain: Option<u64>,
    },
}

pub fn load_policy(path: &PathBuf) -> Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    resolve_text(&text, now()).map_err(|d| anyhow!("{}: {d}", path.display()))
}

pub fn compile(path: &PathBuf) -> Result<CompiledPolicy> {
    let doc = load_policy(path)?;
    CompiledPolicy::compile(doc).map_err(|d| anyhow!("{}: {d}", path.display()))
}

pub fn run(p: PolicyCmd) -> Result<i32> {
    match p {
        PolicyCmd::Check { file } => {
            let c = compile(&file)?;
            match c.check_lifetime(now()) {
                Ok(()) => println!("ok: {} is valid (hash {})", file.display(), c.hash),
                Err(d) => {
                    println!("ok: {} is well-formed (hash {})", file.display(), c.hash);
                    eprintln!("warning: a session granted now would be refused: {d}");
                    return Ok(1);
                }
            }
        }
        PolicyCmd::Hash { file } => println!("{}", compile(&file)?.hash),
        PolicyCmd::Explain { file } => print!("{}", explain(&compile(&file)?)),
        PolicyCmd::Normalize { file } => println!("{}", serde_json::to_string_pretty(&compile(&file)?.doc)?),
        PolicyCmd::Simulate { file, request } => return simulate(&file, &request),
        PolicyCmd::FromErc7715 { file, tokens, chain } => return from_erc7715(&file, &tokens, chain),
    }
    Ok(0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimFile {
    #[serde(default)]
    owner: Address,
    #[serde(default)]
    account: Address,
    /// Session start (period anchor); default: the first request's time.
    start: Option<String>,
    #[serde(default)]
    requests: Vec<SimRequest>,
    transaction: Option<TxRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimRequest {
    at: Option<String>,
    transaction: Option<TxRequest>,
    /// EIP-712 typed data (JSON object or string).
    typed_data: Option<serde_json::Value>,
    /// A personal message (text).
    message: Option<String>,
    user_operation: Option<bridle_common::userop::UserOperationRequest>,
}

impl SimRequest {
    fn payload(&self) -> Result<SignPayload> {
        Ok(match (&self.transaction, &self.typed_data, &self.message, &self.user_operation) {
            (Some(t), None, None, None) => SignPayload::Transaction(t.clone()),
            (None, Some(td), None, None) => SignPayload::TypedData(match td {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            }),
            (None, None, Some(m), None) => SignPayload::Message(Bytes::copy_from_slice(m.as_bytes())),
            (None, None, None, Some(u)) => SignPayload::UserOperation(u.clone()),
            _ => bail!("each request needs exactly one of transaction, typed_data, message, user_operation"),
        })
    }
}

fn sim_time(s: &Option<String>, default: u64) -> Result<u64> {
    match s {
        None => Ok(default),
        Some(t) => bridle_common::period::parse_time(t).ok_or_else(|| anyhow!("`{t}` is not a time")),
    }
}

fn simulate(file: &PathBuf, request: &PathBuf) -> Result<i32> {
    let text = std::fs::read_to_string(request).with_context(|| format!("cannot read {}", request.display()))?;
    let sim: SimFile =
        serde_json::from_str(&text).with_context(|| format!("{} is not a request file", request.display()))?;
    let mut reqs = sim.requests;
    if let Some(t) = sim.transaction {
        reqs.insert(
            0,
            SimRequest { at: None, transaction: Some(t), typed_data: None, message: None, user_operation: None },
        );
    }
    if reqs.is_empty() {
        bail!("the request file has no requests");
    }
    let first = sim_time(&reqs[0].at, now())?;
    let start = sim_time(&sim.start, first)?;
    let ptext = std::fs::read_to_string(file)?;
    let doc = resolve_text(&ptext, start).map_err(|d| anyhow!("{}: {d}", file.display()))?;
    let p = CompiledPolicy::compile(doc).map_err(|d| anyhow!("{}: {d}", file.display()))?;
    // The enclave's own decision core, with a throwaway key: what it decides here is what
    // the enclave decides, request after request (session time, ledger, registry, pending).
    let key = SimKey(k256::ecdsa::SigningKey::from_slice(&[0x51; 32]).map_err(|e| anyhow!("{e}"))?);
    let account = if sim.account == Address::ZERO { key.address() } else { sim.account };
    let mut m = bridle_common::machine::Machine::new(account, sim.owner, Address::ZERO, p.clone(), start, 60, 1 << 16);
    let mut all_allowed = true;
    for (i, r) in reqs.iter().enumerate() {
        let t = sim_time(&r.at, start)?;
        let payload = r.payload()?;
        let prepared = match bridle_common::payload::prepare(&payload) {
            Ok(x) => x,
            Err(d) => {
                all_allowed = false;
                println!("request {i}: {d}");
                continue;
            }
        };
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let stamp = bridle_common::stamp::Stamp { nonce, timestamp: m.time_at(t), mac: [0; 32] };
        let before = m.counters().ledger.clone();
        let out = m.sign(t, &payload, prepared, &stamp, Some(&key));
        match out.result {
            Ok(_) => {
                let mut parts = vec![];
                for line in m.counters().ledger.lines() {
                    use bridle_common::ledger::LedgerKey;
                    if matches!(line.key, LedgerKey::GasCost | LedgerKey::Usd) {
                        continue;
                    }
                    let after = line.counters[5].spent;
                    let was =
                        before.lines().iter().find(|l| l.key == line.key).map_or(U256::ZERO, |l| l.counters[5].spent);
                    if after > was {
                        parts.push(describe_charge(&p, line.key, after - was));
                    }
                }
                let charged = if parts.is_empty() { "nothing".to_string() } else { parts.join(", ") };
                println!("request {i}: allowed (charges {charged})");
            }
            Err(d) if d.code == bridle_common::ErrorCode::PendingApproval => {
                // Held for the owner's approval: charged only once approved and signed.
                println!("request {i}: {d}");
            }
            Err(d) => {
                all_allowed = false;
                println!("request {i}: {d}");
            }
        }
    }
    Ok(if all_allowed { 0 } else { 1 })
}

/// The throwaway key `policy simulate` signs with.
struct SimKey(k256::ecdsa::SigningKey);

impl SimKey {
    fn address(&self) -> Address {
        Address::from_public_key(self.0.verifying_key())
    }
}

impl bridle_common::machine::Signer for SimKey {
    fn sign(&self, digest: &B256) -> Result<alloy_primitives::Signature, String> {
        let (sig, recid) = self.0.sign_prehash_recoverable(digest.as_slice()).map_err(|e| e.to_string())?;
        Ok(alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd()))
    }
}

/// `80 USDC`, `0.5 ETH`, `0.002 ETH of gas`.
fn describe_charge(p: &CompiledPolicy, key: bridle_common::ledger::LedgerKey, v: U256) -> String {
    use bridle_common::ledger::LedgerKey;
    match key {
        LedgerKey::Native => format!("{} ETH", format_decimal(v, 18)),
        LedgerKey::GasCost => format!("{} ETH of gas", format_decimal(v, 18)),
        LedgerKey::Usd => format!("{} (at the price table)", bridle_common::allowance::fmt_usd(v)),
        LedgerKey::Token(a) => match p.doc.tokens.iter().find(|t| t.address == a) {
            Some(t) => format!("{} {}", format_decimal(v, t.decimals), t.symbol),
            None => format!("{v} of token {a}"),
        },
    }
}

fn from_erc7715(file: &PathBuf, tokens: &[String], chain: Option<u64>) -> Result<i32> {
    let text = read_input(file)?;
    let mut known = Vec::new();
    for t in tokens {
        let (sym, rest) = t.split_once('=').ok_or_else(|| anyhow!("--token {t}: expected SYMBOL=ADDRESS:DECIMALS"))?;
        let (addr, dec) =
            rest.split_once(':').ok_or_else(|| anyhow!("--token {t}: expected SYMBOL=ADDRESS:DECIMALS"))?;
        known.push(bridle_common::erc7715::KnownToken {
            symbol: sym.trim().to_string(),
            address: Address::from_str(addr.trim()).map_err(|e| anyhow!("--token {t}: {e}"))?,
            decimals: dec.trim().parse().map_err(|e| anyhow!("--token {t}: {e}"))?,
        });
    }
    let m = bridle_common::erc7715::map(&text, &known, now(), chain).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    // The output must be a policy this build accepts.
    let doc = resolve_text(&m.toml, now()).map_err(|d| anyhow!("the mapped policy does not resolve: {d}"))?;
    CompiledPolicy::compile(doc).map_err(|d| anyhow!("the mapped policy is not valid: {d}"))?;
    print!("{}", m.toml);
    // A note may quote the request (a `justification`, a type's name): the dApp's text,
    // escaped so it cannot move the cursor or erase the lines above (a review of 2026-12-06).
    for n in &m.notes {
        eprintln!("not mapped / approximate: {}", crate::client::printable(n));
    }
    Ok(0)
}
