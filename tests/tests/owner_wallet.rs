//! Owners sign with an ordinary wallet: an owner envelope signed by Python's eth-account
//! (`sign_typed_data`, as MetaMask's eth_signTypedData_v4) is accepted by the enclave.

use bridle_common::protocol::*;
use bridle_tests::*;
use std::process::Command;

fn eth_account_sign_typed(private_key: &str, typed: &serde_json::Value) -> String {
    let script = r#"
import sys, json
from eth_account import Account
from eth_account.messages import encode_typed_data
msg = encode_typed_data(full_message=json.loads(sys.argv[2]))
print(Account.sign_message(msg, private_key=sys.argv[1]).signature.hex())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(private_key)
        .arg(typed.to_string())
        .output()
        .expect("python3");
    assert!(out.status.success(), "eth-account: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn eth_account_signed_owner_envelope_is_accepted() {
    let s = Stack::start();
    let (owner, agent) = (Actor::random(), Actor::random());
    let p = policy(
        "name='w'\nchains=[1]\nvalid_for='1h'\n[[calls]]\ntarget='0x000000000000000000000000000000000000dEaD'\nfunctions=['receive()']\n",
    );
    let st = s.status().await;
    let msg = create_action(st.identity_address, agent.address, p.hash(), Actor::next_nonce());
    let sig = eth_account_sign_typed(&owner.private_key_hex(), &msg.typed_data_json());
    let sig = hex::decode(sig.trim_start_matches("0x")).unwrap();
    let auth = OwnerAuth { owner: owner.address, nonce: msg.nonce, signature: sig.into() };
    let (c, v) =
        s.post("/v1/sessions", &CreateSession { auth, agent_public_key: agent.public_key_sec1(), policy: p }).await;
    assert_eq!(c, 200, "{v}");
    let created: SessionCreated = serde_json::from_value(v).unwrap();
    assert_eq!(created.binding.owner, owner.address);
    // The binding is signed by the enclave identity key.
    let sig = alloy_primitives::Signature::from_raw(&created.binding_signature).unwrap();
    assert_eq!(sig.recover_address_from_prehash(&created.binding.digest()).unwrap(), st.identity_address);
}
