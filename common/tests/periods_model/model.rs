// ---------------------------------------------------------------- my model

#[derive(Clone, Debug, Default)]
struct Ch {
    native: U256,
    x1: U256,
    x2: U256,
    gas: Option<U256>,
    weight: u64,
    chain: u64,
}

impl Ch {
    fn of(&self, a: Asset) -> U256 {
        match a {
            Asset::Native => self.native,
            Asset::Tok(x) if x == X1 => self.x1,
            Asset::Tok(_) => self.x2,
            Asset::Gas => self.gas.unwrap_or_default(),
            Asset::Usd => U256::ZERO,
        }
    }
}

#[derive(Clone, Debug)]
struct Held {
    req: Req,
    expires: u64,
    window: u64,
    signed: bool,
    denied: bool,
}

#[derive(Clone)]
struct Model {
    anchor: u64,
    time: u64,
    pol: Pol,
    uses: u64,
    /// Every signature: (time, weight).
    sigs: Vec<(u64, u64)>,
    /// RULES §2's kept history: the newest signatures whose weights reach the largest max
    /// (at least 64), and the time of the newest dropped.
    kept: Vec<(u64, u64)>,
    dropped: Option<u64>,
    /// Every charge: (time, asset, amount).
    charges: Vec<(u64, Asset, U256)>,
    held: HashMap<B256, Held>,
}

/// What the model says of a decision.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Allowed,
    Pending,
    /// Codes that must fail (any one may be the engine's), and codes the engine may give
    /// though nothing must fail (the kept history's full window).
    Denied(Vec<&'static str>),
}

impl Model {
    fn spent(&self, a: Asset, p: P, t: u64) -> U256 {
        let k = p.index(self.anchor, t);
        self.charges
            .iter()
            .filter(|(s, x, _)| *x == a && p.index(self.anchor, *s) == k)
            .fold(U256::ZERO, |acc, (_, _, v)| acc + *v)
    }

    fn chain_listed_x2(&self, chain: u64) -> bool {
        chain == 10 || (chain == 1 && self.pol.x2_on_1)
    }

    /// The charges of `req` and the codes of the call checks (§5) that fail.
    fn charges_of(&self, req: &Req, fails: &mut Vec<&'static str>) -> Ch {
        let mut ch = Ch { chain: Self::chain(req), ..Ch::default() };
        let userop = matches!(req, Req::UserOp { .. });
        let mut call = |ch: &mut Ch, chain: u64, to: Address, value: U256, transfer: Option<U256>| {
            if let Some(cap) = self.pol.value_cap {
                if value > cap {
                    fails.push("value_cap");
                }
            }
            ch.native += value;
            match (to, transfer) {
                (ALICE, None) => {}
                (X1, Some(a)) => ch.x1 += a,
                (X2, Some(a)) if self.chain_listed_x2(chain) => ch.x2 += a,
                _ => {
                    fails.push("target_not_allowed");
                    if userop && transfer.is_some() {
                        // Run as the account: not a metered call (RULES §5).
                        fails.push("selector_not_allowed");
                    }
                }
            }
        };
        match req {
            Req::Tx { chain, to, value, transfer, gas, fee, .. } => {
                call(&mut ch, *chain, *to, *value, *transfer);
                ch.gas = Some(U256::from(*gas) * U256::from(*fee));
                ch.weight = 1;
                if self.pol.count_in_native {
                    ch.native += ch.gas.unwrap();
                }
            }
            Req::UserOp { chain, calls, gas, fee, paymaster, .. } => {
                for (to, v, tr) in calls {
                    call(&mut ch, *chain, *to, *v, *tr);
                }
                let total: u64 = if *paymaster { gas.iter().sum() } else { gas[..3].iter().sum() };
                ch.gas = Some(U256::from(total) * U256::from(*fee));
                ch.weight = calls.len() as u64;
                if self.pol.count_in_native || !paymaster {
                    ch.native += ch.gas.unwrap();
                }
            }
            Req::Permit { value, deadline, .. } => {
                // RULES §5: a deadline not already past and within max_deadline (60m).
                if *deadline < self.time || *deadline > self.time + 3600 {
                    fails.push("argument_rejected");
                }
                ch.x1 = *value;
                ch.weight = 1;
            }
        }
        ch
    }

    fn gas_total(req: &Req) -> Option<u64> {
        match req {
            Req::Tx { gas, .. } => Some(*gas),
            Req::UserOp { gas, paymaster, .. } => {
                Some(if *paymaster { gas.iter().sum() } else { gas[..3].iter().sum() })
            }
            Req::Permit { .. } => None,
        }
    }
    fn fee(req: &Req) -> u128 {
        match req {
            Req::Tx { fee, .. } | Req::UserOp { fee, .. } => *fee,
            Req::Permit { .. } => 0,
        }
    }
    fn chain(req: &Req) -> u64 {
        match req {
            Req::Tx { chain, .. } | Req::UserOp { chain, .. } | Req::Permit { chain, .. } => *chain,
        }
    }

    /// Every check of RULES §2 but escalation: (must-fail codes, may-fail codes, charges).
    fn check(&self, req: &Req, t: u64) -> (Vec<&'static str>, Vec<&'static str>, Ch) {
        let p = &self.pol;
        let mut must = Vec::new();
        let mut may = Vec::new();
        if p.valid_after.is_some_and(|a| t < a) {
            must.push("not_yet_valid");
        }
        if t >= p.valid_until {
            must.push("expired");
        }
        let ch = self.charges_of(req, &mut must);
        let w = ch.weight;
        if p.quota.is_some_and(|q| self.uses + w > q) {
            must.push("quota_exhausted");
        }
        for &(max, window) in &p.rates {
            let exact: u64 = self.sigs.iter().filter(|(s, _)| t - s < window).map(|(_, w)| w).sum();
            if exact + w > max {
                must.push("rate_limited");
            }
            if self.dropped.is_some_and(|d| t - d < window) {
                may.push("rate_limited");
            }
        }
        if !CHAINS.contains(&Self::chain(req)) {
            must.push("chain_not_allowed");
        }
        if let Some(g) = Self::gas_total(req) {
            let fee = Self::fee(req);
            if p.max_fee.is_some_and(|m| fee > m) {
                must.push("gas_cap");
            }
            if p.max_gas.is_some_and(|m| g > m) {
                must.push("gas_cap");
            }
            for &(per, max) in &p.gas_limits {
                if self.spent(Asset::Gas, per, t) + ch.gas.unwrap() > max {
                    must.push("gas_cap");
                }
            }
        }
        for &(a, per, max) in &p.limits {
            let c = ch.of(a);
            if !c.is_zero() && self.spent(a, per, t) + c > max {
                must.push("spend_cap");
            }
        }
        for &(a, initial, rate, every, max) in &p.streams {
            let c = ch.of(a);
            if c.is_zero() {
                continue;
            }
            let e = t.saturating_sub(self.anchor);
            let avail = (initial + rate * U256::from(e) / U256::from(every)).min(max);
            if self.spent(a, P::Session, t) + c > avail {
                must.push("spend_cap");
            }
        }
        (must, may, ch)
    }

    fn escalates(&self, ch: &Ch, t: u64) -> bool {
        if let Some((a, x, per, _)) = self.pol.escalate {
            let c = ch.of(a);
            if !c.is_zero() && self.spent(a, per, t) + c > x {
                return true;
            }
        }
        if let Some((y, per, _)) = self.pol.esc_usd {
            let (usd, unpriced) = self.usd_of(ch);
            if unpriced {
                return true;
            }
            if usd.is_zero() {
                return false;
            }
            // What moved in the period, valued now: each asset at the table in force, a
            // token listed more than once at its highest (priced) listing.
            let mut moved = U256::ZERO;
            for a in [Asset::Native, Asset::Tok(X1), Asset::Tok(X2)] {
                let v = self.spent(a, per, t);
                if v.is_zero() {
                    continue;
                }
                let listings: Vec<Option<U256>> = match a {
                    Asset::Native => vec![self.pol.prices[0]],
                    Asset::Tok(x) if x == X1 => vec![self.pol.prices[1]],
                    _ if self.pol.x2_on_1 => vec![self.pol.prices[2], self.pol.prices[3]],
                    _ => vec![self.pol.prices[2]],
                };
                let dec = if a == Asset::Native { 18 } else { 6 };
                match listings.iter().flatten().map(|&pr| worth(v, pr, dec)).max() {
                    Some(w) => moved += w,
                    None => return true,
                }
            }
            return moved + usd > y;
        }
        false
    }

    /// The request's USD value at the table (RULES §3), each token at its listing on the
    /// request's chain; and whether it charges an unpriced asset.
    fn usd_of(&self, ch: &Ch) -> (U256, bool) {
        let mut usd = U256::ZERO;
        let mut unpriced = false;
        let x2 = if ch.chain == 1 { self.pol.prices[3] } else { self.pol.prices[2] };
        for (v, price, dec) in [(ch.native, self.pol.prices[0], 18), (ch.x1, self.pol.prices[1], 6), (ch.x2, x2, 6)] {
            if v.is_zero() {
                continue;
            }
            match price {
                Some(p) => usd += worth(v, p, dec),
                None => unpriced = true,
            }
        }
        (usd, unpriced)
    }

    fn charge(&mut self, ch: &Ch, t: u64) {
        self.uses += ch.weight;
        for (a, v) in [(Asset::Native, ch.native), (Asset::Tok(X1), ch.x1), (Asset::Tok(X2), ch.x2)] {
            if !v.is_zero() {
                self.charges.push((t, a, v));
            }
        }
        if let Some(g) = ch.gas {
            if !g.is_zero() {
                self.charges.push((t, Asset::Gas, g));
            }
        }
        let (usd, _) = self.usd_of(ch);
        if !usd.is_zero() {
            self.charges.push((t, Asset::Usd, usd));
        }
        self.sigs.push((t, ch.weight));
        // RULES §2 keeps signatures; the engine keeps one entry per session second (several
        // signatures in one second together), which drops no more than RULES' reading.
        match self.kept.last_mut() {
            Some((s, w)) if *s == t && MERGE => *w += ch.weight,
            _ => self.kept.push((t, ch.weight)),
        }
        let keep = self.pol.rates.iter().map(|r| r.0).max().unwrap_or(0).max(64);
        let mut total: u64 = self.kept.iter().map(|k| k.1).sum();
        while total - self.kept[0].1 >= keep {
            total -= self.kept[0].1;
            let (at, _) = self.kept.remove(0);
            self.dropped = Some(self.dropped.map_or(at, |d| d.max(at)));
        }
    }

    fn tick(&mut self, clock: u64) -> u64 {
        self.time = self.time.max(clock);
        self.time
    }
}

