// X.509 certificate parsing and chain validation for the Nitro attestation PKI, as
// attestation/src/x509.rs does it: ECDSA (SHA-256/384) over P-256/P-384 keys, names compared
// as DER bytes, CA basic constraints, keyCertSign, path lengths, validity at a given time.
import { p256, p384, sha256, sha384 } from "./vendor/noble.js";
import { equalBytes, bytesToHex } from "./bytes.js";

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  secp384r1: "1.3.132.0.34",
  prime256v1: "1.2.840.10045.3.1.7",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  ecdsaSha384: "1.2.840.10045.4.3.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  cn: "2.5.4.3",
  o: "2.5.4.10",
  ou: "2.5.4.11",
  c: "2.5.4.6",
  l: "2.5.4.7",
  st: "2.5.4.8",
};
const NAMES = { [OID.cn]: "CN", [OID.o]: "O", [OID.ou]: "OU", [OID.c]: "C", [OID.l]: "L", [OID.st]: "ST" };

/** One DER TLV: {tag, start, hdr, len, end, value} over `buf`. */
export function der(buf, at = 0) {
  if (at + 2 > buf.length) throw new Error("DER: truncated");
  const tag = buf[at];
  let len = buf[at + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || at + 2 + n > buf.length) throw new Error("DER: bad length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i];
    if (len < 0x80 || (n > 1 && buf[at + 2] === 0)) throw new Error("DER: length not minimal");
    hdr += n;
  }
  const end = at + hdr + len;
  if (end > buf.length) throw new Error("DER: truncated value");
  return { tag, start: at, hdr, len, end, value: buf.subarray(at + hdr, end), raw: buf.subarray(at, end) };
}

export function children(node) {
  const out = [];
  let at = 0;
  while (at < node.value.length) {
    const c = der(node.value, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

function oid(node) {
  if (node.tag !== 0x06) throw new Error("DER: expected an OID");
  const b = node.value;
  const parts = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

function time(node) {
  const s = new TextDecoder().decode(node.value);
  let m;
  if (node.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const y = Number(m[1]) >= 50 ? 1900 + Number(m[1]) : 2000 + Number(m[1]);
    return Date.UTC(y, m[2] - 1, m[3], m[4], m[5], m[6]) / 1000;
  }
  if (node.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), m[2] - 1, m[3], m[4], m[5], m[6]) / 1000;
  }
  throw new Error(`certificate time ${s} is not UTCTime or GeneralizedTime in UTC`);
}

function nameString(node) {
  const parts = [];
  for (const rdn of children(node)) {
    for (const atv of children(rdn)) {
      const [t, v] = children(atv);
      parts.push(`${NAMES[oid(t)] ?? oid(t)}=${new TextDecoder().decode(v.value)}`);
    }
  }
  return parts.join(", ");
}

/** Parse one DER certificate. `role` names it in errors (leaf, cabundle[i], root). */
export function parseCert(role, bytes) {
  try {
    return parseCertFields(role, bytes);
  } catch (e) {
    // A field missing or of another shape than expected: one clear refusal, naming the role.
    if (e instanceof TypeError || e instanceof RangeError) throw new Error(`${role}: malformed certificate (${e.message})`);
    throw e;
  }
}

function parseCertFields(role, bytes) {
  const fail = (why) => new Error(`${role}: ${why}`);
  let cert;
  try {
    cert = der(bytes);
    if (cert.end !== bytes.length) throw new Error("trailing bytes");
  } catch (e) {
    throw fail(`not a DER X.509 certificate: ${e.message}`);
  }
  const [tbs, sigAlg, sigBits] = children(cert);
  const t = children(tbs);
  let i = t[0].tag === 0xa0 ? 1 : 0; // [0] version
  i++; // serial
  const tbsAlg = t[i++];
  const issuer = t[i++];
  const validity = children(t[i++]);
  const subject = t[i++];
  const spki = children(t[i++]);
  if (!equalBytes(tbsAlg.raw, sigAlg.raw)) throw fail("signature algorithm of TBSCertificate differs from the outer one");
  const alg = children(sigAlg);
  const sigOid = oid(alg[0]);
  if (sigOid !== OID.ecdsaSha384 && sigOid !== OID.ecdsaSha256) throw fail(`unsupported signature algorithm ${sigOid}`);
  if (alg.length > 1) throw fail("ECDSA signature algorithm with parameters");
  if (sigBits.tag !== 0x03 || sigBits.value[0] !== 0) throw fail("signature bit string has unused bits");
  const keyAlg = children(spki[0]);
  if (oid(keyAlg[0]) !== OID.ecPublicKey) throw fail(`unsupported key algorithm ${oid(keyAlg[0])}`);
  const curveOid = oid(keyAlg[1]);
  const curve = curveOid === OID.secp384r1 ? "P384" : curveOid === OID.prime256v1 ? "P256" : null;
  if (!curve) throw fail(`unsupported curve ${curveOid}`);
  const pk = spki[1].value.subarray(1);
  const pointLen = curve === "P384" ? 97 : 65;
  if (spki[1].value[0] !== 0 || pk.length !== pointLen || pk[0] !== 4) throw fail("public key is not an uncompressed point");
  let basic = null;
  let keyCertSign = null; // null: no keyUsage extension
  let digitalSignature = null;
  const seen = new Set();
  for (const ctx of t.slice(i)) {
    if (ctx.tag !== 0xa3) continue;
    for (const ext of children(children(ctx)[0])) {
      const f = children(ext);
      const id = oid(f[0]);
      if (seen.has(id)) throw fail(`duplicate extension ${id}`);
      seen.add(id);
      const critical = f.length === 3 && f[1].tag === 0x01 && f[1].value[0] !== 0;
      const val = der(f[f.length - 1].value);
      if (id === OID.basicConstraints) {
        const bc = children(val);
        let ca = false;
        let pathLen = null;
        for (const x of bc) {
          if (x.tag === 0x01) ca = x.value[0] !== 0;
          if (x.tag === 0x02) pathLen = x.value.reduce((a, b) => a * 256 + b, 0);
        }
        basic = { ca, pathLen };
      } else if (id === OID.keyUsage) {
        const bits = val.value.subarray(1);
        digitalSignature = bits.length > 0 && (bits[0] & 0x80) !== 0; // bit 0
        keyCertSign = bits.length > 0 && (bits[0] & 0x04) !== 0; // bit 5
      } else if (id !== OID.extKeyUsage && critical) {
        throw fail(`unsupported critical extension ${id}`);
      }
    }
  }
  return {
    role,
    der: bytes,
    tbs: tbs.raw,
    subject: nameString(subject),
    issuer: nameString(issuer),
    subjectDer: subject.raw,
    issuerDer: issuer.raw,
    notBefore: time(validity[0]),
    notAfter: time(validity[1]),
    sigOid,
    signature: sigBits.value.subarray(1),
    curve,
    publicKey: pk,
    basic,
    keyCertSign,
    digitalSignature,
  };
}

/** ECDSA verification of `message` (hashed per `hash`) by a P-256/P-384 key; DER or raw r‖s. */
export function ecdsaVerify(curve, hash, signature, message, publicKey, format = "der") {
  const c = curve === "P384" ? p384 : p256;
  const digest = hash === "sha384" ? sha384(message) : sha256(message);
  try {
    return c.verify(signature, digest, publicKey, { prehash: false, lowS: false, format });
  } catch {
    return false;
  }
}

function checkLink(child, issuer, caBelow, anchored) {
  if (!equalBytes(child.issuerDer, issuer.subjectDer)) {
    throw new Error(
      anchored
        ? `the certificate chain does not end at the trusted root: expected issuer "${issuer.subject}", found "${child.issuer}"`
        : `${child.role}: issuer mismatch: expected "${issuer.subject}", found "${child.issuer}"`,
    );
  }
  if (!issuer.basic || !issuer.basic.ca || issuer.keyCertSign === false) {
    throw new Error(`${issuer.role} ("${issuer.subject}") is not a certificate authority`);
  }
  if (issuer.basic.pathLen !== null && caBelow > issuer.basic.pathLen) {
    throw new Error(`${issuer.role}: path length constraint exceeded (${caBelow} > ${issuer.basic.pathLen})`);
  }
  const hash = child.sigOid === OID.ecdsaSha384 ? "sha384" : "sha256";
  if (!ecdsaVerify(issuer.curve, hash, child.signature, child.tbs, issuer.publicKey)) {
    throw new Error(
      anchored
        ? `the certificate chain does not end at the trusted root: its signature on "${child.subject}" does not verify`
        : `${child.role} ("${child.subject}"): signature by "${issuer.subject}" does not verify`,
    );
  }
}

/** The leaf signs documents: not a CA, and a keyUsage, if any, that allows digitalSignature. */
function checkLeafUsage(leaf) {
  if (leaf.basic && leaf.basic.ca) {
    throw new Error(
      `leaf certificate ("${leaf.subject}") is a certificate authority (basicConstraints CA): a CA certificate does not sign attestation documents`,
    );
  }
  if (leaf.digitalSignature === false) throw new Error(`leaf certificate ("${leaf.subject}"): keyUsage does not allow digitalSignature`);
}

/**
 * Leaf ← cabundle[n-1] ← … ← cabundle[1] ← root (cabundle[0] ignored), valid at `at`: in
 * attestation/src/x509.rs's order — names, CA constraints and signatures of every link, then
 * the leaf's usage, then every validity.
 */
export function verifyChain(leafDer, cabundle, root, at) {
  if (cabundle.length === 0) throw new Error("cabundle: empty");
  const leaf = parseCert("leaf certificate", leafDer);
  if (leaf.curve !== "P384") throw new Error("leaf certificate: not a P-384 key (ES384)");
  const chain = [leaf];
  for (let i = cabundle.length - 1; i >= 1; i--) chain.push(parseCert(`cabundle[${i}]`, cabundle[i]));
  chain.push(root);
  for (let i = 0; i + 1 < chain.length; i++) checkLink(chain[i], chain[i + 1], i, i + 2 === chain.length);
  checkLeafUsage(leaf);
  for (const c of chain) {
    if (at < c.notBefore) throw new Error(`${c.role} ("${c.subject}") is not yet valid at ${at}`);
    if (at > c.notAfter) throw new Error(`${c.role} ("${c.subject}") expired at ${c.notAfter}`);
  }
  return chain;
}

/** DER of the first certificate in a PEM text. */
export function pemToDer(pem) {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error("not a PEM certificate");
  const bin = atob(m[1].replace(/\s+/g, ""));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function fingerprint(derBytes) {
  return bytesToHex(sha256(derBytes), false);
}
