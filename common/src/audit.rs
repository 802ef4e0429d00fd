//! The signed audit log (R-AUD-1): entry and head types, their canonical hashes, and a
//! pure verifier.
//!
//! Every decision the enclave takes is appended to a hash chain: each [`AuditEntry`]
//! records the hash of the one before it (`prev`), the first one the *genesis hash* of its
//! enclave. The enclave identity key signs the chain's head ([`AuditHead`]) when the log is
//! read. The host stores the log; anyone holding the attested identity key (an attestation
//! document's `public_key`) checks with [`verify_chain`] that the log is complete — no entry
//! missing, changed, duplicated or reordered — up to the signed head.
//!
//! # Canonical encodings (version 1)
//!
//! Hashes are keccak256 over fixed-width fields and length-prefixed strings — never serde
//! JSON — so anyone can recompute them. Integers are big-endian; `str(s)` is the byte
//! length of `s` as a `u32` (big-endian) followed by its UTF-8 bytes; `opt(x)` is the byte
//! `0x00` for none, or `0x01` followed by `x`.
//!
//! ```text
//! genesis(enclave) = keccak256("bridle/audit-genesis/v1" ‖ enclave[20])
//!
//! entry.hash()     = keccak256("bridle/audit-entry/v1"
//!                              ‖ seq: u64 ‖ time: u64 ‖ session[20]
//!                              ‖ str(kind)            // snake_case, e.g. "allowed"
//!                              ‖ opt(str(code))       // snake_case error code, e.g. "spend_cap"
//!                              ‖ opt(str(rule))
//!                              ‖ request_digest[32]
//!                              ‖ str(detail)
//!                              ‖ prev[32])
//!
//! head.digest()    = keccak256("bridle/audit-head/v1" ‖ seq: u64 ‖ hash[32] ‖ time: u64 ‖ enclave[20])
//! ```
//!
//! `head.signature` is the identity key's 65-byte `r ‖ s ‖ v` signature over `head.digest()`
//! (the raw digest, no EIP-191 prefix). The head covers the chain up to and including entry
//! `head.seq`, whose hash is `head.hash`; `head.time` is when the enclave signed it.
//!
//! The domain tags differ from each other and from every other digest the identity key
//! signs (`bridle/session-binding/v1`), so no signature can be replayed across them.

use crate::error::ErrorCode;
use alloy_primitives::{keccak256, Address, Bytes, Keccak256, Signature, B256};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain tag of entry hashes.
pub const ENTRY_TAG: &[u8] = b"bridle/audit-entry/v1";
/// Domain tag of the head digest.
pub const HEAD_TAG: &[u8] = b"bridle/audit-head/v1";
/// Domain tag of the genesis hash.
pub const GENESIS_TAG: &[u8] = b"bridle/audit-genesis/v1";
/// The longest `detail`, bytes (UTF-8).
pub const MAX_DETAIL: usize = 256;
/// The longest `rule`, bytes (UTF-8).
pub const MAX_RULE: usize = 128;
/// The most entries one `audit` reply carries (the reply must fit in a 1 MiB frame).
pub const MAX_REPLY_ENTRIES: usize = 1000;
/// The `format` of an export file.
pub const EXPORT_FORMAT: &str = "bridle-audit-export/v1";

/// What an entry records. The wire name (snake_case) is part of the entry hash: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The enclave started (always entry 0 of a log): the chain never is empty.
    Started,
    /// A signature was produced.
    Allowed,
    /// A request was refused (`code`, `rule` say why); also a refused owner call.
    Denied,
    /// A request over the escalation threshold is held for the owner's approval.
    Pending,
    /// The owner approved a pending request's digest.
    Approved,
    /// A pending request expired unapproved.
    ExpiredPending,
    /// The owner revoked a session.
    Revoked,
    /// The owner's revoke-all revoked this session.
    RevokedAll,
    /// A session was created; `request_digest` is its policy hash.
    SessionCreated,
    /// A session's policy was replaced; `request_digest` is the new policy hash.
    PolicyUpdated,
    /// The trip-wire suspended a session (`detail` says why).
    Suspended,
    /// A revocation-sweep transaction was signed (`request_digest` is its signing hash).
    Sweep,
}

impl Decision {
    /// All kinds, in declaration order.
    pub const ALL: [Decision; 12] = [
        Decision::Started,
        Decision::Allowed,
        Decision::Denied,
        Decision::Pending,
        Decision::Approved,
        Decision::ExpiredPending,
        Decision::Revoked,
        Decision::RevokedAll,
        Decision::SessionCreated,
        Decision::PolicyUpdated,
        Decision::Suspended,
        Decision::Sweep,
    ];

    /// The stable wire name, as hashed.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Started => "started",
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
            Decision::Pending => "pending",
            Decision::Approved => "approved",
            Decision::ExpiredPending => "expired_pending",
            Decision::Revoked => "revoked",
            Decision::RevokedAll => "revoked_all",
            Decision::SessionCreated => "session_created",
            Decision::PolicyUpdated => "policy_updated",
            Decision::Suspended => "suspended",
            Decision::Sweep => "sweep",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// 0, 1, 2, … without gaps, per enclave identity.
    pub seq: u64,
    /// Enclave time, unix seconds.
    pub time: u64,
    /// The session; zero for enclave-wide events.
    pub session: Address,
    pub kind: Decision,
    /// The refusal's code, for `denied` (and `pending`).
    pub code: Option<ErrorCode>,
    /// The policy rule that failed, when one did.
    pub rule: Option<String>,
    /// The digest signed or refused (`Signed.digest`); the policy hash for policy events;
    /// zero when there is none.
    pub request_digest: B256,
    /// A short human note, at most [`MAX_DETAIL`] bytes.
    pub detail: String,
    /// The previous entry's hash; for entry 0, the genesis hash of the enclave.
    pub prev: B256,
}

fn put_str(h: &mut Keccak256, s: &str) {
    // Strings are bounded far below 4 GiB; saturate rather than wrap for hostile input.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt_str(h: &mut Keccak256, s: Option<&str>) {
    match s {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            put_str(h, s);
        }
    }
}

/// The genesis hash: entry 0's `prev` for the enclave with identity `enclave`.
pub fn genesis(enclave: Address) -> B256 {
    let mut buf = Vec::with_capacity(GENESIS_TAG.len() + 20);
    buf.extend_from_slice(GENESIS_TAG);
    buf.extend_from_slice(enclave.as_slice());
    keccak256(buf)
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl AuditEntry {
    /// The canonical hash (see the module docs).
    pub fn hash(&self) -> B256 {
        let mut h = Keccak256::new();
        h.update(ENTRY_TAG);
        h.update(self.seq.to_be_bytes());
        h.update(self.time.to_be_bytes());
        h.update(self.session.as_slice());
        put_str(&mut h, self.kind.as_str());
        put_opt_str(&mut h, self.code.map(ErrorCode::as_str));
        put_opt_str(&mut h, self.rule.as_deref());
        h.update(self.request_digest.as_slice());
        put_str(&mut h, &self.detail);
        h.update(self.prev.as_slice());
        h.finalize()
    }

    /// The bounds every entry the enclave writes keeps.
    pub fn check_bounds(&self) -> Result<(), String> {
        if self.detail.len() > MAX_DETAIL {
            return Err(format!("detail of {} bytes (at most {MAX_DETAIL})", self.detail.len()));
        }
        if let Some(r) = &self.rule {
            if r.len() > MAX_RULE {
                return Err(format!("rule of {} bytes (at most {MAX_RULE})", r.len()));
            }
        }
        Ok(())
    }
}

/// The chain's head, signed by the enclave identity key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// The last entry covered.
    pub seq: u64,
    /// That entry's hash.
    pub hash: B256,
    /// When the enclave signed this head (enclave time, unix seconds).
    pub time: u64,
    /// The enclave identity address.
    pub enclave: Address,
    /// 65-byte `r ‖ s ‖ v` over [`AuditHead::digest`].
    pub signature: Bytes,
}

impl AuditHead {
    /// What the identity key signs.
    pub fn digest_of(seq: u64, hash: &B256, time: u64, enclave: &Address) -> B256 {
        let mut buf = Vec::with_capacity(HEAD_TAG.len() + 68);
        buf.extend_from_slice(HEAD_TAG);
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(hash.as_slice());
        buf.extend_from_slice(&time.to_be_bytes());
        buf.extend_from_slice(enclave.as_slice());
        keccak256(buf)
    }

    pub fn digest(&self) -> B256 {
        Self::digest_of(self.seq, &self.hash, self.time, &self.enclave)
    }

    /// Build a head, signing its digest with `sign` (the enclave's identity key).
    pub fn signed<E>(
        seq: u64,
        hash: B256,
        time: u64,
        enclave: Address,
        sign: impl FnOnce(&B256) -> Result<Signature, E>,
    ) -> Result<AuditHead, E> {
        let sig = sign(&Self::digest_of(seq, &hash, time, &enclave))?;
        Ok(AuditHead { seq, hash, time, enclave, signature: Bytes::copy_from_slice(&sig.as_bytes()) })
    }

    /// The address the signature recovers to.
    pub fn signer(&self) -> Result<Address, String> {
        let sig = Signature::from_raw(&self.signature)
            .map_err(|e| format!("not a 65-byte r ‖ s ‖ v signature ({} bytes): {e}", self.signature.len()))?;
        sig.recover_address_from_prehash(&self.digest()).map_err(|e| format!("signature does not recover: {e}"))
    }
}

/// The reply to `audit(since)`: entries `since ..` (at most [`MAX_REPLY_ENTRIES`]) and a
/// head signed at the last of them (or, with no entries, at the log's current end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditReply {
    pub entries: Vec<AuditEntry>,
    pub head: AuditHead,
    /// More entries follow the last one returned: ask again from `head.seq + 1`.
    pub more: bool,
}

/// An exported log: what `GET /v1/audit/export` returns and `bridle verify audit` reads.
/// Only `entries` and `head` are trusted after verification; the rest are hints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExport {
    #[serde(default = "export_format")]
    pub format: String,
    /// The enclave identity address the host stored this log under.
    pub enclave: Address,
    /// The identity public key (SEC1) as the host learned it from the enclave's status.
    #[serde(default)]
    pub identity_public_key: Option<Bytes>,
    pub entries: Vec<AuditEntry>,
    pub head: AuditHead,
}

fn export_format() -> String {
    EXPORT_FORMAT.to_string()
}

/// Appends entries to a chain: the pure part of the enclave's log (sequence and links).
#[derive(Debug, Clone)]
pub struct ChainWriter {
    enclave: Address,
    next_seq: u64,
    last_hash: B256,
}

/// An entry's content, before the chain gives it a sequence number and a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub session: Address,
    pub kind: Decision,
    pub code: Option<ErrorCode>,
    pub rule: Option<String>,
    pub request_digest: B256,
    pub detail: String,
}

impl Record {
    /// A record with no code or rule; `detail` is cut to [`MAX_DETAIL`].
    pub fn new(kind: Decision, session: Address, request_digest: B256, detail: &str) -> Record {
        Record { session, kind, code: None, rule: None, request_digest, detail: truncate(detail, MAX_DETAIL) }
    }

    /// With a code and rule (`rule` cut to [`MAX_RULE`]).
    pub fn with_code(mut self, code: ErrorCode, rule: Option<&str>) -> Record {
        self.code = Some(code);
        self.rule = rule.map(|r| truncate(r, MAX_RULE));
        self
    }
}

impl ChainWriter {
    /// A new chain for `enclave`.
    pub fn new(enclave: Address) -> ChainWriter {
        ChainWriter { enclave, next_seq: 0, last_hash: genesis(enclave) }
    }

    pub fn enclave(&self) -> Address {
        self.enclave
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last entry's hash (the genesis hash before the first).
    pub fn last_hash(&self) -> B256 {
        self.last_hash
    }

    /// Link `rec` at `time` into the chain. Bounds are enforced here as well.
    pub fn append(&mut self, time: u64, rec: Record) -> AuditEntry {
        let detail = if rec.detail.len() > MAX_DETAIL { truncate(&rec.detail, MAX_DETAIL) } else { rec.detail };
        let rule = match rec.rule {
            Some(r) if r.len() > MAX_RULE => Some(truncate(&r, MAX_RULE)),
            r => r,
        };
        let e = AuditEntry {
            seq: self.next_seq,
            time,
            session: rec.session,
            kind: rec.kind,
            code: rec.code,
            rule,
            request_digest: rec.request_digest,
            detail,
            prev: self.last_hash,
        };
        self.last_hash = e.hash();
        self.next_seq += 1;
        e
    }
}

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
    };

    if entries.is_empty() {
        // Only a continuation with nothing new: the head is the anchor.
        return match start.checked_sub(1) {
            Some(last) if from.is_some() && head.seq == last && head.hash == prev => Ok(summary(0)),
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
    Ok(summary(entries.len()))
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

/// Test and tooling support: a chain with its own key, signing heads like an enclave does.
/// Its keys come from fixed seeds: it never is an enclave identity.
#[doc(hidden)]
pub mod testing {
    use super::*;
    use k256::ecdsa::SigningKey;

    pub struct TestChain {
        key: SigningKey,
        pub writer: ChainWriter,
        pub entries: Vec<AuditEntry>,
    }

    impl TestChain {
        /// A chain whose identity key is derived from `seed` (any non-zero byte).
        pub fn new(seed: u8) -> TestChain {
            let key = SigningKey::from_bytes(&[seed.max(1); 32].into()).expect("valid test key");
            let enclave = Address::from_public_key(key.verifying_key());
            TestChain { key, writer: ChainWriter::new(enclave), entries: Vec::new() }
        }

        pub fn enclave(&self) -> Address {
            self.writer.enclave()
        }

        /// The identity public key, SEC1 compressed.
        pub fn public_key(&self) -> Vec<u8> {
            self.key.verifying_key().to_encoded_point(true).as_bytes().to_vec()
        }

        pub fn push(&mut self, time: u64, rec: Record) -> &AuditEntry {
            let e = self.writer.append(time, rec);
            self.entries.push(e);
            self.entries.last().expect("just pushed")
        }

        /// `n` assorted entries.
        pub fn fill(&mut self, n: usize) {
            for i in 0..n {
                let s = Address::with_last_byte((i % 3) as u8 + 1);
                let rec = match i % 4 {
                    0 => Record::new(Decision::Allowed, s, B256::with_last_byte(i as u8), "transaction"),
                    1 => Record::new(Decision::Denied, s, B256::with_last_byte(i as u8), "spend cap")
                        .with_code(ErrorCode::SpendCap, Some("limits[0]")),
                    2 => Record::new(Decision::PolicyUpdated, s, B256::repeat_byte(7), "owner"),
                    _ => Record::new(Decision::Revoked, s, B256::ZERO, "owner"),
                };
                self.push(1_700_000_000 + i as u64, rec);
            }
        }

        pub fn sign_digest(&self, d: &B256) -> Signature {
            let (sig, recid) = self.key.sign_prehash_recoverable(d.as_slice()).expect("sign");
            Signature::from_signature_and_parity(sig, recid.is_y_odd())
        }

        /// A head over the chain as it is now.
        pub fn head(&self, time: u64) -> AuditHead {
            let seq = self.writer.next_seq().checked_sub(1).expect("a head needs an entry");
            AuditHead::signed(seq, self.writer.last_hash(), time, self.enclave(), |d| {
                Ok::<_, std::convert::Infallible>(self.sign_digest(d))
            })
            .expect("infallible")
        }

        /// A head at entry `seq`.
        pub fn head_at(&self, seq: u64, time: u64) -> AuditHead {
            let hash = self.entries[seq as usize].hash();
            AuditHead::signed(seq, hash, time, self.enclave(), |d| {
                Ok::<_, std::convert::Infallible>(self.sign_digest(d))
            })
            .expect("infallible")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestChain;
    use super::*;

    fn chain(n: usize) -> (TestChain, AuditHead) {
        let mut c = TestChain::new(9);
        c.push(1_700_000_000, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "bridle-enclave started"));
        c.fill(n - 1);
        let h = c.head(1_700_000_100);
        (c, h)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (c, head) = chain(10);
        let s = verify_chain(&c.entries, &head, c.enclave(), None).unwrap();
        assert_eq!((s.first_seq, s.entries, s.head_seq), (0, 10, 9));
        assert_eq!(s.head_hash, c.entries[9].hash());
        // A single entry is a chain too.
        let (c1, h1) = chain(1);
        verify_chain(&c1.entries, &h1, c1.enclave(), None).unwrap();
        // And the log survives a JSON round trip unchanged.
        let json = serde_json::to_string(&c.entries).unwrap();
        let back: Vec<AuditEntry> = serde_json::from_str(&json).unwrap();
        verify_chain(&back, &head, c.enclave(), None).unwrap();
    }

    #[test]
    fn continuations_verify_from_an_anchor() {
        let (c, head) = chain(10);
        let anchor = (4, c.entries[3].hash());
        let s = verify_chain(&c.entries[4..], &head, c.enclave(), Some(anchor)).unwrap();
        assert_eq!((s.first_seq, s.entries), (4, 6));
        // Nothing new: the head is the anchor.
        let h3 = c.head_at(3, 1);
        verify_chain(&[], &h3, c.enclave(), Some(anchor)).unwrap();
        // A continuation that does not extend the anchor.
        let e = verify_chain(&c.entries[4..], &head, c.enclave(), Some((4, B256::repeat_byte(1)))).unwrap_err();
        assert!(matches!(e, AuditError::Changed { seq: 4, link: Link::Anchor, .. }), "{e}");
        // Empty, but the head has moved on: the new entries are missing.
        let e = verify_chain(&[], &head, c.enclave(), Some(anchor)).unwrap_err();
        assert_eq!(e, AuditError::Missing { seq: 4, head_seq: 9 });
        // An empty whole log never verifies.
        assert!(verify_chain(&[], &head, c.enclave(), None).is_err());
    }

    #[test]
    fn a_changed_entry_is_named() {
        for k in [0usize, 3, 9] {
            let (c, head) = chain(10);
            let mut es = c.entries.clone();
            es[k].detail = "nothing to see here".into();
            let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
            assert_eq!(e.kind(), "changed", "{e}");
            assert_eq!(e.seq(), Some(k as u64), "entry {k}: {e}");
            assert!(e.to_string().starts_with(&format!("entry {k} was changed")), "{e}");
        }
        // Every field counts.
        let (c, head) = chain(6);
        let tweaks: [fn(&mut AuditEntry); 6] = [
            |e| e.time += 1,
            |e| e.session = Address::repeat_byte(0xee),
            |e| e.kind = Decision::Allowed,
            |e| e.code = None,
            |e| e.rule = Some("limits[1]".into()),
            |e| e.request_digest = B256::repeat_byte(0xaa),
        ];
        for t in tweaks {
            let mut es = c.entries.clone();
            t(&mut es[2]); // entry 2 is a denial with code and rule
            let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
            assert_eq!((e.kind(), e.seq()), ("changed", Some(2)), "{e}");
        }
    }

    #[test]
    fn a_changed_prev_names_its_own_entry() {
        let (c, head) = chain(10);
        let mut es = c.entries.clone();
        es[5].prev = B256::repeat_byte(0x55);
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::Changed { seq: 5, link: Link::OwnPrev, .. }), "{e}");
        // Entry 0 against the genesis hash.
        let mut es = c.entries.clone();
        es[0].prev = B256::ZERO;
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::Changed { seq: 0, link: Link::Genesis, .. }), "{e}");
        // A changed entry whose links were "repaired" downstream still breaks at the head.
        let mut es = c.entries.clone();
        es[7].detail = "rewritten".into();
        for i in 8..10 {
            es[i].prev = es[i - 1].hash();
        }
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::Changed { seq: 9, link: Link::Head, .. }), "{e}");
    }

    #[test]
    fn a_removed_entry_is_named() {
        for k in [0usize, 4, 9] {
            let (c, head) = chain(10);
            let mut es = c.entries.clone();
            es.remove(k);
            let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
            assert_eq!(e, AuditError::Missing { seq: k as u64, head_seq: 9 }, "removing {k}: {e}");
            assert!(e.to_string().starts_with(&format!("entry {k} is missing")), "{e}");
        }
        // Renumbering after the removal does not hide it: the chain breaks there.
        let (c, head) = chain(10);
        let mut es = c.entries.clone();
        es.remove(4);
        for (i, e) in es.iter_mut().enumerate() {
            e.seq = i as u64;
        }
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e.seq(), Some(4), "{e}");
    }

    #[test]
    fn reordered_entries_are_named() {
        let (c, head) = chain(10);
        let mut es = c.entries.clone();
        es.swap(3, 4);
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::OutOfOrder { seq: 3, position: 3, found: 4 }, "{e}");
        assert!(e.to_string().starts_with("entry 3 is out of order"), "{e}");
        // Swapped and renumbered: the links break at the first moved entry.
        let mut es = c.entries.clone();
        es.swap(3, 4);
        es[3].seq = 3;
        es[4].seq = 4;
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e.seq(), Some(3), "{e}");
        // A duplicate.
        let mut es = c.entries.clone();
        es.insert(5, es[4].clone());
        let e = verify_chain(&es, &head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::Duplicate { seq: 4, position: 5 }, "{e}");
    }

    #[test]
    fn forged_heads_are_rejected() {
        let (c, head) = chain(10);
        // Altered after signing: the signature no longer recovers to the identity.
        for forge in [
            AuditHead { seq: 8, hash: c.entries[8].hash(), ..head.clone() },
            AuditHead { hash: B256::repeat_byte(1), ..head.clone() },
            AuditHead { time: head.time + 1, ..head.clone() },
        ] {
            let e = verify_chain(&c.entries[..=forge.seq as usize], &forge, c.enclave(), None).unwrap_err();
            assert!(matches!(e, AuditError::HeadSigner { .. } | AuditError::BadHeadSignature { .. }), "{e}");
            assert!(e.is_head_error());
        }
        // Not a signature at all.
        let bad = AuditHead { signature: Bytes::from(vec![0u8; 64]), ..head.clone() };
        let e = verify_chain(&c.entries, &bad, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::BadHeadSignature { seq: 9, .. }), "{e}");
        // The head of another enclave's key, over the same entries.
        let other = TestChain::new(10);
        let by_other = AuditHead::signed(head.seq, head.hash, head.time, c.enclave(), |d| {
            Ok::<_, std::convert::Infallible>(other.sign_digest(d))
        })
        .unwrap();
        let e = verify_chain(&c.entries, &by_other, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::HeadSigner { seq: 9, expected: c.enclave(), recovered: other.enclave() });
        // A genuine head checked against another identity.
        let e = verify_chain(&c.entries, &head, other.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::WrongEnclave { .. }), "{e}");
    }

    #[test]
    fn the_end_of_the_log_is_checked_against_the_head() {
        let (c, head) = chain(10);
        // An older, genuine head with more entries than it covers.
        let h7 = c.head_at(7, 1);
        let e = verify_chain(&c.entries, &h7, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::BeyondHead { seq: 8, head_seq: 7 });
        verify_chain(&c.entries[..8], &h7, c.enclave(), None).unwrap();
        // Truncated before the head.
        let e = verify_chain(&c.entries[..8], &head, c.enclave(), None).unwrap_err();
        assert_eq!(e, AuditError::Missing { seq: 8, head_seq: 9 });
    }

    #[test]
    fn bounds_are_part_of_the_format() {
        let mut w = ChainWriter::new(Address::ZERO);
        let long = "é".repeat(400);
        let e = w.append(
            1,
            Record {
                detail: long.clone(),
                rule: Some(long),
                ..Record::new(Decision::Denied, Address::ZERO, B256::ZERO, "")
            },
        );
        assert!(e.detail.len() <= MAX_DETAIL && e.detail.ends_with('…'));
        assert!(e.rule.as_ref().unwrap().len() <= MAX_RULE);
        e.check_bounds().unwrap();
        let mut c = TestChain::new(3);
        c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, ""));
        c.entries[0].detail = "x".repeat(MAX_DETAIL + 1);
        let h = AuditHead::signed(0, c.entries[0].hash(), 2, c.enclave(), |d| {
            Ok::<_, std::convert::Infallible>(c.sign_digest(d))
        })
        .unwrap();
        let e = verify_chain(&c.entries, &h, c.enclave(), None).unwrap_err();
        assert!(matches!(e, AuditError::Malformed { seq: 0, .. }), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let (c, head) = chain(2);
        let mut v = serde_json::to_value(&c.entries[1]).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<AuditEntry>(v).is_err());
        let mut v = serde_json::to_value(&head).unwrap();
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<AuditHead>(v).is_err());
        assert_eq!(serde_json::to_value(Decision::ExpiredPending).unwrap(), "expired_pending");
        for d in Decision::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }

    /// Fixed vectors: the encoding must never drift (third parties recompute it).
    #[test]
    fn canonical_vectors() {
        let enclave = Address::repeat_byte(0x11);
        assert_eq!(genesis(enclave), keccak256([GENESIS_TAG, enclave.as_slice()].concat()),);
        let e = AuditEntry {
            seq: 1,
            time: 2,
            session: Address::repeat_byte(0x22),
            kind: Decision::Denied,
            code: Some(ErrorCode::SpendCap),
            rule: Some("limits[0]".into()),
            request_digest: B256::repeat_byte(0x33),
            detail: "cap".into(),
            prev: B256::repeat_byte(0x44),
        };
        let mut manual = Vec::new();
        manual.extend_from_slice(b"bridle/audit-entry/v1");
        manual.extend_from_slice(&1u64.to_be_bytes());
        manual.extend_from_slice(&2u64.to_be_bytes());
        manual.extend_from_slice(&[0x22; 20]);
        manual.extend_from_slice(&6u32.to_be_bytes());
        manual.extend_from_slice(b"denied");
        manual.extend_from_slice(&[1, 0, 0, 0, 9]);
        manual.extend_from_slice(b"spend_cap");
        manual.extend_from_slice(&[1, 0, 0, 0, 9]);
        manual.extend_from_slice(b"limits[0]");
        manual.extend_from_slice(&[0x33; 32]);
        manual.extend_from_slice(&3u32.to_be_bytes());
        manual.extend_from_slice(b"cap");
        manual.extend_from_slice(&[0x44; 32]);
        assert_eq!(e.hash(), keccak256(&manual));
        let none = AuditEntry { code: None, rule: None, ..e.clone() };
        assert_ne!(none.hash(), e.hash());
        // Moving bytes between fields changes the hash (length prefixes).
        let shifted = AuditEntry { rule: Some("limits[0]c".into()), detail: "ap".into(), ..e.clone() };
        assert_ne!(shifted.hash(), e.hash());
        let mut hd = Vec::new();
        hd.extend_from_slice(b"bridle/audit-head/v1");
        hd.extend_from_slice(&5u64.to_be_bytes());
        hd.extend_from_slice(&[0x55; 32]);
        hd.extend_from_slice(&6u64.to_be_bytes());
        hd.extend_from_slice(&[0x11; 20]);
        assert_eq!(AuditHead::digest_of(5, &B256::repeat_byte(0x55), 6, &enclave), keccak256(&hd));
    }
}
