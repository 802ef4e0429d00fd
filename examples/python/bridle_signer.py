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
that failed and the reason. A refusal is the host's word (the enclave signs none): its text
is shown quoted, every character outside printable ASCII escaped, at most 1 KiB, and
labelled so (`from_host`); a code that is none of Bridle's is shown as `unknown`.

Every call to the host is bounded as a whole (`timeout`, 30 s by default): connecting, the
headers and the body, not each read; a reply is read up to 4 MiB, and one nested deeper
than 64 levels is refused before it is parsed.

Requires: cryptography, eth-account (and web3 for the middleware).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
import warnings
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
    "ERROR_CODES",
    "in_quotes",
    "printable",
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


#: Bridle's stable error codes (common/src/error.rs `ErrorCode`, docs/api.md §9): a host's
#: refusal is shown with its code only if it is one of these.
ERROR_CODES = frozenset(
    """unauthenticated replayed expired not_yet_valid revoked suspended unknown_session
    chain_not_allowed target_not_allowed selector_not_allowed argument_rejected
    recipient_not_allowed value_cap spend_cap rate_limited quota_exhausted gas_cap
    unlimited_approval spender_not_allowed exposure_ceiling typed_data_not_allowed
    message_not_allowed authorization_denied pending_approval denied_by_owner invalid_policy
    malformed too_large unsupported unavailable internal""".split()
)

#: The most of the host's text quoted in one error (code, rule and reason together): a
#: refusal is not signed, so what it says is shown as data, bounded (as the CLI does).
MAX_QUOTED = 1024
#: The most quoted of a code that is none of Bridle's, and of a rule.
MAX_ODD_FIELD = 128


def _escape(text: str, limit: int) -> "tuple[str, int]":
    """`text` as it is shown between double quotes: `"` and `\\` escaped, every character
    outside printable ASCII written as `\\u{…}` (nothing can close the quotes, move the
    cursor or hide text); at most `limit` bytes (whole escapes), and how many bytes (UTF-8)
    of `text` were cut."""
    out: list = []
    used = 0
    for i, c in enumerate(text):
        if c == '"' or c == "\\":
            piece = "\\" + c
        elif " " <= c <= "~":
            piece = c
        else:
            piece = "\\u{%04x}" % ord(c)
        if used + len(piece) > limit:
            return "".join(out), len(text[i:].encode("utf-8", "surrogatepass"))
        out.append(piece)
        used += len(piece)
    return "".join(out), 0


def in_quotes(text: Any, limit: int = MAX_QUOTED) -> str:
    """Text another party wrote (the host, a node) as one quoted value inside a message of
    ours: between double quotes, escaped as `_escape` does, at most `limit` bytes between
    them, what was cut said after them (the CLI's `in_quotes`). Not a string: its JSON."""
    inside, cut = _escape(_as_text(text), limit)
    return f'"{inside}"' + _cut(cut)


def _cut(n: int) -> str:
    return f" (... {n} bytes cut)" if n else ""


def printable(text: Any) -> str:
    """`text` with every character outside printable ASCII (newlines included) written as
    `\\u{…}`, and so a `\\` that begins `u{` (`\\u{005c}`: another party's literal `\\u{1b}`
    would otherwise read as one of these escapes): safe to print on one line of a terminal."""
    t = _as_text(text)
    return "".join(
        c if " " <= c <= "~" and not (c == "\\" and t.startswith("u{", i + 1)) else "\\u{%04x}" % ord(c)
        for i, c in enumerate(t)
    )


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    try:
        return json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)


class BridleError(Exception):
    """A refusal or error from Bridle.

    `from_host`: the host's answer — the enclave signs no refusal, so it is the host's word
    (a host may answer `spend_cap` and keep a signature it was given); otherwise this
    helper's own check failed (`bad_signature`, `enclave_mismatch`, `bad_reply`,
    `too_large`).

    For the host's answer every field is shown as data: `code` is Bridle's stable code (e.g.
    "spend_cap") only if the host gave one of `ERROR_CODES`, else "unknown" (the host's code,
    escaped, is `host_code`); `rule` and `reason` are the host's text escaped (every
    character outside printable ASCII as `\\u{…}`, `"` and `\\` as `\\"` and `\\\\`), 1 KiB in
    all; `rpc_code` is the JSON-RPC error code (-32003 for policy denials) when it is a
    number, `http_status` the host's HTTP status. str(e) quotes them and says whose word
    they are."""

    def __init__(
        self,
        code: str,
        reason: Any,
        rule: Any = None,
        rpc_code: Any = None,
        from_host: bool = False,
        http_status: Optional[int] = None,
    ):
        self.from_host = bool(from_host)
        self.rpc_code = rpc_code if isinstance(rpc_code, int) and not isinstance(rpc_code, bool) else None
        self.http_status = http_status
        self.host_code: Optional[str] = None
        if not self.from_host:
            # Our own words (a failed check), which quote the host's text where they hold it.
            self.code, self.reason, self.rule = code, printable(reason), None if rule is None else printable(rule)
            where = f" (rule {self.rule})" if self.rule else ""
            super().__init__(f"bridle: {self.code}{where}: {self.reason}")
            return
        left = MAX_QUOTED
        if isinstance(code, str) and code in ERROR_CODES:
            self.code, code_text = code, code
        elif code is None:
            self.code, code_text = "unknown", "unknown (no code given)"
        else:
            self.code = "unknown"
            self.host_code, cut = _escape(_as_text(code), MAX_ODD_FIELD)
            left -= len(self.host_code)
            code_text = f'unknown (the host\'s code: "{self.host_code}"' + _cut(cut) + ")"
        rule_text = ""
        self.rule = None
        if rule is not None:
            self.rule, cut = _escape(_as_text(rule), MAX_ODD_FIELD)
            left -= len(self.rule)
            rule_text = f' (rule "{self.rule}"' + _cut(cut) + ")"
        self.reason, cut = _escape(_as_text(reason if reason is not None else ""), left)
        reason_text = f'"{self.reason}"' + _cut(cut)
        super().__init__(f"bridle refused (the host's word; refusals are not signed): {code_text}{rule_text}: {reason_text}")


def _refusal(err: Any, http_status: Optional[int] = None) -> BridleError:
    """The host's error — a JSON-RPC `error` ({code, message, data: {code, rule, reason}}) or
    an HTTP error body's `error` ({code, rule, reason, message}) — as a BridleError marked
    as the host's word."""
    if not isinstance(err, dict):
        return BridleError(None, err, from_host=True, http_status=http_status)
    data = err.get("data")
    if not isinstance(data, dict):
        data = err if isinstance(err.get("code"), str) else {}
    code = data.get("code")
    reason = data.get("reason")
    if reason is None:
        reason = err.get("message", "")
    return BridleError(code, reason, data.get("rule"), err.get("code"), from_host=True, http_status=http_status)


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
# Deepest nesting of arrays and objects a reply may have: Bridle's replies nest a few levels.
# Deeper, json.loads recurses through the C stack — and py_ecc, which eth_account imports,
# raises Python's recursion limit to 100 000, so a 200 KB reply of nested brackets kills
# the process (SIGSEGV) rather than raising (a review of 2026-12-07).
MAX_REPLY_DEPTH = 64


def _nesting(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, outside strings (one pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for b in body:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_REPLY_DEPTH:
                    return deepest
        elif b in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


class _DeadlineSocket:
    """A connected socket whose every read and write may take only the time left until
    `deadline` (time.monotonic()): its timeout is set to that before each one, so a host
    that drips its reply a byte at a time cannot hold a call past the deadline (a socket
    timeout alone bounds each read, not the reply). http.client reads the status line, the
    headers and the body through `makefile`, which reads through `recv_into` here."""

    def __init__(self, sock: socket.socket, deadline: float, what: str):
        self._sock, self._deadline, self._what = sock, deadline, what

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(self._what)
        self._sock.settimeout(left)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return self._sock.recv(bufsize, flags)

    def sendall(self, data, flags: int = 0) -> None:
        self._arm()
        self._sock.sendall(data, flags)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        if "r" not in mode or "w" in mode:
            raise ValueError("only a reader is made")
        return io.BufferedReader(socket.SocketIO(self, "rb"))

    def _decref_socketios(self) -> None:  # socket.SocketIO.close calls it
        pass

    def close(self) -> None:
        # http.client closes the connection while its response still reads from it; the
        # socket itself is closed by the call that made it (`BridleSigner._call`), once done.
        pass

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


def _connect(u: urllib.parse.SplitResult, deadline: float, what: str) -> socket.socket:
    """A socket to the host, connected (and for https, through the TLS handshake) by the
    deadline: the name is resolved in a thread waited on only until then, each address gets
    only the time left, and so does the handshake (a review of 2026-12-06: each step had
    the whole timeout anew)."""

    def left() -> float:
        t = deadline - time.monotonic()
        if t <= 0:
            raise TimeoutError(what)
        return t

    port = u.port or (443 if u.scheme == "https" else 80)
    box: dict = {}

    def resolve() -> None:
        try:
            box["infos"] = socket.getaddrinfo(u.hostname, port, type=socket.SOCK_STREAM)
        except OSError as e:
            box["error"] = e

    t = threading.Thread(target=resolve, daemon=True)
    t.start()
    t.join(left())
    if t.is_alive():
        raise TimeoutError(what)
    if "error" in box:
        raise box["error"]
    last: Optional[OSError] = None
    for family, kind, proto, _, addr in box["infos"]:
        s = socket.socket(family, kind, proto)
        try:
            s.settimeout(left())
            s.connect(addr)
        except socket.timeout:
            s.close()
            raise TimeoutError(what) from None
        except OSError as e:
            s.close()
            last = e
            continue
        if u.scheme != "https":
            return s
        try:
            s.settimeout(left())
            return ssl.create_default_context().wrap_socket(s, server_hostname=u.hostname)
        except socket.timeout:
            s.close()
            raise TimeoutError(what) from None
        except BaseException:
            s.close()
            raise
    raise last or OSError(f"no address for {u.hostname}")


def _read_bounded(r: http.client.HTTPResponse) -> bytes:
    """A reply's body, read in chunks up to MAX_REPLY_BYTES (a larger one is refused, not
    read); every read is bounded by the call's deadline (`_DeadlineSocket`)."""
    body = bytearray()
    while True:
        chunk = r.read(min(64 << 10, MAX_REPLY_BYTES + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise BridleError("too_large", f"the host's reply is over {MAX_REPLY_BYTES} bytes: not read")


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


def _hex_field(v: Any) -> str:
    """A hex field of the host's reply, without its 0x: hex digits only (else ValueError)."""
    if not isinstance(v, str):
        raise TypeError("not a string")
    h = v[2:] if v[:2] in ("0x", "0X") else v
    if not h or any(c not in "0123456789abcdefABCDEF" for c in h):
        raise ValueError("not hex")
    return h


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
    timeout:            seconds one call to the host may take in all — connecting, sending,
                        the reply's headers and body (TimeoutError after them), not each read.
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
        # The agent's long-term key: needed only to derive the stamp key, never kept.
        secret = load_private_key(agent_key)
        self.agent_address = Account.from_key(secret).address
        self.address = to_checksum_address(session)
        self.clock_offset = int(clock_offset)
        self.timeout = timeout
        status = self._get("/v1/status")
        try:
            reported = bytes.fromhex(_hex_field(status["identity_public_key"]))
            _key_address(reported)
        except Exception:  # noqa: BLE001 — no key, not hex, not a point on the curve
            raise BridleError(
                "bad_reply",
                "the host's status names no enclave identity key: "
                f"{in_quotes(status.get('identity_public_key'), 200)}",
            ) from None
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
        self._key = stamp_key(secret, self.enclave_public_key, self.address, self.agent_address)
        self._id = 0

    # -- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None):
        """One HTTP exchange with the host: (status, body bytes). The whole exchange —
        connecting, sending, the status line, headers and body — ends by one deadline,
        `timeout` seconds from now (TimeoutError after it). No redirect is followed: the
        host's answer is its own."""
        what = f"{method} {path}: the host did not answer within {self.timeout} s"
        deadline = time.monotonic() + self.timeout
        u = urllib.parse.urlsplit(self.host)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"the host URL must be http:// or https://, not {in_quotes(self.host, 200)}")
        conn = http.client.HTTPConnection(u.hostname, u.port)
        sock = None
        try:
            try:
                sock = _connect(u, deadline, what)  # name, TCP and TLS within the time left
                conn.sock = _DeadlineSocket(sock, deadline, what)
                conn.request(method, u.path.rstrip("/") + path, body=body, headers=headers or {})
                r = conn.getresponse()
                return r.status, _read_bounded(r)
            except socket.timeout:  # TimeoutError: the connect, the TLS handshake or a read
                raise TimeoutError(what) from None
        finally:
            conn.close()
            if sock is not None:
                sock.close()

    def _get(self, path: str) -> dict:
        status, body = self._call("GET", path)
        reply = self._json(body, f"GET {path}", status)
        if 200 <= status < 300:
            if not isinstance(reply, dict):
                raise BridleError("bad_reply", f"GET {path}: the host's reply is no JSON object: {in_quotes(body, 200)}")
            return reply
        raise _refusal(reply.get("error") if isinstance(reply, dict) and "error" in reply else body, status)

    @staticmethod
    def _json(body: bytes, what: str, status: int) -> Any:
        try:
            if _nesting(body) > MAX_REPLY_DEPTH:
                raise ValueError(f"nested deeper than {MAX_REPLY_DEPTH} levels")
            return json.loads(body)
        except (ValueError, RecursionError):
            if 200 <= status < 300:
                raise BridleError("bad_reply", f"{what}: the host's reply is not JSON: {in_quotes(body, 200)}") from None
            # An error status with a body that is not Bridle's: the host's word, quoted.
            raise _refusal(body, status) from None

    def rpc(self, method: str, params: list, stamp: Optional[str] = None) -> Any:
        """One JSON-RPC call to the host's /rpc with the Bridle headers."""
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json", "Bridle-Session": self.address}
        if stamp is not None:
            headers["Bridle-Stamp"] = stamp
        status, raw = self._call("POST", "/rpc", body, headers)
        reply = self._json(raw, method, status)
        if isinstance(reply, dict) and "error" in reply:
            raise _refusal(reply["error"], status)
        if not (200 <= status < 300):
            raise _refusal(raw, status)
        if not isinstance(reply, dict) or "result" not in reply:
            raise BridleError("bad_reply", f"{method}: the host's reply has no result: {in_quotes(raw, 200)}")
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
        try:
            raw = bytes.fromhex(_hex_field(result["raw"]))
            signed = result["tx"]
            r, s = int(_hex_field(signed["r"]), 16), int(_hex_field(signed["s"]), 16)
        except (KeyError, TypeError, ValueError):
            raise BridleError(
                "bad_reply", f"the host's reply is not a signed transaction: {in_quotes(result, 256)}"
            ) from None
        # The enclave signs with low s only (EIP-2): the high-s twin recovers alike, but no
        # node accepts it (a host returning one withholds the transaction).
        if s > SECP256K1_N_HALF:
            raise BridleError("bad_signature", "the signature's s is in the upper half of the curve order (EIP-2): not the enclave's")
        typed = "type" in tx or "maxFeePerGas" in tx or "accessList" in tx
        try:
            host_v = int(_hex_field(signed["yParity"] if typed and "yParity" in signed else signed["v"]), 16)
        except (KeyError, TypeError, ValueError):
            raise BridleError("bad_reply", f"the host's reply has no v: {in_quotes(signed, 256)}") from None
        if typed:
            v = parity = host_v
            if parity not in (0, 1):
                raise BridleError("bad_signature", f"yParity = {host_v} is no signature parity")
        else:
            # v as EIP-155 makes it from *our* chain id: the host's v could name another
            # chain (or none) with a raw transaction to match.
            parity = (host_v - 35) % 2 if host_v >= 35 else host_v - 27
            if parity not in (0, 1):
                raise BridleError("bad_signature", f"v = {host_v} is no signature parity")
            v = int(tx["chainId"]) * 2 + 35 + parity
        # Trust nothing from the host: the signature must be the session's over *our*
        # digest, and the raw transaction exactly ours with that signature.
        try:
            sig = eth_keys.Signature(vrs=(parity, r, s))
            signer = sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
        except Exception:  # noqa: BLE001 — r or s out of range, no point recovers
            raise BridleError("bad_signature", "the signature from the host recovers to no key") from None
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
