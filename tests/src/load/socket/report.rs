//! What `bridle-enclave-bench` measured, and its two printed forms (human and `--json`).

use super::SocketArgs;
use crate::load::stats::round;
use std::time::Duration;

/// Which enclave a phase ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// The enclave started on one core (one runtime worker) and kept there.
    One,
    /// The enclave started with every core.
    All,
}

impl Cpus {
    fn name(self) -> &'static str {
        match self {
            Cpus::One => "one core",
            Cpus::All => "all cores",
        }
    }
}

/// One phase's figures.
#[derive(Debug, Clone)]
pub struct Phase {
    pub round: usize,
    pub cpus: Cpus,
    pub signed: u64,
    pub refused: u64,
    pub errors: u64,
    /// The first refusal or error, as the enclave or the connection put it.
    pub first_problem: Option<String>,
    pub elapsed: Duration,
    /// Enclave CPU seconds over the phase.
    pub enclave_cpu: f64,
    /// The generator's CPU seconds over the phase.
    pub generator_cpu: f64,
    /// Raw k256 signatures per second on one thread: the mean of a measurement right before
    /// and one right after the phase (the machine's speed moves between phases).
    pub raw_one: f64,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.signed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn answered(&self) -> f64 {
        (self.signed + self.refused).max(1) as f64
    }
    pub fn enclave_us_per_request(&self) -> f64 {
        1e6 * self.enclave_cpu / self.answered()
    }
    pub fn generator_us_per_request(&self) -> f64 {
        1e6 * self.generator_cpu / self.answered()
    }
    /// Enclave CPU per request over one raw signature around the phase.
    pub fn over_raw(&self) -> f64 {
        self.enclave_us_per_request() * self.raw_one / 1e6
    }
    /// Cores the enclave kept busy.
    pub fn enclave_cores(&self) -> f64 {
        self.enclave_cpu / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Raw k256 signing on every allowed core, once per round.
#[derive(Debug, Clone, Copy)]
pub struct Raw {
    pub one: f64,
    pub all: f64,
}

pub struct SocketReport {
    pub args: SocketArgs,
    /// CPUs this process was allowed to use.
    pub cpus: Vec<usize>,
    pub phases: Vec<Phase>,
    pub raw: Vec<Raw>,
    pub grant_time: Duration,
    /// Sessions granted in all (on both enclaves).
    pub granted: usize,
    pub enclave_binary: String,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
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
    /// Whether both kinds of phase ran (at least two CPUs allowed).
    pub fn multi_core(&self) -> bool {
        self.phases.iter().any(|p| p.cpus == Cpus::One) && self.phases.iter().any(|p| p.cpus == Cpus::All)
    }
    /// Median signing rate of the all-core enclave over the one-core enclave's.
    pub fn scaling(&self) -> f64 {
        self.of(Cpus::All, Phase::rate) / self.of(Cpus::One, Phase::rate)
    }
    /// Signatures per busy enclave core, all-core enclave over one-core enclave (medians):
    /// near 1 when the enclave's rate grows with the cores it actually gets — the generator
    /// shares this machine's cores, so the all-core enclave never gets all of them.
    pub fn per_core_efficiency(&self) -> f64 {
        let per_core = |p: &Phase| p.rate() / p.enclave_cores().max(1e-9);
        self.of(Cpus::All, per_core) / self.of(Cpus::One, per_core)
    }
    /// The machine's own: raw k256 on every core / on one thread.
    pub fn raw_scaling(&self) -> f64 {
        median(self.raw.iter().map(|r| r.all / r.one).collect())
    }
    /// One raw signature on one thread, µs: the median of every phase's yardstick.
    pub fn raw_signature_us(&self) -> f64 {
        median(self.phases.iter().map(|p| 1e6 / p.raw_one).collect())
    }
    /// The headline of item 2: the median enclave CPU per request of `cpus` phases over the
    /// run's median raw signature (steadier than any one phase's ratio: the yardstick moves
    /// more between measurements than the enclave's cost does).
    pub fn over_raw(&self, cpus: Cpus) -> f64 {
        self.of(cpus, Phase::enclave_us_per_request) / self.raw_signature_us()
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
        use serde_json::json;
        let phases: Vec<_> = self
            .phases
            .iter()
            .map(|p| {
                json!({
                    "round": p.round,
                    "enclave": match p.cpus { Cpus::One => "one", Cpus::All => "all" },
                    "signed": p.signed, "refused": p.refused, "errors": p.errors,
                    "first_problem": p.first_problem,
                    "seconds": round(p.elapsed.as_secs_f64(), 3),
                    "signed_per_sec": round(p.rate(), 1),
                    "enclave_cpu_us_per_request": round(p.enclave_us_per_request(), 2),
                    "enclave_cores_used": round(p.enclave_cores(), 3),
                    "generator_cpu_us_per_request": round(p.generator_us_per_request(), 2),
                    "raw_k256_one_thread_per_sec_around": round(p.raw_one, 1),
                    "enclave_cpu_per_request_over_raw_signature": round(p.over_raw(), 3),
                })
            })
            .collect();
        let (ok, refused, errors) = self.totals();
        let multi = self.multi_core();
        json!({
            "enclave_binary": self.enclave_binary,
            "sessions": self.args.sessions,
            "connections": self.args.connections,
            "pipeline": self.args.pipeline,
            "requests_per_phase": self.args.requests,
            "rounds": self.args.rounds,
            "cpus_allowed": self.cpus,
            "sessions_created_per_sec": round(self.granted as f64 / self.grant_time.as_secs_f64().max(1e-9), 1),
            "signed": ok, "refused": refused, "errors": errors,
            "phases": phases,
            "raw_k256": self.raw.iter().map(|r| json!({"one_thread_per_sec": round(r.one, 1), "all_cores_per_sec": round(r.all, 1)})).collect::<Vec<_>>(),
            "median": {
                "signed_per_sec_one_core": multi.then(|| round(self.of(Cpus::One, Phase::rate), 1)),
                "signed_per_sec_all_cores": round(self.of(Cpus::All, Phase::rate), 1),
                "enclave_cpu_us_per_request_one_core": multi.then(|| round(self.of(Cpus::One, Phase::enclave_us_per_request), 2)),
                "enclave_cpu_us_per_request_all_cores": round(self.of(Cpus::All, Phase::enclave_us_per_request), 2),
                "raw_signature_us": round(self.raw_signature_us(), 2),
            },
            "ratios": {
                "enclave_all_cores_over_one_core": multi.then(|| round(self.scaling(), 3)),
                "enclave_signatures_per_busy_core_all_over_one": multi.then(|| round(self.per_core_efficiency(), 3)),
                "raw_k256_all_cores_over_one_thread": round(self.raw_scaling(), 3),
                "enclave_cpu_per_request_over_raw_signature_one_core": multi.then(|| round(self.over_raw(Cpus::One), 3)),
                "enclave_cpu_per_request_over_raw_signature_all_cores": round(self.over_raw(Cpus::All), 3),
            },
        })
    }

    pub fn human(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "bridle-enclave-bench: {} sessions per enclave, {} connections x {} in flight, {} requests per phase, CPUs {:?}",
            self.args.sessions, self.args.connections, self.args.pipeline, self.args.requests, self.cpus
        );
        let _ = writeln!(s, "  enclave binary: {}", self.enclave_binary);
        let _ = writeln!(
            s,
            "  sessions created: {:.0} /s ({} in {:.2} s)",
            self.granted as f64 / self.grant_time.as_secs_f64().max(1e-9),
            self.granted,
            self.grant_time.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  round  enclave    signed/s   enclave CPU/request  enclave cores  generator CPU/request  raw signature around  enclave/raw"
        );
        for p in &self.phases {
            let _ = writeln!(
                s,
                "  {:>5}  {:<9}  {:>8.0}   {:>8.1} µs          {:>5.2}          {:>6.1} µs              {:>6.1} µs         {:>5.2}",
                p.round,
                p.cpus.name(),
                p.rate(),
                p.enclave_us_per_request(),
                p.enclave_cores(),
                p.generator_us_per_request(),
                1e6 / p.raw_one,
                p.over_raw()
            );
            if let Some(why) = &p.first_problem {
                let _ = writeln!(s, "         first refusal or error: {why}");
            }
        }
        for (i, r) in self.raw.iter().enumerate() {
            let _ = writeln!(
                s,
                "  raw k256, round {}: {:.0} /s on 1 thread, {:.0} /s on {} CPUs",
                i + 1,
                r.one,
                r.all,
                self.cpus.len()
            );
        }
        let (ok, refused, errors) = self.totals();
        let _ = writeln!(s, "  outcomes: {ok} signed, {refused} refused, {errors} errors");
        if self.multi_core() {
            let _ = writeln!(
                s,
                "  multi-core (item 3): enclave on all cores / one core = {:.2}x  (raw k256, same runs: {:.2}x); \
                 signatures per busy enclave core, all / one: {:.2}",
                self.scaling(),
                self.raw_scaling(),
                self.per_core_efficiency()
            );
            let _ = writeln!(
                s,
                "  enclave CPU per request / raw signature (item 2; medians): {:.2} on one core, {:.2} on all cores  (raw signature {:.1} µs)",
                self.over_raw(Cpus::One),
                self.over_raw(Cpus::All),
                self.raw_signature_us()
            );
        } else {
            let _ = writeln!(s, "  multi-core (item 3): not measured — this process may use one CPU only");
            let _ = writeln!(
                s,
                "  enclave CPU per request / raw signature (item 2; medians): {:.2}  (raw signature {:.1} µs)",
                self.over_raw(Cpus::All),
                self.raw_signature_us()
            );
        }
        s
    }
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
            first_problem: None,
            elapsed: Duration::from_secs_f64(secs),
            enclave_cpu: cpu,
            generator_cpu: 0.1,
            raw_one,
        }
    }

    fn report(phases: Vec<Phase>) -> SocketReport {
        SocketReport {
            args: SocketArgs::default(),
            cpus: vec![0, 1],
            phases,
            raw: vec![Raw { one: 20_000.0, all: 38_000.0 }],
            grant_time: Duration::from_secs(1),
            granted: 128,
            enclave_binary: "bridle-enclave".into(),
        }
    }

    #[test]
    fn ratios_are_medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        // 10 000 signed in 1 s on one core with 0.6 s of CPU: 60 µs each; raw 20 000 /s is
        // 50 µs, so 1.2 signatures.
        let one = phase(Cpus::One, 10_000, 1.0, 0.6, 20_000.0);
        assert!((one.enclave_us_per_request() - 60.0).abs() < 1e-9);
        assert!((one.over_raw() - 1.2).abs() < 1e-9);
        // 18 000 in 1 s with 1.08 s: 60 µs; the run's median raw signature is 45 µs (the
        // median of 50 and 40), so both ratios are 60 / 45.
        let all = phase(Cpus::All, 18_000, 1.0, 1.08, 25_000.0);
        let r = report(vec![one, all]);
        assert!(r.multi_core());
        assert!((r.scaling() - 1.8).abs() < 1e-9);
        // One core: 10 000 /s on 0.6 busy cores; all: 18 000 /s on 1.08 — the same per core.
        assert!((r.per_core_efficiency() - 1.0).abs() < 1e-9);
        assert!((r.raw_scaling() - 1.9).abs() < 1e-9);
        assert!((r.raw_signature_us() - 45.0).abs() < 1e-9);
        assert!((r.over_raw(Cpus::One) - 60.0 / 45.0).abs() < 1e-9);
        assert_eq!(r.exit_code(), 0);
        assert_eq!(r.to_json()["ratios"]["enclave_all_cores_over_one_core"], 1.8);
        assert!(r.human().contains("1.80x"));
    }

    #[test]
    fn one_cpu_reports_no_scaling_and_problems_fail_the_run() {
        let mut p = phase(Cpus::All, 100, 1.0, 0.006, 20_000.0);
        p.refused = 1;
        p.first_problem = Some("replayed: stamp time is more than 60 s from the session time".into());
        let r = report(vec![p]);
        assert!(!r.multi_core());
        assert!(r.to_json()["ratios"]["enclave_all_cores_over_one_core"].is_null());
        assert!(r.human().contains("not measured"));
        assert!(r.human().contains("stamp time"));
        assert_eq!(r.exit_code(), 1);
    }
}
