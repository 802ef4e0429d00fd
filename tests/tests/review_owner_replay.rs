//! An owner's signed message the enclave refused can never take effect later (review of
//! 2026-12-03). A refusal used to leave the owner's nonce unspent unless it was an approval
//! or a denial: a host that kept a refused creation or policy update could relay it again
//! once it would pass — here, a policy refused as lasting too long, once time has shortened
//! what is left of it — after the owner had been told it was refused. Once the owner's
//! signature and nonce check out, the nonce is now spent whatever follows.
//!
//! The real `bridle-enclave` and `bridle-host`; the enclave's clock moved through its
//! development offset file.

use alloy_primitives::B256;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use bridle_tests::*;

fn plain(valid_for: &str) -> String {
    format!(
        "name = \"replay\"\nchains = [1]\nvalid_for = \"{valid_for}\"\n\n[[calls]]\n\
         target = \"0x000000000000000000000000000000000000dEaD\"\nfunctions = [\"receive()\"]\n"
    )
}

async fn policy_hash_of(s: &Stack, g: &Granted) -> B256 {
    let (code, v) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(code, 200, "{v}");
    serde_json::from_value::<SessionStatus>(v["session"].clone()).expect("session status").policy_hash
}

#[tokio::test]
async fn a_refused_creation_or_update_cannot_be_relayed_once_it_would_pass() {
    let s = Stack::start();
    let owner = Actor::random();
    let ok = policy(&plain("1h"));
    let g = s.grant(&owner, &Actor::random(), &ok).await.expect("grant");
    // 24 hours 8 minutes: past the default 24-hour limit (and its 5 minutes of clock skew)
    // today, within it five minutes from now — before the messages below go stale (ten
    // minutes: a review of 2026-12-06 found that a move of two hours made them stale, so the
    // test no longer showed that a refusal spends the nonce).
    let long = policy(&plain("1448m"));
    let st = s.status().await;

    // A creation refused as too long, kept by the host (another owner's: the update's refusal
    // below must not be what makes this creation's nonce stale).
    let (other, agent) = (Actor::random(), Actor::random());
    let create = CreateSession {
        auth: other.sign_owner(&create_action(st.identity_address, agent.address, long.hash(), s.enclave.next_nonce())),
        agent_public_key: agent.public_key_sec1(),
        policy: long.clone(),
    };
    let (code, v) = s.post("/v1/sessions", &create).await;
    assert_eq!((code, bridle_tests::code(&v)), (400, "invalid_policy"), "{v}");

    // An update to it refused alike.
    let msg = OwnerAction {
        action: action::UPDATE_POLICY.into(),
        enclave: st.identity_address,
        session: g.session,
        agent: g.agent.address,
        policyHash: long.hash(),
        subject: B256::ZERO,
        nonce: s.enclave.next_nonce(),
    };
    let update = UpdatePolicy { auth: owner.sign_owner(&msg), session: g.session, policy: long.clone() };
    let path = format!("/v1/sessions/{}/policy", g.session);
    let (code, v) = s.post(&path, &update).await;
    assert_eq!((code, bridle_tests::code(&v)), (400, "invalid_policy"), "{v}");

    // Five minutes later both would pass; relayed again, both are refused as replays (their
    // nonces spent, not stale), and the session keeps its policy.
    s.enclave.set_clock_offset(300);
    let (code, v) = s.post(&path, &update).await;
    assert_eq!((code, bridle_tests::code(&v)), (401, "replayed"), "the refused update took effect later: {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("is not above the last accepted"), "{v}");
    let (code, v) = s.post("/v1/sessions", &create).await;
    assert_eq!((code, bridle_tests::code(&v)), (401, "replayed"), "the refused creation took effect later: {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("is not above the last accepted"), "{v}");
    assert_eq!(policy_hash_of(&s, &g).await, ok.hash());

    // The owner's own messages signed afresh are accepted.
    let (code, v) = s.update_policy(&g, &long).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(policy_hash_of(&s, &g).await, long.hash());
    s.grant(&other, &Actor::random(), &long).await.expect("a fresh creation");
}

/// Owner nonces are bounded by the enclave's clock (its time in milliseconds plus ten
/// minutes), so a flood of owner calls from fresh keys cannot push the owner book's floor
/// out of reach for good (review of 2026-12-03): a nonce near 2^64 is refused `replayed`
/// (as a stamp outside its time window is) and records nothing; the owner's time in
/// milliseconds then passes.
#[tokio::test]
async fn an_owner_nonce_far_ahead_of_the_enclaves_clock_is_refused_and_records_nothing() {
    let s = Stack::start();
    let owner = Actor::random();
    let st = s.status().await;
    let revoke_all = |nonce: u64| {
        let msg = OwnerAction {
            action: action::REVOKE_ALL.into(),
            enclave: st.identity_address,
            session: alloy_primitives::Address::ZERO,
            agent: alloy_primitives::Address::ZERO,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce,
        };
        RevokeAll { auth: owner.sign_owner(&msg) }
    };
    let path = format!("/v1/owners/{}/revoke-all", owner.address);
    for nonce in [u64::MAX - 1, now_ms() + 3_600_000] {
        let (code, v) = s.post(&path, &revoke_all(nonce)).await;
        assert_eq!((code, bridle_tests::code(&v)), (401, "replayed"), "{v}");
        assert!(v.to_string().contains("ahead of the enclave's clock"), "{v}");
    }
    let (code, v) = s.post(&path, &revoke_all(now_ms())).await;
    assert_eq!(code, 200, "the refused nonces were recorded: {v}");
}
