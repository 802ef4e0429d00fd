//! The sweeper's counters for `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SweepMetrics {
    pub(super) past_expiry: AtomicU64,
    pub(super) at_fee_cap: AtomicU64,
    pub(super) left_to_owner: AtomicU64,
    pub(super) behind_gap: AtomicU64,
    pub(super) waiting_for_cluster: AtomicU64,
    pub(super) requests: AtomicU64,
    pub(super) rounds: AtomicU64,
    pub(super) broadcast: AtomicU64,
    pub(super) confirmed: AtomicU64,
    pub(super) bumps: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) enabled: AtomicBool,
}

impl SweepMetrics {
    /// Prometheus text (empty when the sweeper is off).
    pub fn render(&self) -> String {
        if !self.enabled.load(Ordering::Relaxed) {
            return String::new();
        }
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
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
             # HELP bridle_sweep_rounds_total Rounds the sweeper finished (every session looked at once).\n\
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
            g(&self.at_fee_cap),
            g(&self.left_to_owner),
            g(&self.behind_gap),
            g(&self.waiting_for_cluster),
            g(&self.rounds),
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
