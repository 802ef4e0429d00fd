//! The measured phase: closed loop (C workers back to back) or open loop (a fixed start
//! rate, whatever the completions), bounded in count and time, with a progress line.

use super::stats::{micros, Outcome, Tally};
use super::target::{LoadSession, Target};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct RunConfig {
    pub target: Arc<Target>,
    pub sessions: Arc<Vec<LoadSession>>,
    pub concurrency: usize,
    /// Count bound.
    pub requests: u64,
    /// Time bound: no request starts after it.
    pub duration: Duration,
    /// Open loop at this rate; closed loop when `None`.
    pub rate: Option<f64>,
    /// Recover the signature of every K-th request (0: never).
    pub verify_every: u64,
    pub progress: bool,
}

#[derive(Default)]
struct Recorder {
    tally: Tally,
    /// Signed requests only, from the moment each was sent, µs.
    latency_us: Vec<u32>,
    /// Open loop: signed requests from their scheduled start, µs.
    scheduled_us: Vec<u32>,
}

#[derive(Default)]
struct Live {
    started: AtomicU64,
    done: AtomicU64,
    ok: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
}

pub struct RunResult {
    pub elapsed: Duration,
    pub started: u64,
    pub tally: Tally,
    pub latency_us: Vec<u32>,
    /// Open loop only.
    pub scheduled_us: Option<Vec<u32>>,
    /// Open loop: how late each request started after its scheduled time, µs (the OS timer's
    /// slack, the schedule's thread waiting for a core, or the in-flight cap reached).
    pub lag_us: Option<Vec<u32>>,
}

struct Shared {
    cfg: RunConfig,
    rec: Mutex<Recorder>,
    live: Live,
}

impl Shared {
    /// Send request `i` (round-robin over the sessions) and record it.
    async fn one(&self, i: u64, scheduled: Option<Instant>) {
        let s = &self.cfg.sessions[(i % self.cfg.sessions.len() as u64) as usize];
        let check = self.cfg.verify_every > 0 && i.is_multiple_of(self.cfg.verify_every);
        self.live.started.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let o = self.cfg.target.sign(s, check).await;
        let lat = t0.elapsed();
        let counter = match o {
            Outcome::Ok => &self.live.ok,
            Outcome::Refused(_) => &self.live.refused,
            Outcome::Error(_) => &self.live.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.live.done.fetch_add(1, Ordering::Relaxed);
        let mut r = self.rec.lock().unwrap();
        if o == Outcome::Ok {
            r.latency_us.push(micros(lat));
            if let Some(at) = scheduled {
                r.scheduled_us.push(micros(at.elapsed()));
            }
        }
        r.tally.add(&o);
    }
}

fn progress(shared: Arc<Shared>, start: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
        let mut last = (0u64, start);
        loop {
            tick.tick().await;
            let l = &shared.live;
            let (ok, done, started) =
                (l.ok.load(Ordering::Relaxed), l.done.load(Ordering::Relaxed), l.started.load(Ordering::Relaxed));
            let now = Instant::now();
            let rate = (ok - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-9);
            last = (ok, now);
            eprintln!(
                "[{:>5.1} s] signed {ok}, refused {}, errors {}, in flight {}; last second {rate:.0} signed/s",
                start.elapsed().as_secs_f64(),
                l.refused.load(Ordering::Relaxed),
                l.errors.load(Ordering::Relaxed),
                started - done,
            );
        }
    })
}

/// The open loop: request `i` is due at `start + i / rate`. The schedule runs on a thread of
/// its own that sleeps to each start on the OS's high-resolution timer and hands every
/// request then due to the runtime. (Scheduled as a task, as it was, each start waited for
/// the next tick of tokio's 1 ms timer wheel — up to 1 ms of lag on every request, all of it
/// counted in the latency from schedule — and for a worker busy with replies.) At most
/// `cap` requests are in flight; a start that finds none free waits, and its wait counts.
/// Returns each start's lag behind its schedule, µs.
async fn open_loop(
    shared: &Arc<Shared>,
    start: Instant,
    deadline: Instant,
    rate: f64,
    cap: usize,
    requests: u64,
) -> Vec<u32> {
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    let (shared2, slots2, rt) = (shared.clone(), slots.clone(), tokio::runtime::Handle::current());
    let schedule = tokio::task::spawn_blocking(move || {
        let mut lag_us = Vec::with_capacity(requests.min(1 << 20) as usize);
        let period = 1.0 / rate;
        for i in 0..requests {
            let at = start + Duration::from_secs_f64(period * i as f64);
            if at >= deadline {
                break;
            }
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let permit = match slots2.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => rt.block_on(slots2.clone().acquire_owned()).expect("semaphore"),
            };
            lag_us.push(micros(at.elapsed()));
            let shared = shared2.clone();
            rt.spawn(async move {
                shared.one(i, Some(at)).await;
                drop(permit);
            });
        }
        lag_us
    });
    let lag_us = schedule.await.expect("open-loop schedule");
    // Wait for the requests in flight (each is bounded by the request timeout).
    let _all = slots.acquire_many(cap as u32).await.expect("semaphore");
    lag_us
}

/// Run the measured phase.
pub async fn run(cfg: RunConfig) -> RunResult {
    let cap = cfg.requests.min(1 << 20) as usize;
    let open = cfg.rate.is_some();
    let rec = Recorder {
        latency_us: Vec::with_capacity(cap),
        scheduled_us: if open { Vec::with_capacity(cap) } else { Vec::new() },
        ..Default::default()
    };
    let (concurrency, requests, duration, rate, show) =
        (cfg.concurrency, cfg.requests, cfg.duration, cfg.rate, cfg.progress);
    let shared = Arc::new(Shared { cfg, rec: Mutex::new(rec), live: Live::default() });
    let start = Instant::now();
    let deadline = start + duration;
    let ticker = show.then(|| progress(shared.clone(), start));
    let mut lag_us = Vec::new();

    match rate {
        None => {
            let next = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..concurrency)
                .map(|_| {
                    let (shared, next) = (shared.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= requests || Instant::now() >= deadline {
                                return;
                            }
                            shared.one(i, None).await;
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.expect("load worker");
            }
        }
        Some(r) => lag_us = open_loop(&shared, start, deadline, r, concurrency, requests).await,
    }
    let elapsed = start.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    let started = shared.live.started.load(Ordering::Relaxed);
    let rec = std::mem::take(&mut *shared.rec.lock().unwrap());
    RunResult {
        elapsed,
        started,
        tally: rec.tally,
        latency_us: rec.latency_us,
        scheduled_us: open.then_some(rec.scheduled_us),
        lag_us: open.then_some(lag_us),
    }
}
