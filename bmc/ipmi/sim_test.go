package ipmi_test

// Integration tests against a real OpenIPMI ipmi_sim (bmc/ipmisim).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/internal/testtool"
)

// testOpts keep failures fast; the machine may be loaded, so retries
// still cover a slow answer.
var testOpts = ipmi.Options{Timeout: time.Second, Retries: 3}

func startSim(t *testing.T, cfg *boardconfig.Config) (*ipmisim.Sim, *ipmi.Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	sim, err := ipmisim.Start(ctx, t, cfg, ipmisim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ipmi.DialLAN(ctx, ipmi.LANConfig{Host: "127.0.0.1", Port: sim.LANPort(), Username: ipmisim.User, Password: ipmisim.Password}, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sim, c, ctx
}

func byName(t *testing.T, defs []bmc.SensorDef) map[string]bmc.SensorDef {
	t.Helper()
	m := map[string]bmc.SensorDef{}
	for _, d := range defs {
		m[d.Name] = d
	}
	return m
}

func ptr(v float64) *float64 { return &v }

func eqPtr(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1e-9
}

func TestLANDiscoversAndReadsEverySensor(t *testing.T) {
	t.Parallel()
	_, c, ctx := startSim(t, ipmisim.TestBoard())
	if c.Transport() != "lan" {
		t.Errorf("Transport() = %q, want lan", c.Transport())
	}
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(defs), len(ipmisim.TestBoard().Sensors); got != want {
		t.Fatalf("discovered %d sensors, want %d: %+v", got, want, defs)
	}
	if c.Skipped() != 1 {
		t.Errorf("skipped %d records, want 1 (the MC locator)", c.Skipped())
	}
	type want struct {
		id    string
		kind  bmc.Kind
		unit  bmc.Unit
		class bmc.Class
		value float64 // threshold sensors
		state uint16  // discrete sensors
		th    bmc.Thresholds
	}
	wants := map[string]want{
		"PSU_IN_V": {"20-0-01", bmc.KindThreshold, bmc.UnitVolts, bmc.ClassPower /* placeholder, fixed below */, 24.0, 0,
			bmc.Thresholds{LowerFatal: ptr(19), LowerCritical: ptr(20), LowerNonCritical: ptr(22), UpperNonCritical: ptr(25), UpperCritical: ptr(25.2), UpperFatal: ptr(25.5), PositiveHysteresis: 0.2, NegativeHysteresis: 0.2}},
		"PSU_IN_A": {"20-0-02", bmc.KindThreshold, bmc.UnitAmperes, bmc.ClassCurrent, 5.0, 0,
			bmc.Thresholds{UpperNonCritical: ptr(9), UpperCritical: ptr(10), UpperFatal: ptr(11), PositiveHysteresis: 0.2, NegativeHysteresis: 0.2}},
		"PSU_IN_W": {"20-0-03", bmc.KindThreshold, bmc.UnitWatts, bmc.ClassPower, 120, 0,
			bmc.Thresholds{UpperNonCritical: ptr(400), UpperCritical: ptr(450), UpperFatal: ptr(500)}},
		"DCDC1_OUT_V": {"20-0-04", bmc.KindThreshold, bmc.UnitVolts, bmc.ClassVoltage, 1.2, 0,
			bmc.Thresholds{LowerFatal: ptr(1.0), LowerCritical: ptr(1.05), LowerNonCritical: ptr(1.1), UpperNonCritical: ptr(1.3), UpperCritical: ptr(1.35), UpperFatal: ptr(1.4), PositiveHysteresis: 0.01, NegativeHysteresis: 0.01}},
		"INLET_TEMP": {"20-0-10", bmc.KindThreshold, bmc.UnitCelsius, bmc.ClassTemperature, -5, 0,
			bmc.Thresholds{LowerFatal: ptr(-20), LowerCritical: ptr(-10), UpperNonCritical: ptr(40), UpperCritical: ptr(50), UpperFatal: ptr(60), PositiveHysteresis: 1, NegativeHysteresis: 1}},
		"OIL_TEMP": {"20-0-11", bmc.KindThreshold, bmc.UnitCelsius, bmc.ClassTemperature, 40, 0,
			bmc.Thresholds{UpperNonCritical: ptr(55), UpperCritical: ptr(60), UpperFatal: ptr(70), PositiveHysteresis: 1, NegativeHysteresis: 1}},
		"CPU_TEMP": {"20-0-12", bmc.KindThreshold, bmc.UnitCelsius, bmc.ClassTemperature, 55, 0,
			bmc.Thresholds{UpperNonCritical: ptr(85), UpperCritical: ptr(95), UpperFatal: ptr(105)}},
		"PUMP1": {"20-0-20", bmc.KindThreshold, bmc.UnitRPM, bmc.ClassPump, 3000, 0,
			bmc.Thresholds{LowerCritical: ptr(500), LowerNonCritical: ptr(1000)}},
		"COOLANT_FLOW2": {"20-0-21", bmc.KindThreshold, bmc.UnitRPM, bmc.ClassPump, 2900, 0,
			bmc.Thresholds{LowerCritical: ptr(500), LowerNonCritical: ptr(1000)}},
		"FAN1": {"20-0-22", bmc.KindThreshold, bmc.UnitRPM, bmc.ClassFan, 4000, 0,
			bmc.Thresholds{LowerCritical: ptr(500), LowerNonCritical: ptr(800)}},
		"PSU_STATUS":  {"20-0-30", bmc.KindDiscrete, bmc.UnitNone, bmc.ClassPSU, 0, 0x0001, bmc.Thresholds{}},
		"FUSE_BLADE1": {"20-0-31", bmc.KindDiscrete, bmc.UnitNone, bmc.ClassFuse, 0, 0x0001, bmc.Thresholds{}},
		"LEAK_DETECT": {"20-0-40", bmc.KindDiscrete, bmc.UnitNone, bmc.ClassLeak, 0, 0x0001, bmc.Thresholds{}},
	}
	w := wants["PSU_IN_V"]
	w.class = bmc.ClassVoltage
	wants["PSU_IN_V"] = w

	got := byName(t, defs)
	for name, w := range wants {
		d, ok := got[name]
		if !ok {
			t.Errorf("%s not discovered", name)
			continue
		}
		if d.ID != w.id || d.Kind != w.kind || d.Unit != w.unit || d.Class != w.class {
			t.Errorf("%s: id/kind/unit/class = %s/%s/%q/%s, want %s/%s/%q/%s", name, d.ID, d.Kind, d.Unit, d.Class, w.id, w.kind, w.unit, w.class)
		}
		th, wt := d.Thresholds, w.th
		if !eqPtr(th.LowerFatal, wt.LowerFatal) || !eqPtr(th.LowerCritical, wt.LowerCritical) || !eqPtr(th.LowerNonCritical, wt.LowerNonCritical) ||
			!eqPtr(th.UpperNonCritical, wt.UpperNonCritical) || !eqPtr(th.UpperCritical, wt.UpperCritical) || !eqPtr(th.UpperFatal, wt.UpperFatal) ||
			math.Abs(th.PositiveHysteresis-wt.PositiveHysteresis) > 1e-9 || math.Abs(th.NegativeHysteresis-wt.NegativeHysteresis) > 1e-9 {
			t.Errorf("%s: thresholds = %s, want %s", name, fmtTh(th), fmtTh(wt))
		}
	}

	readings, err := c.Read(ctx, defs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range readings {
		d := defs[i]
		w := wants[d.Name]
		if r.ID != d.ID || !r.Available || r.Err != "" {
			t.Errorf("%s: reading %+v not available", d.Name, r)
			continue
		}
		if d.Kind == bmc.KindThreshold && math.Abs(r.Value-w.value) > 1e-9 {
			t.Errorf("%s: value %v, want %v", d.Name, r.Value, w.value)
		}
		if d.Kind == bmc.KindDiscrete && r.State != w.state {
			t.Errorf("%s: state 0x%04x, want 0x%04x", d.Name, r.State, w.state)
		}
		if r.Time.IsZero() {
			t.Errorf("%s: no reading time", d.Name)
		}
	}
}

func fmtTh(th bmc.Thresholds) string {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	return strings.Join([]string{f(th.LowerFatal), f(th.LowerCritical), f(th.LowerNonCritical), f(th.UpperNonCritical), f(th.UpperCritical), f(th.UpperFatal),
		"hyst", strconv.FormatFloat(th.PositiveHysteresis, 'g', -1, 64), strconv.FormatFloat(th.NegativeHysteresis, 'g', -1, 64)}, " ")
}

// readOne polls one sensor until cond holds or the deadline passes.
func waitReading(t *testing.T, ctx context.Context, c *ipmi.Client, d bmc.SensorDef, cond func(bmc.Reading) bool) bmc.Reading {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last bmc.Reading
	for time.Now().Before(deadline) {
		rs, err := c.Read(ctx, []bmc.SensorDef{d})
		if err != nil {
			t.Fatalf("read %s: %v", d.Name, err)
		}
		last = rs[0]
		if cond(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: condition not met, last reading %+v", d.Name, last)
	return last
}

func TestLANSetValuesAndDiscreteStates(t *testing.T) {
	t.Parallel()
	sim, c, ctx := startSim(t, ipmisim.TestBoard())
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := byName(t, defs)

	// Negative 2's complement reading, then a scaled and offset one.
	if err := sim.Set(ctx, "INLET_TEMP", -42); err != nil {
		t.Fatal(err)
	}
	waitReading(t, ctx, c, got["INLET_TEMP"], func(r bmc.Reading) bool { return r.Available && r.Value == -42 })
	if err := sim.Set(ctx, "PSU_IN_A", 200); err != nil { // 0.05*200 - 1 = 9 A: at UNC
		t.Fatal(err)
	}
	r := waitReading(t, ctx, c, got["PSU_IN_A"], func(r bmc.Reading) bool { return r.Available && r.Value == 9 })
	if r.State&0x08 == 0 {
		t.Errorf("PSU_IN_A at its UNC: threshold state 0x%02x lacks the UNC bit", r.State)
	}

	// Discrete: fuse blown (digital "state asserted" = offset 1), PSU failure (offset 1) with presence.
	if err := sim.SetDiscrete(ctx, "FUSE_BLADE1", 0x0002); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetDiscrete(ctx, "PSU_STATUS", 0x0003); err != nil {
		t.Fatal(err)
	}
	waitReading(t, ctx, c, got["FUSE_BLADE1"], func(r bmc.Reading) bool { return r.Available && r.State == 0x0002 })
	waitReading(t, ctx, c, got["PSU_STATUS"], func(r bmc.Reading) bool { return r.Available && r.State == 0x0003 })
}

func TestLANSELWriteReadAndIpmitool(t *testing.T) {
	t.Parallel()
	sim, c, ctx := startSim(t, ipmisim.TestBoard())
	// ipmi_sim's SEL clock counts from its host's boot until set.
	if err := c.SetSELTime(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	ev := bmc.SELEvent{SensorType: 0x08, SensorNumber: 0x30, EventType: 0x6f, EventData: [3]byte{0x01, 0xff, 0xff}}
	id, err := c.AddSEL(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := c.SEL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *bmc.SELEntry
	for i := range entries {
		if entries[i].RecordID == id {
			found = &entries[i]
		}
	}
	if found == nil {
		t.Fatalf("record 0x%04x not in SEL %+v", id, entries)
	}
	if found.GeneratorID != ipmi.GeneratorBoardd || found.SensorType != 0x08 || found.SensorNumber != 0x30 ||
		found.EventType != 0x6f || found.Deassertion || found.EventData != ev.EventData {
		t.Errorf("read back %+v, want %+v from generator 0x%04x", *found, ev, ipmi.GeneratorBoardd)
	}
	if want := "Power Supply #0x30 | Failure detected | Asserted"; found.Message != want {
		t.Errorf("message %q, want %q", found.Message, want)
	}
	if d := time.Since(found.Time); d > time.Minute || d < -time.Minute {
		t.Errorf("record stamped %v, want about now (SEL time was set)", found.Time)
	}

	testtool.Require(t, "ipmitool")
	out, err := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(sim.LANPort()),
		"-U", ipmisim.User, "-P", ipmisim.Password, "sel", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool sel list: %v\n%s", err, out)
	}
	wantLine := strings.ToLower(strconv.FormatUint(uint64(id), 16))
	var line string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.TrimLeft(strings.ToLower(f[0]), "0") == wantLine {
			line = l
		}
	}
	if !strings.Contains(line, "Power Supply") || !strings.Contains(line, "Failure detected") || !strings.Contains(line, "Asserted") {
		t.Errorf("ipmitool sel list has no matching line for record %x:\n%s", id, out)
	}
}

func TestLANRetryAbsorbsSlowBMC(t *testing.T) {
	t.Parallel()
	sim, c, ctx := startSim(t, ipmisim.TestBoard())
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ipmi_sim stops answering for longer than one request timeout, then
	// answers the queued requests: the first attempt times out, a retry
	// succeeds, and Read reports no error.
	if err := sim.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	go func() {
		time.Sleep(testOpts.Timeout * 3 / 2)
		resumed <- sim.Resume()
	}()
	rs, err := c.Read(ctx, defs)
	if rerr := <-resumed; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("Read across a pause: %v", err)
	}
	for _, r := range rs {
		if !r.Available {
			t.Errorf("%s unavailable after the pause: %s", r.ID, r.Err)
		}
	}
}

func TestLANUnavailableThenRecovers(t *testing.T) {
	t.Parallel()
	sim, c, ctx := startSim(t, ipmisim.TestBoard())
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sim.Kill()
	start := time.Now()
	_, err = c.Read(ctx, defs)
	took := time.Since(start)
	if !errors.Is(err, bmc.ErrUnavailable) {
		t.Fatalf("Read with the BMC gone: err = %v, want bmc.ErrUnavailable", err)
	}
	// Attempts x timeout plus backoff, with room for a loaded machine.
	if budget := time.Duration(testOpts.Retries+1)*testOpts.Timeout + 2*time.Second; took > budget {
		t.Errorf("Read took %v to report the BMC gone, budget %v", took, budget)
	}
	// Once known gone, the next call fails fast (one reconnect attempt).
	start = time.Now()
	if _, err := c.Read(ctx, defs); !errors.Is(err, bmc.ErrUnavailable) {
		t.Fatalf("second Read: err = %v, want bmc.ErrUnavailable", err)
	}
	if took := time.Since(start); took > 4*testOpts.Timeout+2*time.Second {
		t.Errorf("second Read took %v", took)
	}

	if err := sim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs, err := c.Read(ctx, defs)
		if err == nil {
			for _, r := range rs {
				if !r.Available {
					t.Errorf("%s unavailable after recovery: %s", r.ID, r.Err)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client did not recover after restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	changed, err := c.SDRChanged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("SDRChanged after a restart with the same repository = true")
	}
}

func TestLANSDRChangeTriggersRediscovery(t *testing.T) {
	t.Parallel()
	sim, c, ctx := startSim(t, ipmisim.TestBoard())
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := c.SDRChanged(ctx); err != nil || changed {
		t.Fatalf("SDRChanged right after discovery = %v, %v", changed, err)
	}
	cfg := ipmisim.TestBoard()
	cfg.Sensors = append(cfg.Sensors, boardconfig.Sensor{Name: "DCDC2_OUT_V", Role: boardconfig.RolePSUOutput,
		Sim: &boardconfig.SimSensor{Number: 0x05, SensorType: 0x02, EventType: 0x01, EntityID: 0x14, EntityInst: 2,
			Unit: 4, M: 1, B: 2, BExp: 1, RExp: -2, Initial: 110}})
	if err := sim.Reconfigure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		changed, err := c.SDRChanged(ctx)
		if err == nil && changed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SDR change not detected: changed=%v err=%v", changed, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defs2, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs2) != len(defs)+1 {
		t.Fatalf("rediscovered %d sensors, want %d", len(defs2), len(defs)+1)
	}
	d, ok := byName(t, defs2)["DCDC2_OUT_V"]
	if !ok || d.ID != "20-0-05" {
		t.Fatalf("new sensor not discovered: %+v", d)
	}
	rs, err := c.Read(ctx, []bmc.SensorDef{d})
	if err != nil || !rs[0].Available || rs[0].Value != 1.3 {
		t.Fatalf("new sensor reading %+v, %v; want 1.3 V", rs, err)
	}

	// A sensor added at run time (Add SDR through the console) changes the
	// repository's most recent addition time.
	if changed, err := c.SDRChanged(ctx); err != nil || changed {
		t.Fatalf("SDRChanged after rediscovery = %v, %v", changed, err)
	}
	time.Sleep(1100 * time.Millisecond) // addition times have a 1 s resolution
	// A compact record: PSU status "PS2", sensor 0x06, type 0x08/0x6f.
	rec := make([]byte, 35)
	copy(rec[2:], []byte{0x51, 0x02, byte(len(rec) - 5), 0x20, 0x00, 0x06, 0x0a, 0x01, 0x67, 0x40, 0x08, 0x6f, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0xc0})
	copy(rec[31:], []byte{0xc3, 'P', 'S', '2'})
	args := []string{"main_sdr_add", "0x20"}
	for _, b := range rec {
		args = append(args, fmt.Sprintf("0x%02x", b))
	}
	if _, err := sim.Console(ctx, strings.Join(args, " ")); err != nil {
		t.Fatal(err)
	}
	if changed, err := c.SDRChanged(ctx); err != nil || !changed {
		t.Fatalf("SDRChanged after main_sdr_add = %v, %v; want true", changed, err)
	}
	defs3, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := byName(t, defs3)["PS2"]; !ok || d.Class != bmc.ClassPSU || d.ID != "20-0-06" {
		t.Errorf("runtime-added PS2 not discovered right: %+v (%d sensors)", d, len(defs3))
	}
}
