// Package boardconfig is the board description format: what a board is,
// how to reach its BMC, which sensors boardd must find and how to judge
// them, the policy, the expected PCIe fabric and the workloads.
//
// Board configs are YAML files in this folder (one per board, named
// <board>.yaml; template.yaml documents every field, schema.json is the
// format's JSON Schema). Load and Parse decode, default and validate one;
// every error names the file, line, field and reason
// ("blade.yaml:14: sensors[3].thresholds.upper_critical: must be above
// upper_non_critical (28 <= 30)"), and all problems are reported at once.
// Default is the config for a board run without one.
package boardconfig

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "1s", "500ms" in YAML and JSON.
type Duration struct{ time.Duration }

// D makes a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// UnmarshalYAML reads a Go duration string ("1s", "1m30s").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as a string ("1s").
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as a string ("1s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string ("1s").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"1s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Config is one board's description.
type Config struct {
	// APIVersion is "podos.dev/v1".
	APIVersion string     `yaml:"apiVersion" json:"apiVersion"`
	Board      Board      `yaml:"board" json:"board"`
	BMC        BMC        `yaml:"bmc" json:"bmc"`
	Poll       Poll       `yaml:"poll" json:"poll"`
	Sensors    []Sensor   `yaml:"sensors" json:"sensors"`
	Policy     Policy     `yaml:"policy" json:"policy"`
	Fabric     *Fabric    `yaml:"fabric,omitempty" json:"fabric,omitempty"`
	Workloads  []Workload `yaml:"workloads,omitempty" json:"workloads,omitempty"`
	// Boot is read by the initramfs early-boot stage.
	Boot Boot `yaml:"boot" json:"boot"`
	// Emulation describes how qemu-tests and ipmi_sim emulate this board;
	// absent for real boards.
	Emulation *Emulation `yaml:"emulation,omitempty" json:"emulation,omitempty"`
}

// Board names the board.
type Board struct {
	ID    string `yaml:"id" json:"id"` // [a-z0-9-]+, the Redfish Chassis id
	Model string `yaml:"model" json:"model"`
	Slot  int    `yaml:"slot" json:"slot"` // 1..4 in a RuggedPOD
}

// BMC says how to reach the board's BMC. The --bmc flag overrides URL.
type BMC struct {
	URL     string   `yaml:"url,omitempty" json:"url,omitempty"`         // ipmi+kcs:///dev/ipmi0, ipmi+lan://..., redfish+https://...
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"` // per request; default 1s
	Retries int      `yaml:"retries,omitempty" json:"retries,omitempty"` // per request; default 3
}

// Poll sets the collector's pace.
type Poll struct {
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"` // default 1s
	Debounce int      `yaml:"debounce,omitempty" json:"debounce,omitempty"` // consecutive samples before a state change; default 1
}

// Role is what a sensor is to the board (the board config's "class").
type Role string

// Roles boardd knows.
const (
	RolePSUInput  Role = "psu-input"  // PSU input rail (V, A or W)
	RolePSUOutput Role = "psu-output" // PSU/DC-DC output rail (V, A or W)
	RolePSUStatus Role = "psu-status" // PSU status (discrete: presence, failure...)
	RoleFuse      Role = "fuse"       // a fuse (discrete: blown when asserted)
	RoleTempOil   Role = "temp-oil"   // dielectric oil temperature
	RoleTempInlet Role = "temp-inlet" // coolant inlet temperature
	RoleTempCPU   Role = "temp-cpu"   // CPU temperature
	RoleTemp      Role = "temp"       // another temperature
	RolePump      Role = "pump"       // coolant pump speed
	RoleFan       Role = "fan"        // fan speed
	RoleLeak      Role = "leak"       // leak detector (discrete: leak when asserted)
	RoleOther     Role = "other"
)

// Sensor is one sensor boardd must find on the BMC, matched by Name (the
// BMC's name for it, the SDR id string).
type Sensor struct {
	Name string `yaml:"name" json:"name"`
	Role Role   `yaml:"role" json:"role"`
	// Required: a sensor the BMC does not expose is itself a Critical
	// condition (default true).
	Required *bool `yaml:"required,omitempty" json:"required,omitempty"`
	// Thresholds override or complete the BMC's, in the sensor's unit.
	Thresholds *Thresholds `yaml:"thresholds,omitempty" json:"thresholds,omitempty"`
	Debounce   int         `yaml:"debounce,omitempty" json:"debounce,omitempty"` // overrides poll.debounce; 0 = poll.debounce (see Config.SensorDebounce)
	// Sim describes the emulated sensor (only on emulated boards).
	Sim *SimSensor `yaml:"sim,omitempty" json:"sim,omitempty"`
}

// Thresholds in the sensor's unit; nil fields keep the BMC's value.
type Thresholds struct {
	LowerNonCritical *float64 `yaml:"lower_non_critical,omitempty" json:"lower_non_critical,omitempty"`
	LowerCritical    *float64 `yaml:"lower_critical,omitempty" json:"lower_critical,omitempty"`
	LowerFatal       *float64 `yaml:"lower_fatal,omitempty" json:"lower_fatal,omitempty"`
	UpperNonCritical *float64 `yaml:"upper_non_critical,omitempty" json:"upper_non_critical,omitempty"`
	UpperCritical    *float64 `yaml:"upper_critical,omitempty" json:"upper_critical,omitempty"`
	UpperFatal       *float64 `yaml:"upper_fatal,omitempty" json:"upper_fatal,omitempty"`
	Hysteresis       *float64 `yaml:"hysteresis,omitempty" json:"hysteresis,omitempty"`
}

// Policy says what boardd does when the board's health degrades.
type Policy struct {
	// Hold is how long the board must be healthy before shed or
	// throttled workloads are restored (default 30s).
	Hold Duration `yaml:"hold,omitempty" json:"hold,omitempty"`
	// Rules, checked in order; every matching rule's action applies.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// Rule maps a health condition to an action.
type Rule struct {
	Name string `yaml:"name" json:"name"`
	When When   `yaml:"when" json:"when"`
	// Action: "shed" (freeze sheddable workloads), "stop" (stop them),
	// "throttle" (CPU-quota normal workloads to ThrottlePercent), "event"
	// (record only).
	Action          string `yaml:"action" json:"action"`
	ThrottlePercent int    `yaml:"throttle_percent,omitempty" json:"throttle_percent,omitempty"`
}

// When is a health condition: any of the listed selectors at or above
// State. Exactly one selector kind is set.
type When struct {
	Subsystem string `yaml:"subsystem,omitempty" json:"subsystem,omitempty"` // Power, Thermal, Cooling, Fuses, Fabric
	Role      Role   `yaml:"role,omitempty" json:"role,omitempty"`
	Sensor    string `yaml:"sensor,omitempty" json:"sensor,omitempty"` // a sensor name
	State     string `yaml:"state" json:"state"`                       // Warning or Critical
}

// Fabric is the PCIe fabric the board is expected to have.
type Fabric struct {
	ID string `yaml:"id" json:"id"` // Redfish Fabrics/{id}, default "pcie"
	// Switches name each PCIe switch by the BDF path of its upstream port's
	// root port (e.g. "0000:00:03.0").
	Switches []Switch `yaml:"switches" json:"switches"`
	// AERLimit: AER errors per minute on one device above which the
	// device is Warning (correctable) or Critical (non-fatal, fatal).
	AERLimit int `yaml:"aer_limit_per_minute,omitempty" json:"aer_limit_per_minute,omitempty"`
}

// Switch is one PCIe switch and what sits behind its downstream ports.
type Switch struct {
	Name     string       `yaml:"name" json:"name"`
	RootPort string       `yaml:"root_port" json:"root_port"` // BDF of the root port above the switch
	Ports    []SwitchPort `yaml:"ports" json:"ports"`
}

// SwitchPort is one downstream port and the device expected behind it.
type SwitchPort struct {
	Port int `yaml:"port" json:"port"` // downstream port number (PCIe slot number)
	// Expect: the device class ("nvme", "storage", "ethernet", "network",
	// "accelerator", "empty"), its link speed in GT/s and width.
	Expect string  `yaml:"expect" json:"expect"`
	Speed  float64 `yaml:"speed_gts,omitempty" json:"speed_gts,omitempty"`
	Width  int     `yaml:"width,omitempty" json:"width,omitempty"`
}

// Workload is one container workload.
type Workload struct {
	Name     string            `yaml:"name" json:"name"`
	Image    string            `yaml:"image" json:"image"` // an archive path (oci-archive:/path) or registry reference
	Args     []string          `yaml:"args,omitempty" json:"args,omitempty"`
	Env      map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	CPU      float64           `yaml:"cpu,omitempty" json:"cpu,omitempty"`             // cores
	MemoryMB int               `yaml:"memory_mb,omitempty" json:"memory_mb,omitempty"` // MiB
	Restart  string            `yaml:"restart,omitempty" json:"restart,omitempty"`     // always | on-failure | never (default always)
	Priority string            `yaml:"priority,omitempty" json:"priority,omitempty"`   // critical | normal | sheddable (default normal)
}

// Boot is what the early-boot stage of the image does.
type Boot struct {
	// Modules to load, by name; dependencies come from modules.dep.
	Modules []string `yaml:"modules,omitempty" json:"modules,omitempty"`
	Network Network  `yaml:"network" json:"network"`
	// Persistent names a block device holding a filesystem for boardd's
	// state dir (event log, accounts); empty means tmpfs only.
	Persistent string `yaml:"persistent,omitempty" json:"persistent,omitempty"`
	Watchdog   string `yaml:"watchdog,omitempty" json:"watchdog,omitempty"` // e.g. /dev/watchdog0
	Cmdline    string `yaml:"cmdline,omitempty" json:"cmdline,omitempty"`   // kernel command line for emulated boots
}

// Network configures the board's management interface.
type Network struct {
	Interface string `yaml:"interface,omitempty" json:"interface,omitempty"` // default eth0
	Mode      string `yaml:"mode,omitempty" json:"mode,omitempty"`           // dhcp | static
	Address   string `yaml:"address,omitempty" json:"address,omitempty"`     // CIDR, static only
	Gateway   string `yaml:"gateway,omitempty" json:"gateway,omitempty"`
}

// Emulation describes the emulated board (qemu-tests, make run).
type Emulation struct {
	MemoryMB int `yaml:"memory_mb,omitempty" json:"memory_mb,omitempty"`
	CPUs     int `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	DiskMB   int `yaml:"disk_mb,omitempty" json:"disk_mb,omitempty"`
	// PCIe describes the emulated switch topology as QEMU devices.
	PCIe []SimPCIe `yaml:"pcie,omitempty" json:"pcie,omitempty"`
}

// SimPCIe is one QEMU PCIe device of the emulated board.
type SimPCIe struct {
	ID     string            `yaml:"id" json:"id"`
	Driver string            `yaml:"driver" json:"driver"` // pcie-root-port, x3130-upstream, xio3130-downstream, e1000e, virtio-blk-pci, nvme...
	Bus    string            `yaml:"bus,omitempty" json:"bus,omitempty"`
	Props  map[string]string `yaml:"props,omitempty" json:"props,omitempty"` // chassis, slot, x-speed, x-width...
}

// SimSensor describes how ipmi_sim emulates a sensor: its SDR fields and
// the initial raw value.
type SimSensor struct {
	Number     uint8 `yaml:"number" json:"number"`
	SensorType uint8 `yaml:"sensor_type" json:"sensor_type"` // IPMI sensor type code
	EventType  uint8 `yaml:"event_type" json:"event_type"`   // 0x01 threshold, 0x03 digital, 0x6f sensor-specific
	EntityID   uint8 `yaml:"entity_id" json:"entity_id"`
	EntityInst uint8 `yaml:"entity_instance,omitempty" json:"entity_instance,omitempty"`
	Unit       uint8 `yaml:"unit,omitempty" json:"unit,omitempty"`     // IPMI base unit code (1 Cel, 4 V, 5 A, 6 W, 18 RPM)
	Signed     bool  `yaml:"signed,omitempty" json:"signed,omitempty"` // 2's complement analog format
	M          int   `yaml:"m,omitempty" json:"m,omitempty"`
	B          int   `yaml:"b,omitempty" json:"b,omitempty"`
	RExp       int   `yaml:"r_exp,omitempty" json:"r_exp,omitempty"`
	BExp       int   `yaml:"b_exp,omitempty" json:"b_exp,omitempty"`
	// Raw thresholds and hysteresis, as the SDR carries them (bytes; 2's
	// complement for Signed sensors). SimValue, SimRaw and SimHysteresis
	// convert.
	RawThresholds map[string]uint8 `yaml:"raw_thresholds,omitempty" json:"raw_thresholds,omitempty"` // lnc, lc, lnr, unc, uc, unr
	RawHysteresis uint8            `yaml:"raw_hysteresis,omitempty" json:"raw_hysteresis,omitempty"`
	Initial       uint16           `yaml:"initial" json:"initial"` // raw reading, or discrete state bitmask
}
