//! Where a cluster host forwards calls: to seeds and members only, and after a peer's
//! `not_leader` only to a member it names (a review of 2026-12-06: hosts only heard from —
//! named by anyone who reaches the cluster listener — were asked, and a peer's pointer was
//! followed to any URL; a forwarded call carries an agent's stamped request or an owner's
//! signed message).

use super::*;
use bridle_common::cluster::NotLeader;
use bridle_common::protocol::PendingDenied;
use std::sync::atomic::{AtomicU64, Ordering};

/// A peer host at a URL of its own that answers every forwarded call with `result`; counts
/// the calls.
async fn peer(result: Result<Reply, Denial>) -> (String, Arc<AtomicU64>) {
    peer_answering(|_| result).await
}

/// [`peer`], with the answer made knowing the peer's own URL.
async fn peer_answering(make: impl FnOnce(&str) -> Result<Reply, Denial>) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let result = make(&url);
    let asked = Arc::new(AtomicU64::new(0));
    let counted = asked.clone();
    let app = axum::Router::new().route(
        "/v1/cluster/call",
        axum::routing::post(move || {
            let (counted, result) = (counted.clone(), result.clone());
            async move {
                counted.fetch_add(1, Ordering::Relaxed);
                to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, asked)
}

fn link(seeds: &[&str]) -> Arc<ClusterLink> {
    Arc::new(
        ClusterLink::new(crate::cluster::ClusterSettings {
            listen: "127.0.0.1:0".into(),
            advertise: "http://127.0.0.1:9".into(),
            seeds: seeds.iter().map(|s| s.to_string()).collect(),
            bootstrap: false,
            source: None,
        })
        .expect("the link"),
    )
}

/// This host's own node, answering every call with `result`.
async fn own_node(result: Result<Reply, Denial>) -> (tempfile::TempDir, SocketAddress) {
    let (dir, addr, _) = fake_enclave(move |mut s| {
        let result = result.clone();
        async move {
            while read_frame(&mut s, DEFAULT_MAX_FRAME).await.is_ok() {
                answer(&mut s, result.clone()).await;
            }
        }
    })
    .await;
    (dir, addr)
}

fn client(addr: SocketAddress, link: Arc<ClusterLink>) -> EnclaveClient {
    EnclaveClient::new(
        addr,
        ClientConfig { pool_size: 1, call_timeout: Duration::from_secs(1), ..ClientConfig::default() },
    )
    .with_cluster(link)
}

fn pointer(url: &str) -> Result<Reply, Denial> {
    Ok(Reply::NotLeader(NotLeader { leader: Some(2), leader_url: Some(url.to_string()) }))
}

fn done(i: u8) -> Result<Reply, Denial> {
    Ok(Reply::PendingDenied(PendingDenied {
        session: Address::repeat_byte(i),
        digest: Default::default(),
        until: 1,
        receipt: None,
    }))
}

#[tokio::test]
async fn calls_are_not_forwarded_to_hosts_only_heard_from() {
    let (heard, heard_asked) = peer(done(1)).await;
    let (seed, seed_asked) = peer(done(2)).await;
    let (_dir, addr) = own_node(Err(Denial::new(ErrorCode::Unavailable, "not joined"))).await;
    // With no seed, a host heard from is still no place to send a call.
    let l = link(&[]);
    l.hear(&heard);
    let r = client(addr.clone(), l).call_within(ask(1), Duration::from_secs(1)).await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(heard_asked.load(Ordering::Relaxed), 0, "a host only heard from was sent the call");
    // A seed is.
    let l = link(&[&seed]);
    l.hear(&heard);
    let r = client(addr, l).call_within(ask(1), Duration::from_secs(1)).await;
    assert_eq!(r.unwrap(), done(2).unwrap());
    assert!(seed_asked.load(Ordering::Relaxed) >= 1);
    assert_eq!(heard_asked.load(Ordering::Relaxed), 0, "a host only heard from was sent the call");
}

#[tokio::test]
async fn a_peers_pointer_is_followed_only_to_a_member() {
    let (stranger, stranger_asked) = peer(done(3)).await;
    let (member, member_asked) = peer(done(4)).await;
    // The leader's host (as this host's own node says) points elsewhere.
    let (liar, liar_asked) = peer(pointer(&stranger)).await;
    let (_dir, addr) = own_node(pointer(&liar)).await;
    let r = client(addr, link(&[])).call_within(ask(1), Duration::from_secs(1)).await;
    assert!(r.is_err(), "{r:?}");
    assert!(liar_asked.load(Ordering::Relaxed) >= 1, "this host's own node's pointer is followed");
    assert_eq!(stranger_asked.load(Ordering::Relaxed), 0, "a peer's pointer was followed to a URL no member has");

    // With a member known, the liar is passed by for it, the stranger still never asked.
    let (_dir, addr) = own_node(pointer(&liar)).await;
    let r = client(addr, link(&[&member])).call_within(ask(1), Duration::from_secs(1)).await;
    assert_eq!(r.unwrap(), done(4).unwrap());
    assert_eq!((stranger_asked.load(Ordering::Relaxed), member_asked.load(Ordering::Relaxed)), (0, 1));

    // A pointer to a member is followed.
    let (honest, _) = peer(pointer(&member)).await;
    let (_dir, addr) = own_node(pointer(&honest)).await;
    let r = client(addr, link(&[&member])).call_within(ask(1), Duration::from_secs(1)).await;
    assert_eq!(r.unwrap(), done(4).unwrap());
    assert_eq!(member_asked.load(Ordering::Relaxed), 2);
}

/// A review of the fix: a peer whose pointer is not followed sent the call back to this
/// host's own node, which, down, sent it to the first member again — the same peer, for the
/// whole call. The next member is asked instead.
#[tokio::test]
async fn a_peer_whose_pointer_is_not_followed_is_passed_by_for_the_next_member() {
    let (liar, _) = peer(pointer("http://127.0.0.1:1")).await;
    let (silent, _) = peer(Ok(Reply::NotLeader(NotLeader { leader: None, leader_url: None }))).await;
    let (leader, leader_asked) = peer(done(5)).await;
    let (_dir, addr) = own_node(Err(Denial::new(ErrorCode::Unavailable, "down"))).await;
    let r = client(addr, link(&[&liar, &silent, &leader])).call_within(ask(1), Duration::from_secs(1)).await;
    assert_eq!(r.unwrap(), done(5).unwrap());
    assert_eq!(leader_asked.load(Ordering::Relaxed), 1);
}

/// A review of 2026-12-06: a peer whose every answer points at itself as the leader had
/// one call forwarded to it with no pause, thousands of times, until the call timeout.
/// Pointers after the second are followed after a pause (the peer is a member here: a
/// pointer to anywhere else is not followed at all).
#[tokio::test]
async fn a_peer_pointing_at_itself_is_asked_only_a_few_times() {
    let (url, asked) = peer_answering(pointer).await;
    let (_dir, addr) = own_node(pointer(&url)).await;
    let client = EnclaveClient::new(
        addr,
        ClientConfig { pool_size: 1, call_timeout: Duration::from_secs(2), ..ClientConfig::default() },
    )
    .with_cluster(link(&[&url]));
    let r = client.call_within(ask(1), Duration::from_secs(2)).await;
    assert!(r.is_err(), "{r:?}");
    let n = asked.load(Ordering::Relaxed);
    assert!((2..=40).contains(&n), "the peer was asked {n} times in two seconds");
}

/// A review of the fix: a peer naming this host's own node as the leader (just elected)
/// was passed by like one naming nobody, and the call went round the peers until it timed
/// out. Its own node is asked.
#[tokio::test]
async fn a_peer_naming_this_hosts_own_node_as_leader_sends_the_call_home() {
    use std::sync::atomic::AtomicBool;
    let (peer_url, _) = peer(pointer("http://127.0.0.1:9")).await;
    // This host's own node: first "not the leader" (pointing at the peer), then it leads.
    let elected = Arc::new(AtomicBool::new(false));
    let e = elected.clone();
    let url = peer_url.clone();
    let (_dir, addr, _) = fake_enclave(move |mut s| {
        let (e, url) = (e.clone(), url.clone());
        async move {
            while read_frame(&mut s, DEFAULT_MAX_FRAME).await.is_ok() {
                let r = if e.swap(true, Ordering::SeqCst) { done(6) } else { pointer(&url) };
                answer(&mut s, r).await;
            }
        }
    })
    .await;
    let r = client(addr, link(&[&peer_url])).call_within(ask(1), Duration::from_secs(1)).await;
    assert_eq!(r.unwrap(), done(6).unwrap());
    assert!(elected.load(Ordering::SeqCst));
}

/// This host's node leads and refuses (it may not hold the session's key); the peers point
/// back at it. The caller gets that refusal, not "the cluster has no leader" (CI of
/// 7d78469: whichever answer came last was returned).
#[tokio::test]
async fn a_leaders_refusal_outranks_the_peers_pointing_back_at_it() {
    let (home, _) = peer(pointer("http://127.0.0.1:9")).await;
    let (_dir, addr) = own_node(Err(Denial::new(ErrorCode::Unavailable, "may not hold this session's key"))).await;
    for limit in [Duration::from_millis(150), Duration::from_millis(400), Duration::from_secs(1)] {
        let r = client(addr.clone(), link(&[&home])).call_within(ask(1), limit).await;
        assert_eq!(reason(r), "may not hold this session's key");
    }
}

/// Where the audit pull reads (`audit_reads::ask`): its own node; the other members while
/// its node does not serve, and before a gap its own node would leave (a node restored
/// from a snapshot holds fewer entries than the others: a review of 2026-12-06) — only a
/// member's batch that continues the copy.
mod audit_reads {
    use super::*;
    use crate::audit_reads::{ask, Asked};
    use crate::audit_store::{BatchSource, PullError};
    use alloy_primitives::B256;
    use bridle_common::audit::testing::TestChain;
    use bridle_common::audit::{AuditReply, Decision, Record};

    fn batch(c: &TestChain, from: usize, to: usize) -> Result<Reply, Denial> {
        let head = c.head_held_from(to as u64 - 1, 9, Some(from as u64));
        Ok(Reply::Audit(AuditReply { entries: c.entries[from..to].to_vec(), head, more: false }))
    }

    fn got(a: Asked) -> (u64, BatchSource) {
        match a {
            Asked::Batch(r, source) => (r.entries[0].seq, source),
            Asked::Ahead => (u64::MAX, BatchSource::OwnNode),
        }
    }

    /// The chain of `TestChain::new(7)`: 30 entries; and another of the same enclave that
    /// forks from it at 15 (a node of another image).
    fn chains() -> (TestChain, TestChain) {
        let mut c = TestChain::new(7);
        c.fill(30);
        let mut fork = TestChain::new(7);
        fork.fill(15);
        for i in 0..15 {
            fork.push(1_800_000_000 + i, Record::new(Decision::Allowed, Address::ZERO, B256::ZERO, "other"));
        }
        (c, fork)
    }

    #[tokio::test]
    async fn a_gap_its_own_node_would_leave_is_asked_of_the_other_members_first() {
        let (c, fork) = chains();
        let (e, tip) = (c.enclave(), Some(c.entries[9].hash()));
        let (holds, holds_asked) = peer(batch(&c, 10, 30)).await;
        let (lacks, _) = peer(batch(&c, 20, 30)).await;
        // Junk (a head another key signed), an old genuine batch, another image's chain.
        let mut other = TestChain::new(8);
        other.fill(1);
        let Ok(Reply::Audit(mut junk)) = batch(&c, 10, 30) else { unreachable!() };
        junk.head.signature = other.head_held_from(0, 9, None).signature;
        junk.more = true;
        let (junk, _) = peer(Ok(Reply::Audit(junk))).await;
        let (old, _) = peer(batch(&c, 0, 5)).await;
        let (forked, _) = peer(batch(&fork, 10, 30)).await;
        let (_dir, addr) = own_node(batch(&c, 20, 30)).await;
        // A member that continues the copy: taken from it (relayed).
        let cl = client(addr.clone(), link(&[&junk, &old, &forked, &lacks, &holds]));
        assert_eq!(got(ask(&cl, e, 10, tip).await.unwrap()), (10, BatchSource::Relayed));
        assert_eq!(holds_asked.load(Ordering::Relaxed), 1);
        // None does: its own node's word, the gap.
        let cl = client(addr.clone(), link(&[&junk, &old, &forked, &lacks]));
        assert_eq!(got(ask(&cl, e, 10, tip).await.unwrap()), (20, BatchSource::OwnNode));
        // No gap: the other members are not asked.
        let cl = client(addr, link(&[&holds]));
        assert_eq!(got(ask(&cl, e, 20, Some(c.entries[19].hash())).await.unwrap()), (20, BatchSource::OwnNode));
        assert_eq!(holds_asked.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn its_own_node_down_or_behind() {
        let (c, _) = chains();
        let (e, tip) = (c.enclave(), Some(c.entries[9].hash()));
        let (member, _) = peer(batch(&c, 10, 30)).await;
        let (old, _) = peer(batch(&c, 0, 5)).await;
        let (_dir, down) = own_node(Err(Denial::new(ErrorCode::Unavailable, "not joined"))).await;
        let got_down = ask(&client(down.clone(), link(&[&old, &member])), e, 10, tip).await.unwrap();
        assert_eq!(got(got_down), (10, BatchSource::Relayed));
        // No member continues the copy: asked again later.
        let r = ask(&client(down, link(&[&old])), e, 10, tip).await;
        assert!(matches!(r, Err(PullError::Retry(_))), "{:?}", r.err());
        // Its own node has not applied as far as the stored copy (a shared database): a
        // member that has goes on; otherwise nothing new.
        let (_dir, behind) = own_node(Err(Denial::malformed("audit: since 10 is past the end of the log"))).await;
        assert_eq!(
            got(ask(&client(behind.clone(), link(&[&member])), e, 10, tip).await.unwrap()),
            (10, BatchSource::Relayed)
        );
        assert!(matches!(ask(&client(behind, link(&[&old])), e, 10, tip).await.unwrap(), Asked::Ahead));
    }
}
