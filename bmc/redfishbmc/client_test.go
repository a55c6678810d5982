package redfishbmc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/bmc"
)

// mockup serves DMTF's public-liquid-cooled-server mockup (testdata,
// license in testdata/LICENSE-DMTF.md) over TLS with basic auth. override
// replaces a resource's JSON.
type mockup struct {
	root     string
	srv      *httptest.Server
	mu       sync.Mutex
	override map[string]string
	status   map[string]int
}

func serveMockup(t *testing.T) *mockup { return serveRoot(t, filepath.Join("testdata", "mockup")) }

func serveRoot(t *testing.T, root string) *mockup {
	t.Helper()
	m := &mockup{root: root, override: map[string]string{}, status: map[string]int{}}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The service root is readable without credentials (DSP0266).
		if u, p, ok := r.BasicAuth(); strings.TrimSuffix(r.URL.Path, "/") != "/redfish/v1" && (!ok || u != "admin" || p != "secret") {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		path := strings.TrimSuffix(r.URL.Path, "/")
		m.mu.Lock()
		body, over := m.override[path]
		code := m.status[path]
		m.mu.Unlock()
		if code != 0 {
			w.WriteHeader(code)
			return
		}
		if !over {
			rel := strings.TrimPrefix(strings.TrimPrefix(path, "/redfish/v1"), "/")
			b, err := os.ReadFile(filepath.Join(m.root, filepath.FromSlash(rel), "index.json"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			body = string(b)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	m.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the bad-certificate test's handshake failure is expected
	m.srv.StartTLS()
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mockup) set(path string, mutate func(map[string]any)) error {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, "/redfish/v1"), "/")
	b, err := os.ReadFile(filepath.Join(m.root, filepath.FromSlash(rel), "index.json"))
	if err != nil {
		return err
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	mutate(v)
	out, _ := json.Marshal(v)
	m.mu.Lock()
	m.override[path] = string(out)
	m.mu.Unlock()
	return nil
}

func dial(t *testing.T, m *mockup, opts Options) *Client {
	t.Helper()
	opts.InsecureTLS = true // httptest's certificate is self-signed, like a BMC's
	c, err := Dial(context.Background(), Config{Endpoint: m.srv.URL, Username: "admin", Password: "secret"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func f(v float64) *float64 { return &v }

func TestSensorsAndReadings(t *testing.T) {
	m := serveMockup(t)
	c := dial(t, m, Options{Timeout: 10 * time.Second})
	ctx := context.Background()
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 43 {
		t.Fatalf("%d sensors, want the mockup's 41 sensors and 2 power supplies", len(defs))
	}
	by := map[string]bmc.SensorDef{}
	var sensorDefs []bmc.SensorDef
	for _, d := range defs {
		by[d.ID] = d
		if d.Class == bmc.ClassPSU {
			if d.Kind != bmc.KindDiscrete || d.SensorType != 0x08 || d.ReadingType != 0x6f {
				t.Errorf("%s: %+v is not a PSU status sensor", d.ID, d)
			}
			continue
		}
		sensorDefs = append(sensorDefs, d)
		if d.Kind != bmc.KindThreshold {
			t.Errorf("%s: kind %s", d.ID, d.Kind)
		}
	}
	// PSU bay 1: present, health Warning (predictive failure); bay 2 absent.
	psus, err := c.Read(ctx, []bmc.SensorDef{by["PowerSupply/Bay1"], by["PowerSupply/Bay2"]})
	if err != nil {
		t.Fatal(err)
	}
	if !psus[0].Available || psus[0].State != 0x0005 || !psus[1].Available || psus[1].State != 0x0000 {
		t.Errorf("PSU states %+v, want 0x0005 and 0x0000", psus)
	}
	defs = sensorDefs
	tests := []struct {
		id    string
		name  string
		unit  bmc.Unit
		class bmc.Class
		th    bmc.Thresholds
		value float64
	}{
		// The resource at .../Sensors/CPU1Temp has Id "CPUTemp1".
		{"CPUTemp1", "CPU #1 Temperature", bmc.UnitCelsius, bmc.ClassTemperature,
			bmc.Thresholds{UpperNonCritical: f(42), UpperCritical: f(45), UpperFatal: f(50)}, 37},
		{"CPUFan1", "CPU #1 Fan Speed", bmc.UnitPercent, bmc.ClassFan,
			bmc.Thresholds{LowerNonCritical: f(5), LowerCritical: f(0)}, 80},
		{"AmbientTemp", "Ambient Temperature", bmc.UnitCelsius, bmc.ClassTemperature, bmc.Thresholds{}, 22.5},
	}
	for _, tt := range tests {
		d, ok := by[tt.id]
		if !ok {
			t.Errorf("%s not discovered", tt.id)
			continue
		}
		if d.Name != tt.name || d.Unit != tt.unit || d.Class != tt.class {
			t.Errorf("%s: name/unit/class = %q/%q/%s, want %q/%q/%s", tt.id, d.Name, d.Unit, d.Class, tt.name, tt.unit, tt.class)
		}
		if !same(d.Thresholds, tt.th) {
			t.Errorf("%s: thresholds %+v, want %+v", tt.id, d.Thresholds, tt.th)
		}
		rs, err := c.Read(ctx, []bmc.SensorDef{d})
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Available || rs[0].Value != tt.value {
			t.Errorf("%s: reading %+v, want %v", tt.id, rs[0], tt.value)
		}
	}
	// Every mockup sensor reads as the mockup says: its Reading, or
	// unavailable where the mockup has "Reading": null (PS2 is absent).
	rs, err := c.Read(ctx, defs)
	if err != nil {
		t.Fatal(err)
	}
	classes := map[bmc.Class]int{}
	nulls := 0
	for i, r := range rs {
		classes[defs[i].Class]++
		var doc struct{ Reading *float64 }
		b, err := os.ReadFile(filepath.Join("testdata", "mockup", "Chassis", "1U", "Sensors", sensorDir(t, r.ID), "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		switch {
		case doc.Reading == nil:
			nulls++
			if r.Available || r.Err == "" {
				t.Errorf("%s: null reading reported %+v", r.ID, r)
			}
		case !r.Available || r.Value != *doc.Reading:
			t.Errorf("%s: reading %+v, mockup says %v", r.ID, r, *doc.Reading)
		}
	}
	if nulls == 0 || nulls == len(rs) {
		t.Errorf("%d null readings of %d: the mockup has some", nulls, len(rs))
	}
	for _, cl := range []bmc.Class{bmc.ClassTemperature, bmc.ClassVoltage, bmc.ClassCurrent, bmc.ClassPower, bmc.ClassFan} {
		if classes[cl] == 0 {
			t.Errorf("no %s sensor among %v", cl, classes)
		}
	}
}

func same(a, b bmc.Thresholds) bool {
	eq := func(x, y *float64) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return eq(a.LowerNonCritical, b.LowerNonCritical) && eq(a.LowerCritical, b.LowerCritical) && eq(a.LowerFatal, b.LowerFatal) &&
		eq(a.UpperNonCritical, b.UpperNonCritical) && eq(a.UpperCritical, b.UpperCritical) && eq(a.UpperFatal, b.UpperFatal)
}

func TestUnavailableReadings(t *testing.T) {
	m := serveMockup(t)
	c := dial(t, m, Options{Timeout: 10 * time.Second, Retries: 1, Backoff: 10 * time.Millisecond})
	ctx := context.Background()
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var amb, cpu bmc.SensorDef
	for _, d := range defs {
		switch d.ID {
		case "AmbientTemp":
			amb = d
		case "CPUTemp1":
			cpu = d
		}
	}
	if err := m.set("/redfish/v1/Chassis/1U/Sensors/AmbientTemp", func(v map[string]any) { v["Reading"] = nil }); err != nil {
		t.Fatal(err)
	}
	if err := m.set("/redfish/v1/Chassis/1U/Sensors/CPU1Temp", func(v map[string]any) { v["Status"] = map[string]any{"State": "Absent"} }); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Read(ctx, []bmc.SensorDef{amb, cpu, {ID: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Available || r.Err == "" {
			t.Errorf("%s: %+v, want unavailable with a reason", r.ID, r)
		}
	}
	// A 503 on every try: the service is unavailable.
	m.mu.Lock()
	m.status["/redfish/v1/Chassis/1U/Sensors/CPU1Temp"] = http.StatusServiceUnavailable
	m.mu.Unlock()
	if _, err := c.Read(ctx, []bmc.SensorDef{cpu}); !errors.Is(err, bmc.ErrUnavailable) {
		t.Errorf("Read on 503 = %v, want bmc.ErrUnavailable", err)
	}
	// The service gone.
	m.srv.Close()
	if _, err := c.Read(ctx, []bmc.SensorDef{amb}); !errors.Is(err, bmc.ErrUnavailable) {
		t.Errorf("Read with the service gone = %v, want bmc.ErrUnavailable", err)
	}
}

func TestDialRejectsBadCertificateUnlessInsecure(t *testing.T) {
	m := serveMockup(t)
	_, err := Dial(context.Background(), Config{Endpoint: m.srv.URL, Username: "admin", Password: "secret"},
		Options{Timeout: time.Second, Retries: -1})
	if err == nil {
		t.Fatal("verified TLS accepted httptest's self-signed certificate")
	}
	_, err = Dial(context.Background(), Config{Endpoint: m.srv.URL, Username: "admin", Password: "wrong"},
		Options{Timeout: 10 * time.Second, Retries: -1, InsecureTLS: true})
	if err == nil || !strings.Contains(err.Error(), "credentials rejected") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: err = %v, want credentials rejected (without the password)", err)
	}
}

func TestUnitAndClass(t *testing.T) {
	tests := []struct {
		rt, units, ctx, name string
		unit                 bmc.Unit
		class                bmc.Class
	}{
		{"Temperature", "Cel", "CPU", "CPU Temp", bmc.UnitCelsius, bmc.ClassTemperature},
		{"Voltage", "V", "PowerSupply", "PS1 Input", bmc.UnitVolts, bmc.ClassVoltage},
		{"Current", "A", "", "x", bmc.UnitAmperes, bmc.ClassCurrent},
		{"Power", "W", "", "x", bmc.UnitWatts, bmc.ClassPower},
		{"Rotational", "RPM", "Fan", "Fan 1", bmc.UnitRPM, bmc.ClassFan},
		{"Rotational", "{rev}/min", "Pump", "Loop A", bmc.UnitRPM, bmc.ClassPump},
		{"Percent", "%", "CPU", "CPU Fan Speed", bmc.UnitPercent, bmc.ClassFan},
		{"Percent", "%", "Chassis", "Coolant Pump Duty", bmc.UnitPercent, bmc.ClassPump},
		{"Percent", "%", "Chassis", "Humidity", bmc.UnitPercent, bmc.ClassOther},
		{"", "W", "", "Total", bmc.UnitWatts, bmc.ClassPower},
		{"", "RPM", "", "pump2", bmc.UnitRPM, bmc.ClassPump},
		{"PressurekPa", "kPa", "LiquidInlet", "Supply", bmc.UnitOther, bmc.ClassOther},
		{"", "", "", "x", bmc.UnitNone, bmc.ClassOther},
	}
	for _, tt := range tests {
		if u := UnitOf(tt.units); u != tt.unit {
			t.Errorf("UnitOf(%q) = %q, want %q", tt.units, u, tt.unit)
		}
		if c := ClassOf(tt.rt, tt.units, tt.ctx, tt.name); c != tt.class {
			t.Errorf("ClassOf(%q, %q, %q, %q) = %s, want %s", tt.rt, tt.units, tt.ctx, tt.name, c, tt.class)
		}
	}
}

// sensorDir maps a Sensor Id to its mockup directory (they differ for
// CPU1Temp, whose Id is CPUTemp1).
func sensorDir(t *testing.T, id string) string {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join("testdata", "mockup", "Chassis", "1U", "Sensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("testdata", "mockup", "Chassis", "1U", "Sensors", d.Name(), "index.json"))
		if err != nil {
			continue
		}
		var doc struct{ Id string }
		if json.Unmarshal(b, &doc) == nil && doc.Id == id {
			return d.Name()
		}
	}
	t.Fatalf("no mockup sensor with Id %q", id)
	return ""
}

// The DMTF cooling-unit mockup: CDU sensors (flow, pressure, heat) and
// leak detectors.
func TestCoolingUnitLeakDetectors(t *testing.T) {
	m := serveRoot(t, filepath.Join("testdata", "cdu"))
	c := dial(t, m, Options{Timeout: 10 * time.Second})
	ctx := context.Background()
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leaks []bmc.SensorDef
	for _, d := range defs {
		if d.Class == bmc.ClassLeak {
			leaks = append(leaks, d)
		}
	}
	if len(defs) != 18+2 || len(leaks) != 2 {
		t.Fatalf("%d sensors, %d leak detectors; want 18 sensors and 2 leak detectors", len(defs), len(leaks))
	}
	rs, err := c.Read(ctx, leaks)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if !r.Available || r.State != 0x0001 {
			t.Errorf("%s: %+v, want no leak (0x0001)", r.ID, r)
		}
	}
	if err := m.set("/redfish/v1/Chassis/CDU/LeakDetectors/Moisture", func(v map[string]any) { v["DetectorState"] = "Critical" }); err != nil {
		t.Fatal(err)
	}
	rs, err = c.Read(ctx, leaks)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		want := uint16(0x0001)
		if r.ID == "LeakDetector/Moisture" {
			want = 0x0002
		}
		if !r.Available || r.State != want {
			t.Errorf("%s: %+v, want state 0x%04x", r.ID, r, want)
		}
	}
	// Every CDU sensor reads.
	all, err := c.Read(ctx, defs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if !r.Available {
			t.Errorf("%s unavailable: %s", r.ID, r.Err)
		}
	}
}

func TestPSUAndLeakState(t *testing.T) {
	tests := []struct {
		state, health, line string
		want                uint16
	}{
		{"Enabled", "OK", "Normal", 0x0001},
		{"Enabled", "Critical", "Normal", 0x0003},
		{"Enabled", "Warning", "LossOfInput", 0x000d},
		{"Enabled", "OK", "OutOfRange", 0x0021},
		{"Absent", "", "", 0x0000},
	}
	for _, tt := range tests {
		if got := PSUState(tt.state, tt.health, tt.line); got != tt.want {
			t.Errorf("PSUState(%q, %q, %q) = 0x%04x, want 0x%04x", tt.state, tt.health, tt.line, got, tt.want)
		}
	}
	for in, want := range map[string]uint16{"OK": 1, "Warning": 2, "Critical": 2, "": 0, "Unknown": 0} {
		if got := LeakState(in); got != want {
			t.Errorf("LeakState(%q) = %d, want %d", in, got, want)
		}
	}
}
