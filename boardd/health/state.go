// Package health is boardd's policy: pure functions that turn readings,
// thresholds and the board config into per-sensor states (Evaluate, with
// Effective thresholds, hysteresis and debounce), subsystem and board
// roll-ups (SubsystemOf, Rollup, Subsystems, Board) and the policy rules in
// force (Match, ActiveActions). It does no I/O and keeps no state of its
// own: the caller keeps each sensor's SensorState between samples and
// turns changes into events. It is table-tested exhaustively.
package health

// State is a health state, ordered from best to worst except Unavailable,
// which sorts last because it means "unknown".
type State int

// States, in the order of boardd_sensor_state's values.
const (
	OK          State = 0
	Warning     State = 1
	Critical    State = 2
	Unavailable State = 3
)

func (s State) String() string {
	switch s {
	case OK:
		return "OK"
	case Warning:
		return "Warning"
	case Critical:
		return "Critical"
	case Unavailable:
		return "Unavailable"
	}
	return "Unknown"
}

// Worse returns the worse of two states for a roll-up: Critical beats
// Warning beats Unavailable beats OK (an unknown sensor degrades a roll-up
// to Warning at most; see Rollup).
func Worse(a, b State) State {
	rank := func(s State) int {
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
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Subsystem groups sensors for roll-ups.
type Subsystem string

// Subsystems.
const (
	Power   Subsystem = "Power"
	Thermal Subsystem = "Thermal"
	Cooling Subsystem = "Cooling"
	Fuses   Subsystem = "Fuses"
	Fabric  Subsystem = "Fabric"
	Other   Subsystem = "Other"
)
