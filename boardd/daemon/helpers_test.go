package daemon

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/snapshot"
)

// repoRoot finds the module root from this file.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func emulatedConfig(t testing.TB) *boardconfig.Config {
	t.Helper()
	cfg, err := boardconfig.Load(filepath.Join(repoRoot(t), "board-configs", "emulated-ruggedpod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startSim(t testing.TB, cfg *boardconfig.Config) *ipmisim.Sim {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sim, err := ipmisim.Start(ctx, t, cfg, ipmisim.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("ipmi_sim: %v", err)
	}
	return sim
}

type running struct {
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
	sub    *events.Subscription
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("BOARDD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startDaemon runs boardd in-process against the sim, on free ports.
func startDaemon(t testing.TB, o Options) *running {
	t.Helper()
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	o.Listen, o.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	pw := filepath.Join(o.StateDir, "..", "admin-pw")
	if err := os.WriteFile(pw, []byte("s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.AdminPasswordFile = pw
	d, err := New(o)
	if err != nil {
		t.Fatalf("daemon.New: %v", err)
	}
	r := &running{d: d, done: make(chan error, 1), sub: d.Bus().Subscribe(4096)}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-r.done:
		t.Fatalf("daemon ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("daemon.Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("daemon did not stop within 30s")
	}
}

// waitSnap waits (generously) for a snapshot satisfying ok.
func waitSnap(t testing.TB, st *snapshot.Store, timeout time.Duration, what string, ok func(*snapshot.Snapshot) bool) *snapshot.Snapshot {
	t.Helper()
	deadline := time.After(timeout)
	for {
		ch := st.Changed()
		if s := st.Load(); ok(s) {
			return s
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; last snapshot: seq %d bmc %+v health %+v", timeout, what, st.Load().Seq, st.Load().BMC, st.Load().Health)
			return nil
		}
	}
}

// nextSnaps waits for n more snapshots and returns the last.
func nextSnaps(t testing.TB, st *snapshot.Store, n int) *snapshot.Snapshot {
	t.Helper()
	seq := st.Load().Seq
	return waitSnap(t, st, time.Duration(n)*15*time.Second, "more snapshots", func(s *snapshot.Snapshot) bool { return s.Seq >= seq+uint64(n) })
}

func byName(s *snapshot.Snapshot, name string) (snapshot.Sensor, bool) {
	for _, x := range s.Sensors {
		if x.Def.Name == name {
			return x, true
		}
	}
	return snapshot.Sensor{}, false
}

// drain returns the events received so far. It first waits for one more
// snapshot: the collector publishes a poll's events before its next poll
// swaps a snapshot in, so every event of the polls seen so far is there.
func (r *running) drain(t testing.TB) []events.Event {
	t.Helper()
	nextSnaps(t, r.d.Store(), 1)
	var out []events.Event
	for {
		select {
		case ev := <-r.sub.C:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
