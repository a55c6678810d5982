package daemon

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/internal/testtool"
)

// sample finds one sample's value in a text exposition.
func sample(t *testing.T, body []byte, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		t.Errorf("no sample %s", series)
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Errorf("%s: %v", series, err)
	}
	return v
}

func TestMetricsFromLiveDaemon(t *testing.T) {
	promtool := testtool.Require(t, "promtool")
	b := startBoard(t)
	seq := b.setDiscrete(t, "FUSE1", 0x0002)
	b.expect(t, "FUSE1", health.Critical, seq)
	waitSnap(t, b.r.d.Store(), 30*time.Second, "collect duration", func(s *snapshot.Snapshot) bool { return s.CollectDuration > 0 })

	code, body := httpGet(t, "http://"+b.r.d.MetricsAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for series, want := range map[string]float64{
		`boardd_voltage_volts{id="20-0-01",name="PSU_VIN"}`:                  24,
		`boardd_current_amperes{id="20-0-02",name="PSU_IIN"}`:                10,
		`boardd_power_watts{id="20-0-03",name="PSU_PIN"}`:                    240,
		`boardd_temperature_celsius{id="20-0-10",name="OIL_TEMP"}`:           40,
		`boardd_temperature_celsius{id="20-0-11",name="INLET_TEMP"}`:         20,
		`boardd_fan_speed_rpm{id="20-0-1a",name="FAN1"}`:                     4000,
		`boardd_pump_speed_rpm{id="20-0-18",name="PUMP1"}`:                   3000,
		`boardd_sensor_state{id="20-0-01",name="PSU_VIN",subsystem="Power"}`: 0,
		`boardd_sensor_state{id="20-0-0a",name="FUSE1",subsystem="Fuses"}`:   2,
		`boardd_subsystem_state{subsystem="Fuses"}`:                          2,
		`boardd_health_state{board="blade1"}`:                                2,
		`boardd_bmc_up{transport="lan"}`:                                     1,
	} {
		if got := sample(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if d := sample(t, body, "boardd_collect_duration_seconds"); d <= 0 || d > 10 {
		t.Errorf("boardd_collect_duration_seconds = %v", d)
	}
	for _, m := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !bytes.Contains(body, []byte("\n"+m+" ")) {
			t.Errorf("no %s", m)
		}
	}
	// Discrete sensors have a state but no value series.
	if bytes.Contains(body, []byte(`name="FUSE1"}`)) && regexp.MustCompile(`boardd_(voltage|current|power|temperature)\w*\{id="20-0-0a"`).Match(body) {
		t.Error("a discrete sensor exported as a value")
	}
}
