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

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub line: String,
}

impl Proc {
    /// Spawn and wait (up to 20 s) for a stdout line containing "listening on".
    pub fn spawn(cmd: Command) -> Proc {
        Self::spawn_until(cmd, "listening on")
    }

    /// Spawn and wait (up to 20 s) for a stdout line containing `marker`.
    pub fn spawn_until(mut cmd: Command, marker: &str) -> Proc {
        let marker = marker.to_string();
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            let mut sent = false;
            for l in lines.by_ref().map_while(Result::ok) {
                if !sent && l.contains(&marker) {
                    let _ = tx.send(l);
                    sent = true;
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("process did not start listening: {cmd:?}");
            }
        };
        Proc { child, line }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait up to 10 s for a clean exit (SIGKILL after that).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        None
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first so supervisors (`bridle dev`) stop their children; then SIGKILL.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
            for _ in 0..30 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.kill();
    }
}

/// A running development enclave on a temporary Unix socket, with a movable clock.
pub struct EnclaveProc {
    pub proc: Proc,
    pub socket: PathBuf,
    pub clock_file: PathBuf,
    pub dir: tempfile::TempDir,
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
        EnclaveProc { proc, socket, clock_file, dir }
    }

    /// Move the enclave's clock by `secs` from real time.
    pub fn set_clock_offset(&self, secs: i64) {
        std::fs::write(&self.clock_file, secs.to_string()).unwrap();
    }

    /// Resident memory of the enclave process, KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
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
        let mut cmd = Command::new(bin("bridle-host"));
        cmd.arg("--enclave")
            .arg(format!("unix:{}", enclave_socket.display()))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(db);
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
        let enclave = EnclaveProc::start();
        let host = HostProc::start(&enclave.socket, enclave.dir.path());
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

    /// A fresh, increasing owner nonce.
    pub fn next_nonce() -> u64 {
        now() * 1_000_000 + NONCE.fetch_add(1, Ordering::SeqCst)
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

/// An ERC-20 transfer as an EIP-1559 transaction request.
pub fn erc20_transfer(chain_id: u64, nonce: u64, token: Address, to: Address, amount: U256) -> TxRequest {
    use alloy_sol_types::{sol, SolCall};
    sol! { function transfer(address to, uint256 amount) returns (bool); function approve(address spender, uint256 amount) returns (bool); }
    let data = transferCall { to, amount }.abi_encode();
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

pub fn erc20_approve(chain_id: u64, nonce: u64, token: Address, spender: Address, amount: U256) -> TxRequest {
    use alloy_sol_types::{sol, SolCall};
    sol! { function approve(address spender, uint256 amount) returns (bool); }
    let data = approveCall { spender, amount }.abi_encode();
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
pub struct Granted {
    pub owner: Actor,
    pub agent: Actor,
    pub session: Address,
    pub enclave_pk: Bytes,
}

impl Stack {
    pub async fn grant(
        &self,
        owner: &Actor,
        agent: &Actor,
        policy: &Policy,
    ) -> Result<Granted, (u16, serde_json::Value)> {
        let st = self.status().await;
        let msg = create_action(st.identity_address, agent.address, policy.hash(), Actor::next_nonce());
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
