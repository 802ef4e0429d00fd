//! Bridle from the client libraries agents already use, on a real chain (issue 4).
//!
//! Each test starts anvil on 127.0.0.1 and the real Bridle binaries, deploys the test
//! ERC-20 (tests/fixtures/erc20), mints to the session address, funds it with ETH, grants
//! a session capped at 100 USDC a day, and then drives one client library's example agent:
//!
//! 1. a 60 USDC transfer is signed by Bridle through the library, broadcast, and mined
//!    with status 1 and the right balances;
//! 2. a 50 USDC transfer (over the day's cap) is refused with `spend_cap` and nothing
//!    reaches the chain (nonce, token and ETH balances unchanged);
//! 3. a day later — anvil's time moved with `evm_increaseTime` + `evm_mine`, the
//!    enclave's clock with its development offset file — the cap has reset: 50 USDC goes
//!    through, and 60 more is refused again.
//!
//! Clients: web3.py (examples/python/agent.py, following the README with `bridle dev` and
//! the `bridle` CLI), viem (examples/ts/agent.ts), ethers (examples/ts/agent-ethers.ts) and
//! alloy (tests/examples/alloy_agent.rs, compiled into this test).
//!
//! Needs anvil, web3.py and the TypeScript examples' packages; a missing one fails the
//! test with its install step (see `bridle_tests::anvil_bin`).

#[path = "../examples/alloy_agent.rs"]
mod alloy_agent;

use alloy_primitives::{address, Address, U256};
use bridle_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEAD: Address = address!("000000000000000000000000000000000000dEaD");
const DAY_AND_A_BIT: i64 = 86_400 + 120;

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// 100 USDC a day for three days (the session must outlive a day to see the reset).
fn policy_text(token: Address) -> String {
    format!(
        r#"
name = "anvil-usdc-daily"
chains = [31337]
valid_for = "72h"
max_duration = "72h"

[tokens]
USDC = {{ address = "{token}", decimals = 6 }}

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"
"#
    )
}

#[derive(Debug, Clone, Copy)]
enum Client {
    Web3Py,
    Viem,
    Ethers,
    Alloy,
}

/// Everything a client needs, and the ways to move time.
struct World {
    chain: Anvil,
    bridle: String,
    token: Address,
    session: Address,
    agent_key: PathBuf,
    /// The enclave identity key the clients pin (never the host's word).
    enclave_key: String,
    set_enclave_clock: Box<dyn Fn(i64)>,
}

impl World {
    /// Send `amount` USDC to DEAD through `client`; (exit code, JSON result, output).
    async fn transfer(&self, client: Client, amount: &str, clock_offset: i64) -> (i32, serde_json::Value, String) {
        let common = [
            "--rpc".to_string(),
            self.chain.url.clone(),
            "--bridle".into(),
            self.bridle.clone(),
            "--key".into(),
            self.agent_key.display().to_string(),
            "--session".into(),
            self.session.to_string(),
            "--token".into(),
            self.token.to_string(),
            "--to".into(),
            DEAD.to_string(),
            "--amount".into(),
            amount.into(),
            "--clock-offset".into(),
            clock_offset.to_string(),
            "--enclave-public-key".into(),
            self.enclave_key.clone(),
        ];
        let root = repo_root();
        match client {
            Client::Web3Py => run_client(
                Command::new("python3").arg(root.join("examples/python/agent.py")).args(&common).arg("--json"),
            ),
            Client::Viem | Client::Ethers => {
                let script = if matches!(client, Client::Viem) { "agent.ts" } else { "agent-ethers.ts" };
                run_client(
                    Command::new(tsx_bin())
                        .arg(script)
                        .args(&common)
                        .arg("--json")
                        .current_dir(root.join("examples/ts")),
                )
            }
            Client::Alloy => {
                let args = alloy_agent::Args::parse(common.iter().cloned()).unwrap();
                match alloy_agent::run(&args).await {
                    Ok(alloy_agent::Outcome::Mined { hash, status, block }) => (
                        if status == 1 { 0 } else { 1 },
                        serde_json::json!({"ok": status == 1, "hash": hash, "status": status, "block": block}),
                        format!("alloy agent: mined {hash} status {status}"),
                    ),
                    Ok(alloy_agent::Outcome::Refused(e)) => (
                        2,
                        serde_json::json!({"ok": false, "code": e.code, "rule": e.rule, "reason": e.reason}),
                        format!("alloy agent: {e}"),
                    ),
                    Err(e) => (1, serde_json::Value::Null, format!("alloy agent failed: {e}")),
                }
            }
        }
    }

    async fn balances(&self) -> (U256, U256) {
        (self.chain.token_balance(self.token, self.session).await, self.chain.token_balance(self.token, DEAD).await)
    }

    /// Mined with status 1, from the session, to the token, as the node sees it.
    async fn assert_mined(&self, client: Client, result: &serde_json::Value, out: &str) {
        assert_eq!(result["ok"], true, "{client:?}: {out}");
        assert_eq!(result["status"], 1, "{client:?}: {out}");
        let hash = result["hash"].as_str().unwrap_or_else(|| panic!("no hash: {out}"));
        let receipt = self.chain.receipt(&serde_json::json!(hash)).await;
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        let tx = self.chain.transaction(hash).await;
        let from: Address = serde_json::from_value(tx["from"].clone()).unwrap();
        let to: Address = serde_json::from_value(tx["to"].clone()).unwrap();
        assert_eq!((from, to), (self.session, self.token), "{tx}");
    }

    async fn assert_refused(&self, client: Client, want: &str, exit: i32, result: &serde_json::Value, out: &str) {
        assert_eq!(exit, 2, "{client:?} should be refused: {out}");
        assert_eq!(result["ok"], false, "{out}");
        assert_eq!(result["code"], want, "{out}");
    }

    /// The whole story for one client.
    async fn allowed_capped_and_reset(&self, client: Client) {
        assert_eq!(self.balances().await, (usdc(1000), U256::ZERO));
        assert_eq!(self.chain.nonce(self.session, "latest").await, 0);

        // 1. Allowed: signed through the library, broadcast, mined, balances moved.
        let (exit, r, out) = self.transfer(client, "60", 0).await;
        assert_eq!(exit, 0, "{client:?}: {out}");
        self.assert_mined(client, &r, &out).await;
        assert_eq!(self.balances().await, (usdc(940), usdc(60)), "{out}");
        assert_eq!(self.chain.nonce(self.session, "latest").await, 1);

        // 2. Over the day's cap: refused with spend_cap; nothing reaches the chain.
        let eth_before = self.chain.eth_balance(self.session).await;
        let (exit, r, out) = self.transfer(client, "50", 0).await;
        self.assert_refused(client, "spend_cap", exit, &r, &out).await;
        assert_eq!(r["rule"], "limits[0]", "{out}");
        assert!(r["reason"].as_str().unwrap_or("").contains("spent 60 USDC, asking 50 USDC, cap 100 USDC"), "{out}");
        assert_eq!(self.chain.nonce(self.session, "latest").await, 1, "{out}");
        assert_eq!(self.chain.nonce(self.session, "pending").await, 1, "nothing pending: {out}");
        assert_eq!(self.balances().await, (usdc(940), usdc(60)));
        assert_eq!(self.chain.eth_balance(self.session).await, eth_before, "no gas was spent");

        // 3. The next day: chain time and enclave clock both move; the cap has reset.
        let t0 = self.chain.block_timestamp().await;
        self.chain.increase_time(DAY_AND_A_BIT as u64).await;
        assert!(self.chain.block_timestamp().await >= t0 + DAY_AND_A_BIT as u64);
        (self.set_enclave_clock)(DAY_AND_A_BIT);
        let (exit, r, out) = self.transfer(client, "50", DAY_AND_A_BIT).await;
        assert_eq!(exit, 0, "{client:?} after the reset: {out}");
        self.assert_mined(client, &r, &out).await;
        assert_eq!(self.balances().await, (usdc(890), usdc(110)));
        assert_eq!(self.chain.nonce(self.session, "latest").await, 2);
        // ...and the new day has its own cap.
        let (exit, r, out) = self.transfer(client, "60", DAY_AND_A_BIT).await;
        self.assert_refused(client, "spend_cap", exit, &r, &out).await;
        assert!(r["reason"].as_str().unwrap_or("").contains("spent 50 USDC, asking 60 USDC"), "{out}");
        assert_eq!(self.chain.nonce(self.session, "pending").await, 2);
        assert_eq!(self.balances().await, (usdc(890), usdc(110)));
    }
}

/// A chain with the token deployed, and the enclave + host from the test library, with a
/// session granted to a fresh agent and funded on the chain.
async fn stack_world(stack: &Stack, dir: &Path) -> World {
    let chain = Anvil::start();
    let token = chain.deploy_erc20().await;
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = stack.grant(&owner, &agent, &policy(&policy_text(token))).await.expect("grant");
    chain.mint(token, g.session, usdc(1000)).await;
    chain.set_balance(g.session, U256::from(10u64).pow(U256::from(19u64))).await;
    let agent_key = dir.join("agent.key");
    write_key_file(&agent_key, "agent", &agent);
    let clock = stack.enclave.clock_file.clone();
    World {
        chain,
        bridle: stack.host.url.clone(),
        token,
        session: g.session,
        agent_key,
        enclave_key: stack.enclave.identity_key_hex(),
        set_enclave_clock: Box::new(move |secs| std::fs::write(&clock, secs.to_string()).unwrap()),
    }
}

/// web3.py, exactly as the README walks through it: `bridle dev`, `bridle owner keygen`,
/// `bridle agent keygen`, `bridle owner grant` with the example policy (given three days
/// here so that the reset can be seen), `setup_chain.py`, then `agent.py`.
#[tokio::test]
async fn web3py_agent_follows_the_readme() {
    require_python_clients();
    let chain = Anvil::start();
    let dev = Dev::start();
    let d = dev.dir.path();
    dev.cli(&["owner", "keygen", "--out", "owner.key"]);
    dev.cli(&["agent", "keygen", "--out", "agent.key"]);

    // The example policy names the first contract deployed on a fresh anvil.
    let example = std::fs::read_to_string(repo_root().join("examples/policies/usdc-daily.toml")).unwrap();
    assert!(example.contains("0x5FbDB2315678afecb367f032d93F642f64180aa3"), "{example}");
    assert!(example.contains("valid_for = \"24h\""), "{example}");
    let three_days = example.replace("valid_for = \"24h\"", "valid_for = \"72h\"\nmax_duration = \"72h\"");
    std::fs::write(d.join("policy.toml"), three_days).unwrap();
    let granted =
        dev.cli(&["owner", "grant", "--key", "owner.key", "--agent", "agent.key", "--policy", "policy.toml", "--json"]);
    let granted: serde_json::Value = serde_json::from_str(&granted).unwrap_or_else(|e| panic!("{e}: {granted}"));
    let session: Address = serde_json::from_value(granted["binding"]["session"].clone()).unwrap();

    // Deploy the token, mint 1000 USDC to the session and give it ETH.
    let (exit, setup, out) =
        run_client(Command::new("python3").arg(repo_root().join("examples/python/setup_chain.py")).args([
            "--rpc",
            &chain.url,
            "--session",
            &session.to_string(),
            "--json",
        ]));
    assert_eq!(exit, 0, "{out}");
    let token: Address = serde_json::from_value(setup["token"].clone()).unwrap();
    assert_eq!(token, address!("5FbDB2315678afecb367f032d93F642f64180aa3"));

    let clock = dev.clock_file.clone();
    let world = World {
        chain,
        bridle: dev.url.clone(),
        token,
        session,
        agent_key: d.join("agent.key"),
        // The identity `bridle dev` attested and recorded, as the README has the agent pin it.
        enclave_key: dev.cli(&["trust", "show", "--host", &dev.url, "--public-key"]).trim().to_string(),
        set_enclave_clock: Box::new(move |secs| std::fs::write(&clock, secs.to_string()).unwrap()),
    };
    world.allowed_capped_and_reset(Client::Web3Py).await;
}

#[tokio::test]
async fn viem_agent_signs_through_bridle() {
    tsx_bin();
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    stack_world(&stack, dir.path()).await.allowed_capped_and_reset(Client::Viem).await;
}

#[tokio::test]
async fn ethers_agent_signs_through_bridle() {
    tsx_bin();
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    stack_world(&stack, dir.path()).await.allowed_capped_and_reset(Client::Ethers).await;
}

#[tokio::test]
async fn alloy_agent_signs_through_bridle() {
    let stack = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    stack_world(&stack, dir.path()).await.allowed_capped_and_reset(Client::Alloy).await;
}

/// The Ethereum JSON form of a request, as a client library would send it.
fn rpc_json(tx: &bridle_common::tx::TxRequest) -> serde_json::Value {
    use bridle_common::tx::TxRequest;
    let q = |v: u128| format!("{v:#x}");
    match tx {
        TxRequest::Eip1559(t) => serde_json::json!({
            "type": "0x2", "chainId": q(t.chain_id as u128), "nonce": q(t.nonce as u128),
            "gas": q(t.gas_limit as u128), "maxFeePerGas": q(t.max_fee_per_gas),
            "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas), "to": t.to,
            "value": format!("{:#x}", t.value), "data": t.data,
        }),
        TxRequest::Legacy(t) => serde_json::json!({
            "type": "0x0", "chainId": q(t.chain_id as u128), "nonce": q(t.nonce as u128),
            "gas": q(t.gas_limit as u128), "gasPrice": q(t.gas_price), "to": t.to,
            "value": format!("{:#x}", t.value), "data": t.data,
        }),
        TxRequest::Eip7702 { .. } => unreachable!(),
    }
}

/// The Python and TypeScript helpers compute the same stamp key, stamp and transaction
/// signing hashes as bridle-common (what the enclave checks), on fixed inputs.
#[tokio::test]
async fn client_helpers_agree_with_the_enclave_on_stamps_and_digests() {
    use bridle_common::stamp::{PayloadKind, StampKey};
    use bridle_common::tx::{Eip1559Request, LegacyRequest, TxRequest};
    require_python_clients();
    let tsx = tsx_bin();

    let agent = k256::SecretKey::from_slice(&[0x11; 32]).unwrap();
    let agent_addr = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&agent.public_key()));
    let enclave = k256::SecretKey::from_slice(&[0x22; 32]).unwrap();
    let enclave_pk = {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        enclave.public_key().to_encoded_point(true).as_bytes().to_vec()
    };
    let session = Address::repeat_byte(0x99);
    let token = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
    let txs = [
        erc20_transfer(31337, 7, token, DEAD, usdc(60)),
        TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: 0,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 0,
            gas_limit: 21_000,
            to: Some(DEAD),
            value: U256::from(10u64).pow(U256::from(18u64)),
            data: Default::default(),
            access_list: vec![],
        }),
        TxRequest::Legacy(LegacyRequest {
            chain_id: 31337,
            nonce: 300,
            gas_price: 1_000_000_007,
            gas_limit: 90_000,
            to: Some(token),
            value: U256::ZERO,
            data: vec![0xa9, 0x05, 0x9c, 0xbb].into(),
        }),
    ];
    let digests: Vec<_> = txs.iter().map(|t| t.build().unwrap().signing_hash()).collect();
    let (nonce, ts) = ([0xab; 16], 1_700_000_000u64);
    let expected_stamp =
        StampKey::derive(&agent, &k256::PublicKey::from_sec1_bytes(&enclave_pk).unwrap(), session, agent_addr)
            .stamp(session, PayloadKind::Transaction, &digests[0], nonce, ts)
            .to_header();
    let case = serde_json::json!({
        "agent_secret": format!("0x{}", hex::encode(agent.to_bytes())),
        "enclave_public_key": format!("0x{}", hex::encode(&enclave_pk)),
        "session": session,
        "nonce": hex::encode(nonce),
        "timestamp": ts,
        "digest": digests[0],
        "transactions": txs.iter().map(rpc_json).collect::<Vec<_>>(),
    });
    let expected_digests: Vec<String> = digests.iter().map(|d| d.to_string()).collect();

    let run = |cmd: &mut Command| -> serde_json::Value {
        use std::io::Write;
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(case.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };

    let py = run(Command::new("python3").arg(repo_root().join("tests/py/vectors.py")));
    assert_eq!(py["agent"].as_str().unwrap().parse::<Address>().unwrap(), agent_addr);
    assert_eq!(py["stamp"], expected_stamp, "Python stamp");
    assert_eq!(py["digests"], serde_json::json!(expected_digests), "eth-account digests");

    let ts_out = run(Command::new(&tsx).arg("vectors.ts").current_dir(repo_root().join("examples/ts")));
    assert_eq!(ts_out["agent"].as_str().unwrap().parse::<Address>().unwrap(), agent_addr);
    assert_eq!(ts_out["stamp"], expected_stamp, "TypeScript stamp");
    assert_eq!(ts_out["viem_digests"], serde_json::json!(expected_digests), "viem digests");
    assert_eq!(ts_out["ethers_digests"], serde_json::json!(expected_digests), "ethers digests");
}

/// The committed ERC-20 artifact is what its committed Solidity source compiles to
/// (solc-js from tests/js, the pinned compiler and settings).
#[test]
fn erc20_fixture_is_built_from_its_source() {
    bridle_tests::solc::assert_built_from_source("erc20", "TestToken");
}
