//! Exact amounts and durations written for people: "100 USDC", "0.05 ETH", "30 gwei",
//! "1 day". Parsed into integers; no floating point anywhere.

use alloy_primitives::U256;
use std::fmt;

/// Errors parsing an amount or a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("`{text}` has {digits} decimal places but {unit} has {decimals}")]
    TooPrecise { text: String, unit: String, digits: usize, decimals: u8 },
    #[error("`{0}` is out of range")]
    Overflow(String),
    #[error("unknown unit `{unit}` in `{text}`{hint}")]
    UnknownUnit { text: String, unit: String, hint: String },
    #[error("`{text}`: expected unit {expected}, found {found}")]
    WrongUnit { text: String, expected: String, found: String },
    #[error("`{0}` is not a duration (examples: \"90s\", \"30 minutes\", \"24h\", \"1 day\", \"1 week\")")]
    BadDuration(String),
}

/// Parse a non-negative decimal string with at most `decimals` fraction digits into an
/// integer scaled by 10^decimals. `"1.5"` with 6 decimals is 1_500_000.
pub fn parse_decimal(text: &str, decimals: u8, unit: &str) -> Result<U256, UnitError> {
    let t = text.trim().replace('_', "");
    if t.is_empty() {
        return Err(UnitError::Empty);
    }
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(UnitError::NotANumber(text.to_string()));
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnitError::NotANumber(text.to_string()));
    }
    if frac.len() > decimals as usize {
        // Trailing zeros beyond the precision are harmless.
        let (keep, rest) = frac.split_at(decimals as usize);
        if rest.bytes().any(|b| b != b'0') {
            return Err(UnitError::TooPrecise {
                text: text.to_string(),
                unit: unit.to_string(),
                digits: frac.len(),
                decimals,
            });
        }
        return parse_decimal(&format!("{int}.{keep}"), decimals, unit);
    }
    let overflow = || UnitError::Overflow(text.to_string());
    let scale = U256::from(10u8).checked_pow(U256::from(decimals)).ok_or_else(overflow)?;
    let int_v = if int.is_empty() { U256::ZERO } else { U256::from_str_radix(int, 10).map_err(|_| overflow())? };
    let mut frac_v = U256::ZERO;
    if !frac.is_empty() {
        let padded = format!("{frac:0<width$}", width = decimals as usize);
        frac_v = U256::from_str_radix(&padded, 10).map_err(|_| overflow())?;
    }
    int_v.checked_mul(scale).and_then(|v| v.checked_add(frac_v)).ok_or_else(overflow)
}

/// Format an integer amount with `decimals` places, trimming trailing zeros:
/// 1_500_000 with 6 decimals is "1.5".
pub fn format_decimal(v: U256, decimals: u8) -> String {
    if decimals == 0 {
        return v.to_string();
    }
    let s = v.to_string();
    let d = decimals as usize;
    let (int, frac) = if s.len() > d {
        (s[..s.len() - d].to_string(), s[s.len() - d..].to_string())
    } else {
        ("0".to_string(), format!("{s:0>d$}"))
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    }
}

/// Split "100 USDC" / "100USDC" into ("100", "USDC").
pub fn split_amount(text: &str) -> Result<(&str, &str), UnitError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(UnitError::Empty);
    }
    let idx =
        t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).ok_or_else(|| UnitError::UnknownUnit {
            text: text.to_string(),
            unit: String::new(),
            hint: " (write a unit, e.g. \"100 USDC\")".into(),
        })?;
    let (num, unit) = t.split_at(idx);
    if num.trim().is_empty() {
        return Err(UnitError::NotANumber(text.to_string()));
    }
    Ok((num.trim(), unit.trim()))
}

/// Decimals of the native units: "ETH"/"ether" (18), "gwei" (9), "wei" (0).
pub fn native_unit_decimals(unit: &str) -> Option<u8> {
    match unit.to_ascii_lowercase().as_str() {
        "eth" | "ether" => Some(18),
        "gwei" => Some(9),
        "wei" => Some(0),
        _ => None,
    }
}

/// Parse a native amount ("0.05 ETH", "30 gwei", "1000 wei") into wei.
pub fn parse_native(text: &str) -> Result<U256, UnitError> {
    let (num, unit) = split_amount(text)?;
    let decimals = native_unit_decimals(unit).ok_or_else(|| UnitError::UnknownUnit {
        text: text.to_string(),
        unit: unit.to_string(),
        hint: " (native amounts use ETH, gwei or wei)".into(),
    })?;
    parse_decimal(num, decimals, unit)
}

/// Format wei for people: ETH with up to 18 places.
pub fn format_native(wei: U256) -> String {
    format!("{} ETH", format_decimal(wei, 18))
}

/// Parse a duration into seconds: "90s", "30 minutes", "24h", "1 day", "2 weeks".
/// A bare integer is seconds.
pub fn parse_duration(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadDuration(text.to_string());
    let t = text.trim();
    let idx = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(idx);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Format seconds for people.
pub fn format_duration(secs: u64) -> String {
    for (unit, len) in [("week", 604_800), ("day", 86_400), ("hour", 3600), ("minute", 60)] {
        if secs >= len && secs.is_multiple_of(len) {
            let n = secs / len;
            return format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
        }
    }
    format!("{secs} s")
}

/// An amount with its unit, for messages.
pub struct Amount<'a> {
    pub value: U256,
    pub decimals: u8,
    pub symbol: &'a str,
}

impl fmt::Display for Amount<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_decimal(self.value, self.decimals), self.symbol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_exact() {
        assert_eq!(parse_decimal("100", 6, "USDC").unwrap(), U256::from(100_000_000u64));
        assert_eq!(parse_decimal("1.5", 6, "USDC").unwrap(), U256::from(1_500_000u64));
        assert_eq!(parse_decimal("0.000001", 6, "USDC").unwrap(), U256::from(1u64));
        assert_eq!(parse_decimal(".5", 1, "X").unwrap(), U256::from(5u64));
        assert_eq!(parse_decimal("1.50000000", 6, "USDC").unwrap(), U256::from(1_500_000u64));
        assert!(matches!(parse_decimal("0.0000001", 6, "USDC"), Err(UnitError::TooPrecise { .. })));
        assert!(matches!(parse_decimal("1e6", 6, "USDC"), Err(UnitError::NotANumber(_))));
        assert!(matches!(parse_decimal("-1", 6, "USDC"), Err(UnitError::NotANumber(_))));
        assert!(matches!(parse_decimal(".", 6, "USDC"), Err(UnitError::NotANumber(_))));
        let huge = "9".repeat(90);
        assert!(matches!(parse_decimal(&huge, 0, "X"), Err(UnitError::Overflow(_))));
    }

    #[test]
    fn native_units() {
        assert_eq!(parse_native("0.05 ETH").unwrap(), U256::from(50_000_000_000_000_000u64));
        assert_eq!(parse_native("30 gwei").unwrap(), U256::from(30_000_000_000u64));
        assert_eq!(parse_native("7wei").unwrap(), U256::from(7u64));
        assert!(parse_native("1 USDC").is_err());
        assert!(parse_native("ETH").is_err());
        assert_eq!(format_native(U256::from(50_000_000_000_000_000u64)), "0.05 ETH");
    }

    #[test]
    fn formatting_round_trips() {
        for (s, d) in [("80", 6), ("0.5", 6), ("123.456789", 6), ("0", 18), ("1", 0)] {
            let v = parse_decimal(s, d, "X").unwrap();
            assert_eq!(format_decimal(v, d), s);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1 day").unwrap(), 86_400);
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("2 weeks").unwrap(), 1_209_600);
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("day").is_err());
        assert!(parse_duration("99999999999999999999 days").is_err());
        assert_eq!(format_duration(86_400), "1 day");
        assert_eq!(format_duration(7200), "2 hours");
    }
}
