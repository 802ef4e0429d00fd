#!/usr/bin/env bash
# What `make vm-e2e` needs, on a Debian bookworm machine (root, or sudo). Idempotent.
#  - qemu-system-x86 10.0 from bookworm-backports (vhost-user-vsock-pci, memfd backend);
#  - vhost-device-vsock 0.3.0 from crates.io (`cargo install --locked`, kept in ~/.cargo/bin:
#    about 5 minutes the first time, nothing afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
./scripts/install-eif-deps.sh

# `|| true`: without QEMU the pipeline fails, and under `set -e -o pipefail` that would end
# the script here (exit 127) instead of installing it.
qemu_major=$(qemu-system-x86_64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1 || true)
if [ -z "$qemu_major" ] || [ "$qemu_major" -lt 10 ]; then
  echo "== apt-get install -t bookworm-backports qemu-system-x86"
  $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
fi
qemu-system-x86_64 --version | head -1

VHOST_VERSION=0.3.0
if ! vhost-device-vsock --version 2>/dev/null | grep -q "$VHOST_VERSION" \
   && ! "${CARGO_HOME:-$HOME/.cargo}/bin/vhost-device-vsock" --version 2>/dev/null | grep -q "$VHOST_VERSION"; then
  echo "== cargo install vhost-device-vsock $VHOST_VERSION"
  cargo install --locked vhost-device-vsock --version "$VHOST_VERSION"
fi
# The VM test recovers signatures with an independent implementation (eth-account), as
# the other end-to-end tests do (examples/python/requirements.txt).
if ! python3 -c "import eth_account" >/dev/null 2>&1; then
  echo "== installing eth-account"
  python3 -m pip install --quiet --disable-pip-version-check "$(grep '^eth-account' examples/python/requirements.txt)"
fi
echo "VM test dependencies ready"
