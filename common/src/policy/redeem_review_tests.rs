//! Adversarial review of ERC-7710 redemption (RULES.md §5b), kept as regressions: each test
//! states the behaviour the enclave must have. The two marked `ignore` are open findings
//! (SECURITY.md, "Open").

use super::*;
use crate::allowance::worst::worst;
use crate::allowance::{AllowanceKind, Key};
use crate::delegation::{
    batch_execution, encode_redemption, redeemDelegationsCall, single_execution, Delegation, MODE_BATCH, MODE_SINGLE,
};
use crate::machine::{Machine, Signer};
use crate::payload::prepare;
use crate::period::parse_time;
use crate::protocol::SignPayload;
use crate::stamp::Stamp;
use crate::tx::{Eip1559Request, TxRequest};
use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function swap(address tokenIn, uint256 amountIn);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const MANAGER: Address = address!("000000000000000000000000000000000000da7a");
const D1: Address = address!("000000000000000000000000000000000000d001");
const D2: Address = address!("000000000000000000000000000000000000d002");

/// A session key for the machine: the signature's value is never checked here.
struct K;

impl Signer for K {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn policy() -> CompiledPolicy {
    let text = format!(
        r#"
name = "review"
chains = [1]
valid_for = "24h"
recipients = ["{ALICE}", "$account"]
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)", "increaseAllowance(address,uint256)"]
[[calls]]
target = "{ROUTER}"
functions = ["swap(address tokenIn, uint256 amountIn)"]
[[limits]]
max = "100 USDC"
per = "day"
[approvals]
spenders = ["{ROUTER}"]
max = ["50 USDC"]
[gas]
max_fee_per_gas = "50 gwei"
max_gas_limit = 1000000
[delegations]
managers = ["{MANAGER}"]
"#
    );
    CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap_or_else(|d| panic!("{d}"))).unwrap()
}

fn ctx() -> Context {
    Context { now: t0() + 10, anchor: t0(), owner: OWNER, account: SESSION }
}

fn tx_at(nonce: u64, to: Address, data: Vec<u8>) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 300_000,
        to: Some(to),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

fn root(delegator: Address) -> Vec<Delegation> {
    vec![Delegation {
        delegate: SESSION,
        delegator,
        authority: B256::repeat_byte(0xff),
        caveats: vec![],
        salt: U256::from(1),
        signature: Bytes::from(vec![0u8; 65]),
    }]
}

fn approve(amount: U256) -> Vec<u8> {
    approveCall { spender: ROUTER, amount }.abi_encode()
}

fn increase(added: U256) -> Vec<u8> {
    increaseAllowanceCall { spender: ROUTER, added }.abi_encode()
}

fn xfer(to: Address, amount: U256) -> Vec<u8> {
    transferCall { to, amount }.abi_encode()
}

/// Decide at `ctx()` and, when allowed, charge (record in the registry).
fn step(p: &CompiledPolicy, c: &mut Counters, payload: SignPayload) -> Result<Charges, crate::Denial> {
    let ch = prepare(&payload)?.evaluate(p, c, &ctx())?;
    c.charge(p, &ch, t0(), t0() + 10);
    Ok(ch)
}

fn key(holder: Address) -> Key {
    Key { chain_id: 1, holder, token: USDC, spender: ROUTER, kind: AllowanceKind::Erc20 }
}

// ---------------------------------------------------------------------------------------
// Finding 1 (high): a redemption's writes are counted as certain once its nonce is used,
// but a redemption can be mined and revert (the agent can force it). A "revocation" in it
// then forces the registry's worst case to 0 while the allowance stays live on chain.
// ---------------------------------------------------------------------------------------

/// Empty permission context: the manager calls `executeFromExecutor` on the session itself
/// (msg.sender), which is an EOA that can never have code (type 4 is never signed) — the
/// call always reverts. Bridle accepts it as the session's own calls and records the writes.
#[test]
fn review_empty_context_revocation_is_counted_though_it_always_reverts() {
    let p = policy();
    let mut c = Counters::default();
    // nonce 0: the session approves the router for 50 USDC (plain transaction).
    step(&p, &mut c, tx_at(0, USDC, approve(usdc(50)))).unwrap();
    assert_eq!(worst(&c.allowances, &key(SESSION), t0() + 10, None), usdc(50));
    // nonce 1: "revoke" through a redemption with an empty context. On chain: the manager
    // calls SESSION.executeFromExecutor → no code → the whole redemption reverts.
    let r = encode_redemption(&[(vec![], MODE_SINGLE, single_execution(USDC, U256::ZERO, &approve(U256::ZERO)))]);
    let signed = step(&p, &mut c, tx_at(1, MANAGER, r));
    if signed.is_ok() {
        // The registry now takes nonce 1 as settling the key (sweeps skip it, the owner's
        // view shows it revoked) although on chain it stays at 50 USDC.
        let by = crate::allowance::view::settled_by(&c.allowances, &key(SESSION), t0() + 10);
        assert!(by.is_none(), "the key counts as settled by a redemption that always reverts: {by:?}");
    }
}

/// Consequence: the per-spender cap (50 USDC) is exceeded on chain.
#[test]
fn review_empty_context_revocation_lets_increase_allowance_exceed_the_cap() {
    let p = policy();
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, USDC, approve(usdc(50)))).unwrap();
    let r = encode_redemption(&[(vec![], MODE_SINGLE, single_execution(USDC, U256::ZERO, &approve(U256::ZERO)))]);
    let _ = step(&p, &mut c, tx_at(1, MANAGER, r));
    // nonce 2: +50 → 100 USDC live on chain (nonce 1 reverted), cap 50.
    let r = step(&p, &mut c, tx_at(2, USDC, increase(usdc(50))));
    assert!(r.is_err(), "increaseAllowance signed: on chain the router may now pull 100 USDC, cap 50");
}

/// Consequence: revoking the session destroys its key at once (nothing sweepable), while
/// the session's own approval is live on chain — nobody can ever revoke it again.
#[test]
fn review_revoke_destroys_the_key_with_a_live_approval() {
    let mut m = Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), policy(), t0(), 60, 1024);
    let mut n = 0u64;
    let mut ask = |m: &mut Machine, p: SignPayload| {
        n += 1;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_be_bytes());
        let stamp = Stamp { nonce, timestamp: t0() + 10, mac: [0u8; 32] };
        m.sign(t0() + 10, &p, prepare(&p).unwrap(), &stamp, Some(&K)).result
    };
    ask(&mut m, tx_at(0, USDC, approve(usdc(50)))).expect("approve signed");
    let r = encode_redemption(&[(vec![], MODE_SINGLE, single_execution(USDC, U256::ZERO, &approve(U256::ZERO)))]);
    let fake_revocation = ask(&mut m, tx_at(1, MANAGER, r));
    m.revoke(t0() + 20, false);
    assert!(
        fake_revocation.is_err() || !m.key_destroyed(),
        "key destroyed while SESSION's 50 USDC approval to the router is live (nonce 1 reverted on chain)"
    );
}

/// Same with a delegator's key: any entry can make the whole redemption revert (a bad
/// signature, a disabled delegation, a failing caveat, a paused manager, an empty context);
/// the revocation of D1's allowance in it is nevertheless counted as forced.
#[test]
fn review_a_revocation_in_a_redemption_that_reverts_is_counted() {
    let p = policy();
    let mut c = Counters::default();
    let one = |d: Address, data: Vec<u8>| (root(d), MODE_SINGLE, single_execution(USDC, U256::ZERO, &data));
    step(&p, &mut c, tx_at(0, MANAGER, encode_redemption(&[one(D1, approve(usdc(50)))]))).unwrap();
    // nonce 1: D1 approve(0), plus an entry the agent knows reverts (D2 never signed this).
    let r = encode_redemption(&[one(D1, approve(U256::ZERO)), one(D2, approve(U256::ZERO))]);
    step(&p, &mut c, tx_at(1, MANAGER, r)).unwrap();
    // nonce 2: D1 +50 → on chain 100 (nonce 1 reverted), cap 50.
    let r = step(&p, &mut c, tx_at(2, MANAGER, encode_redemption(&[one(D1, increase(usdc(50)))])));
    let w = worst(&c.allowances, &key(D1), t0() + 10, None);
    assert!(r.is_err(), "signed; registry worst case of D1→router {w}, on chain 100 USDC, cap 50");
}

// ---------------------------------------------------------------------------------------
// Finding 2 (high, design): metering assumes every allowance of the account running a call
// was signed by this session (true of the session's fresh EOA, false of a delegator). A
// delegator's pre-existing allowances (routers, Permit2, vaults) are spent by allowed,
// unmetered calls with no charge at all.
// ---------------------------------------------------------------------------------------

#[test]
fn review_a_delegators_existing_allowance_is_spent_uncharged() {
    let p = policy();
    let mut c = Counters::default();
    // D1 (a normal wallet) approved the router long ago. The session's cap is 100 USDC/day;
    // the swap pulls 1,000,000 USDC of D1's through that allowance.
    let swap = swapCall { tokenIn: USDC, amountIn: usdc(1_000_000) }.abi_encode();
    let r = encode_redemption(&[(root(D1), MODE_SINGLE, single_execution(ROUTER, U256::ZERO, &swap))]);
    let ch = step(&p, &mut c, tx_at(0, MANAGER, r));
    match ch {
        Err(_) => {}
        Ok(ch) => panic!(
            "a delegator's swap of 1,000,000 USDC is signed with charges {:?} (cap 100 USDC/day): nothing bounds what the delegator's existing allowance lets the router pull",
            ch.tokens
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Finding 3 (low): an entry whose batch is empty is accepted (the user-operation decoder
// refuses "the batch makes no call"); it runs the entry's caveat hooks and counts 0 weight.
// ---------------------------------------------------------------------------------------

#[test]
fn review_an_empty_batch_entry_is_refused_like_an_empty_user_operation_batch() {
    let p = policy();
    let c = Counters::default();
    let r = encode_redemption(&[
        (root(D1), MODE_SINGLE, single_execution(USDC, U256::ZERO, &xfer(ALICE, usdc(1)))),
        (root(D2), MODE_BATCH, batch_execution(&[])),
    ]);
    let d = prepare(&tx_at(0, MANAGER, r)).unwrap().evaluate(&p, &c, &ctx());
    assert!(d.is_err(), "an entry that makes no call is signed: {:?}", d.map(|c| c.weight));
}

// ---------------------------------------------------------------------------------------
// Finding 4 (medium): caveat `args` are the redeemer's (the agent's) and enforcers act on
// them. MetaMask's ERC20RoyaltyEnforcer: the execution must be `token.transfer(enforcer,
// amount)`; in afterHook the enforcer pays the royalties of `terms` and sends the rest of
// its balance to `abi.decode(args, (address))` — any address the agent picks. Bridle sees a
// transfer to the enforcer (a listed recipient) and never looks at `args`.
// ---------------------------------------------------------------------------------------

#[test]
fn review_caveat_args_chosen_by_the_agent_redirect_the_transfer() {
    use alloy_sol_types::SolValue;
    const ROYALTY_ENFORCER: Address = address!("00000000000000000000000000000000000e0f01");
    const ATTACKER: Address = address!("00000000000000000000000000000000000bad00");
    let text = format!(
        r#"
name = "royalty"
chains = [1]
valid_for = "24h"
recipients = ["{ALICE}", "{ROYALTY_ENFORCER}"]
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[delegations]
managers = ["{MANAGER}"]
delegators = ["{D1}"]
"#
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
    let c = Counters::default();
    // D1's delegation carries the royalty caveat (terms: 1 USDC to Alice); the agent puts
    // its own address in args: 99 USDC go to ATTACKER, who is no allowed recipient.
    let mut chain = root(D1);
    chain[0].caveats.push(crate::delegation::Caveat {
        enforcer: ROYALTY_ENFORCER,
        terms: (ALICE, usdc(1)).abi_encode_params().into(),
        args: ATTACKER.abi_encode().into(),
    });
    let r = encode_redemption(&[(
        chain,
        MODE_SINGLE,
        single_execution(USDC, U256::ZERO, &xfer(ROYALTY_ENFORCER, usdc(100))),
    )]);
    let d = prepare(&tx_at(0, MANAGER, r)).unwrap().evaluate(&p, &c, &ctx());
    assert!(d.is_err(), "signed: 99 USDC reach {ATTACKER}, chosen in caveat args, not an allowed recipient");
}

// ---------------------------------------------------------------------------------------
// Finding 5 (medium): "each entry runs as its root delegator" is DeleGator semantics. MetaMask's
// Safe `DelegatorModule` is a root delegator whose executeFromExecutor runs every call as the
// *Safe* (execTransactionFromModule). The self-call rule compares the target with the root
// (the module), so a call from the Safe to the Safe itself (enableModule, addOwnerWithThreshold,
// setGuard — all `authorized`: msg.sender == this) passes where a wildcard allows it, and the
// Safe's approvals are recorded under the module's address.
// ---------------------------------------------------------------------------------------

sol! {
    function enableModule(address module);
}

#[test]
fn review_a_safe_module_root_lets_the_safe_call_itself() {
    const MODULE: Address = address!("000000000000000000000000000000000000a0d1");
    const SAFE: Address = address!("0000000000000000000000000000000000005afe");
    const ATTACKER: Address = address!("00000000000000000000000000000000000bad00");
    let text = format!(
        "name = \"wild\"\nchains = [1]\nvalid_for = \"24h\"\nmax_value_per_call = \"0 ETH\"\n\
         [[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n[delegations]\nmanagers = [\"{MANAGER}\"]\n"
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
    let c = Counters::default();
    // The same call from a DeleGator to itself is refused (redeem_tests::an_account_calling_itself_is_refused).
    let takeover = enableModuleCall { module: ATTACKER }.abi_encode();
    let r = encode_redemption(&[(root(MODULE), MODE_SINGLE, single_execution(SAFE, U256::ZERO, &takeover))]);
    let d = prepare(&tx_at(0, MANAGER, r)).unwrap().evaluate(&p, &c, &ctx());
    assert!(
        d.is_err(),
        "signed: the Safe behind the module enables the attacker's module on itself — the self-call rule only knows the root"
    );
}

/// Finding 1, pre-existing variant (same root cause, no redemption needed): a plain
/// `approve(spender, 0)` whose gas limit covers the intrinsic cost (and the EIP-7623 floor)
/// but not the SSTORE is mined, reverts out of gas, uses the nonce — and counts as forced.
#[test]
fn review_out_of_gas_revocation_is_counted() {
    let p = policy();
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, USDC, approve(usdc(50)))).unwrap();
    let mut oog = tx_at(1, USDC, approve(U256::ZERO));
    if let SignPayload::Transaction(TxRequest::Eip1559(t)) = &mut oog {
        t.gas_limit = 22_500; // intrinsic ≈ 21 560, floor 22 400; approve needs > 25 000
    }
    step(&p, &mut c, oog).unwrap();
    let r = step(&p, &mut c, tx_at(2, USDC, increase(usdc(50))));
    let d = r.expect_err("signed: on chain 100 USDC (nonce 1 ran out of gas), cap 50");
    assert_eq!(d.code, crate::error::ErrorCode::UnlimitedApproval, "{d:?}");
    // The same revocation with approvals.revoke_gas (100 000 by default) forces the reset.
    let mut c = Counters::default();
    step(&p, &mut c, tx_at(0, USDC, approve(usdc(50)))).unwrap();
    let mut revoke = tx_at(1, USDC, approve(U256::ZERO));
    if let SignPayload::Transaction(TxRequest::Eip1559(t)) = &mut revoke {
        t.gas_limit = 100_000;
    }
    step(&p, &mut c, revoke).unwrap();
    step(&p, &mut c, tx_at(2, USDC, increase(usdc(50)))).expect("nonce 1 reset it: 50 at most");
}

/// The sweep side of the same finding: a sweep's revocations must carry
/// `approvals.revoke_gas`, and an agent's revocation below it leaves the approval outstanding
/// (and the revoked session's key alive for the owner's sweep).
#[test]
fn a_sweep_below_revoke_gas_is_refused_and_a_low_gas_revocation_settles_nothing() {
    let mut m = Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), policy(), t0(), 60, 1024);
    let mut n = 0u8;
    let mut ask = |m: &mut Machine, clock: u64, p: SignPayload| {
        n += 1;
        let stamp = Stamp { nonce: [n; 16], timestamp: clock, mac: [0u8; 32] };
        m.sign(clock, &p, prepare(&p).unwrap(), &stamp, Some(&K)).result
    };
    ask(&mut m, t0() + 10, tx_at(0, USDC, approve(usdc(50)))).expect("approve");
    let mut oog = tx_at(1, USDC, approve(U256::ZERO));
    if let SignPayload::Transaction(TxRequest::Eip1559(t)) = &mut oog {
        t.gas_limit = 22_500;
    }
    ask(&mut m, t0() + 11, oog).expect("a revocation is always signed");
    let view = crate::allowance::view::view(&m.counters().allowances, t0() + 12);
    assert_eq!(view.len(), 1);
    assert_eq!((view[0].amount, view[0].state), (usdc(50), crate::allowance::AllowanceState::Active));
    m.revoke(t0() + 20, false);
    let terms = |gas_limit: u64| {
        [crate::protocol::SweepTerms {
            chain_id: 1,
            nonce: 2,
            max_fee_per_gas: 1_000_000_000,
            max_priority_fee_per_gas: 1,
            gas_limit,
        }]
    };
    let d = m.sweep(t0() + 30, &terms(60_000), true, Some(&K)).result.expect_err("below revoke_gas");
    assert_eq!((d.code, d.rule.as_deref()), (crate::error::ErrorCode::GasCap, Some("approvals.revoke_gas")), "{d:?}");
    assert!(!m.key_destroyed(), "nothing was settled: the key must stay for the owner's sweep");
    let r = m.sweep(t0() + 31, &terms(100_000), true, Some(&K)).result.expect("swept");
    assert_eq!(r.transactions.len(), 1);
    // It settles the approval once mined, which the enclave cannot see: the revoked
    // session's key stays, able to sign nothing but revocations (reviews of 2026-12-05).
    assert!(!r.key_destroyed, "the key is kept while the approval may be outstanding");
}

// ---------------------------------------------------------------------------------------
// Finding 6 (medium, liveness/DoS): a delegator-held approval can never be settled once the
// session stops signing. Sweeps skip keys not held by the session, an account sweep for the
// delegator lands in a lane that forces nothing, so the session's holdings stay above 0 for
// ever: the enclave never drops the session (make_room keeps it) and the owner's/agent's
// exposure ceilings keep counting the approval, even after the delegator revoked it on chain.
// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "by design (SECURITY.md, CONFORMANCE 4.8): delegator-held approvals are never settled without a proof of the chain's state"]
fn review_a_delegator_held_approval_pins_the_session_for_ever() {
    let mut m = Machine::new(SESSION, OWNER, Address::repeat_byte(0xa9), policy(), t0(), 60, 1024);
    let p = tx_at(
        0,
        MANAGER,
        encode_redemption(&[(root(D1), MODE_SINGLE, single_execution(USDC, U256::ZERO, &approve(usdc(1))))]),
    );
    let stamp = Stamp { nonce: [7u8; 16], timestamp: t0() + 10, mac: [0u8; 32] };
    m.sign(t0() + 10, &p, prepare(&p).unwrap(), &stamp, Some(&K)).result.expect("signed");
    m.revoke(t0() + 20, false);
    let terms = [crate::protocol::SweepTerms {
        chain_id: 1,
        nonce: 1,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1,
        gas_limit: 100_000,
    }];
    let _ = m.sweep(t0() + 30, &terms, true, Some(&K));
    // Long after: still counted, never dropped.
    let later = t0() + 400 * 86_400;
    assert!(
        !m.finished(later) || m.holdings().is_empty(),
        "the session is finished yet holds {:?} for ever: never dropped, counted against every exposure ceiling",
        m.holdings()
    );
}

// ---------------------------------------------------------------------------------------
// Finding 7 (probe): ABI offset aliasing. `bytes[]` elements may all point at one blob; a
// decoder that copies each element multiplies the input. Measures what decode_redemption
// allocates/spends on a ~200 KB request.
// ---------------------------------------------------------------------------------------

#[test]
fn review_aliased_offsets_amplify_decoding() {
    fn word(v: usize) -> [u8; 32] {
        U256::from(v).to_be_bytes::<32>()
    }
    let n = 1000usize;
    let blob = 100 * 1024usize;
    // Layout after the selector: [off_ctx, off_modes, off_exec] ‖ ctx array ‖ modes ‖ exec array ‖ blob
    let ctx_len = 32 + 32 * n;
    let modes_len = 32 + 32 * n;
    let exec_len = 32 + 32 * n;
    let off_ctx = 96;
    let off_modes = off_ctx + ctx_len;
    let off_exec = off_modes + modes_len;
    let off_blob = off_exec + exec_len; // from the start of the params
    let mut d = redeemDelegationsCall::SELECTOR.to_vec();
    d.extend(word(off_ctx));
    d.extend(word(off_modes));
    d.extend(word(off_exec));
    // ctx array: element offsets are relative to the start of the array's element area.
    d.extend(word(n));
    for _ in 0..n {
        d.extend(word(off_blob - (off_ctx + 32)));
    }
    d.extend(word(n));
    for _ in 0..n {
        d.extend([0u8; 32]);
    }
    d.extend(word(n));
    for _ in 0..n {
        d.extend(word(off_blob - (off_exec + 32)));
    }
    d.extend(word(blob));
    d.extend(vec![0u8; blob]);
    // Refused by the layout check, before anything is decoded (decoding it copied the blob
    // once per element: about 200 MB).
    let r = crate::delegation::decode_redemption(&d, SESSION);
    let e = r.expect_err("aliased offsets are refused");
    assert!(e.reason.contains("canonically"), "{e}");
}
