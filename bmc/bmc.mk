# bmc/: the poll cost of 64 sensors over IPMI LAN against ipmitool's sdr elist.
BENCH_TARGETS += bench-bmc
.PHONY: bench-bmc
bench-bmc:
	PODOS_BENCH_TSV=$(CURDIR)/$(OUT)/bench/bmc.tsv $(GO) test -count=1 -run TestBenchRows ./bmc/ipmi
