package ipmi

import (
	"strings"

	"podos.dev/podos/bmc"
)

// IPMI base unit codes (IPMI 2.0 table 43-15) that boardd models.
const (
	UnitCodeUnspecified uint8 = 0
	UnitCodeCelsius     uint8 = 1
	UnitCodeVolts       uint8 = 4
	UnitCodeAmps        uint8 = 5
	UnitCodeWatts       uint8 = 6
	UnitCodeRPM         uint8 = 18
)

// IPMI entity IDs (IPMI 2.0 table 43-13) the class rules use.
const (
	EntityPowerSupply uint8 = 0x0a
	EntityPowerUnit   uint8 = 0x13
	EntityPowerModule uint8 = 0x14 // DC/DC converter
	EntityFanCooling  uint8 = 0x1d // fan / cooling device
	EntityCoolingUnit uint8 = 0x1e // cooling unit / cooling domain (pumps, loops)
)

// IPMI sensor type codes (IPMI 2.0 table 42-3) the class rules use.
const (
	TypeTemperature   uint8 = 0x01
	TypeVoltage       uint8 = 0x02
	TypeCurrent       uint8 = 0x03
	TypeFan           uint8 = 0x04
	TypePowerSupply   uint8 = 0x08
	TypePowerUnit     uint8 = 0x09
	TypeCoolingDevice uint8 = 0x0a
)

// UnitOf maps an SDR's units to a bmc.Unit. The percentage bit wins over
// the base unit. Discrete sensors have no unit.
func UnitOf(s *SDR) bmc.Unit {
	if !s.IsThreshold() {
		return bmc.UnitNone
	}
	if s.Percentage {
		return bmc.UnitPercent
	}
	switch s.BaseUnit {
	case UnitCodeCelsius:
		return bmc.UnitCelsius
	case UnitCodeVolts:
		return bmc.UnitVolts
	case UnitCodeAmps:
		return bmc.UnitAmperes
	case UnitCodeWatts:
		return bmc.UnitWatts
	case UnitCodeRPM:
		return bmc.UnitRPM
	default:
		return bmc.UnitOther
	}
}

// ClassOf derives what a sensor measures. The rules, in order:
//
// Threshold sensors: the unit decides first, because BMCs often put a
// unit on a sensor of another type (Watts on a Current-type sensor is
// power):
//   - W -> power, V -> voltage, A -> current, Cel -> temperature;
//   - RPM -> pump when the entity is a cooling unit (0x1e) or the name
//     contains "PUMP", else fan;
//   - any other unit: the sensor type decides (0x01 temperature,
//     0x02 voltage, 0x03 current, 0x04 fan, or pump by the RPM rule),
//     else other.
//
// Discrete sensors: the name first (it is the board designer's intent),
// then the entity and sensor type:
//   - a name containing "FUSE" -> fuse; "LEAK" -> leak;
//   - sensor type 0x08 (power supply) with the digital reading type 0x03
//     (state asserted/deasserted) -> fuse: a fuse is a binary element of
//     the power path;
//   - sensor type 0x08 otherwise (0x6f sensor-specific: presence,
//     failure, input lost...) -> psu; likewise a discrete sensor on a
//     power supply entity (0x0a) or power unit (0x13, type 0x09);
//   - a discrete sensor on a cooling unit entity (0x1e) or of type 0x0a
//     (cooling device) -> leak (a coolant loop's discrete state is its
//     leak detector on RuggedPOD boards);
//   - anything else -> other.
func ClassOf(s *SDR) bmc.Class {
	name := strings.ToUpper(s.Name)
	if s.IsThreshold() {
		switch UnitOf(s) {
		case bmc.UnitWatts:
			return bmc.ClassPower
		case bmc.UnitVolts:
			return bmc.ClassVoltage
		case bmc.UnitAmperes:
			return bmc.ClassCurrent
		case bmc.UnitCelsius:
			return bmc.ClassTemperature
		case bmc.UnitRPM:
			return rotating(s, name)
		}
		switch s.SensorType {
		case TypeTemperature:
			return bmc.ClassTemperature
		case TypeVoltage:
			return bmc.ClassVoltage
		case TypeCurrent:
			return bmc.ClassCurrent
		case TypeFan:
			return rotating(s, name)
		}
		return bmc.ClassOther
	}
	switch {
	case strings.Contains(name, "FUSE"):
		return bmc.ClassFuse
	case strings.Contains(name, "LEAK"):
		return bmc.ClassLeak
	case s.SensorType == TypePowerSupply && s.ReadingType == 0x03:
		return bmc.ClassFuse
	case s.SensorType == TypePowerSupply, s.SensorType == TypePowerUnit,
		s.EntityID == EntityPowerSupply, s.EntityID == EntityPowerUnit:
		return bmc.ClassPSU
	case s.EntityID == EntityCoolingUnit, s.SensorType == TypeCoolingDevice:
		return bmc.ClassLeak
	}
	return bmc.ClassOther
}

func rotating(s *SDR, upperName string) bmc.Class {
	if s.EntityID == EntityCoolingUnit || strings.Contains(upperName, "PUMP") {
		return bmc.ClassPump
	}
	return bmc.ClassFan
}
