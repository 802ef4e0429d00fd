//! Permits (RULES §5 "Permits", §6): EIP-2612 permits, Permit2's messages, and calls of a
//! Permit2 contract's `approve`.

use crate::abi::{self, u160_max};
use crate::check::{Charges, PERMIT2, PERMIT_RULE_CODES};
use crate::registry::{Key, Kind, Write};
use crate::Model;
use alloy_primitives::{Address, U256};
use bridle_common::policy::doc::PermitKind;

/// What a Permit2 message's check needs of one token it names.
pub(crate) struct PermitCtx {
    pub(crate) chain: u64,
    pub(crate) contract: Address,
    pub(crate) token: Address,
    pub(crate) spender: Address,
    pub(crate) amount: U256,
    /// Session time of the decision.
    pub(crate) t: u64,
}

impl Model {
    /// An EIP-2612 permit (owner = the session): RULES §5 "Permits".
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_permit(
        &self,
        chain: u64,
        token: Address,
        spender: Address,
        value: U256,
        deadline: u64,
        t: u64,
        codes: &mut Vec<&'static str>,
        charges: &mut Charges,
        writes: &mut Vec<(Key, Write)>,
    ) {
        let p = &self.policy;
        let here = self.listing_here(chain, token);
        // A deadline already past can never be used; one beyond every covering rule's
        // `max_deadline` is too long (RULES §5: `argument_rejected` both).
        if deadline < t {
            codes.push("argument_rejected");
        }
        let covering: Vec<_> = p
            .permits
            .iter()
            .filter(|r| r.kind == PermitKind::Eip2612)
            .filter(|r| here.is_some_and(|h| r.tokens.is_empty() || r.tokens.contains(&h.symbol)))
            .collect();
        match here {
            None => {
                codes.push("unlimited_approval");
                codes.extend_from_slice(PERMIT_RULE_CODES);
            }
            Some(_) if covering.is_empty() => codes.extend_from_slice(PERMIT_RULE_CODES),
            // The first rule covering the token decides (RULES §5 "Permits").
            Some(_) => {
                if covering.first().is_some_and(|r| deadline > t.saturating_add(r.max_deadline)) {
                    codes.push("argument_rejected");
                }
            }
        }
        // Permits: the same approval checks; only `approve(spender, 0)` is exempt, so a
        // permit of 0 is not.
        self.approval_codes(chain, token, spender, value, codes);
        if here.is_some() {
            charges.add_token(token, value);
            writes.push((Key { chain, holder: self.account, token, spender, kind: Kind::Erc20 }, Write::Set(value)));
        }
    }

    /// Whether `to` is a Permit2 contract: the canonical one, or one a `permit2` rule names
    /// (RULES §5).
    pub(crate) fn is_permit2(&self, to: Address) -> bool {
        to == PERMIT2 || self.policy.permits.iter().any(|r| r.kind == PermitKind::Permit2 && r.permit2 == Some(to))
    }

    /// A metered call (RULES §5, "Calls run as the account"): a plain value transfer, a
    /// metered function of a token listed on this chain, or Permit2's `approve`.
    pub(crate) fn metered(&self, chain: u64, to: Address, data: &[u8]) -> bool {
        data.is_empty()
            || (self.listing_here(chain, to).is_some() && abi::is_metered(data))
            || (self.is_permit2(to) && abi::selector_of(data) == Some(abi::sel(abi::SIG_PERMIT2_APPROVE)))
    }

    /// Permit2's `approve(token, spender, amount, expiration)` on contract `to`: an approval
    /// of `token` (kind `permit2`), checked as any approval (only an amount of 0 passes
    /// unconditionally, as `approve(spender, 0)` does); Permit2's `type(uint160).max` is
    /// unlimited. It ends at `expiration` (0: when it is mined, which the enclave cannot
    /// know, so never).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn permit2_approve(
        &self,
        chain: u64,
        to: Address,
        holder: Address,
        d: Result<abi::Permit2Approve, ()>,
        codes: &mut Vec<&'static str>,
        charges: &mut Charges,
        writes: &mut Vec<(Key, Write)>,
    ) {
        let Ok(d) = d else {
            codes.push("argument_rejected");
            return;
        };
        if d.amount >= u160_max() {
            codes.push("unlimited_approval");
        }
        if !d.amount.is_zero() {
            self.approval_codes(chain, d.token, d.spender, d.amount, codes);
        }
        if self.listing_here(chain, d.token).is_some() {
            charges.add_token(d.token, d.amount);
        }
        let key = Key { chain, holder, token: d.token, spender: d.spender, kind: Kind::Permit2(to) };
        let w = if d.expiration == 0 { Write::Set(d.amount) } else { Write::SetUntil(d.amount, d.expiration) };
        writes.push((key, w));
    }

    /// The `permit2` rule that decides a Permit2 message of `contract` for `token`: the
    /// first rule of that contract covering the token (every rule covers an unlisted
    /// token, which the approval checks refuse). `None` (with the codes pushed) when none.
    fn permit2_rule(&self, c: &PermitCtx, codes: &mut Vec<&'static str>) -> Option<u64> {
        let here = self.listing_here(c.chain, c.token);
        let rule = self
            .policy
            .permits
            .iter()
            .filter(|r| r.kind == PermitKind::Permit2 && r.permit2.unwrap_or(PERMIT2) == c.contract)
            .find(|r| here.is_none_or(|h| r.tokens.is_empty() || r.tokens.contains(&h.symbol)));
        if rule.is_none() {
            codes.extend_from_slice(PERMIT_RULE_CODES);
        }
        rule.map(|r| r.max_deadline)
    }

    /// A deadline (or expiration) later than `now + max_deadline`, or (unless
    /// `past_ok`) already past: `argument_rejected` (RULES §5 "Permits").
    fn permit_deadline(c: &PermitCtx, max: Option<u64>, d: u64, past_ok: bool, codes: &mut Vec<&'static str>) {
        if (!past_ok && d < c.t) || max.is_some_and(|m| d > c.t.saturating_add(m)) {
            codes.push("argument_rejected");
        }
    }

    /// One detail of a Permit2 `PermitSingle`/`PermitBatch`: sets the `permit2` key until
    /// its expiration (0: until the signature's deadline), floating until `sig_deadline`.
    pub(crate) fn check_permit2_detail(
        &self,
        c: &PermitCtx,
        sig_deadline: u64,
        expiration: u64,
        codes: &mut Vec<&'static str>,
        charges: &mut Charges,
        writes: &mut Vec<(Key, Write)>,
    ) {
        let max = self.permit2_rule(c, codes);
        if c.amount >= u160_max() {
            codes.push("unlimited_approval");
        }
        Self::permit_deadline(c, max, sig_deadline, false, codes);
        Self::permit_deadline(c, max, expiration, true, codes);
        self.approval_codes(c.chain, c.token, c.spender, c.amount, codes);
        if self.listing_here(c.chain, c.token).is_some() {
            charges.add_token(c.token, c.amount);
        }
        let end = if expiration == 0 { sig_deadline } else { expiration };
        let key = Key {
            chain: c.chain,
            holder: self.account,
            token: c.token,
            spender: c.spender,
            kind: Kind::Permit2(c.contract),
        };
        writes.push((key, Write::SetUntil(c.amount, end)));
    }

    /// One permitted token of a Permit2 `PermitTransferFrom`/`PermitBatchTransferFrom`: a
    /// one-shot authority (kind `signature_transfer`) adding its amount until `deadline`.
    pub(crate) fn check_permit2_transfer(
        &self,
        c: &PermitCtx,
        deadline: u64,
        codes: &mut Vec<&'static str>,
        charges: &mut Charges,
        writes: &mut Vec<(Key, Write)>,
    ) {
        let max = self.permit2_rule(c, codes);
        Self::permit_deadline(c, max, deadline, false, codes);
        self.approval_codes(c.chain, c.token, c.spender, c.amount, codes);
        if self.listing_here(c.chain, c.token).is_some() {
            charges.add_token(c.token, c.amount);
        }
        let key = Key {
            chain: c.chain,
            holder: self.account,
            token: c.token,
            spender: c.spender,
            kind: Kind::SignatureTransfer(c.contract),
        };
        writes.push((key, Write::AddUntil(c.amount, deadline)));
    }
}
