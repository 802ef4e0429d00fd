//! Sweeps that run by themselves (AG-212 4.3 and 4.6, R-APP-6): with `--sweep-rpc URL`
//! the host watches every session it knows, and when approvals of a session's own address
//! are past their lifetime — or every outstanding one, once the session is revoked,
//! suspended or over — it asks the enclave for their revocations (an unauthenticated sweep:
//! a sweep only revokes), with the nonce and fees taken from the node, broadcasts them,
//! follows them to their receipts and, when one is not mined within `sweep_bump_after`,
//! asks again at the same nonce with fees raised by 12.5 % (a replacement), within the
//! fee caps and with the gas per revocation of the session's policy as this host stored
//! it (`approvals.revoke_gas`; at the caps a stuck revocation waits). A new sweep starts at
//! the larger of the node's pending nonce and the enclave's next one. A sweep the enclave
//! signed that the chain has not reached and this host has not broadcast (asked for by
//! someone else and never broadcast, or by this host before a restart) is re-signed at its
//! own nonce and broadcast: the enclave shows its approvals as `swept` once signed, so a
//! sweep nobody broadcasts would otherwise leave them live — unless the node's pool holds a
//! transaction at that nonce (another host's broadcast): then it is followed as in flight
//! — with its bytes, hash and fees when this host's store holds it — and re-signed only if
//! not mined within `sweep_bump_after`, bumped from its own fees (else the node's). When the
//! node holds nothing at the lowest nonce in flight (a broadcast failed, the pool dropped
//! it), the signed transactions this host has are sent again as they are, at most once a
//! minute, at the fee caps too. A bump the enclave does not sign at its nonce counts as none: the lane is counted
//! as left to the owner and asked about again only after `sweep_bump_after`. A lane where the enclave signs
//! nothing more or refuses (a sweep's nonce was used where sweeps never settle, re-signs or
//! the gas budget are used up) is left alone until the enclave's view of it changes
//! (checked again every 10 minutes, a minute after a refusal; a cluster's `unavailable` is
//! not a refusal: asked again every round). The enclave
//! checks every sweep's fees against the policy's gas caps and charges its gas cost, so the
//! host can never spend beyond what the owner allowed; a refused sweep is counted and
//! logged. The host is untrusted here as everywhere: a host that does not sweep leaves the
//! approvals outstanding (visible in `bridle owner allowances` and the metrics below), it
//! cannot make the enclave sign anything but revocations.
//!
//! Every reply is checked before any of it is stored, sent or followed ([`reply`]): the
//! enclave's receipt over it, and each transaction exactly a revocation at the terms. A
//! reply that re-signs a stuck or never broadcast revocation without it is kept in the
//! store and neither sent nor followed.
//!
//! Each node named has a task of its own ([`round`]): a node that is slow or unreachable
//! delays only its own chain; every session's status is read once a round for all of them.
//!
//! Metrics: `bridle_sweep_outstanding_past_expiry` (approvals past their lifetime, not yet
//! settled by a signed revocation), `bridle_sweep_waiting_at_fee_cap`,
//! `bridle_sweep_left_to_owner` (sessions and chains whose due approvals the enclave does
//! not revoke for the host now: it signs nothing more or refuses), `bridle_sweep_waiting_behind_gap`
//! (a revocation waits behind nonces the node has no transaction for: the agent's, never
//! broadcast; no bump helps), `bridle_sweep_rounds_total` (rounds every chain's task finished:
//! the slowest one's count), `bridle_sweep_chain_rounds_total{chain_id}`,
//! `bridle_sweep_nodes_unresolved` (nodes that have not answered their chain id: their
//! chains are swept by no one), `bridle_sweep_requests_total`
//! (sweeps asked of the enclave), `bridle_sweep_broadcast_total`,
//! `bridle_sweep_confirmed_total`, `bridle_sweep_fee_bumps_total`,
//! `bridle_sweep_refused_total` (the enclave refused: fees over the caps, say),
//! `bridle_sweep_unavailable_total` (the cluster answered a sweep `unavailable`: e.g. a
//! leader that may not hold the session's key, during a rolling upgrade, or no leader, or a
//! commit that timed out, which may still take effect; not a refusal: the owner's sweep is
//! refused alike until a node that may hold the key leads),
//! `bridle_sweep_waiting_for_cluster` (sessions and chains whose last sweep was answered so;
//! asked again every round, not counted as left to the owner),
//! `bridle_sweep_errors_total` (node or enclave unreachable).
//!
//! In a cluster no new try of a sweep call starts after [`SWEEP_CALL_LIMIT`] (the call
//! timeout for other calls): a leader that may not hold a session's key answers at once,
//! and the host would otherwise ask its peers again and again for the whole 10 s, in every
//! round, for every such session. An exchange under way is still waited for, and one
//! pointer to the leader that arrives after the limit is followed. Once a call of a round
//! was answered `unavailable` or not at all (a status so, or a lane that failed), every further call of
//! that round starts no new try after [`SWEEP_RETRY_LIMIT`]: one try per session and chain
//! (a cluster with a leader answers one within it, following one pointer), so fifty lanes
//! waiting for the cluster, or a cluster with no leader, cost a round about
//! 2 s + 49 × 0.3 s instead of 100 s (or fifty call timeouts).

mod lane;
mod metrics;
mod node;
pub mod reply;
mod round;

pub use metrics::SweepMetrics;

use crate::store::{StoredState, StoredSweepTx};
use crate::AppState;
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, Result};
use bridle_common::allowance::AllowanceState;
use bridle_common::error::ErrorCode;
use bridle_common::protocol::*;
use lane::{Fingerprint, Idle, Step};
use node::{fees, quantity_u64, rpc};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Gas limit of one revocation (an ERC-20 `approve(spender, 0)` costs about 30 000), unless
/// the session's policy asks for more (`approvals.revoke_gas`: the enclave refuses a sweep
/// below it).
pub const SWEEP_GAS_LIMIT: u64 = 100_000;

/// After how long no new try of a sweep call starts in a cluster (see the module docs).
pub const SWEEP_CALL_LIMIT: Duration = Duration::from_secs(2);

/// The same, for the rest of a round once one of its calls was answered `unavailable` or
/// not at all (see the module docs).
pub const SWEEP_RETRY_LIMIT: Duration = Duration::from_millis(300);

/// What the session's policy (as this host stored it — the enclave checks again) lets an
/// unauthenticated sweep use: the gas per revocation and the fee caps a bump must stay
/// within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    gas_limit: u64,
    max_fee_per_gas: Option<u128>,
    max_priority_fee_per_gas: Option<u128>,
}

impl Limits {
    fn of(policy: Option<&bridle_common::policy::Policy>) -> Limits {
        let Some(p) = policy else {
            return Limits { gas_limit: SWEEP_GAS_LIMIT, max_fee_per_gas: None, max_priority_fee_per_gas: None };
        };
        Limits {
            // The store is the host's own: clamped to what the enclave accepts at all.
            gas_limit: SWEEP_GAS_LIMIT
                .max(p.approvals.revoke_gas.unwrap_or(0))
                .min(bridle_common::allowance::MAX_REVOKE_GAS),
            max_fee_per_gas: p.gas.max_fee_per_gas,
            max_priority_fee_per_gas: p.gas.max_priority_fee_per_gas,
        }
    }

    /// Fees `(max, tip)` raised for a replacement of `(max, tip)` — 12.5 % (nodes ask for
    /// at least 10 %), or the node's current fees if higher — within the caps; `None` when
    /// the caps leave no room for a replacement the node would accept.
    fn bumped(&self, was: (u128, u128), node: (u128, u128)) -> Option<(u128, u128)> {
        let bump = |x: u128| x.saturating_add(x / 8).saturating_add(1);
        let cap = |x: u128, c: Option<u128>| c.map_or(x, |c| x.min(c));
        let fee = cap(bump(was.0).max(node.0), self.max_fee_per_gas);
        let tip = cap(bump(was.1).max(node.1), self.max_priority_fee_per_gas).min(fee);
        let replaces = |new: u128, old: u128| new >= old.saturating_add(old / 10).max(old.saturating_add(1));
        (replaces(fee, was.0) && replaces(tip, was.1)).then_some((fee, tip))
    }
}

/// The stored policy the session runs now (the one whose hash the enclave reports): one
/// row, however many updates the session has had (a review of 2026-12-05: reading the whole
/// history for every session each round let one owner's tens of thousands of updates run
/// the host out of memory, again at every restart).
async fn policy_of(state: &AppState, session: Address, hash: B256) -> Option<bridle_common::policy::Policy> {
    let r = state.store.run(move |db| db.policy_with_hash(&session, &hash)).await.ok()??;
    serde_json::from_value(r.policy).ok()
}

/// The sweeper's settings (`sweep_rpc`, `sweep_interval`, `sweep_bump_after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSettings {
    /// Ethereum JSON-RPC endpoints, one per chain (each is asked its chain id).
    pub rpcs: Vec<String>,
    /// How often every session is looked at.
    pub interval: Duration,
    /// How long a broadcast revocation may stay unmined before its fees are bumped.
    pub bump_after: Duration,
}

/// A revocation broadcast and not yet seen mined.
#[derive(Debug, Clone)]
struct Inflight {
    /// Every hash broadcast at this nonce (the first, then each bump).
    hashes: Vec<B256>,
    /// The latest signed transaction at this nonce, sent again when the node holds nothing
    /// there (a broadcast that failed, a pool that dropped it). For a transaction the node's
    /// pool held when this host found it, the latest this host's store holds at that nonce,
    /// or empty when it holds none.
    raw: alloy_primitives::Bytes,
    /// When `raw` was last sent again ([`RESEND_EVERY`]).
    resent_at: Option<Instant>,
    /// The enclave did not re-sign this nonce when asked for a bump: the lane is left to the
    /// owner until a bump here is signed.
    not_signed: bool,
    max_fee_per_gas: u128,
    max_priority_fee_per_gas: u128,
    sent_at: Instant,
}

impl Inflight {
    /// A nonce followed from now with nothing known of it yet: no hash, no bytes, no fees.
    fn unknown() -> Inflight {
        Inflight {
            hashes: vec![],
            raw: Default::default(),
            resent_at: None,
            not_signed: false,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            sent_at: Instant::now(),
        }
    }
}

/// How often a revocation the node does not hold is sent again.
const RESEND_EVERY: Duration = Duration::from_secs(60);

/// (session, chain id) → nonce → what was broadcast there.
type Book = HashMap<(Address, u64), BTreeMap<u64, Inflight>>;

/// Lanes (session, chain id) left alone until the enclave's view of them changes.
type IdleLanes = HashMap<(Address, u64), Idle>;

/// Start the sweeper (when `sweep_rpc` is set): see [`round`].
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let settings = state.config.sweep.clone()?;
    state.sweep_metrics.enabled.store(true, Ordering::Relaxed);
    Some(tokio::spawn(round::run(state, settings)))
}

/// What a session's revocations on one chain are doing after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Moving,
    /// Stuck, and a bump would exceed the policy's fee caps: waiting.
    AtFeeCap,
    /// Stuck behind nonces the node has no transaction for: waiting (no bump helps).
    BehindGap,
    /// The cluster answered the sweep `unavailable`: asked again next round.
    WaitingForCluster,
    /// A revocation in flight is stuck and the enclave did not re-sign it at its nonce for
    /// the host (re-signs used up, the gas budget, another key's revocation there): asked
    /// again after `bump_after`; only the owner's sweep is sure to replace it now.
    BumpNotSigned,
    /// Nothing in flight and nothing the enclave signs (or it refused): leave the lane
    /// alone for `recheck` unless the enclave's view of it changes. `left_to_owner`:
    /// approvals there are due and the enclave does not revoke them for the host now.
    Idle {
        left_to_owner: bool,
        recheck: Duration,
    },
    /// The reply failed its checks (not the enclave's answer to this sweep): nothing of it
    /// stored, sent or followed; the lane is left alone for a minute whatever the
    /// enclave's view (asked again at once, the enclave would sign again what nobody sends).
    Unchecked,
}

/// Follow what is in flight for one session on one chain (`at`); bump what is stuck; sweep
/// what is due and not in flight.
async fn sweep_chain(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    at: (&SessionStatus, u64),
    book: &mut Book,
    (bump_after, limit): (Duration, Duration),
    limits: Limits,
) -> Result<Lane> {
    let (st, chain) = at;
    let session = st.session;
    let mined = node::nonce(http, url, session, "latest").await?;
    if let Some(inflight) = book.get_mut(&(session, chain)) {
        let done: Vec<u64> = inflight.range(..mined).map(|(n, _)| *n).collect();
        for n in done {
            let Some(f) = inflight.remove(&n) else { continue };
            for h in &f.hashes {
                if !rpc(http, url, "eth_getTransactionReceipt", json!([h])).await?.is_null() {
                    state.sweep_metrics.confirmed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%session, chain, nonce = n, hash = %h, "sweeper: revocation mined");
                    break;
                }
            }
        }
        if inflight.is_empty() {
            book.remove(&(session, chain));
        }
    }
    if let Some(inflight) = book.get_mut(&(session, chain)) {
        let Some(&first) = inflight.keys().next() else { return Ok(Lane::Moving) };
        let pending = node::nonce(http, url, session, "pending").await?;
        // Below it, a nonce the node has nothing for (a transaction the agent signed and
        // nobody broadcast): no fee gets this mined, and every bump is charged to the gas
        // budget. Wait for the gap to fill.
        if pending < first {
            tracing::warn!(%session, chain, nonce = first, pending, "sweeper: behind a nonce gap (transactions the agent signed, not broadcast); waiting");
            return Ok(Lane::BehindGap);
        }
        // The node holds nothing at `first`: a broadcast failed, or its pool dropped the
        // transaction. Send again what was signed (the same bytes), at the fee caps too,
        // where no bump ever comes (found 2026-12-05 by a review).
        if pending == first {
            resend(state, http, url, session, inflight).await;
        }
        let Some(f) = inflight.get(&first) else { return Ok(Lane::Moving) };
        // Stuck: re-sign from the lowest unmined nonce with fees 12.5 % higher (nodes ask
        // for at least 10 % to replace), or the node's current fees if higher — within the
        // policy's fee caps; at the caps it waits (the enclave would refuse every round).
        if f.sent_at.elapsed() < bump_after {
            return Ok(if f.not_signed { Lane::BumpNotSigned } else { Lane::Moving });
        }
        let node = fees(http, url).await?;
        let Some((max_fee_per_gas, max_priority_fee_per_gas)) =
            limits.bumped((f.max_fee_per_gas, f.max_priority_fee_per_gas), node)
        else {
            tracing::warn!(%session, chain, nonce = first, "sweeper: stuck at the policy's fee caps; waiting");
            return Ok(Lane::AtFeeCap);
        };
        let terms = SweepTerms {
            chain_id: chain,
            nonce: first,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            gas_limit: limits.gas_limit,
        };
        return Ok(match sweep(state, http, url, (session, terms), book, limit, Some(first)).await? {
            Signed::Some(nonces) if nonces.contains(&first) => {
                state.sweep_metrics.bumps.fetch_add(1, Ordering::Relaxed);
                Lane::Moving
            }
            Signed::Unavailable => Lane::WaitingForCluster,
            Signed::Unchecked => {
                if let Some(f) = book.get_mut(&(session, chain)).and_then(|i| i.get_mut(&first)) {
                    f.sent_at = Instant::now();
                }
                Lane::Unchecked
            }
            // Not re-signed at `first` (other nonces may have been): no bump happened. The
            // stuck revocation is asked about again only after `bump_after`, instead of
            // every round (each a request the enclave logs, re-signs charged to the gas
            // budget; found 2026-12-05 by a review).
            Signed::Some(_) | Signed::Nothing | Signed::Refused => {
                if let Some(f) = book.get_mut(&(session, chain)).and_then(|i| i.get_mut(&first)) {
                    f.sent_at = Instant::now();
                    f.not_signed = true;
                }
                tracing::warn!(%session, chain, nonce = first, "sweeper: the enclave did not re-sign the stuck revocation at its nonce; asking again later (bridle owner sweep replaces it now)");
                Lane::BumpNotSigned
            }
        });
    }
    let pending = node::nonce(http, url, session, "pending").await?;
    let step = lane::step(st, chain, mined, pending);
    let (nonce, need) = match step {
        Step::Nothing => return Ok(Lane::Idle { left_to_owner: false, recheck: lane::IDLE_RECHECK }),
        // In the node's pool (broadcast by another host, or by this one before a restart):
        // followed as if this host had broadcast it at no fee — bumped from the node's fees
        // after `bump_after` if it is not mined by then (a transaction stuck in the pool, or
        // the agent's at that nonce, is not waited on for ever: a review of 2026-12-05).
        Step::InPool(n) => {
            tracing::info!(%session, chain, nonce = n, "sweeper: a signed sweep the chain has not reached is in the node's pool; following it");
            let followed = stored_at(state, session, chain, n).await.unwrap_or_else(Inflight::unknown);
            book.entry((session, chain)).or_default().insert(n, followed);
            return Ok(Lane::Moving);
        }
        Step::Resign(n) => {
            tracing::info!(%session, chain, nonce = n, "sweeper: a signed sweep the chain has not reached and this host did not broadcast; re-signing it");
            (n, Some(n))
        }
        Step::Sweep(n) => (n, None),
    };
    let (fee, tip) = fees(http, url).await?;
    let terms = SweepTerms {
        chain_id: chain,
        nonce,
        max_fee_per_gas: limits.max_fee_per_gas.map_or(fee, |c| fee.min(c)),
        max_priority_fee_per_gas: limits.max_priority_fee_per_gas.map_or(tip, |c| tip.min(c)).min(fee),
        gas_limit: limits.gas_limit,
    };
    // Due, and nothing signed or refused: each due key's sweep nonce is used (where sweeps
    // never settle, RULES.md §6), re-signs are used up (half the registry) or the gas budget
    // is (until its period ends). Only the owner's sweep is sure to revoke them now.
    Ok(after_sweep(sweep(state, http, url, (session, terms), book, limit, need).await?))
}

/// What this host's store holds of the revocations signed for `session` on `chain` at
/// `nonce` (another host's sweep sharing the database, or this one's before a restart): every
/// hash, and the highest-priced one's bytes and fees — so a sweep found in the node's pool
/// is sent again if the pool drops it, and bumped from its own fees rather than the node's
/// (a replacement this store never saw may still be priced above it).
async fn stored_at(state: &AppState, session: Address, chain: u64, nonce: u64) -> Option<Inflight> {
    // Those at this lane and nonce only (the latest few hundred), never the session's whole
    // history: anyone may ask for sweeps, and each round reads this for every lane.
    let mut at: Vec<StoredSweepTx> = match state.store.run(move |db| db.sweeps_at(&session, chain, nonce)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%session, error = %e, "sweeper: cannot read the stored sweeps");
            return None;
        }
    };
    at.reverse();
    // The highest-priced one (what the pool most likely holds: each bump replaced the one
    // before), not the latest by `signed_at`, which hosts sharing a store stamp with their
    // own clocks.
    let fees = |t: &StoredSweepTx| bridle_common::tx::eip1559_fees(&t.raw_transaction).unwrap_or_default();
    let top = at.iter().max_by_key(|t| (fees(t), t.signed_at))?;
    let (max_fee_per_gas, max_priority_fee_per_gas) = fees(top);
    let mut hashes: Vec<B256> = Vec::new();
    for t in &at {
        if !hashes.contains(&t.hash) {
            hashes.push(t.hash);
        }
    }
    Some(Inflight {
        hashes,
        raw: top.raw_transaction.clone(),
        max_fee_per_gas,
        max_priority_fee_per_gas,
        ..Inflight::unknown()
    })
}

/// Send again every transaction in flight on a lane that this host signed, lowest nonce
/// first (the same signed bytes: a node that has one already answers so, and nothing
/// changes), each at most every [`RESEND_EVERY`].
async fn resend(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    session: Address,
    inflight: &mut BTreeMap<u64, Inflight>,
) {
    for (n, f) in inflight.iter_mut() {
        if f.raw.is_empty() || f.resent_at.is_some_and(|t| t.elapsed() < RESEND_EVERY) {
            continue;
        }
        f.resent_at = Some(Instant::now());
        let raw = format!("0x{}", hex::encode(&f.raw));
        match rpc(http, url, "eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => {
                state.sweep_metrics.broadcast.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%session, nonce = n, "sweeper: the node held nothing at the revocation's nonce; sent it again");
            }
            Err(e) => {
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%session, nonce = n, error = %e, "sweeper: sending a revocation again failed");
            }
        }
    }
}

/// What a lane does after a sweep of what is due (not a bump).
fn after_sweep(signed: Signed) -> Lane {
    match signed {
        Signed::Some(_) => Lane::Moving,
        Signed::Nothing => Lane::Idle { left_to_owner: true, recheck: lane::IDLE_RECHECK },
        Signed::Refused => Lane::Idle { left_to_owner: true, recheck: lane::REFUSED_RECHECK },
        // Not the owner's either: the owner's sweep is refused alike until a node that may
        // hold the key leads.
        Signed::Unavailable => Lane::WaitingForCluster,
        Signed::Unchecked => Lane::Unchecked,
    }
}

/// What the enclave did with a sweep request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Signed {
    /// The nonces the enclave signed at.
    Some(Vec<u64>),
    Nothing,
    Refused,
    /// The cluster answered `unavailable`: not a refusal. Nothing was signed for this host,
    /// though a commit that timed out may still take effect (the next round's status shows
    /// its approvals swept, and the sweeper re-signs and broadcasts what it never got).
    Unavailable,
    /// A reply that failed its checks ([`reply::check`]): nothing stored or sent.
    Unchecked,
}

/// Ask the enclave for a sweep at `terms`, check its reply, store what it signed and
/// broadcast it. `need`: a nonce the sweep is for (a stuck or never broadcast revocation's):
/// a reply without it is stored and neither broadcast nor followed, as `Nothing` — the
/// revocations it signed above that nonce cannot be mined before it, and followed they
/// left the lane waiting behind a gap of its own making until a restart (a review of
/// 2026-12-06).
async fn sweep(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    (session, terms): (Address, SweepTerms),
    book: &mut Book,
    limit: Duration,
    need: Option<u64>,
) -> Result<Signed> {
    state.sweep_metrics.requests.fetch_add(1, Ordering::Relaxed);
    let call = Call::Sweep(Sweep { session, terms: vec![terms.clone()], accounts: vec![], auth: None });
    let reply = match state.client.call_within(call, limit).await {
        Ok(Reply::Swept(r)) => r,
        Ok(_) => return Err(anyhow!("the enclave answered a sweep with another reply")),
        Err(crate::enclave_client::ClientError::Denied(d)) if d.code == ErrorCode::Unavailable => {
            state.sweep_metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%session, chain = terms.chain_id, reason = %d.reason, "sweeper: the cluster answered the sweep unavailable; asking again next round");
            return Ok(Signed::Unavailable);
        }
        Err(crate::enclave_client::ClientError::Denied(d)) => {
            state.sweep_metrics.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%session, chain = terms.chain_id, code = d.code.as_str(), rule = ?d.rule, reason = %d.reason, "sweeper: the enclave refused the sweep");
            return Ok(Signed::Refused);
        }
        Err(e) => return Err(anyhow!("enclave: {e}")),
    };
    if let Err(e) = reply::check(state, session, std::slice::from_ref(&terms), None, &reply).await {
        tracing::warn!(%session, chain = terms.chain_id, error = %e, "sweeper: the sweep's reply is not the enclave's answer to it; nothing stored or sent, asked again in a minute");
        return Ok(Signed::Unchecked);
    }
    for k in reply.skipped.iter().take(4) {
        tracing::info!(%session, chain = k.chain_id, token = %k.token, spender = %k.spender, reason = %k.reason, "sweeper: the enclave left an approval out of the sweep");
    }
    if reply.transactions.is_empty() {
        return Ok(Signed::Nothing);
    }
    let at = crate::store::now_secs();
    let stored: Vec<StoredSweepTx> =
        reply.transactions.iter().map(|t| crate::store::StoredSweepTx::of(session, t, at)).collect();
    if let Err(e) = state.store.run(move |db| db.insert_sweep(&stored)).await {
        tracing::error!(error = %e, "sweeper: cannot store the sweep");
    }
    if let Some(n) = need.filter(|n| !reply.transactions.iter().any(|t| t.nonce == *n)) {
        tracing::warn!(%session, chain = terms.chain_id, nonce = n, "sweeper: the enclave signed no revocation at the nonce asked for; nothing sent (the owner's sweep replaces it)");
        return Ok(Signed::Nothing);
    }
    let inflight = book.entry((session, terms.chain_id)).or_default();
    for t in &reply.transactions {
        let raw = format!("0x{}", hex::encode(&t.raw_transaction));
        match rpc(http, url, "eth_sendRawTransaction", json!([raw])).await {
            Ok(_) => {
                state.sweep_metrics.broadcast.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%session, chain = t.chain_id, nonce = t.nonce, hash = %t.hash, spender = %t.spender, "sweeper: revocation broadcast");
            }
            // Still followed: the node may know it already, or a bump may replace it.
            Err(e) => {
                state.sweep_metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%session, nonce = t.nonce, error = %e, "sweeper: broadcast failed");
            }
        }
        let e = inflight.entry(t.nonce).or_insert_with(Inflight::unknown);
        e.hashes.push(t.hash);
        e.raw = t.raw_transaction.clone();
        e.resent_at = None;
        e.not_signed = false;
        e.max_fee_per_gas = terms.max_fee_per_gas;
        e.max_priority_fee_per_gas = terms.max_priority_fee_per_gas;
        e.sent_at = Instant::now();
    }
    Ok(Signed::Some(reply.transactions.iter().map(|t| t.nonce).collect()))
}

#[cfg(test)]
mod fakes;
#[cfg(test)]
#[path = "reply_tests.rs"]
mod reply_tests;
#[cfg(test)]
#[path = "sweep_tests.rs"]
mod sweep_tests;
