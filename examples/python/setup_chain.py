#!/usr/bin/env python3
"""Prepare a local anvil chain for the Bridle examples: deploy the test ERC-20
(tests/fixtures/erc20/TestToken.json, 6 decimals, symbol USDC), mint tokens to the session
address and give it ETH for gas.

    python3 examples/python/setup_chain.py --rpc http://127.0.0.1:8545 --session 0xSESSION

On a fresh anvil the first deployment from its first account lands at
0x5FbDB2315678afecb367f032d93F642f64180aa3 — the token address that
examples/policies/usdc-daily.toml names. Development chains only: it uses anvil's
unlocked accounts and `anvil_setBalance`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from web3 import Web3

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACT = os.path.join(HERE, "..", "..", "tests", "fixtures", "erc20", "TestToken.json")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rpc", default=os.environ.get("ETH_RPC_URL", "http://127.0.0.1:8545"))
    ap.add_argument("--session", required=True, help="the session address to fund")
    ap.add_argument("--token", help="use this already deployed token instead of deploying one")
    ap.add_argument("--mint", default="1000", help="whole tokens to mint to the session (default 1000)")
    ap.add_argument("--eth", default="10", help="ETH balance to set on the session (default 10)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    w3 = Web3(Web3.HTTPProvider(a.rpc))
    with open(ARTIFACT, encoding="utf-8") as f:
        artifact = json.load(f)
    deployer = w3.eth.accounts[0]
    session = Web3.to_checksum_address(a.session)

    if a.token:
        address = Web3.to_checksum_address(a.token)
    else:
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": deployer}))
        address = receipt["contractAddress"]
    token = w3.eth.contract(address=address, abi=artifact["abi"])
    amount = int(a.mint) * 10 ** token.functions.decimals().call()
    w3.eth.wait_for_transaction_receipt(token.functions.mint(session, amount).transact({"from": deployer}))
    w3.provider.make_request("anvil_setBalance", [session, hex(Web3.to_wei(int(a.eth), "ether"))])

    if a.json:
        print(json.dumps({"token": address, "session": session, "chain_id": w3.eth.chain_id}))
    else:
        print(f"token:   {address} (chain {w3.eth.chain_id})")
        print(f"session: {session}: {a.mint} USDC, {a.eth} ETH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
