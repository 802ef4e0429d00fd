//! EIP-712 typed data and EIP-191 messages for the tests, with digests and signers checked
//! by eth-account (an implementation we did not write).

use crate::eth_account_py;
use alloy_primitives::{Address, B256};
use serde_json::{json, Value};

/// The `EIP712Domain` type of `domain`: its fields in the standard order.
pub fn domain_types(domain: &Value) -> Value {
    let mut v = vec![];
    for (k, t) in [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]
    {
        if domain.get(k).is_some() {
            v.push(json!({"name": k, "type": t}));
        }
    }
    Value::Array(v)
}

/// Typed data as `eth_signTypedData_v4` takes it.
pub fn typed(domain: Value, mut types: Value, primary: &str, message: Value) -> Value {
    types["EIP712Domain"] = domain_types(&domain);
    json!({"types": types, "primaryType": primary, "domain": domain, "message": message})
}

const ETH_ACCOUNT_TYPED: &str = r#"
import sys, json
from eth_account import Account
from eth_account.messages import encode_typed_data, _hash_eip191_message
sm = encode_typed_data(full_message=json.loads(sys.argv[1]))
h = _hash_eip191_message(sm).hex()
print(h if h.startswith("0x") else "0x" + h)
print(Account.recover_message(sm, signature=sys.argv[2]))
"#;

/// (digest, signer) of typed data and its signature (hex), by eth-account.
pub fn eth_account_typed(td: &Value, sig: &str) -> (B256, Address) {
    let out = eth_account_py(ETH_ACCOUNT_TYPED, &[&td.to_string(), sig]);
    let mut lines = out.lines();
    (lines.next().unwrap().parse().unwrap(), lines.next().unwrap().parse().unwrap())
}

/// Python recovering the signer of an EIP-191 personal message: argv[1] the message (hex),
/// argv[2] the signature.
pub const ETH_ACCOUNT_MSG: &str = r#"
import sys
from eth_account import Account
from eth_account.messages import encode_defunct
print(Account.recover_message(encode_defunct(hexstr=sys.argv[1]), signature=sys.argv[2]))
"#;

/// The signer of personal message `msg` under signature `sig` (hex), by eth-account.
pub fn eth_account_message(msg: &[u8], sig: &str) -> Address {
    eth_account_py(ETH_ACCOUNT_MSG, &[&format!("0x{}", hex::encode(msg)), sig]).parse().unwrap()
}
