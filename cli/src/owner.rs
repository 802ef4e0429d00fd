//! `bridle owner`: keys, grant, update, revoke, revoke-all, status, allowances, sweep, approve.
//!
//! Every command that talks to the host first resolves the enclave identity trusted for it
//! (see [`crate::trust`]) and checks a status that identity signed for a fresh nonce; owner
//! messages name that identity, and nothing the host returns is printed as the enclave's act
//! unless the enclave signed it: a binding for grants and updates, a receipt for this owner
//! nonce for updates, revocations and sweeps, a signed status for what a session is.

use crate::checks::{self, Expected};
use crate::keys;
use crate::policy_cmd::compile;
use crate::trust::{self, Enclave, TrustOpts};
use crate::trust_cmd::Expectation;
use crate::util::{now, HostArg};
use alloy_primitives::{Address, Bytes, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::Policy;
use bridle_common::protocol::*;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// The host, and which enclave identity to believe behind it.
#[derive(Args, Clone)]
pub struct Conn {
    #[command(flatten)]
    pub host: HostArg,
    #[command(flatten)]
    pub trust: TrustOpts,
}

impl Conn {
    pub fn connect(&self, session: Option<Address>) -> Result<Enclave> {
        trust::connect(&self.host.host, &self.trust, session)
    }
}

#[derive(Subcommand)]
pub enum OwnerCmd {
    /// Generate an owner key file (0600). Any Ethereum key works as an owner key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Grant a session to an agent under a policy; the session is printed only once the
    /// enclave's signed binding names the trusted enclave, you, this agent and this policy.
    Grant {
        #[command(flatten)]
        conn: Conn,
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
        /// Print the full JSON reply (after the checks).
        #[arg(long)]
        json: bool,
    },
    /// Replace a session's policy. First shows what the session already spent that the new
    /// rules start from (the ledger belongs to the session).
    Update {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        session: Address,
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        nonce: Option<u64>,
        /// Only show what carries over; sign nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revoke one session.
    Revoke {
        #[command(flatten)]
        conn: Conn,
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
        conn: Conn,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Show a session: state, spend against each cap, uses left, expiry — as the enclave
    /// signed it for a fresh nonce.
    Status(crate::owner_view::ViewArgs),
    /// Show a session's allowance registry: every approval and permit it signed, its state,
    /// and the outstanding exposure against the ceiling — as the enclave signed it.
    Allowances(crate::owner_view::ViewArgs),
    /// Show the exposure across sessions: what every session of this session's owner, and
    /// every session of its agent key, may have outstanding at worst, against each
    /// owner- or agent-wide ceiling binding it — as the enclave signed it.
    Exposure(crate::owner_view::ViewArgs),
    /// Revocation sweep: the enclave signs approve(spender, 0) for expired approvals (and for
    /// every outstanding one of a revoked, suspended or ended session). With --key the owner
    /// signs the sweep: every outstanding (or already swept) approval, at these fees; a
    /// revoked session's key is kept, able to sign only revocations, while an approval may
    /// be outstanding. Every transaction is decoded and checked before it is printed or
    /// broadcast.
    Sweep(Box<crate::sweep::SweepArgs>),
    /// Approve a request held for your approval (escalation): shows the request decoded
    /// from the enclave's signed record, then the enclave signs it.
    Approve(crate::approve::ApproveArgs),
    /// Deny a request held for your approval: shows it as for approve; the enclave then
    /// never signs it, and the agent asking again is refused (denied_by_owner) until its
    /// time-to-live passes. The enclave's receipt is checked.
    Deny(crate::approve::ApproveArgs),
    /// Enclave cluster upgrade: let nodes of a new image hold the key of a session (or of
    /// all your sessions, with one signature). Without it a session's key stays on nodes
    /// of the image it was created on.
    AllowImage(Box<crate::upgrade::AllowImageArgs>),
}

pub fn owner_auth(key: &keys::LoadedKey, msg: &OwnerAction) -> Result<OwnerAuth> {
    let sig = key.sign_digest(&msg.digest())?;
    Ok(OwnerAuth { owner: key.address, nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) })
}

/// The enclave, with `session`'s facts as it signed them; the session must be `owner`'s.
pub fn owned_session(conn: &Conn, session: Address, owner: Address) -> Result<(Enclave, SessionStatus)> {
    let e = conn.connect(Some(session))?;
    let Some(ss) = e.status.session.clone() else {
        bail!(
            "the enclave {} holds no session {session} (its signed status says so): unknown to it, lost in an \
             enclave restart, or dropped after it ended",
            e.trusted.address
        );
    };
    if ss.owner != owner {
        bail!("session {session} belongs to owner {}, not to your key ({owner})", ss.owner);
    }
    Ok((e, *ss))
}

/// An owner action on `session`, for the trusted enclave.
pub fn action_for(
    e: &Enclave,
    act: &str,
    session: Address,
    agent: Address,
    policy_hash: B256,
    subject: B256,
    nonce: u64,
) -> OwnerAction {
    OwnerAction {
        action: act.into(),
        enclave: e.trusted.address,
        session,
        agent,
        policyHash: policy_hash,
        subject,
        nonce,
    }
}

/// The session's current policy document, from the host's records, if its hash is the one
/// the enclave signed (so the host's copy can be believed).
pub fn current_policy(e: &Enclave, session: Address, hash: B256) -> Option<Policy> {
    let list: Vec<serde_json::Value> = e.host.get(&format!("/v1/sessions/{session}/policies?hash={hash}")).ok()?;
    list.iter().rev().find_map(|r| {
        let p: Policy = serde_json::from_value(r["policy"].clone()).ok()?;
        (p.hash() == hash).then_some(p)
    })
}

pub fn run(o: OwnerCmd) -> Result<i32> {
    match o {
        OwnerCmd::Keygen { out, force } => {
            let k = keys::generate(&out, "owner", force)?;
            println!("owner address: {}", k.address);
            println!("key file:      {} (mode 0600)", out.display());
        }
        OwnerCmd::Grant { conn, key, agent, policy, nonce, json } => grant(&conn, &key, &agent, &policy, nonce, json)?,
        OwnerCmd::Update { conn, key, session, policy, nonce, dry_run } => {
            update(&conn, &key, session, &policy, nonce, dry_run)?
        }
        OwnerCmd::Revoke { conn, key, session, nonce } => {
            let key = keys::load(&key)?;
            let (e, ss) = owned_session(&conn, session, key.address)?;
            let n = e.owner_nonce(nonce, 0);
            let msg = action_for(&e, action::REVOKE, session, ss.agent, B256::ZERO, B256::ZERO, n);
            let r: Revoked = e
                .host
                .post(&format!("/v1/sessions/{session}/revoke"), &Revoke { auth: owner_auth(&key, &msg)?, session })?;
            let rc =
                checks::receipt(&r, e.trusted.address, checks::owner_nonce(key.address, n), "the revocation reply")
                    .context("the revocation is not confirmed by the enclave: treat the session as live")?;
            if !r.sessions.contains(&session) {
                bail!(
                    "the enclave's signed reply does not list session {session} as revoked (it lists {:?}): treat \
                     the session as live",
                    r.sessions
                );
            }
            println!("revoked: {session}");
            println!("  signed by the enclave {} at {}", rc.enclave, bridle_common::period::format_time(rc.time));
            sweep_hint(&e, session);
        }
        OwnerCmd::RevokeAll { conn, key, nonce } => {
            let key = keys::load(&key)?;
            let e = conn.connect(None)?;
            let n = e.owner_nonce(nonce, 0);
            let msg = action_for(&e, action::REVOKE_ALL, Address::ZERO, Address::ZERO, B256::ZERO, B256::ZERO, n);
            let r: Revoked = e.host.post(
                &format!("/v1/owners/{}/revoke-all", key.address),
                &RevokeAll { auth: owner_auth(&key, &msg)? },
            )?;
            let rc =
                checks::receipt(&r, e.trusted.address, checks::owner_nonce(key.address, n), "the revoke-all reply")
                    .context("the revocations are not confirmed by the enclave: treat your sessions as live")?;
            println!("revoked {} session(s)", r.sessions.len());
            println!("  signed by the enclave {} at {}", rc.enclave, bridle_common::period::format_time(rc.time));
            for s in r.sessions {
                println!("  {s}");
                sweep_hint(&e, s);
            }
        }
        OwnerCmd::Status(v) => return crate::owner_view::run(&v, crate::owner_view::View::Status),
        OwnerCmd::Allowances(v) => return crate::owner_view::run(&v, crate::owner_view::View::Allowances),
        OwnerCmd::Exposure(v) => return crate::owner_view::run(&v, crate::owner_view::View::Exposure),
        OwnerCmd::Sweep(s) => return crate::sweep::run(*s),
        OwnerCmd::Approve(a) => return crate::approve::run(a),
        OwnerCmd::Deny(a) => return crate::approve::deny(a),
        OwnerCmd::AllowImage(a) => return crate::upgrade::run(*a),
    }
    Ok(0)
}

/// The owner nonce of a grant sent to the host whose session is not known to exist: a
/// failure then leaves unknown whether the enclave created it (`main` then says so).
static GRANT_SENT: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);

/// The nonce of a grant this run sent whose outcome is unknown.
pub fn grant_sent() -> Option<u64> {
    *GRANT_SENT.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_grant_sent(nonce: Option<u64>) {
    *GRANT_SENT.lock().unwrap_or_else(|e| e.into_inner()) = nonce;
}

fn grant(conn: &Conn, key: &Path, agent: &str, policy: &PathBuf, nonce: Option<u64>, json: bool) -> Result<()> {
    let key = keys::load(key)?;
    let agent_pk = keys::agent_public_key(agent)?;
    let agent_addr =
        Address::from_public_key(&k256::ecdsa::VerifyingKey::from_sec1_bytes(&agent_pk).context("agent public key")?);
    let p = compile(policy)?;
    p.check_lifetime(now()).map_err(|d| anyhow!("{d}"))?;
    if let Some(w) = bridle_common::policy::explain::unbounded_native_value(&p) {
        eprintln!("warning: {w} (bridle policy explain shows the whole policy)");
    }
    let e = conn.connect(None)?;
    let msg = OwnerAction {
        action: action::CREATE_SESSION.into(),
        enclave: e.trusted.address,
        session: Address::ZERO,
        agent: agent_addr,
        policyHash: p.hash,
        subject: B256::ZERO,
        nonce: e.owner_nonce(nonce, 0),
    };
    let n = msg.nonce;
    let body =
        CreateSession { auth: owner_auth(&key, &msg)?, agent_public_key: Bytes::from(agent_pk), policy: p.doc.clone() };
    set_grant_sent(Some(n));
    let created: SessionCreated = e.host.post("/v1/sessions", &body).inspect_err(|err| {
        if err.downcast_ref::<crate::client::NotSent>().is_some() {
            set_grant_sent(None);
        }
    })?;
    let want = Expected {
        enclave: e.trusted.address,
        session: None,
        owner: key.address,
        agent: agent_addr,
        policy_hash: p.hash,
        valid_until: p.doc.valid_until,
    };
    const NOT_THIS_GRANT: &str =
        "the host's reply is not a session the trusted enclave created for this grant: do not use or fund it";
    checks::binding(&created.binding, &created.binding_signature, &want).context(NOT_THIS_GRANT)?;
    // And the receipt for this grant's nonce: the binding does not name the nonce, so a host
    // could answer with an earlier binding of the same owner, agent and policy.
    checks::receipt(&created, e.trusted.address, checks::owner_nonce(key.address, n), "the grant reply").with_context(
        || {
            let s = created.binding.session;
            format!(
                "{NOT_THIS_GRANT}. Its binding, signed by the enclave at {}, names session {s}: an earlier grant's, \
             replayed — or, when the enclave predates receipts on creations (2026-12-03), this grant's, which then \
             exists (`bridle owner status --session {s}` shows it; revoke it if it is not one you use)",
                bridle_common::period::format_time(created.binding.created_at)
            )
        },
    )?;
    // The binding and the receipt for this grant's nonce are the enclave's: the session
    // exists, and what fails from here says so itself.
    set_grant_sent(None);
    let attested = attestation_note(&e, &created)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&created)?);
        return Ok(());
    }
    let b = &created.binding;
    println!("session:     {}", b.session);
    println!("owner:       {}", b.owner);
    println!("agent:       {}", b.agent);
    println!("policy hash: {}", b.policy_hash);
    println!("valid until: {}", bridle_common::period::format_time(b.valid_until));
    println!("enclave:     {} ({})", b.enclave, e.trusted.label());
    println!(
        "verified:    the binding is signed by the trusted enclave identity and names you, this agent and the policy \
         you signed{attested}"
    );
    Ok(())
}

/// What the attestation document that comes with a binding proves, checked when the
/// identity was attested.
fn attestation_note(e: &Enclave, created: &SessionCreated) -> Result<String> {
    let digest = created.binding.digest();
    let record = e.trusted.entry().and_then(|x| x.attestation.as_ref());
    Ok(match (&created.attestation, record) {
        (Some(doc), Some(a)) => {
            let v = Expectation::of(a)?
                .verify(doc, 600, None, Some(digest.as_slice()))
                .context("the attestation document that came with the binding is invalid")?;
            let pk = v.public_key.as_deref().ok_or_else(|| anyhow!("the binding's attestation has no public_key"))?;
            let (_, who) = trust::identity_from_sec1(pk)?;
            if who != e.trusted.address {
                bail!("the binding's attestation is for identity {who}, not the trusted {}", e.trusted.address);
            }
            "; its attestation document verifies against the trusted root and PCRs with user_data = the binding \
             digest"
                .to_string()
        }
        (Some(_), None) => "; an attestation document came with it (`bridle verify session` checks it)".to_string(),
        (None, Some(_)) => "; no attestation document came with it (the identity's signature stands)".to_string(),
        (None, None) => String::new(),
    })
}

/// The floor of an update's owner nonce: when the enclave's signed status says the session
/// is suspended, past the second of that status's session time (the suspension's is no
/// later) — the enclave lifts a suspension only by an update signed after it
/// ([`Enclave::owner_nonce`]).
fn update_floor(ss: &SessionStatus) -> u64 {
    if ss.state == SessionState::Suspended {
        ss.time.saturating_add(1).saturating_mul(1000)
    } else {
        0
    }
}

fn update(conn: &Conn, key: &Path, session: Address, policy: &PathBuf, nonce: Option<u64>, dry: bool) -> Result<()> {
    let key = keys::load(key)?;
    let p = compile(policy)?;
    if let Some(w) = bridle_common::policy::explain::unbounded_native_value(&p) {
        eprintln!("warning: {w} (bridle policy explain shows the whole policy)");
    }
    let (e, ss) = owned_session(conn, session, key.address)?;
    let old = current_policy(&e, session, ss.policy_hash);
    println!("session {session} enforces policy {} now; {}", ss.policy_hash, e.signed_line());
    println!(
        "what the new rules start from (the ledger belongs to the session, RULES.md §7; the enclave's signed figures):"
    );
    for l in crate::carry::report(&ss, old.as_ref(), &p) {
        println!("  {}", crate::client::printable(&l));
    }
    if old.is_none() {
        println!("  (the host holds no copy of the current policy with the signed hash: tokens matched by symbol)");
    }
    if dry {
        println!("dry run: nothing signed");
        return Ok(());
    }
    let n = e.owner_nonce(nonce, update_floor(&ss));
    let msg = action_for(&e, action::UPDATE_POLICY, session, ss.agent, p.hash, B256::ZERO, n);
    let body = UpdatePolicy { auth: owner_auth(&key, &msg)?, session, policy: p.doc.clone() };
    let r: PolicyUpdated = e.host.post(&format!("/v1/sessions/{session}/policy"), &body)?;
    let rc = checks::receipt(&r, e.trusted.address, checks::owner_nonce(key.address, n), "the update reply")
        .context("the update is not confirmed by the enclave: the old policy may still be in force")?;
    if r.session != session || r.policy_hash != p.hash {
        bail!("the enclave's signed reply is for session {} and policy {}, not this update", r.session, r.policy_hash);
    }
    let (Some(b), Some(sig)) = (&r.binding, &r.binding_signature) else {
        bail!("the update reply carries no signed binding of the new policy");
    };
    let want = Expected {
        enclave: e.trusted.address,
        session: Some(session),
        owner: key.address,
        agent: ss.agent,
        policy_hash: p.hash,
        valid_until: p.doc.valid_until,
    };
    checks::binding(b, sig, &want).context("the new binding")?;
    println!("session {session} now enforces policy {}", r.policy_hash);
    println!(
        "  signed by the enclave {} at {} (receipt for owner nonce {n}; new binding in force since {})",
        rc.enclave,
        bridle_common::period::format_time(rc.time),
        bridle_common::period::format_time(b.created_at)
    );
    Ok(())
}

/// After a revocation: approvals that may still be outstanding in some history keep the
/// session key alive, able to sign only revocations (read from a freshly signed status).
/// A key shown revoked by a revocation nobody has seen mined counts too: whoever holds that
/// revocation may keep it to itself.
fn sweep_hint(e: &Enclave, session: Address) {
    let Ok(st) = e.refresh(Some(session)) else { return };
    let Some(ss) = st.session else { return };
    let n = ss.allowances.iter().filter(|a| !a.amount.is_zero() && a.kind.sweepable() && a.holder == session).count();
    if n > 0 {
        println!(
            "  {n} approval(s) may still be outstanding (the enclave cannot see the chain): the key is kept, \
             able to sign only revocations; run `bridle owner sweep --session {session} --key <owner key> --rpc <url> --send`"
        );
    }
    let held =
        ss.allowances.iter().filter(|a| !a.amount.is_zero() && a.kind.sweepable() && a.holder != session).count();
    if held > 0 {
        println!(
            "  {held} approval(s) held by smart accounts may still be outstanding: the key is kept for them too; \
             revoke them with a user operation from the account (the owner's signed sweep with account terms, \
             POST /v1/sessions/{session}/sweep)"
        );
    }
}
