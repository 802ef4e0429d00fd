//! Test support: a fake enclave speaking the real frame protocol on a Unix socket, and a
//! host (the real router) served on 127.0.0.1:0.
//!
//! The fake enclave proves that the host relays and maps things correctly; it checks no
//! signature and signs nothing for real but the receipts of owner calls' replies, with
//! its identity's key (the host keeps only replies the enclave signed).

#![allow(dead_code)]

use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, read_frame, to_cbor, write_frame, DEFAULT_MAX_FRAME};
use bridle_common::policy::doc::Policy;
use bridle_common::protocol::*;
use bridle_common::stamp::Stamp;
use bridle_common::tx::TxRequest;
use bridle_host::store::Database;

/// A real PostgreSQL server (the helper `bridle-tests` exports, included as a file).
#[allow(dead_code)]
#[path = "../../../tests/src/postgres.rs"]
pub mod postgres;
use bridle_host::{AppState, HostConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::task::JoinSet;

pub const OWNER: Address = address!("00000000000000000000000000000000000000a1");
pub const AGENT: Address = address!("00000000000000000000000000000000000000b2");
/// The addresses of the secret keys `[1; 32]` and `[2; 32]` (see [`identity_key`]).
pub const IDENTITY_1: Address = address!("1a642f0E3c3aF545E7AcBD38b07251B3990914F1");
pub const IDENTITY_2: Address = address!("5050A4F4b3f9338C3472dcC01A87C76A144b3c9c");

/// The key of a fake enclave's identity.
pub fn identity_key(identity: Address) -> k256::ecdsa::SigningKey {
    let byte = [IDENTITY_1, IDENTITY_2].iter().position(|i| *i == identity).expect("a fake identity") as u8 + 1;
    k256::ecdsa::SigningKey::from_slice(&[byte; 32]).unwrap()
}

/// `reply` with the receipt of `identity` for the owner's nonce of `auth`.
fn receipted<T: bridle_common::receipt::Receipted>(identity: Address, auth: &OwnerAuth, mut reply: T) -> T {
    let word = bridle_common::receipt::owner_nonce(auth.owner, auth.nonce);
    bridle_common::receipt::attach(&mut reply, identity, 1000, word, |d| {
        let (s, r) = identity_key(identity).sign_prehash_recoverable(d.as_slice())?;
        Ok::<_, k256::ecdsa::Error>(alloy_primitives::Signature::from_signature_and_parity(s, r.is_y_odd()))
    })
    .unwrap();
    reply
}
/// The fake enclave denies transactions whose value exceeds this.
pub const VALUE_CAP: u64 = 1_000_000;

/// How the fake enclave treats signing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Read a sign request, never answer.
    HangOnSign,
    /// Read a sign request, close the connection without answering.
    CloseOnSign,
    /// Answer a sign request with an oversized frame header.
    HugeReplyOnSign,
}

#[derive(Default)]
pub struct FakeState {
    pub calls: Vec<Call>,
    /// session → owner
    pub sessions: HashMap<Address, Address>,
    pub connections: usize,
    pub next_session: u8,
}

pub struct FakeEnclave {
    pub path: PathBuf,
    pub identity: Address,
    pub state: Arc<Mutex<FakeState>>,
    pub mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeEnclave {
    pub async fn start(path: &Path, identity: Address) -> FakeEnclave {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind fake enclave socket");
        let state = Arc::new(Mutex::new(FakeState { next_session: 1, ..Default::default() }));
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let (st, md) = (state.clone(), mode.clone());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                st.lock().unwrap().connections += 1;
                let (st, md) = (st.clone(), md.clone());
                conns.spawn(serve_conn(stream, identity, st, md));
            }
        });
        FakeEnclave { path: path.to_path_buf(), identity, state, mode, task }
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls other than `status`.
    pub fn non_status_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| !matches!(c, Call::Status(_))).collect()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Stop: close the listener and every connection (like a dead enclave).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_conn(
    mut stream: tokio::net::UnixStream,
    identity: Address,
    st: Arc<Mutex<FakeState>>,
    mode: Arc<Mutex<Mode>>,
) {
    loop {
        let Ok(body) = read_frame(&mut stream, DEFAULT_MAX_FRAME).await else {
            return;
        };
        let req: RequestFrame = match from_cbor(&body) {
            Ok(r) => r,
            Err(e) => {
                let resp = ResponseFrame { version: PROTOCOL_VERSION, result: Err(e.to_denial()) };
                let _ = write_frame(&mut stream, &to_cbor(&resp).unwrap()).await;
                continue;
            }
        };
        let is_sign = matches!(req.call, Call::SignIfAllowed(_));
        st.lock().unwrap().calls.push(req.call.clone());
        let m = *mode.lock().unwrap();
        if is_sign {
            match m {
                Mode::HangOnSign => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                Mode::CloseOnSign => return,
                Mode::HugeReplyOnSign => {
                    use tokio::io::AsyncWriteExt;
                    let _ = stream.write_all(&[0x7f, 0xff, 0xff, 0xff]).await;
                    return;
                }
                Mode::Normal => {}
            }
        }
        let result = answer(identity, &st, req.call);
        let resp = ResponseFrame { version: PROTOCOL_VERSION, result };
        if write_frame(&mut stream, &to_cbor(&resp).unwrap()).await.is_err() {
            return;
        }
    }
}

pub fn fake_signature() -> Bytes {
    let mut sig = vec![0x11u8; 32];
    sig.extend_from_slice(&[0x22u8; 32]);
    sig.push(28);
    Bytes::from(sig)
}

fn status(identity: Address, st: &FakeState) -> Status {
    Status {
        version: "fake-0".into(),
        identity_public_key: Bytes::from(
            identity_key(identity).verifying_key().to_encoded_point(true).as_bytes().to_vec(),
        ),
        identity_address: identity,
        booted_at: 1,
        now: 2,
        sessions_active: st.sessions.len() as u64,
        sessions_total: st.sessions.len() as u64,
        signatures: 0,
        denials: 0,
        session: None,
        aggregate: vec![],
        receipt: None,
    }
}

fn answer(identity: Address, st: &Mutex<FakeState>, call: Call) -> Result<Reply, Denial> {
    let mut st = st.lock().unwrap();
    match call {
        Call::Status(q) => {
            let mut s = status(identity, &st);
            if let Some(session) = q.session {
                let Some(owner) = st.sessions.get(&session) else {
                    return Err(Denial::new(ErrorCode::UnknownSession, "no such session"));
                };
                s.session = Some(Box::new(SessionStatus {
                    session,
                    owner: *owner,
                    agent: AGENT,
                    policy_hash: B256::repeat_byte(7),
                    state: SessionState::Active,
                    created_at: 1000,
                    valid_after: None,
                    valid_until: 2000,
                    uses: 0,
                    uses_left: None,
                    caps: vec![],
                    suspended_reason: None,
                    allowances: vec![],
                    exposure: Default::default(),
                    pending: vec![],
                    time: 1000,
                    anchor: 1000,
                    next_nonces: vec![],
                    rate_limits: vec![],
                }));
            }
            Ok(Reply::Status(s))
        }
        Call::CreateSession(c) => {
            if c.auth.signature.len() != 65 {
                return Err(Denial::new(ErrorCode::Unauthenticated, "bad owner signature"));
            }
            let session = Address::repeat_byte(0x50 + st.next_session);
            st.next_session += 1;
            st.sessions.insert(session, c.auth.owner);
            let binding = SessionBinding {
                enclave: identity,
                session,
                owner: c.auth.owner,
                agent: AGENT,
                policy_hash: c.policy.hash(),
                created_at: 1000,
                valid_until: c.policy.valid_until.unwrap_or(0),
            };
            let created =
                SessionCreated { binding, binding_signature: fake_signature(), attestation: None, receipt: None };
            Ok(Reply::SessionCreated(receipted(identity, &c.auth, created)))
        }
        Call::UpdatePolicy(u) => {
            if !st.sessions.contains_key(&u.session) {
                return Err(Denial::new(ErrorCode::UnknownSession, "no such session"));
            }
            let updated = PolicyUpdated {
                session: u.session,
                policy_hash: u.policy.hash(),
                binding: None,
                binding_signature: None,
                receipt: None,
            };
            Ok(Reply::PolicyUpdated(receipted(identity, &u.auth, updated)))
        }
        Call::Revoke(r) => {
            if st.sessions.remove(&r.session).is_none() {
                return Err(Denial::new(ErrorCode::UnknownSession, "no such session"));
            }
            Ok(Reply::Revoked(receipted(identity, &r.auth, Revoked { sessions: vec![r.session], receipt: None })))
        }
        Call::RevokeAll(r) => {
            let mine: Vec<Address> = st.sessions.iter().filter(|(_, o)| **o == r.auth.owner).map(|(s, _)| *s).collect();
            for s in &mine {
                st.sessions.remove(s);
            }
            Ok(Reply::Revoked(receipted(identity, &r.auth, Revoked { sessions: mine, receipt: None })))
        }
        Call::SignIfAllowed(req) => {
            if !st.sessions.contains_key(&req.session) {
                return Err(Denial::new(ErrorCode::UnknownSession, "no such session"));
            }
            if req.stamp.mac == [0u8; 32] {
                return Err(Denial::new(ErrorCode::Unauthenticated, "stamp does not verify"));
            }
            match req.payload {
                SignPayload::Transaction(TxRequest::Eip7702 { .. }) => {
                    Err(Denial::new(ErrorCode::AuthorizationDenied, "EIP-7702 transactions are never signed"))
                }
                SignPayload::Transaction(tx) => {
                    let call = tx.call().unwrap();
                    if call.value > U256::from(VALUE_CAP) {
                        return Err(Denial::rule(
                            ErrorCode::SpendCap,
                            "limits[0]",
                            "ETH per day: spent 0, asking more than the cap",
                        ));
                    }
                    let built = tx.build().unwrap();
                    let digest = built.signing_hash();
                    let raw = Bytes::from([&[0x02u8][..], digest.as_slice(), &[0xaa, 0xbb]].concat());
                    Ok(Reply::Signed(Signed {
                        session: req.session,
                        digest,
                        signature: fake_signature(),
                        raw_transaction: Some(raw),
                    }))
                }
                SignPayload::TypedData(_) | SignPayload::UserOperation(_) => {
                    Err(Denial::new(ErrorCode::Unsupported, "typed data signing is not implemented yet"))
                }
                SignPayload::Message(m) if m.starts_with(b"deny") => Err(Denial::rule(
                    ErrorCode::MessageNotAllowed,
                    "messages[0]",
                    "message does not match any allowed prefix",
                )),
                SignPayload::Message(m) => Ok(Reply::Signed(Signed {
                    session: req.session,
                    digest: keccak256(&m),
                    signature: fake_signature(),
                    raw_transaction: None,
                })),
            }
        }
        Call::ApprovePending(_) | Call::DenyPending(_) => Err(Denial::new(ErrorCode::Unsupported, "not yet")),
        Call::Sweep(_) | Call::Cluster(_) | Call::AllowImage(_) => {
            Err(Denial::new(ErrorCode::Unsupported, "not in the fake enclave"))
        }
        Call::Attest(a) => Ok(Reply::Attestation(AttestationReply { document: a.nonce.unwrap_or_default() })),
        Call::Audit(_) => Err(Denial::new(ErrorCode::Unsupported, "not in the fake enclave")),
    }
}

// ---------------------------------------------------------------------------------------

pub struct TestHost {
    pub url: String,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestHost {
    pub async fn start(config: HostConfig) -> TestHost {
        let state = AppState::open(config).expect("open host");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(bridle_host::run(state.clone(), listener, async move {
            let _ = rx.await;
        }));
        TestHost { url, state, shutdown: Some(tx), task }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

pub fn config(dir: &Path, sock: &Path) -> HostConfig {
    Db::Sqlite.config(dir, sock)
}

/// The storage backend a test runs against: SQLite in the test's directory, or a fresh
/// database on a real PostgreSQL server (one per test process; see `postgres`).
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    /// A fresh PostgreSQL database; `None` (the test skips, saying why) when PostgreSQL is
    /// not installed and this is not CI.
    pub fn postgres(tag: &str) -> Option<Db> {
        postgres::fresh_database(tag).map(Db::Postgres)
    }

    /// The database: `dir/host.sqlite`, or the PostgreSQL one (the same for every call).
    pub fn database(&self, dir: &Path) -> Database {
        match self {
            Db::Sqlite => Database::Sqlite(dir.join("host.sqlite")),
            Db::Postgres(url) => Database::parse(url).expect("test database URL"),
        }
    }

    /// A host configuration on this backend, in front of `sock`.
    pub fn config(&self, dir: &Path, sock: &Path) -> HostConfig {
        let mut c = HostConfig::new(bridle_common::address::SocketAddress::Unix(sock.to_path_buf()));
        c.database = self.database(dir);
        c.probe_interval = None;
        c.call_timeout = Duration::from_secs(5);
        c
    }
}

/// Run each named `async fn NAME(db: Db)` once per backend, as `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = $crate::common::Db::postgres(stringify!($name)) {
                        super::$name(db).await
                    }
                }
            )*
        }
    };
}

pub fn policy(name: &str) -> Policy {
    Policy {
        version: 1,
        name: name.into(),
        chains: vec![1],
        valid_after: None,
        valid_until: Some(2000),
        max_duration: None,
        quota: None,
        tokens: vec![],
        limits: vec![],
        streams: vec![],
        max_value_per_call: None,
        calls: vec![],
        recipients: None,
        rate_limits: vec![],
        gas: Default::default(),
        approvals: Default::default(),
        user_operations: Default::default(),
        delegations: Default::default(),
        typed_data: vec![],
        permits: vec![],
        messages: vec![],
        prices: vec![],
        exposure_ceiling: None,
        owner_exposure_ceiling: None,
        agent_exposure_ceiling: None,
        escalate: None,
        trip_wire: None,
        release_signers: vec![],
        conformance: None,
    }
}

pub fn auth(nonce: u64) -> OwnerAuth {
    OwnerAuth { owner: OWNER, nonce, signature: Bytes::from(vec![0x33u8; 65]) }
}

pub fn stamp() -> Stamp {
    Stamp { nonce: [0xab; 16], timestamp: 1_700_000_000, mac: [0xcd; 32] }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Create a session through the host; returns its address.
pub async fn create_session(c: &reqwest::Client, url: &str, nonce: u64) -> Address {
    let req = CreateSession { auth: auth(nonce), agent_public_key: Bytes::from(vec![2u8; 33]), policy: policy("test") };
    let r = c.post(format!("{url}/v1/sessions")).json(&req).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let created: SessionCreated = r.json().await.unwrap();
    created.binding.session
}

/// Sign requests as the message-payload form used by most HTTP tests.
pub fn message_request(session: Address, text: &str) -> SignRequest {
    SignRequest { session, payload: SignPayload::Message(Bytes::copy_from_slice(text.as_bytes())), stamp: stamp() }
}
