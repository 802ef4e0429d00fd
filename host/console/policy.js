// The owner console's policies: the preview of a policy file (normalized by the host, hashed
// here), and the canonical copies of the policies granted from this browser.
import { get, post, Timeout } from "./api.js";
import { keccak, utf8, bytesToHex } from "./bytes.js";
import { badge } from "./views.js";
import { $, state, load, updateButtons, POLICIES_KEY } from "./state.js";

export async function preview() {
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

export function rememberPolicy(p) {
  const all = load(POLICIES_KEY, {});
  all[p.hash] = p.canonical;
  localStorage.setItem(POLICIES_KEY, JSON.stringify(all));
}

/** The session's policy: this browser's canonical copy (hash checked), else the host's copy. */
export async function policyOf(session, hash) {
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
