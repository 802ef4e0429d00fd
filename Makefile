# Bridle — see README.md. `make dev` runs it; `make test` runs every test.
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build release dev test test-deps lint fmt bench load load-smoke bench-http-floor bench-enclave bench-enclave-image bench-cluster fuzz fuzz-long check-long clean help

all: build

help:
	@echo "make dev        build, then run a development enclave (mock NSM) and the host on 127.0.0.1:8547"
	@echo "make test       install test dependencies, build the binaries, run every test"
	@echo "make lint       rustfmt --check and clippy -D warnings"
	@echo "make bench      criterion benchmarks, the end-to-end load generator, the enclave alone, the cluster (release)"
	@echo "make check-long the engine against the reference model on 10^6 random sequences (release)"
	@echo "make fuzz       every fuzz target for FUZZ_SECONDS each (nightly, cargo-fuzz); fuzz-long: 30 min each"
	@echo "make enclave-image  the reproducible enclave image: target/eif/bridle.eif + pcrs.json (no docker)"
	@echo "make vm-e2e         boot the image in QEMU and sign through bridle-host over real vsock"
	@echo "make enclave-repro-check   build the image in two fresh clones and compare the bytes"
	@echo "make nitro-check / run-enclave / stop-enclave   Nitro steps (see DEPLOY.md)"

build:
	$(CARGO) build --workspace --bins

release:
	$(CARGO) build --release --workspace --bins

dev: build
	./target/debug/bridle dev

test-deps:
	./scripts/install-test-deps.sh

# End-to-end tests start the real binaries, so they are built first. scripts/test.sh runs
# `cargo test --workspace --no-fail-fast`, with the CPU-bound differential check beside it
# at the lowest priority (see the script).
test: test-deps build
	CARGO='$(CARGO)' ./scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: release
	$(CARGO) bench -p bridle-enclave --bench signing
	$(CARGO) bench -p bridle-attestation
	$(CARGO) bench -p bridle-host --bench audit_copy
	$(MAKE) load
	$(MAKE) bench-http-floor
	$(MAKE) bench-enclave
	$(MAKE) bench-enclave-image
	$(MAKE) bench-cluster

# End-to-end load (issue 12; BENCHMARKS.md, "End to end"): bridle-load starts the release
# enclave and host, grants the sessions and prints the human summary. Against another host:
#   ./target/release/bridle-load --host URL --enclave-key 0x… [--rate R] [--json]   (--help)
LOAD_ARGS ?= --sessions 64 --concurrency 32 --duration 20
LOAD_BINS = --bin bridle-enclave --bin bridle-host --bin bridle-load --bin bridle-enclave-bench --bin bridle-http-floor
load:
	$(CARGO) build --release -p bridle-enclave -p bridle-host -p bridle-tests $(LOAD_BINS)
	BRIDLE_BIN_DIR=target/release ./target/release/bridle-load $(LOAD_ARGS)

# A short debug run for CI: exits 0 only if every request was signed (JSON kept in target/).
# `--bin` without `-p` resolves features over the whole workspace, as `make build` and
# `make test` do, so after them nothing is rebuilt (with `-p` it took 2 min 19 s in CI).
load-smoke:
	$(CARGO) build $(LOAD_BINS)
	set -o pipefail; BRIDLE_BIN_DIR=target/debug ./target/debug/bridle-load --sessions 4 --requests 200 --json \
	  --quiet --raw-secs 0.5 | tee target/load-smoke.json | grep '"ok":200,' >/dev/null
	@echo "load-smoke: 200 of 200 requests signed (target/load-smoke.json)"
	BRIDLE_BIN_DIR=target/debug ./target/debug/bridle-enclave-bench --sessions 4 --connections 2 --pipeline 4 \
	  --requests 200 --rounds 1 --raw-secs 0.2 --json --quiet > target/enclave-bench-smoke.json
	@echo "load-smoke: bridle-enclave-bench signed every request (exit 0; target/enclave-bench-smoke.json)"
	./target/debug/bridle-http-floor --requests 500 --rounds 1 --concurrency 4 --raw-secs 0.1 --json --quiet \
	  > target/http-floor-smoke.json
	@echo "load-smoke: bridle-http-floor answered every request over HTTP and the socket (exit 0; target/http-floor-smoke.json)"

# The enclave alone through its socket, no host (issue 12 items 2 and 3): CPU per request
# against a raw signature, and every core against one (taskset), beside raw k256's scaling.
ENCLAVE_BENCH_ARGS ?= --sessions 64 --connections 8 --pipeline 8 --requests 40000 --rounds 3
bench-enclave:
	$(CARGO) build --release -p bridle-enclave -p bridle-tests --bin bridle-enclave --bin bridle-enclave-bench
	BRIDLE_BIN_DIR=target/release ./target/release/bridle-enclave-bench $(ENCLAVE_BENCH_ARGS)

# Floors, in raw signatures measured in the same run: one HTTP request through the host's
# stack with nothing behind it (issue 12 item 1), and one frame through the enclave's
# connection loop on a Unix socket with nothing decoded, and with one raw signature per
# frame: a server that only frames and signs (item 2).
HTTP_FLOOR_ARGS ?= --concurrency 32 --requests 100000 --rounds 3
bench-http-floor:
	$(CARGO) build --release -p bridle-tests --bin bridle-http-floor
	./target/release/bridle-http-floor $(HTTP_FLOOR_ARGS)

# The same against the image's own static musl binary, the one that runs on Nitro (rebuilt
# by `make enclave-image` first, so it is HEAD's): its libc is not the glibc build's.
IMAGE_BIN_DIR = target/eif-build/x86_64-unknown-linux-musl/release
bench-enclave-image:
	$(MAKE) enclave-image
	$(CARGO) build --release -p bridle-tests --bin bridle-enclave-bench
	BRIDLE_BIN_DIR=$(IMAGE_BIN_DIR) ./target/release/bridle-enclave-bench $(ENCLAVE_BENCH_ARGS)

# Replication's cost (issue 11): a 3-node cluster against one enclave in the same run —
# throughput, memory per session, failover time (BENCHMARKS.md, "Enclave cluster").
bench-cluster: release
	BRIDLE_BIN_DIR=target/release ./target/release/bridle-cluster-bench --requests 30000 --concurrency 64 --sessions 1000 --failovers 5

# The decision core against the independent reference model (model/, RULES.md) on a million
# random sequences; CI runs 10^5 of them in `make test`. Results: SECURITY.md.
DIFF_SEQUENCES ?= 1000000
check-long:
	BRIDLE_DIFF_SEQUENCES=$(DIFF_SEQUENCES) BRIDLE_DIFF_CONCURRENT=2000 $(CARGO) test --release -p bridle-tests \
	  --test differential --test differential_concurrent -- --nocapture

# Coverage-guided fuzzing (needs nightly and `cargo install cargo-fuzz`): the enclave's
# frames, typed data, user operations, calldata, owner envelopes, policy files, attestation
# documents (a stranger's handshake), and the decision core against the reference model.
# Results of 30-minute runs: SECURITY.md.
FUZZ_SECONDS ?= 120
FUZZ_TARGETS ?= enclave_frame typed_data user_operation calldata redemption owner_envelope policy_file sign_path attestation_document
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  len=4096; extra=; case $$t in typed_data|user_operation|redemption) len=65536;; attestation_document) len=65536; extra=-timeout=2;; esac; \
	  (cd fuzz && cargo +nightly fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=$$len $$extra) || exit 1; \
	done
fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=1800

clean:
	$(CARGO) clean

include mk/nitro.mk
