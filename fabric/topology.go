// Package fabric turns the board's PCIe switch fabric into a value and
// watches it: Scan reads a Topology from sysfs (root ports, switch
// upstream and downstream ports, endpoints, hotplug slots, each link's
// speed and width, AER counters); Evaluate compares it with the board
// config's expected fabric and returns Findings; Watcher and Source keep a
// current Topology up to date from kernel uevents and a slow poll; Actions
// retrain, reset, remove, rescan and power-cycle through sysfs; Collector
// exports it all to Prometheus. The sysfs root is always injected, so
// tests run on captured trees (testdata/*.txtar).
package fabric

import (
	"slices"
	"strings"
	"time"
)

// PortType is what a PCI function is in the PCIe hierarchy, from the
// Device/Port Type field of its PCI Express capability.
type PortType string

// Port types.
const (
	TypeEndpoint       PortType = "endpoint"
	TypeLegacyEndpoint PortType = "legacy-endpoint"
	TypeRootPort       PortType = "root-port"
	TypeUpstream       PortType = "upstream-port"
	TypeDownstream     PortType = "downstream-port"
	TypePCIeToPCI      PortType = "pcie-to-pci-bridge"
	TypePCIToPCIe      PortType = "pci-to-pcie-bridge"
	TypeRCEndpoint     PortType = "rc-integrated-endpoint"
	TypeRCEC           PortType = "rc-event-collector"
	TypeConventional   PortType = "pci" // no PCI Express capability
)

// IsPort reports whether t is a switch or root port (a bridge with a link below it).
func (t PortType) IsPort() bool {
	return t == TypeRootPort || t == TypeUpstream || t == TypeDownstream
}

// Link is the state of the PCIe link of a function (for a port: the link
// below it; for an endpoint or upstream port: the link above it). Speeds
// are in GT/s; 0 means unknown (the kernel says "Unknown": no link, or
// not reported). Width 0 likewise.
type Link struct {
	Speed    float64 `json:"speed_gts"`
	Width    int     `json:"width"`
	MaxSpeed float64 `json:"max_speed_gts"`
	MaxWidth int     `json:"max_width"`
	// Active is the port's Data Link Layer Link Active bit (Link Status),
	// known only on ports that report it (Link Capabilities' DLLLA
	// Reporting Capable); nil elsewhere.
	Active *bool `json:"active,omitempty"`
}

// AERCounters is one of a function's aer_dev_{correctable,nonfatal,fatal}
// files: the count of each error type and the kernel's TOTAL_ERR_* line.
type AERCounters struct {
	Total  uint64            `json:"total"`
	ByType map[string]uint64 `json:"by_type,omitempty"`
}

// AER is a function's Advanced Error Reporting counters. RootPort holds a
// root port's aer_rootport_total_err_* counters (errors reported to it by
// the whole hierarchy below), nil elsewhere.
type AER struct {
	Correctable AERCounters  `json:"correctable"`
	NonFatal    AERCounters  `json:"nonfatal"`
	Fatal       AERCounters  `json:"fatal"`
	RootPort    *RootPortAER `json:"root_port,omitempty"`
}

// RootPortAER are a root port's aer_rootport_total_err_* counters.
type RootPortAER struct {
	Correctable uint64 `json:"correctable"`
	NonFatal    uint64 `json:"nonfatal"`
	Fatal       uint64 `json:"fatal"`
}

// Slot is a hotplug slot from /sys/bus/pci/slots. Port is the BDF of the
// port driving it (the bridge whose secondary bus the slot's address is
// on); Devices the functions in it. Nil fields were not reported by the
// hotplug driver (acpiphp has no attention indicator, pciehp no latch...).
type Slot struct {
	Name      string   `json:"name"`
	Address   string   `json:"address"` // domain:bus:device, e.g. 0000:04:00
	Port      string   `json:"port,omitempty"`
	Devices   []string `json:"devices,omitempty"`
	Power     *bool    `json:"power,omitempty"`
	Attention *int     `json:"attention,omitempty"` // 0 off, 1 on, 2 blink
	Latch     *bool    `json:"latch,omitempty"`     // true: latch closed
	Adapter   *bool    `json:"adapter,omitempty"`   // true: card present
}

// Device is one PCI function.
type Device struct {
	BDF    string `json:"bdf"`              // 0000:04:00.0
	Parent string `json:"parent,omitempty"` // BDF of the bridge above it; "" below a host bridge
	// Path is the sysfs device path below /sys/devices, e.g.
	// "pci0000:00/0000:00:03.0/0000:01:00.0".
	Path        string   `json:"path"`
	Type        PortType `json:"type"`
	VendorID    uint16   `json:"vendor_id"`
	DeviceID    uint16   `json:"device_id"`
	SubVendorID uint16   `json:"subsystem_vendor_id"`
	SubDeviceID uint16   `json:"subsystem_device_id"`
	Class       uint32   `json:"class"` // 24-bit class code: base, sub, prog-if
	Revision    uint8    `json:"revision"`
	Vendor      string   `json:"vendor,omitempty"`     // from pci.ids
	Name        string   `json:"name,omitempty"`       // from pci.ids
	ClassName   string   `json:"class_name,omitempty"` // from pci.ids
	Driver      string   `json:"driver,omitempty"`
	// SecondaryBus is the bus below a bridge ("0000:04"), "" otherwise.
	SecondaryBus string `json:"secondary_bus,omitempty"`
	// SlotNumber is a port's Physical Slot Number (Slot Capabilities);
	// switch downstream ports are numbered by it in the board config. 0
	// when the port implements no slot or the config space is unreadable.
	SlotNumber   int      `json:"slot_number,omitempty"`
	Link         *Link    `json:"link,omitempty"`
	AER          *AER     `json:"aer,omitempty"`
	ResetMethods []string `json:"reset_methods,omitempty"`
}

// Function returns the function number of the BDF.
func (d *Device) Function() int {
	if i := strings.LastIndexByte(d.BDF, '.'); i >= 0 && i+1 < len(d.BDF) {
		return int(d.BDF[i+1] - '0')
	}
	return 0
}

// LinkUp reports whether the port bdf has a live link below it: the
// kernel enumerated a function behind it, or the port's Data Link Layer
// Link Active bit says so (where the port reports one). Ports without the
// bit, like QEMU's xio3130, keep showing a trained 2.5 GT/s x1 link when
// empty, so the link files alone cannot tell; and QEMU under ACPI hotplug
// leaves the root port's bit clear with the switch present, so a
// function below wins over the bit.
func (t *Topology) LinkUp(bdf string) bool {
	d := t.Device(bdf)
	if d == nil {
		return false
	}
	if len(t.Children(bdf)) > 0 {
		return true
	}
	return d.Link != nil && d.Link.Active != nil && *d.Link.Active
}

// Topology is the PCI fabric at one instant. It is a value: treat it as
// read-only once made, it is shared by every reader.
type Topology struct {
	Time    time.Time `json:"time"`
	Devices []Device  `json:"devices"` // sorted by BDF
	Slots   []Slot    `json:"slots,omitempty"`
}

// Device returns the function with the given BDF, or nil.
func (t *Topology) Device(bdf string) *Device {
	if t == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(t.Devices, bdf, func(d Device, b string) int { return strings.Compare(d.BDF, b) })
	if !ok {
		return nil
	}
	return &t.Devices[i]
}

// Children returns the functions directly below the bridge bdf, by BDF.
func (t *Topology) Children(bdf string) []*Device {
	if t == nil {
		return nil
	}
	var out []*Device
	for i := range t.Devices {
		if t.Devices[i].Parent == bdf {
			out = append(out, &t.Devices[i])
		}
	}
	return out
}

// SlotFor returns the hotplug slot driven by the port bdf, or nil.
func (t *Topology) SlotFor(port string) *Slot {
	if t == nil {
		return nil
	}
	for i := range t.Slots {
		if t.Slots[i].Port == port {
			return &t.Slots[i]
		}
	}
	return nil
}

// Equal reports whether two topologies describe the same fabric, ignoring
// when they were read.
func (t *Topology) Equal(o *Topology) bool {
	if t == nil || o == nil {
		return t == o
	}
	a, b := *t, *o
	a.Time, b.Time = time.Time{}, time.Time{}
	return equalJSON(&a, &b)
}
