// ---------------------------------------------------------------- my policy

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Asset {
    Native,
    Tok(Address),
    Gas,
    Usd,
}

/// `ceil(amount × price / 10^decimals)`.
fn worth(amount: U256, price: U256, decimals: u32) -> U256 {
    let d = U256::from(10u64).pow(U256::from(decimals));
    (amount * price).div_ceil(d)
}

#[derive(Clone, Debug)]
struct Pol {
    text: String,
    valid_after: Option<u64>,
    valid_until: u64,
    quota: Option<u64>,
    rates: Vec<(u64, u64)>,
    limits: Vec<(Asset, P, U256)>,
    /// (asset, initial, rate, every, max)
    streams: Vec<(Asset, U256, U256, u64, U256)>,
    max_fee: Option<u128>,
    max_gas: Option<u64>,
    gas_limits: Vec<(P, U256)>,
    count_in_native: bool,
    /// (asset, X, per, ttl)
    escalate: Option<(Asset, U256, P, u64)>,
    /// `escalate.above_usd` (18 decimals), with the escalation's per and ttl.
    esc_usd: Option<(U256, P, u64)>,
    /// Prices (USD, 18 decimals) of ETH, T1, T2 (X2 on chain 10), T2B (X2 on chain 1).
    prices: [Option<U256>; 4],
    value_cap: Option<U256>,
    /// X2 listed on chain 1 too (as T2B), besides chain 10 (as T2).
    x2_on_1: bool,
}

const CHAINS: [u64; 2] = [1, 10];
/// Whether the model's kept history merges signatures of one second (as the engine does).
const MERGE: bool = true;

fn pick_p(r: &mut Rng) -> P {
    *r.pick(&ALL_P)
}

/// A random policy in force from `now` (created at `created`).
fn gen_policy(r: &mut Rng, now: u64, created: u64, first: bool, burst: bool) -> Pol {
    let mut s = String::from("name = \"zz\"\nchains = [1, 10]\nmax_duration = \"365 days\"\n");
    let valid_after = if first && r.chance(15) {
        Some(created + r.below(3 * 86_400))
    } else if !first && r.chance(5) {
        Some(now + r.below(3600))
    } else {
        None
    };
    if let Some(a) = valid_after {
        s += &format!("valid_after = {a}\n");
    }
    let valid_until = now.max(valid_after.unwrap_or(0)) + 86_400 * (60 + r.below(240));
    s += &format!("valid_until = {valid_until}\n");
    let quota = (!burst && r.chance(15)).then(|| 20 + r.below(400));
    if let Some(q) = quota {
        s += &format!("quota = {q}\n");
    }
    let value_cap = (!burst && r.chance(15)).then(|| U256::from(1_000_000 + r.below(20_000_000)));
    if let Some(v) = value_cap {
        s += &format!("max_value_per_call = \"{v} wei\"\n");
    }
    let x2_on_1 = r.chance(50);
    // Prices: now and then, each asset priced or not (RULES §3, §8).
    let e18 = U256::from(10u64).pow(U256::from(18u8));
    let choices: [(&str, U256); 6] = [
        ("0.000001", U256::from(1_000_000_000_000u64)),
        ("3", U256::from(3u8) * e18),
        ("1.5", U256::from(15u8) * e18 / U256::from(10u8)),
        ("0.01", U256::from(10_000_000_000_000_000u64)),
        ("1000", U256::from(1000u32) * e18),
        ("0.5", e18 / U256::from(2u8)),
    ];
    let mut prices = [None; 4];
    if !burst && r.chance(50) {
        let mut items = Vec::new();
        for (k, sym) in ["ETH", "T1", "T2", "T2B"].iter().enumerate() {
            if (k < 3 || x2_on_1) && r.chance(75) {
                let (text, v) = *r.pick(&choices);
                items.push(format!("{sym} = \"{text}\""));
                prices[k] = Some(v);
            }
        }
        if items.is_empty() {
            items.push("T1 = \"1.5\"".into());
            prices[1] = Some(choices[2].1);
        }
        s += &format!("prices = {{ {} }}\n", items.join(", "));
    }
    let priced = prices.iter().any(|p| p.is_some());
    let mut escalate = None;
    let mut esc_usd = None;
    if !burst && r.chance(if priced { 60 } else { 30 }) {
        let per = pick_p(r);
        let ttl = 60 * (1 + r.below(30));
        if priced && r.chance(60) {
            let y = 1 + r.below(60);
            esc_usd = Some((U256::from(y) * e18, per, ttl));
            if r.chance(70) {
                s += &format!(
                    "escalate = {{ above_usd = \"{y} USD\", per = \"{}\", ttl = \"{}s\" }}\n",
                    per.name(),
                    ttl
                );
            } else {
                // Both thresholds, on T1.
                let x = 1 + r.below(30);
                s += &format!(
                    "escalate = {{ above_usd = \"{y} USD\", above_value = \"{x} T1\", per = \"{}\", ttl = \"{}s\" }}\n",
                    per.name(),
                    ttl
                );
                escalate = Some((Asset::Tok(X1), U256::from(x) * U256::from(1_000_000u64), per, ttl));
            }
        } else {
            let (asset, unit, x) = match r.below(4) {
                0 => (Asset::Native, "wei", U256::from(1 + r.below(30_000_000))),
                1 => (Asset::Tok(X1), "T1", U256::from(1 + r.below(30))),
                2 if x2_on_1 => (Asset::Tok(X2), "T2B", U256::from(1 + r.below(30))),
                _ => (Asset::Tok(X2), "T2", U256::from(1 + r.below(30))),
            };
            s += &format!(
                "escalate = {{ above_value = \"{x} {unit}\", per = \"{}\", ttl = \"{}s\" }}\n",
                per.name(),
                ttl
            );
            let base = if unit == "wei" { x } else { x * U256::from(1_000_000u64) };
            escalate = Some((asset, base, per, ttl));
        }
    }
    s += &format!("[tokens]\nT1 = {{ address = \"{X1}\", decimals = 6 }}\nT2 = {{ address = \"{X2}\", decimals = 6, chain_id = 10 }}\n");
    if x2_on_1 {
        s += &format!("T2B = {{ address = \"{X2}\", decimals = 6, chain_id = 1 }}\n");
    }
    let mut limits = Vec::new();
    for _ in 0..if burst { 0 } else { r.below(5) } {
        let per = pick_p(r);
        let n = 1 + r.below(60);
        let whole = U256::from(n) * U256::from(1_000_000u64);
        let (asset, unit, base) = match r.below(4) {
            0 => (Asset::Native, "wei", U256::from(1_000 + r.below(80_000_000))),
            1 => (Asset::Tok(X1), "T1", whole),
            2 if x2_on_1 => (Asset::Tok(X2), "T2B", whole),
            _ => (Asset::Tok(X2), "T2", whole),
        };
        let shown = if unit == "wei" { base.to_string() } else { (base / U256::from(1_000_000u64)).to_string() };
        s += &format!("[[limits]]\nmax = \"{shown} {unit}\"\nper = \"{}\"\n", per.name());
        limits.push((asset, per, base));
    }
    let mut streams = Vec::new();
    if !burst && r.chance(20) {
        let native = r.chance(50);
        let (initial, rate, every, max) =
            (r.below(3_000_000), 1 + r.below(2_000_000), 1 + r.below(86_400), 1_000_000 + r.below(90_000_000));
        if native {
            s += &format!(
                "[[streams]]\ninitial = \"{initial} wei\"\nrate = \"{rate} wei\"\nevery = \"{every}s\"\nmax = \"{max} wei\"\n"
            );
            streams.push((Asset::Native, U256::from(initial), U256::from(rate), every, U256::from(max)));
        } else {
            // In whole T1 (6 decimals) to keep the text simple.
            let (i, ra, m) = (initial / 100_000, 1 + rate / 100_000, 1 + max / 1_000_000);
            s += &format!(
                "[[streams]]\ninitial = \"{i} T1\"\nrate = \"{ra} T1\"\nevery = \"{every}s\"\nmax = \"{m} T1\"\n"
            );
            let u = U256::from(1_000_000u64);
            streams.push((Asset::Tok(X1), U256::from(i) * u, U256::from(ra) * u, every, U256::from(m) * u));
        }
    }
    s += "[[calls]]\ntarget = \"T1\"\nfunctions = [\"transfer(address,uint256)\"]\n";
    s += "[[calls]]\ntarget = \"T2\"\nfunctions = [\"transfer(address,uint256)\"]\n";
    if x2_on_1 {
        s += "[[calls]]\ntarget = \"T2B\"\nfunctions = [\"transfer(address,uint256)\"]\n";
    }
    s += &format!("[[calls]]\ntarget = \"{ALICE}\"\nfunctions = [\"receive()\"]\n");
    let mut rates = Vec::new();
    for _ in 0..r.below(3) {
        let max = if burst {
            *r.pick(&[5u64, 20, 63, 64, 65, 100, 150])
        } else if r.chance(50) {
            1 + r.below(10)
        } else {
            10 + r.below(140)
        };
        let window = if burst {
            *r.pick(&[300u64, 3600, 86_400])
        } else {
            *r.pick(&[10u64, 60, 600, 3600, 86_400, 3 * 86_400]) + r.below(100)
        };
        s += &format!("[[rate_limits]]\nmax = {max}\nwindow = \"{window}s\"\n");
        rates.push((max, window));
    }
    s += "[gas]\n";
    let max_fee = (!burst && r.chance(30)).then(|| 10 + r.below(40) as u128);
    if let Some(f) = max_fee {
        s += &format!("max_fee_per_gas = \"{f} wei\"\n");
    }
    let max_gas = (!burst && r.chance(25)).then(|| 120_000 + r.below(400_000));
    if let Some(g) = max_gas {
        s += &format!("max_gas_limit = {g}\n");
    }
    let count_in_native = r.chance(35);
    if count_in_native {
        s += "count_in_native = true\n";
    }
    let mut gas_limits = Vec::new();
    for _ in 0..if !burst && r.chance(35) { 1 + r.below(2) } else { 0 } {
        let per = pick_p(r);
        let max = U256::from(100_000 + r.below(100_000_000));
        s += &format!("[[gas.limits]]\nmax = \"{max} wei\"\nper = \"{}\"\n", per.name());
        gas_limits.push((per, max));
    }
    s += &format!("[approvals]\nspenders = [\"{S1}\"]\nmax = [\"1000000000 T1\"]\n");
    s += "[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"60m\"\n";
    s += &format!("[user_operations]\nentry_points = [\"v0.7\"]\npaymasters = [\"{PM}\"]\n");
    Pol {
        text: s,
        valid_after,
        valid_until,
        quota,
        rates,
        limits,
        streams,
        max_fee,
        max_gas,
        gas_limits,
        count_in_native,
        escalate,
        esc_usd,
        prices,
        value_cap,
        x2_on_1,
    }
}

fn compile(text: &str, now: u64) -> Option<(Policy, CompiledPolicy)> {
    let doc = resolve_text(text, now).map_err(|e| e.to_string()).ok()?;
    let c = CompiledPolicy::compile(doc.clone()).ok()?;
    c.check_lifetime(now).ok()?;
    Some((doc, c))
}

