//! `bridle-cluster-bench`: what replication costs, measured side by side in one run
//! (issue 11, BENCHMARKS.md "Enclave cluster").
//!
//! 1. Throughput: `--requests` stamped ERC-20 transfers with `--concurrency` in flight,
//!    first through one stand-alone enclave and host, then through the leader's host of a
//!    three-node cluster (every decision committed by a majority before it is released).
//! 2. Memory per session: the enclave's resident memory before and after `--sessions`
//!    grants of the README's example policy, on the stand-alone enclave and on the cluster's
//!    leader and a follower.
//! 3. Failover, `--failovers` times: with one agent signing back to back through a
//!    follower's host, kill -9 the leader's enclave; the time from the kill to the first
//!    signature completed after it. The killed node then rejoins as a new node.
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

fn signed(c: u16) -> bool {
    c == 200
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let requests = arg("--requests", 2000);
    let concurrency = arg("--concurrency", 16) as usize;
    let sessions = arg("--sessions", 300);
    let failovers = arg("--failovers", 3);
    // Snapshots as in production (every 10 000 entries), not as often as the tests take them.
    let snapshot_logs = arg("--snapshot-logs", 10_000);
    std::env::set_var("BRIDLE_CLUSTER_SNAPSHOT_LOGS", snapshot_logs.to_string());
    let example = example_policy();

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
    let mut nonce = 2_000_000u64;
    for round in 0..failovers {
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
        let killed_at = Instant::now();
        c.kill_enclave(leader);
        eprintln!("killed node {leader} at {:?}", std::time::SystemTime::now());
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
        let ms = next.duration_since(killed_at).as_secs_f64() * 1000.0;
        println!("failover {round}: leader node {leader} killed, next signature after {ms:.0} ms");
        times.push(ms);
        // The killed node rejoins as a new node before the next round.
        c.restart_enclave(leader);
        c.wait_voter(leader, Duration::from_secs(120)).await;
        c.wait_voters(3, Duration::from_secs(120)).await;
    }
    times.sort_by(f64::total_cmp);

    println!();
    println!(
        "requests {requests}, concurrency {concurrency}, sessions {sessions}, failovers {failovers}, snapshot every {snapshot_logs} entries"
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
    if !times.is_empty() {
        println!(
            "failover, kill -9 to next signature: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
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
