package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// buildBoardd builds the boardd binary for the CLI-contract tests.
func buildBoardd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "boardd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./boardd/cmd/boardd")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestCLIContract(t *testing.T) {
	bin := buildBoardd(t)
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("apiVersion: podos.dev/v1\nboard: {id: x, slot: 1}\npoll: {interval: fast}\n"), 0o600)
	state := filepath.Join(dir, "state")
	lan := "ipmi+lan://admin:password@127.0.0.1:1"

	for _, tc := range []struct {
		name string
		args []string
		want string // in the one line
	}{
		{"unknown flag", []string{"--frobnicate"}, "frobnicate"},
		{"no state dir", []string{"--bmc", lan}, "--state-dir"},
		{"no bmc", []string{"--state-dir", state}, "--bmc"},
		{"bad bmc url", []string{"--state-dir", state, "--bmc", "http://bmc"}, "not supported"},
		{"bad log level", []string{"--state-dir", state, "--bmc", lan, "--log-level", "loud"}, "--log-level"},
		{"missing config", []string{"--state-dir", state, "--bmc", lan, "--config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"bad config", []string{"--state-dir", state, "--bmc", lan, "--config", badYAML}, "bad.yaml"},
		{"stray argument", []string{"--state-dir", state, "--bmc", lan, "extra"}, "extra"},
		{"bad watchdog timeout", []string{"--state-dir", state, "--bmc", lan, "--watchdog", "/dev/null", "--watchdog-timeout", "100ms"}, "--watchdog-timeout"},
		{"password not echoed", []string{"--state-dir", state, "--bmc", "ipmi+lan://admin:hunter2@:99999"}, "bmc url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v (want status 2); stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "boardd: ") || !strings.Contains(lines[0], tc.want) || strings.Contains(lines[0], "hunter2") {
				t.Errorf("stderr %q: want one line naming %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestBinaryServesAndStopsOnSIGTERM runs the built daemon against
// ipmi_sim: JSON logs, metrics served, clean exit on SIGTERM.
func TestBinaryServesAndStopsOnSIGTERM(t *testing.T) {
	bin := buildBoardd(t)
	cfg := emulatedConfig(t)
	sim := startSim(t, cfg)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--bmc", sim.URL(), "--state-dir", filepath.Join(dir, "state"),
		"--config", filepath.Join(repoRoot(t), "board-configs", "emulated-ruggedpod.yaml"),
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Errorf("log line is not JSON: %q", sc.Text())
				continue
			}
			lines <- m
		}
		close(lines)
	}()
	var metricsURL string
	deadline := time.After(60 * time.Second)
	for metricsURL == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatal("boardd exited before serving")
			}
			if m["msg"] == "boardd serving" {
				metricsURL, _ = m["metrics"].(string)
			}
		case <-deadline:
			t.Fatal("no \"boardd serving\" log line")
		}
	}
	var body []byte
	for i := 0; i < 120; i++ {
		_, body = httpGet(t, metricsURL)
		if bytes.Contains(body, []byte(`boardd_voltage_volts{id="20-0-01",name="PSU_VIN"} 24`)) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !bytes.Contains(body, []byte(`boardd_voltage_volts{id="20-0-01",name="PSU_VIN"} 24`)) {
		t.Fatalf("metrics never showed PSU_VIN:\n%s", grep(body, "boardd_"))
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("boardd after SIGTERM: %v (want exit 0)", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("boardd did not exit within 60s of SIGTERM")
	}
}

// TestEventLogSurvivesRestart: events persist across a daemon restart
// and sequence numbers continue.
func TestEventLogSurvivesRestart(t *testing.T) {
	b := startBoard(t)
	state := b.r.d.StateDir()
	seq := b.setDiscrete(t, "FUSE4", 0x0002)
	b.expect(t, "FUSE4", health.Critical, seq)
	nextSnaps(t, b.r.d.Store(), 1) // the poll's events are logged before the next poll
	before, _ := b.r.d.EventLog().List(0, 0)
	if len(sensorEvent(before, "FUSE4")) != 1 {
		t.Fatalf("events before restart: %+v", before)
	}
	b.r.stop(t)

	r2 := startDaemon(t, Options{BMCURL: b.sim.URL(), Config: b.cfg, Interval: testInterval, StateDir: state})
	waitSnap(t, r2.d.Store(), 60*time.Second, "FUSE4 critical after restart", func(s *snapshot.Snapshot) bool {
		x, _ := byName(s, "FUSE4")
		return x.State == health.Critical
	})
	nextSnaps(t, r2.d.Store(), 1)
	after, _ := r2.d.EventLog().List(0, 0)
	if len(after) <= len(before) {
		t.Fatalf("%d events after restart, %d before", len(after), len(before))
	}
	for i := range before {
		if after[i].Seq != before[i].Seq || after[i].Message != before[i].Message {
			t.Fatalf("event %d changed across restart: %+v vs %+v", i, before[i], after[i])
		}
	}
	for i := 1; i < len(after); i++ {
		if after[i].Seq != after[i-1].Seq+1 {
			t.Fatalf("sequence gap: %d then %d", after[i-1].Seq, after[i].Seq)
		}
	}
	// The restarted daemon judged the blown fuse afresh and said so.
	var restarted []events.Event
	for _, ev := range after[len(before):] {
		if ev.Kind == events.KindSensor && ev.Data["name"] == "FUSE4" {
			restarted = append(restarted, ev)
		}
	}
	if len(restarted) != 1 || restarted[0].To != health.Critical {
		t.Errorf("FUSE4 events after restart: %+v", restarted)
	}
}
