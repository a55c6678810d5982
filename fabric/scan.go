package fabric

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Scanner reads Topologies from a sysfs tree.
//
// The walk is hand-written rather than procfs' sysfs.PciDevices because
// (1) PciDevices fails the whole scan when one device vanishes mid-read,
// which is exactly what hotplug does, while Scanner skips it; (2) it folds
// an "Unknown" link speed (link down, the signal fabric watches for) into
// "no such file"; (3) it reads neither AER counters (except for network
// devices) nor slots, drivers or the port type.
type Scanner struct {
	// Root is the sysfs mount point, normally "/sys".
	Root string
	// IDs names devices; nil means the system's pci.ids, else fabric's copy.
	IDs *PCIIDs
	// Now stamps the topology; nil means time.Now.
	Now func() time.Time
}

// Scan reads the PCI topology under sysRoot (normally "/sys").
func Scan(sysRoot string) (*Topology, error) {
	return (&Scanner{Root: sysRoot}).Scan()
}

// Scan reads the PCI topology.
func (s *Scanner) Scan() (*Topology, error) {
	ids := s.IDs
	if ids == nil {
		ids = defaultPCIIDs()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	devDir := filepath.Join(s.Root, "bus/pci/devices")
	ents, err := os.ReadDir(devDir)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", devDir, err)
	}
	t := &Topology{Time: now()}
	for _, e := range ents {
		d, err := s.readDevice(devDir, e.Name(), ids)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we read it: the next scan sees it gone
		}
		if err != nil {
			return nil, err
		}
		t.Devices = append(t.Devices, d)
	}
	slices.SortFunc(t.Devices, func(a, b Device) int { return strings.Compare(a.BDF, b.BDF) })
	fillTypes(t)
	t.Slots, err = s.readSlots(t)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Scanner) readDevice(devDir, bdf string, ids *PCIIDs) (Device, error) {
	link := filepath.Join(devDir, bdf)
	target, err := os.Readlink(link)
	if err != nil {
		return Device{}, fmt.Errorf("device %s: %w", bdf, err)
	}
	real := filepath.Clean(filepath.Join(devDir, target))
	d := Device{BDF: bdf}
	if i := strings.Index(real, "/devices/"); i >= 0 {
		d.Path = real[i+len("/devices/"):]
	}
	if p := filepath.Base(filepath.Dir(real)); isBDF(p) {
		d.Parent = p
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(real, name))
		return string(b), err
	}
	for _, f := range []struct {
		name string
		bits int
		set  func(uint64)
	}{
		{"vendor", 16, func(v uint64) { d.VendorID = uint16(v) }},
		{"device", 16, func(v uint64) { d.DeviceID = uint16(v) }},
		{"class", 24, func(v uint64) { d.Class = uint32(v) }},
		{"subsystem_vendor", 16, func(v uint64) { d.SubVendorID = uint16(v) }},
		{"subsystem_device", 16, func(v uint64) { d.SubDeviceID = uint16(v) }},
		{"revision", 8, func(v uint64) { d.Revision = uint8(v) }},
	} {
		txt, err := read(f.name)
		if err != nil {
			if f.name == "revision" || strings.HasPrefix(f.name, "subsystem") {
				continue
			}
			return Device{}, fmt.Errorf("device %s: %w", bdf, err)
		}
		v, err := parseHex(txt, f.bits)
		if err != nil {
			return Device{}, fmt.Errorf("device %s %s: %w", bdf, f.name, err)
		}
		f.set(v)
	}
	d.Vendor = ids.Vendor(d.VendorID)
	d.Name = ids.Device(d.VendorID, d.DeviceID)
	d.ClassName = ids.Class(d.Class)
	if drv, err := os.Readlink(filepath.Join(real, "driver")); err == nil {
		d.Driver = filepath.Base(drv)
	}
	if bus, err := os.ReadDir(filepath.Join(real, "pci_bus")); err == nil && len(bus) > 0 {
		d.SecondaryBus = bus[0].Name()
	}
	if rm, err := read("reset_method"); err == nil {
		d.ResetMethods = strings.Fields(rm)
	}

	// Link: present when the kernel exports the link files (PCIe functions).
	if sp, err := read("current_link_speed"); err == nil {
		var l Link
		var errs []error
		var e error
		l.Speed, e = ParseLinkSpeed(sp)
		errs = append(errs, e)
		if v, err := read("max_link_speed"); err == nil {
			l.MaxSpeed, e = ParseLinkSpeed(v)
			errs = append(errs, e)
		}
		if v, err := read("current_link_width"); err == nil {
			l.Width, e = ParseLinkWidth(v)
			errs = append(errs, e)
		}
		if v, err := read("max_link_width"); err == nil {
			l.MaxWidth, e = ParseLinkWidth(v)
			errs = append(errs, e)
		}
		if err := errors.Join(errs...); err != nil {
			return Device{}, fmt.Errorf("device %s: %w", bdf, err)
		}
		d.Link = &l
	}

	// AER counters.
	if cor, err := read("aer_dev_correctable"); err == nil {
		var a AER
		var e1, e2, e3 error
		a.Correctable, e1 = ParseAER([]byte(cor))
		if v, err := read("aer_dev_nonfatal"); err == nil {
			a.NonFatal, e2 = ParseAER([]byte(v))
		}
		if v, err := read("aer_dev_fatal"); err == nil {
			a.Fatal, e3 = ParseAER([]byte(v))
		}
		if err := errors.Join(e1, e2, e3); err != nil {
			return Device{}, fmt.Errorf("device %s: %w", bdf, err)
		}
		if c, err := read("aer_rootport_total_err_cor"); err == nil {
			var rp RootPortAER
			var e1, e2, e3 error
			rp.Correctable, e1 = parseUint(c)
			if v, err := read("aer_rootport_total_err_nonfatal"); err == nil {
				rp.NonFatal, e2 = parseUint(v)
			}
			if v, err := read("aer_rootport_total_err_fatal"); err == nil {
				rp.Fatal, e3 = parseUint(v)
			}
			if err := errors.Join(e1, e2, e3); err != nil {
				return Device{}, fmt.Errorf("device %s: %w", bdf, err)
			}
			a.RootPort = &rp
		}
		d.AER = &a
	}

	// Port type and slot number from the config space (see config.go).
	d.Type = TypeConventional
	if cfg, err := os.ReadFile(filepath.Join(real, "config")); err == nil {
		if off, err := pcieCap(cfg); err == nil {
			d.Type = portTypeOf(cfg, off)
			if d.Type == TypeRootPort || d.Type == TypeDownstream {
				d.SlotNumber = slotNumberOf(cfg, off)
				if d.Link != nil {
					d.Link.Active = linkActiveOf(cfg, off)
				}
			}
		} else if !errors.Is(err, errNoPCIeCap) {
			d.Type = "" // unreadable: fillTypes guesses from the tree
		}
	} else {
		d.Type = ""
	}
	return d, nil
}

// fillTypes guesses the port type of functions whose config space could
// not be read (an unprivileged scan reads only its first 64 bytes): a
// bridge below a host bridge is a root port, one below a root or
// downstream port is a switch upstream port, one below an upstream port
// a downstream port; anything else with a link is an endpoint.
func fillTypes(t *Topology) {
	for i := range t.Devices {
		d := &t.Devices[i]
		if d.Type != "" {
			continue
		}
		bridge := d.Class>>8 == 0x0604
		var parentType PortType
		if p := t.Device(d.Parent); p != nil {
			parentType = p.Type
			if parentType == "" {
				parentType = guessParent(t, p)
			}
		}
		switch {
		case bridge && d.Parent == "":
			d.Type = TypeRootPort
		case bridge && (parentType == TypeRootPort || parentType == TypeDownstream):
			d.Type = TypeUpstream
		case bridge && parentType == TypeUpstream:
			d.Type = TypeDownstream
		case d.Link != nil:
			d.Type = TypeEndpoint
		default:
			d.Type = TypeConventional
		}
	}
}

func guessParent(t *Topology, p *Device) PortType {
	depth := 0
	for q := p; q != nil && depth < 32; q = t.Device(q.Parent) {
		depth++
	}
	switch {
	case p.Parent == "":
		return TypeRootPort
	case depth%2 == 0:
		return TypeUpstream
	default:
		return TypeDownstream
	}
}

func (s *Scanner) readSlots(t *Topology) ([]Slot, error) {
	dir := filepath.Join(s.Root, "bus/pci/slots")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	var out []Slot
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		read := func(name string) (string, bool) {
			b, err := os.ReadFile(filepath.Join(p, name))
			if err != nil {
				return "", false
			}
			return strings.TrimSpace(string(b)), true
		}
		sl := Slot{Name: e.Name()}
		addr, ok := read("address")
		if !ok {
			continue // vanished while we read it
		}
		sl.Address = addr
		flag := func(name string) *bool {
			v, ok := read(name)
			if !ok || (v != "0" && v != "1") {
				return nil
			}
			b := v == "1"
			return &b
		}
		sl.Power, sl.Latch, sl.Adapter = flag("power"), flag("latch"), flag("adapter")
		if v, ok := read("attention"); ok && len(v) == 1 && v[0] >= '0' && v[0] <= '9' {
			n := int(v[0] - '0')
			sl.Attention = &n
		}
		bus, dev, _ := strings.Cut(addr, ":")
		if i := strings.LastIndexByte(addr, ':'); i > 0 {
			bus, dev = addr[:i], addr[i+1:]
		}
		for i := range t.Devices {
			d := &t.Devices[i]
			if d.SecondaryBus == bus && d.Type.IsPort() {
				sl.Port = d.BDF
			}
			if strings.HasPrefix(d.BDF, bus+":"+dev+".") {
				sl.Devices = append(sl.Devices, d.BDF)
			}
		}
		out = append(out, sl)
	}
	slices.SortFunc(out, func(a, b Slot) int { return strings.Compare(a.Address, b.Address) })
	return out, nil
}

// isBDF reports whether s looks like "0000:04:00.0".
func isBDF(s string) bool {
	if len(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.' {
		return false
	}
	for i, c := range s {
		if i == 4 || i == 7 || i == 10 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
