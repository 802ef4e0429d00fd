// Bridle as an ethers v6 Signer: the session key lives in the Bridle enclave.
//
//   const provider = new JsonRpcProvider(rpcUrl);
//   const signer = await BridleSigner.create({ host, agentKey, session, enclavePublicKey }, provider);
//   await new Contract(token, abi, signer).transfer(to, amount);
//
// ethers populates the transaction from the node (nonce, gas, fees, chain id); the signer
// stamps its unsigned hash and asks the host's `eth_signTransaction`. A refusal throws
// BridleError with Bridle's code ("spend_cap", ...), rule and reason, marked as the host's
// word (`fromHost`) and quoted in its message, every character outside printable ASCII
// escaped. The stamper (and its stamp key) is a `#private` field. The enclave identity
// key is pinned (`enclavePublicKey`) or explicitly taken on the host's word
// (`trustOnFirstUse: true`), and checked against the host's status first.

import {
  AbstractSigner,
  Signature,
  Transaction,
  copyRequest,
  getAddress,
  recoverAddress,
  resolveAddress,
  toBeHex,
  toQuantity,
  type Provider,
  type TransactionRequest,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";
import { BridleError, KIND_TRANSACTION, Stamper, parityOf, signedParts, type BridleOptions } from "./stamp.ts";

export { BridleError, inQuotes, printable, type BridleOptions } from "./stamp.ts";

/** Half the secp256k1 group order: a signature's s above it is the high-s twin (EIP-2). */
const SECP256K1_N_HALF = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/** An ethers Transaction → the Ethereum JSON form of `eth_signTransaction`. */
export function toRpcTransaction(btx: Transaction, from: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    from,
    nonce: toQuantity(btx.nonce),
    chainId: toQuantity(btx.chainId),
    gas: toQuantity(btx.gasLimit),
    value: toQuantity(btx.value),
    data: btx.data,
  };
  if (btx.to) out.to = btx.to;
  switch (btx.type) {
    case 0:
      out.type = "0x0";
      out.gasPrice = toQuantity(btx.gasPrice ?? 0n);
      break;
    case 2:
      out.type = "0x2";
      out.maxFeePerGas = toQuantity(btx.maxFeePerGas ?? 0n);
      out.maxPriorityFeePerGas = toQuantity(btx.maxPriorityFeePerGas ?? 0n);
      if (btx.accessList?.length) out.accessList = btx.accessList;
      break;
    default:
      throw new BridleError("unsupported", `transaction type ${btx.type} is not signed by Bridle`);
  }
  return out;
}

export class BridleSigner extends AbstractSigner {
  // `#private`, not TypeScript's compile-time `private`: the stamper holds the session's stamp
  // key, which `console.log(signer)` or `JSON.stringify(signer)` would print otherwise.
  readonly #stamper: Stamper;

  private constructor(stamper: Stamper, provider: null | Provider) {
    super(provider);
    this.#stamper = stamper;
  }

  static async create(opts: BridleOptions, provider: null | Provider = null): Promise<BridleSigner> {
    return new BridleSigner(await Stamper.create(opts), provider);
  }

  get address(): string {
    return getAddress(this.#stamper.session);
  }

  async getAddress(): Promise<string> {
    return this.address;
  }

  connect(provider: null | Provider): BridleSigner {
    return new BridleSigner(this.#stamper, provider);
  }

  async signTransaction(tx: TransactionRequest): Promise<string> {
    // ethers hands over a Transaction (from sendTransaction) or a plain request; copyRequest
    // reads either through its properties, as ethers' own Wallet does.
    const req = copyRequest(tx);
    if (req.to != null) req.to = await resolveAddress(req.to, this.provider);
    if (req.from != null) {
      const from = await resolveAddress(req.from, this.provider);
      if (getAddress(from) !== this.address) throw new Error(`from ${from} is not the Bridle session ${this.address}`);
      delete req.from;
    }
    const btx = Transaction.from(req as any);
    if (btx.type == null) btx.type = btx.inferType();
    const digest = btx.unsignedHash;
    const result = await this.#stamper.rpc(
      "eth_signTransaction",
      [toRpcTransaction(btx, this.#stamper.session)],
      this.#stamper.stamp(KIND_TRANSACTION, digest),
    );
    // Every part hex (else bad_reply, quoted): no library message quotes the host's text.
    const signed = signedParts(result);
    const yParity = parityOf(signed);
    // The enclave signs with low s only (EIP-2): the high-s twin recovers alike, but no
    // node accepts it (a host returning one withholds the transaction).
    if (BigInt(signed.s) > SECP256K1_N_HALF) {
      throw new BridleError("bad_signature", "the signature's s is in the upper half of the curve order (EIP-2): not the enclave's");
    }
    // Trust nothing from the host: the signature must be the session's over our digest,
    // and the raw transaction exactly ours with that signature.
    let sig: Signature;
    let signer: string;
    try {
      sig = Signature.from({
        r: toBeHex(BigInt(signed.r), 32),
        s: toBeHex(BigInt(signed.s), 32),
        v: 27 + yParity,
      });
      signer = getAddress(recoverAddress(digest, sig));
    } catch {
      throw new BridleError("bad_signature", "the signature from the host recovers to no key");
    }
    if (signer !== this.address) {
      throw new BridleError("bad_signature", "the signature from the host is not the session's over this transaction");
    }
    btx.signature = sig;
    if (btx.serialized.toLowerCase() !== signed.raw.toLowerCase()) {
      throw new BridleError("bad_signature", "the raw transaction from the host is not the transaction we asked for");
    }
    return btx.serialized;
  }

  async signMessage(_message: string | Uint8Array): Promise<string> {
    throw new BridleError("unsupported", "personal_sign through Bridle is not enabled yet; only transactions");
  }

  async signTypedData(
    _domain: TypedDataDomain,
    _types: Record<string, Array<TypedDataField>>,
    _value: Record<string, any>,
  ): Promise<string> {
    throw new BridleError("unsupported", "eth_signTypedData_v4 through Bridle is not enabled yet; only transactions");
  }
}
