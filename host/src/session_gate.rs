//! While a session is busy, at most [`SESSION_IN_FLIGHT`] of its signing requests with the
//! enclave at once; the rest wait here, holding no connection.
//!
//! An enclave decides one session's requests one at a time, under its lock. A request whose
//! session is busy (its owner's call holds the lock: a sweep signs up to ≈ 512 revocations
//! under it) waits in the enclave for up to 50 ms, and is then asked again by this host
//! every 5 ms for seconds ([`crate::enclave_client`]); a stand-alone enclave answers a
//! connection's requests in order, so while it waits, the requests pipelined behind it on
//! its connection wait too. Without a bound, one agent flooding its own session while its
//! owner kept the session busy took every place of the pool's pipelines, and every other
//! session's requests waited behind it (SECURITY.md, "What the lanes leave").
//!
//! Only a session the enclave has answered busy is gated, for [`BUSY_MARK`] after its last
//! busy answer: that answer comes only after the agent's stamp verifies, so a stranger who
//! names a session in requests of its own cannot make the host queue the agent's requests
//! behind them (a review of the first version, which gated every request by the session it
//! names before the enclave had checked anything).

use alloy_primitives::Address;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most signing requests of one busy session with the enclave at once (of a pool's up to
/// 24 × 4).
pub const SESSION_IN_FLIGHT: usize = 4;

/// How long after its last busy answer a session's requests go through its places.
pub const BUSY_MARK: Duration = Duration::from_millis(200);

/// Sessions marked busy kept beside those with requests in the gate; past it, marks that
/// have lapsed are dropped when another is made.
const MAX_MARKS: usize = 4096;

/// Sessions answered busy lately, and those with signing requests in the gate.
#[derive(Debug)]
pub struct SessionGate {
    sessions: Mutex<HashMap<Address, Entry>>,
    /// When this gate was made: [`SessionGate::last_mark`] counts from it.
    base: Instant,
    /// Milliseconds from `base` to the last busy mark, plus one (0: none yet): while no mark
    /// is that recent, a signing request is not gated without a look at the map (every
    /// signing request asks).
    last_mark: AtomicU64,
}

impl Default for SessionGate {
    fn default() -> Self {
        SessionGate { sessions: Mutex::default(), base: Instant::now(), last_mark: AtomicU64::new(0) }
    }
}

#[derive(Debug)]
struct Entry {
    places: Arc<Semaphore>,
    busy_until: Instant,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry { places: Arc::new(Semaphore::new(SESSION_IN_FLIGHT)), busy_until: now }
    }

    /// No pass holds or waits for its places (only the map holds them), and its mark lapsed.
    fn idle(&self, now: Instant) -> bool {
        Arc::strong_count(&self.places) == 1 && self.busy_until <= now
    }
}

/// One request's place among its session's: freed when dropped (its reply read, or its
/// caller gone while it waited).
#[derive(Debug)]
pub struct Pass<'a> {
    gate: &'a SessionGate,
    session: Address,
    places: Arc<Semaphore>,
    place: Option<OwnedSemaphorePermit>,
}

impl SessionGate {
    /// Whether `session` was answered busy within [`BUSY_MARK`].
    pub fn is_busy(&self, session: Address) -> bool {
        let last = self.last_mark.load(Ordering::Relaxed);
        if last == 0 || self.millis() > last.saturating_add(BUSY_MARK.as_millis() as u64) {
            return false;
        }
        self.lock().get(&session).is_some_and(|e| e.busy_until > Instant::now())
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The enclave answered `session` busy: its requests take places for [`BUSY_MARK`].
    pub fn mark_busy(&self, session: Address) {
        let now = Instant::now();
        let mut sessions = self.lock();
        if sessions.len() >= MAX_MARKS && !sessions.contains_key(&session) {
            sessions.retain(|_, e| !e.idle(now));
        }
        sessions.entry(session).or_insert_with(|| Entry::new(now)).busy_until = now + BUSY_MARK;
        self.last_mark.store(self.millis().saturating_add(1), Ordering::Relaxed);
    }

    /// Wait for a place among `session`'s.
    pub async fn enter(&self, session: Address) -> Pass<'_> {
        let places = self.lock().entry(session).or_insert_with(|| Entry::new(Instant::now())).places.clone();
        // Made before waiting, so that a caller dropped while it waits still leaves the map.
        let mut pass = Pass { gate: self, session, places, place: None };
        // The semaphore is never closed.
        pass.place = pass.places.clone().acquire_owned().await.ok();
        pass
    }

    /// Sessions marked busy or with a request holding or waiting for a place.
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }

    /// Places of `session`'s taken now.
    pub fn taken(&self, session: Address) -> usize {
        self.lock().get(&session).map_or(0, |e| SESSION_IN_FLIGHT - e.places.available_permits())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.place.take();
        let mut sessions = self.gate.lock();
        // Every other pass of this session cloned `places` under this lock: none is left
        // when only the map and this pass hold it.
        let last = Arc::strong_count(&self.places) == 2;
        if last
            && sessions
                .get(&self.session)
                .is_some_and(|e| Arc::ptr_eq(&e.places, &self.places) && e.busy_until <= Instant::now())
        {
            sessions.remove(&self.session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One session's requests beyond its places wait, another session's do not; the map
    /// holds only sessions with requests or a mark, and a waiter that gives up leaves it too.
    #[tokio::test]
    async fn a_session_holds_at_most_its_places() {
        let gate = SessionGate::default();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut held = Vec::new();
        for _ in 0..SESSION_IN_FLIGHT {
            held.push(gate.enter(a).await);
        }
        assert_eq!(gate.taken(a), SESSION_IN_FLIGHT);
        let next = tokio::time::timeout(Duration::from_millis(20), gate.enter(a)).await;
        assert!(next.is_err(), "a fifth request of one session waits");
        let other = tokio::time::timeout(Duration::from_secs(5), gate.enter(b)).await;
        assert!(other.is_ok(), "another session's does not");
        assert_eq!(gate.sessions(), 2);
        drop(other);
        assert_eq!(gate.sessions(), 1, "a session leaves with its last request");
        held.pop();
        let fifth = tokio::time::timeout(Duration::from_secs(5), gate.enter(a)).await.expect("a place freed");
        drop((held, fifth));
        assert_eq!(gate.sessions(), 0);
    }

    /// A busy answer marks a session for a while; the mark keeps its entry, and lapses.
    #[test]
    fn a_busy_mark_lapses() {
        let gate = SessionGate::default();
        let a = Address::repeat_byte(1);
        assert!(!gate.is_busy(a));
        gate.mark_busy(a);
        assert!(gate.is_busy(a));
        assert_eq!(gate.sessions(), 1);
        std::thread::sleep(BUSY_MARK + Duration::from_millis(10));
        assert!(!gate.is_busy(a));
    }
}
