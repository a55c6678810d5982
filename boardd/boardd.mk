# boardd: the core daemon's benchmark (boardd/internal/bench).
# bench-boardd runs bin/boardd against ipmi_sim (64 synthetic sensors over
# IPMI LAN, 1 Hz) for BOARDD_BENCH_WINDOW, then a lean build without
# workloads (-tags noworkloads) for as long, with `ipmitool sdr elist`
# once a second as the baseline; then it times BOARDD_BENCH_SAMPLES
# reading changes until /metrics and the Redfish SSE event show them.
BENCH_TARGETS += bench-boardd

BOARDD_BENCH_WINDOW  ?= 60s
BOARDD_BENCH_SAMPLES ?= 40

.PHONY: bench-boardd
bench-boardd: build
	@mkdir -p $(OUT)/bench
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -tags noworkloads -o $(OUT)/bench/boardd-noworkloads ./boardd/cmd/boardd
	$(GO) run ./boardd/internal/bench --boardd $(BIN)/boardd --lean-boardd $(OUT)/bench/boardd-noworkloads \
	  --out $(OUT)/bench/boardd.tsv --duration $(BOARDD_BENCH_WINDOW) --samples $(BOARDD_BENCH_SAMPLES)
