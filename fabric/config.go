package fabric

import (
	"encoding/binary"
	"errors"
)

// PCI configuration space offsets (PCI Local Bus 3.0, PCIe Base 6.0 §7.5.3).
// The kernel exports a function's port type, physical slot number and link
// control register nowhere in sysfs but the raw `config` file, and no
// library in the project parses it, so these few reads are by hand.
const (
	cfgStatus     = 0x06
	cfgCapPtr     = 0x34
	statusCapList = 0x10
	capIDPCIe     = 0x10

	pcieFlags   = 0x02 // PCI Express Capabilities register
	pcieLinkCap = 0x0c
	pcieLinkCtl = 0x10
	pcieLinkSta = 0x12
	pcieSlotCap = 0x14

	linkCtlRetrain = 1 << 5
	linkCapDLLLARC = 1 << 20
	linkStaDLLLA   = 1 << 13
	flagsSlot      = 1 << 8
)

// linkActiveOf returns the Data Link Layer Link Active bit, or nil if the
// port does not report it.
func linkActiveOf(cfg []byte, capOff int) *bool {
	if binary.LittleEndian.Uint32(cfg[capOff+pcieLinkCap:])&linkCapDLLLARC == 0 {
		return nil
	}
	v := binary.LittleEndian.Uint16(cfg[capOff+pcieLinkSta:])&linkStaDLLLA != 0
	return &v
}

var errNoPCIeCap = errors.New("no PCI Express capability")

// pcieCap returns the offset of the PCI Express capability in cfg.
func pcieCap(cfg []byte) (int, error) {
	if len(cfg) < 64 {
		return 0, errors.New("config space shorter than 64 bytes")
	}
	if binary.LittleEndian.Uint16(cfg[cfgStatus:])&statusCapList == 0 {
		return 0, errNoPCIeCap
	}
	off := int(cfg[cfgCapPtr]) &^ 3
	for seen := 0; off >= 0x40 && seen < 48; seen++ {
		if off+2 > len(cfg) {
			return 0, errors.New("capability list runs past the readable config space (not root?)")
		}
		if cfg[off] == capIDPCIe {
			if off+pcieSlotCap+4 > len(cfg) {
				return 0, errors.New("PCI Express capability truncated")
			}
			return off, nil
		}
		off = int(cfg[off+1]) &^ 3
	}
	return 0, errNoPCIeCap
}

// portTypeOf decodes the Device/Port Type of the PCIe capability at cap.
func portTypeOf(cfg []byte, capOff int) PortType {
	switch (binary.LittleEndian.Uint16(cfg[capOff+pcieFlags:]) >> 4) & 0xf {
	case 0x0:
		return TypeEndpoint
	case 0x1:
		return TypeLegacyEndpoint
	case 0x4:
		return TypeRootPort
	case 0x5:
		return TypeUpstream
	case 0x6:
		return TypeDownstream
	case 0x7:
		return TypePCIeToPCI
	case 0x8:
		return TypePCIToPCIe
	case 0x9:
		return TypeRCEndpoint
	case 0xa:
		return TypeRCEC
	}
	return TypeConventional
}

// slotNumberOf returns the Physical Slot Number of a port implementing a slot.
func slotNumberOf(cfg []byte, capOff int) int {
	if binary.LittleEndian.Uint16(cfg[capOff+pcieFlags:])&flagsSlot == 0 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(cfg[capOff+pcieSlotCap:]) >> 19)
}
