//! The storage traits both backends implement, and the reading of their rows.
//!
//! The database is untrusted storage: whatever a row holds, reading it never panics. A
//! value that does not parse (an address, a hash, JSON, a negative count, an unknown
//! state) is an error naming the column, not a default.

use super::audit_prune::Pruned;
use super::{EndedSession, Event, PolicyRecord, StoredSession, StoredState, StoredSweepTx};
use alloy_primitives::{Address, Bytes, B256};
use anyhow::{anyhow, Context as _};
use bridle_common::audit::{AuditEntry, AuditHead, Verified};
use std::str::FromStr;

/// Sessions, policies, events and sweeps.
///
/// Implementations are synchronous: the host calls them from `spawn_blocking` (owner
/// actions, reads) and from the event writer thread, never from the signing path.
/// They must allow other hosts to write the same database when [`Backend::shared`] says so:
/// ids come from the database, and no method assumes it saw every write.
pub trait Backend: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Whether other hosts may write this database too (PostgreSQL). A SQLite file belongs
    /// to one host.
    fn shared(&self) -> bool;
    /// Record a session (or overwrite one with the same address) and its first policy.
    fn insert_session(&self, session: &SessionRow, policy: &PolicyRow) -> anyhow::Result<()>;
    /// Record an accepted policy update.
    fn update_policy(&self, valid_until: Option<i64>, policy: &PolicyRow) -> anyhow::Result<()>;
    /// Mark active sessions revoked; returns those that changed.
    fn mark_revoked(&self, sessions: &[Address], now: i64) -> anyhow::Result<Vec<Address>>;
    /// Clear a `lost` mark the enclave's own word contradicts (it holds the session): the
    /// session is `state` again (`active` or `revoked`). Whether it was marked lost.
    fn unmark_lost(&self, session: &Address, state: StoredState, now: i64) -> anyhow::Result<bool>;
    /// The enclave behind host `host` now has identity `current`; `previous` is the one
    /// this process saw before, if any. Marks lost the sessions of every identity the host
    /// fronted before (recorded in `host_enclaves`), and, when the database is not shared,
    /// of every identity but `current`. Returns the identities retired and the count.
    fn enclave_seen(
        &self,
        host: &str,
        previous: Option<Address>,
        current: &Address,
        now: i64,
    ) -> anyhow::Result<(Vec<Address>, usize)>;
    fn session(&self, session: &Address) -> anyhow::Result<Option<StoredSession>>;
    /// An owner's stored sessions by (creation time, address), those after `after` when
    /// given, at most `limit` (one page: an owner may hold any number).
    fn sessions_by_owner(
        &self,
        owner: &Address,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<StoredSession>>;
    /// (session, state, enclave) of every stored session: the in-memory index at start.
    fn session_states(&self) -> anyhow::Result<Vec<(Address, StoredState, Address)>>;
    /// A session's policy records with row ids above `after`, oldest first, at most
    /// `limit`, each with its id (one page: an owner's updates are not bounded in number).
    fn policies(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, PolicyRecord)>>;
    /// The latest record of a session's policy with this hash (one row read, however long
    /// the history).
    fn policy_with_hash(&self, session: &Address, hash: &B256) -> anyhow::Result<Option<PolicyRecord>>;
    /// The latest `limit` events, newest first; only those of `session` when given.
    fn events(&self, session: Option<&Address>, limit: usize) -> anyhow::Result<Vec<Event>>;
    /// Store a batch of events (one transaction).
    fn write_events(&self, events: &[Event]) -> anyhow::Result<()>;
    fn insert_sweeps(&self, txs: &[StoredSweepTx]) -> anyhow::Result<()>;
    /// A session's signed revocations with row ids above `after`, oldest first, at most
    /// `limit`, each with its id.
    fn sweeps(&self, session: &Address, after: u64, limit: usize) -> anyhow::Result<Vec<(u64, StoredSweepTx)>>;
    /// The latest [`SWEEPS_AT_MAX`] of a session's signed revocations on `chain` at `nonce`,
    /// newest first (what the sweeper follows).
    fn sweeps_at(&self, session: &Address, chain: u64, nonce: u64) -> anyhow::Result<Vec<StoredSweepTx>>;
    /// Sessions that ended before `before` (seconds): revoked or lost then, or valid until
    /// then. By (end, address), those after `after` when given, at most `limit` (one page,
    /// read through an index of when each session ended).
    fn ended_sessions(
        &self,
        before: i64,
        after: Option<(u64, Address)>,
        limit: usize,
    ) -> anyhow::Result<Vec<EndedSession>>;
    /// Delete `sessions` — those that still ended before `before` — with their policy
    /// records and signed revocations, in one transaction; returns those deleted. Events
    /// and the audit log are not touched.
    fn forget_sessions(&self, sessions: &[Address], before: i64) -> anyhow::Result<Vec<Address>>;
    /// Among the `batch` events with ids above `after` (a window, by id), delete those stored
    /// before `before_ms` or beyond the newest `keep` (by id; 0 keeps any number). Returns how
    /// many it deleted and the window's last id (`None`: no event above `after`). Each call
    /// reads one window, so it costs the same however large the table.
    fn prune_events(&self, before_ms: u64, keep: u64, after: u64, batch: usize)
        -> anyhow::Result<(usize, Option<u64>)>;
}

/// The enclave's signed audit log, as stored: entries keyed by (enclave identity, seq).
pub trait AuditBackend: Send + Sync {
    /// The last stored entry of `enclave` (from the entries themselves, whoever stored
    /// them) and the identity public key known for it.
    fn tip(&self, enclave: &Address) -> anyhow::Result<Option<Tip>>;
    /// The hash of the stored entry `seq` of `enclave`.
    fn entry_hash(&self, enclave: &Address, seq: u64) -> anyhow::Result<Option<B256>>;
    /// Store a verified batch in one transaction; returns how many entries were new. An
    /// entry already stored under the same (enclave, seq) is skipped when identical and
    /// refuses the whole batch when not. The head is replaced only by one at the same or a
    /// later seq.
    fn store_batch(&self, batch: &Batch<'_>) -> Result<usize, BatchError>;
    /// The enclave with the most recently updated head.
    fn latest_enclave(&self) -> anyhow::Result<Option<Address>>;
    /// The latest stored head of `enclave` and its identity public key.
    fn head(&self, enclave: &Address) -> anyhow::Result<(Option<AuditHead>, Option<Bytes>)>;
    /// Stored entries from `since`, at most `limit`, by seq.
    fn entries(&self, enclave: &Address, since: u64, limit: usize) -> anyhow::Result<Vec<AuditEntry>>;
    /// The stored JSON text of the entries from `from` through `through`, by seq, at most
    /// `limit` (the export reads its entries page by page: the audit connection is held
    /// for one page, never while the export is built).
    fn entry_texts(
        &self,
        enclave: &Address,
        from: u64,
        through: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<(u64, String)>>;
    /// Recorded gaps: entries the enclave dropped before a host stored them.
    fn gaps(&self, enclave: &Address) -> anyhow::Result<Vec<(u64, u64)>>;
    /// The enclaves whose logs are stored.
    fn audit_enclaves(&self) -> anyhow::Result<Vec<Address>>;
    /// Delete, in one transaction, the oldest of `enclave`'s entries logged before
    /// `before` — a prefix of at most `limit` entries by `seq`, never the last one stored —
    /// and record how far its chain is pruned ([`super::audit_prune`]).
    fn prune_audit(&self, enclave: &Address, before: u64, limit: usize, now: u64) -> anyhow::Result<Pruned>;
    /// The last `seq` of `enclave`'s pruned prefix (`None`: nothing pruned).
    fn pruned_through(&self, enclave: &Address) -> anyhow::Result<Option<u64>>;
}

/// The stored chain of one enclave: its tip and what the host knows of its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub seq: u64,
    pub hash: B256,
    pub identity_public_key: Option<Bytes>,
}

/// A verified batch to store.
#[derive(Debug)]
pub struct Batch<'a> {
    pub public_key: Option<&'a Bytes>,
    /// The entries, each with its hash as the chain check computed it, and the signed head
    /// they were checked against: only the check makes one ([`verify_chain_hashes`]), so a
    /// backend cannot be handed an entry with a hash not its own, nor a head it did not
    /// verify against.
    ///
    /// [`verify_chain_hashes`]: bridle_common::audit::verify_chain_hashes
    pub chain: &'a Verified<'a>,
    pub gap: Option<(u64, u64)>,
    pub now: u64,
}

impl Batch<'_> {
    /// The enclave whose signed head the chain was checked against.
    pub fn enclave(&self) -> Address {
        self.chain.summary().enclave
    }
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another entry is already stored under this (enclave, seq): two histories signed by
    /// the same identity, or tampered storage. Nothing of the batch is stored.
    #[error(
        "audit entry conflict for enclave {enclave} seq {seq}: the database holds an entry with hash {stored}, \
         the batch one with hash {offered}; batch refused"
    )]
    Conflict { enclave: Address, seq: u64, stored: String, offered: B256 },
    #[error("{0:#}")]
    Storage(#[from] anyhow::Error),
}

// ---- writing -----------------------------------------------------------------------------

pub(crate) fn a(addr: &Address) -> String {
    format!("{addr:#x}")
}

pub(crate) fn h(hash: &B256) -> String {
    format!("{hash:#x}")
}

/// A u64 as SQL's signed 64-bit integer (saturating: times and counts never get there).
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A session's row, encoded.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub session: String,
    pub owner: String,
    pub agent: String,
    pub enclave: String,
    pub policy_hash: String,
    pub policy_json: String,
    pub created_at: i64,
    pub valid_until: i64,
    pub binding: String,
    pub now: i64,
}

/// A policy history row, encoded.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub session: String,
    pub policy_hash: String,
    pub policy_json: String,
    pub owner: String,
    pub nonce: String,
    pub signature: String,
    pub received_at: i64,
}

// ---- reading -----------------------------------------------------------------------------

/// The cells of one result row, whatever the driver.
pub(crate) trait Cells {
    fn text(&self, i: usize) -> anyhow::Result<String>;
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<String>>;
    fn int(&self, i: usize) -> anyhow::Result<i64>;
}

pub(crate) fn uint(v: i64, what: &str) -> anyhow::Result<u64> {
    u64::try_from(v).map_err(|_| anyhow!("stored {what} is negative ({v})"))
}

pub(crate) fn addr(s: &str, what: &str) -> anyhow::Result<Address> {
    Address::from_str(s).map_err(|e| anyhow!("stored {what} `{}` is not an address: {e}", clip(s)))
}

pub(crate) fn hash(s: &str, what: &str) -> anyhow::Result<B256> {
    B256::from_str(s).map_err(|e| anyhow!("stored {what} `{}` is not a 32-byte hash: {e}", clip(s)))
}

pub(crate) fn bytes(s: &str, what: &str) -> anyhow::Result<Bytes> {
    Bytes::from_str(s).map_err(|e| anyhow!("stored {what} is not hex: {e}"))
}

pub(crate) fn json(s: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(s).with_context(|| format!("stored {what} is not JSON"))
}

fn clip(s: &str) -> String {
    bridle_common::audit::truncate(s, 80)
}

impl StoredState {
    pub(crate) fn parse(s: &str) -> anyhow::Result<StoredState> {
        match s {
            "active" => Ok(StoredState::Active),
            "revoked" => Ok(StoredState::Revoked),
            "lost" => Ok(StoredState::Lost),
            other => Err(anyhow!("stored session state `{}` is not active, revoked or lost", clip(other))),
        }
    }
}

/// Columns read by [`session_from`], in order.
pub(crate) const SESSION_COLUMNS: &str =
    "session, owner, agent, enclave, policy_hash, state, created_at, valid_until, policy_json, binding";

pub(crate) fn session_from(r: &impl Cells) -> anyhow::Result<StoredSession> {
    Ok(StoredSession {
        session: addr(&r.text(0)?, "session")?,
        owner: addr(&r.text(1)?, "owner")?,
        agent: addr(&r.text(2)?, "agent")?,
        enclave: addr(&r.text(3)?, "enclave")?,
        policy_hash: hash(&r.text(4)?, "policy hash")?,
        state: StoredState::parse(&r.text(5)?)?,
        created_at: uint(r.int(6)?, "created_at")?,
        valid_until: uint(r.int(7)?, "valid_until")?,
        policy: json(&r.text(8)?, "policy")?,
        binding: json(&r.text(9)?, "binding")?,
    })
}

/// (session, state, enclave).
pub(crate) fn state_from(r: &impl Cells) -> anyhow::Result<(Address, StoredState, Address)> {
    Ok((addr(&r.text(0)?, "session")?, StoredState::parse(&r.text(1)?)?, addr(&r.text(2)?, "enclave")?))
}

/// Columns read by [`policy_from`], in order.
pub(crate) const POLICY_COLUMNS: &str = "session, policy_hash, policy_json, owner, nonce, signature, received_at";

pub(crate) fn policy_from(r: &impl Cells) -> anyhow::Result<PolicyRecord> {
    let nonce = r.text(4)?;
    Ok(PolicyRecord {
        session: addr(&r.text(0)?, "session")?,
        policy_hash: hash(&r.text(1)?, "policy hash")?,
        policy: json(&r.text(2)?, "policy")?,
        owner: addr(&r.text(3)?, "owner")?,
        nonce: nonce.parse().map_err(|_| anyhow!("stored owner nonce `{}` is not a u64", clip(&nonce)))?,
        signature: bytes(&r.text(5)?, "owner signature")?,
        received_at: uint(r.int(6)?, "received_at")?,
    })
}

/// At most this many revocations at one (session, chain, nonce) are read back
/// ([`Backend::sweeps_at`]): every revocation signed is a write the enclave's allowance
/// registry counts and never forgets, and it holds at most this many, so a session's
/// revocations at one nonce are all read (a review of 2026-12-05: 256 could leave out the
/// host's own first sweep behind a stranger's re-signs).
pub const SWEEPS_AT_MAX: usize = bridle_common::allowance::MAX_WRITES;

/// `keep` as the database compares it (`id <= MAX(id) - keep`): 0, no cap, as a distance no
/// id reaches.
pub(crate) fn keep_param(keep: u64) -> i64 {
    if keep == 0 {
        i64::MAX
    } else {
        int(keep)
    }
}

/// A row id read back with a page's rows.
pub(crate) fn row_id(r: &impl Cells, i: usize) -> anyhow::Result<u64> {
    uint(r.int(i)?, "row id")
}

/// Columns read by [`event_from`], in order.
pub(crate) const EVENT_COLUMNS: &str = "time_ms, call, session, outcome, code, detail";

pub(crate) fn event_from(r: &impl Cells) -> anyhow::Result<Event> {
    Ok(Event {
        time_ms: uint(r.int(0)?, "event time")?,
        call: r.text(1)?,
        session: r.opt_text(2)?.map(|s| addr(&s, "event session")).transpose()?,
        outcome: r.text(3)?,
        code: r.opt_text(4)?,
        detail: r.opt_text(5)?,
    })
}

/// Columns read by [`sweep_from`], in order.
pub(crate) const SWEEP_COLUMNS: &str = "session, chain_id, nonce, token, spender, hash, raw, signed_at";

pub(crate) fn sweep_from(r: &impl Cells) -> anyhow::Result<StoredSweepTx> {
    Ok(StoredSweepTx {
        session: addr(&r.text(0)?, "session")?,
        chain_id: uint(r.int(1)?, "chain id")?,
        nonce: uint(r.int(2)?, "sweep nonce")?,
        token: addr(&r.text(3)?, "token")?,
        spender: addr(&r.text(4)?, "spender")?,
        hash: hash(&r.text(5)?, "transaction hash")?,
        raw_transaction: bytes(&r.text(6)?, "raw transaction")?,
        signed_at: uint(r.int(7)?, "signed_at")?,
    })
}

/// (seq, hash, identity public key): a [`Tip`].
pub(crate) fn tip_from(r: &impl Cells) -> anyhow::Result<Tip> {
    Ok(Tip {
        seq: uint(r.int(0)?, "audit seq")?,
        hash: hash(&r.text(1)?, "audit entry hash")?,
        identity_public_key: r.opt_text(2)?.map(|p| bytes(&p, "identity public key")).transpose()?,
    })
}

/// (head JSON, identity public key).
pub(crate) fn head_from(r: &impl Cells) -> anyhow::Result<(Option<AuditHead>, Option<Bytes>)> {
    let head: AuditHead = serde_json::from_str(&r.text(0)?).context("stored audit head is not a head")?;
    let pk = r.opt_text(1)?.map(|p| bytes(&p, "identity public key")).transpose()?;
    Ok((Some(head), pk))
}

/// An entry from its stored JSON, checked against the row's seq.
pub(crate) fn entry_from(seq: i64, text: &str) -> anyhow::Result<AuditEntry> {
    let e: AuditEntry =
        serde_json::from_str(text).with_context(|| format!("stored audit entry {seq} is not an entry"))?;
    if int(e.seq) != seq {
        return Err(anyhow!("stored audit entry under seq {seq} says seq {}", e.seq));
    }
    Ok(e)
}

/// (from_seq, to_seq).
pub(crate) fn gap_from(r: &impl Cells) -> anyhow::Result<(u64, u64)> {
    Ok((uint(r.int(0)?, "gap start")?, uint(r.int(1)?, "gap end")?))
}

/// What an audit entry row holds besides its key.
pub(crate) struct EntryRow {
    pub seq: i64,
    pub time: i64,
    pub session: String,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub hash: String,
    pub json: String,
}

impl EntryRow {
    /// The row of `e`, whose hash is `hash` (computed by the chain check).
    pub(crate) fn of(e: &AuditEntry, hash: &B256) -> anyhow::Result<EntryRow> {
        Ok(EntryRow {
            seq: int(e.seq),
            time: int(e.time),
            session: a(&e.session),
            kind: e.kind.as_str(),
            code: e.code.map(|c| c.as_str()),
            hash: h(hash),
            json: serde_json::to_string(e)?,
        })
    }
}

/// The conflict error when the stored hash under a key differs from the batch's.
pub(crate) fn check_same(
    enclave: &Address,
    (e, hash): (&AuditEntry, &B256),
    row: &EntryRow,
    stored: Option<String>,
) -> Result<(), BatchError> {
    match stored {
        Some(s) if s == row.hash => Ok(()),
        Some(s) => Err(BatchError::Conflict { enclave: *enclave, seq: e.seq, stored: clip(&s), offered: *hash }),
        // Not inserted yet not there: someone deleted it in between. Retry later.
        None => Err(BatchError::Storage(anyhow!("audit entry {} of {enclave} vanished during the insert", e.seq))),
    }
}
