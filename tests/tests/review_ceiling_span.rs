//! Exposure ceilings against requests that make separate worst cases coincide (a review of
//! 2026-12-07 of limits that span sessions and time; each test failed before the fix). A
//! replacement at a nonce whose earlier item was followed by a revocation and a new
//! approval passed the ceilings as "not a raise", because the figure "without it" summed
//! each key's worst case over *different* histories — a sum no history reaches, which the
//! replacement then made real; gaps filled below later approvals raised no key's worst case
//! and were never checked. Now every request that makes a new state possible is checked
//! against the figure with it alone (RULES §6).
//!
//! Against the real binaries (enclave + host), as `aggregate_exposure.rs` drives them.

use alloy_primitives::{address, Address, U256};
use bridle_tests::*;

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn spender(i: u64) -> Address {
    Address::with_last_byte(0x40 + i as u8)
}

fn governed(extra: &str) -> String {
    let spenders: Vec<String> = (0..10).map(|i| format!("\"{}\"", spender(i))).collect();
    format!(
        r#"
name = "ceiling-span"
chains = [{CHAIN}]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
{extra}
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["approve(address,uint256)"]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = [{}]
max = ["1000 USDC"]
"#,
        spenders.join(", ")
    )
}

fn rule(v: &serde_json::Value) -> &str {
    v["error"]["rule"].as_str().unwrap_or("<none>")
}

/// One session, `exposure_ceiling = "100 USD"`. Nonce 0 approves K1 100, nonce 1 revokes K1
/// (gas at the floor, chain 31337: it forces the reset), nonce 2 approves K2 100 — each
/// within the ceiling, and no history ever holds more than 100 USDC approved. Then nonce 0
/// is re-signed approving K3 100: in the history nonce 0 (K3) → 1 → 2 (K2), K3 and K2 are
/// both live, 200 USDC against a 100 USD ceiling. The enclave signed it before the fix; it is refused now.
#[tokio::test]
async fn a_replacement_that_would_realize_a_sum_past_the_session_ceiling_is_refused() {
    let s = Stack::start();
    let g = s
        .grant(&Actor::random(), &Actor::random(), &policy(&governed("exposure_ceiling = \"100 USD\"")))
        .await
        .expect("grant");
    let (k1, k2, k3) = (spender(1), spender(2), spender(3));
    for (nonce, who, amount) in [(0, k1, usdc(100)), (1, k1, U256::ZERO), (2, k2, usdc(100))] {
        let (code, v) = s.sign(&g, erc20_approve(CHAIN, nonce, USDC, who, amount)).await;
        assert_eq!(code, 200, "setup nonce {nonce}: {v}");
    }
    // Sanity: a fresh approval at nonce 3 is refused (100 outstanding after nonce 2).
    let (code, v) = s.sign(&g, erc20_approve(CHAIN, 3, USDC, k3, usdc(100))).await;
    assert_eq!((code, code_of(&v)), (403, "exposure_ceiling"), "{v}");
    // The attack: the same approval of K3, at nonce 0 instead (replacing K1's approval).
    let (code, v) = s.sign(&g, erc20_approve(CHAIN, 0, USDC, k3, usdc(100))).await;
    assert_eq!(
        (code, code_of(&v)),
        (403, "exposure_ceiling"),
        "signed: mined as nonce 0 (approve K3 100), 1 (approve K1 0), 2 (approve K2 100), the session's \
         address has 200 USDC approved (K3 and K2) against its 100 USD exposure ceiling: {v}"
    );
}

/// The same across sessions, against `owner_exposure_ceiling = "200 USD"`: session B holds
/// 100 USDC approved; session A, as above, ends with 100 at worst in any one history (the
/// owner's group at 200, its ceiling). A's replacement at nonce 0 was signed, and the
/// history A: 0 (K3) → 1 → 2 (K2), B: 0 holds 300 USDC approved across the owner's sessions.
#[tokio::test]
async fn a_replacement_past_the_owner_wide_ceiling_is_refused() {
    let s = Stack::start();
    let owner = Actor::random();
    let p = policy(&governed("owner_exposure_ceiling = \"200 USD\""));
    let a = s.grant(&owner, &Actor::random(), &p).await.expect("grant a");
    let b = s.grant(&owner, &Actor::random(), &p).await.expect("grant b");
    let (code, v) = s.sign(&b, erc20_approve(CHAIN, 0, USDC, spender(9), usdc(100))).await;
    assert_eq!(code, 200, "B: {v}");
    let (k1, k2, k3) = (spender(1), spender(2), spender(3));
    for (nonce, who, amount) in [(0, k1, usdc(100)), (1, k1, U256::ZERO), (2, k2, usdc(100))] {
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, nonce, USDC, who, amount)).await;
        assert_eq!(code, 200, "A setup nonce {nonce}: {v}");
    }
    // Sanity: B cannot add a dollar more (the group is at its ceiling, as the book counts it).
    let (code, v) = s.sign(&b, erc20_approve(CHAIN, 1, USDC, spender(8), usdc(1))).await;
    assert_eq!((code, rule(&v)), (403, "owner_exposure_ceiling"), "{v}");
    // The attack.
    let (code, v) = s.sign(&a, erc20_approve(CHAIN, 0, USDC, k3, usdc(100))).await;
    assert_eq!(
        (code, rule(&v)),
        (403, "owner_exposure_ceiling"),
        "signed: with A's nonces mined as 0 (approve K3 100), 1 (approve K1 0), 2 (approve K2 100) and \
         B's approval, the owner's sessions hold 300 USDC approved against a 200 USD owner-wide ceiling: {v}"
    );
}

/// Iterated: pairs (approve Ki, revoke Ki) at nonces 2i, 2i+1 for i < M, then approve K_M at
/// 2M — at most 100 USDC approved at any point of any history, the owner-wide ceiling.
/// Then each nonce 2i is re-signed approving a fresh spender Zi, never revoked. Every
/// replacement passed as "not a raise", and the history Z0, revoke K0, Z1, revoke K1, …,
/// K_M holds (M + 1) × 100 USDC approved at once against the 100 USD owner-wide ceiling.
#[tokio::test]
async fn replacements_cannot_iterate_past_the_owner_wide_ceiling() {
    const M: u64 = 4;
    let s = Stack::start();
    let owner = Actor::random();
    let a = s
        .grant(&owner, &Actor::random(), &policy(&governed("owner_exposure_ceiling = \"100 USD\"")))
        .await
        .expect("grant");
    for i in 0..M {
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, 2 * i, USDC, spender(i), usdc(100))).await;
        assert_eq!(code, 200, "approve K{i}: {v}");
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, 2 * i + 1, USDC, spender(i), U256::ZERO)).await;
        assert_eq!(code, 200, "revoke K{i}: {v}");
    }
    let (code, v) = s.sign(&a, erc20_approve(CHAIN, 2 * M, USDC, spender(M), usdc(100))).await;
    assert_eq!(code, 200, "approve K{M}: {v}");
    let mut live = 100u64; // K_M, in the history built below
    for i in 0..M {
        // Zi = spender(5 + i): listed, never approved before.
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, 2 * i, USDC, spender(5 + i), usdc(100))).await;
        if code == 200 {
            live += 100;
        } else {
            eprintln!("replacement at nonce {}: {code} {v}", 2 * i);
        }
    }
    assert!(
        live <= 100,
        "one history consistent with what the enclave signed (Z0, revoke K0, Z1, revoke K1, …, K{M}) holds {live} USDC \
         approved from this owner's session against a 100 USD owner-wide ceiling"
    );
}

/// No replacement at all, and no request that raises any key's worst case: the agent leaves
/// nonces 0..M unsigned, signs at M.. the chain approve K1, revoke K1, approve K2, revoke
/// K2, …, approve K_M (each within the 100 USD owner-wide ceiling: a revocation below forces
/// the earlier key to 0), then fills the gaps 0..M with approve K1 … approve K_M. Each fill
/// leaves every key's worst case where it was (K_i is already 100 at worst from its later
/// approval), so it "raises nothing" and passed unchecked (`raise_of` → None,
/// `check_allowances` → Ok); mined 0..M, the fills hold K1 … K_M at 100 each at once.
#[tokio::test]
async fn gap_fills_that_would_make_separate_peaks_coincide_are_refused() {
    const M: u64 = 4;
    let s = Stack::start();
    let owner = Actor::random();
    let a = s
        .grant(
            &owner,
            &Actor::random(),
            &policy(&governed("owner_exposure_ceiling = \"100 USD\"\nexposure_ceiling = \"100 USD\"")),
        )
        .await
        .expect("grant");
    for i in 0..M {
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, M + 2 * i, USDC, spender(i), usdc(100))).await;
        assert_eq!(code, 200, "approve K{i} at {}: {v}", M + 2 * i);
        if i + 1 < M {
            let (code, v) = s.sign(&a, erc20_approve(CHAIN, M + 2 * i + 1, USDC, spender(i), U256::ZERO)).await;
            assert_eq!(code, 200, "revoke K{i}: {v}");
        }
    }
    // Sanity: one more approval at the next nonce is refused (K_{M-1} is live at 100).
    let (code, v) = s.sign(&a, erc20_approve(CHAIN, 3 * M, USDC, spender(7), usdc(1))).await;
    assert_eq!(code, 403, "{v}");
    let mut live = 0u64;
    for i in 0..M {
        let (code, v) = s.sign(&a, erc20_approve(CHAIN, i, USDC, spender(i), usdc(100))).await;
        if code == 200 {
            live += 100;
        } else {
            eprintln!("gap fill at nonce {i}: {code} {v}");
        }
    }
    assert!(
        live <= 100,
        "mined as nonces 0..{M} (the gap fills), the session's address has {live} USDC approved at once \
         (K0..K{}) against its 100 USD exposure ceiling and the owner's 100 USD owner-wide ceiling",
        M - 1
    );
}

fn code_of(v: &serde_json::Value) -> &str {
    bridle_tests::code(v)
}
