//! What a sweep's reply must be before this host stores, broadcasts or books any of it.
//!
//! In a cluster a sweep call may travel through other hosts (a follower's pointer to its
//! leader, a member's host when this one's node cannot serve), and any of them could answer
//! with something the enclave never said: bytes that are no transaction, a revocation at a
//! nonce far ahead (the lane then waited behind a gap until a restart), fees above the
//! terms (stored, they were later taken as the highest-priced sweep at that nonce), or an
//! empty reply (the lane left to the owner). A review of 2026-12-06 found the sweeper took
//! every reply as it came. Now every reply must carry the receipt of the enclave this host
//! fronts, over exactly that reply, and each transaction must be the revocation (or Permit2
//! cancellation) it is listed as: from the session, on the terms' chain, at a nonce the
//! terms allow ([`bridle_common::sweep_check`], the check the owner's CLI makes), at
//! exactly the terms' fees and gas, as the enclave signs them (so an earlier genuine reply
//! at lower fees, replayed, is not booked as a bump at the fees asked for). What remains: a
//! genuine reply of this enclave for the same session at the same terms, replayed (its
//! transactions are genuine revocations; an empty one leaves the lane alone until its next
//! check).

use crate::AppState;
use alloy_primitives::Address;
use anyhow::{anyhow, bail, Result};
use bridle_common::protocol::{OwnerAuth, SweepReply, SweepTerms};
use bridle_common::receipt;

/// Whether `reply` is this host's enclave's answer to a sweep of `session` at `terms`,
/// asked with `auth` (the owner's signature) or without.
pub async fn check(
    state: &AppState,
    session: Address,
    terms: &[SweepTerms],
    auth: Option<&OwnerAuth>,
    reply: &SweepReply,
) -> Result<()> {
    let word = auth.map_or_else(receipt::anonymous_nonce, |a| receipt::owner_nonce(a.owner, a.nonce));
    crate::owner_replies::enclaves_word(&state.client, reply, word).await.map_err(|e| anyhow!("its receipt: {e}"))?;
    if reply.session != session {
        bail!("it is about session {}, not {session}", reply.session);
    }
    bridle_common::sweep_check::sweep(&reply.transactions, terms, session, auth.is_some())?;
    bridle_common::sweep_check::exact_terms(&reply.transactions, terms)?;
    Ok(())
}
