//! An owner's signed message goes stale (a review of 2026-12-06). Owner nonces had an upper
//! bound (the enclave's time plus ten minutes) and no lower one, so a host that withheld a
//! signed message chose when it arrived: hours later, after the owner's tools had reported
//! it unconfirmed; a withheld policy update lifted a trip-wire suspension that fired after
//! it was signed; a withheld approval completed a later hold of the same digest.
//!
//! The host here is the test itself, holding the owner's messages back. Nonces are what the
//! CLI and the console sign: the time in milliseconds at signing. The real `bridle-enclave`
//! and `bridle-host`; the enclave's clock moved through its development offset file.

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

/// USDC transfers only; three denials within a minute suspend the session; anything above
/// 50 USDC waits a minute for the owner.
const POLICY: &str = r#"
name = "stale"
chains = [31337]
valid_for = "24h"
trip_wire = { denials = 3, within = "1m" }
escalate = { above_value = "50 USDC", ttl = "1m" }

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
"#;

/// The CLI's owner nonces: the time in milliseconds (of the enclave's clock, which the
/// owner's agrees with), one above the last when called within a millisecond.
#[derive(Default)]
struct CliNonces(std::cell::Cell<u64>);

impl CliNonces {
    fn next(&self, s: &Stack) -> u64 {
        self.0.set(s.enclave.now_ms().max(self.0.get() + 1));
        self.0.get()
    }
}

/// A session granted by a fresh owner whose nonces are the CLI's.
async fn grant(s: &Stack, n: &CliNonces) -> Granted {
    let (owner, agent) = (Actor::random(), Actor::random());
    let p = policy(POLICY);
    let st = s.status().await;
    let msg = create_action(st.identity_address, agent.address, p.hash(), n.next(s));
    let body = CreateSession { auth: owner.sign_owner(&msg), agent_public_key: agent.public_key_sec1(), policy: p };
    let (code, v) = s.post("/v1/sessions", &body).await;
    assert_eq!(code, 200, "{v}");
    let created: SessionCreated = serde_json::from_value(v).unwrap();
    Granted {
        owner,
        agent,
        session: created.binding.session,
        enclave_pk: st.identity_public_key,
        created_at: created.binding.created_at,
    }
}

/// The owner's update of `g` to `p` signed with `nonce`, not sent.
async fn signed_update(s: &Stack, g: &Granted, p: &Policy, nonce: u64) -> UpdatePolicy {
    let st = s.status().await;
    let mut msg = owner_action(action::UPDATE_POLICY, st.identity_address, g.session, g.agent.address, B256::ZERO);
    msg.policyHash = p.hash();
    msg.nonce = nonce;
    UpdatePolicy { auth: g.owner.sign_owner(&msg), session: g.session, policy: p.clone() }
}

async fn signed_word(s: &Stack, g: &Granted, act: &str, digest: B256, nonce: u64) -> OwnerAuth {
    let st = s.status().await;
    let mut msg = owner_action(act, st.identity_address, g.session, g.agent.address, digest);
    msg.nonce = nonce;
    g.owner.sign_owner(&msg)
}

async fn session(s: &Stack, g: &Granted) -> serde_json::Value {
    let (code, v) = s.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(code, 200, "{v}");
    v["session"].clone()
}

#[tokio::test]
async fn a_withheld_update_cannot_lift_a_trip_wire_that_fired_after_it_was_signed() {
    let s = Stack::start();
    let p = policy(POLICY);
    let n = CliNonces::default();
    let g = grant(&s, &n).await;
    // The owner signs an update; the host keeps it.
    let kept = signed_update(&s, &g, &p, n.next(&s)).await;
    // The agent trips the wire (three transfers of another token).
    for n in 0..3 {
        let (code, v) = s.sign(&g, erc20_transfer(31337, n, DEAD, DEAD, usdc(1))).await;
        assert_eq!((code, code_of(&v)), (403, "target_not_allowed"), "{v}");
    }
    assert_eq!(session(&s, &g).await["state"], "suspended");
    // Delivered now, the kept update is refused and the session stays suspended.
    let path = format!("/v1/sessions/{}/policy", g.session);
    let (code, v) = s.post(&path, &kept).await;
    assert_eq!(code_of(&v), "suspended", "a withheld update lifted a later suspension: {code} {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("signed before then"), "{v}");
    assert_eq!(session(&s, &g).await["state"], "suspended");
    let (code, v) = s.sign(&g, erc20_transfer(31337, 3, USDC, DEAD, usdc(1))).await;
    assert_eq!((code, code_of(&v)), (403, "suspended"), "{v}");
    // Its nonce is spent: delivered again, it is a replay.
    let (code, v) = s.post(&path, &kept).await;
    assert_eq!((code, code_of(&v)), (401, "replayed"), "{v}");
    // An update the owner signs after the suspension lifts it.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let fresh = signed_update(&s, &g, &p, n.next(&s)).await;
    let (code, v) = s.post(&path, &fresh).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(session(&s, &g).await["state"], "active");
    let (code, v) = s.sign(&g, erc20_transfer(31337, 3, USDC, DEAD, usdc(1))).await;
    assert_eq!(code, 200, "{v}");
}

#[tokio::test]
async fn a_withheld_message_is_refused_once_ten_minutes_old() {
    let s = Stack::start();
    let p = policy(POLICY);
    let n = CliNonces::default();
    let g = grant(&s, &n).await;
    let st = s.status().await;
    let signed_at = n.next(&s);
    // Two messages the owner signs now; the host keeps both.
    let update = signed_update(&s, &g, &p, signed_at).await;
    let mut msg = owner_action(action::REVOKE, st.identity_address, g.session, g.agent.address, B256::ZERO);
    msg.nonce = signed_at + 1;
    let revoke = Revoke { auth: g.owner.sign_owner(&msg), session: g.session };
    // Nine minutes later the first still takes effect…
    s.enclave.set_clock_offset(9 * 60);
    let (code, v) = s.post(&format!("/v1/sessions/{}/policy", g.session), &update).await;
    assert_eq!(code, 200, "{v}");
    // …eleven minutes later the second is stale: refused, nothing spent, nothing changed.
    s.enclave.set_clock_offset(11 * 60);
    let path = format!("/v1/sessions/{}/revoke", g.session);
    let (code, v) = s.post(&path, &revoke).await;
    assert_eq!((code, code_of(&v)), (401, "replayed"), "a message eleven minutes old took effect: {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("is stale"), "{v}");
    assert_eq!(session(&s, &g).await["state"], "active");
    // Later still it stays stale.
    s.enclave.set_clock_offset(3600);
    let (code, v) = s.post(&path, &revoke).await;
    assert_eq!((code, code_of(&v)), (401, "replayed"), "{v}");
    assert_eq!(session(&s, &g).await["state"], "active");
    // The owner's revocation signed at the enclave's time now takes effect.
    msg.nonce = n.next(&s);
    let (code, v) = s.post(&path, &Revoke { auth: g.owner.sign_owner(&msg), session: g.session }).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(session(&s, &g).await["state"], "revoked");
}

#[tokio::test]
async fn a_withheld_approval_cannot_complete_a_later_hold_of_the_same_request() {
    let s = Stack::start();
    let n = CliNonces::default();
    let g = grant(&s, &n).await;
    let big = SignPayload::Transaction(erc20_transfer(31337, 0, USDC, DEAD, usdc(80)));
    let digest = bridle_common::payload::stamp_digest(&big).unwrap();
    let (code, v) = s.sign_payload(&g, big.clone()).await;
    assert_eq!((code, code_of(&v)), (403, "pending_approval"), "{v}");
    // The owner approves the hold it was shown; the host keeps the approval.
    let kept = ApprovePending {
        auth: signed_word(&s, &g, action::APPROVE_PENDING, digest, n.next(&s)).await,
        session: g.session,
        digest,
    };
    // The hold ends unanswered; two minutes on, the agent asks for the same request again.
    s.enclave.set_clock_offset(120);
    let (code, v) = s.sign_payload_at(&g, big.clone(), now() + 120).await;
    assert_eq!((code, code_of(&v)), (403, "pending_approval"), "{v}");
    // The kept approval is refused: it was signed before this hold began.
    let path = format!("/v1/sessions/{}/approve", g.session);
    let (code, v) = s.post(&path, &kept).await;
    assert_eq!((code, code_of(&v)), (401, "replayed"), "a withheld approval completed a later hold: {v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("after this approval was signed"), "{v}");
    let held = session(&s, &g).await;
    assert_eq!(held["pending"][0]["state"], "waiting", "{held}");
    // So is a kept denial.
    let kept_denial = DenyPending {
        auth: signed_word(&s, &g, action::DENY_PENDING, digest, kept.auth.nonce + 1).await,
        session: g.session,
        digest,
    };
    let (code, v) = s.post(&format!("/v1/sessions/{}/deny", g.session), &kept_denial).await;
    assert_eq!((code, code_of(&v)), (401, "replayed"), "{v}");
    // The owner's approval of this hold signs it.
    let fresh = ApprovePending {
        auth: signed_word(&s, &g, action::APPROVE_PENDING, digest, n.next(&s)).await,
        session: g.session,
        digest,
    };
    let (code, v) = s.post(&path, &fresh).await;
    assert_eq!(code, 200, "{v}");
    assert!(v["signature"].is_string(), "{v}");
}

/// The error code of a reply.
fn code_of(v: &serde_json::Value) -> &str {
    bridle_tests::code(v)
}
