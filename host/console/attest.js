// Verification of a Nitro Enclaves attestation document in the browser, check for check as
// attestation/src/verify.rs: COSE_Sign1 with ES384, the document's fields, the certificate
// chain to the trusted root (AWS Nitro Root-G1, pinned by its SHA-256, or a root the owner
// gives), the signature, time, debug mode, and the expected PCRs, nonce and public key.
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

// ---- a small CBOR decoder (definite lengths only, as NSM documents are) -------------------

export function decodeCbor(buf) {
  let at = 0;
  const need = (n) => {
    if (at + n > buf.length) throw new Error("CBOR: truncated");
  };
  const arg = (info) => {
    if (info < 24) return BigInt(info);
    const n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!n) throw new Error(`CBOR: unsupported additional info ${info}`);
    need(n);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(buf[at++]);
    return v;
  };
  const item = (depth) => {
    if (depth > 16) throw new Error("CBOR: nested too deep");
    need(1);
    const b = buf[at++];
    const major = b >> 5;
    const info = b & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22 || info === 23) return null;
      throw new Error("CBOR: unsupported simple value or float");
    }
    const v = arg(info);
    const len = () => {
      if (v > BigInt(buf.length)) throw new Error("CBOR: length beyond the input");
      return Number(v);
    };
    switch (major) {
      case 0:
        return v;
      case 1:
        return -1n - v;
      case 2: {
        const n = len();
        need(n);
        return buf.slice(at, (at += n));
      }
      case 3: {
        const n = len();
        need(n);
        return new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(at, (at += n)));
      }
      case 4:
        return Array.from({ length: len() }, () => item(depth + 1));
      case 5: {
        const m = new Map();
        for (let i = 0, n = len(); i < n; i++) {
          const k = item(depth + 1);
          const key = typeof k === "bigint" ? k : String(k);
          if (m.has(key)) throw new Error(`CBOR: duplicate map key ${key}`);
          m.set(key, item(depth + 1));
        }
        return m;
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

/** Parse (without verifying) the COSE_Sign1 and its payload. */
export function parseDocument(bytes) {
  if (bytes.length > 64 * 1024) throw new Error("document too large");
  let cose = decodeCbor(bytes);
  if (cose && cose.tag !== undefined) {
    if (cose.tag !== 18n) throw new Error(`expected CBOR tag 18 (COSE_Sign1), found ${cose.tag}`);
    cose = cose.value;
  }
  if (!Array.isArray(cose) || cose.length !== 4) throw new Error("not a COSE_Sign1 document");
  const [protectedBytes, , payload, signature] = cose;
  if (!(protectedBytes instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    throw new Error("not a COSE_Sign1 document: fields of the wrong type");
  }
  const ph = decodeCbor(protectedBytes);
  if (!(ph instanceof Map) || ph.get(1n) !== -35n) throw new Error("COSE protected header does not say ES384 (-35)");
  const m = decodeCbor(payload);
  if (!(m instanceof Map)) throw new Error("attestation payload is not a map");
  if (m.get("digest") !== "SHA384") throw new Error(`unsupported PCR digest ${m.get("digest")}`);
  const pcrsMap = m.get("pcrs");
  if (!(pcrsMap instanceof Map) || pcrsMap.size === 0) throw new Error("attestation document has no pcrs");
  const pcrs = {};
  for (const [k, v] of pcrsMap) {
    if (typeof k !== "bigint" || !(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) {
      throw new Error("pcrs: bad entry");
    }
    pcrs[Number(k)] = v;
  }
  const cabundle = m.get("cabundle");
  if (!Array.isArray(cabundle) || cabundle.some((c) => !(c instanceof Uint8Array))) throw new Error("bad cabundle");
  const ts = m.get("timestamp");
  if (typeof ts !== "bigint") throw new Error("timestamp: expected an unsigned integer");
  return {
    protectedBytes,
    payload,
    signature,
    moduleId: m.get("module_id"),
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

/** Expected PCRs from a pcrs.json text (bridle's or nitro-cli's `Measurements`). */
export function parsePcrsJson(text) {
  let obj = JSON.parse(text);
  if (obj.Measurements) obj = obj.Measurements;
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    const m = /^pcr(\d+)$/i.exec(k);
    if (!m) continue;
    const b = hexToBytes(String(v).startsWith("0x") ? v : "0x" + v);
    if (![32, 48, 64].includes(b.length)) throw new Error(`${k}: ${b.length} bytes, expected 48`);
    out[Number(m[1])] = b;
  }
  if (Object.keys(out).length === 0) throw new Error('no "PCR<n>" entry');
  return out;
}

/**
 * Verify `bytes` against `opts` = {rootPem?, pcrs: {index: bytes}, anyImage, allowDebug,
 * nonce?, publicKey?, userData?, nowMs?, maxAgeSecs?}. Returns the verified fields; throws
 * naming the first check that failed.
 */
export function verifyAttestation(bytes, opts) {
  const pcrs = opts.pcrs ?? {};
  if (!opts.anyImage && !(0 in pcrs || (1 in pcrs && 2 in pcrs))) {
    throw new Error("no expected image: give the image's PCR0 (or PCR1 and PCR2), or accept any image explicitly");
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

