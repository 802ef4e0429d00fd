// Bridle as a viem account: the session key lives in the Bridle enclave, and viem uses
// the session address like any local account.
//
//   import { createWalletClient, http } from "viem";
//   import { bridleAccount } from "./bridle-signer.ts";
//
//   const account = await bridleAccount({ host: "http://127.0.0.1:8547",
//                                         agentKey: ".bridle-dev/agent.key", session: "0x...",
//                                         enclavePublicKey: "0x02..." });  // the attested identity
//   const wallet = createWalletClient({ account, chain, transport: http(rpcUrl) });
//   await wallet.writeContract({ address: token, abi, functionName: "transfer", args: [to, amount] });
//
// viem prepares the transaction from the node as usual (nonce, gas, fees, chain id); the
// account stamps its signing hash, keccak256(serializeTransaction(tx)), and asks the host's
// `eth_signTransaction`; the enclave checks the stamp and the owner's policy and signs or
// refuses. A refusal throws BridleError with Bridle's code ("spend_cap", ...), rule and reason,
// marked as the host's word (`fromHost`; the enclave signs no refusal) and quoted in its
// message, every character outside printable ASCII escaped.
//
// The enclave identity key must be pinned (`enclavePublicKey`, from an attestation you
// verified) or explicitly taken on the host's word (`trustOnFirstUse: true`); it is checked
// against the host's status before the stamp key is derived, and every signature is checked
// to be the session's over our own digest.

import {
  keccak256,
  recoverAddress,
  serializeTransaction,
  type Hex as ViemHex,
  type LocalAccount,
  type TransactionSerializable,
} from "viem";
import { toAccount } from "viem/accounts";
import { BridleError, KIND_TRANSACTION, Stamper, parityOf, signedParts, type BridleOptions, type Hex } from "./stamp.ts";

/** Half the secp256k1 group order: a signature's s above it is the high-s twin (EIP-2). */
const SECP256K1_N_HALF = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

export { BridleError, inQuotes, printable, type BridleOptions } from "./stamp.ts";

const q = (v: bigint | number | undefined): Hex | undefined => (v === undefined ? undefined : `0x${BigInt(v).toString(16)}`);

/** viem's transaction object → the Ethereum JSON form of `eth_signTransaction`. */
export function toRpcTransaction(tx: TransactionSerializable, from: string): Record<string, unknown> {
  const t = tx as any;
  const type = t.type ?? (t.maxFeePerGas !== undefined ? "eip1559" : t.authorizationList ? "eip7702" : "legacy");
  const out: Record<string, unknown> = {
    from,
    to: t.to ?? undefined,
    nonce: q(t.nonce),
    chainId: q(t.chainId),
    gas: q(t.gas),
    value: q(t.value ?? 0n),
    data: t.data ?? "0x",
  };
  switch (type) {
    case "legacy":
      out.type = "0x0";
      out.gasPrice = q(t.gasPrice);
      break;
    case "eip1559":
      out.type = "0x2";
      out.maxFeePerGas = q(t.maxFeePerGas);
      out.maxPriorityFeePerGas = q(t.maxPriorityFeePerGas);
      if (t.accessList?.length) out.accessList = t.accessList;
      break;
    case "eip7702":
      // Sent as asked so that the enclave refuses it with its own code (never signed).
      out.type = "0x4";
      out.authorizationList = (t.authorizationList ?? []).map((a: any) => ({
        chainId: q(a.chainId),
        address: a.address ?? a.contractAddress,
        nonce: q(a.nonce),
      }));
      break;
    default:
      throw new BridleError("unsupported", `transaction type ${type} is not signed by Bridle`);
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

/** A viem account whose transactions are signed by a Bridle session. */
export async function bridleAccount(opts: BridleOptions): Promise<LocalAccount<"bridle">> {
  const stamper = await Stamper.create(opts);
  const session = stamper.session;

  const account = toAccount({
    address: session as ViemHex,

    async signTransaction(transaction) {
      const tx = transaction as TransactionSerializable;
      const rpcTx = toRpcTransaction(tx, session);
      const isType4 = rpcTx.type === "0x4";
      // The digest the enclave will compute itself; type 4 is refused before any check.
      const digest = isType4 ? (`0x${"00".repeat(32)}` as ViemHex) : keccak256(serializeTransaction(tx));
      const result = await stamper.rpc("eth_signTransaction", [rpcTx], stamper.stamp(KIND_TRANSACTION, digest));
      // Every part hex (else bad_reply, quoted): no library message quotes the host's text.
      const signed = signedParts(result);
      const raw = signed.raw as ViemHex;
      const yParity = parityOf(signed);
      const signature = { r: signed.r as ViemHex, s: signed.s as ViemHex, yParity, v: 27n + BigInt(yParity) };
      // The enclave signs with low s only (EIP-2): the high-s twin recovers alike, but no
      // node accepts it (a host returning one withholds the transaction).
      if (BigInt(signed.s) > SECP256K1_N_HALF) {
        throw new BridleError("bad_signature", "the signature's s is in the upper half of the curve order (EIP-2): not the enclave's");
      }
      // Trust nothing from the host: the signature must be the session's over our digest,
      // and the raw transaction exactly ours with that signature.
      let signer: string;
      try {
        signer = await recoverAddress({ hash: digest, signature });
      } catch {
        throw new BridleError("bad_signature", "the signature from the host recovers to no key");
      }
      if (signer.toLowerCase() !== session) {
        throw new BridleError("bad_signature", `signature recovers to ${signer}, not the session ${session}`);
      }
      if (serializeTransaction(tx, signature).toLowerCase() !== raw.toLowerCase()) {
        throw new BridleError("bad_signature", "the raw transaction from the host is not the transaction we asked for");
      }
      return raw;
    },

    async signMessage() {
      throw new BridleError("unsupported", "personal_sign through Bridle is not enabled yet; only transactions");
    },

    async signTypedData() {
      throw new BridleError("unsupported", "eth_signTypedData_v4 through Bridle is not enabled yet; only transactions");
    },
  });
  return { ...account, source: "bridle" } as LocalAccount<"bridle">;
}
