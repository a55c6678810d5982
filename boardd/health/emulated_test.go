package health

import (
	"slices"
	"testing"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

func loadEmulated(t *testing.T) *boardconfig.Config {
	t.Helper()
	cfg, err := boardconfig.Load("../../board-configs/emulated-ruggedpod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// simDef is the SensorDef a BMC client would discover from a sim block:
// thresholds and hysteresis converted from the raw SDR fields.
func simDef(s *boardconfig.Sensor) bmc.SensorDef {
	sim := s.Sim
	def := bmc.SensorDef{ID: s.Name, Name: s.Name, Number: sim.Number, SensorType: sim.SensorType,
		ReadingType: sim.EventType, EntityID: sim.EntityID, EntityInstance: sim.EntityInst}
	if !sim.IsThreshold() {
		def.Kind = bmc.KindDiscrete
		return def
	}
	def.Kind = bmc.KindThreshold
	def.Unit = map[uint8]bmc.Unit{1: bmc.UnitCelsius, 4: bmc.UnitVolts, 5: bmc.UnitAmperes, 6: bmc.UnitWatts, 18: bmc.UnitRPM}[sim.Unit]
	conv := func(k string) *float64 {
		raw, ok := sim.RawThresholds[k]
		if !ok {
			return nil
		}
		v := sim.SimValue(raw)
		return &v
	}
	def.Thresholds = bmc.Thresholds{
		LowerFatal: conv("lnr"), LowerCritical: conv("lc"), LowerNonCritical: conv("lnc"),
		UpperNonCritical: conv("unc"), UpperCritical: conv("uc"), UpperFatal: conv("unr"),
	}
	h := sim.SimHysteresis()
	def.Thresholds.PositiveHysteresis, def.Thresholds.NegativeHysteresis = h, h
	return def
}

func simReading(s *boardconfig.Sensor, raw uint16) bmc.Reading {
	if s.Sim.IsThreshold() {
		return bmc.Reading{ID: s.Name, Value: s.Sim.SimValue(uint8(raw)), Available: true}
	}
	return bmc.Reading{ID: s.Name, State: raw, Available: true}
}

// The emulated board's initial readings are all healthy, and the faults
// the qemu-tests inject produce the documented states and actions.
func TestEmulatedBoard(t *testing.T) {
	cfg := loadEmulated(t)
	type sensor struct {
		cfg *boardconfig.Sensor
		def bmc.SensorDef
		st  SensorState
	}
	var sensors []*sensor
	for i := range cfg.Sensors {
		s := &cfg.Sensors[i]
		sensors = append(sensors, &sensor{cfg: s, def: simDef(s)})
	}
	if len(sensors) < 18 {
		t.Fatalf("only %d sensors", len(sensors))
	}
	// sample evaluates every sensor with its initial raw value, except the
	// overrides, and returns the actions in force.
	sample := func(overrides map[string]uint16) ([]string, map[Subsystem]Member, []SensorView) {
		var views []SensorView
		for _, s := range sensors {
			raw, ok := overrides[s.cfg.Name]
			if !ok {
				raw = s.cfg.Sim.Initial
			}
			in := Input{Def: s.def, Cfg: s.cfg, Reading: simReading(s.cfg, raw)}
			s.st, _ = Evaluate(SensorState{}, in, Effective(s.def, s.cfg), cfg.SensorDebounce(s.cfg), t0)
			views = append(views, View(in, s.st))
		}
		subs := Subsystems(views)
		var names []string
		for _, r := range ActiveActions(cfg, SensorMap(views), SubsystemStates(subs)) {
			names = append(names, r.Name)
		}
		return names, subs, views
	}

	actions, subs, views := sample(nil)
	for _, v := range views {
		if v.State != OK {
			t.Errorf("initial %s: %v %q", v.Name, v.State, v.Reason)
		}
	}
	if len(actions) != 0 {
		t.Errorf("initial actions %v", actions)
	}
	for _, want := range []Subsystem{Power, Fuses, Thermal, Cooling} {
		if m, ok := subs[want]; !ok || m.State != OK {
			t.Errorf("subsystem %s: %+v %v", want, m, ok)
		}
	}

	cases := []struct {
		name    string
		raw     map[string]uint16
		sensor  string
		state   State
		reason  string
		actions []string
	}{
		{"PSU input sags", map[string]uint16{"PSU_VIN": 96}, "PSU_VIN", Critical,
			"PSU_VIN 19.20 V below lower critical 20.00 V", []string{"power-critical"}},
		{"PSU fails", map[string]uint16{"PSU_STATUS": 0x0003}, "PSU_STATUS", Critical,
			"PSU_STATUS: power supply failure detected", []string{"power-critical"}},
		{"power on a current-type sensor", map[string]uint16{"PSU_PIN": 205}, "PSU_PIN", Critical,
			"PSU_PIN 1025 W above upper critical 1000 W", []string{"power-critical"}},
		{"fuse blows", map[string]uint16{"FUSE2": 0x0002}, "FUSE2", Critical,
			"FUSE2 blown", []string{"fuse-blown"}},
		{"oil warm: the config warns before the BMC", map[string]uint16{"OIL_TEMP": 104}, "OIL_TEMP", Warning,
			"OIL_TEMP 52.00 °C above upper non-critical 50.00 °C", []string{"thermal-warning"}},
		{"oil hot", map[string]uint16{"OIL_TEMP": 132}, "OIL_TEMP", Critical,
			"OIL_TEMP 66.00 °C above upper critical 65.00 °C", []string{"thermal-warning", "thermal-critical"}},
		{"inlet freezing (signed, B offset)", map[string]uint16{"INLET_TEMP": 0xdc}, "INLET_TEMP", Critical,
			"INLET_TEMP -20.00 °C at lower critical -20.00 °C", []string{"thermal-warning", "thermal-critical"}},
		{"pump slow", map[string]uint16{"PUMP1": 50}, "PUMP1", Warning,
			"PUMP1 1500 RPM below lower non-critical 1800 RPM", nil},
		{"leak", map[string]uint16{"LEAK": 0x0002}, "LEAK", Critical,
			"LEAK: coolant leak detected", []string{"leak"}},
	}
	for _, c := range cases {
		actions, _, views := sample(c.raw)
		i := slices.IndexFunc(views, func(v SensorView) bool { return v.Name == c.sensor })
		if v := views[i]; v.State != c.state || v.Reason != c.reason {
			t.Errorf("%s: %s is %v %q, want %v %q", c.name, c.sensor, v.State, v.Reason, c.state, c.reason)
		}
		if !slices.Equal(actions, c.actions) {
			t.Errorf("%s: actions %v, want %v", c.name, actions, c.actions)
		}
	}
}
