//! Regression tests for the adversarial review (issue 9), against the real binaries: nothing
//! an unauthenticated caller sends may abort, hang or exhaust the enclave (findings 2, 7).
//! Each attack is sent straight to the enclave's socket with a garbage stamp or a bad owner
//! signature; afterwards the enclave must still be running and a session made before must
//! still sign.

use alloy_primitives::{address, Address, Bytes, B256, U256};
use bridle_common::owner::action;
use bridle_common::protocol::*;
use bridle_common::stamp::Stamp;
use bridle_tests::*;

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn garbage_stamp() -> Stamp {
    Stamp { nonce: [7; 16], timestamp: now(), mac: [0x5a; 32] }
}

fn base_policy() -> String {
    format!(
        r#"
name = "victim"
chains = [{CHAIN}]
valid_for = "1h"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
"#
    )
}

/// The enclave is alive and a session granted before the attack still signs.
async fn still_serving(s: &mut Stack, g: &Granted, nonce: u64) {
    assert!(s.enclave.proc.is_running(), "the enclave process died");
    let (c, v) = s.sign(g, erc20_transfer(CHAIN, nonce, USDC, DEAD, U256::from(1))).await;
    assert_eq!(c, 200, "a session made before the attack must still sign: {v}");
}

fn refused(r: Result<Reply, bridle_common::Denial>, codes: &[&str]) -> bridle_common::Denial {
    match r {
        Err(d) => {
            assert!(codes.contains(&d.code.as_str()), "{d}");
            d
        }
        Ok(r) => panic!("accepted: {r:?}"),
    }
}

#[tokio::test]
async fn deep_typed_data_types_are_refused_before_parsing() {
    let mut s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&base_policy())).await.expect("grant");
    // The review's crash: `uint256` followed by thousands of `[]`, well under 64 KiB. Alloy's
    // type parser recursed until the worker's stack overflowed and the process aborted.
    for n in [16_000usize, 24_000, 31_000] {
        let t = format!("uint256{}", "[]".repeat(n));
        let td = format!(
            r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}}],"A":[{{"name":"a","type":"{t}"}}]}},"primaryType":"A","domain":{{"name":"x"}},"message":{{"a":[]}}}}"#
        );
        let req = SignRequest { session: g.session, payload: SignPayload::TypedData(td), stamp: garbage_stamp() };
        refused(s.enclave.call(Call::SignIfAllowed(req)), &["malformed", "too_large"]);
    }
    // Deep JSON nesting in the message, and a long chain of structs.
    let deep = format!(
        r#"{{"types":{{"A":[]}},"primaryType":"A","domain":{{}},"message":{}1{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let req = SignRequest { session: g.session, payload: SignPayload::TypedData(deep), stamp: garbage_stamp() };
    refused(s.enclave.call(Call::SignIfAllowed(req)), &["malformed", "too_large"]);
    let mut types = String::from(r#""EIP712Domain":[]"#);
    for i in 0..60 {
        types.push_str(&format!(r#","S{i}":[{{"name":"x","type":"S{}[]"}}]"#, i + 1));
    }
    types.push_str(r#","S60":[{"name":"x","type":"uint8"}]"#);
    let chain = format!(r#"{{"types":{{{types}}},"primaryType":"S0","domain":{{}},"message":{{}}}}"#);
    let req = SignRequest { session: g.session, payload: SignPayload::TypedData(chain), stamp: garbage_stamp() };
    refused(s.enclave.call(Call::SignIfAllowed(req)), &["malformed", "too_large"]);
    still_serving(&mut s, &g, 0).await;
}

/// `depth` structs, each with `fields` fields of the next: a few KB of `types` that alloy
/// resolves into a tree of `fields^depth` nodes.
fn fan_out(depth: usize, fields: usize) -> String {
    let mut types = String::from(r#""EIP712Domain":[{"name":"name","type":"string"}]"#);
    for i in 0..depth {
        let fs: Vec<String> = (0..fields).map(|f| format!(r#"{{"name":"f{f}","type":"S{}"}}"#, i + 1)).collect();
        types.push_str(&format!(r#","S{i}":[{}]"#, fs.join(",")));
    }
    types.push_str(&format!(r#","S{depth}":[{{"name":"x","type":"uint8"}}]"#));
    format!(r#"{{"types":{{{types}}},"primaryType":"S0","domain":{{"name":"x"}},"message":{{}}}}"#)
}

/// Found 2026-12-03: alloy resolves a struct type into a tree that repeats every struct it
/// uses each time it is used. 2 KB of `types` (5 structs of 16 fields of the next) took
/// 890 MB and 2.3 s, and 14 KB (8 of 64) would take 64^8 nodes: any caller who knows a
/// session's address could exhaust the enclave's memory before the stamp is checked. The
/// enclave runs here under a 4 GiB address-space limit, so a regression fails the test
/// instead of the machine.
#[tokio::test]
async fn typed_data_types_that_expand_are_refused_before_they_are_resolved() {
    let mut s = Stack::start();
    limit_address_space(&s);
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&base_policy())).await.expect("grant");
    let before = s.enclave.rss_kib();
    for (depth, fields) in [(5, 16), (8, 64), (4, 40), (2, 64)] {
        let req = SignRequest {
            session: g.session,
            payload: SignPayload::TypedData(fan_out(depth, fields)),
            stamp: garbage_stamp(),
        };
        let d = refused(s.enclave.call(Call::SignIfAllowed(req)), &["too_large"]);
        assert!(d.reason.contains("resolves to more than"), "{d}");
        assert!(d.reason.len() < 1024, "a refusal of {} bytes", d.reason.len());
    }
    // A thousand objects whose struct repeats 64 field names of 250 bytes: refused by the
    // work they would cause, not parsed.
    let fields: Vec<String> = (0..64).map(|f| format!(r#"{{"name":"{f:0>250}","type":"uint8"}}"#)).collect();
    let doc = format!(
        r#"{{"types":{{"EIP712Domain":[],"S":[{}],"M":[{{"name":"v","type":"S[]"}}]}},"primaryType":"M","domain":{{}},"message":{{"v":[{}]}}}}"#,
        fields.join(","),
        vec!["{}"; 1_000].join(",")
    );
    let req = SignRequest { session: g.session, payload: SignPayload::TypedData(doc), stamp: garbage_stamp() };
    let d = refused(s.enclave.call(Call::SignIfAllowed(req)), &["too_large"]);
    assert!(d.reason.contains("struct work"), "{d}");
    let grew = s.enclave.rss_kib().saturating_sub(before);
    assert!(grew < 64 * 1024, "the enclave grew by {grew} KiB");
    still_serving(&mut s, &g, 0).await;
}

/// Found 2026-12-03 by a review: the agent's calldata to a function with argument rules
/// was decoded with no layout check. 2 000 to 10 000 elements of a `bytes[]`, every offset
/// pointing at one 100 KB blob, decode into one copy each: 420 KB of calldata took 980 MB in alloy's decoder alone, and grew the real enclave (decoding
/// and re-encoding) by 2.1 GB
/// (alloy stops at 1 GiB). An agent — whose key may be stolen — could exhaust the enclave
/// holding every other session's key. Sent here with the agent's genuine stamp, under a
/// 4 GiB address-space limit.
#[tokio::test]
async fn aliased_calldata_is_refused_before_it_is_decoded() {
    let mut s = Stack::start();
    limit_address_space(&s);
    let text = format!(
        r#"{}
[[calls]]
target = "{DEAD}"
functions = [{{ signature = "exec(address to, bytes[] data)", args = [{{ arg = "to", op = "eq", value = "{DEAD}" }}] }}]
"#,
        base_policy()
    );
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    let before = s.enclave.rss_kib();
    let (n, blob) = (10_000usize, 100_000usize);
    let mut data = alloy_primitives::keccak256("exec(address,bytes[])")[..4].to_vec();
    data.extend_from_slice(&[&[0u8; 12][..], DEAD.as_slice()].concat());
    data.extend_from_slice(&word(64));
    data.extend_from_slice(&word(n));
    for _ in 0..n {
        data.extend_from_slice(&word(n * 32));
    }
    data.extend_from_slice(&word(blob));
    data.extend_from_slice(&vec![7u8; blob.div_ceil(32) * 32]);
    let d = refused(s.enclave.call(stamped_call(&g, DEAD, data)), &["argument_rejected"]);
    assert!(d.reason.contains("canonically"), "{d}");
    let grew = s.enclave.rss_kib().saturating_sub(before);
    assert!(grew < 64 * 1024, "the enclave grew by {grew} KiB");
    still_serving(&mut s, &g, 0).await;
}

/// Found 2026-12-03 by a second review: the policy compiler's bracket count let
/// `bool[1][1]…[]` through with hundreds of dimensions, and alloy's decoder clones the
/// element type's template, a node per dimension, for each 32-byte element: ≈ 530 MB from
/// 1 MiB of calldata. Any key can create a session with such a policy and stamp the
/// calls itself. Now the type is refused at creation, and within the depth bound the nodes
/// a call would decode into are counted before decoding.
#[tokio::test]
async fn calldata_that_decodes_into_many_nodes_is_refused() {
    let mut s = Stack::start();
    limit_address_space(&s);
    let with = |dims: usize| {
        format!(
            r#"{}
[[calls]]
target = "{DEAD}"
functions = [{{ signature = "exec(address to, bool{}[] data)", args = [{{ arg = "to", op = "eq", value = "{DEAD}" }}] }}]
"#,
            base_policy(),
            "[1]".repeat(dims)
        )
    };
    // The CLI's policy file check refuses it too, so the document is edited after it.
    let six = format!("bool{}[]", "[1]".repeat(6));
    let json = serde_json::to_string(&policy_unchecked(&with(6))).unwrap();
    assert!(json.contains(&six));
    let hostile: bridle_common::policy::Policy =
        serde_json::from_str(&json.replace(&six, &format!("bool{}[]", "[1]".repeat(330)))).unwrap();
    let Err((_, e)) = s.grant(&Actor::random(), &Actor::random(), &hostile).await else {
        panic!("a policy with 330 dimensions was accepted");
    };
    assert_eq!(code(&e), "invalid_policy", "{e}");
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&with(6))).await.expect("grant");
    let before = s.enclave.rss_kib();
    let n = 30_000usize;
    let mut data = alloy_primitives::keccak256(format!("exec(address,bool{}[])", "[1]".repeat(6)))[..4].to_vec();
    data.extend_from_slice(&[&[0u8; 12][..], DEAD.as_slice()].concat());
    data.extend_from_slice(&word(64));
    data.extend_from_slice(&word(n));
    for _ in 0..n {
        data.extend_from_slice(&word(1));
    }
    let d = refused(s.enclave.call(stamped_call(&g, DEAD, data)), &["argument_rejected"]);
    assert!(d.reason.contains("at most 8192"), "{d}");
    let grew = s.enclave.rss_kib().saturating_sub(before);
    assert!(grew < 64 * 1024, "the enclave grew by {grew} KiB");
    still_serving(&mut s, &g, 0).await;
}

#[tokio::test]
async fn deep_frames_signatures_and_calldata_never_crash() {
    let mut s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&base_policy())).await.expect("grant");
    // A CBOR frame nested 100 000 deep (arrays of arrays).
    let mut deep = vec![0x81u8; 100_000];
    deep.push(0x00);
    refused(s.enclave.call_raw(&deep), &["malformed"]);
    // A frame whose first CBOR item is complete ({"call": "attest"}) followed by a map whose
    // array declares 2^40 items (the enclave_frame fuzz finding): ciborium reads the enum
    // given as text and then the next item as its content, and alloy's Bytes reserved the
    // declared length — an allocation abort, not a panic. Nothing after the value is read.
    let mut trailing = vec![0xa1, 0x44];
    trailing.extend_from_slice(b"call");
    trailing.push(0x66);
    trailing.extend_from_slice(b"attest");
    trailing.extend_from_slice(&[0xa1, 0x65]);
    trailing.extend_from_slice(b"nonce");
    trailing.extend_from_slice(&[0x9b, 0, 0, 0x01, 0, 0, 0, 0, 0, 0x00]);
    refused(s.enclave.call_raw(&trailing), &["malformed"]);
    // A policy whose function signature nests tuples and arrays deeply, in a session
    // creation with a bad owner signature: it is compiled before the signature is checked,
    // so its parsing must be bounded.
    let sig = format!("f({}uint256{})", "(".repeat(5_000), ")".repeat(5_000));
    let arr = format!("g(uint256{})", "[]".repeat(20_000));
    for sig in [sig, arr] {
        let text =
            base_policy().replace("functions = [\"transfer(address,uint256)\"]", &format!("functions = [\"{sig}\"]"));
        let p = policy_unchecked(&text);
        let call = Call::CreateSession(CreateSession {
            auth: OwnerAuth { owner: Address::repeat_byte(1), nonce: 1, signature: Bytes::from(vec![1u8; 65]) },
            agent_public_key: Actor::random().public_key_sec1(),
            policy: p,
        });
        refused(s.enclave.call(call), &["invalid_policy", "too_large"]);
    }
    // A user operation with a batch of 5 000 calls (and a garbage stamp), under the frame limit.
    let calls: Vec<(Address, U256, Bytes)> = (0..5_000).map(|_| (DEAD, U256::ZERO, Bytes::new())).collect();
    let op = bridle_common::userop::UserOperationRequest {
        chain_id: CHAIN,
        entry_point: bridle_common::userop::ENTRY_POINT_V07,
        entry_point_version: None,
        sender: DEAD,
        nonce: U256::ZERO,
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: bridle_common::userop::encode::simple_execute_batch(&calls),
        call_gas_limit: 1,
        verification_gas_limit: 1,
        pre_verification_gas: U256::from(1),
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    };
    let req = SignRequest { session: g.session, payload: SignPayload::UserOperation(op), stamp: garbage_stamp() };
    refused(s.enclave.call(Call::SignIfAllowed(req)), &["unauthenticated", "too_large"]);
    still_serving(&mut s, &g, 0).await;
}

/// A frame whose decoded form is many times its size (review of 2026-12-02): a policy whose
/// permit rule lists a million empty token names, each one CBOR byte and 24 bytes decoded
/// (48 with the list's growth, ≈ 50 MiB in all), sent unauthenticated. It is refused while it
/// decodes, within the bound (8 MiB and 256 KiB for a 1 MiB frame, the decoder's scratch
/// buffer included): the enclave's peak memory grows by less than the list alone would take.
#[tokio::test]
async fn a_frame_that_decodes_to_many_times_its_size_is_refused_before_it_is_allocated() {
    use bridle_common::policy::doc::{PermitKind, PermitRule};
    let mut s = Stack::start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&base_policy())).await.expect("grant");
    still_serving(&mut s, &g, 0).await;
    let mut p = policy_unchecked(&base_policy());
    p.permits = vec![PermitRule {
        kind: PermitKind::Eip2612,
        tokens: vec![String::new(); 1_000_000],
        max_deadline: 60,
        permit2: None,
    }];
    let call = Call::CreateSession(CreateSession {
        auth: OwnerAuth { owner: Address::repeat_byte(1), nonce: 1, signature: Bytes::from(vec![1u8; 65]) },
        agent_public_key: Actor::random().public_key_sec1(),
        policy: p,
    });
    let frame = bridle_common::frame::to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap();
    assert!(frame.len() < bridle_common::frame::DEFAULT_MAX_FRAME, "{} bytes", frame.len());
    // The measure: what a harmless unauthenticated frame of the same size costs (a message
    // to sign with a garbage stamp: the frame, its decoded bytes, the reply), then the
    // attack. The attack may add at most its bound, and a little slack, on top.
    let harmless = {
        let req = SignRequest {
            session: g.session,
            payload: SignPayload::Message(vec![7u8; frame.len() - 200].into()),
            stamp: garbage_stamp(),
        };
        bridle_common::frame::to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: Call::SignIfAllowed(req) })
            .unwrap()
    };
    let start = s.enclave.peak_rss_kib();
    refused(s.enclave.call_raw(&harmless), &["unauthenticated", "too_large"]);
    let harmless_cost = s.enclave.peak_rss_kib().saturating_sub(start);
    let d = refused(s.enclave.call_raw(&frame), &["too_large"]);
    assert!(d.reason.contains("decodes to more than"), "{d}");
    let grown = s.enclave.peak_rss_kib().saturating_sub(start);
    // Decoded without the bound, this frame alone takes 48 MiB (50 331 050 bytes at the
    // allocator, measured in-process on 2026-12-02); within it, 5.7 MB. The process's peak
    // adds the allocator's own keeping (≈ 18 MiB on top of the harmless frame's here, glibc
    // in a debug build), so the line is drawn between the two.
    assert!(
        grown < harmless_cost + 32 * 1024,
        "the enclave's peak memory grew by {grown} KiB, {harmless_cost} KiB of it for a harmless frame"
    );
    for _ in 0..2 {
        refused(s.enclave.call_raw(&frame), &["too_large"]);
    }
    still_serving(&mut s, &g, 1).await;
}

/// A policy resolved without compiling it (the enclave must refuse it itself).
fn policy_unchecked(text: &str) -> bridle_common::policy::Policy {
    bridle_common::policy::file::resolve_text(text, now()).unwrap_or_else(|d| panic!("{d}"))
}

/// Finding 7: a ~930 KB policy cost ~5 MB of enclave memory per session, and any key can own
/// sessions; now policies are bounded and the enclave enforces a memory budget.
#[tokio::test]
async fn memory_is_bounded_whatever_owners_send() {
    let e = EnclaveProc::start_with(&["--memory-budget-mib", "16"]);
    let host = HostProc::start(&e.socket, e.dir.path());
    let http = reqwest::Client::new();
    let mut s = Stack { host, enclave: e, http };
    let id = s.status().await.identity_address;

    // A 930 KB policy: refused at once, whoever signs it.
    let mut p = policy_unchecked(&base_policy());
    p.name = "x".repeat(100);
    p.recipients = Some(
        (0..20_000u64)
            .map(|i| bridle_common::policy::doc::Party::Address(Address::left_padding_from(&i.to_be_bytes())))
            .collect(),
    );
    let owner = Actor::random();
    let agent = Actor::random();
    let msg = create_action(id, agent.address, p.hash(), Actor::next_nonce());
    let call = Call::CreateSession(CreateSession {
        auth: owner.sign_owner(&msg),
        agent_public_key: agent.public_key_sec1(),
        policy: p,
    });
    refused(s.enclave.call(call), &["too_large", "invalid_policy"]);

    // Sessions with large (allowed) policies until the budget is spent: refused
    // `rate_limited`, the enclave alive and within bounds.
    let mut big = policy_unchecked(&base_policy());
    big.recipients = Some(
        (0..250u64)
            .map(|i| bridle_common::policy::doc::Party::Address(Address::left_padding_from(&i.to_be_bytes())))
            .collect(),
    );
    big.chains = (1..=250u64).collect();
    big.chains.push(CHAIN);
    big.chains.truncate(256);
    let rss0 = s.enclave.rss_kib();
    let mut made = 0;
    let mut refused_budget = false;
    for _ in 0..2_000 {
        let agent = Actor::random();
        let msg = create_action(id, agent.address, big.hash(), Actor::next_nonce());
        let call = Call::CreateSession(CreateSession {
            auth: Actor::random().sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: big.clone(),
        });
        match s.enclave.call(call) {
            Ok(_) => made += 1,
            Err(d) => {
                assert_eq!(
                    (d.code.as_str(), d.rule.as_deref()),
                    ("rate_limited", Some("enclave.memory_budget")),
                    "{d}"
                );
                refused_budget = true;
                break;
            }
        }
    }
    assert!(refused_budget, "{made} sessions and the budget never refused");
    let grown = s.enclave.rss_kib().saturating_sub(rss0);
    assert!(grown < 64 * 1024, "the enclave grew {grown} KiB under a 16 MiB budget ({made} sessions)");

    // Owner nonces from thousands of fresh keys (revoke-all of nothing) stay bounded and the
    // enclave keeps serving.
    for _ in 0..2_000 {
        let o = Actor::random();
        let msg = owner_action(action::REVOKE_ALL, id, Address::ZERO, Address::ZERO, B256::ZERO);
        let _ = s.enclave.call(Call::RevokeAll(RevokeAll { auth: o.sign_owner(&msg) }));
    }
    assert!(s.enclave.proc.is_running());
    assert!(matches!(
        s.enclave.call(Call::Status(StatusQuery { session: None, nonce: None, held: None })),
        Ok(Reply::Status(_))
    ));
}

/// The memory budget must fit in the memory the enclave has: a budget larger than what is
/// left beside the runtime, the connections and the audit log is refused at start, naming
/// each term, so that session creation (open to any key) can never drive the enclave out of
/// memory and lose every key. Without `--memory-budget-mib`, the budget is nine tenths of
/// what is left.
#[test]
fn a_memory_budget_beyond_the_enclaves_memory_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin("bridle-enclave"))
        .arg("--unix")
        .arg(dir.path().join("e.sock"))
        .args(["--dev", "--memory-budget-mib", "100000000"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for part in [
        "refusing to start",
        "100000000 MiB does not fit",
        "MiB available",
        "connections",
        "audit log",
        "give --memory-budget-mib at least 16 and at most",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert!(!dir.path().join("e.sock").exists(), "it listened anyway");

    // A frame limit above what the budget's headroom (one held request of a frame) and the
    // memory plan's answers are sized for: refused too.
    let out = std::process::Command::new(bin("bridle-enclave"))
        .arg("--unix")
        .arg(dir.path().join("e.sock"))
        .args(["--dev", "--max-frame", "1048577"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing to start: --max-frame 1048577 is above"), "{err}");
    assert!(!dir.path().join("e.sock").exists(), "it listened anyway");

    // Without a budget: derived from this machine's memory, logged, and the enclave listens.
    let log = dir.path().join("enclave.log");
    let mut child = std::process::Command::new(bin("bridle-enclave"))
        .arg("--unix")
        .arg(dir.path().join("e.sock"))
        .arg("--dev")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !dir.path().join("e.sock").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(dir.path().join("e.sock").exists(), "never listened: {text}");
    let line = text.lines().find(|l| l.contains("memory: sessions' budget")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("(nine tenths of what is left)") && line.contains("MiB available"), "{line}");
}

/// Memory per session with the README's example policy (the first policy block of the
/// README), measured on the real enclave process: `cargo test -p bridle-tests --test
/// review_crash -- --ignored --nocapture memory_per_session`. Reported in SECURITY.md and
/// BENCHMARKS.md; the budget's per-session estimate must stay above it.
#[tokio::test]
#[ignore]
async fn memory_per_session() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let text = &readme[start..start + readme[start..].find("```").unwrap()];
    let e = EnclaveProc::start();
    let host = HostProc::start(&e.socket, e.dir.path());
    let s = Stack { host, enclave: e, http: reqwest::Client::new() };
    let id = s.status().await.identity_address;
    let p = policy_unchecked(text);
    let compiled = bridle_common::policy::CompiledPolicy::compile(p.clone()).unwrap();
    let n = 5_000u64;
    let create = |k: u64| {
        let owner = Actor::random();
        let agent = Actor::random();
        let msg = create_action(id, agent.address, p.hash(), Actor::next_nonce() + k);
        Call::CreateSession(CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: p.clone(),
        })
    };
    for k in 0..200 {
        s.enclave.call(create(k)).unwrap();
    }
    let before = s.enclave.rss_kib();
    for k in 0..n {
        s.enclave.call(create(k)).unwrap();
    }
    let after = s.enclave.rss_kib();
    let per = (after - before) * 1024 / n;
    println!(
        "README policy: {} canonical bytes; {n} sessions: RSS +{} KiB, {per} bytes per session; budget estimate {} bytes",
        compiled.canonical_len,
        after - before,
        bridle_enclave::service::footprint_estimate(compiled.canonical_len)
    );
}

/// Policy files nested deep (JSON and TOML) are refused by `bridle policy check`, never a
/// crash of the CLI (finding 2: every decoder bounded).
#[test]
fn deep_policy_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("deep.json");
    std::fs::write(&json, format!("{{\"name\": {}1{}}}", "[".repeat(200_000), "]".repeat(200_000))).unwrap();
    let toml = dir.path().join("deep.toml");
    std::fs::write(&toml, format!("name = {}1{}\n", "[".repeat(200_000), "]".repeat(200_000))).unwrap();
    let dup = dir.path().join("dup.json");
    std::fs::write(&dup, r#"{"name": "a", "chains": [1], "valid_for": "1h", "name": "b"}"#).unwrap();
    for (f, want) in [(&json, "nests"), (&toml, "nests"), (&dup, "appears twice")] {
        let o = bridle_tests::cli::bridle_cmd(&dir.path().join("trust.json"))
            .arg("policy")
            .arg("check")
            .arg(f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

/// Limit the enclave's address space to 4 GiB: an allocation storm aborts it (and the test
/// sees it dead) instead of exhausting the machine.
fn limit_address_space(s: &Stack) {
    let pid = s.enclave.proc.pid().to_string();
    let limited = std::process::Command::new("prlimit").args(["--pid", &pid, "--as=4294967296"]).status();
    assert!(limited.is_ok_and(|st| st.success()), "prlimit could not limit the enclave");
}

/// A 32-byte ABI word holding `n`.
fn word(n: usize) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&(n as u64).to_be_bytes());
    w
}

/// A sign-if-allowed call of an EIP-1559 transaction to `to` with `data`, stamped by `g`'s
/// agent.
fn stamped_call(g: &Granted, to: Address, data: Vec<u8>) -> Call {
    use bridle_common::tx::{Eip1559Request, TxRequest};
    let tx = TxRequest::Eip1559(Eip1559Request {
        chain_id: CHAIN,
        nonce: 0,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(to),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    });
    let payload = SignPayload::Transaction(tx);
    let stamp = g.agent.stamp(&g.enclave_pk, g.session, &payload, now());
    Call::SignIfAllowed(SignRequest { session: g.session, payload, stamp })
}
