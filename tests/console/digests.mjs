// The console's pure modules under node, for tests/tests/console_digests.rs: reads a JSON
// array of cases on stdin, answers a JSON array of results (same order) on stdout. The Rust
// test compares every digest with the one bridle-common computes for the same input.
import { ownerTypedData, ownerDigest } from "../../host/console/eip712.js";
import { bindingDigest, receiptDigest, checkReceipt, verifyAuditLog, entryHash, ownerNonceWord } from "../../host/console/verify.js";
import { termsDigest, approvalSigners } from "../../host/console/owner.js";
import { checkSignedStatus } from "../../host/console/status.js";
import { payloadDigest, describe } from "../../host/console/decode.js";
import { verifyAttestation } from "../../host/console/attest.js";
import { readBounded } from "../../host/console/api.js";
import { keccak, utf8, bytesToHex, hexToBytes, addressOfPublicKey } from "../../host/console/bytes.js";
import { spendChart } from "../../host/console/chart.js";

const hex = (b) => bytesToHex(b);
const ops = {
  owner: (c) => {
    const td = ownerTypedData(c.fields);
    return { typed_data: td, digest: hex(ownerDigest(td)) };
  },
  binding: (c) => ({ digest: hex(bindingDigest(c.binding)) }),
  owner_nonce: (c) => ({ word: ownerNonceWord(c.owner, c.nonce) }),
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
  attest: (c) => {
    try {
      const o = c.opts;
      const pcrs = Object.fromEntries(Object.entries(o.pcrs ?? {}).map(([i, v]) => [i, hexToBytes(v)]));
      const v = verifyAttestation(hexToBytes(c.document), {
        rootPem: o.root_pem ?? undefined,
        anyImage: !!o.any_image,
        pcrs,
        nonce: o.nonce ? hexToBytes(o.nonce) : undefined,
        publicKey: o.public_key ? hexToBytes(o.public_key) : undefined,
      });
      return { ok: true, module_id: v.moduleId, public_key: v.publicKey ? hex(v.publicKey) : null, pcr0: hex(v.pcrs[0]) };
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
