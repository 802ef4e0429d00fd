// ---------------------------------------------------------------- my calendar (RULES §3)

/// Days in month `m` (1..=12) of year `y`.
fn mdays(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day, second of day) of unix time `t`, by walking from 1970 (t ≥ 0).
fn date(t: u64) -> (i64, i64, i64, u64) {
    let mut days = (t / 86_400) as i64;
    let mut y = 1970;
    loop {
        let n = if mdays(y, 2) == 29 { 366 } else { 365 };
        if days < n {
            break;
        }
        days -= n;
        y += 1;
    }
    let mut m = 1;
    while days >= mdays(y, m) {
        days -= mdays(y, m);
        m += 1;
    }
    (y, m, days + 1, t % 86_400)
}

fn unix(y: i64, m: i64, d: i64, sod: u64) -> u64 {
    let mut days = 0i64;
    for yy in 1970..y {
        days += if mdays(yy, 2) == 29 { 366 } else { 365 };
    }
    for mm in 1..m {
        days += mdays(y, mm);
    }
    days += d - 1;
    days as u64 * 86_400 + sod
}

/// Start of month period `k` from `anchor`: the anchor plus `k` calendar months, the day
/// clamped to the month's length, the time of day kept.
fn month_start(anchor: u64, k: u64) -> u64 {
    let (y, m, d, sod) = date(anchor);
    let months = (m - 1) + k as i64;
    let (ny, nm) = (y + months / 12, months % 12 + 1);
    unix(ny, nm, d.min(mdays(ny, nm)), sod)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum P {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Session,
}
const ALL_P: [P; 6] = [P::Minute, P::Hour, P::Day, P::Week, P::Month, P::Session];

impl P {
    fn name(self) -> &'static str {
        match self {
            P::Minute => "minute",
            P::Hour => "hour",
            P::Day => "day",
            P::Week => "week",
            P::Month => "month",
            P::Session => "session",
        }
    }
    fn engine(self) -> Period {
        match self {
            P::Minute => Period::Minute,
            P::Hour => Period::Hour,
            P::Day => Period::Day,
            P::Week => Period::Week,
            P::Month => Period::Month,
            P::Session => Period::Session,
        }
    }
    /// The index of the period holding `t` (period 0 before the anchor).
    fn index(self, anchor: u64, t: u64) -> u64 {
        if t < anchor {
            return 0;
        }
        let e = t - anchor;
        match self {
            P::Minute => e / 60,
            P::Hour => e / 3600,
            P::Day => e / 86_400,
            P::Week => e / 604_800,
            P::Session => 0,
            P::Month => {
                let mut k = 0;
                while month_start(anchor, k + 1) <= t {
                    k += 1;
                }
                k
            }
        }
    }
    /// The start of the period after the one holding `t`.
    fn next_start(self, anchor: u64, t: u64) -> u64 {
        let k = self.index(anchor, t) + 1;
        match self {
            P::Minute => anchor + 60 * k,
            P::Hour => anchor + 3600 * k,
            P::Day => anchor + 86_400 * k,
            P::Week => anchor + 604_800 * k,
            P::Month => month_start(anchor, k),
            P::Session => t + 1,
        }
    }
}

