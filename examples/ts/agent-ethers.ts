// An agent written with ethers v6 that pays in ERC-20 tokens through a Bridle session.
//
//   cd examples/ts && npm ci
//   npx tsx agent-ethers.ts --rpc http://127.0.0.1:8545 --bridle http://127.0.0.1:8547 \
//       --key ../../.bridle-dev/agent.key --session 0xSESSION \
//       --enclave-public-key $(bridle trust show --host http://127.0.0.1:8547 --public-key) \
//       --token 0xTOKEN --to 0xRECIPIENT --amount 60
//
// The enclave identity key is pinned (from an attestation you verified: `bridle trust attest`
// records it, `bridle dev` does for its own enclave); `--trust-on-first-use` takes the
// host's word instead.
//
// Exit status: 0 mined with status 1; 2 refused by Bridle; 1 any other failure.
// `--json` prints one JSON object on the last line.

import { parseArgs } from "node:util";
import { Contract, JsonRpcProvider, getAddress, parseUnits } from "ethers";
import { BridleError, BridleSigner } from "./bridle-ethers.ts";

const erc20Abi = [
  "function transfer(address to, uint256 amount) returns (bool)",
  "function balanceOf(address owner) view returns (uint256)",
  "function decimals() view returns (uint8)",
];

const { values: a } = parseArgs({
  options: {
    rpc: { type: "string", default: process.env.ETH_RPC_URL ?? "http://127.0.0.1:8545" },
    bridle: { type: "string", default: process.env.BRIDLE_HOST ?? "http://127.0.0.1:8547" },
    key: { type: "string", default: process.env.BRIDLE_AGENT_KEY },
    session: { type: "string", default: process.env.BRIDLE_SESSION },
    token: { type: "string" },
    to: { type: "string" },
    amount: { type: "string" },
    "enclave-public-key": { type: "string", default: process.env.BRIDLE_ENCLAVE_PUBLIC_KEY },
    "trust-on-first-use": { type: "boolean", default: false },
    "clock-offset": { type: "string", default: process.env.BRIDLE_CLOCK_OFFSET ?? "0" },
    json: { type: "boolean", default: false },
  },
});
if (!a.key || !a.session || !a.token || !a.to || !a.amount) {
  console.error("usage: agent-ethers.ts --key AGENT_KEY --session 0x.. --token 0x.. --to 0x.. --amount N (--enclave-public-key HEX | --trust-on-first-use) [--rpc URL] [--bridle URL]");
  process.exit(1);
}

function report(obj: Record<string, unknown>, text: string) {
  (obj.ok ? console.log : console.error)(text);
  if (a.json) console.log(JSON.stringify(obj));
}

const provider = new JsonRpcProvider(a.rpc);
const signer = await BridleSigner.create(
  {
    host: a.bridle!,
    agentKey: a.key,
    session: a.session,
    enclavePublicKey: a["enclave-public-key"],
    trustOnFirstUse: a["trust-on-first-use"],
    clockOffset: Number(a["clock-offset"]),
  },
  provider,
);
const token = new Contract(getAddress(a.token), erc20Abi, signer);
const decimals: bigint = await token.decimals();
const amount = parseUnits(a.amount, decimals);
const to = getAddress(a.to);
console.log(`session ${signer.address} sends ${a.amount} to ${to}`);

let sent;
try {
  sent = await token.transfer(to, amount);
} catch (e) {
  let err: any = e;
  while (err && !(err instanceof BridleError)) err = err.cause ?? err.error;
  if (err instanceof BridleError) {
    report({ ok: false, code: err.code, rule: err.rule ?? null, reason: err.reason }, err.message);
    process.exit(2);
  }
  throw e;
}
const receipt = await sent.wait(1, 60_000);
const ok = receipt?.status === 1;
const balance: bigint = await token.balanceOf(signer.address);
report(
  {
    ok,
    hash: sent.hash,
    status: receipt?.status ?? 0,
    block: receipt?.blockNumber,
    gas_used: Number(receipt?.gasUsed ?? 0n),
    balance: balance.toString(),
  },
  `mined in block ${receipt?.blockNumber}: ${sent.hash} status ${receipt?.status}`,
);
process.exit(ok ? 0 : 1);
