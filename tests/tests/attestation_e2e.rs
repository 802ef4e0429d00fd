//! Attestation end to end, with the real binaries (SPEC §5, issue 3):
//! the development enclave (mock NSM) commits its configuration into PCR16, the host relays
//! documents with a fresh nonce, `bridle verify attestation` checks them with the mock root
//! (and refuses them without it, or with a wrong nonce or PCR); a session's binding is checked
//! with `bridle verify session` (valid; tampered policy, binding, signature refused); and
//! `bridle dev` writes the mock root where verifiers find it.
//!
//! Expected PCR values are computed here independently of the enclave crate, with the
//! system's `sha384sum` (coreutils), from the documented configuration string.

use bridle_tests::{bin, EnclaveProc, HostProc, Proc};
use rand_core::{OsRng, RngCore};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sha384(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("sha384sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha384sum (coreutils) is needed by this test");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    hex::decode(text.split_whitespace().next().unwrap()).unwrap()
}

/// PCR16 of an enclave started with this configuration (ATTESTATION.md, "PCR16"):
/// `SHA384(0^48 ‖ SHA384(canonical))`.
fn expected_pcr16(stamp_window: u64, max_frame: usize, dev: bool) -> String {
    let canonical = format!(
        "bridle-enclave/config/v1\ncrate_version={}\nprotocol_version={}\nstamp_window={stamp_window}\nmax_frame={max_frame}\ndev={dev}\n",
        env!("CARGO_PKG_VERSION"),
        bridle_common::protocol::PROTOCOL_VERSION,
    );
    let commitment = sha384(canonical.as_bytes());
    let mut extend = vec![0u8; 48];
    extend.extend_from_slice(&commitment);
    hex::encode(sha384(&extend))
}

const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// The mock NSM's default image measurement: PCR<i> = SHA384("bridle mock enclave PCR<i>").
fn mock_pcr(i: u8) -> String {
    hex::encode(sha384(format!("bridle mock enclave PCR{i}").as_bytes()))
}

/// `bridle` in `dir`, with `dir/trust.json` as its trust file.
fn bridle(dir: &Path, args: &[&str]) -> Output {
    bridle_tests::cli::bridle_cmd(&dir.join("trust.json")).current_dir(dir).args(args).output().expect("run bridle")
}

fn text(o: &Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn get(url: &str) -> (u16, Value) {
    let r = reqwest::blocking::get(url).expect("GET");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// A development enclave writing its mock root to `<dir>/mock-root.pem`, and a host.
struct Dev {
    host: HostProc,
    enclave: EnclaveProc,
    root: PathBuf,
}

impl Dev {
    fn start(extra: &[&str]) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mock-root.pem");
        let mut args = vec!["--dev-nsm-root-out", root.to_str().unwrap()];
        args.extend_from_slice(extra);
        let enclave = EnclaveProc::start_in(dir, &args);
        let host = HostProc::start(&enclave.socket, enclave.dir.path());
        assert!(std::fs::read_to_string(&root).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        Dev { host, enclave, root }
    }

    fn dir(&self) -> &Path {
        self.enclave.dir.path()
    }

    fn root(&self) -> &str {
        self.root.to_str().unwrap()
    }

    /// Fetch an attestation with `nonce` through the host; write the base64 document to a file.
    fn attestation(&self, nonce: &str, name: &str) -> (Value, PathBuf) {
        let (code, v) = get(&format!("{}/v1/attestation?nonce=0x{nonce}", self.host.url));
        assert_eq!(code, 200, "{v}");
        let path = self.dir().join(name);
        std::fs::write(&path, v["document_base64"].as_str().expect("document_base64")).unwrap();
        (v, path)
    }
}

#[test]
fn fresh_attestation_through_the_host_verifies_with_the_mock_root() {
    let dev = Dev::start(&[]);
    let dir = dev.dir();
    let pcr16 = expected_pcr16(60, DEFAULT_MAX_FRAME, true);
    let (_, status) = get(&format!("{}/v1/status", dev.host.url));
    let identity_pk = status["identity_public_key"].as_str().unwrap().trim_start_matches("0x").to_string();

    let nonce = random_hex(32);
    let (v, doc) = dev.attestation(&nonce, "doc.b64");

    // The host's summary is decoded, not verified, and says so.
    let s = &v["summary"];
    assert_eq!(s["verified"], false, "{v}");
    assert_eq!(s["nonce"], nonce.as_str());
    assert_eq!(s["public_key"], identity_pk.as_str(), "the enclave identity key is in public_key");
    assert_eq!(s["user_data"], Value::Null);
    assert_eq!(s["digest"], "SHA384");
    assert_eq!(s["pcrs"]["16"], pcr16.as_str(), "PCR16 commits to the configuration");
    assert_eq!(s["pcrs"]["0"], mock_pcr(0).as_str());
    // The raw form equals the base64 form.
    let raw = hex::decode(v["document"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    std::fs::write(dir.join("doc.cbor"), &raw).unwrap();

    let pcrs = [format!("0={}", mock_pcr(0)), format!("1={}", mock_pcr(1)), format!("2={}", mock_pcr(2))];
    let pcr16_arg = format!("16={pcr16}");
    let mut ok_args = vec!["verify", "attestation", doc.to_str().unwrap(), "--root", dev.root(), "--nonce", &nonce];
    for p in &pcrs {
        ok_args.extend(["--pcr", p.as_str()]);
    }
    ok_args.extend(["--pcr", &pcr16_arg, "--max-age", "120", "--json"]);
    let o = bridle(dir, &ok_args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json_out(&o);
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["nonce"], nonce.as_str());
    assert_eq!(j["public_key"], identity_pk.as_str());
    assert_eq!(j["pcrs"]["16"], pcr16.as_str());
    assert_eq!(j["debug"], false);

    // The raw CBOR file verifies the same.
    let o = bridle(
        dir,
        &[
            "verify",
            "attestation",
            "doc.cbor",
            "--root",
            dev.root(),
            "--nonce",
            &nonce,
            "--pcr",
            &pcr16_arg,
            "--any-image",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Without --root: the embedded AWS root, which never signed the mock chain.
    let o = bridle(dir, &["verify", "attestation", "doc.b64", "--nonce", &nonce, "--pcr", &pcr16_arg, "--any-image"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("does not end at the trusted root"), "{}", text(&o));

    // A wrong nonce (another fresh one).
    let other = random_hex(32);
    let o = bridle(dir, &["verify", "attestation", "doc.b64", "--root", dev.root(), "--nonce", &other, "--any-image"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("nonce mismatch"), "{}", text(&o));

    // A PCR16 for another configuration (stamp window 61, or production mode).
    for wrong in [expected_pcr16(61, DEFAULT_MAX_FRAME, true), expected_pcr16(60, DEFAULT_MAX_FRAME, false)] {
        let arg = format!("16={wrong}");
        let o = bridle(dir, &["verify", "attestation", "doc.b64", "--root", dev.root(), "--pcr", &arg, "--any-image"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(stderr(&o).contains("PCR16 mismatch"), "{}", text(&o));
    }

    // The enclave prints the same PCR16 for verifiers.
    let o = Command::new(bin("bridle-enclave")).args(["--print-pcr16", "--dev"]).output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("pcr16={pcr16}")), "{}", text(&o));

    // Nonce limits: 512 bytes relayed, 513 refused by the host with 400.
    let (code, v) = get(&format!("{}/v1/attestation?nonce={}", dev.host.url, "ab".repeat(512)));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["summary"]["nonce"], "ab".repeat(512));
    let (code, v) = get(&format!("{}/v1/attestation?nonce={}", dev.host.url, "ab".repeat(513)));
    assert_eq!(code, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("512 bytes"), "{v}");
    let (code, _) = get(&format!("{}/v1/attestation?nonce=xyz", dev.host.url));
    assert_eq!(code, 400);
}

#[test]
fn configuration_is_committed_in_pcr16() {
    // Another stamp window and frame size: another PCR16.
    let dev = Dev::start(&["--stamp-window", "30", "--max-frame", "65536"]);
    let (v, _) = dev.attestation(&random_hex(16), "doc.b64");
    assert_eq!(v["summary"]["pcrs"]["16"], expected_pcr16(30, 65536, true).as_str());
    assert_ne!(v["summary"]["pcrs"]["16"], expected_pcr16(60, DEFAULT_MAX_FRAME, true).as_str());
    // PCR17 (not used) is untouched.
    assert_eq!(v["summary"]["pcrs"]["17"], "00".repeat(48));
}

#[test]
fn production_mode_refuses_to_start_without_an_nsm() {
    if Path::new("/dev/nsm").exists() {
        return; // inside a real enclave
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(bin("bridle-enclave"))
        .arg("--unix")
        .arg(dir.path().join("e.sock"))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("refusing to start without attestation") && err.contains("/dev/nsm"), "{err}");
    assert!(!dir.path().join("e.sock").exists(), "nothing listens");
    // The mock root can only be written in development mode.
    let o = Command::new(bin("bridle-enclave"))
        .arg("--unix")
        .arg(dir.path().join("e.sock"))
        .arg("--dev-nsm-root-out")
        .arg(dir.path().join("root.pem"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "clap usage error: --dev-nsm-root-out requires --dev");
}

const POLICY: &str = r#"
name = "usdc-hourly"
chains = [31337]
valid_for = "1h"

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "100 USDC"
per = "day"
"#;

#[test]
fn session_binding_verifies_end_to_end() {
    let dev = Dev::start(&[]);
    let dir = dev.dir();
    let host = dev.host.url.as_str();
    let pcr16 = format!("16={}", expected_pcr16(60, DEFAULT_MAX_FRAME, true));
    let pcr0 = format!("0={}", mock_pcr(0));

    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    for (who, file) in [("owner", "owner.key"), ("agent", "agent.key")] {
        let o = bridle(dir, &[who, "keygen", "--out", file]);
        assert!(o.status.success(), "{}", text(&o));
    }
    // No identity trusted for the host yet: the grant refuses, and says how to establish one.
    let args =
        ["owner", "grant", "--host", host, "--key", "owner.key", "--agent", "agent.key", "--policy", "policy.toml"];
    let o = bridle(dir, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("no trusted enclave identity") && stderr(&o).contains("bridle trust attest"),
        "{}",
        text(&o)
    );
    // Attest the host's enclave: fresh document, mock root, the mock image's PCR0 and this
    // configuration's PCR16; the grant then checks its binding's document the same way.
    let o = bridle(dir, &["trust", "attest", "--host", host, "--root", dev.root(), "--pcr", &pcr0, "--pcr", &pcr16]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("attested against root"), "{}", text(&o));
    let o = bridle(dir, &args);
    assert!(String::from_utf8_lossy(&o.stdout).contains("user_data = the binding digest"), "{}", text(&o));
    // A wrong expected PCR: trust is not established.
    let wrong = format!("0={}", mock_pcr(1));
    let o = bridle(dir, &["trust", "attest", "--host", host, "--root", dev.root(), "--pcr", &wrong]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("PCR0 mismatch"), "{}", text(&o));
    let o = bridle(
        dir,
        &[
            "owner",
            "grant",
            "--host",
            host,
            "--key",
            "owner.key",
            "--agent",
            "agent.key",
            "--policy",
            "policy.toml",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(dir.join("created.json"), &o.stdout).unwrap();
    let created = json_out(&o);
    let session = created["binding"]["session"].as_str().unwrap().to_string();
    let owner = created["binding"]["owner"].as_str().unwrap().to_string();
    let agent = created["binding"]["agent"].as_str().unwrap().to_string();
    assert!(created["attestation"].as_str().is_some_and(|a| a.len() > 100), "a document comes with the binding");

    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "session", "--root", dev.root(), "--pcr", &pcr0, "--pcr", &pcr16];
        args.extend_from_slice(extra);
        bridle(dir, &args)
    };
    let live: [&str; 4] = ["--host", host, "--session", &session];

    // Live: the host's stored SessionCreated, the owner's TOML file (valid_for).
    let mut args = live.to_vec();
    args.extend(["--policy", "policy.toml", "--owner", &owner, "--agent", &agent, "--json"]);
    let o = verify(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json_out(&o);
    assert_eq!(j["verdict"], "valid");
    assert_eq!(j["session"], session.as_str());
    assert_eq!(j["policy_hash"], created["binding"]["policy_hash"]);
    assert!(j["policy_source"].as_str().unwrap().contains("valid_for"), "{j}");
    assert_eq!(j["document"]["pcrs"]["16"], pcr16.trim_start_matches("16="));

    // Human-readable form.
    let mut args = live.to_vec();
    args.extend(["--policy", "policy.toml"]);
    let o = verify(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("valid: session binding verified"), "{}", text(&o));

    // Offline: the saved `owner grant --json` output.
    let o = verify(&["--binding", "created.json", "--session", &session, "--policy", "policy.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // The normalized policy (as stored by the host, checked by hash — not trusted).
    let (_, stored) = get(&format!("{host}/v1/sessions/{session}"));
    std::fs::write(dir.join("normalized.json"), serde_json::to_string(&stored["stored"]["policy"]).unwrap()).unwrap();
    let o = verify(&["--binding", "created.json", "--policy", "normalized.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A tampered policy file: the enclave does not enforce it.
    std::fs::write(dir.join("tampered.toml"), POLICY.replace("100 USDC", "1000 USDC")).unwrap();
    let mut args = live.to_vec();
    args.extend(["--policy", "tampered.toml"]);
    let o = verify(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("policy hash mismatch"), "{}", text(&o));
    // Another lifetime is another policy too.
    std::fs::write(dir.join("longer.toml"), POLICY.replace("\"1h\"", "\"2h\"")).unwrap();
    // (Resolved at valid_until − 2h its hash would match: the lifetime check refuses it.)
    let o = verify(&["--binding", "created.json", "--policy", "longer.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("valid_for 7200 s"), "{}", text(&o));
    std::fs::write(dir.join("shorter.toml"), POLICY.replace("\"1h\"", "\"30m\"")).unwrap();
    let o = verify(&["--binding", "created.json", "--policy", "shorter.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("valid_for 1800 s"), "{}", text(&o));

    // Wrong owner, wrong session.
    let someone = format!("0x{}", random_hex(20));
    let o = verify(&["--binding", "created.json", "--policy", "policy.toml", "--owner", &someone]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("owner"), "{}", text(&o));
    let o = verify(&["--binding", "created.json", "--policy", "policy.toml", "--session", &someone]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("the binding is for session"), "{}", text(&o));

    // A tampered binding (another owner): the document's user_data no longer matches.
    let mut forged = created.clone();
    forged["binding"]["owner"] = Value::String(someone.clone());
    std::fs::write(dir.join("forged.json"), forged.to_string()).unwrap();
    let o = verify(&["--binding", "forged.json", "--policy", "policy.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("user_data mismatch"), "{}", text(&o));

    // A binding signature by another key.
    let mut forged = created.clone();
    let sig = forged["binding_signature"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", &sig[..10], if &sig[10..11] == "0" { "1" } else { "0" }) + &sig[11..];
    forged["binding_signature"] = Value::String(flipped);
    std::fs::write(dir.join("forged-sig.json"), forged.to_string()).unwrap();
    let o = verify(&["--binding", "forged-sig.json", "--policy", "policy.toml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("binding_signature"), "{}", text(&o));

    // Without the mock root; with a wrong PCR.
    let o = bridle(dir, &["verify", "session", "--binding", "created.json", "--policy", "policy.toml", "--any-image"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("does not end at the trusted root"), "{}", text(&o));
    let wrong = format!("16={}", expected_pcr16(60, DEFAULT_MAX_FRAME, false));
    let o = bridle(
        dir,
        &[
            "verify",
            "session",
            "--binding",
            "created.json",
            "--policy",
            "policy.toml",
            "--root",
            dev.root(),
            "--pcr",
            &wrong,
            "--any-image",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("PCR16 mismatch"), "{}", text(&o));

    // Usage errors: exit 2.
    let o = bridle(dir, &["verify", "session", "--policy", "policy.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = verify(&["--binding", "missing.json", "--policy", "policy.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = verify(&["--binding", "created.json", "--policy", "missing.toml", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(json_out(&o)["verdict"], "error");
}

#[test]
fn bridle_dev_writes_the_mock_root_and_its_attestations_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut cmd = bridle_tests::cli::bridle_cmd(&dir.join("trust.json"));
    cmd.arg("dev").arg("--dir").arg(dir.join("dev")).arg("--listen").arg("127.0.0.1:0").current_dir(dir);
    let mut dev = Proc::spawn_until(cmd, "host:");
    let host = dev.line.split_whitespace().last().unwrap().to_string();
    let root = dir.join("dev/mock-root.pem");
    assert!(std::fs::read_to_string(&root).unwrap().contains("BEGIN CERTIFICATE"));

    let nonce = random_hex(32);
    let (code, v) = get(&format!("{host}/v1/attestation?nonce={nonce}"));
    assert_eq!(code, 200, "{v}");
    std::fs::write(dir.join("doc.b64"), v["document_base64"].as_str().unwrap()).unwrap();
    let pcr16 = format!("16={}", expected_pcr16(60, DEFAULT_MAX_FRAME, true));
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
            "--pcr",
            &pcr16,
            "--any-image",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = bridle(dir, &["verify", "attestation", "doc.b64", "--nonce", &nonce, "--any-image"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(dev.terminate().is_some_and(|s| s.success()));
}
