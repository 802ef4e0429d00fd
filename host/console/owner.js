// Owner acts, signed in the owner's wallet as the EIP-712 envelopes `bridle owner …` signs
// (cli/src/owner.rs, approve.rs, sweep.rs), sent to the host, and the enclave's answer
// checked against the trusted identity before the page reports it as done.
import { ownerTypedData, ownerDigest, ACTION } from "./eip712.js";
import {
  keccak, utf8, u64, u128, concat, recoverAddress, sameAddress, addressOfPublicKey, hexToBytes, bytesToHex,
  ZERO_ADDRESS, ZERO32, defaultNonce, ownerNonceAt, jsonWithBigInts,
} from "./bytes.js";
import { checkBinding, checkReceipt, ownerNonceWord, bindingDigest } from "./verify.js";
import { postText } from "./api.js";
import { readUserOp, payloadEntry } from "./decode.js";

/** The last owner nonce this page signed: each next one is above it. */
let lastNonce = 0;

/**
 * The nonce for the next owner message ([`ownerNonceAt`]), above every nonce this page
 * signed before (the enclave takes an owner's nonces only rising).
 * `at`: {signedMs, floorMs} — when the enclave signed a fresh status, and an explicit floor.
 */
export function nextOwnerNonce(at = {}, nowMs = defaultNonce()) {
  const nonce = Math.max(ownerNonceAt(nowMs, at.signedMs ?? 0, at.floorMs ?? 0), lastNonce + 1);
  lastNonce = nonce;
  return nonce;
}

/**
 * ctx: {wallet (EIP-1193), account, identity (trusted enclave address), trusted, onTypedData?(td)}.
 * Asks the wallet to sign the typed data and checks that the signature is the account's over
 * exactly that message; returns the OwnerAuth. The nonce is [`nextOwnerNonce`] for `at`
 * ({signedMs, floorMs}, from a status the enclave signed; none: this clock alone).
 */
export async function signAction(ctx, fields, at = {}) {
  const td = ownerTypedData({ enclave: ctx.identity, nonce: nextOwnerNonce(at), ...fields });
  if (ctx.onTypedData) ctx.onTypedData(td);
  const signature = await ctx.wallet.request({ method: "eth_signTypedData_v4", params: [ctx.account, JSON.stringify(td)] });
  const who = recoverAddress(ownerDigest(td), signature);
  if (!sameAddress(who, ctx.account)) {
    throw new Error(`the wallet's signature recovers to ${who ?? "nobody"}, not ${ctx.account}: nothing was sent`);
  }
  return { auth: { owner: ctx.account, nonce: td.message.nonce, signature }, typedData: td };
}

/**
 * Throw unless `ctx` signs for a verified enclave: what the page would report as the
 * enclave's doing (a grant, an update, an approval, a denial, a sweep) is checked against
 * the trusted identity only, never against the key the host reports (a review of 2026-12-07).
 * Revocations alone go unverified, and the page says their receipt proves nothing.
 */
function requireTrusted(ctx, what) {
  if (!ctx.trusted) throw new Error(`the enclave is not verified in this browser: ${what} not signed — verify the attestation or pin the key first`);
}

const authJson = (a) => JSON.stringify({ owner: a.owner, nonce: a.nonce, signature: a.signature });

/**
 * Said after any failure once a grant was sent (as `bridle owner grant` says it): the session
 * may exist all the same, and a second grant could make a second one. Only what makes the
 * grant stale for good is safe to rely on: not finding it proves nothing while a host may
 * still deliver it.
 */
export const grantUnknown = (nonce) =>
  `the grant (owner nonce ${nonce}) was sent and no checked answer came back, so whether the enclave created the ` +
  "session is unknown: a lost reply, a host that withheld it or refused in the enclave's name, or a cluster that " +
  "commits it later all leave it live under this policy, and the agent can find it in the public audit log. " +
  "Granting again could make a second session with caps of its own. First make sure this grant can never take " +
  `effect: Revoke all (signed now, with a nonce above ${nonce}) ends every session of this owner key, this one if ` +
  `it exists; or wait until the enclave's clock is 10 minutes past ${nonce} (the grant is then stale for good) and ` +
  "look for this agent's session in the enclave's audit log.";

/** Grant: `policy` is {canonical, hash} from the preview (hash recomputed by the page). */
export async function grant(ctx, agentPublicKey, policy, verifyDoc, at = {}) {
  requireTrusted(ctx, "the grant");
  const pk = hexToBytes(agentPublicKey.trim());
  const agent = addressOfPublicKey(pk);
  const { auth } = await signAction(ctx, {
    action: ACTION.CREATE_SESSION, session: ZERO_ADDRESS, agent, policyHash: policy.hash, subject: ZERO32,
  }, at);
  let created;
  try {
    created = await sendGrant(ctx, pk, agent, auth, policy);
  } catch (e) {
    throw new Error(`${e.message} — ${grantUnknown(auth.nonce)}`);
  }
  // The binding and the receipt are the enclave's: the session exists, and what fails from
  // here says so itself.
  let attested = null;
  if (created.attestation && verifyDoc) {
    attested = verifyDoc(hexToBytes(created.attestation), hexToBytes(bytesToHex(bindingDigest(created.binding))));
  }
  return { created, attested };
}

async function sendGrant(ctx, pk, agent, auth, policy) {
  const body = `{"auth":${authJson(auth)},"agent_public_key":"${bytesToHex(pk)}","policy":${policy.canonical}}`;
  const created = await postText("/v1/sessions", body);
  const validUntil = JSON.parse(policy.canonical).valid_until;
  checkBinding(created.binding, created.binding_signature, ctx.identity, {
    enclave: ctx.identity, owner: ctx.account, agent, policy_hash: policy.hash, valid_until: validUntil,
  });
  // And the receipt for this grant's nonce: the binding does not name the nonce, so a host
  // could answer with an earlier binding of the same owner, agent and policy.
  checkReceipt("session_created", created, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  return created;
}

export async function update(ctx, session, agent, policy, at = {}) {
  requireTrusted(ctx, "the update");
  const { auth } = await signAction(ctx, {
    action: ACTION.UPDATE_POLICY, session, agent, policyHash: policy.hash, subject: ZERO32,
  }, at);
  const body = `{"auth":${authJson(auth)},"session":"${session}","policy":${policy.canonical}}`;
  const r = await postText(`/v1/sessions/${session}/policy`, body);
  const rc = checkReceipt("policy_updated", r, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  if (!sameAddress(r.session, session) || r.policy_hash.toLowerCase() !== policy.hash.toLowerCase()) {
    throw new Error(`the enclave's signed reply is for session ${r.session} and policy ${r.policy_hash}, not this update`);
  }
  if (!r.binding) throw new Error("the update reply carries no signed binding of the new policy");
  checkBinding(r.binding, r.binding_signature, ctx.identity, { session, owner: ctx.account, agent, policy_hash: policy.hash });
  return { reply: r, receipt: rc };
}

export async function revoke(ctx, session, agent, at = {}) {
  const { auth } = await signAction(ctx, { action: ACTION.REVOKE, session, agent, policyHash: ZERO32, subject: ZERO32 }, at);
  const r = await postText(`/v1/sessions/${session}/revoke`, `{"auth":${authJson(auth)},"session":"${session}"}`);
  const rc = checkReceipt("revoked", r, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  if (!r.sessions.some((s) => sameAddress(s, session))) {
    throw new Error("the enclave's signed reply does not list the session as revoked: treat it as live");
  }
  return { reply: r, receipt: rc };
}

export async function revokeAll(ctx, at = {}) {
  const { auth } = await signAction(ctx, {
    action: ACTION.REVOKE_ALL, session: ZERO_ADDRESS, agent: ZERO_ADDRESS, policyHash: ZERO32, subject: ZERO32,
  }, at);
  const r = await postText(`/v1/owners/${ctx.account}/revoke-all`, `{"auth":${authJson(auth)}}`);
  const rc = checkReceipt("revoked", r, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  return { reply: r, receipt: rc };
}

/** EIP-191 form of a 32-byte hash (what a user operation's key signs). */
function ethSigned(digest) {
  return keccak(utf8("\x19Ethereum Signed Message:\n32"), digest);
}

/**
 * Approve a held request. `pending` is the status record; its digest is what the owner's
 * signature commits to (the subject), and the enclave's signature must recover to the session.
 * `at.floorMs`: the hold's time in milliseconds from a status the enclave signed (0 otherwise):
 * the enclave takes a word on a hold only if signed at or after it, and an owner clock behind
 * the enclave's would sign one before it.
 */
export async function approve(ctx, session, agent, pending, at = {}) {
  requireTrusted(ctx, "the approval");
  const { auth } = await signAction(ctx, {
    action: ACTION.APPROVE_PENDING, session, agent, policyHash: ZERO32, subject: pending.digest,
  }, at);
  const signed = await postText(
    `/v1/sessions/${session}/approve`,
    `{"auth":${authJson(auth)},"session":"${session}","digest":"${pending.digest}"}`,
  );
  if (signed.digest.toLowerCase() !== pending.digest.toLowerCase()) {
    throw new Error(`the approval's reply signs digest ${signed.digest}, not ${pending.digest}`);
  }
  const d = hexToBytes(signed.digest);
  const who = approvalSigners(pending, d).map((m) => recoverAddress(m, signed.signature));
  if (!who.some((w) => sameAddress(w, session))) {
    throw new Error(`the approval's signature recovers to ${who.join(" or ")}, not the session`);
  }
  return signed;
}

/**
 * What the session key signs for a held request's digest: a v0.7 user operation's hash as
 * an EIP-191 message, a v0.8 one's (an EIP-712 digest) and every other digest as it is
 * (`UserOperationRequest::signing_digest`). A status that omitted the payload leaves the
 * version unknown: either form is the session's signature over this digest.
 */
export function approvalSigners(pending, d) {
  if (pending.kind !== "user_operation") return [d];
  let version = null;
  try {
    const e = payloadEntry(pending.payload);
    version = e?.kind === "user_operation" ? readUserOp(e.value).version : null;
  } catch {
    version = null;
  }
  if (version === "0.7") return [ethSigned(d)];
  if (version === "0.8") return [d];
  return [ethSigned(d), d];
}

/**
 * Deny a held request: the enclave never signs it, and refuses the agent asking again until
 * `until`. Done only when the reply carries the enclave's receipt for this nonce naming this
 * session and digest.
 */
export async function deny(ctx, session, agent, pending, at = {}) {
  requireTrusted(ctx, "the denial");
  const { auth } = await signAction(ctx, {
    action: ACTION.DENY_PENDING, session, agent, policyHash: ZERO32, subject: pending.digest,
  }, at);
  const r = await postText(
    `/v1/sessions/${session}/deny`,
    `{"auth":${authJson(auth)},"session":"${session}","digest":"${pending.digest}"}`,
  );
  const rc = checkReceipt("pending_denied", r, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  if (!sameAddress(r.session, session) || r.digest.toLowerCase() !== pending.digest.toLowerCase()) {
    throw new Error(`the enclave's signed reply denies ${r.digest} of ${r.session}, not this request: treat it as still approvable`);
  }
  return { reply: r, receipt: rc };
}

/** Sweep terms digest (protocol::Sweep::terms_digest). */
export function termsDigest(terms) {
  const parts = [utf8("bridle/sweep/v1")];
  for (const t of terms) {
    parts.push(u64(t.chain_id), u64(t.nonce), u128(t.max_fee_per_gas), u128(t.max_priority_fee_per_gas), u64(t.gas_limit));
  }
  return bytesToHex(keccak(concat(...parts)));
}

/** An owner-signed sweep with the owner's terms ({chain_id, nonce, max_fee_per_gas, …} as BigInt). */
export async function sweep(ctx, session, agent, terms, at = {}) {
  requireTrusted(ctx, "the sweep");
  const { auth } = await signAction(ctx, {
    action: ACTION.SWEEP, session, agent, policyHash: ZERO32, subject: termsDigest(terms),
  }, at);
  const body = jsonWithBigInts({ session, terms, auth });
  const r = await postText(`/v1/sessions/${session}/sweep`, body);
  const rc = checkReceipt("swept", r, ctx.identity, ownerNonceWord(auth.owner, auth.nonce));
  if (!sameAddress(r.session, session)) throw new Error(`the sweep reply is for session ${r.session}`);
  return { reply: r, receipt: rc };
}
