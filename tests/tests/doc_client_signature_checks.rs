//! `tests/py/doc_client.py` is the client docs/api.md §8 points third-party clients to: its
//! `recover` must refuse what the enclave never makes and a host can rewrite a signature
//! into — the high-s twin (n − s, the other parity: it recovers to the same key, but no
//! node or OpenZeppelin `ECDSA` contract takes it) and a `v` of 0/1 (or anything but 27 and
//! 28) — and its `ours` must refuse such a `v` too (a review of the client helpers,
//! 2026-12-07, found both accepted).

use bridle_tests::*;

#[test]
fn the_documented_client_refuses_a_high_s_twin_and_a_v_other_than_27_or_28() {
    pyclient::require("eth_account, eth_abi, jsonschema, openapi_spec_validator", "the documented client's modules");
    let py = r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("doc_client", sys.argv[1])
dc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dc)
from eth_account import Account
from eth_account.messages import encode_defunct, _hash_eip191_message
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
acct = Account.from_key(b"\x05" * 32)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

def forms(digest):
    sig = Account._sign_hash(digest, acct.key).signature
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return {
        "genuine": "0x" + sig.hex(),
        "high_s_twin": "0x" + (r + (N - s).to_bytes(32, "big") + bytes([55 - v])).hex(),
        "v_0_1": "0x" + (sig[:64] + bytes([v - 27])).hex(),
        "v_29_30": "0x" + (sig[:64] + bytes([v + 2])).hex(),
    }

def attempt(digest, signature):
    try:
        return "accepted" if dc.recover(digest, signature) == acct.address else "other signer"
    except Exception:
        return "refused"

digest = _hash_eip191_message(encode_defunct(primitive=b"gm"))
out = [f"{name}:{attempt(digest, sig)}" for name, sig in forms(digest).items()]
# ours(): the raw transaction check takes v as 27/28 only.
tx = {"type": 2, "chainId": 1, "nonce": 0, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1, "gas": 21000,
      "to": "0x000000000000000000000000000000000000dEaD", "value": 1, "data": b"", "accessList": []}
signed = Account.sign_transaction(tx, acct.key)
digest = serializable_unsigned_transaction_from_dict(tx).hash()
sig = Account._sign_hash(digest, acct.key).signature
raw = "0x" + signed.raw_transaction.hex()
out.append(f"ours_genuine:{dc.ours(tx, '0x' + sig.hex(), raw)}")
out.append(f"ours_v_0_1:{dc.ours(tx, '0x' + (sig[:64] + bytes([sig[64] - 27])).hex(), raw)}")
print(" ".join(out))
"#;
    let path = repo_root().join("tests/py/doc_client.py");
    let out = std::process::Command::new("python3").arg("-c").arg(py).arg(&path).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        text.trim(),
        "genuine:accepted high_s_twin:refused v_0_1:refused v_29_30:refused ours_genuine:True ours_v_0_1:False",
        "{text}"
    );
}
