//! What the cluster's log may hold is bounded in bytes, not only in entries: a request
//! larger than a call may be (`MAX_CALL_FRAME`) is refused before the log, and once the
//! entries since the last snapshot hold more than `--cluster-snapshot-bytes`, every node
//! takes a snapshot and drops them — here long before the entry count would. And an
//! `allow_image` its owner did not sign never reaches the log (its entry would carry keys).

use alloy_primitives::{Address, B256};
use bridle_common::owner::action;
use bridle_common::protocol::{AllowImage, RevokeAll, SignPayload};
use bridle_tests::cluster::{cap_policy, stamped, transfer, Cluster};
use bridle_tests::{code, owner_action, Actor};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_entries_make_every_node_snapshot_and_oversized_calls_stay_out() {
    // A snapshot every 100 000 entries, or every 2 MiB of entries.
    let mut c =
        Cluster::start_with(3, &["--cluster-snapshot-logs", "100000", "--cluster-snapshot-bytes", "2097152"]).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let applied = |v: &serde_json::Value| v["last_applied"].as_u64().unwrap_or(0);
    let before = c.wait_quiet(l, Duration::from_secs(20)).await;
    for i in 0..3 {
        let v = c.info(i).await.unwrap();
        assert!(v["snapshot"].as_u64().unwrap_or(0) <= before, "{v}");
    }

    // Over the bound for a call: refused, and nothing reaches the log.
    let req = stamped(&g, SignPayload::Message(vec![1u8; 200_000].into()));
    let (s, v) = c.client().post(l, "/v1/sign", &req).await;
    assert_eq!(code(&v), "too_large", "{s} {v}");
    assert!(v.to_string().contains("a cluster node serves at most 131072"), "{v}");
    assert_eq!(applied(&c.info(l).await.unwrap()), before, "the oversized call was not proposed");

    // Refused requests of ≈ 100 KB each (a message over its bound), which a leader logs
    // (within its bound on refusals) so that every node audits the same: 40 of them are
    // ≈ 4 MB of log.
    for i in 0..40u8 {
        let mut m = vec![i; 100_000];
        m[1] = 0xee;
        let req = stamped(&g, SignPayload::Message(m.into()));
        let (s, v) = c.client().post(l, "/v1/sign", &req).await;
        assert!(s >= 400, "{s} {v}");
    }
    let after = applied(&c.info(l).await.unwrap());
    assert!(after >= before + 30, "the refusals were logged: {before} → {after}");
    // Every node snapshots past the first 2 MiB of them (≈ 21 entries).
    for i in 0..3 {
        c.wait(Duration::from_secs(60), Duration::from_millis(100), || {
            let c = &c;
            async move {
                let v = c.info(i).await.ok_or("no info")?;
                let snap = v["snapshot"].as_u64().unwrap_or(0);
                if snap >= before + 20 {
                    Ok(())
                } else {
                    Err(format!("node {i}: snapshot at {snap}, the refusals start after {before}"))
                }
            }
        })
        .await;
    }
    c.kill_enclave(l);
}

/// An `allow_image` entry carries the keys of the sessions it names to every node of the
/// image it names, so the leader checks the owner's signature before it attaches them: one
/// its owner did not sign is refused before the log (nothing proposed, no key sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allow_image_its_owner_did_not_sign_never_enters_the_log() {
    let mut c = Cluster::start(3).await;
    let owner = Actor::random();
    let g = c.grant(0, &owner, &Actor::random(), &cap_policy(100)).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let st = c.status(l).await;
    let image = B256::repeat_byte(7);
    let msg = |session, agent| owner_action(action::ALLOW_IMAGE, st.identity_address, session, agent, image);
    let applied = |v: serde_json::Value| v["last_applied"].as_u64().unwrap_or(0);
    let path = format!("/v1/owners/{}/allow-image", owner.address);
    let before = c.wait_quiet(l, Duration::from_secs(20)).await;

    // Signed by someone else in the owner's name, for one session and for all of them.
    for (session, agent) in [(g.session, g.agent.address), (Address::ZERO, Address::ZERO)] {
        let mut auth = Actor::random().sign_owner(&msg(session, agent));
        auth.owner = owner.address;
        let (s, v) = c.post(l, &path, &AllowImage { auth, session, image }).await;
        assert_eq!((s, code(&v)), (401, "unauthenticated"), "{v}");
    }
    assert_eq!(applied(c.info(l).await.unwrap()), before, "nothing was proposed");

    // The owner's own: accepted, through the log.
    let body = AllowImage { auth: owner.sign_owner(&msg(g.session, g.agent.address)), session: g.session, image };
    let (s, v) = c.post(l, &path, &body).await;
    assert_eq!(s, 200, "{v}");
    assert!(applied(c.info(l).await.unwrap()) > before);

    // Copies of one signed message, at once (a host may replay what it relays): one is
    // accepted; the others are refused as replays, before the log while it is proposed.
    let body = AllowImage { auth: owner.sign_owner(&msg(Address::ZERO, Address::ZERO)), session: Address::ZERO, image };
    let client = c.client();
    let copies: Vec<_> = (0..16)
        .map(|_| {
            let (client, path, body) = (client.clone(), path.clone(), body.clone());
            tokio::spawn(async move { client.post(l, &path, &body).await })
        })
        .collect();
    let mut ok = 0;
    for t in copies {
        let (s, v) = t.await.unwrap();
        match s {
            200 => ok += 1,
            _ => assert_eq!((s, code(&v)), (401, "replayed"), "{v}"),
        }
    }
    assert_eq!(ok, 1, "one copy accepted");
    c.kill_enclave(l);
}

/// Owner calls nobody signed are refused before the log beyond the leader's bound on
/// refusals (64 a second): a burst of them leaves the log nearly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owner_calls_nobody_signed_are_logged_only_within_the_refusal_bound() {
    let mut c = Cluster::start(3).await;
    let owner = Actor::random();
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let st = c.status(l).await;
    let applied = |v: serde_json::Value| v["last_applied"].as_u64().unwrap_or(0);
    let before = c.wait_quiet(l, Duration::from_secs(20)).await;
    let t0 = std::time::Instant::now();
    let path = format!("/v1/owners/{}/revoke-all", owner.address);
    let revoke_all = || owner_action(action::REVOKE_ALL, st.identity_address, Address::ZERO, Address::ZERO, B256::ZERO);
    let burst = 300u64;
    let client = c.client();
    let mut tasks = Vec::new();
    for _ in 0..burst {
        let msg = revoke_all();
        let mut auth = Actor::random().sign_owner(&msg);
        auth.owner = owner.address;
        let (client, path) = (client.clone(), path.clone());
        tasks.push(tokio::spawn(async move { client.post(l, &path, &RevokeAll { auth }).await }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!((s, code(&v)), (401, "unauthenticated"), "{v}");
    }
    // The bound counts per second of the leader's clock: a burst of t seconds touches at
    // most ⌊t⌋ + 2 of them.
    let secs = t0.elapsed().as_secs() + 2;
    let logged = applied(c.info(l).await.unwrap()) - before;
    assert!(logged <= 64 * secs, "{logged} of {burst} refusals logged in {secs} s");
    // The owner's own call still goes through.
    let msg = revoke_all();
    let (s, v) = c.post(l, &path, &RevokeAll { auth: owner.sign_owner(&msg) }).await;
    assert_eq!(s, 200, "{v}");
    c.kill_enclave(l);
}

/// A signing request for a session the leader does not know makes the leader catch up
/// (apply everything committed before its term) and check again before it proposes the
/// request, so a leader just elected never proposes one past the key check: the catch-up
/// and the proposal both within the bound on refusals. A burst for sessions nobody created
/// is refused `unknown_session`, at most 64 a second logged, and a real session still signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_requests_for_unknown_sessions_are_logged_only_within_the_refusal_bound() {
    let mut c = Cluster::start(3).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let applied = |v: serde_json::Value| v["last_applied"].as_u64().unwrap_or(0);
    let before = c.wait_quiet(l, Duration::from_secs(20)).await;
    let t0 = std::time::Instant::now();
    let burst = 300u64;
    let client = c.client();
    let mut tasks = Vec::new();
    for i in 0..burst {
        let mut nobody = g.clone();
        nobody.session = Actor::random().address;
        let req = transfer(&nobody, i, 1);
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.post(l, "/v1/sign", &req).await }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(code(&v), "unknown_session", "{s} {v}");
    }
    let secs = t0.elapsed().as_secs() + 2;
    let logged = applied(c.info(l).await.unwrap()) - before;
    assert!(logged <= 64 * secs, "{logged} of {burst} refusals logged in {secs} s");
    assert!(logged >= 1, "refusals within the bound are logged, so every node audits alike");
    let (s, v) = c.post(l, "/v1/sign", &transfer(&g, 0, 1)).await;
    assert_eq!(s, 200, "{v}");
    c.kill_enclave(l);
}

/// Entries not yet committed cannot be snapshotted: a leader cut off from its majority
/// stops proposing once its log holds half `--cluster-snapshot-bytes` (or 4 096 entries)
/// after the last entry applied, and answers `unavailable` at once instead of growing its
/// log with every call it accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_without_a_majority_stops_growing_its_log() {
    // 1 MiB: the leader holds at most 512 KiB of entries nobody committed.
    let mut c = Cluster::start_with(3, &["--cluster-snapshot-bytes", "1048576"]).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let l = c.wait_leader(Duration::from_secs(10)).await;
    for i in (0..3).filter(|&i| i != l) {
        c.kill_enclave(i);
    }
    // Refused requests of ≈ 100 KB (a leader logs refusals within its bound, so that every
    // node audits the same). Of a first wave of 8 at once, those that arrive before the log
    // holds 512 KiB are proposed (calls in flight may each pass the check: the bound is
    // exceeded by at most those) and wait for a majority that never comes; once they are
    // in the log, every further one is refused before it.
    let client = c.client();
    let wave = |from: u8| {
        (from..from + 8)
            .map(|i| {
                let mut m = vec![i; 100_000];
                m[1] = 0xee;
                let (client, req) = (client.clone(), stamped(&g, SignPayload::Message(m.into())));
                tokio::spawn(async move { client.post(l, "/v1/sign", &req).await })
            })
            .collect::<Vec<_>>()
    };
    let first = wave(0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = wave(8);
    for (n, t) in first.into_iter().chain(second).enumerate() {
        let (s, v) = t.await.unwrap();
        assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
        let at_bound = v.to_string().contains("that no majority has committed yet");
        assert!(at_bound || n < 8, "request {n}: {v}");
    }
    // And so is anything else, however small, while the majority is gone.
    let (s, v) = client.post(l, "/v1/sign", &transfer(&g, 0, 1)).await;
    assert_eq!((s, code(&v)), (503, "unavailable"), "{v}");
    assert!(v.to_string().contains("at most 4096 entries and 524288 bytes"), "{v}");
    c.kill_enclave(l);
}
