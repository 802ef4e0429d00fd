// The host's public API, from the page's origin only (the CSP allows nothing else).
// Every answer is the untrusted host's word until a check in verify.js says otherwise.

export class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? e.message || `${e.code}: ${e.reason}` : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : null;
  }
}

/** The most of one reply the page reads (as the CLI: 64 MiB): what a host makes the tab hold is bounded. */
export const MAX_REPLY_BYTES = 64 << 20;

/** The most of the audit log the page reads, over all its pages (512 MiB). */
export const MAX_LOG_BYTES = 512 << 20;

/** A reply larger than the page reads: it was not read whole, and nothing of it is used. */
export class TooLarge extends Error {
  constructor(max) {
    super(`the host's reply is over ${max} bytes: not read (a host's reply is read up to that bound)`);
    this.max = max;
  }
}

/**
 * `response`'s body as text, read up to `max` bytes: a larger one (by its Content-Length,
 * or as it streams) is cancelled and refused with {@link TooLarge}. Answers {text, bytes}.
 */
export async function readBounded(response, max = MAX_REPLY_BYTES) {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => {});
    throw new TooLarge(max);
  }
  if (!response.body) return { text: "", bytes: 0 };
  const reader = response.body.getReader();
  const chunks = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > max) {
      await reader.cancel().catch(() => {});
      throw new TooLarge(max);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return { text: new TextDecoder().decode(all), bytes };
}

/**
 * The longest the page waits for one reply, read whole (30 s). A request the host never
 * answered left the page busy for good: every action and refresh waits for the one before
 * it, and Revoke all with them (a review of 2026-12-07).
 */
export const REQUEST_TIMEOUT_MS = 30000;

/** A request the host did not answer (whole) in time: given up. */
export class Timeout extends Error {
  constructor(method, path, ms) {
    const sent = method === "GET" ? "" : " (what was sent may have reached the enclave all the same)";
    super(`the host did not answer ${method} ${path.split("?")[0]} within ${ms / 1000} s: the page gave up waiting${sent}`);
    this.timeout = true;
  }
}

/** `fetch` then read the reply with {@link parsed}, all within {@link REQUEST_TIMEOUT_MS}: {body, bytes, response}. */
async function timed(method, path, init, max) {
  const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(path, { ...init, method, signal });
    return { ...(await parsed(response, max)), response };
  } catch (e) {
    if (signal.aborted) throw new Timeout(method, path, REQUEST_TIMEOUT_MS);
    throw e;
  }
}

/** A call's parsed reply and its size in bytes: {body, bytes}. */
async function sized(method, path, bodyText, max = MAX_REPLY_BYTES) {
  const init = { headers: { Accept: "application/json" }, cache: "no-store" };
  if (bodyText !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = bodyText;
  }
  const { body, bytes } = await timed(method, path, init, max);
  return { body, bytes };
}

/** `r`'s body as JSON, read up to `max` bytes; an error status is thrown as {@link ApiError}: {body, bytes}. */
async function parsed(r, max = MAX_REPLY_BYTES) {
  const { text, bytes } = await readBounded(r, max);
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(r.status, { error: { message: `HTTP ${r.status}: not JSON` } });
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return { body, bytes };
}

async function call(method, path, bodyText) {
  return (await sized(method, path, bodyText)).body;
}

export const get = (path) => call("GET", path);
/** POST a body already serialized (owner bodies embed the canonical policy text verbatim). */
export const postText = (path, text) => call("POST", path, text);
export const post = (path, value) => call("POST", path, JSON.stringify(value));

/** The URL a `Link: <…>; rel="next"` header names, resolved against the page it came with. */
function nextLink(response) {
  const link = response.headers.get("link");
  const m = link && /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (!m) return null;
  const next = new URL(m[1], response.url);
  // Only the page's own origin (the CSP allows nothing else; a host's header cannot lead away).
  return next.origin === location.origin ? next.pathname + next.search : null;
}

/**
 * Every row of a paged list (`GET /v1/owners/{o}/sessions`), following the host's `Link`
 * headers, up to `maxRows`: {rows, more}, `more` when the host had more than that.
 */
export async function getPaged(path, maxRows = 10000) {
  const rows = [];
  let at = path;
  while (at && rows.length < maxRows) {
    const { body, response: r } = await timed("GET", at, { headers: { Accept: "application/json" }, cache: "no-store" }, MAX_REPLY_BYTES);
    if (!Array.isArray(body)) throw new Error("the host's list is not a JSON array");
    for (const x of body) rows.push(x);
    at = body.length > 0 ? nextLink(r) : null;
  }
  return { rows: rows.slice(0, maxRows), more: at !== null || rows.length > maxRows };
}

/** A fresh random 32-byte nonce, 0x-hex. */
export function freshNonce() {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Entries per `GET /v1/audit` page: the host's most (`audit_store::MAX_LIMIT`). */
export const AUDIT_PAGE = 1000;
/** The most pages read: a log longer than that is refused whole, never shown in part. */
export const MAX_AUDIT_PAGES = 4000;

/** The whole stored audit log of the current enclave, page by page. */
export async function auditLog() {
  let since = 0;
  let entries = [];
  let first = null;
  let left = MAX_LOG_BYTES;
  for (let page = 0; ; page++) {
    if (page === MAX_AUDIT_PAGES) {
      throw new Error(`the host's audit log is over ${MAX_AUDIT_PAGES * AUDIT_PAGE} entries: not read (use bridle audit export)`);
    }
    // Over the bound, the page refuses the whole log (TooLarge) rather than show a part.
    const { body: r, bytes } = await sized("GET", `/v1/audit?since=${since}&limit=${AUDIT_PAGE}`, undefined, Math.min(left, MAX_REPLY_BYTES)).catch(
      (e) => {
        if (e instanceof TooLarge && left < MAX_REPLY_BYTES) {
          throw new Error(`the host's audit log is over ${MAX_LOG_BYTES} bytes: not read (use bridle audit export)`);
        }
        throw e;
      },
    );
    left -= bytes;
    first = first ?? r;
    if (r.enclave && first.enclave && r.enclave.toLowerCase() !== first.enclave.toLowerCase()) break;
    if (!Array.isArray(r.entries)) throw new Error("the host's audit page holds no list of entries");
    for (const e of r.entries) entries.push(e);
    first.head = r.head;
    if (!r.more || r.entries.length === 0) break;
    since = Number(r.entries[r.entries.length - 1].seq) + 1;
  }
  // `pruned_through`: the host's word that its audit retention deleted the entries up to it.
  return { enclave: first?.enclave ?? null, identityPublicKey: first?.identity_public_key ?? null, entries, head: first?.head ?? null, gaps: first?.gaps ?? [], prunedThrough: first?.pruned_through ?? null, sync: first?.sync };
}
