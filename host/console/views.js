// Rendering. Everything from the host goes into the page as text (textContent), never as
// markup: a hostile host can send strings, not elements.
import { formatUnits, bytesToHex, sameAddress, printable } from "./bytes.js";
import { describe, payloadDigest } from "./decode.js";
import { spendChart, recordSample } from "./chart.js";

export function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

export function time(t) {
  if (!t) return "—";
  return new Date(Number(t) * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC");
}

export function short(a) {
  return a ? `${a.slice(0, 8)}…${a.slice(-6)}` : "—";
}

export function badge(text, cls) {
  return h("span", { class: `badge ${cls}` }, text);
}

function inSecs(t, now) {
  const d = Number(t) - now;
  if (d <= 0) return "passed";
  if (d < 120) return `in ${d} s`;
  if (d < 7200) return `in ${Math.round(d / 60)} min`;
  return `in ${(d / 3600).toFixed(1)} h`;
}

const STATE_CLASS = { active: "ok", revoked: "bad", suspended: "bad", expired: "warn", not_yet_valid: "warn", lost: "bad" };

/**
 * The Agent cell: the agent the enclave signed (the session's binding checked in this page,
 * or its creation in the verified audit log), never the host's row beside a checked badge
 * (a review of 2026-12-07); the host's row named apart when it differs; the host's word,
 * so labelled, when nothing could be checked.
 */
function agentCell(r) {
  const checked = r.bindingOk && r.binding ? r.binding.agent : r.logged?.agent ?? null;
  if (!checked && !r.listed) {
    // Named by a later entry of a pruned log: its creation (with the agent) is not here.
    return h("td", { class: "small" }, "— (its creation is not in the host's copy of the log)");
  }
  if (!checked) {
    return h("td", { class: "mono", title: r.stored.agent }, short(r.stored.agent), " ", badge("the host's word", "warn"));
  }
  const differs = r.listed && r.stored.agent && !sameAddress(r.stored.agent, checked);
  return h("td", { class: "mono", title: checked }, short(checked),
    differs ? [" ", h("span", { class: "badge bad", title: r.stored.agent }, `the host's list says ${short(r.stored.agent)}`)] : null);
}

/** The Binding cell: checked here (with what the binding signs), or why not. */
function bindingCell(r) {
  if (!r.listed) {
    return h("td", {}, badge(r.more ? "not in the host's first page" : "not listed by the host", "bad"),
      h("span", { class: "small" }, ` created for you in the verified audit log${r.logged?.validUntil ? `, valid until ${time(r.logged.validUntil)} at its grant` : ""}`));
  }
  if (r.bindingOk) {
    return h("td", {}, badge("signed by the enclave", "ok"),
      h("span", { class: "small" }, ` granted valid until ${time(r.binding.valid_until)}`));
  }
  return h("td", {}, badge(r.bindingError ?? "not checked", "bad"));
}

/** One row per session: [{stored, live, bindingOk, bindingError, binding, logged, listed}]. */
export function renderSessions(tbody, rows, now, onOpen) {
  tbody.replaceChildren();
  if (!rows.length) {
    tbody.append(h("tr", {}, h("td", { colspan: 6, class: "small" }, "No session of this owner is stored on this host.")));
    return;
  }
  for (const r of rows) {
    const state = r.live ? r.live.state : r.stored.state;
    const until = r.live ? r.live.valid_until : r.stored.valid_until;
    tbody.append(
      h(
        "tr",
        { "data-session": r.stored.session, "data-listed": r.listed ? "host" : "log-only" },
        h("td", { class: "mono", title: r.stored.session }, short(r.stored.session)),
        agentCell(r),
        h("td", {}, badge(state, STATE_CLASS[state] ?? "")),
        h("td", {}, until ? `${time(until)} (${inSecs(until, now)})` : "—"),
        bindingCell(r),
        h("td", {}, h("button", { type: "button", class: "open", onclick: () => onOpen(r.stored.session) }, "Open")),
      ),
    );
  }
}

function capRow(session, c, now, ticks, signed) {
  const spent = BigInt(c.spent);
  const cap = BigInt(c.cap);
  const fmt = (v) => `${formatUnits(v, c.decimals)} ${c.symbol}`;
  const pct = cap > 0n ? Number((spent * 1000n) / cap) / 10 : 100;
  const samples = recordSample(session, c.rule, now, spent, signed);
  return h(
    "div",
    { class: "cap-row" },
    h("p", {}, h("strong", {}, `${c.what} `), h("span", { class: "small" }, `(${c.rule})`)),
    h(
      "p",
      {},
      h("span", { class: "bar", role: "img", "aria-label": `${pct}% of the cap` }, h("span", { class: spent > cap ? "over" : "", style: null })),
      ` spent ${fmt(spent)} of ${fmt(cap)} — ${c.resets_at ? `resets ${time(c.resets_at)} (${inSecs(c.resets_at, now)})` : "for the whole session"}`,
    ),
    spendChart({ samples, cap, ticks, resetsAt: c.resets_at, now, fmt, title: `${c.what}: spend over time` }),
  );
}

/** Width of the bars: set after insertion (no inline style attribute in the markup). */
function sizeBars(root) {
  for (const b of root.querySelectorAll(".bar")) {
    const m = /([\d.]+)%/.exec(b.getAttribute("aria-label"));
    b.firstChild.style.width = `${Math.min(100, Number(m ? m[1] : 0))}%`;
  }
}

/**
 * The selected session. d = {live, stored, policy (doc or null), policyVerified, audit
 * (verified entries of this session or null), now, onApprove(pending), onDeny(pending),
 * onShow(pending) (ask for a held request the status omitted)}.
 */
/** Exposure across sessions (RULES.md §6a), only from the enclave's signed status. */
function aggregateBox(s, groups, usd) {
  const box = h("div", { id: "aggregate" }, h("h4", {}, "Exposure across sessions"));
  if (groups === null || groups === undefined) {
    box.append(h("p", { class: "small" }, "Not shown: the status was not signed by the enclave."));
    return box;
  }
  for (const scope of ["owner", "agent"]) {
    const g = groups.find((x) => x.scope === scope);
    const who = scope === "owner" ? `Every session of owner ${short(s.owner)}` : `Every session of agent ${short(s.agent)} (any owner)`;
    if (!g) {
      box.append(h("p", { class: "small" }, `${who}: no session holds approvals or declares a ceiling.`));
      continue;
    }
    const ceilings = g.ceilings.length
      ? g.ceilings.map((c) => `${scope}_exposure_ceiling ${usd(c.ceiling)}: ${usd(c.usd)} outstanding at worst` +
          (c.unpriced.length ? ` (unpriced: ${c.unpriced.join(", ")}` +
            (c.unpriced_omitted ? ` and ${c.unpriced_omitted} more` : "") + ")" : ""))
      : [`no ${scope}_exposure_ceiling binds this session`];
    if (g.ceilings_omitted) ceilings.push(`${g.ceilings_omitted} higher ${scope}_exposure_ceiling(s) not listed`);
    box.append(h("p", { class: "aggregate-" + scope }, `${who}: ${g.sessions} session(s) counted; `, ceilings.join("; ")));
  }
  return box;
}

export function renderDetail(root, d) {
  root.replaceChildren();
  const s = d.live;
  if (!s) {
    // Only the enclave's signed status can say it holds no such session: the host's word
    // alone could make an owner give up revoking a live key (a review of 2026-12-05).
    root.append(h("p", { class: "small", id: "status-word" }, d.signed
      ? [badge("signed by the enclave", "ok"), ` for a fresh nonce at ${time(d.signed.time)}:`]
      : [badge("the host's word", "bad"), ` not signed by the enclave (${d.signedError ?? "not checked"}): what follows is unverified; revoke anyway, or check with bridle owner status.`]));
    const says = d.signed ? "The enclave" : "The host says the enclave";
    root.append(h("p", { class: "bad" }, d.stored.state === "lost"
      ? `${says} holds no such session: it is lost (its enclave restarted, and a session key never leaves its enclave).`
      : `${says} holds no such session now (unknown, lost, or dropped after it ended).`));
    return;
  }
  root.append(h("p", { class: "small", id: "status-word" }, d.signed
    ? [badge("signed by the enclave", "ok"), ` for a fresh nonce at ${time(d.signed.time)}: the receipt checks against the trusted identity and this page shows what it signed.`]
    : [badge("the host's word", "bad"), ` not signed by the enclave (${d.signedError ?? "not checked"}): state, spend and held requests below are unverified.`]));
  const facts = h("dl", { class: "facts" },
    h("dt", {}, "State"), h("dd", {}, badge(s.state, STATE_CLASS[s.state] ?? "")),
    h("dt", {}, "Owner"), h("dd", { class: "mono" }, s.owner),
    h("dt", {}, "Agent"), h("dd", { class: "mono" }, s.agent),
    h("dt", {}, "Policy hash"), h("dd", { class: "mono" }, s.policy_hash),
    h("dt", {}, "Created"), h("dd", {}, time(s.created_at)),
    h("dt", {}, "Valid until"), h("dd", {}, `${time(s.valid_until)} (${inSecs(s.valid_until, d.now)})`),
    h("dt", {}, "Signatures (quota)"), h("dd", {}, `${s.uses} used` + (s.uses_left !== null && s.uses_left !== undefined ? `, ${s.uses_left} left` : ", no quota")),
  );
  if (s.suspended_reason) facts.append(h("dt", {}, "Suspended because"), h("dd", { class: "bad" }, s.suspended_reason));
  root.append(facts);

  // A tick for every request the enclave signed for the agent: at once, or once the owner approved it.
  const ticks = (d.audit ?? []).filter((e) => e.kind === "allowed" || e.kind === "approved").map((e) => Number(e.time));
  root.append(h("h3", {}, "Spend against each cap"));
  if (!s.caps.length) root.append(h("p", { class: "small" }, "The policy sets no cap."));
  for (const c of s.caps) root.append(capRow(s.session, c, d.now, ticks, Boolean(d.signed)));

  root.append(h("h3", {}, "Rate limits"));
  // The use the enclave decides by (by weight: a user operation counts each call; approved
  // signatures too), from the status — the enclave's word only when it signed it.
  // The field is left out when the policy sets none, and by enclaves older than it: the
  // policy this page checked tells the two apart.
  const limits = Array.isArray(s.rate_limits) ? s.rate_limits : [];
  const declared = d.policyVerified && Array.isArray(d.policy?.rate_limits) ? d.policy.rate_limits : null;
  if (!limits.length && declared?.length) {
    for (const [i, r] of declared.entries()) {
      root.append(h("p", {}, `rate_limits[${i}]: at most ${r.max} signatures per ${r.window} s — use not reported (the enclave's status carries no rate_limits: an enclave older than this page, or the host left them out)`));
    }
  } else if (!limits.length) {
    root.append(h("p", { class: "small" }, declared ? "The policy sets no rate limit." : "No rate-limit use reported: the policy sets none, or the enclave is older than this page (this browser holds no copy of the policy whose hash it checked)."));
  }
  for (const r of limits) {
    const word = d.signed ? "the enclave's count, signed" : "the host's word: not signed by the enclave";
    root.append(h("p", {}, `${r.rule}: at most ${r.max} signatures per ${r.window} s — `,
      r.used === null || r.used === undefined
        ? `full: the last ${r.window} s holds signatures the session's history no longer counts (${word})`
        : `${r.used} in the last ${r.window} s (${word})`));
  }

  root.append(h("h3", {}, "Allowances and exposure"));
  const x = s.exposure ?? {};
  const usd = (v) => `${formatUnits(BigInt(v), 18)} USD`;
  root.append(h("p", {}, `Outstanding exposure ${usd(x.usd ?? 0)}`, x.ceiling ? ` of a ceiling of ${usd(x.ceiling)}` : " (no ceiling set)",
    x.unpriced && x.unpriced.length ? `; unpriced: ${x.unpriced.join(", ")}` : ""));
  root.append(aggregateBox(s, d.aggregate, usd));
  if (s.allowances.length) {
    const t = h("table", {}, h("thead", {}, h("tr", {}, ...["Token", "Spender", "Chain", "Kind", "Amount", "State", "Expires"].map((c) => h("th", { scope: "col" }, c)))));
    const tb = h("tbody");
    for (const a of s.allowances) {
      const kind = typeof a.kind === "string" ? a.kind : Object.keys(a.kind)[0];
      tb.append(h("tr", {}, h("td", { class: "mono" }, short(a.token)), h("td", { class: "mono" }, short(a.spender)), h("td", {}, a.chain_id),
        h("td", {}, kind), h("td", {}, `${formatUnits(BigInt(a.amount), a.decimals)} ${a.symbol}`), h("td", {}, (a.state === "swept" || a.state === "revoked") && BigInt(a.amount) > 0n ? `${a.state} (revocation signed, not known mined)` : String(a.state ?? "")), h("td", {}, a.expires_at ? time(a.expires_at) : "—")));
    }
    t.append(tb);
    root.append(t);
  } else root.append(h("p", { class: "small" }, "No approval or permit signed by this session."));

  root.append(h("h3", {}, "Requests held for your approval"));
  if (!s.pending.length) root.append(h("p", { class: "small" }, "None."));
  for (const p of s.pending) root.append(pendingBox(p, d));
  sizeBars(root);
}

/** What a held request's deadline means in each state. */
const UNTIL = { waiting: "approvable", signed: "collectable", denied: "denied by you, refused", expired: "was held" };

function pendingBox(p, d) {
  // Amounts are named in the policy's units only from a copy whose hash this page checked:
  // the host's copy could give a token any decimals (a review of 2026-12-03).
  const tokens = d.policyVerified ? d.policy?.tokens ?? [] : [];
  const lines = p.payload
    ? describe(p.payload, tokens)
    : [p.payload_omitted ? "(too large to show beside the other held requests: Show it asks the enclave for it alone)" : "(the record carries no request)"];
  if (p.payload && !d.policyVerified) lines.push("(amounts in base units: this browser holds no copy of the session's policy whose hash it checked)");
  const computed = p.payload ? payloadDigest(p.payload) : null;
  const match = computed ? bytesToHex(computed) === p.digest.toLowerCase() : null;
  const box = h("div", { class: "pending", "data-digest": p.digest },
    h("p", {}, badge(p.state, p.state === "waiting" ? "warn" : p.state === "signed" ? "ok" : "bad"),
      ` ${p.kind}, held since ${time(p.created_at)}; ${UNTIL[p.state] ?? "held"} until ${time(p.expires_at)} (${inSecs(p.expires_at, d.now)})`),
    h("p", {}, printable(`Crossed ${p.rule || "the escalation threshold"}: ${p.reason}`)),
    h("p", { class: "mono" }, `digest ${p.digest} `,
      match === null ? badge("not recomputed in the browser", "warn") : match ? badge("recomputed from the request", "ok") : badge("DOES NOT MATCH the request", "bad")),
    h("pre", { class: "mono" }, lines.join("\n")),
  );
  if (!p.payload && p.payload_omitted && d.onShow) {
    box.append(h("div", { class: "row" }, h("button", { type: "button", class: "show-held", onclick: () => d.onShow(p) }, "Show this request")));
  }
  if (p.state === "waiting") {
    // Approving signs the digest: only when the page recomputed it from the request it shows,
    // and the request is the enclave's record (a status it signed), not the host's word.
    // Denying is always safe.
    const approvable = match === true && !!d.signed;
    box.append(h("div", { class: "row" },
      approvable
        ? h("button", { type: "button", class: "approve", onclick: () => d.onApprove(p) }, "Approve (sign in wallet)")
        : h("span", { class: "small bad" }, match === true
          ? "Approve with bridle owner approve: this request is the host's word (the status is not signed by the enclave)."
          : "Approve with bridle owner approve: this page could not check that the digest is this request."),
      h("button", { type: "button", class: "deny", onclick: () => d.onDeny(p) }, "Deny (sign in wallet)"),
      h("span", { class: "small" }, "A denied request is never signed; the agent asking again is refused until the deadline.")));
  }
  return box;
}

/**
 * Audit rows of the owner's sessions, newest first (at most `limit`): `sessions`, the host's
 * list and the sessions the verified log names the owner of; `unlisted`, those the host's
 * list leaves out, flagged on each of their rows.
 */
export function renderAudit(tbody, entries, sessions, unlisted = new Set(), limit = 100) {
  tbody.replaceChildren();
  const mine = new Set(sessions.map((s) => s.toLowerCase()));
  const rows = entries.filter((e) => mine.has(e.session.toLowerCase())).slice(-limit).reverse();
  if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: 5, class: "small" }, "No entry for your sessions.")));
  for (const e of rows) {
    const hidden = unlisted.has(e.session.toLowerCase());
    tbody.append(h("tr", {}, h("td", {}, e.seq), h("td", {}, time(e.time)),
      h("td", { class: "mono", title: e.session }, short(e.session), hidden ? [" ", badge("not listed by the host", "bad")] : null),
      h("td", {}, badge(e.kind, e.kind === "denied" ? "bad" : e.kind === "allowed" ? "ok" : e.kind === "rejected" ? "warn" : "")),
      h("td", {}, printable([e.code, e.rule, e.detail].filter(Boolean).join(" — ")))));
  }
}
