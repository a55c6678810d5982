package health

import boardconfig "podos.dev/podos/board-configs"

// AtLeast tells whether s is at or worse than the state a rule names
// ("Warning" matches Warning and Critical, "Critical" only Critical).
// Unavailable matches nothing: boardd does not act on what it cannot see.
func AtLeast(s State, want string) bool {
	switch want {
	case "Warning":
		return s == Warning || s == Critical
	case "Critical":
		return s == Critical
	}
	return false
}

// Match tells whether a policy rule's condition holds: its subsystem's
// roll-up, any sensor of its role, or its sensor is at or worse than
// rule.When.State. sensors is keyed by sensor name (SensorView.Name);
// subsystems holds roll-up states (Subsystems' output, plus Fabric from
// the fabric watcher). A rule with no selector, or with more than one,
// matches nothing (Validate rejects such rules).
func Match(rule boardconfig.Rule, sensors map[string]SensorView, subsystems map[Subsystem]State) bool {
	w := rule.When
	set := 0
	for _, s := range []string{w.Subsystem, string(w.Role), w.Sensor} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return false
	}
	switch {
	case w.Subsystem != "":
		st, ok := subsystems[Subsystem(w.Subsystem)]
		return ok && AtLeast(st, w.State)
	case w.Role != "":
		for _, s := range sensors {
			if s.Role == w.Role && AtLeast(s.State, w.State) {
				return true
			}
		}
		return false
	default:
		s, ok := sensors[w.Sensor]
		return ok && AtLeast(s.State, w.State)
	}
}

// ActiveActions returns the config's rules whose conditions hold now, in
// config order. Every returned rule's action applies (the shedder combines
// them: e.g. the lowest throttle percentage wins). A nil config has no
// rules.
func ActiveActions(cfg *boardconfig.Config, sensors map[string]SensorView, subsystems map[Subsystem]State) []boardconfig.Rule {
	if cfg == nil {
		return nil
	}
	var out []boardconfig.Rule
	for _, r := range cfg.Policy.Rules {
		if Match(r, sensors, subsystems) {
			out = append(out, r)
		}
	}
	return out
}

// SensorMap indexes views by name, for Match and ActiveActions.
func SensorMap(views []SensorView) map[string]SensorView {
	m := make(map[string]SensorView, len(views))
	for _, v := range views {
		m[v.Name] = v
	}
	return m
}

// SubsystemStates flattens a Subsystems result to the states Match reads.
func SubsystemStates(subs map[Subsystem]Member) map[Subsystem]State {
	m := make(map[Subsystem]State, len(subs))
	for k, v := range subs {
		m[k] = v.State
	}
	return m
}
