package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish/redfishtest"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/wire"
	"podos.dev/podos/internal/testtool"
)

// The board polls its BMC every 500 ms in these tests (the emulated
// board's config says 1 s): faster tests, same code path.
const pollInterval = 500 * time.Millisecond

const (
	adminUser = "admin"
	adminPW   = "e2e-admin-pass"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d != "/" {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		d = filepath.Dir(d)
	}
	t.Fatal("no go.mod above the test directory")
	return ""
}

// emulatedConfig loads the emulated RuggedPOD blade's config. A loaded CI
// machine can stall ipmi_sim past the board's 1 s request timeout; these
// tests are not about timeouts, so they allow 3 s.
func emulatedConfig(t testing.TB) *boardconfig.Config {
	t.Helper()
	cfg, err := boardconfig.Load(filepath.Join(repoRoot(t), "board-configs", "emulated-ruggedpod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BMC.Timeout.Duration = 3 * time.Second
	return cfg
}

// testLogger is the daemon's logger: stderr with BOARDD_TEST_LOG set;
// otherwise a buffer that is printed only if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("BOARDD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	buf := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("boardd log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// board is a running ipmi_sim and a boardd in-process on free ports.
type board struct {
	cfg    *boardconfig.Config
	sim    *ipmisim.Sim
	d      *daemon.Daemon
	url    string       // https://127.0.0.1:port
	client *http.Client // verifies boardd's own certificate
	pwFile string       // the admin password file
	state  string
}

type boardOptions struct {
	// workloads plugs in the workloads (real containerd from out/bin).
	workloads bool
	// config edits the emulated board's config before the start.
	config func(*boardconfig.Config)
}

// startBoard starts ipmi_sim from the emulated board's config and boardd
// against it over IPMI LAN, and waits until every sensor has been read
// and the board is healthy.
func startBoard(t *testing.T, o boardOptions) *board {
	t.Helper()
	testtool.Require(t, "ipmi_sim")
	testtool.Require(t, "sdrcomp")
	cfg := emulatedConfig(t)
	if o.config != nil {
		o.config(cfg)
	}
	var plugs []daemon.Plug
	if o.workloads {
		plugs = append(plugs, workloadsPlug(t))
	}

	sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer scancel()
	sim, err := ipmisim.Start(sctx, t, cfg, ipmisim.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("ipmi_sim: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(sim.LogPath()); err == nil {
				t.Logf("ipmi_sim log (last 4 KiB):\n%s", log[max(0, len(log)-4096):])
			}
		}
	})
	b := &board{cfg: cfg, sim: sim, state: t.TempDir(), pwFile: filepath.Join(t.TempDir(), "admin-pw")}
	if err := os.WriteFile(b.pwFile, []byte(adminPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{
		BMCURL: sim.URL(), Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
		StateDir: b.state, Config: cfg, AdminPasswordFile: b.pwFile, Interval: pollInterval,
		Logger: testLogger(t), Plugs: plugs, Version: "e2e",
	})
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	b.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		if o.workloads {
			// Remove the workloads (ending their shims) before stopping.
			for _, w := range cfg.Workloads {
				b.api(t, "DELETE", "/podos/v1/workloads/"+w.Name, adminUser, adminPW)
			}
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon.Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("daemon did not stop within 60s")
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon ended: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("daemon not ready")
	}
	b.url = "https://" + d.Addr()
	b.client, err = redfishtest.TrustingClient(filepath.Join(b.state, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b.waitSnap(t, "every sensor read and the board healthy", func(s *snapshot.Snapshot) bool {
		return s.BMC.Up && len(s.Sensors) == len(cfg.Sensors) && s.Health.State == health.OK
	})
	return b
}

// workloadsPlug plugs the workloads with the static containerd of
// `make containerd-bins`; it needs root (cgroups, mounts).
func workloadsPlug(t *testing.T) daemon.Plug {
	t.Helper()
	testtool.RequireRoot(t)
	bins := filepath.Join(repoRoot(t), "out", "bin")
	for _, f := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := os.Stat(filepath.Join(bins, f)); err != nil {
			testtool.Missing(t, filepath.Join(bins, f)+" missing (make containerd-bins)")
		}
	}
	demoImage(t)
	// containerd's socket path must fit 100 bytes: not under t.TempDir().
	dir, err := os.MkdirTemp("/tmp", "pde")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
					exec.Command("umount", "-l", f[4]).Run()
				}
			}
		}
		os.RemoveAll(dir)
	})
	out := io.Discard
	if os.Getenv("BOARDD_TEST_LOG") != "" {
		out = os.Stderr
	}
	return wire.Plug(wire.Options{BinDir: bins, ContainerdDir: dir, ContainerdOutput: out})
}

// demoImage is the absolute path of `make demo-image`'s archive.
func demoImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "out", "images", "demo.tar")
	if _, err := os.Stat(p); err != nil {
		testtool.Missing(t, p+" missing (make demo-image)")
	}
	return p
}

// demoWorkloads points the config's demo (sheddable) and sentinel
// (critical) workloads at the demo image, beating every 200 ms.
func demoWorkloads(t *testing.T) func(*boardconfig.Config) {
	img := workloads.ArchivePrefix + demoImage(t)
	return func(cfg *boardconfig.Config) {
		for i := range cfg.Workloads {
			cfg.Workloads[i].Image = img
			cfg.Workloads[i].Args = []string{"-every=200ms"}
		}
	}
}

// waitSnap waits (generously) for a snapshot satisfying ok.
func (b *board) waitSnap(t *testing.T, what string, ok func(*snapshot.Snapshot) bool) *snapshot.Snapshot {
	t.Helper()
	st := b.d.Store()
	deadline := time.After(60 * time.Second)
	for {
		ch := st.Changed()
		if s := st.Load(); ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			s := st.Load()
			t.Fatalf("timed out waiting for %s; last snapshot: seq %d bmc %+v health %+v", what, s.Seq, s.BMC, s.Health)
			return nil
		}
	}
}

// sensor returns the named sensor of the current snapshot.
func (b *board) sensor(t *testing.T, name string) snapshot.Sensor {
	t.Helper()
	for _, x := range b.d.Store().Load().Sensors {
		if x.Def.Name == name {
			return x
		}
	}
	t.Fatalf("no sensor %s", name)
	return snapshot.Sensor{}
}

func (b *board) waitSensor(t *testing.T, name string, want health.State) snapshot.Sensor {
	t.Helper()
	b.waitSnap(t, name+" "+want.String(), func(s *snapshot.Snapshot) bool {
		for _, x := range s.Sensors {
			if x.Def.Name == name {
				return x.State == want
			}
		}
		return false
	})
	return b.sensor(t, name)
}

// simSensor is the named sensor's ipmi_sim description.
func (b *board) simSensor(t *testing.T, name string) *boardconfig.SimSensor {
	t.Helper()
	for i := range b.cfg.Sensors {
		if b.cfg.Sensors[i].Name == name && b.cfg.Sensors[i].Sim != nil {
			return b.cfg.Sensors[i].Sim
		}
	}
	t.Fatalf("no simulated sensor %s", name)
	return nil
}

// setValue sets a threshold sensor's reading at the BMC (in its unit).
func (b *board) setValue(t *testing.T, name string, v float64) {
	t.Helper()
	raw, err := b.simSensor(t, name).SimRaw(v)
	if err != nil {
		t.Fatalf("%s = %v: %v", name, v, err)
	}
	if err := b.sim.Set(context.Background(), name, int(raw)); err != nil {
		t.Fatal(err)
	}
}

func (b *board) setDiscrete(t *testing.T, name string, mask uint16) {
	t.Helper()
	if err := b.sim.SetDiscrete(context.Background(), name, mask); err != nil {
		t.Fatal(err)
	}
}

// api does one HTTPS request to boardd (verifying its certificate) and
// returns the status and body.
func (b *board) api(t *testing.T, method, path, user, pw string) (int, []byte) {
	t.Helper()
	return b.apiBody(t, method, path, user, pw, nil)
}

func (b *board) apiBody(t *testing.T, method, path, user, pw string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(j))
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Logf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// getJSON GETs a resource as admin and decodes it.
func (b *board) getJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	code, body := b.api(t, "GET", path, adminUser, adminPW)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

// workload reads one workload through the /podos/v1 API.
func (b *board) workload(t *testing.T, name string) workloads.Info {
	t.Helper()
	var i workloads.Info
	if code, body := b.api(t, "GET", "/podos/v1/workloads/"+name, adminUser, adminPW); code == http.StatusOK {
		if err := json.Unmarshal(body, &i); err != nil {
			t.Fatalf("workload %s: %v", name, err)
		}
	}
	return i
}

// waitRunning waits until every configured workload runs.
func (b *board) waitRunning(t *testing.T) {
	t.Helper()
	waitFor(t, 120*time.Second, "the config's workloads running", func() bool {
		for _, w := range b.cfg.Workloads {
			if b.workload(t, w.Name).State != workloads.StateRunning {
				return false
			}
		}
		return true
	})
}

// events lists the durable event log after seq.
func (b *board) events(t *testing.T, after uint64) []events.Event {
	t.Helper()
	evs, err := b.d.EventLog().List(after, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (b *board) lastSeq(t *testing.T) uint64 {
	t.Helper()
	var seq uint64
	for _, ev := range b.events(t, 0) {
		seq = max(seq, ev.Seq)
	}
	return seq
}

// waitEvent polls the durable event log for an event after seq.
func (b *board) waitEvent(t *testing.T, after uint64, what string, ok func(events.Event) bool) events.Event {
	t.Helper()
	var found events.Event
	waitFor(t, 60*time.Second, what, func() bool {
		for _, ev := range b.events(t, after) {
			if ok(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sensorURI is a sensor's Redfish resource.
func (b *board) sensorURI(t *testing.T, name string) string {
	return fmt.Sprintf("/redfish/v1/Chassis/%s/Sensors/%s", b.cfg.Board.ID, b.sensor(t, name).Def.ID)
}
