//! `bridle-load`: end-to-end signing load through the host, measured side by side with the
//! raw secp256k1 signing rate of this machine in the same run.
//!
//! Starts the real enclave and host (from `BRIDLE_BIN_DIR`, default target/debug — use
//! release binaries for numbers), grants a session with room for every request, then
//! sends `--requests` stamped ERC-20 transfers with `--concurrency` in flight over HTTP.
//! Bounded in count and time; talks only to 127.0.0.1.

use alloy_primitives::{address, Address, U256};
use bridle_tests::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Raw k256 signatures per second with `threads` threads for `secs` seconds.
fn raw_rate(threads: usize, secs: f64) -> f64 {
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let key = k256::ecdsa::SigningKey::from_slice(&[t as u8 + 1; 32]).unwrap();
                let mut n = 0u64;
                let mut d = [7u8; 32];
                while Instant::now() < stop {
                    d[0] = n as u8;
                    let _ = key.sign_prehash_recoverable(&d).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / secs
}

/// CPU seconds (user + system) used so far by a process.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let requests = arg("--requests", 4000);
    let concurrency = arg("--concurrency", 16) as usize;
    let s = Arc::new(Stack::start());
    let text = format!(
        "name='load'\nchains=[31337]\nvalid_for='1h'\n[tokens]\nT = {{ address = \"{TOKEN}\", decimals = 0 }}\n[[calls]]\ntarget='T'\nfunctions=['transfer(address,uint256)']\n[[limits]]\nmax='{requests} T'\nper='day'\n"
    );
    let g = Arc::new(s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant"));

    // Warm up connections.
    for i in 0..50u64 {
        let _ = s.sign(&g, erc20_transfer(31337, 1_000_000 + i, TOKEN, Address::repeat_byte(1), U256::ZERO)).await;
    }
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (host_pid, enclave_pid, me) = (s.host.proc.pid(), s.enclave.proc.pid(), std::process::id());
    let cpu0 = (cpu_secs(host_pid), cpu_secs(enclave_pid), cpu_secs(me));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (s, g, next) = (s.clone(), g.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests || Instant::now() > deadline {
                    return ok;
                }
                let (c, v) = s.sign(&g, erc20_transfer(31337, i, TOKEN, Address::repeat_byte(1), U256::from(1))).await;
                assert_eq!(c, 200, "{v}");
                ok += 1;
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = (cpu_secs(host_pid), cpu_secs(enclave_pid), cpu_secs(me));
    let e2e = ok as f64 / secs;
    drop(s);
    let per = |a: f64, b: f64| 1e6 * (b - a) / ok.max(1) as f64;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let raw1 = raw_rate(1, 3.0);
    let raw_all = raw_rate(cores, 3.0);
    println!("requests signed:              {ok} in {secs:.2} s, concurrency {concurrency}");
    println!("end-to-end through the host:  {e2e:.0} signatures/s");
    println!("raw k256, 1 thread:           {raw1:.0} signatures/s");
    println!("raw k256, {cores} threads:          {raw_all:.0} signatures/s");
    println!("ratio e2e / raw (1 thread):   {:.1} %", 100.0 * e2e / raw1);
    println!("ratio e2e / raw ({cores} threads):  {:.1} %", 100.0 * e2e / raw_all);
    println!("CPU per request: enclave {:.0} µs, host {:.0} µs, load generator (agent side) {:.0} µs; one raw signature {:.0} µs",
        per(cpu0.1, cpu1.1), per(cpu0.0, cpu1.0), per(cpu0.2, cpu1.2), 1e6 / raw1);
}
