package fabric

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestActionsWrites(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "sys-emulated")
	a := &Actions{Root: root}

	if err := a.Remove(ctx, "0000:04:00.0"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(devPath(t, root, "0000:04:00.0"), "remove")); got != "1" {
		t.Errorf("remove wrote %q", got)
	}
	if err := a.Rescan(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "bus/pci/rescan")); got != "1" {
		t.Errorf("bus rescan wrote %q", got)
	}
	if err := a.Rescan(ctx, "0000:02:01.0"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(devPath(t, root, "0000:02:01.0"), "rescan")); got != "1" {
		t.Errorf("port rescan wrote %q", got)
	}
	if err := a.ResetDevice(ctx, "0000:04:00.0"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(devPath(t, root, "0000:04:00.0"), "reset")); got != "1" {
		t.Errorf("reset wrote %q", got)
	}
	// Slot "0-3" is dn3's under ACPI hotplug.
	if err := a.SlotPower(ctx, "0-3", true); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "bus/pci/slots/0-3/power")); got != "1" {
		t.Errorf("slot power wrote %q", got)
	}
	topo := scanFixture(t, root)
	if err := a.PortPower(ctx, topo, "0000:02:01.0", false); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "bus/pci/slots/0-2/power")); got != "0" {
		t.Errorf("port power wrote %q", got)
	}
}

func TestActionsResetPort(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "sys-emulated")
	a := &Actions{Root: root}
	// Observe the reset_method the reset ran with.
	child := devPath(t, root, "0000:04:00.0")
	if err := a.ResetPort(ctx, "0000:02:01.0"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(child, "reset")); got != "1" {
		t.Errorf("reset wrote %q", got)
	}
	if got := readFile(t, filepath.Join(child, "reset_method")); got != "pm bus" {
		t.Errorf("reset_method left at %q, want restored \"pm bus\"", got)
	}
	// An empty port has nothing to reset.
	if err := a.ResetPort(ctx, "0000:02:02.0"); err == nil {
		t.Error("reset of an empty port succeeded")
	}
	// A child without bus reset.
	writeFile(t, filepath.Join(child, "reset_method"), "flr\n")
	if err := a.ResetPort(ctx, "0000:02:01.0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("reset without bus method: %v", err)
	}
}

func TestActionsRetrain(t *testing.T) {
	ctx := context.Background()
	root := fixture(t, "sys-emulated")
	a := &Actions{Root: root}
	port := devPath(t, root, "0000:02:01.0")
	before := []byte(readFile(t, filepath.Join(port, "config")))
	if err := a.Retrain(ctx, "0000:02:01.0"); err != nil {
		t.Fatal(err)
	}
	after := []byte(readFile(t, filepath.Join(port, "config")))
	off, err := pcieCap(after)
	if err != nil {
		t.Fatal(err)
	}
	if ctl := binary.LittleEndian.Uint16(after[off+pcieLinkCtl:]); ctl&linkCtlRetrain == 0 {
		t.Errorf("Link Control = %#x, Retrain Link not set", ctl)
	}
	// Nothing else changed.
	if len(before) != len(after) {
		t.Fatalf("config grew from %d to %d bytes", len(before), len(after))
	}
	for i := range before {
		if before[i] != after[i] && (i < off+pcieLinkCtl || i > off+pcieLinkCtl+1) {
			t.Errorf("config byte %#x changed", i)
		}
	}
	// Endpoints and upstream ports have no link to retrain.
	for _, bdf := range []string{"0000:04:00.0", "0000:01:00.0"} {
		if err := a.Retrain(ctx, bdf); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Retrain(%s) = %v", bdf, err)
		}
	}
}

func TestActionsBadInput(t *testing.T) {
	ctx := context.Background()
	a := &Actions{Root: fixture(t, "sys-emulated")}
	for name, err := range map[string]error{
		"remove bad bdf":    a.Remove(ctx, "../../etc"),
		"remove absent":     a.Remove(ctx, "0000:09:00.0"),
		"slot traversal":    a.SlotPower(ctx, "../0", true),
		"slot absent":       a.SlotPower(ctx, "9", true),
		"retrain absent":    a.Retrain(ctx, "0000:09:00.0"),
		"port power noslot": a.PortPower(ctx, &Topology{}, "0000:02:01.0", true),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
