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

/** Bridle's stable error codes (common/src/error.rs `ErrorCode`, docs/api.md §9): a host's
 *  refusal is shown with its code only if it is one of these. */
export const ERROR_CODES: ReadonlySet<string> = new Set(
  `unauthenticated replayed expired not_yet_valid revoked suspended unknown_session
   chain_not_allowed target_not_allowed selector_not_allowed argument_rejected
   recipient_not_allowed value_cap spend_cap rate_limited quota_exhausted gas_cap
   unlimited_approval spender_not_allowed exposure_ceiling typed_data_not_allowed
   message_not_allowed authorization_denied pending_approval denied_by_owner invalid_policy
   malformed too_large unsupported unavailable internal`.split(/\s+/),
);

/** The most of the host's text quoted in one error (code, rule and reason together): a
 *  refusal is not signed, so what it says is shown as data, bounded (as the CLI does). */
export const MAX_QUOTED = 1024;
/** The most quoted of a code that is none of Bridle's, and of a rule. */
export const MAX_ODD_FIELD = 128;

function asText(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

const escapeChar = (c: string) => `\\u{${c.codePointAt(0)!.toString(16).padStart(4, "0")}}`;
const isPrintableAscii = (c: string) => c >= " " && c <= "~";

/** `text` as it is shown between double quotes: `"` and `\` escaped, every character
 *  outside printable ASCII written as `\u{…}` (nothing can close the quotes, move the
 *  cursor or hide text); at most `limit` bytes (whole escapes), and how many bytes (UTF-8)
 *  of `text` were cut. */
export function escapeText(text: unknown, limit: number): [string, number] {
  const t = asText(text);
  let out = "";
  let at = 0;
  for (const c of t) {
    const piece = c === '"' || c === "\\" ? `\\${c}` : isPrintableAscii(c) ? c : escapeChar(c);
    if (out.length + piece.length > limit) return [out, new TextEncoder().encode(t.slice(at)).length];
    out += piece;
    at += c.length;
  }
  return [out, 0];
}

const cutNote = (n: number) => (n ? ` (... ${n} bytes cut)` : "");

/** Text another party wrote (the host, a node) as one quoted value inside a message of
 *  ours: between double quotes, escaped as `escapeText` does, at most `limit` bytes between
 *  them, what was cut said after them (the CLI's `in_quotes`). Not a string: its JSON. */
export function inQuotes(text: unknown, limit: number = MAX_QUOTED): string {
  const [inside, cut] = escapeText(text, limit);
  return `"${inside}"${cutNote(cut)}`;
}

/** `text` with every character outside printable ASCII (newlines included) written as
 *  `\u{…}`, and so a `\` that begins `u{` (`\u{005c}`: another party's literal `\u{1b}`
 *  would otherwise read as one of these escapes): safe to print on one line of a terminal. */
export function printable(text: unknown): string {
  const chars = [...asText(text)];
  let out = "";
  chars.forEach((c, i) => {
    const looksEscaped = c === "\\" && chars[i + 1] === "u" && chars[i + 2] === "{";
    out += isPrintableAscii(c) && !looksEscaped ? c : escapeChar(c);
  });
  return out;
}

/**
 * A refusal or error from Bridle.
 *
 * `fromHost`: the host's answer — the enclave signs no refusal, so it is the host's word (a
 * host may answer `spend_cap` and keep a signature it was given); otherwise this helper's
 * own check failed (`bad_signature`, `enclave_mismatch`, `bad_reply`, `too_large`, …).
 *
 * For the host's answer every field is shown as data: `code` is Bridle's stable code (e.g.
 * "spend_cap") only if the host gave one of `ERROR_CODES`, else "unknown" (the host's code,
 * escaped, is `hostCode`); `rule` and `reason` are the host's text escaped (every character
 * outside printable ASCII as `\u{…}`, `"` and `\` as `\"` and `\\`), 1 KiB in all; `rpcCode`
 * is the JSON-RPC error code when it is a number, `httpStatus` the host's HTTP status. The
 * message quotes them and says whose word they are.
 */
export class BridleError extends Error {
  readonly code: string;
  readonly reason: string;
  readonly rule: string | null;
  readonly rpcCode?: number;
  readonly fromHost: boolean;
  readonly hostCode: string | null;
  readonly httpStatus?: number;

  constructor(
    code: unknown,
    reason: unknown,
    rule?: unknown,
    rpcCode?: unknown,
    fromHost: boolean = false,
    httpStatus?: number,
  ) {
    let shown: { code: string; reason: string; rule: string | null; hostCode: string | null; message: string };
    if (!fromHost) {
      // Our own words (a failed check), which quote the host's text where they hold it.
      const r = rule == null ? null : printable(rule);
      const c = printable(code);
      const why = printable(reason);
      shown = { code: c, reason: why, rule: r, hostCode: null, message: `bridle: ${c}${r ? ` (rule ${r})` : ""}: ${why}` };
    } else {
      let left = MAX_QUOTED;
      let codeText: string;
      let hostCode: string | null = null;
      let c = "unknown";
      if (typeof code === "string" && ERROR_CODES.has(code)) {
        c = codeText = code;
      } else if (code == null) {
        codeText = "unknown (no code given)";
      } else {
        const [inside, cut] = escapeText(code, MAX_ODD_FIELD);
        hostCode = inside;
        left -= inside.length;
        codeText = `unknown (the host's code: "${inside}"${cutNote(cut)})`;
      }
      let ruleText = "";
      let r: string | null = null;
      if (rule != null) {
        const [inside, cut] = escapeText(rule, MAX_ODD_FIELD);
        r = inside;
        left -= inside.length;
        ruleText = ` (rule "${inside}"${cutNote(cut)})`;
      }
      const [why, cut] = escapeText(reason ?? "", left);
      shown = {
        code: c,
        reason: why,
        rule: r,
        hostCode,
        message: `bridle refused (the host's word; refusals are not signed): ${codeText}${ruleText}: "${why}"${cutNote(cut)}`,
      };
    }
    super(shown.message);
    this.name = "BridleError";
    this.code = shown.code;
    this.reason = shown.reason;
    this.rule = shown.rule;
    this.hostCode = shown.hostCode;
    this.fromHost = fromHost;
    this.rpcCode = typeof rpcCode === "number" && Number.isSafeInteger(rpcCode) ? rpcCode : undefined;
    this.httpStatus = httpStatus;
  }
}

/** The host's error — a JSON-RPC `error` ({code, message, data: {code, rule, reason}}) or an
 *  HTTP error body's `error` ({code, rule, reason, message}) — as a BridleError marked as
 *  the host's word. */
export function hostRefusal(err: unknown, httpStatus?: number): BridleError {
  if (err === null || typeof err !== "object" || Array.isArray(err)) {
    return new BridleError(null, err, null, undefined, true, httpStatus);
  }
  const e = err as Record<string, unknown>;
  let data = e.data as Record<string, unknown> | undefined;
  if (data === null || typeof data !== "object" || Array.isArray(data)) data = typeof e.code === "string" ? e : {};
  return new BridleError(data.code, data.reason ?? e.message ?? "", data.rule, e.code, true, httpStatus);
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
  const r = await fetch(`${host.replace(/\/$/, "")}/v1/status`, {
    signal: AbortSignal.timeout(REPLY_TIMEOUT_MS),
    redirect: "manual",
  });
  const text = await readBounded(r);
  const st = parseReply(text, "GET /v1/status", r.status) as Record<string, unknown> | null;
  if (!r.ok) throw hostRefusal(st !== null && typeof st === "object" && "error" in st ? st.error : text, r.status);
  const key = hexField(st?.identity_public_key);
  try {
    if (key === null) throw new Error();
    const bytes = toBytes(key);
    addressOfPublicKey(bytes);
    return bytes;
  } catch {
    throw new BridleError(
      "bad_reply",
      `the host's status names no enclave identity key: ${inQuotes(st?.identity_public_key ?? null, 200)}`,
    );
  }
}

/** The host's reply as JSON: text that is not JSON is `bad_reply` (a success status) or the
 *  host's refusal (an error status), quoted — never a parser's message, which would quote
 *  it raw. */
function parseReply(text: string, what: string, status: number): unknown {
  try {
    return JSON.parse(text);
  } catch {
    if (status >= 200 && status < 300) {
      throw new BridleError("bad_reply", `${what}: the host's reply is not JSON: ${inQuotes(text, 200)}`);
    }
    throw hostRefusal(text, status);
  }
}

/** A hex field of the host's reply (`0x` and hex digits), or null. */
export function hexField(v: unknown): Hex | null {
  return typeof v === "string" && /^0[xX][0-9a-fA-F]+$/.test(v) ? (`0x${v.slice(2)}` as Hex) : null;
}

/** The parts of `eth_signTransaction`'s result, each checked to be hex (else `bad_reply`,
 *  the result quoted): the signature still has to be checked against our own digest. */
export function signedParts(result: unknown): { raw: Hex; r: Hex; s: Hex; v: Hex | null; yParity: Hex | null } {
  const res = (result ?? {}) as Record<string, any>;
  const tx = (res.tx ?? {}) as Record<string, unknown>;
  const raw = hexField(res.raw);
  const [r, s, v, yParity] = [hexField(tx.r), hexField(tx.s), hexField(tx.v), hexField(tx.yParity)];
  const ok =
    typeof res === "object" &&
    typeof tx === "object" &&
    raw !== null &&
    r !== null &&
    s !== null &&
    (v !== null || yParity !== null) &&
    (tx.v === undefined || v !== null) &&
    (tx.yParity === undefined || yParity !== null);
  if (!ok) throw new BridleError("bad_reply", `the host's reply is not a signed transaction: ${inQuotes(result, 256)}`);
  return { raw: raw!, r: r!, s: s!, v, yParity };
}

/** A signature's parity from the host's `yParity` (or, without it, an EIP-155 or 27/28 `v`):
 *  0 or 1, else `bad_signature`. */
export function parityOf(p: { v: Hex | null; yParity: Hex | null }): 0 | 1 {
  let parity: bigint;
  if (p.yParity !== null) parity = BigInt(p.yParity);
  else {
    const v = BigInt(p.v!);
    parity = v >= 35n ? (v - 35n) % 2n : v - 27n;
  }
  if (parity !== 0n && parity !== 1n) throw new BridleError("bad_signature", "the host's v is no signature parity");
  return Number(parity) as 0 | 1;
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
    // The host's answer is its own: no redirect to an address it names is followed.
    redirect: "manual",
  });
  const text = await readBounded(r);
  const reply = parseReply(text, method, r.status) as Record<string, unknown> | null;
  // Everything the host wrote in an error is its word, shown quoted and escaped.
  if (reply !== null && typeof reply === "object" && "error" in reply) throw hostRefusal(reply.error, r.status);
  if (!r.ok) throw hostRefusal(text, r.status);
  if (reply === null || typeof reply !== "object" || !("result" in reply)) {
    throw new BridleError("bad_reply", `${method}: the host's reply has no result: ${inQuotes(text, 200)}`);
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

/** Everything a client needs to stamp requests for one session. The stamp key is a
 *  `#private` field: TypeScript's `private` is compile-time only, and `console.log`,
 *  `util.inspect` or `JSON.stringify` of a stamper (or of a signer holding one) would print
 *  a key that makes stamps the enclave accepts for the session. */
export class Stamper {
  readonly #key: Uint8Array;

  private constructor(
    readonly host: string,
    readonly session: Hex,
    readonly agent: Hex,
    key: Uint8Array,
    readonly clockOffset: number,
  ) {
    this.#key = key;
  }

  static async create(o: BridleOptions): Promise<Stamper> {
    const secret = loadAgentKey(o.agentKey);
    const enclave = await enclaveIdentity(o);
    const session = `0x${strip0x(o.session).toLowerCase()}` as Hex;
    const agent = addressOf(secret);
    return new Stamper(o.host, session, agent, stampKey(secret, enclave, session, agent), o.clockOffset ?? 0);
  }

  stamp(kind: number, digest: string | Uint8Array): string {
    return makeStamp(this.#key, this.session, kind, digest, {
      timestamp: Math.floor(Date.now() / 1000) + this.clockOffset,
    });
  }

  rpc(method: string, params: unknown[], stamp?: string): Promise<any> {
    return bridleRpc(this.host, this.session, method, params, stamp);
  }
}
