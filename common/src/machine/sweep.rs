//! The revocation sweep (R-APP-6, RULES.md §6): `approve(spender, 0)` transactions from the
//! session's own address for approvals whose worst case is above 0.

use super::sweep_account;
use super::sweep_cancel::{self, Act};
use super::{Machine, Outcome, Signer};
use crate::allowance::view::{settled_by, view};
use crate::allowance::worst::worst;
use crate::allowance::{Key, Place};
use crate::audit::rec;
use crate::error::{Denial, ErrorCode};
use crate::policy::engine::check_gas_cost;
use crate::protocol::{AccountSweepTerms, SessionState, SweepReply, SweepSkip, SweepTerms, SweepTx};
use crate::tx::{Eip1559Request, TxRequest};
use alloy_primitives::{keccak256, U256};

/// Largest gas limit of one revocation in a sweep (an ERC-20 `approve` costs far less).
pub const SWEEP_MAX_GAS: u64 = crate::allowance::MAX_REVOKE_GAS;
/// Most chains one sweep may name.
pub const MAX_SWEEP_CHAINS: usize = 64;

/// Who asked for a sweep, and on what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SweptBy {
    /// Anyone: expired approvals, within the policy's caps.
    Anyone,
    /// The owner, whose signature over the terms was checked.
    Owner,
    /// The owner, on the session's credit ([`Machine::sweep_on_credit`]): the enclave's
    /// memory budget is short.
    OwnerOnCredit,
    /// The owner, on the session's credit because the registry had no room for the sweep.
    OwnerRegistryFull,
}

impl Machine {
    /// Whether approvals of the session's own address are outstanding and unsettled: their
    /// revocations still have to be signed with this session's key.
    pub fn has_sweepable(&self, t: u64) -> bool {
        let reg = &self.counters.allowances;
        reg.keys().any(|(k, _)| {
            k.holder == self.facts.address
                && k.kind.sweepable()
                && !worst(reg, k, t, None).is_zero()
                && settled_by(reg, k, t).is_none()
        })
    }

    /// Whether an approval a revocation could take back may be outstanding in some history
    /// (the session's own, or a smart account's it revokes with a user operation), settled or
    /// not. The enclave cannot see the chain: a revocation settles a key only once it is
    /// mined, whoever signed it may keep it to itself (the agent, or whoever asked for an
    /// unsigned sweep), and one laid above transactions the agent keeps is never mined while
    /// it keeps them — so while this holds, the key stays, able to sign nothing but
    /// revocations (reviews of 2026-12-05).
    pub fn may_hold(&self, t: u64) -> bool {
        let reg = &self.counters.allowances;
        reg.keys().any(|(k, _)| k.kind.sweepable() && !worst(reg, k, t, None).is_zero())
    }

    /// Sign revocations with the nonces and fees of `terms`, for
    /// * expired approvals, on anyone's request (a sweep only revokes): fees within the
    ///   policy's gas caps, gas cost within its gas cost limits, and nonces that replace no
    ///   transaction the agent signed;
    /// * every unsettled approval when the session is revoked, suspended or over;
    /// * with the owner's signature (`authed`), every outstanding approval, settled or not, at
    ///   the owner's nonces and fees; a revoked session's key is destroyed afterwards only
    ///   when no approval may be outstanding in any history ([`Machine::may_hold`]).
    ///
    /// Approvals held by a smart account (granted in user operations) cannot be revoked by a
    /// transaction from the session key; they are reported as skipped.
    pub fn sweep(
        &mut self,
        clock: u64,
        terms: &[SweepTerms],
        authed: bool,
        key: Option<&dyn Signer>,
    ) -> Outcome<SweepReply> {
        self.sweep_with_accounts(clock, terms, &[], authed, key)
    }

    /// [`Machine::sweep`], with user operations from the smart accounts `accounts` names
    /// for the approvals they hold (see `sweep_account`).
    pub fn sweep_with_accounts(
        &mut self,
        clock: u64,
        terms: &[SweepTerms],
        accounts: &[AccountSweepTerms],
        authed: bool,
        key: Option<&dyn Signer>,
    ) -> Outcome<SweepReply> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let by = if authed { SweptBy::Owner } else { SweptBy::Anyone };
        let r = self.sweep_at(t, terms, accounts, by, key, &mut out);
        // The owner's sweep the registry has no room for goes through on its session's
        // credit (as many writes as the approvals prepaid, theirs first), as when the
        // enclave's memory budget is short: a Permit2 cancellation is prepaid by nothing, so
        // an agent that filled the registry beside its credit left the owner's sweep of an
        // approval and a permit one write short, refused until the permit ended (a review of
        // 2026-12-06). A refused sweep changed nothing, so the second try starts afresh, and
        // its refusal, if any, says more than "full".
        if let Err(d) = &r {
            if authed && d.rule.as_deref() == Some("allowances") {
                let mut on_credit = Outcome::new(t);
                let r = self.sweep_at(t, terms, accounts, SweptBy::OwnerRegistryFull, key, &mut on_credit);
                return on_credit.done(r);
            }
        }
        out.done(r)
    }

    /// The owner's signed sweep ([`Machine::sweep_with_accounts`] with `authed`) when the
    /// enclave's memory budget has no room for it: it goes through only if it writes no more
    /// revocations than the session prepaid ([`crate::allowance::Registry::prepaid`]) and
    /// adds nothing else the budget would have to find — no chain the session has not signed
    /// a transaction on yet (its first takes room for the chain's positions), and no
    /// revocation in the place of anything but a revocation of the same key (which could
    /// bring a key it settled back into the holdings). What it adds is what was charged for
    /// it already, so the session's charge does not grow. Otherwise it is refused
    /// `rate_limited` (`enclave.memory_budget`), changing nothing.
    pub fn sweep_on_credit(
        &mut self,
        clock: u64,
        terms: &[SweepTerms],
        accounts: &[AccountSweepTerms],
        key: Option<&dyn Signer>,
    ) -> Outcome<SweepReply> {
        let t = self.tick(clock);
        let mut out = Outcome::new(t);
        let r = self.sweep_at(t, terms, accounts, SweptBy::OwnerOnCredit, key, &mut out);
        out.done(r)
    }

    fn sweep_at(
        &mut self,
        t: u64,
        terms: &[SweepTerms],
        accounts: &[AccountSweepTerms],
        by: SweptBy,
        key: Option<&dyn Signer>,
        out: &mut Outcome<SweepReply>,
    ) -> Result<SweepReply, Denial> {
        let (authed, on_credit) =
            (by != SweptBy::Anyone, matches!(by, SweptBy::OwnerOnCredit | SweptBy::OwnerRegistryFull));
        let session = self.facts.address;
        check_terms(terms)?;
        sweep_account::check_account_terms(accounts)?;
        let policy = self.policy.clone();
        if !authed {
            check_fees(&policy, terms)?;
        }
        if !authed && !accounts.is_empty() {
            // Review (issue 14): an account's nonce space is not the session's — other
            // signers fill it and any nonce key is valid — so an unauthenticated account sweep
            // could take the place of an operation the enclave never saw, or be asked for
            // again and again at fresh nonce keys. Only the owner asks for account sweeps.
            return Err(Denial::new(
                ErrorCode::Unauthenticated,
                "a smart-account sweep needs the owner's signature over its terms (bridle owner sweep --key)",
            ));
        }
        let everything = authed || self.state(t) != SessionState::Active;
        let reg = &self.counters.allowances;
        // With the nonce of the sweep that covers it, if one does, and what to sign for it.
        let mut chosen: Vec<(Option<u64>, Key, Vec<Act>)> = Vec::new();
        // Writes an unauthenticated sweep adds for keys a sweep already revokes: at most up to
        // half the registry, so the owner's sweep and the agent's revocations keep room.
        let mut bounded = 0usize;
        // Every write a sweep nobody signed adds, which must fit beside the revocations the
        // session prepaid for the owner's sweep: those never spend that credit, so taking its
        // room would leave the owner's sweep short (reviews of 2026-12-06: an agent filling
        // the registry beside its credit, then unsigned first revocations and fee bumps of
        // many keys, left the owner's sweep of 130 approvals three writes short for good).
        let mut planned = 0usize;
        // First revocations too: paid from the credit, they left the owner one sweep of its
        // two (a review of 2026-12-06: one unsigned sweep of 170 approvals of a revoked
        // session, then an owner's sweep the agent displaces, and no owner's sweep fitted).
        let beside_credit = |planned: usize, n: usize| reg.has_room(planned + n + reg.credit(), t);
        let mut account_keys: Vec<Key> = Vec::new();
        let mut skipped = Vec::new();
        for a in view(reg, t) {
            // Without the owner's signature a key a sweep already revokes is only re-signed at
            // a nonce that only sweeps used, at or below that sweep's (a fee bump): where
            // sweeps never settle (RULES.md §6) it would otherwise be swept again at every
            // fresh nonce, each paying gas. Re-signs are bounded by half the registry alone,
            // counted within the request — a count per nonce let re-signs nobody broadcast
            // freeze the host's own fee bumps (reviews of 5d39b59 and e7bd0a9).
            let due = a.outstanding() && (everything || a.state == crate::allowance::AllowanceState::Expired);
            let covered = a.swept_at_nonce.filter(|&n| reg.only_sweeps_at(a.chain_id, n));
            let room = |bounded: usize, n: usize| reg.has_room(crate::allowance::MAX_WRITES / 2 + bounded + n, t);
            // A key a sweep revoked last, whose sweep no longer covers it (the agent signed at
            // that nonce, or its range of write-less nonces took it in), is swept again at a
            // fresh nonce: a re-sign as well, bounded alike — uncounted, one approval let the
            // host and an agent taking the pending nonce fill the registry, and the owner's
            // sweep was refused for good (a review of 2026-12-06).
            let again = !authed && covered.is_none() && a.swept_at_nonce.is_some();
            let wanted = match covered {
                _ if authed => !a.amount.is_zero(),
                None => due,
                Some(_) => resigns(reg, &a, terms) && room(bounded, 1) && beside_credit(planned, 1),
            };
            if wanted && !authed && covered.is_some() {
                bounded += 1;
                planned += 1;
            }
            if !wanted {
                continue;
            }
            let k = Key { chain_id: a.chain_id, holder: a.holder, token: a.token, spender: a.spender, kind: a.kind };
            let skip = |reason: String| SweepSkip {
                chain_id: k.chain_id,
                token: k.token,
                spender: k.spender,
                holder: k.holder,
                reason,
            };
            if k.holder != session
                && k.kind.sweepable()
                && accounts.iter().any(|x| x.chain_id == k.chain_id && x.sender == k.holder)
            {
                account_keys.push(k);
            } else if k.holder != session {
                skipped.push(skip(format!(
                    "held by {}, not the session: revoke it from that account (a user operation from the smart account, or approve(spender, 0) in a delegation redemption)",
                    k.holder
                )));
            } else if !k.kind.sweepable() {
                skipped
                    .push(skip("a Permit2 signature transfer lapses at its deadline; approve cannot revoke it".into()));
            } else if !terms.iter().any(|x| x.chain_id == k.chain_id) {
                skipped.push(skip(format!("no nonce and fees were given for chain {}", k.chain_id)));
            } else {
                // A fee bump re-signs the revocation at its nonce (a cancellation before it
                // is bumped at its own, below); anything else is a fresh sweep: a Permit2
                // entry's permits are cancelled before it is revoked, on credit too (off the
                // slotted chains a revocation alone never settles a permit, and such an entry
                // prepaid for both: a review of 2026-12-06). A cancellation is never left out
                // of a sweep that revokes its entry: the key is skipped instead.
                let acts = match covered {
                    Some(_) if !authed => vec![Act::Revoke],
                    _ => sweep_cancel::acts(reg, &k),
                };
                if again {
                    if !room(bounded, acts.len()) || !beside_credit(planned, acts.len()) {
                        skipped.push(skip(format!(
                            "swept before and still outstanding; without the owner's signature it is swept again only while the registry is under half full ({} writes) and has room beside the revocations prepaid for the owner's sweep: the owner's sweep revokes it",
                            crate::allowance::MAX_WRITES / 2
                        )));
                        continue;
                    }
                    bounded += acts.len();
                    planned += acts.len();
                } else if !authed && covered.is_none() {
                    if !beside_credit(planned, acts.len()) {
                        skipped.push(skip(
                            "the registry has no room for its sweep beside the revocations prepaid for the owner's sweep: the owner's sweep revokes it".into(),
                        ));
                        continue;
                    }
                    planned += acts.len();
                }
                chosen.push((covered, k, acts));
            }
        }
        // On credit, revocations of grants that prepaid none (floating Permit2 authorities
        // that end) are signed only within what the rest leave of the credit, so the owner's
        // way out for the approvals that prepaid it stays open (a review of 2026-12-06).
        if on_credit {
            let paid: usize =
                chosen.iter().filter(|(_, k, _)| reg.last_grant_prepaid(k)).map(|(_, _, a)| a.len()).sum();
            // A smart account's revocations are written too, one per key (a review of
            // 2026-12-06: left out here, the permits took the credit they needed).
            let mut left = reg.prepaid_at(t).saturating_sub(paid + account_keys.len());
            chosen.retain(|(_, k, acts)| {
                if reg.last_grant_prepaid(k) {
                    return true;
                }
                if acts.len() <= left {
                    left -= acts.len();
                    return true;
                }
                skipped.push(SweepSkip {
                    chain_id: k.chain_id,
                    token: k.token,
                    spender: k.spender,
                    holder: k.holder,
                    reason:
                        "its grant prepaid no revocation, and the credit the approvals that did prepay leave is used up: it waits for room (a permit, or for its end)"
                            .into(),
                });
                false
            });
        }
        // A fee bump of the nonce the terms start at, when only one key's revocations sit
        // there: it is re-signed with them even when that key no longer needs sweeping (the
        // agent revoked it itself since) — otherwise no other key may take that nonce, and a
        // sweep nobody mined would block it, and the agent's transactions above it, for good
        // (a review of 2026-12-04). Bounded like every re-sign.
        if !authed {
            for x in terms {
                // A cancellation of one key's permits there is bumped alike.
                let (k, act) = match reg.sole_revocation_at(x.chain_id, x.nonce) {
                    Some(k) => (k, Act::Revoke),
                    None => match reg.sole_cancel_at(x.chain_id, x.nonce) {
                        Some(k) => (k, sweep_cancel::bump(reg, &k, x.chain_id, x.nonce)),
                        None => continue,
                    },
                };
                // Listed already for another nonce, it is laid there too (placed by that
                // nonce's order it would never come first here).
                let here = chosen.iter().any(|(n, c, _)| *c == k && *n == Some(x.nonce));
                if !here
                    && k.holder == session
                    && k.kind.sweepable()
                    && reg.has_room(crate::allowance::MAX_WRITES / 2 + bounded + 1, t)
                    && beside_credit(planned, 1)
                {
                    bounded += 1;
                    planned += 1;
                    chosen.push((Some(x.nonce), k, vec![act]));
                }
            }
        }
        // Nonces: an unauthenticated sweep never replaces what the agent signed. Keys a sweep
        // already covers come first, in the order of their sweeps' nonces (a fee bump tends
        // to lay each where its sweep was; not always — two keys may share a sweep's nonce);
        // past the first, every nonce below the next one that only sweeps did not use is
        // skipped, not refused (a refused re-sign left a sweep nobody broadcast in place for
        // good: review of the host's sweeper lanes).
        if !authed {
            chosen.sort_by_key(|(covered, _, _)| covered.unwrap_or(u64::MAX));
        }
        let chosen: Vec<(Key, Act)> =
            chosen.into_iter().flat_map(|(_, k, acts)| acts.into_iter().map(move |a| (k, a))).collect();
        let mut plan: Vec<(SweepTerms, u64, Key, Act)> = Vec::new();
        for x in terms {
            let mut nonce = x.nonce;
            // Above the next nonce no history reaches the revocation: a sweep there would only
            // stand in the way of the ones that can be mined (review of 5d39b59).
            if !authed && nonce > reg.next_nonce(x.chain_id) && chosen.iter().any(|(k, _)| k.chain_id == x.chain_id) {
                return Err(Denial::rule(
                    ErrorCode::ArgumentRejected,
                    "sweep.nonce",
                    format!(
                        "nonce {nonce} on chain {} is above the next one, {}: an unauthenticated sweep starts there (or re-signs a sweep's own nonce)",
                        x.chain_id,
                        reg.next_nonce(x.chain_id)
                    ),
                ));
            }
            let next = reg.next_nonce(x.chain_id);
            let mine = chosen.iter().any(|(k, _)| k.chain_id == x.chain_id);
            let open = if authed || !mine { Vec::new() } else { sweep_only_nonces(reg, x.chain_id) };
            let agents = |n: u64| n < next && open.binary_search(&n).is_err();
            // A nonce below the next one takes `k`'s revocation (or cancellation) only where
            // every sweep there does the same to `k` alone (a fee bump): a revocation of
            // another key there would displace one that requests signed since may rely on.
            let fits = |n: u64, k: &Key, a: Act| n >= next || a.only_at(reg, x.chain_id, n, k);
            for (k, a) in chosen.iter().filter(|(k, _)| k.chain_id == x.chain_id) {
                let (k, a) = (k, *a);
                if !authed && ((nonce != x.nonce && agents(nonce)) || (!agents(nonce) && !fits(nonce, k, a))) {
                    // The first nonce after it that only sweeps of `k` used, or the next one.
                    nonce = open.iter().copied().find(|&m| m > nonce && fits(m, k, a)).unwrap_or(next).min(next);
                }
                if !authed && agents(nonce) {
                    return Err(Denial::rule(
                        ErrorCode::ArgumentRejected,
                        "sweep.nonce",
                        format!(
                            "nonce {nonce} on chain {} holds a transaction the agent signed; an unauthenticated sweep starts at {} (or re-signs a sweep's own nonce)",
                            x.chain_id,
                            reg.next_nonce(x.chain_id)
                        ),
                    ));
                }
                plan.push((x.clone(), nonce, *k, a));
                nonce = nonce.saturating_add(1);
            }
        }
        // A revocation below `approvals.revoke_gas` may be mined, run out of gas and revoke
        // nothing (RULES.md §6): it would settle nothing, and it would spend the nonce.
        let floor = crate::allowance::revoke_gas(&policy);
        if let Some((x, _, _, _)) = plan.iter().find(|(x, _, _, _)| x.gas_limit < floor) {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "approvals.revoke_gas",
                format!(
                    "sweep gas limit {} per revocation on chain {} is below {floor}: a revocation that may run out of gas settles nothing",
                    x.gas_limit, x.chain_id
                ),
            ));
        }
        let (account_plans, account_cost) = sweep_account::plan(&policy, reg, accounts, &account_keys, authed)?;
        let gas_cost = plan
            .iter()
            .fold(U256::ZERO, |acc, (x, _, _, _)| {
                acc.saturating_add(U256::from(x.gas_limit).saturating_mul(U256::from(x.max_fee_per_gas)))
            })
            .saturating_add(account_cost);
        if !authed {
            check_gas_cost(&policy, &self.counters, &self.ctx(t), gas_cost)?;
        }
        // Every revocation is a write of its own; a user operation's, one per key.
        let writes = plan.len() + account_plans.iter().map(|p| p.keys.len()).sum::<usize>();
        if !reg.has_room(writes, t) {
            return Err(Denial::rule(
                ErrorCode::RateLimited,
                "allowances",
                "the allowance registry is full: the session can record no more revocations",
            ));
        }
        if on_credit {
            within_credit(reg, &plan, writes, by == SweptBy::OwnerOnCredit, t)?;
        }
        let key = key.ok_or_else(|| {
            Denial::new(
                ErrorCode::Revoked,
                "the session key is destroyed: this session can sign nothing, not even a revocation",
            )
        })?;
        let mut transactions = Vec::new();
        let mut signed = Vec::new();
        for (x, nonce, k, a) in &plan {
            // Every act planned has its call (a signature transfer is never planned, and a
            // cancellation is planned only within bounds).
            let Some((to, data)) = a.call(k) else { continue };
            let req = TxRequest::Eip1559(Eip1559Request {
                chain_id: x.chain_id,
                nonce: *nonce,
                max_fee_per_gas: x.max_fee_per_gas,
                max_priority_fee_per_gas: x.max_priority_fee_per_gas,
                gas_limit: x.gas_limit,
                to: Some(to),
                value: U256::ZERO,
                data,
                access_list: vec![],
            });
            let built = req.build().ok_or_else(|| Denial::new(ErrorCode::Internal, "sweep transaction not built"))?;
            let signing_hash = built.signing_hash();
            let sig = key
                .sign(&signing_hash)
                .map_err(|e| Denial::new(ErrorCode::Internal, format!("signing failed: {e}")))?;
            let raw = built.encode_signed(sig);
            signed.push(signing_hash);
            transactions.push(SweepTx {
                chain_id: x.chain_id,
                nonce: *nonce,
                token: k.token,
                spender: k.spender,
                kind: k.kind,
                to,
                hash: keccak256(&raw),
                raw_transaction: raw,
                invalidate_nonce: a.invalidates(),
            });
        }
        let user_operations = sweep_account::sign(&account_plans, key)?;
        for (p, u) in account_plans.iter().zip(&user_operations) {
            // Room was checked above.
            let _ = self
                .counters
                .allowances
                .record(p.place, t, sweep_account::grants(p), true, false, |_| (String::new(), 0, t));
            let seq = u64::try_from(p.op.nonce & U256::from(u64::MAX)).unwrap_or(u64::MAX);
            for k in &p.keys {
                out.records.push(rec::sweep(session, u.hash, p.op.chain_id, seq, k.token, k.spender));
            }
        }
        for (x, nonce, k, a) in &plan {
            if a.call(k).is_none() {
                continue; // not signed above
            }
            let g = a.grant(k);
            let place = Place::Own { chain_id: x.chain_id, nonce: *nonce };
            // On a chain that takes L1 data gas from the gas limit, even a revocation at the
            // floor may run out of gas: it settles nothing there (RULES.md §6).
            let may_revert = crate::allowance::gas_uncertain(&policy, x.chain_id);
            // Room was checked above.
            let _ = self.counters.allowances.record(place, t, vec![g], true, may_revert, |_| (String::new(), 0, t));
        }
        if authed {
            // What the owner's sweeps write uses up the session's credit, on credit or not:
            // the charge prepaid for them becomes the writes themselves.
            self.counters.allowances.spend_prepaid(writes);
        }
        self.counters.charge_gas(gas_cost, self.facts.anchor, t);
        if self.revoked && authed && !self.may_hold(t) {
            self.key_destroyed = true;
        }
        for (tx, signing_hash) in transactions.iter().zip(&signed) {
            out.records.push(rec::sweep(session, *signing_hash, tx.chain_id, tx.nonce, tx.token, tx.spender));
        }
        Ok(SweepReply {
            session,
            transactions,
            user_operations,
            skipped,
            key_destroyed: self.key_destroyed,
            receipt: None,
        })
    }
}

/// The nonces below the next one on `chain_id` that only sweeps used, sorted: where an
/// unauthenticated sweep may re-sign (every other nonce below the next holds, or may hold,
/// a transaction the agent signed). Registry-bounded.
fn sweep_only_nonces(reg: &crate::allowance::Registry, chain_id: u64) -> Vec<u64> {
    let next = reg.next_nonce(chain_id);
    let mut out: Vec<u64> = reg
        .items()
        .iter()
        .filter_map(|i| match i.place {
            Place::Own { chain_id: c, nonce } if c == chain_id && nonce < next => Some(nonce),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out.retain(|&n| reg.only_sweeps_at(chain_id, n));
    out
}

/// Whether an unauthenticated sweep re-signs `a`'s revocation (a fee bump): it is swept at
/// a nonce the terms start at or before, and that nonce holds only sweeps — so the new
/// revocation replaces a revocation, never a transaction the agent signed. Its fees are
/// checked against the policy's caps and its gas cost charged like any sweep's, so the
/// bumps a host can ask for are bounded by the session's gas limits (and cost the owner
/// nothing unless mined: one transaction per nonce is).
///
/// Bounded: every write for a key a sweep already revokes counts against half the registry
/// (see `sweep_at`) — so re-signing can never fill a session's registry and block its
/// approvals and revocations, and the owner's sweep keeps room.
fn resigns(reg: &crate::allowance::Registry, a: &crate::allowance::Allowance, terms: &[SweepTerms]) -> bool {
    let Some(n) = a.swept_at_nonce else { return false };
    !a.amount.is_zero()
        && a.kind.sweepable()
        && terms.iter().any(|x| {
            x.chain_id == a.chain_id
                && n >= x.nonce
                && x.nonce < reg.next_nonce(x.chain_id)
                && reg.only_sweeps_at(x.chain_id, x.nonce)
        })
}

/// The shape of sweep terms: few chains, each once, sane fees and gas.
pub fn check_terms(terms: &[SweepTerms]) -> Result<(), Denial> {
    if terms.len() > MAX_SWEEP_CHAINS {
        return Err(Denial::new(ErrorCode::TooLarge, format!("at most {MAX_SWEEP_CHAINS} chains per sweep")));
    }
    for (i, x) in terms.iter().enumerate() {
        if terms[..i].iter().any(|o| o.chain_id == x.chain_id) {
            return Err(Denial::malformed(format!("chain {} has two sets of terms", x.chain_id)));
        }
        // Its revocations take consecutive nonces from it, each below 2^64 − 1 (EIP-2681).
        if x.nonce > u64::MAX - 1 - crate::allowance::MAX_WRITES as u64 {
            return Err(Denial::malformed(format!("sweep nonce {} on chain {} is too large", x.nonce, x.chain_id)));
        }
        if x.max_priority_fee_per_gas > x.max_fee_per_gas {
            return Err(Denial::malformed("max_priority_fee_per_gas is above max_fee_per_gas"));
        }
        if x.gas_limit < 21_000 || x.gas_limit > SWEEP_MAX_GAS {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "sweep",
                format!("gas limit {} per revocation; it must be 21000 to {SWEEP_MAX_GAS}", x.gas_limit),
            ));
        }
    }
    Ok(())
}

/// Fees a sweep nobody signed may pay: within the policy's fee caps, and only if it has one.
pub fn check_fees(policy: &crate::policy::CompiledPolicy, terms: &[SweepTerms]) -> Result<(), Denial> {
    if policy.doc.gas.max_fee_per_gas.is_none() {
        return Err(Denial::rule(
            ErrorCode::GasCap,
            "gas.max_fee_per_gas",
            "the policy caps no fee, so only the owner may set a sweep's fees (sign the sweep)",
        ));
    }
    within_caps(policy, terms)
}

/// Fees within every cap the policy sets (none set: any).
pub fn within_caps(policy: &crate::policy::CompiledPolicy, terms: &[SweepTerms]) -> Result<(), Denial> {
    let g = &policy.doc.gas;
    for x in terms {
        if let Some(cap) = g.max_fee_per_gas.filter(|c| x.max_fee_per_gas > *c) {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "gas.max_fee_per_gas",
                format!("sweep fee {} wei per gas above the cap {cap}", x.max_fee_per_gas),
            ));
        }
        if g.max_priority_fee_per_gas.is_some_and(|c| x.max_priority_fee_per_gas > c) {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "gas.max_priority_fee_per_gas",
                "sweep priority fee above the cap",
            ));
        }
        if g.max_gas_limit.is_some_and(|c| x.gas_limit > c) {
            return Err(Denial::rule(ErrorCode::GasCap, "gas.max_gas_limit", "sweep gas limit above the cap"));
        }
    }
    Ok(())
}

/// Whether an owner's sweep on credit ([`Machine::sweep_on_credit`]) adds only what the
/// session prepaid: `writes` revocations within its credit, on chains whose positions the
/// registry holds already, at nonces where they displace nothing but revocations of the same
/// key. (A user operation never settles a key, so one laid in another's place raises no
/// worst case.)
fn within_credit(
    reg: &crate::allowance::Registry,
    plan: &[(SweepTerms, u64, Key, Act)],
    writes: usize,
    budget_short: bool,
    now: u64,
) -> Result<(), Denial> {
    let (rule, why) = match budget_short {
        true => ("enclave.memory_budget", "the enclave's memory budget is spent"),
        false => ("allowances", "the allowance registry is full"),
    };
    let budget = |reason: String| Denial::rule(ErrorCode::RateLimited, rule, format!("{why}: {reason}"));
    let prepaid = reg.prepaid_at(now);
    if writes > prepaid {
        return Err(budget(format!(
            "the owner's sweep goes through on the writes its session prepaid ({prepaid} left), and this one writes {writes}"
        )));
    }
    // Room for the chain's positions and for a displaced key's growth in the exposure book
    // is memory the credit never paid for; the registry's own room it did (a review of
    // 2026-12-06: a sweep the registry was too full for was refused for the memory budget's
    // conditions while the budget had room).
    if !budget_short {
        return Ok(());
    }
    if let Some((x, _, _, _)) = plan.iter().find(|(x, _, _, _)| reg.own_positions(x.chain_id).is_none()) {
        return Err(budget(format!(
            "the session signed no transaction on chain {} yet, and its first there needs room beyond the revocations it prepaid",
            x.chain_id
        )));
    }
    // A revocation laid where something else was signed may displace what settled another
    // key, whose worst case (and the exposure book's charge for it) would then grow
    // (a review of the credit): on credit only at fresh nonces, or as a fee bump of
    // revocations of that very key.
    let fresh =
        |x: &SweepTerms, n: u64, k: &Key, a: Act| n >= reg.next_nonce(x.chain_id) || a.only_at(reg, x.chain_id, n, k);
    if let Some((x, n, _, _)) = plan.iter().find(|(x, n, k, a)| !fresh(x, *n, k, *a)) {
        return Err(budget(format!(
            "on its session's credit the owner's sweep takes nonces from {} on chain {} (or bumps a revocation of the same key); nonce {n} holds something else",
            reg.next_nonce(x.chain_id),
            x.chain_id
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "sweep_credit_tests.rs"]
mod credit_tests;
