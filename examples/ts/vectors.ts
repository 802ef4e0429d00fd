// Known-answer check for examples/ts (stamp.ts, and viem's / ethers' transaction signing
// hashes as the signers use them), driven by tests/tests/anvil_clients.rs (not an example to copy).
//
// Reads a JSON case on stdin: {agent_secret, enclave_public_key, session, nonce, timestamp,
// digest, transactions: [Ethereum JSON transaction, ...]} and prints
// {"agent": ..., "stamp": ..., "viem_digests": [...], "ethers_digests": [...]}.
// Run: npx tsx vectors.ts < case.json

import { readFileSync } from "node:fs";
import { keccak256, serializeTransaction, type TransactionSerializable } from "viem";
import { Transaction } from "ethers";
import { addressOf, makeStamp, stampKey, toBytes, KIND_TRANSACTION } from "./stamp.ts";

const c = JSON.parse(readFileSync(0, "utf8"));
const secret = toBytes(c.agent_secret);
const agent = addressOf(secret);
const key = stampKey(secret, toBytes(c.enclave_public_key), c.session, agent);
const stamp = makeStamp(key, c.session, KIND_TRANSACTION, c.digest, { nonce: toBytes(c.nonce), timestamp: c.timestamp });

const big = (v: string | undefined) => (v === undefined ? undefined : BigInt(v));
function viemTx(t: any): TransactionSerializable {
  const common = { chainId: Number(t.chainId), nonce: Number(t.nonce), gas: big(t.gas), to: t.to ?? undefined, value: big(t.value), data: t.data };
  return t.type === "0x2"
    ? { ...common, type: "eip1559", maxFeePerGas: big(t.maxFeePerGas), maxPriorityFeePerGas: big(t.maxPriorityFeePerGas) }
    : { ...common, type: "legacy", gasPrice: big(t.gasPrice) };
}
function ethersTx(t: any): Transaction {
  return Transaction.from({
    type: Number(t.type),
    chainId: BigInt(t.chainId),
    nonce: Number(t.nonce),
    gasLimit: BigInt(t.gas),
    to: t.to ?? null,
    value: BigInt(t.value ?? 0),
    data: t.data,
    ...(t.type === "0x2"
      ? { maxFeePerGas: BigInt(t.maxFeePerGas), maxPriorityFeePerGas: BigInt(t.maxPriorityFeePerGas) }
      : { gasPrice: BigInt(t.gasPrice) }),
  });
}

console.log(
  JSON.stringify({
    agent,
    stamp,
    viem_digests: c.transactions.map((t: any) => keccak256(serializeTransaction(viemTx(t)))),
    ethers_digests: c.transactions.map((t: any) => ethersTx(t).unsignedHash),
  }),
);
