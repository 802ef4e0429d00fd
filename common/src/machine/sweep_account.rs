//! Smart-account sweeps (issue 14, AG-212 4.6): approvals a smart account granted in user
//! operations this session signed are revoked by one user operation from that account —
//! `approve(spender, 0)` (Permit2 `approve(token, spender, 0, 0)`) per approval, batched in
//! the account's own call format — signed by the session key the way the account checks it
//! (EntryPoint v0.7: `toEthSignedMessageHash(userOpHash)`; v0.8: the EIP-712 hash). The same
//! rules as transaction sweeps: anyone may ask for expired approvals (everything once the
//! session is revoked, suspended or over), at fees within the policy's caps and with the gas
//! cost charged; the owner's signature widens it.

use super::sweep::{within_caps, MAX_SWEEP_CHAINS, SWEEP_MAX_GAS};
use super::Signer;
use crate::allowance::{revocation_call, Grant, GrantOp, Key, Place, Registry, Via};
use crate::error::{Denial, ErrorCode};
use crate::policy::CompiledPolicy;
use crate::protocol::{AccountFormat, AccountSweepTerms, SweepTerms, SweepUserOp};
use crate::userop::{encode, EntryPointVersion, UserOperationRequest};
use alloy_primitives::{Address, Bytes, U256};

/// Most approvals one sweep user operation revokes.
pub const MAX_ACCOUNT_REVOKES: usize = 32;

/// The shape of account terms: few, each (chain, sender) once, sane gas and fees.
pub fn check_account_terms(accounts: &[AccountSweepTerms]) -> Result<(), Denial> {
    if accounts.len() > MAX_SWEEP_CHAINS {
        return Err(Denial::new(ErrorCode::TooLarge, format!("at most {MAX_SWEEP_CHAINS} accounts per sweep")));
    }
    for (i, a) in accounts.iter().enumerate() {
        if accounts[..i].iter().any(|o| o.chain_id == a.chain_id && o.sender == a.sender) {
            return Err(Denial::malformed(format!(
                "account {} on chain {} has two sets of terms",
                a.sender, a.chain_id
            )));
        }
        if a.max_priority_fee_per_gas > a.max_fee_per_gas {
            return Err(Denial::malformed("max_priority_fee_per_gas is above max_fee_per_gas"));
        }
        let most = U256::from(SWEEP_MAX_GAS) * U256::from(MAX_ACCOUNT_REVOKES as u64);
        if U256::from(a.call_gas_limit) > most
            || U256::from(a.verification_gas_limit) > most
            || a.pre_verification_gas > most
        {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "sweep",
                format!("a sweep user operation's gas limits are at most {most} each"),
            ));
        }
    }
    Ok(())
}

/// One planned account sweep.
pub(super) struct AccountPlan {
    pub op: UserOperationRequest,
    pub keys: Vec<Key>,
    pub place: Place,
}

/// Plan the user operations: `keys` are the approvals of smart accounts the sweep wants.
pub(super) fn plan(
    policy: &CompiledPolicy,
    reg: &Registry,
    accounts: &[AccountSweepTerms],
    keys: &[Key],
    authed: bool,
) -> Result<(Vec<AccountPlan>, U256), Denial> {
    let mut plans = Vec::new();
    let mut cost = U256::ZERO;
    for a in accounts {
        // At most MAX_ACCOUNT_REVOKES per operation: the rest are left for the next sweep.
        let mine: Vec<Key> = keys
            .iter()
            .filter(|k| k.chain_id == a.chain_id && k.holder == a.sender)
            .take(MAX_ACCOUNT_REVOKES)
            .copied()
            .collect();
        if mine.is_empty() {
            continue;
        }
        // Each revocation needs the policy's floor (RULES.md §6); one that runs out of gas
        // spends the account's nonce and the gas and revokes nothing.
        let floor = U256::from(crate::allowance::revoke_gas(policy)) * U256::from(mine.len() as u64);
        if U256::from(a.call_gas_limit) < floor {
            return Err(Denial::rule(
                ErrorCode::GasCap,
                "approvals.revoke_gas",
                format!(
                    "call gas limit {} of the sweep of account {} on chain {} is below {floor} ({} revocations at {} each)",
                    a.call_gas_limit,
                    a.sender,
                    a.chain_id,
                    mine.len(),
                    crate::allowance::revoke_gas(policy)
                ),
            ));
        }
        let calls: Vec<(Address, U256, Bytes)> =
            mine.iter().filter_map(revocation_call).map(|(to, data)| (to, U256::ZERO, data)).collect();
        let call_data = match a.format {
            AccountFormat::SimpleAccount => encode::simple_execute_batch(&calls),
            AccountFormat::SimpleAccountV08 => encode::simple_v08_execute_batch(&calls),
            AccountFormat::Erc7579 => encode::erc7579_batch(&calls),
        };
        let op = UserOperationRequest {
            chain_id: a.chain_id,
            entry_point: a.entry_point,
            entry_point_version: a.entry_point_version,
            sender: a.sender,
            nonce: a.nonce,
            factory: None,
            factory_data: Bytes::new(),
            init_code: None,
            call_data,
            call_gas_limit: a.call_gas_limit,
            verification_gas_limit: a.verification_gas_limit,
            pre_verification_gas: a.pre_verification_gas,
            max_fee_per_gas: a.max_fee_per_gas,
            max_priority_fee_per_gas: a.max_priority_fee_per_gas,
            paymaster: None,
            paymaster_verification_gas_limit: 0,
            paymaster_post_op_gas_limit: 0,
            paymaster_data: Bytes::new(),
        };
        let listed = match op.version() {
            EntryPointVersion::V07 => &policy.doc.user_operations.entry_points,
            EntryPointVersion::V08 => &policy.doc.user_operations.entry_points_v08,
        };
        if !listed.contains(&op.entry_point) {
            return Err(Denial::rule(
                ErrorCode::TargetNotAllowed,
                "user_operations.entry_points",
                format!("entry point {} is not in the policy: a sweep goes through a listed one", op.entry_point),
            ));
        }
        let gas = op.gas()?;
        let place = Place::user_operation(a.chain_id, a.entry_point, a.sender, a.nonce);
        // Within every fee cap the policy sets, even though the owner signed the terms (only
        // the owner may ask for an account sweep: see `Machine::sweep`); a policy that caps no
        // fee per gas leaves that to the owner's signed terms (refusing them left such a
        // policy's account approvals with no revocation the enclave would sign: a review of
        // 2026-12-07), its other caps still bind.
        {
            within_caps(
                policy,
                &[SweepTerms {
                    chain_id: a.chain_id,
                    nonce: 0,
                    max_fee_per_gas: a.max_fee_per_gas,
                    max_priority_fee_per_gas: a.max_priority_fee_per_gas,
                    gas_limit: gas.gas_limit,
                }],
            )?;
            // Never in place of an operation the agent signed that wrote approvals.
            if !authed && reg.items().iter().any(|i| i.place == place && !i.sweep) {
                return Err(Denial::rule(
                    ErrorCode::ArgumentRejected,
                    "sweep.nonce",
                    format!("nonce {} of account {} holds a user operation the agent signed", a.nonce, a.sender),
                ));
            }
        }
        cost = cost.saturating_add(U256::from(gas.gas_limit).saturating_mul(U256::from(a.max_fee_per_gas)));
        plans.push(AccountPlan { op, keys: mine, place });
    }
    Ok((plans, cost))
}

/// Sign the planned operations.
pub(super) fn sign(plans: &[AccountPlan], key: &dyn Signer) -> Result<Vec<SweepUserOp>, Denial> {
    let mut out = Vec::new();
    for p in plans {
        let hash = p.op.hash()?;
        let sig = key
            .sign(&p.op.signing_digest(&hash))
            .map_err(|e| Denial::new(ErrorCode::Internal, format!("signing failed: {e}")))?;
        out.push(SweepUserOp {
            user_operation: p.op.clone(),
            hash,
            signature: Bytes::copy_from_slice(&sig.as_bytes()),
            revokes: p.keys.iter().map(|k| (k.token, k.spender)).collect(),
        });
    }
    Ok(out)
}

/// The registry writes of a planned operation: every key it revokes set to 0 there.
pub(super) fn grants(p: &AccountPlan) -> Vec<Grant> {
    p.keys
        .iter()
        .map(|k| Grant {
            key: *k,
            op: GrantOp::Set(U256::ZERO),
            end: None,
            token_index: None,
            via: Via("sweep"),
            nonce: None,
        })
        .collect()
}
