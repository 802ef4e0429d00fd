//! What carries over into an updated policy (RULES.md §3, §7): the ledger belongs to the
//! session, so every rule of the new policy starts from what the session already spent in
//! its current period. Shown to the owner before they sign the update, from the figures the
//! enclave signed in the session's status.
//!
//! The status reports the spend of the *current* policy's rules. A new rule over the same
//! asset and period reads exactly that figure; over a longer period that contains a known
//! one (a week containing the current day) at least it; over a shorter one contained in a
//! known one at most it. Anything else is not in the status — and is counted all the same.

use alloy_primitives::{Address, U256};
use bridle_common::period::{format_time, Period};
use bridle_common::policy::compile::AssetRef;
use bridle_common::policy::doc::Asset;
use bridle_common::policy::{CompiledPolicy, Policy};
use bridle_common::protocol::SessionStatus;
use bridle_common::units::format_decimal;

/// What a ledger figure counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meter {
    Native,
    Token(Address),
    /// A token known only by its symbol (the current policy document was not available).
    Symbol(String),
    Gas,
}

/// A figure the enclave signed: `spent` of `meter` in the current `period`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub meter: Meter,
    pub period: Period,
    pub spent: U256,
    pub rule: String,
}

fn token_meter(p: &Policy, sym: &str) -> Meter {
    match p.tokens.iter().find(|t| t.symbol == sym) {
        Some(t) => Meter::Token(t.address),
        None => Meter::Symbol(sym.to_string()),
    }
}

fn asset_meter(p: &Policy, a: &Asset) -> Meter {
    match a {
        Asset::Native => Meter::Native,
        Asset::Token(s) => token_meter(p, s),
    }
}

/// The figures of a signed status, tied to assets through the current policy `old` (whose
/// hash the caller checked against the status), or by the symbols the status names.
pub fn known(ss: &SessionStatus, old: Option<&Policy>) -> Vec<Known> {
    let index =
        |rule: &str, prefix: &str| -> Option<usize> { rule.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok() };
    let mut out = Vec::new();
    for c in &ss.caps {
        let (meter, period) = if let Some(i) = index(&c.rule, "limits[") {
            match old.and_then(|p| p.limits.get(i).map(|l| (asset_meter(p, &l.asset), l.period))) {
                Some(x) => x,
                None => {
                    let Some(per) = c.what.rsplit(" per ").next().and_then(Period::parse) else { continue };
                    (symbol_meter(&c.symbol), per)
                }
            }
        } else if let Some(i) = index(&c.rule, "streams[") {
            match old.and_then(|p| p.streams.get(i).map(|s| asset_meter(p, &s.asset))) {
                Some(m) => (m, Period::Session),
                None => (symbol_meter(&c.symbol), Period::Session),
            }
        } else if let Some(i) = index(&c.rule, "gas.cost_limits[") {
            match old.and_then(|p| p.gas.cost_limits.get(i).map(|g| g.period)) {
                Some(per) => (Meter::Gas, per),
                None => continue,
            }
        } else {
            continue;
        };
        out.push(Known { meter, period, spent: c.spent, rule: c.rule.clone() });
    }
    out
}

fn symbol_meter(sym: &str) -> Meter {
    if sym == "ETH" {
        Meter::Native
    } else {
        Meter::Symbol(sym.to_string())
    }
}

/// Whether every `inner` period of the session lies within one `outer` period (both counted
/// from the same anchor): minute ⊂ hour ⊂ day ⊂ week, day ⊂ month, anything ⊂ session.
pub fn contains(outer: Period, inner: Period) -> bool {
    use Period::*;
    let rank = |p: Period| match p {
        Minute => 0,
        Hour => 1,
        Day => 2,
        Week => 3,
        _ => 9,
    };
    outer == inner
        || outer == Session
        || (rank(outer) <= 3 && rank(inner) <= rank(outer))
        || (outer == Month && rank(inner) <= 2)
}

/// What the session already spent, for one rule of the new policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    Exact(U256),
    Between { at_least: Option<U256>, at_most: Option<U256> },
    Unknown,
}

fn same(a: &Meter, b: &Meter) -> bool {
    a == b
}

/// The carry-over for a rule metering `meter` per `period`.
pub fn carried(known: &[Known], meter: &Meter, period: Period) -> Carried {
    let mine: Vec<&Known> = known.iter().filter(|k| same(&k.meter, meter)).collect();
    if let Some(k) = mine.iter().find(|k| k.period == period) {
        return Carried::Exact(k.spent);
    }
    let at_least = mine.iter().filter(|k| contains(period, k.period)).map(|k| k.spent).max();
    let at_most = mine.iter().filter(|k| contains(k.period, period)).map(|k| k.spent).min();
    if at_least.is_none() && at_most.is_none() {
        Carried::Unknown
    } else {
        Carried::Between { at_least, at_most }
    }
}

/// The lines to show before an update is signed.
pub fn report(ss: &SessionStatus, old: Option<&Policy>, new: &CompiledPolicy) -> Vec<String> {
    let known = known(ss, old);
    let t = ss.time;
    let mut out = Vec::new();
    let describe = |meter: &Meter| -> (String, u8) {
        match meter {
            Meter::Native => ("ETH".into(), 18),
            Meter::Gas => ("ETH of gas".into(), 18),
            Meter::Token(a) => match new.doc.tokens.iter().find(|x| x.address == *a) {
                Some(x) => (x.symbol.clone(), x.decimals),
                None => (a.to_string(), 0),
            },
            Meter::Symbol(s) => (s.clone(), new.doc.tokens.iter().find(|x| x.symbol == *s).map_or(0, |x| x.decimals)),
        }
    };
    let new_meter = |a: AssetRef| -> Meter {
        match a {
            AssetRef::Native => Meter::Native,
            AssetRef::Token(i) => {
                let tok = &new.doc.tokens[i];
                // Without the current policy document, the status names tokens by symbol.
                if old.is_none() {
                    Meter::Symbol(tok.symbol.clone())
                } else {
                    Meter::Token(tok.address)
                }
            }
        }
    };
    let mut line = |rule: String, meter: Meter, period: Period, max: U256| {
        let (sym, dec) = describe(&meter);
        let fmt = |v: U256| format!("{} {sym}", format_decimal(v, dec));
        let when = if period == Period::Session {
            "over the session so far".to_string()
        } else {
            let end = period.end(ss.anchor, period.index(ss.anchor, t));
            format!("in the current {period} (until {})", format_time(end))
        };
        let head = format!("{rule} ({} per {period})", fmt(max));
        out.push(match carried(&known, &meter, period) {
            Carried::Exact(v) => {
                format!("{head}: {} already spent {when}; {} left", fmt(v), fmt(max.saturating_sub(v)))
            }
            Carried::Between { at_least, at_most } => {
                let lo = at_least.map(|v| format!("at least {}", fmt(v)));
                let hi = at_most.map(|v| format!("at most {}", fmt(v)));
                let range = [lo, hi].into_iter().flatten().collect::<Vec<_>>().join(" and ");
                format!("{head}: {range} already spent {when} (the status reports no figure for exactly this period)")
            }
            Carried::Unknown => format!(
                "{head}: no rule of the current policy meters this, so the status shows no figure; the enclave \
                 counts what was spent {when} all the same"
            ),
        });
    };
    for (i, l) in new.doc.limits.iter().enumerate() {
        line(format!("limits[{i}]"), new_meter(new.limit_assets[i]), l.period, l.max);
    }
    for (i, s) in new.doc.streams.iter().enumerate() {
        line(format!("streams[{i}]"), new_meter(new.stream_assets[i]), Period::Session, s.max);
    }
    for (i, g) in new.doc.gas.cost_limits.iter().enumerate() {
        line(format!("gas.cost_limits[{i}]"), Meter::Gas, g.period, g.max);
    }
    if out.is_empty() {
        out.push("the new policy has no spend limit".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_nest_as_the_ledger_counts_them() {
        use Period::*;
        assert!(contains(Week, Day) && contains(Day, Hour) && contains(Month, Day) && contains(Session, Month));
        assert!(!contains(Month, Week) && !contains(Week, Month) && !contains(Day, Week));
    }

    #[test]
    fn a_weekly_rule_reads_at_least_the_days_spend() {
        let usdc = Meter::Token(Address::repeat_byte(1));
        let known = vec![
            Known { meter: usdc.clone(), period: Period::Day, spent: U256::from(100), rule: "limits[0]".into() },
            Known { meter: usdc.clone(), period: Period::Session, spent: U256::from(250), rule: "streams[0]".into() },
        ];
        assert_eq!(carried(&known, &usdc, Period::Day), Carried::Exact(U256::from(100)));
        assert_eq!(
            carried(&known, &usdc, Period::Week),
            Carried::Between { at_least: Some(U256::from(100)), at_most: Some(U256::from(250)) }
        );
        assert_eq!(
            carried(&known, &usdc, Period::Hour),
            Carried::Between { at_least: None, at_most: Some(U256::from(100)) }
        );
        assert_eq!(carried(&known, &Meter::Native, Period::Day), Carried::Unknown);
    }
}
