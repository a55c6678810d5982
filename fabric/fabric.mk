# fabric: the PCIe fabric watcher's benchmark. bench-fabric boots the
# emulated board's PCIe switch under QEMU (fabric/internal/qemuboard) twice
# and times QMP device_del to the guest's "device-missing" finding: with
# kernel uevents (podos) and with the same watcher polling every 5 s
# (baseline), median of 7 removals each.
BENCH_TARGETS += bench-fabric

.PHONY: bench-fabric
bench-fabric:
	@mkdir -p $(OUT)/bench
	FABRIC_BENCH_OUT=$(abspath $(OUT)/bench/fabric.tsv) $(GO) test -count=1 -timeout 20m -run '^TestQEMUFabricBench$$' -v ./fabric/ | grep -E '^(---|ok|FAIL|\s+qemu_test)' || true
	@test -s $(OUT)/bench/fabric.tsv
