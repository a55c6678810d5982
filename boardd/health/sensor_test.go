package health

import (
	"errors"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

func f(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// at is the time of sample i.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

// vin is a 24 V PSU input with all six thresholds and 0.4 V hysteresis.
func vin() bmc.SensorDef {
	return bmc.SensorDef{
		ID: "20-0-01", Name: "PSU_VIN", Number: 1, SensorType: 0x02, ReadingType: 0x01,
		Kind: bmc.KindThreshold, Unit: bmc.UnitVolts, Class: bmc.ClassVoltage,
		Thresholds: bmc.Thresholds{
			LowerFatal: f(18), LowerCritical: f(20), LowerNonCritical: f(21),
			UpperNonCritical: f(26), UpperCritical: f(27), UpperFatal: f(28),
			PositiveHysteresis: 0.4, NegativeHysteresis: 0.4,
		},
	}
}

func value(v float64) bmc.Reading { return bmc.Reading{ID: "20-0-01", Value: v, Available: true} }

func bits(b uint16) bmc.Reading { return bmc.Reading{State: b, Available: true} }

var unavailable = bmc.Reading{Err: "sensor scanning disabled"}

// A single sample of a never-evaluated sensor, each side of each threshold.
func TestThresholdsEachSide(t *testing.T) {
	def := vin()
	cases := []struct {
		v      float64
		want   State
		reason string
	}{
		{24, OK, ""},
		{21.01, OK, ""},
		{25.99, OK, ""},
		{21, Warning, "PSU_VIN 21.00 V at lower non-critical 21.00 V"},
		{20.5, Warning, "PSU_VIN 20.50 V below lower non-critical 21.00 V"},
		{20.01, Warning, "PSU_VIN 20.01 V below lower non-critical 21.00 V"},
		{20, Critical, "PSU_VIN 20.00 V at lower critical 20.00 V"},
		{19.2, Critical, "PSU_VIN 19.20 V below lower critical 20.00 V"},
		{18.01, Critical, "PSU_VIN 18.01 V below lower critical 20.00 V"},
		{18, Critical, "PSU_VIN 18.00 V at lower fatal 18.00 V"},
		{0, Critical, "PSU_VIN 0.00 V below lower fatal 18.00 V"},
		{26, Warning, "PSU_VIN 26.00 V at upper non-critical 26.00 V"},
		{26.99, Warning, "PSU_VIN 26.99 V above upper non-critical 26.00 V"},
		{27, Critical, "PSU_VIN 27.00 V at upper critical 27.00 V"},
		{27.5, Critical, "PSU_VIN 27.50 V above upper critical 27.00 V"},
		{28, Critical, "PSU_VIN 28.00 V at upper fatal 28.00 V"},
		{31, Critical, "PSU_VIN 31.00 V above upper fatal 28.00 V"},
	}
	for _, c := range cases {
		next, changed := Evaluate(SensorState{}, Input{Def: def, Reading: value(c.v)}, def.Thresholds, 1, t0)
		if next.State != c.want || next.Reason != c.reason {
			t.Errorf("%v: got %v %q, want %v %q", c.v, next.State, next.Reason, c.want, c.reason)
		}
		if changed != (c.want != OK) {
			t.Errorf("%v: changed = %v", c.v, changed)
		}
		if !next.Known() || !next.Since.Equal(t0) {
			t.Errorf("%v: known %v since %v", c.v, next.Known(), next.Since)
		}
	}
}

// step is one sample of a sequence and what the state must be after it.
type step struct {
	r       bmc.Reading
	want    State
	changed bool
	reason  string // checked when not empty
}

func run(t *testing.T, in Input, th bmc.Thresholds, debounce int, steps []step) SensorState {
	t.Helper()
	var st SensorState
	lastChange := time.Time{}
	for i, s := range steps {
		in.Reading = s.r
		var changed bool
		st, changed = Evaluate(st, in, th, debounce, at(i))
		if st.State != s.want || changed != s.changed {
			t.Fatalf("step %d (%+v): got %v changed=%v (%q), want %v changed=%v", i, s.r, st.State, changed, st.Reason, s.want, s.changed)
		}
		if s.reason != "" && st.Reason != s.reason {
			t.Fatalf("step %d: reason %q, want %q", i, st.Reason, s.reason)
		}
		if i == 0 || changed {
			lastChange = at(i)
		}
		if !st.Since.Equal(lastChange) {
			t.Fatalf("step %d: since %v, want %v", i, st.Since, lastChange)
		}
	}
	return st
}

func TestHysteresisUpper(t *testing.T) {
	def := vin()
	run(t, Input{Def: def}, def.Thresholds, 1, []step{
		{value(24), OK, false, ""},
		{value(27), Critical, true, ""},
		// Back under the critical threshold but not by 0.4 V: held.
		{value(26.8), Critical, false, "PSU_VIN 26.80 V has not yet fallen below upper critical 27.00 V by the hysteresis 0.40 V"},
		{value(26.61), Critical, false, ""},
		// Out of critical; still at or above non-critical.
		{value(26.5), Warning, true, "PSU_VIN 26.50 V above upper non-critical 26.00 V"},
		{value(25.7), Warning, false, "PSU_VIN 25.70 V has not yet fallen below upper non-critical 26.00 V by the hysteresis 0.40 V"},
		{value(25.5), OK, true, ""},
		// Re-entering the non-critical band from below is not held: the
		// band is entered only at the threshold.
		{value(25.9), OK, false, ""},
		{value(28.5), Critical, true, "PSU_VIN 28.50 V above upper fatal 28.00 V"},
		{value(27.9), Critical, false, "PSU_VIN 27.90 V has not yet fallen below upper fatal 28.00 V by the hysteresis 0.40 V"},
		{value(27.5), Critical, false, "PSU_VIN 27.50 V above upper critical 27.00 V"},
		// A big drop clears everything at once.
		{value(24), OK, true, ""},
	})
}

func TestHysteresisLower(t *testing.T) {
	def := vin()
	run(t, Input{Def: def}, def.Thresholds, 1, []step{
		{value(24), OK, false, ""},
		{value(19.2), Critical, true, "PSU_VIN 19.20 V below lower critical 20.00 V"},
		{value(20.2), Critical, false, "PSU_VIN 20.20 V has not yet risen above lower critical 20.00 V by the hysteresis 0.40 V"},
		{value(20.5), Warning, true, "PSU_VIN 20.50 V below lower non-critical 21.00 V"},
		{value(21.3), Warning, false, "PSU_VIN 21.30 V has not yet risen above lower non-critical 21.00 V by the hysteresis 0.40 V"},
		{value(21.5), OK, true, ""},
		{value(17), Critical, true, "PSU_VIN 17.00 V below lower fatal 18.00 V"},
		{value(18.3), Critical, false, "PSU_VIN 18.30 V has not yet risen above lower fatal 18.00 V by the hysteresis 0.40 V"},
		{value(24), OK, true, ""},
	})
}

// Separate hysteresis values for the two directions.
func TestHysteresisAsymmetric(t *testing.T) {
	def := vin()
	th := def.Thresholds
	th.PositiveHysteresis, th.NegativeHysteresis = 2, 0
	run(t, Input{Def: def}, th, 1, []step{
		{value(27), Critical, true, ""},
		{value(25.5), Critical, false, ""}, // 27-2 = 25: held
		// Out of critical, but the non-critical threshold is held too.
		{value(24.9), Warning, true, ""},
		{value(23.9), OK, true, ""},
		{value(20), Critical, true, ""},
		{value(20.01), Warning, true, ""}, // no lower hysteresis
		{value(21.01), OK, true, ""},
	})
}

func TestNoHysteresis(t *testing.T) {
	def := vin()
	th := def.Thresholds
	th.PositiveHysteresis, th.NegativeHysteresis = 0, 0
	run(t, Input{Def: def}, th, 1, []step{
		{value(27), Critical, true, ""},
		{value(26.99), Warning, true, ""},
		{value(25.99), OK, true, ""},
	})
}

func TestNoThresholds(t *testing.T) {
	def := vin()
	run(t, Input{Def: def}, bmc.Thresholds{}, 1, []step{
		{value(1000), OK, false, ""},
		{value(-1000), OK, false, ""},
	})
}

func TestDebounce(t *testing.T) {
	def := vin()
	th := def.Thresholds
	t.Run("enter after N", func(t *testing.T) {
		st := run(t, Input{Def: def}, th, 3, []step{
			{value(24), OK, false, ""},
			{value(27.5), OK, false, ""},
			{value(27.5), OK, false, ""},
			{value(27.5), Critical, true, "PSU_VIN 27.50 V above upper critical 27.00 V"},
			// The reason follows the reading while the state holds.
			{value(27.8), Critical, false, "PSU_VIN 27.80 V above upper critical 27.00 V"},
		})
		if p, n := st.Pending(); p != OK || n != 0 {
			t.Errorf("pending after commit: %v %d", p, n)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		run(t, Input{Def: def}, th, 3, []step{
			{value(24), OK, false, ""},
			{value(27.5), OK, false, ""},
			{value(27.5), OK, false, ""},
			{value(24), OK, false, ""}, // resets the count
			{value(27.5), OK, false, ""},
			{value(27.5), OK, false, ""},
			{value(27.5), Critical, true, ""},
		})
	})
	t.Run("candidate changes", func(t *testing.T) {
		var st SensorState
		st, _ = Evaluate(st, Input{Def: def, Reading: value(24)}, th, 2, at(0))
		st, _ = Evaluate(st, Input{Def: def, Reading: value(26.5)}, th, 2, at(1))
		if p, n := st.Pending(); p != Warning || n != 1 {
			t.Fatalf("pending %v %d", p, n)
		}
		st, _ = Evaluate(st, Input{Def: def, Reading: value(27.5)}, th, 2, at(2))
		if p, n := st.Pending(); p != Critical || n != 1 || st.State != OK {
			t.Fatalf("pending %v %d state %v", p, n, st.State)
		}
		st, ch := Evaluate(st, Input{Def: def, Reading: value(27.5)}, th, 2, at(3))
		if !ch || st.State != Critical || !st.Since.Equal(at(3)) {
			t.Fatalf("got %v %v since %v", st.State, ch, st.Since)
		}
	})
	t.Run("first evaluation is immediate", func(t *testing.T) {
		run(t, Input{Def: def}, th, 5, []step{
			{value(27.5), Critical, true, ""},
			{value(24), Critical, false, ""},
		})
	})
	t.Run("zero and negative mean 1", func(t *testing.T) {
		for _, d := range []int{0, -3} {
			run(t, Input{Def: def}, th, d, []step{
				{value(24), OK, false, ""},
				{value(27.5), Critical, true, ""},
			})
		}
	})
	t.Run("to Unavailable is debounced, back is immediate", func(t *testing.T) {
		run(t, Input{Def: def}, th, 3, []step{
			{value(27.5), Critical, true, ""},
			{unavailable, Critical, false, ""},
			{unavailable, Critical, false, ""},
			{unavailable, Unavailable, true, "PSU_VIN reading unavailable: sensor scanning disabled"},
			{value(24), OK, true, ""},
			{unavailable, OK, false, ""},
			{value(24), OK, false, ""},
			{unavailable, OK, false, ""},
			{unavailable, OK, false, ""},
			{unavailable, Unavailable, true, ""},
			// Back straight into a fault: immediate as well.
			{value(19), Critical, true, ""},
		})
	})
	t.Run("hysteresis survives a gap", func(t *testing.T) {
		run(t, Input{Def: def}, th, 1, []step{
			{value(27.5), Critical, true, ""},
			{bmc.Reading{}, Unavailable, true, "PSU_VIN reading unavailable: no reading"},
			{value(26.8), Critical, true, "PSU_VIN 26.80 V has not yet fallen below upper critical 27.00 V by the hysteresis 0.40 V"},
		})
	})
}

// The BMC vanishing: every read fails, every sensor goes Unavailable after
// the debounce, and the board is Critical while subsystems are Warning.
func TestBMCVanished(t *testing.T) {
	def := vin()
	lost := bmc.Reading{ID: def.ID, Err: bmc.ErrUnavailable.Error()}
	st := run(t, Input{Def: def}, def.Thresholds, 2, []step{
		{value(24), OK, false, ""},
		{lost, OK, false, ""},
		{lost, Unavailable, true, "PSU_VIN reading unavailable: bmc unavailable"},
	})
	subs := Subsystems([]SensorView{View(Input{Def: def}, st)})
	if p := subs[Power]; p.State != Warning || p.Reason != "unknown: PSU_VIN reading unavailable: bmc unavailable" {
		t.Errorf("power: %+v", p)
	}
	board, why := Board(errors.New("no answer after 3 retries"), subs[Power])
	if board != Critical || why != "BMC unreachable: no answer after 3 retries" {
		t.Errorf("board %v %q", board, why)
	}
	if rules := ActiveActions(loadEmulated(t), SensorMap([]SensorView{View(Input{Def: def}, st)}), SubsystemStates(subs)); len(rules) != 0 {
		t.Errorf("an unreachable BMC must not trigger actions: %v", rules)
	}
}

func TestMissingSensor(t *testing.T) {
	no := false
	req := &boardconfig.Sensor{Name: "PSU_VIN", Role: boardconfig.RolePSUInput}
	opt := &boardconfig.Sensor{Name: "AUX_TEMP", Role: boardconfig.RoleTemp, Required: &no}
	run(t, Missing(req), bmc.Thresholds{}, 3, []step{
		{Missing(req).Reading, Critical, true, "required sensor PSU_VIN not found on BMC"},
	})
	run(t, Missing(opt), bmc.Thresholds{}, 1, []step{
		{Missing(opt).Reading, Unavailable, true, "optional sensor AUX_TEMP not found on BMC"},
	})
	// Found later (SDR re-read): judged normally, immediately if it was
	// Unavailable, after the debounce if it was Critical.
	var st SensorState
	st, _ = Evaluate(st, Missing(req), bmc.Thresholds{}, 2, at(0))
	def := vin()
	in := Input{Def: def, Reading: value(24), Cfg: req}
	st, ch := Evaluate(st, in, Effective(def, req), 2, at(1))
	if ch || st.State != Critical {
		t.Fatalf("first sample after finding it: %v %v", st.State, ch)
	}
	st, ch = Evaluate(st, in, Effective(def, req), 2, at(2))
	if !ch || st.State != OK {
		t.Fatalf("second sample: %v %v", st.State, ch)
	}
}

func TestSensorNames(t *testing.T) {
	cases := []struct {
		in   Input
		want string
	}{
		{Input{Def: bmc.SensorDef{ID: "20-0-01", Name: "BMC_NAME"}, Cfg: &boardconfig.Sensor{Name: "CFG_NAME"}}, "CFG_NAME"},
		{Input{Def: bmc.SensorDef{ID: "20-0-01", Name: "BMC_NAME"}}, "BMC_NAME"},
		{Input{Def: bmc.SensorDef{ID: "20-0-01"}}, "20-0-01"},
	}
	for _, c := range cases {
		c.in.Reading = bmc.Reading{}
		st, _ := Evaluate(SensorState{}, c.in, bmc.Thresholds{}, 1, t0)
		if !strings.HasPrefix(st.Reason, c.want+" ") {
			t.Errorf("reason %q does not start with %q", st.Reason, c.want)
		}
	}
}

func TestEffective(t *testing.T) {
	def := vin()
	def.Thresholds.UpperFatal = nil
	cases := []struct {
		name string
		cfg  *boardconfig.Sensor
		want bmc.Thresholds
	}{
		{"no config", nil, def.Thresholds},
		{"config without thresholds", &boardconfig.Sensor{Name: "PSU_VIN"}, def.Thresholds},
		{"override and complete", &boardconfig.Sensor{Name: "PSU_VIN", Thresholds: &boardconfig.Thresholds{
			UpperNonCritical: f(25.5), UpperFatal: f(29),
		}}, bmc.Thresholds{
			LowerFatal: f(18), LowerCritical: f(20), LowerNonCritical: f(21),
			UpperNonCritical: f(25.5), UpperCritical: f(27), UpperFatal: f(29),
			PositiveHysteresis: 0.4, NegativeHysteresis: 0.4,
		}},
		{"every field and hysteresis", &boardconfig.Sensor{Name: "PSU_VIN", Thresholds: &boardconfig.Thresholds{
			LowerFatal: f(1), LowerCritical: f(2), LowerNonCritical: f(3),
			UpperNonCritical: f(4), UpperCritical: f(5), UpperFatal: f(6), Hysteresis: f(0.1),
		}}, bmc.Thresholds{
			LowerFatal: f(1), LowerCritical: f(2), LowerNonCritical: f(3),
			UpperNonCritical: f(4), UpperCritical: f(5), UpperFatal: f(6),
			PositiveHysteresis: 0.1, NegativeHysteresis: 0.1,
		}},
	}
	for _, c := range cases {
		got := Effective(def, c.cfg)
		if d := diffThresholds(got, c.want); d != "" {
			t.Errorf("%s: %s", c.name, d)
		}
		// No shared pointers: changing the result changes neither input.
		for _, p := range []*float64{got.LowerFatal, got.LowerCritical, got.LowerNonCritical, got.UpperNonCritical, got.UpperCritical, got.UpperFatal} {
			if p != nil {
				*p = -999
			}
		}
		if *def.Thresholds.UpperCritical != 27 {
			t.Fatalf("%s: Effective aliases the BMC's thresholds", c.name)
		}
		if c.cfg != nil && c.cfg.Thresholds != nil && c.cfg.Thresholds.UpperNonCritical != nil && *c.cfg.Thresholds.UpperNonCritical == -999 {
			t.Fatalf("%s: Effective aliases the config's thresholds", c.name)
		}
	}
}

// A config override changes the judgement: the site warns earlier than
// the BMC would.
func TestConfigOverrideJudged(t *testing.T) {
	def := vin()
	cfg := &boardconfig.Sensor{Name: "PSU_VIN", Role: boardconfig.RolePSUInput, Thresholds: &boardconfig.Thresholds{UpperNonCritical: f(25), Hysteresis: f(1)}}
	run(t, Input{Def: def, Cfg: cfg}, Effective(def, cfg), 1, []step{
		{value(25.2), Warning, true, "PSU_VIN 25.20 V above upper non-critical 25.00 V"},
		{value(24.2), Warning, false, ""},
		{value(23.9), OK, true, ""},
	})
}

func diffThresholds(a, b bmc.Thresholds) string {
	var out []string
	cmp := func(name string, x, y *float64) {
		switch {
		case x == nil && y == nil:
		case x == nil || y == nil:
			out = append(out, name+": one is nil")
		case *x != *y:
			out = append(out, name+": differs")
		}
	}
	cmp("lnr", a.LowerFatal, b.LowerFatal)
	cmp("lc", a.LowerCritical, b.LowerCritical)
	cmp("lnc", a.LowerNonCritical, b.LowerNonCritical)
	cmp("unc", a.UpperNonCritical, b.UpperNonCritical)
	cmp("uc", a.UpperCritical, b.UpperCritical)
	cmp("unr", a.UpperFatal, b.UpperFatal)
	if a.PositiveHysteresis != b.PositiveHysteresis || a.NegativeHysteresis != b.NegativeHysteresis {
		out = append(out, "hysteresis differs")
	}
	return strings.Join(out, "; ")
}

func TestFormatValue(t *testing.T) {
	cases := []struct {
		v    float64
		u    bmc.Unit
		want string
	}{
		{24, bmc.UnitVolts, "24.00 V"},
		{10.25, bmc.UnitAmperes, "10.25 A"},
		{240.4, bmc.UnitWatts, "240 W"},
		{-20.5, bmc.UnitCelsius, "-20.50 °C"},
		{3000, bmc.UnitRPM, "3000 RPM"},
		{55.5, bmc.UnitPercent, "55.50%"},
		{7, bmc.UnitOther, "7.00"},
		{7, bmc.UnitNone, "7.00"},
	}
	for _, c := range cases {
		if got := formatValue(c.v, c.u); got != c.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", c.v, c.u, got, c.want)
		}
	}
}
