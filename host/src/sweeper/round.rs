//! The sweeper's rounds. One task reads every session's status once per interval and
//! publishes them; each chain node has a task of its own that follows that chain's lanes
//! from the latest statuses published. A node that is slow or unreachable (each of its
//! calls may take the HTTP timeout, 10 s) delays only its own chain: with one task for every
//! chain, it held up every other chain's revocations for as long (found 2026-12-05 by a
//! review). A chain's task that takes longer than the interval skips the statuses published
//! meanwhile and takes the latest.

use super::*;
use crate::owner_replies::StatusError;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Every session's status read in one round, for every chain's task.
#[derive(Debug, Default)]
pub(super) struct Statuses {
    /// Each session's status, and what its stored policy lets a sweep use.
    pub sessions: Vec<(Box<SessionStatus>, Limits)>,
    /// The limit of a chain's calls this round: [`SWEEP_RETRY_LIMIT`] once a status was not
    /// served (the module docs).
    pub limit: Duration,
}

/// What one chain's round found (summed over chains for `/metrics`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChainGauges {
    pub at_fee_cap: u64,
    pub left_to_owner: u64,
    pub behind_gap: u64,
    pub waiting_for_cluster: u64,
}

/// Run the sweeper: a task per node (resolving its chain id, then following its chain) and
/// this one, reading every session's status each `interval`. The nodes' tasks end with it.
pub(super) async fn run(state: AppState, settings: SweepSettings) {
    // No redirect is followed: a node answers for itself, and a redirect could take the
    // calls from https to plain http (a review of 2026-12-06).
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        // Never a default client in its stead (it would follow redirects, with no timeout).
        Err(e) => {
            tracing::error!(error = %e, "sweeper: cannot build its HTTP client; the sweeper does not run");
            return;
        }
    };
    let (tx, rx) = watch::channel(Arc::new(Statuses::default()));
    let claimed: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let mut nodes = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    let urls: Vec<String> = settings.rpcs.iter().filter(|u| seen.insert(u.as_str())).cloned().collect();
    state.sweep_metrics.unresolved.store(urls.len() as u64, Ordering::Relaxed);
    for url in urls {
        let node = Node { state: state.clone(), http: http.clone(), url, claimed: claimed.clone() };
        nodes.spawn(node.follow(rx.clone(), settings.interval, settings.bump_after));
    }
    loop {
        let statuses = statuses(&state).await;
        tx.send_replace(Arc::new(statuses));
        tokio::time::sleep(settings.interval).await;
    }
}

/// Read every known session's status once (and count what is past expiry).
pub(super) async fn statuses(state: &AppState) -> Statuses {
    let mut past_expiry = 0u64;
    // SWEEP_CALL_LIMIT until the cluster fails to serve one call of this round, then one try
    // per call (the module docs).
    let mut limit = SWEEP_CALL_LIMIT;
    let mut sessions = Vec::new();
    // In a cluster, what signed statuses are checked against: this host's own enclave's
    // identity. Unknown (its node down, or not joined), no status could be taken: none is
    // asked for this round (each would cost the leader a signature for nothing).
    if state.config.cluster.is_some() && state.client.own_identity().await.is_none() {
        state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("sweeper: this host's enclave has not said its identity; no status read this round");
        return Statuses { sessions, limit };
    }
    for (session, stored, _) in state.store.known_sessions() {
        if stored == StoredState::Lost {
            continue;
        }
        // In a cluster, signed and checked as the enclave's word (`session_status`).
        let st = match crate::owner_replies::session_status(state, session, limit).await {
            Ok(st) => st,
            Err(e @ StatusError::NotTheEnclaves(_)) => {
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%session, error = %e, "sweeper: a session's status is not the enclave's; not swept this round");
                continue;
            }
            Err(e) => {
                if e.unserved() {
                    limit = SWEEP_RETRY_LIMIT;
                }
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let Some(mut ss) = st.session else { continue };
        // Kept for every chain's task until the next round: only what sweeping reads (a
        // status carries up to 256 KiB of held requests' payloads; every session's at once
        // would be hundreds of MiB — a review of 2026-12-05).
        ss.pending = Vec::new();
        // Counted even when a signed sweep revokes it: the enclave cannot tell whether that
        // sweep was mined (where sweeps never settle, RULES.md §6, it stays counted).
        past_expiry += ss.allowances.iter().filter(|a| a.state == AllowanceState::Expired).count() as u64;
        let limits = Limits::of(policy_of(state, session, ss.policy_hash).await.as_ref());
        sessions.push((ss, limits));
    }
    state.sweep_metrics.past_expiry.store(past_expiry, Ordering::Relaxed);
    state.sweep_metrics.status_rounds.fetch_add(1, Ordering::Relaxed);
    Statuses { sessions, limit }
}

/// One node named by `--sweep-rpc`.
pub(super) struct Node {
    pub state: AppState,
    pub http: reqwest::Client,
    pub url: String,
    /// Chain id → the URL whose task follows it (the first one that answered its chain id,
    /// not necessarily the first named).
    pub claimed: Arc<Mutex<HashMap<u64, String>>>,
}

impl Node {
    /// Learn the node's chain id (asked again every `retry` until it answers), then follow
    /// that chain's lanes from each round's statuses — unless another node already follows
    /// the chain.
    pub(super) async fn follow(self, mut rx: watch::Receiver<Arc<Statuses>>, retry: Duration, bump_after: Duration) {
        let chain = loop {
            match rpc(&self.http, &self.url, "eth_chainId", json!([])).await.and_then(|v| quantity_u64(&v)) {
                Ok(id) => {
                    self.state.sweep_metrics.unresolved.fetch_sub(1, Ordering::Relaxed);
                    break id;
                }
                Err(e) => {
                    self.state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %super::node::shown(&self.url), error = %e, "sweeper: node unreachable");
                    tokio::time::sleep(retry).await;
                }
            }
        };
        {
            let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(first) = claimed.get(&chain) {
                tracing::warn!(chain_id = chain, url = %super::node::shown(&self.url), used = %super::node::shown(first), "sweeper: a second node for a chain; the first one that answered its chain id is used");
                return;
            }
            claimed.insert(chain, self.url.clone());
        }
        tracing::info!(chain_id = chain, url = %super::node::shown(&self.url), "sweeper: node");
        self.state.sweep_metrics.start_chain(chain);
        let (mut book, mut idle) = (Book::new(), IdleLanes::new());
        while rx.changed().await.is_ok() {
            let statuses = rx.borrow_and_update().clone();
            let gauges =
                chain_round(&self.state, &self.http, (chain, &self.url), &statuses, (&mut book, &mut idle), bump_after)
                    .await;
            self.state.sweep_metrics.end_chain_round(chain, gauges);
        }
    }
}

/// Look at every session's lane on one chain once.
pub(super) async fn chain_round(
    state: &AppState,
    http: &reqwest::Client,
    (chain, url): (u64, &str),
    statuses: &Statuses,
    (book, idle): (&mut Book, &mut IdleLanes),
    bump_after: Duration,
) -> ChainGauges {
    let mut g = ChainGauges::default();
    let mut limit = statuses.limit;
    for (ss, limits) in &statuses.sessions {
        let session = ss.session;
        // Anything to look at here: an approval due, a signed sweep, or one in flight.
        if !lane::chains(ss).contains(&chain) && !book.contains_key(&(session, chain)) {
            idle.remove(&(session, chain));
            continue;
        }
        let fingerprint = Fingerprint::of(ss, chain);
        if let Some(i) = idle.get(&(session, chain)) {
            if (i.firm || i.fingerprint == fingerprint)
                && Instant::now() < i.until
                && !book.contains_key(&(session, chain))
            {
                g.left_to_owner += u64::from(i.left_to_owner);
                continue;
            }
        }
        idle.remove(&(session, chain));
        match sweep_chain(state, http, url, (ss, chain), book, (bump_after, limit), *limits).await {
            Ok(Lane::Moving) => {}
            Ok(Lane::AtFeeCap) => g.at_fee_cap += 1,
            Ok(Lane::BehindGap) => g.behind_gap += 1,
            Ok(Lane::BumpNotSigned) => g.left_to_owner += 1,
            Ok(Lane::WaitingForCluster) => {
                g.waiting_for_cluster += 1;
                limit = SWEEP_RETRY_LIMIT;
            }
            Ok(Lane::Idle { left_to_owner: owner, recheck }) => {
                g.left_to_owner += u64::from(owner);
                if owner {
                    tracing::warn!(%session, chain, "sweeper: approvals stay outstanding; the enclave revokes them only with the owner's signature now (bridle owner sweep)");
                }
                let until = Instant::now() + recheck;
                idle.insert((session, chain), Idle { fingerprint, until, left_to_owner: owner, firm: false });
            }
            Ok(Lane::Unchecked) => {
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                let until = Instant::now() + lane::REFUSED_RECHECK;
                idle.insert((session, chain), Idle { fingerprint, until, left_to_owner: false, firm: true });
            }
            Err(e) => {
                // The enclave not answering, or the node: one try per call from here on
                // (harmless for a node's failure: a cluster with a leader answers one).
                limit = SWEEP_RETRY_LIMIT;
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%session, chain, error = %e, "sweeper");
            }
        }
    }
    g
}
