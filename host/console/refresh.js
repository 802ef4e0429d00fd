// The owner console's refresh: reading the host again — status, trust, the audit log, the
// owner's sessions — and after an action, beside its outcome.
import { get, getPaged, Timeout } from "./api.js";
import { sameAddress } from "./bytes.js";
import { checkBinding, sessionsOfOwner } from "./verify.js";
import { renderSessions } from "./views.js";
import { $, state, errorText } from "./state.js";
import { act } from "./actions.js";
import { showIdentity, establishTrust } from "./trust.js";
import { refreshAudit, showAudit } from "./audit.js";
import { open, showDetail } from "./session.js";

/**
 * Read the host again: status, trust, the audit log (unless `audit` is false: just
 * verified), the owner's sessions. Run exclusively.
 */
export async function refresh({ audit = true } = {}) {
  state.status = await get("/v1/status");
  showIdentity();
  $("pin-key").placeholder = state.status.identity_public_key;
  let retrusted = false;
  if (!state.trust || !state.trust.method || state.trust.publicKey?.toLowerCase() !== state.status.identity_public_key.toLowerCase()) {
    await establishTrust();
    retrusted = true;
  }
  if (audit || retrusted) await refreshAudit();
  const account = state.account;
  if (!account) {
    state.sessions = [];
    state.sessionsMore = false;
    renderSessions($("session-table").tBodies[0], [], 0, () => {});
    return;
  }
  const { rows: stored, more } = await getPaged(`/v1/owners/${account}/sessions?limit=100`);
  $("session-more").textContent = more
    ? `The host lists more sessions of this owner than the ${stored.length} shown (the oldest first): the rest are not shown here.`
    : "";
  // The owner's sessions in the verified log (the enclave wrote them, naming this owner):
  // the host's list may leave one out (a review of 2026-12-07).
  const logged = state.audit ? sessionsOfOwner(state.audit.entries, account) : new Map();
  const listed = new Set(stored.map((s) => String(s.session).toLowerCase()));
  const rows = [];
  // A row the host does not answer for in time ends the refresh, said: waiting out each row
  // in turn would hold every action behind it.
  const liveOf = async (session) => {
    try {
      return (await get(`/v1/sessions/${session}`)).session;
    } catch (e) {
      if (e instanceof Timeout) throw e;
      return null;
    }
  };
  for (const s of stored) {
    const live = await liveOf(s.session);
    let bindingOk = false;
    let bindingError = null;
    let binding = null;
    try {
      if (!state.trust?.method) throw new Error("enclave not verified");
      checkBinding(s.binding.binding, s.binding.binding_signature, state.trust.identity, { owner: account, session: s.session });
      bindingOk = true;
      binding = s.binding.binding;
    } catch (e) {
      bindingError = !state.trust?.method ? e.message : sameAddress(s.enclave, state.trust.identity) ? e.message : "another enclave's";
    }
    rows.push({ stored: s, live, bindingOk, bindingError, binding, logged: logged.get(String(s.session).toLowerCase()) ?? null, listed: true });
  }
  for (const [key, l] of logged) {
    if (listed.has(key)) continue;
    // A session the host did not list: its session and agent are the log's (checked), the
    // rest unknown or the host's word.
    const live = await liveOf(l.session);
    rows.push({
      stored: { session: l.session, owner: account, agent: l.agent, state: live?.state ?? "unknown", valid_until: l.validUntil, binding: null },
      live, bindingOk: false, bindingError: null, binding: null, logged: l, listed: false, more,
    });
  }
  state.sessions = rows;
  state.sessionsMore = more;
  const now = state.status.now;
  renderSessions($("session-table").tBodies[0], rows, now, (sess) => act("Opening the session", () => open(sess)));
  if (state.selected) await showDetail();
  showAudit();
}

/**
 * Read the host again after an action that was done: a failure then (a host that does not
 * answer) is said beside the outcome, never in its place. Answers what to add to it.
 */
export async function refreshAfter() {
  try {
    await refresh();
    return "";
  } catch (e) {
    return ` — reading the host again failed (${errorText(e)}): what the page shows may be from before`;
  }
}

/** An action's outcome `msg` (text, or {text, cls}) with `after` ({@link refreshAfter}). */
export function done(msg, after) {
  if (!after) return msg;
  return typeof msg === "object" ? { text: msg.text + after, cls: msg.cls } : { text: msg + after, cls: "warn" };
}
