package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNICChain(t *testing.T) {
	files := []string{
		"kernel/drivers/virtio/virtio.ko",
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/block/virtio_blk.ko",
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
	}
	want := map[string]string{
		"kernel/drivers/net/virtio_net.ko":                   "kernel/drivers/net/net_failover.ko",
		"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko": "kernel/drivers/net/virtio_net.ko",
	}
	if got := nicChain(files); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReadBoot(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "boot.json")
	os.WriteFile(good, []byte(`{"modules":["ipmi_si"],"network":{"interface":"eth0","mode":"dhcp"},"persistent":"/dev/vda","watchdog":"/dev/watchdog0"}`), 0o644)
	b, err := readBoot(good)
	if err != nil || b.Persistent != "/dev/vda" || b.Watchdog != "/dev/watchdog0" || b.Network.Mode != "dhcp" {
		t.Fatalf("readBoot = %+v, %v", b, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"modules": 3}`), 0o644)
	if _, err := readBoot(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("bad boot.json: %v", err)
	}
	if _, err := readBoot(filepath.Join(dir, "none.json")); err == nil {
		t.Fatal("missing boot.json: no error")
	}
}

func TestReadLinesAndFlags(t *testing.T) {
	p := filepath.Join(t.TempDir(), "modules")
	os.WriteFile(p, []byte("# boot modules\nipmi_si\n\n  ext4  \n"), 0o644)
	got, err := readLines(p)
	if err != nil || !reflect.DeepEqual(got, []string{"ipmi_si", "ext4"}) {
		t.Fatalf("readLines = %q, %v", got, err)
	}
}

func TestWorkloadArgs(t *testing.T) {
	with := t.TempDir()
	os.WriteFile(filepath.Join(with, "containerd"), []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		name string
		bin  string
		want []string
	}{
		{"runtime shipped", with, []string{"--workloads", "--containerd-bin", with, "--containerd-dir", "/run/x"}},
		{"no runtime", t.TempDir(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := workloadArgs(tt.bin, "/run/x"); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("workloadArgs = %q, want %q", got, tt.want)
			}
		})
	}
}
