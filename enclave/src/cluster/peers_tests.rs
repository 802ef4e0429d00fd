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
    let identity =
        NodeIdentity::generate(nsm.clone(), boot.canonical(), TrustedRoot::Der(ca.root_der().to_vec())).unwrap();
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
