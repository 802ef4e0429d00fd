//! A host splicing snapshot chunks (a review of 2026-12-07), end to end in one process: two
//! real cluster nodes (`cluster::launch`, mock NSM), a host between them that carries their
//! messages (poll → deliver → respond) and lies the way any host (or anyone on the
//! plain-HTTP path between hosts) can: it keeps sealed snapshot-chunk frames, answers the
//! leader `Err` for them, and delivers the kept ones later. The leader holds more than 8 MiB
//! of state (three 4 MiB chunks). Before the fix the joining node's install got
//! A.0 ‖ zeros ‖ A.2 and its Raft stopped for good; now the out-of-order chunk is refused
//! (`cluster::snapshot_in`) and the node takes the leader's next stream and serves.
//!
//! `SPLICE_SESSIONS=N` changes the state's size; `SPLICE_CONTROL=1` never delivers the kept
//! frames.

use alloy_primitives::{Address, Bytes, B256};
use bridle_attestation::{ImageMeasurement, MockCa, MockNsm, TrustedRoot, PCR_LEN};
use bridle_common::cluster::{ClusterCall, ClusterReply, ClusterStart, Outbound};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use bridle_common::protocol::{Call, CreateSession, OwnerAuth, Reply, StatusQuery};
use bridle_enclave::attest::{commit_config, BootConfig, ClusterBoot};
use bridle_enclave::clock::SystemClock;
use bridle_enclave::cluster::{launch, ClusterNode, NodeConfig, DEFAULT_SNAPSHOT_BYTES};
use bridle_enclave::Config;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn node(ca: &MockCa) -> Arc<ClusterNode> {
    let image = ImageMeasurement::new([1; PCR_LEN], [2; PCR_LEN], [3; PCR_LEN]);
    let nsm = Arc::new(MockNsm::with_ca(ca, image).unwrap());
    let mut boot = BootConfig::new(300, 1 << 20, true);
    boot.cluster = Some(ClusterBoot { id: "splice".into(), memory_budget_mib: 1024, release_pcr8: None });
    commit_config(nsm.as_ref(), &boot).unwrap();
    launch(NodeConfig {
        nsm,
        boot,
        root: TrustedRoot::Der(ca.root_der().to_vec()),
        config: Config::default(),
        clock: Box::new(SystemClock),
        snapshot_logs: 64,
        snapshot_bytes: DEFAULT_SNAPSHOT_BYTES,
        rules: bridle_enclave::cluster::rules::RULES_VERSION,
    })
    .await
    .unwrap()
}

async fn call(n: &ClusterNode, c: ClusterCall) -> ClusterReply {
    match n.handle(Call::Cluster(c)).await.unwrap() {
        Reply::Cluster(r) => r,
        other => panic!("{other:?}"),
    }
}

/// What the lying host does with one message from A to B (by size: the snapshot's chunks
/// are the only frames over 1 MiB here).
#[derive(Default)]
struct Lies {
    big_seen: Vec<usize>,
    kept_a0: Option<Vec<u8>>,
    kept_a2: Option<Vec<u8>>,
    full: usize,
    done: bool,
    stop_all_big: bool,
}

enum Act {
    Carry,
    Keep,
    Fail,
    Hold,
}

impl Lies {
    fn decide(&mut self, m: &Outbound) -> Act {
        let len = m.bytes.len();
        if len < (1 << 20) || self.done {
            return Act::Carry;
        }
        self.big_seen.push(len);
        let n = self.big_seen.len();
        if self.stop_all_big {
            return Act::Hold;
        }
        match n {
            // A.0, first try: kept; the leader is told it failed and sends it again.
            1 => {
                self.full = len;
                self.kept_a0 = Some(m.bytes.clone());
                Act::Keep
            }
            // A.0 again, A.1: carried.
            2 | 3 => Act::Carry,
            // The last chunk's first try: kept.
            4 => {
                assert!(len < self.full, "a three-chunk snapshot: {:?}", self.big_seen);
                self.kept_a2 = Some(m.bytes.clone());
                Act::Keep
            }
            // Its retries fail until the leader gives the stream up; the next stream's first
            // chunk (full size again) is carried, and everything after it held.
            _ if len < self.full => Act::Fail,
            _ => {
                self.stop_all_big = true;
                Act::Carry
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_splicing_snapshot_chunks_does_not_stop_a_joining_node() {
    let sessions: usize = std::env::var("SPLICE_SESSIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(7500);
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca).await, node(&ca).await);
    let (ua, ub) = ("http://node-a:8550".to_string(), "http://node-b:8550".to_string());
    let by_url: HashMap<String, Arc<ClusterNode>> = [(ua.clone(), a.clone()), (ub.clone(), b.clone())].into();
    let lies = Arc::new(Mutex::new(Lies::default()));
    let attack = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The hosts: each polls its node and carries what it sends.
    for (from, me) in [(ua.clone(), a.clone()), (ub.clone(), b.clone())] {
        let by_url = by_url.clone();
        let lies = lies.clone();
        let attack = attack.clone();
        tokio::spawn(async move {
            loop {
                let ClusterReply::Outbound(out) = call(&me, ClusterCall::Poll { wait_ms: 200, max: 64 }).await else {
                    panic!("poll")
                };
                for m in out {
                    let Some(to) = by_url.get(&m.to).cloned() else {
                        me.handle(Call::Cluster(ClusterCall::Respond { id: m.id, result: Err("no such host".into()) }))
                            .await
                            .unwrap();
                        continue;
                    };
                    let act = if from.contains("node-a") && attack.load(std::sync::atomic::Ordering::SeqCst) {
                        lies.lock().unwrap().decide(&m)
                    } else {
                        Act::Carry
                    };
                    let me = me.clone();
                    tokio::spawn(async move {
                        let result = match act {
                            Act::Carry => match call(&to, ClusterCall::Deliver { bytes: m.bytes }).await {
                                ClusterReply::Delivered { bytes } => Ok(bytes),
                                other => panic!("{other:?}"),
                            },
                            Act::Keep | Act::Fail => Err("the peer's host did not answer".to_string()),
                            Act::Hold => return,
                        };
                        let _ = me
                            .handle(Call::Cluster(ClusterCall::Respond { id: m.id, result: result.map(Into::into) }))
                            .await;
                    });
                }
            }
        });
    }

    // A founds the cluster.
    let start =
        |url: &str, seeds: Vec<String>, bootstrap: bool| ClusterStart { advertise: url.into(), seeds, bootstrap };
    call(&a, ClusterCall::Start(start(&ua, vec![], true))).await;
    let Reply::Status(st) =
        a.handle(Call::Status(StatusQuery { session: None, nonce: None, held: None })).await.unwrap()
    else {
        panic!()
    };
    let enclave = st.identity_address;

    // More than 8 MiB of state: sessions granted by fresh owners (anyone can).
    let now = now_ms() / 1000;
    let policy = resolve_text(
        r#"
name = "splice"
chains = [1]
valid_for = "23h"
[tokens]
USDC = { address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", decimals = 6 }
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
"#,
        now,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (a, policy, sem) = (a.clone(), policy.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let owner = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
            let agent = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
            let agent_addr = Address::from_public_key(agent.verifying_key());
            let msg = OwnerAction {
                action: action::CREATE_SESSION.into(),
                enclave,
                session: Address::ZERO,
                agent: agent_addr,
                policyHash: policy.hash(),
                subject: B256::ZERO,
                nonce: now_ms(),
            };
            let (sig, recid) = owner.sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
            let sig = alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd());
            let auth = OwnerAuth {
                owner: Address::from_public_key(owner.verifying_key()),
                nonce: msg.nonce,
                signature: Bytes::copy_from_slice(&sig.as_bytes()),
            };
            let pk = Bytes::copy_from_slice(agent.verifying_key().to_encoded_point(true).as_bytes());
            let r = a.handle(Call::CreateSession(CreateSession { auth, agent_public_key: pk, policy })).await;
            matches!(r, Ok(Reply::SessionCreated(_)))
        }));
    }
    let mut made = 0;
    for t in tasks {
        made += t.await.unwrap() as usize;
    }
    eprintln!("{made} of {sessions} sessions granted in {:?}", started.elapsed());
    assert!(made * 10 >= sessions * 9, "{made} of {sessions}");

    // B joins through the lying host: its state comes as a snapshot (A's log was compacted).
    attack.store(true, std::sync::atomic::Ordering::SeqCst);
    call(&b, ClusterCall::Start(start(&ub, vec![ua.clone()], false))).await;

    // Wait until the host holds both kept frames and the leader's next stream began.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        {
            let l = lies.lock().unwrap();
            if l.stop_all_big {
                break;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "the attack did not reach its point: chunks seen {:?} (fewer than three chunks: more sessions)",
                    l.big_seen
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (k0, k2, seen) = {
        let mut l = lies.lock().unwrap();
        (l.kept_a0.take().unwrap(), l.kept_a2.take().unwrap(), l.big_seen.clone())
    };
    eprintln!("chunk frames seen (bytes): {seen:?}; B before the kept frames: {:?}", b.info().role);
    // The kept frames, delivered now (their replies go nowhere).
    // SPLICE_CONTROL=1: the same lies, but the kept frames are never delivered (the control:
    // B then takes the leader's next stream whole and serves).
    let control = std::env::var("SPLICE_CONTROL").is_ok();
    for kept in if control { vec![] } else { vec![k0, k2] } {
        let ClusterReply::Delivered { bytes } = call(&b, ClusterCall::Deliver { bytes: kept }).await else { panic!() };
        eprintln!("a kept frame delivered: a {}-byte reply", bytes.len());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // From now on the host carries everything honestly.
    lies.lock().unwrap().done = true;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !b.info().ready && b.info().role != "shutdown" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let info = b.info();
    if control {
        assert!(info.ready, "control: B takes the next stream and serves ({info:?})");
        eprintln!("control: B ready, role {}", info.role);
        return;
    }
    eprintln!("B after: role {} ready {} last_applied {:?}", info.role, info.ready, info.last_applied);
    assert!(
        info.role != "shutdown",
        "the joining node's Raft stopped: a host spliced its snapshot's chunks ({info:?})"
    );
    assert!(info.ready, "the joining node takes the leader's next stream and serves ({info:?})");
}
