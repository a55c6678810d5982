# podos: build, test, run and benchmark.
#
# `make run` and `make test` install everything they need on a fresh
# Debian machine (as root). Each concern adds its targets in its own
# fragment, included below.

SHELL      := /bin/bash
GO         ?= go
BOARD      ?= emulated-ruggedpod
export GOFLAGS := -mod=mod -buildvcs=false
export SOURCE_DATE_EPOCH ?= 1767225600

BIN        := bin
OUT        := out

# Debian packages that the tests and the emulated board need.
APT_PKGS := wrk qemu-system-x86 linux-image-amd64 openipmi ipmitool swtpm swtpm-tools \
            prometheus redfishtool cpio xz-utils zstd iproute2 procps ca-certificates

# Each concern's fragment (initramfs/image.mk, qemu-tests/qemu.mk, ...) adds
# targets and may append to TEST_PREREQS and BENCH_TARGETS.
include $(sort $(wildcard */*.mk */*/*.mk))

.PHONY: all deps build test unit-test bench run clean vet fuzz

all: build

# deps installs the apt packages that are missing and downloads Go modules.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q $$missing; \
	fi
	$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/boardd ./boardd/cmd/boardd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/boardctl ./boardd/cmd/boardctl

vet:
	$(GO) vet ./...

# test runs every test, the integration ones against real ipmi_sim,
# containerd, swtpm and QEMU. CI=true turns a missing tool into a failure.
test: deps build $(TEST_PREREQS)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 75m $(GOTESTFLAGS) ./...

clean:
	rm -rf $(BIN) $(OUT)


# bench runs every concern's benchmark (BENCH_TARGETS, from the fragments).
# Each writes rows to $(OUT)/bench/<name>.tsv with the columns
#   metric  podos  baseline-name  baseline  ratio  target  verdict
# measured in this same run; bench prints them as one table.
bench: deps build
	@rm -rf $(OUT)/bench && mkdir -p $(OUT)/bench
	@for t in $(BENCH_TARGETS); do $(MAKE) --no-print-directory $$t || echo -e "$$t\tFAILED\t-\t-\t-\t-\tFAIL" >> $(OUT)/bench/failed.tsv; done
	@echo; ( echo -e "metric\tpodos\tbaseline\tbaseline value\tratio\ttarget\tverdict"; cat $(OUT)/bench/*.tsv 2>/dev/null ) | column -t -s $$'\t' | tee $(OUT)/bench/table.txt
