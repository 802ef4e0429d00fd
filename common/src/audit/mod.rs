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
//! head.digest()    = keccak256("bridle/audit-head/v3" ‖ seq: u64 ‖ hash[32] ‖ time: u64 ‖ enclave[20]
//!                              ‖ end: u64 ‖ nonce[32] ‖ oldest: u64)
//!                  | keccak256("bridle/audit-head/v2" ‖ … ‖ nonce[32])   // a head without `oldest`
//! ```
//!
//! `head.signature` is the identity key's 65-byte `r ‖ s ‖ v` signature over `head.digest()`
//! (the raw digest, no EIP-191 prefix). The head covers the chain up to and including entry
//! `head.seq`, whose hash is `head.hash`; `head.time` is when the enclave signed it, and
//! `head.end` how many entries the log held then: a log is **complete** only when its head is
//! at `end − 1`. A head of one batch (`seq < end − 1`) proves that batch, and that more
//! entries existed: a host that serves an old batch's head cannot pass the log off as
//! complete. `nonce` is the verifier's (zero when none): a head for a fresh nonce proves the
//! log's end at the time of asking. `oldest` is the first entry the enclave still held when it
//! signed (it keeps a window of the latest entries): entries before it were dropped from the
//! window, and a batch may skip past them; no batch may skip an entry at or after it. Heads
//! of enclaves before it (v2, without `oldest`) still verify, and say nothing of the window.
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
pub const HEAD_TAG: &[u8] = b"bridle/audit-head/v3";
/// Domain tag of a head without `oldest` (enclaves before it).
pub const HEAD_TAG_V2: &[u8] = b"bridle/audit-head/v2";
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The owner let a cluster's nodes of another image hold the session's key.
    ImageAllowed,
    /// The owner denied a pending request's digest (`deny_pending`).
    Rejected,
}

impl Decision {
    /// All kinds, in declaration order.
    pub const ALL: [Decision; 14] = [
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
        Decision::ImageAllowed,
        Decision::Rejected,
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
            Decision::ImageAllowed => "image_allowed",
            Decision::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One link of the chain.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl AuditEntry {
    /// The entry with its strings allocated at their length (for entries kept in memory).
    pub fn held_exactly(mut self) -> AuditEntry {
        exact(&mut self.detail);
        if let Some(r) = self.rule.as_mut() {
            exact(r);
        }
        self
    }
}

/// Replace `s` with a copy allocated at its length, if it has spare capacity.
fn exact(s: &mut String) {
    if s.capacity() > s.len() {
        *s = s.as_str().to_owned();
    }
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    // No room for the mark: the cut alone.
    let mark = if max < '…'.len_utf8() { "" } else { "…" };
    let mut end = max - mark.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // Allocated exactly: `format!` would leave spare capacity the allocator keeps.
    let mut out = String::with_capacity(end + mark.len());
    out.push_str(&s[..end]);
    out.push_str(mark);
    out
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// How many entries the log held when the enclave signed (its next sequence number).
    /// A head without it (an old export) reads as 0 and never verifies.
    #[serde(default)]
    pub end: u64,
    /// The verifier's nonce this head answers (zero when none was given).
    #[serde(default)]
    pub nonce: B256,
    /// The first entry the enclave still held when it signed: the ones before it were
    /// dropped from its window. A batch that starts past what was asked for is a gap only
    /// when it starts here. `None` in heads of enclaves before it (signed as v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest: Option<u64>,
    /// 65-byte `r ‖ s ‖ v` over [`AuditHead::digest`].
    pub signature: Bytes,
}

impl AuditHead {
    /// What the identity key signs.
    pub fn digest_of(
        seq: u64,
        hash: &B256,
        time: u64,
        enclave: &Address,
        end: u64,
        nonce: &B256,
        oldest: Option<u64>,
    ) -> B256 {
        let mut buf = Vec::with_capacity(HEAD_TAG.len() + 116);
        buf.extend_from_slice(if oldest.is_some() { HEAD_TAG } else { HEAD_TAG_V2 });
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(hash.as_slice());
        buf.extend_from_slice(&time.to_be_bytes());
        buf.extend_from_slice(enclave.as_slice());
        buf.extend_from_slice(&end.to_be_bytes());
        buf.extend_from_slice(nonce.as_slice());
        if let Some(oldest) = oldest {
            buf.extend_from_slice(&oldest.to_be_bytes());
        }
        keccak256(buf)
    }

    pub fn digest(&self) -> B256 {
        Self::digest_of(self.seq, &self.hash, self.time, &self.enclave, self.end, &self.nonce, self.oldest)
    }

    /// Whether the head is at the log's end when it was signed.
    pub fn at_end(&self) -> bool {
        self.seq.checked_add(1) == Some(self.end)
    }

    /// Build a head, signing its digest with `sign` (the enclave's identity key).
    #[allow(clippy::too_many_arguments)]
    pub fn signed<E>(
        seq: u64,
        hash: B256,
        time: u64,
        enclave: Address,
        end: u64,
        nonce: B256,
        oldest: Option<u64>,
        sign: impl FnOnce(&B256) -> Result<Signature, E>,
    ) -> Result<AuditHead, E> {
        let sig = sign(&Self::digest_of(seq, &hash, time, &enclave, end, &nonce, oldest))?;
        Ok(AuditHead {
            seq,
            hash,
            time,
            enclave,
            end,
            nonce,
            oldest,
            signature: Bytes::copy_from_slice(&sig.as_bytes()),
        })
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The host's word that its audit retention deleted every entry up to this one (the
    /// entries then start after it): no signature covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<u64>,
    pub entries: Vec<AuditEntry>,
    pub head: AuditHead,
    /// A head the enclave signed at the log's end for the exporter's nonce
    /// (`GET /v1/audit/head?nonce=`) when the export was made: the export is complete as of
    /// that head only if its entries reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fresh_head: Option<AuditHead>,
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

    /// A chain that continues where another left off (a replica restored from a snapshot):
    /// the next entry gets `next_seq` and links to `last_hash`.
    pub fn resume(enclave: Address, next_seq: u64, last_hash: B256) -> ChainWriter {
        ChainWriter { enclave, next_seq, last_hash }
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
        // An entry may be held in memory a long time (the enclave keeps the last ones): a
        // string with spare capacity is copied to one of its length (`shrink_to_fit` may keep
        // the allocator's larger block), so it takes at most its bounded bytes.
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
        }
        .held_exactly();
        self.last_hash = e.hash();
        self.next_seq += 1;
        e
    }
}

pub mod rec;
mod verify;
pub use verify::*;

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
            let end = self.writer.next_seq();
            AuditHead::signed(seq, self.writer.last_hash(), time, self.enclave(), end, B256::ZERO, Some(0), |d| {
                Ok::<_, std::convert::Infallible>(self.sign_digest(d))
            })
            .expect("infallible")
        }

        /// A head at entry `seq`, signed while the log holds every entry pushed so far (a
        /// batch's head: it says how far the log really goes).
        pub fn head_at(&self, seq: u64, time: u64) -> AuditHead {
            self.head_held_from(seq, time, Some(0))
        }

        /// [`TestChain::head_at`] signed by an enclave whose window starts at `oldest`.
        /// (`None`: a head of an enclave before `oldest`, signed as v2).
        pub fn head_held_from(&self, seq: u64, time: u64, oldest: Option<u64>) -> AuditHead {
            let hash = self.entries[seq as usize].hash();
            let end = self.writer.next_seq();
            AuditHead::signed(seq, hash, time, self.enclave(), end, B256::ZERO, oldest, |d| {
                Ok::<_, std::convert::Infallible>(self.sign_digest(d))
            })
            .expect("infallible")
        }
    }
}

#[cfg(test)]
mod tests;
