//! A review of the agent-side helpers (2026-12-07): Python, viem, ethers and alloy against the
//! real `bridle` stack behind a lying proxy.
//!
//! 1. `every_helper_refuses_the_sessions_own_signature_of_another_transaction`: the host
//!    relays the agent's request (the enclave signs it), then answers with a transaction the
//!    session genuinely signed earlier (same nonce, another amount) — a valid signature of the
//!    session key, raw transaction and all. Every helper must refuse (soundness check).
//! 2. `the_python_helper_survives_a_deeply_nested_reply`: a 200 KB reply of 100 000 nested
//!    arrays killed the agent's Python process (SIGSEGV): py_ecc, imported by eth_account,
//!    raises the recursion limit to 100 000. The helper now refuses a reply nested deeper
//!    than 64 levels before parsing it (`bad_reply`).

#[path = "../examples/alloy_agent.rs"]
mod alloy_agent;

use alloy_primitives::{address, Address, U256};
use bridle_tests::review::World;
use bridle_tests::*;
use serde_json::json;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

const POLICY: &str = r#"
name = "helpers-lies"
chains = [31337]
valid_for = "24h"

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"
"#;

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn calldata(amount: U256) -> String {
    erc20_transfer(31337, 0, USDC, DEAD, amount).call().unwrap().data.to_string()
}

/// Python: sign transfer(DEAD, `amount`) at nonce 0 through the helper; print the outcome.
const PY: &str = r#"
import sys
sys.path.insert(0, sys.argv[1])
from bridle_signer import BridleSigner, BridleError
host, key, session, pin, to, data = sys.argv[2:8]
s = BridleSigner(host, key, session, enclave_public_key=pin)
tx = {"type": 2, "chainId": 31337, "nonce": 0, "gas": 100000, "maxFeePerGas": 2000000000,
      "maxPriorityFeePerGas": 1000000000, "to": to, "value": 0, "data": data}
try:
    s.sign_transaction(tx)
    print("accepted")
except BridleError as e:
    print(e.code)
except Exception as e:
    print("uncaught:" + type(e).__name__)
"#;

fn python(w: &World, data: &str) -> String {
    let key = w.cli.dir.join("agent.key");
    let session = std::fs::read_to_string(w.cli.dir.join("session_address")).unwrap();
    eth_account_py(
        PY,
        &[
            repo_root().join("examples/python").to_str().unwrap(),
            &w.proxy.url,
            key.to_str().unwrap(),
            &session,
            &w.identity,
            &USDC.to_string(),
            data,
        ],
    )
}

fn ts(w: &World, data: &str) -> String {
    let dir = repo_root().join("examples/ts");
    let script = w.cli.dir.join("lies.mts");
    std::fs::write(
        &script,
        format!(
            r#"import {{ bridleAccount }} from "{0}/bridle-signer.ts";
import {{ BridleSigner }} from "{0}/bridle-ethers.ts";
const [host, agentKey, session, enclavePublicKey, to, data] = process.argv.slice(2);
const o = {{ host, agentKey, session, enclavePublicKey }};
const out: string[] = [];
const viem = await bridleAccount(o);
try {{
  await viem.signTransaction({{ type: "eip1559", chainId: 31337, nonce: 0, gas: 100000n, maxFeePerGas: 2000000000n,
    maxPriorityFeePerGas: 1000000000n, to, value: 0n, data }} as any);
  out.push("accepted");
}} catch (e: any) {{ out.push(e.code ?? ("uncaught:" + e.name)); }}
const ethers = await BridleSigner.create(o);
try {{
  await ethers.signTransaction({{ type: 2, chainId: 31337, nonce: 0, gasLimit: 100000n, maxFeePerGas: 2000000000n,
    maxPriorityFeePerGas: 1000000000n, to, value: 0n, data }});
  out.push("accepted");
}} catch (e: any) {{ out.push(e.code ?? ("uncaught:" + e.name)); }}
console.log(out.join(" "));
"#,
            dir.display()
        ),
    )
    .unwrap();
    let key = w.cli.dir.join("agent.key");
    let session = std::fs::read_to_string(w.cli.dir.join("session_address")).unwrap();
    let o = std::process::Command::new(tsx_bin())
        .arg(&script)
        .args([&w.proxy.url, key.to_str().unwrap(), &session, &w.identity, &USDC.to_string(), data])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

async fn alloy(w: &World, session: Address, amount: U256) -> String {
    let secret = alloy_agent::load_agent_key(w.cli.dir.join("agent.key").to_str().unwrap()).unwrap();
    let pk = k256::PublicKey::from_sec1_bytes(&hex::decode(w.identity.trim_start_matches("0x")).unwrap()).unwrap();
    let signer =
        alloy_agent::BridleSigner::connect(&w.proxy.url, &secret, session, alloy_agent::EnclaveTrust::Pinned(pk))
            .await
            .unwrap();
    let mut tx = alloy_consensus::TxEip1559 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(USDC),
        value: U256::ZERO,
        access_list: Default::default(),
        input: erc20_transfer(31337, 0, USDC, DEAD, amount).call().unwrap().data.clone(),
    };
    match signer.sign_tx(&mut tx).await {
        Ok(_) => "accepted".into(),
        Err(e) => match e.downcast::<alloy_agent::BridleError>() {
            Ok(b) => b.code,
            Err(e) => format!("uncaught:{e}"),
        },
    }
}

#[tokio::test]
async fn every_helper_refuses_the_sessions_own_signature_of_another_transaction() {
    require_python_clients();
    let w = World::start(POLICY);
    let g = w.grant().await;
    std::fs::write(w.cli.dir.join("session_address"), g.session.to_string()).unwrap();

    // Transaction A (1 USDC at nonce 0), genuinely signed by the session; the host keeps it.
    let a = w.signed(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await;
    let sig = a.signature.to_vec();
    let parity = sig[64] - 27;
    let a_result = json!({
        "raw": a.raw_transaction.as_ref().unwrap().to_string(),
        "tx": {"r": format!("0x{}", hex::encode(&sig[..32])), "s": format!("0x{}", hex::encode(&sig[32..64])),
               "yParity": format!("{parity:#x}"), "v": format!("{parity:#x}")},
    });
    // Every later eth_signTransaction is relayed (the enclave signs it) and answered with A.
    w.proxy.rewrite("POST", "/rpc", move |_, reply| {
        if reply.get("result").is_some() {
            reply["result"] = a_result.clone();
        }
    });
    let b = calldata(usdc(2));
    assert_eq!(python(&w, &b), "bad_signature");
    assert_eq!(ts(&w, &b), "bad_signature bad_signature");
    assert_eq!(alloy(&w, g.session, usdc(2)).await, "bad_signature");
    // And the helpers do sign through the honest host.
    w.proxy.clear();
    assert_eq!(python(&w, &calldata(usdc(3))), "accepted");
}

/// A host that answers `GET /v1/status` with `identity` and every other request with
/// `body` (a 200), written raw: serde_json could not even build so deep a value.
fn raw_host(identity: String, body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = vec![0u8; 65536];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if let Some(i) = head.find("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut got = n - i - 4;
                while got < len {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(m) => got += m,
                    }
                }
            }
            let reply = if head.starts_with("GET /v1/status") {
                json!({"identity_public_key": identity}).to_string().into_bytes()
            } else {
                body.clone()
            };
            let _ = c.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", reply.len()).as_bytes());
            let _ = c.write_all(&reply);
        }
    });
    url
}

/// A lying host answers `eth_signTransaction` with 100 000 nested arrays: 200 KB, far under
/// the helpers' 4 MiB bound. eth_account imports py_ecc, whose `__init__` raises Python's
/// recursion limit to 100 000; the C JSON scanner then recurses until the C stack overflows
/// and the agent's Python process dies of SIGSEGV (no exception, no `finally`, every other
/// task of the agent gone). alloy and the TS helpers answer `bad_reply`.
#[tokio::test]
async fn the_python_helper_survives_a_deeply_nested_reply() {
    require_python_clients();
    let w = World::start(POLICY);
    let g = w.grant().await;
    let depth = 100_000;
    let body = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let url = raw_host(w.identity.clone(), body.into_bytes());
    let key = w.cli.dir.join("agent.key");
    let data = calldata(usdc(1));
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY)
        .args([
            repo_root().join("examples/python").to_str().unwrap(),
            &url,
            key.to_str().unwrap(),
            &g.session.to_string(),
            &w.identity,
            &USDC.to_string(),
            &data,
        ])
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    eprintln!("python: {:?} signal {:?} stdout {:?}", o.status, o.status.signal(), String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.signal(), None, "the host's 200 KB reply killed the agent's Python process");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "bad_reply");
}
