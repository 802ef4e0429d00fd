//! The interfaces as documented (docs/api.md, `GET /openapi.json`), proved on a live stack.
//!
//! `tests/py/doc_client.py` is a client written from docs/api.md alone (eth-account and
//! `cryptography`, none of the repository's helpers): it derives the stamp key, stamps and
//! signs every sign type — EIP-1559 and legacy transactions, typed data, a message, a v0.7
//! user operation — through `POST /v1/sign`, and a transaction through `eth_signTransaction`
//! with the `Bridle-Stamp` header; checks each digest and signature itself; asks again
//! with the same stamp (same signature), with a stale stamp (`replayed`) and a bad MAC
//! (`unauthenticated`); reads the spend as a hex quantity. It validates the OpenAPI
//! document (openapi-spec-validator) and every reply against it (jsonschema).

use bridle_tests::*;

const POLICY: &str = r#"
name = "doc-client"
chains = [31337]
valid_for = "1h"
max_value_per_call = "0.01 ETH"

[[calls]]
target = "0x000000000000000000000000000000000000dEaD"
functions = ["receive()"]

[[limits]]
max = "0.1 ETH"
per = "day"

[user_operations]
entry_points = ["v0.7"]

[[typed_data]]
name = "Doc Client"
chain_id = 31337
verifying_contract = "0x000000000000000000000000000000000000d0c5"
primary_type = "Mail"

[[messages]]
exact = "gm"
"#;

#[tokio::test]
async fn a_client_written_from_the_docs_signs_every_payload_type() {
    pyclient::require(
        "eth_account, cryptography, jsonschema, openapi_spec_validator",
        "Python test dependencies missing",
    );
    let stack = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = stack.grant(&owner, &agent, &policy(POLICY)).await.expect("grant");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("agent.key");
    write_key_file(&key, "agent", &agent);

    let (code, doc) = stack.get("/openapi.json").await;
    assert_eq!(code, 200, "{doc}");
    assert!(doc["paths"]["/v1/sign"]["post"].is_object(), "{doc}");

    let case = serde_json::json!({
        "host": stack.host.url,
        "session": g.session,
        "key_file": key,
        "identity_public_key": stack.enclave.identity_key_hex(),
        "chain_id": 31337,
    });
    let (r, all) = pyclient::run("doc_client.py", "the documented client", &case).await;
    assert_eq!(r["ok"], true, "{all}");
    let checked = r["checked"].as_array().unwrap();
    assert!(checked.len() >= 15, "{all}");
    for want in ["POST /v1/sign 200", "POST /v1/sign 401", "POST /v1/sign 403", "POST /rpc 200", "GET /v1/status 200"] {
        assert!(checked.iter().any(|c| c == want), "{want} not checked: {all}");
    }
}
