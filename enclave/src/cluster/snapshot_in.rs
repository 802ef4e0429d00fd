//! Snapshot streams: sent under an id that names their bytes, taken only in order.
//!
//! openraft's receiver takes a snapshot's chunks at whatever offset each names, and a chunk
//! of a new stream id at offset 0 starts a new buffer (`Streaming::receive` seeks without
//! checking; "TODO: check id?"). A host carries the chunks and can keep one, answer its
//! leader an error (the leader sends the chunk again), and deliver the kept copy later:
//! every chunk is genuine and accepted once by the channel, in any order within its window.
//! A review of 2026-12-07 spliced the first and last chunks of an abandoned stream around a
//! gap of zeros; the snapshot did not decode, and a storage error in openraft is fatal: the
//! node stopped for good, its keys with it (4 MiB chunks: any state past 8 MiB, about 7 000
//! sessions, which anyone can create).
//!
//! So a leader names each stream it sends by a random part and the SHA-256 of exactly the
//! bytes it sends ([`stream_id`]), and a node passes a chunk on only when it starts a stream
//! (offset 0) or continues the stream it is taking at exactly the next offset, and the last
//! chunk only when the bytes taken hash to the id's ([`SnapshotIn::admit`]). The chunk just
//! taken, sent again (its reply was lost, and the leader tries it once more), is answered as
//! it was, without going to openraft again. Anything else is answered `SnapshotMismatch`,
//! which makes the leader start its stream again from 0.
//!
//! The gate holds while every chunk openraft takes is recorded ([`SnapshotIn::taken`]): the
//! caller holds the gate across openraft's call and is never cancelled in between (cluster
//! calls run to their end), and openraft takes a chunk under a vote it answers with.

use super::types::{NodeId, Raft, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{InstallSnapshotRequest, InstallSnapshotResponse};
use openraft::{SnapshotSegmentId, Vote};
use sha2::{Digest, Sha256};

/// The id a stream is sent under: the snapshot's own, a random part (no two streams share
/// an id, whatever they hold), and the SHA-256 of `data`, the bytes sent.
pub fn stream_id(snapshot_id: &str, data: &[u8]) -> String {
    let mut r = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut r);
    format!("{snapshot_id}-{}{HASH_MARK}{}", hex::encode(r), hex::encode(Sha256::digest(data)))
}

const HASH_MARK: &str = "-sha256:";

/// The hash an id names, if it names one (a leader of an older build names none).
fn named_hash(id: &str) -> Option<[u8; 32]> {
    let (_, h) = id.rsplit_once(HASH_MARK)?;
    hex::decode(h).ok()?.try_into().ok()
}

/// The stream a node is taking.
#[derive(Clone)]
struct Stream {
    id: String,
    /// The offset the next chunk must name.
    next: u64,
    /// The bytes taken so far, hashed.
    hash: Sha256,
    /// The last chunk taken: its offset and its bytes' hash.
    last: Option<(u64, [u8; 32])>,
    /// The last chunk was the stream's last.
    done: bool,
}

/// What a node knows of the snapshot stream it is taking, and the vote it answered the
/// chunk it took last with.
#[derive(Default)]
pub struct SnapshotIn {
    current: Option<Stream>,
    answered: Option<Vote<NodeId>>,
}

/// A chunk admitted: the stream as it stands once openraft takes it ([`SnapshotIn::taken`]).
pub struct Admitted {
    stream: Stream,
}

/// What to do with a chunk.
pub enum Step {
    /// Pass it on to openraft, then record it ([`SnapshotIn::taken`]).
    Pass(Admitted),
    /// The chunk just taken, again: answer as then, with this vote.
    Again(Vote<NodeId>),
}

impl SnapshotIn {
    /// Whether the chunk at `offset` of stream `id` (`data`, the last one when `done`) may be
    /// passed on to openraft.
    pub fn admit(&self, id: &str, offset: u64, data: &[u8], done: bool) -> Result<Step, SnapshotMismatch> {
        let mismatch = |expect: SnapshotSegmentId| SnapshotMismatch {
            expect,
            got: SnapshotSegmentId { id: id.to_string(), offset },
        };
        let chunk: [u8; 32] = Sha256::digest(data).into();
        let again = self.current.as_ref().is_some_and(|s| s.id == id && s.last == Some((offset, chunk)));
        if let Some(vote) = self.answered.filter(|_| again) {
            // Exactly the chunk taken last (a retry whose first reply was lost).
            return Ok(Step::Again(vote));
        }
        let mut stream = match &self.current {
            _ if offset == 0 => Stream { id: id.to_string(), next: 0, hash: Sha256::new(), last: None, done: false },
            Some(s) if s.id == id && !s.done && s.next == offset => s.clone(),
            Some(s) if s.id == id => return Err(mismatch(SnapshotSegmentId { id: s.id.clone(), offset: s.next })),
            _ => return Err(mismatch(SnapshotSegmentId { id: id.to_string(), offset: 0 })),
        };
        stream.hash.update(data);
        stream.next = offset.saturating_add(data.len() as u64);
        stream.last = Some((offset, chunk));
        stream.done = done;
        if done {
            if let Some(want) = named_hash(id) {
                if <[u8; 32]>::from(stream.hash.clone().finalize()) != want {
                    // Not the bytes the leader sent: it sends the stream again from 0.
                    return Err(mismatch(SnapshotSegmentId { id: id.to_string(), offset: 0 }));
                }
            }
        }
        Ok(Step::Pass(Admitted { stream }))
    }

    /// openraft took the admitted chunk, answering `vote`.
    pub fn taken(&mut self, a: Admitted, vote: Vote<NodeId>) {
        self.current = Some(a.stream);
        self.answered = Some(vote);
    }
}

/// Give openraft the chunk `r` if `gate` admits it ([`SnapshotIn::admit`]), held for the
/// whole call so that chunks are taken one at a time; a chunk refused is answered
/// `SnapshotMismatch` (the leader starts again from 0), the chunk just taken sent again the
/// vote it was answered with.
pub async fn install_in_order(
    raft: &Raft,
    gate: &tokio::sync::Mutex<SnapshotIn>,
    r: InstallSnapshotRequest<TypeConfig>,
) -> Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
    let vote = r.vote;
    let mut gate = gate.lock().await;
    let admitted = match gate.admit(&r.meta.snapshot_id, r.offset, &r.data, r.done) {
        Ok(Step::Pass(a)) => a,
        Ok(Step::Again(vote)) => return Ok(InstallSnapshotResponse { vote }),
        Err(m) => {
            tracing::warn!(mismatch = %m, "a snapshot chunk out of its stream's order refused");
            return Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m)));
        }
    };
    let out = raft.install_snapshot(r).await;
    // openraft answers `Ok` with its own vote to a chunk it refused for a lower vote: only a
    // chunk answered with the request's vote was taken.
    if out.as_ref().is_ok_and(|resp| resp.vote == vote) {
        gate.taken(admitted, vote);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admit and take; `Ok(false)` for a chunk answered again.
    fn take(s: &mut SnapshotIn, id: &str, offset: u64, data: &[u8], done: bool) -> Result<bool, SnapshotMismatch> {
        match s.admit(id, offset, data, done)? {
            Step::Pass(a) => {
                s.taken(a, Vote::default());
                Ok(true)
            }
            Step::Again(_) => Ok(false),
        }
    }

    /// The review's splice: the first and last chunks of an abandoned stream, kept by the
    /// host and delivered after the leader's next stream began.
    #[test]
    fn chunks_are_taken_in_order_and_a_spliced_stream_is_refused() {
        let whole = b"0123456789abcdef".to_vec();
        let a = stream_id("1-5-1", &whole);
        let b = stream_id("1-5-2", &whole);
        assert_ne!(a, b, "no two streams share an id");
        let mut s = SnapshotIn::default();
        take(&mut s, &a, 0, &whole[..6], false).unwrap();
        take(&mut s, &a, 6, &whole[6..12], false).unwrap();
        // The leader gives stream A up and starts B; the host delivers B's first chunk, then
        // A's kept first chunk (a new stream at 0: taken), then A's kept last chunk, which
        // does not follow.
        take(&mut s, &b, 0, &whole[..6], false).unwrap();
        take(&mut s, &a, 0, &whole[..6], false).unwrap();
        let e = take(&mut s, &a, 12, &whole[12..], true).unwrap_err();
        assert_eq!((e.expect.offset, e.got.offset), (6, 12));
        // A chunk of another stream than the one being taken, past 0: refused.
        assert!(take(&mut s, &b, 6, &whole[6..12], false).is_err());
        // In order, stream A completes.
        take(&mut s, &a, 6, &whole[6..12], false).unwrap();
        take(&mut s, &a, 12, &whole[12..], true).unwrap();
        // The last chunk again (its reply lost): answered as then; anything past it refused.
        assert_eq!(take(&mut s, &a, 12, &whole[12..], true), Ok(false));
        assert!(take(&mut s, &a, 16, b"x", true).is_err());
        // The chunk just taken, again: answered as then, not passed on; an older one refused.
        take(&mut s, &b, 0, &whole[..6], false).unwrap();
        take(&mut s, &b, 6, &whole[6..12], false).unwrap();
        assert_eq!(take(&mut s, &b, 6, &whole[6..12], false), Ok(false));
        assert!(take(&mut s, &b, 0, &whole[..6], false).unwrap(), "offset 0 starts the stream again");
        take(&mut s, &b, 6, &whole[6..12], false).unwrap();
        assert!(take(&mut s, &b, 6, &whole[6..11], false).is_err(), "other bytes at the last offset");
        take(&mut s, &b, 12, &whole[12..], true).unwrap();
    }

    #[test]
    fn the_last_chunk_is_taken_only_when_the_bytes_hash_to_the_id() {
        let whole = b"snapshot bytes".to_vec();
        let id = stream_id("2-9-1", &whole);
        let mut s = SnapshotIn::default();
        take(&mut s, &id, 0, &whole[..4], false).unwrap();
        let mut other = whole[4..].to_vec();
        other[0] ^= 1;
        let e = take(&mut s, &id, 4, &other, true).unwrap_err();
        assert_eq!(e.expect.offset, 0, "the leader starts again from 0");
        take(&mut s, &id, 4, &whole[4..], true).unwrap();
        // A leader of an older build names no hash: order alone is checked.
        take(&mut s, "2-9-1", 0, b"xy", true).unwrap();
        assert_eq!(named_hash("2-9-1"), None);
        assert_eq!(named_hash(&id), Some(Sha256::digest(&whole).into()));
    }
}
