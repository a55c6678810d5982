package workloads

import (
	"fmt"
	"sort"
	"strings"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
)

// Mode is what protection does to a workload, from none to the most severe.
type Mode int

// Protection modes.
const (
	ModeNone      Mode = iota
	ModeThrottled      // CPU quota cut to Percent of its limit (or of one core)
	ModeFrozen         // task paused (cgroup freezer)
	ModeStopped        // task stopped until the board is healthy again
)

func (m Mode) String() string {
	switch m {
	case ModeThrottled:
		return "throttled"
	case ModeFrozen:
		return "frozen"
	case ModeStopped:
		return "stopped"
	}
	return "none"
}

// Protection is what the policy wants done to one workload, and why.
type Protection struct {
	Mode    Mode   `json:"mode"`
	Percent int    `json:"percent,omitempty"` // ModeThrottled only
	Reason  string `json:"reason,omitempty"`
}

// Rule actions.
const (
	ActionShed     = "shed"
	ActionStop     = "stop"
	ActionThrottle = "throttle"
	ActionEvent    = "event"
)

// HealthView is the board's health as the rules see it.
type HealthView struct {
	Subsystems map[health.Subsystem]health.State
	Sensors    []SensorHealth
}

// SensorHealth is one sensor's judged state.
type SensorHealth struct {
	ID    string
	Name  string
	Role  boardconfig.Role
	State health.State
}

// Match is a rule that matches the current health, and why.
type Match struct {
	Rule boardconfig.Rule
	Why  string // e.g. "Power is Critical"
}

// atLeast reports whether s is at or worse than want (Warning or
// Critical); Unavailable never matches (unknown is not a fault here: a
// required sensor that vanished is judged Critical by the policy).
func atLeast(s health.State, want string) bool {
	rank := func(s health.State) int {
		switch s {
		case health.Warning:
			return 1
		case health.Critical:
			return 2
		}
		return 0
	}
	var w health.State
	switch strings.ToLower(want) {
	case "warning":
		w = health.Warning
	case "critical":
		w = health.Critical
	default:
		return false
	}
	return rank(s) >= rank(w) && rank(s) > 0
}

// MatchRules returns the rules that match h, in rule order.
func MatchRules(rules []boardconfig.Rule, h HealthView) []Match {
	var out []Match
	for _, r := range rules {
		switch {
		case r.When.Subsystem != "":
			if st, ok := h.Subsystems[health.Subsystem(r.When.Subsystem)]; ok && atLeast(st, r.When.State) {
				out = append(out, Match{Rule: r, Why: fmt.Sprintf("%s is %s", r.When.Subsystem, st)})
			}
		case r.When.Role != "":
			var hit []string
			var worst health.State
			for _, s := range h.Sensors {
				if s.Role == r.When.Role && atLeast(s.State, r.When.State) {
					hit = append(hit, s.Name)
					worst = health.Worse(worst, s.State)
				}
			}
			if len(hit) > 0 {
				out = append(out, Match{Rule: r, Why: fmt.Sprintf("%s sensor %s is %s", r.When.Role, strings.Join(hit, ", "), worst)})
			}
		case r.When.Sensor != "":
			for _, s := range h.Sensors {
				if s.Name == r.When.Sensor && atLeast(s.State, r.When.State) {
					out = append(out, Match{Rule: r, Why: fmt.Sprintf("sensor %s is %s", s.Name, s.State)})
					break
				}
			}
		}
	}
	return out
}

// ShedMemory is what Decide remembers between calls: when each action
// last matched, so restoration waits for the hold time.
type ShedMemory struct {
	Actions map[string]ActiveAction
}

// ActiveAction is one action kind in force.
type ActiveAction struct {
	LastSeen time.Time // last Decide at which it matched
	// ClearedAt is the first Decide at which it no longer matched: the
	// hold runs from here.
	ClearedAt time.Time
	Why       string // the matching rules and reasons, e.g. "rule power-critical: Power is Critical"
	Percent   int    // throttle only: the lowest percent asked
	Matching  bool   // matched at the last Decide (false: held)
}

// WorkloadRef is the part of a workload the shed decision needs.
type WorkloadRef struct {
	Name     string
	Priority string
}

// Decide is the shed decision, pure: given the time, the hold, the rules
// that match now and what it remembered, it returns the protection every
// workload must have and the memory for the next call. Sheddable
// workloads are frozen (shed) or stopped (stop) and throttled (throttle);
// normal ones are throttled only; critical ones are never touched. An
// action stays in force until its rules have not matched for hold,
// counted from the first call that saw them clear.
func Decide(now time.Time, hold time.Duration, matches []Match, mem ShedMemory, ws []WorkloadRef) (map[string]Protection, ShedMemory) {
	next := ShedMemory{Actions: map[string]ActiveAction{}}
	cur := map[string][]string{}
	pct := map[string]int{}
	for _, m := range matches {
		a := m.Rule.Action
		cur[a] = append(cur[a], fmt.Sprintf("rule %s: %s", m.Rule.Name, m.Why))
		if a == ActionThrottle {
			p := m.Rule.ThrottlePercent
			if p <= 0 || p > 100 {
				p = 50
			}
			if old, ok := pct[a]; !ok || p < old {
				pct[a] = p
			}
		}
	}
	for a, why := range cur {
		next.Actions[a] = ActiveAction{LastSeen: now, Why: strings.Join(why, "; "), Percent: pct[a], Matching: true}
	}
	for a, old := range mem.Actions {
		if _, ok := next.Actions[a]; ok {
			continue
		}
		if old.Matching {
			old.Matching, old.ClearedAt = false, now
		}
		if now.Sub(old.ClearedAt) < hold {
			next.Actions[a] = old
		}
	}
	reason := func(a string) string {
		x := next.Actions[a]
		if x.Matching {
			return x.Why
		}
		return fmt.Sprintf("%s (cleared, holding until healthy for %s)", x.Why, hold)
	}
	thr, isThr := next.Actions[ActionThrottle]
	_, isStop := next.Actions[ActionStop]
	_, isShed := next.Actions[ActionShed]
	out := make(map[string]Protection, len(ws))
	for _, w := range ws {
		p := Protection{}
		switch w.Priority {
		case PrioritySheddable:
			switch {
			case isStop:
				p = Protection{Mode: ModeStopped, Reason: reason(ActionStop)}
			case isShed:
				p = Protection{Mode: ModeFrozen, Reason: reason(ActionShed)}
			case isThr:
				p = Protection{Mode: ModeThrottled, Percent: thr.Percent, Reason: reason(ActionThrottle)}
			}
		case PriorityNormal:
			if isThr {
				p = Protection{Mode: ModeThrottled, Percent: thr.Percent, Reason: reason(ActionThrottle)}
			}
		}
		out[w.Name] = p
	}
	return out, next
}

// Step is one protective change to apply.
type Step struct {
	Name     string
	Priority string
	From, To Protection
}

// Escalates reports whether the step makes the workload more constrained.
func (s Step) Escalates() bool {
	return s.To.Mode > s.From.Mode || (s.To.Mode == ModeThrottled && s.From.Mode == ModeThrottled && s.To.Percent < s.From.Percent)
}

// Plan orders the changes from cur to want: escalations first,
// sheddable before normal; then restorations in reverse, normal before
// sheddable. Unchanged workloads (same mode and percent) get no step;
// a changed reason alone is not a step.
func Plan(cur, want map[string]Protection, ws []WorkloadRef) []Step {
	rank := func(prio string) int {
		switch prio {
		case PrioritySheddable:
			return 0
		case PriorityNormal:
			return 1
		}
		return 2
	}
	var up, down []Step
	for _, w := range ws {
		f, t := cur[w.Name], want[w.Name]
		if f.Mode == t.Mode && (t.Mode != ModeThrottled || f.Percent == t.Percent) {
			continue
		}
		s := Step{Name: w.Name, Priority: w.Priority, From: f, To: t}
		if s.Escalates() {
			up = append(up, s)
		} else {
			down = append(down, s)
		}
	}
	sort.SliceStable(up, func(i, j int) bool {
		if rank(up[i].Priority) != rank(up[j].Priority) {
			return rank(up[i].Priority) < rank(up[j].Priority)
		}
		return up[i].Name < up[j].Name
	})
	sort.SliceStable(down, func(i, j int) bool {
		if rank(down[i].Priority) != rank(down[j].Priority) {
			return rank(down[i].Priority) > rank(down[j].Priority)
		}
		return down[i].Name < down[j].Name
	})
	return append(up, down...)
}
