//! `bridle owner sweep`: the revocation sweep (R-APP-6), checked before anything is printed
//! or broadcast.
//!
//! Every raw transaction of the reply is decoded (`TxEnvelope::decode_2718`): it must be
//! signed by the session, on the chain and at the nonce planned from the terms sent, to the
//! entry's token (or its Permit2 contract) with calldata exactly `approve(spender, 0)` (or
//! Permit2 `approve(token, spender, 0, 0)`), no value, fees and gas within the terms. The
//! reply is the enclave's word only with its receipt: for an owner-signed sweep, a receipt
//! for this owner nonce (only then is `key_destroyed` reported); an unsigned sweep answers no
//! nonce of ours, so it is labelled unverified.

use crate::checks;
use crate::keys;
use crate::owner::{action_for, owned_session, owner_auth, Conn};
use crate::util::gwei_or_unit;
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::action;
use bridle_common::protocol::{Sweep, SweepReply, SweepTerms};
use bridle_common::receipt;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long)]
    pub session: Address,
    /// Owner key file: sign the sweep.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// An Ethereum JSON-RPC URL: read the chain id, the session's next nonce and the fees
    /// there (and, with --send, broadcast the revocations).
    #[arg(long)]
    pub rpc: Option<String>,
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// The session address's next nonce on that chain.
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Max fee per gas, e.g. "2 gwei"; with --rpc, default 2 × base fee + priority fee.
    #[arg(long)]
    pub max_fee: Option<String>,
    #[arg(long, default_value = "1 gwei")]
    pub priority_fee: String,
    /// Gas limit per revocation.
    #[arg(long, default_value_t = 100_000)]
    pub gas: u64,
    /// Broadcast the signed revocations through --rpc (only after every check passed).
    #[arg(long, requires = "rpc")]
    pub send: bool,
    /// Owner nonce (with --key); default: the current time in milliseconds.
    #[arg(long)]
    pub owner_nonce: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

/// One Ethereum JSON-RPC call (for `--rpc`), as the MCP server makes them: the reply read
/// within a bound, the node's text quoted, the URL (often carrying an API key) never shown.
fn eth_rpc(url: &str, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
    crate::mcp_agent::Node::new(url)?.call(method, params)
}

fn quantity(v: &serde_json::Value) -> Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| anyhow!("{s}: {e}"))
}

/// Chain id, first nonce and max fee: given, or read from `--rpc`.
fn terms(a: &SweepArgs, priority: u128) -> Result<SweepTerms> {
    let (chain_id, nonce, max_fee) = match &a.rpc {
        Some(url) => {
            let chain = match a.chain_id {
                Some(c) => c,
                None => quantity(&eth_rpc(url, "eth_chainId", serde_json::json!([]))?)?,
            };
            let n = match a.nonce {
                Some(n) => n,
                None => quantity(&eth_rpc(url, "eth_getTransactionCount", serde_json::json!([a.session, "pending"]))?)?,
            };
            let fee = match &a.max_fee {
                Some(f) => gwei_or_unit(f)?,
                None => {
                    let b = eth_rpc(url, "eth_getBlockByNumber", serde_json::json!(["latest", false]))?;
                    let base = quantity(&b["baseFeePerGas"]).unwrap_or(1_000_000_000) as u128;
                    base.saturating_mul(2).saturating_add(priority)
                }
            };
            (chain, n, fee)
        }
        None => (
            a.chain_id.ok_or_else(|| anyhow!("--chain-id is required (or --rpc)"))?,
            a.nonce.ok_or_else(|| anyhow!("--nonce is required (or --rpc): the session's next nonce"))?,
            gwei_or_unit(a.max_fee.as_deref().ok_or_else(|| anyhow!("--max-fee is required (or --rpc)"))?)?,
        ),
    };
    Ok(SweepTerms {
        chain_id,
        nonce,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: priority.min(max_fee),
        gas_limit: a.gas,
    })
}

pub fn run(a: SweepArgs) -> Result<i32> {
    let session = a.session;
    let priority = gwei_or_unit(&a.priority_fee)?;
    let mut body = Sweep { session, terms: vec![terms(&a, priority)?], accounts: vec![], auth: None };
    let mut owner_nonce = None;
    let e = match &a.key {
        Some(k) => {
            let key = keys::load(k)?;
            let (e, ss) = owned_session(&a.conn, session, key.address)?;
            let n = e.owner_nonce(a.owner_nonce, 0);
            let msg = action_for(&e, action::SWEEP, session, ss.agent, B256::ZERO, body.terms_digest(), n);
            body.auth = Some(owner_auth(&key, &msg)?);
            owner_nonce = Some((key.address, n));
            e
        }
        None => a.conn.connect(Some(session))?,
    };
    let r: SweepReply = e.host.post(&format!("/v1/sessions/{session}/sweep"), &body)?;
    if r.session != session {
        bail!("the sweep reply is for session {}, not {session}", r.session);
    }
    checks::sweep(&r.transactions, &body.terms, session, body.auth.is_some())
        .context("refusing the sweep reply: nothing is printed as signed, nothing is sent")?;
    // Whose word is the reply?
    // An owner-signed sweep without its receipt is not the enclave's word: the enclave may
    // have made it (and destroyed the key) and failed to sign the receipt, or the host
    // replays an older reply. Each transaction was checked above — a revocation of this
    // session's allowances, harmless to send whenever — so they are printed, labelled, and
    // the command exits 1.
    let mut unconfirmed = None;
    let word = match owner_nonce {
        Some((owner, n)) => {
            match checks::receipt(&r, e.trusted.address, checks::owner_nonce(owner, n), "the sweep reply") {
                Ok(rc) => format!(
                    "signed by the enclave {} at {} (receipt for owner nonce {n})",
                    rc.enclave,
                    bridle_common::period::format_time(rc.time)
                ),
                Err(err) => {
                    let word = format!(
                        "UNVERIFIED (the host's word): no receipt of the enclave for owner nonce {n} ({err:#}); \
                     the sweep may or may not have been made; each transaction was checked; \
                     see the session's signed status (`bridle owner status`), or sweep again with a fresh nonce"
                    );
                    unconfirmed = Some(err);
                    word
                }
            }
        }
        None => match receipt::verify(&r, e.trusted.address, None) {
            Ok(rc) => format!(
                "UNVERIFIED freshness: signed by the enclave at {}, but an unsigned sweep answers no nonce of yours \
                 (the host may replay an old reply); each transaction was checked",
                bridle_common::period::format_time(rc.time)
            ),
            Err(err) => format!("UNVERIFIED (the host's word): {err}; each transaction was checked"),
        },
    };
    let verified = owner_nonce.is_some() && unconfirmed.is_none();
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["verified"] = verified.into();
        // Whose word the reply is, as the human output says it: with `verified: false`, the
        // `receipt` and `skipped` fields above are only what the host returned.
        v["word"] = word.as_str().into();
        if !verified {
            // Only a receipt for our nonce makes it the enclave's word.
            v["key_destroyed"] = serde_json::Value::Null;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{} revocation(s) signed by the session, each decoded and checked", r.transactions.len());
        println!("  {word}");
        for t in &r.transactions {
            let call = match t.invalidate_nonce {
                None => format!("approve({}, 0)", t.spender),
                Some(n) => format!("invalidateNonces({}, {}, {n}) (cancels its Permit2 permits)", t.token, t.spender),
            };
            println!("  chain {} nonce {}: {call} on {} → {}", t.chain_id, t.nonce, t.to, t.hash);
            println!("    {}", t.raw_transaction);
        }
        for k in &r.skipped {
            println!(
                "  skipped {} → {} on chain {}: {}",
                k.token,
                k.spender,
                k.chain_id,
                crate::client::printable(&k.reason)
            );
        }
        if verified && r.key_destroyed {
            println!("the revoked session's key is destroyed");
        } else if verified && !r.transactions.is_empty() {
            println!(
                "the enclave cannot see these revocations mined: sweep again if one is not (a revoked \
                 session's key is destroyed only when no approval may be outstanding)"
            );
        }
    }
    if let Some(err) = &unconfirmed {
        eprintln!(
            "bridle: the sweep is not confirmed by the enclave: {}",
            crate::client::printable(&format!("{err:#}"))
        );
    }
    if a.send {
        let url = a.rpc.as_deref().unwrap_or_default();
        for t in &r.transactions {
            let h = eth_rpc(url, "eth_sendRawTransaction", serde_json::json!([t.raw_transaction]))?;
            // The node's answer: a hash, or whatever it chose to write.
            eprintln!("sent {} (the node's word)", crate::client::printable(h.as_str().unwrap_or_default()));
        }
    }
    if unconfirmed.is_some() {
        return Ok(1);
    }
    Ok(0)
}
