package fabric

import (
	"os"
	"path/filepath"
	"testing"

	"podos.dev/podos/fabric/internal/sysfsfix"
)

// fixture extracts testdata/<name>.txtar into a temporary sysfs root.
func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sysfsfix.Extract(b, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shippedIDs are fabric's own pci.ids, so names do not depend on the host.
func shippedIDs(t testing.TB) *PCIIDs {
	t.Helper()
	ids, err := ParsePCIIDs(shippedPCIIDs)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func scanFixture(t testing.TB, root string) *Topology {
	t.Helper()
	topo, err := (&Scanner{Root: root, IDs: shippedIDs(t)}).Scan()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// devPath returns the real sysfs directory of a device in a fixture root.
func devPath(t testing.TB, root, bdf string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(filepath.Join(root, "bus/pci/devices", bdf))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
