// What a held request is, shown decoded before the owner approves its digest — and the
// digest recomputed here from the request itself (transactions, messages, EIP-712 typed
// data, ERC-4337 user operations), so the record cannot describe one request while the
// digest signs another (cli/src/approve.rs).
import { keccak, utf8, hexToBytes, concat, formatUnits, uintBE, addressBytes, bytesToHex, checksum, hidesText, printable, unmarked } from "./bytes.js";
import { hashTypedData, parseU256 } from "./typed.js";

// ---- RLP ------------------------------------------------------------------------------------

function rlpLength(len, offset) {
  if (len < 56) return Uint8Array.of(offset + len);
  let hex = len.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  const b = hexToBytes(hex);
  return concat(Uint8Array.of(offset + 55 + b.length), b);
}

export function rlp(item) {
  if (Array.isArray(item)) {
    const body = concat(...item.map(rlp));
    return concat(rlpLength(body.length, 0xc0), body);
  }
  if (item.length === 1 && item[0] < 0x80) return item;
  return concat(rlpLength(item.length, 0x80), item);
}

/** Minimal big-endian bytes of an integer (0 → empty). */
function int(v) {
  let x = BigInt(v ?? 0);
  if (x === 0n) return new Uint8Array();
  let hex = x.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  return hexToBytes(hex);
}

const data = (h) => (h ? hexToBytes(h) : new Uint8Array());

/** The signing hash of a transaction request ({eip1559: …} or {legacy: …}), or null. */
export function txSigningHash(tx) {
  if (tx.eip1559) {
    const t = tx.eip1559;
    const access = (t.access_list ?? []).map((a) => [hexToBytes(a.address), a.storage_keys.map(hexToBytes)]);
    const fields = [
      int(t.chain_id), int(t.nonce), int(t.max_priority_fee_per_gas), int(t.max_fee_per_gas), int(t.gas_limit),
      data(t.to), int(t.value), data(t.data), access,
    ];
    return keccak(Uint8Array.of(2), rlp(fields));
  }
  if (tx.legacy) {
    const t = tx.legacy;
    const fields = [int(t.nonce), int(t.gas_price), int(t.gas_limit), data(t.to), int(t.value), data(t.data), int(t.chain_id), int(0), int(0)];
    return keccak(rlp(fields));
  }
  return null;
}

export function messageHash(bytes) {
  return keccak(utf8(`\x19Ethereum Signed Message:\n${bytes.length}`), bytes);
}

// ---- ERC-4337 user operations (common/src/userop.rs) ------------------------------------------

const ENTRY_POINT_V08 = "0x4337084d9e255ff0702461cf8895ce9e3b5ff108";
const PACKED_USEROP_TYPE =
  "PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)";
const DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
/** `UserOperationRequest`'s fields (it denies unknown ones). */
const USEROP_FIELDS = new Set([
  "chain_id", "entry_point", "entry_point_version", "sender", "nonce", "factory", "factory_data", "init_code",
  "call_data", "call_gas_limit", "verification_gas_limit", "pre_verification_gas", "max_fee_per_gas",
  "max_priority_fee_per_gas", "paymaster", "paymaster_verification_gas_limit", "paymaster_post_op_gas_limit",
  "paymaster_data",
]);
const U128_LIMIT = 1n << 128n;

/**
 * A user operation request as serde writes it, read strictly: integers the page cannot hold
 * exactly (JSON numbers beyond 2^53) and anything the enclave would not deserialize throw.
 */
export function readUserOp(u) {
  if (!u || typeof u !== "object" || Array.isArray(u)) throw new Error("not an object");
  for (const k of Object.keys(u)) if (!USEROP_FIELDS.has(k)) throw new Error(`unknown field ${k}`);
  const has = (k) => u[k] !== undefined;
  const need = (k) => {
    if (!has(k) || u[k] === null) throw new Error(`no ${k}`);
    return u[k];
  };
  const opt = (k) => (has(k) && u[k] !== null ? u[k] : undefined);
  const uint = (k, limit, fallback) => {
    const v = fallback !== undefined && !has(k) ? fallback : need(k);
    let x = null;
    if (typeof v === "number") x = Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
    else if (typeof v === "bigint") x = v;
    else if (limit > U128_LIMIT) x = parseU256(v); // U256 quantities: 0x-hex strings
    if (x === null || x < 0n || x >= limit) throw new Error(`${k} ${v} is not an integer the page can hold exactly`);
    return x;
  };
  const bytes = (v) => hexToBytes(v);
  const out = {
    chainId: uint("chain_id", 1n << 64n),
    entryPoint: addressBytes(need("entry_point")),
    sender: addressBytes(need("sender")),
    nonce: uint("nonce", 1n << 256n),
    factory: opt("factory") === undefined ? null : addressBytes(u.factory),
    factoryData: has("factory_data") ? bytes(u.factory_data) : new Uint8Array(),
    initCode: opt("init_code") === undefined ? null : bytes(u.init_code),
    callData: has("call_data") ? bytes(u.call_data) : new Uint8Array(),
    callGasLimit: uint("call_gas_limit", U128_LIMIT),
    verificationGasLimit: uint("verification_gas_limit", U128_LIMIT),
    preVerificationGas: uint("pre_verification_gas", 1n << 256n),
    maxFeePerGas: uint("max_fee_per_gas", U128_LIMIT),
    maxPriorityFeePerGas: uint("max_priority_fee_per_gas", U128_LIMIT),
    paymaster: opt("paymaster") === undefined ? null : addressBytes(u.paymaster),
    paymasterVerificationGasLimit: uint("paymaster_verification_gas_limit", U128_LIMIT, 0n),
    paymasterPostOpGasLimit: uint("paymaster_post_op_gas_limit", U128_LIMIT, 0n),
    paymasterData: has("paymaster_data") ? bytes(u.paymaster_data) : new Uint8Array(),
  };
  const v = opt("entry_point_version");
  if (v !== undefined && v !== "0.7" && v !== "0.8") throw new Error(`entry_point_version ${v} is not 0.7 or 0.8`);
  out.version = v ?? (bytesToHex(out.entryPoint) === ENTRY_POINT_V08 ? "0.8" : "0.7");
  // The packed initCode (UserOperationRequest::init_code).
  if (out.factory && out.initCode) throw new Error("give factory/factory_data or init_code, not both");
  if (out.initCode && out.initCode.length > 0 && out.initCode.length < 20) {
    throw new Error(`init_code of ${out.initCode.length} bytes is shorter than a factory address`);
  }
  if (!out.factory && !out.initCode && out.factoryData.length) throw new Error("factory_data without a factory");
  out.packedInitCode = out.factory ? concat(out.factory, out.factoryData) : (out.initCode ?? new Uint8Array());
  // paymasterAndData.
  if (!out.paymaster) {
    if (out.paymasterVerificationGasLimit || out.paymasterPostOpGasLimit || out.paymasterData.length) {
      throw new Error("paymaster gas limits or data without a paymaster");
    }
    out.paymasterAndData = new Uint8Array();
  } else {
    out.paymasterAndData = concat(out.paymaster, uintBE(out.paymasterVerificationGasLimit, 16), uintBE(out.paymasterPostOpGasLimit, 16), out.paymasterData);
  }
  return out;
}

const word = (x) => uintBE(x, 32);
const addrWord = (a) => concat(new Uint8Array(12), a);

/** `getUserOpHash` of the operation's EntryPoint (v0.7, or v0.8's EIP-712 hash). */
export function userOpHash(request) {
  const u = readUserOp(request);
  const fields = [
    addrWord(u.sender),
    word(u.nonce),
    keccak(u.packedInitCode),
    keccak(u.callData),
    concat(uintBE(u.verificationGasLimit, 16), uintBE(u.callGasLimit, 16)),
    word(u.preVerificationGas),
    concat(uintBE(u.maxPriorityFeePerGas, 16), uintBE(u.maxFeePerGas, 16)),
    keccak(u.paymasterAndData),
  ];
  if (u.version === "0.7") return keccak(keccak(...fields), addrWord(u.entryPoint), word(u.chainId));
  // v0.8: an EIP-7702 initCode (0x7702 padded to 20 bytes) is never signed.
  const ic = u.packedInitCode;
  if (ic.length >= 2 && ic[0] === 0x77 && ic[1] === 0x02 && ic.subarray(2, 20).every((b) => b === 0)) {
    throw new Error("an EntryPoint v0.8 operation with an EIP-7702 initCode is never signed");
  }
  const structHash = keccak(keccak(utf8(PACKED_USEROP_TYPE)), ...fields);
  const domain = keccak(keccak(utf8(DOMAIN_TYPE)), keccak(utf8("ERC4337")), keccak(utf8("1")), word(u.chainId), addrWord(u.entryPoint));
  return keccak(Uint8Array.of(0x19, 0x01), domain, structHash);
}

const PAYLOAD_KINDS = ["transaction", "typed_data", "message", "user_operation"];
const TX_KINDS = ["eip1559", "legacy"];

/**
 * The payload's one kind and value, or null: exactly one key, one the page knows (and a
 * transaction of exactly one kind). A payload of two forms could be shown as one and hashed
 * as the other (a review of 2026-12-04): the digest and the description read this entry only.
 */
export function payloadEntry(payload) {
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) return null;
  const keys = Object.keys(payload);
  if (keys.length !== 1 || !PAYLOAD_KINDS.includes(keys[0])) return null;
  const [kind] = keys;
  const value = payload[kind];
  if (kind === "transaction") {
    if (!value || typeof value !== "object" || Array.isArray(value)) return null;
    const tk = Object.keys(value);
    if (tk.length !== 1 || !TX_KINDS.includes(tk[0])) return null;
    const t = value[tk[0]];
    if (!t || typeof t !== "object" || Array.isArray(t)) return null;
  }
  return { kind, value };
}

/** The digest a payload hashes to (the enclave's `stamp_digest`), when the page can compute it; null otherwise. */
export function payloadDigest(payload) {
  const e = payloadEntry(payload);
  if (!e) return null;
  // Typed data and user operations the enclave would refuse (or the page cannot follow) are
  // "not recomputed".
  try {
    switch (e.kind) {
      case "transaction":
        return txSigningHash(e.value);
      case "message":
        return messageHash(hexToBytes(e.value));
      case "typed_data":
        return hashTypedData(e.value).digest;
      case "user_operation":
        return userOpHash(e.value);
    }
  } catch {
    return null;
  }
  return null;
}

// ---- description ----------------------------------------------------------------------------

const SELECTORS = {
  a9059cbb: ["transfer", ["to", "amount"]],
  "095ea7b3": ["approve", ["spender", "amount"]],
  "23b872dd": ["transferFrom", ["from", "to", "amount"]],
};

/** What a call does: ERC-20 transfer/approve/transferFrom named in the token's units. */
function callLines(to, value, dataHex, tokens, indent = "") {
  const lines = [];
  if (to) lines.push(`${indent}to ${to}`);
  if (value && BigInt(value) !== 0n) lines.push(`${indent}value ${formatUnits(BigInt(value), 18)} ETH`);
  const d = dataHex ? dataHex.replace(/^0x/i, "").toLowerCase() : "";
  const sel = SELECTORS[d.slice(0, 8)];
  if (sel && d.length === 8 + 64 * sel[1].length) {
    const tok = tokens.find((x) => to && x.address.toLowerCase() === to.toLowerCase());
    const args = sel[1].map((name, i) => {
      const w = d.slice(8 + 64 * i, 8 + 64 * (i + 1));
      if (name === "amount") {
        const v = BigInt("0x" + w);
        return `${name} ${tok ? `${formatUnits(v, tok.decimals)} ${tok.symbol}` : `${v} (base units)`}`;
      }
      return `${name} 0x${w.slice(24)}`;
    });
    lines.push(`${indent}calls ${sel[0]}(${args.join(", ")})`);
  } else if (d.length) {
    lines.push(`${indent}calldata ${d.length / 2} bytes, selector 0x${d.slice(0, 8)}`);
  }
  return lines;
}

const ACCOUNT_CALLS = {
  b61d27f6: "SimpleAccount execute",
  e9ae5c53: "ERC-7579 execute",
  "47e1da2a": "SimpleAccount executeBatch(address[],uint256[],bytes[])",
  "18dfb3c7": "SimpleAccount executeBatch(address[],bytes[])",
  "34fcd5be": "executeBatch((address,uint256,bytes)[])",
};

/** The account's callData: single calls decoded (the enclave decodes and bounds every one). */
function accountCallLines(data, tokens) {
  const d = bytesToHex(data, false);
  const name = ACCOUNT_CALLS[d.slice(0, 8)];
  if (!name) return [`callData ${data.length} bytes, selector 0x${d.slice(0, 8)} (not an account call the page decodes)`];
  const wordAt = (hex, i) => hex.slice(64 * i, 64 * (i + 1));
  const args = d.slice(8);
  try {
    if (d.startsWith("b61d27f6")) {
      // execute(address dest, uint256 value, bytes func)
      const off = Number(BigInt("0x" + wordAt(args, 2))) / 32;
      const len = Number(BigInt("0x" + wordAt(args, off)));
      const func = args.slice(64 * (off + 1), 64 * (off + 1) + 2 * len);
      if (func.length !== 2 * len) throw new Error("short");
      return [`${name}:`, ...callLines(checksum("0x" + wordAt(args, 0).slice(24)), BigInt("0x" + wordAt(args, 1)), func, tokens, "  ")];
    }
    if (d.startsWith("e9ae5c53") && /^0{64}$/.test(wordAt(args, 0))) {
      // execute(bytes32 mode = single call, bytes target ‖ value ‖ callData)
      const off = Number(BigInt("0x" + wordAt(args, 1))) / 32;
      const len = Number(BigInt("0x" + wordAt(args, off)));
      const ec = args.slice(64 * (off + 1), 64 * (off + 1) + 2 * len);
      if (ec.length !== 2 * len || len < 52) throw new Error("short");
      return [`${name} (single call):`, ...callLines(checksum("0x" + ec.slice(0, 40)), BigInt("0x" + ec.slice(40, 104)), ec.slice(104), tokens, "  ")];
    }
  } catch {
    // Fall through: named, not decoded.
  }
  return [`${name}, callData ${data.length} bytes`];
}

/** Text from a request on one line, so it cannot pass for a decoded field. */
const oneLine = (x) => unmarked(String(x).replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " "));

function typedDataLines(text) {
  try {
    // Every line: a description cut short could hide what Approve signs (a review of
    // 2026-12-04: a Permit2 batch of 41 details pushed its spender past a 200-line cut).
    // The document's values are bounded (MAX_JSON_VALUES), so are its lines.
    const t = hashTypedData(text, Number.MAX_SAFE_INTEGER);
    return [`typed data ${t.primaryType}`, `domain: ${t.domain.join(", ") || "(empty)"}`, "message:", ...t.message];
  } catch (e) {
    let head = "typed data (does not parse)";
    try {
      const td = JSON.parse(text);
      head = `typed data ${oneLine(td?.primaryType ?? "?")}${td?.domain !== undefined ? `, domain ${unmarked(JSON.stringify(td.domain))}` : ""}`;
    } catch {
      // The head says so.
    }
    return [head, `not recomputed: ${oneLine(e.message)}`];
  }
}

function userOpLines(op, tokens) {
  let u;
  try {
    u = readUserOp(op);
  } catch (e) {
    return [oneLine(`user operation from ${op?.sender ?? "?"} on chain ${op?.chain_id ?? "?"}`), `not recomputed: ${oneLine(e.message)}`];
  }
  const addr = (b) => checksum(bytesToHex(b));
  const lines = [
    `user operation for EntryPoint v${u.version} ${addr(u.entryPoint)} on chain ${u.chainId}`,
    `sender ${addr(u.sender)}, nonce ${u.nonce}`,
  ];
  if (u.packedInitCode.length) {
    lines.push(`deploys the account: factory ${addr(u.packedInitCode.subarray(0, 20))}, factoryData ${u.packedInitCode.length - 20} bytes`);
  }
  lines.push(...accountCallLines(u.callData, tokens));
  if (u.paymaster) {
    lines.push(`paymaster ${addr(u.paymaster)} (verification gas ${u.paymasterVerificationGasLimit}, post-op gas ${u.paymasterPostOpGasLimit}, data ${u.paymasterData.length} bytes)`);
  }
  lines.push(
    `gas: call ${u.callGasLimit}, verification ${u.verificationGasLimit}, pre-verification ${u.preVerificationGas}; max fee ${formatUnits(u.maxFeePerGas, 9)} gwei, priority ${formatUnits(u.maxPriorityFeePerGas, 9)} gwei`,
  );
  return lines;
}

/**
 * What the transaction may cost in fees: its gas limit and price, and their product (the
 * most it can pay, beside its value). Fields the page cannot read are named as such.
 */
function feeLines(kind, t) {
  // A JSON number beyond 2^53 arrived rounded: not read.
  const n = (v) => {
    if (typeof v === "number" && !(Number.isSafeInteger(v) && v >= 0)) return null;
    try {
      return BigInt(v ?? 0);
    } catch {
      return null;
    }
  };
  const gas = n(t.gas_limit);
  const price = kind === "eip1559" ? n(t.max_fee_per_gas) : n(t.gas_price);
  if (gas === null || price === null) return ["fees: not read (a gas field is not a number)"];
  const lines = [];
  if (kind === "eip1559") {
    const tip = n(t.max_priority_fee_per_gas);
    lines.push(`gas limit ${gas}; max fee ${formatUnits(price, 9)} gwei, priority ${tip === null ? "?" : formatUnits(tip, 9)} gwei`);
  } else {
    lines.push(`gas limit ${gas}; gas price ${formatUnits(price, 9)} gwei`);
  }
  lines.push(`fees at most ${formatUnits(gas * price, 18)} ETH`);
  const access = Array.isArray(t.access_list) ? t.access_list.length : 0;
  if (access) lines.push(`access list: ${access} address${access === 1 ? "" : "es"}`);
  return lines;
}

/** `tokens`: [{symbol, address, decimals}] from the session's policy, to name amounts. */
export function describe(payload, tokens = []) {
  const lines = [];
  const e = payloadEntry(payload);
  if (!e) return ["(a request of no single kind this page knows: not shown)"];
  if (e.kind === "transaction") {
    const [kind, t] = Object.entries(e.value)[0];
    lines.push(`${kind} transaction on chain ${t.chain_id}, nonce ${t.nonce ?? "-"}`);
    if (!t.to) lines.push("creates a contract (no recipient)");
    lines.push(...callLines(t.to, t.value, t.data, tokens));
    lines.push(...feeLines(kind, t));
  } else if (e.kind === "typed_data") {
    lines.push(...typedDataLines(e.value));
  } else if (e.kind === "message") {
    lines.push(...messageLines(hexToBytes(e.value)));
  } else if (e.kind === "user_operation") {
    lines.push(...userOpLines(e.value, tokens));
  }
  // Nothing from the request reaches the page as something that reorders, hides or forges
  // text: every line as the CLI prints it (a review of 2026-12-07).
  return lines.map(printable);
}

/**
 * An EIP-191 message as `bridle owner approve --dry-run` shows it (cli/src/decode.rs): as
 * text, line by line, only when it is UTF-8 and holds no character that hides text (newlines
 * and tabs aside); otherwise as hex. Decoded leniently, two different messages of invalid
 * UTF-8 would read alike ("����…", a review of 2026-12-07) while Approve signs either.
 */
export function messageLines(b) {
  let text = null;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
  } catch {
    text = null;
  }
  const hides = (s) => [...s].some((c) => c !== "\n" && c !== "\t" && hidesText(c.codePointAt(0)));
  if (text === null || hides(text)) {
    return [`EIP-191 personal message of ${b.length} bytes: ${bytesToHex(b)}`];
  }
  // Rust's `str::lines`: split at \n, a trailing \r dropped (a \r shows the message as hex anyway).
  const parts = text.split("\n");
  if (parts.length && parts[parts.length - 1] === "") parts.pop();
  return [`EIP-191 personal message, ${b.length} bytes:`, ...parts.map((l) => `  ${l}`)];
}
