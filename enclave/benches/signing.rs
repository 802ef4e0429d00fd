//! Signing-path benchmarks, measured side by side in one run so ratios are meaningful on
//! a noisy machine:
//! - `k256/sign_prehash`: one bare secp256k1 signature (the reference);
//! - `policy/evaluate_20_rules`: the policy engine on an ERC-20 transfer, 20-rule policy;
//! - `path/sign_if_allowed`: the in-process signing path (stamp check, decode, evaluate,
//!   charge, sign), with 1 and with 10 000 sessions in the enclave.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::owner::{action, OwnerAction};
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{evaluate, CompiledPolicy, Context, Counters, Operation, Policy};
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_common::tx::{Call as TxCall, Eip1559Request, TxRequest};
use bridle_enclave::clock::{Clock, FixedClock};
use bridle_enclave::{Config, Enclave};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use k256::SecretKey;
use std::hint::black_box;
use std::sync::Arc;

sol! { function transfer(address to, uint256 amount) returns (bool); }

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const T0: u64 = 1_800_000_000;

/// A 20-rule policy: chains, time bounds, quota, 3 tokens, 4 spend caps, a stream, a value
/// cap, 3 call rules with argument predicates, recipients, 2 rate limits, gas rules, approvals.
fn policy_text() -> String {
    format!(
        r#"
name = "bench-20"
chains = [1, 10, 8453]
valid_until = {until}
quota = 1000000000
max_value_per_call = "0.1 ETH"
recipients = ["$owner", "0x00000000000000000000000000000000000a11ce", "0x0000000000000000000000000000000000000b0b"]
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
DAI = {{ address = "0x6b175474e89094c44da98b954eedeac495271d0f", decimals = 18 }}
WETH = {{ address = "0xc02aaa39c83ad88e4a4b3f5d85f3a5a10a0d6d8a", decimals = 18 }}
[[limits]]
max = "1000000000 USDC"
per = "day"
[[limits]]
max = "1000000000 USDC"
per = "month"
[[limits]]
max = "1000 DAI"
per = "day"
[[limits]]
max = "1 ETH"
per = "day"
[[streams]]
initial = "1000000000 USDC"
rate = "1 USDC"
every = "1 hour"
max = "2000000000 USDC"
[[calls]]
target = "USDC"
functions = [{{ signature = "transfer(address to,uint256 amount)", args = [{{ arg = "to", op = "in", values = ["0x00000000000000000000000000000000000a11ce", "$owner"] }}, {{ arg = "amount", op = "lte", value = "1000 USDC" }}] }}]
[[calls]]
target = "DAI"
functions = ["transfer(address,uint256)"]
[[calls]]
target = "0xe592427a0aece92de3edee1f18e0157c05861564"
functions = ["exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"]
[[rate_limits]]
max = 100000
window = "1 minute"
[[rate_limits]]
max = 50000
window = "30 seconds"
[gas]
max_fee_per_gas = "500 gwei"
max_gas_limit = 500000
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["500 USDC"]
"#,
        until = T0 + 86_000
    )
}

fn bench_policy() -> Policy {
    resolve_text(&policy_text(), T0).expect("bench policy")
}

fn transfer_tx(nonce: u64) -> TxRequest {
    TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 80_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: transferCall { to: address!("00000000000000000000000000000000000a11ce"), amount: U256::from(1u64) }
            .abi_encode()
            .into(),
        access_list: vec![],
    })
}

struct SharedClock(Arc<FixedClock>);
impl Clock for SharedClock {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

struct Setup {
    enclave: Enclave,
    clock: Arc<FixedClock>,
    agent: SecretKey,
    session: Address,
    stamp_key: StampKey,
}

fn setup(extra_sessions: usize) -> Setup {
    let clock = Arc::new(FixedClock::new(T0));
    let enclave = Enclave::new(Box::new(SharedClock(clock.clone())), None, Config::default());
    let owner = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let owner_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&owner.public_key()));
    let policy = bench_policy();
    let hash = policy.hash();
    let identity = enclave.identity_address();
    let mut nonce = 0u64;
    let mut create = |agent: &SecretKey| -> Address {
        nonce += 1;
        let agent_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
        let msg = OwnerAction {
            action: action::CREATE_SESSION.into(),
            enclave: identity,
            session: Address::ZERO,
            agent: agent_addr,
            policyHash: hash,
            subject: B256::ZERO,
            nonce,
        };
        let (sig, recid) =
            k256::ecdsa::SigningKey::from(&owner).sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
        let sig = alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd());
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let reply = enclave
            .handle(Call::CreateSession(CreateSession {
                auth: OwnerAuth { owner: owner_addr, nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) },
                agent_public_key: Bytes::from(agent.public_key().to_encoded_point(true).as_bytes().to_vec()),
                policy: policy.clone(),
            }))
            .expect("create session");
        match reply {
            Reply::SessionCreated(c) => c.binding.session,
            _ => unreachable!(),
        }
    };
    for i in 0..extra_sessions {
        let mut seed = [1u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1000).to_be_bytes());
        create(&SecretKey::from_slice(&seed).unwrap());
    }
    let agent = SecretKey::from_slice(&[9u8; 32]).unwrap();
    let session = create(&agent);
    let agent_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&enclave.identity_public_key()).unwrap();
    let stamp_key = StampKey::derive(&agent, &enclave_pk, session, agent_addr);
    Setup { enclave, clock, agent, session, stamp_key }
}

fn benches(c: &mut Criterion) {
    // The reference: one bare k256 signature over a digest.
    let key = k256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let digest = B256::repeat_byte(0x11);
    c.bench_function("k256/sign_prehash", |b| {
        b.iter(|| key.sign_prehash_recoverable(black_box(digest.as_slice())).unwrap())
    });

    // Policy evaluation alone.
    let compiled = CompiledPolicy::compile(bench_policy()).unwrap();
    assert_eq!(compiled.doc.limits.len() + compiled.doc.calls.len() + compiled.doc.rate_limits.len() + 13, 22);
    let counters = Counters::new();
    let tx = transfer_tx(0);
    let call: TxCall = tx.call().unwrap();
    let calls = [call];
    let ctx =
        Context { now: T0 + 10, anchor: T0, owner: Address::repeat_byte(0xaa), account: Address::repeat_byte(0xcc) };
    let op = Operation {
        chain_id: 1,
        calls: &calls,
        gas: tx.gas(),
        place: bridle_common::allowance::Place::Own { chain_id: 1, nonce: 0 },
        holder: Address::repeat_byte(0xcc),
    };
    assert!(evaluate(&compiled, &counters, &ctx, &op).is_ok());
    c.bench_function("policy/evaluate_20_rules", |b| {
        b.iter(|| evaluate(black_box(&compiled), &counters, &ctx, black_box(&op)).unwrap())
    });

    // The whole in-process signing path.
    for sessions in [0usize, 10_000] {
        let s = setup(sessions);
        let _ = &s.agent;
        let mut i = 0u64;
        let name = format!("path/sign_if_allowed/{}_sessions", sessions + 1);
        c.bench_function(&name, |b| {
            b.iter_batched(
                || {
                    i += 1;
                    // Advance the clock a second every 500 requests: the replay cache
                    // keeps ~30k live nonces at most.
                    if i.is_multiple_of(500) {
                        s.clock.set(s.clock.now() + 1);
                    }
                    let tx = transfer_tx(i);
                    let digest = tx.build().unwrap().signing_hash();
                    let mut nonce = [0u8; 16];
                    nonce[..8].copy_from_slice(&i.to_be_bytes());
                    let stamp = s.stamp_key.stamp(
                        s.session,
                        bridle_common::stamp::PayloadKind::Transaction,
                        &digest,
                        nonce,
                        s.clock.now(),
                    );
                    SignRequest { session: s.session, payload: SignPayload::Transaction(tx), stamp }
                },
                |req| s.enclave.sign_if_allowed(&req).expect("allowed"),
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group! {
    name = signing;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4)).warm_up_time(std::time::Duration::from_secs(1));
    targets = benches
}
criterion_main!(signing);
