//! Support for end-to-end tests: start the real `bridle-enclave` and `bridle-host`
//! binaries, and act as owners and agents over the real socket and HTTP.
//!
//! Binaries are taken from `BRIDLE_BIN_DIR`, else `<workspace>/target/debug`; `make test`
//! builds them first.

use alloy_primitives::{Address, Bytes, B256, U256};
use bridle_common::owner::OwnerAction;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::Policy;
use bridle_common::protocol::*;
use bridle_common::stamp::StampKey;
use bridle_common::tx::{Eip1559Request, TxRequest};
use k256::SecretKey;
use rand_core::{OsRng, RngCore};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("BRIDLE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let p = dir.join(name);
    assert!(p.exists(), "{} not found: build the binaries first (make build, or cargo build --bins)", p.display());
    p
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A running development enclave on a temporary Unix socket, with a movable clock.
pub struct EnclaveProc {
    pub proc: Proc,
    pub socket: PathBuf,
    pub clock_file: PathBuf,
    pub dir: tempfile::TempDir,
    /// The offset its clock was moved by (seconds), and its last owner nonce.
    offset: std::sync::atomic::AtomicI64,
    last_nonce: AtomicU64,
}

impl EnclaveProc {
    pub fn start() -> EnclaveProc {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> EnclaveProc {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> EnclaveProc {
        let socket = dir.path().join("enclave.sock");
        let clock_file = dir.path().join("clock-offset");
        let mut cmd = Command::new(bin("bridle-enclave"));
        cmd.arg("--unix").arg(&socket).arg("--dev").arg("--dev-clock-offset-file").arg(&clock_file).args(extra);
        let proc = Proc::spawn(cmd);
        EnclaveProc { proc, socket, clock_file, dir, offset: Default::default(), last_nonce: Default::default() }
    }

    /// An enclave on the system clock alone, as in production (no offset file read on every
    /// clock reading): for benchmarks. `set_clock_offset` does nothing to it.
    pub fn start_system_clock() -> EnclaveProc {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("enclave.sock");
        let clock_file = dir.path().join("clock-offset-unused");
        let mut cmd = Command::new(bin("bridle-enclave"));
        cmd.arg("--unix").arg(&socket).arg("--dev");
        let proc = Proc::spawn(cmd);
        EnclaveProc { proc, socket, clock_file, dir, offset: Default::default(), last_nonce: Default::default() }
    }

    /// Move the enclave's clock by `secs` from real time.
    pub fn set_clock_offset(&self, secs: i64) {
        std::fs::write(&self.clock_file, secs.to_string()).unwrap();
        self.offset.store(secs, Ordering::SeqCst);
    }

    /// This enclave's time in milliseconds: this machine's, moved as the test moved it.
    pub fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.offset.load(Ordering::SeqCst).saturating_mul(1000))
    }

    /// A fresh owner nonce for this enclave: its time in milliseconds plus 5 minutes (the
    /// enclave refuses one more than ten minutes behind or ahead of its clock), and never
    /// below [`Actor::next_nonce`] nor this enclave's last one + 1.
    pub fn next_nonce(&self) -> u64 {
        let floor = Actor::next_nonce().max(self.now_ms() + 300_000 - 1);
        self.last_nonce.fetch_max(floor, Ordering::SeqCst);
        self.last_nonce.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Resident memory of the enclave process, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the enclave process has had, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A running host in front of an enclave socket.
pub struct HostProc {
    pub proc: Proc,
    pub url: String,
    pub db: PathBuf,
}

impl HostProc {
    pub fn start(enclave_socket: &Path, dir: &Path) -> HostProc {
        Self::start_db(enclave_socket, &dir.join("host.sqlite"))
    }

    pub fn start_db(enclave_socket: &Path, db: &Path) -> HostProc {
        Self::start_with(enclave_socket, db, &[])
    }

    /// A host with `extra` flags.
    pub fn start_with(enclave_socket: &Path, db: &Path, extra: &[&str]) -> HostProc {
        let mut cmd = Command::new(bin("bridle-host"));
        cmd.arg("--enclave")
            .arg(format!("unix:{}", enclave_socket.display()))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(db)
            .args(extra);
        let proc = Proc::spawn(cmd);
        let url =
            proc.line.split_whitespace().find(|w| w.starts_with("http://")).expect("url in listening line").to_string();
        HostProc { proc, url, db: db.to_path_buf() }
    }
}

/// Enclave and host together, as `bridle dev` runs them.
pub struct Stack {
    pub host: HostProc,
    pub enclave: EnclaveProc,
    pub http: reqwest::Client,
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_host_with(&[])
    }

    /// A stack whose enclave runs on the system clock alone (`EnclaveProc::start_system_clock`):
    /// what `bridle-load` measures.
    pub fn start_system_clock() -> Stack {
        let enclave = EnclaveProc::start_system_clock();
        let host = HostProc::start(&enclave.socket, enclave.dir.path());
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        Stack { host, enclave, http }
    }

    /// A stack whose host gets `extra` flags.
    pub fn start_host_with(extra: &[&str]) -> Stack {
        let enclave = EnclaveProc::start();
        let host = HostProc::start_with(&enclave.socket, &enclave.dir.path().join("host.sqlite"), extra);
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
        Stack { host, enclave, http }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(format!("{}{path}", self.host.url)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post<B: serde::Serialize>(&self, path: &str, body: &B) -> (u16, serde_json::Value) {
        let r = self.http.post(format!("{}{path}", self.host.url)).json(body).send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn status(&self) -> Status {
        let (code, v) = self.get("/v1/status").await;
        assert_eq!(code, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }
}

/// An Ethereum key (owner or agent).
#[derive(Clone)]
pub struct Actor {
    pub secret: SecretKey,
    pub address: Address,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

impl Actor {
    pub fn random() -> Actor {
        let secret = SecretKey::random(&mut OsRng);
        let address = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&secret.public_key()));
        Actor { secret, address }
    }

    pub fn private_key_hex(&self) -> String {
        format!("0x{}", hex::encode(self.secret.to_bytes()))
    }

    pub fn public_key_sec1(&self) -> Bytes {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        Bytes::from(self.secret.public_key().to_encoded_point(true).as_bytes().to_vec())
    }

    /// A fresh, increasing owner nonce: this machine's time in milliseconds plus 5 minutes
    /// (above the CLI's default, the time in milliseconds, for the length of a test; within
    /// the enclave's bounds of its own time less and plus 10 minutes), never below the last
    /// one + 1. For an enclave whose clock a test moved, [`EnclaveProc::next_nonce`].
    pub fn next_nonce() -> u64 {
        NONCE.fetch_max(now_ms() + 300_000 - 1, Ordering::SeqCst);
        NONCE.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn sign_owner(&self, msg: &OwnerAction) -> OwnerAuth {
        let sk = k256::ecdsa::SigningKey::from(&self.secret);
        let (sig, recid) = sk.sign_prehash_recoverable(msg.digest().as_slice()).unwrap();
        let sig = alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd());
        OwnerAuth { owner: self.address, nonce: msg.nonce, signature: Bytes::copy_from_slice(&sig.as_bytes()) }
    }

    /// Stamp a request as this agent for `session`, for an enclave with identity `enclave_pk`.
    pub fn stamp(
        &self,
        enclave_pk: &[u8],
        session: Address,
        payload: &SignPayload,
        ts: u64,
    ) -> bridle_common::stamp::Stamp {
        let pk = k256::PublicKey::from_sec1_bytes(enclave_pk).unwrap();
        let key = StampKey::derive(&self.secret, &pk, session, self.address);
        let digest = match payload {
            SignPayload::Transaction(tx) => tx.build().map(|b| b.signing_hash()).unwrap_or(B256::ZERO),
            _ => B256::ZERO,
        };
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        key.stamp(session, payload.kind(), &digest, nonce, ts)
    }
}

pub fn policy(text: &str) -> Policy {
    resolve_text(text, now()).unwrap_or_else(|d| panic!("{d}"))
}

pub fn create_action(enclave: Address, agent: Address, policy_hash: B256, nonce: u64) -> OwnerAction {
    OwnerAction {
        action: bridle_common::owner::action::CREATE_SESSION.into(),
        enclave,
        session: Address::ZERO,
        agent,
        policyHash: policy_hash,
        subject: B256::ZERO,
        nonce,
    }
}

/// A call to `token` as an EIP-1559 transaction request with test gas terms.
fn erc20_call(chain_id: u64, nonce: u64, token: Address, data: Vec<u8>) -> TxRequest {
    TxRequest::Eip1559(Eip1559Request {
        chain_id,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
        to: Some(token),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    })
}

alloy_sol_types::sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
}

/// An ERC-20 transfer as an EIP-1559 transaction request.
pub fn erc20_transfer(chain_id: u64, nonce: u64, token: Address, to: Address, amount: U256) -> TxRequest {
    use alloy_sol_types::SolCall;
    erc20_call(chain_id, nonce, token, transferCall { to, amount }.abi_encode())
}

/// An ERC-20 approval as an EIP-1559 transaction request.
pub fn erc20_approve(chain_id: u64, nonce: u64, token: Address, spender: Address, amount: U256) -> TxRequest {
    use alloy_sol_types::SolCall;
    erc20_call(chain_id, nonce, token, approveCall { spender, amount }.abi_encode())
}

/// Recover a raw signed transaction's signer with alloy's consensus code.
pub fn recover_raw(raw: &[u8]) -> Address {
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;
    let env = alloy_consensus::TxEnvelope::decode_2718(&mut &raw[..]).expect("decodes");
    env.recover_signer().expect("recovers")
}

/// Recover with Python's eth-account (an implementation we did not write).
pub fn recover_raw_eth_account(raw: &[u8]) -> Address {
    let script = "import sys\nfrom eth_account import Account\nprint(Account.recover_transaction(sys.argv[1]))";
    let out =
        Command::new("python3").arg("-c").arg(script).arg(format!("0x{}", hex::encode(raw))).output().expect("python3");
    assert!(
        out.status.success(),
        "eth-account failed (pip install eth-account): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// A session granted through the host.
#[derive(Clone)]
pub struct Granted {
    pub owner: Actor,
    pub agent: Actor,
    pub session: Address,
    pub enclave_pk: Bytes,
    /// When the enclave created it (its binding's `created_at`).
    pub created_at: u64,
}

impl Stack {
    pub async fn grant(
        &self,
        owner: &Actor,
        agent: &Actor,
        policy: &Policy,
    ) -> Result<Granted, (u16, serde_json::Value)> {
        let st = self.status().await;
        let msg = create_action(st.identity_address, agent.address, policy.hash(), self.enclave.next_nonce());
        let body = CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: policy.clone(),
        };
        let (code, v) = self.post("/v1/sessions", &body).await;
        if code != 200 {
            return Err((code, v));
        }
        let created: SessionCreated = serde_json::from_value(v).unwrap();
        Ok(Granted {
            owner: owner.clone(),
            agent: agent.clone(),
            session: created.binding.session,
            enclave_pk: st.identity_public_key,
            created_at: created.binding.created_at,
        })
    }

    /// Ask for a signature as `g.agent`. Returns (HTTP status, body).
    pub async fn sign(&self, g: &Granted, tx: TxRequest) -> (u16, serde_json::Value) {
        let payload = SignPayload::Transaction(tx);
        let stamp = g.agent.stamp(&g.enclave_pk, g.session, &payload, now());
        let req = SignRequest { session: g.session, payload, stamp };
        self.post("/v1/sign", &req).await
    }
}

/// The error code in a host error body.
pub fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

// ---------------------------------------------------------------------------------------
// A real local chain (anvil) and the client libraries' example agents (issue 4).
//
// Test-only tools, installed by `.ci/run` (see the README, "Use Bridle from web3.py /
// viem / ethers / alloy"):
//   * anvil:   `npm ci --prefix tests/js` puts it at
//              tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
//              (or set BRIDLE_ANVIL, or have `anvil` on PATH);
//   * Python:  `pip install -r examples/python/requirements.txt`;
//   * Node:    `npm ci --prefix examples/ts` (viem, ethers, @noble/*, tsx).
// Missing tools fail the tests with the install step in the message; they never skip.

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// The anvil binary: `$BRIDLE_ANVIL`, else the npm package under tests/js, else PATH.
pub fn anvil_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDLE_ANVIL") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "BRIDLE_ANVIL={} does not exist", p.display());
        return p;
    }
    let npm = repo_root().join("tests/js/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if npm.exists() {
        return npm;
    }
    if let Ok(out) = Command::new("sh").arg("-c").arg("command -v anvil").output() {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "anvil not found: install it with `npm ci --prefix tests/js` \
         (npm package @foundry-rs/anvil-linux-amd64), or set BRIDLE_ANVIL to an anvil binary"
    );
}

/// Fail (not skip) unless python3 has web3.py, eth-account and cryptography.
pub fn require_python_clients() {
    let out = Command::new("python3")
        .args(["-c", "import web3, eth_account, cryptography; print(web3.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("python3 not found ({e}): install Python 3.9+"));
    assert!(
        out.status.success(),
        "web3.py / eth-account / cryptography missing: run `pip install -r examples/python/requirements.txt`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `tsx` runner for the TypeScript examples; fails unless `npm ci --prefix examples/ts`
/// has installed them.
pub fn tsx_bin() -> PathBuf {
    let ts = repo_root().join("examples/ts");
    let tsx = ts.join("node_modules/.bin/tsx");
    for p in [
        tsx.clone(),
        ts.join("node_modules/viem"),
        ts.join("node_modules/ethers"),
        ts.join("node_modules/@noble/curves"),
    ] {
        assert!(p.exists(), "{} missing: run `npm ci --prefix examples/ts` (needs Node.js 20.19+)", p.display());
    }
    tsx
}

/// Run a client program; returns its exit code, the JSON object on its last stdout line,
/// and everything it printed (for failure messages).
pub fn run_client(cmd: &mut Command) -> (i32, serde_json::Value, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let text = format!("{cmd:?}\n--- stdout\n{stdout}--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok().filter(|v| v.is_object()))
        .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, text)
}

/// A key file as `bridle agent keygen` writes it (0600).
pub fn write_key_file(path: &Path, kind: &str, actor: &Actor) {
    let text = serde_json::json!({
        "kind": kind,
        "address": actor.address,
        "public_key": actor.public_key_sec1(),
        "private_key": actor.private_key_hex(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

// ---------------------------------------------------------------------------------------
// Signing surface (typed data, messages, user operations): stamp any payload with the
// digest the enclave computes, and call the JSON-RPC face with the agent's headers.

impl Actor {
    /// Stamp any payload: the MAC covers the digest the enclave itself computes
    /// (`bridle_common::payload::stamp_digest`); an undecodable payload gets a zero digest.
    pub fn stamp_payload(
        &self,
        enclave_pk: &[u8],
        session: Address,
        payload: &SignPayload,
        ts: u64,
    ) -> bridle_common::stamp::Stamp {
        let pk = k256::PublicKey::from_sec1_bytes(enclave_pk).unwrap();
        let key = StampKey::derive(&self.secret, &pk, session, self.address);
        let digest = bridle_common::payload::stamp_digest(payload).unwrap_or(B256::ZERO);
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        key.stamp(session, payload.kind(), &digest, nonce, ts)
    }
}

impl Stack {
    /// `POST /v1/sign` with any payload, stamped by `g.agent`.
    pub async fn sign_payload(&self, g: &Granted, payload: SignPayload) -> (u16, serde_json::Value) {
        let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, &payload, now());
        self.post("/v1/sign", &SignRequest { session: g.session, payload, stamp }).await
    }

    /// A JSON-RPC call as `g.agent`: `Bridle-Session` names the session, `Bridle-Stamp`
    /// covers `stamped` (the payload the host will build from these params).
    pub async fn rpc_as(
        &self,
        g: &Granted,
        stamped: &SignPayload,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, stamped, now());
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let r = self
            .http
            .post(format!("{}/rpc", self.host.url))
            .header("Bridle-Session", g.session.to_string())
            .header("Bridle-Stamp", stamp.to_header())
            .json(&body)
            .send()
            .await
            .expect("POST /rpc");
        r.json().await.expect("JSON-RPC reply")
    }
}

/// Run a Python snippet with eth-account (an implementation we did not write); `args` are
/// passed as sys.argv[1..]. Returns trimmed stdout.
pub fn eth_account_py(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3");
    assert!(
        out.status.success(),
        "eth-account failed (pip install eth-account): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

// ---------------------------------------------------------------------------------------
// Straight to the enclave's socket (no host in between): for tests that must see exactly
// what the enclave answers and logs.

impl EnclaveProc {
    /// One call over a fresh connection to the enclave socket.
    pub fn call(&self, call: Call) -> Result<Reply, bridle_common::Denial> {
        self.call_raw(&bridle_common::frame::to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap())
    }

    /// Send one frame body as is; the enclave's reply.
    pub fn call_raw(&self, body: &[u8]) -> Result<Reply, bridle_common::Denial> {
        call_socket_raw(&self.socket, body)
    }

    /// Every audit entry the enclave holds, with the last head.
    pub fn audit_log(&self) -> (Vec<bridle_common::audit::AuditEntry>, bridle_common::audit::AuditHead) {
        let mut entries = Vec::new();
        let mut since = 0;
        loop {
            match self.call(Call::Audit(AuditQuery { since, nonce: None })) {
                Ok(Reply::Audit(r)) => {
                    entries.extend(r.entries);
                    since = r.head.seq + 1;
                    if !r.more {
                        return (entries, r.head);
                    }
                }
                other => panic!("audit: {other:?}"),
            }
        }
    }
}

pub mod aa;
mod anvil;
mod dev;
mod governance;
mod proc;
pub use anvil::*;
pub use dev::*;
pub use governance::*;
pub use proc::*;
pub mod account_sweep;
pub mod cli;
pub mod cluster;
pub mod cluster_mitm;
pub mod console;
pub mod differential;
pub mod erc7579;
pub mod load;
pub mod mcp;
pub mod poll;
pub mod postgres;
pub mod proxy;
pub mod pyclient;
pub mod review;
pub mod solc;
pub mod tls_proxy;
pub mod typed;

/// Send one frame body as is to the enclave's socket at `socket`; the enclave's reply. A
/// free function for callers that hold only the path (a lying proxy's `'static` closures).
pub fn call_socket_raw(socket: &Path, body: &[u8]) -> Result<Reply, bridle_common::Denial> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect to the enclave");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = (body.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(body);
    s.write_all(&buf).expect("send");
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("a reply header (the enclave must answer, not die)");
    let mut reply = vec![0u8; u32::from_be_bytes(h) as usize];
    s.read_exact(&mut reply).expect("a reply body");
    let f: ResponseFrame = bridle_common::frame::from_cbor(&reply).expect("a valid reply frame");
    f.result
}
