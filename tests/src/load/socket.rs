//! The enclave alone, through its own socket (issue 12 items 2 and 3): no host, no HTTP.
//!
//! `bridle-enclave-bench` starts `bridle-enclave` (from `BRIDLE_BIN_DIR`, on the system
//! clock), grants sessions with owner-signed envelopes over the socket, and then sends
//! stamped ERC-20 transfers as the host's pipelined pool does: `connections` Unix
//! connections, each with up to `pipeline` frames in flight, written several to a write.
//! Every request is built and stamped before its phase starts, so what the generator spends
//! while a phase runs is writing frames and reading replies.
//!
//! Phases alternate the enclave's CPUs with `taskset -a -p`: its last core alone (the
//! generator then kept off that core), and every core (nothing pinned). Each phase sends a
//! fixed count of requests; the enclave's CPU comes from `/proc/<pid>/stat` over the phase.
//! Each round also measures raw k256 signing on one thread and on every core, so the
//! enclave's multi-core scaling stands beside the machine's own.

use super::machine;
use super::target::{load_policy, recovers_to, RECIPIENT, TOKEN};
use crate::{create_action, erc20_transfer, Actor, EnclaveProc};
use alloy_primitives::{Address, B256, U256};
use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::{
    Call, CreateSession, Reply, RequestFrame, ResponseFrame, SignPayload, SignRequest, StatusQuery, PROTOCOL_VERSION,
};
use bridle_common::stamp::StampKey;
use rand_core::{OsRng, RngCore};
use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest reply frame read back (the enclave's own limit on what it sends is far lower).
const MAX_REPLY: usize = 1 << 20;

/// What to run.
#[derive(Debug, Clone)]
pub struct SocketArgs {
    pub sessions: usize,
    pub connections: usize,
    pub pipeline: usize,
    /// Requests per phase.
    pub requests: usize,
    pub rounds: usize,
    /// Seconds of raw k256 signing per measurement (1 thread, then every core).
    pub raw_secs: f64,
    /// Recover every n-th signature to its session (0: none).
    pub verify_every: usize,
}

impl Default for SocketArgs {
    fn default() -> Self {
        SocketArgs {
            sessions: 64,
            connections: 8,
            pipeline: 8,
            requests: 40_000,
            rounds: 3,
            raw_secs: 1.0,
            verify_every: 64,
        }
    }
}

/// Where the enclave ran in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// Its last core alone.
    One,
    /// Every core.
    All,
}

/// One phase's figures.
#[derive(Debug, Clone)]
pub struct Phase {
    pub round: usize,
    pub cpus: Cpus,
    pub signed: u64,
    pub refused: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Enclave CPU seconds over the phase.
    pub enclave_cpu: f64,
    /// The generator's CPU seconds over the phase.
    pub generator_cpu: f64,
    /// Raw k256 signatures per second on one thread, measured right after the phase (the
    /// machine's speed moves between phases; each phase is divided by its own).
    pub raw_one: f64,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.signed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn enclave_us_per_request(&self) -> f64 {
        1e6 * self.enclave_cpu / (self.signed + self.refused).max(1) as f64
    }
    pub fn generator_us_per_request(&self) -> f64 {
        1e6 * self.generator_cpu / (self.signed + self.refused).max(1) as f64
    }
    /// Enclave CPU per request over one raw signature measured right after the phase.
    pub fn over_raw(&self) -> f64 {
        self.enclave_us_per_request() * self.raw_one / 1e6
    }
    /// Cores the enclave kept busy.
    pub fn enclave_cores(&self) -> f64 {
        self.enclave_cpu / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Raw k256 signing, one round's yardstick.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub one: f64,
    pub all: f64,
}

pub struct SocketReport {
    pub args: SocketArgs,
    pub cores: usize,
    pub phases: Vec<Phase>,
    pub raw: Vec<Raw>,
    pub grant_time: Duration,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl SocketReport {
    fn of(&self, cpus: Cpus, f: impl Fn(&Phase) -> f64) -> f64 {
        median(self.phases.iter().filter(|p| p.cpus == cpus).map(f).collect())
    }
    /// Median signing rate with the enclave on every core / on one core.
    pub fn scaling(&self) -> f64 {
        self.of(Cpus::All, Phase::rate) / self.of(Cpus::One, Phase::rate)
    }
    /// The machine's own: raw k256 on every core / on one thread.
    pub fn raw_scaling(&self) -> f64 {
        median(self.raw.iter().map(|r| r.all / r.one).collect())
    }
    /// One raw signature on one thread, µs (median over every measurement).
    pub fn raw_signature_us(&self) -> f64 {
        median(self.raw.iter().map(|r| r.one).chain(self.phases.iter().map(|p| p.raw_one)).map(|r| 1e6 / r).collect())
    }
    pub fn totals(&self) -> (u64, u64, u64) {
        self.phases.iter().fold((0, 0, 0), |(a, b, c), p| (a + p.signed, b + p.refused, c + p.errors))
    }
    /// 0 when every request was signed.
    pub fn exit_code(&self) -> i32 {
        let (ok, refused, errors) = self.totals();
        if ok > 0 && refused == 0 && errors == 0 {
            0
        } else {
            1
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use super::stats::round;
        use serde_json::json;
        let raw_us = self.raw_signature_us();
        let phases: Vec<_> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "round": p.round,
                    "enclave_cpus": match p.cpus { Cpus::One => "one", Cpus::All => "all" },
                    "signed": p.signed, "refused": p.refused, "errors": p.errors,
                    "seconds": round(p.elapsed.as_secs_f64(), 3),
                    "signed_per_sec": round(p.rate(), 1),
                    "enclave_cpu_us_per_request": round(p.enclave_us_per_request(), 2),
                    "enclave_cores_used": round(p.enclave_cores(), 3),
                    "generator_cpu_us_per_request": round(p.generator_us_per_request(), 2),
                    "raw_k256_one_thread_per_sec_after": round(p.raw_one, 1),
                    "enclave_cpu_per_request_over_raw_signature": round(p.over_raw(), 3),
                })
            })
            .collect();
        let (ok, refused, errors) = self.totals();
        json!({
            "sessions": self.args.sessions,
            "connections": self.args.connections,
            "pipeline": self.args.pipeline,
            "requests_per_phase": self.args.requests,
            "rounds": self.args.rounds,
            "cores": self.cores,
            "sessions_created_per_sec": round(self.args.sessions as f64 / self.grant_time.as_secs_f64().max(1e-9), 1),
            "signed": ok, "refused": refused, "errors": errors,
            "phases": phases,
            "raw_k256": self.raw.iter().map(|r| json!({"one_thread_per_sec": round(r.one, 1), "all_cores_per_sec": round(r.all, 1)})).collect::<Vec<_>>(),
            "median": {
                "signed_per_sec_one_core": round(self.of(Cpus::One, Phase::rate), 1),
                "signed_per_sec_all_cores": round(self.of(Cpus::All, Phase::rate), 1),
                "enclave_cpu_us_per_request_one_core": round(self.of(Cpus::One, Phase::enclave_us_per_request), 2),
                "enclave_cpu_us_per_request_all_cores": round(self.of(Cpus::All, Phase::enclave_us_per_request), 2),
                "raw_signature_us": round(raw_us, 2),
            },
            "ratios": {
                "enclave_all_cores_over_one_core": round(self.scaling(), 3),
                "raw_k256_all_cores_over_one_thread": round(self.raw_scaling(), 3),
                "enclave_cpu_per_request_over_raw_signature_one_core": round(self.of(Cpus::One, Phase::over_raw), 3),
                "enclave_cpu_per_request_over_raw_signature_all_cores": round(self.of(Cpus::All, Phase::over_raw), 3),
            },
        })
    }

    pub fn human(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let raw_us = self.raw_signature_us();
        let _ = writeln!(
            s,
            "bridle-enclave-bench: {} sessions, {} connections x {} in flight, {} requests per phase, {} cores",
            self.args.sessions, self.args.connections, self.args.pipeline, self.args.requests, self.cores
        );
        let _ = writeln!(
            s,
            "  sessions created: {:.0} /s ({} in {:.2} s)",
            self.args.sessions as f64 / self.grant_time.as_secs_f64().max(1e-9),
            self.args.sessions,
            self.grant_time.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  round  enclave on  signed/s   enclave CPU/request  enclave cores  generator CPU/request  raw signature after  enclave/raw"
        );
        for p in &self.phases {
            let _ = writeln!(
                s,
                "  {:>5}  {:<10}  {:>8.0}   {:>8.1} µs          {:>5.2}          {:>6.1} µs             {:>6.1} µs         {:>5.2}",
                p.round,
                match p.cpus {
                    Cpus::One => "one core",
                    Cpus::All => "all cores",
                },
                p.rate(),
                p.enclave_us_per_request(),
                p.enclave_cores(),
                p.generator_us_per_request(),
                1e6 / p.raw_one,
                p.over_raw()
            );
        }
        for (i, r) in self.raw.iter().enumerate() {
            let _ = writeln!(
                s,
                "  raw k256, round {}: {:.0} /s on 1 thread, {:.0} /s on {} cores",
                i + 1,
                r.one,
                r.all,
                self.cores
            );
        }
        let (ok, refused, errors) = self.totals();
        let _ = writeln!(s, "  outcomes: {ok} signed, {refused} refused, {errors} errors");
        let _ = writeln!(
            s,
            "  multi-core (item 3): enclave on all cores / one core = {:.2}x  (raw k256, same runs: {:.2}x)",
            self.scaling(),
            self.raw_scaling()
        );
        let _ = writeln!(
            s,
            "  enclave CPU per request / raw signature (item 2, medians of each phase over the raw rate measured after it): \
             {:.2} on one core, {:.2} on all cores  (raw signature {:.1} µs, median)",
            self.of(Cpus::One, Phase::over_raw),
            self.of(Cpus::All, Phase::over_raw),
            raw_us
        );
        s
    }
}

/// A granted session as the generator holds it.
struct Held {
    session: Address,
    key: StampKey,
    nonce: u64,
}

/// One request frame, length-prefixed, with what its reply must carry.
struct Prepared {
    bytes: Vec<u8>,
    digest: B256,
    session: Address,
}

fn call(socket: &Path, call: Call) -> Result<Reply, String> {
    let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).map_err(|e| e.to_string())?;
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    s.write_all(&framed).map_err(|e| format!("send: {e}"))?;
    let reply = read_reply(&mut s)?;
    reply.result.map_err(|d| d.to_string())
}

fn read_reply(r: &mut impl Read) -> Result<ResponseFrame, String> {
    let mut h = [0u8; 4];
    r.read_exact(&mut h).map_err(|e| format!("reply header: {e}"))?;
    let len = u32::from_be_bytes(h) as usize;
    if len > MAX_REPLY {
        return Err(format!("reply of {len} bytes exceeds {MAX_REPLY}"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| format!("reply body: {e}"))?;
    from_cbor(&body).map_err(|e| format!("reply frame: {e}"))
}

/// Grant `n` sessions straight over the socket; every binding checked against `identity`.
fn grant(socket: &Path, identity: (&[u8], Address), n: usize, chain_id: u64, cap: u64) -> Result<Vec<Held>, String> {
    let (pk_bytes, address) = identity;
    let policy = load_policy(chain_id, cap, 3600, crate::now())?;
    let pk = k256::PublicKey::from_sec1_bytes(pk_bytes).map_err(|e| e.to_string())?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let (owner, agent) = (Actor::random(), Actor::random());
        let msg = create_action(address, agent.address, policy.hash(), Actor::next_nonce());
        let body = CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: policy.clone(),
        };
        let created = match call(socket, Call::CreateSession(body))? {
            Reply::SessionCreated(c) => c,
            other => return Err(format!("create_session answered {other:?}")),
        };
        let b = &created.binding;
        if b.enclave != address || b.owner != owner.address || b.agent != agent.address {
            return Err(format!("the session binding does not name what was granted: {b:?}"));
        }
        if !recovers_to(&created.binding_signature, &b.digest(), address) {
            return Err("the session binding is not signed by the enclave identity".into());
        }
        let key = StampKey::derive(&agent.secret, &pk, b.session, agent.address);
        held.push(Held { session: b.session, key, nonce: 0 });
    }
    Ok(held)
}

/// `count` stamped transfers over the sessions round-robin, each with its session's next
/// chain nonce, stamped with enclave time `now`.
fn prepare(held: &mut [Held], chain_id: u64, count: usize, now: u64) -> Vec<Prepared> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let n = held.len();
        let h = &mut held[i % n];
        let tx = erc20_transfer(chain_id, h.nonce, TOKEN, RECIPIENT, U256::from(1));
        h.nonce += 1;
        let digest = tx.build().map(|b| b.signing_hash()).unwrap_or_default();
        let payload = SignPayload::Transaction(tx);
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let stamp = h.key.stamp(h.session, payload.kind(), &digest, nonce, now);
        let req = Call::SignIfAllowed(SignRequest { session: h.session, payload, stamp });
        let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: req }).expect("a request encodes");
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        out.push(Prepared { bytes, digest, session: h.session });
    }
    out
}

/// Outcomes of one connection's share.
#[derive(Default)]
struct Counts {
    signed: u64,
    refused: u64,
    errors: u64,
}

/// Send `reqs` on one connection with up to `pipeline` in flight, refilling half a
/// pipeline per write; check each reply.
fn drive(socket: &Path, reqs: &[Prepared], pipeline: usize, verify_every: usize) -> Result<Counts, String> {
    let s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(1 << 16, s);
    let refill = (pipeline / 2).max(1);
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = Vec::new();
    let mut c = Counts::default();
    let mut send = |sent: &mut usize, upto: usize, w: &mut UnixStream| -> Result<(), String> {
        buf.clear();
        while *sent < upto.min(reqs.len()) {
            buf.extend_from_slice(&reqs[*sent].bytes);
            *sent += 1;
        }
        w.write_all(&buf).map_err(|e| format!("send: {e}"))
    };
    send(&mut sent, pipeline, &mut w)?;
    while got < reqs.len() {
        let reply = read_reply(&mut r)?;
        let want = &reqs[got];
        got += 1;
        match reply.result {
            Ok(Reply::Signed(sig)) if sig.digest == want.digest && sig.session == want.session => {
                if verify_every > 0
                    && got % verify_every == 0
                    && !recovers_to(&sig.signature, &want.digest, want.session)
                {
                    c.errors += 1;
                } else {
                    c.signed += 1;
                }
            }
            Ok(_) => c.errors += 1,
            Err(d) if d.code.is_denial() => c.refused += 1,
            Err(_) => c.errors += 1,
        }
        if sent < reqs.len() && sent - got <= pipeline - refill {
            send(&mut sent, got + pipeline, &mut w)?;
        }
    }
    Ok(c)
}

/// Pin every thread of `pid` to `cpus` (a `taskset` list such as `1` or `0-1`).
fn pin(pid: u32, cpus: &str) -> Result<(), String> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .map_err(|e| format!("taskset: {e} (util-linux)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("taskset -a -p -c {cpus} {pid}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Run the benchmark. `note` gets progress lines.
pub fn execute(a: &SocketArgs, note: &dyn Fn(&str)) -> Result<SocketReport, String> {
    if a.sessions == 0 || a.connections == 0 || a.pipeline == 0 || a.requests == 0 || a.rounds == 0 {
        return Err("sessions, connections, pipeline, requests and rounds must each be at least 1".into());
    }
    let cores = machine::cores();
    let last = cores - 1;
    let all = format!("0-{last}");
    let others = if cores > 1 { format!("0-{}", last.saturating_sub(1)) } else { "0".into() };
    note("starting bridle-enclave (BRIDLE_BIN_DIR, default target/debug) on the system clock");
    let enclave = std::panic::catch_unwind(EnclaveProc::start_system_clock)
        .map_err(|_| "could not start the enclave (see above)".to_string())?;
    let pid = enclave.proc.pid();
    let me = std::process::id();
    let st = match call(&enclave.socket, Call::Status(StatusQuery { session: None, nonce: None }))? {
        Reply::Status(st) => st,
        other => return Err(format!("status answered {other:?}")),
    };
    let chain_id = 1;
    let cap = (a.requests * (a.rounds * 2 + 1) + a.sessions + 16) as u64;
    let g0 = Instant::now();
    let mut held = grant(&enclave.socket, (&st.identity_public_key, st.identity_address), a.sessions, chain_id, cap)?;
    let grant_time = g0.elapsed();
    note(&format!("{} sessions granted; warming up", a.sessions));
    let warm = prepare(&mut held, chain_id, a.sessions.max(a.pipeline), crate::now());
    let c = drive(&enclave.socket, &warm, a.pipeline, 1)?;
    if c.signed as usize != warm.len() {
        return Err(format!(
            "warm-up: {} of {} signed ({} refused, {} errors)",
            c.signed,
            warm.len(),
            c.refused,
            c.errors
        ));
    }

    let mut phases = Vec::new();
    let mut raw = Vec::new();
    for round in 1..=a.rounds {
        let order = if round % 2 == 1 { [Cpus::One, Cpus::All] } else { [Cpus::All, Cpus::One] };
        for cpus in order {
            match cpus {
                Cpus::One => {
                    pin(pid, &last.to_string())?;
                    pin(me, &others)?;
                }
                Cpus::All => {
                    pin(pid, &all)?;
                    pin(me, &all)?;
                }
            }
            let reqs = prepare(&mut held, chain_id, a.requests, crate::now());
            // Connection k carries requests k, k + C, …: each session stays on one connection
            // when the session count is a multiple of the connection count.
            let mut shares: Vec<Vec<Prepared>> = (0..a.connections).map(|_| Vec::new()).collect();
            for (i, r) in reqs.into_iter().enumerate() {
                shares[i % a.connections].push(r);
            }
            let (e0, m0) = (machine::cpu_secs(pid), machine::cpu_secs(me));
            let t0 = Instant::now();
            let results: Vec<Result<Counts, String>> = std::thread::scope(|s| {
                let hs: Vec<_> = shares
                    .iter()
                    .map(|share| s.spawn(|| drive(&enclave.socket, share, a.pipeline, a.verify_every)))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a sender thread panicked".into()))).collect()
            });
            let elapsed = t0.elapsed();
            let (e1, m1) = (machine::cpu_secs(pid), machine::cpu_secs(me));
            let mut p = Phase {
                round,
                cpus,
                signed: 0,
                refused: 0,
                errors: 0,
                elapsed,
                enclave_cpu: e1.zip(e0).map(|(b, a)| b - a).unwrap_or(f64::NAN),
                generator_cpu: m1.zip(m0).map(|(b, a)| b - a).unwrap_or(f64::NAN),
                raw_one: 0.0,
            };
            for r in results {
                let c = r?;
                p.signed += c.signed;
                p.refused += c.refused;
                p.errors += c.errors;
            }
            pin(me, &all)?;
            p.raw_one = machine::raw_rate(1, a.raw_secs);
            note(&format!(
                "round {round}, enclave on {}: {:.0} signed/s, enclave {:.1} µs per request ({:.2} raw signatures)",
                if cpus == Cpus::One { "one core" } else { "all cores" },
                p.rate(),
                p.enclave_us_per_request(),
                p.over_raw()
            ));
            phases.push(p);
        }
        pin(me, &all)?;
        raw.push(Raw { one: machine::raw_rate(1, a.raw_secs), all: machine::raw_rate(cores, a.raw_secs) });
    }
    pin(pid, &all)?;
    Ok(SocketReport { args: a.clone(), cores, phases, raw, grant_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(cpus: Cpus, signed: u64, secs: f64, cpu: f64, raw_one: f64) -> Phase {
        Phase {
            round: 1,
            cpus,
            signed,
            refused: 0,
            errors: 0,
            elapsed: Duration::from_secs_f64(secs),
            enclave_cpu: cpu,
            generator_cpu: 0.1,
            raw_one,
        }
    }

    #[test]
    fn ratios_are_medians_of_each_phase() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        // 10 000 signed in 1 s on one core with 0.6 s of CPU: 60 µs each; raw 20 000 /s is
        // 50 µs, so 1.2 signatures.
        let one = phase(Cpus::One, 10_000, 1.0, 0.6, 20_000.0);
        assert!((one.enclave_us_per_request() - 60.0).abs() < 1e-9);
        assert!((one.over_raw() - 1.2).abs() < 1e-9);
        let all = phase(Cpus::All, 18_000, 1.0, 1.08, 20_000.0);
        let r = SocketReport {
            args: SocketArgs::default(),
            cores: 2,
            phases: vec![one, all],
            raw: vec![Raw { one: 20_000.0, all: 38_000.0 }],
            grant_time: Duration::from_secs(1),
        };
        assert!((r.scaling() - 1.8).abs() < 1e-9);
        assert!((r.raw_scaling() - 1.9).abs() < 1e-9);
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.to_json()["ratios"]["enclave_all_cores_over_one_core"], 1.8);
        assert!(r.human().contains("1.80x"));
    }
}
