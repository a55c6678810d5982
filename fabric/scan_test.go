package fabric

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanEmulated(t *testing.T) {
	for _, fx := range []string{"sys-emulated", "sys-emulated-pciehp"} {
		t.Run(fx, func(t *testing.T) {
			topo := scanFixture(t, fixture(t, fx))
			want := []struct {
				bdf, parent string
				typ         PortType
				slot        int
				name        string
				aer, link   bool
			}{
				{"0000:00:03.0", "", TypeRootPort, 1, "QEMU PCIe Root port", true, true},
				{"0000:01:00.0", "0000:00:03.0", TypeUpstream, 0, "XIO3130 PCI Express Switch (Upstream)", true, true},
				{"0000:02:00.0", "0000:01:00.0", TypeDownstream, 1, "XIO3130 PCI Express Switch (Downstream)", true, true},
				{"0000:02:01.0", "0000:01:00.0", TypeDownstream, 2, "XIO3130 PCI Express Switch (Downstream)", true, true},
				{"0000:02:02.0", "0000:01:00.0", TypeDownstream, 3, "XIO3130 PCI Express Switch (Downstream)", true, true},
				{"0000:03:00.0", "0000:02:00.0", TypeEndpoint, 0, "Virtio 1.0 block device", false, true},
				{"0000:04:00.0", "0000:02:01.0", TypeEndpoint, 0, "82574L Gigabit Network Connection", true, true},
				{"0000:00:1f.0", "", TypeConventional, 0, "82801IB (ICH9) LPC Interface Controller", false, false},
			}
			for _, w := range want {
				d := topo.Device(w.bdf)
				if d == nil {
					t.Errorf("%s missing", w.bdf)
					continue
				}
				if d.Parent != w.parent || d.Type != w.typ || d.SlotNumber != w.slot || d.Name != w.name {
					t.Errorf("%s = parent %q type %q slot %d name %q, want %q %q %d %q", w.bdf, d.Parent, d.Type, d.SlotNumber, d.Name, w.parent, w.typ, w.slot, w.name)
				}
				if (d.AER != nil) != w.aer || (d.Link != nil) != w.link {
					t.Errorf("%s: aer %v link %v, want %v %v", w.bdf, d.AER != nil, d.Link != nil, w.aer, w.link)
				}
			}
			if rp := topo.Device("0000:00:03.0"); rp.AER.RootPort == nil || rp.Link.MaxSpeed != 16 || rp.Link.MaxWidth != 32 || rp.Link.Speed != 2.5 || rp.Link.Width != 1 {
				t.Errorf("root port link/AER = %+v %+v", rp.Link, rp.AER)
			}
			if e := topo.Device("0000:04:00.0"); e.Class != 0x020000 || e.Vendor != "Intel Corporation" || e.AER.Correctable.ByType["RxErr"] != 0 || len(e.AER.Correctable.ByType) < 5 {
				t.Errorf("e1000e = %+v", e)
			}
			if got := topo.Children("0000:01:00.0"); len(got) != 3 {
				t.Errorf("upstream children = %d, want 3", len(got))
			}
			if !topo.LinkUp("0000:02:01.0") || topo.LinkUp("0000:02:02.0") {
				t.Errorf("LinkUp dn2=%v dn3=%v, want true false", topo.LinkUp("0000:02:01.0"), topo.LinkUp("0000:02:02.0"))
			}
			// Slots map to the ports driving them, whatever the hotplug driver names them.
			for port, dev := range map[string]string{"0000:02:00.0": "0000:03:00.0", "0000:02:01.0": "0000:04:00.0", "0000:02:02.0": ""} {
				s := topo.SlotFor(port)
				if s == nil {
					t.Errorf("no slot for %s", port)
					continue
				}
				if got := strings.Join(s.Devices, ","); got != dev || s.Power == nil || *s.Power != (dev != "") {
					t.Errorf("slot %s of %s: devices %q power %v, want %q", s.Name, port, got, s.Power, dev)
				}
			}
		})
	}
}

func TestScanPciehpSlotNames(t *testing.T) {
	topo := scanFixture(t, fixture(t, "sys-emulated-pciehp"))
	s := topo.SlotFor("0000:02:02.0")
	if s == nil || s.Name != "3" || s.Attention == nil || *s.Attention != 0 || s.Adapter == nil || *s.Adapter {
		t.Fatalf("pciehp slot 3 = %+v", s)
	}
	if a := topo.Device("0000:02:01.0").Link.Active; a != nil {
		t.Errorf("xio3130 reports no DLLLA capability, Active = %v", *a)
	}
	if a := topo.Device("0000:00:03.0").Link.Active; a == nil || !*a {
		t.Errorf("root port DLL Link Active = %v, want true", a)
	}
}

func TestScanHost(t *testing.T) {
	topo := scanFixture(t, fixture(t, "sys-host"))
	if len(topo.Devices) == 0 {
		t.Fatal("no devices")
	}
	for _, d := range topo.Devices {
		if d.VendorID == 0 || d.Vendor == "" {
			t.Errorf("%s: vendor %04x %q", d.BDF, d.VendorID, d.Vendor)
		}
		if d.Type == "" {
			t.Errorf("%s: no type", d.BDF)
		}
	}
}

// An unprivileged reader sees only 64 bytes of config space: types are
// then guessed from the tree, and must come out the same.
func TestScanUnprivilegedConfig(t *testing.T) {
	root := fixture(t, "sys-emulated")
	full := scanFixture(t, root)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "config" {
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, b[:64], 0o644)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	part := scanFixture(t, root)
	for _, d := range full.Devices {
		if p := part.Device(d.BDF); p == nil || p.Type != d.Type {
			t.Errorf("%s: type %v from 64 bytes, want %q", d.BDF, p, d.Type)
		}
	}
	// Slot numbers then come from the slot names ("0-2" for ACPI's).
	if n := slotNumberFromName(part, "0000:02:02.0"); n != 0 {
		t.Logf("slot name number %d", n)
	}
}

func TestScanDeviceVanishing(t *testing.T) {
	root := fixture(t, "sys-emulated")
	dir := devPath(t, root, "0000:04:00.0")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	topo := scanFixture(t, root) // the dangling bus/pci/devices link is skipped
	if topo.Device("0000:04:00.0") != nil {
		t.Error("vanished device still listed")
	}
	if topo.Device("0000:03:00.0") == nil {
		t.Error("other devices lost")
	}
}

func TestScanBadValues(t *testing.T) {
	for _, tc := range []struct{ file, content, want string }{
		{"current_link_speed", "fast\n", "link speed"},
		{"current_link_width", "-1\n", "link width"},
		{"aer_dev_fatal", "DLP many\n", "aer line 1"},
		{"vendor", "0xzz\n", "vendor"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			root := fixture(t, "sys-emulated")
			writeFile(t, filepath.Join(devPath(t, root, "0000:04:00.0"), tc.file), tc.content)
			_, err := (&Scanner{Root: root, IDs: shippedIDs(t)}).Scan()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "0000:04:00.0") {
				t.Fatalf("err = %v, want one naming 0000:04:00.0 and %q", err, tc.want)
			}
		})
	}
}

func TestScanNoSysfs(t *testing.T) {
	if _, err := Scan(t.TempDir()); err == nil {
		t.Fatal("scan of an empty root succeeded")
	}
}

func TestPCIIDsClass(t *testing.T) {
	ids := shippedIDs(t)
	for class, want := range map[uint32]string{
		0x010802: "Non-Volatile memory controller (NVM Express)",
		0x020000: "Ethernet controller",
		0x060400: "PCI bridge (Normal decode)",
		0x010000: "SCSI storage controller",
		0x12ff00: "Processing accelerators",
	} {
		if got := ids.Class(class); got != want {
			t.Errorf("Class(%06x) = %q, want %q", class, got, want)
		}
	}
	if got := ids.Device(0x1b36, 0x0010); got != "QEMU NVM Express Controller" {
		t.Errorf("nvme name %q", got)
	}
}
