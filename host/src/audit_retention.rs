//! The audit log's retention (`audit_retention_days`: 0, the default, keeps it for good).
//!
//! The host's copy of the enclave's log grows with every signature and with refusals nobody
//! signed (the enclave logs up to 1 024 of those a minute): kept for good, it fills the
//! disk at the pace of whoever uses or floods the enclave. With a retention set, every
//! [`PRUNE_EVERY`] a pass deletes, for each enclave whose log is stored, the oldest entries
//! logged more than the retention ago — a page of [`PRUNE_PAGE`] per transaction, in `seq`
//! order, stopping at the first entry logged since the cutoff, and never the last entry
//! stored ([`crate::store::AuditBackend::prune_audit`]). Only a prefix of each chain goes:
//! what is left is one chain, from the entry after the pruned prefix to the head.
//!
//! What a verifier can then know: the entries kept still link to one another and to a head
//! the enclave signed, so `bridle verify audit --from-seq N` and the console check the log
//! from the first entry kept — every entry the enclave logged from then to the head is
//! there — and say that the entries before it are not in the copy. Why they are not (this
//! retention) is the host's word: the export and `GET /v1/audit` carry `pruned_through`,
//! which no signature covers. Keep exports (`bridle audit export`) for as long as the
//! record must last: an export made before a pass holds the entries the pass deletes, and
//! the later one continues from them.

use crate::store::AuditBackend;
use crate::AppState;
use std::sync::Arc;
use std::time::Duration;

/// How often a pass looks for entries past the retention.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Entries deleted per transaction.
pub const PRUNE_PAGE: usize = 10_000;
/// The pause between two pages: the puller and the exports take the database in between.
pub const PRUNE_PAUSE: Duration = Duration::from_millis(20);

/// One pass: for every enclave's log, the entries logged before `before` (seconds), a page
/// at a time, pausing `pause` between pages; returns how many were deleted.
pub async fn prune_pass(
    backend: &Arc<dyn AuditBackend>,
    before: u64,
    now: u64,
    pause: Duration,
) -> anyhow::Result<u64> {
    let b = backend.clone();
    let enclaves = tokio::task::spawn_blocking(move || b.audit_enclaves()).await??;
    let mut deleted = 0u64;
    for enclave in enclaves {
        loop {
            let b = backend.clone();
            let page = tokio::task::spawn_blocking(move || b.prune_audit(&enclave, before, PRUNE_PAGE, now)).await?;
            let page = match page {
                Ok(p) => p,
                Err(e) if deleted == 0 => return Err(e),
                // What this pass deleted so far is still counted.
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), %enclave, "audit retention: cannot prune");
                    break;
                }
            };
            if page.deleted == 0 {
                break;
            }
            deleted += page.deleted as u64;
            tracing::debug!(%enclave, through = ?page.through, deleted = page.deleted, "audit entries pruned");
            tokio::time::sleep(pause).await;
        }
    }
    Ok(deleted)
}

/// Start the pruning task, when a retention is set.
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let retention = state.config.audit_retention?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = crate::store::now_secs();
            let before = now.saturating_sub(retention.as_secs());
            match prune_pass(&state.audit.backend(), before, now, PRUNE_PAUSE).await {
                Ok(0) => {}
                Ok(n) => {
                    state.metrics.audit_pruned(n);
                    tracing::info!(entries = n, "audit entries logged before the audit retention deleted");
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "audit retention: cannot prune"),
            }
        }
    }))
}

#[cfg(test)]
#[path = "audit_retention_tests.rs"]
mod tests;
