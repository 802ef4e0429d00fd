# AWS Nitro Enclaves: build the enclave image (EIF) and run it.
#
# Include from the top-level Makefile:   include mk/nitro.mk
#
#   make nitro-check         say whether docker and nitro-cli exist here (always exits 0)
#   make enclave-image       static musl enclave binary -> docker image -> bridle.eif,
#                            then print PCR0/1/2 (the values verifiers must expect)
#   make enclave-pcrs        print the measurements of an existing bridle.eif
#   make enclave-pcr16       print the PCR16 (configuration commitment) of the image's
#                            enclave command line (NITRO_ENCLAVE_ARGS); needs only cargo
#   make run-enclave         run bridle.eif (production mode: real PCRs)
#   make run-enclave-debug   run with --debug-mode --attach-console (PCRs are all zeros:
#                            verifiers refuse its documents unless --allow-debug)
#   make stop-enclave        terminate the running Bridle enclave
#
# enclave-image, run-enclave* and stop-enclave first check that docker and nitro-cli
# exist; where they don't (any machine that is not a Nitro-enabled EC2 instance with
# the Nitro CLI installed), they say so plainly and exit non-zero. nitro-check only
# reports and exits 0.

NITRO_DOCKERFILE   ?= attestation/nitro/Dockerfile
NITRO_DOCKER_IMAGE ?= bridle-enclave:latest
NITRO_EIF          ?= bridle.eif
NITRO_CPU_COUNT    ?= 2
NITRO_MEMORY_MIB   ?= 1024
NITRO_ENCLAVE_CID  ?= 16
NITRO_RUST_IMAGE   ?= rust:1.95-alpine
# Run-time options of the image's CMD (attestation/nitro/Dockerfile) that PCR16 commits to
# (--stamp-window, --max-frame; the listening address is not part of it).
NITRO_ENCLAVE_ARGS ?=
CARGO              ?= cargo

DOCKER    ?= docker
NITRO_CLI ?= nitro-cli

# Prints which of docker / nitro-cli is missing; $(1) = exit status when missing.
define nitro_require_tools
	@missing=""; \
	command -v $(DOCKER) >/dev/null 2>&1 || missing="$$missing docker"; \
	command -v $(NITRO_CLI) >/dev/null 2>&1 || missing="$$missing nitro-cli"; \
	if [ -n "$$missing" ]; then \
	  echo "nitro: not available on this machine:$$missing does not exist here."; \
	  echo "nitro: AWS Nitro Enclaves need a Nitro-enabled EC2 instance with docker and the"; \
	  echo "nitro: Nitro CLI (aws-nitro-enclaves-cli) installed; nothing was built or run."; \
	  exit $(1); \
	else \
	  echo "nitro: docker: $$(command -v $(DOCKER)); nitro-cli: $$(command -v $(NITRO_CLI))"; \
	fi
endef

.PHONY: nitro-check enclave-image enclave-image-check enclave-pcrs enclave-pcr16 run-enclave \
        run-enclave-check run-enclave-debug stop-enclave

nitro-check:
	$(call nitro_require_tools,0)

enclave-image-check: nitro-check
run-enclave-check: nitro-check

enclave-image:
	$(call nitro_require_tools,1)
	$(DOCKER) build -f $(NITRO_DOCKERFILE) --build-arg RUST_IMAGE=$(NITRO_RUST_IMAGE) \
	  -t $(NITRO_DOCKER_IMAGE) .
	$(NITRO_CLI) build-enclave --docker-uri $(NITRO_DOCKER_IMAGE) --output-file $(NITRO_EIF) \
	  | tee $(NITRO_EIF).measurements.json
	@echo "nitro: $(NITRO_EIF) built. Expected PCRs for 'bridle verify attestation':"
	@sed -n 's/.*"\(PCR[0-2]\)": *"\([0-9a-fA-F]*\)".*/  --pcr \1=\2/p' $(NITRO_EIF).measurements.json \
	  | sed 's/--pcr PCR/--pcr /'
	@$(CARGO) run -q -p bridle-enclave -- --print-pcr16 $(NITRO_ENCLAVE_ARGS) | sed -n 's/^pcr16=/  --pcr 16=/p'

# PCR16 = SHA384(0^48 || SHA384(configuration)): see ATTESTATION.md, "PCR16".
enclave-pcr16:
	@$(CARGO) run -q -p bridle-enclave -- --print-pcr16 $(NITRO_ENCLAVE_ARGS)

enclave-pcrs:
	$(call nitro_require_tools,1)
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	$(NITRO_CLI) describe-eif --eif-path $(NITRO_EIF)

run-enclave:
	$(call nitro_require_tools,1)
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	$(NITRO_CLI) run-enclave --eif-path $(NITRO_EIF) --cpu-count $(NITRO_CPU_COUNT) \
	  --memory $(NITRO_MEMORY_MIB) --enclave-cid $(NITRO_ENCLAVE_CID)
	$(NITRO_CLI) describe-enclaves

run-enclave-debug:
	$(call nitro_require_tools,1)
	@test -f $(NITRO_EIF) || { echo "nitro: $(NITRO_EIF) does not exist: run 'make enclave-image'"; exit 1; }
	@echo "nitro: debug mode: PCR0..2 will be all zeros and attestation refused unless --allow-debug"
	$(NITRO_CLI) run-enclave --eif-path $(NITRO_EIF) --cpu-count $(NITRO_CPU_COUNT) \
	  --memory $(NITRO_MEMORY_MIB) --enclave-cid $(NITRO_ENCLAVE_CID) --debug-mode --attach-console

stop-enclave:
	$(call nitro_require_tools,1)
	$(NITRO_CLI) terminate-enclave --all
