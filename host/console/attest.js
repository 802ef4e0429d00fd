// Verification of a Nitro Enclaves attestation document in the browser, check for check as
// attestation/src/verify.rs: COSE_Sign1 with ES384 (no crit), the document's fields (CBOR of
// definite or indefinite lengths), the certificate chain to the trusted root (AWS Nitro
// Root-G1, pinned by its SHA-256, or a root the owner gives) and its leaf, the signature,
// time, debug mode, and the expected PCRs (which must pin an image unless any image is
// accepted explicitly), nonce and public key; and pcrs.json as attestation/src/pcrs.rs reads it.
import { cbor } from "./verify.js";
import { bytesToHex, equalBytes, hexToBytes } from "./bytes.js";
import { verifyChain, parseCert, pemToDer, fingerprint, ecdsaVerify } from "./x509.js";

export const AWS_NITRO_ROOT_G1_PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----`;
export const AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

// ---- a small CBOR decoder ------------------------------------------------------------------
// Definite and indefinite lengths (RFC 8949 §3.2: newer NSMs send the payload map of
// indefinite length); integers, byte and text strings, arrays, maps, tags, false, true,
// null. No floats or other simple values. At most 16 levels of nesting.

const MAX_DEPTH = 16;
const MAJOR_NAMES = ["an unsigned integer", "a negative integer", "a byte string", "a text string", "an array", "a map", "a tag", "a simple value"];
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function decodeCbor(buf) {
  let at = 0;
  const need = (n) => {
    if (at + n > buf.length) throw new Error("CBOR: truncated");
  };
  const arg = (info) => {
    if (info < 24) return BigInt(info);
    const n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!n) throw new Error(`CBOR: reserved additional info ${info}`);
    need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(buf[at++]);
    return v;
  };
  const len = (v) => {
    if (v > BigInt(buf.length)) throw new Error("CBOR: length beyond the input");
    return Number(v);
  };
  const utf8 = (bytes) => {
    try {
      return utf8Decoder.decode(bytes);
    } catch {
      throw new Error("CBOR: text string is not UTF-8");
    }
  };
  // The 0xff "break" that ends an indefinite-length item; consumed when found.
  const isBreak = () => {
    need(1);
    if (buf[at] !== 0xff) return false;
    at++;
    return true;
  };
  // The chunks of an indefinite-length string: each a definite string of the same major
  // type, until the break.
  const chunks = (major) => {
    const parts = [];
    while (!isBreak()) {
      const b = buf[at++];
      if (b >> 5 !== major) {
        throw new Error(`CBOR: a chunk of an indefinite-length string is ${MAJOR_NAMES[b >> 5]}, not ${MAJOR_NAMES[major]}`);
      }
      if ((b & 0x1f) === 31) throw new Error("CBOR: a chunk of an indefinite-length string is itself of indefinite length");
      const n = len(arg(b & 0x1f));
      need(n);
      parts.push(buf.subarray(at, (at += n)));
    }
    return parts;
  };
  const mapEntries = (depth, more) => {
    const m = new Map();
    while (more()) {
      const k = item(depth + 1);
      // Integer and text keys only, as attestation/src reads a document: an array or a
      // tagged item is no key (a review of 2026-12-06: `["digest"]` read as "digest").
      if (typeof k !== "bigint" && typeof k !== "string") throw new Error("CBOR: a map key that is neither an integer nor text");
      const key = k;
      if (m.has(key)) throw new Error(`CBOR: duplicate map key ${key}`);
      if (buf[at] === 0xff) throw new Error(`CBOR: map key ${key} has no value`);
      m.set(key, item(depth + 1));
    }
    return m;
  };
  const indefinite = (major, depth) => {
    switch (major) {
      case 2: {
        const parts = chunks(2);
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let o = 0;
        for (const p of parts) {
          out.set(p, o);
          o += p.length;
        }
        return out;
      }
      case 3:
        return chunks(3).map(utf8).join("");
      case 4: {
        const out = [];
        while (!isBreak()) out.push(item(depth + 1));
        return out;
      }
      case 5:
        return mapEntries(depth, () => !isBreak());
      default:
        throw new Error(`CBOR: ${MAJOR_NAMES[major]} cannot be of indefinite length`);
    }
  };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw new Error("CBOR: nested too deep");
    need(1);
    const b = buf[at++];
    const major = b >> 5;
    const info = b & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22 || info === 23) return null;
      if (info === 31) throw new Error("CBOR: break outside an indefinite-length item");
      throw new Error("CBOR: unsupported simple value or float");
    }
    if (info === 31) return indefinite(major, depth);
    const v = arg(info);
    switch (major) {
      case 0:
        return v;
      case 1:
        return -1n - v;
      case 2: {
        const n = len(v);
        need(n);
        return buf.slice(at, (at += n));
      }
      case 3: {
        const n = len(v);
        need(n);
        return utf8(buf.subarray(at, (at += n)));
      }
      case 4:
        return Array.from({ length: len(v) }, () => item(depth + 1));
      case 5: {
        let n = len(v);
        return mapEntries(depth, () => n-- > 0);
      }
      case 6:
        return { tag: v, value: item(depth + 1) };
      default:
        throw new Error("CBOR: bad major type");
    }
  };
  const v = item(0);
  if (at !== buf.length) throw new Error(`${buf.length - at} trailing bytes after the CBOR item`);
  return v;
}

function bytesField(m, name, optional = false) {
  const v = m.get(name);
  if (v === undefined || v === null) {
    if (optional) return null;
    throw new Error(`attestation document has no ${name} field`);
  }
  if (!(v instanceof Uint8Array)) throw new Error(`${name}: expected a byte string`);
  return optional && v.length === 0 ? null : v;
}

/** The ES384 protected header, as attestation/src/cose.rs reads it: `alg` -35, no `crit`. */
function checkProtectedHeader(protectedBytes) {
  if (protectedBytes.length === 0) throw new Error("COSE protected header is empty: no algorithm");
  const ph = decodeCbor(protectedBytes);
  if (!(ph instanceof Map)) throw new Error("COSE protected header is not a map");
  if (ph.has(2n)) throw new Error("COSE protected header: critical header parameters (crit) are not supported");
  if (ph.get(1n) !== -35n) throw new Error("COSE protected header does not say ES384 (-35)");
}

/** Parse (without verifying) the COSE_Sign1 and its payload, as attestation/src/document.rs. */
export function parseDocument(bytes) {
  if (bytes.length > 64 * 1024) throw new Error("document too large");
  let cose = decodeCbor(bytes);
  if (cose && cose.tag !== undefined) {
    if (cose.tag !== 18n) throw new Error(`expected CBOR tag 18 (COSE_Sign1), found ${cose.tag}`);
    cose = cose.value;
  }
  if (!Array.isArray(cose) || cose.length !== 4) throw new Error("not a COSE_Sign1 document");
  const [protectedBytes, unprotected, payload, signature] = cose;
  if (!(protectedBytes instanceof Uint8Array) || !(unprotected instanceof Map) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    throw new Error("not a COSE_Sign1 document: fields of the wrong type");
  }
  checkProtectedHeader(protectedBytes);
  const m = decodeCbor(payload);
  if (!(m instanceof Map)) throw new Error("attestation payload is not a map");
  const moduleId = m.get("module_id");
  if (typeof moduleId !== "string" || moduleId === "") throw new Error("module_id: expected a non-empty text string");
  if (m.get("digest") !== "SHA384") throw new Error(`unsupported PCR digest ${m.get("digest")}`);
  const pcrsMap = m.get("pcrs");
  if (!(pcrsMap instanceof Map) || pcrsMap.size === 0) throw new Error("attestation document has no pcrs");
  const pcrs = {};
  for (const [k, v] of pcrsMap) {
    if (typeof k !== "bigint" || k < 0n || k > 65535n || !(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) {
      throw new Error("pcrs: bad entry");
    }
    pcrs[Number(k)] = v;
  }
  const cabundle = m.get("cabundle");
  if (!Array.isArray(cabundle) || cabundle.some((c) => !(c instanceof Uint8Array))) throw new Error("bad cabundle");
  if (cabundle.length === 0) throw new Error("cabundle: empty");
  if (cabundle.some((c) => c.length === 0)) throw new Error("cabundle: contains an empty certificate");
  const ts = m.get("timestamp");
  if (typeof ts !== "bigint") throw new Error("timestamp: expected an unsigned integer");
  if (ts === 0n) throw new Error("timestamp: zero");
  return {
    protectedBytes,
    payload,
    signature,
    moduleId,
    timestampMs: Number(ts),
    pcrs,
    certificate: bytesField(m, "certificate"),
    cabundle,
    publicKey: bytesField(m, "public_key", true),
    userData: bytesField(m, "user_data", true),
    nonce: bytesField(m, "nonce", true),
  };
}

/** The trusted root: the embedded AWS root (pin-checked) or a PEM the owner gave. */
export function trustedRoot(pem) {
  const derBytes = pemToDer(pem ?? AWS_NITRO_ROOT_G1_PEM);
  if (!pem && fingerprint(derBytes) !== AWS_NITRO_ROOT_G1_SHA256) throw new Error("embedded AWS root does not match its pin");
  return parseCert("trusted root certificate", derBytes);
}

/**
 * Throws if an object of the JSON `text` (valid JSON) gives a key twice: JSON.parse keeps the
 * last silently, and an expected value must not be skippable (attestation/src/pcrs.rs).
 */
function refuseDuplicateKeys(text) {
  const objects = []; // per open object: its keys; null for an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") {
      objects.push(new Set());
      expectKey = true;
    } else if (c === "[") {
      objects.push(null);
    } else if (c === "}" || c === "]") {
      objects.pop();
      expectKey = false;
    } else if (c === ",") {
      expectKey = objects.length > 0 && objects[objects.length - 1] !== null;
    } else if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      if (expectKey) {
        const key = JSON.parse(text.slice(start, i + 1));
        const keys = objects[objects.length - 1];
        if (keys.has(key)) throw new Error(`key ${JSON.stringify(key)} is given twice`);
        keys.add(key);
        expectKey = false;
      }
    }
  }
}

const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isPcrKey = (k) => /^pcr/i.test(k); // ASCII case only, as eq_ignore_ascii_case

/**
 * Expected PCRs from a pcrs.json text (bridle's or nitro-cli's `Measurements`), as
 * attestation/src/pcrs.rs reads it: every key `PCR<n>` (any case) is an expected value, never
 * skipped; an index given twice, or PCR keys both beside and in `Measurements`, is refused.
 */
export function parsePcrsJson(text) {
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${e.message}`);
  }
  if (!isObject(obj)) throw new Error('expected a JSON object of "PCR<n>": "<hex>"');
  refuseDuplicateKeys(text);
  if (Object.hasOwn(obj, "Measurements")) {
    const outer = Object.keys(obj).find(isPcrKey);
    if (outer !== undefined) throw new Error(`"${outer}" beside "Measurements": the expected values must be in one place`);
    obj = obj.Measurements;
    if (!isObject(obj)) throw new Error('"Measurements" is not an object');
  }
  const out = {};
  const keyOf = {};
  for (const [k, v] of Object.entries(obj)) {
    if (!isPcrKey(k)) continue;
    const digits = k.slice(3);
    if (!/^[0-9]+$/.test(digits) || Number(digits) > 65535) throw new Error(`key "${k}": PCR index is not a number 0..=65535`);
    const index = Number(digits);
    if (typeof v !== "string") throw new Error(`${k}: expected a hex string`);
    if (index in out) throw new Error(`PCR${index} is given twice ("${keyOf[index]}" and "${k}")`);
    let b;
    try {
      b = hexToBytes(v.startsWith("0x") ? v : "0x" + v);
    } catch (e) {
      throw new Error(`${k}: ${e.message}`);
    }
    if (![32, 48, 64].includes(b.length)) throw new Error(`${k}: ${b.length} bytes, expected 48 (96 hex digits), or 32/64`);
    out[index] = b;
    keyOf[index] = k;
  }
  if (Object.keys(out).length === 0) throw new Error('no "PCR<n>" entry');
  return out;
}

/**
 * Whether `pcrs` (index → bytes) pins an enclave image: PCR0, or both PCR1 and PCR2, each
 * not all zeros — a debug-mode enclave measures zeros whatever it runs
 * (attestation/src/verify.rs `pins_image`).
 */
export function pinsImage(pcrs) {
  const pins = (i) => pcrs[i] instanceof Uint8Array && pcrs[i].some((b) => b !== 0);
  return pins(0) || (pins(1) && pins(2));
}

/**
 * Verify `bytes` against `opts` = {rootPem?, pcrs: {index: bytes}, anyImage, allowDebug,
 * nonce?, publicKey?, userData?, nowMs?, maxAgeSecs?}. Returns the verified fields; throws
 * naming the first check that failed.
 */
export function verifyAttestation(bytes, opts) {
  const pcrs = opts.pcrs ?? {};
  if (!opts.anyImage && !pinsImage(pcrs)) {
    throw new Error(
      "no expected image: give the image's PCR0 (or PCR1 and PCR2), not all zeros (a debug-mode enclave's, which pins no image), or accept any image explicitly",
    );
  }
  const d = parseDocument(bytes);
  const nowMs = opts.nowMs ?? Date.now();
  const root = trustedRoot(opts.rootPem);
  const chain = verifyChain(d.certificate, d.cabundle, root, Math.floor(nowMs / 1000));
  const leaf = chain[0];
  if (d.signature.length !== 96) throw new Error("COSE signature is not 96 bytes (ES384 r‖s)");
  const sigStructure = cbor.array([cbor.text("Signature1"), cbor.bytes(d.protectedBytes), cbor.bytes(new Uint8Array()), cbor.bytes(d.payload)]);
  if (!ecdsaVerify("P384", "sha384", d.signature, sigStructure, leaf.publicKey, "compact")) {
    throw new Error(`COSE_Sign1 signature does not verify with the leaf certificate key ("${leaf.subject}")`);
  }
  const ts = d.timestampMs;
  if (ts / 1000 < leaf.notBefore || Math.floor(ts / 1000) > leaf.notAfter) throw new Error("document timestamp outside the leaf certificate's validity");
  const maxAge = (opts.maxAgeSecs ?? 300) * 1000;
  if (Math.abs(nowMs - ts) > maxAge) throw new Error(`document timestamp ${ts} ms is more than ${maxAge / 1000} s from now`);
  if (!(0 in d.pcrs)) throw new Error("PCR0 (enclave image) is missing");
  const debug = [0, 1, 2].find((i) => d.pcrs[i] && d.pcrs[i].every((b) => b === 0));
  if (debug !== undefined && !opts.allowDebug) throw new Error(`debug-mode enclave (PCR${debug} is all zeros)`);
  for (const [i, want] of Object.entries(pcrs)) {
    if (!d.pcrs[i]) throw new Error(`PCR${i} missing from the document`);
    if (!equalBytes(d.pcrs[i], want)) throw new Error(`PCR${i} mismatch: expected ${bytesToHex(want, false)}, found ${bytesToHex(d.pcrs[i], false)}`);
  }
  const same = (name, want, got) => {
    if (want && !(got && equalBytes(want, got))) throw new Error(`${name} mismatch: expected ${bytesToHex(want)}, found ${got ? bytesToHex(got) : "none"}`);
  };
  same("nonce", opts.nonce, d.nonce);
  same("public_key", opts.publicKey, d.publicKey);
  same("user_data", opts.userData, d.userData);
  return {
    moduleId: d.moduleId,
    timestampMs: ts,
    pcrs: d.pcrs,
    publicKey: d.publicKey,
    userData: d.userData,
    nonce: d.nonce,
    chain: chain.map((c) => ({ subject: c.subject, sha256: fingerprint(c.der) })),
    rootSha256: fingerprint(root.der),
  };
}

