//! `bridle dev --cluster 3`: three enclaves and three hosts on loopback, `cluster.json`
//! listing them; the CLI grants and signs through any host, and keeps signing after the
//! leader's enclave is killed.

use bridle_tests::cli::bridle_with;
use bridle_tests::cluster::wait_until;
use bridle_tests::Proc;
use serde_json::Value;
use std::future::ready;
use std::process::Command;
use std::time::Duration;

fn cluster_json(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap()
}

fn cli(dir: &std::path::Path, host: &str, args: &[&str]) -> (bool, String) {
    let out = bridle_with(dir, host, &dir.join("trust.json"), args);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn sign_args<'a>(session: &'a str, nonce: &'a str) -> Vec<&'a str> {
    vec![
        "agent",
        "sign-tx",
        "--key",
        "agent.key",
        "--session",
        session,
        "--to",
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "--call",
        "transfer(address,uint256)",
        "--arg",
        "0x000000000000000000000000000000000000dEaD",
        "--arg",
        "1000000",
        "--chain-id",
        "31337",
        "--nonce",
        nonce,
    ]
}

#[tokio::test]
async fn dev_cluster_runs_three_nodes_and_survives_its_leader() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev");
    let mut cmd = bridle_tests::cli::bridle_cmd(&tmp.path().join("trust.json"));
    cmd.args(["dev", "--cluster", "3", "--listen", "127.0.0.1:0", "--dir"]).arg(&dir);
    let _dev = Proc::spawn_until(cmd, "host: ");
    let v = cluster_json(&dir);
    let nodes = v["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3, "{v}");
    // Roles settle within a couple of rewrites.
    let leader = wait_until(Duration::from_secs(20), Duration::from_millis(300), || {
        let v = cluster_json(&dir);
        let roles: Vec<&str> =
            v["nodes"].as_array().unwrap().iter().map(|n| n["role"].as_str().unwrap_or("")).collect();
        ready(
            if roles.iter().filter(|r| **r == "leader").count() == 1
                && roles.iter().filter(|r| **r == "follower").count() == 2
            {
                Ok(roles.iter().position(|r| *r == "leader").unwrap())
            } else {
                Err(format!("roles {roles:?}"))
            },
        )
    })
    .await;
    let host = |i: usize| nodes[i]["host"].as_str().unwrap().to_string();
    let follower = (leader + 1) % 3;
    let d = tmp.path();
    let ok = |args: &[&str], at: &str| {
        let (ok, out) = cli(d, at, args);
        assert!(ok, "bridle {args:?}: {out}");
        out
    };
    ok(&["owner", "keygen", "--out", "owner.key"], &host(0));
    ok(&["agent", "keygen", "--out", "agent.key"], &host(0));
    let policy = bridle_tests::repo_root().join("examples/policies/usdc-daily.toml");
    let policy = policy.to_str().unwrap();
    let out =
        ok(&["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", policy], &host(follower));
    let session = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("session:"))
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no session in {out}"));
    let sign = |nonce: &str, at: &str| ok(&sign_args(&session, nonce), at);
    sign("0", &host(follower));

    // Kill -9 the leader's enclave: the cluster elects another and keeps signing.
    let pid = nodes[leader]["enclave_pid"].as_u64().unwrap().to_string();
    Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
        let (done, out) = cli(d, &host(follower), &sign_args(&session, "1"));
        ready(if done { Ok(()) } else { Err(format!("no signature after the failover: {out}")) })
    })
    .await;
    wait_until(Duration::from_secs(20), Duration::from_millis(300), || {
        let v = cluster_json(&dir);
        let new_leader = v["nodes"].as_array().unwrap().iter().position(|n| n["role"] == "leader");
        ready(if new_leader.is_some_and(|l| l != leader) {
            Ok(())
        } else {
            Err(format!("cluster.json shows no new leader: {v}"))
        })
    })
    .await;
}
