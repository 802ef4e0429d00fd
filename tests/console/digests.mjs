// The console's pure modules under node, for tests/tests/console_digests.rs: reads a JSON
// array of cases on stdin, answers a JSON array of results (same order) on stdout. The Rust
// test compares every digest with the one bridle-common computes for the same input.
import { ownerTypedData, ownerDigest } from "../../host/console/eip712.js";
import { bindingDigest, receiptDigest, checkReceipt, verifyAuditLog, entryHash, ownerNonceWord } from "../../host/console/verify.js";
import { termsDigest, approvalSigners, grant, nextOwnerNonce } from "../../host/console/owner.js";
import { secp256k1 } from "../../host/console/vendor/noble.js";
import { checkSignedStatus } from "../../host/console/status.js";
import { payloadDigest, describe } from "../../host/console/decode.js";
import { verifyAttestation, decodeCbor, parsePcrsJson } from "../../host/console/attest.js";
import { readBounded } from "../../host/console/api.js";
import { keccak, utf8, bytesToHex, hexToBytes, addressOfPublicKey, concat, ownerNonceAt } from "../../host/console/bytes.js";
import { spendChart } from "../../host/console/chart.js";

const hex = (b) => bytesToHex(b);
const ops = {
  owner: (c) => {
    const td = ownerTypedData(c.fields);
    return { typed_data: td, digest: hex(ownerDigest(td)) };
  },
  binding: (c) => ({ digest: hex(bindingDigest(c.binding)) }),
  owner_nonce: (c) => ({ word: ownerNonceWord(c.owner, c.nonce) }),
  // The nonce the console picks for each row ({now_ms, signed_ms, floor_ms}), and for a
  // sequence of actions ({now_ms, signed_ms, floor_ms} each, in order) as one page signs them.
  owner_nonce_at: (c) => ({ nonces: c.rows.map((r) => ownerNonceAt(r.now_ms, r.signed_ms, r.floor_ms)) }),
  owner_nonce_sequence: (c) => ({
    nonces: c.steps.map((r) => nextOwnerNonce({ signedMs: r.signed_ms, floorMs: r.floor_ms }, r.now_ms)),
  }),
  receipt: (c) => {
    const r = c.reply.receipt;
    const digest = hex(receiptDigest(c.kind, c.reply, r.enclave, r.time, r.nonce));
    try {
      checkReceipt(c.kind, c.reply, c.identity, c.nonce);
      return { digest, ok: true };
    } catch (e) {
      return { digest, ok: false, error: e.message };
    }
  },
  status: (c) => {
    try {
      checkSignedStatus(c.reply, c.identity, c.nonce, c.session);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: e.message };
    }
  },
  audit: (c) => ({ result: verifyAuditLog(c.entries, c.head, c.identity), hashes: c.entries.map((e) => hex(entryHash(e))) }),
  policy_hash: (c) => ({ hash: hex(keccak(utf8("bridle/policy/v1\n"), utf8(c.canonical))) }),
  terms: (c) => ({ digest: termsDigest(c.terms.map((t) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, BigInt(v)])))) }),
  payload: (c) => {
    const d = payloadDigest(c.payload);
    return { digest: d ? hex(d) : null, lines: describe(c.payload, c.tokens ?? []) };
  },
  address: (c) => ({ address: addressOfPublicKey(hexToBytes(c.public_key)) }),
  approval_signed: (c) => ({ messages: approvalSigners(c.pending, hexToBytes(c.digest)).map(hex) }),
  // The spend chart with `ticks` signatures, drawn into a stand-in for the DOM (it only
  // creates elements): whether it throws, and how many tick marks it draws.
  chart: (c) => {
    let marks = 0;
    const node = (name) => ({
      setAttribute() {},
      appendChild() {},
      set textContent(_) {},
      name,
    });
    globalThis.document = {
      createElementNS: (_, name) => {
        const n = node(name);
        if (name === "line") marks++;
        return n;
      },
    };
    const now = 1_800_000_000;
    const ticks = Array.from({ length: c.ticks }, (_, i) => now - c.ticks + i);
    try {
      spendChart({ samples: [{ t: now - 10, spent: 5n }], cap: 10n, ticks, now, fmt: String, title: "t" });
      return { ok: true, marks };
    } catch (e) {
      return { ok: false, error: e.message };
    } finally {
      delete globalThis.document;
    }
  },
  // verifyAttestation; `now_ms` fixes the time (a stored document verified at its timestamp).
  attest: (c) => {
    try {
      const o = c.opts;
      const pcrs = Object.fromEntries(Object.entries(o.pcrs ?? {}).map(([i, v]) => [i, hexToBytes(v)]));
      const v = verifyAttestation(hexToBytes(c.document), {
        rootPem: o.root_pem ?? undefined,
        anyImage: !!o.any_image,
        allowDebug: !!o.allow_debug,
        pcrs,
        nonce: o.nonce ? hexToBytes(o.nonce) : undefined,
        publicKey: o.public_key ? hexToBytes(o.public_key) : undefined,
        userData: o.user_data ? hexToBytes(o.user_data) : undefined,
        nowMs: o.now_ms ?? undefined,
        maxAgeSecs: o.max_age_secs ?? undefined,
      });
      return {
        ok: true,
        module_id: v.moduleId,
        timestamp_ms: v.timestampMs,
        public_key: v.publicKey ? hex(v.publicKey) : null,
        nonce: v.nonce ? hex(v.nonce) : null,
        pcrs: Object.fromEntries(Object.entries(v.pcrs).map(([i, b]) => [i, hex(b)])),
        pcr0: hex(v.pcrs[0]),
        chain: v.chain.length,
        root_sha256: v.rootSha256,
      };
    } catch (e) {
      return { ok: false, error: e.message };
    }
  },
  // decodeCbor of `hex`, the value written as tests/tests/console_digests/attestation.rs
  // writes a ciborium value: {int}, {bytes}, {text}, {array}, {map: [[k, v]]}, {tag, value}.
  cbor: (c) => {
    const show = (v) => {
      if (typeof v === "bigint") return { int: v.toString() };
      if (v instanceof Uint8Array) return { bytes: bytesToHex(v, false) };
      if (typeof v === "string") return { text: v };
      if (v === null || typeof v === "boolean") return v;
      if (Array.isArray(v)) return { array: v.map(show) };
      if (v instanceof Map) return { map: [...v].map(([k, x]) => [typeof k === "bigint" ? show(k) : { text: k }, show(x)]) };
      return { tag: v.tag.toString(), value: show(v.value) };
    };
    try {
      return { ok: true, value: show(decodeCbor(hexToBytes(c.hex))) };
    } catch (e) {
      return { ok: false, error: e.message, kind: e.constructor.name };
    }
  },
  // `rounds` mutations of the given documents (bytes changed, cut, inserted — header bytes
  // of indefinite length among them), each read by decodeCbor (the document and its
  // payload) and verifyAttestation: how many threw something else than a plain Error
  // (a TypeError, RangeError, stack overflow: a failure of the code, not a refusal).
  attest_mutations: (c) => {
    let seed = c.seed;
    const rand = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const heads = [0x5f, 0x7f, 0x9f, 0xbf, 0xff, 0x1f, 0xdf, 0x5c, 0x40, 0x9b, 0x5b];
    const docs = c.documents.map((d) => hexToBytes(d));
    const payloads = docs.map((d) => {
      const cose = decodeCbor(d);
      return (cose.tag === undefined ? cose : cose.value)[2];
    });
    const seeds = [...docs, ...payloads];
    const failures = {};
    const run = (f) => {
      try {
        f();
      } catch (e) {
        if (e.constructor !== Error) failures[`${e.constructor.name}: ${e.message}`] = (failures[`${e.constructor.name}: ${e.message}`] ?? 0) + 1;
      }
    };
    for (let i = 0; i < c.rounds; i++) {
      let b = Uint8Array.from(seeds[rand(seeds.length)]);
      for (let k = 1 + rand(3); k > 0 && b.length > 0; k--) {
        const at = rand(b.length);
        const m = rand(4);
        if (m === 0) b[at] = rand(256);
        else if (m === 1) b[at] = heads[rand(heads.length)];
        else if (m === 2) b = b.slice(0, at);
        else b = Uint8Array.from([...b.subarray(0, at), heads[rand(heads.length)], ...b.subarray(at)]);
      }
      run(() => decodeCbor(b));
      run(() => verifyAttestation(b, { anyImage: true, allowDebug: true, rootPem: c.root_pem, nowMs: c.now_ms }));
    }
    return { failures };
  },
  pcrs_json: (c) => {
    try {
      return { ok: true, pcrs: Object.fromEntries(Object.entries(parsePcrsJson(c.text)).map(([i, b]) => [i, hex(b)])) };
    } catch (e) {
      return { ok: false, error: e.message };
    }
  },
  // A host's reply read with a bound: `size` bytes (or endless), `declared` its Content-Length.
  read: async (c) => {
    let sent = 0;
    const chunk = new Uint8Array(64 << 10).fill(0x20);
    const body = new ReadableStream({
      pull(ctl) {
        if (c.size !== null && sent >= c.size) return ctl.close();
        const n = c.size === null ? chunk.length : Math.min(chunk.length, c.size - sent);
        sent += n;
        ctl.enqueue(chunk.slice(0, n));
      },
    });
    const headers = c.declared === null ? {} : { "content-length": String(c.declared) };
    try {
      const r = await readBounded(new Response(body, { headers }), c.max);
      return { ok: true, bytes: r.bytes, length: r.text.length, sent };
    } catch (e) {
      return { ok: false, error: e.message, sent };
    }
  },
};

// A grant through owner.js with a wallet holding `owner_key` and a host answering every
// call with `status` and `reply`: whether it throws, and what it says. One at a time (each
// puts its own `fetch` in place).
let grants = Promise.resolve();
ops.grant = (c) => (grants = grants.then(() => oneGrant(c)));
async function oneGrant(c) {
  const sk = hexToBytes(c.owner_key);
  const account = addressOfPublicKey(secp256k1.getPublicKey(sk, false));
  const wallet = {
    request: async ({ params }) => {
      const td = JSON.parse(params[1]);
      const { ownerDigest: digestOf } = await import("../../host/console/eip712.js");
      const sig = secp256k1.sign(digestOf(td), sk, { prehash: false, format: "recovered" });
      // noble's recovered form is v ‖ r ‖ s; the wallet answers r ‖ s ‖ (27 + v).
      return hex(concat(sig.subarray(1), Uint8Array.of(27 + sig[0])));
    },
  };
  let sent = 0;
  const realFetch = globalThis.fetch;
  globalThis.fetch = async () => {
    sent++;
    return new Response(JSON.stringify(c.reply), { status: c.status, headers: { "content-type": "application/json" } });
  };
  try {
    const policy = { canonical: c.canonical, hash: hex(keccak(utf8("bridle/policy/v1\n"), utf8(c.canonical))) };
    await grant({ wallet, account, identity: c.identity, trusted: true }, c.agent_public_key, policy, null);
    return { ok: true, sent };
  } catch (e) {
    return { ok: false, error: e.message, sent };
  } finally {
    globalThis.fetch = realFetch;
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = await Promise.all(
  JSON.parse(input).map((c) => {
    const f = ops[c.op];
    if (!f) return { error: `unknown op ${c.op}` };
    return f(c);
  }),
);
process.stdout.write(JSON.stringify(out, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
