package boardconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDuration(t *testing.T) {
	var v struct {
		D Duration `yaml:"d" json:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1m30s\n"), &v); err != nil || v.D.Duration != 90*time.Second {
		t.Fatalf("yaml: %v %v", v.D, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 1m30s\n" {
		t.Fatalf("yaml marshal: %q %v", out, err)
	}
	for _, bad := range []string{"d: 5\n", "d: soon\n", "d: [1s]\n"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil || !strings.Contains(err.Error(), "line 1: must be a duration") {
			t.Errorf("yaml %q: %v", bad, err)
		}
	}
	j, err := json.Marshal(struct{ D Duration }{D(250 * time.Millisecond)})
	if err != nil || string(j) != `{"D":"250ms"}` {
		t.Fatalf("json marshal: %s %v", j, err)
	}
	if err := json.Unmarshal([]byte(`{"d":"2s"}`), &v); err != nil || v.D.Duration != 2*time.Second {
		t.Fatalf("json: %v %v", v.D, err)
	}
	for _, bad := range []string{`{"d":5}`, `{"d":"soon"}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("json %s accepted", bad)
		}
	}
}

// A Config survives JSON (the API's view of it) unchanged.
func TestJSONRoundTrip(t *testing.T) {
	c, err := Load("emulated-ruggedpod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	j2, _ := json.Marshal(&back)
	if !bytes.Equal(j, j2) {
		t.Errorf("JSON round trip differs:\n%s\n%s", j, j2)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load("."); err == nil {
		t.Error("a directory loads")
	}
	big := append([]byte(minimal+"#"), bytes.Repeat([]byte("x"), MaxSize)...)
	if _, err := Parse("big.yaml", big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	// Validate on a Go-built config: no file, no line.
	c := Default()
	c.Board.ID = "Bad"
	c.Poll.Debounce = -1
	err := c.Validate()
	want := `board.id: "Bad" must be lower-case letters, digits and '-' (a DNS label, at most 63 characters)` + "\n" +
		`poll.debounce: must be between 1 and 100 (0 means the default), got -1`
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant\n%s", err, want)
	}
	if (&FieldError{Msg: "m"}).Error() != "m" || (&FieldError{File: "f", Msg: "m"}).Error() != "f: m" {
		t.Error("FieldError rendering")
	}
}

// Aliases and merges cannot blow up the decoder (billion laughs), and a
// flood of problems is cut short.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "l0: &l0 {interval: 1s, debounce: 1}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "l%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	b.WriteString("poll: {<<: *l9}\n")
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many aliases expanded") {
		t.Errorf("merge bomb: %v", err)
	}
	flood := minimal + "boot: {modules: [" + strings.TrimSuffix(strings.Repeat("a/b, ", 500), ", ") + "]}\n"
	_, err = Parse("flood.yaml", []byte(flood))
	if err == nil {
		t.Fatal("flood accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || !strings.Contains(lines[maxErrors], "and 450 more problems") {
		t.Errorf("flood: %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	deep := minimal + "sensors: " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "\n"
	if _, err := Parse("deep.yaml", []byte(deep)); err == nil {
		t.Error("deep nesting accepted")
	}
}

// fuzzSeeds are the shipped configs and broken variants of them.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, f := range shipped(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		seeds = append(seeds, data,
			[]byte(s[:len(s)/2]),
			[]byte(strings.Replace(s, "role: fuse", "role: fuze", 1)),
			[]byte(strings.Replace(s, "interval: 1s", "interval: 1", 1)),
			[]byte(strings.Replace(s, "  ", "\t", 3)),
			[]byte(strings.Replace(s, "m: 20", "m: 2000", 1)),
			[]byte(strings.Replace(s, "state: Critical", "state: Critical\n      sensor: X", 1)),
		)
	}
	seeds = append(seeds, []byte(minimal), []byte(""), []byte("- a"), []byte(minimal+"poll: {<<: [1]}\n"),
		[]byte(minimal+"sensors: [{name: X, role: temp, thresholds: {upper_critical: 1e308, hysteresis: 0.1}}]\n"))
	return seeds
}

// FuzzParse: Parse never panics, and what it accepts is valid and survives
// a YAML round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		c2, err := Parse("again.yaml", out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		j1, _ := json.Marshal(c)
		j2, _ := json.Marshal(c2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("round trip differs:\n%s\n%s", j1, j2)
		}
	})
}

func TestSimRaw(t *testing.T) {
	c, err := Load("emulated-ruggedpod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every raw value converts and converts back.
	for i := range c.Sensors {
		s := c.Sensors[i].Sim
		if !s.IsThreshold() {
			continue
		}
		for raw := range 256 {
			v := s.SimValue(uint8(raw))
			back, err := s.SimRaw(v)
			if err != nil || back != uint8(raw) {
				t.Fatalf("%s: raw %d -> %g -> %d, %v", c.Sensors[i].Name, raw, v, back, err)
			}
		}
	}
	inlet := c.Sensor("INLET_TEMP").Sim
	if r, err := inlet.SimRaw(-20); err != nil || r != 0xdc {
		t.Errorf("INLET_TEMP -20: %#x %v", r, err)
	}
	if r, err := inlet.SimRaw(20.2); err != nil || r != 44 { // nearest count
		t.Errorf("INLET_TEMP 20.2: %d %v", r, err)
	}
	if _, err := inlet.SimRaw(100); err == nil || err.Error() != "100 is outside the sensor's range -66..61.5" {
		t.Errorf("INLET_TEMP 100: %v", err)
	}
	if _, err := c.Sensor("PSU_VIN").Sim.SimRaw(-1); err == nil {
		t.Error("PSU_VIN -1 V accepted")
	}
	if _, err := (&SimSensor{}).SimRaw(1); err == nil {
		t.Error("M=0 accepted")
	}
	if h := c.Sensor("OIL_TEMP").Sim.SimHysteresis(); h != 2 {
		t.Errorf("OIL_TEMP hysteresis %g", h)
	}
}
