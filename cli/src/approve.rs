//! `bridle owner approve` / `bridle owner deny`: decide a request held for the owner
//! (escalation, R-POL-10).
//!
//! The owner signs a digest; before that, the CLI shows what the digest is. The request comes
//! from the enclave's pending record in a status it signed for a fresh nonce, the digest is
//! recomputed from it (so the record cannot describe one request while the digest signs
//! another), and the request is printed decoded. After the approval, the returned signature
//! must recover to the session over what the key signs for that request; after a denial,
//! the reply must carry the enclave's receipt for the owner's nonce naming that digest.

use crate::checks;
use crate::decode;
use crate::keys;
use crate::owner::{action_for, current_policy, owned_session, owner_auth, Conn};
use crate::trust::Enclave;
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::action;
use bridle_common::payload::stamp_digest;
use bridle_common::period::format_time;
use bridle_common::protocol::{ApprovePending, DenyPending, PendingDenied, SessionStatus, SignPayload, Signed};
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
    /// Only show the request; decide nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the reply (the signature, or the signed denial) as JSON on stdout (the request
    /// is shown on stderr).
    #[arg(long)]
    pub json: bool,
}

/// The held request, as the enclave's signed status records it, checked and shown.
struct Held {
    e: Enclave,
    ss: SessionStatus,
    payload: SignPayload,
    /// When it was held (the enclave's signed word), in Unix seconds.
    held_at: u64,
}

fn show_held(a: &ApproveArgs, key_address: Address, verb: &str) -> Result<Held> {
    let (mut e, mut ss) = owned_session(&a.conn, a.session, key_address)?;
    // A status shows the held requests' payloads only while they fit together: ask for
    // this one's (a status signed for another fresh nonce).
    if ss.pending.iter().any(|p| p.digest == a.digest && p.payload.is_none() && p.payload_omitted) {
        let st = e.refresh_showing(Some(a.session), Some(a.digest))?;
        let Some(fresh) = st.session.clone() else {
            bail!("the enclave's signed status no longer holds session {}", a.session);
        };
        if fresh.owner != key_address {
            bail!("session {} belongs to owner {}, not to your key ({key_address})", a.session, fresh.owner);
        }
        ss = *fresh;
        e.status = st;
    }
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
        anyhow!("the enclave's pending record carries no request to show: refusing to {verb} a bare digest")
    })?;
    let recomputed = stamp_digest(&payload).map_err(|d| anyhow!("the pending request does not decode here: {d}"))?;
    if recomputed != a.digest {
        bail!("the pending record's request hashes to {recomputed}, not {}: refusing to {verb}", a.digest);
    }
    let tokens = decode::Tokens::of(current_policy(&e, a.session, ss.policy_hash).as_ref());
    let mut shown = vec![
        format!("held request {} in session {} — the enclave's record, {}:", a.digest, a.session, e.signed_line()),
        format!(
            "  {} {}, held since {}, {} until {}; crossed {}: {}",
            p.kind,
            p.state,
            format_time(p.created_at),
            match p.state.as_str() {
                "signed" => "collectable",
                "denied" => "refused",
                _ => "approvable",
            },
            format_time(p.expires_at),
            if p.rule.is_empty() { "the escalation threshold" } else { &p.rule },
            p.reason
        ),
    ];
    shown.extend(decode::describe(&payload, &tokens).into_iter().map(|l| format!("  {l}")));
    for l in &shown {
        // The reason and kind can carry an agent's text: nothing a terminal obeys.
        let l = crate::client::printable(l);
        if a.json {
            eprintln!("{l}");
        } else {
            println!("{l}");
        }
    }
    let held_at = p.created_at;
    Ok(Held { e, ss, payload, held_at })
}

pub fn run(a: ApproveArgs) -> Result<i32> {
    let key = keys::load(&a.key)?;
    let Held { e, ss, payload, held_at } = show_held(&a, key.address, "approve")?;
    if a.dry_run {
        eprintln!("dry run: nothing approved");
        return Ok(0);
    }
    // Not below the hold's second: a word signed before the hold is not for it.
    let n = e.owner_nonce(a.nonce, held_at.saturating_mul(1000));
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

/// `bridle owner deny`: refuse a held request. The enclave never signs it; until its
/// time-to-live the agent asking again is refused `denied_by_owner`.
pub fn deny(a: ApproveArgs) -> Result<i32> {
    let key = keys::load(&a.key)?;
    let Held { e, ss, held_at, .. } = show_held(&a, key.address, "deny")?;
    if a.dry_run {
        eprintln!("dry run: nothing denied");
        return Ok(0);
    }
    let n = e.owner_nonce(a.nonce, held_at.saturating_mul(1000));
    let msg = action_for(&e, action::DENY_PENDING, a.session, ss.agent, B256::ZERO, a.digest, n);
    let body = DenyPending { auth: owner_auth(&key, &msg)?, session: a.session, digest: a.digest };
    let r: PendingDenied = e.host.post(&format!("/v1/sessions/{}/deny", a.session), &body)?;
    let rc = checks::receipt(&r, e.trusted.address, checks::owner_nonce(key.address, n), "the denial reply")
        .context("the denial is not confirmed by the enclave: treat the request as still approvable")?;
    if r.session != a.session || r.digest != a.digest {
        bail!(
            "the enclave's signed reply denies request {} of session {}, not {} of {}: treat the request as still approvable",
            r.digest,
            r.session,
            a.digest,
            a.session
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("denied: request {} of session {} will not be signed", a.digest, a.session);
        println!("  the agent asking again is refused denied_by_owner until {}", format_time(r.until));
        println!("  signed by the enclave {} at {} (receipt for owner nonce {n})", rc.enclave, format_time(rc.time));
    }
    Ok(0)
}
