//! `bridle dev --cluster N`: an enclave cluster on loopback (README, "High availability") —
//! N development enclaves (mock NSMs of one mock CA), each behind its own host, the first
//! founding the cluster and the others joining it. `<dir>/cluster.json` lists every node
//! (host URL, enclave and host PIDs, role) and is rewritten as roles change; killing a
//! node's enclave (`kill -9 <enclave_pid>`) shows a failover.

use crate::client::Host;
use crate::dev::{binary, start, start_reading, Kids};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node as `cluster.json` lists it.
struct Node {
    host_url: String,
    peer_url: String,
    socket: PathBuf,
    enclave_pid: u32,
    host_pid: u32,
}

/// The node's own view (`GET /v1/cluster/info`), if its host answers.
fn info(url: &str) -> Option<Value> {
    let v: Value = Host::new(url).ok()?.get("/v1/cluster/info").ok()?;
    Some(v["node"].clone())
}

fn write_file(path: &Path, nodes: &[Node], alive: &[bool]) -> Result<()> {
    let list: Vec<Value> = nodes
        .iter()
        .zip(alive)
        .map(|(n, up)| {
            let v = if *up { info(&n.host_url) } else { None };
            json!({
                "host": n.host_url,
                "peer_url": n.peer_url,
                "enclave": format!("unix:{}", n.socket.display()),
                "enclave_pid": n.enclave_pid,
                "host_pid": n.host_pid,
                "node_id": v.as_ref().and_then(|v| v["node_id"].as_u64()),
                "role": if *up { v.as_ref().and_then(|v| v["role"].as_str()).unwrap_or("unknown").to_string() } else { "stopped".into() },
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json!({ "nodes": list }))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Run `n` nodes from `dir`; the first host listens on `listen`, the others on free ports.
pub fn run(n: usize, dir: &Path, listen: &str, clock: Option<&PathBuf>, stop: Arc<AtomicBool>) -> Result<i32> {
    if !(1..=7).contains(&n) {
        bail!("--cluster takes 1 to 7 nodes");
    }
    let root = dir.join("mock-root.pem");
    let ca = dir.join("mock-ca.json");
    let mut kids = Kids(vec![]);
    let mut nodes = Vec::new();
    for i in 0..n {
        let ndir = dir.join(format!("node-{i}"));
        std::fs::create_dir_all(&ndir)?;
        let socket = ndir.join("enclave.sock");
        let mut e = Command::new(binary("bridle-enclave"));
        e.arg("--unix").arg(&socket).args(["--dev", "--cluster", "dev", "--dev-mock-ca"]).arg(&ca);
        // The same small budget on every node (it is committed to PCR16): the default 1 536 MiB
        // would have each node check for ≈ 2.3 GiB of memory at start, on one machine.
        e.args(["--memory-budget-mib", "256"]);
        if i == 0 {
            e.arg("--dev-nsm-root-out").arg(&root);
        }
        if let Some(f) = clock {
            e.arg("--dev-clock-offset-file").arg(f);
        }
        let (child, _) = start(e, &format!("bridle-enclave (node {i})"))?;
        let enclave_pid = child.id();
        kids.0.push(child);

        let api = if i == 0 { listen.to_string() } else { "127.0.0.1:0".to_string() };
        // The host binds its cluster listener on a port the system picks and advertises
        // that address; it names it on a line before its "listening" line.
        let mut h = Command::new(binary("bridle-host"));
        h.arg("--enclave")
            .arg(format!("unix:{}", socket.display()))
            .args(["--listen", &api, "--db"])
            .arg(ndir.join("host.sqlite"))
            .args(["--cluster-listen", "127.0.0.1:0"]);
        if i == 0 {
            h.arg("--cluster-bootstrap");
        } else {
            let seeds = nodes.iter().map(|n: &Node| n.peer_url.clone()).collect::<Vec<_>>().join(",");
            h.args(["--cluster-seeds", &seeds]);
        }
        let (child, line, before) = start_reading(h, &format!("bridle-host (node {i})"))?;
        let peer_url = before
            .iter()
            .find_map(|l| l.strip_prefix("bridle-host cluster listener on "))
            .map(|a| format!("http://{}", a.trim()))
            .with_context(|| format!("bridle-host (node {i}) did not name its cluster listener"))?;
        let host_pid = child.id();
        kids.0.push(child);
        let host_url = line.rsplit(' ').next().unwrap_or("").to_string();
        nodes.push(Node { host_url, peer_url, socket, enclave_pid, host_pid });
        // The founder must have the cluster's identity before the others join.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !info(&nodes[i].host_url).is_some_and(|v| v["ready"] == true) {
            if Instant::now() > deadline {
                bail!("node {i} did not join the cluster within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let file = dir.join("cluster.json");
    write_file(&file, &nodes, &vec![true; n])?;

    // Trust the cluster's identity for every host URL (one identity: the cluster's).
    let mut trust = String::from("NOT SET UP");
    for (i, node) in nodes.iter().enumerate() {
        match crate::trust_cmd::dev_setup(&node.host_url, &root) {
            Ok((f, e)) if i == 0 => {
                trust =
                    format!("cluster identity {} attested with the mock root, in {}", e.identity_address, f.display())
            }
            Ok(_) => {}
            Err(e) => eprintln!("warning: could not record trust for {}: {e:#}", node.host_url),
        }
    }
    println!(
        "Bridle dev cluster is running: {n} development enclaves (keys in memory, mock NSMs), each behind a host."
    );
    println!("  trust:   {trust}");
    for (i, node) in nodes.iter().enumerate() {
        println!("  node {i}:  host: {}  enclave pid {}  host pid {}", node.host_url, node.enclave_pid, node.host_pid);
    }
    println!("  cluster: {} (roles, PIDs; kill -9 an enclave PID to see a failover)", file.display());
    println!("  host: {}", nodes[0].host_url);
    println!("Ctrl-C stops every node.");

    let mut alive = vec![true; n];
    let mut last = Instant::now();
    loop {
        for (i, c) in kids.0.iter_mut().enumerate() {
            let node = i / 2;
            if alive[node] && matches!(c.try_wait(), Ok(Some(_))) {
                let what = if i % 2 == 0 { "enclave" } else { "host" };
                eprintln!("node {node}: {what} exited; the cluster goes on while a majority is up");
                alive[node] = false;
            }
        }
        if alive.iter().all(|a| !a) {
            eprintln!("every node stopped");
            return Ok(1);
        }
        if stop.load(Ordering::SeqCst) {
            eprintln!("stopping bridle dev");
            return Ok(0);
        }
        if last.elapsed() > Duration::from_secs(1) {
            write_file(&file, &nodes, &alive).context("writing cluster.json")?;
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
