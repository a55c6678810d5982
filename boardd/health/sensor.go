package health

import (
	"fmt"
	"strconv"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

// Input is what Evaluate judges: one sensor's definition, its latest
// reading and its board-config entry.
type Input struct {
	Def     bmc.SensorDef
	Reading bmc.Reading
	// Cfg is the sensor's board-config entry; nil for a sensor the config
	// does not list (judged by the BMC's thresholds and its class).
	Cfg *boardconfig.Sensor
}

// Missing is the Input for a configured sensor that the BMC does not
// expose (it has no SensorDef): Evaluate judges it Critical "required
// sensor X not found on BMC", or Unavailable when the sensor is optional.
func Missing(cfg *boardconfig.Sensor) Input {
	return Input{Cfg: cfg, Reading: bmc.Reading{Err: "not found on BMC"}}
}

// isMissing tells a configured sensor that the BMC lacks.
func (in Input) isMissing() bool { return in.Def.ID == "" && in.Def.Name == "" && in.Cfg != nil }

// name is the sensor's name for reasons.
func (in Input) name() string {
	switch {
	case in.Cfg != nil && in.Cfg.Name != "":
		return in.Cfg.Name
	case in.Def.Name != "":
		return in.Def.Name
	}
	return in.Def.ID
}

// SensorState is the policy's memory of one sensor between samples. The
// zero value is a sensor never evaluated. Keep the value Evaluate returns
// and pass it back in with the next sample.
type SensorState struct {
	State  State
	Reason string    // one sentence; empty when OK
	Since  time.Time // when State was entered

	known bool // evaluated at least once

	// Debounce: a candidate state different from State, and how many
	// consecutive samples have shown it.
	pending      State
	pendingCount int

	// Hysteresis: the threshold levels the last available sample was in
	// (0 none, 1 non-critical, 2 critical, 3 fatal), before debounce.
	upper, lower int
}

// Pending reports the state being debounced and how many consecutive
// samples have shown it (0 when none).
func (s SensorState) Pending() (State, int) { return s.pending, s.pendingCount }

// Known tells whether the sensor has been evaluated at least once.
func (s SensorState) Known() bool { return s.known }

// Effective returns the thresholds in force for a sensor: the BMC's,
// each one the board config sets replacing the BMC's, and the config's
// hysteresis (when set) replacing both of the BMC's hysteresis values. The
// result shares no pointers with def or cfg.
func Effective(def bmc.SensorDef, cfg *boardconfig.Sensor) bmc.Thresholds {
	th := def.Thresholds
	pick := func(bmcV, cfgV *float64) *float64 {
		switch {
		case cfgV != nil:
			v := *cfgV
			return &v
		case bmcV != nil:
			v := *bmcV
			return &v
		}
		return nil
	}
	var o boardconfig.Thresholds
	if cfg != nil && cfg.Thresholds != nil {
		o = *cfg.Thresholds
	}
	th.LowerNonCritical = pick(th.LowerNonCritical, o.LowerNonCritical)
	th.LowerCritical = pick(th.LowerCritical, o.LowerCritical)
	th.LowerFatal = pick(th.LowerFatal, o.LowerFatal)
	th.UpperNonCritical = pick(th.UpperNonCritical, o.UpperNonCritical)
	th.UpperCritical = pick(th.UpperCritical, o.UpperCritical)
	th.UpperFatal = pick(th.UpperFatal, o.UpperFatal)
	if o.Hysteresis != nil {
		th.PositiveHysteresis, th.NegativeHysteresis = *o.Hysteresis, *o.Hysteresis
	}
	return th
}

// Evaluate judges one sample and returns the sensor's next state, and
// whether its State changed (the zero SensorState counting as OK).
//
// The judgement of one sample:
//   - a configured sensor the BMC lacks (see Missing): Critical "required
//     sensor X not found on BMC", or Unavailable when cfg.required is false;
//   - an unavailable reading: Unavailable, with the BMC's reason;
//   - a threshold sensor (Def.Kind != discrete): the reading against th
//     (use Effective): at or beyond a non-critical threshold is Warning,
//     at or beyond a critical or fatal one is Critical (upper thresholds
//     compare with >=, lower ones with <=, as IPMI's comparison status).
//     Hysteresis: a crossed threshold stays crossed until the reading is
//     back inside it by more than the hysteresis (PositiveHysteresis for
//     upper thresholds, NegativeHysteresis for lower ones, as IPMI's
//     positive- and negative-going thresholds);
//   - a discrete sensor: its asserted offsets, read by what the sensor is
//     (the config's role, else the BMC's class); see judgeDiscrete.
//
// Debounce: a state different from the current one must be seen in
// debounce consecutive samples (values < 1 mean 1) before it is taken;
// the reason is refreshed every sample while the state holds. Two
// exceptions: the first evaluation of a sensor takes its state at once
// (there is nothing to debounce against), and leaving Unavailable is
// immediate (a real reading after a gap is news, and the state it shows
// was not seen flapping). Going to Unavailable is debounced like any other
// change, so one dropped BMC request does not make a sensor unknown.
func Evaluate(prev SensorState, in Input, th bmc.Thresholds, debounce int, now time.Time) (next SensorState, changed bool) {
	next = prev
	cand, reason := judge(&next, in, th)
	// Taken at once: the first state, a return from Unavailable, and the
	// current state again (which also cancels a pending change).
	if !prev.known || (prev.State == Unavailable && cand != Unavailable) || cand == prev.State {
		if !prev.known || cand != prev.State {
			next.Since = now
		}
		next.known = true
		next.State, next.Reason = cand, reason
		next.pending, next.pendingCount = OK, 0
		return next, cand != prev.State
	}
	if next.pendingCount > 0 && next.pending == cand {
		next.pendingCount++
	} else {
		next.pending, next.pendingCount = cand, 1
	}
	if next.pendingCount < max(debounce, 1) {
		return next, false
	}
	next.State, next.Reason, next.Since = cand, reason, now
	next.pending, next.pendingCount = OK, 0
	return next, true
}

// judge is one sample's state and reason. It updates st's hysteresis
// levels.
func judge(st *SensorState, in Input, th bmc.Thresholds) (State, string) {
	name := in.name()
	if in.isMissing() {
		if in.Cfg.IsRequired() {
			return Critical, fmt.Sprintf("required sensor %s not found on BMC", name)
		}
		return Unavailable, fmt.Sprintf("optional sensor %s not found on BMC", name)
	}
	r := in.Reading
	if !r.Available {
		why := r.Err
		if why == "" {
			why = "no reading"
		}
		return Unavailable, fmt.Sprintf("%s reading unavailable: %s", name, why)
	}
	if in.Def.Kind == bmc.KindDiscrete {
		return judgeDiscrete(name, what(in), in.Def.SensorType, in.Def.ReadingType, r.State)
	}
	return judgeThreshold(st, name, in.Def.Unit, r.Value, th)
}

// levelNames name threshold levels 1..3 in reasons.
var levelNames = [...]string{"", "non-critical", "critical", "fatal"}

// judgeThreshold compares a reading with the thresholds, with hysteresis
// relative to the levels of the previous sample.
func judgeThreshold(st *SensorState, name string, unit bmc.Unit, v float64, th bmc.Thresholds) (State, string) {
	upper := [...]*float64{nil, th.UpperNonCritical, th.UpperCritical, th.UpperFatal}
	lower := [...]*float64{nil, th.LowerNonCritical, th.LowerCritical, th.LowerFatal}
	// The highest level whose threshold is crossed, or still held by
	// hysteresis because the previous sample was at that level or above.
	up, upHeld := 0, false
	for k := 3; k >= 1 && up == 0; k-- {
		switch t := upper[k]; {
		case t == nil:
		case v >= *t:
			up = k
		case st.upper >= k && v > *t-th.PositiveHysteresis:
			up, upHeld = k, true
		}
	}
	low, lowHeld := 0, false
	for k := 3; k >= 1 && low == 0; k-- {
		switch t := lower[k]; {
		case t == nil:
		case v <= *t:
			low = k
		case st.lower >= k && v < *t+th.NegativeHysteresis:
			low, lowHeld = k, true
		}
	}
	st.upper, st.lower = up, low
	if up == 0 && low == 0 {
		return OK, ""
	}
	f := func(x float64) string { return formatValue(x, unit) }
	var reason string
	level := up
	// Report the worse side; upper wins a tie (thresholds that overlap
	// both ways are a misconfigured BMC).
	if low > up {
		level = low
		t := *lower[low]
		switch {
		case lowHeld:
			reason = fmt.Sprintf("%s %s has not yet risen above lower %s %s by the hysteresis %s", name, f(v), levelNames[low], f(t), f(th.NegativeHysteresis))
		case v == t:
			reason = fmt.Sprintf("%s %s at lower %s %s", name, f(v), levelNames[low], f(t))
		default:
			reason = fmt.Sprintf("%s %s below lower %s %s", name, f(v), levelNames[low], f(t))
		}
	} else {
		t := *upper[up]
		switch {
		case upHeld:
			reason = fmt.Sprintf("%s %s has not yet fallen below upper %s %s by the hysteresis %s", name, f(v), levelNames[up], f(t), f(th.PositiveHysteresis))
		case v == t:
			reason = fmt.Sprintf("%s %s at upper %s %s", name, f(v), levelNames[up], f(t))
		default:
			reason = fmt.Sprintf("%s %s above upper %s %s", name, f(v), levelNames[up], f(t))
		}
	}
	if level == 1 {
		return Warning, reason
	}
	return Critical, reason
}

// unitSymbols are the units as people write them.
var unitSymbols = map[bmc.Unit]string{
	bmc.UnitVolts: "V", bmc.UnitAmperes: "A", bmc.UnitWatts: "W",
	bmc.UnitCelsius: "°C", bmc.UnitRPM: "RPM", bmc.UnitPercent: "%",
}

// formatValue renders a reading for a reason: two decimals (RPM and W as
// whole numbers) and the unit.
func formatValue(v float64, u bmc.Unit) string {
	prec := 2
	if u == bmc.UnitRPM || u == bmc.UnitWatts {
		prec = 0
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if sym, ok := unitSymbols[u]; ok {
		if sym == "%" {
			return s + sym
		}
		return s + " " + sym
	}
	return s
}
