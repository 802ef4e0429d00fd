//! `bridle-cluster-bench`: what replication costs, measured side by side in one run
//! (issue 11, BENCHMARKS.md "Enclave cluster").
//!
//! 1. Throughput: `--requests` stamped ERC-20 transfers with `--concurrency` in flight,
//!    first through one stand-alone enclave and host, then through the leader's host of a
//!    three-node cluster (every decision committed by a majority before it is released).
//! 2. Memory per session: the enclave's resident memory before and after `--sessions`
//!    grants of the README's example policy, on the stand-alone enclave and on the cluster's
//!    leader and a follower (noisy: the allocator reuses freed memory); and, exactly, the
//!    enclave code's own accounting in this process ([`heap_per_session`]): the heap it
//!    keeps and its memory budget's charge per session, for a stand-alone enclave and for
//!    a cluster node's state machine applying the same grants as log entries, plus what a
//!    node holds besides (the log entry until the next snapshot; a snapshot's encoding, built
//!    only while one is sent).
//! 3. Failover, `--failovers` times: with one agent signing back to back through a
//!    follower's host, kill -9 the leader's enclave; the time from the kill to the first
//!    signature completed after it, and its phases (polling the survivors' cluster info
//!    every 20 ms: first candidate, new leader, known to the signing host's enclave). The
//!    killed node then rejoins as a new node.
//!
//! `--relay-http` makes the hosts relay each message as its own HTTP request (as before the
//! persistent streams), to compare the two.
//!
//! Starts real binaries from `BRIDLE_BIN_DIR` (release binaries for numbers: `make
//! bench-cluster`). Bounded in count and time; talks only to 127.0.0.1.

use bridle_common::policy::Policy;
use bridle_common::protocol::SignRequest;
use bridle_tests::cluster::{cap_policy, transfer, Cluster, ClusterClient};
use bridle_tests::*;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: bridle-cluster-bench [--requests N (≤ 60000, default 2000)] [--concurrency C (default 16)] \
     [--sessions S (default 300)] [--failovers F (default 3)] [--snapshot-logs L (default 10000)] [--relay-http]
Starts release binaries from BRIDLE_BIN_DIR on 127.0.0.1; see BENCHMARKS.md, \"Enclave cluster\".";

const VALUED: [&str; 5] = ["--requests", "--concurrency", "--sessions", "--failovers", "--snapshot-logs"];

/// Every argument is a known option with a number where one is due; anything else (and
/// `--help`) prints the usage instead of running a benchmark with defaults.
fn check_args() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--relay-http" {
            i += 1;
            continue;
        }
        let why = if a == "--help" || a == "-h" {
            None
        } else if !VALUED.contains(&a) {
            Some(format!("unknown option {a:?}"))
        } else if args.get(i + 1).and_then(|v| v.parse::<u64>().ok()).is_none() {
            Some(format!("{a} needs a whole number"))
        } else {
            i += 2;
            continue;
        };
        match why {
            None => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Some(why) => {
                eprintln!("{why}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of each process in `pids`.
fn cpu_of(pids: &[u32]) -> Vec<f64> {
    pids.iter().map(|p| cpu_secs(*p)).collect()
}

/// Microseconds of CPU per request between two readings, per process.
fn per_request(a: &[f64], b: &[f64], n: u64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| 1e6 * (y - x) / n.max(1) as f64).collect()
}

/// The README's example policy (what `bridle policy init` writes), valid for a day.
fn example_policy() -> Policy {
    let text = std::fs::read_to_string(repo_root().join("examples/policies/usdc-daily.toml"))
        .expect("examples/policies/usdc-daily.toml");
    policy(&text)
}

/// Run `requests` calls of `one(i)` with `concurrency` in flight: signatures per second.
async fn throughput<F, Fut>(requests: u64, concurrency: usize, one: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(300);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (one, next) = (one.clone(), next.clone());
            tokio::spawn(async move {
                let mut ok = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests || Instant::now() > deadline {
                        return ok;
                    }
                    assert!(one(i).await, "request {i} was not signed");
                    ok += 1;
                }
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok as f64 / start.elapsed().as_secs_f64()
}

/// Counts the bytes this process holds on the heap (for [`heap_per_session`]).
struct Counting;

static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc_zeroed(l);
        if !p.is_null() {
            LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        std::alloc::System.dealloc(p, l);
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        let q = std::alloc::System.realloc(p, l, new);
        if !q.is_null() {
            LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Memory per session by the enclave code's own accounting, in this process (no other
/// work running): `n` grants of `policy` on a stand-alone enclave (`Enclave::handle`), and
/// the same grants applied as a cluster node applies its log's `CreateSession` entries
/// (`apply::with` + `Enclave::apply_create_session` on an enclave with the cluster's
/// identity, as `cluster::replica` does). Returns bytes per session: (single heap, single
/// budget, node heap, node budget, log entry kept until the next snapshot, a snapshot's
/// encoded size — built only while a snapshot is sent, never kept).
fn heap_per_session(n: usize, policy: &Policy) -> [f64; 6] {
    use bridle_common::protocol::{Call, CreateSession};
    use bridle_enclave::apply::{with, ApplyCtx};
    use bridle_enclave::clock::{ReplicaClock, SystemClock};
    use bridle_enclave::cluster::replica::{encode_snapshot, SNAPSHOT_AUDIT_ENTRIES};
    use bridle_enclave::cluster::types::{Cmd, Holder, Op, Secret};
    use bridle_enclave::keys::Key;
    use bridle_enclave::{Config, Enclave};
    let calls = |identity: alloy_primitives::Address| -> Vec<CreateSession> {
        (0..n)
            .map(|_| {
                let (owner, agent) = (Actor::random(), Actor::random());
                let msg = create_action(identity, agent.address, policy.hash(), Actor::next_nonce());
                CreateSession {
                    auth: owner.sign_owner(&msg),
                    agent_public_key: agent.public_key_sec1(),
                    policy: policy.clone(),
                }
            })
            .collect()
    };
    let per = |a: i64, b: i64| (b - a) as f64 / n as f64;

    let single = Enclave::new(Box::new(SystemClock), None, Config::default());
    let cs = calls(single.identity_address());
    let (h0, b0) = (live(), single.budget().used() as i64);
    for c in cs {
        assert!(single.handle(Call::CreateSession(c)).is_ok(), "grant refused");
    }
    let (single_heap, single_budget) = (per(h0, live()), per(b0, single.budget().used() as i64));
    drop(single);

    let identity = Key::from_secret_bytes(&[0x42; 32]).expect("key");
    let clock = now();
    let node = Enclave::with_identity(
        identity,
        clock,
        Box::new(ReplicaClock::new(Box::new(SystemClock))),
        None,
        Config::default(),
    );
    let image = alloy_primitives::B256::repeat_byte(7);
    let holder = Holder { image, signer: None };
    let cmds: Vec<Cmd> = calls(node.identity_address())
        .into_iter()
        .map(|call| {
            let secret = k256::SecretKey::random(&mut rand_core::OsRng).to_bytes();
            let secret: [u8; 32] = secret.into();
            let address = Key::from_secret_bytes(&secret).expect("key").address();
            let op =
                Op::CreateSession { call: Box::new(call), address, key: Some(Secret(secret)), custody: vec![image] };
            Cmd { proposer: 1, clock, rules: bridle_enclave::cluster::rules::RULES_VERSION, op }
        })
        .collect();
    let h0 = live();
    let log: Vec<Cmd> = cmds.clone();
    let log_entry = per(h0, live());
    let (h0, b0) = (live(), node.budget().used() as i64);
    for cmd in cmds {
        let Op::CreateSession { call, address, key, custody } = cmd.op else { unreachable!() };
        let r = with(ApplyCtx { clock: cmd.clock, proposer: true }, || {
            node.apply_create_session(*call, address, key, custody, &holder)
        });
        assert!(r.is_ok(), "grant refused: {r:?}");
    }
    let (node_heap, node_budget) = (per(h0, live()), per(b0, node.budget().used() as i64));
    let snapshot = encode_snapshot(&node.snapshot(SNAPSHOT_AUDIT_ENTRIES)).expect("snapshot").len() as f64 / n as f64;
    drop(log);
    [single_heap, single_budget, node_heap, node_budget, log_entry, snapshot]
}

/// The most `--requests` (see `main`).
const MAX_REQUESTS: u64 = 60_000;

fn signed(c: u16) -> bool {
    c == 200
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    check_args();
    let requests = arg("--requests", 2000);
    let concurrency = arg("--concurrency", 16) as usize;
    // Each throughput phase signs on one session, whose replay cache holds 2^16 live stamps
    // (the enclave's default `replay_capacity`): beyond, the enclave refuses, by design.
    if concurrency == 0 {
        eprintln!("--concurrency 0: at least one request must be in flight\n{USAGE}");
        std::process::exit(2);
    }
    if requests > MAX_REQUESTS {
        eprintln!(
            "--requests {requests}: at most {MAX_REQUESTS} (each phase signs on one session, whose replay cache \
             holds 65 536 live stamps; the enclave refuses more within the stamp window)"
        );
        std::process::exit(2);
    }
    let sessions = arg("--sessions", 300);
    let failovers = arg("--failovers", 3);
    // Snapshots as in production (every 10 000 entries), not as often as the tests take them.
    let snapshot_logs = arg("--snapshot-logs", 10_000);
    std::env::set_var("BRIDLE_CLUSTER_SNAPSHOT_LOGS", snapshot_logs.to_string());
    // The hosts relay each message as its own HTTP request (as before the streams), to compare.
    let relay_http = std::env::args().any(|a| a == "--relay-http");
    if relay_http {
        std::env::set_var("BRIDLE_CLUSTER_RELAY", "http");
    }
    let example = example_policy();
    // First, alone in this process: the enclave code's own accounting.
    let accounted = {
        let example = example.clone();
        let n = sessions as usize;
        tokio::task::spawn_blocking(move || heap_per_session(n.max(1), &example)).await.unwrap()
    };

    // --- one enclave, one host ---
    let s = Arc::new(Stack::start());
    let g =
        Arc::new(s.grant(&Actor::random(), &Actor::random(), &cap_policy(u64::from(u32::MAX))).await.expect("grant"));
    for i in 0..20 {
        let _ = s.post("/v1/sign", &transfer(&g, 1_000_000 + i, 1)).await;
    }
    let single_pids = [s.enclave.proc.pid(), s.host.proc.pid()];
    let c0 = cpu_of(&single_pids);
    let single = {
        let (s, g) = (s.clone(), g.clone());
        throughput(requests, concurrency, move |i| {
            let (s, g) = (s.clone(), g.clone());
            async move { signed(s.post("/v1/sign", &transfer(&g, i, 1)).await.0) }
        })
        .await
    };
    let single_cpu = per_request(&c0, &cpu_of(&single_pids), requests);
    let pid = s.enclave.proc.pid();
    let before = rss_kib(pid);
    for _ in 0..sessions {
        s.grant(&Actor::random(), &Actor::random(), &example).await.expect("grant");
    }
    let single_mem = (rss_kib(pid).saturating_sub(before)) as f64 / sessions as f64;
    drop(s);

    // --- a three-node cluster ---
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    let follower = (leader + 1) % 3;
    let g = Arc::new(c.grant(leader, &Actor::random(), &Actor::random(), &cap_policy(u64::from(u32::MAX))).await);
    let client = c.client();
    for i in 0..20 {
        let _ = client.post(leader, "/v1/sign", &transfer(&g, 1_000_000 + i, 1)).await;
    }
    let pids = |c: &Cluster, i: usize| c.nodes[i].enclave.as_ref().map(|p| p.pid()).unwrap_or(0);
    let hpid = |c: &Cluster, i: usize| c.nodes[i].host.as_ref().map(|p| p.pid()).unwrap_or(0);
    let other = 3 - leader - follower;
    let cluster_pids =
        [pids(&c, leader), pids(&c, follower), pids(&c, other), hpid(&c, leader), hpid(&c, follower), hpid(&c, other)];
    let c0 = cpu_of(&cluster_pids);
    let replicated = {
        let (client, g) = (client.clone(), g.clone());
        throughput(requests, concurrency, move |i| {
            let (client, g) = (client.clone(), g.clone());
            async move { signed(client.post(leader, "/v1/sign", &transfer(&g, i, 1)).await.0) }
        })
        .await
    };
    let cluster_cpu = per_request(&c0, &cpu_of(&cluster_pids), requests);
    let (lb, fb) = (rss_kib(pids(&c, leader)), rss_kib(pids(&c, follower)));
    for _ in 0..sessions {
        c.grant(leader, &Actor::random(), &Actor::random(), &example).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leader_mem = (rss_kib(pids(&c, leader)).saturating_sub(lb)) as f64 / sessions as f64;
    let follower_mem = (rss_kib(pids(&c, follower)).saturating_sub(fb)) as f64 / sessions as f64;

    // --- failover ---
    let mut times = Vec::new();
    let mut phases = Vec::new();
    let mut nonce = 2_000_000u64;
    let mut skipped = 0;
    let mut round = 0;
    while round < failovers {
        let leader = c.wait_leader(Duration::from_secs(60)).await;
        let via = (leader + 1) % c.nodes.len();
        let client = c.client();
        let stop = Arc::new(AtomicU64::new(0));
        // One agent signing back to back through a follower's host, each request asked
        // again with its stamp until decided; records when each was asked for and when its signature came back.
        let done: Arc<std::sync::Mutex<Vec<(Instant, Instant)>>> = Arc::default();
        let agent = {
            let (client, g, stop, done) = (client.clone(), g.clone(), stop.clone(), done.clone());
            let first = nonce;
            tokio::spawn(async move { sign_loop(client, via, g, first, stop, done).await })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let info = c.info(leader).await;
        if info.as_ref().map(|v| v["role"] != "leader").unwrap_or(true) {
            // Leadership moved meanwhile (the upkeep after the last rejoin): killing this
            // node would measure no failover. Not counted; the round is run again.
            println!("failover {round}: node {leader} no longer leads; round run again");
            stop.store(1, Ordering::Relaxed);
            nonce = agent.await.unwrap() + 1;
            skipped += 1;
            assert!(skipped <= 10, "leadership kept moving before the kill");
            continue;
        }
        let killed_id = info.and_then(|v| v["node_id"].as_u64());
        let killed_at = Instant::now();
        c.kill_enclave(leader);
        eprintln!("killed node {leader} at {:?}", std::time::SystemTime::now());
        // Where the time goes: when a survivor first stood as candidate, when one first
        // led, and when the host signed through (`via`) first knew the new leader.
        let watch = {
            let (client, stop) = (client.clone(), stop.clone());
            let survivors: Vec<usize> = (0..c.nodes.len()).filter(|i| *i != leader).collect();
            tokio::spawn(async move { watch_election(client, survivors, via, killed_id, killed_at, stop).await })
        };
        let t0 = Instant::now();
        let next = loop {
            // The first signature asked for after the kill (one in flight at the kill may
            // have been committed before it).
            if let Some((_, t)) = done.lock().unwrap().iter().find(|(asked, _)| *asked > killed_at) {
                break *t;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "no signature within 60 s of the kill");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        stop.store(1, Ordering::Relaxed);
        nonce = agent.await.unwrap() + 1;
        let [candidate, elected, known] = watch.await.unwrap();
        let ms = next.duration_since(killed_at).as_secs_f64() * 1000.0;
        let at = |t: Option<f64>| t.map_or("?".to_string(), |t| format!("{t:.0}"));
        println!(
            "failover {round}: leader node {leader} killed, next signature after {ms:.0} ms (first candidate at {} ms, new leader at {} ms, known to the signing host's enclave at {} ms)",
            at(candidate),
            at(elected),
            at(known)
        );
        times.push(ms);
        if let Some(e) = elected {
            phases.push((candidate.unwrap_or(e), e, ms));
        }
        // The killed node rejoins as a new node before the next round.
        c.restart_enclave(leader);
        c.wait_voter(leader, Duration::from_secs(120)).await;
        c.wait_voters(3, Duration::from_secs(120)).await;
        round += 1;
    }
    times.sort_by(f64::total_cmp);

    println!();
    println!(
        "requests {requests}, concurrency {concurrency}, sessions {sessions}, failovers {failovers}, snapshot every {snapshot_logs} entries, relay between hosts: {}",
        if relay_http { "an HTTP request per message" } else { "persistent streams" }
    );
    println!("throughput, one enclave:            {single:.0} signatures/s");
    println!("throughput, 3-node cluster (leader): {replicated:.0} signatures/s");
    println!("ratio cluster / one enclave:         {:.1} %", 100.0 * replicated / single);
    let raw = {
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let t = std::time::Instant::now();
        for i in 0..2000u32 {
            let mut d = [9u8; 32];
            d[..4].copy_from_slice(&i.to_be_bytes());
            let _ = key.sign_prehash_recoverable(&d).unwrap();
        }
        t.elapsed().as_secs_f64() * 1e6 / 2000.0
    };
    println!("CPU per signed request (µs; one raw k256 signature here: {raw:.0} µs):");
    println!(
        "  one enclave:  enclave {:.0}, host {:.0}; total {:.0}",
        single_cpu[0],
        single_cpu[1],
        single_cpu.iter().sum::<f64>()
    );
    println!(
        "  cluster:      leader enclave {:.0}, follower enclaves {:.0} + {:.0}, leader's host {:.0}, other hosts {:.0} + {:.0}; total {:.0}",
        cluster_cpu[0],
        cluster_cpu[1],
        cluster_cpu[2],
        cluster_cpu[3],
        cluster_cpu[4],
        cluster_cpu[5],
        cluster_cpu.iter().sum::<f64>()
    );
    println!("memory per session, one enclave:     {single_mem:.1} KiB");
    println!("memory per session, cluster leader:  {leader_mem:.1} KiB ({:.0} %)", 100.0 * leader_mem / single_mem);
    println!(
        "memory per session, cluster follower: {follower_mem:.1} KiB ({:.0} %)",
        100.0 * follower_mem / single_mem
    );
    let [sh, sb, nh, nb, log_entry, snap] = accounted;
    let kib = |b: f64| b / 1024.0;
    println!(
        "memory per session, enclave's own accounting ({sessions} grants in this process): one enclave heap {:.2} KiB (budget charge {:.2} KiB); cluster node's state machine heap {:.2} KiB = {:.1} % (budget charge {:.2} KiB)",
        kib(sh),
        kib(sb),
        kib(nh),
        100.0 * nh / sh,
        kib(nb)
    );
    println!(
        "  besides, on every node: its log entry until the next snapshot {:.2} KiB, a snapshot's encoding (only while one is sent) {:.2} KiB",
        kib(log_entry),
        kib(snap)
    );
    if !times.is_empty() {
        println!(
            "failover, kill -9 to next signature: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    if !phases.is_empty() {
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "failover phases (medians): kill → first candidate {:.0} ms; candidate → leader {:.0} ms; leader → next signature {:.0} ms",
            median(phases.iter().map(|p| p.0).collect()),
            median(phases.iter().map(|p| p.1 - p.0).collect()),
            median(phases.iter().map(|p| p.2 - p.1).collect())
        );
    }
}

/// Poll the survivors' `/v1/cluster/info` every 20 ms until `stop`: milliseconds from the
/// kill to the first survivor seen as candidate (or in a later term), to the first seen as
/// leader, and to `via`'s node naming a leader other than `killed`.
async fn watch_election(
    client: ClusterClient,
    survivors: Vec<usize>,
    via: usize,
    killed: Option<u64>,
    killed_at: Instant,
    stop: Arc<AtomicU64>,
) -> [Option<f64>; 3] {
    let mut out = [None; 3];
    let mut term0: Option<u64> = None;
    while stop.load(Ordering::Relaxed) == 0 && out.iter().any(|t| t.is_none()) {
        for &i in &survivors {
            let r =
                client.http.get(format!("{}/v1/cluster/info", client.apis[i])).timeout(Duration::from_secs(2)).send();
            let Ok(r) = r.await else { continue };
            let Ok(v) = r.json::<serde_json::Value>().await else { continue };
            let n = &v["node"];
            let ms = killed_at.elapsed().as_secs_f64() * 1000.0;
            let term = n["term"].as_u64().unwrap_or(0);
            let t0 = *term0.get_or_insert(term);
            if out[0].is_none() && (n["role"] == "candidate" || term > t0) {
                out[0] = Some(ms);
            }
            if out[1].is_none() && n["role"] == "leader" {
                out[1] = Some(ms);
            }
            if out[2].is_none() && i == via && n["leader"].as_u64().is_some_and(|l| Some(l) != killed) {
                out[2] = Some(ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

/// Sign transfers back to back through host `via` until `stop`; returns the last nonce used.
async fn sign_loop(
    client: ClusterClient,
    via: usize,
    g: Arc<Granted>,
    first: u64,
    stop: Arc<AtomicU64>,
    done: Arc<std::sync::Mutex<Vec<(Instant, Instant)>>>,
) -> u64 {
    let mut n = first;
    while stop.load(Ordering::Relaxed) == 0 {
        let req: SignRequest = transfer(&g, n, 1);
        let asked = Instant::now();
        let (code, v, _) = client.sign_until_decided(via, &req, Duration::from_secs(60)).await;
        assert_eq!(code, 200, "{v}");
        done.lock().unwrap().push((asked, Instant::now()));
        n += 1;
    }
    n
}
