"""A host that leaves one of the owner's sessions out of `GET /v1/owners/{o}/sessions`,
in front of the genuine console: the page must still show that session's entries under a
log "verified in this browser … complete now" — the verified log's own `session_created`
entry names the owner — flag it "not listed by the host", and list it among the owner's
sessions (a review of 2026-12-07 found the audit table filtered by the host's list).

Prints one JSON line of observations for tests/tests/console_lying_host.rs.
"""

import argparse
import json
import os
import re
import subprocess
import urllib.request
from urllib.parse import urlparse

from eth_account import Account
from eth_keys import keys
from playwright.sync_api import expect, sync_playwright

from harness import open_page, owner_wallet



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--bridle", required=True)
    ap.add_argument("--trust-file", required=True)
    ap.add_argument("--owner-key", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    owner = Account.from_key(a.owner_key)
    agent = keys.PrivateKey(os.urandom(32))
    agent_file = os.path.join(a.workdir, "hidden-session-agent.key")
    with open(agent_file, "w") as f:
        json.dump({"kind": "agent", "address": agent.public_key.to_checksum_address(),
                   "public_key": "0x" + agent.public_key.to_compressed_bytes().hex(), "private_key": agent.to_hex()}, f)
    os.chmod(agent_file, 0o600)
    lie = {"hide": False}
    asked = []  # every typed data the page asked the wallet to sign
    obs = {}

    wallet = owner_wallet(owner, asked)

    def lying_sessions(route):
        r = route.fetch()
        if lie["hide"]:
            return route.fulfill(response=r, json=[])
        return route.fulfill(response=r)

    with sync_playwright() as pw:
        browser, page = open_page(pw, a.chromium, wallet)
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
        page.click("#connect")
        wait_status("connected")
        page.fill("#agent-key", "0x" + agent.public_key.to_compressed_bytes().hex())
        page.set_input_files("#policy-file", a.policy)
        page.click("#preview")
        wait_status("read the document you sign")
        page.click("#grant-btn")
        wait_status("granted")
        session = page.locator("#detail-session").inner_text().strip()
        obs["session"] = session

        # The agent signs a transfer (through the host API, as agents do).
        env = dict(os.environ, BRIDLE_HOST=a.url, BRIDLE_TRUST_FILE=a.trust_file)
        p = subprocess.run([a.bridle, "agent", "sign-tx", "--key", agent_file, "--session", session, "--chain-id", "31337",
                            "--nonce", "0", "--to", "0x5FbDB2315678afecb367f032d93F642f64180aa3", "--call", "transfer(address,uint256)",
                            "--arg", "0x000000000000000000000000000000000000dEaD", "--arg", "30000000"], env=env, capture_output=True, text=True)
        obs["agent_signed"] = p.returncode == 0

        page.click("#verify-audit")
        expect(page.locator("#audit-result")).to_contain_text("complete now", timeout=20000)
        wait_status("the audit log verifies")
        obs["audit_table_before"] = page.locator("#audit-table tbody").inner_text()

        # The host now leaves the session out of the owner's list.
        lie["hide"] = True
        page.click("#refresh")
        wait_status("up to date")
        page.click("#verify-audit")
        wait_status("the audit log verifies")
        obs["audit_result"] = page.locator("#audit-result").inner_text()
        obs["audit_table"] = page.locator("#audit-table tbody").inner_text()
        note = page.locator("#audit-sessions")
        obs["audit_sessions_note"] = note.inner_text() if note.count() else None
        obs["sessions_table"] = page.locator("#session-table tbody").inner_text()
        row = page.locator(f'tr[data-session="{session}"]')
        obs["session_row_count"] = row.count()
        obs["session_row"] = row.first.inner_text() if row.count() else None
        obs["session_row_listed"] = row.first.get_attribute("data-listed") if row.count() else None
        # The hidden session can be opened and revoked from the page all the same.
        if row.count():
            row.first.locator("button.open").click()
            expect(page.locator("#detail-session")).to_have_text(session)
            page.click("#revoke")
            expect(status).to_contain_text(re.compile("Revoking failed|revoked"), timeout=30000)
            obs["revoke_hidden_status"] = status.inner_text()
            obs["revoke_hidden_agent"] = asked[-1]["message"]["agent"] if asked and asked[-1]["message"]["action"] == "revoke" else None
        # What the verified log itself says about this owner's sessions.
        obs["log_entries_of_session"] = page.evaluate(
            """s => import('./api.js').then(m => m.auditLog()).then(l => l.entries
                 .filter(e => e.session.toLowerCase() === s.toLowerCase()).map(e => [e.kind, e.detail]))""", session)
        browser.close()
    obs["owner"] = owner.address
    # The enclave's word, from the real host directly.
    with urllib.request.urlopen(f"{a.url}/v1/sessions/{session}") as r:
        obs["real_session_state"] = json.loads(r.read())["session"]["state"]
    obs["agent"] = agent.public_key.to_checksum_address()
    print(json.dumps(obs))


if __name__ == "__main__":
    main()
