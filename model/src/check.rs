//! Deciding one request (RULES §2–§6): every failing check is collected, so the engine's
//! single code (the first in its order) must be one of them.

use crate::abi::{self, Erc20};
use crate::permits::PermitCtx;
use crate::registry::{self, Item, Key, Kind, Place, Write};
use crate::time::period_index;
use crate::{Ledger, Model, Req};
use alloy_primitives::{Address, U256};
use bridle_common::period::Period;
use bridle_common::policy::doc::{Asset, Party, Token};

/// The canonical Permit2 contract (RULES §5: it and any contract a `permit2` rule names
/// are Permit2 contracts, whose one metered function is `approve`).
pub const PERMIT2: Address = alloy_primitives::address!("000000000022D473030F116dDEE9F6B43aC78BA3");

/// Codes the engine may give for a user operation whose entry point (or sender) is not
/// listed: RULES.md does not name one.
pub const ENTRY_POINT_CODES: &[&str] = &["target_not_allowed", "chain_not_allowed", "unsupported"];

/// Codes for an EIP-2612 permit whose token no permit rule covers: RULES.md does not name
/// one. (A deadline already past or beyond `max_deadline` is `argument_rejected`.)
pub const PERMIT_RULE_CODES: &[&str] = &["typed_data_not_allowed", "argument_rejected"];

/// What a request would charge (RULES §3).
#[derive(Debug, Clone, Default)]
pub struct Charges {
    pub native: U256,
    /// Per token address, summed over the request's calls.
    pub tokens: Vec<(Address, U256)>,
    pub gas: U256,
    /// USD (18 decimals) of the charged assets that have a price.
    pub usd: U256,
    /// Some charged asset has no price.
    pub unpriced: bool,
}

impl Charges {
    pub fn get(&self, asset: &Ledger) -> U256 {
        match asset {
            Ledger::Native => self.native,
            Ledger::Token(a) => {
                self.tokens.iter().filter(|(t, _)| t == a).map(|(_, v)| *v).fold(U256::ZERO, U256::saturating_add)
            }
            Ledger::Gas => self.gas,
            Ledger::Usd => self.usd,
        }
    }
    pub(crate) fn add_token(&mut self, token: Address, v: U256) {
        match self.tokens.iter_mut().find(|(t, _)| *t == token) {
            Some((_, x)) => *x = x.saturating_add(v),
            None => self.tokens.push((token, v)),
        }
    }
}

/// The outcome of evaluating a request (before escalation).
pub struct Eval {
    pub codes: Vec<&'static str>,
    /// The model cannot decide this request (`model_limit`).
    pub limit: bool,
    pub weight: u64,
    pub charges: Charges,
    /// Where the request sits and what it writes, for the registry.
    pub item: Item,
}

/// `ceil(amount × price / 10^decimals)`, exact in 512 bits, saturating at the end.
pub fn usd_of(amount: U256, usd: U256, decimals: u8) -> U256 {
    use alloy_primitives::U512;
    let x = U512::from(amount) * U512::from(usd);
    let d = U512::from(10u8).pow(U512::from(decimals));
    let q = x.div_ceil(d);
    if q > U512::from(U256::MAX) {
        U256::MAX
    } else {
        U256::from_limbs_slice(&q.as_limbs()[..4])
    }
}

impl Model {
    /// The listing of `addr` that applies on `chain`.
    pub(crate) fn listing_here(&self, chain: u64, addr: Address) -> Option<&Token> {
        self.policy.tokens.iter().find(|t| t.address == addr && t.chain_id.is_none_or(|c| c == chain))
    }

    pub(crate) fn resolve(&self, asset: &Asset) -> Option<Ledger> {
        match asset {
            Asset::Native => Some(Ledger::Native),
            Asset::Token(sym) => self.policy.tokens.iter().find(|t| &t.symbol == sym).map(|t| Ledger::Token(t.address)),
        }
    }

    /// USD price (18 decimals) and decimals of an asset as charged on `chain`.
    pub(crate) fn price(&self, chain: u64, asset: &Ledger) -> Option<(U256, u8)> {
        let (key, dec) = match asset {
            Ledger::Native => (Asset::Native, 18),
            Ledger::Token(a) => {
                let t = self.listing_here(chain, *a)?;
                (Asset::Token(t.symbol.clone()), t.decimals)
            }
            _ => return None,
        };
        self.policy.prices.iter().find(|p| p.asset == key).map(|p| (p.usd, dec))
    }

    /// Approval caps (`approvals.max`) that apply to `token` on `chain`.
    pub(crate) fn caps(&self, chain: u64, token: Address) -> Vec<U256> {
        let Some(t) = self.listing_here(chain, token) else { return Vec::new() };
        self.policy.approvals.caps.iter().filter(|c| c.token == t.symbol).map(|c| c.max).collect()
    }

    /// RULES §5 "Approvals" for an approval of `amount` of `token` to `spender` that is not
    /// `approve(spender, 0)`: `type(uint256).max`, an unlisted token, a listed token without
    /// an `approvals.max` entry (approvals must be bounded) or above it is
    /// `unlimited_approval`; a spender not listed, `spender_not_allowed`.
    pub(crate) fn approval_codes(
        &self,
        chain: u64,
        token: Address,
        spender: Address,
        amount: U256,
        codes: &mut Vec<&'static str>,
    ) {
        let listed = self.listing_here(chain, token).is_some();
        let caps = self.caps(chain, token);
        if amount == U256::MAX || !listed || caps.is_empty() || caps.iter().any(|c| amount > *c) {
            codes.push("unlimited_approval");
        }
        if !self.policy.approvals.spenders.contains(&spender) {
            codes.push("spender_not_allowed");
        }
    }

    fn party(&self, p: &Party) -> Address {
        match p {
            Party::Address(a) => *a,
            Party::Owner => self.owner,
            Party::Account => self.account,
        }
    }

    fn is_recipient(&self, a: Address) -> bool {
        self.policy.recipients.as_ref().is_none_or(|rs| rs.iter().any(|p| self.party(p) == a))
    }

    /// What was charged of `asset` in the period of `period` that contains `t`.
    pub(crate) fn spent(&self, asset: &Ledger, period: Period, t: u64) -> U256 {
        let k = period_index(period, self.anchor, t);
        self.ledger
            .iter()
            .filter(|(s, a, _)| a == asset && period_index(period, self.anchor, *s) == k)
            .map(|(_, _, v)| *v)
            .fold(U256::ZERO, U256::saturating_add)
    }

    /// Evaluate `req` at session time `t` against every rule but escalation.
    pub(crate) fn evaluate(&self, req: &Req, t: u64) -> Eval {
        let p = &self.policy;
        let mut codes: Vec<&'static str> = Vec::new();
        let mut limit = false;
        let mut charges = Charges::default();
        let (chain, weight) = match req {
            Req::Tx { chain_id, .. }
            | Req::Legacy { chain_id, .. }
            | Req::Eip7702 { chain_id, .. }
            | Req::Permit { chain_id, .. }
            | Req::Permit2 { chain_id, .. }
            | Req::Permit2Transfer { chain_id, .. } => (*chain_id, 1u64),
            Req::UserOp { chain_id, calls, .. } => (*chain_id, calls.len() as u64),
            Req::Redeem { chain_id, entries, .. } => (*chain_id, entries.iter().map(|e| e.1.len() as u64).sum()),
        };
        // 1–2. State and validity.
        if self.revoked {
            codes.push("revoked");
        }
        if self.suspended {
            codes.push("suspended");
        }
        if p.valid_after.is_some_and(|a| t < a) {
            codes.push("not_yet_valid");
        }
        if p.valid_until.is_some_and(|u| t >= u) {
            codes.push("expired");
        }
        // 3–4. Quota and rate limits (weight).
        if p.quota.is_some_and(|q| self.uses.saturating_add(weight) > q) {
            codes.push("quota_exhausted");
        }
        for rl in &p.rate_limits {
            let used =
                self.rate.iter().filter(|(s, _)| t - s < rl.window).map(|(_, w)| *w).fold(0u64, u64::saturating_add);
            // A window reaching a signature the session no longer keeps counts as full.
            if self.rate_dropped.is_some_and(|d| t - d < rl.window) || used.saturating_add(weight) > rl.max {
                codes.push("rate_limited");
            }
        }
        // 5. Chain.
        if !p.chains.contains(&chain) {
            codes.push("chain_not_allowed");
        }
        // 6. Gas.
        let (gas, fee, prio) = match req {
            Req::Tx { gas_limit, max_fee_per_gas, max_priority_fee_per_gas, .. }
            | Req::Redeem { gas_limit, max_fee_per_gas, max_priority_fee_per_gas, .. } => {
                (Some(*gas_limit), *max_fee_per_gas, *max_priority_fee_per_gas)
            }
            // RULES §4, legacy: the gas price is both fees (and so the gas cost's price).
            Req::Legacy { gas_limit, gas_price, .. } => (Some(*gas_limit), *gas_price, *gas_price),
            Req::UserOp { gas, max_fee_per_gas, max_priority_fee_per_gas, .. } => {
                (Some(*gas), *max_fee_per_gas, *max_priority_fee_per_gas)
            }
            Req::Permit { .. } | Req::Permit2 { .. } | Req::Permit2Transfer { .. } | Req::Eip7702 { .. } => {
                (None, 0, 0)
            }
        };
        // A request without gas (a permit) checks no gas rule at all (RULES §2).
        if let Some(g) = gas {
            charges.gas = U256::from(g) * U256::from(fee);
            if p.gas.max_fee_per_gas.is_some_and(|c| fee > c)
                || p.gas.max_priority_fee_per_gas.is_some_and(|c| prio > c)
                || p.gas.max_gas_limit.is_some_and(|c| g > c)
            {
                codes.push("gas_cap");
            }
            for cl in &p.gas.cost_limits {
                if self.spent(&Ledger::Gas, cl.period, t).saturating_add(charges.gas) > cl.max {
                    codes.push("gas_cap");
                }
            }
        }
        // RULES §3: a user operation (here never with a paymaster) pays its maximum gas cost
        // to whoever bundles it, the agent perhaps: native value, whatever count_in_native.
        if p.gas.count_in_native || matches!(req, Req::UserOp { .. }) {
            charges.native = charges.gas;
        }
        // 7. Calls (or the permit), collecting token charges and registry writes.
        let mut writes: Vec<(Key, Write)> = Vec::new();
        // Each call's first write (for just-in-time `increaseAllowance`).
        let mut starts: Vec<usize> = Vec::new();
        let place = match req {
            Req::Tx { nonce, to, value, data, .. } | Req::Legacy { nonce, to, value, data, .. } => {
                starts.push(writes.len());
                self.check_call(chain, *to, *value, data, self.account, &mut codes, &mut charges, &mut writes);
                Place::Own { chain, pos: *nonce }
            }
            Req::UserOp { entry_point, sender, nonce, calls, .. } => {
                if !p.user_operations.entry_points.contains(entry_point)
                    || (!p.user_operations.senders.is_empty() && !p.user_operations.senders.contains(sender))
                {
                    codes.extend_from_slice(ENTRY_POINT_CODES);
                }
                if calls.is_empty() {
                    limit = true;
                }
                for (target, value, data) in calls {
                    // RULES §5, self-calls: an account other than the session calling itself.
                    // The zero address is the account itself to ERC-7821 accounts.
                    if (target == sender || target.is_zero()) && *sender != self.account {
                        codes.push("target_not_allowed");
                    }
                    // Only metered calls run as another account, unless the owner vouches
                    // for its accounts (`user_operations.unmetered_calls`).
                    let metered = self.metered(chain, *target, data);
                    if *sender != self.account && !p.user_operations.unmetered_calls && !metered {
                        codes.push("selector_not_allowed");
                    }
                    starts.push(writes.len());
                    self.check_call(chain, Some(*target), *value, data, *sender, &mut codes, &mut charges, &mut writes);
                }
                let low = U256::from(u64::MAX);
                let pos = u64::try_from(*nonce & low).unwrap_or(u64::MAX);
                Place::Smart { chain, entry_point: *entry_point, sender: *sender, key: *nonce >> 64, pos }
            }
            Req::Redeem { nonce, manager, entries, .. } => {
                // RULES §5b: the manager listed, each root delegator listed (when the
                // policy lists them), no nested redemption, no self-call; every call checked
                // as a call held by its root delegator.
                let d = &p.delegations;
                if !d.managers.contains(manager) {
                    codes.push("target_not_allowed");
                }
                if entries.is_empty() || entries.iter().any(|e| e.1.is_empty()) {
                    limit = true;
                }
                for (root, calls) in entries {
                    // An empty context, or the session as the root: it would revert.
                    if root.is_none_or(|r| r == self.account) {
                        codes.push("argument_rejected");
                    }
                    if root.is_some_and(|r| !d.delegators.is_empty() && !d.delegators.contains(&r)) {
                        codes.push("target_not_allowed");
                    }
                    let holder = root.unwrap_or(self.account);
                    let first = writes.len();
                    for (target, value, data) in calls {
                        if d.managers.contains(target) {
                            codes.push("selector_not_allowed");
                        }
                        if (*target == holder || target.is_zero()) && holder != self.account {
                            codes.push("target_not_allowed");
                        }
                        // Only metered calls run as a delegator.
                        let metered = self.metered(chain, *target, data);
                        if !metered {
                            codes.push("selector_not_allowed");
                        }
                        starts.push(writes.len());
                        self.check_call(
                            chain,
                            Some(*target),
                            *value,
                            data,
                            holder,
                            &mut codes,
                            &mut charges,
                            &mut writes,
                        );
                    }
                    // It may revert: a set counts as added, a revocation as nothing.
                    for (_, w) in &mut writes[first..] {
                        if w.sets() {
                            *w = Write::Add(w.amount());
                        }
                    }
                }
                Place::Own { chain, pos: *nonce }
            }
            Req::Permit { token, spender, value, deadline, .. } => {
                self.check_permit(chain, *token, *spender, *value, *deadline, t, &mut codes, &mut charges, &mut writes);
                Place::Float { deadline: *deadline }
            }
            Req::Permit2 { contract, spender, details, sig_deadline, .. } => {
                for &(token, amount, expiration) in details {
                    let ctx = PermitCtx { chain, contract: *contract, token, spender: *spender, amount, t };
                    self.check_permit2_detail(&ctx, *sig_deadline, expiration, &mut codes, &mut charges, &mut writes);
                }
                Place::Float { deadline: *sig_deadline }
            }
            Req::Permit2Transfer { contract, spender, permitted, deadline, .. } => {
                for &(token, amount) in permitted {
                    let ctx = PermitCtx { chain, contract: *contract, token, spender: *spender, amount, t };
                    self.check_permit2_transfer(&ctx, *deadline, &mut codes, &mut charges, &mut writes);
                }
                Place::Float { deadline: *deadline }
            }
            // Never signed ([`Model::sign`] refuses it first); here for completeness.
            Req::Eip7702 { .. } => {
                codes.push(crate::AUTHORIZATION_DENIED);
                Place::Float { deadline: 0 }
            }
        };
        // 8. Spend limits and streams.
        for l in &p.limits {
            let Some(asset) = self.resolve(&l.asset) else { continue };
            let c = charges.get(&asset);
            if !c.is_zero() && self.spent(&asset, l.period, t).saturating_add(c) > l.max {
                codes.push("spend_cap");
            }
        }
        for s in &p.streams {
            let Some(asset) = self.resolve(&s.asset) else { continue };
            let c = charges.get(&asset);
            if c.is_zero() {
                continue;
            }
            let e = U256::from(t.saturating_sub(self.anchor));
            let accrued = s.rate.checked_mul(e).map_or(U256::MAX, |x| x / U256::from(s.every.max(1)));
            let available = s.max.min(s.initial.saturating_add(accrued));
            if self.spent(&asset, Period::Session, t).saturating_add(c) > available {
                codes.push("spend_cap");
            }
        }
        // USD value of the charged assets (RULES §3), for escalation.
        let mut priced: Vec<(Ledger, U256)> = vec![(Ledger::Native, charges.native)];
        priced.extend(charges.tokens.iter().map(|(a, v)| (Ledger::Token(*a), *v)));
        for (asset, amount) in priced {
            if amount.is_zero() {
                continue;
            }
            match self.price(chain, &asset) {
                Some((usd, dec)) => charges.usd = charges.usd.saturating_add(usd_of(amount, usd, dec)),
                None => charges.unpriced = true,
            }
        }
        // RULES §6: a transaction may be mined and write nothing when its gas limit, less
        // what its access list costs up front, is below approvals.revoke_gas (default
        // 100 000), when a call carries value, or when it sets an allowance to a non-zero
        // amount. A legacy transaction (and a redemption) has no access list.
        let revoke_gas = p.approvals.revoke_gas.unwrap_or(100_000);
        let upfront = match req {
            Req::Tx { access_list, .. } => crate::access_list_cost(access_list),
            _ => 0,
        };
        // Below it when the access list costs more than the whole gas limit too.
        let short_of_gas = |g: u64| u128::from(g) < u128::from(revoke_gas).saturating_add(upfront);
        let carries_value = match req {
            Req::Tx { value, .. } | Req::Legacy { value, .. } => !value.is_zero(),
            Req::Redeem { entries, .. } => entries.iter().flat_map(|e| &e.1).any(|c| !c.1.is_zero()),
            _ => false,
        };
        let sets_non_zero = writes.iter().any(|(_, w)| w.sets() && !w.amount().is_zero());
        // Only on chains whose gas limit is known to pay for execution alone does a gas
        // limit make a transaction certain (RULES §6).
        let l1_gas = crate::gas_uncertain(p, chain);
        let may_revert = matches!(req, Req::Tx { .. } | Req::Legacy { .. } | Req::Redeem { .. })
            && (l1_gas || gas.is_none_or(short_of_gas) || carries_value || sets_non_zero);
        // Just-in-time approvals over the request's calls, as the accounts that run them.
        let batch: Vec<(Address, Address, &[u8])> = match req {
            Req::Tx { to: Some(to), data, .. } | Req::Legacy { to: Some(to), data, .. } => {
                vec![(self.account, *to, &data[..])]
            }
            Req::UserOp { sender, calls, .. } => calls.iter().map(|(to, _, d)| (*sender, *to, &d[..])).collect(),
            Req::Redeem { entries, .. } => entries
                .iter()
                .flat_map(|(root, calls)| {
                    let holder = root.unwrap_or(self.account);
                    calls.iter().map(move |(to, _, d)| (holder, *to, &d[..]))
                })
                .collect(),
            _ => Vec::new(),
        };
        let jit_adds = self.check_jit(&batch, &starts, &mut codes);
        let item = Item { place, signed_at: t, writes, may_revert };
        // 9. The registry after this request.
        if !item.writes.is_empty() || !self.displaced(&item).is_empty() {
            match self.registry_check(&item, &jit_adds) {
                Some(found) => codes.extend(found),
                None => limit = true,
            }
        }
        codes.sort_unstable();
        codes.dedup();
        Eval { codes, limit, weight, charges, item }
    }

    /// RULES §5 for one call; `holder` owns the allowances it writes.
    #[allow(clippy::too_many_arguments)]
    fn check_call(
        &self,
        chain: u64,
        to: Option<Address>,
        value: U256,
        data: &[u8],
        holder: Address,
        codes: &mut Vec<&'static str>,
        charges: &mut Charges,
        writes: &mut Vec<(Key, Write)>,
    ) {
        let p = &self.policy;
        charges.native = charges.native.saturating_add(value);
        if p.max_value_per_call.is_some_and(|m| value > m) {
            codes.push("value_cap");
        }
        let Some(to) = to else {
            codes.push("target_not_allowed");
            if !value.is_zero() && p.recipients.is_some() {
                codes.push("recipient_not_allowed");
            }
            return;
        };
        if (1..=3).contains(&data.len()) {
            codes.push("selector_not_allowed");
        }
        let here = self.listing_here(chain, to).is_some();
        if !here && p.tokens.iter().any(|t| t.address == to) {
            codes.push("target_not_allowed");
        }
        let permit2 = self.is_permit2(to);
        let metered = if permit2 {
            abi::selector_of(data) == Some(abi::sel(abi::SIG_PERMIT2_APPROVE))
        } else {
            here && abi::is_metered(data)
        };
        codes.extend(self.allowlist(to, data, here || permit2, metered));
        let specific = p.calls.iter().any(|r| r.target == Some(to));
        if !value.is_zero() && !self.is_recipient(to) && !specific {
            codes.push("recipient_not_allowed");
        }
        if permit2 {
            if let Some(d) = abi::decode_permit2_approve(data) {
                self.permit2_approve(chain, to, holder, d, codes, charges, writes);
                return;
            }
        }
        let decoded = if here || abi::is_approval(data) { abi::decode_erc20(data) } else { None };
        let e = match decoded {
            None => return,
            Some(Err(())) => {
                codes.push("argument_rejected");
                return;
            }
            Some(Ok(e)) => e,
        };
        if here {
            charges.add_token(to, e.amount());
        }
        match e {
            Erc20::Transfer { to: r, .. } | Erc20::TransferFrom { to: r, .. } => {
                if here && !self.is_recipient(r) {
                    codes.push("recipient_not_allowed");
                }
            }
            Erc20::Approve { spender, amount } | Erc20::Increase { spender, added: amount } => {
                let is_approve = matches!(e, Erc20::Approve { .. });
                // Only `approve(spender, 0)` passes unconditionally.
                if !(is_approve && amount.is_zero()) {
                    self.approval_codes(chain, to, spender, amount, codes);
                }
                if here {
                    let key = Key { chain, holder, token: to, spender, kind: Kind::Erc20 };
                    writes.push((key, if is_approve { Write::Set(amount) } else { Write::Add(amount) }));
                }
            }
        }
    }

    /// Signed items that `item` would take the place of (same nonce; a permit floats and
    /// takes no place): only one of them and the request can be mined.
    fn displaced(&self, item: &Item) -> Vec<&Item> {
        if matches!(item.place, Place::Float { .. }) {
            return Vec::new();
        }
        self.registry.iter().filter(|i| i.place == item.place && !i.writes.is_empty()).collect()
    }

    /// Exposure ceiling and per-spender maximum for request `item` (RULES §6). `None`: the
    /// model cannot decide (too big to explore). A key is raised when its worst case with the
    /// request is above the same position without it: one of the items it displaces mined
    /// there (the worst), or, displacing none, a transaction that writes nothing. The ceiling
    /// binds every request but one that adds no state ([`adds_no_state`]).
    /// `jit_adds`: a just-in-time `increaseAllowance`'s write and its bound (RULES §5).
    fn registry_check(&self, item: &Item, jit_adds: &[(usize, U256)]) -> Option<Vec<&'static str>> {
        let total: usize = self.registry.iter().map(|i| i.writes.len()).sum::<usize>() + item.writes.len();
        if total > crate::MAX_WRITES {
            return None;
        }
        let silent = Item { writes: Vec::new(), may_revert: false, ..item.clone() };
        let displaced = self.displaced(item);
        let alternatives: Vec<&Item> = if displaced.is_empty() { vec![&silent] } else { displaced.clone() };
        let keys = registry::keys(self.registry.iter().chain(std::iter::once(item)));
        let mut codes = Vec::new();
        let mut with_sum = U256::ZERO;
        let mut unpriced = false;
        for key in &keys {
            let with = registry::worst(&self.registry, Some(item), key, item.signed_at)?;
            let mut without = U256::ZERO;
            let price = self.price(key.chain, &Ledger::Token(key.token));
            for a in &alternatives {
                without = without.max(registry::worst(&self.registry, Some(a), key, item.signed_at)?);
            }
            let raised_here = with > without;
            match price {
                Some((usd, dec)) => with_sum = with_sum.saturating_add(usd_of(with, usd, dec)),
                None => unpriced |= !with.is_zero(),
            }
            let adds = item.writes.iter().any(|(k, w)| k == key && w.adds());
            if (adds || raised_here) && self.caps(key.chain, key.token).iter().any(|c| with > *c) {
                codes.push("unlimited_approval");
            }
        }
        // A just-in-time `increaseAllowance` adds to what may already be outstanding at
        // worst just before it (the request's earlier writes included): together within the
        // bound.
        for &(wi, bound) in jit_adds {
            let Some(&(key, w)) = item.writes.get(wi) else { continue };
            let before = Item { writes: item.writes[..wi].to_vec(), may_revert: false, ..item.clone() };
            if registry::worst(&self.registry, Some(&before), &key, item.signed_at)?.saturating_add(w.amount()) > bound
            {
                codes.push("unlimited_approval");
            }
        }
        if let Some(ceiling) = self.policy.exposure_ceiling {
            if !adds_no_state(item, &displaced) && (unpriced || with_sum > ceiling) {
                codes.push("exposure_ceiling");
            }
        }
        Some(codes)
    }
}

/// RULES §6: a request is exempt from the ceiling when every state it makes possible was
/// possible without it — each of its outcomes (its writes; none, if it may revert) is
/// covered by an alternative at its position (an item signed there; none, if one of them
/// may revert or there is none), key by key ([`covers`]).
fn adds_no_state(item: &Item, displaced: &[&Item]) -> bool {
    let nothing: Vec<(Key, Write)> = Vec::new();
    let mut alternatives: Vec<&Vec<(Key, Write)>> = displaced.iter().map(|i| &i.writes).collect();
    if displaced.is_empty() || displaced.iter().any(|i| i.may_revert) {
        alternatives.push(&nothing);
    }
    let mut outcomes = vec![&item.writes];
    if item.may_revert {
        outcomes.push(&nothing);
    }
    outcomes.iter().all(|o| alternatives.iter().any(|a| covers(o, a)))
}

/// Writes `o` leave every key at most where `alt` leaves it, from any amount (RULES §6), key
/// by key: each key's writes folded to "the amount plus d" or "exactly c" — an ERC-20
/// allowance's; a zero written to any; a Permit2 allowance or signature transfer compared
/// only with the same writes.
fn covers(o: &[(Key, Write)], alt: &[(Key, Write)]) -> bool {
    if o == alt {
        return true;
    }
    let mut keys: Vec<Key> = o.iter().chain(alt).map(|(k, _)| *k).collect();
    keys.dedup();
    keys.iter().all(|k| match (fold(o, k), fold(alt, k)) {
        (Some((true, c)), _) if c.is_zero() => true,
        (Some((true, c)), Some((_, d))) => c <= d,
        (Some((false, c)), Some((false, d))) => c <= d,
        (Some((false, _)), Some((true, _))) => false,
        _ => {
            let of = |w: &[(Key, Write)]| w.iter().filter(|(j, _)| j == k).map(|(_, w)| *w).collect::<Vec<_>>();
            of(o) == of(alt)
        }
    })
}

/// One key's writes in `w`, folded: `(true, c)` leaves exactly `c`, `(false, d)` adds `d` to
/// what was there; `None` for a non-zero write of a Permit2 kind or with an end, or a sum
/// reaching 2^256 − 1.
fn fold(w: &[(Key, Write)], k: &Key) -> Option<(bool, U256)> {
    let mut e = (false, U256::ZERO);
    for (_, x) in w.iter().filter(|(j, _)| j == k) {
        let (v, lasting) = match *x {
            Write::Set(v) | Write::Add(v) => (v, matches!(k.kind, Kind::Erc20)),
            Write::SetUntil(v, _) | Write::AddUntil(v, _) => (v, false),
        };
        e = if x.sets() && v.is_zero() {
            (true, v)
        } else if v.is_zero() {
            e
        } else if !lasting {
            return None;
        } else if x.sets() {
            (true, v)
        } else {
            (e.0, e.1.checked_add(v).filter(|s| *s != U256::MAX)?)
        };
    }
    Some(e)
}
