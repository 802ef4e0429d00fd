// The owner console: wiring. The state is in state.js, the action queue in actions.js, and
// the rest by what they hold (trust.js, wallet.js, policy.js, refresh.js, audit.js,
// session.js); the pure parts are in bytes.js, eip712.js, verify.js, attest.js, x509.js,
// decode.js (tested under node against the Rust code) and the DOM parts in views.js and chart.js.
import { get } from "./api.js";
import { bytesToHex, hexToBytes, addressOfPublicKey } from "./bytes.js";
import { verifyAttestation, parsePcrsJson } from "./attest.js";
import { sessionsOfOwner } from "./verify.js";
import * as owner from "./owner.js";
import { time } from "./views.js";
import { $, state, say, errorText, updateButtons, TRUST_KEY } from "./state.js";
import { act, exclusive, holders } from "./actions.js";
import { settings, showSettings, verifyOpts, attestNow, keyAddress, setTrust, establishTrust, changeSettings } from "./trust.js";
import { wallet, connect, setAccount, ctx } from "./wallet.js";
import { preview, rememberPolicy } from "./policy.js";
import { refresh, refreshAfter, done } from "./refresh.js";
import { showAudit, refreshAudit } from "./audit.js";
import { nonceBounds, sessionAction } from "./session.js";

function readFile(input) {
  const f = input.files && input.files[0];
  return f ? f.text().then((t) => ({ name: f.name, text: t })) : Promise.resolve(null);
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
