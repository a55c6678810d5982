# boardd: the core daemon's benchmark (boardd/internal/bench).
# bench-boardd runs bin/boardd against ipmi_sim (64 synthetic sensors over
# IPMI LAN, 1 Hz) for BOARDD_BENCH_WINDOW, with `ipmitool sdr elist` once a
# second as the baseline, then times BOARDD_BENCH_SAMPLES reading changes
# until /metrics and the Redfish SSE event show them.
BENCH_TARGETS += bench-boardd

BOARDD_BENCH_WINDOW  ?= 60s
BOARDD_BENCH_SAMPLES ?= 40

.PHONY: bench-boardd
bench-boardd: build
	@mkdir -p $(OUT)/bench
	$(GO) run ./boardd/internal/bench --boardd $(BIN)/boardd --out $(OUT)/bench/boardd.tsv \
	  --duration $(BOARDD_BENCH_WINDOW) --samples $(BOARDD_BENCH_SAMPLES)
