// What a held request is, shown decoded before the owner approves its digest — and, for
// transactions and messages, the digest recomputed here from the request itself, so the
// record cannot describe one request while the digest signs another (cli/src/approve.rs).
import { keccak, utf8, hexToBytes, concat, formatUnits } from "./bytes.js";

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

/** The digest a payload hashes to, when the page can compute it; null otherwise. */
export function payloadDigest(payload) {
  if (payload.transaction) return txSigningHash(payload.transaction);
  if (payload.message !== undefined) return messageHash(hexToBytes(payload.message));
  return null;
}

// ---- description ----------------------------------------------------------------------------

const SELECTORS = {
  a9059cbb: ["transfer", ["to", "amount"]],
  "095ea7b3": ["approve", ["spender", "amount"]],
  "23b872dd": ["transferFrom", ["from", "to", "amount"]],
};

/** `tokens`: [{symbol, address, decimals}] from the session's policy, to name amounts. */
export function describe(payload, tokens = []) {
  const lines = [];
  if (payload.transaction) {
    const [kind, t] = Object.entries(payload.transaction)[0];
    lines.push(`${kind} transaction on chain ${t.chain_id}, nonce ${t.nonce ?? "-"}`);
    if (t.to) lines.push(`to ${t.to}`);
    if (t.value && BigInt(t.value) !== 0n) lines.push(`value ${formatUnits(BigInt(t.value), 18)} ETH`);
    const d = t.data ? t.data.slice(2) : "";
    const sel = SELECTORS[d.slice(0, 8)];
    if (sel && d.length === 8 + 64 * sel[1].length) {
      const tok = tokens.find((x) => t.to && x.address.toLowerCase() === t.to.toLowerCase());
      const args = sel[1].map((name, i) => {
        const w = d.slice(8 + 64 * i, 8 + 64 * (i + 1));
        if (name === "amount") {
          const v = BigInt("0x" + w);
          return `${name} ${tok ? `${formatUnits(v, tok.decimals)} ${tok.symbol}` : `${v} (base units)`}`;
        }
        return `${name} 0x${w.slice(24)}`;
      });
      lines.push(`calls ${sel[0]}(${args.join(", ")})`);
    } else if (d.length) {
      lines.push(`calldata ${d.length / 2} bytes, selector 0x${d.slice(0, 8)}`);
    }
  } else if (payload.typed_data !== undefined) {
    try {
      const td = JSON.parse(payload.typed_data);
      lines.push(`typed data ${td.primaryType}, domain ${JSON.stringify(td.domain)}`);
    } catch {
      lines.push("typed data (does not parse)");
    }
  } else if (payload.message !== undefined) {
    const b = hexToBytes(payload.message);
    lines.push(`message: ${new TextDecoder().decode(b)}`);
  } else if (payload.user_operation) {
    const u = payload.user_operation;
    lines.push(`user operation from ${u.sender ?? "?"} on chain ${u.chain_id ?? "?"}`);
  }
  return lines;
}

