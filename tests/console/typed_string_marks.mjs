// Typed-data strings beside Approve, as the CLI prints them (a review of 2026-12-07): the
// console showed a `string` value (and a domain's name or version, a quoted field name) as
// JSON.stringify then `printable`, which left combining marks raw — a string of stacked
// marks paints over the lines above and below it (the recipient, the amount). The CLI
// (cli/src/decode.rs) prints it with Rust's `{:?}`, which writes grapheme extenders and what
// Rust does not count printable as `\u{…}`, then `printable`.
//
// Run by tests/tests/console_action_trust.rs. Reads a JSON list of strings on stdin and
// prints {lines, raw_mark_lines, quoted}: the description of a hostile typed-data request,
// the lines that hold a combining mark raw, and each input string as the page shows it as a
// typed-data string value beside Approve (to compare with the CLI's
// `printable(&format!("{s:?}"))`).
import { describe } from "../../host/console/decode.js";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const strings = input.trim() ? JSON.parse(input) : [];

const marks = "\u0336\u0335\u0489".repeat(40) + "\u0301".repeat(200);
const td = {
  types: {
    EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" }],
    Transfer: [
      { name: "to", type: "address" },
      { name: "amount", type: "uint256" },
      { name: "memo", type: "string" },
      { name: "n\u0301ote", type: "string" },
    ],
  },
  primaryType: "Transfer",
  domain: { name: "Token" + "\u0489".repeat(50), version: "1\u20dd" },
  message: { to: "0x1111111111111111111111111111111111111111", amount: "1000000", memo: "x" + marks, "n\u0301ote": "ok" },
};
// And a document the page cannot recompute: its head and error shown from the raw JSON.
const broken = { ...td, message: { ...td.message, amount: "x\u0301\u0301" } };
const lines = [...describe({ typed_data: JSON.stringify(td) }), ...describe({ typed_data: JSON.stringify(broken) })];
const raw = lines.filter((l) => /[\p{M}\p{Grapheme_Extend}]/u.test(l));
const short = (l) => (l.length > 160 ? l.slice(0, 120) + `…(${l.length} chars)` : l);
// A string as a one-field message shows it: the rest of the line `  s: `.
const shown = (s) => {
  const one = {
    types: { EIP712Domain: [], Note: [{ name: "s", type: "string" }] },
    primaryType: "Note",
    domain: {},
    message: { s },
  };
  const line = describe({ typed_data: JSON.stringify(one) }).find((l) => l.startsWith("  s: "));
  return line === undefined ? null : line.slice("  s: ".length);
};
process.stdout.write(JSON.stringify({ lines: lines.map(short), raw_mark_lines: raw.map(short), quoted: strings.map(shown) }));
