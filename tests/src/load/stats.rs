//! Outcome counts and latency percentiles.

use std::collections::BTreeMap;

/// Distinct reasons kept per class; the rest are counted under "other".
const MAX_REASONS: usize = 32;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Signed, the digest is ours (and the signature recovers to the session when checked).
    Ok,
    /// A policy refusal (HTTP 403), by error code.
    Refused(String),
    /// Anything else: transport failure, timeout, another HTTP status, a bad reply.
    Error(String),
}

/// Counts by outcome, with reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    pub refused_by: BTreeMap<String, u64>,
    pub errors_by: BTreeMap<String, u64>,
}

fn bump(m: &mut BTreeMap<String, u64>, reason: &str) {
    let key = if m.contains_key(reason) || m.len() < MAX_REASONS { reason } else { "other" };
    *m.entry(key.to_string()).or_insert(0) += 1;
}

impl Tally {
    pub fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Refused(r) => {
                self.refused += 1;
                bump(&mut self.refused_by, r);
            }
            Outcome::Error(r) => {
                self.errors += 1;
                bump(&mut self.errors_by, r);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.refused + self.errors
    }
}

/// Latency summary, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Nearest-rank percentile of a sorted slice (p in 0..=100).
pub fn nearest_rank(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Percentiles of latencies in microseconds (sorted here).
pub fn percentiles(us: &mut [u32]) -> Option<Percentiles> {
    if us.is_empty() {
        return None;
    }
    us.sort_unstable();
    let ms = |v: u32| v as f64 / 1000.0;
    let sum: u64 = us.iter().map(|&v| v as u64).sum();
    Some(Percentiles {
        count: us.len(),
        mean: sum as f64 / us.len() as f64 / 1000.0,
        p50: ms(nearest_rank(us, 50.0)?),
        p90: ms(nearest_rank(us, 90.0)?),
        p99: ms(nearest_rank(us, 99.0)?),
        max: ms(*us.last()?),
    })
}

/// A duration as whole microseconds, saturating.
pub fn micros(d: std::time::Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// `x` rounded to `digits` decimals, as a JSON number (null when not finite).
pub fn round(x: f64, digits: i32) -> serde_json::Value {
    if !x.is_finite() {
        return serde_json::Value::Null;
    }
    let m = 10f64.powi(digits);
    serde_json::json!((x * m).round() / m)
}

impl Percentiles {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count,
            "mean": round(self.mean, 3),
            "p50": round(self.p50, 3),
            "p90": round(self.p90, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
        })
    }

    pub fn human(&self) -> String {
        format!(
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (mean {:.2} ms, {} requests)",
            self.p50, self.p90, self.p99, self.max, self.mean, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u32> = (1..=100).rev().map(|i| i * 1000).collect();
        let p = percentiles(&mut v).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.mean, 50.5);
        assert_eq!(nearest_rank(&[7], 0.0), Some(7));
        assert_eq!(nearest_rank(&[7], 100.0), Some(7));
        assert_eq!(nearest_rank(&[], 50.0), None);
        let mut one = vec![1500u32];
        assert_eq!(percentiles(&mut one).unwrap().p99, 1.5);
        assert!(percentiles(&mut []).is_none());
    }

    #[test]
    fn reasons_are_bounded() {
        let mut t = Tally::default();
        for i in 0..100 {
            t.add(&Outcome::Error(format!("e{i}")));
        }
        t.add(&Outcome::Error("e0".into()));
        t.add(&Outcome::Refused("limit".into()));
        t.add(&Outcome::Ok);
        assert_eq!((t.ok, t.refused, t.errors, t.total()), (1, 1, 101, 103));
        assert_eq!(t.errors_by.len(), MAX_REASONS + 1);
        assert_eq!(t.errors_by["e0"], 2);
        assert_eq!(t.errors_by["other"], 100 - MAX_REASONS as u64);
    }
}
