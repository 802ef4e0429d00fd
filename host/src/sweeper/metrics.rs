//! The sweeper's counters for `/metrics`.

use super::round::ChainGauges;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A chain's task as `/metrics` shows it.
#[derive(Debug, Default, Clone, Copy)]
struct Chain {
    /// What its last round found.
    gauges: ChainGauges,
    /// Rounds it finished (counted from the total when it started).
    rounds: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SweepMetrics {
    pub(super) past_expiry: AtomicU64,
    /// Rounds of every session's status read.
    pub(super) status_rounds: AtomicU64,
    /// Nodes named that have not answered their chain id yet (their chains are followed
    /// by no one).
    pub(super) unresolved: AtomicU64,
    /// Each chain's task, by chain id.
    chains: Mutex<BTreeMap<u64, Chain>>,
    pub(super) requests: AtomicU64,
    pub(super) broadcast: AtomicU64,
    pub(super) confirmed: AtomicU64,
    pub(super) bumps: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) enabled: AtomicBool,
}

impl SweepMetrics {
    /// A chain's task starts following its chain.
    pub(super) fn start_chain(&self, chain: u64) {
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        let rounds = Self::rounds_of(&chains, self.status_rounds.load(Ordering::Relaxed));
        chains.insert(chain, Chain { gauges: ChainGauges::default(), rounds });
    }

    /// A chain's task finished a round with `gauges`.
    pub(super) fn end_chain_round(&self, chain: u64, gauges: ChainGauges) {
        let mut chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        let c = chains.entry(chain).or_default();
        c.gauges = gauges;
        c.rounds += 1;
    }

    /// Rounds every chain's task finished (the slowest one's count), or the status rounds
    /// while no chain is followed.
    fn rounds_of(chains: &BTreeMap<u64, Chain>, status_rounds: u64) -> u64 {
        chains.values().map(|c| c.rounds).min().unwrap_or(status_rounds)
    }

    /// Prometheus text (empty when the sweeper is off).
    pub fn render(&self) -> String {
        if !self.enabled.load(Ordering::Relaxed) {
            return String::new();
        }
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let chains = self.chains.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let sum = |f: fn(&ChainGauges) -> u64| chains.values().map(|c| f(&c.gauges)).sum::<u64>();
        let rounds = Self::rounds_of(&chains, g(&self.status_rounds));
        let mut per_chain = format!(
            "# HELP bridle_sweep_nodes_unresolved Nodes named by --sweep-rpc that have not answered their chain id: their chains are swept by no one.\n\
             # TYPE bridle_sweep_nodes_unresolved gauge\nbridle_sweep_nodes_unresolved {}\n\
             # HELP bridle_sweep_chain_rounds_total Rounds each chain's task finished (a slow node delays only its chain).\n\
             # TYPE bridle_sweep_chain_rounds_total counter\n",
            g(&self.unresolved)
        );
        for (id, c) in &chains {
            per_chain.push_str(&format!("bridle_sweep_chain_rounds_total{{chain_id=\"{id}\"}} {}\n", c.rounds));
        }
        per_chain
            + &format!(
            "# HELP bridle_sweep_outstanding_past_expiry Approvals past their lifetime not settled by a signed revocation.\n\
             # TYPE bridle_sweep_outstanding_past_expiry gauge\nbridle_sweep_outstanding_past_expiry {}\n\
             # HELP bridle_sweep_waiting_at_fee_cap Sessions and chains whose stuck revocations wait because a bump would exceed the policy's fee caps.\n\
             # TYPE bridle_sweep_waiting_at_fee_cap gauge\nbridle_sweep_waiting_at_fee_cap {}\n\
             # HELP bridle_sweep_left_to_owner Sessions and chains whose due approvals the enclave does not revoke for the host now (it signs nothing or refuses); the owner's sweep does.\n\
             # TYPE bridle_sweep_left_to_owner gauge\nbridle_sweep_left_to_owner {}\n\
             # HELP bridle_sweep_waiting_behind_gap Sessions and chains whose revocation waits behind nonces the node has no transaction for.\n\
             # TYPE bridle_sweep_waiting_behind_gap gauge\nbridle_sweep_waiting_behind_gap {}\n\
             # HELP bridle_sweep_waiting_for_cluster Sessions and chains whose last sweep the cluster answered unavailable; asked again every round.\n\
             # TYPE bridle_sweep_waiting_for_cluster gauge\nbridle_sweep_waiting_for_cluster {}\n\
             # HELP bridle_sweep_rounds_total Rounds every chain's task finished (every session looked at once on every chain): the slowest chain's count.\n\
             # TYPE bridle_sweep_rounds_total counter\nbridle_sweep_rounds_total {}\n\
             # HELP bridle_sweep_requests_total Sweeps the sweeper asked the enclave for.\n\
             # TYPE bridle_sweep_requests_total counter\nbridle_sweep_requests_total {}\n\
             # HELP bridle_sweep_broadcast_total Revocations the sweeper broadcast (fee bumps included).\n\
             # TYPE bridle_sweep_broadcast_total counter\nbridle_sweep_broadcast_total {}\n\
             # HELP bridle_sweep_confirmed_total Revocations seen mined.\n\
             # TYPE bridle_sweep_confirmed_total counter\nbridle_sweep_confirmed_total {}\n\
             # HELP bridle_sweep_fee_bumps_total Sweeps re-signed with higher fees at the same nonces.\n\
             # TYPE bridle_sweep_fee_bumps_total counter\nbridle_sweep_fee_bumps_total {}\n\
             # HELP bridle_sweep_refused_total Sweeps the enclave refused.\n\
             # TYPE bridle_sweep_refused_total counter\nbridle_sweep_refused_total {}\n\
             # HELP bridle_sweep_unavailable_total Sweeps the cluster answered unavailable (e.g. no leader, or a leader that may not hold the session's key).\n\
             # TYPE bridle_sweep_unavailable_total counter\nbridle_sweep_unavailable_total {}\n\
             # HELP bridle_sweep_errors_total Node or enclave errors while sweeping.\n\
             # TYPE bridle_sweep_errors_total counter\nbridle_sweep_errors_total {}\n",
            g(&self.past_expiry),
            sum(|c| c.at_fee_cap),
            sum(|c| c.left_to_owner),
            sum(|c| c.behind_gap),
            sum(|c| c.waiting_for_cluster),
            rounds,
            g(&self.requests),
            g(&self.broadcast),
            g(&self.confirmed),
            g(&self.bumps),
            g(&self.refused),
            g(&self.unavailable),
            g(&self.errors)
        )
    }
}
