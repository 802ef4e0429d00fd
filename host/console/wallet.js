// The owner console's wallet (EIP-1193): the connected account, and what an owner message is
// signed with.
import { $, state, updateButtons } from "./state.js";
import { keyAddress } from "./trust.js";
import { refresh } from "./refresh.js";

export function wallet() {
  return window.ethereum ?? null;
}

export async function connect() {
  const w = wallet();
  if (!w) throw new Error("no EIP-1193 wallet in this browser (window.ethereum): install or unlock one");
  const accounts = await w.request({ method: "eth_requestAccounts" });
  setAccount(accounts[0] ?? null);
  await refresh();
  return state.account ? `connected ${state.account}` : "the wallet gave no account";
}

export function setAccount(a) {
  state.account = a ? addressOfChecksum(a) : null;
  $("account").textContent = state.account ?? "no wallet connected";
  $("connect").textContent = state.account ? "Reconnect" : "Connect wallet";
  updateButtons();
}

function addressOfChecksum(a) {
  return a.toLowerCase().startsWith("0x") ? a : `0x${a}`;
}

/**
 * What an owner message is signed with, read once per action: the trusted identity, else
 * (revocations only) the address of the key the host reports — the enclave refuses a
 * message for another identity, and the page then says its receipt proves nothing.
 */
export function ctx() {
  const identity = state.trust?.identity ?? (state.status ? keyAddress(state.status) : null);
  return {
    wallet: wallet(),
    account: state.account,
    identity,
    trusted: !!state.trust?.method,
    onTypedData: (td) => {
      $("typed-data").textContent = JSON.stringify(td, null, 2);
    },
  };
}
