//! `bridle`: the command line for owners, agents, policy authors and verifiers.

mod client;
mod dev;
mod keys;
mod verify_attestation;
mod verify_audit;
mod verify_session;

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_json_abi::Function;
use alloy_primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{explain::explain, CompiledPolicy, Policy};
use bridle_common::protocol::*;
use bridle_common::stamp::{PayloadKind, StampKey};
use bridle_common::tx::{Eip1559Request, LegacyRequest, TxRequest};
use bridle_common::units::{format_decimal, parse_native};
use clap::{Args, Parser, Subcommand};
use client::{Host, Refused};
use serde::Deserialize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(name = "bridle", version, about = "Bridle: agents transact with a permission, not a private key")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a development enclave (mock NSM, Unix socket) and the host on localhost.
    Dev(dev::DevArgs),
    /// Owner actions: keys, grant, update, revoke, revoke-all, status.
    #[command(subcommand)]
    Owner(OwnerCmd),
    /// Agent actions: keys, signing.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Policy files: check, hash, explain, simulate.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Verify attestation documents.
    #[command(subcommand)]
    Verify(VerifyCmd),
    /// The enclave's signed audit log: export it from the host (then `bridle verify audit`).
    #[command(subcommand)]
    Audit(verify_audit::AuditCmd),
}

#[derive(Args, Clone)]
struct HostArg {
    /// The host's base URL.
    #[arg(long, env = "BRIDLE_HOST", default_value = "http://127.0.0.1:8547")]
    host: String,
}

#[derive(Subcommand)]
enum OwnerCmd {
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

#[derive(Subcommand)]
enum AgentCmd {
    /// Generate an agent identity key (0600); give its public key to the owner.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Ask the enclave to sign a transaction under the session's policy.
    SignTx(Box<SignTxArgs>),
    /// Ask the enclave to sign EIP-712 typed data (eth_signTypedData_v4 JSON) under the policy.
    SignTypedData {
        #[command(flatten)]
        agent: AgentArgs,
        /// Typed-data JSON file ("-" for stdin).
        #[arg(long)]
        data: PathBuf,
    },
    /// Ask the enclave to sign an EIP-191 personal message under the policy.
    SignMessage {
        #[command(flatten)]
        agent: AgentArgs,
        /// The message text.
        #[arg(long, conflicts_with_all = ["hex", "file"])]
        message: Option<String>,
        /// The message as 0x-hex bytes.
        #[arg(long, conflicts_with = "file")]
        hex: Option<String>,
        /// Read the message bytes from a file.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Ask the enclave to sign an ERC-4337 v0.7 user operation (JSON file in the enclave's
    /// UserOperationRequest form); prints the signature and the userOpHash.
    SignUserop {
        #[command(flatten)]
        agent: AgentArgs,
        /// User operation JSON file ("-" for stdin).
        #[arg(long)]
        op: PathBuf,
    },
}

#[derive(Args)]
struct AgentArgs {
    #[command(flatten)]
    host: HostArg,
    /// Agent key file.
    #[arg(long)]
    key: PathBuf,
    /// Session address.
    #[arg(long)]
    session: Address,
}

#[derive(Args)]
struct SignTxArgs {
    #[command(flatten)]
    host: HostArg,
    /// Agent key file.
    #[arg(long)]
    key: PathBuf,
    /// Session address.
    #[arg(long)]
    session: Address,
    /// A transaction request JSON file (the enclave's TxRequest form); replaces the flags below.
    #[arg(long)]
    tx: Option<PathBuf>,
    #[arg(long)]
    to: Option<Address>,
    /// Native value with unit: "0.01 ETH".
    #[arg(long, default_value = "0 ETH")]
    value: String,
    /// Raw calldata (hex).
    #[arg(long, conflicts_with = "call")]
    data: Option<String>,
    /// Function signature to encode, e.g. "transfer(address,uint256)".
    #[arg(long)]
    call: Option<String>,
    /// Arguments for --call, in order.
    #[arg(long = "arg")]
    args: Vec<String>,
    #[arg(long)]
    chain_id: Option<u64>,
    #[arg(long)]
    nonce: Option<u64>,
    #[arg(long, default_value_t = 100_000)]
    gas: u64,
    /// Max fee per gas (EIP-1559), e.g. "30 gwei".
    #[arg(long, default_value = "30 gwei")]
    max_fee: String,
    #[arg(long, default_value = "1 gwei")]
    priority_fee: String,
    /// Sign a legacy EIP-155 transaction with this gas price instead.
    #[arg(long)]
    gas_price: Option<String>,
    /// Print only the raw signed transaction.
    #[arg(long)]
    raw: bool,
}

#[derive(Subcommand)]
enum PolicyCmd {
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

#[derive(Subcommand)]
enum VerifyCmd {
    /// Verify an AWS Nitro attestation document.
    Attestation(verify_attestation::VerifyAttestationArgs),
    /// Verify a session's binding: attestation → identity key → binding → the owner's policy.
    Session(verify_session::VerifySessionArgs),
    /// Verify an exported audit log: complete, every link intact, head signed by the attested identity key.
    Audit(verify_audit::VerifyAuditArgs),
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn default_nonce(n: Option<u64>) -> u64 {
    n.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

fn load_policy(path: &PathBuf) -> Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    resolve_text(&text, now()).map_err(|d| anyhow!("{}: {d}", path.display()))
}

fn compile(path: &PathBuf) -> Result<CompiledPolicy> {
    let doc = load_policy(path)?;
    CompiledPolicy::compile(doc).map_err(|d| anyhow!("{}: {d}", path.display()))
}

fn status(host: &Host) -> Result<Status> {
    host.get("/v1/status")
}

fn owner_auth(key: &keys::LoadedKey, msg: &OwnerAction) -> Result<OwnerAuth> {
    let sig = key.sign_digest(&msg.digest())?;
    Ok(OwnerAuth { owner: key.address, nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) })
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(r) = e.downcast_ref::<Refused>() {
                eprintln!("{r}");
            } else {
                eprintln!("bridle: {e:#}");
            }
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Dev(a) => dev::run(a),
        Cmd::Verify(VerifyCmd::Attestation(a)) => Ok(verify_attestation::run(&a)),
        Cmd::Verify(VerifyCmd::Session(a)) => Ok(verify_session::run(&a)),
        Cmd::Verify(VerifyCmd::Audit(a)) => Ok(verify_audit::run(&a)),
        Cmd::Audit(a) => verify_audit::audit_cmd(&a),
        Cmd::Policy(p) => policy_cmd(p),
        Cmd::Owner(o) => owner_cmd(o),
        Cmd::Agent(a) => agent_cmd(a),
    }
}

fn policy_cmd(p: PolicyCmd) -> Result<i32> {
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

fn owner_cmd(o: OwnerCmd) -> Result<i32> {
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

fn print_allowances(session: Address, info: &serde_json::Value) -> Result<()> {
    let list: Vec<bridle_common::allowance::Allowance> = serde_json::from_value(info["allowances"].clone())?;
    let x: ExposureStatus = serde_json::from_value(info["exposure"].clone()).unwrap_or_default();
    let usd = |v| bridle_common::allowance::fmt_usd(v);
    match x.ceiling {
        Some(c) => println!("outstanding exposure: {} of a {} ceiling", usd(x.usd), usd(c)),
        None => println!("outstanding exposure: {} (no ceiling)", usd(x.usd)),
    }
    if !x.unpriced.is_empty() {
        println!("unpriced outstanding: {}", x.unpriced.join(", "));
    }
    if list.is_empty() {
        println!("no approvals signed");
    }
    for e in &list {
        let holder = if e.holder == session { String::new() } else { format!(" (held by {})", e.holder) };
        println!(
            "chain {:<6} {:<9} {} {} → {} [{}] via {}{holder}",
            e.chain_id,
            e.state.as_str(),
            format_decimal(e.amount, e.decimals),
            e.symbol,
            e.spender,
            e.kind.as_str(),
            e.via
        );
        println!(
            "             granted {}, expires {}",
            bridle_common::period::format_time(e.granted_at),
            bridle_common::period::format_time(e.expires_at)
        );
    }
    Ok(())
}

fn session_agent(info: &serde_json::Value) -> Result<Address> {
    let a = info["session"]["agent"]
        .as_str()
        .or_else(|| info["stored"]["agent"].as_str())
        .ok_or_else(|| anyhow!("the host does not know this session's agent"))?;
    Address::from_str(a).map_err(|e| anyhow!("bad agent address from host: {e}"))
}

fn print_status(info: &serde_json::Value) -> Result<()> {
    let s = &info["session"];
    if s.is_null() {
        let state = info["stored"]["state"].as_str().unwrap_or("unknown");
        println!("session not in the enclave (host records state: {state})");
        return Ok(());
    }
    let ss: SessionStatus = serde_json::from_value(s.clone())?;
    println!("session:    {}", ss.session);
    println!("state:      {:?}", ss.state);
    println!("owner:      {}", ss.owner);
    println!("agent:      {}", ss.agent);
    println!("policy:     {}", ss.policy_hash);
    println!("valid until {}", bridle_common::period::format_time(ss.valid_until));
    match ss.uses_left {
        Some(l) => println!("uses:       {} ({l} left)", ss.uses),
        None => println!("uses:       {}", ss.uses),
    }
    if let Some(why) = &ss.suspended_reason {
        println!("suspended:  {why}");
    }
    let outstanding =
        ss.allowances.iter().filter(|a| a.state.as_str() == "active" || a.state.as_str() == "expired").count();
    println!(
        "approvals:  {} outstanding of {} recorded, exposure {}{}",
        outstanding,
        ss.allowances.len(),
        bridle_common::allowance::fmt_usd(ss.exposure.usd),
        ss.exposure.ceiling.map(|c| format!(" of {}", bridle_common::allowance::fmt_usd(c))).unwrap_or_default()
    );
    for p in &ss.pending {
        println!(
            "pending:    {} {} ({}, until {}): {}",
            p.digest,
            p.kind,
            p.state,
            bridle_common::period::format_time(p.expires_at),
            p.reason
        );
    }
    for c in &ss.caps {
        let reset =
            c.resets_at.map(|t| format!(", resets {}", bridle_common::period::format_time(t))).unwrap_or_default();
        println!(
            "{:<22} {}: spent {} of {} {}{reset}",
            c.rule,
            c.what,
            format_decimal(c.spent, c.decimals),
            format_decimal(c.cap, c.decimals),
            c.symbol
        );
    }
    Ok(())
}

fn encode_call(sig: &str, args: &[String]) -> Result<Bytes> {
    let f = Function::parse(sig).map_err(|e| anyhow!("`{sig}`: {e}"))?;
    if f.inputs.len() != args.len() {
        bail!("`{sig}` takes {} arguments, {} given", f.inputs.len(), args.len());
    }
    let mut values = Vec::new();
    for (p, a) in f.inputs.iter().zip(args) {
        let ty: DynSolType = p.selector_type().parse().map_err(|e| anyhow!("{e}"))?;
        values.push(ty.coerce_str(a).map_err(|e| anyhow!("argument `{a}` for {ty}: {e}"))?);
    }
    let mut data = f.selector().to_vec();
    data.extend(DynSolValue::Tuple(values).abi_encode_params());
    Ok(data.into())
}

fn agent_cmd(a: AgentCmd) -> Result<i32> {
    match a {
        AgentCmd::Keygen { out, force } => {
            let k = keys::generate(&out, "agent", force)?;
            println!("agent address:    {}", k.address);
            println!("agent public key: {}", k.public_key_hex());
            println!("key file:         {} (mode 0600)", out.display());
        }
        AgentCmd::SignTx(s) => return sign_tx(*s),
        AgentCmd::SignTypedData { agent, data } => {
            let text = read_input(&data)?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", data.display()))?;
            let signed = sign_payload(&agent, SignPayload::TypedData(text))?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
        AgentCmd::SignMessage { agent, message, hex: hx, file } => {
            let bytes = match (message, hx, file) {
                (Some(m), None, None) => m.into_bytes(),
                (None, Some(h), None) => hex::decode(h.trim().trim_start_matches("0x")).context("--hex is not hex")?,
                (None, None, Some(f)) => std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?,
                _ => bail!("give one of --message, --hex or --file"),
            };
            let signed = sign_payload(&agent, SignPayload::Message(bytes.into()))?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
        AgentCmd::SignUserop { agent, op } => {
            let text = read_input(&op)?;
            let op: bridle_common::userop::UserOperationRequest =
                serde_json::from_str(&text).context("not a user operation (UserOperationRequest JSON)")?;
            let signed = sign_payload(&agent, SignPayload::UserOperation(op))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "session": signed.session,
                    "userOpHash": signed.digest,
                    "signature": signed.signature,
                }))?
            );
        }
    }
    Ok(0)
}

fn read_input(p: &PathBuf) -> Result<String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    }
}

/// Stamp a payload with the digest the enclave will compute, and send it.
fn sign_payload(a: &AgentArgs, payload: SignPayload) -> Result<Signed> {
    let host = Host::new(&a.host.host)?;
    let key = keys::load(&a.key)?;
    let st = status(&host)?;
    let enclave_pk =
        k256::PublicKey::from_sec1_bytes(&st.identity_public_key).context("enclave identity key from host")?;
    // A payload that does not decode is sent anyway: the enclave refuses it with its code.
    let digest = bridle_common::payload::stamp_digest(&payload).unwrap_or(B256::ZERO);
    let sk = StampKey::derive(&key.secret, &enclave_pk, a.session, key.address);
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let stamp = sk.stamp(a.session, payload.kind(), &digest, nonce, now());
    host.post("/v1/sign", &SignRequest { session: a.session, payload, stamp })
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
    for n in &m.notes {
        eprintln!("not mapped / approximate: {n}");
    }
    Ok(0)
}

fn gwei_or_unit(s: &str) -> Result<u128> {
    let v = parse_native(s).map_err(|e| anyhow!("{e}"))?;
    u128::try_from(v).map_err(|_| anyhow!("{s} is too large"))
}

fn sign_tx(s: SignTxArgs) -> Result<i32> {
    let host = Host::new(&s.host.host)?;
    let key = keys::load(&s.key)?;
    let tx: TxRequest = match &s.tx {
        Some(p) => serde_json::from_str(&std::fs::read_to_string(p)?)
            .with_context(|| format!("{} is not a transaction request", p.display()))?,
        None => {
            let to = s.to.ok_or_else(|| anyhow!("--to is required (or --tx FILE)"))?;
            let chain_id = s.chain_id.ok_or_else(|| anyhow!("--chain-id is required: Bridle fills nothing in"))?;
            let nonce = s.nonce.ok_or_else(|| anyhow!("--nonce is required: Bridle fills nothing in"))?;
            let value: U256 = parse_native(&s.value).map_err(|e| anyhow!("--value: {e}"))?;
            let data = match (&s.data, &s.call) {
                (Some(d), _) => Bytes::from(hex::decode(d.trim_start_matches("0x")).context("--data is not hex")?),
                (None, Some(sig)) => encode_call(sig, &s.args)?,
                (None, None) => Bytes::new(),
            };
            match &s.gas_price {
                Some(gp) => TxRequest::Legacy(LegacyRequest {
                    chain_id,
                    nonce,
                    gas_price: gwei_or_unit(gp)?,
                    gas_limit: s.gas,
                    to: Some(to),
                    value,
                    data,
                }),
                None => TxRequest::Eip1559(Eip1559Request {
                    chain_id,
                    nonce,
                    max_fee_per_gas: gwei_or_unit(&s.max_fee)?,
                    max_priority_fee_per_gas: gwei_or_unit(&s.priority_fee)?,
                    gas_limit: s.gas,
                    to: Some(to),
                    value,
                    data,
                    access_list: vec![],
                }),
            }
        }
    };
    let st = status(&host)?;
    let enclave_pk =
        k256::PublicKey::from_sec1_bytes(&st.identity_public_key).context("enclave identity key from host")?;
    let digest = match tx.build() {
        Some(b) => b.signing_hash(),
        None => B256::ZERO, // type 4: the enclave refuses it before checking anything else
    };
    let sk = StampKey::derive(&key.secret, &enclave_pk, s.session, key.address);
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let stamp = sk.stamp(s.session, PayloadKind::Transaction, &digest, nonce, now());
    let req = SignRequest { session: s.session, payload: SignPayload::Transaction(tx), stamp };
    let signed: Signed = host.post("/v1/sign", &req)?;
    if s.raw {
        println!("{}", signed.raw_transaction.map(|r| r.to_string()).unwrap_or_default());
    } else {
        println!("{}", serde_json::to_string_pretty(&signed)?);
    }
    Ok(0)
}
