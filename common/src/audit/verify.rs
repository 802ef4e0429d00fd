//! The pure verifier: is a log complete, every link intact, its head signed by the enclave?

use super::*;

/// What holds the hash an entry was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The next entry's `prev`.
    NextEntry,
    /// The signed head's `hash`.
    Head,
    /// The entry's own `prev` does not match the previous entry's hash (so this entry
    /// itself, not its predecessor, was changed).
    OwnPrev,
    /// Entry 0's `prev` is not the enclave's genesis hash.
    Genesis,
    /// The first entry does not extend the chain already verified (`from`).
    Anchor,
}

/// The first broken link of a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the head is for enclave {head}, not the expected {expected}")]
    WrongEnclave { expected: Address, head: Address },
    #[error("the head signature (head at seq {seq}) is invalid: {reason}")]
    BadHeadSignature { seq: u64, reason: String },
    #[error(
        "the head (at seq {seq}) is not signed by the enclave identity {expected}: it recovers to {recovered} \
         (a forged or altered head, or a head of another enclave)"
    )]
    HeadSigner { seq: u64, expected: Address, recovered: Address },
    #[error("entry {seq} is missing{}", tail_note(*.head_seq, *.seq))]
    Missing { seq: u64, head_seq: u64 },
    #[error("entry {seq} is out of order: position {position} holds entry {found}")]
    OutOfOrder { seq: u64, position: usize, found: u64 },
    #[error("entry {seq} appears more than once (again at position {position})")]
    Duplicate { seq: u64, position: usize },
    #[error("entry {seq} was changed: {}", changed_note(*.seq, *.link, .expected, .actual))]
    Changed { seq: u64, link: Link, expected: B256, actual: B256 },
    #[error("entry {seq} is malformed: {reason}")]
    Malformed { seq: u64, reason: String },
    #[error("entry {seq} follows the signed head (at seq {head_seq}): it is not covered by the head's signature")]
    BeyondHead { seq: u64, head_seq: u64 },
}

fn tail_note(head_seq: u64, seq: u64) -> String {
    if seq <= head_seq {
        format!(" (the signed head is at seq {head_seq})")
    } else {
        String::new()
    }
}

fn changed_note(seq: u64, link: Link, expected: &B256, actual: &B256) -> String {
    match link {
        Link::NextEntry => {
            format!("it hashes to {actual}, but entry {} records {expected} as its predecessor", seq + 1)
        }
        Link::Head => format!("it hashes to {actual}, but the signed head records {expected}"),
        Link::OwnPrev => format!(
            "its prev {actual} is not the hash of entry {} ({expected})",
            seq.checked_sub(1).map_or_else(|| "-".to_string(), |s| s.to_string())
        ),
        Link::Genesis => format!("its prev {actual} is not this enclave's genesis hash {expected}"),
        Link::Anchor => format!("its prev {actual} is not the hash of the verified entry before it ({expected})"),
    }
}

impl AuditError {
    /// The sequence number of the first broken link (the head's for head errors).
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditError::WrongEnclave { .. } => None,
            AuditError::BadHeadSignature { seq, .. }
            | AuditError::HeadSigner { seq, .. }
            | AuditError::Missing { seq, .. }
            | AuditError::OutOfOrder { seq, .. }
            | AuditError::Duplicate { seq, .. }
            | AuditError::Changed { seq, .. }
            | AuditError::Malformed { seq, .. }
            | AuditError::BeyondHead { seq, .. } => Some(*seq),
        }
    }

    /// A stable short name for the kind of break.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditError::WrongEnclave { .. } => "wrong_enclave",
            AuditError::BadHeadSignature { .. } => "bad_head_signature",
            AuditError::HeadSigner { .. } => "head_signer",
            AuditError::Missing { .. } => "missing",
            AuditError::OutOfOrder { .. } => "out_of_order",
            AuditError::Duplicate { .. } => "duplicate",
            AuditError::Changed { .. } => "changed",
            AuditError::Malformed { .. } => "malformed",
            AuditError::BeyondHead { .. } => "beyond_head",
        }
    }

    /// Whether the head itself (not the entries) is at fault.
    pub fn is_head_error(&self) -> bool {
        matches!(
            self,
            AuditError::WrongEnclave { .. } | AuditError::BadHeadSignature { .. } | AuditError::HeadSigner { .. }
        )
    }
}

/// What a verified log covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub enclave: Address,
    /// The first entry checked (0 for a whole log).
    pub first_seq: u64,
    /// How many entries were checked.
    pub entries: usize,
    /// The head: last entry covered, its hash, and when the enclave signed it.
    pub head_seq: u64,
    pub head_hash: B256,
    pub head_time: u64,
    /// How many entries the enclave's log held when it signed the head.
    pub log_end: u64,
    /// The log is complete: the head is at the log's end when signed.
    pub complete: bool,
    /// The verifier's nonce the head answers (zero: none).
    pub nonce: B256,
}

/// Check that `entries` form a complete chain up to `head`, and that `head` is signed by
/// `expected_enclave`.
///
/// `from`: `None` for a whole log (the first entry is seq 0 and links to the genesis hash);
/// `Some((seq, prev))` to check a continuation: the first entry is `seq` and its `prev` is
/// `prev` (the hash of the last entry already verified). A continuation may be empty when
/// the head is exactly at `(seq - 1, prev)`.
///
/// Checks, in order: the head's enclave and signature; then entry by entry, the first
/// broken link: a sequence number out of place (missing, out of order, duplicate), an entry
/// over its bounds, a `prev` that is not the previous entry's hash; finally that the last
/// entry is the head's (no entry missing at the end, none after it, same hash).
pub fn verify_chain(
    entries: &[AuditEntry],
    head: &AuditHead,
    expected_enclave: Address,
    from: Option<(u64, B256)>,
) -> Result<Summary, AuditError> {
    verify_chain_hashes(entries, head, expected_enclave, from).map(|v| v.summary)
}

/// Entries whose chain checked out against a signed head, each with its hash as the check
/// computed it. Only [`verify_chain_hashes`] makes one, so a store handed one holds entries
/// that verified, each paired with its own hash (no entry is hashed twice).
///
/// Its fields are private: outside this crate it cannot be built by hand.
///
/// ```compile_fail,E0451
/// use bridle_common::audit::{AuditEntry, AuditHead, Summary, Verified};
/// fn forge<'a>(entries: &'a [AuditEntry], head: &'a AuditHead, summary: Summary) -> Verified<'a> {
///     Verified { entries, hashes: Vec::new(), head, summary }
/// }
/// ```
#[derive(Debug)]
pub struct Verified<'a> {
    entries: &'a [AuditEntry],
    hashes: Vec<B256>,
    head: &'a AuditHead,
    summary: Summary,
}

impl<'a> Verified<'a> {
    /// The signed head they were checked against.
    pub fn head(&self) -> &'a AuditHead {
        self.head
    }

    /// What the check established.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Each entry with its own hash, in order.
    pub fn hashed(&self) -> impl ExactSizeIterator<Item = (&'a AuditEntry, &B256)> {
        self.entries.iter().zip(&self.hashes)
    }
}

/// [`verify_chain`], handing back what it checked as [`Verified`], each entry's hash as the
/// check computed it, for a store that keeps them.
pub fn verify_chain_hashes<'a>(
    entries: &'a [AuditEntry],
    head: &'a AuditHead,
    expected_enclave: Address,
    from: Option<(u64, B256)>,
) -> Result<Verified<'a>, AuditError> {
    if head.enclave != expected_enclave {
        return Err(AuditError::WrongEnclave { expected: expected_enclave, head: head.enclave });
    }
    match head.signer() {
        Err(reason) => return Err(AuditError::BadHeadSignature { seq: head.seq, reason }),
        Ok(a) if a != expected_enclave => {
            return Err(AuditError::HeadSigner { seq: head.seq, expected: expected_enclave, recovered: a })
        }
        Ok(_) => {}
    }
    if head.end <= head.seq {
        return Err(AuditError::BadHeadSignature {
            seq: head.seq,
            reason: format!("the head says the log held {} entries, yet covers entry {}", head.end, head.seq),
        });
    }

    let (start, anchor_link) = match from {
        None => (0, Link::Genesis),
        Some((s, _)) => (s, Link::Anchor),
    };
    let mut prev = match from {
        None => genesis(expected_enclave),
        Some((_, p)) => p,
    };
    let summary = |n: usize| Summary {
        enclave: expected_enclave,
        first_seq: start,
        entries: n,
        head_seq: head.seq,
        head_hash: head.hash,
        head_time: head.time,
        log_end: head.end,
        complete: head.at_end(),
        nonce: head.nonce,
    };

    if entries.is_empty() {
        // Only a continuation with nothing new: the head is the anchor.
        return match start.checked_sub(1) {
            Some(last) if from.is_some() && head.seq == last && head.hash == prev => {
                Ok(Verified { entries, hashes: Vec::new(), head, summary: summary(0) })
            }
            Some(last) if from.is_some() && head.seq == last => {
                Err(AuditError::Changed { seq: last, link: Link::Head, expected: head.hash, actual: prev })
            }
            _ => Err(AuditError::Missing { seq: start, head_seq: head.seq }),
        };
    }

    let hashes: Vec<B256> = entries.iter().map(AuditEntry::hash).collect();
    for (i, e) in entries.iter().enumerate() {
        let Some(expected_seq) = start.checked_add(i as u64) else {
            return Err(AuditError::Malformed { seq: e.seq, reason: "sequence number overflows".into() });
        };
        if e.seq != expected_seq {
            return Err(seq_error(entries, i, expected_seq, head.seq));
        }
        if e.seq > head.seq {
            return Err(AuditError::BeyondHead { seq: e.seq, head_seq: head.seq });
        }
        if let Err(reason) = e.check_bounds() {
            return Err(AuditError::Malformed { seq: e.seq, reason });
        }
        if e.prev != prev {
            if i == 0 {
                return Err(AuditError::Changed { seq: e.seq, link: anchor_link, expected: prev, actual: e.prev });
            }
            // Either the previous entry changed (its hash moved) or this entry's own `prev`
            // field did (then its own hash moved too, and its successor's link breaks).
            let this_intact = match entries.get(i + 1) {
                Some(next) => next.seq == e.seq + 1 && next.prev == hashes[i],
                None => head.seq == e.seq && head.hash == hashes[i],
            };
            return Err(if this_intact {
                AuditError::Changed { seq: e.seq - 1, link: Link::NextEntry, expected: e.prev, actual: prev }
            } else {
                AuditError::Changed { seq: e.seq, link: Link::OwnPrev, expected: prev, actual: e.prev }
            });
        }
        prev = hashes[i];
    }
    let last = entries[entries.len() - 1].seq;
    if last < head.seq {
        return Err(AuditError::Missing { seq: last + 1, head_seq: head.seq });
    }
    if prev != head.hash {
        return Err(AuditError::Changed { seq: last, link: Link::Head, expected: head.hash, actual: prev });
    }
    Ok(Verified { entries, hashes, head, summary: summary(entries.len()) })
}

/// Name the break at position `i`, where `expected` belongs.
fn seq_error(entries: &[AuditEntry], i: usize, expected: u64, head_seq: u64) -> AuditError {
    let found = entries[i].seq;
    if entries[..i].iter().any(|e| e.seq == found) {
        return AuditError::Duplicate { seq: found, position: i };
    }
    if entries[i + 1..].iter().any(|e| e.seq == expected) || found < expected {
        return AuditError::OutOfOrder { seq: expected, position: i, found };
    }
    AuditError::Missing { seq: expected, head_seq }
}
