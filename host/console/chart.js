// Spend over time, drawn as SVG by hand: the `spent` figure of one cap as this browser saw
// it at each refresh (kept in localStorage per session and rule), the cap, the next reset,
// and a tick for every signature of the session in the verified audit log.
// The SVG namespace (a name, not an address anything is fetched from).
const SVG = ["http", "//www.w3.org/2000/svg"].join(":");
const MAX_SAMPLES = 500;

function key(session, rule) {
  return `bridle.spend.${session.toLowerCase()}.${rule}`;
}

/** Record a sample {t (unix s), spent (bigint)}; returns the series. */
export function recordSample(session, rule, t, spent, signed = true) {
  let s = [];
  try {
    s = JSON.parse(localStorage.getItem(key(session, rule)) ?? "[]");
  } catch {
    s = [];
  }
  // Only what the enclave signed is kept: a figure from an unsigned status (the host's word)
  // would otherwise be drawn later under a signed status's banner (a review of 2026-12-05).
  if (!signed) return s.map(([time, v]) => ({ t: time, spent: BigInt(v) }));
  const last = s[s.length - 1];
  if (!last || last[1] !== spent.toString() || t - last[0] > 60) s.push([t, spent.toString()]);
  else last[0] = t;
  s = s.slice(-MAX_SAMPLES);
  localStorage.setItem(key(session, rule), JSON.stringify(s));
  return s.map(([time, v]) => ({ t: time, spent: BigInt(v) }));
}

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * An SVG chart. samples: [{t, spent}], cap: bigint, ticks: [unix s] (signatures),
 * resetsAt: unix s | null, fmt: bigint → label.
 */
export function spendChart({ samples, cap, ticks = [], resetsAt = null, now, fmt, title }) {
  const W = 640;
  const H = 180;
  const L = 70;
  const R = 10;
  const T = 16;
  const B = 28;
  // A loop, not Math.min(...): a session's ticks can outnumber a call's arguments (a
  // review of 2026-12-04: 130 000 signatures threw and hid the held requests).
  let t0 = now - 60;
  for (const s of samples) if (s.t < t0) t0 = s.t;
  for (const t of ticks) if (t < t0) t0 = t;
  const t1 = Math.max(now, resetsAt && resetsAt < now + 86400 ? resetsAt : now);
  const top = [cap, ...samples.map((s) => s.spent)].reduce((a, b) => (b > a ? b : a), 1n);
  const ymax = Number(top) * 1.1 || 1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - Number(v) / ymax) * (H - T - B);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title });
  svg.appendChild(el("title", {}, title));
  svg.appendChild(el("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.appendChild(el("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  svg.appendChild(el("line", { class: "cap", x1: L, y1: y(cap), x2: W - R, y2: y(cap) }));
  svg.appendChild(el("text", { x: 2, y: y(cap) + 3 }, `cap ${fmt(cap)}`));
  svg.appendChild(el("text", { x: 2, y: H - B }, "0"));
  // One tick per pixel column at most: a tick mark per signature would be millions of nodes.
  const columns = new Set();
  for (const t of ticks) columns.add(Math.round(x(t)));
  for (const c of columns) svg.appendChild(el("line", { class: "tick", x1: c, y1: H - B, x2: c, y2: H - B + 6 }));
  if (resetsAt && resetsAt <= t1) {
    svg.appendChild(el("line", { class: "axis", x1: x(resetsAt), y1: T, x2: x(resetsAt), y2: H - B, "stroke-dasharray": "2 2" }));
    svg.appendChild(el("text", { x: Math.min(x(resetsAt) - 30, W - 60), y: T - 4 }, "reset"));
  }
  if (samples.length) {
    let d = `M ${x(samples[0].t)} ${y(samples[0].spent)}`;
    for (let i = 1; i < samples.length; i++) d += ` H ${x(samples[i].t)} V ${y(samples[i].spent)}`;
    d += ` H ${x(now)}`;
    svg.appendChild(el("path", { class: "line", d }));
  }
  const when = (t) => new Date(t * 1000).toISOString().slice(11, 16);
  svg.appendChild(el("text", { x: L, y: H - 8 }, when(t0)));
  svg.appendChild(el("text", { x: W - R - 30, y: H - 8 }, when(t1)));
  return svg;
}
