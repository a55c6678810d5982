package collector

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// fakeBMC is a unit-test stand-in for a bmc.Client (the real clients are
// tested against ipmi_sim in boardd/daemon).
type fakeBMC struct {
	mu         sync.Mutex
	defs       []bmc.SensorDef
	values     map[string]float64
	bits       map[string]uint16
	unavail    map[string]bool
	down       bool
	sdrChanged bool
	reads      int
	closed     bool
}

func (f *fakeBMC) Transport() string { return "lan" }
func (f *fakeBMC) Close() error      { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }
func (f *fakeBMC) Sensors(ctx context.Context) ([]bmc.SensorDef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, bmc.ErrUnavailable
	}
	return append([]bmc.SensorDef(nil), f.defs...), nil
}
func (f *fakeBMC) Read(ctx context.Context, defs []bmc.SensorDef) ([]bmc.Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.down {
		return nil, errors.New("timeout: " + bmc.ErrUnavailable.Error())
	}
	out := make([]bmc.Reading, len(defs))
	for i, d := range defs {
		out[i] = bmc.Reading{ID: d.ID, Value: f.values[d.ID], State: f.bits[d.ID], Available: !f.unavail[d.ID]}
		if f.unavail[d.ID] {
			out[i].Err = "no response"
		}
	}
	return out, nil
}
func (f *fakeBMC) SDRChanged(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.sdrChanged
	f.sdrChanged = false
	return c, nil
}
func (f *fakeBMC) set(fn func(f *fakeBMC)) { f.mu.Lock(); fn(f); f.mu.Unlock() }

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func fp(v float64) *float64 { return &v }

func testDefs() []bmc.SensorDef {
	return []bmc.SensorDef{
		{ID: "20-0-01", Name: "PSU_VIN", Number: 1, SensorType: 0x02, ReadingType: 0x01, Kind: bmc.KindThreshold,
			Unit: bmc.UnitVolts, Class: bmc.ClassVoltage, Thresholds: bmc.Thresholds{
				LowerCritical: fp(20), UpperNonCritical: fp(26), UpperCritical: fp(27), PositiveHysteresis: 0.4, NegativeHysteresis: 0.4}},
		{ID: "20-0-0a", Name: "FUSE1", Number: 0x0a, SensorType: 0x08, ReadingType: 0x03, Kind: bmc.KindDiscrete, Class: bmc.ClassFuse},
		{ID: "20-0-10", Name: "OIL_TEMP", Number: 0x10, SensorType: 0x01, ReadingType: 0x01, Kind: bmc.KindThreshold,
			Unit: bmc.UnitCelsius, Class: bmc.ClassTemperature, Thresholds: bmc.Thresholds{UpperNonCritical: fp(55), UpperCritical: fp(65)}},
	}
}

type rig struct {
	c     *Collector
	bmc   *fakeBMC
	clock *fakeClock
	store *snapshot.Store
	log   *events.MemLog
	sub   *events.Subscription
	dials int
}

func newRig(t *testing.T, cfg *boardconfig.Config, withDial bool) *rig {
	t.Helper()
	r := &rig{
		bmc: &fakeBMC{defs: testDefs(),
			values: map[string]float64{"20-0-01": 24, "20-0-10": 40},
			bits:   map[string]uint16{"20-0-0a": 1}, unavail: map[string]bool{}},
		clock: &fakeClock{t: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)},
		store: snapshot.NewStore(),
	}
	r.log = &events.MemLog{Now: r.clock.Now}
	bus := events.NewBus()
	r.sub = bus.Subscribe(100)
	o := Options{Store: r.store, Emitter: &events.Emitter{Log: r.log, Bus: bus}, Config: cfg,
		Clock: r.clock, Interval: time.Second, MaxBackoff: 4 * time.Second}
	if withDial {
		o.Dial = func(ctx context.Context) (bmc.Client, error) {
			r.dials++
			r.bmc.mu.Lock()
			down := r.bmc.down
			r.bmc.mu.Unlock()
			if down {
				return nil, errors.New("dial: no answer")
			}
			return r.bmc, nil
		}
	} else {
		o.Client = r.bmc
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// step advances the clock one interval and polls.
func (r *rig) step() *snapshot.Snapshot {
	r.clock.t = r.clock.t.Add(time.Second)
	r.c.Step(context.Background())
	return r.store.Load()
}

// drain returns the events published since the last drain, checking
// that each was persisted before it was published.
func (r *rig) drain(t *testing.T) []events.Event {
	t.Helper()
	var out []events.Event
	for {
		select {
		case ev := <-r.sub.C:
			stored, _ := r.log.List(ev.Seq-1, 1)
			if ev.Seq == 0 || len(stored) != 1 || stored[0].Source != ev.Source {
				t.Fatalf("event %+v published without being in the log", ev)
			}
			out = append(out, ev)
		default:
			return out
		}
	}
}

func find(evs []events.Event, kind events.Kind, source string) *events.Event {
	for i := range evs {
		if evs[i].Kind == kind && evs[i].Source == source {
			return &evs[i]
		}
	}
	return nil
}

func TestFirstPollBuildsSnapshot(t *testing.T) {
	r := newRig(t, nil, false)
	s := r.step()
	if !s.BMC.Up || s.BMC.Transport != "lan" || s.Seq == 0 {
		t.Fatalf("BMC = %+v seq %d", s.BMC, s.Seq)
	}
	if len(s.Sensors) != 3 {
		t.Fatalf("%d sensors", len(s.Sensors))
	}
	v, ok := s.Sensor("20-0-01")
	if !ok || v.Reading.Value != 24 || v.State != health.OK || v.Subsystem != health.Power ||
		v.Thresholds.UpperCritical == nil || *v.Thresholds.UpperCritical != 27 {
		t.Errorf("PSU_VIN = %+v", v)
	}
	if s.Health.State != health.OK || s.Subsystems[health.Thermal].State != health.OK {
		t.Errorf("health %+v subsystems %+v", s.Health, s.Subsystems)
	}
	if evs := r.drain(t); len(evs) != 0 {
		t.Errorf("a healthy start emitted %d events: %+v", len(evs), evs)
	}
	if r.c.LastIteration().IsZero() {
		t.Error("LastIteration not set")
	}
}

func TestCriticalThenHysteresis(t *testing.T) {
	r := newRig(t, nil, false)
	r.step()
	r.bmc.set(func(f *fakeBMC) { f.values["20-0-01"] = 27.5 })
	s := r.step()
	if v, _ := s.Sensor("20-0-01"); v.State != health.Critical {
		t.Fatalf("PSU_VIN at 27.5 V: %s", v.State)
	}
	evs := r.drain(t)
	ev := find(evs, events.KindSensor, "20-0-01")
	if ev == nil || ev.To != health.Critical || ev.From != health.OK ||
		ev.MessageID != "ResourceEvent.1.4.ResourceStatusChangedCritical" ||
		ev.Origin != "/redfish/v1/Chassis/board/Sensors/20-0-01" || ev.Data["reading"] != "27.5" ||
		ev.Data["sensor_num"] != "1" || len(ev.MessageArgs) != 2 {
		t.Fatalf("sensor event %+v", ev)
	}
	if find(evs, events.KindSubsystem, "Power") == nil || find(evs, events.KindBoard, "board") == nil {
		t.Errorf("no subsystem/board events in %+v", evs)
	}
	// Back just under the threshold, within the hysteresis: still critical.
	r.bmc.set(func(f *fakeBMC) { f.values["20-0-01"] = 26.8 })
	if v, _ := r.step().Sensor("20-0-01"); v.State != health.Critical {
		t.Fatalf("26.8 V within hysteresis: %s", v.State)
	}
	if evs := r.drain(t); len(evs) != 0 {
		t.Errorf("events within hysteresis: %+v", evs)
	}
	r.bmc.set(func(f *fakeBMC) { f.values["20-0-01"] = 24 })
	if v, _ := r.step().Sensor("20-0-01"); v.State != health.OK {
		t.Fatalf("24 V: %s", v.State)
	}
	ev = find(r.drain(t), events.KindSensor, "20-0-01")
	if ev == nil || ev.To != health.OK || ev.MessageID != MsgStatusChangedOK {
		t.Errorf("recovery event %+v", ev)
	}
}

func TestFuseBlown(t *testing.T) {
	r := newRig(t, nil, false)
	r.step()
	r.bmc.set(func(f *fakeBMC) { f.bits["20-0-0a"] = 0x2 })
	s := r.step()
	if v, _ := s.Sensor("20-0-0a"); v.State != health.Critical || s.Subsystems[health.Fuses].State != health.Critical {
		t.Fatalf("blown fuse: %+v, Fuses %+v", v, s.Subsystems[health.Fuses])
	}
	if ev := find(r.drain(t), events.KindSensor, "20-0-0a"); ev == nil || ev.Data["state"] != "0x2" {
		t.Errorf("fuse event %+v", ev)
	}
}

func TestOneDroppedReadingIsNotAnAlarm(t *testing.T) {
	r := newRig(t, nil, false)
	r.step()
	r.bmc.set(func(f *fakeBMC) { f.unavail["20-0-10"] = true })
	s := r.step()
	if v, _ := s.Sensor("20-0-10"); v.State != health.OK || v.Reading.Value != 40 {
		t.Fatalf("after one dropped reading: %+v", v)
	}
	if evs := r.drain(t); len(evs) != 0 {
		t.Fatalf("one dropped reading emitted %+v", evs)
	}
	s = r.step()
	if v, _ := s.Sensor("20-0-10"); v.State != health.Unavailable {
		t.Fatalf("after two dropped readings: %s", v.State)
	}
	if ev := find(r.drain(t), events.KindSensor, "20-0-10"); ev == nil || ev.MessageID != MsgErrorsDetected {
		t.Errorf("unavailable event %+v", ev)
	}
}

func TestBMCDownAndReconnect(t *testing.T) {
	r := newRig(t, nil, true)
	r.step()
	r.drain(t)
	r.bmc.set(func(f *fakeBMC) { f.down = true })
	s := r.step()
	if s.BMC.Up || s.BMC.Err == "" {
		t.Fatalf("BMC %+v", s.BMC)
	}
	for _, x := range s.Sensors {
		if x.State != health.Unavailable || x.Reason == "" {
			t.Errorf("sensor %s: %s %q", x.Def.Name, x.State, x.Reason)
		}
	}
	if s.Health.State != health.Critical {
		t.Errorf("board with BMC down: %+v", s.Health)
	}
	evs := r.drain(t)
	if ev := find(evs, events.KindBMC, "bmc"); ev == nil || ev.To != health.Unavailable {
		t.Errorf("no BMC down event in %+v", evs)
	}
	if ev := find(evs, events.KindSensor, "20-0-01"); ev == nil || ev.To != health.Unavailable || ev.Data[CauseKey] != CauseBMCUnreachable {
		t.Errorf("sensor event with the BMC down: %+v", ev)
	}
	// Backoff: the next dials are spaced, and polls keep publishing.
	dials := r.dials
	seq := s.Seq
	for i := 0; i < 6; i++ {
		s = r.step()
	}
	if s.Seq <= seq {
		t.Error("snapshots stopped while the BMC is down")
	}
	if n := r.dials - dials; n < 2 || n > 5 {
		t.Errorf("%d dials in 6 polls with backoff", n)
	}
	if evs := r.drain(t); len(evs) != 0 {
		t.Errorf("events while staying down: %+v", evs)
	}
	r.bmc.set(func(f *fakeBMC) { f.down = false })
	for i := 0; i < 6 && !s.BMC.Up; i++ {
		s = r.step()
	}
	if !s.BMC.Up || s.Health.State != health.OK {
		t.Fatalf("did not recover: %+v %+v", s.BMC, s.Health)
	}
	if v, _ := s.Sensor("20-0-01"); v.State != health.OK {
		t.Errorf("PSU_VIN after recovery: %s", v.State)
	}
	evs = r.drain(t)
	if ev := find(evs, events.KindBMC, "bmc"); ev == nil || ev.To != health.OK || ev.MessageID != MsgErrorsCorrected {
		t.Errorf("no BMC up event in %+v", evs)
	}
}

func TestRequiredSensorMissing(t *testing.T) {
	cfg := boardconfig.Default()
	cfg.Board.ID = "blade1"
	yes := true
	cfg.Sensors = []boardconfig.Sensor{
		{Name: "PSU_VIN", Role: boardconfig.RolePSUInput, Required: &yes},
		{Name: "LEAK", Role: boardconfig.RoleLeak, Required: &yes},
	}
	r := newRig(t, cfg, false)
	s := r.step()
	m, ok := s.Sensor(MissingID("LEAK"))
	if !ok || m.State != health.Critical || m.Subsystem != health.Cooling {
		t.Fatalf("missing LEAK: %+v (ok %v)", m, ok)
	}
	if s.Health.State != health.Critical {
		t.Errorf("board %+v", s.Health)
	}
	ev := find(r.drain(t), events.KindSensor, MissingID("LEAK"))
	if ev == nil || ev.To != health.Critical || ev.Origin != "/redfish/v1/Chassis/blade1/Sensors/missing-LEAK" {
		t.Errorf("missing sensor event %+v", ev)
	}
	// The sensor appears (SDR changed): it is tracked under its real id.
	r.bmc.set(func(f *fakeBMC) {
		f.defs = append(f.defs, bmc.SensorDef{ID: "20-0-20", Name: "LEAK", Kind: bmc.KindDiscrete, Class: bmc.ClassLeak, SensorType: 0xc0, ReadingType: 0x03})
		f.bits["20-0-20"] = 1
		f.sdrChanged = true
	})
	r.c.nextSDR = time.Time{}
	s = r.step()
	if _, ok := s.Sensor(MissingID("LEAK")); ok {
		t.Error("placeholder still there")
	}
	if v, ok := s.Sensor("20-0-20"); !ok || v.State != health.OK {
		t.Errorf("LEAK after rediscovery: %+v", v)
	}
	if s.Health.State != health.OK {
		t.Errorf("board %+v", s.Health)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Store: snapshot.NewStore()},
		{Store: snapshot.NewStore(), Emitter: &events.Emitter{Log: &events.MemLog{}}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestForeignSubsystemsCarriedAndRolledUp(t *testing.T) {
	r := newRig(t, nil, false)
	r.step()
	// Another source (the fabric watcher) publishes its subsystem.
	cur := r.store.Load()
	n := *cur
	n.Subsystems = map[health.Subsystem]snapshot.Rollup{health.Fabric: {State: health.Critical, Reason: "link down"}}
	for k, v := range cur.Subsystems {
		n.Subsystems[k] = v
	}
	r.store.Swap(&n)
	s := r.step()
	if f := s.Subsystems[health.Fabric]; f.State != health.Critical || f.Reason != "link down" {
		t.Fatalf("fabric subsystem after a poll: %+v", f)
	}
	if s.Health.State != health.Critical || s.Subsystems[health.Power].State != health.OK {
		t.Errorf("board %+v, power %+v", s.Health, s.Subsystems[health.Power])
	}
	if ev := find(r.drain(t), events.KindBoard, "board"); ev == nil || ev.To != health.Critical {
		t.Errorf("board event %+v", ev)
	}
}
