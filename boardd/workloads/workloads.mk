# boardd/workloads: static containerd, its runc shim and runc; the demo
# OCI image; the workloads benchmark.
#
#   make containerd-bins  -> out/bin/{containerd,containerd-shim-runc-v2,runc}
#   make demo-image       -> out/images/demo.tar (podos.dev/demo:latest)
#   make bench-workloads  -> out/bench/workloads.tsv
#
# The binaries are rebuilt only when one is missing or the module versions
# in go.mod changed (about 170 s on 2 cores).

CTRD_BINS    := $(OUT)/bin/containerd $(OUT)/bin/containerd-shim-runc-v2 $(OUT)/bin/runc
CTRD_STAMP   := $(OUT)/bin/.containerd-versions
# A board runs plain containers on containerd's own API: no CRI (Kubernetes),
# no btrfs/devmapper/zfs snapshotters, no tracing exporter, no systemd
# cgroup driver. Smaller binary for the board image (31 MB, not 39 MB).
CTRD_TAGS    := no_cri no_btrfs no_devmapper no_zfs no_tracing no_systemd
DEMO_IMAGE   := $(OUT)/images/demo.tar
DEMO_SOURCES := $(wildcard boardd/workloads/demo/heartbeat/*.go boardd/workloads/demo/mkimage/*.go boardd/workloads/ociarchive/*.go)

.PHONY: containerd-bins demo-image bench-workloads

containerd-bins:
	@mkdir -p $(OUT)/bin
	@want="$$($(GO) list -m -f '{{.Path}}@{{.Version}}' github.com/containerd/containerd/v2 github.com/opencontainers/runc | tr '\n' ' ')tags=$(CTRD_TAGS)"; \
	if [ -f $(CTRD_STAMP) ] && [ "$$(cat $(CTRD_STAMP))" = "$$want" ] && ls $(CTRD_BINS) >/dev/null 2>&1; then \
	  echo "containerd-bins: up to date ($$want)"; exit 0; fi; \
	echo "containerd-bins: building $$want"; \
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(CTRD_TAGS)' -ldflags='-s -w' -o $(OUT)/bin/containerd github.com/containerd/containerd/v2/cmd/containerd && \
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(CTRD_TAGS)' -ldflags='-s -w' -o $(OUT)/bin/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 && \
	CGO_ENABLED=1 $(GO) build -trimpath -tags 'osusergo netgo' -ldflags='-s -w -extldflags -static' -o $(OUT)/bin/runc github.com/opencontainers/runc && \
	echo "$$want" > $(CTRD_STAMP)

demo-image: $(DEMO_IMAGE)

$(DEMO_IMAGE): $(DEMO_SOURCES)
	@mkdir -p $(OUT)/images $(OUT)/build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(OUT)/build/heartbeat ./boardd/workloads/demo/heartbeat
	$(GO) run ./boardd/workloads/demo/mkimage -bin $(OUT)/build/heartbeat -o $@

bench-workloads: containerd-bins demo-image
	@mkdir -p $(OUT)/bench
	$(GO) run ./boardd/workloads/bench -bin $(OUT)/bin -image $(abspath $(DEMO_IMAGE)) -o $(OUT)/bench/workloads.tsv

TEST_PREREQS  += containerd-bins demo-image
BENCH_TARGETS += bench-workloads
