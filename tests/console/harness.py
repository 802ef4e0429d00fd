"""Shared by the console's browser tests: the owner's test wallet (eth_account signing
`eth_signTypedData_v4` with the owner's key) installed as `window.ethereum`, and Chromium
opened on a page that has it."""

import json

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
