//! An enclave cluster loses its leader under load (README, "High availability"): the cap
//! stays exact across the failover, nothing is signed twice, sessions keep their addresses
//! and keep signing; a killed node rejoins and catches up.

use bridle_tests::cluster::{cap_policy, signer_of, transfer, Cluster};
use bridle_tests::{code, Actor};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_load_signs_exactly_the_cap() {
    let mut c = Cluster::start(3).await;
    let owner = Actor::random();
    let g = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let other = c.grant(1, &owner, &Actor::random(), &cap_policy(100)).await;
    let leader = c.wait_leader(Duration::from_secs(10)).await;

    // 200 requests of 1 USDC against a 100 USDC cap, 32 at a time, through every host.
    let reqs: Vec<_> = (0..200u64).map(|n| transfer(&g, n, 1)).collect();
    let client = c.client();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (k, req) in reqs.into_iter().enumerate() {
        let (client, sem, done) = (client.clone(), sem.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = client.sign_until_decided(k % 3, &req, Duration::from_secs(60)).await;
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            r
        }));
    }
    // Kill -9 the leader's enclave once some 40 have been answered.
    while done.load(std::sync::atomic::Ordering::SeqCst) < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = Instant::now();
    c.kill_enclave(leader);
    // Meanwhile another session signs through a surviving host, as soon as it can.
    let probe = {
        let (client, other) = (client.clone(), other.clone());
        tokio::spawn(async move {
            let req = transfer(&other, 0, 1);
            let r = client.sign_until_decided((leader + 1) % 3, &req, Duration::from_secs(60)).await;
            (r, killed_at.elapsed())
        })
    };
    let mut signatures = HashSet::new();
    let (mut signed, mut capped, mut retried) = (0, 0, 0);
    for t in tasks {
        let (status, v, tries) = t.await.unwrap();
        if tries > 1 {
            retried += 1;
        }
        match (status, code(&v)) {
            (200, _) => {
                signed += 1;
                assert_eq!(signer_of(&v), g.session, "signed by the session key: {v}");
                assert!(signatures.insert(v["signature"].as_str().unwrap().to_string()), "signed twice: {v}");
            }
            (403, "spend_cap") => capped += 1,
            other => panic!("undecided or unexpected: {other:?} {v}"),
        }
    }
    println!("signed {signed}, capped {capped}, asked again {retried}");
    assert_eq!(signed, 100, "exactly the cap, across the failover");
    assert_eq!(capped, 100);

    // A new leader; the session keeps its address, and the other one kept signing.
    let new_leader = c.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    let ((status, v, _), after) = probe.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(signer_of(&v), other.session);
    println!("failover: leader enclave killed; another session's next signature {after:?} later (under load)");
    // Through the host whose enclave died: it sends calls to the leader.
    let req = transfer(&other, 1, 1);
    let (status, v, _) = client.sign_until_decided(leader, &req, Duration::from_secs(30)).await;
    assert_eq!(status, 200, "{v}");
    let (s, v) = c.get(new_leader, &format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session"]["uses"], 100, "{v}");
    let req = transfer(&g, 500, 1);
    let (status, v, _) = client.sign_until_decided(new_leader, &req, Duration::from_secs(30)).await;
    assert_eq!((status, code(&v)), (403, "spend_cap"), "{v}");

    // The killed node comes back (a new enclave behind the same host): it joins as a new
    // node, catches up, replaces the dead one as a voter and serves.
    c.restart_enclave(leader);
    c.wait_voters(3, Duration::from_secs(60)).await;
    c.wait_ready(leader, Duration::from_secs(30)).await;
    let info = c.info(leader).await.unwrap();
    assert!(info["snapshot"].as_u64().is_some(), "it caught up from a snapshot: {info}");
    let req = transfer(&other, 2, 1);
    let (status, v, _) = client.sign_until_decided(leader, &req, Duration::from_secs(30)).await;
    assert_eq!(status, 200, "{v}");
}

/// A follower killed and restarted at once: its new enclave joins and is promoted while the
/// dead one still looks alive to the leader. The dead voter must still be dropped (else the
/// cluster has four voters, one dead, and the next kill leaves no majority): the leader
/// dies next, and the two survivors — one of them the new node — elect and sign.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_at_once_leaves_no_dead_voter_behind() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    let g = c.grant(leader, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let f = (leader + 1) % 3;
    c.kill_enclave(f);
    c.restart_enclave(f);
    c.wait_voter(f, Duration::from_secs(60)).await;
    c.wait_voters(3, Duration::from_secs(60)).await;

    c.kill_enclave(leader);
    let client = c.client();
    let req = transfer(&g, 0, 1);
    let (status, v, _) = client.sign_until_decided(f, &req, Duration::from_secs(60)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(signer_of(&v), g.session);
}
