//! The enclave alone, through its own socket (issue 12 items 2 and 3): no host, no HTTP.
//!
//! `bridle-enclave-bench` starts two enclaves (from `BRIDLE_BIN_DIR`, on the system clock):
//! one with every CPU this process may use, and one started on the last of them alone, so
//! that its runtime sizes itself to one core (one worker) as a one-core machine's would.
//! It grants sessions on each with owner-signed envelopes over the socket, and then sends
//! stamped ERC-20 transfers in pipelined frames: `connections` Unix connections, on each
//! between `pipeline / 2` and `pipeline` frames in flight, refilled half a pipeline per
//! write (the host's pool: 8 connections, 4 in flight each by default). Every request of a
//! phase is built and stamped before the phase starts, so what the generator spends while
//! a phase runs is writing frames and reading and checking replies.
//!
//! Phases alternate between the two enclaves: the one-core enclave pinned to its core with
//! the generator kept off it, and the all-core enclave with nothing pinned. Each phase sends
//! a fixed count of requests; the enclave's CPU comes from `/proc/<pid>/stat` over the
//! phase. Raw k256 on one thread is measured right before and right after each phase (the
//! phase's yardstick is their mean), and on every core once per round, so the enclave's
//! multi-core scaling stands beside the machine's own.

pub mod cpus;
pub mod report;

use super::machine;
use super::target::{check_created, load_policy, recovers_to, RECIPIENT, TOKEN};
use crate::{create_action, erc20_transfer, Actor, EnclaveProc};
use alloy_primitives::{Address, B256, U256};
use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::{
    Call, CreateSession, Reply, RequestFrame, ResponseFrame, SignPayload, SignRequest, StatusQuery, PROTOCOL_VERSION,
};
use bridle_common::stamp::StampKey;
use rand_core::{OsRng, RngCore};
pub use report::{Cpus, Phase, Raw, SocketReport};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Largest reply frame read back (the enclave's own limit on what it sends is far lower).
const MAX_REPLY: usize = 1 << 20;
/// Most requests per phase: they are stamped before the phase, and the enclave takes a
/// stamp for 60 s by default.
pub const MAX_REQUESTS_PER_PHASE: usize = 200_000;
/// Bounds of each raw k256 measurement: long enough to count, short enough that a phase's
/// stamps (made right after the first one) stay well inside the enclave's 60 s window.
pub const MIN_RAW_SECS: f64 = 0.05;
pub const MAX_RAW_SECS: f64 = 10.0;
/// Requests per session over all rounds, under the enclave's 65 536 live stamps.
pub const MAX_STAMPS_PER_SESSION: usize = 50_000;
/// How long a reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone)]
pub struct SocketArgs {
    /// Sessions on each enclave.
    pub sessions: usize,
    pub connections: usize,
    pub pipeline: usize,
    /// Requests per phase.
    pub requests: usize,
    pub rounds: usize,
    /// Seconds of each raw k256 measurement.
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

/// One running enclave and the sessions granted on it.
struct Bench {
    proc: EnclaveProc,
    held: Vec<Held>,
}

fn io_error(what: &str, e: std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("{what}: no reply within {} s", REPLY_TIMEOUT.as_secs()),
        _ => format!("{what}: {e}"),
    }
}

fn call(socket: &Path, call: Call) -> Result<Reply, String> {
    let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).map_err(|e| e.to_string())?;
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    s.write_all(&framed).map_err(|e| io_error("send", e))?;
    let reply = read_reply(&mut s)?;
    reply.result.map_err(|d| d.to_string())
}

pub(crate) fn read_reply(r: &mut impl Read) -> Result<ResponseFrame, String> {
    let mut h = [0u8; 4];
    r.read_exact(&mut h).map_err(|e| io_error("reply header", e))?;
    let len = u32::from_be_bytes(h) as usize;
    if len > MAX_REPLY {
        return Err(format!("reply of {len} bytes exceeds {MAX_REPLY}"));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| io_error("reply body", e))?;
    from_cbor(&body).map_err(|e| format!("reply frame: {e}"))
}

/// Grant `n` sessions straight over the socket; every binding checked against the
/// enclave's identity (read from its own socket).
fn grant(socket: &Path, n: usize, chain_id: u64, cap: u64) -> Result<Vec<Held>, String> {
    let st = match call(socket, Call::Status(StatusQuery { session: None, nonce: None, held: None }))? {
        Reply::Status(st) => st,
        other => return Err(format!("status answered {other:?}")),
    };
    let address = st.identity_address;
    let pk = k256::PublicKey::from_sec1_bytes(&st.identity_public_key).map_err(|e| e.to_string())?;
    let policy = load_policy(chain_id, cap, 3600, crate::now())?;
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let (owner, agent) = (Actor::random(), Actor::random());
        // A fresh owner's nonce: the enclave's time in milliseconds (see `Target::grant`).
        let msg = create_action(address, agent.address, policy.hash(), st.now * 1000);
        let body = CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: policy.clone(),
        };
        let created = match call(socket, Call::CreateSession(body))? {
            Reply::SessionCreated(c) => c,
            other => return Err(format!("create_session answered {other:?}")),
        };
        check_created(&created, address, owner.address, agent.address, &policy)?;
        let b = &created.binding;
        let key = StampKey::derive(&agent.secret, &pk, b.session, agent.address);
        held.push(Held { session: b.session, key, nonce: 0 });
    }
    Ok(held)
}

/// `count` stamped transfers over the sessions round-robin, each with its session's next
/// chain nonce, stamped with enclave time `now`.
fn prepare(held: &mut [Held], chain_id: u64, count: usize, now: u64) -> Result<Vec<Prepared>, String> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let n = held.len();
        let h = &mut held[i % n];
        let tx = erc20_transfer(chain_id, h.nonce, TOKEN, RECIPIENT, U256::from(1));
        h.nonce += 1;
        let digest = tx.build().map(|b| b.signing_hash()).ok_or("the transfer does not build")?;
        let payload = SignPayload::Transaction(tx);
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let stamp = h.key.stamp(h.session, payload.kind(), &digest, nonce, now);
        let req = Call::SignIfAllowed(SignRequest { session: h.session, payload, stamp });
        let body = to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: req }).map_err(|e| e.to_string())?;
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        out.push(Prepared { bytes, digest, session: h.session });
    }
    Ok(out)
}

/// Outcomes of one connection's share.
#[derive(Default)]
struct Counts {
    signed: u64,
    refused: u64,
    errors: u64,
    first_problem: Option<String>,
}

impl Counts {
    fn problem(&mut self, refused: bool, why: impl FnOnce() -> String) {
        if refused {
            self.refused += 1;
        } else {
            self.errors += 1;
        }
        if self.first_problem.is_none() {
            self.first_problem = Some(why());
        }
    }
}

/// Send `reqs` on one connection with up to `pipeline` in flight, refilling half a
/// pipeline per write; check each reply (the enclave answers a connection in order).
fn drive(socket: &Path, reqs: &[Prepared], pipeline: usize, verify_every: usize) -> Result<Counts, String> {
    let s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
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
        w.write_all(&buf).map_err(|e| io_error("send", e))
    };
    send(&mut sent, pipeline, &mut w)?;
    while got < reqs.len() {
        let reply = read_reply(&mut r)?;
        let Some(want) = reqs.get(got).filter(|_| got < sent) else {
            return Err(format!("a reply without a request (reply {} after {sent} requests)", got + 1));
        };
        got += 1;
        match reply.result {
            Ok(Reply::Signed(sig)) if sig.digest == want.digest && sig.session == want.session => {
                if verify_every > 0
                    && got % verify_every == 0
                    && !recovers_to(&sig.signature, &want.digest, want.session)
                {
                    c.problem(false, || format!("signature of reply {got} does not recover to its session"));
                } else {
                    c.signed += 1;
                }
            }
            Ok(Reply::Signed(_)) => c.problem(false, || format!("reply {got} signed another digest or session")),
            Ok(other) => c.problem(false, || format!("reply {got} is not a signature: {other:?}")),
            Err(d) => {
                let refused = d.code.is_denial();
                c.problem(refused, || d.to_string())
            }
        }
        if sent < reqs.len() && sent - got <= pipeline - refill {
            send(&mut sent, got + pipeline, &mut w)?;
        }
    }
    Ok(c)
}

/// Start an enclave (on `only` when given: it inherits this process's CPU set at start,
/// and its runtime sizes itself to it), grant its sessions and warm each up.
fn start(a: &SocketArgs, only: Option<&[usize]>, allowed: &[usize], cap: u64) -> Result<Bench, String> {
    if let Some(set) = only {
        cpus::pin(std::process::id(), set)?;
    }
    let proc = std::panic::catch_unwind(EnclaveProc::start_system_clock);
    if only.is_some() {
        cpus::pin(std::process::id(), allowed)?;
    }
    let proc = proc.map_err(|_| "could not start the enclave (see above)".to_string())?;
    let mut held = grant(&proc.socket, a.sessions, 1, cap)?;
    let warm = prepare(&mut held, 1, a.sessions.max(a.pipeline), crate::now())?;
    let c = drive(&proc.socket, &warm, a.pipeline, 1)?;
    if c.signed as usize != warm.len() {
        return Err(format!(
            "warm-up: {} of {} signed ({} refused, {} errors; first: {})",
            c.signed,
            warm.len(),
            c.refused,
            c.errors,
            c.first_problem.unwrap_or_default()
        ));
    }
    Ok(Bench { proc, held })
}

/// Where a phase runs: the enclave's CPUs, this process's, and every allowed CPU (this
/// process's for the raw measurements around the phase).
struct Pins<'a> {
    enclave: &'a [usize],
    generator: &'a [usize],
    allowed: &'a [usize],
}

/// One phase on `b`: the requests stamped first, then sent over `connections` at once.
fn phase(a: &SocketArgs, b: &mut Bench, round: usize, which: Cpus, pins: Pins) -> Result<Phase, String> {
    let (me, pid) = (std::process::id(), b.proc.proc.pid());
    // The yardstick first: the stamps made next must not age while it runs.
    let raw_before = machine::raw_rate(1, a.raw_secs);
    let reqs = prepare(&mut b.held, 1, a.requests, crate::now())?;
    // Connection k carries requests k, k + C, …: each session stays on one connection when
    // the session count is a multiple of the connection count.
    let mut shares: Vec<Vec<Prepared>> = (0..a.connections).map(|_| Vec::new()).collect();
    for (i, r) in reqs.into_iter().enumerate() {
        shares[i % a.connections].push(r);
    }
    cpus::pin(pid, pins.enclave)?;
    cpus::pin(me, pins.generator)?;
    let (e0, m0) = (machine::cpu_secs(pid), machine::cpu_secs(me));
    let t0 = Instant::now();
    let socket = &b.proc.socket;
    let results: Vec<Result<Counts, String>> = std::thread::scope(|s| {
        let hs: Vec<_> =
            shares.iter().map(|share| s.spawn(|| drive(socket, share, a.pipeline, a.verify_every))).collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a sender thread panicked".into()))).collect()
    });
    let elapsed = t0.elapsed();
    let (e1, m1) = (machine::cpu_secs(pid), machine::cpu_secs(me));
    let mut p = Phase {
        round,
        cpus: which,
        signed: 0,
        refused: 0,
        errors: 0,
        first_problem: None,
        elapsed,
        enclave_cpu: e1.zip(e0).map(|(b, a)| b - a).ok_or("cannot read the enclave's CPU time")?,
        generator_cpu: m1.zip(m0).map(|(b, a)| b - a).ok_or("cannot read this process's CPU time")?,
        raw_one: 0.0,
    };
    for r in results {
        let c = r?;
        p.signed += c.signed;
        p.refused += c.refused;
        p.errors += c.errors;
        p.first_problem = p.first_problem.take().or(c.first_problem);
    }
    cpus::pin(me, pins.allowed)?;
    p.raw_one = (raw_before + machine::raw_rate(1, a.raw_secs)) / 2.0;
    Ok(p)
}

/// Run the benchmark. `note` gets progress lines.
pub fn execute(a: &SocketArgs, note: &dyn Fn(&str)) -> Result<SocketReport, String> {
    if a.sessions == 0 || a.connections == 0 || a.pipeline == 0 || a.requests == 0 || a.rounds == 0 {
        return Err("sessions, connections, pipeline, requests and rounds must each be at least 1".into());
    }
    if a.requests > MAX_REQUESTS_PER_PHASE {
        return Err(format!("at most {MAX_REQUESTS_PER_PHASE} requests per phase (they are stamped before it)"));
    }
    if !(MIN_RAW_SECS..=MAX_RAW_SECS).contains(&a.raw_secs) {
        return Err(format!("--raw-secs must be between {MIN_RAW_SECS} and {MAX_RAW_SECS} s"));
    }
    // Each session remembers its live stamps (those within the enclave's 60 s window), at
    // most 65 536: rounds follow each other within that window.
    let per_session = a.requests.saturating_mul(a.rounds) / a.sessions;
    if per_session > MAX_STAMPS_PER_SESSION {
        return Err(format!(
            "{per_session} requests per session over the rounds: at most {MAX_STAMPS_PER_SESSION} (the enclave keeps \
             65 536 live stamps per session); add sessions or lower --requests or --rounds"
        ));
    }
    let me = std::process::id();
    let allowed = cpus::allowed(me)?;
    let _restore = cpus::Restore(allowed.clone());
    let last = *allowed.last().ok_or("no CPU allowed")?;
    let others: Vec<usize> = allowed.iter().copied().filter(|&c| c != last).collect();
    let multi = !others.is_empty();
    let enclave_binary = crate::bin("bridle-enclave").display().to_string();
    note(&format!("enclave binary {enclave_binary}; CPUs allowed {allowed:?}"));

    let cap = (a.requests * (a.rounds + 1) + a.sessions + a.pipeline + 16) as u64;
    let g0 = Instant::now();
    let mut all = start(a, None, &allowed, cap)?;
    let mut one = if multi { Some(start(a, Some(&[last]), &allowed, cap)?) } else { None };
    let grant_time = g0.elapsed();
    let granted = a.sessions * if multi { 2 } else { 1 };
    note(&format!("{granted} sessions granted and warmed up; measuring"));

    let mut phases = Vec::new();
    let mut raw = Vec::new();
    for round in 1..=a.rounds {
        let order = if round % 2 == 1 { [Cpus::One, Cpus::All] } else { [Cpus::All, Cpus::One] };
        for which in order {
            let p = match (which, one.as_mut()) {
                (Cpus::One, Some(b)) => {
                    phase(a, b, round, which, Pins { enclave: &[last], generator: &others, allowed: &allowed })?
                }
                (Cpus::One, None) => continue,
                (Cpus::All, _) => phase(
                    a,
                    &mut all,
                    round,
                    which,
                    Pins { enclave: &allowed, generator: &allowed, allowed: &allowed },
                )?,
            };
            note(&format!(
                "round {round}, enclave on {}: {:.0} signed/s, enclave {:.1} µs per request ({:.2} raw signatures)",
                if which == Cpus::One { "one core" } else { "all cores" },
                p.rate(),
                p.enclave_us_per_request(),
                p.over_raw()
            ));
            phases.push(p);
        }
        raw.push(Raw { one: machine::raw_rate(1, a.raw_secs), all: machine::raw_rate(allowed.len(), a.raw_secs) });
    }
    Ok(SocketReport { args: a.clone(), cpus: allowed, phases, raw, grant_time, granted, enclave_binary })
}
