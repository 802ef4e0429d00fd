//! `bridle`: the command line for owners, agents, policy authors and verifiers.

mod agent;
mod approve;
mod audit_export;
mod carry;
mod checks;
mod client;
mod decode;
mod dev;
mod dev_cluster;
mod keys;
mod mcp;
mod mcp_agent;
mod mcp_errors;
mod mcp_fees;
mod mcp_kept;
mod mcp_kept_file;
mod mcp_node;
mod owner;
mod owner_view;
mod policy_cmd;
mod sweep;
mod trust;
mod trust_cmd;
mod upgrade;
mod util;
mod verify_attestation;
mod verify_audit;
mod verify_session;

use anyhow::Result;
use clap::{Parser, Subcommand};
use client::Refused;

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
    Owner(owner::OwnerCmd),
    /// Agent actions: keys, signing.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Policy files: check, hash, explain, simulate.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCmd),
    /// The enclave identity trusted for each host: attest, pin, show, forget.
    #[command(subcommand)]
    Trust(trust_cmd::TrustCmd),
    /// Verify attestation documents.
    #[command(subcommand)]
    Verify(VerifyCmd),
    /// Serve the agent's session to an LLM over the Model Context Protocol (stdio): tools to
    /// send transactions and sign under the owner's policy; the key never reaches the model.
    Mcp(Box<mcp::McpArgs>),
    /// The enclave's signed audit log: export it from the host (then `bridle verify audit`).
    #[command(subcommand)]
    Audit(audit_export::AuditCmd),
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

fn main() {
    let cli = Cli::parse();
    // The owner commands that sign a message with an owner nonce.
    let owner_command = {
        use owner::OwnerCmd as O;
        matches!(
            cli.cmd,
            Cmd::Owner(
                O::Grant { .. }
                    | O::Update { .. }
                    | O::Revoke { .. }
                    | O::RevokeAll { .. }
                    | O::Approve(_)
                    | O::Deny(_)
                    | O::AllowImage(_)
            )
        ) || matches!(&cli.cmd, Cmd::Owner(O::Sweep(a)) if a.key.is_some())
    };
    let agent_command = matches!(cli.cmd, Cmd::Agent(_));
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(r) = e.downcast_ref::<Refused>() {
                eprintln!("{r}");
                // `unavailable` (a cluster's leader answering before its log applied the call)
                // is no refusal by the enclave: the message may not be spent, or still apply.
                if owner_command && r.message.contains("is ahead of the enclave's clock") {
                    eprintln!("{AHEAD_NOTE}");
                } else if owner_command && r.message.contains(" is stale: at least ") {
                    eprintln!("{STALE_NOTE}");
                } else if owner_command && r.code.as_deref() == Some("internal") {
                    eprintln!("{INTERNAL_NOTE}");
                } else if owner_command && r.code.as_deref() != Some("unavailable") {
                    eprintln!("{SPENT_NOTE}");
                } else if agent_command {
                    eprintln!("{AGENT_NOTE}");
                }
            } else {
                // An error may quote what the host sent (a serde error names the variant it
                // did not expect): printed without anything a terminal would obey.
                eprintln!("bridle: {}", client::printable(&format!("{e:#}")));
            }
            if let Some(nonce) = owner::grant_sent() {
                eprintln!("{}", grant_note(nonce));
            }
            1
        }
    };
    std::process::exit(code);
}

/// After a grant sent to the host failed: the session may exist all the same (a review of
/// 2026-12-06: a lost or withheld reply, then a second grant, left the agent two sessions).
/// Only what makes the grant stale for good is safe to rely on: not finding it proves
/// nothing while a host may still deliver it (a review of the first wording).
fn grant_note(nonce: u64) -> String {
    format!(
        "note: the grant (owner nonce {nonce}) was sent and no checked answer came back, so whether the enclave \
created the session is unknown: a lost reply, a host that withheld it or refused in the enclave's name, or a \
cluster that commits it later all leave it live under this policy, and the agent can find it in the public audit \
log. Granting again could make a second session with caps of its own. First make sure this grant can never take \
effect: `bridle owner revoke-all` with a nonce above {nonce} (the default, the time in milliseconds, is, unless \
you gave the grant a later one) ends every session of this owner key, this one if it exists, and the enclave's \
receipt is checked; or wait until the enclave's clock is 10 minutes past {nonce} (the grant is then stale for \
good) and look for this agent's session in the enclave's audit log."
    )
}

/// After a refused owner command: what a refusal proves, and how to make sure a message the
/// host may have kept can never take effect.
const SPENT_NOTE: &str = "note: a refusal is the host's word (the enclave signs no refusal). A message the enclave \
refused once your signature and nonce checked out is spent and can never take effect; if the host may have kept it \
unrelayed, any later message you sign with a higher nonce (the default nonce is the time in milliseconds) that \
the enclave accepts makes it stale: it accepts each owner's nonces only in increasing order.";

/// After an owner command refused for a nonce ahead of the enclave's clock: that refusal
/// spends nothing (a review of 2026-12-04: the spent note said the opposite).
const AHEAD_NOTE: &str = "note: this message was refused before it was spent: its nonce is ahead of the enclave's \
clock (more than 10 minutes), so a host that kept it can still deliver it once the enclave's clock reaches the nonce \
(milliseconds) less 10 minutes. A message signed now with a lower nonce does not make it stale; to make sure it never \
takes effect, sign another owner message with a higher nonce after that time.";

/// After an owner command refused as stale (its nonce more than ten minutes behind the
/// enclave's clock): nothing was spent, and the message can never take effect — unless the
/// refusal was the host's invention.
const STALE_NOTE: &str = "note: this message was refused as stale before it was spent: its nonce (the time in \
milliseconds it was signed at) is more than 10 minutes behind the enclave's clock, and the enclave never accepts it \
later. Is your clock behind the enclave's? Sign again with the time in milliseconds (or `--nonce`). A refusal is the \
host's word: to make sure a message the host may have kept never takes effect, sign another with a higher nonce.";

/// After an agent command was refused: whose word that is.
const AGENT_NOTE: &str = "note: a refusal is the host's word (the enclave signs no refusal): a host could answer so \
and keep a signature the enclave made; the session's signed status (`bridle owner status`) shows what was signed.";

/// After an owner command answered `internal`: the enclave's own failure, which may come
/// after the change took effect.
const INTERNAL_NOTE: &str = "note: `internal` is the enclave's own failure (or the host's word); the message may \
still have taken effect (a cluster's entry applied before its node failed): look for it in the audit log \
(`bridle audit export`) before signing it again.";

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Dev(a) => dev::run(a),
        Cmd::Verify(VerifyCmd::Attestation(a)) => Ok(verify_attestation::run(&a)),
        Cmd::Verify(VerifyCmd::Session(a)) => Ok(verify_session::run(&a)),
        Cmd::Verify(VerifyCmd::Audit(a)) => Ok(verify_audit::run(&a)),
        Cmd::Audit(a) => audit_export::audit_cmd(&a),
        Cmd::Policy(p) => policy_cmd::run(p),
        Cmd::Trust(t) => trust_cmd::run(t),
        Cmd::Owner(o) => owner::run(o),
        Cmd::Agent(a) => agent::run(a),
        Cmd::Mcp(a) => mcp::run(*a),
    }
}
