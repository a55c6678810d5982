package health

import (
	"fmt"
	"strings"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

// IPMI event/reading types (IPMI 2.0 table 42-2) that judgeDiscrete reads.
const (
	readingDigital     = 0x03 // offset 0 state deasserted, 1 state asserted
	readingPredictive  = 0x04 // 0 predictive failure deasserted, 1 asserted
	readingLimit       = 0x05 // 0 limit not exceeded, 1 limit exceeded
	readingPerformance = 0x06 // 0 performance met, 1 performance lags
	readingSeverity    = 0x07 // transition to OK / non-critical / critical ...
	readingPresence    = 0x08 // 0 device removed/absent, 1 inserted/present
	readingEnabled     = 0x09 // 0 device disabled, 1 device enabled
	readingSpecific    = 0x6f // sensor-specific offsets (by sensor type)

	sensorTypePSU       = 0x08 // power supply
	sensorTypePowerUnit = 0x09 // power unit
)

// RoleOf is what a sensor is to the board: the config's role, else one
// derived from the BMC's class (RoleOther when the class says nothing
// more precise, e.g. a voltage the config does not name).
func RoleOf(def bmc.SensorDef, cfg *boardconfig.Sensor) boardconfig.Role {
	if cfg != nil && cfg.Role != "" {
		return cfg.Role
	}
	switch def.Class {
	case bmc.ClassPSU:
		return boardconfig.RolePSUStatus
	case bmc.ClassFuse:
		return boardconfig.RoleFuse
	case bmc.ClassLeak:
		return boardconfig.RoleLeak
	case bmc.ClassTemperature:
		return boardconfig.RoleTemp
	case bmc.ClassFan:
		return boardconfig.RoleFan
	case bmc.ClassPump:
		return boardconfig.RolePump
	}
	return boardconfig.RoleOther
}

func what(in Input) boardconfig.Role { return RoleOf(in.Def, in.Cfg) }

// faulted tells whether a two-state discrete reading is in its bad state,
// for the generic reading types whose offsets 0/1 are a good/bad pair:
// digital 0x03-0x06 and sensor-specific 0x6f are bad when offset 1 is
// asserted (state asserted, predictive failure, limit exceeded,
// performance lags; for a power-supply 0x6f sensor offset 1 is "failure
// detected"); presence 0x08 and enable 0x09 are bad when offset 0 is
// asserted (device absent, device disabled). ok is false for a reading
// type with no such pair.
func faulted(readingType uint8, bits uint16) (bad, ok bool) {
	switch readingType {
	case readingDigital, readingPredictive, readingLimit, readingPerformance, readingSpecific:
		return bits&(1<<1) != 0, true
	case readingPresence, readingEnabled:
		return bits&(1<<0) != 0, true
	}
	return false, false
}

// psuOffsets are the power-supply sensor-specific offsets (sensor type
// 0x08, reading type 0x6f) and what each one means to the board.
var psuOffsets = []struct {
	bit   uint
	state State
	what  string
}{
	{1, Critical, "failure detected"},
	{3, Critical, "input lost"},
	{4, Critical, "input lost or out of range"},
	{2, Warning, "predictive failure"},
	{5, Warning, "input out of range"},
	{6, Warning, "configuration error"},
}

// powerUnitOffsets are the power-unit offsets (sensor type 0x09, 0x6f).
var powerUnitOffsets = []struct {
	bit   uint
	state State
	what  string
}{
	{4, Critical, "AC lost"},
	{6, Critical, "failure detected"},
	{5, Warning, "soft power control failure"},
	{7, Warning, "predictive failure"},
}

// judgeDiscrete reads a discrete sensor's asserted offsets (bit n of bits
// is offset n):
//
//   - psu-status (or class psu): a power supply's sensor-specific offsets
//     (type 0x08, 0x6f): presence detected (0) clear = Critical "not
//     present"; failure (1), input lost (3), input lost or out of range
//     (4) = Critical; predictive failure (2), input out of range (5),
//     configuration error (6) = Warning. A power unit (type 0x09) likewise
//     (AC lost, failure = Critical). On a generic two-state reading type
//     (e.g. digital 0x03) the bad state is Critical.
//   - fuse: blown when in the bad state of its reading type (see faulted:
//     for the digital 0x03 fuse of the RuggedPOD SDR, offset 1 "state
//     asserted", reading bit 1) = Critical.
//   - leak: likewise, leak detected = Critical.
//   - any discrete sensor with the severity reading type 0x07: offsets
//     1 and 4 (non-critical) = Warning, 2, 3, 5 and 6 (critical,
//     non-recoverable) = Critical.
//   - anything else: OK (boardd does not guess the meaning of offsets).
func judgeDiscrete(name string, role boardconfig.Role, sensorType, readingType uint8, bits uint16) (State, string) {
	asserted := func(n uint) bool { return bits&(1<<n) != 0 }
	switch role {
	case boardconfig.RolePSUStatus:
		if readingType == readingSpecific && sensorType == sensorTypePSU {
			st, problems := OK, []string(nil)
			if !asserted(0) {
				st, problems = Critical, append(problems, "not present")
			}
			for _, o := range psuOffsets {
				if asserted(o.bit) {
					st = Worse(st, o.state)
					problems = append(problems, o.what)
				}
			}
			if st == OK {
				return OK, ""
			}
			return st, fmt.Sprintf("%s: power supply %s", name, strings.Join(problems, ", "))
		}
		if readingType == readingSpecific && sensorType == sensorTypePowerUnit {
			st, problems := OK, []string(nil)
			for _, o := range powerUnitOffsets {
				if asserted(o.bit) {
					st = Worse(st, o.state)
					problems = append(problems, o.what)
				}
			}
			if st == OK {
				return OK, ""
			}
			return st, fmt.Sprintf("%s: power unit %s", name, strings.Join(problems, ", "))
		}
		if bad, ok := faulted(readingType, bits); ok && bad {
			return Critical, fmt.Sprintf("%s: power supply fault asserted", name)
		}
	case boardconfig.RoleFuse:
		if bad, _ := faulted(readingType, bits); bad {
			return Critical, fmt.Sprintf("%s blown", name)
		}
		return OK, ""
	case boardconfig.RoleLeak:
		if bad, _ := faulted(readingType, bits); bad {
			return Critical, fmt.Sprintf("%s: coolant leak detected", name)
		}
		return OK, ""
	}
	if readingType == readingSeverity {
		switch {
		case asserted(2) || asserted(3) || asserted(5) || asserted(6):
			return Critical, fmt.Sprintf("%s reports a critical condition", name)
		case asserted(1) || asserted(4):
			return Warning, fmt.Sprintf("%s reports a non-critical condition", name)
		}
	}
	return OK, ""
}
