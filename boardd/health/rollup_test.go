package health

import (
	"slices"
	"testing"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

func TestSubsystemOf(t *testing.T) {
	roles := map[boardconfig.Role]Subsystem{
		boardconfig.RolePSUInput: Power, boardconfig.RolePSUOutput: Power, boardconfig.RolePSUStatus: Power,
		boardconfig.RoleFuse:    Fuses,
		boardconfig.RoleTempOil: Thermal, boardconfig.RoleTempInlet: Thermal, boardconfig.RoleTempCPU: Thermal, boardconfig.RoleTemp: Thermal,
		boardconfig.RolePump: Cooling, boardconfig.RoleFan: Cooling, boardconfig.RoleLeak: Cooling,
		boardconfig.RoleOther: Other,
	}
	if len(roles) != len(boardconfig.Roles) {
		t.Fatalf("the table misses roles: %d of %d", len(roles), len(boardconfig.Roles))
	}
	for r, want := range roles {
		// The role wins over the class.
		if got := SubsystemOf(bmc.SensorDef{Class: bmc.ClassTemperature}, &boardconfig.Sensor{Role: r}); got != want {
			t.Errorf("role %s: %s, want %s", r, got, want)
		}
	}
	classes := map[bmc.Class]Subsystem{
		bmc.ClassVoltage: Power, bmc.ClassCurrent: Power, bmc.ClassPower: Power, bmc.ClassPSU: Power,
		bmc.ClassFuse: Fuses, bmc.ClassTemperature: Thermal,
		bmc.ClassFan: Cooling, bmc.ClassPump: Cooling, bmc.ClassLeak: Cooling,
		bmc.ClassOther: Other, "": Other,
	}
	for c, want := range classes {
		for _, cfg := range []*boardconfig.Sensor{nil, {Name: "X"}} {
			if got := SubsystemOf(bmc.SensorDef{Class: c}, cfg); got != want {
				t.Errorf("class %q cfg %v: %s, want %s", c, cfg, got, want)
			}
		}
	}
}

func TestRollup(t *testing.T) {
	cases := []struct {
		name    string
		members []Member
		want    State
		reason  string
	}{
		{"empty", nil, OK, ""},
		{"all ok", []Member{{"A", OK, ""}, {"B", OK, ""}}, OK, ""},
		{"one warning", []Member{{"A", OK, ""}, {"B", Warning, "B is warm"}}, Warning, "B is warm"},
		{"unavailable is warning at most", []Member{{"A", Unavailable, "A reading unavailable: x"}}, Warning, "unknown: A reading unavailable: x"},
		{"all unavailable", []Member{{"A", Unavailable, "a"}, {"B", Unavailable, "b"}}, Warning, "unknown: a (and 1 more)"},
		{"real warning beats unavailable", []Member{{"A", Unavailable, "a"}, {"B", Warning, "b"}, {"C", Unavailable, "c"}}, Warning, "b"},
		{"critical wins", []Member{{"A", Warning, "a"}, {"B", Critical, "b"}, {"C", Unavailable, "c"}}, Critical, "b"},
		{"critical first then unavailable", []Member{{"B", Critical, "b"}, {"A", Unavailable, "a"}}, Critical, "b"},
		{"two critical", []Member{{"A", Critical, "a"}, {"B", Warning, "w"}, {"C", Critical, "c"}}, Critical, "a (and 1 more)"},
		{"three warnings", []Member{{"A", Warning, "a"}, {"B", Warning, "b"}, {"C", Warning, "c"}}, Warning, "a (and 2 more)"},
		{"no reason given", []Member{{"Fabric", Critical, ""}}, Critical, "Fabric is Critical"},
	}
	for _, c := range cases {
		st, why := Rollup(c.members...)
		if st != c.want || why != c.reason {
			t.Errorf("%s: got %v %q, want %v %q", c.name, st, why, c.want, c.reason)
		}
	}
}

func TestSubsystemsAndBoard(t *testing.T) {
	views := []SensorView{
		{Name: "PSU_VIN", Subsystem: Power, State: OK},
		{Name: "DCDC2", Subsystem: Power, State: Critical, Reason: "DCDC2 10.00 V below lower critical 11.20 V"},
		{Name: "DCDC1", Subsystem: Power, State: Critical, Reason: "DCDC1 10.00 V below lower critical 11.20 V"},
		{Name: "OIL_TEMP", Subsystem: Thermal, State: Warning, Reason: "hot"},
		{Name: "PUMP1", Subsystem: Cooling, State: Unavailable, Reason: "PUMP1 reading unavailable: no reading"},
	}
	subs := Subsystems(views)
	want := map[Subsystem]Member{
		Power:   {"Power", Critical, "DCDC1 10.00 V below lower critical 11.20 V (and 1 more)"},
		Thermal: {"Thermal", Warning, "hot"},
		Cooling: {"Cooling", Warning, "unknown: PUMP1 reading unavailable: no reading"},
	}
	if len(subs) != len(want) {
		t.Fatalf("subsystems %v", subs)
	}
	for k, v := range want {
		if subs[k] != v {
			t.Errorf("%s: %+v, want %+v", k, subs[k], v)
		}
	}
	states := SubsystemStates(subs)
	if states[Power] != Critical || states[Cooling] != Warning || len(states) != 3 {
		t.Errorf("states %v", states)
	}
	members := []Member{subs[Cooling], subs[Thermal], subs[Power]}
	st, why := Board(nil, members...)
	if st != Critical || why != "DCDC1 10.00 V below lower critical 11.20 V (and 1 more)" {
		t.Errorf("board %v %q", st, why)
	}
	st, why = Board(nil, subs[Cooling], subs[Thermal])
	if st != Warning || why != "unknown: PUMP1 reading unavailable: no reading (and 1 more)" {
		t.Errorf("board %v %q", st, why)
	}
	st, why = Board(bmc.ErrUnavailable)
	if st != Critical || why != "BMC unreachable: bmc unavailable" {
		t.Errorf("board %v %q", st, why)
	}
	st, why = Board(nil)
	if st != OK || why != "" {
		t.Errorf("empty board %v %q", st, why)
	}
}

func TestView(t *testing.T) {
	def := bmc.SensorDef{ID: "20-0-0a", Name: "FUSE1", Kind: bmc.KindDiscrete, Class: bmc.ClassFuse}
	st := SensorState{State: Critical, Reason: "FUSE1 blown"}
	got := View(Input{Def: def}, st)
	want := SensorView{Name: "FUSE1", Role: boardconfig.RoleFuse, Subsystem: Fuses, State: Critical, Reason: "FUSE1 blown"}
	if got != want {
		t.Errorf("View = %+v, want %+v", got, want)
	}
}

func TestMatch(t *testing.T) {
	sensors := SensorMap([]SensorView{
		{Name: "LEAK", Role: boardconfig.RoleLeak, Subsystem: Cooling, State: Critical},
		{Name: "OIL_TEMP", Role: boardconfig.RoleTempOil, Subsystem: Thermal, State: Warning},
		{Name: "PUMP1", Role: boardconfig.RolePump, Subsystem: Cooling, State: Unavailable},
		{Name: "PSU_VIN", Role: boardconfig.RolePSUInput, Subsystem: Power, State: OK},
	})
	subs := map[Subsystem]State{Cooling: Critical, Thermal: Warning, Power: OK, Fabric: Critical}
	rule := func(w boardconfig.When) boardconfig.Rule { return boardconfig.Rule{Name: "r", When: w, Action: "shed"} }
	cases := []struct {
		name string
		when boardconfig.When
		want bool
	}{
		{"subsystem critical at critical", boardconfig.When{Subsystem: "Cooling", State: "Critical"}, true},
		{"subsystem critical at warning", boardconfig.When{Subsystem: "Cooling", State: "Warning"}, true},
		{"subsystem warning at critical", boardconfig.When{Subsystem: "Thermal", State: "Critical"}, false},
		{"subsystem warning at warning", boardconfig.When{Subsystem: "Thermal", State: "Warning"}, true},
		{"subsystem ok", boardconfig.When{Subsystem: "Power", State: "Warning"}, false},
		{"subsystem absent", boardconfig.When{Subsystem: "Fuses", State: "Warning"}, false},
		{"fabric from the fabric watcher", boardconfig.When{Subsystem: "Fabric", State: "Critical"}, true},
		{"role critical", boardconfig.When{Role: boardconfig.RoleLeak, State: "Critical"}, true},
		{"role warning at critical", boardconfig.When{Role: boardconfig.RoleTempOil, State: "Critical"}, false},
		{"role warning at warning", boardconfig.When{Role: boardconfig.RoleTempOil, State: "Warning"}, true},
		{"role unavailable matches nothing", boardconfig.When{Role: boardconfig.RolePump, State: "Warning"}, false},
		{"role without sensors", boardconfig.When{Role: boardconfig.RoleFan, State: "Warning"}, false},
		{"sensor critical", boardconfig.When{Sensor: "LEAK", State: "Critical"}, true},
		{"sensor ok", boardconfig.When{Sensor: "PSU_VIN", State: "Warning"}, false},
		{"sensor unknown", boardconfig.When{Sensor: "NOPE", State: "Warning"}, false},
		{"sensor unavailable", boardconfig.When{Sensor: "PUMP1", State: "Warning"}, false},
		{"no selector", boardconfig.When{State: "Warning"}, false},
		{"two selectors", boardconfig.When{Subsystem: "Cooling", Sensor: "LEAK", State: "Critical"}, false},
		{"bad state", boardconfig.When{Subsystem: "Cooling", State: "OK"}, false},
	}
	for _, c := range cases {
		if got := Match(rule(c.when), sensors, subs); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAtLeast(t *testing.T) {
	cases := []struct {
		s    State
		want string
		ok   bool
	}{
		{OK, "Warning", false}, {Warning, "Warning", true}, {Critical, "Warning", true}, {Unavailable, "Warning", false},
		{OK, "Critical", false}, {Warning, "Critical", false}, {Critical, "Critical", true}, {Unavailable, "Critical", false},
		{Critical, "", false}, {Critical, "critical", false},
	}
	for _, c := range cases {
		if got := AtLeast(c.s, c.want); got != c.ok {
			t.Errorf("AtLeast(%v, %q) = %v", c.s, c.want, got)
		}
	}
}

func TestActiveActions(t *testing.T) {
	if ActiveActions(nil, nil, nil) != nil {
		t.Error("nil config has rules")
	}
	cfg := loadEmulated(t)
	names := func(rs []boardconfig.Rule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	cases := []struct {
		name string
		subs map[Subsystem]State
		sens []SensorView
		want []string
	}{
		{"healthy", map[Subsystem]State{Power: OK, Thermal: OK, Fuses: OK, Cooling: OK}, nil, nil},
		{"thermal warning throttles", map[Subsystem]State{Thermal: Warning}, nil, []string{"thermal-warning"}},
		{"thermal critical throttles and sheds", map[Subsystem]State{Thermal: Critical}, nil, []string{"thermal-warning", "thermal-critical"}},
		{"power and fuses", map[Subsystem]State{Power: Critical, Fuses: Critical}, nil, []string{"power-critical", "fuse-blown"}},
		{"power warning does nothing", map[Subsystem]State{Power: Warning}, nil, nil},
		{"leak", map[Subsystem]State{Cooling: Critical}, []SensorView{{Name: "LEAK", Role: boardconfig.RoleLeak, State: Critical}}, []string{"leak"}},
		{"pump critical is not a leak", map[Subsystem]State{Cooling: Critical}, []SensorView{{Name: "PUMP1", Role: boardconfig.RolePump, State: Critical}}, nil},
	}
	for _, c := range cases {
		got := names(ActiveActions(cfg, SensorMap(c.sens), c.subs))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
