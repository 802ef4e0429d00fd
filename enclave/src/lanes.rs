//! Where a stand-alone enclave serves each call: signing on the runtime's workers, every
//! other call on one of two lanes of its own.
//!
//! A creation holds the owner lock through its attestation and signatures, and every other
//! owner call waits for that lock; a status holds the exposure lock while it values an
//! owner's group. Served on the runtime's workers (as many as vCPUs), a few such calls in
//! flight — creations from fresh keys, which anyone can make — stalled signing on every
//! connection (a review of 2026-12-05). So only signing, the hot path, runs on a worker;
//! any other call waits (asynchronously, holding only its frame's bytes, which the memory
//! plan already counts per connection) for its lane's one turn, and then runs on the
//! runtime's blocking pool while the connection's task waits on its worker, the turn held
//! until its answer is encoded.
//!
//! A signing request whose session's lock is held for longer than a few signatures (an
//! owner call working on that session: a sweep signs up to ≈ 512 revocations under it) is
//! not waited for on the worker — whoever owns a session could otherwise keep every worker
//! waiting on it (a review of 2026-12-05): it is refused inside the enclave with nothing
//! changed (`service::SESSION_BUSY`), the lock is waited for on the blocking pool with
//! nothing decoded held, at most 50 ms, and the request is served again on the worker — or
//! answered busy (nothing decided), which the host asks again. No lane's turn is
//! held meanwhile (a third lane for these, tried first, let one session's owner hold up
//! every other session's contended signing behind its own).
//!
//! Two lanes, one turn each, so that the memory plan counts exactly [`LANES`] requests
//! decoded and answered beside the workers' ([`crate::memory`]): handing every call off the
//! worker without a bound let up to 32 near-maximum requests be held at once (tried and
//! reverted the same day), and handing it off with `block_in_place` left the thread to run
//! the connection's task on, decoding its next frame beside the workers (a review of the
//! first lanes). Owner calls — and whatever is not recognised — take the owner lane; reads
//! (status, audit, attestation) the reading lane, so a flood of creations does not hold up
//! a status, nor a flood of statuses an owner's revocation. A connection answers its calls
//! in order, so a stand-alone host sends owner calls and reads on connections of their
//! own, apart from signing (`enclave_client::OWNER_CONNECTIONS` in the host).
//!
//! What the lanes do not isolate: signing still takes the exposure book's lock, which a
//! status holds while it values an owner's group, the session map's read lock, which a
//! creation's pass over finished sessions holds for writing (at most once a second while
//! the budget is short, `service::budget::Passes`).
//!
//! The lane is read from the frame's first bytes, as the host encodes them (`version`, then
//! `call` and its name); a frame encoded otherwise (valid CBOR in another order) is served
//! on the owner lane. A frame sent to the workers as signing must decode as signing, or it
//! is refused: nothing else runs there whatever the first bytes say.

use crate::Enclave;
use alloy_primitives::Address;
use bridle_common::error::{Denial, ErrorCode, SESSION_BUSY};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Calls of one lane decoded and served at once.
const TURNS: usize = 1;

/// Calls decoded and served at once off the runtime's workers: [`TURNS`] in each of the
/// two lanes.
pub const LANES: usize = 2 * TURNS;

/// Where a call is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `sign_if_allowed`: on the runtime's worker, at once.
    Signing,
    /// Owner calls, sweeps, and any frame whose call is not read as one of the others.
    Owner,
    /// `status`, `audit`, `attest`.
    Reading,
}

/// The lanes' turns, shared by every connection of one server.
#[derive(Debug)]
pub struct Lanes {
    owner: Semaphore,
    reading: Semaphore,
}

impl Default for Lanes {
    fn default() -> Self {
        Lanes { owner: Semaphore::new(TURNS), reading: Semaphore::new(TURNS) }
    }
}

impl Lanes {
    /// Wait for `lane`'s turn; `None` for [`Lane::Signing`], which takes none.
    pub async fn turn(&self, lane: Lane) -> Option<SemaphorePermit<'_>> {
        let semaphore = match lane {
            Lane::Signing => return None,
            Lane::Owner => &self.owner,
            Lane::Reading => &self.reading,
        };
        // Never closed.
        semaphore.acquire().await.ok()
    }

    /// Turns free now on (owner, reading) lanes.
    pub fn free(&self) -> (usize, usize) {
        (self.owner.available_permits(), self.reading.available_permits())
    }
}

/// Wait, off the runtime's worker and until `deadline` at most, for `session`'s lock (held
/// by an owner call working on it) to be free; else the busy answer ([`SESSION_BUSY`]),
/// saying that `nothing` was done. For a signing request on a worker, and a cluster
/// leader's checks before the log.
pub async fn wait_for_session(
    enclave: Arc<Enclave>,
    session: Address,
    deadline: Instant,
    nothing: &str,
) -> Result<(), Denial> {
    let left = deadline.saturating_duration_since(Instant::now());
    let freed = !left.is_zero()
        && tokio::task::spawn_blocking(move || enclave.wait_for_session(&session, left)).await.unwrap_or(false);
    if freed {
        return Ok(());
    }
    Err(Denial::rule(
        ErrorCode::Unavailable,
        SESSION_BUSY,
        format!("session {session} is busy with its owner's calls; {nothing}; ask again"),
    ))
}

/// The lane of a request frame, from its first bytes (see the module docs).
pub fn lane_of(frame: &[u8]) -> Lane {
    match call_name(frame) {
        Some(b"sign_if_allowed") => Lane::Signing,
        Some(b"status" | b"audit" | b"attest") => Lane::Reading,
        _ => Lane::Owner,
    }
}

/// The call's name in a frame that starts as the host encodes it: a map of two entries,
/// `version` (an unsigned integer of up to two bytes) then `call`, a map of one entry whose
/// key is the name (text of fewer than 24 bytes, as every call's is).
fn call_name(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(&[0xa2, 0x67])?.strip_prefix(b"version")?;
    let rest = match *rest.first()? {
        0x00..=0x17 => rest.get(1..)?,
        0x18 => rest.get(2..)?,
        0x19 => rest.get(3..)?,
        _ => return None,
    };
    let rest = rest.strip_prefix(&[0x64])?.strip_prefix(b"call")?.strip_prefix(&[0xa1])?;
    let len = match *rest.first()? {
        h @ 0x60..=0x77 => usize::from(h - 0x60),
        _ => return None,
    };
    rest.get(1..1 + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_common::frame::to_cbor;
    use bridle_common::protocol::{Call, CallClass, RequestFrame, PROTOCOL_VERSION};

    fn frame(call: Call) -> Vec<u8> {
        to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap()
    }

    /// One call of every kind, signing first, with the lane it belongs in.
    pub(crate) fn one_of_each_call() -> Vec<(Call, Lane)> {
        use crate::service::room_tests::{creation, T0};
        use alloy_primitives::{Address, Bytes, B256};
        use bridle_common::cluster::ClusterCall;
        use bridle_common::protocol::*;
        let e = crate::Enclave::new(Box::new(crate::clock::FixedClock::new(T0)), None, crate::Config::default());
        let c = creation(&e, T0, 1);
        let auth = c.auth.clone();
        let (session, digest) = (Address::repeat_byte(7), B256::repeat_byte(9));
        let stamp = bridle_common::stamp::Stamp { nonce: [1; 16], timestamp: T0, mac: [2; 32] };
        vec![
            (
                Call::SignIfAllowed(SignRequest {
                    session,
                    payload: SignPayload::Message(Bytes::from_static(b"hi")),
                    stamp,
                }),
                Lane::Signing,
            ),
            (Call::UpdatePolicy(UpdatePolicy { auth: auth.clone(), session, policy: c.policy.clone() }), Lane::Owner),
            (Call::CreateSession(c), Lane::Owner),
            (Call::Revoke(Revoke { auth: auth.clone(), session }), Lane::Owner),
            (Call::RevokeAll(RevokeAll { auth: auth.clone() }), Lane::Owner),
            (Call::ApprovePending(ApprovePending { auth: auth.clone(), session, digest }), Lane::Owner),
            (Call::DenyPending(DenyPending { auth: auth.clone(), session, digest }), Lane::Owner),
            (Call::Sweep(Sweep { session, terms: vec![], accounts: vec![], auth: None }), Lane::Owner),
            (Call::AllowImage(AllowImage { auth, session, image: digest }), Lane::Owner),
            (Call::Cluster(ClusterCall::Poll { wait_ms: 0, max: 1 }), Lane::Owner),
            (Call::Attest(Attest { nonce: None }), Lane::Reading),
            (Call::Audit(AuditQuery { since: 0, nonce: None }), Lane::Reading),
            (
                Call::Status(StatusQuery { session: Some(session), nonce: Some(digest), held: Some(digest) }),
                Lane::Reading,
            ),
        ]
    }

    /// Every call as the host encodes it lands in its lane (the names are read where the
    /// encoder puts them).
    #[test]
    fn every_call_as_encoded_lands_in_its_lane() {
        let calls = one_of_each_call();
        for (call, lane) in &calls {
            let by_class = match call.class() {
                CallClass::Signing => Lane::Signing,
                CallClass::Reading => Lane::Reading,
                CallClass::Owner | CallClass::Cluster => Lane::Owner,
            };
            assert_eq!(by_class, *lane, "{}", call.name());
            assert_eq!(lane_of(&frame(call.clone())), *lane, "{}", call.name());
        }
        let names: std::collections::BTreeSet<_> = calls.iter().map(|(c, _)| c.name()).collect();
        assert_eq!(names.len(), 13, "one of each call: {names:?}");
    }

    #[test]
    fn any_version_width_is_read() {
        for version in [0u16, 23, 24, 255, 256, u16::MAX] {
            let f = to_cbor(&RequestFrame {
                version,
                call: Call::Audit(bridle_common::protocol::AuditQuery { since: 0, nonce: None }),
            })
            .unwrap();
            assert_eq!(lane_of(&f), Lane::Reading, "version {version}");
        }
    }

    /// Anything not read as the host encodes it takes the owner lane: never the workers.
    #[test]
    fn anything_else_takes_the_owner_lane() {
        let signing = frame(one_of_each_call().remove(0).0);
        assert_eq!(lane_of(&signing), Lane::Signing);
        // Cut anywhere before the name's end, it is not read as signing.
        let name_end = signing.windows(15).position(|w| w == b"sign_if_allowed").unwrap() + 15;
        for cut in 0..name_end {
            assert_eq!(lane_of(&signing[..cut]), Lane::Owner, "{cut} bytes");
        }
        assert_eq!(lane_of(&[]), Lane::Owner);
        // The same frame with its keys the other way round: valid CBOR, another order.
        let mut reordered = vec![0xa2, 0x64];
        reordered.extend_from_slice(b"call");
        let call_at = signing.windows(5).position(|w| w == [0x64, b'c', b'a', b'l', b'l']).unwrap() + 5;
        let version = &signing[1..call_at - 5];
        reordered.extend_from_slice(&signing[call_at..]);
        reordered.extend_from_slice(version);
        assert_eq!(lane_of(&reordered), Lane::Owner);
        let decoded: RequestFrame = bridle_common::frame::from_cbor(&reordered).expect("the reordered frame decodes");
        assert!(matches!(decoded.call, Call::SignIfAllowed(_)));
    }
}
