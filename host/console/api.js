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

async function call(method, path, bodyText) {
  const init = { method, headers: { Accept: "application/json" }, cache: "no-store" };
  if (bodyText !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = bodyText;
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(r.status, { error: { message: `HTTP ${r.status}: not JSON` } });
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

export const get = (path) => call("GET", path);
/** POST a body already serialized (owner bodies embed the canonical policy text verbatim). */
export const postText = (path, text) => call("POST", path, text);
export const post = (path, value) => call("POST", path, JSON.stringify(value));

/** A fresh random 32-byte nonce, 0x-hex. */
export function freshNonce() {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The whole stored audit log of the current enclave, page by page. */
export async function auditLog() {
  let since = 0;
  let entries = [];
  let first = null;
  for (let page = 0; page < 1000; page++) {
    const r = await get(`/v1/audit?since=${since}&limit=10000`);
    first = first ?? r;
    if (r.enclave && first.enclave && r.enclave.toLowerCase() !== first.enclave.toLowerCase()) break;
    entries = entries.concat(r.entries);
    first.head = r.head;
    if (!r.more || r.entries.length === 0) break;
    since = Number(r.entries[r.entries.length - 1].seq) + 1;
  }
  return { enclave: first?.enclave ?? null, identityPublicKey: first?.identity_public_key ?? null, entries, head: first?.head ?? null, gaps: first?.gaps ?? [], sync: first?.sync };
}
