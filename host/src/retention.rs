//! Session retention (`session_retention_days`: 30 by default, 0 keeps sessions for good).
//!
//! Creating a session is open to anyone with a key, and each creation stores its policy
//! twice (the session's row and its first policy record): kept for good, the database, the
//! in-memory index of sessions loaded at start and the sweeper's rounds over it grew
//! without bound (≈ 93 KB a creation of a 32 KiB policy; SECURITY.md).
//!
//! Every [`FORGET_EVERY`] (the first time one interval after the start) a task looks at
//! the sessions that ended more than the retention ago — revoked or lost then, or valid
//! until then —, a page of [`FORGET_BATCH`] at a time by when they ended (through an index:
//! [`crate::store::Store::ended_sessions`]), and forgets those the enclave no longer holds:
//!
//! * a `lost` session — marked so a full retention period ago — without asking, when its
//!   enclave is neither this host's nor fronted by any host of the database now: the mark
//!   is the host's own note, and can be wrong (a review of 2026-12-06); marked lost but of
//!   this host's enclave, it is asked about as any other;
//! * any other only once the enclave says, as its word, that it holds no such session
//!   ([`crate::owner_replies::session_status`], as the sweeper asks: in a cluster signed
//!   for a fresh nonce and checked against this host's enclave's identity; stand-alone, its
//!   own socket, unsigned). An enclave keeps a finished session until it needs the room
//!   (at its session limit or short of memory), and always while approvals of it may be
//!   outstanding — the sweeper still needs it —: such a session is kept, and asked about
//!   again after [`HELD_RECHECK`]. No answer, an error, or an answer that is not the
//!   enclave's word: kept, asked about again at the next pass (once the enclave or the
//!   cluster does not serve a status, no other is asked for during that pass). A session of
//!   another enclave (hosts sharing a PostgreSQL database) is left to the host in front of
//!   that enclave.
//!
//! Forgetting a session deletes its row, its policy records and its signed revocations (one
//! transaction per page) and drops it from the in-memory index. Events (their own
//! retention) and the enclave's audit log are not touched. Each pass that found ended
//! sessions is logged, with how many it forgot and kept; `bridle_sessions_forgotten_total`
//! counts them.

use crate::owner_replies::{session_status, StatusError};
use crate::store::{now_secs, EndedSession, StoredState};
use crate::AppState;
use alloy_primitives::Address;
use bridle_common::protocol::SessionState;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default days a session is kept after it ended.
pub const DEFAULT_SESSION_RETENTION_DAYS: u64 = 30;
/// [`DEFAULT_SESSION_RETENTION_DAYS`] as a duration.
pub const DEFAULT_SESSION_RETENTION: Duration = Duration::from_secs(DEFAULT_SESSION_RETENTION_DAYS * 86_400);
/// How often the task looks for sessions to forget.
pub const FORGET_EVERY: Duration = Duration::from_secs(300);
/// Ended sessions read (and forgotten, in one transaction) at a time.
pub const FORGET_BATCH: usize = 256;
/// The pause between two pages of a pass: owner actions and the event writer take the
/// database in between.
pub const FORGET_PAUSE: Duration = Duration::from_millis(20);
/// How long a session the enclave said it still holds is not asked about again: a finished
/// session the enclave keeps (approvals outstanding) would otherwise be asked about at
/// every pass — in a cluster each answer is a signature.
pub const HELD_RECHECK: Duration = Duration::from_secs(3600);
/// In a cluster, no new try of a status call starts after this (as the sweeper's).
const STATUS_LIMIT: Duration = crate::sweeper::SWEEP_CALL_LIMIT;

/// Sessions the enclave said it still holds, each with when to ask about it again.
pub type Held = HashMap<Address, Instant>;

/// What one pass did with the ended sessions it found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Forgotten.
    pub forgotten: u64,
    /// Kept: the enclave still holds them (said so now, or less than [`HELD_RECHECK`] ago).
    pub held: u64,
    /// Kept: no status taken as the enclave's word (no answer, an error, not its word, not
    /// asked this pass).
    pub unchecked: u64,
    /// Kept: another enclave's, left to its own host.
    pub others: u64,
}

impl Pass {
    /// Every ended session the pass found.
    pub fn found(&self) -> u64 {
        self.forgotten + self.held + self.unchecked + self.others
    }
}

/// What to do with one ended session.
enum Verdict {
    Forget,
    Held,
    Unchecked,
    Other,
}

/// One pass: every session that ended more than `retention` ago, a page at a time (pausing
/// `pause` between pages); forgets those the enclave no longer holds (see the module docs).
/// `held` carries, from pass to pass, the sessions the enclave said it still holds.
pub async fn forget_pass(
    state: &AppState,
    retention: Duration,
    held: &mut Held,
    pause: Duration,
) -> anyhow::Result<Pass> {
    let before = now_secs().saturating_sub(retention.as_secs());
    // What a status must come from (in a cluster, what its receipt is checked against).
    // Unknown (the enclave unreachable, a node not joined): nothing is forgotten.
    let identity = state.client.own_identity().await;
    let mut asking = identity.is_some();
    let mut pass = Pass::default();
    let mut after = None;
    loop {
        let page = match state.store.run(move |db| db.ended_sessions(before, after, FORGET_BATCH)).await {
            Ok(page) => page,
            Err(e) if pass.found() == 0 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read the ended sessions");
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = Some((last.ended_at, last.session));
        let mut forget = Vec::new();
        for s in &page {
            match verdict(state, s, identity, &mut asking, held).await {
                Verdict::Forget => forget.push(s.session),
                Verdict::Held => pass.held += 1,
                Verdict::Unchecked => pass.unchecked += 1,
                Verdict::Other => pass.others += 1,
            }
        }
        if !forget.is_empty() {
            let n = forget.len() as u64;
            match state.store.run(move |db| db.forget_sessions(&forget, before)).await {
                Ok(gone) => {
                    for s in &gone {
                        held.remove(s);
                    }
                    state.metrics.sessions_forgotten(gone.len() as u64);
                    pass.forgotten += gone.len() as u64;
                    // Stored again since the page was read (the same address): kept.
                    pass.unchecked += n - gone.len() as u64;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot delete ended sessions");
                    pass.unchecked += n;
                    break;
                }
            }
        }
        if page.len() < FORGET_BATCH {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let now = Instant::now();
    held.retain(|_, until| *until > now);
    Ok(pass)
}

async fn verdict(
    state: &AppState,
    s: &EndedSession,
    identity: Option<Address>,
    asking: &mut bool,
    held: &mut Held,
) -> Verdict {
    let Some(identity) = identity else { return Verdict::Unchecked };
    // `lost` is the host's own note, and can be wrong (a host pointed at another enclave
    // once marks every other identity's sessions lost; a review of 2026-12-06): taken only
    // for an enclave neither this host nor any other of the database fronts now. Marked
    // lost but this host's enclave's: asked, as any other.
    if s.state == StoredState::Lost && s.enclave != identity {
        return if s.fronted { Verdict::Other } else { Verdict::Forget };
    }
    if s.enclave != identity {
        return Verdict::Other;
    }
    if held.get(&s.session).is_some_and(|until| Instant::now() < *until) {
        return Verdict::Held;
    }
    if !*asking {
        return Verdict::Unchecked;
    }
    let session = s.session;
    match session_status(state, session, STATUS_LIMIT).await {
        Ok(st) if st.session.is_some() => {
            if s.state == StoredState::Lost {
                // The mark was wrong: served and swept again.
                let revoked = st.session.as_ref().is_some_and(|ss| ss.state == SessionState::Revoked);
                let back = if revoked { StoredState::Revoked } else { StoredState::Active };
                let unmarked = state.store.unmark_lost(&session, back);
                tracing::warn!(%session, ?unmarked, "session retention: a session marked lost is held by this host's enclave; the mark is cleared");
            }
            held.insert(session, Instant::now() + HELD_RECHECK);
            Verdict::Held
        }
        Ok(st) if st.identity_address == identity => Verdict::Forget,
        Ok(st) => {
            let answered = st.identity_address;
            tracing::warn!(%session, %answered, %identity, "session retention: the status is another enclave's; kept");
            Verdict::Unchecked
        }
        Err(e @ StatusError::NotTheEnclaves(_)) => {
            tracing::warn!(%session, error = %e, "session retention: a session's status is not the enclave's; kept");
            Verdict::Unchecked
        }
        Err(e) if e.unserved() => {
            *asking = false;
            tracing::warn!(error = %e, "session retention: the enclave does not serve statuses now; ended sessions kept until the next pass");
            Verdict::Unchecked
        }
        Err(e) => {
            tracing::debug!(%session, error = %e, "session retention: no status; kept");
            Verdict::Unchecked
        }
    }
}

/// Start the task (unless `session_retention_days` is 0): a pass every [`FORGET_EVERY`],
/// the first one [`FORGET_EVERY`] after the start (a host starting meets its enclave and
/// marks what it lost first; nothing ended 30 days ago is urgent).
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let retention = state.config.session_retention?;
    Some(tokio::spawn(async move {
        let mut held = Held::new();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + FORGET_EVERY, FORGET_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match forget_pass(&state, retention, &mut held, FORGET_PAUSE).await {
                Ok(p) if p.found() == 0 => tracing::debug!("session retention: no session ended past the retention"),
                Ok(p) => tracing::info!(
                    forgotten = p.forgotten,
                    kept_held_by_enclave = p.held,
                    kept_unchecked = p.unchecked,
                    kept_other_enclaves = p.others,
                    "session retention: sessions ended past the retention, forgotten unless the enclave still holds them"
                ),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "session retention: cannot read the ended sessions"),
            }
        }
    }))
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
