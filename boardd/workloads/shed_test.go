package workloads

import (
	"reflect"
	"strings"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
)

var testRules = []boardconfig.Rule{
	{Name: "power-critical", When: boardconfig.When{Subsystem: "Power", State: "Critical"}, Action: ActionShed},
	{Name: "fuse-blown", When: boardconfig.When{Subsystem: "Fuses", State: "Critical"}, Action: ActionStop},
	{Name: "thermal-warning", When: boardconfig.When{Subsystem: "Thermal", State: "Warning"}, Action: ActionThrottle, ThrottlePercent: 50},
	{Name: "cpu-hot", When: boardconfig.When{Sensor: "CPU_TEMP", State: "Critical"}, Action: ActionThrottle, ThrottlePercent: 25},
	{Name: "leak", When: boardconfig.When{Role: boardconfig.RoleLeak, State: "Critical"}, Action: ActionShed},
	{Name: "note", When: boardconfig.When{Subsystem: "Cooling", State: "Warning"}, Action: ActionEvent},
}

func view(subs map[health.Subsystem]health.State, sensors ...SensorHealth) HealthView {
	return HealthView{Subsystems: subs, Sensors: sensors}
}

func TestMatchRules(t *testing.T) {
	tests := []struct {
		name string
		v    HealthView
		want []string // rule names
		why  string   // of the first match
	}{
		{"healthy", view(map[health.Subsystem]health.State{health.Power: health.OK, health.Thermal: health.OK}), nil, ""},
		{"power warning is not critical", view(map[health.Subsystem]health.State{health.Power: health.Warning}), nil, ""},
		{"power critical", view(map[health.Subsystem]health.State{health.Power: health.Critical}), []string{"power-critical"}, "Power is Critical"},
		{"unavailable never matches", view(map[health.Subsystem]health.State{health.Power: health.Unavailable, health.Thermal: health.Unavailable}), nil, ""},
		{"thermal critical is at least warning", view(map[health.Subsystem]health.State{health.Thermal: health.Critical}), []string{"thermal-warning"}, "Thermal is Critical"},
		{"fuse and power", view(map[health.Subsystem]health.State{health.Power: health.Critical, health.Fuses: health.Critical}), []string{"power-critical", "fuse-blown"}, "Power is Critical"},
		{"sensor by name", view(nil, SensorHealth{Name: "CPU_TEMP", State: health.Critical}), []string{"cpu-hot"}, "sensor CPU_TEMP is Critical"},
		{"sensor warning below rule", view(nil, SensorHealth{Name: "CPU_TEMP", State: health.Warning}), nil, ""},
		{"role", view(nil, SensorHealth{Name: "LEAK", Role: boardconfig.RoleLeak, State: health.Critical}, SensorHealth{Name: "LEAK2", Role: boardconfig.RoleLeak, State: health.OK}), []string{"leak"}, "leak sensor LEAK is Critical"},
		{"event rule", view(map[health.Subsystem]health.State{health.Cooling: health.Warning}), []string{"note"}, "Cooling is Warning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := MatchRules(testRules, tt.v)
			var got []string
			for _, m := range ms {
				got = append(got, m.Rule.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("matched %v, want %v", got, tt.want)
			}
			if len(ms) > 0 && ms[0].Why != tt.why {
				t.Errorf("why %q, want %q", ms[0].Why, tt.why)
			}
		})
	}
}

var testRefs = []WorkloadRef{{"batch", PrioritySheddable}, {"web", PriorityNormal}, {"sentinel", PriorityCritical}}

func match(name string) Match {
	for _, r := range testRules {
		if r.Name == name {
			return Match{Rule: r, Why: "why-" + name}
		}
	}
	panic(name)
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hold := 30 * time.Second
	type want map[string]Mode
	tests := []struct {
		name    string
		matches []Match
		want    want
		pct     int
	}{
		{"nothing", nil, want{"batch": ModeNone, "web": ModeNone, "sentinel": ModeNone}, 0},
		{"shed freezes sheddable only", []Match{match("power-critical")}, want{"batch": ModeFrozen, "web": ModeNone, "sentinel": ModeNone}, 0},
		{"stop beats shed", []Match{match("power-critical"), match("fuse-blown")}, want{"batch": ModeStopped, "web": ModeNone, "sentinel": ModeNone}, 0},
		{"throttle non-critical", []Match{match("thermal-warning")}, want{"batch": ModeThrottled, "web": ModeThrottled, "sentinel": ModeNone}, 50},
		{"lowest percent wins", []Match{match("thermal-warning"), match("cpu-hot")}, want{"batch": ModeThrottled, "web": ModeThrottled, "sentinel": ModeNone}, 25},
		{"shed and throttle", []Match{match("power-critical"), match("thermal-warning")}, want{"batch": ModeFrozen, "web": ModeThrottled, "sentinel": ModeNone}, 50},
		{"event only", []Match{match("note")}, want{"batch": ModeNone, "web": ModeNone, "sentinel": ModeNone}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mem := Decide(t0, hold, tt.matches, ShedMemory{}, testRefs)
			for n, m := range tt.want {
				if got[n].Mode != m {
					t.Errorf("%s: %s, want %s", n, got[n].Mode, m)
				}
				if m == ModeThrottled && got[n].Percent != tt.pct {
					t.Errorf("%s: %d%%, want %d%%", n, got[n].Percent, tt.pct)
				}
				if m != ModeNone && !strings.Contains(got[n].Reason, "why-") {
					t.Errorf("%s: reason %q", n, got[n].Reason)
				}
			}
			if len(mem.Actions) != len(uniqueActions(tt.matches)) {
				t.Errorf("memory %v", mem.Actions)
			}
		})
	}
}

func uniqueActions(ms []Match) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.Rule.Action] = true
	}
	return out
}

func TestDecideHold(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hold := 30 * time.Second
	crit := []Match{match("power-critical")}
	steps := []struct {
		at      time.Duration
		matches []Match
		batch   Mode
		held    bool
	}{
		{0, crit, ModeFrozen, false},
		{10 * time.Second, crit, ModeFrozen, false}, // still critical
		{20 * time.Second, nil, ModeFrozen, true},   // cleared: hold starts here
		{49 * time.Second, nil, ModeFrozen, true},   // 29 s healthy
		{50 * time.Second, nil, ModeNone, false},    // 30 s healthy: restored
		{51 * time.Second, crit, ModeFrozen, false}, // again
		{60 * time.Second, nil, ModeFrozen, true},   // cleared at 60
		{70 * time.Second, crit, ModeFrozen, false}, // flaps back: hold restarts
		{80 * time.Second, nil, ModeFrozen, true},   // cleared at 80
		{80*time.Second + hold - time.Millisecond, nil, ModeFrozen, true},
		{80*time.Second + hold, nil, ModeNone, false},
	}
	var mem ShedMemory
	for i, s := range steps {
		got, next := Decide(t0.Add(s.at), hold, s.matches, mem, testRefs)
		mem = next
		if got["batch"].Mode != s.batch {
			t.Fatalf("step %d (t=%s): batch %s, want %s", i, s.at, got["batch"].Mode, s.batch)
		}
		if held := strings.Contains(got["batch"].Reason, "holding"); held != s.held {
			t.Errorf("step %d: reason %q, held=%v", i, got["batch"].Reason, s.held)
		}
		if got["sentinel"].Mode != ModeNone || got["web"].Mode != ModeNone {
			t.Fatalf("step %d: touched others: %+v", i, got)
		}
	}
}

func TestPlanOrder(t *testing.T) {
	refs := []WorkloadRef{{"crit", PriorityCritical}, {"n1", PriorityNormal}, {"s2", PrioritySheddable}, {"s1", PrioritySheddable}}
	frozen := Protection{Mode: ModeFrozen}
	thr := Protection{Mode: ModeThrottled, Percent: 50}
	// Escalation: sheddable first, then normal.
	up := Plan(map[string]Protection{}, map[string]Protection{"s1": frozen, "s2": frozen, "n1": thr}, refs)
	if got := names(up); !reflect.DeepEqual(got, []string{"s1", "s2", "n1"}) {
		t.Errorf("escalation order %v", got)
	}
	// Restoration: reverse, normal first.
	down := Plan(map[string]Protection{"s1": frozen, "s2": frozen, "n1": thr}, map[string]Protection{}, refs)
	if got := names(down); !reflect.DeepEqual(got, []string{"n1", "s1", "s2"}) {
		t.Errorf("restore order %v", got)
	}
	// No change, reason only: no step.
	if s := Plan(map[string]Protection{"s1": {Mode: ModeFrozen, Reason: "a"}}, map[string]Protection{"s1": {Mode: ModeFrozen, Reason: "b"}}, refs); len(s) != 0 {
		t.Errorf("reason-only change planned %v", s)
	}
	// A lower throttle percent escalates; a higher one restores.
	s := Plan(map[string]Protection{"n1": thr}, map[string]Protection{"n1": {Mode: ModeThrottled, Percent: 25}}, refs)
	if len(s) != 1 || !s[0].Escalates() {
		t.Errorf("tighter throttle: %+v", s)
	}
	// Mixed: frozen to throttled (sheddable relaxes) while normal escalates.
	mixed := Plan(map[string]Protection{"s1": frozen}, map[string]Protection{"s1": thr, "n1": thr}, refs)
	if got := names(mixed); !reflect.DeepEqual(got, []string{"n1", "s1"}) {
		t.Errorf("mixed order %v", got)
	}
}

func names(ss []Step) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}
