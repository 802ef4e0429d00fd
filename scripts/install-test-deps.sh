#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain. Idempotent; no prompts.
# Python: eth-account (independent signature recovery, wallet-style EIP-712 signing).
set -euo pipefail
cd "$(dirname "$0")/.."

py_ok() { python3 -c "import eth_account" >/dev/null 2>&1; }
if ! py_ok; then
  echo "== installing Python test dependencies"
  python3 -m pip install --quiet --disable-pip-version-check eth-account
fi
py_ok || { echo "eth-account is not importable after install" >&2; exit 1; }
echo "test dependencies ready"
