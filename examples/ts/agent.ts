// An agent written with viem that pays in ERC-20 tokens through a Bridle session.
//
//   cd examples/ts && npm ci
//   npx tsx agent.ts --rpc http://127.0.0.1:8545 --bridle http://127.0.0.1:8547 \
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
import { createPublicClient, createWalletClient, defineChain, getAddress, http, parseUnits, type Hex } from "viem";
import { BridleError, bridleAccount, printable } from "./bridle-signer.ts";

const erc20Abi = [
  {
    type: "function",
    name: "transfer",
    stateMutability: "nonpayable",
    inputs: [
      { name: "to", type: "address" },
      { name: "amount", type: "uint256" },
    ],
    outputs: [{ name: "", type: "bool" }],
  },
  {
    type: "function",
    name: "balanceOf",
    stateMutability: "view",
    inputs: [{ name: "owner", type: "address" }],
    outputs: [{ name: "", type: "uint256" }],
  },
  { type: "function", name: "decimals", stateMutability: "view", inputs: [], outputs: [{ name: "", type: "uint8" }] },
] as const;

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
  console.error("usage: agent.ts --key AGENT_KEY --session 0x.. --token 0x.. --to 0x.. --amount N (--enclave-public-key HEX | --trust-on-first-use) [--rpc URL] [--bridle URL] [--json]\nexit: 0 mined; 2 refused by the host (its word); 3 the host's answer failed this agent's checks; 1 other failure");
  process.exit(1);
}

function report(obj: Record<string, unknown>, text: string) {
  (obj.ok ? console.log : console.error)(text);
  if (a.json) console.log(JSON.stringify(obj));
}

/** Bridle's failure, in viem's error or its cause chain: reported, and the exit status. */
function failed(e: unknown): number | null {
  // viem wraps errors thrown by the account; find Bridle's in the cause chain.
  let err: any = e;
  while (err && !(err instanceof BridleError)) err = err.cause;
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
  const publicClient = createPublicClient({ transport: http(a.rpc) });
  const chainId = await publicClient.getChainId();
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [a.rpc!] } },
  });

  let account;
  try {
    account = await bridleAccount({
      host: a.bridle!,
      agentKey: a.key!,
      session: a.session!,
      enclavePublicKey: a["enclave-public-key"],
      trustOnFirstUse: a["trust-on-first-use"],
      clockOffset: Number(a["clock-offset"]),
    });
  } catch (e) {
    // enclave_mismatch, or the host's answer to GET /v1/status
    const code = failed(e);
    if (code === null) throw e;
    return code;
  }
  const wallet = createWalletClient({ account, chain, transport: http(a.rpc) });
  const token = getAddress(a.token!);
  const to = getAddress(a.to!);
  const decimals = await publicClient.readContract({ address: token, abi: erc20Abi, functionName: "decimals" });
  const amount = parseUnits(a.amount!, decimals);
  console.log(`session ${account.address} sends ${printable(a.amount)} to ${to}`);

  let hash: Hex;
  try {
    hash = await wallet.writeContract({ address: token, abi: erc20Abi, functionName: "transfer", args: [to, amount] });
  } catch (e) {
    const code = failed(e);
    if (code === null) throw e;
    return code;
  }
  // viem hands back the node's answer unchecked: a hash, or nothing shown or waited on.
  if (!/^0x[0-9a-fA-F]{64}$/.test(hash)) {
    throw new Error(`the node answered a transaction hash that is not one: ${printable(String(hash).slice(0, 200))}`);
  }
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  const ok = receipt.status === "success";
  const balance = await publicClient.readContract({
    address: token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [account.address],
  });
  report(
    {
      ok,
      hash,
      status: ok ? 1 : 0,
      block: Number(receipt.blockNumber),
      gas_used: Number(receipt.gasUsed),
      balance: balance.toString(),
    },
    `mined in block ${receipt.blockNumber}: ${hash} status ${receipt.status}`,
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
