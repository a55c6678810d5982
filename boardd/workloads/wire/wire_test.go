package wire_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc/bmctest"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/api"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/wire"
	"podos.dev/podos/internal/testtool"
)

func repoRoot() string {
	d, _ := os.Getwd()
	for d != "/" {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		d = filepath.Dir(d)
	}
	return ""
}

func TestDaemonRunsAndProtectsWorkloads(t *testing.T) {
	testtool.RequireRoot(t)
	bins := filepath.Join(repoRoot(), "out", "bin")
	image := filepath.Join(repoRoot(), "out", "images", "demo.tar")
	for _, f := range []string{filepath.Join(bins, "containerd"), filepath.Join(bins, "runc"), image} {
		if _, err := os.Stat(f); err != nil {
			testtool.Missing(t, f+" missing (make containerd-bins demo-image)")
		}
	}
	ctrdDir, err := os.MkdirTemp("/tmp", "pdw")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret-pass\n"), 0o600)

	cfg := boardconfig.Default()
	cfg.Workloads = []boardconfig.Workload{
		{Name: "demo", Image: workloads.ArchivePrefix + image, Args: []string{"-every=200ms"}, Priority: "sheddable"},
		{Name: "sentinel", Image: workloads.ArchivePrefix + image, Priority: "critical"},
	}
	cfg.Policy = boardconfig.Policy{Hold: boardconfig.Duration{Duration: time.Second}, Rules: []boardconfig.Rule{
		{Name: "power-critical", When: boardconfig.When{Subsystem: "Power", State: "Critical"}, Action: "shed"},
	}}
	d, err := daemon.New(daemon.Options{
		BMCURL: "ipmi+lan://admin:pw@127.0.0.1:1", Dial: bmctest.Dial, // the BMC path is tested against ipmi_sim elsewhere
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", StateDir: state, Config: cfg, AdminPasswordFile: pw,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Plugs:  []daemon.Plug{wire.Plug(wire.Options{BinDir: bins, ContainerdDir: ctrdDir, ContainerdOutput: io.Discard})},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		// Remove the workloads (ending their shims) before stopping.
		for _, n := range []string{"demo", "sentinel"} {
			req(t, d, "DELETE", "/podos/v1/workloads/"+n, "admin")
		}
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("daemon did not stop")
		}
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], ctrdDir) {
					exec.Command("umount", "-l", f[4]).Run()
				}
			}
		}
		os.RemoveAll(ctrdDir)
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon not ready")
	}
	get := func(name string) workloads.Info {
		var i workloads.Info
		code, b := req(t, d, "GET", "/podos/v1/workloads/"+name, "admin")
		if code == 200 {
			json.Unmarshal(b, &i)
		}
		return i
	}
	waitFor(t, "config workloads running", func() bool {
		return get("demo").State == workloads.StateRunning && get("sentinel").State == workloads.StateRunning
	})
	if code, _ := req(t, d, "GET", "/podos/v1/workloads", ""); code != 401 {
		t.Errorf("unauthenticated list: %d", code)
	}
	// The health input: a Power Critical subsystem event on the bus.
	d.Bus().Publish(workloads.SubsystemEvent(health.Power, health.OK, health.Critical))
	waitFor(t, "demo frozen", func() bool { return get("demo").State == workloads.StatePaused })
	if s := get("sentinel"); s.State != workloads.StateRunning || s.Protection != "" {
		t.Errorf("critical workload touched: %+v", s)
	}
	// The action is in the durable event log (hence Redfish SSE and SEL).
	var found bool
	evs, _ := d.EventLog().List(0, 1000)
	for _, e := range evs {
		if e.Kind == events.KindWorkload && e.Source == "demo" && e.Data["action"] == "protect-frozen" && strings.Contains(e.Message, "Power is Critical") && e.Seq > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no persisted freeze event among %d events", len(evs))
	}
	d.Bus().Publish(workloads.SubsystemEvent(health.Power, health.Critical, health.OK))
	waitFor(t, "demo resumed after the hold", func() bool { return get("demo").State == workloads.StateRunning })
}

func req(t *testing.T, d *daemon.Daemon, method, path, user string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	r, _ := http.NewRequest(method, "https://"+d.Addr()+path, nil)
	if user != "" {
		r.SetBasicAuth(user, "s3cret-pass")
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Logf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		var e api.ErrorBody
		json.Unmarshal(b, &e)
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, e.Error.Message)
	}
	return resp.StatusCode, b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
