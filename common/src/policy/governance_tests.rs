//! Unit tests for delegated-spend governance (AG-212): the allowance registry (R-APP-4),
//! the exposure ceiling and price table (R-APP-5), just-in-time approvals (R-APP-2),
//! cumulative approval caps (R-APP-1), escalation thresholds (R-POL-10) and the new
//! rules' validation.

use super::*;
use crate::allowance::view::view;
use crate::allowance::{fmt_usd, Allowance, AllowanceKind, AllowanceState, LIFETIME_LARGE, LIFETIME_SMALL};
use crate::error::ErrorCode;
use crate::payload::prepare;
use crate::period::parse_time;
use crate::policy::exposure::exposure_now;
use crate::protocol::SignPayload;
use crate::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use serde_json::json;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function swap(address tokenIn, uint256 amountIn, uint256 minOut);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const WETH: Address = address!("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
const USDC_B: Address = address!("833589fcd6edb6e08f4c7c32d4f71b54bda02913");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const POOL: Address = address!("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2");
const EVIL: Address = address!("000000000000000000000000000000000000dead");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const SCA: Address = address!("0000000000000000000000000000000000005ca0");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn weth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn usd(n: u64) -> U256 {
    U256::from(n) * crate::allowance::usd_unit()
}

fn compile_text(extra: &str) -> Result<CompiledPolicy, crate::Denial> {
    let text = format!(
        r#"
name = "governance"
chains = [1, 8453]
valid_for = "9 days"
max_duration = "10 days"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6, chain_id = 1 }}, USDCB = {{ address = "{USDC_B}", decimals = 6, chain_id = 8453 }}, WETH = {{ address = "{WETH}", decimals = 18, chain_id = 1 }} }}
{extra}
"#
    );
    CompiledPolicy::compile(file::resolve_text(&text, t0())?)
}

fn policy(extra: &str) -> CompiledPolicy {
    compile_text(extra).unwrap_or_else(|d| panic!("{d}"))
}

const APPROVALS: &str = r#"
[[calls]]
target = "*"
functions = ["approve(address,uint256)", "increaseAllowance(address,uint256)", "transfer(address,uint256)", "swap(address,uint256,uint256)"]
[[limits]]
max = "1000000 USDC"
per = "day"
[[limits]]
max = "1000000 USDCB"
per = "day"
[[limits]]
max = "1000 WETH"
per = "day"
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564", "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"]
max = ["100000 USDC", "100000 USDCB", "50 WETH"]
[user_operations]
entry_points = ["v0.7"]
"#;

/// Top-level `extra`, then the approval rules with `approvals` added to `[approvals]`.
fn with_approvals(extra: &str, approvals: &str) -> CompiledPolicy {
    policy(&approvals_text(extra, approvals))
}

fn approvals_text(extra: &str, approvals: &str) -> String {
    let base = APPROVALS.replace("[approvals]\n", &format!("[approvals]\n{approvals}\n"));
    format!("max_value_per_call = \"0 ETH\"\n{extra}\n{base}")
}

fn with(extra: &str) -> CompiledPolicy {
    with_approvals(extra, "")
}

fn ctx(now: u64) -> Context {
    Context { now, anchor: t0(), owner: OWNER, account: SESSION }
}

thread_local! {
    /// Each test's transactions take the next nonce (the test harness runs a test per thread).
    static NONCE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn next_nonce() -> u64 {
    NONCE.with(|n| {
        let v = n.get();
        n.set(v + 1);
        v
    })
}

/// A transaction at the next nonce.
fn tx(chain_id: u64, to: Address, data: Vec<u8>) -> SignPayload {
    tx_at(chain_id, next_nonce(), to, data)
}

fn tx_at(chain_id: u64, nonce: u64, to: Address, data: Vec<u8>) -> SignPayload {
    SignPayload::Transaction(crate::tx::TxRequest::Eip1559(crate::tx::Eip1559Request {
        chain_id,
        nonce,
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(to),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

fn approve_tx(chain_id: u64, token: Address, spender: Address, amount: U256) -> SignPayload {
    tx(chain_id, token, approveCall { spender, amount }.abi_encode())
}

fn approve_tx_at(chain_id: u64, nonce: u64, token: Address, spender: Address, amount: U256) -> SignPayload {
    tx_at(chain_id, nonce, token, approveCall { spender, amount }.abi_encode())
}

fn op(calls: &[(Address, U256, Bytes)]) -> SignPayload {
    SignPayload::UserOperation(UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: SCA,
        nonce: U256::from(next_nonce()),
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute_batch(calls),
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    })
}

fn approve_call(token: Address, spender: Address, amount: U256) -> (Address, U256, Bytes) {
    (token, U256::ZERO, approveCall { spender, amount }.abi_encode().into())
}

fn swap_call(amount_in: U256, token_in: Address) -> (Address, U256, Bytes) {
    (ROUTER, U256::ZERO, swapCall { tokenIn: token_in, amountIn: amount_in, minOut: U256::from(1) }.abi_encode().into())
}

fn decide(p: &CompiledPolicy, c: &Counters, now: u64, payload: &SignPayload) -> Result<Charges, crate::Denial> {
    prepare(payload)?.evaluate(p, c, &ctx(now))
}

/// Decide and, when allowed, charge (as the enclave does under the session lock).
fn sign(p: &CompiledPolicy, c: &mut Counters, now: u64, payload: &SignPayload) -> Result<Charges, crate::Denial> {
    let ch = decide(p, c, now, payload)?;
    c.charge(p, &ch, t0(), now);
    Ok(ch)
}

/// The registry as the owner sees it.
fn entries(c: &Counters, now: u64) -> Vec<Allowance> {
    view(&c.allowances, now)
}

fn exposure(p: &CompiledPolicy, c: &Counters, now: u64) -> U256 {
    exposure_now(p, &c.allowances, now).usd
}

fn code(r: Result<Charges, crate::Denial>) -> (ErrorCode, String) {
    match r {
        Ok(_) => panic!("expected a denial"),
        Err(d) => (d.code, d.rule.unwrap_or_default()),
    }
}

// ---- the registry (R-APP-4) -------------------------------------------------------------

#[test]
fn registry_records_amount_times_and_default_lifetimes() {
    let p = with("prices = { USDC = \"1.00\", WETH = \"3000\" }");
    let mut c = Counters::new();
    let now = t0() + 10;
    // 5 000 USD: at most 10 000 USD, so 7 days.
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(5_000))).unwrap();
    // 4 WETH = 12 000 USD: above 10 000 USD, so 24 h.
    sign(&p, &mut c, now, &approve_tx(1, WETH, POOL, weth(4))).unwrap();
    let e = entries(&c, now);
    assert_eq!(e.len(), 2);
    let (u, w) = if e[0].token == USDC { (&e[0], &e[1]) } else { (&e[1], &e[0]) };
    assert_eq!((u.token, u.spender, u.holder, u.amount), (USDC, ROUTER, SESSION, usdc(5_000)));
    assert_eq!((u.chain_id, u.kind, u.granted_at), (1, AllowanceKind::Erc20, now));
    assert_eq!(u.expires_at, now + LIFETIME_SMALL);
    assert_eq!(w.expires_at, now + LIFETIME_LARGE);
    assert_eq!(u.state, AllowanceState::Active);
    let later = entries(&c, now + LIFETIME_LARGE);
    let w = later.iter().find(|e| e.token == WETH).unwrap();
    // Expired is still outstanding (live on chain until a revocation settles it).
    assert_eq!(w.state, AllowanceState::Expired);
    assert!(w.outstanding());

    // approve(spender, 0) at the next nonce settles it once mined: until a later request
    // needs that nonce mined, the worst case still counts it.
    sign(&p, &mut c, now + 5, &approve_tx(1, WETH, POOL, U256::ZERO)).unwrap();
    let e = entries(&c, now + 5);
    let w = e.iter().find(|e| e.token == WETH).unwrap();
    assert_eq!(
        (w.state, w.amount, w.updated_at, w.settled_at_nonce),
        (AllowanceState::Revoked, weth(4), now + 5, Some(2))
    );
    assert_eq!(e.iter().filter(|e| e.outstanding()).count(), 1);
    // A revocation of something never approved is recorded (it is a write) and worth 0.
    sign(&p, &mut c, now + 6, &approve_tx(1, USDC, EVIL, U256::ZERO)).unwrap();
    let e = entries(&c, now + 6);
    assert_eq!(e.len(), 3);
    assert_eq!(e.iter().find(|e| e.spender == EVIL).unwrap().amount, U256::ZERO);
}

#[test]
fn lifetime_is_configurable_and_unpriced_is_short() {
    // Unpriced (no table): 24 h even for a small amount.
    let p = with("");
    let mut c = Counters::new();
    let now = t0() + 10;
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(1))).unwrap();
    assert_eq!(entries(&c, now)[0].expires_at, now + LIFETIME_LARGE);
    // Never beyond the session's end: a session of 9 days, an approval on its last day.
    let late = p.doc.valid_until.unwrap() - 3600;
    sign(&p, &mut c, late, &approve_tx(1, USDC, POOL, usdc(1))).unwrap();
    let e = entries(&c, late);
    assert_eq!(e.iter().find(|e| e.spender == POOL).unwrap().expires_at, late + 3600);

    let p = with_approvals("", "lifetime = \"2h\"");
    let mut c = Counters::new();
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(1))).unwrap();
    assert_eq!(entries(&c, now)[0].expires_at, now + 7200);
    assert_eq!(entries(&c, now + 7200)[0].state, AllowanceState::Expired);
}

#[test]
fn increase_allowance_accumulates_and_is_capped_in_total() {
    let p = with("");
    let mut c = Counters::new();
    let now = t0() + 10;
    let inc = |n| tx(1, USDC, increaseAllowanceCall { spender: ROUTER, added: usdc(n) }.abi_encode());
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(60_000))).unwrap();
    sign(&p, &mut c, now, &inc(30_000)).unwrap();
    assert_eq!(entries(&c, now)[0].amount, usdc(90_000));
    // 90 000 + 20 000 > the 100 000 per-spender cap: denied though 20 000 alone is under it.
    let (code_, rule) = code(decide(&p, &c, now, &inc(20_000)));
    assert_eq!((code_, rule.as_str()), (ErrorCode::UnlimitedApproval, "approvals.caps[0]"));
    // A denial changed nothing.
    assert_eq!(entries(&c, now)[0].amount, usdc(90_000));
    // After a revocation (at its own nonce), increaseAllowance starts from zero.
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, U256::ZERO)).unwrap();
    sign(&p, &mut c, now, &inc(20_000)).unwrap();
    // ... in every history that includes the increase; without it, 90 000 may still be live.
    assert_eq!(entries(&c, now)[0].amount, usdc(90_000));
    let next = inc(80_000);
    decide(&p, &c, now, &next).unwrap();
    assert_eq!(code(decide(&p, &c, now, &inc(80_001))).0, ErrorCode::UnlimitedApproval);
    // A revocation that shares its nonce with the approval (it can never be mined once the
    // approval is) is no base: the increase builds on the approval (review finding 4).
    let mut c = Counters::new();
    sign(&p, &mut c, now, &approve_tx_at(1, 100, USDC, ROUTER, usdc(60_000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 100, USDC, ROUTER, U256::ZERO)).unwrap();
    let inc101 = |n| tx_at(1, 101, USDC, increaseAllowanceCall { spender: ROUTER, added: usdc(n) }.abi_encode());
    assert_eq!(code(decide(&p, &c, now, &inc101(50_000))).0, ErrorCode::UnlimitedApproval);
    decide(&p, &c, now, &inc101(40_000)).unwrap();
}

#[test]
fn unlimited_approvals_are_denied_everywhere() {
    let p = with("");
    let c = Counters::new();
    let now = t0() + 10;
    for payload in [
        approve_tx(1, USDC, ROUTER, U256::MAX),
        approve_tx(1, USDC, ROUTER, usdc(100_001)),
        tx(1, USDC, increaseAllowanceCall { spender: ROUTER, added: U256::MAX }.abi_encode()),
        op(&[approve_call(USDC, ROUTER, U256::MAX)]),
    ] {
        assert_eq!(code(decide(&p, &c, now, &payload)).0, ErrorCode::UnlimitedApproval);
    }
    assert_eq!(code(decide(&p, &c, now, &approve_tx(1, USDC, EVIL, usdc(1)))).0, ErrorCode::SpenderNotAllowed);
}

// ---- the exposure ceiling (R-APP-5) -------------------------------------------------------

const PRICED: &str =
    "prices = { USDC = \"1.00\", USDCB = \"0.999\", WETH = \"3000\" }\nexposure_ceiling = \"50000 USD\"";

#[test]
fn exposure_ceiling_spans_tokens_spenders_and_chains() {
    let p = with(PRICED);
    let mut c = Counters::new();
    let now = t0() + 10;
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(20_000))).unwrap();
    sign(&p, &mut c, now, &approve_tx(1, WETH, POOL, weth(5))).unwrap(); // 15 000 USD
    sign(&p, &mut c, now, &approve_tx(8453, USDC_B, ROUTER, usdc(10_000))).unwrap(); // 9 990 USD
    assert_eq!(exposure(&p, &c, now), usd(44_990));
    // 44 990 + 5 011 > 50 000: denied, naming the ceiling.
    let d = decide(&p, &c, now, &approve_tx(1, USDC, POOL, usdc(5_011))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("exposure_ceiling")));
    assert!(d.reason.contains("50001 USD") && d.reason.contains("50000 USD"), "{}", d.reason);
    // Exactly up to the ceiling is allowed.
    sign(&p, &mut c, now, &approve_tx(1, USDC, POOL, usdc(5_010))).unwrap();
    assert_eq!(exposure(&p, &c, now), usd(50_000));
    // Replacing an approval by a smaller one lowers exposure for every later request:
    // allowed; raising it: denied.
    assert_eq!(code(decide(&p, &c, now, &approve_tx(1, USDC, ROUTER, usdc(20_001)))).0, ErrorCode::ExposureCeiling);
    sign(&p, &mut c, now, &approve_tx(1, USDC, ROUTER, usdc(19_000))).unwrap();
    // A revocation frees room for the requests after it (which need it mined) ...
    sign(&p, &mut c, now, &approve_tx(1, WETH, POOL, U256::ZERO)).unwrap();
    sign(&p, &mut c, now, &approve_tx(1, WETH, ROUTER, weth(5))).unwrap();
    // ... while, with no request, each allowance counts at its worst: the WETH approval to
    // POOL may still be live if its revocation is never mined (RULES.md §6).
    assert_eq!(exposure(&p, &c, now), usd(20_000 + 15_000 + 9_990 + 5_010 + 15_000));
    // An expired approval still counts: it is live on chain until revoked.
    assert!(exposure(&p, &c, now + LIFETIME_LARGE + 1) >= usd(49_000));
    assert_eq!(fmt_usd(usd(30_000)), "30000 USD");
}

#[test]
fn exposure_counts_a_revocation_only_where_every_history_includes_it() {
    // Review finding 4: approve(A) and approve(A, 0) at the same nonce, then approve(B) at
    // the next: the revocation can never be mined if the approval is, so A counts.
    let p = with("prices = { USDC = \"1.00\" }\nexposure_ceiling = \"1000 USD\"");
    let mut c = Counters::new();
    let now = t0() + 10;
    sign(&p, &mut c, now, &approve_tx_at(1, 0, USDC, ROUTER, usdc(1000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 0, USDC, ROUTER, U256::ZERO)).unwrap();
    let d = decide(&p, &c, now, &approve_tx_at(1, 1, USDC, POOL, usdc(1000))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("exposure_ceiling")));
    // A revocation at its own nonce counts for the next one.
    let mut c = Counters::new();
    sign(&p, &mut c, now, &approve_tx_at(1, 0, USDC, ROUTER, usdc(1000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 1, USDC, ROUTER, U256::ZERO)).unwrap();
    decide(&p, &c, now, &approve_tx_at(1, 2, USDC, POOL, usdc(1000))).unwrap();
    // ... but not for one that replaces it at its nonce.
    assert_eq!(code(decide(&p, &c, now, &approve_tx_at(1, 1, USDC, POOL, usdc(1000)))).0, ErrorCode::ExposureCeiling);
    // Nor across chains: the nonce sequences are independent.
    let p = with("prices = { USDC = \"1.00\", USDCB = \"1.00\" }\nexposure_ceiling = \"1000 USD\"");
    let mut c = Counters::new();
    sign(&p, &mut c, now, &approve_tx_at(1, 0, USDC, ROUTER, usdc(1000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 1, USDC, ROUTER, U256::ZERO)).unwrap();
    assert_eq!(
        code(decide(&p, &c, now, &approve_tx_at(8453, 0, USDC_B, POOL, usdc(1000)))).0,
        ErrorCode::ExposureCeiling
    );
}

#[test]
fn exposure_ceiling_denies_unpriced_tokens_and_counts_permits_and_user_ops() {
    let p = with("prices = { USDC = \"1.00\" }\nexposure_ceiling = \"50000 USD\"\n[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"1h\"");
    let mut c = Counters::new();
    let now = t0() + 10;
    let d = decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, weth(1))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("prices")));
    // Revoking an unpriced token is always possible.
    decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, U256::ZERO)).unwrap();

    // A user operation's approval (held by the smart account) counts too.
    sign(&p, &mut c, now, &op(&[approve_call(USDC, POOL, usdc(30_000))])).unwrap();
    assert_eq!(entries(&c, now)[0].holder, SCA);
    // An EIP-2612 permit is an approval: 30 000 + 25 000 > 50 000.
    let permit = |value: U256| {
        SignPayload::TypedData(
            json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]},
                "primaryType": "Permit",
                "domain": {"name": "USD Coin", "version": "2", "chainId": 1, "verifyingContract": USDC},
                "message": {"owner": SESSION, "spender": ROUTER, "value": value.to_string(), "nonce": 0, "deadline": now + 60}
            })
            .to_string(),
        )
    };
    assert_eq!(code(decide(&p, &c, now, &permit(usdc(25_000)))).0, ErrorCode::ExposureCeiling);
    let ch = sign(&p, &mut c, now, &permit(usdc(20_000))).unwrap();
    assert_eq!(ch.approvals.len(), 1);
    let e = entries(&c, now);
    let e = e.iter().find(|e| e.holder == SESSION).unwrap();
    assert_eq!((e.holder, e.spender, e.via.as_str(), e.amount), (SESSION, ROUTER, "permit", usdc(20_000)));
    assert_eq!(exposure(&p, &c, now), usd(50_000));
}

#[test]
fn a_policy_update_keeps_the_registry() {
    let p = with(PRICED);
    let mut c = Counters::new();
    sign(&p, &mut c, t0() + 1, &approve_tx(1, USDC, ROUTER, usdc(40_000))).unwrap();
    // The counters belong to the session: a new policy reads the same registry.
    let p2 = with("prices = { USDC = \"1.00\" }\nexposure_ceiling = \"45000 USD\"");
    assert_eq!(code(decide(&p2, &c, t0() + 2, &approve_tx(1, USDC, POOL, usdc(5_001)))).0, ErrorCode::ExposureCeiling);
}

// ---- just-in-time approvals (R-APP-2) ------------------------------------------------------

const CEILING_1000: &str = r#"
prices = { USDC = "1.00" }
exposure_ceiling = "1000 USD"
"#;

/// Just-in-time pairs run from the smart account, which the owner vouches for
/// (`user_operations.unmetered_calls`): a consumer's call is not metered.
fn jit_policy(tolerance: &str, only: bool) -> CompiledPolicy {
    jit_policy_with(tolerance, only, "", true)
}

/// `vouched`: `user_operations.unmetered_calls` (the smart account holds nothing Bridle did
/// not meter).
fn jit_policy_with(tolerance: &str, only: bool, extra: &str, vouched: bool) -> CompiledPolicy {
    let text = approvals_text(
        extra,
        &format!(
            "jit_tolerance = \"{tolerance}\"\njit_only = {only}\njit = [{{ signature = \"swap(address tokenIn,uint256 amountIn,uint256 minOut)\", amount_arg = \"amountIn\", token_arg = \"tokenIn\" }}]"
        ),
    );
    let v07 = "entry_points = [\"v0.7\"]";
    policy(&if vouched { text.replace(v07, &format!("{v07}\nunmetered_calls = true")) } else { text })
}

#[test]
fn jit_approval_is_bounded_by_the_consuming_call() {
    let p = jit_policy("1%", false);
    let c = Counters::new();
    let now = t0() + 10;
    // approve 10 100 then swap 10 000: exactly the 1% tolerance.
    let ok = op(&[approve_call(USDC, ROUTER, usdc(10_100)), swap_call(usdc(10_000), USDC)]);
    decide(&p, &c, now, &ok).unwrap();
    // 10 101 is one USDC over.
    let over = op(&[approve_call(USDC, ROUTER, usdc(10_101)), swap_call(usdc(10_000), USDC)]);
    let d = decide(&p, &c, now, &over).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.jit[0]")));
    assert!(d.reason.starts_with("call 0:"), "{}", d.reason);
    // The swap names another token: not the consumer, so only the static caps apply.
    let other = op(&[approve_call(USDC, ROUTER, usdc(10_101)), swap_call(usdc(10_000), WETH)]);
    decide(&p, &c, now, &other).unwrap();
    // Unless the owner vouches for the account, no swap runs as it, a just-in-time consumer
    // included: what it pulls is the router's to decide (Permit2, an internal balance,
    // another token), not the approve before it.
    let unvouched = jit_policy_with("1%", false, "", false);
    for pair in [ok, other] {
        let d = decide(&unvouched, &c, now, &pair).unwrap_err();
        assert_eq!(
            (d.code, d.rule.as_deref()),
            (ErrorCode::SelectorNotAllowed, Some("user_operations.unmetered_calls"))
        );
    }
    // Default tolerance 0: exactly the amount.
    let p0 = jit_policy("0%", false);
    decide(&p0, &c, now, &op(&[approve_call(USDC, ROUTER, usdc(500)), swap_call(usdc(500), USDC)])).unwrap();
    assert_eq!(
        code(decide(&p0, &c, now, &op(&[approve_call(USDC, ROUTER, usdc(501)), swap_call(usdc(500), USDC)]))).0,
        ErrorCode::UnlimitedApproval
    );
}

#[test]
fn jit_increase_allowance_is_bounded_together_with_what_may_be_outstanding() {
    let inc =
        |n: U256| (USDC, U256::ZERO, Bytes::from(increaseAllowanceCall { spender: ROUTER, added: n }.abi_encode()));
    let p = jit_policy("0%", true);
    let mut c = Counters::new();
    let now = t0() + 10;
    // Nothing outstanding: increaseAllowance(500) then a swap of 500 is just in time, even
    // under jit_only (issue 14, item 6).
    sign(&p, &mut c, now, &op(&[inc(usdc(500)), swap_call(usdc(500), USDC)])).unwrap();
    // More than the swap consumes: refused, as for approve.
    let d = decide(&p, &c, now, &op(&[inc(usdc(501)), swap_call(usdc(500), USDC)])).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.jit[0]")));
    // The enclave cannot see the first swap consume its 500: at worst they are still there,
    // and another 500 on top would leave 1 000 for a swap of 500.
    let d = decide(&p, &c, now, &op(&[inc(usdc(500)), swap_call(usdc(500), USDC)])).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.jit[0]")));
    assert!(d.reason.contains("may already be"), "{}", d.reason);
    // Set to zero first in the same batch: just in time again.
    let reset = op(&[approve_call(USDC, ROUTER, U256::ZERO), inc(usdc(500)), swap_call(usdc(500), USDC)]);
    decide(&p, &c, now, &reset).unwrap();
    // Not followed by its consumer: refused under jit_only.
    let d = decide(&p, &c, now, &op(&[inc(usdc(1))])).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.jit_only")));
}

#[test]
fn trailing_zero_approval_leaves_nothing_outstanding() {
    // The ceiling is 1 000 USD, yet a 10 000 USDC just-in-time approval passes: it is
    // revoked to zero in the same batch, so exposure after the batch is unchanged.
    let p = jit_policy_with("0%", true, CEILING_1000, true);
    let mut c = Counters::new();
    let now = t0() + 10;
    let batch = op(&[
        approve_call(USDC, ROUTER, usdc(10_000)),
        swap_call(usdc(10_000), USDC),
        approve_call(USDC, ROUTER, U256::ZERO),
    ]);
    sign(&p, &mut c, now, &batch).unwrap();
    let e = entries(&c, now);
    assert!(e.iter().all(|e| !e.outstanding()));
    let e = &e[0];
    assert_eq!((e.state, e.amount, e.holder, e.via.as_str()), (AllowanceState::Revoked, U256::ZERO, SCA, "approve"));
    // Without the trailing zero the same batch would leave 10 000 USD outstanding: denied.
    let open = op(&[approve_call(USDC, ROUTER, usdc(10_000)), swap_call(usdc(10_000), USDC)]);
    assert_eq!(code(decide(&p, &c, now, &open)), (ErrorCode::ExposureCeiling, "exposure_ceiling".into()));
    // jit_only: a standalone approval (transaction or batch) is denied.
    assert_eq!(
        code(decide(&p, &c, now, &approve_tx(1, USDC, ROUTER, usdc(1)))),
        (ErrorCode::UnlimitedApproval, "approvals.jit_only".into())
    );
    assert_eq!(
        code(decide(&p, &c, now, &op(&[approve_call(USDC, ROUTER, usdc(1)), (USDC, U256::ZERO, Bytes::new())]))).0,
        ErrorCode::UnlimitedApproval
    );
    // ... but a revocation never is.
    decide(&p, &c, now, &approve_tx(1, USDC, ROUTER, U256::ZERO)).unwrap();
}

// ---- escalation thresholds (R-POL-10) -------------------------------------------------------

#[test]
fn escalation_thresholds() {
    let p = with("prices = { USDC = \"1.00\", ETH = \"3000\" }\nescalate = { above_value = \"20000 USDC\", above_usd = \"30000 USD\", ttl = \"10m\" }");
    let c = Counters::new();
    let now = t0() + 10;
    let xfer = |n| tx(1, USDC, transferCall { to: EVIL, amount: usdc(n) }.abi_encode());
    let esc = |p: &CompiledPolicy, c: &Counters, ch: &Charges| escalation(p, c, &ctx(now), ch);
    let ch = decide(&p, &c, now, &xfer(20_000)).unwrap();
    assert!(esc(&p, &c, &ch).is_none());
    let ch = decide(&p, &c, now, &xfer(20_001)).unwrap();
    let d = esc(&p, &c, &ch).unwrap();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::PendingApproval, Some("escalate.above_value")));
    // USD: WETH is unpriced in this table, so any amount of it escalates.
    let ch = decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, weth(1))).unwrap();
    let d = esc(&p, &c, &ch).unwrap();
    assert_eq!(d.rule.as_deref(), Some("escalate.above_usd"));
    assert!(d.reason.contains("WETH"), "{}", d.reason);
    let p = with("prices = { USDC = \"1.00\", WETH = \"3000\" }\nescalate = { above_usd = \"30000 USD\" }");
    assert_eq!(p.doc.escalate.as_ref().unwrap().ttl, 600);
    let ch = decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, weth(10))).unwrap();
    assert!(esc(&p, &c, &ch).is_none());
    let ch = decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, weth(11))).unwrap();
    assert!(esc(&p, &c, &ch).unwrap().reason.contains("33000 USD"));
}

#[test]
fn escalation_counts_what_the_period_moved() {
    // Review finding 8: a 30 000 USDC payment split into 2 000 USDC requests escalates as soon
    // as the day's sum crosses the 20 000 threshold.
    let p = with("escalate = { above_value = \"20000 USDC\", ttl = \"10m\" }");
    let mut c = Counters::new();
    let now = t0() + 10;
    let xfer = |n| tx(1, USDC, transferCall { to: EVIL, amount: usdc(n) }.abi_encode());
    for _ in 0..10 {
        let ch = decide(&p, &c, now, &xfer(2_000)).unwrap();
        assert!(escalation(&p, &c, &ctx(now), &ch).is_none());
        c.charge(&p, &ch, t0(), now);
    }
    let ch = decide(&p, &c, now, &xfer(1)).unwrap();
    let d = escalation(&p, &c, &ctx(now), &ch).unwrap();
    assert!(d.reason.contains("after 20000 USDC moved"), "{}", d.reason);
    // A request that moves none of it is not held; the next day starts afresh.
    let ch = decide(&p, &c, now, &approve_tx(1, WETH, ROUTER, weth(1))).unwrap();
    assert!(escalation(&p, &c, &ctx(now), &ch).is_none());
    let tomorrow = now + 86_400;
    let ch = decide(&p, &c, tomorrow, &xfer(20_000)).unwrap();
    assert!(escalation(&p, &c, &ctx(tomorrow), &ch).is_none());
    // per = "session": never resets.
    let p = with("escalate = { above_value = \"20000 USDC\", per = \"session\" }");
    let ch = decide(&p, &c, tomorrow, &xfer(1)).unwrap();
    assert!(escalation(&p, &c, &ctx(tomorrow), &ch).is_some());
}

/// `above_usd` values what moved this period at the prices in force: 40 000 USDC moved
/// unpriced, then the owner adds prices and a 1 000 USD threshold — the next 1 000 USDC is
/// held, not waved through as if nothing had moved (a review of 2026-12-05); an asset moved
/// that the table does not price holds any request with a USD value.
#[test]
fn above_usd_values_what_moved_at_the_prices_in_force() {
    let unpriced = with("");
    let mut c = Counters::new();
    let now = t0() + 10;
    let xfer = |n| tx(1, USDC, transferCall { to: EVIL, amount: usdc(n) }.abi_encode());
    let ch = decide(&unpriced, &c, now, &xfer(40_000)).unwrap();
    c.charge(&unpriced, &ch, t0(), now);
    let priced = with("prices = { USDC = \"1.00\", WETH = \"3000\" }\nescalate = { above_usd = \"1000 USD\" }");
    let ch = decide(&priced, &c, now, &xfer(1_000)).unwrap();
    let d = escalation(&priced, &c, &ctx(now), &ch).expect("held");
    assert!(d.reason.contains("after 40000 USD moved"), "{}", d.reason);
    // Tomorrow the day starts afresh.
    let ch = decide(&priced, &c, now + 86_400, &xfer(1_000)).unwrap();
    assert!(escalation(&priced, &c, &ctx(now + 86_400), &ch).is_none());
    // USDC moved today, and a table that prices WETH only: what moved cannot be valued.
    let weth_only = with("prices = { WETH = \"3000\" }\nescalate = { above_usd = \"1000000 USD\" }");
    let ch = decide(&weth_only, &c, now, &approve_tx(1, WETH, ROUTER, weth(1))).unwrap();
    let d = escalation(&weth_only, &c, &ctx(now), &ch).expect("held");
    assert!(d.reason.contains("does not price"), "{}", d.reason);
}

// ---- validation and hashing ----------------------------------------------------------------

#[test]
fn governance_rules_are_validated() {
    let bad = |extra: &str| -> (ErrorCode, String) {
        let d = compile_text(extra).err().unwrap_or_else(|| panic!("accepted: {extra}"));
        (d.code, d.rule.unwrap_or_default())
    };
    let r = |s: &str| (ErrorCode::InvalidPolicy, s.to_string());
    assert_eq!(bad("prices = { DOGE = \"0.1\" }"), r("prices.DOGE"));
    assert_eq!(bad("prices = { USDC = \"0\" }"), r("prices[0]"));
    assert_eq!(bad("prices = { USDC = \"1.0000000000000000001\" }"), r("prices.USDC"));
    assert_eq!(bad("exposure_ceiling = \"100 USD\""), r("exposure_ceiling"));
    assert_eq!(bad("prices = { USDC = 1 }\nexposure_ceiling = \"100\""), r("exposure_ceiling"));
    assert_eq!(bad("escalate = { ttl = \"1m\" }"), r("escalate"));
    assert_eq!(bad("escalate = { above_value = \"1 ETH\", ttl = \"2 days\" }"), r("escalate.ttl"));
    assert_eq!(bad("escalate = { above_usd = \"1 USD\" }"), r("escalate.above_usd"));
    assert_eq!(bad("trip_wire = { denials = 0, within = \"1m\" }"), r("trip_wire.denials"));
    assert_eq!(bad("trip_wire = { denials = 3, within = \"60 days\" }"), r("trip_wire.within"));
    assert_eq!(bad("[approvals]\nlifetime = \"90 days\""), r("approvals.lifetime"));
    assert_eq!(bad("[approvals]\njit_tolerance = \"10.01%\""), r("approvals.jit_tolerance"));
    assert_eq!(bad("[approvals]\njit_tolerance = \"5\""), r("approvals.jit_tolerance"));
    assert_eq!(bad("[approvals]\njit_only = true"), r("approvals.jit_only"));
    assert_eq!(bad("[approvals]\nrevoke_gas = 59999"), r("approvals.revoke_gas"));
    assert_eq!(bad("[approvals]\nrevoke_gas = 200001"), r("approvals.revoke_gas"));
    assert_eq!(
        bad("[approvals]\njit = [{ signature = \"swap(address,uint256)\", amount_arg = 0 }]"),
        r("approvals.jit[0]")
    );
    assert_eq!(
        bad("[approvals]\njit = [{ signature = \"swap(address a,uint256 b)\", amount_arg = \"c\" }]"),
        r("approvals.jit[0]")
    );
    assert_eq!(
        bad(
            "[approvals]\njit = [{ signature = \"swap(address a,uint256 b)\", amount_arg = \"b\", token_arg = \"b\" }]"
        ),
        r("approvals.jit[0]")
    );
    // Good ones, with their normalized forms.
    let p = policy("prices = { USDC = \"1.00\", ETH = 3000 }\nexposure_ceiling = \"50000 USD\"\ntrip_wire = { denials = 5, within = \"10m\" }\n[approvals]\njit_tolerance = \"0.5%\"\njit = [{ signature = \"swap((address,uint256) order)\", amount_arg = \"0.1\" }]");
    assert_eq!(p.doc.approvals.jit_tolerance_bps, 50);
    assert_eq!(p.doc.approvals.jit[0].amount_path, vec![0, 1]);
    assert_eq!(p.doc.exposure_ceiling, Some(usd(50_000)));
    assert_eq!(p.native_price, Some(usd(3000)));
    assert_eq!(p.doc.trip_wire, Some(doc::TripWire { denials: 5, within: 600 }));
    let text = explain::explain(&p);
    for want in [
        "exposure_ceiling",
        "prices[",
        "trip_wire: 5 denials within",
        "approvals.jit[0]",
        "0.5%",
        "approvals.revoke_gas: a revocation counts once mined only when its transaction's gas limit, less its access list's cost, is at least 100000",
    ] {
        assert!(text.contains(want), "explain lacks {want}:\n{text}");
    }
}

#[test]
fn policies_without_governance_fields_keep_their_encoding() {
    let p = with("");
    let json = String::from_utf8(p.doc.canonical_bytes()).unwrap();
    for field in ["prices", "exposure_ceiling", "escalate", "trip_wire", "lifetime", "jit", "revoke_gas"] {
        assert!(!json.contains(field), "{field} in {json}");
    }
}

// ---- the ceiling against an independent model ------------------------------------------

proptest::proptest! {
    /// Whatever the sequence of approvals, increases and revocations across tokens,
    /// spenders and chains, each at the next nonce of its chain, every request is decided as
    /// a plain model of the chains sees it: on the request's chain every earlier transaction
    /// is mined before it (allowances are the sequential result, a non-zero approve possibly
    /// reverted); on another chain each
    /// allowance is at its largest over every prefix (nothing there need be mined).
    #[test]
    fn exposure_never_exceeds_the_ceiling(ops in proptest::collection::vec(
        (0usize..3, 0usize..2, 0u64..30_000, 0u8..4), 1..40)
    ) {
        let p = with(PRICED);
        let mut c = Counters::new();
        let now = t0() + 10;
        let tokens = [(1u64, USDC, 1u64), (1, WETH, 3000), (8453, USDC_B, 999)];
        let spenders = [ROUTER, POOL];
        // Signed so far, per chain, in nonce order: (token index, spender index, kind, amount).
        let mut signed: std::collections::HashMap<u64, Vec<(usize, usize, u8, U256)>> = Default::default();
        let price = |t: usize| {
            let (_, _, milli) = tokens[t];
            U256::from(milli) * crate::allowance::usd_unit() / U256::from(if t == 2 { 1000 } else { 1 })
        };
        // A non-zero approve may revert (RULES §6: tokens like USDT refuse one non-zero
        // amount over another), so at worst the key keeps the larger of before and after;
        // a revocation to 0 with enough gas is certain.
        let apply = |v: U256, kind: u8, a: U256| match kind {
            0 => U256::ZERO,
            1 => v + a,
            _ if a.is_zero() => U256::ZERO,
            _ => v.max(a),
        };
        // Each key's value: on `chain`, sequential; elsewhere, its largest over prefixes.
        let exposure = |signed: &std::collections::HashMap<u64, Vec<(usize, usize, u8, U256)>>, chain: u64| -> (U256, std::collections::HashMap<(usize, usize), U256>) {
            let mut vals: std::collections::HashMap<(usize, usize), U256> = Default::default();
            for (ch, list) in signed {
                let mut cur: std::collections::HashMap<(usize, usize), U256> = Default::default();
                for &(t, sp, kind, a) in list {
                    let v = apply(cur.get(&(t, sp)).copied().unwrap_or_default(), kind, a);
                    cur.insert((t, sp), v);
                    if *ch != chain {
                        let m = vals.entry((t, sp)).or_default();
                        *m = (*m).max(v);
                    }
                }
                if *ch == chain {
                    vals.extend(cur);
                }
            }
            let usd = vals.iter().fold(U256::ZERO, |acc, ((t, _), a)| {
                acc + crate::allowance::value_usd(*a, if *t == 1 { 18 } else { 6 }, price(*t))
            });
            (usd, vals)
        };
        for (t, sp, n, kind) in ops {
            let (chain, token, _) = tokens[t];
            let nonce = signed.get(&chain).map_or(0, |l| l.len() as u64);
            let amount = if t == 1 { U256::from(n) * U256::from(10u64).pow(U256::from(14)) } else { usdc(n) };
            let data = match kind {
                0 => approveCall { spender: spenders[sp], amount: U256::ZERO }.abi_encode(),
                1 => increaseAllowanceCall { spender: spenders[sp], added: amount }.abi_encode(),
                _ => approveCall { spender: spenders[sp], amount }.abi_encode(),
            };
            let payload = tx_at(chain, nonce, token, data);
            let (before, _) = exposure(&signed, chain);
            let mut next = signed.clone();
            next.entry(chain).or_default().push((t, sp, kind, amount));
            let (after, vals) = exposure(&next, chain);
            let cap = p.approval_caps[p.token_at(chain, &token).unwrap()].unwrap();
            // A revocation at a fresh nonce makes no new state possible: never checked. Any
            // other request is, against the figure with it alone (RULES §6: a figure without
            // it sums worst cases from different histories; a review of 2026-12-07).
            let _ = before;
            let over_ceiling = kind != 0 && after > usd(50_000);
            let over_cap = kind == 1 && vals[&(t, sp)] > cap;
            match sign(&p, &mut c, now, &payload) {
                Ok(_) => {
                    proptest::prop_assert!(!over_ceiling && !over_cap, "allowed beyond the model");
                    signed = next;
                }
                Err(d) => {
                    // Refused only for a reason the model sees.
                    proptest::prop_assert!(
                        (d.code == ErrorCode::ExposureCeiling && over_ceiling)
                            || (d.code == ErrorCode::UnlimitedApproval && (over_cap || amount > cap)),
                        "unexpected {d}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_request_that_takes_a_revocations_nonce_is_checked_for_what_the_revocation_covered() {
    // governance::t8_3 over HTTP: USDC/POOL is already approved at a later nonce, so the
    // replacement raises no key it grants — but it displaces the WETH revocation at nonce 3,
    // which the approval at nonce 4 was allowed on. Refused, whatever it grants (even nothing).
    let p = with("prices = { USDC = \"1.00\", USDCB = \"1.00\", WETH = \"3000\" }\nexposure_ceiling = \"50000 USD\"");
    let mut c = Counters::new();
    let now = t0() + 10;
    sign(&p, &mut c, now, &approve_tx_at(1, 0, USDC, ROUTER, usdc(20_000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 1, WETH, POOL, weth(5))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(8453, 0, USDC_B, ROUTER, usdc(10_000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 2, USDC, POOL, usdc(5_000))).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 3, WETH, POOL, U256::ZERO)).unwrap();
    sign(&p, &mut c, now, &approve_tx_at(1, 4, USDC, POOL, usdc(20_000))).unwrap();
    let d = decide(&p, &c, now, &approve_tx_at(1, 3, USDC, POOL, usdc(20_000))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("exposure_ceiling")), "{d}");
    let transfer = tx_at(1, 3, USDC, transferCall { to: OWNER, amount: usdc(1) }.abi_encode());
    let d = decide(&p, &c, now, &transfer).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("exposure_ceiling")), "{d}");
    // At a fresh nonce the same transfer is fine.
    decide(&p, &c, now, &tx_at(1, 5, USDC, transferCall { to: OWNER, amount: usdc(1) }.abi_encode())).unwrap();
}
