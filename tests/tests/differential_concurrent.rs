//! Concurrent interleavings against the reference model (issue 9): eight threads fire random
//! stamped requests at one session of a real in-process enclave while its clock moves
//! (forward across period and month boundaries, and back). The enclave decides each under
//! the session lock at one session time and logs it; the model then replays the enclave's
//! own audit log — every decision in the order the enclave took them, at the session time
//! it logged — and must reach the same verdict for each. So whatever the interleaving, the
//! enclave's decisions are those of the rules applied one at a time.
//!
//! `BRIDLE_DIFF_CONCURRENT` sets how many sessions (default 40).

use alloy_primitives::{Address, Bytes, B256};
use bridle_common::audit::Decision;
use bridle_common::owner::OwnerAction;
use bridle_common::payload::stamp_digest;
use bridle_common::policy::file::resolve_text;
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_enclave::clock::{Clock as _, FixedClock};
use bridle_enclave::{Config, Enclave};
use bridle_model::{Model, Req, Verdict, MODEL_LIMIT};
use bridle_tests::differential::{payload_for, random_policy, random_req, Rng, OWNER, T0};
use k256::ecdsa::SigningKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

struct Clock(Arc<FixedClock>);

impl bridle_enclave::clock::Clock for Clock {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

fn sign_owner(key: &SigningKey, msg: &OwnerAction) -> OwnerAuth {
    let (sig, rec) = key.sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
    let sig = alloy_primitives::Signature::from_signature_and_parity(sig, rec.is_y_odd());
    OwnerAuth {
        owner: Address::from_public_key(key.verifying_key()),
        nonce: msg.nonce,
        signature: Bytes::copy_from_slice(&sig.as_bytes()),
    }
}

/// One session hammered by eight threads; `Err` on the first disagreement.
fn one(seed: u64) -> Result<usize, String> {
    let mut r = Rng::new(seed);
    let clock = Arc::new(FixedClock::new(T0 + r.below(400 * 86_400)));
    let created = clock.now();
    let e = Arc::new(Enclave::new(Box::new(Clock(clock.clone())), None, Config::default()));
    let text = random_policy(&mut r, created);
    let Ok(doc) = resolve_text(&text, created) else { return Ok(0) };
    if bridle_common::policy::CompiledPolicy::compile(doc.clone()).and_then(|p| p.check_lifetime(created)).is_err() {
        return Ok(0);
    }
    let owner = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let agent = SigningKey::from_slice(&[0x43; 32]).unwrap();
    let agent_addr = Address::from_public_key(agent.verifying_key());
    let msg = OwnerAction {
        action: "create_session".into(),
        enclave: e.identity_address(),
        session: Address::ZERO,
        agent: agent_addr,
        policyHash: doc.hash(),
        subject: B256::ZERO,
        // Owner nonces are the time in milliseconds (within ten minutes of the clock).
        nonce: created * 1000,
    };
    let created_reply = e.handle(Call::CreateSession(CreateSession {
        auth: sign_owner(&owner, &msg),
        agent_public_key: Bytes::copy_from_slice(agent.verifying_key().to_encoded_point(true).as_bytes()),
        policy: doc.clone(),
    }));
    let Ok(Reply::SessionCreated(c)) = created_reply else { return Err(format!("seed {seed}: {created_reply:?}")) };
    let session = c.binding.session;
    let owner_addr = Address::from_public_key(owner.verifying_key());
    let Ok(mut model) = Model::new(&doc, created, owner_addr, session) else { return Ok(0) };
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&e.identity_public_key()).unwrap();
    let stamp_key =
        Arc::new(StampKey::derive(&k256::SecretKey::from(agent.as_nonzero_scalar()), &enclave_pk, session, agent_addr));

    // Every request by its digest, for the replay.
    let asked: Arc<Mutex<HashMap<B256, Req>>> = Arc::new(Mutex::new(HashMap::new()));
    let chains = Arc::new(doc.chains.clone());
    let counter = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (e, clock, asked, stamp_key, counter, chains) =
                (e.clone(), clock.clone(), asked.clone(), stamp_key.clone(), counter.clone(), chains.clone());
            std::thread::spawn(move || {
                let mut r = Rng::new(seed.wrapping_mul(31).wrapping_add(t));
                let mut nonces = HashMap::new();
                for _ in 0..12 {
                    // Thread 0 also moves the clock: forward, sometimes far, sometimes back.
                    if t == 0 {
                        let now = clock.now();
                        let next = match r.below(6) {
                            0 => now.saturating_sub(r.below(40)),
                            1 => now + 3600 * r.below(40),
                            _ => now + r.below(90),
                        };
                        clock.set(next);
                    }
                    let req = random_req(&mut r, &mut nonces, clock.now(), &chains);
                    let p = payload_for(&req, session);
                    let digest = stamp_digest(&p).unwrap_or(B256::ZERO);
                    asked.lock().unwrap().insert(digest, req);
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let mut nonce = [0u8; 16];
                    nonce[..8].copy_from_slice(&n.to_be_bytes());
                    let stamp = stamp_key.stamp(session, p.kind(), &digest, nonce, clock.now());
                    let _ = e.handle(Call::SignIfAllowed(SignRequest { session, payload: p, stamp }));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| format!("seed {seed}: a thread panicked"))?;
    }

    // Replay the enclave's own log in the model.
    let asked = asked.lock().unwrap();
    let mut replayed = 0;
    let mut since = 0;
    let mut log = vec![format!("policy:\n{text}")];
    loop {
        let Ok(Reply::Audit(a)) = e.handle(Call::Audit(AuditQuery { since, nonce: None })) else {
            return Err("audit".into());
        };
        for entry in a.entries.iter().filter(|x| x.session == session) {
            let Some(req) = asked.get(&entry.request_digest) else { continue };
            let code = entry.code.map(|c| c.as_str());
            if code == Some("replayed") || code == Some("unauthenticated") {
                continue; // a stamp outside the moved clock's window: never decided
            }
            let want = match entry.kind {
                Decision::Allowed => None,
                Decision::Denied | Decision::Pending => code,
                _ => continue,
            };
            let m = model.sign(req, entry.time);
            log.push(format!(
                "{} at {}: {req:?}\n  enclave {:?} {want:?} / model {m:?}",
                entry.seq, entry.time, entry.kind
            ));
            replayed += 1;
            let same = match (&m, want) {
                (Verdict::Denied(c), _) if c == &vec![MODEL_LIMIT] => return Ok(replayed),
                (Verdict::Allowed, None) => true,
                (Verdict::Pending(_), Some("pending_approval")) => true,
                (Verdict::Denied(codes), Some(c)) => codes.contains(&c),
                _ => false,
            };
            if !same {
                return Err(format!("seed {seed}: entry {} disagrees\n{}", entry.seq, log.join("\n")));
            }
        }
        since = a.head.seq + 1;
        if !a.more {
            break;
        }
    }
    Ok(replayed)
}

#[test]
fn concurrent_decisions_are_the_rules_applied_one_at_a_time() {
    let n: u64 = std::env::var("BRIDLE_DIFF_CONCURRENT").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let mut decided = 0;
    let mut failures = Vec::new();
    for seed in 1..=n {
        match one(seed) {
            Ok(k) => decided += k,
            Err(e) => failures.push(e),
        }
    }
    println!("{n} sessions, {decided} decisions replayed");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(decided > 0);
    let _ = OWNER;
}
