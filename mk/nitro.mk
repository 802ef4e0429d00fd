# AWS Nitro Enclaves: build the enclave image (EIF) and run it.
#
# Include from the top-level Makefile:   include mk/nitro.mk
#
#   make enclave-image       the reproducible EIF, without docker or nitro-cli: static musl
#                            bridle-enclave and bridle-init, the pinned Debian 6.12 cloud
#                            kernel, deterministic cpio ramdisks, assembled by the xtask
#                            (aws-nitro-enclaves-image-format) -> target/eif/bridle.eif and
#                            target/eif/pcrs.json (PCR0/1/2, PCR8 if signed, PCR16)
#   make enclave-describe    print the measurements of an EIF (NITRO_EIF), as nitro-cli does
#   make enclave-repro-check build the image in two fresh clones of HEAD: byte-identical?
#   make vm-e2e              boot the image's kernel and ramdisks in QEMU (TCG), virtio-vsock
#                            through vhost-device-vsock, and sign through bridle-host
#   make vm-deps             install QEMU 10 (bookworm-backports), vhost-device-vsock
#   make enclave-pcr16       print the PCR16 (configuration commitment) of the image's
#                            enclave command line (NITRO_ENCLAVE_ARGS); needs only cargo
#   make nitro-check         say whether nitro-cli (and docker) exist here (always exits 0)
#   make run-enclave         run the EIF with nitro-cli (production mode: real PCRs)
#   make run-enclave-debug   run with --debug-mode --attach-console (PCRs are all zeros:
#                            verifiers refuse its documents unless --allow-debug)
#   make stop-enclave        terminate the running Bridle enclave
#   make enclave-image-docker  the former path: docker image + nitro-cli build-enclave
#
# run-enclave* and stop-enclave need nitro-cli (a Nitro-enabled EC2 instance with the Nitro
# CLI); where it does not exist they say so plainly and exit non-zero.

NITRO_DOCKERFILE   ?= attestation/nitro/Dockerfile
NITRO_DOCKER_IMAGE ?= bridle-enclave:latest
NITRO_EIF          ?= target/eif/bridle.eif
EIF_SIGN_CERT      ?=
EIF_SIGN_KEY       ?=
NITRO_CPU_COUNT    ?= 2
NITRO_MEMORY_MIB   ?= 1536
NITRO_ENCLAVE_CID  ?= 16
NITRO_RUST_IMAGE   ?= rust:1.95-alpine
# Run-time options of the image's CMD (attestation/nitro/Dockerfile) that PCR16 commits to
# (--stamp-window, --max-frame; the listening address is not part of it).
NITRO_ENCLAVE_ARGS ?=
CARGO              ?= cargo

DOCKER    ?= docker
NITRO_CLI ?= nitro-cli

# Prints which of the tools $(2) is missing; $(1) = exit status when missing.
define nitro_require_tools
	@missing=""; \
	for t in $(2); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "nitro: not available on this machine:$$missing does not exist here."; \
	  echo "nitro: running AWS Nitro Enclaves needs a Nitro-enabled EC2 instance with the"; \
	  echo "nitro: Nitro CLI (aws-nitro-enclaves-cli) installed; nothing was run."; \
	  exit $(1); \
	else \
	  for t in $(2); do echo "nitro: $$t: $$(command -v $$t)"; done; \
	fi
endef

.PHONY: nitro-check enclave-image enclave-image-docker eif-deps enclave-describe enclave-repro-check \
        vm-deps vm-e2e enclave-pcrs enclave-pcr16 run-enclave run-enclave-check run-enclave-debug stop-enclave

nitro-check:
	$(call nitro_require_tools,0,$(NITRO_CLI) $(DOCKER))

run-enclave-check: nitro-check

eif-deps:
	./scripts/install-eif-deps.sh

# The docker-free, reproducible image (see ATTESTATION.md, "Building the enclave image").
# xtask is run with `--bin xtask`, not `-p xtask`: features are then resolved over the whole
# workspace, as `make build` resolves them, and after it nothing is rebuilt (`-p` rebuilt
# serde, clap and the other dependencies whose features differ: 2 minutes). The image's own
# binaries are built by xtask apart, with their own settings.
enclave-image: eif-deps
	$(CARGO) run -q --bin xtask -- enclave-image $(if $(EIF_SIGN_CERT),--sign-cert $(EIF_SIGN_CERT) --sign-key $(EIF_SIGN_KEY))

enclave-describe:
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	@$(CARGO) run -q --bin xtask -- describe-eif $(NITRO_EIF)

enclave-repro-check: eif-deps
	./scripts/eif-repro-check.sh

vm-deps: eif-deps
	./scripts/install-vm-deps.sh

# Boot test: the EIF's kernel and ramdisks in QEMU, the walkthrough over real vsock.
vm-e2e: vm-deps build enclave-image
	$(CARGO) run -q --bin xtask -- vm-e2e

# The former path, kept as an alternative where docker and nitro-cli exist: docker image,
# then nitro-cli build-enclave (its own kernel and init; other PCRs than enclave-image's).
enclave-image-docker:
	$(call nitro_require_tools,1,$(DOCKER) $(NITRO_CLI))
	$(DOCKER) build -f $(NITRO_DOCKERFILE) --build-arg RUST_IMAGE=$(NITRO_RUST_IMAGE) \
	  -t $(NITRO_DOCKER_IMAGE) .
	$(NITRO_CLI) build-enclave --docker-uri $(NITRO_DOCKER_IMAGE) --output-file bridle-docker.eif \
	  | tee bridle-docker.eif.measurements.json
	@echo "nitro: bridle-docker.eif built. Expected PCRs for 'bridle verify attestation':"
	@sed -n 's/.*"\(PCR[0-2]\)": *"\([0-9a-fA-F]*\)".*/  --pcr \1=\2/p' bridle-docker.eif.measurements.json \
	  | sed 's/--pcr PCR/--pcr /'
	@$(CARGO) run -q -p bridle-enclave -- --print-pcr16 $(NITRO_ENCLAVE_ARGS) | sed -n 's/^pcr16=/  --pcr 16=/p'

# PCR16 = SHA384(0^48 || SHA384(configuration)): see ATTESTATION.md, "PCR16".
enclave-pcr16:
	@$(CARGO) run -q -p bridle-enclave -- --print-pcr16 $(NITRO_ENCLAVE_ARGS)

enclave-pcrs:
	$(call nitro_require_tools,1,$(NITRO_CLI))
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	$(NITRO_CLI) describe-eif --eif-path $(NITRO_EIF)

run-enclave:
	$(call nitro_require_tools,1,$(NITRO_CLI))
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	$(NITRO_CLI) run-enclave --eif-path $(NITRO_EIF) --cpu-count $(NITRO_CPU_COUNT) \
	  --memory $(NITRO_MEMORY_MIB) --enclave-cid $(NITRO_ENCLAVE_CID)
	$(NITRO_CLI) describe-enclaves

run-enclave-debug:
	$(call nitro_require_tools,1,$(NITRO_CLI))
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	@echo "nitro: debug mode: PCR0..2 will be all zeros and attestation refused unless --allow-debug"
	$(NITRO_CLI) run-enclave --eif-path $(NITRO_EIF) --cpu-count $(NITRO_CPU_COUNT) \
	  --memory $(NITRO_MEMORY_MIB) --enclave-cid $(NITRO_ENCLAVE_CID) --debug-mode --attach-console

stop-enclave:
	$(call nitro_require_tools,1,$(NITRO_CLI))
	$(NITRO_CLI) terminate-enclave --all
