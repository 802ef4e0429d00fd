//! Where the audit pull reads a batch: of this host's own enclave first — in a cluster every
//! node that has joined holds the same chain and serves it, so no other host is in the way —
//! and of the other members' nodes (through their hosts, untrusted) only while its own node
//! does not serve the entries: it is down or not joined, of an image that serves the leader
//! only, behind the stored copy, or no longer holding them (a node restored from a snapshot
//! holds fewer entries than the others, and the leader's host can force such a restore by
//! withholding Raft traffic).
//!
//! A member's batch is taken only when it continues this copy: it holds the entry asked for
//! and, from there, links to the stored tip under a head the enclave signed; where it
//! reaches the own node's first entry it must link to it too (a review of 2026-12-06: the
//! first member's answer was taken as it came, so one host answering junk, or an old genuine
//! batch, stopped the copy for good, and one of another image mixed two chains into it).
//! Its `more` is read from the signed head, not from the host that relays it.

use crate::audit_store::{decode, BatchSource, PullError};
use crate::enclave_client::{ClientError, EnclaveClient};
use alloy_primitives::{Address, B256};
use bridle_common::audit::{verify_chain_hashes, AuditReply};
use bridle_common::error::ErrorCode;
use bridle_common::protocol::{AuditQuery, Call, Reply};

/// What [`ask`] got.
pub(crate) enum Asked {
    Batch(AuditReply, BatchSource),
    /// Nothing holds an entry from `since` yet: the stored copy is ahead of this host's own
    /// node (another host stored it in a shared database), and no member serves more.
    Ahead,
}

/// The text of the enclave's refusal of `since` past its log's end (`AuditLog::entries`).
const PAST_THE_END: &str = "past the end of the log";

/// Ask for `enclave`'s entries from `since`; `tip` is the stored link before it (none when
/// nothing is stored: `since` is 0).
pub(crate) async fn ask(
    client: &EnclaveClient,
    enclave: Address,
    since: u64,
    tip: Option<B256>,
) -> Result<Asked, PullError> {
    let call = Call::Audit(AuditQuery { since, nonce: None });
    let unsupported = |e: ClientError| match e {
        ClientError::Denied(d) if d.code == ErrorCode::Unsupported => PullError::Unsupported(d.reason),
        e => e.into(),
    };
    let Some(link) = client.cluster() else {
        let reply = client.call(call).await.map_err(unsupported)?;
        return Ok(Asked::Batch(decode(reply)?, BatchSource::OwnNode));
    };
    let within = client.config().call_timeout;
    let from = tip.map(|h| (since, h));
    let members = |own_first: Option<(u64, B256)>| {
        let call = call.clone();
        async move {
            // Only a batch `continues` took comes back (checked once).
            match link.ask_members(&call, within, |r| continues(r, enclave, since, from, own_first)).await {
                Ok(Reply::Audit(mut a)) => {
                    a.more = a.head.end > a.head.seq.saturating_add(1);
                    Some(a)
                }
                _ => None,
            }
        }
    };
    match client.call_direct(call.clone()).await {
        Ok(Reply::Audit(own)) => {
            let gap_at = own.entries.first().filter(|e| e.seq > since).map(|e| (e.seq, e.prev));
            if gap_at.is_some() {
                if let Some(theirs) = members(gap_at).await {
                    return Ok(Asked::Batch(theirs, BatchSource::Relayed));
                }
            }
            Ok(Asked::Batch(own, BatchSource::OwnNode))
        }
        Err(ClientError::Denied(d)) if d.code == ErrorCode::Unsupported => Err(PullError::Unsupported(d.reason)),
        Err(ClientError::Denied(d)) if d.code == ErrorCode::Malformed && d.reason.contains(PAST_THE_END) => {
            Ok(members(None).await.map_or(Asked::Ahead, |a| Asked::Batch(a, BatchSource::Relayed)))
        }
        // Its own node's refusal other than "not now": as it is.
        Err(ClientError::Denied(d)) if d.code != ErrorCode::Unavailable => Err(ClientError::Denied(d).into()),
        Err(e @ ClientError::Protocol(_)) => Err(e.into()),
        _ => match members(None).await {
            Some(a) => Ok(Asked::Batch(a, BatchSource::Relayed)),
            None => Err(PullError::Retry(
                "this host's own node does not serve the audit log now, and no other member served a batch that \
                 continues this copy"
                    .into(),
            )),
        },
    }
}

/// Whether `r` is a batch of `enclave`'s chain that continues the copy at `since` (from the
/// stored link `from`): it holds entry `since` — or, with nothing new, its head is the stored
/// tip — and verifies from there; and where it holds the entry before `own_first` (the own
/// node's first entry and its `prev`), that entry is the one the own node's links to.
fn continues(
    r: &Reply,
    enclave: Address,
    since: u64,
    from: Option<(u64, B256)>,
    own_first: Option<(u64, B256)>,
) -> bool {
    let Reply::Audit(a) = r else { return false };
    let Some(first) = a.entries.first().map(|e| e.seq) else {
        // Nothing new: only a head at the stored tip.
        return own_first.is_none()
            && since.checked_sub(1) == Some(a.head.seq)
            && verify_chain_hashes(&[], &a.head, enclave, from).is_ok();
    };
    let Some(skip) = since.checked_sub(first).and_then(|k| usize::try_from(k).ok()).filter(|k| *k < a.entries.len())
    else {
        return false;
    };
    let Ok(v) = verify_chain_hashes(&a.entries[skip..], &a.head, enclave, from) else { return false };
    match own_first {
        Some((seq, prev)) => match seq.checked_sub(1).and_then(|s| s.checked_sub(since)) {
            Some(k) => usize::try_from(k).ok().and_then(|k| v.hashed().nth(k)).is_none_or(|(_, h)| *h == prev),
            None => false,
        },
        None => true,
    }
}
