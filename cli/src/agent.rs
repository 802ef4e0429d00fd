//! `bridle agent`: keys, and signing requests under a session's policy.

use crate::checks;
use crate::keys;
use crate::owner::Conn;
use crate::trust::Enclave;
use crate::util::{gwei_or_unit, now, read_input};
use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_json_abi::Function;
use alloy_primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_common::tx::{Eip1559Request, LegacyRequest, TxRequest};
use bridle_common::units::parse_native;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AgentCmd {
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
pub struct AgentArgs {
    #[command(flatten)]
    conn: Conn,
    /// Agent key file.
    #[arg(long)]
    key: PathBuf,
    /// Session address.
    #[arg(long)]
    session: Address,
}

#[derive(Args)]
pub struct SignTxArgs {
    #[command(flatten)]
    conn: Conn,
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

pub fn encode_call(sig: &str, args: &[String]) -> Result<Bytes> {
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

pub fn run(a: AgentCmd) -> Result<i32> {
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
            let signed = sign_payload(&agent.conn, &agent.key, agent.session, SignPayload::TypedData(text))?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
        AgentCmd::SignMessage { agent, message, hex: hx, file } => {
            let bytes = match (message, hx, file) {
                (Some(m), None, None) => m.into_bytes(),
                (None, Some(h), None) => hex::decode(h.trim().trim_start_matches("0x")).context("--hex is not hex")?,
                (None, None, Some(f)) => std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?,
                _ => bail!("give one of --message, --hex or --file"),
            };
            let signed = sign_payload(&agent.conn, &agent.key, agent.session, SignPayload::Message(bytes.into()))?;
            println!("{}", serde_json::to_string_pretty(&signed)?);
        }
        AgentCmd::SignUserop { agent, op } => {
            let text = read_input(&op)?;
            let op: bridle_common::userop::UserOperationRequest =
                serde_json::from_str(&text).context("not a user operation (UserOperationRequest JSON)")?;
            let signed = sign_payload(&agent.conn, &agent.key, agent.session, SignPayload::UserOperation(op))?;
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

/// Stamp a payload for the trusted enclave with the digest it will compute, send it, and
/// check the reply: our own digest, a signature of the session over what the key signs for
/// this payload, and for a transaction the raw transaction decoded and compared field by
/// field with the request.
fn sign_payload(conn: &Conn, key: &std::path::Path, session: Address, payload: SignPayload) -> Result<Signed> {
    let key = keys::load(key)?;
    let e = conn.connect(Some(session))?;
    check_agent(&e, &key, session)?;
    sign_with(&e, &key, session, payload)
}

/// The session, as the enclave's signed status names it, belongs to this agent key.
pub fn check_agent(e: &Enclave, key: &keys::LoadedKey, session: Address) -> Result<()> {
    if let Some(ss) = &e.status.session {
        if ss.agent != key.address {
            bail!("session {session} belongs to agent {}, not to your key ({})", ss.agent, key.address);
        }
    }
    Ok(())
}

/// [`sign_payload`] on an enclave already connected (its identity checked).
pub fn sign_with(e: &Enclave, key: &keys::LoadedKey, session: Address, payload: SignPayload) -> Result<Signed> {
    // A payload that does not decode is sent anyway: the enclave refuses it with its code.
    let digest = bridle_common::payload::stamp_digest(&payload).unwrap_or(B256::ZERO);
    let sk = StampKey::derive(&key.secret, &e.trusted.verifying_key()?, session, key.address);
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let stamp = sk.stamp(session, payload.kind(), &digest, nonce, now());
    let signed: Signed = e.host.post("/v1/sign", &SignRequest { session, payload: payload.clone(), stamp })?;
    checks::signed(&payload, &signed, session)
        .context("the host's reply is not this request signed by the session: nothing printed")?;
    Ok(signed)
}

fn sign_tx(s: SignTxArgs) -> Result<i32> {
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
    let signed = sign_payload(&s.conn, &s.key, s.session, SignPayload::Transaction(tx))?;
    if s.raw {
        println!("{}", signed.raw_transaction.map(|r| r.to_string()).unwrap_or_default());
    } else {
        println!("{}", serde_json::to_string_pretty(&signed)?);
    }
    Ok(0)
}
