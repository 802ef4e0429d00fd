// What the owner console shows beside Approve for held messages and typed data (a review of
// 2026-12-07): runs the console's own decode.js/typed.js under node and prints one JSON
// object of what they describe; tests/tests/console_lying_host.rs asserts on it.
import { describe, payloadDigest } from "../../host/console/decode.js";
import { bytesToHex, utf8, hidesText } from "../../host/console/bytes.js";
import { sessionsOfOwner } from "../../host/console/verify.js";

const hex = (b) => bytesToHex(b);
const out = {};

// 1. EIP-191 messages: two different non-UTF-8 messages (e.g. a 32-byte hash, as a Safe's
//    eth_sign-style approval signs) are described identically; both digests are recomputed,
//    so Approve would be offered on each.
{
  const a = { message: "0x" + "ff".repeat(16) + "11".repeat(16) };
  const b = { message: "0x" + "fe".repeat(16) + "11".repeat(16) };
  out.message_nonutf8 = {
    a_lines: describe(a),
    b_lines: describe(b),
    a_digest: hex(payloadDigest(a)),
    b_digest: hex(payloadDigest(b)),
  };
  // A message with a right-to-left override and a line separator: shown raw.
  const text = "Log in to \u202Emoc.elpmaxe\u202C\u2028calls transfer(to 0x000000000000000000000000000000000000dEaD, amount 1 USDC)";
  const m = { message: hex(utf8(text)) };
  out.message_controls = { lines: describe(m), digest: hex(payloadDigest(m)) };
}

// 2. Typed data: "A field name is any text: quoted unless plain, so it cannot forge a line"
//    (typed.js) — JSON.stringify leaves U+2028/U+2029 and bidi controls as they are.
{
  const td = {
    types: {
      EIP712Domain: [{ name: "name", type: "string" }],
      Note: [
        { name: "text", type: "string" },
        { name: "x\u2028  spender", type: "address" },
      ],
    },
    primaryType: "Note",
    domain: { name: "Ex\u2029domain: name \"USD Coin\"" },
    message: {
      text: "hello\u2028  value: 1",
      "x\u2028  spender": "0x1111111111111111111111111111111111111111",
    },
  };
  const p = { typed_data: JSON.stringify(td) };
  const lines = describe(p);
  const visual = lines.join("\n").split(/\n|\u2028|\u2029/);
  out.typed_line_forgery = { lines, digest: hex(payloadDigest(p)), lines_count: lines.length, visual_count: visual.length };
}

// 3. Typed data's bytes fields are cut at 64 bytes in the description while Approve is
//    offered: an OpenZeppelin ForwardRequest carrying transferFrom(from, to, amount) (100
//    bytes) shows neither the recipient's last 4 bytes nor any of the amount.
{
  const from = "00".repeat(12) + "aa".repeat(20);
  const to = "00".repeat(12) + "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbdeadbeef";
  const amount = (10n ** 24n).toString(16).padStart(64, "0");
  const data = "0x23b872dd" + from + to + amount;
  const td = {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" }, { name: "version", type: "string" },
        { name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" },
      ],
      ForwardRequest: [
        { name: "from", type: "address" }, { name: "to", type: "address" }, { name: "value", type: "uint256" },
        { name: "gas", type: "uint256" }, { name: "nonce", type: "uint256" }, { name: "data", type: "bytes" },
      ],
    },
    primaryType: "ForwardRequest",
    domain: { name: "MinimalForwarder", version: "0.0.1", chainId: 1, verifyingContract: "0x" + "cc".repeat(20) },
    message: { from: "0x" + "aa".repeat(20), to: "0x5FbDB2315678afecb367f032d93F642f64180aa3", value: "0", gas: "100000", nonce: "0", data },
  };
  const p = { typed_data: JSON.stringify(td) };
  const lines = describe(p);
  out.typed_bytes_cut = { lines, digest: hex(payloadDigest(p)), full_data: data, tail: "deadbeef" + amount };
}

// 4. What stays readable: a UTF-8 message of plain lines is shown as its lines, and text
//    outside ASCII that hides nothing (an accent) is shown as it is.
{
  const m = { message: hex(utf8("Sign in to example.org\nnonce 42 — café")) };
  out.message_text = { lines: describe(m) };
  const td = {
    types: { EIP712Domain: [{ name: "name", type: "string" }], Note: [{ name: "text", type: "string" }] },
    primaryType: "Note",
    domain: { name: "Café" },
    message: { text: "déjà vu \\u{202e}" },
  };
  out.typed_text = { lines: describe({ typed_data: JSON.stringify(td) }) };
}

// 5. The characters the page escapes, as ranges of code points (surrogates aside): the
//    CLI's list (common/src/quote.rs `hides_text`), compared in Rust.
{
  const ranges = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (!hidesText(cp)) continue;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp;
    else ranges.push([cp, cp]);
  }
  out.hides_text_ranges = ranges;
}

// 6. The owner's sessions the verified log names (verify.js `sessionsOfOwner`): only from
//    the entries the enclave writes for owner acts, whatever another entry's detail says.
{
  const X = "0x" + "1a".repeat(20);
  const Y = "0x" + "2b".repeat(20);
  const A = "0x" + "3c".repeat(20);
  const s = (n) => "0x" + String(n).repeat(40);
  const entries = [
    { seq: 5, session: s(1), kind: "session_created", detail: `owner ${X} agent ${A} valid_until 1900000000` },
    { seq: 6, session: s(2), kind: "policy_updated", detail: `owner ${X.toUpperCase().replace("0X", "0x")}` },
    { seq: 7, session: s(3), kind: "session_created", detail: `owner ${Y} agent ${A} valid_until 1900000000` },
    { seq: 8, session: s(4), kind: "allowed", detail: `owner ${X}` },
    { seq: 9, session: s(5), kind: "suspended", detail: `owner ${X} agent ${A} valid_until 1` },
    { seq: 10, session: s(6), kind: "revoked_all", detail: `owner ${X}` },
    { seq: 11, session: s(7), kind: "session_created", detail: `owner ${X} agent ${A} valid_until 1900000000 and more` },
  ];
  out.sessions_of_owner = [...sessionsOfOwner(entries, X).values()];
}

process.stdout.write(JSON.stringify(out));
