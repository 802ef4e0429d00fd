#!/usr/bin/env bash
# Reproducibility check for the enclave image: builds target/eif/bridle.eif in fresh clones
# of one commit (each at its own path, with its own target directory) and requires
# byte-identical EIFs and pcrs.json.
#
#   scripts/eif-repro-check.sh            two fresh clones of HEAD, compared with each other
#   scripts/eif-repro-check.sh DIR        one fresh clone of HEAD, compared with DIR/bridle.eif
#                                         and DIR/pcrs.json (e.g. target/eif of a clean checkout
#                                         of the same commit, as CI does)
#
# Exit status 0 when identical. Needs what `make enclave-image` needs (scripts/install-eif-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$root" rev-parse HEAD)
work=$(mktemp -d /tmp/bridle-repro.XXXXXX)
keep=0
trap '[ $keep = 1 ] || rm -rf "$work"' EXIT
# The xtask program itself (not the image's binaries) may be cached across clones: each
# clone builds its own xtask from its own sources, into one target directory kept for it.
# That directory starts as a hard-linked copy of the checkout's target/debug when there is
# one (CI: `make enclave-image` has just built xtask there), so xtask's dependencies, built
# with the same features, are not compiled again (2 minutes): only xtask itself is.
export CARGO_TARGET_DIR_XTASK="$root/target/repro-xtask"
if [ -d "$root/target/debug/.fingerprint" ]; then
  rm -rf "$CARGO_TARGET_DIR_XTASK"
  mkdir -p "$CARGO_TARGET_DIR_XTASK/debug"
  cp -al "$root/target/debug/deps" "$root/target/debug/build" "$root/target/debug/.fingerprint" \
    "$CARGO_TARGET_DIR_XTASK/debug/" 2>/dev/null || rm -rf "$CARGO_TARGET_DIR_XTASK"
fi

build() { # build NAME → prints the clone's target/eif
  local dir="$work/$1"
  git clone -q --no-local "$root" "$dir"
  git -C "$dir" checkout -q --detach "$commit"
  echo "== building in $dir (commit $commit)" >&2
  local t0=$SECONDS
  (cd "$dir" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR_XTASK" cargo build -q --locked --bin xtask \
     && "$CARGO_TARGET_DIR_XTASK/debug/xtask" enclave-image) > "$work/$1.log" 2>&1 \
    || { tail -40 "$work/$1.log" >&2; echo "build in $dir failed" >&2; exit 1; }
  echo "   $(( SECONDS - t0 )) s" >&2
  echo "$dir/target/eif"
}

if [ $# -ge 1 ]; then
  ref=$(cd "$1" && pwd)
else
  ref=$(build a)
fi
other=$(build b)
status=0
for f in bridle.eif pcrs.json; do
  if cmp -s "$ref/$f" "$other/$f"; then
    echo "identical: $f  sha256 $(sha256sum "$ref/$f" | cut -d' ' -f1)"
  else
    echo "DIFFERENT: $ref/$f vs $other/$f" >&2
    status=1
  fi
done
if [ $status != 0 ]; then
  keep=1
  echo "kept for inspection: $work" >&2
  for f in boot.cpio app.cpio pcrs.json; do
    echo "  $f: $(sha256sum "$ref/$f" | cut -c1-16) vs $(sha256sum "$other/$f" | cut -c1-16)" >&2
  done
fi
[ $status = 0 ] && sed -n 's/^ *"\(PCR[0-9]*\)": "\(.*\)",*$/  \1 \2/p' "$ref/pcrs.json"
exit $status
