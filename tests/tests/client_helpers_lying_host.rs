//! The client helpers (examples/python/bridle_signer.py, examples/ts/stamp.ts with the viem
//! and ethers signers, clients/alloy) and the example agents against a lying host — no
//! enclave behind it: the host answers what it likes (a review of the client helpers,
//! 2026-12-07).
//!
//! 1. A refusal is the host's word (the enclave signs none), and its text reached the
//!    terminal raw: a reason holding `\r ESC[2K ESC[1A` and a forged "mined in block …" line
//!    erased the "(the host's word; refusals are not signed)" label. Now everything the host
//!    wrote is quoted with every character outside printable ASCII escaped, 1 KiB in all,
//!    labelled, and a code shown as a code only if it is one of Bridle's; the agents'
//!    `--json` says `from_host`, and a failed check of their own exits 3, not 2.
//! 2. The Python helper's `timeout` bounded each socket read, not the call: a host dripping
//!    its reply (or its headers) a byte at a time held it for as long as it liked.
//! 3. The ethers signer kept the stamper, and the stamper its stamp key, in ordinary
//!    properties (TypeScript's `private` is compile-time only): `console.log(signer)` or
//!    `JSON.stringify(signer)` printed a key that makes stamps the enclave accepts.
//!
//! Needs Python (web3.py, eth-account), the TypeScript examples' packages and anvil, as
//! tests/tests/anvil_clients.rs does.

#[path = "../examples/alloy_agent.rs"]
mod alloy_agent;

use alloy_primitives::{address, Address, U256};
use bridle_tests::proxy::{LyingProxy, Request};
use bridle_tests::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

/// The label every refusal carries.
const LABEL: &str = "(the host's word; refusals are not signed)";

/// A reason that erases its own line and the one above (the label's), then draws a forged
/// "mined" line; with C1 CSI (U+009B) and a right-to-left override for good measure.
fn forged_reason() -> String {
    format!(
        "USDC per day: spent 90, asking 50, cap 100\r\u{1b}[2K\u{1b}[1A\u{1b}[2Kmined in block 4242: 0x{} status \
         success\n\u{9b}2K\u{202e}\"quoted\\",
        "ab".repeat(32)
    )
}

/// The agent's identity key, the enclave identity it pins, and a session address.
struct Keys {
    agent: Actor,
    identity: k256::SecretKey,
    identity_hex: String,
    session: Address,
}

impl Keys {
    fn new() -> Keys {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let identity = k256::SecretKey::random(&mut rand_core::OsRng);
        let identity_hex = format!("0x{}", hex::encode(identity.public_key().to_encoded_point(true).as_bytes()));
        Keys { agent: Actor::random(), identity, identity_hex, session: Actor::random().address }
    }

    /// Another enclave's identity (for `enclave_mismatch`).
    fn stranger() -> String {
        Keys::new().identity_hex
    }
}

/// A host that answers `GET /v1/status` with `keys`' identity and `POST /rpc` with `rpc`;
/// nothing is forwarded (no enclave is behind it).
fn lying_host(keys: &Keys, rpc: impl Fn(&Request) -> (u16, Value) + Send + Sync + 'static) -> LyingProxy {
    let host = LyingProxy::start("http://127.0.0.1:9");
    let identity = keys.identity_hex.clone();
    host.answer("GET", "/v1/status", move |_| (200, json!({"identity_public_key": identity})));
    host.answer("POST", "/rpc", rpc);
    host
}

/// A lying host: a proxy that answers itself, or one writing raw bytes.
enum Liar {
    Proxy(LyingProxy),
    Raw(String),
}

impl Liar {
    fn url(&self) -> &str {
        match self {
            Liar::Proxy(p) => &p.url,
            Liar::Raw(u) => u,
        }
    }
}

/// The lies each helper is told in turn, by name.
fn refusal_hosts(keys: &Keys) -> Vec<(&'static str, Liar)> {
    let forged = forged_reason();
    let long = format!("{}\"\\\u{1b}", "é".repeat(1 << 19));
    vec![
        (
            // A code none of Bridle's, a rule that is no rule, a reason that forges a line.
            "forged",
            Liar::Proxy(lying_host(keys, move |_| {
                (
                    200,
                    json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32003, "message": "denied", "data": {
                        "code": "spend_cap\u{1b}[8m", "rule": "limits[0]\r\u{1b}[2K", "reason": forged}}}),
                )
            })),
        ),
        (
            // One of Bridle's codes and a 1 MiB reason: quoted up to 1 KiB, the rest counted.
            "long",
            Liar::Proxy(lying_host(keys, move |_| {
                (
                    200,
                    json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32003, "message": "denied", "data": {
                        "code": "spend_cap", "rule": "limits[0]", "reason": long}}}),
                )
            })),
        ),
        (
            // An error status whose body is not JSON, let alone Bridle's.
            "http",
            Liar::Raw(raw_host(&keys.identity_hex, 502, "\u{1b}]0;pwned\u{7}bad gateway\r\n".as_bytes(), Drip::No)),
        ),
        (
            // A "signed transaction" that is none: the helper's own check, quoting the reply.
            "not_signed",
            Liar::Proxy(lying_host(keys, |_| {
                (200, json!({"jsonrpc": "2.0", "id": 1, "result": {"raw": "\u{1b}[2K", "tx": {}}}))
            })),
        ),
    ]
}

/// Every character printable ASCII: nothing a terminal obeys (ESC, CR, LF, C1, bidi).
fn assert_printable(what: &str, text: &str) {
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        panic!("{what}: {c:?} reaches the terminal in {text:?}");
    }
}

/// What a helper reported for one lie: `{message, code, host_code, rule, reason,
/// from_host}`.
fn check_refusal(helper: &str, case: &str, e: &Value) {
    let msg = e["message"].as_str().unwrap_or_else(|| panic!("{helper} {case}: no error: {e}"));
    // Debug-escaped: a failure must not print the host's escape sequences either.
    let ctx = format!("{helper} {case}: {msg:?}");
    for k in ["message", "code", "host_code", "rule", "reason"] {
        if let Some(t) = e[k].as_str() {
            assert_printable(&format!("{ctx} ({k})"), t);
        }
    }
    assert!(msg.len() <= 1400, "{helper} {case}: {} bytes: {:?}", msg.len(), msg.chars().take(200).collect::<String>());
    assert!(!msg.contains("\nmined"), "{ctx}");
    match case {
        "forged" => {
            assert_eq!(e["from_host"], true, "{ctx}");
            assert!(msg.starts_with(&format!("bridle refused {LABEL}: ")), "{ctx}");
            // A code none of Bridle's is shown as none, the host's text quoted.
            assert_eq!(e["code"], "unknown", "{ctx}");
            assert_eq!(e["host_code"], "spend_cap\\u{001b}[8m", "{ctx}");
            assert!(msg.contains(r#"unknown (the host's code: "spend_cap\u{001b}[8m")"#), "{ctx}");
            assert!(msg.contains(r#"(rule "limits[0]\u{000d}\u{001b}[2K")"#), "{ctx}");
            assert!(
                msg.contains(r#": "USDC per day: spent 90, asking 50, cap 100\u{000d}\u{001b}[2K\u{001b}[1A\u{001b}[2Kmined in block 4242"#),
                "{ctx}"
            );
            // Nothing closes the quote: the host's quote and backslash are escaped.
            assert!(msg.ends_with(r#"success\u{000a}\u{009b}2K\u{202e}\"quoted\\""#), "{ctx}");
        }
        "long" => {
            assert_eq!((&e["from_host"], &e["code"]), (&json!(true), &json!("spend_cap")), "{ctx}");
            assert!(
                msg.starts_with(&format!(r#"bridle refused {LABEL}: spend_cap (rule "limits[0]"): "\u{{00e9}}"#)),
                "{ctx}"
            );
            assert!(msg.ends_with(" bytes cut)"), "{ctx}");
        }
        "http" => {
            assert_eq!((&e["from_host"], &e["code"]), (&json!(true), &json!("unknown")), "{ctx}");
            assert!(msg.contains(LABEL) && msg.contains(r#"\u{001b}]0;pwned\u{0007}bad gateway"#), "{ctx}");
        }
        "not_signed" => {
            assert_eq!((&e["from_host"], &e["code"]), (&json!(false), &json!("bad_reply")), "{ctx}");
            assert!(!msg.contains("refused"), "{ctx}");
            // The reply is quoted (as JSON, or its text escaped): shown, and printable.
            assert!(msg.contains("not a signed transaction") && msg.contains("[2K"), "{ctx}");
        }
        _ => unreachable!(),
    }
}

/// A program's output for a failure message, each line escaped (it may quote a host).
fn escaped_lines(out: &[u8]) -> String {
    String::from_utf8_lossy(out).lines().map(|l| l.escape_debug().to_string()).collect::<Vec<_>>().join("\n")
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3");
    assert!(out.status.success(), "python failed:\n{}", escaped_lines(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a TypeScript script (written to `dir`) with tsx in examples/ts.
fn tsx(dir: &Path, name: &str, script: &str, args: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let out = Command::new(tsx_bin())
        .arg(&path)
        .args(args)
        .current_dir(repo_root().join("examples/ts"))
        .output()
        .expect("tsx");
    assert!(out.status.success(), "{name} failed:\n{}", escaped_lines(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn examples(lang: &str) -> PathBuf {
    repo_root().join("examples").join(lang)
}

#[tokio::test]
async fn helpers_show_a_refusal_as_the_hosts_quoted_word() {
    require_python_clients();
    let keys = Keys::new();
    let hosts = refusal_hosts(&keys);
    let urls: Vec<&str> = hosts.iter().map(|(_, h)| h.url()).collect();
    let (key, session) = (keys.agent.private_key_hex(), keys.session.to_string());

    // Python.
    let py = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from bridle_signer import BridleSigner, BridleError
key, session, identity = sys.argv[2:5]
tx = {"type": 2, "chainId": 1, "nonce": 0, "gas": 21000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1,
      "to": "0x000000000000000000000000000000000000dEaD", "value": 1, "data": b""}
for host in sys.argv[5:]:
    try:
        BridleSigner(host, key, session, enclave_public_key=identity).sign_transaction(tx)
        print(json.dumps({"accepted": True}))
    except BridleError as e:
        print(json.dumps({"message": str(e), "code": e.code, "host_code": getattr(e, "host_code", None),
                          "rule": e.rule, "reason": e.reason, "from_host": e.from_host}))
    except Exception as e:  # noqa: BLE001 — no BridleError: shown as it is, and refused below
        print(json.dumps({"message": f"{type(e).__name__}: {e}", "from_host": None}))
"#;
    let dir = examples("python");
    let args = [&[dir.to_str().unwrap(), &key, &session, &keys.identity_hex][..], &urls[..]].concat();
    let got = json_lines(&python(py, &args));
    assert_eq!(got.len(), hosts.len(), "{got:?}");
    for ((case, _), e) in hosts.iter().zip(&got) {
        check_refusal("python", case, e);
    }

    // TypeScript: the viem account and the ethers signer (stamp.ts's transport).
    let work = tempfile::tempdir().unwrap();
    let ts = examples("ts");
    let script = format!(
        r#"import {{ bridleAccount }} from "{0}/bridle-signer.ts";
import {{ BridleSigner }} from "{0}/bridle-ethers.ts";
import {{ BridleError }} from "{0}/stamp.ts";
const [key, session, identity, ...hosts] = process.argv.slice(2);
const show = (e: unknown) => e instanceof BridleError
  ? {{ message: e.message, code: e.code, host_code: e.hostCode, rule: e.rule, reason: e.reason, from_host: e.fromHost }}
  : {{ other: String(e) }};
for (const host of hosts) {{
  const o = {{ host, agentKey: key, session, enclavePublicKey: identity }};
  try {{
    const a = await bridleAccount(o);
    await a.signTransaction({{ type: "eip1559", chainId: 1, nonce: 0, gas: 21000n, maxFeePerGas: 1n,
      maxPriorityFeePerGas: 1n, to: "0x000000000000000000000000000000000000dEaD", value: 1n, data: "0x" }});
    console.log(JSON.stringify({{ accepted: true }}));
  }} catch (e) {{ console.log(JSON.stringify({{ helper: "viem", ...show(e) }})); }}
  try {{
    const s = await BridleSigner.create(o);
    await s.signTransaction({{ type: 2, chainId: 1n, nonce: 0, gasLimit: 21000n, maxFeePerGas: 1n,
      maxPriorityFeePerGas: 1n, to: "0x000000000000000000000000000000000000dEaD", value: 1n, data: "0x" }});
    console.log(JSON.stringify({{ accepted: true }}));
  }} catch (e) {{ console.log(JSON.stringify({{ helper: "ethers", ...show(e) }})); }}
}}
"#,
        ts.display()
    );
    let args = [&[key.as_str(), &session, &keys.identity_hex][..], &urls[..]].concat();
    let got = json_lines(&tsx(work.path(), "refusals.mts", &script, &args));
    assert_eq!(got.len(), 2 * hosts.len(), "{got:?}");
    for (i, e) in got.iter().enumerate() {
        check_refusal(e["helper"].as_str().unwrap_or("ts"), hosts[i / 2].0, e);
    }

    // alloy.
    let identity = alloy_agent::EnclaveTrust::Pinned(keys.identity.public_key());
    for (case, host) in &hosts {
        let signer = alloy_agent::BridleSigner::connect(host.url(), &keys.agent.secret, keys.session, identity.clone())
            .await
            .unwrap();
        let mut tx = alloy_consensus::TxEip1559 {
            chain_id: 1,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 1,
            max_priority_fee_per_gas: 1,
            to: alloy_primitives::TxKind::Call(DEAD),
            value: U256::from(1),
            access_list: Default::default(),
            input: Default::default(),
        };
        let e = signer.sign_tx(&mut tx).await.expect_err("no signature");
        let b = e.downcast_ref::<alloy_agent::BridleError>().unwrap_or_else(|| panic!("alloy {case}: {e}"));
        let shown = json!({"message": b.to_string(), "code": b.code, "host_code": b.host_code, "rule": b.rule,
                           "reason": b.reason, "from_host": b.from_host});
        check_refusal("alloy", case, &shown);
    }
}

/// A chain with the test token, the session funded on it (so that the libraries' gas
/// estimates pass and they ask the host to sign).
async fn funded_chain(session: Address) -> (Anvil, Address) {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    chain.mint(token, session, U256::from(1_000_000_000u64)).await;
    chain.set_balance(session, U256::from(10u64).pow(U256::from(19u64))).await;
    (chain, token)
}

#[derive(Debug, Clone, Copy)]
enum Agent {
    Web3Py,
    Viem,
    Ethers,
    Alloy,
}

/// Run one example agent: (exit status, its JSON result, everything it printed).
async fn run_agent(agent: Agent, args: &[String]) -> (i32, Value, String) {
    match agent {
        Agent::Web3Py => run_client(Command::new("python3").arg(examples("python").join("agent.py")).args(args)),
        Agent::Viem | Agent::Ethers => run_client(
            Command::new(tsx_bin())
                .arg(if matches!(agent, Agent::Viem) { "agent.ts" } else { "agent-ethers.ts" })
                .args(args)
                .current_dir(examples("ts")),
        ),
        Agent::Alloy => {
            // What the agent's main prints: its report of what `run` returned.
            let parsed = alloy_agent::Args::parse(args.iter().filter(|a| *a != "--json").cloned()).unwrap();
            let r = alloy_agent::report(&alloy_agent::run(&parsed).await);
            (r.exit, r.json.clone(), format!("{}\n{}", r.text, r.json))
        }
    }
}

#[tokio::test]
async fn example_agents_print_the_hosts_word_quoted_and_exit_by_whose_word_it_is() {
    require_python_clients();
    tsx_bin();
    let keys = Keys::new();
    let (chain, token) = funded_chain(keys.session).await;
    let work = tempfile::tempdir().unwrap();
    let key_file = work.path().join("agent.key");
    write_key_file(&key_file, "agent", &keys.agent);

    let forged = forged_reason();
    let refusing = lying_host(&keys, move |_| {
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32003, "message": "denied", "data": {
                "code": "spend_cap\u{1b}[8m", "rule": "limits[0]", "reason": forged}}}),
        )
    });
    // A well-formed signature, low s, by some other key: not the session's.
    let (r, s) = {
        let k = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let (sig, _) = k.sign_prehash_recoverable(&[7u8; 32]).unwrap();
        let (r, s) = sig.split_bytes();
        (format!("0x{}", hex::encode(r)), format!("0x{}", hex::encode(s)))
    };
    let forging = lying_host(&keys, move |_| {
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": {"raw": "0x02c0", "tx": {"r": r, "s": s, "v": "0x0", "yParity": "0x0"}}}),
        )
    });

    let args = |host: &str, pin: &str| -> Vec<String> {
        [
            "--rpc",
            &chain.url,
            "--bridle",
            host,
            "--key",
            key_file.to_str().unwrap(),
            "--session",
            &keys.session.to_string(),
            "--token",
            &token.to_string(),
            "--to",
            &DEAD.to_string(),
            "--amount",
            "1",
            "--enclave-public-key",
            pin,
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    };
    let stranger = Keys::stranger();
    for agent in [Agent::Web3Py, Agent::Viem, Agent::Ethers, Agent::Alloy] {
        // The host's refusal: exit 2, its word, quoted; nothing it wrote moves the cursor.
        let (exit, r, out) = run_agent(agent, &args(&refusing.url, &keys.identity_hex)).await;
        assert_eq!(exit, 2, "{agent:?}: {out:?}");
        assert_eq!(
            (&r["ok"], &r["from_host"], &r["code"]),
            (&json!(false), &json!(true), &json!("unknown")),
            "{out:?}"
        );
        assert_eq!(r["rule"], "limits[0]", "{out:?}");
        for line in out.lines() {
            assert_printable(&format!("{agent:?}: {out:?}"), line);
            assert!(!line.starts_with("mined"), "{agent:?}: a forged line: {out:?}");
        }
        assert!(out.contains(&format!("bridle refused {LABEL}: unknown (the host's code: ")), "{agent:?}: {out:?}");
        assert!(
            out.contains(r#"cap 100\u{000d}\u{001b}[2K\u{001b}[1A\u{001b}[2Kmined in block 4242"#),
            "{agent:?}: {out:?}"
        );

        // A signature that is not the session's: this agent's own check, exit 3.
        let (exit, r, out) = run_agent(agent, &args(&forging.url, &keys.identity_hex)).await;
        assert_eq!(exit, 3, "{agent:?}: {out:?}");
        assert_eq!((&r["from_host"], &r["code"]), (&json!(false), &json!("bad_signature")), "{agent:?}: {out:?}");
        assert!(!out.contains("refused"), "{agent:?}: {out:?}");

        // Another enclave than the pinned one: exit 3 too.
        let (exit, r, out) = run_agent(agent, &args(&refusing.url, &stranger)).await;
        assert_eq!(exit, 3, "{agent:?}: {out:?}");
        assert_eq!((&r["from_host"], &r["code"]), (&json!(false), &json!("enclave_mismatch")), "{agent:?}: {out:?}");
    }
    // Nothing reached the chain.
    assert_eq!(chain.nonce(keys.session, "pending").await, 0);

    // A usage error is not a refusal: the Python agent exits 1 (argparse's default was 2).
    let o = Command::new("python3").arg(examples("python").join("agent.py")).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}

/// How [`raw_host`] writes its replies.
#[derive(Clone, Copy)]
enum Drip {
    /// At once.
    No,
    /// The signing call's body a byte at a time (after whole headers).
    Body(Duration),
    /// Every reply a byte at a time, status line and headers included.
    Everything(Duration),
}

/// A host that writes bytes of its own choosing: `GET /v1/status` answers `identity_hex`,
/// `POST /rpc` answers `rpc_status` with `rpc_body` (any bytes, JSON or not), as `drip` says.
fn raw_host(identity_hex: &str, rpc_status: u16, rpc_body: &[u8], drip: Drip) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let identity = identity_hex.to_string();
    let rpc_body = rpc_body.to_vec();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (identity, rpc_body) = (identity.clone(), rpc_body.clone());
            std::thread::spawn(move || answer_raw(conn, &identity, rpc_status, &rpc_body, drip));
        }
    });
    url
}

fn answer_raw(mut conn: TcpStream, identity: &str, rpc_status: u16, rpc_body: &[u8], drip: Drip) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let (mut line, mut len) = (String::new(), 0usize);
    if r.read_line(&mut line).is_err() {
        return;
    }
    let rpc = line.split_whitespace().nth(1).unwrap_or("/").starts_with("/rpc");
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let _ = r.read_exact(&mut vec![0; len]);
    let (status, body) = match rpc {
        true => (rpc_status, rpc_body.to_vec()),
        false => (200, json!({"identity_public_key": identity}).to_string().into_bytes()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    let (whole, dripped, every) = match drip {
        Drip::No => ([head, body].concat(), vec![], Duration::ZERO),
        Drip::Body(every) if rpc => (head, body, every),
        Drip::Body(_) => ([head, body].concat(), vec![], Duration::ZERO),
        Drip::Everything(every) => (vec![], [head, body].concat(), every),
    };
    if conn.write_all(&whole).and_then(|_| conn.flush()).is_err() {
        return;
    }
    for b in dripped {
        std::thread::sleep(every);
        if conn.write_all(&[b]).and_then(|_| conn.flush()).is_err() {
            return;
        }
    }
}

#[test]
fn the_python_helper_bounds_the_whole_call_not_each_read() {
    require_python_clients();
    let keys = Keys::new();
    // A byte every 250 ms, each read well within the 2 s timeout: the whole reply takes
    // ~25 s (the body) or more (headers and body).
    let every = Duration::from_millis(250);
    let signed =
        json!({"jsonrpc": "2.0", "id": 1, "result": {"raw": "0x02", "tx": {"r": "0x1", "s": "0x1", "yParity": "0x0"}}});
    let signed = signed.to_string();
    let body_drip = raw_host(&keys.identity_hex, 200, signed.as_bytes(), Drip::Body(every));
    let head_drip = raw_host(&keys.identity_hex, 200, signed.as_bytes(), Drip::Everything(every));
    let py = r#"
import json, sys, time
sys.path.insert(0, sys.argv[1])
from bridle_signer import BridleSigner
key, session, identity, host, stage = sys.argv[2:7]
tx = {"type": 2, "chainId": 1, "nonce": 0, "gas": 21000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1,
      "to": "0x000000000000000000000000000000000000dEaD", "value": 1, "data": b""}
t0 = time.monotonic()
try:
    s = BridleSigner(host, key, session, enclave_public_key=identity, timeout=2)
    if stage == "sign":
        s.sign_transaction(tx)
    out = "returned"
except Exception as e:
    out = f"{type(e).__name__}: {e}"
print(json.dumps({"elapsed": time.monotonic() - t0, "out": out}))
"#;
    let dir = examples("python");
    let (key, session) = (keys.agent.private_key_hex(), keys.session.to_string());
    // An https host that takes the connection and never speaks TLS: the handshake is held
    // to the same deadline (a review of 2026-12-06 found each step given the whole timeout).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tls_stall = format!("https://127.0.0.1:{}", silent.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    for (host, stage) in [(&body_drip, "sign"), (&head_drip, "connect"), (&tls_stall, "connect")] {
        let t0 = Instant::now();
        let out = python(py, &[dir.to_str().unwrap(), &key, &session, &keys.identity_hex, host, stage]);
        let r: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
        let elapsed = r["elapsed"].as_f64().unwrap();
        assert!(elapsed < 6.0, "{stage}: held {elapsed:.1} s with timeout=2 ({:?} in all): {r}", t0.elapsed());
        assert!(r["out"].as_str().unwrap().starts_with("TimeoutError"), "{stage}: {r}");
    }
}

#[test]
fn the_ts_signers_do_not_show_the_stamp_key() {
    let keys = Keys::new();
    let host = lying_host(&keys, |_| (500, json!({})));
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        r#"import {{ inspect }} from "node:util";
import {{ bridleAccount }} from "{0}/bridle-signer.ts";
import {{ BridleSigner }} from "{0}/bridle-ethers.ts";
import {{ Stamper, addressOf, makeStamp, stampKey, toBytes, KIND_TRANSACTION }} from "{0}/stamp.ts";
const [host, key, session, identity] = process.argv.slice(2);
const o = {{ host, agentKey: key, session, enclavePublicKey: identity }};
const secret = toBytes(key);
const sessionLc = session.toLowerCase();
const k = stampKey(secret, toBytes(identity), sessionLc, addressOf(secret));
// The key in every form a log could show it — hex, an array or Uint8Array (as inspect lays
// it out, whitespace aside), an object of its bytes (as JSON.stringify writes a Uint8Array) —
// looked for in what is shown, whitespace removed.
const forms = [Array.from(k, (b) => b.toString(16).padStart(2, "0")).join(""), Array.from(k).join(","), JSON.stringify(Object.fromEntries(Array.from(k).entries())).slice(1, -1)];
const squash = (t: string) => t.replace(/\s+/g, "");
const stamper = await Stamper.create(o);
const signer = await BridleSigner.create(o);
const account = await bridleAccount(o);
// The stamper still stamps with that key.
const d = "0x" + "aa".repeat(32);
const st = stamper.stamp(KIND_TRANSACTION, d);
const [, nonce, ts] = st.split(".");
const same = makeStamp(k, sessionLc, KIND_TRANSACTION, d, {{ nonce: toBytes(nonce), timestamp: Number(ts) }}) === st;
const shown: Record<string, string> = {{}};
for (const [name, x] of [["stamper", stamper], ["signer", signer], ["connected", signer.connect(null)], ["account", account]] as const) {{
  shown[`JSON.stringify(${{name}})`] = JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) ?? "";
  shown[`inspect(${{name}})`] = inspect(x, {{ depth: 20, showHidden: true, getters: true }});
  shown[`String(${{name}})`] = String(x);
  shown[`keys(${{name}})`] = Reflect.ownKeys(x).map(String).join(",");
}}
const leaks = Object.entries(shown).flatMap(([w, t]) => forms.filter((f) => squash(t).includes(f)).map((f) => `${{w}} shows ${{f.slice(0, 40)}}`));
console.log(JSON.stringify({{ same, leaks }}));
"#,
        examples("ts").display()
    );
    let out = tsx(
        work.path(),
        "key.mts",
        &script,
        &[&host.url, &keys.agent.private_key_hex(), &keys.session.to_string(), &keys.identity_hex],
    );
    let r: Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(r["same"], true, "the stamper does not stamp with the key looked for: {r}");
    assert_eq!(r["leaks"], json!([]), "{r}");
}
