//! An enclave cluster of real processes on loopback: N `bridle-enclave --dev --cluster`
//! nodes, each behind its own `bridle-host`, their hosts talking through [`Netsplit`]
//! proxies that a test can cut (a partition) — README, "High availability".
//!
//! Node `i`'s host connects out from `127.0.0.{10+i}` (`--cluster-source-address`), so the
//! proxy in front of every other node can tell its traffic apart and drop it.

use crate::{bin, now, Actor, Granted, Proc};
use alloy_primitives::{Address, Bytes};
use bridle_common::policy::Policy;
use bridle_common::protocol::*;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::copy_bidirectional_with_sizes;
use tokio::net::{TcpListener, TcpStream};

/// The sessions' budget of a test cluster's nodes, MiB.
pub const DEV_NODE_BUDGET_MIB: &str = "256";

/// The proxy's copy buffer, each way (a batch of log entries in one piece, mostly).
const COPY_BUFFER: usize = 64 << 10;

/// The source address of node `i`'s cluster traffic.
pub fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8))
}

#[derive(Default)]
struct Cut {
    /// Every connection refused (the node behind this proxy is cut off).
    all: bool,
    /// Connections from these sources refused.
    from: HashSet<IpAddr>,
    generation: u64,
}

/// A TCP proxy in front of one host's cluster listener that a test can cut.
#[derive(Clone)]
pub struct Netsplit {
    pub port: u16,
    cut: Arc<Mutex<Cut>>,
    /// The host's cluster port (0 until the host has started: connections are then dropped).
    target: Arc<AtomicU16>,
}

impl Netsplit {
    /// Listen on a free port; forward to `127.0.0.1:` the port [`Netsplit::set_target`] sets.
    ///
    /// The host binds its cluster port itself (`--cluster-listen 127.0.0.1:0`) and says which
    /// it got: a port picked for it beforehand could be taken by another process in between.
    pub async fn start() -> Netsplit {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut: Arc<Mutex<Cut>> = Arc::default();
        let target = Arc::new(AtomicU16::new(0));
        let c = cut.clone();
        let t = target.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, peer)) = listener.accept().await else { continue };
                let (refused, generation) = {
                    let g = c.lock().unwrap();
                    (g.all || g.from.contains(&peer.ip()), g.generation)
                };
                if refused {
                    continue; // dropped: the connection closes
                }
                let c = c.clone();
                let target = t.load(Ordering::SeqCst);
                if target == 0 {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                    // As the hosts' own sockets: no Nagle. A relayed message larger than the
                    // copy buffer is written in pieces, and with Nagle every piece after
                    // the first waited for the receiver's delayed acknowledgement (40 ms):
                    // commits of more than 8 KiB of entries took 40–50 ms each.
                    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                    let watch = async {
                        loop {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let g = c.lock().unwrap();
                            if g.generation != generation && (g.all || g.from.contains(&peer.ip())) {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = copy_bidirectional_with_sizes(&mut inbound, &mut outbound, COPY_BUFFER, COPY_BUFFER) => {}
                        _ = watch => {}
                    }
                });
            }
        });
        Netsplit { port, cut, target }
    }

    /// Forward to this port from now on.
    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    /// Refuse (and break) every connection, or only those from `from`.
    pub fn block(&self, all: bool, from: &[IpAddr]) {
        let mut g = self.cut.lock().unwrap();
        g.all = all;
        g.from = from.iter().copied().collect();
        g.generation += 1;
    }

    pub fn heal(&self) {
        self.block(false, &[]);
    }
}

/// One node: its enclave, its host, the proxy in front of its cluster listener.
pub struct Node {
    pub enclave: Option<Proc>,
    pub host: Option<Proc>,
    pub socket: PathBuf,
    pub api: String,
    pub proxy: Netsplit,
    pub enclave_args: Vec<String>,
    /// The URL this node's host tells the others to reach it at, when not its proxy's
    /// (a test's man in the middle).
    pub advertise: Option<String>,
}

impl Node {
    /// The URL the other hosts reach this node at (through its proxy).
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }
}

/// Ask `check` every `every` until it answers `Ok`; once `timeout` has passed since the
/// first ask, panic with its last `Err`. The polling loop of every cluster test.
pub async fn wait_until<T, F, Fut>(timeout: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let t0 = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) => assert!(t0.elapsed() < timeout, "{why}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Send `req`: (status, JSON body), or (0, the error) when no answer came.
async fn reply(req: reqwest::RequestBuilder) -> (u16, Value) {
    match req.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// `POST {api}{path}` with a JSON body, 20 s at the most.
async fn post_json<B: serde::Serialize>(http: &reqwest::Client, api: &str, path: &str, body: &B) -> (u16, Value) {
    reply(http.post(format!("{api}{path}")).json(body).timeout(Duration::from_secs(20))).await
}

/// How many log entries between snapshots: 64 in tests (so that snapshots happen),
/// `BRIDLE_CLUSTER_SNAPSHOT_LOGS` to change it (the benchmark uses the enclave's default).
fn snapshot_logs() -> String {
    std::env::var("BRIDLE_CLUSTER_SNAPSHOT_LOGS").unwrap_or_else(|_| "64".into())
}

/// A cluster of real processes. See the module docs.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub http: reqwest::Client,
    pub name: String,
    /// Environment every host is started with, beside the test's own.
    pub host_env: Vec<(String, String)>,
}

impl Cluster {
    /// `n` nodes of one image; the first founds the cluster, the others join it. Returns
    /// once every node is a voter and has the cluster's state.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, &[]).await
    }

    /// [`Cluster::start`] with `extra` arguments for every enclave.
    pub async fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let mut c = Cluster::empty();
        for i in 0..n {
            c.add_node(extra).await;
            c.start_node(i, i == 0);
            if i == 0 {
                c.wait_ready(0, Duration::from_secs(30)).await;
            }
        }
        c.wait_voters(n, Duration::from_secs(60)).await;
        c
    }

    /// A cluster of no node yet: add and start them one by one ([`Cluster::add_node`],
    /// [`Cluster::start_node`]).
    pub fn empty() -> Cluster {
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            nodes: Vec::new(),
            http: reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap(),
            name: format!("test-{}", std::process::id()),
            host_env: Vec::new(),
        }
    }

    /// A new node (not started): its proxy and paths; `extra` enclave arguments (e.g. to
    /// play another image).
    pub async fn add_node(&mut self, extra: &[&str]) -> usize {
        let i = self.nodes.len();
        let proxy = Netsplit::start().await;
        self.nodes.push(Node {
            enclave: None,
            host: None,
            socket: self.dir.path().join(format!("enclave-{i}.sock")),
            api: String::new(),
            proxy,
            enclave_args: extra.iter().map(|s| s.to_string()).collect(),
            advertise: None,
        });
        i
    }

    /// Start node `i`'s enclave and host (a fresh enclave: a new node, whatever it was).
    pub fn start_node(&mut self, i: usize, bootstrap: bool) {
        self.spawn_enclave(i);
        let seeds: Vec<String> = (0..self.nodes.len()).filter(|j| *j != i).map(|j| self.nodes[j].peer_url()).collect();
        let mut h = Command::new(bin("bridle-host"));
        h.arg("--enclave")
            .arg(format!("unix:{}", self.nodes[i].socket.display()))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(self.dir.path().join(format!("host-{i}-{}.sqlite", now())))
            .args(["--cluster-listen", "127.0.0.1:0"])
            .args(["--cluster-advertise", &self.nodes[i].advertise.clone().unwrap_or_else(|| self.nodes[i].peer_url())])
            .args(["--cluster-source-address", &source_ip(i).to_string()])
            .args(["--probe-interval", "1"])
            .envs(self.host_env.iter().map(|(k, v)| (k, v)));
        if bootstrap {
            h.arg("--cluster-bootstrap");
        } else {
            h.args(["--cluster-seeds", &seeds.join(",")]);
        }
        let host = Proc::spawn(h);
        let cluster = host
            .before
            .iter()
            .find_map(|l| l.strip_prefix("bridle-host cluster listener on "))
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .expect("the host's cluster listener line");
        self.nodes[i].proxy.set_target(cluster.port());
        self.nodes[i].api =
            host.line.split_whitespace().find(|w| w.starts_with("http://")).expect("host url").to_string();
        self.nodes[i].host = Some(host);
    }

    /// Start node `i`'s enclave again behind its running host: a new node, which the host
    /// makes join the cluster.
    pub fn restart_enclave(&mut self, i: usize) {
        self.spawn_enclave(i);
    }

    /// Spawn node `i`'s enclave (a fresh one) on its socket.
    pub fn spawn_enclave(&mut self, i: usize) {
        let mut e = Command::new(bin("bridle-enclave"));
        e.arg("--unix")
            .arg(&self.nodes[i].socket)
            .args(["--dev", "--cluster", &self.name, "--dev-mock-ca"])
            .arg(self.dir.path().join("mock-ca.json"))
            .args(&self.nodes[i].enclave_args);
        if !self.nodes[i].enclave_args.iter().any(|a| a == "--cluster-snapshot-logs") {
            e.args(["--cluster-snapshot-logs", &snapshot_logs()]);
        }
        // One small budget for every node (it is committed to PCR16, so all must agree): the
        // default 1 536 MiB would have each node check for ≈ 2.3 GiB of memory at start.
        if !self.nodes[i].enclave_args.iter().any(|a| a.starts_with("--memory-budget-mib")) {
            e.args(["--memory-budget-mib", DEV_NODE_BUDGET_MIB]);
        }
        self.nodes[i].enclave = Some(Proc::spawn(e));
    }

    /// kill -9 node `i`'s enclave (its host stays).
    pub fn kill_enclave(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].enclave.take() {
            let _ = Command::new("kill").arg("-KILL").arg(p.pid().to_string()).status();
            p.kill();
        }
    }

    /// Stop node `i` entirely (enclave and host).
    pub fn stop_node(&mut self, i: usize) {
        self.kill_enclave(i);
        if let Some(mut h) = self.nodes[i].host.take() {
            h.kill();
        }
        // Its port is free again, and another process could be given it.
        self.nodes[i].proxy.set_target(0);
    }

    pub async fn get(&self, i: usize, path: &str) -> (u16, Value) {
        reply(self.http.get(format!("{}{path}", self.nodes[i].api)).timeout(Duration::from_secs(15))).await
    }

    pub async fn post<B: serde::Serialize>(&self, i: usize, path: &str, body: &B) -> (u16, Value) {
        post_json(&self.http, &self.nodes[i].api, path, body).await
    }

    /// Node `i`'s view (`GET /v1/cluster/info`).
    pub async fn info(&self, i: usize) -> Option<Value> {
        let (s, v) = self.get(i, "/v1/cluster/info").await;
        (s == 200).then(|| v["node"].clone())
    }

    /// The index of the node that leads, in the view of the live nodes.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].enclave.is_none() {
                continue;
            }
            if let Some(v) = self.info(i).await {
                if v["role"] == "leader" {
                    return Some(i);
                }
            }
        }
        None
    }

    pub async fn wait_leader(&self, timeout: Duration) -> usize {
        self.wait(timeout, Duration::from_millis(100), move || async move {
            self.leader().await.ok_or_else(|| "no leader".to_string())
        })
        .await
    }

    pub async fn wait_ready(&self, i: usize, timeout: Duration) {
        self.wait(timeout, Duration::from_millis(100), move || async move {
            match self.info(i).await {
                Some(v) if v["ready"] == true && v["members"].as_array().is_some_and(|m| !m.is_empty()) => Ok(()),
                Some(v) => Err(format!("node {i} not ready: {}", brief(&v))),
                None => Err(format!("node {i} not ready: no answer")),
            }
        })
        .await
    }

    /// Wait until the leader counts `n` voters, every live node has the cluster's state.
    pub async fn wait_voters(&self, n: usize, timeout: Duration) {
        self.wait(timeout, Duration::from_millis(200), move || async move {
            let l = self.leader().await.ok_or("no leader")?;
            let v = self.info(l).await.ok_or_else(|| format!("leader node {l} did not answer"))?;
            let voters = v["members"].as_array().map_or(0, |m| m.iter().filter(|m| m["voter"] == true).count());
            let mut not_ready = Vec::new();
            for i in 0..self.nodes.len() {
                if self.nodes[i].enclave.is_some() && !self.info(i).await.is_some_and(|v| v["ready"] == true) {
                    not_ready.push(i);
                }
            }
            if voters == n && not_ready.is_empty() {
                return Ok(());
            }
            Err(format!(
                "not {n} voters with every live node ready: leader node {l} counts {voters}; not ready: {not_ready:?}"
            ))
        })
        .await
    }

    /// Wait until the log is quiet: node `l` leads, and its last applied index is the same
    /// on every live node and unchanged over half a second (a membership change or an
    /// election's first entry is no longer under way). Returns that index, from which a test
    /// counts the entries its own calls add.
    pub async fn wait_quiet(&self, l: usize, timeout: Duration) -> u64 {
        self.wait(timeout, Duration::from_millis(100), move || async move {
            let applied = |v: Option<Value>| v.and_then(|v| v["last_applied"].as_u64());
            let first = applied(self.info(l).await).ok_or_else(|| format!("node {l} did not answer"))?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.leader().await != Some(l) {
                return Err(format!("node {l} no longer leads"));
            }
            let mut seen = Vec::new();
            for i in 0..self.nodes.len() {
                if self.nodes[i].enclave.is_some() {
                    seen.push(applied(self.info(i).await));
                }
            }
            if seen.iter().all(|a| *a == Some(first)) {
                return Ok(first);
            }
            Err(format!("the log moves: node {l} had applied {first}, then the live nodes {seen:?}"))
        })
        .await
    }

    /// Wait until the leader's membership no longer lists node `id` (a dead node dropped).
    pub async fn wait_removed(&self, id: u64, timeout: Duration) {
        self.wait(timeout, Duration::from_millis(200), move || async move {
            let l = self.leader().await.ok_or("no leader")?;
            let v = self.info(l).await.unwrap_or_default();
            if v["members"].as_array().is_some_and(|m| !m.iter().any(|m| m["node_id"] == id)) {
                return Ok(());
            }
            Err(format!("node id {id} still a member in leader node {l}'s view"))
        })
        .await
    }

    /// Wait until node `i` is a voter in the leader's view.
    pub async fn wait_voter(&self, i: usize, timeout: Duration) {
        self.wait(timeout, Duration::from_millis(200), move || async move {
            let id = self
                .info(i)
                .await
                .and_then(|v| v["node_id"].as_u64())
                .ok_or_else(|| format!("node {i} did not answer"))?;
            let l = self.leader().await.ok_or("no leader")?;
            let v = self.info(l).await.unwrap_or_default();
            if v["members"].as_array().is_some_and(|m| m.iter().any(|m| m["node_id"] == id && m["voter"] == true)) {
                return Ok(());
            }
            Err(format!("node {i} (id {id}) not a voter in leader node {l}'s view"))
        })
        .await
    }

    /// [`wait_until`], but a timeout's panic also says where every node stands
    /// ([`Cluster::describe`]): the next failure explains itself.
    pub async fn wait<T, F, Fut>(&self, timeout: Duration, every: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let t0 = Instant::now();
        loop {
            match check().await {
                Ok(v) => return v,
                Err(why) if t0.elapsed() >= timeout => {
                    panic!("{why} (waited {:?}, limit {timeout:?})\n{}", t0.elapsed(), self.describe().await)
                }
                Err(_) => {}
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Where every node stands, as its host reports it (`/v1/cluster/info`): role, ready,
    /// leader, term, last applied and snapshot index, and its view of the membership (node
    /// ids, voter or learner, URL).
    pub async fn describe(&self) -> String {
        let mut out = String::from("cluster state:");
        for (i, n) in self.nodes.iter().enumerate() {
            let enclave = match &n.enclave {
                Some(p) => format!("enclave pid {}", p.pid()),
                None => "enclave killed".to_string(),
            };
            let host = if n.host.is_some() { n.api.as_str() } else { "stopped" };
            let r = self.http.get(format!("{}/v1/cluster/info", n.api)).timeout(Duration::from_secs(3));
            let view = match r.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    match serde_json::from_str::<Value>(&text) {
                        Ok(v) if status == 200 => brief(&v["node"]),
                        _ => format!("HTTP {status}: {text}"),
                    }
                }
                Err(e) => format!("no answer: {e}"),
            };
            out.push_str(&format!("\n  node {i} ({enclave}; host {host}; peer url {}): {view}", n.peer_url()));
        }
        out
    }

    /// The cluster's identity (its public facts, through node `i`).
    pub async fn status(&self, i: usize) -> Status {
        let (code, v) = self.get(i, "/v1/status").await;
        assert_eq!(code, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }

    /// Grant a session through node `i`'s host.
    pub async fn grant(&self, i: usize, owner: &Actor, agent: &Actor, policy: &Policy) -> Granted {
        let st = self.status(i).await;
        let msg = crate::create_action(st.identity_address, agent.address, policy.hash(), Actor::next_nonce());
        let body = CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: policy.clone(),
        };
        let (code, v) = self.post(i, "/v1/sessions", &body).await;
        assert_eq!(code, 200, "{v}");
        let created: SessionCreated = serde_json::from_value(v).unwrap();
        Granted {
            owner: owner.clone(),
            agent: agent.clone(),
            session: created.binding.session,
            enclave_pk: st.identity_public_key,
            created_at: created.binding.created_at,
        }
    }

    /// A client of every node's host (cheap to clone; outlives node restarts' handles).
    pub fn client(&self) -> ClusterClient {
        ClusterClient { http: self.http.clone(), apis: self.nodes.iter().map(|n| n.api.clone()).collect() }
    }
}

/// Talks to the hosts of a [`Cluster`].
#[derive(Clone)]
pub struct ClusterClient {
    pub http: reqwest::Client,
    pub apis: Vec<String>,
}

impl ClusterClient {
    pub async fn post<B: serde::Serialize>(&self, i: usize, path: &str, body: &B) -> (u16, Value) {
        post_json(&self.http, &self.apis[i], path, body).await
    }

    /// `POST /v1/sign` through host `i`, asking again with the same stamp (as a client that
    /// lost the answer does) until a decision or `patience` runs out: (status, body, tries).
    pub async fn sign_until_decided(&self, i: usize, req: &SignRequest, patience: Duration) -> (u16, Value, u32) {
        let t0 = Instant::now();
        let mut at = i;
        let mut tries = 0;
        loop {
            tries += 1;
            let (c, v) = self.post(at, "/v1/sign", req).await;
            let decided = matches!(c, 200 | 400 | 401 | 403 | 404 | 410 | 413 | 422 | 429);
            if decided || t0.elapsed() > patience {
                return (c, v, tries);
            }
            // The host is down or the cluster is electing: ask again, through another host.
            at = (at + 1) % self.apis.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One node's `/v1/cluster/info` in a line: who it is, where it stands, its membership.
pub fn brief(v: &Value) -> String {
    let members = v["members"].as_array().map_or_else(
        || "-".to_string(),
        |m| {
            m.iter()
                .map(|m| {
                    let kind = if m["voter"] == true { "voter" } else { "learner" };
                    format!("{} {kind} {}", m["node_id"], m["peer_url"].as_str().unwrap_or("?"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    format!(
        "id {} role {} ready {} leader {} term {} last_applied {} snapshot {} members [{members}]",
        v["node_id"], v["role"], v["ready"], v["leader"], v["term"], v["last_applied"], v["snapshot"]
    )
}

/// A stamped request of `g`'s agent (kept, so it can be asked again with the same stamp).
pub fn stamped(g: &Granted, payload: SignPayload) -> SignRequest {
    let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, &payload, now());
    SignRequest { session: g.session, payload, stamp }
}

/// The signer of a signed raw transaction.
pub fn signer_of(v: &Value) -> Address {
    let raw: Bytes = serde_json::from_value(v["raw_transaction"].clone()).unwrap();
    crate::recover_raw(&raw)
}

/// Bind check for loopback aliases: whether `127.0.0.{10+i}` can be used as a source.
pub fn loopback_aliases_work(n: usize) -> bool {
    (0..n).all(|i| std::net::TcpListener::bind(SocketAddr::new(source_ip(i), 0)).is_ok())
}

/// The chain, token and recipient the cluster tests use.
pub const CHAIN: u64 = 31337;
pub const USDC: Address = alloy_primitives::address!("0x5fbdb2315678afecb367f032d93f642f64180aa3");
pub const DEAD: Address = alloy_primitives::address!("0x000000000000000000000000000000000000dead");

/// `n` USDC (6 decimals).
pub fn usdc(n: u64) -> alloy_primitives::U256 {
    alloy_primitives::U256::from(n) * alloy_primitives::U256::from(1_000_000u64)
}

/// USDC transfers only, at most `cap` USDC a day.
pub fn cap_policy(cap: u64) -> Policy {
    crate::policy(&format!(
        r#"
name = "cluster-cap"
chains = [{CHAIN}]
valid_for = "23h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "{cap} USDC"
per = "day"
"#
    ))
}

/// A stamped transfer of `n` USDC with transaction nonce `nonce`.
pub fn transfer(g: &Granted, nonce: u64, n: u64) -> SignRequest {
    stamped(g, SignPayload::Transaction(crate::erc20_transfer(CHAIN, nonce, USDC, DEAD, usdc(n))))
}
