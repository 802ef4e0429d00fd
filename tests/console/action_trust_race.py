"""The owner console's actions against a host that changes its answer while an action waits
(a review of 2026-12-07; run by tests/tests/console_action_trust.rs).

--mode race: the page is "attested" for the real enclave A and a background refresh is in
flight — held by this proxy until the owner clicks an action (--action sweep, update or
revoke). The proxy then answers that refresh with a key B of its own (the trust drops) and
answers a sweep with a receipt B signed. The console read the trust only when the action's
turn came: the sweep was signed for B and reported as done ("receipt for your nonce
checked", "nothing to revoke") though the enclave never saw it. The console now records the
trust at the click and refuses an action whose turn comes under another.

--mode settings: trusted only because "any image" was ticked, the page kept "attested" once
it was unticked (and once the AWS root was restored); it now checks the attestation again
under the new settings, in turn with the actions.

--mode hang: the proxy never answers one GET (no error, no close). The page waited for it
for good, busy, with every action (Revoke all too) waiting behind it. Each request now has
a timeout: the status line says which request the host did not answer, and Revoke all runs.

Prints one JSON line of observations.
"""

import argparse
import json
import os
import re
import struct
import threading
import time
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


def cbor_text(s):
    b = s.encode()
    assert len(b) < 24
    return bytes([0x60 | len(b)]) + b


def forged_swept(owner, nonce, session):
    """The enclave's `swept` reply (no transaction, nothing skipped), signed by FAKE."""
    body = (bytes([0xA4]) + cbor_text("session") + bytes([0x54]) + bytes.fromhex(session[2:])
            + cbor_text("transactions") + bytes([0x80]) + cbor_text("skipped") + bytes([0x80])
            + cbor_text("key_destroyed") + bytes([0xF4]))
    word = keccak(b"bridle/owner-receipt/v1" + bytes.fromhex(owner[2:]) + int(nonce).to_bytes(32, "big"))
    t = int(time.time())
    kind = b"swept"
    digest = keccak(b"bridle/receipt/v1" + struct.pack(">I", len(kind)) + kind + bytes.fromhex(FAKE_ADDR[2:])
                    + struct.pack(">Q", t) + word + keccak(body))
    sig = FAKE.sign_msg_hash(digest)
    sb = sig.to_bytes()[:64] + bytes([sig.v + 27])
    return {"session": session, "transactions": [], "skipped": [], "key_destroyed": False,
            "receipt": {"enclave": FAKE_ADDR, "time": t, "nonce": "0x" + word.hex(), "signature": "0x" + sb.hex()}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--owner-key", required=True)
    ap.add_argument("--agent-public-key", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--mode", default="race", choices=["race", "hang", "settings"])
    ap.add_argument("--action", default="sweep", choices=["sweep", "update", "revoke"])
    a = ap.parse_args()
    upstream = a.url.rstrip("/")
    owner = Account.from_key(a.owner_key)
    st = {"armed": False, "swapped": False, "held": threading.Event(), "clicked": threading.Event(),
          "forged": [], "session": None, "enclave_asked_sweep": 0}

    class Proxy(Relay):
        target = upstream

        def do_GET(self):
            u = urlparse(self.path)
            if a.mode == "hang" and st["armed"] and not st.get("disarmed") and st["session"] and u.path.lower() == f"/v1/sessions/{st['session'].lower()}":
                # The host never answers the one session's plain GET (no error, no close).
                st["hung"] = st.get("hung", 0) + 1
                time.sleep(3600)
                return
            if a.mode == "race" and u.path == "/v1/status" and not u.query and (st["armed"] or st["swapped"]):
                if not st["swapped"]:
                    st["held"].set()
                    # Held until the owner has clicked Sweep (under "attested").
                    st["clicked"].wait(HOLD_SECS)
                    time.sleep(0.3)
                code, h, data = self.relay("GET")
                body = json.loads(data)
                body["identity_public_key"] = FAKE_PK
                body["identity_address"] = FAKE_ADDR
                st["swapped"] = True
                return self.answer(code, h, json.dumps(body).encode())
            code, h, data = self.relay("GET")
            self.answer(code, h, data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n) if n else b""
            u = urlparse(self.path)
            m = re.fullmatch(r"/v1/sessions/(0x[0-9a-fA-F]{40})/sweep", u.path)
            if st["swapped"] and m:
                auth = json.loads(data)["auth"]
                reply = forged_swept(auth["owner"], auth["nonce"], m.group(1))
                st["forged"].append(u.path)
                return self.answer(200, {"Content-Type": "application/json"}, json.dumps(reply).encode())
            if m:
                st["enclave_asked_sweep"] += 1
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
        if a.mode == "settings":
            # The attestation verified only because any image was accepted: unticked, the
            # page checks again under the new settings.
            obs["trust_badge_before"] = page.locator("#trust").inner_text()
            page.uncheck("#any-image")
            expect(status).to_contain_text("only the expected PCRs accepted", timeout=30000)
            obs["status_after_untick"] = status.inner_text()
            obs["trust_badge_after_untick"] = page.locator("#trust").inner_text()
            obs["trust_detail_after_untick"] = page.locator("#trust-detail").inner_text()
            page.locator("#root-aws").click()
            expect(status).to_contain_text("AWS Nitro Enclaves root will be used", timeout=30000)
            obs["trust_badge_after_aws_root"] = page.locator("#trust").inner_text()
            browser.close()
            print(json.dumps(obs))
            os._exit(0)
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

        page.locator("#sweep-box summary").click()
        if a.mode == "hang":
            st["armed"] = True
            page.click("#refresh")
            page.wait_for_timeout(60000)
            obs["hung_requests"] = st.get("hung", 0)
            obs["busy_after_60s"] = page.evaluate("document.body.getAttribute('aria-busy')")
            obs["status_after_60s"] = status.inner_text()
            obs["revoke_all_enabled_after_60s"] = page.locator("#revoke-all").is_enabled()
            obs["revoke_enabled_after_60s"] = page.locator("#revoke").is_enabled()
            # The host answers again: Revoke all, clicked now, runs (after a refresh in
            # flight gives up) and is done.
            st["disarmed"] = True
            page.click("#revoke-all")
            expect(status).to_contain_text(re.compile("revoked|Revoking every session failed"), timeout=90000)
            obs["revoke_all_status"] = status.inner_text()
            obs["revoke_all_status_class"] = status.get_attribute("class")
            browser.close()
            print(json.dumps(obs))
            os._exit(0)
        # Phase 2: a background refresh is in flight; the page shows "attested" and the
        # action's button is enabled. The owner clicks it.
        button = {"sweep": "#sweep", "update": "#update-btn", "revoke": "#revoke"}[a.action]
        label = {"sweep": "Sweeping", "update": "Updating the policy", "revoke": "Revoking"}[a.action]
        st["armed"] = True
        assert st["held"].wait(40), "no background refresh came"
        obs["trust_badge_at_click"] = page.locator("#trust").inner_text()
        obs["enabled_at_click"] = page.locator(button).is_enabled()
        asked_before = len(asked)
        page.click(button, timeout=5000)
        st["clicked"].set()
        expect(status).not_to_contain_text(label + "…", timeout=60000)
        page.wait_for_timeout(500)
        obs["status"] = status.inner_text()
        obs["status_class"] = status.get_attribute("class")
        obs["sweep_out"] = page.locator("#sweep-out").inner_text() if page.locator("#sweep-out").is_visible() else None
        obs["trust_badge_after"] = page.locator("#trust").inner_text()
        obs["wallet_asked"] = len(asked) - asked_before
        obs["wallet_signed_for_enclave"] = asked[-1]["message"]["enclave"] if len(asked) > asked_before else None
        obs["wallet_signed_action"] = asked[-1]["message"].get("action") if len(asked) > asked_before else None
        obs["forged_replies"] = len(st["forged"])
        obs["enclave_asked_sweep"] = st["enclave_asked_sweep"]
        browser.close()
    srv.shutdown()
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
