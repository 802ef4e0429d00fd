// A session's status as the enclave's word: the host relays the enclave's status reply for a
// fresh nonce as JSON together with its CBOR (the bytes the enclave's receipt signs). The
// page checks the receipt over those bytes, decodes them, and requires the JSON it renders
// to say exactly what the signed CBOR says; otherwise the status is the host's word and is
// labelled so. No DOM.
import { keccak, utf8, b32, addressBytes, hexToBytes, bytesToHex, recoverAddress, sameAddress } from "./bytes.js";
import { receiptDigestOver } from "./verify.js";
import { decodeCbor } from "./attest.js";

/**
 * Throws (naming the path) unless the JSON value `j` says what the signed CBOR value `c`
 * says, as serde writes one Rust value both ways: 0x-hex strings are CBOR byte strings (or,
 * for U256 quantities, the same number), numbers are integers, objects are maps with the
 * same keys.
 */
export function sameAsSigned(j, c, path = "status") {
  const fail = (why) => {
    throw new Error(`${path}: ${why}`);
  };
  if (j === null || j === undefined) {
    if (c !== null && c !== undefined) fail("null or absent in the JSON, but the signed reply has a value");
    return;
  }
  if (typeof j === "boolean") {
    if (c !== j) fail(`${j} in the JSON, ${String(c)} signed`);
    return;
  }
  if (typeof j === "number") {
    const ok = typeof c === "bigint" ? Number.isSafeInteger(j) && BigInt(j) === c : c === j;
    if (!ok) fail(`${j} in the JSON, ${String(c)} signed`);
    return;
  }
  if (typeof j === "string") {
    if (typeof c === "string") {
      if (c !== j) fail(`"${j}" in the JSON, "${c}" signed`);
      return;
    }
    if (c instanceof Uint8Array && /^0x[0-9a-fA-F]*$/.test(j)) {
      const signed = bytesToHex(c);
      if (signed === j.toLowerCase()) return;
      // A U256 quantity: serde writes it as a minimal 0x-quantity in JSON and as 32
      // big-endian bytes in CBOR; only a minimal quantity is compared as a number.
      const quantity = /^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$/.test(j);
      if (quantity && c.length <= 32 && BigInt(j) === (c.length ? BigInt(signed) : 0n)) return;
      fail(`${j} in the JSON, ${signed} signed`);
    }
    fail(`"${j}" in the JSON, not what was signed`);
  }
  if (Array.isArray(j)) {
    if (!Array.isArray(c) || c.length !== j.length) fail("a list of another length than the signed one");
    j.forEach((x, i) => sameAsSigned(x, c[i], `${path}[${i}]`));
    return;
  }
  if (typeof j === "object") {
    if (!(c instanceof Map)) fail("an object where the signed reply has none");
    // Every key of either side, both ways: a value on one side must be the same value on
    // the other (null and absent are the same; a signed value cannot be nulled out).
    for (const k of c.keys()) if (typeof k !== "string") fail("the signed reply has a key that is not text");
    const keys = new Set([...Object.keys(j), ...c.keys()]);
    for (const k of keys) {
      const jv = Object.prototype.hasOwnProperty.call(j, k) ? j[k] : undefined;
      sameAsSigned(jv, c.get(k), `${path}.${k}`);
    }
    return;
  }
  fail("a value the page does not know");
}

/**
 * The receipt nonce of a status about `session` (common::receipt::status_nonce): the fresh
 * nonce bound to the session asked about, so that the host cannot answer with another
 * session's signed status (or "no such session" for an address of its choosing).
 */
export function statusNonce(nonce, session) {
  if (!session) return nonce;
  return bytesToHex(keccak(utf8("bridle/status/v1"), b32(nonce), addressBytes(session)));
}

/**
 * Check a status reply about `session` fetched for `nonce`
 * (`GET /v1/status?session=…&nonce=…&cbor=1`): the enclave's receipt (kind "status") over
 * `reply.cbor`, for this nonce and session, by `identity`; then the JSON equal to the signed
 * CBOR, and about that session. Returns the receipt; throws otherwise.
 */
export function checkSignedStatus(reply, identity, nonce, session) {
  const r = reply.receipt;
  if (!r) throw new Error("the status carries no enclave signature: it is only the host's word");
  if (typeof reply.cbor !== "string") throw new Error("the host did not relay the signed status bytes");
  if (!sameAddress(r.enclave, identity)) throw new Error(`the receipt names enclave ${r.enclave}, not ${identity}`);
  const want = statusNonce(nonce, session);
  if (r.nonce.toLowerCase() !== want.toLowerCase()) {
    throw new Error(`the receipt answers nonce ${r.nonce}, not ${want} (a replayed status, or one about another session)`);
  }
  const body = hexToBytes(reply.cbor);
  const who = recoverAddress(receiptDigestOver("status", body, r.enclave, r.time, r.nonce), r.signature);
  if (!sameAddress(who, identity)) {
    throw new Error(`the status is signed by ${who ?? "nobody"}, not the trusted enclave ${identity}`);
  }
  const { receipt, cbor, ...json } = reply;
  void receipt;
  void cbor;
  sameAsSigned(json, decodeCbor(body));
  if (session && json.session && !sameAddress(json.session.session, session)) {
    throw new Error(`the status is about session ${json.session.session}, not ${session}`);
  }
  return r;
}
