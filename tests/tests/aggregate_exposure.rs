//! Exposure across sessions (AG-212 4.4, RULES.md §6a), against the real binaries: an agent
//! managing 200 client wallets, each within its own ceiling, is refused once the agent-wide
//! ceiling its owners signed is reached — and not released by the agent's own approval past
//! 2^256 − 1 in a session of its own; an owner-wide ceiling stays exact under concurrent
//! requests of different sessions; the enclave signs what it counted.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::*;
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
name = "aggregate"
chains = [{CHAIN}]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "1000 USD"
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

#[tokio::test]
async fn an_agent_managing_200_wallets_is_refused_at_the_agent_wide_ceiling() {
    let s = Stack::start();
    let agent = Actor::random();
    let opted_in = policy(&governed("agent_exposure_ceiling = \"5000 USD\""));
    let mut wallets = Vec::new();
    for _ in 0..200 {
        wallets.push(s.grant(&Actor::random(), &agent, &opted_in).await.expect("grant"));
    }
    // Each wallet approves 100 USDC: well within its own 1000 USD ceiling. The first 50
    // bring the agent's total to 5000 USD; every later one is refused, naming the rule.
    let mut signed = 0;
    for (i, g) in wallets.iter().enumerate() {
        let (code, v) = s.sign(g, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(100))).await;
        if i < 50 {
            assert_eq!(code, 200, "wallet {i}: {v}");
            signed += 1;
        } else {
            assert_eq!(
                (code, bridle_tests::code(&v), rule(&v)),
                (403, "exposure_ceiling", "agent_exposure_ceiling"),
                "wallet {i}: {v}"
            );
        }
    }
    assert_eq!(signed, 50);
    // A wallet whose owner did not opt in is not bound by the others' ceiling, and what it
    // approves counts for theirs.
    let free = s.grant(&Actor::random(), &agent, &policy(&governed(""))).await.expect("grant");
    let (code, v) = s.sign(&free, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(100))).await;
    assert_eq!(code, 200, "{v}");
    // Lowering an allowance is never refused (it raises nothing).
    let (code, v) = s.sign(&wallets[0], erc20_approve(CHAIN, 1, USDC, spender(0), U256::ZERO)).await;
    assert_eq!(code, 200, "{v}");
    // The enclave's signed status shows the agent's group: 51 wallets × 100 USDC at worst
    // (a revocation signed but not seen mined frees nothing), and the opted-in ceiling.
    let st = s.status_of(&wallets[1]).await;
    let agent_group =
        st.aggregate.iter().find(|g| g.scope == bridle_common::allowance::aggregate::Scope::Agent).unwrap();
    assert_eq!(agent_group.holdings, vec![TokenHolding { chain_id: CHAIN, token: USDC, amount: usdc(5_100) }]);
    assert_eq!(agent_group.ceilings.len(), 1);
    assert_eq!(agent_group.ceilings[0].usd, U256::from(5_100u64) * bridle_common::allowance::usd_unit());
}

#[tokio::test]
async fn an_owner_wide_ceiling_is_exact_under_concurrent_requests_of_different_sessions() {
    let s = std::sync::Arc::new(Stack::start());
    let owner = Actor::random();
    let p = policy(&governed("owner_exposure_ceiling = \"1000 USD\""));
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(s.grant(&owner, &Actor::random(), &p).await.expect("grant"));
    }
    // 20 sessions × 10 approvals of 10 USDC to distinct spenders: 2000 USD asked for at
    // once against a 1000 USD owner-wide ceiling → exactly 100 signed.
    let mut tasks = Vec::new();
    for g in &sessions {
        for i in 0..10u64 {
            let (s, g) = (s.clone(), g.clone());
            tasks.push(tokio::spawn(
                async move { s.sign(&g, erc20_approve(CHAIN, i, USDC, spender(i), usdc(10))).await },
            ));
        }
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (code, v) = t.await.unwrap();
        match code {
            200 => ok += 1,
            403 => {
                assert_eq!((bridle_tests::code(&v), rule(&v)), ("exposure_ceiling", "owner_exposure_ceiling"), "{v}");
                refused += 1
            }
            _ => panic!("{code}: {v}"),
        }
    }
    assert_eq!((ok, refused), (100, 100));
    let st = s.status_of(&sessions[0]).await;
    let own = st.aggregate.iter().find(|g| g.scope == bridle_common::allowance::aggregate::Scope::Owner).unwrap();
    assert_eq!(own.holdings, vec![TokenHolding { chain_id: CHAIN, token: USDC, amount: usdc(1_000) }]);
    // The owner's CLI prints it as the enclave signed it (trusting the enclave identity read
    // over the enclave's own socket, never the host's word).
    let out = bridle_tests::cli::bridle_cmd(&s.enclave.dir.path().join("trust.json"))
        .args(["owner", "exposure", "--session", &sessions[0].session.to_string()])
        .args(["--identity-key", &s.enclave.identity_key_hex()])
        .env("BRIDLE_HOST", &s.host.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("signed by the enclave"), "{text}");
    assert!(text.contains("owner_exposure_ceiling 1000 USD"), "{text}");
    assert!(text.contains("1000 USD at that policy's prices, 0 USD left"), "{text}");
    // Revoking the declaring sessions lifts the owner's ceiling: a fresh session of the same
    // owner without one is bound by nothing any more.
    for g in &sessions {
        revoke(&s, g).await;
    }
    let free = s.grant(&owner, &Actor::random(), &policy(&governed(""))).await.expect("grant");
    let (code, v) = s.sign(&free, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(500))).await;
    assert_eq!(code, 200, "{v}");
}

async fn revoke(s: &Stack, g: &Granted) {
    let st = s.status().await;
    let msg = bridle_common::owner::OwnerAction {
        action: bridle_common::owner::action::REVOKE.into(),
        enclave: st.identity_address,
        session: g.session,
        agent: g.agent.address,
        policyHash: alloy_primitives::B256::ZERO,
        subject: alloy_primitives::B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let body = Revoke { auth: g.owner.sign_owner(&msg), session: g.session };
    let (code, v) = s.post(&format!("/v1/sessions/{}/revoke", g.session), &body).await;
    assert_eq!(code, 200, "{v}");
}

trait StatusOf {
    async fn status_of(&self, g: &Granted) -> Status;
}

impl StatusOf for Stack {
    async fn status_of(&self, g: &Granted) -> Status {
        let (code, v) = self.get(&format!("/v1/status?session={}", g.session)).await;
        assert_eq!(code, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }
}

/// The same exactness with no host in between: eight threads call a real in-process enclave
/// at once (the host may serialize its calls; the enclave must not depend on that).
#[test]
fn the_owner_wide_ceiling_is_exact_with_eight_threads_inside_the_enclave() {
    use alloy_primitives::{Bytes, B256};
    use bridle_common::owner::OwnerAction;
    use bridle_common::payload::stamp_digest;
    use bridle_common::stamp::StampKey;
    use bridle_enclave::clock::SystemClock;
    use bridle_enclave::{Config, Enclave};
    use k256::ecdsa::SigningKey;
    use std::sync::Arc;

    let e = Arc::new(Enclave::new(Box::new(SystemClock), None, Config::default()));
    let owner = SigningKey::random(&mut rand_core::OsRng);
    let owner_addr = Address::from_public_key(owner.verifying_key());
    let auth = |msg: &OwnerAction| {
        let (sig, rec) = owner.sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
        let sig = alloy_primitives::Signature::from_signature_and_parity(sig, rec.is_y_odd());
        OwnerAuth { owner: owner_addr, nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) }
    };
    let doc = policy(&governed("owner_exposure_ceiling = \"1000 USD\""));
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
    let mut sessions = Vec::new();
    for n in 1..=20u64 {
        let agent = SigningKey::random(&mut rand_core::OsRng);
        let agent_addr = Address::from_public_key(agent.verifying_key());
        let msg = OwnerAction {
            action: "create_session".into(),
            enclave: e.identity_address(),
            session: Address::ZERO,
            agent: agent_addr,
            policyHash: doc.hash(),
            subject: B256::ZERO,
            // Owner nonces are the time in milliseconds.
            nonce: Actor::next_nonce() + n,
        };
        let r = e.handle(Call::CreateSession(CreateSession {
            auth: auth(&msg),
            agent_public_key: Bytes::copy_from_slice(agent.verifying_key().to_encoded_point(true).as_bytes()),
            policy: doc.clone(),
        }));
        let Ok(Reply::SessionCreated(c)) = r else { panic!("{r:?}") };
        let session = c.binding.session;
        let key = StampKey::derive(&k256::SecretKey::from(agent.as_nonzero_scalar()), &enclave_pk, session, agent_addr);
        sessions.push((session, Arc::new(key)));
    }
    let signed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..8usize)
        .map(|t| {
            let (e, sessions, signed) = (e.clone(), sessions.clone(), signed.clone());
            std::thread::spawn(move || {
                // Thread t takes every 8th (session, nonce) pair of the 200.
                for k in (t..200).step_by(8) {
                    let (session, key) = &sessions[k % 20];
                    let i = (k / 20) as u64;
                    let p = SignPayload::Transaction(erc20_approve(CHAIN, i, USDC, spender(i), usdc(10)));
                    let digest = stamp_digest(&p).unwrap();
                    let mut nonce = [0u8; 16];
                    nonce[..8].copy_from_slice(&(k as u64).to_be_bytes());
                    let stamp = key.stamp(*session, p.kind(), &digest, nonce, now());
                    match e.handle(Call::SignIfAllowed(SignRequest { session: *session, payload: p, stamp })) {
                        Ok(_) => {
                            signed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(d) => assert_eq!(d.rule.as_deref(), Some("owner_exposure_ceiling"), "{d}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(signed.load(std::sync::atomic::Ordering::SeqCst), 100);
}

/// Each exposure-raising request values the owner's holdings once per distinct policy
/// declaring a ceiling over the owner's sessions, under one enclave-wide lock (a second
/// review of 2026-12-03: thousands of distinct ceiling policies stalled every session's
/// approvals). One owner's live sessions may carry at most 64 distinct such policies; the
/// 65th is refused at creation and at an update, naming the rule, and changes nothing.
#[tokio::test]
async fn an_owner_may_carry_at_most_64_distinct_ceiling_policies() {
    let s = Stack::start();
    let owner = Actor::random();
    let ceiling = |n: usize| policy(&governed(&format!("owner_exposure_ceiling = \"{} USD\"", 5000 + n)));
    let (mut granted, mut carried) = (Vec::new(), Vec::new());
    for n in 0..64 {
        carried.push(ceiling(n));
        granted.push(s.grant(&owner, &Actor::random(), &carried[n]).await.expect("grant"));
    }
    let Err((code, v)) = s.grant(&owner, &Actor::random(), &ceiling(64)).await else {
        panic!("a 65th distinct ceiling policy was accepted");
    };
    assert_eq!((code, bridle_tests::code(&v), rule(&v)), (403, "rate_limited", "owner_exposure_ceiling"), "{v}");
    // The same policy as another session, a policy declaring none, another owner: accepted.
    s.grant(&owner, &Actor::random(), &carried[7]).await.expect("a policy already carried");
    let plain = s.grant(&owner, &Actor::random(), &policy(&governed(""))).await.expect("no ceiling");
    s.grant(&Actor::random(), &Actor::random(), &ceiling(64)).await.expect("another owner");
    // An update to a 65th is refused too; the session keeps its policy and still signs.
    let (code, v) = s.update_policy(&plain, &ceiling(64)).await;
    assert_eq!((code, rule(&v)), (403, "owner_exposure_ceiling"), "{v}");
    let (code, v) = s.sign(&plain, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(1))).await;
    assert_eq!(code, 200, "{v}");
    // A session revoked leaves the count; then the 65th fits.
    let (code, v) = s.revoke(&granted[0]).await;
    assert_eq!(code, 200, "{v}");
    s.grant(&owner, &Actor::random(), &ceiling(64)).await.expect("room after a revoke");
}

/// A review of 2026-12-05, against the real binaries: the agent, as its own owner (a fresh
/// key), approves 10^66 of the priced token in a session declaring no ceiling; its group is
/// then worth past 2^256 − 1, which every comparison saw as equal with and without a
/// request, so the clients' agent-wide ceiling bound nothing. Such a group cannot be
/// measured: the clients' approvals are refused, and lowering one still passes.
#[tokio::test]
async fn an_agents_own_huge_approval_does_not_switch_its_ceiling_off() {
    let s = Stack::start();
    let agent = Actor::random();
    let opted_in = policy(&governed("agent_exposure_ceiling = \"5000 USD\""));
    let wallet = s.grant(&Actor::random(), &agent, &opted_in).await.expect("grant");
    let (code, v) = s.sign(&wallet, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(100))).await;
    assert_eq!(code, 200, "{v}");
    let huge = governed("").replace("exposure_ceiling = \"1000 USD\"\n", "").replace(
        "max = [\"1000 USDC\"]",
        "max = [\"1000000000000000000000000000000000000000000000000000000000000 USDC\"]",
    );
    let side = s.grant(&Actor::random(), &agent, &policy(&huge)).await.expect("the agent's own session");
    let amount = U256::from(10u64).pow(U256::from(66u64));
    let (code, v) = s.sign(&side, erc20_approve(CHAIN, 0, USDC, spender(1), amount)).await;
    assert_eq!(code, 200, "no ceiling binds the side session itself: {v}");
    let (code, v) = s.sign(&wallet, erc20_approve(CHAIN, 1, USDC, spender(2), usdc(100))).await;
    assert_eq!((code, bridle_tests::code(&v), rule(&v)), (403, "exposure_ceiling", "agent_exposure_ceiling"), "{v}");
    assert!(v["error"]["reason"].as_str().unwrap_or("").contains("cannot be checked"), "{v}");
    let client = s.grant(&Actor::random(), &agent, &opted_in).await.expect("grant");
    let (code, v) = s.sign(&client, erc20_approve(CHAIN, 0, USDC, spender(0), usdc(100))).await;
    assert_eq!((code, rule(&v)), (403, "agent_exposure_ceiling"), "{v}");
    // Lowering the wallet's own approval raises nothing: it passes.
    let (code, v) = s.sign(&wallet, erc20_approve(CHAIN, 1, USDC, spender(0), U256::ZERO)).await;
    assert_eq!(code, 200, "{v}");
}
