// The owner console's actions, one at a time: the queue an action, the background refresh and
// a change of wallet account wait their turn in, and the trust read at an action's click.
import { state, say, errorText, updateButtons } from "./state.js";
import { addressOfPublicKey, hexToBytes } from "./bytes.js";

// One thing at a time reads and changes `state` across awaits: an action, the background
// refresh, a change of wallet account. A refresh that replaced `state.status` while the
// "Verify attestation" handler awaited the document had the page trust a key it never
// attested (a review of 2026-12-07): the background refresh now runs only when nothing else
// does, and an action waits for a refresh in flight.
let tail = Promise.resolve();
export let holders = 0;

/** Run `f` once everything before it (an action, a refresh) is done: its promise. */
export function exclusive(f) {
  holders++;
  const run = tail.then(() => f());
  tail = run.catch(() => {}).finally(() => {
    holders--;
  });
  return run;
}

/** Those waiting for the running action to end ({@link act} with `wait`). */
const idleWaiters = [];

/** The trust in force as a value to compare: how, and which key; null when not verified. */
export function trustMark() {
  const t = state.trust;
  return t?.method ? `${t.method} ${String(t.publicKey).toLowerCase()}` : null;
}

/** `mark` ({@link trustMark}) in words. */
function trustWords(mark) {
  if (!mark) return "not verified";
  const [method, pk] = mark.split(" ");
  let who = pk;
  try {
    who = addressOfPublicKey(hexToBytes(pk));
  } catch {
    // the key as it is
  }
  return `${method} ${who}`;
}

/**
 * Run an action with the buttons disabled and its outcome in the status line. While another
 * runs, a click is dropped (its button is disabled); with `wait` (a file chosen), it runs next.
 *
 * `trust`: what the action signs under. The trust is read at the click, before anything
 * waits: an action waits for a refresh in flight, and a refresh the host answers with another
 * key drops the trust the owner saw (a review of 2026-12-07: a Sweep clicked under "attested"
 * was signed for the host's key B and its receipt from B reported as done). "same": refused
 * when its turn comes under another trust than at the click; "trusted": that, and refused
 * unless the enclave is verified.
 */
export async function act(label, f, { wait = false, trust = null } = {}) {
  const atClick = trustMark();
  if (state.busy && !wait) return;
  while (state.busy) await new Promise((resolve) => idleWaiters.push(resolve));
  state.busy = true;
  document.body.setAttribute("aria-busy", "true");
  updateButtons();
  say(`${label}…`);
  try {
    // After a refresh in flight, never beside it. `f` answers a message (said as done), or
    // {text, cls} for an outcome the page could not check (said as a warning).
    const msg = await exclusive(() => {
      if (trust) sameTrust(atClick, trust === "trusted");
      return f();
    });
    if (msg && typeof msg === "object") say(msg.text, msg.cls);
    else if (msg) say(msg, "ok");
    else say(""); // done, nothing to report: not "…" as if still running
  } catch (e) {
    say(`${label} failed: ${errorText(e)}`, "bad");
  } finally {
    state.busy = false;
    document.body.removeAttribute("aria-busy");
    updateButtons();
    for (const resolve of idleWaiters.splice(0)) resolve();
  }
}

/** Throw, saying why, unless the trust in force is `atClick` (and, when `required`, verified). */
function sameTrust(atClick, required) {
  const now = trustMark();
  if (now !== atClick) {
    throw new Error(`the page trusted ${trustWords(atClick)} when you clicked, and ${trustWords(now)} when the action's turn came (the host's status changed meanwhile): nothing was signed — read the trust line, then click again`);
  }
  if (required && !now) {
    throw new Error("the enclave is not verified in this browser: nothing was signed — verify the attestation or pin the key first");
  }
}
