//! Regression tests for the adversarial review (issue 9), against the real binaries: the
//! caps. Each test is the attack as the review ran it; each failed before the fix.

use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::audit::Decision;
use bridle_common::protocol::*;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_tests::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

sol! {
    function transferAndCall(address to, uint256 amount, bytes data) returns (bool);
    function push(address to, uint256 amount);
    function execute(address dest, uint256 value, bytes func);
    function transfer(address to, uint256 amount) returns (bool);
    function setFee(uint8 fee);
}

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DAI: Address = address!("50c5725949a6f0c72e6c4a641f24049a917db0cb");
const OTHER_TOKEN: Address = address!("00000000000000000000000000000000000070c2");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn units(n: u64, decimals: u32) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(decimals))
}

fn call_tx(chain_id: u64, nonce: u64, to: Address, value: U256, data: Vec<u8>) -> TxRequest {
    TxRequest::Eip1559(Eip1559Request {
        chain_id,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(to),
        value,
        data: data.into(),
        access_list: vec![],
    })
}

/// Finding 1: concurrent 100-USDC requests against a 100 USDC/minute cap while the enclave's
/// clock jumps forward across many minute boundaries — and back. Before the fix, `now` was
/// read before the session lock and an older period rewound the counter: 6 200 USDC went
/// past the cap. Now every period holds at most one 100-USDC transfer, by the enclave's
/// own audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_at_period_boundaries_with_a_moving_clock() {
    let s = Arc::new(Stack::start());
    let text = format!(
        r#"
name = "per-minute"
chains = [{CHAIN}]
valid_for = "20h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "minute"
"#
    );
    let g = Arc::new(s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant"));
    // No valid_after: periods are counted from the session's creation.
    let anchor = g.created_at;

    // The clock: +13 s a step, and every 7th step 37 s back — a step once the workers have
    // answered 16 more requests since the last (at least every 40 ms), so that every period
    // sees requests however loaded the machine is (on a wall-clock schedule alone, a loaded
    // CI machine crossed 30 periods with a handful of requests: too few to test anything).
    const STEPS: i64 = 200;
    let offset = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mover = {
        let (s, offset, stop, answered) = (s.clone(), offset.clone(), stop.clone(), answered.clone());
        std::thread::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(120);
            for step in 1..=STEPS {
                let seen = answered.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(40));
                while answered.load(Ordering::SeqCst) < seen + 16 && Instant::now() < give_up {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let next = offset.load(Ordering::SeqCst) + if step % 7 == 0 { -37 } else { 13 };
                s.enclave.set_clock_offset(next);
                offset.store(next, Ordering::SeqCst);
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut workers = Vec::new();
    for w in 0..16u64 {
        let (s, g, offset, stop, answered) = (s.clone(), g.clone(), offset.clone(), stop.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            let (mut ok, mut capped, mut i) = (0u32, 0u32, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let tx = erc20_transfer(CHAIN, w * 1_000_000 + i, USDC, DEAD, units(100, 6));
                i += 1;
                let ts = now().saturating_add_signed(offset.load(Ordering::SeqCst));
                let payload = SignPayload::Transaction(tx);
                let (c, v) = s.sign_payload_at(&g, payload, ts).await;
                answered.fetch_add(1, Ordering::SeqCst);
                match (c, code(&v)) {
                    (200, _) => ok += 1,
                    (403, "spend_cap") => capped += 1,
                    // A stamp made just before a jump may fall outside the window: refused,
                    // never signed.
                    (401 | 403, "replayed") => {}
                    other => panic!("unexpected {other:?}: {v}"),
                }
            }
            (ok, capped)
        }));
    }
    let (mut ok, mut capped) = (0, 0);
    for w in workers {
        let (a, b) = w.await.unwrap();
        ok += a;
        capped += b;
    }
    mover.join().unwrap();
    assert!(ok >= 10 && capped > 0, "the run must cross many periods: {ok} signed, {capped} capped");

    // The enclave's own log: every signature of the session, at its session time.
    let (entries, _) = s.enclave.audit_log();
    let mut per_period: HashMap<u64, u32> = HashMap::new();
    let mut last = 0;
    for e in entries.iter().filter(|e| e.session == g.session) {
        assert!(e.time >= last, "session time went back: {} after {last}", e.time);
        last = e.time;
        if e.kind == Decision::Allowed {
            *per_period.entry((e.time.saturating_sub(anchor)) / 60).or_default() += 1;
        }
    }
    assert_eq!(per_period.values().sum::<u32>(), ok, "every signature is logged");
    let worst = per_period.iter().max_by_key(|(_, n)| **n).unwrap();
    assert_eq!(*worst.1, 1, "period {} holds {} transfers of 100 USDC under a 100 USDC/minute cap", worst.0, worst.1);
}

/// Finding 3: the README's DAI (listed for chain 8453) was unmetered on the other allowed
/// chain: 1 000 000 DAI refused on 8453 and signed on 31337.
#[tokio::test]
async fn a_token_listed_for_one_chain_is_never_unmetered_on_another() {
    let s = Stack::start();
    let text = format!(
        r#"
name = "dai"
chains = [31337, 8453]
valid_for = "1h"
[tokens]
DAI = {{ address = "{DAI}", decimals = 18, chain_id = 8453 }}
[[calls]]
target = "DAI"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 DAI"
per = "day"
"#
    );
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let big = units(1_000_000, 18);
    let (c, v) = s.sign(&g, erc20_transfer(8453, 0, DAI, DEAD, big)).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    let (c, v) = s.sign(&g, erc20_transfer(31337, 0, DAI, DEAD, big)).await;
    assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{v}");
    assert_eq!(v["error"]["rule"], "tokens[0]");
    // Within the cap on its own chain: signed.
    let (c, v) = s.sign(&g, erc20_transfer(8453, 0, DAI, DEAD, units(100, 18))).await;
    assert_eq!(c, 200, "{v}");
}

/// Finding 5 (and 9): wildcards and `*` bypassed recipients and token caps.
#[tokio::test]
async fn wildcards_meter_everything_that_moves_value() {
    let s = Stack::start();
    let owner = Actor::random();
    let text = format!(
        r#"
name = "wild"
chains = [{CHAIN}]
valid_for = "1h"
max_value_per_call = "1 ETH"
recipients = ["$owner"]
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "*"
functions = ["*"]
[[calls]]
target = "USDC"
functions = ["*"]
[[limits]]
max = "100 USDC"
per = "day"
[[limits]]
max = "2 ETH"
per = "day"
"#
    );
    let g = s.grant(&owner, &Actor::random(), &policy(&text)).await.expect("grant");
    let eth = units(1, 18);
    // 1 ETH to anyone with four junk bytes of calldata: the recipient rule applies.
    let (c, v) = s.sign(&g, call_tx(CHAIN, 0, DEAD, eth, vec![0xde, 0xad, 0xbe, 0xef])).await;
    assert_eq!((c, code(&v)), (403, "recipient_not_allowed"), "{v}");
    // To the owner: fine.
    let (c, v) = s.sign(&g, call_tx(CHAIN, 0, owner.address, eth, vec![0xde, 0xad, 0xbe, 0xef])).await;
    assert_eq!(c, 200, "{v}");
    // A listed token's unmetered functions, through "*" or the wildcard: refused.
    let tac = transferAndCallCall { to: DEAD, amount: units(1_000_000, 6), data: Bytes::new() }.abi_encode();
    let (c, v) = s.sign(&g, call_tx(CHAIN, 1, USDC, U256::ZERO, tac.clone())).await;
    assert_eq!((c, code(&v)), (403, "selector_not_allowed"), "{v}");
    let push = pushCall { to: DEAD, amount: units(1_000_000, 6) }.abi_encode();
    let (c, v) = s.sign(&g, call_tx(CHAIN, 1, USDC, U256::ZERO, push)).await;
    assert_eq!((c, code(&v)), (403, "selector_not_allowed"), "{v}");
    // An unlisted token's token-moving functions through the wildcard: refused.
    let (c, v) = s.sign(&g, call_tx(CHAIN, 1, OTHER_TOKEN, U256::ZERO, tac)).await;
    assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{v}");
    // Their overloads too (a review of 2026-12-06 passed these with nothing charged):
    // ERC-1363's short forms, OpenZeppelin 1.x's increaseApproval, ERC-4626's redeem and
    // withdraw to another receiver.
    let word = |a: Address| U256::from_be_slice(a.as_slice());
    for (sig, args) in [
        ("approveAndCall(address,uint256)", vec![word(DEAD), U256::MAX - U256::from(1)]),
        ("transferFromAndCall(address,address,uint256)", vec![word(owner.address), word(DEAD), units(5, 6)]),
        ("increaseApproval(address,uint256)", vec![word(DEAD), units(5, 6)]),
        ("redeem(uint256,address,address)", vec![units(5, 6), word(DEAD), word(owner.address)]),
        ("withdraw(uint256,address,address)", vec![units(5, 6), word(DEAD), word(owner.address)]),
    ] {
        let mut data = alloy_primitives::keccak256(sig)[..4].to_vec();
        data.extend(args.iter().flat_map(|a| a.to_be_bytes::<32>()));
        let (c, v) = s.sign(&g, call_tx(CHAIN, 1, OTHER_TOKEN, U256::ZERO, data)).await;
        assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{sig}: {v}");
    }
    // A smart account the session owns, told to move its USDC (SimpleAccount's execute):
    // the transfer inside is never decoded, so the wildcard does not cover it (a review of
    // 2026-12-04 moved a whole balance past the 100 USDC cap this way).
    let inner = transferCall { to: DEAD, amount: units(1_000_000, 6) }.abi_encode();
    let exec = executeCall { dest: USDC, value: U256::ZERO, func: Bytes::from(inner) }.abi_encode();
    let (c, v) = s.sign(&g, call_tx(CHAIN, 1, OTHER_TOKEN, U256::ZERO, exec)).await;
    assert_eq!((c, code(&v)), (403, "target_not_allowed"), "{v}");
    assert!(v.to_string().contains("executes calls as an account"), "{v}");
    // The metered ones are capped as ever.
    let (c, v) = s.sign(&g, erc20_transfer(CHAIN, 1, USDC, owner.address, units(101, 6))).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    let (c, v) = s.sign(&g, erc20_transfer(CHAIN, 1, USDC, DEAD, units(1, 6))).await;
    assert_eq!((c, code(&v)), (403, "recipient_not_allowed"), "{v}");
    // A token-moving function named explicitly for the token passed (the owner said so)
    // until 2026-12-07; now such a policy is refused (AG-212 4.1: it moved the token past
    // every cap): the host's normalize and the enclave both refuse it.
    let text2 = text.replace(
        "[[calls]]\ntarget = \"USDC\"\nfunctions = [\"*\"]",
        "[[calls]]\ntarget = \"USDC\"\nfunctions = [\"push(address,uint256)\"]",
    );
    let refused = bridle_common::policy::CompiledPolicy::compile(policy(&text2)).unwrap_err();
    assert!(refused.reason.contains("push(address,uint256)") && refused.reason.contains("may name only"), "{refused}");
    assert!(s.grant(&owner, &Actor::random(), &policy(&text2)).await.is_err(), "the enclave refuses it too");
}

/// Finding 8: an argument rule on a `uint8` read a word with its high bits set as a value out
/// of the type's range (5 with bit 8 set read as 261), so `fee >= 100` passed while a
/// contract that masks the word sees 5.
#[tokio::test]
async fn narrow_integer_arguments_must_be_canonical() {
    let s = Stack::start();
    let target = address!("000000000000000000000000000000000000fee5");
    let text = format!(
        r#"
name = "fee"
chains = [{CHAIN}]
valid_for = "1h"
[[calls]]
target = "{target}"
functions = [{{ signature = "setFee(uint8 fee)", args = [{{ arg = "fee", op = "gte", value = 100 }}] }}]
"#
    );
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let ok = setFeeCall { fee: 150 }.abi_encode();
    let (c, v) = s.sign(&g, call_tx(CHAIN, 0, target, U256::ZERO, ok)).await;
    assert_eq!(c, 200, "{v}");
    // fee = 5 with bit 8 set: read as 261 (passes `gte 100`); a contract that masks sees 5.
    let mut dirty = setFeeCall { fee: 5 }.abi_encode();
    dirty[4 + 30] = 0x01;
    let (c, v) = s.sign(&g, call_tx(CHAIN, 1, target, U256::ZERO, dirty)).await;
    assert_eq!((c, code(&v)), (403, "argument_rejected"), "{v}");
}

/// Finding 8: splitting a payment evaded the escalation threshold; now it is cumulative per
/// period.
#[tokio::test]
async fn escalation_thresholds_cannot_be_split_around() {
    let s = Stack::start();
    let text = format!(
        r#"
name = "escalate"
chains = [{CHAIN}]
valid_for = "1h"
escalate = {{ above_value = "1000 USDC", ttl = "10m" }}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100000 USDC"
per = "day"
"#
    );
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    for n in 0..10 {
        let (c, v) = s.sign(&g, erc20_transfer(CHAIN, n, USDC, DEAD, units(100, 6))).await;
        assert_eq!(c, 200, "{v}");
    }
    let (c, v) = s.sign(&g, erc20_transfer(CHAIN, 10, USDC, DEAD, units(1, 6))).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap().contains("after 1000 USDC moved"), "{v}");
}
