#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain. Idempotent; no prompts.
#  - Python: eth-account (independent recovery, wallet-style EIP-712), web3.py and
#    cryptography (the web3.py client helper) — examples/python/requirements.txt;
#    the MCP SDK (a client for `bridle mcp`), openapi-spec-validator and jsonschema (the
#    host's /openapi.json and replies against it) — tests/py/requirements.txt
#  - npm: viem, ethers, @noble/*, tsx (examples/ts); anvil and solc-js (tests/js);
#    @account-abstraction/contracts 0.7 (EntryPoint), OpenZeppelin (tests/fixtures/userop).
#    Lock files are committed: `npm ci` is deterministic.
#  - apt: postgresql (the host store's tests run against a real PostgreSQL server,
#    tests/src/postgres.rs; with CI=true a missing server fails them).
#  - apt: chromium, and pip: playwright (tests/console/requirements.txt) for the owner
#    console's browser test (tests/tests/console_ui.rs); Playwright drives the system
#    Chromium, it downloads no browser.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import web3, eth_account, cryptography" >/dev/null 2>&1; then
  echo "== installing Python test dependencies"
  python3 -m pip install --quiet --disable-pip-version-check -r examples/python/requirements.txt
fi
python3 -c "import web3, eth_account, cryptography" || { echo "Python test dependencies missing after install" >&2; exit 1; }
if ! python3 -c "import mcp, openapi_spec_validator, jsonschema" >/dev/null 2>&1; then
  echo "== installing Python test dependencies (tests/py: mcp, openapi-spec-validator, jsonschema)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
fi
python3 -c "import mcp, openapi_spec_validator, jsonschema" || { echo "tests/py dependencies missing after install" >&2; exit 1; }

if [ ! -x examples/ts/node_modules/.bin/tsx ]; then
  echo "== installing examples/ts (viem, ethers, noble, tsx)"
  npm ci --prefix examples/ts --no-audit --no-fund
fi
if [ ! -x tests/js/node_modules/.bin/anvil ]; then
  echo "== installing tests/js (anvil, solc-js)"
  npm ci --prefix tests/js --no-audit --no-fund
fi
if [ ! -d tests/fixtures/userop/node_modules/@account-abstraction ]; then
  echo "== installing tests/fixtures/userop (EntryPoint v0.7 artifacts, OpenZeppelin, viem)"
  npm ci --prefix tests/fixtures/userop --no-audit --no-fund
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing PostgreSQL (apt: postgresql)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "PostgreSQL server binaries missing after install" >&2; exit 1; }
if ! python3 -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "== installing Playwright for Python (the console's browser test; no browser download)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/console/requirements.txt
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Chromium (apt: chromium)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
fi
[ -x /usr/bin/chromium ] && python3 -c "import playwright.sync_api" || { echo "chromium or Playwright missing after install" >&2; exit 1; }
tests/js/node_modules/.bin/anvil --version | head -1
echo "test dependencies ready"
