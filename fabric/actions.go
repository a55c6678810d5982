package fabric

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Actions changes the fabric through sysfs writes only: no setpci, no
// /dev/mem. Root is the sysfs mount ("/sys"); tests point it at a fixture
// and read back what was written.
type Actions struct {
	Root string
}

// ErrUnsupported is returned for an action the hardware or kernel does
// not offer (no slot power control, no bus reset...).
var ErrUnsupported = errors.New("not supported here")

func (a *Actions) devDir(bdf string) (string, error) {
	if !isBDF(bdf) {
		return "", fmt.Errorf("%q is not a PCI address (0000:04:00.0)", bdf)
	}
	p := filepath.Join(a.Root, "bus/pci/devices", bdf)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("device %s: %w", bdf, err)
	}
	return p, nil
}

// writeAttr writes a value to an existing sysfs attribute.
func writeAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return err // names the path already
	}
	return f.Close()
}

// Retrain sets the Retrain Link bit in the Link Control register of the
// root or downstream port bdf, then waits (up to a second, or ctx) for
// Link Training to clear. The kernel has no sysfs knob for it, so this
// reads and writes the port's `config` file at the PCIe capability, by
// hand (see config.go); the read-modify-write touches only Link Control.
func (a *Actions) Retrain(ctx context.Context, bdf string) error {
	dir, err := a.devDir(bdf)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "config")
	cfg, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("retrain %s: %w", bdf, err)
	}
	off, err := pcieCap(cfg)
	if err != nil {
		return fmt.Errorf("retrain %s: %w", bdf, err)
	}
	if t := portTypeOf(cfg, off); t != TypeRootPort && t != TypeDownstream {
		return fmt.Errorf("retrain %s: a %s has no link to retrain (only root and downstream ports): %w", bdf, t, ErrUnsupported)
	}
	ctl := binary.LittleEndian.Uint16(cfg[off+pcieLinkCtl:]) | linkCtlRetrain
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], ctl)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("retrain %s: %w", bdf, err)
	}
	if _, err := f.WriteAt(b[:], int64(off+pcieLinkCtl)); err != nil {
		f.Close()
		return fmt.Errorf("retrain %s: %w", bdf, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("retrain %s: %w", bdf, err)
	}
	// Link Training (Link Status bit 11) clears when the link is back.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		cfg, err := os.ReadFile(path)
		if err == nil && len(cfg) >= off+pcieLinkSta+2 && binary.LittleEndian.Uint16(cfg[off+pcieLinkSta:])&(1<<11) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("retrain %s: link still training after 1s", bdf)
}

// ResetDevice resets one function with the kernel's chosen method (its
// `reset` file; `reset_method` lists the candidates).
func (a *Actions) ResetDevice(_ context.Context, bdf string) error {
	dir, err := a.devDir(bdf)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "reset")); err != nil {
		return fmt.Errorf("reset %s: %w", bdf, ErrUnsupported)
	}
	if err := writeAttr(filepath.Join(dir, "reset"), "1"); err != nil {
		return fmt.Errorf("reset %s: %w", bdf, err)
	}
	return nil
}

// ResetPort does a secondary bus reset below the port bdf: it asks the
// kernel to reset the port's first child with the "bus" method (the
// kernel saves and restores the config of every function below, which a
// raw Bridge Control write would not), then restores the child's
// reset_method.
func (a *Actions) ResetPort(ctx context.Context, port string) error {
	dir, err := a.devDir(port)
	if err != nil {
		return err
	}
	child, err := firstChild(dir)
	if err != nil {
		return fmt.Errorf("reset port %s: %w", port, err)
	}
	cdir := filepath.Join(dir, child)
	rmPath := filepath.Join(cdir, "reset_method")
	old, err := os.ReadFile(rmPath)
	if err != nil {
		return fmt.Errorf("reset port %s: no reset_method on %s: %w", port, child, ErrUnsupported)
	}
	methods := strings.Fields(string(old))
	if !slices.Contains(methods, "bus") {
		return fmt.Errorf("reset port %s: %s offers no bus reset (%s): %w", port, child, strings.TrimSpace(string(old)), ErrUnsupported)
	}
	if len(methods) != 1 {
		if err := writeAttr(rmPath, "bus"); err != nil {
			return fmt.Errorf("reset port %s: %w", port, err)
		}
		defer func() { _ = writeAttr(rmPath, strings.Join(methods, " ")) }()
	}
	if err := writeAttr(filepath.Join(cdir, "reset"), "1"); err != nil {
		return fmt.Errorf("reset port %s: %w", port, err)
	}
	return nil
}

// firstChild returns the BDF of the lowest function below a bridge dir.
func firstChild(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents { // ReadDir sorts by name
		if isBDF(e.Name()) {
			return e.Name(), nil
		}
	}
	return "", errors.New("nothing below the port")
}

// Remove detaches the function bdf (and everything below it) from the
// kernel, as before a physical removal.
func (a *Actions) Remove(_ context.Context, bdf string) error {
	dir, err := a.devDir(bdf)
	if err != nil {
		return err
	}
	if err := writeAttr(filepath.Join(dir, "remove"), "1"); err != nil {
		return fmt.Errorf("remove %s: %w", bdf, err)
	}
	return nil
}

// Rescan asks the kernel to enumerate again: below the bridge bdf, or the
// whole hierarchy when bdf is "".
func (a *Actions) Rescan(_ context.Context, bdf string) error {
	path := filepath.Join(a.Root, "bus/pci/rescan")
	if bdf != "" {
		dir, err := a.devDir(bdf)
		if err != nil {
			return err
		}
		path = filepath.Join(dir, "rescan")
	}
	if err := writeAttr(path, "1"); err != nil {
		return fmt.Errorf("rescan %s: %w", bdf, err)
	}
	return nil
}

// SlotPower turns the hotplug slot named slot on or off.
func (a *Actions) SlotPower(_ context.Context, slot string, on bool) error {
	if slot == "" || strings.ContainsAny(slot, "/\x00") || slot == "." || slot == ".." {
		return fmt.Errorf("bad slot name %q", slot)
	}
	p := filepath.Join(a.Root, "bus/pci/slots", slot, "power")
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("slot %s power: %w", slot, ErrUnsupported)
	}
	v := "0"
	if on {
		v = "1"
	}
	if err := writeAttr(p, v); err != nil {
		return fmt.Errorf("slot %s power: %w", slot, err)
	}
	return nil
}

// PortPower powers the slot driven by the port bdf on or off.
func (a *Actions) PortPower(ctx context.Context, topo *Topology, port string, on bool) error {
	s := topo.SlotFor(port)
	if s == nil {
		return fmt.Errorf("port %s has no hotplug slot: %w", port, ErrUnsupported)
	}
	return a.SlotPower(ctx, s.Name, on)
}
