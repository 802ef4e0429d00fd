//! The snapshot gate (`cluster::snapshot_in`; a review of 2026-12-07): a model of openraft 0.9.25's
//! receiving side (`Chunked::receive_snapshot` + `Streaming::receive`: a new id at offset 0
//! makes a new buffer, the same id seeks and writes, `done` finalizes), gated exactly the way
//! `ClusterNode::answer` gates it (`admit`, then `taken` only when openraft answered Ok with
//! the request's vote). A host delivers genuine frames of several streams (same base
//! snapshot id, different bytes), each copy once, in any order, with copies from leader
//! resends; openraft sometimes takes a chunk that `answer` does not record as taken (a lower
//! local vote answered `Ok(my_vote)`, or the handler future dropped after openraft took it).
//! Property: every buffer openraft finalizes is exactly the bytes of the stream it is named by.

use bridle_enclave::cluster::snapshot_in::{stream_id, Admitted, SnapshotIn, Step};

/// The chunk admitted to go to openraft (`None`: refused, or answered again).
fn pass(gate: &SnapshotIn, f: &Frame) -> Option<Admitted> {
    match gate.admit(&f.id, f.offset, &f.data, f.done) {
        Ok(Step::Pass(a)) => Some(a),
        Ok(Step::Again(_)) | Err(_) => None,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone)]
struct Frame {
    id: String,
    offset: u64,
    data: Vec<u8>,
    done: bool,
}

/// A snapshot openraft finalized: (stream id, bytes).
type Finalized = (String, Vec<u8>);

/// openraft's receiving state: (stream id, write position, buffer).
type Streaming = Option<(String, u64, Vec<u8>)>;

/// openraft 0.9.25 `Chunked::receive_snapshot`; Err = SnapshotMismatch (nothing written).
fn openraft_receive(s: &mut Streaming, f: &Frame) -> Result<Option<(String, Vec<u8>)>, ()> {
    let curr = s.as_ref().map(|x| x.0.clone());
    if curr.as_deref() != Some(f.id.as_str()) {
        if f.offset != 0 {
            return Err(());
        }
        *s = Some((f.id.clone(), 0, Vec::new()));
    }
    let st = s.as_mut().unwrap();
    // Cursor<Vec<u8>>: seek anywhere, write pads with zeros.
    let pos = f.offset as usize;
    if st.2.len() < pos + f.data.len() {
        st.2.resize(pos + f.data.len(), 0);
    }
    st.2[pos..pos + f.data.len()].copy_from_slice(&f.data);
    st.1 = f.offset + f.data.len() as u64;
    if f.done {
        let (id, _, buf) = s.take().unwrap();
        return Ok(Some((id, buf)));
    }
    Ok(None)
}

fn chunks(id: &str, data: &[u8], size: usize) -> Vec<Frame> {
    if data.is_empty() {
        return vec![Frame { id: id.into(), offset: 0, data: vec![], done: true }];
    }
    let mut out = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let end = (off + size).min(data.len());
        out.push(Frame { id: id.into(), offset: off as u64, data: data[off..end].to_vec(), done: end == data.len() });
        off = end;
    }
    out
}

/// openraft 0.9.25 `Raft::install_snapshot` with the follower's vote `f` (monotonic):
/// a lower request vote is answered `Ok(my_vote)` untouched; otherwise the chunk is taken
/// and answered with the vote read first, except a `done` chunk, whose
/// `install_full_snapshot` raises the vote to the request's (`accept_vote`) and answers it.
/// Returns (the vote answered, a finalized snapshot) or Err (SnapshotMismatch).
fn openraft_install(f: &mut u64, s: &mut Streaming, vote: u64, fr: &Frame) -> Result<(u64, Option<Finalized>), ()> {
    let my = *f;
    if vote < my {
        return Ok((my, None));
    }
    match openraft_receive(s, fr)? {
        Some(done) => {
            *f = (*f).max(vote);
            Ok((*f, Some(done)))
        }
        None => Ok((my, None)),
    }
}

/// The property under openraft's real vote rules: each stream carries its leader's vote
/// (streams of several leaders), the follower's vote rises at random (appends and votes of
/// those leaders, delivered in any order), and `answer` records a chunk as taken only when
/// the answer names the request's vote (node.rs:706).
#[test]
fn no_interleaving_of_genuine_frames_gets_a_wrong_snapshot_installed() {
    let mut installs = 0u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _round in 0..40_000 {
        let n_streams = 1 + rng.below(3) as usize;
        let size = 1 + rng.below(4) as usize;
        let mut streams: Vec<(String, Vec<u8>, u64)> = Vec::new();
        for _ in 0..n_streams {
            let len = rng.below(14) as usize;
            // Often the same bytes but a byte changed: worst for splicing.
            let data: Vec<u8> = (0..len).map(|i| if rng.below(4) == 0 { rng.next() as u8 } else { i as u8 }).collect();
            let vote = 5 + rng.below(3);
            streams.push((stream_id("7-3-1", &data), data, vote));
        }
        let mut pool: Vec<(Frame, u64)> = Vec::new();
        for (id, data, vote) in &streams {
            for f in chunks(id, data, size) {
                for _ in 0..1 + rng.below(3) {
                    pool.push((f.clone(), *vote));
                }
            }
        }
        for i in (1..pool.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            pool.swap(i, j);
        }
        let mut gate = SnapshotIn::default();
        let mut streaming: Streaming = None;
        let mut follower_vote = 4 + rng.below(3);
        for (f, vote) in pool {
            if rng.below(6) == 0 {
                // An append or vote request of some leader reaches the follower first.
                follower_vote = follower_vote.max(5 + rng.below(3));
            }
            if rng.below(8) == 0 {
                continue;
            }
            let Some(admitted) = pass(&gate, &f) else { continue };
            match openraft_install(&mut follower_vote, &mut streaming, vote, &f) {
                Err(()) => {}
                Ok((answered, done)) => {
                    if answered == vote {
                        gate.taken(admitted, Default::default());
                    }
                    if let Some((id, buf)) = done {
                        let want = &streams.iter().find(|s| s.0 == id).unwrap().1;
                        assert_eq!(&buf, want, "installed a snapshot that is not its stream's bytes");
                        installs += 1;
                    }
                }
            }
        }
    }
    assert!(installs > 1000, "the model installs snapshots at all ({installs})");
}

/// What the gate's safety rests on (informational, not reachable today): the chunk openraft
/// took must be recorded whenever its vote is the follower's. If `answer`'s future were ever
/// dropped between `raft.install_snapshot` returning and `taken` (a timeout wrapped around
/// cluster calls, a panic there caught by `server::isolated`), this sequence of genuine
/// frames installs A's first chunk, zeros, and A's last chunk — the bug 404f3e8 fixes.
#[test]
fn the_gate_relies_on_every_chunk_openraft_took_being_recorded() {
    let a: Vec<u8> = (1..=12u8).collect();
    let b: Vec<u8> = (101..=112u8).collect();
    let (ia, ib) = (stream_id("7-3-1", &a), stream_id("7-3-2", &b));
    let (ca, cb) = (chunks(&ia, &a, 4), chunks(&ib, &b, 4));
    let mut gate = SnapshotIn::default();
    let mut s: Streaming = None;
    let take = |gate: &mut SnapshotIn, s: &mut Streaming, f: &Frame, record: bool| {
        let adm = pass(gate, f).expect("admitted");
        let r = openraft_receive(s, f).expect("openraft takes it");
        if record {
            gate.taken(adm, Default::default());
        }
        r
    };
    take(&mut gate, &mut s, &ca[0], true);
    take(&mut gate, &mut s, &ca[1], true);
    // B's first chunk (a newer leader, the follower's vote still lower: Ok(my_vote), not
    // recorded — reachable today).
    take(&mut gate, &mut s, &cb[0], false);
    // A kept copy of A's first chunk, taken by openraft (a new buffer) and — the step not
    // reachable today — not recorded.
    take(&mut gate, &mut s, &ca[0], false);
    let (_, buf) = take(&mut gate, &mut s, &ca[2], true).expect("finalized");
    assert_ne!(buf, a);
    assert_eq!(&buf[4..8], &[0, 0, 0, 0]);
}

/// A chunk delivered twice in a row (the reply to the first copy lost, the leader sends the
/// same chunk again — openraft retries Network/Timeout errors at the same offset) is answered
/// again without going to openraft, not refused: a refusal would make the leader start the
/// whole stream again from 0 on every lost reply (the review's liveness note on 404f3e8).
#[test]
fn a_duplicate_of_the_chunk_just_taken_is_answered_again() {
    let data: Vec<u8> = (0..12u8).collect();
    let id = stream_id("7-3-1", &data);
    let cs = chunks(&id, &data, 4);
    let mut gate = SnapshotIn::default();
    for f in &cs[..2] {
        let a = pass(&gate, f).expect("admitted");
        gate.taken(a, Default::default());
    }
    assert!(matches!(gate.admit(&cs[1].id, cs[1].offset, &cs[1].data, cs[1].done), Ok(Step::Again(_))));
    // The one before it: refused (expect 8, got 4 for the second; got 0 starts again).
    let e = gate.admit(&cs[1].id, cs[1].offset, &cs[0].data, cs[1].done).err().expect("other bytes: refused");
    assert_eq!((e.expect.offset, e.got.offset), (8, 4));
}
