# Bridle — see README.md. `make dev` runs it; `make test` runs every test.
CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build release dev test test-deps lint fmt bench load fuzz clean help

all: build

help:
	@echo "make dev        build, then run a development enclave (mock NSM) and the host on 127.0.0.1:8547"
	@echo "make test       install test dependencies, build the binaries, run every test"
	@echo "make lint       rustfmt --check and clippy -D warnings"
	@echo "make bench      criterion benchmarks and the end-to-end load generator (release)"
	@echo "make fuzz       fuzz the enclave frame decoder and the policy parser (nightly, cargo-fuzz)"
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

# End-to-end tests start the real binaries, so they are built first.
test: test-deps build
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: release
	$(CARGO) bench -p bridle-enclave --bench signing
	$(CARGO) bench -p bridle-attestation
	$(MAKE) load

load: release
	BRIDLE_BIN_DIR=target/release ./target/release/bridle-load --requests 4000 --concurrency 16

# Coverage-guided fuzzing of the decoders (needs nightly and `cargo install cargo-fuzz`).
FUZZ_SECONDS ?= 120
fuzz:
	cd fuzz && cargo +nightly fuzz run -O enclave_frame -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	cd fuzz && cargo +nightly fuzz run -O policy_file -- -max_total_time=$(FUZZ_SECONDS) -max_len=2048

clean:
	$(CARGO) clean

include mk/nitro.mk
