//! Unit tests: one or more per rule, period boundaries, and a property test against an
//! independent model of the daily cap.

use super::*;
use crate::error::ErrorCode;
use crate::period::parse_time;
use crate::tx::{Call, Gas};
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function swap(address tokenIn, uint256 amountIn, uint24 fee, (address,uint256) route);
}

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const DAI: Address = address!("6b175474e89094c44da98b954eedeac495271d0f");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const BOB: Address = address!("0000000000000000000000000000000000000b0b");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn policy(extra: &str) -> CompiledPolicy {
    let text = format!(
        r#"
name = "test"
chains = [1]
valid_for = "24h"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }}, DAI = {{ address = "{DAI}", decimals = 18 }} }}
{extra}
"#
    );
    let doc = file::resolve_text(&text, t0()).unwrap_or_else(|d| panic!("{d}"));
    CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("{d}"))
}

fn ctx(now: u64) -> Context {
    Context { now, anchor: t0(), owner: OWNER, account: ACCOUNT }
}

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn call(to: Address, data: Vec<u8>) -> Call {
    Call { to: Some(to), value: U256::ZERO, data: Bytes::from(data) }
}

fn xfer(token: Address, to: Address, amount: U256) -> Call {
    call(token, transferCall { to, amount }.abi_encode())
}

fn op<'a>(chain_id: u64, calls: &'a [Call], gas: Option<Gas>) -> Operation<'a> {
    Operation { chain_id, calls, gas, place: crate::allowance::Place::Own { chain_id, nonce: 0 }, holder: ACCOUNT }
}

fn eval(p: &CompiledPolicy, c: &Counters, now: u64, calls: &[Call]) -> Result<Charges, crate::Denial> {
    evaluate(p, c, &ctx(now), &op(1, calls, None))
}

/// Evaluate and charge on success, as the signing path does.
fn sign(p: &CompiledPolicy, c: &mut Counters, now: u64, calls: &[Call]) -> Result<(), ErrorCode> {
    match eval(p, c, now, calls) {
        Ok(ch) => {
            c.charge(p, &ch, t0(), now);
            Ok(())
        }
        Err(d) => Err(d.code),
    }
}

const USDC_DAILY: &str = r#"
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
"#;

#[test]
fn daily_cap_and_reset() {
    let p = policy(USDC_DAILY);
    let mut c = Counters::new();
    assert_eq!(sign(&p, &mut c, t0() + 5, &[xfer(USDC, ALICE, usdc(60))]), Ok(()));
    let d = eval(&p, &c, t0() + 6, &[xfer(USDC, ALICE, usdc(50))]).unwrap_err();
    assert_eq!(d.code, ErrorCode::SpendCap);
    assert_eq!(d.rule.as_deref(), Some("limits[0]"));
    assert_eq!(d.reason, "USDC per day: spent 60 USDC, asking 50 USDC, cap 100 USDC");
    // A denial charged nothing: exactly 40 more still fits.
    assert_eq!(sign(&p, &mut c, t0() + 7, &[xfer(USDC, ALICE, usdc(40))]), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 8, &[xfer(USDC, ALICE, U256::from(1))]), Err(ErrorCode::SpendCap));
    // Last second of the day, then the next period.
    assert_eq!(sign(&p, &mut c, t0() + 86_399, &[xfer(USDC, ALICE, U256::from(1))]), Err(ErrorCode::SpendCap));
}

#[test]
fn daily_cap_resets_next_period() {
    let text = format!(
        r#"
name = "t"
chains = [1]
valid_until = {}
max_duration = "3 days"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
{USDC_DAILY}"#,
        t0() + 3 * 86_400
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
    let mut c = Counters::new();
    assert_eq!(sign(&p, &mut c, t0(), &[xfer(USDC, ALICE, usdc(100))]), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 86_399, &[xfer(USDC, ALICE, usdc(1))]), Err(ErrorCode::SpendCap));
    assert_eq!(sign(&p, &mut c, t0() + 86_400, &[xfer(USDC, ALICE, usdc(100))]), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 86_401, &[xfer(USDC, ALICE, usdc(1))]), Err(ErrorCode::SpendCap));
}

#[test]
fn monthly_cap_follows_calendar_months() {
    // Anchored 31 Jan 2024: the second period starts 29 Feb (leap year).
    let anchor = parse_time("2024-01-31T00:00:00Z").unwrap();
    let text = format!(
        r#"
name = "m"
chains = [1]
valid_until = {}
max_duration = "120 days"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "10 USDC"
per = "month"
"#,
        anchor + 100 * 86_400
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, anchor).unwrap()).unwrap();
    let mut c = Counters::new();
    let run = |c: &mut Counters, now: u64| {
        let ch = evaluate(
            &p,
            c,
            &Context { now, anchor, owner: OWNER, account: ACCOUNT },
            &op(1, &[xfer(USDC, ALICE, usdc(10))], None),
        );
        match ch {
            Ok(ch) => {
                c.charge(&p, &ch, anchor, now);
                Ok(())
            }
            Err(d) => Err(d.code),
        }
    };
    assert_eq!(run(&mut c, anchor + 10), Ok(()));
    assert_eq!(run(&mut c, parse_time("2024-02-28T23:59:59Z").unwrap()), Err(ErrorCode::SpendCap));
    assert_eq!(run(&mut c, parse_time("2024-02-29T00:00:00Z").unwrap()), Ok(()));
    assert_eq!(run(&mut c, parse_time("2024-03-30T23:59:59Z").unwrap()), Err(ErrorCode::SpendCap));
    assert_eq!(run(&mut c, parse_time("2024-03-31T00:00:00Z").unwrap()), Ok(()));
}

#[test]
fn session_total_and_native_caps() {
    let p = policy(
        r#"
max_value_per_call = "0.5 ETH"
[[calls]]
target = "0x0000000000000000000000000000000000000b0b"
functions = ["receive()"]
[[limits]]
max = "1 ETH"
per = "session"
"#,
    );
    let mut c = Counters::new();
    let eth = |milli: u64| Call {
        to: Some(BOB),
        value: U256::from(milli) * U256::from(10u64).pow(U256::from(15)),
        data: Bytes::new(),
    };
    let d = eval(&p, &c, t0(), &[eth(600)]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ValueCap, Some("max_value_per_call")));
    assert_eq!(sign(&p, &mut c, t0(), &[eth(500)]), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 80_000, &[eth(500)]), Ok(()));
    let d = eval(&p, &c, t0() + 80_001, &[eth(1)]).unwrap_err();
    assert_eq!(d.code, ErrorCode::SpendCap);
    assert!(d.reason.starts_with("ETH per session: spent 1 ETH"), "{}", d.reason);
    // Calldata to the same target is a function call, not receive().
    let d = eval(&p, &c, t0(), &[call(BOB, vec![1, 2, 3, 4])]).unwrap_err();
    assert_eq!(d.code, ErrorCode::SelectorNotAllowed);
}

#[test]
fn time_bounds() {
    let text = format!(
        "name='t'\nchains=[1]\nvalid_after={}\nvalid_until={}\n[[calls]]\ntarget='*'\nfunctions=['receive()']\nmax_value_per_call='1 ETH'\n",
        t0() + 100,
        t0() + 200
    );
    // `max_value_per_call` after a table belongs to it in TOML: check that is refused.
    assert!(file::resolve_text(&text, t0()).is_err());
    let text = format!(
        "name='t'\nchains=[1]\nvalid_after={}\nvalid_until={}\nmax_value_per_call='1 ETH'\n[[calls]]\ntarget='*'\nfunctions=['receive()']\n",
        t0() + 100,
        t0() + 200
    );
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
    let c = Counters::new();
    let pay = [Call { to: Some(BOB), value: U256::from(1), data: Bytes::new() }];
    assert_eq!(eval(&p, &c, t0() + 99, &pay).unwrap_err().code, ErrorCode::NotYetValid);
    assert!(eval(&p, &c, t0() + 100, &pay).is_ok());
    assert!(eval(&p, &c, t0() + 199, &pay).is_ok());
    assert_eq!(eval(&p, &c, t0() + 200, &pay).unwrap_err().code, ErrorCode::Expired);
}

#[test]
fn lifetime_rules_at_creation() {
    // No valid_until: refused.
    let doc = file::resolve_text("name='t'\nchains=[1]\n", t0()).unwrap();
    let e = CompiledPolicy::compile(doc).unwrap_err();
    assert_eq!((e.code, e.rule.as_deref()), (ErrorCode::InvalidPolicy, Some("valid_until")));
    // 25 hours without max_duration: refused; with an explicit max: accepted.
    let doc = file::resolve_text("name='t'\nchains=[1]\nvalid_for='25h'\n", t0()).unwrap();
    let p = CompiledPolicy::compile(doc).unwrap();
    assert_eq!(p.check_lifetime(t0()).unwrap_err().code, ErrorCode::InvalidPolicy);
    let doc = file::resolve_text("name='t'\nchains=[1]\nvalid_for='25h'\nmax_duration='2 days'\n", t0()).unwrap();
    assert!(CompiledPolicy::compile(doc).unwrap().check_lifetime(t0()).is_ok());
    // Already over.
    let doc = file::resolve_text(&format!("name='t'\nchains=[1]\nvalid_until={}\n", t0() - 1), t0()).unwrap();
    assert_eq!(CompiledPolicy::compile(doc).unwrap().check_lifetime(t0()).unwrap_err().code, ErrorCode::Expired);
    // 24h exactly is fine — also checked by an enclave whose clock is a little behind the
    // owner's (who resolved `valid_for`), but not more than the skew allowed.
    let doc = file::resolve_text("name='t'\nchains=[1]\nvalid_for='24h'\n", t0()).unwrap();
    let p = CompiledPolicy::compile(doc).unwrap();
    assert!(p.check_lifetime(t0()).is_ok());
    assert!(p.check_lifetime(t0() - 1).is_ok());
    assert!(p.check_lifetime(t0() - super::compile::CLOCK_SKEW).is_ok());
    assert_eq!(p.check_lifetime(t0() - super::compile::CLOCK_SKEW - 1).unwrap_err().code, ErrorCode::InvalidPolicy);
}

#[test]
fn chains_quota_and_rate_limits() {
    let p = policy(&format!("quota = 3\n[[rate_limits]]\nmax = 2\nwindow = \"1 minute\"\n{USDC_DAILY}"));
    let mut c = Counters::new();
    let one = [xfer(USDC, ALICE, usdc(1))];
    let d = evaluate(&p, &c, &ctx(t0()), &op(5, &one, None)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ChainNotAllowed, Some("chains")));
    assert_eq!(sign(&p, &mut c, t0(), &one), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 30, &one), Ok(()));
    let d = eval(&p, &c, t0() + 59, &one).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("rate_limits[0]")));
    // Sliding window: at t0+60 the first signature has left the window.
    assert_eq!(sign(&p, &mut c, t0() + 60, &one), Ok(()));
    let d = eval(&p, &c, t0() + 500, &one).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::QuotaExhausted, Some("quota")));
}

#[test]
fn calls_allowlist() {
    let p = policy(USDC_DAILY);
    let c = Counters::new();
    let d = eval(&p, &c, t0(), &[xfer(DAI, ALICE, U256::from(1))]).unwrap_err();
    assert_eq!(d.code, ErrorCode::TargetNotAllowed);
    let d = eval(&p, &c, t0(), &[call(USDC, approveCall { spender: ROUTER, amount: U256::from(1) }.abi_encode())])
        .unwrap_err();
    assert_eq!(d.code, ErrorCode::SelectorNotAllowed);
    let d = eval(&p, &c, t0(), &[call(USDC, vec![0xa9, 0x05])]).unwrap_err();
    assert_eq!(d.code, ErrorCode::SelectorNotAllowed);
    let d = eval(&p, &c, t0(), &[Call { to: None, value: U256::ZERO, data: Bytes::new() }]).unwrap_err();
    assert_eq!(d.code, ErrorCode::TargetNotAllowed);
    // Truncated transfer arguments.
    let mut data = transferCall { to: ALICE, amount: U256::from(1) }.abi_encode();
    data.truncate(40);
    assert_eq!(eval(&p, &c, t0(), &[call(USDC, data)]).unwrap_err().code, ErrorCode::ArgumentRejected);
}

#[test]
fn argument_predicates() {
    let p = policy(
        r#"
[[calls]]
target = "USDC"
functions = [
  { signature = "transfer(address to, uint256 amount)", args = [
      { arg = "to", op = "in", values = ["0x00000000000000000000000000000000000a11ce", "$owner"] },
      { arg = 1, op = "lte", value = "50 USDC" },
  ] },
]
[[calls]]
target = "0xe592427a0aece92de3edee1f18e0157c05861564"
functions = [
  { signature = "swap(address,uint256,uint24,(address,uint256))", args = [
      { arg = 0, op = "not_in", values = ["DAI"] },
      { arg = 2, op = "eq", value = 3000 },
      { arg = "3.0", op = "eq", value = "$account" },
      { arg = "3.1", op = "gt", value = 10 },
  ] },
]
"#,
    );
    let c = Counters::new();
    assert!(eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(50))]).is_ok());
    assert!(eval(&p, &c, t0(), &[xfer(USDC, OWNER, usdc(1))]).is_ok());
    let d = eval(&p, &c, t0(), &[xfer(USDC, BOB, usdc(1))]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ArgumentRejected, Some("calls[0].functions[0].args[0]")));
    let d = eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(50) + U256::from(1))]).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("calls[0].functions[0].args[1]"));

    let sw = |token: Address, fee: u32, who: Address, n: u64| {
        call(
            ROUTER,
            swapCall {
                tokenIn: token,
                amountIn: U256::from(5),
                fee: alloy_primitives::aliases::U24::from(fee),
                route: (who, U256::from(n)),
            }
            .abi_encode(),
        )
    };
    assert!(eval(&p, &c, t0(), &[sw(USDC, 3000, ACCOUNT, 11)]).is_ok());
    assert_eq!(
        eval(&p, &c, t0(), &[sw(DAI, 3000, ACCOUNT, 11)]).unwrap_err().rule.as_deref(),
        Some("calls[1].functions[0].args[0]")
    );
    assert_eq!(
        eval(&p, &c, t0(), &[sw(USDC, 500, ACCOUNT, 11)]).unwrap_err().rule.as_deref(),
        Some("calls[1].functions[0].args[1]")
    );
    assert_eq!(
        eval(&p, &c, t0(), &[sw(USDC, 3000, BOB, 11)]).unwrap_err().rule.as_deref(),
        Some("calls[1].functions[0].args[2]")
    );
    assert_eq!(
        eval(&p, &c, t0(), &[sw(USDC, 3000, ACCOUNT, 10)]).unwrap_err().rule.as_deref(),
        Some("calls[1].functions[0].args[3]")
    );
}

#[test]
fn invalid_argument_rules_are_refused() {
    let bad = [
        r#"functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 5, op = "eq", value = 1 }] }]"#,
        r#"functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 0, op = "lt", value = "$owner" }] }]"#,
        r#"functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 1, op = "eq", values = [1, 2] }] }]"#,
        r#"functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 1, op = "like", value = 1 }] }]"#,
        r#"functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 0, op = "eq", value = true }] }]"#,
        r#"functions = ["transfer(address,uint256"]"#,
        r#"functions = []"#,
    ];
    for b in bad {
        let text = format!("name='t'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='0x0000000000000000000000000000000000000001'\n{b}\n");
        let r = file::resolve_text(&text, t0()).and_then(CompiledPolicy::compile);
        let e = r.expect_err(b);
        assert_eq!(e.code, ErrorCode::InvalidPolicy, "{b}");
    }
}

#[test]
fn recipients_list() {
    let p = policy(&format!("recipients = [\"$owner\", \"0x00000000000000000000000000000000000a11ce\"]\n{USDC_DAILY}"));
    let c = Counters::new();
    assert!(eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(1))]).is_ok());
    assert!(eval(&p, &c, t0(), &[xfer(USDC, OWNER, usdc(1))]).is_ok());
    let d = eval(&p, &c, t0(), &[xfer(USDC, BOB, usdc(1))]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RecipientNotAllowed, Some("recipients")));
}

#[test]
fn gas_rules() {
    let p = policy(&format!(
        r#"
[gas]
max_fee_per_gas = "100 gwei"
max_priority_fee_per_gas = "2 gwei"
max_gas_limit = 100000
count_in_native = true
[[gas.limits]]
max = "0.01 ETH"
per = "day"
[[limits]]
max = "0.012 ETH"
per = "day"
{USDC_DAILY}"#
    ));
    let mut c = Counters::new();
    let one = [xfer(USDC, ALICE, usdc(1))];
    let gwei = 1_000_000_000u128;
    let op = |g: Gas| op(1, &one, Some(g));
    let g = |limit: u64, fee: u128, tip: u128| Gas {
        gas_limit: limit,
        max_fee_per_gas: fee * gwei,
        max_priority_fee_per_gas: tip * gwei,
        access_list_gas: 0,
        paid_to_bundler: false,
    };
    assert_eq!(
        evaluate(&p, &c, &ctx(t0()), &op(g(50_000, 101, 1))).unwrap_err().rule.as_deref(),
        Some("gas.max_fee_per_gas")
    );
    assert_eq!(
        evaluate(&p, &c, &ctx(t0()), &op(g(50_000, 100, 3))).unwrap_err().rule.as_deref(),
        Some("gas.max_priority_fee_per_gas")
    );
    assert_eq!(
        evaluate(&p, &c, &ctx(t0()), &op(g(100_001, 10, 1))).unwrap_err().rule.as_deref(),
        Some("gas.max_gas_limit")
    );
    // 100k gas × 60 gwei = 0.006 ETH of the 0.01 ETH daily gas budget.
    let ch = evaluate(&p, &c, &ctx(t0()), &op(g(100_000, 60, 1))).unwrap();
    assert_eq!(ch.gas_cost, U256::from(6_000_000_000_000_000u64));
    assert_eq!(ch.native, ch.gas_cost, "gas counts in native spend");
    c.charge(&p, &ch, t0(), t0());
    let d = evaluate(&p, &c, &ctx(t0() + 1), &op(g(100_000, 50, 1))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::GasCap, Some("gas.cost_limits[0]")));
    // 0.004 ETH more fits the gas budget (0.01) and the native cap (0.012).
    assert!(evaluate(&p, &c, &ctx(t0() + 1), &op(g(100_000, 40, 1))).is_ok());
}

#[test]
fn native_cap_counts_gas_when_asked() {
    let p =
        policy(&format!("[gas]\ncount_in_native = true\n[[limits]]\nmax = \"0.001 ETH\"\nper = \"day\"\n{USDC_DAILY}"));
    let c = Counters::new();
    let one = [xfer(USDC, ALICE, usdc(1))];
    let g = Gas {
        gas_limit: 100_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1,
        access_list_gas: 0,
        paid_to_bundler: false,
    };
    let d = evaluate(&p, &c, &ctx(t0()), &op(1, &one, Some(g))).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::SpendCap, Some("limits[0]")));
}

const APPROVALS: &str = r#"
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)", "increaseAllowance(address,uint256)"]
[[calls]]
target = "0x00000000000000000000000000000000000000d1"
functions = ["approve(address,uint256)"]
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["500 USDC"]
"#;

#[test]
fn approvals_are_bounded() {
    let p = policy(APPROVALS);
    let c = Counters::new();
    let appr = |spender: Address, amount: U256| call(USDC, approveCall { spender, amount }.abi_encode());
    assert!(eval(&p, &c, t0(), &[appr(ROUTER, usdc(500))]).is_ok());
    let d = eval(&p, &c, t0(), &[appr(ROUTER, U256::MAX)]).unwrap_err();
    assert_eq!(d.code, ErrorCode::UnlimitedApproval);
    let d = eval(&p, &c, t0(), &[appr(ROUTER, usdc(501))]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::UnlimitedApproval, Some("approvals.caps[0]")));
    let d = eval(&p, &c, t0(), &[appr(BOB, usdc(1))]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::SpenderNotAllowed, Some("approvals.spenders")));
    // Revoking to zero is allowed for any spender.
    assert!(eval(&p, &c, t0(), &[appr(BOB, U256::ZERO)]).is_ok());
    let inc = call(USDC, increaseAllowanceCall { spender: ROUTER, added: U256::MAX }.abi_encode());
    assert_eq!(eval(&p, &c, t0(), &[inc]).unwrap_err().code, ErrorCode::UnlimitedApproval);
    // Unknown token: no cap can bound it.
    let unknown = address!("00000000000000000000000000000000000000d1");
    let d = eval(&p, &c, t0(), &[call(unknown, approveCall { spender: ROUTER, amount: U256::from(1) }.abi_encode())])
        .unwrap_err();
    assert_eq!(d.code, ErrorCode::UnlimitedApproval);
    // Approvals count against the token's spend caps.
    let p = policy(&format!("{APPROVALS}\n[[limits]]\nmax = \"100 USDC\"\nper = \"day\"\n"));
    let c = Counters::new();
    assert_eq!(eval(&p, &c, t0(), &[appr(ROUTER, usdc(101))]).unwrap_err().code, ErrorCode::SpendCap);
}

#[test]
fn wildcard_needs_caps_and_listed_tokens() {
    let no_caps = "[[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n";
    let text = format!(
        "name='t'\nchains=[1]\nvalid_for='1h'\n[tokens]\nUSDC = {{ address = \"{USDC}\", decimals = 6 }}\n{no_caps}"
    );
    let e = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidPolicy);
    let text = format!("name='t'\nchains=[1]\nvalid_for='1h'\nmax_value_per_call='0.1 ETH'\n[tokens]\nUSDC = {{ address = \"{USDC}\", decimals = 6 }}\n{no_caps}");
    let e = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap_err();
    assert!(e.reason.contains("USDC"), "{e}");
    let text = format!("{text}[[limits]]\nmax='10 USDC'\nper='day'\n");
    let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
    let c = Counters::new();
    assert!(eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(10))]).is_ok());
    assert_eq!(eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(11))]).unwrap_err().code, ErrorCode::SpendCap);
    // An unlisted token through the wildcard: refused.
    assert_eq!(eval(&p, &c, t0(), &[xfer(DAI, ALICE, U256::from(1))]).unwrap_err().code, ErrorCode::TargetNotAllowed);
    // Any other call is fine within the value cap.
    assert!(eval(&p, &c, t0(), &[call(ROUTER, vec![1, 2, 3, 4])]).is_ok());
    // An account executing calls (here a USDC transfer inside SimpleAccount's execute) on
    // any contract, through the wildcard: refused, as its inner calls go unmetered.
    let inner = transferCall { to: ALICE, amount: usdc(1_000) }.abi_encode();
    for sig in crate::policy::calls::ACCOUNT_EXECUTING {
        let h = alloy_primitives::keccak256(sig.as_bytes());
        let mut data = h[..4].to_vec();
        data.extend_from_slice(&inner);
        let d = eval(&p, &c, t0(), &[call(ROUTER, data)]).unwrap_err();
        assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TargetNotAllowed, Some("calls")), "{sig}: {d}");
    }
    // An account the session signs user operations for: no function of it through the
    // wildcard (a plain value transfer to it still passes).
    let senders = format!("{text}[user_operations]\nentry_points=['v0.7']\nsenders=['{ROUTER}']\n");
    let p = CompiledPolicy::compile(file::resolve_text(&senders, t0()).unwrap()).unwrap();
    let d = eval(&p, &c, t0(), &[call(ROUTER, vec![1, 2, 3, 4])]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::TargetNotAllowed, Some("user_operations.senders")), "{d}");
    assert!(eval(&p, &c, t0(), &[call(ROUTER, vec![])]).is_ok());
    assert!(!crate::policy::explain::explain(&p).contains("warning: with a wildcard target"));
    // User operations from any sender beside a wildcard: explain warns.
    let any = format!("{text}[user_operations]\nentry_points=['v0.7']\n");
    let any = CompiledPolicy::compile(file::resolve_text(&any, t0()).unwrap()).unwrap();
    assert!(crate::policy::explain::explain(&any).contains("warning: with a wildcard target"));
    // Named in a rule, the owner's word: allowed.
    let named = format!("{senders}[[calls]]\ntarget='{ROUTER}'\nfunctions=['execute(address,uint256,bytes)']\n");
    let p = CompiledPolicy::compile(file::resolve_text(&named, t0()).unwrap()).unwrap();
    let mut data = alloy_primitives::keccak256("execute(address,uint256,bytes)")[..4].to_vec();
    data.extend_from_slice(&alloy_sol_types::SolValue::abi_encode_params(&(
        USDC,
        U256::ZERO,
        alloy_primitives::Bytes::from(inner),
    )));
    assert!(eval(&p, &c, t0(), &[call(ROUTER, data)]).is_ok());
}

#[test]
fn streams_accrue() {
    let p = policy(&format!(
        "[[streams]]\ninitial = \"10 USDC\"\nrate = \"1 USDC\"\nevery = \"1 hour\"\nmax = \"20 USDC\"\n{USDC_DAILY}"
    ));
    let mut c = Counters::new();
    assert_eq!(sign(&p, &mut c, t0(), &[xfer(USDC, ALICE, usdc(10))]), Ok(()));
    let d = eval(&p, &c, t0() + 1800, &[xfer(USDC, ALICE, usdc(1))]).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::SpendCap, Some("streams[0]")));
    assert_eq!(sign(&p, &mut c, t0() + 3600, &[xfer(USDC, ALICE, usdc(1))]), Ok(()));
    assert_eq!(sign(&p, &mut c, t0() + 3600 * 20, &[xfer(USDC, ALICE, usdc(9))]), Ok(()));
    // Capped at max = 20 in total.
    assert_eq!(sign(&p, &mut c, t0() + 3600 * 23, &[xfer(USDC, ALICE, usdc(1))]), Err(ErrorCode::SpendCap));
}

#[test]
fn batch_totals_are_charged_together() {
    let p = policy(USDC_DAILY);
    let c = Counters::new();
    let d = eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(60)), xfer(USDC, BOB, usdc(60))]).unwrap_err();
    assert_eq!(d.code, ErrorCode::SpendCap);
    assert!(eval(&p, &c, t0(), &[xfer(USDC, ALICE, usdc(50)), xfer(USDC, BOB, usdc(50))]).is_ok());
}

#[test]
fn update_carries_spend_over() {
    let p = policy(USDC_DAILY);
    let mut c = Counters::new();
    assert_eq!(sign(&p, &mut c, t0(), &[xfer(USDC, ALICE, usdc(90))]), Ok(()));
    // The counters belong to the session: a new policy reads the same ledger.
    let p2 = policy(&format!("{USDC_DAILY}[[limits]]\nmax = \"1 ETH\"\nper = \"day\"\n"));
    assert_eq!(eval(&p2, &c, t0() + 1, &[xfer(USDC, ALICE, usdc(11))]).unwrap_err().code, ErrorCode::SpendCap);
    assert_eq!(c.uses, 1);
    // Review finding 9: 100 USDC spent under "100/day", then "300/week": 200 more that
    // week, not 300 — whatever the period or symbol the new rule has.
    let mut c = Counters::new();
    assert_eq!(sign(&p, &mut c, t0(), &[xfer(USDC, ALICE, usdc(100))]), Ok(()));
    let weekly = USDC_DAILY.replace("max = \"100 USDC\"\nper = \"day\"", "max = \"300 USDC\"\nper = \"week\"");
    let p3 = policy(&weekly);
    assert_eq!(eval(&p3, &c, t0() + 1, &[xfer(USDC, ALICE, usdc(201))]).unwrap_err().code, ErrorCode::SpendCap);
    assert_eq!(sign(&p3, &mut c, t0() + 1, &[xfer(USDC, ALICE, usdc(200))]), Ok(()));
}

#[test]
fn policy_hash_is_stable_and_sensitive() {
    let a = policy(USDC_DAILY);
    let b = policy(USDC_DAILY);
    assert_eq!(a.hash, b.hash);
    let c = policy(&USDC_DAILY.replace("100 USDC", "101 USDC"));
    assert_ne!(a.hash, c.hash);
    // The canonical JSON round-trips to the same document and hash.
    let back: Policy = serde_json::from_slice(&a.doc.canonical_bytes()).unwrap();
    assert_eq!(back.hash(), a.hash);
    // Unknown fields are refused.
    let mut v: serde_json::Value = serde_json::from_slice(&a.doc.canonical_bytes()).unwrap();
    v["surprise"] = serde_json::json!(1);
    assert!(serde_json::from_value::<Policy>(v).is_err());
}

/// `release_signers` (cluster key custody, ATTESTATION.md): PCR8 values, parsed from the
/// file with or without `0x`, kept out of the canonical form when empty (older policies keep
/// their hash); an all-zero PCR8 (every unsigned image's), a repeat, or more than eight are
/// refused, naming the entry.
#[test]
fn release_signers_are_pcr8_values_and_never_the_unsigned_one() {
    let signer = "5e".repeat(48);
    let p = policy(&format!("release_signers = [\"{signer}\", \"0x{}\"]", "a1".repeat(48)));
    assert_eq!(p.doc.release_signers.len(), 2);
    assert_eq!(hex::encode(p.doc.release_signers[0]), signer);
    let json = String::from_utf8(p.doc.canonical_bytes()).unwrap();
    assert!(json.contains(&format!("\"release_signers\":[\"0x{signer}\"")), "{json}");
    assert!(!String::from_utf8(policy("").doc.canonical_bytes()).unwrap().contains("release_signers"));
    assert!(explain::explain(&p).contains(&format!("PCR8 {signer}")));

    let refused = |extra: String| {
        let text = format!("name = \"t\"\nchains = [1]\nvalid_for = \"24h\"\n{extra}\n");
        match file::resolve_text(&text, t0()) {
            Err(d) => d,
            Ok(doc) => CompiledPolicy::compile(doc).expect_err("refused"),
        }
    };
    let d = refused(format!("release_signers = [\"{}\"]", "00".repeat(48)));
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::InvalidPolicy, Some("release_signers[0]")), "{d}");
    assert!(d.reason.contains("unsigned image"), "{d}");
    let d = refused(format!("release_signers = [\"{signer}\", \"{signer}\"]"));
    assert_eq!(d.rule.as_deref(), Some("release_signers[1]"), "{d}");
    let d = refused("release_signers = [\"5e5e\"]".into());
    assert_eq!(d.rule.as_deref(), Some("release_signers[0]"), "{d}");
    let nine: Vec<String> = (1..=9u8).map(|i| format!("\"{}\"", hex::encode([i; 48]))).collect();
    let d = refused(format!("release_signers = [{}]", nine.join(", ")));
    assert_eq!(d.rule.as_deref(), Some("release_signers"), "{d}");
}

mod model {
    //! The daily cap against an independent model: a plain list of what was signed.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]
        #[test]
        fn never_exceeds_daily_cap(ops in proptest::collection::vec((0u64..60, 0u64..3 * 3600), 1..80)) {
            let text = format!(
                "name='t'\nchains=[1]\nvalid_until={}\nmax_duration='3 days'\n[tokens]\nUSDC = {{ address = \"{USDC}\", decimals = 6 }}\n{USDC_DAILY}",
                t0() + 3 * 86_400
            );
            let p = CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap();
            let mut c = Counters::new();
            let mut now = t0();
            let mut signed: Vec<(u64, u64)> = Vec::new();
            for (amount, dt) in ops {
                now += dt;
                if now >= t0() + 3 * 86_400 {
                    prop_assert_eq!(sign(&p, &mut c, now, &[xfer(USDC, ALICE, usdc(amount))]), Err(ErrorCode::Expired));
                    break;
                }
                let day = (now - t0()) / 86_400;
                let model_spent: u64 = signed.iter().filter(|(d, _)| *d == day).map(|(_, a)| a).sum();
                let model_allows = model_spent + amount <= 100;
                let got = sign(&p, &mut c, now, &[xfer(USDC, ALICE, usdc(amount))]);
                prop_assert_eq!(got.is_ok(), model_allows, "amount {} at day {} spent {}", amount, day, model_spent);
                if got.is_ok() {
                    signed.push((day, amount));
                } else {
                    prop_assert_eq!(got, Err(ErrorCode::SpendCap));
                }
            }
        }
    }
}

#[test]
fn parameter_types_are_bounded_by_alloys_depth_and_their_parts() {
    // A second review: the text's bracket count let `T[1][1]…` through with hundreds of
    // dimensions, each a node alloy's decoder clones for every element.
    let deep = format!("exec(address to, bool{}[] data)", "[1]".repeat(300));
    let huge = "exec(address to, uint256[100000] data)".to_string();
    let nine = format!("exec(address to, bool{}[] data)", "[1]".repeat(8));
    for sig in [deep, huge, nine] {
        let text = format!(
            "name='t'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='0x0000000000000000000000000000000000000001'\nfunctions = [{{ signature = \"{sig}\", args = [{{ arg = 0, op = \"eq\", value = \"{ALICE}\" }}] }}]\n"
        );
        let e = file::resolve_text(&text, t0()).and_then(CompiledPolicy::compile).expect_err(&sig);
        assert_eq!(e.code, ErrorCode::InvalidPolicy, "{sig}: {e}");
    }
    policy(&format!(
        "[[calls]]\ntarget = \"{ROUTER}\"\nfunctions = [{{ signature = \"exec(address to, bool{}[] data, uint256[64] w)\", args = [{{ arg = 0, op = \"eq\", value = \"{ALICE}\" }}] }}]",
        "[1]".repeat(6)
    ));
}

#[test]
fn arguments_are_decoded_once_within_a_bound_and_shown_short() {
    use alloy_dyn_abi::DynSolValue as V;
    let p = policy(&format!(
        "[[calls]]\ntarget = \"{ROUTER}\"\nfunctions = [{{ signature = \"exec(address to, uint256[] xs, bytes data)\", args = [{{ arg = 2, op = \"eq\", value = \"0x01\" }}] }}]"
    ));
    let sel = alloy_primitives::keccak256("exec(address,uint256[],bytes)");
    let data = |n: usize, blob: usize| {
        let args = V::Tuple(vec![
            V::Address(ALICE),
            V::Array(vec![V::Uint(U256::from(1), 256); n]),
            V::Bytes(vec![0xab; blob]),
        ]);
        [&sel[..4], &args.abi_encode_params()].concat()
    };
    // Within the bound the rule decides; a denial shows at most 256 bytes of the argument.
    let d = eval(&p, &Counters::new(), t0(), &[call(ROUTER, data(10, 100_000))]).unwrap_err();
    assert_eq!(d.code, ErrorCode::ArgumentRejected);
    assert!(d.reason.len() < 1024 && d.reason.contains("(100000 bytes)"), "{}", d.reason.len());
    // 20 000 elements: more nodes than the decoder may build; refused before decoding.
    let d = eval(&p, &Counters::new(), t0(), &[call(ROUTER, data(20_000, 1))]).unwrap_err();
    assert_eq!(d.code, ErrorCode::ArgumentRejected);
    assert!(d.reason.contains("at most 8192"), "{d}");
}

#[test]
fn a_restored_policy_is_not_held_to_the_newer_type_bounds() {
    // A policy an earlier build accepted (ten dimensions) still compiles from a snapshot,
    // so one session cannot stop a newer node from installing it; a new one is refused.
    let six = format!("bool{}[]", "[1]".repeat(6));
    let text = format!(
        "name='t'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='{ROUTER}'\nfunctions = [{{ signature = \"exec(address to, {six} data)\", args = [{{ arg = 0, op = \"eq\", value = \"{ALICE}\" }}] }}]\n"
    );
    let json = serde_json::to_string(&file::resolve_text(&text, t0()).unwrap()).unwrap();
    let old: crate::policy::Policy =
        serde_json::from_str(&json.replace(&six, &format!("bool{}[]", "[1]".repeat(9)))).unwrap();
    assert_eq!(CompiledPolicy::compile(old.clone()).unwrap_err().code, ErrorCode::InvalidPolicy);
    CompiledPolicy::compile_restored(old).unwrap();
    // A typed-data rule naming an elementary type, accepted before the struct-name rule.
    let text = "name='t'\nchains=[1]\nvalid_for='1h'\n[[typed_data]]\nname = \"X\"\nverifying_contract = \"0x00000000000000000000000000000000000000c1\"\nprimary_type = \"Thing\"\n";
    let json = serde_json::to_string(&file::resolve_text(text, t0()).unwrap()).unwrap();
    let old: crate::policy::Policy = serde_json::from_str(&json.replace("\"Thing\"", "\"bytes32\"")).unwrap();
    assert_eq!(CompiledPolicy::compile(old.clone()).unwrap_err().code, ErrorCode::InvalidPolicy);
    CompiledPolicy::compile_restored(old).unwrap();
}

#[test]
fn a_policy_document_is_read_as_it_is() {
    // What `bridle policy normalize` prints (and what the enclave receives) is accepted as
    // policy text: the owner's console compares the document it is shown with it.
    let p = policy("");
    let compact = String::from_utf8(p.doc.canonical_bytes()).unwrap();
    let pretty = serde_json::to_string_pretty(&p.doc).unwrap();
    for text in [&compact, &pretty] {
        let again = file::resolve_text(text, t0() + 1000).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(again, p.doc);
        assert_eq!(CompiledPolicy::compile(again).unwrap().hash, p.hash);
    }
    // The file's checks still hold: a duplicate key or a field it does not know is refused.
    let dup = compact.replacen("{", "{\"name\":\"x\",", 1);
    assert_eq!(file::resolve_text(&dup, t0()).unwrap_err().code, ErrorCode::InvalidPolicy);
    let unknown = compact.replacen("{", "{\"surprise\":1,", 1);
    assert_eq!(file::resolve_text(&unknown, t0()).unwrap_err().code, ErrorCode::InvalidPolicy);
}
