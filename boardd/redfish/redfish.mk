# boardd/redfish: the Redfish service benchmark (boardd/redfish/internal/bench).
# bench-redfish serves the emulated board's Sensors collection through the
# Redfish service (TLS, Basic auth) and, on another port with the same TLS
# config, through a plain net/http handler writing the same bytes; a Go load
# generator (REDFISH_BENCH_CONNS keep-alive connections, REDFISH_BENCH_WINDOW
# per target, in 5 alternating rounds) measures req/s and p99. Rows:
# throughput ratio (target >= 0.6) and p99 (target <= 10 ms) in
# $(OUT)/bench/redfish.tsv.
BENCH_TARGETS += bench-redfish

REDFISH_BENCH_WINDOW ?= 10s
REDFISH_BENCH_CONNS  ?= 64

.PHONY: bench-redfish
bench-redfish:
	@mkdir -p $(OUT)/bench
	@rm -f $(OUT)/bench/redfish.tsv
	$(GO) run ./boardd/redfish/internal/bench -config board-configs/$(BOARD).yaml \
	  -out $(OUT)/bench/redfish.tsv -duration $(REDFISH_BENCH_WINDOW) -conns $(REDFISH_BENCH_CONNS)
