# qemu-tests: the emulated board, its scenarios, `make run` and the boot
# benchmark.
#
#   make run [BOARD=...] [REDFISH_PORT=8443 METRICS_PORT=9102 BMC_PORT=9623]
#
# boots the board with its BMC, waits for boardd and the board config's
# workloads to run, prints one line
#   podos ready: redfish=... metrics=... bmc=... password-file=... [workloads=N]
# and runs until Ctrl-C / SIGTERM (to podrun), which stops what it started.
REDFISH_PORT    ?= 8443
METRICS_PORT    ?= 9102
BMC_PORT        ?= 9623
BENCH_BOOT_RUNS ?= 3

.PHONY: run bench-boot
run: build image
	@$(GO) build -o $(BIN)/podrun ./qemu-tests/cmd/podrun
	@exec $(BIN)/podrun -board $(BOARD) -out $(OUT) -redfish-port $(REDFISH_PORT) \
	  -metrics-port $(METRICS_PORT) -bmc-port $(BMC_PORT)

BENCH_TARGETS += bench-boot
bench-boot: image image-bare
	@mkdir -p $(OUT)/bench
	$(GO) run ./qemu-tests/cmd/bootbench -board $(BOARD) -out $(OUT) -bare $(OUT)/bare-uroot \
	  -runs $(BENCH_BOOT_RUNS) -tsv $(OUT)/bench/boot.tsv
