// The owner console's selected session: its detail (the enclave's status signed for a fresh
// nonce), the agent and nonce bounds an owner message about it names, and the held requests'
// Approve, Show and Deny.
import { get, freshNonce } from "./api.js";
import { sameAddress } from "./bytes.js";
import { checkSignedStatus } from "./status.js";
import * as owner from "./owner.js";
import { renderDetail, time } from "./views.js";
import { $, state, errorText, updateButtons } from "./state.js";
import { act } from "./actions.js";
import { ctx } from "./wallet.js";
import { policyOf } from "./policy.js";
import { refreshAfter, done } from "./refresh.js";

export async function open(session) {
  state.selected = session;
  await showDetail();
  $("detail").hidden = false;
  $("detail-h").focus?.();
  updateButtons();
  return null;
}

/**
 * The session's status signed by the enclave for a fresh nonce, checked here; `held` names
 * a held request whose payload it shows whatever its size (a status shows the others' only
 * while they fit together: `payload_omitted`).
 */
async function signedStatus(session, held) {
  if (!state.trust?.method) return { error: "the enclave is not verified in this browser" };
  const nonce = freshNonce();
  try {
    const about = session ? `session=${session}&` : "";
    const r = await get(`/v1/status?${about}nonce=${nonce}&cbor=1${held ? `&held=${held}` : ""}`);
    const receipt = checkSignedStatus(r, state.trust.identity, nonce, session);
    return { live: r.session ?? null, aggregate: r.aggregate ?? [], receipt, now: r.now };
  } catch (e) {
    return { error: errorText(e) };
  }
}

/**
 * What bounds the owner nonce of a message about `session` (null: about none), as
 * {signedMs, floorMs} for `owner.nextOwnerNonce`: the time the enclave signed a fresh status
 * at, and past a suspension's second when it says the session is suspended — the enclave
 * refuses a nonce more than ten minutes behind its clock and lifts a suspension only by an
 * update signed after it, so an owner clock behind the enclave's would sign messages it
 * refuses. {} when no signed status comes (this clock alone, then).
 */
export async function nonceBounds(session) {
  return boundsOf(await signedStatus(session, null));
}

function boundsOf(s) {
  if (!s.receipt || !Number.isSafeInteger(s.receipt.time)) return {};
  const suspended = s.live?.state === "suspended" && Number.isSafeInteger(s.live.time) ? (s.live.time + 1) * 1000 : 0;
  return { signedMs: s.receipt.time * 1000, floorMs: suspended };
}

/**
 * The agent an owner message about `row` names, from what the enclave signed: the session's
 * binding checked in this page, the enclave's status signed for a fresh nonce (`signedLive`),
 * or the session's creation in the verified audit log — never the host's row beside them (a
 * review of 2026-12-07: Revoke signed the host's `agent`). With none of them (the enclave is
 * not verified: revocations only), the host's row, and only when the binding it stored names
 * the same agent — never while the enclave is verified (`trusted`): then none of them is a
 * host that withholds them (a review of 2026-12-07). Returns {agent, note}; throws, saying
 * why, when no agent can be named.
 */
function agentFor(row, signedLive, trusted) {
  const checked = [];
  if (row.bindingOk && row.binding) checked.push(["the session's binding, signed by the enclave", row.binding.agent]);
  if (signedLive?.agent) checked.push(["the enclave's signed status", signedLive.agent]);
  if (row.logged?.agent) checked.push(["the session's creation in the verified audit log", row.logged.agent]);
  const hostSays = row.listed ? row.stored.agent : null;
  if (checked.length) {
    const [source, agent] = checked[0];
    const other = checked.find(([, a]) => !sameAddress(a, agent));
    if (other) throw new Error(`${source} names agent ${agent}, ${other[0]} names ${other[1]}: nothing was signed`);
    const note = hostSays && !sameAddress(hostSays, agent)
      ? ` — the host's list names agent ${hostSays} for this session; signed for ${agent}, from ${source}`
      : "";
    return { agent, note };
  }
  if (trusted) {
    const why = [
      `the session's binding ${row.bindingError ? `does not verify (${row.bindingError})` : "is not here"}`,
      "no status the enclave signed names it",
      "its creation is not in the verified audit log",
    ];
    throw new Error(`the enclave is verified here, yet nothing it signed names this session's agent: ${why.join("; ")}. Nothing was signed — the host's row alone is not used while the enclave is verified: refresh, verify the audit log, or use Revoke all`);
  }
  const stored = row.stored.binding?.binding?.agent;
  if (!hostSays || !stored || !sameAddress(stored, hostSays)) {
    throw new Error(`the host's row names agent ${hostSays ?? "none"} but the binding it stored names ${stored ?? "none"}, and the enclave is not verified here: nothing was signed — verify the enclave, or use Revoke all`);
  }
  return { agent: hostSays, note: " — agent from the host's row (the enclave is not verified here)" };
}

export async function showDetail() {
  const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
  if (!row) return;
  $("detail-session").textContent = row.stored.session;
  const held = state.showHeld && sameAddress(state.showHeld.session, row.stored.session) ? state.showHeld.digest : null;
  const signed = await signedStatus(row.stored.session, held);
  const live = signed.receipt ? signed.live : row.live;
  const pol = live ? await policyOf(row.stored.session, live.policy_hash) : { doc: null, verified: false };
  const audit = state.audit ? state.audit.entries.filter((e) => sameAddress(e.session, row.stored.session)) : null;
  // A word on a held request is signed no earlier than its hold, by the enclave's signed word only.
  const heldAt = (p) =>
    signed.receipt && Number.isSafeInteger(signed.receipt.time)
      ? { signedMs: signed.receipt.time * 1000, floorMs: Number.isSafeInteger(p.created_at) ? p.created_at * 1000 : 0 }
      : {};
  renderDetail($("detail-body"), {
    live, stored: row.stored, policy: pol.doc, policyVerified: pol.verified, audit, auditFresh: state.audit?.fresh === true,
    now: signed.now ?? state.status.now,
    signed: signed.receipt ?? null, signedError: signed.error, aggregate: signed.receipt ? signed.aggregate : null,
    onApprove: (p) => act("Approving the request", async () => {
      if (!signed.receipt) throw new Error("the held request is not from a status the enclave signed");
      const c = ctx();
      const { agent } = agentFor(row, live, c.trusted);
      await owner.approve(c, row.stored.session, agent, p, heldAt(p));
      return done(`approved ${p.digest}: the enclave signed it, and the signature recovers to the session`, await refreshAfter());
    }, { trust: "trusted" }),
    onShow: (p) => act("Fetching the held request", async () => {
      state.showHeld = { session: row.stored.session, digest: p.digest };
      const again = await showDetail();
      const shown = again?.receipt && (again.live?.pending ?? []).some((q) => q.digest === p.digest && q.payload);
      if (!shown) throw new Error(`the enclave's signed status does not show held request ${p.digest}: ${again?.error ?? "the host did not ask for it"}`);
      return `the enclave's signed status now shows held request ${p.digest}`;
    }),
    onDeny: (p) => act("Denying the request", async () => {
      const c = ctx();
      const { agent } = agentFor(row, signed.receipt ? live : null, c.trusted);
      const { reply, receipt } = await owner.deny(c, row.stored.session, agent, p, heldAt(p));
      return done(`denied ${p.digest}: never signed; the agent is refused until ${time(reply.until)} (receipt signed by the enclave at ${time(receipt.time)})`, await refreshAfter());
    }, { trust: "trusted" }),
  });
  updateButtons();
  return signed;
}

/**
 * What an owner action on the selected session signs, read once: the row, the enclave's
 * status signed for a fresh nonce (the nonce's bounds), the agent the enclave signed
 * ({@link agentFor}) and the wallet context.
 */
export async function sessionAction() {
  const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
  if (!row) throw new Error("no session selected");
  const c = ctx();
  const signed = await signedStatus(row.stored.session, null);
  const { agent, note } = agentFor(row, signed.receipt ? signed.live : null, c.trusted);
  return { row, at: boundsOf(signed), agent, note, c };
}
