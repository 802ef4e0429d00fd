// The only third-party code of the owner console: audited @noble libraries (MIT), bundled
// into one ES module (../vendor/noble.js) by `npm run build`. Rebuild after changing the
// versions in package.json; package-lock.json pins every byte that goes in.
export { keccak_256 } from "@noble/hashes/sha3.js";
export { sha256, sha384 } from "@noble/hashes/sha2.js";
export { secp256k1 } from "@noble/curves/secp256k1.js";
export { p256, p384 } from "@noble/curves/nist.js";
