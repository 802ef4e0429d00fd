#!/usr/bin/env bash
# CI's image stage, run by .ci/run beside the tests at idle priority: the VM's tools, the
# enclave image (target/eif) and its byte-identical rebuild in a second fresh clone
# (scripts/eif-repro-check.sh). The apt installs it needs are done before it starts
# (`make test-deps eif-deps`): apt takes one lock, and the tests' installs hold it too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
t0=$SECONDS
./scripts/install-vm-deps.sh
echo "   vm-deps: $(( SECONDS - t0 )) s"; t0=$SECONDS
# The xtask in a target directory of its own: the tests hold target/debug's lock.
CARGO_TARGET_DIR=target/ci-xtask cargo build -q -p xtask
target/ci-xtask/debug/xtask enclave-image
echo "   enclave-image: $(( SECONDS - t0 )) s"; t0=$SECONDS
./scripts/eif-repro-check.sh target/eif
echo "   reproducibility: $(( SECONDS - t0 )) s"
