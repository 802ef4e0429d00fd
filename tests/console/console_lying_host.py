"""The genuine console in Chromium in front of a host API that lies about two fields the
page shows beside checked badges: the status's `identity_address` (beside "attested") and a
stored session's `agent` (beside "signed by the enclave", and signed into Revoke) — a
review of 2026-12-07 found both shown and the agent signed.

Playwright's routing stands in for the lying host: it fetches the real answer from
`bridle dev` and rewrites only the fields named below. Prints one JSON line of observations;
tests/tests/console_lying_host.rs asserts on them.
"""

import argparse
import json
import re
import sys
from urllib.parse import urlparse

from eth_account import Account
from playwright.sync_api import expect, sync_playwright

from harness import open_page, owner_wallet


FAKE_IDENTITY = "0x" + "ee" * 20
FAKE_AGENT = "0x" + "bb" * 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--owner-key", required=True)
    ap.add_argument("--agent-public-key", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    owner = Account.from_key(a.owner_key)
    asked = []
    lie = {"agent": False}
    obs = {}

    wallet = owner_wallet(owner, asked)

    def lying_status(route):
        # The plain /v1/status (the host's own facts): a false identity address beside the
        # genuine identity public key. Signed statuses (with a nonce) pass unchanged.
        u = urlparse(route.request.url)
        if u.path == "/v1/status" and not u.query:
            r = route.fetch()
            body = r.json()
            body["identity_address"] = FAKE_IDENTITY
            return route.fulfill(response=r, json=body)
        return route.continue_()

    def lying_sessions(route):
        r = route.fetch()
        body = r.json()
        if lie["agent"] and isinstance(body, list):
            for row in body:
                row["agent"] = FAKE_AGENT  # the stored row's agent; the signed binding untouched
        return route.fulfill(response=r, json=body)

    with sync_playwright() as pw:
        browser, page = open_page(pw, a.chromium, wallet)
        page.route(lambda url: urlparse(url).path == "/v1/status", lying_status)
        page.route(lambda url: urlparse(url).path.startswith("/v1/owners/") and urlparse(url).path.endswith("/sessions"), lying_sessions)
        status = page.locator("#status")

        def wait_status(text, timeout=30000):
            expect(status).to_contain_text(text, timeout=timeout)

        page.goto(a.url + "/ui/")
        expect(page.locator("#identity")).to_contain_text("0x", timeout=15000)
        page.locator("#trust-settings summary").click()
        page.set_input_files("#root-file", a.root)
        wait_status("will be used")
        page.check("#any-image")
        page.click("#verify-attestation")
        wait_status("attestation verified in this browser")
        expect(page.locator("#trust")).to_have_text("attested")
        obs["trust_badge"] = page.locator("#trust").inner_text()
        obs["identity_shown"] = page.locator("#identity").inner_text()
        note = page.locator("#identity-note")
        obs["identity_note"] = note.inner_text() if note.count() else None
        obs["identity_attested"] = page.evaluate(
            "fetch('/v1/status?real=1').then(r => r.json())"
            ".then(s => import('./bytes.js').then(m => m.addressOfPublicKey(m.hexToBytes(s.identity_public_key))))")

        # Grant a session (the wallet signs with the attested identity as `enclave`).
        page.click("#connect")
        wait_status("connected")
        page.fill("#agent-key", a.agent_public_key)
        page.set_input_files("#policy-file", a.policy)
        page.click("#preview")
        wait_status("read the document you sign")
        page.click("#grant-btn")
        wait_status("granted")
        obs["grant_enclave_signed"] = asked[-1]["message"]["enclave"]
        session = page.locator("#detail-session").inner_text().strip()
        obs["session"] = session

        # The host now lists the session with another agent; its binding stays genuine.
        lie["agent"] = True
        page.click("#refresh")
        wait_status("up to date")
        row = page.locator(f'tr[data-session="{session}"]')
        obs["row_binding_cell"] = row.locator("td").nth(4).inner_text()
        obs["row_agent_title"] = row.locator("td").nth(1).get_attribute("title")
        obs["row_agent_cell"] = row.locator("td").nth(1).inner_text()
        obs["agent_in_signed_status"] = page.locator("#detail-body dl.facts dd").nth(2).inner_text()
        # Revoking this row: the wallet is asked to show the host's agent.
        page.click("#revoke")
        expect(status).to_contain_text(re.compile("Revoking failed|revoked"), timeout=30000)
        obs["revoke_wallet_agent"] = asked[-1]["message"]["agent"] if asked[-1]["message"]["action"] == "revoke" else None
        obs["revoke_status"] = status.inner_text()
        browser.close()

    obs["fake_identity"] = FAKE_IDENTITY
    obs["fake_agent"] = FAKE_AGENT
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
