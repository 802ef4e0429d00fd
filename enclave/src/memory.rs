//! How the enclave's memory is divided, decided once at start.
//!
//! Sessions are refused `rate_limited` once their [`Budget`](crate::service::Budget) is
//! spent, so the budget must fit in the memory the enclave really has, beside what is not
//! charged to it: the runtime, the connections' buffers, the audit log and, on a cluster
//! node, the replicated log. A budget larger than that would let anyone who can create
//! sessions (any Ethereum key can be an owner) drive the enclave out of memory, and an
//! enclave killed for lack of memory loses every key. So the plan is computed from the
//! memory available at start (`MemAvailable` in `/proc/meminfo`: inside a Nitro Enclave,
//! the enclave's memory less the kernel and the unpacked image) and the enclave refuses to
//! start with a budget that does not fit. This module is pure: `main` reads the file.
//!
//! A request's decoded form is bounded by its frame ([`max_decoded`]), and its answer by
//! [`max_answer`] (the server refuses to send a larger one, and a session status copies
//! no more than `STATUS_PAYLOAD_BYTES` of its held requests, beside the one asked for): a
//! stand-alone enclave decodes and serves a signing request on a worker thread without
//! waiting, and any other call only in its lane's one turn, on the blocking pool while the
//! connection's task waits on its worker, the turn held until the answer is encoded
//! ([`crate::lanes`]), so at most one request and one answer per worker and per lane are
//! held at once, and the plan counts that many, with what serving it may hold beside (a
//! typed-data parse or a call's arguments decoded for the policy: [`per_worker`]).
//!
//! What the plan does not bound (SECURITY.md, "Open findings"): on a cluster node the
//! calls held on every connection while they wait for the log, large frames on every
//! connection at once, the copies a snapshot install holds, and the exposure book. The
//! runtime reserve is an estimate, not a measured maximum.

use crate::lanes::LANES;
use crate::server::MAX_HELD;
use bridle_common::audit::{AuditEntry, MAX_DETAIL, MAX_RULE};
use bridle_common::frame::{max_answer, max_decoded};
use bridle_common::policy::calls::MAX_DECODE_BYTES;
use bridle_common::typed::MAX_PARSE_BYTES;

/// Memory outside every other term: the binary, the runtime and its worker stacks, the
/// owner-nonce book (200 000 sessionless owners at most, ≈ 20 MiB; owners with sessions are
/// paid for by their sessions), allocator slack. An estimate: an idle enclave's RSS is
/// ≈ 10 MiB (BENCHMARKS.md).
pub const RUNTIME_RESERVE: usize = 96 << 20;
/// A budget smaller than this is refused: the enclave could hold almost no session.
pub const MIN_BUDGET: usize = 16 << 20;
/// A cluster node's budget when none is given (the default before budgets were checked).
/// It is committed to PCR16 with the rest of the cluster's configuration, so it cannot
/// follow each machine's memory: every node of a cluster must have the same.
pub const CLUSTER_DEFAULT_BUDGET_MIB: usize = 1536;
/// A derived budget is this share (tenths) of what is left: a margin for the estimates.
const DERIVED_TENTHS: usize = 9;
/// A connection's read buffer and bookkeeping.
const CONNECTION_SLACK: usize = 64 << 10;

/// The most one entry of the in-memory audit log takes: the entry, and its longest detail
/// and rule as allocated (entries hold their strings at their length; see
/// [`allocated`]).
pub const AUDIT_ENTRY_MAX: usize = std::mem::size_of::<AuditEntry>() + allocated(MAX_DETAIL) + allocated(MAX_RULE);

/// The most the allocator takes for `n` bytes: mimalloc's secure mode adds 8 bytes of
/// padding and rounds up to a size class, at most a quarter larger at these sizes (264 →
/// 320, 136 → 160).
pub const fn allocated(n: usize) -> usize {
    (n + 8) * 5 / 4 + 16
}

/// The most one connection holds: a request body of up to `max_frame` bytes, its answer
/// encoded (at most [`max_answer`]), the answers held back, and the read buffer.
pub fn per_connection(max_frame: usize) -> usize {
    max_frame.saturating_add(max_answer(max_frame)).saturating_add(MAX_HELD).saturating_add(CONNECTION_SLACK)
}

/// What one worker holds while it serves a request: the request decoded at its largest
/// ([`max_decoded`]), either a typed-data request's parse ([`MAX_PARSE_BYTES`]: it is made
/// before the stamp can be checked) or a call's arguments decoded for the policy (one call
/// at a time: its nodes, [`MAX_DECODE_BYTES`], and its data copied and re-encoded, at most
/// twice the frame), the answer built (at most [`max_answer`]) and its encoding, whose
/// buffer grows by doubling (at most twice that; a receipt hashes the answer as it encodes
/// it, without a copy).
pub fn per_worker(call_frame: usize) -> usize {
    let arguments = MAX_DECODE_BYTES.saturating_add(call_frame.saturating_mul(2));
    max_decoded(call_frame)
        .saturating_add(MAX_PARSE_BYTES.max(arguments))
        .saturating_add(max_answer(call_frame).saturating_mul(3))
}

/// What the plan is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Bytes available at start (`MemAvailable`).
    pub available: usize,
    /// `--memory-budget-mib`, if given.
    pub budget_mib: Option<usize>,
    /// Connections served at once.
    pub max_connections: usize,
    /// The largest call a connection carries: `--max-frame` on a stand-alone enclave, a
    /// cluster node's call frame on a node.
    pub call_frame: usize,
    /// Entries the audit log keeps in memory.
    pub audit_capacity: usize,
    /// The runtime's workers, which decode and serve signing requests; a stand-alone
    /// enclave's [`LANES`] come on top.
    pub workers: usize,
    /// On a cluster node: what its log and its peers' messages may hold.
    pub cluster: Option<ClusterInputs>,
}

/// A cluster node's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInputs {
    /// The log's bytes that trigger a snapshot (`--cluster-snapshot-bytes`).
    pub snapshot_bytes: usize,
    /// The largest message between nodes.
    pub max_message: usize,
}

/// The memory plan: every term in bytes. `budget` is what sessions may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub available: usize,
    pub runtime: usize,
    pub connections: usize,
    /// One request's decoded form, a typed-data parse or a call's arguments decoded, and
    /// its answer, at their largest ([`per_worker`]) per worker and per lane.
    pub decoding: usize,
    pub audit: usize,
    /// A cluster node's log until its next snapshot and a snapshot being sent (twice the
    /// snapshot threshold), a message in and one out, and a serialized snapshot of the
    /// sessions (a quarter of the budget); zero on a stand-alone enclave.
    pub cluster: usize,
    pub budget: usize,
    /// Whether the budget was derived (no `--memory-budget-mib` on a stand-alone enclave).
    pub derived: bool,
}

/// Where a plan's budget comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Nine tenths of what is left (a stand-alone enclave without `--memory-budget-mib`).
    Derived,
    /// `--memory-budget-mib`, in MiB.
    Given(usize),
    /// A cluster node without `--memory-budget-mib`: [`CLUSTER_DEFAULT_BUDGET_MIB`].
    NodeDefault,
}

/// Why the enclave will not start with this memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{asked}: the enclave has {available_mib} MiB available, and the runtime ({runtime_mib} MiB), \
     {connections} connections' buffers ({connections_mib} MiB), {decoders} requests being decoded and answered \
     ({decoding_mib} MiB), the audit log's {audit_entries} entries \
     ({audit_mib} MiB){cluster} leave {ceiling_mib} MiB for sessions; {advice}"
)]
pub struct DoesNotFit {
    /// "the memory budget of N MiB does not fit", or that too little is left.
    pub asked: String,
    pub available_mib: usize,
    pub runtime_mib: usize,
    pub connections: usize,
    pub connections_mib: usize,
    /// Requests decoded and answered at once: one per worker and per lane.
    pub decoders: usize,
    pub decoding_mib: usize,
    pub audit_entries: usize,
    pub audit_mib: usize,
    /// ", and the cluster log (N MiB)" on a cluster node.
    pub cluster: String,
    pub ceiling_mib: usize,
    pub advice: String,
}

const MIB: usize = 1 << 20;

/// Divide the memory. A stand-alone enclave without `--memory-budget-mib` gets what is
/// left; a given budget, and a cluster node's (given or [`CLUSTER_DEFAULT_BUDGET_MIB`]),
/// must fit in it.
pub fn plan(i: &Inputs) -> Result<Plan, Box<DoesNotFit>> {
    let Inputs { available, budget_mib, max_connections, call_frame, audit_capacity, workers, cluster } = *i;
    let runtime = RUNTIME_RESERVE;
    let connections = max_connections.saturating_mul(per_connection(call_frame));
    // Requests decoded and served at once: one per worker, and on a stand-alone enclave
    // one per lane (a cluster node serves every call on its workers).
    let decoders = workers.saturating_add(if cluster.is_none() { LANES } else { 0 });
    let decoding = decoders.saturating_mul(per_worker(call_frame));
    let audit = audit_capacity.saturating_mul(AUDIT_ENTRY_MAX);
    let log = cluster.map_or(0, |c| c.snapshot_bytes.saturating_mul(2).saturating_add(c.max_message.saturating_mul(2)));
    let left = available
        .saturating_sub(runtime)
        .saturating_sub(connections)
        .saturating_sub(decoding)
        .saturating_sub(audit)
        .saturating_sub(log);
    // On a cluster node a serialized snapshot of the sessions comes on top of the budget:
    // budget + budget / 4 must fit in what is left.
    let ceiling = if cluster.is_some() { left / 5 * 4 } else { left };
    // Where the budget comes from: derived from what is left, given, or a node's default.
    let source = match (budget_mib, cluster) {
        (Some(mib), _) => Source::Given(mib),
        (None, Some(_)) => Source::NodeDefault,
        (None, None) => Source::Derived,
    };
    let budget = match source {
        Source::Given(mib) => mib.saturating_mul(MIB),
        Source::NodeDefault => CLUSTER_DEFAULT_BUDGET_MIB * MIB,
        Source::Derived => ceiling / 10 * DERIVED_TENTHS,
    };
    if budget > ceiling || budget < MIN_BUDGET {
        let more_memory = format!("at least {} MiB are needed: give the enclave more memory", MIN_BUDGET / MIB);
        let fit = |mib: usize, whose: &str| {
            let advice = if ceiling >= MIN_BUDGET {
                format!(
                    "give --memory-budget-mib at least {} and at most {}{}, or the enclave more memory",
                    MIN_BUDGET / MIB,
                    ceiling / MIB,
                    if cluster.is_some() { " (the same on every node)" } else { "" }
                )
            } else {
                more_memory.clone()
            };
            (format!("the memory budget of {mib} MiB{whose} does not fit"), advice)
        };
        let (asked, advice) = match source {
            Source::Derived => ("too little memory for sessions".to_string(), more_memory.clone()),
            Source::Given(mib) => fit(mib, ""),
            Source::NodeDefault => fit(CLUSTER_DEFAULT_BUDGET_MIB, " (a cluster node's default)"),
        };
        return Err(Box::new(DoesNotFit {
            asked,
            available_mib: available / MIB,
            runtime_mib: runtime / MIB,
            connections: max_connections,
            connections_mib: connections / MIB,
            decoders,
            decoding_mib: decoding.div_ceil(MIB),
            audit_entries: audit_capacity,
            audit_mib: audit / MIB,
            cluster: match cluster {
                Some(_) => format!(
                    ", the cluster log and messages ({} MiB) and a snapshot of the sessions (a quarter of the budget)",
                    log / MIB
                ),
                None => String::new(),
            },
            ceiling_mib: ceiling / MIB,
            advice,
        }));
    }
    let cluster = if cluster.is_some() { log + budget / 4 } else { 0 };
    Ok(Plan { available, runtime, connections, decoding, audit, cluster, budget, derived: source == Source::Derived })
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Plan { available, runtime, connections, decoding, audit, cluster, budget, derived } = *self;
        write!(
            f,
            "sessions' budget {} MiB ({}) of {} MiB available: runtime {} MiB, connections {} MiB, \
             decoding {} MiB, audit log {} MiB",
            budget / MIB,
            if derived { "nine tenths of what is left" } else { "as configured" },
            available / MIB,
            runtime / MIB,
            connections / MIB,
            decoding.div_ceil(MIB),
            audit / MIB,
        )?;
        if cluster > 0 {
            write!(f, ", cluster log, messages and snapshot {} MiB", cluster / MIB)?;
        }
        Ok(())
    }
}

/// `MemAvailable` from the text of `/proc/meminfo`, in bytes.
pub fn mem_available(meminfo: &str) -> Option<usize> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib = line.trim().strip_suffix("kB")?.trim().parse::<usize>().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
