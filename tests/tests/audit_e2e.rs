//! The signed audit log end to end, with the real binaries (SPEC R-AUD-1, issue 6 part 7):
//! decisions made in the enclave (session created, allowed, denied, refused stamps, revoke,
//! revoke-all) are pulled and stored by the host, exported with `bridle audit export`, and
//! `bridle verify audit` accepts the export against the identity key taken from an
//! attestation document that `bridle verify attestation` verified with the mock NSM root.
//! An export with one entry changed, removed or reordered, or checked against another key,
//! is rejected naming the entry. The hashes and the head signature are also recomputed by
//! an implementation we did not write (Python: eth-utils' keccak, eth-keys' recovery).
//!
//! Every test needs the enclave's audit hook (`Call::Audit` answered by
//! `bridle_enclave::audit::AuditLog`, decisions recorded): until it is in, they are ignored.

use alloy_primitives::{address, Address, B256, U256};
use bridle_common::audit::{AuditExport, Decision};
use bridle_common::error::ErrorCode;
use bridle_common::owner::{action, OwnerAction};
use bridle_common::protocol::*;
use bridle_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// The README walkthrough policy: 100 USDC per day, only `transfer` on the USDC contract.
const POLICY: &str = include_str!("../../examples/policies/usdc-daily.toml");

/// Enclave (writing its mock NSM root) and host.
fn start() -> (Stack, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mock-root.pem");
    let enclave = EnclaveProc::start_in(dir, &["--dev-nsm-root-out", root.to_str().unwrap()]);
    let host = HostProc::start(&enclave.socket, enclave.dir.path());
    (Stack { host, enclave, http: reqwest::Client::new() }, root)
}

fn bridle(dir: &Path, args: &[&str]) -> Output {
    bridle_tests::cli::bridle_cmd(&dir.join("trust.json")).current_dir(dir).args(args).output().expect("run bridle")
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

async fn revoke(s: &Stack, g: &Granted) -> (u16, Value) {
    let st = s.status().await;
    let msg = OwnerAction {
        action: action::REVOKE.into(),
        enclave: st.identity_address,
        session: g.session,
        agent: g.agent.address,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    let body = Revoke { auth: g.owner.sign_owner(&msg), session: g.session };
    s.post(&format!("/v1/sessions/{}/revoke", g.session), &body).await
}

async fn revoke_all(s: &Stack, owner: &Actor) -> (u16, Value) {
    let st = s.status().await;
    let msg = OwnerAction {
        action: action::REVOKE_ALL.into(),
        enclave: st.identity_address,
        session: Address::ZERO,
        agent: Address::ZERO,
        policyHash: B256::ZERO,
        subject: B256::ZERO,
        nonce: Actor::next_nonce(),
    };
    s.post(&format!("/v1/owners/{}/revoke-all", owner.address), &RevokeAll { auth: owner.sign_owner(&msg) }).await
}

/// A request stamped by someone who is not the session's agent.
async fn sign_as_stranger(s: &Stack, g: &Granted, nonce: u64) -> (u16, Value) {
    let payload = SignPayload::Transaction(erc20_transfer(31337, nonce, USDC, DEAD, usdc(1)));
    let stamp = Actor::random().stamp(&g.enclave_pk, g.session, &payload, now());
    s.post("/v1/sign", &SignRequest { session: g.session, payload, stamp }).await
}

/// The identity public key from a fresh attestation document, verified with the mock root.
async fn attested_identity_key(s: &Stack, root: &Path) -> String {
    let dir = s.enclave.dir.path();
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let nonce = hex::encode(nonce);
    let (c, v) = s.get(&format!("/v1/attestation?nonce=0x{nonce}")).await;
    assert_eq!(c, 200, "{v}");
    std::fs::write(dir.join("doc.b64"), v["document_base64"].as_str().expect("document_base64")).unwrap();
    let o = bridle(
        dir,
        &[
            "verify",
            "attestation",
            "doc.b64",
            "--root",
            root.to_str().unwrap(),
            "--nonce",
            &nonce,
            "--any-image",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    r["public_key"].as_str().expect("public_key in the verified document").to_string()
}

fn export(s: &Stack, name: &str) -> (PathBuf, AuditExport) {
    let dir = s.enclave.dir.path();
    let o = bridle(dir, &["audit", "export", "--host", &s.host.url, "--out", name]);
    assert!(o.status.success(), "{}", text(&o));
    let path = dir.join(name);
    let ex: AuditExport = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, ex)
}

fn verify(dir: &Path, file: &str, key: &str) -> Output {
    bridle(dir, &["verify", "audit", file, "--identity-key", key])
}

/// Recompute every hash, link and the head signature in Python (eth-utils, eth-keys).
const PY_VERIFY: &str = r#"
import json, sys
from eth_utils import keccak
from eth_keys import keys
ex = json.load(open(sys.argv[1]))
def u64(n): return int(n).to_bytes(8, 'big')
def s(x): b = x.encode(); return len(b).to_bytes(4, 'big') + b
def opt(x): return b'\x00' if x is None else b'\x01' + s(x)
def h(x): return bytes.fromhex(x[2:])
prev = keccak(b'bridle/audit-genesis/v1' + h(ex['enclave']))
for i, e in enumerate(ex['entries']):
    assert e['seq'] == i, i
    assert h(e['prev']) == prev, i
    prev = keccak(b'bridle/audit-entry/v1' + u64(e['seq']) + u64(e['time']) + h(e['session']) + s(e['kind'])
                  + opt(e['code']) + opt(e['rule']) + h(e['request_digest']) + s(e['detail']) + h(e['prev']))
hd = ex['head']
assert hd['seq'] == len(ex['entries']) - 1 and h(hd['hash']) == prev
assert hd['end'] == hd['seq'] + 1
d = keccak(b'bridle/audit-head/v3' + u64(hd['seq']) + h(hd['hash']) + u64(hd['time']) + h(hd['enclave'])
           + u64(hd['end']) + h(hd['nonce']) + u64(hd['oldest']))
sig = h(hd['signature'])
v = sig[64] - 27 if sig[64] >= 27 else sig[64]
pub = keys.Signature(vrs=(v, int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:64], 'big')))
print(pub.recover_public_key_from_msg_hash(d).to_checksum_address())
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_logged_exported_and_verified_against_the_attested_key() {
    let (s, root) = start();
    let dir = s.enclave.dir.path().to_path_buf();
    let owner = Actor::random();
    let p = policy(POLICY);
    let g1 = s.grant(&owner, &Actor::random(), &p).await.expect("grant 1");
    let g2 = s.grant(&owner, &Actor::random(), &p).await.expect("grant 2");

    let (c, signed) = s.sign(&g1, erc20_transfer(31337, 0, USDC, DEAD, usdc(60))).await;
    assert_eq!(c, 200, "{signed}");
    let (c, v) = s.sign(&g1, erc20_transfer(31337, 1, USDC, DEAD, usdc(50))).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    let (c, v) = sign_as_stranger(&s, &g1, 2).await;
    assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    assert_eq!(revoke(&s, &g1).await.0, 200);
    let (c, v) = s.sign(&g1, erc20_transfer(31337, 3, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (403, "revoked"), "{v}");
    let (c, v) = revoke_all(&s, &owner).await;
    assert_eq!(c, 200, "{v}");

    // Export through the host; verify against the key of a verified attestation document.
    let (file, ex) = export(&s, "audit.json");
    let status = s.status().await;
    let key = attested_identity_key(&s, &root).await;
    assert_eq!(key.trim_start_matches("0x"), hex::encode(&status.identity_public_key));
    let o = bridle(&dir, &["verify", "audit", "audit.json", "--identity-key", &key, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["verdict"], "valid", "{r}");
    assert_eq!(r["pinned"], true);
    assert_eq!(r["enclave"], serde_json::json!(status.identity_address));
    let o = verify(&dir, "audit.json", &key);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("valid: "), "{}", text(&o));

    // What the log says, in order.
    assert_eq!(ex.enclave, status.identity_address);
    let kinds: Vec<(Decision, Option<ErrorCode>, Address)> =
        ex.entries.iter().map(|e| (e.kind, e.code, e.session)).collect();
    let z = Address::ZERO;
    assert_eq!(
        kinds,
        vec![
            (Decision::Started, None, z),
            (Decision::SessionCreated, None, g1.session),
            (Decision::SessionCreated, None, g2.session),
            (Decision::Allowed, None, g1.session),
            (Decision::Denied, Some(ErrorCode::SpendCap), g1.session),
            (Decision::Denied, Some(ErrorCode::Unauthenticated), g1.session),
            (Decision::Revoked, None, g1.session),
            (Decision::Denied, Some(ErrorCode::Revoked), g1.session),
            (Decision::RevokedAll, None, g2.session),
        ],
        "{:#?}",
        ex.entries
    );
    let digest: B256 = serde_json::from_value(signed["digest"].clone()).unwrap();
    assert_eq!(ex.entries[3].request_digest, digest, "the allowed entry records the signed digest");
    assert_eq!(ex.entries[1].request_digest, p.hash(), "session_created records the policy hash");
    assert_eq!(ex.entries[4].rule.as_deref(), Some("limits[0]"));
    assert!(ex.entries[4].detail.contains("cap 100 USDC"), "{}", ex.entries[4].detail);
    assert_eq!(ex.head.seq, 8);

    // An implementation we did not write agrees on every hash and on the signer.
    let signer = eth_account_py(PY_VERIFY, &[file.to_str().unwrap()]);
    assert_eq!(signer.parse::<Address>().unwrap(), status.identity_address);

    // The host serves pages of the stored log with the latest head.
    let (c, v) = s.get("/v1/audit?since=2&limit=3").await;
    assert_eq!(c, 200, "{v}");
    let seqs: Vec<u64> = v["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [2, 3, 4]);
    assert_eq!((v["more"].as_bool(), v["head"]["seq"].as_u64()), (Some(true), Some(8)), "{v}");
    assert_eq!(v["sync"]["state"], "ok", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_export_is_rejected_naming_the_entry() {
    let (s, root) = start();
    let dir = s.enclave.dir.path().to_path_buf();
    let owner = Actor::random();
    let g = s.grant(&owner, &Actor::random(), &policy(POLICY)).await.expect("grant");
    for i in 0..3 {
        assert_eq!(s.sign(&g, erc20_transfer(31337, i, USDC, DEAD, usdc(1))).await.0, 200);
    }
    assert_eq!(s.sign(&g, erc20_transfer(31337, 9, USDC, DEAD, usdc(500))).await.0, 403);
    assert_eq!(revoke(&s, &g).await.0, 200);
    let (file, _) = export(&s, "audit.json");
    let key = attested_identity_key(&s, &root).await;
    assert!(verify(&dir, "audit.json", &key).status.success());
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();

    let tamper = |name: &str, f: &dyn Fn(&mut Vec<Value>)| -> Output {
        let mut v = original.clone();
        f(v["entries"].as_array_mut().unwrap());
        std::fs::write(dir.join(name), serde_json::to_string_pretty(&v).unwrap()).unwrap();
        verify(&dir, name, &key)
    };
    // One entry changed: a denial rewritten as allowed.
    let o = tamper("changed.json", &|es| es[5]["kind"] = "allowed".into());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).starts_with("invalid: entry 5 was changed"), "{}", text(&o));
    // One entry changed: a different digest.
    let o = tamper("digest.json", &|es| es[3]["request_digest"] = serde_json::json!(B256::repeat_byte(7)));
    assert!(stderr(&o).starts_with("invalid: entry 3 was changed"), "{}", text(&o));
    // One entry removed.
    let o = tamper("removed.json", &|es| {
        es.remove(4);
    });
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).starts_with("invalid: entry 4 is missing"), "{}", text(&o));
    // The last entry removed: the signed head still names it.
    let o = tamper("truncated.json", &|es| {
        es.pop();
    });
    assert!(stderr(&o).starts_with("invalid: entry 6 is missing"), "{}", text(&o));
    // Two entries reordered.
    let o = tamper("reordered.json", &|es| es.swap(2, 3));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).starts_with("invalid: entry 2 is out of order"), "{}", text(&o));
    // Reordered and renumbered to hide it: the links break at the first moved entry.
    let o = tamper("renumbered.json", &|es| {
        es.swap(2, 3);
        es[2]["seq"] = 2.into();
        es[3]["seq"] = 3.into();
    });
    assert!(stderr(&o).starts_with("invalid: entry 2 was changed"), "{}", text(&o));

    // The genuine log checked against another enclave's key.
    let other = hex::encode(Actor::random().public_key_sec1());
    let o = verify(&dir, "audit.json", &other);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("head is for enclave"), "{}", text(&o));
    // A head re-signed by another key that claims the enclave's identity.
    let mut forged = original.clone();
    let mallory = Actor::random();
    let head: bridle_common::audit::AuditHead = serde_json::from_value(forged["head"].clone()).unwrap();
    let re = bridle_common::audit::AuditHead::signed(
        head.seq,
        head.hash,
        head.time,
        head.enclave,
        head.end,
        head.nonce,
        head.oldest,
        |d| {
            let sk = k256::ecdsa::SigningKey::from(&mallory.secret);
            let (sig, recid) = sk.sign_prehash_recoverable(d.as_slice())?;
            Ok::<_, k256::ecdsa::Error>(alloy_primitives::Signature::from_signature_and_parity(sig, recid.is_y_odd()))
        },
    )
    .unwrap();
    forged["head"] = serde_json::to_value(re).unwrap();
    std::fs::write(dir.join("forged.json"), forged.to_string()).unwrap();
    let o = verify(&dir, "forged.json", &key);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("is not signed by the enclave identity"), "{}", text(&o));
    // Unreadable input and bad keys are usage errors.
    assert_eq!(verify(&dir, "nope.json", &key).status.code(), Some(2));
    assert_eq!(verify(&dir, "audit.json", "0x1234").status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_anyone_can_cause_are_bounded_and_counted() {
    let (s, _root) = start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(POLICY)).await.expect("grant");
    for i in 0..40 {
        assert_eq!(sign_as_stranger(&s, &g, i).await.0, 401);
    }
    // The agent's own denials are all logged.
    for i in 0..20 {
        assert_eq!(s.sign(&g, erc20_transfer(31337, i, USDC, DEAD, usdc(500))).await.0, 403);
    }
    let (_, ex) = export(&s, "a.json");
    let count = |code: ErrorCode| ex.entries.iter().filter(|e| e.code == Some(code)).count();
    assert_eq!(count(ErrorCode::Unauthenticated), 16, "16 per session per minute by default");
    assert_eq!(count(ErrorCode::SpendCap), 20);
    // A minute later, the next one says how many were not logged.
    s.enclave.set_clock_offset(61);
    assert_eq!(sign_as_stranger(&s, &g, 99).await.0, 401);
    let (_, ex) = export(&s, "b.json");
    let last = ex.entries.last().unwrap();
    assert_eq!(last.code, Some(ErrorCode::Unauthenticated));
    assert!(last.detail.starts_with("[24 similar refusals not logged since "), "{}", last.detail);
    let key = hex::encode(&s.status().await.identity_public_key);
    assert!(verify(s.enclave.dir.path(), "b.json", &key).status.success());
}

/// `bridle_events_dropped_total` as the host's `/metrics` says.
async fn events_dropped(s: &Stack) -> u64 {
    let text = reqwest::get(format!("{}/metrics", s.host.url)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("bridle_events_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no bridle_events_dropped_total in:\n{text}"))
}

/// A review of 2026-12-06: anyone can send an owner call with any signature, naming any
/// session, and each refusal was an event row (900 a second against one victim pushed
/// other sessions' events out of the table). Refusals nobody signed are counted, never rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_calls_nobody_signed_are_counted_not_stored() {
    let (s, _root) = start();
    let (owner, agent, stranger) = (Actor::random(), Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(POLICY)).await.expect("grant");
    let st = s.status().await;
    let before = events_dropped(&s).await;
    let n = 200;
    for i in 0..n {
        let msg = OwnerAction {
            action: action::REVOKE.into(),
            enclave: st.identity_address,
            session: g.session,
            agent: agent.address,
            policyHash: B256::ZERO,
            subject: B256::ZERO,
            nonce: Actor::next_nonce(),
        };
        let mut auth = stranger.sign_owner(&msg);
        auth.owner = owner.address; // claims to be the owner; the signature is the stranger's
        auth.nonce = msg.nonce + i;
        let (c, v) = s.post(&format!("/v1/sessions/{}/revoke", g.session), &Revoke { session: g.session, auth }).await;
        assert_eq!((c, code(&v)), (401, "unauthenticated"), "{v}");
    }
    assert_eq!(events_dropped(&s).await - before, n, "every refusal counted, none stored");
    // The session is as it was.
    assert_eq!(s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_wire_suspension_is_logged_with_its_reason() {
    let (s, _root) = start();
    let text =
        POLICY.replace("valid_for = \"24h\"", "valid_for = \"24h\"\ntrip_wire = { denials = 3, within = \"1m\" }");
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    for i in 0..3 {
        assert_eq!(s.sign(&g, erc20_transfer(31337, i, USDC, DEAD, usdc(500))).await.0, 403);
    }
    let (c, v) = s.sign(&g, erc20_transfer(31337, 9, USDC, DEAD, usdc(1))).await;
    assert_eq!((c, code(&v)), (403, "suspended"), "{v}");
    let (_, ex) = export(&s, "audit.json");
    let kinds: Vec<(Decision, Option<ErrorCode>)> = ex.entries.iter().map(|e| (e.kind, e.code)).collect();
    let denied = (Decision::Denied, Some(ErrorCode::SpendCap));
    assert_eq!(
        kinds[2..],
        [denied, denied, denied, (Decision::Suspended, None), (Decision::Denied, Some(ErrorCode::Suspended))],
        "{:#?}",
        ex.entries
    );
    assert!(ex.entries[5].detail.contains("trip-wire: 3 denials"), "{}", ex.entries[5].detail);
    assert_eq!(ex.entries[5].session, g.session);
    let key = hex::encode(&s.status().await.identity_public_key);
    assert!(verify(s.enclave.dir.path(), "audit.json", &key).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_keeps_each_enclaves_chain_across_restarts() {
    let (mut s, _root) = start();
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(POLICY)).await.expect("grant");
    assert_eq!(s.sign(&g, erc20_transfer(31337, 0, USDC, DEAD, usdc(1))).await.0, 200);
    let old = s.status().await;
    let (_, before) = export(&s, "old.json");
    assert_eq!(before.entries.len(), 3);

    // Restart the host on the same database: the stored log is still served, and continues.
    s.host.proc.terminate();
    s.host = HostProc::start_db(&s.enclave.socket, &s.host.db);
    assert_eq!(s.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await.0, 200);
    let (_, after) = export(&s, "old2.json");
    assert_eq!(after.entries.len(), 4);
    assert_eq!(after.entries[..3], before.entries[..]);
    let old_key = hex::encode(&old.identity_public_key);
    assert!(verify(s.enclave.dir.path(), "old2.json", &old_key).status.success());

    // Restart the enclave: a new identity, a new chain; the old one stays exportable.
    let dir = std::mem::replace(&mut s.enclave.dir, tempfile::tempdir().unwrap());
    s.enclave.proc.kill();
    s.enclave = EnclaveProc::start_in(dir, &[]);
    let mut new = old.clone();
    for _ in 0..100 {
        let (c, v) = s.get("/v1/status").await;
        if c == 200 {
            new = serde_json::from_value(v).unwrap();
            if new.identity_address != old.identity_address {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(new.identity_address, old.identity_address);
    let (_, fresh) = export(&s, "new.json");
    assert_eq!((fresh.enclave, fresh.entries.len()), (new.identity_address, 1));
    assert_eq!(fresh.entries[0].kind, Decision::Started);
    let new_key = hex::encode(&new.identity_public_key);
    let dir = s.enclave.dir.path();
    assert!(verify(dir, "new.json", &new_key).status.success());
    // The old enclave's chain, by its identity.
    let o = bridle(
        dir,
        &["audit", "export", "--host", &s.host.url, "--enclave", &old.identity_address.to_string(), "--out", "o.json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(verify(dir, "o.json", &old_key).status.success());
    let o = verify(dir, "o.json", &new_key);
    assert_eq!(o.status.code(), Some(1), "the old log is not the new enclave's: {}", text(&o));
}
