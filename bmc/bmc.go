// Package bmc turns a board's BMC into sensor definitions and readings.
//
// A Client is the small interface every transport implements (IPMI over
// KCS, IPMI LAN, Redfish). Optional capabilities (reading and writing the
// SEL, detecting SDR repository changes) are separate interfaces that a
// client may also implement, in the style of Talos' pkg/provision: callers
// type-assert for them.
//
// This package knows nothing of policy: it reports what the BMC says.
package bmc

import (
	"context"
	"errors"
	"time"
)

// Unit is a reading's unit, spelled as DMTF Redfish's ReadingUnits (UCUM).
type Unit string

// Units boardd understands. Discrete sensors have UnitNone.
const (
	UnitNone    Unit = ""
	UnitVolts   Unit = "V"
	UnitAmperes Unit = "A"
	UnitWatts   Unit = "W"
	UnitCelsius Unit = "Cel"
	UnitRPM     Unit = "RPM"
	UnitPercent Unit = "%"
	UnitOther   Unit = "1" // a unit boardd does not model; the raw value is kept
)

// Class is what a sensor measures, derived from the SDR's unit and entity
// first and its sensor type second (many BMCs put Watts on a Current-type
// sensor).
type Class string

// Sensor classes.
const (
	ClassVoltage     Class = "voltage"
	ClassCurrent     Class = "current"
	ClassPower       Class = "power"
	ClassTemperature Class = "temperature"
	ClassFan         Class = "fan"
	ClassPump        Class = "pump"
	ClassPSU         Class = "psu"  // power supply status (discrete)
	ClassFuse        Class = "fuse" // fuse state (discrete)
	ClassLeak        Class = "leak" // leak detector (discrete)
	ClassOther       Class = "other"
)

// Kind tells threshold-based sensors from discrete ones.
type Kind string

// Sensor kinds.
const (
	KindThreshold Kind = "threshold"
	KindDiscrete  Kind = "discrete"
)

// Thresholds of a threshold sensor, in the sensor's unit. A nil pointer
// means the BMC does not provide that threshold.
type Thresholds struct {
	LowerNonCritical *float64 `json:"lower_non_critical,omitempty"`
	LowerCritical    *float64 `json:"lower_critical,omitempty"`
	LowerFatal       *float64 `json:"lower_fatal,omitempty"`
	UpperNonCritical *float64 `json:"upper_non_critical,omitempty"`
	UpperCritical    *float64 `json:"upper_critical,omitempty"`
	UpperFatal       *float64 `json:"upper_fatal,omitempty"`
	// Hysteresis in the sensor's unit: how far a reading must come back
	// past a threshold before the condition clears.
	PositiveHysteresis float64 `json:"positive_hysteresis,omitempty"`
	NegativeHysteresis float64 `json:"negative_hysteresis,omitempty"`
}

// SensorDef describes one sensor as discovered (from the SDR repository
// over IPMI, or from Chassis Sensors over Redfish).
type SensorDef struct {
	// ID is stable across restarts and SDR re-reads: for IPMI it is
	// derived from owner, LUN and sensor number ("20-0-01"); for Redfish
	// it is the Sensor resource's Id.
	ID   string `json:"id"`
	Name string `json:"name"` // the BMC's own name for the sensor

	// IPMI addressing; zero for Redfish.
	Owner  uint8 `json:"owner"`
	LUN    uint8 `json:"lun"`
	Number uint8 `json:"number"`

	SensorType     uint8 `json:"sensor_type"`  // IPMI sensor type code
	ReadingType    uint8 `json:"reading_type"` // IPMI event/reading type code
	EntityID       uint8 `json:"entity_id"`
	EntityInstance uint8 `json:"entity_instance"`

	Kind       Kind       `json:"kind"`
	Unit       Unit       `json:"unit"`
	Class      Class      `json:"class"`
	Thresholds Thresholds `json:"thresholds"`
}

// Reading is one sample of one sensor.
type Reading struct {
	ID string `json:"id"`
	// Value in the sensor's unit (threshold sensors).
	Value float64 `json:"value"`
	// State is the asserted discrete offsets as a bitmask (bit n set means
	// offset n asserted) for discrete sensors, and the threshold
	// comparison status byte for threshold sensors.
	State uint16 `json:"state"`
	// Available is false when the BMC answered that the reading is
	// unavailable (scanning disabled, initial update in progress) or the
	// sensor did not answer at all.
	Available bool      `json:"available"`
	Time      time.Time `json:"time"`
	// Err says why a reading is unavailable; empty otherwise.
	Err string `json:"err,omitempty"`
}

// Client is a connection to one BMC.
type Client interface {
	// Transport names the transport: "kcs", "lan" or "redfish".
	Transport() string
	// Sensors discovers every sensor the BMC exposes.
	Sensors(ctx context.Context) ([]SensorDef, error)
	// Read samples the given sensors. It returns one Reading per
	// definition, in order; a sensor that fails has Available false. The
	// error is non-nil only when the BMC itself is unreachable.
	Read(ctx context.Context, defs []SensorDef) ([]Reading, error)
	// Close releases the connection (and any IPMI session).
	Close() error
}

// SDRWatcher is implemented by clients that can tell whether the BMC's
// sensor repository changed since the last call to Sensors.
type SDRWatcher interface {
	SDRChanged(ctx context.Context) (bool, error)
}

// SELEntry is one record of the BMC's System Event Log.
type SELEntry struct {
	RecordID     uint16    `json:"record_id"`
	Time         time.Time `json:"time"`
	GeneratorID  uint16    `json:"generator_id"`
	SensorType   uint8     `json:"sensor_type"`
	SensorNumber uint8     `json:"sensor_number"`
	EventType    uint8     `json:"event_type"`
	Deassertion  bool      `json:"deassertion"`
	EventData    [3]byte   `json:"event_data"`
	// Message is a human-readable rendering, as ipmitool would show it.
	Message string `json:"message"`
}

// SELReader is implemented by clients that can read the SEL.
type SELReader interface {
	SEL(ctx context.Context) ([]SELEntry, error)
}

// SELEvent is what boardd writes to the BMC's SEL when health changes: a
// system event record (type 0x02) generated by boardd as system software.
type SELEvent struct {
	SensorType   uint8
	SensorNumber uint8
	EventType    uint8 // event/reading type, e.g. 0x01 threshold, 0x6f sensor-specific
	Deassertion  bool
	EventData    [3]byte
}

// SELWriter is implemented by clients that can add SEL entries.
type SELWriter interface {
	AddSEL(ctx context.Context, ev SELEvent) (recordID uint16, err error)
}

// ErrUnavailable is returned (wrapped) when the BMC does not answer.
var ErrUnavailable = errors.New("bmc unavailable")
