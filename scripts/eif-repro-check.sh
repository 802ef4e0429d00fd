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
# The xtask program itself (not the image's binaries) may be shared across clones: the
# checkout's own, when its xtask sources and lock file are the commit's (CI: a fresh clone
# that `make enclave-image` has just built it in, so nothing is compiled again), else one
# built from each clone into a target directory kept for it.
export CARGO_TARGET_DIR_XTASK="$root/target/repro-xtask"
shared_xtask=""
if git -C "$root" diff --quiet HEAD -- xtask Cargo.toml Cargo.lock \
   && [ -z "$(git -C "$root" ls-files --others --exclude-standard -- xtask)" ]; then
  (cd "$root" && cargo build -q --bin xtask)
  shared_xtask="${CARGO_TARGET_DIR:-$root/target}/debug/xtask"
  echo "== xtask: the checkout's ($shared_xtask; its sources are $commit's)" >&2
fi

build() { # build NAME → prints the clone's target/eif
  local dir="$work/$1"
  git clone -q --no-local "$root" "$dir"
  git -C "$dir" checkout -q --detach "$commit"
  echo "== building in $dir (commit $commit)" >&2
  local t0=$SECONDS
  (cd "$dir" && if [ -n "$shared_xtask" ]; then "$shared_xtask" --workspace "$dir" enclave-image; else
     CARGO_TARGET_DIR="$CARGO_TARGET_DIR_XTASK" cargo build -q --bin xtask \
     && "$CARGO_TARGET_DIR_XTASK/debug/xtask" enclave-image; fi) > "$work/$1.log" 2>&1 \
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
