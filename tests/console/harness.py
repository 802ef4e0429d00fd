"""Shared by the console's browser tests: the owner's test wallet (eth_account signing
`eth_signTypedData_v4` with the owner's key) installed as `window.ethereum`, and Chromium
opened on a page that has it."""

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import expect

from eth_account import Account
from eth_account.messages import encode_typed_data

WALLET = """
(() => {
  window.ethereum = {
    request: async ({ method, params }) => {
      const r = JSON.parse(await window.bridleTestWallet(method, JSON.stringify(params ?? [])));
      if (r.error) { const e = new Error(r.error.message); e.code = r.error.code; throw e; }
      return r.result;
    },
    on: () => {}, removeListener: () => {},
  };
})();
"""


def owner_wallet(owner, asked):
    """The wallet's answers for `owner` (an eth_account account); every typed data the page
    asks it to sign is appended to `asked`."""

    def wallet(method, params_json):
        params = json.loads(params_json)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps({"result": [owner.address]})
        if method == "eth_signTypedData_v4":
            td = json.loads(params[1])
            asked.append(td)
            signed = Account.sign_message(encode_typed_data(full_message=td), owner.key)
            return json.dumps({"result": "0x" + signed.signature.hex().removeprefix("0x")})
        return json.dumps({"error": {"code": 4200, "message": f"unsupported {method}"}})

    return wallet


def open_page(pw, chromium, wallet, **context):
    """Chromium (headless) with `wallet` as the page's `window.ethereum`: (browser, page)."""
    browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
    page = browser.new_context(**context).new_page()
    page.expose_function("bridleTestWallet", wallet)
    page.add_init_script(WALLET)
    return browser, page


class Relay(BaseHTTPRequestHandler):
    """A host in front of the real one (`target`): `relay` asks it, `answer` replies."""

    protocol_version = "HTTP/1.1"
    target = ""

    def log_message(self, *args):
        pass

    def relay(self, method, body=None):
        req = urllib.request.Request(self.target + self.path, data=body, method=method)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection", "accept-encoding"):
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def answer(self, code, headers, data):
        self.send_response(code)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(handler):
    """Serve `handler` on a free local port, in the background: its URL and the server."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


def attest(page, url, root, wait_status):
    """Open the console at `url` and verify the enclave's attestation in the page, against
    the development root `root` and any image (the development enclave's)."""
    page.goto(url + "/ui/")
    expect(page.locator("#identity")).to_contain_text("0x", timeout=15000)
    page.locator("#trust-settings summary").click()
    page.set_input_files("#root-file", root)
    wait_status("will be used")
    page.check("#any-image")
    page.click("#verify-attestation")
    wait_status("attestation verified in this browser")
