// EIP-712 typed data of a held request (`eth_signTypedData_v4` JSON text): its signing
// digest keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message)), computed here exactly as
// the enclave does (common/src/typed.rs `parse`: the bounds of common/src/bounds.rs, then
// alloy-dyn-abi's `TypedData::eip712_signing_hash`), and the message as it is hashed — only
// the declared fields, coerced to their declared types — for the owner to read.
//
// What the enclave would refuse is refused here too (an Error, `typedDataDigest` → null);
// a few exotic forms alloy accepts are refused here as well (array-of-bytes domain fields,
// struct names that spell an elementary type or use `.`), so the page says "not
// recomputed" rather than guess. No DOM here: the same file runs under node in
// tests/tests/console_digests.rs.
import { keccak, utf8, concat, bytesToHex, checksum, quoted, unmarked } from "./bytes.js";

// common/src/typed.rs and common/src/bounds.rs.
export const MAX_TYPED_DATA = 64 * 1024;
const MAX_JSON_DEPTH = 32;
const MAX_STRUCTS = 64;
const MAX_FIELDS = 64;
const MAX_ARRAY_DIMS = 4;
const MAX_TYPE_NAME = 256;
const MAX_STRUCT_DEPTH = 8;
const MAX_JSON_VALUES = 16384;

/** The longest `bytes` value shown whole; a longer one is shown up to it, saying so. */
export const MAX_BYTES_SHOWN = 256;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const U256_LIMIT = 1n << 256n;

// ---- JSON, as serde_json reads it -------------------------------------------------------------
//
// JSON.parse would round integers above 2^53, which serde_json keeps exactly up to 2^64 - 1.
// This reader keeps every number's text (JsonNumber), objects as Maps (a repeated key: the
// last value, as serde_json), and refuses what serde_json refuses: lone surrogates, control
// characters in strings, nesting deeper than the enclave's bound.

export class JsonNumber {
  constructor(raw) {
    this.raw = raw;
  }
  /** serde_json's `as_u64`: an integer literal (no fraction or exponent) in [0, 2^64). */
  asU64() {
    if (!/^(0|[1-9][0-9]*)$/.test(this.raw)) return null;
    const v = BigInt(this.raw);
    return v <= U64_MAX ? v : null;
  }
  /** serde_json's `as_i64`, or `as_u64` when that fails ("-0" is a float to serde_json). */
  asI64OrU64() {
    if (/^-(0|[1-9][0-9]*)$/.test(this.raw)) {
      const v = BigInt(this.raw);
      return v < 0n && v >= I64_MIN ? v : null;
    }
    return this.asU64();
  }
  toString() {
    return this.raw;
  }
}

export function parseJson(text, maxDepth = MAX_JSON_DEPTH) {
  let i = 0;
  const n = text.length;
  const fail = (why) => {
    throw new Error(`JSON: ${why} at ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("a bad \\u escape");
    i += 4;
    return parseInt(h, 16);
  };
  const string = () => {
    i++; // "
    let out = "";
    let start = i;
    for (;;) {
      if (i >= n) fail("an unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail("a control character in a string");
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) fail("a lone surrogate");
        i += 2;
        continue;
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      i++;
      const e = text[i++];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) out += simple;
      else if (e === "u") {
        const u = hex4();
        if (u >= 0xd800 && u <= 0xdbff) {
          if (text.slice(i, i + 2) !== "\\u") fail("a lone surrogate escape");
          i += 2;
          const lo = hex4();
          if (lo < 0xdc00 || lo > 0xdfff) fail("a lone surrogate escape");
          out += String.fromCharCode(u, lo);
        } else if (u >= 0xdc00 && u <= 0xdfff) {
          fail("a lone surrogate escape");
        } else {
          out += String.fromCharCode(u);
        }
      } else fail("a bad escape");
      start = i;
    }
  };
  const value = (depth) => {
    ws();
    if (i >= n) fail("a missing value");
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth + 1 > maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      ws();
      if (c === "[") {
        const arr = [];
        if (text[i] === "]") {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ",") i++;
          else if (text[i] === "]") {
            i++;
            return arr;
          } else fail("expected , or ]");
        }
      }
      const obj = new Map();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const k = string();
        ws();
        if (text[i] !== ":") fail("expected :");
        i++;
        obj.set(k, value(depth + 1));
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else fail("expected , or }");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 4096));
    if (!m || !m[0] || m[0] === "-") fail("an unexpected character");
    i += m[0].length;
    return new JsonNumber(m[0]);
  };
  const v = value(0);
  ws();
  if (i !== n) fail("trailing characters");
  return v;
}

function countValues(root) {
  let count = 0;
  const stack = [root];
  while (stack.length) {
    const x = stack.pop();
    if (++count > MAX_JSON_VALUES) return count;
    if (Array.isArray(x)) stack.push(...x);
    else if (x instanceof Map) stack.push(...x.values());
  }
  return count;
}

// ---- integers as alloy reads them -------------------------------------------------------------

/** ruint's `U256::from_str`: 0x/0o/0b prefix (any case) or decimal, `_` ignored, "" is 0. */
export function parseU256(s) {
  if (typeof s !== "string") return null;
  const p = s.slice(0, 2);
  const radix = { "0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2 }[p] ?? 10;
  const body = (radix === 10 ? s : s.slice(2)).replaceAll("_", "");
  const ok = { 16: /^[0-9a-fA-F]*$/, 10: /^[0-9]*$/, 8: /^[0-7]*$/, 2: /^[01]*$/ }[radix];
  if (!ok.test(body)) return null;
  if (body === "") return 0n;
  const v = BigInt(radix === 10 ? body : `0${{ 16: "x", 8: "o", 2: "b" }[radix]}${body}`);
  return v < U256_LIMIT ? v : null;
}

/** alloy's `I256::from_str`: an optional sign, then as `U256::from_str`, within I256. */
function parseI256(s) {
  if (typeof s !== "string") return null;
  const neg = s[0] === "-";
  const abs = parseU256(s[0] === "+" || neg ? s.slice(1) : s);
  if (abs === null) return null;
  if (neg ? abs > 1n << 255n : abs >= 1n << 255n) return null;
  return neg ? -abs : abs;
}

/** const-hex `decode`: an optional 0x/0X, an even number of hex digits. */
function decodeHex(s) {
  if (typeof s !== "string") return null;
  const h = s.startsWith("0x") || s.startsWith("0X") ? s.slice(2) : s;
  if (h.length % 2 || !/^[0-9a-fA-F]*$/.test(h)) return null;
  const out = new Uint8Array(h.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(h.substr(2 * k, 2), 16);
  return out;
}

function word(v) {
  // Two's complement for negatives.
  let x = BigInt.asUintN(256, v);
  const out = new Uint8Array(32);
  for (let k = 31; k >= 0; k--) {
    out[k] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

const leftAligned = (b) => concat(b, new Uint8Array(32 - b.length));
const rightAligned = (b) => concat(new Uint8Array(32 - b.length), b);

// ---- types ------------------------------------------------------------------------------------

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// Struct names: alloy also allows `:` after the first character (namespaces).
const STRUCT_NAME = /^[A-Za-z_$][A-Za-z0-9_$:]*$/;

/** An elementary type alloy resolves (`RootType::resolve`), or null. */
function elementary(base) {
  if (["address", "bool", "string", "bytes"].includes(base)) return { kind: base };
  let m = /^bytes([0-9]+)$/.exec(base);
  if (m) {
    const size = Number(m[1]);
    return size >= 1 && size <= 32 ? { kind: "bytesN", size } : null;
  }
  m = /^(u?)int([0-9]+)$/.exec(base);
  if (m) {
    const bits = Number(m[2]);
    return bits >= 8 && bits <= 256 && bits % 8 === 0 ? { kind: m[1] ? "uint" : "int", bits } : null;
  }
  return null;
}

/** Names a struct may not take here (alloy would resolve or treat them specially). */
const RESERVED = /^(address|bool|string|bytes|function|u?int|u?int[0-9]+|bytes[0-9]+)$/;

/** Parse a field type `Base[2][]` (dimensions innermost first; null = dynamic). */
function parseFieldType(t) {
  if (typeof t !== "string" || t.length === 0 || utf8(t).length > MAX_TYPE_NAME) throw new Error(`a field type of bad length`);
  const m = /^([^[\]]*)((?:\[[0-9]*\])*)$/.exec(t);
  if (!m) throw new Error(`type \`${t}\` has a bad array dimension`);
  const base = m[1];
  const dims = [...m[2].matchAll(/\[([0-9]*)\]/g)].map((d) => {
    if (d[1].length > 6) throw new Error(`type \`${t}\` has a bad array dimension`);
    if (d[1] === "") return null;
    const size = Number(d[1]);
    if (size === 0) throw new Error(`type \`${t}\` has an array of size 0`);
    return size;
  });
  if (dims.length > MAX_ARRAY_DIMS) throw new Error(`type \`${t}\` has more than ${MAX_ARRAY_DIMS} array dimensions`);
  if (!IDENT.test(base)) throw new Error(`type \`${t}\` has no valid base type name`);
  return { text: t, base, dims };
}

/** The `types` table, checked as common/src/bounds.rs and alloy's parser check it. */
function readTypes(types) {
  if (!(types instanceof Map)) throw new Error("no `types` object");
  if (types.size > MAX_STRUCTS) throw new Error(`${types.size} struct types; at most ${MAX_STRUCTS}`);
  const structs = new Map();
  for (const [name, fields] of types) {
    if (!STRUCT_NAME.test(name) || utf8(name).length > MAX_TYPE_NAME) throw new Error(`struct name \`${name}\` is not a type name`);
    if (RESERVED.test(name)) throw new Error(`struct name \`${name}\` is an elementary type's`);
    if (!Array.isArray(fields)) throw new Error(`type \`${name}\` is not a list of fields`);
    if (fields.length > MAX_FIELDS) throw new Error(`type \`${name}\` has ${fields.length} fields; at most ${MAX_FIELDS}`);
    structs.set(
      name,
      fields.map((f) => {
        if (!(f instanceof Map)) throw new Error(`a field of \`${name}\` is not an object`);
        const fname = f.get("name");
        if (typeof fname !== "string") throw new Error(`a field of \`${name}\` has no name`);
        if (utf8(fname).length > MAX_TYPE_NAME) throw new Error(`a field name of more than ${MAX_TYPE_NAME} bytes`);
        return { name: fname, type: parseFieldType(f.get("type")) };
      }),
    );
  }
  for (const [name, fields] of structs) {
    for (const f of fields) {
      if (!elementary(f.type.base) && !structs.has(f.type.base)) {
        throw new Error(`type \`${f.type.base}\` (field \`${f.name}\` of \`${name}\`) is not declared`);
      }
    }
  }
  // No cycles (not even a struct holding itself) and bounded nesting.
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) throw new Error(`struct \`${name}\` refers to itself`);
    visiting.add(name);
    let d = 0;
    for (const f of structs.get(name)) if (structs.has(f.type.base) && !elementary(f.type.base)) d = Math.max(d, depthOf(f.type.base) + 1);
    visiting.delete(name);
    if (d > MAX_STRUCT_DEPTH) throw new Error(`struct \`${name}\` nests structs ${d} deep; at most ${MAX_STRUCT_DEPTH}`);
    depth.set(name, d);
    return d;
  };
  for (const name of structs.keys()) depthOf(name);
  return structs;
}

/** EIP-712 encodeType: the struct, then every struct it refers to, sorted. */
function encodeType(structs, name) {
  const seen = [];
  const visit = (n) => {
    if (seen.includes(n)) return;
    seen.push(n);
    for (const f of structs.get(n)) if (!elementary(f.type.base)) visit(f.type.base);
  };
  visit(name);
  const one = (n) => `${n}(${structs.get(n).map((f) => `${f.type.text} ${f.name}`).join(",")})`;
  const [first, ...rest] = seen.map(one);
  rest.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return first + rest.join("");
}

// ---- values -----------------------------------------------------------------------------------

function atomicWord(t, v, where) {
  const bad = () => new Error(`${where}: ${v instanceof JsonNumber ? v.raw : typeof v === "string" ? quoted(v) : unmarked(JSON.stringify(v))} is not a ${t.kind === "bytesN" ? `bytes${t.size}` : t.kind === "uint" || t.kind === "int" ? t.kind + t.bits : t.kind}`);
  switch (t.kind) {
    case "bool": {
      const b = v === true || v === "true" ? true : v === false || v === "false" ? false : null;
      if (b === null) throw bad();
      return { word: word(b ? 1n : 0n), show: String(b) };
    }
    case "uint": {
      const x = v instanceof JsonNumber ? v.asU64() : parseU256(v);
      if (x === null || x >= 1n << BigInt(t.bits)) throw bad();
      return { word: word(x), show: x.toString() };
    }
    case "int": {
      const x = v instanceof JsonNumber ? v.asI64OrU64() : parseI256(v);
      const half = 1n << BigInt(t.bits - 1);
      if (x === null || x < -half || x >= half) throw bad();
      return { word: word(x), show: x.toString() };
    }
    case "bytesN": {
      const b = decodeHex(v);
      if (!b || b.length !== t.size) throw bad();
      return { word: leftAligned(b), show: bytesToHex(b) };
    }
    case "address": {
      const b = typeof v === "string" && /^(0[xX])?[0-9a-fA-F]{40}$/.test(v) ? decodeHex(v) : null;
      if (!b) throw bad();
      return { word: rightAligned(b), show: checksum(bytesToHex(b)) };
    }
    case "string": {
      if (typeof v !== "string") throw bad();
      // As the CLI prints it (Rust's `{:?}`): combining marks and what does not show as
      // `\u{…}`, never raw beside Approve (a review of 2026-12-07).
      return { word: keccak(utf8(v)), show: quoted(v) };
    }
    case "bytes": {
      let b = decodeHex(v);
      if (!b && Array.isArray(v)) {
        const xs = v.map((x) => (x instanceof JsonNumber ? x.asU64() : null));
        if (xs.every((x) => x !== null && x <= 255n)) b = Uint8Array.from(xs.map(Number));
      }
      if (!b) throw bad();
      // As the CLI shows it (cli/src/decode.rs MAX_BYTES_SHOWN): 64 bytes hid a
      // transferFrom's recipient and amount while Approve was offered (a review of 2026-12-07).
      const shown = b.length > MAX_BYTES_SHOWN
        ? `${bytesToHex(b.subarray(0, MAX_BYTES_SHOWN))}… (${b.length} bytes; the first ${MAX_BYTES_SHOWN} shown)`
        : bytesToHex(b);
      return { word: keccak(b), show: shown };
    }
  }
  throw new Error(`${where}: type ${t.kind} is not supported`);
}

class Encoder {
  constructor(structs, maxLines) {
    this.structs = structs;
    this.typeHashes = new Map();
    this.lines = [];
    this.maxLines = maxLines;
    this.dropped = 0;
  }
  line(indent, text) {
    if (this.lines.length < this.maxLines) this.lines.push("  ".repeat(indent) + text);
    else this.dropped++;
  }
  typeHash(name) {
    if (!this.typeHashes.has(name)) this.typeHashes.set(name, keccak(utf8(encodeType(this.structs, name))));
    return this.typeHashes.get(name);
  }
  /** hashStruct(name, value), writing the fields as lines at `indent`. */
  hashStruct(name, v, where, indent) {
    if (!(v instanceof Map)) throw new Error(`${where}: not an object for struct ${name}`);
    const words = [this.typeHash(name)];
    for (const f of this.structs.get(name)) {
      if (!v.has(f.name)) throw new Error(`${where}: field \`${f.name}\` of ${name} is missing`);
      // A field name is any text: quoted unless plain, so it cannot forge a line, and with
      // combining marks and what does not show escaped (as a string value, {@link quoted}).
      const label = /^[A-Za-z0-9_$]+$/.test(f.name) ? f.name : quoted(f.name);
      words.push(this.field(f.type, f.type.dims.length, v.get(f.name), `${where}.${label}`, indent, label));
    }
    return keccak(...words);
  }
  /** The 32-byte encoding of `v` as type `t` with its first `dims` dimensions. */
  field(t, dims, v, where, indent, label) {
    if (dims > 0) {
      const size = t.dims[dims - 1];
      if (!Array.isArray(v) || (size !== null && v.length !== size)) {
        throw new Error(`${where}: not an array${size !== null ? ` of ${size}` : ""}`);
      }
      this.line(indent, `${label}: [${v.length} item${v.length === 1 ? "" : "s"}]`);
      return keccak(...v.map((x, k) => this.field(t, dims - 1, x, `${where}[${k}]`, indent + 1, `[${k}]`)));
    }
    const el = elementary(t.base);
    if (el) {
      const { word: w, show } = atomicWord(el, v, where);
      this.line(indent, `${label}: ${show}`);
      return w;
    }
    this.line(indent, `${label} (${t.base}):`);
    return this.hashStruct(t.base, v, where, indent + 1);
  }
}

/** The EIP-712 domain as alloy's `Eip712Domain` reads it: the fields present in `domain`. */
function readDomain(d) {
  if (d === undefined) d = new Map();
  if (!(d instanceof Map)) throw new Error("`domain` is not an object");
  const fields = [];
  const opt = (k) => (d.has(k) && d.get(k) !== null ? d.get(k) : undefined);
  const name = opt("name");
  const version = opt("version");
  const chainId = opt("chainId");
  const vc = opt("verifyingContract");
  const salt = opt("salt");
  for (const [k, v] of [["name", name], ["version", version]]) {
    if (v === undefined) continue;
    if (typeof v !== "string") throw new Error(`domain ${k} is not a string`);
    fields.push({ decl: `string ${k}`, word: keccak(utf8(v)), show: `${k} ${quoted(v)}` });
  }
  if (chainId !== undefined) {
    const c = chainId instanceof JsonNumber ? chainId.asU64() : parseU256(chainId);
    if (c === null) throw new Error("domain chainId is not a uint256");
    fields.push({ decl: "uint256 chainId", word: word(c), show: `chainId ${c}` });
  }
  if (vc !== undefined) {
    const b = typeof vc === "string" && /^(0[xX])?[0-9a-fA-F]{40}$/.test(vc) ? decodeHex(vc) : null;
    if (!b) throw new Error("domain verifyingContract is not an address");
    fields.push({ decl: "address verifyingContract", word: rightAligned(b), show: `verifyingContract ${checksum(bytesToHex(b))}` });
  }
  if (salt !== undefined) {
    const b = typeof salt === "string" ? decodeHex(salt) : null;
    if (!b || b.length !== 32) throw new Error("domain salt is not 32 bytes");
    fields.push({ decl: "bytes32 salt", word: b, show: `salt ${bytesToHex(b)}` });
  }
  const typeHash = keccak(utf8(`EIP712Domain(${fields.map((f) => f.decl).join(",")})`));
  return { separator: keccak(typeHash, ...fields.map((f) => f.word)), shown: fields.map((f) => f.show) };
}

const wellFormed = (s) =>
  typeof s.isWellFormed === "function" ? s.isWellFormed() : !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

/**
 * Hash typed-data JSON text as the enclave does. Returns {digest, primaryType, domain (lines),
 * message (lines)}; throws, saying why, what the enclave would refuse (or this page cannot
 * follow).
 */
export function hashTypedData(text, maxLines = 200) {
  if (typeof text !== "string") throw new Error("typed data is not a string");
  if (!wellFormed(text)) throw new Error("typed data is not valid Unicode");
  const size = utf8(text).length;
  if (size > MAX_TYPED_DATA) throw new Error(`typed data of ${size} bytes; at most ${MAX_TYPED_DATA}`);
  let doc = parseJson(text);
  // A JSON string holding the document, as some wallets send it.
  if (typeof doc === "string") doc = parseJson(doc);
  if (!(doc instanceof Map)) throw new Error("typed data is not an object");
  if (countValues(doc) > MAX_JSON_VALUES) throw new Error(`typed data has more than ${MAX_JSON_VALUES} JSON values`);
  const structs = readTypes(doc.get("types"));
  const primaryType = doc.get("primaryType");
  if (typeof primaryType !== "string") throw new Error("no `primaryType`");
  if (primaryType === "EIP712Domain") throw new Error("primaryType EIP712Domain signs no message");
  if (!structs.has(primaryType)) throw new Error(`primaryType \`${primaryType}\` is not a declared struct`);
  const domain = readDomain(doc.get("domain"));
  const enc = new Encoder(structs, maxLines);
  const structHash = enc.hashStruct(primaryType, doc.has("message") ? doc.get("message") : null, "message", 1);
  const message = enc.lines;
  if (enc.dropped) message.push(`  … ${enc.dropped} more line${enc.dropped === 1 ? "" : "s"}`);
  return {
    digest: keccak(Uint8Array.of(0x19, 0x01), domain.separator, structHash),
    primaryType,
    domain: domain.shown,
    message,
  };
}

/** The EIP-712 signing hash of typed-data JSON text, or null where the enclave would refuse it. */
export function typedDataDigest(text) {
  try {
    return hashTypedData(text).digest;
  } catch {
    return null;
  }
}
