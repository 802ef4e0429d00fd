// The owner console's state, one object every module reads and changes (one at a time:
// actions.js), with what shows it — the status line, the buttons — and this browser's store.
import { ApiError } from "./api.js";

export const $ = (id) => document.getElementById(id);
export const TRUST_KEY = "bridle.trust";
export const SETTINGS_KEY = "bridle.attestation";
export const POLICIES_KEY = "bridle.policies";

export const state = {
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

export function say(text, cls = "") {
  const s = $("status");
  s.className = `status ${cls}`;
  s.textContent = text;
}

export function errorText(e) {
  if (e instanceof ApiError) return `the host answered ${e.status}: ${e.message}`;
  if (e && e.code === 4001) return "you rejected the request in your wallet: nothing was sent";
  return e && e.message ? e.message : String(e);
}

export function load(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

export function updateButtons() {
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
