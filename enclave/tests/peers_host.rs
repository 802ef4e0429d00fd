//! What a cluster node's host can make its channels to peers hold (a review of 2026-12-06,
//! night, wrote these tests; both failed before its fixes).
//!
//! The outbound queue kept every message whose send had given up: while the node's host did
//! not poll (`ClusterCall::Poll`), every retry of an append (openraft re-sends the same
//! entries every heartbeat after a timeout) added another full copy, up to `MAX_QUEUE` =
//! 4 096 messages of up to 12 MiB. Now a send that ends or is dropped takes its message
//! out, and the queue holds at most `MAX_MESSAGE` bytes (a message is always taken into an
//! empty one): the memory plan's one message out.
//!
//! A channel slot stayed for every URL the node was asked to reach, and the host names the
//! URLs a join or a rejoin asks: now a slot whose handshake failed goes.

use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, NsmProvider, TrustedRoot, PCR_LEN};
use bridle_channel::{NodeIdentity, PeerAttestation};
use bridle_enclave::attest::{commit_config, BootConfig, ClusterBoot};
use bridle_enclave::cluster::admit::ClusterAdmit;
use bridle_enclave::cluster::peers::{Handler, Peers};
use bridle_enclave::cluster::MAX_MESSAGE;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

struct Echo;

impl Handler for Echo {
    fn handle<'a>(
        &'a self,
        request: Vec<u8>,
        _peer: &'a PeerAttestation,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send + 'a>> {
        Box::pin(async move { request[..16.min(request.len())].to_vec() })
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
        .with_max_message_len(MAX_MESSAGE)
        .unwrap();
    let peers = Arc::new(Peers::new(identity, b"test".to_vec(), ClusterAdmit::new([pcr(0), pcr(1), pcr(2)], &boot)));
    peers.set_handler(Arc::new(Echo));
    peers
}

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
        let m = a.poll(Duration::from_secs(5), 1).await.remove(0);
        let reply = b.deliver(&m.bytes).await;
        a.respond(m.id, Ok(reply));
    }
    first.await.unwrap().expect("channel up");

    // The host stops polling. A's replication retries a large append, as openraft does:
    // the whole call under an outer timeout of one heartbeat.
    const ATTEMPTS: usize = 24;
    const PAYLOAD: usize = 4 << 20;
    let append = vec![7u8; PAYLOAD];
    for _ in 0..ATTEMPTS {
        let r =
            tokio::time::timeout(Duration::from_millis(30), a.request(to, None, &append, Duration::from_millis(30)))
                .await;
        assert!(r.is_err() || r.unwrap().is_err(), "nothing was carried");
    }

    // The host polls again: every abandoned copy is still there.
    let mut stale = 0usize;
    let mut bytes = 0usize;
    loop {
        let out = a.poll(Duration::from_millis(10), 256).await;
        if out.is_empty() {
            break;
        }
        stale += out.len();
        bytes += out.iter().map(|m| m.bytes.len()).sum::<usize>();
    }
    let plan = MAX_MESSAGE as usize;
    eprintln!("stale messages queued: {stale}, {} MiB (the plan's one message out: {} MiB)", bytes >> 20, plan >> 20);
    assert!(
        bytes <= plan,
        "a node whose host stops polling holds {stale} abandoned messages ({} MiB) beyond the plan's {} MiB",
        bytes >> 20,
        plan >> 20
    );
}

/// URLs a host names (seeds, joins) whose handshakes fail leave no channel slot behind
/// (40 000 of them kept 60 MiB before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_slots_for_host_named_urls_that_never_answer_are_dropped() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    for i in 0..300 {
        let url = format!("http://seed{i}.example");
        assert!(a.request(&url, None, b"x", Duration::from_millis(1)).await.is_err());
    }
    assert_eq!(a.channel_slots(), 0, "a slot is kept for a URL no channel was made to");
}
