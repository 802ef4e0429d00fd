//! A session's transitions against the real `bridle-enclave` and `bridle-host` (a review of
//! 2026-12-07): held requests across a cap-lowering update, a withheld older (looser)
//! update and a withheld approval relayed after a newer update, revocation with an approved
//! signature still uncollected; the host here is the test itself, holding the owner's
//! messages back and relaying them when it chooses.

use alloy_primitives::{address, Address, B256, U256};
use bridle_common::owner::action;
use bridle_common::policy::Policy;
use bridle_common::protocol::*;
use bridle_tests::*;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn text(cap: u64) -> String {
    format!(
        r#"
name = "lifecycle"
chains = [31337]
valid_for = "24h"
escalate = {{ above_value = "50 USDC", ttl = "10m" }}

[tokens]
USDC = {{ address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }}

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "{cap} USDC"
per = "day"
"#
    )
}

async fn signed_update(s: &Stack, g: &Granted, p: &Policy) -> UpdatePolicy {
    let st = s.status().await;
    let mut msg = owner_action(action::UPDATE_POLICY, st.identity_address, g.session, g.agent.address, B256::ZERO);
    msg.policyHash = p.hash();
    msg.nonce = s.enclave.next_nonce();
    UpdatePolicy { auth: g.owner.sign_owner(&msg), session: g.session, policy: p.clone() }
}

async fn signed_approval(s: &Stack, g: &Granted, digest: B256) -> ApprovePending {
    let st = s.status().await;
    let mut msg = owner_action(action::APPROVE_PENDING, st.identity_address, g.session, g.agent.address, digest);
    msg.nonce = s.enclave.next_nonce();
    ApprovePending { auth: g.owner.sign_owner(&msg), session: g.session, digest }
}

#[tokio::test]
async fn held_requests_across_updates_withheld_messages_and_revocation() {
    let s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text(300))).await.expect("grant");
    let a = SignPayload::Transaction(erc20_transfer(31337, 0, USDC, DEAD, usdc(150)));
    let b = SignPayload::Transaction(erc20_transfer(31337, 1, USDC, DEAD, usdc(150)));
    let (da, db) =
        (bridle_common::payload::stamp_digest(&a).unwrap(), bridle_common::payload::stamp_digest(&b).unwrap());
    for p in [&a, &b] {
        let (c, v) = s.sign_payload(&g, p.clone()).await;
        assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    }
    let (c, v) = s.approve_pending(&g, da).await;
    assert_eq!(c, 200, "{v}");

    // The owner signs an approval of B, and later two updates: a looser one (1000 USDC) and
    // then a stricter one (160 USDC). The host withholds the approval and the looser update.
    let withheld_approval = signed_approval(&s, &g, db).await;
    let looser = signed_update(&s, &g, &policy(&text(1000))).await;
    let stricter = signed_update(&s, &g, &policy(&text(160))).await;
    let path = format!("/v1/sessions/{}/policy", g.session);
    let (c, v) = s.post(&path, &stricter).await;
    assert_eq!(c, 200, "{v}");
    // Relayed now, after the stricter update: both refused.
    let (c, v) = s.post(&path, &looser).await;
    assert_ne!(c, 200, "a withheld older, looser update took effect: {v}");
    let (c, v) = s.post(&format!("/v1/sessions/{}/approve", g.session), &withheld_approval).await;
    assert_ne!(c, 200, "a withheld approval signed before the update signed: {v}");
    // A fresh approval of B is checked against the cap in force: 150 + 150 > 160.
    let (c, v) = s.approve_pending(&g, db).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    let (c, v) = s.sign_payload(&g, b.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");

    // Revoked: the approved A is not handed out again, B cannot be approved.
    let (c, v) = s.revoke(&g).await;
    assert_eq!(c, 200, "{v}");
    let (c, v) = s.sign_payload(&g, a.clone()).await;
    assert_eq!((c, code(&v)), (403, "revoked"), "{v}");
    let (c, v) = s.approve_pending(&g, db).await;
    assert_eq!((c, code(&v)), (403, "revoked"), "{v}");
    let (c, v) = s.update_policy(&g, &policy(&text(1000))).await;
    assert_ne!(c, 200, "{v}");

    // The enclave's own log: exactly one signature (A's approval).
    let (entries, _) = s.enclave.audit_log();
    let signed = entries
        .iter()
        .filter(|e| e.session == g.session)
        .filter(|e| {
            let k = format!("{:?}", e.kind).to_lowercase();
            k == "allowed" || k == "approved"
        })
        .count();
    assert_eq!(signed, 1);
}

// ---------------------------------------------------------------------------------------
// Observation (documented in RULES.md §6a, not in the README): an owner-wide exposure
// ceiling binds the owner's other sessions only while the session whose policy declares it
// is not revoked. Revoking that session — an act meant to take power away — lifts the
// ceiling from every other session of the owner, while the revoked session's own approvals
// may still be outstanding. This test asserts the behaviour as RULES states it; it passes.
// ---------------------------------------------------------------------------------------

fn spender(i: u64) -> Address {
    Address::with_last_byte(0x40 + i as u8)
}

fn governed(extra: &str) -> String {
    format!(
        r#"
name = "ceiling"
chains = [31337]
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
spenders = ["{}", "{}"]
max = ["1000 USDC"]
"#,
        spender(0),
        spender(1)
    )
}

#[tokio::test]
async fn revoking_the_session_that_declares_an_owner_ceiling_lifts_it_from_the_others() {
    let s = Stack::start();
    let owner = Actor::random();
    let declaring = s
        .grant(&owner, &Actor::random(), &policy(&governed("owner_exposure_ceiling = \"1000 USD\"")))
        .await
        .expect("grant A");
    let other = s.grant(&owner, &Actor::random(), &policy(&governed(""))).await.expect("grant B");
    let (c, v) = s.sign(&declaring, erc20_approve(31337, 0, USDC, spender(0), usdc(600))).await;
    assert_eq!(c, 200, "{v}");
    // B is bound by A's owner-wide ceiling: 600 + 600 > 1000 USD.
    let (c, v) = s.sign(&other, erc20_approve(31337, 0, USDC, spender(1), usdc(600))).await;
    assert_eq!((c, code(&v)), (403, "exposure_ceiling"), "{v}");
    // The owner revokes A (A's 600 USDC approval is still outstanding on chain: nothing swept).
    let (c, v) = s.revoke(&declaring).await;
    assert_eq!(c, 200, "{v}");
    // B is no longer bound: the owner's sessions now hold 1200 USDC of approvals at worst.
    let (c, v) = s.sign(&other, erc20_approve(31337, 0, USDC, spender(1), usdc(600))).await;
    assert_eq!(c, 200, "as RULES §6a states (a ceiling in a revoked session's policy binds nothing): {v}");
    let (c, v) = s.get(&format!("/v1/status?session={}", other.session)).await;
    assert_eq!(c, 200, "{v}");
    let st: Status = serde_json::from_value(v).unwrap();
    let own = st.aggregate.iter().find(|g| g.scope == bridle_common::allowance::aggregate::Scope::Owner).unwrap();
    assert_eq!(own.holdings, vec![TokenHolding { chain_id: 31337, token: USDC, amount: usdc(1_200) }]);
}
