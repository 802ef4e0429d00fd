//! Hand-rolled Prometheus metrics (text exposition format 0.0.4).
//!
//! Few series, cheap updates: counters keyed by their label values behind a mutex, one
//! histogram per enclave call name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds: 100 µs … 1 s.
pub const ROUNDTRIP_BUCKETS: [f64; 13] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; ROUNDTRIP_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let i = ROUNDTRIP_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(ROUNDTRIP_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += secs;
    }
}

/// The host's metrics.
#[derive(Default)]
pub struct Metrics {
    /// (call, outcome, code) → count.
    requests: Mutex<BTreeMap<(String, String, String), u64>>,
    /// call → histogram of enclave round trips.
    roundtrip: Mutex<BTreeMap<String, Histogram>>,
    /// (route, status) → count.
    http: Mutex<BTreeMap<(String, u16), u64>>,
    /// -1 unknown (never tried), 0 down, 1 up.
    enclave_up: AtomicI64,
    events_dropped: AtomicU64,
    events_pruned: AtomicU64,
    audit_pruned: AtomicU64,
    sessions_forgotten: AtomicU64,
    session_busy_retries: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics { enclave_up: AtomicI64::new(0), ..Default::default() }
    }

    /// One relayed enclave call: `outcome` is `ok`, `denied` or `error`; `code` the bridle
    /// code (empty when ok) or the transport failure kind.
    pub fn record_request(&self, call: &str, outcome: &str, code: &str) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((call.to_string(), outcome.to_string(), code.to_string())).or_insert(0) += 1;
    }

    pub fn observe_roundtrip(&self, call: &str, d: Duration) {
        let mut m = self.roundtrip.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(call.to_string()).or_default().observe(d.as_secs_f64());
    }

    pub fn record_http(&self, route: &str, status: u16) {
        let mut m = self.http.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route.to_string(), status)).or_insert(0) += 1;
    }

    pub fn set_enclave_up(&self, up: bool) {
        self.enclave_up.store(up as i64, Ordering::Relaxed);
    }

    pub fn enclave_up(&self) -> bool {
        self.enclave_up.load(Ordering::Relaxed) == 1
    }

    pub fn event_dropped(&self) {
        self.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Events deleted past their retention.
    pub fn events_pruned(&self, n: u64) {
        self.events_pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// Audit entries deleted past the audit retention ([`crate::audit_retention`]).
    pub fn audit_pruned(&self, n: u64) {
        self.audit_pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// Sessions forgotten past their retention ([`crate::retention`]).
    pub fn sessions_forgotten(&self, n: u64) {
        self.sessions_forgotten.fetch_add(n, Ordering::Relaxed);
    }

    /// A signing request answered `enclave.session_busy` is asked again.
    pub fn session_busy_retried(&self) {
        self.session_busy_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);

        out.push_str("# HELP bridle_requests_total Enclave calls relayed, by call, outcome and code.\n");
        out.push_str("# TYPE bridle_requests_total counter\n");
        {
            let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            for ((call, outcome, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "bridle_requests_total{{call=\"{}\",outcome=\"{}\",code=\"{}\"}} {n}",
                    esc(call),
                    esc(outcome),
                    esc(code)
                );
            }
        }

        out.push_str(
            "# HELP bridle_enclave_roundtrip_seconds Time from writing a request frame to reading its response.\n",
        );
        out.push_str("# TYPE bridle_enclave_roundtrip_seconds histogram\n");
        {
            let m = self.roundtrip.lock().unwrap_or_else(|e| e.into_inner());
            for (call, h) in m.iter() {
                let call = esc(call);
                let mut cumulative = 0u64;
                for (i, le) in ROUNDTRIP_BUCKETS.iter().enumerate() {
                    cumulative += h.buckets[i];
                    let _ = writeln!(
                        out,
                        "bridle_enclave_roundtrip_seconds_bucket{{call=\"{call}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                cumulative += h.buckets[ROUNDTRIP_BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "bridle_enclave_roundtrip_seconds_bucket{{call=\"{call}\",le=\"+Inf\"}} {cumulative}"
                );
                let _ = writeln!(out, "bridle_enclave_roundtrip_seconds_sum{{call=\"{call}\"}} {}", h.sum);
                let _ = writeln!(out, "bridle_enclave_roundtrip_seconds_count{{call=\"{call}\"}} {}", h.count);
            }
        }

        out.push_str("# HELP bridle_enclave_up Whether the last exchange with the enclave succeeded.\n");
        out.push_str("# TYPE bridle_enclave_up gauge\n");
        let _ = writeln!(out, "bridle_enclave_up {}", self.enclave_up.load(Ordering::Relaxed).max(0));

        out.push_str("# HELP bridle_http_requests_total HTTP requests served, by route and status.\n");
        out.push_str("# TYPE bridle_http_requests_total counter\n");
        {
            let m = self.http.lock().unwrap_or_else(|e| e.into_inner());
            for ((route, status), n) in m.iter() {
                let _ = writeln!(out, "bridle_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}", esc(route));
            }
        }

        out.push_str("# HELP bridle_events_dropped_total Events not stored: the writer queue was full, or refusals past their rows per second.\n");
        out.push_str("# TYPE bridle_events_dropped_total counter\n");
        let _ = writeln!(out, "bridle_events_dropped_total {}", self.events_dropped.load(Ordering::Relaxed));

        out.push_str("# HELP bridle_events_pruned_total Events deleted past their retention (events_max_age_days, events_max_rows).\n");
        out.push_str("# TYPE bridle_events_pruned_total counter\n");
        let _ = writeln!(out, "bridle_events_pruned_total {}", self.events_pruned.load(Ordering::Relaxed));

        out.push_str("# HELP bridle_audit_entries_pruned_total Audit entries deleted from the host's copy past audit_retention_days (the oldest of each enclave's chain).\n");
        out.push_str("# TYPE bridle_audit_entries_pruned_total counter\n");
        let _ = writeln!(out, "bridle_audit_entries_pruned_total {}", self.audit_pruned.load(Ordering::Relaxed));

        out.push_str("# HELP bridle_sessions_forgotten_total Sessions deleted (with their policies and sweeps) past their retention (session_retention_days), once the enclave no longer held them.\n");
        out.push_str("# TYPE bridle_sessions_forgotten_total counter\n");
        let _ = writeln!(out, "bridle_sessions_forgotten_total {}", self.sessions_forgotten.load(Ordering::Relaxed));

        out.push_str(
            "# HELP bridle_enclave_session_busy_retries_total Tries of signing requests sent again because their session was busy with its owner's calls.\n",
        );
        out.push_str("# TYPE bridle_enclave_session_busy_retries_total counter\n");
        let _ = writeln!(
            out,
            "bridle_enclave_session_busy_retries_total {}",
            self.session_busy_retries.load(Ordering::Relaxed)
        );
        out
    }
}

/// Escape a label value (backslash, quote, newline).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histogram() {
        let m = Metrics::new();
        m.record_request("sign_if_allowed", "denied", "spend_cap");
        m.record_request("sign_if_allowed", "denied", "spend_cap");
        m.observe_roundtrip("status", Duration::from_micros(50));
        m.observe_roundtrip("status", Duration::from_millis(3));
        m.observe_roundtrip("status", Duration::from_secs(2));
        m.record_http("/health", 200);
        m.set_enclave_up(true);
        m.sessions_forgotten(3);
        m.audit_pruned(5);
        let t = m.render();
        assert!(t.contains("bridle_requests_total{call=\"sign_if_allowed\",outcome=\"denied\",code=\"spend_cap\"} 2"));
        assert!(t.contains("bridle_enclave_roundtrip_seconds_bucket{call=\"status\",le=\"0.0001\"} 1"));
        assert!(t.contains("bridle_enclave_roundtrip_seconds_bucket{call=\"status\",le=\"0.005\"} 2"));
        assert!(t.contains("bridle_enclave_roundtrip_seconds_bucket{call=\"status\",le=\"1\"} 2"));
        assert!(t.contains("bridle_enclave_roundtrip_seconds_bucket{call=\"status\",le=\"+Inf\"} 3"));
        assert!(t.contains("bridle_enclave_roundtrip_seconds_count{call=\"status\"} 3"));
        assert!(t.contains("bridle_enclave_up 1"));
        assert!(t.contains("# TYPE bridle_sessions_forgotten_total counter\nbridle_sessions_forgotten_total 3\n"));
        assert!(t.contains("# TYPE bridle_audit_entries_pruned_total counter\nbridle_audit_entries_pruned_total 5\n"));
        assert!(t.contains("bridle_http_requests_total{route=\"/health\",status=\"200\"} 1"));
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
