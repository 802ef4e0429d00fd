//! A sweep cancels a Permit2 allowance permit before revoking its entry (RULES.md §6): off
//! the slotted chains its deadline binds nothing, so without `invalidateNonces` a revoked
//! permit could follow its revocation, and its entry counted against the exposure ceiling
//! for the session's life.

use super::*;
use crate::allowance::{AllowanceState, MAX_PERMIT2_NONCE, PREPAID_PER_APPROVAL};
use crate::error::ErrorCode;
use crate::protocol::SweepTerms;

const PERMIT2: Address = crate::typed::PERMIT2;

fn session() -> Session {
    let extra = "[[permits]]\nkind = \"permit2\"\nmax_deadline = \"30m\"";
    Session::with(policy_on("[10]", extra))
}

/// A session on `chains` whose approvals last an hour, with Permit2 permits of up to
/// `max_deadline`.
fn with_lifetime(chains: &str, max_deadline: &str) -> Session {
    let extra = format!("lifetime = \"1h\"\n[[permits]]\nkind = \"permit2\"\nmax_deadline = \"{max_deadline}\"");
    Session::with(policy_on(chains, &extra))
}

/// 40 USDC to ROUTER through the canonical Permit2, at Permit2 nonce `nonce`.
fn permit_single(nonce: u64) -> SignPayload {
    permit_of_40(10, ROUTER, nonce, t0() + 600, t0() + 300)
}

/// A `PermitSingle` of 40 USDC on `chain` to `spender` at Permit2 `nonce`, expiring at
/// `expiration`, its signature good until `deadline`.
fn permit_of_40(chain: u64, spender: Address, nonce: u64, expiration: u64, deadline: u64) -> SignPayload {
    let td = serde_json::json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}],
            "PermitSingle": [{"name": "details", "type": "PermitDetails"}, {"name": "spender", "type": "address"},
                {"name": "sigDeadline", "type": "uint256"}],
            "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]},
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": chain, "verifyingContract": PERMIT2},
        "message": {"details": {"token": USDC, "amount": "40000000", "expiration": expiration, "nonce": nonce},
            "spender": spender, "sigDeadline": deadline.to_string()}
    });
    SignPayload::TypedData(td.to_string())
}

/// `approve(POOL, 40 USDC)` at `nonce` on chain 10: 40 + 40 is over the 60 USD ceiling
/// while the permit counts.
fn approve_pool(nonce: u64) -> SignPayload {
    tx_on(10, nonce, approveCall { spender: POOL, amount: usdc(40) }.abi_encode(), 100_000, vec![])
}

fn terms(nonce: u64) -> [SweepTerms; 1] {
    [SweepTerms {
        chain_id: 10,
        nonce,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
    }]
}

alloy_sol_types::sol! {
    function invalidateNonces(address token, address spender, uint48 newNonce);
}

#[test]
fn an_owner_sweep_cancels_a_permit2_permit_before_revoking_it() {
    let mut s = session();
    s.ask(t0() + 10, permit_single(0)).expect("the permit");
    let d = s.ask(t0() + 11, approve_pool(0)).unwrap_err();
    assert_eq!(d.code, ErrorCode::ExposureCeiling, "{d}");
    // The owner's sweep: invalidateNonces(USDC, ROUTER, 2) at nonce 0 — Permit2's nonce is
    // 1 at most (0, or 1 once the permit is used), and must grow — then the revocation.
    let r = s.m.sweep(t0() + 20, &terms(0), true, Some(&Key)).result.expect("swept");
    let got: Vec<(u64, Option<u64>)> = r.transactions.iter().map(|t| (t.nonce, t.invalidate_nonce)).collect();
    assert_eq!(got, vec![(0, Some(2)), (1, None)]);
    let cancel = &r.transactions[0];
    assert_eq!(cancel.to, PERMIT2);
    let env = <alloy_consensus::TxEnvelope as alloy_eips::eip2718::Decodable2718>::decode_2718(
        &mut &cancel.raw_transaction[..],
    )
    .unwrap();
    let call = invalidateNoncesCall::abi_decode(alloy_consensus::Transaction::input(&env)).unwrap();
    assert_eq!((call.token, call.spender, u64::try_from(call.newNonce).unwrap()), (USDC, ROUTER, 2));
    let view = crate::allowance::view::view(&s.m.counters().allowances, t0() + 21);
    let e = view.iter().find(|a| a.spender == ROUTER).unwrap();
    assert_eq!((e.state, e.cancelled_at_nonce, e.swept_at_nonce), (AllowanceState::Swept, Some(0), Some(1)), "{e:?}");
    // A transaction after both can only be mined once they are: the permit is gone.
    s.ask(t0() + 22, approve_pool(2)).expect("the permit no longer counts");
}

#[test]
fn a_permit_signed_after_the_cancellation_still_counts() {
    let mut s = session();
    s.ask(t0() + 10, permit_single(0)).expect("the permit");
    s.m.sweep(t0() + 20, &terms(0), true, Some(&Key)).result.expect("swept");
    // Permit2's nonce is 2 once the cancellation is mined: a permit at 1 can never be used
    // after it, one at 2 can. (The ROUTER entry's worst case with a transaction at nonce 2.)
    let router = crate::allowance::Key {
        chain_id: 10,
        holder: SESSION,
        token: USDC,
        spender: ROUTER,
        kind: crate::allowance::AllowanceKind::Permit2 { contract: PERMIT2 },
    };
    let at2 = |s: &Session| {
        let req = crate::allowance::worst::Request {
            place: crate::allowance::Place::Own { chain_id: 10, nonce: 2 },
            grants: &[],
            may_revert: false,
        };
        crate::allowance::worst::worst(&s.m.counters().allowances, &router, t0() + 30, Some(req))
    };
    s.ask(t0() + 21, permit_single(1)).expect("a permit at a cancelled nonce");
    assert_eq!(at2(&s), U256::ZERO);
    s.ask(t0() + 22, permit_single(2)).expect("a new permit");
    assert_eq!(at2(&s), usdc(40));
    let d = s.ask(t0() + 23, approve_pool(2)).unwrap_err();
    assert_eq!(d.code, ErrorCode::ExposureCeiling, "{d}");
    // The next sweep cancels below 4 (Permit2's nonce is 3 at most).
    let r = s.m.sweep(t0() + 30, &terms(2), true, Some(&Key)).result.expect("swept");
    assert_eq!(r.transactions[0].invalidate_nonce, Some(4), "{r:?}");
    s.ask(t0() + 31, approve_pool(4)).expect("every permit cancelled");
}

#[test]
fn a_stuck_cancellation_is_bumped_at_its_own_nonce() {
    let mut s = session();
    s.ask(t0() + 10, permit_single(0)).expect("the permit");
    s.m.sweep(t0() + 20, &terms(0), true, Some(&Key)).result.expect("swept");
    // A host re-signs from the cancellation's nonce (no owner signature): the cancellation
    // there again, and the revocation at its own.
    let r = s.m.sweep(t0() + 40, &terms(0), false, Some(&Key)).result.expect("bumped");
    let got: Vec<(u64, Option<u64>)> = r.transactions.iter().map(|t| (t.nonce, t.invalidate_nonce)).collect();
    assert_eq!(got, vec![(0, Some(3)), (1, None)]);
    s.ask(t0() + 41, approve_pool(2)).expect("still settled: every alternative at 0 cancels nonce 0");
}

#[test]
fn a_permit2_nonce_past_what_a_sweep_can_cancel_is_refused() {
    let mut s = session();
    let d = s.ask(t0() + 10, permit_single(MAX_PERMIT2_NONCE + 1)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ArgumentRejected, Some("permits[0]")), "{d}");
    assert!(d.reason.contains("could not cancel"), "{d}");
    s.ask(t0() + 11, permit_single(MAX_PERMIT2_NONCE)).expect("at the bound");
}

/// The Permit2 form of `sweep_displaced` (a review of 2026-12-06): the agent signs at the
/// nonce of a sweep's revocation, so the entry is swept again — its cancellation too, where
/// one is still needed — and every such write counts with the re-signs, within half the
/// registry; the owner's signed sweep still revokes the entry after.
#[test]
fn a_displaced_permit2_sweep_is_swept_again_within_half_the_registry() {
    let mut s = with_lifetime("[10]", "30m");
    s.ask(t0() + 10, permit_single(0)).expect("the permit");
    let transfer =
        |nonce| tx_on(10, nonce, transferCall { to: ALICE, amount: U256::from(1) }.abi_encode(), 100_000, vec![]);
    let mut at = t0() + 3_700; // past the approvals' lifetime: anyone may have it swept
    let (mut rounds, mut unauthenticated) = (0, 0);
    loop {
        let next = s.m.counters().allowances.next_nonce(10);
        let last = match s.m.sweep(at, &terms(next), false, Some(&Key)).result {
            Ok(r) if !r.transactions.is_empty() => {
                unauthenticated += r.transactions.len();
                r.transactions.last().map(|t| t.nonce).unwrap()
            }
            _ => break,
        };
        assert!(rounds < crate::allowance::MAX_WRITES, "swept {unauthenticated} times and counting");
        s.ask(at + 1, transfer(last)).expect("the agent's transfer at the revocation's nonce");
        (at, rounds) = (at + 2, rounds + 1);
    }
    assert!(rounds > 1, "the first sweep and its re-sweeps are allowed: {rounds}");
    assert!(unauthenticated <= crate::allowance::MAX_WRITES / 2, "{unauthenticated} unauthenticated writes");
    let next = s.m.counters().allowances.next_nonce(10);
    let r = s.m.sweep(at, &terms(next), true, Some(&Key)).result.expect("the owner's sweep");
    assert!(r.transactions.iter().any(|t| t.spender == ROUTER && t.invalidate_nonce.is_none()), "{r:?}");
}

/// A `PermitSingle` of 40 USDC to POOL on chain 1 at Permit2 nonce 0, for 20 days.
fn permit_to_pool_on_1() -> SignPayload {
    permit_to_pool_on_1_until(0, t0() + 20 * 86_400)
}

/// A `PermitSingle` of 40 USDC to POOL on chain 1 at Permit2 `nonce`, until `until`.
fn permit_to_pool_on_1_until(nonce: u64, until: u64) -> SignPayload {
    permit_of_40(1, POOL, nonce, until, until)
}

/// The agent approves ROUTER (prepaying two revocations), signs a permit to POOL, and fills
/// the registry beside its credit; returns the session and its next nonce.
fn full_beside_credit() -> (Session, u64) {
    let mut s = with_lifetime("[1]", "30d");
    let approve =
        |nonce, sp, n| tx_at(nonce, approveCall { spender: sp, amount: usdc(n) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, approve(0, ROUTER, 5)).expect("ROUTER prepays two revocations");
    s.ask(t0() + 11, permit_to_pool_on_1()).expect("the permit");
    let nonce = s.fill_beside_credit(1, 1, t0() + 12);
    assert_eq!(s.m.counters().allowances.prepaid(), PREPAID_PER_APPROVAL, "full beside ROUTER's credit");
    (s, nonce)
}

/// A review of 2026-12-06: a Permit2 cancellation is prepaid by nothing, and neither is the
/// revocation of a permit the registry forgets once it ends. The agent approved ROUTER, signed
/// a permit to POOL and filled the registry beside its credit; the owner's sweep (ROUTER's
/// revocation, the permit's cancellation and revocation) was one write short and refused
/// until the permit ended, 20 days on, ROUTER's approval with it; and an unsigned sweep of
/// both entries took the last writes first. Now the owner's sweep goes through on credit
/// when the registry is full — the approvals that prepaid first, the permit waiting for room
/// or its end (a revocation alone would not settle it before its deadline) — and an
/// unsigned sweep's unprepaid writes count with the re-signs, within half the registry.
#[test]
fn the_owners_sweep_is_never_a_cancellation_short() {
    let at = t0() + 3_700; // both entries have outlived `approvals.lifetime`
    let (mut s, next) = full_beside_credit();
    let r = s.m.sweep(at, &[super::free_terms(1, next)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.iter().map(|t| t.spender).collect::<Vec<_>>(), vec![ROUTER], "{r:?}");
    assert!(r.skipped.iter().any(|x| x.spender == POOL), "{r:?}");

    // First an unsigned sweep: nothing fits beside the credit kept for the owner's sweep
    // (an unsigned sweep never spends it: the owner keeps its two sweeps of each approval),
    // so it signs nothing and says why; the owner's sweep then revokes ROUTER on credit,
    // and the permit waits.
    let (mut s, next) = full_beside_credit();
    let r = s.m.sweep(at, &[super::free_terms(1, next)], false, Some(&Key)).result.expect("an unsigned sweep");
    assert!(r.transactions.is_empty(), "{r:?}");
    assert!(r.skipped.iter().all(|x| x.reason.contains("beside the revocations prepaid")), "{r:?}");
    let reg = s.m.counters().allowances.clone();
    assert_eq!((reg.credit(), reg.prepaid()), (2, 2), "the credit's room kept");
    let r = s.m.sweep(at + 1, &[super::free_terms(1, next)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.iter().map(|t| t.spender).collect::<Vec<_>>(), vec![ROUTER], "{r:?}");
    assert!(r.skipped.iter().any(|x| x.spender == POOL), "{r:?}");
}

/// Off the slotted chains a permit never ends, so it prepaid two writes: the review of the
/// fix above found a sweep on credit, and an unsigned sweep past half the registry, signed
/// its revocation without its cancellation — which settles nothing there, and spent the
/// credit the cancellation needed. A cancellation is never left out: an unsigned sweep
/// without room skips the entry, and the owner's sweep cancels and revokes it.
#[test]
fn a_cancellation_is_never_left_out_of_a_sweep() {
    let mut s = with_lifetime("[10]", "30m");
    s.ask(t0() + 10, permit_single(0)).expect("the permit");
    let nonce = s.fill_beside_credit(10, 0, t0() + 11);
    let at = t0() + 3_700;
    let r = s.m.sweep(at, &terms(nonce), false, Some(&Key)).result.expect("an unsigned sweep");
    assert!(r.transactions.is_empty(), "{r:?}");
    assert!(r.skipped.iter().any(|x| x.spender == ROUTER), "{r:?}");
    let r = s.m.sweep(at + 1, &terms(nonce), true, Some(&Key)).result.expect("the owner's sweep");
    let got: Vec<(Address, Option<u64>)> = r.transactions.iter().map(|t| (t.spender, t.invalidate_nonce)).collect();
    assert_eq!(got, vec![(ROUTER, Some(2)), (ROUTER, None)], "cancelled, then revoked: {r:?}");
}

/// `approve(POOL, 0)` at `nonce` on chain 10.
fn approve_pool_zero(nonce: u64) -> SignPayload {
    tx_on(10, nonce, approveCall { spender: POOL, amount: U256::ZERO }.abi_encode(), 100_000, vec![])
}

/// A review of 2026-12-06: permits that had ended but were not forgotten yet counted as free
/// room for an unsigned sweep, whose record did not forget them; the registry ended full
/// with the credit's room gone, and the owner's sweep of ROUTER was refused (0 prepaid
/// left) until the 20-day permit ended. A sweep's record now forgets ended permits beside
/// the stored credit, and the owner's credit is measured once they are forgotten.
#[test]
fn ended_permits_never_lend_the_credits_room() {
    let mut s = with_lifetime("[1]", "30d");
    let approve =
        |nonce, sp, n| tx_at(nonce, approveCall { spender: sp, amount: usdc(n) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, permit_to_pool_on_1()).expect("the 20-day permit");
    s.ask(t0() + 11, permit_to_pool_on_1_until(1, t0() + 300)).expect("a short permit");
    s.ask(t0() + 12, permit_to_pool_on_1_until(2, t0() + 300)).expect("another");
    s.ask(t0() + 200, approve(0, ROUTER, 5)).expect("ROUTER prepays two revocations");
    s.fill_beside_credit(1, 1, t0() + 201);
    // The 20-day permit's entry is due (past `approvals.lifetime`), ROUTER's not yet; the
    // short permits have ended and are not forgotten yet.
    let at = t0() + 3_700;
    let next = s.m.counters().allowances.next_nonce(1);
    s.m.sweep(at, &[super::free_terms(1, next)], false, Some(&Key)).result.expect("an unsigned sweep");
    let reg = s.m.counters().allowances.clone();
    assert_eq!(reg.prepaid(), reg.credit(), "the credit's room is whole");
    let next = reg.next_nonce(1);
    let r = s.m.sweep(at + 1, &[super::free_terms(1, next)], true, Some(&Key)).result.expect("the owner's sweep");
    assert!(r.transactions.iter().any(|t| t.spender == ROUTER), "{r:?}");
}

/// A review of 2026-12-06: an unsigned first revocation of a Permit2 entry with a live permit
/// off the slotted chains was paid from the permit's credit, but the owner's sweep of that
/// entry must cancel and revoke again (two writes), so it was refused for good once the
/// registry was full. An entry that needs a cancellation is never paid from credit: its
/// unsigned sweep must fit beside it.
#[test]
fn an_unsigned_sweep_leaves_the_owners_cancellation_its_credit() {
    let mut s = with_lifetime("[10]", "30m");
    s.ask(t0() + 10, permit_single(0)).expect("the permit: never forgotten on chain 10, prepays 2");
    let mut nonce = 0;
    // Fill to one write free beside the credit.
    while s.m.counters().allowances.has_room(2 + PREPAID_PER_APPROVAL, t0() + 11) {
        s.ask(t0() + 11, approve_pool_zero(nonce)).expect("a zero approval");
        nonce += 1;
    }
    let at = t0() + 3_700;
    let r = s.m.sweep(at, &terms(nonce), false, Some(&Key)).result.expect("an unsigned sweep");
    assert!(r.transactions.is_empty(), "{r:?}");
    assert!(r.skipped.iter().any(|x| x.spender == ROUTER), "{r:?}");
    let r = s.m.sweep(at + 1, &terms(nonce), true, Some(&Key)).result.expect("the owner's sweep");
    let got: Vec<(Address, Option<u64>)> = r.transactions.iter().map(|t| (t.spender, t.invalidate_nonce)).collect();
    assert_eq!(got, vec![(ROUTER, Some(2)), (ROUTER, None)], "cancelled, then revoked: {r:?}");
}
