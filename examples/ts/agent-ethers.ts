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
// Exit status:
//   0  mined with status 1
//   2  refused by the host: its word, not the enclave's (the enclave signs no refusal); the
//      code (e.g. spend_cap, or `unknown` when it is none of Bridle's), rule and reason are
//      printed quoted, every character outside printable ASCII escaped
//   3  the host's answer failed this agent's own checks (bad_signature: not the session's
//      signature over this transaction; enclave_mismatch: not the pinned enclave; bad_reply,
//      too_large)
//   1  any other failure (the host or node unreachable or too slow, mined with status 0, ...)
// `--json` prints one JSON object on the last line; a failure of Bridle's says `from_host`
// (true: the host's refusal, exit 2; false: a check of this agent's, exit 3).

import { parseArgs } from "node:util";
import { Contract, JsonRpcProvider, getAddress, parseUnits } from "ethers";
import { BridleError, BridleSigner, printable } from "./bridle-ethers.ts";

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
  console.error("usage: agent-ethers.ts --key AGENT_KEY --session 0x.. --token 0x.. --to 0x.. --amount N (--enclave-public-key HEX | --trust-on-first-use) [--rpc URL] [--bridle URL] [--json]\nexit: 0 mined; 2 refused by the host (its word); 3 the host's answer failed this agent's checks; 1 other failure");
  process.exit(1);
}

function report(obj: Record<string, unknown>, text: string) {
  (obj.ok ? console.log : console.error)(text);
  if (a.json) console.log(JSON.stringify(obj));
}

/** Bridle's failure, in ethers' error or what it wraps: reported, and the exit status. */
function failed(e: unknown): number | null {
  let err: any = e;
  while (err && !(err instanceof BridleError)) err = err.cause ?? err.error;
  if (!(err instanceof BridleError)) return null;
  // The message and fields are safe to print: the host's text in them is quoted and
  // escaped, and a refusal is labelled as the host's word.
  report(
    {
      ok: false,
      from_host: err.fromHost,
      code: err.code,
      host_code: err.hostCode,
      rule: err.rule,
      reason: err.reason,
      http_status: err.httpStatus ?? null,
    },
    err.message,
  );
  return err.fromHost ? 2 : 3;
}

async function main(): Promise<number> {
  const provider = new JsonRpcProvider(a.rpc);
  let signer: BridleSigner;
  try {
    signer = await BridleSigner.create(
      {
        host: a.bridle!,
        agentKey: a.key!,
        session: a.session!,
        enclavePublicKey: a["enclave-public-key"],
        trustOnFirstUse: a["trust-on-first-use"],
        clockOffset: Number(a["clock-offset"]),
      },
      provider,
    );
  } catch (e) {
    // enclave_mismatch, or the host's answer to GET /v1/status
    const code = failed(e);
    if (code === null) throw e;
    return code;
  }
  const token = new Contract(getAddress(a.token!), erc20Abi, signer);
  const decimals: bigint = await token.decimals();
  const amount = parseUnits(a.amount!, decimals);
  const to = getAddress(a.to!);
  console.log(`session ${signer.address} sends ${printable(a.amount)} to ${to}`);

  let sent;
  try {
    sent = await token.transfer(to, amount);
  } catch (e) {
    const code = failed(e);
    if (code === null) throw e;
    return code;
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
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    // Any other failure: its text may hold what the host or the node wrote (a revert
    // reason, say), so every line is printed escaped.
    for (const line of String(e?.stack ?? e).split("\n")) console.error(printable(line));
    process.exit(1);
  },
);
