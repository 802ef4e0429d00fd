//! What the owner's tools show of the audit log and the session's use (a review of
//! 2026-12-06, night): the console's rate-limit line must be the enclave's count, and
//! `bridle audit export --enclave` of an enclave the host no longer serves must check the
//! copy against that enclave's own heads. Real `bridle-enclave` and `bridle-host` behind
//! `bridle_tests::proxy::LyingProxy`, the real CLI, and the console's own modules under node.

use alloy_primitives::{address, Address, U256};
use bridle_common::audit::testing::TestChain;
use bridle_common::protocol::*;
use bridle_tests::review::World;
use bridle_tests::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};

const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

/// One signature an hour; anything above 50 USDC waits for the owner.
const POLICY: &str = r#"
name = "audit-views"
chains = [31337]
valid_for = "24h"
escalate = { above_value = "50 USDC", ttl = "10m" }

[tokens]
USDC = { address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]

[[limits]]
max = "1000 USDC"
per = "day"

[[rate_limits]]
max = 1
window = "1 hour"
"#;

/// Render the console's session view (host/console/views.js `renderDetail`, the module the
/// host serves) into a stand-in DOM under node, after checking the log with the console's own
/// `verifyAuditLog`; returns `{verified, text}`.
fn console_render(input: &Value) -> Value {
    let root = repo_root();
    let views = root.join("host/console/views.js");
    let verify = root.join("host/console/verify.js");
    let script = format!(
        r#"
class FakeNode {{
  constructor(tag) {{ this.tag = tag; this.children = []; this.attrs = {{}}; this.style = {{}}; }}
  append(...ks) {{ for (const k of ks) this.children.push(k); }}
  appendChild(k) {{ this.children.push(k); return k; }}
  replaceChildren(...ks) {{ this.children = ks; }}
  setAttribute(k, v) {{ this.attrs[k] = v; }}
  getAttribute(k) {{ return this.attrs[k]; }}
  addEventListener() {{}}
  querySelectorAll() {{ return []; }}
  get firstChild() {{ return this.children[0]; }}
  get textContent() {{ return this.children.map((c) => (typeof c === "string" ? c : c.textContent)).join(""); }}
  set textContent(v) {{ this.children = [String(v)]; }}
}}
globalThis.Node = FakeNode;
globalThis.document = {{ createElement: (t) => new FakeNode(t), createElementNS: (_, t) => new FakeNode(t) }};
globalThis.localStorage = {{ getItem: () => null, setItem: () => {{}} }};
const {{ renderDetail }} = await import({views:?});
const {{ verifyAuditLog }} = await import({verify:?});
let text = "";
process.stdin.setEncoding("utf8");
for await (const c of process.stdin) text += c;
const d = JSON.parse(text);
const v = verifyAuditLog(d.entries, d.head, d.identity);
const mine = d.entries.filter((e) => e.session.toLowerCase() === d.session.toLowerCase());
const out = new FakeNode("div");
renderDetail(out, {{
  live: d.live, stored: {{ session: d.session, state: "active" }}, policy: d.policy, policyVerified: true,
  audit: mine, auditFresh: true, now: d.now, signed: {{ time: d.now }}, aggregate: [],
  onApprove: () => {{}}, onDeny: () => {{}}, onShow: () => {{}},
}});
console.log(JSON.stringify({{ verified: v.ok, error: v.error ?? null, text: out.textContent }}));
"#,
        views = views.display().to_string(),
        verify = verify.display().to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("render.mjs");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new("node")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("node's JSON")
}

/// The console counted the verified log's `allowed` entries against each rate limit and
/// called the figure "from the verified audit log, complete now". A signature the owner
/// approved is logged `approved`, and the enclave charges it to the limit, so the page
/// showed the limit unused while the enclave refused the next request `rate_limited` (the
/// log carries no weight either: a user operation of 10 calls is one entry). The page now
/// shows the use the enclave's status reports, the count it decides by.
#[tokio::test]
async fn the_consoles_rate_limit_line_is_the_count_the_enclave_decides_by() {
    let w = World::start(POLICY);
    let g = w.grant().await;
    // 80 USDC: held for the owner, who approves it: the enclave signs it.
    let big = SignPayload::Transaction(erc20_transfer(31337, 0, USDC, DEAD, usdc(80)));
    let digest = bridle_common::payload::stamp_digest(&big).unwrap();
    let (c, v) = w.stack.sign_payload(&g, big.clone()).await;
    assert_eq!((c, code(&v)), (403, "pending_approval"), "{v}");
    let (c, v) = w.stack.approve_pending(&g, digest).await;
    assert_eq!(c, 200, "the owner's approval is signed: {v}");
    let st = w.stack.status().await;
    // The enclave counted that signature: the next request (1 USDC, far below every cap) is
    // refused by the rate limit of 1 an hour.
    let (c, v) = w.stack.sign(&g, erc20_transfer(31337, 1, USDC, DEAD, usdc(1))).await;
    assert!(c != 200 && code(&v) == "rate_limited", "{c} {v}");

    // The status says so, and the page shows what it says.
    let truth = w.truth(&g);
    let limits: Vec<(&str, u64, u64, Option<u64>)> =
        truth.rate_limits.iter().map(|r| (r.rule.as_str(), r.max, r.window, r.used)).collect();
    assert_eq!(limits, vec![("rate_limits[0]", 1, 3600, Some(1))]);
    let (_, log) = w.stack.get("/v1/audit?since=0").await;
    let live = serde_json::to_value(&truth).unwrap();
    let r = console_render(&json!({
        "entries": log["entries"], "head": log["head"], "identity": st.identity_address,
        "session": g.session, "live": live, "policy": Value::Null, "now": now(),
    }));
    assert_eq!(r["verified"], json!(true), "{r}");
    let text = r["text"].as_str().unwrap();
    let line = text.split("rate_limits[0]").nth(1).unwrap_or("").split(')').next().unwrap_or("");
    assert!(
        line.contains("— 1 in the last 3600 s (the enclave's count, signed"),
        "the page's rate-limit line: rate_limits[0]{line})"
    );
}

fn export_of(chain: &TestChain, head: &bridle_common::audit::AuditHead, upto: usize) -> Value {
    json!({
        "format": "bridle-audit-export/v1",
        "enclave": chain.enclave(),
        "identity_public_key": format!("0x{}", hex::encode(chain.public_key())),
        "entries": chain.entries[..upto],
        "head": head,
    })
}

/// `bridle audit export --enclave X` of an enclave the host no longer serves checked nothing
/// and exited 0 ("its log is complete only as of its own head"), whatever file the host
/// answered. Now the copy must be X's log from its first entry, linked, to a head X signed
/// at its log's end then: a log signed by another key, or cut short of its head's end,
/// exits 1; X's genuine log exits 0 and says what cannot be checked.
#[tokio::test]
async fn an_export_of_an_enclave_the_host_no_longer_serves_is_checked_against_its_heads() {
    let w = World::start(POLICY);
    let _g = w.grant().await;
    let mut old = TestChain::new(0x44);
    old.fill(4);
    let mut other = TestChain::new(0x42);
    other.fill(4);
    let named = old.enclave().to_string();
    let cases = [
        ("another key's log", export_of(&other, &other.head(now()), 4), false, "invalid"),
        ("cut short of its head's end", export_of(&old, &old.head_at(1, now()), 2), false, "incomplete"),
        ("the old enclave's own log", export_of(&old, &old.head(now()), 4), true, "whether it logged more"),
    ];
    // One answer, changed from case to case (the proxy keeps the first answer it is given).
    let served = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    let answer = served.clone();
    w.proxy.answer("GET", "/v1/audit/export", move |_| (200, answer.lock().unwrap().clone()));
    for (what, file, ok, says) in cases {
        *served.lock().unwrap() = file;
        let out = w.cli.run(&["audit", "export", "--enclave", &named, "--out", "old.json"]);
        let text = bridle_tests::cli::text(&out);
        assert_eq!(out.status.success(), ok, "{what}:\n{text}");
        assert!(text.contains(says), "{what}: expected {says:?}:\n{text}");
    }
}

/// The verifier refuses a log of another key when the identity is pinned.
#[test]
fn verify_audit_refuses_a_log_of_another_key_when_pinned() {
    let mut fake = TestChain::new(0x43);
    fake.fill(2);
    let head = fake.head(1_800_000_000);
    let real = TestChain::new(0x44);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.json");
    std::fs::write(&f, json!({"entries": fake.entries, "head": head, "enclave": fake.enclave()}).to_string()).unwrap();
    let cli = bridle_tests::cli::Cli::new(dir.path(), "http://127.0.0.1:9");
    let pk = format!("0x{}", hex::encode(real.public_key()));
    let (_, err) = cli.fails(&["verify", "audit", f.to_str().unwrap(), "--identity-key", &pk]);
    assert!(err.contains("invalid"), "{err}");
}

/// A status without `rate_limits` — an enclave older than the field, or a host that left it
/// out — under a policy the page checked that sets one: the page lists the limit with its
/// use "not reported", never "The policy sets no rate limit." (a review of the fix).
#[test]
fn a_status_without_rate_limits_under_a_policy_with_one_says_the_use_is_not_reported() {
    let session = Address::repeat_byte(0x11);
    let live = json!({
        "session": session, "owner": Address::repeat_byte(0x22), "agent": Address::repeat_byte(0x33),
        "policy_hash": format!("0x{}", "44".repeat(32)), "state": "active", "created_at": 1_800_000_000u64,
        "valid_after": null, "valid_until": 1_900_000_000u64, "uses": 2, "uses_left": null, "caps": [],
        "allowances": [], "exposure": {}, "pending": [], "time": 1_800_000_100u64, "anchor": 1_800_000_000u64,
    });
    let render = |policy: Value| {
        let r = console_render(&json!({
            "entries": [], "head": null, "identity": Address::repeat_byte(0x55),
            "session": session, "live": live, "policy": policy, "now": 1_800_000_100u64,
        }));
        r["text"].as_str().unwrap().to_string()
    };
    let text = render(json!({"rate_limits": [{"max": 2, "window": 3600}]}));
    assert!(
        text.contains("rate_limits[0]: at most 2 signatures per 3600 s — use not reported")
            && !text.contains("sets no rate limit"),
        "{text}"
    );
    let text = render(json!({"rate_limits": []}));
    assert!(text.contains("The policy sets no rate limit."), "{text}");
}
