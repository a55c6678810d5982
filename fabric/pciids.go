package fabric

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// SystemPCIIDs is where Debian's pciutils/hwdata put the PCI ID database.
const SystemPCIIDs = "/usr/share/misc/pci.ids"

//go:embed pci.ids
var shippedPCIIDs []byte

// PCIIDs names vendors, devices and classes. Hand-written: the format is
// a few tab-indented lines, and the libraries that read it pull in far more.
type PCIIDs struct {
	vendors map[uint16]string
	devices map[uint32]string // vendor<<16 | device
	classes map[uint32]string // base<<16 | sub<<8 | prog-if, with sub/prog-if 0xff... see Class
}

// ParsePCIIDs reads a pci.ids file (subsystem lines are skipped).
func ParsePCIIDs(b []byte) (*PCIIDs, error) {
	ids := &PCIIDs{vendors: map[uint16]string{}, devices: map[uint32]string{}, classes: map[uint32]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var vendor uint16
	var inClass bool
	var base, sub uint32
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		depth := len(line) - len(strings.TrimLeft(line, "\t"))
		body := strings.TrimLeft(line, "\t")
		if depth == 0 {
			inClass = strings.HasPrefix(body, "C ")
			if inClass {
				id, name, err := idName(body[2:], 8)
				if err != nil {
					return nil, fmt.Errorf("pci.ids line %d: %w", n, err)
				}
				base = uint32(id)
				ids.classes[base<<16|0xffff] = name
				continue
			}
			id, name, err := idName(body, 16)
			if err != nil {
				if len(body) > 2 && body[1] == ' ' { // other top-level lists (e.g. "X ...")
					vendor = 0
					continue
				}
				return nil, fmt.Errorf("pci.ids line %d: %w", n, err)
			}
			vendor = uint16(id)
			ids.vendors[vendor] = name
			continue
		}
		switch {
		case inClass && depth == 1:
			id, name, err := idName(body, 8)
			if err != nil {
				return nil, fmt.Errorf("pci.ids line %d: %w", n, err)
			}
			sub = uint32(id)
			ids.classes[base<<16|sub<<8|0xff] = name
		case inClass && depth == 2:
			id, name, err := idName(body, 8)
			if err != nil {
				return nil, fmt.Errorf("pci.ids line %d: %w", n, err)
			}
			ids.classes[base<<16|sub<<8|uint32(id)] = name
		case !inClass && depth == 1 && vendor != 0:
			id, name, err := idName(body, 16)
			if err != nil {
				return nil, fmt.Errorf("pci.ids line %d: %w", n, err)
			}
			ids.devices[uint32(vendor)<<16|uint32(id)] = name
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pci.ids: %w", err)
	}
	return ids, nil
}

func idName(s string, bits int) (uint64, string, error) {
	id, name, ok := strings.Cut(s, " ")
	if !ok {
		return 0, "", fmt.Errorf("%q: want \"<id>  <name>\"", s)
	}
	v, err := strconv.ParseUint(id, 16, bits)
	if err != nil {
		return 0, "", fmt.Errorf("%q: %w", s, err)
	}
	return v, strings.TrimSpace(name), nil
}

// Vendor names a vendor ID ("" if unknown).
func (p *PCIIDs) Vendor(v uint16) string {
	if p == nil {
		return ""
	}
	return p.vendors[v]
}

// Device names a device ID of a vendor ("" if unknown).
func (p *PCIIDs) Device(v, d uint16) string {
	if p == nil {
		return ""
	}
	return p.devices[uint32(v)<<16|uint32(d)]
}

// Class names a 24-bit class code by its most specific known level:
// programming interface, then subclass, then base class.
func (p *PCIIDs) Class(c uint32) string {
	if p == nil {
		return ""
	}
	if n, ok := p.classes[c&0xffffff]; ok {
		sub := p.classes[c&0xffff00|0xff]
		if sub != "" && n != sub {
			return sub + " (" + n + ")"
		}
		return n
	}
	if n, ok := p.classes[c&0xffff00|0xff]; ok {
		return n
	}
	return p.classes[c&0xff0000|0xffff]
}

// LoadPCIIDs reads the system's pci.ids, or the small copy shipped with
// fabric if the system has none (the board's initramfs does not).
func LoadPCIIDs(path string) (*PCIIDs, error) {
	if b, err := os.ReadFile(path); err == nil {
		return ParsePCIIDs(b)
	}
	return ParsePCIIDs(shippedPCIIDs)
}

// defaultPCIIDs is read once, on first use: an immutable memo of the
// system database, not mutable state.
var defaultPCIIDs = sync.OnceValue(func() *PCIIDs {
	ids, err := LoadPCIIDs(SystemPCIIDs)
	if err != nil {
		ids, _ = ParsePCIIDs(shippedPCIIDs)
	}
	return ids
})
