//! Two nodes' `Peers` and a host between them that carries (or withholds, or swaps) what
//! they send: a reply answers the very request it was made for.

use super::*;
use crate::attest::{commit_config, BootConfig, ClusterBoot};
use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, NsmProvider, TrustedRoot, PCR_LEN};

struct Echo;

impl Handler for Echo {
    fn handle<'a>(
        &'a self,
        request: Vec<u8>,
        _peer: &'a PeerAttestation,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'a>> {
        Box::pin(async move { [b"re: ".as_slice(), &request].concat() })
    }
}

fn node(ca: &MockCa) -> Arc<Peers> {
    let image = ImageMeasurement::new([1; PCR_LEN], [2; PCR_LEN], [3; PCR_LEN]);
    let nsm = Arc::new(MockNsm::with_ca(ca, image).unwrap());
    let mut boot = BootConfig::new(300, 1 << 20, true);
    boot.cluster = Some(ClusterBoot { id: "test".into(), memory_budget_mib: 64, release_pcr8: None });
    commit_config(nsm.as_ref(), &boot).unwrap();
    let pcr = |i: u16| nsm.describe_pcr(i).unwrap().data;
    let identity = NodeIdentity::generate(nsm.clone(), boot.canonical(), TrustedRoot::Der(ca.root_der().to_vec()))
        .unwrap()
        .with_max_message_len(super::super::MAX_MESSAGE)
        .unwrap();
    let peers = Arc::new(Peers::new(identity, b"test".to_vec(), ClusterAdmit::new([pcr(0), pcr(1), pcr(2)], &boot)));
    peers.set_handler(Arc::new(Echo));
    peers
}

/// Carry `a`'s next message to `b` and return its id and `b`'s answer (not yet given to `a`).
async fn carry(a: &Peers, b: &Peers) -> (u64, Vec<u8>) {
    let out = a.poll(Duration::from_secs(5), 1).await;
    let m = out.into_iter().next().expect("a message to carry");
    (m.id, b.deliver(&m.bytes).await)
}

/// A review of 2026-12-04: a host kept a peer's sealed reply to one request and handed it
/// back as the answer to another that it never delivered (an append's `Success` for an
/// entry no follower holds). The reply names the request it answers: refused.
#[tokio::test]
async fn a_reply_kept_from_one_request_does_not_answer_another() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let to = "http://b";
    let ask = |msg: &'static [u8]| {
        let a = a.clone();
        tokio::spawn(async move { a.request(to, None, msg, Duration::from_secs(10)).await })
    };

    // The handshake and a first request, carried honestly.
    let first = ask(b"one");
    for _ in 0..2 {
        let (id, reply) = carry(&a, &b).await;
        a.respond(id, Ok(reply));
    }
    let (id, reply) = carry(&a, &b).await;
    a.respond(id, Ok(reply));
    assert_eq!(first.await.unwrap().unwrap().0, b"re: one");

    // The host keeps the reply to "two" and tells `a` it was dropped.
    let second = ask(b"two");
    let (id, kept) = carry(&a, &b).await;
    a.respond(id, Err("dropped".into()));
    assert!(second.await.unwrap().is_err());

    // "three" is never delivered: the kept reply is handed back as its answer.
    let third = ask(b"three");
    let out = a.poll(Duration::from_secs(5), 1).await;
    a.respond(out[0].id, Ok(kept));
    let e = third.await.unwrap().expect_err("a reply to another request");
    assert!(e.to_string().contains("does not answer this request"), "{e}");

    // Carried honestly again, the channel still works.
    let fourth = ask(b"four");
    let (id, reply) = carry(&a, &b).await;
    a.respond(id, Ok(reply));
    assert_eq!(fourth.await.unwrap().unwrap().0, b"re: four");
}

/// A review of 2026-12-05: anyone who reaches a host could spend the second's handshake
/// budget with 18-byte junk, locking peers out of new channels, and replace a peer's
/// handshake under way by sending a Hello with its id. Junk is refused before the budget
/// is charged, and a Hello under an id already pending is refused.
#[tokio::test]
async fn junk_hellos_spend_no_budget_and_a_handshake_under_way_is_kept() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let junk = to_cbor(&Wire::Hello { hs: 0, msg1: ByteBuf::new() }).unwrap();
    for _ in 0..HANDSHAKES_PER_SECOND * 3 {
        let r: WireReply = from_cbor(&b.deliver(&junk).await).unwrap();
        assert!(matches!(&r, WireReply::Refused(why) if why.contains("not a first handshake")), "{r:?}");
    }
    // `a`'s Hello, delivered twice (a host that copied it): the second is refused, and the
    // first handshake finishes.
    let ask = {
        let a = a.clone();
        tokio::spawn(async move { a.request("http://b", None, b"one", Duration::from_secs(10)).await })
    };
    let hello = a.poll(Duration::from_secs(5), 1).await.remove(0);
    let first = b.deliver(&hello.bytes).await;
    let again: WireReply = from_cbor(&b.deliver(&hello.bytes).await).unwrap();
    assert!(matches!(&again, WireReply::Refused(why) if why.contains("under way")), "{again:?}");
    a.respond(hello.id, Ok(first));
    for _ in 0..2 {
        let (id, reply) = carry(&a, &b).await;
        a.respond(id, Ok(reply));
    }
    assert_eq!(ask.await.unwrap().unwrap().0, b"re: one");
}

/// A review of 2026-12-06 (night): a send that gave up (its own timeout, or its caller's
/// dropping it, as openraft does after a heartbeat) left its message queued, so while the
/// host did not poll every retry of an append queued another full copy — up to 4 096 of
/// 12 MiB, an OOM kill; 24 retries of 4 MiB queued 96 MiB. Now the message leaves with its
/// waiter, and the queue holds at most `MAX_MESSAGE` bytes (the memory plan's one out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_outbound_messages_leave_the_queue_while_the_host_does_not_poll() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let to = "http://b";
    // The handshake and one request, carried honestly.
    let first = {
        let a = a.clone();
        tokio::spawn(async move { a.request(to, None, b"hello", Duration::from_secs(10)).await })
    };
    for _ in 0..3 {
        let (id, reply) = carry(&a, &b).await;
        a.respond(id, Ok(reply));
    }
    first.await.unwrap().expect("channel up");

    // The host stops polling; the node retries a large append, each attempt under an
    // outer timeout as openraft wraps it.
    let append = vec![7u8; 4 << 20];
    for _ in 0..24 {
        let r =
            tokio::time::timeout(Duration::from_millis(30), a.request(to, None, &append, Duration::from_millis(30)))
                .await;
        assert!(r.is_err() || r.unwrap().is_err(), "nothing was carried");
    }
    assert!(lock(&a.waiting).is_empty(), "waiters of calls given up on are left");
    let mut bytes = 0usize;
    loop {
        let out = a.poll(Duration::from_millis(10), 256).await;
        if out.is_empty() {
            break;
        }
        bytes += out.iter().map(|m| m.bytes.len()).sum::<usize>();
    }
    assert!(bytes <= MAX_QUEUE_BYTES, "{} MiB queued for a host that stopped polling", bytes >> 20);
}

/// A review of 2026-12-06 (night): a channel slot stayed for every URL the node was asked
/// to reach, and the host names the URLs joins and rejoins ask (40 000 kept 60 MiB). A slot
/// whose handshake failed goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_slots_for_urls_that_never_answer_are_dropped() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    for i in 0..300 {
        let url = format!("http://seed{i}.example");
        assert!(a.request(&url, None, b"x", Duration::from_millis(1)).await.is_err());
    }
    assert_eq!(lock(&a.out).len(), 0, "a slot is kept for a URL no channel was made to");
}
