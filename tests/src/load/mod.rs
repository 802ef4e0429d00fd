//! `bridle-load`, the load generator (issue 12), as a library: the binary parses the command
//! line and prints what [`execute`] returns.
//!
//! Against its own stack (started from `BRIDLE_BIN_DIR`) or any host (`--host`): grants
//! `--sessions` sessions with owner-signed envelopes (keys made in memory), warms each up,
//! then sends stamped ERC-20 transfers round-robin over the sessions, closed loop
//! (`--concurrency` in flight) or open loop (`--rate`), within both a count and a time
//! bound; then measures the raw k256 rate of this machine in the same run, and reports
//! throughput, latency percentiles, outcome counts, CPU per request of the local processes
//! and the ratios to the raw signature.

pub mod args;
pub mod floor;
pub mod floor_socket;
pub mod machine;
pub mod run;
pub mod socket;
pub mod stats;
pub mod target;

use args::Args;
use bridle_common::protocol::{Call, Reply, StatusQuery};
use stats::{round, Percentiles, Tally};
use std::sync::Arc;
use std::time::Duration;
use target::{Identity, LoadSession, Target};

/// Why a run did not happen (exit status 2).
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure(s)
    }
}

/// CPU seconds of one local process over the measured phase.
#[derive(Debug, Clone, Copy)]
pub struct ProcCpu {
    pub pid: u32,
    pub secs: f64,
}

/// Everything a run measured.
pub struct Report {
    pub url: String,
    pub local_stack: bool,
    pub identity: Identity,
    /// The host still served the same identity after the run (receipt checked).
    pub identity_after: Result<(), String>,
    pub sessions: usize,
    pub concurrency: usize,
    pub rate: Option<f64>,
    /// Signed through the JSON-RPC face.
    pub rpc: bool,
    /// The generator's runtime workers (`--threads`; one per CPU when not given).
    pub generator_threads: usize,
    pub request_bound: u64,
    pub time_bound: Duration,
    pub elapsed: Duration,
    pub started: u64,
    pub tally: Tally,
    pub latency: Option<Percentiles>,
    pub scheduled_latency: Option<Percentiles>,
    /// Open loop: start lag behind the schedule.
    pub lag: Option<Percentiles>,
    pub host_cpu: Option<ProcCpu>,
    pub enclave_cpu: Option<ProcCpu>,
    pub client_cpu: Option<ProcCpu>,
    pub raw_1: f64,
    pub raw_all: f64,
    pub cores: usize,
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
    /// Remote hosts: sessions revoked at the end / granted.
    pub revoked: Option<u64>,
    /// How long granting `sessions` took (issue 12 item 5: session creation rate).
    pub grant_time: Duration,
    /// Grants in flight while granting.
    pub grant_concurrency: usize,
    /// The local enclave's resident memory (KiB) before and after the grants.
    pub enclave_rss_kib: Option<(u64, u64)>,
    /// The granted policy's normalized size (its canonical encoding, what is hashed and
    /// travels to the enclave), bytes: issue 12 item 5 counts memory beyond it.
    pub policy_bytes: usize,
}

impl Report {
    /// Exit status: 0 when every request was signed.
    pub fn exit_code(&self) -> i32 {
        if self.tally.ok > 0 && self.tally.refused == 0 && self.tally.errors == 0 && self.identity_after.is_ok() {
            0
        } else {
            1
        }
    }

    pub fn throughput(&self) -> f64 {
        self.tally.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Requests the enclave decided (signed or refused): the CPU divisor.
    fn answered(&self) -> u64 {
        (self.tally.ok + self.tally.refused).max(1)
    }

    /// CPU per answered request, µs.
    pub fn cpu_per_request_us(&self, p: Option<ProcCpu>) -> Option<f64> {
        p.map(|p| 1e6 * p.secs / self.answered() as f64)
    }

    /// One raw signature on one thread, µs.
    pub fn raw_signature_us(&self) -> f64 {
        1e6 / self.raw_1
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let cpu = |p: Option<ProcCpu>| {
            p.map(|p| json!({"pid": p.pid, "cpu_s": round(p.secs, 3), "us_per_request": round(self.cpu_per_request_us(Some(p)).unwrap_or(f64::NAN), 1)}))
        };
        let ratio = |p: Option<ProcCpu>| {
            self.cpu_per_request_us(p)
                .map(|us| round(us / self.raw_signature_us(), 3))
                .unwrap_or(serde_json::Value::Null)
        };
        json!({
            "tool": "bridle-load",
            "host": self.url,
            "local_stack": self.local_stack,
            "identity": {
                "address": self.identity.address,
                "public_key": format!("0x{}", hex::encode(&self.identity.public_key)),
                "source": self.identity.source,
                "verified": self.identity.verified,
                "same_after_run": self.identity_after.is_ok(),
                "after_run_error": self.identity_after.as_ref().err(),
            },
            "mode": if self.rate.is_some() { "open" } else { "closed" },
            "api": if self.rpc { "rpc eth_signTransaction" } else { "POST /v1/sign" },
            "rate_target_per_s": self.rate,
            "sessions": self.sessions,
            "concurrency": self.concurrency,
            "generator_threads": self.generator_threads,
            "bounds": {"requests": self.request_bound, "seconds": round(self.time_bound.as_secs_f64(), 3)},
            "elapsed_s": round(self.elapsed.as_secs_f64(), 3),
            "started": self.started,
            "ok": self.tally.ok,
            "refused": self.tally.refused,
            "errors": self.tally.errors,
            "refused_by_code": self.tally.refused_by,
            "errors_by_kind": self.tally.errors_by,
            "throughput_per_s": round(self.throughput(), 1),
            "latency_ms": self.latency.map(|p| p.to_json()),
            "latency_from_schedule_ms": self.scheduled_latency.map(|p| p.to_json()),
            "schedule": self.rate.map(|_| json!({
                "achieved_start_rate_per_s": round(self.started as f64 / self.elapsed.as_secs_f64().max(1e-9), 1),
                "start_lag_ms": self.lag.map(|p| p.to_json()),
            })),
            "cpu": {
                "per": "signed or refused request",
                "host": cpu(self.host_cpu),
                "enclave": cpu(self.enclave_cpu),
                "load_generator": cpu(self.client_cpu),
            },
            "raw_k256": {
                "threads_1_per_s": round(self.raw_1, 0),
                "threads_all_per_s": round(self.raw_all, 0),
                "threads_all": self.cores,
                "one_signature_us": round(self.raw_signature_us(), 2),
            },
            "ratios": {
                "e2e_over_raw_1_thread": round(self.throughput() / self.raw_1, 4),
                "e2e_over_raw_all_threads": round(self.throughput() / self.raw_all, 4),
                "host_cpu_over_raw_signature": ratio(self.host_cpu),
                "enclave_cpu_over_raw_signature": ratio(self.enclave_cpu),
            },
            "machine": {
                "cores": self.cores,
                "load_average_before": self.load_before,
                "load_average_after": self.load_after,
            },
            "sessions_revoked": self.revoked,
            "grants": {
                "seconds": round(self.grant_time.as_secs_f64(), 3),
                "per_s": round(self.sessions as f64 / self.grant_time.as_secs_f64().max(1e-9), 1),
                "in_flight": self.grant_concurrency,
                "enclave_rss_kib_before": self.enclave_rss_kib.map(|r| r.0),
                "enclave_rss_kib_after": self.enclave_rss_kib.map(|r| r.1),
                "enclave_rss_kib_per_session": self.rss_per_session_kib().map(|v| round(v, 2)),
                "policy_normalized_bytes": self.policy_bytes,
                "enclave_rss_kib_per_session_beyond_policy": self.rss_beyond_policy_kib().map(|v| round(v, 2)),
            },
        })
    }

    /// The enclave's RSS growth over the grants, per session (KiB); local stack only.
    pub fn rss_per_session_kib(&self) -> Option<f64> {
        self.enclave_rss_kib.map(|(a, b)| (b as f64 - a as f64) / self.sessions.max(1) as f64)
    }

    /// [`Report::rss_per_session_kib`] less the policy's normalized size.
    pub fn rss_beyond_policy_kib(&self) -> Option<f64> {
        self.rss_per_session_kib().map(|v| v - self.policy_bytes as f64 / 1024.0)
    }

    pub fn human(&self) -> String {
        let mut o = String::new();
        let mut line = |s: String| {
            o.push_str(&s);
            o.push('\n');
        };
        let where_ = if self.local_stack { "local stack started by bridle-load" } else { "given host" };
        line(format!("host:                         {} ({where_})", self.url));
        let trust = if self.identity.verified { "" } else { "  ** NOT VERIFIED **" };
        line(format!("enclave identity:             {} — {}{trust}", self.identity.address, self.identity.source));
        if let Err(e) = &self.identity_after {
            line(format!("after the run:                {e}"));
        }
        let mode = match self.rate {
            Some(r) => format!("open loop at {r} requests/s, at most {} in flight", self.concurrency),
            None => format!("closed loop, {} in flight", self.concurrency),
        };
        let mode = if self.rpc { format!("{mode}, eth_signTransaction on /rpc") } else { mode };
        line(format!(
            "load:                         {mode}; {} sessions round-robin; {} generator threads; bounds {} requests, {:.0} s",
            self.sessions,
            self.generator_threads,
            self.request_bound,
            self.time_bound.as_secs_f64()
        ));
        let rss = match (self.enclave_rss_kib, self.rss_per_session_kib(), self.rss_beyond_policy_kib()) {
            (Some((a, b)), Some(per), Some(beyond)) => {
                format!(
                    "; enclave RSS {:.1} → {:.1} MiB ({per:+.2} KiB per session: the policy's normalized {} B + {beyond:.2} KiB beyond it)",
                    a as f64 / 1024.0,
                    b as f64 / 1024.0,
                    self.policy_bytes
                )
            }
            _ => String::new(),
        };
        line(format!(
            "sessions granted:             {} in {:.2} s ({:.0} /s, {} in flight){rss}",
            self.sessions,
            self.grant_time.as_secs_f64(),
            self.sessions as f64 / self.grant_time.as_secs_f64().max(1e-9),
            self.grant_concurrency
        ));
        let t = &self.tally;
        line(format!(
            "requests:                     {} sent: {} signed, {} refused, {} errors in {:.2} s",
            self.started,
            t.ok,
            t.refused,
            t.errors,
            self.elapsed.as_secs_f64()
        ));
        for (k, n) in t
            .refused_by
            .iter()
            .map(|(k, n)| (format!("refused {k}"), n))
            .chain(t.errors_by.iter().map(|(k, n)| (format!("error {k}"), n)))
        {
            line(format!("                              {n} × {k}"));
        }
        line(format!("end-to-end through the host:  {:.0} signatures/s", self.throughput()));
        if let Some(p) = &self.latency {
            line(format!("latency (signed, from send):  {}", p.human()));
        }
        if let Some(p) = &self.scheduled_latency {
            line(format!("latency from scheduled start: {}", p.human()));
            line(format!(
                "schedule:                     {:.0} starts/s achieved; start lag behind schedule {}",
                self.started as f64 / self.elapsed.as_secs_f64().max(1e-9),
                self.lag.map(|p| p.human()).unwrap_or_default()
            ));
        }
        let us = |p: Option<ProcCpu>| {
            self.cpu_per_request_us(p).map(|v| format!("{v:.0} µs")).unwrap_or("n/a (not local)".into())
        };
        line(format!(
            "CPU per request:              enclave {}, host {}, load generator {}",
            us(self.enclave_cpu),
            us(self.host_cpu),
            us(self.client_cpu)
        ));
        line(format!(
            "raw k256 (same run):          1 thread {:.0} /s ({:.1} µs per signature), {} threads {:.0} /s",
            self.raw_1,
            self.raw_signature_us(),
            self.cores,
            self.raw_all
        ));
        let r = |p: Option<ProcCpu>| {
            self.cpu_per_request_us(p).map(|v| format!("{:.2}", v / self.raw_signature_us())).unwrap_or("n/a".into())
        };
        line(format!(
            "ratios:                       e2e / raw 1 thread {:.1} %, e2e / raw {} threads {:.1} %; CPU per request / one raw signature: enclave {}, host {}",
            100.0 * self.throughput() / self.raw_1,
            self.cores,
            100.0 * self.throughput() / self.raw_all,
            r(self.enclave_cpu),
            r(self.host_cpu)
        ));
        if let (Some(a), Some(b)) = (self.load_before, self.load_after) {
            line(format!(
                "machine:                      {} cores, load average {:.2} before, {:.2} after (1 min)",
                self.cores, a[0], b[0]
            ));
        }
        if let Some(n) = self.revoked {
            line(format!("sessions revoked at the end:  {n} of {}", self.sessions));
        }
        o
    }
}

/// Which identity to believe for a remote host (see the usage text).
fn remote_identity(a: &Args, url: &str) -> Result<Option<Identity>, Failure> {
    if let Some(k) = &a.enclave_key {
        let (public_key, address) = target::parse_identity_key(k)?;
        return Ok(Some(Identity { public_key, address, source: "pinned with --enclave-key".into(), verified: true }));
    }
    if let Some(p) = &a.trust_file {
        return match target::identity_from_trust_file(p, url)? {
            Some(id) => Ok(Some(id)),
            None => Err(Failure(format!("the trust file {} has no entry for {url}", p.display()))),
        };
    }
    if a.trust_host_identity {
        return Ok(None);
    }
    let default = target::default_trust_file();
    if let Some(p) = &default {
        if let Some(id) = target::identity_from_trust_file(p, url)? {
            return Ok(Some(id));
        }
    }
    Err(Failure(format!(
        "no verified enclave identity for {url}, and the host's word is not enough (it is untrusted: it could front \
         another enclave). Give --enclave-key 0x… (a key you verified, e.g. `bridle trust show --host {url} \
         --public-key` after `bridle trust attest --host {url} …`), or --trust-file FILE with an attested or pinned \
         entry for this host (looked in {}), or pass --trust-host-identity to accept the identity the host reports, \
         unverified (the output will say so). Nothing was sent.",
        default.map(|p| p.display().to_string()).unwrap_or_else(|| "no default trust file".into())
    )))
}

/// Grant `n` sessions, `par` at a time, in order.
async fn grant_all(
    t: &Arc<Target>,
    policy: &bridle_common::policy::Policy,
    n: usize,
    par: usize,
) -> Result<Vec<LoadSession>, Failure> {
    let mut out = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let batch: Vec<_> = (next..n.min(next + par))
            .map(|_| {
                let (t, p) = (t.clone(), policy.clone());
                tokio::spawn(async move { t.grant(&p).await })
            })
            .collect();
        next += batch.len();
        for h in batch {
            out.push(
                h.await
                    .map_err(|e| Failure(e.to_string()))?
                    .map_err(|e| Failure(format!("granting a session: {e}")))?,
            );
        }
    }
    Ok(out)
}

/// One request per session (every signature checked), and at least `concurrency` requests
/// so the connections are open; `par` at a time. Not measured.
async fn warm_up(t: &Arc<Target>, sessions: &Arc<Vec<LoadSession>>, concurrency: usize) -> Result<u64, Failure> {
    let total = sessions.len().max(concurrency);
    let mut done = 0;
    while done < total {
        let batch: Vec<_> = (done..total.min(done + concurrency))
            .map(|i| {
                let (t, s) = (t.clone(), sessions.clone());
                tokio::spawn(async move { t.sign(&s[i % s.len()], true).await })
            })
            .collect();
        done += batch.len();
        for h in batch {
            match h.await.map_err(|e| Failure(e.to_string()))? {
                stats::Outcome::Ok => {}
                o => return Err(Failure(format!("a warm-up request was not signed: {o:?}"))),
            }
        }
    }
    Ok(total as u64)
}

fn cpu_now(pid: Option<u32>) -> Option<(u32, f64)> {
    pid.and_then(|p| machine::cpu_secs(p).map(|c| (p, c)))
}

fn cpu_delta(a: Option<(u32, f64)>, b: Option<(u32, f64)>) -> Option<ProcCpu> {
    match (a, b) {
        (Some((pid, x)), Some((_, y))) => Some(ProcCpu { pid, secs: y - x }),
        _ => None,
    }
}

/// Run `bridle-load` with parsed arguments. `note` receives setup messages (stderr in the
/// binary; nothing with `--quiet`).
pub async fn execute(a: &Args, note: &(dyn Fn(&str) + Sync)) -> Result<Report, Failure> {
    // The stack, the identity and where to count CPU.
    let mut stack = None;
    let (url, identity, host_pid, enclave_pid) = match &a.host {
        None => {
            note("starting bridle-enclave and bridle-host (BRIDLE_BIN_DIR, default target/debug)");
            // The enclave on the system clock, as deployed: the tests' offset file would
            // cost a file read on every clock reading (about 3 % of the enclave's CPU).
            let s = std::panic::catch_unwind(crate::Stack::start_system_clock)
                .map_err(|_| Failure("could not start the local enclave and host (see above)".into()))?;
            let st = match s.enclave.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })) {
                Ok(Reply::Status(st)) => st,
                other => return Err(Failure(format!("the local enclave's status: {other:?}"))),
            };
            let (public_key, address) = target::parse_identity_key(&hex::encode(&st.identity_public_key))?;
            if address != st.identity_address {
                return Err(Failure("the local enclave's identity key and address disagree".into()));
            }
            let id = Identity {
                public_key,
                address,
                source: "read from the enclave's own socket (the local stack this run started)".into(),
                verified: true,
            };
            let r = (s.host.url.clone(), Some(id), Some(s.host.proc.pid()), Some(s.enclave.proc.pid()));
            stack = Some(s);
            r
        }
        Some(url) => {
            for (pid, flag) in [(a.host_pid, "--host-pid"), (a.enclave_pid, "--enclave-pid")] {
                if let Some(p) = pid {
                    if machine::cpu_secs(p).is_none() {
                        return Err(Failure(format!("{flag} {p}: no such local process (cannot read /proc/{p}/stat)")));
                    }
                }
            }
            (url.clone(), remote_identity(a, url)?, a.host_pid, a.enclave_pid)
        }
    };
    let http = target::http_client(a.concurrency.max(8), a.timeout)?;
    let st = target::signed_status(&http, &url, identity.as_ref().map(|i| i.address)).await?;
    let identity = match identity {
        Some(id) => id,
        None => {
            let (public_key, address) = target::parse_identity_key(&hex::encode(&st.identity_public_key))?;
            if address != st.identity_address {
                return Err(Failure("the host's identity key and address disagree".into()));
            }
            let id = Identity {
                public_key,
                address,
                source: "the host's word (--trust-host-identity): NOT verified — the host could front any enclave"
                    .into(),
                verified: false,
            };
            eprintln!("bridle-load: WARNING: enclave identity {address} is the host's word, not verified");
            id
        }
    };
    let clock_offset = st.now as i64 - crate::now() as i64;
    note(&format!(
        "enclave identity {} ({}); enclave clock {clock_offset:+} s from ours",
        identity.address, identity.source
    ));
    let t = Arc::new(Target { url: url.clone(), http, identity, clock_offset, chain_id: a.chain_id, rpc: a.rpc });

    // Sessions: generous enough that nothing is refused for caps.
    let cap = a.requests + (a.sessions + a.concurrency) as u64 + 16;
    let valid = a.duration.as_secs() + a.timeout.as_secs() + 900;
    let policy = target::load_policy(a.chain_id, cap, valid, t.enclave_time())?;
    note(&format!("granting {} sessions", a.sessions));
    let grant_concurrency = a.concurrency.clamp(1, 16);
    let rss0 = enclave_pid.and_then(machine::rss_kib);
    let g0 = std::time::Instant::now();
    let sessions = Arc::new(grant_all(&t, &policy, a.sessions, grant_concurrency).await?);
    let grant_time = g0.elapsed();
    let enclave_rss_kib = rss0.zip(enclave_pid.and_then(machine::rss_kib));
    let warm = warm_up(&t, &sessions, a.concurrency).await?;
    note(&format!("{warm} warm-up requests signed (not measured); measuring"));

    let me = Some(std::process::id());
    let cpu0 = (cpu_now(host_pid), cpu_now(enclave_pid), cpu_now(me));
    let load_before = machine::load_average();
    let r = run::run(run::RunConfig {
        target: t.clone(),
        sessions: sessions.clone(),
        concurrency: a.concurrency,
        requests: a.requests,
        duration: a.duration,
        rate: a.rate,
        verify_every: a.verify_every,
        progress: !a.quiet,
    })
    .await;
    let cpu1 = (cpu_now(host_pid), cpu_now(enclave_pid), cpu_now(me));
    let load_after = machine::load_average();

    let identity_after = target::signed_status(&t.http, &url, Some(t.identity.address)).await.map(|_| ());
    let revoked = if stack.is_none() {
        note("revoking the sessions");
        let mut n = 0;
        for s in sessions.iter() {
            n += t.revoke(s).await as u64;
        }
        Some(n)
    } else {
        None
    };
    drop(stack);

    note("measuring the raw k256 rate of this machine");
    let cores = machine::cores();
    let raw_1 = machine::raw_rate(1, a.raw_secs);
    let raw_all = machine::raw_rate(cores, a.raw_secs);

    let mut latency_us = r.latency_us;
    let scheduled = r.scheduled_us.map(|mut v| stats::percentiles(&mut v));
    Ok(Report {
        url,
        local_stack: a.host.is_none(),
        identity: t.identity.clone(),
        identity_after,
        sessions: a.sessions,
        concurrency: a.concurrency,
        rate: a.rate,
        rpc: a.rpc,
        generator_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        request_bound: a.requests,
        time_bound: a.duration,
        elapsed: r.elapsed,
        started: r.started,
        tally: r.tally,
        latency: stats::percentiles(&mut latency_us),
        scheduled_latency: scheduled.flatten(),
        lag: r.lag_us.and_then(|mut v| stats::percentiles(&mut v)),
        host_cpu: cpu_delta(cpu0.0, cpu1.0),
        enclave_cpu: cpu_delta(cpu0.1, cpu1.1),
        client_cpu: cpu_delta(cpu0.2, cpu1.2),
        raw_1,
        raw_all,
        cores,
        load_before,
        load_after,
        revoked,
        grant_time,
        grant_concurrency,
        enclave_rss_kib,
        policy_bytes: policy.canonical_bytes().len(),
    })
}

#[cfg(test)]
mod tests;
