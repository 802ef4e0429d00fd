// Bytes, hex, integers and the hashes every other module uses. No DOM here: the same file
// runs under node in the cross-check test (tests/tests/console_digests.rs).
import { keccak_256, secp256k1 } from "./vendor/noble.js";

const enc = new TextEncoder();

export function utf8(s) {
  return enc.encode(s);
}

export function hexToBytes(h) {
  if (typeof h !== "string") throw new Error(`expected a hex string, got ${typeof h}`);
  const s = h.startsWith("0x") || h.startsWith("0X") ? h.slice(2) : h;
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error(`not hex: ${h.slice(0, 20)}…`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(b, prefix = true) {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return prefix ? "0x" + s : s;
}

export function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Big-endian unsigned integer of `width` bytes (value: number, bigint or decimal string). */
export function uintBE(value, width) {
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(8 * width)) throw new Error(`${value} does not fit in ${width} bytes`);
  const out = new Uint8Array(width);
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export const u32 = (v) => uintBE(v, 4);
export const u64 = (v) => uintBE(v, 8);
export const u128 = (v) => uintBE(v, 16);

export function keccak(...parts) {
  return keccak_256(concat(...parts));
}

/** Parse a 20-byte address (any case) to bytes. */
export function addressBytes(a) {
  const b = hexToBytes(a);
  if (b.length !== 20) throw new Error(`not a 20-byte address: ${a}`);
  return b;
}

export function b32(h) {
  const b = hexToBytes(h);
  if (b.length !== 32) throw new Error(`not 32 bytes: ${h}`);
  return b;
}

/** EIP-55 checksummed form of an address. */
export function checksum(a) {
  const lower = bytesToHex(addressBytes(a), false);
  const h = bytesToHex(keccak_256(utf8(lower)), false);
  let out = "0x";
  for (let i = 0; i < 40; i++) out += parseInt(h[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
  return out;
}

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
export const ZERO32 = "0x" + "00".repeat(32);

/** The Ethereum address of a SEC1 public key (33 or 65 bytes). */
export function addressOfPublicKey(pk) {
  const point = secp256k1.Point.fromBytes(pk);
  const raw = point.toBytes(false);
  return checksum(bytesToHex(keccak_256(raw.subarray(1)).subarray(12)));
}

/**
 * The address a 65-byte r ‖ s ‖ v signature over a 32-byte digest recovers to, or null.
 * v may be 0/1 or 27/28.
 */
export function recoverAddress(digest, signature) {
  const sig = typeof signature === "string" ? hexToBytes(signature) : signature;
  if (sig.length !== 65) return null;
  let v = sig[64];
  if (v >= 27) v -= 27;
  if (v !== 0 && v !== 1) return null;
  try {
    const s = secp256k1.Signature.fromBytes(concat(Uint8Array.of(v), sig.subarray(0, 64)), "recovered");
    const pk = s.recoverPublicKey(digest).toBytes(false);
    return checksum(bytesToHex(keccak_256(pk.subarray(1)).subarray(12)));
  } catch {
    return null;
  }
}

export function sameAddress(a, b) {
  return typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
}

/** JSON text with BigInt values written as plain JSON numbers (u64/u128 fields). */
export function jsonWithBigInts(value) {
  const text = JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `__bigint__${v}` : v));
  return text.replace(/"__bigint__(\d+)"/g, "$1");
}

/** A fresh owner nonce: the current time in milliseconds, as the CLI's default. */
export function defaultNonce() {
  return Date.now();
}

/** How far behind the enclave's signed time this clock may be and still sign with its own. */
export const BEHIND_SLACK_MS = 5 * 60_000;

/**
 * The owner nonce at `nowMs` (this clock) for an enclave whose status was signed at
 * `signedMs` (0 if none), at least `floorMs` (a suspension's next second, a hold's second;
 * 0 if none) — as `bridle owner` picks it (cli/src/trust.rs `nonce_at`). The enclave refuses
 * a nonce more than ten minutes behind its clock: a clock up to five minutes behind signs
 * with its own time, one further behind moves forward by whole minutes, which keeps this
 * clock's order while the lag holds. Lifting to the signed second itself would give two
 * actions within one of the enclave's seconds the same nonce (the second refused
 * `replayed`). Below an explicit floor: the floor plus this clock's milliseconds.
 */
export function ownerNonceAt(nowMs, signedMs, floorMs) {
  const slackFloor = Math.max(0, signedMs - BEHIND_SLACK_MS);
  const now = nowMs >= slackFloor ? nowMs : nowMs + Math.ceil((slackFloor - nowMs) / 60_000) * 60_000;
  return now >= floorMs ? now : floorMs + (now % 1000);
}

/** Decimal string of `value` (bigint) with `decimals` places, trailing zeros cut. */
export function formatUnits(value, decimals) {
  const v = BigInt(value);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const base = 10n ** BigInt(decimals);
  const whole = a / base;
  let frac = (a % base).toString().padStart(decimals, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + whole.toString() + (frac ? "." + frac : "");
}

// ---- text another party wrote, made safe to show (common/src/quote.rs) ---------------------

/**
 * A character that reorders, hides or controls the text around it rather than showing
 * (common/src/quote.rs `hides_text`, the CLI's list): control characters (C0, DEL, C1) and
 * the format characters of bidirectional text and zero width. `cp`: a code point.
 */
export function hidesText(cp) {
  const r = (lo, hi) => cp >= lo && cp <= hi;
  return (
    r(0x00, 0x1f) || r(0x7f, 0x9f) ||
    cp === 0x00ad || cp === 0x061c || r(0x200b, 0x200f) || r(0x2028, 0x202e) || r(0x0600, 0x0605) ||
    cp === 0x06dd || cp === 0x070f || r(0x115f, 0x1160) || cp === 0x034f || r(0x17b4, 0x17b5) ||
    r(0x180b, 0x180f) || cp === 0x2800 || r(0x2060, 0x206f) || cp === 0x3164 || r(0xfe00, 0xfe0f) ||
    cp === 0xfeff || cp === 0xffa0 || r(0xfff9, 0xfffb) || r(0x1bca0, 0x1bca3) || r(0x1d173, 0x1d17a) ||
    r(0xe0000, 0xe0fff)
  );
}

/**
 * `t` made safe to show on a line of its own, as the CLI prints another party's text
 * (common/src/quote.rs `printable`): every character {@link hidesText} names (newlines
 * included) written as `\u{…}`, and so is a `\` that begins `u{` (`\u{005c}`), so that an
 * agent's literal `\u{202e}` cannot pass for one of these escapes. Lone surrogates are
 * written as escapes too. A right-to-left override cannot show `moc.elpmaxe` as
 * `example.com`, a line separator cannot forge a line (a review of 2026-12-07).
 */
export function printable(t) {
  const s = String(t);
  let out = "";
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i);
    const n = cp > 0xffff ? 2 : 1;
    const lone = cp >= 0xd800 && cp <= 0xdfff;
    if (hidesText(cp) || lone || (cp === 0x5c && s.startsWith("u{", i + 1))) {
      out += `\\u{${cp.toString(16).padStart(4, "0")}}`;
    } else {
      out += s.slice(i, i + n);
    }
    i += n;
  }
  return out;
}

/**
 * A character Rust's `{:?}` of a str writes as `\u{…}` (core's `char::escape_debug_ext` with
 * grapheme extenders escaped): what Rust does not count printable (Unicode categories Cc, Cf,
 * Cs, Co, Cn, Zl, Zp, Zs but the space) and the grapheme extenders; here every combining
 * mark (\p{M}) too. A string of stacked marks shown raw paints over the lines around it.
 */
const UNSHOWN = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{M}\p{Grapheme_Extend}]/u;

/**
 * `s` quoted as the CLI prints a typed-data string (cli/src/decode.rs: Rust's `{:?}`): `"`,
 * `\` and \t \r \n \0 escaped short, every {@link UNSHOWN} character as `\u{…}` (lowercase
 * hex, as Rust writes it), every other character as it is. Combining marks never reach the
 * page raw beside Approve (a review of 2026-12-07).
 */
export function quoted(s) {
  let out = '"';
  for (const c of String(s)) {
    const short = { '"': '\\"', "\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\0": "\\0" }[c];
    if (short) out += short;
    else if (c !== " " && UNSHOWN.test(c)) out += `\\u{${c.codePointAt(0).toString(16)}}`;
    else out += c;
  }
  return out + '"';
}

/** `text` with every {@link UNSHOWN} character but the space, newline and tab written as `\u{…}`. */
export function unmarked(text) {
  let out = "";
  for (const c of String(text)) {
    out += c !== " " && c !== "\n" && c !== "\t" && UNSHOWN.test(c) ? `\\u{${c.codePointAt(0).toString(16)}}` : c;
  }
  return out;
}
