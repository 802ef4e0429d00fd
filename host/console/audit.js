// The owner console's audit log: verified in this page against the trusted identity, checked
// to reach the head the enclave signs for a fresh nonce, and the owner's entries shown.
import { get, freshNonce, auditLog } from "./api.js";
import { verifyAuditLog, sessionsOfOwner } from "./verify.js";
import { renderAudit, badge, time } from "./views.js";
import { $, state } from "./state.js";

/** The audit table: entries of the owner's sessions — the host's list and the verified log's. */
export function showAudit() {
  if (!state.audit || !state.account) return;
  const owned = sessionsOfOwner(state.audit.entries, state.account);
  const listedByHost = state.sessions.filter((r) => r.listed).map((r) => String(r.stored.session).toLowerCase());
  const listed = new Set(listedByHost);
  const mine = [...new Set([...listedByHost, ...owned.keys()])];
  const unlisted = [...owned.keys()].filter((k) => !listed.has(k));
  const more = !!state.sessionsMore;
  renderAudit($("audit-table").tBodies[0], state.audit.entries, mine, new Set(unlisted));
  const note = $("audit-sessions");
  const parts = [
    `Your sessions here: ${owned.size} found in the verified log (the enclave's entries naming you as owner), ${listed.size} listed by the host.`,
  ];
  const kids = [];
  if (unlisted.length) {
    kids.push(badge(more ? "not in the host's first page" : "not listed by the host", "bad"),
      ` ${unlisted.length} session(s) of yours in the verified log ${more ? "are not among those the host listed" : "are missing from the host's list of your sessions"}: ${unlisted.join(", ")}. They are shown here and in Sessions all the same. `);
  }
  if (state.audit.firstSeq > 0) {
    kids.push(badge("possibly incomplete", "warn"),
      ` The host's copy starts at seq ${state.audit.firstSeq} (it says its retention pruned the entries before): a session of yours created before then is here only if the host lists it or a later entry names you. `);
  }
  note.replaceChildren(...parts, " ", ...kids);
}

export async function refreshAudit() {
  $("audit-sessions").replaceChildren();
  if (!state.trust?.method) {
    state.audit = null;
    $("audit-result").replaceChildren(badge("not checked", "warn"), " verify the enclave first: the log is checked against its identity");
    return;
  }
  // A head the enclave signs at its log's end for our nonce, asked first: the host's copy
  // must reach it, or an older genuinely signed head could pass for the end (a review of
  // 2026-12-03).
  const nonce = freshNonce();
  const fresh = await get(`/v1/audit/head?nonce=${nonce}`);
  const log = await auditLog();
  const v = verifyAuditLog(log.entries, log.head, state.trust.identity, log.prunedThrough);
  const now = v.ok ? freshness(log.entries, fresh, nonce, log.prunedThrough) : null;
  state.audit = v.ok ? { ...v, entries: log.entries, fresh: now.ok } : null;
  const out = $("audit-result");
  if (v.ok) {
    // A copy the host pruned is checked from its first entry: the entries before it are
    // not here, and why is only the host's word.
    const from = v.firstSeq > 0
      ? `hash chain recomputed from seq ${v.firstSeq} (logged at ${time(v.firstTime)}); entries 0 to ${v.firstSeq - 1} are not in the host's copy — the host says its audit retention deleted them (the host's word, not checked)`
      : `hash chain recomputed from the genesis of ${state.trust.identity}`;
    out.replaceChildren(badge("verified in this browser", "ok"),
      ` ${v.entries} entries, ${from}; head at seq ${v.headSeq} signed by the enclave identity at ${time(v.headTime)}; `,
      now.ok ? badge(v.firstSeq > 0 ? `complete now from seq ${v.firstSeq}` : "complete now", "ok") : badge("not shown complete now", "warn"), ` ${now.text}`);
  } else {
    out.replaceChildren(badge("DOES NOT VERIFY", "bad"), ` ${v.error}`);
  }
}

/**
 * Whether `entries` (a verified log from seq 0, or from the first entry the host kept) reach `fresh`, the head the enclave signed at
 * its log's end for `nonce`: {ok, text}.
 */
function freshness(entries, fresh, nonce, prunedThrough) {
  if (!fresh || !fresh.nonce || fresh.nonce.toLowerCase() !== nonce.toLowerCase()) {
    return { ok: false, text: "the host's head for our nonce answers another nonce (a replayed head)" };
  }
  const seq = BigInt(fresh.seq);
  // The copy (verified) runs from its first entry's seq, one entry per seq.
  const first = entries.length ? BigInt(entries[0].seq) : 0n;
  const end = first + BigInt(entries.length);
  if (end <= seq) {
    return { ok: false, text: `the enclave's log reached seq ${seq} when asked (signed for our nonce); the host's copy stops at seq ${end - 1n}` };
  }
  if (seq < first) return { ok: false, text: `the head signed for our nonce is at seq ${seq}, before the host's copy starts` };
  const prefix = verifyAuditLog(entries.slice(0, Number(seq - first) + 1), fresh, state.trust.identity, prunedThrough);
  if (!prefix.ok) return { ok: false, text: `the head signed for our nonce: ${prefix.error}` };
  if (BigInt(fresh.end ?? 0) !== seq + 1n) return { ok: false, text: "the head signed for our nonce was not at the log's end" };
  return { ok: true, text: `the log reaches the head the enclave signed at its end for our nonce at ${time(fresh.time)}.` };
}
