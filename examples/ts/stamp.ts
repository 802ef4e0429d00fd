// Bridle agent stamps and the host's JSON-RPC transport, with no Ethereum library:
// shared by the viem account (bridle-signer.ts) and the ethers signer (bridle-ethers.ts).
//
//   key  = HKDF-SHA256(salt = "bridle/stamp/v1",
//                      ikm  = x-coordinate of ECDH(agent secret, enclave identity public key),
//                      info = session address (20 bytes) || agent address (20 bytes))
//   mac  = HMAC-SHA256(key, "bridle/stamp/v1" || session (20) || kind (1 byte; 1 = transaction)
//                           || digest (32) || nonce (16) || timestamp (u64 big endian))
//   header  Bridle-Stamp: v1.<nonce hex>.<timestamp>.<mac hex>
//
// For a transaction the digest is its ordinary signing hash, so the stamp commits to
// every field and the host in between can change none of them.

import { readFileSync, existsSync } from "node:fs";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, hexToBytes, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";

export const DOMAIN = utf8ToBytes("bridle/stamp/v1");
export const KIND_TRANSACTION = 1;
export const KIND_TYPED_DATA = 2;
export const KIND_MESSAGE = 3;

export type Hex = `0x${string}`;

/**
 * A refusal or error from Bridle: `code` is Bridle's stable code (e.g. "spend_cap").
 * `fromHost`: the host's answer — the enclave signs no refusal, so it is the host's word (a
 * host may answer `spend_cap` and keep a signature it was given); otherwise this helper's
 * own check failed (`bad_signature`, `enclave_mismatch`, …).
 */
export class BridleError extends Error {
  constructor(
    public readonly code: string,
    public readonly reason: string,
    public readonly rule?: string | null,
    public readonly rpcCode?: number,
    public readonly fromHost: boolean = false,
  ) {
    const what = fromHost ? "bridle refused (the host's word; refusals are not signed)" : "bridle";
    super(`${what}: ${code}${rule ? ` (rule ${rule})` : ""}: ${reason}`);
    this.name = "BridleError";
  }
}

export function strip0x(h: string): string {
  return h.startsWith("0x") || h.startsWith("0X") ? h.slice(2) : h;
}

export function toBytes(h: string | Uint8Array): Uint8Array {
  return typeof h === "string" ? hexToBytes(strip0x(h)) : h;
}

/** The agent's private key from 0x-hex, a file holding 0x-hex, or a `bridle agent keygen`
 *  key file (JSON with `private_key`). */
export function loadAgentKey(keyOrPath: string | Uint8Array): Uint8Array {
  if (typeof keyOrPath !== "string") return keyOrPath;
  let text = keyOrPath.trim();
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text) && existsSync(text)) {
    text = readFileSync(text, "utf8").trim();
    if (text.startsWith("{")) text = JSON.parse(text).private_key;
  }
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
    throw new Error("agent key must be 32 bytes of hex, or a key file path");
  }
  return hexToBytes(strip0x(text));
}

/** The Ethereum address of a secp256k1 private key (lowercase hex). */
export function addressOf(secret: Uint8Array): Hex {
  const pub = secp256k1.getPublicKey(secret, false); // 0x04 || X || Y
  return `0x${bytesToHex(keccak_256(pub.subarray(1)).subarray(12))}`;
}

/** The per-session HMAC key. */
export function stampKey(agentSecret: Uint8Array, enclavePublicKey: Uint8Array, session: string, agent: string): Uint8Array {
  // getSharedSecret returns the compressed shared point: drop the 0x02/0x03 prefix to keep x.
  const shared = secp256k1.getSharedSecret(agentSecret, enclavePublicKey, true).subarray(1);
  const info = new Uint8Array(40);
  info.set(toBytes(session), 0);
  info.set(toBytes(agent), 20);
  return hkdf(sha256, shared, DOMAIN, info, 32);
}

/** The `Bridle-Stamp` header value for one request. */
export function makeStamp(
  key: Uint8Array,
  session: string,
  kind: number,
  digest: string | Uint8Array,
  opts: { nonce?: Uint8Array; timestamp?: number } = {},
): string {
  const d = toBytes(digest);
  if (d.length !== 32) throw new Error("digest must be 32 bytes");
  const nonce = opts.nonce ?? randomBytes(16);
  const ts = BigInt(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const tsBytes = new Uint8Array(8);
  new DataView(tsBytes.buffer).setBigUint64(0, ts, false);
  const msg = new Uint8Array(DOMAIN.length + 20 + 1 + 32 + 16 + 8);
  let o = 0;
  for (const part of [DOMAIN, toBytes(session), Uint8Array.of(kind), d, nonce, tsBytes]) {
    msg.set(part, o);
    o += part.length;
  }
  return `v1.${bytesToHex(nonce)}.${ts}.${bytesToHex(hmac(sha256, key, msg))}`;
}

/** The Ethereum address of a secp256k1 public key (SEC1, compressed or not). */
export function addressOfPublicKey(pub: Uint8Array): Hex {
  const u = secp256k1.Point.fromBytes(pub).toBytes(false); // 0x04 || X || Y
  return `0x${bytesToHex(keccak_256(u.subarray(1)).subarray(12))}`;
}

/** The enclave identity public key the host reports (`GET /v1/status`): the host's word. */
export async function fetchEnclavePublicKey(host: string): Promise<Uint8Array> {
  const r = await fetch(`${host.replace(/\/$/, "")}/v1/status`, { signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
  if (!r.ok) throw new BridleError("http_error", `GET /v1/status: HTTP ${r.status}`);
  const st = JSON.parse(await readBounded(r)) as { identity_public_key: string };
  return toBytes(st.identity_public_key);
}

/** The enclave identity to stamp for: the pinned key, checked against the one the host's
 *  enclave reports now (a different one means the enclave restarted, losing every session,
 *  or the host serves another enclave); or, only with `trustOnFirstUse`, the host's word. */
export async function enclaveIdentity(o: BridleOptions): Promise<Uint8Array> {
  const reported = await fetchEnclavePublicKey(o.host);
  if (o.enclavePublicKey === undefined || o.enclavePublicKey === "") {
    if (!o.trustOnFirstUse) {
      throw new Error(
        "enclavePublicKey is required: pin the enclave identity key from an attestation you verified " +
          "(`bridle trust attest`, then `bridle trust show --host URL --public-key`), or pass trustOnFirstUse: true " +
          "to accept the identity the host reports (not verified)",
      );
    }
    console.warn(
      `bridle: trusting enclave identity ${addressOfPublicKey(reported)} on the host's word (trustOnFirstUse); pin it in production`,
    );
    return reported;
  }
  const pinned = toBytes(o.enclavePublicKey);
  const [want, got] = [addressOfPublicKey(pinned), addressOfPublicKey(reported)];
  if (want !== got) {
    throw new BridleError(
      "enclave_mismatch",
      `the host reports enclave identity ${got}, not the pinned ${want}: the enclave restarted (a new identity; ` +
        "its sessions are lost) or the host serves another enclave; verify it and re-attest",
    );
  }
  return pinned;
}

let rpcId = 0;

/** The most of one host reply read: a host cannot make the agent hold more. */
export const MAX_REPLY_BYTES = 4 << 20;

/** How long one host call may take, its reply read whole (as the Rust and Python helpers' 30 s). */
export const REPLY_TIMEOUT_MS = 30_000;

/** A reply's body as text, read up to MAX_REPLY_BYTES (a larger one is cancelled and refused). */
async function readBounded(r: Response): Promise<string> {
  if (!r.body) return "";
  const reader = r.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > MAX_REPLY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new BridleError("too_large", `the host's reply is over ${MAX_REPLY_BYTES} bytes: not read`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** One JSON-RPC call to the host's /rpc with the Bridle headers. */
export async function bridleRpc(
  host: string,
  session: string,
  method: string,
  params: unknown[],
  stamp?: string,
): Promise<any> {
  const headers: Record<string, string> = { "content-type": "application/json", "Bridle-Session": session };
  if (stamp) headers["Bridle-Stamp"] = stamp;
  const r = await fetch(`${host.replace(/\/$/, "")}/rpc`, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    signal: AbortSignal.timeout(REPLY_TIMEOUT_MS),
  });
  const text = await readBounded(r);
  let reply: any;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new BridleError("http_error", `${method}: HTTP ${r.status}: ${text.slice(0, 200)}`);
  }
  if (reply.error) {
    const data = reply.error.data ?? {};
    throw new BridleError(
      data.code ?? reply.error.message ?? "error",
      data.reason ?? reply.error.message ?? "",
      data.rule,
      reply.error.code,
      true,
    );
  }
  return reply.result;
}

/** Options shared by the viem account and the ethers signer. */
export type BridleOptions = {
  /** The Bridle host's base URL, e.g. http://127.0.0.1:8547. */
  host: string;
  /** The agent identity key: 0x-hex, bytes, or a key file path. */
  agentKey: string | Uint8Array;
  /** The session address the owner granted. */
  session: string;
  /** The enclave identity key (SEC1 hex) from an attestation you verified: required unless
   *  `trustOnFirstUse`. Checked against the host's status before any stamp key is derived. */
  enclavePublicKey?: string | Uint8Array;
  /** Accept the identity the host reports (the host's word, never verified). */
  trustOnFirstUse?: boolean;
  /** Seconds added to this machine's clock in stamps (tests move the dev enclave's clock). */
  clockOffset?: number;
};

/** Everything a client needs to stamp requests for one session. */
export class Stamper {
  private constructor(
    readonly host: string,
    readonly session: Hex,
    readonly agent: Hex,
    private readonly key: Uint8Array,
    readonly clockOffset: number,
  ) {}

  static async create(o: BridleOptions): Promise<Stamper> {
    const secret = loadAgentKey(o.agentKey);
    const enclave = await enclaveIdentity(o);
    const session = `0x${strip0x(o.session).toLowerCase()}` as Hex;
    const agent = addressOf(secret);
    return new Stamper(o.host, session, agent, stampKey(secret, enclave, session, agent), o.clockOffset ?? 0);
  }

  stamp(kind: number, digest: string | Uint8Array): string {
    return makeStamp(this.key, this.session, kind, digest, {
      timestamp: Math.floor(Date.now() / 1000) + this.clockOffset,
    });
  }

  rpc(method: string, params: unknown[], stamp?: string): Promise<any> {
    return bridleRpc(this.host, this.session, method, params, stamp);
  }
}
