//! Periods (RULES §3), written from scratch: fixed-length periods from the anchor, and
//! calendar months from the anchor with the day of month clamped and the time of day kept.

use bridle_common::period::Period;

const DAY: u64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Start (unix seconds) of calendar-month period `k` of a session anchored at `anchor`.
pub fn month_start(anchor: u64, k: u64) -> u64 {
    let (y, m, d) = civil_from_days((anchor / DAY) as i64);
    let sod = anchor % DAY;
    // Months counted from year 0: (y * 12 + m - 1) + k.
    let total = y * 12 + (m as i64 - 1) + k.min(1 << 40) as i64;
    let ny = total.div_euclid(12);
    let nm = (total.rem_euclid(12) + 1) as u32;
    let nd = d.min(days_in_month(ny, nm));
    let days = days_from_civil(ny, nm, nd);
    if days < 0 {
        return 0;
    }
    (days as u64).saturating_mul(DAY).saturating_add(sod)
}

/// The index of the period of `period` that contains time `t` (times before the anchor
/// are in period 0; a session has one period).
pub fn period_index(period: Period, anchor: u64, t: u64) -> u64 {
    if t <= anchor {
        return 0;
    }
    let e = t - anchor;
    match period {
        Period::Minute => e / 60,
        Period::Hour => e / 3600,
        Period::Day => e / DAY,
        Period::Week => e / (7 * DAY),
        Period::Session => 0,
        Period::Month => {
            let (ay, am, _) = civil_from_days((anchor / DAY) as i64);
            let (ty, tm, _) = civil_from_days((t / DAY) as i64);
            let guess = (ty - ay) * 12 + (tm as i64 - am as i64);
            // The true index is guess - 1, guess or guess + 1: take the largest that has started.
            let guess = guess.max(0) as u64;
            [guess.saturating_add(1), guess, guess.saturating_sub(1)]
                .into_iter()
                .find(|&k| month_start(anchor, k) <= t)
                .unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for z in [-800_000i64, -1, 0, 1, 10_957, 19_753, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn months_clamp_and_keep_time_of_day() {
        // 2024-01-31 10:00:00 UTC
        let a = days_from_civil(2024, 1, 31) as u64 * DAY + 36_000;
        let s1 = month_start(a, 1);
        assert_eq!(civil_from_days((s1 / DAY) as i64), (2024, 2, 29));
        assert_eq!(s1 % DAY, 36_000);
        assert_eq!(civil_from_days((month_start(a, 2) / DAY) as i64), (2024, 3, 31));
        assert_eq!(civil_from_days((month_start(a, 3) / DAY) as i64), (2024, 4, 30));
        assert_eq!(civil_from_days((month_start(a, 13) / DAY) as i64), (2025, 2, 28));
        assert_eq!(period_index(Period::Month, a, s1 - 1), 0);
        assert_eq!(period_index(Period::Month, a, s1), 1);
        assert_eq!(period_index(Period::Month, a, month_start(a, 2) - 1), 1);
        assert_eq!(period_index(Period::Month, a, month_start(a, 2)), 2);
        assert_eq!(period_index(Period::Month, a, a - 5), 0);
    }
}
