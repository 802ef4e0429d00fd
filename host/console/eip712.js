// The owner envelope (common/src/owner.rs): EIP-712 typed data, domain {name: "Bridle",
// version: "1"} — no chain id, so any wallet on any network signs it. This module builds
// the exact `eth_signTypedData_v4` JSON the CLI hands to wallets and computes its digest
// independently, so the page can check what came back from the wallet before sending it.
import { keccak, utf8, addressBytes, b32, uintBE, checksum, concat, bytesToHex } from "./bytes.js";

export const DOMAIN = { name: "Bridle", version: "1" };

export const OWNER_ACTION_FIELDS = [
  { name: "action", type: "string" },
  { name: "enclave", type: "address" },
  { name: "session", type: "address" },
  { name: "agent", type: "address" },
  { name: "policyHash", type: "bytes32" },
  { name: "subject", type: "bytes32" },
  { name: "nonce", type: "uint64" },
];

/** Action names (common::owner::action). */
export const ACTION = Object.freeze({
  CREATE_SESSION: "create_session",
  UPDATE_POLICY: "update_policy",
  REVOKE: "revoke",
  REVOKE_ALL: "revoke_all",
  DENY_PENDING: "deny_pending",
  APPROVE_PENDING: "approve_pending",
  SWEEP: "sweep",
});

/**
 * The typed data for one owner action, exactly as `OwnerAction::typed_data_json` writes it:
 * checksummed addresses, 0x-hex bytes32, the nonce as a JSON number.
 */
export function ownerTypedData(m) {
  const nonce = Number(m.nonce);
  if (!Number.isSafeInteger(nonce) || nonce < 0) throw new Error(`owner nonce ${m.nonce} is not a safe integer`);
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
      ],
      OwnerAction: OWNER_ACTION_FIELDS,
    },
    primaryType: "OwnerAction",
    domain: { ...DOMAIN },
    message: {
      action: m.action,
      enclave: checksum(m.enclave),
      session: checksum(m.session),
      agent: checksum(m.agent),
      policyHash: bytesToHex(b32(m.policyHash)),
      subject: bytesToHex(b32(m.subject)),
      nonce,
    },
  };
}

function typeHash(name, fields) {
  return keccak(utf8(`${name}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`));
}

export function domainSeparator() {
  return keccak(
    typeHash("EIP712Domain", [
      { name: "name", type: "string" },
      { name: "version", type: "string" },
    ]),
    keccak(utf8(DOMAIN.name)),
    keccak(utf8(DOMAIN.version)),
  );
}

/** hashStruct(OwnerAction) of a typed-data message. */
export function ownerStructHash(msg) {
  const word = (b) => concat(new Uint8Array(32 - b.length), b);
  return keccak(
    typeHash("OwnerAction", OWNER_ACTION_FIELDS),
    keccak(utf8(msg.action)),
    word(addressBytes(msg.enclave)),
    word(addressBytes(msg.session)),
    word(addressBytes(msg.agent)),
    b32(msg.policyHash),
    b32(msg.subject),
    uintBE(msg.nonce, 32),
  );
}

/** The EIP-712 digest the owner's wallet signs for `typedData.message`. */
export function ownerDigest(typedData) {
  return keccak(Uint8Array.of(0x19, 0x01), domainSeparator(), ownerStructHash(typedData.message));
}
