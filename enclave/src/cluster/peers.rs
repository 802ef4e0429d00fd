//! The node's channels to its peers, and the queue its host carries them through.
//!
//! Every message between two enclaves is a request and a reply. A node sends a request by
//! queueing it for its host ([`Peers::poll`]); the host posts it to the peer's host, which
//! hands it to the peer enclave ([`Peers::deliver`]) and brings the reply back
//! ([`Peers::respond`]). Inside: a Noise handshake bound to both nodes' attestations
//! (`bridle-channel`), then sealed requests and replies. A node initiates its own channel
//! to each peer it sends to; it answers on the channels peers initiated to it.

use super::admit::ClusterAdmit;
use bridle_channel::{Channel, Initiator, NodeIdentity, PeerAttestation, Responder, ResponderState};
use bridle_common::cluster::Outbound;
use bridle_common::frame::{from_cbor, to_cbor};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// Most bytes of messages one poll returns (beside the first): two appends of up to
/// `types::APPEND_BYTES` would not fit in the frame a host reads.
const POLL_BYTES: usize = 16 << 20;
/// Most messages waiting for the host; past it, sending fails at once (the host is away).
const MAX_QUEUE: usize = 4096;
/// Most bytes of messages waiting for the host (a message is always taken into an empty
/// queue): the memory plan's one message out (`memory::plan`, `max_message`).
const MAX_QUEUE_BYTES: usize = super::MAX_MESSAGE as usize;
/// Handshakes started by peers and not finished, at most.
const MAX_PENDING_HANDSHAKES: usize = 64;
/// Channels peers initiated, at most (the oldest are dropped; their peers make new ones).
const MAX_INBOUND_CHANNELS: usize = 256;
/// Handshakes answered per second, at most (each asks the NSM for a document).
const HANDSHAKES_PER_SECOND: u32 = 50;

/// The envelope between two enclaves (outside the channel: the handshake, and sealed frames).
#[derive(Debug, Serialize, Deserialize)]
enum Wire {
    Hello { hs: u64, msg1: ByteBuf },
    Finish { hs: u64, msg3: ByteBuf },
    Sealed { channel: [u8; 32], frame: ByteBuf },
}

#[derive(Debug, Serialize, Deserialize)]
enum WireReply {
    Hello {
        msg2: ByteBuf,
    },
    Finished,
    Sealed {
        frame: ByteBuf,
    },
    /// No such channel here (the peer restarted, or dropped it): make a new one.
    UnknownChannel,
    Refused(String),
}

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("peer {0} unreachable: {1}")]
    Unreachable(String, String),
    #[error("peer {0} refused: {1}")]
    Refused(String, String),
    #[error("peer {url} is another node now (channel key {actual}, expected {expected})")]
    OtherNode { url: String, expected: String, actual: String },
}

/// What the node does with a request that arrived in a channel.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        request: Vec<u8>,
        peer: &'a PeerAttestation,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'a>>;
}

/// Where the reply to an outbound message goes.
type Waiter = oneshot::Sender<Result<Vec<u8>, String>>;

/// At most `max` values by key, the oldest evicted first: `order` holds exactly the map's
/// keys, in order of arrival (a key taken out leaves it too — one left behind let the map
/// pass its bound: a review of 2026-12-04 grew the handshakes a node holds without limit by
/// finishing handshakes with junk, whose ids stayed queued and were "evicted" instead).
struct Bounded<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    max: usize,
}

impl<K: std::hash::Hash + Eq + Copy, V> Bounded<K, V> {
    fn new(max: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), max }
    }

    /// Insert (a key already there keeps its place), then evict the oldest past `max`.
    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > self.max {
            let Some(old) = self.order.pop_front() else { break };
            self.map.remove(&old);
        }
    }

    fn take(&mut self, k: &K) -> Option<V> {
        let v = self.map.remove(k)?;
        self.order.retain(|o| o != k);
        Some(v)
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }
}

struct OutChannel {
    channel: Channel,
    channel_id: [u8; 32],
}

/// A peer's URL and the channel key expected there (none: whoever answers, for a join).
type OutKey = (String, Option<[u8; 32]>);
type OutSlot = Arc<tokio::sync::Mutex<Option<OutChannel>>>;

struct Bucket {
    second: u64,
    used: u32,
}

/// See the module docs.
pub struct Peers {
    identity: NodeIdentity,
    cluster_id: Vec<u8>,
    admit: ClusterAdmit,
    queue: Mutex<VecDeque<Outbound>>,
    queued: Notify,
    waiting: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    /// This node's channels, by peer URL and the channel key expected there: after a node
    /// restarted behind the same host (a new node at the old URL), the channels to the old
    /// one (which fail: another key answers) and to the new one are apart, and the old
    /// one's failing attempts do not replace the new one's channel (which cut its
    /// replication and snapshots short, attempt after attempt).
    out: Mutex<HashMap<OutKey, OutSlot>>,
    /// Channels peers initiated, by channel id.
    inbound: Mutex<Bounded<[u8; 32], Arc<Mutex<Channel>>>>,
    /// Handshakes peers began and have not finished.
    pending: Mutex<Bounded<u64, ResponderState>>,
    bucket: Mutex<Bucket>,
    handler: std::sync::OnceLock<Arc<dyn Handler>>,
    /// Handshake messages whose attestation document is being verified, at most
    /// [`VERIFYING_AT_ONCE`] at once, on the blocking pool: a document reaches a node before
    /// anything about its sender is known, and its verification must never hold a runtime
    /// worker, which Raft's heartbeats and every call on a connection need (a review of
    /// 2026-12-06: strangers' crafted documents kept a node's workers busy for seconds).
    verifying: Arc<tokio::sync::Semaphore>,
}

/// Attestation documents of handshakes verified at once.
const VERIFYING_AT_ONCE: usize = 2;

impl Peers {
    pub fn new(identity: NodeIdentity, cluster_id: Vec<u8>, admit: ClusterAdmit) -> Peers {
        Peers {
            identity,
            cluster_id,
            admit,
            queue: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            out: Mutex::new(HashMap::new()),
            inbound: Mutex::new(Bounded::new(MAX_INBOUND_CHANNELS)),
            pending: Mutex::new(Bounded::new(MAX_PENDING_HANDSHAKES)),
            bucket: Mutex::new(Bucket { second: 0, used: 0 }),
            handler: std::sync::OnceLock::new(),
            verifying: Arc::new(tokio::sync::Semaphore::new(VERIFYING_AT_ONCE)),
        }
    }

    /// `verify` (a handshake's step that verifies the other side's attestation document, or
    /// asks the NSM for this node's) on the blocking pool, at most [`VERIFYING_AT_ONCE`] at
    /// once.
    async fn off_the_runtime<T: Send + 'static>(
        &self,
        verify: impl FnOnce(&ClusterAdmit) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.verifying.clone().acquire_owned().await.ok()?;
        let admit = self.admit.clone();
        // The permit goes with the work: a caller that stops waiting (a timeout) does not
        // let more verifications run at once.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify(&admit)
        })
        .await
        .ok()
    }

    /// Set who handles requests that arrive in channels (once).
    pub fn set_handler(&self, h: Arc<dyn Handler>) {
        let _ = self.handler.set(h);
    }

    pub fn static_key(&self) -> [u8; 32] {
        self.identity.static_public_key()
    }

    // ----- the host's side -----

    /// Messages for the host to deliver: waits up to `wait` for the first.
    pub async fn poll(&self, wait: Duration, max: usize) -> Vec<Outbound> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.queued.notified();
            {
                let mut q = lock(&self.queue);
                if !q.is_empty() {
                    let n = poll_count(q.iter(), max, POLL_BYTES);
                    return q.drain(..n).collect();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// What came back for outbound message `id`.
    pub fn respond(&self, id: u64, result: Result<Vec<u8>, String>) {
        if let Some(tx) = lock(&self.waiting).remove(&id) {
            let _ = tx.send(result);
        }
    }

    /// A message from a peer (through the hosts): its reply.
    pub async fn deliver(&self, bytes: &[u8]) -> Vec<u8> {
        let reply = match from_cbor::<Wire>(bytes) {
            Err(e) => WireReply::Refused(format!("undecodable message: {e}")),
            Ok(Wire::Hello { hs, msg1 }) => self.hello(hs, msg1.into_vec()).await,
            Ok(Wire::Finish { hs, msg3 }) => self.finish(hs, msg3.into_vec()).await,
            Ok(Wire::Sealed { channel, frame }) => self.sealed(channel, &frame).await,
        };
        to_cbor(&reply).unwrap_or_default()
    }

    async fn hello(&self, hs: u64, msg1: Vec<u8>) -> WireReply {
        let msg1 = msg1.as_slice();
        // Junk and a handshake id already under way are refused before the second's budget
        // is charged (a review of 2026-12-05: anyone reaching a host could spend the budget
        // with 18-byte junk, or replace a peer's handshake under way by sending its id).
        if !bridle_channel::looks_like_first_message(msg1) {
            return WireReply::Refused("not a first handshake message".into());
        }
        if lock(&self.pending).map.contains_key(&hs) {
            return WireReply::Refused("that handshake is under way".into());
        }
        {
            let now = unix_secs();
            let mut b = lock(&self.bucket);
            if b.second != now {
                *b = Bucket { second: now, used: 0 };
            }
            if b.used >= HANDSHAKES_PER_SECOND {
                return WireReply::Refused("too many handshakes; try again".into());
            }
            b.used += 1;
        }
        // The answer asks the NSM for a document: on the blocking pool, never holding a
        // runtime worker (a stranger may send 50 a second; a review of 2026-12-06).
        let (identity, cluster_id, first) = (self.identity.clone(), self.cluster_id.clone(), msg1.to_vec());
        let responded = self.off_the_runtime(move |_| Responder::respond(&identity, &cluster_id, &first)).await;
        let Some(responded) = responded else {
            return WireReply::Refused("the handshake's answer did not complete".into());
        };
        match responded {
            Err(e) => WireReply::Refused(e.to_string()),
            Ok((state, msg2)) => {
                let mut pending = lock(&self.pending);
                if pending.map.contains_key(&hs) {
                    return WireReply::Refused("that handshake is under way".into());
                }
                pending.insert(hs, state);
                WireReply::Hello { msg2: ByteBuf::from(msg2) }
            }
        }
    }

    async fn finish(&self, hs: u64, msg3: Vec<u8>) -> WireReply {
        let Some(state) = lock(&self.pending).take(&hs) else {
            return WireReply::Refused("no such handshake (expired or finished)".into());
        };
        let Some(finished) = self.off_the_runtime(move |admit| state.finish(&msg3, admit)).await else {
            return WireReply::Refused("the handshake's verification did not complete".into());
        };
        match finished {
            Err(e) => {
                tracing::warn!(error = %e, "a peer's handshake was refused");
                WireReply::Refused(e.to_string())
            }
            Ok((channel, peer)) => {
                let id = channel.channel_id();
                tracing::info!(channel = %hex::encode(&id[..8]), peer_key = %hex::encode(&peer.static_key[..8]), "channel from a peer");
                lock(&self.inbound).insert(id, Arc::new(Mutex::new(channel)));
                WireReply::Finished
            }
        }
    }

    async fn sealed(&self, id: [u8; 32], frame: &[u8]) -> WireReply {
        let Some(ch) = lock(&self.inbound).get(&id).cloned() else {
            return WireReply::UnknownChannel;
        };
        let (request, peer) = {
            let mut c = lock(&ch);
            match c.open(frame) {
                Ok(r) => (r, c.peer().clone()),
                Err(e) => return WireReply::Refused(format!("frame refused: {e}")),
            }
        };
        let Some(handler) = self.handler.get().cloned() else {
            return WireReply::Refused("this node is starting".into());
        };
        let reply = handler.handle(request, &peer).await;
        // The reply names the request it answers (inside the seal): a host could otherwise
        // hand a reply kept from one request to another (an old append's `Success` for an
        // append never delivered: an entry "committed" without a majority; found 2026-12-04
        // by a review).
        let bound = [request_binding(frame).as_slice(), &reply].concat();
        let sealed = lock(&ch).seal(&bound);
        match sealed {
            Ok(frame) => WireReply::Sealed { frame: ByteBuf::from(frame) },
            Err(e) => WireReply::Refused(format!("reply not sealed: {e}")),
        }
    }

    // ----- the node's side -----

    async fn send(&self, to: &str, bytes: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut q = lock(&self.queue);
            let queued: usize = q.iter().map(|m| m.bytes.len()).sum();
            if q.len() >= MAX_QUEUE || (!q.is_empty() && queued.saturating_add(bytes.len()) > MAX_QUEUE_BYTES) {
                return Err(NetError::Unreachable(to.into(), "the host is not carrying messages".into()));
            }
            lock(&self.waiting).insert(id, tx);
            q.push_back(Outbound { id, to: to.to_string(), bytes });
        }
        // Given up on — a timeout here, or the caller's own dropping this future — the
        // message leaves the queue with its waiter: a host that stopped polling otherwise
        // kept every retry's copy queued, up to 4 096 appends of 12 MiB (a review of
        // 2026-12-06, night).
        let _given_up = Unqueue { peers: self, id };
        self.queued.notify_one();
        let r = tokio::time::timeout(timeout, rx).await;
        match r {
            Err(_) => Err(NetError::Unreachable(to.into(), format!("no answer within {timeout:?}"))),
            Ok(Err(_)) => Err(NetError::Unreachable(to.into(), "dropped".into())),
            Ok(Ok(Err(e))) => Err(NetError::Unreachable(to.into(), e)),
            Ok(Ok(Ok(b))) => Ok(b),
        }
    }

    /// Take message `id` and its waiter out, whichever is still there.
    fn unqueue(&self, id: u64) {
        lock(&self.waiting).remove(&id);
        lock(&self.queue).retain(|m| m.id != id);
    }

    async fn exchange(&self, to: &str, w: &Wire, timeout: Duration) -> Result<WireReply, NetError> {
        let bytes = to_cbor(w).map_err(|e| NetError::Refused(to.into(), e.to_string()))?;
        let reply = self.send(to, bytes, timeout).await?;
        from_cbor(&reply).map_err(|e| NetError::Refused(to.into(), format!("undecodable reply: {e}")))
    }

    async fn handshake(&self, to: &str, timeout: Duration) -> Result<(OutChannel, PeerAttestation), NetError> {
        let hs = self.next_id.fetch_add(1, Ordering::Relaxed) ^ rand_u64();
        let (state, msg1) = Initiator::start(&self.identity, &self.cluster_id)
            .map_err(|e| NetError::Refused(to.into(), e.to_string()))?;
        let msg2 = match self.exchange(to, &Wire::Hello { hs, msg1: ByteBuf::from(msg1) }, timeout).await? {
            WireReply::Hello { msg2 } => msg2,
            WireReply::Refused(r) => return Err(NetError::Refused(to.into(), r)),
            other => return Err(NetError::Refused(to.into(), format!("unexpected reply {other:?}"))),
        };
        let finished = self
            .off_the_runtime(move |admit| state.finish(&msg2, admit))
            .await
            .ok_or_else(|| NetError::Refused(to.into(), "the handshake's verification did not complete".into()))?;
        let (channel, peer, msg3) = finished.map_err(|e| NetError::Refused(to.into(), e.to_string()))?;
        match self.exchange(to, &Wire::Finish { hs, msg3: ByteBuf::from(msg3) }, timeout).await? {
            WireReply::Finished => {}
            WireReply::Refused(r) => return Err(NetError::Refused(to.into(), r)),
            other => return Err(NetError::Refused(to.into(), format!("unexpected reply {other:?}"))),
        }
        let channel_id = channel.channel_id();
        tracing::info!(peer = to, channel = %hex::encode(&channel_id[..8]), "channel to a peer");
        Ok((OutChannel { channel, channel_id }, peer))
    }

    /// Send `request` to the node at `to` (whose channel key must be `expected`, when given)
    /// and return its reply, making a channel first when there is none.
    pub async fn request(
        &self,
        to: &str,
        expected: Option<[u8; 32]>,
        request: &[u8],
        timeout: Duration,
    ) -> Result<(Vec<u8>, PeerAttestation), NetError> {
        let key = (to.to_string(), expected);
        let slot = lock(&self.out).entry(key.clone()).or_default().clone();
        for attempt in 0..2 {
            let mut g = slot.lock().await;
            if g.is_none() {
                match self.handshake(to, timeout).await {
                    Ok((ch, _)) => *g = Some(ch),
                    Err(e) => {
                        // No channel was made: the slot goes, so that URLs a host names
                        // (seeds, joins) leave nothing behind (a review of 2026-12-06,
                        // night: 40 000 of them kept 60 MiB).
                        drop(g);
                        self.drop_empty_slot(&key, &slot);
                        return Err(e);
                    }
                }
            }
            let Some(oc) = g.as_mut() else { continue };
            let peer = oc.channel.peer().clone();
            if let Some(exp) = expected {
                if peer.static_key != exp {
                    *g = None;
                    return Err(NetError::OtherNode {
                        url: to.into(),
                        expected: hex::encode(exp),
                        actual: hex::encode(peer.static_key),
                    });
                }
            }
            let sent = oc.channel.seal(request).map_err(|e| NetError::Refused(to.into(), e.to_string()))?;
            let binding = request_binding(&sent);
            let channel = oc.channel_id;
            drop(g);
            match self.exchange(to, &Wire::Sealed { channel, frame: ByteBuf::from(sent) }, timeout).await? {
                WireReply::Sealed { frame } => {
                    let mut g = slot.lock().await;
                    let Some(oc) = g.as_mut().filter(|oc| oc.channel_id == channel) else {
                        return Err(NetError::Unreachable(to.into(), "channel replaced meanwhile".into()));
                    };
                    let reply = oc.channel.open(&frame).map_err(|e| NetError::Refused(to.into(), e.to_string()))?;
                    drop(g);
                    return match reply.split_at_checked(BINDING_LEN) {
                        Some((b, reply)) if b == binding.as_slice() => Ok((reply.to_vec(), peer)),
                        _ => Err(NetError::Refused(
                            to.into(),
                            "a reply that does not answer this request (the host handed another one)".into(),
                        )),
                    };
                }
                WireReply::UnknownChannel if attempt == 0 => {
                    let mut g = slot.lock().await;
                    if g.as_ref().is_some_and(|oc| oc.channel_id == channel) {
                        *g = None;
                    }
                }
                WireReply::Refused(r) => return Err(NetError::Refused(to.into(), r)),
                other => return Err(NetError::Refused(to.into(), format!("unexpected reply {other:?}"))),
            }
        }
        Err(NetError::Unreachable(to.into(), "no channel".into()))
    }

    /// Remove the slot under `key` if it is still `slot` and holds no channel.
    fn drop_empty_slot(&self, key: &OutKey, slot: &OutSlot) {
        let mut out = lock(&self.out);
        let empty = out.get(key).is_some_and(|s| Arc::ptr_eq(s, slot) && s.try_lock().is_ok_and(|g| g.is_none()));
        if empty {
            out.remove(key);
        }
    }

    /// Forget the channels to `to` (its node is gone).
    pub fn forget(&self, to: &str) {
        lock(&self.out).retain(|(url, _), _| url != to);
    }
}

/// Takes a sent message out of the queue, and its waiter, when the send ends or is dropped.
struct Unqueue<'a> {
    peers: &'a Peers,
    id: u64,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        self.peers.unqueue(self.id);
    }
}

/// Bytes of [`request_binding`] at the head of every sealed reply.
const BINDING_LEN: usize = 32;

/// What binds a reply to its request: the SHA-256 of the request's sealed frame (unique:
/// each frame carries its own counter under the channel's key).
fn request_binding(frame: &[u8]) -> [u8; BINDING_LEN] {
    use sha2::{Digest, Sha256};
    Sha256::digest(frame).into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    u64::from_le_bytes(b)
}

/// How many of the queued messages one poll returns: at most `max` and `budget` bytes, at
/// least one (the reply is one frame, which the host reads up to 22 MiB).
fn poll_count<'a>(queued: impl Iterator<Item = &'a Outbound>, max: usize, budget: usize) -> usize {
    let (mut n, mut bytes) = (0, 0usize);
    for m in queued.take(max.max(1)) {
        bytes = bytes.saturating_add(m.bytes.len() + m.to.len() + 64);
        if n > 0 && bytes > budget {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
#[path = "peers_tests.rs"]
mod peers_tests;

#[cfg(test)]
mod poll_tests {
    use super::*;

    #[test]
    fn a_poll_returns_at_most_its_budget_of_bytes_and_at_least_one_message() {
        let m = |len| Outbound { id: 0, to: "http://h".into(), bytes: vec![0; len] };
        let q: Vec<Outbound> = vec![m(12 << 20), m(12 << 20), m(10)];
        assert_eq!(poll_count(q.iter(), 64, POLL_BYTES), 1);
        assert_eq!(poll_count(q[1..].iter(), 64, POLL_BYTES), 2);
        assert_eq!(poll_count(q.iter(), 64, 1), 1, "at least one");
        let small: Vec<Outbound> = (0..100).map(|_| m(100)).collect();
        assert_eq!(poll_count(small.iter(), 64, POLL_BYTES), 64);
        assert_eq!(poll_count(small.iter(), 0, POLL_BYTES), 1);
        assert_eq!(poll_count(std::iter::empty(), 64, POLL_BYTES), 0);
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::Bounded;

    /// Keys taken out leave the order too: alternating inserts and takes (handshakes
    /// finished, with junk or not) never let the map pass its bound, and the order never
    /// holds more than the map.
    #[test]
    fn taken_keys_leave_the_order_and_the_bound_holds() {
        let mut b = Bounded::new(64);
        for hs in 0..10_000u64 {
            b.insert(hs, ());
            assert!(b.take(&hs).is_some());
        }
        assert_eq!((b.map.len(), b.order.len()), (0, 0));
        for hs in 10_000..10_200u64 {
            b.insert(hs, ());
            assert!(b.map.len() <= 64 && b.order.len() == b.map.len(), "{} {}", b.map.len(), b.order.len());
        }
        // The oldest were evicted, the newest 64 kept; a key inserted again keeps its place.
        assert!(b.get(&10_135).is_none() && b.get(&10_136).is_some() && b.get(&10_199).is_some());
        b.insert(10_136, ());
        b.insert(10_200, ());
        assert!(b.get(&10_136).is_none(), "the oldest, evicted first");
        assert_eq!(b.take(&10_136), None);
    }
}
