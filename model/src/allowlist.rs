//! The allowlist (RULES §5): which `[[calls]]` entry admits a call, argument rules
//! included.

use crate::abi;
use crate::args;
use crate::Model;
use alloy_primitives::Address;
use bridle_common::policy::doc::CallRule;

impl Model {
    /// The allowlist (RULES §5): no codes when some entry admits the call. `listed_here`:
    /// a token listed on this chain or a Permit2 contract, whose functions other than the
    /// `metered` ones pass only when a rule for it names them.
    pub(crate) fn allowlist(&self, to: Address, data: &[u8], listed_here: bool, metered: bool) -> Vec<&'static str> {
        let sel = abi::selector_of(data);
        // A plain value transfer is not a function: it passes `*`, `receive()` and the
        // wildcard on any target, listed tokens included.
        let plain = data.is_empty();
        // Through a wildcard: an unlisted contract's token-moving functions, any contract's
        // account-executing ones, and any function of an account the session signs user
        // operations for.
        let own_account = self.policy.user_operations.senders.contains(&to);
        let moving = !listed_here
            && !plain
            && (sel.is_some_and(|s| abi::is_token_moving(s) || abi::is_account_executing(s)) || own_account);
        let specific: Vec<&CallRule> = self.policy.calls.iter().filter(|r| r.target == Some(to)).collect();
        let wild: Vec<&CallRule> = self.policy.calls.iter().filter(|r| r.target.is_none()).collect();
        let mut blocked_moving = false;
        let mut arg_failed = false;
        let who = args::Parties { owner: self.owner, account: self.account };
        let rules = specific.iter().map(|r| (*r, false)).chain(wild.iter().map(|r| (*r, true)));
        for (rule, via_wild) in rules {
            for f in &rule.functions {
                let sig = f.signature.trim();
                let star = sig == "*";
                let matches = if star {
                    true
                } else if abi::canonical(sig).as_deref() == Some("receive()") {
                    data.is_empty()
                } else {
                    sel.is_some() && abi::selector(sig) == sel
                };
                if !matches {
                    continue;
                }
                // A listed token's other functions pass only when a rule for it names them.
                let named = !star && !via_wild;
                if listed_here && !metered && !plain && !named {
                    continue;
                }
                // `*` never covers, on a contract not listed, an approval RULES §5 names.
                if star && !via_wild && !listed_here && !plain && sel.is_some_and(abi::is_approving) {
                    continue;
                }
                if via_wild && moving {
                    blocked_moving = true;
                    continue;
                }
                // RULES §5 "Arguments": the entry's argument rules must all hold.
                if !args::entry_holds(f, data, who) {
                    arg_failed = true;
                    continue;
                }
                return Vec::new();
            }
        }
        let mut codes = Vec::new();
        if arg_failed {
            // A matching entry whose arguments fail (AMBIGUITIES "Argument rules": with a
            // blocked wildcard entry besides, either code).
            codes.push("argument_rejected");
            if !blocked_moving {
                return codes;
            }
        }
        codes.extend(self.no_entry_codes(blocked_moving, specific.is_empty(), wild.is_empty()));
        codes
    }

    /// The codes of a call no entry admits (RULES §5).
    fn no_entry_codes(&self, blocked_moving: bool, no_specific: bool, no_wild: bool) -> Vec<&'static str> {
        if blocked_moving {
            if no_specific {
                vec!["target_not_allowed"]
            } else {
                vec!["target_not_allowed", "selector_not_allowed"]
            }
        } else if no_specific && no_wild {
            vec!["target_not_allowed"]
        } else {
            vec!["selector_not_allowed"]
        }
    }
}
