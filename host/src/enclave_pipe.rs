//! One connection to the enclave carrying several exchanges at once, in order: the
//! enclave answers a connection's frames in the order they came (a cluster node serves
//! them at once, a stand-alone enclave one after another), so the n-th reply read belongs
//! to the n-th request written. Several requests in flight on one connection share its
//! system calls and wake-ups on both sides: a `recv` that brings several frames, a `send`
//! that carries several (issue 12).
//!
//! The invariants that keep every reply with its own request:
//! * Only the pipe's writer task writes, and it writes whole frames (each write bounded in
//!   time): a caller hands over a
//!   request through a channel (cancel-safe: handed over or not), never writes itself, so a
//!   caller that goes away mid-write cannot leave half a frame in the stream.
//! * A request's waiter is queued, under the queue's lock, before its bytes are written;
//!   only the reader pops waiters, one per reply, front first. A reply with no waiter, an
//!   undecodable length, or silence beyond [`DRAIN_TIMEOUT`] (or the call timeout, if
//!   longer) while a reply is due closes the pipe: every waiter left is told that its
//!   request may have been received and is not re-sent. A closed pipe's connection is shut
//!   down at once (the enclave's answers must not fill a socket nobody reads).
//! * A pipe idle for [`IDLE_CLOSE`] closes itself, before the enclave's own idle timeout
//!   (300 s) could close it under a request just written.
//! * When writing fails, the bytes the kernel accepted are counted: the requests wholly
//!   within them may have reached the enclave (their waiters stay for the reply, or learn
//!   the connection was lost); the rest never did and are answered [`Outcome::NotSent`], the
//!   only outcome the client retries. The pipe then takes no more requests.
//! * A waiter holds its caller's pool permit until the reply is read (or the pipe closes),
//!   even when the caller went away: the enclave serves every request to its end.

use bridle_common::frame::{max_answer, push_frame, FrameError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit};

/// Longest a due reply is waited for (a cluster call ends within its commit timeout; a
/// wedged enclave's connection is closed after this).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the reader checks, while waiting, whether a reply is overdue.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A pipe with nothing in flight for this long closes (the enclave closes connections idle
/// for 300 s).
pub const IDLE_CLOSE: Duration = Duration::from_secs(240);
/// Why a request handed over as its connection closes is not sent.
const CLOSING: &str = "the connection is closing";
/// Most bytes of requests the writer puts in one write.
const MAX_WRITE: usize = 256 << 10;

/// Anything a pipe runs over: an unbuffered socket (Unix, vsock), so that bytes a write
/// accepted are the kernel's — the writer counts them to tell sent from not sent.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// What became of one request.
#[derive(Debug)]
pub enum Outcome {
    /// The reply frame's body.
    Reply(Vec<u8>),
    /// The enclave cannot have received the whole request: safe to send again.
    NotSent(String),
    /// The request was written, and the connection ended before its reply: it may have
    /// been served; never sent again.
    Lost(String),
    /// The enclave's reply to this request broke the protocol (a frame over the limit).
    Protocol(String),
}

/// A request's place in the reply queue. Dropping it releases the caller's permit and the
/// pipe's load, and wakes callers waiting for room.
struct Waiter {
    tx: Option<oneshot::Sender<Outcome>>,
    _permit: OwnedSemaphorePermit,
    shared: Arc<Shared>,
}

impl Waiter {
    fn answer(mut self, o: Outcome) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(o);
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.shared.load.fetch_sub(1, Ordering::SeqCst);
        self.shared.room.notify_waiters();
    }
}

struct Job {
    body: Vec<u8>,
    waiter: Waiter,
}

/// What the pipe's tasks and handle share.
struct Shared {
    waiting: Mutex<VecDeque<Waiter>>,
    /// No new requests: the pipe failed or is closing.
    dead: AtomicBool,
    /// Requests assigned and not yet answered.
    load: AtomicUsize,
    /// The reader ended: the connection is closed.
    closed: AtomicBool,
    /// Notified when load falls or the pipe closes (the client's, shared by its pipes).
    room: Arc<Notify>,
    /// Tells the writer that the reader ended: shut the connection down.
    stop: Notify,
    /// How long a due reply may take.
    overdue_after: Duration,
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiter>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Close for new requests and answer every waiter left with `why` (the first with
    /// `first`, when given).
    fn fail_all(&self, why: &str, first: Option<Outcome>) {
        let left: Vec<Waiter> = {
            let mut q = self.queue();
            self.dead.store(true, Ordering::SeqCst);
            q.drain(..).collect()
        };
        let mut first = first;
        for w in left {
            w.answer(first.take().unwrap_or_else(|| {
                Outcome::Lost(format!("connection to the enclave lost after the request was sent ({why}); not retried"))
            }));
        }
    }
}

/// A handle on one pipe.
pub struct Pipe {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Pipe {
    /// Start the pipe's reader and writer over `io`, whose first exchange (if any) is done
    /// and fully read. `room` is notified when this pipe can take a request again or has
    /// closed; a due reply may take `call_timeout` or [`DRAIN_TIMEOUT`], whichever is longer.
    /// Requests are at most `max_frame` bytes, and replies at most [`max_answer`] of it.
    pub fn start(io: Box<dyn Io>, max_frame: usize, call_timeout: Duration, room: Arc<Notify>) -> Pipe {
        let shared = Arc::new(Shared {
            waiting: Mutex::new(VecDeque::new()),
            dead: AtomicBool::new(false),
            load: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            room,
            stop: Notify::new(),
            overdue_after: call_timeout.max(DRAIN_TIMEOUT),
        });
        let (r, w) = tokio::io::split(io);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(shared.clone(), w, rx));
        tokio::spawn(read_loop(shared.clone(), FrameReader { io: r, buf: Vec::new(), max: max_answer(max_frame) }));
        Pipe { shared, jobs: tx }
    }

    /// Requests assigned and not yet answered.
    pub fn load(&self) -> usize {
        self.shared.load.load(Ordering::SeqCst)
    }

    /// Takes no more requests.
    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// The connection is closed (its reader ended).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Count one more request on this pipe (before [`Pipe::send`]).
    pub fn reserve(&self) {
        self.shared.load.fetch_add(1, Ordering::SeqCst);
    }

    /// Hand `body` to the writer; the outcome arrives on the returned receiver. The caller's
    /// `permit` is held until then. Must follow [`Pipe::reserve`].
    pub fn send(&self, body: Vec<u8>, permit: OwnedSemaphorePermit) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter { tx: Some(tx), _permit: permit, shared: self.shared.clone() };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { body, waiter }) {
            job.waiter.answer(Outcome::NotSent(CLOSING.into()));
        }
        rx
    }
}

async fn write_loop(shared: Arc<Shared>, mut w: WriteHalf<Box<dyn Io>>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut buf = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = shared.stop.notified() => break,
            j = rx.recv() => match j {
                Some(j) => j,
                None => break,
            },
        };
        let mut jobs = vec![first];
        let mut size = jobs[0].body.len() + 4;
        while size < MAX_WRITE {
            match rx.try_recv() {
                Ok(j) => {
                    size += j.body.len() + 4;
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        buf.clear();
        let mut ends = Vec::with_capacity(jobs.len());
        {
            let mut q = shared.queue();
            if shared.dead.load(Ordering::SeqCst) {
                drop(q);
                for j in jobs {
                    j.waiter.answer(Outcome::NotSent(CLOSING.into()));
                }
                continue;
            }
            for j in jobs {
                // (The client refuses bodies over the frame limit before sending.)
                match push_frame(&mut buf, &j.body) {
                    Ok(()) => {
                        ends.push(buf.len());
                        q.push_back(j.waiter);
                    }
                    Err(e) => j.waiter.answer(Outcome::NotSent(e.to_string())),
                }
            }
        }
        let mut written = 0;
        let failed = loop {
            if shared.closed.load(Ordering::SeqCst) {
                // The reader ended and answered every waiter: write nothing more.
                break Some("the connection closed".to_string());
            }
            if written == buf.len() {
                break tokio::time::timeout(shared.overdue_after, w.flush())
                    .await
                    .ok()
                    .and_then(|r| r.err())
                    .map(|e| e.to_string());
            }
            // A write that does not finish in time wrote nothing (it was still pending).
            match tokio::time::timeout(shared.overdue_after, w.write(&buf[written..])).await {
                Err(_) => break Some(format!("the enclave took no bytes for {:?}", shared.overdue_after)),
                Ok(Ok(0)) => break Some("the enclave closed the connection".to_string()),
                Ok(Ok(n)) => written += n,
                Ok(Err(e)) => break Some(e.to_string()),
            }
        };
        if let Some(why) = failed {
            // The requests not wholly written never reached the enclave: the last ones queued.
            let unsent = ends.iter().filter(|end| **end > written).count();
            let back: Vec<Waiter> = {
                let mut q = shared.queue();
                shared.dead.store(true, Ordering::SeqCst);
                let keep = q.len().saturating_sub(unsent);
                q.drain(keep..).collect()
            };
            for waiter in back {
                waiter.answer(Outcome::NotSent(why.clone()));
            }
        }
    }
    // The reader ended (or every handle is gone): close the connection, and answer what
    // is still in the channel — none of it was written.
    shared.dead.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
    rx.close();
    // (`recv` after `close` returns every job sent before it, then `None`.)
    while let Some(j) = rx.recv().await {
        j.waiter.answer(Outcome::NotSent(CLOSING.into()));
    }
}

async fn read_loop(shared: Arc<Shared>, mut r: FrameReader) {
    // Since when no reply came while one was due; since when nothing was in flight.
    let mut quiet_since = Instant::now();
    let mut idle_since = Instant::now();
    let (why, first) = loop {
        match tokio::time::timeout(CHECK_EVERY, r.next()).await {
            Err(_) => {
                let q = shared.queue();
                if !q.is_empty() {
                    idle_since = Instant::now();
                    if quiet_since.elapsed() > shared.overdue_after {
                        break (format!("no reply within {:?}", shared.overdue_after), None);
                    }
                    continue;
                }
                quiet_since = Instant::now();
                if shared.load.load(Ordering::SeqCst) > 0 {
                    idle_since = Instant::now();
                }
                // Nothing in flight: a pipe that takes no more requests, or idle too long,
                // closes (a request handed over meanwhile finds it dead and is not sent).
                if shared.dead.load(Ordering::SeqCst) || idle_since.elapsed() > IDLE_CLOSE {
                    shared.dead.store(true, Ordering::SeqCst);
                    break ("closed".to_string(), None);
                }
            }
            Ok(Err(FrameError::Closed)) => break ("the enclave closed the connection".to_string(), None),
            Ok(Err(e @ FrameError::TooLarge { .. })) => {
                break (e.to_string(), Some(Outcome::Protocol(e.to_string())));
            }
            Ok(Err(e)) => break (e.to_string(), None),
            Ok(Ok(body)) => {
                quiet_since = Instant::now();
                idle_since = Instant::now();
                let Some(w) = shared.queue().pop_front() else {
                    break ("the enclave sent a reply to no request".to_string(), None);
                };
                w.answer(Outcome::Reply(body));
            }
        }
    };
    shared.fail_all(&why, first);
    shared.closed.store(true, Ordering::SeqCst);
    shared.stop.notify_one();
    shared.room.notify_waiters();
}

/// Reads frames from a stream, cancel-safe: bytes are taken off the buffer only once a
/// whole frame is there, so a read abandoned half-way (a timeout) loses nothing.
pub struct FrameReader<R = ReadHalf<Box<dyn Io>>> {
    pub io: R,
    pub buf: Vec<u8>,
    pub max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// The next frame's body. A clean end before a frame is `Closed`; a length over the
    /// limit is refused before anything is allocated for it.
    pub async fn next(&mut self) -> Result<Vec<u8>, FrameError> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                if len > self.max {
                    return Err(FrameError::TooLarge { len, max: self.max });
                }
                if self.buf.len() >= 4 + len {
                    let body = self.buf[4..4 + len].to_vec();
                    self.buf.drain(..4 + len);
                    return Ok(body);
                }
                self.buf.reserve(4 + len - self.buf.len());
            } else {
                self.buf.reserve(8 << 10);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(if self.buf.is_empty() {
                    FrameError::Closed
                } else {
                    FrameError::Malformed("connection closed inside a frame".into())
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read abandoned half-way (its timeout) loses nothing: the frame comes whole on the
    /// next read; a length over the limit is refused; a close inside a frame is malformed.
    #[tokio::test]
    async fn frame_reads_survive_being_abandoned() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = FrameReader { io: rx, buf: Vec::new(), max: 1000 };
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(b"ok");
        let mut got = Vec::new();
        for piece in bytes.chunks(3) {
            tx.write_all(piece).await.unwrap();
            // Each piece is taken in; the read is given up while no frame is whole.
            if let Ok(frame) = tokio::time::timeout(Duration::from_millis(5), r.next()).await {
                got.push(frame.unwrap());
            }
        }
        assert_eq!(got, [b"hello".to_vec(), b"ok".to_vec()]);
        tx.write_all(&2000u32.to_be_bytes()).await.unwrap();
        assert!(matches!(r.next().await, Err(FrameError::TooLarge { len: 2000, max: 1000 })));
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = FrameReader { io: rx, buf: Vec::new(), max: 1000 };
        tx.write_all(&[0, 0, 0, 9, 1, 2]).await.unwrap();
        drop(tx);
        assert!(matches!(r.next().await, Err(FrameError::Malformed(_))));
        let (tx, rx) = tokio::io::duplex(64);
        drop(tx);
        assert!(matches!(FrameReader { io: rx, buf: Vec::new(), max: 1 }.next().await, Err(FrameError::Closed)));
    }
}
