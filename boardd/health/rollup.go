package health

import (
	"cmp"
	"fmt"
	"slices"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

// SubsystemOfRole is the roll-up a sensor role belongs to: PSU rails and
// status to Power, fuses to Fuses, temperatures to Thermal, pumps, fans
// and leak detectors to Cooling, anything else to Other.
func SubsystemOfRole(r boardconfig.Role) Subsystem {
	switch r {
	case boardconfig.RolePSUInput, boardconfig.RolePSUOutput, boardconfig.RolePSUStatus:
		return Power
	case boardconfig.RoleFuse:
		return Fuses
	case boardconfig.RoleTempOil, boardconfig.RoleTempInlet, boardconfig.RoleTempCPU, boardconfig.RoleTemp:
		return Thermal
	case boardconfig.RolePump, boardconfig.RoleFan, boardconfig.RoleLeak:
		return Cooling
	}
	return Other
}

// SubsystemOf is the roll-up a sensor belongs to: by its config role when
// the config lists it (role "other" is Other, whatever the BMC says), else
// by the BMC's class (voltage, current, power and psu to Power; fuse to
// Fuses; temperature to Thermal; fan, pump and leak to Cooling).
func SubsystemOf(def bmc.SensorDef, cfg *boardconfig.Sensor) Subsystem {
	if cfg != nil && cfg.Role != "" {
		return SubsystemOfRole(cfg.Role)
	}
	switch def.Class {
	case bmc.ClassVoltage, bmc.ClassCurrent, bmc.ClassPower, bmc.ClassPSU:
		return Power
	case bmc.ClassFuse:
		return Fuses
	case bmc.ClassTemperature:
		return Thermal
	case bmc.ClassFan, bmc.ClassPump, bmc.ClassLeak:
		return Cooling
	}
	return Other
}

// Member is one part of a roll-up: a sensor, a subsystem, a device.
type Member struct {
	Name   string
	State  State
	Reason string
}

// Rollup is the state of a group and one sentence saying why: the worst
// member wins (Critical over Warning), and an Unavailable member makes the
// group Warning at most, because an unknown part is a degraded view, not
// a known fault. A roll-up is therefore only ever OK, Warning or Critical
// (Redfish's Health values). The reason is that of the first member, in
// the order given, in the winning state (a Warning from a real reading is
// preferred to one from an Unavailable member), with a count of the
// others; empty when OK. An empty group is OK.
func Rollup(members ...Member) (State, string) {
	var first *Member
	state, n := OK, 0
	rank := func(s State) int { // Unavailable counts as Warning, below a real Warning
		switch s {
		case Critical:
			return 3
		case Warning:
			return 2
		case Unavailable:
			return 1
		}
		return 0
	}
	for i := range members {
		m := &members[i]
		switch {
		case rank(m.State) == 0:
			continue
		case first == nil || rank(m.State) > rank(first.State):
			first, n = m, 1
		case rank(m.State) == rank(first.State):
			n++
		}
		if m.State == Critical {
			state = Critical
		} else if state != Critical {
			state = Warning
		}
	}
	if first == nil {
		return OK, ""
	}
	reason := first.Reason
	if reason == "" {
		reason = fmt.Sprintf("%s is %s", first.Name, first.State)
	}
	if first.State == Unavailable {
		reason = "unknown: " + reason
	}
	if n > 1 {
		reason = fmt.Sprintf("%s (and %d more)", reason, n-1)
	}
	return state, reason
}

// SensorView is what roll-ups and policy rules need to know of a sensor.
type SensorView struct {
	Name      string
	Role      boardconfig.Role
	Subsystem Subsystem
	State     State
	Reason    string
}

// View summarizes a sensor's input and state for Subsystems and the rules.
func View(in Input, st SensorState) SensorView {
	return SensorView{
		Name:      in.name(),
		Role:      RoleOf(in.Def, in.Cfg),
		Subsystem: SubsystemOf(in.Def, in.Cfg),
		State:     st.State,
		Reason:    st.Reason,
	}
}

// Subsystems rolls sensors up by subsystem (members in name order, so
// reasons are stable). Only subsystems that have sensors appear.
func Subsystems(sensors []SensorView) map[Subsystem]Member {
	groups := map[Subsystem][]Member{}
	for _, s := range sensors {
		groups[s.Subsystem] = append(groups[s.Subsystem], Member{Name: s.Name, State: s.State, Reason: s.Reason})
	}
	out := make(map[Subsystem]Member, len(groups))
	for sub, ms := range groups {
		slices.SortStableFunc(ms, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
		st, why := Rollup(ms...)
		out[sub] = Member{Name: string(sub), State: st, Reason: why}
	}
	return out
}

// Board is the whole board's state: Critical "BMC unreachable: ..." when
// the BMC as a whole does not answer (bmcErr non-nil; the collector
// decides when, e.g. after its retries), because a sealed pod whose
// sensors cannot be read is blind to leaks, heat and power faults;
// otherwise the roll-up of the subsystems (see Rollup). Policy rules match
// subsystems and sensors, not the board, so losing the BMC alone sheds
// nothing: every sensor goes Unavailable and every subsystem Warning.
func Board(bmcErr error, subsystems ...Member) (State, string) {
	if bmcErr != nil {
		return Critical, fmt.Sprintf("BMC unreachable: %v", bmcErr)
	}
	return Rollup(subsystems...)
}
