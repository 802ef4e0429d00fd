//! A sweep displaced at its nonce, again and again (a review of 2026-12-06): unauthenticated
//! writes for a key a sweep already revoked stay within half the registry, however the key
//! came to need sweeping again, so the owner's signed sweep keeps its room.

use super::*;
use crate::allowance::MAX_WRITES;

/// The host sweeps an expired approval at the next nonce and never broadcasts it; the agent
/// (an honest client taking the node's pending nonce does this by itself) signs a transfer
/// at that nonce, which writes nothing and displaces the sweep; the key is due again. Each
/// round added one write, counted nowhere, until the registry was full: the owner's sweep
/// was then refused (`allowances`) and the approval could never be revoked through Bridle.
#[test]
fn a_sweep_displaced_again_and_again_is_resigned_within_half_the_registry() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let approve = approveCall { spender: ROUTER, amount: usdc(5) }.abi_encode();
    s.ask(t0() + 10, tx_at(0, approve, 200_000, vec![])).expect("approve");
    let transfer = || transferCall { to: ALICE, amount: U256::from(1) }.abi_encode();
    let mut at = t0() + 3_700; // past the approval's lifetime: anyone may have it swept
    let (mut rounds, mut unauthenticated) = (0, 0);
    loop {
        let next = s.m.counters().allowances.next_nonce(1);
        match s.m.sweep(at, &[free_terms(1, next)], false, Some(&Key)).result {
            Ok(r) if !r.transactions.is_empty() => unauthenticated += r.transactions.len(),
            _ => break,
        }
        assert!(rounds < MAX_WRITES, "swept {unauthenticated} times and counting");
        s.ask(at + 1, tx_at(next, transfer(), 100_000, vec![])).expect("the agent's transfer at the sweep's nonce");
        (at, rounds) = (at + 2, rounds + 1);
    }
    assert!(rounds > 1, "the first sweep and its re-sweeps are allowed: {rounds}");
    assert!(unauthenticated <= MAX_WRITES / 2, "{unauthenticated} unauthenticated writes");
    // The approval is still outstanding: the owner's signed sweep revokes it.
    let next = s.m.counters().allowances.next_nonce(1);
    let r = s.m.sweep(at, &[free_terms(1, next)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(next, ROUTER)]);
}

/// A review of 2026-12-06: an unsigned sweep's first revocation of an approval counted as
/// prepaid even after something had revoked it since (the owner's sweep, displaced by the
/// agent's transfer at its nonce; then the agent's own revocation, with too little gas to
/// settle anything). The agent then filled the registry beside the one credit left, an
/// unsigned sweep took the last write, and the owner's sweep was refused, on credit too,
/// with ROUTER's approval live. A revocation is prepaid only while the approval is the
/// key's latest write.
#[test]
fn a_revoked_approvals_credit_is_not_spent_twice() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let approve =
        |nonce, sp, n, gas| tx_at(nonce, approveCall { spender: sp, amount: usdc(n) }.abi_encode(), gas, vec![]);
    s.ask(t0() + 10, approve(0, ROUTER, 5, 200_000)).expect("approve");
    let r = s.m.sweep(t0() + 20, &[free_terms(1, 1)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.len(), 1);
    let transfer = transferCall { to: ALICE, amount: U256::from(1) }.abi_encode();
    s.ask(t0() + 21, tx_at(1, transfer, 100_000, vec![])).expect("the agent's transfer displaces it");
    s.ask(t0() + 22, approve(2, ROUTER, 0, 30_000)).expect("a revocation that may run out of gas");
    let nonce = s.fill_beside_credit(1, 3, t0() + 23);
    let at = t0() + 3_700;
    let r = s.m.sweep(at, &[free_terms(1, nonce)], false, Some(&Key)).result.expect("an unsigned sweep");
    assert!(r.transactions.is_empty(), "{r:?}");
    let r = s.m.sweep(at + 1, &[free_terms(1, nonce)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(nonce, ROUTER)]);
}

/// A review of 2026-12-06: an unsigned sweep that paid a first revocation from the credit
/// left the owner one sweep of the two each approval prepays; once the agent displaced it,
/// no owner's sweep fitted. Unsigned sweeps never spend the credit: after one, the owner's
/// sweep, displaced by the agent, is signed again.
#[test]
fn the_owner_keeps_two_sweeps_of_each_approval() {
    let mut s = Session::with(policy_on("[1]", "lifetime = \"1h\""));
    let approve =
        |nonce, sp, n| tx_at(nonce, approveCall { spender: sp, amount: usdc(n) }.abi_encode(), 200_000, vec![]);
    s.ask(t0() + 10, approve(0, ROUTER, 5)).expect("ROUTER prepays two revocations");
    let nonce = s.fill_beside_credit(1, 1, t0() + 11);
    let at = t0() + 3_700;
    let r = s.m.sweep(at, &[free_terms(1, nonce)], false, Some(&Key)).result.expect("an unsigned sweep");
    assert!(r.transactions.is_empty(), "nothing fits beside the credit: {r:?}");
    let r = s.m.sweep(at + 1, &[free_terms(1, nonce)], true, Some(&Key)).result.expect("the owner's sweep");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(nonce, ROUTER)]);
    let transfer = transferCall { to: ALICE, amount: U256::from(1) }.abi_encode();
    s.ask(at + 2, tx_at(nonce, transfer, 100_000, vec![])).expect("the agent displaces it");
    let r = s.m.sweep(at + 3, &[free_terms(1, nonce + 1)], true, Some(&Key)).result.expect("the owner's second sweep");
    assert_eq!(r.transactions.iter().map(|t| (t.nonce, t.spender)).collect::<Vec<_>>(), vec![(nonce + 1, ROUTER)]);
}
