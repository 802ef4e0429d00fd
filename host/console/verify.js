// What the page checks itself, against the enclave identity it trusts: session bindings,
// receipts over owner-action replies, and the audit log's hash chain and signed head
// (common/src/receipt.rs, common/src/protocol.rs, common/src/audit/mod.rs). No DOM.
import {
  keccak, utf8, u32, u64, concat, addressBytes, b32, hexToBytes, bytesToHex, recoverAddress, sameAddress,
} from "./bytes.js";

// ---- session bindings (R-ATT-2) ---------------------------------------------------------

export function bindingDigest(b) {
  return keccak(
    utf8("bridle/session-binding/v1"),
    addressBytes(b.enclave),
    addressBytes(b.session),
    addressBytes(b.owner),
    addressBytes(b.agent),
    b32(b.policy_hash),
    u64(b.created_at),
    u64(b.valid_until),
  );
}

/** Throws unless `binding` is signed by `identity` and names what `want` names. */
export function checkBinding(binding, signature, identity, want) {
  const who = recoverAddress(bindingDigest(binding), signature);
  if (!sameAddress(who, identity)) {
    throw new Error(`the binding is signed by ${who ?? "nobody"}, not the trusted enclave ${identity}`);
  }
  for (const k of ["enclave", "session", "owner", "agent", "policy_hash"]) {
    if (want[k] !== undefined && want[k].toLowerCase() !== String(binding[k]).toLowerCase()) {
      throw new Error(`the binding names ${k} ${binding[k]}, not ${want[k]}`);
    }
  }
  if (want.valid_until !== undefined && BigInt(want.valid_until) !== BigInt(binding.valid_until)) {
    throw new Error(`the binding is valid until ${binding.valid_until}, not ${want.valid_until}`);
  }
}

// ---- receipts: the enclave's signature over a reply --------------------------------------
// digest = keccak256("bridle/receipt/v1" ‖ str(kind) ‖ enclave ‖ time ‖ nonce ‖
//                    keccak256(cbor(reply without its receipt)))
// The CBOR is ciborium's serde encoding (not human-readable: addresses, hashes and byte
// strings are CBOR byte strings; structs are maps in declaration order, skipped optionals
// absent). The host's JSON is sorted, so each reply's field order is written out here.

function head(major, n) {
  const v = BigInt(n);
  const m = major << 5;
  if (v < 24n) return Uint8Array.of(m | Number(v));
  if (v < 0x100n) return Uint8Array.of(m | 24, Number(v));
  if (v < 0x10000n) return concat(Uint8Array.of(m | 25), u32(v).subarray(2));
  if (v < 0x100000000n) return concat(Uint8Array.of(m | 26), u32(v));
  return concat(Uint8Array.of(m | 27), u64(v));
}

export const cbor = {
  uint: (n) => head(0, n),
  bytes: (b) => concat(head(2, b.length), b),
  text: (s) => {
    const b = utf8(s);
    return concat(head(3, b.length), b);
  },
  array: (items) => concat(head(4, items.length), ...items),
  /** entries: [key, encodedValue] in order; undefined values are skipped. */
  map: (entries) => {
    const kept = entries.filter(([, v]) => v !== undefined);
    return concat(head(5, kept.length), ...kept.flatMap(([k, v]) => [cbor.text(k), v]));
  },
  bool: (b) => Uint8Array.of(b ? 0xf5 : 0xf4),
  null: () => Uint8Array.of(0xf6),
};

const hexBytes = (h) => cbor.bytes(hexToBytes(h));
const opt = (v, f) => (v === null || v === undefined ? undefined : f(v));

function bindingCbor(b) {
  return cbor.map([
    ["enclave", hexBytes(b.enclave)],
    ["session", hexBytes(b.session)],
    ["owner", hexBytes(b.owner)],
    ["agent", hexBytes(b.agent)],
    ["policy_hash", hexBytes(b.policy_hash)],
    ["created_at", cbor.uint(b.created_at)],
    ["valid_until", cbor.uint(b.valid_until)],
  ]);
}

function kindCbor(k) {
  if (typeof k === "string") return cbor.text(k);
  const [name, inner] = Object.entries(k)[0];
  return cbor.map([[name, cbor.map([["contract", hexBytes(inner.contract)]])]]);
}

/** The reply kinds whose receipts the page checks, and their canonical encodings. */
export const RECEIPTED = {
  revoked: (r) => cbor.map([["sessions", cbor.array(r.sessions.map(hexBytes))]]),
  pending_denied: (r) =>
    cbor.map([
      ["session", hexBytes(r.session)],
      ["digest", hexBytes(r.digest)],
      ["until", cbor.uint(r.until)],
    ]),
  session_created: (r) =>
    cbor.map([
      ["binding", bindingCbor(r.binding)],
      ["binding_signature", hexBytes(r.binding_signature)],
      ["attestation", r.attestation === null || r.attestation === undefined ? cbor.null() : hexBytes(r.attestation)],
    ]),
  policy_updated: (r) =>
    cbor.map([
      ["session", hexBytes(r.session)],
      ["policy_hash", hexBytes(r.policy_hash)],
      ["binding", opt(r.binding, bindingCbor)],
      ["binding_signature", opt(r.binding_signature, hexBytes)],
    ]),
  swept: (r) =>
    cbor.map([
      ["session", hexBytes(r.session)],
      [
        "transactions",
        cbor.array(
          r.transactions.map((t) =>
            cbor.map([
              ["chain_id", cbor.uint(t.chain_id)],
              ["nonce", cbor.uint(t.nonce)],
              ["token", hexBytes(t.token)],
              ["spender", hexBytes(t.spender)],
              ["kind", kindCbor(t.kind)],
              ["to", hexBytes(t.to)],
              ["hash", hexBytes(t.hash)],
              ["raw_transaction", hexBytes(t.raw_transaction)],
              // A Permit2 cancellation (omitted for a revocation, as the enclave omits it).
              ...(t.invalidate_nonce === undefined || t.invalidate_nonce === null
                ? []
                : [["invalidate_nonce", cbor.uint(t.invalidate_nonce)]]),
            ]),
          ),
        ),
      ],
      [
        "skipped",
        cbor.array(
          r.skipped.map((k) =>
            cbor.map([
              ["chain_id", cbor.uint(k.chain_id)],
              ["token", hexBytes(k.token)],
              ["spender", hexBytes(k.spender)],
              ["holder", hexBytes(k.holder)],
              ["reason", cbor.text(k.reason)],
            ]),
          ),
        ),
      ],
      ["key_destroyed", cbor.bool(r.key_destroyed)],
    ]),
};

export function receiptDigest(kind, reply, enclave, time, nonce) {
  return receiptDigestOver(kind, RECEIPTED[kind](reply), enclave, time, nonce);
}

/** The receipt digest over `body`, the reply's CBOR (without its receipt) as bytes. */
export function receiptDigestOver(kind, body, enclave, time, nonce) {
  return keccak(
    utf8("bridle/receipt/v1"),
    u32(kind.length),
    utf8(kind),
    addressBytes(enclave),
    u64(time),
    b32(nonce),
    keccak(body),
  );
}

/**
 * The receipt nonce of an owner action (common::receipt::owner_nonce): the owner's nonce
 * bound to the owner, keccak256("bridle/owner-receipt/v1" ‖ owner ‖ nonce as a 32-byte word).
 * Nonces are per owner: the bare nonce would let a host answer with the receipt of another
 * owner's message carrying the same nonce.
 */
export function ownerNonceWord(owner, n) {
  const word = "0x" + BigInt(n).toString(16).padStart(64, "0");
  return bytesToHex(keccak(utf8("bridle/owner-receipt/v1"), addressBytes(owner), b32(word)));
}

/** Throws unless `reply` carries a receipt by `identity` for `nonce`; returns the receipt. */
export function checkReceipt(kind, reply, identity, nonce) {
  const r = reply.receipt;
  if (!r) throw new Error("the reply carries no enclave signature: it is only the host's word");
  if (!sameAddress(r.enclave, identity)) throw new Error(`the receipt names enclave ${r.enclave}, not ${identity}`);
  if (nonce !== undefined && r.nonce.toLowerCase() !== nonce.toLowerCase()) {
    throw new Error(`the receipt answers nonce ${r.nonce}, not ${nonce} (a replayed reply)`);
  }
  const who = recoverAddress(receiptDigest(kind, reply, r.enclave, r.time, r.nonce), r.signature);
  if (!sameAddress(who, identity)) {
    throw new Error(`the receipt is signed by ${who ?? "nobody"}, not the trusted enclave ${identity}`);
  }
  return r;
}

// ---- the audit log (R-AUD-1) -------------------------------------------------------------

export function genesis(enclave) {
  return keccak(utf8("bridle/audit-genesis/v1"), addressBytes(enclave));
}

function str(s) {
  const b = utf8(s);
  return concat(u32(b.length), b);
}

function optStr(s) {
  return s === null || s === undefined ? Uint8Array.of(0) : concat(Uint8Array.of(1), str(s));
}

export function entryHash(e) {
  return keccak(
    utf8("bridle/audit-entry/v1"),
    u64(e.seq),
    u64(e.time),
    addressBytes(e.session),
    str(e.kind),
    optStr(e.code),
    optStr(e.rule),
    b32(e.request_digest),
    str(e.detail),
    b32(e.prev),
  );
}

export function headDigest(h) {
  return keccak(
    // A head names the first entry its enclave still held (`oldest`, v3); heads of
    // enclaves before it do not (v2).
    utf8(h.oldest === undefined || h.oldest === null ? "bridle/audit-head/v2" : "bridle/audit-head/v3"),
    u64(h.seq),
    b32(h.hash),
    u64(h.time),
    addressBytes(h.enclave),
    u64(h.end ?? 0),
    b32(h.nonce ?? "0x" + "00".repeat(32)),
    ...(h.oldest === undefined || h.oldest === null ? [] : [u64(h.oldest)]),
  );
}

/**
 * Verify a whole log (entries from seq 0) against its signed head and the enclave identity
 * address: every link recomputed, nothing missing, changed, reordered or beyond the head.
 * Returns {ok, entries, headSeq, complete, error, seq} — `complete` when the head was at the
 * log's end when signed.
 */
const INT = (v) => Number.isSafeInteger(v) && v >= 0;
const HEX = (n) => (v) => typeof v === "string" && new RegExp(`^0x[0-9a-fA-F]{${n}}$`).test(v);
const STR = (v) => typeof v === "string";
const OPT_STR = (v) => v === null || v === undefined || typeof v === "string";
const ENTRY_FIELDS = {
  seq: INT, time: INT, session: HEX(40), kind: STR, code: OPT_STR, rule: OPT_STR,
  request_digest: HEX(64), detail: STR, prev: HEX(64),
};
const HEAD_FIELDS = {
  seq: INT, hash: HEX(64), time: INT, enclave: HEX(40), end: (v) => v === undefined || INT(v),
  nonce: (v) => v === undefined || v === null || HEX(64)(v), oldest: (v) => v === undefined || v === null || INT(v),
  signature: STR,
};

/** The first field of `o` not written the one way `fields` allows, or null. */
function uncanonical(o, fields) {
  if (o === null || typeof o !== "object") return "not an object";
  for (const [k, ok] of Object.entries(fields)) {
    if (!ok(o[k])) return `${k} is ${JSON.stringify(o[k])?.slice(0, 80)}`;
  }
  return null;
}

/**
 * Check `entries` against the signed head `headObj` of `identity`: every link, from entry 0
 * and the enclave's genesis hash — or, when the host says its audit retention deleted the
 * entries through `prunedThrough` (its word: no signature covers it), from the entry after
 * it and that entry's own link. `firstSeq` says where the check started.
 */
export function verifyAuditLog(entries, headObj, identity, prunedThrough = null) {
  const fail = (error, seq) => ({ ok: false, error, seq, entries: entries.length });
  if (!headObj) return fail("no signed head");
  const headForm = uncanonical(headObj, HEAD_FIELDS);
  if (headForm) return fail(`the signed head is not in canonical form: ${headForm}`);
  if (!sameAddress(headObj.enclave, identity)) {
    return fail(`the head is for enclave ${headObj.enclave}, not the trusted ${identity}`);
  }
  const signer = recoverAddress(headDigest(headObj), headObj.signature);
  if (!sameAddress(signer, identity)) {
    return fail(`the head (at seq ${headObj.seq}) is not signed by the enclave identity: it recovers to ${signer}`);
  }
  let prev = genesis(identity);
  let firstSeq = 0n;
  if (entries.length && /^[0-9]+$/.test(String(entries[0]?.seq)) && BigInt(entries[0].seq) > 0n) {
    // Only where the host says it pruned exactly up to the first entry: anything else is
    // entries missing.
    firstSeq = BigInt(entries[0].seq);
    if (prunedThrough === null || BigInt(prunedThrough) + 1n !== firstSeq) {
      return fail(`entry 0 is missing (the host's copy starts at seq ${firstSeq}${prunedThrough === null ? "" : `, but the host says it pruned through seq ${prunedThrough}`})`, 0);
    }
    const form = uncanonical(entries[0], ENTRY_FIELDS);
    if (form) return fail(`entry at position 0 is not in canonical form: ${form}`, 0);
    prev = hexToBytes(entries[0].prev);
  }
  let last = null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    // The page shows and filters the entries as they are written: each must be written the
    // one way its hash reads it ("5e55…" for "0x5e55…", ["allowed"] for "allowed" hash
    // alike and would hide an entry from its session's view; a review of 2026-12-05).
    const form = uncanonical(e, ENTRY_FIELDS);
    if (form) return fail(`entry at position ${i} is not in canonical form: ${form}`, i);
    const want = firstSeq + BigInt(i);
    if (BigInt(e.seq) !== want) return fail(`entry ${want} is missing (position ${i} holds entry ${e.seq})`, Number(want));
    if (BigInt(e.seq) > BigInt(headObj.seq)) {
      return fail(`entry ${e.seq} follows the signed head (at seq ${headObj.seq})`, e.seq);
    }
    if (bytesToHex(prev) !== e.prev.toLowerCase()) {
      return fail(
        i === 0 ? "entry 0 does not start at this enclave's genesis hash" : `entry ${e.seq} was changed (link)`,
        e.seq,
      );
    }
    prev = entryHash(e);
    last = e;
  }
  if (!last || BigInt(last.seq) !== BigInt(headObj.seq)) {
    return fail(`entry ${last ? BigInt(last.seq) + 1n : firstSeq} is missing (the signed head is at seq ${headObj.seq})`);
  }
  if (bytesToHex(prev) !== headObj.hash.toLowerCase()) {
    return fail(`entry ${headObj.seq} was changed: it does not hash to the signed head`, headObj.seq);
  }
  const complete = BigInt(headObj.seq) + 1n === BigInt(headObj.end ?? 0);
  return {
    ok: true, entries: entries.length, headSeq: headObj.seq, headTime: headObj.time, complete,
    firstSeq: Number(firstSeq), firstTime: entries[0]?.time ?? null,
  };
}

/**
 * The sessions of `owner` that a log names, from the entries only the enclave writes after
 * checking the owner's signature (common/src/audit/rec.rs): `session_created` ("owner O
 * agent A valid_until T"), and `policy_updated`, `revoked`, `revoked_all`, `image_allowed`
 * ("owner O"). Their details are covered by the hash chain, so in a verified log they are
 * the enclave's word, whatever list of sessions the host serves (a review of 2026-12-07).
 * Returns a Map from the lowercase session address to {session, agent, validUntil, seq}
 * (agent and validUntil null when the log holds no `session_created` of it: pruned).
 */
export function sessionsOfOwner(entries, owner) {
  const out = new Map();
  if (!owner) return out;
  const created = /^owner (0x[0-9a-fA-F]{40}) agent (0x[0-9a-fA-F]{40}) valid_until ([0-9]+)$/;
  const named = /^owner (0x[0-9a-fA-F]{40})$/;
  for (const e of entries ?? []) {
    let m = null;
    if (e.kind === "session_created") m = created.exec(e.detail);
    else if (["policy_updated", "revoked", "revoked_all", "image_allowed"].includes(e.kind)) m = named.exec(e.detail);
    if (!m || !sameAddress(m[1], owner)) continue;
    const key = String(e.session).toLowerCase();
    const had = out.get(key);
    if (e.kind === "session_created") {
      out.set(key, { session: e.session, agent: m[2], validUntil: Number(m[3]), seq: e.seq });
    } else if (!had) {
      out.set(key, { session: e.session, agent: null, validUntil: null, seq: e.seq });
    }
  }
  return out;
}
