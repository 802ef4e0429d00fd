//! `bridle owner approve`: approve a request held for the owner (escalation, R-POL-10).
//!
//! The owner signs a digest; before that, the CLI shows what the digest is. The request comes
//! from the enclave's pending record in a status it signed for a fresh nonce, the digest is
//! recomputed from it (so the record cannot describe one request while the digest signs
//! another), and the request is printed decoded. After the approval, the returned signature
//! must recover to the session over what the key signs for that request.

use crate::checks;
use crate::decode;
use crate::keys;
use crate::owner::{action_for, current_policy, owned_session, owner_auth, Conn};
use crate::util::default_nonce;
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::action;
use bridle_common::payload::stamp_digest;
use bridle_common::period::format_time;
use bridle_common::protocol::{ApprovePending, Signed};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long)]
    pub session: Address,
    /// The pending request's digest (from `bridle owner status` or the agent's refusal).
    #[arg(long)]
    pub digest: B256,
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Only show the request; approve nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the signature as JSON on stdout (the request is shown on stderr).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: ApproveArgs) -> Result<i32> {
    let key = keys::load(&a.key)?;
    let (e, ss) = owned_session(&a.conn, a.session, key.address)?;
    let Some(p) = ss.pending.iter().find(|p| p.digest == a.digest) else {
        let listed: Vec<String> = ss.pending.iter().map(|p| format!("{} ({})", p.digest, p.state)).collect();
        bail!(
            "no request with digest {} is held in session {} (the enclave's signed status lists: {})",
            a.digest,
            a.session,
            if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
        );
    };
    let payload = p.payload.clone().ok_or_else(|| {
        anyhow!("the enclave's pending record carries no request to show: refusing to approve a bare digest")
    })?;
    let recomputed = stamp_digest(&payload).map_err(|d| anyhow!("the pending request does not decode here: {d}"))?;
    if recomputed != a.digest {
        bail!("the pending record's request hashes to {recomputed}, not {}: refusing to approve", a.digest);
    }
    let tokens = decode::Tokens::of(current_policy(&e, a.session, ss.policy_hash).as_ref());
    let mut shown = vec![
        format!("held request {} in session {} — the enclave's record, {}:", a.digest, a.session, e.signed_line()),
        format!(
            "  {} {}, held since {}, {} until {}; crossed {}: {}",
            p.kind,
            p.state,
            format_time(p.created_at),
            if p.state == "signed" { "collectable" } else { "approvable" },
            format_time(p.expires_at),
            if p.rule.is_empty() { "the escalation threshold" } else { &p.rule },
            p.reason
        ),
    ];
    shown.extend(decode::describe(&payload, &tokens).into_iter().map(|l| format!("  {l}")));
    for l in &shown {
        if a.json {
            eprintln!("{l}");
        } else {
            println!("{l}");
        }
    }
    if a.dry_run {
        eprintln!("dry run: nothing approved");
        return Ok(0);
    }
    let n = default_nonce(a.nonce);
    let msg = action_for(&e, action::APPROVE_PENDING, a.session, ss.agent, B256::ZERO, a.digest, n);
    let body = ApprovePending { auth: owner_auth(&key, &msg)?, session: a.session, digest: a.digest };
    let signed: Signed = e.host.post(&format!("/v1/sessions/{}/approve", a.session), &body)?;
    checks::signed(&payload, &signed, a.session)
        .context("the approval's reply is not this request signed by the session")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&signed)?);
    } else {
        println!("approved and signed: the signature recovers to the session over this request");
        println!("signature:   {}", signed.signature);
        if let Some(raw) = &signed.raw_transaction {
            println!("raw:         {raw}");
        }
    }
    Ok(0)
}
