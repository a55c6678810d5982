package daemon

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/internal/testtool"
)

// The integration tests run boardd in-process (daemon.New + Run) against
// a real ipmi_sim generated from the emulated board's config, over IPMI
// LAN, at a 500 ms poll interval.
const testInterval = 500 * time.Millisecond

type board struct {
	cfg *boardconfig.Config
	sim *ipmisim.Sim
	r   *running
}

func startBoard(t *testing.T) *board {
	t.Helper()
	cfg := emulatedConfig(t)
	// A loaded CI machine can stall ipmi_sim past the board's 1 s request
	// timeout; these tests are about the policy, not about timeouts
	// (TestDroppedReplyIsRetriedWithoutAlarm keeps the board's).
	cfg.BMC.Timeout.Duration = 3 * time.Second
	return startBoardWith(t, cfg)
}

func startBoardWith(t *testing.T, cfg *boardconfig.Config) *board {
	t.Helper()
	sim := startSim(t, cfg)
	r := startDaemon(t, Options{BMCURL: sim.URL(), Config: cfg, Interval: testInterval})
	waitSnap(t, r.d.Store(), 60*time.Second, "all sensors read", func(s *snapshot.Snapshot) bool {
		return s.BMC.Up && len(s.Sensors) == len(cfg.Sensors) && s.Health.State == health.OK
	})
	r.drain(t)
	return &board{cfg: cfg, sim: sim, r: r}
}

// expect waits until the named sensor is in state want, and checks it
// took at most two polls after the change was made at the BMC.
func (b *board) expect(t *testing.T, name string, want health.State, afterSeq uint64) snapshot.Sensor {
	t.Helper()
	s := waitSnap(t, b.r.d.Store(), 60*time.Second, name+" "+want.String(), func(s *snapshot.Snapshot) bool {
		x, _ := byName(s, name)
		return x.State == want
	})
	if s.Seq > afterSeq+2 {
		t.Errorf("%s became %s at snapshot %d, more than two polls after the change (snapshot %d)", name, want, s.Seq, afterSeq)
	}
	x, _ := byName(s, name)
	return x
}

func (b *board) seq() uint64 { return b.r.d.Store().Load().Seq }

func (b *board) set(t *testing.T, name string, raw int) uint64 {
	t.Helper()
	seq := b.seq()
	if err := b.sim.Set(context.Background(), name, raw); err != nil {
		t.Fatal(err)
	}
	return seq
}

func (b *board) setDiscrete(t *testing.T, name string, mask uint16) uint64 {
	t.Helper()
	if err := b.sim.SetDiscrete(context.Background(), name, mask); err != nil {
		t.Fatal(err)
	}
	// ipmi_sim reads the file on its own 500 ms poll: count from then.
	time.Sleep(600 * time.Millisecond)
	return b.seq()
}

func sensorEvent(evs []events.Event, name string) []events.Event {
	var out []events.Event
	for _, ev := range evs {
		if ev.Kind == events.KindSensor && ev.Data["name"] == name {
			out = append(out, ev)
		}
	}
	return out
}

func conv(s *boardconfig.SimSensor, raw int) float64 {
	if s.Signed && raw > 127 {
		raw -= 256
	}
	return (float64(s.M)*float64(raw) + float64(s.B)*math.Pow10(s.BExp)) * math.Pow10(s.RExp)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestDiscoversEverySensor(t *testing.T) {
	b := startBoard(t)
	s := b.r.d.Store().Load()
	units := map[uint8]bmc.Unit{1: bmc.UnitCelsius, 4: bmc.UnitVolts, 5: bmc.UnitAmperes, 6: bmc.UnitWatts, 18: bmc.UnitRPM}
	for _, cs := range b.cfg.Sensors {
		x, ok := byName(s, cs.Name)
		if !ok {
			t.Errorf("%s not discovered", cs.Name)
			continue
		}
		sim := cs.Sim
		if x.Def.ID != fmt.Sprintf("20-0-%02x", sim.Number) || x.State != health.OK || !x.Reading.Available {
			t.Errorf("%s: id %s state %s available %v", cs.Name, x.Def.ID, x.State, x.Reading.Available)
		}
		if sim.EventType != 0x01 {
			if x.Def.Kind != bmc.KindDiscrete || x.Reading.State != sim.Initial {
				t.Errorf("%s: kind %s state 0x%x, want discrete 0x%x", cs.Name, x.Def.Kind, x.Reading.State, sim.Initial)
			}
			continue
		}
		if want := conv(sim, int(sim.Initial)); !near(x.Reading.Value, want) {
			t.Errorf("%s = %v, want %v", cs.Name, x.Reading.Value, want)
		}
		if x.Def.Unit != units[sim.Unit] {
			t.Errorf("%s unit %q, want %q", cs.Name, x.Def.Unit, units[sim.Unit])
		}
		if raw, ok := sim.RawThresholds["uc"]; ok {
			if x.Thresholds.UpperCritical == nil || !near(*x.Thresholds.UpperCritical, conv(sim, int(raw))) {
				t.Errorf("%s upper critical %v, want %v", cs.Name, x.Thresholds.UpperCritical, conv(sim, int(raw)))
			}
		}
		if raw, ok := sim.RawThresholds["lc"]; ok {
			if x.Thresholds.LowerCritical == nil || !near(*x.Thresholds.LowerCritical, conv(sim, int(raw))) {
				t.Errorf("%s lower critical %v, want %v", cs.Name, x.Thresholds.LowerCritical, conv(sim, int(raw)))
			}
		}
	}
	// The config overrides the BMC's oil warning threshold (55 -> 50 degC).
	if oil, _ := byName(s, "OIL_TEMP"); oil.Thresholds.UpperNonCritical == nil || *oil.Thresholds.UpperNonCritical != 50 {
		t.Errorf("OIL_TEMP warning threshold %v, want the config's 50", oil.Thresholds.UpperNonCritical)
	}
	if pin, _ := byName(s, "PSU_PIN"); pin.Def.Unit != bmc.UnitWatts || pin.Subsystem != health.Power {
		t.Errorf("PSU_PIN (Watts on a current-type sensor): unit %q subsystem %s", pin.Def.Unit, pin.Subsystem)
	}
}

func TestPSURailCriticalAndHysteresis(t *testing.T) {
	b := startBoard(t)
	// PSU_VIN: 0.2 V/count, upper warning 26.0 V (130), critical 27.0 V
	// (135), hysteresis 0.4 V (2 counts).
	seq := b.set(t, "PSU_VIN", 136) // 27.2 V
	x := b.expect(t, "PSU_VIN", health.Critical, seq)
	if !near(x.Reading.Value, 27.2) || x.Reason == "" {
		t.Errorf("PSU_VIN %v %q", x.Reading.Value, x.Reason)
	}
	s := b.r.d.Store().Load()
	if s.Subsystems[health.Power].State != health.Critical || s.Health.State != health.Critical {
		t.Errorf("Power %+v board %+v", s.Subsystems[health.Power], s.Health)
	}
	// 26.8 V is below the threshold but within the hysteresis: still Critical.
	b.set(t, "PSU_VIN", 134)
	s = waitSnap(t, b.r.d.Store(), 30*time.Second, "26.8 V read", func(s *snapshot.Snapshot) bool {
		x, _ := byName(s, "PSU_VIN")
		return near(x.Reading.Value, 26.8)
	})
	s = nextSnaps(t, b.r.d.Store(), 2)
	if x, _ := byName(s, "PSU_VIN"); x.State != health.Critical {
		t.Fatalf("PSU_VIN at 26.8 V (within hysteresis): %s", x.State)
	}
	// 26.6 V clears critical by the hysteresis: Warning (above 26.0 V).
	seq = b.set(t, "PSU_VIN", 133)
	b.expect(t, "PSU_VIN", health.Warning, seq)
	seq = b.set(t, "PSU_VIN", 120)
	b.expect(t, "PSU_VIN", health.OK, seq)

	evs := sensorEvent(b.r.drain(t), "PSU_VIN")
	var path []health.State
	for _, ev := range evs {
		path = append(path, ev.To)
		if ev.Origin != "/redfish/v1/Chassis/blade1/Sensors/20-0-01" || ev.Seq == 0 {
			t.Errorf("event %+v", ev)
		}
	}
	if fmt.Sprint(path) != fmt.Sprint([]health.State{health.Critical, health.Warning, health.OK}) {
		t.Errorf("PSU_VIN went through %v, want [Critical Warning OK]", path)
	}
	if len(evs) > 0 && evs[0].MessageID != "ResourceEvent.1.4.ResourceStatusChangedCritical" {
		t.Errorf("MessageID %s", evs[0].MessageID)
	}
	// Persisted: the log has them, in order.
	logged, _ := b.r.d.EventLog().List(0, 0)
	if got := sensorEvent(logged, "PSU_VIN"); len(got) != len(evs) {
		t.Errorf("log has %d PSU_VIN events, bus had %d", len(got), len(evs))
	}
}

func TestDiscreteFaults(t *testing.T) {
	b := startBoard(t)
	for _, tc := range []struct {
		sensor    string
		bad, good uint16
		sub       health.Subsystem
		reason    string
	}{
		{"PSU_STATUS", 0x0003, 0x0001, health.Power, "fail"},
		{"FUSE2", 0x0002, 0x0001, health.Fuses, "blown"},
		{"LEAK", 0x0002, 0x0001, health.Cooling, "leak"},
	} {
		seq := b.setDiscrete(t, tc.sensor, tc.bad)
		x := b.expect(t, tc.sensor, health.Critical, seq)
		if !strings.Contains(strings.ToLower(x.Reason), tc.reason) {
			t.Errorf("%s reason %q, want it to mention %q", tc.sensor, x.Reason, tc.reason)
		}
		if s := b.r.d.Store().Load(); s.Subsystems[tc.sub].State != health.Critical {
			t.Errorf("%s: subsystem %s is %+v", tc.sensor, tc.sub, s.Subsystems[tc.sub])
		}
		seq = b.setDiscrete(t, tc.sensor, tc.good)
		b.expect(t, tc.sensor, health.OK, seq)
		if evs := sensorEvent(b.r.drain(t), tc.sensor); len(evs) != 2 || evs[0].To != health.Critical || evs[1].To != health.OK {
			t.Errorf("%s events %+v", tc.sensor, evs)
		}
	}
}

func TestOverTemperature(t *testing.T) {
	b := startBoard(t)
	// OIL_TEMP: 0.5 degC/count; the config warns at 50 degC (the BMC at
	// 55); critical at 65 degC (130).
	seq := b.set(t, "OIL_TEMP", 104) // 52 degC
	b.expect(t, "OIL_TEMP", health.Warning, seq)
	seq = b.set(t, "OIL_TEMP", 132) // 66 degC
	b.expect(t, "OIL_TEMP", health.Critical, seq)
	if s := b.r.d.Store().Load(); s.Subsystems[health.Thermal].State != health.Critical {
		t.Errorf("Thermal %+v", s.Subsystems[health.Thermal])
	}
	seq = b.set(t, "OIL_TEMP", 80)
	b.expect(t, "OIL_TEMP", health.OK, seq)
}

func TestBMCLostAndRegained(t *testing.T) {
	b := startBoard(t)
	b.sim.Kill()
	s := waitSnap(t, b.r.d.Store(), 60*time.Second, "BMC down", func(s *snapshot.Snapshot) bool { return !s.BMC.Up })
	for _, x := range s.Sensors {
		if x.State != health.Unavailable || !strings.Contains(x.Reason, "unreachable") {
			t.Errorf("%s with the BMC gone: %s %q", x.Def.Name, x.State, x.Reason)
		}
	}
	if s.BMC.Err == "" || s.Health.State != health.Critical {
		t.Errorf("BMC %+v health %+v", s.BMC, s.Health)
	}
	// Still serving, from the snapshot.
	if code, body := httpGet(t, "http://"+b.r.d.MetricsAddr()+"/metrics"); code != 200 || !bytes.Contains(body, []byte(`boardd_bmc_up{transport="lan"} 0`)) {
		t.Errorf("metrics with the BMC down: %d\n%s", code, grep(body, "boardd_bmc_up"))
	}
	if code, _ := httpGet(t, "https://"+b.r.d.Addr()+"/redfish/v1/"); code != 200 {
		t.Errorf("Redfish service root with the BMC down: %d", code)
	}
	nextSnaps(t, b.r.d.Store(), 2) // keeps publishing while down

	if err := b.sim.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = waitSnap(t, b.r.d.Store(), 90*time.Second, "recovered", func(s *snapshot.Snapshot) bool {
		return s.BMC.Up && s.Health.State == health.OK
	})
	for _, x := range s.Sensors {
		if x.State != health.OK {
			t.Errorf("%s after recovery: %s", x.Def.Name, x.State)
		}
	}
	evs := b.r.drain(t)
	var bmcEvs []health.State
	for _, ev := range evs {
		if ev.Kind == events.KindBMC {
			bmcEvs = append(bmcEvs, ev.To)
		}
	}
	if fmt.Sprint(bmcEvs) != fmt.Sprint([]health.State{health.Unavailable, health.OK}) {
		t.Errorf("BMC events %v", bmcEvs)
	}
}

func TestDroppedReplyIsRetriedWithoutAlarm(t *testing.T) {
	cfg := emulatedConfig(t)
	if cfg.BMC.Timeout.Duration != time.Second || cfg.BMC.Retries < 1 {
		t.Fatalf("the emulated board's BMC timeout is %s with %d retries; this test assumes 1s and some", cfg.BMC.Timeout.Duration, cfg.BMC.Retries)
	}
	b := startBoardWith(t, cfg)
	// ipmi_sim stops answering for 1.5 s, longer than the 1 s request
	// timeout: the request in flight gets no reply in time and is sent
	// again; no reading is lost, nothing changes state.
	for i := 0; i < 3; i++ {
		nextSnaps(t, b.r.d.Store(), 1)
		if err := b.sim.Pause(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := b.sim.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	s := nextSnaps(t, b.r.d.Store(), 3)
	if !s.BMC.Up || s.Health.State != health.OK {
		t.Errorf("after dropped replies: BMC %+v health %+v", s.BMC, s.Health)
	}
	for _, ev := range b.r.drain(t) {
		t.Errorf("unexpected event after a dropped reply: %s %s %s->%s: %s", ev.Kind, ev.Source, ev.From, ev.To, ev.Message)
	}
}

func TestSELEntriesWritten(t *testing.T) {
	ipmitool := testtool.Require(t, "ipmitool")
	b := startBoard(t)
	seq := b.setDiscrete(t, "FUSE3", 0x0002)
	b.expect(t, "FUSE3", health.Critical, seq)
	deadline := time.Now().Add(60 * time.Second)
	for b.r.d.SELSink().Written() < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := b.r.d.SELSink().Written(); n < 1 {
		t.Fatalf("SEL sink wrote %d records (failed %d)", n, b.r.d.SELSink().Failed())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipmitool, "-I", "lanplus", "-C", "3", "-H", "127.0.0.1",
		"-p", strconv.Itoa(b.sim.LANPort()), "-U", ipmisim.User, "-P", ipmisim.Password, "sel", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool sel list: %v\n%s", err, out)
	}
	// ipmi_sim logs the fuse's own assertion; boardd adds its record: the
	// fuse's sensor type (Power Supply) and number (0x0c), OEM event type
	// 0x70, event data 02 (Critical) 00 (from OK) 04 (Fuses).
	var ids []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, "|"); len(f) > 3 && strings.Contains(f[3], "Power Supply #0x0c") {
			ids = append(ids, strings.TrimSpace(f[0]))
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no SEL entry for FUSE3 (Power Supply #0x0c) in:\n%s", out)
	}
	args := append([]string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(b.sim.LANPort()),
		"-U", ipmisim.User, "-P", ipmisim.Password, "sel", "get"}, ids...)
	got, err := exec.CommandContext(ctx, ipmitool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool sel get: %v\n%s", err, got)
	}
	// (from OK, or from Unavailable if a loaded machine made a poll fail)
	ours := regexp.MustCompile(`(?s)Sensor Number\s*: 0c\s+Event Type\s*: OEM\s+Event Direction\s*: Assertion Event\s+Event Data\s*: 02(00|03)04`)
	if !ours.Match(got) || !strings.Contains(string(got), "Generator ID          : 0041") {
		t.Errorf("boardd's SEL record for FUSE3 not found:\n%s\n%s", out, got)
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestColdStartWithoutBMC: the BMC is not there when boardd starts; boardd
// serves anyway and connects by itself once it appears.
func TestColdStartWithoutBMC(t *testing.T) {
	cfg := emulatedConfig(t)
	port, err := freeUDP()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("ipmi+lan://%s:%s@127.0.0.1:%d", ipmisim.User, ipmisim.Password, port)
	r := startDaemon(t, Options{BMCURL: url, Config: cfg, Interval: testInterval})
	s := waitSnap(t, r.d.Store(), 90*time.Second, "BMC down", func(s *snapshot.Snapshot) bool { return s.Seq > 0 && !s.BMC.Up })
	if s.BMC.Err == "" || s.Health.State != health.Critical || s.BMC.Transport != "lan" {
		t.Errorf("without a BMC: %+v %+v", s.BMC, s.Health)
	}
	if code, body := httpGet(t, "http://"+r.d.MetricsAddr()+"/metrics"); code != 200 || !bytes.Contains(body, []byte(`boardd_bmc_up{transport="lan"} 0`)) {
		t.Errorf("metrics without a BMC: %d\n%s", code, grep(body, "boardd_bmc_up"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ipmisim.Start(ctx, t, cfg, ipmisim.Options{Dir: t.TempDir(), LANPort: port}); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, r.d.Store(), 120*time.Second, "connected", func(s *snapshot.Snapshot) bool {
		return s.BMC.Up && len(s.Sensors) == len(cfg.Sensors) && s.Health.State == health.OK
	})
}

func freeUDP() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
