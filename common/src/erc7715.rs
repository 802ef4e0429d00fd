//! Import of ERC-7715 permission requests (`wallet_grantPermissions`): map what maps onto a
//! Bridle policy file (TOML), and say plainly what does not.
//!
//! Accepted input: the JSON-RPC request itself, its `params` array, or one permission
//! request object. A request carries `chainId`, `expiry`, an optional `address` (the
//! granting account), a `signer` / `to` (the session key's account) and either
//! `permissions: [{type, data}]` (the ERC) or `permission: {type, data}` (MetaMask's Smart
//! Accounts Kit). Mapped permission types:
//!
//! | ERC-7715 type                    | Bridle                                                        |
//! |----------------------------------|---------------------------------------------------------------|
//! | native-token-periodic            | `[[limits]]` in ETH per period, native transfers to any target |
//! | native-token-stream              | `[[streams]]` in ETH (initial, per second, max)                |
//! | native-token-allowance           | `[[limits]]` in ETH per session                                |
//! | native-token-recurring-allowance | as native-token-periodic (Coinbase's name)                     |
//! | erc20-token-periodic / -stream / -allowance / -recurring-allowance | the same for the token, `transfer` allowed on it |
//! | rate-limit                       | `[[rate_limits]]`                                              |
//!
//! Bridle periods are minute, hour, day, week, month and session; a period that is none of
//! these is rounded **up** to the next (a stricter cap), and the report says so.

use crate::period::format_time;
use crate::units::format_decimal;
use alloy_primitives::{Address, U256};
use serde_json::Value;
use std::fmt::Write;
use std::str::FromStr;

/// Known decimals and symbol for a token address (`--token SYMBOL=ADDRESS:DECIMALS`).
#[derive(Debug, Clone)]
pub struct KnownToken {
    pub symbol: String,
    pub address: Address,
    pub decimals: u8,
}

/// The mapped policy and what could not be mapped.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub toml: String,
    /// One line each: what was not mapped, or mapped only approximately.
    pub notes: Vec<String>,
}

struct TokenOut {
    symbol: String,
    address: Address,
    decimals: u8,
    known: bool,
}

#[derive(Default)]
struct Out {
    chains: Vec<u64>,
    expiry: Option<u64>,
    start: Option<u64>,
    tokens: Vec<TokenOut>,
    native_calls: bool,
    token_calls: Vec<String>,
    max_value_per_call: U256,
    limits: Vec<(String, String, String)>,  // (max, per, comment)
    streams: Vec<(String, String, String)>, // (initial, rate, max)
    rate_limits: Vec<(u64, u64)>,
    notes: Vec<String>,
}

fn uint(v: &Value) -> Option<U256> {
    match v {
        Value::Number(n) => n.as_u64().map(U256::from),
        Value::String(s) => {
            let s = s.trim();
            if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                if h.is_empty() {
                    return Some(U256::ZERO);
                }
                U256::from_str_radix(h, 16).ok()
            } else {
                U256::from_str_radix(s.trim_end_matches('n'), 10).ok()
            }
        }
        _ => None,
    }
}

fn u64_of(v: &Value) -> Option<u64> {
    uint(v).and_then(|u| u64::try_from(u).ok())
}

/// The Bridle period for a period length in seconds, rounded up; `exact` says whether it
/// is the same length.
fn period_for(secs: u64) -> (&'static str, bool) {
    match secs {
        0..=60 => ("minute", secs == 60),
        61..=3600 => ("hour", secs == 3600),
        3601..=86_400 => ("day", secs == 86_400),
        86_401..=604_800 => ("week", secs == 604_800),
        // A calendar month is 28 to 31 days: only a period no longer than the shortest
        // month maps to one (a 30-day grant as a month would allow two periods' amounts
        // within 30 days across February; found 2026-12-04 by a review).
        604_801..=2_419_200 => ("month", false),
        _ => ("session", false),
    }
}

impl Out {
    fn native(&self, v: U256) -> String {
        format!("{} ETH", format_decimal(v, 18))
    }

    fn token_amount(&self, sym: &str, v: U256) -> String {
        let d = self.tokens.iter().find(|t| t.symbol == sym).map(|t| t.decimals).unwrap_or(0);
        format!("{} {sym}", format_decimal(v, d))
    }

    fn token(&mut self, addr: Address, known: &[KnownToken]) -> String {
        if let Some(t) = self.tokens.iter().find(|t| t.address == addr) {
            return t.symbol.clone();
        }
        let (symbol, decimals, is_known) = match known.iter().find(|k| k.address == addr) {
            Some(k) => (k.symbol.clone(), k.decimals, true),
            None => (format!("TOKEN{}", self.tokens.len() + 1), 0, false),
        };
        if !is_known {
            self.notes.push(format!(
                "token {addr}: symbol and decimals unknown; listed as {symbol} with 0 decimals (amounts in base units) — pass --token SYMBOL={addr}:DECIMALS to name it"
            ));
        }
        self.tokens.push(TokenOut { symbol: symbol.clone(), address: addr, decimals, known: is_known });
        symbol
    }

    fn amount(&self, asset: &Option<String>, v: U256) -> String {
        match asset {
            None => self.native(v),
            Some(sym) => self.token_amount(sym, v),
        }
    }

    /// Map one permission: a note and nothing mapped when it cannot be (which narrows the
    /// policy); an error when mapping it would widen the grant.
    fn permission(&mut self, label: &str, p: &Value, known: &[KnownToken], now: u64) -> Result<(), String> {
        // Restrictions on the permission itself (the ERC's first text, viem's
        // `grantPermissions`) are not mapped: refused, as the request's are (a review of
        // 2026-12-07).
        restrictions(label, p)?;
        let ty = p.get("type").and_then(|t| t.as_str().or_else(|| t.get("name").and_then(Value::as_str)));
        let Some(ty) = ty else {
            self.notes.push(format!("{label}: no type; not mapped"));
            return Ok(());
        };
        let data = p.get("data").cloned().unwrap_or(Value::Null);
        let get = |k: &str| data.get(k).filter(|v| !v.is_null());
        let (native, kind) = match ty {
            "native-token-periodic" | "native-token-recurring-allowance" => (true, "periodic"),
            "native-token-stream" => (true, "stream"),
            "native-token-allowance" => (true, "allowance"),
            "erc20-token-periodic" | "erc20-recurring-allowance" | "erc20-token-recurring-allowance" => {
                (false, "periodic")
            }
            "erc20-token-stream" => (false, "stream"),
            "erc20-token-allowance" => (false, "allowance"),
            "rate-limit" => {
                match (get("count").and_then(u64_of), get("interval").and_then(u64_of)) {
                    (Some(c), Some(w)) if c > 0 && w > 0 => self.rate_limits.push((c, w)),
                    _ => self.notes.push(format!("{label} rate-limit: needs count and interval; not mapped")),
                }
                return Ok(());
            }
            other => {
                self.notes.push(format!(
                    "{label} type `{other}` has no Bridle equivalent; not mapped (write calls rules by hand)"
                ));
                return Ok(());
            }
        };
        let asset = if native {
            None
        } else {
            let Some(text) = get("tokenAddress").or_else(|| get("address")).and_then(Value::as_str) else {
                self.notes.push(format!("{label} {ty}: no tokenAddress; not mapped"));
                return Ok(());
            };
            let Ok(addr) = Address::from_str(text.trim()) else {
                self.notes.push(format!("{label} {ty}: tokenAddress is not an address; not mapped"));
                return Ok(());
            };
            // A mistyped character in a checksummed address names another token: the
            // policy written would list it checksummed, hiding the slip (as policy files do).
            if let Err(e) = crate::policy::file::checksum_holds(text, addr) {
                self.notes.push(format!("{label} {ty}: tokenAddress {e}; not mapped"));
                return Ok(());
            }
            Some(self.token(addr, known))
        };
        // A field given in a form this tool cannot read exactly (a float, a number past 2^64,
        // an ISO date) is never taken as absent: absent, a start or a maximum would widen
        // the grant (a review of 2026-12-07).
        for field in ["startTime", "start", "maxAmount", "initialAmount"] {
            let unreadable = match get(field) {
                None | Some(Value::Null) => false,
                Some(v) if field.starts_with("start") => u64_of(v).is_none(),
                Some(v) => uint(v).is_none(),
            };
            if unreadable {
                self.notes.push(format!(
                    "{label} {ty}: {field} is not a whole number this tool reads exactly (give it as a 0x-hex or decimal string); not mapped"
                ));
                return Ok(());
            }
        }
        if let Some(st) = get("startTime").or_else(|| get("start")).and_then(u64_of) {
            // A periodic grant counts its periods from its start, Bridle from the session's:
            // a start in the past, not a whole number of periods ago, would let two of
            // Bridle's periods fall in one of the grant's — up to twice its amount there (a
            // review of 2026-12-07).
            let secs = get("periodDuration").or_else(|| get("period")).and_then(u64_of).filter(|s| *s > 0);
            if let (true, Some(secs)) = (kind == "periodic" && st < now, secs) {
                if !(now - st).is_multiple_of(secs) {
                    return Err(format!(
                        "{label} {ty}: startTime {} is in the past; its periods of {secs} s count from it, Bridle's from the \
                         session's start, so one of its periods could see twice its amount: give a startTime now or later",
                        format_time(st)
                    ));
                }
            }
            if st > now {
                self.start = Some(self.start.map_or(st, |s| s.max(st)));
                self.notes.push(format!(
                    "{label} startTime {}: mapped to valid_after (Bridle periods count from the session's start)",
                    format_time(st)
                ));
            }
        }
        if let Some(j) = get("justification").and_then(Value::as_str) {
            self.notes.push(format!("{label} justification (informational, not a rule): {j}"));
        }
        #[allow(clippy::needless_late_init)]
        let bound;
        match kind {
            "periodic" => {
                let amount = get("periodAmount").or_else(|| get("allowance")).and_then(uint);
                let secs = get("periodDuration").or_else(|| get("period")).and_then(u64_of);
                let (Some(amount), Some(secs)) = (amount, secs) else {
                    self.notes.push(format!("{label} {ty}: needs periodAmount and periodDuration; not mapped"));
                    return Ok(());
                };
                let (per, exact) = period_for(secs);
                if !exact {
                    self.notes.push(format!(
                        "{label} {ty}: a period of {secs} s is not a Bridle period; mapped to per {per} (stricter)"
                    ));
                }
                self.limits.push((self.amount(&asset, amount), per.to_string(), format!("{label} {ty}")));
                bound = amount;
            }
            "allowance" => {
                let Some(amount) = get("allowanceAmount").or_else(|| get("allowance")).and_then(uint) else {
                    self.notes.push(format!("{label} {ty}: needs allowanceAmount; not mapped"));
                    return Ok(());
                };
                self.limits.push((self.amount(&asset, amount), "session".into(), format!("{label} {ty}")));
                bound = amount;
            }
            _ => {
                let initial = get("initialAmount").and_then(uint).unwrap_or(U256::ZERO);
                let Some(rate) = get("amountPerSecond").and_then(uint) else {
                    self.notes.push(format!("{label} {ty}: needs amountPerSecond; not mapped"));
                    return Ok(());
                };
                let max = match get("maxAmount").and_then(uint) {
                    Some(m) if m < U256::MAX => m,
                    _ => {
                        let start = self.start.unwrap_or(now).max(now);
                        let span = self.expiry.unwrap_or(start + 86_400).saturating_sub(start);
                        let m = initial.saturating_add(rate.saturating_mul(U256::from(span)));
                        self.notes.push(format!(
                            "{label} {ty}: no maxAmount; mapped to what the stream can accrue before expiry ({})",
                            self.amount(&asset, m)
                        ));
                        m
                    }
                };
                let initial = initial.min(max);
                self.streams.push((self.amount(&asset, initial), self.amount(&asset, rate), self.amount(&asset, max)));
                bound = max;
            }
        }
        match &asset {
            None => {
                self.native_calls = true;
                self.max_value_per_call = self.max_value_per_call.max(bound);
            }
            Some(sym) => {
                if !self.token_calls.contains(sym) {
                    self.token_calls.push(sym.clone());
                }
            }
        }
        Ok(())
    }
}

/// The refusal of restrictions on a permission (`rules`, `policies`: any non-empty one).
fn restrictions(label: &str, p: &Value) -> Result<(), String> {
    for key in ["rules", "policies"] {
        match p.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(v) => {
                let first = v.as_array().and_then(|a| a.first()).unwrap_or(v);
                let t = first.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(unmapped_restriction(
                    &format!("{label}.{key}"),
                    if key == "rules" { "rule" } else { "policy" },
                    t,
                ));
            }
        }
    }
    Ok(())
}

/// The refusal of a restriction (a rule or an ERC-7715 policy) this tool does not map.
fn unmapped_restriction(at: &str, kind: &str, t: &str) -> String {
    format!(
        "{at}: {kind} type `{}` restricts the grant and is not mapped; a policy without it would allow more than the \
         grant, so nothing was written (write the policy by hand: `recipients`, `[[rate_limits]]`, `[[limits]]`)",
        crate::quote::escape_within(t, 64).0
    )
}

/// Map an ERC-7715 request (JSON text) at time `now`.
///
/// Each permission stays on its own chain (review finding 9): a Bridle policy's limits apply
/// on every chain it allows, so permissions for several chains cannot share one policy
/// without each one's allowance applying on all of them. With `chain`, only the requests
/// for that chain are mapped (the others are listed as left out); without it, requests for
/// more than one chain are refused. A request without a chain id is refused: it cannot be
/// mapped without widening it to every chain.
pub fn map(json: &str, known: &[KnownToken], now: u64, chain: Option<u64>) -> Result<Mapped, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let v = match v.get("params") {
        Some(p) if v.get("method").is_some() => {
            if v.get("method").and_then(Value::as_str) != Some("wallet_grantPermissions") {
                return Err("the JSON-RPC method is not wallet_grantPermissions".into());
            }
            p.clone()
        }
        _ => v,
    };
    let requests: Vec<Value> = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => return Err("expected a permission request object or an array of them".into()),
    };
    if requests.is_empty() {
        return Err("no permission request".into());
    }
    let mut out = Out::default();
    let mut chains: Vec<u64> = Vec::new();
    for (r, req) in requests.iter().enumerate() {
        match req.get("chainId").and_then(u64_of) {
            Some(c) => {
                if !chains.contains(&c) {
                    chains.push(c)
                }
            }
            None => {
                return Err(format!(
                    "request[{r}] has no chainId: mapping it would allow it on every chain; give its chain"
                ))
            }
        }
    }
    let requests: Vec<Value> = match chain {
        Some(c) => {
            if !chains.contains(&c) {
                return Err(format!("no request is for chain {c} (the requests are for {chains:?})"));
            }
            for other in chains.iter().filter(|x| **x != c) {
                out.notes.push(format!("requests for chain {other}: left out (map them with --chain {other})"));
            }
            requests.into_iter().filter(|q| q.get("chainId").and_then(u64_of) == Some(c)).collect()
        }
        None if chains.len() > 1 => {
            return Err(format!(
                "the requests are for chains {chains:?}: one Bridle policy would let each permission apply on every one of them; map each chain on its own (--chain ID) and grant one session per chain"
            ))
        }
        None => requests,
    };
    // Expiry first: streams without maxAmount are bounded by it.
    // An expiry given in a form this tool cannot read exactly is not taken as none (which
    // would widen a one-hour grant to 24 h: a review of 2026-12-07): the mapping stops.
    for (r, req) in requests.iter().enumerate() {
        match req.get("expiry").filter(|v| !v.is_null()) {
            Some(v) => match u64_of(v) {
                Some(e) => out.expiry = Some(out.expiry.map_or(e, |x| x.min(e))),
                None => {
                    return Err(format!(
                    "request[{r}]: expiry {} is not a whole number of seconds this tool reads exactly (give it as a \
                         number below 2^64, or a 0x-hex or decimal string)",
                    crate::quote::escape_within(&v.to_string(), 64).0
                ))
                }
            },
            None => out.notes.push(format!("request[{r}]: no expiry; the policy lasts 24 h from the grant")),
        }
    }
    for (r, req) in requests.iter().enumerate() {
        if let Some(c) = req.get("chainId").and_then(u64_of) {
            if !out.chains.contains(&c) {
                out.chains.push(c);
            }
        }
        if let Some(a) = req.get("address").and_then(Value::as_str) {
            out.notes.push(format!(
                "request[{r}] address {a} (the granting account): not a policy field; with user operations, list it under user_operations.senders"
            ));
        }
        let signer = req
            .get("signer")
            .and_then(|s| s.get("data"))
            .and_then(|d| d.get("address").or_else(|| d.get("id")))
            .or_else(|| req.get("to"))
            .and_then(Value::as_str);
        if let Some(s) = signer {
            out.notes.push(format!(
                "request[{r}] signer {s}: not mapped — Bridle generates the session key inside the enclave; grant the session to the agent instead"
            ));
        }
        if req.get("isAdjustmentAllowed").is_some() {
            out.notes.push(format!("request[{r}] isAdjustmentAllowed: not mapped (edit the file to adjust)"));
        }
        // Rules and policies restrict the grant: one this tool does not map would leave the
        // policy broader than the grant (a review of 2026-12-07: a `payee` rule, an expiry
        // rule in a form not read exactly, ERC-7715's `rate-limit`/`spent-limit` policies),
        // so the mapping stops on it.
        // Given as one object rather than an array, they restrict all the same.
        for key in ["rules", "policies"] {
            if let Some(v) = req.get(key).filter(|v| !v.is_null() && !v.is_array()) {
                let t = v.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(unmapped_restriction(
                    &format!("request[{r}].{key}"),
                    if key == "rules" { "rule" } else { "policy" },
                    t,
                ));
            }
        }
        if let Some(rules) = req.get("rules").and_then(Value::as_array) {
            for (k, rule) in rules.iter().enumerate() {
                let t = rule.get("type").and_then(Value::as_str).unwrap_or("?");
                let at = format!("request[{r}].rules[{k}]");
                match (t, rule.get("data").and_then(|d| d.get("timestamp"))) {
                    ("expiry", Some(v)) => match u64_of(v) {
                        Some(ts) => out.expiry = Some(out.expiry.map_or(ts, |x| x.min(ts))),
                        None => {
                            return Err(format!(
                                "{at}: expiry timestamp {} is not a whole number of seconds this tool reads exactly",
                                crate::quote::escape_within(&v.to_string(), 64).0
                            ))
                        }
                    },
                    _ => return Err(unmapped_restriction(&at, "rule", t)),
                }
            }
        }
        if let Some(policies) = req.get("policies").and_then(Value::as_array) {
            if let Some((k, p)) = policies.iter().enumerate().next() {
                let t = p.get("type").and_then(Value::as_str).unwrap_or("?");
                return Err(unmapped_restriction(&format!("request[{r}].policies[{k}]"), "policy", t));
            }
        }
        let perms: Vec<Value> = match (req.get("permissions"), req.get("permission")) {
            (Some(Value::Array(a)), _) => a.clone(),
            (_, Some(p)) => vec![p.clone()],
            _ => {
                out.notes.push(format!("request[{r}]: no permissions; not mapped"));
                vec![]
            }
        };
        for (k, p) in perms.iter().enumerate() {
            let label =
                if requests.len() > 1 { format!("request[{r}].permissions[{k}]") } else { format!("permissions[{k}]") };
            out.permission(&label, p, known, now)?;
        }
    }
    if out.chains.is_empty() {
        return Err("no chainId in any request: a Bridle policy needs its chains".into());
    }
    if !out.native_calls && out.token_calls.is_empty() {
        out.notes.push("no spending permission was mapped: the policy allows no call".into());
    }

    let mut s = String::new();
    let _ = writeln!(s, "# Bridle policy mapped from an ERC-7715 wallet_grantPermissions request");
    let _ = writeln!(s, "# by `bridle policy from-erc7715`. Review it (bridle policy explain FILE) before granting.");
    let _ = writeln!(s, "name = \"erc7715\"");
    let _ = writeln!(s, "chains = {:?}", out.chains);
    let start = out.start.unwrap_or(now).max(now);
    if let Some(st) = out.start {
        let _ = writeln!(s, "valid_after = {st} # {}", format_time(st));
    }
    match out.expiry {
        Some(e) if e > start => {
            let _ = writeln!(s, "valid_until = {e} # {}", format_time(e));
            if e - start > crate::policy::doc::DEFAULT_MAX_DURATION {
                let _ = writeln!(s, "max_duration = \"{}s\" # the request asks for more than 24 h", e - start);
                out.notes.push(format!(
                    "the request lasts {} s, longer than Bridle's 24 h default: max_duration is set to allow it",
                    e - start
                ));
            }
        }
        Some(e) => return Err(format!("expiry {} is not after the start {}", format_time(e), format_time(start))),
        None => {
            let _ = writeln!(s, "valid_for = \"24h\"");
        }
    }
    // No native permission: no native value (the token calls carry none).
    let value = if out.native_calls { out.max_value_per_call } else { U256::ZERO };
    let _ = writeln!(s, "max_value_per_call = \"{}\"", out.native(value));
    if !out.tokens.is_empty() {
        let _ = writeln!(s, "\n[tokens]");
        for t in &out.tokens {
            let note = if t.known { "" } else { " # symbol and decimals unknown: amounts are base units" };
            let _ = writeln!(s, "{} = {{ address = \"{}\", decimals = {} }}{note}", t.symbol, t.address, t.decimals);
        }
    }
    if out.native_calls {
        let _ = writeln!(s, "\n# Native-token permissions: plain transfers to any address.");
        let _ = writeln!(s, "[[calls]]\ntarget = \"*\"\nfunctions = [\"receive()\"]");
    }
    for sym in &out.token_calls {
        let _ = writeln!(s, "\n[[calls]]\ntarget = \"{sym}\"\nfunctions = [\"transfer(address,uint256)\"]");
    }
    for (max, per, what) in &out.limits {
        let _ = writeln!(s, "\n[[limits]] # {what}\nmax = \"{max}\"\nper = \"{per}\"");
    }
    for (initial, rate, max) in &out.streams {
        let _ =
            writeln!(s, "\n[[streams]]\ninitial = \"{initial}\"\nrate = \"{rate}\"\nevery = \"1s\"\nmax = \"{max}\"");
    }
    for (max, window) in &out.rate_limits {
        let _ = writeln!(s, "\n[[rate_limits]]\nmax = {max}\nwindow = \"{window}s\"");
    }
    // ERC-7715 grants say nothing of fees: under them whoever redeems pays the gas, but a
    // session pays its own, from its native balance. Unbounded, a transaction could pay any
    // priority fee (21 ETH for a 21 000-gas transfer at 1 000 000 gwei) past a grant of
    // 0.1 ETH a day (a review of 2026-12-06). So fees are capped, counted in the native
    // limits, and bounded per day.
    let _ = writeln!(
        s,
        "\n[gas] # not in the grant: the session pays its own fees (edit to suit the chain)\n\
         max_fee_per_gas = \"{DEFAULT_MAX_FEE}\"\nmax_priority_fee_per_gas = \"{DEFAULT_MAX_PRIORITY_FEE}\"\n\
         max_gas_limit = {DEFAULT_MAX_GAS_LIMIT}\ncount_in_native = true\n\n[[gas.limits]]\nmax = \"{DEFAULT_GAS_PER_DAY}\"\nper = \"day\""
    );
    out.notes.push(format!(
        "fees are not part of an ERC-7715 grant, and the session pays its own: capped at {DEFAULT_MAX_FEE} \
         ({DEFAULT_MAX_PRIORITY_FEE} priority), {DEFAULT_MAX_GAS_LIMIT} gas, {DEFAULT_GAS_PER_DAY} a day, and \
         counted in the native limits ([gas]: edit to suit the chain)"
    ));
    Ok(Mapped { toml: s, notes: out.notes })
}

/// The fee caps a mapped grant is given (it has none of its own; the owner edits them).
pub const DEFAULT_MAX_FEE: &str = "100 gwei";
pub const DEFAULT_MAX_PRIORITY_FEE: &str = "2 gwei";
pub const DEFAULT_MAX_GAS_LIMIT: u64 = 300_000;
pub const DEFAULT_GAS_PER_DAY: &str = "0.05 ETH";

#[cfg(test)]
#[path = "erc7715_tests.rs"]
mod tests;
