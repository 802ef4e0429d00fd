//! `bridle owner allow-image`: a cluster upgrade, by the owner (ATTESTATION.md, "Upgrades").
//!
//! In an enclave cluster, a session's key is held only by nodes of the image it was created
//! on. Before the nodes move to a new image, the owner lets nodes of that image hold the
//! keys: one signed message names the image (keccak256 of its PCR0 ‖ PCR1 ‖ PCR2) and one
//! session, or every session the owner holds (`--all`, one signature for all of them). The
//! enclave's signed receipt lists the sessions it applied to; nothing else is printed as
//! done.

use crate::checks;
use crate::keys;
use crate::owner::{action_for, owner_auth, Conn};
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::owner::action;
use bridle_common::protocol::{image_digest, AllowImage, ImageAllowed};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct AllowImageArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Owner key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The new image's measurements (`pcrs.json` of its release: PCR0, PCR1, PCR2).
    #[arg(long, conflicts_with = "image")]
    pub pcrs: Option<PathBuf>,
    /// The new image's digest (keccak256 of PCR0 ‖ PCR1 ‖ PCR2), hex.
    #[arg(long)]
    pub image: Option<B256>,
    /// One session.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub session: Option<Address>,
    /// Every session you hold in this cluster (one signature for all).
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub nonce: Option<u64>,
}

fn image_of(a: &AllowImageArgs) -> Result<B256> {
    match (&a.pcrs, a.image) {
        (Some(p), None) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let pcrs = bridle_attestation::parse_pcrs_json(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            let get = |i: u16| pcrs.get(&i).ok_or_else(|| anyhow!("{} has no PCR{i}", p.display()));
            Ok(image_digest(get(0)?, get(1)?, get(2)?))
        }
        (None, Some(d)) => Ok(d),
        _ => bail!("give the new image as --pcrs FILE or --image DIGEST"),
    }
}

pub fn run(a: AllowImageArgs) -> Result<i32> {
    let image = image_of(&a)?;
    let key = keys::load(&a.key)?;
    let session = a.session.unwrap_or(Address::ZERO);
    let e = a.conn.connect(a.session)?;
    let agent = match (&e.status.session, a.session) {
        (Some(ss), Some(_)) => {
            if ss.owner != key.address {
                bail!("session {session} is owned by {}, not by {}", ss.owner, key.address);
            }
            ss.agent
        }
        (None, Some(_)) => bail!("the enclave's signed status does not show session {session}"),
        _ => Address::ZERO,
    };
    let n = e.owner_nonce(a.nonce, 0);
    let msg = action_for(&e, action::ALLOW_IMAGE, session, agent, B256::ZERO, image, n);
    println!("image {image:#x}");
    println!(
        "  its nodes may hold the key of {}",
        if a.all { "every session you hold".to_string() } else { format!("session {session}") }
    );
    let r: ImageAllowed = e.host.post(
        &format!("/v1/owners/{}/allow-image", key.address),
        &AllowImage { auth: owner_auth(&key, &msg)?, session, image },
    )?;
    let rc = checks::receipt(&r, e.trusted.address, checks::owner_nonce(key.address, n), "the allow-image reply")
        .context(
            "the enclave did not confirm it: it may have been applied (the new image's nodes may hold the keys); \
             ask again with a fresh nonce (allowing an image twice changes nothing) for the enclave's receipt, \
             or look for `image_allowed` in the enclave's signed audit log (`bridle audit export`)",
        )?;
    if r.image != image {
        bail!("the enclave's signed reply names image {:#x}, not {image:#x}", r.image);
    }
    if let Some(s) = a.session {
        if r.sessions != vec![s] {
            bail!("the enclave's signed reply lists {:?}, not session {s}", r.sessions);
        }
    }
    println!("allowed for {} session(s)", r.sessions.len());
    println!("  signed by the enclave {} at {}", rc.enclave, bridle_common::period::format_time(rc.time));
    for s in r.sessions {
        println!("  {s}");
    }
    Ok(0)
}
