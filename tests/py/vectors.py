"""Known-answer check for examples/python/bridle_signer.py, driven by tests/tests/anvil_clients.rs.

Reads a JSON case on stdin: {agent_secret, enclave_public_key, session, agent, nonce,
timestamp, digest, transactions: [Ethereum JSON transaction, ...]} and prints
{"agent": ..., "stamp": ..., "digests": [...]} computed by the Python helper alone.
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))

from bridle_signer import KIND_TRANSACTION, make_stamp, stamp_key, transaction_digest  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402


def main() -> None:
    case = json.load(sys.stdin)
    secret = bytes.fromhex(case["agent_secret"].removeprefix("0x"))
    agent = Account.from_key(secret).address
    key = stamp_key(secret, bytes.fromhex(case["enclave_public_key"].removeprefix("0x")), case["session"], agent)
    stamp = make_stamp(
        key,
        case["session"],
        KIND_TRANSACTION,
        bytes.fromhex(case["digest"].removeprefix("0x")),
        nonce=bytes.fromhex(case["nonce"]),
        timestamp=case["timestamp"],
    )
    digests = []
    for tx in case["transactions"]:
        tx = dict(tx)
        if tx.get("to"):
            tx["to"] = to_checksum_address(tx["to"])
        digests.append("0x" + transaction_digest(tx).hex())
    print(json.dumps({"agent": agent, "stamp": stamp, "digests": digests}))


main()
