#!/usr/bin/env bash
# What `make enclave-image` needs beyond cargo, on a Debian bookworm machine (root, or
# sudo). Idempotent; no prompts; no docker, no nitro-cli.
#  - the x86_64-unknown-linux-musl Rust target (rustup), musl-gcc (AWS-LC's and mimalloc's C code),
#    libssl-dev + pkg-config (the EIF library signs with OpenSSL), make + gcc-12 + libelf
#    (virtio_mmio.ko is rebuilt against the pinned kernel's headers);
#  - the bookworm-backports apt source (the pinned 6.12 cloud kernel comes from there; the
#    archive URI is the one the machine already uses for bookworm), with the Debian archive
#    keyring.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "== rustup target add x86_64-unknown-linux-musl"
    rustup target add x86_64-unknown-linux-musl
  fi
fi

need=()
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
# virtio_mmio.ko is rebuilt against the kernel's headers (xtask/src/kernel.rs).
command -v make >/dev/null 2>&1 || need+=(make)
command -v x86_64-linux-gnu-gcc-12 >/dev/null 2>&1 || need+=(gcc-12)
command -v strip >/dev/null 2>&1 || need+=(binutils)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
dpkg -s libelf1 >/dev/null 2>&1 || need+=(libelf1)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# bookworm-backports, from the archive this machine already uses for bookworm.
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [ -n "$uri" ] || { echo "no bookworm apt source to derive bookworm-backports from" >&2; exit 1; }
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || $SUDO apt-get install -y -q debian-archive-keyring
  echo "== adding bookworm-backports ($uri)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
    | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  $SUDO apt-get update -q
fi
kernel=linux-image-6.12.95+deb12-cloud-amd64
if ! apt-cache show "$kernel" >/dev/null 2>&1; then
  $SUDO apt-get update -q
fi
apt-cache show "$kernel" >/dev/null 2>&1 || { echo "$kernel not in the apt sources" >&2; exit 1; }
echo "enclave image dependencies ready"
