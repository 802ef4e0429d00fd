//! Spending periods anchored at the session's start (R-POL-4).
//!
//! Minute, hour, day and week periods are fixed lengths counted from the anchor. Month
//! periods are calendar months from the anchor: a session started on 31 January has
//! periods starting 31 January, 28 (or 29) February, 31 March, … — the day is clamped to
//! the month's length, and the time of day is kept.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A counting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    /// The whole session: never resets.
    Session,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "minute" | "min" => Period::Minute,
            "hour" | "h" => Period::Hour,
            "day" | "d" => Period::Day,
            "week" | "w" => Period::Week,
            "month" => Period::Month,
            "session" | "total" => Period::Session,
            _ => return None,
        })
    }

    fn fixed_len(self) -> Option<u64> {
        match self {
            Period::Minute => Some(60),
            Period::Hour => Some(3600),
            Period::Day => Some(86_400),
            Period::Week => Some(604_800),
            Period::Month | Period::Session => None,
        }
    }

    /// The index of the period that contains `now`, counted from `anchor` (index 0
    /// starts at the anchor). Times before the anchor fall in period 0.
    pub fn index(self, anchor: u64, now: u64) -> u64 {
        if now <= anchor {
            return 0;
        }
        match self {
            Period::Session => 0,
            Period::Month => {
                // Past where months saturate (a clock beyond i64 seconds included, where the
                // calendar difference below would turn negative): the last index.
                if now - anchor >= 28 * 86_400 * MAX_MONTHS && now >= add_months(anchor, MAX_MONTHS) {
                    return MAX_MONTHS;
                }
                let (ay, am, _) = civil_from_unix(anchor);
                let (ny, nm, _) = civil_from_unix(now);
                let diff = (ny - ay) * 12 + (nm as i64 - am as i64);
                // At most MAX_MONTHS, where `add_months` saturates: beyond it every month
                // would start at the same time, and the search below would never end (a
                // clock ≈ 83 000 years past the anchor; a review of 2026-12-04).
                let mut k = (diff.max(0) as u64).min(MAX_MONTHS);
                // The calendar difference can overshoot by one when `now` is earlier
                // in its month than the anchor.
                while k > 0 && add_months(anchor, k) > now {
                    k -= 1;
                }
                while k < MAX_MONTHS && add_months(anchor, k + 1) <= now {
                    k += 1;
                }
                k
            }
            p => (now - anchor) / p.fixed_len().unwrap_or(1),
        }
    }

    /// Start of period `index` (unix seconds).
    pub fn start(self, anchor: u64, index: u64) -> u64 {
        match self {
            Period::Session => anchor,
            Period::Month => add_months(anchor, index),
            p => anchor.saturating_add(index.saturating_mul(p.fixed_len().unwrap_or(0))),
        }
    }

    /// End (exclusive) of period `index`; `u64::MAX` for the session.
    pub fn end(self, anchor: u64, index: u64) -> u64 {
        match self {
            Period::Session => u64::MAX,
            _ => self.start(anchor, index.saturating_add(1)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Session => "session",
        })
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31). Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_unix(t: u64) -> (i64, u32, u32) {
    civil_from_days((t / 86_400) as i64)
}

/// Days in a month of a year.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Most calendar months [`add_months`] adds (≈ 83 000 years); a month's index stops there.
pub const MAX_MONTHS: u64 = 1_000_000;

/// `t` plus `k` calendar months, the day clamped to the target month's length and the
/// time of day kept. Saturates far in the future (at [`MAX_MONTHS`] months).
pub fn add_months(t: u64, k: u64) -> u64 {
    let (y, m, d) = civil_from_unix(t);
    let secs_of_day = t % 86_400;
    let total = (m as i64 - 1).saturating_add(k.min(MAX_MONTHS) as i64);
    let ny = y + total.div_euclid(12);
    let nm = (total.rem_euclid(12) + 1) as u32;
    let nd = d.min(days_in_month(ny, nm));
    let days = days_from_civil(ny, nm, nd);
    (days.max(0) as u64).saturating_mul(86_400).saturating_add(secs_of_day)
}

/// Parse an RFC 3339 UTC time ("2026-11-23T10:00:00Z") or unix seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let b = t.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y as i64, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y as i64, mo, d);
    if days < 0 {
        return None;
    }
    Some(days as u64 * 86_400 + h as u64 * 3600 + mi as u64 * 60 + s as u64)
}

/// Format unix seconds as RFC 3339 UTC.
pub fn format_time(t: u64) -> String {
    let (y, m, d) = civil_from_unix(t);
    let s = t % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> u64 {
        parse_time(s).unwrap()
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("2024-02-29T12:00:00Z"), 1_709_208_000);
        assert_eq!(format_time(1_709_208_000), "2024-02-29T12:00:00Z");
        for day in (-1000i64..60_000).step_by(37) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert!(parse_time("2023-02-29T00:00:00Z").is_none());
        assert!(parse_time("2024-13-01T00:00:00Z").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn fixed_periods_and_boundaries() {
        let a = t("2026-11-23T10:00:00Z");
        assert_eq!(Period::Day.index(a, a), 0);
        assert_eq!(Period::Day.index(a, a + 86_399), 0);
        assert_eq!(Period::Day.index(a, a + 86_400), 1);
        assert_eq!(Period::Hour.index(a, a + 3600 * 5 + 1), 5);
        assert_eq!(Period::Minute.index(a, a + 59), 0);
        assert_eq!(Period::Minute.index(a, a + 60), 1);
        assert_eq!(Period::Week.index(a, a + 604_799), 0);
        assert_eq!(Period::Week.index(a, a + 604_800), 1);
        assert_eq!(Period::Day.start(a, 2), a + 172_800);
        assert_eq!(Period::Session.index(a, a + 10_000_000), 0);
        assert_eq!(Period::Session.end(a, 0), u64::MAX);
        // Before the anchor: period 0.
        assert_eq!(Period::Day.index(a, a - 5), 0);
    }

    /// A clock past where months saturate (≈ 83 000 years after the anchor) ends the
    /// month's index at MAX_MONTHS instead of searching for ever.
    #[test]
    fn a_month_index_far_in_the_future_ends() {
        let a = t("2026-11-23T10:00:00Z");
        let far = add_months(a, MAX_MONTHS);
        for now in [far, far + 1, far.saturating_mul(2), u64::MAX / 2, u64::MAX] {
            assert_eq!(Period::Month.index(a, now), MAX_MONTHS, "{now}");
        }
        assert_eq!(Period::Month.index(a, add_months(a, 12)), 12);
    }

    #[test]
    fn month_lengths() {
        // Anchored on 31 January 2024 (leap year): Feb period starts on the 29th.
        let a = t("2024-01-31T08:00:00Z");
        assert_eq!(Period::Month.start(a, 1), t("2024-02-29T08:00:00Z"));
        assert_eq!(Period::Month.start(a, 2), t("2024-03-31T08:00:00Z"));
        assert_eq!(Period::Month.start(a, 3), t("2024-04-30T08:00:00Z"));
        assert_eq!(Period::Month.index(a, t("2024-02-29T07:59:59Z")), 0);
        assert_eq!(Period::Month.index(a, t("2024-02-29T08:00:00Z")), 1);
        assert_eq!(Period::Month.index(a, t("2024-03-31T07:59:59Z")), 1);
        assert_eq!(Period::Month.index(a, t("2024-03-31T08:00:00Z")), 2);
        // Non-leap year: February has 28 days.
        let b = t("2023-01-30T00:00:00Z");
        assert_eq!(Period::Month.start(b, 1), t("2023-02-28T00:00:00Z"));
        assert_eq!(Period::Month.index(b, t("2023-02-27T23:59:59Z")), 0);
        assert_eq!(Period::Month.index(b, t("2023-02-28T00:00:00Z")), 1);
        // Across a year end.
        let c = t("2026-12-15T00:00:00Z");
        assert_eq!(Period::Month.start(c, 1), t("2027-01-15T00:00:00Z"));
        assert_eq!(Period::Month.index(c, t("2027-01-14T23:59:59Z")), 0);
        assert_eq!(Period::Month.index(c, t("2027-06-20T00:00:00Z")), 6);
        // A month period is 28..=31 days long.
        for k in 0..40 {
            let len = Period::Month.end(a, k) - Period::Month.start(a, k);
            assert!((28 * 86_400..=31 * 86_400).contains(&len), "k={k} len={len}");
        }
    }

    #[test]
    fn month_index_is_consistent_with_start() {
        let a = t("2025-03-31T23:30:00Z");
        let mut now = a;
        while now < a + 400 * 86_400 {
            let k = Period::Month.index(a, now);
            assert!(Period::Month.start(a, k) <= now && now < Period::Month.end(a, k), "now={now}");
            now += 3 * 3600 + 17;
        }
    }
}
