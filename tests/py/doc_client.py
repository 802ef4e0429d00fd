"""A Bridle agent client written from docs/api.md alone, checked against a live host.

Uses eth-account (digests, recovery), `cryptography` (ECDH, HKDF) and the standard library
(HMAC, HTTP); nothing from the repository. Driven by tests/tests/api_docs.rs, which starts
an enclave and a host and grants a session; reads a JSON case on stdin:
{host, session, key_file, identity_public_key, chain_id}
and prints one JSON object. Every reply is validated against the host's /openapi.json
(itself validated with openapi-spec-validator); any failed check raises.

The section numbers (§) are docs/api.md's.
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

import jsonschema
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account._utils.legacy_transactions import encode_transaction, serializable_unsigned_transaction_from_dict
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from eth_utils import keccak, to_checksum_address
from openapi_spec_validator import validate as validate_spec

DEAD = "0x000000000000000000000000000000000000dEaD"
ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
KIND = {"transaction": 1, "typed_data": 2, "message": 3, "user_operation": 4}  # §5
DOMAIN = b"bridle/stamp/v1"
CHECKED: list = []


class Host:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.doc = None

    def request(self, method: str, path: str, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return status, (json.loads(text) if text else None)

    def check(self, method: str, route: str, path: str, body=None, headers=None, want=None):
        """Call, then validate the reply against the OpenAPI document's schema for it."""
        status, reply = self.request(method, path, body, headers)
        if want is not None:
            assert status == want, f"{method} {path}: HTTP {status}, wanted {want}: {reply}"
        responses = self.doc["paths"][route][method.lower()]["responses"]
        spec = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        assert spec is not None, f"{method} {route}: HTTP {status} is not documented"
        schema = spec["content"]["application/json"]["schema"]
        root = {**schema, "components": self.doc["components"]}
        jsonschema.Draft202012Validator(root).validate(reply)
        CHECKED.append(f"{method} {route} {status}")
        return status, reply


# §4: the stamp key and the MAC.
def stamp_key(agent_secret: bytes, identity_public_key: bytes, session: str, agent: str) -> bytes:
    priv = ec.derive_private_key(int.from_bytes(agent_secret, "big"), ec.SECP256K1())
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), identity_public_key)
    shared = priv.exchange(ec.ECDH(), peer)  # the x-coordinate, 32 bytes
    info = bytes.fromhex(session[2:]) + bytes.fromhex(agent[2:])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=DOMAIN, info=info).derive(shared)


def stamp(key: bytes, session: str, kind: int, digest: bytes, timestamp=None, nonce=None) -> dict:
    nonce = nonce or os.urandom(16)
    timestamp = int(time.time()) if timestamp is None else timestamp
    msg = DOMAIN + bytes.fromhex(session[2:]) + bytes([kind]) + digest + nonce + timestamp.to_bytes(8, "big")
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    return {"nonce": nonce.hex(), "timestamp": timestamp, "mac": mac.hex()}


def header(s: dict) -> str:
    return f"v1.{s['nonce']}.{s['timestamp']}.{s['mac']}"


def h(b: bytes) -> str:
    return "0x" + b.hex()


# §5/§8: half the secp256k1 group order. The enclave signs with low s only (EIP-2).
SECP256K1_N_HALF = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def recover(digest: bytes, signature: str) -> str:
    """§5/§8: the signer of a 65-byte `r ‖ s ‖ v` signature over `digest`, checked to be of
    the form the enclave makes: `v` 27 or 28 (not 0/1, nor an EIP-155 v) and `s` in the lower
    half of the curve order. A host could hand back the high-s twin (n − s, the other
    parity), which recovers to the same key but no node or contract accepts (EIP-2,
    OpenZeppelin's ECDSA), or rewrite `v`: either withholds a usable signature."""
    sig = bytes.fromhex(signature[2:])
    if len(sig) != 65:
        raise ValueError(f"a signature is 65 bytes, not {len(sig)}")
    s, v = int.from_bytes(sig[32:64], "big"), sig[64]
    if v not in (27, 28):
        raise ValueError(f"v = {v}: the enclave's v is 27 or 28")
    if not 0 < s <= SECP256K1_N_HALF:
        raise ValueError("s is in the upper half of the curve order (EIP-2): not the enclave's")
    return Account._recover_hash(digest, signature=sig)


def ours(tx: dict, signature: str, raw: str) -> bool:
    """§6/§8: the raw transaction is ours, byte for byte: our own transaction encoded with
    the signature (which must recover to the session over our digest). Recovering the raw
    transaction's signer is not enough: an earlier transaction of the session, withheld by a
    host, recovers to the session too."""
    sig = bytes.fromhex(signature[2:])
    if len(sig) != 65 or sig[64] not in (27, 28):
        return False
    r, s, parity = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64] - 27
    v = parity if tx.get("type") == 2 else tx["chainId"] * 2 + 35 + parity
    return encode_transaction(serializable_unsigned_transaction_from_dict(tx), (v, r, s)) == bytes.fromhex(raw[2:])


def main() -> None:
    case = json.load(sys.stdin)
    host = Host(case["host"])
    session = to_checksum_address(case["session"])
    chain_id = case["chain_id"]

    # The OpenAPI document: valid OpenAPI 3.1, and every reply below matches it.
    status, doc = host.request("GET", "/openapi.json")
    assert status == 200, doc
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    validate_spec(doc)
    host.doc = doc
    host.check("GET", "/health", "/health", want=200)

    # §2: the key file.
    kf = json.load(open(case["key_file"]))
    assert kf["kind"] == "agent" and kf["public_key"].startswith("0x0")
    secret = bytes.fromhex(kf["private_key"][2:])
    agent = Account.from_key(secret).address
    assert agent == to_checksum_address(kf["address"])

    # §3: the identity key, compared with the pinned one.
    _, st = host.check("GET", "/v1/status", "/v1/status", want=200)
    assert st["identity_public_key"].lower() == case["identity_public_key"].lower(), st
    identity = bytes.fromhex(st["identity_public_key"][2:])
    key = stamp_key(secret, identity, session, agent)

    def sign(payload: dict, kind: str, digest: bytes, want=200, **kw):
        s = stamp(key, session, KIND[kind], digest, **kw)
        body = {"session": session, "payload": payload, "stamp": s}
        return s, body, host.check("POST", "/v1/sign", "/v1/sign", body, want=want)[1]

    wei = 10**15  # 0.001 ETH per transfer
    spent = 0

    # §5/§6: EIP-1559 transaction.
    tx = {"type": 2, "chainId": chain_id, "nonce": 0, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9,
          "gas": 21000, "to": DEAD, "value": wei, "data": b"", "accessList": []}
    digest = serializable_unsigned_transaction_from_dict(tx).hash()
    payload = {"transaction": {"eip1559": {
        "chain_id": chain_id, "nonce": 0, "max_fee_per_gas": 2 * 10**9, "max_priority_fee_per_gas": 10**9,
        "gas_limit": 21000, "to": DEAD, "value": hex(wei), "data": "0x", "access_list": []}}}
    s1, body1, r = sign(payload, "transaction", digest)
    assert r["digest"] == h(digest), r
    assert recover(digest, r["signature"]) == session
    assert ours(tx, r["signature"], r["raw_transaction"]), r
    spent += wei
    # Asking again with the same stamp: the same signature, charged once (§4).
    _, again = host.check("POST", "/v1/sign", "/v1/sign", body1, want=200)
    assert again["signature"] == r["signature"], (again, r)

    # Legacy EIP-155 transaction.
    ltx = {"chainId": chain_id, "nonce": 1, "gasPrice": 2 * 10**9, "gas": 21000, "to": DEAD, "value": wei, "data": b""}
    digest = serializable_unsigned_transaction_from_dict(ltx).hash()
    payload = {"transaction": {"legacy": {"chain_id": chain_id, "nonce": 1, "gas_price": 2 * 10**9,
                                          "gas_limit": 21000, "to": DEAD, "value": hex(wei), "data": "0x"}}}
    _, _, r = sign(payload, "transaction", digest)
    assert r["digest"] == h(digest) and recover(digest, r["signature"]) == session
    assert ours(ltx, r["signature"], r["raw_transaction"]), r
    spent += wei

    # Typed data (EIP-712).
    td = {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                      {"name": "chainId", "type": "uint256"},
                                      {"name": "verifyingContract", "type": "address"}],
                    "Mail": [{"name": "contents", "type": "string"}]},
          "primaryType": "Mail",
          "domain": {"name": "Doc Client", "version": "1", "chainId": chain_id,
                     "verifyingContract": "0x000000000000000000000000000000000000d0c5"},
          "message": {"contents": "hello"}}
    digest = _hash_eip191_message(encode_typed_data(full_message=td))
    _, _, r = sign({"typed_data": json.dumps(td)}, "typed_data", digest)
    assert r["digest"] == h(digest) and recover(digest, r["signature"]) == session
    assert r["raw_transaction"] is None

    # Message (EIP-191).
    digest = _hash_eip191_message(encode_defunct(primitive=b"gm"))
    s_msg, _, r = sign({"message": h(b"gm")}, "message", digest)
    assert r["digest"] == h(digest) and recover(digest, r["signature"]) == session

    # User operation (EntryPoint v0.7): SimpleAccount execute(DEAD, wei, "").
    call_data = bytes.fromhex("b61d27f6") + abi_encode(["address", "uint256", "bytes"], [DEAD, wei, b""])
    sender = "0x" + "11" * 20
    op = {"chain_id": chain_id, "entry_point": ENTRY_POINT_V07, "sender": sender, "nonce": "0x0",
          "call_data": h(call_data), "call_gas_limit": 100000, "verification_gas_limit": 200000,
          "pre_verification_gas": hex(50000), "max_fee_per_gas": 2 * 10**9, "max_priority_fee_per_gas": 10**9}
    u128 = lambda hi, lo: hi.to_bytes(16, "big") + lo.to_bytes(16, "big")  # noqa: E731
    inner = abi_encode(
        ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
        [sender, 0, keccak(b""), keccak(call_data), u128(200000, 100000), 50000, u128(10**9, 2 * 10**9), keccak(b"")],
    )
    user_op_hash = keccak(abi_encode(["bytes32", "address", "uint256"], [keccak(inner), ENTRY_POINT_V07, chain_id]))
    _, _, r = sign({"user_operation": op}, "user_operation", user_op_hash)
    assert r["digest"] == h(user_op_hash), (r, h(user_op_hash))
    assert recover(_hash_eip191_message(encode_defunct(primitive=user_op_hash)), r["signature"]) == session
    # Its value, and its maximum gas cost: without a paymaster the account pays that to
    # whoever bundles it, charged as native spend (RULES §3).
    spent += wei + (100000 + 200000 + 50000) * 2 * 10**9

    # §4: a stale stamp is `replayed` (401); a bad MAC `unauthenticated` (401).
    digest = _hash_eip191_message(encode_defunct(primitive=b"gm"))
    _, _, e = sign({"message": h(b"gm")}, "message", digest, want=401, timestamp=int(time.time()) - 120)
    assert e["error"]["code"] == "replayed", e
    _, _, e = sign({"message": h(b"gm")}, "message", b"\x00" * 32, want=401)
    assert e["error"]["code"] == "unauthenticated", e
    # A policy denial: 403 with the code, the rule and the numbers (§9).
    big = {"transaction": {"eip1559": {**payload_1559(chain_id, 2, 2 * 10**16)}}}
    tx2 = {"type": 2, "chainId": chain_id, "nonce": 2, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9,
           "gas": 21000, "to": DEAD, "value": 2 * 10**16, "data": b"", "accessList": []}
    _, _, e = sign(big, "transaction", serializable_unsigned_transaction_from_dict(tx2).hash(), want=403)
    assert e["error"]["code"] == "value_cap", e

    # §8: eth_signTransaction with the Bridle-Stamp header.
    tx3 = {**tx2, "nonce": 3, "value": wei}
    digest = serializable_unsigned_transaction_from_dict(tx3).hash()
    s = stamp(key, session, KIND["transaction"], digest)
    rpc_tx = {"from": session, "to": DEAD, "gas": hex(21000), "maxFeePerGas": hex(2 * 10**9),
              "maxPriorityFeePerGas": hex(10**9), "value": hex(wei), "data": "0x", "nonce": hex(3),
              "chainId": hex(chain_id), "type": "0x2"}
    _, rep = host.check("POST", "/rpc", "/rpc", {"jsonrpc": "2.0", "id": 7, "method": "eth_signTransaction",
                                                  "params": [rpc_tx]},
                        headers={"Bridle-Session": session, "Bridle-Stamp": header(s)}, want=200)
    assert "error" not in rep, rep
    res = rep["result"]
    t = res["tx"]
    rpc_sig = "0x" + int(t["r"], 16).to_bytes(32, "big").hex() + int(t["s"], 16).to_bytes(32, "big").hex() + \
        bytes([27 + int(t["yParity"], 16)]).hex()
    assert recover(digest, rpc_sig) == session
    assert ours(tx3, rpc_sig, res["raw"]), res
    assert res["tx"]["hash"] == h(keccak(bytes.fromhex(res["raw"][2:]))), res
    assert res["tx"]["type"] == "0x2" and res["tx"]["nonce"] == "0x3" and "yParity" in res["tx"], res
    spent += wei

    # §7: the native cap's spend, a hex quantity, is what was signed (the repeat charged once).
    nonce = os.urandom(32).hex()
    _, st = host.check("GET", "/v1/status", f"/v1/status?session={session}&nonce=0x{nonce}", want=200)
    caps = [c for c in st["session"]["caps"] if c["symbol"] == "ETH"]
    assert caps and caps[0]["spent"].startswith("0x"), st["session"]["caps"]
    assert int(caps[0]["spent"], 16) == spent, (caps, spent)
    # §7: the receipt's nonce binds the session asked about.
    bound = keccak(b"bridle/status/v1" + bytes.fromhex(nonce) + bytes.fromhex(session[2:]))
    assert st["receipt"]["nonce"] == h(bound), (st["receipt"], h(bound))
    host.check("GET", "/v1/sessions/{session}", f"/v1/sessions/{session}", want=200)
    host.check("GET", "/v1/sessions/{session}/allowances", f"/v1/sessions/{session}/allowances", want=200)
    host.check("GET", "/v1/attestation", f"/v1/attestation?nonce=0x{nonce}", want=200)
    host.check("GET", "/v1/audit", "/v1/audit?since=0", want=200)
    host.check("GET", "/v1/audit/head", f"/v1/audit/head?nonce=0x{nonce}", want=200)
    host.check("GET", "/v1/sessions/{session}", "/v1/sessions/0x" + "42" * 20, want=404)
    print(json.dumps({"ok": True, "spent": spent, "checked": CHECKED}))


def payload_1559(chain_id: int, nonce: int, value: int) -> dict:
    return {"chain_id": chain_id, "nonce": nonce, "max_fee_per_gas": 2 * 10**9, "max_priority_fee_per_gas": 10**9,
            "gas_limit": 21000, "to": DEAD, "value": hex(value), "data": "0x", "access_list": []}


if __name__ == "__main__":
    main()
