//! Several `bridle-host` processes sharing one PostgreSQL database (a real server from
//! Debian's `postgresql` package, see `bridle_tests::postgres`), each in front of its own
//! enclave — what an enclave cluster's hosts will do.
//!
//! * Two real enclaves, two real hosts: a session created through host A is visible
//!   through host B's read API; both audit logs are stored side by side; a restart of
//!   host B does not mark A's sessions lost, a restart of enclave A marks only A's.
//! * Hosts in front of enclaves sharing one identity key (fake enclaves serving a chain
//!   signed by one test key, replaying it from the start on every pull): identical entries
//!   pushed by two hosts are stored once and refused by neither; a host pushing another
//!   history under the same (enclave, seq) is refused, says `conflict` in its sync status
//!   and logs it, and the stored chain stays the first one.
//! * The database password appears in no log, no `--print-config`, no `--help`.

use alloy_primitives::{address, Address, B256, U256};
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::{verify_chain, AuditExport, AuditReply, Decision, Record};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::*;
use bridle_tests::postgres::PgServer;
use bridle_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");
const POLICY: &str = include_str!("../../examples/policies/usdc-daily.toml");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// `bridle-host --database-url URL` in front of `socket`, its stderr (the log) in `log`.
fn host(socket: &Path, url: &str, log: &Path) -> HostProc {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec "$0" --enclave "unix:$1" --listen 127.0.0.1:0 --probe-interval 1 2>>"$2""#)
        .arg(bin("bridle-host"))
        .arg(socket)
        .arg(log)
        .env("BRIDLE_DATABASE_URL", url)
        .env("RUST_LOG", "info");
    let proc = Proc::spawn(cmd);
    let url = proc.line.split_whitespace().find(|w| w.starts_with("http://")).expect("url").to_string();
    HostProc { proc, url, db: PathBuf::new() }
}

fn stack(enclave: EnclaveProc, host: HostProc) -> Stack {
    Stack { host, enclave, http: reqwest::Client::new() }
}

async fn get(url: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{url}{path}")).await.expect("GET");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Poll `path` on `url` until `ok` holds (10 s).
async fn until(url: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, v) = get(url, path).await;
        if ok(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url}{path} never satisfied the condition; last answer {last}");
}

fn state_of(v: &Value) -> &str {
    v["stored"]["state"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_one_postgres_database() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_database("two_hosts");
    let logs = tempfile::tempdir().unwrap();
    let (log_a, log_b) = (logs.path().join("a.log"), logs.path().join("b.log"));
    let ea = EnclaveProc::start();
    let eb = EnclaveProc::start();
    let ha = host(&ea.socket, &url, &log_a);
    let hb = host(&eb.socket, &url, &log_b);
    let mut a = stack(ea, ha);
    let mut b = stack(eb, hb);
    let (id_a, id_b) = (a.status().await.identity_address, b.status().await.identity_address);
    assert_ne!(id_a, id_b);

    // A session created through host A, used there.
    let owner = Actor::random();
    let pol = policy(POLICY);
    let g = a.grant(&owner, &Actor::random(), &pol).await.unwrap();
    assert_eq!(a.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await.0, 200);

    // Host B reads it from the shared database.
    let (c, v) = b.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!((c, state_of(&v)), (200, "active"), "{v}");
    assert_eq!(v["stored"]["enclave"].as_str().unwrap().parse::<Address>().unwrap(), id_a);
    let (c, v) = b.get(&format!("/v1/owners/{}/sessions", owner.address)).await;
    assert_eq!((c, v.as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let (c, v) = b.get(&format!("/v1/sessions/{}/policies", g.session)).await;
    assert_eq!((c, v[0]["policy_hash"].as_str()), (200, Some(format!("{:#x}", pol.hash()).as_str())), "{v}");
    // B's enclave does not hold its key: refused there, and not as lost.
    let (c, v) = b.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (404, "unknown_session"), "{v}");
    // JSON-RPC on B knows the account (read from the database, not only B's memory).
    let r = b
        .http
        .post(format!("{}/rpc", b.host.url))
        .header("Bridle-Session", g.session.to_string())
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"][0].as_str().map(str::to_lowercase), Some(format!("{:#x}", g.session)), "{v}");

    // A session through B too; both audit logs in the one database, each verifying.
    let gb = b.grant(&owner, &Actor::random(), &pol).await.unwrap();
    let (c, v) = a.get(&format!("/v1/owners/{}/sessions", owner.address)).await;
    assert_eq!((c, v.as_array().map(Vec::len)), (200, Some(2)), "{v}");
    for (via, id, decision) in [(&b.host.url, id_a, "allowed"), (&a.host.url, id_b, "session_created")] {
        let path = format!("/v1/audit?enclave={id:#x}");
        let v = until(via, &path, |v| v["entries"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == decision)))
            .await;
        assert!(v["gaps"].as_array().is_some_and(Vec::is_empty), "{v}");
        let r = reqwest::get(format!("{via}/v1/audit/export?enclave={id:#x}")).await.unwrap();
        let ex: AuditExport = r.json().await.unwrap();
        verify_chain(&ex.entries, &ex.head, id, None).unwrap_or_else(|e| panic!("{id}: {e}"));
    }

    // Host B restarts: first contact with its enclave marks nothing of A's lost.
    let hb = std::mem::replace(&mut b.host, host(&b.enclave.socket, &url, &log_b));
    drop(hb);
    let _ = b.status().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, v) = a.get(&format!("/v1/sessions/{}", g.session)).await;
    assert_eq!(state_of(&v), "active", "{v}");
    assert_eq!(a.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await.0, 200);

    // Enclave A restarts: A's sessions are lost (seen through B too), B's are not.
    let dir = std::mem::replace(&mut a.enclave.dir, tempfile::tempdir().unwrap());
    a.enclave.proc.kill();
    a.enclave = EnclaveProc::start_in(dir, &[]);
    until(&a.host.url, "/health", |v| {
        v["enclave"]["identity"].as_str().is_some_and(|i| i.parse::<Address>().ok() != Some(id_a))
    })
    .await;
    until(&b.host.url, &format!("/v1/sessions/{}", g.session), |v| state_of(v) == "lost").await;
    let (_, v) = b.get(&format!("/v1/sessions/{}", gb.session)).await;
    assert_eq!(state_of(&v), "active", "{v}");
    assert_eq!(b.sign(&gb, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);
    let (c, v) = a.sign(&g, erc20_transfer(31337, 2, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (410, "unknown_session"), "{v}");

    // The password is in no log.
    drop(a);
    drop(b);
    for log in [&log_a, &log_b] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.contains("postgres://postgres:***@127.0.0.1"), "{text}");
        assert!(!text.contains(pg.password()), "the database password is in the host log:\n{text}");
    }
}

/// `--print-config` and `--help` never show the password.
#[test]
fn the_database_password_is_never_printed() {
    let url = "postgres://bridle:hunter2-s3cret@db.internal:5432/bridle";
    let out = Command::new(bin("bridle-host"))
        .args(["--enclave", "vsock:16:5000", "--print-config", "--database-url", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["database_url"], "postgres://bridle:***@db.internal:5432/bridle");
    assert_eq!((v["backend"].as_str(), v["sources"]["database_url"].as_str()), (Some("postgres"), Some("flag")));
    assert!(!text.contains("hunter2"), "{text}");
    let out = Command::new(bin("bridle-host")).arg("--help").env("BRIDLE_DATABASE_URL", url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--database-url") && !text.contains("hunter2"), "{text}");
}

// ---- enclaves sharing one identity key ---------------------------------------------------

/// A fake enclave on a Unix socket: answers `status` with the chain's identity and every
/// `audit` with the whole chain from seq 0 (whatever `since` asks: a worst-case replay), a
/// head signed at its end; refuses anything else.
fn fake_enclave(socket: &Path, chain: TestChain) {
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).unwrap();
    let chain = Arc::new(chain);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let chain = chain.clone();
            std::thread::spawn(move || serve(conn, &chain));
        }
    });
}

fn serve(mut s: UnixStream, chain: &TestChain) {
    loop {
        let mut h = [0u8; 4];
        if s.read_exact(&mut h).is_err() {
            return;
        }
        let mut body = vec![0u8; u32::from_be_bytes(h) as usize];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let req: RequestFrame = from_cbor(&body).unwrap();
        let last = chain.entries.len() as u64 - 1;
        let result = match req.call {
            Call::Status(_) => Ok(Reply::Status(Status {
                version: "fake-shared-key".into(),
                identity_public_key: chain.public_key().into(),
                identity_address: chain.enclave(),
                booted_at: 1,
                now: now(),
                sessions_active: 0,
                sessions_total: 0,
                signatures: 0,
                denials: 0,
                session: None,
                aggregate: vec![],
                receipt: None,
            })),
            Call::Audit(_) => Ok(Reply::Audit(AuditReply {
                entries: chain.entries.clone(),
                head: chain.head_at(last, now()),
                more: false,
            })),
            other => Err(Denial::new(ErrorCode::Unsupported, format!("{} not in this fake", other.name()))),
        };
        let out = to_cbor(&ResponseFrame { version: PROTOCOL_VERSION, result }).unwrap();
        let mut frame = (out.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&out);
        if s.write_all(&frame).is_err() {
            return;
        }
    }
}

/// One history of the shared identity (seed 9): `detail` makes entry 4 differ.
fn history(detail: &str) -> TestChain {
    let mut c = TestChain::new(9);
    c.push(1, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
    c.fill(3);
    c.push(1_700_000_100, Record::new(Decision::Allowed, Address::with_last_byte(1), B256::ZERO, detail));
    c.fill(5);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_of_one_identity_store_entries_once_and_refuse_a_conflicting_history() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.create_database("shared_identity");
    let dir = tempfile::tempdir().unwrap();
    let x = history("x");
    let enclave = x.enclave();
    let expected = x.entries.clone();
    let start = |name: &str, chain: TestChain| {
        let sock = dir.path().join(format!("{name}.sock"));
        fake_enclave(&sock, chain);
        host(&sock, &url, &dir.path().join(format!("{name}.log")))
    };
    let path = format!("/v1/audit?enclave={enclave:#x}");
    let mut hosts = vec![start("c", x), start("d", history("x"))];
    // C stores the chain; D pushes the very same entries again: stored once, no error.
    let v = until(&hosts[0].url, &path, |v| v["sync"]["state"] == "ok").await;
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(expected.len()), "{v}");
    let v = until(&hosts[1].url, &path, |v| v["sync"]["state"] == "ok").await;
    assert_eq!(
        serde_json::from_value::<Vec<bridle_common::audit::AuditEntry>>(v["entries"].clone()).unwrap(),
        expected
    );
    hosts.push(start("e", history("y")));
    // E pushes another history under the same identity: refused at seq 4, reported.
    let v = until(&hosts[2].url, &path, |v| v["sync"]["state"] == "conflict").await;
    let err = v["sync"]["error"].as_str().unwrap();
    assert!(err.contains("seq 4") && err.contains("conflict"), "{err}");
    // What is stored is still the first history, whole and verifying.
    let r = reqwest::get(format!("{}/v1/audit/export?enclave={enclave:#x}", hosts[2].url)).await.unwrap();
    let ex: AuditExport = r.json().await.unwrap();
    assert_eq!(ex.entries, expected);
    verify_chain(&ex.entries, &ex.head, enclave, None).unwrap();
    // D keeps pulling the identical chain without complaint.
    let (_, v) = get(&hosts[1].url, &path).await;
    assert_eq!(v["sync"]["state"], "ok", "{v}");
    drop(hosts);
    let log = std::fs::read_to_string(dir.path().join("e.log")).unwrap();
    assert!(log.contains("AUDIT LOG CONFLICT"), "{log}");
}
