#!/usr/bin/env python3
"""An agent written with web3.py that pays in ERC-20 tokens through a Bridle session.

The agent never holds the session key: web3.py builds the transfer as usual, the Bridle
middleware has the enclave sign it (under the owner's policy), and web3.py broadcasts it.

    python3 examples/python/agent.py \
        --rpc http://127.0.0.1:8545 --bridle http://127.0.0.1:8547 \
        --key .bridle-dev/agent.key --session 0xSESSION \
        --enclave-public-key $(bridle trust show --host http://127.0.0.1:8547 --public-key) \
        --token 0xTOKEN --to 0xRECIPIENT --amount 60

The enclave identity key is pinned (from an attestation you verified: `bridle trust attest`
records it, `bridle dev` does for its own enclave); `--trust-on-first-use` takes the
host's word instead.

Exit status:
  0  mined with status 1
  2  refused by the host: its word, not the enclave's (the enclave signs no refusal); the
     code (e.g. spend_cap, or `unknown` when it is none of Bridle's), rule and reason are
     printed quoted, every character outside printable ASCII escaped
  3  the host's answer failed this agent's own checks (bad_signature: not the session's
     signature over this transaction; enclave_mismatch: not the pinned enclave; bad_reply,
     too_large)
  1  any other failure (the host or node unreachable or too slow, mined with status 0, ...)
`--json` prints one JSON object on the last line; a failure of Bridle's says `from_host`
(true: the host's refusal, exit 2; false: a check of this agent's, exit 3).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bridle_signer import BridleError, BridleSigner, printable  # noqa: E402
from web3 import Web3  # noqa: E402

ERC20_ABI = [
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
    {
        "type": "function",
        "name": "symbol",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "string"}],
    },
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # A usage error exits 1, not argparse's 2: 2 says the host refused (see above).
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def main() -> int:
    ap = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rpc", default=os.environ.get("ETH_RPC_URL", "http://127.0.0.1:8545"), help="Ethereum node")
    ap.add_argument("--bridle", default=os.environ.get("BRIDLE_HOST", "http://127.0.0.1:8547"), help="Bridle host")
    ap.add_argument("--key", default=os.environ.get("BRIDLE_AGENT_KEY"), help="agent key file (bridle agent keygen)")
    ap.add_argument("--session", default=os.environ.get("BRIDLE_SESSION"), help="session address")
    ap.add_argument("--token", required=True, help="ERC-20 contract address")
    ap.add_argument("--to", required=True, help="recipient")
    ap.add_argument("--amount", required=True, help="amount in whole tokens, e.g. 60 or 2.5")
    ap.add_argument("--enclave-public-key", default=os.environ.get("BRIDLE_ENCLAVE_PUBLIC_KEY"),
                    help="the enclave identity key from an attestation you verified (bridle trust show --public-key)")
    ap.add_argument("--trust-on-first-use", action="store_true",
                    help="accept the enclave identity the host reports (not verified)")
    ap.add_argument("--clock-offset", type=int, default=int(os.environ.get("BRIDLE_CLOCK_OFFSET", "0")),
                    help="seconds added to the stamp time (tests only)")
    ap.add_argument("--json", action="store_true", help="print a JSON result on the last line")
    a = ap.parse_args()
    if not a.key or not a.session:
        ap.error("--key and --session are required (or BRIDLE_AGENT_KEY and BRIDLE_SESSION)")

    def report(obj: dict, text: str) -> None:
        print(text, file=sys.stderr if not obj.get("ok") else sys.stdout)
        if a.json:
            print(json.dumps(obj))

    def failed(e: BridleError) -> int:
        # str(e) and the fields are safe to print: the host's text in them is quoted and
        # escaped, and a refusal is labelled as the host's word.
        report({"ok": False, "from_host": e.from_host, "code": e.code, "host_code": e.host_code, "rule": e.rule,
                "reason": e.reason, "http_status": e.http_status}, str(e))
        return 2 if e.from_host else 3

    w3 = Web3(Web3.HTTPProvider(a.rpc))
    try:
        signer = BridleSigner(a.bridle, a.key, a.session, enclave_public_key=a.enclave_public_key,
                              clock_offset=a.clock_offset, trust_on_first_use=a.trust_on_first_use)
    except BridleError as e:  # enclave_mismatch, or the host's answer to GET /v1/status
        return failed(e)
    # Every eth_sendTransaction from the session address is now signed by Bridle.
    w3.middleware_onion.inject(signer.middleware(), layer=0)

    token = w3.eth.contract(address=Web3.to_checksum_address(a.token), abi=ERC20_ABI)
    decimals = token.functions.decimals().call()
    amount = int(Decimal(a.amount) * (10 ** decimals))
    to = Web3.to_checksum_address(a.to)
    print(f"session {signer.address} (agent {signer.agent_address}) sends {a.amount} to {to}")

    try:
        tx_hash = token.functions.transfer(to, amount).transact({"from": signer.address})
    except BridleError as e:
        return failed(e)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    ok = receipt["status"] == 1
    result = {
        "ok": ok,
        "hash": "0x" + bytes(tx_hash).hex(),
        "status": receipt["status"],
        "block": receipt["blockNumber"],
        "gas_used": receipt["gasUsed"],
        "balance": str(token.functions.balanceOf(signer.address).call()),
    }
    report(result, f"mined in block {receipt['blockNumber']}: {result['hash']} status {receipt['status']}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # noqa: BLE001
        # Any other failure: its text may hold what the host or the node wrote (a revert
        # reason, say), so every line is printed escaped.
        for line in traceback.format_exc().splitlines():
            print(printable(line), file=sys.stderr)
        code = 1
    sys.exit(code)
