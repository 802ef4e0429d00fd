// The owner console: wiring. State lives in this module; the pure parts are in bytes.js,
// eip712.js, verify.js, attest.js, x509.js, decode.js (tested under node against the Rust
// code) and the DOM parts in views.js and chart.js.
import { get, getPaged, post, ApiError, freshNonce, auditLog } from "./api.js";
import { keccak, utf8, bytesToHex, hexToBytes, addressOfPublicKey, sameAddress } from "./bytes.js";
import { verifyAttestation, parsePcrsJson, pinsImage } from "./attest.js";
import { checkBinding, verifyAuditLog } from "./verify.js";
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
  busy: false,
};

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

/** Run an action with the buttons disabled and its outcome in the status line. */
async function act(label, f) {
  if (state.busy) return;
  state.busy = true;
  document.body.setAttribute("aria-busy", "true");
  say(`${label}…`);
  try {
    const msg = await f();
    if (msg) say(msg, "ok");
  } catch (e) {
    say(`${label} failed: ${errorText(e)}`, "bad");
  } finally {
    state.busy = false;
    document.body.removeAttribute("aria-busy");
    updateButtons();
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

function verifyOpts(extra) {
  const s = settings();
  const pcrs = {};
  for (const [i, v] of Object.entries(s.pcrs ?? {})) pcrs[i] = hexToBytes(v);
  return { rootPem: s.rootPem ?? undefined, pcrs, anyImage: !!s.anyImage, ...extra };
}

async function attestNow() {
  const pk = hexToBytes(state.status.identity_public_key);
  const nonce = freshNonce();
  const a = await get(`/v1/attestation?nonce=${nonce}`);
  const v = verifyAttestation(hexToBytes(a.document), verifyOpts({ nonce: hexToBytes(nonce), publicKey: pk }));
  const s = settings();
  // The settings keep PCRs as hex: pinned or not as the check reads them.
  const image = s.anyImage && !pinsImage(verifyOpts({}).pcrs) ? "any image (development)" : "the expected PCRs";
  return `attestation verified in this browser for a fresh nonce: root ${v.rootSha256.slice(0, 16)}…, ${image}, module ${v.moduleId}`;
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
  updateButtons();
}

async function establishTrust() {
  const stored = load(TRUST_KEY, null);
  const pk = state.status.identity_public_key;
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
      const detail = await attestNow();
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

function ctx() {
  const identity = state.trust?.identity ?? (state.status ? state.status.identity_address : null);
  return {
    wallet: wallet(),
    account: state.account,
    identity,
    onTypedData: (td) => {
      $("typed-data").textContent = JSON.stringify(td, null, 2);
    },
  };
}

function updateButtons() {
  const trusted = !!state.trust?.method;
  const connected = !!state.account;
  const idle = !state.busy;
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
  } catch {
    return { doc: null, verified: false };
  }
}

// ---- refresh ------------------------------------------------------------------------------------

async function refresh() {
  state.status = await get("/v1/status");
  $("identity").textContent = `${state.status.identity_address} (booted ${time(state.status.booted_at)}, ${state.status.sessions_active} active sessions)`;
  $("pin-key").placeholder = state.status.identity_public_key;
  if (!state.trust || !state.trust.method || state.trust.publicKey?.toLowerCase() !== state.status.identity_public_key.toLowerCase()) {
    await establishTrust();
  }
  await refreshAudit();
  if (!state.account) {
    renderSessions($("session-table").tBodies[0], [], 0, () => {});
    return;
  }
  const { rows: stored, more } = await getPaged(`/v1/owners/${state.account}/sessions?limit=100`);
  $("session-more").textContent = more
    ? `The host lists more sessions of this owner than the ${stored.length} shown (the oldest first): the rest are not shown here.`
    : "";
  const rows = [];
  for (const s of stored) {
    let live = null;
    try {
      live = (await get(`/v1/sessions/${s.session}`)).session;
    } catch {
      live = null;
    }
    let bindingOk = false;
    let bindingError = null;
    try {
      if (!state.trust?.method) throw new Error("enclave not verified");
      checkBinding(s.binding.binding, s.binding.binding_signature, state.trust.identity, { owner: state.account, session: s.session });
      bindingOk = true;
    } catch (e) {
      bindingError = sameAddress(s.enclave, state.status.identity_address) ? e.message : "another enclave's";
    }
    rows.push({ stored: s, live, bindingOk, bindingError });
  }
  state.sessions = rows;
  const now = state.status.now;
  renderSessions($("session-table").tBodies[0], rows, now, (sess) => act("Opening the session", () => open(sess)));
  if (state.selected) await showDetail();
  if (state.audit) renderAudit($("audit-table").tBodies[0], state.audit.entries, rows.map((r) => r.stored.session));
}

async function refreshAudit() {
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
  const s = await signedStatus(session, null);
  if (!s.receipt || !Number.isSafeInteger(s.receipt.time)) return {};
  const suspended = s.live?.state === "suspended" && Number.isSafeInteger(s.live.time) ? (s.live.time + 1) * 1000 : 0;
  return { signedMs: s.receipt.time * 1000, floorMs: suspended };
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
      await owner.approve(ctx(), row.stored.session, live.agent, p, heldAt(p));
      await refresh();
      return `approved ${p.digest}: the enclave signed it, and the signature recovers to the session`;
    }),
    onShow: (p) => act("Fetching the held request", async () => {
      state.showHeld = { session: row.stored.session, digest: p.digest };
      const again = await showDetail();
      const shown = again?.receipt && (again.live?.pending ?? []).some((q) => q.digest === p.digest && q.payload);
      if (!shown) throw new Error(`the enclave's signed status does not show held request ${p.digest}: ${again?.error ?? "the host did not ask for it"}`);
      return `the enclave's signed status now shows held request ${p.digest}`;
    }),
    onDeny: (p) => act("Denying the request", async () => {
      const { reply, receipt } = await owner.deny(ctx(), row.stored.session, live.agent, p, heldAt(p));
      await refresh();
      return `denied ${p.digest}: never signed; the agent is refused until ${time(reply.until)} (receipt signed by the enclave at ${time(receipt.time)})`;
    }),
  });
  updateButtons();
  return signed;
}

// ---- wiring -------------------------------------------------------------------------------------

function readFile(input) {
  const f = input.files && input.files[0];
  return f ? f.text().then((t) => ({ name: f.name, text: t })) : Promise.resolve(null);
}

function wire() {
  $("connect").addEventListener("click", () => act("Connecting the wallet", connect));
  $("refresh").addEventListener("click", () => act("Refreshing", async () => (await refresh(), "up to date")));
  $("preview").addEventListener("click", () => act("Normalizing the policy", preview));
  $("verify-audit").addEventListener("click", () => act("Verifying the audit log", async () => {
    await refreshAudit();
    if (state.audit) renderAudit($("audit-table").tBodies[0], state.audit.entries, state.sessions.map((r) => r.stored.session));
    return state.audit ? "the audit log verifies" : null;
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
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), rootPem: f.text, rootName: f.name }));
    showSettings();
    return `root certificate ${f.name} will be used`;
  }));
  $("root-aws").addEventListener("click", () => {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), rootPem: null, rootName: null }));
    showSettings();
  });
  $("pcrs-file").addEventListener("change", () => act("Reading the PCRs", async () => {
    const f = await readFile($("pcrs-file"));
    if (!f) return null;
    const p = parsePcrsJson(f.text);
    const hex = Object.fromEntries(Object.entries(p).map(([i, v]) => [i, bytesToHex(v)]));
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), pcrs: hex }));
    showSettings();
    return `expected PCRs: ${Object.keys(p).map((i) => `PCR${i}`).join(", ")}`;
  }));
  $("any-image").addEventListener("change", () => {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), anyImage: $("any-image").checked }));
    showSettings();
  });
  $("verify-attestation").addEventListener("click", () => act("Verifying the attestation", async () => {
    localStorage.removeItem(TRUST_KEY);
    state.trust = null;
    const detail = await attestNow().catch((e) => {
      setTrust({ method: null, detail: `attestation does not verify: ${errorText(e)}` });
      throw e;
    });
    const pk = state.status.identity_public_key;
    localStorage.setItem(TRUST_KEY, JSON.stringify({ method: "attested", publicKey: pk }));
    setTrust({ method: "attested", identity: addressOfPublicKey(hexToBytes(pk)), publicKey: pk, detail });
    await refresh();
    return detail;
  }));
  $("pin").addEventListener("click", () => act("Pinning the key", async () => {
    const pk = $("pin-key").value.trim();
    const addr = addressOfPublicKey(hexToBytes(pk));
    if (pk.toLowerCase() !== state.status.identity_public_key.toLowerCase()) {
      throw new Error(`the host reports identity ${state.status.identity_address}, not ${addr}: not pinned`);
    }
    localStorage.setItem(TRUST_KEY, JSON.stringify({ method: "pinned", publicKey: pk }));
    await establishTrust();
    await refresh();
    return `pinned ${addr}`;
  }));
  $("forget").addEventListener("click", () => {
    localStorage.removeItem(TRUST_KEY);
    setTrust({ method: null, detail: "forgotten" });
  });
  $("grant-btn").addEventListener("click", () => act("Granting", async () => {
    const p = state.preview;
    const verifyDoc = state.trust.method === "attested"
      ? (doc, userData) => verifyAttestation(doc, verifyOpts({ userData, publicKey: hexToBytes(state.trust.publicKey), maxAgeSecs: 600 }))
      : null;
    const { created, attested } = await owner.grant(ctx(), $("agent-key").value, p, verifyDoc, await nonceBounds(null));
    rememberPolicy(p);
    state.selected = created.binding.session;
    await refresh();
    $("detail").hidden = false;
    const doc = attested
      ? "; its attestation document verifies with user_data = the binding digest"
      : verifyDoc ? "; no attestation document came with it (the identity's signature stands)" : "";
    return `session ${created.binding.session} granted: the binding is signed by the trusted enclave and names you, this agent and policy ${p.hash}${doc}`;
  }));
  $("update-btn").addEventListener("click", () => act("Updating the policy", async () => {
    const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
    const at = await nonceBounds(row.stored.session);
    const { receipt } = await owner.update(ctx(), row.stored.session, row.stored.agent, state.preview, at);
    rememberPolicy(state.preview);
    await refresh();
    return `session now enforces policy ${state.preview.hash} (receipt signed by the enclave at ${time(receipt.time)})`;
  }));
  $("revoke").addEventListener("click", () => act("Revoking", async () => {
    const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
    const at = await nonceBounds(row.stored.session);
    const { receipt } = await owner.revoke(ctx(), row.stored.session, row.stored.agent, at);
    await refresh();
    return `revoked ${row.stored.session} (receipt for your nonce, signed by the enclave at ${time(receipt.time)})` + (state.trust?.method ? "" : " — enclave not verified: the receipt proves nothing");
  }));
  $("revoke-all").addEventListener("click", () => act("Revoking every session", async () => {
    const { reply, receipt } = await owner.revokeAll(ctx(), await nonceBounds(null));
    await refresh();
    return `revoked ${reply.sessions.length} session(s) (receipt signed by the enclave at ${time(receipt.time)})` + (state.trust?.method ? "" : " — enclave not verified: the receipt proves nothing");
  }));
  $("sweep").addEventListener("click", () => act("Sweeping", async () => {
    const row = state.sessions.find((r) => sameAddress(r.stored.session, state.selected));
    const gwei = (id) => BigInt(Math.round(Number($(id).value) * 1e9));
    const max = gwei("sw-fee");
    const prio = gwei("sw-prio") < max ? gwei("sw-prio") : max;
    const terms = [{ chain_id: BigInt($("sw-chain").value), nonce: BigInt($("sw-nonce").value), max_fee_per_gas: max, max_priority_fee_per_gas: prio, gas_limit: BigInt($("sw-gas").value) }];
    const { reply } = await owner.sweep(ctx(), row.stored.session, row.stored.agent, terms, await nonceBounds(row.stored.session));
    const out = $("sweep-out");
    out.hidden = false;
    const what = (t) =>
      t.invalidate_nonce === undefined || t.invalidate_nonce === null
        ? `approve(${t.spender}, 0)`
        : `invalidateNonces(${t.token}, ${t.spender}, ${t.invalidate_nonce})`;
    out.textContent = reply.transactions.map((t) => `chain ${t.chain_id} nonce ${t.nonce}: ${what(t)} on ${t.to}\n${t.raw_transaction}`).join("\n\n")
      + reply.skipped.map((k) => `\nskipped ${k.token} → ${k.spender}: ${k.reason}`).join("") || "nothing to revoke";
    await refresh();
    return `${reply.transactions.length} revocation(s) signed (receipt for your nonce checked; broadcast them with your node, or verify each with bridle owner sweep)`;
  }));
  const w = wallet();
  if (w && w.on) w.on("accountsChanged", (a) => { setAccount(a[0] ?? null); act("Refreshing", async () => (await refresh(), null)); });
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
  // Quiet background refresh (never while an action runs; an error shows in the status line).
  setInterval(async () => {
    if (state.busy || state.refreshing || document.hidden) return;
    state.refreshing = true;
    try {
      await refresh();
    } catch (e) {
      say(`refresh failed: ${errorText(e)}`, "bad");
    } finally {
      state.refreshing = false;
    }
  }, 15000);
}

start();

