//! Signing-path benchmarks, measured side by side in one run so ratios are meaningful on
//! a noisy machine:
//! - `k256/sign_prehash`: one bare secp256k1 signature (the reference);
//! - `libsecp256k1/sign_ecdsa_recoverable`: the same signature by bitcoin-core's
//!   libsecp256k1 (crate `secp256k1`), for reference only — the physical limit for this
//!   curve on this machine; k256 stays the signer. Both are also timed interleaved before
//!   criterion runs, and the rates and their ratio printed (one line, same run);
//! - `policy/evaluate_20_rules`: the policy engine on an ERC-20 transfer, 20-rule policy;
//! - `path/sign_if_allowed`: the in-process signing path (stamp check, decode, evaluate,
//!   charge, sign), with 1 and with 10 000 sessions in the enclave;
//! - multi-core (printed, issue 12 item 3): the signing path over 64 sessions on 1 thread
//!   and on every core, beside raw k256 on 1 and every core, alternated in one run;
//! - `exposure/check_at_its_bound`: the check across sessions at the bound SECURITY.md
//!   states, the longest any request holds the enclave-wide exposure lock for it.

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
    /// The first `MULTICORE_SESSIONS` other sessions, with their stamp keys.
    others: Vec<(Address, StampKey)>,
}

fn setup(extra_sessions: usize) -> Setup {
    let clock = Arc::new(FixedClock::new(T0));
    let enclave = Enclave::new(Box::new(SharedClock(clock.clone())), None, Config::default());
    let owner = SecretKey::from_slice(&[7u8; 32]).unwrap();
    let owner_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&owner.public_key()));
    let policy = bench_policy();
    let hash = policy.hash();
    let identity = enclave.identity_address();
    // Owner nonces: the time in milliseconds.
    let mut nonce = T0 * 1000;
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
    let enclave_pk = k256::PublicKey::from_sec1_bytes(&enclave.identity_public_key()).unwrap();
    let stamp_key_of = |agent: &SecretKey, session: Address| {
        let agent_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
        StampKey::derive(agent, &enclave_pk, session, agent_addr)
    };
    let mut others = Vec::new();
    for i in 0..extra_sessions {
        let mut seed = [1u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1000).to_be_bytes());
        let agent = SecretKey::from_slice(&seed).unwrap();
        let session = create(&agent);
        // Stamp keys (an ECDH each) only for the sessions the multi-core bench drives.
        if others.len() < MULTICORE_SESSIONS {
            others.push((session, stamp_key_of(&agent, session)));
        }
    }
    let agent = SecretKey::from_slice(&[9u8; 32]).unwrap();
    let session = create(&agent);
    let stamp_key = stamp_key_of(&agent, session);
    Setup { enclave, clock, agent, session, stamp_key, others }
}

/// Sessions driven by the multi-core measurement (issue 12 item 3).
const MULTICORE_SESSIONS: usize = 64;

/// Signed requests per second through `Enclave::sign_if_allowed` with `threads` threads,
/// each signing round-robin over its share of `sessions` (a nonce per session), for
/// `secs` seconds. Each request is built and stamped in the loop (≈ 3 µs beside the
/// signature), as a client would.
fn path_rate(s: &Setup, sessions: &[(Address, StampKey)], threads: usize, secs: f64, base: u64) -> f64 {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs);
    let total: u64 = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    let mine: Vec<_> = sessions.iter().skip(t).step_by(threads).collect();
                    let mut n = 0u64;
                    while Instant::now() < stop {
                        let (session, key) = mine[(n as usize) % mine.len()];
                        let i = base + n;
                        // The replay cache holds a bounded number of live nonces per
                        // session: move the clock on as the bench above does.
                        if n % 500 == 499 {
                            s.clock.set(s.clock.now() + 1);
                        }
                        let tx = transfer_tx(i);
                        let digest = tx.build().unwrap().signing_hash();
                        let mut nonce = [0u8; 16];
                        nonce[..8].copy_from_slice(&i.to_be_bytes());
                        nonce[8] = t as u8;
                        let stamp = key.stamp(
                            *session,
                            bridle_common::stamp::PayloadKind::Transaction,
                            &digest,
                            nonce,
                            s.clock.now(),
                        );
                        let req = SignRequest { session: *session, payload: SignPayload::Transaction(tx), stamp };
                        s.enclave.sign_if_allowed(&req).expect("allowed");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("signing thread")).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Raw k256 signatures per second on `threads` threads for `secs` seconds.
fn raw_rate(threads: usize, secs: f64) -> f64 {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    let stop = start + Duration::from_secs_f64(secs);
    let total: u64 = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    let key = k256::ecdsa::SigningKey::from_slice(&[t as u8 + 1; 32]).unwrap();
                    let mut d = [7u8; 32];
                    let mut n = 0u64;
                    while Instant::now() < stop {
                        d[..8].copy_from_slice(&n.to_le_bytes());
                        black_box(key.sign_prehash_recoverable(&d).unwrap());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Issue 12 item 3, in process: the signing path on 1 and on all cores over 64 sessions,
/// beside the raw k256 rate on 1 and all cores (the machine's own ceiling), alternated
/// so that load from elsewhere falls on both. Printed as one line.
fn multicore(secs: f64) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let s = setup(MULTICORE_SESSIONS - 1);
    let mut sessions = s.others.clone();
    sessions.push((s.session, s.stamp_key.clone()));
    let (mut p1, mut pn, mut r1, mut rn) = (0.0, 0.0, 0.0, 0.0);
    let rounds = 4;
    let slice = secs / (4 * rounds) as f64;
    for round in 0..rounds {
        let base = 1_000_000 * (round as u64 + 1);
        p1 += path_rate(&s, &sessions, 1, slice, base) / rounds as f64;
        pn += path_rate(&s, &sessions, cores, slice, base + 500_000) / rounds as f64;
        r1 += raw_rate(1, slice) / rounds as f64;
        rn += raw_rate(cores, slice) / rounds as f64;
    }
    println!(
        "multi-core, {} sessions, in process: sign_if_allowed 1 thread {:.0} /s, {cores} threads {:.0} /s = {:.2}×; \
         raw k256 1 thread {:.0} /s, {cores} threads {:.0} /s = {:.2}× (the machine's ceiling now); \
         path scaling / raw scaling = {:.0} %",
        sessions.len(),
        p1,
        pn,
        pn / p1,
        r1,
        rn,
        rn / r1,
        100.0 * (pn / p1) / (rn / r1)
    );
}

/// k256 and libsecp256k1 recoverable signatures per second, timed in alternating slices
/// of 50 ms for `secs` seconds in all (so machine load falls on both alike).
fn raw_rates_interleaved(secs: f64) -> (f64, f64) {
    use std::time::{Duration, Instant};
    let k = k256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let secp = secp256k1::Secp256k1::signing_only();
    let sk = secp256k1::SecretKey::from_byte_array([3u8; 32]).unwrap();
    let (mut k_n, mut k_t, mut s_n, mut s_t) = (0u64, Duration::ZERO, 0u64, Duration::ZERO);
    let mut d = [0x11u8; 32];
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let slice = Duration::from_millis(50);
    while Instant::now() < end {
        let t = Instant::now();
        while t.elapsed() < slice {
            d[..8].copy_from_slice(&k_n.to_le_bytes());
            black_box(k.sign_prehash_recoverable(black_box(&d)).unwrap());
            k_n += 1;
        }
        k_t += t.elapsed();
        let t = Instant::now();
        while t.elapsed() < slice {
            d[..8].copy_from_slice(&s_n.to_le_bytes());
            black_box(secp.sign_ecdsa_recoverable(secp256k1::Message::from_digest(black_box(d)), &sk));
            s_n += 1;
        }
        s_t += t.elapsed();
    }
    (k_n as f64 / k_t.as_secs_f64(), s_n as f64 / s_t.as_secs_f64())
}

fn benches(c: &mut Criterion) {
    // Raw rates side by side (interleaved), printed as one line: the ratio is from one run.
    // `cargo bench … -- --test` (a smoke run) times them briefly.
    let smoke = std::env::args().any(|a| a == "--test");
    let (k256_rate, secp_rate) = raw_rates_interleaved(if smoke { 0.2 } else { 4.0 });
    println!(
        "raw signing rate, 1 thread, interleaved: k256 {:.0} /s ({:.2} µs), libsecp256k1 {:.0} /s ({:.2} µs); \
         libsecp256k1 / k256 = {:.2}×",
        k256_rate,
        1e6 / k256_rate,
        secp_rate,
        1e6 / secp_rate,
        secp_rate / k256_rate
    );

    multicore(if smoke { 0.4 } else { 8.0 });

    // The reference: one bare k256 signature over a digest.
    let key = k256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let digest = B256::repeat_byte(0x11);
    c.bench_function("k256/sign_prehash", |b| {
        b.iter(|| key.sign_prehash_recoverable(black_box(digest.as_slice())).unwrap())
    });
    // For reference only: the same signature by libsecp256k1 (the same key and digest).
    let secp = secp256k1::Secp256k1::signing_only();
    let sk = secp256k1::SecretKey::from_byte_array([3u8; 32]).unwrap();
    c.bench_function("libsecp256k1/sign_ecdsa_recoverable", |b| {
        b.iter(|| secp.sign_ecdsa_recoverable(secp256k1::Message::from_digest(black_box(digest.0)), &sk))
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

/// The exposure check at its longest: 64 owner-wide and 64 agent-wide ceiling policies of one
/// owner and agent, each pricing 64 tokens the group holds; a request whose session holds all
/// 64, within every ceiling — so every policy values the whole group before the request
/// passes (32 768 valuations of `MAX_CHECK_WORK`'s 65 536; since 2026-12-07 no alternative
/// at the request's position is valued: the check compares the group with the request
/// alone). This is the longest a check holds the exposure lock.
fn exposure_at_its_bound(c: &mut Criterion) {
    use bridle_common::allowance::aggregate::{Book, Holdings, Raise};
    const TOKENS: usize = 64;
    let token = |i: usize| Address::with_last_byte(1).create(i as u64);
    let declaring = |n: usize, scope: &str| {
        let tokens: Vec<String> =
            (0..TOKENS).map(|i| format!("T{i} = {{ address = \"{}\", decimals = 6 }}", token(i))).collect();
        let prices: Vec<String> = (0..TOKENS).map(|i| format!("T{i} = \"1.{:02}\"", i % 100)).collect();
        let text = format!(
            "name = \"b\"\nchains = [1]\nvalid_for = \"1 day\"\ntokens = {{ {} }}\nprices = {{ {} }}\n{scope}_exposure_ceiling = \"{} USD\"\n",
            tokens.join(", "),
            prices.join(", "),
            1_000 + n
        );
        Arc::new(CompiledPolicy::compile(resolve_text(&text, T0).unwrap()).unwrap())
    };
    let (owner, agent) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
    let all = |amount: u64| -> Holdings { (0..TOKENS).map(|i| ((1u64, token(i)), U256::from(amount))).collect() };
    let mut book = Book::new();
    for n in 0..64 {
        book.publish(Address::with_last_byte(n as u8), owner, agent, all(1), Some(declaring(n, "owner")));
        book.publish(Address::left_padding_from(&[1, n as u8]), owner, agent, all(1), Some(declaring(n, "agent")));
    }
    let session = Address::repeat_byte(0xcc);
    let raise = Raise { after: all(1_000), saturated: false };
    book.check(session, owner, agent, &raise).expect("within every ceiling");
    c.bench_function("exposure/check_at_its_bound", |b| {
        b.iter(|| book.check(session, owner, agent, black_box(&raise)).unwrap())
    });
}

criterion_group! {
    name = signing;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4)).warm_up_time(std::time::Duration::from_secs(1));
    targets = benches, exposure_at_its_bound
}
criterion_main!(signing);
