// The owner console: wiring. State lives in this module; the pure parts are in bytes.js,
// eip712.js, verify.js, attest.js, x509.js, decode.js (tested under node against the Rust
// code) and the DOM parts in views.js and chart.js.
import { get, getPaged, post, ApiError, Timeout, freshNonce, auditLog } from "./api.js";
import { keccak, utf8, bytesToHex, hexToBytes, addressOfPublicKey, sameAddress } from "./bytes.js";
import { verifyAttestation, parsePcrsJson, pinsImage } from "./attest.js";
import { checkBinding, verifyAuditLog, sessionsOfOwner } from "./verify.js";
import { checkSignedStatus } from "./status.js";
import * as owner from "./owner.js";
import { renderSessions, renderDetail, renderAudit, badge, time } from "./views.js";

const $ = (id) => document.getElementById(id);
const TRUST_KEY = "bridle.trust";
const SETTINGS_KEY = "bridle.attestation";
const POLICIES_KEY = "bridle.policies";

const state = {
  account: null,
  status: null, // the host's /v1/status
  trust: null, // {method, identity, publicKey, detail}
  preview: null, // {canonical, hash, explain}
  sessions: [],
  selected: null,
  showHeld: null, // {session, digest}: the held request whose payload the detail asks for
  audit: null, // {ok, entries, …}
  busy: false, // an action (a button) runs or waits for its turn
};

// One thing at a time reads and changes `state` across awaits: an action, the background
// refresh, a change of wallet account. A refresh that replaced `state.status` while the
// "Verify attestation" handler awaited the document had the page trust a key it never
// attested (a review of 2026-12-07): the background refresh now runs only when nothing else
// does, and an action waits for a refresh in flight.
let tail = Promise.resolve();
let holders = 0;

/** Run `f` once everything before it (an action, a refresh) is done: its promise. */
function exclusive(f) {
  holders++;
  const run = tail.then(() => f());
  tail = run.catch(() => {}).finally(() => {
    holders--;
  });
  return run;
}

function say(text, cls = "") {
  const s = $("status");
  s.className = `status ${cls}`;
  s.textContent = text;
}

function errorText(e) {
  if (e instanceof ApiError) return `the host answered ${e.status}: ${e.message}`;
  if (e && e.code === 4001) return "you rejected the request in your wallet: nothing was sent";
  return e && e.message ? e.message : String(e);
}

/** Those waiting for the running action to end ({@link act} with `wait`). */
const idleWaiters = [];

/** The trust in force as a value to compare: how, and which key; null when not verified. */
function trustMark() {
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
async function act(label, f, { wait = false, trust = null } = {}) {
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

function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

// ---- trust in the enclave ---------------------------------------------------------------------

function settings() {
  return load(SETTINGS_KEY, { rootPem: null, rootName: null, pcrs: null, anyImage: false });
}

function showSettings() {
  const s = settings();
  $("any-image").checked = !!s.anyImage;
  const pcrs = s.pcrs ? Object.keys(s.pcrs).map((i) => `PCR${i}`).join(", ") : "none";
  $("trust-config").textContent = `Root: ${s.rootName ?? "AWS Nitro Enclaves Root-G1 (embedded, pinned)"}; expected PCRs: ${pcrs}${s.anyImage ? "; any image accepted" : ""}.`;
}

/** The attestation checks of settings `s` (read once by the caller), with `extra`. */
function verifyOpts(extra, s = settings()) {
  const pcrs = {};
  for (const [i, v] of Object.entries(s.pcrs ?? {})) pcrs[i] = hexToBytes(v);
  return { rootPem: s.rootPem ?? undefined, pcrs, anyImage: !!s.anyImage, ...extra };
}

/**
 * Verify an attestation document for a fresh nonce against `publicKey` (SEC1 hex), the one
 * key the caller read and will trust: never a key read again after the await (a review of
 * 2026-12-07: a status replaced meanwhile had another key stored as attested).
 */
async function attestNow(publicKey) {
  const pk = hexToBytes(publicKey);
  const s = settings();
  const nonce = freshNonce();
  const a = await get(`/v1/attestation?nonce=${nonce}`);
  const v = verifyAttestation(hexToBytes(a.document), verifyOpts({ nonce: hexToBytes(nonce), publicKey: pk }, s));
  // The settings keep PCRs as hex: pinned or not as the check reads them.
  const image = s.anyImage && !pinsImage(verifyOpts({}, s).pcrs) ? "any image (development)" : "the expected PCRs";
  return `attestation verified in this browser for a fresh nonce: root ${v.rootSha256.slice(0, 16)}…, ${image}, module ${v.moduleId}`;
}

/** The address of the host's identity key (the key is what is attested or pinned). */
function keyAddress(status) {
  try {
    return addressOfPublicKey(hexToBytes(status.identity_public_key));
  } catch {
    return null;
  }
}

/**
 * The Identity line: the attested (or pinned) identity once trusted, never the host's
 * `identity_address` beside the badge; otherwise the address of the key the host reports,
 * its word. A host's `identity_address` that is not that address is said apart.
 */
function showIdentity() {
  const st = state.status;
  if (!st) return;
  const trusted = state.trust?.method && state.trust.publicKey?.toLowerCase() === String(st.identity_public_key).toLowerCase();
  const shown = trusted ? state.trust.identity : keyAddress(st);
  $("identity").textContent = `${shown ?? "(the host reports no valid identity key)"} (booted ${time(st.booted_at)}, ${st.sessions_active} active sessions)`;
  const note = $("identity-note");
  const claimed = st.identity_address;
  if (shown && claimed && !sameAddress(claimed, shown)) {
    note.hidden = false;
    note.replaceChildren(badge("the host's word", "bad"),
      ` The host's status names identity_address ${claimed}, which is not the address of the ${trusted ? `identity key ${state.trust.method === "attested" ? "attested" : "pinned"} in this browser` : "identity key it reports"}: the page ignores it.`);
  } else {
    note.hidden = true;
    note.replaceChildren();
  }
}

function setTrust(t) {
  state.trust = t;
  const el = $("trust");
  if (t && t.method) {
    el.replaceWith(Object.assign(badge(t.method === "attested" ? "attested" : "pinned", "ok"), { id: "trust" }));
  } else {
    el.replaceWith(Object.assign(badge("not verified", "bad"), { id: "trust" }));
  }
  $("trust-detail").textContent = t ? t.detail : "";
  showIdentity();
  updateButtons();
}

/** Trust in the key the host reports now, from this browser's stored trust (run exclusively). */
async function establishTrust() {
  const stored = load(TRUST_KEY, null);
  const status = state.status;
  const pk = status.identity_public_key;
  if (stored && stored.publicKey.toLowerCase() !== pk.toLowerCase()) {
    setTrust({ method: null, detail: `the host now reports another identity than the ${stored.method} one (${addressOfPublicKey(hexToBytes(stored.publicKey))}): the enclave restarted or was replaced; verify again` });
    return;
  }
  if (stored && stored.method === "pinned") {
    setTrust({ method: "pinned", identity: addressOfPublicKey(hexToBytes(pk)), publicKey: pk, detail: "a key you pinned in this browser" });
    return;
  }
  const s = settings();
  if (stored || s.anyImage || s.pcrs) {
    try {
      const detail = await attestNow(pk);
      if (state.status !== status) throw new Error("the host's status changed while its attestation was checked: verify again");
      localStorage.setItem(TRUST_KEY, JSON.stringify({ method: "attested", publicKey: pk }));
      setTrust({ method: "attested", identity: addressOfPublicKey(hexToBytes(pk)), publicKey: pk, detail });
      return;
    } catch (e) {
      setTrust({ method: null, detail: `attestation does not verify: ${errorText(e)}` });
      return;
    }
  }
  setTrust({ method: null, detail: "the identity is the host's word: verify the attestation or pin a key below" });
}

/**
 * Store `change` to the attestation settings and check the trust in force again under them
 * (run as an action, exclusively): an attestation that verified only under the settings
 * before (any image, another root) is not trusted after them (a review of 2026-12-07).
 */
async function changeSettings(change, said) {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), ...change }));
  showSettings();
  if (state.trust?.method !== "attested") return said;
  const before = trustMark();
  setTrust({ method: null, detail: "the attestation settings changed: checking the attestation again" });
  try {
    await refresh();
  } catch (e) {
    return { text: `${said}; the enclave is not verified now: the host could not be read again (${errorText(e)})`, cls: "warn" };
  }
  return trustMark() === before
    ? `${said}; the enclave's attestation verifies under these settings`
    : { text: `${said}; the enclave's attestation does not verify under these settings: not verified now (${state.trust?.detail ?? ""})`, cls: "warn" };
}

// ---- wallet -------------------------------------------------------------------------------------

function wallet() {
  return window.ethereum ?? null;
}

async function connect() {
  const w = wallet();
  if (!w) throw new Error("no EIP-1193 wallet in this browser (window.ethereum): install or unlock one");
  const accounts = await w.request({ method: "eth_requestAccounts" });
  setAccount(accounts[0] ?? null);
  await refresh();
  return state.account ? `connected ${state.account}` : "the wallet gave no account";
}

function setAccount(a) {
  state.account = a ? addressOfChecksum(a) : null;
  $("account").textContent = state.account ?? "no wallet connected";
  $("connect").textContent = state.account ? "Reconnect" : "Connect wallet";
  updateButtons();
}

function addressOfChecksum(a) {
  return a.toLowerCase().startsWith("0x") ? a : `0x${a}`;
}

/**
 * What an owner message is signed with, read once per action: the trusted identity, else
 * (revocations only) the address of the key the host reports — the enclave refuses a
 * message for another identity, and the page then says its receipt proves nothing.
 */
function ctx() {
  const identity = state.trust?.identity ?? (state.status ? keyAddress(state.status) : null);
  return {
    wallet: wallet(),
    account: state.account,
    identity,
    trusted: !!state.trust?.method,
    onTypedData: (td) => {
      $("typed-data").textContent = JSON.stringify(td, null, 2);
    },
  };
}

function updateButtons() {
  const trusted = !!state.trust?.method;
  const connected = !!state.account;
  const idle = !state.busy;
  // Actions wait for one another (and for a refresh in flight): while one runs or waits,
  // the others are disabled rather than dropped.
  for (const id of ["connect", "refresh", "preview", "verify-audit", "verify-attestation", "pin"]) $(id).disabled = !idle;
  $("grant-btn").disabled = !(idle && connected && trusted && state.preview);
  $("update-btn").disabled = !(idle && connected && trusted && state.preview && state.selected);
  $("revoke-all").disabled = !(idle && connected);
  $("revoke").disabled = !(idle && connected && state.selected);
  $("sweep").disabled = !(idle && connected && trusted && state.selected);
  for (const b of document.querySelectorAll("button.approve, button.deny")) b.disabled = !(idle && connected && trusted);
}

// ---- policies -----------------------------------------------------------------------------------

async function preview() {
  const text = $("policy-text").value;
  if (!text.trim()) throw new Error("paste a policy or choose a file first");
  const r = await post("/v1/policy/normalize", { text });
  // The text edited meanwhile: this preview is of the text as it was, not what the box shows.
  if ($("policy-text").value !== text) throw new Error("the policy text changed while the host normalized it: preview again");
  // The hash the owner signs is computed here from the exact bytes that will be sent.
  const hash = bytesToHex(keccak(utf8("bridle/policy/v1\n"), utf8(r.canonical)));
  if (hash !== r.hash.toLowerCase()) throw new Error(`the host's policy hash ${r.hash} is not the hash of its canonical document (${hash})`);
  state.preview = { canonical: r.canonical, hash, explain: r.explain };
  $("policy-hash").textContent = hash;
  $("explain").textContent = r.explain;
  const doc = JSON.parse(r.canonical);
  $("canonical").textContent = prettyJson(r.canonical);
  // The host turned the text into the document: the page checks that only when the text is
  // itself the JSON document (as `bridle policy normalize FILE` prints it).
  const same = pastedJsonEquals(text, doc, r.canonical);
  $("policy-match").replaceChildren(
    same
      ? badge("the document equals the JSON you pasted (compared in this page)", "ok")
      : badge("the host turned your text into this document: this page cannot check that", "warn"),
    same ? "" : " Read the document — it is exactly what you sign — or compare the hash with `bridle policy hash FILE` on your own machine (or paste the JSON `bridle policy normalize FILE` prints, which this page compares).",
  );
  $("lifetime").hidden = !r.lifetime_error;
  $("lifetime").textContent = r.lifetime_error ? `The host says a session granted now would be refused: ${r.lifetime_error}` : "";
  $("preview-out").hidden = false;
  updateButtons();
  return `policy ${hash}: read the document you sign (the explanation is the host's word), then sign`;
}

/**
 * Whether `text` is a JSON document equal to `doc` (same values; key order ignored). Never
 * when either holds a number of 16 digits or more: JSON.parse rounds past 2^53, and two
 * different chain ids would compare equal.
 */
function pastedJsonEquals(text, doc, canonical) {
  if (hasLongNumber(text) || hasLongNumber(canonical)) return false;
  let mine;
  try {
    mine = JSON.parse(text);
  } catch {
    return false;
  }
  const norm = (v) =>
    Array.isArray(v) ? v.map(norm)
      : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, norm(v[k])]))
        : v;
  return JSON.stringify(norm(mine)) === JSON.stringify(norm(doc));
}

/** JSON `text` indented, every token kept as written (JSON.parse would round large numbers). */
function prettyJson(text) {
  let out = "";
  let depth = 0;
  let inString = false;
  const nl = () => "\n" + "  ".repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i] ?? "";
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      if (text[i + 1] === close) {
        out += c + close;
        i++;
      } else {
        depth++;
        out += c + nl();
      }
    } else if (c === "}" || c === "]") {
      depth--;
      out += nl() + c;
    } else if (c === ",") out += "," + nl();
    else if (c === ":") out += ": ";
    else if (!/\s/.test(c)) out += c;
  }
  return out;
}

/** Whether JSON `text` holds, outside its strings, a run of 16 digits or more. */
function hasLongNumber(text) {
  let inString = false;
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    run = c >= "0" && c <= "9" ? run + 1 : 0;
    if (run >= 16) return true;
  }
  return false;
}

function rememberPolicy(p) {
  const all = load(POLICIES_KEY, {});
  all[p.hash] = p.canonical;
  localStorage.setItem(POLICIES_KEY, JSON.stringify(all));
}

/** The session's policy: this browser's canonical copy (hash checked), else the host's copy. */
async function policyOf(session, hash) {
  const mine = load(POLICIES_KEY, {})[hash.toLowerCase()];
  if (mine && bytesToHex(keccak(utf8("bridle/policy/v1\n"), utf8(mine))) === hash.toLowerCase()) {
    return { doc: JSON.parse(mine), verified: true };
  }
  try {
    const list = await get(`/v1/sessions/${session}/policies?hash=${hash}`);
    const r = list.find((x) => x.policy_hash.toLowerCase() === hash.toLowerCase());
    return r ? { doc: r.policy, verified: false } : { doc: null, verified: false };
  } catch (e) {
    if (e instanceof Timeout) throw e;
    return { doc: null, verified: false };
  }
}

// ---- refresh ------------------------------------------------------------------------------------

/**
 * Read the host again: status, trust, the audit log (unless `audit` is false: just
 * verified), the owner's sessions. Run exclusively.
 */
async function refresh({ audit = true } = {}) {
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

/** The audit table: entries of the owner's sessions — the host's list and the verified log's. */
function showAudit() {
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

async function refreshAudit() {
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

async function open(session) {
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
async function nonceBounds(session) {
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

async function showDetail() {
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

// ---- wiring -------------------------------------------------------------------------------------

function readFile(input) {
  const f = input.files && input.files[0];
  return f ? f.text().then((t) => ({ name: f.name, text: t })) : Promise.resolve(null);
}

/**
 * What an owner action on the selected session signs, read once: the row, the enclave's
 * status signed for a fresh nonce (the nonce's bounds), the agent the enclave signed
 * ({@link agentFor}) and the wallet context.
 */
async function sessionAction() {
  const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
  if (!row) throw new Error("no session selected");
  const c = ctx();
  const signed = await signedStatus(row.stored.session, null);
  const { agent, note } = agentFor(row, signed.receipt ? signed.live : null, c.trusted);
  return { row, at: boundsOf(signed), agent, note, c };
}

/**
 * Read the host again after an action that was done: a failure then (a host that does not
 * answer) is said beside the outcome, never in its place. Answers what to add to it.
 */
async function refreshAfter() {
  try {
    await refresh();
    return "";
  } catch (e) {
    return ` — reading the host again failed (${errorText(e)}): what the page shows may be from before`;
  }
}

/** An action's outcome `msg` (text, or {text, cls}) with `after` ({@link refreshAfter}). */
function done(msg, after) {
  if (!after) return msg;
  return typeof msg === "object" ? { text: msg.text + after, cls: msg.cls } : { text: msg + after, cls: "warn" };
}

/** An outcome only the host's word vouches for: said as a warning, never as done. */
function unverified(what) {
  return {
    text: `${what}, with a receipt this page cannot check — the enclave is not verified in this browser, so nothing shows the enclave saw it: verify the enclave (its signed status then shows each session's state), or check with bridle owner status`,
    cls: "warn",
  };
}

function wire() {
  $("connect").addEventListener("click", () => act("Connecting the wallet", connect));
  $("refresh").addEventListener("click", () => act("Refreshing", async () => (await refresh(), "up to date")));
  $("preview").addEventListener("click", () => act("Normalizing the policy", preview));
  $("verify-audit").addEventListener("click", () => act("Verifying the audit log", async () => {
    await refreshAudit();
    if (!state.audit) return null;
    // Sessions of yours the log names and the host's list leaves out: read again, so that
    // they are in Sessions too (a review of 2026-12-07).
    const known = new Set(state.sessions.map((r) => String(r.stored.session).toLowerCase()));
    if ([...sessionsOfOwner(state.audit.entries, state.account).keys()].some((k) => !known.has(k))) await refresh({ audit: false });
    else showAudit();
    return "the audit log verifies";
  }));
  // A new text invalidates the preview: only a previewed text can be signed.
  const policyChanged = () => {
    state.preview = null;
    $("preview-out").hidden = true;
    updateButtons();
  };
  $("policy-file").addEventListener("change", async () => {
    const f = await readFile($("policy-file"));
    if (f) $("policy-text").value = f.text;
    policyChanged();
  });
  $("policy-text").addEventListener("input", policyChanged);
  $("root-file").addEventListener("change", () => act("Reading the root certificate", async () => {
    const f = await readFile($("root-file"));
    if (!f) return null;
    return changeSettings({ rootPem: f.text, rootName: f.name }, `root certificate ${f.name} will be used`);
  }, { wait: true }));
  $("root-aws").addEventListener("click", () => act("Restoring the AWS root", () =>
    changeSettings({ rootPem: null, rootName: null }, "the embedded AWS Nitro Enclaves root will be used"), { wait: true }));
  $("pcrs-file").addEventListener("change", () => act("Reading the PCRs", async () => {
    const f = await readFile($("pcrs-file"));
    if (!f) return null;
    const p = parsePcrsJson(f.text);
    const hex = Object.fromEntries(Object.entries(p).map(([i, v]) => [i, bytesToHex(v)]));
    return changeSettings({ pcrs: hex }, `expected PCRs: ${Object.keys(p).map((i) => `PCR${i}`).join(", ")}`);
  }, { wait: true }));
  $("any-image").addEventListener("change", () => {
    const anyImage = $("any-image").checked;
    act(anyImage ? "Accepting any image" : "Requiring the expected PCRs", () =>
      changeSettings({ anyImage }, anyImage ? "any image accepted (development)" : "only the expected PCRs accepted"), { wait: true });
  });
  $("verify-attestation").addEventListener("click", () => act("Verifying the attestation", async () => {
    localStorage.removeItem(TRUST_KEY);
    setTrust(null);
    if (!state.status) state.status = await get("/v1/status");
    // The key is read once, checked, and exactly that key is trusted (a review of
    // 2026-12-07: it was read again after the await, from a status replaced meanwhile).
    const status = state.status;
    const pk = status.identity_public_key;
    const detail = await attestNow(pk).catch((e) => {
      setTrust({ method: null, detail: `attestation does not verify: ${errorText(e)}` });
      throw e;
    });
    if (state.status !== status) {
      setTrust({ method: null, detail: "the host's status changed while the attestation was checked: verify again" });
      throw new Error("the host's status changed while the attestation was checked: nothing was trusted");
    }
    localStorage.setItem(TRUST_KEY, JSON.stringify({ method: "attested", publicKey: pk }));
    setTrust({ method: "attested", identity: addressOfPublicKey(hexToBytes(pk)), publicKey: pk, detail });
    await refresh();
    return detail;
  }));
  $("pin").addEventListener("click", () => act("Pinning the key", async () => {
    const pk = $("pin-key").value.trim();
    const addr = addressOfPublicKey(hexToBytes(pk));
    if (!state.status) state.status = await get("/v1/status");
    if (pk.toLowerCase() !== state.status.identity_public_key.toLowerCase()) {
      throw new Error(`the host reports identity key ${state.status.identity_public_key} (${keyAddress(state.status)}), not ${addr}: not pinned`);
    }
    localStorage.setItem(TRUST_KEY, JSON.stringify({ method: "pinned", publicKey: pk }));
    await establishTrust();
    await refresh();
    return `pinned ${addr}`;
  }));
  // After an action in flight: one verifying the attestation would trust again after it.
  $("forget").addEventListener("click", () => exclusive(() => {
    localStorage.removeItem(TRUST_KEY);
    setTrust({ method: null, detail: "forgotten" });
  }));
  // Every action reads what it acts on once, before its first await: the page's state
  // (the preview, the trust, the selected row) may change while the wallet asks.
  $("grant-btn").addEventListener("click", () => act("Granting", async () => {
    const p = state.preview;
    const trust = state.trust;
    if (!p || !trust?.method) throw new Error("preview a policy and verify the enclave first");
    const opts = settings();
    const verifyDoc = trust.method === "attested"
      ? (doc, userData) => verifyAttestation(doc, verifyOpts({ userData, publicKey: hexToBytes(trust.publicKey), maxAgeSecs: 600 }, opts))
      : null;
    const c = ctx();
    const agentKey = $("agent-key").value;
    const { created, attested } = await owner.grant(c, agentKey, p, verifyDoc, await nonceBounds(null));
    rememberPolicy(p);
    state.selected = created.binding.session;
    const after = await refreshAfter();
    $("detail").hidden = false;
    const doc = attested
      ? "; its attestation document verifies with user_data = the binding digest"
      : verifyDoc ? "; no attestation document came with it (the identity's signature stands)" : "";
    return done(`session ${created.binding.session} granted: the binding is signed by the trusted enclave and names you, this agent and policy ${p.hash}${doc}`, after);
  }, { trust: "trusted" }));
  $("update-btn").addEventListener("click", () => act("Updating the policy", async () => {
    const p = state.preview;
    if (!p) throw new Error("preview a policy first");
    const { row, at, agent, note, c } = await sessionAction();
    const { receipt } = await owner.update(c, row.stored.session, agent, p, at);
    rememberPolicy(p);
    return done(`session now enforces policy ${p.hash} (receipt signed by the enclave at ${time(receipt.time)})${note}`, await refreshAfter());
  }, { trust: "trusted" }));
  // Revocations are of use unverified too (signed for the host's key, said as unchecked);
  // still never under another trust than the one the owner clicked under.
  $("revoke").addEventListener("click", () => act("Revoking", async () => {
    const { row, at, agent, note, c } = await sessionAction();
    const { receipt } = await owner.revoke(c, row.stored.session, agent, at);
    const after = await refreshAfter();
    if (!c.trusted) return done(unverified(`the host's reply says ${row.stored.session} was revoked`), after);
    return done(`revoked ${row.stored.session} (receipt for your nonce, signed by the enclave at ${time(receipt.time)})${note}`, after);
  }, { trust: "same" }));
  $("revoke-all").addEventListener("click", () => act("Revoking every session", async () => {
    const c = ctx();
    const { reply, receipt } = await owner.revokeAll(c, await nonceBounds(null));
    const after = await refreshAfter();
    if (!c.trusted) return done(unverified(`the host's reply says ${reply.sessions.length} session(s) were revoked`), after);
    return done(`revoked ${reply.sessions.length} session(s) (receipt signed by the enclave at ${time(receipt.time)})`, after);
  }, { trust: "same" }));
  $("sweep").addEventListener("click", () => act("Sweeping", async () => {
    const gwei = (id) => BigInt(Math.round(Number($(id).value) * 1e9));
    const max = gwei("sw-fee");
    const prio = gwei("sw-prio") < max ? gwei("sw-prio") : max;
    const terms = [{ chain_id: BigInt($("sw-chain").value), nonce: BigInt($("sw-nonce").value), max_fee_per_gas: max, max_priority_fee_per_gas: prio, gas_limit: BigInt($("sw-gas").value) }];
    const { row, at, agent, note, c } = await sessionAction();
    const { reply } = await owner.sweep(c, row.stored.session, agent, terms, at);
    const out = $("sweep-out");
    out.hidden = false;
    const what = (t) =>
      t.invalidate_nonce === undefined || t.invalidate_nonce === null
        ? `approve(${t.spender}, 0)`
        : `invalidateNonces(${t.token}, ${t.spender}, ${t.invalidate_nonce})`;
    out.textContent = reply.transactions.map((t) => `chain ${t.chain_id} nonce ${t.nonce}: ${what(t)} on ${t.to}\n${t.raw_transaction}`).join("\n\n")
      + reply.skipped.map((k) => `\nskipped ${k.token} → ${k.spender}: ${k.reason}`).join("") || "nothing to revoke";
    return done(`${reply.transactions.length} revocation(s) signed (receipt for your nonce checked; broadcast them with your node, or verify each with bridle owner sweep)${note}`, await refreshAfter());
  }, { trust: "trusted" }));
  const w = wallet();
  // A change of account waits its turn too: never under an action that signs for the other.
  if (w && w.on) {
    w.on("accountsChanged", (a) => exclusive(async () => {
      setAccount(a[0] ?? null);
      try {
        await refresh();
      } catch (e) {
        // Not over an action's "…" that waits for it: the action says its own outcome.
        if (!state.busy) say(`refresh failed: ${errorText(e)}`, "bad");
      }
    }));
  }
}

async function start() {
  wire();
  showSettings();
  updateButtons();
  await act("Reading the host", async () => {
    await refresh();
    const w = wallet();
    if (w) {
      const a = await w.request({ method: "eth_accounts" });
      if (a && a[0]) {
        setAccount(a[0]);
        await refresh();
      }
    }
    return wallet() ? null : "no wallet in this browser: you can look, but signing needs an EIP-1193 wallet";
  });
  // Quiet background refresh: only when nothing else runs or waits (an action clicked
  // meanwhile waits for it); an error shows in the status line.
  setInterval(() => {
    if (state.busy || holders > 0 || document.hidden) return;
    exclusive(async () => {
      try {
        await refresh();
      } catch (e) {
        // Not over an action's "…" that waits for it: the action says its own outcome.
        if (!state.busy) say(`refresh failed: ${errorText(e)}`, "bad");
      }
    });
  }, 15000);
}

start();

