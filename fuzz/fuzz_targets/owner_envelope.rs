//! Owner envelopes: arbitrary owner actions and signature bytes, recovered and served as
//! owner calls to an enclave that holds a session. Never panics; no envelope acts on the
//! real owner's session (the fuzzer holds no key of that owner).
#![no_main]
use alloy_primitives::{Address, Bytes, B256};
use arbitrary::{Arbitrary, Unstructured};
use bridle_common::owner::OwnerAction;
use bridle_common::protocol::*;
use bridle_enclave::clock::FixedClock;
use bridle_enclave::{Config, Enclave};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn enclave() -> &'static (Enclave, Address) {
    static E: OnceLock<(Enclave, Address)> = OnceLock::new();
    E.get_or_init(|| {
        let e = Enclave::new(Box::new(FixedClock::new(1_800_000_000)), None, Config::default());
        // One real session, granted by a real owner key the fuzzer never sees.
        let owner = k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
        let agent = k256::ecdsa::SigningKey::from_slice(&[0x43; 32]).unwrap();
        let text = "name='f'\nchains=[1]\nvalid_until=1800003600\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n";
        let policy = bridle_common::policy::file::resolve_text(text, 1_800_000_000).unwrap();
        let agent_addr = Address::from_public_key(agent.verifying_key());
        let msg = OwnerAction {
            action: "create_session".into(),
            enclave: e.identity_address(),
            session: Address::ZERO,
            agent: agent_addr,
            policyHash: policy.hash(),
            subject: B256::ZERO,
            nonce: 1_800_000_000_000,
        };
        let (sig, rec) = owner.sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
        let sig = alloy_primitives::Signature::from_signature_and_parity(sig, rec.is_y_odd());
        let owner_addr = Address::from_public_key(owner.verifying_key());
        let r = e.handle(Call::CreateSession(CreateSession {
            auth: OwnerAuth { owner: owner_addr, nonce: 1_800_000_000_000, signature: Bytes::copy_from_slice(&sig.as_bytes()) },
            agent_public_key: Bytes::copy_from_slice(&agent.verifying_key().to_encoded_point(true).as_bytes()),
            policy,
        }));
        let session = match r {
            Ok(Reply::SessionCreated(c)) => c.binding.session,
            other => panic!("{other:?}"),
        };
        (e, session)
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    action: String,
    session: [u8; 20],
    agent: [u8; 20],
    policy_hash: [u8; 32],
    subject: [u8; 32],
    nonce: u64,
    owner: [u8; 20],
    signature: Vec<u8>,
    which: u8,
}

fuzz_target!(|data: &[u8]| {
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else { return };
    let msg = OwnerAction {
        action: i.action.clone(),
        enclave: Address::from(i.agent),
        session: Address::from(i.session),
        agent: Address::from(i.agent),
        policyHash: B256::from(i.policy_hash),
        subject: B256::from(i.subject),
        nonce: i.nonce,
    };
    let _ = msg.recover(&i.signature);
    let _ = msg.typed_data_json();
    let (e, session) = enclave();
    let owner = if i.which & 0x80 != 0 {
        Address::from_public_key(k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap().verifying_key())
    } else {
        Address::from(i.owner)
    };
    let auth = OwnerAuth { owner, nonce: i.nonce, signature: Bytes::from(i.signature) };
    let target = if i.which & 0x40 != 0 { *session } else { Address::from(i.session) };
    let call = match i.which % 5 {
        0 => Call::Revoke(Revoke { auth, session: target }),
        1 => Call::RevokeAll(RevokeAll { auth }),
        2 => Call::ApprovePending(ApprovePending { auth, session: target, digest: B256::from(i.subject) }),
        3 => Call::DenyPending(DenyPending { auth, session: target, digest: B256::from(i.subject) }),
        _ => Call::Sweep(Sweep { session: target, terms: vec![], accounts: vec![], auth: Some(auth) }),
    };
    let r = e.handle(call);
    // Random signature bytes recover to *some* key, and the fuzzer can copy that address
    // into `owner` (libFuzzer learns compared values): such an envelope is genuinely signed
    // by that key, acting on what it owns — nothing. It must never act on the real owner's
    // session, whose key the fuzzer does not hold.
    if let Ok(reply) = &r {
        let only_its_own = matches!(reply, Reply::Revoked(v) if !v.sessions.contains(session));
        assert!(only_its_own, "a forged owner envelope acted on the real owner's session: {r:?}");
    }
});
