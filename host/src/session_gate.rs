//! At most [`SESSION_IN_FLIGHT`] of one session's signing requests with the enclave at once;
//! the rest wait here, holding no connection.
//!
//! An enclave decides one session's requests one at a time, under its lock, so more of them
//! at once buy nothing. And a request whose session is busy (its owner's call holds the
//! lock: a sweep signs up to ≈ 512 revocations under it) waits in the enclave for up to
//! 50 ms, and is then asked again by this host every 5 ms for seconds
//! ([`crate::enclave_client`]); a stand-alone enclave answers a connection's requests in
//! order, so while it waits, the requests pipelined behind it on its connection wait too.
//! Without a bound, one agent flooding its own session while its owner keeps the session
//! busy took every place of the pool's pipelines, and every other session's requests waited
//! behind it (SECURITY.md, "What the lanes leave"). With it, one session holds at most
//! [`SESSION_IN_FLIGHT`] of them.

use alloy_primitives::Address;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most signing requests of one session with the enclave at once (of a pool's up to 24 × 4).
pub const SESSION_IN_FLIGHT: usize = 4;

/// The sessions with signing requests at this host, each with its places.
#[derive(Debug, Default)]
pub struct SessionGate {
    /// Only sessions with a request holding or waiting for a place: an entry goes with the
    /// last pass that holds it.
    sessions: Mutex<HashMap<Address, Arc<Semaphore>>>,
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
    /// Wait for a place among `session`'s.
    pub async fn enter(&self, session: Address) -> Pass<'_> {
        let places = self.lock().entry(session).or_insert_with(|| Arc::new(Semaphore::new(SESSION_IN_FLIGHT))).clone();
        // Made before waiting, so that a caller dropped while it waits still leaves the map.
        let mut pass = Pass { gate: self, session, places, place: None };
        // The semaphore is never closed.
        pass.place = pass.places.clone().acquire_owned().await.ok();
        pass
    }

    /// Sessions with a request holding or waiting for a place.
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, Arc<Semaphore>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.place.take();
        let mut sessions = self.gate.lock();
        // Every other pass of this session cloned `places` under this lock: none is left
        // when only the map and this pass hold it.
        if Arc::strong_count(&self.places) == 2
            && sessions.get(&self.session).is_some_and(|p| Arc::ptr_eq(p, &self.places))
        {
            sessions.remove(&self.session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One session's requests beyond its places wait, another session's do not; the map
    /// holds only sessions with requests, and a waiter that gives up leaves it too.
    #[tokio::test]
    async fn a_session_holds_at_most_its_places() {
        let gate = SessionGate::default();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut held = Vec::new();
        for _ in 0..SESSION_IN_FLIGHT {
            held.push(gate.enter(a).await);
        }
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
}
