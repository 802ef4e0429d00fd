//! `bridle owner`: keys, grant, update, revoke, revoke-all, status, allowances, sweep, approve.

use crate::client::Host;
use crate::keys;
use crate::owner_view::{print_allowances, print_status};
use crate::policy_cmd::compile;
use crate::util::{default_nonce, gwei_or_unit, now, HostArg};
use alloy_primitives::{Address, Bytes, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use clap::Subcommand;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Subcommand)]
pub enum OwnerCmd {
    /// Generate an owner key file (0600). Any Ethereum key works as an owner key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Grant a session to an agent under a policy.
    Grant {
        #[command(flatten)]
        host: HostArg,
        /// Owner key file (or a file holding a 0x-hex private key).
        #[arg(long)]
        key: PathBuf,
        /// The agent's public key (hex) or its key file.
        #[arg(long)]
        agent: String,
        /// Policy file (TOML or JSON).
        #[arg(long)]
        policy: PathBuf,
        /// Owner nonce; default: the current time in milliseconds.
        #[arg(long)]
        nonce: Option<u64>,
        /// Print the full JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Replace a session's policy.
    Update {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        session: Address,
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Revoke one session.
    Revoke {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        session: Address,
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Revoke every session of this owner at once.
    RevokeAll {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Show a session: state, spend against each cap, uses left, expiry.
    Status {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        session: Address,
        #[arg(long)]
        json: bool,
    },
    /// Show a session's allowance registry: every approval and permit it signed, its state,
    /// and the outstanding exposure against the ceiling.
    Allowances {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        session: Address,
        #[arg(long)]
        json: bool,
    },
    /// Revocation sweep: the enclave signs approve(spender, 0) for expired approvals (and for
    /// every outstanding one of a revoked, suspended or ended session). With --key the owner
    /// signs the sweep: every outstanding (or already swept) approval, at these fees; a
    /// revoked session's key is destroyed afterwards.
    Sweep {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        session: Address,
        /// Owner key file: sign the sweep.
        #[arg(long)]
        key: Option<PathBuf>,
        /// An Ethereum JSON-RPC URL: read the chain id, the session's next nonce and the
        /// fees there (and, with --send, broadcast the revocations).
        #[arg(long)]
        rpc: Option<String>,
        #[arg(long)]
        chain_id: Option<u64>,
        /// The session address's next nonce on that chain.
        #[arg(long)]
        nonce: Option<u64>,
        /// Max fee per gas, e.g. "2 gwei"; with --rpc, default 2 × base fee + priority fee.
        #[arg(long)]
        max_fee: Option<String>,
        #[arg(long, default_value = "1 gwei")]
        priority_fee: String,
        /// Gas limit per revocation.
        #[arg(long, default_value_t = 100_000)]
        gas: u64,
        /// Broadcast the signed revocations through --rpc.
        #[arg(long, requires = "rpc")]
        send: bool,
        /// Owner nonce (with --key); default: the current time in milliseconds.
        #[arg(long)]
        owner_nonce: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Approve a request held for your approval (escalation): the enclave signs it now and
    /// returns the signature; the agent can also collect it by asking again.
    Approve {
        #[command(flatten)]
        host: HostArg,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        session: Address,
        /// The pending request's digest (from `bridle owner status` or the agent's refusal).
        #[arg(long)]
        digest: B256,
        #[arg(long)]
        nonce: Option<u64>,
    },
}

pub fn status(host: &Host) -> Result<Status> {
    host.get("/v1/status")
}

fn owner_auth(key: &keys::LoadedKey, msg: &OwnerAction) -> Result<OwnerAuth> {
    let sig = key.sign_digest(&msg.digest())?;
    Ok(OwnerAuth { owner: key.address, nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) })
}

pub fn run(o: OwnerCmd) -> Result<i32> {
    match o {
        OwnerCmd::Keygen { out, force } => {
            let k = keys::generate(&out, "owner", force)?;
            println!("owner address: {}", k.address);
            println!("key file:      {} (mode 0600)", out.display());
        }
        OwnerCmd::Grant { host, key, agent, policy, nonce, json } => {
            let host = Host::new(&host.host)?;
            let key = keys::load(&key)?;
            let agent_pk = keys::agent_public_key(&agent)?;
            let agent_addr = Address::from_public_key(
                &k256::ecdsa::VerifyingKey::from_sec1_bytes(&agent_pk).context("agent public key")?,
            );
            let p = compile(&policy)?;
            p.check_lifetime(now()).map_err(|d| anyhow!("{d}"))?;
            let st = status(&host)?;
            let msg = OwnerAction {
                action: action::CREATE_SESSION.into(),
                enclave: st.identity_address,
                session: Address::ZERO,
                agent: agent_addr,
                policyHash: p.hash,
                subject: B256::ZERO,
                nonce: default_nonce(nonce),
            };
            let body = CreateSession {
                auth: owner_auth(&key, &msg)?,
                agent_public_key: Bytes::from(agent_pk),
                policy: p.doc.clone(),
            };
            let created: SessionCreated = host.post("/v1/sessions", &body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                let b = &created.binding;
                println!("session:     {}", b.session);
                println!("owner:       {}", b.owner);
                println!("agent:       {}", b.agent);
                println!("policy hash: {}", b.policy_hash);
                println!("valid until: {}", bridle_common::period::format_time(b.valid_until));
                println!("enclave:     {}", b.enclave);
            }
        }
        OwnerCmd::Update { host, key, session, policy, nonce } => {
            let host = Host::new(&host.host)?;
            let key = keys::load(&key)?;
            let p = compile(&policy)?;
            let st = status(&host)?;
            let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}"))?;
            let agent = session_agent(&info)?;
            let msg = OwnerAction {
                action: action::UPDATE_POLICY.into(),
                enclave: st.identity_address,
                session,
                agent,
                policyHash: p.hash,
                subject: B256::ZERO,
                nonce: default_nonce(nonce),
            };
            let body = UpdatePolicy { auth: owner_auth(&key, &msg)?, session, policy: p.doc.clone() };
            let r: PolicyUpdated = host.post(&format!("/v1/sessions/{session}/policy"), &body)?;
            println!("session {} now enforces policy {}", r.session, r.policy_hash);
        }
        OwnerCmd::Revoke { host, key, session, nonce } => {
            let host = Host::new(&host.host)?;
            let key = keys::load(&key)?;
            let st = status(&host)?;
            let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}"))?;
            let agent = session_agent(&info)?;
            let msg = OwnerAction {
                action: action::REVOKE.into(),
                enclave: st.identity_address,
                session,
                agent,
                policyHash: B256::ZERO,
                subject: B256::ZERO,
                nonce: default_nonce(nonce),
            };
            let r: Revoked = host
                .post(&format!("/v1/sessions/{session}/revoke"), &Revoke { auth: owner_auth(&key, &msg)?, session })?;
            println!("revoked: {}", r.sessions.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "));
            sweep_hint(&host, session);
        }
        OwnerCmd::RevokeAll { host, key, nonce } => {
            let host = Host::new(&host.host)?;
            let key = keys::load(&key)?;
            let st = status(&host)?;
            let msg = OwnerAction {
                action: action::REVOKE_ALL.into(),
                enclave: st.identity_address,
                session: Address::ZERO,
                agent: Address::ZERO,
                policyHash: B256::ZERO,
                subject: B256::ZERO,
                nonce: default_nonce(nonce),
            };
            let r: Revoked = host.post(
                &format!("/v1/owners/{}/revoke-all", key.address),
                &RevokeAll { auth: owner_auth(&key, &msg)? },
            )?;
            println!("revoked {} session(s)", r.sessions.len());
            for s in r.sessions {
                println!("  {s}");
                sweep_hint(&host, s);
            }
        }
        OwnerCmd::Status { host, session, json } => {
            let host = Host::new(&host.host)?;
            let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_status(&info)?;
            }
        }
        OwnerCmd::Allowances { host, session, json } => {
            let host = Host::new(&host.host)?;
            let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}/allowances"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_allowances(session, &info)?;
            }
        }
        OwnerCmd::Sweep {
            host,
            session,
            key,
            rpc,
            chain_id,
            nonce,
            max_fee,
            priority_fee,
            gas,
            send,
            owner_nonce,
            json,
        } => {
            let host = Host::new(&host.host)?;
            let priority = gwei_or_unit(&priority_fee)?;
            let (chain_id, nonce, max_fee) = match &rpc {
                Some(url) => {
                    let chain = match chain_id {
                        Some(c) => c,
                        None => quantity(&eth_rpc(url, "eth_chainId", serde_json::json!([]))?)?,
                    };
                    let n = match nonce {
                        Some(n) => n,
                        None => quantity(&eth_rpc(
                            url,
                            "eth_getTransactionCount",
                            serde_json::json!([session, "pending"]),
                        )?)?,
                    };
                    let fee = match &max_fee {
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
                    chain_id.ok_or_else(|| anyhow!("--chain-id is required (or --rpc)"))?,
                    nonce.ok_or_else(|| anyhow!("--nonce is required (or --rpc): the session's next nonce"))?,
                    gwei_or_unit(max_fee.as_deref().ok_or_else(|| anyhow!("--max-fee is required (or --rpc)"))?)?,
                ),
            };
            let terms = vec![SweepTerms {
                chain_id,
                nonce,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority.min(max_fee),
                gas_limit: gas,
            }];
            let mut body = Sweep { session, terms, auth: None };
            if let Some(k) = &key {
                let key = keys::load(k)?;
                let st = status(&host)?;
                let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}"))?;
                let msg = OwnerAction {
                    action: action::SWEEP.into(),
                    enclave: st.identity_address,
                    session,
                    agent: session_agent(&info)?,
                    policyHash: B256::ZERO,
                    subject: body.terms_digest(),
                    nonce: default_nonce(owner_nonce),
                };
                body.auth = Some(owner_auth(&key, &msg)?);
            }
            let r: SweepReply = host.post(&format!("/v1/sessions/{session}/sweep"), &body)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{} revocation(s) signed", r.transactions.len());
                for t in &r.transactions {
                    println!(
                        "  chain {} nonce {}: approve({}, 0) on {} → {}",
                        t.chain_id, t.nonce, t.spender, t.to, t.hash
                    );
                    println!("    {}", t.raw_transaction);
                }
                for k in &r.skipped {
                    println!("  skipped {} → {} on chain {}: {}", k.token, k.spender, k.chain_id, k.reason);
                }
                if r.key_destroyed {
                    println!("the revoked session's key is destroyed");
                }
            }
            if send {
                let url = rpc.as_deref().unwrap_or_default();
                for t in &r.transactions {
                    let h = eth_rpc(url, "eth_sendRawTransaction", serde_json::json!([t.raw_transaction]))?;
                    eprintln!("sent {}", h.as_str().unwrap_or_default());
                }
            }
        }
        OwnerCmd::Approve { host, key, session, digest, nonce } => {
            let host = Host::new(&host.host)?;
            let key = keys::load(&key)?;
            let st = status(&host)?;
            let info: serde_json::Value = host.get(&format!("/v1/sessions/{session}"))?;
            let msg = OwnerAction {
                action: action::APPROVE_PENDING.into(),
                enclave: st.identity_address,
                session,
                agent: session_agent(&info)?,
                policyHash: B256::ZERO,
                subject: digest,
                nonce: default_nonce(nonce),
            };
            let body = ApprovePending { auth: owner_auth(&key, &msg)?, session, digest };
            let signed: Signed = host.post(&format!("/v1/sessions/{session}/approve"), &body)?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
    }
    Ok(0)
}

/// After a revocation: approvals still outstanding keep the session key alive, able to sign
/// only their revocation, until the owner's sweep.
fn sweep_hint(host: &Host, session: Address) {
    let Ok(info) = host.get::<serde_json::Value>(&format!("/v1/sessions/{session}/allowances")) else { return };
    let n = info["allowances"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|e| {
                    matches!(e["state"].as_str(), Some("active" | "expired"))
                        && e["holder"] == serde_json::json!(session)
                })
                .count()
        })
        .unwrap_or(0);
    if n > 0 {
        println!(
            "  {n} approval(s) still outstanding: the key is kept only to sign their revocation; run \
             `bridle owner sweep --session {session} --key <owner key> --rpc <url> --send`"
        );
    }
}

/// One Ethereum JSON-RPC call (for `owner sweep --rpc`).
fn eth_rpc(url: &str, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let v: serde_json::Value = reqwest::blocking::Client::new()
        .post(url)
        .json(&body)
        .send()
        .map_err(|e| anyhow!("cannot reach {url}: {e}"))?
        .json()
        .map_err(|e| anyhow!("{url}: {e}"))?;
    if let Some(e) = v.get("error") {
        bail!("{method}: {e}");
    }
    Ok(v["result"].clone())
}

fn quantity(v: &serde_json::Value) -> Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| anyhow!("{s}: {e}"))
}

fn session_agent(info: &serde_json::Value) -> Result<Address> {
    let a = info["session"]["agent"]
        .as_str()
        .or_else(|| info["stored"]["agent"].as_str())
        .ok_or_else(|| anyhow!("the host does not know this session's agent"))?;
    Address::from_str(a).map_err(|e| anyhow!("bad agent address from host: {e}"))
}
