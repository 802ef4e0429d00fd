"""Bridle as a remote signer for web3.py / eth-account.

The session key lives in the Bridle enclave; the agent holds only its *agent identity
key*. Every signing request carries a stamp that only this agent can make:

    key   = HKDF-SHA256(salt="bridle/stamp/v1",
                        ikm=x-coordinate of ECDH(agent secret, enclave identity public key),
                        info=session address (20 bytes) || agent address (20 bytes))
    mac   = HMAC-SHA256(key, "bridle/stamp/v1" || session (20) || kind (1 byte, 1 = transaction)
                             || digest (32) || nonce (16) || timestamp (u64 big endian))
    header Bridle-Stamp: v1.<nonce hex>.<timestamp>.<mac hex>

For a transaction the digest is its ordinary signing hash (keccak256 of the EIP-2718
unsigned payload), so the stamp commits to every field: the host in between can change
none of them. The enclave checks the stamp and the owner's policy, and signs or refuses.

Usage (see agent.py for a complete program):

    from web3 import Web3
    from bridle_signer import BridleSigner

    signer = BridleSigner("http://127.0.0.1:8547", agent_key="agent.key", session="0x...",
                          enclave_public_key="0x02...")   # the attested enclave identity key
    w3 = Web3(Web3.HTTPProvider("http://127.0.0.1:8545"))
    w3.middleware_onion.inject(signer.middleware(), layer=0)
    token.functions.transfer(to, amount).transact({"from": signer.address})

or, without the middleware, exactly like a local eth-account account:

    signed = signer.sign_transaction(tx_dict)        # tx_dict has nonce, gas, fees, chainId
    w3.eth.send_raw_transaction(signed.raw_transaction)

The enclave identity key is pinned: take it from an attestation you verified (`bridle trust
attest` records it; `bridle trust show --host URL --public-key` prints it). It is checked
against the host's status before the stamp key is derived; `trust_on_first_use=True`
takes the host's word instead (a warning says so). Every signature is then checked to be
the session's over our own digest, and the raw transaction to be ours.

Bridle fills nothing in: the transaction must carry its chain id, nonce, gas and fees
(web3.py's middleware fills them from the node before asking Bridle, as it does for a
local key). A refusal raises BridleError with Bridle's code (e.g. "spend_cap"), the rule
that failed and the reason.

Requires: cryptography, eth-account (and web3 for the middleware).
"""

from __future__ import annotations

import json
import os
import secrets
import time
import warnings
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account import Account
from eth_keys import keys as eth_keys
from eth_utils import keccak, to_bytes, to_checksum_address

# eth-account's own path from a transaction dict to its signing hash and its signed
# encoding: the same functions Account.sign_transaction uses.
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)

__all__ = [
    "BridleError",
    "BridleSigner",
    "SignedTransaction",
    "KIND_TRANSACTION",
    "load_private_key",
    "stamp_key",
    "make_stamp",
    "transaction_digest",
]

DOMAIN = b"bridle/stamp/v1"
KIND_TRANSACTION = 1
KIND_TYPED_DATA = 2
KIND_MESSAGE = 3
# Half the secp256k1 group order: a signature's s above it is the high-s twin (EIP-2).
SECP256K1_N_HALF = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

# Fields of an Ethereum JSON transaction that Bridle's eth_signTransaction accepts.
_QUANTITY_FIELDS = {
    "gas": "gas",
    "gasLimit": "gas",
    "gasPrice": "gasPrice",
    "maxFeePerGas": "maxFeePerGas",
    "maxPriorityFeePerGas": "maxPriorityFeePerGas",
    "value": "value",
    "nonce": "nonce",
    "chainId": "chainId",
    "type": "type",
}


class BridleError(Exception):
    """A refusal or error from Bridle: `code` is Bridle's stable code (e.g. "spend_cap"),
    `rule` the policy rule that failed (if any), `reason` the human reason, and
    `rpc_code` the JSON-RPC error code (-32003 for policy denials). `from_host`: the host's
    answer — the enclave signs no refusal, so it is the host's word (a host may answer
    `spend_cap` and keep a signature it was given); otherwise this helper's own check
    failed (`bad_signature`, `enclave_mismatch`, ...)."""

    def __init__(
        self,
        code: str,
        reason: str,
        rule: Optional[str] = None,
        rpc_code: Optional[int] = None,
        from_host: bool = False,
    ):
        self.code = code
        self.reason = reason
        self.rule = rule
        self.rpc_code = rpc_code
        self.from_host = from_host
        where = f" (rule {rule})" if rule else ""
        what = "bridle refused (the host's word; refusals are not signed)" if from_host else "bridle"
        super().__init__(f"{what}: {code}{where}: {reason}")


@dataclass(frozen=True)
class SignedTransaction:
    """Same attribute names as eth-account's SignedTransaction."""

    raw_transaction: bytes
    hash: bytes
    r: int
    s: int
    v: int

    # eth-account < 0.13 spelling, for older web3.py code.
    @property
    def rawTransaction(self) -> bytes:  # noqa: N802
        return self.raw_transaction


#: The most of one host reply read: a host cannot make the agent hold more.
MAX_REPLY_BYTES = 4 << 20


def _read_bounded(r) -> bytes:
    """A reply's body, read up to MAX_REPLY_BYTES (a larger one is refused, not read)."""
    body = r.read(MAX_REPLY_BYTES + 1)
    if len(body) > MAX_REPLY_BYTES:
        raise BridleError("too_large", f"the host's reply is over {MAX_REPLY_BYTES} bytes: not read")
    return body


def load_private_key(key: Union[str, bytes, os.PathLike]) -> bytes:
    """A 32-byte secp256k1 private key from raw bytes, a 0x-hex string, a file holding
    0x-hex, or a key file written by `bridle agent keygen` (JSON with `private_key`)."""
    if isinstance(key, bytes) and len(key) == 32:
        return key
    text = os.fspath(key) if isinstance(key, os.PathLike) else key
    if isinstance(text, bytes):
        text = text.decode()
    if not _is_hex_key(text) and os.path.exists(text):
        with open(text, encoding="utf-8") as f:
            content = f.read().strip()
        if content.startswith("{"):
            content = json.loads(content)["private_key"]
        text = content
    if not _is_hex_key(text):
        raise ValueError("agent key must be 32 bytes of hex, or a key file path")
    return bytes.fromhex(text.strip().removeprefix("0x"))


def _is_hex_key(s: str) -> bool:
    h = s.strip().removeprefix("0x")
    if len(h) != 64:
        return False
    try:
        bytes.fromhex(h)
        return True
    except ValueError:
        return False


def _addr20(a: Union[str, bytes]) -> bytes:
    b = to_bytes(hexstr=a) if isinstance(a, str) else bytes(a)
    if len(b) != 20:
        raise ValueError(f"not a 20-byte address: {a!r}")
    return b


def _key_bytes(k: Union[str, bytes]) -> bytes:
    return bytes.fromhex(k.strip().removeprefix("0x")) if isinstance(k, str) else bytes(k)


def _key_address(pub: bytes) -> str:
    """The address of a secp256k1 public key (SEC1, compressed or not)."""
    if len(pub) == 33:
        key = eth_keys.PublicKey.from_compressed_bytes(pub)
    elif len(pub) == 65 and pub[0] == 4:
        key = eth_keys.PublicKey(pub[1:])
    else:
        raise ValueError(f"not a SEC1 secp256k1 public key: {pub.hex()}")
    return key.to_checksum_address()


def stamp_key(agent_secret: bytes, enclave_public_key: bytes, session: Union[str, bytes], agent: Union[str, bytes]) -> bytes:
    """The per-session HMAC key: HKDF-SHA256 over the ECDH x-coordinate."""
    sk = ec.derive_private_key(int.from_bytes(agent_secret, "big"), ec.SECP256K1())
    pk = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), enclave_public_key)
    shared_x = sk.exchange(ec.ECDH(), pk)  # the x-coordinate, 32 bytes
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=DOMAIN,
        info=_addr20(session) + _addr20(agent),
    ).derive(shared_x)


def make_stamp(
    key: bytes,
    session: Union[str, bytes],
    kind: int,
    digest: bytes,
    nonce: Optional[bytes] = None,
    timestamp: Optional[int] = None,
) -> str:
    """The `Bridle-Stamp` header value for one request."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    nonce = secrets.token_bytes(16) if nonce is None else nonce
    if len(nonce) != 16:
        raise ValueError("nonce must be 16 bytes")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    m = hmac.HMAC(key, hashes.SHA256())
    m.update(DOMAIN + _addr20(session) + bytes([kind]) + digest + nonce + ts.to_bytes(8, "big"))
    return f"v1.{nonce.hex()}.{ts}.{m.finalize().hex()}"


def _clean_tx(tx: Mapping[str, Any]) -> dict:
    """A transaction dict as eth-account takes it: no `from`, `gasLimit` spelled `gas`,
    `input` spelled `data`, hex-string quantities turned into ints."""
    out: dict = {}
    for k, v in tx.items():
        if v is None or k == "from":
            continue
        if k == "gasLimit":
            k = "gas"
        if k == "input":
            k = "data"
        if k in _QUANTITY_FIELDS and isinstance(v, str):
            v = int(v, 16) if v.startswith(("0x", "0X")) else int(v)
        out[k] = v
    if "to" in out and out["to"] in ("", b"", "0x"):
        del out["to"]
    if out.get("type") == 0:
        del out["type"]  # eth-account spells a legacy transaction without a type
    return out


def transaction_digest(tx: Mapping[str, Any]) -> bytes:
    """The signing hash of a transaction dict (keccak256 of its EIP-2718 unsigned payload;
    EIP-155 for legacy), computed by eth-account."""
    return bytes(serializable_unsigned_transaction_from_dict(_clean_tx(tx)).hash())


def _hex(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    if hasattr(v, "hex") and not isinstance(v, str):  # HexBytes
        h = v.hex()
        return h if h.startswith("0x") else "0x" + h
    s = str(v)
    return s if s.startswith("0x") else "0x" + s


def _to_rpc_tx(tx: Mapping[str, Any], session: str) -> dict:
    """The Ethereum JSON form of a cleaned transaction dict, for eth_signTransaction."""
    out: dict = {"from": session}
    for k, v in tx.items():
        if k in _QUANTITY_FIELDS:
            out[_QUANTITY_FIELDS[k]] = hex(int(v))
        elif k == "to":
            out["to"] = to_checksum_address(v)
        elif k == "data":
            out["data"] = _hex(v)
        elif k == "accessList":
            out["accessList"] = [
                {
                    "address": to_checksum_address(e["address"]),
                    "storageKeys": [_hex(s) for s in e.get("storageKeys", [])],
                }
                for e in v
            ]
        else:
            raise ValueError(f"transaction field {k} is not supported by Bridle's eth_signTransaction")
    return out


class BridleSigner:
    """A remote signer for one Bridle session, usable like an eth-account LocalAccount
    (`.address`, `.sign_transaction(tx)`) and as web3.py middleware (`.middleware()`).

    host:               the Bridle host's base URL, e.g. "http://127.0.0.1:8547".
    agent_key:          the agent identity key: bytes, 0x-hex, or a key file path.
    session:            the session address the owner granted (the transaction's `from`).
    enclave_public_key: the enclave identity key (SEC1 hex or bytes) from an attestation you
                        verified (`bridle trust attest`, `bridle verify attestation`).
                        Required unless trust_on_first_use; checked against the identity
                        the host's enclave reports now (BridleError "enclave_mismatch"
                        when it differs: the enclave restarted, or another one answers).
    trust_on_first_use: accept the identity the host reports (its word, not verified).
    clock_offset:       seconds added to this machine's clock in stamps (tests move the
                        development enclave's clock; real agents leave it at 0).
    """

    def __init__(
        self,
        host: str,
        agent_key: Union[str, bytes, os.PathLike],
        session: str,
        enclave_public_key: Union[str, bytes, None] = None,
        clock_offset: int = 0,
        timeout: float = 30.0,
        *,
        trust_on_first_use: bool = False,
    ):
        self.host = host.rstrip("/")
        self._secret = load_private_key(agent_key)
        self.agent_address = Account.from_key(self._secret).address
        self.address = to_checksum_address(session)
        self.clock_offset = int(clock_offset)
        self.timeout = timeout
        reported = _key_bytes(self._get("/v1/status")["identity_public_key"])
        if enclave_public_key is None or enclave_public_key == "":
            if not trust_on_first_use:
                raise ValueError(
                    "enclave_public_key is required: pin the enclave identity key from an attestation you verified "
                    "(`bridle trust attest`, then `bridle trust show --host URL --public-key`), or pass "
                    "trust_on_first_use=True to accept the identity the host reports (not verified)"
                )
            warnings.warn(
                f"bridle: trusting enclave identity {_key_address(reported)} on the host's word "
                "(trust_on_first_use); pin it in production",
                stacklevel=2,
            )
            enclave_public_key = reported
        pinned = _key_bytes(enclave_public_key)
        if _key_address(pinned) != _key_address(reported):
            raise BridleError(
                "enclave_mismatch",
                f"the host reports enclave identity {_key_address(reported)}, not the pinned {_key_address(pinned)}: "
                "the enclave restarted (a new identity; its sessions are lost) or the host serves another enclave; "
                "verify it and re-attest",
            )
        self.enclave_public_key = pinned
        self._key = stamp_key(self._secret, self.enclave_public_key, self.address, self.agent_address)
        self._id = 0

    # -- transport ---------------------------------------------------------------------

    def _get(self, path: str) -> dict:
        try:
            with urllib.request.urlopen(self.host + path, timeout=self.timeout) as r:
                return json.loads(_read_bounded(r))
        except urllib.error.HTTPError as e:
            body = _read_bounded(e)
            try:
                err = json.loads(body)["error"]
                raise BridleError(err.get("code", "error"), err.get("reason", ""), err.get("rule"), from_host=True) from None
            except (ValueError, KeyError, TypeError):
                raise BridleError("http_error", f"GET {path}: HTTP {e.code}: {body[:200]!r}") from None

    def rpc(self, method: str, params: list, stamp: Optional[str] = None) -> Any:
        """One JSON-RPC call to the host's /rpc with the Bridle headers."""
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json", "Bridle-Session": self.address}
        if stamp is not None:
            headers["Bridle-Stamp"] = stamp
        req = urllib.request.Request(self.host + "/rpc", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                reply = json.loads(_read_bounded(r))
        except urllib.error.HTTPError as e:
            raw = _read_bounded(e)
            try:
                reply = json.loads(raw)
            except ValueError:
                raise BridleError("http_error", f"{method}: HTTP {e.code}: {raw[:200]!r}") from None
            if "error" not in reply:
                raise BridleError("http_error", f"{method}: HTTP {e.code}: {reply}")
        if "error" in reply:
            err = reply["error"]
            if isinstance(err, dict):
                data = err.get("data") or {}
                if not isinstance(data, dict):
                    data = {}
                raise BridleError(
                    data.get("code") or err.get("message", "error"),
                    data.get("reason") or err.get("message", ""),
                    data.get("rule"),
                    err.get("code"),
                    from_host=True,
                )
            raise BridleError("error", str(err), from_host=True)
        return reply["result"]

    # -- signing -----------------------------------------------------------------------

    def stamp(self, kind: int, digest: bytes) -> str:
        return make_stamp(self._key, self.address, kind, digest, timestamp=int(time.time()) + self.clock_offset)

    def accounts(self) -> list:
        """eth_accounts through the host: [session] when the host knows it as active."""
        return self.rpc("eth_accounts", [])

    def sign_transaction(self, transaction_dict: Mapping[str, Any]) -> SignedTransaction:
        """Have the enclave sign `transaction_dict` under the session's policy.

        The dict is what you would give eth-account's `Account.sign_transaction`: chainId,
        nonce, gas and fees must be set. Raises BridleError when Bridle refuses."""
        frm = transaction_dict.get("from")
        if frm is not None and to_checksum_address(frm) != self.address:
            raise ValueError(f"from {frm} is not the Bridle session {self.address}")
        tx = _clean_tx(transaction_dict)
        if "chainId" not in tx:
            raise ValueError("a transaction for Bridle names its chainId (the enclave signs EIP-155 transactions only)")
        unsigned = serializable_unsigned_transaction_from_dict(tx)
        digest = bytes(unsigned.hash())
        result = self.rpc("eth_signTransaction", [_to_rpc_tx(tx, self.address)], self.stamp(KIND_TRANSACTION, digest))
        raw = bytes.fromhex(result["raw"].removeprefix("0x"))
        signed = result["tx"]
        r, s = int(signed["r"], 16), int(signed["s"], 16)
        # The enclave signs with low s only (EIP-2): the high-s twin recovers alike, but no
        # node accepts it (a host returning one withholds the transaction).
        if s > SECP256K1_N_HALF:
            raise BridleError("bad_signature", "the signature's s is in the upper half of the curve order (EIP-2): not the enclave's")
        typed = "type" in tx or "maxFeePerGas" in tx or "accessList" in tx
        if typed:
            v = int(signed.get("yParity", signed["v"]), 16)
            parity = v
        else:
            # v as EIP-155 makes it from *our* chain id: the host's v could name another
            # chain (or none) with a raw transaction to match.
            host_v = int(signed["v"], 16)
            parity = (host_v - 35) % 2 if host_v >= 35 else host_v - 27
            if parity not in (0, 1):
                raise BridleError("bad_signature", f"v = {host_v} is no signature parity")
            v = int(tx["chainId"]) * 2 + 35 + parity
        # Trust nothing from the host: the signature must be the session's over *our*
        # digest, and the raw transaction exactly ours with that signature.
        sig = eth_keys.Signature(vrs=(parity, r, s))
        signer = sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
        if signer != self.address:
            raise BridleError("bad_signature", f"signature recovers to {signer}, not the session {self.address}")
        expected_raw = bytes(encode_transaction(unsigned, (v, r, s)))
        if expected_raw != raw:
            raise BridleError("bad_signature", "the raw transaction from the host is not the transaction we asked for")
        return SignedTransaction(raw_transaction=raw, hash=keccak(raw), r=r, s=s, v=v)

    # -- web3.py ------------------------------------------------------------------------

    def middleware(self):
        """web3.py (v7) middleware: `eth_sendTransaction` from the session is filled from
        the node (nonce, gas, fees, chain id), signed by Bridle, and sent as
        `eth_sendRawTransaction`; other calls pass through. Works with Web3 and AsyncWeb3.
        Inject with `w3.middleware_onion.inject(signer.middleware(), layer=0)`."""
        import asyncio

        from web3._utils.async_transactions import async_fill_nonce, async_fill_transaction_defaults
        from web3._utils.transactions import fill_nonce, fill_transaction_defaults
        from web3.middleware.base import Web3Middleware
        from web3.middleware.signing import format_transaction

        signer = self

        def ours(params) -> bool:
            frm = params[0].get("from") if params and isinstance(params[0], Mapping) else None
            return frm is not None and to_checksum_address(frm) == signer.address

        class BridleSignMiddleware(Web3Middleware):
            def request_processor(self, method, params):
                if method != "eth_sendTransaction" or not ours(params):
                    return method, params
                tx = format_transaction(dict(params[0]))
                filled = fill_nonce(self._w3, fill_transaction_defaults(self._w3, tx))
                raw = signer.sign_transaction(filled).raw_transaction
                return "eth_sendRawTransaction", ["0x" + raw.hex()]

            async def async_request_processor(self, method, params):
                if method != "eth_sendTransaction" or not ours(params):
                    return method, params
                tx = format_transaction(dict(params[0]))
                filled = await async_fill_transaction_defaults(self._w3, tx)
                filled = await async_fill_nonce(self._w3, filled)
                signed = await asyncio.to_thread(signer.sign_transaction, filled)
                return "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]

        return BridleSignMiddleware
