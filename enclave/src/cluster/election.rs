//! When a voter stands for election: the node's own failure detector (run by
//! [`super::ClusterNode::watch_leader`]), kept as pure decisions on [`Election`] so that they
//! are tested without a cluster.
//!
//! openraft has a timer of its own, but it draws one timeout per node and checks it only
//! every 1.5 heartbeats, so two voters whose draws round to the same tick split the vote
//! again and again. This detector draws a fresh random wait each time. Safety never
//! depends on it: a voter refuses while its own lease runs, refuses a candidate whose log
//! is shorter than its own, and a leader releases a signature only once a majority holds
//! its entry.

use std::time::{Duration, Instant};

/// A voter that heard nothing from a leader for the leader lease (openraft 0.9: the
/// maximum election timeout, [`super::ELECTION_TIMEOUT_MAX_MS`]) plus this margin plus a
/// fresh random part of [`ELECT_JITTER`] stands for election itself; the margin covers the
/// other voters' leases, which started when they, a little later, heard the same message.
pub const ELECT_MARGIN: Duration = Duration::from_millis(100);
/// The random part of every wait before standing for election, drawn afresh each time (so
/// that two voters that stood at once — a split vote — do not again).
pub const ELECT_JITTER: Duration = Duration::from_millis(400);
/// After standing without being elected, the wait (plus jitter) before standing again.
pub const ELECT_RETRY: Duration = Duration::from_millis(300);
/// After a voter refused this node's candidacy because its own log is longer, how long this
/// node does not stand again. Only a voter with the longest log can be elected, and every
/// new candidacy here raises the term that voter's candidacy must exceed: standing again
/// and again (every [`ELECT_RETRY`] plus jitter) kept it from winning for up to 3 s
/// (BENCHMARKS.md, "Failover"). The voter with the longer log stands by itself within
/// [`ELECT_MARGIN`] plus [`ELECT_JITTER`] of this node's first candidacy (both heard the
/// same last message), its first candidacy may meet this node's vote of the same term, and
/// its retry comes [`ELECT_RETRY`] plus jitter later: 1.5 s covers both. (openraft's own
/// timer waits two lease lengths after such a refusal.)
pub const ELECT_YIELD: Duration = Duration::from_millis(1500);

/// A fresh random part of a wait, uniform in 0..=[`ELECT_JITTER`].
pub fn jitter() -> Duration {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    Duration::from_millis(u64::from_le_bytes(b) % (ELECT_JITTER.as_millis() as u64 + 1))
}

/// What the failure detector keeps: when a leader was last heard from (or a vote granted),
/// when this node last stood since, the random part of its next wait, and until when it
/// yields to a voter with a longer log.
#[derive(Debug, Clone)]
pub struct Election {
    heard: Instant,
    stood: Option<Instant>,
    jitter: Duration,
    yield_until: Option<Instant>,
}

impl Election {
    pub fn new(now: Instant, jitter: Duration) -> Election {
        Election { heard: now, stood: None, jitter, yield_until: None }
    }

    /// A leader's message was accepted, or a vote granted: no election for a while. (Also
    /// when this node leads, or is not a voter.)
    pub fn heard(&mut self, now: Instant) {
        self.heard = now;
        self.stood = None;
        self.yield_until = None;
    }

    /// A voter refused this node's candidacy because its log is longer: let it stand.
    pub fn outvoted_by_longer_log(&mut self, now: Instant) {
        self.yield_until = Some(now + ELECT_YIELD);
    }

    /// Whether a voter that is a follower or a candidate stands now, given the leader lease;
    /// when it does, the next wait's random part is drawn from `next_jitter`.
    pub fn stand(&mut self, now: Instant, lease: Duration, next_jitter: impl FnOnce() -> Duration) -> bool {
        if now.saturating_duration_since(self.heard) < lease + ELECT_MARGIN + self.jitter {
            return false;
        }
        if self.stood.is_some_and(|t| now.saturating_duration_since(t) < ELECT_RETRY + self.jitter) {
            return false;
        }
        if self.yield_until.is_some_and(|t| now < t) {
            return false;
        }
        self.stood = Some(now);
        self.yield_until = None;
        self.jitter = next_jitter();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_millis(1000);
    const J: Duration = Duration::from_millis(200);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_voter_stands_once_the_lease_margin_and_jitter_passed() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, J);
        assert!(!e.stand(t0 + ms(1299), LEASE, || J));
        assert!(e.stand(t0 + ms(1300), LEASE, || ms(50)));
        // Then not before the retry wait with the new jitter.
        assert!(!e.stand(t0 + ms(1300 + 349), LEASE, || J));
        assert!(e.stand(t0 + ms(1300 + 350), LEASE, || J));
    }

    #[test]
    fn hearing_a_leader_starts_the_wait_again() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, J);
        assert!(e.stand(t0 + ms(1300), LEASE, || J));
        e.heard(t0 + ms(1400));
        assert!(!e.stand(t0 + ms(1400 + 1299), LEASE, || J));
        assert!(e.stand(t0 + ms(1400 + 1300), LEASE, || J));
    }

    #[test]
    fn a_voter_outvoted_by_a_longer_log_yields_then_stands_again() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, J);
        assert!(e.stand(t0 + ms(1300), LEASE, || J));
        // The other voter refused: its log is longer.
        e.outvoted_by_longer_log(t0 + ms(1310));
        // The retry wait (300 + 200 ms) is over, the yield is not.
        for at in [1800, 2000, 2500, 2809] {
            assert!(!e.stand(t0 + ms(at), LEASE, || J), "stood at {at} ms while yielding");
        }
        assert!(e.stand(t0 + ms(2810), LEASE, || J));
        // The yield was used up: the next retry is the ordinary one.
        assert!(e.stand(t0 + ms(2810 + 500), LEASE, || J));
    }

    #[test]
    fn a_leader_heard_during_a_yield_ends_it() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, J);
        assert!(e.stand(t0 + ms(1300), LEASE, || J));
        e.outvoted_by_longer_log(t0 + ms(1310));
        e.heard(t0 + ms(1400));
        // The new leader goes silent too: the ordinary wait, no leftover yield.
        assert!(e.stand(t0 + ms(1400 + 1300), LEASE, || J));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..1000 {
            assert!(jitter() <= ELECT_JITTER);
        }
    }
}
