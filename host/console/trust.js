// The owner console's trust in the enclave: the attestation settings stored in this browser,
// verifying the attestation, the pinned key, and the Identity and Trust lines.
import { get, freshNonce } from "./api.js";
import { hexToBytes, addressOfPublicKey, sameAddress } from "./bytes.js";
import { verifyAttestation, pinsImage } from "./attest.js";
import { badge, time } from "./views.js";
import { $, state, load, errorText, updateButtons, TRUST_KEY, SETTINGS_KEY } from "./state.js";
import { trustMark } from "./actions.js";
import { refresh } from "./refresh.js";

export function settings() {
  return load(SETTINGS_KEY, { rootPem: null, rootName: null, pcrs: null, anyImage: false });
}

export function showSettings() {
  const s = settings();
  $("any-image").checked = !!s.anyImage;
  const pcrs = s.pcrs ? Object.keys(s.pcrs).map((i) => `PCR${i}`).join(", ") : "none";
  $("trust-config").textContent = `Root: ${s.rootName ?? "AWS Nitro Enclaves Root-G1 (embedded, pinned)"}; expected PCRs: ${pcrs}${s.anyImage ? "; any image accepted" : ""}.`;
}

/** The attestation checks of settings `s` (read once by the caller), with `extra`. */
export function verifyOpts(extra, s = settings()) {
  const pcrs = {};
  for (const [i, v] of Object.entries(s.pcrs ?? {})) pcrs[i] = hexToBytes(v);
  return { rootPem: s.rootPem ?? undefined, pcrs, anyImage: !!s.anyImage, ...extra };
}

/**
 * Verify an attestation document for a fresh nonce against `publicKey` (SEC1 hex), the one
 * key the caller read and will trust: never a key read again after the await (a review of
 * 2026-12-07: a status replaced meanwhile had another key stored as attested).
 */
export async function attestNow(publicKey) {
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
export function keyAddress(status) {
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
export function showIdentity() {
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

export function setTrust(t) {
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
export async function establishTrust() {
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
export async function changeSettings(change, said) {
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
