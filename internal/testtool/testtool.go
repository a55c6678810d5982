// Package testtool finds the real tools that integration tests need
// (ipmi_sim, qemu, containerd, swtpm...). Outside CI a missing tool skips
// the test; under CI=true it fails it: CI never silently skips.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require returns the path of the named executable, or ends the test:
// t.Fatal under CI, t.Skip elsewhere.
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	Missing(t, name+" not found in PATH (make deps installs it)")
	return ""
}

// Missing ends the test because something it needs is absent: t.Fatal
// under CI, t.Skip elsewhere.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI: %s", why)
	}
	t.Skip(why)
}

// RequireRoot ends the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}
