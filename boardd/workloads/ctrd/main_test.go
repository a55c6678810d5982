package ctrd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/ctrd"
	"podos.dev/podos/boardd/workloads/ociarchive"
	"podos.dev/podos/internal/testtool"
)

// One containerd for the whole package (the brief: keep containerd tests
// lean), started by TestMain under a short /tmp dir (the socket path
// limit), with the static binaries of `make containerd-bins`.
var env struct {
	skip   string // why containerd tests cannot run
	dir    string
	daemon *ctrd.Daemon
	rt     *ctrd.Runtime
	image  string // oci-archive:/path of the demo image
	cancel context.CancelFunc
	done   chan struct{}
}

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

// binDir finds containerd, its shim and runc: $PODOS_CONTAINERD_BIN, the
// repo's out/bin, or PATH.
func binDir() (string, error) {
	cands := []string{os.Getenv("PODOS_CONTAINERD_BIN"), filepath.Join(repoRoot(), "out", "bin")}
	for _, d := range cands {
		if d == "" {
			continue
		}
		ok := true
		for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			return "", fmt.Errorf("%s not in out/bin nor PATH (make containerd-bins builds it)", b)
		}
	}
	return "", nil
}

// demoImage returns the demo archive: out/images/demo.tar, or one built
// here from the heartbeat sources.
func demoImage(tmp string) (string, error) {
	p := filepath.Join(repoRoot(), "out", "images", "demo.tar")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	bin := filepath.Join(tmp, "heartbeat")
	cmd := exec.Command("go", "build", "-o", bin, "./boardd/workloads/demo/heartbeat")
	cmd.Dir = repoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build heartbeat: %v: %s", err, out)
	}
	p = filepath.Join(tmp, "demo.tar")
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return p, ociarchive.Write(f, ociarchive.Image{Name: "podos.dev/demo:latest", Binary: bin, Path: "/heartbeat", Created: time.Unix(0, 0)})
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("PODOS_TEST_FIRST_BOARDD"); dir != "" {
		firstBoardd(dir)
	}
	code := func() int {
		if os.Geteuid() != 0 {
			env.skip = "containerd tests need root"
			return m.Run()
		}
		bins, err := binDir()
		if err != nil {
			env.skip = err.Error()
			return m.Run()
		}
		dir, err := os.MkdirTemp("/tmp", "pdc")
		if err != nil {
			env.skip = err.Error()
			return m.Run()
		}
		env.dir = dir
		defer cleanup(dir)
		img, err := demoImage(dir)
		if err != nil {
			env.skip = err.Error()
			return m.Run()
		}
		env.image = workloads.ArchivePrefix + img
		logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
		d, err := ctrd.NewDaemon(ctrd.DaemonConfig{BinDir: bins, Dir: filepath.Join(dir, "c"), Output: logf, LogLevel: "warn"})
		if err != nil {
			env.skip = err.Error()
			return m.Run()
		}
		ctx, cancel := context.WithCancel(context.Background())
		env.cancel, env.done, env.daemon = cancel, make(chan struct{}), d
		go func() { defer close(env.done); _ = d.Run(ctx) }()
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		if err := d.Ready(rctx); err != nil {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			env.skip = fmt.Sprintf("containerd did not start: %v\n%s", err, b)
			return m.Run()
		}
		rt, err := ctrd.NewRuntime(ctrd.RuntimeConfig{Address: d.Address(), RuncPath: d.RuncPath(), FIFODir: filepath.Join(dir, "fifo")})
		if err != nil {
			env.skip = err.Error()
			return m.Run()
		}
		env.rt = rt
		code := m.Run()
		if code != 0 {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			fmt.Fprintf(os.Stderr, "containerd log:\n%s\n", b)
		}
		return code
	}()
	os.Exit(code)
}

// cleanup removes every container (ending the shims), stops containerd
// and unmounts what it left.
func cleanup(dir string) {
	if env.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ids, _ := env.rt.List(ctx)
		for _, id := range ids {
			_ = env.rt.Remove(ctx, id)
		}
		cancel()
		env.rt.Close()
	}
	if env.cancel != nil {
		env.cancel()
		<-env.done
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && strings.HasPrefix(f[4], dir) {
				_ = exec.Command("umount", "-l", f[4]).Run()
			}
		}
	}
	os.RemoveAll(dir)
}

func need(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		testtool.Missing(t, env.skip)
	}
}

// recorder is an EventSink keeping every event.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Append(ev events.Event) (events.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev.Seq = uint64(len(r.evs) + 1)
	r.evs = append(r.evs, ev)
	return ev, nil
}

func (r *recorder) find(pred func(events.Event) bool) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.evs {
		if pred(e) {
			out = append(out, e)
		}
	}
	return out
}

// startManager runs a Manager on the shared containerd for one test and
// removes its workloads afterwards.
func startManager(t *testing.T, opt workloads.Options) (*workloads.Manager, *recorder) {
	t.Helper()
	rec := &recorder{}
	if opt.Runtime == nil {
		opt.Runtime = env.rt
	}
	if opt.StateDir == "" {
		opt.StateDir = t.TempDir()
	}
	opt.Events = rec
	opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opt.StopGrace == 0 {
		opt.StopGrace = 2 * time.Second
	}
	m, err := workloads.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		for _, w := range m.List() {
			if err := m.Delete(dctx, w.Name); err != nil {
				t.Errorf("delete %s: %v (%+v)", w.Name, err, state(m, w.Name))
			}
		}
		cancel()
		<-done
	})
	return m, rec
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func state(m *workloads.Manager, name string) workloads.Info {
	i, _ := m.Get(name)
	return i
}

func logText(m *workloads.Manager, name string) string {
	r, err := m.Logs(name)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, l := range r.Tail(0) {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}
