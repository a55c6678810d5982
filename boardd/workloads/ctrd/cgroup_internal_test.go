package ctrd

import (
	"strings"
	"testing"
)

// Two containerds on one host must not share workload cgroups.
func TestCgroupParent(t *testing.T) {
	a := RuntimeConfig{Address: "/tmp/a/containerd.sock"}.cgroupParent()
	b := RuntimeConfig{Address: "/tmp/b/containerd.sock"}.cgroupParent()
	if a == b || !strings.HasPrefix(a, "/podos-") || !strings.HasPrefix(b, "/podos-") {
		t.Fatalf("parents %q and %q: want distinct /podos-<hash>", a, b)
	}
	if got := (RuntimeConfig{Address: "/tmp/a/containerd.sock"}).cgroupParent(); got != a {
		t.Fatalf("parent not stable: %q then %q", a, got)
	}
	if got := (RuntimeConfig{Address: "x", CgroupParent: "/custom"}).cgroupParent(); got != "/custom" {
		t.Fatalf("configured parent ignored: %q", got)
	}
}
