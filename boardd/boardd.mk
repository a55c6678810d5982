# boardd: the board daemon's second binary and its benchmark.
#
# bin/boardd (boardd/cmd/boardd) links everything but the workloads;
# `boardd --workloads` execs bin/boardd-workloads (boardd/cmd/boardd-workloads,
# the same daemon with the containerd client linked in), so a board that
# only watches its hardware never pays for the containerd client (~10 MB RSS).
#
# bench-boardd runs bin/boardd against ipmi_sim (64 synthetic sensors over
# IPMI LAN, 1 Hz) for BOARDD_BENCH_WINDOW, then bin/boardd-workloads (without
# --workloads: what the workloads binary costs before it runs any) for as
# long, with `ipmitool sdr elist` once a second as the baseline; then it
# times BOARDD_BENCH_SAMPLES reading changes until /metrics and the Redfish
# SSE event show them.
BENCH_TARGETS += bench-boardd

BOARDD_BENCH_WINDOW  ?= 60s
BOARDD_BENCH_SAMPLES ?= 40

build: boardd-workloads

.PHONY: boardd-workloads
boardd-workloads: deps
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/boardd-workloads ./boardd/cmd/boardd-workloads

.PHONY: bench-boardd
bench-boardd: build
	@mkdir -p $(OUT)/bench
	$(GO) run ./boardd/internal/bench --boardd $(BIN)/boardd --workloads-boardd $(BIN)/boardd-workloads \
	  --out $(OUT)/bench/boardd.tsv --duration $(BOARDD_BENCH_WINDOW) --samples $(BOARDD_BENCH_SAMPLES)
